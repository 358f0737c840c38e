/* The daemon's unit of work: a transaction, its events, its hooks (daemon/txn.h). */
#include "daemon/txn.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct {
    txn_hook_fn fn;
    void *data;
} hook_t;

struct txn {
    db_t *db;
    dispatch_t *dp;
    outbox_t *ob;
    hook_t *hooks;
    size_t nhooks, cap;
    bool in_savepoint;
    size_t sp_events, sp_hooks;   /* what the savepoint started with */
};

txn_t *txn_new(db_t *db, dispatch_t *dp)
{
    txn_t *t = calloc(1, sizeof(*t));
    if (!t || !(t->ob = outbox_new())) {
        free(t);
        return NULL;
    }
    t->db = db;
    t->dp = dp;
    return t;
}

/*
 * Tell the hooks from `from` on, and forget them. Once the transaction has ended
 * (from 0) a hook may start the next txn, which fills the list again: the list is
 * taken away while they run, and kept for reuse when nobody made a new one.
 */
static void end_hooks(txn_t *t, size_t from, int rc)
{
    hook_t *hooks = t->hooks;
    size_t n = t->nhooks, cap = t->cap;
    if (n == from)
        return;
    if (from == 0) {
        t->hooks = NULL;
        t->nhooks = t->cap = 0;
    } else {
        t->nhooks = from;     /* the transaction goes on: no hook can begin another */
    }
    for (size_t i = from; i < n; i++)
        hooks[i].fn(rc, hooks[i].data);
    if (from == 0 && !t->hooks) {
        t->hooks = hooks;
        t->cap = cap;
    } else if (from == 0) {
        free(hooks);
    }
}

void txn_rollback(txn_t *t, int why)
{
    (void)db_rollback(t->db);
    outbox_discard(t->ob);
    t->in_savepoint = false;
    end_hooks(t, 0, why < 0 ? why : -ECANCELED);
}

void txn_destroy(txn_t **tp)
{
    if (!tp || !*tp)
        return;
    txn_t *t = *tp;
    txn_rollback(t, -ECANCELED);
    outbox_destroy(&t->ob);
    free(t->hooks);
    free(t);
    *tp = NULL;
}

db_t *txn_db(const txn_t *t)
{
    return t->db;
}

outbox_t *txn_outbox(txn_t *t)
{
    return t->ob;
}

int txn_begin(txn_t *t)
{
    if (outbox_pending(t->ob) || t->nhooks)
        return -EINVAL;      /* the last unit was never ended */
    return db_begin(t->db);
}

int txn_event(txn_t *t, const char *topic, json_t *fields, const char *station,
              int64_t receipt, int64_t now_ms)
{
    return outbox_append(t->ob, t->db, topic, fields, station, receipt, now_ms);
}

uint64_t txn_last_seq(const txn_t *t)
{
    uint64_t seq = 0;
    size_t n = outbox_pending(t->ob);
    if (n)
        (void)outbox_pending_get(t->ob, n - 1, NULL, NULL, &seq);
    return seq;
}

int txn_on_end(txn_t *t, txn_hook_fn fn, void *data)
{
    if (!db_in_transaction(t->db))
        return -EINVAL;
    if (t->nhooks == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        hook_t *h = realloc(t->hooks, cap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        t->hooks = h;
        t->cap = cap;
    }
    t->hooks[t->nhooks++] = (hook_t){ fn, data };
    return 0;
}

int txn_savepoint(txn_t *t)
{
    if (t->in_savepoint)
        return -EINVAL;
    int r = db_savepoint(t->db);
    if (r == 0) {
        t->in_savepoint = true;
        t->sp_events = outbox_pending(t->ob);
        t->sp_hooks = t->nhooks;
    }
    return r;
}

int txn_release(txn_t *t)
{
    if (!t->in_savepoint)
        return -EINVAL;
    int r = db_release(t->db);
    if (r < 0) {
        (void)txn_rollback_to(t, r);
        return r;
    }
    t->in_savepoint = false;
    return 0;
}

int txn_rollback_to(txn_t *t, int why)
{
    if (!t->in_savepoint)
        return -EINVAL;
    t->in_savepoint = false;
    int r = db_in_transaction(t->db) ? db_rollback_to(t->db) : why;
    if (r < 0 || !db_in_transaction(t->db)) {
        /* SQLite ended the whole transaction (a full disk, an I/O error): all of it is undone. */
        int rc = r < 0 ? r : why;
        txn_rollback(t, rc);
        return rc;
    }
    outbox_truncate(t->ob, t->sp_events);
    end_hooks(t, t->sp_hooks, why);
    return 0;
}

int txn_commit(txn_t *t)
{
    if (t->in_savepoint) {
        txn_rollback(t, -EINVAL);
        return -EINVAL;
    }
    int r = db_commit(t->db);   /* rolls back itself when it fails */
    if (r < 0) {
        txn_rollback(t, r);
        return r;
    }
    dispatch_committed(t->dp, t->ob);
    outbox_discard(t->ob);
    end_hooks(t, 0, 0);
    return 0;
}

int txn_run(txn_t *t, int (*work)(txn_t *t, void *data), void *data)
{
    int r = txn_begin(t);
    if (r < 0)
        return r;
    if ((r = work(t, data)) < 0) {
        txn_rollback(t, r);
        return r;
    }
    return txn_commit(t);
}
