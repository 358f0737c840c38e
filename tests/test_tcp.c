/*
 * TCP scanner input (drivers/scanner.h, drivers/tcp.c): a real loop, a scanner on a
 * kernel-picked loopback port, and plain sockets from the test as the scanners.
 *
 * The test writes, then runs the loop until the events it expects have arrived (a
 * watchdog turns a missing event into a failure, not a hang). "Pumping" runs the loop
 * briefly so that the driver reads what was written so far before the next write;
 * it makes separate reads likely, and no assertion depends on how long anything took.
 * After each exchange the test pumps once more and checks that nothing else came.
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "drivers/scanner.h"
#include "tests/helpers.h"
#include "tests/suites.h"

#define WATCHDOG_MS 10000
#define PUMP_MS 30
#define MAX_EVENTS 96

/* ---- recording events ----------------------------------------------------------- */

/* A deep copy of one event: the driver's pointers die with the callback. */
struct ev {
    scanner_ev_kind_t kind;
    char *id;
    char *reason;
    char *peer;
    uint8_t *raw;
    size_t raw_len;
    bool has_scan;
    char *text;
    size_t text_len;
    char aim[4];
    const char *symbology;
    bool gs1;
    char *scan_scanner;
    int64_t t_ms;
    size_t clients;         /* scanner_clients() inside the callback */
    uint64_t count;         /* REFUSED, OVER_BUDGET */
};

struct rec {
    loop_t *loop;
    scanner_t *s;
    uint16_t port;
    char spec[64];          /* "tcp:127.0.0.1:PORT" */
    struct ev ev[MAX_EVENTS];
    size_t n;
    size_t stop_at;         /* loop_stop() when n reaches it */
    /* Answer every read with scanner_feedback(): OK for scans, REJECT for rejected
     * reads, this text (NULL: no answers); stop at the first disconnect. */
    const char *reply;
    bool stop_on_disconnect;
    int feedback_rc;        /* the last scanner_feedback() result */
};

static void on_event(const scanner_event_t *e, void *data)
{
    struct rec *r = data;
    CU_ASSERT_PTR_NOT_NULL(e->scanner_id);
    if (r->n == MAX_EVENTS) {
        CU_FAIL("too many events");
        loop_stop(r->loop);
        return;
    }
    struct ev *c = &r->ev[r->n++];
    c->kind = e->kind;
    c->id = th_strdup(e->scanner_id);
    c->reason = th_strdup(e->reason);
    c->peer = th_strdup(e->peer);
    c->raw = (uint8_t *)th_memdup(e->raw, e->raw_len);
    c->raw_len = e->raw_len;
    c->clients = scanner_clients(r->s);
    c->count = e->count;
    if (e->scan) {
        c->has_scan = true;
        c->text = th_memdup(e->scan->text, e->scan->len);
        c->text_len = e->scan->len;
        memcpy(c->aim, e->scan->aim, sizeof(c->aim));
        c->symbology = e->scan->symbology;
        c->gs1 = e->scan->gs1;
        c->scan_scanner = th_strdup(e->scan->scanner);
        c->t_ms = e->scan->t_ms;
    }
    switch (e->kind) {
    case SCANNER_EV_SCAN:
        CU_ASSERT_PTR_NOT_NULL(e->scan);
        CU_ASSERT_PTR_NULL(e->reason);
        break;
    case SCANNER_EV_REJECTED:
        CU_ASSERT_PTR_NULL(e->scan);
        CU_ASSERT_PTR_NOT_NULL(e->reason);
        CU_ASSERT_PTR_NOT_NULL(e->raw);
        break;
    case SCANNER_EV_CONNECTED:
        CU_ASSERT_PTR_NULL(e->scan);
        CU_ASSERT_PTR_NULL(e->reason);
        break;
    case SCANNER_EV_DISCONNECTED:
        CU_ASSERT_PTR_NULL(e->scan);
        CU_ASSERT_PTR_NOT_NULL(e->reason);
        break;
    case SCANNER_EV_REFUSED:
        CU_ASSERT_PTR_NULL(e->scan);
        CU_ASSERT(e->count >= 1);
        break;
    case SCANNER_EV_OVER_BUDGET:
        CU_ASSERT_PTR_NULL(e->scan);
        CU_ASSERT((e->count == 0) == (e->reason != NULL));
        break;
    }
    if (r->reply && (e->kind == SCANNER_EV_SCAN || e->kind == SCANNER_EV_REJECTED))
        r->feedback_rc = scanner_feedback(r->s, e->scanner_id,
                                          e->kind == SCANNER_EV_SCAN ? SCANNER_REPLY_OK
                                                                     : SCANNER_REPLY_REJECT,
                                          r->reply);
    if (r->n == r->stop_at || (r->stop_on_disconnect && e->kind == SCANNER_EV_DISCONNECTED))
        loop_stop(r->loop);
}

/* Run the loop until n events in all have been recorded. */
static void run_until(struct rec *r, size_t n)
{
    if (r->n >= n)
        return;
    r->stop_at = n;
    CU_ASSERT(th_loop_run_stopped(r->loop, WATCHDOG_MS));
    r->stop_at = 0;
    CU_ASSERT_EQUAL_FATAL(r->n, n);
}

/* Let the driver read what is there. */
static void pump(struct rec *r)
{
    th_loop_run_for(r->loop, PUMP_MS);
}

/* Pump, then check that exactly n events came in all. */
static void settle(struct rec *r, size_t n)
{
    pump(r);
    CU_ASSERT_EQUAL(r->n, n);
}

static struct rec *rec_new_on(const char *host, const scan_limits_t *lim)
{
    struct rec *r = calloc(1, sizeof(*r));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    r->loop = loop_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->loop);
    config_scanner_t cfg = { .kind = CONFIG_SCANNER_TCP, .host = (char *)host, .port = 0 };
    char *err = NULL;
    r->s = scanner_new_tcp(r->loop, &cfg, lim, on_event, r, &err);
    if (!r->s) {
        loop_destroy(&r->loop);
        free(r);
        free(err);
        return NULL;
    }
    CU_ASSERT_PTR_NULL(err);
    r->port = scanner_tcp_port(r->s);
    CU_ASSERT(r->port > 0);
    return r;
}

/* A scanner on 127.0.0.1 and a free port. */
static struct rec *rec_new(const scan_limits_t *lim)
{
    struct rec *r = rec_new_on("127.0.0.1", lim);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    (void)snprintf(r->spec, sizeof(r->spec), "tcp:127.0.0.1:%u", r->port);
    CU_ASSERT_STRING_EQUAL(scanner_spec(r->s), r->spec);
    return r;
}

static void rec_free(struct rec *r)
{
    scanner_destroy(&r->s);
    CU_ASSERT_PTR_NULL(r->s);
    loop_destroy(&r->loop);
    for (size_t i = 0; i < r->n; i++) {
        struct ev *c = &r->ev[i];
        free(c->id);
        free(c->reason);
        free(c->peer);
        free(c->raw);
        free(c->text);
        free(c->scan_scanner);
    }
    free(r);
}

/* "tcp:127.0.0.1:PORT#n" in a static buffer. */
static const char *client_id(const struct rec *r, unsigned n)
{
    static char id[80];
    (void)snprintf(id, sizeof(id), "%s#%u", r->spec, n);
    return id;
}

