#include "drivers/keymap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
#define KEY_RBRACKET 0x30  /* ']' on a US keyboard */
#define KEY_KP_ENTER 0x58

/* Dead keys: bits of keydef_t.dead, for the plain and the shifted character. */
#define DEAD_PLAIN 1u
#define DEAD_SHIFT 2u

typedef struct {
    const char *plain, *shift, *altgr;  /* UTF-8; NULL: nothing typed */
    unsigned dead;                      /* DEAD_* : the character is a dead key's accent */
} keydef_t;

struct keymap {
    const char *name;
    const keydef_t *keys;  /* indexed by keycode, KEYS_LEN entries */
    const char *kp_decimal;
};

#define KEYS_LEN 0x65

#define LETTER(code, lower, upper) [code] = { lower, upper, NULL, 0 }

/* US layout (ANSI). The ISO 102nd key (0x64) has no US meaning and stays unknown. */
static const keydef_t us_keys[KEYS_LEN] = {
    LETTER(0x04, "a", "A"), LETTER(0x05, "b", "B"), LETTER(0x06, "c", "C"),
    LETTER(0x07, "d", "D"), LETTER(0x08, "e", "E"), LETTER(0x09, "f", "F"),
    LETTER(0x0A, "g", "G"), LETTER(0x0B, "h", "H"), LETTER(0x0C, "i", "I"),
    LETTER(0x0D, "j", "J"), LETTER(0x0E, "k", "K"), LETTER(0x0F, "l", "L"),
    LETTER(0x10, "m", "M"), LETTER(0x11, "n", "N"), LETTER(0x12, "o", "O"),
    LETTER(0x13, "p", "P"), LETTER(0x14, "q", "Q"), LETTER(0x15, "r", "R"),
    LETTER(0x16, "s", "S"), LETTER(0x17, "t", "T"), LETTER(0x18, "u", "U"),
    LETTER(0x19, "v", "V"), LETTER(0x1A, "w", "W"), LETTER(0x1B, "x", "X"),
    LETTER(0x1C, "y", "Y"), LETTER(0x1D, "z", "Z"),
    [0x1E] = { "1", "!", NULL, 0 }, [0x1F] = { "2", "@", NULL, 0 },
    [0x20] = { "3", "#", NULL, 0 }, [0x21] = { "4", "$", NULL, 0 },
    [0x22] = { "5", "%", NULL, 0 }, [0x23] = { "6", "^", NULL, 0 },
    [0x24] = { "7", "&", NULL, 0 }, [0x25] = { "8", "*", NULL, 0 },
    [0x26] = { "9", "(", NULL, 0 }, [0x27] = { "0", ")", NULL, 0 },
    [0x2C] = { " ", " ", NULL, 0 },
    [0x2D] = { "-", "_", NULL, 0 }, [0x2E] = { "=", "+", NULL, 0 },
    [0x2F] = { "[", "{", NULL, 0 }, [0x30] = { "]", "}", NULL, 0 },
    [0x31] = { "\\", "|", NULL, 0 },
    [0x32] = { "\\", "|", NULL, 0 },  /* ISO key left of Enter: backslash, as Linux maps it */
    [0x33] = { ";", ":", NULL, 0 }, [0x34] = { "'", "\"", NULL, 0 },
    [0x35] = { "`", "~", NULL, 0 }, [0x36] = { ",", "<", NULL, 0 },
    [0x37] = { ".", ">", NULL, 0 }, [0x38] = { "/", "?", NULL, 0 },
};

