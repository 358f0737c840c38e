/*
 * The one label layout, and the renderers that draw it. Internal to labels/.
 *
 * layout_build() turns a label_t and a label size into a list of positioned elements
 * in printer dots (text lines, a rule, a Code 128 of the receipt id, a DataMatrix of
 * RMA and serial). It decides everything a reader sees: which fields appear, their
 * words, sizes and places, and where text is cut. The renderers only draw elements:
 * zpl.c as ZPL fields, pdf.c with cairo (PDF or PNG). Neither looks at the label_t.
 */
#ifndef RMAD_LABELS_LAYOUT_H
#define RMAD_LABELS_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "labels/barcode.h"
#include "labels/label.h"

/* The ellipsis that ends cut text, in every format. */
#define TEXT_ELLIPSIS "\xE2\x80\xA6"

/*
 * Average advance of one character as a share of the line height: of mixed text, and
 * of the capitals of the big disposition words, for DejaVu Sans at the cairo
 * renderer's size and for the ZPL scalable font 0 (narrower). Text cut to this many
 * characters fits its width on a Zebra; the cairo renderer also measures each line
 * and cuts earlier if a line of wide characters would still overflow.
 */
#define TEXT_CHAR_WIDTH 0.5
#define TEXT_CAPS_WIDTH 0.62

typedef enum {
    LAYOUT_TEXT,     /* text lines */
    LAYOUT_RULE,     /* a filled black box (a line across the label) */
    LAYOUT_BARCODE,  /* bc drawn at (x, y), `module` dots per module */
} layout_kind_t;

typedef struct {
    layout_kind_t kind;
    int x, y;        /* top-left corner, dots from the label's top-left */
    int w;           /* width: text block, rule, barcode symbol (without quiet zone) */
    int h;           /* text: one line's height; rule: thickness; barcode: bar height
                      * (Code 128) or symbol height (DataMatrix) */
    int lines;       /* text: at most this many lines, wrapped at spaces */
    bool bold;       /* text */
    bool center;     /* text: centred in w, else left-aligned */
    bool whole;      /* text: one line sized to fit by the layout; a renderer whose font
                      * runs wider makes it smaller rather than cut it */
    int module;      /* barcode: dots per module (narrow bar, matrix cell) */
    int quiet;       /* barcode: the clear margin kept around the symbol, dots */
    char *text;      /* text: clean UTF-8 already cut to fit w x lines;
                      * barcode: its content, printable ASCII without ^ ~ _ \ */
    barcode_t *bc;   /* barcode: the encoded symbol */
} layout_el_t;

typedef struct {
    int width, height;  /* the label in dots */
    int dpi;
    layout_el_t *el;    /* drawing order */
    size_t n;
} layout_t;

/*
 * Lay l out on a label of `size` at `dpi` (203 or 300). Returns 0 and sets *out
 * (free with layout_destroy), -EINVAL for a bad size or dpi, -ENOMEM, or -EIO when
 * zint cannot encode the receipt id. A DataMatrix too long for its box is left out
 * (the RMA and serial stay as text).
 */
int layout_build(const label_t *l, label_size_t size, int dpi, layout_t **out);

/* Free a layout and everything in it; accepts NULL and clears *p. */
void layout_destroy(layout_t **p);

/* The renderers: write the whole document to f. Return 0, -EIO or -ENOMEM. */
int zpl_render(const layout_t *lay, FILE *f);
int pdf_render(const layout_t *lay, bool png, FILE *f);

/*
 * Run fn(arg, f) on a memory stream and hand back what it wrote: 0 with *out (malloc'd,
 * caller frees) and *len set, or fn's negative errno, or -ENOMEM.
 */
int render_to_memory(int (*fn)(const void *arg, FILE *f), const void *arg, uint8_t **out,
                     size_t *len);

/*
 * Text helpers (labels/text.c).
 *
 * text_clean: a malloc'd copy of s (NULL gives "") that is valid UTF-8 without
 * control characters: malformed sequences and C0/C1/DEL become U+FFFD, except that
 * tab, CR and LF become a space. Cut to at most max_cp code points, the last of them
 * TEXT_ELLIPSIS when cut (max_cp 0: no limit). Returns NULL when out of memory.
 */
char *text_clean(const char *s, size_t max_cp);

/* Code points in valid UTF-8 s. */
size_t text_cp_count(const char *s);

/* Bytes taken by the first n code points of valid UTF-8 s (all of s if shorter). */
size_t text_cp_bytes(const char *s, size_t n);

#endif
