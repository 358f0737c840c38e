/* libFuzzer target: the policy YAML loader (a policy file is data anyone may edit). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    policy_t *p = NULL;
    char *err = NULL;
    if (policy_load_text((const char *)data, size, "fuzz.yaml", &p, &err) == 0)
        policy_destroy(&p);
    free(err);
    return 0;
}
