/*
 * The event loop: fd and ZeroMQ readiness, timers, signals, and callbacks that change
 * registrations while the loop dispatches. Every test arms a watchdog timer so that a
 * broken loop fails the test instead of hanging the runner; no test asserts how long
 * anything took.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "core/loop.h"
#include "tests/suites.h"

#define WATCHDOG_MS 10000

static int64_t watchdog_fired(loop_t *loop, uint64_t id, void *data)
{
    (void)id;
    *(int *)data = 1;
    loop_stop(loop);
    return -1;
}

/* A loop with a watchdog; *fired becomes 1 if the watchdog had to stop it. */
static loop_t *new_loop(int *fired)
{
    loop_t *loop = loop_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    *fired = 0;
    CU_ASSERT_FATAL(loop_add_timer(loop, WATCHDOG_MS, watchdog_fired, fired) > 0);
    return loop;
}

/* ---- fds ------------------------------------------------------------------------ */

struct fd_seen {
    int calls;
    int fd;
    unsigned events;
    char byte;
    int stop;
};

static void on_fd(loop_t *loop, int fd, unsigned events, void *data)
{
    struct fd_seen *s = data;
    s->calls++;
    s->fd = fd;
    s->events = events;
    if (events & LOOP_IN)
        CU_ASSERT_EQUAL(read(fd, &s->byte, 1), 1);
    if (s->stop)
        loop_stop(loop);
}

static void test_fd_readiness(void)
{
    int fired, p[2];
    CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
    loop_t *loop = new_loop(&fired);
    struct fd_seen s = { .stop = 1 };
    CU_ASSERT_EQUAL(loop_add_fd(loop, p[0], LOOP_IN, on_fd, &s), 0);
    CU_ASSERT_EQUAL(loop_add_fd(loop, p[0], LOOP_IN, on_fd, &s), -EEXIST);
    CU_ASSERT_EQUAL(write(p[1], "x", 1), 1);
    CU_ASSERT_EQUAL(loop_run(loop), 0);
    CU_ASSERT_EQUAL(fired, 0);
    CU_ASSERT_EQUAL(s.calls, 1);
    CU_ASSERT_EQUAL(s.fd, p[0]);
    CU_ASSERT(s.events & LOOP_IN);
    CU_ASSERT_EQUAL(s.byte, 'x');

    /* Switch the registration to the write end's readiness through loop_mod_fd. */
    CU_ASSERT_EQUAL(loop_del_fd(loop, p[0]), 0);
    CU_ASSERT_EQUAL(loop_del_fd(loop, p[0]), -ENOENT);
    CU_ASSERT_EQUAL(loop_mod_fd(loop, p[1], LOOP_OUT), -ENOENT);
    struct fd_seen w = { .stop = 1 };
    CU_ASSERT_EQUAL(loop_add_fd(loop, p[1], 0, on_fd, &w), 0);
    CU_ASSERT_EQUAL(loop_mod_fd(loop, p[1], LOOP_OUT), 0);
    CU_ASSERT_EQUAL(loop_run(loop), 0);
    CU_ASSERT_EQUAL(fired, 0);
    CU_ASSERT_EQUAL(w.calls, 1);
    CU_ASSERT_EQUAL(w.events & LOOP_OUT, LOOP_OUT);

    CU_ASSERT_EQUAL(loop_add_fd(loop, -1, LOOP_IN, on_fd, &s), -EBADF);
    CU_ASSERT_EQUAL(loop_add_fd(loop, p[0], 0x100, on_fd, &s), -EINVAL);
    CU_ASSERT_EQUAL(loop_add_fd(loop, p[0], LOOP_IN, NULL, &s), -EINVAL);
    loop_destroy(&loop);
    CU_ASSERT_PTR_NULL(loop);
    close(p[0]);
    close(p[1]);
}

static void test_fd_hangup(void)
{
    int fired, p[2];
    CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
    loop_t *loop = new_loop(&fired);
    struct fd_seen s = { .stop = 1 };
    CU_ASSERT_EQUAL(loop_add_fd(loop, p[0], LOOP_IN, on_fd, &s), 0);
    close(p[1]);
    CU_ASSERT_EQUAL(loop_run(loop), 0);
    CU_ASSERT_EQUAL(fired, 0);
    CU_ASSERT_EQUAL(s.calls, 1);
    /* Linux reports POLLHUP for a widowed pipe; zmq_poll passes it as LOOP_ERR. */
    CU_ASSERT(s.events & (LOOP_IN | LOOP_ERR));
    loop_destroy(&loop);
    close(p[0]);
}

