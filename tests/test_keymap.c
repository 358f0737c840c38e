/*
 * Keyboard-wedge decoding (drivers/keymap.h): HID boot-keyboard reports to lines, US
 * and German layouts, GS as Ctrl+], rollover, overflow, errors.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <iconv.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/keymap.h"
#include "drivers/scan.h"
#include "tests/suites.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Modifier bits. */
#define LCTRL  0x01
#define LSHIFT 0x02
#define LALT   0x04
#define LGUI   0x08
#define RCTRL  0x10
#define RSHIFT 0x20
#define ALTGR  0x40

/* The lines the decoder delivered. */
static struct {
    int n;
    char text[8][700];
    size_t len[8];
    char reason[8][128];  /* "" for good lines */
} got;

static void on_line(const char *line, size_t len, const char *reason, void *data)
{
    int *calls = data;
    (*calls)++;
    if (got.n >= (int)N_ELEMS(got.text))
        return;
    CU_ASSERT_EQUAL(strlen(line), len);
    memcpy(got.text[got.n], line, len + 1);
    got.len[got.n] = len;
    snprintf(got.reason[got.n], sizeof(got.reason[0]), "%s", reason ? reason : "");
    got.n++;
}

static int calls;

static kbd_decoder_t *decoder(const char *layout, size_t max_len)
{
    memset(&got, 0, sizeof(got));
    calls = 0;
    keymap_t *map = keymap_new(layout, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(map);
    kbd_decoder_t *dec = kbd_decoder_new(map, max_len, on_line, &calls);
    keymap_unref(&map);  /* the decoder holds its own reference */
    CU_ASSERT_PTR_NOT_NULL_FATAL(dec);
    return dec;
}

/* One report: modifiers and up to two keycodes. */
static void rep(kbd_decoder_t *dec, uint8_t mods, uint8_t k1, uint8_t k2)
{
    uint8_t r[8] = { mods, 0, k1, k2, 0, 0, 0, 0 };
    CU_ASSERT_EQUAL(kbd_decoder_feed(dec, r, sizeof(r)), 0);
}

/* Press a key with modifiers, then release everything (what scanners send). */
static void key(kbd_decoder_t *dec, uint8_t mods, uint8_t code)
{
    rep(dec, mods, code, 0);
    rep(dec, 0, 0, 0);
}

static void enter(kbd_decoder_t *dec)
{
    key(dec, 0, 0x28);
}

/* Type lowercase letters and digits (same keycodes in both layouts, y/z aside). */
static void type_plain(kbd_decoder_t *dec, const char *s)
{
    for (; *s; s++) {
        if (*s >= 'a' && *s <= 'z')
            key(dec, 0, (uint8_t)(0x04 + *s - 'a'));
        else if (*s >= '1' && *s <= '9')
            key(dec, 0, (uint8_t)(0x1E + *s - '1'));
        else if (*s == '0')
            key(dec, 0, 0x27);
        else
            CU_FAIL("type_plain: unsupported character");
    }
}

static void test_brief_sequence(void)
{
    kbd_decoder_t *dec = decoder("us", 0);
    static const uint8_t seq[][8] = {
        { 0x02, 0, 0x04 }, { 0 }, { 0, 0, 0x1E }, { 0 }, { 0, 0, 0x1E }, { 0 },
        { 0, 0, 0x28 }, { 0 },
    };
    for (size_t i = 0; i < N_ELEMS(seq); i++) {
        CU_ASSERT_EQUAL(kbd_decoder_feed(dec, seq[i], 8), 0);
        CU_ASSERT_EQUAL(calls, i >= 6 ? 1 : 0); /* the line comes with Enter */
    }
    CU_ASSERT_EQUAL_FATAL(got.n, 1);
    CU_ASSERT_STRING_EQUAL(got.text[0], "A11\n");
    CU_ASSERT_EQUAL(got.len[0], 4);
    CU_ASSERT_STRING_EQUAL(got.reason[0], "");
    kbd_decoder_destroy(&dec);
    CU_ASSERT_PTR_NULL(dec);
}

static void test_press_semantics(void)
{
    kbd_decoder_t *dec = decoder("us", 0);
    /* Held keys do not repeat; only newly present keycodes type. */
    rep(dec, 0, 0x04, 0);
    rep(dec, 0, 0x04, 0);
    rep(dec, 0, 0x04, 0x05);   /* b pressed while a held */
    rep(dec, 0, 0, 0x05);      /* a released */
    rep(dec, 0, 0x06, 0x05);   /* c in the slot a had */
    rep(dec, 0, 0, 0);
    /* Two keys new in one report: slot order. */
    rep(dec, 0, 0x07, 0x08);
    rep(dec, 0, 0, 0);
    /* Shift in its own report first, then the key (some scanners do this). */
    rep(dec, LSHIFT, 0, 0);
    rep(dec, LSHIFT, 0x09, 0);
    rep(dec, 0, 0, 0);
    /* Right shift; a modifier reported as a keycode (0xE1) is ignored. */
    key(dec, RSHIFT, 0x0A);
    rep(dec, LSHIFT, 0xE1, 0x0B);
    rep(dec, 0, 0, 0);
    /* Shift pressed while the key is already held: no new character. */
    rep(dec, 0, 0x0C, 0);
    rep(dec, LSHIFT, 0x0C, 0);
    rep(dec, 0, 0, 0);
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 1);
    CU_ASSERT_STRING_EQUAL(got.text[0], "abcdeFGHi\n");
    kbd_decoder_destroy(&dec);
}

