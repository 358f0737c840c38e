/*
 * spool: moves the print queue (db print_jobs) through CUPS, so that every label that
 * was queued prints exactly once, across printer faults, cupsd crashes and daemon
 * restarts.
 *
 * The queue is the database, and each label's row is a state machine stored before
 * every step that could print:
 *
 *   queued --(stored: submitting, job name)--> handed to the printer worker
 *   submitting --(CUPS job id and uuid)--> submitted --(completed)--> printed
 *   any unfinished --(attempt failed)--> queued again, with the error
 *   --(cancelled in CUPS, label cannot be made)--> failed;  queued --> cancelled (rmactl)
 *
 * A label is queued by the transaction that refused or completed its receipt
 * (daemon/station.c) or by a reprint. The spooler loads the receipt's label from the
 * database, marks the row `submitting` under a job name unique to this label and
 * attempt, and only then hands the label to the worker (labels/printer.h), which
 * renders it in the station's format and sends it. A row found `submitting` when no
 * worker has it (the daemon stopped, or the write of the CUPS job id failed) is looked
 * up in CUPS by that name, never sent again blindly; a `submitted` row is followed by
 * its job id and uuid, so a job that cupsd lost is retried and a job that is not
 * rmad's is never taken for a printed label. Every answer is recorded in a transaction
 * of its own, with its event: `label.printed` (job id), `label.failed`.
 *
 * Retries back off per printer from print_retry_ms, doubling up to print_retry_max_ms,
 * on the monotonic clock (a clock stepped back at boot cannot stall them); the rows
 * keep attempts, not due times, so after a restart every waiting label is tried at
 * once. Labels of one printer go out in queue order, one submission at a time; while
 * a printer fails, only its oldest label is tried. A failing printer publishes one
 * `label.failed` per change of what fails and a reminder at most every 15 minutes,
 * not one per attempt; every attempt is still recorded in its row.
 *
 * Every station printer's health (printer-state, reasons, message) is watched: a
 * `printer.state` event on each change, and spool_printer for `rmactl status`.
 *
 * Everything runs on the loop's thread; the spooler never blocks on CUPS.
 */
#ifndef RMAD_SPOOL_H
#define RMAD_SPOOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/loop.h"
#include "daemon/txn.h"
#include "db/db.h"

typedef struct spool spool_t;

typedef enum {
    SPOOL_PRINTED,    /* CUPS completed the job: label.printed was committed */
    SPOOL_FAILED,     /* an attempt failed and label.failed was committed */
    SPOOL_PRINTER,    /* a printer's health changed: printer.state was committed */
    SPOOL_CANCELLED,  /* a label was given up: label.cancelled was committed */
    SPOOL_ERROR,      /* the spooler could not record something (database): error says
                         what; the row is retried from the database later */
} spool_note_kind_t;

/* What the daemon logs (and, after a commit, publishes). Borrowed for the call. */
typedef struct {
    spool_note_kind_t kind;
    int64_t label;          /* print_jobs id; 0 for PRINTER */
    int64_t receipt;
    const char *station;    /* NULL for PRINTER */
    const char *printer;
    int cups_job;           /* PRINTED, and FAILED after submission; else 0 */
    const char *error;      /* FAILED, ERROR; PRINTER: the state in words */
    bool final;             /* FAILED: not retried */
    int64_t retry_in_ms;    /* FAILED and not final: the next attempt's delay */
} spool_note_t;

/*
 * Called after each commit (its events are published by then, daemon/txn.h) and for
 * errors. It may log and call spool_kick, but not destroy the spooler.
 */
typedef void (*spool_note_fn)(const spool_note_t *note, void *data);

/*
 * New spooler for the daemon's db and unit of work (borrowed: they outlive it), with the
 * stations' label settings and retry delays of cfg (borrowed too). It starts its
 * printer worker, watches every station's printer, follows or looks up every job the
 * database says went to CUPS, and schedules every queued one. Returns NULL with
 * *errmsg set (malloc'd) on failure.
 */
spool_t *spool_new(loop_t *loop, db_t *db, txn_t *txn, const config_t *cfg,
                   spool_note_fn fn, void *data, char **errmsg);

/* Stop the worker (jobs in flight stay in the database for the next start). NULL is
 * fine; clears *sp. */
void spool_destroy(spool_t **sp);

/* Labels were queued: look at the queue on the next loop iteration. */
void spool_kick(spool_t *sp);

/*
 * Queue receipt `receipt`'s label again at its station's printer (rmactl reprint), in
 * a transaction of its own, and kick. Returns 0 and sets *label (the print_jobs id),
 * or -ENOENT (no such receipt), -EINVAL (the receipt has no label: open or cancelled),
 * -ENODEV (its station is not configured or has no printer), or a database error;
 * *errmsg (malloc'd) says which.
 */
int spool_reprint(spool_t *sp, int64_t receipt, int64_t *label, char **errmsg);

/*
 * Give up waiting label `label` (rmactl labels cancel): it becomes cancelled, with a
 * label.cancelled event, in one transaction. Returns 0, or -ENOENT (no such label),
 * -EPERM (finished already), -EBUSY (at the printer or being handed to it: cancel the
 * CUPS job instead), or a database error; *errmsg (malloc'd) says which.
 */
int spool_cancel(spool_t *sp, int64_t label, char **errmsg);

/*
 * The labels of `which` (and of station, when not NULL), newest first, at most limit,
 * as a JSON array of {"label", "receipt", "station", "printer", "why", "state",
 * "attempts", "job", "error", "created", "done"} for rmactl labels. NULL when out of
 * memory or on a database error (*errmsg says which).
 */
json_t *spool_list(spool_t *sp, db_print_list_t which, const char *station, unsigned limit,
                   char **errmsg);

/* For `rmactl status`: labels waiting now. */
typedef struct {
    unsigned queued;        /* waiting for their printer (or being handed to it) */
    unsigned submitted;     /* CUPS has them (submitted) */
} spool_status_t;

int spool_status(spool_t *sp, spool_status_t *out);

/*
 * Printer `name`'s health as last read from CUPS, as {"state", "reasons", "message"}
 * ("state": ready, stopped, rejecting jobs, missing, unreachable, or "unknown" before
 * the first answer). NULL when out of memory.
 */
json_t *spool_printer(spool_t *sp, const char *name);

#endif
