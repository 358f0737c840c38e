/*
 * cairo drawing shared by the label renderer (labels/pdf.c) and the command sheet
 * (labels/sheet.c): fitted text in DejaVu Sans, and cairo output into a FILE.
 * Internal to labels/.
 */
#ifndef RMAD_LABELS_DRAW_H
#define RMAD_LABELS_DRAW_H

#include <cairo.h>
#include <stdio.h>

/* The one typeface: installed with fontconfig on Debian (fonts-dejavu-core). */
#define DRAW_FONT "DejaVu Sans"

enum {
    DRAW_BOLD = 1 << 0,
    DRAW_CENTER = 1 << 1,  /* centred in the width, else left-aligned */
    DRAW_SHRINK = 1 << 2,  /* one line: make the type smaller rather than cut it */
};

/*
 * Draw valid UTF-8 text in black in the box at (x, y), w wide, at most `lines` lines
 * of line_h each (in the current user units). Words wrap at spaces, a word wider than
 * the box is broken, and text still left over after the last line is cut at a code
 * point with an ellipsis, measured with the font so nothing crosses the box.
 * Returns 0 or -ENOMEM; cairo's own errors stay in cr (check cairo_status() when done).
 */
int draw_text(cairo_t *cr, const char *text, double x, double y, double w, double line_h,
              int lines, unsigned flags);

/*
 * The lines draw_text would take for text in w at line_h (at least 1, at most
 * `lines`), drawing nothing, so a layout can reserve just that. Or -ENOMEM.
 */
int draw_text_lines(cairo_t *cr, const char *text, double w, double line_h, int lines,
                    unsigned flags);

/* cairo_write_func_t writing to the FILE * closure. */
cairo_status_t draw_write(void *closure, const unsigned char *data, unsigned int length);

/*
 * The status of a finished drawing as an errno: 0, -ENOMEM, or -EIO for any other
 * cairo error (including a failed write).
 */
int draw_errno(cairo_status_t st);

#endif
