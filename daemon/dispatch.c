/* The outbox's dispatcher: committed events to every sink by its cursor (daemon/dispatch.h). */
#include "daemon/dispatch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define SINK_NAME_MAX 32

typedef struct {
    char name[SINK_NAME_MAX + 1];
    dispatch_deliver_fn fn;
    void *data;
    uint64_t cursor;        /* the last seq it took */
    uint64_t saved;         /* the cursor as stored */
} sink_t;

typedef struct {
    dispatch_wake_fn fn;
    void *data;
} waker_t;

struct dispatch {
    loop_t *loop;
    db_t *db;
    uint64_t committed;     /* the newest committed seq */
    sink_t sinks[DISPATCH_SINKS_MAX];
    size_t nsinks;
    waker_t wakers[DISPATCH_SINKS_MAX];
    size_t nwakers;
    uint64_t catchup;       /* timer: sinks behind read from the database */
    uint64_t save;          /* timer: moved cursors are stored */
};

dispatch_t *dispatch_new(loop_t *loop, db_t *db, char **errmsg)
{
    dispatch_t *dp = calloc(1, sizeof(*dp));
    if (!dp) {
        if (errmsg)
            *errmsg = strdup("out of memory");
        return NULL;
    }
    dp->loop = loop;
    dp->db = db;
    if (db_outbox_last_seq(db, &dp->committed) < 0) {
        if (errmsg)
            *errmsg = strdup(db_errmsg(db));
        free(dp);
        return NULL;
    }
    return dp;
}

int dispatch_save(dispatch_t *dp)
{
    int64_t now = loop_wall_ms();
    for (size_t i = 0; i < dp->nsinks; i++) {
        sink_t *s = &dp->sinks[i];
        if (s->cursor == s->saved)
            continue;
        int r = db_sink_mark_set(dp->db, s->name, s->cursor, now);
        if (r < 0)
            return r;
        s->saved = s->cursor;
    }
    return 0;
}

void dispatch_destroy(dispatch_t **dpp)
{
    if (!dpp || !*dpp)
        return;
    dispatch_t *dp = *dpp;
    if (dp->catchup)
        (void)loop_del_timer(dp->loop, dp->catchup);
    if (dp->save)
        (void)loop_del_timer(dp->loop, dp->save);
    if (!db_in_transaction(dp->db))
        (void)dispatch_save(dp);   /* best effort: a cursor behind only re-sends */
    free(dp);
    *dpp = NULL;
}

static int64_t save_due(loop_t *loop, uint64_t id, void *data)
{
    dispatch_t *dp = data;
    (void)loop;
    (void)id;
    /* Busy (another process writes) or inside a transaction: a lagging cursor only
     * means a few events sent twice after a crash; try again later. */
    if (db_in_transaction(dp->db) || dispatch_save(dp) < 0)
        return DISPATCH_SAVE_MS;
    dp->save = 0;
    return -1;
}

static void moved(dispatch_t *dp)
{
    if (!dp->save)
        dp->save = loop_add_timer(dp->loop, DISPATCH_SAVE_MS, save_due, dp);
}

struct feed {
    sink_t *sink;
    int rc;
};

static int feed_one(const db_event_t *ev, void *data)
{
    struct feed *f = data;
    dispatch_event_t e = { .seq = ev->seq, .topic = ev->topic, .body = ev->body,
                           .len = ev->body_len };
    if ((f->rc = f->sink->fn(&e, f->sink->data)) == -EAGAIN)
        return 1;
    f->sink->cursor = ev->seq;
    return 0;
}

/* Deliver up to DISPATCH_BATCH events from the database to a sink behind. True when caught up. */
static bool catch_up(dispatch_t *dp, sink_t *s)
{
    if (s->cursor >= dp->committed)
        return true;
    struct feed f = { .sink = s };
    uint64_t before = s->cursor;
    int r = db_outbox_foreach(dp->db, s->cursor + 1, DISPATCH_BATCH, feed_one, &f);
    if (s->cursor != before)
        moved(dp);
    if (r < 0 || f.rc == -EAGAIN)
        return true;              /* a database error or a sink not ready: not now */
    if (s->cursor == before) {
        /* Nothing in the outbox past the cursor (retention deleted old events): caught up. */
        s->cursor = dp->committed;
        moved(dp);
    }
    return s->cursor >= dp->committed;
}

