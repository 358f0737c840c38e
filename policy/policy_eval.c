/*
 * Policy evaluation: one case against one loaded policy -> one result.
 *
 * The order is fixed and documented in docs/policy.md:
 *   1. the warranty table gives the period, its start and the status (in/out/unknown);
 *   2. built-in checks every dock needs whatever the vendor (wrong vendor, serial
 *      mismatch: quarantine);
 *   3. the policy's rules in file order: each matching rule adds its flags, fee and
 *      reason and may change the warranty status (later rules see the change); the
 *      first matching rule with a disposition decides it;
 *   4. no rule decided: the warranty status decides (in: the table's service level,
 *      out/void: paid repair, excluded: back to the customer, unknown: quarantine,
 *      not_applicable: restock).
 * Pure: no clock, no I/O; cost is linear in the number of rules and table entries.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_internal.h"

/* Reason weights: the deciding reason is listed first (labels show the first one). */
enum { W_INFO = 0, W_WARRANTY = 1, W_STATUS = 2, W_DECIDES = 3 };

typedef struct {
    char *rule, *text;
    int weight;
    unsigned on;       /* the rule's `on`: dropped, with its fee and flags, on other outcomes */
    unsigned flags;    /* the rule's flags */
    bool has_fee;
    fee_t fee;         /* kind and combination of the rule's fee ... */
    double fee_value;  /* ... and its value for this case */
} ev_reason_t;

typedef struct {
    const policy_t *p;
    const policy_case_t *c;
    int skip;  /* clause left out (tests), -1 for none */
    /* warranty */
    const wentry_t *entry;
    bool listed;
    wstatus_t status;
    service_t service;
    bool has_period;
    duration_t period;
    bool has_basis;
    basis_t basis;
    caldate_t starts, ends;
    /* outcome */
    bool decided;
    disposition_t disposition;
    unsigned flags;    /* built-in checks' and the fallback's; rules' are in their reasons */
    ev_reason_t *reasons;
    size_t n_reasons;
    int oom;
} ev_t;

typedef struct {
    bool known;
    bool b;
    int e;
    const char *s;
    caldate_t d;
    double num;
    uint64_t bits;
    char *const *strs;
    size_t n;
    duration_t dur;
} fval_t;

static ev_reason_t *add_reason(ev_t *ev, const char *rule, int weight, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Append a reason (all else zero); NULL, with ev->oom set, when out of memory. */
static ev_reason_t *add_reason(ev_t *ev, const char *rule, int weight, const char *fmt, ...)
{
    ev_reason_t *r = realloc(ev->reasons, (ev->n_reasons + 1) * sizeof(*r));
    if (!r) {
        ev->oom = 1;
        return NULL;
    }
    ev->reasons = r;
    r = &ev->reasons[ev->n_reasons];
    memset(r, 0, sizeof(*r));
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&r->text, fmt, ap);
    va_end(ap);
    if (n < 0 || !(r->rule = strdup(rule))) {
        if (n >= 0)
            free(r->text);
        ev->oom = 1;
        return NULL;
    }
    r->weight = weight;
    ev->n_reasons++;
    return r;
}

/* ---- facts --------------------------------------------------------------------- */

