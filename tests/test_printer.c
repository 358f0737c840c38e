/*
 * CUPS printing (labels/printer.h) against a real cupsd: one private cupsd per suite
 * (tests/cupsd/cupsd-harness), raw queues whose capture backend writes each job's
 * bytes to ROOT/capture/QUEUE/job-N.prn, and a loop_t in this thread receiving the
 * events. Faults are made with the real tools: cupsdisable, cupsreject, cancel,
 * stopping cupsd; the capture backend holds a job in "processing" while the file
 * ROOT/capture/QUEUE/hold exists and fails it while .../fail exists.
 *
 * Waiting is always for a condition with a generous deadline (an event, a file);
 * "nothing happened" is checked by running the loop a while and looking, which can
 * only miss a bug, never fail a correct implementation.
 */
#include <CUnit/CUnit.h>
#include <cairo-pdf.h>
#include <cairo.h>
#include <cups/cups.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "labels/printer.h"
#include "tests/helpers.h"
#include "tests/suites.h"

#define HARNESS "tests/cupsd/cupsd-harness"
#define WATCHDOG_MS 20000
#define QUIET_MS 1500 /* how long "no event" is watched for */
#define MAX_EVENTS 64

static char *root;        /* the suite's cupsd: ROOT, clients use ROOT/sock */
static char *old_server;  /* CUPS_SERVER before the suite, restored after */

/* ---- the private cupsd ------------------------------------------------------------ */

/* Absolute path of a CUPS tool (th_run does not search PATH), or NULL. */
static const char *tool(const char *name)
{
    static const char *const dirs[] = { "/usr/sbin", "/usr/bin", "/sbin", "/bin" };
    static char path[256];
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dirs[i], name);
        if (access(path, X_OK) == 0)
            return path;
    }
    return NULL;
}

/* Run argv; print what it said when it fails. Returns its exit status (-1: no spawn). */
static int run(char *const argv[])
{
    th_proc_t pr = th_run_proc(argv, NULL);
    int st = pr.status;
    if (st != 0)
        fprintf(stderr, "\n  %s %s: exit %d: %s%s\n", argv[0], argv[1] ? argv[1] : "", st,
                pr.err, pr.out);
    th_proc_free(&pr);
    return st;
}

static int harness(const char *cmd)
{
    char owner[32];
    snprintf(owner, sizeof(owner), "%ld", (long)getpid());
    if (strcmp(cmd, "start") == 0)
        return run((char *const[]){ HARNESS, "start", root, "--owner", owner, NULL });
    return run((char *const[]){ HARNESS, (char *)cmd, root, NULL });
}

/* A CUPS command-line tool on the suite's cupsd (CUPS_SERVER is set): 0 when it worked. */
static int cups_tool(const char *name, const char *a1, const char *a2, const char *a3)
{
    const char *t = tool(name);
    if (!t) {
        fprintf(stderr, "\n  %s not found\n", name);
        return -1;
    }
    char *path = strdup(t);
    int st = path ? run((char *const[]){ path, (char *)a1, (char *)a2, (char *)a3, NULL }) : -1;
    free(path);
    return st;
}

static char *cap_path(const char *queue, const char *file)
{
    char *p = NULL;
    if (asprintf(&p, "%s/capture/%s/%s", root, queue, file) < 0)
        return NULL;
    return p;
}

static char *job_file(const char *queue, int job_id, const char *ext)
{
    char name[64];
    snprintf(name, sizeof(name), "job-%d.%s", job_id, ext);
    return cap_path(queue, name);
}

/* Create (on) or remove (off) a control file of the capture backend. */
static void control(const char *queue, const char *file, const char *text)
{
    char *p = cap_path(queue, file);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    if (text) {
        CU_ASSERT_EQUAL(th_write_file(p, text), 0);
    } else {
        CU_ASSERT(unlink(p) == 0 || errno == ENOENT);
    }
    free(p);
}

/* Captured jobs (job-*.prn files) of a queue. */
static int captured(const char *queue)
{
    char *dir = cap_path(queue, "");
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    DIR *d = opendir(dir);
    free(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "job-", 4) == 0 && len > 8 && strcmp(e->d_name + len - 4, ".prn") == 0)
            n++;
    }
    closedir(d);
    return n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Wait (up to the watchdog) until path exists. */
static bool wait_file(const char *path)
{
    for (int64_t end = loop_now_ms() + WATCHDOG_MS; loop_now_ms() < end; sleep_ms(50))
        if (access(path, F_OK) == 0)
            return true;
    fprintf(stderr, "\n  %s never appeared\n", path);
    return false;
}

/* Wait until the capture backend has job_id in hand (it is "processing"). */
static void wait_started(const char *queue, int job_id)
{
    char *p = job_file(queue, job_id, "started");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_FATAL(wait_file(p));
    free(p);
}

/* The queues every test expects: enabled, accepting, no hold or fail file. */
static void queues_ready(void)
{
    static const char *const qs[] = { "zebra", "office", "broken" };
    for (size_t i = 0; i < 3; i++) {
        control(qs[i], "hold", NULL);
        control(qs[i], "fail", NULL);
        control(qs[i], "media-empty", NULL);
        CU_ASSERT_EQUAL(cups_tool("cupsenable", qs[i], NULL, NULL), 0);
        CU_ASSERT_EQUAL(cups_tool("cupsaccept", qs[i], NULL, NULL), 0);
    }
}

static int suite_clean(void);

static int suite_init(void)
{
    const char *s = getenv("CUPS_SERVER");
    old_server = s ? strdup(s) : NULL;
    root = th_mkdtemp();
    char *sock = NULL;
    if (!root || asprintf(&sock, "%s/sock", root) < 0)
        goto fail;
    int rc = setenv("CUPS_SERVER", sock, 1);
    free(sock);
    if (rc < 0 || harness("start") != 0)
        goto fail;
    if (run((char *const[]){ HARNESS, "add-queue", root, "zebra", NULL }) != 0 ||
        run((char *const[]){ HARNESS, "add-queue", root, "office", NULL }) != 0 ||
        run((char *const[]){ HARNESS, "add-queue", root, "broken", NULL }) != 0)
        goto fail;
    /* A failing job is aborted (the default, stop-printer, would hold it pending). */
    if (cups_tool("lpadmin", "-p", "broken", "-oprinter-error-policy=abort-job") != 0)
        goto fail;
    return 0;

fail:
    (void)suite_clean(); /* CUnit does not clean up a suite whose init failed */
    return -1;
}

