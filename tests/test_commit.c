/*
 * The commit path (issue 17): WAL checkpoints from the checkpointer's timer, on a
 * thread of their own, never inside a commit.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/loop.h"
#include "daemon/checkpoint.h"
#include "db/db.h"
#include "tests/helpers.h"
#include "tests/suites.h"

#define IDLE_MS 100   /* the daemon's is CHECKPOINT_IDLE_MS */

static db_t *fresh(void)
{
    char path[4200];
    db_t *db = NULL;
    char *err = NULL;

    (void)remove(th_tmpdb_path());
    snprintf(path, sizeof(path), "%s-wal", th_tmpdb_path());
    (void)remove(path);
    snprintf(path, sizeof(path), "%s-shm", th_tmpdb_path());
    (void)remove(path);
    if (db_open(th_tmpdb_path(), &db, &err) < 0) {
        fprintf(stderr, "\n  db_open: %s\n", err);
        free(err);
    }
    return db;
}

/* The -wal file's size: it grows with commits (a checkpoint never shrinks it). */
static long wal_size(void)
{
    char path[4200];
    struct stat stt;

    snprintf(path, sizeof(path), "%s-wal", th_tmpdb_path());
    return stat(path, &stt) == 0 ? (long)stt.st_size : -1;
}

static int insert_scan(db_t *db, int i)
{
    char text[32];
    snprintf(text, sizeof(text), "S%d", i);
    db_scan_t s = { .at = 1700000000000 + i, .station = "dock1", .scanner = "tcp", .raw = text,
                    .raw_len = strlen(text), .text = text, .kind = "unknown", .accepted = true };
    int r = db_begin(db);
    if (r == 0)
        r = db_scan_insert(db, &s, NULL);
    if (r == 0)
        r = db_commit(db);
    return r;
}

static int64_t stop_after(loop_t *loop, uint64_t id, void *data)
{
    (void)id;
    (void)data;
    loop_stop(loop);
    return -1;
}

/*
 * Commits leave the WAL alone, however many there are below the "soon" mark; after
 * IDLE_MS of quiet one PASSIVE checkpoint copies everything back, and then
 * no timer is left (an idle daemon does not wake for checkpoints).
 */
static void test_checkpoint_when_idle(void)
{
    db_t *db = fresh();
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    loop_t *loop = loop_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    checkpointer_t *c = checkpointer_new(loop, db, IDLE_MS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);

    for (int i = 0; i < 50; i++)
        CU_ASSERT_EQUAL(insert_scan(db, i), 0);
    CU_ASSERT_EQUAL(checkpoint_count(c), 0);
    /* Nothing copied yet: a checkpoint now still finds every frame to copy. */
    sqlite3 *other = NULL;
    int log = -1, copied = -1;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(th_tmpdb_path(), &other), SQLITE_OK);
    CU_ASSERT(wal_size() > 0);

    (void)loop_add_timer(loop, IDLE_MS * 4, stop_after, NULL);
    CU_ASSERT_EQUAL(loop_run(loop), 0);
    CU_ASSERT_EQUAL(checkpoint_count(c), 1);
    CU_ASSERT_EQUAL(checkpoint_error(c), 0);
    CU_ASSERT_EQUAL(sqlite3_wal_checkpoint_v2(other, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied),
                    SQLITE_OK);
    CU_ASSERT_EQUAL(log, copied);   /* everything was in the database file already */
    /* No timer is left: an empty loop with a stop timer runs only that one. */
    (void)loop_add_timer(loop, IDLE_MS * 4, stop_after, NULL);
    CU_ASSERT_EQUAL(loop_run(loop), 0);
    CU_ASSERT_EQUAL(checkpoint_count(c), 1);
    sqlite3_close(other);

    /* Past CHECKPOINT_SOON_FRAMES (each commit writes at least one frame): not inside
     * the commit that passed it, but on the next loop turn, without waiting for quiet. */
    for (int i = 0; i < CHECKPOINT_SOON_FRAMES + 10; i++)
        CU_ASSERT_EQUAL_FATAL(insert_scan(db, 1000 + i), 0);
    CU_ASSERT_EQUAL(checkpoint_count(c), 1);
    /* Commits go on every turn, so the database is never quiet: only the next-turn
     * checkpoint (on its thread) can be the one counted. */
    for (int k = 0; k < 3000 && checkpoint_count(c) < 2; k++) {
        CU_ASSERT_EQUAL_FATAL(insert_scan(db, 5000 + k), 0);
        (void)loop_add_timer(loop, 1, stop_after, NULL);
        CU_ASSERT_EQUAL(loop_run(loop), 0);
    }
    CU_ASSERT(checkpoint_count(c) >= 2);
    CU_ASSERT_EQUAL(checkpoint_error(c), 0);

    checkpointer_destroy(&c);
    CU_ASSERT_PTR_NULL(c);
    checkpointer_destroy(&c);
    loop_destroy(&loop);
    db_close(&db);
}

int suite_commit(void)
{
    CU_pSuite s = CU_add_suite("commit", th_tmpdb_setup, th_tmpdb_teardown);
    if (!s || !CU_add_test(s, "checkpoints when idle, never inside a commit",
                           test_checkpoint_when_idle))
        return -1;
    return 0;
}
