/*
 * Serial scanner input (drivers/serial.c, drivers/serial.h) with the real
 * libserialport, and umockdev standing in for the hardware.
 *
 * The device is tests/fixtures/serial/serial-scanner.umockdev: an FTDI USB-serial
 * adapter (0403:6001) as /dev/ttyUSB0, with its USB parents so that libserialport
 * finds the USB attributes (VID:PID, manufacturer, serial number). umockdev's preload
 * library redirects /sys and /dev into a testbed and backs the tty with a pty; the
 * test holds the pty's master end and writes the scanner's bytes into it.
 * libserialport also needs the modem-control ioctls, which a pty lacks: the test
 * preload $(B)/tiocm-shim.so (tests/shim/tiocm-shim.c) answers those.
 *
 * Both libraries must be preloaded when the process starts. So suite "serial", run
 * normally, holds one test that runs the test runner again as
 *
 *     LD_PRELOAD="$RMAD_BUILD/tiocm-shim.so libumockdev-preload.so.0" \
 *     RMAD_SERIAL_UMOCKDEV=1 $RMAD_BUILD/test_runner serial
 *
 * and checks that the child ran every umockdev test and all passed; with that
 * variable set, suite "serial" registers the umockdev tests instead. Under
 * RMAD_VALGRIND=1 (make valgrind) the child runs under valgrind as well.
 *
 * Unplugging destroys the testbed, which closes the pty master and so hangs up the
 * driver's tty as unplugging a USB adapter does; an empty testbed takes its place,
 * and replugging adds the device to that one.
 *
 * Like tests/test_tcp.c, a test writes, then runs the loop until the events it expects
 * have come (a watchdog turns a missing event into a failure, not a hang), then pumps
 * once more to check that nothing else came. Nothing asserts how long anything took;
 * tests that are not about the end-of-line timeout set eol_ms high, so that a slow
 * machine cannot split a line into a timeout.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <umockdev.h>
#include <unistd.h>

#include "core/config.h"
#include "drivers/scanner.h"
#include "drivers/serial.h"
#include "tests/helpers.h"
#include "tests/suites.h"

#define FIXTURE_DEVICE "tests/fixtures/serial/serial-scanner.umockdev"
#define FIXTURE_SCRIPT "tests/fixtures/serial/serial-scanner.script"
#define TTY "/dev/ttyUSB0"
#define TTY_ID "serial:/dev/ttyUSB0"
#define CHILD_ENV "RMAD_SERIAL_UMOCKDEV"

#define WATCHDOG_MS 20000
#define PUMP_MS 30
#define MAX_EVENTS 160
/* Tests that are not about the line timeout: no line is ever cut by a slow machine. */
#define NO_TIMEOUT ",eol_ms=60000"

/* ---- recording events ----------------------------------------------------------- */

/* A deep copy of one event: the driver's pointers die with the callback. */
struct ev {
    scanner_ev_kind_t kind;
    char *id;
    char *reason;
    uint8_t *raw;
    size_t raw_len;
    char *text;             /* SCAN: the scan's text */
    char *scan_scanner;     /* SCAN: scan->scanner */
    size_t clients;         /* scanner_clients() inside the callback */
    char *port;             /* serial_scanner_port() inside the callback */
};

struct rec {
    UMockdevTestbed *tb;
    config_t *cfg;
    loop_t *loop;
    scanner_t *s;
    struct ev ev[MAX_EVENTS];
    size_t n;
    size_t stop_at;         /* loop_stop() when n reaches it */
    bool answer;            /* scanner_feedback() every scan: REJECT for SN-BAD, else OK */
    int feedback_rc;
};

static void on_event(const scanner_event_t *e, void *data)
{
    struct rec *r = data;
    CU_ASSERT_PTR_NOT_NULL(e->scanner_id);
    CU_ASSERT_PTR_NULL(e->peer);
    if (r->n == MAX_EVENTS) {
        CU_FAIL("too many events");
        loop_stop(r->loop);
        return;
    }
    struct ev *c = &r->ev[r->n++];
    c->kind = e->kind;
    c->id = th_strdup(e->scanner_id);
    c->reason = th_strdup(e->reason);
    c->raw = (uint8_t *)th_memdup(e->raw, e->raw_len);
    c->raw_len = e->raw_len;
    c->clients = scanner_clients(r->s);
    c->port = th_strdup(serial_scanner_port(r->s));
    if (e->scan) {
        c->text = th_memdup(e->scan->text, e->scan->len);
        c->scan_scanner = th_strdup(e->scan->scanner);
    }
    switch (e->kind) {
    case SCANNER_EV_SCAN:
        CU_ASSERT_PTR_NOT_NULL(e->scan);
        CU_ASSERT_PTR_NULL(e->reason);
        break;
    case SCANNER_EV_REJECTED:
        CU_ASSERT_PTR_NULL(e->scan);
        CU_ASSERT_PTR_NOT_NULL(e->reason);
        CU_ASSERT_PTR_NOT_NULL(e->raw);
        break;
    case SCANNER_EV_CONNECTED:
        CU_ASSERT_PTR_NULL(e->scan);
        CU_ASSERT_PTR_NULL(e->reason);
        break;
    case SCANNER_EV_DISCONNECTED:
        CU_ASSERT_PTR_NULL(e->scan);
        CU_ASSERT_PTR_NOT_NULL(e->reason);
        break;
    case SCANNER_EV_REFUSED:
        CU_ASSERT_PTR_NULL(e->scan);
        CU_ASSERT(e->count >= 1);
        break;
    case SCANNER_EV_OVER_BUDGET:
        CU_ASSERT_PTR_NULL(e->scan);
        CU_ASSERT((e->count == 0) == (e->reason != NULL));
        break;
    }
    if (r->answer && e->kind == SCANNER_EV_SCAN)
        r->feedback_rc = scanner_feedback(r->s, e->scanner_id,
                                          strcmp(e->scan->text, "SN-BAD") == 0
                                              ? SCANNER_REPLY_REJECT
                                              : SCANNER_REPLY_OK,
                                          "text for screens: a serial port gets its bytes");
    if (r->n == r->stop_at)
        loop_stop(r->loop);
}

