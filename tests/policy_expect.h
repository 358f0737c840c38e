/*
 * Policy test cases (tests/cases/SET/NAME.json, the format of the spec's examples:
 * id, policy, source, case, expect) and the check of a result against `expect`.
 * Used in-process (test_policy_cases.c) and against the rmactl binary
 * (test_rmactl_cli.c), so both paths are held to the same expectations.
 */
#ifndef RMAD_TESTS_POLICY_EXPECT_H
#define RMAD_TESTS_POLICY_EXPECT_H

#include <jansson.h>
#include <stddef.h>

typedef struct {
    char *path;      /* the case file */
    json_t *doc;     /* the whole file */
} case_file_t;

/* Every case file under tests/cases/, sorted by path. Returns count, or -1. */
int case_files_load(case_file_t **out);
void case_files_free(case_file_t *cf, int n);

/* policies/<name>.yaml for the file's "policy"; static buffer. */
const char *case_policy_path(const case_file_t *cf);

/*
 * Does `result` (the contract's result JSON) meet `expect`? Returns 1, or 0 with a
 * one-line explanation in why.
 */
int expect_check(json_t *expect, json_t *result, char *why, size_t cap);

#endif
