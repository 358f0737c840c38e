/*
 * The policy engine: one vendor's warranty/return policy, loaded from a YAML data
 * file, evaluated against one return ("case"). This is the only code that decides a
 * disposition; `rmactl policy eval` and the daemon's stations both call
 * policy_evaluate(), so what the command prints is what the dock does.
 *
 * The policy language is documented in docs/policy.md; the case and result are the
 * contract of spec policy-eval (proto/case_json.h and proto/result_json.h carry them
 * to and from JSON).
 */
#ifndef RMAD_POLICY_H
#define RMAD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/caldate.h"
#include "policy/findings.h"

/* A closed set of names: the enums of the case and result, and their parsing. */
typedef struct {
    const char *what;          /* for messages: "packaging" */
    const char *const *names;  /* index = enum value */
    int count;
} enumdef_t;

/* Index of name in def (exact, lowercase names), or -1. */
int enumdef_find(const enumdef_t *def, const char *name);

/* "a|b|c" for error messages; a per-thread buffer valid until the next call. */
const char *enumdef_expected(const enumdef_t *def);

typedef enum { RMA_WARRANTY, RMA_CREDIT, RMA_ADVANCE_REPLACEMENT, RMA_OTC_EXCHANGE } rma_kind_t;
typedef enum { LABEL_INTACT, LABEL_DAMAGED, LABEL_REMOVED } serial_label_t;
typedef enum { PKG_ORIGINAL, PKG_REPLACEMENT, PKG_NONE } packaging_t;
typedef enum { SEAL_INTACT, SEAL_BROKEN } seal_t;
typedef enum { FAULT_CONFIRMED, FAULT_NO_FAULT_FOUND, FAULT_DOA, FAULT_NOT_TESTED } fault_t;
typedef enum { SERIAL_ABSENT, SERIAL_UNREADABLE, SERIAL_READ } serial_state_t;

extern const enumdef_t ENUM_RMA_KIND, ENUM_SERIAL_LABEL, ENUM_PACKAGING, ENUM_SEAL, ENUM_FAULT,
    ENUM_FINDING, ENUM_DISPOSITION, ENUM_WARRANTY_STATUS, ENUM_FLAG, ENUM_BASIS, ENUM_SERVICE;

/*
 * How much vocabulary one policy may declare (docs/policy.md, "Vocabulary"): its own
 * findings take the bits after the built-in ones in a 64-bit set.
 */
#define POLICY_MAX_FINDINGS (64 - FINDING__COUNT)
#define POLICY_MAX_FACTS 32

/* One return as received at the dock. Strings are owned by the case (policy_case_free). */
typedef struct {
    caldate_t today;                 /* the receiving date; never the wall clock */
    bool has_rma;
    struct {
        char *number;
        caldate_t issued;            /* CALDATE_NONE when not given */
        rma_kind_t kind;
        char *expected_serial;
        bool has_order_value;
        double order_value;
        bool proof_of_purchase;
        caldate_t defect_discovered; /* when the customer found the defect (V7: claims
                                        within two months of it); CALDATE_NONE: not said */
    } rma;
    struct {
        char *vendor, *model, *family;
        caldate_t purchased, shipped, invoiced;
        caldate_t delivered;         /* delivered to the customer; CALDATE_NONE: not known */
        int warranty_months;         /* -1 when the unit states none */
        bool has_storage_media;
        bool sample;
        bool refurbished;            /* sold refurbished */
        struct {
            caldate_t date;          /* the unit was repaired or is a replacement from this
                                        date; CALDATE_NONE: never (the dates above are the
                                        original sale's either way) */
            int kind;                /* PREV_REPAIRED or PREV_REPLACED */
        } previous_repair;
    } product;
    struct {
        serial_state_t serial_state;
        char *serial;                /* when SERIAL_READ */
        serial_label_t serial_label;
        bool rma_marked_on_package;
        packaging_t packaging;
        bool foam;
        seal_t seal;
        char **accessories_missing;  /* names as given */
        size_t n_accessories_missing;
        uint64_t findings;           /* bit (1ull << finding_t); the policy's own findings
                                        (vocabulary) from bit FINDING__COUNT on */
        fault_t fault;
        char *component;             /* NULL: the claim is about the whole unit */
    } inspection;
    /* The policy's own facts (vocabulary), by declaration order: a bool 0/1 or an enum
     * value's index; -1 where the case does not say (the fact's default applies). */
    int custom[POLICY_MAX_FACTS];
} policy_case_t;

