/*
 * printer: every conversation rmad has with CUPS (printing the disposition label of a
 * completed receipt at the station's queue: ZPL as raw jobs to thermal printers, PDF to
 * office printers), and the health of those queues.
 *
 * libcups' client API is synchronous HTTP/IPP: a request blocks until cupsd answers,
 * and a cupsd that is slow, restarting or hung would stall the daemon's event loop
 * with it. So a printer_t owns ONE worker thread that makes every CUPS call and also
 * renders the documents (cairo, fontconfig and zint take tens of milliseconds a label,
 * which the loop must not spend); the loop thread only queues requests (a
 * mutex-guarded list) and receives results through an eventfd registered with the
 * loop, so the callback runs on the loop thread like every other event.
 *
 * The server is the one libcups would use (CUPS_SERVER, then client.conf), read once by
 * printer_new(): tests point CUPS_SERVER at their private cupsd (ROOT/sock).
 *
 * Jobs have an identity: the caller names every job (printer_job_name: unique per label
 * and attempt), and cupsd gives each a job-uuid. A job is followed by id AND identity:
 * cupsd that crashed or was restarted may lose a job and later hand its id to someone
 * else's; such a job is reported LOST, never COMPLETED. A job submitted by an earlier
 * process whose id was never recorded is found again by its name (printer_find).
 *
 * What happens to one request (tag = the caller's id for it, e.g. a print-queue row):
 *
 *   printer_submit: the document is rendered, the queue is checked (it exists, it is
 *     not stopped, reports no error such as media-empty, it accepts jobs: a job sent to
 *     a printer that cannot print would wait there invisibly), then the job is created (Create-Job, with the caller's job name) and
 *     its document sent, and SUBMITTED says which CUPS job it is. Any failure before
 *     that is one FAILED event.
 *   printer_find: the queue's jobs are searched for the job name. Found: SUBMITTED,
 *     then followed. Not found: FAILED with `lost` set (it never reached cupsd, or
 *     cupsd lost it: sending it now prints it once). A job that was created but never
 *     got its document is cancelled and reported the same way.
 *   after SUBMITTED (or printer_follow): the worker polls the job's state (every
 *     250 ms while it changes, slowing to every 2 s while it does not) until it is
 *     completed (COMPLETED), aborted (FAILED, retry), cancelled (FAILED, no retry) or
 *     gone or not ours any more (FAILED, lost). A pending, held, processing or stopped
 *     job is followed on, however long (its printer was stopped after submission: the
 *     job prints when it is started again, and sending it again would print it twice).
 *     A cupsd that is unreachable while jobs are followed or searched is retried; that
 *     never fails a submitted job.
 *
 * Each request ends with exactly one COMPLETED or FAILED event, preceded by SUBMITTED
 * when a job was handed over or found. The final event's memory is allocated with the
 * request, so it cannot be lost to a failed allocation on the worker. The module never
 * resubmits anything: retrying is the caller's decision, guided by `retry` and `lost`.
 *
 * Queues given to printer_watch are asked for their state (printer-state,
 * printer-state-reasons, printer-state-message, printer-is-accepting-jobs) every few
 * seconds, and a STATE event reports each change. Library code: it never logs and
 * never exits.
 */
#ifndef RMAD_PRINTER_H
#define RMAD_PRINTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"

/* Document formats (the values of libcups' CUPS_FORMAT_RAW and of PDF). */
#define PRINTER_FORMAT_RAW "application/vnd.cups-raw" /* ZPL, sent to the printer as is */
#define PRINTER_FORMAT_PDF "application/pdf"

/*
 * Requests accepted but not yet finished (queued, being submitted or searched, or
 * followed) at most; printer_submit, printer_find and printer_follow answer -EAGAIN
 * beyond it. A bound on memory when a printer stays stopped while labels keep coming;
 * the caller's queue is durable and tries again later.
 */
#define PRINTER_MAX_REQUESTS 1024

/* Longest job name printer_job_name writes, with its NUL. */
#define PRINTER_JOB_NAME_MAX 64
/* A job-uuid ("urn:uuid:" and 36 characters), with its NUL. */
#define PRINTER_UUID_MAX 64

typedef struct printer printer_t;

