/*
 * RMAs: the fields, their text forms and checks (shared by the CSV import and the
 * control socket's JSON message), and the rmas table queries.
 */
#include "db/db_internal.h"

#include <ctype.h>
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
    [RMA_COL_LINE] = "line",
    [RMA_COL_QUANTITY] = "quantity",
    [RMA_COL_EXPECTED_SERIALS] = "expected_serials",
};

static const char *const status_names[] = {
    [DB_RMA_OPEN] = "open",
    [DB_RMA_RECEIVED] = "received",
    [DB_RMA_PARTIAL] = "partially received",
    [DB_RMA_CLOSED] = "closed",
    [DB_RMA_EXPIRED] = "expired",
};
#define STATUS_COUNT (int)(sizeof(status_names) / sizeof(status_names[0]))

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
    rma->quantity = 1;
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

const char *db_rma_status_name(db_rma_status_t st)
{
    return (int)st >= 0 && (int)st < STATUS_COUNT ? status_names[st] : "invalid";
}

int db_rma_status_parse(const char *s, db_rma_status_t *out)
{
    if (strcasecmp(s, "partial") == 0)
        return *out = DB_RMA_PARTIAL, 0;
    for (int i = 0; i < STATUS_COUNT; i++)
        if (strcasecmp(s, status_names[i]) == 0)
            return *out = (db_rma_status_t)i, 0;
    return -EINVAL;
}

void db_serial_key(const char *s, size_t len, char *key, size_t cap)
{
    size_t n = 0;

    while (len && isspace((unsigned char)*s))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    for (size_t i = 0; i < len && n + 1 < cap; i++)
        key[n++] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 'a' + 'A') : s[i];
    if (cap)
        key[n] = '\0';
}

int db_serials_split(const char *list, int (*fn)(void *data, const char *s, size_t len),
                     void *data)
{
    int n = 0;

    if (!*list)
        return 0;
    for (const char *p = list;; ) {
        const char *bar = strchr(p, '|'), *end = bar ? bar : p + strlen(p);
        const char *a = p, *b = end;
        int r;

        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if ((r = fn(data, a, (size_t)(b - a))) < 0)
            return r;
        n++;
        if (!bar)
            return n;
        p = bar + 1;
    }
}