/*
 * The station contract's serial comparison: trimmed, case-folded equality. The one
 * copy of the rule, used by the evaluation's serial-mismatch check and the stations.
 */
bool policy_serial_equal(const char *a, const char *b);

/* Set every field to its contract default (absent = unremarkable). */
void policy_case_init(policy_case_t *c);
void policy_case_free(policy_case_t *c);

typedef enum {
    DISP_REFUSE, DISP_RESTOCK, DISP_RESTOCK_FEE, DISP_WARRANTY_REPAIR, DISP_WARRANTY_EXCHANGE,
    DISP_PAID_REPAIR, DISP_RETURN_TO_CUSTOMER, DISP_QUARANTINE
} disposition_t;

typedef enum { WS_IN, WS_OUT, WS_VOID, WS_EXCLUDED, WS_NOT_APPLICABLE, WS_UNKNOWN } wstatus_t;

/* BASIS_PREVIOUS_REPAIR is a result only: the warranty runs from a repair or
 * replacement (`after_repair`), never a `basis:` a policy names. */
typedef enum { BASIS_PURCHASED, BASIS_SHIPPED, BASIS_INVOICED, BASIS_DELIVERED,
               BASIS_PREVIOUS_REPAIR } basis_t;
#define BASIS_NAMED_COUNT 4

typedef enum { PREV_REPAIRED, PREV_REPLACED } prev_repair_t;
extern const enumdef_t ENUM_PREV_REPAIR;

typedef enum { SERVICE_EXCHANGE, SERVICE_REPAIR } service_t;

typedef enum {
    FLAG_WIPE_MEDIA = 1u << 0,
    FLAG_BILL_CUSTOMER = 1u << 1,
    FLAG_MANUAL_REVIEW = 1u << 2,
    FLAG_CUSTOMER_PAYS_FREIGHT = 1u << 3,
} policy_flag_t;
#define POLICY_FLAG_COUNT 4

typedef struct {
    char *rule;  /* rule id in the policy file, or "rmad-..." for built-in checks */
    char *text;
} policy_reason_t;

typedef struct {
    disposition_t disposition;
    double restocking_fee_pct;
    double restocking_fee_amount;    /* a fixed fee in the policy's currency; 0: none */
    struct {
        wstatus_t status;
        bool has_basis;              /* basis/starts/ends known */
        basis_t basis;
        caldate_t starts, ends;      /* ends = starts + period (first uncovered day) */
    } warranty;
    unsigned flags;                  /* policy_flag_t bits */
    policy_reason_t *reasons;        /* at least one; the deciding reason first */
    size_t n_reasons;
} policy_result_t;

void policy_result_free(policy_result_t *r);

typedef struct policy policy_t;

/*
 * Load and validate a policy file. Returns 0 and sets *out, or a negative errno with
 * *errmsg set to a malloc'd "FILE:LINE: message" (caller frees).
 * Cost: one pass over the YAML document; all names are resolved here, so evaluation
 * never meets an unknown field.
 */
int policy_load(const char *path, policy_t **out, char **errmsg);

/* Same, from text in memory; name is used in messages. */
int policy_load_text(const char *text, size_t len, const char *name, policy_t **out,
                     char **errmsg);

void policy_destroy(policy_t **p);

const char *policy_vendor(const policy_t *p);
const char *policy_file(const policy_t *p);

/*
 * What a decision records so it can be audited after the file changed (docs/policy.md,
 * "Auditing a decision"): the SHA-256 of the file's bytes as loaded (64 lowercase hex
 * digits) and its optional `version:` (NULL when the file has none). Owned by p.
 */
const char *policy_sha256(const policy_t *p);
const char *policy_version(const policy_t *p);

/*
 * The policy's vocabulary (docs/policy.md, "Vocabulary"). policy_findings(): every
 * finding a case for p may hold, the built-in ones first (index = finding bit); with
 * p NULL the built-in list. policy_finding_text(): finding i in words for people.
 * policy_custom_findings(): how many p declares itself (indexes FINDING__COUNT on).
 * Owned by p (or static).
 */
const enumdef_t *policy_findings(const policy_t *p);
const char *policy_finding_text(const policy_t *p, int i);
size_t policy_custom_findings(const policy_t *p);

/*
 * The policy's own facts: how many, and fact i's full name ("inspection.panel_grade")
 * and values: an enum's names, or NULL for a bool. Owned by p.
 */
size_t policy_custom_fact_count(const policy_t *p);
const char *policy_custom_fact(const policy_t *p, size_t i, const enumdef_t **values);

