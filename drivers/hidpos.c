/*
 * HID POS scanners (drivers/hidpos.h): a HID report descriptor parser that looks for
 * the Scanned Data Report of usage page 0x8C, and the decoder of those reports.
 *
 * The descriptor comes from the device, so it is untrusted input: every item is
 * bounds-checked, nesting and sizes are capped, and anything this module cannot lay
 * out exactly is refused with a reason instead of being decoded by guesswork.
 */
#include "drivers/hidpos.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/scan.h"

static _Thread_local char reason_buf[160];

__attribute__((format(printf, 1, 2))) static const char *reasonf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason_buf, sizeof(reason_buf), fmt, ap);
    va_end(ap);
    return reason_buf;
}

/* ---- report descriptor ------------------------------------------------------------ */

/* Item types and tags (HID 1.11, 6.2.2). */
#define ITEM_MAIN   0
#define ITEM_GLOBAL 1
#define ITEM_LOCAL  2
#define ITEM_LONG   0xFE

#define MAIN_INPUT      0x8
#define MAIN_OUTPUT     0x9
#define MAIN_COLLECTION 0xA
#define MAIN_FEATURE    0xB
#define MAIN_END_COLL   0xC

#define GLOBAL_USAGE_PAGE   0x0
#define GLOBAL_REPORT_SIZE  0x7
#define GLOBAL_REPORT_ID    0x8
#define GLOBAL_REPORT_COUNT 0x9
#define GLOBAL_PUSH         0xA
#define GLOBAL_POP          0xB

#define LOCAL_USAGE     0x0
#define LOCAL_USAGE_MIN 0x1
#define LOCAL_USAGE_MAX 0x2

#define COLL_APPLICATION 0x01

#define INPUT_CONSTANT 0x01
#define INPUT_VARIABLE 0x02

/* Usages (page << 16 | id) this module reads. */
#define PAGE_POS        0x8Cu
#define USAGE_SYM1      0x008C00FBu
#define USAGE_DATA      0x008C00FEu
#define USAGE_CONTINUED 0x008C00FFu
#define USAGE_BYTECOUNT 0x0001003Bu
/* Output usages the host sets to signal (POS 1.02, 0x8C). */
#define USAGE_GOOD_LED    0x008C007Du
#define USAGE_ERROR_BEEP  0x008C0085u
#define USAGE_GOOD_BEEP   0x008C0086u
#define USAGE_NOFILE_BEEP 0x008C0087u

/* Caps on what a sane descriptor needs; beyond them it is refused. */
#define MAX_DEPTH    16     /* collection nesting and push/pop stack */
#define MAX_USAGES   64     /* local Usage items (or ranges) before one main item */
#define MAX_FIELD_BITS 32   /* Report Size */
#define MAX_REPORT_BYTES 4096

typedef struct {
    uint32_t usage_page, report_size, report_count;
    uint8_t report_id;
} globals_t;

/* A field of interest found so far: where, and in which report. */
typedef struct {
    bool found;
    uint8_t report_id;
    size_t bit;         /* offset in the report's data, Report ID not included */
    uint32_t size;      /* bits of one field */
    uint32_t count;     /* consecutive fields (Decoded Data) */
} field_t;

typedef struct {
    globals_t g, stack[MAX_DEPTH];
    size_t nstack;
    struct { uint32_t lo, hi; } usages[MAX_USAGES]; /* Usage items and Min/Max ranges */
    size_t nusages;         /* ranges */
    uint32_t usage_min;
    bool has_min;
    int depth;
    int pos_app_depth;      /* depth of the enclosing bar code scanner collection, or -1 */
    size_t in_bits[256];    /* input bits so far, per Report ID */
    bool ids_used;          /* some item had a Report ID */
    field_t data, count, cont, sym[3];
    size_t out_bits[256];   /* output bits so far, per Report ID */
    field_t good, error, nofile, led;
    hidpos_layout_t *lay;
} parser_t;

/* The unsigned value of an item's data (little endian, 0..4 bytes). */
static uint32_t item_value(const uint8_t *d, size_t n)
{
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint32_t)d[i] << (8 * i);
    return v;
}