bool db_rma_field_known(const char *name)
{
    return db_rma_column(name) >= 0;
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

/* Whole number lo..hi, digits only. */
static int parse_uint(const char *s, int lo, int hi, int *out)
{
    int v = 0;

    if (!*s || strlen(s) > 5)
        return -EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (*p - '0');
    }
    if (v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_months(const char *s, int *out)
{
    return strlen(s) > 4 ? -EINVAL : parse_uint(s, 0, MONTHS_MAX, out);
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
    case RMA_COL_EXPECTED_SERIALS: *cap = sizeof(rma->expected_serials); return rma->expected_serials;
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
    else if (col == RMA_COL_LINE)
        rma->line = 0;
    else if (col == RMA_COL_QUANTITY)
        rma->quantity = 1;   /* the default: one unit */
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
        case RMA_COL_LINE:
            if (parse_uint(v, 1, DB_RMA_LINE_MAX, &rma->line) < 0)
                r = fail_got(errmsg, col, "a line number 1..9999", v);
            break;
        case RMA_COL_QUANTITY:
            if (parse_uint(v, 1, DB_RMA_QUANTITY_MAX, &rma->quantity) < 0)
                r = fail_got(errmsg, col, "a quantity 1..10000", v);
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

/* A line's serial list, split into keys. */
typedef struct {
    char (*keys)[DB_RMA_TEXT_MAX + 1];
    size_t n, cap;
    size_t empty, too_long;
} serial_list_t;

static int collect_serial(void *data, const char *s, size_t len)
{
    serial_list_t *l = data;

    if (len == 0) {
        l->empty++;
        return 0;
    }
    if (len > DB_RMA_TEXT_MAX) {
        l->too_long++;
        return 0;
    }
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        void *nk = realloc(l->keys, ncap * sizeof(*l->keys));
        if (!nk)
            return -ENOMEM;
        l->keys = nk;
        l->cap = ncap;
    }
    db_serial_key(s, len, l->keys[l->n++], sizeof(*l->keys));
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Every problem of a line's expected_serials list; returns their number or -ENOMEM. */
static int list_problems(const db_rma_t *rma, bool skip_quantity, db_rma_problem_fn report,
                         void *data)
{
    serial_list_t l = { 0 };
    int items = db_serials_split(rma->expected_serials, collect_serial, &l), n = 0, r = 0;

    if (items < 0) {
        r = items;
        goto out;
    }
    if (l.empty && (r = problem(report, data, RMA_COL_EXPECTED_SERIALS,
                                "empty serial in the list (a '|' too many)")) < 0)
        goto out;
    n += l.empty > 0;
    if (l.too_long && (r = problem(report, data, RMA_COL_EXPECTED_SERIALS,
                                   "a serial longer than %d bytes", DB_RMA_TEXT_MAX)) < 0)
        goto out;
    n += l.too_long > 0;
    if (!skip_quantity && items > rma->quantity) {
        r = problem(report, data, RMA_COL_EXPECTED_SERIALS,
                    "%d serials listed for a quantity of %d", items, rma->quantity);
        if (r < 0)
            goto out;
        n++;
    }
    if (l.n > 1)
        qsort(l.keys, l.n, sizeof(*l.keys), key_cmp);
    for (size_t i = 1; i < l.n; i++) {
        if (strcmp(l.keys[i], l.keys[i - 1]) != 0 || (i > 1 && strcmp(l.keys[i], l.keys[i - 2]) == 0))
            continue;
        char *q = db_quote(l.keys[i]);
        r = q ? problem(report, data, RMA_COL_EXPECTED_SERIALS, "serial %s listed twice", q)
              : -ENOMEM;
        free(q);
        if (r < 0)
            goto out;
        n++;
    }
    r = n;
out:
    free(l.keys);
    return r;
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
        { RMA_COL_EXPECTED_SERIALS, rma->expected_serials, sizeof(rma->expected_serials), false },
    };
    bool list_ok = true;
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
            if (texts[i].col == RMA_COL_EXPECTED_SERIALS)
                list_ok = false;
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
    if (!SKIP(RMA_COL_LINE) && (rma->line < 0 || rma->line > DB_RMA_LINE_MAX))
        PROBLEM(RMA_COL_LINE, "expected a line number 1..9999");
    if (!SKIP(RMA_COL_QUANTITY) && (rma->quantity < 1 || rma->quantity > DB_RMA_QUANTITY_MAX))
        PROBLEM(RMA_COL_QUANTITY, "expected a quantity 1..10000");
    if (!SKIP(RMA_COL_EXPECTED_SERIALS) && list_ok && rma->expected_serials[0]) {
        if (rma->expected_serial[0])
            PROBLEM(RMA_COL_EXPECTED_SERIALS, "give expected_serial or expected_serials, not both");
        if ((r = list_problems(rma, SKIP(RMA_COL_QUANTITY) != 0, report, data)) < 0)
            goto out;
        n += r;
    }
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

static int bind_tri(sqlite3_stmt *st, int i, int v)
{
    return v == DB_UNSET ? sqlite3_bind_null(st, i) : sqlite3_bind_int(st, i, v);
}

/* Number of rows changed by this connection so far (triggers included). */
static int64_t changes_so_far(db_t *db)
{
    return (int64_t)sqlite3_total_changes64(db->sql);
}

/* Run a statement that returns at most one integer; *v = 0 when no row. */
static int one_int(db_t *db, sqlite3_stmt *st, int rc, int64_t *v, const char *what)
{
    *v = 0;
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *v = sqlite3_column_int64(st, 0);
        rc = SQLITE_DONE;
    }
    db_stmt_done(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, rc, what);
}

static int rma_exists(db_t *db, const char *number, bool *existed)
{
    static const char sql[] = "SELECT 1 FROM rmas WHERE number = ?1";
    sqlite3_stmt *st = db_stmt(db, ST_RMA_EXISTS, sql);
    int64_t v;
    int r;

    if (!st)
        return -EIO;
    r = one_int(db, st, db_bind_text(st, 1, number), &v, "rma upsert");
    *existed = v == 1;
    return r;
}

/* The RMA's own fields. The WHERE makes an identical row a no-op; status and
 * closed_at are not in the SET list: a re-import neither receives nor reopens. */
static int header_put(db_t *db, const db_rma_t *rma)
{
    static const char sql[] =
        "INSERT INTO rmas (number, issued, kind, vendor, order_value, proof_of_purchase)\n"
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)\n"
        "ON CONFLICT (number) DO UPDATE SET\n"
        "  issued = excluded.issued, kind = excluded.kind, vendor = excluded.vendor,\n"
        "  order_value = excluded.order_value, proof_of_purchase = excluded.proof_of_purchase,\n"
        "  updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')\n"
        "WHERE issued IS NOT excluded.issued OR kind IS NOT excluded.kind\n"
        "   OR vendor IS NOT excluded.vendor OR order_value IS NOT excluded.order_value\n"
        "   OR proof_of_purchase IS NOT excluded.proof_of_purchase";
    sqlite3_stmt *st = db_stmt(db, ST_RMA_HEADER_UPSERT, sql);
    int rc;

    if (!st)
        return -EIO;
    rc = db_bind_text(st, 1, rma->number);
    if (rc == SQLITE_OK) rc = db_bind_date(st, 2, rma->issued);
    if (rc == SQLITE_OK) rc = db_bind_text(st, 3, db_rma_kind_name(rma->kind));
    if (rc == SQLITE_OK) rc = db_bind_text(st, 4, rma->vendor);
    if (rc == SQLITE_OK)
        rc = rma->has_order_value ? sqlite3_bind_double(st, 5, rma->order_value)
                                  : sqlite3_bind_null(st, 5);
    if (rc == SQLITE_OK) rc = bind_tri(st, 6, rma->proof_of_purchase);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    db_stmt_done(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, rc, "rma upsert");
}

/*
 * A completed receipt counts as a unit of its line unless its serial did not match:
 * a unit that is not the one authorised (a serial of another line or RMA) is held
 * for a person, and the RMA still waits for its own unit.
 */
#define COUNTS_AS_UNIT "coalesce(json_extract(checklist, '$.serial_match'), 1) <> 0"

/* Units received on a line (or, line 0, on the whole RMA). */
static int received_on(db_t *db, const char *number, int line, int64_t *n)
{
    static const char sql[] =
        "SELECT count(*) FROM receipts\n"
        "WHERE rma = ?1 AND state = 'completed' AND (?2 = 0 OR line = ?2) AND " COUNTS_AS_UNIT;
    sqlite3_stmt *st = db_stmt(db, ST_RMA_RECEIVED_ON_LINE, sql);
    int rc;

    if (!st)
        return -EIO;
    rc = db_bind_text(st, 1, number);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 2, line);
    return one_int(db, st, rc, n, "rma received units");
}

