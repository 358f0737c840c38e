/*
 * The policy-eval contract on the wire: a case as JSON in, a result as JSON out
 * (spec policy-eval). rmactl prints these; the daemon puts the same result fields into
 * inspection.completed events.
 */
#ifndef RMAD_PROTO_POLICY_JSON_H
#define RMAD_PROTO_POLICY_JSON_H

#include <jansson.h>

#include "policy/policy.h"

/*
 * Parse a case from JSON text. Unknown keys, wrong types, unknown enum values,
 * impossible dates and missing `today`/`product` are errors: returns -EINVAL and sets
 * *errmsg to a malloc'd "FIELD: expected ..., got ..." (no "case:" prefix).
 * On success fills *c (free with policy_case_free).
 */
int case_from_json_text(const char *text, size_t len, policy_case_t *c, char **errmsg);

/* Same, from an already parsed object (the daemon builds cases from stored data). */
int case_from_json(json_t *obj, policy_case_t *c, char **errmsg);

/*
 * The same for a case decided by policy p: its own findings and facts (docs/policy.md,
 * "Vocabulary") are fields too. p NULL: the built-in vocabulary only, as above.
 */
int case_from_json_policy(json_t *obj, const policy_t *p, policy_case_t *c, char **errmsg);
int case_from_json_text_policy(const char *text, size_t len, const policy_t *p,
                               policy_case_t *c, char **errmsg);

/*
 * The result as a JSON object with the contract's fields, `policy` naming the vendor
 * and file. Returns a new reference, or NULL when out of memory.
 */
json_t *result_to_json(const policy_result_t *r, const policy_t *p);

#endif