/* German layout (DIN 2137 T1, QWERTZ): y and z swapped, umlauts, AltGr third level. */
static const keydef_t de_keys[KEYS_LEN] = {
    LETTER(0x04, "a", "A"), LETTER(0x05, "b", "B"), LETTER(0x06, "c", "C"),
    LETTER(0x07, "d", "D"), [0x08] = { "e", "E", "\u20ac", 0 }, /* AltGr+E: euro */
    LETTER(0x09, "f", "F"), LETTER(0x0A, "g", "G"), LETTER(0x0B, "h", "H"),
    LETTER(0x0C, "i", "I"), LETTER(0x0D, "j", "J"), LETTER(0x0E, "k", "K"),
    LETTER(0x0F, "l", "L"), [0x10] = { "m", "M", "\u00b5", 0 }, /* AltGr+M: micro */
    LETTER(0x11, "n", "N"), LETTER(0x12, "o", "O"), LETTER(0x13, "p", "P"),
    [0x14] = { "q", "Q", "@", 0 },
    LETTER(0x15, "r", "R"), LETTER(0x16, "s", "S"), LETTER(0x17, "t", "T"),
    LETTER(0x18, "u", "U"), LETTER(0x19, "v", "V"), LETTER(0x1A, "w", "W"),
    LETTER(0x1B, "x", "X"),
    LETTER(0x1C, "z", "Z"),  /* the US 'y' position */
    LETTER(0x1D, "y", "Y"),  /* the US 'z' position */
    [0x1E] = { "1", "!", NULL, 0 },
    [0x1F] = { "2", "\"", "\u00b2", 0 },
    [0x20] = { "3", "\u00a7", "\u00b3", 0 },
    [0x21] = { "4", "$", NULL, 0 },
    [0x22] = { "5", "%", NULL, 0 },
    [0x23] = { "6", "&", NULL, 0 },
    [0x24] = { "7", "/", "{", 0 },
    [0x25] = { "8", "(", "[", 0 },
    [0x26] = { "9", ")", "]", 0 },
    [0x27] = { "0", "=", "}", 0 },
    [0x2C] = { " ", " ", NULL, 0 },
    [0x2D] = { "\u00df", "?", "\\", 0 },
    [0x2E] = { "\u00b4", "`", NULL, DEAD_PLAIN | DEAD_SHIFT },  /* acute, grave */
    [0x2F] = { "\u00fc", "\u00dc", NULL, 0 },
    [0x30] = { "+", "*", "~", 0 },
    [0x31] = { "#", "'", NULL, 0 },
    [0x32] = { "#", "'", NULL, 0 },  /* ISO key left of Enter, where DE keyboards have # */
    [0x33] = { "\u00f6", "\u00d6", NULL, 0 },
    [0x34] = { "\u00e4", "\u00c4", NULL, 0 },
    [0x35] = { "^", "\u00b0", NULL, DEAD_PLAIN },  /* circumflex, degree */
    [0x36] = { ",", ";", NULL, 0 },
    [0x37] = { ".", ":", NULL, 0 },
    [0x38] = { "-", "_", NULL, 0 },
    [0x64] = { "<", ">", "|", 0 },
};

static const keymap_t keymaps[] = {
    { "us", us_keys, "." },
    { "de", de_keys, "," },
};

const keymap_t *keymap_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof(keymaps) / sizeof(keymaps[0]); i++)
        if (strcasecmp(name, keymaps[i].name) == 0)
            return &keymaps[i];
    return NULL;
}

const char *keymap_name(const keymap_t *map)
{
    return map->name;
}

const char *keymap_names(void)
{
    return "us, de";
}

/* Keypad keys (NumLock on): the same in every layout but the decimal separator. */
static const char *keypad_char(const keymap_t *map, uint8_t code)
{
    static const char *const kp[] = { "/", "*", "-", "+", NULL, "1", "2", "3", "4",
                                      "5", "6", "7", "8", "9", "0" };
    if (code >= 0x54 && code <= 0x62)
        return kp[code - 0x54];
    return code == 0x63 ? map->kp_decimal : NULL;
}

struct kbd_decoder {
    const keymap_t *map;
    kbd_line_fn fn;
    void *data;
    uint8_t held[6];          /* keycodes of the previous report */
    const keydef_t *dead;     /* a dead key waiting for Space */
    unsigned dead_shift;      /* it was typed with Shift */
    bool failed;              /* the line met an error: reason holds it */
    char reason[96];
    size_t max_len, len;
    char *line;               /* max_len + '\n' + NUL */
};

kbd_decoder_t *kbd_decoder_new(const keymap_t *map, size_t max_len, kbd_line_fn fn,
                               void *data)
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
    dec->map = map;
    dec->fn = fn;
    dec->data = data;
    dec->max_len = max_len;
    return dec;
}

