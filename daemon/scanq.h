/*
 * scanq: the reads of one station that wait for the database, in the order they were
 * read (daemon/intake.h stores them, a batch at a time). A read is answered only once
 * it is stored (or finally refused), so its OK means stored. The queue is bounded:
 * beyond SCANQ_MAX a read is turned away at once (the caller answers REJECT "not
 * stored", and the worker scans it again later).
 *
 * The module owns copies of what waits.
 */
#ifndef RMAD_SCANQ_H
#define RMAD_SCANQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drivers/scan.h"

#define SCANQ_MAX 4096        /* reads waiting per station: what arrives after a hold (intake.h) */
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
} scanq_item_t;

/* NULL when out of memory. */
scanq_t *scanq_new(void);

/* Drops what waits (unanswered: the daemon is stopping). NULL is fine; clears *q. */
void scanq_destroy(scanq_t **q);

/* Items waiting. */
size_t scanq_len(const scanq_t *q);

/*
 * Queue a copy of a scan (scan, scanner_id) or of a rejected read (scanner_id, raw,
 * reason; scan NULL). Returns 0, -ENOBUFS when SCANQ_MAX wait already, -ENOMEM.
 */
int scanq_push(scanq_t *q, const scan_t *scan, const char *scanner_id, const uint8_t *raw,
               size_t raw_len, const char *reason, void *owner);

/* The oldest item, or NULL when empty; valid until scanq_pop. */
const scanq_item_t *scanq_head(const scanq_t *q);

/* Drop the oldest item; scanq_pop_last the newest (a push taken back). */
void scanq_pop(scanq_t *q);
void scanq_pop_last(scanq_t *q);

#endif
