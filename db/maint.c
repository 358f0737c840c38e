/*
 * Database care (db/maint.h): backup, integrity check, retention, acknowledgements.
 *
 * These run rarely (an operator's command, an hourly idle timer, a subscriber's ack),
 * so their statements are prepared per call rather than kept in the db_t's cache.
 */
#include "db/db_internal.h"
#include "db/maint.h"
#include "core/msgf.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BACKUP_BUSY_RETRIES 200    /* x 25 ms: how long a backup waits for a lock */
#define INTEGRITY_ROWS      10     /* findings reported by db_integrity_check */

/* ---- read-only connections ------------------------------------------------------ */

/* Open an existing database read only. Returns 0 or -errno with *errmsg set. */
static int open_readonly(const char *path, sqlite3 **out, char **errmsg)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        int rc = -errno;
        *errmsg = msgf("%s: %s", path, strerror(-rc));
        return rc;
    }
    sqlite3 *sql = NULL;
    int rc = sqlite3_open_v2(path, &sql, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(sql, 5000);
    if (rc != SQLITE_OK) {
        *errmsg = msgf("%s: %s", path, sql ? sqlite3_errmsg(sql) : "out of memory");
        int e = sql ? db_errno(sql, rc) : -ENOMEM;
        sqlite3_close(sql);
        return e;
    }
    sqlite3_extended_result_codes(sql, 1);
    *out = sql;
    return 0;
}

/* The rows of a one-column PRAGMA, joined with "; " (at most max rows). */
static int pragma_rows(sqlite3 *sql, const char *pragma, int max, char **out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(sql, pragma, -1, &st, NULL);
    char *text = NULL;
    for (int n = 0; rc == SQLITE_OK && n < max;) {
        int s = sqlite3_step(st);
        if (s == SQLITE_DONE)
            break;
        if (s != SQLITE_ROW) {
            rc = s;
            break;
        }
        const char *row = (const char *)sqlite3_column_text(st, 0);
        char *next = msgf("%s%s%s", text ? text : "", text ? "; " : "", row ? row : "");
        free(text);
        if (!(text = next))
            rc = SQLITE_NOMEM;
        n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) {
        free(text);
        return rc;
    }
    *out = text ? text : strdup("");
    return *out ? SQLITE_OK : SQLITE_NOMEM;
}

int db_integrity_check(const char *path, char **errmsg)
{
    sqlite3 *sql = NULL;
    *errmsg = NULL;
    int rc = open_readonly(path, &sql, errmsg);
    if (rc < 0)
        return rc;
    char *rows = NULL;
    char pragma[64];
    snprintf(pragma, sizeof(pragma), "PRAGMA integrity_check(%d)", INTEGRITY_ROWS);
    int s = pragma_rows(sql, pragma, INTEGRITY_ROWS, &rows);
    if (s != SQLITE_OK) {
        *errmsg = msgf("%s: %s", path, sqlite3_errmsg(sql));
        rc = db_errno(sql, s);
    } else if (strcmp(rows, "ok") != 0) {
        *errmsg = msgf("%s: integrity_check: %s", path, rows);
        rc = -EBADMSG;
    }
    free(rows);
    sqlite3_close(sql);
    return rc;
}

/* ---- backup --------------------------------------------------------------------- */

/* fsync a file or directory by path. */
static int sync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    (void)close(fd);
    return rc;
}

/*
 * The copy itself, into tmp (an empty file): backup in one step, turn the copy into a
 * single rollback-journal file (nothing beside it is needed to open it), quick_check.
 */
