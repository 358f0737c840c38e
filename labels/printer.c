/*
 * CUPS printing on a worker thread (labels/printer.h).
 *
 * Threads: the loop thread calls printer_submit/printer_follow, which append to
 * `requests` under `mu` and signal `wake`. The worker takes requests one at a time,
 * makes every libcups call, keeps the jobs it follows in its own list, and appends
 * results to `results` under `mu`, then bumps the eventfd. The loop thread drains
 * `results` in results_ready() and calls the callback. Only the worker touches the
 * http_t, the followed list and the libcups per-thread state (cupsServer, errors).
 *
 * Only the non-deprecated CUPS 2.4 API: cupsGetNamedDest, cupsCopyDestInfo,
 * cupsCreateDestJob, cupsStartDestDocument, cupsWriteRequestData,
 * cupsFinishDestDocument, cupsCancelDestJob, and IPP Get-Printer-Attributes /
 * Get-Job-Attributes through cupsDoRequest, on one http_t of our own that is closed
 * after any error and opened again when next needed.
 */
#include "labels/printer.h"

#include <cups/cups.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/msgf.h"

/* Polling of followed jobs: fast while states change, slower while nothing does. */
#define POLL_MIN_MS 250
#define POLL_MAX_MS 2000
/* Longest wait for cupsd to accept a connection, and to answer one request. */
#define CONNECT_TIMEOUT_MS 10000
#define REQUEST_TIMEOUT_MS 30000
/* How often a blocked libcups call asks whether to go on waiting (destroy's latency). */
#define WAIT_SLICE_S 0.5
/* CUPS' own limit on destination names (lpadmin's validate_name). */
#define QUEUE_NAME_MAX 127
#define DEFAULT_TITLE "rmad label"

/* A request from the loop thread; a followed job once submitted. */
struct req {
    struct req *next;
    bool follow;      /* printer_follow: job_id is set, nothing to send */
    uint64_t tag;
    char *queue;
    char *format;     /* submit only */
    char *title;      /* submit only */
    uint8_t *doc;     /* submit only; freed once sent */
    size_t len;
    int job_id;
    int state;        /* last job-state seen while following, 0 before the first */
};

/* One event on its way to the loop thread. */
struct result {
    struct result *next;
    printer_ev_kind_t kind;
    uint64_t tag;
    char *queue;
    int job_id;
    bool retry;
    char *error;
};

struct printer {
    loop_t *loop;
    printer_event_fn fn;
    void *data;
    int efd;            /* eventfd: results are waiting */
    pthread_t thread;

    pthread_mutex_t mu;
    pthread_cond_t wake; /* CLOCK_MONOTONIC: requests, stop, started */
    /* Guarded by mu. */
    struct req *requests, **requests_tail;
    struct result *results, **results_tail;
    size_t unfinished;  /* requests without their COMPLETED/FAILED yet */
    bool stop;
    bool started;       /* the worker has read the server (printer_new waits for it) */
    int start_err;      /* errno of a worker that could not start */

    /* Read by libcups and the timeout callback on the worker while destroy sets them. */
    atomic_bool stopping;
    int cancel;         /* httpConnect2's cancel flag */

    /* Worker only. */
    char *server;       /* cupsServer() as read at start: a host, or a Unix socket path */
    int port;
    http_t *http;
    int64_t deadline_ms; /* of the CUPS call in progress (timeout callback) */
    struct req *followed;
    int poll_ms;
    int64_t next_poll_ms;
};

/* ---- small helpers ---------------------------------------------------------------- */

static void req_free(struct req *r)
{
    if (!r)
        return;
    free(r->queue);
    free(r->format);
    free(r->title);
    free(r->doc);
    free(r);
}

static void result_free(struct result *r)
{
    if (!r)
        return;
    free(r->queue);
    free(r->error);
    free(r);
}

/*
 * A CUPS name as lpadmin accepts it: 1..127 bytes, no space or control character and
 * none of / \ ? ' " # (which would also change the meaning of a printer URI).
 */
