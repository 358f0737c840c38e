/*
 * The event bus (daemon/bus.h) with real parts: a SQLite outbox in a temp dir, the
 * real loop, tcp sockets on free loopback ports, and two kinds of client.
 *
 * The independent client is Debian's python3-zmq (tests/zmq_client.py), run while
 * the loop serves from a second thread: the test thread only waits for the child,
 * and touches the bus and the database again only after the loop thread has
 * stopped. The caps are tested with C DEALER sockets registered with the same loop
 * (one thread), with the replays held back by an open transaction so that the order
 * of arrival cannot change what is tested.
 *
 * No assertion depends on timing: waits are bounded by watchdogs and end as soon as
 * what they wait for has happened.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "daemon/bus.h"
#include "daemon/curve.h"
#include "db/maint.h"
#include "proto/control.h"
#include <sys/stat.h>
#include <unistd.h>
#include "tests/helpers.h"
#include "tests/suites.h"

#define WATCHDOG_MS 30000
#define PYTHON "/usr/bin/python3"
#define CLIENT "tests/zmq_client.py"

static const char *const topics[] = { "scan.accepted", "receipt.opened", "inspection.completed" };

/* ---- fixture ------------------------------------------------------------------------ */

struct fx {
    char *dir;
    db_t *db;
    void *zctx;
    loop_t *loop;
    bus_t *bus;
    const char *pub, *replay;     /* bound endpoints */
};

static void fx_open(struct fx *f)
{
    char *err = NULL;
    char path[4096];
    memset(f, 0, sizeof(*f));
    f->dir = th_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->dir);
    snprintf(path, sizeof(path), "%s/rmad.db", f->dir);
    CU_ASSERT_EQUAL_FATAL(db_open(path, &f->db, &err), 0);
    f->zctx = zmq_ctx_new();
    f->loop = loop_new();
    CU_ASSERT_FATAL(f->zctx && f->loop);
    f->bus = bus_new(f->zctx, f->loop, f->db, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", &err);
    if (!f->bus)
        fprintf(stderr, "\n  bus_new: %s\n", err ? err : "?");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->bus);
    CU_ASSERT_PTR_NULL(err);
    bus_endpoints(f->bus, &f->pub, &f->replay);
    CU_ASSERT_FATAL(f->pub && strncmp(f->pub, "tcp://127.0.0.1:", 16) == 0);
    CU_ASSERT_FATAL(f->replay && strncmp(f->replay, "tcp://127.0.0.1:", 16) == 0);
    CU_ASSERT_STRING_NOT_EQUAL(f->pub, f->replay);
}

static void fx_close(struct fx *f)
{
    bus_destroy(&f->bus);
    CU_ASSERT_PTR_NULL(f->bus);
    loop_destroy(&f->loop);
    zmq_ctx_term(f->zctx);
    db_close(&f->db);
    th_rm_rf(f->dir);
    free(f->dir);
}

/* The body stored for event seq, as a daemon would write it. */
static void event_body(uint64_t seq, char *buf, size_t len)
{
    snprintf(buf, len, "{\"v\":1,\"seq\":%llu,\"type\":\"%s\",\"time\":\"2026-11-21T09:30:00.000Z\","
             "\"station\":\"dock1\"}", (unsigned long long)seq, topics[seq % 3]);
}

/* Commit n more events to the outbox, in one transaction. */
static void add_events(db_t *db, unsigned n)
{
    char body[256];
    CU_ASSERT_EQUAL_FATAL(db_begin(db), 0);
    for (unsigned i = 0; i < n; i++) {
        uint64_t seq;
        CU_ASSERT_EQUAL_FATAL(db_outbox_next_seq(db, &seq), 0);
        event_body(seq, body, sizeof(body));
        CU_ASSERT_EQUAL_FATAL(db_outbox_insert(db, seq, topics[seq % 3], body), 0);
    }
    CU_ASSERT_EQUAL_FATAL(db_commit(db), 0);
}

/* ---- the loop on a second thread, for the python client ------------------------------ */

