/*
 * TCP scanner input (drivers/scanner.h): network scanners, mobile scanner apps, and
 * every test and benchmark that injects scans. One scan per line, from up to
 * SCANNER_TCP_MAX_CLIENTS clients per scanner; idle ones are closed after idle_timeout
 * and give way to new ones when the scanner is full.
 *
 * Everything runs on the loop's thread from two callbacks: a listening socket that
 * accepts (nonblocking) and a client socket that reads (nonblocking). Both do a
 * bounded amount of work per wake-up and rely on the loop polling level-triggered, so
 * one busy client or a connection storm cannot starve the others.
 *
 * The driver-independent half of scanner.h (scanner_t, events, line framing) is in
 * drivers/scanner.c.
 */
#include "drivers/scanner.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* ==== the TCP driver =============================================================== */

/* localhost is two listening sockets: 127.0.0.1 and ::1. */
#define TCP_MAX_LISTENERS 2
#define TCP_BACKLOG 32
/* Work per wake-up before giving the other fds a turn (the loop polls again at once). */
#define TCP_READ_CHUNK 4096
#define TCP_READS_PER_WAKE 16
#define TCP_ACCEPTS_PER_WAKE 64
/* Out of fds: stop accepting for this long instead of spinning on a readable listener. */
#define TCP_ACCEPT_PAUSE_MS 100
/*
 * Keepalive probes after 60 s of silence, every 10 s, 3 unanswered = gone. Scanners
 * are silent for hours, so idleness proves nothing; but a phone that left the Wi-Fi
 * sends no FIN or RST, and without probes it would hold one of the few client slots
 * forever.
 */
#define TCP_KEEPALIVE_IDLE_S 60
#define TCP_KEEPALIVE_INTVL_S 10
#define TCP_KEEPALIVE_COUNT 3
/*
 * A full scanner evicts its longest-idle client for a new one, when that client has
 * sent nothing for this long: sixteen idle connections (`nc` left open, a phone app
 * in the background) must not lock the real scanner out, and an active client is never
 * pushed out by a connection storm (the idle ones go first).
 */
#define TCP_EVICT_MIN_IDLE_MS 5000

struct tcp;

struct tcp_listener {
    struct tcp *tcp;
    int fd;
    uint64_t pause_timer;   /* accepting paused until this timer runs; 0 = not paused */
};

struct tcp_client {
    struct tcp *tcp;
    int fd;
    char *id;               /* "tcp:HOST:PORT#N" */
    char peer[INET6_ADDRSTRLEN + 8];
    scanner_lines_t *lines;
    /* Replies the socket did not take yet: at most SCANNER_TCP_REPLY_MAX bytes. */
    char *out;
    size_t out_len;
    bool dropping;          /* replies are being dropped: the client does not read them */
    int64_t active_ms;      /* monotonic: when it connected or last sent a byte */
    bool write_failed;      /* the peer is gone for writing: replies are dropped */
};

struct tcp {
    scanner_t *s;
    loop_t *loop;
    uint16_t port;
    struct tcp_listener lis[TCP_MAX_LISTENERS];
    size_t nlis;
    struct tcp_client *clients[SCANNER_TCP_MAX_CLIENTS];
    size_t nclients;
    unsigned long connections; /* ever accepted: the #N of client ids */
    int64_t idle_timeout_ms;   /* 0: clients may stay idle forever */
    uint64_t idle_timer;       /* the next idle check while clients are connected; 0 none */
    config_cidr_t *allow;      /* allow=: the peers accepted; NULL: every peer */
    size_t nallow;
    unsigned long refused_pending;  /* refused since the last REFUSED report */
    char refused_peer[INET6_ADDRSTRLEN + 8];  /* the latest one */
    uint64_t refused_timer;    /* the report window is open while set */
    bool held;                 /* scanner_hold: the clients are not read */
};

static size_t tcp_clients(const void *impl)
{
    const struct tcp *t = impl;
    return t->nclients;
}