typedef enum {
    /* The job was created and its document sent (or found): job_id, job_uuid. */
    PRINTER_EV_SUBMITTED,
    /* The job printed (CUPS job-state completed). */
    PRINTER_EV_COMPLETED,
    /* The request ended without printing: see retry, lost and error. */
    PRINTER_EV_FAILED,
    /* A watched queue's health changed: see health. Not tied to a request (tag 0). */
    PRINTER_EV_STATE,
} printer_ev_kind_t;

/* A queue's health as the STATE event reports it. */
typedef enum {
    PRINTER_READY,          /* idle or printing, accepting jobs */
    PRINTER_STOPPED,        /* printer-state stopped: jobs wait (paused, ...) */
    PRINTER_FAULT,          /* the printer reports an error (a reason ending in -error:
                               media empty, door open, ...): jobs wait until it is fixed */
    PRINTER_REJECTING,      /* not accepting jobs (cupsreject) */
    PRINTER_MISSING,        /* cupsd has no such queue */
    PRINTER_UNREACHABLE,    /* cupsd did not answer */
} printer_condition_t;

typedef struct {
    printer_condition_t condition;
    /*
     * printer-state-reasons as plain words, comma-separated ("media empty, paused"),
     * "" when there are none. Reasons CUPS keeps for itself (cups-*-warning) are left
     * out; the severity suffixes (-error, -warning, -report) are dropped.
     */
    const char *reasons;
    /* printer-state-message, or why cupsd could not be asked; "" when none. */
    const char *message;
} printer_health_t;

/* What the callback receives. The strings are borrowed: valid until it returns. */
typedef struct {
    printer_ev_kind_t kind;
    uint64_t tag;       /* the caller's id for the request */
    const char *queue;  /* the CUPS destination name */
    /*
     * The CUPS job id once there is one: SUBMITTED, COMPLETED, and FAILED of a job
     * that was submitted or followed. Also set on a FAILED without SUBMITTED when the
     * job was created but its document could not be sent; that job was cancelled.
     * 0 otherwise.
     */
    int job_id;
    /* SUBMITTED: the job's job-uuid ("" when cupsd did not say). "" otherwise. */
    const char *job_uuid;
    /*
     * FAILED: whether trying again later may succeed. True when cupsd is not
     * reachable, the queue does not exist (yet), is stopped or does not accept jobs,
     * the job was aborted (e.g. the printer failed), or it was lost. False when it
     * will not: the job was cancelled (an operator decided), the document could not
     * be made, or CUPS rejected the request itself (e.g. a format the queue cannot
     * print).
     */
    bool retry;
    /*
     * FAILED: the job is not in CUPS, so nothing of it will print: printer_find did
     * not find it, a followed job is gone from cupsd, or its id now names another job
     * (cupsd lost ours). Sending the label again prints it once.
     */
    bool lost;
    /*
     * FAILED: one line for people and the label.failed event, e.g.
     * "no CUPS queue 'zebra'", "CUPS queue 'zebra' is stopped: media empty",
     * "CUPS not reachable at /run/cups/cups.sock: Connection refused". NULL otherwise.
     */
    const char *error;
    /* STATE (and FAILED when the queue was not ready): the queue's health. */
    printer_health_t health;
} printer_event_t;

/*
 * Called on the loop thread, once per event, in the order they happened for each tag.
 * It may call every function here but printer_destroy.
 */
typedef void (*printer_event_fn)(const printer_event_t *ev, void *data);

/*
 * Makes a document, on the worker thread: set *out (malloc'd, *len bytes) and return
 * 0, or return a negative errno with *err (malloc'd, may stay NULL) saying why;
 * -EINVAL means the document can never be made (a final failure), anything else may
 * pass. Must not touch anything the loop thread uses.
 */
typedef int (*printer_render_fn)(void *doc, uint8_t **out, size_t *len, char **err);
typedef void (*printer_free_fn)(void *doc);

/*
 * Start the worker thread (with every signal blocked: they belong to the loop's
 * signalfd) and register its result eventfd with loop. Reads the CUPS server to use
 * (CUPS_SERVER, client.conf) before it returns; connects only when there is work.
 * Returns the printer, or NULL with errno set (EINVAL for a NULL loop or fn, ENOMEM,
 * or what eventfd, loop_add_fd or pthread_create failed with).
 *
 * For tests of the window between handing a job to cupsd and the caller recording it:
 * when the environment variable RMAD_TEST_PRINT_HOLD names a file, the worker waits
 * after sending each job, before reporting SUBMITTED, for as long as that file exists.
 */
