/*
 * cairo renderer: a layout as a one-page PDF the size of the label, or as a PNG with
 * one pixel per printer dot. Coordinates stay in dots; the PDF page scales them to
 * points, so both formats come from the same drawing calls.
 */
#include <cairo-pdf.h>
#include <errno.h>

#include "labels/draw.h"
#include "labels/layout.h"

static int draw_layout(cairo_t *cr, const layout_t *lay)
{
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    for (size_t i = 0; i < lay->n; i++) {
        const layout_el_t *e = &lay->el[i];
        switch (e->kind) {
        case LAYOUT_TEXT: {
            unsigned flags = (e->bold ? DRAW_BOLD : 0) | (e->center ? DRAW_CENTER : 0) |
                             (e->whole ? DRAW_SHRINK : 0);
            int rc = draw_text(cr, e->text, e->x, e->y, e->w, e->h, e->lines, flags);
            if (rc < 0)
                return rc;
            break;
        }
        case LAYOUT_RULE:
            cairo_rectangle(cr, e->x, e->y, e->w, e->h);
            cairo_fill(cr);
            break;
        case LAYOUT_BARCODE:
            barcode_draw(e->bc, cr, e->x, e->y, e->module, e->h);
            break;
        }
    }
    return draw_errno(cairo_status(cr));
}

int pdf_render(const layout_t *lay, bool png, FILE *f)
{
    cairo_surface_t *s;
    if (png)
        s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, lay->width, lay->height);
    else
        s = cairo_pdf_surface_create_for_stream(draw_write, f, lay->width * 72.0 / lay->dpi,
                                                lay->height * 72.0 / lay->dpi);
    int rc = draw_errno(cairo_surface_status(s));
    cairo_t *cr = rc == 0 ? cairo_create(s) : NULL;
    if (cr) {
        if (!png)
            cairo_scale(cr, 72.0 / lay->dpi, 72.0 / lay->dpi);
        rc = draw_layout(cr, lay);
        cairo_destroy(cr);
    }
    if (rc == 0 && png)
        rc = draw_errno(cairo_surface_write_to_png_stream(s, draw_write, f));
    cairo_surface_finish(s); /* a PDF is written out here */
    if (rc == 0)
        rc = draw_errno(cairo_surface_status(s));
    cairo_surface_destroy(s);
    return rc;
}