/* ---- the test's side: scanners as plain sockets --------------------------------- */

static int connect_to(int family, uint16_t port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(fd >= 0);
    /* Blocking reads below must not hang the runner if the driver misbehaves. */
    struct timeval tv = { .tv_sec = 5 };
    CU_ASSERT_EQUAL(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    int rc;
    if (family == AF_INET) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    } else {
        struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port),
                                  .sin6_addr = in6addr_loopback };
        rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return fd;
}

static int cl_connect(const struct rec *r)
{
    return connect_to(AF_INET, r->port);
}

static void cl_send(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        CU_ASSERT_FATAL(w > 0);
        b += w;
        n -= (size_t)w;
    }
}

static void cl_puts(int fd, const char *s)
{
    cl_send(fd, s, strlen(s));
}

/* Close with RST instead of FIN (SO_LINGER 0), as a crashing scanner app would. */
static void cl_reset(int fd)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    CU_ASSERT_EQUAL(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(fd);
}

/* ---- checks -------------------------------------------------------------------- */

static void is_scan(const struct rec *r, size_t i, unsigned client, const char *text)
{
    CU_ASSERT_FATAL(i < r->n);
    const struct ev *e = &r->ev[i];
    CU_ASSERT_EQUAL(e->kind, SCANNER_EV_SCAN);
    CU_ASSERT_FATAL(e->has_scan);
    CU_ASSERT_STRING_EQUAL(e->text, text);
    CU_ASSERT_STRING_EQUAL(e->id, client_id(r, client));
    CU_ASSERT_STRING_EQUAL(e->scan_scanner, client_id(r, client));
    CU_ASSERT(e->t_ms > 0 && e->t_ms <= loop_now_ms());
    /* Without an AIM id, raw is the text: no terminator left on. */
    if (!e->aim[0]) {
        CU_ASSERT_EQUAL(e->raw_len, strlen(text));
        CU_ASSERT(memcmp(e->raw, text, e->raw_len) == 0);
    }
}

static void is_rejected(const struct rec *r, size_t i, unsigned client, const void *raw,
                        size_t raw_len, const char *reason_prefix)
{
    CU_ASSERT_FATAL(i < r->n);
    const struct ev *e = &r->ev[i];
    CU_ASSERT_EQUAL(e->kind, SCANNER_EV_REJECTED);
    CU_ASSERT_FALSE(e->has_scan);
    CU_ASSERT_STRING_EQUAL(e->id, client_id(r, client));
    CU_ASSERT_EQUAL(e->raw_len, raw_len);
    if (e->raw_len == raw_len)
        CU_ASSERT(memcmp(e->raw, raw, raw_len) == 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e->reason);
    CU_ASSERT_NSTRING_EQUAL(e->reason, reason_prefix, strlen(reason_prefix));
}

static void is_connected(const struct rec *r, size_t i, unsigned client)
{
    CU_ASSERT_FATAL(i < r->n);
    const struct ev *e = &r->ev[i];
    CU_ASSERT_EQUAL(e->kind, SCANNER_EV_CONNECTED);
    CU_ASSERT_STRING_EQUAL(e->id, client_id(r, client));
    CU_ASSERT_PTR_NOT_NULL_FATAL(e->peer);
    CU_ASSERT_NSTRING_EQUAL(e->peer, "127.0.0.1:", 10);
}

static void is_disconnected(const struct rec *r, size_t i, unsigned client,
                            const char *reason)
{
    CU_ASSERT_FATAL(i < r->n);
    const struct ev *e = &r->ev[i];
    CU_ASSERT_EQUAL(e->kind, SCANNER_EV_DISCONNECTED);
    CU_ASSERT_STRING_EQUAL(e->id, client_id(r, client));
    CU_ASSERT_PTR_NOT_NULL_FATAL(e->reason);
    CU_ASSERT_STRING_EQUAL(e->reason, reason);
}

/* ---- tests --------------------------------------------------------------------- */

