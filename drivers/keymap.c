#include "drivers/keymap.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xkbcommon/xkbcommon.h>

#include "drivers/scan.h"

/* Modifier bits of report byte 0. */
#define MOD_CTRL  0x11u  /* left, right */
#define MOD_SHIFT 0x22u
#define MOD_LALT  0x04u
#define MOD_ALTGR 0x40u  /* right Alt */
#define MOD_GUI   0x88u

/* Keycodes (HID usage page 0x07) with a role of their own. */
#define KEY_ENTER    0x28
#define KEY_TAB      0x2B
#define KEY_SPACE    0x2C
#define KEY_ISO      0x64  /* the ISO key left of Z ("102nd key") */
#define KEY_KP_ENTER 0x58
#define KEY_KP_1     0x59
#define KEY_KP_0     0x62

/* Levels of the table: bit 0 Shift, bit 1 AltGr. */
#define LEVELS    4
#define LV_SHIFT  1u
#define LV_ALTGR  2u

/* Linux evdev keycodes of the keys the table is built with (linux/input-event-codes.h). */
#define EV_LEFTSHIFT 42
#define EV_RIGHTALT  100
#define EV_NUMLOCK   69
#define EV_102ND     86
/* XKB keycodes are evdev keycodes + 8 (the X11 offset). */
#define XKB_EVDEV_OFFSET 8

/*
 * HID keyboard usage -> Linux evdev keycode, as the kernel's hid-input maps them
 * (drivers/hid/hid-input.c, hid_keyboard[]): the keycodes XKB's evdev rules describe.
 * 0: no key. Both 0x31 (US backslash) and 0x32 (the ISO key left of Enter) are
 * KEY_BACKSLASH, as on Linux. Beyond 0x94 nothing types.
 */
static const uint8_t hid_to_evdev[0x95] = {
    0,   0,   0,   0,   30,  48,  46,  32,  18,  33,  34,  35,  23,  36,  37,  38,
    50,  49,  24,  25,  16,  19,  31,  20,  22,  47,  17,  45,  21,  44,  2,   3,
    4,   5,   6,   7,   8,   9,   10,  11,  28,  1,   14,  15,  57,  12,  13,  26,
    27,  43,  43,  39,  40,  41,  51,  52,  53,  58,  59,  60,  61,  62,  63,  64,
    65,  66,  67,  68,  87,  88,  99,  70,  119, 110, 102, 104, 111, 107, 109, 106,
    105, 108, 103, 69,  98,  55,  74,  78,  96,  79,  80,  81,  75,  76,  77,  71,
    72,  73,  82,  83,  86,  127, 116, 117, 183, 184, 185, 186, 187, 188, 189, 190,
    191, 192, 193, 194, 134, 138, 130, 132, 128, 129, 131, 137, 133, 135, 136, 113,
    115, 114, 0,   0,   0,   121, 0,   89,  93,  124, 92,  94,  95,  0,   0,   0,
    122, 123, 90,  91,  85,
};
#define N_USAGES (sizeof(hid_to_evdev) / sizeof(hid_to_evdev[0]))

/* Keypad keys: typed at the NumLock level whatever Shift and AltGr (scanners' keypad mode). */
static bool is_keypad(uint8_t code)
{
    return (code >= 0x54 && code <= 0x63) || code == 0x67 || code == 0x85;
}

/* What a key types at one level. */
typedef struct {
    xkb_keysym_t sym;  /* XKB_KEY_NoSymbol: nothing */
    char text[5];      /* UTF-8 of a printable character; "" for none (dead keys too) */
} keydef_t;

struct keymap {
    unsigned refs;
    char *name;                            /* "ch(fr)" */
    bool has_altgr;                        /* right Alt is a level-3 shift here */
    keydef_t keys[N_USAGES][LEVELS];
};

/* ---- compiling a layout ---------------------------------------------------------- */

/*
 * The character a dead key types when followed by Space: the spacing form of its
 * accent, as on Windows (xkbcommon has no such mapping: a dead keysym has no UTF-8).
 * NULL for dead keys without one; those are reported by their keysym name.
 */