/* A local usage, with the usage page in effect applied to a short one. */
static uint32_t full_usage(const parser_t *ps, uint32_t v, size_t size)
{
    return size == 4 ? v : (ps->g.usage_page << 16) | (v & 0xFFFF);
}

static int add_usages(parser_t *ps, uint32_t lo, uint32_t hi, const char **reason)
{
    if (ps->nusages == MAX_USAGES) {
        *reason = "report descriptor: too many usages for one item";
        return -EINVAL;
    }
    ps->usages[ps->nusages].lo = lo;
    ps->usages[ps->nusages].hi = hi;
    ps->nusages++;
    return 0;
}

/* Application collections on page 0x8C that are bar code readers (POS 1.02, 3.1). */
static bool is_scanner_app(uint32_t usage)
{
    uint32_t id = usage & 0xFFFF;
    return usage >> 16 == PAGE_POS && id >= 0x01 && id <= 0x05;
}

/* Record the first occurrence of a field of interest. */
static void note_field(field_t *f, uint8_t id, size_t bit, uint32_t size, uint32_t count)
{
    if (f->found)
        return;
    *f = (field_t){ .found = true, .report_id = id, .bit = bit, .size = size, .count = count };
}

/* The field record for a usage of interest, or NULL. */
static field_t *interest(parser_t *ps, uint32_t u)
{
    if (u == USAGE_DATA)
        return &ps->data;
    if (u == USAGE_CONTINUED)
        return &ps->cont;
    if (u == USAGE_BYTECOUNT)
        return &ps->count;
    if (u >= USAGE_SYM1 && u < USAGE_SYM1 + 3)
        return &ps->sym[u - USAGE_SYM1];
    return NULL;
}

static const uint32_t interesting[] = { USAGE_SYM1, USAGE_SYM1 + 1, USAGE_SYM1 + 2,
                                        USAGE_DATA, USAGE_CONTINUED, USAGE_BYTECOUNT };

/*
 * Note the fields of interest of a variable Input item of count fields: field i has
 * the i-th declared usage (ranges counted out) and the fields beyond the declared
 * usages repeat the last one (HID 1.11, 6.2.2.8). Works on the ranges, never field
 * by field, so its cost does not depend on what sizes a device claims.
 */
static void note_fields(parser_t *ps, uint8_t id, size_t bit, uint32_t size, uint32_t count)
{
    uint64_t start = 0;  /* index of the first field of range r */
    for (size_t r = 0; r < ps->nusages && start < count; r++) {
        uint32_t lo = ps->usages[r].lo, hi = ps->usages[r].hi;
        for (size_t k = 0; k < sizeof(interesting) / sizeof(interesting[0]); k++) {
            uint32_t u = interesting[k];
            if (u < lo || u > hi || start + (u - lo) >= count)
                continue;
            uint64_t i = start + (u - lo);
            uint64_t run = 1;
            if (u == USAGE_DATA && u == hi) {
                /* Decoded Data as one Usage repeated over the fields, or listed again. */
                size_t q = r + 1;
                while (q < ps->nusages && ps->usages[q].lo == USAGE_DATA &&
                       ps->usages[q].hi == USAGE_DATA)
                    q++, run++;
                if (q == ps->nusages)
                    run = count - i;
            }
            if (run > count - i)
                run = count - i;
            note_field(interest(ps, u), id, bit + (size_t)i * size, size, (uint32_t)run);
        }
        start += (uint64_t)hi - lo + 1;
    }
}

/*
 * Note the feedback fields of a variable Output item: like note_fields, field i has
 * the i-th declared usage, counted over the ranges.
 */