/* Run the loop until n events in all have been recorded. */
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

/* Let the driver do what is due now. */
static void pump(struct rec *r)
{
    th_loop_run_for(r->loop, PUMP_MS);
}

/* Pump, then check that exactly n events came in all. */
static void settle(struct rec *r, size_t n)
{
    pump(r);
    CU_ASSERT_EQUAL(r->n, n);
}

/* ---- the device ------------------------------------------------------------------ */

/* Plug the scanner into tb: /dev/ttyUSB0 and its sysfs, backed by a fresh pty. */
static void plug(UMockdevTestbed *tb)
{
    GError *err = NULL;
    gboolean ok = umockdev_testbed_add_from_file(tb, FIXTURE_DEVICE, &err);
    if (!ok) {
        fprintf(stderr, "\n  %s: %s\n", FIXTURE_DEVICE, err ? err->message : "?");
        g_clear_error(&err);
    }
    CU_ASSERT_FATAL(ok);
}

static UMockdevTestbed *bed_new(bool plugged)
{
    UMockdevTestbed *tb = umockdev_testbed_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(tb);
    /* Without the preload, /dev and /sys would be the machine's own. */
    CU_ASSERT_FATAL(umockdev_in_mock_environment());
    if (plugged)
        plug(tb);
    return tb;
}

/*
 * Destroy a testbed and the pty behind its tty, so that the tty hangs up as an
 * unplugged adapter does. umockdev 0.17 leaves a tty's pty master open when its
 * testbed goes (later versions close it): a descriptor that is still the same pty
 * master afterwards (same pty number, asked of the kernel) is closed here.
 */
static void bed_destroy(UMockdevTestbed *tb)
{
    int master = umockdev_testbed_get_dev_fd(tb, TTY);
    unsigned before = 0, after = 0;
    bool had = master >= 0 && syscall(SYS_ioctl, master, TIOCGPTN, &before) == 0;
    g_object_unref(tb);
    if (had && syscall(SYS_ioctl, master, TIOCGPTN, &after) == 0 && after == before)
        CU_ASSERT_EQUAL(close(master), 0);
}

/*
 * Unplug: the testbed and its pty go. The testbed's destructor also unsets
 * UMOCKDEV_DIR, so the empty successor is made first and pointed to again: /dev and
 * /sys are never the machine's own meanwhile.
 */
static void unplug(struct rec *r)
{
    UMockdevTestbed *empty = umockdev_testbed_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(empty);
    gchar *root = umockdev_testbed_get_root_dir(empty);
    bed_destroy(r->tb);
    CU_ASSERT_EQUAL_FATAL(setenv("UMOCKDEV_DIR", root, 1), 0);
    g_free(root);
    r->tb = empty;
    CU_ASSERT_FATAL(umockdev_in_mock_environment());
}

/* Write bytes as the scanner, into the pty master (the testbed's; not ours to close). */
static void send_bytes(struct rec *r, const void *p, size_t n)
{
    int fd = umockdev_testbed_get_dev_fd(r->tb, TTY);
    CU_ASSERT_FATAL(fd >= 0);
    const char *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        CU_ASSERT_FATAL(w > 0);
        b += w;
        n -= (size_t)w;
    }
}

static void send_str(struct rec *r, const char *s)
{
    send_bytes(r, s, strlen(s));
}

static void sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/*
 * Bytes waiting to be read on the tty, seen through the test's own descriptor. Asked
 * of the kernel directly: umockdev's preload answers only termios requests on an
 * emulated tty (ENOTTY for FIONREAD).
 */
static int queued(int fd)
{
    int q = -1;
    CU_ASSERT_EQUAL_FATAL(syscall(SYS_ioctl, fd, FIONREAD, &q), 0);
    return q;
}

