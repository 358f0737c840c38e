/* rmactl policy eval | check: the policy-eval contract (spec policy-eval). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/rmactl.h"
#include "policy/policy.h"
#include "proto/policy_expect.h"
#include "proto/policy_json.h"

#define CASE_FILE_MAX (256u * 1024u)

static int policy_eval(int argc, char **argv)
{
    const char *policy_path = NULL, *case_path = "-";
    int have_case = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--policy") == 0 && i + 1 < argc) {
            policy_path = argv[++i];
        } else if (strncmp(argv[i], "--policy=", 9) == 0) {
            policy_path = argv[i] + 9;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            cli_error("policy eval: unknown option '%s'", argv[i]);
            return EXIT_BADINPUT;
        } else if (!have_case) {
            case_path = argv[i];
            have_case = 1;
        } else {
            cli_error("policy eval: one case at a time");
            return EXIT_BADINPUT;
        }
    }
    if (!policy_path) {
        cli_error("usage: rmactl policy eval --policy FILE [CASE.json | -]");
        return EXIT_BADINPUT;
    }

    policy_t *p = NULL;
    char *err = NULL;
    if (policy_load(policy_path, &p, &err) < 0) {
        cli_error("%s", err ? err : "out of memory");
        free(err);
        return EXIT_BADINPUT;
    }
    size_t len;
    char *text = cli_read_input(case_path, CASE_FILE_MAX, &len);
    if (!text) {
        policy_destroy(&p);
        return EXIT_BADINPUT;
    }
    policy_case_t c;
    int rc = case_from_json_text_policy(text, len, p, &c, &err);
    free(text);
    if (rc < 0) {
        cli_error("case: %s", err ? err : "out of memory");
        free(err);
        policy_destroy(&p);
        return EXIT_BADINPUT;
    }
    policy_result_t res;
    rc = policy_evaluate(p, &c, &res);
    policy_case_free(&c);
    if (rc < 0) {
        cli_error("out of memory");
        policy_destroy(&p);
        return EXIT_FAIL;
    }
    json_t *j = result_to_json(&res, p);
    char *out = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    policy_result_free(&res);
    policy_destroy(&p);
    if (!out) {
        cli_error("out of memory");
        return EXIT_FAIL;
    }
    int ok = puts(out) >= 0 && fflush(stdout) == 0;
    free(out);
    if (!ok) {
        cli_error("stdout: write error");
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

/* rmactl policy check [--strict] FILE...: errors exit 2; warnings exit 0 unless --strict. */
static int policy_check(int argc, char **argv)
{
    int rc = EXIT_OK, strict = 0, first = 1;
    if (argc > 1 && strcmp(argv[1], "--strict") == 0) {
        strict = 1;
        first = 2;
    }
    if (argc <= first) {
        cli_error("usage: rmactl policy check [--strict] FILE...");
        return EXIT_BADINPUT;
    }
    policy_t **ps = calloc((size_t)(argc - first), sizeof(*ps));
    size_t n = 0;
    if (!ps) {
        cli_error("out of memory");
        return EXIT_FAIL;
    }
    for (int i = first; i < argc; i++) {
        policy_t *p = NULL;
        char *err = NULL;
        if (policy_load(argv[i], &p, &err) < 0) {
            cli_error("%s", err ? err : "out of memory");
            rc = EXIT_BADINPUT;
        } else {
            ps[n++] = p;
        }
        free(err);
    }
    char **warnings = NULL;
    size_t n_warnings = 0;
    if (policy_lint((const policy_t *const *)ps, n, &warnings, &n_warnings) < 0) {
        cli_error("out of memory");
        rc = EXIT_FAIL;
    }
    for (size_t i = 0; i < n_warnings; i++)
        fprintf(stderr, "%s\n", warnings[i]);
    if (strict && n_warnings && rc == EXIT_OK)
        rc = EXIT_BADINPUT;
    policy_warnings_free(warnings, n_warnings);
    for (size_t i = 0; i < n; i++)
        policy_destroy(&ps[i]);
    free(ps);
    return rc;
}

/* Policies loaded during one `policy test` run: each file is read once, not per case. */
typedef struct {
    char *path;
    policy_t *policy;
} loaded_t;

typedef struct {
    loaded_t *v;
    size_t n;
} policy_cache_t;

