/*
 * outbox: events in the transaction of the change they report (spec events, "Nothing
 * lost": "an event is written to an outbox table in the same SQLite transaction as the
 * state change it reports, and published only after that commit").
 *
 * An outbox_t collects the events appended during one transaction. The writer's
 * sequence is:
 *
 *     db_begin(db);
 *     ... state change ...
 *     outbox_append(ob, db, "receipt.opened", fields, station, receipt, now_ms);
 *     if (db_commit(db) == 0)
 *         outbox_flush(ob, publish, data);    publish (topic, body) in seq order
 *     else
 *         outbox_discard(ob);                 nothing committed: nothing to publish
 *
 * outbox_append stores the event in the database (db_outbox_insert) and keeps the
 * same text as pending, so what is published live is byte for byte what replay
 * sends later. Publishing is the caller's business (ZeroMQ lives in the daemon);
 * this module only hands the pending events over.
 *
 * One outbox_t per writer, used from the event-loop thread only.
 */
#ifndef RMAD_OUTBOX_H
#define RMAD_OUTBOX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

typedef struct outbox outbox_t;

/* An empty outbox, or NULL when out of memory. */
outbox_t *outbox_new(void);

/* Free it, pending events included (they are in the database). NULL is fine; clears *ob. */
void outbox_destroy(outbox_t **ob);

/*
 * Append one event inside the caller's open transaction: takes the next seq
 * (db_outbox_next_seq), builds the envelope (proto/event.h: v, seq, type, time from
 * now_ms, station when not NULL, receipt when not 0) followed by the members of
 * `fields` (borrowed; NULL for none), stores it with db_outbox_insert, and keeps
 * (topic, body) pending.
 *
 * Returns 0, -EINVAL (topic/time/station/receipt not valid for an envelope, fields
 * not an object or naming an envelope key, or no transaction open), -ENOMEM, or the
 * database's error (see db.h). On failure nothing is kept pending; the caller rolls
 * back, which gives the seq back.
 */
int outbox_append(outbox_t *ob, db_t *db, const char *topic, json_t *fields,
                  const char *station, int64_t receipt, int64_t now_ms);

/* Events appended since the last flush or discard. */
size_t outbox_pending(const outbox_t *ob);

/*
 * Pending event i (0 = first appended): its topic, body (compact JSON, NUL-terminated)
 * and seq. Pointers are valid until the next flush/discard/append. Returns 0, or
 * -ERANGE when i >= outbox_pending(). Output parameters may be NULL.
 */
int outbox_pending_get(const outbox_t *ob, size_t i, const char **topic, const char **body,
                       uint64_t *seq);

/*
 * Publish callback: one event, in seq order. Return 0, or a negative errno for a
 * failed send.
 */
typedef int (*outbox_publish_fn)(const char *topic, const char *body, size_t body_len,
                                 void *data);

/*
 * After db_commit: call fn for every pending event in seq order, then forget them.
 * A failed send does not stop the others and is not retried: the event is committed,
 * and a subscriber that misses it sees the gap in seq and asks the replay endpoint.
 * Returns 0, or the first error fn returned.
 */
int outbox_flush(outbox_t *ob, outbox_publish_fn fn, void *data);

/* A savepoint rolled back: forget the events appended after the first n. */
void outbox_truncate(outbox_t *ob, size_t n);

/* After a rollback (or a failed commit): forget the pending events unpublished. */
void outbox_discard(outbox_t *ob);

#endif