static void test_us_characters(void)
{
    kbd_decoder_t *dec = decoder("us", 0);
    const uint8_t row[] = { 0x1E, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27,
                            0x2D, 0x2E, 0x2F, 0x30, 0x31, 0x33, 0x34, 0x35, 0x36, 0x37,
                            0x38, 0x2C, 0x32 };
    for (size_t i = 0; i < N_ELEMS(row); i++)
        key(dec, 0, row[i]);
    enter(dec);
    for (size_t i = 0; i < N_ELEMS(row); i++)
        key(dec, LSHIFT, row[i]);
    enter(dec);
    for (uint8_t k = 0x04; k <= 0x1D; k++)
        key(dec, 0, k);
    for (uint8_t k = 0x04; k <= 0x1D; k++)
        key(dec, RSHIFT, k);
    key(dec, 0, 0x2B); /* Tab ends a line too */
    CU_ASSERT_EQUAL_FATAL(got.n, 3);
    CU_ASSERT_STRING_EQUAL(got.text[0], "1234567890-=[]\\;'`,./ \\\n");
    CU_ASSERT_STRING_EQUAL(got.text[1], "!@#$%^&*()_+{}|:\"~<>? |\n");
    CU_ASSERT_STRING_EQUAL(got.text[2],
                           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n");
    kbd_decoder_destroy(&dec);
}

static void test_de_layout(void)
{
    kbd_decoder_t *dec = decoder("de", 0);
    /* "Straße": S t r a ß e */
    key(dec, LSHIFT, 0x16);
    type_plain(dec, "tra");
    key(dec, 0, 0x2D);
    key(dec, 0, 0x08);
    enter(dec);
    /* "Größe Zürich Yak": y/z swapped, umlauts. */
    key(dec, LSHIFT, 0x0A);
    key(dec, 0, 0x15);
    key(dec, 0, 0x33);
    key(dec, 0, 0x2D);
    key(dec, 0, 0x08);
    key(dec, 0, 0x2C);
    key(dec, LSHIFT, 0x1C);  /* Z on the US y key */
    key(dec, 0, 0x2F);
    type_plain(dec, "rich");
    key(dec, 0, 0x2C);
    key(dec, LSHIFT, 0x1D);  /* Y on the US z key */
    type_plain(dec, "ak");
    key(dec, LSHIFT, 0x34);
    key(dec, LSHIFT, 0x33);
    key(dec, LSHIFT, 0x2F);
    key(dec, 0, 0x34);
    enter(dec);
    /* Shifted digits per DE: ! " § $ % & / ( ) = */
    for (uint8_t k = 0x1E; k <= 0x27; k++)
        key(dec, LSHIFT, k);
    enter(dec);
    /* AltGr: @ { [ ] } \ ~ | € µ ² ³ */
    const uint8_t altgr[] = { 0x14, 0x24, 0x25, 0x26, 0x27, 0x2D, 0x30, 0x64, 0x08, 0x10,
                              0x1F, 0x20 };
    for (size_t i = 0; i < N_ELEMS(altgr); i++)
        key(dec, ALTGR, altgr[i]);
    enter(dec);
    /* Punctuation: + * # ' # ' < > , ; . : - _ ? ° */
    const struct {
        uint8_t mods, code;
    } punct[] = { { 0, 0x30 }, { LSHIFT, 0x30 }, { 0, 0x31 }, { LSHIFT, 0x31 },
                  { 0, 0x32 }, { LSHIFT, 0x32 }, { 0, 0x64 }, { LSHIFT, 0x64 },
                  { 0, 0x36 }, { LSHIFT, 0x36 }, { 0, 0x37 }, { LSHIFT, 0x37 },
                  { 0, 0x38 }, { LSHIFT, 0x38 }, { LSHIFT, 0x2D }, { LSHIFT, 0x35 } };
    for (size_t i = 0; i < N_ELEMS(punct); i++)
        key(dec, punct[i].mods, punct[i].code);
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 5);
    CU_ASSERT_STRING_EQUAL(got.text[0], "Stra\xc3\x9f" "e\n");
    CU_ASSERT_STRING_EQUAL(got.text[1], "Gr\xc3\xb6\xc3\x9f" "e Z\xc3\xbcrich Yak"
                                        "\xc3\x84\xc3\x96\xc3\x9c\xc3\xa4\n");
    CU_ASSERT_STRING_EQUAL(got.text[2], "!\"\xc2\xa7$%&/()=\n");
    CU_ASSERT_STRING_EQUAL(got.text[3], "@{[]}\\~|\xe2\x82\xac\xc2\xb5\xc2\xb2\xc2\xb3\n");
    CU_ASSERT_STRING_EQUAL(got.text[4], "+*#'#'<>,;.:-_?\xc2\xb0\n");
    for (int i = 0; i < got.n; i++)
        CU_ASSERT_STRING_EQUAL(got.reason[i], "");
    kbd_decoder_destroy(&dec);
}

