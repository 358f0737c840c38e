/*
 * rmactl's side of a running rmad: the config that names its sockets, one control
 * request and its reply, and a replay from the event bus. Nothing here prints:
 * functions return 0 or a negative errno with a one-line *errmsg (caller frees), and
 * the commands (cli/cmd_daemon.c) print and pick the exit code.
 */
#ifndef RMAD_CLI_CLIENT_H
#define RMAD_CLI_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

#ifndef CLIENT_DEFAULT_CONFIG
#define CLIENT_DEFAULT_CONFIG "/etc/rmad/rmad.conf"   /* the installed config */
#endif

#define CLIENT_REPLY_MAX (64 << 20)    /* bytes of one frame rmactl accepts */

/* The config to use: `opt` (--config) if given, else $RMAD_CONFIG, else the default. */
const char *client_config_path(const char *opt);

/*
 * Load that config (core/config.h). Returns 0 and sets *cfg, or config_load's
 * negative errno with *errmsg = "PATH: reason" / "PATH:LINE: message".
 */
int client_load_config(const char *opt, config_t **cfg, char **errmsg);

/* How long to wait for the daemon: $RMACTL_TIMEOUT_MS if a positive number, else
 * CONTROL_TIMEOUT_MS. */
int client_timeout_ms(void);

/*
 * Send one control request to `endpoint` and wait up to timeout_ms for the reply.
 * Returns:
 *   0             *reply = {"ok": true, ...} (caller json_decref's)
 *   -EREMOTEIO    the daemon refused: *reply = {"ok": false, ...}, *errmsg = its error
 *   -ECONNREFUSED nobody listens on the ipc socket, -ETIMEDOUT no answer in time:
 *                 *errmsg = "rmad is not running (no answer on ENDPOINT)"
 *   -EMSGSIZE     the request is larger than control_request_max() (not sent)
 *   -EBADMSG      the answer is not a control reply
 *   -EINTR        a signal arrived while waiting
 *   other         from ZeroMQ or the socket file (-EACCES: not in the rmad group)
 */
int client_call(void *zctx, const char *endpoint, const json_t *req, int timeout_ms,
                json_t **reply, char **errmsg);

/*
 * One replayed event; body is len bytes plus a NUL. Return 0 to go on; anything
 * else stops the replay and client_replay returns it.
 */
typedef int (*client_event_fn)(const char *topic, const char *body, size_t len, void *data);

/*
 * Ask the replay endpoint for every event from seq `from` on and pass each to fn, in
 * order, until replay.end; then set *last_seq to its last_seq and return 0. Waits at
 * most timeout_ms for each message. Errors: -EREMOTEIO (the daemon answered with an
 * error, *errmsg = its text), -ETIMEDOUT (*errmsg = "rmad is not running (no answer
 * on ENDPOINT)"), -EBADMSG (not the replay protocol), -EINTR (a signal), fn's
 * non-zero value.
 */
int client_replay(void *zctx, const char *endpoint, uint64_t from, int timeout_ms,
                  client_event_fn fn, void *data, uint64_t *last_seq, char **errmsg);

/*
 * CURVE keys for the event bus (pub and replay; the control socket is a local file and
 * never uses them): this client's pair and the server's public key, 32 bytes each.
 * client_set_curve(&keys) makes client_replay and client_subscribe connect with them;
 * NULL goes back to plain connections.
 */
typedef struct {
    uint8_t secret[32];
    uint8_t public_key[32];
    uint8_t server[32];
} client_curve_t;
void client_set_curve(const client_curve_t *keys);

/* Events queued by a SUB socket while rmactl is busy replaying. */
#define CLIENT_SUB_RCVHWM 100000

/*
 * A SUB socket connected to the pub endpoint and subscribed to every topic (close
 * with zmq_close). NULL with *errmsg set on failure.
 */
void *client_subscribe(void *zctx, const char *endpoint, char **errmsg);

/*
 * Wait up to timeout_ms (-1: no limit) for one live event on a SUB socket. Returns 0
 * with *topic and *body (malloc'd, NUL-terminated; *len the body's length),
 * -ETIMEDOUT, -EINTR, -EBADMSG for a message that is not [topic][body] (it is
 * consumed), or another negative errno.
 */
int client_recv_event(void *sub, int timeout_ms, char **topic, char **body, size_t *len);

#endif
