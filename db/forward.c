/*
 * Forward marks: how far each forwarder's sink has acknowledged the outbox. One row
 * per sink; the row is the forwarder's only state, so a restart (or a SIGKILL)
 * resumes from it and re-sends at most the unacknowledged tail.
 */
#include "db/db_internal.h"

#include <errno.h>

int db_sink_mark_get(db_t *db, const char *sink, uint64_t *seq, int64_t *updated_ms)
{
    static const char sql[] = "SELECT seq, updated_ms FROM forward_marks WHERE sink = ?1";
    sqlite3_stmt *st = db_stmt(db, ST_FORWARD_MARK_GET, sql);
    int rc;

    if (!st)
        return -EIO;
    rc = sqlite3_bind_text(st, 1, sink, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        *seq = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
        *updated_ms = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
        db_stmt_done(st);
        return 0;
    }
    db_stmt_done(st);
    return db_fail(db, rc, "forward mark");
}

int db_sink_mark_set(db_t *db, const char *sink, uint64_t seq, int64_t now_ms)
{
    static const char sql[] =
        "INSERT INTO forward_marks (sink, seq, updated_ms) VALUES (?1, ?2, ?3)\n"
        "ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq, updated_ms = excluded.updated_ms";
    sqlite3_stmt *st;
    int rc;

    if (seq > INT64_MAX)
        return db_fail_msg(db, -EINVAL, "forward mark: seq %llu out of range",
                           (unsigned long long)seq);
    if (!(st = db_stmt(db, ST_FORWARD_MARK_SET, sql)))
        return -EIO;
    rc = sqlite3_bind_text(st, 1, sink, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 3, now_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    db_stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, rc, "forward mark update");
    return 0;
}
