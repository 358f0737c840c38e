/*
 * Labels (labels/label.h), the command sheet (labels/sheet.h) and rmactl label/sheet.
 *
 * Barcodes are proven by independent decoders on the rendered output: zbarimg (zbar)
 * for Code 128 and dmtxread (libdmtx) for Data Matrix, which zbar cannot read. PDFs
 * are rasterised by poppler's pdftoppm at 300 dpi first. ZPL is checked by parsing it
 * back: its structure, and every field decoded from its ^FH escapes.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "policy/scancmd.h"
#include "labels/label.h"
#include "labels/symbol.h"
#include "labels/layout.h"
#include "labels/sheet.h"
#include "proto/policy_expect.h"
#include "proto/policy_json.h"
#include "tests/helpers.h"
#include "tests/suites.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define FFFD "\xEF\xBF\xBD"

static const char *const exchange_flags[] = { "wipe_media", "manual_review" };

/* A complete label, as the daemon would fill it for a finished receipt. */
static label_t exchange_label(void)
{
    return (label_t){
        .disposition = "warranty_exchange",
        .rma = "RMA-2026-00417",
        .receipt_id = 1234567,
        .serial = "EF8C21A00917",
        .vendor = "EverFocus",
        .model = "EPN4208",
        .flags = exchange_flags,
        .n_flags = N_ELEMS(exchange_flags),
        .reason = "in warranty until 2028-06-03 (3y from ship date)",
        .station = "dock-1",
        .time = "2026-03-04T14:05:09.123Z",
    };
}

static char *render_text(const label_t *l, label_format_t fmt, label_size_t size, int dpi,
                         size_t *len_out)
{
    uint8_t *out = NULL;
    size_t len = 0;
    int rc = label_render(l, fmt, size, dpi, &out, &len);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc < 0)
        return NULL;
    char *s = realloc(out, len + 1);
    if (!s) {
        free(out);
        return NULL;
    }
    s[len] = '\0';
    if (len_out)
        *len_out = len;
    return s;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

/*
 * Every field of a ZPL format, one per line: "T:text" for ^FH text fields with their
 * _XX escapes decoded, "C:data" for a Code 128 and "M:data" for a Data Matrix. NULL
 * (and a failed assertion) when a field is malformed: a ^ inside field data that is
 * not its ^FS, or a bad escape.
 */
static char *zpl_fields(const char *zpl)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    int ok = 1;
    for (const char *p = zpl; ok && (p = strstr(p, "^FD")) != NULL;) {
        const char *start = p + 3, *end = strchr(start, '^');
        ok = end && strncmp(end, "^FS", 3) == 0;
        if (!ok)
            break;
        /* What the field is: the commands since the previous ^FS. */
        const char *prev = p;
        while (prev > zpl && strncmp(prev, "^FS", 3) != 0)
            prev--;
        size_t head = (size_t)(p - prev);
        int hex = memmem(prev, head, "^FH_", 4) != NULL;
        char kind = memmem(prev, head, "^BC", 3) ? 'C' : memmem(prev, head, "^BX", 3) ? 'M' : 'T';
        fprintf(f, "%c:", kind);
        for (const char *q = start; q < end; q++) {
            if (hex && *q == '_') {
                int hi = q + 2 < end ? hexval(q[1]) : -1, lo = hi >= 0 ? hexval(q[2]) : -1;
                ok = lo >= 0;
                if (!ok)
                    break;
                fputc(hi * 16 + lo, f);
                q += 2;
            } else {
                fputc(*q, f);
            }
        }
        fputc('\n', f);
        p = end + 3;
    }
    fclose(f);
    CU_ASSERT(ok);
    if (!ok) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* The structure every ZPL label must have, at its size and dpi. */
static void check_zpl_structure(const char *zpl, size_t len, int width, int height)
{
    char want[64];
    CU_ASSERT_EQUAL(strlen(zpl), len); /* no NUL bytes */
    CU_ASSERT_EQUAL(count(zpl, "^XA"), 1);
    CU_ASSERT_EQUAL(count(zpl, "^XZ"), 1);
    CU_ASSERT(strncmp(zpl, "^XA", 3) == 0);
    CU_ASSERT(len >= 4 && strcmp(zpl + len - 4, "^XZ\n") == 0);
    ASSERT_CONTAINS(zpl, "^CI28");
    snprintf(want, sizeof(want), "^PW%d\n", width);
    ASSERT_CONTAINS(zpl, want);
    snprintf(want, sizeof(want), "^LL%d\n", height);
    ASSERT_CONTAINS(zpl, want);
    /* Printable ASCII only, and no control prefix at all: nothing to inject into. */
    int plain = 1;
    for (size_t i = 0; i < len; i++)
        plain &= (zpl[i] >= 0x20 && zpl[i] < 0x7F) || zpl[i] == '\n';
    CU_ASSERT(plain);
    CU_ASSERT_PTR_NULL(strchr(zpl, '~'));
}

static void test_words(void)
{
    static const struct {
        const char *word, *words;
    } want[] = {
        { "refuse", "REFUSED" },
        { "restock", "RESTOCK" },
        { "restock_fee", "RESTOCK -15%" },
        { "warranty_repair", "WARRANTY REPAIR" },
        { "warranty_exchange", "WARRANTY EXCHANGE" },
        { "paid_repair", "PAID REPAIR" },
        { "return_to_customer", "RETURN TO CUSTOMER" },
        { "quarantine", "QUARANTINE" },
    };
    char buf[64];
    for (size_t i = 0; i < N_ELEMS(want); i++)
        ASSERT_STR(label_disposition_words(want[i].word, 15, buf, sizeof(buf)), want[i].words);
    ASSERT_STR(label_disposition_words("restock_fee", 12.5, buf, sizeof(buf)), "RESTOCK -12.5%");
    ASSERT_STR(label_disposition_words("restock_fee", 0, buf, sizeof(buf)), "RESTOCK");
    CU_ASSERT_PTR_NULL(label_disposition_words("scrap", 0, buf, sizeof(buf)));
    CU_ASSERT_PTR_NULL(label_disposition_words(NULL, 0, buf, sizeof(buf)));
    ASSERT_STR(label_flag_words("wipe_media"), "WIPE MEDIA");
    ASSERT_STR(label_flag_words("bill_customer"), "BILL CUSTOMER");
    ASSERT_STR(label_flag_words("manual_review"), "MANUAL REVIEW");
    ASSERT_STR(label_flag_words("customer_pays_freight"), "CUSTOMER PAYS FREIGHT");
    CU_ASSERT_PTR_NULL(label_flag_words("free_pizza"));

    label_format_t fmt;
    label_size_t size;
    int dpi;
    CU_ASSERT(label_format_parse("png", &fmt) == 0 && fmt == LABEL_PNG);
    CU_ASSERT_EQUAL(label_format_parse("PDF", &fmt), -EINVAL);
    CU_ASSERT(label_size_parse("2x1", &size) == 0 && size == LABEL_2X1);
    CU_ASSERT_EQUAL(label_size_parse("4x4", &size), -EINVAL);
    CU_ASSERT(label_dpi_parse("300", &dpi) == 0 && dpi == 300);
    CU_ASSERT_EQUAL(label_dpi_parse("600", &dpi), -EINVAL);
}