static const policy_t *cached_policy(policy_cache_t *pc, const char *path)
{
    for (size_t i = 0; i < pc->n; i++)
        if (strcmp(pc->v[i].path, path) == 0)
            return pc->v[i].policy;
    policy_t *p = NULL;
    char *err = NULL;
    if (policy_load(path, &p, &err) < 0) {
        cli_error("%s", err ? err : "out of memory");
        free(err);
        return NULL;
    }
    loaded_t *v = realloc(pc->v, (pc->n + 1) * sizeof(*v));
    if (v)
        pc->v = v;
    char *copy = v ? strdup(path) : NULL;
    if (!copy) {
        policy_destroy(&p);
        cli_error("out of memory");
        return NULL;
    }
    pc->v[pc->n++] = (loaded_t){ copy, p };
    return p;
}

static void policy_cache_clear(policy_cache_t *pc)
{
    for (size_t i = 0; i < pc->n; i++) {
        free(pc->v[i].path);
        policy_destroy(&pc->v[i].policy);
    }
    free(pc->v);
    pc->v = NULL;
    pc->n = 0;
}

/* Run one case file: 1 passed, 0 failed, -1 could not run (message printed). */
static int run_case_file(const case_file_t *cf, const char *dir, policy_cache_t *cache)
{
    const char *id = json_string_value(json_object_get(cf->doc, "id"));
    char *err = NULL, why[512];
    const policy_t *p = cached_policy(cache, case_policy_path(cf, dir));
    if (!p)
        return -1;
    policy_case_t c;
    if (case_from_json_policy(json_object_get(cf->doc, "case"), p, &c, &err) < 0) {
        cli_error("%s: case: %s", cf->path, err ? err : "out of memory");
        free(err);
        return -1;
    }
    policy_result_t r;
    int ok = -1;
    if (policy_evaluate(p, &c, &r) == 0) {
        json_t *j = result_to_json(&r, p);
        ok = j && expect_check(json_object_get(cf->doc, "expect"), j, why, sizeof(why));
        if (ok)
            printf("ok    %s: %s (warranty %s, fee %g%%)\n", id ? id : cf->path,
                   ENUM_DISPOSITION.names[r.disposition],
                   ENUM_WARRANTY_STATUS.names[r.warranty.status], r.restocking_fee_pct);
        else
            printf("FAIL  %s: %s\n", id ? id : cf->path, why);
        json_decref(j);
        policy_result_free(&r);
    }
    policy_case_free(&c);
    return ok;
}

/* rmactl policy test [--policies DIR] CASEFILE...: regression cases for policy authors. */
static int policy_test(int argc, char **argv)
{
    const char *dir = "policies";
    int first = 1, passed = 0, failed = 0, broken = 0;
    policy_cache_t cache = { NULL, 0 };
    if (argc > 2 && strcmp(argv[1], "--policies") == 0) {
        dir = argv[2];
        first = 3;
    }
    if (first >= argc) {
        cli_error("usage: rmactl policy test [--policies DIR] CASEFILE...");
        return EXIT_BADINPUT;
    }
    for (int i = first; i < argc; i++) {
        case_file_t *cf = NULL;
        char *err = NULL;
        int n = case_files_load(argv[i], &cf, &err);
        if (n <= 0) {
            if (err)
                cli_error("%s", err);
            else
                cli_error("%s: %s", argv[i], n == 0 ? "no such case file" : "out of memory");
            free(err);
            case_files_free(cf, n > 0 ? n : 0);
            broken++;
            continue;
        }
        for (int k = 0; k < n; k++) {
            int r = run_case_file(&cf[k], dir, &cache);
            passed += r == 1;
            failed += r == 0;
            broken += r < 0;
        }
        case_files_free(cf, n);
    }
    policy_cache_clear(&cache);
    printf("%d passed, %d failed\n", passed, failed + broken);
    return broken ? EXIT_BADINPUT : failed ? EXIT_FAIL : EXIT_OK;
}

int cmd_policy(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "test") == 0)
        return policy_test(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "eval") == 0)
        return policy_eval(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return policy_check(argc - 1, argv + 1);
    cli_error("usage: rmactl policy eval --policy FILE [CASE.json | -] | policy check [--strict] FILE... | "
              "policy test [--policies DIR] CASEFILE...");
    return EXIT_BADINPUT;
}
