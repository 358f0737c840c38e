/*
 * Receipts and scans: what happened at each station. The schema keeps them final
 * once closed / written (see migrations.c); these functions only add and close.
 */
#include "db/db_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {
    [DB_RECEIPT_OPEN] = "open",
    [DB_RECEIPT_COMPLETED] = "completed",
    [DB_RECEIPT_CANCELLED] = "cancelled",
    [DB_RECEIPT_REFUSED] = "refused",
};
#define STATE_COUNT (int)(sizeof(state_names) / sizeof(state_names[0]))

const char *db_receipt_state_name(db_receipt_state_t s)
{
    return (int)s >= 0 && (int)s < STATE_COUNT ? state_names[s] : "invalid";
}

static db_receipt_state_t state_parse(const char *s)
{
    for (int i = 0; i < STATE_COUNT; i++)
        if (s && strcmp(s, state_names[i]) == 0)
            return (db_receipt_state_t)i;
    return DB_RECEIPT_OPEN;   /* unreachable: the schema CHECKs the state */
}

void db_receipt_clear(db_receipt_t *r)
{
    if (!r)
        return;
    free(r->station);
    free(r->rma);
    free(r->serial);
    free(r->checklist);
    free(r->result);
    free(r->disposition);
    free(r->reason);
    free(r->policy_sha256);
    free(r->policy_version);
    memset(r, 0, sizeof(*r));
}

/* Bind the fields every write sets, from parameter `first` on:
 * state, closed_at, serial, checklist, result, disposition, reason, line, policy_sha256,
 * policy_version. */
/* serial, checklist, result, disposition, reason, line, policy_sha256, policy_version. */
static int bind_contents(sqlite3_stmt *st, int first, const db_receipt_t *r)
{
    int rc = db_bind_text(st, first, r->serial);
    if (rc == SQLITE_OK) rc = db_bind_text(st, first + 1, r->checklist);
    if (rc == SQLITE_OK) rc = db_bind_text(st, first + 2, r->result);
    if (rc == SQLITE_OK) rc = db_bind_text(st, first + 3, r->disposition);
    if (rc == SQLITE_OK) rc = db_bind_text(st, first + 4, r->reason);
    if (rc == SQLITE_OK)
        rc = r->line > 0 ? sqlite3_bind_int(st, first + 5, r->line) : sqlite3_bind_null(st, first + 5);
    if (rc == SQLITE_OK) rc = db_bind_text(st, first + 6, r->policy_sha256);
    if (rc == SQLITE_OK) rc = db_bind_text(st, first + 7, r->policy_version);
    return rc;
}

static int bind_mutable(sqlite3_stmt *st, int first, const db_receipt_t *r)
{
    int rc = sqlite3_bind_text(st, first, db_receipt_state_name(r->state), -1, SQLITE_STATIC);

    /* An open receipt has no closing time, whatever the struct holds. */
    if (rc == SQLITE_OK)
        rc = db_bind_time(st, first + 1, r->state == DB_RECEIPT_OPEN ? DB_TIME_NONE : r->closed_at);
    if (rc == SQLITE_OK)
        rc = bind_contents(st, first + 2, r);
    return rc;
}

int db_receipt_insert(db_t *db, const db_receipt_t *r, int64_t *id)
{
    static const char sql[] =
        "INSERT INTO receipts (station, rma, opened_at, state, closed_at, serial,\n"
        "                      checklist, result, disposition, reason, line, policy_sha256,\n"
        "                      policy_version)\n"
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
    sqlite3_stmt *st;
    int rc;

    if (!r->station || !*r->station || r->opened_at <= 0)
        return db_fail_msg(db, -EINVAL, "receipt insert: station and opened_at are required");
    st = db_stmt(db, ST_RECEIPT_INSERT, sql);
    if (!st)
        return -EIO;
    rc = sqlite3_bind_text(st, 1, r->station, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = db_bind_text(st, 2, r->rma);
    if (rc == SQLITE_OK) rc = db_bind_time(st, 3, r->opened_at);
    if (rc == SQLITE_OK) rc = bind_mutable(st, 4, r);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    db_stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, rc, "receipt insert");
    if (id)
        *id = sqlite3_last_insert_rowid(db->sql);
    return 0;
}

