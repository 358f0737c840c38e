/*
 * Policy files: YAML (libyaml's document API) -> struct policy.
 *
 * Every key is checked against the keys its mapping may have, every field a rule
 * names is resolved against the fact table, every value against its type, so a typo
 * in a policy is a "FILE:LINE: message" at load time, never a silently different
 * disposition at the dock. The language is described in docs/policy.md.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "policy/policy_internal.h"

/* Policy files are small hand-edited texts; anything larger is a mistake. */
#define POLICY_MAX_BYTES (1u << 20)

/*
 * The deepest nesting a policy may have. The shipped ones nest about 8 deep; libyaml's
 * scanner is quadratic in the nesting depth (a 100k-deep `[[[...` took 30+ s), so
 * the depth is checked on the event stream before a document is built, and that
 * check stops at the limit.
 */
#define POLICY_MAX_DEPTH 64

/*
 * Conditions and groups one policy may hold once aliases are followed: an alias is
 * not copied by libyaml but each use is parsed again, so nested aliases could
 * multiply (the "billion laughs") or refer to themselves.
 */
#define POLICY_MAX_NODES 100000

typedef struct {
    yaml_document_t doc;
    const char *file;
    char *err;
    policy_t *p;   /* the policy being loaded: its vocabulary names facts and findings */
    int depth;     /* condition groups open now, aliases followed */
    long budget;   /* conditions and groups still allowed */
} ld_t;

static int fail(ld_t *ld, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(ld_t *ld, const yaml_node_t *n, const char *fmt, ...)
{
    if (ld->err)
        return -EINVAL;
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (r < 0)
        return -ENOMEM;
    if (asprintf(&ld->err, "%s:%lu: %s", ld->file, n ? (unsigned long)n->start_mark.line + 1 : 1UL,
                 msg) < 0)
        ld->err = NULL;
    free(msg);
    return -EINVAL;
}

static yaml_node_t *node(ld_t *ld, int idx)
{
    return yaml_document_get_node(&ld->doc, idx);
}

static const char *scalar_text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* The scalar text of n, or NULL after reporting that `what` must be a scalar. */
static const char *need_scalar(ld_t *ld, yaml_node_t *n, const char *what)
{
    if (n->type != YAML_SCALAR_NODE) {
        fail(ld, n, "%s: expected a single value", what);
        return NULL;
    }
    return scalar_text(n);
}

/*
 * Check a mapping: every key a scalar from `allowed` (NULL-terminated), none twice.
 * Returns 0 or -EINVAL with the error recorded.
 */
static int check_keys(ld_t *ld, yaml_node_t *map, const char *what, const char *const *allowed)
{
    if (map->type != YAML_MAPPING_NODE)
        return fail(ld, map, "%s: expected a mapping (key: value lines)", what);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(ld, p->key);
        if (k->type != YAML_SCALAR_NODE)
            return fail(ld, k, "%s: keys must be plain names", what);
        int known = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, scalar_text(k)) == 0)
                known = 1;
        if (!known)
            return fail(ld, k, "%s: unknown key '%s'", what, scalar_text(k));
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++)
            if (strcmp(scalar_text(node(ld, q->key)), scalar_text(k)) == 0)
                return fail(ld, k, "%s: key '%s' given twice", what, scalar_text(k));
    }
    return 0;
}

static yaml_node_t *map_get(ld_t *ld, yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(ld, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp(scalar_text(k), key) == 0)
            return node(ld, p->value);
    }
    return NULL;
}

static int parse_bool(ld_t *ld, yaml_node_t *n, const char *what, bool *out)
{
    const char *s = need_scalar(ld, n, what);
    if (!s)
        return -EINVAL;
    if (strcmp(s, "true") == 0)
        *out = true;
    else if (strcmp(s, "false") == 0)
        *out = false;
    else
        return fail(ld, n, "%s: expected true or false, got '%s'", what, s);
    return 0;
}

static int parse_number(ld_t *ld, yaml_node_t *n, const char *what, double *out)
{
    const char *s = need_scalar(ld, n, what);
    if (!s)
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno)
        return fail(ld, n, "%s: expected a number, got '%s'", what, s);
    *out = v;
    return 0;
}

static int parse_duration(ld_t *ld, yaml_node_t *n, const char *what, duration_t *out)
{
    const char *s = need_scalar(ld, n, what);
    if (!s)
        return -EINVAL;
    if (duration_parse(s, out) < 0)
        return fail(ld, n, "%s: expected a duration such as 3y, 18m, 90d or 10bd, got '%s'",
                    what, s);
    return 0;
}

static int parse_enum(ld_t *ld, yaml_node_t *n, const char *what, const enumdef_t *def, int *out)
{
    const char *s = need_scalar(ld, n, what);
    if (!s)
        return -EINVAL;
    int v = enumdef_find(def, s);
    if (v < 0)
        return fail(ld, n, "%s: expected %s, got '%s'", what, enumdef_expected(def), s);
    *out = v;
    return 0;
}

static void strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

/* A scalar or a sequence of scalars -> NULL-terminated string array. */
static int parse_strv(ld_t *ld, yaml_node_t *n, const char *what, char ***out)
{
    size_t count = n->type == YAML_SEQUENCE_NODE
                       ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start)
                       : 1;
    if (n->type == YAML_MAPPING_NODE)
        return fail(ld, n, "%s: expected a name or a list of names", what);
    if (count == 0)
        return fail(ld, n, "%s: empty list", what);
    char **v = calloc(count + 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *it = n->type == YAML_SEQUENCE_NODE ? node(ld, n->data.sequence.items.start[i]) : n;
        const char *s = need_scalar(ld, it, what);
        if (!s || !*s || !(v[i] = strdup(s))) {
            strv_free(v);
            return s && !*s ? fail(ld, it, "%s: empty name", what) : s ? -ENOMEM : -EINVAL;
        }
    }
    *out = v;
    return 0;
}

