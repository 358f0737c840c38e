/*
 * db: rmad's SQLite storage, the audit trail of the dock. Nothing acknowledged is
 * ever lost: every write that returned 0 after db_commit() is on disk (WAL,
 * synchronous=FULL), and the schema itself refuses what would break the trail
 * (closed receipts and scans are immutable, the event outbox is append-only and
 * gapless).
 *
 * One db_t per process, used from the event-loop thread only. Statements are
 * prepared once, on first use, and kept in the db_t.
 *
 * Errors: every function returns 0 or a negative errno, and on failure keeps a
 * one-line message for db_errmsg() so that the caller logs once. SQLite results map
 * to errno as follows:
 *   -EBUSY    locked by another connection past the busy timeout
 *   -ENOSPC   disk full (SQLITE_FULL)
 *   -EIO      I/O error (or the OS errno SQLite reports, e.g. -EACCES on open)
 *   -EBADMSG  the file is corrupt or not a database
 *   -EROFS    read-only database
 *   -ENOMEM   out of memory
 *   -EEXIST   unique / primary-key constraint (e.g. a second open receipt on a station)
 *   -ENOENT   foreign key to a row that does not exist; or "not found" where noted
 *   -EPERM    a schema rule of the audit trail (closed receipt changed, scan or event
 *             rewritten or deleted, outbox seq not last + 1)
 *   -EINVAL   other constraint (CHECK, NOT NULL), or API misuse (e.g. nested begin)
 *   -ENOTSUP  database schema newer than this code
 */
#ifndef RMAD_DB_H
#define RMAD_DB_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/caldate.h"

typedef struct db db_t;

/* Page cache of each connection db_open makes, KiB (db.c says why this size). */
#define DB_CACHE_KIB     512
#define DB_CACHE_KIB_STR "512"

/* Schema version this code creates and understands (PRAGMA user_version). */
int db_schema_version(void);

/*
 * Open (creating the file, not its directory, if needed) the database at `path`,
 * switch to WAL with synchronous=FULL, foreign keys on, a 5 s busy timeout, and
 * apply every pending migration, each in its own transaction. A database whose
 * user_version is newer than db_schema_version() is refused with -ENOTSUP.
 * Returns 0 and sets *out, or a negative errno and sets *errmsg (caller frees) to
 * "PATH: reason".
 */
int db_open(const char *path, db_t **out, char **errmsg);

/*
 * Whether a database can live at `path`, without opening it: its directory exists and
 * this process may create files there (SQLite also creates PATH-wal and PATH-shm), the
 * filesystem is not mounted read-only, and an existing file is a regular file this
 * process can read and write. Returns 0, or a negative errno with *errmsg (malloc'd)
 * naming the cause in words, e.g. "/var/lib/rmad: no such directory",
 * "/var/lib/rmad: read-only filesystem", "/var/lib/rmad/rmad.db: permission denied".
 * For `rmad --check-config` and for a clear error at start (SQLite says only "unable
 * to open database file").
 */
int db_check_location(const char *path, char **errmsg);

/*
 * How long one statement waits for a lock another process holds before it fails with
 * -EBUSY (db_open sets 5 s, fine for rmactl). The daemon sets DB_DAEMON_BUSY_MS: its
 * loop must not stall, and it queues what failed (daemon/scanq.h). Returns 0 or an error.
 */
#define DB_DAEMON_BUSY_MS 50
int db_set_busy_timeout(db_t *db, int ms);

/* Close (rolling back an unfinished transaction) and set *db to NULL. NULL is fine. */
void db_close(db_t **db);

/* The message of the last failure on this handle, "" if none. Valid until the next call. */
const char *db_errmsg(const db_t *db);

/*
 * The database file's absolute path (owned by db), for a second connection on another
 * thread (an import off the loop); NULL for a temporary or in-memory database.
 */
const char *db_path(const db_t *db);

/*
 * Transactions (BEGIN IMMEDIATE: the write lock is taken at once, so a commit never
 * fails for a lock). No nesting: db_begin inside a transaction is -EINVAL.
 * db_commit returns 0 only once the transaction is durable; on failure it rolls
 * back, so after db_commit no transaction is open either way. db_rollback outside a
 * transaction is a no-op returning 0.
 */
