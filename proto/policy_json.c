/*
 * Case JSON -> policy_case_t and policy_result_t -> result JSON (spec policy-eval).
 *
 * Case parsing is strict on purpose: a typo in a field name or an enum value must not
 * silently change a disposition, so every unknown key and every value outside its
 * set is an error naming the field.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/policy_json.h"

/* Case texts are one small object; this bounds what a client can make us parse. */
#define CASE_MAX_BYTES (256u * 1024u)
#define CASE_MAX_LIST 256

typedef struct {
    char *err;
    const policy_t *p;   /* whose vocabulary the case may use; NULL: the built-in one */
} pj_t;

static int err(pj_t *pj, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int err(pj_t *pj, const char *fmt, ...)
{
    if (!pj->err) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&pj->err, fmt, ap) < 0)
            pj->err = NULL;
        va_end(ap);
    }
    return -EINVAL;
}

/* "got ..." text for a JSON value: strings quoted (shortened), others by kind. */
static void got(json_t *v, char *buf, size_t cap)
{
    switch (json_typeof(v)) {
    case JSON_STRING: {
        const char *s = json_string_value(v);
        if (strlen(s) > 40)
            snprintf(buf, cap, "\"%.40s...\"", s);
        else
            snprintf(buf, cap, "\"%s\"", s);
        break;
    }
    case JSON_INTEGER: snprintf(buf, cap, "%lld", (long long)json_integer_value(v)); break;
    case JSON_REAL: snprintf(buf, cap, "%g", json_real_value(v)); break;
    case JSON_TRUE: snprintf(buf, cap, "true"); break;
    case JSON_FALSE: snprintf(buf, cap, "false"); break;
    case JSON_NULL: snprintf(buf, cap, "null"); break;
    case JSON_ARRAY: snprintf(buf, cap, "an array"); break;
    case JSON_OBJECT: snprintf(buf, cap, "an object"); break;
    }
}

static int expect(pj_t *pj, const char *field, const char *what, json_t *v)
{
    char g[64];
    got(v, g, sizeof(g));
    return err(pj, "%s: expected %s, got %s", field, what, g);
}

static int check_keys(pj_t *pj, json_t *obj, const char *prefix, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, k) == 0)
                ok = 1;
        /* The policy's own facts are fields of their section ("inspection.panel_grade"). */
        const enumdef_t *vals;
        size_t pl = strlen(prefix);
        for (size_t i = 0; !ok && *prefix && i < policy_custom_fact_count(pj->p); i++) {
            const char *fn = policy_custom_fact(pj->p, i, &vals);
            ok = strncmp(fn, prefix, pl) == 0 && fn[pl] == '.' && strcmp(fn + pl + 1, k) == 0;
        }
        if (!ok) {
            if (strlen(k) > 40)
                return err(pj, "%s%s%.40s...: unknown field", prefix, *prefix ? "." : "", k);
            return err(pj, "%s%s%s: unknown field", prefix, *prefix ? "." : "", k);
        }
    }
    return 0;
}

static int get_string(pj_t *pj, json_t *obj, const char *key, const char *field, char **out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return expect(pj, field, "a string", v);
    const char *s = json_string_value(v);
    if (strlen(s) > 256)
        return err(pj, "%s: longer than 256 characters", field);
    if (!(*out = strdup(s)))
        return -ENOMEM;
    return 0;
}

static int get_date(pj_t *pj, json_t *obj, const char *key, const char *field, caldate_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || caldate_parse(json_string_value(v), out) < 0)
        return expect(pj, field, "a date YYYY-MM-DD", v);
    return 0;
}

static int get_bool(pj_t *pj, json_t *obj, const char *key, const char *field, bool *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return expect(pj, field, "true or false", v);
    *out = json_is_true(v);
    return 0;
}

static int get_enum(pj_t *pj, json_t *obj, const char *key, const char *field,
                    const enumdef_t *def, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    int e = json_is_string(v) ? enumdef_find(def, json_string_value(v)) : -1;
    if (e < 0)
        return expect(pj, field, enumdef_expected(def), v);
    *out = e;
    return 0;
}

/* The policy's own facts of section `prefix` given in o (bool true/false, enum a name). */
static int parse_custom(pj_t *pj, json_t *o, const char *prefix, policy_case_t *c)
{
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < policy_custom_fact_count(pj->p); i++) {
        const enumdef_t *vals;
        const char *fn = policy_custom_fact(pj->p, i, &vals);
        if (strncmp(fn, prefix, pl) != 0 || fn[pl] != '.')
            continue;
        bool b = false;
        int e = -1, r;
        json_t *v = json_object_get(o, fn + pl + 1);
        if (!v || json_is_null(v))
            continue;
        if (vals) {
            if ((r = get_enum(pj, o, fn + pl + 1, fn, vals, &e)) < 0)
                return r;
            c->custom[i] = e;
        } else {
            if ((r = get_bool(pj, o, fn + pl + 1, fn, &b)) < 0)
                return r;
            c->custom[i] = b;
        }
    }
    return 0;
}