/* Run the python client with these arguments while the loop serves; expect `status`. */
static th_proc_t python_expect(struct fx *f, char *const args[], int status)
{
    char *argv[40] = { PYTHON, CLIENT };
    int n = 2;
    for (; args[n - 2]; n++) {
        CU_ASSERT_FATAL(n < 39);
        argv[n] = args[n - 2];
    }
    argv[n] = NULL;
    th_serve_t s;
    th_serve_start(&s, f->loop);
    th_proc_t p = th_run_proc(argv, NULL);
    th_serve_stop(&s);
    if (p.status != status)
        fprintf(stderr, "\n  zmq_client.py %s: exit %d\n%s%s", args[0], p.status, p.out, p.err);
    CU_ASSERT_EQUAL(p.status, status);
    return p;
}

static th_proc_t python(struct fx *f, char *const args[])
{
    return python_expect(f, args, 0);
}

/* Split output into lines (in place). Returns the count; at most max kept. */
static size_t split_lines(char *out, char **lines, size_t max)
{
    size_t n = 0;
    char *s = out;
    while (*s) {
        char *nl = strchr(s, '\n');
        if (n < max)
            lines[n] = s;
        n++;
        if (!nl)
            break;
        *nl = '\0';
        s = nl + 1;
    }
    return n;
}

/* ---- live events -------------------------------------------------------------------- */

struct ticker {
    bus_t *bus;
    uint64_t seq;
    int errors;
};

/* Publish a new event every few ms while the python subscriber joins and listens. */
static int64_t tick(loop_t *loop, uint64_t id, void *data)
{
    struct ticker *t = data;
    char body[256];
    (void)loop;
    (void)id;
    t->seq++;
    event_body(t->seq, body, sizeof(body));
    if (bus_publish(t->bus, topics[t->seq % 3], body) != 0)
        t->errors++;
    return 5;
}

static void test_publish(void)
{
    struct fx f;
    fx_open(&f);
    struct ticker t = { .bus = f.bus };
    uint64_t id = loop_add_timer(f.loop, 0, tick, &t);
    CU_ASSERT_FATAL(id > 0);

    char *args[] = { "sub", (char *)f.pub, "20", NULL };
    th_proc_t p = python(&f, args);
    CU_ASSERT_EQUAL(loop_del_timer(f.loop, id), 0);
    CU_ASSERT_EQUAL(p.status, 0);
    CU_ASSERT_EQUAL(t.errors, 0);

    /* Twenty two-frame messages, [topic][body], with consecutive seqs (a subscriber that
     * keeps up loses nothing; it may join late, so the first seq is whatever came). */
    char *lines[32];
    size_t n = split_lines(p.out, lines, 32);
    CU_ASSERT_EQUAL(n, 20);
    unsigned long long first = 0;
    for (size_t i = 0; i < n && i < 20; i++) {
        char topic[64];
        unsigned long long seq;
        CU_ASSERT_EQUAL(sscanf(lines[i], "%63s {\"v\":1,\"seq\":%llu,", topic, &seq), 2);
        if (i == 0)
            first = seq;
        CU_ASSERT_EQUAL(seq, first + i);
        char want[320], body[256];
        event_body(seq, body, sizeof(body));
        snprintf(want, sizeof(want), "%s %s", topics[seq % 3], body);
        CU_ASSERT_STRING_EQUAL(lines[i], want);
    }
    CU_ASSERT(bus_stats(f.bus).published >= 20);
    th_proc_free(&p);

    /* Only after commit, and never an empty message. */
    CU_ASSERT_EQUAL(db_begin(f.db), 0);
    CU_ASSERT_EQUAL(bus_publish(f.bus, "scan.accepted", "{\"seq\":1}"), -EINPROGRESS);
    CU_ASSERT_EQUAL(db_rollback(f.db), 0);
    CU_ASSERT_EQUAL(bus_publish(f.bus, "", "{}"), -EINVAL);
    CU_ASSERT_EQUAL(bus_publish(f.bus, "x", ""), -EINVAL);
    CU_ASSERT_EQUAL(bus_publish(NULL, "x", "{}"), -EINVAL);
    fx_close(&f);
}

/* ---- replay through the python client --------------------------------------------- */

#define NEVENTS 1200

