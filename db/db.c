/*
 * The database handle: open + pragmas + migrations, transactions, the statement
 * cache, error mapping, and the value conversions every query shares.
 */
#include "db/db_internal.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000

int db_schema_version(void)
{
    return db_migrations_count;
}

/* ---------------------------------------------------------------- errors ------ */

int db_errno(sqlite3 *sql, int rc)
{
    int sys;

    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return -EBADMSG;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_INTERRUPT:
        return -EINTR;
    case SQLITE_TOOBIG:
        return -E2BIG;
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
        return -EINVAL;
    case SQLITE_CONSTRAINT:
        switch (rc) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
            return -EEXIST;
        case SQLITE_CONSTRAINT_FOREIGNKEY:
            return -ENOENT;
        case SQLITE_CONSTRAINT_TRIGGER:
            return -EPERM;   /* the RAISE(ABORT) audit rules of migrations.c */
        default:
            return -EINVAL;
        }
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
        /* The OS said why (ENOENT for a missing directory, EACCES, ENOSPC ...). */
        sys = sql ? sqlite3_system_errno(sql) : 0;
        if (sys > 0)
            return -sys;
        /*
         * SQLite often no longer has the errno of a failed write by the time it
         * returns (a rollback made other calls): ask the filesystem, so a disk
         * remounted read-only after an error, or full, is named as such.
         */
        const char *path = sql ? sqlite3_db_filename(sql, "main") : NULL;
        struct statvfs v;
        if (path && *path && statvfs(path, &v) == 0) {
            if (v.f_flag & ST_RDONLY)
                return -EROFS;
            if (v.f_bavail == 0)
                return -ENOSPC;
        }
        return -EIO;
    default:
        return -EIO;
    }
}

static void set_err(db_t *db, char *msg)
{
    free(db->err);
    db->err = msg;   /* NULL when out of memory: db_errmsg then says so */
}

int db_fail(db_t *db, int rc, const char *what)
{
    char *msg = NULL;
    int err = db_errno(db->sql, rc);

    if (err == 0)
        err = -EIO;
    if (asprintf(&msg, "%s: %s", what, sqlite3_errmsg(db->sql)) < 0)
        msg = NULL;
    set_err(db, msg);
    return err;
}

int db_fail_msg(db_t *db, int err, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    set_err(db, msg);
    return err;
}

const char *db_path(const db_t *db)
{
    const char *p = db ? sqlite3_db_filename(db->sql, "main") : NULL;
    return p && *p ? p : NULL;
}

const char *db_errmsg(const db_t *db)
{
    if (!db)
        return "no database";
    return db->err ? db->err : "";
}

/* ------------------------------------------------------------ statements ------ */

sqlite3_stmt *db_stmt(db_t *db, db_stmt_id_t id, const char *sql)
{
    if (!db->stmt[id]) {
        int rc = sqlite3_prepare_v3(db->sql, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                    &db->stmt[id], NULL);
        if (rc != SQLITE_OK) {
            (void)db_fail(db, rc, "prepare");
            sqlite3_finalize(db->stmt[id]);
            db->stmt[id] = NULL;
            return NULL;
        }
    }
    return db->stmt[id];
}

void db_stmt_done(sqlite3_stmt *st)
{
    if (!st)
        return;
    (void)sqlite3_reset(st);
    (void)sqlite3_clear_bindings(st);
}

/* Run a cached statement that returns no row. */
static int exec_stmt(db_t *db, db_stmt_id_t id, const char *sql, const char *what)
{
    sqlite3_stmt *st = db_stmt(db, id, sql);
    int rc;

    if (!st)
        return -EIO;
    rc = sqlite3_step(st);
    db_stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, rc, what);
    return 0;
}

/* ---------------------------------------------------------- transactions ------ */

bool db_in_transaction(const db_t *db)
{
    return db && !sqlite3_get_autocommit(db->sql);
}

int db_begin(db_t *db)
{
    if (db_in_transaction(db))
        return db_fail_msg(db, -EINVAL, "begin: a transaction is already open");
    return exec_stmt(db, ST_BEGIN, "BEGIN IMMEDIATE", "begin");
}

