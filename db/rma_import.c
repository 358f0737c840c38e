/*
 * RMA import from the upstream system's CSV (rmactl rma import FILE.csv).
 *
 * All or nothing: pass 1 reads and checks every row without touching the database
 * and collects every error with its line number; only a clean file is applied, by
 * pass 2, in one transaction. Parsing twice costs little and keeps memory to one
 * record plus the list of numbers (for duplicates), whatever the file size.
 *
 * CSV per RFC 4180, with what real exports do: LF or CR line ends as well as CRLF,
 * a UTF-8 BOM, blank lines, no final newline. Quoted fields may hold commas, ""
 * (a quote) and line breaks; line numbers count physical lines, and an error names
 * the line where its record starts.
 */
#include "db/db_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 64   /* fields kept per record; more only count */

/* ------------------------------------------------------------------ CSV ------- */

typedef struct {
    const char *p, *end;
    unsigned line;            /* physical line of *p, from 1 */
} csv_t;

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
    if (*c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n')
        c->p++;
    c->p++;
    c->line++;
}

/*
 * Read the next record. Returns 1 (record in *rec), 0 at the end of the text, or
 * -ENOMEM. Syntax errors are kept in rec->error; the reader always moves on.
 */
static int next_record(csv_t *c, record_t *rec)
{
    /* Blank lines carry no data: skip them. */
    while (c->p < c->end && (*c->p == '\n' || *c->p == '\r'))
        eat_eol(c);
    if (c->p >= c->end)
        return 0;

    rec->len = 0;
    rec->nf = 0;
    rec->error = NULL;
    rec->line = c->line;

    for (;;) {
        bool quoted = false;

        field_begin(rec);
        if (c->p < c->end && *c->p == '"') {
            quoted = true;
            c->p++;
            for (;;) {
                char ch;
                if (c->p >= c->end) {
                    syntax_error(rec, "quoted field not closed before the end of the file");
                    return 1;
                }
                ch = *c->p++;
                if (ch == '"') {
                    if (c->p < c->end && *c->p == '"')
                        c->p++;       /* "" is one quote */
                    else
                        break;        /* closing quote */
                } else if (ch == '\n' || (ch == '\r' && !(c->p < c->end && *c->p == '\n'))) {
                    c->line++;
                }
                if (put(rec, ch) < 0)
                    return -ENOMEM;
            }
        }
        for (;;) {
            char ch;
            if (c->p >= c->end)
                return 1;
            ch = *c->p;
            if (ch == ',') {
                c->p++;
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
            if (put(rec, ch) < 0)
                return -ENOMEM;
            c->p++;
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
 * The strings pass 1 keeps, each exactly as long as it is, in blocks that never move
 * (so rows point into them). Fixed-size fields were ~450 bytes a row: 58 MB for the
 * 100,000 rows of a big import, where the strings themselves take ~3 MB (issue 17).
 */
#define POOL_BLOCK 65536

typedef struct pool_block {
    struct pool_block *next;
    size_t used, size;
    char data[];
} pool_block_t;

static const char *pool_dup(pool_block_t **pool, const char *s, size_t len)
{
    pool_block_t *b = *pool;

    if (!b || b->size - b->used < len + 1) {
        size_t size = len + 1 > POOL_BLOCK ? len + 1 : POOL_BLOCK;
        pool_block_t *nb = malloc(sizeof(*nb) + size);
        if (!nb)
            return NULL;
        *nb = (pool_block_t){ .next = b, .size = size };
        *pool = b = nb;
    }
    char *out = b->data + b->used;
    memcpy(out, s, len);
    out[len] = '\0';
    b->used += len + 1;
    return out;
}

static void pool_free(pool_block_t **pool)
{
    while (*pool) {
        pool_block_t *next = (*pool)->next;
        free(*pool);
        *pool = next;
    }
}

/*
 * What pass 1 keeps of each row (not the row: a file's rows would not fit): its RMA,
 * where it is, the line it is, and the RMA's own fields, which every line of an RMA
 * must repeat. Strings are in rows_t's pool.
 */
typedef struct {
    const char *number;
    unsigned line;            /* of the file */
    size_t row;               /* data row, from 0 */
    int rma_line;             /* as given (0: not stated), then as assigned */
    int quantity;
    caldate_t issued;
    db_rma_kind_t kind;
    const char *vendor;
    bool has_order_value;
    double order_value;
    int proof_of_purchase;
} seen_t;

/* One expected serial of a row, for serials listed twice in an RMA. */
typedef struct {
    const char *number;       /* the row's seen_t number */
    const char *key;
    unsigned line;
} listed_t;

/* Everything pass 1 collects beyond the errors. */
typedef struct {
    seen_t *seen;
    size_t nseen, capseen;
    listed_t *listed;
    size_t nlisted, caplisted;
    pool_block_t *pool;
} rows_t;

static void rows_free(rows_t *rows)
{
    free(rows->seen);
    free(rows->listed);
    pool_free(&rows->pool);
    memset(rows, 0, sizeof(*rows));
}

static int seen_cmp(const void *a, const void *b)
{
    const seen_t *x = a, *y = b;
    int c = strcmp(x->number, y->number);

    if (c)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

static int listed_cmp(const void *a, const void *b)
{
    const listed_t *x = a, *y = b;
    int c = strcmp(x->number, y->number);

    if (!c)
        c = strcmp(x->key, y->key);
    if (c)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

typedef struct {
    rows_t *rows;
    const char *number;
    unsigned line;
} listing_t;

static int add_listed(void *data, const char *s, size_t len)
{
    listing_t *l = data;
    rows_t *rows = l->rows;

    if (len == 0 || len > DB_RMA_TEXT_MAX)
        return 0;   /* the row's own check reported it */
    if (rows->nlisted == rows->caplisted) {
        size_t ncap = rows->caplisted ? rows->caplisted * 2 : 256;
        listed_t *nl = realloc(rows->listed, ncap * sizeof(*nl));
        if (!nl)
            return -ENOMEM;
        rows->listed = nl;
        rows->caplisted = ncap;
    }
    char key[DB_RMA_TEXT_MAX + 1];
    db_serial_key(s, len, key, sizeof(key));
    const char *k = pool_dup(&rows->pool, key, strlen(key));
    if (!k)
        return -ENOMEM;
    rows->listed[rows->nlisted++] = (listed_t){ .number = l->number, .key = k, .line = l->line };
    return 0;
}

/* Remember a row that parsed (even with errors in other fields). */
static int remember_row(rows_t *rows, const db_rma_t *rma, unsigned line, size_t row)
{
    if (rows->nseen == rows->capseen) {
        size_t ncap = rows->capseen ? rows->capseen * 2 : 256;
        seen_t *ns = realloc(rows->seen, ncap * sizeof(*ns));
        if (!ns)
            return -ENOMEM;
        rows->seen = ns;
        rows->capseen = ncap;
    }
    const char *number = pool_dup(&rows->pool, rma->number, strlen(rma->number));
    const char *vendor = rows->nseen && strcmp(rows->seen[rows->nseen - 1].vendor, rma->vendor) == 0
                         ? rows->seen[rows->nseen - 1].vendor
                         : pool_dup(&rows->pool, rma->vendor, strlen(rma->vendor));
    if (!number || !vendor)
        return -ENOMEM;
    seen_t *e = &rows->seen[rows->nseen++];
    e->number = number;
    e->line = line;
    e->row = row;
    e->rma_line = rma->line;
    e->quantity = rma->quantity;
    e->issued = rma->issued;
    e->kind = rma->kind;
    e->vendor = vendor;
    e->has_order_value = rma->has_order_value;
    e->order_value = rma->order_value;
    e->proof_of_purchase = rma->proof_of_purchase;

    listing_t l = { rows, e->number, line };
    int r;
    if (rma->expected_serials[0])
        r = db_serials_split(rma->expected_serials, add_listed, &l);
    else
        r = rma->expected_serial[0] ? add_listed(&l, rma->expected_serial,
                                                 strlen(rma->expected_serial)) : 0;
    return r < 0 ? r : 0;
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
 * Check one RMA's rows (seen[0..n), sorted by file line): the RMA's fields equal on
 * every row, line numbers assigned (the row's position when not stated) and
 * distinct, and, for a stored RMA, no line with units received dropped or cut below
 * them. at[DB_RMA_LINE_MAX + 1] is all 0 on entry and on return (the caller's, for
 * all RMAs): at[line] = 1 + the row holding that line number, so every check is linear
 * in the rows, whatever the file (100,000 rows of one RMA included).
 */
static int check_rma(db_t *db, seen_t *seen, size_t n, errors_t *errors, size_t *at)
{
    const char *f;
    int r;

    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (f = header_differs(&seen[0], &seen[i]))) {
            if (add_error(errors, seen[i].line, "%s: differs from line %u, the first row of "
                          "%s (an RMA's %s is the same on all its lines)", f, seen[0].line,
                          seen[0].number, f) < 0)
                return -ENOMEM;
        }
        if (seen[i].rma_line == 0) {
            if (i + 1 > DB_RMA_LINE_MAX) {
                if (add_error(errors, seen[i].line, "line: more than %d lines in %s",
                              DB_RMA_LINE_MAX, seen[i].number) < 0)
                    return -ENOMEM;
                continue;
            }
            seen[i].rma_line = (int)i + 1;
        }
    }
    r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        int line = seen[i].rma_line;
        if (line <= 0 || line > DB_RMA_LINE_MAX)
            continue;
        if (at[line])
            r = add_error(errors, seen[i].line, "line: %s line %d is already on line %u",
                          seen[i].number, line, seen[at[line] - 1].line) < 0 ? -ENOMEM : 0;
        else
            at[line] = i + 1;
    }

    received_t in = { .n = 0 };
    if (r == 0) {
        r = db_rma_foreach_line(db, seen[0].number, note_received, &in);
        if (r == -ENOENT)
            r = 0;
    }
    for (size_t k = 0; r == 0 && k < in.n; k++) {
        int line = in.line[k];
        size_t i = line > 0 && line <= DB_RMA_LINE_MAX && at[line] ? at[line] - 1 : n;
        if (i == n)
            r = add_error(errors, seen[0].line, "%s: line %d has %d unit%s received and is not "
                          "in the file (an RMA cannot lose lines that units came in on)",
                          seen[0].number, in.line[k], in.received[k],
                          in.received[k] == 1 ? "" : "s");
        else if (seen[i].quantity < in.received[k])
            r = add_error(errors, seen[i].line, "quantity: %d is fewer than the %d units of %s "
                          "line %d already received", seen[i].quantity, in.received[k],
                          seen[i].number, in.line[k]);
        else
            r = 0;
        if (r < 0)
            r = -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)       /* leave the table all 0 for the next RMA */
        if (seen[i].rma_line > 0 && seen[i].rma_line <= DB_RMA_LINE_MAX)
            at[seen[i].rma_line] = 0;
    return r;
}

/* Every check across rows: per RMA (check_rma), serials listed twice in an RMA. */
static int check_across_rows(db_t *db, rows_t *rows, errors_t *errors)
{
    int r;

    if (rows->nseen > 1)   /* qsort wants a non-NULL array even for none */
        qsort(rows->seen, rows->nseen, sizeof(*rows->seen), seen_cmp);
    size_t *at = calloc(DB_RMA_LINE_MAX + 1, sizeof(*at));
    if (!at)
        return -ENOMEM;
    for (size_t i = 0; i < rows->nseen; ) {
        size_t k = i + 1;
        while (k < rows->nseen && strcmp(rows->seen[k].number, rows->seen[i].number) == 0)
            k++;
        if ((r = check_rma(db, rows->seen + i, k - i, errors, at)) < 0) {
            free(at);
            return r;
        }
        i = k;
    }
    free(at);

    if (rows->nlisted > 1)
        qsort(rows->listed, rows->nlisted, sizeof(*rows->listed), listed_cmp);
    for (size_t i = 1; i < rows->nlisted; i++) {
        const listed_t *a = &rows->listed[i - 1], *b = &rows->listed[i];
        /* Twice in one row is that row's own error (db_rma_check). */
        if (strcmp(a->number, b->number) != 0 || strcmp(a->key, b->key) != 0 || a->line == b->line)
            continue;
        char *q = db_quote(b->key);
        r = q ? add_error(errors, b->line, "expected_serials: serial %s of %s is already listed "
                          "on line %u", q, b->number, a->line)
              : -ENOMEM;
        free(q);
        if (r < 0)
            return r;
    }
    return 0;
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

/* One RMA of the file, for pass 2: its rows are seen[first .. first + n). */
typedef struct {
    size_t first, n;
    bool touched, inserted, changed;
} group_t;

/* Where pass 2 finds each row's RMA and line: by data row. */
typedef struct {
    group_t *groups;
    size_t ngroups;
    size_t *group_of_row;
    int *line_of_row;
} plan_t;

static void plan_free(plan_t *p)
{
    free(p->groups);
    free(p->group_of_row);
    free(p->line_of_row);
    memset(p, 0, sizeof(*p));
}

static int plan_make(const rows_t *rows, size_t nrows, plan_t *p)
{
    memset(p, 0, sizeof(*p));
    p->groups = calloc(rows->nseen ? rows->nseen : 1, sizeof(*p->groups));
    p->group_of_row = calloc(nrows ? nrows : 1, sizeof(*p->group_of_row));
    p->line_of_row = calloc(nrows ? nrows : 1, sizeof(*p->line_of_row));
    if (!p->groups || !p->group_of_row || !p->line_of_row) {
        plan_free(p);
        return -ENOMEM;
    }
    for (size_t i = 0; i < rows->nseen; i++) {
        const seen_t *e = &rows->seen[i];
        if (i == 0 || strcmp(e->number, rows->seen[i - 1].number) != 0)
            p->groups[p->ngroups++].first = i;
        p->groups[p->ngroups - 1].n++;
        if (e->row < nrows) {
            p->group_of_row[e->row] = p->ngroups - 1;
            p->line_of_row[e->row] = e->rma_line;
        }
    }
    return 0;
}

/*
 * Pass 2: upsert every row of a file pass 1 found clean (as line line_of_row), then
 * drop the lines each RMA no longer has, all in one transaction. Counts are per RMA.
 */
static int apply(db_t *db, csv_t c, const header_t *h, const regex_t *re, const rows_t *rows,
                 plan_t *plan, db_import_report_t *rep, char **errmsg)
{
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
        group_t *g;
        r = row_to_rma(h, &rec, re, NULL, rma, &none);
        if (r > 0 || row >= rep->rows) {   /* cannot happen: pass 1 read the same text */
            r = db_fail_msg(db, -EIO, "%s", none.n ? none.v[0].msg : "import: rows changed");
            break;
        }
        if (r < 0)
            break;
        g = &plan->groups[plan->group_of_row[row]];
        rma->line = plan->line_of_row[row];
        row++;
        r = db_rma_upsert(db, rma, &what);
        if (r == 0) {
            if (!g->touched)
                g->inserted = what == DB_UPSERT_INSERTED;
            g->touched = true;
            g->changed |= what != DB_UPSERT_UNCHANGED;
        }
    }
    for (size_t i = 0; r == 0 && i < plan->ngroups; i++) {
        group_t *g = &plan->groups[i];
        int keep[DB_RMA_LINE_MAX];
        size_t n = 0;
        int64_t before = sqlite3_total_changes64(db->sql);
        for (size_t k = 0; k < g->n && n < DB_RMA_LINE_MAX; k++)
            keep[n++] = rows->seen[g->first + k].rma_line;
        r = db_rma_keep_lines(db, rows->seen[g->first].number, keep, n);
        if (r == 0) {
            g->changed |= sqlite3_total_changes64(db->sql) > before;
            if (g->inserted)
                rep->inserted++;
            else if (g->changed)
                rep->updated++;
            else
                rep->unchanged++;
        }
    }
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

int db_rma_import_csv(db_t *db, const char *text, size_t len, const regex_t *number_re,
                      db_import_report_t *rep, char **errmsg)
{
    csv_t c = { text, text + len, 1 }, data;
    record_t rec = { 0 };
    header_t h = { .ncols = 0 };
    errors_t errors = { .limit = 2 * DB_IMPORT_MAX_ERRORS };
    rows_t rows = { 0 };
    plan_t plan = { 0 };
    db_rma_t *rma = NULL;
    regex_t own;
    const regex_t *re = number_re;
    int r;

    memset(rep, 0, sizeof(*rep));
    *errmsg = NULL;
    if (len > DB_IMPORT_MAX_BYTES) {
        if (asprintf(errmsg, "file larger than %u bytes", DB_IMPORT_MAX_BYTES) < 0)
            *errmsg = NULL;
        return -E2BIG;
    }
    if (db_in_transaction(db)) {
        *errmsg = strdup("import: a transaction is already open");
        return -EINVAL;
    }
    if (!(rma = malloc(sizeof(*rma))))
        return -ENOMEM;
    if (!re) {
        if (db_rma_default_re(&own) < 0) {
            free(rma);
            return -ENOMEM;
        }
        re = &own;
    }
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        c.p += 3;
    data = c;

    /* Pass 1: read and check everything. */
    r = read_header(&c, &rec, &h, &errors);
    if (r != 0)
        goto checked;   /* rows cannot be read without a header */
    data = c;
    while ((r = next_record(&c, &rec)) == 1) {
        int n;

        if (++rep->rows > DB_IMPORT_MAX_ROWS) {
            rep->rows--;
            r = add_error(&errors, rec.line, "more than %d rows: split the file",
                          DB_IMPORT_MAX_ROWS);
            break;
        }
        n = row_to_rma(&h, &rec, re, number_re ? NULL : DB_RMA_NUMBER_PATTERN, rma, &errors);
        if (n < 0) {
            r = n;
            break;
        }
        /* Remember every number that parsed, even on a bad row, for the checks
         * across the rows of an RMA. */
        if (rec.nf == h.ncols && !rec.error && rma->number[0]
            && (r = remember_row(&rows, rma, rec.line, rep->rows - 1)) < 0)
            break;
    }
    if (r == 0)
        r = check_across_rows(db, &rows, &errors);

checked:
    free(rec.buf);
    free(rma);
    if (r >= 0 && errors.total > 0)
        r = errors_to_report(&errors, rep, errmsg) < 0 ? -ENOMEM : -EINVAL;
    else if (r >= 0 && (r = plan_make(&rows, rep->rows, &plan)) == 0)
        r = apply(db, data, &h, re, &rows, &plan, rep, errmsg);
    if (r == -ENOMEM && !*errmsg)
        *errmsg = strdup("import: out of memory");
    else if (r < 0 && !*errmsg)
        *errmsg = strdup(db_errmsg(db));
    plan_free(&plan);
    rows_free(&rows);
    errors_free(&errors);
    if (re == &own)
        regfree(&own);
    return r;
}
