/*
 * rmactl's connection to rmad (cli/client.h): DEALER and SUB sockets with deadlines.
 *
 * ZeroMQ connects in the background and retries forever, so "is the daemon there?"
 * has two answers here: for an ipc:// control socket a plain connect() tells at once
 * whether anybody listens; otherwise the deadline does.
 */
#include "cli/client.h"
#include "core/build.h"
#include "core/msgf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include "proto/control.h"

static int not_running(const char *endpoint, int err, char **errmsg)
{
    *errmsg = msgf("rmad is not running (no answer on %s)", endpoint);
    return err;
}

const char *client_config_path(const char *opt)
{
    const char *env = getenv("RMAD_CONFIG");
    if (opt && *opt)
        return opt;
    return env && *env ? env : build_installed_config();
}

int client_load_config(const char *opt, config_t **cfg, char **errmsg)
{
    *errmsg = NULL;
    const char *path = client_config_path(opt);
    /* Nothing named and nothing installed: the built-in config `make run` starts rmad
     * on (rmad --default-config), relative to the repository root it was built in. */
    if (strcmp(path, build_installed_config()) == 0 && access(path, F_OK) < 0 && errno == ENOENT)
        return config_load_default(cfg, errmsg);
    int rc = config_load(path, cfg, errmsg);
    if (rc < 0 && !*errmsg)
        *errmsg = msgf("%s: %s", client_config_path(opt), strerror(-rc));
    return rc;
}

int client_timeout_ms(void)
{
    const char *s = getenv("RMACTL_TIMEOUT_MS");
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    if (s && *s && *end == '\0' && v > 0 && v <= 3600000)
        return (int)v;
    return CONTROL_TIMEOUT_MS;
}

/*
 * For ipc://PATH: does a process listen there? 0 yes; -ECONNREFUSED when the file is
 * missing or stale; another -errno (-EACCES...) with *errmsg set.
 */
static int ipc_probe(const char *endpoint, char **errmsg)
{
    const char *path = endpoint + 6;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (path[0] == '@' || strlen(path) >= sizeof(sa.sun_path))
        return 0;                 /* abstract or odd: let ZeroMQ and the deadline tell */
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
    (void)close(fd);
    if (rc == -ENOENT || rc == -ECONNREFUSED)
        return not_running(endpoint, -ECONNREFUSED, errmsg);
    if (rc < 0)
        *errmsg = msgf("%s: %s", path, strerror(-rc));
    return rc;
}

/* The keys of the event bus's CURVE (client_set_curve); have == false: plain. */
static struct {
    bool have;
    client_curve_t keys;
} bus_curve;

void client_set_curve(const client_curve_t *keys)
{
    bus_curve.have = keys != NULL;
    if (keys)
        bus_curve.keys = *keys;
    else
        explicit_bzero(&bus_curve.keys, sizeof(bus_curve.keys));
}

/* The CURVE client options, before connect. Returns 0 or -1 (errno set). */
static int set_curve(void *s)
{
    const client_curve_t *k = &bus_curve.keys;
    return zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, k->server, sizeof(k->server)) < 0 ||
           zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, k->public_key, sizeof(k->public_key)) < 0 ||
           zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, k->secret, sizeof(k->secret)) < 0 ? -1 : 0;
}

/*
 * A socket of `type` connected to endpoint, or NULL with *errmsg set. bus: a socket
 * of the event bus, which speaks CURVE when client_set_curve gave keys.
 */
static void *connect_socket(void *zctx, int type, const char *endpoint, bool bus,
                            char **errmsg)
{
    void *s = zmq_socket(zctx, type);
    int zero = 0, hwm = CLIENT_SUB_RCVHWM;
    int64_t max = CLIENT_REPLY_MAX;
    if (!s || (bus && bus_curve.have && set_curve(s) < 0) ||
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof(max)) < 0 ||
        (type == ZMQ_SUB && (zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0 ||
                             zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0) < 0)) ||
        zmq_connect(s, endpoint) < 0) {
        *errmsg = msgf("%s: %s", endpoint, zmq_strerror(errno));
        if (s)
            zmq_close(s);
        return NULL;
    }
    return s;
}

/*
 * Wait until s is readable or timeout_ms pass (-1: no limit). Returns 0, -ETIMEDOUT,
 * -EINTR (a signal: the caller decides), or another -errno.
 */
static int wait_readable(void *s, int timeout_ms)
{
    zmq_pollitem_t it = { .socket = s, .events = ZMQ_POLLIN };
    int n = zmq_poll(&it, 1, timeout_ms);
    if (n < 0)
        return -errno;
    return n == 0 ? -ETIMEDOUT : 0;
}

/*
 * Receive one whole message that is already waiting: its first `max` frames go to
 * f[] (initialised by the caller, who closes them), the others are dropped; *n is
 * the number of frames. Returns 0 or -errno.
 */
static int recv_message(void *s, zmq_msg_t *f, size_t max, size_t *n)
{
    int more = 1;
    size_t sz = sizeof(more);
    *n = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
            int e = errno;
            zmq_msg_close(&m);
            return -e;
        }
        if (zmq_getsockopt(s, ZMQ_RCVMORE, &more, &sz) < 0)
            more = 0;
        if (*n < max)
            zmq_msg_move(&f[*n], &m);
        (*n)++;
        zmq_msg_close(&m);
    }
    return 0;
}

/*
 * One [topic][body] message, already waiting, as NUL-terminated copies. Returns 0,
 * -EBADMSG (another shape; consumed), or -errno.
 */