/* The canonical list stored for a line: items trimmed, joined by '|'; "" when none. */
typedef struct {
    char *out;
    size_t len, cap;
} join_t;

static int join_item(void *data, const char *s, size_t len)
{
    join_t *j = data;

    if (j->len + len + 2 > j->cap)
        return -E2BIG;
    if (j->len)
        j->out[j->len++] = '|';
    memcpy(j->out + j->len, s, len);
    j->len += len;
    j->out[j->len] = '\0';
    return 0;
}

static void canonical_serials(const db_rma_t *rma, char *out, size_t cap)
{
    join_t j = { out, 0, cap };

    out[0] = '\0';
    if (rma->expected_serials[0])
        (void)db_serials_split(rma->expected_serials, join_item, &j);
    else if (rma->expected_serial[0])
        (void)join_item(&j, rma->expected_serial, strlen(rma->expected_serial));
}

typedef struct {
    db_t *db;
    const char *number;
    int line;
} serial_put_t;

static int insert_serial(void *data, const char *s, size_t len)
{
    static const char sql[] =
        "INSERT INTO rma_serials (rma, line, serial, key) VALUES (?1, ?2, ?3, ?4)";
    serial_put_t *sp = data;
    sqlite3_stmt *st = db_stmt(sp->db, ST_RMA_SERIAL_INSERT, sql);
    char key[DB_RMA_TEXT_MAX + 1];
    int rc;

    if (!st)
        return -EIO;
    db_serial_key(s, len, key, sizeof(key));
    rc = db_bind_text(st, 1, sp->number);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 2, sp->line);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 3, s, (int)len, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 4, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    db_stmt_done(st);
    return rc == SQLITE_DONE ? 0 : db_fail(sp->db, rc, "rma serial insert");
}

/*
 * Insert or update one line; its serial rows follow its list. *grew: the line is new
 * or authorises more units than before.
 */
