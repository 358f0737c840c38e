#include "drivers/scan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reasons that carry a value live here until the next call on this thread (scan.h). */
static _Thread_local char reason_buf[192];

__attribute__((format(printf, 1, 2))) static const char *reasonf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason_buf, sizeof(reason_buf), fmt, ap);
    va_end(ap);
    return reason_buf;
}

/* ASCII-only classes: the C library's are locale-dependent. */
static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_digit((unsigned char)s[i]))
            return false;
    return true;
}

/* ---- AIM symbology identifiers (ISO/IEC 15424) ------------------------------------- */

/* Modifier '*' matches any modifier; the first matching row wins. */
static const struct {
    char code, modifier;
    const char *name;
} symbologies[] = {
    { 'A', '*', "Code 39" },
    { 'B', '*', "Telepen" },
    { 'C', '1', "GS1-128" },
    { 'C', '*', "Code 128" },
    { 'D', '*', "Code One" },
    { 'E', '0', "EAN-13/UPC" },
    { 'E', '1', "EAN/UPC 2-digit add-on" },
    { 'E', '2', "EAN/UPC 5-digit add-on" },
    { 'E', '3', "EAN-13/UPC with add-on" },
    { 'E', '4', "EAN-8" },
    { 'E', '*', "EAN/UPC" },
    { 'F', '*', "Codabar" },
    { 'G', '*', "Code 93" },
    { 'H', '*', "Code 11" },
    { 'I', '*', "Interleaved 2 of 5" },
    { 'K', '*', "Code 16K" },
    { 'L', '*', "PDF417" },
    { 'M', '*', "MSI" },
    { 'O', '*', "Codablock" },
    { 'P', '*', "Plessey" },
    { 'Q', '3', "GS1 QR Code" },
    { 'Q', '*', "QR Code" },
    { 'R', '*', "Straight 2 of 5 (2-bar start/stop)" },
    { 'S', '*', "Straight 2 of 5 (3-bar start/stop)" },
    { 'T', '*', "Code 49" },
    { 'U', '*', "MaxiCode" },
    { 'X', '*', "other symbology" },
    { 'd', '2', "GS1 DataMatrix" },
    { 'd', '*', "Data Matrix" },
    { 'e', '*', "GS1 DataBar" },
    { 'h', '*', "Han Xin" },
    { 'z', '*', "Aztec" },
};

static bool aim_form_ok(const char *aim)
{
    return aim && aim[0] == ']' && is_alpha((unsigned char)aim[1]) &&
           (is_digit((unsigned char)aim[2]) || is_alpha((unsigned char)aim[2])) && !aim[3];
}

const char *scan_symbology_name(const char *aim)
{
    if (!aim || !*aim)
        return "unknown";
    if (!aim_form_ok(aim))
        return "unknown symbology";
    for (size_t i = 0; i < sizeof(symbologies) / sizeof(symbologies[0]); i++)
        if (symbologies[i].code == aim[1] &&
            (symbologies[i].modifier == '*' || symbologies[i].modifier == aim[2]))
            return symbologies[i].name;
    return "unknown symbology";
}

bool scan_aim_is_gs1(const char *aim)
{
    static const char *const gs1_ids[] = { "]C1", "]d2", "]Q3", "]e0" };
    if (!aim)
        return false;
    for (size_t i = 0; i < sizeof(gs1_ids) / sizeof(gs1_ids[0]); i++)
        if (strcmp(aim, gs1_ids[i]) == 0)
            return true;
    return false;
}

/* ---- check digits ------------------------------------------------------------------ */

int gs1_check_digit(const char *s, size_t n)
{
    if (!s || n == 0)
        return -EINVAL;
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[n - 1 - i];
        if (!is_digit(c))
            return -EINVAL;
        sum += (c - '0') * (i % 2 == 0 ? 3 : 1);
    }
    return (10 - sum % 10) % 10;
}

/* what: the name used in the reason ("GTIN", "EAN-13"). */
static int check_code(const char *what, const char *s, size_t len, const char **reason)
{
    for (size_t i = 0; i < len; i++)
        if (!is_digit((unsigned char)s[i])) {
            *reason = reasonf("%s has a non-digit at position %zu", what, i + 1);
            return -EINVAL;
        }
    int want = gs1_check_digit(s, len - 1);
    if (want < 0 || s[len - 1] - '0' != want) {
        *reason = reasonf("%s check digit is %c, expected %d", what, s[len - 1], want);
        return -EINVAL;
    }
    return 0;
}

