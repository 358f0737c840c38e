/*
 * scanq: the scans of one station that wait for the database.
 *
 * The loop must never block on SQLite for long: the daemon's busy timeout is short
 * (DB_DAEMON_BUSY_MS), and a scan whose transaction finds the database locked by
 * another process is not dropped but queued here, in order, and tried again from a
 * timer until it is stored; while scans wait, later scans of that station queue behind
 * them (a station's scans are applied in the order they were read). A scan is answered
 * only once it is stored (or finally refused), so its OK means stored. The queue is
 * bounded: beyond SCANQ_MAX a scan is turned away at once (the caller answers REJECT
 * "not stored", and the worker scans it again later).
 *
 * The module owns copies of what waits; trying is the caller's: try(item) returns 0
 * when the item is done (stored, or failed for good and answered), -EBUSY to keep it
 * and try again after SCANQ_RETRY_MS.
 */
#ifndef RMAD_SCANQ_H
#define RMAD_SCANQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "drivers/scan.h"

#define SCANQ_MAX 64          /* scans waiting per station */
#define SCANQ_RETRY_MS 100    /* between tries while the database is busy */

typedef struct scanq scanq_t;

/* One read waiting: a scan, or a read the driver rejected (raw bytes and reason). */
typedef struct {
    bool rejected;
    scan_t scan;              /* rejected: unset */
    char *scanner_id;
    uint8_t *raw;             /* rejected only */
    size_t raw_len;
    char *reason;             /* rejected only */
    void *owner;              /* the caller's, e.g. the scanner it came from (borrowed) */
    int64_t queued_ms;        /* monotonic, when it started waiting */
} scanq_item_t;

typedef int (*scanq_try_fn)(const scanq_item_t *item, void *data);

/* NULL when out of memory. */
scanq_t *scanq_new(loop_t *loop, scanq_try_fn try_fn, void *data);

/* Drops what waits (unanswered: the daemon is stopping). NULL is fine; clears *q. */
void scanq_destroy(scanq_t **q);

/* Items waiting. While there are any, new reads must be pushed, not applied. */
size_t scanq_len(const scanq_t *q);

/*
 * Queue a copy of a scan (scan, scanner_id) or of a rejected read (scanner_id, raw,
 * reason; scan NULL), and arm the retry timer. Returns 0, -ENOBUFS when SCANQ_MAX
 * wait already, -ENOMEM.
 */
int scanq_push(scanq_t *q, const scan_t *scan, const char *scanner_id, const uint8_t *raw,
               size_t raw_len, const char *reason, void *owner);

#endif