/*
 * Run the loop until the driver has read the want bytes just written. The pty hands
 * bytes over asynchronously, so first wait (without running the loop, so nothing
 * reads) until they are all queued on the tty, then run the loop until none are.
 */
static void wait_consumed(struct rec *r, int want)
{
    int fd = open(TTY, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    CU_ASSERT_FATAL(fd >= 0);
    int64_t until = loop_now_ms() + WATCHDOG_MS;
    while (queued(fd) < want && loop_now_ms() < until)
        sleep_ms(5);
    CU_ASSERT_FATAL(queued(fd) >= want);
    while (queued(fd) > 0 && loop_now_ms() < until)
        pump(r);
    CU_ASSERT_EQUAL_FATAL(queued(fd), 0);
    CU_ASSERT_EQUAL(close(fd), 0);
}

/*
 * After wait_consumed(), run the loop until more than eol_ms of silence has passed on
 * the loop's clock, so the driver's end-of-line timer has run (it is the nearest
 * timer, so the loop wakes for it). This waits for a state that has no event of its
 * own; it asserts nothing about time.
 */
static void wait_silence(struct rec *r, int64_t eol_ms)
{
    int64_t from = loop_now_ms();
    while (loop_now_ms() - from <= 2 * eol_ms)
        pump(r);
}

/* ---- the scanner ----------------------------------------------------------------- */

/*
 * A scanner from a real config line, `scanner = SPEC`, parsed by config_parse (the
 * [daemon] paths are never touched). max_len 0 = default.
 */
static struct rec *rec_new(const char *spec, size_t max_len, bool plugged)
{
    struct rec *r = calloc(1, sizeof(*r));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    r->tb = bed_new(plugged);
    char *text = NULL;
    CU_ASSERT_FATAL(asprintf(&text,
                             "[daemon]\n"
                             "database = /nonexistent/rmad.db\n"
                             "policies = /nonexistent/policies\n"
                             "pub = tcp://127.0.0.1:7781\n"
                             "replay = tcp://127.0.0.1:7782\n"
                             "control = ipc:///nonexistent/rmad.ctl\n"
                             "[station dock1]\n"
                             "scanner = %s\n", spec) > 0);
    char *err = NULL;
    int rc = config_parse(text, strlen(text), "serial-test.conf", "/", &r->cfg, &err);
    if (rc != 0)
        fprintf(stderr, "\n  %s\n", err ? err : "?");
    free(err);
    free(text);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    const config_scanner_t *sc = &r->cfg->stations[0].scanners[0];
    CU_ASSERT_EQUAL_FATAL(sc->kind, CONFIG_SCANNER_SERIAL);

    r->loop = loop_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->loop);
    scan_limits_t lim = { .max_len = max_len };
    r->s = scanner_new_serial(r->loop, sc, &lim, on_event, r, &err);
    if (!r->s)
        fprintf(stderr, "\n  %s\n", err ? err : "?");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->s);
    CU_ASSERT_PTR_NULL(err);
    ASSERT_STR(scanner_spec(r->s), spec);
    /* Nothing happens before the loop runs. */
    CU_ASSERT_EQUAL(scanner_clients(r->s), 0);
    CU_ASSERT_PTR_NULL(serial_scanner_port(r->s));
    CU_ASSERT_EQUAL(r->n, 0);
    return r;
}

static void rec_free(struct rec *r)
{
    scanner_destroy(&r->s);
    CU_ASSERT_PTR_NULL(r->s);
    loop_destroy(&r->loop);
    config_destroy(&r->cfg);
    bed_destroy(r->tb);
    for (size_t i = 0; i < r->n; i++) {
        struct ev *c = &r->ev[i];
        free(c->id);
        free(c->reason);
        free(c->raw);
        free(c->text);
        free(c->scan_scanner);
        free(c->port);
    }
    free(r);
}

/* ---- checks -------------------------------------------------------------------- */

static void is_scan(const struct rec *r, size_t i, const char *text)
{
    CU_ASSERT_FATAL(i < r->n);
    const struct ev *e = &r->ev[i];
    CU_ASSERT_EQUAL(e->kind, SCANNER_EV_SCAN);
    ASSERT_STR(e->text, text);
    ASSERT_STR(e->id, TTY_ID);
    ASSERT_STR(e->scan_scanner, TTY_ID);
    /* raw is what came over the line, without the terminator. */
    CU_ASSERT_EQUAL(e->raw_len, strlen(text));
    CU_ASSERT(memcmp(e->raw, text, e->raw_len) == 0);
}

static void is_rejected(const struct rec *r, size_t i, const void *raw, size_t raw_len,
                        const char *reason_prefix)
{
    CU_ASSERT_FATAL(i < r->n);
    const struct ev *e = &r->ev[i];
    CU_ASSERT_EQUAL(e->kind, SCANNER_EV_REJECTED);
    ASSERT_STR(e->id, TTY_ID);
    CU_ASSERT_EQUAL(e->raw_len, raw_len);
    if (e->raw_len == raw_len)
        CU_ASSERT(memcmp(e->raw, raw, raw_len) == 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e->reason);
    if (strncmp(e->reason, reason_prefix, strlen(reason_prefix)) != 0)
        fprintf(stderr, "\n  reason \"%s\", want \"%s...\"\n", e->reason, reason_prefix);
    CU_ASSERT_NSTRING_EQUAL(e->reason, reason_prefix, strlen(reason_prefix));
}

