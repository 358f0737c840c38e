/*
 * Disposition labels: what a station's printer puts on a returned unit so packing
 * staff know where it goes (spec station, "Receipt workflow" step 5).
 *
 * The caller fills a label_t with borrowed strings (from a receipt row, a policy
 * result, a refused scan) and asks for bytes in the format its print queue takes:
 * ZPL for thermal printers, PDF for office printers, PNG for previews. Every format
 * is drawn from one layout (labels/layout.h), so the three always show the same
 * thing. Rendering is pure: no files, no printers, no logging.
 *
 * Text from scans (RMA, serial, model, reasons) is untrusted: it can never inject
 * printer commands into ZPL, invalid UTF-8 and control characters are replaced by
 * U+FFFD, and long text is cut with an ellipsis to fit its field.
 */
#ifndef RMAD_LABEL_H
#define RMAD_LABEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The label model. Every pointer is borrowed for the duration of one call and may be
 * NULL (absent); the renderer copies what it keeps. A plain struct so that callers
 * fill it with designated initialisers.
 */
typedef struct {
    const char *disposition;  /* contract word: refuse, restock, restock_fee, ... */
    bool refusal;             /* a refused RMA scan: no receipt was opened */
    const char *rma;
    int64_t receipt_id;       /* <= 0: none (a refusal), no receipt barcode */
    const char *serial;
    const char *vendor;
    const char *model;
    const char *unit;         /* "2 of 4": the unit of an RMA of several; NULL otherwise */
    double restocking_fee_pct; /* shown only when non-zero */
    const char *const *flags; /* contract words: wipe_media, bill_customer, ... */
    size_t n_flags;
    const char *reason;       /* the first reason's text; shown in plain words
                               * (label_reason_words) */
    const char *station;
    const char *time;         /* RFC 3339 UTC, e.g. "2026-03-04T14:05:09.123Z"; shown in
                               * the local zone (label_time_words) */
} label_t;

typedef enum {
    LABEL_ZPL,  /* one ^XA...^XZ format, UTF-8 (^CI28), for Zebra-type printers */
    LABEL_PDF,  /* one page the size of the label */
    LABEL_PNG,  /* one image, one pixel per printer dot */
} label_format_t;

typedef enum {
    LABEL_4X6,  /* 4 x 6 in, portrait: everything */
    LABEL_2X1,  /* 2 x 1 in: disposition, RMA and the receipt barcode only */
} label_size_t;

/*
 * Render l at size and dpi (203 or 300) as fmt. On success returns 0 and sets *out to
 * a malloc'd buffer of *len bytes (caller frees; ZPL is not NUL-terminated). Returns
 * -EINVAL for a NULL label, an unknown format or size, or another dpi; -ENOMEM when
 * out of memory; -EIO when cairo or zint fail. *out and *len are set only on success.
 */
int label_render(const label_t *l, label_format_t fmt, label_size_t size, int dpi,
                 uint8_t **out, size_t *len);

/*
 * Free the font caches that cairo and fontconfig keep for the whole process, so that
 * a program that renders and exits (rmactl), and leak checkers, see no font memory
 * left. Call only when no cairo object is alive and no other thread renders; a later
 * render loads the fonts again. The daemon calls it once, at exit.
 */
void label_release_fonts(void);

/*
 * Parse the command-line spellings "zpl" | "pdf" | "png", "4x6" | "2x1" and a dpi
 * ("203" | "300"). Return 0 and set *out, or -EINVAL and leave it alone.
 */
int label_format_parse(const char *s, label_format_t *out);
int label_size_parse(const char *s, label_size_t *out);
int label_dpi_parse(const char *s, int *out);

/*
 * The disposition in large words for people: "WARRANTY EXCHANGE", "RESTOCK -15%"
 * (restock_fee with its fee), "REFUSED". The one mapping every renderer uses. Writes
 * into buf (size bytes, at least 32) and returns buf, or returns NULL when the word
 * is NULL or not a contract disposition (the label then says "SEE SUPERVISOR").
 */
const char *label_disposition_words(const char *disposition, double fee_pct, char *buf,
                                    size_t size);

/*
 * A policy reason as a packer reads it, the one rule every label uses: parenthesised
 * asides holding ':' or ';' are left out (the engine's evidence for the record: the
 * period and its basis, the policy table cited, the fee arithmetic), contract words
 * such as act_of_god are written with spaces, and the first letter is a capital.
 * "in warranty until 2028-06-01 (3y from purchase date; Table 1: Solid State Drives:
 * exchange)" reads "In warranty until 2028-06-01". Other asides ("(physical_damage)",
 * a serial) stay. Returns a malloc'd string (caller frees), NULL for NULL or when out
 * of memory.
 */
char *label_reason_words(const char *text);

/*
 * An RFC 3339 time (any offset) in the process's local zone, for people:
 * "2026-11-21 07:15 CET". The zone is TZ, which rmad and rmactl set from the config's
 * `timezone` (core/config.h), else the system's. Writes into buf (size bytes, at
 * least 32) and returns 0, or -EINVAL for text that is not such a time.
 */
int label_time_words(const char *rfc3339, char *buf, size_t size);

/*
 * A flag in words: "WIPE MEDIA", "BILL CUSTOMER", "MANUAL REVIEW", "CUSTOMER PAYS
 * FREIGHT". NULL for a word that is not a contract flag. Static storage.
 */
const char *label_flag_words(const char *flag);

#endif