static int suite_clean(void)
{
    int rc = root && harness("stop") == 0 ? 0 : -1;
    th_rm_rf(root);
    free(root);
    root = NULL;
    if (old_server)
        (void)setenv("CUPS_SERVER", old_server, 1);
    else
        (void)unsetenv("CUPS_SERVER");
    free(old_server);
    old_server = NULL;
    return rc;
}

/* ---- recording events --------------------------------------------------------------- */

struct ev {
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

struct rec {
    loop_t *loop;
    printer_t *p;
    struct ev ev[MAX_EVENTS];
    size_t n;
    size_t stop_at;
};

static void on_event(const printer_event_t *e, void *data)
{
    struct rec *r = data;
    if (r->n == MAX_EVENTS) {
        CU_FAIL("too many events");
        loop_stop(r->loop);
        return;
    }
    struct ev *c = &r->ev[r->n++];
    c->kind = e->kind;
    c->tag = e->tag;
    c->queue = e->queue ? strdup(e->queue) : NULL;
    c->job_id = e->job_id;
    c->retry = e->retry;
    c->lost = e->lost;
    snprintf(c->uuid, sizeof(c->uuid), "%s", e->job_uuid ? e->job_uuid : "");
    c->error = e->error ? strdup(e->error) : NULL;
    c->condition = e->health.condition;
    c->reasons = e->kind == PRINTER_EV_STATE ? strdup(e->health.reasons) : NULL;
    c->message = e->kind == PRINTER_EV_STATE ? strdup(e->health.message) : NULL;
    /* FAILED is never lost without being worth a retry: nothing of it will print. */
    if (e->lost)
        CU_ASSERT(e->retry);
    CU_ASSERT_PTR_NOT_NULL(e->queue);
    /* An error comes with FAILED, and only then, and is one line. */
    CU_ASSERT_EQUAL(e->kind == PRINTER_EV_FAILED, e->error != NULL);
    if (e->error)
        CU_ASSERT_PTR_NULL(strpbrk(e->error, "\r\n"));
    if (r->n == r->stop_at)
        loop_stop(r->loop);
}

/* A loop and a printer on the suite's cupsd. */
static struct rec *rec_new(void)
{
    struct rec *r = calloc(1, sizeof(*r));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    r->loop = loop_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->loop);
    r->p = printer_new(r->loop, on_event, r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->p);
    return r;
}

/*
 * A printer on another server: CUPS_SERVER is switched around printer_new, which reads
 * it before returning. Only while no other printer exists (their workers read the
 * environment too).
 */
