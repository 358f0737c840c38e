/* The open receipt's checklist (daemon/checklist.h). */
#include "daemon/checklist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/findings.h"
#include "proto/policy_json.h"

/* What to scan next on an open receipt (docs/station.md, "Replies"). */
#define NEXT_SERIAL \
    "scan the unit's serial (SERIAL-DAMAGED or SERIAL-REMOVED if it cannot be read), " \
    "or CMD-CANCEL if this is the wrong box"
#define NEXT_DONE "scan further checklist barcodes, or CMD-DONE to finish"

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

/* ------------------------------------------------------------------ checklist ---- */

/* Names of the POLICY_ITEM_* bits in the stored checklist, bit order. */
static const char *const item_names[] = { "packaging", "seal", "accessories", "fault" };
#define N_ITEMS (sizeof(item_names) / sizeof(item_names[0]))

void checklist_init(checklist_t *c)
{
    memset(c, 0, sizeof(*c));
    c->serial_match = -1;
    c->serial_label = LABEL_INTACT;
    c->rma_marked = true;
    c->packaging = PKG_ORIGINAL;
    c->foam = true;
    c->seal = SEAL_INTACT;
    c->fault = FAULT_NOT_TESTED;
}

void checklist_free(checklist_t *c)
{
    free(c->serial);
    for (size_t i = 0; i < c->n_acc; i++)
        free(c->acc[i]);
    free(c->component);
    free(c->gtin);
    for (size_t i = 0; i < c->n_xfind; i++)
        free(c->xfind[i]);
    checklist_init(c);
}

