/*
 * USB HID scanner input (drivers/scanner.h, drivers/usb.h), on libusb's asynchronous
 * API driven by the daemon's loop: no thread of ours, no blocking call.
 *
 * Layers, bottom up:
 * - usb_ctx: one libusb context per loop, shared by that loop's usb scanners and
 *   refcounted. Its pollfds are registered with the loop (libusb's notifiers keep the
 *   set current); when one is ready, or libusb's next timeout is due, the loop calls
 *   libusb_handle_events_timeout_completed() with a zero timeout.
 * - usb (one per `usb:...` config line): finds its devices through libusb hotplug
 *   callbacks (or a periodic re-scan where hotplug is missing) and owns them.
 * - usb_dev (one per attached matching device): a small state machine,
 *       WAIT -> SETUP -> READING -> STOPPING -> WAIT (reopen) / IGNORED / freed
 *   driven by libusb completions and by loop timers. Hotplug callbacks and transfer
 *   completions only record what happened and schedule a timer when a handle must be
 *   opened or closed: libusb runs them inside event handling, where opening is refused
 *   and closing the handle of the running transfer would pull it from under libusb.
 *
 * Listing the attached HID devices for rmactl is drivers/usb_list.c.
 *
 * A device is never trusted: reports of the wrong size, impossible keycodes and junk
 * become rejected reads with a reason, and the device goes on being read. Transfer
 * errors reconnect it; an unplug reports it gone and frees it; hotplug brings it back.
 */
#include "drivers/scanner.h"

#include <errno.h>
#include <libusb.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "drivers/hidpos.h"
#include "drivers/keymap.h"
#include "drivers/usb_internal.h"

/* Retry an open that failed: 100 ms, doubling to 5 s between attempts. */
#define USB_RETRY_MIN_MS 100
#define USB_RETRY_MAX_MS 5000
/*
 * The failure is reported on this attempt (about 0.7 s after arrival): right after
 * plug-in, udev has not yet applied the device's permissions, so a first
 * "permission denied" is normal and would only be noise in the log.
 */
#define USB_REPORT_AFTER_FAILURES 3
/* Where libusb has no hotplug: how often the bus is scanned for arrivals and removals. */
#define USB_RESCAN_MS 1000
#define USB_CONTROL_TIMEOUT_MS 2000
/* Destroying the last scanner of a loop waits this long for cancelled transfers. */
#define USB_ORPHAN_WAIT_MS 2000

/* Reasons of the events a lost device causes. */
#define UNPLUGGED "device unplugged"
#define UNPLUGGED_CUT "device unplugged before end of line"
#define FAILED_CUT "USB transfer failed before end of line"

/* HID class requests (HID 1.11, 7.2). */
#define HID_SET_PROTOCOL 0x0B
#define HID_SET_REPORT 0x09
#define HID_REPORT_OUTPUT 0x02
#define HID_BOOT_PROTOCOL 0

/* ==== the shared libusb context ==================================================== */

struct usb_dev;

struct usb_ctx {
    struct usb_ctx *next;       /* the registry, one context per loop */
    loop_t *loop;
    libusb_context *lu;
    unsigned refs;
    uint64_t timeout_timer;     /* libusb's next timeout; 0 = none armed */
    int fd_error;               /* an fd libusb added that the loop refused (-errno) */
    int in_events;              /* inside libusb_handle_events*: handles stay open */
    struct usb_dev *orphans;    /* devices of destroyed scanners, transfers still out */
    uint64_t reap_timer;
};

/* Contexts are found by loop; loops may live on different threads. */
static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static struct usb_ctx *ctx_list;

static void ctx_reap_orphans(struct usb_ctx *c);
static void ctx_drop_orphans(struct usb_ctx *c);

/* Arm (or drop) the loop timer for libusb's next internal timeout. */
static int64_t ctx_timeout_fired(loop_t *loop, uint64_t id, void *data);

static void ctx_arm_timeout(struct usb_ctx *c)
{
    struct timeval tv;
    if (c->timeout_timer) {
        (void)loop_del_timer(c->loop, c->timeout_timer);
        c->timeout_timer = 0;
    }
    if (libusb_get_next_timeout(c->lu, &tv) != 1)
        return;
    int64_t ms = (int64_t)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
    /* Without the timer (out of memory) only a timed-out control transfer waits longer. */
    c->timeout_timer = loop_add_timer(c->loop, ms, ctx_timeout_fired, c);
}

/* Let libusb handle whatever is ready, without waiting. */
static void ctx_handle_events(struct usb_ctx *c)
{
    struct timeval zero = { 0, 0 };
    c->in_events++;
    /* Errors here are per-transfer and arrive through their callbacks. */
    (void)libusb_handle_events_timeout_completed(c->lu, &zero, NULL);
    c->in_events--;
    ctx_arm_timeout(c);
}

static int64_t ctx_timeout_fired(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    struct usb_ctx *c = data;
    c->timeout_timer = 0;
    ctx_handle_events(c);
    return -1;
}

static void ctx_fd_ready(loop_t *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    (void)events;
    ctx_handle_events(data);
}

static unsigned loop_events(short events)
{
    return (events & POLLIN ? LOOP_IN : 0) | (events & POLLOUT ? LOOP_OUT : 0);
}

/* libusb opened an fd (a device was opened): watch it. */
static void ctx_pollfd_added(int fd, short events, void *data)
{
    struct usb_ctx *c = data;
    int rc = loop_add_fd(c->loop, fd, loop_events(events), ctx_fd_ready, c);
    if (rc == -EEXIST)
        rc = loop_mod_fd(c->loop, fd, loop_events(events));
    if (rc < 0)
        c->fd_error = rc;  /* noticed by whoever made libusb open it */
}

static void ctx_pollfd_removed(int fd, void *data)
{
    struct usb_ctx *c = data;
    (void)loop_del_fd(c->loop, fd);
}

/* Register or unregister every fd libusb has now. Returns 0 or -errno. */
static int ctx_watch_fds(struct usb_ctx *c, bool on)
{
    const struct libusb_pollfd **fds = libusb_get_pollfds(c->lu);
    if (!fds)
        return on ? -ENOMEM : 0;
    int rc = 0;
    for (size_t i = 0; fds[i]; i++) {
        if (!on) {
            (void)loop_del_fd(c->loop, fds[i]->fd);
            continue;
        }
        c->fd_error = 0;
        ctx_pollfd_added(fds[i]->fd, fds[i]->events, c);
        if (c->fd_error) {
            rc = c->fd_error;
            break;
        }
    }
    libusb_free_pollfds(fds);
    return rc;
}