/*
 * A receipt that stays open (a checklist scan): the same change without assigning
 * state and closed_at, which an open row already has as the full statement would
 * write them. SQLite then leaves the partial index receipts_open_per_station (its
 * WHERE names state) alone: one WAL page less on every checklist scan. 1 when done, 0
 * when the row is not open (the caller runs the full statement), or the error.
 */
static int update_open(db_t *db, const db_receipt_t *r)
{
    static const char sql[] =
        "UPDATE receipts SET serial = ?2, checklist = ?3, result = ?4, disposition = ?5,\n"
        "                    reason = ?6, line = ?7, policy_sha256 = ?8, policy_version = ?9\n"
        "WHERE id = ?1 AND state = 'open'";
    sqlite3_stmt *st = db_stmt(db, ST_RECEIPT_UPDATE_OPEN, sql);
    if (!st)
        return -EIO;
    int rc = sqlite3_bind_int64(st, 1, r->id);
    if (rc == SQLITE_OK)
        rc = bind_contents(st, 2, r);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    db_stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, rc, "receipt update");
    return sqlite3_changes(db->sql) > 0;
}

int db_receipt_update(db_t *db, const db_receipt_t *r)
{
    if (r->state == DB_RECEIPT_OPEN) {
        int r1 = update_open(db, r);
        if (r1 != 0)
            return r1 < 0 ? r1 : 0;
    }
    static const char sql[] =
        "UPDATE receipts SET state = ?2, closed_at = ?3, serial = ?4, checklist = ?5,\n"
        "                    result = ?6, disposition = ?7, reason = ?8, line = ?9,\n"
        "                    policy_sha256 = ?10, policy_version = ?11\n"
        "WHERE id = ?1";
    sqlite3_stmt *st = db_stmt(db, ST_RECEIPT_UPDATE, sql);
    int rc;

    if (!st)
        return -EIO;
    rc = sqlite3_bind_int64(st, 1, r->id);
    if (rc == SQLITE_OK) rc = bind_mutable(st, 2, r);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    db_stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, rc, "receipt update");
    if (sqlite3_changes(db->sql) == 0)
        return db_fail_msg(db, -ENOENT, "receipt %lld: not found", (long long)r->id);
    return 0;
}

#define RECEIPT_COLS \
    "id, station, rma, state, opened_at, closed_at, serial, checklist, result, disposition, " \
    "reason, line, policy_sha256, policy_version"

/* The current row as a receipt whose strings are borrowed from the statement. */
static void row_borrowed(sqlite3_stmt *st, db_receipt_t *r)
{
    r->id = sqlite3_column_int64(st, 0);
    r->station = (char *)sqlite3_column_text(st, 1);
    r->rma = (char *)sqlite3_column_text(st, 2);
    r->state = state_parse((const char *)sqlite3_column_text(st, 3));
    r->opened_at = db_column_time(st, 4);
    r->closed_at = db_column_time(st, 5);
    r->serial = (char *)sqlite3_column_text(st, 6);
    r->checklist = (char *)sqlite3_column_text(st, 7);
    r->result = (char *)sqlite3_column_text(st, 8);
    r->disposition = (char *)sqlite3_column_text(st, 9);
    r->reason = (char *)sqlite3_column_text(st, 10);
    r->line = sqlite3_column_int(st, 11);   /* NULL reads as 0: not known */
    r->policy_sha256 = (char *)sqlite3_column_text(st, 12);
    r->policy_version = (char *)sqlite3_column_text(st, 13);
}