bool policy_serial_equal(const char *a, const char *b)
{
    while (isspace((unsigned char)*a))
        a++;
    while (isspace((unsigned char)*b))
        b++;
    size_t la = strlen(a), lb = strlen(b);
    while (la && isspace((unsigned char)a[la - 1]))
        la--;
    while (lb && isspace((unsigned char)b[lb - 1]))
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

static int serial_match(const policy_case_t *c)
{
    if (!c->has_rma || !c->rma.expected_serial || c->inspection.serial_state != SERIAL_READ)
        return 2; /* unknown */
    return policy_serial_equal(c->rma.expected_serial, c->inspection.serial) ? 0 : 1;
}

static bool case_opened(const policy_case_t *c)
{
    return c->inspection.seal == SEAL_BROKEN || (c->inspection.findings & (1ull << FINDING_OPENED));
}

static void fact_get(const ev_t *ev, int id, fval_t *v)
{
    const policy_case_t *c = ev->c;
    memset(v, 0, sizeof(*v));
    v->known = true;
    if (id >= F__COUNT) {
        /* The policy's own fact: what the case says, else its declared default. */
        const xfact_t *x = &ev->p->xfacts[id - F__COUNT];
        int val = id - F__COUNT < POLICY_MAX_FACTS ? c->custom[id - F__COUNT] : -1;
        if (val < 0)
            val = x->deflt;
        v->b = val != 0;
        v->e = val;
        return;
    }
    fact_id_t f = (fact_id_t)id;
    switch (f) {
    case F_RMA_PRESENT: v->b = c->has_rma; break;
    case F_RMA_KIND: v->known = c->has_rma; v->e = c->rma.kind; break;
    case F_RMA_ISSUED: v->d = c->has_rma ? c->rma.issued : CALDATE_NONE; v->known = v->d != CALDATE_NONE; break;
    case F_RMA_ORDER_VALUE: v->known = c->has_rma && c->rma.has_order_value; v->num = c->rma.order_value; break;
    case F_RMA_PROOF_OF_PURCHASE: v->known = c->has_rma; v->b = c->rma.proof_of_purchase; break;
    case F_RMA_DEFECT_DISCOVERED: v->d = c->has_rma ? c->rma.defect_discovered : CALDATE_NONE; v->known = v->d != CALDATE_NONE; break;
    case F_SERIAL_MATCH: v->e = serial_match(c); break;
    case F_PRODUCT_MODEL: v->s = c->product.model; v->known = v->s != NULL; break;
    case F_PRODUCT_FAMILY: v->s = c->product.family; v->known = v->s != NULL; break;
    case F_PRODUCT_PURCHASED: v->d = c->product.purchased; v->known = v->d != CALDATE_NONE; break;
    case F_PRODUCT_SHIPPED: v->d = c->product.shipped; v->known = v->d != CALDATE_NONE; break;
    case F_PRODUCT_INVOICED: v->d = c->product.invoiced; v->known = v->d != CALDATE_NONE; break;
    case F_PRODUCT_DELIVERED: v->d = c->product.delivered; v->known = v->d != CALDATE_NONE; break;
    case F_PRODUCT_REFURBISHED: v->b = c->product.refurbished; break;
    case F_PRODUCT_PREV_REPAIR:
        v->e = c->product.previous_repair.kind;
        v->known = c->product.previous_repair.date != CALDATE_NONE;
        break;
    case F_PRODUCT_PREV_REPAIR_DATE: v->d = c->product.previous_repair.date; v->known = v->d != CALDATE_NONE; break;
    case F_PRODUCT_WARRANTY_MONTHS: v->num = c->product.warranty_months; v->known = c->product.warranty_months >= 0; break;
    case F_PRODUCT_HAS_STORAGE_MEDIA: v->b = c->product.has_storage_media; break;
    case F_PRODUCT_SAMPLE: v->b = c->product.sample; break;
    case F_PRODUCT_LISTED: v->b = ev->listed; break;
    case F_INSP_SERIAL: v->e = c->inspection.serial_state; break;
    case F_INSP_SERIAL_LABEL: v->e = c->inspection.serial_label; break;
    case F_INSP_RMA_MARKED: v->b = c->inspection.rma_marked_on_package; break;
    case F_INSP_PACKAGING: v->e = c->inspection.packaging; break;
    case F_INSP_FOAM: v->b = c->inspection.foam; break;
    case F_INSP_SEAL: v->e = c->inspection.seal; break;
    case F_INSP_OPENED: v->b = case_opened(c); break;
    case F_INSP_FINDINGS: v->bits = c->inspection.findings; break;
    case F_INSP_FAULT: v->e = c->inspection.fault; break;
    case F_INSP_COMPONENT: v->s = c->inspection.component; v->known = v->s != NULL; break;
    case F_INSP_ACCESSORIES: v->e = c->inspection.n_accessories_missing ? 1 : 0; break;
    case F_INSP_ACCESSORIES_MISSING:
        v->strs = c->inspection.accessories_missing;
        v->n = c->inspection.n_accessories_missing;
        break;
    case F_WARRANTY_STATUS: v->e = ev->status; break;
    case F_WARRANTY_SERVICE: v->e = ev->service; v->known = ev->entry != NULL; break;
    case F_WARRANTY_PERIOD: v->dur = ev->period; v->known = ev->has_period; break;
    case F_WARRANTY_STARTS: v->d = ev->starts; v->known = ev->has_basis; break;
    case F_WARRANTY_ENDS: v->d = ev->ends; v->known = ev->has_basis; break;
    case F__COUNT: v->known = false; break;
    }
}

/* ---- conditions ---------------------------------------------------------------- */

static bool any_name_match(char *const *patterns, size_t np, const char *name)
{
    for (size_t i = 0; i < np; i++)
        if (policy_name_match(patterns[i], name))
            return true;
    return false;
}

static bool cond_holds(const ev_t *ev, const cond_t *c)
{
    fval_t v;
    fact_get(ev, c->fact, &v);
    fact_type_t t = c->type;
    if (c->op == OP_KNOWN)
        return v.known == c->b;
    if (!v.known)
        return false;
    switch (c->op) {
    case OP_EQ:
    case OP_IN:
        if (t == FT_BOOL)
            return v.b == c->b;
        if (t == FT_ENUM)
            return (c->bits >> v.e) & 1u;
        if (t == FT_NUMBER)
            return v.num == c->num;
        return any_name_match(c->strs, c->n_strs, v.s);
    case OP_WITHIN:
    case OP_AFTER: {
        caldate_t at = ev->c->today;
        if (c->at >= 0) {
            fval_t a;
            fact_get(ev, c->at, &a);
            if (!a.known)
                return false;
            at = a.d;
        }
        return c->op == OP_WITHIN ? at <= caldate_add(v.d, c->dur) : at > caldate_add(v.d, c->dur);
    }
    case OP_BEFORE:
        return v.d < c->date;
    case OP_ON_OR_AFTER:
        return v.d >= c->date;
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE: {
        int cmp = t == FT_PERIOD ? duration_cmp(v.dur, c->dur)
                                 : (v.num > c->num) - (v.num < c->num);
        return c->op == OP_LT ? cmp < 0 : c->op == OP_LE ? cmp <= 0 : c->op == OP_GT ? cmp > 0 : cmp >= 0;
    }
    case OP_ANY:
    case OP_NONE: {
        bool any = false;
        if (t == FT_SET) {
            any = (v.bits & c->bits) != 0;
        } else {
            for (size_t i = 0; i < v.n && !any; i++)
                any = any_name_match(c->strs, c->n_strs, v.strs[i]);
        }
        return c->op == OP_ANY ? any : !any;
    }
    case OP_ALL:
        return (v.bits & c->bits) == c->bits;
    case OP_EMPTY:
        return (t == FT_SET ? v.bits == 0 : v.n == 0) == c->b;
    case OP_KNOWN:
        break;
    }
    return false;
}

static bool group_holds(const ev_t *ev, const group_t *g)
{
    bool any = false, all = true;
    for (size_t i = 0; i < g->n_conds; i++) {
        bool h = cond_holds(ev, &g->conds[i]);
        any |= h;
        all &= h;
    }
    for (size_t i = 0; i < g->n_children; i++) {
        bool h = group_holds(ev, &g->children[i]);
        any |= h;
        all &= h;
    }
    switch (g->kind) {
    case GROUP_ANY: return any;
    case GROUP_NOT: return !all;
    case GROUP_ALL: return all;
    }
    return false;
}

/* ---- warranty ------------------------------------------------------------------ */

static const char *basis_words(basis_t b)
{
    static const char *const w[] = { "purchase date", "ship date", "invoice date",
                                     "delivery date", "repair/replacement date" };
    return w[b];
}

static const wentry_t *find_entry(const policy_t *p, const policy_case_t *c, int skip)
{
    int skip_table = skip - (int)p->n_rules;
    /* A model entry beats a family entry wherever it stands in the table. */
    for (size_t i = 0; c->product.model && i < p->n_table; i++)
        for (char **m = p->table[i].models; (int)i != skip_table && m && *m; m++)
            if (policy_name_match(*m, c->product.model))
                return &p->table[i];
    for (size_t i = 0; c->product.family && i < p->n_table; i++)
        for (char **f = p->table[i].families; (int)i != skip_table && f && *f; f++)
            if (policy_name_match(*f, c->product.family))
                return &p->table[i];
    return p->has_default && skip_table != (int)p->n_table ? &p->deflt : NULL;
}

/*
 * A unit repaired or replaced before (product.previous_repair): its warranty per the
 * entry's (else the policy's) `after_repair`. The case's dates are the original sale's,
 * so the original's end is already in ev->ends. Without an `after_repair` the repair
 * changes nothing. Adds a reason when the end moves or is kept on purpose.
 */
static void repaired_warranty(ev_t *ev, const wentry_t *e, char *pbuf, size_t cap)
{
    const policy_case_t *c = ev->c;
    caldate_t rd = c->product.previous_repair.date;
    const after_repair_t *a = e && e->after_repair.set ? &e->after_repair : &ev->p->after_repair;
    if (rd == CALDATE_NONE || !a->set || !((a->kinds >> c->product.previous_repair.kind) & 1u))
        return;
    const char *what = c->product.previous_repair.kind == PREV_REPLACED ? "replacement" : "repair";
    char rbuf[CALDATE_STRLEN], obuf[CALDATE_STRLEN];
    caldate_format(rd, rbuf);
    caldate_format(ev->ends, obuf);
    if (!a->has_period) {
        add_reason(ev, "warranty-after-repair", W_INFO,
                   "a %s on %s keeps the original warranty's end (%s)", what, rbuf, obuf);
        return;
    }
    caldate_t rend = caldate_add(rd, a->period);
    duration_format(a->period, pbuf, (unsigned)cap);
    if (a->or_remainder && rend <= ev->ends) {
        add_reason(ev, "warranty-after-repair", W_INFO,
                   "the original warranty's remainder (to %s) is longer than %s from the %s "
                   "on %s", obuf, pbuf, what, rbuf);
        return;
    }
    ev->period = a->period;
    ev->starts = rd;
    ev->ends = rend;
    ev->basis = BASIS_PREVIOUS_REPAIR;
    add_reason(ev, "warranty-after-repair", W_INFO, "%s from the %s on %s%s", pbuf, what, rbuf,
               a->or_remainder ? ", longer than the original warranty's remainder" : "");
}

static void compute_warranty(ev_t *ev)
{
    const policy_case_t *c = ev->c;
    const wentry_t *e = find_entry(ev->p, c, ev->skip);
    char pbuf[16], ebuf[CALDATE_STRLEN];
    ev->entry = e;
    ev->listed = e != NULL;
    ev->status = WS_UNKNOWN;
    ev->service = e ? e->service : SERVICE_REPAIR;
    const char *label = e && e->label ? e->label : "";
    if (e && e->ask_vendor) {
        add_reason(ev, "warranty-table", W_WARRANTY, "%s", e->ask_vendor);
        return;
    }

    /* Which period: the claimed component's, else the unit's own stated one, else the table's. */
    const char *source = label;
    char srcbuf[96];
    const component_t *k = NULL;
    for (size_t i = 0; e && c->inspection.component && i < e->n_components; i++)
        if (policy_name_match(e->components[i].name, c->inspection.component))
            k = &e->components[i];
    if (k && k->excluded) {
        ev->status = WS_EXCLUDED;
        add_reason(ev, "warranty-component", W_STATUS,
                   "the %s is not covered by the warranty (%s)", k->name, label);
        return;
    }
    if (k) {
        ev->period = k->period;
        ev->has_period = true;
        snprintf(srcbuf, sizeof(srcbuf), "%s, %s", label, k->name);
        source = srcbuf;
    } else if (c->product.warranty_months >= 0) {
        ev->period = (duration_t){ c->product.warranty_months, DUR_MONTHS,
                                   c->product.warranty_months % 12 == 0 ? 'y' : 'm' };
        ev->has_period = true;
        source = "the unit's own stated warranty";
    } else if (e && e->has_refurbished && c->product.refurbished) {
        ev->period = e->refurbished;
        ev->has_period = true;
        snprintf(srcbuf, sizeof(srcbuf), "%s, refurbished", label);
        source = srcbuf;
    } else if (e && e->has_period) {
        ev->period = e->period;
        ev->has_period = true;
    }
    if (!ev->has_period) {
        add_reason(ev, "warranty-table", W_WARRANTY,
                   "no warranty period for model '%s' / family '%s' in the %s policy and none "
                   "stated for the unit: a person must decide",
                   c->product.model ? c->product.model : "?",
                   c->product.family ? c->product.family : "?", ev->p->vendor);
        return;
    }
    /* The entry's own basis (a table line dated from delivery, say), else the policy's. */
    const basis_list_t *bl = e && e->basis.n ? &e->basis : &ev->p->basis;
    for (size_t i = 0; i < bl->n; i++) {
        basis_t b = bl->b[i];
        caldate_t d = b == BASIS_PURCHASED ? c->product.purchased
                      : b == BASIS_SHIPPED ? c->product.shipped
                      : b == BASIS_DELIVERED ? c->product.delivered : c->product.invoiced;
        if (d != CALDATE_NONE) {
            ev->has_basis = true;
            ev->basis = b;
            ev->starts = d;
            break;
        }
    }
    if (!ev->has_basis) {
        add_reason(ev, "warranty-basis", W_WARRANTY,
                   "no %s on record: the warranty cannot be dated, a person must decide",
                   basis_words(bl->b[0]));
        return;
    }
    ev->ends = caldate_add(ev->starts, ev->period);
    repaired_warranty(ev, e, pbuf, sizeof(pbuf));
    ev->status = c->today < ev->ends ? WS_IN : WS_OUT;
    duration_format(ev->period, pbuf, sizeof(pbuf));
    caldate_format(ev->ends, ebuf);
    const char *svc = ev->service == SERVICE_EXCHANGE ? "exchange" : "repair";
    if (ev->status == WS_IN)
        add_reason(ev, "warranty-period", W_WARRANTY, "in warranty until %s (%s from %s; %s%s%s)",
                   ebuf, pbuf, basis_words(ev->basis), source, *source ? ": " : "", svc);
    else
        add_reason(ev, "warranty-period", W_WARRANTY, "out of warranty since %s (%s from %s%s%s)",
                   ebuf, pbuf, basis_words(ev->basis), *source ? "; " : "", source);
}

/* ---- rules --------------------------------------------------------------------- */

/* The shortfalls a ranged fee counts: open box, missing foam, each missing accessory. */
static size_t shortfalls(const policy_case_t *c, unsigned counts, char *buf, size_t cap)
{
    size_t n = 0, l;
    buf[0] = '\0';
    const char *items[3] = { NULL, NULL, NULL };
    if ((counts & SHORT_OPEN_BOX) && (case_opened(c) || c->inspection.packaging != PKG_ORIGINAL))
        items[0] = "open box";
    if ((counts & SHORT_FOAM) && !c->inspection.foam)
        items[1] = "foam missing";
    for (int i = 0; i < 2; i++) {
        if (!items[i])
            continue;
        l = strlen(buf);
        snprintf(buf + l, cap - l, "%s%s", n ? ", " : "", items[i]);
        n++;
    }
    for (size_t i = 0; (counts & SHORT_ACCESSORIES) && i < c->inspection.n_accessories_missing; i++) {
        l = strlen(buf);
        snprintf(buf + l, cap - l, "%s%s missing", n ? ", " : "", c->inspection.accessories_missing[i]);
        n++;
    }
    return n;
}

static double fee_value(const ev_t *ev, const fee_t *fee, char *how, size_t cap)
{
    how[0] = '\0';
    if (!fee->is_range)
        return fee->pct;  /* a fixed percentage or amount */
    char list[512];
    size_t n = shortfalls(ev->c, fee->counts, list, sizeof(list));
    double v = fee->pct + fee->step * (double)(n > 1 ? n - 1 : 0);
    if (v > fee->max)
        v = fee->max;
    snprintf(how, cap, " (range %g-%g%%: %g%% for the first shortfall, +%g%% for each further; %s)",
             fee->pct, fee->max, fee->pct, fee->step, n ? list : "none counted");
    return v;
}

/* Append text to a growing string; returns -1 when out of memory. */
static int sb_add(char **s, size_t *len, const char *t, size_t tl)
{
    char *n = realloc(*s, *len + tl + 1);
    if (!n)
        return -1;
    memcpy(n + *len, t, tl);
    *len += tl;
    n[*len] = '\0';
    *s = n;
    return 0;
}

static void fact_text(const ev_t *ev, int f, char *buf, size_t cap)
{
    fval_t v;
    fact_get(ev, f, &v);
    const fact_def_t *fd = policy_fact_def(ev->p, f);
    if (!v.known) {
        snprintf(buf, cap, "unknown");
        return;
    }
    switch (fd->type) {
    case FT_BOOL: snprintf(buf, cap, "%s", v.b ? "yes" : "no"); break;
    case FT_ENUM: snprintf(buf, cap, "%s", fd->en->names[v.e]); break;
    case FT_STRING: snprintf(buf, cap, "%s", v.s); break;
    case FT_NUMBER: snprintf(buf, cap, "%g", v.num); break;
    case FT_PERIOD: duration_format(v.dur, buf, (unsigned)cap); break;
    case FT_DATE: {
        char d[CALDATE_STRLEN];
        caldate_format(v.d, d);
        snprintf(buf, cap, "%s", d);
        break;
    }
    case FT_SET:
    case FT_STRSET: {
        size_t l = 0;
        buf[0] = '\0';
        if (fd->type == FT_SET) {
            for (int i = 0; i < fd->en->count; i++)
                if ((v.bits >> i) & 1ull) {
                    snprintf(buf + l, cap - l, "%s%s", l ? ", " : "", fd->en->names[i]);
                    l = strlen(buf);
                }
        } else {
            for (size_t i = 0; i < v.n; i++) {
                snprintf(buf + l, cap - l, "%s%s", l ? ", " : "", v.strs[i]);
                l = strlen(buf);
            }
        }
        if (!l)
            snprintf(buf, cap, "none");
        break;
    }
    }
}

/* Substitute {fact} and {fee} in a rule's reason (placeholders were checked at load). */
static char *render(const ev_t *ev, const char *tmpl, double fee)
{
    char *out = NULL;
    size_t len = 0;
    if (sb_add(&out, &len, "", 0) < 0)
        return NULL;
    const char *p = tmpl;
    while (*p) {
        const char *o = strchr(p, '{');
        const char *e = o ? strchr(o, '}') : NULL;
        if (!o || !e) {
            if (sb_add(&out, &len, p, strlen(p)) < 0)
                goto oom;
            break;
        }
        if (sb_add(&out, &len, p, (size_t)(o - p)) < 0)
            goto oom;
        char name[64], val[512];
        size_t nl = (size_t)(e - o - 1);
        snprintf(name, sizeof(name), "%.*s", (int)nl, o + 1);
        int f = policy_fact_lookup(ev->p, name);
        if (strcmp(name, "fee") == 0)
            snprintf(val, sizeof(val), "%g", fee);
        else if (strcmp(name, "today") == 0)
            caldate_format(ev->c->today, val);
        else if (f >= 0)
            fact_text(ev, f, val, sizeof(val));
        else
            snprintf(val, sizeof(val), "{%s}", name);
        if (sb_add(&out, &len, val, strlen(val)) < 0)
            goto oom;
        p = e + 1;
    }
    return out;
oom:
    free(out);
    return NULL;
}

/*
 * A matching rule: its warranty change is seen by later rules at once; its fee and
 * flags are kept with its reason and counted in finish() only if the outcome is one
 * of the rule's `on` dispositions.
 */
static void apply_rule(ev_t *ev, const rule_t *r)
{
    double fee = 0;
    char how[700] = "";
    if (r->has_fee)
        fee = fee_value(ev, &r->fee, how, sizeof(how));
    if (r->has_warranty)
        ev->status = r->warranty;
    char *text = render(ev, r->reason, fee);
    if (!text) {
        ev->oom = 1;
        return;
    }
    /* A charged fee names its rule before the warranty period (contract: a fee names why). */
    int weight = r->has_disposition ? W_DECIDES : r->has_warranty || r->has_fee ? W_STATUS : W_INFO;
    ev_reason_t *rs = add_reason(ev, r->id, weight, "%s%s", text, how);
    free(text);
    if (rs) {
        rs->on = r->on;
        rs->flags = r->flags;
        rs->has_fee = r->has_fee;
        rs->fee = r->fee;
        rs->fee_value = fee;
    }
    if (r->has_disposition) {
        ev->decided = true;
        ev->disposition = r->disposition;
    }
}

static void decide(ev_t *ev, disposition_t d, unsigned flags)
{
    ev->decided = true;
    ev->disposition = d;
    ev->flags |= flags;
}

static void builtin_checks(ev_t *ev)
{
    const policy_case_t *c = ev->c;
    if (c->product.vendor && !policy_matches_vendor(ev->p, c->product.vendor)) {
        decide(ev, DISP_QUARANTINE, FLAG_MANUAL_REVIEW);
        add_reason(ev, "rmad-vendor", W_DECIDES,
                   "the product's vendor '%s' is not the vendor of this policy (%s)",
                   c->product.vendor, ev->p->vendor);
        return;
    }
    if (serial_match(c) == 1) {
        decide(ev, DISP_QUARANTINE, FLAG_MANUAL_REVIEW);
        add_reason(ev, "rmad-serial-mismatch", W_DECIDES,
                   "serial read at the dock (%s) is not the serial the RMA expects (%s)",
                   c->inspection.serial, c->rma.expected_serial);
    }
}

/* No rule decided: the warranty status does. in/out/unknown already have a reason. */
static void fallback(ev_t *ev)
{
    const char *why = NULL;
    switch (ev->status) {
    case WS_IN:
        ev->disposition = ev->service == SERVICE_EXCHANGE ? DISP_WARRANTY_EXCHANGE : DISP_WARRANTY_REPAIR;
        break;
    case WS_OUT:
        ev->disposition = DISP_PAID_REPAIR;
        break;
    case WS_VOID:
        ev->disposition = DISP_PAID_REPAIR;
        why = "warranty void: repair at the customer's cost";
        break;
    case WS_EXCLUDED:
        ev->disposition = DISP_RETURN_TO_CUSTOMER;
        why = "not covered: sent back to the customer";
        break;
    case WS_NOT_APPLICABLE:
        ev->disposition = DISP_RESTOCK;
        why = "no warranty claim: back to stock";
        break;
    case WS_UNKNOWN:
        ev->disposition = DISP_QUARANTINE;
        ev->flags |= FLAG_MANUAL_REVIEW;
        break;
    }
    if (why)
        add_reason(ev, "rmad-default", W_INFO, "%s", why);
}

static int cmp_weight(const void *a, const void *b)
{
    const ev_reason_t *x = a, *y = b;
    if (x->weight != y->weight)
        return y->weight - x->weight;
    return x < y ? -1 : x > y; /* stable: keep evaluation order */
}

/* Does a rule with this `on` count on outcome d? restock and restock_fee are one outcome
 * here: a fee is what turns the one into the other. */
static bool applies_on(unsigned on, disposition_t d)
{
    const unsigned stock = 1u << DISP_RESTOCK | 1u << DISP_RESTOCK_FEE;
    if (!on)
        return true;
    if ((1u << d) & stock)
        return (on & stock) != 0;
    return (on >> d) & 1u;
}

/*
 * Fees of the rules that count on the outcome: of each kind (percentage, amount) the
 * highest non-adding fee plus every adding one; a percentage is capped at 100.
 */
static void total_fees(const ev_t *ev, double *pct, double *amount)
{
    double top[2] = { 0, 0 }, sum[2] = { 0, 0 };
    for (size_t i = 0; i < ev->n_reasons; i++) {
        const ev_reason_t *r = &ev->reasons[i];
        if (!r->has_fee || !applies_on(r->on, ev->disposition))
            continue;
        int k = r->fee.is_amount;
        if (r->fee.adds)
            sum[k] += r->fee_value;
        else if (r->fee_value > top[k])
            top[k] = r->fee_value;
    }
    *pct = top[0] + sum[0] > 100 ? 100 : top[0] + sum[0];
    *amount = top[1] + sum[1];
}

static int finish(ev_t *ev, policy_result_t *out)
{
    double fee_pct, fee_amount;
    total_fees(ev, &fee_pct, &fee_amount);
    if (ev->disposition == DISP_RESTOCK && (fee_pct > 0 || fee_amount > 0))
        ev->disposition = DISP_RESTOCK_FEE;
    bool keep_warranty_reason = ev->status == WS_IN || ev->status == WS_OUT || ev->status == WS_UNKNOWN;

    /* Sort a copy of the pointers' order: qsort with address tiebreak keeps order. */
    size_t n = 0;
    for (size_t i = 0; i < ev->n_reasons; i++) {
        ev_reason_t *r = &ev->reasons[i];
        bool counts = applies_on(r->on, ev->disposition);
        if (counts)
            ev->flags |= r->flags;
        bool drop = !counts || (r->weight == W_WARRANTY && !keep_warranty_reason);
        if (drop) {
            free(r->rule);
            free(r->text);
            continue;
        }
        ev->reasons[n++] = *r;
    }
    ev->n_reasons = n;
    qsort(ev->reasons, n, sizeof(*ev->reasons), cmp_weight);

    memset(out, 0, sizeof(*out));
    out->reasons = calloc(n ? n : 1, sizeof(*out->reasons));
    if (!out->reasons)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        out->reasons[i].rule = ev->reasons[i].rule;
        out->reasons[i].text = ev->reasons[i].text;
    }
    out->n_reasons = n;
    free(ev->reasons);
    ev->reasons = NULL;
    ev->n_reasons = 0;
    out->disposition = ev->disposition;
    out->restocking_fee_pct = fee_pct;
    out->restocking_fee_amount = fee_amount;
    out->flags = ev->flags;
    out->warranty.status = ev->status;
    out->warranty.has_basis = ev->has_basis;
    out->warranty.basis = ev->basis;
    out->warranty.starts = ev->has_basis ? ev->starts : CALDATE_NONE;
    out->warranty.ends = ev->has_basis ? ev->ends : CALDATE_NONE;
    return 0;
}