static bool queue_name_ok(const char *q)
{
    if (!q || !*q || strlen(q) > QUEUE_NAME_MAX)
        return false;
    for (const unsigned char *c = (const unsigned char *)q; *c; c++)
        if (*c <= ' ' || *c == 127 || strchr("/\\?'\"#", *c))
            return false;
    return true;
}

/*
 * Messages from cupsd, backends and operators end up in one log line and one event
 * field: control characters (a backend's "\n", a tab) become spaces, and trailing
 * blanks go. Works in place; returns s (NULL stays NULL).
 */
static char *one_line(char *s)
{
    if (!s)
        return NULL;
    for (unsigned char *c = (unsigned char *)s; *c; c++)
        if (*c < ' ' || *c == 127)
            *c = ' ';
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        s[--n] = '\0';
    return s;
}

/* libcups' last error as text; never NULL or empty. */
static const char *cups_error(void)
{
    const char *e = cupsLastErrorString();
    return e && *e ? e : ippErrorString(cupsLastError());
}

/*
 * Whether an IPP status may clear up by itself. Client errors (0x04xx) are CUPS saying
 * the request is wrong and stays wrong, except: the queue is missing (not added yet),
 * and permissions and timeouts (an administrator or a quieter server fixes those).
 * Server errors, libcups' own transport errors and everything else: try again.
 */
static bool status_retryable(ipp_status_t st)
{
    if (st < IPP_STATUS_ERROR_BAD_REQUEST || st >= IPP_STATUS_ERROR_INTERNAL)
        return true;
    switch (st) {
    case IPP_STATUS_ERROR_NOT_FOUND:
    case IPP_STATUS_ERROR_GONE:
    case IPP_STATUS_ERROR_FORBIDDEN:
    case IPP_STATUS_ERROR_NOT_AUTHENTICATED:
    case IPP_STATUS_ERROR_NOT_AUTHORIZED:
    case IPP_STATUS_ERROR_TIMEOUT:
        return true;
    default:
        return false;
    }
}

/* Successful statuses are 0x00xx ("successful-ok", "...-ignored-or-substituted", ...). */
static bool status_ok(ipp_status_t st)
{
    return st < IPP_STATUS_REDIRECTION_OTHER_SITE;
}

/* A client error is an answer from cupsd; anything else may have broken the connection. */
static bool status_is_answer(ipp_status_t st)
{
    return st >= IPP_STATUS_ERROR_BAD_REQUEST && st < IPP_STATUS_ERROR_INTERNAL;
}

/* ---- results: worker -> loop thread ----------------------------------------------- */

/*
 * Queue one event for the loop thread; takes error (malloc'd, may be NULL) and makes
 * it one line. A FAILED whose message could not be allocated says "out of memory"
 * (a static string stands in: the event must go out, because every request ends with
 * exactly one COMPLETED or FAILED and the caller's queue waits for it). Only when the
 * event itself cannot be allocated is it lost.
 */
static void emit(printer_t *p, printer_ev_kind_t kind, const struct req *r, bool retry,
                 char *error)
{
    struct result *res = calloc(1, sizeof(*res));
    if (res) {
        res->kind = kind;
        res->tag = r->tag;
        res->job_id = r->job_id;
        res->retry = retry;
        res->queue = strdup(r->queue);
        res->error = one_line(error);
    } else {
        free(error);
    }

    pthread_mutex_lock(&p->mu);
    if (res) {
        *p->results_tail = res;
        p->results_tail = &res->next;
    }
    if (kind != PRINTER_EV_SUBMITTED && p->unfinished > 0)
        p->unfinished--;
    pthread_mutex_unlock(&p->mu);
    /* Cannot fail short of a counter overflow (2^64 - 1 wake-ups). */
    (void)eventfd_write(p->efd, 1);
}

/*
 * Deliver what the worker reported, one event at a time, so a callback that submits
 * more work never waits for the worker. The lock is not held while the callback runs.
 */