static void test_de_dead_keys(void)
{
    kbd_decoder_t *dec = decoder("de", 0);
    key(dec, 0, 0x35);        /* ^ dead */
    key(dec, 0, 0x2C);        /* space: types ^ */
    key(dec, 0, 0x2E);        /* acute dead */
    key(dec, 0, 0x2C);
    key(dec, LSHIFT, 0x2E);   /* grave dead */
    key(dec, 0, 0x2C);
    type_plain(dec, "1");
    enter(dec);
    key(dec, 0, 0x35);        /* ^ then a letter: not composed, an error */
    key(dec, 0, 0x04);
    type_plain(dec, "bc");
    enter(dec);
    type_plain(dec, "x");
    key(dec, 0, 0x35);        /* ^ then the terminator */
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 3);
    CU_ASSERT_STRING_EQUAL(got.text[0], "^\xc2\xb4`1\n");
    CU_ASSERT_STRING_EQUAL(got.reason[0], "");
    CU_ASSERT_STRING_EQUAL(got.text[1], "");
    CU_ASSERT_STRING_EQUAL(got.reason[1], "dead key ^ followed by keycode 0x04 (composed "
                                          "characters are not supported)");
    CU_ASSERT_STRING_EQUAL(got.text[2], "x");
    CU_ASSERT_STRING_EQUAL(got.reason[2], "dead key ^ not followed by Space");
    kbd_decoder_destroy(&dec);
}

static void test_gs_via_ctrl(void)
{
    /* US: Ctrl+] (left or right Ctrl). */
    kbd_decoder_t *dec = decoder("us", 0);
    key(dec, LCTRL, 0x30);
    type_plain(dec, "10");
    key(dec, LSHIFT, 0x04);
    key(dec, RCTRL, 0x30);
    type_plain(dec, "21");
    key(dec, LSHIFT, 0x1B);
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 1);
    CU_ASSERT_STRING_EQUAL(got.text[0], "\x1d" "10A\x1d" "21X\n");
    kbd_decoder_destroy(&dec);

    /* DE: Ctrl + the key that types ']' (AltGr+9), and Ctrl + the US ']' position. */
    dec = decoder("de", 0);
    key(dec, LCTRL | ALTGR, 0x26);
    type_plain(dec, "0109506000134352");
    type_plain(dec, "10");
    key(dec, LSHIFT, 0x04);
    key(dec, LCTRL, 0x30);
    type_plain(dec, "21");
    key(dec, LSHIFT, 0x1B);
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 1);
    CU_ASSERT_STRING_EQUAL(got.text[0], "\x1d" "0109506000134352" "10A\x1d" "21X\n");

    /* The line is a scan like any other: decodes as GS1 data and parses. */
    scan_t sc;
    gs1_t g;
    const char *reason = NULL;
    CU_ASSERT_EQUAL_FATAL(scan_decode((uint8_t *)got.text[0], got.len[0], NULL, &sc, &reason), 0);
    CU_ASSERT_TRUE(sc.gs1);
    CU_ASSERT_EQUAL(gs1_parse_at(sc.text, sc.len, 2026, &g, &reason), 0);
    CU_ASSERT_STRING_EQUAL(g.gtin, "09506000134352");
    CU_ASSERT_STRING_EQUAL(g.batch, "A");
    CU_ASSERT_STRING_EQUAL(g.serial, "X");
    scan_clear(&sc);

    /* Any other Ctrl combination is an error on the line. */
    key(dec, LCTRL, 0x04);
    type_plain(dec, "b");
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 2);
    CU_ASSERT_STRING_EQUAL(got.reason[1], "unsupported key combination Ctrl+keycode 0x04");
    kbd_decoder_destroy(&dec);
}

static void test_rollover(void)
{
    kbd_decoder_t *dec = decoder("us", 0);
    const uint8_t rollover[8] = { 0, 0, 1, 1, 1, 1, 1, 1 };
    rep(dec, 0, 0x04, 0);                         /* a */
    CU_ASSERT_EQUAL(kbd_decoder_feed(dec, rollover, 8), 0);
    rep(dec, 0, 0x04, 0x05);                      /* a still held: only b */
    CU_ASSERT_EQUAL(kbd_decoder_feed(dec, rollover, 8), 0);
    rep(dec, 0, 0, 0);
    CU_ASSERT_EQUAL(kbd_decoder_feed(dec, rollover, 8), 0);
    rep(dec, LSHIFT, 0x06, 0);                    /* C */
    const uint8_t post_fail[8] = { 0, 0, 2, 2, 2, 2, 2, 2 };
    const uint8_t undefined[8] = { 0x02, 0, 3, 0, 0, 0, 0, 0 };
    CU_ASSERT_EQUAL(kbd_decoder_feed(dec, post_fail, 8), 0);
    CU_ASSERT_EQUAL(kbd_decoder_feed(dec, undefined, 8), 0);
    rep(dec, 0, 0, 0);
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 1);
    CU_ASSERT_STRING_EQUAL(got.text[0], "abC\n");
    kbd_decoder_destroy(&dec);
}