int db_begin(db_t *db);
int db_commit(db_t *db);
int db_rollback(db_t *db);
bool db_in_transaction(const db_t *db);

/*
 * One savepoint inside the open transaction (group commit: one per scan, so that a
 * scan whose statements fail rolls back alone and the others of the batch still
 * commit). db_savepoint opens it; db_release keeps its work in the transaction;
 * db_rollback_to undoes its work and ends it. Not nested. All three are -EINVAL
 * outside a transaction. A failure that ended the whole transaction (SQLite rolls
 * back by itself on some I/O errors and on a full disk) shows as !db_in_transaction.
 */
int db_savepoint(db_t *db);
int db_release(db_t *db);
int db_rollback_to(db_t *db);

/*
 * WAL checkpoints off the scan path (issue 17). By default SQLite checkpoints inside
 * whichever commit brings the WAL to 1000 pages, so that one scan pays for everyone's.
 * A daemon instead watches its commits and checkpoints when it is idle:
 *
 * db_watch_wal(db, fn, data): after every commit that wrote the WAL, fn(frames, data)
 * hears how many frames the WAL holds (called from inside db_commit: fn must only take
 * note, e.g. arm a timer). SQLite's own autocheckpoint is then off but for a backstop
 * at DB_WAL_BACKSTOP_FRAMES, reached only when the watcher never checkpoints. fn NULL
 * gives SQLite's default back.
 *
 * db_checkpoint(db, &left): one PASSIVE checkpoint (never waits for readers or
 * writers); left is how many WAL frames it could not copy yet (a reader holds them),
 * 0 when all are in the database file. Outside a transaction only (-EINVAL inside).
 */
#define DB_WAL_BACKSTOP_FRAMES 8000   /* 32 MB of 4 KiB pages */
#define DB_CHUNK_BYTES (1024 * 1024)  /* the database file grows this much at a time */
typedef void (*db_wal_fn)(int frames, void *data);
void db_watch_wal(db_t *db, db_wal_fn fn, void *data);
int db_checkpoint(db_t *db, int *left);

/*
 * The same PASSIVE checkpoint on a connection of its own to the file at path, for a
 * thread that is not the loop's (daemon/checkpoint.c): copying the WAL back and the
 * database file's fsync then never hold up a commit. Returns 0 (left as above, copied
 * the frames now in the database file; either may be NULL), or -EBUSY, -ENOSPC,
 * -EROFS, -ENOMEM, -EIO.
 */
int db_checkpoint_file(const char *path, int *left, int *copied);

/* Timestamps are Unix milliseconds in the API and RFC 3339 UTC text with milliseconds
 * ("2026-11-21T09:30:00.123Z") in the database. */
#define DB_TIME_NONE INT64_MIN

/* ---------------------------------------------------------------- RMAs --------- */

#define DB_RMA_NUMBER_MAX 64   /* bytes, without NUL */
#define DB_RMA_TEXT_MAX   128  /* vendor, model, family, expected_serial */
#define DB_RMA_NUMBER_PATTERN "^RMA-?[0-9A-Z]{4,20}$"  /* default, POSIX ERE */

typedef enum {
    DB_RMA_KIND_UNSET = 0,  /* not stated: policies default to warranty */
    DB_RMA_KIND_WARRANTY,
    DB_RMA_KIND_CREDIT,
    DB_RMA_KIND_ADVANCE_REPLACEMENT,
    DB_RMA_KIND_OTC_EXCHANGE,
} db_rma_kind_t;

#define DB_RMA_LINE_MAX     9999   /* line numbers 1..9999 */
#define DB_RMA_QUANTITY_MAX 10000  /* units authorised on one line */
#define DB_RMA_SERIALS_MAX  4096   /* bytes of a line's '|'-separated serial list */

/*
 * An RMA's state. Stored: open / received (every authorised unit is in) and closed
 * (rmactl rma close). Derived when read: partially received (some units in).
 * "Expired" is the vendor policy's rule, so only the daemon can tell it
 * (control_set_rma_expiry).
 */