/* The current row as a receipt that owns copies of its strings. */
static int row_owned(sqlite3_stmt *st, db_receipt_t *out)
{
    db_receipt_t r = { 0 };
    int oom = 0;

    r.id = sqlite3_column_int64(st, 0);
    r.station = db_column_strdup(st, 1, &oom);
    r.rma = db_column_strdup(st, 2, &oom);
    r.state = state_parse((const char *)sqlite3_column_text(st, 3));
    r.opened_at = db_column_time(st, 4);
    r.closed_at = db_column_time(st, 5);
    r.serial = db_column_strdup(st, 6, &oom);
    r.checklist = db_column_strdup(st, 7, &oom);
    r.result = db_column_strdup(st, 8, &oom);
    r.disposition = db_column_strdup(st, 9, &oom);
    r.reason = db_column_strdup(st, 10, &oom);
    r.line = sqlite3_column_int(st, 11);
    r.policy_sha256 = db_column_strdup(st, 12, &oom);
    r.policy_version = db_column_strdup(st, 13, &oom);
    if (oom) {
        db_receipt_clear(&r);
        return -ENOMEM;
    }
    *out = r;
    return 0;
}

/* Step a statement that selects one receipt into *out. */
static int get_one(db_t *db, sqlite3_stmt *st, int rc, db_receipt_t *out, const char *what)
{
    int r;

    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        r = row_owned(st, out);
        if (r < 0)
            (void)db_fail_msg(db, r, "%s: out of memory", what);
    } else if (rc == SQLITE_DONE) {
        r = db_fail_msg(db, -ENOENT, "%s: not found", what);
    } else {
        r = db_fail(db, rc, what);
    }
    db_stmt_done(st);
    return r;
}

int db_receipt_get(db_t *db, int64_t id, db_receipt_t *out)
{
    static const char sql[] = "SELECT " RECEIPT_COLS " FROM receipts WHERE id = ?1";
    sqlite3_stmt *st = db_stmt(db, ST_RECEIPT_GET, sql);

    if (!st)
        return -EIO;
    return get_one(db, st, sqlite3_bind_int64(st, 1, id), out, "receipt get");
}

int db_receipt_get_open(db_t *db, const char *station, db_receipt_t *out)
{
    /* Served by the partial unique index receipts_open_per_station. */
    static const char sql[] =
        "SELECT " RECEIPT_COLS " FROM receipts WHERE station = ?1 AND state = 'open'";
    sqlite3_stmt *st = db_stmt(db, ST_RECEIPT_GET_OPEN, sql);

    if (!st)
        return -EIO;
    return get_one(db, st, sqlite3_bind_text(st, 1, station, -1, SQLITE_STATIC), out,
                   "open receipt");
}

/* Step st (RECEIPT_COLS; rc the binding's result), fn for each row until non-zero. */
static int walk_receipts(db_t *db, sqlite3_stmt *st, int rc, db_receipt_fn fn, void *data,
                         const char *what)
{
    int r = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        db_receipt_t rec;
        row_borrowed(st, &rec);
        if ((r = fn(&rec, data)) != 0)
            break;
        rc = SQLITE_OK;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = db_fail(db, rc, what);
    db_stmt_done(st);
    return r;
}

int db_receipt_list_recent(db_t *db, unsigned limit, db_receipt_fn fn, void *data)
{
    static const char sql[] =
        "SELECT " RECEIPT_COLS " FROM receipts ORDER BY opened_at DESC, id DESC LIMIT ?1";
    sqlite3_stmt *st = db_stmt(db, ST_RECEIPT_RECENT, sql);
    int rc;

    if (!st)
        return -EIO;
    rc = sqlite3_bind_int64(st, 1, limit ? (sqlite3_int64)limit : -1);
    return walk_receipts(db, st, rc, fn, data, "receipt list");
}

