/*
 * Long work on a thread (core/job.h). One thread and one pipe per job: jobs are rare
 * (an import, a reload), so a pool would only add state. The thread writes one byte
 * to the pipe when work() returns; the loop sees the pipe readable, joins the thread
 * (already finished: the join does not wait) and runs done().
 */
#include "core/job.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct job {
    loop_t *loop;
    job_fn work, done;
    void *arg;
    pthread_t thread;
    int pipe[2];            /* [0] on the loop, [1] written once by the thread */
};

static void *job_main(void *data)
{
    job_t *j = data;
    j->work(j->arg);
    char b = 1;
    while (write(j->pipe[1], &b, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

/* The thread is done (or about to be: the byte is its last act). */
static void job_end(job_t *j)
{
    (void)pthread_join(j->thread, NULL);
    (void)loop_del_fd(j->loop, j->pipe[0]);
    (void)close(j->pipe[0]);
    (void)close(j->pipe[1]);
    job_fn done = j->done;
    void *arg = j->arg;
    free(j);
    done(arg);
}

static void job_ready(loop_t *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    (void)events;
    job_end(data);
}

job_t *job_start(loop_t *loop, job_fn work, job_fn done, void *arg)
{
    if (!loop || !work || !done) {
        errno = EINVAL;
        return NULL;
    }
    job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    *j = (job_t){ .loop = loop, .work = work, .done = done, .arg = arg };
    if (pipe2(j->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        free(j);
        return NULL;
    }
    int rc = loop_add_fd(loop, j->pipe[0], LOOP_IN, job_ready, j);
    if (rc == 0 && (rc = -pthread_create(&j->thread, NULL, job_main, j)) < 0)
        (void)loop_del_fd(loop, j->pipe[0]);
    if (rc < 0) {
        (void)close(j->pipe[0]);
        (void)close(j->pipe[1]);
        free(j);
        errno = -rc;
        return NULL;
    }
    return j;
}

void job_finish(job_t **job_p)
{
    if (!job_p || !*job_p)
        return;
    job_t *j = *job_p;
    *job_p = NULL;
    job_end(j);
}