static int parse_rma(pj_t *pj, json_t *o, policy_case_t *c)
{
    static const char *const keys[] = { "number", "issued", "kind", "expected_serial",
                                        "order_value", "proof_of_purchase", "defect_discovered",
                                        NULL };
    if (!json_is_object(o))
        return expect(pj, "rma", "an object or null", o);
    if (check_keys(pj, o, "rma", keys) < 0)
        return -EINVAL;
    c->has_rma = true;
    int kind = c->rma.kind, r;
    if ((r = get_string(pj, o, "number", "rma.number", &c->rma.number)) < 0 ||
        (r = get_date(pj, o, "issued", "rma.issued", &c->rma.issued)) < 0 ||
        (r = get_date(pj, o, "defect_discovered", "rma.defect_discovered", &c->rma.defect_discovered)) < 0 ||
        (r = get_enum(pj, o, "kind", "rma.kind", &ENUM_RMA_KIND, &kind)) < 0 ||
        (r = get_string(pj, o, "expected_serial", "rma.expected_serial", &c->rma.expected_serial)) < 0 ||
        (r = get_bool(pj, o, "proof_of_purchase", "rma.proof_of_purchase", &c->rma.proof_of_purchase)) < 0)
        return r;
    c->rma.kind = (rma_kind_t)kind;
    json_t *v = json_object_get(o, "order_value");
    if (v && !json_is_null(v)) {
        if (!json_is_number(v) || json_number_value(v) < 0 || !isfinite(json_number_value(v)))
            return expect(pj, "rma.order_value", "a number >= 0", v);
        c->rma.has_order_value = true;
        c->rma.order_value = json_number_value(v);
    }
    return parse_custom(pj, o, "rma", c);
}

static int parse_product(pj_t *pj, json_t *o, policy_case_t *c)
{
    static const char *const keys[] = { "vendor", "model", "family", "purchased", "shipped",
                                        "invoiced", "warranty_months", "has_storage_media",
                                        "sample", "delivered", "refurbished", "previous_repair",
                                        NULL };
    if (!json_is_object(o))
        return expect(pj, "product", "an object", o);
    if (check_keys(pj, o, "product", keys) < 0)
        return -EINVAL;
    int r;
    if ((r = get_string(pj, o, "vendor", "product.vendor", &c->product.vendor)) < 0 ||
        (r = get_string(pj, o, "model", "product.model", &c->product.model)) < 0 ||
        (r = get_string(pj, o, "family", "product.family", &c->product.family)) < 0 ||
        (r = get_date(pj, o, "purchased", "product.purchased", &c->product.purchased)) < 0 ||
        (r = get_date(pj, o, "shipped", "product.shipped", &c->product.shipped)) < 0 ||
        (r = get_date(pj, o, "invoiced", "product.invoiced", &c->product.invoiced)) < 0 ||
        (r = get_bool(pj, o, "has_storage_media", "product.has_storage_media", &c->product.has_storage_media)) < 0 ||
        (r = get_bool(pj, o, "sample", "product.sample", &c->product.sample)) < 0 ||
        (r = get_date(pj, o, "delivered", "product.delivered", &c->product.delivered)) < 0 ||
        (r = get_bool(pj, o, "refurbished", "product.refurbished", &c->product.refurbished)) < 0)
        return r;
    json_t *pr = json_object_get(o, "previous_repair");
    if (pr && !json_is_null(pr)) {
        /* {"date": "2025-01-10", "kind": "replaced"}: both required, or the unit was never
         * repaired (null / absent). */
        static const char *const pkeys[] = { "date", "kind", NULL };
        if (!json_is_object(pr))
            return expect(pj, "product.previous_repair", "an object {date, kind} or null", pr);
        if (check_keys(pj, pr, "product.previous_repair", pkeys) < 0)
            return -EINVAL;
        int kind = -1;
        if ((r = get_date(pj, pr, "date", "product.previous_repair.date",
                          &c->product.previous_repair.date)) < 0 ||
            (r = get_enum(pj, pr, "kind", "product.previous_repair.kind", &ENUM_PREV_REPAIR,
                          &kind)) < 0)
            return r;
        if (c->product.previous_repair.date == CALDATE_NONE || kind < 0)
            return err(pj, "product.previous_repair: needs both date and kind (repaired|replaced)");
        c->product.previous_repair.kind = kind;
    }
    json_t *v = json_object_get(o, "warranty_months");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1200)
            return expect(pj, "product.warranty_months", "a whole number of months (0 to 1200)", v);
        c->product.warranty_months = (int)json_integer_value(v);
    }
    return parse_custom(pj, o, "product", c);
}

