/*
 * Command sheets (labels/sheet.h). All sizes are PDF points (1/72 in).
 *
 * Placement is worked out first for every entry (page, column, height), so that each
 * page can say "page N of M" and a heading is never left alone at a page's foot.
 */
#include <cairo-pdf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/scancmd.h"
#include "labels/barcode.h"
#include "labels/draw.h"
#include "labels/layout.h"
#include "labels/sheet.h"

#define MM (72.0 / 25.4)
#define MARGIN (10 * MM)
#define GUTTER 18.0       /* between the two columns */
#define TITLE_H 38.0      /* title block on the first page */
#define CONT_H 20.0       /* the continued title on later pages */
#define FOOT_H 16.0
#define HEAD_H 20.0       /* a group heading */
#define MEAN_H 12.0       /* a line of an entry's meaning */
#define MEAN_LINES 3
#define BAR_H 24.0        /* bar height: 8.5 mm */
#define HRT_H 10.0        /* the barcode's text under it */
#define ENTRY_GAP 6.0     /* under each entry */
#define MODULE 1.0        /* preferred module: 0.35 mm */
#define MODULE_MIN 0.74   /* never under 0.26 mm */
#define QUIET 10          /* quiet zone each side, in modules */

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

/* Where one entry goes. */
typedef struct {
    const sheet_entry_t *entry;
    barcode_t *bc;
    double module;
    int lines;     /* of its meaning */
    int page, col;
    double y;      /* top of the entry */
} cell_t;

/* A heading: a group's title at the top of its first row on a page. */
typedef struct {
    const char *title;
    int page;
    double y;
    int continued;
} head_t;

typedef struct {
    double w, h;               /* page */
    double col_w;
    const char *title;
    cell_t *cells;
    size_t n_cells;
    head_t *heads;
    size_t n_heads;
    int pages;
} sheet_t;

static void sheet_free(sheet_t *s)
{
    for (size_t i = 0; s->cells && i < s->n_cells; i++)
        barcode_destroy(&s->cells[i].bc);
    free(s->cells);
    free(s->heads);
}

/*
 * Encode c's barcode at the largest module up to MODULE that fits the column, and
 * measure its meaning with the font it is drawn in (cr: any cairo context).
 */
static int cell_encode(const sheet_t *s, cairo_t *cr, cell_t *c)
{
    const char *text = c->entry->barcode;
    int rc = barcode_encode(BARCODE_KIND_CODE128, text, strlen(text), &c->bc);
    if (rc < 0)
        return rc == -ENOMEM ? rc : -EIO;
    double span = barcode_columns(c->bc) + 2 * QUIET;
    c->module = span * MODULE > s->col_w ? s->col_w / span : MODULE;
    if (c->module < MODULE_MIN)
        return -EIO;
    int lines = draw_text_lines(cr, c->entry->meaning, s->col_w, MEAN_H, MEAN_LINES, 0);
    if (lines < 0)
        return lines;
    c->lines = lines;
    return 0;
}

static double cell_height(const cell_t *c)
{
    return c->lines * MEAN_H + 3 + BAR_H + HRT_H + ENTRY_GAP;
}

/*
 * Lay one group out from (*page, *y): its heading, then its entries two to a row, left
 * then right, a row as tall as its taller entry. A row that does not fit above bottom
 * starts a new page, under the group's heading again, marked continued.
 */
static int plan_group(sheet_t *s, cairo_t *cr, const sheet_group_t *g, int *page, double *y,
                      double top, double bottom)
{
    for (size_t i = 0; i < g->n; i += 2) {
        cell_t *row = &s->cells[s->n_cells];
        size_t in_row = g->n - i < 2 ? g->n - i : 2;
        double row_h = 0;
        for (size_t k = 0; k < in_row; k++) {
            row[k] = (cell_t){ .entry = &g->entries[i + k] };
            s->n_cells++;
            int rc = cell_encode(s, cr, &row[k]);
            if (rc < 0)
                return rc;
            row_h = cell_height(&row[k]) > row_h ? cell_height(&row[k]) : row_h;
        }
        int first = i == 0;
        double need = (first ? HEAD_H : 0) + row_h;
        int continued = 0;
        if (*y + need > bottom && *y > top) {
            ++*page;
            *y = top;
            continued = !first;
            need = HEAD_H + row_h;
        }
        if (first || continued) {
            s->heads[s->n_heads++] = (head_t){ g->title, *page, *y, continued };
            *y += HEAD_H;
        }
        for (size_t k = 0; k < in_row; k++) {
            row[k].page = *page;
            row[k].col = (int)k;
            row[k].y = *y;
        }
        *y += row_h;
    }
    return 0;
}

static int sheet_plan(sheet_t *s, const sheet_group_t *groups, size_t n)
{
    size_t cells = 0;
    for (size_t i = 0; i < n; i++)
        cells += groups[i].n;
    s->cells = calloc(cells ? cells : 1, sizeof(*s->cells));
    /* A heading per group, and one more for each page a group goes on over. */
    s->heads = calloc(n + cells, sizeof(*s->heads));
    if (!s->cells || !s->heads)
        return -ENOMEM;
    s->col_w = (s->w - 2 * MARGIN - GUTTER) / 2;
    /* Text is measured in points on a scratch surface: the PDF's units. */
    cairo_surface_t *scratch = cairo_image_surface_create(CAIRO_FORMAT_A8, 1, 1);
    cairo_t *cr = cairo_create(scratch);
    int rc = draw_errno(cairo_status(cr));
    double bottom = s->h - MARGIN - FOOT_H, y = MARGIN + TITLE_H;
    int page = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = plan_group(s, cr, &groups[i], &page, &y, MARGIN + CONT_H, bottom);
    cairo_destroy(cr);
    cairo_surface_destroy(scratch);
    s->pages = page + 1;
    return rc;
}

