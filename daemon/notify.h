/*
 * notify: rmad's side of the service manager's protocol (sd_notify, libsystemd).
 *
 * READY=1 once, when the database, the sockets, the stations with their scanners and
 * the policies are up; STATUS= a line about the stations and receipts, sent again
 * whenever it changes; WATCHDOG=1 from a timer on the daemon's event loop, every half
 * of WATCHDOG_USEC, so that a loop stuck in one callback stops feeding it and systemd
 * restarts the daemon (WatchdogSec= in the unit). Without NOTIFY_SOCKET (started by
 * hand, by make run or by a test) every call is a no-op that returns 0.
 *
 * Nothing here logs: calls return 0, or a negative errno from sd_notify for the
 * daemon to log once.
 */
#ifndef RMAD_NOTIFY_H
#define RMAD_NOTIFY_H

#include <stdint.h>

#include "core/loop.h"

typedef struct notify notify_t;

/* The STATUS= text now: malloc'd (notify frees it), or NULL when out of memory. */
typedef char *(*notify_status_fn)(void *data);

/* How often STATUS= is refreshed when the watchdog does not ask for more often. */
#define NOTIFY_STATUS_MS 5000

/*
 * A link to the service manager, reading NOTIFY_SOCKET and WATCHDOG_USEC (and
 * WATCHDOG_PID: another process's watchdog is not ours). Nothing is sent before
 * notify_ready(). Returns NULL when out of memory.
 */
notify_t *notify_new(loop_t *loop, notify_status_fn status, void *data);

/*
 * The daemon is up: READY=1 with the first STATUS=, then the timer that feeds the
 * watchdog and refreshes the status. Returns 0, -ENOMEM (no timer), or sd_notify's
 * negative errno (the timer runs anyway; the daemon serves without the manager).
 */
int notify_ready(notify_t *n);

/* STOPPING=1 with a last STATUS= (the reason), when the daemon shuts down. */
int notify_stopping(notify_t *n, const char *why);

/* The watchdog interval systemd asked for, in milliseconds; 0 when it is off. */
int64_t notify_watchdog_ms(const notify_t *n);

/* The last error sd_notify returned on a timer tick, then cleared (0: none). */
int notify_take_error(notify_t *n);

/* Stop the timer and free. Accepts NULL and clears the pointer. */
void notify_destroy(notify_t **n_p);

#endif