int gtin_validate(const char *s, size_t len, const char **reason)
{
    const char *what;
    switch (len) {
    case 8: what = "EAN-8"; break;
    case 12: what = "UPC-A"; break;
    case 13: what = "EAN-13"; break;
    case 14: what = "GTIN"; break;
    case 18: what = "SSCC"; break;
    default:
        *reason = reasonf("a GTIN has 8, 12, 13 or 14 digits (an SSCC 18), not %zu", len);
        return -EINVAL;
    }
    return check_code(what, s, len, reason);
}

/*
 * UPC-E (number system 0 or 1, six digits, check digit) carries the check digit of the
 * UPC-A it abbreviates, so expand it first. Rules of the UPC-E zero suppression: the
 * last of the six digits says where the zeros go.
 */
static int check_upce(const char *s, const char **reason)
{
    if (s[0] != '0' && s[0] != '1') {
        *reason = reasonf("UPC-E number system is %c, expected 0 or 1", s[0]);
        return -EINVAL;
    }
    const char *d = s + 1; /* d[0..5] */
    char a[11];
    a[0] = s[0];
    switch (d[5]) {
    case '0': case '1': case '2':
        memcpy(a + 1, (char[]){ d[0], d[1], d[5], '0', '0', '0', '0', d[2], d[3], d[4] }, 10);
        break;
    case '3':
        memcpy(a + 1, (char[]){ d[0], d[1], d[2], '0', '0', '0', '0', '0', d[3], d[4] }, 10);
        break;
    case '4':
        memcpy(a + 1, (char[]){ d[0], d[1], d[2], d[3], '0', '0', '0', '0', '0', d[4] }, 10);
        break;
    default:
        memcpy(a + 1, (char[]){ d[0], d[1], d[2], d[3], d[4], '0', '0', '0', '0', d[5] }, 10);
        break;
    }
    int want = gs1_check_digit(a, sizeof(a));
    if (s[7] - '0' != want) {
        *reason = reasonf("UPC-E check digit is %c, expected %d", s[7], want);
        return -EINVAL;
    }
    return 0;
}

/* The data of an EAN/UPC scan (AIM id ]Ex): digits of the right count, check digit. */
static int check_ean(const char *aim, const char *s, size_t n, const char **reason)
{
    for (size_t i = 0; i < n; i++)
        if (!is_digit((unsigned char)s[i])) {
            *reason = reasonf("EAN/UPC scan (%s) has a non-digit at position %zu", aim, i + 1);
            return -EINVAL;
        }
    switch (aim[2]) {
    case '0':
        if (n == 12 || n == 13)
            return gtin_validate(s, n, reason);
        if (n == 8)
            return check_upce(s, reason);
        *reason = reasonf("EAN/UPC scan (]E0) has %zu digits, expected 13, 12 or 8 (UPC-E)", n);
        return -EINVAL;
    case '1':
    case '2':
        if (n == (aim[2] == '1' ? 2u : 5u))
            return 0;
        *reason = reasonf("EAN/UPC add-on (%s) has %zu digits, expected %d", aim, n,
                          aim[2] == '1' ? 2 : 5);
        return -EINVAL;
    case '3':
        if (n == 15 || n == 18)
            return gtin_validate(s, 13, reason);
        *reason = reasonf("EAN/UPC scan with add-on (]E3) has %zu digits, expected 15 or 18", n);
        return -EINVAL;
    case '4':
        if (n == 8)
            return gtin_validate(s, 8, reason);
        *reason = reasonf("EAN-8 scan (]E4) has %zu digits, expected 8", n);
        return -EINVAL;
    default:
        return 0; /* a modifier not defined for EAN/UPC: nothing known to check */
    }
}

/* ---- scan_decode ------------------------------------------------------------------- */

/*
 * Length of the well-formed UTF-8 sequence at p (n bytes available) and its code
 * point, or 0 when it is not well-formed (overlong, surrogate, above U+10FFFF, cut).
 */
static size_t utf8_seq(const uint8_t *p, size_t n, uint32_t *cp)
{
    uint8_t b = p[0];
    size_t len;
    uint32_t c, min;
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2, c = b & 0x1F, min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3, c = b & 0x0F, min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4, c = b & 0x07, min = 0x10000;
    } else {
        return 0; /* continuation byte, 0xC0/0xC1, 0xF5.. */
    }
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

