/*
 * The event outbox: every event, in the transaction of the change it reports, with
 * a gapless seq. seq is max(seq) + 1 read inside the writer's transaction (BEGIN
 * IMMEDIATE holds the write lock), so a rolled-back transaction gives its number
 * back and no counter can drift from the table; the schema's trigger rejects any
 * other number.
 */
#include "db/db_internal.h"

#include <errno.h>
#include <string.h>

int db_outbox_last_seq(db_t *db, uint64_t *out)
{
    /* max() of the INTEGER PRIMARY KEY: one b-tree descent, not a scan. */
    static const char sql[] = "SELECT coalesce(max(seq), 0) FROM outbox";
    sqlite3_stmt *st = db_stmt(db, ST_OUTBOX_LAST_SEQ, sql);
    int rc;

    if (!st)
        return -EIO;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(st, 0);
    db_stmt_done(st);
    return rc == SQLITE_ROW ? 0 : db_fail(db, rc, "outbox last seq");
}

int db_outbox_next_seq(db_t *db, uint64_t *out)
{
    uint64_t last;
    int r;

    if (!db_in_transaction(db))
        return db_fail_msg(db, -EINVAL, "outbox next seq: not inside a transaction");
    r = db_outbox_last_seq(db, &last);
    if (r < 0)
        return r;
    *out = last + 1;
    return 0;
}

int db_outbox_insert(db_t *db, uint64_t seq, const char *topic, const char *body)
{
    static const char sql[] = "INSERT INTO outbox (seq, topic, body) VALUES (?1, ?2, ?3)";
    sqlite3_stmt *st;
    int rc;

    if (!db_in_transaction(db))
        return db_fail_msg(db, -EINVAL, "outbox insert: not inside a transaction");
    if (seq == 0 || seq > INT64_MAX)
        return db_fail_msg(db, -EINVAL, "outbox insert: seq %llu out of range",
                           (unsigned long long)seq);
    st = db_stmt(db, ST_OUTBOX_INSERT, sql);
    if (!st)
        return -EIO;
    rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 2, topic, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 3, body, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    db_stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, rc, "outbox insert");
    return 0;
}

/*
 * Step st (columns seq, topic, body, created_at; rc the binding's result) and call fn
 * for each event until it returns non-zero, which is returned.
 */
static int walk_events(db_t *db, sqlite3_stmt *st, int rc, db_event_fn fn, void *data,
                       const char *what)
{
    int r = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        db_event_t ev = {
            .seq = (uint64_t)sqlite3_column_int64(st, 0),
            .topic = (const char *)sqlite3_column_text(st, 1),
            .created_at = (const char *)sqlite3_column_text(st, 3),
        };
        /* text before bytes, in this order (initializers are unsequenced). */
        ev.body = (const char *)sqlite3_column_text(st, 2);
        ev.body_len = (size_t)sqlite3_column_bytes(st, 2);
        if ((r = fn(&ev, data)) != 0)
            break;
        rc = SQLITE_OK;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = db_fail(db, rc, what);
    db_stmt_done(st);
    return r;
}

int db_outbox_foreach(db_t *db, uint64_t from, unsigned limit, db_event_fn fn, void *data)
{
    static const char sql[] =
        "SELECT seq, topic, body, created_at FROM outbox WHERE seq >= ?1 ORDER BY seq LIMIT ?2";
    sqlite3_stmt *st = db_stmt(db, ST_OUTBOX_FROM, sql);
    int rc;

    if (!st)
        return -EIO;
    if (from > INT64_MAX)
        from = INT64_MAX;   /* no event has such a seq: an empty replay */
    rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)from);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
    return walk_events(db, st, rc, fn, data, "outbox replay");
}

int db_outbox_foreach_receipt(db_t *db, int64_t receipt_id, unsigned limit, db_event_fn fn,
                              void *data)
{
    static const char sql[] =
        "SELECT seq, topic, body, created_at FROM outbox\n"
        "WHERE json_extract(body, '$.receipt') = ?1 ORDER BY seq LIMIT ?2";
    sqlite3_stmt *st = db_stmt(db, ST_OUTBOX_OF_RECEIPT, sql);
    int rc;

    if (!st)
        return -EIO;
    rc = sqlite3_bind_int64(st, 1, receipt_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
    return walk_events(db, st, rc, fn, data, "receipt events");
}
