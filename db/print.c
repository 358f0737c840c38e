/*
 * The print queue: one row per label, written in the transaction of the receipt that
 * calls for it, then moved along by the daemon's spooler as CUPS answers. Finished
 * rows are final (schema trigger), so the table is also the history of every label.
 */
#include "db/db_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const why_names[] = {
    [DB_PRINT_DISPOSITION] = "disposition",
    [DB_PRINT_REFUSAL] = "refusal",
    [DB_PRINT_REPRINT] = "reprint",
};
#define WHY_COUNT (int)(sizeof(why_names) / sizeof(why_names[0]))

static const char *const state_names[] = {
    [DB_PRINT_QUEUED] = "queued",
    [DB_PRINT_SUBMITTED] = "submitted",
    [DB_PRINT_PRINTED] = "printed",
    [DB_PRINT_CANCELLED] = "cancelled",
};
#define STATE_COUNT (int)(sizeof(state_names) / sizeof(state_names[0]))

const char *db_print_why_name(db_print_why_t why)
{
    return (int)why >= 0 && (int)why < WHY_COUNT ? why_names[why] : "invalid";
}

const char *db_print_state_name(db_print_state_t state)
{
    return (int)state >= 0 && (int)state < STATE_COUNT ? state_names[state] : "invalid";
}

/* Names come from the schema's CHECKed columns, so an unknown one cannot happen. */
static int name_index(const char *const *names, int n, const unsigned char *s)
{
    for (int i = 0; i < n; i++)
        if (s && strcmp((const char *)s, names[i]) == 0)
            return i;
    return 0;
}

void db_print_job_clear(db_print_job_t *job)
{
    if (!job)
        return;
    free(job->station);
    free(job->printer);
    free(job->last_error);
    memset(job, 0, sizeof(*job));
}

int db_print_enqueue(db_t *db, int64_t receipt_id, const char *station, const char *printer,
                     db_print_why_t why, int64_t now_ms, int64_t *id)
{
    static const char sql[] =
        "INSERT INTO print_jobs (receipt_id, station, printer, why, created_at, next_at)\n"
        "VALUES (?1, ?2, ?3, ?4, ?5, ?5)";
    sqlite3_stmt *st;
    int rc;

    if (receipt_id <= 0 || !station || !*station || !printer || !*printer || now_ms <= 0 ||
        (int)why < 0 || (int)why >= WHY_COUNT)
        return db_fail_msg(db, -EINVAL, "print enqueue: receipt, station, printer and time are required");
    st = db_stmt(db, ST_PRINT_INSERT, sql);
    if (!st)
        return -EIO;
    rc = sqlite3_bind_int64(st, 1, receipt_id);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 2, station, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 3, printer, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 4, why_names[why], -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = db_bind_time(st, 5, now_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    db_stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, rc, "print enqueue");
    if (id)
        *id = sqlite3_last_insert_rowid(db->sql);
    return 0;
}

#define JOB_COLS \
    "id, receipt_id, station, printer, why, state, created_at, next_at, attempts, " \
    "coalesce(cups_job, 0), last_error, done_at"

/* The current row; strings borrowed from the statement. */
static void row_borrowed(sqlite3_stmt *st, db_print_job_t *j)
{
    j->id = sqlite3_column_int64(st, 0);
    j->receipt_id = sqlite3_column_int64(st, 1);
    j->station = (char *)sqlite3_column_text(st, 2);
    j->printer = (char *)sqlite3_column_text(st, 3);
    j->why = (db_print_why_t)name_index(why_names, WHY_COUNT, sqlite3_column_text(st, 4));
    j->state = (db_print_state_t)name_index(state_names, STATE_COUNT, sqlite3_column_text(st, 5));
    j->created_at = db_column_time(st, 6);
    j->next_at = db_column_time(st, 7);
    j->attempts = sqlite3_column_int(st, 8);
    j->cups_job = sqlite3_column_int(st, 9);
    j->last_error = (char *)sqlite3_column_text(st, 10);
    j->done_at = db_column_time(st, 11);
}

int db_print_get(db_t *db, int64_t id, db_print_job_t *out)
{
    static const char sql[] = "SELECT " JOB_COLS " FROM print_jobs WHERE id = ?1";
    sqlite3_stmt *st = db_stmt(db, ST_PRINT_GET, sql);
    int rc, r = 0;

    if (!st)
        return -EIO;
    rc = sqlite3_bind_int64(st, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        db_print_job_t j;
        int oom = 0;
        row_borrowed(st, &j);
        j.station = db_column_strdup(st, 2, &oom);
        j.printer = db_column_strdup(st, 3, &oom);
        j.last_error = db_column_strdup(st, 10, &oom);
        if (oom) {
            db_print_job_clear(&j);
            r = db_fail_msg(db, -ENOMEM, "print job get: out of memory");
        } else {
            *out = j;
        }
    } else if (rc == SQLITE_DONE) {
        r = db_fail_msg(db, -ENOENT, "print job %lld: not found", (long long)id);
    } else {
        r = db_fail(db, rc, "print job get");
    }
    db_stmt_done(st);
    return r;
}

