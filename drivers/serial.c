/*
 * Serial scanner input (drivers/scanner.h, drivers/serial.h): RS-232 and USB-serial
 * scanners through libserialport, one scan per CR, LF or CRLF.
 *
 * Everything runs on the loop's thread. A scanner has at most one open port, whose fd
 * is registered with the loop and read without blocking; a timer opens the port (at
 * start, and again with backoff after it failed or went away); a second timer ends a
 * line left without its terminator after eol_ms of silence. There are no threads and
 * no blocking calls: sp_open() on a tty never waits for carrier with O_NONBLOCK, which
 * libserialport uses.
 *
 * Line framing, decoding and the events are drivers/scanner.c's (scanner_lines_*).
 */
#include "drivers/serial.h"

#include <errno.h>
#include <libserialport.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reopen delays: first retry after 0.5 s, doubling to at most 5 s. */
#define SERIAL_RETRY_MIN_MS 500
#define SERIAL_RETRY_MAX_MS 5000
/* Work per wake-up before giving the other fds a turn (the loop polls again at once). */
#define SERIAL_READ_CHUNK 1024
#define SERIAL_READS_PER_WAKE 16

/* The port settings and line options of one scanner, from its config options. */
struct serial_opts {
    int baud;
    int bits;
    int stop;
    enum sp_parity parity;
    enum sp_flowcontrol flow;
    bool eol_required;
    int64_t eol_ms;
    /* Bytes written back for each answer (scanner_feedback); len 0 = none. */
    uint8_t feedback[3][CONFIG_FEEDBACK_MAX];
    size_t feedback_len[3];
};

struct serial {
    scanner_t *s;
    loop_t *loop;
    char *path;                 /* configured port; NULL when found by USB VID:PID */
    uint16_t vid, pid;
    struct sp_port_config *conf;
    char *line_desc;            /* "9600 8N1", for messages */
    bool eol_required;
    int64_t eol_ms;
    char *eol_reason;           /* "no end of line within 300 ms" */
    uint8_t feedback[3][CONFIG_FEEDBACK_MAX];   /* by scanner_reply_t */
    size_t feedback_len[3];

    /* While connected: all set, or all NULL / -1 / 0. */
    struct sp_port *port;
    int fd;
    char *id;                   /* "serial:/dev/ttyUSB0", the events' scanner_id */
    scanner_lines_t *lines;
    int64_t connected_ms;
    int64_t last_rx_ms;         /* when the last bytes arrived */
    uint64_t eol_timer;

    /* While not connected. */
    uint64_t retry_timer;
    int64_t retry_ms;           /* delay before the next attempt after a failure */
    char *reported;             /* open failure last reported: say each one once */
    bool quiet_absent;          /* we reported the port going away: its absence is no news */
};

/* ---- small helpers ---------------------------------------------------------------- */

/* A libserialport failure as a positive errno. */
static int sp_errno(enum sp_return rc)
{
    switch (rc) {
    case SP_ERR_FAIL: {
        int e = sp_last_error_code();
        return e > 0 ? e : EIO;
    }
    case SP_ERR_MEM:
        return ENOMEM;
    case SP_ERR_SUPP:
        return ENOTSUP;
    case SP_ERR_ARG:
    case SP_OK:
        break;
    }
    return EINVAL;
}

/* Parse a decimal integer in [min, max]; returns 0 or -EINVAL. */
static int parse_int(const char *v, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max)
        return -EINVAL;
    *out = n;
    return 0;
}

/*
 * Read cfg's options into o, with the defaults of drivers/scanner.h (9600 8N1, no flow
 * control, eol=required, eol_ms=SCANNER_EOL_MS_DEFAULT). The config parser has checked
 * them already; a config built another way gets the same checks here. Returns 0, or
 * -EINVAL with *why a static reason.
 */
