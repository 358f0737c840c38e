/*
 * One piece of long work on its own thread, its result handed back to the loop.
 *
 * The loop must never run anything that takes seconds (an RMA import of 100,000 rows,
 * a policy reload): every scan and every rmactl request would wait. job_start() runs
 * work(arg) on a new thread and, once it returns, done(arg) on the loop's thread, from
 * the loop's own poll (a pipe registered with it). work() must not touch anything the
 * loop uses (it gets its own SQLite connection, its own copies); done() may use
 * anything. There is no cancellation: work() is bounded by its input's limits.
 */
#ifndef RMAD_JOB_H
#define RMAD_JOB_H

#include "core/loop.h"

typedef struct job job_t;

typedef void (*job_fn)(void *arg);

/*
 * Start work(arg) now. Returns the job (the caller keeps it only to wait for it at
 * shutdown: it frees itself right after done() returns), or NULL with errno set
 * (thread or pipe could not be made; nothing ran).
 */
job_t *job_start(loop_t *loop, job_fn work, job_fn done, void *arg);

/*
 * Shutdown: wait for a running work() to finish, then run done(arg) here and free
 * the job. Accepts NULL and clears the pointer. The caller must drop its pointer when
 * done() runs (done() is the place to do that).
 */
void job_finish(job_t **job_p);

#endif