static int backup_into(sqlite3 *src, const char *tmp, int *pages, char **errmsg)
{
    sqlite3 *dst = NULL;
    int rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        *errmsg = msgf("%s: %s", tmp, dst ? sqlite3_errmsg(dst) : "out of memory");
        rc = dst ? db_errno(dst, rc) : -ENOMEM;
        sqlite3_close(dst);
        return rc;
    }
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
        *errmsg = msgf("backup: %s", sqlite3_errmsg(dst));
        rc = db_errno(dst, sqlite3_errcode(dst));
        sqlite3_close(dst);
        return rc;
    }
    /*
     * -1: every page in one step, under one read lock on the source, so the copy is
     * one committed state. Smaller steps would restart whenever the daemon commits.
     */
    int s, tries = 0;
    while ((s = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || s == SQLITE_LOCKED) {
        if (++tries > BACKUP_BUSY_RETRIES)
            break;
        sqlite3_sleep(25);
    }
    *pages = sqlite3_backup_pagecount(b);
    (void)sqlite3_backup_finish(b);
    if (s != SQLITE_DONE) {
        *errmsg = msgf("backup: %s", s == SQLITE_BUSY || s == SQLITE_LOCKED
                                         ? "the database stayed locked" : sqlite3_errstr(s));
        rc = db_errno(dst, s);
        sqlite3_close(dst);
        return rc;
    }
    char *mode = NULL, *check = NULL;
    s = pragma_rows(dst, "PRAGMA journal_mode=DELETE", 1, &mode);
    if (s == SQLITE_OK)
        s = pragma_rows(dst, "PRAGMA quick_check", INTEGRITY_ROWS, &check);
    if (s != SQLITE_OK) {
        *errmsg = msgf("backup: %s: %s", tmp, sqlite3_errmsg(dst));
        rc = db_errno(dst, s);
    } else if (strcmp(check, "ok") != 0) {
        *errmsg = msgf("backup: the copy fails quick_check: %s", check);
        rc = -EBADMSG;
    } else {
        rc = 0;
    }
    free(mode);
    free(check);
    if (sqlite3_close(dst) != SQLITE_OK && rc == 0) {
        *errmsg = msgf("backup: closing %s failed", tmp);
        rc = -EIO;
    }
    return rc;
}

int db_backup_file(const char *src_path, const char *dest, int *pages, char **errmsg)
{
    *errmsg = NULL;
    sqlite3 *src = NULL;
    int rc = open_readonly(src_path, &src, errmsg);
    if (rc < 0)
        return rc;
    char *tmp = msgf("%s.tmp-XXXXXX", dest);
    int fd = tmp ? mkostemp(tmp, O_CLOEXEC) : -1;
    if (fd < 0) {
        rc = tmp ? -errno : -ENOMEM;
        *errmsg = msgf("%s: %s", dest, strerror(-rc));
        free(tmp);
        sqlite3_close(src);
        return rc;
    }
    (void)close(fd);
    int n = 0;
    rc = backup_into(src, tmp, &n, errmsg);
    sqlite3_close(src);
    if (rc == 0 && (rc = sync_path(tmp, O_RDONLY)) < 0)
        *errmsg = msgf("%s: fsync: %s", tmp, strerror(-rc));
    if (rc == 0 && rename(tmp, dest) < 0) {
        rc = -errno;
        *errmsg = msgf("%s: %s", dest, strerror(-rc));
    }
    if (rc == 0) {
        char *copy = strdup(dest);
        /* The rename itself is durable once the directory is synced. */
        if (copy)
            (void)sync_path(dirname(copy), O_RDONLY | O_DIRECTORY);
        free(copy);
        *pages = n;
    } else {
        (void)unlink(tmp);
        char *j = msgf("%s-journal", tmp);
        if (j)
            (void)unlink(j);
        free(j);
    }
    free(tmp);
    return rc;
}

/* ---- retention ------------------------------------------------------------------ */

/* Run one statement with bindings (text cutoff ?1, integers ?2 ?3); *changes set. */
static int run(db_t *db, const char *sql, const char *cutoff, int64_t a, int64_t b,
               const char *what, unsigned *changes)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(db, rc, what);
    int np = sqlite3_bind_parameter_count(st);
    if (np >= 1)
        rc = sqlite3_bind_text(st, 1, cutoff, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && np >= 2)
        rc = sqlite3_bind_int64(st, 2, a);
    if (rc == SQLITE_OK && np >= 3)
        rc = sqlite3_bind_int64(st, 3, b);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, rc, what);
    if (changes)
        *changes = (unsigned)sqlite3_changes(db->sql);
    return 0;
}