/* ---- ZeroMQ sockets ------------------------------------------------------------- */

struct zs_seen {
    int calls;
    char msg[16];
};

static void on_zsock(loop_t *loop, void *zsock, unsigned events, void *data)
{
    struct zs_seen *s = data;
    s->calls++;
    CU_ASSERT(events & LOOP_IN);
    int n = zmq_recv(zsock, s->msg, sizeof(s->msg) - 1, ZMQ_DONTWAIT);
    CU_ASSERT(n > 0);
    if (n > 0)
        s->msg[n] = '\0';
    loop_stop(loop);
}

static void test_zsock_readiness(void)
{
    int fired;
    void *ctx = zmq_ctx_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    void *a = zmq_socket(ctx, ZMQ_PAIR), *b = zmq_socket(ctx, ZMQ_PAIR);
    CU_ASSERT_FATAL(a && b);
    CU_ASSERT_EQUAL_FATAL(zmq_bind(a, "inproc://test-loop"), 0);
    CU_ASSERT_EQUAL_FATAL(zmq_connect(b, "inproc://test-loop"), 0);

    loop_t *loop = new_loop(&fired);
    struct zs_seen s = { 0 };
    CU_ASSERT_EQUAL(loop_add_zsock(loop, b, LOOP_IN, on_zsock, &s), 0);
    CU_ASSERT_EQUAL(loop_add_zsock(loop, b, LOOP_IN, on_zsock, &s), -EEXIST);
    CU_ASSERT_EQUAL(zmq_send(a, "hello", 5, 0), 5);
    CU_ASSERT_EQUAL(loop_run(loop), 0);
    CU_ASSERT_EQUAL(fired, 0);
    CU_ASSERT_EQUAL(s.calls, 1);
    CU_ASSERT_STRING_EQUAL(s.msg, "hello");

    /* A second message after a quiet period: the loop sleeps, then wakes for it. */
    CU_ASSERT_EQUAL(zmq_send(a, "again", 5, 0), 5);
    CU_ASSERT_EQUAL(loop_run(loop), 0);
    CU_ASSERT_EQUAL(s.calls, 2);
    CU_ASSERT_STRING_EQUAL(s.msg, "again");

    CU_ASSERT_EQUAL(loop_del_zsock(loop, b), 0);
    CU_ASSERT_EQUAL(loop_del_zsock(loop, b), -ENOENT);
    loop_destroy(&loop);
    zmq_close(a);
    zmq_close(b);
    zmq_ctx_term(ctx);
}

/* ---- timers --------------------------------------------------------------------- */

struct order {
    int seq[16];
    int n;
    int stop_after;
    uint64_t cancel;        /* a timer to cancel when this one runs */
    int cancel_rc;
    loop_t *loop;
};

struct tick {
    struct order *o;
    int tag;
    int repeat;             /* runs left before returning -1 */
    int64_t again_ms;
};

static int64_t on_tick(loop_t *loop, uint64_t id, void *data)
{
    struct tick *t = data;
    struct order *o = t->o;
    CU_ASSERT(id > 0);
    if (o->n < 16)
        o->seq[o->n] = t->tag;
    o->n++;
    if (o->cancel) {
        o->cancel_rc = loop_del_timer(loop, o->cancel);
        o->cancel = 0;
    }
    if (o->n == o->stop_after)
        loop_stop(loop);
    return t->repeat-- > 0 ? t->again_ms : -1;
}