static void test_overflow(void)
{
    kbd_decoder_t *dec = decoder("us", 8);
    type_plain(dec, "12345678");   /* exactly the limit */
    enter(dec);
    type_plain(dec, "123456789");  /* one more */
    type_plain(dec, "abc");        /* ignored until the terminator */
    enter(dec);
    type_plain(dec, "ok");         /* the next line is fine again */
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 3);
    CU_ASSERT_STRING_EQUAL(got.text[0], "12345678\n");
    CU_ASSERT_STRING_EQUAL(got.reason[0], "");
    CU_ASSERT_STRING_EQUAL(got.text[1], "12345678");
    CU_ASSERT_EQUAL(got.len[1], 8);
    CU_ASSERT_STRING_EQUAL(got.reason[1], "line longer than 8 bytes");
    CU_ASSERT_STRING_EQUAL(got.text[2], "ok\n");
    kbd_decoder_destroy(&dec);

    /* A multi-byte character never half fits. */
    dec = decoder("de", 3);
    type_plain(dec, "aa");
    key(dec, 0, 0x34);  /* ä, 2 bytes */
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 1);
    CU_ASSERT_STRING_EQUAL(got.text[0], "aa");
    CU_ASSERT_STRING_EQUAL(got.reason[0], "line longer than 3 bytes");
    kbd_decoder_destroy(&dec);

    /* The default is the scan limit. */
    dec = decoder("us", 0);
    for (int i = 0; i < SCAN_MAX_LEN_DEFAULT; i++)
        key(dec, 0, 0x04);
    enter(dec);
    for (int i = 0; i < SCAN_MAX_LEN_DEFAULT + 1; i++)
        key(dec, 0, 0x04);
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 2);
    CU_ASSERT_EQUAL(got.len[0], SCAN_MAX_LEN_DEFAULT + 1);
    CU_ASSERT_STRING_EQUAL(got.reason[0], "");
    CU_ASSERT_EQUAL(got.len[1], SCAN_MAX_LEN_DEFAULT);
    CU_ASSERT_STRING_EQUAL(got.reason[1], "line longer than 512 bytes");
    kbd_decoder_destroy(&dec);
}

static void test_errors(void)
{
    kbd_decoder_t *dec = decoder("us", 0);
    type_plain(dec, "ab");
    key(dec, 0, 0x3A);           /* F1 */
    type_plain(dec, "cd");       /* not decoded after the error */
    enter(dec);
    key(dec, 0, 0x29);           /* Escape */
    enter(dec);
    key(dec, 0, 0x64);           /* ISO 102nd key: no US meaning */
    enter(dec);
    key(dec, 0, 0xA0);           /* beyond every table */
    enter(dec);
    key(dec, ALTGR, 0x04);       /* no AltGr level in the US layout */
    enter(dec);
    key(dec, LALT, 0x04);
    enter(dec);
    key(dec, LGUI, 0x04);
    enter(dec);
    type_plain(dec, "fine");
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 8);
    CU_ASSERT_STRING_EQUAL(got.text[0], "ab");
    CU_ASSERT_STRING_EQUAL(got.reason[0], "unknown keycode 0x3A");
    CU_ASSERT_STRING_EQUAL(got.reason[1], "unknown keycode 0x29");
    CU_ASSERT_STRING_EQUAL(got.reason[2], "unknown keycode 0x64");
    CU_ASSERT_STRING_EQUAL(got.reason[3], "unknown keycode 0xA0");
    CU_ASSERT_STRING_EQUAL(got.reason[4], "no character for AltGr+keycode 0x04 in layout us");
    CU_ASSERT_STRING_EQUAL(got.reason[5], "unsupported key combination Alt+keycode 0x04");
    CU_ASSERT_STRING_EQUAL(got.reason[6], "unsupported key combination GUI+keycode 0x04");
    CU_ASSERT_STRING_EQUAL(got.text[7], "fine\n");
    CU_ASSERT_STRING_EQUAL(got.reason[7], "");

    uint8_t shortrep[7] = { 0 };
    CU_ASSERT_EQUAL(kbd_decoder_feed(dec, shortrep, sizeof(shortrep)), -EINVAL);
    uint8_t longrep[9] = { 0 };
    CU_ASSERT_EQUAL(kbd_decoder_feed(dec, longrep, sizeof(longrep)), -EINVAL);
    kbd_decoder_destroy(&dec);
}

