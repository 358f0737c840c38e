/*
 * HID POS scanners (drivers/hidpos.h): report descriptors in, layouts out; Scanned
 * Data Reports in, scans out. The reference descriptor is the Honeywell one (as its
 * scanners declare it in HID POS mode); the others are cut down or broken on purpose.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/hidpos.h"
#include "tests/helpers.h"
#include "tests/suites.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Honeywell's HID POS report descriptor: Scanned Data Report (ID 2: byte count, AIM
 * id, 56 data bytes, 2 vendor bytes, continued flag), a trigger output report (ID 4)
 * and vendor feature/output reports.
 */
static const uint8_t honeywell[] = {
    0x05, 0x8C, 0x09, 0x02, 0xA1, 0x01, 0x09, 0x12, 0xA1, 0x02, 0x85, 0x02, 0x15, 0x00,
    0x26, 0xFF, 0x00, 0x75, 0x08, 0x95, 0x01, 0x05, 0x01, 0x09, 0x3B, 0x81, 0x02, 0x95,
    0x03, 0x05, 0x8C, 0x09, 0xFB, 0x09, 0xFC, 0x09, 0xFD, 0x81, 0x02, 0x95, 0x38, 0x09,
    0xFE, 0x82, 0x02, 0x01, 0x06, 0x66, 0xFF, 0x95, 0x02, 0x09, 0x04, 0x09, 0x00, 0x81,
    0x02, 0x05, 0x8C, 0x25, 0x01, 0x75, 0x01, 0x95, 0x08, 0x09, 0xFF, 0x81, 0x02, 0xC0,
    0x09, 0x14, 0xA1, 0x02, 0x85, 0x04, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x08,
    0x09, 0x00, 0x09, 0x5F, 0x09, 0x60, 0x09, 0x00, 0x09, 0x00, 0x09, 0x85, 0x09, 0x86,
    0x91, 0x86, 0xC0, 0x06, 0x66, 0xFF, 0x75, 0x08, 0x26, 0xFF, 0x00, 0x09, 0x03, 0xA1,
    0x02, 0x85, 0xFE, 0x95, 0x01, 0x09, 0x03, 0xB2, 0x82, 0x01, 0xC0, 0x09, 0x01, 0xA1,
    0x02, 0x85, 0xFD, 0x95, 0x01, 0x09, 0x21, 0x91, 0x02, 0x95, 0x3E, 0x09, 0x22, 0x92,
    0x82, 0x01, 0xC0, 0xC0,
};

/*
 * A simpler scanner: no Report IDs, symbology ids, 16 data bytes, no byte count, no
 * continuation, and a status input report of its own in a second application.
 */
static const uint8_t plain[] = {
    0x05, 0x8C, 0x09, 0x02, 0xA1, 0x01,       /* Bar Code Scanner, Application */
    0x75, 0x08, 0x95, 0x03,                   /* 3 x 8 bits */
    0x19, 0xFB, 0x29, 0xFD, 0x81, 0x02,       /* Symbology Identifier 1..3 (min/max) */
    0x95, 0x10, 0x09, 0xFE, 0x81, 0x02,       /* 16 x Decoded Data */
    0xC0,
};

/* A boot keyboard's descriptor: a HID device, but no bar code scanner. */
static const uint8_t keyboard[] = {
    0x05, 0x01, 0x09, 0x06, 0xA1, 0x01, 0x05, 0x07, 0x19, 0xE0, 0x29, 0xE7, 0x15, 0x00,
    0x25, 0x01, 0x75, 0x01, 0x95, 0x08, 0x81, 0x02, 0x95, 0x01, 0x75, 0x08, 0x81, 0x01,
    0x95, 0x06, 0x75, 0x08, 0x15, 0x00, 0x25, 0x65, 0x05, 0x07, 0x19, 0x00, 0x29, 0x65,
    0x81, 0x00, 0xC0,
};