static void note_out_fields(parser_t *ps, uint8_t id, size_t bit, uint32_t size, uint32_t count)
{
    static const uint32_t outs[] = { USAGE_GOOD_BEEP, USAGE_ERROR_BEEP, USAGE_NOFILE_BEEP,
                                     USAGE_GOOD_LED };
    field_t *f[] = { &ps->good, &ps->error, &ps->nofile, &ps->led };
    uint64_t start = 0;
    for (size_t r = 0; r < ps->nusages && start < count; r++) {
        uint32_t lo = ps->usages[r].lo, hi = ps->usages[r].hi;
        for (size_t k = 0; k < sizeof(outs) / sizeof(outs[0]); k++)
            if (outs[k] >= lo && outs[k] <= hi && start + (outs[k] - lo) < count)
                note_field(f[k], id, bit + (size_t)(start + (outs[k] - lo)) * size, size, 1);
        start += (uint64_t)hi - lo + 1;
    }
}

/* An Output item: note the feedback fields, advance the output report's bit counter. */
static int main_output(parser_t *ps, uint32_t flags, const char **reason)
{
    uint8_t id = ps->g.report_id;
    uint32_t size = ps->g.report_size, count = ps->g.report_count;
    size_t bit = ps->out_bits[id];
    if (size > MAX_FIELD_BITS || count > MAX_REPORT_BYTES * 8 ||
        bit + (size_t)size * count > (size_t)MAX_REPORT_BYTES * 8) {
        *reason = reasonf("report descriptor: output report %u is longer than %d bytes", id,
                          MAX_REPORT_BYTES);
        return -EINVAL;
    }
    if (ps->pos_app_depth >= 0 && (flags & (INPUT_CONSTANT | INPUT_VARIABLE)) == INPUT_VARIABLE &&
        ps->nusages > 0 && size >= 1)
        note_out_fields(ps, id, bit, size, count);
    ps->out_bits[id] = bit + (size_t)size * count;
    return 0;
}

/* An Input item: note its fields of interest, advance the report's bit counter. */
static int main_input(parser_t *ps, uint32_t flags, const char **reason)
{
    uint8_t id = ps->g.report_id;
    uint32_t size = ps->g.report_size, count = ps->g.report_count;
    size_t bit = ps->in_bits[id];
    if (size > MAX_FIELD_BITS) {
        *reason = reasonf("report descriptor: Report Size %u is larger than %d bits", size,
                          MAX_FIELD_BITS);
        return -EINVAL;
    }
    if (count > MAX_REPORT_BYTES * 8 ||
        bit + (size_t)size * count > (size_t)MAX_REPORT_BYTES * 8) {
        *reason = reasonf("report descriptor: input report %u is longer than %d bytes", id,
                          MAX_REPORT_BYTES);
        return -EINVAL;
    }
    ps->lay->input_ids[id / 8] |= (uint8_t)(1u << (id % 8));
    /* Values, not padding (Constant) and not lists of usage indexes (Array). */
    if (ps->pos_app_depth >= 0 && (flags & (INPUT_CONSTANT | INPUT_VARIABLE)) == INPUT_VARIABLE &&
        ps->nusages > 0)
        note_fields(ps, id, bit, size, count);
    ps->in_bits[id] = bit + (size_t)size * count;
    return 0;
}

static int main_item(parser_t *ps, uint8_t tag, uint32_t v, const char **reason)
{
    int rc = 0;
    switch (tag) {
    case MAIN_INPUT:
        rc = main_input(ps, v, reason);
        break;
    case MAIN_OUTPUT:
        rc = main_output(ps, v, reason);
        break;
    case MAIN_FEATURE:
        break;  /* settings: rmad changes none */
    case MAIN_COLLECTION:
        if (ps->depth == MAX_DEPTH) {
            *reason = "report descriptor: collections nested too deep";
            return -EINVAL;
        }
        if ((v & 0xFF) == COLL_APPLICATION && ps->pos_app_depth < 0 && ps->nusages > 0 &&
            is_scanner_app(ps->usages[0].lo))
            ps->pos_app_depth = ps->depth;
        ps->depth++;
        break;
    case MAIN_END_COLL:
        if (ps->depth == 0) {
            *reason = "report descriptor: End Collection without a Collection";
            return -EINVAL;
        }
        ps->depth--;
        if (ps->pos_app_depth == ps->depth)
            ps->pos_app_depth = -1;
        break;
    default:
        *reason = reasonf("report descriptor: unknown main item tag 0x%X", tag);
        return -EINVAL;
    }
    /* Local items apply to the next main item only. */
    ps->nusages = 0;
    ps->has_min = false;
    return rc;
}