static void test_terminators_and_keypad(void)
{
    kbd_decoder_t *dec = decoder("us", 0);
    type_plain(dec, "a");
    key(dec, 0, 0x2B);       /* Tab */
    key(dec, 0, 0x28);       /* Enter right after: empty line, ignored */
    type_plain(dec, "b");
    key(dec, 0, 0x58);       /* keypad Enter */
    enter(dec);              /* nothing pending: ignored */
    /* Keypad: / * - + 1..9 0 . */
    for (uint8_t k = 0x54; k <= 0x63; k++)
        if (k != 0x58)
            key(dec, 0, k);
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 3);
    CU_ASSERT_STRING_EQUAL(got.text[0], "a\n");
    CU_ASSERT_STRING_EQUAL(got.text[1], "b\n");
    CU_ASSERT_STRING_EQUAL(got.text[2], "/*-+1234567890.\n");
    kbd_decoder_destroy(&dec);

    dec = decoder("de", 0);
    key(dec, 0, 0x59);
    key(dec, 0, 0x63);       /* DE keypad decimal separator */
    key(dec, 0, 0x5A);
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 1);
    CU_ASSERT_STRING_EQUAL(got.text[0], "1,2\n");
    kbd_decoder_destroy(&dec);
}

static void test_flush_reset(void)
{
    kbd_decoder_t *dec = decoder("us", 0);
    kbd_decoder_flush(dec);  /* nothing pending */
    CU_ASSERT_EQUAL(calls, 0);
    type_plain(dec, "abc");
    kbd_decoder_flush(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 1);
    CU_ASSERT_STRING_EQUAL(got.text[0], "abc\n");
    type_plain(dec, "xy");
    rep(dec, 0, 0x06, 0);    /* c held at detach */
    kbd_decoder_reset(dec);
    rep(dec, 0, 0x06, 0);    /* after reset, a held key types again */
    rep(dec, 0, 0, 0);
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 2);
    CU_ASSERT_STRING_EQUAL(got.text[1], "c\n");
    kbd_decoder_destroy(&dec);
}

static void test_keymap_lookup(void)
{
    keymap_t *us = keymap_new("us", NULL), *de = keymap_new("DE", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(us);
    CU_ASSERT_PTR_NOT_NULL_FATAL(de);
    CU_ASSERT_STRING_EQUAL(keymap_name(us), "us");
    CU_ASSERT_STRING_EQUAL(keymap_name(de), "de");
    keymap_t *chfr = keymap_new("CH(fr)", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(chfr);
    CU_ASSERT_STRING_EQUAL(keymap_name(chfr), "ch(fr)");
    keymap_unref(&chfr);
    CU_ASSERT_PTR_NULL(chfr);

    /* Unknown names: a reason that says where the valid ones are listed. */
    static const char *const bad[] = { "xx", "fr(nosuch)", "", "fr(", "fr()", "fr(a)b",
                                       "(fr)", "f r", "../fr", "us(A/B)" };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        char *err = NULL;
        errno = 0;
        CU_ASSERT_PTR_NULL(keymap_new(bad[i], &err));
        CU_ASSERT_EQUAL(errno, EINVAL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown keyboard layout"));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "/usr/share/X11/xkb/rules/evdev.lst"));
        free(err);
    }
    char *err = NULL;
    CU_ASSERT_PTR_NULL(keymap_new("xx", &err));
    CU_ASSERT_STRING_EQUAL(err, "unknown keyboard layout 'xx' (XKB has no such layout or "
                                "variant; " KEYMAP_NAMES_HINT ")");
    free(err);
    CU_ASSERT_PTR_NULL(keymap_new(NULL, NULL));

    /* References: each unref drops one; the last frees. */
    keymap_t *again = keymap_ref(us);
    CU_ASSERT_PTR_EQUAL(again, us);
    keymap_unref(&again);
    CU_ASSERT_PTR_NULL(again);

    CU_ASSERT_PTR_NULL(kbd_decoder_new(NULL, 0, on_line, NULL));
    CU_ASSERT_PTR_NULL(kbd_decoder_new(us, 0, NULL, NULL));
    kbd_decoder_t *none = NULL;
    kbd_decoder_destroy(&none);
    kbd_decoder_destroy(NULL);
    keymap_unref(&us);
    keymap_unref(&de);
    keymap_unref(NULL);
}

/* ---- XKB layouts beyond us and de (issue 16) ------------------------------------ */

/* Alt held over keypad digits, then released: what a scanner in Alt mode sends. */
static void alt_code(kbd_decoder_t *dec, const char *digits)
{
    rep(dec, LALT, 0, 0);
    for (; *digits; digits++) {
        rep(dec, LALT, *digits == '0' ? 0x62 : (uint8_t)(0x59 + *digits - '1'), 0);
        rep(dec, LALT, 0, 0);
    }
    rep(dec, 0, 0, 0);
}

static void test_fr_layout(void)
{
    kbd_decoder_t *dec = decoder("fr", 0);
    /* AZERTY: digits with Shift, their plain level: & é " ' ( - è _ ç à */
    for (uint8_t k = 0x1E; k <= 0x27; k++)
        key(dec, LSHIFT, k);
    enter(dec);
    for (uint8_t k = 0x1E; k <= 0x27; k++)
        key(dec, 0, k);
    enter(dec);
    /* a z q w m at the US q w a z ; positions; AltGr: ] @ # ~ */
    const uint8_t letters[] = { 0x14, 0x1A, 0x04, 0x1D, 0x33 };
    for (size_t i = 0; i < N_ELEMS(letters); i++)
        key(dec, 0, letters[i]);
    key(dec, ALTGR, 0x2D);
    key(dec, ALTGR, 0x27);
    key(dec, ALTGR, 0x20);
    key(dec, ALTGR, 0x1F);
    enter(dec);
    /* ^ is a dead key (right of P): with Space the accent; ¨ on Shift. */
    key(dec, 0, 0x2F);
    key(dec, 0, 0x2C);
    key(dec, LSHIFT, 0x2F);
    key(dec, 0, 0x2C);
    enter(dec);
    /* Keypad decimal key: '.' in fr. */
    key(dec, 0, 0x59);
    key(dec, 0, 0x63);
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 5);
    CU_ASSERT_STRING_EQUAL(got.text[0], "1234567890\n");
    CU_ASSERT_STRING_EQUAL(got.text[1], "&\xc3\xa9\"'(-\xc3\xa8_\xc3\xa7\xc3\xa0\n");
    CU_ASSERT_STRING_EQUAL(got.text[2], "azqwm]@#~\n");
    CU_ASSERT_STRING_EQUAL(got.text[3], "^\xc2\xa8\n");
    CU_ASSERT_STRING_EQUAL(got.text[4], "1.\n");
    for (int i = 0; i < got.n; i++)
        CU_ASSERT_STRING_EQUAL(got.reason[i], "");
    kbd_decoder_destroy(&dec);
}

static void test_gb_layout(void)
{
    kbd_decoder_t *dec = decoder("gb", 0);
    /* " and @ swapped against the US; # ~ left of Enter; £ on Shift+3; \ | by Z. */
    key(dec, LSHIFT, 0x1F);
    key(dec, LSHIFT, 0x34);
    key(dec, 0, 0x34);
    key(dec, 0, 0x32);
    key(dec, LSHIFT, 0x32);
    key(dec, LSHIFT, 0x20);
    key(dec, 0, 0x64);
    key(dec, LSHIFT, 0x64);
    key(dec, ALTGR, 0x21);   /* AltGr+4: euro */
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 1);
    CU_ASSERT_STRING_EQUAL(got.text[0], "\"@'#~\xc2\xa3\\|\xe2\x82\xac\n");
    kbd_decoder_destroy(&dec);
}

