/*
 * spool: moves the print queue (db print_jobs) through CUPS, so that every label that
 * was queued prints exactly once, across printer faults and daemon restarts.
 *
 * The queue is the database: a label is queued by the transaction that refused or
 * completed its receipt (daemon/station.c) or by a reprint. The spooler takes due
 * rows, renders each receipt's label (labels/receipt.h) in its station's format, and
 * hands it to the printer worker (labels/printer.h). It records every answer in a
 * transaction of its own, with its event: a CUPS job id (state submitted: the job is
 * followed and never submitted again, also after a restart), `label.printed` with the
 * job id, or `label.failed` with the error, after which the label waits
 * print_retry_ms, doubling up to print_retry_max_ms, and is tried again. A job
 * cancelled by an operator in CUPS is final (`label.failed`, "final": true);
 * `rmactl reprint` prints it again.
 *
 * Labels of one printer go out in queue order, one submission at a time; while a
 * printer fails, only its oldest label is tried (one `label.failed` per attempt, not
 * one per waiting label).
 *
 * Everything runs on the loop's thread; the spooler never blocks on CUPS.
 */
#ifndef RMAD_SPOOL_H
#define RMAD_SPOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/config.h"
#include "daemon/loop.h"
#include "daemon/outbox.h"
#include "db/db.h"

typedef struct spool spool_t;

typedef enum {
    SPOOL_PRINTED,    /* CUPS completed the job: label.printed was committed */
    SPOOL_FAILED,     /* an attempt failed: label.failed was committed */
    SPOOL_ERROR,      /* the spooler could not record something (database): error says
                         what; the row is retried from the database later */
} spool_note_kind_t;

/* What the daemon logs (and, after a commit, publishes). Borrowed for the call. */
typedef struct {
    spool_note_kind_t kind;
    int64_t label;          /* print_jobs id */
    int64_t receipt;
    const char *station;
    const char *printer;
    int cups_job;           /* PRINTED, and FAILED after submission; else 0 */
    const char *error;      /* FAILED, ERROR */
    bool final;             /* FAILED: not retried */
    int64_t retry_in_ms;    /* FAILED and not final: the next attempt's delay */
} spool_note_t;

/*
 * Called after each commit (the outbox then holds the events to publish) and for
 * errors. It may publish, log, and call spool_kick, but not destroy the spooler.
 */
typedef void (*spool_note_fn)(const spool_note_t *note, void *data);

/*
 * New spooler for the daemon's db and outbox (borrowed: they outlive it), with the
 * stations' label settings and retry delays of cfg (borrowed too). It starts its
 * printer worker, follows every job the database says was submitted, and schedules
 * every queued one. Returns NULL with *errmsg set (malloc'd) on failure.
 */
spool_t *spool_new(loop_t *loop, db_t *db, outbox_t *ob, const config_t *cfg,
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

/* For `rmactl status`: labels queued or submitted now. */
typedef struct {
    unsigned queued, submitted;
} spool_status_t;

int spool_status(spool_t *sp, spool_status_t *out);

#endif