static int line_put(db_t *db, const db_rma_t *rma, int line, bool *grew)
{
    static const char prev_sql[] =
        "SELECT quantity, coalesce(serials, '') FROM rma_lines WHERE rma = ?1 AND line = ?2";
    static const char sql[] =
        "INSERT INTO rma_lines (rma, line, model, family, purchased, shipped, invoiced,\n"
        "                       warranty_months, has_storage_media, quantity, serials)\n"
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)\n"
        "ON CONFLICT (rma, line) DO UPDATE SET\n"
        "  model = excluded.model, family = excluded.family, purchased = excluded.purchased,\n"
        "  shipped = excluded.shipped, invoiced = excluded.invoiced,\n"
        "  warranty_months = excluded.warranty_months,\n"
        "  has_storage_media = excluded.has_storage_media, quantity = excluded.quantity,\n"
        "  serials = excluded.serials\n"
        "WHERE model IS NOT excluded.model OR family IS NOT excluded.family\n"
        "   OR purchased IS NOT excluded.purchased OR shipped IS NOT excluded.shipped\n"
        "   OR invoiced IS NOT excluded.invoiced OR warranty_months IS NOT excluded.warranty_months\n"
        "   OR has_storage_media IS NOT excluded.has_storage_media\n"
        "   OR quantity IS NOT excluded.quantity OR serials IS NOT excluded.serials";
    static const char del_sql[] = "DELETE FROM rma_serials WHERE rma = ?1 AND line = ?2";
    char serials[DB_RMA_SERIALS_MAX + 1];
    bool existed = false, same_serials = false;
    int prev_qty = 0, rc;
    int64_t in;
    sqlite3_stmt *st;
    int r;

    canonical_serials(rma, serials, sizeof(serials));
    st = db_stmt(db, ST_RMA_LINE_SERIALS, prev_sql);
    if (!st)
        return -EIO;
    rc = db_bind_text(st, 1, rma->number);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 2, line);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        existed = true;
        prev_qty = sqlite3_column_int(st, 0);
        same_serials = strcmp((const char *)sqlite3_column_text(st, 1), serials) == 0;
        rc = SQLITE_DONE;
    }
    db_stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, rc, "rma line");

    if (existed && rma->quantity < prev_qty) {
        if ((r = received_on(db, rma->number, line, &in)) < 0)
            return r;
        if (in > rma->quantity)
            return db_fail_msg(db, -EPERM, "%s line %d: %lld units already received, more than "
                               "the quantity %d imported", rma->number, line, (long long)in,
                               rma->quantity);
    }

    st = db_stmt(db, ST_RMA_LINE_UPSERT, sql);
    if (!st)
        return -EIO;
    rc = db_bind_text(st, 1, rma->number);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 2, line);
    if (rc == SQLITE_OK) rc = db_bind_text(st, 3, rma->model);
    if (rc == SQLITE_OK) rc = db_bind_text(st, 4, rma->family);
    if (rc == SQLITE_OK) rc = db_bind_date(st, 5, rma->purchased);
    if (rc == SQLITE_OK) rc = db_bind_date(st, 6, rma->shipped);
    if (rc == SQLITE_OK) rc = db_bind_date(st, 7, rma->invoiced);
    if (rc == SQLITE_OK) rc = bind_tri(st, 8, rma->warranty_months);
    if (rc == SQLITE_OK) rc = bind_tri(st, 9, rma->has_storage_media);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 10, rma->quantity);
    if (rc == SQLITE_OK) rc = db_bind_text(st, 11, serials);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    db_stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, rc, "rma line upsert");

    if (!same_serials) {
        serial_put_t sp = { db, rma->number, line };
        if (existed) {
            st = db_stmt(db, ST_RMA_SERIALS_DELETE, del_sql);
            if (!st)
                return -EIO;
            rc = db_bind_text(st, 1, rma->number);
            if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 2, line);
            if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
            db_stmt_done(st);
            if (rc != SQLITE_DONE)
                return db_fail(db, rc, "rma serials delete");
        }
        if ((r = db_serials_split(serials, insert_serial, &sp)) < 0)
            return r;
    }
    *grew = !existed || rma->quantity > prev_qty;
    return 0;
}

/*
 * After lines changed: received when every authorised unit is in; open again when
 * a line now authorises more (the vendor extended the RMA).
 */