static void is_connected(const struct rec *r, size_t i)
{
    CU_ASSERT_FATAL(i < r->n);
    const struct ev *e = &r->ev[i];
    CU_ASSERT_EQUAL(e->kind, SCANNER_EV_CONNECTED);
    ASSERT_STR(e->id, TTY_ID);
    CU_ASSERT_EQUAL(e->clients, 1);
    ASSERT_STR(e->port, TTY);
}

static void is_disconnected(const struct rec *r, size_t i, const char *id, const char *reason)
{
    CU_ASSERT_FATAL(i < r->n);
    const struct ev *e = &r->ev[i];
    CU_ASSERT_EQUAL(e->kind, SCANNER_EV_DISCONNECTED);
    ASSERT_STR(e->id, id);
    ASSERT_STR(e->reason, reason);
    CU_ASSERT_EQUAL(e->clients, 0);
    CU_ASSERT_PTR_NULL(e->port);
}

/* A scanner on the plugged-in fixture, connected (event 0). */
static struct rec *rec_connected(const char *spec, size_t max_len)
{
    struct rec *r = rec_new(spec, max_len, true);
    run_until(r, 1);
    is_connected(r, 0);
    CU_ASSERT_EQUAL(scanner_clients(r->s), 1);
    ASSERT_STR(serial_scanner_port(r->s), TTY);
    return r;
}

/* ---- tests under umockdev ---------------------------------------------------------- */

static void test_scripted_scans(void)
{
    struct rec *r = rec_connected("serial:" TTY, 0);
    /* The fixture script types two scans, CRLF-terminated, 300 and 50 ms apart. */
    GError *err = NULL;
    gboolean ok = umockdev_testbed_load_script(r->tb, TTY, FIXTURE_SCRIPT, &err);
    if (!ok) {
        fprintf(stderr, "\n  %s\n", err ? err->message : "?");
        g_clear_error(&err);
    }
    CU_ASSERT_FATAL(ok);
    run_until(r, 3);
    is_scan(r, 1, "RMA-000123");
    is_scan(r, 2, "SN4711");
    settle(r, 3);
    rec_free(r);
}

/*
 * Issue 10: the configured bytes go back to the scanner for each answer. The script's
 * `w` lines make umockdev wait for exactly those bytes before it types the next scan,
 * so the third scan arrives only if the first got Honeywell's host-ACK "good" string
 * (ESC 7 ',', the comma given as \x2c) and the second BEL BEL.
 */
static void test_feedback(void)
{
    struct rec *r = rec_connected("serial:" TTY ",feedback_ok=\\e7\\x2c,feedback_reject=\\x07\\x07"
                                  NO_TIMEOUT, 0);
    r->answer = true;
    GError *err = NULL;
    gboolean ok = umockdev_testbed_load_script(r->tb, TTY, "tests/fixtures/serial/feedback.script",
                                               &err);
    if (!ok) {
        fprintf(stderr, "\n  %s\n", err ? err->message : "?");
        g_clear_error(&err);
    }
    CU_ASSERT_FATAL(ok);
    run_until(r, 4);
    is_scan(r, 1, "SN-OK");
    is_scan(r, 2, "SN-BAD");
    is_scan(r, 3, "CMD-DONE");
    CU_ASSERT_EQUAL(r->feedback_rc, 0);
    settle(r, 4);
    /* No bytes configured for an answer: nothing to send. */
    rec_free(r);
    r = rec_connected("serial:" TTY ",feedback_reject=\\x07" NO_TIMEOUT, 0);
    CU_ASSERT_EQUAL(scanner_feedback(r->s, TTY_ID, SCANNER_REPLY_OK, ""), -ENOTSUP);
    CU_ASSERT_EQUAL(scanner_feedback(r->s, "serial:/dev/ttyUSB9", SCANNER_REPLY_REJECT, ""), -ENOENT);
    rec_free(r);
}

static void test_terminators(void)
{
    struct rec *r = rec_connected("serial:" TTY NO_TIMEOUT, 0);
    /* CR now and its LF in a later read: one terminator, no empty scan between. */
    send_str(r, "A-1\r");
    run_until(r, 2);
    is_scan(r, 1, "A-1");
    send_str(r, "\n");
    wait_consumed(r, 1);
    send_str(r, "A-2\n");
    run_until(r, 3);
    is_scan(r, 2, "A-2");
    send_str(r, "A-3\r\nA-4\n\rA-5\r\r\n\n");
    run_until(r, 6);
    is_scan(r, 3, "A-3");
    is_scan(r, 4, "A-4");
    is_scan(r, 5, "A-5");
    /* One scan across several writes. */
    send_str(r, "RMA-");
    wait_consumed(r, 4);
    send_str(r, "2001");
    wait_consumed(r, 4);
    CU_ASSERT_EQUAL(r->n, 6);
    send_str(r, "9\r\n");
    run_until(r, 7);
    is_scan(r, 6, "RMA-20019");
    settle(r, 7);
    rec_free(r);
}

