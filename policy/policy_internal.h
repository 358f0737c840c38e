/*
 * Internal model of a loaded policy, shared by policy_load.c (YAML -> model) and
 * policy_eval.c (model x case -> result). Not for other modules.
 */
#ifndef RMAD_POLICY_INTERNAL_H
#define RMAD_POLICY_INTERNAL_H

#include "core/sha256.h"
#include "policy/policy.h"

/* ---- facts: what a rule condition may look at ---------------------------------- */

typedef enum {
    FT_BOOL,     /* true / false */
    FT_ENUM,     /* one name of an enumdef */
    FT_STRING,   /* free text, compared case-insensitively, globs allowed */
    FT_DATE,     /* a date, tested against windows relative to `today` */
    FT_NUMBER,
    FT_SET,      /* a set of names of an enumdef (findings) */
    FT_STRSET,   /* a set of free-text names (accessories missing) */
    FT_PERIOD,   /* a duration (the warranty period that applies) */
} fact_type_t;

/* The rma.* facts come first, up to F_RMA_LAST: policy_rma_refusal() relies on it. */
typedef enum {
    F_RMA_PRESENT, F_RMA_KIND, F_RMA_ISSUED, F_RMA_ORDER_VALUE, F_RMA_PROOF_OF_PURCHASE,
    F_RMA_DEFECT_DISCOVERED,
    F_SERIAL_MATCH,
    F_PRODUCT_MODEL, F_PRODUCT_FAMILY, F_PRODUCT_PURCHASED, F_PRODUCT_SHIPPED,
    F_PRODUCT_INVOICED, F_PRODUCT_DELIVERED, F_PRODUCT_REFURBISHED, F_PRODUCT_PREV_REPAIR,
    F_PRODUCT_PREV_REPAIR_DATE, F_PRODUCT_WARRANTY_MONTHS, F_PRODUCT_HAS_STORAGE_MEDIA,
    F_PRODUCT_SAMPLE, F_PRODUCT_LISTED,
    F_INSP_SERIAL, F_INSP_SERIAL_LABEL, F_INSP_RMA_MARKED, F_INSP_PACKAGING, F_INSP_FOAM,
    F_INSP_SEAL, F_INSP_OPENED, F_INSP_FINDINGS, F_INSP_FAULT, F_INSP_COMPONENT,
    F_INSP_ACCESSORIES, F_INSP_ACCESSORIES_MISSING,
    F_WARRANTY_STATUS, F_WARRANTY_SERVICE, F_WARRANTY_PERIOD, F_WARRANTY_STARTS,
    F_WARRANTY_ENDS,
    F__COUNT
} fact_id_t;
#define F_RMA_LAST F_RMA_DEFECT_DISCOVERED

typedef struct {
    const char *name;      /* as written in policies: "inspection.packaging" */
    fact_type_t type;
    const enumdef_t *en;   /* FT_ENUM / FT_SET */
} fact_def_t;

extern const fact_def_t policy_facts[F__COUNT];

/* Built-in fact id by name, or -1. */
int policy_fact_find(const char *name);

/*
 * With the policy's vocabulary: fact id by name (its own facts are F__COUNT + i), or
 * -1; and the definition of id (inspection.findings with the policy's findings).
 */
int policy_fact_lookup(const policy_t *p, const char *name);
const fact_def_t *policy_fact_def(const policy_t *p, int id);

/* A policy's own finding or fact (`vocabulary:`). */
typedef struct {
    char *name;           /* "screen_burn_in" */
    char *text;           /* words for people; NULL: the name */
} xfinding_t;

typedef struct {
    fact_def_t def;       /* name: "inspection.panel_grade"; FT_BOOL or FT_ENUM (en = &values) */
    enumdef_t values;
    int deflt;            /* the value when the case does not say */
} xfact_t;

extern const enumdef_t ENUM_SERIAL_MATCH, ENUM_SERIAL_STATE, ENUM_ACCESSORIES;

/* ---- conditions ---------------------------------------------------------------- */

typedef enum {
    OP_EQ,        /* bool/enum/string/number equality; string: glob, case-insensitive */
    OP_IN,        /* enum/string one of a list */
    OP_KNOWN,     /* the fact has a value (b) */
    OP_WITHIN,    /* date known and today <= date + dur */
    OP_AFTER,     /* date known and today >  date + dur */
    OP_BEFORE,    /* date known and date <  a fixed calendar date */
    OP_ON_OR_AFTER, /* date known and date >= a fixed calendar date */
    OP_LT, OP_LE, OP_GT, OP_GE,  /* number or period */
    OP_ANY,       /* set contains any of */
    OP_ALL,       /* set contains all of */
    OP_NONE,      /* set contains none of */
    OP_EMPTY,     /* set emptiness equals b */
} cond_op_t;