static void test_ch_de_layout(void)
{
    kbd_decoder_t *dec = decoder("ch(de)", 0);
    /* QWERTZ; + " * on Shift+1..3; ' right of 0; $ left of Enter; AltGr @ #; ^ dead. */
    key(dec, 0, 0x1C);
    key(dec, 0, 0x1D);
    key(dec, LSHIFT, 0x1E);
    key(dec, LSHIFT, 0x1F);
    key(dec, LSHIFT, 0x20);
    key(dec, 0, 0x2D);
    key(dec, 0, 0x32);
    key(dec, ALTGR, 0x1F);
    key(dec, ALTGR, 0x20);
    key(dec, 0, 0x2E);
    key(dec, 0, 0x2C);
    key(dec, 0, 0x2F);       /* ü */
    enter(dec);
    /* ch(fr): the same keys, French letters on the umlaut keys. */
    CU_ASSERT_EQUAL_FATAL(got.n, 1);
    CU_ASSERT_STRING_EQUAL(got.text[0], "zy+\"*'$@#^\xc3\xbc\n");
    kbd_decoder_destroy(&dec);
    dec = decoder("ch(fr)", 0);
    key(dec, 0, 0x2F);       /* è */
    key(dec, 0, 0x1C);
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 1);
    CU_ASSERT_STRING_EQUAL(got.text[0], "\xc3\xa8z\n");
    kbd_decoder_destroy(&dec);
}

static void test_es_dead_keys(void)
{
    kbd_decoder_t *dec = decoder("es", 0);
    /* ` and ^ share the dead key right of P; ´ and ¨ the one right of Ñ. */
    key(dec, 0, 0x2F);
    key(dec, 0, 0x2C);
    key(dec, LSHIFT, 0x2F);
    key(dec, LSHIFT, 0x2C);  /* Shift+Space ends a dead key too */
    key(dec, 0, 0x34);
    key(dec, 0, 0x2C);
    key(dec, LSHIFT, 0x34);
    key(dec, 0, 0x2C);
    key(dec, LSHIFT, 0x33);  /* Ñ */
    key(dec, 0, 0x2D);       /* ' */
    enter(dec);
    /* A dead key and a letter: not composed, an error. */
    key(dec, 0, 0x34);
    key(dec, 0, 0x08);
    enter(dec);
    /* AltGr on a dead-key layout: [ ] on the dead key and the + key. */
    key(dec, ALTGR, 0x2F);
    key(dec, ALTGR, 0x30);
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 3);
    CU_ASSERT_STRING_EQUAL(got.text[0], "`^\xc2\xb4\xc2\xa8\xc3\x91'\n");
    CU_ASSERT_STRING_EQUAL(got.reason[1], "dead key \xc2\xb4 followed by keycode 0x08 "
                                          "(composed characters are not supported)");
    CU_ASSERT_STRING_EQUAL(got.text[2], "[]\n");
    kbd_decoder_destroy(&dec);
}