static int global_item(parser_t *ps, uint8_t tag, uint32_t v, const char **reason)
{
    switch (tag) {
    case GLOBAL_USAGE_PAGE:
        ps->g.usage_page = v & 0xFFFF;
        break;
    case GLOBAL_REPORT_SIZE:
        ps->g.report_size = v;
        break;
    case GLOBAL_REPORT_COUNT:
        ps->g.report_count = v;
        break;
    case GLOBAL_REPORT_ID:
        if (v == 0 || v > 255) {
            *reason = reasonf("report descriptor: Report ID %u out of range", v);
            return -EINVAL;
        }
        ps->g.report_id = (uint8_t)v;
        ps->ids_used = true;
        break;
    case GLOBAL_PUSH:
        if (ps->nstack == MAX_DEPTH) {
            *reason = "report descriptor: Push nested too deep";
            return -EINVAL;
        }
        ps->stack[ps->nstack++] = ps->g;
        break;
    case GLOBAL_POP:
        if (ps->nstack == 0) {
            *reason = "report descriptor: Pop without Push";
            return -EINVAL;
        }
        ps->g = ps->stack[--ps->nstack];
        break;
    default:
        break;  /* logical/physical ranges, units: not needed to locate bytes */
    }
    return 0;
}

static int local_item(parser_t *ps, uint8_t tag, uint32_t v, size_t size, const char **reason)
{
    uint32_t u = full_usage(ps, v, size);
    switch (tag) {
    case LOCAL_USAGE:
        return add_usages(ps, u, u, reason);
    case LOCAL_USAGE_MIN:
        ps->usage_min = u;
        ps->has_min = true;
        return 0;
    case LOCAL_USAGE_MAX:
        if (!ps->has_min || u < ps->usage_min) {
            *reason = "report descriptor: bad Usage Minimum/Maximum";
            return -EINVAL;
        }
        ps->has_min = false;
        return add_usages(ps, ps->usage_min, u, reason);
    default:
        return 0;  /* designators, strings, delimiters: no bearing on the layout */
    }
}

/* A byte-aligned 8-bit field: its byte offset in the report (Report ID included). */
static int byte_field(const parser_t *ps, const field_t *f, const char *name, size_t *off,
                      const char **reason)
{
    if (f->size != 8 || f->bit % 8) {
        *reason = reasonf("%s is a %u-bit field at bit %zu, not a byte", name, f->size, f->bit);
        return -EINVAL;
    }
    *off = f->bit / 8 + (ps->ids_used ? 1 : 0);
    return 0;
}

/*
 * The output report for the station's answers: the one holding the first feedback
 * field declared. A device that numbers its reports but puts them in report 0 gets
 * none (it could not be addressed).
 */
static void make_feedback(const parser_t *ps, hidpos_feedback_t *fb)
{
    const field_t *f[] = { &ps->good, &ps->error, &ps->nofile, &ps->led };
    long *bits[] = { &fb->good_bit, &fb->error_bit, &fb->not_on_file_bit, &fb->led_bit };
    const field_t *first = NULL;
    *fb = (hidpos_feedback_t){ .good_bit = -1, .error_bit = -1, .not_on_file_bit = -1,
                               .led_bit = -1 };
    for (size_t k = 0; k < 4; k++)
        if (f[k]->found && (!first || f[k]->report_id == first->report_id))
            first = first ? first : f[k];
    if (!first || (ps->ids_used && first->report_id == 0))
        return;
    for (size_t k = 0; k < 4; k++)
        if (f[k]->found && f[k]->report_id == first->report_id)
            *bits[k] = (long)(f[k]->bit + (ps->ids_used ? 8 : 0));
    fb->found = true;
    fb->report_id = ps->ids_used ? first->report_id : 0;
    fb->report_len = (ps->out_bits[first->report_id] + 7) / 8 + (ps->ids_used ? 1 : 0);
}