static size_t seq_len(yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

/* ---- conditions ------------------------------------------------------------------ */

static void group_free(group_t *g);

static void group_clear(group_t *g)
{
    for (size_t i = 0; i < g->n_conds; i++) {
        for (size_t k = 0; k < g->conds[i].n_strs; k++)
            free(g->conds[i].strs[k]);
        free(g->conds[i].strs);
    }
    free(g->conds);
    for (size_t i = 0; i < g->n_children; i++)
        group_clear(&g->children[i]);
    free(g->children);
}

static void group_free(group_t *g)
{
    if (g) {
        group_clear(g);
        free(g);
    }
}

static cond_t *add_cond(group_t *g, int f, fact_type_t type, cond_op_t op)
{
    cond_t *c = realloc(g->conds, (g->n_conds + 1) * sizeof(*c));
    if (!c)
        return NULL;
    g->conds = c;
    c = &g->conds[g->n_conds++];
    memset(c, 0, sizeof(*c));
    c->fact = f;
    c->type = type;
    c->op = op;
    c->at = -1;
    return c;
}

/* Names of enumdef `def` from a scalar or list -> bit set. */
static int parse_enum_bits(ld_t *ld, yaml_node_t *n, const char *what, const enumdef_t *def,
                           uint64_t *bits)
{
    size_t count = n->type == YAML_SEQUENCE_NODE ? seq_len(n) : 1;
    if (n->type == YAML_MAPPING_NODE)
        return fail(ld, n, "%s: expected a value or a list of values", what);
    *bits = 0;
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *it = n->type == YAML_SEQUENCE_NODE ? node(ld, n->data.sequence.items.start[i]) : n;
        int v = 0;
        if (parse_enum(ld, it, what, def, &v) < 0)
            return -EINVAL;
        *bits |= 1ull << v;
    }
    return 0;
}

static int strv_to_cond(ld_t *ld, yaml_node_t *n, const char *what, cond_t *c)
{
    char **v = NULL;
    int r = parse_strv(ld, n, what, &v);
    if (r < 0)
        return r;
    size_t k = 0;
    while (v[k])
        k++;
    c->strs = v;
    c->n_strs = k;
    /* strs is NULL-terminated as well as counted; group_clear frees by count. */
    return 0;
}

/* One "field: test" entry of a group. */
static int parse_fact_test(ld_t *ld, group_t *g, yaml_node_t *key, yaml_node_t *val)
{
    const char *name = scalar_text(key);
    int f = policy_fact_lookup(ld->p, name);
    if (f < 0)
        return fail(ld, key, "rule refers to unknown field '%s'", name);
    const fact_def_t *fd = policy_fact_def(ld->p, f);
    cond_t *c;

    if (val->type != YAML_MAPPING_NODE) {
        /* Shorthand forms: `field: value` or `field: [values]`. */
        switch (fd->type) {
        case FT_BOOL:
            if (!(c = add_cond(g, f, fd->type, OP_EQ)))
                return -ENOMEM;
            return parse_bool(ld, val, name, &c->b);
        case FT_ENUM:
            if (!(c = add_cond(g, f, fd->type, val->type == YAML_SEQUENCE_NODE ? OP_IN : OP_EQ)))
                return -ENOMEM;
            return parse_enum_bits(ld, val, name, fd->en, &c->bits);
        case FT_SET:
            if (!(c = add_cond(g, f, fd->type, OP_ANY)))
                return -ENOMEM;
            return parse_enum_bits(ld, val, name, fd->en, &c->bits);
        case FT_STRING:
        case FT_STRSET:
            if (!(c = add_cond(g, f, fd->type, fd->type == FT_STRSET ? OP_ANY : OP_IN)))
                return -ENOMEM;
            return strv_to_cond(ld, val, name, c);
        case FT_NUMBER:
            if (!(c = add_cond(g, f, fd->type, OP_EQ)))
                return -ENOMEM;
            return parse_number(ld, val, name, &c->num);
        case FT_DATE:
            return fail(ld, val, "%s: a date is tested with {within: DURATION}, "
                                 "{after: DURATION} or {known: BOOL}", name);
        case FT_PERIOD:
            return fail(ld, val, "%s: a period is tested with {lt|le|gt|ge: DURATION}", name);
        }
        return -EINVAL;
    }

    /* Operator form: `field: {op: operand, ...}`, every op must hold. */
    if (val->data.mapping.pairs.start == val->data.mapping.pairs.top)
        return fail(ld, val, "%s: empty test", name);
    /* Date windows are measured at `today` unless `at:` names another date field. */
    int at = -1;
    yaml_node_t *atn = map_get(ld, val, "at");
    if (atn) {
        const char *an = need_scalar(ld, atn, "at");
        if (!an)
            return -EINVAL;
        at = policy_fact_lookup(ld->p, an);
        if (fd->type != FT_DATE)
            return fail(ld, atn, "%s: 'at' applies to date fields only", name);
        if (at < 0 || policy_fact_def(ld->p, at)->type != FT_DATE)
            return fail(ld, atn, "%s: at: expected a date field, got '%s'", name, an);
    }
    for (yaml_node_pair_t *p = val->data.mapping.pairs.start; p < val->data.mapping.pairs.top; p++) {
        yaml_node_t *ok = node(ld, p->key), *ov = node(ld, p->value);
        const char *op = ok->type == YAML_SCALAR_NODE ? scalar_text(ok) : "";
        if (strcmp(op, "at") == 0)
            continue;
        static const struct {
            const char *name;
            cond_op_t op;
            unsigned types; /* bit per fact_type_t */
        } ops[] = {
            { "known", OP_KNOWN, 0xFF },
            { "within", OP_WITHIN, 1u << FT_DATE },
            { "after", OP_AFTER, 1u << FT_DATE },
            { "before", OP_BEFORE, 1u << FT_DATE },
            { "on_or_after", OP_ON_OR_AFTER, 1u << FT_DATE },
            { "lt", OP_LT, 1u << FT_NUMBER | 1u << FT_PERIOD },
            { "le", OP_LE, 1u << FT_NUMBER | 1u << FT_PERIOD },
            { "gt", OP_GT, 1u << FT_NUMBER | 1u << FT_PERIOD },
            { "ge", OP_GE, 1u << FT_NUMBER | 1u << FT_PERIOD },
            { "any", OP_ANY, 1u << FT_SET | 1u << FT_STRSET },
            { "all", OP_ALL, 1u << FT_SET },
            { "none", OP_NONE, 1u << FT_SET | 1u << FT_STRSET },
            { "empty", OP_EMPTY, 1u << FT_SET | 1u << FT_STRSET },
            { "in", OP_IN, 1u << FT_ENUM | 1u << FT_STRING },
        };
        size_t i;
        for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
            if (strcmp(ops[i].name, op) == 0)
                break;
        if (i == sizeof(ops) / sizeof(ops[0]) || !(ops[i].types & (1u << fd->type)))
            return fail(ld, ok, "%s: unknown test '%s' for this field", name, op);
        if (!(c = add_cond(g, f, fd->type, ops[i].op)))
            return -ENOMEM;
        c->at = at;
        c->line = (int)ok->start_mark.line + 1;
        int r = 0;
        switch (c->op) {
        case OP_KNOWN:
        case OP_EMPTY:
            r = parse_bool(ld, ov, name, &c->b);
            break;
        case OP_WITHIN:
        case OP_AFTER:
            r = parse_duration(ld, ov, name, &c->dur);
            break;
        case OP_BEFORE:
        case OP_ON_OR_AFTER: {
            /* A fixed calendar date ("shipped on or after August 1, 2015"). */
            const char *ds = need_scalar(ld, ov, name);
            if (!ds)
                return -EINVAL;
            if (at >= 0)
                return fail(ld, atn, "%s: 'at' measures windows; '%s' compares with a fixed date",
                            name, op);
            if (caldate_parse(ds, &c->date) < 0)
                return fail(ld, ov, "%s: %s: expected a date YYYY-MM-DD, got '%s'", name, op, ds);
            break;
        }
        case OP_LT:
        case OP_LE:
        case OP_GT:
        case OP_GE:
            r = fd->type == FT_PERIOD ? parse_duration(ld, ov, name, &c->dur)
                                      : parse_number(ld, ov, name, &c->num);
            break;
        case OP_ANY:
        case OP_ALL:
        case OP_NONE:
        case OP_IN:
            if (fd->type == FT_SET || fd->type == FT_ENUM)
                r = parse_enum_bits(ld, ov, name, fd->en, &c->bits);
            else
                r = strv_to_cond(ld, ov, name, c);
            break;
        case OP_EQ:
            break;
        }
        if (r < 0)
            return r;
    }
    return 0;
}

