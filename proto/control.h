/*
 * Control and replay messages on the wire (docs/control.md): what rmactl and rmad
 * exchange on the control socket, the replay request of the event bus, and the
 * ROUTER envelope both server sockets share. The daemon side (daemon/control.c,
 * daemon/bus.c) and the client side (cli/) use these same functions, so one
 * definition checks what is sent and what is received.
 *
 * Control: one request frame, one reply frame, both a JSON object.
 *
 *     request  {"cmd": "receipts", "limit": 20}
 *     reply    {"ok": true, ...results}
 *              {"ok": false, "error": "one line", "code": "invalid", ...details}
 *
 * Replay: the request {"replay_from": N}; the reply is every stored event with
 * seq >= N as [topic][body], then ["replay.end"][{"last_seq": M}], or a single
 * ["error"][{"error": "..."}].
 */
#ifndef RMAD_PROTO_CONTROL_H
#define RMAD_PROTO_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "db/db.h"

/* ---------------------------------------------------------------- limits ------ */

#define CONTROL_REQUEST_MAX  (1u << 20)     /* bytes of a request frame */
#define CONTROL_IMPORT_MAX   (16u << 20)    /* bytes of an rma.import request frame */
#define CONTROL_CMD_MAX      32             /* bytes of a command name */
#define CONTROL_TIMEOUT_MS   5000           /* rmactl's wait for an answer */
#define CONTROL_IMPORT_TIMEOUT_MS 120000    /* ... to rma.import (DB_IMPORT_MAX_ROWS rows) */
#define CONTROL_IMPORT_CHUNK (256u << 10)   /* bytes of CSV per rma.import part rmactl sends */
#define CONTROL_UPLOAD_IDLE_MS 30000        /* an import sent in parts: the longest gap */
#define CONTROL_RECEIPTS_DEFAULT 20
#define CONTROL_RECEIPTS_MAX 1000
#define CONTROL_RMA_LINES_MAX 1000     /* lines in one rma.put */
#define CONTROL_RMAS_DEFAULT  100      /* rma.list */
#define CONTROL_RMAS_MAX      10000
#define CONTROL_REASON_MAX    200      /* rma.close reason, bytes */

#define REPLAY_REQUEST_MAX   4096           /* bytes of a replay request frame */
#define REPLAY_END_TOPIC     "replay.end"
#define REPLAY_ERROR_TOPIC   "error"

/* ---------------------------------------------------------- control requests -- */

/* A command name: 1 to CONTROL_CMD_MAX bytes from [a-z0-9._-]. */
bool control_cmd_valid(const char *s, size_t len);

/* Largest request frame accepted for this command: CONTROL_IMPORT_MAX for rma.import. */
size_t control_request_max(const char *cmd);

/*
 * Parse one request frame (len bytes, no NUL needed). Checks, in this order: size
 * (never more than CONTROL_IMPORT_MAX; more than CONTROL_REQUEST_MAX only for
 * rma.import), UTF-8 JSON without duplicate keys, an object, "cmd" a string of 1 to
 * CONTROL_CMD_MAX characters from [a-z0-9._-]. Returns 0 and sets *req (caller
 * json_decref's) and *cmd (borrowed from *req); or -EMSGSIZE / -EINVAL with *errmsg
 * a one-line message (caller frees), e.g. "not valid JSON (line 1, column 1): ...".
 */
int control_request_parse(const void *buf, size_t len, json_t **req, const char **cmd,
                          char **errmsg);

/* {"cmd": cmd}, a new reference; NULL when out of memory. */
json_t *control_request_new(const char *cmd);

/*
 * Check that every key of the request object is "cmd" or one of `allowed`
 * (NULL-terminated). Returns 0, or -EINVAL with *errmsg = `unknown field "x"`.
 */
int control_check_keys(const json_t *req, const char *const *allowed, char **errmsg);

/* ----------------------------------------------------------- control replies -- */

/*
 * Why a request failed, in the reply's "code": rmactl exits 2 for the first two
 * (the input was wrong) and 1 for the others.
 */
typedef enum {
    CONTROL_BAD_REQUEST = 0, /* malformed: not JSON, no/unknown cmd, too large */
    CONTROL_INVALID,         /* well-formed, but its content was refused */
    CONTROL_BUSY,            /* try again later */
    CONTROL_FAILED,          /* the daemon could not do it (database error...) */
} control_code_t;

/* "bad_request", "invalid", "busy", "failed". */
const char *control_code_name(control_code_t code);

/* The code for a handler's negative errno: EINVAL and friends are CONTROL_INVALID. */
control_code_t control_code_for_errno(int err);

/*
 * {"ok": true} plus the fields of `fields` (may be NULL; its reference is consumed
 * either way). NULL when out of memory.
 */
json_t *control_reply_ok(json_t *fields);

/*
 * {"ok": false, "error": error, "code": ...} plus the fields of `fields` (may be
 * NULL; consumed). An error that is not valid UTF-8 is replaced by a generic text.
 */
json_t *control_reply_error(control_code_t code, const char *error, json_t *fields);

/*
 * Parse a reply frame (rmactl side). Returns 0 with *reply set for {"ok": true};
 * -EREMOTEIO for {"ok": false}, with *reply set too (for its details) and *errmsg =
 * its "error"; -EBADMSG when the frame is not a reply (*errmsg says why).
 */