static void test_honeywell_layout(void)
{
    hidpos_layout_t lay;
    const char *reason = NULL;
    CU_ASSERT_EQUAL_FATAL(hidpos_parse(honeywell, sizeof(honeywell), &lay, &reason), 0);
    CU_ASSERT_EQUAL(lay.report_id, 2);
    CU_ASSERT_EQUAL(lay.report_len, 64);
    CU_ASSERT(lay.has_count);
    CU_ASSERT_EQUAL(lay.count_off, 1);
    CU_ASSERT(lay.has_sym);
    CU_ASSERT_EQUAL(lay.sym_off[0], 2);
    CU_ASSERT_EQUAL(lay.sym_off[1], 3);
    CU_ASSERT_EQUAL(lay.sym_off[2], 4);
    CU_ASSERT_EQUAL(lay.data_off, 5);
    CU_ASSERT_EQUAL(lay.data_len, 56);
    CU_ASSERT(lay.has_cont);
    CU_ASSERT_EQUAL(lay.cont_bit, 63 * 8);
    /* Report 2 is an input report; 4 (trigger) is output only. */
    CU_ASSERT(lay.input_ids[0] & (1u << 2));
    CU_ASSERT_FALSE(lay.input_ids[0] & (1u << 4));
}

/*
 * Issue 10: the station's answer as an output report. Honeywell's report 4 declares
 * 8 one-bit output fields: (none), Prevent Read, Initiate Read, (none), (none), Sound
 * Error Beep 0x85, Sound Good Read Beep 0x86 (and the last usage repeated).
 */
static void test_honeywell_feedback(void)
{
    hidpos_layout_t lay;
    const char *reason = NULL;
    CU_ASSERT_EQUAL_FATAL(hidpos_parse(honeywell, sizeof(honeywell), &lay, &reason), 0);
    CU_ASSERT(lay.fb.found);
    CU_ASSERT_EQUAL(lay.fb.report_id, 4);
    CU_ASSERT_EQUAL(lay.fb.report_len, 2);
    CU_ASSERT_EQUAL(lay.fb.error_bit, 8 + 5);
    CU_ASSERT_EQUAL(lay.fb.good_bit, 8 + 6);
    CU_ASSERT_EQUAL(lay.fb.led_bit, -1);
    CU_ASSERT_EQUAL(lay.fb.not_on_file_bit, -1);
    uint8_t buf[8];
    size_t len = 0;
    CU_ASSERT_EQUAL(hidpos_feedback_report(&lay, HIDPOS_SIGNAL_GOOD, buf, sizeof(buf), &len), 0);
    CU_ASSERT_EQUAL(len, 2);
    CU_ASSERT_EQUAL(buf[0], 0x04);
    CU_ASSERT_EQUAL(buf[1], 0x40);
    CU_ASSERT_EQUAL(hidpos_feedback_report(&lay, HIDPOS_SIGNAL_ERROR, buf, sizeof(buf), &len), 0);
    CU_ASSERT_EQUAL(buf[0], 0x04);
    CU_ASSERT_EQUAL(buf[1], 0x20);
    CU_ASSERT_EQUAL(hidpos_feedback_report(&lay, HIDPOS_SIGNAL_GOOD, buf, 1, &len), -ENOBUFS);
}

/*
 * Without Report IDs: a good-read LED and a not-on-file beep (no error beep) after
 * 3 bits of padding, as 1-bit fields from a usage range; the error signal falls back
 * to the not-on-file beep. A scanner declaring none gets no report.
 */
static void test_feedback_variants(void)
{
    static const uint8_t desc[] = {
        0x05, 0x8C, 0x09, 0x02, 0xA1, 0x01,       /* Bar Code Scanner, Application */
        0x75, 0x08, 0x95, 0x10, 0x09, 0xFE, 0x81, 0x02,   /* 16 x Decoded Data, input */
        0x75, 0x01, 0x95, 0x03, 0x91, 0x01,       /* 3 bits output padding (Constant) */
        0x95, 0x01, 0x09, 0x7D, 0x91, 0x02,       /* Good Read LED */
        0x95, 0x01, 0x09, 0x87, 0x91, 0x02,       /* Sound Not On File Beep */
        0x95, 0x03, 0x91, 0x01,                   /* padding to a byte */
        0xC0,
    };
    hidpos_layout_t lay;
    const char *reason = NULL;
    CU_ASSERT_EQUAL_FATAL(hidpos_parse(desc, sizeof(desc), &lay, &reason), 0);
    CU_ASSERT(lay.fb.found);
    CU_ASSERT_EQUAL(lay.fb.report_id, 0);
    CU_ASSERT_EQUAL(lay.fb.report_len, 1);
    CU_ASSERT_EQUAL(lay.fb.led_bit, 3);
    CU_ASSERT_EQUAL(lay.fb.not_on_file_bit, 4);
    CU_ASSERT_EQUAL(lay.fb.good_bit, -1);
    uint8_t buf[4];
    size_t len = 0;
    CU_ASSERT_EQUAL(hidpos_feedback_report(&lay, HIDPOS_SIGNAL_GOOD, buf, sizeof(buf), &len), 0);
    CU_ASSERT_EQUAL(len, 1);
    CU_ASSERT_EQUAL(buf[0], 0x08);    /* the LED: no good-read beep declared */
    CU_ASSERT_EQUAL(hidpos_feedback_report(&lay, HIDPOS_SIGNAL_ERROR, buf, sizeof(buf), &len), 0);
    CU_ASSERT_EQUAL(buf[0], 0x10);

    CU_ASSERT_EQUAL_FATAL(hidpos_parse(plain, sizeof(plain), &lay, &reason), 0);
    CU_ASSERT_FALSE(lay.fb.found);
    CU_ASSERT_EQUAL(hidpos_feedback_report(&lay, HIDPOS_SIGNAL_GOOD, buf, sizeof(buf), &len),
                    -ENOTSUP);
}

