/* rmad's own label barcodes (proto/labelcode.h). */
#include "proto/labelcode.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Digits of a receipt barcode: zero-padded to this, so a short id still reads as ours. */
#define RECEIPT_DIGITS 6

int labelcode_receipt(int64_t id, char buf[LABELCODE_RECEIPT_MAX])
{
    if (id <= 0)
        return -EINVAL;
    (void)snprintf(buf, LABELCODE_RECEIPT_MAX, LABELCODE_RECEIPT_PREFIX "%0*lld",
                   RECEIPT_DIGITS, (long long)id);
    return 0;
}

/*
 * "RCPT-" and RECEIPT_DIGITS..18 digits at s, ending at a space or the end. Sets *id
 * and *end. A padded id of 0 is not a receipt.
 */
static bool receipt_at(const char *s, int64_t *id, const char **end)
{
    size_t plen = strlen(LABELCODE_RECEIPT_PREFIX), n = 0;
    if (strncasecmp(s, LABELCODE_RECEIPT_PREFIX, plen) != 0)
        return false;
    int64_t v = 0;
    for (s += plen; s[n] >= '0' && s[n] <= '9' && n < 18; n++)
        v = v * 10 + (s[n] - '0');
    if (n < RECEIPT_DIGITS || (s[n] && s[n] != ' ') || v == 0)
        return false;
    *id = v;
    *end = s + n;
    return true;
}

int labelcode_parse(const char *text, int64_t *receipt)
{
    const char *end;
    int64_t id;
    size_t dlen = strlen(LABELCODE_DATAMATRIX_PREFIX);

    if (!text)
        return 0;
    if (receipt_at(text, &id, &end) && !*end) {
        *receipt = id;
        return 1;
    }
    if (strncasecmp(text, LABELCODE_DATAMATRIX_PREFIX, dlen) == 0) {
        *receipt = receipt_at(text + dlen, &id, &end) ? id : 0;
        return 1;
    }
    /*
     * The DataMatrix of older labels, "RMA:<rma> SN:<serial>". Not "SN:<serial>" alone
     * (an old label of a unit without RMA): some units' own barcodes read "SN:...".
     */
    if (strncmp(text, "RMA:", 4) == 0) {
        *receipt = 0;
        return 1;
    }
    return 0;
}