typedef enum {
    DB_RMA_OPEN = 0,
    DB_RMA_RECEIVED,
    DB_RMA_PARTIAL,
    DB_RMA_CLOSED,
    DB_RMA_EXPIRED,     /* never returned by db/: the daemon's verdict */
} db_rma_status_t;

/* "open", "received", "partially received", "closed", "expired". */
const char *db_rma_status_name(db_rma_status_t s);
/* Parse "open", "partial" (or "partially received"), "received", "closed", "expired". */
int db_rma_status_parse(const char *s, db_rma_status_t *out);

/* Tri-state for optional booleans. */
#define DB_UNSET (-1)

/*
 * One line of an RMA as the upstream system issued it, together with the RMA's own
 * fields: what a CSV row holds, and what the policy sees of one unit (a one-line RMA
 * is exactly the RMA of before lines). Text fields are NUL-terminated; "" means
 * absent (NULL in the database). Dates are CALDATE_NONE when absent.
 *
 * The RMA's fields: number, issued, kind, vendor, order_value, proof_of_purchase
 * (the same on every line). The line's: line, model, family, purchased, shipped,
 * invoiced, warranty_months, has_storage_media, quantity and its expected serials.
 */
typedef struct {
    char number[DB_RMA_NUMBER_MAX + 1];              /* required */
    caldate_t issued;                                /* required */
    db_rma_kind_t kind;
    char vendor[DB_RMA_TEXT_MAX + 1];                /* required */
    int line;                                        /* 1..9999; 0: not stated */
    char model[DB_RMA_TEXT_MAX + 1];
    char family[DB_RMA_TEXT_MAX + 1];
    /* One expected serial (the CSV's expected_serial column; db_rma_get*: the line's
     * serial when it lists exactly one) */
    char expected_serial[DB_RMA_TEXT_MAX + 1];
    /* The line's expected serials, '|'-separated (the expected_serials column). On
     * write, either this or expected_serial; on read, always the whole list. */
    char expected_serials[DB_RMA_SERIALS_MAX + 1];
    int quantity;                                    /* 1..10000 (default 1) */
    caldate_t purchased, shipped, invoiced;
    bool has_order_value;
    double order_value;                              /* >= 0 */
    int warranty_months;                             /* 0..1200, DB_UNSET */
    int has_storage_media;                           /* 0, 1, DB_UNSET */
    int proof_of_purchase;                           /* 0, 1, DB_UNSET */
    /* Set by db_rma_get*; ignored by db_rma_upsert. */
    db_rma_status_t status;                          /* open, partial, received, closed */
    int lines;                                       /* lines of the RMA */
    int authorised, received;                        /* units: of the whole RMA */
    int line_received;                               /* units received on this line */
    int64_t imported_at, updated_at;                 /* ms */
} db_rma_t;

/* Every field absent. */
void db_rma_init(db_rma_t *rma);

/* "warranty", ..., NULL for DB_RMA_KIND_UNSET. */
const char *db_rma_kind_name(db_rma_kind_t kind);
/* Parse a kind name (case-insensitive). Returns 0 or -EINVAL (*out untouched). */
int db_rma_kind_parse(const char *s, db_rma_kind_t *out);

/*
 * Set one field from its text form, as in the CSV import: `column` is one of
 * number, issued, kind, vendor, model, family, expected_serial, purchased, shipped,
 * invoiced, order_value, warranty_months, has_storage_media, proof_of_purchase.
 * Surrounding spaces/tabs are trimmed; an empty value makes the field absent.
 * Dates are strict YYYY-MM-DD, booleans true/false/yes/no/1/0, order_value a plain
 * decimal >= 0, warranty_months 0..1200; text must be UTF-8 without control
 * characters and fit its cap. Returns 0, -ENOENT for an unknown column, or -EINVAL;
 * on failure sets *errmsg, e.g. `issued: expected YYYY-MM-DD, got "2026-02-30"`.
 */
int db_rma_set_field(db_rma_t *rma, const char *column, const char *value, char **errmsg);

/* True when name is a field of db_rma_set_field. */
bool db_rma_field_known(const char *name);

/*
 * The comparison key of a serial: trimmed of white space, ASCII upper case (as
 * policy_serial_equal compares). Writes at most cap bytes with the NUL.
 */