int control_reply_parse(const void *buf, size_t len, json_t **reply, char **errmsg);

/* The reply's "code" (CONTROL_FAILED when absent or unknown). */
control_code_t control_reply_code(const json_t *reply);

/* Compact JSON text of msg (one frame); malloc'd, *len its length. NULL on ENOMEM. */
char *control_encode(const json_t *msg, size_t *len);

/* -------------------------------------------------------- shared reply data --- */

#define CONTROL_TIME_STRLEN 25   /* "2026-11-21T09:30:00.123Z" + NUL */

/* Unix milliseconds as RFC 3339 UTC with milliseconds; "" for DB_TIME_NONE. */
void control_format_time(int64_t ms, char buf[CONTROL_TIME_STRLEN]);

/*
 * One receipt as the receipts and status replies carry it: id, station, rma, state,
 * disposition, reason, opened_at, closed_at (RFC 3339; absent values are null).
 * A new reference, NULL when out of memory.
 */
json_t *control_receipt_json(const db_receipt_t *r);

/*
 * The status reply is built by the daemon, which knows its stations:
 *
 *     {"ok": true, "last_seq": 42, "pid": 1234, "started_at": "...",
 *      "stations": [{"name": "dock1", "printer": "dock1-labels" | null,
 *                    "scanners": [{"spec": "tcp:127.0.0.1:7790", "state": "connected",
 *                                  "detail": "1 client"}],
 *                    "receipt": null | control_receipt_json()}]}
 *
 * These helpers build it with the keys rmactl reads. control_status_station returns
 * a new station object (NULL on ENOMEM); the others return 0, -ENOMEM, or -EINVAL
 * for a station not made by control_status_station. detail and printer may be NULL.
 */
json_t *control_status_station(const char *name, const char *printer);
int control_status_add_scanner(json_t *station, const char *spec, const char *state,
                               const char *detail);
int control_status_set_receipt(json_t *station, const db_receipt_t *open_receipt);

/* ---------------------------------------------------------- replay requests ---- */

/*
 * Parse a replay request frame: at most REPLAY_REQUEST_MAX bytes, exactly
 * {"replay_from": N} with N an integer >= 0 (0 is read as 1). Returns 0 and sets
 * *from, or -EMSGSIZE / -EINVAL with *errmsg set.
 */
int replay_request_parse(const void *buf, size_t len, uint64_t *from, char **errmsg);

/*
 * An acknowledgement on the replay socket: {"subscriber": NAME, "ack_seq": N}, the
 * subscriber NAME (1..REPLAY_SUBSCRIBER_MAX of [A-Za-z0-9_.-]) has durably taken every
 * event up to seq N. Answered with [REPLAY_ACK_TOPIC][{"subscriber", "ack_seq"}].
 * Returns 1 and fills name (REPLAY_SUBSCRIBER_MAX + 1 bytes) and *seq; 0 when the
 * frame is no acknowledgement (no "ack_seq": a replay request); -EINVAL / -EMSGSIZE
 * with *errmsg for a bad one.
 */
#define REPLAY_ACK_TOPIC      "ack"
#define REPLAY_SUBSCRIBER_MAX 64
int replay_ack_parse(const void *buf, size_t len, char *name, uint64_t *seq, char **errmsg);

/* Body of replay.end: {"last_seq": M}. Returns 0 and sets *last_seq, or -EBADMSG. */
int replay_end_parse(const void *buf, size_t len, uint64_t *last_seq);

/* ------------------------------------------------------------ ROUTER envelope -- */

#define ROUTER_ID_MAX 255        /* a ZMTP routing id is 1..255 bytes */

/*
 * Where a request on a ROUTER socket came from: the peer's routing id and whether
 * it wrote an empty delimiter frame first (REQ sockets do, DEALER usually not).
 * Replies go back with the same envelope, so both kinds of client work.
 */
typedef struct {
    unsigned char id[ROUTER_ID_MAX];
    size_t id_len;
    bool delimiter;
} router_peer_t;

/* One request received on a ROUTER socket. */
typedef struct {
    router_peer_t peer;
    size_t nframes;          /* frames after the envelope */
    zmq_msg_t body;          /* the first of them (empty when there is none) */
} router_msg_t;

/*
 * Receive one whole message without blocking. Every frame is read, so the next call
 * starts at a message boundary whatever the peer sent; only the first body frame is
 * kept. Returns 0 (release m with router_msg_close), -EAGAIN when nothing is
 * waiting, -EPROTO for a message without a routing id frame (impossible on a
 * ROUTER), or another negative errno from zmq_msg_recv.
 */
int router_msg_recv(void *zsock, router_msg_t *m);

void router_msg_close(router_msg_t *m);

/* Body bytes and length of a received message. */
const void *router_msg_data(router_msg_t *m);
size_t router_msg_size(const router_msg_t *m);

/*
 * Send n frames to `to`, behind its envelope, without blocking: all of them or none.
 * On a ROUTER with ZMQ_ROUTER_MANDATORY: -EHOSTUNREACH when the peer is gone,
 * -EAGAIN when its queue is full (nothing was sent: retry later). 0 on success.
 */
int router_send(void *zsock, const router_peer_t *to, const void *const *frames,
                const size_t *lens, size_t n);

#endif
