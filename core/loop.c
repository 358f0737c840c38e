/*
 * The event loop (core/loop.h), on zmq_poll().
 *
 * One iteration: rebuild the zmq_pollitem_t array if registrations changed, poll
 * until the nearest timer, call the callbacks of the ready fds and sockets, then run
 * the timers that are due.
 *
 * Callbacks may change registrations at any time, so nothing a callback can remove
 * is freed while callbacks run: a removed fd or socket is only marked (and skipped by
 * the rest of the iteration), and freed when the next iteration rebuilds the poll
 * array; a timer cancelled while timers run is marked and freed by the timer pass.
 * Entries are heap-allocated one by one, so growing the arrays that point at them
 * never moves an entry a running callback may still hold.
 */
#include "core/loop.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define LOOP_EVENTS (LOOP_IN | LOOP_OUT | LOOP_ERR)

/* loop.h promises the same bit values as ZeroMQ, so events pass through unchanged. */
_Static_assert(LOOP_IN == ZMQ_POLLIN && LOOP_OUT == ZMQ_POLLOUT && LOOP_ERR == ZMQ_POLLERR,
               "LOOP_* must equal ZMQ_POLL*");

/* A registered fd (zsock == NULL) or ZeroMQ socket. */
struct watch {
    int fd;
    void *zsock;
    unsigned events;
    loop_fd_fn fd_fn;
    loop_zsock_fn zsock_fn;
    void *data;
    bool removed;       /* deleted; freed at the next rebuild, never called again */
};

struct timer {
    uint64_t id;
    int64_t when;       /* loop_now_ms() deadline */
    loop_timer_fn fn;
    void *data;
    size_t heap_idx;    /* position in loop->heap, or NOT_IN_HEAP while due */
    bool cancelled;     /* loop_del_timer while due: skip it, then free it */
};

#define NOT_IN_HEAP SIZE_MAX

struct loop {
    /* Registrations, in the order they were added (the order callbacks run in). */
    struct watch **watches;
    size_t nwatches;
    /*
     * The poll set: items[i] polls item_watch[i]. Capacity of all three arrays is
     * `cap`, grown together at registration, so rebuilding never allocates.
     */
    zmq_pollitem_t *items;
    struct watch **item_watch;
    size_t nitems;
    size_t cap;
    bool stale;         /* registrations changed since the poll set was built */
    bool dispatching;   /* fd/socket callbacks are running: defer frees */

    /*
     * Timers: a binary min-heap on (when, id), so equal deadlines run in the order
     * they were added. While the timer pass runs, the due timers sit in `due`.
     * Both arrays hold room for every live timer, so moving a timer between them
     * never allocates (and never fails) inside loop_run.
     */
    struct timer **heap;
    size_t nheap;
    struct timer **due;
    size_t ndue;
    size_t timer_cap;
    size_t ntimers;     /* live timers: in the heap plus due and not yet freed */
    uint64_t last_timer_id;

    /* Signals: a signalfd registered as a watch, and what we blocked for it. */
    int sigfd;
    sigset_t sigblocked; /* signals this loop blocked (not those blocked before) */
    loop_signal_fn sig_fn;
    void *sig_data;

    bool running;
    bool stop;
};