static void test_text_clean(void)
{
    char *s;
    ASSERT_STR(s = text_clean("plain", 0), "plain");
    free(s);
    ASSERT_STR(s = text_clean(NULL, 0), "");
    free(s);
    ASSERT_STR(s = text_clean("a\tb\r\nc", 0), "a b  c");
    free(s);
    /* Malformed: a stray continuation, a cut sequence, an overlong '/', a surrogate. */
    ASSERT_STR(s = text_clean("x\x80y\xC3", 0), "x" FFFD "y" FFFD);
    free(s);
    ASSERT_STR(s = text_clean("\xC0\xAF\xED\xA0\x80", 0), FFFD FFFD FFFD FFFD FFFD);
    free(s);
    /* C0, DEL and C1 controls. */
    ASSERT_STR(s = text_clean("a\x01\x7F\xC2\x85z", 0), "a" FFFD FFFD FFFD "z");
    free(s);
    /* Cut at code points, never inside one. */
    ASSERT_STR(s = text_clean("h\xC3\xA9llo w\xC3\xB6rld", 5), "h\xC3\xA9ll" TEXT_ELLIPSIS);
    free(s);
    ASSERT_STR(s = text_clean("\xE6\x8E\xA5\xE6\x94\xB6\xE6\x8E\xA5", 2), "\xE6\x8E\xA5" TEXT_ELLIPSIS);
    free(s);
    ASSERT_STR(s = text_clean("exact", 5), "exact");
    free(s);
    CU_ASSERT_EQUAL(text_cp_count("h\xC3\xA9" TEXT_ELLIPSIS), 3);
    CU_ASSERT_EQUAL(text_cp_bytes("h\xC3\xA9llo", 2), 3);
}

static void test_zpl_every_size(void)
{
    static const struct {
        label_size_t size;
        int dpi, width, height;
    } sizes[] = {
        { LABEL_4X6, 203, 812, 1218 },
        { LABEL_4X6, 300, 1200, 1800 },
        { LABEL_2X1, 203, 406, 203 },
        { LABEL_2X1, 300, 600, 300 },
    };
    label_t l = exchange_label();
    for (size_t i = 0; i < N_ELEMS(sizes); i++) {
        size_t len = 0;
        char *zpl = render_text(&l, LABEL_ZPL, sizes[i].size, sizes[i].dpi, &len);
        if (!zpl)
            continue;
        check_zpl_structure(zpl, len, sizes[i].width, sizes[i].height);
        char *fields = zpl_fields(zpl);
        /* Two lines on the big label, for larger type; one on the small one. */
        ASSERT_CONTAINS(fields, sizes[i].size == LABEL_4X6 ? "T:WARRANTY\nT:EXCHANGE\n"
                                                           : "T:WARRANTY EXCHANGE\n");
        ASSERT_CONTAINS(fields, "C:RCPT-1234567\n");
        ASSERT_CONTAINS(fields, "T:RECEIPT 1234567\n");
        if (sizes[i].size == LABEL_4X6) {
            ASSERT_CONTAINS(fields, "T:RMA-2026-00417\n");
            ASSERT_CONTAINS(fields, "T:EF8C21A00917\n");
            ASSERT_CONTAINS(fields, "T:EverFocus\n");
            ASSERT_CONTAINS(fields, "T:EPN4208\n");
            ASSERT_CONTAINS(fields, "T:WIPE MEDIA / MANUAL REVIEW\n");
            ASSERT_CONTAINS(fields, "T:In warranty until 2028-06-03 (3y from ship date)\n");
            ASSERT_CONTAINS(fields, "T:dock-1   2026-03-04 14:05 UTC\n");
            ASSERT_CONTAINS(fields, "M:RMAD RCPT-1234567 RMA:RMA-2026-00417 SN:EF8C21A00917\n");
            CU_ASSERT_EQUAL(count(zpl, "^BX"), 1);
        } else {
            /* The small label: disposition, RMA and the receipt barcode only; an RMA
             * number that starts with "RMA" is not given the word twice. */
            ASSERT_CONTAINS(fields, "T:RMA-2026-00417\n");
            CU_ASSERT_EQUAL(count(fields, "RMA RMA"), 0);
            CU_ASSERT_EQUAL(count(fields, "\n"), 4);
            CU_ASSERT_EQUAL(count(zpl, "^BX"), 0);
        }
        CU_ASSERT_EQUAL(count(zpl, "^BC"), 1);
        free(fields);
        free(zpl);
    }
    /* Every format at every size renders. */
    for (int fmt = LABEL_ZPL; fmt <= LABEL_PNG; fmt++)
        for (size_t i = 0; i < N_ELEMS(sizes); i++) {
            uint8_t *out = NULL;
            size_t len = 0;
            CU_ASSERT_EQUAL(label_render(&l, (label_format_t)fmt, sizes[i].size, sizes[i].dpi,
                                         &out, &len),
                            0);
            CU_ASSERT(len > 0);
            free(out);
        }
    uint8_t *out = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(label_render(&l, LABEL_PDF, LABEL_4X6, 600, &out, &len), -EINVAL);
    CU_ASSERT_EQUAL(label_render(&l, (label_format_t)7, LABEL_4X6, 203, &out, &len), -EINVAL);
    CU_ASSERT_EQUAL(label_render(NULL, LABEL_ZPL, LABEL_4X6, 203, &out, &len), -EINVAL);
    CU_ASSERT_PTR_NULL(out);
}

/* Scan text that tries to end the format, start another and reset the printer. */
static label_t hostile_label(void)
{
    return (label_t){
        .disposition = "quarantine",
        .rma = "R^XZ^XA~JR",
        .receipt_id = 42,
        .serial = "S_5E\\&^FS",
        .vendor = "V\x01\x7F" "W",
        .model = "M~DGR:X^XA",
        .reason = "reason ^XZ ~JR ^XA _5E \\& ^FS end",
        .station = "dock~1",
    };
}

static void test_zpl_injection(void)
{
    label_t l = hostile_label();
    for (int dpi = 203; dpi <= 300; dpi += 97) {
        size_t len = 0;
        char *zpl = render_text(&l, LABEL_ZPL, LABEL_4X6, dpi, &len);
        if (!zpl)
            continue;
        check_zpl_structure(zpl, len, 4 * dpi, 6 * dpi);
        char *fields = zpl_fields(zpl);
        /* Shown literally: decoding the escapes gives the scanned text back. */
        ASSERT_CONTAINS(fields, "T:R^XZ^XA~JR\n");
        ASSERT_CONTAINS(fields, "T:S_5E\\&^FS\n");
        ASSERT_CONTAINS(fields, "T:V" FFFD FFFD "W\n");
        ASSERT_CONTAINS(fields, "T:M~DGR:X^XA\n");
        ASSERT_CONTAINS(fields, "T:Reason ^XZ ~JR ^XA _5E \\& ^FS end\n");
        ASSERT_CONTAINS(fields, "T:dock~1\n");
        /* Barcode data is percent-encoded instead, as it cannot take ^FH escapes. */
        ASSERT_CONTAINS(fields, "M:RMAD RCPT-000042 RMA:R%5EXZ%5EXA%7EJR SN:S%5F5E%5C&%5EFS\n");
        ASSERT_CONTAINS(fields, "C:RCPT-000042\n");
        free(fields);
        free(zpl);
    }
    /* The small label carries the RMA too. */
    size_t len = 0;
    char *zpl = render_text(&l, LABEL_ZPL, LABEL_2X1, 203, &len);
    if (zpl) {
        check_zpl_structure(zpl, len, 406, 203);
        char *fields = zpl_fields(zpl);
        ASSERT_CONTAINS(fields, "T:RMA R^XZ^XA~JR\n");
        free(fields);
        free(zpl);
    }
}

/* The field of kind 'T' that starts with prefix, or NULL. Points into fields. */
static const char *field_with(const char *fields, const char *prefix)
{
    char want[64];
    snprintf(want, sizeof(want), "T:%s", prefix);
    const char *p = strstr(fields, want);
    return p ? p + 2 : NULL;
}