/* Lines [first..] of out are exactly events from..to, then replay.end with last_seq. */
static void check_replay(char *out, uint64_t from, uint64_t to, uint64_t last_seq)
{
    static char *lines[NEVENTS + 8];
    size_t n = split_lines(out, lines, NEVENTS + 8);
    size_t want_n = (to >= from ? to - from + 1 : 0) + 1;
    CU_ASSERT_EQUAL(n, want_n);
    if (n != want_n)
        return;
    char want[320], body[256];
    for (uint64_t s = from; s <= to; s++) {
        event_body(s, body, sizeof(body));
        snprintf(want, sizeof(want), "%s %s", topics[s % 3], body);
        if (strcmp(lines[s - from], want) != 0) {
            CU_FAIL("replayed event differs");
            fprintf(stderr, "\n  line %llu: %s\n  want: %s\n", (unsigned long long)(s - from),
                    lines[s - from], want);
            return;
        }
    }
    snprintf(want, sizeof(want), "replay.end {\"last_seq\":%llu}", (unsigned long long)last_seq);
    CU_ASSERT_STRING_EQUAL(lines[n - 1], want);
}

static void test_replay(void)
{
    struct fx f;
    fx_open(&f);
    add_events(f.db, NEVENTS);

    struct { const char *from; uint64_t a, b; } cases[] = {
        { "1", 1, NEVENTS },                 /* everything, in BUS_REPLAY_BATCH batches */
        { "0", 1, NEVENTS },                 /* 0 reads as 1 */
        { "1150", 1150, NEVENTS },
        { "1200", NEVENTS, NEVENTS },
        { "1201", 1, 0 },                    /* nothing yet: replay.end alone */
        { "99999999999", 1, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *args[] = { "replay", (char *)f.replay, (char *)cases[i].from, NULL };
        th_proc_t p = python(&f, args);
        CU_ASSERT_EQUAL(p.status, 0);
        check_replay(p.out, cases[i].a, cases[i].b, NEVENTS);
        th_proc_free(&p);
    }
    bus_stats_t st = bus_stats(f.bus);
    CU_ASSERT_EQUAL(st.replays_done, 6);
    CU_ASSERT_EQUAL(st.bad_requests, 0);
    /* 1200 events are at least three batches each for the first two replays. */
    CU_ASSERT(st.batches >= 2 * ((NEVENTS + BUS_REPLAY_BATCH - 1) / BUS_REPLAY_BATCH));
    CU_ASSERT_EQUAL(bus_replays_active(f.bus), 0);

    /* A REQ client takes one reply: enough to learn the last seq. */
    char *req[] = { "replay", (char *)f.replay, "5000", "req", NULL };
    th_proc_t p = python(&f, req);
    CU_ASSERT_EQUAL(p.status, 0);
    CU_ASSERT_STRING_EQUAL(p.out, "replay.end {\"last_seq\":1200}\n");
    th_proc_free(&p);

    /* Events committed later are replayed too: the seq goes on. */
    add_events(f.db, 2);
    char *more[] = { "replay", (char *)f.replay, "1201", NULL };
    p = python(&f, more);
    check_replay(p.out, 1201, 1202, 1202);
    th_proc_free(&p);
    fx_close(&f);
}

/* Garbage gets exactly one error reply each; a good request after it still works. */
static void test_replay_garbage(void)
{
    struct fx f;
    fx_open(&f);
    add_events(f.db, 3);
    char *args[] = {
        "raw", (char *)f.replay, "dealer", "replay",
        "[\"not json\"]",
        "[{\"repeat\": \"x\", \"n\": 10000}]",
        "[\"a\", \"b\", \"c\", \"d\", \"e\"]",
        "[\"{\\\"replay_from\\\": -3}\"]",
        "[\"{\\\"replay_from\\\": \\\"abc\\\"}\"]",
        "[\"abc\"]",
        "[\"{\\\"replay_from\\\": 1.5}\"]",
        "[\"{\\\"replay_from\\\": 1, \\\"x\\\": 2}\"]",
        "[\"{\\\"from\\\": 1}\"]",
        "[\"[1]\"]",
        "[{\"hex\": \"7b22ff22fe7d\"}]",
        "[\"{\\\"replay_from\\\": 2}\"]",
        NULL
    };
    th_proc_t p = python(&f, args);
    CU_ASSERT_EQUAL(p.status, 0);
    static const char *const want[] = {
        "error {\"error\":\"not valid JSON (line 1, column 3): '[' or '{' expected near 'not'\"}",
        "error {\"error\":\"request too large (10000 bytes, at most 4096)\"}",
        "error {\"error\":\"expected one frame {\\\"replay_from\\\": N}, got 5\"}",
        "error {\"error\":\"replay_from: expected an integer >= 0\"}",
        "error {\"error\":\"replay_from: expected an integer >= 0\"}",
        "error {\"error\":\"not valid JSON (line 1, column 3): '[' or '{' expected near 'abc'\"}",
        "error {\"error\":\"replay_from: expected an integer >= 0\"}",
        "error {\"error\":\"expected {\\\"replay_from\\\": N}\"}",
        "error {\"error\":\"expected {\\\"replay_from\\\": N}\"}",
        "error {\"error\":\"expected a JSON object\"}",
        NULL,   /* invalid UTF-8: jansson's wording, checked by prefix */
        NULL,   /* the good request: checked below */
    };
    char *lines[32];
    size_t n = split_lines(p.out, lines, 32);
    CU_ASSERT_EQUAL(n, 11 + 3);              /* 11 errors, then events 2, 3 and replay.end */
    if (n != 11 + 3)
        for (size_t i = 0; i < n && i < 32; i++)
            fprintf(stderr, "\n  %zu: %s", i, lines[i]);
    for (size_t i = 0; i < 10 && i < n; i++) {
        if (strcmp(lines[i], want[i]) != 0)
            fprintf(stderr, "\n  line %zu: %s\n  want:   %s\n", i, lines[i], want[i]);
        CU_ASSERT_STRING_EQUAL(lines[i], want[i]);
    }
    if (n == 14) {
        CU_ASSERT(strncmp(lines[10], "error {\"error\":\"not valid JSON", 30) == 0);
        char body[256], w[320];
        event_body(2, body, sizeof(body));
        snprintf(w, sizeof(w), "%s %s", topics[2], body);
        CU_ASSERT_STRING_EQUAL(lines[11], w);
        CU_ASSERT_STRING_EQUAL(lines[13], "replay.end {\"last_seq\":3}");
    }
    CU_ASSERT(strstr(p.out, "EXTRA") == NULL);
    th_proc_free(&p);

    /* A REQ peer's envelope (the empty delimiter) is kept: it gets its error too. */
    char *req[] = { "raw", (char *)f.replay, "req", "replay", "[\"{}\"]", NULL };
    p = python(&f, req);
    CU_ASSERT_EQUAL(p.status, 0);
    CU_ASSERT_STRING_EQUAL(p.out, "error {\"error\":\"expected {\\\"replay_from\\\": N}\"}\n");
    th_proc_free(&p);

    /* A frame past BUS_REPLAY_FRAME_MAX: libzmq drops that connection, no answer. */
    setenv("ZMQ_CLIENT_TIMEOUT_MS", "500", 1);
    char *huge[] = { "raw", (char *)f.replay, "dealer", "replay",
                     "[{\"repeat\": \"x\", \"n\": 100000}]", NULL };
    p = python_expect(&f, huge, 3);
    unsetenv("ZMQ_CLIENT_TIMEOUT_MS");
    CU_ASSERT_STRING_EQUAL(p.out, "TIMEOUT\n");
    th_proc_free(&p);

    /* ...and the bus serves the next client as before. */
    char *good[] = { "replay", (char *)f.replay, "3", NULL };
    p = python(&f, good);
    check_replay(p.out, 3, 3, 3);
    th_proc_free(&p);

    bus_stats_t st = bus_stats(f.bus);
    CU_ASSERT_EQUAL(st.bad_requests, 12);
    CU_ASSERT_EQUAL(st.replays_done, 2);
    fx_close(&f);
}

/* ---- caps, with C clients on the loop's own thread ---------------------------------- */

#define NPEERS 9

struct peer {
    void *s;
    uint64_t next;          /* next seq expected */
    int busy;               /* "busy, retry" errors received */
    int other_errors;
    bool ended;
    bool out_of_order;
};

struct crowd {
    struct fx *f;
    struct peer p[NPEERS];
    bool (*done)(struct crowd *);
    int watchdog_fired;
};

static void peer_readable(loop_t *loop, void *zsock, unsigned events, void *data)
{
    struct crowd *c = data;
    (void)events;
    struct peer *p = NULL;
    for (int i = 0; i < NPEERS; i++)
        if (c->p[i].s == zsock)
            p = &c->p[i];
    for (;;) {
        char topic[64], body[512];
        int tn = zmq_recv(zsock, topic, sizeof(topic) - 1, ZMQ_DONTWAIT);
        if (tn < 0)
            break;
        int bn = zmq_recv(zsock, body, sizeof(body) - 1, ZMQ_DONTWAIT);
        if (bn < 0 || tn >= (int)sizeof(topic) || bn >= (int)sizeof(body)) {
            p->other_errors++;
            continue;
        }
        topic[tn] = body[bn] = '\0';
        if (strcmp(topic, "error") == 0) {
            if (strcmp(body, "{\"error\":\"busy, retry\"}") == 0)
                p->busy++;
            else
                p->other_errors++;
        } else if (strcmp(topic, "replay.end") == 0) {
            p->ended = true;
        } else {
            char want[256];
            event_body(p->next, want, sizeof(want));
            if (strcmp(body, want) != 0)
                p->out_of_order = true;
            p->next++;
        }
    }
    if (c->done(c))
        loop_stop(loop);
}

static int64_t crowd_watchdog(loop_t *loop, uint64_t id, void *data)
{
    (void)id;
    ((struct crowd *)data)->watchdog_fired = 1;
    loop_stop(loop);
    return -1;
}

static int64_t crowd_check(loop_t *loop, uint64_t id, void *data)
{
    struct crowd *c = data;
    (void)id;
    if (c->done(c)) {
        loop_stop(loop);
        return -1;
    }
    return 1;
}

/* Run the loop until c->done(c) (checked after every message and every ms). */
static void crowd_run(struct crowd *c, bool (*done)(struct crowd *))
{
    c->done = done;
    c->watchdog_fired = 0;
    uint64_t wd = loop_add_timer(c->f->loop, WATCHDOG_MS, crowd_watchdog, c);
    uint64_t ck = loop_add_timer(c->f->loop, 0, crowd_check, c);
    CU_ASSERT_FATAL(wd > 0 && ck > 0);
    CU_ASSERT_EQUAL(loop_run(c->f->loop), 0);
    (void)loop_del_timer(c->f->loop, wd);
    (void)loop_del_timer(c->f->loop, ck);
    CU_ASSERT_EQUAL(c->watchdog_fired, 0);
}

static bool two_requests_seen(struct crowd *c)
{
    return bus_stats(c->f->bus).requests == 2 && c->p[0].busy == 1;
}

static bool ten_requests_seen(struct crowd *c)
{
    int busy = 0;
    for (int i = 0; i < NPEERS; i++)
        busy += c->p[i].busy;
    return bus_stats(c->f->bus).requests == 10 && busy == 2;
}

static bool all_ended(struct crowd *c)
{
    for (int i = 0; i < NPEERS; i++)
        if (!c->p[i].ended && !(i > 0 && c->p[i].busy))
            return false;
    return true;
}

static void test_replay_caps(void)
{
    struct fx f;
    fx_open(&f);
    add_events(f.db, NEVENTS);
    struct crowd c = { .f = &f };
    for (int i = 0; i < NPEERS; i++) {
        c.p[i].s = zmq_socket(f.zctx, ZMQ_DEALER);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c.p[i].s);
        int zero = 0;
        zmq_setsockopt(c.p[i].s, ZMQ_LINGER, &zero, sizeof(zero));
        CU_ASSERT_EQUAL_FATAL(zmq_connect(c.p[i].s, f.replay), 0);
        CU_ASSERT_EQUAL_FATAL(loop_add_zsock(f.loop, c.p[i].s, LOOP_IN, peer_readable, &c), 0);
        c.p[i].next = 1;
    }
    /* An open transaction holds every replay before its first event. */
    CU_ASSERT_EQUAL_FATAL(db_begin(f.db), 0);

    /* One replay per peer at a time: the second request of peer 0 is refused. */
    CU_ASSERT_EQUAL(zmq_send(c.p[0].s, "{\"replay_from\":1}", 17, 0), 17);
    CU_ASSERT_EQUAL(zmq_send(c.p[0].s, "{\"replay_from\":1}", 17, 0), 17);
    crowd_run(&c, two_requests_seen);
    CU_ASSERT_EQUAL(bus_replays_active(f.bus), 1);

    /* BUS_REPLAY_MAX in all: of the 8 other peers, one is refused. */
    for (int i = 1; i < NPEERS; i++)
        CU_ASSERT_EQUAL(zmq_send(c.p[i].s, "{\"replay_from\":1}", 17, 0), 17);
    crowd_run(&c, ten_requests_seen);
    CU_ASSERT_EQUAL(bus_replays_active(f.bus), BUS_REPLAY_MAX);
    int refused = 0;
    for (int i = 1; i < NPEERS; i++)
        refused += c.p[i].busy;
    CU_ASSERT_EQUAL(refused, 1);
    CU_ASSERT_EQUAL(bus_stats(f.bus).busy, 2);

    /* Commit: the eight replays run, interleaved batch by batch, each one complete. */
    CU_ASSERT_EQUAL(db_commit(f.db), 0);
    crowd_run(&c, all_ended);
    for (int i = 0; i < NPEERS; i++) {
        bool served = i == 0 || !c.p[i].busy;
        CU_ASSERT_EQUAL(c.p[i].ended, served);
        CU_ASSERT_EQUAL(c.p[i].next, served ? NEVENTS + 1 : 1);
        CU_ASSERT_FALSE(c.p[i].out_of_order);
        CU_ASSERT_EQUAL(c.p[i].other_errors, 0);
    }
    CU_ASSERT_EQUAL(bus_replays_active(f.bus), 0);
    CU_ASSERT_EQUAL(bus_stats(f.bus).replays_done, BUS_REPLAY_MAX);
    for (int i = 0; i < NPEERS; i++) {
        (void)loop_del_zsock(f.loop, c.p[i].s);
        zmq_close(c.p[i].s);
    }
    fx_close(&f);
}

