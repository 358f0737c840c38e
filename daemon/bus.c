/*
 * The event bus (daemon/bus.h): PUB for live events, a ROUTER that replays the
 * outbox.
 *
 * A replay is a small state machine driven by its own loop timer: each run sends
 * the next BUS_REPLAY_BATCH stored events from `next` on and re-arms with delay 0,
 * so other sockets and timers get their turn between batches. When a batch comes
 * back short, everything stored has been sent and the run sends replay.end. A peer
 * whose queue is full (EAGAIN under ZMQ_ROUTER_MANDATORY) is retried after
 * BUS_REPLAY_RETRY_MS, and given up after BUS_REPLAY_STALL_MS without progress.
 */
#include "daemon/bus.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "db/maint.h"
#include "proto/control.h"

#define RECV_PER_CALL 64      /* requests handled per readiness callback */
#define PUB_LINGER_MS 200     /* let the last events out at shutdown, briefly */

struct replay {
    bus_t *bus;
    router_peer_t peer;
    uint64_t next;            /* next seq to send */
    uint64_t timer;
    int64_t progress_ms;      /* last time the peer took a message */
    unsigned sent;            /* events sent by the current batch */
    int send_err;             /* negative errno that stopped the current batch */
};

struct bus {
    loop_t *loop;
    db_t *db;
    void *pub;
    void *router;
    char *pub_ep;             /* as bound (ZMQ_LAST_ENDPOINT) */
    char *replay_ep;
    struct replay *replays[BUS_REPLAY_MAX];
    size_t nreplays;
    bus_stats_t stats;
    uint64_t heartbeat_timer;  /* 0: no heartbeat */
    int64_t heartbeat_ms;
    char *const *subscribers;  /* whose acknowledgements are stored (borrowed) */
    size_t nsubscribers;
};

/* ---- sockets --------------------------------------------------------------------- */

static int set_int(void *s, int opt, int v)
{
    return zmq_setsockopt(s, opt, &v, sizeof(v)) == 0 ? 0 : -errno;
}

/* The endpoint a socket is bound to, malloc'd; NULL on failure. */
static char *last_endpoint(void *s)
{
    char buf[1024];
    size_t len = sizeof(buf);
    if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, buf, &len) < 0 || len == 0)
        return NULL;
    buf[sizeof(buf) - 1] = '\0';
    return strdup(buf);
}

/*
 * A socket of `type` with its options set, bound to ep. Returns it and sets *bound,
 * or NULL with *errmsg = "WHAT EP: reason".
 */
static void *bind_socket(void *zctx, int type, const char *what, const char *ep,
                         const uint8_t *curve_secret, char **bound, char **errmsg)
{
    void *s = zmq_socket(zctx, type);
    int rc = s ? 0 : -errno;

    /* A CURVE server: every handshake is checked by the ZAP handler (daemon/curve.h). */
    if (rc == 0 && curve_secret) {
        rc = set_int(s, ZMQ_CURVE_SERVER, 1);
        if (rc == 0 && zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, curve_secret, BUS_CURVE_KEY_BYTES) < 0)
            rc = -errno;
        if (rc == 0 && zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, "rmad", 4) < 0)
            rc = -errno;
    }

    if (rc == 0 && type == ZMQ_PUB) {
        rc = set_int(s, ZMQ_SNDHWM, BUS_PUB_SNDHWM);
        if (rc == 0)
            rc = set_int(s, ZMQ_LINGER, PUB_LINGER_MS);
    } else if (rc == 0) {
        int64_t max = BUS_REPLAY_FRAME_MAX;
        rc = set_int(s, ZMQ_ROUTER_MANDATORY, 1);
        if (rc == 0)
            rc = set_int(s, ZMQ_LINGER, 0);
        if (rc == 0 && zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof(max)) < 0)
            rc = -errno;
    }
    if (rc == 0) {
        /* An ipc:// socket file is the daemon's and its group's only (mode 0660). */
        mode_t old = umask(0117);
        if (zmq_bind(s, ep) < 0)
            rc = -errno;
        (void)umask(old);
    }
    if (rc == 0 && !(*bound = last_endpoint(s)))
        rc = -ENOMEM;
    if (rc < 0) {
        if (asprintf(errmsg, "%s %s: %s", what, ep, zmq_strerror(-rc)) < 0)
            *errmsg = NULL;
        if (s)
            zmq_close(s);
        return NULL;
    }
    return s;
}

/* ---- replies --------------------------------------------------------------------- */