int policy_evaluate_without(const policy_t *p, const policy_case_t *c, int skip,
                            policy_result_t *out)
{
    ev_t ev = { .p = p, .c = c, .skip = skip };
    compute_warranty(&ev);
    builtin_checks(&ev);
    for (size_t i = 0; i < p->n_rules; i++) {
        const rule_t *r = &p->rules[i];
        if ((int)i == skip || (r->has_disposition && ev.decided))
            continue;
        if (r->when && !group_holds(&ev, r->when))
            continue;
        if (r->unless && group_holds(&ev, r->unless))
            continue;
        apply_rule(&ev, r);
    }
    if (!ev.decided)
        fallback(&ev);
    int rc = ev.oom ? -ENOMEM : finish(&ev, out);
    for (size_t i = 0; i < ev.n_reasons; i++) {
        free(ev.reasons[i].rule);
        free(ev.reasons[i].text);
    }
    free(ev.reasons);
    return rc;
}

/* Does the group test only facts of the RMA (rma.*)? */
static bool group_rma_only(const group_t *g)
{
    for (size_t i = 0; i < g->n_conds; i++)
        if (g->conds[i].fact > F_RMA_LAST || (g->conds[i].at >= 0 && g->conds[i].at > F_RMA_LAST))
            return false;
    for (size_t i = 0; i < g->n_children; i++)
        if (!group_rma_only(&g->children[i]))
            return false;
    return true;
}