static void test_long_and_non_ascii(void)
{
    /* 600 code points of mixed scripts: far more than any field holds. */
    char *serial = NULL, *reason = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&serial, &n);
    for (int i = 0; i < 200; i++)
        fputs("S\xC3\xA9\xE6\x8E\xA5", f); /* S, é, 接 */
    fclose(f);
    f = open_memstream(&reason, &n);
    for (int i = 0; i < 150; i++)
        fputs("w\xC3\xB6rd ", f);
    fclose(f);

    label_t l = exchange_label();
    l.serial = serial;
    l.reason = reason;
    size_t len = 0;
    char *zpl = render_text(&l, LABEL_ZPL, LABEL_4X6, 203, &len);
    char *fields = zpl ? zpl_fields(zpl) : NULL;
    const char *s = fields ? field_with(fields, "S\xC3\xA9") : NULL;
    const char *r = fields ? field_with(fields, "W\xC3\xB6rd") : NULL;
    CU_ASSERT_PTR_NOT_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(r);
    if (s && r) {
        size_t slen = strcspn(s, "\n"), rlen = strcspn(r, "\n");
        char *sv = strndup(s, slen), *rv = strndup(r, rlen);
        /* Cut with an ellipsis at a code point boundary: a prefix, still valid UTF-8. */
        size_t sl = strlen(sv), ol = strlen(TEXT_ELLIPSIS);
        CU_ASSERT(sl > ol && strcmp(sv + sl - ol, TEXT_ELLIPSIS) == 0);
        CU_ASSERT(sl > ol && strncmp(sv, serial, sl - ol) == 0);
        CU_ASSERT(text_cp_count(sv) < 40);
        char *again = text_clean(sv, 0);
        ASSERT_STR(again, sv); /* cleaning valid text changes nothing */
        free(again);
        size_t rl = strlen(rv);
        CU_ASSERT(rl > ol && strcmp(rv + rl - ol, TEXT_ELLIPSIS) == 0);
        CU_ASSERT(text_cp_count(rv) < 200);
        free(sv);
        free(rv);
    }
    check_zpl_structure(zpl ? zpl : "", len, 812, 1218);
    free(fields);
    free(zpl);
    /* The same text through cairo, both sizes. */
    for (int fmt = LABEL_PDF; fmt <= LABEL_PNG; fmt++) {
        uint8_t *out = NULL;
        CU_ASSERT_EQUAL(label_render(&l, (label_format_t)fmt, LABEL_4X6, 300, &out, &len), 0);
        free(out);
        out = NULL;
        CU_ASSERT_EQUAL(label_render(&l, (label_format_t)fmt, LABEL_2X1, 203, &out, &len), 0);
        free(out);
    }
    free(serial);
    free(reason);
}

static void test_missing_and_invalid(void)
{
    /* Nothing at all: still a label, telling people to look. */
    label_t empty = { 0 };
    for (int fmt = LABEL_ZPL; fmt <= LABEL_PNG; fmt++)
        for (int size = LABEL_4X6; size <= LABEL_2X1; size++) {
            uint8_t *out = NULL;
            size_t len = 0;
            CU_ASSERT_EQUAL(label_render(&empty, (label_format_t)fmt, (label_size_t)size, 203,
                                         &out, &len),
                            0);
            free(out);
        }
    size_t len = 0;
    char *zpl = render_text(&empty, LABEL_ZPL, LABEL_4X6, 203, &len);
    char *fields = zpl ? zpl_fields(zpl) : NULL;
    ASSERT_CONTAINS(fields, "T:SEE\nT:SUPERVISOR\n");
    ASSERT_CONTAINS(fields, "T:No disposition\n");
    CU_ASSERT(zpl && count(zpl, "^BC") == 0 && count(zpl, "^BX") == 0);
    free(fields);
    free(zpl);

    /* A refused scan: no receipt, so no receipt barcode; the reason says why. */
    label_t refusal = { .refusal = true, .disposition = "refuse", .rma = "RMA-77",
                        .reason = "RMA RMA-77 already received" };
    zpl = render_text(&refusal, LABEL_ZPL, LABEL_2X1, 300, &len);
    fields = zpl ? zpl_fields(zpl) : NULL;
    ASSERT_CONTAINS(fields, "T:REFUSED\n");
    ASSERT_CONTAINS(fields, "T:RMA-77\n");
    ASSERT_CONTAINS(fields, "T:RMA RMA-77 already received\n");
    CU_ASSERT(zpl && count(zpl, "^BC") == 0);
    free(fields);
    free(zpl);

    /* An unknown disposition never prints as big words; invalid UTF-8 is replaced. */
    label_t odd = { .disposition = "scrap\xFF", .serial = "AB\xFF\xFE" "CD", .model = "\xC3",
                    .receipt_id = 9, .restocking_fee_pct = 20, .time = "yesterday" };
    zpl = render_text(&odd, LABEL_ZPL, LABEL_4X6, 203, &len);
    fields = zpl ? zpl_fields(zpl) : NULL;
    ASSERT_CONTAINS(fields, "T:SEE\nT:SUPERVISOR\n");
    ASSERT_CONTAINS(fields, "T:Unknown disposition \"scrap" FFFD "\"\n");
    ASSERT_CONTAINS(fields, "T:AB" FFFD FFFD "CD\n");
    ASSERT_CONTAINS(fields, "T:" FFFD "\n");
    ASSERT_CONTAINS(fields, "T:RESTOCKING FEE 20%\n");
    ASSERT_CONTAINS(fields, "T:yesterday\n");
    ASSERT_CONTAINS(fields, "M:RMAD RCPT-000009 SN:AB%FF%FECD\n");
    free(fields);
    free(zpl);
    for (int fmt = LABEL_PDF; fmt <= LABEL_PNG; fmt++) {
        uint8_t *out = NULL;
        CU_ASSERT_EQUAL(label_render(&odd, (label_format_t)fmt, LABEL_4X6, 203, &out, &len), 0);
        free(out);
    }
}

/* ---- what people read: plain reasons, local times, the 4x6 layout --------------- */

static void test_reason_words(void)
{
    static const struct {
        const char *text, *words;
    } want[] = {
        /* The engine's evidence (period, basis, table cited) is for the record. */
        { "in warranty until 2028-06-01 (3y from purchase date; Table 1: Solid State Drives: "
          "exchange)",
          "In warranty until 2028-06-01" },
        { "out of warranty since 2026-06-01 (2y from purchase date; S9Q 1, 50, 32)",
          "Out of warranty since 2026-06-01" },
        { "open box or missing accessories: 25% restocking fee (range 15-25%: 15% for the "
          "first shortfall, +5% for each further; open box, foam missing)",
          "Open box or missing accessories: 25% restocking fee" },
        /* Nested asides go with the outer one. */
        { "in warranty until 2030-01-15 (20y from purchase date; Table 1: Lifetime (20 years): "
          "exchange)",
          "In warranty until 2030-01-15" },
        /* Other asides stay; contract words read as words. */
        { "discrepancy (physical_damage): returned at the customer's expense",
          "Discrepancy (physical damage): returned at the customer's expense" },
        { "not covered by the V7 warranty: act_of_god, non_vendor_parts",
          "Not covered by the V7 warranty: act of god, non vendor parts" },
        { "serial read at the dock (SN_1) is not the serial the RMA expects (EF-100231)",
          "Serial read at the dock (SN_1) is not the serial the RMA expects (EF-100231)" },
        /* Unclosed, or nothing but an aside: kept as written. */
        { "odd (text: never closed", "Odd (text: never closed" },
        { "(a: b)", "(a: b)" },
        { "RMA RMA-77 already received", "RMA RMA-77 already received" },
    };
    for (size_t i = 0; i < N_ELEMS(want); i++) {
        char *w = label_reason_words(want[i].text);
        ASSERT_STR(w, want[i].words);
        free(w);
    }
    CU_ASSERT_PTR_NULL(label_reason_words(NULL));
}