/* Send ["error"][{"error": msg}]; a peer that cannot take it just misses it. */
static void reply_error(bus_t *bus, const router_peer_t *peer, const char *msg)
{
    json_t *j = json_pack("{s:s}", "error", msg);
    size_t len = 0;
    char *body = j ? control_encode(j, &len) : NULL;
    json_decref(j);
    if (body) {
        const void *frames[2] = { REPLAY_ERROR_TOPIC, body };
        size_t lens[2] = { strlen(REPLAY_ERROR_TOPIC), len };
        (void)router_send(bus->router, peer, frames, lens, 2);
    }
    free(body);
}

/* ---- replays --------------------------------------------------------------------- */

static void replay_free(struct replay *r)
{
    bus_t *bus = r->bus;
    for (size_t i = 0; i < bus->nreplays; i++) {
        if (bus->replays[i] == r) {
            bus->replays[i] = bus->replays[--bus->nreplays];
            break;
        }
    }
    free(r);
}

static int send_event(const db_event_t *ev, void *data)
{
    struct replay *r = data;
    const void *frames[2] = { ev->topic, ev->body };
    size_t lens[2] = { strlen(ev->topic), ev->body_len };
    int rc = router_send(r->bus->router, &r->peer, frames, lens, 2);
    if (rc < 0) {
        r->send_err = rc;
        return 1;          /* stop the walk; the batch resumes from r->next */
    }
    r->next = ev->seq + 1;
    r->sent++;
    return 0;
}

/* ["replay.end"][{"last_seq": M}], M the last seq stored now. Returns 0 or -errno. */
static int send_end(struct replay *r)
{
    uint64_t last;
    int rc = db_outbox_last_seq(r->bus->db, &last);
    if (rc < 0)
        return rc;
    char body[48];
    int len = snprintf(body, sizeof(body), "{\"last_seq\":%llu}", (unsigned long long)last);
    const void *frames[2] = { REPLAY_END_TOPIC, body };
    size_t lens[2] = { strlen(REPLAY_END_TOPIC), (size_t)len };
    rc = router_send(r->bus->router, &r->peer, frames, lens, 2);
    if (rc < 0)
        r->send_err = rc;
    return rc;
}

/*
 * One batch of a replay (the timer callback). Events come from committed data only:
 * while a transaction is open (never between loop callbacks in the daemon, but the
 * bus does not rely on it) the batch waits. After a short batch it tries replay.end;
 * if that has to wait, the next run first sends whatever was committed meanwhile,
 * so replay.end's last_seq never names an event the peer did not get.
 */
static int64_t replay_step(loop_t *loop, uint64_t id, void *data)
{
    struct replay *r = data;
    bus_t *bus = r->bus;
    int rc;

    (void)loop;
    (void)id;
    if (db_in_transaction(bus->db))
        return BUS_REPLAY_RETRY_MS;
    r->sent = 0;
    r->send_err = 0;
    rc = db_outbox_foreach(bus->db, r->next, BUS_REPLAY_BATCH, send_event, r);
    if (r->sent > 0) {
        r->progress_ms = loop_now_ms();
        bus->stats.batches++;
    }
    if (rc == 0 && r->sent == BUS_REPLAY_BATCH)
        return 0;                              /* more may follow: next iteration */
    if (rc == 0) {
        rc = send_end(r);
        if (rc == 0) {
            bus->stats.replays_done++;
            replay_free(r);
            return -1;
        }
    }
    if (r->send_err == -EAGAIN) {
        if (loop_now_ms() - r->progress_ms < BUS_REPLAY_STALL_MS)
            return BUS_REPLAY_RETRY_MS;
    } else if (r->send_err == 0) {
        /* The database failed: tell the peer, which may retry. */
        char msg[160];
        snprintf(msg, sizeof(msg), "replay failed: %s", db_errmsg(bus->db));
        reply_error(bus, &r->peer, msg);
    }
    bus->stats.replays_dropped++;
    replay_free(r);
    return -1;
}

static size_t replays_of(const bus_t *bus, const router_peer_t *peer)
{
    size_t n = 0;
    for (size_t i = 0; i < bus->nreplays; i++) {
        const router_peer_t *p = &bus->replays[i]->peer;
        n += p->id_len == peer->id_len && memcmp(p->id, peer->id, p->id_len) == 0;
    }
    return n;
}

/*
 * {"subscriber": NAME, "ack_seq": N}: store it for retention (name NULL: the request was
 * bad, err says why) and answer ["ack"][{"subscriber": NAME, "ack_seq": N}].
 */