static void results_ready(loop_t *loop, int fd, unsigned events, void *data)
{
    printer_t *p = data;
    eventfd_t n;
    (void)loop;
    (void)events;
    (void)eventfd_read(fd, &n); /* EAGAIN: a wake-up already consumed; drain anyway */
    for (;;) {
        pthread_mutex_lock(&p->mu);
        struct result *res = p->results;
        if (res) {
            p->results = res->next;
            if (!p->results)
                p->results_tail = &p->results;
        }
        pthread_mutex_unlock(&p->mu);
        if (!res)
            return;
        printer_event_t ev = {
            .kind = res->kind,
            .tag = res->tag,
            .queue = res->queue ? res->queue : "",
            .job_id = res->job_id,
            .retry = res->retry,
            .error = res->kind != PRINTER_EV_FAILED ? NULL
                     : res->error           ? res->error
                                            : "out of memory",
        };
        p->fn(&ev, p->data);
        result_free(res);
    }
}

/* ---- the connection ----------------------------------------------------------------- */

/*
 * libcups calls this whenever a blocked read or write has waited WAIT_SLICE_S: go on
 * waiting (1) until the request's deadline passes or printer_destroy asks the worker
 * to stop. Without it a blocking http_t waits for a silent server forever.
 */
static int keep_waiting(http_t *http, void *data)
{
    printer_t *p = data;
    (void)http;
    return !atomic_load(&p->stopping) && loop_now_ms() < p->deadline_ms;
}

/*
 * Why connecting to a Unix socket fails, as an errno (0: it connects now). libcups 2.4
 * reports every failed connect as "Host is down"; for cupsd's usual socket
 * (/run/cups/cups.sock) the real reason, "No such file or directory" (cupsd is not
 * running) or "Connection refused" (cupsd died), costs one connect() to find out.
 */
static int socket_errno(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path))
        return ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    int e = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : errno;
    (void)close(fd);
    return e;
}

/* "CUPS not reachable at SERVER: why", for a failed connect or a broken request. */
static char *unreachable(const printer_t *p)
{
    int e = p->server[0] == '/' ? socket_errno(p->server) : 0;
    if (e)
        return msgf("CUPS not reachable at %s: %s", p->server, strerror(e));
    if (p->server[0] == '/')
        return msgf("CUPS not reachable at %s: %s", p->server, cups_error());
    return msgf("CUPS not reachable at %s:%d: %s", p->server, p->port, cups_error());
}

static void conn_close(printer_t *p)
{
    if (p->http) {
        httpClose(p->http);
        p->http = NULL;
    }
}

/*
 * The open connection, or a new one. *fresh tells whether it was opened just now
 * (a reused one may have been closed by cupsd while idle). NULL with *err set when
 * cupsd cannot be reached.
 */
static http_t *conn_get(printer_t *p, bool *fresh, char **err)
{
    *fresh = false;
    if (p->http)
        return p->http;
    p->http = httpConnect2(p->server, p->port, NULL, AF_UNSPEC, cupsEncryption(), 1,
                           CONNECT_TIMEOUT_MS, &p->cancel);
    if (!p->http) {
        *err = unreachable(p);
        return NULL;
    }
    httpSetTimeout(p->http, WAIT_SLICE_S, keep_waiting, p);
    *fresh = true;
    return p->http;
}

/* Start the clock of one CUPS call (keep_waiting gives up after it). */
static void arm(printer_t *p)
{
    p->deadline_ms = loop_now_ms() + REQUEST_TIMEOUT_MS;
}

/*
 * One IPP request about uri (a printer or a job) on the connection, asking for attrs.
 * A reused connection that fails without an answer from cupsd is opened again and the
 * request sent once more: cupsd closes idle connections, and that is no reason to
 * fail a label. Returns the response (caller ippDelete()s) with *status; or NULL with
 * *status and *err set (*err NULL when cupsd answered with an error: the caller words
 * that one).
 */
