/*
 * Database care (docs/control.md, "Backup, retention, doctor"): online backups,
 * retention of old scans and events, subscribers' acknowledgements, integrity checks.
 *
 * Backup and integrity checks open the file themselves (their own connection, read
 * only), so rmactl runs them beside a running daemon: in WAL mode a reader sees one
 * committed state and never blocks the daemon's writes. Retention and acknowledgements
 * run on the daemon's db_t, from its loop.
 */
#ifndef RMAD_DB_MAINT_H
#define RMAD_DB_MAINT_H

#include <stdint.h>

#include "db/db.h"

/*
 * Copy the database at src to dest with SQLite's online backup API, in one step inside
 * one read transaction: the copy is the state of one commit, whatever the daemon writes
 * meanwhile. Written to a temporary file beside dest, checked (PRAGMA quick_check),
 * synced, then renamed over dest, so dest is either the old file or a whole copy.
 * Returns 0 and sets *pages to the pages copied, or -errno with *errmsg set.
 */
int db_backup_file(const char *src, const char *dest, int *pages, char **errmsg);

/*
 * PRAGMA integrity_check on the file at path, opened read only (never created).
 * Returns 0 when SQLite says "ok"; -EBADMSG with *errmsg = its first findings when not;
 * another -errno with *errmsg when the file cannot be read as a database.
 */
int db_integrity_check(const char *path, char **errmsg);

/* What one retention batch deleted. */
typedef struct {
    unsigned scans;
    unsigned events;
} db_retention_t;

#define DB_RETENTION_BATCH 500    /* rows of each table per batch */

/*
 * One retention batch in its own transaction: at most `limit` scans recorded before
 * cutoff_ms (not of an open receipt) and at most `limit` events stored before
 * cutoff_ms with seq < keep_seq (the lowest acknowledgement of a configured
 * subscriber + 1, or UINT64_MAX), never the newest event. Receipts are never deleted.
 * The schema lets these deletes through only while the batch holds its gate
 * (migration 5). Call it outside a transaction. Returns 0 and fills *out (both 0:
 * nothing left to delete), or a negative errno (-EBUSY: try later).
 */
int db_retention_batch(db_t *db, int64_t cutoff_ms, uint64_t keep_seq, unsigned limit,
                       db_retention_t *out);

/*
 * Subscriber `name` has durably taken every event up to seq: store it (an
 * acknowledgement never goes back: a lower seq leaves the stored one). -ERANGE when
 * seq is past the last stored event. Outside a transaction. Returns 0 or -errno.
 */
int db_subscriber_ack(db_t *db, const char *name, uint64_t seq, int64_t now_ms);

/* The seq subscriber `name` acknowledged, 0 when it never did. Returns 0 or -errno. */
int db_subscriber_acked(db_t *db, const char *name, uint64_t *seq);

#endif