static void handle_ack(bus_t *bus, const router_peer_t *peer, const char *name, uint64_t seq,
                       const char *err)
{
    char msg[192];
    bool known = false;
    for (size_t i = 0; name && i < bus->nsubscribers; i++)
        known |= strcmp(bus->subscribers[i], name) == 0;
    if (!name || !known) {
        if (name)
            snprintf(msg, sizeof(msg), "unknown subscriber '%s' (not in retain_subscribers)", name);
        bus->stats.bad_requests++;
        reply_error(bus, peer, name ? msg : err ? err : "out of memory");
        return;
    }
    int rc = db_in_transaction(bus->db) ? -EBUSY
                                        : db_subscriber_ack(bus->db, name, seq, loop_wall_ms());
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "ack not stored: %s%s", rc == -EBUSY ? "database busy" : db_errmsg(bus->db),
                 rc == -EBUSY ? ", retry" : "");
        bus->stats.bad_requests++;
        reply_error(bus, peer, msg);
        return;
    }
    bus->stats.acks++;
    char body[160];
    int len = snprintf(body, sizeof(body), "{\"subscriber\":\"%s\",\"ack_seq\":%llu}", name,
                       (unsigned long long)seq);
    const void *frames[2] = { REPLAY_ACK_TOPIC, body };
    size_t lens[2] = { strlen(REPLAY_ACK_TOPIC), (size_t)len };
    (void)router_send(bus->router, peer, frames, lens, 2);
}

/* Check one request and start its replay, or answer with the error. */
static void handle_request(bus_t *bus, router_msg_t *m)
{
    char *err = NULL;
    uint64_t from = 0;

    bus->stats.requests++;
    if (m->nframes != 1) {
        char msg[96];
        snprintf(msg, sizeof(msg), "expected one frame {\"replay_from\": N}, got %zu",
                 m->nframes);
        bus->stats.bad_requests++;
        reply_error(bus, &m->peer, msg);
        return;
    }
    char name[REPLAY_SUBSCRIBER_MAX + 1];
    int ack = replay_ack_parse(router_msg_data(m), router_msg_size(m), name, &from, &err);
    if (ack != 0) {
        handle_ack(bus, &m->peer, ack < 0 ? NULL : name, from, err);
        free(err);
        return;
    }
    if (replay_request_parse(router_msg_data(m), router_msg_size(m), &from, &err) < 0) {
        bus->stats.bad_requests++;
        reply_error(bus, &m->peer, err ? err : "out of memory");
        free(err);
        return;
    }
    if (bus->nreplays >= BUS_REPLAY_MAX || replays_of(bus, &m->peer) >= BUS_REPLAY_PER_PEER) {
        bus->stats.busy++;
        reply_error(bus, &m->peer, "busy, retry");
        return;
    }
    struct replay *r = calloc(1, sizeof(*r));
    if (!r) {
        reply_error(bus, &m->peer, "out of memory, retry");
        return;
    }
    *r = (struct replay){ .bus = bus, .peer = m->peer, .next = from,
                          .progress_ms = loop_now_ms() };
    r->timer = loop_add_timer(bus->loop, 0, replay_step, r);
    if (r->timer == 0) {
        free(r);
        reply_error(bus, &m->peer, "out of memory, retry");
        return;
    }
    bus->replays[bus->nreplays++] = r;
}

/* The replay socket is readable: take up to RECV_PER_CALL requests. */
static void replay_readable(loop_t *loop, void *zsock, unsigned events, void *data)
{
    bus_t *bus = data;

    (void)loop;
    (void)events;
    for (int i = 0; i < RECV_PER_CALL; i++) {
        router_msg_t m;
        int rc = router_msg_recv(zsock, &m);
        if (rc == -EPROTO)
            continue;
        if (rc < 0)
            break;                             /* -EAGAIN: all read */
        handle_request(bus, &m);
        router_msg_close(&m);
    }
}

/* ---- public ---------------------------------------------------------------------- */

bus_t *bus_new(void *zctx, loop_t *loop, db_t *db, const char *pub_ep,
               const char *replay_ep, char **errmsg)
{
    return bus_new_curve(zctx, loop, db, pub_ep, replay_ep, NULL, errmsg);
}

