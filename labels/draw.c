/* cairo text fitting and output, shared by the label renderer and the command sheet. */
#include <errno.h>
#include <fontconfig/fontconfig.h>
#include <stdlib.h>
#include <string.h>

#include "labels/draw.h"
#include "labels/label.h"
#include "labels/layout.h"

/* Type size as a share of the line height: DejaVu's ascent + descent fit in a line. */
#define FONT_SHARE 0.8

/* Advance width of s[0..len) followed by tail; -1 when out of memory. */
static double advance(cairo_t *cr, const char *s, size_t len, const char *tail)
{
    size_t tl = strlen(tail);
    char *t = malloc(len + tl + 1);
    if (!t)
        return -1;
    memcpy(t, s, len);
    memcpy(t + len, tail, tl + 1);
    cairo_text_extents_t e;
    cairo_text_extents(cr, t, &e);
    free(t);
    return e.x_advance;
}

/*
 * Most bytes of s (whole code points) that fit in w followed by tail; binary search,
 * as the width grows with every code point. -1 when out of memory.
 */
static long fit(cairo_t *cr, const char *s, double w, const char *tail)
{
    size_t lo = 0, hi = text_cp_count(s); /* lo code points fit; hi is an upper bound */
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        double a = advance(cr, s, text_cp_bytes(s, mid), tail);
        if (a < 0)
            return -1;
        if (a <= w)
            lo = mid;
        else
            hi = mid - 1;
    }
    return (long)text_cp_bytes(s, lo);
}

static int show(cairo_t *cr, const char *s, size_t len, const char *tail, double x,
                double baseline, double w, unsigned flags)
{
    size_t tl = strlen(tail);
    char *t = malloc(len + tl + 1);
    if (!t)
        return -ENOMEM;
    memcpy(t, s, len);
    memcpy(t + len, tail, tl + 1);
    cairo_text_extents_t e;
    cairo_text_extents(cr, t, &e);
    double left = flags & DRAW_CENTER ? x + (w - e.x_advance) / 2 : x;
    cairo_move_to(cr, left, baseline);
    cairo_show_text(cr, t);
    free(t);
    return 0;
}

/*
 * draw_text's work: fit, wrap and (unless measure) show. Returns the lines used, or
 * -ENOMEM.
 */
static int text_lines(cairo_t *cr, const char *text, double x, double y, double w,
                      double line_h, int lines, unsigned flags, int measure)
{
    cairo_save(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_select_font_face(cr, DRAW_FONT, CAIRO_FONT_SLANT_NORMAL,
                           flags & DRAW_BOLD ? CAIRO_FONT_WEIGHT_BOLD
                                             : CAIRO_FONT_WEIGHT_NORMAL);
    double size = line_h * FONT_SHARE;
    cairo_set_font_size(cr, size);
    int rc = 0;
    if (flags & DRAW_SHRINK) {
        /* Big words (the disposition) stay whole: smaller type, down to half size. */
        double a = advance(cr, text, strlen(text), "");
        if (a < 0)
            rc = -ENOMEM;
        else if (a > w)
            cairo_set_font_size(cr, size * (w / a > 0.5 ? w / a : 0.5));
        lines = 1;
    }
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    double pad = (line_h - (fe.ascent + fe.descent)) / 2;

    const char *p = text;
    int line;
    for (line = 0; rc == 0 && line < lines && *p; line++) {
        while (*p == ' ')
            p++;
        size_t rest = strlen(p);
        double baseline = y + line * line_h + pad + fe.ascent;
        long n = fit(cr, p, w, "");
        if (n < 0) {
            rc = -ENOMEM;
            break;
        }
        const char *tail = "";
        if ((size_t)n < rest && line == lines - 1) {
            /* Still more after the last line: cut and say so. */
            if ((n = fit(cr, p, w, TEXT_ELLIPSIS)) < 0) {
                rc = -ENOMEM;
                break;
            }
            tail = TEXT_ELLIPSIS;
        } else if ((size_t)n < rest) {
            /* Wrap at the last space that fits; a longer word breaks where it must. */
            long sp = n;
            while (sp > 0 && p[sp] != ' ')
                sp--;
            if (sp > 0)
                n = sp;
            else if (n == 0)
                n = (long)text_cp_bytes(p, 1);
        }
        if (!measure)
            rc = show(cr, p, (size_t)n, tail, x, baseline, w, flags);
        p += n;
    }
    cairo_restore(cr);
    return rc < 0 ? rc : line;
}

int draw_text(cairo_t *cr, const char *text, double x, double y, double w, double line_h,
              int lines, unsigned flags)
{
    int rc = text_lines(cr, text, x, y, w, line_h, lines, flags, 0);
    return rc < 0 ? rc : 0;
}

int draw_text_lines(cairo_t *cr, const char *text, double w, double line_h, int lines,
                    unsigned flags)
{
    int rc = text_lines(cr, text, 0, 0, w, line_h, lines, flags, 1);
    return rc == 0 ? 1 : rc;
}

cairo_status_t draw_write(void *closure, const unsigned char *data, unsigned int length)
{
    FILE *f = closure;
    return length == 0 || fwrite(data, length, 1, f) == 1 ? CAIRO_STATUS_SUCCESS
                                                          : CAIRO_STATUS_WRITE_ERROR;
}

int draw_errno(cairo_status_t st)
{
    if (st == CAIRO_STATUS_SUCCESS)
        return 0;
    return st == CAIRO_STATUS_NO_MEMORY ? -ENOMEM : -EIO;
}

void label_release_fonts(void)
{
    cairo_debug_reset_static_data();
    FcFini();
}