static int parse_group(ld_t *ld, yaml_node_t *n, group_kind_t kind, group_t *g);

/* `any: [group, ...]`, `all: [group, ...]` or `not: group` inside a group. */
static int parse_subgroups(ld_t *ld, group_t *g, const char *word, yaml_node_t *val)
{
    group_kind_t kind = strcmp(word, "any") == 0 ? GROUP_ANY
                        : strcmp(word, "all") == 0 ? GROUP_ALL : GROUP_NOT;
    group_t *child = realloc(g->children, (g->n_children + 1) * sizeof(*child));
    if (!child)
        return -ENOMEM;
    g->children = child;
    child = &g->children[g->n_children++];
    memset(child, 0, sizeof(*child));
    if (kind == GROUP_NOT)
        return parse_group(ld, val, GROUP_NOT, child);
    if (val->type != YAML_SEQUENCE_NODE || seq_len(val) == 0)
        return fail(ld, val, "%s: expected a list of conditions", word);
    /* The child combines its own children; each list item is an all-group. */
    child->kind = kind;
    child->children = calloc(seq_len(val), sizeof(group_t));
    if (!child->children)
        return -ENOMEM;
    for (size_t i = 0; i < seq_len(val); i++) {
        child->n_children++;
        int r = parse_group(ld, node(ld, val->data.sequence.items.start[i]), GROUP_ALL,
                            &child->children[i]);
        if (r < 0)
            return r;
    }
    return 0;
}

/* A mapping of tests (all must hold), possibly with any/all/not sub-groups. */
static int parse_group(ld_t *ld, yaml_node_t *n, group_kind_t kind, group_t *g)
{
    g->kind = kind;
    if (n->type != YAML_MAPPING_NODE)
        return fail(ld, n, "condition: expected 'field: test' lines");
    if (n->data.mapping.pairs.start == n->data.mapping.pairs.top)
        return fail(ld, n, "condition: empty");
    /* Aliases are followed here, so a self-referring one would recurse forever. */
    if (ld->depth >= POLICY_MAX_DEPTH)
        return fail(ld, n, "condition: nested more than %d deep (an alias that refers to "
                           "itself?)", POLICY_MAX_DEPTH);
    if ((ld->budget -= (long)(n->data.mapping.pairs.top - n->data.mapping.pairs.start) + 1) < 0)
        return fail(ld, n, "conditions: more than %d once aliases are followed",
                    POLICY_MAX_NODES);
    ld->depth++;
    int r = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; r == 0 && p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(ld, p->key), *v = node(ld, p->value);
        if (k->type != YAML_SCALAR_NODE) {
            r = fail(ld, k, "condition: keys must be field names");
            break;
        }
        const char *w = scalar_text(k);
        size_t first = g->n_conds;
        r = strcmp(w, "any") == 0 || strcmp(w, "all") == 0 || strcmp(w, "not") == 0
                ? parse_subgroups(ld, g, w, v)
                : parse_fact_test(ld, g, k, v);
        for (size_t i = first; i < g->n_conds; i++)
            if (!g->conds[i].line)
                g->conds[i].line = (int)k->start_mark.line + 1;
    }
    ld->depth--;
    return r;
}

static int parse_cond_root(ld_t *ld, yaml_node_t *n, group_t **out)
{
    group_t *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    int r = parse_group(ld, n, GROUP_ALL, g);
    if (r < 0) {
        group_free(g);
        return r;
    }
    *out = g;
    return 0;
}

/* ---- rules ----------------------------------------------------------------------- */

static void rule_clear(rule_t *r)
{
    free(r->id);
    free(r->clause);
    group_free(r->when);
    group_free(r->unless);
    free(r->reason);
}

/* Every {name} in a reason must be a fact or one of the rule's own words. */
static int check_template(ld_t *ld, yaml_node_t *n, const char *t)
{
    for (const char *p = strchr(t, '{'); p; p = strchr(p + 1, '{')) {
        const char *e = strchr(p, '}');
        if (!e)
            return fail(ld, n, "reason: '{' without '}'");
        char name[64];
        size_t len = (size_t)(e - p - 1);
        if (len == 0 || len >= sizeof(name))
            return fail(ld, n, "reason: bad placeholder");
        memcpy(name, p + 1, len);
        name[len] = '\0';
        if (policy_fact_lookup(ld->p, name) < 0 && strcmp(name, "fee") != 0 &&
            strcmp(name, "today") != 0)
            return fail(ld, n, "reason: unknown placeholder {%s}", name);
    }
    return 0;
}

/*
 * `fee: 15` (percent), `fee: {pct: 15}`, `fee: {amount: 25}` (in the policy's
 * currency) or a range `fee: {min, max, step, counts}`; any mapping form may add
 * `adds: true` (the fee adds to the others instead of replacing a lower one).
 */
