/* libFuzzer target: the scan decoder every driver shares (AIM ids, GS1, limits). */
#include <stddef.h>
#include <stdint.h>

#include "drivers/scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scan_limits_t lim = { .max_len = 0 };
    scan_t s = { 0 };
    const char *reason = NULL;
    if (scan_decode(data, size, &lim, &s, &reason) == 0)
        scan_clear(&s);
    /* GS1 element strings on their own, as HID POS delivers them. */
    gs1_t g;
    (void)gs1_parse_at((const char *)data, size, 2026, &g, &reason);
    return 0;
}