static int draw_cell(const sheet_t *s, cairo_t *cr, const cell_t *c)
{
    double x = MARGIN + c->col * (s->col_w + GUTTER), y = c->y;
    int rc = draw_text(cr, c->entry->meaning, x, y, s->col_w, MEAN_H, c->lines, 0);
    y += c->lines * MEAN_H + 3;
    /* Centred in its column, whose width holds its quiet zones. */
    double bw = barcode_columns(c->bc) * c->module;
    barcode_draw(c->bc, cr, x + (s->col_w - bw) / 2, y, c->module, BAR_H);
    if (rc == 0)
        rc = draw_text(cr, c->entry->barcode, x, y + BAR_H, s->col_w, HRT_H, 1, DRAW_CENTER);
    return rc;
}

static int sheet_draw_page(const sheet_t *s, cairo_t *cr, int page)
{
    char buf[160];
    int rc;
    double x = MARGIN, usable = s->w - 2 * MARGIN;
    if (page == 0) {
        rc = draw_text(cr, s->title, x, MARGIN, usable, 22, 1, DRAW_BOLD);
        if (rc == 0)
            rc = draw_text(cr,
                           "Scan a code to tell the station what you see. "
                           "Codes are case-insensitive. Print at 100%.",
                           x, MARGIN + 22, usable, 12, 1, 0);
    } else {
        snprintf(buf, sizeof(buf), "%s (continued)", s->title);
        rc = draw_text(cr, buf, x, MARGIN, usable, 16, 1, DRAW_BOLD);
    }
    snprintf(buf, sizeof(buf), "page %d of %d", page + 1, s->pages);
    if (rc == 0)
        rc = draw_text(cr, buf, x, s->h - MARGIN - FOOT_H + 4, usable, FOOT_H - 4, 1,
                       DRAW_CENTER);
    for (size_t i = 0; rc == 0 && i < s->n_heads; i++) {
        const head_t *h = &s->heads[i];
        if (h->page != page)
            continue;
        snprintf(buf, sizeof(buf), "%s%s", h->title, h->continued ? " (continued)" : "");
        rc = draw_text(cr, buf, x, h->y + 3, usable, HEAD_H - 6, 1, DRAW_BOLD);
        cairo_rectangle(cr, x, h->y + HEAD_H - 3, usable, 0.75);
        cairo_fill(cr);
    }
    for (size_t i = 0; rc == 0 && i < s->n_cells; i++)
        if (s->cells[i].page == page)
            rc = draw_cell(s, cr, &s->cells[i]);
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

int sheet_render_groups(sheet_paper_t paper, const char *title, const sheet_group_t *groups,
                        size_t n, uint8_t **out, size_t *len)
{
    sheet_t s = { .title = title ? title : "" };
    if (paper == SHEET_A4)
        s.w = 210 * MM, s.h = 297 * MM;
    else if (paper == SHEET_LETTER)
        s.w = 8.5 * 72, s.h = 11 * 72;
    else
        return -EINVAL;
    if (!groups || n == 0)
        return -EINVAL;
    int rc = sheet_plan(&s, groups, n);
    if (rc == 0)
        rc = render_to_memory(sheet_write, &s, out, len);
    sheet_free(&s);
    return rc;
}

/*
 * The order of scancmd_table()'s sections on the sheet: what a worker scans on every
 * unit (finish or abandon a receipt, a unit without RMA, packaging, the test result)
 * on page 1, the rarer findings after. A section not named here goes last.
 */
static const char *const section_order[] = {
    "Receipt", "Packaging", "Test result", "Serial label", "Findings", "Component",
    "Accessories",
};

#define N_ORDER (sizeof(section_order) / sizeof(section_order[0]))

static size_t section_rank(const char *section)
{
    for (size_t i = 0; i < N_ORDER; i++)
        if (strcmp(section, section_order[i]) == 0)
            return i;
    return N_ORDER;
}

int sheet_render(sheet_paper_t paper, uint8_t **out, size_t *len)
{
    size_t n;
    const scancmd_info_t *cmd = scancmd_table(&n);
    sheet_entry_t *entries = calloc(n ? n : 1, sizeof(*entries));
    sheet_group_t *groups = calloc(n ? n : 1, sizeof(*groups));
    size_t n_groups = 0, used = 0;
    int rc = entries && groups ? 0 : -ENOMEM;
    /* By rank, then table order: each section's rows stay together and in order. */
    for (size_t rank = 0; rc == 0 && rank <= N_ORDER; rank++) {
        for (size_t i = 0; i < n; i++) {
            if (section_rank(cmd[i].section) != rank)
                continue;
            if (!n_groups || strcmp(groups[n_groups - 1].title, cmd[i].section) != 0)
                groups[n_groups++] = (sheet_group_t){ cmd[i].section, &entries[used], 0 };
            entries[used++] = (sheet_entry_t){ cmd[i].barcode, cmd[i].meaning };
            groups[n_groups - 1].n++;
        }
    }
    if (rc == 0)
        rc = sheet_render_groups(paper, "rmad station command sheet", groups, n_groups, out,
                                 len);
    free(entries);
    free(groups);
    return rc;
}
