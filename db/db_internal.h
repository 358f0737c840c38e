/*
 * Inside the db module only: the handle, the statement cache and the helpers every
 * query file shares. Not for other modules: they use db/db.h.
 */
#ifndef RMAD_DB_INTERNAL_H
#define RMAD_DB_INTERNAL_H

#include <sqlite3.h>

#include "db/db.h"

/* Every statement the module runs, prepared on first use and kept (see db.c). */
typedef enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_RMA_EXISTS,
    ST_RMA_UPSERT,
    ST_RMA_GET,
    ST_RMA_STATUS,
    ST_RMA_MARK_RECEIVED,
    ST_RMA_HEADER_UPSERT,
    ST_RMA_LINE_UPSERT,
    ST_RMA_LINE_SERIALS,
    ST_RMA_SERIALS_DELETE,
    ST_RMA_SERIAL_INSERT,
    ST_RMA_LINE_GET,
    ST_RMA_LINES,
    ST_RMA_LINE_NUMBERS,
    ST_RMA_LINE_DELETE,
    ST_RMA_RECEIVED_ON_LINE,
    ST_RMA_COUNTS,
    ST_RMA_REOPEN,
    ST_RMA_SERIAL_LINE,
    ST_RMA_SERIAL_RECEIVED,
    ST_RMA_CLOSE,
    ST_RMA_CLOSED,
    ST_RMA_LIST,
    ST_RMA_UNIT_NUMBER,
    ST_RECEIPT_INSERT,
    ST_RECEIPT_UPDATE,
    ST_RECEIPT_UPDATE_OPEN,
    ST_RECEIPT_GET,
    ST_RECEIPT_GET_OPEN,
    ST_RECEIPT_RECENT,
    ST_RECEIPT_BY_POLICY_VERSION,
    ST_RECEIPT_SEARCH,
    ST_RECEIPTS_OF_RMA,
    ST_SCAN_INSERT,
    ST_SCANS_OF_RECEIPT,
    ST_OUTBOX_LAST_SEQ,
    ST_OUTBOX_INSERT,
    ST_OUTBOX_FROM,
    ST_OUTBOX_OF_RECEIPT,
    ST_PRINT_INSERT,
    ST_PRINT_GET,
    ST_PRINT_UNFINISHED,
    ST_PRINT_SUBMITTING,
    ST_PRINT_SUBMITTED,
    ST_PRINT_FINISH,
    ST_PRINT_RETRY,
    ST_PRINT_CANCEL,
    ST_PRINT_LIST,
    ST_PRINT_LAST,
    ST_FORWARD_MARK_GET,
    ST_FORWARD_MARK_SET,
    ST_COUNT
} db_stmt_id_t;

struct db {
    sqlite3 *sql;
    sqlite3_stmt *stmt[ST_COUNT];
    char *err;       /* last failure, malloc'd, NULL when none */
    db_wal_fn wal_fn;  /* db_watch_wal */
    void *wal_data;
};

/*
 * The cached statement `id`, prepared from `sql` on first use (each query file keeps
 * its SQL beside the function that runs it, and always passes the same text for an
 * id). NULL on failure, with db->err set. Release with db_stmt_done.
 */
sqlite3_stmt *db_stmt(db_t *db, db_stmt_id_t id, const char *sql);

/* Reset a statement after use (drops its read lock) and clear its bindings. */
void db_stmt_done(sqlite3_stmt *st);

/*
 * Record a SQLite failure as "what: sqlite message" and return the mapped negative
 * errno (see db.h). rc is the (extended) result code.
 */
int db_fail(db_t *db, int rc, const char *what);