int hidpos_feedback_report(const hidpos_layout_t *lay, hidpos_signal_t sig, uint8_t *buf,
                           size_t size, size_t *len)
{
    const hidpos_feedback_t *fb = &lay->fb;
    long on[2] = { -1, -1 };
    if (!fb->found)
        return -ENOTSUP;
    if (sig == HIDPOS_SIGNAL_GOOD) {
        on[0] = fb->good_bit;
        on[1] = fb->led_bit;
    } else {
        on[0] = fb->error_bit >= 0 ? fb->error_bit : fb->not_on_file_bit;
    }
    if (on[0] < 0 && on[1] < 0)
        return -ENOTSUP;
    if (fb->report_len > size)
        return -ENOBUFS;
    memset(buf, 0, fb->report_len);
    if (fb->report_id)
        buf[0] = fb->report_id;
    for (int i = 0; i < 2; i++)
        if (on[i] >= 0)
            buf[on[i] / 8] |= (uint8_t)(1u << (on[i] % 8));
    *len = fb->report_len;
    return 0;
}

/* Turn the fields found into a layout, or say why it cannot be decoded. */
static int make_layout(parser_t *ps, hidpos_layout_t *lay, const char **reason)
{
    const field_t *d = &ps->data;
    if (!d->found) {
        *reason = "bar code scanner collection without Decoded Data (0x8C:0xFE) input";
        return -EINVAL;
    }
    uint8_t id = d->report_id;
    if (ps->ids_used && id == 0) {
        *reason = "Decoded Data is in a report without Report ID, but the device numbers "
                  "its reports";
        return -EINVAL;
    }
    lay->report_id = ps->ids_used ? id : 0;
    lay->report_len = (ps->in_bits[id] + 7) / 8 + (ps->ids_used ? 1 : 0);
    if (d->size != 8 || d->bit % 8) {
        *reason = reasonf("Decoded Data fields are %u bits at bit %zu, not bytes", d->size,
                          d->bit);
        return -EINVAL;
    }
    lay->data_off = d->bit / 8 + (ps->ids_used ? 1 : 0);
    lay->data_len = d->count;
    int rc;
    if (ps->count.found && ps->count.report_id == id) {
        if ((rc = byte_field(ps, &ps->count, "Byte Count", &lay->count_off, reason)) < 0)
            return rc;
        lay->has_count = true;
    }
    size_t nsym = 0;
    for (int i = 0; i < 3; i++)
        nsym += ps->sym[i].found && ps->sym[i].report_id == id;
    if (nsym != 0 && nsym != 3) {
        *reason = "Symbology Identifier 1..3: some but not all are declared";
        return -EINVAL;
    }
    for (int i = 0; nsym && i < 3; i++) {
        if ((rc = byte_field(ps, &ps->sym[i], "Symbology Identifier", &lay->sym_off[i],
                             reason)) < 0)
            return rc;
    }
    lay->has_sym = nsym == 3;
    if (ps->cont.found && ps->cont.report_id == id) {
        lay->has_cont = true;
        lay->cont_bit = ps->cont.bit + (ps->ids_used ? 8 : 0);
    }
    make_feedback(ps, &lay->fb);
    return 0;
}