static void tcp_free(void *impl);
static int tcp_feedback(void *impl, const char *scanner_id, scanner_reply_t reply,
                        const char *text);
static void tcp_hold(void *impl, bool hold);

static const scanner_ops_t tcp_ops = {
    .kind = "tcp",
    .clients = tcp_clients,
    .destroy = tcp_free,
    .feedback = tcp_feedback,
    .hold = tcp_hold,
};

uint16_t scanner_tcp_port(const scanner_t *s)
{
    const struct tcp *t = scanner_impl(s, &tcp_ops);
    return t ? t->port : 0;
}

/* ---- clients ------------------------------------------------------------------ */

/* Unregister, close and free; the client must already be out of t->clients. */
static void client_free(struct tcp_client *c)
{
    if (c->fd >= 0) {
        (void)loop_del_fd(c->tcp->loop, c->fd);
        (void)close(c->fd);
    }
    scanner_lines_destroy(&c->lines);
    free(c->out);
    free(c->id);
    free(c);
}

/*
 * The client is gone (EOF, error): report its unterminated line, if any, then the
 * disconnect, and free it. It leaves t->clients first, so scanner_clients() inside
 * the callback already counts without it.
 */
static void client_close(struct tcp_client *c, const char *reason)
{
    /* reason may be strerror()'s: keep it from the half-line event's callback. */
    char why[128];
    (void)snprintf(why, sizeof(why), "%s", reason);
    struct tcp *t = c->tcp;
    for (size_t i = 0; i < t->nclients; i++) {
        if (t->clients[i] == c) {
            t->clients[i] = t->clients[--t->nclients];
            break;
        }
    }
    (void)loop_del_fd(t->loop, c->fd);
    (void)close(c->fd);
    c->fd = -1;
    scanner_lines_end(c->lines, "connection closed before end of line");
    scanner_event_t ev = { .kind = SCANNER_EV_DISCONNECTED, .scanner_id = c->id,
                           .reason = why, .peer = c->peer[0] ? c->peer : NULL };
    scanner_emit(t->s, &ev);
    client_free(c);
}

/* What the loop watches on a client: input unless held, output while replies wait. */
static unsigned client_events(const struct tcp_client *c)
{
    return (c->tcp->held ? 0 : LOOP_IN) | (c->out_len ? LOOP_OUT : 0);
}

/*
 * Stop or resume reading every client (scanner_hold). Their bytes wait in the kernel's
 * buffers, then at the sender. A client held is not idle: on release its clock restarts.
 */
static void tcp_hold(void *impl, bool hold)
{
    struct tcp *t = impl;
    if (t->held == hold)
        return;
    t->held = hold;
    for (size_t i = 0; i < t->nclients; i++) {
        struct tcp_client *c = t->clients[i];
        if (!hold)
            c->active_ms = loop_now_ms();
        (void)loop_mod_fd(t->loop, c->fd, client_events(c));
    }
}

/*
 * Write what is queued: all of it, or what the socket takes (LOOP_OUT stays on until
 * it drains). A dead connection (EPIPE, ECONNRESET) drops the replies but not the
 * client: what it sent before it went is still read and stored, and the read side
 * reports the end with its real reason.
 */
