/*
 * Scan decoding (drivers/scan.h): untrusted scanner bytes, AIM symbology ids, EAN/UPC
 * and GS1 check digits, GS1 element strings.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/scan.h"
#include "tests/suites.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Decode a C string; reason is "" on success. */
static int dec(const char *s, scan_t *sc, const char **reason)
{
    *reason = "";
    return scan_decode((const uint8_t *)s, strlen(s), NULL, sc, reason);
}

/* Decode and expect rejection with exactly this reason. */
static void rejects(const char *s, size_t len, int err, const char *why)
{
    scan_t sc = { .text = (char *)"untouched" };
    const char *reason = NULL;
    CU_ASSERT_EQUAL(scan_decode((const uint8_t *)s, len, NULL, &sc, &reason), err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(reason);
    CU_ASSERT_STRING_EQUAL(reason, why);
    CU_ASSERT_STRING_EQUAL(sc.text, "untouched");
}

static caldate_t D(const char *s)
{
    caldate_t d = CALDATE_NONE;
    CU_ASSERT_EQUAL(caldate_parse(s, &d), 0);
    return d;
}

static void test_plain_and_terminators(void)
{
    const char *inputs[] = { "ABC123", "ABC123\n", "ABC123\r", "ABC123\r\n", "ABC123\n\r" };
    for (size_t i = 0; i < N_ELEMS(inputs); i++) {
        scan_t sc;
        const char *reason;
        CU_ASSERT_EQUAL_FATAL(dec(inputs[i], &sc, &reason), 0);
        CU_ASSERT_STRING_EQUAL(sc.text, "ABC123");
        CU_ASSERT_EQUAL(sc.len, 6);
        CU_ASSERT_EQUAL(sc.raw_len, strlen(inputs[i]));
        CU_ASSERT_EQUAL(memcmp(sc.raw, inputs[i], sc.raw_len), 0);
        CU_ASSERT_STRING_EQUAL(sc.aim, "");
        CU_ASSERT_STRING_EQUAL(sc.symbology, "unknown");
        CU_ASSERT_FALSE(sc.gs1);
        CU_ASSERT_PTR_NULL(sc.scanner);
        CU_ASSERT_EQUAL(sc.t_ms, 0);
        scan_clear(&sc);
        CU_ASSERT_PTR_NULL(sc.text);
    }
}

static void test_source_and_clear(void)
{
    scan_t sc;
    const char *reason;
    CU_ASSERT_EQUAL_FATAL(dec("RMA-12345", &sc, &reason), 0);
    CU_ASSERT_EQUAL(scan_set_source(&sc, "tcp:127.0.0.1:7790#3", 123456), 0);
    CU_ASSERT_STRING_EQUAL(sc.scanner, "tcp:127.0.0.1:7790#3");
    CU_ASSERT_EQUAL(sc.t_ms, 123456);
    CU_ASSERT_EQUAL(scan_set_source(&sc, "usb:05e0:1200", 7), 0); /* replaces */
    CU_ASSERT_STRING_EQUAL(sc.scanner, "usb:05e0:1200");
    scan_clear(&sc);
    CU_ASSERT_PTR_NULL(sc.scanner);
    scan_clear(&sc); /* twice */
    scan_clear(NULL);
    scan_t zero = { 0 };
    scan_clear(&zero);
}

static const struct {
    const char *input;  /* AIM id + valid data */
    const char *aim, *name;
    int gs1;
} aim_cases[] = {
    { "]C1" "0109506000134352", "]C1", "GS1-128", 1 },
    { "]C0ABC-123", "]C0", "Code 128", 0 },
    { "]C2ABC", "]C2", "Code 128", 0 },
    { "]d2" "0109506000134352", "]d2", "GS1 DataMatrix", 1 },
    { "]d1ABC", "]d1", "Data Matrix", 0 },
    { "]Q3" "0109506000134352", "]Q3", "GS1 QR Code", 1 },
    { "]Q1https://example.com/x", "]Q1", "QR Code", 0 },
    { "]e0" "0109506000134352", "]e0", "GS1 DataBar", 1 },
    { "]E04006381333931", "]E0", "EAN-13/UPC", 0 },
    { "]E112", "]E1", "EAN/UPC 2-digit add-on", 0 },
    { "]E212345", "]E2", "EAN/UPC 5-digit add-on", 0 },
    { "]E3400638133393112", "]E3", "EAN-13/UPC with add-on", 0 },
    { "]E496385074", "]E4", "EAN-8", 0 },
    { "]A0SN12345", "]A0", "Code 39", 0 },
    { "]B0123", "]B0", "Telepen", 0 },
    { "]D0ABC", "]D0", "Code One", 0 },
    { "]F0A123B", "]F0", "Codabar", 0 },
    { "]G0ABC", "]G0", "Code 93", 0 },
    { "]H0123", "]H0", "Code 11", 0 },
    { "]I01234567890", "]I0", "Interleaved 2 of 5", 0 },
    { "]K0ABC", "]K0", "Code 16K", 0 },
    { "]L2ABC", "]L2", "PDF417", 0 },
    { "]M0123", "]M0", "MSI", 0 },
    { "]O0ABC", "]O0", "Codablock", 0 },
    { "]P0123", "]P0", "Plessey", 0 },
    { "]R0123", "]R0", "Straight 2 of 5 (2-bar start/stop)", 0 },
    { "]S0123", "]S0", "Straight 2 of 5 (3-bar start/stop)", 0 },
    { "]T0ABC", "]T0", "Code 49", 0 },
    { "]U0ABC", "]U0", "MaxiCode", 0 },
    { "]X0ABC", "]X0", "other symbology", 0 },
    { "]h0ABC", "]h0", "Han Xin", 0 },
    { "]z0ABC", "]z0", "Aztec", 0 },
    { "]W9ABC", "]W9", "unknown symbology", 0 },  /* valid form, unknown letter */
    { "]AzABC", "]Az", "Code 39", 0 },            /* letter modifiers are valid */
};

static void test_aim_ids(void)
{
    for (size_t i = 0; i < N_ELEMS(aim_cases); i++) {
        scan_t sc;
        const char *reason;
        int r = dec(aim_cases[i].input, &sc, &reason);
        CU_ASSERT_EQUAL(r, 0);
        if (r != 0) {
            fprintf(stderr, "\n  %s: %s\n", aim_cases[i].input, reason);
            continue;
        }
        CU_ASSERT_STRING_EQUAL(sc.aim, aim_cases[i].aim);
        CU_ASSERT_STRING_EQUAL(sc.symbology, aim_cases[i].name);
        CU_ASSERT_EQUAL(sc.gs1, aim_cases[i].gs1);
        CU_ASSERT_EQUAL(scan_aim_is_gs1(aim_cases[i].aim), aim_cases[i].gs1);
        CU_ASSERT_STRING_EQUAL(sc.text, aim_cases[i].input + 3);
        CU_ASSERT_EQUAL(sc.len, strlen(aim_cases[i].input) - 3);
        CU_ASSERT_EQUAL(sc.raw_len, strlen(aim_cases[i].input));
        scan_clear(&sc);
    }
    CU_ASSERT_STRING_EQUAL(scan_symbology_name(NULL), "unknown");
    CU_ASSERT_STRING_EQUAL(scan_symbology_name(""), "unknown");
    CU_ASSERT_STRING_EQUAL(scan_symbology_name("]C"), "unknown symbology");
    CU_ASSERT_FALSE(scan_aim_is_gs1(NULL));
    CU_ASSERT_FALSE(scan_aim_is_gs1("]C0"));
}

static void test_aim_malformed(void)
{
    const char *why = "malformed AIM symbology identifier (expected ']', a letter, "
                      "a modifier 0-9/A-Z/a-z)";
    const char *bad[] = { "]", "]C", "]1AABC", "]C#ABC", "]]1ABC", "] 1ABC", "]C\x1d" "01" };
    for (size_t i = 0; i < N_ELEMS(bad); i++)
        rejects(bad[i], strlen(bad[i]), -EINVAL, why);
    rejects("]C\xc3\xa9x", 5, -EINVAL, why);
}

static void test_empty(void)
{
    rejects("", 0, -EINVAL, "empty scan");
    rejects("\r\n", 2, -EINVAL, "empty scan");
    rejects("\n\n\n", 3, -EINVAL, "empty scan");
    rejects("]C1", 3, -EINVAL, "empty scan (AIM symbology identifier only)");
    rejects("]E0\r\n", 5, -EINVAL, "empty scan (AIM symbology identifier only)");
    scan_t sc;
    const char *reason = NULL;
    CU_ASSERT_EQUAL(scan_decode(NULL, 0, NULL, &sc, &reason), -EINVAL);
    CU_ASSERT_STRING_EQUAL(reason, "empty scan");
}

static void test_length_limit(void)
{
    char buf[600];
    memset(buf, 'A', sizeof(buf));
    scan_t sc;
    const char *reason = NULL;

    CU_ASSERT_EQUAL(scan_decode((uint8_t *)buf, 512, NULL, &sc, &reason), 0);
    CU_ASSERT_EQUAL(sc.len, 512);
    scan_clear(&sc);
    rejects(buf, 513, -EMSGSIZE, "scan longer than 512 bytes");
    rejects(buf, sizeof(buf), -EMSGSIZE, "scan longer than 512 bytes");

    /* The terminator does not count; the AIM id does. */
    buf[512] = '\r', buf[513] = '\n';
    CU_ASSERT_EQUAL(scan_decode((uint8_t *)buf, 514, NULL, &sc, &reason), 0);
    CU_ASSERT_EQUAL(sc.len, 512);
    CU_ASSERT_EQUAL(sc.raw_len, 514);
    scan_clear(&sc);
    buf[512] = buf[513] = 'A';
    memcpy(buf, "]C0", 3);
    CU_ASSERT_EQUAL(scan_decode((uint8_t *)buf, 512, NULL, &sc, &reason), 0);
    CU_ASSERT_EQUAL(sc.len, 509);
    scan_clear(&sc);
    rejects(buf, 513, -EMSGSIZE, "scan longer than 512 bytes");

    /* Configurable. */
    scan_limits_t lim = { .max_len = 10 };
    CU_ASSERT_EQUAL(scan_decode((uint8_t *)"0123456789\n", 11, &lim, &sc, &reason), 0);
    scan_clear(&sc);
    CU_ASSERT_EQUAL(scan_decode((uint8_t *)"0123456789A", 11, &lim, &sc, &reason), -EMSGSIZE);
    CU_ASSERT_STRING_EQUAL(reason, "scan longer than 10 bytes");
    lim.max_len = 2000;
    char big[1500];
    memset(big, 'x', sizeof(big));
    CU_ASSERT_EQUAL(scan_decode((uint8_t *)big, sizeof(big), &lim, &sc, &reason), 0);
    CU_ASSERT_EQUAL(sc.len, 1500);
    scan_clear(&sc);
}

static void test_control_bytes(void)
{
    rejects("AB\x07" "CD", 5, -EINVAL, "control byte 0x07 at offset 2");
    rejects("ABCD\x07", 5, -EINVAL, "control byte 0x07 at offset 4");
    rejects("AB\0CD", 5, -EINVAL, "control byte 0x00 at offset 2");
    rejects("\0", 1, -EINVAL, "control byte 0x00 at offset 0");
    rejects("A\tB", 3, -EINVAL, "control byte 0x09 at offset 1");
    rejects("A\rB", 3, -EINVAL, "control byte 0x0D at offset 1");
    rejects("A\nB\n", 4, -EINVAL, "control byte 0x0A at offset 1");
    rejects("A\x1b[2J", 5, -EINVAL, "control byte 0x1B at offset 1");
    rejects("AB\x7f", 3, -EINVAL, "control byte 0x7F at offset 2");
    rejects("]A0AB\x04", 6, -EINVAL, "control byte 0x04 at offset 5"); /* offsets in raw */
    /* GS only inside GS1 data. */
    rejects("AB\x1d" "CD", 5, -EINVAL, "control byte 0x1D at offset 2 (GS outside GS1 data)");
    rejects("]C0" "10AB\x1d" "21X", 11, -EINVAL,
            "control byte 0x1D at offset 7 (GS outside GS1 data)");
    /* GS1 data may hold GS but no other control byte. */
    rejects("]C1" "10AB\x1d" "21X\x1e", 12, -EINVAL, "control byte 0x1E at offset 11");
    /* C1 controls, UTF-8 encoded. */
    rejects("A\xc2\x85" "B", 4, -EINVAL, "control character U+0085 at offset 1");
    rejects("\xc2\x9f", 2, -EINVAL, "control character U+009F at offset 0");
}

static void test_gs_in_gs1_data(void)
{
    const char *ok[] = { "]C1" "10AB\x1d" "21X", "]d2" "10AB\x1d" "21X", "]Q3" "10AB\x1d" "21X",
                         "]e0" "10AB\x1d" "21X", "\x1d" "10AB\x1d" "21X",
                         "]C1\x1d" "10AB\x1d" "21X" };
    for (size_t i = 0; i < N_ELEMS(ok); i++) {
        scan_t sc;
        const char *reason;
        CU_ASSERT_EQUAL_FATAL(dec(ok[i], &sc, &reason), 0);
        CU_ASSERT_TRUE(sc.gs1);
        CU_ASSERT_PTR_NOT_NULL(memchr(sc.text, 0x1d, sc.len));
        CU_ASSERT_EQUAL(strlen(sc.text), sc.len);
        scan_clear(&sc);
    }
}

static void test_utf8(void)
{
    const char *ok[] = { "M\xc3\xbcller", "\xe2\x82\xac" "100", "\xf0\x9f\x93\xa6",
                         "\xc2\xa0", "\xef\xbf\xbd", "\xf4\x8f\xbf\xbf", "\xc3\xa4\xc3\xb6\xc3\xbc" };
    for (size_t i = 0; i < N_ELEMS(ok); i++) {
        scan_t sc;
        const char *reason;
        CU_ASSERT_EQUAL(dec(ok[i], &sc, &reason), 0);
        CU_ASSERT_STRING_EQUAL(reason, "");
        scan_clear(&sc);
    }
    struct {
        const char *s;
        size_t len;
        const char *why;
    } bad[] = {
        { "ABC\x80", 4, "invalid UTF-8 at offset 3" },           /* lone continuation */
        { "ABCDEFGH\xc3", 9, "invalid UTF-8 at offset 8" },      /* cut at the end */
        { "AB\xc3\x28", 4, "invalid UTF-8 at offset 2" },        /* bad continuation */
        { "\xc0\xaf", 2, "invalid UTF-8 at offset 0" },          /* overlong '/' */
        { "\xc1\xbf", 2, "invalid UTF-8 at offset 0" },
        { "A\xe0\x80\xaf", 4, "invalid UTF-8 at offset 1" },     /* overlong 3-byte */
        { "A\xf0\x80\x80\xaf", 5, "invalid UTF-8 at offset 1" }, /* overlong 4-byte */
        { "\xed\xa0\x80", 3, "invalid UTF-8 at offset 0" },      /* surrogate U+D800 */
        { "\xf4\x90\x80\x80", 4, "invalid UTF-8 at offset 0" },  /* above U+10FFFF */
        { "\xf5\x80\x80\x80", 4, "invalid UTF-8 at offset 0" },
        { "\xff", 1, "invalid UTF-8 at offset 0" },
        { "]A0OK\xe2\x82", 7, "invalid UTF-8 at offset 5" },     /* cut 3-byte, after AIM */
        { "Latin-1 M\xfcller", 14, "invalid UTF-8 at offset 9" },
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++)
        rejects(bad[i].s, bad[i].len, -EINVAL, bad[i].why);
}

static void test_check_digits(void)
{
    CU_ASSERT_EQUAL(gs1_check_digit("400638133393", 12), 1);
    CU_ASSERT_EQUAL(gs1_check_digit("0950600013435", 13), 2);
    CU_ASSERT_EQUAL(gs1_check_digit("9638507", 7), 4);
    CU_ASSERT_EQUAL(gs1_check_digit("03600029145", 11), 2);
    CU_ASSERT_EQUAL(gs1_check_digit("10614141123456789", 17), 7);
    CU_ASSERT_EQUAL(gs1_check_digit("0000000000000", 13), 0);
    CU_ASSERT_EQUAL(gs1_check_digit("12a4", 4), -EINVAL);
    CU_ASSERT_EQUAL(gs1_check_digit("1", 0), -EINVAL);
    CU_ASSERT_EQUAL(gs1_check_digit(NULL, 3), -EINVAL);

    const char *reason = NULL;
    const char *good[] = { "96385074", "036000291452", "4006381333931", "09506000134352",
                           "106141411234567897" };
    for (size_t i = 0; i < N_ELEMS(good); i++)
        CU_ASSERT_EQUAL(gtin_validate(good[i], strlen(good[i]), &reason), 0);
    struct {
        const char *code, *why;
    } bad[] = {
        { "96385075", "EAN-8 check digit is 5, expected 4" },
        { "036000291453", "UPC-A check digit is 3, expected 2" },
        { "4006381333932", "EAN-13 check digit is 2, expected 1" },
        { "00000000000013", "GTIN check digit is 3, expected 7" },
        { "106141411234567890", "SSCC check digit is 0, expected 7" },
        { "40063813339X1", "EAN-13 has a non-digit at position 12" },
        { "1234567", "a GTIN has 8, 12, 13 or 14 digits (an SSCC 18), not 7" },
        { "", "a GTIN has 8, 12, 13 or 14 digits (an SSCC 18), not 0" },
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        CU_ASSERT_EQUAL(gtin_validate(bad[i].code, strlen(bad[i].code), &reason), -EINVAL);
        CU_ASSERT_STRING_EQUAL(reason, bad[i].why);
    }
}

static void test_ean_scans(void)
{
    const char *ok[] = { "]E04006381333931", "]E0036000291452", "]E004252614", "]E496385074",
                         "]E3400638133393112", "]E3400638133393112345", "]E112", "]E254321",
                         "]E51234" /* modifier without a defined EAN check */ };
    for (size_t i = 0; i < N_ELEMS(ok); i++) {
        scan_t sc;
        const char *reason;
        CU_ASSERT_EQUAL(dec(ok[i], &sc, &reason), 0);
        CU_ASSERT_STRING_EQUAL(reason, "");
        scan_clear(&sc);
    }
    struct {
        const char *s, *why;
    } bad[] = {
        { "]E04006381333932", "EAN-13 check digit is 2, expected 1" },
        { "]E0036000291451", "UPC-A check digit is 1, expected 2" },
        { "]E004252615", "UPC-E check digit is 5, expected 4" },
        { "]E024252614", "UPC-E number system is 2, expected 0 or 1" },
        { "]E496385070", "EAN-8 check digit is 0, expected 4" },
        { "]E3400638133393212", "EAN-13 check digit is 2, expected 1" },
        { "]E01234567890", "EAN/UPC scan (]E0) has 10 digits, expected 13, 12 or 8 (UPC-E)" },
        { "]E0400638133393A", "EAN/UPC scan (]E0) has a non-digit at position 13" },
        { "]E4963850745", "EAN-8 scan (]E4) has 9 digits, expected 8" },
        { "]E3400638133393", "EAN/UPC scan with add-on (]E3) has 12 digits, expected 15 or 18" },
        { "]E1123", "EAN/UPC add-on (]E1) has 3 digits, expected 2" },
        { "]E21234", "EAN/UPC add-on (]E2) has 4 digits, expected 5" },
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++)
        rejects(bad[i].s, strlen(bad[i].s), -EINVAL, bad[i].why);
}

/* ---- GS1 ---------------------------------------------------------------------------- */

#define GTIN "09506000134352"
#define GS "\x1d"

static int gs1(const char *s, gs1_t *g, const char **reason)
{
    *reason = "";
    return gs1_parse_at(s, strlen(s), 2026, g, reason);
}

static void gs1_rejects(const char *s, const char *why)
{
    gs1_t g = { .present = 0xdead };
    const char *reason = NULL;
    CU_ASSERT_EQUAL(gs1_parse_at(s, strlen(s), 2026, &g, &reason), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(reason);
    CU_ASSERT_STRING_EQUAL(reason, why);
    CU_ASSERT_EQUAL(g.present, 0xdead);
}

static void test_gs1_full_string(void)
{
    /* The same element string as a GS1 DataMatrix scan with AIM id and as a wedge scan
     * with leading FNC1 (GS). */
    const char *inputs[] = { "]d2" "01" GTIN "17261231" "10ABC123" GS "21SER-42\r\n",
                             GS "01" GTIN "17261231" "10ABC123" GS "21SER-42\r\n",
                             "]C1" GS "01" GTIN "17261231" "10ABC123" GS "21SER-42" };
    for (size_t i = 0; i < N_ELEMS(inputs); i++) {
        scan_t sc;
        gs1_t g;
        const char *reason;
        CU_ASSERT_EQUAL_FATAL(dec(inputs[i], &sc, &reason), 0);
        CU_ASSERT_TRUE(sc.gs1);
        CU_ASSERT_EQUAL_FATAL(gs1_parse_at(sc.text, sc.len, 2026, &g, &reason), 0);
        CU_ASSERT_EQUAL(g.present, GS1_GTIN | GS1_EXPIRY | GS1_BATCH | GS1_SERIAL);
        CU_ASSERT_STRING_EQUAL(g.gtin, GTIN);
        CU_ASSERT_EQUAL(g.expiry, D("2026-12-31"));
        CU_ASSERT_STRING_EQUAL(g.batch, "ABC123");
        CU_ASSERT_STRING_EQUAL(g.serial, "SER-42");
        CU_ASSERT_EQUAL(g.prod_date, CALDATE_NONE);
        CU_ASSERT_EQUAL(g.day_unspecified, 0);
        scan_clear(&sc);
    }
}

static void test_gs1_each_ai(void)
{
    gs1_t g;
    const char *reason;

    CU_ASSERT_EQUAL_FATAL(gs1("00106141411234567897", &g, &reason), 0);
    CU_ASSERT_EQUAL(g.present, GS1_SSCC);
    CU_ASSERT_STRING_EQUAL(g.sscc, "106141411234567897");

    CU_ASSERT_EQUAL_FATAL(gs1("01" GTIN, &g, &reason), 0);
    CU_ASSERT_EQUAL(g.present, GS1_GTIN);
    CU_ASSERT_STRING_EQUAL(g.gtin, GTIN);

    CU_ASSERT_EQUAL_FATAL(gs1("02" GTIN "37" , &g, &reason), -EINVAL); /* 37 not supported */
    CU_ASSERT_STRING_EQUAL(reason, "unsupported GS1 AI (37)");
    CU_ASSERT_EQUAL_FATAL(gs1("0204006381333931", &g, &reason), 0);
    CU_ASSERT_EQUAL(g.present, GS1_CONTENT);
    CU_ASSERT_STRING_EQUAL(g.content, "04006381333931");

    CU_ASSERT_EQUAL_FATAL(gs1("10LOT.2026/A-1_x", &g, &reason), 0);
    CU_ASSERT_EQUAL(g.present, GS1_BATCH);
    CU_ASSERT_STRING_EQUAL(g.batch, "LOT.2026/A-1_x");

    CU_ASSERT_EQUAL_FATAL(gs1("11250315", &g, &reason), 0);
    CU_ASSERT_EQUAL(g.present, GS1_PROD_DATE);
    CU_ASSERT_EQUAL(g.prod_date, D("2025-03-15"));

    CU_ASSERT_EQUAL_FATAL(gs1("13250316", &g, &reason), 0);
    CU_ASSERT_EQUAL(g.pack_date, D("2025-03-16"));
    CU_ASSERT_EQUAL_FATAL(gs1("15270101", &g, &reason), 0);
    CU_ASSERT_EQUAL(g.best_before, D("2027-01-01"));
    CU_ASSERT_EQUAL_FATAL(gs1("16270102", &g, &reason), 0);
    CU_ASSERT_EQUAL(g.sell_by, D("2027-01-02"));
    CU_ASSERT_EQUAL_FATAL(gs1("17280229", &g, &reason), 0); /* leap day */
    CU_ASSERT_EQUAL(g.present, GS1_EXPIRY);
    CU_ASSERT_EQUAL(g.expiry, D("2028-02-29"));

    /* Every punctuation character of set 82. */
    CU_ASSERT_EQUAL_FATAL(gs1("21" "!\"%&'()*+,-./:;<=>?_", &g, &reason), 0);
    CU_ASSERT_EQUAL(g.present, GS1_SERIAL);
    CU_ASSERT_STRING_EQUAL(g.serial, "!\"%&'()*+,-./:;<=>?_");

    CU_ASSERT_EQUAL_FATAL(gs1("240ADD-ID-1", &g, &reason), 0);
    CU_ASSERT_EQUAL(g.present, GS1_ADDITIONAL_ID);
    CU_ASSERT_STRING_EQUAL(g.additional_id, "ADD-ID-1");

    CU_ASSERT_EQUAL_FATAL(gs1("250SEC-SER-9", &g, &reason), 0);
    CU_ASSERT_EQUAL(g.present, GS1_SECONDARY_SERIAL);
    CU_ASSERT_STRING_EQUAL(g.secondary_serial, "SEC-SER-9");

    /* All at once, fixed fields with and without a following GS, a final GS. */
    CU_ASSERT_EQUAL_FATAL(gs1(GS "00106141411234567897" "01" GTIN GS "0204006381333931"
                              "11250315" "13250316" GS "15270101" "16270102" "17280229"
                              "10B1" GS "21S1" GS "240A1" GS "250X9" GS, &g, &reason), 0);
    CU_ASSERT_EQUAL(g.present, GS1_SSCC | GS1_GTIN | GS1_CONTENT | GS1_BATCH | GS1_PROD_DATE |
                                   GS1_PACK_DATE | GS1_BEST_BEFORE | GS1_SELL_BY | GS1_EXPIRY |
                                   GS1_SERIAL | GS1_ADDITIONAL_ID | GS1_SECONDARY_SERIAL);
    CU_ASSERT_STRING_EQUAL(g.batch, "B1");
    CU_ASSERT_STRING_EQUAL(g.serial, "S1");
    CU_ASSERT_STRING_EQUAL(g.additional_id, "A1");
    CU_ASSERT_STRING_EQUAL(g.secondary_serial, "X9");
}

static void test_gs1_lengths(void)
{
    gs1_t g;
    const char *reason;
    /* Maximum lengths are accepted, one more is not. */
    CU_ASSERT_EQUAL(gs1("10" "ABCDEFGHIJ0123456789", &g, &reason), 0);
    CU_ASSERT_STRING_EQUAL(g.batch, "ABCDEFGHIJ0123456789");
    gs1_rejects("10" "ABCDEFGHIJ0123456789X", "(10) longer than 20 characters");
    CU_ASSERT_EQUAL(gs1("21" "ABCDEFGHIJ0123456789" GS "10X", &g, &reason), 0);
    gs1_rejects("21" "ABCDEFGHIJ0123456789X" GS "10X", "(21) longer than 20 characters");
    CU_ASSERT_EQUAL(gs1("240" "ABCDEFGHIJ0123456789abcdefghij", &g, &reason), 0);
    CU_ASSERT_STRING_EQUAL(g.additional_id, "ABCDEFGHIJ0123456789abcdefghij");
    gs1_rejects("240" "ABCDEFGHIJ0123456789abcdefghijk", "(240) longer than 30 characters");
    CU_ASSERT_EQUAL(gs1("250" "ABCDEFGHIJ0123456789abcdefghij", &g, &reason), 0);
    gs1_rejects("250" "ABCDEFGHIJ0123456789abcdefghijk", "(250) longer than 30 characters");

    /* A variable field runs to GS or the end: without GS the next "AI" is data. */
    CU_ASSERT_EQUAL(gs1("10ABC17261231", &g, &reason), 0);
    CU_ASSERT_EQUAL(g.present, GS1_BATCH);
    CU_ASSERT_STRING_EQUAL(g.batch, "ABC17261231");

    /* Empty variable fields. */
    gs1_rejects("10" GS "21X", "(10) is empty");
    gs1_rejects("01" GTIN "21", "(21) is empty");
    gs1_rejects("240", "(240) is empty");
    gs1_rejects("250" GS, "(250) is empty");

    /* Fixed fields cut short. */
    gs1_rejects("01123", "(01) must be 14 digits, got 3");
    gs1_rejects("0109506000" GS "21X", "(01) must be 14 digits, got 8");
    gs1_rejects("00123456789012345", "(00) must be 18 digits, got 15");
    gs1_rejects("1726123", "(17) must be 6 digits, got 5");
    gs1_rejects("1126-12-31", "(11) must be 6 digits, got 2");
    gs1_rejects("01", "(01) must be 14 digits, got 0");
}

static void test_gs1_charset(void)
{
    gs1_rejects("21AB#C", "(21) has '#' at offset 4, not allowed in GS1 data");
    gs1_rejects("10A B", "(10) has byte 0x20 at offset 3, not allowed in GS1 data");
    gs1_rejects("240A@", "(240) has '@' at offset 4, not allowed in GS1 data");
    gs1_rejects("250~", "(250) has '~' at offset 3, not allowed in GS1 data");
    gs1_rejects("21M\xc3\xbcller", "(21) has byte 0xC3 at offset 3, not allowed in GS1 data");
    const char *excluded = "#$@[\\]^`{|}~ ";
    for (const char *c = excluded; *c; c++) {
        char s[8] = "21A";
        s[3] = *c;
        gs1_t g;
        const char *reason;
        CU_ASSERT_EQUAL(gs1(s, &g, &reason), -EINVAL);
    }
}

static void test_gs1_check_digits(void)
{
    gs1_rejects("01" "09506000134353", "GTIN check digit is 3, expected 2");
    gs1_rejects("01" "00000000000013", "GTIN check digit is 3, expected 7");
    gs1_rejects("00" "106141411234567891", "SSCC check digit is 1, expected 7");
    gs1_rejects("02" "04006381333932", "(02) content GTIN check digit is 2, expected 1");
    gs1_rejects("10X" GS "01" "09506000134350", "GTIN check digit is 0, expected 2");
}

static void test_gs1_dates(void)
{
    gs1_t g;
    const char *reason;
    gs1_rejects("17261301", "(17) is not a valid date YYMMDD: 261301");
    gs1_rejects("17260001", "(17) is not a valid date YYMMDD: 260001");
    gs1_rejects("11260132", "(11) is not a valid date YYMMDD: 260132");
    gs1_rejects("13250229", "(13) is not a valid date YYMMDD: 250229"); /* not a leap year */
    gs1_rejects("15260431", "(15) is not a valid date YYMMDD: 260431");
    gs1_rejects("16269999", "(16) is not a valid date YYMMDD: 269999");

    /* DD = 00: end of month for expiry-like dates, start for production/packaging. */
    CU_ASSERT_EQUAL_FATAL(gs1("17250200", &g, &reason), 0);
    CU_ASSERT_EQUAL(g.expiry, D("2025-02-28"));
    CU_ASSERT_EQUAL(g.day_unspecified, GS1_EXPIRY);
    CU_ASSERT_EQUAL_FATAL(gs1("17240200", &g, &reason), 0);
    CU_ASSERT_EQUAL(g.expiry, D("2024-02-29"));
    CU_ASSERT_EQUAL_FATAL(gs1("15261200", &g, &reason), 0);
    CU_ASSERT_EQUAL(g.best_before, D("2026-12-31"));
    CU_ASSERT_EQUAL_FATAL(gs1("16260400", &g, &reason), 0);
    CU_ASSERT_EQUAL(g.sell_by, D("2026-04-30"));
    CU_ASSERT_EQUAL_FATAL(gs1("11250700" "17270100", &g, &reason), 0);
    CU_ASSERT_EQUAL(g.prod_date, D("2025-07-01"));
    CU_ASSERT_EQUAL(g.expiry, D("2027-01-31"));
    CU_ASSERT_EQUAL(g.day_unspecified, GS1_PROD_DATE | GS1_EXPIRY);
    CU_ASSERT_EQUAL_FATAL(gs1("13250700", &g, &reason), 0);
    CU_ASSERT_EQUAL(g.pack_date, D("2025-07-01"));
    CU_ASSERT_EQUAL(g.day_unspecified, GS1_PACK_DATE);
    gs1_rejects("17250000", "(17) is not a valid date YYMMDD: 250000");

    /* The GS1 sliding century window around the reference year. */
    struct {
        int ref;
        const char *yymmdd, *date;
    } win[] = {
        { 2026, "000101", "2000-01-01" }, { 2026, "260101", "2026-01-01" },
        { 2026, "760101", "2076-01-01" }, { 2026, "770101", "1977-01-01" },
        { 2026, "990101", "1999-01-01" }, { 2060, "090101", "2109-01-01" },
        { 2060, "100101", "2110-01-01" }, { 2060, "110101", "2011-01-01" },
        { 1999, "000101", "2000-01-01" }, { 1999, "480101", "2048-01-01" },
        { 1999, "500101", "1950-01-01" },
    };
    for (size_t i = 0; i < N_ELEMS(win); i++) {
        char s[16] = "11";
        strcat(s, win[i].yymmdd);
        CU_ASSERT_EQUAL_FATAL(gs1_parse_at(s, 8, win[i].ref, &g, &reason), 0);
        if (g.prod_date != D(win[i].date))
            fprintf(stderr, "\n  ref %d %s\n", win[i].ref, win[i].yymmdd);
        CU_ASSERT_EQUAL(g.prod_date, D(win[i].date));
    }

    /* gs1_parse() uses today's year; 2030 is 2030 for any year from 1980 to 2079. */
    CU_ASSERT_EQUAL_FATAL(gs1_parse("17300615", 8, &g, &reason), 0);
    CU_ASSERT_EQUAL(g.expiry, D("2030-06-15"));
}

static void test_gs1_structure(void)
{
    gs1_t g;
    const char *reason;
    gs1_rejects("", "empty GS1 element string");
    gs1_rejects(GS, "empty GS1 element string");
    gs1_rejects("01" GTIN "X", "expected a GS1 AI at offset 16");
    gs1_rejects("01" GTIN "1", "expected a GS1 AI at offset 16");
    gs1_rejects("ABC", "expected a GS1 AI at offset 0");
    gs1_rejects("01" GTIN GS GS "21X", "unexpected GS at offset 17 (empty element)");
    gs1_rejects(GS GS "01" GTIN, "unexpected GS at offset 1 (empty element)");
    gs1_rejects("24", "expected a GS1 AI at offset 0");
    gs1_rejects("24A", "expected a GS1 AI at offset 0");

    /* Unsupported AIs are named whole, never guessed at. */
    gs1_rejects("3103000123", "unsupported GS1 AI (3103)");
    gs1_rejects("01" GTIN "3922012345", "unsupported GS1 AI (3922)");
    gs1_rejects("241PART", "unsupported GS1 AI (241)");
    gs1_rejects("99INTERNAL", "unsupported GS1 AI (99)");
    gs1_rejects("12260101", "unsupported GS1 AI (12)");
    gs1_rejects("20" "01", "unsupported GS1 AI (20)");
    gs1_rejects("8004ABC", "unsupported GS1 AI (8004)");
    gs1_rejects("7003123", "unsupported GS1 AI (7003)");
    gs1_rejects("05123", "unsupported GS1 AI (05)");

    /* The same AI twice: fine with the same value, an error otherwise. */
    CU_ASSERT_EQUAL(gs1("21A" GS "21A", &g, &reason), 0);
    CU_ASSERT_EQUAL(gs1("17261231" "17261231", &g, &reason), 0);
    gs1_rejects("21A" GS "21B", "(21) given twice with different values");
    gs1_rejects("01" GTIN "0104006381333931", "(01) given twice with different values");
    gs1_rejects("17261231" "17261230", "(17) given twice with different values");
    gs1_rejects("21AB" GS "21A", "(21) given twice with different values");

    /* Data with an embedded NUL is not a GS1 string. */
    gs1_t g2 = { .present = 0xdead };
    CU_ASSERT_EQUAL(gs1_parse_at("21A\0B", 5, 2026, &g2, &reason), -EINVAL);
    CU_ASSERT_STRING_EQUAL(reason, "(21) has byte 0x00 at offset 3, not allowed in GS1 data");
    CU_ASSERT_EQUAL(g2.present, 0xdead);
}

int suite_scan(void)
{
    CU_pSuite s = CU_add_suite("scan", NULL, NULL);
    if (!s || !CU_add_test(s, "plain scan, CR/LF stripped, raw kept", test_plain_and_terminators) ||
        !CU_add_test(s, "scanner id and time, clear", test_source_and_clear) ||
        !CU_add_test(s, "AIM symbology ids", test_aim_ids) ||
        !CU_add_test(s, "malformed AIM ids", test_aim_malformed) ||
        !CU_add_test(s, "empty scans", test_empty) ||
        !CU_add_test(s, "length limit", test_length_limit) ||
        !CU_add_test(s, "control bytes", test_control_bytes) ||
        !CU_add_test(s, "GS inside GS1 data", test_gs_in_gs1_data) ||
        !CU_add_test(s, "UTF-8", test_utf8) ||
        !CU_add_test(s, "GTIN/SSCC check digits", test_check_digits) ||
        !CU_add_test(s, "EAN/UPC scans", test_ean_scans) ||
        !CU_add_test(s, "GS1: AIM prefix and FNC1 prefix", test_gs1_full_string) ||
        !CU_add_test(s, "GS1: each AI", test_gs1_each_ai) ||
        !CU_add_test(s, "GS1: field lengths", test_gs1_lengths) ||
        !CU_add_test(s, "GS1: character set 82", test_gs1_charset) ||
        !CU_add_test(s, "GS1: check digits", test_gs1_check_digits) ||
        !CU_add_test(s, "GS1: dates and century", test_gs1_dates) ||
        !CU_add_test(s, "GS1: structure, unsupported AIs, duplicates", test_gs1_structure))
        return -1;
    return 0;
}