int db_receipt_list_by_policy_version(db_t *db, const char *version, unsigned limit,
                                      db_receipt_fn fn, void *data)
{
    /* Served by receipts_by_policy_version. */
    static const char sql[] =
        "SELECT " RECEIPT_COLS " FROM receipts WHERE policy_version = ?1\n"
        "ORDER BY opened_at DESC, id DESC LIMIT ?2";
    sqlite3_stmt *st = db_stmt(db, ST_RECEIPT_BY_POLICY_VERSION, sql);
    int rc;

    if (!version)
        return -EINVAL;
    if (!st)
        return -EIO;
    rc = sqlite3_bind_text(st, 1, version, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
    return walk_receipts(db, st, rc, fn, data, "receipts by policy version");
}

int db_receipt_foreach_rma(db_t *db, const char *number, db_receipt_fn fn, void *data)
{
    static const char sql[] = "SELECT " RECEIPT_COLS " FROM receipts WHERE rma = ?1 ORDER BY id";
    sqlite3_stmt *st = db_stmt(db, ST_RECEIPTS_OF_RMA, sql);
    int rc;

    if (!st)
        return -EIO;
    rc = sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
    return walk_receipts(db, st, rc, fn, data, "receipts of rma");
}

/* A LIKE pattern matching text that starts with s: s with %, _ and \\ escaped, then %. */
static char *like_prefix(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(2 * n + 2), *o = out;
    if (!out)
        return NULL;
    for (const char *c = s; *c; c++) {
        if (*c == '%' || *c == '_' || *c == '\\')
            *o++ = '\\';
        *o++ = *c;
    }
    *o++ = '%';
    *o = '\0';
    return out;
}

int db_receipt_search(db_t *db, const db_receipt_filter_t *f, unsigned limit,
                      unsigned offset, db_receipt_fn fn, void *data, uint64_t *total)
{
    /* One statement for every combination: a NULL parameter matches all. The count
     * comes from a window over the same filter, so a page and its total agree. */
    static const char sql[] =
        "SELECT " RECEIPT_COLS ", count(*) OVER () FROM receipts WHERE\n"
        "  (?1 IS NULL OR rma LIKE ?1 ESCAPE '\\') AND\n"
        "  (?2 IS NULL OR serial LIKE ?2 ESCAPE '\\') AND\n"
        "  (?3 IS NULL OR station = ?3) AND\n"
        "  (?4 IS NULL OR state = ?4) AND\n"
        "  (?5 IS NULL OR disposition = ?5) AND\n"
        "  (?6 IS NULL OR opened_at >= ?6) AND\n"
        "  (?7 IS NULL OR opened_at < ?7) AND\n"
        "  (?10 IS NULL OR policy_version = ?10)\n"
        "ORDER BY opened_at DESC, id DESC LIMIT ?8 OFFSET ?9";
    if (!f || limit < 1 || limit > 1000)
        return -EINVAL;
    char *rma = f->rma && *f->rma ? like_prefix(f->rma) : NULL;
    char *serial = f->serial && *f->serial ? like_prefix(f->serial) : NULL;
    if ((f->rma && *f->rma && !rma) || (f->serial && *f->serial && !serial)) {
        free(rma);
        free(serial);
        return db_fail_msg(db, -ENOMEM, "receipt search: out of memory");
    }
    sqlite3_stmt *st = db_stmt(db, ST_RECEIPT_SEARCH, sql);
    int rc, r = 0;
    uint64_t n = 0;

    if (!st) {
        free(rma);
        free(serial);
        return -EIO;
    }
    rc = db_bind_text(st, 1, rma);
    if (rc == SQLITE_OK)
        rc = db_bind_text(st, 2, serial);
    if (rc == SQLITE_OK)
        rc = db_bind_text(st, 3, f->station);
    if (rc == SQLITE_OK)
        rc = db_bind_text(st, 4, f->state);
    if (rc == SQLITE_OK)
        rc = db_bind_text(st, 5, f->disposition);
    if (rc == SQLITE_OK)
        rc = db_bind_time(st, 6, f->from_ms > 0 ? f->from_ms : DB_TIME_NONE);
    if (rc == SQLITE_OK)
        rc = db_bind_time(st, 7, f->to_ms > 0 ? f->to_ms : DB_TIME_NONE);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 8, limit);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 9, offset);
    if (rc == SQLITE_OK)
        rc = db_bind_text(st, 10, f->policy_version);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        db_receipt_t rec;
        row_borrowed(st, &rec);
        n = (uint64_t)sqlite3_column_int64(st, sqlite3_column_count(st) - 1);  /* the window count */
        if ((r = fn(&rec, data)) != 0)
            break;
        rc = SQLITE_OK;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = db_fail(db, rc, "receipt search");
    db_stmt_done(st);
    free(rma);
    free(serial);
    if (r == 0 && total)
        *total = n;
    return r;
}