int hidpos_parse(const uint8_t *desc, size_t len, hidpos_layout_t *out, const char **reason)
{
    static const char *dummy;
    if (!reason)
        reason = &dummy;
    if (!desc || !out) {
        *reason = "no report descriptor";
        return -EINVAL;
    }
    if (len > HIDPOS_DESC_MAX) {
        *reason = reasonf("report descriptor of %zu bytes (at most %d accepted)", len,
                          HIDPOS_DESC_MAX);
        return -EINVAL;
    }
    hidpos_layout_t lay = { 0 };
    parser_t *ps = calloc(1, sizeof(*ps));
    if (!ps) {
        *reason = "out of memory";
        return -ENOMEM;
    }
    ps->pos_app_depth = -1;
    ps->lay = &lay;
    bool scanner_seen = false;
    int rc = 0;
    size_t i = 0;
    while (i < len && rc == 0) {
        uint8_t prefix = desc[i];
        if (prefix == ITEM_LONG) {
            /* Long items (none defined by HID 1.11): skip their data. */
            if (i + 2 >= len || i + 3 + desc[i + 1] > len) {
                *reason = reasonf("report descriptor: long item at byte %zu runs past the end",
                                  i);
                rc = -EINVAL;
                break;
            }
            i += 3 + desc[i + 1];
            continue;
        }
        size_t size = prefix & 3;
        if (size == 3)
            size = 4;
        uint8_t type = (prefix >> 2) & 3, tag = prefix >> 4;
        if (i + 1 + size > len) {
            *reason = reasonf("report descriptor: item at byte %zu runs past the end", i);
            rc = -EINVAL;
            break;
        }
        uint32_t v = item_value(desc + i + 1, size);
        i += 1 + size;
        switch (type) {
        case ITEM_MAIN:
            rc = main_item(ps, tag, v, reason);
            scanner_seen = scanner_seen || ps->pos_app_depth >= 0;
            break;
        case ITEM_GLOBAL:
            rc = global_item(ps, tag, v, reason);
            break;
        case ITEM_LOCAL:
            rc = local_item(ps, tag, v, size, reason);
            break;
        default:
            *reason = reasonf("report descriptor: reserved item type at byte %zu", i - 1 - size);
            rc = -EINVAL;
        }
    }
    if (rc == 0 && ps->depth != 0) {
        *reason = "report descriptor: Collection without End Collection";
        rc = -EINVAL;
    }
    if (rc == 0 && !scanner_seen)
        rc = -ENOENT;
    if (rc == 0)
        rc = make_layout(ps, &lay, reason);
    free(ps);
    if (rc == 0)
        *out = lay;
    return rc;
}

/* ---- reports -------------------------------------------------------------------- */

struct hidpos {
    hidpos_layout_t lay;
    size_t max;             /* longest scan, AIM id included */
    bool started;           /* a scan's first report has arrived, more follow */
    bool discarding;        /* that scan was reported too long: drop to its end */
    uint8_t aim[3];         /* its AIM id, or zeros */
    size_t len;
    uint8_t buf[];          /* max bytes */
};

hidpos_t *hidpos_new(const hidpos_layout_t *layout, size_t max_len)
{
    if (!layout)
        return NULL;
    if (max_len == 0)
        max_len = SCAN_MAX_LEN_DEFAULT;
    hidpos_t *p = calloc(1, sizeof(*p) + max_len);
    if (!p)
        return NULL;
    p->lay = *layout;
    p->max = max_len;
    return p;
}

void hidpos_destroy(hidpos_t **p)
{
    if (!p || !*p)
        return;
    free(*p);
    *p = NULL;
}

static void reset(hidpos_t *p)
{
    p->started = false;
    p->discarding = false;
    p->len = 0;
    memset(p->aim, 0, sizeof(p->aim));
}

bool hidpos_pending(const hidpos_t *p)
{
    return p->started;
}

bool hidpos_take_partial(hidpos_t *p, const uint8_t **out, size_t *out_len)
{
    bool report = p->started && !p->discarding && p->len > 0;
    size_t len = p->len;
    reset(p);
    if (!report)
        return false;
    *out = p->buf;  /* the bytes stay in buf until the next feed */
    *out_len = len;
    return true;
}

/* The AIM id of this report: 3 bytes, or none (all zero). */
static int report_aim(const hidpos_t *p, const uint8_t *r, uint8_t aim[3], const char **reason)
{
    memset(aim, 0, 3);
    if (!p->lay.has_sym)
        return 0;
    for (int i = 0; i < 3; i++)
        aim[i] = r[p->lay.sym_off[i]];
    if (aim[0] == 0 && aim[1] == 0 && aim[2] == 0)
        return 0;
    if (aim[0] != ']') {
        *reason = reasonf("symbology identifier 0x%02X 0x%02X 0x%02X is not an AIM identifier "
                          "(']' first)", aim[0], aim[1], aim[2]);
        return -EINVAL;
    }
    return 0;
}

