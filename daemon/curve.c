/*
 * CURVE key files and the ZAP handler (daemon/curve.h).
 *
 * The handler answers each ZAP request in the loop callback that reads it: look the
 * client's key up among the allowed ones (a linear scan of at most CURVE_CLIENTS_MAX
 * 32-byte keys, per handshake) and reply 200 or 400.
 */
#include "daemon/curve.h"
#include "core/msgf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define ZAP_ENDPOINT   "inproc://zeromq.zap.01"
#define ZAP_FRAMES     7          /* version, id, domain, address, identity, mechanism, key */
#define ZAP_PER_CALL   64         /* requests answered per readiness callback */
#define KEY_FILE_MAX   128        /* bytes read from a key file: a key and a line end */
#define PUB_SUFFIX     ".pub"

/* ---- key files ------------------------------------------------------------------ */

int curve_key_read(const char *path, uint8_t key[CURVE_KEY_BYTES], char **errmsg)
{
    char buf[KEY_FILE_MAX + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        *errmsg = msgf("%s: %s", path, strerror(-rc));
        return rc;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int rc = -errno;
    (void)close(fd);
    if (n < 0 || n >= (ssize_t)sizeof(buf)) {
        *errmsg = msgf("%s: %s", path, strerror(-rc));
        return rc;
    }
    size_t len = (size_t)n;
    buf[len] = '\0';
    /* One line end, LF or CR LF, may follow the key. */
    size_t end = len;
    if (end > 0 && buf[end - 1] == '\n')
        end--;
    if (end > 0 && end < len && buf[end - 1] == '\r')
        end--;
    buf[end] = '\0';
    len = end;
    if (len != CURVE_Z85_LEN || strlen(buf) != len || !zmq_z85_decode(key, buf)) {
        *errmsg = msgf("%s: not a CURVE key (expected one line of %d Z85 characters, "
                       "as rmactl keygen writes)", path, CURVE_Z85_LEN);
        return -EINVAL;
    }
    return 0;
}

int curve_public_of(const uint8_t secret[CURVE_KEY_BYTES], uint8_t pub[CURVE_KEY_BYTES])
{
    char s[CURVE_Z85_LEN + 1], p[CURVE_Z85_LEN + 1];
    curve_z85(secret, s);
    if (zmq_curve_public(p, s) < 0)
        return -errno;
    return zmq_z85_decode(pub, p) ? 0 : -EINVAL;
}

void curve_z85(const uint8_t key[CURVE_KEY_BYTES], char out[CURVE_Z85_LEN + 1])
{
    if (!zmq_z85_encode(out, key, CURVE_KEY_BYTES))
        out[0] = '\0';
}

/* Create path (never replacing a file) with exactly `mode` and write text to it. */
static int write_new(const char *path, mode_t mode, const char *text, char **errmsg)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        int rc = -errno;
        *errmsg = rc == -EEXIST ? msgf("%s: exists, not overwritten", path)
                                : msgf("%s: %s", path, strerror(-rc));
        return rc;
    }
    size_t len = strlen(text);
    /* fchmod: the umask must not make a public key unreadable to the daemon. */
    int rc = fchmod(fd, mode) < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) < 0
                 ? -errno : 0;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc < 0) {
        *errmsg = msgf("%s: %s", path, strerror(-rc));
        (void)unlink(path);
    }
    return rc;
}

int curve_keygen(const char *name, char **errmsg)
{
    char pub[CURVE_Z85_LEN + 2], sec[CURVE_Z85_LEN + 2];
    *errmsg = NULL;
    if (!name || !*name) {
        *errmsg = msgf("keygen: expected a NAME");
        return -EINVAL;
    }
    if (zmq_curve_keypair(pub, sec) < 0) {
        int rc = -errno;
        *errmsg = msgf("keygen: %s (libzmq without CURVE?)", zmq_strerror(-rc));
        return rc;
    }
    strcat(pub, "\n");
    strcat(sec, "\n");
    char *kpath = msgf("%s.key", name), *ppath = msgf("%s.pub", name);
    int rc = kpath && ppath ? 0 : -ENOMEM;
    /* Neither file may exist: a half-replaced pair would not match. */
    if (rc == 0 && (access(kpath, F_OK) == 0 || access(ppath, F_OK) == 0)) {
        *errmsg = msgf("%s: exists, not overwritten", access(kpath, F_OK) == 0 ? kpath : ppath);
        rc = -EEXIST;
    }
    if (rc == 0)
        rc = write_new(kpath, 0600, sec, errmsg);
    if (rc == 0 && (rc = write_new(ppath, 0644, pub, errmsg)) < 0)
        (void)unlink(kpath);
    explicit_bzero(sec, sizeof(sec));
    free(kpath);
    free(ppath);
    return rc;
}