/* Plain words of case i's first reason, evaluated by the engine with its policy. */
static char *first_reason_words(const case_file_t *cf, char **text_out)
{
    policy_t *p = NULL;
    policy_case_t c;
    char *err = NULL;
    *text_out = NULL;
    if (policy_load(case_policy_path(cf, "policies"), &p, &err) < 0 ||
        case_from_json_policy(json_object_get(cf->doc, "case"), p, &c, &err) < 0) {
        fprintf(stderr, "\n  %s: %s\n", cf->path, err ? err : "?");
        free(err);
        policy_destroy(&p);
        return NULL;
    }
    policy_result_t r;
    char *words = NULL;
    if (policy_evaluate(p, &c, &r) == 0) {
        json_t *j = result_to_json(&r, p);
        json_t *first = json_array_get(json_object_get(j, "reasons"), 0);
        const char *text = json_string_value(json_object_get(first, "text"));
        if (text) {
            *text_out = th_strdup(text);
            words = label_reason_words(text);
        }
        json_decref(j);
        policy_result_free(&r);
    }
    policy_case_free(&c);
    policy_destroy(&p);
    return words;
}

/* Every case's real first reason reads as a sentence: no citation, no contract word. */
static void test_reason_words_of_real_results(void)
{
    case_file_t *cf;
    char *err = NULL;
    int n = case_files_load("tests/cases/*/*.json", &cf, &err);
    free(err);
    CU_ASSERT_FATAL(n > 0);
    int cited = 0;
    for (int i = 0; i < n; i++) {
        char *text = NULL, *w = first_reason_words(&cf[i], &text);
        CU_ASSERT_PTR_NOT_NULL(w);
        if (w && text) {
            cited += strstr(text, "Table 1") != NULL;
            int ok = *w && strstr(w, "Table 1") == NULL && !(w[0] >= 'a' && w[0] <= 'z') &&
                     strstr(w, "from purchase date") == NULL;
            /* No aside that cites: "(...; ...)" or "(...: ...)". */
            for (const char *a = strchr(w, '('); ok && a; a = strchr(a + 1, '(')) {
                size_t len = strcspn(a, ")");
                ok = !memchr(a, ';', len) && !memchr(a, ':', len);
            }
            for (const char *u = strchr(w, '_'); ok && u; u = strchr(u + 1, '_'))
                ok = !(u > w && u[-1] >= 'a' && u[-1] <= 'z' && u[1] >= 'a' && u[1] <= 'z');
            if (!ok)
                fprintf(stderr, "\n  %s: \"%s\" reads \"%s\"\n", cf[i].path, text, w);
            CU_ASSERT(ok);
        }
        if (strstr(cf[i].path, "ex-v7-ssd"))
            ASSERT_STR(w, "In warranty until 2028-01-10");
        free(text);
        free(w);
    }
    CU_ASSERT(cited > 0); /* the cases do hold table citations */
    case_files_free(cf, n);
}

/* Set TZ (NULL: unset) and return the old value, malloc'd or NULL. */
static char *tz_set(const char *tz)
{
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL; /* also at suite clean-up: no CUnit asserts */
    if (tz)
        setenv("TZ", tz, 1);
    else
        unsetenv("TZ");
    tzset();
    return saved;
}

static void test_local_time(void)
{
    char buf[64];
    char *saved = tz_set("America/New_York");
    CU_ASSERT_EQUAL(label_time_words("2026-11-21T06:15:38.436Z", buf, sizeof(buf)), 0);
    ASSERT_STR(buf, "2026-11-21 01:15 EST");
    CU_ASSERT_EQUAL(label_time_words("2026-07-01T12:00:00Z", buf, sizeof(buf)), 0);
    ASSERT_STR(buf, "2026-07-01 08:00 EDT");
    CU_ASSERT_EQUAL(label_time_words("2026-11-21T07:15:00+01:00", buf, sizeof(buf)), 0);
    ASSERT_STR(buf, "2026-11-21 01:15 EST");
    /* The footer of the printed label says the same. */
    label_t l = exchange_label();
    char *zpl = render_text(&l, LABEL_ZPL, LABEL_4X6, 203, NULL);
    char *fields = zpl ? zpl_fields(zpl) : NULL;
    ASSERT_CONTAINS(fields, "T:dock-1   2026-03-04 09:05 EST\n");
    free(fields);
    free(zpl);

    free(tz_set("Europe/Berlin"));
    CU_ASSERT_EQUAL(label_time_words("2026-11-21T06:15:38.436Z", buf, sizeof(buf)), 0);
    ASSERT_STR(buf, "2026-11-21 07:15 CET");
    free(tz_set("UTC"));
    CU_ASSERT_EQUAL(label_time_words("2026-11-21T06:15:38Z", buf, sizeof(buf)), 0);
    ASSERT_STR(buf, "2026-11-21 06:15 UTC");
    CU_ASSERT_EQUAL(label_time_words("yesterday", buf, sizeof(buf)), -EINVAL);
    CU_ASSERT_EQUAL(label_time_words("2026-11-21T06:15:38", buf, sizeof(buf)), -EINVAL);
    CU_ASSERT_EQUAL(label_time_words("2026-11-21T06:15:38+1", buf, sizeof(buf)), -EINVAL);
    CU_ASSERT_EQUAL(label_time_words(NULL, buf, sizeof(buf)), -EINVAL);
    char *old = tz_set(saved);
    free(old);
    free(saved);
}

/* A label with every part at once: the layout has to make room. */
static const char *const crowded_flags[] = { "wipe_media", "manual_review", "bill_customer",
                                             "customer_pays_freight" };

static label_t crowded_label(void)
{
    return (label_t){
        .disposition = "return_to_customer",
        .rma = "RMA-2026-00417",
        .receipt_id = 7654321,
        .serial = "EF8C21A00917",
        .vendor = "EverFocus",
        .model = "EPN4208",
        .restocking_fee_pct = 15,
        .flags = crowded_flags,
        .n_flags = N_ELEMS(crowded_flags),
        .reason = "discrepancy (physical_damage): returned at the customer's expense, and the "
                  "customer was told twice that the unit had to be sent back in its box",
        .station = "dock-1",
        .time = "2026-03-04T14:05:09.123Z",
    };
}

/* An element's box, its quiet zone included. */
static void el_box(const layout_el_t *e, int *x0, int *y0, int *x1, int *y1)
{
    int q = e->kind == LAYOUT_BARCODE ? e->quiet : 0;
    /* A Code 128's quiet zones are left and right only; a Data Matrix's all round. */
    int qy = e->kind == LAYOUT_BARCODE && barcode_kind(e->bc) == BARCODE_KIND_DATAMATRIX ? q : 0;
    *x0 = e->x - q;
    *y0 = e->y - qy;
    *x1 = e->x + e->w + q;
    *y1 = e->y + (e->kind == LAYOUT_TEXT ? e->h * e->lines : e->h) + qy;
}

/*
 * Nothing overlaps, everything is on the label, and no band across it is empty for
 * more than max_band inches (the old 4x6 left 2 in blank above the barcodes).
 */