/* Bytes of data this report carries. */
static int report_data_len(const hidpos_t *p, const uint8_t *r, size_t *n, const char **reason)
{
    const uint8_t *data = r + p->lay.data_off;
    if (p->lay.has_count) {
        size_t c = r[p->lay.count_off];
        if (c > p->lay.data_len) {
            *reason = reasonf("byte count %zu exceeds the %zu-byte data field", c,
                              p->lay.data_len);
            return -EINVAL;
        }
        *n = c;
        return 0;
    }
    const uint8_t *nul = memchr(data, 0, p->lay.data_len);
    *n = nul ? (size_t)(nul - data) : p->lay.data_len;
    return 0;
}

/*
 * Append n bytes to the scan. When they would pass the limit, keep what fits, switch
 * to discarding and return HIDPOS_LONG with the scan so far: reported now, because the
 * rest may never come. Otherwise HIDPOS_MORE.
 */
static hidpos_result_t append(hidpos_t *p, const uint8_t *d, size_t n, const uint8_t **out,
                              size_t *out_len, const char **reason)
{
    if (p->discarding)
        return HIDPOS_MORE;
    if (p->len + n <= p->max) {
        memcpy(p->buf + p->len, d, n);
        p->len += n;
        return HIDPOS_MORE;
    }
    memcpy(p->buf + p->len, d, p->max - p->len);
    p->len = p->max;
    p->discarding = true;
    *out = p->buf;
    *out_len = p->len;
    *reason = reasonf("scan longer than %zu bytes (cut to its first %zu bytes here; the "
                      "rest of it was dropped)", p->max, p->max);
    return HIDPOS_LONG;
}

hidpos_result_t hidpos_feed(hidpos_t *p, const uint8_t *r, size_t len, const uint8_t **out,
                            size_t *out_len, const char **reason)
{
    static const char *dummy;
    if (!reason)
        reason = &dummy;
    const hidpos_layout_t *lay = &p->lay;
    if (lay->report_id) {
        if (len == 0) {
            *reason = "empty HID report";
            return HIDPOS_BAD;
        }
        if (r[0] != lay->report_id) {
            if (lay->input_ids[r[0] / 8] & (1u << (r[0] % 8)))
                return HIDPOS_MORE;
            *reason = reasonf("HID report with ID %u, which the device's report descriptor "
                              "does not declare", r[0]);
            return HIDPOS_BAD;
        }
    }
    if (len != lay->report_len) {
        *reason = reasonf("HID POS report of %zu bytes (the device declares %zu)", len,
                          lay->report_len);
        return HIDPOS_BAD;
    }
    uint8_t aim[3];
    size_t n;
    if (report_aim(p, r, aim, reason) < 0 || report_data_len(p, r, &n, reason) < 0)
        return HIDPOS_BAD;
    if (p->started && (aim[0] || aim[1] || aim[2]) && memcmp(aim, p->aim, 3) != 0) {
        *reason = "symbology identifier changed in the middle of a scan";
        return HIDPOS_BAD;
    }
    bool more = lay->has_cont && (r[lay->cont_bit / 8] >> (lay->cont_bit % 8)) & 1;

    hidpos_result_t res = HIDPOS_MORE;
    if (!p->started) {
        /* The first report of a scan: its AIM id leads the scan's bytes. */
        p->started = true;
        memcpy(p->aim, aim, 3);
        if (aim[0])
            res = append(p, aim, 3, out, out_len, reason);
    }
    if (res == HIDPOS_MORE)
        res = append(p, r + lay->data_off, n, out, out_len, reason);
    if (more)
        return res;
    /* The final report: the scan is complete, unless it was already reported too long. */
    bool whole = !p->discarding;
    size_t total = p->len;
    reset(p);
    if (!whole)
        return res;
    *out = p->buf;
    *out_len = total;
    return HIDPOS_SCAN;
}
