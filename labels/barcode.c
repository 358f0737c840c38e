/* Barcodes: libzint encodes, cairo paints zint's vector rectangles. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <zint.h>

#include "labels/barcode.h"

struct barcode {
    struct zint_symbol *sym; /* encoded, with its vector buffered */
    barcode_kind_t kind;
};

int barcode_encode(barcode_kind_t kind, const char *data, size_t len, barcode_t **out)
{
    if (!data || len == 0 || len > INT_MAX)
        return -EINVAL;
    barcode_t *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->kind = kind;
    b->sym = ZBarcode_Create();
    if (!b->sym) {
        free(b);
        return -ENOMEM;
    }
    struct zint_symbol *z = b->sym;
    z->symbology = kind == BARCODE_KIND_DATAMATRIX ? BARCODE_DATAMATRIX : BARCODE_CODE128;
    z->input_mode = DATA_MODE; /* bytes as given: no ECI, no UTF-8 conversion */
    z->show_hrt = 0;           /* the layout prints its own human-readable line */
    z->whitespace_width = 0;   /* quiet zones belong to the layout */
    z->border_width = 0;
    z->height = 1;             /* bars are stretched to the layout's height */
    if (kind == BARCODE_KIND_DATAMATRIX)
        z->option_3 = DM_SQUARE;
    int rc = ZBarcode_Encode(z, (const unsigned char *)data, (int)len);
    if (rc < ZINT_ERROR)
        rc = ZBarcode_Buffer_Vector(z, 0);
    if (rc >= ZINT_ERROR || !z->vector || z->width <= 0) {
        barcode_destroy(&b);
        return rc == ZINT_ERROR_MEMORY ? -ENOMEM : -EINVAL;
    }
    *out = b;
    return 0;
}

void barcode_destroy(barcode_t **p)
{
    if (!p || !*p)
        return;
    ZBarcode_Delete((*p)->sym);
    free(*p);
    *p = NULL;
}

barcode_kind_t barcode_kind(const barcode_t *b)
{
    return b->kind;
}

int barcode_columns(const barcode_t *b)
{
    return b->sym->width;
}

int barcode_rows(const barcode_t *b)
{
    return b->kind == BARCODE_KIND_DATAMATRIX ? b->sym->rows : 1;
}

void barcode_draw(const barcode_t *b, cairo_t *cr, double x, double y, double module,
                  double bar_height)
{
    const struct zint_vector *v = b->sym->vector;
    /* zint's vector units per module (2 in zint 2.11) and, for bars, per bar height. */
    double sx = module * b->sym->width / v->width;
    double sy = b->kind == BARCODE_KIND_DATAMATRIX ? module * b->sym->rows / v->height
                                                   : bar_height / v->height;
    cairo_save(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    for (const struct zint_vector_rect *r = v->rectangles; r; r = r->next)
        cairo_rectangle(cr, x + r->x * sx, y + r->y * sy, r->width * sx, r->height * sy);
    cairo_fill(cr);
    cairo_restore(cr);
}