static const char *dead_spacing(xkb_keysym_t sym)
{
    switch (sym) {
    case XKB_KEY_dead_grave: return "`";
    case XKB_KEY_dead_acute: return "\u00b4";
    case XKB_KEY_dead_circumflex: return "^";
    case XKB_KEY_dead_tilde: return "~";
    case XKB_KEY_dead_macron: return "\u00af";
    case XKB_KEY_dead_breve: return "\u02d8";
    case XKB_KEY_dead_abovedot: return "\u02d9";
    case XKB_KEY_dead_diaeresis: return "\u00a8";
    case XKB_KEY_dead_abovering: return "\u02da";
    case XKB_KEY_dead_doubleacute: return "\u02dd";
    case XKB_KEY_dead_caron: return "\u02c7";
    case XKB_KEY_dead_cedilla: return "\u00b8";
    case XKB_KEY_dead_ogonek: return "\u02db";
    default: return NULL;
    }
}

static bool is_dead(xkb_keysym_t sym)
{
    return sym >= XKB_KEY_dead_grave && sym <= XKB_KEY_dead_longsolidusoverlay;
}

/* xkbcommon reports through the context's log function: library code stays quiet. */
static void xkb_quiet(struct xkb_context *ctx, enum xkb_log_level level, const char *fmt,
                      va_list args)
{
    (void)ctx;
    (void)level;
    (void)fmt;
    (void)args;
}

/* "ch(fr)" -> layout "ch", variant "fr"; the layout lower-cased. -EINVAL when malformed. */
static int split_name(const char *name, char *layout, size_t lsize, char *variant,
                      size_t vsize)
{
    static const char lchars[] = "abcdefghijklmnopqrstuvwxyz0123456789_-";
    static const char vchars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "0123456789_-";
    size_t n = strcspn(name, "(");
    if (n == 0 || n >= lsize)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        layout[i] = (char)tolower((unsigned char)name[i]);
    layout[n] = '\0';
    variant[0] = '\0';
    if (strspn(layout, lchars) != n)
        return -EINVAL;
    if (!name[n])
        return 0;
    const char *v = name + n + 1;
    size_t vn = strcspn(v, ")");
    if (vn == 0 || vn >= vsize || strcmp(v + vn, ")") != 0 || strspn(v, vchars) != vn)
        return -EINVAL;
    memcpy(variant, v, vn);
    variant[vn] = '\0';
    return 0;
}

/* The modifiers a key leaves depressed, as the layout binds it. */
static xkb_mod_mask_t mods_of_key(struct xkb_state *st, xkb_keycode_t kc, bool *is_alt)
{
    (void)xkb_state_update_key(st, kc, XKB_KEY_DOWN);
    xkb_mod_mask_t m = xkb_state_serialize_mods(st, XKB_STATE_MODS_DEPRESSED);
    if (is_alt)
        *is_alt = xkb_state_mod_name_is_active(st, XKB_MOD_NAME_ALT, XKB_STATE_MODS_EFFECTIVE) > 0;
    (void)xkb_state_update_key(st, kc, XKB_KEY_UP);
    return m;
}

static size_t utf8_encode(uint32_t cp, char out[5])
{
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | cp >> 18);
        out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    out[n] = '\0';
    return n;
}

static void set_key(keydef_t *k, xkb_keysym_t sym)
{
    uint32_t cp = xkb_keysym_to_utf32(sym);
    k->sym = sym;
    k->text[0] = '\0';
    /* Keysyms for Escape, BackSpace, Delete carry control characters: not typing. */
    if (cp >= 0x20 && !(cp >= 0x7F && cp < 0xA0) && cp <= 0x10FFFF &&
        !(cp >= 0xD800 && cp < 0xE000))
        (void)utf8_encode(cp, k->text);
}