/* Record a failure that is not SQLite's ("what: text") and return err. */
int db_fail_msg(db_t *db, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Map a SQLite result code to 0 or a negative errno. */
int db_errno(sqlite3 *sql, int rc);

/* Binding helpers: NULL / absent values bind SQL NULL. Return a SQLite code. */
int db_bind_text(sqlite3_stmt *st, int i, const char *s);      /* NULL or "" -> NULL */
int db_bind_date(sqlite3_stmt *st, int i, caldate_t d);         /* CALDATE_NONE -> NULL */
int db_bind_time(sqlite3_stmt *st, int i, int64_t ms);          /* DB_TIME_NONE -> NULL */

/* Column readers. */
caldate_t db_column_date(sqlite3_stmt *st, int i);              /* NULL/bad -> CALDATE_NONE */
int64_t db_column_time(sqlite3_stmt *st, int i);                /* NULL/bad -> DB_TIME_NONE */
/* malloc'd copy of a text column, NULL for SQL NULL; sets *oom on allocation failure. */
char *db_column_strdup(sqlite3_stmt *st, int i, int *oom);

/* Unix ms <-> "YYYY-MM-DDTHH:MM:SS.mmmZ". */
#define DB_TIME_STRLEN 25
void db_time_format(int64_t ms, char buf[DB_TIME_STRLEN]);
int db_time_parse(const char *s, int64_t *ms);

/* 1 when s[0..len) is valid UTF-8 (no overlongs, no surrogates), else 0. */
int db_utf8_valid(const char *s, size_t len);

/* A value for an error message: quoted, non-printable bytes as \xNN, cut after 40
 * bytes with "...". malloc'd, NULL when out of memory. */
char *db_quote(const char *s);

/* RMA columns (rma.c), in the order of the CSV contract. */
enum {
    RMA_COL_NUMBER,
    RMA_COL_ISSUED,
    RMA_COL_KIND,
    RMA_COL_VENDOR,
    RMA_COL_MODEL,
    RMA_COL_FAMILY,
    RMA_COL_EXPECTED_SERIAL,
    RMA_COL_PURCHASED,
    RMA_COL_SHIPPED,
    RMA_COL_INVOICED,
    RMA_COL_ORDER_VALUE,
    RMA_COL_WARRANTY_MONTHS,
    RMA_COL_HAS_STORAGE_MEDIA,
    RMA_COL_PROOF_OF_PURCHASE,
    RMA_COL_LINE,
    RMA_COL_QUANTITY,
    RMA_COL_EXPECTED_SERIALS,
    RMA_COL_COUNT
};
extern const char *const db_rma_columns[RMA_COL_COUNT];

/* Column index of a name (case-insensitive), or -1. */
int db_rma_column(const char *name);

/* db_rma_set_field by column index; value need not be NUL-terminated. */
int db_rma_set_column(db_rma_t *rma, int col, const char *value, size_t len, char **errmsg);

/*
 * Every problem of an RMA, one call of report(data, column, message) each, where
 * message is "column: problem". number_re NULL means DB_RMA_NUMBER_PATTERN;
 * `pattern` is the pattern's text for messages (NULL: "the RMA number pattern").
 * Columns whose bit is set in `skip` are not checked (the import already reported
 * them). Returns the number of problems, or -ENOMEM.
 */
typedef int (*db_rma_problem_fn)(void *data, int col, const char *msg);
int db_rma_check(const db_rma_t *rma, const regex_t *number_re, const char *pattern,
                 unsigned skip, db_rma_problem_fn report, void *data);

/*
 * Split a '|'-separated serial list: fn(data, serial, len) per item, trimmed (empty
 * items included, len 0). Returns the number of items, or fn's negative return.
 */
int db_serials_split(const char *list, int (*fn)(void *data, const char *s, size_t len),
                     void *data);

/*
 * Delete the RMA's lines whose number is not in keep[] (-EPERM when units were
 * received on one), then settle its status. Inside a transaction.
 */
int db_rma_keep_lines(db_t *db, const char *number, const int *keep, size_t nkeep);

/* Compile DB_RMA_NUMBER_PATTERN. Returns 0 or -ENOMEM. */
int db_rma_default_re(regex_t *re);

/* Migrations (migrations.c): scripts[i] brings user_version i to i + 1. */
extern const char *const db_migrations[];
extern const int db_migrations_count;

#endif
