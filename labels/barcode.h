/*
 * Barcodes for labels and the command sheet, encoded by libzint and drawn with cairo.
 * Internal to labels/. The symbol is encoded once; its size in modules lets a layout
 * place it before any renderer runs, and barcode_draw() paints zint's own rectangles,
 * so the bar patterns are zint's, never hand-made.
 */
#ifndef RMAD_LABELS_BARCODE_H
#define RMAD_LABELS_BARCODE_H

#include <cairo.h>
#include <stddef.h>

typedef enum {
    BARCODE_KIND_CODE128,     /* Code 128, automatic code sets (digits pack as set C) */
    BARCODE_KIND_DATAMATRIX,  /* Data Matrix ECC 200, square symbols only */
} barcode_kind_t;

typedef struct barcode barcode_t;

/*
 * Encode len bytes of data. Returns 0 and sets *out (free with barcode_destroy),
 * -EINVAL when zint rejects the data (empty, too long for the symbology, characters
 * Code 128 cannot carry) or -ENOMEM.
 */
int barcode_encode(barcode_kind_t kind, const char *data, size_t len, barcode_t **out);

/* Free a barcode; accepts NULL and clears *p. */
void barcode_destroy(barcode_t **p);

/* The kind it was encoded as. */
barcode_kind_t barcode_kind(const barcode_t *b);

/* Width in modules, without quiet zones. */
int barcode_columns(const barcode_t *b);

/* Height in modules of a Data Matrix (its rows); 1 for Code 128. */
int barcode_rows(const barcode_t *b);

/*
 * Paint the symbol in black with its top-left corner at (x, y), module units wide
 * per module; a Code 128 gets bars bar_height tall, a Data Matrix is rows x module
 * tall (bar_height ignored). Quiet zones are the caller's: nothing else is painted.
 * cairo records errors in cr; check cairo_status() when done.
 */
void barcode_draw(const barcode_t *b, cairo_t *cr, double x, double y, double module,
                  double bar_height);

#endif