static void client_flush(struct tcp_client *c)
{
    size_t done = 0;
    while (done < c->out_len) {
        ssize_t n = send(c->fd, c->out + done, c->out_len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        c->write_failed = true;
        done = c->out_len;
        break;
    }
    memmove(c->out, c->out + done, c->out_len - done);
    c->out_len -= done;
    (void)loop_mod_fd(c->tcp->loop, c->fd, client_events(c));
}

/*
 * One reply line to the connection that sent the scan (scanner.h, scanner_feedback).
 * Queued and flushed at once; the socket's own buffer takes it in the common case,
 * so the queue only fills for a client that does not read. Control bytes become
 * spaces: the reply is exactly one line whatever a reason quotes.
 */
static int tcp_feedback(void *impl, const char *scanner_id, scanner_reply_t reply,
                        const char *text)
{
    struct tcp *t = impl;
    struct tcp_client *c = NULL;
    for (size_t i = 0; i < t->nclients && !c; i++)
        if (strcmp(t->clients[i]->id, scanner_id) == 0)
            c = t->clients[i];
    if (!c || c->fd < 0)
        return -ENOENT;
    if (c->write_failed)
        return -EPIPE;
    const char *word = scanner_reply_word(reply);
    size_t wl = strlen(word), tl = strlen(text), n = wl + 1 + tl + 1;
    /*
     * A client that does not read its replies (a fixed-mount scanner that only
     * sends) keeps its connection: its scans matter, the answers it ignores do not.
     * Replies that do not fit are dropped whole, never cut; once the queue has
     * drained, replies flow again.
     */
    if (c->dropping && c->out_len == 0)
        c->dropping = false;
    if (c->dropping || c->out_len + n > SCANNER_TCP_REPLY_MAX) {
        c->dropping = true;
        return -ENOBUFS;
    }
    if (!c->out && !(c->out = malloc(SCANNER_TCP_REPLY_MAX)))
        return -ENOMEM;
    char *p = c->out + c->out_len;
    memcpy(p, word, wl);
    p[wl] = ' ';
    for (size_t i = 0; i < tl; i++) {
        unsigned char b = (unsigned char)text[i];
        p[wl + 1 + i] = b < 0x20 || b == 0x7f ? ' ' : (char)b;
    }
    p[n - 1] = '\n';
    c->out_len += n;
    client_flush(c);
    return 0;
}

/*
 * Readable (or hung up): read up to TCP_READS_PER_WAKE chunks and frame them. The
 * chunk is only a read size; what a client may hold between reads is its framer's
 * max_len bytes. EOF and read errors end the client only.
 */
static void client_ready(loop_t *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    struct tcp_client *c = data;
    uint8_t chunk[TCP_READ_CHUNK];
    if (events & LOOP_OUT)
        client_flush(c);
    /* Held: read on only to see an error or hang-up through (it ends the client). */
    if (c->tcp->held && !(events & LOOP_ERR))
        return;
    for (int i = 0; i < TCP_READS_PER_WAKE; i++) {
        if (i > 0 && c->tcp->held)
            return;               /* the station's queue is full: the rest waits */
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n > 0) {
            c->active_ms = loop_now_ms();
            scanner_lines_feed(c->lines, chunk, (size_t)n);
            continue;
        }
        if (n == 0) {
            client_close(c, "connection closed by the client");
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            client_close(c, strerror(errno));
            return;
        }
        /*
         * Nothing to read. An error or hang-up flag with nothing to read would keep
         * the loop waking us, so it ends the client.
         */
        if (i == 0 && (events & LOOP_ERR)) {
            int err = 0;
            socklen_t elen = sizeof(err);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err == 0)
                err = EPIPE;
            client_close(c, strerror(err));
        }
        return;
    }
}

/* "10.0.0.5:51234" or "[::1]:51234"; "" when the family is unknown. */
static void format_peer(const struct sockaddr_storage *ss, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "";
    out[0] = '\0';
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)))
            (void)snprintf(out, size, "%s:%u", host, ntohs(in->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)))
            (void)snprintf(out, size, "[%s]:%u", host, ntohs(in6->sin6_port));
    }
}

/*
 * Refuse a connection we accepted: close it and say so. It gets a number like any
 * connection, so the audit trail can tell refused clients apart.
 */
static void refuse(struct tcp *t, int fd, const char *id, const char *peer,
                   const char *reason)
{
    (void)close(fd);
    scanner_event_t ev = { .kind = SCANNER_EV_DISCONNECTED,
                           .scanner_id = id ? id : scanner_spec(t->s),
                           .reason = reason, .peer = peer, .refused = true };
    scanner_emit(t->s, &ev);
}

