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
    [DB_PRINT_SUBMITTING] = "submitting",
    [DB_PRINT_SUBMITTED] = "submitted",
    [DB_PRINT_PRINTED] = "printed",
    [DB_PRINT_FAILED] = "failed",
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
    free(job->job_name);
    free(job->job_uuid);
    free(job->last_error);
    memset(job, 0, sizeof(*job));
}

int db_print_enqueue(db_t *db, int64_t receipt_id, const char *station, const char *printer,
                     db_print_why_t why, int64_t now_ms, int64_t *id)
{
    static const char sql[] =
        "INSERT INTO print_jobs (receipt_id, station, printer, why, created_at)\n"
        "VALUES (?1, ?2, ?3, ?4, ?5)";
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
    "id, receipt_id, station, printer, why, state, created_at, attempts, job_name, " \
    "coalesce(cups_job, 0), job_uuid, last_error, done_at"

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
    j->attempts = sqlite3_column_int(st, 7);
    j->job_name = (char *)sqlite3_column_text(st, 8);
    j->cups_job = sqlite3_column_int(st, 9);
    j->job_uuid = (char *)sqlite3_column_text(st, 10);
    j->last_error = (char *)sqlite3_column_text(st, 11);
    j->done_at = db_column_time(st, 12);
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
        j.job_name = db_column_strdup(st, 8, &oom);
        j.job_uuid = db_column_strdup(st, 10, &oom);
        j.last_error = db_column_strdup(st, 11, &oom);
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

/* Step st to its end, calling fn for each row. */
static int walk(db_t *db, sqlite3_stmt *st, int rc, db_print_fn fn, void *data, const char *what)
{
    int r = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        db_print_job_t j;
        row_borrowed(st, &j);
        if ((r = fn(&j, data)) != 0)
            break;
        rc = SQLITE_OK;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = db_fail(db, rc, what);
    db_stmt_done(st);
    return r;
}

int db_print_foreach_unfinished(db_t *db, db_print_fn fn, void *data)
{
    /* Served by the partial index print_jobs_unfinished. */
    static const char sql[] =
        "SELECT " JOB_COLS " FROM print_jobs\n"
        "WHERE state = 'queued' OR state = 'submitting' OR state = 'submitted' ORDER BY id";
    sqlite3_stmt *st = db_stmt(db, ST_PRINT_UNFINISHED, sql);
    if (!st)
        return -EIO;
    return walk(db, st, SQLITE_OK, fn, data, "print queue");
}

int db_print_foreach(db_t *db, db_print_list_t which, const char *station, unsigned limit,
                     db_print_fn fn, void *data)
{
    static const char sql[] =
        "SELECT " JOB_COLS " FROM print_jobs\n"
        "WHERE (?2 IS NULL OR station = ?2) AND CASE ?1\n"
        "    WHEN 1 THEN state = 'queued' OR state = 'submitting' OR state = 'submitted'\n"
        "    WHEN 2 THEN state = 'failed' OR ((state = 'queued' OR state = 'submitting'\n"
        "                OR state = 'submitted') AND last_error IS NOT NULL)\n"
        "    WHEN 3 THEN state = 'printed'\n"
        "    WHEN 4 THEN state = 'cancelled'\n"
        "    ELSE 1 END\n"
        "ORDER BY id DESC LIMIT ?3";
    if ((int)which < DB_PRINT_LIST_ALL || which > DB_PRINT_LIST_CANCELLED)
        return db_fail_msg(db, -EINVAL, "print list: unknown selection");
    sqlite3_stmt *st = db_stmt(db, ST_PRINT_LIST, sql);
    if (!st)
        return -EIO;
    int rc = sqlite3_bind_int(st, 1, (int)which);
    if (rc == SQLITE_OK) rc = db_bind_text(st, 2, station);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 3, limit ? (sqlite3_int64)limit : -1);
    return walk(db, st, rc, fn, data, "print list");
}

/*
 * Run a one-row UPDATE whose first parameter is the job id and whose WHERE names the
 * states it applies to: no row changed is -ENOENT (no such job) or -EPERM (not in one
 * of those states; the schema's trigger also refuses to touch a finished one).
 */
static int update_one(db_t *db, sqlite3_stmt *st, int rc, int64_t id, const char *what)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    db_stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, rc, what);
    if (sqlite3_changes(db->sql) > 0)
        return 0;
    db_print_job_t j;
    int r = db_print_get(db, id, &j);
    if (r < 0)
        return r;
    r = db_fail_msg(db, -EPERM, "%s: label %lld is %s", what, (long long)id,
                    db_print_state_name(j.state));
    db_print_job_clear(&j);
    return r;
}