static void test_plain_layout(void)
{
    hidpos_layout_t lay;
    CU_ASSERT_EQUAL_FATAL(hidpos_parse(plain, sizeof(plain), &lay, NULL), 0);
    CU_ASSERT_EQUAL(lay.report_id, 0);
    CU_ASSERT_EQUAL(lay.report_len, 19);
    CU_ASSERT(lay.has_sym);
    CU_ASSERT_EQUAL(lay.sym_off[0], 0);
    CU_ASSERT_EQUAL(lay.sym_off[2], 2);
    CU_ASSERT_EQUAL(lay.data_off, 3);
    CU_ASSERT_EQUAL(lay.data_len, 16);
    CU_ASSERT_FALSE(lay.has_count);
    CU_ASSERT_FALSE(lay.has_cont);
}

static void test_not_a_scanner(void)
{
    hidpos_layout_t lay;
    memset(&lay, 0x5A, sizeof(lay));
    const char *reason = NULL;
    CU_ASSERT_EQUAL(hidpos_parse(keyboard, sizeof(keyboard), &lay, &reason), -ENOENT);
    CU_ASSERT_EQUAL(lay.report_len, (size_t)0x5A5A5A5A5A5A5A5Aull); /* untouched */
    CU_ASSERT_EQUAL(hidpos_parse(keyboard, 0, &lay, &reason), -ENOENT);
}

/* Parse a descriptor that must be refused; its reason must contain `want`. */
static void refused(const uint8_t *d, size_t n, const char *want)
{
    hidpos_layout_t lay;
    const char *reason = NULL;
    CU_ASSERT_EQUAL(hidpos_parse(d, n, &lay, &reason), -EINVAL);
    ASSERT_CONTAINS(reason, want);
}