void db_serial_key(const char *s, size_t len, char *key, size_t cap);

/*
 * Check a whole RMA (also one filled field by field from JSON): number, issued and
 * vendor present, number matching `number_re` (NULL: DB_RMA_NUMBER_PATTERN), every
 * field in range. Returns 0 or -EINVAL with *errmsg = "field: problem".
 */
int db_rma_validate(const db_rma_t *rma, const regex_t *number_re, char **errmsg);

typedef enum {
    DB_UPSERT_INSERTED = 1,
    DB_UPSERT_UPDATED,
    DB_UPSERT_UNCHANGED,
} db_upsert_t;

/*
 * Insert the RMA with this one line (rma->line, 1 when 0), or update the stored RMA's
 * fields and that line (its serials replaced when they differ); other lines are
 * kept. The status is kept (a received RMA stays received) unless the line now
 * authorises more units than are in. A line's quantity below the units already
 * received on it is refused (-EPERM, with the reason in db_errmsg). Does not
 * validate: call db_rma_validate first. Returns 0 and sets *what (may be NULL), or a
 * negative errno.
 */
int db_rma_upsert(db_t *db, const db_rma_t *rma, db_upsert_t *what);

/*
 * Replace a whole RMA: the RMA's fields from lines[0], exactly these n lines (their
 * line numbers set, distinct), others deleted. Refused with -EPERM when a line that
 * goes, or shrinks, has more units received than it would authorise; the message
 * says which. Validated rows only (db_rma_validate, serials unique in the RMA).
 */
int db_rma_replace(db_t *db, const db_rma_t *lines, size_t n, db_upsert_t *what);

/*
 * Fill *out with the stored RMA and its first line (what a one-line RMA is), or with
 * line `line`. Return 0, -ENOENT when there is no such RMA or line, or an error.
 */
int db_rma_get(db_t *db, const char *number, db_rma_t *out);
int db_rma_get_line(db_t *db, const char *number, int line, db_rma_t *out);

/*
 * Which unit of its RMA completed receipt `receipt_id` is: *k = 1 for the first unit
 * received, ...; 0 when the receipt is not one of the RMA's units (not completed, or
 * a mismatched serial). For the label's "unit k of n".
 */
int db_rma_unit_number(db_t *db, const char *number, int64_t receipt_id, int *k);

/* Call fn for each line of the RMA, in line order (*r borrowed for the call). */
typedef int (*db_rma_fn)(const db_rma_t *r, void *data);
int db_rma_foreach_line(db_t *db, const char *number, db_rma_fn fn, void *data);

/*
 * The line that lists `serial` (compared trimmed and ASCII case-folded, as the
 * station compares serials): 0 and *line, or -ENOENT when no line lists it.
 */
int db_rma_serial_line(db_t *db, const char *number, const char *serial, int *line);

/*
 * The completed receipt of this RMA whose serial is `serial` (compared as above): 0
 * and *receipt_id, or -ENOENT when that serial has not been received on the RMA.
 */
int db_rma_serial_received(db_t *db, const char *number, const char *serial,
                           int64_t *receipt_id);

/*
 * Mark an open RMA received (every unit in). Returns 0, -ENOENT (unknown), -EALREADY
 * (already received).
 */
int db_rma_mark_received(db_t *db, const char *number);

/*
 * Close an RMA the customer will not complete: refused from now on with `reason`.
 * Returns 0, -ENOENT (unknown), -EALREADY (already closed, or every unit received).
 */
int db_rma_close(db_t *db, const char *number, const char *reason, int64_t now_ms);

/* Why and when an RMA was closed; *reason malloc'd (caller frees). -ENOENT if open. */
int db_rma_closed(db_t *db, const char *number, char **reason, int64_t *at_ms);

/*
 * Call fn for every RMA (its first line's fields, status and counts set), by number;
 * of `vendor` (case-insensitive) when not NULL, in state `state` when >= 0
 * (DB_RMA_EXPIRED: not filtered here, the caller decides).
 */
int db_rma_list(db_t *db, int state, const char *vendor, db_rma_fn fn, void *data);

/* ------------------------------------------------------------ RMA import ------ */