int db_retention_batch(db_t *db, int64_t cutoff_ms, uint64_t keep_seq, unsigned limit,
                       db_retention_t *out)
{
    char cutoff[DB_TIME_STRLEN];
    db_retention_t r = { 0 };
    if (!db || !out || limit == 0)
        return -EINVAL;
    db_time_format(cutoff_ms, cutoff);
    int64_t keep = keep_seq > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)keep_seq;
    int rc = db_begin(db);
    if (rc < 0)
        return rc;
    /* The gate the triggers of migration 5 look for: only rows older than cutoff. */
    rc = run(db, "INSERT INTO retention_gate (id, cutoff) VALUES (1, ?1)", cutoff, 0, 0,
             "retention gate", NULL);
    /* Oldest first, through scans_by_time; a scan of an open receipt is its checklist;
     * the newest scan stays, the ids go on from it (migration 7). */
    if (rc == 0)
        rc = run(db,
                 "DELETE FROM scans WHERE id IN (SELECT id FROM scans WHERE at < ?1"
                 " AND (receipt_id IS NULL OR receipt_id NOT IN"
                 "      (SELECT id FROM receipts WHERE state = 'open'))"
                 " AND id < (SELECT max(id) FROM scans)"
                 " ORDER BY at LIMIT ?2)",
                 cutoff, limit, 0, "retention: scans", &r.scans);
    /*
     * The oldest `limit` events below keep_seq and below the newest, of which those
     * stored before cutoff: a bounded walk of the primary key even when none is old.
     */
    if (rc == 0)
        rc = run(db,
                 "DELETE FROM outbox WHERE seq IN (SELECT seq FROM"
                 " (SELECT seq, created_at FROM outbox"
                 "  WHERE seq < min(?3, (SELECT max(seq) FROM outbox)) ORDER BY seq LIMIT ?2)"
                 " WHERE created_at < ?1)",
                 cutoff, limit, keep, "retention: events", &r.events);
    if (rc == 0)
        rc = run(db, "DELETE FROM retention_gate", NULL, 0, 0, "retention gate", NULL);
    if (rc == 0)
        rc = db_commit(db);
    else
        (void)db_rollback(db);
    if (rc == 0)
        *out = r;
    return rc;
}

/* ---- acknowledgements ----------------------------------------------------------- */

int db_subscriber_ack(db_t *db, const char *name, uint64_t seq, int64_t now_ms)
{
    uint64_t last = 0;
    if (!db || !name || !*name || seq > (uint64_t)INT64_MAX)
        return -EINVAL;
    int rc = db_outbox_last_seq(db, &last);
    if (rc < 0)
        return rc;
    if (seq > last)
        return db_fail_msg(db, -ERANGE, "ack %llu: past the last event (%llu)",
                           (unsigned long long)seq, (unsigned long long)last);
    char at[DB_TIME_STRLEN];
    db_time_format(now_ms, at);
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(db->sql,
                            "INSERT INTO subscriber_acks (name, seq, at) VALUES (?1, ?2, ?3)"
                            " ON CONFLICT (name) DO UPDATE SET seq = max(seq, excluded.seq),"
                            " at = excluded.at",
                            -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (int64_t)seq);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 3, at, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, rc, "ack");
}

int db_subscriber_acked(db_t *db, const char *name, uint64_t *seq)
{
    sqlite3_stmt *st = NULL;
    if (!db || !name || !seq)
        return -EINVAL;
    int rc = sqlite3_prepare_v2(db->sql, "SELECT seq FROM subscriber_acks WHERE name = ?1",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    uint64_t v = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(db, rc, "acked");
    *seq = v;
    return 0;
}