static bool no_replay_left(struct crowd *c)
{
    return bus_replays_active(c->f->bus) == 0;
}

static bool request_seen(struct crowd *c)
{
    return bus_stats(c->f->bus).requests == 1;
}

/*
 * A peer that leaves mid-replay ends its replay (ROUTER_MANDATORY reports it gone;
 * if all was sent before the bus noticed, the replay simply completed), and the bus
 * serves the next client.
 */
static void test_replay_peer_gone(void)
{
    struct fx f;
    fx_open(&f);
    add_events(f.db, NEVENTS);
    struct crowd c = { .f = &f };
    void *s = zmq_socket(f.zctx, ZMQ_DEALER);
    int zero = 0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    CU_ASSERT_EQUAL_FATAL(zmq_connect(s, f.replay), 0);
    CU_ASSERT_EQUAL(zmq_send(s, "{\"replay_from\":1}", 17, 0), 17);

    /* The bus takes the request while a transaction holds the replay; then the peer goes. */
    CU_ASSERT_EQUAL_FATAL(db_begin(f.db), 0);
    crowd_run(&c, request_seen);
    CU_ASSERT_EQUAL(bus_replays_active(f.bus), 1);
    zmq_close(s);
    CU_ASSERT_EQUAL(db_commit(f.db), 0);
    crowd_run(&c, no_replay_left);
    bus_stats_t st = bus_stats(f.bus);
    CU_ASSERT_EQUAL(st.replays_done + st.replays_dropped, 1);

    char *args[] = { "replay", (char *)f.replay, "1200", NULL };
    th_proc_t p = python(&f, args);
    check_replay(p.out, NEVENTS, NEVENTS, NEVENTS);
    th_proc_free(&p);
    fx_close(&f);
}

