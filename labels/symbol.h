/*
 * A barcode as a standalone image, for screens: the station screen draws the barcodes
 * of the accessories it expects so that they can be scanned off the monitor. The bars
 * are labels/barcode.c's (libzint), the same as on labels and the command sheet.
 */
#ifndef RMAD_LABELS_SYMBOL_H
#define RMAD_LABELS_SYMBOL_H

#include <stddef.h>
#include <stdint.h>

#define SYMBOL_TEXT_MAX 80   /* bytes encoded at most: a screen barcode stays scannable */

/*
 * A Code 128 of len bytes of text as a PNG: black bars on white, `module` pixels per
 * module (1..8), bars `height` pixels tall (10..400), a ten-module quiet zone on each
 * side and a margin of two modules above and below. Returns 0 and sets *out (malloc'd, caller frees) and *out_len, -EINVAL for
 * empty or longer text, characters Code 128 cannot carry or a size out of range,
 * -ENOMEM, or -EIO when cairo fails.
 */
int symbol_code128_png(const char *text, size_t len, int module, int height, uint8_t **out,
                       size_t *out_len);

#endif
