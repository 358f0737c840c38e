/*
 * libFuzzer target: keyboard-wedge decoding. The first byte picks the layout (bits
 * 0-2) and Alt mode (bit 3); the rest are 8-byte boot-keyboard reports, as a USB
 * scanner sends them. The layouts are compiled once, as rmad does per scanner.
 */
#include <stddef.h>
#include <stdint.h>

#include "drivers/keymap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_line(const char *line, size_t len, const char *reason, void *data)
{
    (void)line;
    (void)len;
    (void)reason;
    (void)data;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const names[8] = { "us", "de", "fr", "gb", "ch(de)", "ch(fr)", "es",
                                           "us(intl)" };
    static keymap_t *maps[8];
    keymap_t **map = &maps[data[0] & 7];
    if (!*map && !(*map = keymap_new(names[data[0] & 7], NULL)))
        return 0;
    kbd_decoder_t *dec = kbd_decoder_new(*map, 0, on_line, NULL);
    if (!dec)
        return 0;
    kbd_decoder_set_alt_mode(dec, data[0] & 8);
    for (size_t off = 1; off + KBD_REPORT_LEN <= size; off += KBD_REPORT_LEN)
        (void)kbd_decoder_feed(dec, data + off, KBD_REPORT_LEN);
    kbd_decoder_flush(dec);
    kbd_decoder_destroy(&dec);
    return 0;
}