static int parse_fee(ld_t *ld, yaml_node_t *n, fee_t *fee)
{
    static const char *const keys[] = { "min", "max", "step", "counts", "pct", "amount", "adds",
                                        NULL };
    if (n->type == YAML_SCALAR_NODE) {
        if (parse_number(ld, n, "fee", &fee->pct) < 0)
            return -EINVAL;
        if (fee->pct <= 0 || fee->pct > 100)
            return fail(ld, n, "fee: expected a percentage above 0 and at most 100");
        return 0;
    }
    if (check_keys(ld, n, "fee", keys) < 0)
        return -EINVAL;
    yaml_node_t *ad = map_get(ld, n, "adds");
    if (ad && parse_bool(ld, ad, "fee.adds", &fee->adds) < 0)
        return -EINVAL;
    yaml_node_t *mn = map_get(ld, n, "min"), *mx = map_get(ld, n, "max"), *st = map_get(ld, n, "step");
    yaml_node_t *pc = map_get(ld, n, "pct"), *am = map_get(ld, n, "amount");
    if ((pc != NULL) + (am != NULL) + (mn || mx || st) != 1)
        return fail(ld, n, "fee: give one of pct, amount, or a range (min, max, step)");
    if (pc || am) {
        if (map_get(ld, n, "counts"))
            return fail(ld, n, "fee: counts applies to a range only");
        if (parse_number(ld, pc ? pc : am, pc ? "fee.pct" : "fee.amount", &fee->pct) < 0)
            return -EINVAL;
        fee->is_amount = am != NULL;
        if (fee->pct <= 0 || (pc && fee->pct > 100))
            return fail(ld, n, pc ? "fee.pct: expected a percentage above 0 and at most 100"
                                  : "fee.amount: expected an amount above 0");
        return 0;
    }
    if (!mn || !mx || !st)
        return fail(ld, n, "fee: a range needs min, max and step");
    fee->is_range = true;
    if (parse_number(ld, mn, "fee.min", &fee->pct) < 0 || parse_number(ld, mx, "fee.max", &fee->max) < 0 ||
        parse_number(ld, st, "fee.step", &fee->step) < 0)
        return -EINVAL;
    if (fee->pct <= 0 || fee->max > 100 || fee->pct > fee->max || fee->step < 0)
        return fail(ld, n, "fee: expected 0 < min <= max <= 100 and step >= 0");
    fee->counts = SHORT_OPEN_BOX | SHORT_FOAM | SHORT_ACCESSORIES;
    yaml_node_t *cn = map_get(ld, n, "counts");
    if (cn) {
        uint64_t bits;
        if (parse_enum_bits(ld, cn, "fee.counts", &ENUM_SHORTFALL, &bits) < 0)
            return -EINVAL;
        fee->counts = bits;
    }
    return 0;
}

static int parse_rule(ld_t *ld, yaml_node_t *n, rule_t *r)
{
    static const char *const keys[] = { "id", "clause", "when", "unless", "disposition",
                                        "warranty", "fee", "flags", "on", "reason", NULL };
    if (check_keys(ld, n, "rule", keys) < 0)
        return -EINVAL;
    r->line = (int)n->start_mark.line + 1;
    yaml_node_t *v;
    const char *s;
    if (!(v = map_get(ld, n, "id")))
        return fail(ld, n, "rule: missing 'id'");
    if (!(s = need_scalar(ld, v, "id")))
        return -EINVAL;
    if (!*s || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(s) || strlen(s) > 64)
        return fail(ld, v, "id: expected lowercase letters, digits and '-', got '%s'", s);
    if (!(r->id = strdup(s)))
        return -ENOMEM;
    if ((v = map_get(ld, n, "clause"))) {
        if (!(s = need_scalar(ld, v, "clause")) || !(r->clause = strdup(s)))
            return s ? -ENOMEM : -EINVAL;
    }
    if ((v = map_get(ld, n, "when")) && parse_cond_root(ld, v, &r->when) < 0)
        return -EINVAL;
    if ((v = map_get(ld, n, "unless")) && parse_cond_root(ld, v, &r->unless) < 0)
        return -EINVAL;
    int e = 0;
    if ((v = map_get(ld, n, "disposition"))) {
        if (parse_enum(ld, v, "disposition", &ENUM_DISPOSITION, &e) < 0)
            return -EINVAL;
        r->has_disposition = true;
        r->disposition = (disposition_t)e;
    }
    if ((v = map_get(ld, n, "warranty"))) {
        if (parse_enum(ld, v, "warranty", &ENUM_WARRANTY_STATUS, &e) < 0)
            return -EINVAL;
        if (e == WS_IN || e == WS_OUT)
            return fail(ld, v, "warranty: in/out come from the warranty table; a rule sets "
                               "void, excluded, not_applicable or unknown");
        r->has_warranty = true;
        r->warranty = (wstatus_t)e;
    }
    if ((v = map_get(ld, n, "fee"))) {
        if (parse_fee(ld, v, &r->fee) < 0)
            return -EINVAL;
        r->has_fee = true;
    }
    if ((v = map_get(ld, n, "flags"))) {
        uint64_t bits;
        if (parse_enum_bits(ld, v, "flags", &ENUM_FLAG, &bits) < 0)
            return -EINVAL;
        r->flags = bits;
    }
    /* Which outcomes this rule's fee, flags and reason count on: the rule says, C does not. */
    if ((v = map_get(ld, n, "on"))) {
        uint64_t bits;
        if (parse_enum_bits(ld, v, "on", &ENUM_DISPOSITION, &bits) < 0)
            return -EINVAL;
        if (r->has_disposition)
            return fail(ld, v, "rule %s: 'on' is for rules that do not decide; this one's "
                               "outcome is its own disposition", r->id);
        if (r->has_warranty)
            return fail(ld, v, "rule %s: 'on' cannot hold back a warranty change: later "
                               "rules already see it", r->id);
        r->on = bits;
    }
    if (!(v = map_get(ld, n, "reason")))
        return fail(ld, n, "rule %s: missing 'reason' (the words a dock supervisor reads)", r->id);
    if (!(s = need_scalar(ld, v, "reason")))
        return -EINVAL;
    if (!*s)
        return fail(ld, v, "reason: empty");
    if (check_template(ld, v, s) < 0)
        return -EINVAL;
    if (!(r->reason = strdup(s)))
        return -ENOMEM;
    if (!r->has_disposition && !r->has_warranty && !r->has_fee && !r->flags)
        return fail(ld, n, "rule %s: does nothing (no disposition, warranty, fee or flags)", r->id);
    if (r->has_disposition && r->disposition == DISP_RESTOCK_FEE && !r->has_fee)
        return fail(ld, n, "rule %s: restock_fee needs a fee", r->id);
    if (r->has_fee && !r->has_disposition && !r->on)
        return fail(ld, n, "rule %s: a fee on a rule that does not decide needs 'on: "
                           "[dispositions]' (the outcomes it is charged on)", r->id);
    if (r->has_disposition)
        r->on = 1u << r->disposition;
    return 0;
}

/* ---- warranty table and accessories --------------------------------------------- */

static void wentry_clear(wentry_t *w)
{
    strv_free(w->models);
    strv_free(w->families);
    free(w->label);
    for (size_t i = 0; i < w->n_components; i++)
        free(w->components[i].name);
    free(w->components);
    free(w->ask_vendor);
}

