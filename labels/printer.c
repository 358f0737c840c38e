/*
 * CUPS printing on a worker thread (labels/printer.h).
 *
 * Threads: the loop thread calls printer_submit/find/follow/watch, which append to
 * `requests` under `mu` and signal `wake`. The worker takes requests one at a time,
 * renders and sends documents, makes every libcups call, keeps the jobs it follows and
 * the queues it watches in its own lists, and appends results to `results` under `mu`,
 * then bumps the eventfd. The loop thread drains `results` in results_ready() and
 * calls the callback. Only the worker touches the http_t, its lists and the libcups
 * per-thread state (cupsServer, errors).
 *
 * Only the non-deprecated CUPS 2.4 API: cupsGetNamedDest, cupsCopyDestInfo,
 * cupsStartDestDocument, cupsWriteRequestData, cupsFinishDestDocument,
 * cupsCancelDestJob, and IPP Create-Job, Get-Printer-Attributes, Get-Jobs and
 * Get-Job-Attributes through cupsDoRequest (Create-Job by hand because
 * cupsCreateDestJob does not return the job-uuid), on one http_t of our own that is
 * closed after any error and opened again when next needed.
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

#include "core/msgf.h"

/* Polling of followed jobs: fast while states change, slower while nothing does. */
#define POLL_MIN_MS 250
#define POLL_MAX_MS 2000
/* Watched queues are asked this often (one small IPP request each). */
#define HEALTH_MS 2000
/* Longest wait for cupsd to accept a connection, and to answer one request. */
#define CONNECT_TIMEOUT_MS 10000
#define REQUEST_TIMEOUT_MS 30000
/* How often a blocked libcups call asks whether to go on waiting (destroy's latency). */
#define WAIT_SLICE_S 0.5
/* CUPS' own limit on destination names (lpadmin's validate_name). */
#define QUEUE_NAME_MAX 127

typedef enum { REQ_SUBMIT, REQ_FIND, REQ_FOLLOW, REQ_WATCH } req_kind_t;

/* One event on its way to the loop thread. */
struct result {
    struct result *next;
    printer_ev_kind_t kind;
    uint64_t tag;
    char *queue;
    int job_id;
    char uuid[PRINTER_UUID_MAX];
    bool retry, lost;
    char *error;
    printer_condition_t condition;
    char *reasons, *message;
};

/*
 * A request from the loop thread; a followed job once submitted. `final` is the
 * request's COMPLETED/FAILED event, allocated with it: every request ends with it.
 */
struct req {
    struct req *next;
    req_kind_t kind;
    uint64_t tag;
    char *queue;
    char *format;       /* submit only */
    char *job_name;     /* submit and find; follow: the identity to check, or NULL */
    printer_render_fn render; /* submit only: makes the document on the worker */
    void *doc;
    printer_free_fn free_doc;
    int job_id;
    char uuid[PRINTER_UUID_MAX]; /* once known: the job's job-uuid, "" if cupsd said none */
    int state;          /* last job-state seen while following, 0 before the first */
    struct result *final;
};

/* A watched queue and what was last reported of it. */
struct watch {
    struct watch *next;
    char *queue;
    bool reported;
    printer_condition_t condition;
    char *reasons, *message;
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
    char *hold;         /* RMAD_TEST_PRINT_HOLD, or NULL */
    http_t *http;
    int64_t deadline_ms; /* of the CUPS call in progress (timeout callback) */
    struct req *followed;
    int poll_ms;
    int64_t next_poll_ms;
    struct watch *watches;
    int64_t next_health_ms;
};

/* ---- small helpers ---------------------------------------------------------------- */

static void result_free(struct result *r)
{
    if (!r)
        return;
    free(r->queue);
    free(r->error);
    free(r->reasons);
    free(r->message);
    free(r);
}

static void req_free(struct req *r)
{
    if (!r)
        return;
    if (r->free_doc)
        r->free_doc(r->doc);
    free(r->queue);
    free(r->format);
    free(r->job_name);
    result_free(r->final);
    free(r);
}