static void test_burst(void)
{
    enum { N = 120 };
    struct rec *r = rec_connected("serial:" TTY NO_TIMEOUT, 0);
    char *burst = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&burst, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; i < N; i++)
        fprintf(f, "RMA-%06d\r\n", i);
    CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
    send_bytes(r, burst, len); /* 1440 bytes in one write */
    free(burst);
    run_until(r, 1 + N);
    for (int i = 0; i < N; i++) {
        char want[16];
        (void)snprintf(want, sizeof(want), "RMA-%06d", i);
        is_scan(r, 1 + (size_t)i, want);
    }
    settle(r, 1 + N);
    rec_free(r);
}

static void test_eol_required(void)
{
    /* Default eol (required) and eol_ms (SCANNER_EOL_MS_DEFAULT). */
    struct rec *r = rec_connected("serial:" TTY ",baud=9600", 0);
    send_str(r, "RMA-42");
    run_until(r, 2);
    is_rejected(r, 1, "RMA-42", 6, "no end of line within 300 ms");
    ASSERT_STR(r->ev[1].reason, "no end of line within 300 ms");
    /* Its late terminator is an empty line, not a second event; the next scan is whole. */
    send_str(r, "\r\nRMA-43\r\n");
    run_until(r, 3);
    is_scan(r, 2, "RMA-43");
    settle(r, 3);
    CU_ASSERT_EQUAL(scanner_clients(r->s), 1);
    rec_free(r);
}

static void test_eol_required_long_line(void)
{
    /* An over-long line that never ends is rejected once; silence then ends it. */
    struct rec *r = rec_connected("serial:" TTY ",eol_ms=50", 16);
    send_str(r, "ABCDEFGHIJKLMNOPQRST");
    wait_consumed(r, 20);
    CU_ASSERT_EQUAL_FATAL(r->n, 2);
    is_rejected(r, 1, "ABCDEFGHIJKLMNOP", 16, "scan longer than 16 bytes");
    wait_silence(r, 50);
    /* Without the timeout this scan would be dropped as the long line's tail. */
    send_str(r, "RMA-2\r\n");
    run_until(r, 3);
    is_scan(r, 2, "RMA-2");
    settle(r, 3);
    rec_free(r);
}

static void test_eol_none(void)
{
    struct rec *r = rec_connected("serial:" TTY ",eol=none,eol_ms=50", 16);
    /* No suffix: eol_ms of silence ends the scan. */
    send_str(r, "RMA-77");
    run_until(r, 2);
    is_scan(r, 1, "RMA-77");
    /* A terminator still ends a scan at once. */
    send_str(r, "RMA-78\r");
    run_until(r, 3);
    is_scan(r, 2, "RMA-78");
    /* Over-long without a terminator: rejected once, and silence ends it too. */
    send_str(r, "ABCDEFGHIJKLMNOPQRST");
    wait_consumed(r, 20);
    CU_ASSERT_EQUAL_FATAL(r->n, 4);
    is_rejected(r, 3, "ABCDEFGHIJKLMNOP", 16, "scan longer than 16 bytes");
    wait_silence(r, 50);
    send_str(r, "RMA-79");
    run_until(r, 5);
    is_scan(r, 4, "RMA-79");
    settle(r, 5);
    rec_free(r);
}

