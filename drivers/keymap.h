/*
 * Keyboard-wedge decoding: HID boot-keyboard reports in, lines of text out.
 *
 * A keyboard-wedge scanner "types" each barcode: a sequence of 8-byte boot-protocol
 * reports (byte 0 modifier bits, byte 1 reserved, bytes 2..7 the keycodes held down,
 * HID usage page 0x07), then a terminator key. Which character a keycode means depends
 * on the keyboard layout the scanner was configured for, so the driver names one
 * (config: layout=us, de, fr, gb, ch(fr), ...: any XKB layout, optionally with its
 * variant in parentheses, as xkb-data lists them in /usr/share/X11/xkb/rules/evdev.lst).
 *
 * The layout is compiled by libxkbcommon once, when the keymap is made (a few ms): every
 * keycode's character at its four levels (plain, Shift, AltGr, Shift+AltGr), found as a
 * PC keyboard would (HID usage -> Linux evdev keycode -> XKB keysym -> UTF-8), goes into
 * a table, and the xkbcommon context, keymap and state are freed at once. Decoding a
 * report is table lookups: nothing of xkbcommon runs per scan.
 *
 * Decoding rules:
 * - A key types when it is pressed: a keycode present in this report and not in the
 *   previous one. A held key does not repeat; the same character twice needs a
 *   report without it in between (scanners send an all-zero release report).
 * - Shift is 0x02 / 0x20, AltGr is right Alt 0x40 (in layouts whose right Alt is a
 *   level-3 shift; in us it is plain Alt and AltGr+key types nothing). Left Alt and GUI
 *   are not typing modifiers: a key pressed with them is an error on the line, except
 *   keypad digits with left Alt in Alt mode (below).
 * - A report with ErrorRollOver (0x01) or the other error codes (0x02, 0x03) in a
 *   keycode slot carries no key state and is ignored.
 * - Enter (0x28), keypad Enter (0x58) and Tab (0x2B) end a line. A terminator with
 *   nothing before it is ignored (scanners configured with a Tab + Enter suffix).
 * - Control characters, in every layout, as scanners send them in their "Ctrl + ASCII"
 *   mode: Ctrl + the key that types [ \ ] ^ _ in the layout (with Shift or AltGr as
 *   the layout needs; ^ may be a dead key) gives ESC, FS, GS (the GS1 separator), RS,
 *   US (0x1B..0x1F), and Ctrl+M, Ctrl+J, Ctrl+I (CR, LF, Tab) end the line. Some
 *   scanners send the US key position whatever their keyboard country, so Ctrl + usage
 *   0x2F, 0x31, 0x30, 0x23, 0x2D (US [ \ ] 6 -) give the same five when the layout's
 *   key there is none of them. Other Ctrl combinations (Ctrl+A for SOH, ...) are an
 *   error: no barcode data rmad reads uses them.
 * - Keypad digits and operators type as with NumLock on (scanners' keypad mode),
 *   whatever Shift or AltGr; the decimal key types the layout's separator (de: ',').
 * - Dead keys: a dead key followed by Space types the accent itself (de: ^ ´ `), as the
 *   Windows layouts scanners' keyboard-country tables follow do; this is how a scanner
 *   types an ASCII ^ ` ~ in a layout that has them on dead keys. A dead key followed by
 *   any other key is an error: composing (^ then a: a with circumflex) is not done,
 *   since barcode data is ASCII and a scanner that means a composed letter uses Alt mode.
 *   (Windows, not X11's Compose table, is followed for the accent: Compose turns
 *   dead acute + Space into ', where a German keyboard types an acute accent.)
 * - The ISO key left of Z (0x64) types nothing in us and the us variants that leave
 *   it to XKB's generic pc fallback: US keyboards (ANSI) have no such key, so a scanner
 *   set to us never sends it.
 * - Alt mode (kbd_decoder_set_alt_mode): left Alt held while keypad digits are typed,
 *   then released, types the character of that code, as Windows does and Honeywell,
 *   Zebra and Datalogic scanners emulate for layout-independent output: a code with a
 *   leading 0 (Alt+0082) is Windows-1252, one without (Alt+130) code page 437, both
 *   1..255; 1..31 are the ASCII control characters in either (Alt+029 is GS; 9, 10, 13
 *   end the line). Without Alt mode such a sequence is an error that says so.
 *
 * A line that met an error (unknown keycode, unsupported combination, longer than the
 * limit) is not dropped and not cut: it is delivered at its terminator with a reason,
 * and with the text decoded before the error (for the audit trail).
 */
