/*
 * libFuzzer target: HID POS report descriptors and the reports a device sends. The
 * first byte splits the input: that many bytes (at most what is there) are a descriptor, the
 * rest are reports of up to 64 bytes each, fed through the layout it gave.
 */
#include <stddef.h>
#include <stdint.h>

#include "drivers/hidpos.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t dlen = data[0];
    if (dlen > size - 1)
        dlen = size - 1;
    const uint8_t *desc = data + 1, *rest = desc + dlen;
    size_t rlen = size - 1 - dlen;
    hidpos_layout_t lay;
    const char *reason = NULL;
    if (hidpos_parse(desc, dlen, &lay, &reason) < 0)
        return 0;
    uint8_t buf[64];
    size_t blen;
    (void)hidpos_feedback_report(&lay, HIDPOS_SIGNAL_GOOD, buf, sizeof(buf), &blen);
    hidpos_t *p = hidpos_new(&lay, 0);
    if (!p)
        return 0;
    while (rlen > 0) {
        size_t n = rlen < 1 + rest[0] % 64 ? rlen : 1 + rest[0] % 64;
        const uint8_t *out;
        size_t out_len;
        (void)hidpos_feed(p, rest, n, &out, &out_len, &reason);
        rest += n;
        rlen -= n;
    }
    const uint8_t *out;
    size_t out_len;
    (void)hidpos_take_partial(p, &out, &out_len);
    hidpos_destroy(&p);
    return 0;
}