static void test_timers_in_order(void)
{
    int fired;
    loop_t *loop = new_loop(&fired);
    struct order o = { .stop_after = 6 };
    struct tick t[6] = {
        { &o, 30, 0, 0 }, { &o, 10, 0, 0 }, { &o, 20, 0, 0 },
        { &o, 0, 0, 0 }, { &o, 1, 0, 0 }, { &o, 2, 0, 0 },
    };
    /* Deadlines order the first three; equal deadlines keep the order they were added. */
    CU_ASSERT(loop_add_timer(loop, 30, on_tick, &t[0]) > 0);
    CU_ASSERT(loop_add_timer(loop, 10, on_tick, &t[1]) > 0);
    CU_ASSERT(loop_add_timer(loop, 20, on_tick, &t[2]) > 0);
    uint64_t first = loop_add_timer(loop, 0, on_tick, &t[3]);
    uint64_t second = loop_add_timer(loop, 0, on_tick, &t[4]);
    uint64_t third = loop_add_timer(loop, 0, on_tick, &t[5]);
    CU_ASSERT(first > 0 && second > first && third > second);
    CU_ASSERT_EQUAL(loop_run(loop), 0);
    CU_ASSERT_EQUAL(fired, 0);
    CU_ASSERT_EQUAL(o.n, 6);
    int want[] = { 0, 1, 2, 10, 20, 30 };
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(o.seq[i], want[i]);
    /* They ran out: their ids are gone. */
    CU_ASSERT_EQUAL(loop_del_timer(loop, first), -ENOENT);
    loop_destroy(&loop);
}

static void test_timer_rearm(void)
{
    int fired;
    loop_t *loop = new_loop(&fired);
    struct order o = { .stop_after = 4 };
    struct tick t = { &o, 7, 3, 1 };
    uint64_t id = loop_add_timer(loop, 1, on_tick, &t);
    CU_ASSERT(id > 0);
    CU_ASSERT_EQUAL(loop_run(loop), 0);
    CU_ASSERT_EQUAL(fired, 0);
    CU_ASSERT_EQUAL(o.n, 4);
    CU_ASSERT_EQUAL(t.repeat, -1);
    CU_ASSERT_EQUAL(loop_del_timer(loop, id), -ENOENT);

    /* Re-arming with 0 runs again on the next iteration, not in the same pass forever. */
    struct order o2 = { .stop_after = 3 };
    struct tick t2 = { &o2, 8, 5, 0 };
    CU_ASSERT(loop_add_timer(loop, 0, on_tick, &t2) > 0);
    CU_ASSERT_EQUAL(loop_run(loop), 0);
    CU_ASSERT_EQUAL(o2.n, 3);
    loop_destroy(&loop);
}

static void test_timer_cancel(void)
{
    int fired;
    loop_t *loop = new_loop(&fired);
    struct order o = { .stop_after = 2 };
    struct tick a = { &o, 1, 0, 0 }, b = { &o, 2, 0, 0 }, c = { &o, 3, 0, 0 },
                d = { &o, 4, 0, 0 };

    /* Cancelled before the loop runs. */
    uint64_t gone = loop_add_timer(loop, 0, on_tick, &d);
    CU_ASSERT_EQUAL(loop_del_timer(loop, gone), 0);
    CU_ASSERT_EQUAL(loop_del_timer(loop, gone), -ENOENT);
    CU_ASSERT_EQUAL(loop_del_timer(loop, 0), -ENOENT);
    CU_ASSERT_EQUAL(loop_del_timer(loop, 999999), -ENOENT);

    /* a runs first and cancels b, which was due in the same pass. */
    CU_ASSERT(loop_add_timer(loop, 0, on_tick, &a) > 0);
    uint64_t idb = loop_add_timer(loop, 0, on_tick, &b);
    CU_ASSERT(loop_add_timer(loop, 1, on_tick, &c) > 0);
    o.cancel = idb;
    CU_ASSERT_EQUAL(loop_run(loop), 0);
    CU_ASSERT_EQUAL(fired, 0);
    CU_ASSERT_EQUAL(o.cancel_rc, 0);
    CU_ASSERT_EQUAL(o.n, 2);
    CU_ASSERT_EQUAL(o.seq[0], 1);
    CU_ASSERT_EQUAL(o.seq[1], 3);
    CU_ASSERT_EQUAL(loop_del_timer(loop, idb), -ENOENT);

    /* Ids are never reused, even after every timer is gone. */
    uint64_t next = loop_add_timer(loop, 100, on_tick, &d);
    CU_ASSERT(next > idb && next != gone);
    loop_destroy(&loop);
}

/* A timer that cancels itself is not re-armed, whatever it returns. */
static int64_t cancel_self(loop_t *loop, uint64_t id, void *data)
{
    int *calls = data;
    (*calls)++;
    CU_ASSERT_EQUAL(loop_del_timer(loop, id), 0);
    CU_ASSERT_EQUAL(loop_del_timer(loop, id), -ENOENT);
    return 0;
}