int64_t loop_now_ms(void)
{
    struct timespec ts;
    /* CLOCK_MONOTONIC cannot fail with a valid clock id and pointer. */
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t loop_wall_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

loop_t *loop_new(void)
{
    loop_t *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return NULL;
    loop->sigfd = -1;
    sigemptyset(&loop->sigblocked);
    return loop;
}

/*
 * Give back the signals loop_add_signals took. Signals still pending are read from
 * the signalfd and dropped first: the owner asked for them through the loop, and
 * unblocking them now would run their default action (usually: terminate) in the
 * middle of the owner's clean-up.
 */
static void signals_release(loop_t *loop)
{
    if (loop->sigfd < 0)
        return;
    struct signalfd_siginfo si[8];
    while (read(loop->sigfd, si, sizeof(si)) > 0)
        ;
    (void)sigprocmask(SIG_UNBLOCK, &loop->sigblocked, NULL);
    (void)close(loop->sigfd);
    loop->sigfd = -1;
}

void loop_destroy(loop_t **loop_p)
{
    if (!loop_p || !*loop_p)
        return;
    loop_t *loop = *loop_p;
    signals_release(loop);
    for (size_t i = 0; i < loop->nwatches; i++)
        free(loop->watches[i]);
    for (size_t i = 0; i < loop->nheap; i++)
        free(loop->heap[i]);
    for (size_t i = 0; i < loop->ndue; i++)
        free(loop->due[i]);
    free(loop->watches);
    free(loop->items);
    free(loop->item_watch);
    free(loop->heap);
    free(loop->due);
    free(loop);
    *loop_p = NULL;
}

/* ---- fds and ZeroMQ sockets ---------------------------------------------------- */

/* The live registration of fd (zsock == NULL) or of zsock, or NULL. O(n). */
static struct watch *watch_find(loop_t *loop, int fd, void *zsock)
{
    for (size_t i = 0; i < loop->nwatches; i++) {
        struct watch *w = loop->watches[i];
        if (w->removed || w->zsock != zsock)
            continue;
        if (zsock || w->fd == fd)
            return w;
    }
    return NULL;
}

/* Make room for one more watch in every array sized by `cap`. */
static int watch_reserve(loop_t *loop)
{
    if (loop->nwatches < loop->cap)
        return 0;
    size_t ncap = loop->cap ? loop->cap * 2 : 8;
    struct watch **w = realloc(loop->watches, ncap * sizeof(*w));
    if (!w)
        return -ENOMEM;
    loop->watches = w;
    zmq_pollitem_t *it = realloc(loop->items, ncap * sizeof(*it));
    if (!it)
        return -ENOMEM;
    loop->items = it;
    struct watch **iw = realloc(loop->item_watch, ncap * sizeof(*iw));
    if (!iw)
        return -ENOMEM;
    loop->item_watch = iw;
    loop->cap = ncap;
    return 0;
}

static int watch_add(loop_t *loop, int fd, void *zsock, unsigned events,
                     loop_fd_fn fd_fn, loop_zsock_fn zsock_fn, void *data)
{
    if (watch_find(loop, fd, zsock))
        return -EEXIST;
    int rc = watch_reserve(loop);
    if (rc < 0)
        return rc;
    struct watch *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    *w = (struct watch){ .fd = fd, .zsock = zsock, .events = events,
                         .fd_fn = fd_fn, .zsock_fn = zsock_fn, .data = data };
    loop->watches[loop->nwatches++] = w;
    loop->stale = true;
    return 0;
}

/*
 * Forget a registration. While callbacks run, the poll set still points at it, so it
 * is only marked; the next rebuild frees it. Otherwise it goes now. O(n).
 */
static void watch_remove(loop_t *loop, struct watch *w)
{
    w->removed = true;
    loop->stale = true;
    if (loop->dispatching)
        return;
    for (size_t i = 0; i < loop->nwatches; i++) {
        if (loop->watches[i] == w) {
            memmove(&loop->watches[i], &loop->watches[i + 1],
                    (loop->nwatches - i - 1) * sizeof(loop->watches[0]));
            loop->nwatches--;
            break;
        }
    }
    /* The poll set is stale now, so nothing reads item_watch before the rebuild. */
    free(w);
}

int loop_add_fd(loop_t *loop, int fd, unsigned events, loop_fd_fn fn, void *data)
{
    if (!loop || !fn || (events & ~LOOP_EVENTS))
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    return watch_add(loop, fd, NULL, events, fn, NULL, data);
}

int loop_mod_fd(loop_t *loop, int fd, unsigned events)
{
    if (!loop || (events & ~LOOP_EVENTS))
        return -EINVAL;
    struct watch *w = watch_find(loop, fd, NULL);
    if (!w)
        return -ENOENT;
    w->events = events;
    loop->stale = true;
    return 0;
}

int loop_del_fd(loop_t *loop, int fd)
{
    if (!loop)
        return -EINVAL;
    struct watch *w = watch_find(loop, fd, NULL);
    if (!w)
        return -ENOENT;
    watch_remove(loop, w);
    return 0;
}

int loop_add_zsock(loop_t *loop, void *zsock, unsigned events, loop_zsock_fn fn, void *data)
{
    if (!loop || !zsock || !fn || (events & ~LOOP_EVENTS))
        return -EINVAL;
    return watch_add(loop, -1, zsock, events, NULL, fn, data);
}

int loop_del_zsock(loop_t *loop, void *zsock)
{
    if (!loop || !zsock)
        return -EINVAL;
    struct watch *w = watch_find(loop, -1, zsock);
    if (!w)
        return -ENOENT;
    watch_remove(loop, w);
    return 0;
}

/*
 * Free the registrations removed during the last dispatch and rebuild the poll set
 * from the live ones. Runs only between iterations, when no callback holds an entry.
 * O(n) in registrations; never allocates (the arrays were sized at registration).
 */
static void pollset_rebuild(loop_t *loop)
{
    size_t keep = 0;
    for (size_t i = 0; i < loop->nwatches; i++) {
        struct watch *w = loop->watches[i];
        if (w->removed) {
            free(w);
            continue;
        }
        loop->watches[keep++] = w;
    }
    loop->nwatches = keep;
    for (size_t i = 0; i < keep; i++) {
        struct watch *w = loop->watches[i];
        loop->items[i] = (zmq_pollitem_t){
            .socket = w->zsock,
            .fd = w->zsock ? 0 : w->fd,
            .events = (short)(w->events & (LOOP_IN | LOOP_OUT)),
        };
        loop->item_watch[i] = w;
    }
    loop->nitems = keep;
    loop->stale = false;
}

/*
 * Call the callback of every ready registration, in registration order. A callback
 * may remove any entry: a removed entry is skipped even if it was ready. Entries
 * added by a callback join the next iteration. items/item_watch are re-read through
 * loop at every step because a callback's registration may realloc them.
 */
static void dispatch_ready(loop_t *loop)
{
    loop->dispatching = true;
    size_t n = loop->nitems;
    for (size_t i = 0; i < n; i++) {
        unsigned ev = (unsigned)loop->items[i].revents & LOOP_EVENTS;
        struct watch *w = loop->item_watch[i];
        if (!ev || w->removed)
            continue;
        if (w->zsock)
            w->zsock_fn(loop, w->zsock, ev, w->data);
        else
            w->fd_fn(loop, w->fd, ev, w->data);
    }
    loop->dispatching = false;
}

/* ---- timers -------------------------------------------------------------------- */

static bool timer_before(const struct timer *a, const struct timer *b)
{
    return a->when < b->when || (a->when == b->when && a->id < b->id);
}

static void heap_set(loop_t *loop, size_t i, struct timer *t)
{
    loop->heap[i] = t;
    t->heap_idx = i;
}

static void heap_sift_up(loop_t *loop, size_t i)
{
    struct timer *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_before(t, loop->heap[parent]))
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_sift_down(loop_t *loop, size_t i)
{
    struct timer *t = loop->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= loop->nheap)
            break;
        if (child + 1 < loop->nheap && timer_before(loop->heap[child + 1], loop->heap[child]))
            child++;
        if (!timer_before(loop->heap[child], t))
            break;
        heap_set(loop, i, loop->heap[child]);
        i = child;
    }
    heap_set(loop, i, t);
}