static void ctx_free(struct usb_ctx *c)
{
    if (c->timeout_timer)
        (void)loop_del_timer(c->loop, c->timeout_timer);
    if (c->reap_timer)
        (void)loop_del_timer(c->loop, c->reap_timer);
    if (c->lu) {
        libusb_set_pollfd_notifiers(c->lu, NULL, NULL, NULL);
        (void)ctx_watch_fds(c, false);
        libusb_exit(c->lu);
    }
    free(c);
}

/*
 * The context of loop, made on first use. Returns NULL with *err set to a negative
 * errno and *why to libusb's message when libusb cannot start.
 */
static struct usb_ctx *ctx_get(loop_t *loop, int *err, const char **why)
{
    struct usb_ctx *c;
    *why = NULL;
    if (pthread_mutex_lock(&ctx_lock) != 0) {
        *err = -EDEADLK;
        return NULL;
    }
    for (c = ctx_list; c; c = c->next)
        if (c->loop == loop)
            break;
    if (c) {
        c->refs++;
        (void)pthread_mutex_unlock(&ctx_lock);
        return c;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        *err = -ENOMEM;
        goto out;
    }
    c->loop = loop;
    int rc = libusb_init(&c->lu);
    if (rc < 0) {
        c->lu = NULL;
        *why = libusb_strerror(rc);
        *err = rc == LIBUSB_ERROR_NO_MEM ? -ENOMEM : -EIO;
        goto fail;
    }
    /* Notifiers first, so that no fd libusb opens in between is missed. */
    libusb_set_pollfd_notifiers(c->lu, ctx_pollfd_added, ctx_pollfd_removed, c);
    if ((*err = ctx_watch_fds(c, true)) < 0)
        goto fail;
    c->refs = 1;
    c->next = ctx_list;
    ctx_list = c;
    goto out;
fail:
    ctx_free(c);
    c = NULL;
out:
    (void)pthread_mutex_unlock(&ctx_lock);
    return c;
}

/*
 * Drop a reference. The last one waits (a bounded time) for the transfers of
 * destroyed scanners' devices to come back, then closes everything: the loop may be
 * destroyed right after, and a claimed device must not stay claimed.
 */
static void ctx_put(struct usb_ctx *c)
{
    if (pthread_mutex_lock(&ctx_lock) != 0)
        return;  /* cannot happen with a default mutex; leaking beats corrupting */
    bool last = --c->refs == 0;
    if (last) {
        for (struct usb_ctx **pp = &ctx_list; *pp; pp = &(*pp)->next) {
            if (*pp == c) {
                *pp = c->next;
                break;
            }
        }
    }
    (void)pthread_mutex_unlock(&ctx_lock);
    if (!last)
        return;
    int64_t deadline = loop_now_ms() + USB_ORPHAN_WAIT_MS;
    ctx_reap_orphans(c);
    while (c->orphans && loop_now_ms() < deadline) {
        struct timeval tv = { 0, 50 * 1000 };
        c->in_events++;
        (void)libusb_handle_events_timeout_completed(c->lu, &tv, NULL);
        c->in_events--;
        ctx_reap_orphans(c);
    }
    ctx_drop_orphans(c);
    ctx_free(c);
}

/* ==== devices ====================================================================== */

struct usb;

enum dev_state {
    DEV_WAIT,       /* its work timer will open it (first time, or again after a failure) */
    DEV_SETUP,      /* open; control transfers are choosing and preparing the interface */
    DEV_READING,    /* interrupt transfer out, CONNECTED reported */
    DEV_STOPPING,   /* transfers being cancelled; then closed, and `after` */
    DEV_IGNORED,    /* not ours (serial) or not a scanner: left alone until unplugged */
};

enum dev_after { AFTER_REOPEN, AFTER_FREE, AFTER_IGNORE };

enum dev_mode { MODE_KBD, MODE_POS };

/* What the control transfer in flight is for. */
enum ctl_step { STEP_LANGS, STEP_SERIAL, STEP_RDESC, STEP_PROTOCOL };


struct usb_dev {
    struct usb_dev *next;
    struct usb *u;          /* owner; NULL once orphaned (scanner destroyed) */
    struct usb_ctx *c;
    libusb_device *dev;     /* referenced */
    char *id;               /* "usb:0c2e:0b61@1-4.2" */
    enum dev_state state;
    enum dev_after after;   /* STOPPING: what follows the close */
    bool gone;              /* unplugged: never reopened, freed once closed */
    bool connected;         /* CONNECTED reported, DISCONNECTED owed */

    uint64_t work_timer;    /* open, reopen, close */
    unsigned failures;      /* consecutive failed opens */
    int reported_err;       /* libusb error last reported for this streak, 0 = none */

    libusb_device_handle *h;
    usb_hid_iface_t cand[USB_MAX_IFACES];
    size_t ncand, probe;
    char note[160];         /* why an interface was not taken (for "not a scanner") */
    int claimed;            /* interface claimed, -1 = none */
    bool detached;          /* we detached the kernel's driver from `claimed` */
    uint16_t langid;

    struct libusb_transfer *ctl;
    uint8_t *ctl_buf;
    enum ctl_step step;
    bool ctl_busy;

    enum dev_mode mode;
    kbd_decoder_t *kbd;
    hidpos_t *pos;
    struct libusb_transfer *in;
    uint8_t *in_buf;
    bool in_busy;

    uint64_t eol_timer;
    int64_t last_input_ms;
    const char *cut_reason; /* set while a pending line is being ended as rejected */

    /* HID POS answers (scanner_feedback): the layout's output report, one at a time. */
    hidpos_layout_t lay;
    struct libusb_transfer *out;
    uint8_t *out_buf;
    bool out_busy;
};

struct usb {
    scanner_t *s;
    struct usb_ctx *c;
    loop_t *loop;
    uint16_t vid, pid;
    char *serial;           /* NULL: any device */
    keymap_t *map;          /* compiled once here; each device's decoder holds a reference */
    bool alt;               /* the scanner types Alt + keypad codes (alt=yes) */
    bool detach, eol_required;
    int eol_ms;
    bool hotplug;
    libusb_hotplug_callback_handle hp;
    uint64_t rescan_timer;
    struct usb_dev *devs;
    size_t nconnected;
};

static void dev_open(struct usb_dev *d);
static void dev_retry(struct usb_dev *d, const char *what, int rc, const char *why);
static void dev_stop(struct usb_dev *d, enum dev_after after);
static void dev_schedule(struct usb_dev *d, int64_t delay_ms);
static void probe_next(struct usb_dev *d);