static int read_options(const config_scanner_t *cfg, struct serial_opts *o, const char **why)
{
    *o = (struct serial_opts){ .baud = 9600, .bits = 8, .stop = 1, .parity = SP_PARITY_NONE,
                               .flow = SP_FLOWCONTROL_NONE, .eol_required = true,
                               .eol_ms = SCANNER_EOL_MS_DEFAULT };
    const char *v;
    long n;
    if ((v = config_scanner_option(cfg, "baud"))) {
        if (parse_int(v, 50, 4000000, &n) < 0)
            goto bad_baud;
        o->baud = (int)n;
    }
    if ((v = config_scanner_option(cfg, "bits"))) {
        if (strcmp(v, "7") != 0 && strcmp(v, "8") != 0)
            goto bad_bits;
        o->bits = v[0] - '0';
    }
    if ((v = config_scanner_option(cfg, "stop"))) {
        if (strcmp(v, "1") != 0 && strcmp(v, "2") != 0)
            goto bad_stop;
        o->stop = v[0] - '0';
    }
    if ((v = config_scanner_option(cfg, "parity"))) {
        if (strcmp(v, "none") == 0)
            o->parity = SP_PARITY_NONE;
        else if (strcmp(v, "odd") == 0)
            o->parity = SP_PARITY_ODD;
        else if (strcmp(v, "even") == 0)
            o->parity = SP_PARITY_EVEN;
        else
            goto bad_parity;
    }
    if ((v = config_scanner_option(cfg, "flow"))) {
        if (strcmp(v, "none") == 0)
            o->flow = SP_FLOWCONTROL_NONE;
        else if (strcmp(v, "rtscts") == 0)
            o->flow = SP_FLOWCONTROL_RTSCTS;
        else if (strcmp(v, "xonxoff") == 0)
            o->flow = SP_FLOWCONTROL_XONXOFF;
        else
            goto bad_flow;
    }
    if ((v = config_scanner_option(cfg, "eol"))) {
        if (strcmp(v, "required") != 0 && strcmp(v, "none") != 0)
            goto bad_eol;
        o->eol_required = v[0] == 'r';
    }
    if ((v = config_scanner_option(cfg, "eol_ms"))) {
        if (parse_int(v, 10, 60000, &n) < 0)
            goto bad_eol_ms;
        o->eol_ms = n;
    }
    static const char *const fb[3] = { "feedback_ok", "feedback_reject", "feedback_double" };
    for (int i = 0; i < 3; i++)
        if ((v = config_scanner_option(cfg, fb[i])) &&
            config_unescape(v, o->feedback[i], &o->feedback_len[i], why) < 0)
            return -EINVAL;
    /* A double read was taken already: it sounds like a taken scan unless told otherwise. */
    if (!config_scanner_option(cfg, fb[SCANNER_REPLY_DOUBLE])) {
        memcpy(o->feedback[SCANNER_REPLY_DOUBLE], o->feedback[SCANNER_REPLY_OK],
               o->feedback_len[SCANNER_REPLY_OK]);
        o->feedback_len[SCANNER_REPLY_DOUBLE] = o->feedback_len[SCANNER_REPLY_OK];
    }
    return 0;

bad_baud:
    *why = "option baud: expected an integer from 50 to 4000000";
    return -EINVAL;
bad_bits:
    *why = "option bits: expected 7 or 8";
    return -EINVAL;
bad_stop:
    *why = "option stop: expected 1 or 2";
    return -EINVAL;
bad_parity:
    *why = "option parity: expected none, odd or even";
    return -EINVAL;
bad_flow:
    *why = "option flow: expected none, rtscts or xonxoff";
    return -EINVAL;
bad_eol:
    *why = "option eol: expected required or none";
    return -EINVAL;
bad_eol_ms:
    *why = "option eol_ms: expected an integer from 10 to 60000";
    return -EINVAL;
}

/*
 * The libserialport settings for o. DTR and RTS are raised, as a terminal does: some
 * scanners send nothing until they see them (with flow=rtscts, RTS is flow control).
 * Returns 0 and sets *out, -ENOMEM, or -EINVAL (values read_options() let through
 * never cause it).
 */
static int make_sp_config(const struct serial_opts *o, struct sp_port_config **out)
{
    struct sp_port_config *c = NULL;
    if (sp_new_config(&c) != SP_OK)
        return -ENOMEM;
    if (sp_set_config_baudrate(c, o->baud) != SP_OK ||
        sp_set_config_bits(c, o->bits) != SP_OK ||
        sp_set_config_parity(c, o->parity) != SP_OK ||
        sp_set_config_stopbits(c, o->stop) != SP_OK ||
        sp_set_config_dtr(c, SP_DTR_ON) != SP_OK ||
        sp_set_config_rts(c, SP_RTS_ON) != SP_OK ||
        sp_set_config_flowcontrol(c, o->flow) != SP_OK) {
        /* Only a NULL config makes these fail. */
        sp_free_config(c);
        return -EINVAL;
    }
    *out = c;
    return 0;
}

