/*
 * Policy case files: one return with the outcome the policy must give it (the
 * format of the spec's examples: id, policy, source, case, expect). Policy authors
 * keep them as regression tests and run them with `rmactl policy test`; the project's
 * own suites use the same checker in-process and through the binary.
 */
#ifndef RMAD_PROTO_POLICY_EXPECT_H
#define RMAD_PROTO_POLICY_EXPECT_H

#include <jansson.h>
#include <stddef.h>

typedef struct {
    char *path;      /* the case file */
    json_t *doc;     /* the whole file */
} case_file_t;

/*
 * Every case file matching the glob pattern, sorted by path. Returns the count, or
 * -1 when a file is not valid JSON or lacks policy/case/expect (named on stderr
 * would be a library printing: the message goes to *errmsg instead, malloc'd).
 */
int case_files_load(const char *pattern, case_file_t **out, char **errmsg);
void case_files_free(case_file_t *cf, int n);

/* DIR/<policy>.yaml for the file's "policy"; static buffer. */
const char *case_policy_path(const case_file_t *cf, const char *dir);

/*
 * Does `result` (the contract's result JSON) meet `expect`? Returns 1, or 0 with a
 * one-line explanation in why.
 */
int expect_check(json_t *expect, json_t *result, char *why, size_t cap);

#endif
