/*
 * RMAs: the fields, their text forms and checks (shared by the CSV import and the
 * control socket's JSON message), and the rmas table queries.
 */
#include "db/db_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const db_rma_columns[RMA_COL_COUNT] = {
    [RMA_COL_NUMBER] = "number",
    [RMA_COL_ISSUED] = "issued",
    [RMA_COL_KIND] = "kind",
    [RMA_COL_VENDOR] = "vendor",
    [RMA_COL_MODEL] = "model",
    [RMA_COL_FAMILY] = "family",
    [RMA_COL_EXPECTED_SERIAL] = "expected_serial",
    [RMA_COL_PURCHASED] = "purchased",
    [RMA_COL_SHIPPED] = "shipped",
    [RMA_COL_INVOICED] = "invoiced",
    [RMA_COL_ORDER_VALUE] = "order_value",
    [RMA_COL_WARRANTY_MONTHS] = "warranty_months",
    [RMA_COL_HAS_STORAGE_MEDIA] = "has_storage_media",
    [RMA_COL_PROOF_OF_PURCHASE] = "proof_of_purchase",
};

static const char *const kind_names[] = {
    [DB_RMA_KIND_WARRANTY] = "warranty",
    [DB_RMA_KIND_CREDIT] = "credit",
    [DB_RMA_KIND_ADVANCE_REPLACEMENT] = "advance_replacement",
    [DB_RMA_KIND_OTC_EXCHANGE] = "otc_exchange",
};
#define KIND_MAX DB_RMA_KIND_OTC_EXCHANGE

#define MONTHS_MAX 1200
#define ORDER_VALUE_MAX 1e15   /* beyond this a double no longer holds cents exactly */

void db_rma_init(db_rma_t *rma)
{
    memset(rma, 0, sizeof(*rma));
    rma->issued = rma->purchased = rma->shipped = rma->invoiced = CALDATE_NONE;
    rma->kind = DB_RMA_KIND_UNSET;
    rma->warranty_months = DB_UNSET;
    rma->has_storage_media = DB_UNSET;
    rma->proof_of_purchase = DB_UNSET;
    rma->status = DB_RMA_OPEN;
    rma->imported_at = rma->updated_at = DB_TIME_NONE;
}

const char *db_rma_kind_name(db_rma_kind_t kind)
{
    if (kind <= DB_RMA_KIND_UNSET || kind > KIND_MAX)
        return NULL;
    return kind_names[kind];
}

int db_rma_kind_parse(const char *s, db_rma_kind_t *out)
{
    for (int k = DB_RMA_KIND_WARRANTY; k <= KIND_MAX; k++) {
        if (strcasecmp(s, kind_names[k]) == 0) {
            *out = (db_rma_kind_t)k;
            return 0;
        }
    }
    return -EINVAL;
}

int db_rma_column(const char *name)
{
    for (int c = 0; c < RMA_COL_COUNT; c++)
        if (strcasecmp(name, db_rma_columns[c]) == 0)
            return c;
    return -1;
}

/* ------------------------------------------------------------- text forms ----- */

/* Set *errmsg to "column: <fmt ...>" and return -EINVAL (-ENOMEM if it cannot). */
static int fail(char **errmsg, int col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char **errmsg, int col, const char *fmt, ...)
{
    va_list ap;
    char *what = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&what, fmt, ap);
    va_end(ap);
    if (n < 0 || asprintf(errmsg, "%s: %s", db_rma_columns[col], what) < 0) {
        if (n >= 0)
            free(what);
        *errmsg = NULL;
        return -ENOMEM;
    }
    free(what);
    return -EINVAL;
}

/* "column: expected <expected>, got "<value>"". */
static int fail_got(char **errmsg, int col, const char *expected, const char *value)
{
    char *q = db_quote(value);
    int r;

    if (!q)
        return *errmsg = NULL, -ENOMEM;
    r = fail(errmsg, col, "expected %s, got %s", expected, q);
    free(q);
    return r;
}

