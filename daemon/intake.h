/*
 * intake: group commit of the stations' reads (issue 17).
 *
 * A read (a scan, or a read the driver rejected) is queued at its station
 * (daemon/scanq.h) and stored at the end of the loop turn that brought it, together
 * with the reads that are ready at the other stations: one transaction (daemon/txn.h)
 * per batch, a savepoint per read, so a read whose statements fail rolls back alone and
 * the others still commit. A batch takes at most one read per station (a station's
 * reads build on each other: its next read is planned from the state the last one left,
 * which is known only after the COMMIT), at most INTAKE_BATCH_MAX reads, and stops
 * staging after INTAKE_BATCH_MS. Nothing is acknowledged early: the stations take
 * their new state, the events are published and done() hears each read only after
 * the one COMMIT; a failed COMMIT publishes nothing, changes no station, and every
 * read in the batch hears the error.
 *
 * At human pace a batch holds one read, committed in the turn that read it: no
 * latency is added. Under load, while one batch's fdatasync runs, the next batch
 * fills: one fdatasync covers many stations' scans.
 *
 * Backpressure: when INTAKE_HOLD_AT reads wait at a station, hold() asks it to stop
 * reading its scanners (drivers/scanner.h, scanner_hold: a TCP sender then waits on
 * TCP's own flow control), and to read again once INTAKE_RESUME_AT or fewer wait. A
 * burst larger than one scan budget (a scanner's batch memory, rate=0) is then stored
 * at the database's pace, neither turned away nor stalling the loop.
 *
 * While another process holds the database (BEGIN IMMEDIATE finds it locked), reads
 * wait in order and the batch is tried again every SCANQ_RETRY_MS; busy() hears when
 * that starts and when it ends. Beyond SCANQ_MAX waiting at a station a read is turned
 * away at once (intake_push says -ENOBUFS).
 *
 * Everything runs on the event-loop thread.
 */
#ifndef RMAD_INTAKE_H
#define RMAD_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "daemon/scanq.h"
#include "daemon/station.h"
#include "daemon/txn.h"

#define INTAKE_BATCH_MAX 32   /* reads per transaction */
#define INTAKE_BATCH_MS  5    /* staging stops after this; the rest go in the next batch */
#define INTAKE_HOLD_AT   128  /* reads waiting at a station: its scanners are held */
#define INTAKE_RESUME_AT 32   /* and read again at this many */

typedef struct intake intake_t;

/*
 * A read's end, once: rc 0 when it is stored (out says what it did; seq is the last
 * event of its transaction part, 0 for a double read), or the negative errno that kept
 * it from being stored for good (out NULL; db_errmsg may say why). `read` is valid
 * during the call only.
 */
typedef void (*intake_done_fn)(size_t station, const scanq_item_t *read, int rc,
                               const station_outcome_t *out, uint64_t seq, void *data);

/* The database turned busy (busy true), or is free again after waited_ms (busy false). */
typedef void (*intake_busy_fn)(bool busy, int64_t waited_ms, void *data);

/* Station i's scanners should stop reading (hold true), or read again (false). */
typedef void (*intake_hold_fn)(size_t station, bool hold, void *data);

typedef struct {
    uint64_t batches;          /* transactions committed */
    uint64_t reads;            /* reads stored in them */
    unsigned largest;          /* the most reads one batch stored */
} intake_stats_t;

/*
 * An intake for the n stations (borrowed; index i is the station number given to
 * intake_push and done) writing through t. busy and hold may be NULL. NULL when out
 * of memory.
 */
intake_t *intake_new(loop_t *loop, txn_t *t, station_t *const *stations, size_t n,
                     intake_done_fn done, intake_busy_fn busy, intake_hold_fn hold,
                     void *data);

/* Drops what waits, unanswered (the daemon is stopping). NULL is fine; clears *in. */
void intake_destroy(intake_t **in);

/*
 * Queue a read at station i (a scan; or, with scan NULL, a rejected read: raw and the
 * driver's reason) and make sure a batch runs at the end of this loop turn. owner is
 * handed back in the item (e.g. the scanner to answer). Returns 0, -ENOBUFS when
 * SCANQ_MAX reads wait at that station, -ENOMEM, -EINVAL.
 */
int intake_push(intake_t *in, size_t i, const scan_t *scan, const char *scanner_id,
                const uint8_t *raw, size_t raw_len, const char *reason, void *owner);

/*
 * A batch's caps: at most max_reads reads (1..INTAKE_BATCH_MAX), staging stops after
 * max_ms. The defaults are INTAKE_BATCH_MAX and INTAKE_BATCH_MS. Returns 0 or -EINVAL.
 */
int intake_set_limits(intake_t *in, unsigned max_reads, int64_t max_ms);

/* Reads waiting at all stations (retention waits while any do). */
size_t intake_waiting(const intake_t *in);

void intake_stats(const intake_t *in, intake_stats_t *out);

#endif
