/*
 * RMA import from the upstream system's CSV (rmactl rma import FILE.csv).
 *
 * All or nothing: pass 1 reads and checks every row without touching the database
 * and collects every error with its line number; only a clean file is applied, by
 * pass 2, in one transaction. The file is read twice from a seekable stream (the
 * daemon's spool of what rmactl sent, or the text itself through fmemopen), and what
 * pass 1 keeps of each row goes to TEMP tables of the connection, on disk behind a
 * small page cache: an import's memory is one record, two page caches and at most
 * DB_IMPORT_MAX_ERRORS * 2 messages, whatever the file size (issue 17: 100,000 rows
 * held in memory took 30 MB).
 *
 * CSV per RFC 4180, with what real exports do: LF or CR line ends as well as CRLF,
 * a UTF-8 BOM, blank lines, no final newline. Quoted fields may hold commas, ""
 * (a quote) and line breaks; line numbers count physical lines, and an error names
 * the line where its record starts.
 */
#include "db/db_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 64   /* fields kept per record; more only count */

/* ------------------------------------------------------------------ CSV ------- */

typedef struct {
    FILE *f;
    int ch;                   /* the next byte, or EOF */
    unsigned line;            /* physical line of ch, from 1 */
} csv_t;

static void adv(csv_t *c)
{
    c->ch = getc_unlocked(c->f);
}

typedef struct {
    char *buf;                /* field bytes, back to back */
    size_t len, cap;
    size_t off[MAX_FIELDS + 1], flen[MAX_FIELDS + 1];
    size_t nf;                /* fields in the record (may exceed MAX_FIELDS) */
    unsigned line;            /* where the record starts */
    const char *error;        /* first syntax error, static text, or NULL */
} record_t;

static int put(record_t *rec, char c)
{
    size_t f = rec->nf - 1;

    if (f >= MAX_FIELDS || rec->flen[f] > DB_IMPORT_MAX_FIELD)
        return 0;   /* dropped: the field is already too long to be valid */
    if (rec->len == rec->cap) {
        size_t ncap = rec->cap ? rec->cap * 2 : 1024;
        char *n = realloc(rec->buf, ncap);
        if (!n)
            return -ENOMEM;
        rec->buf = n;
        rec->cap = ncap;
    }
    rec->buf[rec->len++] = c;
    rec->flen[f]++;
    return 0;
}

/*
 * Field i's bytes (flen[i] of them). A record of empty fields (",,") never allocated
 * buf: its fields are "" then, never an offset from NULL.
 */
static const char *field(const record_t *rec, size_t i)
{
    return rec->buf ? rec->buf + rec->off[i] : "";
}

static void field_begin(record_t *rec)
{
    if (rec->nf < MAX_FIELDS) {
        rec->off[rec->nf] = rec->len;
        rec->flen[rec->nf] = 0;
    }
    rec->nf++;
}

static void syntax_error(record_t *rec, const char *what)
{
    if (!rec->error)
        rec->error = what;
}

/* At a line end: consume CRLF, LF or CR and count the line. */
static void eat_eol(csv_t *c)
{
    if (c->ch == '\r') {
        adv(c);
        if (c->ch == '\n')
            adv(c);
    } else {
        adv(c);
    }
    c->line++;
}

/*
 * Read the next record. Returns 1 (record in *rec), 0 at the end of the text, or
 * -ENOMEM. Syntax errors are kept in rec->error; the reader always moves on.
 */
static int next_record(csv_t *c, record_t *rec)
{
    /* Blank lines carry no data: skip them. */
    while (c->ch == '\n' || c->ch == '\r')
        eat_eol(c);
    if (c->ch == EOF)
        return 0;

    rec->len = 0;
    rec->nf = 0;
    rec->error = NULL;
    rec->line = c->line;

    for (;;) {
        bool quoted = false;

        field_begin(rec);
        if (c->ch == '"') {
            quoted = true;
            adv(c);
            for (;;) {
                int ch = c->ch;
                if (ch == EOF) {
                    syntax_error(rec, "quoted field not closed before the end of the file");
                    return 1;
                }
                adv(c);
                if (ch == '"') {
                    if (c->ch == '"')
                        adv(c);       /* "" is one quote */
                    else
                        break;        /* closing quote */
                } else if (ch == '\n' || (ch == '\r' && c->ch != '\n')) {
                    c->line++;
                }
                if (put(rec, (char)ch) < 0)
                    return -ENOMEM;
            }
        }
        for (;;) {
            int ch = c->ch;
            if (ch == EOF)
                return 1;
            if (ch == ',') {
                adv(c);
                break;
            }
            if (ch == '\n' || ch == '\r') {
                eat_eol(c);
                return 1;
            }
            if (quoted)
                syntax_error(rec, "text after the closing quote of a field");
            else if (ch == '"')
                syntax_error(rec, "quote inside an unquoted field (quote the whole field)");
            if (put(rec, (char)ch) < 0)
                return -ENOMEM;
            adv(c);
        }
    }
}