/* Text a person or a label can show: UTF-8 without control characters. */
static const char *text_problem(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return "control character in value";
    if (!db_utf8_valid(s, len))
        return "not valid UTF-8";
    return NULL;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = { "true", "yes", "1" }, *const no[] = { "false", "no", "0" };

    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(s, no[i]) == 0)
            return *out = 0, 0;
    }
    return -EINVAL;
}

/* A plain decimal: digits, optionally '.' and digits. No sign, exponent, hex, inf. */
static int parse_amount(const char *s, double *out)
{
    const char *p = s;
    size_t digits = 0;

    while (*p >= '0' && *p <= '9')
        p++, digits++;
    if (digits == 0)
        return -EINVAL;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return -EINVAL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p || digits > 15)
        return -EINVAL;
    *out = strtod(s, NULL);
    return 0;
}

static int parse_months(const char *s, int *out)
{
    int v = 0;

    if (!*s || strlen(s) > 4)
        return -EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (*p - '0');
    }
    if (v > MONTHS_MAX)
        return -EINVAL;
    *out = v;
    return 0;
}

static caldate_t *date_field(db_rma_t *rma, int col)
{
    switch (col) {
    case RMA_COL_ISSUED: return &rma->issued;
    case RMA_COL_PURCHASED: return &rma->purchased;
    case RMA_COL_SHIPPED: return &rma->shipped;
    case RMA_COL_INVOICED: return &rma->invoiced;
    default: return NULL;
    }
}

static char *text_field(db_rma_t *rma, int col, size_t *cap)
{
    switch (col) {
    case RMA_COL_NUMBER: *cap = sizeof(rma->number); return rma->number;
    case RMA_COL_VENDOR: *cap = sizeof(rma->vendor); return rma->vendor;
    case RMA_COL_MODEL: *cap = sizeof(rma->model); return rma->model;
    case RMA_COL_FAMILY: *cap = sizeof(rma->family); return rma->family;
    case RMA_COL_EXPECTED_SERIAL: *cap = sizeof(rma->expected_serial); return rma->expected_serial;
    default: return NULL;
    }
}

/* Make the field absent. */
static void clear_column(db_rma_t *rma, int col)
{
    caldate_t *d = date_field(rma, col);
    size_t cap;
    char *t = text_field(rma, col, &cap);

    if (d)
        *d = CALDATE_NONE;
    else if (t)
        t[0] = '\0';
    else if (col == RMA_COL_KIND)
        rma->kind = DB_RMA_KIND_UNSET;
    else if (col == RMA_COL_ORDER_VALUE)
        rma->has_order_value = false, rma->order_value = 0;
    else if (col == RMA_COL_WARRANTY_MONTHS)
        rma->warranty_months = DB_UNSET;
    else if (col == RMA_COL_HAS_STORAGE_MEDIA)
        rma->has_storage_media = DB_UNSET;
    else if (col == RMA_COL_PROOF_OF_PURCHASE)
        rma->proof_of_purchase = DB_UNSET;
}