static void test_malformed(void)
{
    /* Every cut of the Honeywell descriptor inside an item or a collection is refused. */
    for (size_t n = 1; n < sizeof(honeywell); n++) {
        hidpos_layout_t lay;
        const char *reason = NULL;
        int rc = hidpos_parse(honeywell, n, &lay, &reason);
        CU_ASSERT(rc == -EINVAL || rc == -ENOENT);
        if (rc == -EINVAL)
            CU_ASSERT_PTR_NOT_NULL(reason);
    }
    refused(honeywell, 3, "runs past the end");
    refused(honeywell, sizeof(honeywell) - 1, "without End Collection");
    static const uint8_t stray_end[] = { 0xC0 };
    refused(stray_end, sizeof(stray_end), "without a Collection");
    static const uint8_t pop[] = { 0xB4 };
    refused(pop, sizeof(pop), "Pop without Push");
    static const uint8_t max_only[] = { 0x05, 0x8C, 0x29, 0xFD };
    refused(max_only, sizeof(max_only), "Usage Minimum/Maximum");
    static const uint8_t id0[] = { 0x85, 0x00 };
    refused(id0, sizeof(id0), "Report ID 0");
    static const uint8_t reserved[] = { 0x0C };
    refused(reserved, sizeof(reserved), "reserved item type");
    uint8_t deep[2 * 20];
    for (size_t i = 0; i < 20; i++)
        deep[2 * i] = 0xA1, deep[2 * i + 1] = 0x02;
    refused(deep, sizeof(deep), "nested too deep");
    uint8_t *big = calloc(1, HIDPOS_DESC_MAX + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    refused(big, HIDPOS_DESC_MAX + 1, "at most 4096");
    free(big);
    hidpos_layout_t lay;
    CU_ASSERT_EQUAL(hidpos_parse(NULL, 3, &lay, NULL), -EINVAL);
}

static void test_unsupported_layouts(void)
{
    /* Decoded Data in 16-bit fields. */
    static const uint8_t wide[] = { 0x05, 0x8C, 0x09, 0x02, 0xA1, 0x01, 0x75, 0x10, 0x95,
                                    0x08, 0x09, 0xFE, 0x81, 0x02, 0xC0 };
    refused(wide, sizeof(wide), "16 bits");
    /* Decoded Data not on a byte boundary. */
    static const uint8_t skew[] = { 0x05, 0x8C, 0x09, 0x02, 0xA1, 0x01, 0x75, 0x01, 0x95,
                                    0x01, 0x81, 0x03, 0x75, 0x08, 0x95, 0x08, 0x09, 0xFE,
                                    0x81, 0x02, 0xC0 };
    refused(skew, sizeof(skew), "at bit 1");
    /* Two of the three symbology identifier bytes. */
    static const uint8_t two_sym[] = { 0x05, 0x8C, 0x09, 0x02, 0xA1, 0x01, 0x75, 0x08,
                                       0x95, 0x02, 0x09, 0xFB, 0x09, 0xFC, 0x81, 0x02,
                                       0x95, 0x08, 0x09, 0xFE, 0x81, 0x02, 0xC0 };
    refused(two_sym, sizeof(two_sym), "some but not all");
    /* A scanner collection without Decoded Data. */
    static const uint8_t no_data[] = { 0x05, 0x8C, 0x09, 0x02, 0xA1, 0x01, 0x75, 0x08,
                                       0x95, 0x03, 0x19, 0xFB, 0x29, 0xFD, 0x81, 0x02,
                                       0xC0 };
    refused(no_data, sizeof(no_data), "without Decoded Data");
    /* Decoded Data as a constant (padding) field is no data at all. */
    static const uint8_t constant[] = { 0x05, 0x8C, 0x09, 0x02, 0xA1, 0x01, 0x75, 0x08,
                                        0x95, 0x08, 0x09, 0xFE, 0x81, 0x03, 0xC0 };
    refused(constant, sizeof(constant), "without Decoded Data");
    /* Decoded Data outside the scanner collection does not count. */
    static const uint8_t outside[] = { 0x05, 0x8C, 0x75, 0x08, 0x95, 0x08, 0x09, 0xFE,
                                       0x81, 0x02, 0x09, 0x02, 0xA1, 0x01, 0xC0 };
    refused(outside, sizeof(outside), "without Decoded Data");
}

/* ---- reports ------------------------------------------------------------------------ */

/* A Honeywell Scanned Data Report. */
static void hw_report(uint8_t r[64], const char *aim, const char *data, size_t n, bool more)
{
    memset(r, 0, 64);
    r[0] = 2;
    r[1] = (uint8_t)n;
    if (aim)
        memcpy(r + 2, aim, 3);
    memcpy(r + 5, data, n);
    r[63] = more ? 1 : 0;
}

static hidpos_t *hw_decoder(size_t max_len)
{
    hidpos_layout_t lay;
    CU_ASSERT_EQUAL_FATAL(hidpos_parse(honeywell, sizeof(honeywell), &lay, NULL), 0);
    hidpos_t *p = hidpos_new(&lay, max_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

/* Feed one report; check the result and, for SCAN/LONG, the bytes. */
static void feed(hidpos_t *p, const uint8_t *r, size_t len, hidpos_result_t want,
                 const char *want_out, const char *want_reason)
{
    const uint8_t *out = NULL;
    size_t n = 0;
    const char *reason = NULL;
    hidpos_result_t got = hidpos_feed(p, r, len, &out, &n, &reason);
    CU_ASSERT_EQUAL(got, want);
    if (want_out) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(out);
        CU_ASSERT_EQUAL(n, strlen(want_out));
        CU_ASSERT(n == strlen(want_out) && memcmp(out, want_out, n) == 0);
    }
    if (want_reason)
        ASSERT_CONTAINS(reason, want_reason);
}

static void test_single_report(void)
{
    hidpos_t *p = hw_decoder(0);
    uint8_t r[64];
    hw_report(r, "]E0", "4006381333931", 13, false);
    feed(p, r, sizeof(r), HIDPOS_SCAN, "]E04006381333931", NULL);
    CU_ASSERT_FALSE(hidpos_pending(p));
    /* No identifier sent (zeros): the data alone. */
    hw_report(r, NULL, "RMA-12345", 9, false);
    feed(p, r, sizeof(r), HIDPOS_SCAN, "RMA-12345", NULL);
    hidpos_destroy(&p);
    CU_ASSERT_PTR_NULL(p);
    hidpos_destroy(NULL);
}

static void test_continued_gs1(void)
{
    hidpos_t *p = hw_decoder(0);
    /* A GS1 DataMatrix element string of 60 bytes: 56 + 4 over two reports. */
    const char *gs1 = "\x1d" "0109501101530003" "17261231" "10LOT42\x1d" "21SN000123456789012345678901";
    size_t len = strlen(gs1);
    CU_ASSERT_FATAL(len > 56 && len < 112);
    uint8_t r[64];
    hw_report(r, "]d2", gs1, 56, true);
    feed(p, r, sizeof(r), HIDPOS_MORE, NULL, NULL);
    CU_ASSERT(hidpos_pending(p));
    /* The second report repeats the identifier (Honeywell does). */
    hw_report(r, "]d2", gs1 + 56, len - 56, false);
    char want[128] = "]d2";
    strcat(want, gs1);
    feed(p, r, sizeof(r), HIDPOS_SCAN, want, NULL);
    CU_ASSERT_FALSE(hidpos_pending(p));
    /* Continuation reports with zeros for the identifier are fine too. */
    hw_report(r, "]C1", "0109501101530003", 16, true);
    feed(p, r, sizeof(r), HIDPOS_MORE, NULL, NULL);
    hw_report(r, NULL, "21X", 3, false);
    feed(p, r, sizeof(r), HIDPOS_SCAN, "]C1010950110153000321X", NULL);
    hidpos_destroy(&p);
}

static void test_bad_reports(void)
{
    hidpos_t *p = hw_decoder(0);
    uint8_t r[64];
    hw_report(r, "]E0", "123", 3, false);
    r[1] = 57;
    feed(p, r, sizeof(r), HIDPOS_BAD, NULL, "byte count 57 exceeds the 56-byte data field");
    hw_report(r, "AB0", "123", 3, false);
    feed(p, r, sizeof(r), HIDPOS_BAD, NULL, "0x41 0x42 0x30 is not an AIM identifier");
    hw_report(r, "]E0", "123", 3, false);
    feed(p, r, 63, HIDPOS_BAD, NULL, "report of 63 bytes (the device declares 64)");
    feed(p, r, 0, HIDPOS_BAD, NULL, "empty");
    r[0] = 9;
    feed(p, r, sizeof(r), HIDPOS_BAD, NULL, "ID 9, which the device's report descriptor");
    /* A bad report in the middle of a scan leaves the part before it to the caller. */
    hw_report(r, "]d2", "0109501101530003", 16, true);
    feed(p, r, sizeof(r), HIDPOS_MORE, NULL, NULL);
    hw_report(r, "]C1", "21X", 3, false);
    feed(p, r, sizeof(r), HIDPOS_BAD, NULL, "changed in the middle of a scan");
    CU_ASSERT(hidpos_pending(p));
    const uint8_t *part;
    size_t n;
    CU_ASSERT_FATAL(hidpos_take_partial(p, &part, &n));
    CU_ASSERT(n == 19 && memcmp(part, "]d20109501101530003", 19) == 0);
    CU_ASSERT_FALSE(hidpos_pending(p));
    CU_ASSERT_FALSE(hidpos_take_partial(p, &part, &n));
    /* The decoder goes on. */
    hw_report(r, "]E0", "4006381333931", 13, false);
    feed(p, r, sizeof(r), HIDPOS_SCAN, "]E04006381333931", NULL);
    hidpos_destroy(&p);
}

static void test_too_long(void)
{
    hidpos_t *p = hw_decoder(60);
    char data[57];
    memset(data, 'A', 56);
    data[56] = '\0';
    uint8_t r[64];
    hw_report(r, "]C0", data, 56, true);
    feed(p, r, sizeof(r), HIDPOS_MORE, NULL, NULL);
    /* 3 + 56 + 56 > 60: reported at once with the first 60 bytes... */
    feed(p, r, sizeof(r), HIDPOS_LONG, NULL, "scan longer than 60 bytes");
    CU_ASSERT(hidpos_pending(p));
    /* ...and the rest of that scan is dropped, its final report included. */
    feed(p, r, sizeof(r), HIDPOS_MORE, NULL, NULL);
    hw_report(r, "]C0", "end", 3, false);
    feed(p, r, sizeof(r), HIDPOS_MORE, NULL, NULL);
    CU_ASSERT_FALSE(hidpos_pending(p));
    /* Nothing to take from a scan already reported. */
    hw_report(r, "]C0", data, 56, true);
    feed(p, r, sizeof(r), HIDPOS_MORE, NULL, NULL);
    feed(p, r, sizeof(r), HIDPOS_LONG, NULL, NULL);
    const uint8_t *part;
    size_t n;
    CU_ASSERT_FALSE(hidpos_take_partial(p, &part, &n));
    CU_ASSERT_FALSE(hidpos_pending(p));
    hw_report(r, "]C0", "next", 4, false);
    feed(p, r, sizeof(r), HIDPOS_SCAN, "]C0next", NULL);
    hidpos_destroy(&p);
}

static void test_plain_reports(void)
{
    hidpos_layout_t lay;
    CU_ASSERT_EQUAL_FATAL(hidpos_parse(plain, sizeof(plain), &lay, NULL), 0);
    hidpos_t *p = hidpos_new(&lay, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    /* No byte count: the data ends at the NUL padding. */
    uint8_t r[19] = { ']', 'A', '0', 'C', 'O', 'D', 'E', '3', '9' };
    feed(p, r, sizeof(r), HIDPOS_SCAN, "]A0CODE39", NULL);
    /* All 16 bytes used: no NUL at all. */
    memcpy(r + 3, "0123456789ABCDEF", 16);
    feed(p, r, sizeof(r), HIDPOS_SCAN, "]A00123456789ABCDEF", NULL);
    feed(p, r, 20, HIDPOS_BAD, NULL, "20 bytes");
    hidpos_destroy(&p);
    CU_ASSERT_PTR_NULL(hidpos_new(NULL, 0));
}

/* A device whose descriptor declares a second input report: it carries no scan. */
static void test_other_input_report(void)
{
    static const uint8_t two[] = {
        0x05, 0x8C, 0x09, 0x02, 0xA1, 0x01, 0x85, 0x02, 0x75, 0x08, 0x95, 0x04, 0x09, 0xFE,
        0x81, 0x02, 0x85, 0x05, 0x95, 0x01, 0x09, 0x10, 0x81, 0x02, 0xC0,
    };
    hidpos_layout_t lay;
    CU_ASSERT_EQUAL_FATAL(hidpos_parse(two, sizeof(two), &lay, NULL), 0);
    CU_ASSERT_EQUAL(lay.report_id, 2);
    CU_ASSERT_EQUAL(lay.report_len, 5);
    hidpos_t *p = hidpos_new(&lay, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    uint8_t status[2] = { 5, 1 };
    feed(p, status, sizeof(status), HIDPOS_MORE, NULL, NULL);
    CU_ASSERT_FALSE(hidpos_pending(p));
    uint8_t r[5] = { 2, 'A', 'B', 0, 0 };
    feed(p, r, sizeof(r), HIDPOS_SCAN, "AB", NULL);
    hidpos_destroy(&p);
}

int suite_hidpos(void)
{
    CU_pSuite s = CU_add_suite("hidpos", NULL, NULL);
    if (!s || !CU_add_test(s, "Honeywell descriptor: the scanned data report", test_honeywell_layout) ||
        !CU_add_test(s, "descriptor without IDs, count or continuation", test_plain_layout) ||
        !CU_add_test(s, "Honeywell: good and error beeps as output report 4",
                     test_honeywell_feedback) ||
        !CU_add_test(s, "feedback without IDs, LED, not-on-file fallback, none",
                     test_feedback_variants) ||
        !CU_add_test(s, "a keyboard is not a scanner", test_not_a_scanner) ||
        !CU_add_test(s, "malformed descriptors refused", test_malformed) ||
        !CU_add_test(s, "layouts not decoded are refused", test_unsupported_layouts) ||
        !CU_add_test(s, "one report, one scan, AIM id first", test_single_report) ||
        !CU_add_test(s, "GS1 DataMatrix over two reports", test_continued_gs1) ||
        !CU_add_test(s, "bad reports refused, decoder goes on", test_bad_reports) ||
        !CU_add_test(s, "over-long scan reported once", test_too_long) ||
        !CU_add_test(s, "reports without count: data ends at NUL", test_plain_reports) ||
        !CU_add_test(s, "other input reports carry no scan", test_other_input_report))
        return -1;
    return 0;
}