#define DB_IMPORT_MAX_ROWS   100000          /* data rows per file */
#define DB_IMPORT_MAX_BYTES  (64u << 20)     /* whole file */
#define DB_IMPORT_MAX_FIELD  4096            /* bytes in one CSV field, before checks */
#define DB_IMPORT_MAX_ERRORS 1000            /* messages kept in the report */

typedef struct {
    size_t rows;          /* data rows read */
    size_t inserted, updated, unchanged;   /* all 0 unless the import was applied */
    char **errors;        /* "line 7: issued: expected YYYY-MM-DD, got \"2026-02-30\"", by line */
    size_t nerrors;       /* entries in errors[] */
    size_t errors_total;  /* errors found; more than nerrors when the cap was reached */
} db_import_report_t;

/*
 * Import RMAs from CSV text (RFC 4180: header row naming the columns of
 * db_rma_set_field in any order, names case-insensitive; required columns number,
 * issued, vendor; unknown or repeated column is an error; quoted fields with ""
 * for a quote; CRLF, LF or CR line ends; final newline optional; UTF-8 BOM skipped;
 * blank lines skipped). Every row is checked (db_rma_set_field, db_rma_validate with
 * `number_re`, NULL for the default; a number twice in the file is an error) and
 * every error is collected with the line where its row starts. If there is any
 * error nothing is applied and -EINVAL is returned; otherwise every row is upserted
 * in one transaction (call outside a transaction) and the counts are filled.
 *
 * *rep is reset on entry and always filled (rows, errors) whatever the result;
 * release it with db_import_report_clear. On failure *errmsg is the first error,
 * with "(and N more errors)" when there are more. Other errors: -E2BIG (file over
 * the caps), -ENOMEM, or a database error.
 */
int db_rma_import_csv(db_t *db, const char *text, size_t len, const regex_t *number_re,
                      db_import_report_t *rep, char **errmsg);

/*
 * The same from a stream: f must be seekable (it is read twice, checked then applied)
 * and is left open. Memory stays bounded whatever the file (docs/limits.md): the
 * rows pass 1 keeps go to TEMP tables of db's connection, on disk. -ESPIPE when f
 * cannot seek.
 */
int db_rma_import_file(db_t *db, FILE *f, const regex_t *number_re, db_import_report_t *rep,
                       char **errmsg);

void db_import_report_clear(db_import_report_t *rep);

/* ------------------------------------------------------------ receipts -------- */

typedef enum {
    DB_RECEIPT_OPEN = 0,
    DB_RECEIPT_COMPLETED,
    DB_RECEIPT_CANCELLED,
    DB_RECEIPT_REFUSED,
} db_receipt_state_t;

/* "open", "completed", "cancelled", "refused". */
const char *db_receipt_state_name(db_receipt_state_t s);

/*
 * One receipt: a unit received at a station. String fields are NULL when absent.
 * Filled by db_receipt_get*: every string is malloc'd and owned by the struct
 * (release with db_receipt_clear). Passed to db_receipt_list_recent's callback:
 * borrowed, valid only during the call.
 */
typedef struct db_receipt {
    int64_t id;
    char *station;               /* required */
    char *rma;                   /* as scanned; NULL for CMD-NORMA receipts */
    int line;                    /* the unit's line of the RMA; 0 while not known */
    db_receipt_state_t state;
    int64_t opened_at;           /* ms, required (> 0) */
    int64_t closed_at;           /* ms, required once closed; ignored (and read back
                                    as DB_TIME_NONE) while open */
    char *serial;                /* as read at the dock */
    char *checklist;             /* JSON text */
    char *result;                /* JSON text: the policy result */
    char *disposition;           /* required once completed */
    char *reason;                /* why refused / cancelled */
    char *policy_sha256;         /* the deciding policy file's SHA-256 (64 hex), or NULL */
    char *policy_version;        /* its `version:`, NULL when it has none */
} db_receipt_t;

/* Free the strings of a receipt filled by db_receipt_get* and zero it. NULL is fine. */
void db_receipt_clear(db_receipt_t *r);

/*
 * Insert a receipt (r->id ignored). A station has at most one open receipt
 * (-EEXIST for a second one). Returns 0 and sets *id (may be NULL), or an error.
 */