int db_rma_set_column(db_rma_t *rma, int col, const char *value, size_t len, char **errmsg)
{
    const char *problem;
    char *v;
    caldate_t *d;
    size_t cap;
    char *t;
    int r = 0;

    *errmsg = NULL;
    if (col < 0 || col >= RMA_COL_COUNT)
        return -ENOENT;
    while (len && (*value == ' ' || *value == '\t'))
        value++, len--;
    while (len && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    if (len > DB_IMPORT_MAX_FIELD)
        return fail(errmsg, col, "longer than %d bytes", DB_IMPORT_MAX_FIELD);
    if ((problem = text_problem(value, len)))
        return fail(errmsg, col, "%s", problem);
    if (len == 0) {
        clear_column(rma, col);
        return 0;
    }
    v = strndup(value, len);
    if (!v)
        return -ENOMEM;

    if ((d = date_field(rma, col))) {
        if (caldate_parse(v, d) < 0)
            r = fail_got(errmsg, col, "YYYY-MM-DD", v);
    } else if ((t = text_field(rma, col, &cap))) {
        if (len >= cap) {
            r = fail(errmsg, col, "longer than %zu bytes", cap - 1);
        } else {
            memcpy(t, v, len + 1);
        }
    } else {
        switch (col) {
        case RMA_COL_KIND:
            if (db_rma_kind_parse(v, &rma->kind) < 0)
                r = fail_got(errmsg, col, "warranty|credit|advance_replacement|otc_exchange", v);
            break;
        case RMA_COL_ORDER_VALUE:
            if (parse_amount(v, &rma->order_value) < 0)
                r = fail_got(errmsg, col, "a plain decimal number >= 0 such as 1250.00", v);
            else
                rma->has_order_value = true;
            break;
        case RMA_COL_WARRANTY_MONTHS:
            if (parse_months(v, &rma->warranty_months) < 0)
                r = fail_got(errmsg, col, "whole months 0..1200", v);
            break;
        case RMA_COL_HAS_STORAGE_MEDIA:
            if (parse_bool(v, &rma->has_storage_media) < 0)
                r = fail_got(errmsg, col, "true|false|yes|no|1|0", v);
            break;
        case RMA_COL_PROOF_OF_PURCHASE:
            if (parse_bool(v, &rma->proof_of_purchase) < 0)
                r = fail_got(errmsg, col, "true|false|yes|no|1|0", v);
            break;
        }
    }
    free(v);
    return r;
}

int db_rma_set_field(db_rma_t *rma, const char *column, const char *value, char **errmsg)
{
    int col = db_rma_column(column);

    *errmsg = NULL;
    if (col < 0) {
        char *q = db_quote(column);
        if (!q || asprintf(errmsg, "unknown field %s", q) < 0)
            *errmsg = NULL;
        free(q);
        return -ENOENT;
    }
    return db_rma_set_column(rma, col, value, strlen(value), errmsg);
}

/* ------------------------------------------------------------- validation ----- */

int db_rma_default_re(regex_t *re)
{
    return regcomp(re, DB_RMA_NUMBER_PATTERN, REG_EXTENDED | REG_NOSUB) == 0 ? 0 : -ENOMEM;
}

/* Report one problem as "column: <fmt ...>"; returns 1, or a negative errno. */
static int problem(db_rma_problem_fn report, void *data, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int problem(db_rma_problem_fn report, void *data, int col, const char *fmt, ...)
{
    va_list ap;
    char *what = NULL, *msg = NULL;
    int n, r;

    va_start(ap, fmt);
    n = vasprintf(&what, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ENOMEM;
    n = asprintf(&msg, "%s: %s", db_rma_columns[col], what);
    free(what);
    if (n < 0)
        return -ENOMEM;
    r = report(data, col, msg);
    free(msg);
    return r < 0 ? r : 1;
}

static const char *text_field_problem(const char *s, size_t cap, bool required, char *buf, size_t buflen)
{
    size_t len = strnlen(s, cap);

    if (len == cap) {
        snprintf(buf, buflen, "longer than %zu bytes", cap - 1);
        return buf;
    }
    if (required && len == 0)
        return "required";
    return text_problem(s, len);
}

static bool date_ok(caldate_t d)
{
    return d == CALDATE_NONE
           || (d >= caldate_from_ymd(1900, 1, 1) && d <= caldate_from_ymd(9999, 12, 31));
}

int db_rma_check(const db_rma_t *rma, const regex_t *number_re, const char *pattern,
                 unsigned skip, db_rma_problem_fn report, void *data)
{
    struct {
        int col;
        const char *s;
        size_t cap;
        bool required;
    } texts[] = {
        { RMA_COL_NUMBER, rma->number, sizeof(rma->number), true },
        { RMA_COL_VENDOR, rma->vendor, sizeof(rma->vendor), true },
        { RMA_COL_MODEL, rma->model, sizeof(rma->model), false },
        { RMA_COL_FAMILY, rma->family, sizeof(rma->family), false },
        { RMA_COL_EXPECTED_SERIAL, rma->expected_serial, sizeof(rma->expected_serial), false },
    };
    struct {
        int col;
        caldate_t d;
    } dates[] = {
        { RMA_COL_ISSUED, rma->issued },
        { RMA_COL_PURCHASED, rma->purchased },
        { RMA_COL_SHIPPED, rma->shipped },
        { RMA_COL_INVOICED, rma->invoiced },
    };
    struct {
        int col;
        int v;
    } tris[] = {
        { RMA_COL_HAS_STORAGE_MEDIA, rma->has_storage_media },
        { RMA_COL_PROOF_OF_PURCHASE, rma->proof_of_purchase },
    };
    regex_t own;
    int n = 0, r;
    char buf[48];

#define SKIP(c) (skip & (1u << (c)))
#define PROBLEM(...)                                         \
    do {                                                     \
        if ((r = problem(report, data, __VA_ARGS__)) < 0)    \
            goto out;                                        \
        n++;                                                 \
    } while (0)

    if (!number_re) {
        if (db_rma_default_re(&own) < 0)
            return -ENOMEM;
        pattern = DB_RMA_NUMBER_PATTERN;
    }

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        const char *p;
        if (SKIP(texts[i].col))
            continue;
        p = text_field_problem(texts[i].s, texts[i].cap, texts[i].required, buf, sizeof(buf));
        if (p) {
            PROBLEM(texts[i].col, "%s", p);
        } else if (texts[i].col == RMA_COL_NUMBER
                   && regexec(number_re ? number_re : &own, rma->number, 0, NULL, 0) != 0) {
            char *q = db_quote(rma->number);
            if (!q) {
                r = -ENOMEM;
                goto out;
            }
            r = problem(report, data, RMA_COL_NUMBER, "%s does not match %s", q,
                        pattern ? pattern : "the RMA number pattern");
            free(q);
            if (r < 0)
                goto out;
            n++;
        }
    }
    for (size_t i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
        if (SKIP(dates[i].col))
            continue;
        if (dates[i].col == RMA_COL_ISSUED && dates[i].d == CALDATE_NONE)
            PROBLEM(RMA_COL_ISSUED, "required");
        else if (!date_ok(dates[i].d))
            PROBLEM(dates[i].col, "date out of range 1900-01-01..9999-12-31");
    }
    if (!SKIP(RMA_COL_KIND) && ((int)rma->kind < 0 || (int)rma->kind > KIND_MAX))
        PROBLEM(RMA_COL_KIND, "not a known kind");
    if (!SKIP(RMA_COL_ORDER_VALUE) && rma->has_order_value
        && !(isfinite(rma->order_value) && rma->order_value >= 0 && rma->order_value < ORDER_VALUE_MAX))
        PROBLEM(RMA_COL_ORDER_VALUE, "expected a number >= 0");
    if (!SKIP(RMA_COL_WARRANTY_MONTHS) && rma->warranty_months != DB_UNSET
        && (rma->warranty_months < 0 || rma->warranty_months > MONTHS_MAX))
        PROBLEM(RMA_COL_WARRANTY_MONTHS, "expected whole months 0..1200");
    for (size_t i = 0; i < sizeof(tris) / sizeof(tris[0]); i++)
        if (!SKIP(tris[i].col) && tris[i].v != DB_UNSET && tris[i].v != 0 && tris[i].v != 1)
            PROBLEM(tris[i].col, "expected true or false");
    r = n;
out:
    if (!number_re)
        regfree(&own);
    return r;
#undef SKIP
#undef PROBLEM
}

/* db_rma_validate keeps the first problem only. */
static int keep_first(void *data, int col, const char *msg)
{
    char **first = data;

    (void)col;
    if (!*first && !(*first = strdup(msg)))
        return -ENOMEM;
    return 0;
}

int db_rma_validate(const db_rma_t *rma, const regex_t *number_re, char **errmsg)
{
    char *first = NULL;
    int n = db_rma_check(rma, number_re, NULL, 0, keep_first, &first);

    *errmsg = NULL;
    if (n < 0) {
        free(first);
        return n;
    }
    if (n == 0)
        return 0;
    if (!first)
        return -ENOMEM;
    *errmsg = first;
    return -EINVAL;
}

/* ---------------------------------------------------------------- queries ----- */

#define RMA_COLS                                                                    \
    "number, issued, kind, vendor, model, family, expected_serial, purchased, "     \
    "shipped, invoiced, order_value, warranty_months, has_storage_media, "          \
    "proof_of_purchase"

static int bind_tri(sqlite3_stmt *st, int i, int v)
{
    return v == DB_UNSET ? sqlite3_bind_null(st, i) : sqlite3_bind_int(st, i, v);
}

int db_rma_upsert(db_t *db, const db_rma_t *rma, db_upsert_t *what)
{
    static const char exists_sql[] = "SELECT 1 FROM rmas WHERE number = ?1";
    /* The WHERE makes an identical row a no-op, so changes() tells updated from
     * unchanged. status is not in the SET list: a received RMA stays received. */
    static const char upsert_sql[] =
        "INSERT INTO rmas (" RMA_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)\n"
        "ON CONFLICT (number) DO UPDATE SET\n"
        "  issued = excluded.issued, kind = excluded.kind, vendor = excluded.vendor,\n"
        "  model = excluded.model, family = excluded.family,\n"
        "  expected_serial = excluded.expected_serial, purchased = excluded.purchased,\n"
        "  shipped = excluded.shipped, invoiced = excluded.invoiced,\n"
        "  order_value = excluded.order_value, warranty_months = excluded.warranty_months,\n"
        "  has_storage_media = excluded.has_storage_media,\n"
        "  proof_of_purchase = excluded.proof_of_purchase,\n"
        "  updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')\n"
        "WHERE issued IS NOT excluded.issued OR kind IS NOT excluded.kind\n"
        "   OR vendor IS NOT excluded.vendor OR model IS NOT excluded.model\n"
        "   OR family IS NOT excluded.family OR expected_serial IS NOT excluded.expected_serial\n"
        "   OR purchased IS NOT excluded.purchased OR shipped IS NOT excluded.shipped\n"
        "   OR invoiced IS NOT excluded.invoiced OR order_value IS NOT excluded.order_value\n"
        "   OR warranty_months IS NOT excluded.warranty_months\n"
        "   OR has_storage_media IS NOT excluded.has_storage_media\n"
        "   OR proof_of_purchase IS NOT excluded.proof_of_purchase";
    sqlite3_stmt *st;
    bool existed;
    int rc;

    st = db_stmt(db, ST_RMA_EXISTS, exists_sql);
    if (!st)
        return -EIO;
    rc = db_bind_text(st, 1, rma->number);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    existed = rc == SQLITE_ROW;
    db_stmt_done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(db, rc, "rma upsert");

    st = db_stmt(db, ST_RMA_UPSERT, upsert_sql);
    if (!st)
        return -EIO;
    rc = db_bind_text(st, 1, rma->number);
    if (rc == SQLITE_OK) rc = db_bind_date(st, 2, rma->issued);
    if (rc == SQLITE_OK) rc = db_bind_text(st, 3, db_rma_kind_name(rma->kind));
    if (rc == SQLITE_OK) rc = db_bind_text(st, 4, rma->vendor);
    if (rc == SQLITE_OK) rc = db_bind_text(st, 5, rma->model);
    if (rc == SQLITE_OK) rc = db_bind_text(st, 6, rma->family);
    if (rc == SQLITE_OK) rc = db_bind_text(st, 7, rma->expected_serial);
    if (rc == SQLITE_OK) rc = db_bind_date(st, 8, rma->purchased);
    if (rc == SQLITE_OK) rc = db_bind_date(st, 9, rma->shipped);
    if (rc == SQLITE_OK) rc = db_bind_date(st, 10, rma->invoiced);
    if (rc == SQLITE_OK)
        rc = rma->has_order_value ? sqlite3_bind_double(st, 11, rma->order_value)
                                  : sqlite3_bind_null(st, 11);
    if (rc == SQLITE_OK) rc = bind_tri(st, 12, rma->warranty_months);
    if (rc == SQLITE_OK) rc = bind_tri(st, 13, rma->has_storage_media);
    if (rc == SQLITE_OK) rc = bind_tri(st, 14, rma->proof_of_purchase);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    db_stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, rc, "rma upsert");
    if (what)
        *what = !existed ? DB_UPSERT_INSERTED
              : sqlite3_changes(db->sql) > 0 ? DB_UPSERT_UPDATED : DB_UPSERT_UNCHANGED;
    return 0;
}