/* Insert; the caller guarantees room (timer_cap >= ntimers). O(log n). */
static void heap_push(loop_t *loop, struct timer *t)
{
    heap_set(loop, loop->nheap++, t);
    heap_sift_up(loop, t->heap_idx);
}

/* Take out the timer at position i. O(log n). */
static void heap_remove_at(loop_t *loop, size_t i)
{
    struct timer *t = loop->heap[i];
    t->heap_idx = NOT_IN_HEAP;
    struct timer *last = loop->heap[--loop->nheap];
    if (i == loop->nheap)
        return;
    heap_set(loop, i, last);
    heap_sift_down(loop, i);
    heap_sift_up(loop, last->heap_idx);
}

/* now + delay_ms without overflow; a negative delay means now. */
static int64_t deadline(int64_t now, int64_t delay_ms)
{
    if (delay_ms <= 0)
        return now;
    return delay_ms > INT64_MAX - now ? INT64_MAX : now + delay_ms;
}

/*
 * Room for one more live timer in both the heap and the due list, so that the timer
 * pass can move timers between them without allocating. Amortised O(1).
 */
static int timer_reserve(loop_t *loop)
{
    if (loop->ntimers < loop->timer_cap)
        return 0;
    size_t ncap = loop->timer_cap ? loop->timer_cap * 2 : 8;
    struct timer **h = realloc(loop->heap, ncap * sizeof(*h));
    if (!h)
        return -ENOMEM;
    loop->heap = h;
    struct timer **d = realloc(loop->due, ncap * sizeof(*d));
    if (!d)
        return -ENOMEM;
    loop->due = d;
    loop->timer_cap = ncap;
    return 0;
}