int db_receipt_insert(db_t *db, const db_receipt_t *r, int64_t *id);

/*
 * Update receipt r->id: state, closed_at, line, serial, checklist, result, disposition,
 * reason (station, rma and opened_at never change). Only an open receipt can be
 * updated (-EPERM once closed). Returns 0, -ENOENT, or an error.
 */
int db_receipt_update(db_t *db, const db_receipt_t *r);

/* Fill *out (owned, see db_receipt_clear). Return 0, -ENOENT, or an error. */
int db_receipt_get(db_t *db, int64_t id, db_receipt_t *out);
int db_receipt_get_open(db_t *db, const char *station, db_receipt_t *out);

/*
 * Call fn for each of the `limit` most recent receipts (0 = all), newest first (by
 * opened_at, then id). fn returns 0 to go on; anything else stops the walk and is
 * returned. fn must not start another db_receipt_list_recent.
 */
typedef int (*db_receipt_fn)(const db_receipt_t *r, void *data);
int db_receipt_list_recent(db_t *db, unsigned limit, db_receipt_fn fn, void *data);
/* The same, only receipts decided by a policy whose `version:` is exactly version. */
int db_receipt_list_by_policy_version(db_t *db, const char *version, unsigned limit,
                                      db_receipt_fn fn, void *data);

/*
 * A supervisor's search (the web pages): every field NULL / 0 matches all. rma and
 * serial match as prefixes, case-insensitively for ASCII ("rma-00" finds RMA-0001);
 * station exactly; state is a receipt state name or, with disposition, the
 * disposition word; from_ms/to_ms bound opened_at (from inclusive, to exclusive).
 */
typedef struct {
    const char *rma;
    const char *serial;
    const char *station;
    const char *state;
    const char *disposition;
    int64_t from_ms, to_ms;      /* 0: unbounded */
    const char *policy_version;  /* exactly: decided by a policy with this version: */
} db_receipt_filter_t;

/*
 * Call fn for the receipts matching f, newest first, skipping `offset` and at most
 * `limit` (1..1000) of them; *total (may be NULL) is set to the number that match
 * in all, for paging (0 on a page past the end: no row carries it). Same callback rules as db_receipt_list_recent. -EINVAL for a
 * limit out of range.
 */
int db_receipt_search(db_t *db, const db_receipt_filter_t *f, unsigned limit,
                      unsigned offset, db_receipt_fn fn, void *data, uint64_t *total);
/* Call fn for every receipt of an RMA (refused ones too), oldest first. As above. */
int db_receipt_foreach_rma(db_t *db, const char *number, db_receipt_fn fn, void *data);

/* ------------------------------------------------------------ scans ----------- */

/*
 * One scan, accepted or rejected: the audit record. Strings are borrowed from the
 * caller (insert) or valid only during the callback (iteration).
 */
typedef struct {
    int64_t id;                  /* set by the database */
    int64_t at;                  /* ms, required (> 0) */
    const char *station;         /* required */
    const char *scanner;         /* required */
    const char *symbology;       /* AIM id "]C1", or NULL */
    const void *raw;             /* the exact bytes received (any bytes, NUL too) */
    size_t raw_len;
    const char *text;            /* decoded text, valid UTF-8, or NULL */
    const char *kind;            /* classification by the station, required */
    bool accepted;
    const char *reason;          /* required when rejected */
    int64_t receipt_id;          /* 0 = none */
} db_scan_t;

/*
 * Store a scan (s->id ignored). -EILSEQ when s->text is not valid UTF-8, -ENOENT
 * when receipt_id names no receipt. Returns 0 and sets *id (may be NULL).
 */
int db_scan_insert(db_t *db, const db_scan_t *s, int64_t *id);

/* Call fn for every scan of a receipt, oldest first (raw is NULL when raw_len is 0);
 * fn's non-zero return stops the walk and is returned. fn must not start another
 * db_scan_foreach_receipt. */
typedef int (*db_scan_fn)(const db_scan_t *s, void *data);
int db_scan_foreach_receipt(db_t *db, int64_t receipt_id, db_scan_fn fn, void *data);

