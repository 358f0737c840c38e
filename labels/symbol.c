/* Screen barcodes: one Code 128 painted by barcode_draw onto a cairo image, as PNG. */
#include <cairo.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "labels/barcode.h"
#include "labels/symbol.h"

#define QUIET_MODULES 10

struct sink {
    uint8_t *buf;
    size_t len, cap;
    int oom;
};

static cairo_status_t sink_write(void *closure, const unsigned char *data, unsigned int n)
{
    struct sink *s = closure;
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        while (cap < s->len + n)
            cap *= 2;
        uint8_t *b = realloc(s->buf, cap);
        if (!b) {
            s->oom = 1;
            return CAIRO_STATUS_WRITE_ERROR;
        }
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    return CAIRO_STATUS_SUCCESS;
}

int symbol_code128_png(const char *text, size_t len, int module, int height, uint8_t **out,
                       size_t *out_len)
{
    if (!text || len == 0 || len > SYMBOL_TEXT_MAX || module < 1 || module > 8 ||
        height < 10 || height > 400 || !out || !out_len)
        return -EINVAL;
    barcode_t *b = NULL;
    int rc = barcode_encode(BARCODE_KIND_CODE128, text, len, &b);
    if (rc < 0)
        return rc;
    int w = (barcode_columns(b) + 2 * QUIET_MODULES) * module;
    int vm = 2 * module;   /* a white margin above and below: readers find the ends */
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, height + 2 * vm);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    barcode_draw(b, cr, QUIET_MODULES * module, vm, module, height);
    cairo_status_t cs = cairo_status(cr);
    cairo_destroy(cr);
    struct sink sk = { 0 };
    if (cs == CAIRO_STATUS_SUCCESS)
        cs = cairo_surface_write_to_png_stream(s, sink_write, &sk);
    cairo_surface_destroy(s);
    barcode_destroy(&b);
    if (cs != CAIRO_STATUS_SUCCESS) {
        free(sk.buf);
        return sk.oom || cs == CAIRO_STATUS_NO_MEMORY ? -ENOMEM : -EIO;
    }
    *out = sk.buf;
    *out_len = sk.len;
    return 0;
}