/* Does this policy apply to the vendor name (its name or an alias, case-insensitive)? */
bool policy_matches_vendor(const policy_t *p, const char *vendor);

/*
 * Accessories the policy expects with this product (by model, then family): a
 * NULL-terminated array owned by the policy, or NULL when the policy lists none.
 */
const char *const *policy_accessories(const policy_t *p, const char *model, const char *family);

/*
 * A policy's accessory lists as written (for the command sheet): how many, and list
 * i's models and families (NULL-terminated, either may be NULL), item names and part
 * numbers (same length as names; NULL entries where an item has none). All owned by
 * the policy.
 */
size_t policy_accessory_set_count(const policy_t *p);
void policy_accessory_set(const policy_t *p, size_t i, const char *const **models,
                          const char *const **families, const char *const **names,
                          const char *const **parts);

/* Index of the list policy_accessories() would use for this product, or -1. */
int policy_accessory_set_for(const policy_t *p, const char *model, const char *family);

/* If `part` is the part number of an expected accessory, its name; else NULL. */
const char *policy_accessory_by_part(const policy_t *p, const char *model, const char *family,
                                     const char *part);

/*
 * Evaluate a case. Pure: reads neither clock nor files. Returns 0 and fills *out
 * (free with policy_result_free), or -ENOMEM.
 */
int policy_evaluate(const policy_t *p, const policy_case_t *c, policy_result_t *out);

/*
 * Is the RMA itself refused, before anything is inspected? The first rule that
 * decides `refuse` and tests nothing but rma.* fields (the vendor's RMA validity
 * clauses: "RMA valid 30 days") and matches the case. Returns 1 and sets *rule and
 * *text (malloc'd, caller frees), 0 when no such rule matches, or -ENOMEM. The
 * station asks this when an RMA is scanned (spec station: an expired RMA is refused
 * at the dock); CMD-DONE would refuse by the same rule anyway.
 */
int policy_rma_refusal(const policy_t *p, const policy_case_t *c, char **rule, char **text);

/*
 * The checklist items a dock worker answers at the station (docs/station.md, "The
 * checklist"). Each has a contract default (packaging original, seal intact, fault
 * not tested, every accessory not scanned missing) that must never decide a receipt
 * unless the worker confirmed it.
 */
enum {
    POLICY_ITEM_PACKAGING = 1u << 0,
    POLICY_ITEM_SEAL = 1u << 1,
    POLICY_ITEM_ACCESSORIES = 1u << 2,
    POLICY_ITEM_FAULT = 1u << 3,
};
#define POLICY_ITEM_ALL 0xfu

/*
 * Of the items in `unanswered`, which would change this case's decision if the worker
 * answered otherwise than what the case holds now: for each item, every other value
 * (accessories: none missing instead of the case's accessories_missing) is evaluated
 * with the rest of the case unchanged, and the item counts when the disposition, the
 * restocking fee, the warranty status or the flags differ. So a vendor that never
 * charges for accessories never asks for them. Pure, like policy_evaluate; the case
 * is modified during the call and restored. Cost: at most 8 evaluations.
 * Returns 0 and sets *deciding (POLICY_ITEM_* bits), or -ENOMEM.
 */
int policy_items_deciding(const policy_t *p, policy_case_t *c, unsigned unanswered,
                          unsigned *deciding);

/*
 * A policy's clauses, for tests that prove each one is exercised by some case: its
 * rules in file order, then its warranty table entries, then its default entry.
 * policy_evaluate_without() evaluates as if clause `skip` did not exist (-1: none).
 */
size_t policy_clause_count(const policy_t *p);

/* "rule rma-valid-30-days", "table line 12 (Table 1: UPS)", "default": static per call. */
const char *policy_clause_name(const policy_t *p, size_t i);

int policy_evaluate_without(const policy_t *p, const policy_case_t *c, int skip,
                            policy_result_t *out);

/*
 * Warnings about policies that load but cannot mean what they say (docs/policy.md,
 * "Checking a policy"): a deciding rule that can never fire because an earlier rule
 * always decides first, a window no date satisfies (`after: 30d, within: 10d`), a
 * deciding rule with no `when`, and a vendor name claimed by two of the n files.
 * Returns 0 and sets *out to *n_out malloc'd "FILE:LINE: warning: ..." lines (free
 * with policy_warnings_free; NULL when none), or -ENOMEM.
 */
int policy_lint(const policy_t *const *ps, size_t n, char ***out, size_t *n_out);
void policy_warnings_free(char **w, size_t n);

#endif
