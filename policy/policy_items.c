/*
 * Which checklist items decide a case (policy/policy.h, policy_items_deciding): the
 * station asks for exactly those before CMD-DONE, so no default the worker did not
 * confirm changes a receipt's outcome. Counterfactual evaluation with the one policy
 * engine, rather than reading which facts the rules mention: a rule that tests a fact
 * may still never change this case's decision (an earlier rule decides), and the
 * worker should not be asked for what does not matter.
 */
#include "policy/policy.h"

#include <errno.h>
#include <stdbool.h>

/* What "the outcome" is for a worker: what happens to the unit and what it costs. */
typedef struct {
    disposition_t disposition;
    double fee, fee_amount;
    wstatus_t warranty;
    unsigned flags;
} decision_t;

static int decide(const policy_t *p, const policy_case_t *c, decision_t *d)
{
    policy_result_t r;
    int rc = policy_evaluate(p, c, &r);
    if (rc < 0)
        return rc;
    *d = (decision_t){ .disposition = r.disposition, .fee = r.restocking_fee_pct,
                       .fee_amount = r.restocking_fee_amount,
                       .warranty = r.warranty.status, .flags = r.flags };
    policy_result_free(&r);
    return 0;
}

/* 1 when the case now decides differently from base, 0 when not, or -ENOMEM. */
static int differs(const policy_t *p, const policy_case_t *c, const decision_t *base)
{
    decision_t d;
    int rc = decide(p, c, &d);
    if (rc < 0)
        return rc;
    return d.disposition != base->disposition || d.fee != base->fee ||
           d.fee_amount != base->fee_amount ||
           d.warranty != base->warranty || d.flags != base->flags;
}

/* Try every value of an enum field; 1 as soon as one differs. */
#define TRY_VALUES(field, type, count)                                          \
    do {                                                                        \
        type saved_ = c->inspection.field;                                      \
        for (int v_ = 0; v_ < (count) && !hit; v_++) {                          \
            if (v_ == (int)saved_)                                              \
                continue;                                                       \
            c->inspection.field = (type)v_;                                     \
            hit = differs(p, c, &base);                                         \
        }                                                                       \
        c->inspection.field = saved_;                                           \
    } while (0)

int policy_items_deciding(const policy_t *p, policy_case_t *c, unsigned unanswered,
                          unsigned *deciding)
{
    decision_t base;
    unsigned out = 0;
    int rc = decide(p, c, &base), hit;

    if (rc < 0)
        return rc;
    if (unanswered & POLICY_ITEM_PACKAGING) {
        hit = 0;
        TRY_VALUES(packaging, packaging_t, ENUM_PACKAGING.count);
        if (hit < 0)
            return hit;
        out |= hit ? POLICY_ITEM_PACKAGING : 0;
    }
    if (unanswered & POLICY_ITEM_SEAL) {
        hit = 0;
        TRY_VALUES(seal, seal_t, ENUM_SEAL.count);
        if (hit < 0)
            return hit;
        out |= hit ? POLICY_ITEM_SEAL : 0;
    }
    if (unanswered & POLICY_ITEM_FAULT) {
        hit = 0;
        TRY_VALUES(fault, fault_t, ENUM_FAULT.count);
        if (hit < 0)
            return hit;
        out |= hit ? POLICY_ITEM_FAULT : 0;
    }
    if ((unanswered & POLICY_ITEM_ACCESSORIES) && c->inspection.n_accessories_missing) {
        size_t saved = c->inspection.n_accessories_missing;
        c->inspection.n_accessories_missing = 0;
        hit = differs(p, c, &base);
        c->inspection.n_accessories_missing = saved;
        if (hit < 0)
            return hit;
        out |= hit ? POLICY_ITEM_ACCESSORIES : 0;
    }
    *deciding = out;
    return 0;
}
