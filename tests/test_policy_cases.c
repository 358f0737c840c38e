/*
 * Every policy case of tests/cases/ evaluated in-process, and the proof that each
 * clause of each shipped policy matters: with any one rule or warranty-table entry
 * left out, at least one case of that vendor must fail its expectations.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "proto/policy_json.h"
#include "proto/policy_expect.h"
#include "tests/suites.h"

static case_file_t *cases;
static int n_cases;

static int setup(void)
{
    char *err = NULL;
    n_cases = case_files_load("tests/cases/*/*.json", &cases, &err);
    if (err)
        fprintf(stderr, "%s\n", err);
    free(err);
    return n_cases < 0 ? -1 : 0;
}

static int teardown(void)
{
    case_files_free(cases, n_cases);
    return 0;
}

/* Evaluate case i with clause `skip` left out; 1 if it meets its expectations. */
static int run_case(const policy_t *p, int i, int skip, char *why, size_t cap)
{
    policy_case_t c;
    char *err = NULL;
    if (case_from_json_policy(json_object_get(cases[i].doc, "case"), p, &c, &err) < 0) {
        snprintf(why, cap, "bad case: %s", err ? err : "?");
        free(err);
        return 0;
    }
    policy_result_t r;
    int ok = 0;
    if (policy_evaluate_without(p, &c, skip, &r) == 0) {
        json_t *j = result_to_json(&r, p);
        ok = j && expect_check(json_object_get(cases[i].doc, "expect"), j, why, cap);
        json_decref(j);
        policy_result_free(&r);
    } else {
        snprintf(why, cap, "evaluation failed");
    }
    policy_case_free(&c);
    return ok;
}

static void test_every_case(void)
{
    CU_ASSERT_FATAL(n_cases > 0);
    for (int i = 0; i < n_cases; i++) {
        policy_t *p = NULL;
        char *err = NULL, why[512];
        if (policy_load(case_policy_path(&cases[i], "policies"), &p, &err) < 0) {
            fprintf(stderr, "\n  %s: %s\n", cases[i].path, err);
            free(err);
            CU_FAIL("policy failed to load");
            continue;
        }
        int ok = run_case(p, i, -1, why, sizeof(why));
        if (!ok)
            fprintf(stderr, "\n  FAIL %s: %s\n", cases[i].path, why);
        CU_ASSERT(ok);
        policy_destroy(&p);
    }
}

static void test_cases_per_vendor(void)
{
    const char *vendors[] = { "v7", "softnetworks", "qct", "smartvue", "everfocus", "nordlicht" };
    for (size_t v = 0; v < sizeof(vendors) / sizeof(vendors[0]); v++) {
        int n = 0;
        for (int i = 0; i < n_cases; i++) {
            const char *pol = json_string_value(json_object_get(cases[i].doc, "policy"));
            n += pol && strcmp(pol, vendors[v]) == 0;
        }
        if (n < 8)
            fprintf(stderr, "\n  %s has only %d cases\n", vendors[v], n);
        CU_ASSERT(n >= 8);
    }
}

static void test_every_clause_matters(void)
{
    const char *vendors[] = { "v7", "softnetworks", "qct", "smartvue", "everfocus", "nordlicht" };
    for (size_t v = 0; v < sizeof(vendors) / sizeof(vendors[0]); v++) {
        char path[128], *err = NULL;
        policy_t *p = NULL;
        snprintf(path, sizeof(path), "policies/%s.yaml", vendors[v]);
        if (policy_load(path, &p, &err) < 0) {
            fprintf(stderr, "\n  %s\n", err);
            free(err);
            CU_FAIL("shipped policy failed to load");
            continue;
        }
        for (size_t k = 0; k < policy_clause_count(p); k++) {
            int caught = 0;
            char why[512];
            for (int i = 0; i < n_cases && !caught; i++) {
                const char *pol = json_string_value(json_object_get(cases[i].doc, "policy"));
                if (pol && strcmp(pol, vendors[v]) == 0)
                    caught = !run_case(p, i, (int)k, why, sizeof(why));
            }
            if (!caught)
                fprintf(stderr, "\n  %s: no case fails without %s\n", path, policy_clause_name(p, k));
            CU_ASSERT(caught);
        }
        policy_destroy(&p);
    }
}

/* The language features of docs/policy.md that not every shipped policy uses. */
static void test_language_fixtures(void)
{
    case_file_t *lc = NULL;
    char *err = NULL;
    int n = case_files_load("tests/fixtures/policy-lang/*.json", &lc, &err);
    free(err);
    CU_ASSERT_FATAL(n >= 5);
    policy_t *p = NULL;
    CU_ASSERT_FATAL(policy_load(case_policy_path(&lc[0], "tests/fixtures/policy-lang"), &p, &err) == 0);
    for (int i = 0; i < n; i++) {
        policy_case_t c;
        char why[512] = "";
        CU_ASSERT_FATAL(case_from_json_policy(json_object_get(lc[i].doc, "case"), p, &c, &err) == 0);
        policy_result_t r;
        CU_ASSERT_FATAL(policy_evaluate(p, &c, &r) == 0);
        json_t *j = result_to_json(&r, p);
        int ok = j && expect_check(json_object_get(lc[i].doc, "expect"), j, why, sizeof(why));
        if (!ok)
            fprintf(stderr, "\n  FAIL %s: %s\n", lc[i].path, why);
        CU_ASSERT(ok);
        json_decref(j);
        policy_result_free(&r);
        policy_case_free(&c);
    }
    policy_destroy(&p);
    case_files_free(lc, n);
}

int suite_policy_cases(void)
{
    CU_pSuite s = CU_add_suite("policy_cases", setup, teardown);
    if (!s || !CU_add_test(s, "every case meets its expectations", test_every_case) ||
        !CU_add_test(s, "at least 8 cases per vendor", test_cases_per_vendor) ||
        !CU_add_test(s, "every rule and table entry is exercised", test_every_clause_matters) ||
        !CU_add_test(s, "language: fixed dates, fee amounts, adding fees, on", test_language_fixtures))
        return -1;
    return 0;
}