/* ---- set-up errors ------------------------------------------------------------------ */

static void test_bind_errors(void)
{
    struct fx f;
    fx_open(&f);
    char *err = NULL;
    /* The same port twice: the second bus cannot bind, and says which socket. */
    bus_t *b = bus_new(f.zctx, f.loop, f.db, "tcp://127.0.0.1:*", f.replay, &err);
    CU_ASSERT_PTR_NULL(b);
    CU_ASSERT_PTR_NOT_NULL(err);
    if (err) {
        CU_ASSERT(strncmp(err, "replay tcp://127.0.0.1:", 23) == 0);
        CU_ASSERT(strstr(err, "in use") != NULL);
    }
    free(err);
    err = NULL;
    b = bus_new(f.zctx, f.loop, f.db, "nope://x", "tcp://127.0.0.1:*", &err);
    CU_ASSERT_PTR_NULL(b);
    CU_ASSERT(err && strncmp(err, "pub nope://x: ", 14) == 0);
    free(err);
    bus_destroy(NULL);
    bus_destroy(&b);
    fx_close(&f);
}

/* Receive one [topic][body] on a DEALER within the loop; returns 0 and fills the buffers. */
static int dealer_reply(struct fx *f, void *d, char *topic, char *body, size_t size)
{
    for (int i = 0; i < 200; i++) {
        th_loop_run_for(f->loop, 20);
        int t = zmq_recv(d, topic, size - 1, ZMQ_DONTWAIT);
        if (t < 0)
            continue;
        topic[t < (int)size - 1 ? t : (int)size - 1] = '\0';
        int b = zmq_recv(d, body, size - 1, ZMQ_DONTWAIT);
        if (b < 0)
            return -1;
        body[b < (int)size - 1 ? b : (int)size - 1] = '\0';
        return 0;
    }
    return -1;
}