static ipp_t *ipp_query(printer_t *p, ipp_op_t op, const char *uri_attr, const char *uri,
                        const char *const *attrs, int nattrs, ipp_status_t *status,
                        char **err)
{
    *err = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh;
        http_t *http = conn_get(p, &fresh, err);
        if (!http) {
            *status = IPP_STATUS_ERROR_SERVICE_UNAVAILABLE;
            return NULL;
        }
        ipp_t *rq = ippNewRequest(op);
        if (!rq) {
            *status = IPP_STATUS_ERROR_INTERNAL;
            *err = msgf("out of memory");
            return NULL;
        }
        ippAddString(rq, IPP_TAG_OPERATION, IPP_TAG_URI, uri_attr, NULL, uri);
        ippAddString(rq, IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name", NULL,
                     cupsUser());
        ippAddStrings(rq, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes",
                      nattrs, NULL, attrs);
        arm(p);
        ipp_t *resp = cupsDoRequest(http, rq, "/"); /* frees rq */
        *status = cupsLastError();
        if (resp && status_ok(*status))
            return resp;
        ippDelete(resp);
        if (status_is_answer(*status))
            return NULL;
        conn_close(p);
        if (fresh || atomic_load(&p->stopping))
            break;
    }
    *err = unreachable(p);
    return NULL;
}

/*
 * "ipp://localhost/printers/NAME": cupsd only looks at the path. uri has HTTP_MAX_URI
 * bytes, which a QUEUE_NAME_MAX name fits even percent-encoded. Returns 0 or -1.
 */
static int printer_uri(char *uri, const char *queue)
{
    return httpAssembleURIf(HTTP_URI_CODING_ALL, uri, HTTP_MAX_URI, "ipp", NULL,
                            "localhost", ippPort(), "/printers/%s", queue) <
                   HTTP_URI_STATUS_OK
               ? -1 : 0;
}

/*
 * Follow r from now on. The next pass comes within POLL_MIN_MS (never later than
 * already planned, so a stream of new jobs cannot postpone the others' polls).
 */
static void follow_add(printer_t *p, struct req *r)
{
    int64_t soon = loop_now_ms() + POLL_MIN_MS;
    if (!p->followed || p->next_poll_ms > soon)
        p->next_poll_ms = soon;
    p->poll_ms = POLL_MIN_MS;
    r->follow = true;
    r->next = p->followed;
    p->followed = r;
}

/* ---- submitting ------------------------------------------------------------------------ */

/*
 * Whether queue can take a job now: it exists, is not stopped, accepts jobs. Asked
 * with our own Get-Printer-Attributes, before cupsGetNamedDest, for two reasons: it
 * returns the printer-state-message worth showing, and cupsGetNamedDest, for a name
 * the server does not know, spends a second browsing the network (DNS-SD) and may come
 * back with some other machine's printer of that name. Returns 0, or -1 with *err and
 * *retry set.
 */
static int queue_ready(printer_t *p, const char *queue, char **err, bool *retry)
{
    static const char *const attrs[] = {
        "printer-state", "printer-state-message", "printer-state-reasons",
        "printer-is-accepting-jobs",
    };
    char uri[HTTP_MAX_URI];
    if (printer_uri(uri, queue) < 0) {
        *err = msgf("no CUPS queue '%s' (not a valid printer URI)", queue);
        *retry = false;
        return -1;
    }
    ipp_status_t st;
    ipp_t *resp = ipp_query(p, IPP_OP_GET_PRINTER_ATTRIBUTES, "printer-uri", uri, attrs,
                            (int)(sizeof(attrs) / sizeof(attrs[0])), &st, err);
    if (!resp) {
        *retry = status_retryable(st);
        if (!*err)
            *err = st == IPP_STATUS_ERROR_NOT_FOUND
                       ? msgf("no CUPS queue '%s'", queue)
                       : msgf("CUPS queue '%s': %s", queue, cups_error());
        return -1;
    }

    ipp_attribute_t *a;
    int state = (a = ippFindAttribute(resp, "printer-state", IPP_TAG_ENUM))
                    ? ippGetInteger(a, 0) : IPP_PSTATE_IDLE;
    bool accepting = !(a = ippFindAttribute(resp, "printer-is-accepting-jobs",
                                            IPP_TAG_BOOLEAN)) || ippGetBoolean(a, 0);
    const char *why = (a = ippFindAttribute(resp, "printer-state-message", IPP_TAG_TEXT))
                          ? ippGetString(a, 0, NULL) : NULL;
    if (!why || !*why) {
        /* cupsdisable without -r leaves no message; the reasons still say "paused". */
        why = (a = ippFindAttribute(resp, "printer-state-reasons", IPP_TAG_KEYWORD))
                  ? ippGetString(a, 0, NULL) : NULL;
        if (why && strcmp(why, "none") == 0)
            why = NULL;
    }
    int rc = 0;
    if (state == IPP_PSTATE_STOPPED || !accepting) {
        *err = msgf("CUPS queue '%s' is %s%s%s", queue,
                    state == IPP_PSTATE_STOPPED ? "stopped" : "not accepting jobs",
                    why && *why ? ": " : "", why && *why ? why : "");
        *retry = true;
        rc = -1;
    }
    ippDelete(resp);
    return rc;
}

