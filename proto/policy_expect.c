#include "proto/policy_expect.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int case_files_load(const char *pattern, case_file_t **out, char **errmsg)
{
    glob_t g;
    *out = NULL;
    *errmsg = NULL;
    int gr = glob(pattern, 0, NULL, &g);
    if (gr == GLOB_NOMATCH) {
        *out = calloc(1, sizeof(case_file_t));
        return *out ? 0 : -1;
    }
    if (gr != 0)
        return -1;
    case_file_t *cf = calloc(g.gl_pathc ? g.gl_pathc : 1, sizeof(*cf));
    if (!cf) {
        globfree(&g);
        return -1;
    }
    int n = 0;
    for (size_t i = 0; i < g.gl_pathc && !*errmsg; i++) {
        json_error_t je;
        json_t *doc = json_load_file(g.gl_pathv[i], JSON_REJECT_DUPLICATES, &je);
        if (!doc) {
            if (asprintf(errmsg, "%s:%d: %s", g.gl_pathv[i], je.line, je.text) < 0)
                *errmsg = NULL;
            break;
        }
        if (!json_is_string(json_object_get(doc, "policy")) ||
            !json_is_object(json_object_get(doc, "case")) ||
            !json_is_object(json_object_get(doc, "expect"))) {
            if (asprintf(errmsg, "%s: a case file needs \"policy\", \"case\" and \"expect\"",
                         g.gl_pathv[i]) < 0)
                *errmsg = NULL;
            json_decref(doc);
            break;
        }
        cf[n].path = strdup(g.gl_pathv[i]);
        cf[n].doc = doc;
        n++;
    }
    int all = n == (int)g.gl_pathc;
    globfree(&g);
    if (!all) {
        case_files_free(cf, n);
        return -1;
    }
    *out = cf;
    return n;
}

void case_files_free(case_file_t *cf, int n)
{
    for (int i = 0; i < n; i++) {
        free(cf[i].path);
        json_decref(cf[i].doc);
    }
    free(cf);
}

const char *case_policy_path(const case_file_t *cf, const char *dir)
{
    static char buf[4096];
    const char *p = json_string_value(json_object_get(cf->doc, "policy"));
    snprintf(buf, sizeof(buf), "%s/%s.yaml", dir, p ? p : "?");
    return buf;
}

static int in_list(json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (json_is_string(v) && s && strcmp(json_string_value(v), s) == 0)
            return 1;
    }
    return 0;
}

static int has_rule(json_t *reasons, const char *rule)
{
    size_t i;
    json_t *v;
    json_array_foreach(reasons, i, v) {
        const char *r = json_string_value(json_object_get(v, "rule"));
        if (r && strcmp(r, rule) == 0)
            return 1;
    }
    return 0;
}

int expect_check(json_t *expect, json_t *result, char *why, size_t cap)
{
    const char *disp = json_string_value(json_object_get(result, "disposition"));
    json_t *w = json_object_get(result, "warranty");
    const char *status = json_string_value(json_object_get(w, "status"));
    json_t *flags = json_object_get(result, "flags");
    json_t *reasons = json_object_get(result, "reasons");
    double fee = json_number_value(json_object_get(result, "restocking_fee_pct"));
    double amount = json_number_value(json_object_get(result, "restocking_fee_amount"));
    json_t *e;

    if (!disp || !status || !json_is_array(flags) || !json_is_array(reasons) ||
        json_array_size(reasons) == 0) {
        snprintf(why, cap, "result lacks disposition, warranty.status, flags or reasons");
        return 0;
    }
    if ((e = json_object_get(expect, "disposition")) && !in_list(e, disp)) {
        snprintf(why, cap, "disposition %s not expected", disp);
        return 0;
    }
    if ((e = json_object_get(expect, "fee"))) {
        double lo = json_number_value(json_array_get(e, 0)), hi = json_number_value(json_array_get(e, 1));
        if (fee < lo || fee > hi) {
            snprintf(why, cap, "fee %g outside [%g, %g]", fee, lo, hi);
            return 0;
        }
    }
    /* "fee_amount": [lo, hi], the fixed-amount fee (absent from the result = 0). */
    if ((e = json_object_get(expect, "fee_amount"))) {
        double lo = json_number_value(json_array_get(e, 0)), hi = json_number_value(json_array_get(e, 1));
        if (amount < lo || amount > hi) {
            snprintf(why, cap, "fee amount %g outside [%g, %g]", amount, lo, hi);
            return 0;
        }
    }
    if ((e = json_object_get(expect, "warranty_status")) && !in_list(e, status)) {
        snprintf(why, cap, "warranty status %s not expected", status);
        return 0;
    }
    /* "warranty": {"basis": ..., "starts": ..., "ends": ...}: each given one exactly. */
    const char *wk;
    json_t *wv;
    json_object_foreach(json_object_get(expect, "warranty"), wk, wv) {
        json_t *got = json_object_get(w, wk);
        if (!got || !json_equal(got, wv)) {
            const char *g = json_string_value(got);
            snprintf(why, cap, "warranty.%s is %s, expected %s", wk, g ? g : "null",
                     json_is_string(wv) ? json_string_value(wv) : "?");
            return 0;
        }
    }
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(expect, "flags"), i, v) {
        if (!in_list(flags, json_string_value(v))) {
            snprintf(why, cap, "flag %s missing", json_string_value(v));
            return 0;
        }
    }
    json_array_foreach(json_object_get(expect, "no_flags"), i, v) {
        if (in_list(flags, json_string_value(v))) {
            snprintf(why, cap, "flag %s present", json_string_value(v));
            return 0;
        }
    }
    const char *first = json_string_value(json_object_get(json_array_get(reasons, 0), "rule"));
    if ((e = json_object_get(expect, "first_rule")) && (!first || strcmp(first, json_string_value(e)) != 0)) {
        snprintf(why, cap, "first reason is rule %s, expected %s", first ? first : "?", json_string_value(e));
        return 0;
    }
    json_array_foreach(json_object_get(expect, "rules"), i, v) {
        if (!has_rule(reasons, json_string_value(v))) {
            snprintf(why, cap, "no reason from rule %s", json_string_value(v));
            return 0;
        }
    }
    /* Contract: every refusal and every non-zero fee names the rule behind it. */
    int charged = fee > 0 || amount > 0;
    if ((strcmp(disp, "refuse") == 0 || charged) && (!first || strncmp(first, "warranty-", 9) == 0)) {
        snprintf(why, cap, "%s without a rule naming why", charged ? "fee" : "refusal");
        return 0;
    }
    return 1;
}