uint64_t loop_add_timer(loop_t *loop, int64_t delay_ms, loop_timer_fn fn, void *data)
{
    if (!loop || !fn || timer_reserve(loop) < 0)
        return 0;
    struct timer *t = calloc(1, sizeof(*t));
    if (!t)
        return 0;
    /* Ids only grow: a stale id can never cancel somebody else's timer. */
    *t = (struct timer){ .id = ++loop->last_timer_id, .when = deadline(loop_now_ms(), delay_ms),
                         .fn = fn, .data = data };
    loop->ntimers++;
    heap_push(loop, t);
    return t->id;
}

/*
 * Cancel by id: a timer waiting in the heap is freed at once; a timer in the running
 * timer pass (including the one whose callback is calling us) is marked, and the pass
 * frees it without calling it again. O(n) to find the id.
 */
int loop_del_timer(loop_t *loop, uint64_t id)
{
    if (!loop || id == 0)
        return -ENOENT;
    for (size_t i = 0; i < loop->nheap; i++) {
        struct timer *t = loop->heap[i];
        if (t->id == id) {
            heap_remove_at(loop, i);
            loop->ntimers--;
            free(t);
            return 0;
        }
    }
    for (size_t i = 0; i < loop->ndue; i++) {
        struct timer *t = loop->due[i];
        if (t && t->id == id && !t->cancelled) {
            t->cancelled = true;
            return 0;
        }
    }
    return -ENOENT;
}

/*
 * Run every timer due at the start of the pass, in deadline order. Timers are first
 * moved out of the heap, so one that re-arms with delay 0, or a new timer added by a
 * callback, waits for the next iteration instead of starving the fds. A re-armed
 * timer's next deadline counts from when its callback returned. O(k log n) for k due.
 */
static void timers_run(loop_t *loop)
{
    int64_t now = loop_now_ms();
    while (loop->nheap > 0 && loop->heap[0]->when <= now) {
        struct timer *t = loop->heap[0];
        heap_remove_at(loop, 0);
        loop->due[loop->ndue++] = t;
    }
    for (size_t i = 0; i < loop->ndue; i++) {
        struct timer *t = loop->due[i];
        int64_t next = -1;
        if (!t->cancelled)
            next = t->fn(loop, t->id, t->data);
        if (t->cancelled || next < 0) {
            /* Keep the slot until the pass ends: loop_del_timer scans `due`. */
            t->cancelled = true;
            continue;
        }
        /* Re-armed: the heap owns it again; the emptied slot is skipped from now on. */
        loop->due[i] = NULL;
        t->when = deadline(loop_now_ms(), next);
        heap_push(loop, t);
    }
    for (size_t i = 0; i < loop->ndue; i++) {
        if (loop->due[i]) {
            free(loop->due[i]);
            loop->ntimers--;
        }
    }
    loop->ndue = 0;
}

/* Milliseconds zmq_poll may sleep: until the nearest timer, or -1 without timers. */
static long poll_timeout(const loop_t *loop)
{
    if (loop->nheap == 0)
        return -1;
    int64_t d = loop->heap[0]->when - loop_now_ms();
    if (d <= 0)
        return 0;
    /* Far deadlines just cost one extra wake-up every 24 days. */
    return d > INT_MAX ? INT_MAX : (long)d;
}

