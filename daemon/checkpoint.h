/*
 * Checkpoints off the scan path (issue 17). SQLite's default copies the WAL back into
 * the database file inside whichever commit brings it to 1000 pages: one scan in ~200
 * waited for everyone's pages. The checkpointer instead hears every commit
 * (db_watch_wal) and, from a loop timer, runs a PASSIVE checkpoint on a thread and a
 * connection of its own (core/job.h, db_checkpoint_file), so that neither the copy nor
 * the database file's fsync holds up the loop or a commit (WAL lets them run side by side):
 * - once the database has been quiet for idle_ms (CHECKPOINT_IDLE_MS in the daemon:
 *   a dock that pauses gets its WAL copied back. Not sooner: a checkpoint that copies
 *   everything makes the next commit start the WAL over, which costs that commit a
 *   second fdatasync (the new WAL header), so at human pace it must not follow every
 *   scan);
 * - under sustained load, on the next loop turn after the WAL passed
 *   CHECKPOINT_SOON_FRAMES, i.e. after the commit that passed it has been answered
 *   and published.
 * Under load the thread's copy never ends by itself (commits append frames while it
 * copies): it copies the bulk, and once at most CHECKPOINT_FINISH_FRAMES are left the
 * loop copies those itself between two transactions, so the WAL is wholly copied and
 * the next write starts it over (it never reaches the backstop).
 * A checkpoint a reader holds up (replay, rmactl, a backup) is tried again every
 * CHECKPOINT_RETRY_MS, at most CHECKPOINT_RETRIES times, then waits for the next
 * commit. The timer exists only while there is something to copy: an idle daemon
 * does not wake for it. db's DB_WAL_BACKSTOP_FRAMES stays as the backstop.
 *
 * The module never logs; the last error is kept for status (checkpoint_error).
 */
#ifndef RMAD_CHECKPOINT_H
#define RMAD_CHECKPOINT_H

#include "core/loop.h"
#include "db/db.h"

#define CHECKPOINT_IDLE_MS      10000
#define CHECKPOINT_SOON_FRAMES  1000
#define CHECKPOINT_RETRY_MS     1000
#define CHECKPOINT_RETRIES      5
#define CHECKPOINT_FINISH_FRAMES 256  /* left after a thread's round: copied on the loop */

typedef struct checkpointer checkpointer_t;

/* Watch db's commits (replaces any other db_watch_wal), checkpointing after idle_ms
 * of quiet. NULL when out of memory. */
checkpointer_t *checkpointer_new(loop_t *loop, db_t *db, int64_t idle_ms);

/* Stop watching and free; db gets SQLite's default back. Accepts NULL; clears *c_p. */
void checkpointer_destroy(checkpointer_t **c_p);

/* Checkpoints run, and the last failure (0 when none; negative errno). */
unsigned long checkpoint_count(const checkpointer_t *c);
int checkpoint_error(const checkpointer_t *c);

#endif
