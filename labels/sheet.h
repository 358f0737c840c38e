/*
 * The station's command sheet: every command barcode of daemon/scancmd.h (the one
 * list, scancmd_table()) as a Code 128 with its text under it and its meaning beside
 * it, grouped by section under headings, on as many pages as it takes.
 *
 * Printed at 100% the modules are 1 pt (0.35 mm) wide, never under 0.26 mm, with
 * quiet zones of 10 modules, so any dock scanner reads them.
 */
#ifndef RMAD_LABELS_SHEET_H
#define RMAD_LABELS_SHEET_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    SHEET_A4,      /* 210 x 297 mm */
    SHEET_LETTER,  /* 8.5 x 11 in */
} sheet_paper_t;

/* "a4" | "letter" (any case). Returns 0 and sets *out, or -EINVAL. */
int sheet_paper_parse(const char *s, sheet_paper_t *out);

/*
 * The sheet as a PDF. Returns 0 with *out (malloc'd, caller frees) and *len set, or
 * -EINVAL (unknown paper), -ENOMEM, or -EIO (cairo or zint failed, or a command is
 * too long for a scannable barcode across the page).
 */
int sheet_render(sheet_paper_t paper, uint8_t **out, size_t *len);

/*
 * The same sheet with n_extra more rows after the general commands (rmactl sheet
 * --vendor: the accessory barcodes of a vendor's products, one section per model or
 * family). Rows are borrowed for the call. Same returns.
 */
struct scancmd_info;
int sheet_render_extra(sheet_paper_t paper, const struct scancmd_info *extra, size_t n_extra,
                       uint8_t **out, size_t *len);

#endif