static void watch_free(struct watch *w)
{
    if (!w)
        return;
    free(w->queue);
    free(w->reasons);
    free(w->message);
    free(w);
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

/* A job name cupsd handles (see printer_job_name): printable ASCII, no space. */
static bool job_name_ok(const char *n)
{
    if (!n || !*n || strlen(n) >= PRINTER_JOB_NAME_MAX)
        return false;
    for (const unsigned char *c = (const unsigned char *)n; *c; c++)
        if (*c <= ' ' || *c >= 127)
            return false;
    return true;
}

void printer_job_name(char *name, int64_t label, int attempt)
{
    snprintf(name, PRINTER_JOB_NAME_MAX, "rmad-label-%lld-%d", (long long)label, attempt);
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

/* ---- printer health in words -------------------------------------------------------- */

const char *printer_condition_name(printer_condition_t c)
{
    switch (c) {
    case PRINTER_READY: return "ready";
    case PRINTER_STOPPED: return "stopped";
    case PRINTER_FAULT: return "needs attention";
    case PRINTER_REJECTING: return "rejecting jobs";
    case PRINTER_MISSING: return "missing";
    case PRINTER_UNREACHABLE: return "unreachable";
    }
    return "unknown";
}

/*
 * The RFC 8011 / PWG 5100.9 keywords a dock sees most, in the words a worker uses.
 * Others are shown as their keyword with spaces for dashes ("input-tray-missing" ->
 * "input tray missing"), which reads well enough for the rest of the registry.
 */
static const struct {
    const char *keyword, *words;
} reason_words[] = {
    { "media-empty", "media empty" },
    { "media-needed", "media needed" },
    { "media-jam", "media jam" },
    { "media-low", "media low" },
    { "door-open", "door open" },
    { "cover-open", "cover open" },
    { "offline", "offline" },
    { "paused", "paused" },
    { "shutdown", "shut down" },
    { "toner-low", "toner low" },
    { "toner-empty", "toner empty" },
    { "marker-supply-low", "ribbon or ink low" },
    { "marker-supply-empty", "ribbon or ink empty" },
    { "timed-out", "not answering" },
    { "connecting-to-device", "connecting to the printer" },
    { "output-area-full", "output full" },
    { "other", "printer error" },
};

/* Append one keyword's words to buf (len used of cap), ", "-separated. */
static int add_reason(char **buf, size_t *len, size_t *cap, const char *kw, size_t n)
{
    /* The severity is not for people; CUPS' own housekeeping is not the printer's. */
    static const char *const suffixes[] = { "-error", "-warning", "-report" };
    char word[128];
    if (n == 0 || n >= sizeof(word) || (n == 4 && memcmp(kw, "none", 4) == 0))
        return 0;
    memcpy(word, kw, n);
    word[n] = '\0';
    if (strncmp(word, "cups-", 5) == 0)
        return 0;
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t sl = strlen(suffixes[i]);
        if (n > sl && strcmp(word + n - sl, suffixes[i]) == 0) {
            word[n - sl] = '\0';
            break;
        }
    }
    const char *w = NULL;
    for (size_t i = 0; i < sizeof(reason_words) / sizeof(reason_words[0]); i++)
        if (strcmp(word, reason_words[i].keyword) == 0)
            w = reason_words[i].words;
    if (!w) {
        for (char *c = word; *c; c++)
            if (*c == '-')
                *c = ' ';
        w = word;
    }
    /* Twice the same words (media-empty-error and media-empty-report): once. */
    if (*buf && strstr(*buf, w))
        return 0;
    size_t need = *len + strlen(w) + 3;
    if (need > *cap) {
        char *nb = realloc(*buf, need * 2);
        if (!nb)
            return -ENOMEM;
        *buf = nb;
        *cap = need * 2;
    }
    *len += (size_t)sprintf(*buf + *len, "%s%s", *len ? ", " : "", w);
    return 0;
}

char *printer_reasons_words(const char *keywords)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (const char *s = keywords ? keywords : ""; *s;) {
        size_t n = strcspn(s, ",");
        if (add_reason(&buf, &len, &cap, s, n) < 0) {
            free(buf);
            return NULL;
        }
        s += n;
        if (*s == ',')
            s++;
    }
    return buf ? buf : strdup("");
}

/*
 * Whether the printer reports an error of its own: a reason with the -error severity
 * (media-empty-error from a backend's "STATE: +media-empty-error"). cupsd keeps such
 * a printer "idle" while it retries the job, but nothing prints until it is fixed.
 */
static bool has_fault(ipp_t *resp)
{
    ipp_attribute_t *a = ippFindAttribute(resp, "printer-state-reasons", IPP_TAG_KEYWORD);
    for (int i = 0, n = a ? ippGetCount(a) : 0; i < n; i++) {
        const char *kw = ippGetString(a, i, NULL);
        size_t len = kw ? strlen(kw) : 0;
        if (len > 6 && strcmp(kw + len - 6, "-error") == 0 && strncmp(kw, "cups-", 5) != 0)
            return true;
    }
    return false;
}

/* The reasons attribute of resp (all its values) as plain words; NULL: out of memory. */
static char *reasons_of(ipp_t *resp)
{
    ipp_attribute_t *a = ippFindAttribute(resp, "printer-state-reasons", IPP_TAG_KEYWORD);
    char *all = NULL;
    size_t len = 0, cap = 0;
    for (int i = 0, n = a ? ippGetCount(a) : 0; i < n; i++) {
        const char *kw = ippGetString(a, i, NULL);
        if (kw && add_reason(&all, &len, &cap, kw, strlen(kw)) < 0) {
            free(all);
            return NULL;
        }
    }
    return all ? all : strdup("");
}

/* ---- results: worker -> loop thread ----------------------------------------------- */

static void push(printer_t *p, struct result *res, bool finishes)
{
    pthread_mutex_lock(&p->mu);
    if (res) {
        *p->results_tail = res;
        p->results_tail = &res->next;
    }
    if (finishes && p->unfinished > 0)
        p->unfinished--;
    pthread_mutex_unlock(&p->mu);
    /* Cannot fail short of a counter overflow (2^64 - 1 wake-ups). */
    (void)eventfd_write(p->efd, 1);
}

/*
 * r's final event: COMPLETED, or FAILED with error (malloc'd, may be NULL: the event
 * then says "out of memory"). Uses the result allocated with the request, so it always
 * goes out; r no longer owns it.
 */
