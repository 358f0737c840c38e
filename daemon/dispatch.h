/*
 * dispatch: the outbox's one dispatcher (issue 17). Every committed event reaches every
 * sink in seq order, each sink from its own cursor and at its own pace:
 *
 *   - a sink (dispatch_add_sink) is handed events one by one by deliver(); its cursor is
 *     the last seq it took. The cursor is durable (a row of forward_marks named after
 *     the sink, stored at most once a second and when the dispatcher is destroyed), so
 *     events committed but not yet delivered when the daemon died (SIGKILL between a
 *     COMMIT and its publish) are delivered at the next start. After a crash a sink may
 *     get again the events of its last second: every event carries its seq, and
 *     consumers of a gapless stream drop what they already have.
 *   - a waker (dispatch_add_waker) reads the outbox itself, on its own thread and by its
 *     own mark (the JetStream forwarder); it is told the newest committed seq.
 *
 * Committed events come in through dispatch_committed() with the transaction's outbox
 * (daemon/txn.h calls it after COMMIT): a sink that is caught up takes them from memory.
 * A sink that is behind (it said -EAGAIN, or it starts behind the outbox) reads them from
 * the database, DISPATCH_BATCH at a time per loop turn, so a long backlog never stalls
 * the loop.
 *
 * Everything runs on the event-loop thread.
 */
#ifndef RMAD_DISPATCH_H
#define RMAD_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "daemon/outbox.h"
#include "db/db.h"

#define DISPATCH_BATCH   256    /* events read from the outbox per turn for a sink behind */
#define DISPATCH_SAVE_MS 1000   /* a moved cursor is stored within this */
#define DISPATCH_SINKS_MAX 4

typedef struct dispatch dispatch_t;

typedef struct {
    uint64_t seq;
    const char *topic;
    const char *body;       /* compact JSON, NUL-terminated */
    size_t len;
} dispatch_event_t;

/*
 * One event to a sink. Return 0 when it is taken (also when it was sent and lost:
 * ZeroMQ PUB drops for slow subscribers, which replay), or -EAGAIN to be asked again
 * later from the database (call dispatch_kick once ready).
 */
typedef int (*dispatch_deliver_fn)(const dispatch_event_t *ev, void *data);
typedef void (*dispatch_wake_fn)(uint64_t committed, void *data);

/* NULL with *errmsg (malloc'd; may be NULL) when the outbox cannot be read, or out of memory. */
dispatch_t *dispatch_new(loop_t *loop, db_t *db, char **errmsg);

/* Store the cursors that moved (best effort), free. NULL is fine; clears *dp. */
void dispatch_destroy(dispatch_t **dp);

/*
 * A sink named `name` (1..32 characters; its forward_marks row). Its cursor is the
 * stored one; a sink never stored starts at the newest committed event (a new sink is
 * not sent the whole history; replay is for that). *backlog (may be NULL) is how many
 * committed events it has not taken yet; they are delivered from the next loop turn.
 * Returns 0, -EINVAL, -E2BIG past DISPATCH_SINKS_MAX, or the database's error.
 */
int dispatch_add_sink(dispatch_t *dp, const char *name, dispatch_deliver_fn fn, void *data,
                      uint64_t *backlog);

/* Told the newest committed seq after every commit. Returns 0 or -E2BIG. */
int dispatch_add_waker(dispatch_t *dp, dispatch_wake_fn fn, void *data);

/* After a COMMIT: the transaction's events (ob's pending ones, in seq order) to every sink. */
void dispatch_committed(dispatch_t *dp, const outbox_t *ob);

/* A sink is ready again (or the outbox changed behind the dispatcher): deliver from the database. */
void dispatch_kick(dispatch_t *dp);

/* The newest committed seq the dispatcher knows, and a sink's cursor (0 for an unknown name). */
uint64_t dispatch_committed_seq(const dispatch_t *dp);
uint64_t dispatch_cursor(const dispatch_t *dp, const char *name);

/* Store every moved cursor now (its own statement). Returns 0 or the database's error. */
int dispatch_save(dispatch_t *dp);

#endif
