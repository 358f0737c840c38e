/*
 * Policy warnings: a file that loads but cannot mean what its author wrote. Pure
 * analysis of loaded policies (no I/O); `rmactl policy check` prints the warnings and
 * `--strict` turns them into errors. The checks are deliberately conservative: a
 * warning is given only when it is certain from the text, never on a guess.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_internal.h"

typedef struct {
    char **v;
    size_t n;
    int oom;
} warns_t;

static void warn(warns_t *w, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void warn(warns_t *w, const char *file, int line, const char *fmt, ...)
{
    char *msg = NULL, *full = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&msg, fmt, ap);
    va_end(ap);
    char **v = r < 0 ? NULL : realloc(w->v, (w->n + 1) * sizeof(*v));
    if (v)
        w->v = v;
    if (!v || asprintf(&full, "%s:%d: warning: %s", file, line > 0 ? line : 1, msg) < 0) {
        w->oom = 1;
        free(msg);
        return;
    }
    free(msg);
    w->v[w->n++] = full;
}

static bool strv_equal(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

/* Whenever test l holds, does test e hold too? Only cases certain from the text. */
static bool cond_implies(const cond_t *l, const cond_t *e)
{
    if (l->fact != e->fact || l->at != e->at)
        return false;
    fact_type_t t = l->type;
    bool l_set = l->op == OP_EQ || l->op == OP_IN, e_set = e->op == OP_EQ || e->op == OP_IN;
    if (t == FT_ENUM && l_set && e_set)
        return (l->bits & ~e->bits) == 0;
    if (l->op != e->op)
        return false;
    switch (l->op) {
    case OP_KNOWN:
    case OP_EMPTY:
        return l->b == e->b;
    case OP_WITHIN:
    case OP_AFTER:
        return duration_cmp(l->dur, e->dur) == 0;
    case OP_BEFORE:
    case OP_ON_OR_AFTER:
        return l->date == e->date;
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE:
        return t == FT_PERIOD ? duration_cmp(l->dur, e->dur) == 0 : l->num == e->num;
    case OP_ANY:
        if (t == FT_SET)
            return (l->bits & ~e->bits) == 0;
        return strv_equal(l->strs, l->n_strs, e->strs, e->n_strs);
    case OP_ALL:
        return (e->bits & ~l->bits) == 0;
    case OP_NONE:
        return t == FT_SET ? (e->bits & ~l->bits) == 0
                           : strv_equal(l->strs, l->n_strs, e->strs, e->n_strs);
    case OP_EQ:
    case OP_IN:
        if (t == FT_BOOL)
            return l->b == e->b;
        if (t == FT_NUMBER)
            return l->num == e->num;
        return strv_equal(l->strs, l->n_strs, e->strs, e->n_strs);
    }
    return false;
}

/*
 * Does every case that matches later rule l also match earlier rule e? Certain only
 * when e has no `unless` and its `when` is a plain list of tests each implied by one
 * of l's top-level tests.
 */
static bool rule_covers(const rule_t *e, const rule_t *l)
{
    if (e->unless)
        return false;
    if (!e->when)
        return true;
    if (e->when->kind != GROUP_ALL || e->when->n_children || !l->when || l->when->kind != GROUP_ALL)
        return false;
    for (size_t i = 0; i < e->when->n_conds; i++) {
        bool found = false;
        for (size_t k = 0; k < l->when->n_conds && !found; k++)
            found = cond_implies(&l->when->conds[k], &e->when->conds[i]);
        if (!found)
            return false;
    }
    return true;
}

/* Windows in one group that no date can satisfy: `after: 30d, within: 10d`. */
static void lint_group(warns_t *w, const policy_t *p, const rule_t *r, const group_t *g)
{
    /* Only where every test must hold: in `any` one other branch may, and in `not` an
     * impossible pair makes the group always true, not the rule dead. */
    for (size_t i = 0; g->kind == GROUP_ALL && i < g->n_conds; i++) {
        const cond_t *a = &g->conds[i];
        for (size_t k = 0; k < g->n_conds; k++) {
            const cond_t *b = &g->conds[k];
            if (a->fact != b->fact || a->at != b->at)
                continue;
            if (a->op == OP_AFTER && b->op == OP_WITHIN && duration_cmp(a->dur, b->dur) >= 0) {
                char x[16], y[16];
                duration_format(a->dur, x, sizeof(x));
                duration_format(b->dur, y, sizeof(y));
                warn(w, p->file, a->line, "rule %s: %s: after %s and within %s cannot both "
                     "hold: the rule never fires", r->id, policy_facts[a->fact].name, x, y);
            }
            if (a->op == OP_ON_OR_AFTER && b->op == OP_BEFORE && a->date >= b->date)
                warn(w, p->file, a->line, "rule %s: %s: on or after one date and before an "
                     "earlier one cannot both hold: the rule never fires", r->id,
                     policy_facts[a->fact].name);
        }
    }
    for (size_t i = 0; i < g->n_children; i++)
        lint_group(w, p, r, &g->children[i]);
}

static void lint_one(warns_t *w, const policy_t *p)
{
    for (size_t i = 0; i < p->n_rules; i++) {
        const rule_t *r = &p->rules[i];
        if (r->when)
            lint_group(w, p, r, r->when);
        if (r->has_disposition && !r->when)
            warn(w, p->file, r->line, "rule %s: decides %s with no 'when': every case that "
                 "reaches it", r->id, ENUM_DISPOSITION.names[r->disposition]);
        if (!r->has_disposition)
            continue;
        /* A deciding rule after one that always decides first can never decide. */
        for (size_t k = 0; k < i; k++) {
            const rule_t *e = &p->rules[k];
            if (e->has_disposition && rule_covers(e, r)) {
                warn(w, p->file, r->line, "rule %s can never fire: rule %s (line %d) always "
                     "decides first", r->id, e->id, e->line);
                break;
            }
        }
    }
}

int policy_lint(const policy_t *const *ps, size_t n, char ***out, size_t *n_out)
{
    warns_t w = { NULL, 0, 0 };
    for (size_t i = 0; i < n; i++)
        lint_one(&w, ps[i]);
    /* Two files claiming one vendor name: which policy decides would depend on order. */
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < i; k++) {
            const policy_t *a = ps[k], *b = ps[i];
            const char *shared = policy_matches_vendor(a, b->vendor) ? b->vendor : NULL;
            for (char **al = b->aliases; !shared && al && *al; al++)
                if (policy_matches_vendor(a, *al))
                    shared = *al;
            if (shared)
                warn(&w, b->file, b->aliases_line, "vendor name '%s' is also claimed by %s",
                     shared, a->file);
        }
    if (w.oom) {
        policy_warnings_free(w.v, w.n);
        return -ENOMEM;
    }
    *out = w.v;
    *n_out = w.n;
    return 0;
}

void policy_warnings_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}
