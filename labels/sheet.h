/*
 * The station's command sheet: the command barcodes of policy/scancmd.h (the one list,
 * scancmd_table()) as Code 128 symbols, each with its text under it and its meaning
 * above it, in groups under headings, two columns a page, on at most two pages.
 *
 * The commands a worker scans on every unit come first, on page 1: the receipt
 * commands (CMD-DONE, CMD-CANCEL, CMD-NORMA, CMD-REPRINT), packaging and the test
 * result (FAULT-...); then serial label, findings, component and accessories.
 *
 * Printed at 100% a module is 1 pt (0.35 mm), narrower only for a code too long for
 * its column and never under 0.26 mm, with quiet zones of 10 modules, so any dock
 * scanner reads them.
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

/* One barcode on a sheet: the exact text to encode and one line for the worker. */
typedef struct {
    const char *barcode;  /* printable ASCII */
    const char *meaning;
} sheet_entry_t;

/* A group of entries under one heading, laid out in two columns. */
typedef struct {
    const char *title;
    const sheet_entry_t *entries;
    size_t n;
} sheet_group_t;

/*
 * Groups as a PDF with `title` on page 1, in the order given, each under its heading
 * (repeated with "(continued)" when a group goes on over a page), on as many pages as
 * it takes, "page N of M" at the foot. Strings are borrowed for the call. Returns 0
 * with *out (malloc'd, caller frees) and *len set, or -EINVAL (unknown paper, no
 * groups), -ENOMEM, or -EIO (cairo or zint failed, or a barcode is too long for a
 * scannable symbol in its column).
 */
int sheet_render_groups(sheet_paper_t paper, const char *title, const sheet_group_t *groups,
                        size_t n, uint8_t **out, size_t *len);

/*
 * The command sheet: every row of scancmd_table(), grouped by section in the order a
 * dock needs them (above), through sheet_render_groups. Same returns.
 */
int sheet_render(sheet_paper_t paper, uint8_t **out, size_t *len);

#endif