bus_t *bus_new_curve(void *zctx, loop_t *loop, db_t *db, const char *pub_ep,
                     const char *replay_ep, const uint8_t *curve_secret, char **errmsg)
{
    *errmsg = NULL;
    if (!zctx || !loop || !db || !pub_ep || !replay_ep) {
        *errmsg = strdup("bus: missing argument");
        return NULL;
    }
    bus_t *bus = calloc(1, sizeof(*bus));
    if (!bus)
        goto nomem;
    bus->loop = loop;
    bus->db = db;
    bus->pub = bind_socket(zctx, ZMQ_PUB, "pub", pub_ep, curve_secret, &bus->pub_ep, errmsg);
    if (!bus->pub)
        goto free_bus;
    bus->router = bind_socket(zctx, ZMQ_ROUTER, "replay", replay_ep, curve_secret,
                              &bus->replay_ep, errmsg);
    if (!bus->router)
        goto close_pub;
    int rc = loop_add_zsock(loop, bus->router, LOOP_IN, replay_readable, bus);
    if (rc < 0) {
        if (asprintf(errmsg, "replay %s: %s", replay_ep, strerror(-rc)) < 0)
            *errmsg = NULL;
        goto close_router;
    }
    return bus;

close_router:
    zmq_close(bus->router);
    free(bus->replay_ep);
close_pub:
    zmq_close(bus->pub);
    free(bus->pub_ep);
free_bus:
    free(bus);
    return NULL;
nomem:
    *errmsg = strdup("bus: out of memory");
    return NULL;
}

void bus_destroy(bus_t **bus_p)
{
    if (!bus_p || !*bus_p)
        return;
    bus_t *bus = *bus_p;
    if (bus->heartbeat_timer)
        (void)loop_del_timer(bus->loop, bus->heartbeat_timer);
    while (bus->nreplays > 0) {
        struct replay *r = bus->replays[bus->nreplays - 1];
        (void)loop_del_timer(bus->loop, r->timer);
        replay_free(r);
    }
    (void)loop_del_zsock(bus->loop, bus->router);
    zmq_close(bus->router);
    zmq_close(bus->pub);
    free(bus->pub_ep);
    free(bus->replay_ep);
    free(bus);
    *bus_p = NULL;
}

int bus_publish(bus_t *bus, const char *topic, const char *body)
{
    if (!bus || !topic || !*topic || !body || !*body)
        return -EINVAL;
    if (db_in_transaction(bus->db))
        return -EINPROGRESS;
    /* PUB never blocks: a subscriber over its high-water mark misses the event. */
    if (zmq_send(bus->pub, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(bus->pub, body, strlen(body), ZMQ_DONTWAIT) < 0)
        return -errno;
    bus->stats.published++;
    return 0;
}

/*
 * ["bus.heartbeat"][{"type": "bus.heartbeat", "last_seq": N}] on PUB: N is the last
 * stored event. A subscriber whose last seen seq is lower lost the tail (PUB drops at
 * its high-water mark, and a quiet dock sends nothing that would show a gap) and
 * replays from its last seq + 1. A database that cannot say skips one beat.
 */
static int64_t heartbeat(loop_t *loop, uint64_t id, void *data)
{
    bus_t *bus = data;
    (void)loop;
    (void)id;
    uint64_t last = 0;
    char body[96];
    if (!db_in_transaction(bus->db) && db_outbox_last_seq(bus->db, &last) == 0) {
        (void)snprintf(body, sizeof(body), "{\"type\":\"bus.heartbeat\",\"last_seq\":%llu}",
                       (unsigned long long)last);
        /* PUB never blocks; a frame it takes, it takes with its part (zmq_send >= 0). */
        if (zmq_send(bus->pub, BUS_HEARTBEAT_TOPIC, strlen(BUS_HEARTBEAT_TOPIC),
                     ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
            (void)zmq_send(bus->pub, body, strlen(body), ZMQ_DONTWAIT);
    }
    return bus->heartbeat_ms;
}

int bus_set_heartbeat(bus_t *bus, int64_t interval_ms)
{
    if (!bus || interval_ms < 0)
        return -EINVAL;
    if (bus->heartbeat_timer)
        (void)loop_del_timer(bus->loop, bus->heartbeat_timer);
    bus->heartbeat_timer = 0;
    bus->heartbeat_ms = interval_ms;
    if (interval_ms == 0)
        return 0;
    bus->heartbeat_timer = loop_add_timer(bus->loop, interval_ms, heartbeat, bus);
    return bus->heartbeat_timer ? 0 : -ENOMEM;
}

void bus_endpoints(const bus_t *bus, const char **pub, const char **replay)
{
    if (pub)
        *pub = bus ? bus->pub_ep : NULL;
    if (replay)
        *replay = bus ? bus->replay_ep : NULL;
}

void bus_set_subscribers(bus_t *bus, char *const *names, size_t n)
{
    if (!bus)
        return;
    bus->subscribers = names;
    bus->nsubscribers = n;
}

size_t bus_replays_active(const bus_t *bus)
{
    return bus ? bus->nreplays : 0;
}

bus_stats_t bus_stats(const bus_t *bus)
{
    bus_stats_t none = { 0 };
    return bus ? bus->stats : none;
}