printer_t *printer_new(loop_t *loop, printer_event_fn fn, void *data);

/*
 * The job name for attempt `attempt` of label `label`: "rmad-label-<label>-<attempt>",
 * written to name (PRINTER_JOB_NAME_MAX bytes). Unique per label and attempt, which is
 * what printer_find looks for after a restart, and free of spaces: cupsd 2.4.2-3+deb12u10
 * (Debian 12's security update of 2026) crashes on Create-Job + Send-Document when the
 * job-name or document-name has a space. Once every supported cupsd is fixed, the name
 * may say more, but it must stay unique.
 */
void printer_job_name(char *name, int64_t label, int attempt);

/*
 * Queue one print job; everything is copied, nothing is sent from inside this call.
 * queue: the CUPS destination name. format: PRINTER_FORMAT_RAW for ZPL,
 * PRINTER_FORMAT_PDF, or any MIME type the queue accepts. job_name: a name as
 * printer_job_name makes (also the document's name). data, len: the document, at
 * least one byte. Returns 0 (the outcome comes as events for tag), -EINVAL for a
 * missing argument, a job name that is empty, too long or has a space or control
 * character, or a queue name CUPS cannot have (empty, longer than 127 bytes, or with a
 * space, control character, '/', '\\', '?', '\'', '"' or '#'), -EAGAIN when
 * PRINTER_MAX_REQUESTS are unfinished, -ENOMEM.
 */
int printer_submit(printer_t *p, uint64_t tag, const char *queue, const char *format,
                   const char *job_name, const uint8_t *data, size_t len);

/*
 * The same, with the document made on the worker by render(doc, ...). doc is taken
 * in every case: free_doc(doc) runs on the worker once it is done with, or in this
 * call when it fails (free_doc may be NULL).
 */
int printer_submit_render(printer_t *p, uint64_t tag, const char *queue, const char *format,
                          const char *job_name, printer_render_fn render, void *doc,
                          printer_free_fn free_doc);

/*
 * Find the job named job_name in queue (submitted by an earlier process, which did
 * not live to record its id) and follow it: SUBMITTED then COMPLETED or FAILED; or
 * FAILED with lost when cupsd has no such job. Returns as printer_submit.
 */
int printer_find(printer_t *p, uint64_t tag, const char *queue, const char *job_name);

/*
 * Follow a job submitted before (by an earlier printer_t, e.g. before the daemon
 * restarted) without submitting anything: the events are those after SUBMITTED
 * (COMPLETED or FAILED, for tag and queue). job_uuid and job_name (either may be NULL
 * or "") are the job's identity: a job under that id whose uuid or name differs is
 * not this one (FAILED, lost). The caller follows each job once.
 * Returns 0, -EINVAL (bad queue or job name, job_id <= 0), -EAGAIN, -ENOMEM.
 */
int printer_follow(printer_t *p, uint64_t tag, const char *queue, int job_id,
                   const char *job_uuid, const char *job_name);

/*
 * Watch queue's health from now on (a STATE event for its first reading, then one for
 * each change). Watching a queue twice is watching it once. Returns 0, -EINVAL,
 * -ENOMEM.
 */
int printer_watch(printer_t *p, const char *queue);

/* "ready", "stopped", "needs attention", "rejecting jobs", "missing", "unreachable". */
const char *printer_condition_name(printer_condition_t c);

/*
 * printer-state-reasons keywords (comma-separated, as IPP has them) as the plain words
 * printer_health_t carries: "media-empty-error,paused" -> "media empty, paused".
 * Returns a malloc'd string ("" for none), or NULL when out of memory.
 */
char *printer_reasons_words(const char *keywords);

/*
 * Stop and join the worker, then unregister from the loop (which must still exist)
 * and free everything. Unfinished requests are dropped without events: the caller's
 * queue is durable and knows which jobs it submitted. A CUPS call in progress is
 * abandoned within about a second. Accepts NULL and clears the caller's pointer.
 */
void printer_destroy(printer_t **p);

#endif
