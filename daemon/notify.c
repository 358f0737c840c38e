/* The service manager's protocol on the event loop (daemon/notify.h). */
#include "daemon/notify.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

struct notify {
    loop_t *loop;
    notify_status_fn status;
    void *data;
    int64_t watchdog_ms;     /* 0: off */
    uint64_t timer;          /* 0 until ready */
    char *last_status;       /* the STATUS= last sent, to send only changes */
    int error;               /* a tick's sd_notify failure, for the daemon to log */
};

notify_t *notify_new(loop_t *loop, notify_status_fn status, void *data)
{
    notify_t *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->loop = loop;
    n->status = status;
    n->data = data;
    uint64_t usec = 0;
    /* > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID, if set, is this process. */
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
        n->watchdog_ms = (int64_t)((usec + 999) / 1000);
    return n;
}

int64_t notify_watchdog_ms(const notify_t *n)
{
    return n->watchdog_ms;
}

int notify_take_error(notify_t *n)
{
    int e = n->error;
    n->error = 0;
    return e;
}

/*
 * Send head (READY=1, WATCHDOG=1, STOPPING=1 or nothing) and, when it changed or
 * force is set, the STATUS= line. Returns sd_notify's result as 0 or -errno.
 */
static int send_state(notify_t *n, const char *head, bool force)
{
    char *status = n->status(n->data);
    bool changed = status && (!n->last_status || strcmp(status, n->last_status) != 0);
    char *msg = NULL;
    int rc;
    if (status && (changed || force))
        rc = asprintf(&msg, "%s%sSTATUS=%s", head, *head ? "\n" : "", status);
    else
        rc = (msg = strdup(head)) ? 0 : -1;
    if (rc < 0 || !msg) {
        free(status);
        return -ENOMEM;
    }
    rc = *msg ? sd_notify(0, msg) : 0;
    free(msg);
    if (rc >= 0 && status && (changed || force)) {
        free(n->last_status);
        n->last_status = status;
        status = NULL;
    }
    free(status);
    return rc < 0 ? rc : 0;
}

/* Half the watchdog interval (systemd's advice), and no longer than NOTIFY_STATUS_MS. */
static int64_t tick_ms(const notify_t *n)
{
    int64_t t = n->watchdog_ms ? n->watchdog_ms / 2 : NOTIFY_STATUS_MS;
    if (t < 1)
        t = 1;
    return t < NOTIFY_STATUS_MS ? t : NOTIFY_STATUS_MS;
}

/*
 * A loop timer: while it runs, the loop is alive, so this is where the watchdog is
 * fed. It runs on the loop between two callbacks, never from another thread: a loop
 * stuck inside a callback misses it and systemd restarts rmad.
 */
static int64_t tick(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    notify_t *n = data;
    int rc = send_state(n, n->watchdog_ms ? "WATCHDOG=1" : "", false);
    if (rc < 0 && !n->error)
        n->error = rc;
    return tick_ms(n);
}

int notify_ready(notify_t *n)
{
    int rc = send_state(n, "READY=1", true);
    if (!n->timer && !(n->timer = loop_add_timer(n->loop, tick_ms(n), tick, n)))
        return -ENOMEM;
    return rc;
}

int notify_stopping(notify_t *n, const char *why)
{
    /* No watchdog while shutting down: systemd's stop timeout takes over. */
    if (n->timer)
        (void)loop_del_timer(n->loop, n->timer);
    n->timer = 0;
    char *msg = NULL;
    if (asprintf(&msg, "STOPPING=1\nSTATUS=%s", why ? why : "stopping") < 0)
        return -ENOMEM;
    int rc = sd_notify(0, msg);
    free(msg);
    return rc < 0 ? rc : 0;
}

void notify_destroy(notify_t **n_p)
{
    if (!n_p || !*n_p)
        return;
    notify_t *n = *n_p;
    if (n->timer)
        (void)loop_del_timer(n->loop, n->timer);
    free(n->last_status);
    free(n);
    *n_p = NULL;
}