typedef struct {
    int fact;             /* fact_id_t, or F__COUNT + i: the policy's own fact i */
    fact_type_t type;     /* the fact's type */
    cond_op_t op;
    int at;               /* OP_WITHIN/OP_AFTER: date fact to measure at, -1 = today */
    bool b;
    double num;
    duration_t dur;
    caldate_t date;       /* OP_BEFORE / OP_ON_OR_AFTER */
    int line;             /* where the test is written (linter messages) */
    uint64_t bits;        /* enum values (OP_EQ/OP_IN) or set members, as bits */
    char **strs;          /* string / strset operands */
    size_t n_strs;
} cond_t;

typedef enum { GROUP_ALL, GROUP_ANY, GROUP_NOT } group_kind_t;

typedef struct group {
    group_kind_t kind;    /* how conds and children combine */
    cond_t *conds;
    size_t n_conds;
    struct group *children;
    size_t n_children;
} group_t;

/* ---- rules --------------------------------------------------------------------- */

/* What a ranged fee counts as shortfalls (fee.counts in the policy). */
enum { SHORT_OPEN_BOX = 1u << 0, SHORT_FOAM = 1u << 1, SHORT_ACCESSORIES = 1u << 2 };
extern const enumdef_t ENUM_SHORTFALL;

typedef struct {
    bool is_range;
    bool is_amount;       /* a fixed amount in the policy's currency, not a percentage */
    bool adds;            /* adds to the other fees instead of replacing a lower one */
    double pct;           /* fixed percentage or amount, or the low end of a range */
    double max, step;     /* range: pct + step per further shortfall, capped at max */
    unsigned counts;      /* range: SHORT_* bits counted */
} fee_t;

typedef struct {
    char *id;
    char *clause;         /* where the vendor's text says it, for people */
    int line;
    group_t *when;        /* NULL: always */
    group_t *unless;      /* NULL: never */
    bool has_disposition;
    disposition_t disposition;
    bool has_warranty;
    wstatus_t warranty;
    bool has_fee;
    fee_t fee;
    unsigned flags;
    unsigned on;          /* bit per disposition_t: the outcomes this rule's fee, flags and
                             reason count on; 0 = every outcome (rules without a fee) */
    char *reason;         /* template: {fact.name} and {fee} are substituted */
} rule_t;

/* ---- warranty table ------------------------------------------------------------ */

typedef struct {
    char *name;
    bool excluded;        /* component not covered at all */
    duration_t period;
} component_t;

/*
 * A repaired or replaced unit's warranty (`after_repair`): Softnetworks' "the
 * replacement's warranty ends with the original's" is `remainder` (no period); QCT's
 * "90 days or the remainder, whichever is longer" is `{period: 90d, or_remainder: true}`;
 * `{period: 6m}` alone is a fresh warranty from the repair.
 */
typedef struct {
    bool set;
    bool has_period;
    duration_t period;    /* from the repair/replacement date */
    bool or_remainder;    /* the original's end when it is later */
    unsigned kinds;       /* bit per prev_repair_t it applies to */
} after_repair_t;

/* The dates a warranty may start on, in order of preference. */
typedef struct {
    basis_t b[BASIS_NAMED_COUNT];
    size_t n;
} basis_list_t;

typedef struct {
    char **models;        /* globs, case-insensitive; NULL-terminated or NULL */
    char **families;      /* names, case-insensitive; NULL-terminated or NULL */
    char *label;          /* how the vendor's table names it */
    bool has_period;
    duration_t period;
    basis_list_t basis;   /* n == 0: the policy's warranty.basis */
    bool has_refurbished;
    duration_t refurbished;  /* the period of a unit sold refurbished */
    after_repair_t after_repair;  /* unset: the policy's warranty.after_repair */
    service_t service;
    component_t *components;
    size_t n_components;
    char *ask_vendor;     /* non-NULL: the vendor decides per unit (status unknown) */
    int line;
} wentry_t;

typedef struct {
    char **models;
    char **families;
    char **names;         /* NULL-terminated, what policy_accessories() returns */
    char **parts;         /* same length as names; NULL entry when no part number */
} accset_t;

struct policy {
    char *file;
    char *vendor;
    char *version;        /* `version:` as written, NULL when the file has none */
    char sha256[SHA256_HEXLEN];  /* of the file's bytes, as loaded */
    char **aliases;       /* NULL-terminated or NULL */
    int aliases_line;     /* where `aliases:` is written (linter messages) */
    basis_list_t basis;
    after_repair_t after_repair;
    wentry_t *table;
    size_t n_table;
    bool has_default;
    wentry_t deflt;
    accset_t *acc;
    size_t n_acc;
    rule_t *rules;
    size_t n_rules;
    /* vocabulary: the policy's own findings and facts */
    xfinding_t *xfind;
    size_t n_xfind;
    const char **finding_names;  /* built-in then own: what finding_en lists */
    enumdef_t finding_en;
    fact_def_t findings_def;     /* inspection.findings with finding_en */
    xfact_t *xfacts;
    size_t n_xfacts;
};

/* Case-insensitive, whitespace-collapsing comparison used for models and families. */
bool policy_name_match(const char *pattern, const char *name);

#endif
