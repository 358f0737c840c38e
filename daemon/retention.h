/*
 * Retention (`[daemon] retain_days`, docs/control.md): scans and events older than N
 * days are deleted, a bounded batch at a time, from a loop timer that runs only while
 * the stations have no scan waiting. Never deleted: receipts (with their decision),
 * scans of an open receipt, the newest event, and any event after the lowest
 * acknowledgement of a subscriber named in retain_subscribers (one that never
 * acknowledged holds every event). The schema's no-delete rules let exactly these
 * deletes through (db/maint.h, migration 5).
 *
 * A pass starts RETENTION_START_MS after start and then every RETENTION_PERIOD_MS; it
 * runs a batch every RETENTION_GAP_MS until nothing old is left. The module never
 * logs: it reports each finished pass or failure through a callback.
 */
#ifndef RMAD_RETENTION_H
#define RMAD_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "db/db.h"

#define RETENTION_START_MS   5000       /* first pass, after start-up settled */
#define RETENTION_PERIOD_MS  3600000    /* then hourly */
#define RETENTION_GAP_MS     200        /* between two batches of one pass */
#define RETENTION_IDLE_RETRY_MS 1000    /* scans waiting: look again */
#define RETENTION_BUSY_RETRY_MS 5000    /* database locked by another process */

typedef struct retention retention_t;

/* What a pass did: rows deleted, or the error that stopped it (error != NULL). */
typedef struct {
    uint64_t scans;
    uint64_t events;
    uint64_t keep_seq;        /* events from this seq on were kept for subscribers */
    const char *error;        /* db_errmsg, borrowed */
} retention_report_t;

typedef void (*retention_report_fn)(const retention_report_t *r, void *data);

/* 1 when the daemon is busy (scans waiting for the database): the batch waits. */
typedef int (*retention_busy_fn)(void *data);

/*
 * Start retention of `days` days on db. subscribers (n names) are borrowed and must
 * outlive it. busy may be NULL. Returns it, or NULL when out of memory.
 */
retention_t *retention_new(loop_t *loop, db_t *db, int days, char *const *subscribers,
                           size_t n, retention_busy_fn busy, retention_report_fn report,
                           void *data);

/* Cancel the timer and free. Accepts NULL; clears *r_p. */
void retention_destroy(retention_t **r_p);

#endif