/*
 * Cancel a job that was created but will never get its document, so it does not sit
 * in the queue until cupsd times it out. Best effort, on a new connection when the
 * old one broke.
 */
static void cancel_orphan(printer_t *p, cups_dest_t *dest, int job_id)
{
    bool fresh;
    char *err = NULL;
    http_t *http = conn_get(p, &fresh, &err);
    free(err);
    if (!http)
        return;
    arm(p);
    ipp_status_t st = cupsCancelDestJob(http, dest, job_id);
    if (!status_ok(st) && !status_is_answer(st))
        conn_close(p);
}

/*
 * Create the job and send its one document. Returns 0 with r->job_id set; or -1 with
 * *err and *retry, and r->job_id set when a job was created (and then cancelled).
 */
static int send_job(printer_t *p, struct req *r, char **err, bool *retry)
{
    bool fresh;
    http_t *http = conn_get(p, &fresh, err);
    if (!http) {
        *retry = true;
        return -1;
    }
    arm(p);
    cups_dest_t *dest = cupsGetNamedDest(http, r->queue, NULL);
    if (!dest) {
        ipp_status_t st = cupsLastError();
        *retry = status_retryable(st);
        *err = st == IPP_STATUS_ERROR_NOT_FOUND
                   ? msgf("no CUPS queue '%s'", r->queue)
                   : msgf("CUPS queue '%s': %s", r->queue, cups_error());
        if (!status_is_answer(st))
            conn_close(p);
        return -1;
    }

    int rc = -1, job_id = 0;
    ipp_status_t st;
    cups_dinfo_t *info;
    arm(p);
    if (!(info = cupsCopyDestInfo(http, dest))) {
        st = cupsLastError();
        *err = msgf("CUPS queue '%s': %s", r->queue, cups_error());
        goto out;
    }
    arm(p);
    st = cupsCreateDestJob(http, dest, info, &job_id, r->title, 0, NULL);
    if (!status_ok(st) || job_id <= 0) {
        st = cupsLastError();
        *err = msgf("CUPS refused a job for '%s': %s", r->queue, cups_error());
        goto out;
    }
    r->job_id = job_id;

    arm(p);
    bool sent = cupsStartDestDocument(http, dest, info, job_id, r->title, r->format, 0,
                                      NULL, 1) == HTTP_STATUS_CONTINUE;
    if (sent) {
        arm(p);
        sent = cupsWriteRequestData(http, (const char *)r->doc, r->len) ==
               HTTP_STATUS_CONTINUE;
    }
    /* Also after a failed send: the IPP status saying why comes with the response. */
    arm(p);
    st = cupsFinishDestDocument(http, dest, info);
    if (!sent || !status_ok(st)) {
        if (status_ok(st))
            st = IPP_STATUS_ERROR_INTERNAL; /* the transport failed, cupsd said nothing */
        *err = msgf("CUPS job %d on '%s': document not accepted: %s", job_id, r->queue,
                    cups_error());
        if (!status_is_answer(st))
            conn_close(p);
        cancel_orphan(p, dest, job_id);
        *retry = status_retryable(st);
        goto done;
    }
    rc = 0;

out:
    if (rc < 0) {
        *retry = status_retryable(st);
        if (!status_is_answer(st))
            conn_close(p);
    }
done:
    cupsFreeDestInfo(info);
    cupsFreeDests(1, dest);
    return rc;
}

