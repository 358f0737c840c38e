/*
 * station: one receiving position at the dock and its receipt workflow (spec station,
 * "What a scan means" and "Receipt workflow"; docs/station.md for the decisions the
 * contract leaves open).
 *
 * A station turns each scan into exactly one database transaction: the scan row
 * (accepted or rejected, with its raw bytes), the state change it causes (a receipt
 * opened, refused, cancelled or completed; the checklist), and the events that report
 * them (daemon/outbox.h) are committed together or not at all. The caller publishes
 * the outbox after the call returned 0 and logs the error once otherwise.
 *
 * The open receipt lives in the database (its checklist as JSON in the receipt row,
 * rewritten by every scan that changes it), so a station created after a restart continues
 * the receipt where it was left.
 *
 * Policies are looked up through the daemon's current policyset at each use, never
 * kept: a SIGHUP reload that swaps the set takes effect at the next scan.
 *
 * Everything runs on the event-loop thread.
 */
#ifndef RMAD_STATION_H
#define RMAD_STATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "daemon/outbox.h"
#include "policy/policyset.h"
#include "db/db.h"
#include "drivers/scan.h"

typedef struct station station_t;

/* Longest text taken as a serial number: the RMA's expected_serial cap. */
#define STATION_SERIAL_MAX DB_RMA_TEXT_MAX

/* Scanners remembered for double reads; the least recently seen is forgotten first. */
#define STATION_READS_MAX 16

/*
 * Create the station `cfg` of daemon configuration `daemon_cfg` (rma_pattern,
 * double_read_ms), storing into `db` and deciding with the set *policies_ref (the
 * daemon's pointer to its current set, read at each use; it may be NULL while no
 * set is loaded: completions are then held for a person). db and policies_ref are
 * borrowed and must outlive the station.
 *
 * Resumes the station's open receipt, if the database has one, with its checklist.
 * Returns the station, or NULL with *errmsg set to a malloc'd line (caller frees;
 * errmsg may be NULL): a bad rma_pattern, a database error, or an open receipt whose
 * stored checklist cannot be read.
 */
station_t *station_new(const config_station_t *cfg, const config_t *daemon_cfg, db_t *db,
                       policyset_t **policies_ref, char **errmsg);

/* Free the station (its open receipt stays open in the database). NULL is fine;
 * clears *st. */
void station_destroy(station_t **st);

const char *station_name(const station_t *st);

/*
 * Whether the vendor's policy refuses this RMA as it stands, before any inspection
 * (an expired RMA: EverFocus, valid 30 days), on today's date: 1 with *why malloc'd
 * ("text (rule)"), 0 when not or when the vendor has no policy, or a negative errno.
 * What the station asks when an RMA is scanned; rmactl rma show/list call it
 * "expired".
 */
int station_rma_refusal(policyset_t *policies, const db_rma_t *rma, char **why);

/* What one scan did. */
typedef enum {
    STATION_SCAN_ACCEPTED,     /* stored, accepted; state may have changed */
    STATION_SCAN_REJECTED,     /* stored, rejected with `reason`; nothing else changed */
    STATION_SCAN_DOUBLE_READ,  /* the same barcode again within double_read_ms: not stored */
} station_scan_t;

/* The receipt transition a scan caused, if any. */
typedef enum {
    STATION_RECEIPT_NONE,
    STATION_RECEIPT_OPENED,     /* receipt.opened */
    STATION_RECEIPT_REFUSED,    /* receipt.refused: `reason`; a refusal label is due */
    STATION_RECEIPT_CANCELLED,  /* receipt.cancelled */
    STATION_RECEIPT_COMPLETED,  /* inspection.completed: `disposition`; a label is due */
} station_receipt_t;

typedef struct {
    station_scan_t scan;
    station_receipt_t receipt;
    int64_t receipt_id;       /* the receipt the scan belongs to / changed; 0 none.
                                 For CMD-REPRINT: the station's last labelled receipt */
    const char *kind;         /* classification stored with the scan: "command", "rma",
                                 "gs1", "serial", "accessory", "text", "invalid" */
    const char *reason;       /* rejection or refusal reason; NULL otherwise */
    const char *disposition;  /* STATION_RECEIPT_COMPLETED: the policy's disposition */
    bool serial_mismatch;     /* the serial just scanned is not the RMA's expected one */
    bool reprint_requested;   /* CMD-REPRINT accepted: receipt_id's label is queued again */
    bool label_queued;        /* a label was queued (print_jobs) in this transaction: a
                                 refusal, a completion or a reprint at a station with a
                                 printer; the daemon's spooler takes it from there */
    /*
     * The answer for the worker at the scanner (docs/station.md, "Replies"): what the
     * scan did, the receipt open after it and what to scan next, as one line without
     * the status word: "a receipt is open (RMA-5001) [receipt 1 RMA-5001]: finish it
     * (CMD-DONE) or cancel it (CMD-CANCEL), then scan RMA-5002 again". Always set.
     */
    const char *reply;
    const char *next;         /* the part after "]: ", also in the scan event */
    const char *rma;          /* RMA of receipt_id's receipt; NULL for none or CMD-NORMA */
    int64_t switched_from;    /* a second RMA switched receipts: the one it cancelled */
    const char *switched_from_rma;  /* and its RMA (NULL for CMD-NORMA) */
} station_outcome_t;

