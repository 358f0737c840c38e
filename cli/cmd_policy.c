/* rmactl policy eval | check: the policy-eval contract (spec policy-eval). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/rmactl.h"
#include "daemon/policy.h"
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
    int rc = case_from_json_text(text, len, &c, &err);
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

static int policy_check(int argc, char **argv)
{
    if (argc < 2) {
        cli_error("usage: rmactl policy check FILE...");
        return EXIT_BADINPUT;
    }
    int rc = EXIT_OK;
    for (int i = 1; i < argc; i++) {
        policy_t *p = NULL;
        char *err = NULL;
        if (policy_load(argv[i], &p, &err) < 0) {
            cli_error("%s", err ? err : "out of memory");
            rc = EXIT_BADINPUT;
        }
        free(err);
        policy_destroy(&p);
    }
    return rc;
}

int cmd_policy(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "eval") == 0)
        return policy_eval(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return policy_check(argc - 1, argv + 1);
    cli_error("usage: rmactl policy eval --policy FILE [CASE.json | -] | policy check FILE...");
    return EXIT_BADINPUT;
}