/* Control bytes, GS outside GS1 data, and UTF-8 of raw[start..end). */
static int check_text(const uint8_t *raw, size_t start, size_t end, bool gs1,
                      const char **reason)
{
    for (size_t i = start; i < end;) {
        uint8_t b = raw[i];
        if (b == SCAN_GS && gs1) {
            i++;
        } else if (b < 0x20 || b == 0x7F) {
            *reason = reasonf("control byte 0x%02X at offset %zu%s", b, i,
                              b == SCAN_GS ? " (GS outside GS1 data)" : "");
            return -EINVAL;
        } else if (b < 0x80) {
            i++;
        } else {
            uint32_t cp;
            size_t n = utf8_seq(raw + i, end - i, &cp);
            if (n == 0) {
                *reason = reasonf("invalid UTF-8 at offset %zu", i);
                return -EINVAL;
            }
            if (cp <= 0x9F) {
                *reason = reasonf("control character U+%04X at offset %zu", (unsigned)cp, i);
                return -EINVAL;
            }
            i += n;
        }
    }
    return 0;
}

int scan_decode(const uint8_t *raw, size_t len, const scan_limits_t *lim, scan_t *out,
                const char **reason)
{
    size_t max = lim && lim->max_len ? lim->max_len : SCAN_MAX_LEN_DEFAULT;
    if (!raw && len) {
        *reason = "no data";
        return -EINVAL;
    }
    size_t end = len;
    while (end > 0 && (raw[end - 1] == '\r' || raw[end - 1] == '\n'))
        end--;
    if (end > max) {
        *reason = reasonf("scan longer than %zu bytes", max);
        return -EMSGSIZE;
    }

    char aim[4] = "";
    size_t start = 0;
    if (end > 0 && raw[0] == ']') {
        if (end >= 3)
            memcpy(aim, raw, 3);
        if (!aim_form_ok(aim)) {
            *reason = "malformed AIM symbology identifier (expected ']', a letter, "
                      "a modifier 0-9/A-Z/a-z)";
            return -EINVAL;
        }
        start = 3;
    }
    if (start == end) {
        *reason = start ? "empty scan (AIM symbology identifier only)" : "empty scan";
        return -EINVAL;
    }

    bool gs1 = scan_aim_is_gs1(aim) || raw[start] == SCAN_GS;
    int r = check_text(raw, start, end, gs1, reason);
    if (r < 0)
        return r;
    if (aim[1] == 'E') {
        r = check_ean(aim, (const char *)raw + start, end - start, reason);
        if (r < 0)
            return r;
    }

    char *text = malloc(end - start + 1);
    uint8_t *copy = malloc(len);
    if (!text || !copy) {
        free(text);
        free(copy);
        *reason = "out of memory";
        return -ENOMEM;
    }
    memcpy(text, raw + start, end - start);
    text[end - start] = '\0';
    memcpy(copy, raw, len);
    *out = (scan_t){
        .text = text,
        .len = end - start,
        .raw = copy,
        .raw_len = len,
        .symbology = scan_symbology_name(aim),
        .gs1 = gs1,
    };
    memcpy(out->aim, aim, sizeof(aim));
    return 0;
}

int scan_set_source(scan_t *scan, const char *scanner_id, int64_t t_ms)
{
    char *id = NULL;
    if (scanner_id && !(id = strdup(scanner_id)))
        return -ENOMEM;
    free(scan->scanner);
    scan->scanner = id;
    scan->t_ms = t_ms;
    return 0;
}

void scan_clear(scan_t *scan)
{
    if (!scan)
        return;
    free(scan->text);
    free(scan->raw);
    free(scan->scanner);
    *scan = (scan_t){ 0 };
}

/* ---- GS1 element strings ----------------------------------------------------------- */

typedef enum {
    AI_CODE,        /* fixed digits with a check digit (SSCC, GTIN) */
    AI_DATE_FIRST,  /* YYMMDD; DD = 00 means the month's first day */
    AI_DATE_LAST,   /* YYMMDD; DD = 00 means the month's last day */
    AI_TEXT,        /* variable length, GS1 character set 82 */
} ai_kind_t;