/*
 * Apply one decoded scan (scanner id and t_ms set by the driver; a scan without a
 * scanner id is stored as scanner "unknown") at wall-clock time now_ms (Unix ms, the
 * time stored and put into events). Classification (spec station, in this order):
 * command barcode, RMA number (rma_pattern), GS1 element string, then serial number
 * or accessory part number. Effects are described in docs/station.md.
 *
 * Everything happens in one transaction: db_begin, the receipt change, the scan row,
 * the events appended to `ob` (which must hold no pending events), db_commit.
 * Returns 0 once committed (the caller then flushes ob; *out says what happened), or
 * a negative errno when the database (or memory) failed: the transaction is rolled
 * back, ob discarded, the station unchanged, *out untouched, and db_errmsg() says why
 * for database errors. -EINVAL, before anything is done, for a scan without text,
 * now_ms outside 1..EVENT_TIME_MAX_MS, or an outbox with events pending.
 *
 * A double read (same scanner, same symbology and text, scan->t_ms within
 * double_read_ms of the read that was stored) stores and publishes nothing and
 * returns 0 with STATION_SCAN_DOUBLE_READ (and a reply saying so).
 *
 * out's strings stay valid until the next call on this station.
 */
int station_apply_scan(station_t *st, const scan_t *scan, int64_t now_ms, outbox_t *ob,
                       station_outcome_t *out);

/*
 * Store a read the driver rejected (scan_decode failed: too long, control bytes,
 * invalid UTF-8...): a scan row with accepted = 0, kind "invalid", the raw bytes and
 * the driver's reason, and a scan.rejected event, in one transaction. The open
 * receipt, if any, is named but not changed. Same returns as station_apply_scan; *out
 * (may be NULL) is filled like station_apply_scan's, REJECTED with the reply.
 */
int station_record_rejected(station_t *st, const char *scanner_id, const void *raw,
                            size_t raw_len, const char *reason, int64_t now_ms, outbox_t *ob,
                            station_outcome_t *out);

/*
 * Group commit (daemon/intake.h): a read written inside the caller's open transaction
 * (a savepoint of a batch that holds other stations' reads), its effects on the
 * station held back until the caller knows the batch's fate:
 *
 *   station_stage_scan / station_stage_rejected write the scan row, the receipt change
 *   and their events into ob, in the open transaction. 0: staged (one read per station
 *   at a time); 1 (stage_scan only): a double read, nothing written or staged, *out set;
 *   a negative errno: nothing staged, and the caller rolls back what was written (its
 *   savepoint). -EINVAL as station_apply_scan, or when a read is staged already or no
 *   transaction is open.
 *
 *   station_end_staged(st, rc, out): rc 0 once the transaction committed: the station
 *   takes the new state and *out (may be NULL) says what the read did, as
 *   station_apply_scan's does. rc < 0 when it was rolled back: the station is as it
 *   was before the read. No-op without a staged read.
 *
 * The scan passed to station_stage_scan must stay valid until station_end_staged.
 * station_apply_scan and station_record_rejected are the same in a transaction of their own.
 */
int station_stage_scan(station_t *st, const scan_t *scan, int64_t now_ms, outbox_t *ob,
                       station_outcome_t *out);
int station_stage_rejected(station_t *st, const char *scanner_id, const void *raw,
                           size_t raw_len, const char *reason, int64_t now_ms, outbox_t *ob);
void station_end_staged(station_t *st, int rc, station_outcome_t *out);
bool station_has_staged(const station_t *st);

/*
 * The reply for a scan whose transaction failed (station_apply_scan or
 * station_record_rejected returned err, a negative errno; -ENOBUFS for a scan turned
 * away because too many wait): REJECT it, as nothing changed, "not stored: CAUSE"
 * (the disk is full, the database is read-only, busy...), naming the open receipt,
 * "scan it again". Valid until the next call on the station.
 */
const char *station_unstored_reply(station_t *st, int err);

/* For `rmactl status`. Strings are the station's, valid until its next call. */
typedef struct {
    const char *name;
    int64_t receipt_id;       /* open receipt, 0 when none */
    const char *rma;          /* its RMA number; NULL when none or received with CMD-NORMA */
    const char *serial;       /* its serial as read; NULL until read */
    uint64_t scans;           /* scan rows stored since the station was created */
    uint64_t rejected;        /* of which rejected */
    uint64_t double_reads;    /* reads not stored as double reads */
} station_status_t;

void station_status(const station_t *st, station_status_t *out);

#endif
