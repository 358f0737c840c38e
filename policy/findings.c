#include "policy/findings.h"

#include <errno.h>
#include <stddef.h>
#include <strings.h>

#define NAME(upper, lower, text) [FINDING_##upper] = #lower,
const char *const finding_names[FINDING__COUNT] = { RMAD_FINDINGS(NAME) };
#undef NAME

#define TEXT(upper, lower, text) [FINDING_##upper] = text,
static const char *const finding_texts[FINDING__COUNT] = { RMAD_FINDINGS(TEXT) };
#undef TEXT

const char *finding_name(finding_t f)
{
    return (unsigned)f < FINDING__COUNT ? finding_names[f] : NULL;
}

const char *finding_description(finding_t f)
{
    return (unsigned)f < FINDING__COUNT ? finding_texts[f] : NULL;
}

int finding_parse(const char *name, finding_t *out)
{
    if (!name)
        return -EINVAL;
    for (int i = 0; i < FINDING__COUNT; i++)
        if (strcasecmp(name, finding_names[i]) == 0) {
            *out = (finding_t)i;
            return 0;
        }
    return -EINVAL;
}
