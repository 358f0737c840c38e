/*
 * Keyboard-wedge decoding: HID boot-keyboard reports in, lines of text out.
 *
 * A keyboard-wedge scanner "types" each barcode: a sequence of 8-byte boot-protocol
 * reports (byte 0 modifier bits, byte 1 reserved, bytes 2..7 the keycodes held down,
 * HID usage page 0x07), then a terminator key. Which character a keycode means depends
 * on the keyboard layout the scanner was configured for, so the driver names one
 * (config: "us" or "de").
 *
 * Decoding rules:
 * - A key types when it is pressed: a keycode present in this report and not in the
 *   previous one. A held key does not repeat; the same character twice needs a
 *   report without it in between (scanners send an all-zero release report).
 * - Shift is 0x02 / 0x20, AltGr is right Alt 0x40. Left Alt and GUI are not typing
 *   modifiers: a key pressed with them is an error on the line.
 * - A report with ErrorRollOver (0x01) or the other error codes (0x02, 0x03) in a
 *   keycode slot carries no key state and is ignored.
 * - Enter (0x28), keypad Enter (0x58) and Tab (0x2B) end a line. A terminator with
 *   nothing before it is ignored (scanners configured with a Tab + Enter suffix).
 * - GS (0x1D, the GS1 separator): Ctrl + the key that types ']' in the layout (US:
 *   usage 0x30; DE: AltGr + 9), which is what scanners send in their "Ctrl + ASCII"
 *   mode (GS = Ctrl+] in ASCII). Ctrl + usage 0x30 (the US ']' position) is also
 *   taken as GS in every layout, as some scanners send the US usage for control
 *   characters whatever their keyboard country. No other Ctrl combination is accepted;
 *   Alt + keypad digit sequences are not decoded.
 * - Keypad digits and operators type as with NumLock on (scanners' keypad mode).
 * - DE dead keys (^, acute, grave) type their accent when followed by Space; any
 *   other key after them is an error (composed characters are not decoded).
 *
 * A line that met an error (unknown keycode, unsupported combination, longer than the
 * limit) is not dropped and not cut: it is delivered at its terminator with a reason,
 * and with the text decoded before the error (for the audit trail).
 */
#ifndef RMAD_KEYMAP_H
#define RMAD_KEYMAP_H

#include <stddef.h>
#include <stdint.h>

/* A keyboard layout (static data of this module). */
typedef struct keymap keymap_t;

/* The layout named `name` ("us", "de"; case-insensitive), or NULL when unknown. */
const keymap_t *keymap_find(const char *name);

/* The layout's name ("us"). */
const char *keymap_name(const keymap_t *map);

/* The layouts known, for configuration error messages: "us, de". Static storage. */
const char *keymap_names(void);

/* Size of one HID boot-keyboard report. */
#define KBD_REPORT_LEN 8

/*
 * A completed line. Good lines: reason is NULL, line holds the decoded text followed
 * by '\n' (whichever terminator ended it), NUL-terminated, len counts the '\n'; the
 * text is UTF-8 and may hold GS. Bad lines: reason says why ("unknown keycode 0x3A",
 * "line longer than 512 bytes"), line holds the text decoded before the error, without
 * '\n'. Both pointers are valid only during the call. The callback must not destroy
 * the decoder.
 */
typedef void (*kbd_line_fn)(const char *line, size_t len, const char *reason, void *data);

typedef struct kbd_decoder kbd_decoder_t;

/*
 * New decoder for `map`, delivering lines of at most max_len bytes ('\n' excluded;
 * 0 = SCAN_MAX_LEN_DEFAULT, the scan limit) to fn(..., data). NULL when map or fn is
 * NULL or out of memory.
 */
kbd_decoder_t *kbd_decoder_new(const keymap_t *map, size_t max_len, kbd_line_fn fn,
                               void *data);

/* Free the decoder (a pending unterminated line is dropped). Accepts NULL; clears *p. */
void kbd_decoder_destroy(kbd_decoder_t **p);

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