static int parse_findings(pj_t *pj, json_t *a, policy_case_t *c)
{
    if (!json_is_array(a))
        return expect(pj, "inspection.findings", "an array of findings", a);
    if (json_array_size(a) > CASE_MAX_LIST)
        return err(pj, "inspection.findings: more than %d entries", CASE_MAX_LIST);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        char field[48];
        snprintf(field, sizeof(field), "inspection.findings[%zu]", i);
        const enumdef_t *fs = policy_findings(pj->p);
        int e = json_is_string(v) ? enumdef_find(fs, json_string_value(v)) : -1;
        if (e < 0)
            return expect(pj, field, enumdef_expected(fs), v);
        c->inspection.findings |= 1ull << e;
    }
    return 0;
}

static int parse_accessories(pj_t *pj, json_t *a, policy_case_t *c)
{
    if (!json_is_array(a))
        return expect(pj, "inspection.accessories_missing", "an array of names", a);
    if (json_array_size(a) > CASE_MAX_LIST)
        return err(pj, "inspection.accessories_missing: more than %d entries", CASE_MAX_LIST);
    c->inspection.accessories_missing = calloc(json_array_size(a) + 1, sizeof(char *));
    if (!c->inspection.accessories_missing)
        return -ENOMEM;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        char field[64];
        snprintf(field, sizeof(field), "inspection.accessories_missing[%zu]", i);
        if (!json_is_string(v) || !*json_string_value(v) || strlen(json_string_value(v)) > 64)
            return expect(pj, field, "a name (1 to 64 characters)", v);
        if (!(c->inspection.accessories_missing[i] = strdup(json_string_value(v))))
            return -ENOMEM;
        c->inspection.n_accessories_missing++;
    }
    return 0;
}

static int parse_inspection(pj_t *pj, json_t *o, policy_case_t *c)
{
    static const char *const keys[] = { "serial", "serial_label", "rma_marked_on_package",
                                        "packaging", "foam", "seal", "accessories_missing",
                                        "findings", "fault", "component", NULL };
    if (!json_is_object(o))
        return expect(pj, "inspection", "an object", o);
    if (check_keys(pj, o, "inspection", keys) < 0)
        return -EINVAL;
    json_t *v = json_object_get(o, "serial");
    if (v) {
        if (json_is_null(v)) {
            c->inspection.serial_state = SERIAL_UNREADABLE;
        } else {
            int r = get_string(pj, o, "serial", "inspection.serial", &c->inspection.serial);
            if (r < 0)
                return r;
            c->inspection.serial_state = SERIAL_READ;
        }
    }
    int label = c->inspection.serial_label, pkg = c->inspection.packaging,
        seal = c->inspection.seal, fault = c->inspection.fault, r;
    if ((r = get_enum(pj, o, "serial_label", "inspection.serial_label", &ENUM_SERIAL_LABEL, &label)) < 0 ||
        (r = get_bool(pj, o, "rma_marked_on_package", "inspection.rma_marked_on_package",
                      &c->inspection.rma_marked_on_package)) < 0 ||
        (r = get_enum(pj, o, "packaging", "inspection.packaging", &ENUM_PACKAGING, &pkg)) < 0 ||
        (r = get_bool(pj, o, "foam", "inspection.foam", &c->inspection.foam)) < 0 ||
        (r = get_enum(pj, o, "seal", "inspection.seal", &ENUM_SEAL, &seal)) < 0 ||
        (r = get_enum(pj, o, "fault", "inspection.fault", &ENUM_FAULT, &fault)) < 0 ||
        (r = get_string(pj, o, "component", "inspection.component", &c->inspection.component)) < 0)
        return r;
    c->inspection.serial_label = (serial_label_t)label;
    c->inspection.packaging = (packaging_t)pkg;
    c->inspection.seal = (seal_t)seal;
    c->inspection.fault = (fault_t)fault;
    if ((v = json_object_get(o, "findings")) && !json_is_null(v) && (r = parse_findings(pj, v, c)) < 0)
        return r;
    if ((v = json_object_get(o, "accessories_missing")) && !json_is_null(v) &&
        (r = parse_accessories(pj, v, c)) < 0)
        return r;
    return parse_custom(pj, o, "inspection", c);
}

int case_from_json(json_t *obj, policy_case_t *out, char **errmsg)
{
    return case_from_json_policy(obj, NULL, out, errmsg);
}

