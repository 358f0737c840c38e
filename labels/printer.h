/*
 * printer: every conversation rmad has with CUPS (printing the disposition label of a
 * completed receipt at the station's queue: ZPL as raw jobs to thermal printers, PDF to
 * office printers).
 *
 * libcups' client API is synchronous HTTP/IPP: a request blocks until cupsd answers,
 * and a cupsd that is slow, restarting or hung would stall the daemon's event loop
 * with it. So a printer_t owns ONE worker thread that makes every CUPS call; the loop
 * thread only queues requests (a mutex-guarded list) and receives results through an
 * eventfd registered with the loop, so the callback runs on the loop thread like every
 * other event. Nothing here ever blocks the loop on the network.
 *
 * The server is the one libcups would use (CUPS_SERVER, then client.conf), read once by
 * printer_new(): tests point CUPS_SERVER at their private cupsd (ROOT/sock).
 *
 * What happens to one request (tag = the caller's id for it, e.g. a print-queue row):
 *
 *   printer_submit: the queue is checked first (it exists, it is not stopped, it
 *     accepts jobs), because a job sent to a stopped printer would wait there
 *     invisibly. Then the job is created and its document sent, and SUBMITTED says
 *     which CUPS job it is. Any failure before that is one FAILED event.
 *   after SUBMITTED (or printer_follow): the worker polls the job's state (every
 *     250 ms while it changes, slowing to every 2 s while it does not) until it is
 *     completed (COMPLETED), aborted (FAILED, retry) or cancelled (FAILED, no retry).
 *     A pending, held, processing or stopped job is simply followed on, however long
 *     (its printer was stopped after submission: the job prints when it is started
 *     again, and sending it again would print it twice). A cupsd that is unreachable
 *     while jobs are followed is retried; it never fails a submitted job.
 *
 * Each request ends with exactly one COMPLETED or FAILED event, preceded by SUBMITTED
 * when a job was handed over. The module never resubmits anything: retrying is the
 * caller's decision, guided by `retry`. Library code: it never logs and never exits.
 */
#ifndef RMAD_PRINTER_H
#define RMAD_PRINTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/loop.h"

/* Document formats (the values of libcups' CUPS_FORMAT_RAW and of PDF). */
#define PRINTER_FORMAT_RAW "application/vnd.cups-raw" /* ZPL, sent to the printer as is */
#define PRINTER_FORMAT_PDF "application/pdf"

/*
 * Requests accepted but not yet finished (queued, being submitted, or followed) at
 * most; printer_submit and printer_follow answer -EAGAIN beyond it. A bound on memory
 * when a printer stays stopped while labels keep coming; the caller's queue is
 * durable and tries again later.
 */
#define PRINTER_MAX_REQUESTS 1024

typedef struct printer printer_t;

typedef enum {
    /* The job was created and its document sent: job_id is its CUPS job id. */
    PRINTER_EV_SUBMITTED,
    /* The job printed (CUPS job-state completed). */
    PRINTER_EV_COMPLETED,
    /* The request ended without printing: see retry and error. */
    PRINTER_EV_FAILED,
} printer_ev_kind_t;

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
    /*
     * FAILED: whether trying again later may succeed. True when cupsd is not
     * reachable, the queue does not exist (yet), is stopped or does not accept jobs,
     * or the job was aborted (e.g. the printer failed). False when it will not:
     * the job was cancelled (an operator decided), CUPS rejected the request itself
     * (e.g. a document format the queue cannot print), or cupsd does not know a
     * followed job id (gone from its history: whether it printed is unknown).
     */
    bool retry;
    /*
     * FAILED: one line for people and the label.failed event, e.g.
     * "no CUPS queue 'zebra'", "CUPS queue 'zebra' is stopped: out of labels",
     * "CUPS not reachable at /run/cups/cups.sock: Connection refused". NULL otherwise.
     */
    const char *error;
} printer_event_t;

/*
 * Called on the loop thread, once per event, in the order they happened for each tag.
 * It may call printer_submit and printer_follow, but must not destroy the printer
 * that is calling it.
 */
typedef void (*printer_event_fn)(const printer_event_t *ev, void *data);

/*
 * Start the worker thread (with every signal blocked: they belong to the loop's
 * signalfd) and register its result eventfd with loop. Reads the CUPS server to use
 * (CUPS_SERVER, client.conf) before it returns; connects only when there is work.
 * Returns the printer, or NULL with errno set (EINVAL for a NULL loop or fn, ENOMEM,
 * or what eventfd, loop_add_fd or pthread_create failed with).
 */
printer_t *printer_new(loop_t *loop, printer_event_fn fn, void *data);

/*
 * Queue one print job; everything is copied, nothing is sent from inside this call.
 * queue: the CUPS destination name. format: PRINTER_FORMAT_RAW for ZPL,
 * PRINTER_FORMAT_PDF, or any MIME type the queue accepts. title: the job name shown
 * by lpstat (NULL: "rmad label"). data, len: the document, at least one byte.
 * Returns 0 (the outcome comes as events for tag), -EINVAL for a missing argument or
 * a queue name CUPS cannot have (empty, longer than 127 bytes, or with a space,
 * control character, '/', '\\', '?', '\'', '"' or '#'), -EAGAIN when
 * PRINTER_MAX_REQUESTS are unfinished, -ENOMEM.
 */
int printer_submit(printer_t *p, uint64_t tag, const char *queue, const char *format,
                   const char *title, const uint8_t *data, size_t len);

/*
 * Follow a job submitted before (by an earlier printer_t, e.g. before the daemon
 * restarted) without submitting anything: the events are those after SUBMITTED
 * (COMPLETED or FAILED, for tag and queue). The caller follows each job once.
 * Returns 0, -EINVAL (bad queue name, job_id <= 0), -EAGAIN, -ENOMEM.
 */
int printer_follow(printer_t *p, uint64_t tag, const char *queue, int job_id);

/*
 * Stop and join the worker, then unregister from the loop (which must still exist)
 * and free everything. Unfinished requests are dropped without events: the caller's
 * queue is durable and knows which jobs it submitted. A CUPS call in progress is
 * abandoned within about a second. Accepts NULL and clears the caller's pointer.
 */
void printer_destroy(printer_t **p);

#endif