/* ---------------------------------------------------------------- scans ------- */

int db_scan_insert(db_t *db, const db_scan_t *s, int64_t *id)
{
    static const char sql[] =
        "INSERT INTO scans (at, station, scanner, symbology, raw, text, kind, accepted,\n"
        "                   reason, receipt_id)\n"
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
    sqlite3_stmt *st;
    int rc;

    if (s->at <= 0 || !s->station || !s->scanner || !s->kind || (!s->raw && s->raw_len))
        return db_fail_msg(db, -EINVAL, "scan insert: at, station, scanner and kind are required");
    if (s->text && !db_utf8_valid(s->text, strlen(s->text)))
        return db_fail_msg(db, -EILSEQ, "scan insert: text is not valid UTF-8 (keep it in raw only)");
    st = db_stmt(db, ST_SCAN_INSERT, sql);
    if (!st)
        return -EIO;
    rc = db_bind_time(st, 1, s->at);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 2, s->station, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 3, s->scanner, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = db_bind_text(st, 4, s->symbology);
    /* A zero-length blob, not NULL: an empty line is still a scan. */
    if (rc == SQLITE_OK) rc = sqlite3_bind_blob64(st, 5, s->raw ? s->raw : "", s->raw_len, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = s->text ? sqlite3_bind_text(st, 6, s->text, -1, SQLITE_STATIC) : sqlite3_bind_null(st, 6);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 7, s->kind, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 8, s->accepted ? 1 : 0);
    if (rc == SQLITE_OK) rc = db_bind_text(st, 9, s->reason);
    if (rc == SQLITE_OK)
        rc = s->receipt_id ? sqlite3_bind_int64(st, 10, s->receipt_id) : sqlite3_bind_null(st, 10);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    db_stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, rc, "scan insert");
    if (id)
        *id = sqlite3_last_insert_rowid(db->sql);
    return 0;
}

int db_scan_foreach_receipt(db_t *db, int64_t receipt_id, db_scan_fn fn, void *data)
{
    static const char sql[] =
        "SELECT id, at, station, scanner, symbology, raw, text, kind, accepted, reason,\n"
        "       receipt_id\n"
        "FROM scans WHERE receipt_id = ?1 ORDER BY id";
    sqlite3_stmt *st = db_stmt(db, ST_SCANS_OF_RECEIPT, sql);
    int rc, r = 0;

    if (!st)
        return -EIO;
    rc = sqlite3_bind_int64(st, 1, receipt_id);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        db_scan_t s = {
            .id = sqlite3_column_int64(st, 0),
            .at = db_column_time(st, 1),
            .station = (const char *)sqlite3_column_text(st, 2),
            .scanner = (const char *)sqlite3_column_text(st, 3),
            .symbology = (const char *)sqlite3_column_text(st, 4),
            .text = (const char *)sqlite3_column_text(st, 6),
            .kind = (const char *)sqlite3_column_text(st, 7),
            .accepted = sqlite3_column_int(st, 8) != 0,
            .reason = (const char *)sqlite3_column_text(st, 9),
            .receipt_id = sqlite3_column_int64(st, 10),
        };
        /* blob before bytes, in this order (initializers are unsequenced). */
        s.raw = sqlite3_column_blob(st, 5);
        s.raw_len = (size_t)sqlite3_column_bytes(st, 5);
        if ((r = fn(&s, data)) != 0)
            break;
        rc = SQLITE_OK;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = db_fail(db, rc, "scans of receipt");
    db_stmt_done(st);
    return r;
}
