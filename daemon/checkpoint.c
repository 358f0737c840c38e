/*
 * The checkpointer (daemon/checkpoint.h): one timer, armed by commits.
 */
#include "daemon/checkpoint.h"

#include "core/job.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

struct checkpointer {
    loop_t *loop;
    db_t *db;
    job_t *job;              /* the checkpoint running on its thread, or NULL */
    int job_rc, job_left, job_copied;  /* its result, for done() */
    int prev_copied;         /* the last round's, to see a round that copied nothing */
    bool stopping;           /* destroy: done() arms nothing */
    int64_t idle_ms;         /* quiet before a checkpoint */
    uint64_t timer;          /* 0: none armed */
    bool soon;               /* the armed timer is the next-turn one */
    int frames;              /* in the WAL after the last commit */
    int64_t last_commit_ms;  /* monotonic */
    int retries;
    unsigned long count;
    int error;
};

static int64_t run(loop_t *loop, uint64_t id, void *data);

/* On the job's thread: its own connection, so the copy and the fsync hold up no commit. */
static void work(void *arg)
{
    checkpointer_t *c = arg;
    c->job_left = c->job_copied = 0;
    c->job_rc = db_checkpoint_file(db_path(c->db), &c->job_left, &c->job_copied);
}

/*
 * A thread's checkpoint never catches up with a busy dock by itself: commits append
 * frames while it copies, so the WAL is never wholly copied and never starts over; it
 * would grow to the backstop, whose checkpoint runs inside a commit. So the thread
 * copies the bulk (and fsyncs the database file), and the last few frames are copied
 * here, between two transactions of the loop, the only writer: then everything is
 * copied and the next write starts the WAL over. That costs a few pages and an fsync
 * of a file that is nearly clean already. True when it did so.
 */
static bool finish_here(checkpointer_t *c)
{
    int remaining = c->frames - c->job_copied;
    if (remaining > CHECKPOINT_FINISH_FRAMES || db_in_transaction(c->db))
        return false;
    int left = 0;
    c->error = db_checkpoint(c->db, &left);
    return c->error == 0 && left == 0;
}

/* Back on the loop: count it, and try again while a reader held frames back. */
static void done(void *arg)
{
    checkpointer_t *c = arg;
    c->job = NULL;
    if (c->job_rc == 0)
        c->count++;
    c->error = c->job_rc;
    if (c->stopping)
        return;
    if (c->job_rc == 0 && finish_here(c)) {
        c->retries = 0;
        return;
    }
    bool progress = c->job_rc == 0 && c->job_copied != c->prev_copied;
    c->prev_copied = c->job_copied;
    if (progress && c->frames - c->job_copied > CHECKPOINT_FINISH_FRAMES) {
        /* Commits went on while it copied: another round on the thread, now. */
        if (!c->timer) {
            c->soon = true;
            c->timer = loop_add_timer(c->loop, 0, run, c);
        }
        return;
    }
    if (c->timer)
        return;                  /* commits went on meanwhile: their timer is armed */
    if ((c->job_rc < 0 || c->job_left > 0) && c->retries++ < CHECKPOINT_RETRIES) {
        c->timer = loop_add_timer(c->loop, CHECKPOINT_RETRY_MS, run, c);
        return;
    }
    c->retries = 0;
}

static int64_t run(loop_t *loop, uint64_t id, void *data)
{
    checkpointer_t *c = data;
    int64_t quiet = loop_now_ms() - c->last_commit_ms;
    (void)loop;
    (void)id;
    if (!c->soon && quiet < c->idle_ms)
        return c->idle_ms - quiet;   /* commits went on: wait for a pause */
    c->soon = false;
    c->timer = 0;
    if (c->job)
        return -1;               /* one at a time: its done() looks again */
    if (!(c->job = job_start(c->loop, work, done, c))) {
        /* No thread now: on the loop, as before (a PASSIVE one never waits for locks). */
        c->job_left = c->job_copied = 0;
        c->job_rc = db_checkpoint(c->db, &c->job_left);
        c->job_copied = c->frames - c->job_left;
        done(c);
    }
    return -1;
}

static void committed(int frames, void *data)
{
    checkpointer_t *c = data;

    c->frames = frames;
    c->last_commit_ms = loop_now_ms();
    c->retries = 0;
    bool soon = frames >= CHECKPOINT_SOON_FRAMES;
    if (c->timer && (c->soon || !soon))
        return;
    if (c->timer)
        (void)loop_del_timer(c->loop, c->timer);
    c->soon = soon;
    c->timer = loop_add_timer(c->loop, soon ? 0 : c->idle_ms, run, c);
    /* Out of memory: no timer; the next commit tries again, the backstop holds. */
}

checkpointer_t *checkpointer_new(loop_t *loop, db_t *db, int64_t idle_ms)
{
    checkpointer_t *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->loop = loop;
    c->db = db;
    c->idle_ms = idle_ms;
    db_watch_wal(db, committed, c);
    return c;
}

void checkpointer_destroy(checkpointer_t **c_p)
{
    checkpointer_t *c;

    if (!c_p || !*c_p)
        return;
    c = *c_p;
    if (c->timer)
        (void)loop_del_timer(c->loop, c->timer);
    c->stopping = true;
    job_finish(&c->job);        /* done() runs here and clears it */
    db_watch_wal(c->db, NULL, NULL);
    free(c);
    *c_p = NULL;
}

unsigned long checkpoint_count(const checkpointer_t *c)
{
    return c ? c->count : 0;
}

int checkpoint_error(const checkpointer_t *c)
{
    return c ? c->error : -EINVAL;
}