static void rec_use_server(struct rec *r, const char *server)
{
    char *saved = strdup(getenv("CUPS_SERVER"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(saved);
    printer_destroy(&r->p);
    CU_ASSERT_EQUAL_FATAL(setenv("CUPS_SERVER", server, 1), 0);
    r->p = printer_new(r->loop, on_event, r);
    CU_ASSERT_EQUAL(setenv("CUPS_SERVER", saved, 1), 0);
    free(saved);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->p);
}

static void rec_free(struct rec *r)
{
    printer_destroy(&r->p);
    CU_ASSERT_PTR_NULL(r->p);
    loop_destroy(&r->loop);
    for (size_t i = 0; i < r->n; i++) {
        free(r->ev[i].queue);
        free(r->ev[i].error);
        free(r->ev[i].reasons);
        free(r->ev[i].message);
    }
    free(r);
}

/* Run the loop until n events in all have come (the watchdog turns a hang into a failure). */
static void run_until(struct rec *r, size_t n)
{
    if (r->n >= n) {
        CU_ASSERT_EQUAL_FATAL(r->n, n);
        return;
    }
    r->stop_at = n;
    CU_ASSERT(th_loop_run_stopped(r->loop, WATCHDOG_MS));
    r->stop_at = 0;
    CU_ASSERT_EQUAL_FATAL(r->n, n);
}

/* Run the loop for ms, then check that there are exactly n events. */
static void quiet(struct rec *r, size_t n, int64_t ms)
{
    th_loop_run_for(r->loop, ms);
    CU_ASSERT_EQUAL(r->n, n);
}

static void is_event(const struct rec *r, size_t i, printer_ev_kind_t kind, uint64_t tag,
                     const char *queue)
{
    CU_ASSERT_FATAL(i < r->n);
    const struct ev *e = &r->ev[i];
    if (e->kind != kind)
        fprintf(stderr, "\n  event %zu: kind %d, want %d (error: %s)\n", i, (int)e->kind,
                (int)kind, e->error ? e->error : "none");
    CU_ASSERT_EQUAL(e->kind, kind);
    CU_ASSERT_EQUAL(e->tag, tag);
    ASSERT_STR(e->queue, queue);
}

/* Submit data and wait for SUBMITTED; returns the job id. */
static int submit_ok(struct rec *r, uint64_t tag, const char *queue, const char *format,
                     const void *data, size_t len)
{
    size_t n = r->n;
    CU_ASSERT_EQUAL_FATAL(printer_submit(r->p, tag, queue, format, "rmad-test", data, len), 0);
    run_until(r, n + 1);
    is_event(r, n, PRINTER_EV_SUBMITTED, tag, queue);
    CU_ASSERT(r->ev[n].job_id > 0);
    CU_ASSERT_PTR_NULL(r->ev[n].error);
    return r->ev[n].job_id;
}

/* The capture of job_id holds exactly data. */
static void captured_is(const char *queue, int job_id, const void *data, size_t len)
{
    char *p = job_file(queue, job_id, "prn");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    size_t got_len = 0;
    char *got = th_read_file(p, &got_len);
    if (!got)
        fprintf(stderr, "\n  %s: %s\n", p, strerror(errno));
    CU_ASSERT_PTR_NOT_NULL(got);
    CU_ASSERT_EQUAL(got_len, len);
    CU_ASSERT(got && got_len == len && memcmp(got, data, len) == 0);
    free(got);
    free(p);
}

/* A ZPL label, with bytes a filter would not leave alone after it. */
static const uint8_t zpl[] = "^XA^CI28^FO40,40^A0N,48,48^FDRMA-20417 RESTOCK^FS"
                             "^FO40,110^BCN,80,Y,N,N^FDRMA-20417^FS^XZ\r\n\0\xff\x1b";

/* ---- tests ------------------------------------------------------------------------- */

static void test_zpl_completed(void)
{
    queues_ready();
    struct rec *r = rec_new();
    int before = captured("zebra");
    int job = submit_ok(r, 101, "zebra", PRINTER_FORMAT_RAW, zpl, sizeof(zpl));
    run_until(r, 2);
    is_event(r, 1, PRINTER_EV_COMPLETED, 101, "zebra");
    CU_ASSERT_EQUAL(r->ev[1].job_id, job);
    CU_ASSERT_PTR_NULL(r->ev[1].error);
    captured_is("zebra", job, zpl, sizeof(zpl));
    CU_ASSERT_EQUAL(captured("zebra"), before + 1);
    quiet(r, 2, 300);
    rec_free(r);
}

static cairo_status_t pdf_write(void *closure, const unsigned char *data, unsigned int len)
{
    struct { uint8_t *buf; size_t len; } *out = closure;
    uint8_t *n = realloc(out->buf, out->len + len);
    if (!n)
        return CAIRO_STATUS_NO_MEMORY;
    memcpy(n + out->len, data, len);
    out->buf = n;
    out->len += len;
    return CAIRO_STATUS_SUCCESS;
}

static void test_pdf_completed(void)
{
    queues_ready();
    /*
     * A real one-page 4x6 in PDF, made by cairo like the label renderer's: a frame and
     * bars (no text, so no fontconfig caches outlive the test under LeakSanitizer).
     */
    struct { uint8_t *buf; size_t len; } pdf = { NULL, 0 };
    cairo_surface_t *s = cairo_pdf_surface_create_for_stream(pdf_write, &pdf, 288, 432);
    cairo_t *cr = cairo_create(s);
    cairo_set_line_width(cr, 4);
    cairo_rectangle(cr, 12, 12, 264, 408);
    cairo_stroke(cr);
    for (int i = 0; i < 40; i++)
        cairo_rectangle(cr, 30 + i * 5.5, 60, (i * 7) % 3 + 1, 90);
    cairo_fill(cr);
    cairo_show_page(cr);
    CU_ASSERT_EQUAL(cairo_status(cr), CAIRO_STATUS_SUCCESS);
    cairo_destroy(cr);
    cairo_surface_finish(s);
    CU_ASSERT_EQUAL(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    cairo_surface_destroy(s);
    CU_ASSERT_FATAL(pdf.len > 5 && memcmp(pdf.buf, "%PDF-", 5) == 0);

    struct rec *r = rec_new();
    int job = submit_ok(r, 102, "office", PRINTER_FORMAT_PDF, pdf.buf, pdf.len);
    run_until(r, 2);
    is_event(r, 1, PRINTER_EV_COMPLETED, 102, "office");
    CU_ASSERT_EQUAL(r->ev[1].job_id, job);
    captured_is("office", job, pdf.buf, pdf.len);

    /* And poppler reads what the printer got as the one-page document it is. */
    const char *pdfinfo = tool("pdfinfo");
    if (pdfinfo) {
        char *bin = strdup(pdfinfo), *file = job_file("office", job, "prn");
        th_proc_t pr = th_run_proc((char *const[]){ bin, file, NULL }, NULL);
        CU_ASSERT_EQUAL(pr.status, 0);
        ASSERT_CONTAINS(pr.out, "Pages:           1");
        th_proc_free(&pr);
        free(bin);
        free(file);
    }
    free(pdf.buf);
    rec_free(r);
}

static void test_unknown_queue(void)
{
    queues_ready();
    struct rec *r = rec_new();
    CU_ASSERT_EQUAL(printer_submit(r->p, 103, "nosuch", PRINTER_FORMAT_RAW, "rmad-test", zpl,
                                   sizeof(zpl)), 0);
    run_until(r, 1);
    is_event(r, 0, PRINTER_EV_FAILED, 103, "nosuch");
    CU_ASSERT_EQUAL(r->ev[0].job_id, 0);
    CU_ASSERT(r->ev[0].retry);
    ASSERT_STR(r->ev[0].error, "no CUPS queue 'nosuch'");

    /* The queue appears (an administrator adds it): the same request now prints. */
    CU_ASSERT_EQUAL_FATAL(run((char *const[]){ HARNESS, "add-queue", root, "nosuch", NULL }), 0);
    int job = submit_ok(r, 103, "nosuch", PRINTER_FORMAT_RAW, zpl, sizeof(zpl));
    run_until(r, 3);
    is_event(r, 2, PRINTER_EV_COMPLETED, 103, "nosuch");
    captured_is("nosuch", job, zpl, sizeof(zpl));
    CU_ASSERT_EQUAL(cups_tool("lpadmin", "-x", "nosuch", NULL), 0);
    rec_free(r);
}

/* Jobs cupsd holds for a queue that have not finished ("lpstat -o QUEUE" lines). */
static int pending_jobs(const char *queue)
{
    const char *lpstat = tool("lpstat");
    CU_ASSERT_PTR_NOT_NULL_FATAL(lpstat);
    char *bin = strdup(lpstat);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bin);
    th_proc_t pr = th_run_proc((char *const[]){ bin, "-o", (char *)queue, NULL }, NULL);
    free(bin);
    CU_ASSERT_EQUAL(pr.status, 0);
    int n = 0;
    for (const char *c = pr.out; *c; c++)
        n += *c == '\n';
    th_proc_free(&pr);
    return n;
}

static void test_stopped_and_not_accepting(void)
{
    queues_ready();
    struct rec *r = rec_new();
    int before = captured("zebra");

    /* Stopped (cupsdisable): nothing is submitted, the reason is in the error. */
    CU_ASSERT_EQUAL_FATAL(cups_tool("cupsdisable", "-r", "out of labels", "zebra"), 0);
    CU_ASSERT_EQUAL(printer_submit(r->p, 104, "zebra", PRINTER_FORMAT_RAW, "rmad-test", zpl,
                                   sizeof(zpl)), 0);
    run_until(r, 1);
    is_event(r, 0, PRINTER_EV_FAILED, 104, "zebra");
    CU_ASSERT(r->ev[0].retry);
    CU_ASSERT_EQUAL(r->ev[0].job_id, 0);
    ASSERT_STR(r->ev[0].error, "CUPS queue 'zebra' is stopped: paused (out of labels)");
    CU_ASSERT_EQUAL(pending_jobs("zebra"), 0);

    /* Stopped without a reason: cupsd's own words stand in. */
    CU_ASSERT_EQUAL_FATAL(cups_tool("cupsenable", "zebra", NULL, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(cups_tool("cupsdisable", "zebra", NULL, NULL), 0);
    CU_ASSERT_EQUAL(printer_submit(r->p, 104, "zebra", PRINTER_FORMAT_RAW, "rmad-test", zpl,
                                   sizeof(zpl)), 0);
    run_until(r, 2);
    is_event(r, 1, PRINTER_EV_FAILED, 104, "zebra");
    CU_ASSERT(r->ev[1].retry);
    ASSERT_CONTAINS(r->ev[1].error, "CUPS queue 'zebra' is stopped");
    CU_ASSERT_EQUAL(pending_jobs("zebra"), 0);

    /* Started again (cupsenable): the retry prints. */
    CU_ASSERT_EQUAL_FATAL(cups_tool("cupsenable", "zebra", NULL, NULL), 0);
    int job = submit_ok(r, 104, "zebra", PRINTER_FORMAT_RAW, zpl, sizeof(zpl));
    run_until(r, 4);
    is_event(r, 3, PRINTER_EV_COMPLETED, 104, "zebra");
    CU_ASSERT_EQUAL(r->ev[3].job_id, job);

    /* Not accepting jobs (cupsreject), then accepting again (cupsaccept). */
    CU_ASSERT_EQUAL_FATAL(cups_tool("cupsreject", "-r", "maintenance until 14:00", "zebra"), 0);
    CU_ASSERT_EQUAL(printer_submit(r->p, 105, "zebra", PRINTER_FORMAT_RAW, "rmad-test", zpl,
                                   sizeof(zpl)), 0);
    run_until(r, 5);
    is_event(r, 4, PRINTER_EV_FAILED, 105, "zebra");
    CU_ASSERT(r->ev[4].retry);
    ASSERT_STR(r->ev[4].error,
               "CUPS queue 'zebra' is not accepting jobs: maintenance until 14:00");
    CU_ASSERT_EQUAL_FATAL(cups_tool("cupsaccept", "zebra", NULL, NULL), 0);
    submit_ok(r, 105, "zebra", PRINTER_FORMAT_RAW, zpl, sizeof(zpl));
    run_until(r, 7);
    is_event(r, 6, PRINTER_EV_COMPLETED, 105, "zebra");

    CU_ASSERT_EQUAL(captured("zebra"), before + 2);
    rec_free(r);
}

static void test_stopped_after_submit(void)
{
    queues_ready();
    struct rec *r = rec_new();
    int before = captured("zebra");
    control("zebra", "hold", "");
    int job = submit_ok(r, 106, "zebra", PRINTER_FORMAT_RAW, zpl, sizeof(zpl));
    wait_started("zebra", job);

    /*
     * Stopping the printer takes the job back from the backend: it is pending again
     * and prints only once the printer is started. Until then: no event.
     */
    CU_ASSERT_EQUAL_FATAL(cups_tool("cupsdisable", "zebra", NULL, NULL), 0);
    control("zebra", "hold", NULL);
    quiet(r, 1, QUIET_MS);
    char *prn = job_file("zebra", job, "prn");
    CU_ASSERT_EQUAL(access(prn, F_OK), -1);
    CU_ASSERT_EQUAL(pending_jobs("zebra"), 1);

    CU_ASSERT_EQUAL_FATAL(cups_tool("cupsenable", "zebra", NULL, NULL), 0);
    run_until(r, 2);
    is_event(r, 1, PRINTER_EV_COMPLETED, 106, "zebra");
    CU_ASSERT_EQUAL(r->ev[1].job_id, job);
    quiet(r, 2, 600);
    captured_is("zebra", job, zpl, sizeof(zpl));
    CU_ASSERT_EQUAL(captured("zebra"), before + 1);
    free(prn);
    rec_free(r);
}

static void test_follow_after_restart(void)
{
    queues_ready();
    int before = captured("zebra");
    control("zebra", "hold", "");
    struct rec *r = rec_new();
    int job = submit_ok(r, 107, "zebra", PRINTER_FORMAT_RAW, zpl, sizeof(zpl));
    wait_started("zebra", job);
    rec_free(r); /* the daemon goes away with the job still printing */

    r = rec_new();
    CU_ASSERT_EQUAL(printer_follow(r->p, 107, "zebra", job, NULL, NULL), 0);
    quiet(r, 0, 600);
    control("zebra", "hold", NULL);
    run_until(r, 1);
    is_event(r, 0, PRINTER_EV_COMPLETED, 107, "zebra");
    CU_ASSERT_EQUAL(r->ev[0].job_id, job);
    captured_is("zebra", job, zpl, sizeof(zpl));
    CU_ASSERT_EQUAL(captured("zebra"), before + 1);

    /* A job that completed before the restart is reported at once. */
    CU_ASSERT_EQUAL(printer_follow(r->p, 108, "zebra", job, NULL, NULL), 0);
    run_until(r, 2);
    is_event(r, 1, PRINTER_EV_COMPLETED, 108, "zebra");
    CU_ASSERT_EQUAL(r->ev[1].job_id, job);

    /* A job cupsd does not know (it lost it): nothing of it prints, so it is lost. */
    CU_ASSERT_EQUAL(printer_follow(r->p, 109, "zebra", 99999, NULL, NULL), 0);
    run_until(r, 3);
    is_event(r, 2, PRINTER_EV_FAILED, 109, "zebra");
    CU_ASSERT_EQUAL(r->ev[2].job_id, 99999);
    CU_ASSERT(r->ev[2].retry);
    CU_ASSERT(r->ev[2].lost);
    ASSERT_CONTAINS(r->ev[2].error, "CUPS lost job 99999 on 'zebra'");
    CU_ASSERT_EQUAL(captured("zebra"), before + 1);
    rec_free(r);
}

static void test_aborted_and_cancelled(void)
{
    queues_ready();
    struct rec *r = rec_new();

    /* The printer fails the job and the queue's policy aborts it: worth retrying. */
    control("broken", "fail", "paper jam");
    int job = submit_ok(r, 110, "broken", PRINTER_FORMAT_RAW, zpl, sizeof(zpl));
    run_until(r, 2);
    is_event(r, 1, PRINTER_EV_FAILED, 110, "broken");
    CU_ASSERT_EQUAL(r->ev[1].job_id, job);
    CU_ASSERT(r->ev[1].retry);
    ASSERT_CONTAINS(r->ev[1].error, "CUPS job");
    ASSERT_CONTAINS(r->ev[1].error, "on 'broken' was aborted");
    control("broken", "fail", NULL);

    /* An operator cancels the job: that is a decision, not a fault to retry. */
    control("zebra", "hold", "");
    job = submit_ok(r, 111, "zebra", PRINTER_FORMAT_RAW, zpl, sizeof(zpl));
    wait_started("zebra", job);
    char id[16];
    snprintf(id, sizeof(id), "%d", job);
    CU_ASSERT_EQUAL(cups_tool("cancel", id, NULL, NULL), 0);
    run_until(r, 4);
    is_event(r, 3, PRINTER_EV_FAILED, 111, "zebra");
    CU_ASSERT_EQUAL(r->ev[3].job_id, job);
    CU_ASSERT_FALSE(r->ev[3].retry);
    ASSERT_CONTAINS(r->ev[3].error, "was cancelled");
    control("zebra", "hold", NULL);
    rec_free(r);
}

static void test_cupsd_down(void)
{
    queues_ready();
    struct rec *r = rec_new();
    int before = captured("zebra");

    /* cupsd is down: submitting fails, to be retried. */
    CU_ASSERT_EQUAL_FATAL(harness("stop"), 0);
    CU_ASSERT_EQUAL(printer_submit(r->p, 112, "zebra", PRINTER_FORMAT_RAW, "rmad-test", zpl,
                                   sizeof(zpl)), 0);
    run_until(r, 1);
    is_event(r, 0, PRINTER_EV_FAILED, 112, "zebra");
    CU_ASSERT(r->ev[0].retry);
    CU_ASSERT_EQUAL(r->ev[0].job_id, 0);
    char *want = NULL;
    CU_ASSERT_FATAL(asprintf(&want, "CUPS not reachable at %s/sock: No such file or directory",
                             root) > 0);
    ASSERT_STR(r->ev[0].error, want);
    free(want);

    /* Back: the same printer_t works again. */
    CU_ASSERT_EQUAL_FATAL(harness("start"), 0);
    int job = submit_ok(r, 112, "zebra", PRINTER_FORMAT_RAW, zpl, sizeof(zpl));
    run_until(r, 3);
    is_event(r, 2, PRINTER_EV_COMPLETED, 112, "zebra");
    CU_ASSERT_EQUAL(r->ev[2].job_id, job);

    /* cupsd goes down while a job is followed: it is followed on, not failed. */
    control("zebra", "hold", "");
    job = submit_ok(r, 113, "zebra", PRINTER_FORMAT_RAW, zpl, sizeof(zpl));
    wait_started("zebra", job);
    CU_ASSERT_EQUAL_FATAL(harness("stop"), 0);
    quiet(r, 4, QUIET_MS);
    control("zebra", "hold", NULL);
    CU_ASSERT_EQUAL_FATAL(harness("start"), 0);
    run_until(r, 5);
    is_event(r, 4, PRINTER_EV_COMPLETED, 113, "zebra");
    CU_ASSERT_EQUAL(r->ev[4].job_id, job);
    quiet(r, 5, 600);
    captured_is("zebra", job, zpl, sizeof(zpl));
    CU_ASSERT_EQUAL(captured("zebra"), before + 2);
    rec_free(r);
}

/* printer_destroy on another thread, so that a hang fails the test instead of the run. */
static void *destroy_main(void *arg)
{
    printer_destroy(arg);
    return NULL;
}

static void destroy_within_deadline(printer_t **p)
{
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, destroy_main, p), 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WATCHDOG_MS / 1000;
    int rc = pthread_timedjoin_np(th, NULL, &ts);
    if (rc != 0)
        fprintf(stderr, "\n  printer_destroy did not return: %s\n", strerror(rc));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NULL(*p);
}

static void test_destroy_in_flight(void)
{
    queues_ready();

    /* Submissions queued, one job in the backend, one followed: all dropped. */
    control("zebra", "hold", "");
    struct rec *r = rec_new();
    int job = submit_ok(r, 114, "zebra", PRINTER_FORMAT_RAW, zpl, sizeof(zpl));
    for (uint64_t tag = 115; tag < 120; tag++)
        CU_ASSERT_EQUAL(printer_submit(r->p, tag, "zebra", PRINTER_FORMAT_RAW, "rmad-test", zpl,
                                       sizeof(zpl)), 0);
    CU_ASSERT_EQUAL(printer_follow(r->p, 120, "zebra", job, NULL, NULL), 0);
    destroy_within_deadline(&r->p);
    quiet(r, 1, 300); /* nothing is delivered after destroy */
    rec_free(r);
    CU_ASSERT_EQUAL(cups_tool("cancel", "-a", "zebra", NULL), 0);
    control("zebra", "hold", NULL);

    /*
     * A server that accepts the connection and never answers: the worker is inside
     * cupsDoRequest when destroy comes, and must give up at once, not after the
     * request timeout.
     */
    r = rec_new();
    char *hung = NULL;
    CU_ASSERT_FATAL(asprintf(&hung, "%s/hung.sock", root) > 0);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(lfd >= 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", hung);
    CU_ASSERT_FATAL(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CU_ASSERT_FATAL(listen(lfd, 4) == 0);
    rec_use_server(r, hung);
    CU_ASSERT_EQUAL(printer_submit(r->p, 121, "zebra", PRINTER_FORMAT_RAW, "rmad-test", zpl,
                                   sizeof(zpl)), 0);
    struct pollfd pfd = { .fd = lfd, .events = POLLIN };
    CU_ASSERT_EQUAL(poll(&pfd, 1, WATCHDOG_MS), 1); /* the worker has connected */
    destroy_within_deadline(&r->p);
    quiet(r, 0, 300);
    close(lfd);
    (void)unlink(hung);
    free(hung);

    /*
     * No server at all, jobs followed: they stay followed (and count against the
     * limit) however long cupsd is away; destroy drops them.
     */
    char *none = NULL;
    CU_ASSERT_FATAL(asprintf(&none, "%s/none.sock", root) > 0);
    rec_use_server(r, none);
    free(none);
    for (int i = 0; i < PRINTER_MAX_REQUESTS; i++)
        CU_ASSERT_EQUAL_FATAL(printer_follow(r->p, 200 + (uint64_t)i, "zebra", 1 + i, NULL, NULL), 0);
    CU_ASSERT_EQUAL(printer_follow(r->p, 9999, "zebra", 9999, NULL, NULL), -EAGAIN);
    CU_ASSERT_EQUAL(printer_submit(r->p, 9999, "zebra", PRINTER_FORMAT_RAW, "rmad-test", zpl,
                                   sizeof(zpl)), -EAGAIN);
    quiet(r, 0, 600);
    destroy_within_deadline(&r->p);
    rec_free(r);
}

/* Submit to a printer on server and return the FAILED event's error (malloc'd). */
static char *unreachable_error(const char *server)
{
    struct rec *r = rec_new();
    rec_use_server(r, server);
    CU_ASSERT_EQUAL(printer_submit(r->p, 130, "zebra", PRINTER_FORMAT_RAW, "rmad-test", zpl,
                                   sizeof(zpl)), 0);
    run_until(r, 1);
    is_event(r, 0, PRINTER_EV_FAILED, 130, "zebra");
    CU_ASSERT(r->ev[0].retry);
    char *e = r->ev[0].error ? strdup(r->ev[0].error) : NULL;
    rec_free(r);
    return e;
}

/*
 * Jobs have an identity: SUBMITTED carries the job-uuid, and a follow whose uuid or
 * name is not the job's under that id reports it lost instead of taking another job's
 * completion for its own.
 */
static void test_job_identity(void)
{
    queues_ready();
    struct rec *r = rec_new();
    int job = submit_ok(r, 140, "zebra", PRINTER_FORMAT_RAW, zpl, sizeof(zpl));
    char uuid[PRINTER_UUID_MAX];
    snprintf(uuid, sizeof(uuid), "%s", r->ev[0].uuid);
    CU_ASSERT_EQUAL(strncmp(uuid, "urn:uuid:", 9), 0);
    run_until(r, 2);
    is_event(r, 1, PRINTER_EV_COMPLETED, 140, "zebra");

    /* The same id, the right identity: completed. */
    CU_ASSERT_EQUAL(printer_follow(r->p, 141, "zebra", job, uuid, "rmad-test"), 0);
    run_until(r, 3);
    is_event(r, 2, PRINTER_EV_COMPLETED, 141, "zebra");

    /* The same id, another uuid or another name: not ours. */
    CU_ASSERT_EQUAL(printer_follow(r->p, 142, "zebra", job,
                                   "urn:uuid:00000000-0000-0000-0000-000000000000", NULL), 0);
    run_until(r, 4);
    is_event(r, 3, PRINTER_EV_FAILED, 142, "zebra");
    CU_ASSERT(r->ev[3].lost);
    ASSERT_CONTAINS(r->ev[3].error, "that id is now another job");
    CU_ASSERT_EQUAL(printer_follow(r->p, 143, "zebra", job, NULL, "rmad-label-1-1"), 0);
    run_until(r, 5);
    is_event(r, 4, PRINTER_EV_FAILED, 143, "zebra");
    CU_ASSERT(r->ev[4].lost);
    rec_free(r);
}

/* A job searched by name (after a restart): found and followed, or reported lost. */
static void test_find_by_name(void)
{
    queues_ready();
    int before = captured("zebra");
    control("zebra", "hold", "");
    struct rec *r = rec_new();
    CU_ASSERT_EQUAL_FATAL(printer_submit(r->p, 150, "zebra", PRINTER_FORMAT_RAW,
                                         "rmad-label-150-1", zpl, sizeof(zpl)), 0);
    run_until(r, 1);
    is_event(r, 0, PRINTER_EV_SUBMITTED, 150, "zebra");
    int job = r->ev[0].job_id;
    wait_started("zebra", job);
    rec_free(r); /* the daemon stops before it could record the job id */

    r = rec_new();
    CU_ASSERT_EQUAL(printer_find(r->p, 150, "zebra", "rmad-label-150-1"), 0);
    run_until(r, 1);
    is_event(r, 0, PRINTER_EV_SUBMITTED, 150, "zebra");
    CU_ASSERT_EQUAL(r->ev[0].job_id, job);
    CU_ASSERT_EQUAL(strncmp(r->ev[0].uuid, "urn:uuid:", 9), 0);
    control("zebra", "hold", NULL);
    run_until(r, 2);
    is_event(r, 1, PRINTER_EV_COMPLETED, 150, "zebra");
    CU_ASSERT_EQUAL(captured("zebra"), before + 1);

    /* A name CUPS never saw: lost, i.e. safe to send. */
    CU_ASSERT_EQUAL(printer_find(r->p, 151, "zebra", "rmad-label-150-2"), 0);
    run_until(r, 3);
    is_event(r, 2, PRINTER_EV_FAILED, 151, "zebra");
    CU_ASSERT(r->ev[2].lost);
    CU_ASSERT(r->ev[2].retry);
    ASSERT_CONTAINS(r->ev[2].error, "CUPS has no job rmad-label-150-2 on 'zebra'");

    /* A job created but never given its document is cancelled, and counts as lost. */
    cups_dest_t *dest = cupsGetNamedDest(CUPS_HTTP_DEFAULT, "zebra", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dest);
    cups_dinfo_t *info = cupsCopyDestInfo(CUPS_HTTP_DEFAULT, dest);
    int empty = 0;
    CU_ASSERT_EQUAL(cupsCreateDestJob(CUPS_HTTP_DEFAULT, dest, info, &empty, "rmad-label-152-1",
                                      0, NULL), IPP_STATUS_OK);
    cupsFreeDestInfo(info);
    cupsFreeDests(1, dest);
    CU_ASSERT_FATAL(empty > 0);
    CU_ASSERT_EQUAL(printer_find(r->p, 152, "zebra", "rmad-label-152-1"), 0);
    run_until(r, 4);
    is_event(r, 3, PRINTER_EV_FAILED, 152, "zebra");
    CU_ASSERT(r->ev[3].lost);
    cups_job_t *jobs = NULL;
    int n = cupsGetJobs2(CUPS_HTTP_DEFAULT, &jobs, "zebra", 0, CUPS_WHICHJOBS_ALL);
    bool cancelled = false;
    for (int i = 0; i < n; i++)
        if (jobs[i].id == empty)
            cancelled = jobs[i].state == IPP_JSTATE_CANCELED;
    cupsFreeJobs(n, jobs);
    CU_ASSERT(cancelled);
    rec_free(r);
}

/* Wait for the next STATE event of queue; returns its index. */
static size_t next_state(struct rec *r, size_t from)
{
    for (;;) {
        for (size_t i = from; i < r->n; i++)
            if (r->ev[i].kind == PRINTER_EV_STATE)
                return i;
        size_t n = r->n;
        run_until(r, n + 1);
        from = n;
    }
}

/*
 * A watched queue reports its health on each change: ready, stopped by an operator
 * (paused, with the message), out of media as the backend says (media-empty-error),
 * and ready again once the printer is fixed and started.
 */
static void test_health(void)
{
    queues_ready();
    struct rec *r = rec_new();
    CU_ASSERT_EQUAL(printer_watch(r->p, "zebra"), 0);
    CU_ASSERT_EQUAL(printer_watch(r->p, "zebra"), 0); /* once is once */
    size_t i = next_state(r, 0);
    ASSERT_STR(r->ev[i].queue, "zebra");
    CU_ASSERT_EQUAL(r->ev[i].condition, PRINTER_READY);
    quiet(r, i + 1, 2500); /* no change, no event */

    CU_ASSERT_EQUAL(cups_tool("cupsdisable", "-r", "Out of labels", "zebra"), 0);
    i = next_state(r, i + 1);
    CU_ASSERT_EQUAL(r->ev[i].condition, PRINTER_STOPPED);
    ASSERT_CONTAINS(r->ev[i].reasons, "paused");
    ASSERT_STR(r->ev[i].message, "Out of labels");
    CU_ASSERT_EQUAL(cups_tool("cupsenable", "zebra", NULL, NULL), 0);
    i = next_state(r, i + 1);
    CU_ASSERT_EQUAL(r->ev[i].condition, PRINTER_READY);

    /* The printer runs out of labels while printing. */
    control("zebra", "media-empty", "");
    size_t n = r->n;
    CU_ASSERT_EQUAL_FATAL(printer_submit(r->p, 160, "zebra", PRINTER_FORMAT_RAW, "rmad-test",
                                         zpl, sizeof(zpl)), 0);
    for (;;) {
        i = next_state(r, n);
        if (r->ev[i].condition == PRINTER_FAULT && strstr(r->ev[i].reasons, "media empty"))
            break;
        n = i + 1;
    }
    /* A new job is refused while the printer is stopped, saying why. */
    n = r->n;
    CU_ASSERT_EQUAL_FATAL(printer_submit(r->p, 161, "zebra", PRINTER_FORMAT_RAW, "rmad-test",
                                         zpl, sizeof(zpl)), 0);
    size_t k = n;
    for (;;) {
        while (k < r->n && !(r->ev[k].kind == PRINTER_EV_FAILED && r->ev[k].tag == 161))
            k++;
        if (k < r->n)
            break;
        run_until(r, r->n + 1);
    }
    ASSERT_CONTAINS(r->ev[k].error, "is not printing: media empty");
    CU_ASSERT(r->ev[k].retry);

    /* Labels loaded: cupsd's retry of the waiting job prints it, and the reason goes. */
    control("zebra", "media-empty", NULL);
    bool completed = false, ready = false;
    for (size_t j = n; !(completed && ready);) {
        for (; j < r->n; j++) {
            if (r->ev[j].kind == PRINTER_EV_COMPLETED && r->ev[j].tag == 160)
                completed = true;
            if (r->ev[j].kind == PRINTER_EV_STATE && r->ev[j].condition == PRINTER_READY &&
                !strstr(r->ev[j].reasons, "media"))
                ready = true;
        }
        if (!(completed && ready))
            run_until(r, r->n + 1);
    }
    rec_free(r);
}

/* printer-state-reasons in words: severity suffixes and CUPS' own reasons go. */
static void test_reason_words(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "", "" },
        { "none", "" },
        { "media-empty-error", "media empty" },
        { "media-empty-error,paused", "media empty, paused" },
        { "media-jam-error,door-open-warning,toner-low-report", "media jam, door open, toner low" },
        { "offline-report", "offline" },
        { "cups-insecure-filter-warning,marker-supply-empty-error", "ribbon or ink empty" },
        { "media-empty-error,media-empty-report", "media empty" },
        { "input-tray-missing", "input tray missing" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *w = printer_reasons_words(cases[i].in);
        ASSERT_STR(w, cases[i].out);
        free(w);
    }
    ASSERT_STR(printer_condition_name(PRINTER_STOPPED), "stopped");
    char name[PRINTER_JOB_NAME_MAX];
    printer_job_name(name, 12, 3);
    ASSERT_STR(name, "rmad-label-12-3");
    CU_ASSERT_PTR_NULL(strchr(name, ' '));
}

static void test_unreachable_messages(void)
{
    /* No socket: cupsd is not running. */
    char *path = NULL, *want = NULL, *got;
    CU_ASSERT_FATAL(asprintf(&path, "%s/gone.sock", root) > 0);
    got = unreachable_error(path);
    CU_ASSERT_FATAL(asprintf(&want, "CUPS not reachable at %s: No such file or directory",
                             path) > 0);
    ASSERT_STR(got, want);
    free(got);
    free(want);

    /* A socket nobody listens on any more: cupsd died. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(fd >= 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    close(fd);
    got = unreachable_error(path);
    CU_ASSERT_FATAL(asprintf(&want, "CUPS not reachable at %s: Connection refused", path) > 0);
    ASSERT_STR(got, want);
    free(got);
    free(want);
    (void)unlink(path);
    free(path);

    /* A TCP server: named with its port. */
    got = unreachable_error("127.0.0.1:1");
    ASSERT_CONTAINS(got, "CUPS not reachable at 127.0.0.1:1: ");
    free(got);
}

static void test_arguments(void)
{
    CU_ASSERT_STRING_EQUAL(PRINTER_FORMAT_RAW, CUPS_FORMAT_RAW);
    CU_ASSERT_STRING_EQUAL(PRINTER_FORMAT_PDF, CUPS_FORMAT_PDF);

    loop_t *loop = loop_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    errno = 0;
    CU_ASSERT_PTR_NULL(printer_new(NULL, on_event, NULL));
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_PTR_NULL(printer_new(loop, NULL, NULL));
    CU_ASSERT_EQUAL(errno, EINVAL);

    struct rec *r = rec_new();
    char long_name[130];
    memset(long_name, 'q', 128);
    long_name[128] = '\0';
    static const char *const bad[] = { "", "two words", "a/b", "a#b", "tab\there", "q?", "q'" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(printer_submit(r->p, 1, bad[i], PRINTER_FORMAT_RAW, "rmad-test", zpl, 3), -EINVAL);
        CU_ASSERT_EQUAL(printer_follow(r->p, 1, bad[i], 5, NULL, NULL), -EINVAL);
    }
    CU_ASSERT_EQUAL(printer_submit(r->p, 1, long_name, PRINTER_FORMAT_RAW, "rmad-test", zpl, 3), -EINVAL);
    CU_ASSERT_EQUAL(printer_submit(r->p, 1, NULL, PRINTER_FORMAT_RAW, "rmad-test", zpl, 3), -EINVAL);
    CU_ASSERT_EQUAL(printer_submit(r->p, 1, "zebra", NULL, "rmad-test", zpl, 3), -EINVAL);
    CU_ASSERT_EQUAL(printer_submit(r->p, 1, "zebra", "", "rmad-test", zpl, 3), -EINVAL);
    CU_ASSERT_EQUAL(printer_submit(r->p, 1, "zebra", PRINTER_FORMAT_RAW, "rmad-test", NULL, 3), -EINVAL);
    CU_ASSERT_EQUAL(printer_submit(r->p, 1, "zebra", PRINTER_FORMAT_RAW, "rmad-test", zpl, 0), -EINVAL);
    CU_ASSERT_EQUAL(printer_submit(NULL, 1, "zebra", PRINTER_FORMAT_RAW, "rmad-test", zpl, 3), -EINVAL);
    CU_ASSERT_EQUAL(printer_follow(r->p, 1, "zebra", 0, NULL, NULL), -EINVAL);
    CU_ASSERT_EQUAL(printer_follow(r->p, 1, "zebra", -3, NULL, NULL), -EINVAL);
    CU_ASSERT_EQUAL(printer_follow(NULL, 1, "zebra", 3, NULL, NULL), -EINVAL);
    /* Job names cupsd handles: no space (see printer_job_name), none empty. */
    CU_ASSERT_EQUAL(printer_submit(r->p, 1, "zebra", PRINTER_FORMAT_RAW, "rmad receipt 1", zpl,
                                   3), -EINVAL);
    CU_ASSERT_EQUAL(printer_submit(r->p, 1, "zebra", PRINTER_FORMAT_RAW, "", zpl, 3), -EINVAL);
    CU_ASSERT_EQUAL(printer_submit(r->p, 1, "zebra", PRINTER_FORMAT_RAW, NULL, zpl, 3), -EINVAL);
    CU_ASSERT_EQUAL(printer_find(r->p, 1, "zebra", "a b"), -EINVAL);
    CU_ASSERT_EQUAL(printer_find(r->p, 1, "zebra", NULL), -EINVAL);
    CU_ASSERT_EQUAL(printer_follow(r->p, 1, "zebra", 3, NULL, "a b"), -EINVAL);
    CU_ASSERT_EQUAL(printer_watch(r->p, "a b"), -EINVAL);
    long_name[127] = '\0'; /* 127 bytes is a valid name: it just does not exist */
    CU_ASSERT_EQUAL(printer_submit(r->p, 2, long_name, PRINTER_FORMAT_RAW, "rmad-test", zpl, 3), 0);
    run_until(r, 1);
    CU_ASSERT_EQUAL(r->ev[0].kind, PRINTER_EV_FAILED);
    CU_ASSERT(r->ev[0].retry);
    rec_free(r);

    printer_destroy(NULL);
    printer_t *none = NULL;
    printer_destroy(&none);
    loop_destroy(&loop);
}

int suite_printer(void)
{
    CU_pSuite s = CU_add_suite("printer", suite_init, suite_clean);
    if (!s || !CU_add_test(s, "ZPL raw job: completed, bytes captured", test_zpl_completed) ||
        !CU_add_test(s, "PDF job: completed, a PDF captured", test_pdf_completed) ||
        !CU_add_test(s, "unknown queue: failed, retry", test_unknown_queue) ||
        !CU_add_test(s, "stopped / not accepting: failed, retry, nothing queued",
                     test_stopped_and_not_accepting) ||
        !CU_add_test(s, "printer stopped after submit: followed, completed once",
                     test_stopped_after_submit) ||
        !CU_add_test(s, "follow a job after a restart", test_follow_after_restart) ||
        !CU_add_test(s, "aborted (retry) and cancelled (no retry)", test_aborted_and_cancelled) ||
        !CU_add_test(s, "cupsd down and back", test_cupsd_down) ||
        !CU_add_test(s, "destroy with requests in flight, hung server", test_destroy_in_flight) ||
        !CU_add_test(s, "unreachable: no socket, refused, TCP", test_unreachable_messages) ||
        !CU_add_test(s, "job identity: uuid and name, never another job", test_job_identity) ||
        !CU_add_test(s, "find a job by name: found, never sent, empty", test_find_by_name) ||
        !CU_add_test(s, "queue health: paused, media empty, ready again", test_health) ||
        !CU_add_test(s, "state reasons in words; job names", test_reason_words) ||
        !CU_add_test(s, "argument checks", test_arguments))
        return -1;
    return 0;
}