/* Best effort: without keepalive a client still works, it is only reaped later. */
static void keepalive_on(int fd)
{
    int on = 1, idle = TCP_KEEPALIVE_IDLE_S, intvl = TCP_KEEPALIVE_INTVL_S,
        cnt = TCP_KEEPALIVE_COUNT;
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/*
 * Make room for a new client. First the clients that have already hung up but whose
 * EOF is not read yet (a storm of connect/close is accepted faster than it is read):
 * they hold a slot for nothing. Then the one idle longest, if idle long enough.
 */
static void evict_idlest(struct tcp *t)
{
    for (size_t i = 0; i < t->nclients;) {
        char b;
        if (recv(t->clients[i]->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
            client_close(t->clients[i], "connection closed by the client");
        else
            i++;
    }
    if (t->nclients < SCANNER_TCP_MAX_CLIENTS)
        return;
    struct tcp_client *idlest = NULL;
    for (size_t i = 0; i < t->nclients; i++)
        if (!idlest || t->clients[i]->active_ms < idlest->active_ms)
            idlest = t->clients[i];
    int64_t idle = idlest ? loop_now_ms() - idlest->active_ms : 0;
    if (!idlest || idle < TCP_EVICT_MIN_IDLE_MS)
        return;
    char reason[96];
    (void)snprintf(reason, sizeof(reason), "idle for %lld s, replaced by a new connection",
                   (long long)(idle / 1000));
    client_close(idlest, reason);
}

static void idle_schedule(struct tcp *t);

/* Close the clients that sent nothing for idle_timeout; look again later. */
static int64_t idle_check(loop_t *loop, uint64_t id, void *data)
{
    struct tcp *t = data;
    (void)loop;
    (void)id;
    t->idle_timer = 0;
    int64_t now = loop_now_ms();
    for (size_t i = 0; i < t->nclients;) {
        struct tcp_client *c = t->clients[i];
        if (now - c->active_ms < t->idle_timeout_ms) {
            i++;
            continue;
        }
        char reason[96];
        (void)snprintf(reason, sizeof(reason), "idle for %lld s (idle_timeout)",
                       (long long)((now - c->active_ms) / 1000));
        client_close(c, reason); /* removes it from clients[] */
    }
    idle_schedule(t);
    return -1;
}

/*
 * While clients are connected and a timeout is set, check a few times per timeout
 * (a client is closed at most a quarter of the timeout late).
 */
static void idle_schedule(struct tcp *t)
{
    if (t->idle_timer || !t->idle_timeout_ms || !t->nclients)
        return;
    int64_t every = t->idle_timeout_ms / 4;
    t->idle_timer = loop_add_timer(t->loop, every > 0 ? every : 1, idle_check, t);
}

/* The end of a report window: what was refused during it, then maybe another window. */
static int64_t refused_report(loop_t *loop, uint64_t id, void *data)
{
    struct tcp *t = data;
    (void)loop;
    (void)id;
    if (t->refused_pending == 0) {
        t->refused_timer = 0;
        return -1;
    }
    scanner_event_t ev = { .kind = SCANNER_EV_REFUSED, .scanner_id = scanner_spec(t->s),
                           .reason = "peer not in allow=", .peer = t->refused_peer,
                           .count = t->refused_pending };
    t->refused_pending = 0;
    scanner_emit(t->s, &ev);
    return SCANNER_TCP_REFUSED_REPORT_MS;
}

/*
 * allow=: a peer outside the listed networks is closed before anything else (no
 * connection number, no event per connection: a port scan must not fill the audit
 * trail). The first refusal is reported at once, the rest once per window.
 */
static bool peer_allowed(struct tcp *t, int fd, const struct sockaddr_storage *ss,
                         const char *peer)
{
    if (!t->allow)
        return true;
    const uint8_t *addr = NULL;
    if (ss->ss_family == AF_INET)
        addr = (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
    else if (ss->ss_family == AF_INET6)
        addr = (const uint8_t *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (addr && config_cidr_match(t->allow, t->nallow, ss->ss_family, addr))
        return true;
    (void)close(fd);
    (void)snprintf(t->refused_peer, sizeof(t->refused_peer), "%s", peer[0] ? peer : "?");
    t->refused_pending++;
    if (!t->refused_timer) {
        t->refused_timer = loop_add_timer(t->loop, 0, refused_report, t);
        if (!t->refused_timer)
            t->refused_pending = 0;       /* no memory for the timer: counted nowhere */
    }
    return false;
}

/* Take a freshly accepted connection: serve it, or refuse it when full. */
static void client_add(struct tcp *t, int fd, const struct sockaddr_storage *ss)
{
    char peer[INET6_ADDRSTRLEN + 8];
    format_peer(ss, peer, sizeof(peer));
    if (!peer_allowed(t, fd, ss, peer))
        return;
    const char *peer_or_null = peer[0] ? peer : NULL;
    char *id = NULL;
    if (asprintf(&id, "%s#%lu", scanner_spec(t->s), ++t->connections) < 0) {
        refuse(t, fd, NULL, peer_or_null, "out of memory");
        return;
    }
    if (t->nclients == SCANNER_TCP_MAX_CLIENTS)
        evict_idlest(t);
    if (t->nclients == SCANNER_TCP_MAX_CLIENTS) {
        char reason[64];
        (void)snprintf(reason, sizeof(reason), "too many clients (%d connected)",
                       SCANNER_TCP_MAX_CLIENTS);
        refuse(t, fd, id, peer_or_null, reason);
        free(id);
        return;
    }
    struct tcp_client *c = calloc(1, sizeof(*c));
    scanner_lines_t *lines = c ? scanner_lines_new(t->s, id) : NULL;
    int rc = lines ? loop_add_fd(t->loop, fd, t->held ? 0 : LOOP_IN, client_ready, c) : -ENOMEM;
    if (rc < 0) {
        refuse(t, fd, id, peer_or_null, strerror(-rc));
        scanner_lines_destroy(&lines);
        free(c);
        free(id);
        return;
    }
    keepalive_on(fd);
    /*
     * Replies are a line per scan: a small kernel buffer is plenty, and it keeps what
     * a client that never reads can make the kernel hold for it small too (best effort).
     */
    int sndbuf = SCANNER_TCP_REPLY_MAX;
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    *c = (struct tcp_client){ .tcp = t, .fd = fd, .id = id, .lines = lines,
                              .active_ms = loop_now_ms() };
    memcpy(c->peer, peer, sizeof(c->peer));
    t->clients[t->nclients++] = c;
    idle_schedule(t);
    scanner_event_t ev = { .kind = SCANNER_EV_CONNECTED, .scanner_id = id,
                           .peer = peer_or_null };
    scanner_emit(t->s, &ev);
}

/* ---- listening ----------------------------------------------------------------- */

static int64_t accept_resume(loop_t *loop, uint64_t id, void *data)
{
    (void)id;
    struct tcp_listener *l = data;
    l->pause_timer = 0;
    (void)loop_mod_fd(loop, l->fd, LOOP_IN);
    return -1;
}

/*
 * accept() failed for a reason that will not go away by retrying at once (no fds, no
 * memory): the listener stays readable, so stop polling it for a moment instead of
 * spinning, and tell the daemon why new scanners are not getting through.
 */
static void accept_pause(struct tcp_listener *l, int err)
{
    struct tcp *t = l->tcp;
    if (l->pause_timer)
        return;
    l->pause_timer = loop_add_timer(t->loop, TCP_ACCEPT_PAUSE_MS, accept_resume, l);
    if (l->pause_timer)
        (void)loop_mod_fd(t->loop, l->fd, 0);
    char reason[128];
    (void)snprintf(reason, sizeof(reason), "cannot accept a connection: %s (retrying in %d ms)",
                   strerror(err), TCP_ACCEPT_PAUSE_MS);
    scanner_event_t ev = { .kind = SCANNER_EV_DISCONNECTED, .scanner_id = scanner_spec(t->s),
                           .reason = reason, .refused = true };
    scanner_emit(t->s, &ev);
}

static void listener_ready(loop_t *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)events;
    struct tcp_listener *l = data;
    for (int i = 0; i < TCP_ACCEPTS_PER_WAKE; i++) {
        struct sockaddr_storage ss;
        socklen_t slen = sizeof(ss);
        memset(&ss, 0, sizeof(ss));
        int c = accept4(fd, (struct sockaddr *)&ss, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0) {
            client_add(l->tcp, c, &ss);
            continue;
        }
        switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            return;
        /* That one connection died in the queue (or a signal came): take the next. */
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case ENETUNREACH:
        case ETIMEDOUT:
            continue;
        default:
            accept_pause(l, errno);
            return;
        }
    }
}

/* A listening socket on sa, nonblocking and close-on-exec. Returns the fd or -errno. */
static int listen_on(const struct sockaddr *sa, socklen_t salen)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* A restarted daemon must get its port back while old connections sit in TIME_WAIT. */
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, sa, salen) < 0 || listen(fd, TCP_BACKLOG) < 0) {
        int rc = -errno;
        (void)close(fd);
        return rc;
    }
    return fd;
}