int db_print_foreach_unfinished(db_t *db, db_print_fn fn, void *data)
{
    /* Served by the partial index print_jobs_unfinished. */
    static const char sql[] =
        "SELECT " JOB_COLS " FROM print_jobs\n"
        "WHERE state = 'queued' OR state = 'submitted' ORDER BY id";
    sqlite3_stmt *st = db_stmt(db, ST_PRINT_UNFINISHED, sql);
    int rc, r = 0;

    if (!st)
        return -EIO;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        db_print_job_t j;
        row_borrowed(st, &j);
        if ((r = fn(&j, data)) != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = db_fail(db, rc, "print queue");
    db_stmt_done(st);
    return r;
}

/* Run a one-row UPDATE whose first parameter is the job id. */
static int update_one(db_t *db, sqlite3_stmt *st, int rc, int64_t id, const char *what)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    db_stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, rc, what);
    if (sqlite3_changes(db->sql) == 0)
        return db_fail_msg(db, -ENOENT, "print job %lld: not found", (long long)id);
    return 0;
}

int db_print_submitted(db_t *db, int64_t id, int cups_job)
{
    static const char sql[] =
        "UPDATE print_jobs SET state = 'submitted', cups_job = ?2 WHERE id = ?1";
    sqlite3_stmt *st;

    if (cups_job <= 0)
        return db_fail_msg(db, -EINVAL, "print job %lld: CUPS job id %d", (long long)id,
                           cups_job);
    if (!(st = db_stmt(db, ST_PRINT_SUBMITTED, sql)))
        return -EIO;
    int rc = sqlite3_bind_int64(st, 1, id);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 2, cups_job);
    return update_one(db, st, rc, id, "print job submitted");
}

/* printed and cancelled: the two final states. */
static int finish(db_t *db, int64_t id, db_print_state_t state, const char *error,
                  int64_t now_ms)
{
    static const char sql[] =
        "UPDATE print_jobs SET state = ?2, last_error = coalesce(?3, last_error), done_at = ?4\n"
        "WHERE id = ?1";
    sqlite3_stmt *st = db_stmt(db, ST_PRINT_FINISH, sql);

    if (!st)
        return -EIO;
    int rc = sqlite3_bind_int64(st, 1, id);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 2, state_names[state], -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = db_bind_text(st, 3, error);
    if (rc == SQLITE_OK) rc = db_bind_time(st, 4, now_ms);
    return update_one(db, st, rc, id, "print job finish");
}

int db_print_printed(db_t *db, int64_t id, int64_t now_ms)
{
    return finish(db, id, DB_PRINT_PRINTED, NULL, now_ms);
}

int db_print_cancelled(db_t *db, int64_t id, const char *error, int64_t now_ms)
{
    return finish(db, id, DB_PRINT_CANCELLED, error, now_ms);
}

int db_print_retry(db_t *db, int64_t id, const char *error, int64_t next_at_ms)
{
    /* The CUPS job, if any, is over (aborted or lost): the next attempt is a new job. */
    static const char sql[] =
        "UPDATE print_jobs SET state = 'queued', cups_job = NULL, attempts = attempts + 1,\n"
        "                      last_error = ?2, next_at = ?3\n"
        "WHERE id = ?1";
    sqlite3_stmt *st = db_stmt(db, ST_PRINT_RETRY, sql);

    if (!st)
        return -EIO;
    int rc = sqlite3_bind_int64(st, 1, id);
    if (rc == SQLITE_OK) rc = db_bind_text(st, 2, error);
    if (rc == SQLITE_OK) rc = db_bind_time(st, 3, next_at_ms);
    return update_one(db, st, rc, id, "print job retry");
}

int db_print_last_receipt(db_t *db, const char *station, int64_t *receipt_id)
{
    /* Served by print_jobs_by_station: the last entry of the station's range. */
    static const char sql[] =
        "SELECT receipt_id FROM print_jobs WHERE station = ?1 ORDER BY id DESC LIMIT 1";
    sqlite3_stmt *st = db_stmt(db, ST_PRINT_LAST, sql);

    if (!st)
        return -EIO;
    int rc = sqlite3_bind_text(st, 1, station, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    int64_t v = 0;
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    db_stmt_done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(db, rc, "last label");
    *receipt_id = v;
    return 0;
}
