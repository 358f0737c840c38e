/* TCP client connects and disconnects, summed (daemon/connsum.h). */
#include "daemon/connsum.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

struct connsum {
    loop_t *loop;
    int64_t every_ms;
    connsum_fn fn;
    void *data;
    connsum_counts_t pending, total;
    bool dirty;               /* pending holds something */
    int64_t reported_ms;      /* monotonic: the last summary; 0: none yet */
    uint64_t timer;           /* the next summary is due; 0: none armed */
};

static void report(connsum_t *cs)
{
    if (!cs->dirty)
        return;
    connsum_counts_t c = cs->pending;
    cs->pending = (connsum_counts_t){ .connected = 0 };
    cs->dirty = false;
    cs->reported_ms = loop_now_ms();
    cs->fn(&c, cs->data);
}

static int64_t due(loop_t *loop, uint64_t id, void *data)
{
    connsum_t *cs = data;
    (void)loop;
    (void)id;
    cs->timer = 0;
    report(cs);
    return -1;
}

connsum_t *connsum_new(loop_t *loop, int64_t every_ms, connsum_fn fn, void *data)
{
    if (!loop || !fn)
        return NULL;
    connsum_t *cs = calloc(1, sizeof(*cs));
    if (cs)
        *cs = (connsum_t){ .loop = loop, .every_ms = every_ms, .fn = fn, .data = data };
    return cs;
}

void connsum_destroy(connsum_t **cs_p)
{
    if (!cs_p || !*cs_p)
        return;
    connsum_t *cs = *cs_p;
    if (cs->timer)
        (void)loop_del_timer(cs->loop, cs->timer);
    report(cs);
    free(cs);
    *cs_p = NULL;
}

void connsum_note(connsum_t *cs, connsum_what_t what, const char *reason)
{
    if (!cs)
        return;
    connsum_counts_t *sets[] = { &cs->pending, &cs->total };
    for (size_t i = 0; i < 2; i++) {
        connsum_counts_t *c = sets[i];
        if (what == CONNSUM_CONNECTED)
            c->connected++;
        else if (what == CONNSUM_DISCONNECTED)
            c->disconnected++;
        else
            c->refused++;
        if (what != CONNSUM_CONNECTED && reason)
            (void)snprintf(c->last_reason, sizeof(c->last_reason), "%s", reason);
    }
    cs->dirty = true;
    if (cs->timer)
        return;
    /* Out of memory for a timer: reported with the next change instead. */
    int64_t wait = cs->reported_ms ? cs->reported_ms + cs->every_ms - loop_now_ms() : 0;
    cs->timer = loop_add_timer(cs->loop, wait > 0 ? wait : 0, due, cs);
}

connsum_counts_t connsum_total(const connsum_t *cs)
{
    connsum_counts_t none = { .connected = 0 };
    return cs ? cs->total : none;
}