/* ---- the open port ---------------------------------------------------------------- */

static size_t serial_clients(const void *impl)
{
    const struct serial *sr = impl;
    return sr->port ? 1 : 0;
}

static void serial_free(void *impl);

/*
 * The configured bytes for this answer (many serial scanners beep or flash on BEL or a
 * vendor string: docs/scanners.md). Written without blocking; what the port's buffer
 * does not take at once is dropped, as a beep that comes late is worse than none.
 */
static int serial_feedback(void *impl, const char *scanner_id, scanner_reply_t reply,
                           const char *text)
{
    (void)text;   /* a serial scanner has no screen */
    struct serial *sr = impl;
    if (!sr->port || !sr->id || strcmp(sr->id, scanner_id) != 0)
        return -ENOENT;
    if ((unsigned)reply > SCANNER_REPLY_DOUBLE || !sr->feedback_len[reply])
        return -ENOTSUP;
    int n = sp_nonblocking_write(sr->port, sr->feedback[reply], sr->feedback_len[reply]);
    return n < 0 ? -sp_errno((enum sp_return)n) : 0;
}

static const scanner_ops_t serial_ops = {
    .kind = "serial",
    .clients = serial_clients,
    .destroy = serial_free,
    .feedback = serial_feedback,
};

const char *serial_scanner_port(const scanner_t *s)
{
    const struct serial *sr = scanner_impl(s, &serial_ops);
    return sr && sr->port ? sp_get_port_name(sr->port) : NULL;
}

/* Close the port without reporting anything. The caller keeps sr->id and sr->lines. */
static void port_close(struct serial *sr)
{
    if (sr->eol_timer) {
        (void)loop_del_timer(sr->loop, sr->eol_timer);
        sr->eol_timer = 0;
    }
    if (sr->fd >= 0)
        (void)loop_del_fd(sr->loop, sr->fd);
    sr->fd = -1;
    if (sr->port) {
        (void)sp_close(sr->port);
        sp_free_port(sr->port);
        sr->port = NULL;
    }
}

static int64_t retry_fire(loop_t *loop, uint64_t id, void *data);

/* The delay before the next attempt; the one after it is twice as long, up to the max. */
static int64_t next_retry_delay(struct serial *sr)
{
    int64_t d = sr->retry_ms;
    sr->retry_ms = d * 2 > SERIAL_RETRY_MAX_MS ? SERIAL_RETRY_MAX_MS : d * 2;
    return d;
}

/*
 * The port is gone (hang-up, read error): report its unterminated line, if any, and
 * the disconnect, close it and start retrying. A connection that lasted restarts the
 * backoff; one that failed at once keeps it, so a port that opens and then fails
 * every time is tried every 5 s, not twice a second.
 */
static void port_lost(struct serial *sr, const char *reason)
{
    /* reason may be strerror()'s: keep it from the callbacks below. */
    char *why = strdup(reason);
    char *id = sr->id;
    scanner_lines_t *lines = sr->lines;
    sr->id = NULL;
    sr->lines = NULL;
    if (loop_now_ms() - sr->connected_ms >= SERIAL_RETRY_MAX_MS)
        sr->retry_ms = SERIAL_RETRY_MIN_MS;
    port_close(sr);
    sr->quiet_absent = true;
    sr->retry_timer = loop_add_timer(sr->loop, next_retry_delay(sr), retry_fire, sr);

    scanner_lines_end(lines, "port closed before end of line");
    scanner_event_t ev = { .kind = SCANNER_EV_DISCONNECTED, .scanner_id = id,
                           .reason = why ? why : "port closed" };
    scanner_emit(sr->s, &ev);
    if (!sr->retry_timer) {
        scanner_event_t oom = { .kind = SCANNER_EV_DISCONNECTED,
                                .scanner_id = scanner_spec(sr->s),
                                .reason = "out of memory: the port will not be reopened" };
        scanner_emit(sr->s, &oom);
    }
    scanner_lines_destroy(&lines);
    free(id);
    free(why);
}