/* The worker's handling of one printer_submit: FAILED, or SUBMITTED and followed. */
static void do_submit(printer_t *p, struct req *r)
{
    char *err = NULL;
    bool retry = true;
    if (queue_ready(p, r->queue, &err, &retry) < 0 || send_job(p, r, &err, &retry) < 0) {
        emit(p, PRINTER_EV_FAILED, r, retry, err);
        req_free(r);
        return;
    }
    emit(p, PRINTER_EV_SUBMITTED, r, false, NULL);
    free(r->doc);
    r->doc = NULL;
    follow_add(p, r);
}

/* ---- following ------------------------------------------------------------------------- */

/* The first non-empty text of the named attributes, or NULL. */
static const char *first_text(ipp_t *resp, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ipp_attribute_t *a = ippFindAttribute(resp, names[i], IPP_TAG_ZERO);
        const char *s = a ? ippGetString(a, 0, NULL) : NULL;
        if (s && *s && strcmp(s, "none") != 0)
            return s;
    }
    return NULL;
}

/*
 * Look at one followed job. Returns 1 when it is finished (its event emitted), 0 when
 * it goes on, -1 when cupsd could not be asked (the pass stops; the job goes on).
 * *changed is set when its state differs from the last pass.
 */
static int check_job(printer_t *p, struct req *j, bool *changed)
{
    static const char *const attrs[] = {
        "job-state", "job-state-reasons", "job-state-message", "job-printer-state-message",
    };
    /* Why a job was aborted: what the printer said, else what cupsd said. */
    static const char *const aborted_why[] = {
        "job-printer-state-message", "job-state-message", "job-state-reasons",
    };
    /* A cancelled job: the printer's message is about something else. */
    static const char *const cancelled_why[] = { "job-state-message", "job-state-reasons" };
    char uri[HTTP_MAX_URI];
    if (httpAssembleURIf(HTTP_URI_CODING_ALL, uri, sizeof(uri), "ipp", NULL, "localhost",
                         ippPort(), "/jobs/%d", j->job_id) < HTTP_URI_STATUS_OK)
        return 0; /* cannot happen for an int; keep following rather than guess */
    ipp_status_t st;
    char *err = NULL;
    ipp_t *resp = ipp_query(p, IPP_OP_GET_JOB_ATTRIBUTES, "job-uri", uri, attrs,
                            (int)(sizeof(attrs) / sizeof(attrs[0])), &st, &err);
    if (!resp) {
        if (st == IPP_STATUS_ERROR_NOT_FOUND) {
            free(err);
            emit(p, PRINTER_EV_FAILED, j, false,
                 msgf("CUPS job %d on '%s' is unknown to the server (gone from its "
                      "history): whether it printed is unknown", j->job_id, j->queue));
            return 1;
        }
        /* Unreachable, or an error that may pass: ask again next pass. */
        free(err);
        return status_is_answer(st) ? 0 : -1;
    }
    ipp_attribute_t *a = ippFindAttribute(resp, "job-state", IPP_TAG_ENUM);
    int state = a ? ippGetInteger(a, 0) : 0;
    if (state != j->state) {
        *changed = true;
        j->state = state;
    }
    const char *why = NULL;
    int done = 1;
    switch (state) {
    case IPP_JSTATE_COMPLETED:
        emit(p, PRINTER_EV_COMPLETED, j, false, NULL);
        break;
    case IPP_JSTATE_ABORTED:
        why = first_text(resp, aborted_why, sizeof(aborted_why) / sizeof(aborted_why[0]));
        emit(p, PRINTER_EV_FAILED, j, true,
             msgf("CUPS job %d on '%s' was aborted%s%s", j->job_id, j->queue,
                  why ? ": " : "", why ? why : ""));
        break;
    case IPP_JSTATE_CANCELED:
        why = first_text(resp, cancelled_why, sizeof(cancelled_why) / sizeof(cancelled_why[0]));
        emit(p, PRINTER_EV_FAILED, j, false,
             msgf("CUPS job %d on '%s' was cancelled%s%s", j->job_id, j->queue,
                  why ? ": " : "", why ? why : ""));
        break;
    default: /* pending, held, processing, stopped: it may still print */
        done = 0;
        break;
    }
    ippDelete(resp);
    return done;
}