static void test_ctrl_controls(void)
{
    /* fr: Ctrl + the layout's ] (AltGr+)), and Ctrl + the US ] position ($ in fr). */
    kbd_decoder_t *dec = decoder("fr", 0);
    key(dec, LCTRL | ALTGR, 0x2D);
    key(dec, LSHIFT, 0x1E);
    key(dec, RCTRL, 0x30);
    key(dec, LCTRL, 0x2F);           /* Ctrl + dead ^: RS */
    key(dec, LCTRL | ALTGR, 0x25);   /* Ctrl + AltGr+8 (\): FS */
    key(dec, LCTRL, 0x25);           /* Ctrl + _ : US */
    key(dec, LCTRL | ALTGR, 0x22);   /* Ctrl + AltGr+5 ([): ESC */
    key(dec, LCTRL, 0x33);           /* Ctrl+M (m right of l): ends the line */
    key(dec, LCTRL, 0x14);           /* Ctrl+A (a at the US q): no control of ours */
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 2);
    CU_ASSERT_STRING_EQUAL(got.text[0], "\x1d" "1\x1d\x1e\x1c\x1f\x1b\n");
    CU_ASSERT_STRING_EQUAL(got.reason[0], "");
    CU_ASSERT_STRING_EQUAL(got.reason[1], "unsupported key combination Ctrl+keycode 0x14");
    kbd_decoder_destroy(&dec);

    /* gb, ch(de), es: Ctrl + their ] key; Ctrl+J and Ctrl+I end lines. */
    static const struct {
        const char *layout;
        uint8_t mods, code;
    } gs[] = { { "gb", LCTRL, 0x30 }, { "ch(de)", LCTRL | ALTGR, 0x30 },
               { "es", LCTRL | ALTGR, 0x30 }, { "us", LCTRL, 0x30 } };
    for (size_t i = 0; i < N_ELEMS(gs); i++) {
        dec = decoder(gs[i].layout, 0);
        key(dec, gs[i].mods, gs[i].code);
        type_plain(dec, "21");
        key(dec, LCTRL, 0x0D);   /* Ctrl+J */
        type_plain(dec, "1");
        key(dec, LCTRL, 0x0C);   /* Ctrl+I */
        CU_ASSERT_EQUAL_FATAL(got.n, 2);
        CU_ASSERT_STRING_EQUAL(got.text[0], "\x1d" "21\n");
        CU_ASSERT_STRING_EQUAL(got.text[1], "1\n");
        kbd_decoder_destroy(&dec);
    }
}

static void test_alt_mode(void)
{
    kbd_decoder_t *dec = decoder("de", 0);
    kbd_decoder_set_alt_mode(dec, true);
    /* R M A - 4 0 0 1: Windows-1252 with a leading 0, CP437 without (digits). */
    alt_code(dec, "0082");
    alt_code(dec, "077");
    alt_code(dec, "0065");
    alt_code(dec, "045");
    alt_code(dec, "52");
    alt_code(dec, "48");
    alt_code(dec, "048");
    alt_code(dec, "49");
    enter(dec);
    /* GS as Alt+029; plain keys still type in the layout (z on the US y key). */
    alt_code(dec, "029");
    type_plain(dec, "01");
    key(dec, 0, 0x1C);
    alt_code(dec, "29");
    alt_code(dec, "013");            /* CR ends the line */
    /* Ñ: 0209 in Windows-1252, 165 in CP437; euro 0128. */
    alt_code(dec, "0209");
    alt_code(dec, "165");
    alt_code(dec, "0128");
    enter(dec);
    alt_code(dec, "0129");           /* unassigned in Windows-1252 */
    enter(dec);
    alt_code(dec, "256");
    enter(dec);
    alt_code(dec, "00065");
    enter(dec);
    alt_code(dec, "0");
    enter(dec);
    rep(dec, LALT, 0x59, 0);         /* Enter with Alt still held after a digit */
    rep(dec, LALT, 0x28, 0);
    rep(dec, 0, 0, 0);
    CU_ASSERT_EQUAL_FATAL(got.n, 8);
    CU_ASSERT_STRING_EQUAL(got.text[0], "RMA-4001\n");
    CU_ASSERT_STRING_EQUAL(got.text[1], "\x1d" "01z\x1d\n");
    CU_ASSERT_STRING_EQUAL(got.text[2], "\xc3\x91\xc3\x91\xe2\x82\xac\n");
    CU_ASSERT_STRING_EQUAL(got.reason[3], "Alt code 0129 has no character in Windows-1252");
    CU_ASSERT_STRING_EQUAL(got.reason[4], "Alt code 256 has no character (codes are 1..255)");
    CU_ASSERT_STRING_EQUAL(got.reason[5], "Alt code longer than 4 digits");
    CU_ASSERT_STRING_EQUAL(got.reason[6], "Alt code 0 has no character in Windows-1252");
    CU_ASSERT_STRING_EQUAL(got.reason[7], "Alt code not finished (Alt still held) at the end "
                                          "of the line");
    kbd_decoder_destroy(&dec);

    /* Without Alt mode the sequence is refused, saying what to set. */
    dec = decoder("us", 0);
    alt_code(dec, "0082");
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 1);
    CU_ASSERT_STRING_EQUAL(got.reason[0], "Alt+keypad code: the scanner types in Alt mode "
                                          "(set alt=yes for it)");
    kbd_decoder_destroy(&dec);
}