/* The port fd is bound to, or 0. */
static uint16_t bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t slen = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &slen) < 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/*
 * Bind every address host stands for. The second address of localhost (::1) may be
 * missing on a host without IPv6, which is not an error; any other failure is. With
 * port 0, the later sockets take the port the kernel gave the first one, so the
 * scanner has one port. Returns 0 or -errno (-EINVAL for a bad host).
 */
static int tcp_bind(struct tcp *t, const char *host, uint16_t port)
{
    struct sockaddr_in in4 = { .sin_family = AF_INET };
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
    bool want4 = false, want6 = false, optional6 = false;
    if (strcasecmp(host, "localhost") == 0) {
        in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        in6.sin6_addr = in6addr_loopback;
        want4 = want6 = optional6 = true;
    } else if (inet_pton(AF_INET, host, &in4.sin_addr) == 1) {
        want4 = true;
    } else if (inet_pton(AF_INET6, host, &in6.sin6_addr) == 1) {
        want6 = true;
    } else {
        return -EINVAL;
    }

    t->port = port;
    if (want4) {
        in4.sin_port = htons(t->port);
        int fd = listen_on((struct sockaddr *)&in4, sizeof(in4));
        if (fd < 0)
            return fd;
        t->lis[t->nlis++] = (struct tcp_listener){ .tcp = t, .fd = fd };
        t->port = bound_port(fd);
    }
    if (want6) {
        in6.sin6_port = htons(t->port);
        int fd = listen_on((struct sockaddr *)&in6, sizeof(in6));
        if (fd == -EADDRNOTAVAIL || fd == -EAFNOSUPPORT) {
            if (!optional6)
                return fd;
        } else if (fd < 0) {
            return fd;
        } else {
            t->lis[t->nlis++] = (struct tcp_listener){ .tcp = t, .fd = fd };
            t->port = bound_port(fd);
        }
    }
    return t->port ? 0 : -EADDRNOTAVAIL;
}