static int parse_components(ld_t *ld, yaml_node_t *n, wentry_t *w)
{
    if (n->type != YAML_MAPPING_NODE)
        return fail(ld, n, "components: expected 'name: period' lines");
    size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    w->components = calloc(cnt ? cnt : 1, sizeof(component_t));
    if (!w->components)
        return -ENOMEM;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(ld, p->key), *v = node(ld, p->value);
        const char *name = need_scalar(ld, k, "components");
        if (!name)
            return -EINVAL;
        component_t *c = &w->components[w->n_components];
        const char *s = need_scalar(ld, v, name);
        if (!s)
            return -EINVAL;
        if (strcmp(s, "excluded") == 0)
            c->excluded = true;
        else if (parse_duration(ld, v, name, &c->period) < 0)
            return -EINVAL;
        if (!(c->name = strdup(name)))
            return -ENOMEM;
        w->n_components++;
    }
    return 0;
}

/* `basis: shipped` or `basis: [delivered, shipped]`: the first the case has is used. */
static int parse_basis(ld_t *ld, yaml_node_t *v, basis_list_t *out)
{
    size_t cnt = v->type == YAML_SEQUENCE_NODE ? seq_len(v) : 1;
    if (cnt == 0 || cnt > BASIS_NAMED_COUNT || v->type == YAML_MAPPING_NODE)
        return fail(ld, v, "basis: expected one of purchased|shipped|invoiced|delivered, or a "
                           "list of them");
    out->n = 0;
    for (size_t i = 0; i < cnt; i++) {
        int e;
        yaml_node_t *it = v->type == YAML_SEQUENCE_NODE ? node(ld, v->data.sequence.items.start[i]) : v;
        if (parse_enum(ld, it, "basis", &ENUM_BASIS, &e) < 0)
            return -EINVAL;
        if (e >= BASIS_NAMED_COUNT)
            return fail(ld, it, "basis: '%s' is not a date a case has (use after_repair for "
                                "repaired or replaced units)", scalar_text(it));
        out->b[out->n++] = (basis_t)e;
    }
    return 0;
}

/*
 * `after_repair: remainder` (the original's end: Softnetworks) or
 * `after_repair: {period: 90d, or_remainder: true, kinds: [replaced]}` (QCT).
 */
static int parse_after_repair(ld_t *ld, yaml_node_t *n, after_repair_t *a)
{
    static const char *const keys[] = { "period", "or_remainder", "kinds", NULL };
    a->set = true;
    a->kinds = 1u << PREV_REPAIRED | 1u << PREV_REPLACED;
    if (n->type == YAML_SCALAR_NODE) {
        if (strcmp(scalar_text(n), "remainder") != 0)
            return fail(ld, n, "after_repair: expected 'remainder' or {period, or_remainder, kinds}");
        a->or_remainder = true;
        return 0;
    }
    if (check_keys(ld, n, "after_repair", keys) < 0)
        return -EINVAL;
    yaml_node_t *v;
    if (!(v = map_get(ld, n, "period")))
        return fail(ld, n, "after_repair: needs 'period' (or write 'after_repair: remainder')");
    if (parse_duration(ld, v, "after_repair.period", &a->period) < 0)
        return -EINVAL;
    a->has_period = true;
    if ((v = map_get(ld, n, "or_remainder")) &&
        parse_bool(ld, v, "after_repair.or_remainder", &a->or_remainder) < 0)
        return -EINVAL;
    if ((v = map_get(ld, n, "kinds"))) {
        uint64_t bits;
        if (parse_enum_bits(ld, v, "after_repair.kinds", &ENUM_PREV_REPAIR, &bits) < 0)
            return -EINVAL;
        a->kinds = bits;
    }
    return 0;
}

static int parse_wentry(ld_t *ld, yaml_node_t *n, wentry_t *w, bool is_default)
{
    static const char *const keys[] = { "models", "family", "label", "period", "service",
                                        "components", "ask_vendor", "basis", "refurbished",
                                        "after_repair", NULL };
    if (check_keys(ld, n, is_default ? "warranty.default" : "warranty.table", keys) < 0)
        return -EINVAL;
    w->line = (int)n->start_mark.line + 1;
    w->service = SERVICE_REPAIR;
    yaml_node_t *v;
    const char *s;
    int e = 0;
    if ((v = map_get(ld, n, "models")) && parse_strv(ld, v, "models", &w->models) < 0)
        return -EINVAL;
    if ((v = map_get(ld, n, "family")) && parse_strv(ld, v, "family", &w->families) < 0)
        return -EINVAL;
    if (is_default && (w->models || w->families))
        return fail(ld, n, "warranty.default: applies to everything not in the table; "
                           "remove models/family");
    if (!is_default && !w->models && !w->families)
        return fail(ld, n, "warranty.table: an entry needs 'models' or 'family'");
    if ((v = map_get(ld, n, "label")) &&
        (!(s = need_scalar(ld, v, "label")) || !(w->label = strdup(s))))
        return -EINVAL;
    if ((v = map_get(ld, n, "period"))) {
        if (parse_duration(ld, v, "period", &w->period) < 0)
            return -EINVAL;
        w->has_period = true;
    }
    if ((v = map_get(ld, n, "service"))) {
        if (parse_enum(ld, v, "service", &ENUM_SERVICE, &e) < 0)
            return -EINVAL;
        w->service = (service_t)e;
    }
    if ((v = map_get(ld, n, "components")) && parse_components(ld, v, w) < 0)
        return -EINVAL;
    if ((v = map_get(ld, n, "basis")) && parse_basis(ld, v, &w->basis) < 0)
        return -EINVAL;
    if ((v = map_get(ld, n, "refurbished"))) {
        if (parse_duration(ld, v, "refurbished", &w->refurbished) < 0)
            return -EINVAL;
        w->has_refurbished = true;
    }
    if ((v = map_get(ld, n, "after_repair")) && parse_after_repair(ld, v, &w->after_repair) < 0)
        return -EINVAL;
    if ((v = map_get(ld, n, "ask_vendor")) &&
        (!(s = need_scalar(ld, v, "ask_vendor")) || !(w->ask_vendor = strdup(s))))
        return -EINVAL;
    if (!w->has_period && !w->ask_vendor)
        return fail(ld, n, "warranty entry: needs 'period' (or 'ask_vendor')");
    return 0;
}

static int parse_warranty(ld_t *ld, yaml_node_t *n, policy_t *p)
{
    static const char *const keys[] = { "basis", "default", "table", "after_repair", NULL };
    if (check_keys(ld, n, "warranty", keys) < 0)
        return -EINVAL;
    yaml_node_t *v = map_get(ld, n, "basis");
    if (!v)
        return fail(ld, n, "warranty: missing 'basis' (purchased, shipped, invoiced or delivered)");
    if (parse_basis(ld, v, &p->basis) < 0)
        return -EINVAL;
    if ((v = map_get(ld, n, "after_repair")) && parse_after_repair(ld, v, &p->after_repair) < 0)
        return -EINVAL;
    if ((v = map_get(ld, n, "default"))) {
        if (parse_wentry(ld, v, &p->deflt, true) < 0)
            return -EINVAL;
        p->has_default = true;
    }
    if ((v = map_get(ld, n, "table"))) {
        if (v->type != YAML_SEQUENCE_NODE)
            return fail(ld, v, "table: expected a list of entries");
        p->table = calloc(seq_len(v) ? seq_len(v) : 1, sizeof(wentry_t));
        if (!p->table)
            return -ENOMEM;
        for (size_t i = 0; i < seq_len(v); i++) {
            p->n_table++;
            if (parse_wentry(ld, node(ld, v->data.sequence.items.start[i]), &p->table[i], false) < 0)
                return -EINVAL;
        }
    }
    return 0;
}