int db_rollback(db_t *db)
{
    if (!db_in_transaction(db))
        return 0;
    return exec_stmt(db, ST_ROLLBACK, "ROLLBACK", "rollback");
}

int db_commit(db_t *db)
{
    int r;

    if (!db_in_transaction(db))
        return db_fail_msg(db, -EINVAL, "commit: no transaction is open");
    r = exec_stmt(db, ST_COMMIT, "COMMIT", "commit");
    if (r < 0 && db_in_transaction(db)) {
        /* Keep the failure's message, not the rollback's. */
        char *keep = db->err;
        db->err = NULL;
        (void)db_rollback(db);
        set_err(db, keep);
    }
    return r;
}

int db_savepoint(db_t *db)
{
    if (!db_in_transaction(db))
        return db_fail_msg(db, -EINVAL, "savepoint: no transaction is open");
    return exec_stmt(db, ST_SAVEPOINT, "SAVEPOINT unit", "savepoint");
}

int db_release(db_t *db)
{
    if (!db_in_transaction(db))
        return db_fail_msg(db, -EINVAL, "release: no transaction is open");
    return exec_stmt(db, ST_RELEASE, "RELEASE unit", "release");
}

int db_rollback_to(db_t *db)
{
    if (!db_in_transaction(db))
        return db_fail_msg(db, -EINVAL, "rollback to savepoint: no transaction is open");
    /* ROLLBACK TO keeps the savepoint open; RELEASE ends it, and the transaction goes on. */
    int r = exec_stmt(db, ST_ROLLBACK_TO, "ROLLBACK TO unit", "rollback to savepoint");
    return r < 0 ? r : exec_stmt(db, ST_RELEASE, "RELEASE unit", "release");
}

/* ------------------------------------------------------------ checkpoints ----- */

static int wal_hook(void *data, sqlite3 *sql, const char *schema, int frames)
{
    db_t *db = data;

    if (frames >= DB_WAL_BACKSTOP_FRAMES)
        (void)sqlite3_wal_checkpoint_v2(sql, schema, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    else if (db->wal_fn)
        db->wal_fn(frames, db->wal_data);
    return SQLITE_OK;
}

void db_watch_wal(db_t *db, db_wal_fn fn, void *data)
{
    db->wal_fn = fn;
    db->wal_data = data;
    if (fn)
        (void)sqlite3_wal_hook(db->sql, wal_hook, db);
    else
        (void)sqlite3_wal_autocheckpoint(db->sql, 1000);   /* SQLite's default */
}

int db_checkpoint(db_t *db, int *left)
{
    int frames = 0, copied = 0, rc;

    if (db_in_transaction(db))
        return db_fail_msg(db, -EINVAL, "checkpoint: a transaction is open");
    rc = sqlite3_wal_checkpoint_v2(db->sql, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied);
    if (rc != SQLITE_OK)
        return db_fail(db, rc, "checkpoint");
    if (left)
        *left = frames > copied ? frames - copied : 0;
    return 0;
}

/*
 * The database file grows DB_CHUNK_BYTES at a time, not page by page: a checkpoint
 * that appends pages then changes the file's size once per megabyte rather than on
 * nearly every run, and an fsync that carries a change of size also commits the
 * filesystem's journal. Best effort.
 */
static void grow_in_chunks(sqlite3 *sql)
{
    int chunk = DB_CHUNK_BYTES;
    (void)sqlite3_file_control(sql, "main", SQLITE_FCNTL_CHUNK_SIZE, &chunk);
}

int db_checkpoint_file(const char *path, int *left, int *out_copied)
{
    sqlite3 *sql = NULL;
    int frames = 0, copied = 0;
    /* No migrations, no pragmas: a connection only to copy WAL frames back. */
    int rc = sqlite3_open_v2(path, &sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    /* A new connection learns that the file is in WAL mode only when it first reads
     * it; a checkpoint before that copies nothing and says frames = -1. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(sql, "PRAGMA schema_version", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        grow_in_chunks(sql);
    if (rc == SQLITE_OK)
        rc = sqlite3_wal_checkpoint_v2(sql, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied);
    if (rc == SQLITE_OK && frames < 0)
        rc = SQLITE_ERROR;   /* not in WAL mode: nothing a checkpoint can do */
    int err = rc == SQLITE_OK ? 0 : db_errno(sql, rc);
    if (rc != SQLITE_OK && err == 0)
        err = -EIO;
    sqlite3_close(sql);
    if (err == 0 && left)
        *left = frames > copied ? frames - copied : 0;
    if (err == 0 && out_copied)
        *out_copied = copied;
    return err;
}

/* ------------------------------------------------------------- open/close ----- */

/* Run one pragma (or any SQL) whose rows, if any, are not needed. */
static int exec_sql(db_t *db, const char *sql, const char *what)
{
    int rc = sqlite3_exec(db->sql, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : db_fail(db, rc, what);
}

static int pragma_int(db_t *db, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL);

    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int(st, 0);
            rc = SQLITE_OK;
        }
    }
    if (rc != SQLITE_OK) {
        int err = db_fail(db, rc, sql);
        sqlite3_finalize(st);
        return err;
    }
    sqlite3_finalize(st);
    return 0;
}