static void check_layout(const label_t *l, label_size_t size, int dpi, double max_band)
{
    layout_t *lay = NULL;
    CU_ASSERT_EQUAL_FATAL(layout_build(l, size, dpi, &lay), 0);
    int *spans = calloc(2 * lay->n, sizeof(int));
    CU_ASSERT_FATAL(spans != NULL);
    for (size_t i = 0; i < lay->n; i++) {
        int ax0, ay0, ax1, ay1;
        el_box(&lay->el[i], &ax0, &ay0, &ax1, &ay1);
        CU_ASSERT(ax0 >= 0 && ay0 >= 0 && ax1 <= lay->width && ay1 <= lay->height);
        for (size_t k = i + 1; k < lay->n; k++) {
            int bx0, by0, bx1, by1;
            el_box(&lay->el[k], &bx0, &by0, &bx1, &by1);
            int overlap = ax0 < bx1 && bx0 < ax1 && ay0 < by1 && by0 < ay1;
            if (overlap)
                fprintf(stderr, "\n  %d dpi: \"%s\" overlaps \"%s\"\n", dpi,
                        lay->el[i].text ? lay->el[i].text : "rule",
                        lay->el[k].text ? lay->el[k].text : "rule");
            CU_ASSERT(!overlap);
        }
        spans[2 * i] = ay0;
        spans[2 * i + 1] = ay1;
    }
    /* The largest gap between the vertical extents of the elements. */
    int *starts = calloc(lay->n, sizeof(int));
    CU_ASSERT_FATAL(starts != NULL);
    size_t order = lay->n;
    int largest = 0;
    for (size_t i = 0; i < order; i++)
        starts[i] = (int)i;
    for (size_t i = 0; i + 1 < order; i++) /* sort indices by top */
        for (size_t k = i + 1; k < order; k++)
            if (spans[2 * starts[k]] < spans[2 * starts[i]]) {
                int t = starts[i];
                starts[i] = starts[k];
                starts[k] = t;
            }
    int reach = 0;
    for (size_t i = 0; i < order; i++) {
        int top = spans[2 * starts[i]], bottom = spans[2 * starts[i] + 1];
        if (i > 0 && top - reach > largest)
            largest = top - reach;
        reach = bottom > reach ? bottom : reach;
    }
    if (getenv("RMAD_TEST_VERBOSE"))
        fprintf(stderr, "\n  %d dpi: largest band %.2f in\n", dpi, (double)largest / dpi);
    CU_ASSERT(largest <= max_band * dpi);
    if (largest > max_band * dpi)
        fprintf(stderr, "\n  %d dpi: an empty band of %.2f in\n", dpi, (double)largest / dpi);
    free(starts);
    free(spans);
    layout_destroy(&lay);
}

static void test_layout_fills_label(void)
{
    label_t exchange = exchange_label(), crowded = crowded_label(), hostile = hostile_label();
    label_t refusal = { .refusal = true, .disposition = "refuse", .rma = "RMA-77",
                        .reason = "RMA RMA-77 already received", .station = "dock-1" };
    const label_t *labels[] = { &exchange, &crowded, &hostile, &refusal };
    for (size_t i = 0; i < N_ELEMS(labels); i++)
        for (int dpi = 203; dpi <= 300; dpi += 97) {
            /* A refusal has little to say: its space is spread wider. */
            check_layout(labels[i], LABEL_4X6, dpi, labels[i] == &refusal ? 1.0 : 0.7);
            check_layout(labels[i], LABEL_2X1, dpi, 0.2);
        }
    /* The crowded label still shows every part. */
    char *zpl = render_text(&crowded, LABEL_ZPL, LABEL_4X6, 203, NULL);
    char *fields = zpl ? zpl_fields(zpl) : NULL;
    ASSERT_CONTAINS(fields, "T:RESTOCKING FEE 15%\n");
    ASSERT_CONTAINS(fields, "T:WIPE MEDIA / MANUAL REVIEW / BILL CUSTOMER / CUSTOMER PAY");
    ASSERT_CONTAINS(fields, "T:Discrepancy (physical damage): returned");
    ASSERT_CONTAINS(fields, "C:RCPT-7654321\n");
    ASSERT_CONTAINS(fields, "M:RMAD RCPT-7654321 RMA:RMA-2026-00417 SN:EF8C21A00917\n");
    free(fields);
    free(zpl);
}

static void test_2x1_ids(void)
{
    static const struct {
        const char *rma, *serial, *line;
    } want[] = {
        { "RMA-1001", "SN-77", "T:RMA-1001\n" },
        { "rma1001", NULL, "T:rma1001\n" },
        { "40001", NULL, "T:RMA 40001\n" },
        { NULL, "SN-77", "T:SN-77\n" },
        { NULL, "X123", "T:SN X123\n" },
    };
    for (size_t i = 0; i < N_ELEMS(want); i++) {
        label_t l = { .disposition = "restock", .rma = want[i].rma, .serial = want[i].serial,
                      .receipt_id = 3 };
        char *zpl = render_text(&l, LABEL_ZPL, LABEL_2X1, 203, NULL);
        char *fields = zpl ? zpl_fields(zpl) : NULL;
        ASSERT_CONTAINS(fields, want[i].line);
        free(fields);
        free(zpl);
    }
}

/* ---- decoding rendered images with independent tools ---------------------------- */

static int write_bytes(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -errno;
    int bad = fwrite(data, 1, len, f) != len;
    bad |= fclose(f) != 0;
    return bad ? -EIO : 0;
}

/* zbarimg's symbols in one image, one per line (NULL when none or on failure). */
static char *zbar(const char *png)
{
    char *argv[] = { "/usr/bin/zbarimg", "--nodbus", "--raw", "-q", (char *)png, NULL };
    th_proc_t p = th_run_proc(argv, NULL);
    if (p.status != 0)
        fprintf(stderr, "\n  zbarimg %s: status %d: %s\n", png, p.status, p.err ? p.err : "");
    char *out = p.status == 0 ? p.out : NULL;
    if (p.status == 0)
        p.out = NULL;
    th_proc_free(&p);
    return out;
}

/* dmtxread's first Data Matrix in one image (NULL when none or on failure). */
static char *dmtx(const char *png)
{
    /* -N1: stop at the first symbol; -S2: scan at half size, ample for these modules. */
    char *argv[] = { "/usr/bin/dmtxread", "-N1", "-S2", (char *)png, NULL };
    th_proc_t p = th_run_proc(argv, NULL);
    if (p.status != 0)
        fprintf(stderr, "\n  dmtxread %s: status %d: %s\n", png, p.status, p.err ? p.err : "");
    char *out = p.status == 0 ? p.out : NULL;
    if (p.status == 0)
        p.out = NULL;
    th_proc_free(&p);
    return out;
}

/*
 * Write a PDF into dir as NAME.pdf and rasterise it at 300 dpi with pdftoppm. Returns
 * the pages' PNG paths in page order (globfree them), or 0 pages on failure.
 */
static void rasterise(const char *dir, const char *name, const uint8_t *pdf, size_t len,
                      glob_t *pages)
{
    char path[512], prefix[512], pattern[600];
    memset(pages, 0, sizeof(*pages));
    snprintf(path, sizeof(path), "%s/%s.pdf", dir, name);
    snprintf(prefix, sizeof(prefix), "%s/%s", dir, name);
    CU_ASSERT_EQUAL_FATAL(write_bytes(path, pdf, len), 0);
    char *argv[] = { "/usr/bin/pdftoppm", "-r", "300", "-png", path, prefix, NULL };
    th_proc_t p = th_run_proc(argv, NULL);
    CU_ASSERT_EQUAL(p.status, 0);
    th_proc_free(&p);
    /* pdftoppm numbers pages -1, -2 ... or -01 ... with enough digits for the count. */
    snprintf(pattern, sizeof(pattern), "%s-*.png", prefix);
    CU_ASSERT_EQUAL(glob(pattern, 0, NULL, pages), 0);
}

/* The page size pdfinfo reports, e.g. "288 x 432 pts". */
static void check_page_size(const char *dir, const char *name, const char *size)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.pdf", dir, name);
    char *argv[] = { "/usr/bin/pdfinfo", path, NULL };
    th_proc_t p = th_run_proc(argv, NULL);
    CU_ASSERT_EQUAL(p.status, 0);
    ASSERT_CONTAINS(p.out, size);
    th_proc_free(&p);
}