static int64_t stop_soon(loop_t *loop, uint64_t id, void *data)
{
    (void)id;
    int *n = data;
    if (++*n == 3) {
        loop_stop(loop);
        return -1;
    }
    return 1;
}

static void test_timer_cancel_self(void)
{
    int fired, calls = 0, n = 0;
    loop_t *loop = new_loop(&fired);
    CU_ASSERT(loop_add_timer(loop, 0, cancel_self, &calls) > 0);
    CU_ASSERT(loop_add_timer(loop, 0, stop_soon, &n) > 0);
    CU_ASSERT_EQUAL(loop_run(loop), 0);
    CU_ASSERT_EQUAL(fired, 0);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(calls, 1);
    loop_destroy(&loop);
}

/* ---- callbacks changing registrations ------------------------------------------- */

struct pair {
    int fds[2];             /* read ends of two readable pipes */
    int calls;
    struct fd_seen late;    /* registration added from inside a callback */
};

/* Whichever of the two runs first removes both; the other must never be called. */
static void remove_both(loop_t *loop, int fd, unsigned events, void *data)
{
    (void)events;
    struct pair *p = data;
    p->calls++;
    CU_ASSERT_EQUAL(loop_del_fd(loop, fd), 0);
    CU_ASSERT_EQUAL(loop_del_fd(loop, p->fds[fd == p->fds[0] ? 1 : 0]), 0);
    /* Re-register the same fd with another callback: it joins the next iteration. */
    CU_ASSERT_EQUAL(loop_add_fd(loop, fd, LOOP_IN, on_fd, &p->late), 0);
}

static void test_remove_in_callback(void)
{
    int fired, a[2], b[2];
    CU_ASSERT_FATAL(pipe2(a, O_CLOEXEC | O_NONBLOCK) == 0);
    CU_ASSERT_FATAL(pipe2(b, O_CLOEXEC | O_NONBLOCK) == 0);
    loop_t *loop = new_loop(&fired);
    struct pair p = { .fds = { a[0], b[0] }, .late = { .stop = 1 } };
    CU_ASSERT_EQUAL(loop_add_fd(loop, a[0], LOOP_IN, remove_both, &p), 0);
    CU_ASSERT_EQUAL(loop_add_fd(loop, b[0], LOOP_IN, remove_both, &p), 0);
    /* Both readable before the first poll, so both are ready in the same iteration. */
    CU_ASSERT_EQUAL(write(a[1], "a", 1), 1);
    CU_ASSERT_EQUAL(write(b[1], "b", 1), 1);
    CU_ASSERT_EQUAL(loop_run(loop), 0);
    CU_ASSERT_EQUAL(fired, 0);
    CU_ASSERT_EQUAL(p.calls, 1);
    CU_ASSERT_EQUAL(p.late.calls, 1);
    CU_ASSERT(p.late.byte == 'a' || p.late.byte == 'b');
    loop_destroy(&loop);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
}

/* ---- signals -------------------------------------------------------------------- */

struct sig_seen {
    int signos[4];
    int n;
};

static void on_signal(loop_t *loop, int signo, void *data)
{
    struct sig_seen *s = data;
    if (s->n < 4)
        s->signos[s->n] = signo;
    if (++s->n == 2)
        loop_stop(loop);
}

