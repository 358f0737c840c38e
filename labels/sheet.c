/*
 * The command sheet (labels/sheet.h). All sizes are PDF points (1/72 in).
 *
 * Placement is worked out first for every row (page and height), so that each page
 * can say "page N of M" and a section heading is never left alone at a page's foot.
 */
#include <cairo-pdf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/scancmd.h"
#include "labels/barcode.h"
#include "labels/draw.h"
#include "labels/layout.h"
#include "labels/sheet.h"

#define MM (72.0 / 25.4)
#define MARGIN (15 * MM)
#define TITLE_H 40.0      /* title block on the first page */
#define CONT_H 24.0       /* the continued title on later pages */
#define FOOT_H 16.0
#define HEAD_H 24.0       /* a section heading */
#define BAR_H 30.0        /* bar height */
#define HRT_H 12.0        /* the barcode's text under it */
#define ROW_H (BAR_H + HRT_H + 14.0)
#define MODULE 1.0        /* preferred module: 0.35 mm */
#define MODULE_MIN 0.74   /* never under 0.26 mm */
#define QUIET 10          /* quiet zone each side, in modules */
#define MEANING_GAP 12.0

int sheet_paper_parse(const char *s, sheet_paper_t *out)
{
    if (s && strcasecmp(s, "a4") == 0)
        *out = SHEET_A4;
    else if (s && strcasecmp(s, "letter") == 0)
        *out = SHEET_LETTER;
    else
        return -EINVAL;
    return 0;
}

/* Where one command row goes. */
typedef struct {
    barcode_t *bc;
    int page;
    double y;      /* top of the row (its heading, when it has one) */
    int heading;   /* 1: the section's heading above it; 2: "(continued)" heading */
} row_t;

typedef struct {
    double w, h;               /* page */
    const scancmd_info_t *cmd;
    size_t n;
    row_t *rows;
    int pages;
    double module, code_w;     /* module and the barcode column's width */
} sheet_t;

static void sheet_free(sheet_t *s)
{
    for (size_t i = 0; s->rows && i < s->n; i++)
        barcode_destroy(&s->rows[i].bc);
    free(s->rows);
}

/* Encode every command and place the rows on pages. */
static int sheet_plan(sheet_t *s)
{
    s->rows = calloc(s->n, sizeof(*s->rows));
    if (!s->rows)
        return -ENOMEM;
    int widest = 0;
    for (size_t i = 0; i < s->n; i++) {
        const char *text = s->cmd[i].barcode;
        int rc = barcode_encode(BARCODE_KIND_CODE128, text, strlen(text), &s->rows[i].bc);
        if (rc < 0)
            return rc == -ENOMEM ? rc : -EIO;
        int cols = barcode_columns(s->rows[i].bc);
        widest = cols > widest ? cols : widest;
    }
    /* The barcode column takes what the widest command needs, at most 60% of the page. */
    double usable = s->w - 2 * MARGIN;
    s->module = MODULE;
    if ((widest + 2 * QUIET) * s->module > usable * 0.6)
        s->module = usable * 0.6 / (widest + 2 * QUIET);
    if (s->module < MODULE_MIN)
        return -EIO;
    s->code_w = (widest + 2 * QUIET) * s->module;

    double bottom = s->h - MARGIN - FOOT_H, y = MARGIN + TITLE_H;
    int page = 0;
    for (size_t i = 0; i < s->n; i++) {
        row_t *r = &s->rows[i];
        r->heading = i == 0 || strcmp(s->cmd[i].section, s->cmd[i - 1].section) != 0;
        double need = (r->heading ? HEAD_H : 0) + ROW_H;
        if (y + need > bottom) {
            page++;
            y = MARGIN + CONT_H;
            if (!r->heading) {
                r->heading = 2; /* say which section goes on */
                need += HEAD_H;
            }
        }
        r->page = page;
        r->y = y;
        y += need;
    }
    s->pages = page + 1;
    return 0;
}

