/*
 * CURVE security for the event bus (docs/control.md, "Keys and CURVE"): key files and
 * the ZAP handler that decides which clients may connect.
 *
 * A key file holds one Z85 key (40 characters) on one line: NAME.key the secret
 * (mode 0600), NAME.pub the public key. `rmactl keygen NAME` writes both with
 * curve_keygen(). The daemon's PUB and replay sockets are CURVE servers with the
 * secret of `curve_secret_key`; every *.pub file in `curve_allowed_clients` is a
 * client key that may connect, and any other key gets nothing (its handshake is
 * refused: no event, no replay).
 *
 * The ZAP handler (RFC 27) is a REP socket on inproc://zeromq.zap.01 in the daemon's
 * ZeroMQ context, registered with the one event loop: libzmq's I/O threads ask it
 * about every CURVE handshake and wait for its answer without blocking anything. It
 * must be created before the CURVE sockets bind (without a handler libzmq would let
 * every key in) and destroyed after they close.
 *
 * Nothing here logs: errors are returned, refusals counted and reported through a
 * callback for the daemon to log.
 */
#ifndef RMAD_CURVE_H
#define RMAD_CURVE_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"

#define CURVE_KEY_BYTES 32
#define CURVE_Z85_LEN   40            /* characters of a Z85 key, without NUL */
#define CURVE_CLIENTS_MAX 1024        /* *.pub files taken from the allowed directory */

/*
 * Read a key file: one Z85 key, optionally followed by a line end, nothing else.
 * Returns 0 and fills key, or -errno (-EINVAL for a file that holds no key) with
 * *errmsg = "PATH: reason".
 */
int curve_key_read(const char *path, uint8_t key[CURVE_KEY_BYTES], char **errmsg);

/* The public key of a secret one (zmq_curve_public). Returns 0 or -errno. */
int curve_public_of(const uint8_t secret[CURVE_KEY_BYTES], uint8_t pub[CURVE_KEY_BYTES]);

/* The Z85 text of a key: out holds CURVE_Z85_LEN + 1 bytes. */
void curve_z85(const uint8_t key[CURVE_KEY_BYTES], char out[CURVE_Z85_LEN + 1]);

/*
 * Write a new key pair: NAME.key (the secret, mode 0600) and NAME.pub (0644), each
 * the Z85 key and a newline. NAME may include a directory. An existing file is never
 * overwritten (-EEXIST); on any failure neither file is left behind. Returns 0 or
 * -errno with *errmsg set.
 */
int curve_keygen(const char *name, char **errmsg);

/*
 * Check a directory of allowed client keys: every *.pub in it must be a key. Returns
 * the number of keys (0 is allowed: then no client can connect), or -errno with
 * *errmsg = "DIR/x.pub: reason".
 */
int curve_clients_check(const char *dir, char **errmsg);

typedef struct curve_auth curve_auth_t;

typedef struct {
    uint64_t accepted;        /* handshakes let through */
    uint64_t refused;         /* handshakes refused: unknown key or not CURVE */
} curve_auth_stats_t;

/*
 * Called for every refused handshake with the client's key in Z85 ("" when it is not
 * a CURVE client) and its address ("127.0.0.1"). The daemon logs it.
 */
typedef void (*curve_refused_fn)(const char *client_z85, const char *address, void *data);

/*
 * Bind the ZAP handler in zctx and load the keys of allowed_dir. Returns it, or NULL
 * with *errmsg set ("curve_allowed_clients DIR/x.pub: not a Z85 key").
 */
curve_auth_t *curve_auth_new(void *zctx, loop_t *loop, const char *allowed_dir,
                             curve_refused_fn refused, void *data, char **errmsg);

/*
 * Read the allowed directory again (SIGHUP). All or nothing: a bad file keeps the
 * current keys. Returns the number of keys now allowed, or -errno with *errmsg set.
 * Connections already made stay; new handshakes use the new set.
 */
int curve_auth_reload(curve_auth_t *a, char **errmsg);

/* Keys currently allowed. */
size_t curve_auth_count(const curve_auth_t *a);

curve_auth_stats_t curve_auth_stats(const curve_auth_t *a);

/* Unregister and close the handler. Accepts NULL; clears *a_p. */
void curve_auth_destroy(curve_auth_t **a_p);

#endif
