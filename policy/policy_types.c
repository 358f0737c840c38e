/* The names of the policy contract's enums, the fact table, case/result lifetimes. */
#include <ctype.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_internal.h"

#define ENUMDEF(var, what_, ...)                                                         \
    static const char *const var##_names[] = { __VA_ARGS__ };                           \
    const enumdef_t var = { what_, var##_names,                                          \
                            (int)(sizeof(var##_names) / sizeof(var##_names[0])) }

/* Order = the C enum order in policy.h. */
ENUMDEF(ENUM_RMA_KIND, "rma kind", "warranty", "credit", "advance_replacement", "otc_exchange");
ENUMDEF(ENUM_SERIAL_LABEL, "serial label", "intact", "damaged", "removed");
ENUMDEF(ENUM_PACKAGING, "packaging", "original", "replacement", "none");
ENUMDEF(ENUM_SEAL, "seal", "intact", "broken");
ENUMDEF(ENUM_FAULT, "fault", "confirmed", "no_fault_found", "doa", "not_tested");
ENUMDEF(ENUM_DISPOSITION, "disposition", "refuse", "restock", "restock_fee", "warranty_repair",
        "warranty_exchange", "paid_repair", "return_to_customer", "quarantine");
ENUMDEF(ENUM_WARRANTY_STATUS, "warranty status", "in", "out", "void", "excluded",
        "not_applicable", "unknown");
ENUMDEF(ENUM_FLAG, "flag", "wipe_media", "bill_customer", "manual_review",
        "customer_pays_freight");
ENUMDEF(ENUM_BASIS, "basis", "purchased", "shipped", "invoiced", "delivered", "previous_repair");
ENUMDEF(ENUM_PREV_REPAIR, "previous repair", "repaired", "replaced");
ENUMDEF(ENUM_SERVICE, "service", "exchange", "repair");
ENUMDEF(ENUM_SERIAL_MATCH, "serial match", "match", "mismatch", "unknown");
ENUMDEF(ENUM_SERIAL_STATE, "serial", "absent", "unreadable", "read");
ENUMDEF(ENUM_ACCESSORIES, "accessories", "complete", "incomplete");
ENUMDEF(ENUM_SHORTFALL, "shortfall", "open_box", "foam", "accessories");

const enumdef_t ENUM_FINDING = { "finding", finding_names, FINDING__COUNT };

int enumdef_find(const enumdef_t *def, const char *name)
{
    for (int i = 0; i < def->count; i++)
        if (strcmp(def->names[i], name) == 0)
            return i;
    return -1;
}

/*
 * "a|b|c", built at each call into a per-thread buffer: policies declare enums of their
 * own (vocabulary) that live only as long as the policy, so nothing is cached by
 * address. Long lists end in "|...".
 */
const char *enumdef_expected(const enumdef_t *def)
{
    static _Thread_local char buf[1024];
    size_t len = 0;
    buf[0] = '\0';
    for (int k = 0; k < def->count; k++) {
        size_t n = strlen(def->names[k]);
        if (len + n + 5 >= sizeof(buf)) {
            strcpy(buf + len, "|...");
            break;
        }
        if (k)
            buf[len++] = '|';
        memcpy(buf + len, def->names[k], n + 1);
        len += n;
    }
    return buf;
}

const fact_def_t policy_facts[F__COUNT] = {
    [F_RMA_PRESENT] = { "rma.present", FT_BOOL, NULL },
    [F_RMA_KIND] = { "rma.kind", FT_ENUM, &ENUM_RMA_KIND },
    [F_RMA_ISSUED] = { "rma.issued", FT_DATE, NULL },
    [F_RMA_ORDER_VALUE] = { "rma.order_value", FT_NUMBER, NULL },
    [F_RMA_PROOF_OF_PURCHASE] = { "rma.proof_of_purchase", FT_BOOL, NULL },
    [F_RMA_DEFECT_DISCOVERED] = { "rma.defect_discovered", FT_DATE, NULL },
    [F_SERIAL_MATCH] = { "serial.match", FT_ENUM, &ENUM_SERIAL_MATCH },
    [F_PRODUCT_MODEL] = { "product.model", FT_STRING, NULL },
    [F_PRODUCT_FAMILY] = { "product.family", FT_STRING, NULL },
    [F_PRODUCT_PURCHASED] = { "product.purchased", FT_DATE, NULL },
    [F_PRODUCT_SHIPPED] = { "product.shipped", FT_DATE, NULL },
    [F_PRODUCT_INVOICED] = { "product.invoiced", FT_DATE, NULL },
    [F_PRODUCT_DELIVERED] = { "product.delivered", FT_DATE, NULL },
    [F_PRODUCT_REFURBISHED] = { "product.refurbished", FT_BOOL, NULL },
    [F_PRODUCT_PREV_REPAIR] = { "product.previous_repair.kind", FT_ENUM, &ENUM_PREV_REPAIR },
    [F_PRODUCT_PREV_REPAIR_DATE] = { "product.previous_repair.date", FT_DATE, NULL },
    [F_PRODUCT_WARRANTY_MONTHS] = { "product.warranty_months", FT_NUMBER, NULL },
    [F_PRODUCT_HAS_STORAGE_MEDIA] = { "product.has_storage_media", FT_BOOL, NULL },
    [F_PRODUCT_SAMPLE] = { "product.sample", FT_BOOL, NULL },
    [F_PRODUCT_LISTED] = { "product.listed", FT_BOOL, NULL },
    [F_INSP_SERIAL] = { "inspection.serial", FT_ENUM, &ENUM_SERIAL_STATE },
    [F_INSP_SERIAL_LABEL] = { "inspection.serial_label", FT_ENUM, &ENUM_SERIAL_LABEL },
    [F_INSP_RMA_MARKED] = { "inspection.rma_marked_on_package", FT_BOOL, NULL },
    [F_INSP_PACKAGING] = { "inspection.packaging", FT_ENUM, &ENUM_PACKAGING },
    [F_INSP_FOAM] = { "inspection.foam", FT_BOOL, NULL },
    [F_INSP_SEAL] = { "inspection.seal", FT_ENUM, &ENUM_SEAL },
    [F_INSP_OPENED] = { "inspection.opened", FT_BOOL, NULL },
    [F_INSP_FINDINGS] = { "inspection.findings", FT_SET, &ENUM_FINDING },
    [F_INSP_FAULT] = { "inspection.fault", FT_ENUM, &ENUM_FAULT },
    [F_INSP_COMPONENT] = { "inspection.component", FT_STRING, NULL },
    [F_INSP_ACCESSORIES] = { "inspection.accessories", FT_ENUM, &ENUM_ACCESSORIES },
    [F_INSP_ACCESSORIES_MISSING] = { "inspection.accessories_missing", FT_STRSET, NULL },
    [F_WARRANTY_STATUS] = { "warranty.status", FT_ENUM, &ENUM_WARRANTY_STATUS },
    [F_WARRANTY_SERVICE] = { "warranty.service", FT_ENUM, &ENUM_SERVICE },
    [F_WARRANTY_PERIOD] = { "warranty.period", FT_PERIOD, NULL },
    [F_WARRANTY_STARTS] = { "warranty.starts", FT_DATE, NULL },
    [F_WARRANTY_ENDS] = { "warranty.ends", FT_DATE, NULL },
};

int policy_fact_find(const char *name)
{
    for (int i = 0; i < F__COUNT; i++)
        if (strcmp(policy_facts[i].name, name) == 0)
            return i;
    return -1;
}

int policy_fact_lookup(const policy_t *p, const char *name)
{
    int f = policy_fact_find(name);
    for (size_t i = 0; f < 0 && p && i < p->n_xfacts; i++)
        if (strcmp(p->xfacts[i].def.name, name) == 0)
            f = F__COUNT + (int)i;
    return f;
}

const fact_def_t *policy_fact_def(const policy_t *p, int id)
{
    if (id >= F__COUNT)
        return &p->xfacts[id - F__COUNT].def;
    if (id == F_INSP_FINDINGS && p && p->finding_names)
        return &p->findings_def;
    return &policy_facts[id];
}

const enumdef_t *policy_findings(const policy_t *p)
{
    return p && p->finding_names ? &p->finding_en : &ENUM_FINDING;
}

const char *policy_finding_text(const policy_t *p, int i)
{
    if (i < FINDING__COUNT)
        return finding_description((finding_t)i);
    if (!p || (size_t)(i - FINDING__COUNT) >= p->n_xfind)
        return NULL;
    const xfinding_t *x = &p->xfind[i - FINDING__COUNT];
    return x->text ? x->text : x->name;
}

size_t policy_custom_findings(const policy_t *p)
{
    return p ? p->n_xfind : 0;
}

size_t policy_custom_fact_count(const policy_t *p)
{
    return p ? p->n_xfacts : 0;
}

const char *policy_custom_fact(const policy_t *p, size_t i, const enumdef_t **values)
{
    const xfact_t *x = &p->xfacts[i];
    *values = x->def.type == FT_ENUM ? &x->values : NULL;
    return x->def.name;
}

/* Lowercase, runs of spaces/tabs folded to one, ends trimmed: "S9Z  4" == "s9z 4". */
static void fold_name(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    int space = 0;
    while (*in == ' ' || *in == '\t')
        in++;
    for (; *in && n + 1 < cap; in++) {
        if (*in == ' ' || *in == '\t') {
            space = 1;
            continue;
        }
        if (space && n + 2 < cap)
            out[n++] = ' ';
        space = 0;
        out[n++] = (char)tolower((unsigned char)*in);
    }
    out[n] = '\0';
}

bool policy_name_match(const char *pattern, const char *name)
{
    if (!pattern || !name)
        return false;
    /* Names longer than this are not model names; they never match. */
    char p[256], s[256];
    if (strlen(pattern) >= sizeof(p) || strlen(name) >= sizeof(s))
        return false;
    fold_name(pattern, p, sizeof(p));
    fold_name(name, s, sizeof(s));
    return fnmatch(p, s, 0) == 0;
}

void policy_case_init(policy_case_t *c)
{
    memset(c, 0, sizeof(*c));
    c->today = CALDATE_NONE;
    c->rma.issued = CALDATE_NONE;
    c->rma.kind = RMA_WARRANTY;
    c->rma.proof_of_purchase = true;
    c->product.purchased = c->product.shipped = c->product.invoiced = CALDATE_NONE;
    c->product.delivered = c->product.previous_repair.date = CALDATE_NONE;
    c->rma.defect_discovered = CALDATE_NONE;
    c->product.warranty_months = -1;
    c->inspection.serial_state = SERIAL_ABSENT;
    c->inspection.serial_label = LABEL_INTACT;
    c->inspection.rma_marked_on_package = true;
    c->inspection.packaging = PKG_ORIGINAL;
    c->inspection.foam = true;
    c->inspection.seal = SEAL_INTACT;
    c->inspection.fault = FAULT_NOT_TESTED;
    for (int i = 0; i < POLICY_MAX_FACTS; i++)
        c->custom[i] = -1;
}

void policy_case_free(policy_case_t *c)
{
    if (!c)
        return;
    free(c->rma.number);
    free(c->rma.expected_serial);
    free(c->product.vendor);
    free(c->product.model);
    free(c->product.family);
    free(c->inspection.serial);
    for (size_t i = 0; i < c->inspection.n_accessories_missing; i++)
        free(c->inspection.accessories_missing[i]);
    free(c->inspection.accessories_missing);
    free(c->inspection.component);
    policy_case_init(c);
}

void policy_result_free(policy_result_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_reasons; i++) {
        free(r->reasons[i].rule);
        free(r->reasons[i].text);
    }
    free(r->reasons);
    memset(r, 0, sizeof(*r));
}
