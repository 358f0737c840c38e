/*
 * The event loop: the one place in rmad that waits. It owns every file descriptor the
 * daemon watches (scanner inputs, libusb pollfds, signals via signalfd) and every
 * ZeroMQ socket, and runs timers. Built on zmq_poll(), which polls ZeroMQ sockets and
 * plain fds together; an idle loop sleeps until the next timer or event.
 *
 * Callbacks run on the loop's thread and may add or remove any registration,
 * including their own, and may call loop_stop().
 */
#ifndef RMAD_LOOP_H
#define RMAD_LOOP_H

#include <stdint.h>

typedef struct loop loop_t;

/* Event bits, the same values as POLLIN/POLLOUT/POLLERR (and ZMQ_POLLIN/...). */
#define LOOP_IN  1u
#define LOOP_OUT 2u
#define LOOP_ERR 4u

typedef void (*loop_fd_fn)(loop_t *loop, int fd, unsigned events, void *data);
typedef void (*loop_zsock_fn)(loop_t *loop, void *zsock, unsigned events, void *data);
typedef void (*loop_signal_fn)(loop_t *loop, int signo, void *data);

/*
 * A timer callback returns the delay in milliseconds until it should run again, or
 * a negative value to be removed (the redis ae convention).
 */
typedef int64_t (*loop_timer_fn)(loop_t *loop, uint64_t id, void *data);

/* New loop, or NULL (errno set). */
loop_t *loop_new(void);

/* Free the loop (not the fds or sockets registered with it). Accepts NULL. */
void loop_destroy(loop_t **loop_p);

/* Watch fd for events (LOOP_IN/LOOP_OUT). One registration per fd: -EEXIST otherwise. */
int loop_add_fd(loop_t *loop, int fd, unsigned events, loop_fd_fn fn, void *data);

/* Change the events watched on fd. -ENOENT when fd is not registered. */
int loop_mod_fd(loop_t *loop, int fd, unsigned events);

/* Stop watching fd (does not close it). -ENOENT when not registered. */
int loop_del_fd(loop_t *loop, int fd);

/* Watch a ZeroMQ socket (void * from zmq_socket) for ZMQ_POLLIN/ZMQ_POLLOUT. */
int loop_add_zsock(loop_t *loop, void *zsock, unsigned events, loop_zsock_fn fn, void *data);
int loop_del_zsock(loop_t *loop, void *zsock);

/*
 * Run fn after delay_ms (0 = on the next iteration). Returns a timer id > 0, or 0 when
 * out of memory.
 */
uint64_t loop_add_timer(loop_t *loop, int64_t delay_ms, loop_timer_fn fn, void *data);

/* Cancel a timer; -ENOENT when it already ran out or never existed. */
int loop_del_timer(loop_t *loop, uint64_t id);

/*
 * Deliver these signals through the loop (blocked, then read from a signalfd).
 * Call once; signals is terminated by 0. Returns 0 or -errno.
 */
int loop_add_signals(loop_t *loop, const int *signals, loop_signal_fn fn, void *data);

/*
 * Run until loop_stop() is called. Returns 0 after a stop, or -errno when polling
 * itself fails (never because a callback reported an error).
 */
int loop_run(loop_t *loop);

/* Make loop_run return after the current iteration. */
void loop_stop(loop_t *loop);

/* Monotonic milliseconds, the loop's clock for timers and double-read windows. */
int64_t loop_now_ms(void);

/* Wall-clock Unix milliseconds: what the audit trail and event times record. */
int64_t loop_wall_ms(void);

#endif