/* ---- the allowed directory ------------------------------------------------------ */

struct client {
    uint8_t key[CURVE_KEY_BYTES];
    char *name;               /* the file's name without .pub: the ZAP user id */
};

static void clients_free(struct client *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(c[i].name);
    free(c);
}

/* Every *.pub of dir (hidden files skipped: editors leave them). All or nothing. */
static int clients_load(const char *dir, struct client **out, size_t *nout, char **errmsg)
{
    DIR *d = opendir(dir);
    if (!d) {
        int rc = -errno;
        *errmsg = msgf("curve_allowed_clients %s: %s", dir, strerror(-rc));
        return rc;
    }
    struct client *list = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (errno = 0, e = readdir(d))) {
        size_t len = strlen(e->d_name), sl = strlen(PUB_SUFFIX);
        if (e->d_name[0] == '.' || len <= sl || strcmp(e->d_name + len - sl, PUB_SUFFIX) != 0)
            continue;
        if (n == CURVE_CLIENTS_MAX) {
            *errmsg = msgf("curve_allowed_clients %s: more than %d keys", dir, CURVE_CLIENTS_MAX);
            rc = -E2BIG;
            break;
        }
        char *path = msgf("%s/%s", dir, e->d_name);
        struct client *nl = path ? realloc(list, (n + 1) * sizeof(*nl)) : NULL;
        if (!nl) {
            free(path);
            rc = -ENOMEM;
            break;
        }
        list = nl;
        char *why = NULL;
        rc = curve_key_read(path, list[n].key, &why);
        free(path);
        if (rc < 0) {
            *errmsg = msgf("curve_allowed_clients %s", why ? why : strerror(-rc));
            free(why);
            break;
        }
        if (!(list[n].name = strndup(e->d_name, len - sl))) {
            rc = -ENOMEM;
            break;
        }
        n++;
    }
    if (rc == 0 && errno != 0) {
        rc = -errno;
        *errmsg = msgf("curve_allowed_clients %s: %s", dir, strerror(-rc));
    }
    (void)closedir(d);
    if (rc < 0) {
        clients_free(list, n);
        if (rc == -ENOMEM && !*errmsg)
            *errmsg = msgf("out of memory");
        return rc;
    }
    *out = list;
    *nout = n;
    return 0;
}

int curve_clients_check(const char *dir, char **errmsg)
{
    struct client *list = NULL;
    size_t n = 0;
    *errmsg = NULL;
    int rc = clients_load(dir, &list, &n, errmsg);
    if (rc < 0)
        return rc;
    clients_free(list, n);
    return (int)n;
}

/* ---- the ZAP handler ------------------------------------------------------------ */

struct curve_auth {
    loop_t *loop;
    void *rep;
    char *dir;
    struct client *clients;
    size_t nclients;
    curve_refused_fn refused;
    void *data;
    curve_auth_stats_t stats;
};

static const struct client *client_find(const curve_auth_t *a, const uint8_t *key)
{
    for (size_t i = 0; i < a->nclients; i++)
        if (memcmp(a->clients[i].key, key, CURVE_KEY_BYTES) == 0)
            return &a->clients[i];
    return NULL;
}

/* [version][request id][status code][status text][user id][metadata], never blocking. */
static void zap_reply(void *rep, const zmq_msg_t *id, const char *code, const char *text,
                      const char *user)
{
    const char *parts[] = { "1.0", NULL, code, text, user, "" };
    for (int i = 0; i < 6; i++) {
        int more = i < 5 ? ZMQ_SNDMORE : 0;
        if (i == 1) {
            zmq_msg_t copy;
            zmq_msg_init(&copy);
            if (id)
                (void)zmq_msg_copy(&copy, (zmq_msg_t *)id);
            if (zmq_msg_send(&copy, rep, more | ZMQ_DONTWAIT) < 0)
                zmq_msg_close(&copy);
            continue;
        }
        (void)zmq_send(rep, parts[i], strlen(parts[i]), more | ZMQ_DONTWAIT);
    }
}

/*
 * One request: read all its frames (a REP socket must answer every request it takes,
 * or it stops), check mechanism and key, answer. Returns 0, or -EAGAIN when none.
 */