static int recv_two(void *s, char **topic, char **body, size_t *len)
{
    zmq_msg_t f[2];
    size_t n = 0;
    zmq_msg_init(&f[0]);
    zmq_msg_init(&f[1]);
    int rc = recv_message(s, f, 2, &n);
    if (rc == 0 && n != 2)
        rc = -EBADMSG;
    if (rc == 0) {
        *len = zmq_msg_size(&f[1]);
        *topic = strndup(zmq_msg_data(&f[0]), zmq_msg_size(&f[0]));
        *body = malloc(*len + 1);
        if (*body) {
            memcpy(*body, zmq_msg_data(&f[1]), *len);
            (*body)[*len] = '\0';
        }
        if (!*topic || !*body) {
            free(*topic);
            free(*body);
            rc = -ENOMEM;
        }
    }
    zmq_msg_close(&f[0]);
    zmq_msg_close(&f[1]);
    return rc;
}

int client_call(void *zctx, const char *endpoint, const json_t *req, int timeout_ms,
                json_t **reply, char **errmsg)
{
    *errmsg = NULL;
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    size_t len = 0;
    char *text = control_encode(req, &len);
    if (!text) {
        *errmsg = msgf("out of memory");
        return -ENOMEM;
    }
    if (len > control_request_max(cmd)) {
        *errmsg = msgf("request too large (%zu bytes, at most %zu)", len,
                       control_request_max(cmd));
        free(text);
        return -EMSGSIZE;
    }
    int rc = strncmp(endpoint, "ipc://", 6) == 0 ? ipc_probe(endpoint, errmsg) : 0;
    void *s = rc == 0 ? connect_socket(zctx, ZMQ_DEALER, endpoint, false, errmsg) : NULL;
    if (rc == 0 && !s)
        rc = -EIO;
    /* A DEALER queues on a connecting pipe, so this send does not wait for the peer. */
    if (rc == 0 && zmq_send(s, text, len, ZMQ_DONTWAIT) < 0) {
        rc = -errno;
        *errmsg = msgf("%s: %s", endpoint, zmq_strerror(-rc));
    }
    free(text);
    if (rc == 0) {
        rc = wait_readable(s, timeout_ms);
        if (rc == -ETIMEDOUT)
            rc = not_running(endpoint, rc, errmsg);
        else if (rc < 0 && rc != -EINTR)
            *errmsg = msgf("%s: %s", endpoint, zmq_strerror(-rc));
    }
    if (rc == 0) {
        zmq_msg_t f[1];
        size_t n = 0;
        zmq_msg_init(&f[0]);
        rc = recv_message(s, f, 1, &n);
        if (rc < 0) {
            *errmsg = msgf("%s: %s", endpoint, zmq_strerror(-rc));
        } else if (n != 1) {
            *errmsg = msgf("%s: expected a one-frame reply, got %zu frames", endpoint, n);
            rc = -EBADMSG;
        } else {
            rc = control_reply_parse(zmq_msg_data(&f[0]), zmq_msg_size(&f[0]), reply, errmsg);
        }
        zmq_msg_close(&f[0]);
    }
    if (s)
        zmq_close(s);
    return rc;
}

int client_replay(void *zctx, const char *endpoint, uint64_t from, int timeout_ms,
                  client_event_fn fn, void *data, uint64_t *last_seq, char **errmsg)
{
    *errmsg = NULL;
    char req[64];
    int len = snprintf(req, sizeof(req), "{\"replay_from\":%llu}", (unsigned long long)from);
    void *s = connect_socket(zctx, ZMQ_DEALER, endpoint, true, errmsg);
    if (!s)
        return -EIO;
    int rc = 0;
    bool done = false;
    if (zmq_send(s, req, (size_t)len, ZMQ_DONTWAIT) < 0) {
        rc = -errno;
        *errmsg = msgf("%s: %s", endpoint, zmq_strerror(-rc));
    }
    while (rc == 0 && !done) {
        rc = wait_readable(s, timeout_ms);
        if (rc == -ETIMEDOUT) {
            rc = not_running(endpoint, rc, errmsg);
            break;
        }
        if (rc < 0) {
            if (rc != -EINTR)
                *errmsg = msgf("%s: %s", endpoint, zmq_strerror(-rc));
            break;
        }
        char *topic = NULL, *body = NULL;
        size_t blen = 0;
        rc = recv_two(s, &topic, &body, &blen);
        if (rc == -EBADMSG) {
            *errmsg = msgf("%s: expected [topic][body]", endpoint);
        } else if (rc < 0) {
            *errmsg = msgf("%s: %s", endpoint, zmq_strerror(-rc));
        } else if (strcmp(topic, REPLAY_ERROR_TOPIC) == 0) {
            json_t *j = json_loadb(body, blen, 0, NULL);
            const char *e = json_string_value(json_object_get(j, "error"));
            *errmsg = msgf("%s: %s", endpoint, e ? e : "error");
            json_decref(j);
            rc = -EREMOTEIO;
        } else if (strcmp(topic, REPLAY_END_TOPIC) == 0) {
            if (replay_end_parse(body, blen, last_seq) < 0) {
                *errmsg = msgf("%s: replay.end without last_seq", endpoint);
                rc = -EBADMSG;
            } else {
                done = true;
            }
        } else {
            rc = fn(topic, body, blen, data);
        }
        free(topic);
        free(body);
    }
    zmq_close(s);
    return rc;
}

void *client_subscribe(void *zctx, const char *endpoint, char **errmsg)
{
    *errmsg = NULL;
    return connect_socket(zctx, ZMQ_SUB, endpoint, true, errmsg);
}

int client_recv_event(void *sub, int timeout_ms, char **topic, char **body, size_t *len)
{
    int rc = wait_readable(sub, timeout_ms);
    return rc < 0 ? rc : recv_two(sub, topic, body, len);
}