int policy_rma_refusal(const policy_t *p, const policy_case_t *c, char **rule, char **text)
{
    ev_t ev = { .p = p, .c = c, .skip = -1 };
    *rule = *text = NULL;
    for (size_t i = 0; i < p->n_rules; i++) {
        const rule_t *r = &p->rules[i];
        if (!r->has_disposition || r->disposition != DISP_REFUSE || !r->when ||
            !group_rma_only(r->when) || (r->unless && !group_rma_only(r->unless)))
            continue;
        if (!group_holds(&ev, r->when) || (r->unless && group_holds(&ev, r->unless)))
            continue;
        *text = render(&ev, r->reason, 0);
        *rule = strdup(r->id);
        if (!*text || !*rule) {
            free(*text);
            free(*rule);
            *rule = *text = NULL;
            return -ENOMEM;
        }
        return 1;
    }
    return 0;
}

int policy_evaluate(const policy_t *p, const policy_case_t *c, policy_result_t *out)
{
    return policy_evaluate_without(p, c, -1, out);
}

size_t policy_clause_count(const policy_t *p)
{
    return p->n_rules + p->n_table + (p->has_default ? 1 : 0);
}

const char *policy_clause_name(const policy_t *p, size_t i)
{
    static char buf[160];
    if (i < p->n_rules)
        snprintf(buf, sizeof(buf), "rule %s", p->rules[i].id);
    else if (i < p->n_rules + p->n_table)
        snprintf(buf, sizeof(buf), "table line %d (%s)", p->table[i - p->n_rules].line,
                 p->table[i - p->n_rules].label ? p->table[i - p->n_rules].label : "");
    else if (i == p->n_rules + p->n_table && p->has_default)
        snprintf(buf, sizeof(buf), "default (%s)", p->deflt.label ? p->deflt.label : "");
    else
        return NULL;
    return buf;
}

