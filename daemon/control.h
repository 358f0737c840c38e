/*
 * The control socket: how rmactl talks to a running rmad (docs/control.md).
 *
 * A ROUTER on the config's `control` endpoint, an ipc:// socket file created with
 * mode 0660 (owner and group: the rmad group is who may run rmactl). Each request is
 * one JSON frame {"cmd": NAME, ...} and gets one JSON frame back, {"ok": true, ...}
 * or {"ok": false, "error": "...", "code": "..."} (proto/control.h).
 *
 * Every message is checked before it is used: the envelope (a routing id, an
 * optional empty delimiter from REQ peers, then exactly one frame), the size
 * (CONTROL_REQUEST_MAX, CONTROL_IMPORT_MAX for rma.import; frames above
 * CONTROL_FRAME_MAX make libzmq drop the connection), JSON, a known "cmd". A bad
 * message gets an error reply and the socket keeps serving; a peer that does not
 * read its replies loses them once CONTROL_SNDHWM are queued.
 *
 * Commands are a table of handlers, each registered with the arguments it takes: any
 * other key is refused before the handler runs ("unknown field"), so no command can
 * forget the contract of docs/control.md. control_new registers the ones that need only
 * the database (receipts, rma.import, rma.put, and rma.show, rma.list, rma.close of
 * daemon/control_rma.c); the daemon registers the rest
 * (status), so this module knows nothing about stations. Handlers run on the loop
 * thread, one request at a time; rma.import, which can take seconds, runs on a thread
 * of its own with its own database connection (core/job.h) and is answered when done,
 * so scans and other requests are served meanwhile (one import at a time).
 *
 * The module never logs; the daemon reads control_stats() if it wants to.
 */
#ifndef RMAD_CONTROL_H
#define RMAD_CONTROL_H

#include <jansson.h>
#include <stdint.h>

#include "core/loop.h"
#include "daemon/txn.h"
#include "db/db.h"

/*
 * What local clients may make rmad hold (docs/limits.md): a frame above
 * CONTROL_FRAME_MAX drops its connection (just above CONTROL_IMPORT_MAX, so an
 * rma.import slightly too big still gets a clear "too large" answer); each peer has at
 * most CONTROL_RCVHWM request queued; beyond CONTROL_PEERS_MAX connections at once a
 * new one is closed at once. In all: CONTROL_PEERS_MAX x CONTROL_RCVHWM x
 * CONTROL_FRAME_MAX, about 128 MiB, held only while the loop is busy (requests are read
 * as they come).
 */
#define CONTROL_FRAME_MAX    (CONTROL_IMPORT_MAX + (64u << 10))  /* ZMQ_MAXMSGSIZE */
#define CONTROL_RCVHWM       1            /* requests queued per peer before ipc backpressure */
#define CONTROL_SNDHWM       16           /* replies queued per peer */
#define CONTROL_PEERS_MAX    8            /* rmactl connections at once */
#define CONTROL_HANDLERS_MAX 32

typedef struct control control_t;

/*
 * A command handler. `req` is the whole request object (with "cmd"), borrowed and
 * already checked to be an object. On success return 0 and optionally set *reply to
 * a new object of result fields: the reply is {"ok": true} plus them. On failure
 * return a negative errno (-EINVAL and the like for a request that is refused, see
 * control_code_for_errno) and optionally set *reply to an object with "error" (one
 * line) and any details; without "error" the reply says strerror(-rc).
 */
typedef int (*control_fn)(const json_t *req, json_t **reply, void *data);

typedef struct {
    uint64_t requests;        /* messages received */
    uint64_t errors;          /* answered with "ok": false */
    uint64_t unsent;          /* replies lost: peer gone or not reading */
    uint64_t peers_refused;   /* connections closed: CONTROL_PEERS_MAX were connected */
} control_stats_t;

/*
 * Bind the control ROUTER on endpoint (ipc://PATH; the directory must exist: it is
 * not created) and register it with the loop. A socket file that still answers
 * belongs to a running daemon: -EADDRINUSE rather than stealing it; a stale one is
 * replaced. rma_pattern is the POSIX ERE for RMA numbers (NULL: the default).
 * zctx, loop and txn (the daemon's unit of work, daemon/txn.h, and through it the
 * database) are borrowed and must outlive the control socket. Returns it,
 * or NULL with *errmsg set (caller frees), e.g. "control ipc:///run/rmad/rmad.ctl:
 * directory /run/rmad: No such file or directory".
 */
control_t *control_new(void *zctx, loop_t *loop, txn_t *txn, const char *endpoint,
                       const char *rma_pattern, char **errmsg);

/* Unregister and close the socket (its file is removed by libzmq). Accepts NULL. */
void control_destroy(control_t **ctl_p);

/*
 * Handle `cmd` with fn(req, reply, data). Names are 1..CONTROL_CMD_MAX characters
 * from [a-z0-9._-]. keys: the arguments cmd takes, NULL-terminated (borrowed: static);
 * NULL for a command without arguments. A request with any other key (but "cmd") is
 * answered "unknown field" without calling fn. Returns 0, -EEXIST when cmd already
 * has a handler, -EINVAL for a bad name, -ENOSPC beyond CONTROL_HANDLERS_MAX.
 */
int control_register(control_t *ctl, const char *cmd, const char *const *keys, control_fn fn,
                     void *data);

/*
 * Whether an RMA is expired is its vendor's policy (EverFocus: valid 30 days), which
 * this module does not know: fn(rma, data) returns 1 when the RMA (its first line) is
 * expired today, 0 when not. Without it rma.show and rma.list show no RMA as expired.
 */
typedef int (*control_rma_expiry_fn)(const db_rma_t *rma, void *data);
void control_set_rma_expiry(control_t *ctl, control_rma_expiry_fn fn, void *data);

/* The endpoint bound (owned by ctl). */
const char *control_endpoint(const control_t *ctl);

control_stats_t control_stats(const control_t *ctl);

#endif