static int status_settle(db_t *db, const char *number, bool grew)
{
    static const char counts_sql[] =
        "SELECT (SELECT coalesce(sum(quantity), 0) FROM rma_lines WHERE rma = ?1),\n"
        "       (SELECT count(*) FROM receipts WHERE rma = ?1 AND state = 'completed'\n"
        "          AND " COUNTS_AS_UNIT "),\n"
        "       (SELECT status FROM rmas WHERE number = ?1)";
    static const char set_sql[] =
        "UPDATE rmas SET status = ?2, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')\n"
        "WHERE number = ?1 AND status IS NOT ?2";
    sqlite3_stmt *st = db_stmt(db, ST_RMA_COUNTS, counts_sql);
    int64_t authorised, received;
    bool was_received;
    const char *to = NULL;
    int rc;

    if (!st)
        return -EIO;
    rc = db_bind_text(st, 1, number);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        db_stmt_done(st);
        return db_fail(db, rc, "rma status");
    }
    authorised = sqlite3_column_int64(st, 0);
    received = sqlite3_column_int64(st, 1);
    was_received = sqlite3_column_text(st, 2)
                   && strcmp((const char *)sqlite3_column_text(st, 2), "received") == 0;
    db_stmt_done(st);

    if (!was_received && received > 0 && received >= authorised)
        to = "received";
    else if (was_received && grew && received < authorised)
        to = "open";
    if (!to)
        return 0;
    st = db_stmt(db, ST_RMA_REOPEN, set_sql);
    if (!st)
        return -EIO;
    rc = db_bind_text(st, 1, number);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    db_stmt_done(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, rc, "rma status");
}

static db_upsert_t upsert_result(bool existed, int64_t before, int64_t after)
{
    return !existed ? DB_UPSERT_INSERTED
         : after > before ? DB_UPSERT_UPDATED : DB_UPSERT_UNCHANGED;
}

int db_rma_upsert(db_t *db, const db_rma_t *rma, db_upsert_t *what)
{
    int64_t before = changes_so_far(db);
    bool existed, grew = false;
    int r;

    if ((r = rma_exists(db, rma->number, &existed)) < 0 || (r = header_put(db, rma)) < 0
        || (r = line_put(db, rma, rma->line > 0 ? rma->line : 1, &grew)) < 0
        || (r = status_settle(db, rma->number, grew)) < 0)
        return r;
    if (what)
        *what = upsert_result(existed, before, changes_so_far(db));
    return 0;
}

static int int_cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int keep_sorted(db_t *db, const char *number, const int *keep, size_t nkeep);

int db_rma_keep_lines(db_t *db, const char *number, const int *keep, size_t nkeep)
{
    int r;
    /* Sorted, so each stored line is looked up, not compared with every kept one (an
     * RMA may have 9999 lines). */
    int *sorted = nkeep ? malloc(nkeep * sizeof(*sorted)) : NULL;
    if (nkeep && !sorted)
        return -ENOMEM;
    if (nkeep) {
        memcpy(sorted, keep, nkeep * sizeof(*sorted));
        qsort(sorted, nkeep, sizeof(*sorted), int_cmp);
    }
    r = keep_sorted(db, number, sorted, nkeep);
    free(sorted);
    return r;
}

/* db_rma_keep_lines with keep sorted. */
static int keep_sorted(db_t *db, const char *number, const int *keep, size_t nkeep)
{
    static const char list_sql[] = "SELECT line FROM rma_lines WHERE rma = ?1 ORDER BY line";
    static const char del_sql[] = "DELETE FROM rma_lines WHERE rma = ?1 AND line = ?2";
    int gone[64], ngone, r, rc;
    sqlite3_stmt *st;

    /* Collected in batches, then deleted: the walk's statement cannot run beside the
     * delete. */
    do {
        ngone = 0;
        st = db_stmt(db, ST_RMA_LINE_NUMBERS, list_sql);
        if (!st)
            return -EIO;
        rc = db_bind_text(st, 1, number);
        while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            int line = sqlite3_column_int(st, 0);
            bool kept = nkeep && bsearch(&line, keep, nkeep, sizeof(*keep), int_cmp);
            if (!kept && ngone < (int)(sizeof(gone) / sizeof(gone[0])))
                gone[ngone++] = line;
            rc = SQLITE_OK;
        }
        db_stmt_done(st);
        if (rc != SQLITE_DONE && rc != SQLITE_OK)
            return db_fail(db, rc, "rma lines");
        for (int i = 0; i < ngone; i++) {
            int64_t in;
            if ((r = received_on(db, number, gone[i], &in)) < 0)
                return r;
            if (in > 0)
                return db_fail_msg(db, -EPERM, "%s: line %d has %lld unit%s received and is "
                                   "not in the import", number, gone[i], (long long)in,
                                   in == 1 ? "" : "s");
            st = db_stmt(db, ST_RMA_LINE_DELETE, del_sql);
            if (!st)
                return -EIO;
            rc = db_bind_text(st, 1, number);
            if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 2, gone[i]);
            if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
            db_stmt_done(st);
            if (rc != SQLITE_DONE)
                return db_fail(db, rc, "rma line delete");
        }
    } while (ngone == (int)(sizeof(gone) / sizeof(gone[0])));
    return status_settle(db, number, false);
}