/* The pending line has had eol_ms of silence: reject it (eol=required) or take it. */
static int64_t eol_fire(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    struct serial *sr = data;
    int64_t quiet = loop_now_ms() - sr->last_rx_ms;
    if (quiet < sr->eol_ms)
        return sr->eol_ms - quiet;
    sr->eol_timer = 0;
    /* Both also end an over-long line being dropped, or the next scan would be its tail. */
    if (sr->eol_required)
        scanner_lines_end(sr->lines, sr->eol_reason);
    else
        scanner_lines_flush(sr->lines);
    return -1;
}

/*
 * Readable (or hung up): read up to SERIAL_READS_PER_WAKE chunks and frame them.
 * libserialport leaves VMIN and VTIME at 0, so read() returns 0 both when nothing is
 * left and after a hang-up; a wake-up with nothing to read is therefore the end of the
 * port (an unplugged USB adapter hangs its tty up). A read error ends it as well.
 */
static void port_ready(loop_t *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    (void)events;
    struct serial *sr = data;
    uint8_t chunk[SERIAL_READ_CHUNK];
    for (int i = 0; i < SERIAL_READS_PER_WAKE; i++) {
        int n = sp_nonblocking_read(sr->port, chunk, sizeof(chunk));
        if (n < 0) {
            char why[128];
            (void)snprintf(why, sizeof(why), "read error: %s",
                           strerror(sp_errno((enum sp_return)n)));
            port_lost(sr, why);
            return;
        }
        if (n == 0) {
            if (i == 0)
                port_lost(sr, "port hung up (device unplugged?)");
            return;
        }
        sr->last_rx_ms = loop_now_ms();
        scanner_lines_feed(sr->lines, chunk, (size_t)n);
        /* Out of memory: the line then waits for its terminator or the next read. */
        if (scanner_lines_pending(sr->lines) && !sr->eol_timer)
            sr->eol_timer = loop_add_timer(sr->loop, sr->eol_ms, eol_fire, sr);
        if ((size_t)n < sizeof(chunk))
            return;
    }
}

/* Why an attempt to open the port failed. */
typedef struct {
    bool absent;                /* the port is not there: expected while unplugged */
    char *reason;               /* malloc'd; NULL when out of memory */
} open_fail_t;