static int zap_handle_one(curve_auth_t *a)
{
    zmq_msg_t f[ZAP_FRAMES];
    size_t n = 0;
    int more = 1;
    for (size_t i = 0; i < ZAP_FRAMES; i++)
        zmq_msg_init(&f[i]);
    while (more) {
        zmq_msg_t extra, *m = n < ZAP_FRAMES ? &f[n] : &extra;
        if (m == &extra)
            zmq_msg_init(&extra);
        if (zmq_msg_recv(m, a->rep, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            int rc = -errno;
            if (m == &extra)
                zmq_msg_close(&extra);
            for (size_t i = 0; i < ZAP_FRAMES; i++)
                zmq_msg_close(&f[i]);
            return rc;
        }
        more = zmq_msg_more(m);
        if (m == &extra)
            zmq_msg_close(&extra);
        n++;
    }
    const zmq_msg_t *id = n >= 2 ? &f[1] : NULL;
    bool curve = n == ZAP_FRAMES && zmq_msg_size(&f[5]) == 5 &&
                 memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 &&
                 zmq_msg_size(&f[6]) == CURVE_KEY_BYTES;
    const struct client *c = curve ? client_find(a, zmq_msg_data(&f[6])) : NULL;
    if (c) {
        a->stats.accepted++;
        zap_reply(a->rep, id, "200", "OK", c->name);
    } else {
        a->stats.refused++;
        zap_reply(a->rep, id, "400", curve ? "client key not allowed" : "CURVE required", "");
        if (a->refused) {
            char z85[CURVE_Z85_LEN + 1] = "", addr[64] = "";
            if (curve)
                curve_z85(zmq_msg_data(&f[6]), z85);
            if (n >= 4) {
                size_t al = zmq_msg_size(&f[3]);
                al = al < sizeof(addr) - 1 ? al : sizeof(addr) - 1;
                memcpy(addr, zmq_msg_data(&f[3]), al);
                addr[al] = '\0';
            }
            a->refused(z85, addr, a->data);
        }
    }
    for (size_t i = 0; i < ZAP_FRAMES; i++)
        zmq_msg_close(&f[i]);
    return 0;
}

static void zap_readable(loop_t *loop, void *zsock, unsigned events, void *data)
{
    (void)loop;
    (void)zsock;
    (void)events;
    for (int i = 0; i < ZAP_PER_CALL; i++)
        if (zap_handle_one(data) < 0)
            break;
}

curve_auth_t *curve_auth_new(void *zctx, loop_t *loop, const char *allowed_dir,
                             curve_refused_fn refused, void *data, char **errmsg)
{
    *errmsg = NULL;
    curve_auth_t *a = calloc(1, sizeof(*a));
    if (!a || !(a->dir = strdup(allowed_dir))) {
        free(a);
        *errmsg = msgf("curve: out of memory");
        return NULL;
    }
    a->loop = loop;
    a->refused = refused;
    a->data = data;
    if (clients_load(allowed_dir, &a->clients, &a->nclients, errmsg) < 0)
        goto fail;
    int zero = 0;
    a->rep = zmq_socket(zctx, ZMQ_REP);
    if (!a->rep || zmq_setsockopt(a->rep, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
        zmq_bind(a->rep, ZAP_ENDPOINT) < 0) {
        *errmsg = msgf("curve: ZAP handler %s: %s", ZAP_ENDPOINT, zmq_strerror(errno));
        goto fail;
    }
    int rc = loop_add_zsock(loop, a->rep, LOOP_IN, zap_readable, a);
    if (rc < 0) {
        *errmsg = msgf("curve: ZAP handler: %s", strerror(-rc));
        goto fail;
    }
    return a;
fail:
    if (a->rep)
        zmq_close(a->rep);
    clients_free(a->clients, a->nclients);
    free(a->dir);
    free(a);
    return NULL;
}

int curve_auth_reload(curve_auth_t *a, char **errmsg)
{
    struct client *list = NULL;
    size_t n = 0;
    *errmsg = NULL;
    int rc = clients_load(a->dir, &list, &n, errmsg);
    if (rc < 0)
        return rc;
    clients_free(a->clients, a->nclients);
    a->clients = list;
    a->nclients = n;
    return (int)n;
}

size_t curve_auth_count(const curve_auth_t *a)
{
    return a ? a->nclients : 0;
}

curve_auth_stats_t curve_auth_stats(const curve_auth_t *a)
{
    curve_auth_stats_t none = { 0 };
    return a ? a->stats : none;
}

void curve_auth_destroy(curve_auth_t **a_p)
{
    if (!a_p || !*a_p)
        return;
    curve_auth_t *a = *a_p;
    (void)loop_del_zsock(a->loop, a->rep);
    zmq_close(a->rep);
    clients_free(a->clients, a->nclients);
    free(a->dir);
    free(a);
    *a_p = NULL;
}