static void accset_clear(accset_t *a)
{
    strv_free(a->models);
    strv_free(a->families);
    if (a->names) {
        for (size_t i = 0; a->names[i]; i++)
            free(a->parts[i]);
    }
    strv_free(a->names);
    free(a->parts);
}

static int parse_accset(ld_t *ld, yaml_node_t *n, accset_t *a)
{
    static const char *const keys[] = { "models", "family", "items", NULL };
    static const char *const item_keys[] = { "name", "part", NULL };
    if (check_keys(ld, n, "accessories", keys) < 0)
        return -EINVAL;
    yaml_node_t *v;
    if ((v = map_get(ld, n, "models")) && parse_strv(ld, v, "models", &a->models) < 0)
        return -EINVAL;
    if ((v = map_get(ld, n, "family")) && parse_strv(ld, v, "family", &a->families) < 0)
        return -EINVAL;
    if (!a->models && !a->families)
        return fail(ld, n, "accessories: an entry needs 'models' or 'family'");
    if (!(v = map_get(ld, n, "items")) || v->type != YAML_SEQUENCE_NODE || seq_len(v) == 0)
        return fail(ld, v ? v : n, "accessories: 'items' must list at least one accessory");
    size_t cnt = seq_len(v);
    a->names = calloc(cnt + 1, sizeof(char *));
    a->parts = calloc(cnt + 1, sizeof(char *));
    if (!a->names || !a->parts)
        return -ENOMEM;
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *it = node(ld, v->data.sequence.items.start[i]);
        const char *name, *part = NULL;
        if (it->type == YAML_MAPPING_NODE) {
            if (check_keys(ld, it, "accessory", item_keys) < 0)
                return -EINVAL;
            yaml_node_t *nn = map_get(ld, it, "name"), *pp = map_get(ld, it, "part");
            if (!nn)
                return fail(ld, it, "accessory: missing 'name'");
            if (!(name = need_scalar(ld, nn, "name")) || (pp && !(part = need_scalar(ld, pp, "part"))))
                return -EINVAL;
        } else if (!(name = need_scalar(ld, it, "items"))) {
            return -EINVAL;
        }
        if (!*name || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(name))
            return fail(ld, it, "accessory name '%s': use lowercase letters, digits, '_' and '-' "
                                "(it is scanned as ACC-<name>)", name);
        if (!(a->names[i] = strdup(name)) || (part && !(a->parts[i] = strdup(part))))
            return -ENOMEM;
    }
    return 0;
}

/* ---- vocabulary: the policy's own findings and facts ---------------------------- */