int db_rma_replace(db_t *db, const db_rma_t *lines, size_t n, db_upsert_t *what)
{
    int64_t before = changes_so_far(db);
    bool existed, grew = false;
    int keep[DB_RMA_LINE_MAX], r;

    if (n == 0 || n > DB_RMA_LINE_MAX)
        return db_fail_msg(db, -EINVAL, "rma replace: 1 to %d lines", DB_RMA_LINE_MAX);
    if ((r = rma_exists(db, lines[0].number, &existed)) < 0 || (r = header_put(db, &lines[0])) < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        bool g = false;
        keep[i] = lines[i].line > 0 ? lines[i].line : (int)i + 1;
        if ((r = line_put(db, &lines[i], keep[i], &g)) < 0)
            return r;
        grew |= g;
    }
    if ((r = db_rma_keep_lines(db, lines[0].number, keep, n)) < 0
        || (r = status_settle(db, lines[0].number, grew)) < 0)
        return r;
    if (what)
        *what = upsert_result(existed, before, changes_so_far(db));
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

/* The columns read_row reads: the RMA r, its line l. */
#define RMA_LINE_COLS                                                                       \
    "r.number, r.issued, r.kind, r.vendor, r.order_value, r.proof_of_purchase, r.status, "  \
    "r.imported_at, r.updated_at, r.closed_at, "                                            \
    "l.line, l.model, l.family, l.purchased, l.shipped, l.invoiced, l.warranty_months, "    \
    "l.has_storage_media, l.quantity, l.serials, "                                          \
    "(SELECT count(*) FROM rma_lines WHERE rma = r.number), "                               \
    "(SELECT coalesce(sum(quantity), 0) FROM rma_lines WHERE rma = r.number), "             \
    "(SELECT count(*) FROM receipts WHERE rma = r.number AND state = 'completed' "          \
    "   AND " COUNTS_AS_UNIT "), "                                                          \
    "(SELECT count(*) FROM receipts WHERE rma = r.number AND state = 'completed' "          \
    "   AND line = l.line AND " COUNTS_AS_UNIT ")"

/* The first line of the RMA r (a one-line RMA's only line). */
#define FIRST_LINE "(SELECT min(line) FROM rma_lines WHERE rma = r.number)"

static void read_row(sqlite3_stmt *st, db_rma_t *out)
{
    db_rma_t r;

    db_rma_init(&r);
    column_text(st, 0, r.number, sizeof(r.number));
    r.issued = db_column_date(st, 1);
    if (sqlite3_column_type(st, 2) != SQLITE_NULL)
        (void)db_rma_kind_parse((const char *)sqlite3_column_text(st, 2), &r.kind);
    column_text(st, 3, r.vendor, sizeof(r.vendor));
    if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
        r.has_order_value = true;
        r.order_value = sqlite3_column_double(st, 4);
    }
    r.proof_of_purchase = column_tri(st, 5);
    r.imported_at = db_column_time(st, 7);
    r.updated_at = db_column_time(st, 8);
    r.line = sqlite3_column_int(st, 10);
    column_text(st, 11, r.model, sizeof(r.model));
    column_text(st, 12, r.family, sizeof(r.family));
    r.purchased = db_column_date(st, 13);
    r.shipped = db_column_date(st, 14);
    r.invoiced = db_column_date(st, 15);
    r.warranty_months = column_tri(st, 16);
    r.has_storage_media = column_tri(st, 17);
    r.quantity = sqlite3_column_type(st, 18) == SQLITE_NULL ? 0 : sqlite3_column_int(st, 18);
    column_text(st, 19, r.expected_serials, sizeof(r.expected_serials));
    /* One listed serial is the line's expected serial, as before lines. */
    if (r.expected_serials[0] && !strchr(r.expected_serials, '|')
        && strlen(r.expected_serials) < sizeof(r.expected_serial))
        memcpy(r.expected_serial, r.expected_serials, strlen(r.expected_serials) + 1);
    r.lines = sqlite3_column_int(st, 20);
    r.authorised = sqlite3_column_int(st, 21);
    r.received = sqlite3_column_int(st, 22);
    r.line_received = sqlite3_column_int(st, 23);
    if (sqlite3_column_type(st, 9) != SQLITE_NULL)
        r.status = DB_RMA_CLOSED;
    else if (strcmp((const char *)sqlite3_column_text(st, 6), "received") == 0)
        r.status = DB_RMA_RECEIVED;
    else
        r.status = r.received > 0 ? DB_RMA_PARTIAL : DB_RMA_OPEN;
    *out = r;
}