/* journal_mode=WAL answers the mode it ended in: anything but "wal" is an error. */
static int set_wal(db_t *db)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->sql, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    int r = 0;

    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        r = db_fail(db, rc, "journal_mode=WAL");
    } else {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        if (!mode || strcmp(mode, "wal") != 0)
            r = db_fail_msg(db, -ENOTSUP, "journal_mode=WAL: the file stays in %s mode",
                            mode ? mode : "an unknown");
    }
    sqlite3_finalize(st);
    return r;
}

/* After a migration, inside its transaction: no row may point at nothing. */
static int foreign_keys_hold(db_t *db, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->sql, "PRAGMA foreign_key_check", -1, &st, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int r = db_fail_msg(db, -EINVAL, "%s: a row of %s refers to a missing row of %s", what,
                            (const char *)sqlite3_column_text(st, 0),
                            (const char *)sqlite3_column_text(st, 2));
        sqlite3_finalize(st);
        return r;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, rc, what);
}

/*
 * Apply the missing migrations. Each one runs under BEGIN IMMEDIATE and reads
 * user_version again inside it, so that two processes opening a fresh file at once
 * do not both apply it.
 */
static int migrate(db_t *db)
{
    int version, r;

    r = pragma_int(db, "PRAGMA user_version", &version);
    if (r < 0)
        return r;
    if (version > db_migrations_count)
        return db_fail_msg(db, -ENOTSUP,
                           "database schema version %d is newer than this rmad "
                           "understands (%d); use a newer rmad",
                           version, db_migrations_count);

    while (version < db_migrations_count) {
        char what[32], set[64];

        r = exec_sql(db, "BEGIN IMMEDIATE", "migration: begin");
        if (r < 0)
            return r;
        r = pragma_int(db, "PRAGMA user_version", &version);
        if (r < 0 || version >= db_migrations_count)
            goto done;   /* another process migrated meanwhile: r is 0 */
        snprintf(what, sizeof(what), "migration %d", version + 1);
        snprintf(set, sizeof(set), "PRAGMA user_version = %d", version + 1);
        if ((r = exec_sql(db, db_migrations[version], what)) < 0
            || (r = foreign_keys_hold(db, what)) < 0
            || (r = exec_sql(db, set, what)) < 0
            || (r = exec_sql(db, "COMMIT", what)) < 0)
            goto done;
        version++;
        continue;
done:
        if (db_in_transaction(db))
            (void)sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
        return r;
    }
    return 0;
}