/* A word of the vocabulary: [a-z][a-z0-9_]*, at most 32 characters (it is scanned). */
static bool vocab_word(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 32 && s[0] >= 'a' && s[0] <= 'z' &&
           strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/*
 * `findings: [{name, text}, ...]`: each becomes a finding of this policy's cases, after
 * the built-in ones, and a FIND-<NAME> barcode at the stations.
 */
static int parse_xfindings(ld_t *ld, yaml_node_t *v, policy_t *p)
{
    static const char *const keys[] = { "name", "text", NULL };
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(ld, v, "vocabulary.findings: expected a list of {name, text}");
    if (seq_len(v) > POLICY_MAX_FINDINGS)
        return fail(ld, v, "vocabulary.findings: more than %d", (int)POLICY_MAX_FINDINGS);
    p->xfind = calloc(seq_len(v) ? seq_len(v) : 1, sizeof(*p->xfind));
    p->finding_names = calloc(FINDING__COUNT + seq_len(v) + 1, sizeof(char *));
    if (!p->xfind || !p->finding_names)
        return -ENOMEM;
    for (int i = 0; i < FINDING__COUNT; i++)
        p->finding_names[i] = finding_names[i];
    p->finding_en.names = p->finding_names;
    for (size_t i = 0; i < seq_len(v); i++) {
        yaml_node_t *it = node(ld, v->data.sequence.items.start[i]), *nn, *tn;
        const char *name, *text = NULL;
        if (check_keys(ld, it, "finding", keys) < 0)
            return -EINVAL;
        if (!(nn = map_get(ld, it, "name")))
            return fail(ld, it, "finding: missing 'name'");
        if (!(name = need_scalar(ld, nn, "name")) ||
            ((tn = map_get(ld, it, "text")) && !(text = need_scalar(ld, tn, "text"))))
            return -EINVAL;
        if (!vocab_word(name))
            return fail(ld, nn, "finding '%s': use 1 to 32 lowercase letters, digits and '_', "
                                "starting with a letter (it is scanned as FIND-<NAME>)", name);
        if (enumdef_find(&p->finding_en, name) >= 0 || enumdef_find(&ENUM_FINDING, name) >= 0)
            return fail(ld, nn, "finding '%s': already a finding", name);
        xfinding_t *x = &p->xfind[p->n_xfind];
        if (!(x->name = strdup(name)) || (text && !(x->text = strdup(text))))
            return -ENOMEM;
        p->n_xfind++;
        p->finding_names[FINDING__COUNT + i] = x->name;
        p->finding_en.count = FINDING__COUNT + (int)p->n_xfind;
    }
    return 0;
}

static bool builtin_case_key(const char *name)
{
    /* A custom fact is a case JSON field of its section: it must not shadow one. */
    static const char *const taken[] = {
        "rma.number", "rma.expected_serial", "product.vendor", "inspection.serial",
        "inspection.accessories_missing", "product.previous_repair", NULL };
    for (const char *const *t = taken; *t; t++)
        if (strcmp(*t, name) == 0)
            return true;
    return policy_fact_find(name) >= 0;
}

/*
 * `facts: [{name: inspection.panel_grade, type: enum, values: [a, b, c], default: a},
 * {name: product.extended_care, type: bool, default: false}]`: tested in rules like the
 * built-in ones, given in case JSON as a field of their section.
 */
static int parse_xfacts(ld_t *ld, yaml_node_t *v, policy_t *p)
{
    static const char *const keys[] = { "name", "type", "values", "default", NULL };
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(ld, v, "vocabulary.facts: expected a list of {name, type, ...}");
    if (seq_len(v) > POLICY_MAX_FACTS)
        return fail(ld, v, "vocabulary.facts: more than %d", POLICY_MAX_FACTS);
    p->xfacts = calloc(seq_len(v) ? seq_len(v) : 1, sizeof(*p->xfacts));
    if (!p->xfacts)
        return -ENOMEM;
    for (size_t i = 0; i < seq_len(v); i++) {
        yaml_node_t *it = node(ld, v->data.sequence.items.start[i]), *nn, *tn, *vn, *dn;
        const char *name, *type;
        if (check_keys(ld, it, "fact", keys) < 0)
            return -EINVAL;
        if (!(nn = map_get(ld, it, "name")) || !(tn = map_get(ld, it, "type")))
            return fail(ld, it, "fact: needs 'name' and 'type' (bool or enum)");
        if (!(name = need_scalar(ld, nn, "name")) || !(type = need_scalar(ld, tn, "type")))
            return -EINVAL;
        const char *dot = strchr(name, '.');
        size_t sl = dot ? (size_t)(dot - name) : 0;
        bool section = dot && ((sl == 3 && strncmp(name, "rma", 3) == 0) ||
                               (sl == 7 && strncmp(name, "product", 7) == 0) ||
                               (sl == 10 && strncmp(name, "inspection", 10) == 0));
        if (!section || !vocab_word(dot + 1))
            return fail(ld, nn, "fact '%s': expected rma.NAME, product.NAME or inspection.NAME "
                                "(NAME: lowercase letters, digits and '_')", name);
        if (builtin_case_key(name) || policy_fact_lookup(p, name) >= 0)
            return fail(ld, nn, "fact '%s': already a field", name);
        xfact_t *x = &p->xfacts[p->n_xfacts];
        p->n_xfacts++;
        if (!(x->def.name = strdup(name)))
            return -ENOMEM;
        vn = map_get(ld, it, "values");
        dn = map_get(ld, it, "default");
        if (strcmp(type, "bool") == 0) {
            x->def.type = FT_BOOL;
            if (vn)
                return fail(ld, vn, "fact '%s': a bool has no values", name);
            bool b = false;
            if (dn && parse_bool(ld, dn, "default", &b) < 0)
                return -EINVAL;
            x->deflt = b;
        } else if (strcmp(type, "enum") == 0) {
            char **vals = NULL;
            x->def.type = FT_ENUM;
            if (!vn || !dn)
                return fail(ld, it, "fact '%s': an enum needs 'values' and 'default'", name);
            if (parse_strv(ld, vn, "values", &vals) < 0)
                return -EINVAL;
            x->values.names = (const char *const *)vals;
            x->values.what = x->def.name;
            while (vals[x->values.count])
                x->values.count++;
            if (x->values.count > 64)
                return fail(ld, vn, "fact '%s': more than 64 values", name);
            for (int k = 0; k < x->values.count; k++) {
                if (!vocab_word(vals[k]))
                    return fail(ld, vn, "fact '%s': value '%s': use lowercase letters, digits "
                                        "and '_'", name, vals[k]);
                for (int m = 0; m < k; m++)
                    if (strcmp(vals[m], vals[k]) == 0)
                        return fail(ld, vn, "fact '%s': value '%s' given twice", name, vals[k]);
            }
            x->def.en = &x->values;
            if (parse_enum(ld, dn, "default", &x->values, &x->deflt) < 0)
                return -EINVAL;
        } else {
            return fail(ld, tn, "fact '%s': type: expected bool or enum, got '%s'", name, type);
        }
    }
    return 0;
}

static int parse_vocabulary(ld_t *ld, yaml_node_t *n, policy_t *p)
{
    static const char *const keys[] = { "findings", "facts", NULL };
    if (check_keys(ld, n, "vocabulary", keys) < 0)
        return -EINVAL;
    yaml_node_t *v;
    if ((v = map_get(ld, n, "findings")) && parse_xfindings(ld, v, p) < 0)
        return -EINVAL;
    if ((v = map_get(ld, n, "facts")) && parse_xfacts(ld, v, p) < 0)
        return -EINVAL;
    return 0;
}

/* ---- the document ---------------------------------------------------------------- */

static int parse_root(ld_t *ld, policy_t *p)
{
    static const char *const keys[] = { "vendor", "aliases", "source", "currency", "warranty",
                                        "accessories", "rules", "version", "vocabulary", NULL };
    yaml_node_t *root = yaml_document_get_root_node(&ld->doc);
    if (!root)
        return fail(ld, NULL, "empty policy file");
    if (check_keys(ld, root, "policy", keys) < 0)
        return -EINVAL;
    yaml_node_t *v;
    const char *s;
    if (!(v = map_get(ld, root, "vendor")))
        return fail(ld, root, "policy: missing 'vendor'");
    if (!(s = need_scalar(ld, v, "vendor")))
        return -EINVAL;
    if (!*s)
        return fail(ld, v, "vendor: empty");
    if (!(p->vendor = strdup(s)))
        return -ENOMEM;
    if ((v = map_get(ld, root, "aliases")) && parse_strv(ld, v, "aliases", &p->aliases) < 0)
        return -EINVAL;
    p->aliases_line = v ? (int)v->start_mark.line + 1 : 0;
    /* Before the rules: they may test the policy's own findings and facts. */
    p->finding_en = ENUM_FINDING;
    p->findings_def = policy_facts[F_INSP_FINDINGS];
    p->findings_def.en = &p->finding_en;
    if ((v = map_get(ld, root, "vocabulary")) && parse_vocabulary(ld, v, p) < 0)
        return -EINVAL;
    if (p->finding_names)
        p->finding_en.names = p->finding_names;
    if ((v = map_get(ld, root, "source")) && !need_scalar(ld, v, "source"))
        return -EINVAL;
    if ((v = map_get(ld, root, "version"))) {
        /* Recorded with every decision and filtered on (rmactl receipts --policy-version):
         * one short printable word, so it reads the same in a receipt row and a shell. */
        if (!(s = need_scalar(ld, v, "version")))
            return -EINVAL;
        if (!*s || strlen(s) > 64 || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                              "0123456789._+-:") != strlen(s))
            return fail(ld, v, "version: expected 1 to 64 letters, digits or . _ + - :, got '%s'", s);
        if (!(p->version = strdup(s)))
            return -ENOMEM;
    }
    if ((v = map_get(ld, root, "currency")) && !need_scalar(ld, v, "currency"))
        return -EINVAL;
    if (!(v = map_get(ld, root, "warranty")))
        return fail(ld, root, "policy: missing 'warranty'");
    if (parse_warranty(ld, v, p) < 0)
        return -EINVAL;
    if ((v = map_get(ld, root, "accessories"))) {
        if (v->type != YAML_SEQUENCE_NODE)
            return fail(ld, v, "accessories: expected a list");
        p->acc = calloc(seq_len(v) ? seq_len(v) : 1, sizeof(accset_t));
        if (!p->acc)
            return -ENOMEM;
        for (size_t i = 0; i < seq_len(v); i++) {
            p->n_acc++;
            if (parse_accset(ld, node(ld, v->data.sequence.items.start[i]), &p->acc[i]) < 0)
                return -EINVAL;
        }
    }
    if (!(v = map_get(ld, root, "rules")))
        return fail(ld, root, "policy: missing 'rules'");
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(ld, v, "rules: expected a list of rules");
    p->rules = calloc(seq_len(v) ? seq_len(v) : 1, sizeof(rule_t));
    if (!p->rules)
        return -ENOMEM;
    for (size_t i = 0; i < seq_len(v); i++) {
        p->n_rules++;
        yaml_node_t *rn = node(ld, v->data.sequence.items.start[i]);
        if (parse_rule(ld, rn, &p->rules[i]) < 0)
            return -EINVAL;
        for (size_t k = 0; k < i; k++)
            if (strcmp(p->rules[k].id, p->rules[i].id) == 0)
                return fail(ld, rn, "rule id '%s' already used at line %d", p->rules[i].id,
                            p->rules[k].line);
    }
    return 0;
}