/* --------------------------------------------------------------- errors ------- */

typedef struct {
    unsigned line;
    size_t order;             /* arrival, to keep a row's errors in column order */
    char *msg;                /* "line N: ..." */
} err_t;

typedef struct {
    err_t *v;
    size_t n, cap;
    size_t total;             /* found, kept or not */
    size_t limit;             /* kept at most */
} errors_t;

static int add_error(errors_t *e, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int add_error(errors_t *e, unsigned line, const char *fmt, ...)
{
    va_list ap;
    char *what = NULL;
    int n;

    e->total++;
    if (e->n >= e->limit)
        return 0;
    if (e->n == e->cap) {
        size_t ncap = e->cap ? e->cap * 2 : 16;
        err_t *v = realloc(e->v, ncap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        e->v = v;
        e->cap = ncap;
    }
    va_start(ap, fmt);
    n = vasprintf(&what, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ENOMEM;
    e->v[e->n].line = line;
    e->v[e->n].order = e->total;
    if (asprintf(&e->v[e->n].msg, "line %u: %s", line, what) < 0) {
        free(what);
        return -ENOMEM;
    }
    free(what);
    e->n++;
    return 0;
}

static void errors_free(errors_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i].msg);
    free(e->v);
    memset(e, 0, sizeof(*e));
}

static int err_cmp(const void *a, const void *b)
{
    const err_t *x = a, *y = b;

    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* ------------------------------------------------------------- rows ----------- */

typedef struct {
    int col[MAX_FIELDS];      /* header position -> RMA column */
    size_t ncols;
} header_t;

/* Where db_rma_check reports a row's problems. */
typedef struct {
    errors_t *errors;
    unsigned line;
} row_ctx_t;

static int report_problem(void *data, int col, const char *msg)
{
    row_ctx_t *ctx = data;

    (void)col;
    return add_error(ctx->errors, ctx->line, "%s", msg);
}

/*
 * Turn a record into an RMA, reporting every problem of the row. Returns the number
 * of problems (0: *rma is valid), or -ENOMEM.
 */
static int row_to_rma(const header_t *h, const record_t *rec, const regex_t *re,
                      const char *pattern, db_rma_t *rma, errors_t *errors)
{
    row_ctx_t ctx = { errors, rec->line };
    unsigned failed = 0;
    int n = 0, r;

    if (rec->error)
        return add_error(errors, rec->line, "%s", rec->error) < 0 ? -ENOMEM : 1;
    if (rec->nf != h->ncols)
        return add_error(errors, rec->line, "expected %zu fields as in the header, got %zu",
                         h->ncols, rec->nf) < 0 ? -ENOMEM : 1;

    db_rma_init(rma);
    for (size_t i = 0; i < h->ncols; i++) {
        char *msg = NULL;
        r = db_rma_set_column(rma, h->col[i], field(rec, i), rec->flen[i], &msg);
        if (r == -EINVAL) {
            failed |= 1u << h->col[i];
            n++;
            r = add_error(errors, rec->line, "%s", msg);
        }
        free(msg);
        if (r < 0)
            return -ENOMEM;
    }
    r = db_rma_check(rma, re, pattern, failed, report_problem, &ctx);
    return r < 0 ? r : n + r;
}

/* Read the header row into *h; every problem goes to errors. Returns problems or -ENOMEM. */
static int read_header(csv_t *c, record_t *rec, header_t *h, errors_t *errors)
{
    bool seen[RMA_COL_COUNT] = { false };
    static const int required[] = { RMA_COL_NUMBER, RMA_COL_ISSUED, RMA_COL_VENDOR };
    int n = 0, r;

    r = next_record(c, rec);
    if (r < 0)
        return r;
    if (r == 0)
        return add_error(errors, 1, "empty file: expected a header row naming the columns") < 0
                   ? -ENOMEM : 1;
    if (rec->error)
        return add_error(errors, rec->line, "header: %s", rec->error) < 0 ? -ENOMEM : 1;
    if (rec->nf > MAX_FIELDS)
        return add_error(errors, rec->line, "header: more than %d columns", MAX_FIELDS) < 0
                   ? -ENOMEM : 1;

    h->ncols = rec->nf;
    for (size_t i = 0; i < rec->nf; i++) {
        char *name = strndup(field(rec, i), rec->flen[i]), *s = name, *q;
        size_t len;
        int col;

        if (!name)
            return -ENOMEM;
        while (*s == ' ' || *s == '\t')
            s++;
        len = strlen(s);
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            s[--len] = '\0';
        col = db_rma_column(s);
        q = db_quote(s);
        if (!q)
            r = -ENOMEM;
        else if (col < 0)
            r = add_error(errors, rec->line, "unknown column %s (known: number, issued, kind, "
                          "vendor, line, model, family, quantity, expected_serial, "
                          "expected_serials, purchased, shipped, invoiced, order_value, "
                          "warranty_months, has_storage_media, proof_of_purchase)", q), n++;
        else if (seen[col])
            r = add_error(errors, rec->line, "column %s appears twice", q), n++;
        else
            r = 0, seen[col] = true, h->col[i] = col;
        free(q);
        free(name);
        if (r < 0)
            return r;
    }
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (!seen[required[i]]) {
            if (add_error(errors, rec->line, "missing required column \"%s\"",
                          db_rma_columns[required[i]]) < 0)
                return -ENOMEM;
            n++;
        }
    }
    return n;
}

/* ------------------------------------------------------------ RMAs and lines -- */

/*
 * What pass 1 keeps of each row (not the row: a file's rows would not fit): its RMA,
 * where it is, the line it is, and the RMA's own fields, which every line of an RMA
 * must repeat; and each expected serial, for serials listed twice in an RMA. In TEMP
 * tables, on disk (temp_store=FILE) behind IMPORT_TEMP_CACHE_KIB of page cache:
 * 100,000 rows kept in arrays took 20 MB (issue 17). The checks across rows read
 * them back sorted by RMA, one RMA at a time; pass 2 reads each row's line by row.
 */
#define IMPORT_TEMP_CACHE_KIB 512

static const char temp_schema[] =
    "PRAGMA temp_store = FILE;"
    "PRAGMA temp.cache_size = -512;"
    "DROP TABLE IF EXISTS temp.import_rows;"
    "DROP TABLE IF EXISTS temp.import_serials;"
    "DROP TABLE IF EXISTS temp.import_rmas;"
    "CREATE TEMP TABLE import_rows (row INTEGER PRIMARY KEY, number TEXT NOT NULL,"
    " line INTEGER NOT NULL, rma_line INTEGER NOT NULL, quantity INTEGER NOT NULL,"
    " issued INTEGER NOT NULL, kind INTEGER NOT NULL, vendor TEXT NOT NULL,"
    " order_value REAL, proof_of_purchase INTEGER NOT NULL);"
    "CREATE INDEX temp.import_rows_by_rma ON import_rows (number, line);"
    "CREATE TEMP TABLE import_serials (number TEXT NOT NULL, key TEXT NOT NULL,"
    " line INTEGER NOT NULL);"
    "CREATE INDEX temp.import_serials_by_key ON import_serials (number, key, line);"
    "CREATE TEMP TABLE import_rmas (number TEXT PRIMARY KEY, inserted INTEGER NOT NULL,"
    " changed INTEGER NOT NULL) WITHOUT ROWID;";

static const char temp_drop[] =
    "DROP TABLE IF EXISTS temp.import_rows;"
    "DROP TABLE IF EXISTS temp.import_serials;"
    "DROP TABLE IF EXISTS temp.import_rmas;";

/* The import's connection and its statements on the TEMP tables. */
typedef struct {
    db_t *db;
    sqlite3_stmt *add_row, *add_serial, *set_line, *row_line, *touch, *rmas, *rma_lines;
} imp_t;

static int imp_prepare(imp_t *im, sqlite3_stmt **st, const char *sql)
{
    int rc = sqlite3_prepare_v2(im->db->sql, sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : db_fail(im->db, rc, "import: prepare");
}

static int imp_open(imp_t *im, db_t *db)
{
    int rc, r;

    memset(im, 0, sizeof(*im));
    im->db = db;
    rc = sqlite3_exec(db->sql, temp_schema, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return db_fail(db, rc, "import: temporary tables");
    if ((r = imp_prepare(im, &im->add_row, "INSERT INTO temp.import_rows (row, number, line,"
                         " rma_line, quantity, issued, kind, vendor, order_value,"
                         " proof_of_purchase) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")) < 0
        || (r = imp_prepare(im, &im->add_serial, "INSERT INTO temp.import_serials (number, key,"
                            " line) VALUES (?, ?, ?)")) < 0
        || (r = imp_prepare(im, &im->set_line, "UPDATE temp.import_rows SET rma_line = ?"
                            " WHERE row = ?")) < 0
        || (r = imp_prepare(im, &im->row_line, "SELECT rma_line FROM temp.import_rows"
                            " WHERE row = ?")) < 0
        || (r = imp_prepare(im, &im->touch, "INSERT INTO temp.import_rmas (number, inserted,"
                            " changed) VALUES (?, ?, ?) ON CONFLICT (number) DO UPDATE SET"
                            " changed = changed OR excluded.changed")) < 0
        || (r = imp_prepare(im, &im->rmas, "SELECT number, inserted, changed"
                            " FROM temp.import_rmas ORDER BY number")) < 0
        || (r = imp_prepare(im, &im->rma_lines, "SELECT rma_line FROM temp.import_rows"
                            " WHERE number = ? ORDER BY line")) < 0)
        return r;
    return 0;
}

static void imp_close(imp_t *im)
{
    sqlite3_stmt **all[] = { &im->add_row, &im->add_serial, &im->set_line, &im->row_line,
                             &im->touch, &im->rmas, &im->rma_lines };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        (void)sqlite3_finalize(*all[i]);
        *all[i] = NULL;
    }
    if (im->db && !db_in_transaction(im->db))
        (void)sqlite3_exec(im->db->sql, temp_drop, NULL, NULL, NULL);
}

/* Step a statement that returns no row, and reset it. */
static int imp_step_done(imp_t *im, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    (void)sqlite3_reset(st);
    (void)sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : db_fail(im->db, rc, what);
}

typedef struct {
    imp_t *im;
    const char *number;
    unsigned line;
} listing_t;

static int add_listed(void *data, const char *s, size_t len)
{
    listing_t *l = data;
    sqlite3_stmt *st = l->im->add_serial;
    char key[DB_RMA_TEXT_MAX + 1];

    if (len == 0 || len > DB_RMA_TEXT_MAX)
        return 0;   /* the row's own check reported it */
    db_serial_key(s, len, key, sizeof(key));
    if (sqlite3_bind_text(st, 1, l->number, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_int64(st, 3, l->line) != SQLITE_OK)
        return -ENOMEM;
    return imp_step_done(l->im, st, "import: serials");
}

/* Remember a row that parsed (even with errors in other fields). */
static int remember_row(imp_t *im, const db_rma_t *rma, unsigned line, size_t row)
{
    sqlite3_stmt *st = im->add_row;
    int r;

    if (sqlite3_bind_int64(st, 1, (sqlite3_int64)row) != SQLITE_OK
        || sqlite3_bind_text(st, 2, rma->number, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_int64(st, 3, line) != SQLITE_OK
        || sqlite3_bind_int(st, 4, rma->line) != SQLITE_OK
        || sqlite3_bind_int(st, 5, rma->quantity) != SQLITE_OK
        || sqlite3_bind_int(st, 6, rma->issued) != SQLITE_OK
        || sqlite3_bind_int(st, 7, (int)rma->kind) != SQLITE_OK
        || sqlite3_bind_text(st, 8, rma->vendor, -1, SQLITE_STATIC) != SQLITE_OK
        || (rma->has_order_value ? sqlite3_bind_double(st, 9, rma->order_value)
                                 : sqlite3_bind_null(st, 9)) != SQLITE_OK
        || sqlite3_bind_int(st, 10, rma->proof_of_purchase) != SQLITE_OK)
        return -ENOMEM;
    if ((r = imp_step_done(im, st, "import: rows")) < 0)
        return r;

    listing_t l = { im, rma->number, line };
    if (rma->expected_serials[0])
        r = db_serials_split(rma->expected_serials, add_listed, &l);
    else
        r = rma->expected_serial[0] ? add_listed(&l, rma->expected_serial,
                                                 strlen(rma->expected_serial)) : 0;
    return r < 0 ? r : 0;
}

/* One row as the checks across rows read it back. */
typedef struct {
    size_t row;
    char number[DB_RMA_NUMBER_MAX + 1];
    unsigned line;            /* of the file */
    int rma_line;             /* as given (0: not stated) */
    int quantity;
    caldate_t issued;
    int kind;
    char vendor[DB_RMA_TEXT_MAX + 1];
    bool has_order_value;
    double order_value;
    int proof_of_purchase;
} seen_t;

static void seen_read(sqlite3_stmt *st, seen_t *s)
{
    const unsigned char *t;

    s->row = (size_t)sqlite3_column_int64(st, 0);
    t = sqlite3_column_text(st, 1);
    snprintf(s->number, sizeof(s->number), "%s", t ? (const char *)t : "");
    s->line = (unsigned)sqlite3_column_int64(st, 2);
    s->rma_line = sqlite3_column_int(st, 3);
    s->quantity = sqlite3_column_int(st, 4);
    s->issued = sqlite3_column_int(st, 5);
    s->kind = sqlite3_column_int(st, 6);
    t = sqlite3_column_text(st, 7);
    snprintf(s->vendor, sizeof(s->vendor), "%s", t ? (const char *)t : "");
    s->has_order_value = sqlite3_column_type(st, 8) != SQLITE_NULL;
    s->order_value = s->has_order_value ? sqlite3_column_double(st, 8) : 0;
    s->proof_of_purchase = sqlite3_column_int(st, 9);
}

/* The RMA's own field in which two rows of one RMA differ, or NULL. */
static const char *header_differs(const seen_t *a, const seen_t *b)
{
    if (a->issued != b->issued)
        return "issued";
    if (a->kind != b->kind)
        return "kind";
    if (strcmp(a->vendor, b->vendor) != 0)
        return "vendor";
    if (a->has_order_value != b->has_order_value
        || (a->has_order_value && a->order_value != b->order_value))
        return "order_value";
    if (a->proof_of_purchase != b->proof_of_purchase)
        return "proof_of_purchase";
    return NULL;
}

/* Units already received on each line of a stored RMA, for the re-import check. */
typedef struct {
    int line[256];
    int received[256];
    size_t n;
    bool more;
} received_t;

static int note_received(const db_rma_t *r, void *data)
{
    received_t *rc = data;

    if (r->line_received == 0)
        return 0;
    if (rc->n == sizeof(rc->line) / sizeof(rc->line[0])) {
        rc->more = true;
        return 0;
    }
    rc->line[rc->n] = r->line;
    rc->received[rc->n++] = r->line_received;
    return 0;
}

/*
 * One RMA's rows, as the checks see them, one row at a time in file order: the RMA's
 * fields equal on every row, line numbers assigned (the row's position when not
 * stated) and distinct, and, for a stored RMA, no line with units received dropped or
 * cut below them. at_line[line] is the file line of the row holding that line number
 * (0: none), at_qty[line] its quantity; both all 0 between RMAs, so every check is
 * linear in the rows, whatever the file (100,000 rows of one RMA included).
 */
typedef struct {
    seen_t first;
    size_t n;                 /* rows so far */
    unsigned *at_line;
    int *at_qty;
    int *used;                /* the line numbers set in at_line, to clear them */
    size_t nused;
} rma_check_t;

static int check_row(imp_t *im, rma_check_t *k, seen_t *s, errors_t *errors)
{
    const char *f;

    if (k->n == 0)
        k->first = *s;
    else if ((f = header_differs(&k->first, s))) {
        if (add_error(errors, s->line, "%s: differs from line %u, the first row of "
                      "%s (an RMA's %s is the same on all its lines)", f, k->first.line,
                      k->first.number, f) < 0)
            return -ENOMEM;
    }
    k->n++;
    if (s->rma_line == 0) {
        if (k->n > DB_RMA_LINE_MAX)
            return add_error(errors, s->line, "line: more than %d lines in %s",
                             DB_RMA_LINE_MAX, s->number) < 0 ? -ENOMEM : 0;
        s->rma_line = (int)k->n;
        sqlite3_stmt *st = im->set_line;
        if (sqlite3_bind_int(st, 1, s->rma_line) != SQLITE_OK
            || sqlite3_bind_int64(st, 2, (sqlite3_int64)s->row) != SQLITE_OK)
            return -ENOMEM;
        int r = imp_step_done(im, st, "import: lines");
        if (r < 0)
            return r;
    }
    if (s->rma_line <= 0 || s->rma_line > DB_RMA_LINE_MAX)
        return 0;
    if (k->at_line[s->rma_line])
        return add_error(errors, s->line, "line: %s line %d is already on line %u",
                         s->number, s->rma_line, k->at_line[s->rma_line]) < 0 ? -ENOMEM : 0;
    k->at_line[s->rma_line] = s->line;
    k->at_qty[s->rma_line] = s->quantity;
    k->used[k->nused++] = s->rma_line;
    return 0;
}

/* After an RMA's last row: the stored lines with units received are all still there. */
static int check_rma_end(imp_t *im, rma_check_t *k, errors_t *errors)
{
    received_t in = { .n = 0 };
    int r = db_rma_foreach_line(im->db, k->first.number, note_received, &in);

    if (r == -ENOENT)
        r = 0;
    for (size_t j = 0; r == 0 && j < in.n; j++) {
        int line = in.line[j];
        bool there = line > 0 && line <= DB_RMA_LINE_MAX && k->at_line[line];
        if (!there)
            r = add_error(errors, k->first.line, "%s: line %d has %d unit%s received and is not "
                          "in the file (an RMA cannot lose lines that units came in on)",
                          k->first.number, line, in.received[j], in.received[j] == 1 ? "" : "s");
        else if (k->at_qty[line] < in.received[j])
            r = add_error(errors, k->at_line[line], "quantity: %d is fewer than the %d units of "
                          "%s line %d already received", k->at_qty[line], in.received[j],
                          k->first.number, line);
        if (r < 0)
            r = -ENOMEM;
    }
    for (size_t j = 0; j < k->nused; j++) {   /* leave the tables all 0 for the next RMA */
        k->at_line[k->used[j]] = 0;
        k->at_qty[k->used[j]] = 0;
    }
    k->nused = 0;
    k->n = 0;
    return r;
}

/* Every check across rows: per RMA (check_row, check_rma_end), serials listed twice. */
static int check_across_rows(imp_t *im, errors_t *errors)
{
    sqlite3_stmt *st = NULL;
    rma_check_t k = { .n = 0 };
    seen_t *s = malloc(sizeof(*s));
    int r, rc;

    k.at_line = calloc(DB_RMA_LINE_MAX + 1, sizeof(*k.at_line));
    k.at_qty = calloc(DB_RMA_LINE_MAX + 1, sizeof(*k.at_qty));
    k.used = calloc(DB_RMA_LINE_MAX + 1, sizeof(*k.used));
    r = s && k.at_line && k.at_qty && k.used ? 0 : -ENOMEM;
    if (r == 0)
        r = imp_prepare(im, &st, "SELECT row, number, line, rma_line, quantity, issued, kind,"
                        " vendor, order_value, proof_of_purchase FROM temp.import_rows"
                        " ORDER BY number, line");
    while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        seen_read(st, s);
        if (k.n > 0 && strcmp(s->number, k.first.number) != 0)
            r = check_rma_end(im, &k, errors);
        if (r == 0)
            r = check_row(im, &k, s, errors);
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = db_fail(im->db, rc, "import: rows");
    if (r == 0 && k.n > 0)
        r = check_rma_end(im, &k, errors);
    (void)sqlite3_finalize(st);
    st = NULL;
    free(k.at_line);
    free(k.at_qty);
    free(k.used);
    free(s);
    if (r < 0)
        return r;

    /* Twice in one row is that row's own error (db_rma_check). */
    char number[DB_RMA_NUMBER_MAX + 1] = "", key[DB_RMA_TEXT_MAX + 1] = "";
    unsigned line = 0;
    r = imp_prepare(im, &st, "SELECT number, key, line FROM temp.import_serials"
                    " ORDER BY number, key, line");
    while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *n = (const char *)sqlite3_column_text(st, 0);
        const char *kk = (const char *)sqlite3_column_text(st, 1);
        unsigned l = (unsigned)sqlite3_column_int64(st, 2);
        if (!n || !kk) {
            r = -ENOMEM;
            break;
        }
        if (strcmp(n, number) == 0 && strcmp(kk, key) == 0 && l != line) {
            char *q = db_quote(kk);
            r = q ? add_error(errors, l, "expected_serials: serial %s of %s is already listed "
                              "on line %u", q, n, line)
                  : -ENOMEM;
            free(q);
        }
        snprintf(number, sizeof(number), "%s", n);
        snprintf(key, sizeof(key), "%s", kk);
        line = l;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = db_fail(im->db, rc, "import: serials");
    (void)sqlite3_finalize(st);
    return r;
}

/* ---------------------------------------------------------------- import ------ */

void db_import_report_clear(db_import_report_t *rep)
{
    if (!rep)
        return;
    for (size_t i = 0; i < rep->nerrors; i++)
        free(rep->errors[i]);
    free(rep->errors);
    memset(rep, 0, sizeof(*rep));
}

/* Move the errors, sorted by line, into the report and make the one-line message. */
static int errors_to_report(errors_t *e, db_import_report_t *rep, char **errmsg)
{
    size_t keep;

    qsort(e->v, e->n, sizeof(e->v[0]), err_cmp);
    keep = e->n < DB_IMPORT_MAX_ERRORS ? e->n : DB_IMPORT_MAX_ERRORS;
    rep->errors = calloc(keep ? keep : 1, sizeof(char *));
    if (!rep->errors)
        return -ENOMEM;
    for (size_t i = 0; i < keep; i++) {
        rep->errors[i] = e->v[i].msg;
        e->v[i].msg = NULL;
    }
    rep->nerrors = keep;
    rep->errors_total = e->total;
    if (e->total > 1) {
        if (asprintf(errmsg, "%s (and %zu more error%s)", rep->errors[0], e->total - 1,
                     e->total > 2 ? "s" : "") < 0)
            *errmsg = NULL;
    } else {
        *errmsg = strdup(rep->errors[0]);
    }
    return 0;
}

/* Pass 2's line for data row `row` (pass 1 assigned it). */
static int row_rma_line(imp_t *im, size_t row, int *line)
{
    sqlite3_stmt *st = im->row_line;
    int rc;

    if (sqlite3_bind_int64(st, 1, (sqlite3_int64)row) != SQLITE_OK)
        return -ENOMEM;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *line = sqlite3_column_int(st, 0);
    (void)sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? db_fail_msg(im->db, -EIO, "import: rows changed")
                             : db_fail(im->db, rc, "import: rows");
}

/* Note what the upsert did to the row's RMA (its first row says whether it is new). */
static int touch_rma(imp_t *im, const char *number, db_upsert_t what)
{
    sqlite3_stmt *st = im->touch;

    if (sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_int(st, 2, what == DB_UPSERT_INSERTED) != SQLITE_OK
        || sqlite3_bind_int(st, 3, what != DB_UPSERT_UNCHANGED) != SQLITE_OK)
        return -ENOMEM;
    return imp_step_done(im, st, "import: rmas");
}

/* Drop the lines each RMA of the file no longer has, and count the RMAs. */
static int keep_lines_and_count(imp_t *im, db_import_report_t *rep)
{
    int *keep = malloc(DB_RMA_LINE_MAX * sizeof(*keep));
    int r = keep ? 0 : -ENOMEM, rc = SQLITE_DONE;

    while (r == 0 && (rc = sqlite3_step(im->rmas)) == SQLITE_ROW) {
        const char *number = (const char *)sqlite3_column_text(im->rmas, 0);
        bool inserted = sqlite3_column_int(im->rmas, 1) != 0;
        bool changed = sqlite3_column_int(im->rmas, 2) != 0;
        size_t n = 0;
        int lrc;

        if (!number) {
            r = -ENOMEM;
            break;
        }
        if (sqlite3_bind_text(im->rma_lines, 1, number, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
            r = -ENOMEM;
            break;
        }
        while ((lrc = sqlite3_step(im->rma_lines)) == SQLITE_ROW && n < DB_RMA_LINE_MAX)
            keep[n++] = sqlite3_column_int(im->rma_lines, 0);
        (void)sqlite3_reset(im->rma_lines);
        if (lrc != SQLITE_ROW && lrc != SQLITE_DONE) {
            r = db_fail(im->db, lrc, "import: lines");
            break;
        }
        int64_t before = sqlite3_total_changes64(im->db->sql);
        r = db_rma_keep_lines(im->db, number, keep, n);
        if (r == 0) {
            changed |= sqlite3_total_changes64(im->db->sql) > before;
            if (inserted)
                rep->inserted++;
            else if (changed)
                rep->updated++;
            else
                rep->unchanged++;
        }
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = db_fail(im->db, rc, "import: rmas");
    (void)sqlite3_reset(im->rmas);
    free(keep);
    return r;
}

/*
 * Pass 2: upsert every row of a file pass 1 found clean (as the line pass 1 assigned),
 * then drop the lines each RMA no longer has, all in one transaction. Counts are per RMA.
 */
static int apply(imp_t *im, csv_t c, const header_t *h, const regex_t *re,
                 db_import_report_t *rep, char **errmsg)
{
    db_t *db = im->db;
    record_t rec = { 0 };
    errors_t none = { .limit = 1 };
    db_rma_t *rma = malloc(sizeof(*rma));
    size_t row = 0;
    int r;

    if (!rma)
        return -ENOMEM;
    r = db_begin(db);
    while (r == 0 && (r = next_record(&c, &rec)) == 1) {
        db_upsert_t what;
        r = row_to_rma(h, &rec, re, NULL, rma, &none);
        if (r > 0 || row >= rep->rows) {   /* cannot happen: pass 1 read the same text */
            r = db_fail_msg(db, -EIO, "%s", none.n ? none.v[0].msg : "import: rows changed");
            break;
        }
        if (r < 0)
            break;
        r = row_rma_line(im, row, &rma->line);
        row++;
        if (r == 0)
            r = db_rma_upsert(db, rma, &what);
        if (r == 0)
            r = touch_rma(im, rma->number, what);
    }
    if (r == 0)
        r = keep_lines_and_count(im, rep);
    free(rec.buf);
    free(rma);
    errors_free(&none);
    if (r == -ENOMEM)
        (void)db_fail_msg(db, r, "import: out of memory");
    if (r == 0)
        r = db_commit(db);
    if (r < 0) {
        (void)db_rollback(db);
        rep->inserted = rep->updated = rep->unchanged = 0;
        *errmsg = strdup(db_errmsg(db));
    }
    return r;
}

/* Pass 1 in one transaction of the TEMP tables (it reads the stored RMAs, writes none). */
static int check_all(imp_t *im, csv_t *c, const header_t *h, const regex_t *re,
                     const regex_t *number_re, db_import_report_t *rep, errors_t *errors)
{
    record_t rec = { 0 };
    db_rma_t *rma = malloc(sizeof(*rma));
    int r, rc;

    if (!rma)
        return -ENOMEM;
    rc = sqlite3_exec(im->db->sql, "BEGIN", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        free(rma);
        return db_fail(im->db, rc, "import: begin");
    }
    while ((r = next_record(c, &rec)) == 1) {
        int n;

        if (++rep->rows > DB_IMPORT_MAX_ROWS) {
            rep->rows--;
            r = add_error(errors, rec.line, "more than %d rows: split the file",
                          DB_IMPORT_MAX_ROWS);
            break;
        }
        n = row_to_rma(h, &rec, re, number_re ? NULL : DB_RMA_NUMBER_PATTERN, rma, errors);
        if (n < 0) {
            r = n;
            break;
        }
        /* Remember every number that parsed, even on a bad row, for the checks
         * across the rows of an RMA. */
        if (rec.nf == h->ncols && !rec.error && rma->number[0]
            && (r = remember_row(im, rma, rec.line, rep->rows - 1)) < 0)
            break;
    }
    if (r == 0)
        r = check_across_rows(im, errors);
    free(rec.buf);
    free(rma);
    rc = sqlite3_exec(im->db->sql, r == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    if (r == 0 && rc != SQLITE_OK)
        r = db_fail(im->db, rc, "import: commit");
    (void)db_rollback(im->db);   /* if COMMIT failed */
    return r;
}

int db_rma_import_file(db_t *db, FILE *f, const regex_t *number_re, db_import_report_t *rep,
                       char **errmsg)
{
    csv_t c = { f, EOF, 1 };
    record_t rec = { 0 };
    header_t h = { .ncols = 0 };
    errors_t errors = { .limit = 2 * DB_IMPORT_MAX_ERRORS };
    imp_t im = { .db = NULL };
    regex_t own;
    const regex_t *re = number_re;
    long size, data_at = 0;
    unsigned data_line = 1;
    int r;

    memset(rep, 0, sizeof(*rep));
    *errmsg = NULL;
    if (fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
        *errmsg = strdup("import: the file cannot be read twice (not seekable)");
        return -ESPIPE;
    }
    if ((unsigned long)size > DB_IMPORT_MAX_BYTES) {
        if (asprintf(errmsg, "file larger than %u bytes", DB_IMPORT_MAX_BYTES) < 0)
            *errmsg = NULL;
        return -E2BIG;
    }
    if (db_in_transaction(db)) {
        *errmsg = strdup("import: a transaction is already open");
        return -EINVAL;
    }
    if (!re) {
        if (db_rma_default_re(&own) < 0)
            return -ENOMEM;
        re = &own;
    }
    adv(&c);
    if (c.ch == 0xef) {   /* a UTF-8 BOM, or the file's first byte */
        int b1 = getc_unlocked(f), b2 = getc_unlocked(f);
        if (b1 != 0xbb || b2 != 0xbf)
            (void)fseek(f, 0, SEEK_SET);
        adv(&c);
    }

    /* Pass 1: read and check everything. */
    r = read_header(&c, &rec, &h, &errors);
    free(rec.buf);
    if (r != 0)
        goto checked;   /* rows cannot be read without a header */
    data_at = ftell(f) - (c.ch != EOF);
    data_line = c.line;
    if ((r = imp_open(&im, db)) == 0)
        r = check_all(&im, &c, &h, re, number_re, rep, &errors);

checked:
    if (r >= 0 && ferror(f))
        r = db_fail_msg(db, -EIO, "import: reading the file: %s", strerror(errno));
    if (r >= 0 && errors.total > 0) {
        r = errors_to_report(&errors, rep, errmsg) < 0 ? -ENOMEM : -EINVAL;
    } else if (r >= 0) {
        /* Pass 2 reads the same bytes from the first data row. */
        csv_t again = { f, EOF, data_line };
        if (fseek(f, data_at, SEEK_SET) < 0) {
            r = db_fail_msg(db, -EIO, "import: rereading the file: %s", strerror(errno));
        } else {
            adv(&again);
            r = apply(&im, again, &h, re, rep, errmsg);
        }
    }
    if (r == -ENOMEM && !*errmsg)
        *errmsg = strdup("import: out of memory");
    else if (r < 0 && !*errmsg)
        *errmsg = strdup(db_errmsg(db));
    imp_close(&im);
    errors_free(&errors);
    if (re == &own)
        regfree(&own);
    return r;
}

int db_rma_import_csv(db_t *db, const char *text, size_t len, const regex_t *number_re,
                      db_import_report_t *rep, char **errmsg)
{
    static char empty[1];
    FILE *f;
    int r;

    memset(rep, 0, sizeof(*rep));
    *errmsg = NULL;
    if (len > DB_IMPORT_MAX_BYTES) {
        if (asprintf(errmsg, "file larger than %u bytes", DB_IMPORT_MAX_BYTES) < 0)
            *errmsg = NULL;
        return -E2BIG;
    }
    /* Read only: fmemopen's "r" never writes to the buffer (glibc takes size 0). */
    f = fmemopen(len ? (void *)(uintptr_t)text : empty, len, "r");
    if (!f)
        return -ENOMEM;
    r = db_rma_import_file(db, f, number_re, rep, errmsg);
    fclose(f);
    return r;
}