int db_rma_get_line(db_t *db, const char *number, int line, db_rma_t *out)
{
    static const char sql[] =
        "SELECT " RMA_LINE_COLS " FROM rmas r\n"
        "LEFT JOIN rma_lines l ON l.rma = r.number\n"
        "                     AND l.line = (CASE WHEN ?2 > 0 THEN ?2 ELSE " FIRST_LINE " END)\n"
        "WHERE r.number = ?1";
    sqlite3_stmt *st = db_stmt(db, ST_RMA_GET, sql);
    int rc;

    if (!st)
        return -EIO;
    rc = sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 2, line);
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
    if (line > 0 && sqlite3_column_type(st, 10) == SQLITE_NULL) {
        db_stmt_done(st);
        return db_fail_msg(db, -ENOENT, "rma %s: no line %d", number, line);
    }
    read_row(st, out);
    db_stmt_done(st);
    return 0;
}

int db_rma_get(db_t *db, const char *number, db_rma_t *out)
{
    return db_rma_get_line(db, number, 0, out);
}

/* Walk the rows of st (bound), one RMA line each. */
static int walk(db_t *db, sqlite3_stmt *st, int rc, db_rma_fn fn, void *data, int state,
                const char *what)
{
    db_rma_t *row = malloc(sizeof(*row));   /* ~4.6 KB: not on the stack per call */
    int r = 0;

    if (!row) {
        db_stmt_done(st);
        return db_fail_msg(db, -ENOMEM, "%s: out of memory", what);
    }
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_row(st, row);
        rc = SQLITE_OK;
        if (state >= 0 && state != DB_RMA_EXPIRED && (int)row->status != state)
            continue;
        if ((r = fn(row, data)) != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = db_fail(db, rc, what);
    db_stmt_done(st);
    free(row);
    return r;
}

int db_rma_foreach_line(db_t *db, const char *number, db_rma_fn fn, void *data)
{
    static const char sql[] =
        "SELECT " RMA_LINE_COLS " FROM rmas r JOIN rma_lines l ON l.rma = r.number\n"
        "WHERE r.number = ?1 ORDER BY l.line";
    sqlite3_stmt *st = db_stmt(db, ST_RMA_LINES, sql);

    if (!st)
        return -EIO;
    return walk(db, st, sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC), fn, data, -1,
                "rma lines");
}

int db_rma_list(db_t *db, int state, const char *vendor, db_rma_fn fn, void *data)
{
    static const char sql[] =
        "SELECT " RMA_LINE_COLS " FROM rmas r\n"
        "LEFT JOIN rma_lines l ON l.rma = r.number AND l.line = " FIRST_LINE "\n"
        "WHERE ?1 IS NULL OR r.vendor = ?1 COLLATE NOCASE ORDER BY r.number";
    sqlite3_stmt *st = db_stmt(db, ST_RMA_LIST, sql);

    if (!st)
        return -EIO;
    return walk(db, st, db_bind_text(st, 1, vendor), fn, data, state, "rma list");
}

int db_rma_unit_number(db_t *db, const char *number, int64_t receipt_id, int *k)
{
    static const char sql[] =
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM receipts WHERE id = ?2 AND rma = ?1\n"
        "                         AND state = 'completed' AND " COUNTS_AS_UNIT ")\n"
        "  THEN (SELECT count(*) FROM receipts WHERE rma = ?1 AND id <= ?2\n"
        "        AND state = 'completed' AND " COUNTS_AS_UNIT ") ELSE 0 END";
    sqlite3_stmt *st = db_stmt(db, ST_RMA_UNIT_NUMBER, sql);
    int64_t v;
    int rc, r;

    if (!st)
        return -EIO;
    rc = sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, receipt_id);
    if ((r = one_int(db, st, rc, &v, "rma unit number")) < 0)
        return r;
    *k = (int)v;
    return 0;
}

/*
 * Run st, a one-value query over (?1 the RMA number, ?2 the serial's key as
 * db_serial_key makes it). Returns 0 with *v, -ENOENT when no row, or an error.
 */