/* Read from fd until `want` bytes came (or the 5 s receive timeout); NUL-terminated. */
static char *cl_read(struct rec *r, int fd, size_t want)
{
    char *buf = calloc(1, want + 1);
    size_t got = 0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    for (int i = 0; got < want && i < 200; i++) {
        pump(r);
        ssize_t n = recv(fd, buf + got, want - got, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
    }
    CU_ASSERT_EQUAL(got, want);
    return buf;
}

/* Issue 10: one reply line per scan line, to the connection that sent it. */
static void test_replies(void)
{
    struct rec *r = rec_new(NULL);
    r->reply = "taken\r\n[receipt 1 RMA-1001]: scan\tthe serial";
    int a = cl_connect(r), b = cl_connect(r);
    cl_puts(a, "RMA-1001\n");
    cl_send(a, "X\x01Y\n", 4);
    cl_puts(b, "RMA-1002\n");
    const char ok[] = "OK taken  [receipt 1 RMA-1001]: scan the serial\n";
    const char bad[] = "REJECT taken  [receipt 1 RMA-1001]: scan the serial\n";
    char *got = cl_read(r, a, strlen(ok) + strlen(bad));
    char want[256];
    (void)snprintf(want, sizeof(want), "%s%s", ok, bad);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
    got = cl_read(r, b, strlen(ok));
    CU_ASSERT_STRING_EQUAL(got, ok);
    free(got);
    CU_ASSERT_EQUAL(r->feedback_rc, 0);
    /* Nobody by that id: nothing sent. */
    CU_ASSERT_EQUAL(scanner_feedback(r->s, "tcp:127.0.0.1:1#9", SCANNER_REPLY_OK, "x"), -ENOENT);
    CU_ASSERT_STRING_EQUAL(scanner_reply_word(SCANNER_REPLY_DOUBLE), "DOUBLE");
    close(a);
    close(b);
    rec_free(r);
}

/* A client that writes and closes at once: its replies fail, its scans are all read. */
static void test_reply_to_closed_client(void)
{
    struct rec *r = rec_new(NULL);
    r->reply = "taken [no receipt open]: scan an RMA";
    r->stop_on_disconnect = true;
    int fd = cl_connect(r);
    static char big[10000];
    memset(big, 'A', sizeof(big));
    cl_send(fd, "\x01" "bin\n", 5);
    cl_send(fd, big, sizeof(big));
    cl_puts(fd, "\nRMA-00");
    close(fd);
    CU_ASSERT(th_loop_run_stopped(r->loop, WATCHDOG_MS));
    CU_ASSERT_EQUAL_FATAL(r->n, 5);
    is_rejected(r, 1, 1, "\x01" "bin", 4, "control byte");
    is_rejected(r, 3, 1, "RMA-00", 6, "connection closed before end of line");
    is_disconnected(r, 4, 1, "connection closed by the client");
    rec_free(r);
}

/*
 * A client that sends scans and never reads its replies: they pile up in the kernel,
 * then in the driver up to SCANNER_TCP_REPLY_MAX, then further replies are dropped.
 * The client keeps its connection and every scan it sends is still taken; the daemon
 * never blocks on it, and memory stays bounded.
 */
static void test_reply_not_read(void)
{
    static char big[4001];
    memset(big, 'x', sizeof(big) - 1);
    struct rec *r = rec_new(NULL);
    r->reply = big;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    CU_ASSERT_EQUAL(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(r->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    /* Lines one by one, so each gets its answer before the next is read. */
    int sent = 0, dropped = 0;
    for (int i = 0; i < 80; i++) {
        if (send(fd, "SN-1\n", 5, MSG_NOSIGNAL) != 5)
            break;
        sent++;
        size_t before = r->n;
        while (r->n == before)
            pump(r);
        dropped += r->feedback_rc == -ENOBUFS;
    }
    CU_ASSERT_EQUAL(sent, 80);
    CU_ASSERT(dropped > 0); /* the queue filled: replies were dropped, not queued */
    size_t scans = 0;
    for (size_t i = 0; i < r->n; i++) {
        CU_ASSERT_NOT_EQUAL(r->ev[i].kind, SCANNER_EV_DISCONNECTED);
        scans += r->ev[i].kind == SCANNER_EV_SCAN;
    }
    CU_ASSERT_EQUAL(scans, 80);
    CU_ASSERT_EQUAL(scanner_clients(r->s), 1);
    close(fd);
    rec_free(r);
}

static void test_lines_in_one_write(void)
{
    struct rec *r = rec_new(NULL);
    CU_ASSERT_EQUAL(scanner_clients(r->s), 0);
    int64_t before = loop_now_ms();
    int fd = cl_connect(r);
    cl_puts(fd, "RMA-1001\nRMA-1002\r\nRMA-1003\rPKG-NONE\n");
    run_until(r, 5);
    is_connected(r, 0, 1);
    CU_ASSERT_EQUAL(r->ev[0].clients, 1);
    is_scan(r, 1, 1, "RMA-1001");
    is_scan(r, 2, 1, "RMA-1002");
    is_scan(r, 3, 1, "RMA-1003");
    is_scan(r, 4, 1, "PKG-NONE");
    CU_ASSERT(r->ev[1].t_ms >= before);
    CU_ASSERT_STRING_EQUAL(r->ev[1].symbology, "unknown");
    CU_ASSERT_EQUAL(scanner_clients(r->s), 1);
    settle(r, 5);
    close(fd);
    run_until(r, 6);
    is_disconnected(r, 5, 1, "connection closed by the client");
    CU_ASSERT_EQUAL(r->ev[5].clients, 0);
    CU_ASSERT_STRING_EQUAL(r->ev[5].peer, r->ev[0].peer);
    CU_ASSERT_EQUAL(scanner_clients(r->s), 0);
    rec_free(r);
}

/* Held (backpressure): nothing is read, the bytes wait; released, they all come, in order. */
static void test_hold(void)
{
    struct rec *r = rec_new(NULL);
    int fd = cl_connect(r);
    run_until(r, 1);
    is_connected(r, 0, 1);
    CU_ASSERT_EQUAL(scanner_hold(r->s, true), 0);
    cl_puts(fd, "RMA-2001\nRMA-2002\n");
    settle(r, 1);                 /* held: read nothing */
    /* A client that connects while held is accepted, and waits too. */
    int fd2 = cl_connect(r);
    cl_puts(fd2, "RMA-2003\n");
    run_until(r, 2);
    is_connected(r, 1, 2);
    settle(r, 2);
    CU_ASSERT_EQUAL(scanner_hold(r->s, false), 0);
    run_until(r, 5);
    is_scan(r, 2, 1, "RMA-2001");
    is_scan(r, 3, 1, "RMA-2002");
    is_scan(r, 4, 2, "RMA-2003");
    /* A client that goes away while held is seen going once released (its EOF waits
     * behind its bytes, like them). */
    CU_ASSERT_EQUAL(scanner_hold(r->s, true), 0);
    cl_puts(fd2, "RMA-2004\n");
    close(fd2);
    settle(r, 5);
    CU_ASSERT_EQUAL(scanner_hold(r->s, false), 0);
    run_until(r, 7);
    is_scan(r, 5, 2, "RMA-2004");
    CU_ASSERT_EQUAL(r->ev[6].kind, SCANNER_EV_DISCONNECTED);
    close(fd);
    run_until(r, 8);
    rec_free(r);
}

static void test_line_across_writes(void)
{
    struct rec *r = rec_new(NULL);
    int fd = cl_connect(r);
    run_until(r, 1);
    const char *parts[] = { "R", "MA", "-20", "01", "9" };
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        cl_puts(fd, parts[i]);
        pump(r);
    }
    CU_ASSERT_EQUAL(r->n, 1); /* nothing before the terminator */
    cl_puts(fd, "\n");
    run_until(r, 2);
    is_scan(r, 1, 1, "RMA-20019");
    settle(r, 2);
    close(fd);
    rec_free(r);
}

static void test_terminators(void)
{
    struct rec *r = rec_new(NULL);
    int fd = cl_connect(r);
    run_until(r, 1);
    /* CR now, its LF in a later read: one terminator, no empty scan in between. */
    cl_puts(fd, "A-1\r");
    run_until(r, 2);
    is_scan(r, 1, 1, "A-1");
    cl_puts(fd, "\n");
    pump(r);
    cl_puts(fd, "A-2\n");
    run_until(r, 3);
    is_scan(r, 2, 1, "A-2");
    cl_puts(fd, "A-3\r\n");
    run_until(r, 4);
    is_scan(r, 3, 1, "A-3");
    /* Empty lines, any mix of terminators: ignored. */
    cl_puts(fd, "\r\n\r\n\n\r\r\r\n");
    pump(r);
    cl_puts(fd, "\n");
    pump(r);
    cl_puts(fd, "A-4\r");
    pump(r);
    cl_puts(fd, "\nA-5\n\rA-6\r\r\n");
    run_until(r, 7);
    is_scan(r, 4, 1, "A-4");
    is_scan(r, 5, 1, "A-5");
    is_scan(r, 6, 1, "A-6");
    settle(r, 7);
    close(fd);
    rec_free(r);
}

static void test_long_line(void)
{
    struct rec *r = rec_new(NULL);
    int fd = cl_connect(r);
    run_until(r, 1);
    size_t big = 10 * 1024;
    char *line = malloc(big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    memset(line, 'X', big);
    cl_send(fd, line, big);
    cl_puts(fd, "\r\nRMA-3001\n");
    run_until(r, 3);
    is_rejected(r, 1, 1, line, SCAN_MAX_LEN_DEFAULT, "scan longer than 512 bytes");
    CU_ASSERT_PTR_NOT_NULL(strstr(r->ev[1].reason, "cut"));
    is_scan(r, 2, 1, "RMA-3001");

    /* The same in small writes, with the loop reading in between: still one rejection. */
    for (size_t off = 0; off < big; off += 1000) {
        cl_send(fd, line + off, big - off < 1000 ? big - off : 1000);
        pump(r);
    }
    CU_ASSERT_EQUAL(r->n, 4); /* reported as soon as it passed the limit */
    is_rejected(r, 3, 1, line, SCAN_MAX_LEN_DEFAULT, "scan longer than 512 bytes");
    cl_puts(fd, "\nRMA-3002\n");
    run_until(r, 5);
    is_scan(r, 4, 1, "RMA-3002");
    CU_ASSERT_EQUAL(scanner_clients(r->s), 1);
    settle(r, 5);

    /* Over-long and never terminated: rejected once, not again at the disconnect. */
    cl_send(fd, line, 600);
    close(fd);
    run_until(r, 7);
    is_rejected(r, 5, 1, line, SCAN_MAX_LEN_DEFAULT, "scan longer than 512 bytes");
    is_disconnected(r, 6, 1, "connection closed by the client");
    settle(r, 7);
    free(line);
    rec_free(r);
}

static void test_limit_boundary(void)
{
    scan_limits_t lim = { .max_len = 8 };
    struct rec *r = rec_new(&lim);
    int fd = cl_connect(r);
    run_until(r, 1);
    cl_puts(fd, "12345678\n123456789\nABCDEFGH");
    pump(r);
    cl_puts(fd, "\r");
    run_until(r, 4);
    is_scan(r, 1, 1, "12345678");
    is_rejected(r, 2, 1, "12345678", 8, "scan longer than 8 bytes");
    is_scan(r, 3, 1, "ABCDEFGH");
    /* An AIM id counts toward the limit: scan_decode's rule, applied to the line. */
    cl_puts(fd, "]A012345\n]A0123456\n");
    run_until(r, 6);
    CU_ASSERT_EQUAL(r->ev[4].kind, SCANNER_EV_SCAN);
    is_rejected(r, 5, 1, "]A012345", 8, "scan longer than 8 bytes");
    settle(r, 6);
    close(fd);
    rec_free(r);
}

static void test_control_bytes(void)
{
    struct rec *r = rec_new(NULL);
    int fd = cl_connect(r);
    run_until(r, 1);
    cl_send(fd, "AB\0CD\n", 6);
    run_until(r, 2);
    is_rejected(r, 1, 1, "AB\0CD", 5, "control byte 0x00 at offset 2");
    cl_send(fd, "\xff\xfe\x80\x01garbage\n", 12);
    run_until(r, 3);
    is_rejected(r, 2, 1, "\xff\xfe\x80\x01garbage", 11, "invalid UTF-8 at offset 0");
    cl_puts(fd, "\x1b[2JRMA-9\n\x7f\n\tTAB\n");
    run_until(r, 6);
    is_rejected(r, 3, 1, "\x1b[2JRMA-9", 9, "control byte 0x1B at offset 0");
    is_rejected(r, 4, 1, "\x7f", 1, "control byte 0x7F at offset 0");
    is_rejected(r, 5, 1, "\tTAB", 4, "control byte 0x09 at offset 0");
    /* GS outside GS1 data is a control byte too. */
    cl_puts(fd, "SN\x1d" "123\n");
    run_until(r, 7);
    is_rejected(r, 6, 1, "SN\x1d" "123", 6, "control byte 0x1D at offset 2");
    /* Still connected, and the next good line is a scan. */
    cl_puts(fd, "RMA-4001\n");
    run_until(r, 8);
    is_scan(r, 7, 1, "RMA-4001");
    CU_ASSERT_EQUAL(scanner_clients(r->s), 1);
    settle(r, 8);
    close(fd);
    rec_free(r);
}

static void test_half_line_then_close(void)
{
    struct rec *r = rec_new(NULL);
    int fd = cl_connect(r);
    cl_puts(fd, "RMA-5001\nRMA-50");
    run_until(r, 2);
    pump(r);
    close(fd);
    run_until(r, 4);
    is_connected(r, 0, 1);
    is_scan(r, 1, 1, "RMA-5001");
    is_rejected(r, 2, 1, "RMA-50", 6, "connection closed before end of line");
    CU_ASSERT_STRING_EQUAL(r->ev[2].reason, "connection closed before end of line");
    is_disconnected(r, 3, 1, "connection closed by the client");
    settle(r, 4);
    rec_free(r);
}

static void test_connect_and_vanish(void)
{
    struct rec *r = rec_new(NULL);
    /* Gone before the driver even accepted it. */
    int fd = cl_connect(r);
    close(fd);
    run_until(r, 2);
    is_connected(r, 0, 1);
    is_disconnected(r, 1, 1, "connection closed by the client");

    /* Reset (RST) by the peer, with and without a half line. */
    fd = cl_connect(r);
    run_until(r, 3);
    is_connected(r, 2, 2);
    cl_reset(fd);
    run_until(r, 4);
    is_disconnected(r, 3, 2, strerror(ECONNRESET));

    fd = cl_connect(r);
    cl_puts(fd, "RMA-60");
    run_until(r, 5);
    pump(r);
    cl_reset(fd);
    run_until(r, 7);
    is_rejected(r, 5, 3, "RMA-60", 6, "connection closed before end of line");
    is_disconnected(r, 6, 3, strerror(ECONNRESET));
    CU_ASSERT_EQUAL(scanner_clients(r->s), 0);

    /* The listener is unaffected. */
    fd = cl_connect(r);
    cl_puts(fd, "RMA-6001\n");
    run_until(r, 9);
    is_connected(r, 7, 4);
    is_scan(r, 8, 4, "RMA-6001");
    settle(r, 9);
    close(fd);
    rec_free(r);
}

static void test_too_many_clients(void)
{
    struct rec *r = rec_new(NULL);
    int fds[SCANNER_TCP_MAX_CLIENTS];
    for (int i = 0; i < SCANNER_TCP_MAX_CLIENTS; i++)
        fds[i] = cl_connect(r);
    run_until(r, SCANNER_TCP_MAX_CLIENTS);
    CU_ASSERT_EQUAL(scanner_clients(r->s), SCANNER_TCP_MAX_CLIENTS);

    int extra = cl_connect(r);
    run_until(r, SCANNER_TCP_MAX_CLIENTS + 1);
    is_disconnected(r, SCANNER_TCP_MAX_CLIENTS, SCANNER_TCP_MAX_CLIENTS + 1,
                    "too many clients (16 connected)");
    CU_ASSERT_PTR_NOT_NULL(r->ev[SCANNER_TCP_MAX_CLIENTS].peer);
    char b;
    CU_ASSERT_EQUAL(read(extra, &b, 1), 0); /* closed by the driver */
    close(extra);
    CU_ASSERT_EQUAL(scanner_clients(r->s), SCANNER_TCP_MAX_CLIENTS);

    /* The 16 are served; when one leaves, a new one gets in. */
    cl_puts(fds[15], "RMA-7016\n");
    run_until(r, 18);
    is_scan(r, 17, 16, "RMA-7016");
    close(fds[0]);
    run_until(r, 19);
    is_disconnected(r, 18, 1, "connection closed by the client");
    int again = cl_connect(r);
    cl_puts(again, "RMA-7018\n");
    run_until(r, 21);
    is_connected(r, 19, 18);
    is_scan(r, 20, 18, "RMA-7018");
    CU_ASSERT_EQUAL(scanner_clients(r->s), SCANNER_TCP_MAX_CLIENTS);
    settle(r, 21);
    close(again);
    for (int i = 1; i < SCANNER_TCP_MAX_CLIENTS; i++)
        close(fds[i]);
    run_until(r, 21 + SCANNER_TCP_MAX_CLIENTS);
    CU_ASSERT_EQUAL(scanner_clients(r->s), 0);
    rec_free(r);
}

/*
 * Sixteen idle connections (a forgotten `nc`, a phone app in the background) do not
 * lock the real scanner out: once they have been idle a while, a new connection
 * replaces the one idle longest, and scans.
 */
static void test_idle_clients_give_way(void)
{
    struct rec *r = rec_new(NULL);
    int fds[SCANNER_TCP_MAX_CLIENTS];
    for (int i = 0; i < SCANNER_TCP_MAX_CLIENTS; i++)
        fds[i] = cl_connect(r);
    run_until(r, SCANNER_TCP_MAX_CLIENTS);
    /* Client 2..16 show some life; client 1 stays the idlest. */
    for (int i = 1; i < SCANNER_TCP_MAX_CLIENTS; i++)
        cl_puts(fds[i], "x");
    settle(r, SCANNER_TCP_MAX_CLIENTS);
    th_loop_run_for(r->loop, 5300);
    for (int i = 1; i < SCANNER_TCP_MAX_CLIENTS; i++)
        cl_puts(fds[i], "y");
    settle(r, SCANNER_TCP_MAX_CLIENTS);

    int scanner = cl_connect(r);
    cl_puts(scanner, "RMA-7017\n");
    run_until(r, SCANNER_TCP_MAX_CLIENTS + 3);
    is_disconnected(r, SCANNER_TCP_MAX_CLIENTS, 1, "idle for 5 s, replaced by a new connection");
    is_connected(r, SCANNER_TCP_MAX_CLIENTS + 1, SCANNER_TCP_MAX_CLIENTS + 1);
    is_scan(r, SCANNER_TCP_MAX_CLIENTS + 2, SCANNER_TCP_MAX_CLIENTS + 1, "RMA-7017");
    CU_ASSERT_EQUAL(scanner_clients(r->s), SCANNER_TCP_MAX_CLIENTS);
    char b;
    CU_ASSERT_EQUAL(read(fds[0], &b, 1), 0); /* closed by the driver */
    for (int i = 0; i < SCANNER_TCP_MAX_CLIENTS; i++)
        close(fds[i]);
    close(scanner);
    rec_free(r);
}

/* ---- allow= ----------------------------------------------------------------------- */

/* A free TCP port (IPv6 wildcard: free on both families). */
static uint16_t free_port(void)
{
    int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = in6addr_any };
    socklen_t sl = sizeof(sa);
    CU_ASSERT_EQUAL_FATAL(bind(probe, (struct sockaddr *)&sa, sizeof(sa)), 0);
    CU_ASSERT_EQUAL_FATAL(getsockname(probe, (struct sockaddr *)&sa, &sl), 0);
    close(probe);
    return ntohs(sa.sin6_port);
}

/* A scanner from `scanner = HEAD PORT TAIL`, with its config kept in *cfg. */
static struct rec *rec_from_line(const char *head, uint16_t port, const char *tail,
                                 config_t **cfg)
{
    char line[256], text[768];
    (void)snprintf(line, sizeof(line), "%s%u%s", head, port, tail);
    (void)snprintf(text, sizeof(text),
                   "[daemon]\ndatabase = /tmp/x.db\npolicies = /tmp\npub = tcp://127.0.0.1:7781\n"
                   "replay = tcp://127.0.0.1:7782\ncontrol = ipc:///tmp/x.ctl\n"
                   "[station dock1]\nscanner = %s\n", line);
    char *err = NULL;
    CU_ASSERT_EQUAL_FATAL(config_parse(text, strlen(text), "t.conf", "/", cfg, &err), 0);
    struct rec *r = calloc(1, sizeof(*r));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    r->loop = loop_new();
    r->s = scanner_new_tcp(r->loop, &(*cfg)->stations[0].scanners[0], NULL, on_event, r, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->s);
    r->port = scanner_tcp_port(r->s);
    (void)snprintf(r->spec, sizeof(r->spec), "%s", scanner_spec(r->s));
    return r;
}

/* Connect to 127.0.0.1:port from the source address `from` (any 127.x works on Linux). */
static int connect_from(const char *from, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = { .tv_sec = 5 };
    CU_ASSERT_EQUAL(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    struct sockaddr_in src = { .sin_family = AF_INET };
    CU_ASSERT_EQUAL_FATAL(inet_pton(AF_INET, from, &src.sin_addr), 1);
    CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* The driver closed fd: a read sees EOF (or a reset), not a timeout. */
static bool closed_by_driver(struct rec *r, int fd)
{
    pump(r);
    char b;
    ssize_t n = read(fd, &b, 1);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

/*
 * allow=: a peer outside the networks is closed at accept, without a connection
 * number and without an event per connection: one REFUSED with a count, at the first.
 */
static void test_allow(void)
{
    config_t *cfg = NULL;
    struct rec *r = rec_from_line("tcp:127.0.0.1:", free_port(),
                                  ",allow=127.0.0.2/32;fd00::/8", &cfg);
    int out = connect_from("127.0.0.1", r->port);
    run_until(r, 1);
    CU_ASSERT_EQUAL(r->ev[0].kind, SCANNER_EV_REFUSED);
    CU_ASSERT_EQUAL(r->ev[0].count, 1);
    CU_ASSERT_STRING_EQUAL(r->ev[0].id, r->spec);
    CU_ASSERT(r->ev[0].peer && strncmp(r->ev[0].peer, "127.0.0.1:", 10) == 0);
    CU_ASSERT(closed_by_driver(r, out));
    close(out);
    CU_ASSERT_EQUAL(scanner_clients(r->s), 0);

    /* More refusals in the same minute: counted, not reported one by one. */
    for (int i = 0; i < 3; i++) {
        out = connect_from("127.0.0.1", r->port);
        CU_ASSERT(closed_by_driver(r, out));
        close(out);
    }
    settle(r, 1);

    /* An allowed peer is a client like any other, and the first connection (#1). */
    int in = connect_from("127.0.0.2", r->port);
    run_until(r, 2);
    CU_ASSERT_EQUAL(r->ev[1].kind, SCANNER_EV_CONNECTED);
    CU_ASSERT_STRING_EQUAL(r->ev[1].id, client_id(r, 1));
    cl_puts(in, "RMA-ALLOWED\r\n");
    run_until(r, 3);
    CU_ASSERT_EQUAL(r->ev[2].kind, SCANNER_EV_SCAN);
    CU_ASSERT_STRING_EQUAL(r->ev[2].text, "RMA-ALLOWED");
    close(in);
    rec_free(r);
    config_destroy(&cfg);

    /* On the IPv6 wildcard an IPv4 peer arrives as ::ffff:a.b.c.d: matched as IPv4. */
    r = rec_from_line("tcp:[::]:", free_port(), ",allow=127.0.0.0/8", &cfg);
    in = connect_to(AF_INET, r->port);
    run_until(r, 1);
    CU_ASSERT_EQUAL(r->ev[0].kind, SCANNER_EV_CONNECTED);
    out = connect_to(AF_INET6, r->port);      /* ::1 is not in 127.0.0.0/8 */
    run_until(r, 2);
    CU_ASSERT_EQUAL(r->ev[1].kind, SCANNER_EV_REFUSED);
    CU_ASSERT(r->ev[1].peer && strncmp(r->ev[1].peer, "[::1]:", 6) == 0);
    CU_ASSERT(closed_by_driver(r, out));
    CU_ASSERT_EQUAL(scanner_clients(r->s), 1);
    close(out);
    close(in);
    rec_free(r);
    config_destroy(&cfg);
}

/* idle_timeout=S closes a client that sent nothing for S seconds; activity keeps it. */
static void test_idle_timeout(void)
{
    /* A free port, for a config (which takes no port 0). */
    int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    CU_ASSERT_EQUAL_FATAL(bind(probe, (struct sockaddr *)&sa, sizeof(sa)), 0);
    CU_ASSERT_EQUAL_FATAL(getsockname(probe, (struct sockaddr *)&sa, &sl), 0);
    close(probe);
    char text[512];
    (void)snprintf(text, sizeof(text),
                   "[daemon]\ndatabase = /tmp/x.db\npolicies = /tmp\npub = tcp://127.0.0.1:7781\n"
                   "replay = tcp://127.0.0.1:7782\ncontrol = ipc:///tmp/x.ctl\n"
                   "[station dock1]\nscanner = tcp:127.0.0.1:%u,idle_timeout=1\n",
                   ntohs(sa.sin_port));
    config_t *cfg = NULL;
    char *err = NULL;
    CU_ASSERT_EQUAL_FATAL(config_parse(text, strlen(text), "t.conf", "/", &cfg, &err), 0);
    struct rec *r = calloc(1, sizeof(*r));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    r->loop = loop_new();
    r->s = scanner_new_tcp(r->loop, &cfg->stations[0].scanners[0], NULL, on_event, r, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->s);
    r->port = scanner_tcp_port(r->s);
    (void)snprintf(r->spec, sizeof(r->spec), "tcp:127.0.0.1:%u", r->port);
    CU_ASSERT_STRING_EQUAL(scanner_spec(r->s), r->spec); /* options are not in ids */

    int quiet_fd = cl_connect(r), busy_fd = cl_connect(r);
    run_until(r, 2);
    /* The busy one sends a byte every 300 ms; the quiet one nothing. */
    for (int i = 0; i < 6; i++) {
        cl_puts(busy_fd, "z");
        th_loop_run_for(r->loop, 300);
    }
    CU_ASSERT_FATAL(r->n >= 3);
    CU_ASSERT_EQUAL(r->ev[2].kind, SCANNER_EV_DISCONNECTED);
    CU_ASSERT_STRING_EQUAL(r->ev[2].id, client_id(r, 1));
    CU_ASSERT_NSTRING_EQUAL(r->ev[2].reason, "idle for 1 s (idle_timeout)", 27);
    CU_ASSERT_EQUAL(scanner_clients(r->s), 1);
    close(quiet_fd);
    close(busy_fd);
    rec_free(r);
    config_destroy(&cfg);

    /* A bad value is a config error that names the option. */
    static const char bad[] =
        "[daemon]\ndatabase = /tmp/x.db\npolicies = /tmp\npub = tcp://127.0.0.1:7781\n"
        "replay = tcp://127.0.0.1:7782\ncontrol = ipc:///tmp/x.ctl\n"
        "[station dock1]\nscanner = tcp:127.0.0.1:7790,idle_timeout=-3\n";
    CU_ASSERT_EQUAL(config_parse(bad, strlen(bad), "t.conf", "/", &cfg, &err), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(err);
    if (err)
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "idle_timeout"));
    free(err);
}

/*
 * Issue 14: a client pouring lines gets its burst, then the rate; the rest is answered
 * REJECT and reported once when it starts and once with the count, never one by one.
 */
static void test_budget(void)
{
    int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    CU_ASSERT_EQUAL_FATAL(bind(probe, (struct sockaddr *)&sa, sizeof(sa)), 0);
    CU_ASSERT_EQUAL_FATAL(getsockname(probe, (struct sockaddr *)&sa, &sl), 0);
    close(probe);
    char text[512];
    (void)snprintf(text, sizeof(text),
                   "[daemon]\ndatabase = /tmp/x.db\npolicies = /tmp\npub = tcp://127.0.0.1:7781\n"
                   "replay = tcp://127.0.0.1:7782\ncontrol = ipc:///tmp/x.ctl\n"
                   "[station dock1]\nscanner = tcp:127.0.0.1:%u,rate=1,burst=3\n",
                   ntohs(sa.sin_port));
    config_t *cfg = NULL;
    char *err = NULL;
    CU_ASSERT_EQUAL_FATAL(config_parse(text, strlen(text), "t.conf", "/", &cfg, &err), 0);
    struct rec *r = calloc(1, sizeof(*r));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    r->loop = loop_new();
    r->s = scanner_new_tcp(r->loop, &cfg->stations[0].scanners[0], NULL, on_event, r, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->s);
    r->port = scanner_tcp_port(r->s);
    (void)snprintf(r->spec, sizeof(r->spec), "tcp:127.0.0.1:%u", r->port);
    r->reply = "taken";

    int fd = cl_connect(r);
    run_until(r, 1);
    cl_puts(fd, "A1\nA2\nA3\nA4\nA5\nA6\nA7\nA8\nA9\nA10\n");
    /* connected, 3 scans, the start of the run of refusals */
    run_until(r, 5);
    for (size_t i = 1; i < 4; i++)
        CU_ASSERT_EQUAL(r->ev[i].kind, SCANNER_EV_SCAN);
    CU_ASSERT_EQUAL(r->ev[4].kind, SCANNER_EV_OVER_BUDGET);
    CU_ASSERT_EQUAL(r->ev[4].count, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->ev[4].reason);
    CU_ASSERT_STRING_EQUAL(r->ev[4].reason, "over the scan budget of 1 a second (burst 3)");
    const char ok[] = "OK taken\n";
    const char no[] = "REJECT not stored: over the scan budget of 1 a second (burst 3); "
                      "scan it again\n";
    char *got = cl_read(r, fd, 3 * strlen(ok) + 7 * strlen(no));
    CU_ASSERT_PTR_NOT_NULL(strstr(got, no));
    CU_ASSERT_EQUAL(strncmp(got, "OK taken\nOK taken\nOK taken\nREJECT", 33), 0);
    free(got);
    settle(r, 5);                      /* nothing per refused line */
    /* A second without refusals later, one more fits: the run ends with its count,
     * then the scan. */
    th_loop_run_for(r->loop, 1100);
    cl_puts(fd, "B1\n");
    run_until(r, 7);
    CU_ASSERT_EQUAL(r->ev[5].kind, SCANNER_EV_OVER_BUDGET);
    CU_ASSERT_EQUAL(r->ev[5].count, 7);
    CU_ASSERT_EQUAL(r->ev[6].kind, SCANNER_EV_SCAN);
    close(fd);
    rec_free(r);
    config_destroy(&cfg);
}

static void test_two_clients_interleaved(void)
{
    struct rec *r = rec_new(NULL);
    int a = cl_connect(r);
    run_until(r, 1);
    int b = cl_connect(r);
    run_until(r, 2);
    is_connected(r, 0, 1);
    is_connected(r, 1, 2);
    cl_puts(a, "RMA-AA");
    pump(r);
    cl_puts(b, "SN-B");
    pump(r);
    cl_puts(a, "01\r\nSN-");
    run_until(r, 3);
    is_scan(r, 2, 1, "RMA-AA01");
    cl_puts(b, "22\n");
    run_until(r, 4);
    is_scan(r, 3, 2, "SN-B22");
    cl_puts(a, "A\n");
    run_until(r, 5);
    is_scan(r, 4, 1, "SN-A");
    /* One client's garbage does not touch the other's half line. */
    cl_puts(b, "PKG-");
    pump(r);
    cl_send(a, "\0\n", 2);
    run_until(r, 6);
    is_rejected(r, 5, 1, "\0", 1, "control byte 0x00");
    cl_puts(b, "NONE\n");
    run_until(r, 7);
    is_scan(r, 6, 2, "PKG-NONE");
    settle(r, 7);
    close(a);
    close(b);
    run_until(r, 9);
    rec_free(r);
}

static void test_aim_and_gs1(void)
{
    struct rec *r = rec_new(NULL);
    int fd = cl_connect(r);
    run_until(r, 1);
    /* GS1-128: (01) GTIN, (21) serial, GS, (10) batch. */
    const char *gs1 = "]C1" "0109506000134352" "21SN-0042" "\x1d" "10LOT7";
    cl_puts(fd, gs1);
    cl_puts(fd, "\r\n]E04006381333931\n\x1d" "0109506000134352\n");
    run_until(r, 4);
    const struct ev *e = &r->ev[1];
    CU_ASSERT_EQUAL(e->kind, SCANNER_EV_SCAN);
    CU_ASSERT_STRING_EQUAL(e->aim, "]C1");
    CU_ASSERT_STRING_EQUAL(e->symbology, "GS1-128");
    CU_ASSERT(e->gs1);
    CU_ASSERT_STRING_EQUAL(e->text, "0109506000134352" "21SN-0042" "\x1d" "10LOT7");
    CU_ASSERT_EQUAL(e->raw_len, strlen(gs1));
    CU_ASSERT(memcmp(e->raw, gs1, strlen(gs1)) == 0);
    CU_ASSERT_STRING_EQUAL(e->id, client_id(r, 1));
    e = &r->ev[2];
    CU_ASSERT_EQUAL(e->kind, SCANNER_EV_SCAN);
    CU_ASSERT_STRING_EQUAL(e->aim, "]E0");
    CU_ASSERT_STRING_EQUAL(e->symbology, "EAN-13/UPC");
    CU_ASSERT_STRING_EQUAL(e->text, "4006381333931");
    /* FNC1 as a leading GS, no AIM id: GS1 data all the same. */
    is_scan(r, 3, 1, "\x1d" "0109506000134352");
    CU_ASSERT(r->ev[3].gs1);
    /* A bad check digit is scan_decode's rejection, passed through. */
    cl_puts(fd, "]E04006381333932\n");
    run_until(r, 5);
    is_rejected(r, 4, 1, "]E04006381333932", 16, "EAN-13 check digit");
    settle(r, 5);
    close(fd);
    rec_free(r);
}

static void test_destroy_with_clients(void)
{
    struct rec *r = rec_new(NULL);
    int fds[3];
    for (int i = 0; i < 3; i++)
        fds[i] = cl_connect(r);
    run_until(r, 3);
    cl_puts(fds[1], "RMA-HALF");
    cl_send(fds[2], "XXXXXXXXXX", 10);
    pump(r);
    CU_ASSERT_EQUAL(r->n, 3);
    CU_ASSERT_EQUAL(scanner_clients(r->s), 3);
    scanner_destroy(&r->s);
    CU_ASSERT_PTR_NULL(r->s);
    scanner_destroy(&r->s);
    CU_ASSERT_EQUAL(r->n, 3); /* destroy reports nothing */
    /* Every client sees its connection end, and the port is closed. */
    for (int i = 0; i < 3; i++) {
        char b;
        CU_ASSERT(read(fds[i], &b, 1) <= 0);
        close(fds[i]);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(r->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CU_ASSERT_EQUAL(connect(fd, (struct sockaddr *)&a, sizeof(a)), -1);
    close(fd);
    rec_free(r);
}

static void test_bind_errors(void)
{
    struct rec *r = rec_new(NULL);
    char spec[64];
    (void)snprintf(spec, sizeof(spec), "tcp:127.0.0.1:%u", r->port);
    config_scanner_t cfg = { .kind = CONFIG_SCANNER_TCP, .spec = spec, .host = "127.0.0.1",
                             .port = r->port };

    /* The port is taken (SO_REUSEADDR does not allow two listeners). */
    char *err = NULL;
    errno = 0;
    scanner_t *s = scanner_new_tcp(r->loop, &cfg, NULL, on_event, r, &err);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_EQUAL(errno, EADDRINUSE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(err);
    char want[128];
    (void)snprintf(want, sizeof(want), "%s: %s", spec, strerror(EADDRINUSE));
    CU_ASSERT_STRING_EQUAL(err, want);
    free(err);
    CU_ASSERT_PTR_NULL(scanner_new_tcp(r->loop, &cfg, NULL, on_event, r, NULL));

    /* Once free, the same config binds, keeps its spec and reports nothing. */
    scanner_destroy(&r->s);
    s = scanner_new_tcp(r->loop, &cfg, NULL, on_event, r, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NULL(err);
    CU_ASSERT_STRING_EQUAL(scanner_spec(s), spec);
    CU_ASSERT_EQUAL(scanner_tcp_port(s), r->port);
    CU_ASSERT_EQUAL(scanner_clients(s), 0);
    r->s = s;
    settle(r, 0);

    /* Bad host, wrong kind, missing arguments. */
    config_scanner_t bad = { .kind = CONFIG_SCANNER_TCP, .spec = "tcp:scanner7:7790",
                             .host = "scanner7", .port = 7790 };
    CU_ASSERT_PTR_NULL(scanner_new_tcp(r->loop, &bad, NULL, on_event, r, &err));
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(err);
    CU_ASSERT_NSTRING_EQUAL(err, "tcp:scanner7:7790: bad host", 27);
    free(err);
    config_scanner_t usb = { .kind = CONFIG_SCANNER_USB, .spec = "usb:05e0:1200" };
    CU_ASSERT_PTR_NULL(scanner_new_tcp(r->loop, &usb, NULL, on_event, r, &err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(err);
    CU_ASSERT_STRING_EQUAL(err, "usb:05e0:1200: not a tcp scanner");
    free(err);
    CU_ASSERT_PTR_NULL(scanner_new_tcp(NULL, &cfg, NULL, on_event, r, &err));
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(err);
    CU_ASSERT_NSTRING_EQUAL(err, spec, strlen(spec));
    free(err);
    CU_ASSERT_PTR_NULL(scanner_new_tcp(r->loop, &cfg, NULL, NULL, r, NULL));
    CU_ASSERT_PTR_NULL(scanner_new_tcp(r->loop, NULL, NULL, on_event, r, NULL));

    scanner_destroy(NULL);
    CU_ASSERT_PTR_NULL(scanner_spec(NULL));
    CU_ASSERT_EQUAL(scanner_clients(NULL), 0);
    CU_ASSERT_EQUAL(scanner_tcp_port(NULL), 0);
    rec_free(r);
}

static void test_ipv6_and_localhost(void)
{
    struct rec *r = rec_new_on("::1", NULL);
    bool have6 = r != NULL;
    if (!have6) {
        /* No IPv6 on this host: only the localhost fallback below applies. */
        fprintf(stderr, "\n  (no IPv6 loopback here: ::1 not tested) ");
    } else {
        (void)snprintf(r->spec, sizeof(r->spec), "tcp:[::1]:%u", r->port);
        CU_ASSERT_STRING_EQUAL(scanner_spec(r->s), r->spec);
        int fd = connect_to(AF_INET6, r->port);
        cl_puts(fd, "RMA-V6\n");
        run_until(r, 2);
        CU_ASSERT_EQUAL(r->ev[0].kind, SCANNER_EV_CONNECTED);
        CU_ASSERT_NSTRING_EQUAL(r->ev[0].peer, "[::1]:", 6);
        is_scan(r, 1, 1, "RMA-V6");
        close(fd);
        run_until(r, 3);
        rec_free(r);
    }

    /* localhost: 127.0.0.1 and ::1 on one port, one client numbering. */
    r = rec_new_on("localhost", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    (void)snprintf(r->spec, sizeof(r->spec), "tcp:localhost:%u", r->port);
    CU_ASSERT_STRING_EQUAL(scanner_spec(r->s), r->spec);
    int a = connect_to(AF_INET, r->port);
    cl_puts(a, "RMA-L4\n");
    run_until(r, 2);
    is_scan(r, 1, 1, "RMA-L4");
    size_t n = 2;
    if (have6) {
        int b = connect_to(AF_INET6, r->port);
        cl_puts(b, "RMA-L6\n");
        run_until(r, 4);
        is_scan(r, 3, 2, "RMA-L6");
        CU_ASSERT_EQUAL(scanner_clients(r->s), 2);
        close(b);
        n = 5;
    }
    close(a);
    run_until(r, n + 1);
    rec_free(r);
}

/* The highest fd open below limit (the fds a tool like valgrind keeps above it aside). */
static int highest_fd_below(rlim_t limit)
{
    int high = -1;
    DIR *d = opendir("/proc/self/fd");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long fd = strtol(de->d_name, &end, 10);
        if (*end == '\0' && end != de->d_name && (rlim_t)fd < limit && fd > high)
            high = (int)fd;
    }
    closedir(d);
    return high;
}

/*
 * Out of fds when a connection arrives: the driver pauses accepting (instead of
 * spinning on a listener that stays readable), says so, and takes the connection
 * once fds are available again. The test lowers RLIMIT_NOFILE just above the fds in
 * use and fills every free slot below it, so accept() fails with EMFILE; lowering the
 * limit below a used fd instead would make valgrind refuse our own listening fd.
 */
static void test_accept_out_of_fds(void)
{
    struct rec *r = rec_new(NULL);
    int fd = cl_connect(r);
    struct rlimit old;
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_NOFILE, &old), 0);
    /* Inherited fds can sit anywhere (a parent's pipe at 251): fill up to the highest. */
    rlim_t lim = (rlim_t)highest_fd_below(old.rlim_cur) + 8;
    struct rlimit low = { .rlim_cur = lim, .rlim_max = old.rlim_max };
    if (lim > old.rlim_cur || lim > 65536 || setrlimit(RLIMIT_NOFILE, &low) < 0) {
        fprintf(stderr, "\n  (cannot lower RLIMIT_NOFILE to %lu; not tested) ",
                (unsigned long)lim);
        close(fd);
        rec_free(r);
        return;
    }
    int *fill = malloc(lim * sizeof(*fill));
    size_t nfill = 0;
    int err = fill ? 0 : ENOMEM;
    while (fill && nfill < lim) {
        int d = dup(0);
        if (d < 0) {
            err = errno;
            break;
        }
        fill[nfill++] = d;
    }
    bool full = err == EMFILE;

    /* Run by hand: the limit must be restored before any fatal assertion. */
    int stopped = 1;
    if (full) {
        r->stop_at = 1;
        stopped = th_loop_run_stopped(r->loop, WATCHDOG_MS);
        r->stop_at = 0;
    }
    for (size_t i = 0; i < nfill; i++)
        close(fill[i]);
    free(fill);
    CU_ASSERT_EQUAL(setrlimit(RLIMIT_NOFILE, &old), 0);
    CU_ASSERT_EQUAL(err, EMFILE);
    CU_ASSERT(stopped);
    CU_ASSERT_EQUAL_FATAL(r->n, full ? 1 : 0);
    if (full) {
        const struct ev *e = &r->ev[0];
        CU_ASSERT_EQUAL(e->kind, SCANNER_EV_DISCONNECTED);
        CU_ASSERT_STRING_EQUAL(e->id, r->spec);
        CU_ASSERT_PTR_NOT_NULL(strstr(e->reason, strerror(EMFILE)));
    }
    /*
     * The kernel keeps a connection accept() failed on in the queue, and it comes in
     * now. Valgrind instead closes the fd the kernel gave out beyond its limit, so
     * that connection is gone: then a new one shows that accepting resumed.
     */
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    if (poll(&pfd, 1, 100) == 1) {
        close(fd);
        fd = cl_connect(r);
    }
    cl_puts(fd, "RMA-8001\n");
    run_until(r, r->n + 2);
    is_connected(r, r->n - 2, 1);
    is_scan(r, r->n - 1, 1, "RMA-8001");
    settle(r, full ? 3 : 2);
    close(fd);
    rec_free(r);
}

int suite_tcp(void)
{
    CU_pSuite s = CU_add_suite("tcp", NULL, NULL);
    if (!s || !CU_add_test(s, "several lines in one write", test_lines_in_one_write) ||
        !CU_add_test(s, "one line across many writes", test_line_across_writes) ||
        !CU_add_test(s, "held: nothing read until released (backpressure)", test_hold) ||
        !CU_add_test(s, "CR, LF, CRLF (split too) and empty lines", test_terminators) ||
        !CU_add_test(s, "10 kB line: one rejection, then scans", test_long_line) ||
        !CU_add_test(s, "limit boundary (max_len 8)", test_limit_boundary) ||
        !CU_add_test(s, "NUL, binary and control bytes", test_control_bytes) ||
        !CU_add_test(s, "half line then close", test_half_line_then_close) ||
        !CU_add_test(s, "connect and vanish (FIN, RST)", test_connect_and_vanish) ||
        !CU_add_test(s, "17th client refused", test_too_many_clients) ||
        !CU_add_test(s, "two clients interleaving", test_two_clients_interleaved) ||
        !CU_add_test(s, "AIM ids and GS1 data passed through", test_aim_and_gs1) ||
        !CU_add_test(s, "destroy with clients connected", test_destroy_with_clients) ||
        !CU_add_test(s, "bind errors and bad configs", test_bind_errors) ||
        !CU_add_test(s, "IPv6 and localhost", test_ipv6_and_localhost) ||
        !CU_add_test(s, "accept out of fds pauses, then resumes", test_accept_out_of_fds) ||
        !CU_add_test(s, "a reply line per scan, to its connection", test_replies) ||
        !CU_add_test(s, "a client not reading its replies keeps its connection", test_reply_not_read) ||
        !CU_add_test(s, "idle clients give way to a new scanner", test_idle_clients_give_way) ||
        !CU_add_test(s, "idle_timeout closes a silent client", test_idle_timeout) ||
        !CU_add_test(s, "allow= refuses other peers at accept, counted once", test_allow) ||
        !CU_add_test(s, "a scan budget: burst, rate, the rest refused", test_budget) ||
        !CU_add_test(s, "replies to a client that closed: its scans still read",
                     test_reply_to_closed_client))
        return -1;
    return 0;
}