/*
 * One pass over every followed job, on one connection. The next pass comes after
 * POLL_MIN_MS when some state changed, else after twice the last delay, up to
 * POLL_MAX_MS: a job on a stopped printer costs a request every 2 s, and a change is
 * seen quickly once things move again.
 */
static void poll_pass(printer_t *p)
{
    bool changed = false;
    for (struct req **jp = &p->followed; *jp && !atomic_load(&p->stopping);) {
        struct req *j = *jp;
        int rc = check_job(p, j, &changed);
        if (rc < 0)
            break;
        if (rc > 0) {
            *jp = j->next;
            req_free(j);
            changed = true;
        } else {
            jp = &j->next;
        }
    }
    p->poll_ms = changed ? POLL_MIN_MS : p->poll_ms * 2;
    if (p->poll_ms > POLL_MAX_MS)
        p->poll_ms = POLL_MAX_MS;
    p->next_poll_ms = loop_now_ms() + p->poll_ms;
}

/* ---- the worker ------------------------------------------------------------------------ */

static void add_ms(struct timespec *ts, int64_t ms)
{
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/*
 * Wait for a request, the stop flag, or the next poll when jobs are followed. Returns
 * the next request (taken off the list), or NULL when it is time to poll; sets *stop.
 */
static struct req *next_request(printer_t *p, bool *stop)
{
    pthread_mutex_lock(&p->mu);
    for (;;) {
        *stop = p->stop;
        if (p->stop || p->requests)
            break;
        if (p->followed) {
            int64_t wait = p->next_poll_ms - loop_now_ms();
            if (wait <= 0)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            add_ms(&ts, wait);
            (void)pthread_cond_timedwait(&p->wake, &p->mu, &ts);
        } else {
            pthread_cond_wait(&p->wake, &p->mu);
        }
    }
    struct req *r = NULL;
    if (!*stop && p->requests) {
        r = p->requests;
        p->requests = r->next;
        if (!p->requests)
            p->requests_tail = &p->requests;
        r->next = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    return r;
}

static void *worker_main(void *arg)
{
    printer_t *p = arg;

    /* libcups keeps the server per thread: this thread's, read once, now. */
    const char *server = cupsServer();
    p->server = strdup(server ? server : "");
    p->port = ippPort();
    pthread_mutex_lock(&p->mu);
    p->start_err = p->server ? 0 : ENOMEM;
    p->started = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    if (!p->server)
        return NULL;

    for (;;) {
        bool stop;
        struct req *r = next_request(p, &stop);
        if (stop)
            break;
        if (!r)
            poll_pass(p);
        else if (r->follow)
            follow_add(p, r);
        else
            do_submit(p, r);
    }
    conn_close(p);
    while (p->followed) {
        struct req *j = p->followed;
        p->followed = j->next;
        req_free(j);
    }
    return NULL;
}

/* ---- the loop side --------------------------------------------------------------------- */

printer_t *printer_new(loop_t *loop, printer_event_fn fn, void *data)
{
    if (!loop || !fn) {
        errno = EINVAL;
        return NULL;
    }
    printer_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->loop = loop;
    p->fn = fn;
    p->data = data;
    p->requests_tail = &p->requests;
    p->results_tail = &p->results;
    atomic_init(&p->stopping, false);

    int rc;
    pthread_condattr_t ca;
    if ((rc = pthread_mutex_init(&p->mu, NULL)) != 0)
        goto fail_free;
    if ((rc = pthread_condattr_init(&ca)) != 0)
        goto fail_mutex;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&p->wake, &ca);
    (void)pthread_condattr_destroy(&ca);
    if (rc != 0)
        goto fail_mutex;
    p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->efd < 0) {
        rc = errno;
        goto fail_cond;
    }
    if ((rc = -loop_add_fd(loop, p->efd, LOOP_IN, results_ready, p)) != 0)
        goto fail_efd;

    /*
     * The worker blocks every signal: process signals belong to the loop (signalfd),
     * and a SIGPIPE from a connection cupsd closed must not kill the daemon.
     */
    sigset_t all, old;
    sigfillset(&all);
    if ((rc = pthread_sigmask(SIG_SETMASK, &all, &old)) != 0)
        goto fail_loop;
    rc = pthread_create(&p->thread, NULL, worker_main, p);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        goto fail_loop;

    pthread_mutex_lock(&p->mu);
    while (!p->started)
        pthread_cond_wait(&p->wake, &p->mu);
    rc = p->start_err;
    pthread_mutex_unlock(&p->mu);
    if (rc != 0) {
        (void)pthread_join(p->thread, NULL);
        goto fail_loop;
    }
    return p;

fail_loop:
    (void)loop_del_fd(loop, p->efd);
fail_efd:
    (void)close(p->efd);
fail_cond:
    (void)pthread_cond_destroy(&p->wake);
fail_mutex:
    (void)pthread_mutex_destroy(&p->mu);
fail_free:
    free(p->server);
    free(p);
    errno = rc;
    return NULL;
}