static void test_garbage(void)
{
    struct rec *r = rec_connected("serial:" TTY NO_TIMEOUT, 16);
    /* Line noise: control bytes, a NUL, bytes that are not UTF-8, then a good scan. */
    static const uint8_t noise[] = "RMA\x01" "23\r\nA\0B\r\n\xff\xfe\r\nRMA-1\r\n";
    send_bytes(r, noise, sizeof(noise) - 1);
    run_until(r, 5);
    is_rejected(r, 1, "RMA\x01" "23", 6, "control byte 0x01 at offset 3");
    is_rejected(r, 2, "A\0B", 3, "control byte 0x00 at offset 1");
    is_rejected(r, 3, "\xff\xfe", 2, "invalid UTF-8 at offset 0");
    is_scan(r, 4, "RMA-1");
    /* Over-long: rejected with its first 16 bytes, the rest dropped up to its end. */
    send_str(r, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\nRMA-2\r\n");
    run_until(r, 7);
    is_rejected(r, 5, "0123456789ABCDEF", 16, "scan longer than 16 bytes");
    is_scan(r, 6, "RMA-2");
    settle(r, 7);
    CU_ASSERT_EQUAL(scanner_clients(r->s), 1);
    rec_free(r);
}

static void test_unplug_replug(void)
{
    struct rec *r = rec_connected("serial:" TTY NO_TIMEOUT, 0);
    send_str(r, "RMA-8\r\n");
    run_until(r, 2);
    is_scan(r, 1, "RMA-8");
    /* Half a scan in the driver when the cable goes. */
    send_str(r, "RMA-9");
    wait_consumed(r, 5);
    CU_ASSERT_EQUAL(r->n, 2);
    unplug(r);
    run_until(r, 4);
    is_rejected(r, 2, "RMA-9", 5, "port closed before end of line");
    is_disconnected(r, 3, TTY_ID, "port hung up (device unplugged?)");
    CU_ASSERT_EQUAL(scanner_clients(r->s), 0);
    CU_ASSERT_PTR_NULL(serial_scanner_port(r->s));
    /* Retrying while it is away is quiet: its absence is no news. */
    for (int i = 0; i < 10; i++)
        pump(r);
    CU_ASSERT_EQUAL(r->n, 4);
    plug(r->tb);
    run_until(r, 5);
    is_connected(r, 4);
    send_str(r, "RMA-10\r\n");
    run_until(r, 6);
    is_scan(r, 5, "RMA-10");
    settle(r, 6);
    rec_free(r);
}

static void test_absent_at_start(void)
{
    struct rec *r = rec_new("serial:" TTY NO_TIMEOUT, 0, false);
    /* Not an error: the scanner exists, says once that it waits, and connects later. */
    run_until(r, 1);
    is_disconnected(r, 0, "serial:" TTY NO_TIMEOUT, TTY ": no such port; waiting for it");
    for (int i = 0; i < 10; i++)
        pump(r);
    CU_ASSERT_EQUAL(r->n, 1);
    plug(r->tb);
    run_until(r, 2);
    is_connected(r, 1);
    send_str(r, "RMA-11\r\n");
    run_until(r, 3);
    is_scan(r, 2, "RMA-11");
    settle(r, 3);
    rec_free(r);
}

static void test_usb_lookup(void)
{
    /* serial:usb=VID:PID finds the adapter through its USB attributes in sysfs. */
    struct rec *r = rec_connected("serial:usb=0403:6001" NO_TIMEOUT, 0);
    send_str(r, "RMA-12\r\n");
    run_until(r, 2);
    is_scan(r, 1, "RMA-12");
    settle(r, 2);
    rec_free(r);

    r = rec_new("serial:usb=0403:6015", 0, true);
    run_until(r, 1);
    is_disconnected(r, 0, "serial:usb=0403:6015", "no USB serial port 0403:6015; waiting for one");
    settle(r, 1);
    rec_free(r);
}

static void test_list_ports(void)
{
    UMockdevTestbed *tb = bed_new(true);
    serial_port_info_t *ports = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(serial_list_ports(&ports, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ports);
    const serial_port_info_t *p = &ports[0];
    ASSERT_STR(p->path, TTY);
    CU_ASSERT_EQUAL(p->transport, SERIAL_TRANSPORT_USB);
    ASSERT_STR(serial_transport_name(p->transport), "usb");
    CU_ASSERT_EQUAL(p->usb_vid, 0x0403);
    CU_ASSERT_EQUAL(p->usb_pid, 0x6001);
    CU_ASSERT_EQUAL(p->usb_bus, 1);
    CU_ASSERT_EQUAL(p->usb_address, 3);
    ASSERT_STR(p->usb_manufacturer, "FTDI");
    ASSERT_STR(p->usb_product, "FT232R USB UART");
    ASSERT_STR(p->usb_serial, "A50285BI");
    ASSERT_CONTAINS(p->description, "FT232R USB UART");
    CU_ASSERT_PTR_NULL(p->bluetooth_address);
    serial_ports_free(&ports, n);
    CU_ASSERT_PTR_NULL(ports);
    bed_destroy(tb);

    /* No ports is an empty list. */
    tb = bed_new(false);
    n = 99;
    CU_ASSERT_EQUAL(serial_list_ports(&ports, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NULL(ports);
    serial_ports_free(&ports, n);
    bed_destroy(tb);
}

/* The tty's settings as the kernel holds them, read through the test's own descriptor. */
static struct termios tty_settings(void)
{
    struct termios t;
    memset(&t, 0, sizeof(t));
    int fd = open(TTY, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(tcgetattr(fd, &t), 0);
    CU_ASSERT_EQUAL(close(fd), 0);
    return t;
}

static void test_port_settings(void)
{
    /*
     * What a pty keeps of what the driver set: speed, stop bits, software flow control
     * and raw input (a pty forces 8 data bits without parity, and ignores CRTSCTS).
     */
    struct rec *r = rec_connected("serial:" TTY, 0);
    struct termios t = tty_settings();
    CU_ASSERT_EQUAL(cfgetispeed(&t), B9600);
    CU_ASSERT_EQUAL(t.c_cflag & CSTOPB, 0);
    CU_ASSERT_EQUAL(t.c_iflag & (IXON | IXOFF), 0);
    CU_ASSERT_EQUAL(t.c_lflag & (ICANON | ECHO), 0); /* CR and LF come through as sent */
    CU_ASSERT_EQUAL(t.c_iflag & (ICRNL | IGNCR | INLCR), 0);
    rec_free(r);

    r = rec_connected("serial:" TTY ",baud=19200,stop=2,flow=xonxoff", 0);
    t = tty_settings();
    CU_ASSERT_EQUAL(cfgetispeed(&t), B19200);
    CU_ASSERT_EQUAL(cfgetospeed(&t), B19200);
    CU_ASSERT_NOT_EQUAL(t.c_cflag & CSTOPB, 0);
    CU_ASSERT_EQUAL(t.c_iflag & (IXON | IXOFF), IXON | IXOFF);
    rec_free(r);

    /* The other settings are accepted and the port reads as usual. */
    r = rec_connected("serial:" TTY ",baud=115200,bits=7,parity=even,flow=rtscts" NO_TIMEOUT, 0);
    t = tty_settings();
    CU_ASSERT_EQUAL(cfgetispeed(&t), B115200);
    send_str(r, "RMA-13\r\n");
    run_until(r, 2);
    is_scan(r, 1, "RMA-13");
    rec_free(r);
}

static void test_destroy_connected(void)
{
    /* Destroying reports nothing, drops the half line, and leaves no timer behind. */
    struct rec *r = rec_connected("serial:" TTY ",eol_ms=50", 0);
    send_str(r, "RMA-14");
    wait_consumed(r, 6);
    CU_ASSERT_EQUAL(r->n, 1);
    scanner_destroy(&r->s);
    CU_ASSERT_PTR_NULL(r->s);
    for (int i = 0; i < 5; i++)
        pump(r);
    CU_ASSERT_EQUAL(r->n, 1);
    rec_free(r);

    /* And while waiting for an absent port. */
    r = rec_new("serial:" TTY, 0, false);
    run_until(r, 1);
    scanner_destroy(&r->s);
    for (int i = 0; i < 5; i++)
        pump(r);
    CU_ASSERT_EQUAL(r->n, 1);
    rec_free(r);
}

static const struct {
    const char *name;
    CU_TestFunc fn;
} umockdev_tests[] = {
    { "scripted scans (fixture script)", test_scripted_scans },
    { "feedback bytes written for ok and reject (script w lines)", test_feedback },
    { "CR, LF, CRLF (split too) and empty lines", test_terminators },
    { "burst: 120 scans in one write", test_burst },
    { "eol=required: a line without terminator times out", test_eol_required },
    { "eol=required: over-long line without terminator", test_eol_required_long_line },
    { "eol=none: silence ends a scan", test_eol_none },
    { "control bytes, NUL, bad UTF-8, over-long line", test_garbage },
    { "unplug and replug", test_unplug_replug },
    { "port absent at start", test_absent_at_start },
    { "serial:usb=VID:PID lookup", test_usb_lookup },
    { "port enumeration", test_list_ports },
    { "port settings applied", test_port_settings },
    { "destroy while connected or waiting", test_destroy_connected },
};
#define N_UMOCKDEV_TESTS (sizeof(umockdev_tests) / sizeof(umockdev_tests[0]))

/* ---- tests in the plain process ---------------------------------------------------- */

/* Set or (value NULL) unset name; returns the old value, malloc'd, or NULL. */
static char *env_swap(const char *name, const char *value)
{
    const char *old = getenv(name);
    char *saved = old ? strdup(old) : NULL;
    int rc = value ? setenv(name, value, 1) : unsetenv(name);
    CU_ASSERT_EQUAL(rc, 0);
    return saved;
}

/* The counts of CUnit's "tests" summary line in a runner's output; 0 when found. */
static int tests_summary(const char *out, unsigned *total, unsigned *ran, unsigned *passed,
                         unsigned *failed)
{
    for (const char *line = out; line && *line; line = strchr(line, '\n')) {
        while (*line == '\n')
            line++;
        if (sscanf(line, " tests %u %u %u %u", total, ran, passed, failed) == 4)
            return 0;
    }
    return -1;
}

static void test_under_umockdev(void)
{
    char runner[4096], shim[4096];
    (void)snprintf(runner, sizeof(runner), "%s", th_bin("test_runner"));
    (void)snprintf(shim, sizeof(shim), "%s", th_bin("tiocm-shim.so"));
    CU_ASSERT_EQUAL_FATAL(access(shim, R_OK), 0);

    /* Shim first: its ioctl() must see the modem-control requests before umockdev's. */
    char *preload = NULL, *asan = NULL;
    CU_ASSERT_FATAL(asprintf(&preload, "%s libumockdev-preload.so.0", shim) > 0);
    const char *asan_old = getenv("ASAN_OPTIONS");
    /* ASan wants its runtime first in the library list; the preloads come before it. */
    CU_ASSERT_FATAL(asprintf(&asan, "%s%sverify_asan_link_order=0", asan_old ? asan_old : "",
                             asan_old && *asan_old ? ":" : "") > 0);
    char *old_preload = env_swap("LD_PRELOAD", preload);
    char *old_asan = env_swap("ASAN_OPTIONS", asan);
    char *old_child = env_swap(CHILD_ENV, "1");

    char *plain[] = { runner, "serial", NULL };
    char *vg[] = { "/usr/bin/valgrind", "--error-exitcode=3", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", runner, "serial", NULL };
    const char *valgrind = getenv("RMAD_VALGRIND");
    th_proc_t p = th_run_proc(valgrind && *valgrind ? vg : plain, NULL);

    free(env_swap("LD_PRELOAD", old_preload));
    free(env_swap("ASAN_OPTIONS", old_asan));
    free(env_swap(CHILD_ENV, old_child));
    free(old_preload);
    free(old_asan);
    free(old_child);
    free(preload);
    free(asan);

    unsigned total = 0, ran = 0, passed = 0, failed = 0;
    int found = tests_summary(p.out, &total, &ran, &passed, &failed);
    if (p.status != 0 || found != 0 || passed != N_UMOCKDEV_TESTS)
        fprintf(stderr, "\n---- serial suite under umockdev (exit %d) ----\n%s%s----\n",
                p.status, p.out, p.err);
    CU_ASSERT_EQUAL(p.status, 0);
    CU_ASSERT_EQUAL(found, 0);
    CU_ASSERT_EQUAL(total, N_UMOCKDEV_TESTS);
    CU_ASSERT_EQUAL(ran, N_UMOCKDEV_TESTS);
    CU_ASSERT_EQUAL(passed, N_UMOCKDEV_TESTS);
    CU_ASSERT_EQUAL(failed, 0);
    th_proc_free(&p);
}

static void ev_ignore(const scanner_event_t *ev, void *data)
{
    (void)ev;
    (void)data;
    CU_FAIL("no event expected");
}

/* Options the config parser would refuse, handed to the driver directly. */
static void test_bad_config(void)
{
    loop_t *loop = loop_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    config_option_t opt = { .key = "parity", .value = "mark" };
    config_scanner_t cfg = { .kind = CONFIG_SCANNER_SERIAL, .spec = "serial:/dev/ttyX,parity=mark",
                             .path = "/dev/ttyX", .opts = &opt, .nopts = 1 };
    char *err = NULL;
    errno = 0;
    scanner_t *s = scanner_new_serial(loop, &cfg, NULL, ev_ignore, NULL, &err);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_EQUAL(errno, EINVAL);
    ASSERT_STR(err, "serial:/dev/ttyX,parity=mark: option parity: expected none, odd or even");
    free(err);

    opt = (config_option_t){ .key = "eol_ms", .value = "5" };
    cfg.spec = "serial:/dev/ttyX,eol_ms=5";
    s = scanner_new_serial(loop, &cfg, NULL, ev_ignore, NULL, &err);
    CU_ASSERT_PTR_NULL(s);
    ASSERT_STR(err, "serial:/dev/ttyX,eol_ms=5: option eol_ms: expected an integer from 10 to 60000");
    free(err);

    config_scanner_t tcp = { .kind = CONFIG_SCANNER_TCP, .spec = "tcp:127.0.0.1:1" };
    s = scanner_new_serial(loop, &tcp, NULL, ev_ignore, NULL, &err);
    CU_ASSERT_PTR_NULL(s);
    ASSERT_STR(err, "tcp:127.0.0.1:1: not a serial scanner");
    free(err);

    config_scanner_t rel = { .kind = CONFIG_SCANNER_SERIAL, .spec = "serial:ttyX", .path = "ttyX" };
    s = scanner_new_serial(loop, &rel, NULL, ev_ignore, NULL, NULL);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_EQUAL(errno, EINVAL);

    /* Not a serial scanner: no port to report. */
    CU_ASSERT_PTR_NULL(serial_scanner_port(NULL));
    ASSERT_STR(serial_transport_name(SERIAL_TRANSPORT_NATIVE), "native");
    ASSERT_STR(serial_transport_name(SERIAL_TRANSPORT_BLUETOOTH), "bluetooth");
    serial_ports_free(NULL, 0);
    loop_destroy(&loop);
}

int suite_serial(void)
{
    CU_pSuite s = CU_add_suite("serial", NULL, NULL);
    if (!s)
        return -1;
    const char *child = getenv(CHILD_ENV);
    if (child && strcmp(child, "1") == 0) {
        for (size_t i = 0; i < N_UMOCKDEV_TESTS; i++)
            if (!CU_add_test(s, umockdev_tests[i].name, umockdev_tests[i].fn))
                return -1;
        return 0;
    }
    if (!CU_add_test(s, "the umockdev tests, in a child under the preloads",
                     test_under_umockdev) ||
        !CU_add_test(s, "bad options handed to the driver", test_bad_config))
        return -1;
    return 0;
}