static void dev_emit(struct usb_dev *d, scanner_ev_kind_t kind, const uint8_t *raw,
                     size_t raw_len, const char *reason)
{
    scanner_event_t ev = { .kind = kind, .scanner_id = d->id, .raw = raw, .raw_len = raw_len,
                           .reason = reason };
    scanner_emit(d->u->s, &ev);
}

/* A libusb error as the one line the daemon logs. */
static const char *usb_errstr(int rc)
{
    switch (rc) {
    case LIBUSB_ERROR_ACCESS:
        return "permission denied (give rmad's user access to the device, e.g. with a "
               "udev rule)";
    case LIBUSB_ERROR_BUSY:
        return "the interface is in use by another program";
    case LIBUSB_ERROR_NO_MEM:
        return "out of memory";
    default:
        return libusb_strerror(rc);
    }
}

/* Release the claimed interface, giving it back to the kernel's driver if we took it. */
static void dev_release(struct usb_dev *d)
{
    if (d->claimed < 0)
        return;
    /* Failures leave nothing to undo: the handle is closed next anyway. */
    (void)libusb_release_interface(d->h, d->claimed);
    if (d->detached && !d->gone)
        (void)libusb_attach_kernel_driver(d->h, d->claimed);
    d->claimed = -1;
    d->detached = false;
}

/* Close the handle and free what reading needed; no transfer may be in flight. */
static void dev_close(struct usb_dev *d)
{
    if (d->eol_timer) {
        (void)loop_del_timer(d->c->loop, d->eol_timer);
        d->eol_timer = 0;
    }
    if (d->h) {
        dev_release(d);
        libusb_close(d->h);
        d->h = NULL;
    }
    libusb_free_transfer(d->in);
    d->in = NULL;
    free(d->in_buf);
    d->in_buf = NULL;
    libusb_free_transfer(d->ctl);
    d->ctl = NULL;
    free(d->ctl_buf);
    d->ctl_buf = NULL;
    libusb_free_transfer(d->out);
    d->out = NULL;
    free(d->out_buf);
    d->out_buf = NULL;
    memset(&d->lay, 0, sizeof(d->lay));
    kbd_decoder_destroy(&d->kbd);
    hidpos_destroy(&d->pos);
    d->ncand = d->probe = 0;
    d->note[0] = '\0';
}

static void dev_free(struct usb_dev *d)
{
    if (d->work_timer)
        (void)loop_del_timer(d->c->loop, d->work_timer);
    dev_close(d);
    libusb_unref_device(d->dev);
    free(d->id);
    free(d);
}