/* "tcp:HOST:PORT", with [] around an IPv6 host. */
static char *make_spec(const char *host, uint16_t port)
{
    char *spec = NULL;
    bool v6 = strchr(host, ':') != NULL;
    if (asprintf(&spec, "tcp:%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", port) < 0)
        return NULL;
    return spec;
}

/* Close listeners and clients without reporting; the scanner_t is going away. */
static void tcp_free(void *impl)
{
    struct tcp *t = impl;
    if (!t)
        return;
    for (size_t i = 0; i < t->nclients; i++)
        client_free(t->clients[i]);
    if (t->idle_timer)
        (void)loop_del_timer(t->loop, t->idle_timer);
    if (t->refused_timer)
        (void)loop_del_timer(t->loop, t->refused_timer);
    free(t->allow);
    for (size_t i = 0; i < t->nlis; i++) {
        if (t->lis[i].pause_timer)
            (void)loop_del_timer(t->loop, t->lis[i].pause_timer);
        (void)loop_del_fd(t->loop, t->lis[i].fd);
        (void)close(t->lis[i].fd);
    }
    free(t);
}

/* Set *errmsg (when wanted) to "SPEC: what" and errno to err; returns NULL. */
static scanner_t *new_failed(char **errmsg, const char *spec, const char *what, int err)
{
    if (errmsg && asprintf(errmsg, "%s: %s", spec ? spec : "tcp", what) < 0)
        *errmsg = NULL;
    errno = err;
    return NULL;
}