int db_open(const char *path, db_t **out, char **errmsg)
{
    db_t *db;
    int rc, r;

    *errmsg = NULL;
    db = calloc(1, sizeof(*db));
    if (!db) {
        if (asprintf(errmsg, "%s: out of memory", path) < 0)
            *errmsg = NULL;
        return -ENOMEM;
    }

    rc = sqlite3_open_v2(path, &db->sql,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                         NULL);
    if (rc != SQLITE_OK) {
        r = db->sql ? db_fail(db, rc, "open") : -ENOMEM;
        goto fail;
    }
    sqlite3_extended_result_codes(db->sql, 1);
    /* Defensive: no writable_schema tricks; double-quoted strings are identifiers
     * only, so a typo in a column name is an error, not a string. */
    (void)sqlite3_db_config(db->sql, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    (void)sqlite3_db_config(db->sql, SQLITE_DBCONFIG_DQS_DML, 0, NULL);
    (void)sqlite3_db_config(db->sql, SQLITE_DBCONFIG_DQS_DDL, 0, NULL);

    rc = sqlite3_busy_timeout(db->sql, BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK) {
        r = db_fail(db, rc, "busy_timeout");
        goto fail;
    }
    if ((r = set_wal(db)) < 0)
        goto fail;
    /* Memory, deliberately (docs/limits.md: peak RSS under 16 MB): every connection
     * (the loop's, an import's, the forward thread's and the feed's) gets
     * DB_CACHE_KIB of page cache, not SQLite's 2000 KiB each. That holds the interior
     * pages of every index of a database with 1,000,000 receipts, the part every
     * lookup walks; leaf pages come from the kernel's page cache (a pread, no disk).
     * No mmap: mapped database pages count in rmad's RSS and grow with the file. */
    if ((r = exec_sql(db, "PRAGMA cache_size = -" DB_CACHE_KIB_STR, "cache_size")) < 0
        || (r = exec_sql(db, "PRAGMA mmap_size = 0", "mmap_size")) < 0)
        goto fail;
    /* FULL: a commit is on disk before db_commit returns (acknowledged = durable). */
    if ((r = exec_sql(db, "PRAGMA synchronous=FULL", "synchronous=FULL")) < 0)
        goto fail;
    grow_in_chunks(db->sql);
    /* Migrations run with foreign keys off, as SQLite's way of rebuilding a table
     * that others reference needs (migration 7), and check them before committing. */
    if ((r = migrate(db)) < 0)
        goto fail;
    if ((r = exec_sql(db, "PRAGMA foreign_keys=ON", "foreign_keys=ON")) < 0)
        goto fail;

    *out = db;
    return 0;

fail:
    if (asprintf(errmsg, "%s: %s", path, db->err ? db->err : "out of memory") < 0)
        *errmsg = NULL;
    db_close(&db);
    return r;
}

void db_close(db_t **pdb)
{
    db_t *db;

    if (!pdb || !*pdb)
        return;
    db = *pdb;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(db->stmt[i]);
    if (db->sql) {
        if (!sqlite3_get_autocommit(db->sql))
            (void)sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
        (void)sqlite3_close(db->sql);
    }
    free(db->err);
    free(db);
    *pdb = NULL;
}

/* ------------------------------------------------------------ conversions ----- */

int db_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (!s || !*s)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

int db_bind_date(sqlite3_stmt *st, int i, caldate_t d)
{
    char buf[CALDATE_STRLEN];

    if (d == CALDATE_NONE)
        return sqlite3_bind_null(st, i);
    caldate_format(d, buf);
    return sqlite3_bind_text(st, i, buf, -1, SQLITE_TRANSIENT);
}

int db_bind_time(sqlite3_stmt *st, int i, int64_t ms)
{
    char buf[DB_TIME_STRLEN];

    if (ms == DB_TIME_NONE)
        return sqlite3_bind_null(st, i);
    db_time_format(ms, buf);
    return sqlite3_bind_text(st, i, buf, -1, SQLITE_TRANSIENT);
}

caldate_t db_column_date(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    caldate_t d;

    if (!s || caldate_parse(s, &d) < 0)
        return CALDATE_NONE;
    return d;
}

int64_t db_column_time(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    int64_t ms;

    if (!s || db_time_parse(s, &ms) < 0)
        return DB_TIME_NONE;
    return ms;
}

char *db_column_strdup(sqlite3_stmt *st, int i, int *oom)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    char *copy;

    if (!s)
        return NULL;
    copy = strdup((const char *)s);
    if (!copy)
        *oom = 1;
    return copy;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

void db_time_format(int64_t ms, char buf[DB_TIME_STRLEN])
{
    int64_t day = floor_div(ms, 86400000);
    int64_t rem = ms - day * 86400000;
    int y, m, d;

    char tmp[64];   /* room for any int, so that the compiler sees no truncation */

    caldate_to_ymd((caldate_t)day, &y, &m, &d);
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d,
             (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
             (int)(rem % 1000));
    size_t n = strnlen(tmp, DB_TIME_STRLEN - 1);
    memcpy(buf, tmp, n);
    buf[n] = '\0';
}

int db_time_parse(const char *s, int64_t *ms)
{
    char date[CALDATE_STRLEN];
    caldate_t day;
    int h, mi, sec, milli;

    if (strlen(s) != DB_TIME_STRLEN - 1 || s[10] != 'T' || s[13] != ':' || s[16] != ':'
        || s[19] != '.' || s[23] != 'Z')
        return -EINVAL;
    memcpy(date, s, 10);
    date[10] = '\0';
    if (caldate_parse(date, &day) < 0 || caldate_digits(s + 11, 2, &h) < 0
        || caldate_digits(s + 14, 2, &mi) < 0 || caldate_digits(s + 17, 2, &sec) < 0
        || caldate_digits(s + 20, 3, &milli) < 0 || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;
    *ms = (int64_t)day * 86400000 + (int64_t)h * 3600000 + mi * 60000 + sec * 1000 + milli;
    return 0;
}

char *db_quote(const char *s)
{
    enum { SHOW = 40 };
    size_t len = strlen(s), n = len < SHOW ? len : SHOW;

    while (n < len && n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;   /* do not cut a UTF-8 character in two */
    /* Worst case: every byte as \xNN, quotes, "...", NUL. */
    char *out = malloc(n * 4 + 6), *p = out;
    if (!out)
        return NULL;
    *p++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
            p += sprintf(p, c == '"' || c == '\\' ? "\\%c" : "\\x%02x", c);
        else
            *p++ = (char)c;
    }
    *p++ = '"';
    if (len > n)
        p = stpcpy(p, "...");
    *p = '\0';
    return out;
}

int db_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp, min;

        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (len - i <= n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* A malloc'd message, NULL when out of memory. */
__attribute__((format(printf, 1, 2))) static char *msgf_db(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

int db_check_location(const char *path, char **errmsg)
{
    *errmsg = NULL;
    if (!path || !*path) {
        *errmsg = strdup("no database path");
        return -EINVAL;
    }
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    const char *dir = dirname(copy);
    struct stat st;
    struct statvfs vfs;
    int rc = 0;
    if (stat(dir, &st) < 0) {
        rc = -errno;
        *errmsg = msgf_db("%s: %s", dir, errno == ENOENT ? "no such directory" : strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        rc = -ENOTDIR;
        *errmsg = msgf_db("%s: not a directory", dir);
    } else if (statvfs(dir, &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) {
        rc = -EROFS;
        *errmsg = msgf_db("%s: read-only filesystem", dir);
    } else if (access(dir, W_OK | X_OK) < 0) {
        rc = -errno;
        *errmsg = msgf_db("%s: %s (the database and its -wal/-shm files are created there)",
                          dir, errno == EACCES ? "permission denied" : strerror(errno));
    } else if (stat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode)) {
            rc = -EINVAL;
            *errmsg = msgf_db("%s: not a regular file", path);
        } else if (access(path, R_OK | W_OK) < 0) {
            rc = -errno;
            *errmsg = msgf_db("%s: %s", path,
                              errno == EACCES ? "permission denied" : strerror(errno));
        }
    }
    free(copy);
    if (rc < 0 && !*errmsg)
        return -ENOMEM;
    return rc;
}

int db_set_busy_timeout(db_t *db, int ms)
{
    int rc = sqlite3_busy_timeout(db->sql, ms);
    return rc == SQLITE_OK ? 0 : db_fail(db, rc, "busy_timeout");
}
