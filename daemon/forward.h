/*
 * forward: every committed event to a NATS JetStream stream, exactly once, in seq
 * order (docs/forward.md).
 *
 * A forwarder is a sink of the outbox with its own durable cursor (db forward_marks,
 * sink "jetstream"): the only thing the daemon tells it is how far events are
 * committed (forward_committed, after each commit). Everything NATS runs on the
 * forwarder's own thread with its own SQLite connection (WAL: reading the outbox never
 * waits for the loop's writer), so a slow, sick or absent NATS server never blocks
 * the event loop; the thread talks back to the loop through a pipe registered with it.
 *
 * Each event goes to `<prefix>.<site>.<type>` with the event JSON as stored as the
 * payload and the headers Nats-Msg-Id "<site>:<seq>", Rmad-Seq and Rmad-Site. At most
 * max_inflight publishes await their ack at once; the mark moves only over a run of
 * acknowledged seqs, so after a crash at most the unacknowledged tail is sent again,
 * and the stream drops it as a duplicate (Nats-Msg-Id) within its duplicate window.
 * When the mark is older than half that window, the forwarder first asks the stream
 * for the site's last message (`<prefix>.<site>.>`) and resumes after its Rmad-Seq.
 *
 * Order: a new connection carries only what the forwarder sends after re-reading its
 * mark, never a tail buffered from a dead one (libnats reconnection is off: the
 * thread reconnects itself), so the stream holds a site's events in seq order. One
 * exception: when the stream refuses one publish of a batch and stores later ones
 * (a cluster electing a new leader mid-batch), the refused event is stored on the
 * re-send, after them; still once, and Rmad-Seq tells its place.
 *
 * With rma_feed = yes a second thread (its own NATS and SQLite connections) pulls
 * `<prefix>.<site>.rma.upsert` from a durable consumer and applies each payload, an
 * `rmactl rma import` CSV, through db_rma_import_csv: ack after commit, term when
 * refused (noted with its stream seq), nak with a delay on a passing database error.
 */
#ifndef RMAD_FORWARD_H
#define RMAD_FORWARD_H

#include <stdint.h>

#include "core/config.h"
#include "core/loop.h"

#define FORWARD_SINK           "jetstream"  /* the forward_marks row */
#define FORWARD_BATCH_WAIT_MS  10000        /* a batch's acks, then the connection is dropped */
#define FORWARD_RETRY_MIN_MS   500          /* reconnect delay, doubling ... */
#define FORWARD_RETRY_MAX_MS   10000        /* ... up to this */
#define FORWARD_MIN_DUP_WINDOW_MS 60000     /* a stream deduplicating less is refused */

/* What `rmactl forward init` creates (docs/forward.md). */
#define FORWARD_INIT_DUP_WINDOW_MS (10 * 60 * 1000)

typedef struct forward forward_t;

typedef enum {
    FORWARD_CONNECTING,     /* no connection yet, or waiting to retry */
    FORWARD_FORWARDING,     /* connected, stream checked: publishing */
    FORWARD_DISCONNECTED,   /* lost the connection: retrying */
    FORWARD_STREAM_ERROR,   /* connected, but the stream is missing or unfit: retrying */
} forward_state_t;

const char *forward_state_name(forward_state_t s);

typedef struct {
    forward_state_t state;
    uint64_t forwarded;     /* every event up to this seq is in the stream (the mark) */
    uint64_t committed;     /* the last committed seq the forwarder was told about */
    uint64_t published;     /* publishes since start (re-sends included) */
    uint64_t duplicates;    /* of which the stream reported as already stored */
    bool rma_feed_up;       /* the RMA feed is subscribed (rma_feed = yes) */
    uint64_t rma_applied;   /* upserts applied (acked) since start */
    uint64_t rma_refused;   /* upserts refused (terminated) since start */
    uint64_t rma_last_refused;  /* the stream seq of the last refused, 0 when none */
    char server[128];       /* the connected URL, "" when none */
    char error[256];        /* the last problem, "" when none */
} forward_status_t;

/* Things the daemon logs (never events: they would need forwarding themselves). */
typedef enum {
    FORWARD_NOTE_CONNECTED,     /* text: server URL; seq: resuming after it */
    FORWARD_NOTE_DISCONNECTED,  /* text: why */
    FORWARD_NOTE_ERROR,         /* text: a problem while connected (stream, publish) */
    FORWARD_NOTE_SKIPPED,       /* the stream already held up to seq (mark was behind) */
    FORWARD_NOTE_RMA_CONNECTED, /* the RMA feed is pulling; text: server URL */
    FORWARD_NOTE_RMA_APPLIED,   /* an upsert committed and acked; seq: its stream seq */
    FORWARD_NOTE_RMA_REFUSED,   /* an upsert refused and terminated; text: the error */
    FORWARD_NOTE_RMA_ERROR,     /* the feed's connection/consumer, or a retried upsert */
} forward_note_kind_t;

typedef struct {
    forward_note_kind_t kind;
    const char *text;
    uint64_t seq;
} forward_note_t;

typedef void (*forward_note_fn)(const forward_note_t *n, void *data);

/*
 * Start forwarding the events of the database at db_path per cfg (borrowed, must
 * outlive the forwarder); notes reach fn on the loop's thread. With cfg->rma_feed, also
 * start the RMA feed (forward.c), importing with rma_pattern (NULL: the default). Opens the forwarder's
 * own connection to the database and reads the mark here (errors now, not later);
 * connecting to NATS happens on the thread, retried for ever. Returns NULL with
 * *errmsg set on failure.
 */
forward_t *forward_new(loop_t *loop, const char *db_path, const config_forward_t *cfg,
                       const char *rma_pattern, forward_note_fn fn, void *data, char **errmsg);

/* Stop the thread (waits for at most one ack wait), close everything. NULL is fine. */
void forward_destroy(forward_t **fw);

/* Events are committed up to seq: wake the forwarder. Cheap; never blocks on NATS. */
void forward_committed(forward_t *fw, uint64_t seq);

/* A snapshot of the forwarder's state. */
void forward_status(forward_t *fw, forward_status_t *out);

/*
 * rmactl forward init: create cfg's stream when it is missing (subjects
 * "<prefix>.>", file storage, limits retention, `replicas` copies, the duplicate
 * window FORWARD_INIT_DUP_WINDOW_MS, max_age_s 0 = keep for ever), then check it as
 * the forwarder does at start. *report (malloc'd) says what was done or found.
 * Returns 0, or a negative errno with *errmsg set (unreachable server, a stream
 * that exists with unfit settings ...).
 */
int forward_stream_init(const config_forward_t *cfg, int replicas, int64_t max_age_s,
                        char **report, char **errmsg);

#endif