static void emit_final(printer_t *p, struct req *r, printer_ev_kind_t kind, bool retry,
                       bool lost, char *error)
{
    struct result *res = r->final;
    r->final = NULL;
    res->kind = kind;
    res->tag = r->tag;
    res->job_id = r->job_id;
    memcpy(res->uuid, r->uuid, sizeof(res->uuid));
    res->retry = retry;
    res->lost = lost;
    res->error = one_line(error);
    push(p, res, true);
}

/*
 * SUBMITTED for r. Its loss to a failed allocation costs the caller only the early
 * record of the job id: the final event still comes, and a job never recorded is
 * found again by name after a restart.
 */
static void emit_submitted(printer_t *p, const struct req *r)
{
    struct result *res = calloc(1, sizeof(*res));
    if (res && !(res->queue = strdup(r->queue))) {
        free(res);
        res = NULL;
    }
    if (res) {
        res->kind = PRINTER_EV_SUBMITTED;
        res->tag = r->tag;
        res->job_id = r->job_id;
        memcpy(res->uuid, r->uuid, sizeof(res->uuid));
    }
    push(p, res, false);
}

/* A STATE event for w's (new) health. A lost one is followed by the next change. */
static void emit_state(printer_t *p, const struct watch *w)
{
    struct result *res = calloc(1, sizeof(*res));
    if (!res)
        return;
    res->kind = PRINTER_EV_STATE;
    res->condition = w->condition;
    res->queue = strdup(w->queue);
    res->reasons = strdup(w->reasons ? w->reasons : "");
    res->message = strdup(w->message ? w->message : "");
    if (!res->queue || !res->reasons || !res->message) {
        result_free(res);
        return;
    }
    push(p, res, false);
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
            .job_uuid = res->uuid,
            .retry = res->retry,
            .lost = res->lost,
            .error = res->kind != PRINTER_EV_FAILED ? NULL
                     : res->error           ? res->error
                                            : "out of memory",
            .health = { .condition = res->condition,
                        .reasons = res->reasons ? res->reasons : "",
                        .message = res->message ? res->message : "" },
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
 * One IPP request about uri (a printer or a job) on the connection, asking for attrs
 * (nattrs 0: none), with what add(rq, arg) puts in (add may be NULL).
 * A reused connection that fails without an answer from cupsd is opened again and the
 * request sent once more: cupsd closes idle connections, and that is no reason to
 * fail a label. Returns the response (caller ippDelete()s) with *status; or NULL with
 * *status and *err set (*err NULL when cupsd answered with an error: the caller words
 * that one).
 */
static ipp_t *ipp_query(printer_t *p, ipp_op_t op, const char *uri_attr, const char *uri,
                        const char *const *attrs, int nattrs,
                        void (*add)(ipp_t *rq, const void *arg), const void *arg,
                        ipp_status_t *status, char **err)
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
        if (nattrs > 0)
            ippAddStrings(rq, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes",
                          nattrs, NULL, attrs);
        if (add)
            add(rq, arg);
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


/* ---- queue health ---------------------------------------------------------------------- */

typedef struct {
    printer_condition_t condition;
    char *reasons;      /* plain words, malloc'd */
    char *message;      /* malloc'd */
} health_t;

static void health_clear(health_t *h)
{
    free(h->reasons);
    free(h->message);
    *h = (health_t){ 0 };
}

/*
 * Ask cupsd how queue is. Always fills *h (UNREACHABLE or MISSING when it cannot say);
 * returns 0 when cupsd answered about the queue, -1 otherwise, with *st the status.
 */
static int read_health(printer_t *p, const char *queue, health_t *h, ipp_status_t *st)
{
    static const char *const attrs[] = {
        "printer-state", "printer-state-message", "printer-state-reasons",
        "printer-is-accepting-jobs",
    };
    *h = (health_t){ 0 };
    char uri[HTTP_MAX_URI];
    if (printer_uri(uri, queue) < 0) {
        *st = IPP_STATUS_ERROR_NOT_FOUND;
        h->condition = PRINTER_MISSING;
        h->message = msgf("no CUPS queue '%s' (not a valid printer URI)", queue);
        return -1;
    }
    char *err = NULL;
    ipp_t *resp = ipp_query(p, IPP_OP_GET_PRINTER_ATTRIBUTES, "printer-uri", uri, attrs,
                            (int)(sizeof(attrs) / sizeof(attrs[0])), NULL, NULL, st, &err);
    if (!resp) {
        if (*st == IPP_STATUS_ERROR_NOT_FOUND) {
            h->condition = PRINTER_MISSING;
            free(err);
            h->message = msgf("no CUPS queue '%s'", queue);
        } else if (!err) {
            h->condition = PRINTER_MISSING; /* an answer, but not about a usable queue */
            h->message = msgf("CUPS queue '%s': %s", queue, cups_error());
        } else {
            h->condition = PRINTER_UNREACHABLE;
            h->message = err;
        }
        return -1;
    }
    ipp_attribute_t *a;
    int state = (a = ippFindAttribute(resp, "printer-state", IPP_TAG_ENUM))
                    ? ippGetInteger(a, 0) : IPP_PSTATE_IDLE;
    bool accepting = !(a = ippFindAttribute(resp, "printer-is-accepting-jobs",
                                            IPP_TAG_BOOLEAN)) || ippGetBoolean(a, 0);
    const char *msg = (a = ippFindAttribute(resp, "printer-state-message", IPP_TAG_TEXT))
                          ? ippGetString(a, 0, NULL) : NULL;
    h->condition = state == IPP_PSTATE_STOPPED ? PRINTER_STOPPED
                   : !accepting                ? PRINTER_REJECTING
                   : has_fault(resp)           ? PRINTER_FAULT
                                               : PRINTER_READY;
    h->reasons = reasons_of(resp);
    h->message = one_line(strdup(msg ? msg : ""));
    ippDelete(resp);
    return 0;
}

static bool same_text(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/*
 * What cupsd said about queue: when it is watched and its health changed, it takes h's
 * strings and a STATE event goes out. A printer whose message alone changed ("printing
 * page 1") has not changed its health: the message is only reported with a change of
 * condition or reasons, so a busy printer does not make an event per label.
 */
static void health_seen(printer_t *p, const char *queue, health_t *h)
{
    for (struct watch *w = p->watches; w; w = w->next) {
        if (strcmp(w->queue, queue) != 0)
            continue;
        if (w->reported && w->condition == h->condition && same_text(w->reasons, h->reasons))
            return;
        free(w->reasons);
        free(w->message);
        w->condition = h->condition;
        w->reasons = h->reasons;
        w->message = h->message;
        h->reasons = h->message = NULL;
        w->reported = true;
        emit_state(p, w);
        return;
    }
}

/* One pass over the watched queues. */
static void health_pass(printer_t *p)
{
    for (struct watch *w = p->watches; w && !atomic_load(&p->stopping); w = w->next) {
        health_t h;
        ipp_status_t st;
        (void)read_health(p, w->queue, &h, &st);
        health_seen(p, w->queue, &h);
        health_clear(&h);
    }
    p->next_health_ms = loop_now_ms() + HEALTH_MS;
}

static void watch_add(printer_t *p, const char *queue)
{
    for (struct watch *w = p->watches; w; w = w->next)
        if (strcmp(w->queue, queue) == 0)
            return;
    struct watch *w = calloc(1, sizeof(*w));
    if (!w || !(w->queue = strdup(queue))) {
        free(w);
        return;
    }
    w->next = p->watches;
    p->watches = w;
    p->next_health_ms = loop_now_ms(); /* its first reading now */
}

/* "stopped: media empty (Out of labels)": a not-ready queue in one phrase. */
static char *not_ready_words(const char *queue, const health_t *h)
{
    const char *what = h->condition == PRINTER_STOPPED  ? "stopped"
                       : h->condition == PRINTER_FAULT ? "not printing"
                                                       : "not accepting jobs";
    bool r = h->reasons && *h->reasons, m = h->message && *h->message;
    return msgf("CUPS queue '%s' is %s%s%s%s%s%s", queue, what, r || m ? ": " : "",
                r ? h->reasons : "", r && m ? " (" : "", m ? h->message : "", r && m ? ")" : "");
}

/*
 * Whether queue can take a job now: it exists, is not stopped, accepts jobs. Asked
 * with our own Get-Printer-Attributes, before cupsGetNamedDest, for two reasons: it
 * returns the printer's state worth showing, and cupsGetNamedDest, for a name the
 * server does not know, spends a second browsing the network (DNS-SD) and may come
 * back with some other machine's printer of that name. Returns 0, or -1 with *err and
 * *retry set.
 */
static int queue_ready(printer_t *p, const char *queue, char **err, bool *retry)
{
    health_t h;
    ipp_status_t st;
    int rc = read_health(p, queue, &h, &st);
    if (rc < 0) {
        *retry = status_retryable(st);
        *err = h.message;
        h.message = NULL;
    } else if (h.condition != PRINTER_READY) {
        *retry = true;
        *err = not_ready_words(queue, &h);
        rc = -1;
    }
    health_seen(p, queue, &h);
    health_clear(&h);
    return rc;
}

/* ---- submitting ------------------------------------------------------------------------ */

/* "ipp://localhost/jobs/N". Returns 0 or -1. */
static int job_uri(char *uri, int job_id)
{
    return httpAssembleURIf(HTTP_URI_CODING_ALL, uri, HTTP_MAX_URI, "ipp", NULL,
                            "localhost", ippPort(), "/jobs/%d", job_id) < HTTP_URI_STATUS_OK
               ? -1 : 0;
}

/*
 * Cancel a job that was created but will never get its document, so it does not sit
 * in the queue until cupsd times it out. Best effort.
 */
static void cancel_orphan(printer_t *p, int job_id)
{
    char uri[HTTP_MAX_URI];
    ipp_status_t st;
    char *err = NULL;
    if (job_uri(uri, job_id) == 0)
        ippDelete(ipp_query(p, IPP_OP_CANCEL_JOB, "job-uri", uri, NULL, 0, NULL, NULL, &st,
                            &err));
    free(err);
}

static void add_job_name(ipp_t *rq, const void *arg)
{
    ippAddString(rq, IPP_TAG_OPERATION, IPP_TAG_NAME, "job-name", NULL, arg);
}

/* The job's id and uuid from a Create-Job or Get-Jobs answer's job attributes. */
static void job_identity(ipp_t *resp, int *job_id, char *uuid)
{
    ipp_attribute_t *a = ippFindAttribute(resp, "job-id", IPP_TAG_INTEGER);
    *job_id = a ? ippGetInteger(a, 0) : 0;
    a = ippFindAttribute(resp, "job-uuid", IPP_TAG_URI);
    const char *u = a ? ippGetString(a, 0, NULL) : NULL;
    snprintf(uuid, PRINTER_UUID_MAX, "%s", u ? u : "");
}

/*
 * cupsd 2.4 does not put job-uuid in its Create-Job answer: ask for it. Without an
 * answer the job is still known by its id and name.
 */
static void job_uuid_of(printer_t *p, struct req *r)
{
    static const char *const attrs[] = { "job-uuid" };
    char uri[HTTP_MAX_URI];
    ipp_status_t st;
    char *err = NULL;
    if (job_uri(uri, r->job_id) < 0)
        return;
    ipp_t *resp = ipp_query(p, IPP_OP_GET_JOB_ATTRIBUTES, "job-uri", uri, attrs, 1, NULL, NULL,
                            &st, &err);
    free(err);
    if (resp) {
        int id;
        job_identity(resp, &id, r->uuid);
        ippDelete(resp);
    }
}

/*
 * Create the job (named r->job_name) and send its one document. Returns 0 with
 * r->job_id and r->uuid set; or -1 with *err and *retry, and r->job_id set when a job
 * was created (and then cancelled).
 */
static int send_job(printer_t *p, struct req *r, const uint8_t *doc, size_t len, char **err,
                    bool *retry)
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

    int rc = -1;
    ipp_status_t st;
    cups_dinfo_t *info;
    char uri[HTTP_MAX_URI];
    arm(p);
    if (!(info = cupsCopyDestInfo(http, dest))) {
        st = cupsLastError();
        *err = msgf("CUPS queue '%s': %s", r->queue, cups_error());
        goto out;
    }
    /*
     * Create-Job by hand: its answer has the job-uuid that identifies the job later.
     * No requested attributes: the answer is job-id, job-uri, job-uuid, job-state.
     */
    if (printer_uri(uri, r->queue) < 0) {
        st = IPP_STATUS_ERROR_NOT_FOUND;
        *err = msgf("no CUPS queue '%s' (not a valid printer URI)", r->queue);
        goto out;
    }
    char *qerr = NULL;
    ipp_t *resp = ipp_query(p, IPP_OP_CREATE_JOB, "printer-uri", uri, NULL, 0, add_job_name,
                            r->job_name, &st, &qerr);
    if (resp)
        job_identity(resp, &r->job_id, r->uuid);
    ippDelete(resp);
    if (!resp || r->job_id <= 0) {
        *err = qerr ? qerr : msgf("CUPS refused a job for '%s': %s", r->queue, cups_error());
        if (resp)
            st = IPP_STATUS_ERROR_INTERNAL;
        r->job_id = 0;
        goto out;
    }
    if (!r->uuid[0])
        job_uuid_of(p, r);
    http = p->http; /* ipp_query may have opened a new connection */
    if (!http) {
        *err = unreachable(p);
        st = IPP_STATUS_ERROR_SERVICE_UNAVAILABLE;
        cancel_orphan(p, r->job_id);
        goto out;
    }

    arm(p);
    /* The document's name is the job's: no space either (see printer_job_name). */
    bool sent = cupsStartDestDocument(http, dest, info, r->job_id, r->job_name, r->format,
                                      0, NULL, 1) == HTTP_STATUS_CONTINUE;
    if (sent) {
        arm(p);
        sent = cupsWriteRequestData(http, (const char *)doc, len) == HTTP_STATUS_CONTINUE;
    }
    /* Also after a failed send: the IPP status saying why comes with the response. */
    arm(p);
    st = cupsFinishDestDocument(http, dest, info);
    if (!sent || !status_ok(st)) {
        if (status_ok(st))
            st = IPP_STATUS_ERROR_INTERNAL; /* the transport failed, cupsd said nothing */
        *err = msgf("CUPS job %d on '%s': document not accepted: %s", r->job_id, r->queue,
                    cups_error());
        if (!status_is_answer(st))
            conn_close(p);
        cancel_orphan(p, r->job_id);
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

/* The test hook of printer_new: wait while the hold file exists. */
static void hold_after_send(printer_t *p)
{
    while (p->hold && access(p->hold, F_OK) == 0 && !atomic_load(&p->stopping)) {
        struct timespec ts = { .tv_nsec = 20 * 1000000L };
        (void)nanosleep(&ts, NULL);
    }
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
    r->next = p->followed;
    p->followed = r;
}

/* The worker's handling of one printer_submit: FAILED, or SUBMITTED and followed. */
static void do_submit(printer_t *p, struct req *r)
{
    char *err = NULL;
    bool retry = true;
    uint8_t *doc = NULL;
    size_t len = 0;
    int rc = r->render(r->doc, &doc, &len, &err);
    if (r->free_doc)
        r->free_doc(r->doc);
    r->free_doc = NULL;
    r->doc = NULL;
    if (rc < 0 || len == 0) {
        if (!err)
            err = msgf("making the label: %s", strerror(rc < 0 ? -rc : EINVAL));
        emit_final(p, r, PRINTER_EV_FAILED, rc != -EINVAL, false, err);
        free(doc);
        req_free(r);
        return;
    }
    rc = queue_ready(p, r->queue, &err, &retry);
    if (rc == 0)
        rc = send_job(p, r, doc, len, &err, &retry);
    free(doc);
    if (rc < 0) {
        emit_final(p, r, PRINTER_EV_FAILED, retry, false, err);
        req_free(r);
        return;
    }
    hold_after_send(p);
    emit_submitted(p, r);
    r->kind = REQ_FOLLOW;
    follow_add(p, r);
}

/* ---- finding a job by name ------------------------------------------------------------- */

/* What Get-Jobs told of one job. */
struct found {
    int id, state, docs;
    char uuid[PRINTER_UUID_MAX];
};

static void add_which_all(ipp_t *rq, const void *arg)
{
    (void)arg;
    ippAddString(rq, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "which-jobs", NULL, "all");
    ippAddBoolean(rq, IPP_TAG_OPERATION, "my-jobs", 0);
}

/*
 * Search r->queue's jobs (with their history) for r->job_name. Returns 1 found (r's
 * job_id and uuid set), 0 not there, -1 cupsd could not be asked (try again later).
 * A job of that name that never got a document (its sender died between Create-Job
 * and Send-Document) is cancelled and does not count.
 */
static int find_job(printer_t *p, struct req *r)
{
    static const char *const attrs[] = {
        "job-id", "job-name", "job-uuid", "job-state", "number-of-documents",
    };
    char uri[HTTP_MAX_URI];
    if (printer_uri(uri, r->queue) < 0)
        return 0;
    ipp_status_t st;
    char *err = NULL;
    ipp_t *resp = ipp_query(p, IPP_OP_GET_JOBS, "printer-uri", uri, attrs,
                            (int)(sizeof(attrs) / sizeof(attrs[0])), add_which_all, NULL,
                            &st, &err);
    free(err);
    if (!resp)
        return st == IPP_STATUS_ERROR_NOT_FOUND ? 0 : -1; /* no queue: no job there */

    struct found best = { 0 }, empty[8];
    size_t nempty = 0;
    ipp_attribute_t *a = ippFirstAttribute(resp);
    while (a) {
        while (a && ippGetGroupTag(a) != IPP_TAG_JOB)
            a = ippNextAttribute(resp);
        if (!a)
            break;
        struct found f = { .docs = -1 };
        bool match = false;
        for (; a && ippGetGroupTag(a) == IPP_TAG_JOB; a = ippNextAttribute(resp)) {
            const char *name = ippGetName(a);
            if (!name)
                continue;
            if (strcmp(name, "job-id") == 0)
                f.id = ippGetInteger(a, 0);
            else if (strcmp(name, "job-state") == 0)
                f.state = ippGetInteger(a, 0);
            else if (strcmp(name, "number-of-documents") == 0)
                f.docs = ippGetInteger(a, 0);
            else if (strcmp(name, "job-uuid") == 0)
                snprintf(f.uuid, sizeof(f.uuid), "%s", ippGetString(a, 0, NULL));
            else if (strcmp(name, "job-name") == 0)
                match = strcmp(ippGetString(a, 0, NULL) ? ippGetString(a, 0, NULL) : "",
                               r->job_name) == 0;
        }
        if (!match || f.id <= 0)
            continue;
        bool unfinished = f.state == IPP_JSTATE_PENDING || f.state == IPP_JSTATE_HELD;
        if (f.docs == 0 && unfinished) {
            if (nempty < sizeof(empty) / sizeof(empty[0]))
                empty[nempty++] = f;
        } else if (f.id > best.id) {
            best = f;
        }
    }
    ippDelete(resp);

    for (size_t i = 0; i < nempty; i++)
        cancel_orphan(p, empty[i].id);
    if (best.id <= 0)
        return 0;
    r->job_id = best.id;
    memcpy(r->uuid, best.uuid, sizeof(r->uuid));
    return 1;
}

/*
 * One attempt at a printer_find. Returns 1 when it ended (not found: its FAILED
 * emitted, r freed), 0 when found (SUBMITTED emitted; r is a followed job now, for
 * the caller to keep), -1 when cupsd could not be asked (r stays a search, for later).
 */
static int find_step(printer_t *p, struct req *r)
{
    int rc = find_job(p, r);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        emit_final(p, r, PRINTER_EV_FAILED, true, true,
                   msgf("CUPS has no job %s on '%s' (it never got there, or CUPS lost it)",
                        r->job_name, r->queue));
        req_free(r);
        return 1;
    }
    emit_submitted(p, r);
    r->kind = REQ_FOLLOW;
    return 0;
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
 * Whether the job cupsd describes in resp is j: the same job-uuid (when both are
 * known) and the same job-name (when both are known). After a crash cupsd may give
 * j's id to a new job; that one is not j.
 */
static bool is_same_job(ipp_t *resp, const struct req *j)
{
    ipp_attribute_t *a = ippFindAttribute(resp, "job-uuid", IPP_TAG_URI);
    const char *uuid = a ? ippGetString(a, 0, NULL) : NULL;
    if (j->uuid[0] && uuid && *uuid && strcmp(uuid, j->uuid) != 0)
        return false;
    a = ippFindAttribute(resp, "job-name", IPP_TAG_NAME);
    const char *name = a ? ippGetString(a, 0, NULL) : NULL;
    if (j->job_name && name && *name && strcmp(name, j->job_name) != 0)
        return false;
    return true;
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
        "job-uuid", "job-name",
    };
    /* Why a job was aborted: what the printer said, else what cupsd said. */
    static const char *const aborted_why[] = {
        "job-printer-state-message", "job-state-message", "job-state-reasons",
    };
    /* A cancelled job: the printer's message is about something else. */
    static const char *const cancelled_why[] = { "job-state-message", "job-state-reasons" };
    char uri[HTTP_MAX_URI];
    if (job_uri(uri, j->job_id) < 0)
        return 0; /* cannot happen for an int; keep following rather than guess */
    ipp_status_t st;
    char *err = NULL;
    ipp_t *resp = ipp_query(p, IPP_OP_GET_JOB_ATTRIBUTES, "job-uri", uri, attrs,
                            (int)(sizeof(attrs) / sizeof(attrs[0])), NULL, NULL, &st, &err);
    free(err);
    if (!resp) {
        if (st == IPP_STATUS_ERROR_NOT_FOUND) {
            emit_final(p, j, PRINTER_EV_FAILED, true, true,
                       msgf("CUPS lost job %d on '%s' (cupsd restarted without it)",
                            j->job_id, j->queue));
            return 1;
        }
        /* Unreachable, or an error that may pass: ask again next pass. */
        return status_is_answer(st) ? 0 : -1;
    }
    if (!is_same_job(resp, j)) {
        ippDelete(resp);
        emit_final(p, j, PRINTER_EV_FAILED, true, true,
                   msgf("CUPS lost job %d on '%s': that id is now another job (cupsd "
                        "restarted without ours)", j->job_id, j->queue));
        return 1;
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
        emit_final(p, j, PRINTER_EV_COMPLETED, false, false, NULL);
        break;
    case IPP_JSTATE_ABORTED:
        why = first_text(resp, aborted_why, sizeof(aborted_why) / sizeof(aborted_why[0]));
        emit_final(p, j, PRINTER_EV_FAILED, true, false,
                   msgf("CUPS job %d on '%s' was aborted%s%s", j->job_id, j->queue,
                        why ? ": " : "", why ? why : ""));
        break;
    case IPP_JSTATE_CANCELED:
        why = first_text(resp, cancelled_why, sizeof(cancelled_why) / sizeof(cancelled_why[0]));
        emit_final(p, j, PRINTER_EV_FAILED, false, false,
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
 * One pass over every followed job (and every search waiting for cupsd), on one
 * connection. The next pass comes after POLL_MIN_MS when some state changed, else
 * after twice the last delay, up to POLL_MAX_MS: a job on a stopped printer costs a
 * request every 2 s, and a change is seen quickly once things move again.
 */
static void poll_pass(printer_t *p)
{
    bool changed = false;
    struct req *list = p->followed;
    p->followed = NULL;
    /* Searches found go back through follow_add; keep the rest in their order. */
    struct req *keep = NULL, **keep_tail = &keep;
    bool broken = false;
    while (list) {
        struct req *j = list;
        list = j->next;
        j->next = NULL;
        if (broken || atomic_load(&p->stopping)) {
            *keep_tail = j;
            keep_tail = &j->next;
            continue;
        }
        if (j->kind == REQ_FIND) {
            int rc = find_step(p, j);
            if (rc > 0) {
                changed = true;
                continue;
            }
            broken = rc < 0;
            changed = changed || rc == 0;
            *keep_tail = j;
            keep_tail = &j->next;
            continue;
        }
        int rc = check_job(p, j, &changed);
        if (rc > 0) {
            req_free(j);
            changed = true;
            continue;
        }
        if (rc < 0)
            broken = true;
        *keep_tail = j;
        keep_tail = &j->next;
    }
    /* Requests added during the pass (none: only this thread adds) go after. */
    *keep_tail = p->followed;
    p->followed = keep;
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

/* When the worker has something to do on its own: a poll or a health pass. */
static int64_t next_due(const printer_t *p)
{
    int64_t due = INT64_MAX;
    if (p->followed)
        due = p->next_poll_ms;
    if (p->watches && p->next_health_ms < due)
        due = p->next_health_ms;
    return due;
}

/*
 * Wait for a request, the stop flag, or the next poll or health pass. Returns the
 * next request (taken off the list), or NULL when it is time for a pass; sets *stop.
 */
static struct req *next_request(printer_t *p, bool *stop)
{
    pthread_mutex_lock(&p->mu);
    for (;;) {
        *stop = p->stop;
        if (p->stop || p->requests)
            break;
        int64_t due = next_due(p);
        if (due == INT64_MAX) {
            pthread_cond_wait(&p->wake, &p->mu);
            continue;
        }
        int64_t wait = due - loop_now_ms();
        if (wait <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        add_ms(&ts, wait);
        (void)pthread_cond_timedwait(&p->wake, &p->mu, &ts);
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
        if (r) {
            switch (r->kind) {
            case REQ_SUBMIT: do_submit(p, r); break;
            case REQ_FIND:
                if (find_step(p, r) <= 0)
                    follow_add(p, r); /* followed, or a search to try again */
                break;
            case REQ_FOLLOW: follow_add(p, r); break;
            case REQ_WATCH:
                watch_add(p, r->queue);
                req_free(r);
                break;
            }
            continue;
        }
        int64_t now = loop_now_ms();
        if (p->watches && p->next_health_ms <= now)
            health_pass(p);
        if (p->followed && p->next_poll_ms <= now)
            poll_pass(p);
    }
    conn_close(p);
    while (p->followed) {
        struct req *j = p->followed;
        p->followed = j->next;
        req_free(j);
    }
    while (p->watches) {
        struct watch *w = p->watches;
        p->watches = w->next;
        watch_free(w);
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
    const char *hold = getenv("RMAD_TEST_PRINT_HOLD");
    if (hold && *hold && !(p->hold = strdup(hold))) {
        rc = ENOMEM;
        goto fail_free;
    }
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
    free(p->hold);
    free(p);
    errno = rc;
    return NULL;
}

/*
 * A new request of kind for tag and queue, with its final event allocated (watches
 * have none). NULL when out of memory.
 */
static struct req *req_new(req_kind_t kind, uint64_t tag, const char *queue)
{
    struct req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->kind = kind;
    r->tag = tag;
    r->queue = strdup(queue);
    if (kind != REQ_WATCH && (r->final = calloc(1, sizeof(*r->final))))
        r->final->queue = strdup(queue);
    if (!r->queue || (kind != REQ_WATCH && (!r->final || !r->final->queue))) {
        req_free(r);
        return NULL;
    }
    return r;
}

/* Hand r to the worker, unless PRINTER_MAX_REQUESTS are unfinished (watches never are). */
static int enqueue(printer_t *p, struct req *r)
{
    bool counts = r->kind != REQ_WATCH;
    pthread_mutex_lock(&p->mu);
    if (counts && p->unfinished >= PRINTER_MAX_REQUESTS) {
        pthread_mutex_unlock(&p->mu);
        req_free(r);
        return -EAGAIN;
    }
    if (counts)
        p->unfinished++;
    *p->requests_tail = r;
    p->requests_tail = &r->next;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* The document of printer_submit: a copy of the caller's bytes. */
struct bytes {
    uint8_t *data;
    size_t len;
};

static int bytes_render(void *doc, uint8_t **out, size_t *len, char **err)
{
    struct bytes *b = doc;
    (void)err;
    *out = b->data;
    *len = b->len;
    b->data = NULL;
    return 0;
}

static void bytes_free(void *doc)
{
    struct bytes *b = doc;
    if (b)
        free(b->data);
    free(b);
}

int printer_submit_render(printer_t *p, uint64_t tag, const char *queue, const char *format,
                          const char *job_name, printer_render_fn render, void *doc,
                          printer_free_fn free_doc)
{
    struct req *r = NULL;
    if (!p || !queue_name_ok(queue) || !format || !*format || !job_name_ok(job_name) ||
        !render) {
        if (free_doc)
            free_doc(doc);
        return -EINVAL;
    }
    if (!(r = req_new(REQ_SUBMIT, tag, queue)) || !(r->format = strdup(format)) ||
        !(r->job_name = strdup(job_name))) {
        req_free(r);
        if (free_doc)
            free_doc(doc);
        return -ENOMEM;
    }
    r->render = render;
    r->doc = doc;
    r->free_doc = free_doc;
    return enqueue(p, r);
}

int printer_submit(printer_t *p, uint64_t tag, const char *queue, const char *format,
                   const char *job_name, const uint8_t *data, size_t len)
{
    if (!p || !data || len == 0)
        return -EINVAL;
    struct bytes *b = calloc(1, sizeof(*b));
    if (!b || !(b->data = malloc(len))) {
        free(b);
        return -ENOMEM;
    }
    memcpy(b->data, data, len);
    b->len = len;
    return printer_submit_render(p, tag, queue, format, job_name, bytes_render, b, bytes_free);
}

int printer_find(printer_t *p, uint64_t tag, const char *queue, const char *job_name)
{
    if (!p || !queue_name_ok(queue) || !job_name_ok(job_name))
        return -EINVAL;
    struct req *r = req_new(REQ_FIND, tag, queue);
    if (!r || !(r->job_name = strdup(job_name))) {
        req_free(r);
        return -ENOMEM;
    }
    return enqueue(p, r);
}

int printer_follow(printer_t *p, uint64_t tag, const char *queue, int job_id,
                   const char *job_uuid, const char *job_name)
{
    if (!p || !queue_name_ok(queue) || job_id <= 0 ||
        (job_name && *job_name && !job_name_ok(job_name)) ||
        (job_uuid && strlen(job_uuid) >= PRINTER_UUID_MAX))
        return -EINVAL;
    struct req *r = req_new(REQ_FOLLOW, tag, queue);
    if (!r || (job_name && *job_name && !(r->job_name = strdup(job_name)))) {
        req_free(r);
        return -ENOMEM;
    }
    r->job_id = job_id;
    snprintf(r->uuid, sizeof(r->uuid), "%s", job_uuid ? job_uuid : "");
    return enqueue(p, r);
}

int printer_watch(printer_t *p, const char *queue)
{
    if (!p || !queue_name_ok(queue))
        return -EINVAL;
    struct req *r = req_new(REQ_WATCH, 0, queue);
    if (!r)
        return -ENOMEM;
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
    free(p->hold);
    free(p);
}