/* ------------------------------------------------------------ event outbox ---- */

/*
 * The outbox holds every event ever committed, keyed by seq (1, 2, 3 ... with no
 * gap; the schema rejects anything else). An event is stored in the same
 * transaction as the state change it reports and published after db_commit:
 *
 *     db_begin(db);
 *     ... state change ...
 *     db_outbox_next_seq(db, &seq);
 *     body = build the JSON with "seq": seq, "type": topic;
 *     db_outbox_insert(db, seq, topic, body);
 *     db_commit(db);              then publish (topic, body)
 *
 * A rollback gives the seq back: no number is consumed by a failed transaction.
 */

/* Last committed (or, inside a transaction, inserted) seq; 0 when there is none. */
int db_outbox_last_seq(db_t *db, uint64_t *out);

/* last seq + 1. Only inside a transaction (-EINVAL outside: the number could race). */
int db_outbox_next_seq(db_t *db, uint64_t *out);

/*
 * Append one event. `seq` must be db_outbox_next_seq()'s value; `body` a JSON object
 * whose "seq" equals seq and whose "type" equals topic (-EINVAL otherwise, -EPERM
 * for a wrong seq). Only inside a transaction.
 */
int db_outbox_insert(db_t *db, uint64_t seq, const char *topic, const char *body);

typedef struct {
    uint64_t seq;
    const char *topic;
    const char *body;
    size_t body_len;
    const char *created_at;      /* RFC 3339 text */
} db_event_t;

/*
 * Replay: call fn for every stored event with seq >= from, in seq order, at most
 * `limit` of them (0 = no limit). Pointers are valid only during the call. fn
 * returns 0 to go on; anything else stops and is returned. fn must not start
 * another db_outbox_foreach.
 */
typedef int (*db_event_fn)(const db_event_t *ev, void *data);
int db_outbox_foreach(db_t *db, uint64_t from, unsigned limit, db_event_fn fn, void *data);

/*
 * The events of one receipt (envelope "receipt" = receipt_id), in seq order, at most
 * limit (0: all). The outbox has no receipt column, so this reads every event's
 * envelope: O(events stored), for a supervisor looking at one receipt, never on a
 * scan's path. As db_outbox_foreach otherwise.
 */
int db_outbox_foreach_receipt(db_t *db, int64_t receipt_id, unsigned limit, db_event_fn fn,
                              void *data);

/* ------------------------------------------------------------ forward marks --- */

/*
 * A forwarder's durable cursor (daemon/forward.h): every event up to *seq is
 * acknowledged by the sink named `sink`, the mark last moved at *updated_ms (Unix ms).
 * A sink never marked reads as seq 0, updated_ms 0. Returns 0 or the database's error.
 */
int db_sink_mark_get(db_t *db, const char *sink, uint64_t *seq, int64_t *updated_ms);

/*
 * Move the mark of `sink` to seq (its own statement: autocommit unless the caller has
 * a transaction open). A seq below the stored one is refused (-EPERM: an ack is never
 * taken back). Returns 0 or the database's error (-EBUSY while another writer holds
 * the database: try again later, the mark only lags).
 */
int db_sink_mark_set(db_t *db, const char *sink, uint64_t seq, int64_t now_ms);

/* ------------------------------------------------------------ print queue ----- */

/* Why a label is printed. */
typedef enum {
    DB_PRINT_DISPOSITION = 0,   /* a completed receipt */
    DB_PRINT_REFUSAL,           /* a refused RMA */
    DB_PRINT_REPRINT,           /* CMD-REPRINT or rmactl reprint */
} db_print_why_t;

typedef enum {
    DB_PRINT_QUEUED = 0,        /* waiting for its printer */
    DB_PRINT_SUBMITTING,        /* being handed to CUPS as job_name (maybe there already) */
    DB_PRINT_SUBMITTED,         /* a CUPS job (cups_job, job_uuid) being followed */
    DB_PRINT_PRINTED,           /* final: CUPS completed it */
    DB_PRINT_FAILED,            /* final: cancelled in CUPS, or the label cannot be made */
    DB_PRINT_CANCELLED,         /* final: given up on purpose (rmactl labels cancel) */
} db_print_state_t;

