/* libFuzzer target: the policy-eval case JSON (rmactl policy eval's input). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "policy/policy.h"
#include "proto/policy_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    policy_case_t c;
    char *err = NULL;
    if (case_from_json_text((const char *)data, size, &c, &err) == 0)
        policy_case_free(&c);
    free(err);
    return 0;
}