scanner_t *scanner_new_tcp(loop_t *loop, const config_scanner_t *cfg,
                           const scan_limits_t *lim, scanner_event_fn fn, void *data,
                           char **errmsg)
{
    if (errmsg)
        *errmsg = NULL;
    if (cfg && cfg->kind != CONFIG_SCANNER_TCP)
        return new_failed(errmsg, cfg->spec, "not a tcp scanner", EINVAL);
    if (!loop || !cfg || !fn || !cfg->host)
        return new_failed(errmsg, cfg ? cfg->spec : NULL, strerror(EINVAL), EINVAL);

    /* Messages name the scanner as the config wrote it. */
    char *cfg_spec = cfg->spec ? strdup(cfg->spec) : make_spec(cfg->host, cfg->port);
    if (!cfg_spec)
        return new_failed(errmsg, NULL, "out of memory", ENOMEM);

    scanner_t *s = NULL;
    char *spec = NULL;
    int rc;
    struct tcp *t = calloc(1, sizeof(*t));
    if (!t) {
        rc = -ENOMEM;
        goto fail;
    }
    t->loop = loop;
    const char *idle = config_scanner_option(cfg, "idle_timeout");
    t->idle_timeout_ms = (idle ? strtoll(idle, NULL, 10) : SCANNER_TCP_IDLE_TIMEOUT_S) * 1000;
    if (cfg->nallow) {
        if (!(t->allow = malloc(cfg->nallow * sizeof(*t->allow)))) {
            rc = -ENOMEM;
            goto fail;
        }
        memcpy(t->allow, cfg->allow, cfg->nallow * sizeof(*t->allow));
        t->nallow = cfg->nallow;
    }
    rc = tcp_bind(t, cfg->host, cfg->port);
    if (rc < 0)
        goto fail;
    /* A kernel-picked port belongs in the spec: client ids must name a real address. */
    spec = cfg->port && !cfg->options ? strdup(cfg_spec) : make_spec(cfg->host, t->port);
    if (!spec) {
        rc = -ENOMEM;
        goto fail;
    }
    s = scanner_create(&tcp_ops, t, spec, lim, fn, data);
    if (!s) {
        rc = -ENOMEM;
        goto fail;
    }
    t->s = s;
    scanner_budget_config(s, cfg);
    for (size_t i = 0; i < t->nlis; i++) {
        rc = loop_add_fd(loop, t->lis[i].fd, LOOP_IN, listener_ready, &t->lis[i]);
        if (rc < 0)
            goto fail;
    }
    free(spec);
    free(cfg_spec);
    return s;

fail:
    if (s)
        scanner_destroy(&s); /* frees t too */
    else
        tcp_free(t);
    free(spec);
    (void)new_failed(errmsg, cfg_spec,
               rc == -EINVAL ? "bad host (expected an IPv4 address, an IPv6 address "
                               "or localhost)"
                             : strerror(-rc),
               -rc);
    free(cfg_spec);
    return NULL;
}