static int serial_query(db_t *db, sqlite3_stmt *st, const char *number, const char *serial,
                        int64_t *v, const char *what)
{
    char key[DB_RMA_TEXT_MAX + 1];
    int rc, r;

    if (!st)
        return -EIO;
    db_serial_key(serial, strlen(serial), key, sizeof(key));
    rc = sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    if ((r = one_int(db, st, rc, v, what)) < 0)
        return r;
    return *v == 0 ? -ENOENT : 0;
}

int db_rma_serial_line(db_t *db, const char *number, const char *serial, int *line)
{
    static const char sql[] =
        "SELECT line FROM rma_serials WHERE rma = ?1 AND key = ?2 ORDER BY line LIMIT 1";
    int64_t v;
    int r = serial_query(db, db_stmt(db, ST_RMA_SERIAL_LINE, sql), number, serial, &v,
                         "rma serial line");
    if (r == 0)
        *line = (int)v;
    return r;
}

int db_rma_serial_received(db_t *db, const char *number, const char *serial,
                           int64_t *receipt_id)
{
    /* The key as db_serial_key makes it: trimmed of C-locale white space, ASCII
     * upper case (SQLite's upper() folds ASCII only). */
    static const char sql[] =
        "SELECT id FROM receipts WHERE rma = ?1 AND state = 'completed'\n"
        "  AND upper(trim(serial, ' ' || char(9, 10, 11, 12, 13))) = ?2 ORDER BY id LIMIT 1";
    int64_t v;
    int r = serial_query(db, db_stmt(db, ST_RMA_SERIAL_RECEIVED, sql), number, serial, &v,
                         "rma serial received");
    if (r == 0)
        *receipt_id = v;
    return r;
}

/* Nothing changed: tell unknown, closed and received apart. */
static int why_unchanged(db_t *db, const char *number, const char *what)
{
    static const char status_sql[] =
        "SELECT status, closed_at IS NOT NULL FROM rmas WHERE number = ?1";
    sqlite3_stmt *st = db_stmt(db, ST_RMA_STATUS, status_sql);
    int rc, closed = 0;

    if (!st)
        return -EIO;
    rc = sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        closed = sqlite3_column_int(st, 1);
    db_stmt_done(st);
    if (rc == SQLITE_ROW)
        return db_fail_msg(db, -EALREADY, "rma %s: %s", number,
                           closed ? "closed" : "already received");
    if (rc == SQLITE_DONE)
        return db_fail_msg(db, -ENOENT, "rma %s: not found", number);
    return db_fail(db, rc, what);
}

int db_rma_mark_received(db_t *db, const char *number)
{
    static const char mark_sql[] =
        "UPDATE rmas SET status = 'received', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')\n"
        "WHERE number = ?1 AND status = 'open'";
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
    return why_unchanged(db, number, "rma mark received");
}

int db_rma_close(db_t *db, const char *number, const char *reason, int64_t now_ms)
{
    static const char sql[] =
        "UPDATE rmas SET closed_at = ?2, closed_reason = ?3,\n"
        "                updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')\n"
        "WHERE number = ?1 AND status = 'open' AND closed_at IS NULL";
    sqlite3_stmt *st;
    int rc;

    if (!reason || !*reason)
        return db_fail_msg(db, -EINVAL, "rma close: a reason is required");
    st = db_stmt(db, ST_RMA_CLOSE, sql);
    if (!st)
        return -EIO;
    rc = sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = db_bind_time(st, 2, now_ms);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    db_stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, rc, "rma close");
    if (sqlite3_changes(db->sql) > 0)
        return 0;
    return why_unchanged(db, number, "rma close");
}

int db_rma_closed(db_t *db, const char *number, char **reason, int64_t *at_ms)
{
    static const char sql[] =
        "SELECT closed_reason, closed_at FROM rmas WHERE number = ?1 AND closed_at IS NOT NULL";
    sqlite3_stmt *st = db_stmt(db, ST_RMA_CLOSED, sql);
    int rc, oom = 0;

    if (!st)
        return -EIO;
    rc = sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        char *why = db_column_strdup(st, 0, &oom);
        int64_t at = db_column_time(st, 1);
        db_stmt_done(st);
        if (oom)
            return db_fail_msg(db, -ENOMEM, "rma closed: out of memory");
        *reason = why;
        *at_ms = at;
        return 0;
    }
    db_stmt_done(st);
    if (rc == SQLITE_DONE)
        return -ENOENT;
    return db_fail(db, rc, "rma closed");
}