/* The station contract's AIs plus the predefined-length ones seen beside them. */
static const struct ai_def {
    const char *ai;
    unsigned bit;
    ai_kind_t kind;
    size_t len;      /* fixed length, or the maximum for AI_TEXT */
    size_t off;      /* field in gs1_t: char[len + 1] or caldate_t */
    const char *what;
} ai_defs[] = {
    { "00", GS1_SSCC, AI_CODE, 18, offsetof(gs1_t, sscc), "SSCC" },
    { "01", GS1_GTIN, AI_CODE, 14, offsetof(gs1_t, gtin), "GTIN" },
    { "02", GS1_CONTENT, AI_CODE, 14, offsetof(gs1_t, content), "(02) content GTIN" },
    { "10", GS1_BATCH, AI_TEXT, 20, offsetof(gs1_t, batch), NULL },
    { "11", GS1_PROD_DATE, AI_DATE_FIRST, 6, offsetof(gs1_t, prod_date), NULL },
    { "13", GS1_PACK_DATE, AI_DATE_FIRST, 6, offsetof(gs1_t, pack_date), NULL },
    { "15", GS1_BEST_BEFORE, AI_DATE_LAST, 6, offsetof(gs1_t, best_before), NULL },
    { "16", GS1_SELL_BY, AI_DATE_LAST, 6, offsetof(gs1_t, sell_by), NULL },
    { "17", GS1_EXPIRY, AI_DATE_LAST, 6, offsetof(gs1_t, expiry), NULL },
    { "21", GS1_SERIAL, AI_TEXT, 20, offsetof(gs1_t, serial), NULL },
    { "240", GS1_ADDITIONAL_ID, AI_TEXT, 30, offsetof(gs1_t, additional_id), NULL },
    { "250", GS1_SECONDARY_SERIAL, AI_TEXT, 30, offsetof(gs1_t, secondary_serial), NULL },
};

/*
 * Digits of the AI that starts with these two digits, after the GS1 General
 * Specifications' table of AI prefixes. Only used to name an unsupported AI whole.
 */
static size_t ai_length(int d1, int d2)
{
    int p = d1 * 10 + d2;
    if ((p >= 23 && p <= 25) || (p >= 40 && p <= 42) || p == 71)
        return 3;
    if ((p >= 31 && p <= 36) || p == 39 || p == 43 || p == 70 || p == 72 ||
        (p >= 80 && p <= 82))
        return 4;
    return 2;
}

/* GS1 AI encodable character set 82 (General Specifications figure 7.11-1). */
static bool cset82(int c)
{
    return (c >= '0' && c <= '9') || is_alpha(c) || c == '!' || c == '"' ||
           (c >= '%' && c <= '/') || (c >= ':' && c <= '?') || c == '_';
}

static int days_in_month(int y, int m)
{
    return m == 12 ? 31 : caldate_from_ymd(y, m + 1, 1) - caldate_from_ymd(y, m, 1);
}

/* YYMMDD at s, ref_year's sliding window (see gs1_parse_at). */
static int gs1_date(const struct ai_def *def, const char *s, int ref_year, caldate_t *out,
                    bool *day_unspecified, const char **reason)
{
    int yy = (s[0] - '0') * 10 + (s[1] - '0');
    int mm = (s[2] - '0') * 10 + (s[3] - '0');
    int dd = (s[4] - '0') * 10 + (s[5] - '0');
    int cur = ref_year % 100, diff = yy - cur;
    int y = ref_year - cur + yy + (diff >= 51 ? -100 : diff <= -50 ? 100 : 0);
    if (mm < 1 || mm > 12 || dd > days_in_month(y, mm)) {
        *reason = reasonf("(%s) is not a valid date YYMMDD: %.6s", def->ai, s);
        return -EINVAL;
    }
    *day_unspecified = dd == 0;
    if (dd == 0)
        dd = def->kind == AI_DATE_LAST ? days_in_month(y, mm) : 1;
    *out = caldate_from_ymd(y, mm, dd);
    return 0;
}

/*
 * One element's value, value[0..n), into g. For fixed lengths n is the definition's
 * length and the digits are already checked.
 */