/* The code page tables against glibc's iconv, code by code. */
static void test_alt_code_pages(void)
{
    static const char *const pages[2] = { "CP437", "CP1252" };
    for (int zero = 0; zero < 2; zero++) {
        iconv_t cd = iconv_open("UTF-32LE", pages[zero]);
        CU_ASSERT_FATAL(cd != (iconv_t)-1);
        for (unsigned code = 0x20; code <= 0xFF; code++) {
            char in = (char)code, *ip = &in;
            uint8_t out[8];
            char *op = (char *)out;
            size_t il = 1, ol = sizeof(out);
            uint32_t want = 0;
            if (iconv(cd, &ip, &il, &op, &ol) != (size_t)-1 && ol == 4)
                want = (uint32_t)out[0] | (uint32_t)out[1] << 8 | (uint32_t)out[2] << 16 |
                       (uint32_t)out[3] << 24;
            if (keymap_alt_code_point(code, zero) != want)
                fprintf(stderr, "\n  %s 0x%02X: U+%04X, iconv U+%04X\n", pages[zero], code,
                        keymap_alt_code_point(code, zero), want);
            CU_ASSERT_EQUAL(keymap_alt_code_point(code, zero), want);
        }
        iconv_close(cd);
    }
    CU_ASSERT_EQUAL(keymap_alt_code_point(29, true), 0x1D);
    CU_ASSERT_EQUAL(keymap_alt_code_point(29, false), 0x1D);
    CU_ASSERT_EQUAL(keymap_alt_code_point(0, true), 0);
    CU_ASSERT_EQUAL(keymap_alt_code_point(300, false), 0);
}

static void test_iso_key(void)
{
    /* us(intl) puts \ | on the ISO key; plain us leaves it unknown (ANSI keyboards). */
    kbd_decoder_t *dec = decoder("us(intl)", 0);
    key(dec, 0, 0x64);
    enter(dec);
    CU_ASSERT_EQUAL_FATAL(got.n, 1);
    CU_ASSERT_STRING_EQUAL(got.text[0], "\\\n");
    kbd_decoder_destroy(&dec);
}

int suite_keymap(void)
{
    CU_pSuite s = CU_add_suite("keymap", NULL, NULL);
    if (!s || !CU_add_test(s, "shift+a 1 1 Enter gives \"A11\\n\"", test_brief_sequence) ||
        !CU_add_test(s, "a key types when pressed", test_press_semantics) ||
        !CU_add_test(s, "US characters", test_us_characters) ||
        !CU_add_test(s, "DE layout", test_de_layout) ||
        !CU_add_test(s, "DE dead keys", test_de_dead_keys) ||
        !CU_add_test(s, "GS as Ctrl+]", test_gs_via_ctrl) ||
        !CU_add_test(s, "rollover reports ignored", test_rollover) ||
        !CU_add_test(s, "line overflow reported", test_overflow) ||
        !CU_add_test(s, "unknown keys and combinations", test_errors) ||
        !CU_add_test(s, "terminators, keypad", test_terminators_and_keypad) ||
        !CU_add_test(s, "flush and reset", test_flush_reset) ||
        !CU_add_test(s, "layouts by name", test_keymap_lookup) ||
        !CU_add_test(s, "fr: AZERTY, shifted digits, AltGr, dead ^", test_fr_layout) ||
        !CU_add_test(s, "gb: \" @ # ~ \u00a3", test_gb_layout) ||
        !CU_add_test(s, "ch(de), ch(fr)", test_ch_de_layout) ||
        !CU_add_test(s, "es: dead keys", test_es_dead_keys) ||
        !CU_add_test(s, "Ctrl controls in every layout", test_ctrl_controls) ||
        !CU_add_test(s, "Alt mode codes", test_alt_mode) ||
        !CU_add_test(s, "Alt code pages match iconv", test_alt_code_pages) ||
        !CU_add_test(s, "ISO key: us(intl) has it, us not", test_iso_key))
        return -1;
    return 0;
}