json_t *checklist_jstr(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *checklist_jtristate(int v)
{
    return v < 0 ? json_null() : json_boolean(v);
}

json_t *checklist_jfindings(uint32_t bits)
{
    json_t *a = json_array();
    for (int i = 0; a && i < FINDING__COUNT; i++)
        if ((bits & (1u << i)) && json_array_append_new(a, json_string(finding_names[i])) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

json_t *checklist_jfindings_of(const checklist_t *c)
{
    json_t *a = checklist_jfindings(c->findings);
    for (size_t i = 0; a && i < c->n_xfind; i++)
        if (json_array_append_new(a, json_string(c->xfind[i])) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

int checklist_add_xfind(checklist_t *c, const char *name)
{
    for (size_t i = 0; i < c->n_xfind; i++)
        if (strcmp(c->xfind[i], name) == 0)
            return 0;
    if (c->n_xfind >= CHECKLIST_MAX_XFIND)
        return 1;
    if (!(c->xfind[c->n_xfind] = strdup(name)))
        return -ENOMEM;
    c->n_xfind++;
    return 0;
}

json_t *checklist_jnames(const char *const *names, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(names[i])) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *ename(const enumdef_t *def, int v)
{
    return json_string(def->names[v]);
}

static json_t *acc_json(const checklist_t *c)
{
    return checklist_jnames((const char *const *)c->acc, c->n_acc);
}

static json_t *answered_json(unsigned bits)
{
    const char *names[N_ITEMS];
    size_t n = 0;
    for (size_t i = 0; i < N_ITEMS; i++)
        if (bits & (1u << i))
            names[n++] = item_names[i];
    return checklist_jnames(names, n);
}

/* The stored form. NULL when out of memory. */
json_t *checklist_json(const checklist_t *c)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = json_object_set_new(o, "serial", checklist_jstr(c->serial)) |
              json_object_set_new(o, "serial_match", checklist_jtristate(c->serial_match)) |
              json_object_set_new(o, "serial_label", ename(&ENUM_SERIAL_LABEL, c->serial_label)) |
              json_object_set_new(o, "rma_marked_on_package", json_boolean(c->rma_marked)) |
              json_object_set_new(o, "packaging", ename(&ENUM_PACKAGING, c->packaging)) |
              json_object_set_new(o, "foam", json_boolean(c->foam)) |
              json_object_set_new(o, "seal", ename(&ENUM_SEAL, c->seal)) |
              json_object_set_new(o, "accessories_present", acc_json(c)) |
              json_object_set_new(o, "findings", checklist_jfindings_of(c)) |
              json_object_set_new(o, "fault", ename(&ENUM_FAULT, c->fault)) |
              json_object_set_new(o, "component", checklist_jstr(c->component)) |
              json_object_set_new(o, "gtin", checklist_jstr(c->gtin)) |
              json_object_set_new(o, "answered", answered_json(c->answered));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

char *checklist_dump(json_t *j)
{
    return j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
}

char *checklist_text(const checklist_t *c)
{
    json_t *j = checklist_json(c);
    char *s = checklist_dump(j);
    json_decref(j);
    return s;
}

static int opt_string(json_t *o, const char *key, char **out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -EBADMSG;
    return (*out = strdup(json_string_value(v))) ? 0 : -ENOMEM;
}

static int opt_bool(json_t *o, const char *key, bool *out)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return -EBADMSG;
    *out = json_is_true(v);
    return 0;
}

static int opt_enum(json_t *o, const char *key, const enumdef_t *def, int *out)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    int e = json_is_string(v) ? enumdef_find(def, json_string_value(v)) : -1;
    if (e < 0)
        return -EBADMSG;
    *out = e;
    return 0;
}

/*
 * Parse a stored checklist (written by checklist_json; a closed receipt's also has
 * accessories_missing). Anything else is -EBADMSG: a receipt resumed from a checklist
 * we do not understand would be decided on a guess.
 */
int checklist_parse(const char *text, checklist_t *out)
{
    static const char *const keys[] = { "serial", "serial_match", "serial_label",
                                        "rma_marked_on_package", "packaging", "foam", "seal",
                                        "accessories_present", "accessories_missing",
                                        "findings", "fault", "component", "gtin",
                                        "answered", NULL };
    checklist_t c;
    checklist_init(&c);
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, NULL), *v;
    const char *k;
    int r = json_is_object(o) ? 0 : -EBADMSG;

    if (r == 0)
        json_object_foreach(o, k, v) {
            const char *const *a = keys;
            while (*a && strcmp(*a, k) != 0)
                a++;
            if (!*a)
                r = -EBADMSG;
        }
    int label = c.serial_label, pkg = c.packaging, seal = c.seal, fault = c.fault;
    if (r == 0)
        r = opt_string(o, "serial", &c.serial);
    if (r == 0)
        r = opt_bool(o, "rma_marked_on_package", &c.rma_marked);
    if (r == 0)
        r = opt_bool(o, "foam", &c.foam);
    if (r == 0)
        r = opt_enum(o, "serial_label", &ENUM_SERIAL_LABEL, &label);
    if (r == 0)
        r = opt_enum(o, "packaging", &ENUM_PACKAGING, &pkg);
    if (r == 0)
        r = opt_enum(o, "seal", &ENUM_SEAL, &seal);
    if (r == 0)
        r = opt_enum(o, "fault", &ENUM_FAULT, &fault);
    if (r == 0)
        r = opt_string(o, "component", &c.component);
    if (r == 0)
        r = opt_string(o, "gtin", &c.gtin);
    c.serial_label = (serial_label_t)label;
    c.packaging = (packaging_t)pkg;
    c.seal = (seal_t)seal;
    c.fault = (fault_t)fault;
    if (r == 0 && (v = json_object_get(o, "serial_match")) && !json_is_null(v)) {
        if (json_is_boolean(v))
            c.serial_match = json_is_true(v);
        else
            r = -EBADMSG;
    }
    if (r == 0 && (v = json_object_get(o, "accessories_present"))) {
        size_t i;
        json_t *e;
        if (!json_is_array(v) || json_array_size(v) > CHECKLIST_MAX_ACC)
            r = -EBADMSG;
        else
            json_array_foreach(v, i, e) {
                if (r < 0)
                    break;
                if (!json_is_string(e))
                    r = -EBADMSG;
                else if (!(c.acc[c.n_acc] = strdup(json_string_value(e))))
                    r = -ENOMEM;
                else
                    c.n_acc++;
            }
    }
    if (r == 0 && (v = json_object_get(o, "findings"))) {
        size_t i;
        json_t *e;
        if (!json_is_array(v))
            r = -EBADMSG;
        else
            json_array_foreach(v, i, e) {
                const char *fs = json_is_string(e) ? json_string_value(e) : "";
                int f = enumdef_find(&ENUM_FINDING, fs);
                size_t fl = strlen(fs);
                if (f >= 0)
                    c.findings |= 1u << f;
                /* A policy's own finding (vocabulary): a lowercase word, as scanned. */
                else if (fl == 0 || fl > 32 || strspn(fs, "abcdefghijklmnopqrstuvwxyz0123456789_") != fl)
                    r = -EBADMSG;
                else if ((f = checklist_add_xfind(&c, fs)) != 0)
                    r = f < 0 ? f : -EBADMSG;
            }
    }
    /* Absent in receipts stored before the checklist was explicit: nothing answered. */
    if (r == 0 && (v = json_object_get(o, "answered"))) {
        size_t i, it;
        json_t *e;
        if (!json_is_array(v))
            r = -EBADMSG;
        else
            json_array_foreach(v, i, e) {
                for (it = 0; it < N_ITEMS; it++)
                    if (json_is_string(e) && strcmp(json_string_value(e), item_names[it]) == 0)
                        break;
                if (it == N_ITEMS)
                    r = -EBADMSG;
                else
                    c.answered |= 1u << it;
            }
    }
    json_decref(o);
    if (r < 0) {
        checklist_free(&c);
        return r;
    }
    *out = c;
    return 0;
}

bool checklist_has_acc(const checklist_t *c, const char *name)
{
    for (size_t i = 0; i < c->n_acc; i++)
        if (strcasecmp(c->acc[i], name) == 0)
            return true;
    return false;
}

static json_t *date_json(caldate_t d)
{
    char b[CALDATE_STRLEN];
    caldate_format(d, b);
    return json_string(b);
}

static int set_opt_date(json_t *o, const char *key, caldate_t d)
{
    return d == CALDATE_NONE ? 0 : json_object_set_new(o, key, date_json(d));
}

/*
 * The policy case (spec policy-eval) from the RMA row, the checklist and the
 * receiving date: the same JSON `rmactl policy eval` reads, parsed by the same
 * case_from_json(), so the dock decides exactly what the command would print.
 */
json_t *checklist_case(const db_rma_t *rma, const checklist_t *c, const char *const *missing,
                          size_t n_missing, caldate_t today)
{
    json_t *cs = json_object(), *r = json_object(), *p = json_object(), *in = json_object();
    int bad = !cs || !r || !p || !in;

    if (!bad) {
        bad |= json_object_set_new(r, "number", json_string(rma->number));
        bad |= set_opt_date(r, "issued", rma->issued);
        if (rma->kind != DB_RMA_KIND_UNSET)
            bad |= json_object_set_new(r, "kind", json_string(db_rma_kind_name(rma->kind)));
        if (*rma->expected_serial)
            bad |= json_object_set_new(r, "expected_serial", json_string(rma->expected_serial));
        if (rma->has_order_value)
            bad |= json_object_set_new(r, "order_value", json_real(rma->order_value));
        if (rma->proof_of_purchase != DB_UNSET)
            bad |= json_object_set_new(r, "proof_of_purchase",
                                       json_boolean(rma->proof_of_purchase));

        bad |= json_object_set_new(p, "vendor", json_string(rma->vendor));
        if (*rma->model)
            bad |= json_object_set_new(p, "model", json_string(rma->model));
        if (*rma->family)
            bad |= json_object_set_new(p, "family", json_string(rma->family));
        bad |= set_opt_date(p, "purchased", rma->purchased);
        bad |= set_opt_date(p, "shipped", rma->shipped);
        bad |= set_opt_date(p, "invoiced", rma->invoiced);
        if (rma->warranty_months != DB_UNSET)
            bad |= json_object_set_new(p, "warranty_months", json_integer(rma->warranty_months));
        if (rma->has_storage_media != DB_UNSET)
            bad |= json_object_set_new(p, "has_storage_media",
                                       json_boolean(rma->has_storage_media));

        /* No serial read (label damaged or removed): null, "unreadable" in the contract. */
        bad |= json_object_set_new(in, "serial", checklist_jstr(c->serial));
        bad |= json_object_set_new(in, "serial_label", ename(&ENUM_SERIAL_LABEL, c->serial_label));
        bad |= json_object_set_new(in, "rma_marked_on_package", json_boolean(c->rma_marked));
        bad |= json_object_set_new(in, "packaging", ename(&ENUM_PACKAGING, c->packaging));
        bad |= json_object_set_new(in, "foam", json_boolean(c->foam));
        bad |= json_object_set_new(in, "seal", ename(&ENUM_SEAL, c->seal));
        bad |= json_object_set_new(in, "accessories_missing", checklist_jnames(missing, n_missing));
        bad |= json_object_set_new(in, "findings", checklist_jfindings_of(c));
        bad |= json_object_set_new(in, "fault", ename(&ENUM_FAULT, c->fault));
        if (c->component)
            bad |= json_object_set_new(in, "component", json_string(c->component));

        bad |= json_object_set_new(cs, "today", date_json(today));
        bad |= json_object_set(cs, "rma", r);
        bad |= json_object_set(cs, "product", p);
        bad |= json_object_set(cs, "inspection", in);
    }
    json_decref(r);
    json_decref(p);
    json_decref(in);
    if (bad) {
        json_decref(cs);
        return NULL;
    }
    return cs;
}
/* Add accessory `name` to the checklist (once). 0, 1 when the list is full, -ENOMEM. */
int checklist_add_acc(checklist_t *c, const char *name)
{
    if (checklist_has_acc(c, name))
        return 0;
    if (c->n_acc == CHECKLIST_MAX_ACC)
        return 1;
    if (!(c->acc[c->n_acc] = strdup(name)))
        return -ENOMEM;
    c->n_acc++;
    return 0;
}
/* ------------------------------------------------------- what the unit needs ---- */


void checklist_needs_free(checklist_needs_t *n)
{
    free(n->missing);
    memset(n, 0, sizeof(*n));
}

/* Accessories the policy expects for this product (by model, then family) that the
 * checklist does not have (spec station, step 3). */
int checklist_missing(const policy_t *pol, const db_rma_t *rma, const checklist_t *c,
                               checklist_needs_t *n)
{
    const char *const *exp = policy_accessories(pol, nonempty(rma->model), nonempty(rma->family));
    size_t n_exp = 0;
    while (exp && exp[n_exp])
        n_exp++;
    if (!n_exp)
        return 0;
    if (!(n->missing = calloc(n_exp, sizeof(*n->missing))))
        return -ENOMEM;
    for (size_t i = 0; i < n_exp; i++)
        if (!checklist_has_acc(c, exp[i]))
            n->missing[n->n_missing++] = exp[i];
    return 0;
}

/*
 * What the open unit still needs before CMD-DONE (docs/station.md, "The checklist"):
 * its serial, and each item the worker has not answered whose default would change
 * the outcome, asked of the policy with the very case CMD-DONE would evaluate
 * (policy_items_deciding). Without an RMA or a policy only the serial is asked: the
 * unit is held for a person whatever else is scanned. rma may be NULL. Fills *n
 * (checklist_needs_free, also on failure); 0 or -ENOMEM.
 */
int checklist_needs(const policy_t *pol, const checklist_t *c, const db_rma_t *rma,
                    checklist_needs_t *n)
{
    memset(n, 0, sizeof(*n));
    n->serial = !c->serial && c->serial_label == LABEL_INTACT;
    if (!pol || !rma)
        return 0;
    int r = checklist_missing(pol, rma, c, n);
    if (r < 0)
        return r;
    json_t *cs = checklist_case(rma, c, n->missing, n->n_missing, caldate_today());
    if (!cs)
        return -ENOMEM;
    policy_case_t pc;
    char *err = NULL;
    r = case_from_json_policy(cs, pol, &pc, &err);
    json_decref(cs);
    free(err);
    if (r == -EINVAL)
        return 0;   /* a stored RMA the contract refuses: CMD-DONE says so */
    if (r < 0)
        return r;
    r = policy_items_deciding(pol, &pc, POLICY_ITEM_ALL & ~c->answered, &n->items);
    policy_case_free(&pc);
    return r;
}

static const char *item_label(unsigned bit)
{
    switch (bit) {
    case POLICY_ITEM_PACKAGING: return "the packaging";
    case POLICY_ITEM_SEAL: return "the seal";
    case POLICY_ITEM_ACCESSORIES: return "the accessories";
    default: return "the fault test";
    }
}

static const char *item_barcodes(unsigned bit)
{
    switch (bit) {
    case POLICY_ITEM_PACKAGING: return "PKG-ORIGINAL, PKG-REPLACEMENT or PKG-NONE";
    case POLICY_ITEM_SEAL: return "SEAL-INTACT or SEAL-BROKEN";
    case POLICY_ITEM_ACCESSORIES: return "ACC-ALL, ACC-NONE, or ACC-<name> for each one there";
    default: return "FAULT-CONFIRMED, FAULT-NFF, FAULT-DOA or FAULT-UNTESTED";
    }
}

/* "a, b, c" of n names into f. */
void checklist_put_names(FILE *f, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? ", " : "", names[i]);
}

/*
 * The first item still to answer, "the accessories (power-adapter, remote)", and with
 * how = true its barcodes and the items after it: "answer the seal: SEAL-INTACT or
 * SEAL-BROKEN; then the fault test". Malloc'd; 0 or -ENOMEM.
 */
int checklist_item_text(const checklist_needs_t *n, bool how, char **out)
{
    unsigned first = n->items & (~n->items + 1);
    size_t len = 0;
    FILE *f = open_memstream(out, &len);
    if (!f)
        return -ENOMEM;
    fprintf(f, "%s%s", how ? "answer " : "", item_label(first));
    if (first == POLICY_ITEM_ACCESSORIES) {
        fputs(" (", f);
        checklist_put_names(f, n->missing, n->n_missing);
        fputs(")", f);
    }
    if (how) {
        fprintf(f, ": %s", item_barcodes(first));
        const char *sep = "; then ";
        for (unsigned b = first << 1; b & POLICY_ITEM_ALL; b <<= 1)
            if (n->items & b) {
                fprintf(f, "%s%s", sep, item_label(b));
                sep = ", ";
            }
    }
    return fclose(f) == 0 && *out ? 0 : -ENOMEM;
}

/* What to scan next on an open receipt with these needs. */
int checklist_next(const checklist_needs_t *n, char **out)
{
    free(*out);
    *out = NULL;
    if (n->serial || !n->items)
        return (*out = strdup(n->serial ? NEXT_SERIAL : NEXT_DONE)) ? 0 : -ENOMEM;
    return checklist_item_text(n, true, out);
}