static void test_pdf_barcodes_decode(void)
{
    char *dir = th_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    static const struct {
        const char *name;
        label_size_t size;
        int dpi;
        int hostile;
        const char *page;
    } cases[] = {
        { "l4x6-203", LABEL_4X6, 203, 0, "288 x 432 pts" },
        { "l4x6-300", LABEL_4X6, 300, 1, "288 x 432 pts" },
        { "l2x1-203", LABEL_2X1, 203, 0, "144 x 72 pts" },
        { "l2x1-300", LABEL_2X1, 300, 0, "144 x 72 pts" },
        { "c4x6-203", LABEL_4X6, 203, 2, "288 x 432 pts" },
        { "c4x6-300", LABEL_4X6, 300, 2, "288 x 432 pts" },
        { "c2x1-203", LABEL_2X1, 203, 2, "144 x 72 pts" },
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        label_t l = cases[i].hostile == 1 ? hostile_label()
                    : cases[i].hostile == 2 ? crowded_label() : exchange_label();
        uint8_t *pdf = NULL;
        size_t len = 0;
        CU_ASSERT_EQUAL_FATAL(label_render(&l, LABEL_PDF, cases[i].size, cases[i].dpi, &pdf,
                                           &len),
                              0);
        CU_ASSERT(len > 5 && memcmp(pdf, "%PDF-", 5) == 0);
        glob_t pages;
        rasterise(dir, cases[i].name, pdf, len, &pages);
        free(pdf);
        check_page_size(dir, cases[i].name, cases[i].page);
        CU_ASSERT_EQUAL(pages.gl_pathc, 1);
        if (pages.gl_pathc == 1) {
            char *codes = zbar(pages.gl_pathv[0]);
            ASSERT_STR(codes, cases[i].hostile == 1   ? "RCPT-000042\n"
                              : cases[i].hostile == 2 ? "RCPT-7654321\n"
                                                      : "RCPT-1234567\n");
            free(codes);
            if (cases[i].size == LABEL_4X6) {
                char *m = dmtx(pages.gl_pathv[0]);
                ASSERT_STR(m, cases[i].hostile == 1   ? "RMAD RCPT-000042 RMA:R%5EXZ%5EXA%7EJR SN:S%5F5E%5C&%5EFS"
                              : cases[i].hostile == 2 ? "RMAD RCPT-7654321 RMA:RMA-2026-00417 SN:EF8C21A00917"
                                                      : "RMAD RCPT-1234567 RMA:RMA-2026-00417 SN:EF8C21A00917");
                free(m);
            }
        }
        globfree(&pages);
    }
    th_rm_rf(dir);
    free(dir);
}

/* Width and height from a PNG's IHDR chunk. */
static void png_size(const uint8_t *png, size_t len, unsigned *w, unsigned *h)
{
    *w = *h = 0;
    if (len < 24 || memcmp(png, "\x89PNG\r\n\x1a\n", 8) != 0 || memcmp(png + 12, "IHDR", 4) != 0)
        return;
    *w = (unsigned)png[16] << 24 | (unsigned)png[17] << 16 | (unsigned)png[18] << 8 | png[19];
    *h = (unsigned)png[20] << 24 | (unsigned)png[21] << 16 | (unsigned)png[22] << 8 | png[23];
}

