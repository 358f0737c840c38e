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
                          "vendor, model, family, expected_serial, purchased, shipped, invoiced, "
                          "order_value, warranty_months, has_storage_media, proof_of_purchase)", q), n++;
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

/* ------------------------------------------------------------ duplicates ------ */

typedef struct {
    char number[DB_RMA_NUMBER_MAX + 1];
    unsigned line;
} seen_t;

static int seen_cmp(const void *a, const void *b)
{
    const seen_t *x = a, *y = b;
    int c = strcmp(x->number, y->number);

    if (c)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* Report every number that occurs on more than one line. */
static int report_duplicates(seen_t *seen, size_t n, errors_t *errors)
{
    if (n < 2)
        return 0;
    qsort(seen, n, sizeof(*seen), seen_cmp);
    for (size_t i = 1; i < n; i++) {
        size_t first = i - 1;
        while (first > 0 && strcmp(seen[first - 1].number, seen[i].number) == 0)
            first--;
        if (strcmp(seen[first].number, seen[i].number) == 0) {
            char *q = db_quote(seen[i].number);
            int r = q ? add_error(errors, seen[i].line, "number: %s already on line %u", q,
                                  seen[first].line)
                      : -ENOMEM;
            free(q);
            if (r < 0)
                return r;
        }
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

/* Pass 2: upsert every row of a file pass 1 found clean, in one transaction. */
static int apply(db_t *db, csv_t c, const header_t *h, const regex_t *re,
                 db_import_report_t *rep, char **errmsg)
{
    record_t rec = { 0 };
    errors_t none = { .limit = 1 };
    db_rma_t rma;
    int r;

    r = db_begin(db);
    while (r == 0 && (r = next_record(&c, &rec)) == 1) {
        db_upsert_t what;
        r = row_to_rma(h, &rec, re, NULL, &rma, &none);
        if (r > 0) {   /* cannot happen: pass 1 read the same text */
            r = db_fail_msg(db, -EIO, "%s", none.v[0].msg);
            break;
        }
        if (r == 0)
            r = db_rma_upsert(db, &rma, &what);
        if (r == 0) {
            if (what == DB_UPSERT_INSERTED)
                rep->inserted++;
            else if (what == DB_UPSERT_UPDATED)
                rep->updated++;
            else
                rep->unchanged++;
        }
    }
    free(rec.buf);
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
    seen_t *seen = NULL;
    size_t nseen = 0, capseen = 0;
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
    if (!re) {
        if (db_rma_default_re(&own) < 0)
            return -ENOMEM;
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
        db_rma_t rma;
        int n;

        if (++rep->rows > DB_IMPORT_MAX_ROWS) {
            rep->rows--;
            r = add_error(&errors, rec.line, "more than %d rows: split the file",
                          DB_IMPORT_MAX_ROWS);
            break;
        }
        n = row_to_rma(&h, &rec, re, number_re ? NULL : DB_RMA_NUMBER_PATTERN, &rma, &errors);
        if (n < 0) {
            r = n;
            break;
        }
        /* Remember every number that parsed, even on a bad row, for duplicates. */
        if (rec.nf == h.ncols && !rec.error && rma.number[0]) {
            if (nseen == capseen) {
                size_t ncap = capseen ? capseen * 2 : 256;
                seen_t *ns = realloc(seen, ncap * sizeof(*ns));
                if (!ns) {
                    r = -ENOMEM;
                    break;
                }
                seen = ns;
                capseen = ncap;
            }
            memcpy(seen[nseen].number, rma.number, sizeof(rma.number));
            seen[nseen++].line = rec.line;
        }
    }
    if (r == 0)
        r = report_duplicates(seen, nseen, &errors);

checked:
    free(rec.buf);
    free(seen);
    if (r >= 0 && errors.total > 0)
        r = errors_to_report(&errors, rep, errmsg) < 0 ? -ENOMEM : -EINVAL;
    else if (r >= 0)
        r = apply(db, data, &h, re, rep, errmsg);
    if (r == -ENOMEM && !*errmsg)
        *errmsg = strdup("import: out of memory");
    errors_free(&errors);
    if (re == &own)
        regfree(&own);
    return r;
}