static void test_signals(void)
{
    int fired;
    sigset_t before, now;
    CU_ASSERT_FATAL(sigprocmask(SIG_SETMASK, NULL, &before) == 0);
    CU_ASSERT_FATAL(!sigismember(&before, SIGUSR1) && !sigismember(&before, SIGUSR2));

    loop_t *loop = new_loop(&fired);
    struct sig_seen s = { { 0 }, 0 };
    const int sigs[] = { SIGUSR1, SIGUSR2, 0 };
    CU_ASSERT_EQUAL_FATAL(loop_add_signals(loop, sigs, on_signal, &s), 0);
    CU_ASSERT_EQUAL(loop_add_signals(loop, sigs, on_signal, &s), -EALREADY);
    /* Blocked now: raise() leaves them pending for the signalfd instead of killing us. */
    CU_ASSERT_EQUAL(raise(SIGUSR1), 0);
    CU_ASSERT_EQUAL(raise(SIGUSR2), 0);
    CU_ASSERT_EQUAL(loop_run(loop), 0);
    CU_ASSERT_EQUAL(fired, 0);
    CU_ASSERT_EQUAL(s.n, 2);
    /* Standard signals are dequeued lowest number first. */
    CU_ASSERT_EQUAL(s.signos[0], SIGUSR1);
    CU_ASSERT_EQUAL(s.signos[1], SIGUSR2);
    loop_destroy(&loop);

    /* loop_destroy gives the signals back. */
    CU_ASSERT(sigprocmask(SIG_SETMASK, NULL, &now) == 0);
    CU_ASSERT(!sigismember(&now, SIGUSR1));
    CU_ASSERT(!sigismember(&now, SIGUSR2));

    loop = loop_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    const int none[] = { 0 }, kill9[] = { SIGKILL, 0 };
    CU_ASSERT_EQUAL(loop_add_signals(loop, none, on_signal, &s), -EINVAL);
    CU_ASSERT_EQUAL(loop_add_signals(loop, kill9, on_signal, &s), -EINVAL);
    loop_destroy(&loop);
}

/* ---- loop_stop and edge cases --------------------------------------------------- */

static int64_t stop_now(loop_t *loop, uint64_t id, void *data)
{
    (void)id;
    (*(int *)data)++;
    loop_stop(loop);
    return -1;
}

/* loop_stop lets the rest of the iteration run, then loop_run returns. */
static void stop_from_fd(loop_t *loop, int fd, unsigned events, void *data)
{
    (void)fd;
    (void)events;
    (*(int *)data)++;
    loop_stop(loop);
}

static void test_stop(void)
{
    int fired, runs = 0, p[2], fdcalls = 0, ticks = 0;
    loop_t *loop = new_loop(&fired);
    CU_ASSERT(loop_add_timer(loop, 0, stop_now, &runs) > 0);
    CU_ASSERT_EQUAL(loop_run(loop), 0);
    CU_ASSERT_EQUAL(runs, 1);
    /* A stopped loop runs again. */
    CU_ASSERT(loop_add_timer(loop, 0, stop_now, &runs) > 0);
    CU_ASSERT_EQUAL(loop_run(loop), 0);
    CU_ASSERT_EQUAL(runs, 2);

    CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
    CU_ASSERT_EQUAL(write(p[1], "x", 1), 1);
    CU_ASSERT_EQUAL(loop_add_fd(loop, p[0], LOOP_IN, stop_from_fd, &fdcalls), 0);
    CU_ASSERT(loop_add_timer(loop, 0, stop_now, &ticks) > 0);
    CU_ASSERT_EQUAL(loop_run(loop), 0);
    CU_ASSERT_EQUAL(fdcalls, 1);
    CU_ASSERT_EQUAL(ticks, 1); /* the due timer of the same iteration still ran */
    CU_ASSERT_EQUAL(fired, 0);
    loop_destroy(&loop);
    close(p[0]);
    close(p[1]);

    /* Nothing registered, no timer: nothing could ever wake the loop. */
    loop = loop_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    CU_ASSERT_EQUAL(loop_run(loop), -EDEADLK);
    loop_destroy(&loop);
    loop_destroy(&loop);
    loop_destroy(NULL);
    CU_ASSERT(loop_now_ms() > 0);
}

int suite_loop(void)
{
    CU_pSuite s = CU_add_suite("loop", NULL, NULL);
    if (!s || !CU_add_test(s, "fd readiness (pipe), mod and del", test_fd_readiness) ||
        !CU_add_test(s, "fd hang-up is reported", test_fd_hangup) ||
        !CU_add_test(s, "zmq socket readiness (inproc PAIR)", test_zsock_readiness) ||
        !CU_add_test(s, "timers run in deadline order", test_timers_in_order) ||
        !CU_add_test(s, "timer re-arms from its return value", test_timer_rearm) ||
        !CU_add_test(s, "timer cancelled before and during a pass", test_timer_cancel) ||
        !CU_add_test(s, "timer cancelling itself", test_timer_cancel_self) ||
        !CU_add_test(s, "callback removes itself and another entry", test_remove_in_callback) ||
        !CU_add_test(s, "signals through signalfd", test_signals) ||
        !CU_add_test(s, "loop_stop and an empty loop", test_stop))
        return -1;
    return 0;
}
