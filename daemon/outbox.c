/*
 * The outbox of one writer: events stored in its transaction, pending until the
 * commit is known (spec events, "Nothing lost").
 */
#include "daemon/outbox.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/event.h"

typedef struct {
    uint64_t seq;
    char *topic;
    char *body;
    size_t body_len;
} pending_t;

struct outbox {
    pending_t *ev;
    size_t n, cap;
};

outbox_t *outbox_new(void)
{
    return calloc(1, sizeof(outbox_t));
}

void outbox_truncate(outbox_t *ob, size_t n)
{
    if (!ob)
        return;
    for (size_t i = n; i < ob->n; i++) {
        free(ob->ev[i].topic);
        free(ob->ev[i].body);
    }
    if (n < ob->n)
        ob->n = n;
}

void outbox_discard(outbox_t *ob)
{
    outbox_truncate(ob, 0);
}

void outbox_destroy(outbox_t **ob)
{
    if (!ob || !*ob)
        return;
    outbox_discard(*ob);
    free((*ob)->ev);
    free(*ob);
    *ob = NULL;
}

size_t outbox_pending(const outbox_t *ob)
{
    return ob->n;
}

int outbox_pending_get(const outbox_t *ob, size_t i, const char **topic, const char **body,
                       uint64_t *seq)
{
    if (i >= ob->n)
        return -ERANGE;
    if (topic)
        *topic = ob->ev[i].topic;
    if (body)
        *body = ob->ev[i].body;
    if (seq)
        *seq = ob->ev[i].seq;
    return 0;
}

/* The envelope's own keys: a topic's fields may not shadow them. */
static bool envelope_key(const char *k)
{
    static const char *const keys[] = { "v", "seq", "type", "time", "station", "receipt" };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(k, keys[i]) == 0)
            return true;
    return false;
}

/* Envelope, then the fields in their order; the body text, or NULL with *err set. */
static char *build_body(const char *topic, uint64_t seq, json_t *fields, const char *station,
                        int64_t receipt, int64_t now_ms, int *err)
{
    const char *k;
    json_t *v;

    if (fields) {
        if (!json_is_object(fields)) {
            *err = -EINVAL;
            return NULL;
        }
        json_object_foreach(fields, k, v) {
            if (envelope_key(k)) {
                *err = -EINVAL;
                return NULL;
            }
        }
    }
    if (!event_topic_valid(topic) || (station && !*station) || receipt < 0 || now_ms < 0 ||
        now_ms > EVENT_TIME_MAX_MS) {
        *err = -EINVAL;
        return NULL;
    }
    json_t *ev = event_new(topic, seq, now_ms, station, receipt);
    if (!ev) {
        *err = -ENOMEM;   /* the arguments were checked above */
        return NULL;
    }
    if (fields) {
        json_object_foreach(fields, k, v) {
            if (json_object_set(ev, k, v) < 0) {
                json_decref(ev);
                *err = -ENOMEM;
                return NULL;
            }
        }
    }
    char *body = event_dump(ev);
    json_decref(ev);
    if (!body)
        *err = -ENOMEM;
    return body;
}

int outbox_append(outbox_t *ob, db_t *db, const char *topic, json_t *fields,
                  const char *station, int64_t receipt, int64_t now_ms)
{
    uint64_t seq;
    int r, err = 0;

    if (ob->n == ob->cap) {
        size_t cap = ob->cap ? ob->cap * 2 : 8;
        pending_t *ev = realloc(ob->ev, cap * sizeof(*ev));
        if (!ev)
            return -ENOMEM;
        ob->ev = ev;
        ob->cap = cap;
    }
    /* The seq is read inside the caller's transaction (BEGIN IMMEDIATE holds the
     * write lock), so no other writer can take the same number. */
    if ((r = db_outbox_next_seq(db, &seq)) < 0)
        return r;
    char *body = build_body(topic, seq, fields, station, receipt, now_ms, &err);
    if (!body)
        return err;
    char *t = strdup(topic);
    if (!t) {
        free(body);
        return -ENOMEM;
    }
    if ((r = db_outbox_insert(db, seq, topic, body)) < 0) {
        free(t);
        free(body);
        return r;
    }
    ob->ev[ob->n++] = (pending_t){ .seq = seq, .topic = t, .body = body, .body_len = strlen(body) };
    return 0;
}

int outbox_flush(outbox_t *ob, outbox_publish_fn fn, void *data)
{
    int first = 0;

    for (size_t i = 0; i < ob->n; i++) {
        int r = fn(ob->ev[i].topic, ob->ev[i].body, ob->ev[i].body_len, data);
        if (r < 0 && first == 0)
            first = r;
    }
    outbox_discard(ob);
    return first;
}