static void column_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const char *s = (const char *)sqlite3_column_text(st, i);

    /* Only validated values are ever stored, so they fit; cut rather than overflow. */
    snprintf(dst, cap, "%s", s ? s : "");
}

static int column_tri(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? DB_UNSET : sqlite3_column_int(st, i);
}

int db_rma_get(db_t *db, const char *number, db_rma_t *out)
{
    static const char sql[] =
        "SELECT " RMA_COLS ", status, imported_at, updated_at FROM rmas WHERE number = ?1";
    sqlite3_stmt *st = db_stmt(db, ST_RMA_GET, sql);
    db_rma_t r;
    int rc;

    if (!st)
        return -EIO;
    rc = sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        db_stmt_done(st);
        return db_fail_msg(db, -ENOENT, "rma %s: not found", number);
    }
    if (rc != SQLITE_ROW) {
        db_stmt_done(st);
        return db_fail(db, rc, "rma get");
    }

    db_rma_init(&r);
    column_text(st, 0, r.number, sizeof(r.number));
    r.issued = db_column_date(st, 1);
    if (sqlite3_column_type(st, 2) != SQLITE_NULL)
        (void)db_rma_kind_parse((const char *)sqlite3_column_text(st, 2), &r.kind);
    column_text(st, 3, r.vendor, sizeof(r.vendor));
    column_text(st, 4, r.model, sizeof(r.model));
    column_text(st, 5, r.family, sizeof(r.family));
    column_text(st, 6, r.expected_serial, sizeof(r.expected_serial));
    r.purchased = db_column_date(st, 7);
    r.shipped = db_column_date(st, 8);
    r.invoiced = db_column_date(st, 9);
    if (sqlite3_column_type(st, 10) != SQLITE_NULL) {
        r.has_order_value = true;
        r.order_value = sqlite3_column_double(st, 10);
    }
    r.warranty_months = column_tri(st, 11);
    r.has_storage_media = column_tri(st, 12);
    r.proof_of_purchase = column_tri(st, 13);
    r.status = strcmp((const char *)sqlite3_column_text(st, 14), "received") == 0
                   ? DB_RMA_RECEIVED : DB_RMA_OPEN;
    r.imported_at = db_column_time(st, 15);
    r.updated_at = db_column_time(st, 16);
    db_stmt_done(st);
    *out = r;
    return 0;
}

int db_rma_mark_received(db_t *db, const char *number)
{
    static const char mark_sql[] =
        "UPDATE rmas SET status = 'received', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')\n"
        "WHERE number = ?1 AND status = 'open'";
    static const char status_sql[] = "SELECT status FROM rmas WHERE number = ?1";
    sqlite3_stmt *st = db_stmt(db, ST_RMA_MARK_RECEIVED, mark_sql);
    int rc;

    if (!st)
        return -EIO;
    rc = sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    db_stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, rc, "rma mark received");
    if (sqlite3_changes(db->sql) > 0)
        return 0;

    /* Nothing changed: tell unknown from already received. */
    st = db_stmt(db, ST_RMA_STATUS, status_sql);
    if (!st)
        return -EIO;
    rc = sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    db_stmt_done(st);
    if (rc == SQLITE_ROW)
        return db_fail_msg(db, -EALREADY, "rma %s: already received", number);
    if (rc == SQLITE_DONE)
        return db_fail_msg(db, -ENOENT, "rma %s: not found", number);
    return db_fail(db, rc, "rma mark received");
}