int db_print_submitting(db_t *db, int64_t id, int attempt, const char *job_name)
{
    static const char sql[] =
        "UPDATE print_jobs SET state = 'submitting', attempts = ?2, job_name = ?3,\n"
        "                      cups_job = NULL, job_uuid = NULL\n"
        "WHERE id = ?1 AND state = 'queued'";
    if (attempt <= 0 || !job_name || !*job_name)
        return db_fail_msg(db, -EINVAL, "print job %lld: attempt and job name are required",
                           (long long)id);
    sqlite3_stmt *st = db_stmt(db, ST_PRINT_SUBMITTING, sql);
    if (!st)
        return -EIO;
    int rc = sqlite3_bind_int64(st, 1, id);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 2, attempt);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 3, job_name, -1, SQLITE_STATIC);
    return update_one(db, st, rc, id, "print job submitting");
}

int db_print_submitted(db_t *db, int64_t id, int cups_job, const char *job_uuid)
{
    static const char sql[] =
        "UPDATE print_jobs SET state = 'submitted', cups_job = ?2, job_uuid = ?3\n"
        "WHERE id = ?1 AND state = 'submitting'";
    if (cups_job <= 0)
        return db_fail_msg(db, -EINVAL, "print job %lld: CUPS job id %d", (long long)id,
                           cups_job);
    sqlite3_stmt *st = db_stmt(db, ST_PRINT_SUBMITTED, sql);
    if (!st)
        return -EIO;
    int rc = sqlite3_bind_int64(st, 1, id);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 2, cups_job);
    if (rc == SQLITE_OK) rc = db_bind_text(st, 3, job_uuid && *job_uuid ? job_uuid : NULL);
    return update_one(db, st, rc, id, "print job submitted");
}

/*
 * The final states. printed only from a job that went to CUPS; failed from any
 * unfinished one.
 */
static int finish(db_t *db, int64_t id, db_print_state_t state, const char *error,
                  int64_t now_ms)
{
    static const char sql[] =
        "UPDATE print_jobs SET state = ?2, last_error = coalesce(?3, last_error), done_at = ?4\n"
        "WHERE id = ?1 AND (state = 'submitting' OR state = 'submitted'\n"
        "                   OR (state = 'queued' AND ?2 = 'failed'))";
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

int db_print_failed(db_t *db, int64_t id, const char *error, int64_t now_ms)
{
    return finish(db, id, DB_PRINT_FAILED, error, now_ms);
}

int db_print_retry(db_t *db, int64_t id, const char *error)
{
    static const char sql[] =
        "UPDATE print_jobs SET state = 'queued', cups_job = NULL, job_uuid = NULL,\n"
        "                      last_error = ?2\n"
        "WHERE id = ?1 AND (state = 'queued' OR state = 'submitting' OR state = 'submitted')";
    sqlite3_stmt *st = db_stmt(db, ST_PRINT_RETRY, sql);

    if (!st)
        return -EIO;
    int rc = sqlite3_bind_int64(st, 1, id);
    if (rc == SQLITE_OK) rc = db_bind_text(st, 2, error);
    return update_one(db, st, rc, id, "print job retry");
}

int db_print_cancel(db_t *db, int64_t id, const char *why, int64_t now_ms)
{
    static const char sql[] =
        "UPDATE print_jobs SET state = 'cancelled', last_error = ?2, done_at = ?3\n"
        "WHERE id = ?1 AND state = 'queued'";
    sqlite3_stmt *st = db_stmt(db, ST_PRINT_CANCEL, sql);

    if (!st)
        return -EIO;
    int rc = sqlite3_bind_int64(st, 1, id);
    if (rc == SQLITE_OK) rc = db_bind_text(st, 2, why);
    if (rc == SQLITE_OK) rc = db_bind_time(st, 3, now_ms);
    rc = update_one(db, st, rc, id, "cancelling the label");
    if (rc == -EPERM) {
        db_print_job_t j;
        if (db_print_get(db, id, &j) == 0) {
            if (j.state == DB_PRINT_SUBMITTING || j.state == DB_PRINT_SUBMITTED)
                rc = j.cups_job > 0
                         ? db_fail_msg(db, -EBUSY, "label %lld is at the printer as CUPS "
                                       "job %d: cancel that job in CUPS (cancel %d)",
                                       (long long)id, j.cups_job, j.cups_job)
                         : db_fail_msg(db, -EBUSY, "label %lld is being handed to CUPS "
                                       "right now: try again in a moment", (long long)id);
            db_print_job_clear(&j);
        }
    }
    return rc;
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
