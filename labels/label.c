/*
 * The label model's words and the one layout both renderers draw (labels/layout.h).
 *
 * Sizes are decided here, in inches turned into printer dots, so that ZPL (dots) and
 * PDF/PNG (dots scaled to points or taken as pixels) place everything alike.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "labels/label.h"
#include "labels/layout.h"
#include "proto/labelcode.h"

/* Contract dispositions (spec policy-eval, "Result") in words for packing staff. */
static const struct {
    const char *word;
    const char *words;
} dispositions[] = {
    { "refuse", "REFUSED" },
    { "restock", "RESTOCK" },
    { "restock_fee", "RESTOCK" }, /* with " -<fee>%" when there is one */
    { "warranty_repair", "WARRANTY REPAIR" },
    { "warranty_exchange", "WARRANTY EXCHANGE" },
    { "paid_repair", "PAID REPAIR" },
    { "return_to_customer", "RETURN TO CUSTOMER" },
    { "quarantine", "QUARANTINE" },
};

static const struct {
    const char *word;
    const char *words;
} flag_words[] = {
    { "wipe_media", "WIPE MEDIA" },
    { "bill_customer", "BILL CUSTOMER" },
    { "manual_review", "MANUAL REVIEW" },
    { "customer_pays_freight", "CUSTOMER PAYS FREIGHT" },
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* A fee as people write it: "15", "12.5". */
static void fee_text(double pct, char *buf, size_t size)
{
    if (pct == floor(pct) && fabs(pct) < 1e9)
        snprintf(buf, size, "%.0f", pct);
    else
        snprintf(buf, size, "%.1f", pct);
}

const char *label_disposition_words(const char *disposition, double fee_pct, char *buf,
                                    size_t size)
{
    if (!disposition || size < 32)
        return NULL;
    for (size_t i = 0; i < N_ELEMS(dispositions); i++) {
        if (strcmp(disposition, dispositions[i].word) != 0)
            continue;
        if (strcmp(disposition, "restock_fee") == 0 && fee_pct != 0) {
            char fee[24];
            fee_text(fee_pct, fee, sizeof(fee));
            snprintf(buf, size, "%s -%s%%", dispositions[i].words, fee);
        } else {
            snprintf(buf, size, "%s", dispositions[i].words);
        }
        return buf;
    }
    return NULL;
}

const char *label_flag_words(const char *flag)
{
    for (size_t i = 0; flag && i < N_ELEMS(flag_words); i++)
        if (strcmp(flag, flag_words[i].word) == 0)
            return flag_words[i].words;
    return NULL;
}

int label_format_parse(const char *s, label_format_t *out)
{
    static const char *const names[] = { [LABEL_ZPL] = "zpl", [LABEL_PDF] = "pdf",
                                         [LABEL_PNG] = "png" };
    for (size_t i = 0; s && i < N_ELEMS(names); i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (label_format_t)i;
            return 0;
        }
    return -EINVAL;
}

int label_size_parse(const char *s, label_size_t *out)
{
    if (s && strcmp(s, "4x6") == 0)
        *out = LABEL_4X6;
    else if (s && strcmp(s, "2x1") == 0)
        *out = LABEL_2X1;
    else
        return -EINVAL;
    return 0;
}

int label_dpi_parse(const char *s, int *out)
{
    if (s && strcmp(s, "203") == 0)
        *out = 203;
    else if (s && strcmp(s, "300") == 0)
        *out = 300;
    else
        return -EINVAL;
    return 0;
}

/* ---- the layout ---------------------------------------------------------------- */

typedef struct {
    layout_t *lay;
    size_t cap;
    int dpi;
    int err; /* first error, sticky: later adds do nothing */
} builder_t;

/* Record the first error only. */
static void fail(builder_t *b, int rc)
{
    if (rc < 0 && !b->err)
        b->err = rc;
}

/* Inches to dots. */
static int D(const builder_t *b, double in)
{
    return (int)lround(in * b->dpi);
}

static layout_el_t *add(builder_t *b, layout_kind_t kind, int x, int y, int w, int h)
{
    if (b->err)
        return NULL;
    layout_t *lay = b->lay;
    if (lay->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        layout_el_t *el = realloc(lay->el, cap * sizeof(*el));
        if (!el) {
            b->err = -ENOMEM;
            return NULL;
        }
        lay->el = el;
        b->cap = cap;
    }
    layout_el_t *e = &lay->el[lay->n++];
    *e = (layout_el_t){ .kind = kind, .x = x, .y = y, .w = w, .h = h, .lines = 1 };
    return e;
}

/*
 * Lines greedy word wrapping takes for t at per_line code points a line (a line of
 * the average width; a renderer whose font is narrower needs no more).
 */
static int wrap_lines(const char *t, size_t per_line)
{
    int lines = 1;
    size_t col = 0;
    for (const char *p = t; *p;) {
        size_t wb = strcspn(p, " "), w = 0;
        for (size_t i = 0; i < wb; i++)
            w += ((unsigned char)p[i] & 0xC0) != 0x80;
        if (col && col + 1 + w > per_line) {
            lines++;
            col = 0;
        }
        col += (col ? 1 : 0) + w;
        while (col > per_line) { /* a word longer than a line breaks */
            lines++;
            col -= per_line;
        }
        p += wb;
        p += strspn(p, " ");
    }
    return lines;
}

/*
 * A text block: s (untrusted, may be NULL) cleaned and cut to what fits `lines` lines
 * of height h across w. Returns the height it takes (0 when s is NULL or empty): all
 * `lines`, or with `snug` only those the text needs, so that a short reason leaves its
 * room to the rest of the label.
 */
static int add_text_block(builder_t *b, const char *s, int x, int y, int w, int h, int lines,
                          bool bold, bool center, bool snug)
{
    if (!s || !*s)
        return 0;
    size_t per_line = (size_t)(w / (h * TEXT_CHAR_WIDTH));
    per_line = per_line ? per_line : 1;
    char *t = text_clean(s, per_line * (size_t)lines);
    if (!t) {
        fail(b, -ENOMEM);
        return 0;
    }
    if (snug) {
        int need = wrap_lines(t, per_line);
        lines = need < lines ? need : lines;
    }
    layout_el_t *e = add(b, LAYOUT_TEXT, x, y, w, h);
    if (!e) {
        free(t);
        return 0;
    }
    e->text = t;
    e->lines = lines;
    e->bold = bold;
    e->center = center;
    /* All its lines: where a renderer wraps depends on its font, not on this count. */
    return h * lines;
}

static int add_text(builder_t *b, const char *s, int x, int y, int w, int h, int lines,
                    bool bold, bool center)
{
    return add_text_block(b, s, x, y, w, h, lines, bold, center, false);
}

/* The first reason as a packer reads it (label_reason_words), cut to fit. */
static int add_reason(builder_t *b, const char *reason, int x, int y, int w, int h, int lines,
                      bool center, bool snug)
{
    if (!reason || !*reason)
        return 0;
    char *words = label_reason_words(reason);
    if (!words) {
        fail(b, -ENOMEM);
        return 0;
    }
    int used = add_text_block(b, words, x, y, w, h, lines, false, center, snug);
    free(words);
    return used;
}

/* The largest line height up to hmax at which n capitals fit across w. */
static int caps_height(int w, size_t n, int hmax)
{
    int h = (int)(w / ((n ? n : 1) * TEXT_CAPS_WIDTH));
    return h < hmax ? h : hmax;
}

/*
 * The disposition in the largest type up to hmax that keeps each line whole across w:
 * one line, or (max_lines 2) two lines split at the space that balances them, when
 * that makes the type clearly larger ("WARRANTY" / "EXCHANGE" read across a dock).
 * Unknown or missing dispositions never print as big words: a person must look.
 */
static int add_disposition(builder_t *b, const label_t *l, int x, int y, int w, int hmax,
                           int max_lines)
{
    char buf[64];
    const char *words = l->refusal ? "REFUSED"
                                   : label_disposition_words(l->disposition,
                                                             l->restocking_fee_pct, buf,
                                                             sizeof(buf));
    if (!words)
        words = "SEE SUPERVISOR";
    size_t len = strlen(words), split = 0;
    int h = caps_height(w, len, hmax), best = h;
    for (size_t i = 1; max_lines >= 2 && i + 1 < len; i++) {
        /* Between words only: "RESTOCK -15%" keeps its fee beside it. */
        if (words[i] != ' ' || words[i + 1] < 'A' || words[i + 1] > 'Z')
            continue;
        int h2 = caps_height(w, i > len - i - 1 ? i : len - i - 1, hmax);
        /* Two lines only for a quarter larger type: they cost the label a line. */
        if (h2 * 4 > h * 5 && h2 > best) {
            split = i;
            best = h2;
        }
    }
    char first[64];
    const char *line[2] = { words, NULL };
    if (split) {
        snprintf(first, sizeof(first), "%.*s", (int)split, words);
        line[0] = first;
        line[1] = words + split + 1;
        h = best;
    }
    int used = 0;
    for (int i = 0; i < 2 && line[i]; i++) {
        size_t n = b->lay->n;
        used += add_text(b, line[i], x, y + used, w, h, 1, true, true);
        if (b->lay->n > n)
            b->lay->el[n].whole = true;
    }
    return used;
}

/*
 * The line under the disposition: why a refused unit goes back, or that the
 * disposition is missing or unknown. 0 with *out malloc'd or NULL (no line), -ENOMEM.
 */
static int subtitle(const label_t *l, char **out)
{
    char buf[64];
    const char *s = NULL;
    *out = NULL;
    if (l->refusal)
        s = "Refused at scan: return as received";
    else if (l->disposition && strcmp(l->disposition, "refuse") == 0)
        s = "Not accepted: return as received";
    else if (!l->disposition)
        s = "No disposition";
    else if (!label_disposition_words(l->disposition, 0, buf, sizeof(buf))) {
        if (asprintf(out, "Unknown disposition \"%s\"", l->disposition) < 0) {
            *out = NULL;
            return -ENOMEM;
        }
        return 0;
    }
    if (s && !(*out = strdup(s)))
        return -ENOMEM;
    return 0;
}

/*
 * The flags in words, joined: "WIPE MEDIA / MANUAL REVIEW". A flag this build does not
 * know is still shown, as given. 0 with *out malloc'd or NULL (no flags), -ENOMEM.
 */
static int flags_text(const label_t *l, char **out)
{
    size_t len = 0;
    *out = NULL;
    if (!l->n_flags || !l->flags)
        return 0;
    FILE *f = open_memstream(out, &len);
    if (!f)
        return -ENOMEM;
    int bad = 0;
    for (size_t i = 0; i < l->n_flags; i++) {
        const char *w = label_flag_words(l->flags[i]);
        bad |= fprintf(f, "%s%s", i ? " / " : "", w ? w : l->flags[i] ? l->flags[i] : "") < 0;
    }
    if (fclose(f) != 0 || bad) {
        free(*out);
        *out = NULL;
        return -ENOMEM;
    }
    return 0;
}

/*
 * A stored time in the process's local zone (config_timezone_apply: the dock's), as
 * people read it: "2026-11-21 07:15 CET" for "2026-11-21T06:15:38.436Z". Stored times
 * stay UTC; only what a person reads is local. Any RFC 3339 offset is understood.
 * Returns 0 with buf filled, or -EINVAL for text that is not such a time.
 */
int label_time_words(const char *rfc3339, char *buf, size_t size)
{
    int y, mo, d, h, mi, sec, n = 0, oh = 0, om = 0;
    if (!rfc3339 || size < 32 ||
        sscanf(rfc3339, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
        return -EINVAL;
    const char *zone = rfc3339 + n;
    if (*zone == '.')
        zone += 1 + strspn(zone + 1, "0123456789");
    int sign = 0, used = 0;
    if (strcmp(zone, "Z") == 0 || strcmp(zone, "z") == 0)
        sign = 1;
    else if ((*zone == '+' || *zone == '-') &&
             sscanf(zone + 1, "%2d:%2d%n", &oh, &om, &used) == 2 && zone[1 + used] == '\0' &&
             used == 5)
        sign = *zone == '-' ? -1 : 1;
    if (!sign || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
        oh > 23 || om > 59)
        return -EINVAL;
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                     .tm_min = mi, .tm_sec = sec };
    time_t t = timegm(&tm) - sign * (oh * 3600 + om * 60);
    struct tm local;
    if (!localtime_r(&t, &local) || strftime(buf, size, "%Y-%m-%d %H:%M %Z", &local) == 0)
        return -EINVAL;
    return 0;
}

/*
 * The footer: station and local time, "dock-1   2026-03-04 15:05 CET"; a time in
 * another form is shown as given. 0 with *out malloc'd or NULL (neither known), -ENOMEM.
 */
static int footer_text(const label_t *l, char **out)
{
    const char *station = l->station && *l->station ? l->station : NULL;
    const char *t = l->time && *l->time ? l->time : NULL;
    char when[64] = "";
    *out = NULL;
    if (!station && !t)
        return 0;
    if (t && label_time_words(t, when, sizeof(when)) < 0)
        when[0] = '\0';
    if (asprintf(out, "%s%s%s", station ? station : "", station && t ? "   " : "",
                 when[0] ? when : t ? t : "") < 0) {
        *out = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* ---- the reason in plain words ------------------------------------------------- */

static bool is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool is_alnum(char c)
{
    return is_lower(c) || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/*
 * The length of the contract word (lowercase letters joined by '_', such as
 * act_of_god) that starts at t[i] and stands alone (not part of "SN_1a"), or 0.
 */
static size_t contract_word(const char *t, size_t i)
{
    const char *s = t + i;
    if (!is_lower(s[0]) || (i > 0 && (is_alnum(t[i - 1]) || t[i - 1] == '_')))
        return 0;
    size_t n = 0;
    bool joined = false;
    while (is_lower(s[n]) || (s[n] == '_' && is_lower(s[n + 1]) && n > 0)) {
        joined |= s[n] == '_';
        n++;
    }
    return joined && !is_alnum(s[n]) && s[n] != '_' ? n : 0;
}

/* The length of the aside "(...)" starting at s (nested ones inside), 0 if unclosed. */
static size_t aside_len(const char *s)
{
    int depth = 0;
    for (size_t i = 0; s[i]; i++) {
        depth += s[i] == '(' ? 1 : s[i] == ')' ? -1 : 0;
        if (depth == 0)
            return i + 1;
    }
    return 0;
}

char *label_reason_words(const char *text)
{
    if (!text)
        return NULL;
    size_t n = strlen(text), o = 0;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        if (text[i] == '(') {
            size_t a = aside_len(text + i);
            /* "(3y from purchase date; Table 1: Solid State Drives: exchange)": the
             * evidence for the record (period, basis, the policy table cited, the fee
             * arithmetic) holds ':' or ';'. A packer needs the verdict, not the source. */
            if (a && (memchr(text + i, ';', a) || memchr(text + i, ':', a))) {
                while (o > 0 && out[o - 1] == ' ')
                    o--;
                i += a;
                continue;
            }
        }
        size_t w = contract_word(text, i);
        for (size_t k = 0; k < w; k++)
            out[o++] = text[i + k] == '_' ? ' ' : text[i + k];
        if (w == 0)
            out[o++] = text[i];
        i += w ? w : 1;
    }
    out[o] = '\0';
    /* Trim, and a sentence starts with a capital. */
    size_t lead = strspn(out, " ");
    memmove(out, out + lead, o - lead + 1);
    o -= lead;
    while (o > 0 && out[o - 1] == ' ')
        out[--o] = '\0';
    if (o == 0) {
        /* Nothing but an aside: the whole text is better than none. */
        free(out);
        return strdup(text);
    }
    if (out[0] >= 'a' && out[0] <= 'z')
        out[0] = (char)(out[0] - 'a' + 'A');
    return out;
}

/*
 * Bytes outside printable ASCII, and the characters ZPL treats as commands or escapes
 * (^ ~ _ \) and % itself, as %XX: barcode data then needs no ZPL escaping at all, and
 * a scanner reading the symbol gets the RMA and serial back unambiguously.
 */
static int pct_encode(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int plain = *p > 0x20 && *p < 0x7F && !strchr("%^~_\\", *p);
        if ((plain ? fputc(*p, f) : fprintf(f, "%%%02X", *p)) < 0)
            return -ENOMEM;
    }
    return 0;
}

/*
 * The DataMatrix content: "RMAD RCPT-<id> RMA:<rma> SN:<serial>" (proto/labelcode.h:
 * stations recognise it and never take it for a serial), a part left out when
 * unknown. 0 with *out malloc'd or NULL (neither RMA nor serial known), -ENOMEM.
 */
static int matrix_data(const label_t *l, char **out)
{
    bool rma = l->rma && *l->rma, serial = l->serial && *l->serial;
    size_t len = 0;
    *out = NULL;
    if (!rma && !serial)
        return 0;
    FILE *f = open_memstream(out, &len);
    if (!f)
        return -ENOMEM;
    int bad = 0;
    char rcpt[LABELCODE_RECEIPT_MAX];
    if (labelcode_receipt(l->receipt_id, rcpt) == 0)
        bad |= fprintf(f, LABELCODE_DATAMATRIX_PREFIX "%s ", rcpt) < 0;
    if (rma)
        bad |= fputs("RMA:", f) < 0 || pct_encode(f, l->rma) < 0;
    if (serial)
        bad |= fputs(rma ? " SN:" : "SN:", f) < 0 || pct_encode(f, l->serial) < 0;
    if (fclose(f) != 0 || bad) {
        free(*out);
        *out = NULL;
        return -ENOMEM;
    }
    return 0;
}

/*
 * A barcode of data for a box w wide: the largest module from `want` down to `least`
 * dots that fits the symbol and its quiet zones (`quiet` modules each side). For
 * Code 128, h is the bar height; for a DataMatrix the box is w x w and h is ignored.
 * The element is the symbol itself, at (0, 0): the caller places it. Returns it, or
 * NULL when it does not fit (or on error: b->err).
 */
static layout_el_t *add_barcode(builder_t *b, barcode_kind_t kind, const char *data, int w,
                                int h, int want, int least, int quiet)
{
    barcode_t *bc = NULL;
    if (b->err)
        return NULL;
    int rc = barcode_encode(kind, data, strlen(data), &bc);
    if (rc < 0) {
        /* Data too long for a DataMatrix only costs the symbol; anything else fails. */
        if (rc != -EINVAL || kind != BARCODE_KIND_DATAMATRIX)
            b->err = rc == -ENOMEM ? rc : -EIO;
        return NULL;
    }
    int span = barcode_columns(bc) + 2 * quiet;
    int module = want;
    while (module > least && span * module > w)
        module--;
    if (span * module > w || (kind == BARCODE_KIND_DATAMATRIX &&
                               (barcode_rows(bc) + 2 * quiet) * module > w)) {
        barcode_destroy(&bc);
        return NULL;
    }
    char *copy = strdup(data);
    int cols = barcode_columns(bc) * module;
    layout_el_t *e = copy ? add(b, LAYOUT_BARCODE, 0, 0, cols,
                                kind == BARCODE_KIND_DATAMATRIX ? barcode_rows(bc) * module : h)
                          : NULL;
    if (!e) {
        fail(b, -ENOMEM);
        free(copy);
        barcode_destroy(&bc);
        return NULL;
    }
    e->module = module;
    e->quiet = quiet * module;
    e->text = copy;
    e->bc = bc;
    return e;
}

/* "RECEIPT 1234" and its Code 128, centred in [x, x+w), bars h tall. Height used. */
static int add_receipt(builder_t *b, const label_t *l, int x, int y, int w, int h, int hr_h,
                       int want, int least)
{
    char digits[24], words[40], code[LABELCODE_RECEIPT_MAX];
    snprintf(digits, sizeof(digits), "%" PRId64, l->receipt_id);
    snprintf(words, sizeof(words), "RECEIPT %s", digits);
    /* RCPT-000012, not the bare id: a station must tell it from a numeric serial. */
    if (labelcode_receipt(l->receipt_id, code) < 0)
        snprintf(code, sizeof(code), "%s", digits);
    layout_el_t *e = add_barcode(b, BARCODE_KIND_CODE128, code, w, h, want, least, 10);
    if (!e) {
        /* A receipt barcode is the label's purpose: not fitting is a layout bug. */
        fail(b, -EIO);
        return 0;
    }
    e->x = x + (w - e->w) / 2;
    e->y = y;
    return h + add_text(b, words, x, y + h, w, hr_h, 1, false, true);
}

/* Drop the elements from index n on (a top block that did not fit). */
static void truncate_to(builder_t *b, size_t n)
{
    layout_t *lay = b->lay;
    while (lay->n > n) {
        layout_el_t *e = &lay->el[--lay->n];
        free(e->text);
        barcode_destroy(&e->bc);
    }
}

/* Move the elements from index `from` to the end down by dy dots. */
static void shift_from(builder_t *b, size_t from, int dy)
{
    for (size_t i = from; i < b->lay->n; i++)
        b->lay->el[i].y += dy;
}

/* Type sizes of the 4x6 top block, in inches: the largest that fits is used. */
typedef struct {
    double disp_h;      /* disposition line height, at most */
    int disp_lines;     /* 1, or 2 when that makes it larger */
    double row_h;       /* RMA, unit, serial, vendor, model */
    double reason_h;
    int reason_lines;
} sizes_4x6_t;

static const sizes_4x6_t sizes_4x6[] = {
    { 0.90, 2, 0.32, 0.32, 5 }, /* a reason takes only the lines it needs */
    { 0.70, 2, 0.32, 0.25, 4 },
    { 0.55, 2, 0.28, 0.22, 3 },
    { 0.60, 1, 0.26, 0.20, 3 }, /* fits the most: every field, two lines of flags */
};

/* Where the groups of the top block start, so the free height can go between them. */
enum { GROUP_FIELDS, GROUP_REASON, GROUP_END, N_GROUPS };

/*
 * The top of the 4x6 label: the disposition and what goes with it, a rule, the fields,
 * the reason. Returns the y under it; group[] gets each group's first element.
 */
static int top_4x6(builder_t *b, const label_t *l, const sizes_4x6_t *sz, int x, int y, int w,
                   size_t group[N_GROUPS])
{
    int gap = D(b, 0.06);
    char *t = NULL;
    y += add_disposition(b, l, x, y, w, D(b, sz->disp_h), sz->disp_lines) + gap;
    fail(b, subtitle(l, &t));
    if (t) {
        /* Its words are rmad's own: smaller type rather than a cut sentence. */
        int sub_h = (int)(w / ((double)text_cp_count(t) * TEXT_CHAR_WIDTH));
        y += add_text(b, t, x, y, w, sub_h < D(b, 0.24) ? sub_h : D(b, 0.24), 1, false, true);
    }
    free(t);
    if (l->restocking_fee_pct != 0 &&
        !(l->disposition && strcmp(l->disposition, "restock_fee") == 0)) {
        char fee[24], line[48];
        fee_text(l->restocking_fee_pct, fee, sizeof(fee));
        snprintf(line, sizeof(line), "RESTOCKING FEE %s%%", fee);
        y += add_text(b, line, x, y, w, D(b, 0.25), 1, true, true);
    }
    fail(b, flags_text(l, &t));
    y += add_text_block(b, t, x, y, w, D(b, 0.25), 2, true, true, true);
    free(t);

    group[GROUP_FIELDS] = b->lay->n;
    y += gap;
    add(b, LAYOUT_RULE, x, y, w, D(b, 0.03));
    y += D(b, 0.03) + gap;
    static const char *const keys[] = { "RMA", "Unit", "Serial", "Vendor", "Model" };
    const char *vals[] = { l->rma, l->unit, l->serial, l->vendor, l->model };
    int key_w = D(b, sz->row_h * 3.9), row_h = D(b, sz->row_h); /* "Vendor" and a space */
    for (size_t i = 0; i < N_ELEMS(keys); i++) {
        if (!vals[i] || !*vals[i])
            continue;
        add_text(b, keys[i], x, y, key_w, row_h, 1, false, false);
        y += add_text(b, vals[i], x + key_w, y, w - key_w, row_h, 1, true, false);
    }

    group[GROUP_REASON] = b->lay->n;
    if (l->reason && *l->reason)
        y += gap + add_reason(b, l->reason, x, y + gap, w, D(b, sz->reason_h),
                              sz->reason_lines, false, true);
    group[GROUP_END] = b->lay->n;
    return y;
}

static void layout_4x6(builder_t *b, const label_t *l)
{
    layout_t *lay = b->lay;
    int m = D(b, 0.15), x = m, w = lay->width - 2 * m;
    char *t = NULL;

    /* Bottom up first: station and time, then the receipt barcode and the DataMatrix. */
    int foot_h = D(b, 0.2), foot_y = lay->height - m - foot_h;
    fail(b, footer_text(l, &t));
    add_text(b, t, x, foot_y, w, foot_h, 1, false, false);
    free(t);

    int zone_bottom = foot_y - D(b, 0.06), zone_top = foot_y, dm_w = 0;
    fail(b, matrix_data(l, &t));
    if (t) {
        layout_el_t *e = add_barcode(b, BARCODE_KIND_DATAMATRIX, t, D(b, 1.3), 0,
                                     D(b, 0.025), D(b, 0.015), 2);
        if (e) {
            /* Bottom right, its quiet zone inside the margins. */
            e->x = x + w - e->quiet - e->w;
            e->y = zone_bottom - e->quiet - e->h;
            dm_w = e->w + 2 * e->quiet;
            zone_top = e->y - e->quiet;
        }
        free(t);
    }
    if (l->receipt_id > 0) {
        int hr_h = D(b, 0.2), bar_h = D(b, 0.9);
        int cw = w - dm_w - (dm_w ? D(b, 0.1) : 0), top = zone_bottom - bar_h - hr_h;
        add_receipt(b, l, x, top, cw, bar_h, hr_h, D(b, 0.015), D(b, 0.01));
        zone_top = top < zone_top ? top : zone_top;
    }
    zone_top -= D(b, 0.1);

    /* The largest type whose top block fits above the barcodes. */
    size_t first = lay->n, group[N_GROUPS];
    int y = m;
    for (size_t i = 0; i < N_ELEMS(sizes_4x6) && !b->err; i++) {
        truncate_to(b, first);
        y = top_4x6(b, l, &sizes_4x6[i], x, m, w, group);
        if (y <= zone_top)
            break;
    }
    /*
     * What is left goes between the groups rather than into one empty band above the
     * barcodes: the fields and the reason move down, each by its share.
     */
    int spare = zone_top - y;
    if (spare > 0 && !b->err) {
        int gaps = group[GROUP_REASON] < group[GROUP_END] ? 3 : 2;
        shift_from(b, group[GROUP_FIELDS], spare / gaps);
        if (gaps == 3)
            shift_from(b, group[GROUP_REASON], spare / gaps);
    }
}

/*
 * "RMA-1001" as it is, "RMA 1001" with its prefix: an RMA number that already starts
 * with the word is not given it twice. 0 with *out malloc'd or NULL (no id), -ENOMEM.
 */
static int id_line(const char *prefix, const char *id, char **out)
{
    *out = NULL;
    if (!id || !*id)
        return 0;
    size_t n = strlen(prefix);
    bool has = strncasecmp(id, prefix, n) == 0;
    if (asprintf(out, "%s%s%s", has ? "" : prefix, has ? "" : " ", id) < 0) {
        *out = NULL;
        return -ENOMEM;
    }
    return 0;
}

static void layout_2x1(builder_t *b, const label_t *l)
{
    layout_t *lay = b->lay;
    int m = D(b, 0.06), x = m, w = lay->width - 2 * m, y = m;

    y += add_disposition(b, l, x, y, w, D(b, 0.26), 1) + D(b, 0.02);
    /* A unit received without an RMA is known here by its serial. */
    bool rma = l->rma && *l->rma;
    char *line = NULL;
    fail(b, id_line(rma ? "RMA" : "SN", rma ? l->rma : l->serial, &line));
    /* The unit of an RMA of several goes with its number: "RMA-4001 2/4". */
    if (line && rma && l->unit) {
        char *with = NULL, frac[24];
        int k = 0, n = 0;
        if (sscanf(l->unit, "%d of %d", &k, &n) == 2)
            snprintf(frac, sizeof(frac), "%d/%d", k, n);
        else
            snprintf(frac, sizeof(frac), "%s", l->unit);
        fail(b, asprintf(&with, "%s  %s", line, frac) < 0 ? -ENOMEM : 0);
        if (with) {
            free(line);
            line = with;
        }
    }
    y += add_text(b, line, x, y, w, D(b, 0.15), 1, true, true) + D(b, 0.03);
    free(line);
    int hr_h = D(b, 0.12), bottom = lay->height - m;
    if (l->receipt_id > 0)
        add_receipt(b, l, x, y, w, bottom - hr_h - y, hr_h, D(b, 0.01), D(b, 0.01));
    else
        /* A refusal has no receipt: the space says why instead. */
        add_reason(b, l->reason, x, y, w, D(b, 0.11), (bottom - y) / D(b, 0.11), true, false);
}

int layout_build(const label_t *l, label_size_t size, int dpi, layout_t **out)
{
    if (!l || (dpi != 203 && dpi != 300) || (size != LABEL_4X6 && size != LABEL_2X1))
        return -EINVAL;
    layout_t *lay = calloc(1, sizeof(*lay));
    if (!lay)
        return -ENOMEM;
    builder_t b = { .lay = lay, .dpi = dpi };
    lay->dpi = dpi;
    lay->width = D(&b, size == LABEL_4X6 ? 4 : 2);
    lay->height = D(&b, size == LABEL_4X6 ? 6 : 1);
    if (size == LABEL_4X6)
        layout_4x6(&b, l);
    else
        layout_2x1(&b, l);
    if (b.err) {
        layout_destroy(&lay);
        return b.err;
    }
    *out = lay;
    return 0;
}

void layout_destroy(layout_t **p)
{
    if (!p || !*p)
        return;
    for (size_t i = 0; i < (*p)->n; i++) {
        free((*p)->el[i].text);
        barcode_destroy(&(*p)->el[i].bc);
    }
    free((*p)->el);
    free(*p);
    *p = NULL;
}

/* ---- rendering ------------------------------------------------------------------ */

int render_to_memory(int (*fn)(const void *arg, FILE *f), const void *arg, uint8_t **out,
                     size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return -ENOMEM;
    int rc = fn(arg, f);
    if (fclose(f) != 0 && rc == 0)
        rc = -ENOMEM;
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = (uint8_t *)buf;
    *len = n;
    return 0;
}

typedef struct {
    const layout_t *lay;
    label_format_t fmt;
} job_t;

static int render_job(const void *arg, FILE *f)
{
    const job_t *j = arg;
    return j->fmt == LABEL_ZPL ? zpl_render(j->lay, f) : pdf_render(j->lay, j->fmt == LABEL_PNG, f);
}

int label_render(const label_t *l, label_format_t fmt, label_size_t size, int dpi,
                 uint8_t **out, size_t *len)
{
    if (fmt != LABEL_ZPL && fmt != LABEL_PDF && fmt != LABEL_PNG)
        return -EINVAL;
    layout_t *lay = NULL;
    int rc = layout_build(l, size, dpi, &lay);
    if (rc < 0)
        return rc;
    job_t job = { lay, fmt };
    rc = render_to_memory(render_job, &job, out, len);
    layout_destroy(&lay);
    return rc;
}
