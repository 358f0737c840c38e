/*
 * ZPL renderer: one ^XA...^XZ format drawing a layout's elements as ZPL fields.
 *
 * Untrusted text never reaches the printer as commands: every text field is written
 * under ^FH with all bytes outside printable ASCII, and ^ ~ _ \, as _XX hex escapes,
 * so the output is plain printable ASCII whose only ^ and ~ are our own. UTF-8 text
 * travels as escaped bytes and ^CI28 has the printer read them as UTF-8. (\ is escaped
 * because ^FB reads "\&" as a line break.) Barcode data is checked instead: the layout
 * only gives it printable ASCII without those characters.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "labels/layout.h"

/* Share of a text line the font 0 characters take; the rest is ^FB line spacing. */
#define ZPL_FONT_SHARE 0.9

static int is_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7F && !strchr("^~_\\", c);
}

static int put_escaped(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((is_plain(*p) ? fputc(*p, f) : fprintf(f, "_%02X", *p)) < 0)
            return -EIO;
    return 0;
}

static int put_text(FILE *f, const layout_el_t *e)
{
    int font = (int)lround(e->h * ZPL_FONT_SHARE);
    if (fprintf(f, "^FO%d,%d^A0N,%d,%d^FB%d,%d,%d,%c,0^FH_^FD", e->x, e->y, font, font, e->w,
                e->lines, e->h - font, e->center ? 'C' : 'L') < 0 ||
        put_escaped(f, e->text) < 0 || fputs("^FS\n", f) < 0)
        return -EIO;
    return 0;
}

static int put_barcode(FILE *f, const layout_el_t *e)
{
    for (const unsigned char *p = (const unsigned char *)e->text; *p; p++)
        if (!is_plain(*p))
            return -EINVAL; /* the layout's promise is broken: never print it raw */
    int rc;
    if (barcode_kind(e->bc) == BARCODE_KIND_DATAMATRIX)
        /* Data Matrix ECC 200 with module size e->module, symbol size chosen by the printer. */
        rc = fprintf(f, "^FO%d,%d^BXN,%d,200^FD%s^FS\n", e->x, e->y, e->module, e->text);
    else
        /* Code 128, automatic code sets, no interpretation line (the layout prints one). */
        rc = fprintf(f, "^FO%d,%d^BY%d^BCN,%d,N,N,N,A^FD%s^FS\n", e->x, e->y, e->module, e->h,
                     e->text);
    return rc < 0 ? -EIO : 0;
}

int zpl_render(const layout_t *lay, FILE *f)
{
    if (fprintf(f, "^XA\n^CI28\n^PW%d\n^LL%d\n^LH0,0\n", lay->width, lay->height) < 0)
        return -EIO;
    for (size_t i = 0; i < lay->n; i++) {
        const layout_el_t *e = &lay->el[i];
        int rc = 0;
        switch (e->kind) {
        case LAYOUT_TEXT:
            rc = put_text(f, e);
            break;
        case LAYOUT_RULE:
            rc = fprintf(f, "^FO%d,%d^GB%d,%d,%d^FS\n", e->x, e->y, e->w, e->h, e->h) < 0 ? -EIO
                                                                                       : 0;
            break;
        case LAYOUT_BARCODE:
            rc = put_barcode(f, e);
            break;
        }
        if (rc < 0)
            return rc;
    }
    return fputs("^XZ\n", f) < 0 ? -EIO : 0;
}