int case_from_json_policy(json_t *obj, const policy_t *p, policy_case_t *out, char **errmsg)
{
    static const char *const keys[] = { "today", "rma", "product", "inspection", NULL };
    pj_t pj = { NULL, p };
    policy_case_t c;
    policy_case_init(&c);
    int r = 0;
    json_t *v;
    *errmsg = NULL;
    if (!json_is_object(obj)) {
        r = err(&pj, "expected a JSON object");
        goto done;
    }
    if ((r = check_keys(&pj, obj, "", keys)) < 0)
        goto done;
    if (!(v = json_object_get(obj, "today")) || json_is_null(v)) {
        r = err(&pj, "today: required field missing (the receiving date, YYYY-MM-DD)");
        goto done;
    }
    if ((r = get_date(&pj, obj, "today", "today", &c.today)) < 0)
        goto done;
    if (!(v = json_object_get(obj, "product")) || json_is_null(v)) {
        r = err(&pj, "product: required field missing");
        goto done;
    }
    if ((r = parse_product(&pj, v, &c)) < 0)
        goto done;
    if ((v = json_object_get(obj, "rma")) && !json_is_null(v) && (r = parse_rma(&pj, v, &c)) < 0)
        goto done;
    if ((v = json_object_get(obj, "inspection")) && !json_is_null(v) &&
        (r = parse_inspection(&pj, v, &c)) < 0)
        goto done;
done:
    if (r < 0) {
        policy_case_free(&c);
        *errmsg = pj.err;
        return r;
    }
    *out = c;
    return 0;
}

int case_from_json_text(const char *text, size_t len, policy_case_t *c, char **errmsg)
{
    return case_from_json_text_policy(text, len, NULL, c, errmsg);
}

int case_from_json_text_policy(const char *text, size_t len, const policy_t *p,
                               policy_case_t *c, char **errmsg)
{
    *errmsg = NULL;
    if (len > CASE_MAX_BYTES) {
        if (asprintf(errmsg, "larger than %u bytes", CASE_MAX_BYTES) < 0)
            *errmsg = NULL;
        return -EFBIG;
    }
    json_error_t je;
    /* Duplicate keys are rejected: two "packaging" values would hide one of them. */
    json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!obj) {
        if (asprintf(errmsg, "not valid JSON (line %d, column %d): %s", je.line, je.column,
                     je.text) < 0)
            *errmsg = NULL;
        return -EINVAL;
    }
    int r = case_from_json_policy(obj, p, c, errmsg);
    json_decref(obj);
    return r;
}

static json_t *date_or_null(caldate_t d)
{
    if (d == CALDATE_NONE)
        return json_null();
    char b[CALDATE_STRLEN];
    caldate_format(d, b);
    return json_string(b);
}

json_t *result_to_json(const policy_result_t *r, const policy_t *p)
{
    json_t *flags = json_array(), *reasons = json_array();
    for (int i = 0; i < POLICY_FLAG_COUNT; i++)
        if (r->flags & (1u << i))
            json_array_append_new(flags, json_string(ENUM_FLAG.names[i]));
    for (size_t i = 0; i < r->n_reasons; i++)
        json_array_append_new(reasons, json_pack("{s:s, s:s}", "rule", r->reasons[i].rule,
                                                 "text", r->reasons[i].text));
    json_t *fee = r->restocking_fee_pct == floor(r->restocking_fee_pct)
                      ? json_integer((json_int_t)r->restocking_fee_pct)
                      : json_real(r->restocking_fee_pct);
    json_t *w = json_pack("{s:s, s:o, s:o, s:o}",
                          "status", ENUM_WARRANTY_STATUS.names[r->warranty.status],
                          "basis", r->warranty.has_basis ? json_string(ENUM_BASIS.names[r->warranty.basis])
                                                          : json_null(),
                          "starts", date_or_null(r->warranty.starts),
                          "ends", date_or_null(r->warranty.ends));
    /* The policy as it was when deciding: its file's hash and version (docs/policy.md,
     * "Auditing a decision"). */
    json_t *j = json_pack("{s:s, s:o, s:o, s:o, s:o, s:{s:s, s:s, s:s, s:o}}",
                          "disposition", ENUM_DISPOSITION.names[r->disposition],
                          "restocking_fee_pct", fee, "warranty", w, "flags", flags,
                          "reasons", reasons, "policy", "vendor", policy_vendor(p), "file",
                          policy_file(p), "sha256", policy_sha256(p), "version",
                          policy_version(p) ? json_string(policy_version(p)) : json_null());
    /* Only policies with fixed-amount fees produce it, so other results keep the contract's
     * exact shape (docs/policy.md, "Fees"). */
    if (j && r->restocking_fee_amount > 0) {
        json_t *a = r->restocking_fee_amount == floor(r->restocking_fee_amount)
                        ? json_integer((json_int_t)r->restocking_fee_amount)
                        : json_real(r->restocking_fee_amount);
        if (json_object_set_new(j, "restocking_fee_amount", a) < 0) {
            json_decref(j);
            return NULL;
        }
    }
    return j;
}