/* Acknowledgements on the replay socket: only configured names, never past the end. */
static void test_acks(void)
{
    struct fx f;
    fx_open(&f);
    add_events(f.db, 3);
    void *d = zmq_socket(f.zctx, ZMQ_DEALER);
    int zero = 0;
    CU_ASSERT_EQUAL(zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof(zero)), 0);
    CU_ASSERT_EQUAL_FATAL(zmq_connect(d, f.replay), 0);
    char topic[64], body[512];
    static const char ack2[] = "{\"subscriber\":\"erp\",\"ack_seq\":2}";
    CU_ASSERT(zmq_send(d, ack2, strlen(ack2), 0) > 0);
    CU_ASSERT_EQUAL_FATAL(dealer_reply(&f, d, topic, body, sizeof(body)), 0);
    CU_ASSERT_STRING_EQUAL(topic, "error");
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "unknown subscriber 'erp' (not in retain_subscribers)"));

    static char *const names[] = { "erp" };
    bus_set_subscribers(f.bus, names, 1);
    CU_ASSERT(zmq_send(d, ack2, strlen(ack2), 0) > 0);
    CU_ASSERT_EQUAL_FATAL(dealer_reply(&f, d, topic, body, sizeof(body)), 0);
    CU_ASSERT_STRING_EQUAL(topic, "ack");
    CU_ASSERT_STRING_EQUAL(body, ack2);
    static const char ack9[] = "{\"subscriber\":\"erp\",\"ack_seq\":9}";
    CU_ASSERT(zmq_send(d, ack9, strlen(ack9), 0) > 0);
    CU_ASSERT_EQUAL_FATAL(dealer_reply(&f, d, topic, body, sizeof(body)), 0);
    CU_ASSERT_STRING_EQUAL(topic, "error");
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "past the last event (3)"));
    static const char bad[] = "{\"subscriber\":\"e r p\",\"ack_seq\":1}";
    CU_ASSERT(zmq_send(d, bad, strlen(bad), 0) > 0);
    CU_ASSERT_EQUAL_FATAL(dealer_reply(&f, d, topic, body, sizeof(body)), 0);
    CU_ASSERT_STRING_EQUAL(topic, "error");
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "subscriber: expected 1 to 64"));
    uint64_t acked = 0;
    CU_ASSERT_EQUAL(db_subscriber_acked(f.db, "erp", &acked), 0);
    CU_ASSERT_EQUAL(acked, 2);
    CU_ASSERT_EQUAL(bus_stats(f.bus).acks, 1);

    /* The parser alone: a replay request is no acknowledgement. */
    char name[REPLAY_SUBSCRIBER_MAX + 1];
    uint64_t seq = 0;
    char *err = NULL;
    CU_ASSERT_EQUAL(replay_ack_parse("{\"replay_from\":1}", 17, name, &seq, &err), 0);
    CU_ASSERT_EQUAL(replay_ack_parse("{\"ack_seq\":1}", 13, name, &seq, &err), -EINVAL);
    free(err);
    err = NULL;
    CU_ASSERT_EQUAL(replay_ack_parse("{\"subscriber\":\"a\",\"ack_seq\":-1}", 31, name, &seq, &err),
                    -EINVAL);
    CU_ASSERT(err && strcmp(err, "ack_seq: expected an integer >= 0") == 0);
    free(err);
    zmq_close(d);
    fx_close(&f);
}