/* Fill map->keys from the compiled XKB keymap. -ENOMEM. */
static int fill_table(keymap_t *map, struct xkb_keymap *km, bool ansi)
{
    struct xkb_state *st = xkb_state_new(km);
    if (!st)
        return -ENOMEM;
    /* NumLock on for the keypad; Shift and AltGr as the layout binds those keys. */
    (void)mods_of_key(st, EV_NUMLOCK + XKB_EVDEV_OFFSET, NULL);
    xkb_mod_mask_t num = xkb_state_serialize_mods(st, XKB_STATE_MODS_LOCKED);
    xkb_mod_mask_t shift = mods_of_key(st, EV_LEFTSHIFT + XKB_EVDEV_OFFSET, NULL);
    bool ralt_is_alt = false;
    xkb_mod_mask_t altgr = mods_of_key(st, EV_RIGHTALT + XKB_EVDEV_OFFSET, &ralt_is_alt);
    map->has_altgr = altgr && !ralt_is_alt;

    for (size_t code = 0; code < N_USAGES; code++) {
        xkb_keycode_t kc = (xkb_keycode_t)hid_to_evdev[code] + XKB_EVDEV_OFFSET;
        xkb_level_index_t level[LEVELS];
        if (!hid_to_evdev[code])
            continue;
        for (unsigned lv = 0; lv < LEVELS; lv++) {
            keydef_t *k = &map->keys[code][lv];
            if (is_keypad((uint8_t)code) && lv) {
                *k = map->keys[code][0];
                continue;
            }
            if ((lv & LV_ALTGR) && !map->has_altgr)
                continue;
            xkb_mod_mask_t m = (lv & LV_SHIFT ? shift : 0) | (lv & LV_ALTGR ? altgr : 0);
            (void)xkb_state_update_mask(st, m, 0, num, 0, 0, 0);
            level[lv] = xkb_state_key_get_level(st, kc, 0);
            /* AltGr that does not change the key's level: the key has no AltGr character. */
            if ((lv & LV_ALTGR) && level[lv] == level[lv & LV_SHIFT])
                continue;
            set_key(k, xkb_state_key_get_one_sym(st, kc));
        }
    }
    /*
     * US keyboards are ANSI: no ISO key. XKB's generic pc symbols still give it < >;
     * a us-family layout keeps it only where its own symbols put something else there.
     */
    if (ansi && map->keys[KEY_ISO][0].sym == XKB_KEY_less)
        memset(map->keys[KEY_ISO], 0, sizeof(map->keys[KEY_ISO]));
    xkb_state_unref(st);
    return 0;
}

/*
 * A fresh context that reads only the system's XKB data (not ~/.xkb of whoever runs
 * rmad, not the XKB_DEFAULT_* environment), so a layout means the same for rmad,
 * rmactl and the tests. About 0.5 ms; keymap_new makes one per compile and frees it.
 */
static struct xkb_context *xkb_context_system(void)
{
    struct xkb_context *ctx =
        xkb_context_new(XKB_CONTEXT_NO_DEFAULT_INCLUDES | XKB_CONTEXT_NO_ENVIRONMENT_NAMES);
    if (!ctx)
        return NULL;
    xkb_context_set_log_fn(ctx, xkb_quiet);
    const char *root = secure_getenv("XKB_CONFIG_ROOT");
    if (!xkb_context_include_path_append(ctx, root && *root ? root : "/usr/share/X11/xkb")) {
        xkb_context_unref(ctx);
        return NULL;
    }
    return ctx;
}

static keymap_t *new_failed(char **errmsg, int err, const char *name, const char *what)
{
    if (errmsg && asprintf(errmsg, "%s keyboard layout '%s' (%s)",
                           err == ENOMEM ? "cannot compile" : "unknown", name, what) < 0)
        *errmsg = NULL;
    errno = err;
    return NULL;
}

keymap_t *keymap_new(const char *name, char **errmsg)
{
    char layout[64], variant[64];
    if (errmsg)
        *errmsg = NULL;
    if (!name || split_name(name, layout, sizeof(layout), variant, sizeof(variant)) < 0)
        return new_failed(errmsg, EINVAL, name ? name : "", "expected LAYOUT or "
                          "LAYOUT(VARIANT) in XKB's names; " KEYMAP_NAMES_HINT);
    keymap_t *map = calloc(1, sizeof(*map));
    if (!map)
        return new_failed(errmsg, ENOMEM, name, strerror(ENOMEM));
    map->refs = 1;
    struct xkb_context *ctx = xkb_context_system();
    if (!ctx || (*variant ? asprintf(&map->name, "%s(%s)", layout, variant) < 0
                          : !(map->name = strdup(layout)))) {
        map->name = NULL;  /* asprintf leaves it undefined on failure */
        keymap_unref(&map);
        xkb_context_unref(ctx);
        return new_failed(errmsg, ENOMEM, name, strerror(ENOMEM));
    }
    /* pc105: the evdev rules give every layout its ISO keys (0x64, 0x32). */
    const struct xkb_rule_names names = { .rules = "evdev", .model = "pc105",
                                          .layout = layout, .variant = variant,
                                          .options = "" };
    struct xkb_keymap *km = xkb_keymap_new_from_names(ctx, &names, XKB_KEYMAP_COMPILE_NO_FLAGS);
    xkb_context_unref(ctx);  /* the keymap holds its own reference */
    if (!km) {
        keymap_unref(&map);
        return new_failed(errmsg, EINVAL, name, "XKB has no such layout or variant; "
                          KEYMAP_NAMES_HINT);
    }
    int rc = fill_table(map, km, strcmp(layout, "us") == 0);
    xkb_keymap_unref(km);
    if (rc < 0) {
        keymap_unref(&map);
        return new_failed(errmsg, ENOMEM, name, strerror(ENOMEM));
    }
    return map;
}

