/* Text for labels: repair untrusted UTF-8 and cut it at code point boundaries. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "labels/layout.h"

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

/*
 * Length of the well-formed UTF-8 sequence at p (n bytes left) and its code point,
 * or 0 when it is malformed (overlong, surrogate, above U+10FFFF, cut short).
 */
static size_t seq_len(const uint8_t *p, size_t n, uint32_t *cp)
{
    uint8_t b = p[0];
    size_t len;
    uint32_t c, min;
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xC2 && b <= 0xDF)
        len = 2, c = b & 0x1F, min = 0x80;
    else if (b >= 0xE0 && b <= 0xEF)
        len = 3, c = b & 0x0F, min = 0x800;
    else if (b >= 0xF0 && b <= 0xF4)
        len = 4, c = b & 0x07, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

char *text_clean(const char *s, size_t max_cp)
{
    const uint8_t *p = (const uint8_t *)(s ? s : "");
    size_t n = strlen((const char *)p);
    /* Each input byte becomes at most 3 output bytes (one U+FFFD), plus the ellipsis. */
    char *out = malloc(3 * n + sizeof(TEXT_ELLIPSIS));
    if (!out)
        return NULL;
    size_t o = 0, cps = 0, i = 0;
    size_t cut = max_cp ? max_cp - 1 : 0; /* where the ellipsis goes when cut */
    size_t cut_at = 0;                     /* output bytes before code point `cut` */
    while (i < n) {
        uint32_t cp = 0;
        size_t len = seq_len(p + i, n - i, &cp);
        if (max_cp && cps == cut)
            cut_at = o;
        if (max_cp && cps == max_cp) {
            /* One code point too many: replace the last kept one by the ellipsis. */
            memcpy(out + cut_at, TEXT_ELLIPSIS, sizeof(TEXT_ELLIPSIS));
            return out;
        }
        if (len == 0) {
            memcpy(out + o, REPLACEMENT, 3), o += 3, i += 1;
        } else if (cp == '\t' || cp == '\r' || cp == '\n') {
            out[o++] = ' ', i += 1;
        } else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
            memcpy(out + o, REPLACEMENT, 3), o += 3, i += len;
        } else {
            memcpy(out + o, p + i, len), o += len, i += len;
        }
        cps++;
    }
    out[o] = '\0';
    return out;
}

size_t text_cp_count(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((uint8_t)*s & 0xC0) != 0x80;
    return n;
}

size_t text_cp_bytes(const char *s, size_t n)
{
    size_t i = 0;
    while (s[i] && n > 0) {
        i++;
        while (((uint8_t)s[i] & 0xC0) == 0x80)
            i++;
        n--;
    }
    return i;
}