#ifndef RMAD_KEYMAP_H
#define RMAD_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A compiled keyboard layout: read-only tables, reference-counted. */
typedef struct keymap keymap_t;

/*
 * Compile the layout `name`: an XKB layout ("us", "de", "fr"; case-insensitive),
 * optionally with a variant in parentheses ("ch(fr)", "de(nodeadkeys)"). Returns the
 * keymap (one reference; release with keymap_unref), or NULL with errno EINVAL for an
 * unknown name or ENOMEM, and *errmsg (when errmsg is not NULL) set to a malloc'd
 * one-line reason that says how to list the valid names. Costs a few milliseconds
 * (xkbcommon reads and compiles the XKB files): call it at configuration time.
 */
keymap_t *keymap_new(const char *name, char **errmsg);

/* Another reference to map (returned). */
keymap_t *keymap_ref(keymap_t *map);

/* Drop a reference; the last one frees the keymap. Accepts NULL; clears *p. */
void keymap_unref(keymap_t **p);

/* The layout's name as compiled: "us", "ch(fr)". */
const char *keymap_name(const keymap_t *map);

/* Where the valid layout names are listed, for configuration error messages. */
#define KEYMAP_NAMES_HINT                                                              \
    "XKB layouts and variants are listed in /usr/share/X11/xkb/rules/evdev.lst "      \
    "(or by `localectl list-x11-keymap-layouts` and `localectl "                      \
    "list-x11-keymap-variants LAYOUT`); write a variant as LAYOUT(VARIANT)"

/*
 * The code point of Alt code `code` (1..255): Windows-1252 when typed with a leading 0,
 * code page 437 otherwise. Below 0x80 both are ASCII, controls included (code page
 * 437's glyphs for 1..31 are a display convention; a scanner sending Alt+29 means GS).
 * 0 when the code page has no character there or code is out of range.
 */
uint32_t keymap_alt_code_point(unsigned code, bool leading_zero);

/* Size of one HID boot-keyboard report. */
#define KBD_REPORT_LEN 8

/*
 * A completed line. Good lines: reason is NULL, line holds the decoded text followed
 * by '\n' (whichever terminator ended it), NUL-terminated, len counts the '\n'; the
 * text is UTF-8 and may hold control characters (GS and the others of Ctrl combinations
 * and Alt codes; scan_decode() judges them). Bad lines: reason says why ("unknown keycode 0x3A",
 * "line longer than 512 bytes"), line holds the text decoded before the error, without
 * '\n'. Both pointers are valid only during the call. The callback must not destroy
 * the decoder.
 */
typedef void (*kbd_line_fn)(const char *line, size_t len, const char *reason, void *data);

typedef struct kbd_decoder kbd_decoder_t;

/*
 * New decoder for `map` (it takes a reference of its own), delivering lines of at most
 * max_len bytes ('\n' excluded; 0 = SCAN_MAX_LEN_DEFAULT, the scan limit) to
 * fn(..., data). Alt mode is off. NULL when map or fn is NULL or out of memory.
 */
kbd_decoder_t *kbd_decoder_new(keymap_t *map, size_t max_len, kbd_line_fn fn,
                               void *data);

/* Free the decoder (a pending unterminated line is dropped). Accepts NULL; clears *p. */
void kbd_decoder_destroy(kbd_decoder_t **p);

/* Decode Alt + keypad digit codes (the scanner's Alt mode) from now on, or not. */
void kbd_decoder_set_alt_mode(kbd_decoder_t *dec, bool on);

/*
 * Feed one report. Calls the line callback for every line it completes. Returns 0, or
 * -EINVAL when len is not KBD_REPORT_LEN (the report is ignored).
 */
int kbd_decoder_feed(kbd_decoder_t *dec, const uint8_t *report, size_t len);

/*
 * End the pending line as if a terminator had been typed (for a scanner configured
 * without suffix, after an idle time). Nothing happens when no line is pending.
 */
void kbd_decoder_flush(kbd_decoder_t *dec);

/* Forget the pending line and the keys held (after a device detach). */
void kbd_decoder_reset(kbd_decoder_t *dec);

#endif
