/*
 * The event bus: rmad's events going out (spec events.md).
 *
 * Two ZeroMQ sockets. PUB carries live events as two frames, [topic][JSON body];
 * it drops messages for slow or late subscribers by design. The replay ROUTER gives
 * them back: a client sends {"replay_from": N} and receives every stored event with
 * seq >= N, in order, in the same two frames, then ["replay.end"][{"last_seq": M}]
 * where M is the last seq stored when the replay finished. Together: at-least-once
 * delivery with gap detection (the subscriber watches seq).
 *
 * The replay side serves untrusted peers:
 *   - a request is [routing id][empty delimiter, for REQ peers][one frame of at most
 *     REPLAY_REQUEST_MAX bytes]; anything else gets the single reply
 *     ["error"][{"error": "..."}], and the bus keeps serving;
 *   - frames above BUS_REPLAY_FRAME_MAX make libzmq drop the connection;
 *   - a replay is sent BUS_REPLAY_BATCH events per loop iteration, so a huge one
 *     never blocks the loop; at most BUS_REPLAY_MAX run at once, at most
 *     BUS_REPLAY_PER_PEER per peer: more get ["error"][{"error": "busy, retry"}];
 *   - a peer that stops reading is dropped after BUS_REPLAY_STALL_MS, a vanished
 *     peer at once (ZMQ_ROUTER_MANDATORY).
 * A REQ client accepts a single reply per request, so it receives the first message
 * only (an error, or replay.end when nothing is stored from N on): use DEALER.
 *
 * The bus never logs; it counts (bus_stats) and the daemon decides what to log.
 */
#ifndef RMAD_BUS_H
#define RMAD_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "db/db.h"

#define BUS_PUB_SNDHWM        10000   /* live events queued per subscriber */
#define BUS_REPLAY_BATCH      500     /* events sent per replay per loop iteration */
#define BUS_REPLAY_MAX        8       /* replays running at once, all peers */
#define BUS_REPLAY_PER_PEER   1       /* replays running at once, one peer (two would
                                         interleave on its socket) */
#define BUS_REPLAY_RETRY_MS   10      /* wait before retrying a full peer queue */
#define BUS_REPLAY_STALL_MS   30000   /* a peer reading nothing this long is dropped */
#define BUS_REPLAY_FRAME_MAX  65536   /* ZMQ_MAXMSGSIZE of the replay socket */

typedef struct bus bus_t;

typedef struct {
    uint64_t published;        /* bus_publish calls that handed the event to PUB */
    uint64_t requests;         /* messages received on the replay socket */
    uint64_t bad_requests;     /* of which answered with an error */
    uint64_t busy;             /* of which refused for the caps */
    uint64_t replays_done;     /* replays that reached replay.end */
    uint64_t replays_dropped;  /* replays given up: peer gone or stalled, db error */
    uint64_t batches;          /* replay batches sent */
    uint64_t acks;             /* acknowledgements stored */
} bus_stats_t;

/*
 * Bind PUB on pub_ep and the replay ROUTER on replay_ep (tcp://HOST:PORT, tcp with
 * port "*" for a free port, or ipc://PATH) and register the ROUTER with the loop.
 * zctx, loop and db are borrowed and must outlive the bus. Returns the bus, or NULL
 * with *errmsg set (caller frees), e.g. "replay tcp://127.0.0.1:7782: Address already
 * in use".
 */
bus_t *bus_new(void *zctx, loop_t *loop, db_t *db, const char *pub_ep,
               const char *replay_ep, char **errmsg);

/*
 * bus_new with CURVE on both sockets: curve_secret is the server's secret key
 * (BUS_CURVE_KEY_BYTES, copied), NULL for none. The ZAP handler that decides which
 * clients get in (daemon/curve.h) must already be bound in zctx.
 */
#define BUS_CURVE_KEY_BYTES 32
bus_t *bus_new_curve(void *zctx, loop_t *loop, db_t *db, const char *pub_ep,
                     const char *replay_ep, const uint8_t *curve_secret, char **errmsg);

/* Stop running replays, unregister, close both sockets. Accepts NULL; clears *bus_p. */
void bus_destroy(bus_t **bus_p);

/*
 * Publish one committed event: [topic][body] on PUB, without blocking. Call it only
 * after db_commit of the transaction that stored the event: inside a transaction it
 * refuses with -EINPROGRESS. Returns 0 (a subscriber over its high-water mark just
 * misses the event, and replays it), -EINVAL for an empty topic or body, or the
 * negative errno of zmq_send (-ETERM...).
 */
int bus_publish(bus_t *bus, const char *topic, const char *body);

/*
 * Every interval_ms (0: never; the default), publish on PUB
 * [BUS_HEARTBEAT_TOPIC][{"type": "bus.heartbeat", "last_seq": N}], N the last stored
 * event's seq, so a subscriber detects a lost tail within one interval and replays it.
 * Not an event: no seq, never stored, not replayed. Returns 0, -EINVAL, -ENOMEM.
 */
#define BUS_HEARTBEAT_TOPIC "bus.heartbeat"
int bus_set_heartbeat(bus_t *bus, int64_t interval_ms);

/*
 * The endpoints actually bound, e.g. "tcp://127.0.0.1:40123" for "tcp://127.0.0.1:*".
 * Owned by the bus. Either pointer may be NULL.
 */
void bus_endpoints(const bus_t *bus, const char **pub, const char **replay);

/*
 * The subscribers whose acknowledgements are stored ({"subscriber": NAME, "ack_seq": N}
 * on the replay socket, db/maint.h): names borrowed, they must outlive the bus. An
 * acknowledgement from any other name is refused with an error. Without this call no
 * acknowledgement is taken.
 */
void bus_set_subscribers(bus_t *bus, char *const *names, size_t n);

/* Replays in progress. */
size_t bus_replays_active(const bus_t *bus);

/* Counters since bus_new. */
bus_stats_t bus_stats(const bus_t *bus);

#endif