void kbd_decoder_destroy(kbd_decoder_t **p)
{
    if (!p || !*p)
        return;
    free((*p)->line);
    free(*p);
    *p = NULL;
}

static void clear_line(kbd_decoder_t *dec)
{
    dec->len = 0;
    dec->failed = false;
    dec->dead = NULL;
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

static void type(kbd_decoder_t *dec, const char *s)
{
    size_t n = strlen(s);
    if (dec->failed)
        return;
    if (dec->len + n > dec->max_len) {
        fail(dec, "line longer than %zu bytes", dec->max_len);
        return;
    }
    memcpy(dec->line + dec->len, s, n);
    dec->len += n;
}

static const char *dead_name(const kbd_decoder_t *dec)
{
    return dec->dead_shift ? dec->dead->shift : dec->dead->plain;
}

static void end_line(kbd_decoder_t *dec)
{
    if (dec->dead)
        fail(dec, "dead key %s not followed by Space", dead_name(dec));
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

/* The character a key types with these modifiers (Ctrl aside), or NULL. */
static const char *key_char(const kbd_decoder_t *dec, uint8_t code, unsigned mods,
                            bool *is_dead)
{
    *is_dead = false;
    const char *kp = keypad_char(dec->map, code);
    if (kp)
        return kp;
    if (code >= KEYS_LEN)
        return NULL;
    const keydef_t *k = &dec->map->keys[code];
    if (mods & MOD_ALTGR)
        return k->altgr;
    if (mods & MOD_SHIFT) {
        *is_dead = k->dead & DEAD_SHIFT;
        return k->shift;
    }
    *is_dead = k->dead & DEAD_PLAIN;
    return k->plain;
}

static void press(kbd_decoder_t *dec, uint8_t code, unsigned mods)
{
    bool is_dead;
    if (code >= 0xE0 && code <= 0xE7)
        return; /* a modifier reported as a key: its bit in byte 0 is what counts */
    if (code == KEY_ENTER || code == KEY_KP_ENTER || code == KEY_TAB) {
        end_line(dec);
        return;
    }
    if (dec->failed)
        return;
    if (mods & (MOD_LALT | MOD_GUI)) {
        fail(dec, "unsupported key combination %s+keycode 0x%02X",
             mods & MOD_GUI ? "GUI" : "Alt", code);
        return;
    }
    if (dec->dead) {
        if (code == KEY_SPACE && !(mods & (MOD_CTRL | MOD_ALTGR))) {
            const char *accent = dead_name(dec);
            dec->dead = NULL;
            type(dec, accent);
        } else {
            fail(dec, "dead key %s followed by keycode 0x%02X (composed characters are "
                      "not supported)", dead_name(dec), code);
        }
        return;
    }
    const char *s = key_char(dec, code, mods, &is_dead);
    if (mods & MOD_CTRL) {
        if (code == KEY_RBRACKET || (s && strcmp(s, "]") == 0))
            type(dec, "\x1d");
        else
            fail(dec, "unsupported key combination Ctrl+keycode 0x%02X", code);
        return;
    }
    if (!s) {
        if (mods & MOD_ALTGR)
            fail(dec, "no character for AltGr+keycode 0x%02X in layout %s", code,
                 dec->map->name);
        else
            fail(dec, "unknown keycode 0x%02X", code);
        return;
    }
    if (is_dead) {
        dec->dead = &dec->map->keys[code];
        dec->dead_shift = mods & MOD_SHIFT;
        return;
    }
    type(dec, s);
}

int kbd_decoder_feed(kbd_decoder_t *dec, const uint8_t *report, size_t len)
{
    if (len != KBD_REPORT_LEN)
        return -EINVAL;
    const uint8_t *keys = report + 2;
    for (int i = 0; i < 6; i++)
        if (keys[i] >= 0x01 && keys[i] <= 0x03)
            return 0; /* ErrorRollOver, POSTFail, ErrorUndefined: no key state */
    for (int i = 0; i < 6; i++) {
        uint8_t k = keys[i];
        if (k == 0 || memchr(dec->held, k, sizeof(dec->held)) || memchr(keys, k, (size_t)i))
            continue;
        press(dec, k, report[0]);
    }
    memcpy(dec->held, keys, sizeof(dec->held));
    return 0;
}