/*
 * "disposition", "refusal", "reprint"; "queued", "submitting", "submitted", "printed",
 * "failed", "cancelled".
 */
const char *db_print_why_name(db_print_why_t why);
const char *db_print_state_name(db_print_state_t state);

/*
 * One label in the queue. Filled by db_print_get: strings malloc'd, released with
 * db_print_job_clear. Passed to db_print_foreach_*: borrowed for the call.
 */
typedef struct {
    int64_t id;
    int64_t receipt_id;
    char *station;
    char *printer;              /* CUPS queue */
    db_print_why_t why;
    db_print_state_t state;
    int64_t created_at;         /* ms */
    int attempts;               /* submissions started so far */
    char *job_name;             /* the current attempt's CUPS job name; NULL when none */
    int cups_job;               /* 0 when none */
    char *job_uuid;             /* NULL when none (or not known: older rows) */
    char *last_error;           /* NULL when none */
    int64_t done_at;            /* ms, DB_TIME_NONE until final */
} db_print_job_t;

void db_print_job_clear(db_print_job_t *job);

/*
 * Queue a label for receipt_id at printer. Meant to run inside the transaction that
 * closes the receipt (or records the CMD-REPRINT scan). Returns 0 and sets *id (may be
 * NULL), -ENOENT when the receipt does not exist, or an error.
 */
int db_print_enqueue(db_t *db, int64_t receipt_id, const char *station, const char *printer,
                     db_print_why_t why, int64_t now_ms, int64_t *id);

/* Fill *out. Returns 0, -ENOENT, or an error. */
int db_print_get(db_t *db, int64_t id, db_print_job_t *out);

/*
 * Call fn for every queued, submitting or submitted job, oldest first (by id). fn's
 * non-zero return stops the walk and is returned; fn must not start another walk.
 */
typedef int (*db_print_fn)(const db_print_job_t *job, void *data);
int db_print_foreach_unfinished(db_t *db, db_print_fn fn, void *data);

/* Which labels db_print_foreach lists. */
typedef enum {
    DB_PRINT_LIST_ALL = 0,
    DB_PRINT_LIST_WAITING,      /* not finished: queued, submitting or submitted */
    DB_PRINT_LIST_FAILED,       /* failed, or waiting after a failed attempt */
    DB_PRINT_LIST_PRINTED,
    DB_PRINT_LIST_CANCELLED,
} db_print_list_t;

/*
 * Call fn for the labels of `which` (of station, when not NULL), newest first, at most
 * limit (0: no limit). As db_print_foreach_unfinished otherwise.
 */
int db_print_foreach(db_t *db, db_print_list_t which, const char *station, unsigned limit,
                     db_print_fn fn, void *data);

/*
 * Transitions; each is -EPERM when the job is not in a state it applies to (a finished
 * one, above all), -ENOENT for an unknown one.
 * submitting: queued -> submitting, as attempt `attempt` (the stored attempts + 1)
 *   under job_name, BEFORE the job goes to CUPS.
 * submitted: submitting -> submitted: CUPS job cups_job (> 0), job_uuid (may be NULL).
 * printed: submitting or submitted -> printed (CUPS completed it).
 * retry: queued, submitting or submitted -> queued after a failed attempt, with error;
 *   the CUPS job, if any, is over (aborted, lost, never made).
 * failed: any unfinished -> failed (final), with error.
 * cancel: queued -> cancelled, with why; -EBUSY when the label is being handed to CUPS
 *   or is there already (cancel that job in CUPS instead).
 */
int db_print_submitting(db_t *db, int64_t id, int attempt, const char *job_name);
int db_print_submitted(db_t *db, int64_t id, int cups_job, const char *job_uuid);
int db_print_printed(db_t *db, int64_t id, int64_t now_ms);
int db_print_retry(db_t *db, int64_t id, const char *error);
int db_print_failed(db_t *db, int64_t id, const char *error, int64_t now_ms);
int db_print_cancel(db_t *db, int64_t id, const char *why, int64_t now_ms);

/* The receipt of the station's most recent label (any state), 0 when none. */
int db_print_last_receipt(db_t *db, const char *station, int64_t *receipt_id);

#endif