static void test_png_barcodes_decode(void)
{
    char *dir = th_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    static const struct {
        label_size_t size;
        int dpi;
        unsigned w, h;
    } cases[] = {
        { LABEL_4X6, 203, 812, 1218 },
        { LABEL_4X6, 300, 1200, 1800 },
        { LABEL_2X1, 203, 406, 203 },
        { LABEL_2X1, 300, 600, 300 },
    };
    /* The roomy label and the crowded one, which the layout sets in smaller type. */
    for (size_t j = 0; j < 2 * N_ELEMS(cases); j++) {
        size_t i = j % N_ELEMS(cases);
        int crowded = j >= N_ELEMS(cases);
        label_t l = crowded ? crowded_label() : exchange_label();
        uint8_t *png = NULL;
        size_t len = 0;
        CU_ASSERT_EQUAL_FATAL(label_render(&l, LABEL_PNG, cases[i].size, cases[i].dpi, &png,
                                           &len),
                              0);
        unsigned w, h;
        png_size(png, len, &w, &h);
        CU_ASSERT_EQUAL(w, cases[i].w);
        CU_ASSERT_EQUAL(h, cases[i].h);
        char path[512];
        snprintf(path, sizeof(path), "%s/label-%zu.png", dir, j);
        CU_ASSERT_EQUAL(write_bytes(path, png, len), 0);
        free(png);
        char *codes = zbar(path);
        ASSERT_STR(codes, crowded ? "RCPT-7654321\n" : "RCPT-1234567\n");
        free(codes);
        if (cases[i].size == LABEL_4X6) {
            char *m = dmtx(path);
            ASSERT_STR(m, crowded ? "RMAD RCPT-7654321 RMA:RMA-2026-00417 SN:EF8C21A00917"
                                  : "RMAD RCPT-1234567 RMA:RMA-2026-00417 SN:EF8C21A00917");
            free(m);
        }
    }
    th_rm_rf(dir);
    free(dir);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every command of scancmd_table() scans from the sheet, each exactly once. */
static void check_sheet(sheet_paper_t paper, const char *name, const char *page_size)
{
    char *dir = th_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    uint8_t *pdf = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(sheet_render(paper, &pdf, &len), 0);
    glob_t pages;
    rasterise(dir, name, pdf, len, &pages);
    free(pdf);
    check_page_size(dir, name, page_size);
    /* A dock's sheet: two pages at most, what a worker needs most on the first. */
    CU_ASSERT(pages.gl_pathc >= 1 && pages.gl_pathc <= 2);
    static const char *const first_page[] = { "CMD-DONE", "CMD-CANCEL", "CMD-NORMA",
                                              "PKG-ORIGINAL", "PKG-REPLACEMENT", "PKG-NONE",
                                              "FAULT-CONFIRMED", "FAULT-NFF", "FAULT-DOA" };
    char *page1 = pages.gl_pathc ? zbar(pages.gl_pathv[0]) : NULL;
    for (size_t i = 0; i < N_ELEMS(first_page); i++) {
        char line[64];
        snprintf(line, sizeof(line), "%s\n", first_page[i]);
        ASSERT_CONTAINS(page1, line);
    }
    free(page1);

    char *all = NULL;
    size_t all_len = 0;
    FILE *f = open_memstream(&all, &all_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (size_t p = 0; p < pages.gl_pathc; p++) {
        char *codes = zbar(pages.gl_pathv[p]);
        CU_ASSERT_PTR_NOT_NULL(codes);
        if (codes)
            fputs(codes, f);
        free(codes);
    }
    fclose(f);
    globfree(&pages);

    /* Decoded lines, sorted, against the table's barcodes, sorted. */
    size_t n_cmd, n_got = 0;
    const scancmd_info_t *cmd = scancmd_table(&n_cmd);
    char **got = calloc(count(all, "\n") + 1, sizeof(*got));
    const char **want = calloc(n_cmd, sizeof(*want));
    CU_ASSERT_FATAL(got && want);
    for (char *save = NULL, *tok = strtok_r(all, "\n", &save); tok;
         tok = strtok_r(NULL, "\n", &save))
        got[n_got++] = tok;
    for (size_t i = 0; i < n_cmd; i++)
        want[i] = cmd[i].barcode;
    qsort(got, n_got, sizeof(*got), cmp_str);
    qsort(want, n_cmd, sizeof(*want), cmp_str);
    CU_ASSERT_EQUAL(n_got, n_cmd);
    for (size_t i = 0; i < n_got && i < n_cmd; i++)
        ASSERT_STR(got[i], want[i]);
    free(got);
    free(want);
    free(all);
    th_rm_rf(dir);
    free(dir);
}

static void test_sheet_scans(void)
{
    check_sheet(SHEET_A4, "sheet-a4", "595.276 x 841.89 pts");
    check_sheet(SHEET_LETTER, "sheet-letter", "612 x 792 pts");
    sheet_paper_t p;
    CU_ASSERT(sheet_paper_parse("Letter", &p) == 0 && p == SHEET_LETTER);
    CU_ASSERT_EQUAL(sheet_paper_parse("a5", &p), -EINVAL);
    uint8_t *out = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(sheet_render((sheet_paper_t)9, &out, &len), -EINVAL);
    CU_ASSERT_PTR_NULL(out);

    /* Any group lays out the same way: a vendor's own codes, say. */
    static const sheet_entry_t codes[] = { { "ACC-REMOTE", "remote control" },
                                           { "ACC-POWER_ADAPTER", "power adapter" },
                                           { "ACC-STAND", "stand" } };
    const sheet_group_t group = { "Accessories of the EPN4208", codes, N_ELEMS(codes) };
    CU_ASSERT_EQUAL(sheet_render_groups(SHEET_A4, "EverFocus", NULL, 0, &out, &len), -EINVAL);
    CU_ASSERT_EQUAL_FATAL(sheet_render_groups(SHEET_A4, "EverFocus", &group, 1, &out, &len), 0);
    char *dir = th_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    glob_t pages;
    rasterise(dir, "group", out, len, &pages);
    free(out);
    CU_ASSERT_EQUAL(pages.gl_pathc, 1);
    char *got = pages.gl_pathc ? zbar(pages.gl_pathv[0]) : NULL;
    ASSERT_CONTAINS(got, "ACC-REMOTE\n");
    ASSERT_CONTAINS(got, "ACC-POWER_ADAPTER\n");
    ASSERT_CONTAINS(got, "ACC-STAND\n");
    CU_ASSERT(got && count(got, "\n") == 3);
    free(got);
    globfree(&pages);
    th_rm_rf(dir);
    free(dir);
}

/* ---- rmactl label / sheet --------------------------------------------------------- */

static th_proc_t rmactl(char **args, size_t n)
{
    char bin[512];
    char *argv[16] = { bin };
    snprintf(bin, sizeof(bin), "%s", th_bin("rmactl"));
    for (size_t i = 0; i < n && i < N_ELEMS(argv) - 2; i++)
        argv[i + 1] = args[i];
    return th_run_proc(argv, NULL);
}

/* Exit 2 with exactly one line on stderr naming the problem. */
static void check_bad_usage(char **args, size_t n, const char *says)
{
    th_proc_t p = rmactl(args, n);
    CU_ASSERT_EQUAL(p.status, 2);
    CU_ASSERT(p.err && count(p.err, "\n") == 1);
    ASSERT_CONTAINS(p.err, says);
    th_proc_free(&p);
}

#define ARGS(...) (char *[]){ __VA_ARGS__ }, N_ELEMS(((char *[]){ __VA_ARGS__ }))

static void test_cli(void)
{
    char *dir = th_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char png[512], pdf[512], zpl_json[512], bad[512], sheet[512];
    snprintf(png, sizeof(png), "%s/label.png", dir);
    snprintf(pdf, sizeof(pdf), "%s/label.pdf", dir);
    snprintf(sheet, sizeof(sheet), "%s/sheet.pdf", dir);
    snprintf(zpl_json, sizeof(zpl_json), "%s/hostile.json", dir);
    snprintf(bad, sizeof(bad), "%s/bad.json", dir);
    const char *fixture = "tests/fixtures/labels/exchange.json";

    /* The format follows the output's name; the PNG scans. */
    th_proc_t p = rmactl(ARGS("label", "--json", (char *)fixture, "--dpi", "300", "-o", png));
    CU_ASSERT_EQUAL(p.status, 0);
    ASSERT_STR(p.err, "");
    th_proc_free(&p);
    char *codes = zbar(png);
    ASSERT_STR(codes, "RCPT-1234567\n");
    free(codes);
    char *m = dmtx(png);
    ASSERT_STR(m, "RMAD RCPT-1234567 RMA:RMA-2026-00417 SN:EF8C21A00917");
    free(m);

    p = rmactl(ARGS("label", "--json", (char *)fixture, "--size", "2x1", "--format=pdf", "-o", pdf));
    CU_ASSERT_EQUAL(p.status, 0);
    th_proc_free(&p);
    size_t len = 0;
    char *text = th_read_file(pdf, &len);
    CU_ASSERT(text && len > 5 && memcmp(text, "%PDF-", 5) == 0);
    free(text);

    /* ZPL on stdout, from JSON whose strings try to inject commands. */
    CU_ASSERT_EQUAL(th_write_file(zpl_json, "{\"disposition\": \"restock_fee\", "
                                            "\"restocking_fee_pct\": 15, \"rma\": \"X^XZ~JR\", "
                                            "\"receipt_id\": 5, \"refusal\": false, "
                                            "\"flags\": [\"bill_customer\"], \"model\": null}"),
                    0);
    p = rmactl(ARGS("label", "--json", zpl_json, "--format", "zpl", "-o", "-"));
    CU_ASSERT_EQUAL(p.status, 0);
    if (p.out) {
        check_zpl_structure(p.out, strlen(p.out), 812, 1218);
        char *fields = zpl_fields(p.out);
        ASSERT_CONTAINS(fields, "T:RESTOCK -15%\n");
        ASSERT_CONTAINS(fields, "T:X^XZ~JR\n");
        ASSERT_CONTAINS(fields, "T:BILL CUSTOMER\n");
        free(fields);
    }
    th_proc_free(&p);

    /* Bad usage and bad input: exit 2, one line. */
    check_bad_usage(ARGS("label", "--json", (char *)fixture), "usage: rmactl label");
    check_bad_usage(ARGS("label", "-o", png, "--json"), "no value after it: '--json'");
    check_bad_usage(ARGS("sheet", "--colour", "red"), "unknown option");
    check_bad_usage(ARGS("label", "-o", png), "usage: rmactl label");
    check_bad_usage(ARGS("label", "--json", (char *)fixture, "--format", "bmp", "-o", png),
                    "--format must be zpl, pdf or png");
    check_bad_usage(ARGS("label", "--json", (char *)fixture, "--size", "3x2", "-o", png),
                    "--size must be 4x6 or 2x1");
    check_bad_usage(ARGS("label", "--json", (char *)fixture, "--dpi", "600", "-o", png),
                    "--dpi must be 203 or 300");
    check_bad_usage(ARGS("label", "--json", (char *)fixture, "-o", "label.bmp"),
                    "the output name must end in .zpl, .pdf, .png");
    check_bad_usage(ARGS("label", "42", "--json", (char *)fixture, "-o", png),
                    "give a RECEIPT or --json FILE, not both");
    check_bad_usage(ARGS("label", "42", "43", "-o", png), "unexpected argument '43'");
    check_bad_usage(ARGS("label", "4x", "-o", png),
                    "RECEIPT must be a receipt id (a whole number > 0), not '4x'");
    check_bad_usage(ARGS("label", "--json", "/nonexistent/x.json", "-o", png), "/nonexistent/x.json");
    CU_ASSERT_EQUAL(th_write_file(bad, "{\"rma\": 7}"), 0);
    check_bad_usage(ARGS("label", "--json", bad, "-o", png), "\"rma\" must be a string");
    CU_ASSERT_EQUAL(th_write_file(bad, "{\"disposition\": \"restock\", \"colour\": \"red\"}"), 0);
    check_bad_usage(ARGS("label", "--json", bad, "-o", png), "unknown key \"colour\"");
    CU_ASSERT_EQUAL(th_write_file(bad, "{\"flags\": [1]}"), 0);
    check_bad_usage(ARGS("label", "--json", bad, "-o", png), "\"flags\" must hold strings");
    CU_ASSERT_EQUAL(th_write_file(bad, "{\"rma\": "), 0);
    check_bad_usage(ARGS("label", "--json", bad, "-o", png), "line 1");
    CU_ASSERT_EQUAL(th_write_file(bad, "[1, 2]"), 0);
    check_bad_usage(ARGS("label", "--json", bad, "-o", png), "must be a JSON object");

    /* The sheet, and its usage. */
    p = rmactl(ARGS("sheet", "--paper", "letter", "-o", sheet));
    CU_ASSERT_EQUAL(p.status, 0);
    th_proc_free(&p);
    text = th_read_file(sheet, &len);
    CU_ASSERT(text && len > 5 && memcmp(text, "%PDF-", 5) == 0);
    free(text);
    check_bad_usage(ARGS("sheet"), "usage: rmactl sheet");
    check_bad_usage(ARGS("sheet", "--paper", "a5", "-o", sheet), "--paper must be a4 or letter");

    /* Issue 10: --vendor adds the accessory barvcodes of the vendor's products, from the
     * policies, grouped by family; every one scans. */
    p = rmactl(ARGS("sheet", "--vendor", "EverFocus", "--policies", "policies", "-o", sheet));
    CU_ASSERT_EQUAL(p.status, 0);
    th_proc_free(&p);
    text = th_read_file(sheet, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    glob_t pages;
    rasterise(dir, "vendor-sheet", (uint8_t *)text, len, &pages);
    free(text);
    char *vcodes = NULL;
    size_t vcodes_len = 0;
    FILE *cf = open_memstream(&vcodes, &vcodes_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cf);
    for (size_t pg = 0; pg < pages.gl_pathc; pg++) {
        char *c = zbar(pages.gl_pathv[pg]);
        if (c)
            fputs(c, cf);
        free(c);
    }
    fclose(cf);
    globfree(&pages);
    /* Cameras, recorders and monitors (zbarimg reports a symbol repeated on one page
     * once, so items listed for several families are counted at least once). */
    static const char *const items[] = { "ACC-POWER-ADAPTER\n", "ACC-MOUNTING-KIT\n",
                                         "ACC-QUICK-GUIDE\n", "ACC-MOUSE\n", "ACC-STAND\n",
                                         "ACC-CABLE-KIT\n", "ACC-REMOTE\n", "ACC-ALL\n" };
    for (size_t k = 0; k < N_ELEMS(items); k++)
        CU_ASSERT(count(vcodes, items[k]) >= 1);
    free(vcodes);
    p = rmactl(ARGS("sheet", "--model", "IP Cameras", "--policies", "policies", "-o", sheet));
    CU_ASSERT_EQUAL(p.status, 0);
    th_proc_free(&p);
    /* Issue 13: a policy's own findings are on its vendor's sheet, and scan. */
    p = rmactl(ARGS("sheet", "--vendor", "Nordlicht Displays", "--policies", "policies", "-o", sheet));
    CU_ASSERT_EQUAL(p.status, 0);
    th_proc_free(&p);
    text = th_read_file(sheet, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    rasterise(dir, "own-findings-sheet", (uint8_t *)text, len, &pages);
    free(text);
    int own = 0;
    for (size_t pg = 0; pg < pages.gl_pathc; pg++) {
        char *c = zbar(pages.gl_pathv[pg]);
        own += c ? count(c, "FIND-PANEL_BURN_IN\n") + count(c, "FIND-PIXEL_DEFECT\n") : 0;
        free(c);
    }
    globfree(&pages);
    CU_ASSERT_EQUAL(own, 2);
    check_bad_usage(ARGS("sheet", "--vendor", "Nobody", "--policies", "policies", "-o", sheet),
                    "no policy for vendor 'Nobody'");
    check_bad_usage(ARGS("sheet", "--vendor", "V7", "--policies", "policies", "-o", sheet),
                    "V7 lists no accessories");

    /* An output that cannot be written is a failure, not bad input. */
    p = rmactl(ARGS("sheet", "-o", "/nonexistent/dir/sheet.pdf"));
    CU_ASSERT_EQUAL(p.status, 1);
    ASSERT_CONTAINS(p.err, "/nonexistent/dir/sheet.pdf");
    th_proc_free(&p);

    th_rm_rf(dir);
    free(dir);
}

static char *suite_tz;

/* Label times are local: the expected texts are written for UTC, whatever the host's. */
static int set_utc(void)
{
    suite_tz = tz_set("UTC");
    return 0;
}

/* The font caches are process-wide: free them so leak checkers see only ours. */
static int release_fonts(void)
{
    label_release_fonts();
    free(tz_set(suite_tz));
    free(suite_tz);
    suite_tz = NULL;
    return 0;
}

/* A screen barcode decodes to its text; bad sizes and text are refused. */
static void test_symbol_png(void)
{
    char *dir = th_mkdtemp();
    char path[4200];
    uint8_t *png = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(dir != NULL);
    CU_ASSERT_EQUAL_FATAL(symbol_code128_png("ACC-POWER-ADAPTER", 17, 2, 40, &png, &len), 0);
    CU_ASSERT(len > 8 && memcmp(png, "\x89PNG", 4) == 0);
    snprintf(path, sizeof(path), "%s/acc.png", dir);
    CU_ASSERT_EQUAL(write_bytes(path, png, len), 0);
    free(png);
    char *got = zbar(path);
    ASSERT_STR(got, "ACC-POWER-ADAPTER\n");
    free(got);
    png = NULL;
    CU_ASSERT_EQUAL(symbol_code128_png("", 0, 2, 40, &png, &len), -EINVAL);
    CU_ASSERT_EQUAL(symbol_code128_png("A", 1, 0, 40, &png, &len), -EINVAL);
    CU_ASSERT_EQUAL(symbol_code128_png("A", 1, 2, 1000, &png, &len), -EINVAL);
    char big[SYMBOL_TEXT_MAX + 2];
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CU_ASSERT_EQUAL(symbol_code128_png(big, strlen(big), 2, 40, &png, &len), -EINVAL);
    CU_ASSERT_PTR_NULL(png);
    th_rm_rf(dir);
    free(dir);
}

int suite_labels(void)
{
    CU_pSuite s = CU_add_suite("labels", set_utc, release_fonts);
    if (!s || !CU_add_test(s, "disposition and flag words, option spellings", test_words) ||
        !CU_add_test(s, "text cleaning and cutting", test_text_clean) ||
        !CU_add_test(s, "screen barcodes (PNG) decode", test_symbol_png) ||
        !CU_add_test(s, "ZPL at every size and dpi", test_zpl_every_size) ||
        !CU_add_test(s, "ZPL: scanned text cannot inject commands", test_zpl_injection) ||
        !CU_add_test(s, "long and non-ASCII text is cut safely", test_long_and_non_ascii) ||
        !CU_add_test(s, "reasons in plain words", test_reason_words) ||
        !CU_add_test(s, "plain words of every case's first reason",
                     test_reason_words_of_real_results) ||
        !CU_add_test(s, "times in the local zone", test_local_time) ||
        !CU_add_test(s, "4x6 and 2x1: no overlap, no empty band", test_layout_fills_label) ||
        !CU_add_test(s, "2x1: the RMA or serial once", test_2x1_ids) ||
        !CU_add_test(s, "missing fields, refusals, invalid UTF-8", test_missing_and_invalid) ||
        !CU_add_test(s, "PDF labels: barcodes decode", test_pdf_barcodes_decode) ||
        !CU_add_test(s, "PNG labels: barcodes decode", test_png_barcodes_decode) ||
        !CU_add_test(s, "command sheet: every command scans", test_sheet_scans) ||
        !CU_add_test(s, "rmactl label and sheet", test_cli))
        return -1;
    return 0;
}