static void fail_set(open_fail_t *f, bool absent, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_set(open_fail_t *f, bool absent, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    f->absent = absent;
    if (vasprintf(&f->reason, fmt, ap) < 0)
        f->reason = NULL;
    va_end(ap);
}

/*
 * sp_list_ports(), except that a machine without /sys/class/tty (a container without
 * sysfs, say) has no ports rather than an error. Returns 0 and sets *list (NULL for no
 * ports; free with sp_free_port_list), or a positive errno.
 */
static int list_ports(struct sp_port ***list)
{
    *list = NULL;
    enum sp_return rc = sp_list_ports(list);
    if (rc == SP_OK)
        return 0;
    int err = sp_errno(rc);
    return err == ENOENT ? 0 : err;
}

/* The first of the USB ports with sr's VID:PID, by path (so the choice is stable). */
static struct sp_port *find_usb_port(struct serial *sr, open_fail_t *f)
{
    struct sp_port **list = NULL;
    int err = list_ports(&list);
    if (err) {
        fail_set(f, false, "cannot list serial ports: %s; retrying", strerror(err));
        return NULL;
    }
    const struct sp_port *best = NULL;
    for (size_t i = 0; list && list[i]; i++) {
        int vid = 0, pid = 0;
        if (sp_get_port_transport(list[i]) != SP_TRANSPORT_USB ||
            sp_get_port_usb_vid_pid(list[i], &vid, &pid) != SP_OK ||
            vid != sr->vid || pid != sr->pid)
            continue;
        if (!best || strcmp(sp_get_port_name(list[i]), sp_get_port_name(best)) < 0)
            best = list[i];
    }
    struct sp_port *port = NULL;
    enum sp_return rc;
    if (!best)
        fail_set(f, true, "no USB serial port %04x:%04x; waiting for one", sr->vid, sr->pid);
    else if ((rc = sp_copy_port(best, &port)) != SP_OK)
        fail_set(f, false, "%s: %s; retrying", sp_get_port_name(best), strerror(sp_errno(rc)));
    sp_free_port_list(list);
    return port;
}

/*
 * The configured port. libserialport wants the kernel's name (/dev/ttyUSB0, which it
 * looks up in /sys/class/tty), so a udev link such as /dev/serial/by-id/... is resolved
 * first, at every attempt: it points elsewhere after a replug.
 */
static struct sp_port *find_path_port(struct serial *sr, open_fail_t *f)
{
    char *resolved = NULL;
    const char *name = sr->path;
    if (strncmp(name, "/dev/", 5) != 0 || strchr(name + 5, '/')) {
        resolved = realpath(name, NULL);
        if (!resolved) {
            if (errno == ENOENT)
                fail_set(f, true, "%s: no such port; waiting for it", sr->path);
            else
                fail_set(f, false, "%s: %s; retrying", sr->path, strerror(errno));
            return NULL;
        }
        name = resolved;
    }
    struct sp_port *port = NULL;
    errno = 0;
    enum sp_return rc = sp_get_port_by_name(name, &port);
    if (rc != SP_OK) {
        /* It fails with errno ENOENT when /sys/class/tty has no such tty. */
        int err = errno;
        if (rc == SP_ERR_MEM)
            fail_set(f, false, "%s: out of memory; retrying", sr->path);
        else if (err == ENOENT)
            fail_set(f, true, "%s: no such port; waiting for it", sr->path);
        else
            fail_set(f, false, "%s: not a serial port the kernel lists in /sys/class/tty; "
                     "retrying", name);
        port = NULL;
    }
    free(resolved);
    return port;
}

/*
 * One attempt: find the port, open it for reading, apply the settings, register it.
 * Returns 0 with sr connected (nothing reported yet), or -1 with *f saying why.
 */
static int port_connect(struct serial *sr, open_fail_t *f)
{
    struct sp_port *port = sr->path ? find_path_port(sr, f) : find_usb_port(sr, f);
    if (!port)
        return -1;
    const char *name = sp_get_port_name(port);
    char *id = NULL;
    scanner_lines_t *lines = NULL;
    int fd = -1, lrc;
    /* Write access only when there is something to write back. */
    bool writes = sr->feedback_len[0] || sr->feedback_len[1] || sr->feedback_len[2];
    enum sp_return rc = sp_open(port, writes ? SP_MODE_READ_WRITE : SP_MODE_READ);
    if (rc != SP_OK) {
        int err = sp_errno(rc);
        /* Unplugged between the lookup and the open. */
        bool gone = err == ENOENT || err == ENODEV || err == ENXIO;
        fail_set(f, gone, gone ? "%s: %s; waiting for it" : "cannot open %s: %s; retrying",
                 name, strerror(err));
        sp_free_port(port);
        return -1;
    }
    if ((rc = sp_set_config(port, sr->conf)) != SP_OK) {
        fail_set(f, false, "cannot set %s on %s: %s; retrying", sr->line_desc, name,
                 strerror(sp_errno(rc)));
        goto fail;
    }
    if (sp_get_port_handle(port, &fd) != SP_OK || fd < 0) {
        fail_set(f, false, "%s: no file descriptor; retrying", name);
        goto fail;
    }
    if (asprintf(&id, "serial:%s", sr->path ? sr->path : name) < 0) {
        id = NULL;
        goto oom;
    }
    if (!(lines = scanner_lines_new(sr->s, id)))
        goto oom;
    lrc = loop_add_fd(sr->loop, fd, LOOP_IN, port_ready, sr);
    if (lrc < 0) {
        fail_set(f, false, "%s: cannot watch the port: %s; retrying", name, strerror(-lrc));
        goto fail;
    }
    sr->port = port;
    sr->fd = fd;
    sr->id = id;
    sr->lines = lines;
    sr->connected_ms = loop_now_ms();
    return 0;

oom:
    fail_set(f, false, "%s: out of memory; retrying", name);
fail:
    scanner_lines_destroy(&lines);
    free(id);
    (void)sp_close(port);
    sp_free_port(port);
    return -1;
}

/*
 * Say why the port cannot be opened, once per reason: the retry loop would otherwise
 * repeat it every few seconds for as long as a scanner stays unplugged.
 */
static void report_failure(struct serial *sr, const open_fail_t *f)
{
    const char *reason = f->reason ? f->reason : "out of memory; retrying";
    if (f->absent && sr->quiet_absent)
        return;
    if (sr->reported && strcmp(sr->reported, reason) == 0)
        return;
    free(sr->reported);
    sr->reported = strdup(reason);
    scanner_event_t ev = { .kind = SCANNER_EV_DISCONNECTED, .scanner_id = scanner_spec(sr->s),
                           .reason = reason };
    scanner_emit(sr->s, &ev);
}

/* Try to open the port; on failure run again later (the timer's return value). */
static int64_t retry_fire(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    struct serial *sr = data;
    open_fail_t f = { 0 };
    if (port_connect(sr, &f) == 0) {
        sr->retry_timer = 0;
        sr->quiet_absent = false;
        free(sr->reported);
        sr->reported = NULL;
        scanner_event_t ev = { .kind = SCANNER_EV_CONNECTED, .scanner_id = sr->id };
        scanner_emit(sr->s, &ev);
        return -1;
    }
    report_failure(sr, &f);
    free(f.reason);
    return next_retry_delay(sr);
}

/* ---- the scanner -------------------------------------------------------------- */

/* Close the port and free everything without reporting; the scanner_t is going away. */
static void serial_free(void *impl)
{
    struct serial *sr = impl;
    if (!sr)
        return;
    if (sr->retry_timer)
        (void)loop_del_timer(sr->loop, sr->retry_timer);
    port_close(sr);
    scanner_lines_destroy(&sr->lines);
    free(sr->id);
    sp_free_config(sr->conf);
    free(sr->path);
    free(sr->line_desc);
    free(sr->eol_reason);
    free(sr->reported);
    free(sr);
}

/* Set *errmsg (when wanted) to "SPEC: what" and errno to err; returns NULL. */
static scanner_t *new_failed(char **errmsg, const char *spec, const char *what, int err)
{
    if (errmsg && asprintf(errmsg, "%s: %s", spec ? spec : "serial", what) < 0)
        *errmsg = NULL;
    errno = err;
    return NULL;
}

scanner_t *scanner_new_serial(loop_t *loop, const config_scanner_t *cfg,
                              const scan_limits_t *lim, scanner_event_fn fn, void *data,
                              char **errmsg)
{
    if (errmsg)
        *errmsg = NULL;
    if (cfg && cfg->kind != CONFIG_SCANNER_SERIAL)
        return new_failed(errmsg, cfg->spec, "not a serial scanner", EINVAL);
    if (!loop || !cfg || !fn || (cfg->path && cfg->path[0] != '/'))
        return new_failed(errmsg, cfg ? cfg->spec : NULL, strerror(EINVAL), EINVAL);

    struct serial_opts o;
    const char *why = NULL;
    if (read_options(cfg, &o, &why) < 0)
        return new_failed(errmsg, cfg->spec, why, EINVAL);

    char *spec = NULL;
    if (cfg->spec)
        spec = strdup(cfg->spec);
    else if (cfg->path ? asprintf(&spec, "serial:%s", cfg->path) < 0
                       : asprintf(&spec, "serial:usb=%04x:%04x", cfg->vid, cfg->pid) < 0)
        spec = NULL;
    if (!spec)
        return new_failed(errmsg, cfg->spec, "out of memory", ENOMEM);

    scanner_t *s = NULL;
    int rc = -ENOMEM;
    struct serial *sr = calloc(1, sizeof(*sr));
    if (!sr)
        goto fail;
    sr->loop = loop;
    sr->fd = -1;
    sr->vid = cfg->vid;
    sr->pid = cfg->pid;
    sr->eol_required = o.eol_required;
    sr->eol_ms = o.eol_ms;
    memcpy(sr->feedback, o.feedback, sizeof(sr->feedback));
    memcpy(sr->feedback_len, o.feedback_len, sizeof(sr->feedback_len));
    sr->retry_ms = SERIAL_RETRY_MIN_MS;
    if (cfg->path && !(sr->path = strdup(cfg->path)))
        goto fail;
    if (asprintf(&sr->line_desc, "%d %d%c%d", o.baud, o.bits,
                 o.parity == SP_PARITY_NONE ? 'N' : o.parity == SP_PARITY_ODD ? 'O' : 'E',
                 o.stop) < 0) {
        sr->line_desc = NULL;
        goto fail;
    }
    if (asprintf(&sr->eol_reason, "no end of line within %lld ms", (long long)o.eol_ms) < 0) {
        sr->eol_reason = NULL;
        goto fail;
    }
    if ((rc = make_sp_config(&o, &sr->conf)) < 0)
        goto fail;
    rc = -ENOMEM;
    s = scanner_create(&serial_ops, sr, spec, lim, fn, data);
    if (!s)
        goto fail;
    sr->s = s;
    scanner_budget_config(s, cfg);
    /* The first attempt runs from the loop: nothing is reported from inside this call. */
    sr->retry_timer = loop_add_timer(loop, 0, retry_fire, sr);
    if (!sr->retry_timer)
        goto fail;
    free(spec);
    return s;

fail:
    if (s)
        scanner_destroy(&s); /* frees sr too */
    else
        serial_free(sr);
    (void)new_failed(errmsg, spec, strerror(-rc), -rc);
    free(spec);
    return NULL;
}

/* ---- port enumeration ------------------------------------------------------------- */

const char *serial_transport_name(serial_transport_t t)
{
    switch (t) {
    case SERIAL_TRANSPORT_USB:
        return "usb";
    case SERIAL_TRANSPORT_BLUETOOTH:
        return "bluetooth";
    case SERIAL_TRANSPORT_NATIVE:
        break;
    }
    return "native";
}

/* strdup that keeps NULL; clears *ok when out of memory. */
static char *dup_or_null(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *ok = false;
    return d;
}

static int info_by_path(const void *a, const void *b)
{
    return strcmp(((const serial_port_info_t *)a)->path, ((const serial_port_info_t *)b)->path);
}

/* Fill *info from port; returns 0 or -ENOMEM (then *info holds what was copied). */
static int info_fill(serial_port_info_t *info, const struct sp_port *port)
{
    bool ok = true;
    const char *name = sp_get_port_name(port);
    const char *desc = sp_get_port_description(port);
    const char *base = strrchr(name, '/');
    info->path = dup_or_null(name, &ok);
    info->description = dup_or_null(desc && *desc ? desc : base ? base + 1 : name, &ok);
    switch (sp_get_port_transport(port)) {
    case SP_TRANSPORT_USB: {
        info->transport = SERIAL_TRANSPORT_USB;
        int vid = 0, pid = 0, bus = 0, addr = 0;
        if (sp_get_port_usb_vid_pid(port, &vid, &pid) == SP_OK) {
            info->usb_vid = (uint16_t)vid;
            info->usb_pid = (uint16_t)pid;
        }
        if (sp_get_port_usb_bus_address(port, &bus, &addr) == SP_OK) {
            info->usb_bus = bus;
            info->usb_address = addr;
        }
        info->usb_manufacturer = dup_or_null(sp_get_port_usb_manufacturer(port), &ok);
        info->usb_product = dup_or_null(sp_get_port_usb_product(port), &ok);
        info->usb_serial = dup_or_null(sp_get_port_usb_serial(port), &ok);
        break;
    }
    case SP_TRANSPORT_BLUETOOTH:
        info->transport = SERIAL_TRANSPORT_BLUETOOTH;
        info->bluetooth_address = dup_or_null(sp_get_port_bluetooth_address(port), &ok);
        break;
    case SP_TRANSPORT_NATIVE:
        info->transport = SERIAL_TRANSPORT_NATIVE;
        break;
    }
    return ok && info->path && info->description ? 0 : -ENOMEM;
}

int serial_list_ports(serial_port_info_t **ports, size_t *n)
{
    struct sp_port **list = NULL;
    int err = list_ports(&list);
    if (err)
        return -err;
    size_t count = 0;
    while (list && list[count])
        count++;
    serial_port_info_t *out = NULL;
    if (count > 0 && !(out = calloc(count, sizeof(*out)))) {
        sp_free_port_list(list);
        return -ENOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        if (info_fill(&out[i], list[i]) < 0) {
            sp_free_port_list(list);
            serial_ports_free(&out, count);
            return -ENOMEM;
        }
    }
    sp_free_port_list(list);
    if (count > 1)
        qsort(out, count, sizeof(*out), info_by_path);
    *ports = out;
    *n = count;
    return 0;
}

void serial_ports_free(serial_port_info_t **ports_p, size_t n)
{
    if (!ports_p || !*ports_p)
        return;
    serial_port_info_t *p = *ports_p;
    for (size_t i = 0; i < n; i++) {
        free(p[i].path);
        free(p[i].description);
        free(p[i].usb_manufacturer);
        free(p[i].usb_product);
        free(p[i].usb_serial);
        free(p[i].bluetooth_address);
    }
    free(p);
    *ports_p = NULL;
}