bool policy_matches_vendor(const policy_t *p, const char *vendor)
{
    if (policy_name_match(p->vendor, vendor))
        return true;
    for (char **a = p->aliases; a && *a; a++)
        if (policy_name_match(*a, vendor))
            return true;
    return false;
}

static const accset_t *find_accset(const policy_t *p, const char *model, const char *family)
{
    for (size_t i = 0; model && i < p->n_acc; i++)
        for (char **m = p->acc[i].models; m && *m; m++)
            if (policy_name_match(*m, model))
                return &p->acc[i];
    for (size_t i = 0; family && i < p->n_acc; i++)
        for (char **f = p->acc[i].families; f && *f; f++)
            if (policy_name_match(*f, family))
                return &p->acc[i];
    return NULL;
}

size_t policy_accessory_set_count(const policy_t *p)
{
    return p->n_acc;
}

void policy_accessory_set(const policy_t *p, size_t i, const char *const **models,
                          const char *const **families, const char *const **names,
                          const char *const **parts)
{
    const accset_t *a = &p->acc[i];
    *models = (const char *const *)a->models;
    *families = (const char *const *)a->families;
    *names = (const char *const *)a->names;
    *parts = (const char *const *)a->parts;
}

int policy_accessory_set_for(const policy_t *p, const char *model, const char *family)
{
    const accset_t *a = find_accset(p, model, family);
    return a ? (int)(a - p->acc) : -1;
}

const char *const *policy_accessories(const policy_t *p, const char *model, const char *family)
{
    const accset_t *a = find_accset(p, model, family);
    return a ? (const char *const *)a->names : NULL;
}

const char *policy_accessory_by_part(const policy_t *p, const char *model, const char *family,
                                     const char *part)
{
    const accset_t *a = find_accset(p, model, family);
    for (size_t i = 0; a && a->names[i]; i++)
        if (a->parts[i] && policy_name_match(a->parts[i], part))
            return a->names[i];
    return NULL;
}