/* Take d out of its scanner's list and free it. */
static void dev_unlink_free(struct usb_dev *d)
{
    for (struct usb_dev **pp = &d->u->devs; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
    dev_free(d);
}

static bool dev_busy(const struct usb_dev *d)
{
    return d->in_busy || d->ctl_busy || d->out_busy;
}

/* A transfer came back: once none is out, a stopping device can be closed. */
static void dev_check_stopped(struct usb_dev *d)
{
    if (dev_busy(d))
        return;
    if (!d->u) {
        /* Orphan: the context closes it outside event handling. */
        ctx_reap_orphans(d->c);
        return;
    }
    if (d->state == DEV_STOPPING)
        dev_schedule(d, 0);
}

/* ---- reading: keyboard-wedge and HID POS reports -------------------------------- */

/* A line from the keyboard decoder: a scan, or a rejected read. */
static void kbd_line(const char *line, size_t len, const char *reason, void *data)
{
    struct usb_dev *d = data;
    const char *why = reason ? reason : d->cut_reason;
    if (why) {
        /* Good lines end with '\n', which is not part of what was read. */
        dev_emit(d, SCANNER_EV_REJECTED, (const uint8_t *)line, reason ? len : len - 1, why);
        return;
    }
    scanner_emit_read(d->u->s, d->id, (const uint8_t *)line, len - 1);
}

/*
 * End the pending keyboard line, if any, as a rejected read with this reason (an
 * unplug, a bad report, no Enter in time): it may be missing characters, so it is
 * never taken as a scan.
 */
static void kbd_cut(struct usb_dev *d, const char *why)
{
    d->cut_reason = why;
    kbd_decoder_flush(d->kbd);
    d->cut_reason = NULL;
}

/* The pending scan ended without its end (keyboard line or HID POS reports). */
static void dev_cut_input(struct usb_dev *d, const char *why)
{
    if (d->kbd) {
        kbd_cut(d, why);
    } else if (d->pos) {
        const uint8_t *part;
        size_t n;
        if (hidpos_take_partial(d->pos, &part, &n))
            dev_emit(d, SCANNER_EV_REJECTED, part, n, why);
    }
}

/*
 * eol_ms after the last report: end what is pending. A keyboard line is taken as a
 * scan with eol=none and rejected with eol=required; HID POS scans always end with a
 * final report, so one still waiting for it is rejected.
 */
static int64_t dev_eol_fired(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    struct usb_dev *d = data;
    struct usb *u = d->u;
    int64_t idle = loop_now_ms() - d->last_input_ms;
    if (idle < u->eol_ms)
        return u->eol_ms - idle;
    d->eol_timer = 0;
    char why[96];
    if (d->kbd && !u->eol_required) {
        kbd_decoder_flush(d->kbd);
    } else if (d->kbd) {
        (void)snprintf(why, sizeof(why), "no end of line within %d ms", u->eol_ms);
        kbd_cut(d, why);
    } else {
        (void)snprintf(why, sizeof(why), "HID POS scan without its final report within %d ms",
                       u->eol_ms);
        dev_cut_input(d, why);
    }
    return -1;
}

static void dev_eol_arm(struct usb_dev *d)
{
    d->last_input_ms = loop_now_ms();
    if (!d->eol_timer)
        d->eol_timer = loop_add_timer(d->c->loop, d->u->eol_ms, dev_eol_fired, d);
}

static void kbd_report(struct usb_dev *d, const uint8_t *r, size_t len)
{
    if (len != KBD_REPORT_LEN) {
        char why[96];
        kbd_cut(d, "line cut short by a bad HID report");
        (void)snprintf(why, sizeof(why), "bad HID report: %zu bytes (a boot keyboard sends %d)",
                       len, KBD_REPORT_LEN);
        dev_emit(d, SCANNER_EV_REJECTED, r, len, why);
        return;
    }
    (void)kbd_decoder_feed(d->kbd, r, len);  /* the length is right: cannot fail */
    dev_eol_arm(d);
}

static void pos_report(struct usb_dev *d, const uint8_t *r, size_t len)
{
    const uint8_t *out, *part;
    size_t n, pn;
    const char *reason = NULL;
    char why[192];
    switch (hidpos_feed(d->pos, r, len, &out, &n, &reason)) {
    case HIDPOS_MORE:
        if (hidpos_pending(d->pos))
            dev_eol_arm(d);
        break;
    case HIDPOS_SCAN:
        scanner_emit_read(d->u->s, d->id, out, n);
        break;
    case HIDPOS_LONG:
        dev_emit(d, SCANNER_EV_REJECTED, out, n, reason);
        break;
    case HIDPOS_BAD:
        (void)snprintf(why, sizeof(why), "bad HID POS report: %s", reason);
        if (hidpos_take_partial(d->pos, &part, &pn))
            dev_emit(d, SCANNER_EV_REJECTED, part, pn, "scan cut short by a bad HID report");
        dev_emit(d, SCANNER_EV_REJECTED, r, len, why);
        break;
    }
}

/*
 * The device is lost for now (unplugged, or its transfers fail): what it was typing is
 * rejected with `cut`, DISCONNECTED is reported with `reason` if CONNECTED was, and
 * it is stopped.
 */
static void dev_lost(struct usb_dev *d, const char *reason, const char *cut,
                     enum dev_after after)
{
    if (d->state == DEV_STOPPING) {
        if (after == AFTER_FREE)
            d->after = AFTER_FREE;
        return;
    }
    dev_cut_input(d, cut);
    if (d->connected) {
        d->connected = false;
        d->u->nconnected--;
        dev_emit(d, SCANNER_EV_DISCONNECTED, NULL, 0, reason);
    }
    dev_stop(d, after);
}

static void in_done(struct libusb_transfer *t)
{
    struct usb_dev *d = t->user_data;
    d->in_busy = false;
    if (!d->u || d->state != DEV_READING) {
        dev_check_stopped(d);
        return;
    }
    char why[128];
    switch (t->status) {
    case LIBUSB_TRANSFER_COMPLETED:
        /* Read, not just opened: a device that fails right after opening backs off. */
        d->failures = 0;
        if (d->mode == MODE_KBD)
            kbd_report(d, t->buffer, (size_t)t->actual_length);
        else
            pos_report(d, t->buffer, (size_t)t->actual_length);
        break;
    case LIBUSB_TRANSFER_OVERFLOW:
        /* More than the endpoint's packet size: junk from the device, not a failure. */
        dev_cut_input(d, "scan cut short by a bad HID report");
        dev_emit(d, SCANNER_EV_REJECTED, t->buffer, (size_t)t->actual_length,
                 "bad HID report: longer than the endpoint's packets");
        break;
    case LIBUSB_TRANSFER_NO_DEVICE:
        dev_lost(d, UNPLUGGED, UNPLUGGED_CUT, AFTER_REOPEN);
        return;
    default:
        (void)snprintf(why, sizeof(why), "USB transfer failed (%s); reconnecting",
                       t->status == LIBUSB_TRANSFER_STALL       ? "endpoint stalled"
                       : t->status == LIBUSB_TRANSFER_TIMED_OUT ? "timed out"
                                                                : "I/O error");
        d->failures++;
        dev_lost(d, why, FAILED_CUT, AFTER_REOPEN);
        return;
    }
    if (d->state != DEV_READING)
        return;
    int rc = libusb_submit_transfer(t);
    if (rc == 0) {
        d->in_busy = true;
        return;
    }
    if (rc == LIBUSB_ERROR_NO_DEVICE) {
        dev_lost(d, UNPLUGGED, UNPLUGGED_CUT, AFTER_REOPEN);
    } else {
        (void)snprintf(why, sizeof(why), "cannot read the device: %s; reconnecting",
                       usb_errstr(rc));
        d->failures++;
        dev_lost(d, why, FAILED_CUT, AFTER_REOPEN);
    }
}

/* Everything is ready: submit the interrupt transfer and report the device. */
static void dev_start_reading(struct usb_dev *d, const usb_hid_iface_t *k, size_t report_len)
{
    struct usb *u = d->u;
    int len = (int)(report_len > k->mps ? report_len : k->mps);
    d->in = libusb_alloc_transfer(0);
    /* Zeroed: nothing uninitialised leaves the process, even where usbfs is emulated. */
    d->in_buf = calloc(1, (size_t)len);
    int rc = LIBUSB_ERROR_NO_MEM;
    if (d->in && d->in_buf) {
        libusb_fill_interrupt_transfer(d->in, d->h, k->ep, d->in_buf, len, in_done, d, 0);
        rc = libusb_submit_transfer(d->in);
    }
    if (rc == LIBUSB_ERROR_NO_DEVICE) {
        dev_stop(d, AFTER_REOPEN);  /* hotplug reports the removal */
        return;
    }
    if (rc < 0) {
        dev_retry(d, "cannot read the device", rc, NULL);
        return;
    }
    d->in_busy = true;
    d->state = DEV_READING;
    d->reported_err = 0;
    d->connected = true;
    u->nconnected++;
    dev_emit(d, SCANNER_EV_CONNECTED, NULL, 0, NULL);
}

/* ---- setup: serial number, interface, protocol ---------------------------------- */

/*
 * Opening failed in a way a retry may fix (permissions not applied yet, interface
 * busy): close, and try again later. Reported once per streak of failures.
 */
static void dev_retry(struct usb_dev *d, const char *what, int rc, const char *why)
{
    d->failures++;
    if (d->failures >= USB_REPORT_AFTER_FAILURES && d->reported_err != rc) {
        char msg[256];
        (void)snprintf(msg, sizeof(msg), "%s: %s; retrying", what, why ? why : usb_errstr(rc));
        d->reported_err = rc;
        dev_emit(d, SCANNER_EV_DISCONNECTED, NULL, 0, msg);
    }
    dev_stop(d, AFTER_REOPEN);
}

/* Not ours or not usable: say why (when there is something to say) and let it be. */
static void dev_ignore(struct usb_dev *d, const char *why)
{
    if (why)
        dev_emit(d, SCANNER_EV_DISCONNECTED, NULL, 0, why);
    dev_stop(d, AFTER_IGNORE);
}

static void ctl_done(struct libusb_transfer *t);

/* Submit the setup's control transfer (length bytes of data in or out). */
static int ctl_submit(struct usb_dev *d, enum ctl_step step, uint8_t type, uint8_t req,
                      uint16_t value, uint16_t index, uint16_t length)
{
    libusb_fill_control_setup(d->ctl_buf, type, req, value, index, length);
    libusb_fill_control_transfer(d->ctl, d->h, d->ctl_buf, ctl_done, d, USB_CONTROL_TIMEOUT_MS);
    d->step = step;
    int rc = libusb_submit_transfer(d->ctl);
    if (rc == 0) {
        d->ctl_busy = true;
        ctx_arm_timeout(d->c);
    }
    return rc;
}

/* A control transfer could not even start. */
static void ctl_failed(struct usb_dev *d, const char *what, int rc)
{
    if (rc == LIBUSB_ERROR_NO_DEVICE)
        dev_stop(d, AFTER_REOPEN);  /* hotplug reports the removal */
    else
        dev_retry(d, what, rc, NULL);
}

/* Claim an interface, detaching the kernel's driver first when configured to. */
static int dev_claim(struct usb_dev *d, uint8_t ifnum, const char **why)
{
    *why = NULL;
    if (d->u->detach && libusb_kernel_driver_active(d->h, ifnum) == 1) {
        int rc = libusb_detach_kernel_driver(d->h, ifnum);
        if (rc == 0)
            d->detached = true;
        else if (rc != LIBUSB_ERROR_NOT_FOUND)
            return rc;
    }
    int rc = libusb_claim_interface(d->h, ifnum);
    if (rc == 0) {
        d->claimed = ifnum;
        return 0;
    }
    if (d->detached) {
        (void)libusb_attach_kernel_driver(d->h, ifnum);
        d->detached = false;
    }
    if (rc == LIBUSB_ERROR_BUSY && !d->u->detach && libusb_kernel_driver_active(d->h, ifnum) == 1)
        *why = "the kernel's HID driver holds the interface (set detach=yes to take it)";
    return rc;
}

/* No HID POS interface: read the boot keyboard, if there is one. */
static void use_keyboard(struct usb_dev *d)
{
    const usb_hid_iface_t *k = NULL;
    for (size_t i = 0; i < d->ncand && !k; i++)
        if (d->cand[i].boot_kbd)
            k = &d->cand[i];
    if (!k) {
        char why[256];
        (void)snprintf(why, sizeof(why), "not a barcode scanner: %s",
                       d->note[0] ? d->note : "no HID boot keyboard or HID POS interface");
        dev_ignore(d, why);
        return;
    }
    const char *why;
    int rc = dev_claim(d, k->ifnum, &why);
    if (rc < 0) {
        dev_retry(d, "cannot claim the scanner's interface", rc, why);
        return;
    }
    d->probe = (size_t)(k - d->cand);
    /* HID 1.11, 7.2.6: devices start in report protocol; the boot layout must be asked for. */
    rc = ctl_submit(d, STEP_PROTOCOL, LIBUSB_ENDPOINT_OUT | LIBUSB_REQUEST_TYPE_CLASS |
                    LIBUSB_RECIPIENT_INTERFACE, HID_SET_PROTOCOL, HID_BOOT_PROTOCOL, k->ifnum, 0);
    if (rc < 0)
        ctl_failed(d, "cannot set the boot protocol", rc);
}

static void note_iface(struct usb_dev *d, uint8_t ifnum, const char *what)
{
    size_t n = strlen(d->note);
    (void)snprintf(d->note + n, sizeof(d->note) - n, "%sinterface %u: %s", n ? "; " : "",
                   ifnum, what);
}

/* Read the report descriptor of the next interface that might be HID POS. */
static void probe_next(struct usb_dev *d)
{
    while (d->probe < d->ncand && d->cand[d->probe].boot_kbd)
        d->probe++;
    if (d->probe == d->ncand) {
        use_keyboard(d);
        return;
    }
    const usb_hid_iface_t *k = &d->cand[d->probe];
    const char *why;
    int rc = dev_claim(d, k->ifnum, &why);
    if (rc < 0) {
        dev_retry(d, "cannot claim a HID interface", rc, why);
        return;
    }
    rc = ctl_submit(d, STEP_RDESC, LIBUSB_ENDPOINT_IN | LIBUSB_REQUEST_TYPE_STANDARD |
                    LIBUSB_RECIPIENT_INTERFACE, LIBUSB_REQUEST_GET_DESCRIPTOR,
                    HID_DT_REPORT << 8, k->ifnum, k->rdesc_len);
    if (rc < 0)
        ctl_failed(d, "cannot read the report descriptor", rc);
}

static void rdesc_done(struct usb_dev *d, struct libusb_transfer *t)
{
    const usb_hid_iface_t *k = &d->cand[d->probe];
    if (t->status == LIBUSB_TRANSFER_COMPLETED) {
        hidpos_layout_t lay;
        const char *reason = NULL;
        int rc = hidpos_parse(libusb_control_transfer_get_data(t), (size_t)t->actual_length,
                              &lay, &reason);
        if (rc == 0) {
            d->pos = hidpos_new(&lay, scanner_max_len(d->u->s));
            d->lay = lay;
            d->mode = MODE_POS;
            if (!d->pos) {
                dev_retry(d, "cannot start reading", LIBUSB_ERROR_NO_MEM, NULL);
                return;
            }
            dev_start_reading(d, k, lay.report_len);
            return;
        }
        if (rc != -ENOENT)
            note_iface(d, k->ifnum, reason ? reason : "unreadable report descriptor");
    } else {
        note_iface(d, k->ifnum, "its report descriptor cannot be read");
    }
    /* Not HID POS: give the interface back and look further. */
    dev_release(d);
    d->probe++;
    probe_next(d);
}

/* ASCII of a string descriptor (UTF-16LE), other characters as '?', like libusb's. */
static void string_ascii(const uint8_t *desc, size_t len, char *out, size_t size)
{
    size_t n = 0;
    if (len >= 2 && desc[1] == LIBUSB_DT_STRING && desc[0] <= len)
        len = desc[0];
    else
        len = 0;
    for (size_t i = 2; i + 1 < len && n + 1 < size; i += 2)
        out[n++] = desc[i + 1] == 0 && desc[i] < 0x80 ? (char)desc[i] : '?';
    out[n] = '\0';
}

static void serial_done(struct usb_dev *d, struct libusb_transfer *t)
{
    if (t->status != LIBUSB_TRANSFER_COMPLETED) {
        if (t->status == LIBUSB_TRANSFER_STALL)
            dev_ignore(d, "cannot read the device's serial number (the config asks for one)");
        else
            dev_retry(d, "cannot read the serial number", LIBUSB_ERROR_IO, NULL);
        return;
    }
    const uint8_t *data = libusb_control_transfer_get_data(t);
    if (d->step == STEP_LANGS) {
        struct libusb_device_descriptor dd;
        if (t->actual_length < 4 || data[1] != LIBUSB_DT_STRING ||
            libusb_get_device_descriptor(d->dev, &dd) < 0) {
            dev_ignore(d, "cannot read the device's serial number (the config asks for one)");
            return;
        }
        d->langid = (uint16_t)(data[2] | data[3] << 8);
        int rc = ctl_submit(d, STEP_SERIAL, LIBUSB_ENDPOINT_IN, LIBUSB_REQUEST_GET_DESCRIPTOR,
                            (uint16_t)(LIBUSB_DT_STRING << 8 | dd.iSerialNumber), d->langid, 255);
        if (rc < 0)
            ctl_failed(d, "cannot read the serial number", rc);
        return;
    }
    char serial[128];
    string_ascii(data, (size_t)t->actual_length, serial, sizeof(serial));
    if (strcmp(serial, d->u->serial) != 0) {
        dev_ignore(d, NULL);  /* another scanner's device: none of our business */
        return;
    }
    probe_next(d);
}

static void ctl_done(struct libusb_transfer *t)
{
    struct usb_dev *d = t->user_data;
    d->ctl_busy = false;
    if (!d->u || d->state != DEV_SETUP) {
        dev_check_stopped(d);
        return;
    }
    if (t->status == LIBUSB_TRANSFER_NO_DEVICE) {
        dev_stop(d, AFTER_REOPEN);  /* hotplug reports the removal */
        return;
    }
    switch (d->step) {
    case STEP_LANGS:
    case STEP_SERIAL:
        serial_done(d, t);
        break;
    case STEP_RDESC:
        rdesc_done(d, t);
        break;
    case STEP_PROTOCOL:
        /*
         * A boot keyboard that refuses SET_PROTOCOL most likely sends the boot layout
         * anyway; reports of any other size are rejected one by one.
         */
        if (!(d->kbd = kbd_decoder_new(d->u->map, scanner_max_len(d->u->s), kbd_line, d))) {
            dev_retry(d, "cannot start reading", LIBUSB_ERROR_NO_MEM, NULL);
            return;
        }
        kbd_decoder_set_alt_mode(d->kbd, d->u->alt);
        d->mode = MODE_KBD;
        dev_start_reading(d, &d->cand[d->probe], KBD_REPORT_LEN);
        break;
    }
}

static void dev_open(struct usb_dev *d)
{
    struct usb_ctx *c = d->c;
    struct libusb_device_descriptor dd;
    c->fd_error = 0;
    int rc = libusb_open(d->dev, &d->h);
    if (rc == 0 && c->fd_error) {
        libusb_close(d->h);
        rc = LIBUSB_ERROR_NO_MEM;
    }
    if (rc < 0) {
        d->h = NULL;
        if (rc == LIBUSB_ERROR_NO_DEVICE)
            d->gone = true;  /* its LEFT event is on the way; nothing to report */
        dev_retry(d, "cannot open the device", rc, NULL);
        return;
    }
    d->state = DEV_SETUP;
    d->claimed = -1;
    d->ctl = libusb_alloc_transfer(0);
    d->ctl_buf = calloc(1, LIBUSB_CONTROL_SETUP_SIZE + HIDPOS_DESC_MAX);
    if (!d->ctl || !d->ctl_buf) {
        dev_retry(d, "cannot open the device", LIBUSB_ERROR_NO_MEM, NULL);
        return;
    }
    if ((rc = usb_hid_ifaces(d->dev, d->cand, &d->ncand)) < 0) {
        dev_retry(d, "cannot read the configuration descriptor", rc, NULL);
        return;
    }
    for (size_t i = 0; i < d->ncand; i++) {
        usb_hid_iface_t *k = &d->cand[i];
        if (!k->boot_kbd && (k->rdesc_len == 0 || k->rdesc_len > HIDPOS_DESC_MAX)) {
            note_iface(d, k->ifnum, "no usable report descriptor length in its HID descriptor");
            memmove(k, k + 1, (d->ncand - i - 1) * sizeof(*k));
            d->ncand--;
            i--;
        }
    }
    if (!d->u->serial) {
        probe_next(d);
        return;
    }
    if (libusb_get_device_descriptor(d->dev, &dd) < 0 || dd.iSerialNumber == 0) {
        dev_ignore(d, "the device has no serial number (the config asks for one)");
        return;
    }
    rc = ctl_submit(d, STEP_LANGS, LIBUSB_ENDPOINT_IN, LIBUSB_REQUEST_GET_DESCRIPTOR,
                    LIBUSB_DT_STRING << 8, 0, 255);
    if (rc < 0)
        ctl_failed(d, "cannot read the serial number", rc);
}

/* ---- the device's life: stop, close, reopen, free -------------------------------- */

/*
 * Stop the device: cancel its transfers; once they are back, its work timer closes
 * it and does `after`.
 */
static void dev_stop(struct usb_dev *d, enum dev_after after)
{
    d->state = DEV_STOPPING;
    d->after = after;
    if (d->eol_timer) {
        (void)loop_del_timer(d->c->loop, d->eol_timer);
        d->eol_timer = 0;
    }
    /* A transfer that cannot be cancelled is completing anyway: wait for it either way. */
    if (d->in_busy)
        (void)libusb_cancel_transfer(d->in);
    if (d->ctl_busy)
        (void)libusb_cancel_transfer(d->ctl);
    if (d->out_busy)
        (void)libusb_cancel_transfer(d->out);
    dev_check_stopped(d);
}

static int64_t retry_delay(unsigned failures)
{
    int64_t ms = USB_RETRY_MIN_MS;
    for (unsigned i = 1; i < failures && ms < USB_RETRY_MAX_MS; i++)
        ms *= 2;
    return ms < USB_RETRY_MAX_MS ? ms : USB_RETRY_MAX_MS;
}

static int64_t dev_work(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    struct usb_dev *d = data;
    d->work_timer = 0;
    if (d->gone) {
        if (d->state == DEV_SETUP || d->state == DEV_READING)
            dev_lost(d, UNPLUGGED, UNPLUGGED_CUT, AFTER_FREE);
        d->state = DEV_STOPPING;
        d->after = AFTER_FREE;
    }
    switch (d->state) {
    case DEV_WAIT:
        dev_open(d);
        break;
    case DEV_STOPPING:
        if (dev_busy(d))
            break;  /* the last transfer back schedules us again */
        dev_close(d);
        if (d->after == AFTER_FREE || d->gone) {
            dev_unlink_free(d);
        } else if (d->after == AFTER_IGNORE) {
            d->state = DEV_IGNORED;
            if (d->work_timer)
                (void)loop_del_timer(d->c->loop, d->work_timer);
            d->work_timer = 0;
        } else {
            d->state = DEV_WAIT;
            dev_schedule(d, retry_delay(d->failures));
        }
        break;
    default:
        break;
    }
    return -1;
}

static void dev_schedule(struct usb_dev *d, int64_t delay_ms)
{
    if (d->work_timer)
        (void)loop_del_timer(d->c->loop, d->work_timer);
    d->work_timer = loop_add_timer(d->c->loop, delay_ms, dev_work, d);
    if (!d->work_timer && d->u)
        dev_emit(d, SCANNER_EV_DISCONNECTED, NULL, 0,
                 "out of memory: device left alone until it is replugged");
}

/* ---- arrivals and removals ------------------------------------------------------- */

static struct usb_dev *dev_find(struct usb *u, libusb_device *dev)
{
    for (struct usb_dev *d = u->devs; d; d = d->next)
        if (d->dev == dev)
            return d;
    return NULL;
}

/*
 * A matching device is attached: remember it and open it from a timer (libusb runs
 * hotplug callbacks inside event handling, where it refuses to open devices). Out of
 * memory, the arrival is lost until the device is replugged.
 */
static void dev_arrived(struct usb *u, libusb_device *dev)
{
    if (dev_find(u, dev))
        return;
    struct usb_dev *d = calloc(1, sizeof(*d));
    char *path = usb_port_path(dev);
    if (!d || !path || asprintf(&d->id, "usb:%04x:%04x@%s", u->vid, u->pid, path) < 0) {
        free(path);
        free(d);
        return;
    }
    free(path);
    d->u = u;
    d->c = u->c;
    d->dev = libusb_ref_device(dev);
    d->claimed = -1;
    d->state = DEV_WAIT;
    d->next = u->devs;
    u->devs = d;
    dev_schedule(d, 0);
}

static void dev_left(struct usb *u, libusb_device *dev)
{
    struct usb_dev *d = dev_find(u, dev);
    if (!d)
        return;
    d->gone = true;
    dev_schedule(d, 0);
}

static int hotplug_cb(libusb_context *lu, libusb_device *dev, libusb_hotplug_event ev,
                      void *data)
{
    (void)lu;
    if (ev == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED)
        dev_arrived(data, dev);
    else if (ev == LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT)
        dev_left(data, dev);
    return 0;  /* stay registered */
}

static bool dev_matches(const struct usb *u, libusb_device *dev)
{
    struct libusb_device_descriptor dd;
    return libusb_get_device_descriptor(dev, &dd) == 0 && dd.idVendor == u->vid &&
           dd.idProduct == u->pid;
}

/* Without hotplug: compare the bus with what we know, every USB_RESCAN_MS. */
static void rescan(struct usb *u)
{
    libusb_device **list;
    ssize_t n = libusb_get_device_list(u->c->lu, &list);
    if (n < 0)
        return;  /* tried again at the next rescan */
    for (ssize_t i = 0; i < n; i++)
        if (dev_matches(u, list[i]))
            dev_arrived(u, list[i]);
    for (struct usb_dev *d = u->devs; d; d = d->next) {
        bool present = false;
        for (ssize_t i = 0; i < n && !present; i++)
            present = list[i] == d->dev;
        if (!present && !d->gone)
            dev_left(u, d->dev);
    }
    libusb_free_device_list(list, 1);
}

static int64_t rescan_fired(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    rescan(data);
    return USB_RESCAN_MS;
}

/* ==== orphans: devices of destroyed scanners ======================================= */

static int64_t ctx_reap_fired(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    struct usb_ctx *c = data;
    c->reap_timer = 0;
    ctx_reap_orphans(c);
    return -1;
}

/*
 * Close and free the orphans whose transfers are back. Inside event handling this is
 * deferred to a timer: libusb still uses the handle of the transfer it just completed.
 */
static void ctx_reap_orphans(struct usb_ctx *c)
{
    if (c->in_events) {
        if (!c->reap_timer)
            c->reap_timer = loop_add_timer(c->loop, 0, ctx_reap_fired, c);
        return;
    }
    for (struct usb_dev **pp = &c->orphans; *pp;) {
        struct usb_dev *d = *pp;
        if (dev_busy(d)) {
            pp = &d->next;
            continue;
        }
        *pp = d->next;
        dev_free(d);
    }
}

/* Free the orphans whose transfers never came back: closing makes libusb drop them. */
static void ctx_drop_orphans(struct usb_ctx *c)
{
    while (c->orphans) {
        struct usb_dev *d = c->orphans;
        c->orphans = d->next;
        dev_free(d);
    }
}

/* ==== the scanner ================================================================== */

static size_t usb_clients(const void *impl)
{
    const struct usb *u = impl;
    return u->nconnected;
}

/* Close every device without reporting; the scanner_t is going away. */
static void usb_free(void *impl)
{
    struct usb *u = impl;
    if (!u)
        return;
    struct usb_ctx *c = u->c;
    if (c) {
        if (u->hotplug)
            libusb_hotplug_deregister_callback(c->lu, u->hp);
        if (u->rescan_timer)
            (void)loop_del_timer(c->loop, u->rescan_timer);
        while (u->devs) {
            struct usb_dev *d = u->devs;
            u->devs = d->next;
            if (d->work_timer)
                (void)loop_del_timer(c->loop, d->work_timer);
            d->work_timer = 0;
            if (d->eol_timer)
                (void)loop_del_timer(c->loop, d->eol_timer);
            d->eol_timer = 0;
            if (!dev_busy(d) && !c->in_events) {
                dev_free(d);
                continue;
            }
            /* Its transfers must come back before the handle can close: orphan it. */
            if (d->in_busy)
                (void)libusb_cancel_transfer(d->in);
            if (d->ctl_busy)
                (void)libusb_cancel_transfer(d->ctl);
            if (d->out_busy)
                (void)libusb_cancel_transfer(d->out);
            d->u = NULL;
            d->next = c->orphans;
            c->orphans = d;
        }
        ctx_reap_orphans(c);
        ctx_put(c);
    }
    keymap_unref(&u->map);
    free(u->serial);
    free(u);
}

static void out_done(struct libusb_transfer *t)
{
    struct usb_dev *d = t->user_data;
    d->out_busy = false;
    /* A scanner that refuses the report just does not beep: nothing to report. */
    dev_check_stopped(d);
}

/*
 * The answer as a HID POS output report (drivers/hidpos.h: good-read beep and LED,
 * error beep), sent with SET_REPORT on the control endpoint, which every HID device
 * has. One in flight per device: an answer while the previous one is still being
 * sent is dropped, as a beep that comes late is worse than none. Keyboard-wedge
 * scanners have no way back (-ENOTSUP).
 */
static int usb_feedback(void *impl, const char *scanner_id, scanner_reply_t reply,
                        const char *text)
{
    (void)text;
    struct usb *u = impl;
    struct usb_dev *d = u->devs;
    while (d && strcmp(d->id, scanner_id) != 0)
        d = d->next;
    if (!d || d->state != DEV_READING)
        return -ENOENT;
    if (d->mode != MODE_POS || !d->lay.fb.found)
        return -ENOTSUP;
    size_t len = 0;
    uint8_t report[64];
    int rc = hidpos_feedback_report(&d->lay, reply == SCANNER_REPLY_REJECT ? HIDPOS_SIGNAL_ERROR
                                                                           : HIDPOS_SIGNAL_GOOD,
                                    report, sizeof(report), &len);
    if (rc < 0)
        return rc == -ENOBUFS ? -ENOTSUP : rc;
    if (d->out_busy)
        return 0;
    if (!d->out && !(d->out = libusb_alloc_transfer(0)))
        return -ENOMEM;
    if (!d->out_buf && !(d->out_buf = calloc(1, LIBUSB_CONTROL_SETUP_SIZE + sizeof(report))))
        return -ENOMEM;
    libusb_fill_control_setup(d->out_buf, LIBUSB_ENDPOINT_OUT | LIBUSB_REQUEST_TYPE_CLASS |
                              LIBUSB_RECIPIENT_INTERFACE, HID_SET_REPORT,
                              (uint16_t)(HID_REPORT_OUTPUT << 8 | d->lay.fb.report_id),
                              (uint16_t)d->claimed, (uint16_t)len);
    memcpy(d->out_buf + LIBUSB_CONTROL_SETUP_SIZE, report, len);
    libusb_fill_control_transfer(d->out, d->h, d->out_buf, out_done, d, USB_CONTROL_TIMEOUT_MS);
    if ((rc = libusb_submit_transfer(d->out)) < 0)
        return rc == LIBUSB_ERROR_NO_DEVICE ? -ENOENT : -EIO;
    d->out_busy = true;
    ctx_arm_timeout(d->c);
    return 0;
}

static const scanner_ops_t usb_ops = {
    .kind = "usb",
    .clients = usb_clients,
    .destroy = usb_free,
    .feedback = usb_feedback,
};

/* Set *errmsg (when wanted) to "SPEC: what" and errno to err; returns NULL. */
static scanner_t *new_failed(char **errmsg, const char *spec, const char *what, int err)
{
    if (errmsg && asprintf(errmsg, "%s: %s", spec ? spec : "usb", what) < 0)
        *errmsg = NULL;
    errno = err;
    return NULL;
}

/*
 * The usb options of cfg, checked again (a config_scanner_t need not come from the
 * parser). The layout is compiled here, once for the scanner's lifetime; its reason,
 * when it fails, is malloc'd into *owned.
 */
static const char *usb_options(struct usb *u, const config_scanner_t *cfg, char **owned)
{
    const char *v = config_scanner_option(cfg, "layout");
    if (!(u->map = keymap_new(v ? v : "us", owned)))
        return *owned ? *owned : strerror(errno);
    v = config_scanner_option(cfg, "alt");
    if (v && strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
        return "alt must be yes or no";
    u->alt = v && strcmp(v, "yes") == 0;
    v = config_scanner_option(cfg, "detach");
    if (v && strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
        return "detach must be yes or no";
    u->detach = !v || strcmp(v, "yes") == 0;
    v = config_scanner_option(cfg, "eol");
    if (v && strcmp(v, "required") != 0 && strcmp(v, "none") != 0)
        return "eol must be required or none";
    u->eol_required = !v || strcmp(v, "required") == 0;
    v = config_scanner_option(cfg, "eol_ms");
    u->eol_ms = SCANNER_EOL_MS_DEFAULT;
    if (v) {
        char *end;
        errno = 0;
        long ms = strtol(v, &end, 10);
        if (errno || end == v || *end || ms < 10 || ms > 60000)
            return "eol_ms must be 10..60000";
        u->eol_ms = (int)ms;
    }
    return NULL;
}

scanner_t *scanner_new_usb(loop_t *loop, const config_scanner_t *cfg,
                           const scan_limits_t *lim, scanner_event_fn fn, void *data,
                           char **errmsg)
{
    if (errmsg)
        *errmsg = NULL;
    if (cfg && cfg->kind != CONFIG_SCANNER_USB)
        return new_failed(errmsg, cfg->spec, "not a usb scanner", EINVAL);
    if (!loop || !cfg || !fn)
        return new_failed(errmsg, cfg ? cfg->spec : NULL, strerror(EINVAL), EINVAL);

    char *spec = NULL;
    if (cfg->spec ? !(spec = strdup(cfg->spec))
                  : asprintf(&spec, "usb:%04x:%04x", cfg->vid, cfg->pid) < 0)
        return new_failed(errmsg, NULL, "out of memory", ENOMEM);
    struct usb *u = calloc(1, sizeof(*u));
    scanner_t *s = NULL;
    const char *why = NULL;
    char *why_owned = NULL;
    int err = ENOMEM;
    if (!u)
        goto fail;
    u->loop = loop;
    u->vid = cfg->vid;
    u->pid = cfg->pid;
    if ((why = usb_options(u, cfg, &why_owned))) {
        err = EINVAL;
        goto fail;
    }
    if (cfg->usb_serial && !(u->serial = strdup(cfg->usb_serial)))
        goto fail;
    int rc;
    const char *lwhy;
    if (!(u->c = ctx_get(loop, &rc, &lwhy))) {
        err = -rc;
        why = lwhy ? lwhy : strerror(err);
        goto fail;
    }
    if (!(s = scanner_create(&usb_ops, u, spec, lim, fn, data)))
        goto fail;
    u->s = s;
    scanner_budget_config(s, cfg);
    if (libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
        /* ENUMERATE: devices already attached arrive from inside this call. */
        rc = libusb_hotplug_register_callback(
            u->c->lu, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
            LIBUSB_HOTPLUG_ENUMERATE, u->vid, u->pid, LIBUSB_HOTPLUG_MATCH_ANY, hotplug_cb, u,
            &u->hp);
        if (rc < 0) {
            err = rc == LIBUSB_ERROR_NO_MEM ? ENOMEM : EIO;
            why = libusb_strerror(rc);
            goto fail;
        }
        u->hotplug = true;
    } else {
        rescan(u);
        if (!(u->rescan_timer = loop_add_timer(loop, USB_RESCAN_MS, rescan_fired, u)))
            goto fail;
    }
    free(spec);
    return s;

fail:
    if (s)
        scanner_destroy(&s);  /* frees u too */
    else
        usb_free(u);
    (void)new_failed(errmsg, spec ? spec : cfg->spec,
                     why ? why : strerror(err), err);
    free(why_owned);
    free(spec);
    return NULL;
}