static int64_t catchup_due(loop_t *loop, uint64_t id, void *data)
{
    dispatch_t *dp = data;
    bool done = true;
    (void)loop;
    (void)id;
    for (size_t i = 0; i < dp->nsinks; i++)
        if (!catch_up(dp, &dp->sinks[i]))
            done = false;
    if (done) {
        dp->catchup = 0;
        return -1;
    }
    return 0;   /* the rest on the next turn: other fds are served in between */
}

void dispatch_kick(dispatch_t *dp)
{
    if (dp && !dp->catchup)
        dp->catchup = loop_add_timer(dp->loop, 0, catchup_due, dp);
}

int dispatch_add_sink(dispatch_t *dp, const char *name, dispatch_deliver_fn fn, void *data,
                      uint64_t *backlog)
{
    if (!dp || !name || !*name || strlen(name) > SINK_NAME_MAX || !fn)
        return -EINVAL;
    if (dp->nsinks == DISPATCH_SINKS_MAX)
        return -E2BIG;
    uint64_t seq;
    int64_t at;
    int r = db_sink_mark_get(dp->db, name, &seq, &at);
    if (r < 0)
        return r;
    sink_t *s = &dp->sinks[dp->nsinks];
    *s = (sink_t){ .fn = fn, .data = data };
    strcpy(s->name, name);
    if (at == 0) {
        /* Never stored: from now on. */
        s->cursor = dp->committed;
    } else {
        s->cursor = seq > dp->committed ? dp->committed : seq;
        s->saved = seq;
    }
    dp->nsinks++;
    if (backlog)
        *backlog = dp->committed - s->cursor;
    if (s->cursor < dp->committed)
        dispatch_kick(dp);
    return 0;
}

int dispatch_add_waker(dispatch_t *dp, dispatch_wake_fn fn, void *data)
{
    if (!dp || !fn)
        return -EINVAL;
    if (dp->nwakers == DISPATCH_SINKS_MAX)
        return -E2BIG;
    dp->wakers[dp->nwakers++] = (waker_t){ .fn = fn, .data = data };
    return 0;
}

void dispatch_committed(dispatch_t *dp, const outbox_t *ob)
{
    size_t n = dp ? outbox_pending(ob) : 0;
    uint64_t first = 0, last = 0;
    if (n == 0)
        return;
    (void)outbox_pending_get(ob, 0, NULL, NULL, &first);
    (void)outbox_pending_get(ob, n - 1, NULL, NULL, &last);
    bool behind = false;
    for (size_t k = 0; k < dp->nsinks; k++) {
        sink_t *s = &dp->sinks[k];
        if (s->cursor + 1 != first || dp->committed + 1 != first) {
            behind = true;        /* it reads these from the database, in order */
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            dispatch_event_t e;
            (void)outbox_pending_get(ob, i, &e.topic, &e.body, &e.seq);
            e.len = strlen(e.body);
            if (s->fn(&e, s->data) == -EAGAIN) {
                behind = true;
                break;
            }
            s->cursor = e.seq;
        }
        moved(dp);
    }
    if (last > dp->committed)
        dp->committed = last;
    for (size_t k = 0; k < dp->nwakers; k++)
        dp->wakers[k].fn(dp->committed, dp->wakers[k].data);
    if (behind)
        dispatch_kick(dp);
}

uint64_t dispatch_committed_seq(const dispatch_t *dp)
{
    return dp ? dp->committed : 0;
}

uint64_t dispatch_cursor(const dispatch_t *dp, const char *name)
{
    for (size_t i = 0; dp && i < dp->nsinks; i++)
        if (strcmp(dp->sinks[i].name, name) == 0)
            return dp->sinks[i].cursor;
    return 0;
}