void policy_destroy(policy_t **pp)
{
    if (!pp || !*pp)
        return;
    policy_t *p = *pp;
    free(p->file);
    free(p->vendor);
    free(p->version);
    strv_free(p->aliases);
    for (size_t i = 0; i < p->n_table; i++)
        wentry_clear(&p->table[i]);
    free(p->table);
    /* Cleared even when the default failed to parse half-way (has_default unset). */
    wentry_clear(&p->deflt);
    for (size_t i = 0; i < p->n_acc; i++)
        accset_clear(&p->acc[i]);
    free(p->acc);
    for (size_t i = 0; i < p->n_rules; i++)
        rule_clear(&p->rules[i]);
    free(p->rules);
    for (size_t i = 0; i < p->n_xfind; i++) {
        free(p->xfind[i].name);
        free(p->xfind[i].text);
    }
    free(p->xfind);
    free(p->finding_names);
    for (size_t i = 0; i < p->n_xfacts; i++) {
        free((char *)p->xfacts[i].def.name);
        strv_free((char **)p->xfacts[i].values.names);
    }
    free(p->xfacts);
    free(p);
    *pp = NULL;
}

/*
 * Reject nesting deeper than POLICY_MAX_DEPTH before libyaml builds a document: one
 * pass over the events, stopped at the limit, so a hostile `[[[[...` costs
 * O(limit x length), not the scanner's O(depth^2). Syntax errors are left to the
 * document load, which reports them with their context. Returns 0, -EINVAL with
 * *errmsg set, or -ENOMEM.
 */
static int check_depth(const char *text, size_t len, const char *name, char **errmsg)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    int depth = 0, r = 0;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    for (;;) {
        if (!yaml_parser_parse(&parser, &ev))
            break;
        yaml_event_type_t t = ev.type;
        unsigned long line = (unsigned long)ev.start_mark.line + 1;
        yaml_event_delete(&ev);
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
            if (++depth > POLICY_MAX_DEPTH) {
                if (asprintf(errmsg, "%s:%lu: nested more than %d deep (the policy nesting "
                                     "depth limit)", name, line, POLICY_MAX_DEPTH) < 0)
                    *errmsg = NULL;
                r = -EINVAL;
                break;
            }
        } else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
            depth--;
        } else if (t == YAML_STREAM_END_EVENT) {
            break;
        }
    }
    yaml_parser_delete(&parser);
    return r;
}

int policy_load_text(const char *text, size_t len, const char *name, policy_t **out,
                     char **errmsg)
{
    ld_t ld = { .file = name, .budget = POLICY_MAX_NODES };
    yaml_parser_t parser;
    *errmsg = NULL;
    if (len > POLICY_MAX_BYTES) {
        if (asprintf(errmsg, "%s:1: policy file larger than %u bytes", name, POLICY_MAX_BYTES) < 0)
            *errmsg = NULL;
        return -EFBIG;
    }
    if (memchr(text, '\0', len)) {
        if (asprintf(errmsg, "%s:1: policy file contains a NUL byte", name) < 0)
            *errmsg = NULL;
        return -EINVAL;
    }
    int dr = check_depth(text, len, name, errmsg);
    if (dr < 0)
        return dr;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &ld.doc)) {
        unsigned long line = (unsigned long)parser.problem_mark.line + 1;
        int r;
        if (parser.context)
            r = asprintf(errmsg, "%s:%lu: YAML syntax: %s %s started at line %lu", name, line,
                         parser.problem ? parser.problem : "error", parser.context,
                         (unsigned long)parser.context_mark.line + 1);
        else
            r = asprintf(errmsg, "%s:%lu: YAML syntax: %s", name, line,
                         parser.problem ? parser.problem : "error");
        if (r < 0)
            *errmsg = NULL;
        yaml_parser_delete(&parser);
        return -EINVAL;
    }
    yaml_parser_delete(&parser);

    policy_t *p = calloc(1, sizeof(*p));
    int r = p ? 0 : -ENOMEM;
    if (p && !(p->file = strdup(name)))
        r = -ENOMEM;
    if (p)
        sha256_hex(text, len, p->sha256);
    ld.p = p;
    if (r == 0)
        r = parse_root(&ld, p);
    yaml_document_delete(&ld.doc);
    if (r < 0) {
        policy_destroy(&p);
        *errmsg = ld.err;
        if (!*errmsg && asprintf(errmsg, "%s: out of memory", name) < 0)
            *errmsg = NULL;
        return r;
    }
    free(ld.err);
    *out = p;
    return 0;
}

int policy_load(const char *path, policy_t **out, char **errmsg)
{
    *errmsg = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        if (asprintf(errmsg, "%s: %s", path, strerror(e)) < 0)
            *errmsg = NULL;
        return -e;
    }
    char *buf = malloc(POLICY_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, POLICY_MAX_BYTES + 1, f) : 0;
    int rerr = ferror(f);
    fclose(f);
    if (!buf)
        return -ENOMEM;
    if (rerr) {
        free(buf);
        if (asprintf(errmsg, "%s: read error", path) < 0)
            *errmsg = NULL;
        return -EIO;
    }
    int r = policy_load_text(buf, n, path, out, errmsg);
    free(buf);
    return r;
}

const char *policy_vendor(const policy_t *p)
{
    return p->vendor;
}

const char *policy_file(const policy_t *p)
{
    return p->file;
}

const char *policy_sha256(const policy_t *p)
{
    return p->sha256;
}

const char *policy_version(const policy_t *p)
{
    return p->version;
}