keymap_t *keymap_ref(keymap_t *map)
{
    if (map)
        map->refs++;
    return map;
}

void keymap_unref(keymap_t **p)
{
    if (!p || !*p)
        return;
    keymap_t *map = *p;
    *p = NULL;
    if (map->refs > 1) {
        map->refs--;
        return;
    }
    free(map->name);
    free(map);
}

const char *keymap_name(const keymap_t *map)
{
    return map->name;
}

/* ---- Alt + keypad codes ---------------------------------------------------------- */

/*
 * Windows-1252 0x80..0x9F (0xA0..0xFF are Latin-1, U+00A0..U+00FF); 0: unassigned.
 * tests/test_keymap.c checks both tables against glibc's iconv.
 */
static const uint16_t cp1252_80[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,
    0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

/* Code page 437 0x80..0xFF (the PC's OEM page: Windows Alt codes without a leading 0). */
static const uint16_t cp437_80[128] = {
    0x00C7, 0x00FC, 0x00E9, 0x00E2, 0x00E4, 0x00E0, 0x00E5, 0x00E7,
    0x00EA, 0x00EB, 0x00E8, 0x00EF, 0x00EE, 0x00EC, 0x00C4, 0x00C5,
    0x00C9, 0x00E6, 0x00C6, 0x00F4, 0x00F6, 0x00F2, 0x00FB, 0x00F9,
    0x00FF, 0x00D6, 0x00DC, 0x00A2, 0x00A3, 0x00A5, 0x20A7, 0x0192,
    0x00E1, 0x00ED, 0x00F3, 0x00FA, 0x00F1, 0x00D1, 0x00AA, 0x00BA,
    0x00BF, 0x2310, 0x00AC, 0x00BD, 0x00BC, 0x00A1, 0x00AB, 0x00BB,
    0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556,
    0x2555, 0x2563, 0x2551, 0x2557, 0x255D, 0x255C, 0x255B, 0x2510,
    0x2514, 0x2534, 0x252C, 0x251C, 0x2500, 0x253C, 0x255E, 0x255F,
    0x255A, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256C, 0x2567,
    0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256B,
    0x256A, 0x2518, 0x250C, 0x2588, 0x2584, 0x258C, 0x2590, 0x2580,
    0x03B1, 0x00DF, 0x0393, 0x03C0, 0x03A3, 0x03C3, 0x00B5, 0x03C4,
    0x03A6, 0x0398, 0x03A9, 0x03B4, 0x221E, 0x03C6, 0x03B5, 0x2229,
    0x2261, 0x00B1, 0x2265, 0x2264, 0x2320, 0x2321, 0x00F7, 0x2248,
    0x00B0, 0x2219, 0x00B7, 0x221A, 0x207F, 0x00B2, 0x25A0, 0x00A0,
};

uint32_t keymap_alt_code_point(unsigned code, bool leading_zero)
{
    if (code == 0 || code > 255)
        return 0;
    if (code < 0x80)
        return code;
    if (!leading_zero)
        return cp437_80[code - 0x80];
    return code < 0xA0 ? cp1252_80[code - 0x80] : code;
}

/* ---- decoding -------------------------------------------------------------------- */

#define ALT_MAX_DIGITS 4

struct kbd_decoder {
    keymap_t *map;            /* a reference of our own */
    kbd_line_fn fn;
    void *data;
    uint8_t held[6];          /* keycodes of the previous report */
    const keydef_t *dead;     /* a dead key waiting for Space */
    bool alt_mode;            /* Alt + keypad codes are decoded */
    unsigned alt_digits, alt_code;
    bool alt_zero;            /* the code began with 0: Windows-1252 */
    bool failed;              /* the line met an error: reason holds it */
    char reason[96];
    size_t max_len, len;
    char *line;               /* max_len + '\n' + NUL */
};

kbd_decoder_t *kbd_decoder_new(keymap_t *map, size_t max_len, kbd_line_fn fn, void *data)
{
    if (!map || !fn)
        return NULL;
    if (max_len == 0)
        max_len = SCAN_MAX_LEN_DEFAULT;
    kbd_decoder_t *dec = calloc(1, sizeof(*dec));
    if (!dec)
        return NULL;
    dec->line = malloc(max_len + 2);
    if (!dec->line) {
        free(dec);
        return NULL;
    }
    dec->map = keymap_ref(map);
    dec->fn = fn;
    dec->data = data;
    dec->max_len = max_len;
    return dec;
}

void kbd_decoder_destroy(kbd_decoder_t **p)
{
    if (!p || !*p)
        return;
    keymap_unref(&(*p)->map);
    free((*p)->line);
    free(*p);
    *p = NULL;
}

void kbd_decoder_set_alt_mode(kbd_decoder_t *dec, bool on)
{
    dec->alt_mode = on;
}

static void clear_line(kbd_decoder_t *dec)
{
    dec->len = 0;
    dec->failed = false;
    dec->dead = NULL;
    dec->alt_digits = dec->alt_code = 0;
}

void kbd_decoder_reset(kbd_decoder_t *dec)
{
    clear_line(dec);
    memset(dec->held, 0, sizeof(dec->held));
}

/* Record the line's first error; what follows on the line is not decoded. */
__attribute__((format(printf, 2, 3))) static void fail(kbd_decoder_t *dec, const char *fmt, ...)
{
    if (dec->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dec->reason, sizeof(dec->reason), fmt, ap);
    va_end(ap);
    dec->failed = true;
}

static void type(kbd_decoder_t *dec, const char *s, size_t n)
{
    if (dec->failed)
        return;
    if (dec->len + n > dec->max_len) {
        fail(dec, "line longer than %zu bytes", dec->max_len);
        return;
    }
    memcpy(dec->line + dec->len, s, n);
    dec->len += n;
}

/* "^", or the keysym's name for a dead key without a character of its own. */
static const char *dead_name(const keydef_t *k, char buf[64])
{
    const char *s = dead_spacing(k->sym);
    if (s)
        return s;
    if (xkb_keysym_get_name(k->sym, buf, 64) <= 0)
        snprintf(buf, 64, "0x%04X", (unsigned)k->sym);
    return buf;
}

static void end_line(kbd_decoder_t *dec)
{
    char name[64];
    if (dec->dead)
        fail(dec, "dead key %s not followed by Space", dead_name(dec->dead, name));
    if (dec->alt_digits)
        fail(dec, "Alt code not finished (Alt still held) at the end of the line");
    if (dec->failed) {
        dec->line[dec->len] = '\0';
        dec->fn(dec->line, dec->len, dec->reason, dec->data);
    } else if (dec->len > 0) {
        dec->line[dec->len] = '\n';
        dec->line[dec->len + 1] = '\0';
        dec->fn(dec->line, dec->len + 1, NULL, dec->data);
    }
    clear_line(dec);
}

void kbd_decoder_flush(kbd_decoder_t *dec)
{
    end_line(dec);
}

/* A control character typed: CR, LF and Tab end the line like Enter and Tab. */
static void type_control(kbd_decoder_t *dec, char c)
{
    if (c == '\r' || c == '\n' || c == '\t')
        end_line(dec);
    else
        type(dec, &c, 1);
}

/* Alt released after keypad digits: the code's character. */
static void alt_finish(kbd_decoder_t *dec)
{
    unsigned code = dec->alt_code;
    int width = (int)dec->alt_digits;  /* the code as typed, leading zeros and all */
    bool zero = dec->alt_zero;
    dec->alt_digits = dec->alt_code = 0;
    if (dec->failed)
        return;
    uint32_t cp = keymap_alt_code_point(code, zero);
    if (!cp) {
        fail(dec, "Alt code %0*u has no character%s", width, code,
             code > 255 ? " (codes are 1..255)" : zero ? " in Windows-1252" : "");
        return;
    }
    char buf[5];
    size_t n = utf8_encode(cp, buf);
    if (cp < 0x20)
        type_control(dec, (char)cp);
    else
        type(dec, buf, n);
}

static void alt_digit(kbd_decoder_t *dec, uint8_t code)
{
    unsigned digit = code == KEY_KP_0 ? 0 : (unsigned)(code - KEY_KP_1 + 1);
    if (!dec->alt_mode) {
        fail(dec, "Alt+keypad code: the scanner types in Alt mode (set alt=yes for it)");
        return;
    }
    if (dec->alt_digits == ALT_MAX_DIGITS) {
        fail(dec, "Alt code longer than %d digits", ALT_MAX_DIGITS);
        return;
    }
    if (dec->alt_digits++ == 0)
        dec->alt_zero = digit == 0;
    dec->alt_code = dec->alt_code * 10 + digit;
}

/* What a key types with these modifiers (Ctrl aside); NULL past the table. */
static const keydef_t *key_def(const kbd_decoder_t *dec, uint8_t code, unsigned mods)
{
    if (code >= N_USAGES)
        return NULL;
    unsigned lv = (mods & MOD_SHIFT ? LV_SHIFT : 0) | (mods & MOD_ALTGR ? LV_ALTGR : 0);
    return &dec->map->keys[code][lv];
}

/*
 * Ctrl + key: the control character of "Ctrl + ASCII" mode, by the layout's character
 * on the key, else by the US key position. 0: none; '\r' ends the line.
 */
static char ctrl_char(const keydef_t *k, uint8_t code)
{
    static const char punct[] = "[\\]^_";
    uint32_t c = k ? xkb_keysym_to_utf32(k->sym) : 0;
    if (k && k->sym == XKB_KEY_dead_circumflex)
        c = '^';
    if (c && c < 0x80 && strchr(punct, (int)c))
        return (char)(0x1B + (strchr(punct, (int)c) - punct));
    if (c == 'm' || c == 'M' || c == 'j' || c == 'J' || c == 'i' || c == 'I')
        return (char)((c & 0x1F));
    switch (code) {
    case 0x2F: return 0x1B;  /* US [ */
    case 0x31: return 0x1C;  /* US \ */
    case 0x30: return 0x1D;  /* US ] */
    case 0x23: return 0x1E;  /* US 6 (^) */
    case 0x2D: return 0x1F;  /* US - (_) */
    default: return 0;
    }
}

static void press(kbd_decoder_t *dec, uint8_t code, unsigned mods)
{
    char name[64];
    if (code >= 0xE0 && code <= 0xE7)
        return; /* a modifier reported as a key: its bit in byte 0 is what counts */
    if (code == KEY_ENTER || code == KEY_KP_ENTER || code == KEY_TAB) {
        end_line(dec);
        return;
    }
    if (dec->failed)
        return;
    if (mods & (MOD_LALT | MOD_GUI)) {
        if (!(mods & MOD_GUI) && code >= KEY_KP_1 && code <= KEY_KP_0)
            alt_digit(dec, code);
        else
            fail(dec, "unsupported key combination %s+keycode 0x%02X",
                 mods & MOD_GUI ? "GUI" : "Alt", code);
        return;
    }
    if (dec->dead) {
        if (code == KEY_SPACE && !(mods & (MOD_CTRL | MOD_ALTGR))) {
            const char *accent = dead_spacing(dec->dead->sym);
            if (accent) {
                dec->dead = NULL;
                type(dec, accent, strlen(accent));
            } else {
                fail(dec, "dead key %s has no character of its own",
                     dead_name(dec->dead, name));
            }
        } else {
            fail(dec, "dead key %s followed by keycode 0x%02X (composed characters are "
                      "not supported)", dead_name(dec->dead, name), code);
        }
        return;
    }
    const keydef_t *k = key_def(dec, code, mods);
    if (mods & MOD_CTRL) {
        char c = ctrl_char(k, code);
        if (c)
            type_control(dec, c);
        else
            fail(dec, "unsupported key combination Ctrl+keycode 0x%02X", code);
        return;
    }
    if (k && is_dead(k->sym)) {
        dec->dead = k;
        return;
    }
    if (!k || !k->text[0]) {
        if ((mods & MOD_ALTGR) && !is_keypad(code))
            fail(dec, "no character for AltGr+keycode 0x%02X in layout %s", code,
                 dec->map->name);
        else
            fail(dec, "unknown keycode 0x%02X", code);
        return;
    }
    type(dec, k->text, strlen(k->text));
}

int kbd_decoder_feed(kbd_decoder_t *dec, const uint8_t *report, size_t len)
{
    if (len != KBD_REPORT_LEN)
        return -EINVAL;
    const uint8_t *keys = report + 2;
    for (int i = 0; i < 6; i++)
        if (keys[i] >= 0x01 && keys[i] <= 0x03)
            return 0; /* ErrorRollOver, POSTFail, ErrorUndefined: no key state */
    if (dec->alt_digits && !(report[0] & MOD_LALT))
        alt_finish(dec);
    for (int i = 0; i < 6; i++) {
        uint8_t k = keys[i];
        if (k == 0 || memchr(dec->held, k, sizeof(dec->held)) || memchr(keys, k, (size_t)i))
            continue;
        press(dec, k, report[0]);
    }
    memcpy(dec->held, keys, sizeof(dec->held));
    return 0;
}