static int gs1_store(const struct ai_def *def, const char *value, size_t n, size_t at,
                     int ref_year, gs1_t *g, const char **reason)
{
    char *field = (char *)g + def->off;
    caldate_t date = CALDATE_NONE;
    bool dup = g->present & def->bit, unspecified = false, same;
    int r;

    switch (def->kind) {
    case AI_CODE:
        if ((r = check_code(def->what, value, n, reason)) < 0)
            return r;
        same = dup && memcmp(field, value, n) == 0;
        if (!dup) {
            memcpy(field, value, n);
            field[n] = '\0';
        }
        break;
    case AI_TEXT:
        if (n == 0) {
            *reason = reasonf("(%s) is empty", def->ai);
            return -EINVAL;
        }
        if (n > def->len) {
            *reason = reasonf("(%s) longer than %zu characters", def->ai, def->len);
            return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
            int c = (unsigned char)value[i];
            if (!cset82(c)) {
                if (c > 0x20 && c < 0x7F)
                    *reason = reasonf("(%s) has '%c' at offset %zu, not allowed in GS1 data",
                                      def->ai, c, at + i);
                else
                    *reason = reasonf("(%s) has byte 0x%02X at offset %zu, not allowed in "
                                      "GS1 data", def->ai, (unsigned)c, at + i);
                return -EINVAL;
            }
        }
        same = dup && strlen(field) == n && memcmp(field, value, n) == 0;
        if (!dup) {
            memcpy(field, value, n);
            field[n] = '\0';
        }
        break;
    default:
        if ((r = gs1_date(def, value, ref_year, &date, &unspecified, reason)) < 0)
            return r;
        caldate_t had;
        memcpy(&had, field, sizeof(had));
        same = dup && had == date;
        if (!dup) {
            memcpy(field, &date, sizeof(date));
            if (unspecified)
                g->day_unspecified |= def->bit;
        }
        break;
    }
    if (dup && !same) {
        *reason = reasonf("(%s) given twice with different values", def->ai);
        return -EINVAL;
    }
    g->present |= def->bit;
    return 0;
}

int gs1_parse_at(const char *data, size_t len, int ref_year, gs1_t *out, const char **reason)
{
    gs1_t g = { .prod_date = CALDATE_NONE, .pack_date = CALDATE_NONE,
                .best_before = CALDATE_NONE, .sell_by = CALDATE_NONE,
                .expiry = CALDATE_NONE };
    size_t i = 0;
    if (!data && len) {
        *reason = "no data";
        return -EINVAL;
    }
    if (len > 0 && data[0] == SCAN_GS)
        i = 1;
    if (i == len) {
        *reason = "empty GS1 element string";
        return -EINVAL;
    }

    while (i < len) {
        if (data[i] == SCAN_GS) {
            *reason = reasonf("unexpected GS at offset %zu (empty element)", i);
            return -EINVAL;
        }
        if (len - i < 2 || !is_digit((unsigned char)data[i]) ||
            !is_digit((unsigned char)data[i + 1])) {
            *reason = reasonf("expected a GS1 AI at offset %zu", i);
            return -EINVAL;
        }
        size_t ai_len = ai_length(data[i] - '0', data[i + 1] - '0');
        if (len - i < ai_len || !all_digits(data + i, ai_len)) {
            *reason = reasonf("expected a GS1 AI at offset %zu", i);
            return -EINVAL;
        }
        const struct ai_def *def = NULL;
        for (size_t k = 0; k < sizeof(ai_defs) / sizeof(ai_defs[0]); k++)
            if (strlen(ai_defs[k].ai) == ai_len && memcmp(ai_defs[k].ai, data + i, ai_len) == 0)
                def = &ai_defs[k];
        if (!def) {
            *reason = reasonf("unsupported GS1 AI (%.*s)", (int)ai_len, data + i);
            return -EINVAL;
        }
        i += ai_len;

        size_t n;
        if (def->kind == AI_TEXT) {
            for (n = 0; i + n < len && data[i + n] != SCAN_GS; n++)
                ;
        } else {
            for (n = 0; n < def->len && i + n < len && is_digit((unsigned char)data[i + n]); n++)
                ;
            if (n < def->len) {
                *reason = reasonf("(%s) must be %zu digits, got %zu", def->ai, def->len, n);
                return -EINVAL;
            }
        }
        int r = gs1_store(def, data + i, n, i, ref_year, &g, reason);
        if (r < 0)
            return r;
        i += n;
        if (i < len && data[i] == SCAN_GS)
            i++; /* the separator; also tolerated after fixed lengths and at the end */
    }
    *out = g;
    return 0;
}

int gs1_parse(const char *data, size_t len, gs1_t *out, const char **reason)
{
    int y = 2000, m, d;
    caldate_t today = caldate_today();
    if (today != CALDATE_NONE)
        caldate_to_ymd(today, &y, &m, &d);
    return gs1_parse_at(data, len, y, out, reason);
}