/* ---- signals ------------------------------------------------------------------- */

/*
 * The signalfd is readable: deliver what one read returns (up to 8 signals). More
 * pending signals keep the fd readable for the next iteration, so a signal storm
 * cannot starve the other fds.
 */
static void signals_ready(loop_t *loop, int fd, unsigned events, void *data)
{
    (void)events;
    (void)data;
    struct signalfd_siginfo si[8];
    ssize_t r;
    do
        r = read(fd, si, sizeof(si));
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return; /* EAGAIN: someone else's read won; nothing to deliver */
    size_t n = (size_t)r / sizeof(si[0]);
    for (size_t i = 0; i < n; i++)
        loop->sig_fn(loop, (int)si[i].ssi_signo, loop->sig_data);
}

/*
 * Block the signals (so their default action and handlers no longer run) and read
 * them from a signalfd polled like any fd. sigprocmask changes the calling thread's
 * mask: call this from the loop's thread before starting other threads, which inherit
 * the mask (libzmq's own threads block every signal themselves). Undone by
 * loop_destroy. Returns -EINVAL for an empty list or a signal that cannot be caught,
 * -EALREADY on a second call.
 */
int loop_add_signals(loop_t *loop, const int *signals, loop_signal_fn fn, void *data)
{
    if (!loop || !signals || !fn || signals[0] == 0)
        return -EINVAL;
    if (loop->sigfd >= 0)
        return -EALREADY;
    sigset_t want, before;
    sigemptyset(&want);
    for (const int *s = signals; *s; s++) {
        if (*s == SIGKILL || *s == SIGSTOP || sigaddset(&want, *s) < 0)
            return -EINVAL;
    }
    if (sigprocmask(SIG_BLOCK, &want, &before) < 0)
        return -errno;
    /* Remember only what we blocked, so destroy leaves the caller's own mask alone. */
    sigemptyset(&loop->sigblocked);
    for (const int *s = signals; *s; s++)
        if (!sigismember(&before, *s))
            sigaddset(&loop->sigblocked, *s);

    int rc;
    int fd = signalfd(-1, &want, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto unblock;
    }
    rc = loop_add_fd(loop, fd, LOOP_IN, signals_ready, NULL);
    if (rc < 0)
        goto close_fd;
    loop->sigfd = fd;
    loop->sig_fn = fn;
    loop->sig_data = data;
    return 0;

close_fd:
    (void)close(fd);
unblock:
    (void)sigprocmask(SIG_UNBLOCK, &loop->sigblocked, NULL);
    sigemptyset(&loop->sigblocked);
    return rc;
}

/* ---- running ------------------------------------------------------------------- */

/*
 * Iterate until loop_stop(): rebuild the poll set when registrations changed (O(n)),
 * sleep in zmq_poll until an fd, a socket or the nearest timer is ready, run the ready
 * callbacks, then the due timers. EINTR just starts the next iteration. Returns 0 after
 * loop_stop(); -EBUSY when called from inside a callback; -EDEADLK when nothing is
 * registered and no timer is pending (nothing could ever wake the loop); or the
 * negative errno of zmq_poll (e.g. -ENOTSOCK for a socket closed while registered,
 * -ETERM once its context is terminated).
 */
int loop_run(loop_t *loop)
{
    if (!loop)
        return -EINVAL;
    if (loop->running)
        return -EBUSY;
    loop->running = true;
    loop->stop = false;
    int rc = 0;
    while (!loop->stop) {
        if (loop->stale)
            pollset_rebuild(loop);
        long timeout = poll_timeout(loop);
        int n;
        if (loop->nitems == 0) {
            if (timeout < 0) {
                rc = -EDEADLK;
                break;
            }
            /* zmq_poll with no items is a thin sleep wrapper; poll() says it plainly. */
            n = poll(NULL, 0, (int)timeout);
        } else {
            n = zmq_poll(loop->items, (int)loop->nitems, timeout);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (n > 0)
            dispatch_ready(loop);
        timers_run(loop);
    }
    loop->running = false;
    return rc;
}

void loop_stop(loop_t *loop)
{
    if (loop)
        loop->stop = true;
}