static int sheet_draw_page(const sheet_t *s, cairo_t *cr, int page)
{
    char buf[96];
    int rc;
    double x = MARGIN, usable = s->w - 2 * MARGIN;
    if (page == 0) {
        rc = draw_text(cr, "rmad station command sheet", x, MARGIN, usable, 24, 1, DRAW_BOLD);
        if (rc == 0)
            rc = draw_text(cr,
                           "Scan a code to tell the station what you see. "
                           "Codes are case-insensitive.",
                           x, MARGIN + 24, usable, 12, 1, 0);
    } else {
        rc = draw_text(cr, "rmad station command sheet (continued)", x, MARGIN, usable, 16, 1,
                       DRAW_BOLD);
    }
    snprintf(buf, sizeof(buf), "page %d of %d", page + 1, s->pages);
    if (rc == 0)
        rc = draw_text(cr, buf, x, s->h - MARGIN - FOOT_H + 4, usable, FOOT_H - 4, 1,
                       DRAW_CENTER);

    for (size_t i = 0; rc == 0 && i < s->n; i++) {
        const row_t *r = &s->rows[i];
        if (r->page != page)
            continue;
        double y = r->y;
        if (r->heading) {
            snprintf(buf, sizeof(buf), "%s%s", s->cmd[i].section,
                     r->heading == 2 ? " (continued)" : "");
            rc = draw_text(cr, buf, x, y + 4, usable, HEAD_H - 6, 1, DRAW_BOLD);
            cairo_rectangle(cr, x, y + HEAD_H - 2, usable, 0.75);
            cairo_fill(cr);
            y += HEAD_H;
        }
        double top = y + 6;
        /* Centred over its text; the column keeps the quiet zones of the widest. */
        double bw = barcode_columns(r->bc) * s->module;
        barcode_draw(r->bc, cr, x + (s->code_w - bw) / 2, top, s->module, BAR_H);
        if (rc == 0)
            rc = draw_text(cr, s->cmd[i].barcode, x, top + BAR_H, s->code_w, HRT_H, 1,
                           DRAW_CENTER);
        double mx = x + s->code_w + MEANING_GAP;
        if (rc == 0)
            rc = draw_text(cr, s->cmd[i].meaning, mx, top, x + usable - mx, 13, 3, 0);
    }
    return rc;
}

static int sheet_write(const void *arg, FILE *f)
{
    const sheet_t *s = arg;
    cairo_surface_t *surf = cairo_pdf_surface_create_for_stream(draw_write, f, s->w, s->h);
    int rc = draw_errno(cairo_surface_status(surf));
    cairo_t *cr = rc == 0 ? cairo_create(surf) : NULL;
    if (cr) {
        rc = draw_errno(cairo_status(cr));
        for (int p = 0; rc == 0 && p < s->pages; p++) {
            rc = sheet_draw_page(s, cr, p);
            cairo_show_page(cr);
            if (rc == 0)
                rc = draw_errno(cairo_status(cr));
        }
        cairo_destroy(cr);
    }
    cairo_surface_finish(surf);
    if (rc == 0)
        rc = draw_errno(cairo_surface_status(surf));
    cairo_surface_destroy(surf);
    return rc;
}

int sheet_render(sheet_paper_t paper, uint8_t **out, size_t *len)
{
    return sheet_render_extra(paper, NULL, 0, out, len);
}

int sheet_render_extra(sheet_paper_t paper, const scancmd_info_t *extra, size_t n_extra,
                       uint8_t **out, size_t *len)
{
    sheet_t s = { 0 };
    scancmd_info_t *all = NULL;
    if (paper == SHEET_A4)
        s.w = 210 * MM, s.h = 297 * MM;
    else if (paper == SHEET_LETTER)
        s.w = 8.5 * 72, s.h = 11 * 72;
    else
        return -EINVAL;
    s.cmd = scancmd_table(&s.n);
    if (n_extra) {
        /* The general commands first, then the extra sections. */
        if (!(all = calloc(s.n + n_extra, sizeof(*all))))
            return -ENOMEM;
        memcpy(all, s.cmd, s.n * sizeof(*all));
        memcpy(all + s.n, extra, n_extra * sizeof(*all));
        s.cmd = all;
        s.n += n_extra;
    }
    int rc = sheet_plan(&s);
    if (rc == 0)
        rc = render_to_memory(sheet_write, &s, out, len);
    sheet_free(&s);
    free(all);
    return rc;
}
