/*
 * txn: the daemon's one unit of work (issue 17). Every write the event loop makes (a
 * batch of scans, a label's outcome, a reprint, an RMA changed over the control
 * socket, a scanner's comings and goings) is one txn: a SQLite transaction, the events
 * that report it (daemon/outbox.h: stored in the same transaction), and the hooks that
 * must run once its fate is known.
 *
 *     txn_begin(t);
 *     ... state change, txn_event(t, ...), txn_on_end(t, hook, data) ...
 *     txn_commit(t);     COMMIT; then the events go to the dispatcher; then the hooks
 *
 * Nothing leaves before the COMMIT: events are dispatched (published) and hooks told
 * 0 only after it succeeded; when it fails, or the work is rolled back, the events are
 * forgotten and the hooks told the error, so a caller that answers a scanner or changes
 * memory from a hook can never report what the database does not hold.
 *
 * Savepoints split a transaction into parts that fail alone (group commit: one per
 * scan): txn_rollback_to undoes the part's writes, forgets its events and tells its
 * hooks, and the transaction goes on.
 *
 * One txn per database connection, on the event-loop thread; not nested.
 */
#ifndef RMAD_TXN_H
#define RMAD_TXN_H

#include <jansson.h>
#include <stdint.h>

#include "daemon/dispatch.h"
#include "daemon/outbox.h"
#include "db/db.h"

typedef struct txn txn_t;

/* A hook: rc 0 once committed (after the events were dispatched), or the error that undid the work. */
typedef void (*txn_hook_fn)(int rc, void *data);

/* A txn on db whose committed events go to dp. NULL when out of memory. Both borrowed. */
txn_t *txn_new(db_t *db, dispatch_t *dp);

/* Rolls back an open transaction (hooks told -ECANCELED). NULL is fine; clears *t. */
void txn_destroy(txn_t **t);

db_t *txn_db(const txn_t *t);

/* Events appended so far (station code appends with outbox_append(txn_outbox(t), ...)). */
outbox_t *txn_outbox(txn_t *t);

/* BEGIN IMMEDIATE: 0, -EBUSY while another process holds the database, -EINVAL when open. */
int txn_begin(txn_t *t);

/* An event in the open transaction (outbox_append). Returns as outbox_append does. */
int txn_event(txn_t *t, const char *topic, json_t *fields, const char *station,
              int64_t receipt, int64_t now_ms);

/* The seq of the last event appended, 0 for none. */
uint64_t txn_last_seq(const txn_t *t);

/* Run fn(rc, data) once the fate of the work so far is known. Returns 0 or -ENOMEM. */
int txn_on_end(txn_t *t, txn_hook_fn fn, void *data);

/* A savepoint (not nested), kept by txn_release or undone by txn_rollback_to. */
int txn_savepoint(txn_t *t);
int txn_release(txn_t *t);

/*
 * Undo the work since txn_savepoint, forget its events and tell its hooks `why`.
 * Returns 0 when the transaction goes on, or the error that ended it (then everything
 * was rolled back and every hook told).
 */
int txn_rollback_to(txn_t *t, int why);

/*
 * COMMIT. 0: durable; the events were handed to the dispatcher in seq order and then the
 * hooks told 0. A negative errno: nothing committed (rolled back), events forgotten,
 * hooks told the error; db_errmsg says why.
 */
int txn_commit(txn_t *t);

/* Roll back (no-op when nothing is open); hooks told `why`. */
void txn_rollback(txn_t *t, int why);

/*
 * The common shape: begin, work(t, data), commit; a failing work is rolled back.
 * Returns 0 or the first error.
 */
int txn_run(txn_t *t, int (*work)(txn_t *t, void *data), void *data);

#endif