/* Hand r to the worker, unless PRINTER_MAX_REQUESTS are unfinished. */
static int enqueue(printer_t *p, struct req *r)
{
    pthread_mutex_lock(&p->mu);
    if (p->unfinished >= PRINTER_MAX_REQUESTS) {
        pthread_mutex_unlock(&p->mu);
        req_free(r);
        return -EAGAIN;
    }
    p->unfinished++;
    *p->requests_tail = r;
    p->requests_tail = &r->next;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int printer_submit(printer_t *p, uint64_t tag, const char *queue, const char *format,
                   const char *title, const uint8_t *data, size_t len)
{
    if (!p || !queue_name_ok(queue) || !format || !*format || !data || len == 0)
        return -EINVAL;
    struct req *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->tag = tag;
    r->queue = strdup(queue);
    r->format = strdup(format);
    r->title = strdup(title ? title : DEFAULT_TITLE);
    r->doc = malloc(len);
    if (!r->queue || !r->format || !r->title || !r->doc) {
        req_free(r);
        return -ENOMEM;
    }
    memcpy(r->doc, data, len);
    r->len = len;
    return enqueue(p, r);
}

int printer_follow(printer_t *p, uint64_t tag, const char *queue, int job_id)
{
    if (!p || !queue_name_ok(queue) || job_id <= 0)
        return -EINVAL;
    struct req *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->follow = true;
    r->tag = tag;
    r->job_id = job_id;
    r->queue = strdup(queue);
    if (!r->queue) {
        req_free(r);
        return -ENOMEM;
    }
    return enqueue(p, r);
}

void printer_destroy(printer_t **pp)
{
    if (!pp || !*pp)
        return;
    printer_t *p = *pp;
    *pp = NULL;

    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
    /*
     * A libcups call in progress notices within WAIT_SLICE_S (keep_waiting), a
     * connect through httpConnect2's cancel flag. libcups reads that flag as a plain
     * int: this atomic store is the best a caller can do with its API.
     */
    atomic_store(&p->stopping, true);
    __atomic_store_n(&p->cancel, 1, __ATOMIC_SEQ_CST);
    (void)pthread_join(p->thread, NULL);

    (void)loop_del_fd(p->loop, p->efd);
    (void)close(p->efd);
    while (p->requests) {
        struct req *r = p->requests;
        p->requests = r->next;
        req_free(r);
    }
    while (p->results) {
        struct result *res = p->results;
        p->results = res->next;
        result_free(res);
    }
    (void)pthread_cond_destroy(&p->wake);
    (void)pthread_mutex_destroy(&p->mu);
    free(p->server);
    free(p);
}