/* ipc:// endpoints are files of mode 0660; key files and the allowed directory. */
static void test_ipc_mode_and_keys(void)
{
    struct fx f;
    fx_open(&f);
    char pub[4200], rep[4200], path[4200];
    snprintf(pub, sizeof(pub), "ipc://%s/pub.sock", f.dir);
    snprintf(rep, sizeof(rep), "ipc://%s/replay.sock", f.dir);
    char *err = NULL;
    mode_t old = umask(0);              /* the bus must not depend on the caller's umask */
    bus_t *b = bus_new(f.zctx, f.loop, f.db, pub, rep, &err);
    (void)umask(old);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    struct stat st;
    CU_ASSERT_EQUAL(stat(pub + 6, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0660);
    CU_ASSERT_EQUAL(stat(rep + 6, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0660);
    bus_destroy(&b);

    /* keygen: a pair that belongs together, never overwritten. */
    snprintf(path, sizeof(path), "%s/server", f.dir);
    CU_ASSERT_EQUAL(curve_keygen(path, &err), 0);
    CU_ASSERT_EQUAL(curve_keygen(path, &err), -EEXIST);
    CU_ASSERT(err && strstr(err, "exists, not overwritten"));
    free(err);
    err = NULL;
    uint8_t sec[CURVE_KEY_BYTES], pubk[CURVE_KEY_BYTES], derived[CURVE_KEY_BYTES];
    snprintf(path, sizeof(path), "%s/server.key", f.dir);
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(curve_key_read(path, sec, &err), 0);
    snprintf(path, sizeof(path), "%s/server.pub", f.dir);
    CU_ASSERT_EQUAL(curve_key_read(path, pubk, &err), 0);
    CU_ASSERT_EQUAL(curve_public_of(sec, derived), 0);
    CU_ASSERT_EQUAL(memcmp(pubk, derived, CURVE_KEY_BYTES), 0);

    /* The allowed directory: *.pub only, hidden files skipped, a bad key named. */
    snprintf(path, sizeof(path), "%s/clients", f.dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(path, 0755), 0);
    CU_ASSERT_EQUAL(curve_clients_check(path, &err), 0);
    char file[4300];
    snprintf(file, sizeof(file), "%s/clients/a", f.dir);
    CU_ASSERT_EQUAL(curve_keygen(file, &err), 0);
    snprintf(file, sizeof(file), "%s/clients/a.key", f.dir);
    CU_ASSERT_EQUAL(unlink(file), 0);             /* a secret does not belong here */
    snprintf(file, sizeof(file), "%s/clients/.b.pub", f.dir);
    FILE *fp = fopen(file, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fputs("not a key\n", fp);
    fclose(fp);
    snprintf(file, sizeof(file), "%s/clients/notes.txt", f.dir);
    fp = fopen(file, "w");
    fclose(fp);
    CU_ASSERT_EQUAL(curve_clients_check(path, &err), 1);
    snprintf(file, sizeof(file), "%s/clients/c.pub", f.dir);
    fp = fopen(file, "w");
    fputs("tooshort\n", fp);
    fclose(fp);
    CU_ASSERT_EQUAL(curve_clients_check(path, &err), -EINVAL);
    CU_ASSERT(err && strstr(err, "c.pub: not a CURVE key"));
    free(err);
    err = NULL;
    CU_ASSERT(curve_clients_check("/nonexistent-rmad-dir", &err) < 0);
    CU_ASSERT(err && strstr(err, "No such file or directory"));
    free(err);
    fx_close(&f);
}

int suite_bus(void)
{
    CU_pSuite s = CU_add_suite("bus", NULL, NULL);
    if (!s)
        return -1;
    if (!CU_add_test(s, "publish: two frames to a python SUB", test_publish) ||
        !CU_add_test(s, "replay: from N, in batches, then replay.end", test_replay) ||
        !CU_add_test(s, "replay: garbage gets errors, serving goes on", test_replay_garbage) ||
        !CU_add_test(s, "replay: per-peer and total caps", test_replay_caps) ||
        !CU_add_test(s, "replay: a vanished peer is dropped", test_replay_peer_gone) ||
        !CU_add_test(s, "bind errors", test_bind_errors) ||
        !CU_add_test(s, "acknowledgements on the replay socket", test_acks) ||
        !CU_add_test(s, "ipc endpoints are 0660; CURVE key files", test_ipc_mode_and_keys))
        return -1;
    return 0;
}
