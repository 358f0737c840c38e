/*
 * connsum: what a network scanner's clients did, summed instead of stored one by one.
 *
 * A TCP scanner's clients come and go freely (a phone app reconnects, a port scan
 * opens and closes a thousand connections): storing each connect and disconnect as
 * an event costs a durable transaction each and slows the real scanners. So they are
 * counted here and reported as one summary (the daemon stores it as one
 * `scanner.clients` event) at most every CONNSUM_EVERY_MS: the first change after a
 * quiet spell is reported on the next loop iteration, changes while a summary was
 * reported less than that ago wait for the end of the interval. Device scanners
 * (USB, serial) keep their scanner.connected / scanner.disconnected events.
 *
 * Runs on the loop thread; never logs (the daemon logs the summary).
 */
#ifndef RMAD_CONNSUM_H
#define RMAD_CONNSUM_H

#include <stdint.h>

#include "core/loop.h"

#define CONNSUM_EVERY_MS 10000
#define CONNSUM_REASON_MAX 128

typedef struct connsum connsum_t;

typedef enum {
    CONNSUM_CONNECTED,
    CONNSUM_DISCONNECTED,
    CONNSUM_REFUSED,          /* closed at once, never served (full, out of fds) */
} connsum_what_t;

typedef struct {
    uint64_t connected, disconnected, refused;
    char last_reason[CONNSUM_REASON_MAX];   /* of the last disconnect or refusal; "" */
} connsum_counts_t;

/* fn(counts since the last summary, data) reports one summary. */
typedef void (*connsum_fn)(const connsum_counts_t *since_last, void *data);

/* NULL when out of memory. every_ms: the least time between two summaries. */
connsum_t *connsum_new(loop_t *loop, int64_t every_ms, connsum_fn fn, void *data);

/* Report what is still unreported (a clean stop loses no count), then free. NULL ok. */
void connsum_destroy(connsum_t **cs_p);

/* Count one connect, disconnect or refusal (reason may be NULL). */
void connsum_note(connsum_t *cs, connsum_what_t what, const char *reason);

/* Everything counted since start (for rmactl status). */
connsum_counts_t connsum_total(const connsum_t *cs);

#endif
