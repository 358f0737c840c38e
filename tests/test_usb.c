/*
 * USB HID scanners (drivers/usb.c, drivers/usb.h): the real driver on the real libusb,
 * against devices emulated by umockdev, in a real loop.
 *
 * umockdev works through its preload library, which must be in the process from the
 * start. So suite `usb` has two faces:
 * - without the preload (plain `test_runner`, make check, ASan, valgrind), it runs one
 *   test: re-executing `umockdev-wrapper test_runner usb` and checking that the child
 *   ran every USB test and all passed;
 * - under the preload, it runs the USB tests themselves.
 *
 * Each test builds a testbed (tests/fixtures/usb/: a root hub, keyboard-wedge
 * scanners, a HID POS scanner) and plugs, unplugs and replugs devices with umockdev's
 * testbed API; libusb sees them through sysfs, udev events and usbfs ioctls. Two ways
 * to make a device talk:
 * - umockdev's own replay of a recorded .ioctl file (kbd-scanner.ioctl, the recipe of
 *   the testbed notes). It replays its URBs round and round, so only the first pass
 *   is asserted;
 * - an emulated device (struct emu below): an ioctl handler on umockdev's worker
 *   thread that answers usbfs like the kernel does for a real device. It serves the
 *   report descriptor and string descriptors of the fixture, accepts SET_PROTOCOL,
 *   and hands out exactly the interrupt reports the test queues, once, then nothing:
 *   that is what eol timeouts, unplugs mid-line and garbage reports need.
 *
 * Waits are conditions polled in the loop under a 20 s watchdog, never sleeps; after
 * each exchange the loop is run a little longer to check that nothing else came.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/usbdevice_fs.h>
#include <umockdev.h>

#include "core/config.h"
#include "drivers/hidpos.h"
#include "drivers/keymap.h"
#include "drivers/scanner.h"
#include "drivers/usb.h"
#include "tests/helpers.h"
#include "tests/suites.h"

#define FIXTURES "tests/fixtures/usb/"
#define WATCHDOG_MS 20000
#define SETTLE_MS 200
#define MAX_EVENTS 64
#define EMU_QUEUE 1024  /* the Alt-mode recording: 738 reports */

#define KBD_VIDPID "0c2e:0b61"
#define POS_VIDPID "0c2e:0b6a"
/*
 * Options of scanners in tests that are not about the eol timeout: the longest one, so
 * that a stalled machine pausing between two reports of a scan cannot cut it.
 */
#define OPTS ",detach=no,eol_ms=60000"

/* ==== the emulated device ========================================================== */

struct emu {
    char devnode[32];           /* "/dev/bus/usb/001/005" */
    char syspath[192];          /* "/sys/devices/.../1-1" */
    const char *fixture;
    UMockdevIoctlBase *handler;
    pthread_mutex_t mu;         /* the fields below: shared with umockdev's thread */
    uint8_t rdesc[HIDPOS_DESC_MAX];
    size_t rdesc_len;
    char strings[4][64];        /* string descriptors 1..3: manufacturer, product, serial */
    struct { uint8_t b[80]; size_t n; int status; } q[EMU_QUEUE];
    size_t qhead, qtail;        /* reports queued by the test, not yet handed out */
    GList *clients;             /* struct emu_client: each open file of the device node */
    bool unplugged;
    bool driver;                /* the kernel's HID driver holds the interface */
    unsigned claim_busy;        /* CLAIMINTERFACE fails with EBUSY this many more times */
    unsigned delivered, claims, protocol_sets, rdesc_reads, serial_reads, detaches, attaches;
    /* Output reports the host set (SET_REPORT): wValue, wIndex and the data. */
    struct { unsigned value, index; uint8_t b[16]; size_t n; } out[8];
    unsigned n_out;
};

/*
 * One open file of the device node (a libusb handle). As with the kernel's usbfs, URBs
 * belong to the file that submitted them and are reaped from it only.
 */
struct emu_client {
    UMockdevIoctlClient *client;  /* referenced */
    GList *pending;               /* interrupt IN URBs waiting for a report */
    GList *done;                  /* URBs complete, waiting to be reaped */
};

static void emu_lock(struct emu *e)
{
    CU_ASSERT_FATAL(pthread_mutex_lock(&e->mu) == 0);
}

static void emu_unlock(struct emu *e)
{
    CU_ASSERT_FATAL(pthread_mutex_unlock(&e->mu) == 0);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                 : c >= 'a' && c <= 'f'           ? c - 'a' + 10
                                                                  : -1;
}

/* What the device says about itself, from its .umockdev file. */
static void emu_load_fixture(struct emu *e, const char *fixture)
{
    char *text = th_read_file(fixture, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    e->fixture = fixture;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "P: ", 3) == 0 && !e->syspath[0])
            snprintf(e->syspath, sizeof(e->syspath), "/sys%s", line + 3);
        else if (strncmp(line, "E: DEVNAME=", 11) == 0 && !e->devnode[0])
            snprintf(e->devnode, sizeof(e->devnode), "%s", line + 11);
        else if (strncmp(line, "A: manufacturer=", 16) == 0)
            snprintf(e->strings[1], sizeof(e->strings[1]), "%s", line + 16);
        else if (strncmp(line, "A: product=", 11) == 0)
            snprintf(e->strings[2], sizeof(e->strings[2]), "%s", line + 11);
        else if (strncmp(line, "A: serial=", 10) == 0)
            snprintf(e->strings[3], sizeof(e->strings[3]), "%s", line + 10);
        else if (strncmp(line, "H: report_descriptor=", 21) == 0) {
            const char *h = line + 21;
            for (e->rdesc_len = 0; hexval(h[0]) >= 0 && hexval(h[1]) >= 0; h += 2)
                e->rdesc[e->rdesc_len++] = (uint8_t)(hexval(h[0]) << 4 | hexval(h[1]));
        }
    }
    free(text);
    CU_ASSERT_FATAL(e->syspath[0] && e->devnode[0]);
}

/* Answer a control request (setup packet + data in urb->buffer), as the device would. */
static void emu_control(struct emu *e, struct usbdevfs_urb *urb)
{
    uint8_t *b = urb->buffer;
    urb->status = -EPIPE;  /* a stall, unless the request is known */
    urb->actual_length = 0;
    if (urb->buffer_length < 8)
        return;
    unsigned value = b[2] | b[3] << 8, index = b[4] | b[5] << 8, length = b[6] | b[7] << 8;
    uint8_t *data = b + 8;
    size_t room = (size_t)urb->buffer_length - 8 < length ? (size_t)urb->buffer_length - 8 : length;
    if (b[0] == 0x81 && b[1] == 0x06 && value >> 8 == 0x22 && e->rdesc_len) {
        size_t n = e->rdesc_len < room ? e->rdesc_len : room;
        memcpy(data, e->rdesc, n);
        urb->actual_length = (int)n;
        urb->status = 0;
        e->rdesc_reads++;
    } else if (b[0] == 0x80 && b[1] == 0x06 && value >> 8 == 0x03) {
        unsigned idx = value & 0xFF;
        uint8_t desc[130] = { 4, 0x03, 0x09, 0x04 };  /* index 0: en-US only */
        if (idx > 0 && (idx > 3 || !e->strings[idx][0] || index != 0x0409))
            return;
        if (idx > 0) {
            size_t n = strlen(e->strings[idx]);
            desc[0] = (uint8_t)(2 + 2 * n);
            for (size_t i = 0; i < n; i++)
                desc[2 + 2 * i] = (uint8_t)e->strings[idx][i], desc[3 + 2 * i] = 0;
        }
        size_t n = desc[0] < room ? desc[0] : room;
        memcpy(data, desc, n);
        urb->actual_length = (int)n;
        urb->status = 0;
        if (idx == 3)
            e->serial_reads++;
    } else if (b[0] == 0x21 && b[1] == 0x0B) {  /* SET_PROTOCOL */
        e->protocol_sets += value == 0;
        urb->status = 0;
    } else if (b[0] == 0x21 && b[1] == 0x0A) {  /* SET_IDLE */
        urb->status = 0;
    } else if (b[0] == 0x21 && b[1] == 0x09 && e->n_out < 8 && room <= sizeof(e->out[0].b)) {
        /* SET_REPORT: the station's answer as an output report (drivers/hidpos.h). */
        e->out[e->n_out].value = value;
        e->out[e->n_out].index = index;
        memcpy(e->out[e->n_out].b, data, room);
        e->out[e->n_out].n = room;
        e->n_out++;
        urb->status = 0;
    }
    (void)index;
}

static void emu_submit(struct emu *e, struct emu_client *c, UMockdevIoctlData *arg, long *ret,
                       int *err)
{
    UMockdevIoctlData *ud = umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_urb), NULL);
    if (!ud) {
        *ret = -1, *err = EFAULT;
        return;
    }
    struct usbdevfs_urb *urb = (struct usbdevfs_urb *)ud->data;
    if (urb->buffer_length > 0) {
        UMockdevIoctlData *bd = umockdev_ioctl_data_resolve(
            ud, G_STRUCT_OFFSET(struct usbdevfs_urb, buffer), (gsize)urb->buffer_length, NULL);
        if (bd)
            umockdev_ioctl_data_unref(bd);  /* ud holds it */
    }
    if (urb->type == USBDEVFS_URB_TYPE_CONTROL) {
        emu_control(e, urb);
        c->done = g_list_append(c->done, ud);
    } else if (urb->type == USBDEVFS_URB_TYPE_INTERRUPT && (urb->endpoint & 0x80)) {
        c->pending = g_list_append(c->pending, ud);
    } else {
        umockdev_ioctl_data_unref(ud);
        *ret = -1, *err = EINVAL;
    }
}

/* Hand back a completed URB: a control one, or an interrupt one given a queued report. */
static void emu_reap(struct emu *e, struct emu_client *c, UMockdevIoctlData *arg, long *ret,
                     int *err)
{
    UMockdevIoctlData *ud = NULL;
    if (c->done) {
        ud = c->done->data;
        c->done = g_list_delete_link(c->done, c->done);
    } else if (c->pending && (e->unplugged || e->qhead != e->qtail)) {
        ud = c->pending->data;
        c->pending = g_list_delete_link(c->pending, c->pending);
        struct usbdevfs_urb *urb = (struct usbdevfs_urb *)ud->data;
        if (e->unplugged) {
            /* The kernel kills the URBs of a device that is gone. */
            urb->status = -ESHUTDOWN;
            urb->actual_length = 0;
        } else if (e->q[e->qhead].status) {
            /* A transfer error instead of a report. */
            urb->status = e->q[e->qhead].status;
            urb->actual_length = 0;
            e->qhead++;
            e->delivered++;
        } else {
            size_t n = e->q[e->qhead].n;
            urb->status = n > (size_t)urb->buffer_length ? -EOVERFLOW : 0;
            if (n > (size_t)urb->buffer_length)
                n = (size_t)urb->buffer_length;
            memcpy(urb->buffer, e->q[e->qhead].b, n);
            urb->actual_length = (int)n;
            e->qhead++;
            e->delivered++;
        }
    }
    if (!ud) {
        *ret = -1, *err = e->unplugged ? ENODEV : EAGAIN;
        return;
    }
    UMockdevIoctlData *pp = umockdev_ioctl_data_resolve(arg, 0, sizeof(gpointer), NULL);
    if (pp) {
        umockdev_ioctl_data_set_ptr(pp, 0, ud);
        umockdev_ioctl_data_unref(pp);
    } else {
        *ret = -1, *err = EFAULT;
    }
    umockdev_ioctl_data_unref(ud);
}

static void emu_discard(struct emu_client *c, UMockdevIoctlData *arg, long *ret, int *err)
{
    gulong addr = *(gulong *)arg->data;
    for (GList *l = c->pending; l; l = l->next) {
        UMockdevIoctlData *ud = l->data;
        if (ud->client_addr != addr)
            continue;
        c->pending = g_list_delete_link(c->pending, l);
        ((struct usbdevfs_urb *)ud->data)->status = -ENOENT;
        ((struct usbdevfs_urb *)ud->data)->actual_length = 0;
        c->done = g_list_append(c->done, ud);
        return;
    }
    *ret = -1, *err = EINVAL;
}

/* The state of client, made at its first ioctl. Called with e->mu held. */
static struct emu_client *emu_client(struct emu *e, UMockdevIoctlClient *client)
{
    for (GList *l = e->clients; l; l = l->next) {
        struct emu_client *c = l->data;
        if (c->client == client)
            return c;
    }
    struct emu_client *c = g_new0(struct emu_client, 1);
    c->client = g_object_ref(client);
    e->clients = g_list_prepend(e->clients, c);
    return c;
}

/* umockdev's worker thread: every ioctl on the device node comes here. */
static gboolean emu_ioctl(UMockdevIoctlBase *handler, UMockdevIoctlClient *client, gpointer data)
{
    (void)handler;
    struct emu *e = data;
    gulong req = umockdev_ioctl_client_get_request(client);
    UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);
    long ret = 0;
    int err = 0;
    pthread_mutex_lock(&e->mu);
    struct emu_client *c = emu_client(e, client);
    if (e->unplugged && req != USBDEVFS_REAPURB && req != USBDEVFS_REAPURBNDELAY &&
        req != USBDEVFS_DISCARDURB) {
        ret = -1, err = ENODEV;
    } else if (req == USBDEVFS_GET_CAPABILITIES) {
        UMockdevIoctlData *d = umockdev_ioctl_data_resolve(arg, 0, sizeof(guint32), NULL);
        if (d) {
            *(guint32 *)d->data = 0;
            umockdev_ioctl_data_unref(d);
        }
    } else if (req == USBDEVFS_CLAIMINTERFACE) {
        e->claims++;
        if (e->claim_busy || e->driver) {
            e->claim_busy -= e->claim_busy > 0;
            ret = -1, err = EBUSY;
        }
    } else if (req == USBDEVFS_RELEASEINTERFACE) {
        /* nothing to do */
    } else if (req == USBDEVFS_GETDRIVER) {
        UMockdevIoctlData *d =
            umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_getdriver), NULL);
        if (d && e->driver)
            snprintf(((struct usbdevfs_getdriver *)d->data)->driver, USBDEVFS_MAXDRIVERNAME,
                     "usbhid");
        else
            ret = -1, err = d ? ENODATA : EFAULT;
        if (d)
            umockdev_ioctl_data_unref(d);
    } else if (req == USBDEVFS_IOCTL) {
        /* Detaching and attaching the kernel's driver. */
        UMockdevIoctlData *d = umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_ioctl), NULL);
        int code = d ? ((struct usbdevfs_ioctl *)d->data)->ioctl_code : 0;
        if (code == (int)USBDEVFS_DISCONNECT && e->driver) {
            e->driver = false;
            e->detaches++;
        } else if (code == (int)USBDEVFS_CONNECT && !e->driver) {
            e->driver = true;
            e->attaches++;
            ret = 1;  /* the kernel's "driver bound" */
        } else {
            ret = -1, err = code == (int)USBDEVFS_DISCONNECT ? ENODATA : EINVAL;
        }
        if (d)
            umockdev_ioctl_data_unref(d);
    } else if (req == USBDEVFS_SUBMITURB) {
        emu_submit(e, c, arg, &ret, &err);
    } else if (req == USBDEVFS_REAPURB || req == USBDEVFS_REAPURBNDELAY) {
        emu_reap(e, c, arg, &ret, &err);
    } else if (req == USBDEVFS_DISCARDURB) {
        emu_discard(c, arg, &ret, &err);
    } else {
        ret = -1, err = ENOTTY;
    }
    pthread_mutex_unlock(&e->mu);
    umockdev_ioctl_client_complete(client, ret, err);
    return TRUE;
}

static void emu_client_free(void *p)
{
    struct emu_client *c = p;
    g_list_free_full(c->pending, (GDestroyNotify)umockdev_ioctl_data_unref);
    g_list_free_full(c->done, (GDestroyNotify)umockdev_ioctl_data_unref);
    g_object_unref(c->client);
    g_free(c);
}

/* Forget every client and its URBs (their files are closed). */
static void emu_drop_clients(struct emu *e)
{
    g_list_free_full(e->clients, emu_client_free);
    e->clients = NULL;
}

/* Queue one interrupt report (n bytes). */
static void emu_report(struct emu *e, const void *b, size_t n)
{
    CU_ASSERT_FATAL(n <= sizeof(e->q[0].b));
    emu_lock(e);
    CU_ASSERT_FATAL(e->qtail < EMU_QUEUE);
    memcpy(e->q[e->qtail].b, b, n);
    e->q[e->qtail].n = n;
    e->qtail++;
    emu_unlock(e);
}

/* Queue a failed transfer (-EPROTO: what a flaky cable gives) instead of a report. */
static void emu_fail_transfer(struct emu *e, int status)
{
    emu_lock(e);
    CU_ASSERT_FATAL(e->qtail < EMU_QUEUE);
    e->q[e->qtail].n = 0;
    e->q[e->qtail].status = status;
    e->qtail++;
    emu_unlock(e);
}

static unsigned emu_queued(struct emu *e)
{
    emu_lock(e);
    unsigned n = (unsigned)e->qtail;
    emu_unlock(e);
    return n;
}

/* ---- keyboard-wedge typing (US layout) --------------------------------------------- */

#define LCTRL 0x01
#define LSHIFT 0x02

static void kbd_rep(struct emu *e, uint8_t mods, uint8_t code)
{
    uint8_t r[8] = { mods, 0, code };
    emu_report(e, r, sizeof(r));
}

/* Press and release, as scanners do: the release is what lets a character repeat. */
static void kbd_key(struct emu *e, uint8_t mods, uint8_t code)
{
    kbd_rep(e, mods, code);
    kbd_rep(e, 0, 0);
}

/*
 * Press up to six keys in one report: they type in slot order. A line typed this way
 * arrives whole in one report, so the eol tests cannot be upset by a slow machine
 * pausing between two reports of a line.
 */
static void kbd_chord(struct emu *e, uint8_t mods, const char *keys)
{
    uint8_t r[8] = { mods };
    size_t n = strlen(keys);
    CU_ASSERT_FATAL(n <= 6);
    for (size_t i = 0; i < n; i++)
        r[2 + i] = keys[i] == '\n' ? 0x28 : (uint8_t)(0x04 + keys[i] - 'a');
    emu_report(e, r, sizeof(r));
}

/* Type ASCII text: letters, digits, "-!" and '\n' (Enter), '\t' (Tab), GS (Ctrl+]). */
static void kbd_type(struct emu *e, const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (c >= 'a' && c <= 'z')
            kbd_key(e, 0, (uint8_t)(0x04 + c - 'a'));
        else if (c >= 'A' && c <= 'Z')
            kbd_key(e, LSHIFT, (uint8_t)(0x04 + c - 'A'));
        else if (c >= '1' && c <= '9')
            kbd_key(e, 0, (uint8_t)(0x1E + c - '1'));
        else if (c == '0')
            kbd_key(e, 0, 0x27);
        else if (c == '-')
            kbd_key(e, 0, 0x2D);
        else if (c == '!')
            kbd_key(e, LSHIFT, 0x1E);
        else if (c == '\n')
            kbd_key(e, 0, 0x28);
        else if (c == '\t')
            kbd_key(e, 0, 0x2B);
        else if (c == 0x1D)
            kbd_key(e, LCTRL, 0x30);
        else
            CU_FAIL_FATAL("kbd_type: character not in the test's keymap");
    }
}

/* ==== testbed, loop, scanners ======================================================= */

struct bed {
    UMockdevTestbed *tb;
    loop_t *loop;
    config_t *cfg;
    struct emu *emus[4];
    size_t nemus;
};

static struct bed *bed_new(void)
{
    struct bed *b = calloc(1, sizeof(*b));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    b->tb = umockdev_testbed_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(b->tb);
    GError *err = NULL;
    CU_ASSERT_FATAL(umockdev_testbed_add_from_file(b->tb, FIXTURES "hub.umockdev", &err));
    b->loop = loop_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(b->loop);
    return b;
}

static void bed_plug(struct bed *b, struct emu *e)
{
    GError *err = NULL;
    gboolean ok = umockdev_testbed_add_from_file(b->tb, e->fixture, &err);
    if (!ok)
        fprintf(stderr, "\n  add %s: %s\n", e->fixture, err ? err->message : "?");
    g_clear_error(&err);
    CU_ASSERT_FATAL(ok);
}

/* The emulated device of fixture, plugged in now or not. */
static struct emu *bed_emu(struct bed *b, const char *fixture, bool plug)
{
    struct emu *e = calloc(1, sizeof(*e));
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_FATAL(pthread_mutex_init(&e->mu, NULL) == 0);
    emu_load_fixture(e, fixture);
    e->handler = umockdev_ioctl_base_new();
    g_signal_connect(e->handler, "handle-ioctl", G_CALLBACK(emu_ioctl), e);
    GError *err = NULL;
    /* Before the device appears, so that its node answers as soon as libusb sees it. */
    CU_ASSERT_FATAL(umockdev_testbed_attach_ioctl(b->tb, e->devnode, e->handler, &err));
    CU_ASSERT_FATAL(b->nemus < 4);
    b->emus[b->nemus++] = e;
    if (plug)
        bed_plug(b, e);
    return e;
}

/* Pull the device out: its URBs die, then udev says "remove". */
static void bed_unplug(struct bed *b, struct emu *e)
{
    emu_lock(e);
    e->unplugged = true;
    emu_unlock(e);
    umockdev_testbed_uevent(b->tb, e->syspath, "remove");
    umockdev_testbed_remove_device(b->tb, e->syspath);
}

static void bed_replug(struct bed *b, struct emu *e)
{
    emu_lock(e);
    e->unplugged = false;
    emu_drop_clients(e);  /* the handles of before the unplug are closed */
    emu_unlock(e);
    bed_plug(b, e);
}

static void bed_free(struct bed *b)
{
    loop_destroy(&b->loop);
    for (size_t i = 0; i < b->nemus; i++) {
        struct emu *e = b->emus[i];
        GError *err = NULL;
        (void)umockdev_testbed_detach_ioctl(b->tb, e->devnode, &err);
        g_clear_error(&err);
        emu_drop_clients(e);
        g_object_unref(e->handler);
        pthread_mutex_destroy(&e->mu);
        free(e);
    }
    g_object_unref(b->tb);
    config_destroy(&b->cfg);
    free(b);
}

/* ---- scanners and their events --------------------------------------------------- */

/* A deep copy of one event: the driver's pointers die with the callback. */
struct ev {
    scanner_ev_kind_t kind;
    char *id;
    char *reason;
    uint8_t *raw;
    size_t raw_len;
    bool has_scan;
    char *text;
    char aim[4];
    const char *symbology;
    bool gs1;
    char *scan_scanner;
    size_t clients;         /* scanner_clients() inside the callback */
};

struct rec {
    scanner_t *s;
    struct ev ev[MAX_EVENTS];
    size_t n;
    /* Destroy this other scanner from inside our first SCAN event (orphan test). */
    scanner_t **destroy_on_scan;
    /* Answer each scan with scanner_feedback(): REJECT for "0000000000000", else OK. */
    bool answer;
    int feedback_rc;
};

static void on_event(const scanner_event_t *e, void *data)
{
    struct rec *r = data;
    CU_ASSERT_PTR_NOT_NULL(e->scanner_id);
    CU_ASSERT_PTR_NULL(e->peer);
    if (r->n == MAX_EVENTS) {
        CU_FAIL("too many events");
        return;
    }
    struct ev *c = &r->ev[r->n++];
    c->kind = e->kind;
    c->id = th_strdup(e->scanner_id);
    c->reason = th_strdup(e->reason);
    c->raw = (uint8_t *)th_memdup(e->raw, e->raw_len);
    c->raw_len = e->raw_len;
    c->clients = scanner_clients(r->s);
    if (e->scan) {
        c->has_scan = true;
        c->text = th_memdup(e->scan->text, e->scan->len);
        memcpy(c->aim, e->scan->aim, sizeof(c->aim));
        c->symbology = e->scan->symbology;
        c->gs1 = e->scan->gs1;
        c->scan_scanner = th_strdup(e->scan->scanner);
    }
    CU_ASSERT_EQUAL(e->kind == SCANNER_EV_SCAN, e->scan != NULL);
    CU_ASSERT_EQUAL(e->kind == SCANNER_EV_REJECTED || e->kind == SCANNER_EV_DISCONNECTED,
                    e->reason != NULL);
    if (e->kind == SCANNER_EV_SCAN && r->answer)
        r->feedback_rc = scanner_feedback(r->s, e->scanner_id,
                                          strcmp(e->scan->text, "0000000000000") == 0
                                              ? SCANNER_REPLY_REJECT
                                              : SCANNER_REPLY_OK,
                                          "a HID POS scanner beeps, it shows no text");
    if (e->kind == SCANNER_EV_SCAN && r->destroy_on_scan && *r->destroy_on_scan) {
        scanner_destroy(r->destroy_on_scan);
        CU_ASSERT_PTR_NULL(*r->destroy_on_scan);
    }
}

static void rec_clear(struct rec *r)
{
    for (size_t i = 0; i < r->n; i++) {
        struct ev *c = &r->ev[i];
        free(c->id);
        free(c->reason);
        free(c->raw);
        free(c->text);
        free(c->scan_scanner);
    }
    r->n = 0;
}

/*
 * A usb scanner from a config line ("usb:0c2e:0b61,detach=no"), parsed by the real
 * config parser so that the options arrive as the daemon passes them.
 */
static void open_scanner(struct bed *b, struct rec *r, const char *line)
{
    char *text = NULL;
    CU_ASSERT_FATAL(asprintf(&text,
                             "[daemon]\ndatabase = /nonexistent/rmad.db\npolicies = /nonexistent\n"
                             "pub = tcp://127.0.0.1:1\nreplay = tcp://127.0.0.1:2\n"
                             "control = ipc:///nonexistent/rmad.ctl\n"
                             "[station s]\nscanner = %s\n", line) > 0);
    config_t *cfg = NULL;
    char *err = NULL;
    int rc = config_parse(text, strlen(text), "usb-test", "/", &cfg, &err);
    if (rc < 0)
        fprintf(stderr, "\n  config: %s\n", err ? err : "?");
    free(text);
    free(err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    err = NULL;
    r->s = scanner_new_usb(b->loop, &cfg->stations[0].scanners[0], NULL, on_event, r, &err);
    if (!r->s)
        fprintf(stderr, "\n  scanner_new_usb: %s\n", err ? err : "?");
    CU_ASSERT_PTR_NULL(err);
    free(err);
    /* The scanner copied what it needs; the config may go at once. */
    config_destroy(&cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->s);
    CU_ASSERT_STRING_EQUAL(scanner_spec(r->s), line);
    CU_ASSERT_EQUAL(scanner_tcp_port(r->s), 0);
}

static void close_scanner(struct rec *r)
{
    scanner_destroy(&r->s);
    CU_ASSERT_PTR_NULL(r->s);
    rec_clear(r);
}

/* ---- running the loop until something is true ------------------------------------ */

typedef bool (*cond_fn)(const void *arg);

struct wait {
    cond_fn cond;
    const void *arg;
    bool fired;
};

static int64_t wait_check(loop_t *loop, uint64_t id, void *data)
{
    (void)id;
    struct wait *w = data;
    if (w->cond && w->cond(w->arg)) {
        loop_stop(loop);
        return -1;
    }
    return 2;
}

static int64_t wait_watchdog(loop_t *loop, uint64_t id, void *data)
{
    (void)id;
    ((struct wait *)data)->fired = true;
    loop_stop(loop);
    return -1;
}

/* Run the loop until cond(arg) holds; false (and a failed assertion) after the watchdog. */
static bool run_until(struct bed *b, cond_fn cond, const void *arg)
{
    struct wait w = { cond, arg, false };
    if (cond(arg))
        return true;
    uint64_t check = loop_add_timer(b->loop, 0, wait_check, &w);
    uint64_t wd = loop_add_timer(b->loop, WATCHDOG_MS, wait_watchdog, &w);
    CU_ASSERT_FATAL(check && wd);
    CU_ASSERT_EQUAL(loop_run(b->loop), 0);
    (void)loop_del_timer(b->loop, check);
    (void)loop_del_timer(b->loop, wd);
    CU_ASSERT_FALSE(w.fired);
    return !w.fired;
}

static bool never(const void *arg)
{
    (void)arg;
    return false;
}

/* Run the loop for a while (to see that nothing more happens). */
static void settle(struct bed *b)
{
    struct wait w = { never, NULL, false };
    uint64_t t = loop_add_timer(b->loop, SETTLE_MS, wait_watchdog, &w);
    CU_ASSERT_FATAL(t);
    CU_ASSERT_EQUAL(loop_run(b->loop), 0);
}

struct count_arg {
    const struct rec *r;
    size_t n;
};

static bool has_events(const void *arg)
{
    const struct count_arg *a = arg;
    return a->r->n >= a->n;
}

/* Run until r has n events in all; then exactly n must have come. */
static void wait_events(struct bed *b, const struct rec *r, size_t n)
{
    struct count_arg a = { r, n };
    run_until(b, has_events, &a);
    CU_ASSERT_EQUAL_FATAL(r->n, n);
}

struct emu_arg {
    struct emu *e;
    unsigned n;
};

static bool emu_delivered(const void *arg)
{
    const struct emu_arg *a = arg;
    pthread_mutex_lock(&a->e->mu);
    bool done = a->e->delivered >= a->n;
    pthread_mutex_unlock(&a->e->mu);
    return done;
}

/* Run until the driver has taken every report queued so far. */
static void wait_delivered(struct bed *b, struct emu *e)
{
    struct emu_arg a = { e, emu_queued(e) };
    run_until(b, emu_delivered, &a);
}

/* ---- assertions on events ---------------------------------------------------------- */

static void expect(const struct rec *r, size_t i, scanner_ev_kind_t kind, const char *id,
                   const char *reason)
{
    CU_ASSERT_FATAL(i < r->n);
    const struct ev *c = &r->ev[i];
    if (c->kind != kind)
        fprintf(stderr, "\n  event %zu: kind %d (%s), want %d\n", i, c->kind,
                c->reason ? c->reason : "", kind);
    CU_ASSERT_EQUAL(c->kind, kind);
    if (id)
        ASSERT_STR(c->id, id);
    if (reason)
        ASSERT_CONTAINS(c->reason, reason);
}

static void expect_scan(const struct rec *r, size_t i, const char *id, const char *text,
                        const char *aim)
{
    expect(r, i, SCANNER_EV_SCAN, id, NULL);
    const struct ev *c = &r->ev[i];
    CU_ASSERT_FATAL(c->has_scan);
    ASSERT_STR(c->text, text);
    ASSERT_STR(c->aim, aim);
    ASSERT_STR(c->scan_scanner, c->id);
}

static void expect_rejected(const struct rec *r, size_t i, const char *id, const void *raw,
                            size_t raw_len, const char *reason)
{
    expect(r, i, SCANNER_EV_REJECTED, id, reason);
    const struct ev *c = &r->ev[i];
    CU_ASSERT_EQUAL(c->raw_len, raw_len);
    CU_ASSERT(c->raw_len == raw_len && memcmp(c->raw, raw, raw_len) == 0);
}

#define KBD_ID "usb:" KBD_VIDPID "@1-1"
#define KBD2_ID "usb:" KBD_VIDPID "@1-2"
#define POS_ID "usb:" POS_VIDPID "@1-3"

/* ==== the tests ====================================================================== */

/* The testbed recipe: umockdev replays a recorded keyboard-wedge scan of "A11". */
static void test_replay_recording(void)
{
    struct bed *b = bed_new();
    GError *err = NULL;
    CU_ASSERT_FATAL(umockdev_testbed_load_ioctl(b->tb, "/dev/bus/usb/001/005",
                                                FIXTURES "kbd-scanner.ioctl", &err));
    CU_ASSERT_FATAL(umockdev_testbed_add_from_file(b->tb, FIXTURES "kbd-scanner.umockdev", &err));
    struct rec r = { 0 };
    open_scanner(b, &r, "usb:" KBD_VIDPID OPTS);
    struct count_arg a = { &r, 2 };
    run_until(b, has_events, &a);
    CU_ASSERT_FATAL(r.n >= 2);
    expect(&r, 0, SCANNER_EV_CONNECTED, KBD_ID, NULL);
    CU_ASSERT_EQUAL(r.ev[0].clients, 1);
    expect_scan(&r, 1, KBD_ID, "A11", "");
    CU_ASSERT_STRING_EQUAL(r.ev[1].symbology, "unknown");
    /* The replay goes round and round: every further read is the same scan. */
    for (size_t i = 2; i < r.n; i++)
        expect_scan(&r, i, KBD_ID, "A11", "");
    close_scanner(&r);
    bed_free(b);
}

static void test_keyboard_wedge(void)
{
    struct bed *b = bed_new();
    struct emu *e = bed_emu(b, FIXTURES "kbd-scanner.umockdev", true);
    struct rec r = { 0 };
    open_scanner(b, &r, "usb:" KBD_VIDPID OPTS);
    wait_events(b, &r, 1);
    expect(&r, 0, SCANNER_EV_CONNECTED, KBD_ID, NULL);
    CU_ASSERT_EQUAL(scanner_clients(r.s), 1);
    /* Shift, repeated characters (a release report between), Tab and Enter. */
    kbd_type(e, "RMA-7788Zz\t");
    kbd_type(e, "Ab!11\n");
    /* GS1 typed in Ctrl+ASCII mode: GS is Ctrl+]. */
    kbd_type(e, "\x1d" "0109501101530003" "21SN7\x1d" "10LOT1\n");
    wait_events(b, &r, 4);
    expect_scan(&r, 1, KBD_ID, "RMA-7788Zz", "");
    expect_scan(&r, 2, KBD_ID, "Ab!11", "");
    expect_scan(&r, 3, KBD_ID, "\x1d" "0109501101530003" "21SN7\x1d" "10LOT1", "");
    CU_ASSERT(r.ev[3].gs1);
    /* A key held over several reports types once; the same key again needs a release. */
    kbd_rep(e, 0, 0x05);
    kbd_rep(e, 0, 0x05);
    kbd_rep(e, 0, 0x05);
    kbd_rep(e, 0, 0);
    kbd_type(e, "b\n");
    wait_events(b, &r, 5);
    expect_scan(&r, 4, KBD_ID, "bb", "");
    settle(b);
    CU_ASSERT_EQUAL(r.n, 5);
    /* A boot keyboard is asked for the boot protocol, once. */
    emu_lock(e);
    CU_ASSERT_EQUAL(e->protocol_sets, 1);
    CU_ASSERT_EQUAL(e->rdesc_reads, 0);
    emu_unlock(e);
    close_scanner(&r);
    bed_free(b);
}

static void test_layout_de(void)
{
    struct bed *b = bed_new();
    struct emu *e = bed_emu(b, FIXTURES "kbd-scanner.umockdev", true);
    struct rec r = { 0 };
    open_scanner(b, &r, "usb:" KBD_VIDPID OPTS ",layout=de");
    wait_events(b, &r, 1);
    /* German keyboard: y and z swapped, '-' where the US has '/', Shift+7 is '/'. */
    kbd_key(e, LSHIFT, 0x1C);
    kbd_key(e, 0, 0x1D);
    kbd_key(e, 0, 0x38);
    kbd_key(e, LSHIFT, 0x24);
    kbd_type(e, "\n");
    wait_events(b, &r, 2);
    expect_scan(&r, 1, KBD_ID, "Zy-/", "");
    close_scanner(&r);
    bed_free(b);
}

static void test_eol_required(void)
{
    struct bed *b = bed_new();
    struct emu *e = bed_emu(b, FIXTURES "kbd-scanner.umockdev", true);
    struct rec r = { 0 };
    open_scanner(b, &r, "usb:" KBD_VIDPID ",detach=no,eol_ms=100");
    wait_events(b, &r, 1);
    kbd_chord(e, LSHIFT, "abc");
    wait_events(b, &r, 2);
    expect_rejected(&r, 1, KBD_ID, "ABC", 3, "no end of line within 100 ms");
    /* The device is still read. */
    kbd_chord(e, LSHIFT, "xy\n");
    wait_events(b, &r, 3);
    expect_scan(&r, 2, KBD_ID, "XY", "");
    settle(b);
    CU_ASSERT_EQUAL(r.n, 3);
    close_scanner(&r);
    bed_free(b);
}

static void test_eol_none(void)
{
    struct bed *b = bed_new();
    struct emu *e = bed_emu(b, FIXTURES "kbd-scanner.umockdev", true);
    struct rec r = { 0 };
    open_scanner(b, &r, "usb:" KBD_VIDPID ",detach=no,eol=none,eol_ms=100");
    wait_events(b, &r, 1);
    kbd_chord(e, LSHIFT, "abc");
    wait_events(b, &r, 2);
    expect_scan(&r, 1, KBD_ID, "ABC", "");
    kbd_chord(e, LSHIFT, "def");
    wait_events(b, &r, 3);
    expect_scan(&r, 2, KBD_ID, "DEF", "");
    settle(b);
    CU_ASSERT_EQUAL(r.n, 3);
    close_scanner(&r);
    bed_free(b);
}

static void test_garbage(void)
{
    struct bed *b = bed_new();
    struct emu *e = bed_emu(b, FIXTURES "kbd-scanner.umockdev", true);
    struct rec r = { 0 };
    open_scanner(b, &r, "usb:" KBD_VIDPID OPTS);
    wait_events(b, &r, 1);
    /* A short report in the middle of a line: the line may have lost keys. */
    kbd_type(e, "AB");
    static const uint8_t short_rep[3] = { 0, 0, 0x04 };
    emu_report(e, short_rep, sizeof(short_rep));
    kbd_type(e, "\n");  /* ends nothing: the line was already reported */
    /* Impossible keycodes. */
    kbd_key(e, 0, 0xF0);
    kbd_type(e, "\n");
    /* Junk: every bit set (GUI, Alt, and keycodes no keyboard has). */
    static const uint8_t junk[8] = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };
    emu_report(e, junk, sizeof(junk));
    kbd_type(e, "\n");
    /* More than the endpoint's packet size (babble). */
    static const uint8_t babble[12] = { 0, 0, 0x04 };
    emu_report(e, babble, sizeof(babble));
    /* And through all that the device is still read. */
    kbd_type(e, "OK\n");
    wait_events(b, &r, 7);
    expect_rejected(&r, 1, KBD_ID, "AB", 2, "line cut short by a bad HID report");
    expect_rejected(&r, 2, KBD_ID, short_rep, 3, "bad HID report: 3 bytes (a boot keyboard sends 8)");
    expect_rejected(&r, 3, KBD_ID, "", 0, "unknown keycode 0xF0");
    expect_rejected(&r, 4, KBD_ID, "", 0, "unsupported key combination");
    expect_rejected(&r, 5, KBD_ID, "\0\0\x04\0\0\0\0\0", 8, "longer than the endpoint's packets");
    expect_scan(&r, 6, KBD_ID, "OK", "");
    settle(b);
    CU_ASSERT_EQUAL(r.n, 7);
    CU_ASSERT_EQUAL(scanner_clients(r.s), 1);
    for (size_t i = 0; i < r.n; i++)
        CU_ASSERT_NOT_EQUAL(r.ev[i].kind, SCANNER_EV_DISCONNECTED);
    close_scanner(&r);
    bed_free(b);
}

/* A Honeywell-style Scanned Data Report (ID 2, 64 bytes). */
static void pos_report(struct emu *e, const char *aim, const char *data, size_t n, bool more)
{
    uint8_t r[64] = { 2, (uint8_t)n };
    if (aim)
        memcpy(r + 2, aim, 3);
    memcpy(r + 5, data, n < 56 ? n : 56);
    r[63] = more;
    emu_report(e, r, sizeof(r));
}

static void test_hidpos_gs1(void)
{
    struct bed *b = bed_new();
    struct emu *e = bed_emu(b, FIXTURES "hidpos-scanner.umockdev", true);
    struct rec r = { 0 };
    open_scanner(b, &r, "usb:" POS_VIDPID OPTS);
    wait_events(b, &r, 1);
    expect(&r, 0, SCANNER_EV_CONNECTED, POS_ID, NULL);
    /* A GS1 DataMatrix: GTIN, expiry, batch, serial, part; 67 bytes over two reports. */
    const char *gs1 = "0104006381333931" "17261231" "10LOT-2024-11\x1d" "21SN00000000001234\x1d"
                      "240PART-77";
    size_t len = strlen(gs1);
    CU_ASSERT_FATAL(len > 56);
    pos_report(e, "]d2", gs1, 56, true);
    pos_report(e, "]d2", gs1 + 56, len - 56, false);
    wait_events(b, &r, 2);
    expect_scan(&r, 1, POS_ID, gs1, "]d2");
    CU_ASSERT(r.ev[1].gs1);
    ASSERT_STR(r.ev[1].symbology, "GS1 DataMatrix");
    CU_ASSERT_EQUAL(r.ev[1].raw_len, len + 3);  /* the AIM id is part of what was read */
    /* An EAN-13 in one report. */
    pos_report(e, "]E0", "4006381333931", 13, false);
    wait_events(b, &r, 3);
    expect_scan(&r, 2, POS_ID, "4006381333931", "]E0");
    ASSERT_STR(r.ev[2].symbology, "EAN-13/UPC");
    /* Reports that cannot be decoded are refused, one by one. */
    uint8_t bad[64] = { 2, 99, ']', 'E', '0', '1', '2', '3' };  /* byte count past the data */
    emu_report(e, bad, sizeof(bad));
    pos_report(e, "XY1", "123", 3, false);
    wait_events(b, &r, 5);
    expect_rejected(&r, 3, POS_ID, bad, sizeof(bad), "byte count 99 exceeds the 56-byte data field");
    expect(&r, 4, SCANNER_EV_REJECTED, POS_ID, "not an AIM identifier");
    settle(b);
    CU_ASSERT_EQUAL(r.n, 5);
    emu_lock(e);
    CU_ASSERT_EQUAL(e->rdesc_reads, 1);
    CU_ASSERT_EQUAL(e->protocol_sets, 0);
    emu_unlock(e);
    close_scanner(&r);
    bed_free(b);
}

struct out_arg {
    struct emu *e;
    unsigned n;
};

static bool emu_has_out(const void *arg)
{
    const struct out_arg *a = arg;
    pthread_mutex_lock(&a->e->mu);
    bool done = a->e->n_out >= a->n;
    pthread_mutex_unlock(&a->e->mu);
    return done;
}

/*
 * Issue 10: the station's answer reaches a HID POS scanner as the output report its
 * descriptor declares (the Honeywell one: report 4, Sound Error Beep bit 5, Sound
 * Good Read Beep bit 6), by SET_REPORT to its interface.
 */
static void test_hidpos_feedback(void)
{
    struct bed *b = bed_new();
    struct emu *e = bed_emu(b, FIXTURES "hidpos-scanner.umockdev", true);
    struct rec r = { .answer = true };
    open_scanner(b, &r, "usb:" POS_VIDPID OPTS);
    wait_events(b, &r, 1);
    pos_report(e, "]E0", "4006381333931", 13, false);
    wait_events(b, &r, 2);
    expect_scan(&r, 1, POS_ID, "4006381333931", "]E0");
    CU_ASSERT_EQUAL(r.feedback_rc, 0);
    struct out_arg a = { e, 1 };
    CU_ASSERT(run_until(b, emu_has_out, &a));
    pos_report(e, "]E0", "0000000000000", 13, false);
    wait_events(b, &r, 3);
    CU_ASSERT_EQUAL(r.feedback_rc, 0);
    a.n = 2;
    CU_ASSERT(run_until(b, emu_has_out, &a));
    settle(b);
    emu_lock(e);
    CU_ASSERT_EQUAL(e->n_out, 2);
    CU_ASSERT_EQUAL(e->out[0].value, 0x0204);   /* output report, ID 4 */
    CU_ASSERT_EQUAL(e->out[0].n, 2);
    CU_ASSERT_EQUAL(e->out[0].b[0], 0x04);
    CU_ASSERT_EQUAL(e->out[0].b[1], 0x40);      /* good read beep */
    CU_ASSERT_EQUAL(e->out[1].b[0], 0x04);
    CU_ASSERT_EQUAL(e->out[1].b[1], 0x20);      /* error beep */
    CU_ASSERT_EQUAL(e->out[0].index, e->out[1].index);
    emu_unlock(e);
    CU_ASSERT_EQUAL(scanner_feedback(r.s, "usb:0c2e:0b6a@9-9", SCANNER_REPLY_OK, ""), -ENOENT);
    close_scanner(&r);
    bed_free(b);
}

/* A keyboard-wedge scanner has no way back. */
static void test_kbd_no_feedback(void)
{
    struct bed *b = bed_new();
    (void)bed_emu(b, FIXTURES "kbd-scanner.umockdev", true);
    struct rec r = { 0 };
    open_scanner(b, &r, "usb:" KBD_VIDPID OPTS);
    wait_events(b, &r, 1);
    CU_ASSERT_EQUAL(scanner_feedback(r.s, KBD_ID, SCANNER_REPLY_OK, ""), -ENOTSUP);
    close_scanner(&r);
    bed_free(b);
}

/* HID POS scans end with their final report: one that never comes times out. */
static void test_hidpos_timeout(void)
{
    struct bed *b = bed_new();
    struct emu *e = bed_emu(b, FIXTURES "hidpos-scanner.umockdev", true);
    struct rec r = { 0 };
    open_scanner(b, &r, "usb:" POS_VIDPID ",detach=no,eol_ms=100");
    wait_events(b, &r, 1);
    pos_report(e, "]C1", "0104006381333931", 16, true);
    wait_events(b, &r, 2);
    expect_rejected(&r, 1, POS_ID, "]C10104006381333931", 19,
                    "HID POS scan without its final report within 100 ms");
    pos_report(e, "]C1", "0104006381333931", 16, false);
    wait_events(b, &r, 3);
    expect_scan(&r, 2, POS_ID, "0104006381333931", "]C1");
    settle(b);
    CU_ASSERT_EQUAL(r.n, 3);
    close_scanner(&r);
    bed_free(b);
}

static void test_unplug_replug(void)
{
    struct bed *b = bed_new();
    struct emu *e = bed_emu(b, FIXTURES "kbd-scanner.umockdev", false);
    struct rec r = { 0 };
    /* Absent at start: not an error, and nothing to report. */
    open_scanner(b, &r, "usb:" KBD_VIDPID OPTS);
    settle(b);
    CU_ASSERT_EQUAL(r.n, 0);
    CU_ASSERT_EQUAL(scanner_clients(r.s), 0);
    bed_plug(b, e);
    wait_events(b, &r, 1);
    expect(&r, 0, SCANNER_EV_CONNECTED, KBD_ID, NULL);
    /* Unplugged in the middle of a scan. */
    kbd_type(e, "AB");
    wait_delivered(b, e);
    bed_unplug(b, e);
    wait_events(b, &r, 3);
    expect_rejected(&r, 1, KBD_ID, "AB", 2, "device unplugged before end of line");
    expect(&r, 2, SCANNER_EV_DISCONNECTED, KBD_ID, "device unplugged");
    CU_ASSERT_EQUAL(r.ev[2].clients, 0);
    settle(b);
    CU_ASSERT_EQUAL(r.n, 3);
    /* Back, under the same id, and read again. */
    bed_replug(b, e);
    wait_events(b, &r, 4);
    expect(&r, 3, SCANNER_EV_CONNECTED, KBD_ID, NULL);
    kbd_type(e, "CD\n");
    wait_events(b, &r, 5);
    expect_scan(&r, 4, KBD_ID, "CD", "");
    close_scanner(&r);
    bed_free(b);
}

static bool both_connected(const void *arg)
{
    const struct rec *r = arg;
    return r->n >= 2;
}

static void test_two_devices(void)
{
    struct bed *b = bed_new();
    struct emu *e1 = bed_emu(b, FIXTURES "kbd-scanner.umockdev", true);
    struct emu *e2 = bed_emu(b, FIXTURES "kbd-scanner-2.umockdev", true);
    struct rec r = { 0 };
    open_scanner(b, &r, "usb:" KBD_VIDPID OPTS);
    run_until(b, both_connected, &r);
    CU_ASSERT_EQUAL_FATAL(r.n, 2);
    expect(&r, 0, SCANNER_EV_CONNECTED, NULL, NULL);
    expect(&r, 1, SCANNER_EV_CONNECTED, NULL, NULL);
    CU_ASSERT((strcmp(r.ev[0].id, KBD_ID) == 0 && strcmp(r.ev[1].id, KBD2_ID) == 0) ||
              (strcmp(r.ev[0].id, KBD2_ID) == 0 && strcmp(r.ev[1].id, KBD_ID) == 0));
    CU_ASSERT_EQUAL(scanner_clients(r.s), 2);
    kbd_type(e2, "TWO\n");
    wait_events(b, &r, 3);
    expect_scan(&r, 2, KBD2_ID, "TWO", "");
    kbd_type(e1, "ONE\n");
    wait_events(b, &r, 4);
    expect_scan(&r, 3, KBD_ID, "ONE", "");
    close_scanner(&r);
    bed_free(b);
}

struct serial_arg {
    struct emu *e1, *e2;
    const struct rec *r;
};

/* Both scanners have read both serial numbers, and the right one is connected. */
static bool serials_read(const void *arg)
{
    const struct serial_arg *a = arg;
    pthread_mutex_lock(&a->e1->mu);
    pthread_mutex_lock(&a->e2->mu);
    bool done = a->e1->serial_reads >= 2 && a->e2->serial_reads >= 2 && a->r->n >= 1;
    pthread_mutex_unlock(&a->e2->mu);
    pthread_mutex_unlock(&a->e1->mu);
    return done;
}

static void test_serial_number(void)
{
    struct bed *b = bed_new();
    struct emu *e1 = bed_emu(b, FIXTURES "kbd-scanner.umockdev", true);
    struct emu *e2 = bed_emu(b, FIXTURES "kbd-scanner-2.umockdev", true);
    struct rec r = { 0 }, other = { 0 };
    open_scanner(b, &r, "usb:" KBD_VIDPID ":0002" OPTS);
    open_scanner(b, &other, "usb:" KBD_VIDPID ":9999" OPTS);
    struct serial_arg a = { e1, e2, &r };
    run_until(b, serials_read, &a);
    settle(b);
    CU_ASSERT_EQUAL_FATAL(r.n, 1);
    expect(&r, 0, SCANNER_EV_CONNECTED, KBD2_ID, NULL);
    CU_ASSERT_EQUAL(scanner_clients(r.s), 1);
    /* Devices with other serial numbers are none of its business: not even reported. */
    CU_ASSERT_EQUAL(other.n, 0);
    CU_ASSERT_EQUAL(scanner_clients(other.s), 0);
    kbd_type(e1, "NOTMINE\n");
    kbd_type(e2, "MINE\n");
    wait_events(b, &r, 2);
    expect_scan(&r, 1, KBD2_ID, "MINE", "");
    settle(b);
    CU_ASSERT_EQUAL(r.n, 2);
    CU_ASSERT_EQUAL(other.n, 0);
    close_scanner(&other);
    close_scanner(&r);
    bed_free(b);
}

static void test_busy_retried(void)
{
    struct bed *b = bed_new();
    struct emu *e = bed_emu(b, FIXTURES "kbd-scanner.umockdev", false);
    e->claim_busy = 4;  /* another program holds the interface for a while */
    bed_plug(b, e);
    struct rec r = { 0 };
    open_scanner(b, &r, "usb:" KBD_VIDPID OPTS);
    wait_events(b, &r, 2);
    /* Reported once, while retrying, then connected. */
    expect(&r, 0, SCANNER_EV_DISCONNECTED, KBD_ID,
           "cannot claim the scanner's interface: the interface is in use by another "
           "program; retrying");
    expect(&r, 1, SCANNER_EV_CONNECTED, KBD_ID, NULL);
    emu_lock(e);
    CU_ASSERT_EQUAL(e->claims, 5);
    emu_unlock(e);
    kbd_type(e, "OK\n");
    wait_events(b, &r, 3);
    expect_scan(&r, 2, KBD_ID, "OK", "");
    close_scanner(&r);
    bed_free(b);
}

static void test_not_a_scanner(void)
{
    struct bed *b = bed_new();
    struct emu *e = bed_emu(b, FIXTURES "hidpos-scanner.umockdev", false);
    /* Same device, but its report descriptor is a mouse's. */
    static const uint8_t mouse[] = { 0x05, 0x01, 0x09, 0x02, 0xA1, 0x01, 0x09, 0x01, 0xA1,
                                     0x00, 0x05, 0x09, 0x19, 0x01, 0x29, 0x03, 0x15, 0x00,
                                     0x25, 0x01, 0x95, 0x03, 0x75, 0x01, 0x81, 0x02, 0x95,
                                     0x01, 0x75, 0x05, 0x81, 0x01, 0xC0, 0xC0 };
    memcpy(e->rdesc, mouse, sizeof(mouse));
    e->rdesc_len = sizeof(mouse);
    bed_plug(b, e);
    struct rec r = { 0 };
    open_scanner(b, &r, "usb:" POS_VIDPID OPTS);
    wait_events(b, &r, 1);
    expect(&r, 0, SCANNER_EV_DISCONNECTED, POS_ID,
           "not a barcode scanner: no HID boot keyboard or HID POS interface");
    settle(b);
    CU_ASSERT_EQUAL(r.n, 1);
    CU_ASSERT_EQUAL(scanner_clients(r.s), 0);
    close_scanner(&r);
    bed_free(b);
}

static void test_list_hid(void)
{
    struct bed *b = bed_new();
    struct emu *kbd = bed_emu(b, FIXTURES "kbd-scanner.umockdev", true);
    struct emu *pos = bed_emu(b, FIXTURES "hidpos-scanner.umockdev", true);
    usb_hid_info_t *list = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(usb_list_hid(&list, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 2);  /* the root hub is not HID */
    CU_ASSERT_EQUAL(list[0].vid, 0x0c2e);
    CU_ASSERT_EQUAL(list[0].pid, 0x0b61);
    CU_ASSERT_EQUAL(list[0].bus, 1);
    ASSERT_STR(list[0].path, "1-1");
    ASSERT_STR(list[0].manufacturer, "Test");
    ASSERT_STR(list[0].product, "HID Scanner");
    ASSERT_STR(list[0].serial, "0001");
    CU_ASSERT_EQUAL(list[0].kind, USB_HID_KEYBOARD);
    CU_ASSERT_PTR_NULL(list[0].note);
    CU_ASSERT_EQUAL(list[1].pid, 0x0b6a);
    ASSERT_STR(list[1].path, "1-3");
    ASSERT_STR(list[1].product, "HID POS Scanner");
    ASSERT_STR(list[1].serial, "P0001");
    CU_ASSERT_EQUAL(list[1].kind, USB_HID_POS);
    ASSERT_STR(usb_hid_kind_name(list[1].kind), "hid-pos");
    ASSERT_STR(usb_hid_kind_name(list[0].kind), "keyboard");
    /* The report descriptor came from Linux's copy in sysfs: the device was not asked. */
    emu_lock(pos);
    CU_ASSERT_EQUAL(pos->rdesc_reads, 0);
    emu_unlock(pos);
    emu_lock(kbd);
    CU_ASSERT_EQUAL(kbd->claims, 0);  /* enumeration claims nothing */
    emu_unlock(kbd);
    usb_hid_list_free(list, n);
    usb_hid_list_free(NULL, 0);
    bed_free(b);
}

/* No URB of the device is out: none waits for a report, none waits to be reaped. */
static bool emu_idle(const void *arg)
{
    struct emu *e = (struct emu *)arg;
    bool idle = true;
    pthread_mutex_lock(&e->mu);
    for (GList *l = e->clients; l; l = l->next) {
        const struct emu_client *c = l->data;
        idle = idle && !c->pending && !c->done;
    }
    pthread_mutex_unlock(&e->mu);
    return idle;
}

static void test_destroy_while_reading(void)
{
    struct bed *b = bed_new();
    struct emu *e1 = bed_emu(b, FIXTURES "kbd-scanner.umockdev", true);
    struct emu *e2 = bed_emu(b, FIXTURES "kbd-scanner-2.umockdev", true);
    struct rec r1 = { 0 }, r2 = { 0 };
    open_scanner(b, &r1, "usb:" KBD_VIDPID ":0001" OPTS);
    open_scanner(b, &r2, "usb:" KBD_VIDPID ":0002" OPTS);
    wait_events(b, &r1, 1);
    wait_events(b, &r2, 1);
    /* Scanner 1's first scan destroys scanner 2, whose transfer is out. */
    r1.destroy_on_scan = &r2.s;
    kbd_type(e1, "KILL\n");
    wait_events(b, &r1, 2);
    expect_scan(&r1, 1, KBD_ID, "KILL", "");
    CU_ASSERT_PTR_NULL(r2.s);
    /* Its transfer was cancelled, and reaped. */
    run_until(b, emu_idle, e2);
    kbd_type(e1, "STILL\n");
    wait_events(b, &r1, 3);
    expect_scan(&r1, 2, KBD_ID, "STILL", "");
    CU_ASSERT_EQUAL(r2.n, 1);
    /* A new scanner gets device 2 back: it was released. */
    rec_clear(&r2);
    open_scanner(b, &r2, "usb:" KBD_VIDPID ":0002" OPTS);
    wait_events(b, &r2, 1);
    expect(&r2, 0, SCANNER_EV_CONNECTED, KBD2_ID, NULL);
    /* And the last scanner of the loop goes with its transfer out. */
    close_scanner(&r1);
    close_scanner(&r2);
    bed_free(b);
}

/* A transfer error: what was pending is rejected, the device is reopened and read. */
static void test_transfer_error(void)
{
    struct bed *b = bed_new();
    struct emu *e = bed_emu(b, FIXTURES "kbd-scanner.umockdev", true);
    struct rec r = { 0 };
    open_scanner(b, &r, "usb:" KBD_VIDPID OPTS);
    wait_events(b, &r, 1);
    kbd_type(e, "AB");
    emu_fail_transfer(e, -EPROTO);
    wait_events(b, &r, 4);
    expect_rejected(&r, 1, KBD_ID, "AB", 2, "USB transfer failed before end of line");
    expect(&r, 2, SCANNER_EV_DISCONNECTED, KBD_ID, "USB transfer failed (I/O error); reconnecting");
    CU_ASSERT_EQUAL(r.ev[2].clients, 0);
    expect(&r, 3, SCANNER_EV_CONNECTED, KBD_ID, NULL);
    kbd_type(e, "OK\n");
    wait_events(b, &r, 5);
    expect_scan(&r, 4, KBD_ID, "OK", "");
    emu_lock(e);
    CU_ASSERT_EQUAL(e->protocol_sets, 2);  /* set up again from scratch */
    emu_unlock(e);
    close_scanner(&r);
    bed_free(b);
}

/* detach=yes (the default): the kernel's driver is detached, and given back at the end. */
static void test_detach_kernel_driver(void)
{
    struct bed *b = bed_new();
    struct emu *e = bed_emu(b, FIXTURES "kbd-scanner.umockdev", false);
    e->driver = true;
    bed_plug(b, e);
    struct rec r = { 0 };
    open_scanner(b, &r, "usb:" KBD_VIDPID ",eol_ms=60000");
    wait_events(b, &r, 1);
    expect(&r, 0, SCANNER_EV_CONNECTED, KBD_ID, NULL);
    emu_lock(e);
    CU_ASSERT_EQUAL(e->detaches, 1);
    CU_ASSERT_FALSE(e->driver);
    emu_unlock(e);
    kbd_type(e, "MINE\n");
    wait_events(b, &r, 2);
    expect_scan(&r, 1, KBD_ID, "MINE", "");
    close_scanner(&r);
    emu_lock(e);
    CU_ASSERT_EQUAL(e->attaches, 1);
    CU_ASSERT(e->driver);
    emu_unlock(e);
    bed_free(b);
}

/* detach=no while the kernel holds the interface: say so, and keep trying. */
static void test_kernel_driver_kept(void)
{
    struct bed *b = bed_new();
    struct emu *e = bed_emu(b, FIXTURES "kbd-scanner.umockdev", false);
    e->driver = true;
    bed_plug(b, e);
    struct rec r = { 0 };
    open_scanner(b, &r, "usb:" KBD_VIDPID OPTS);
    wait_events(b, &r, 1);
    expect(&r, 0, SCANNER_EV_DISCONNECTED, KBD_ID,
           "cannot claim the scanner's interface: the kernel's HID driver holds the "
           "interface (set detach=yes to take it); retrying");
    settle(b);
    CU_ASSERT_EQUAL(r.n, 1);
    emu_lock(e);
    CU_ASSERT_EQUAL(e->detaches, 0);
    CU_ASSERT(e->claims >= 3);
    emu_unlock(e);
    close_scanner(&r);
    bed_free(b);
}

/* What scanner_new_usb refuses: only what no retry can fix. */
static void test_bad_config(void)
{
    loop_t *loop = loop_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    struct rec r = { 0 };
    char *err = NULL;
    config_option_t opts[1] = { { "layout", "xx" } };
    config_scanner_t cfg = { .kind = CONFIG_SCANNER_USB, .spec = "usb:0c2e:0b61,layout=xx",
                             .vid = 0x0c2e, .pid = 0x0b61, .opts = opts, .nopts = 1 };
    CU_ASSERT_PTR_NULL(scanner_new_usb(loop, &cfg, NULL, on_event, &r, &err));
    CU_ASSERT_EQUAL(errno, EINVAL);
    ASSERT_STR(err, "usb:0c2e:0b61,layout=xx: unknown keyboard layout 'xx' (XKB has no such "
                    "layout or variant; " KEYMAP_NAMES_HINT ")");
    free(err);
    opts[0] = (config_option_t){ "alt", "maybe" };
    CU_ASSERT_PTR_NULL(scanner_new_usb(loop, &cfg, NULL, on_event, &r, &err));
    ASSERT_CONTAINS(err, "alt must be yes or no");
    free(err);
    opts[0] = (config_option_t){ "eol_ms", "5" };
    CU_ASSERT_PTR_NULL(scanner_new_usb(loop, &cfg, NULL, on_event, &r, &err));
    ASSERT_CONTAINS(err, "eol_ms must be 10..60000");
    free(err);
    cfg.kind = CONFIG_SCANNER_TCP;
    CU_ASSERT_PTR_NULL(scanner_new_usb(loop, &cfg, NULL, on_event, &r, &err));
    ASSERT_CONTAINS(err, "not a usb scanner");
    free(err);
    cfg.kind = CONFIG_SCANNER_USB;
    cfg.nopts = 0;
    CU_ASSERT_PTR_NULL(scanner_new_usb(NULL, &cfg, NULL, on_event, &r, NULL));
    CU_ASSERT_EQUAL(errno, EINVAL);
    /* Valid, with no device of that kind anywhere: a scanner, quietly waiting. */
    r.s = scanner_new_usb(loop, &cfg, NULL, on_event, &r, &err);
    CU_ASSERT_PTR_NOT_NULL(r.s);
    CU_ASSERT_PTR_NULL(err);
    close_scanner(&r);
    loop_destroy(&loop);
}

/* ---- recorded keyboard layouts (tests/fixtures/usb/wedge/, issue 16) ---------------- */

#define WEDGE FIXTURES "wedge/"
#define GTIN "09506000134352"

/* Queue the interrupt reports of a umockdev ioctl recording (gen_wedge.py's). */
static size_t emu_play_recording(struct emu *e, const char *path)
{
    char *text = th_read_file(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    size_t n = 0;
    static const char urb[] = "USBDEVFS_REAPURBNDELAY 0 1 129 0 0 8 8 0 ";
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, urb, strlen(urb)) != 0)
            continue;
        const char *h = line + strlen(urb);
        uint8_t r[KBD_REPORT_LEN];
        for (size_t i = 0; i < sizeof(r); i++, h += 2) {
            CU_ASSERT_FATAL(hexval(h[0]) >= 0 && hexval(h[1]) >= 0);
            r[i] = (uint8_t)(hexval(h[0]) << 4 | hexval(h[1]));
        }
        emu_report(e, r, sizeof(r));
        n++;
    }
    free(text);
    return n;
}

static const struct {
    const char *fixture, *options;
    const char *scans[6];  /* the receipt gen_wedge.py typed */
} wedge_recordings[] = {
    { "fr.ioctl", ",layout=fr",
      { "RMA-4101", "\x1d" "01" GTIN "10FR.1-A\x1d" "17261231", "AZ-4101/QW.M_*$" } },
    { "gb.ioctl", ",layout=gb",
      { "RMA-4201", "\x1d" "01" GTIN "10GB-2\x1d" "17261231", "GB\"4201@A#B~C\u00a3\\" } },
    { "ch-de.ioctl", ",layout=ch(de)",
      { "RMA-4301", "\x1d" "01" GTIN "10CH.3\x1d" "17261231", "CH'4301+Z*Y$_@#^=" } },
    { "es.ioctl", ",layout=es",
      { "RMA-4401", "\x1d" "01" GTIN "10ES-4\x1d" "17261231", "ES^4401`A'\u00d1/B" } },
    /* Alt mode in a French-configured scanner: the layout plays no part. */
    { "alt.ioctl", ",layout=fr,alt=yes",
      { "RMA-4001", "\x1d" "01" GTIN "10ALT-1\x1d" "17261231", "SN-4001/ALT" } },
};

/*
 * Each recording types a receipt in its layout: RMA, a GS1 string with GS (Ctrl + the
 * layout's ']' key, or Alt+029), a serial with the layout's punctuation, the checklist.
 */
static void test_layout_recordings(void)
{
    for (size_t i = 0; i < sizeof(wedge_recordings) / sizeof(wedge_recordings[0]); i++) {
        struct bed *b = bed_new();
        struct emu *e = bed_emu(b, FIXTURES "kbd-scanner.umockdev", true);
        struct rec r = { 0 };
        char spec[96], path[128];
        snprintf(spec, sizeof(spec), "usb:" KBD_VIDPID OPTS "%s", wedge_recordings[i].options);
        snprintf(path, sizeof(path), WEDGE "%s", wedge_recordings[i].fixture);
        open_scanner(b, &r, spec);
        wait_events(b, &r, 1);
        CU_ASSERT_FATAL(emu_play_recording(e, path) > 100);
        wait_events(b, &r, 7);
        const char *const *want = wedge_recordings[i].scans;
        const char *const checklist[] = { "PKG-ORIGINAL", "FAULT-CONFIRMED", "CMD-DONE" };
        for (size_t k = 0; k < 3; k++)
            expect_scan(&r, 1 + k, KBD_ID, want[k], "");
        for (size_t k = 0; k < 3; k++)
            expect_scan(&r, 4 + k, KBD_ID, checklist[k], "");
        CU_ASSERT(r.ev[2].gs1);
        settle(b);
        CU_ASSERT_EQUAL(r.n, 7);
        if (r.n != 7 || CU_get_number_of_failures())
            fprintf(stderr, "\n  recording %s\n", wedge_recordings[i].fixture);
        close_scanner(&r);
        bed_free(b);
    }
}

/*
 * Issue 16: an Alt-mode wedge delivers the same scans as a HID POS scanner reading the
 * same barcodes (sent without AIM ids, as the wedge has none): same text, same GS1
 * classification, same symbology.
 */
static void test_alt_mode_as_hidpos(void)
{
    struct bed *b = bed_new();
    struct emu *kbd = bed_emu(b, FIXTURES "kbd-scanner.umockdev", true);
    struct emu *pos = bed_emu(b, FIXTURES "hidpos-scanner.umockdev", true);
    struct rec rk = { 0 }, rp = { 0 };
    open_scanner(b, &rk, "usb:" KBD_VIDPID OPTS ",layout=de,alt=yes");
    open_scanner(b, &rp, "usb:" POS_VIDPID OPTS);
    wait_events(b, &rk, 1);
    wait_events(b, &rp, 1);
    CU_ASSERT_FATAL(emu_play_recording(kbd, WEDGE "alt.ioctl") > 100);
    const char *const *want = wedge_recordings[4].scans;
    const char *const all[6] = { want[0], want[1], want[2], "PKG-ORIGINAL", "FAULT-CONFIRMED",
                                 "CMD-DONE" };
    for (size_t k = 0; k < 6; k++)
        pos_report(pos, NULL, all[k], strlen(all[k]), false);
    wait_events(b, &rk, 7);
    wait_events(b, &rp, 7);
    for (size_t k = 1; k < 7; k++) {
        expect_scan(&rk, k, KBD_ID, all[k - 1], "");
        expect_scan(&rp, k, POS_ID, all[k - 1], "");
        CU_ASSERT_EQUAL(rk.ev[k].gs1, rp.ev[k].gs1);
        CU_ASSERT_PTR_EQUAL(rk.ev[k].symbology, rp.ev[k].symbology);
    }
    CU_ASSERT(rk.ev[2].gs1);
    close_scanner(&rk);
    close_scanner(&rp);
    bed_free(b);
}

/* ==== the suite ====================================================================== */

static const struct {
    const char *name;
    CU_TestFunc fn;
} usb_tests[] = {
    { "recorded keyboard scan replayed by umockdev", test_replay_recording },
    { "keyboard wedge: shift, repeats, Tab, GS", test_keyboard_wedge },
    { "keyboard wedge: German layout", test_layout_de },
    { "eol=required: no Enter in time is rejected", test_eol_required },
    { "eol=none: silence ends the scan", test_eol_none },
    { "garbage reports rejected, device still read", test_garbage },
    { "HID POS: GS1 DataMatrix with its AIM id", test_hidpos_gs1 },
    { "HID POS: no final report in time", test_hidpos_timeout },
    { "HID POS: answers as the declared output report", test_hidpos_feedback },
    { "keyboard wedge: no answers", test_kbd_no_feedback },
    { "unplug mid-line, replug", test_unplug_replug },
    { "two identical scanners told apart", test_two_devices },
    { "serial number selects the device", test_serial_number },
    { "busy interface: reported once, retried", test_busy_retried },
    { "a HID device that is no scanner", test_not_a_scanner },
    { "usb_list_hid for rmactl scanners", test_list_hid },
    { "destroyed with transfers out", test_destroy_while_reading },
    { "detach=yes takes the interface from the kernel, gives it back", test_detach_kernel_driver },
    { "detach=no: the kernel's driver is in the way", test_kernel_driver_kept },
    { "configurations refused", test_bad_config },
    { "recorded layouts fr, gb, ch(de), es and Alt mode type receipts", test_layout_recordings },
    { "Alt mode: the same scans as HID POS", test_alt_mode_as_hidpos },
    { "transfer error: reconnected", test_transfer_error },
};

#define N_USB_TESTS (sizeof(usb_tests) / sizeof(usb_tests[0]))

/* Whether umockdev's preload is in this process (it must be there from exec on). */
static bool under_umockdev(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "libumockdev-preload");
}

/* CUnit's "tests" summary row of a run: ran, passed. */
static bool summary(const char *out, unsigned *ran, unsigned *passed)
{
    const char *row = out ? strstr(out, "\n               tests ") : NULL;
    unsigned total, failed;
    return row && sscanf(row, " tests %u %u %u %u", &total, ran, passed, &failed) == 4;
}

/*
 * The USB tests in a child under umockdev: `umockdev-wrapper test_runner usb`, under
 * valgrind when make valgrind asked for it, bounded by timeout(1). The child must run
 * every USB test and pass them all.
 */
static void test_under_umockdev(void)
{
    char runner[4096];
    snprintf(runner, sizeof(runner), "%s", th_bin("test_runner"));
    char *argv[24];
    size_t n = 0;
    argv[n++] = "/usr/bin/timeout";
    argv[n++] = "-k";
    argv[n++] = "10";
    argv[n++] = "900";
    argv[n++] = "umockdev-wrapper";
    if (getenv("RMAD_VALGRIND")) {
        argv[n++] = "valgrind";
        argv[n++] = "--error-exitcode=3";
        argv[n++] = "--leak-check=full";
        argv[n++] = "--errors-for-leak-kinds=definite";
        argv[n++] = "--suppressions=" FIXTURES "valgrind.supp";
    }
    argv[n++] = runner;
    argv[n++] = "usb";
    argv[n] = NULL;
    /* ASan checks that it comes first in the library order; the preload comes first. */
    const char *asan = getenv("ASAN_OPTIONS");
    char *saved = asan ? strdup(asan) : NULL;
    char *opts = NULL;
    CU_ASSERT_FATAL(asprintf(&opts, "%s%sverify_asan_link_order=0", asan ? asan : "",
                             asan && *asan ? ":" : "") > 0);
    CU_ASSERT_FATAL(setenv("ASAN_OPTIONS", opts, 1) == 0);
    th_proc_t p = th_run_proc(argv, NULL);
    if (saved)
        (void)setenv("ASAN_OPTIONS", saved, 1);
    else
        (void)unsetenv("ASAN_OPTIONS");
    free(saved);
    free(opts);
    unsigned ran = 0, passed = 0;
    bool parsed = summary(p.out, &ran, &passed);
    if (p.status != 0 || !parsed || ran != N_USB_TESTS || passed != N_USB_TESTS)
        fprintf(stderr, "\n--- usb tests under umockdev (status %d) ---\n%s\n%s\n---\n",
                p.status, p.out ? p.out : "", p.err ? p.err : "");
    CU_ASSERT_EQUAL(p.status, 0);
    CU_ASSERT(parsed);
    CU_ASSERT_EQUAL(ran, N_USB_TESTS);
    CU_ASSERT_EQUAL(passed, N_USB_TESTS);
    th_proc_free(&p);
}

int suite_usb(void)
{
    CU_pSuite s = CU_add_suite("usb", NULL, NULL);
    if (!s)
        return -1;
    if (!under_umockdev())
        return CU_add_test(s, "the USB tests, run under umockdev", test_under_umockdev) ? 0 : -1;
    /* RMAD_USB_ONLY=1,4,5 runs only those tests, numbered from 1 (debugging). */
    const char *only = getenv("RMAD_USB_ONLY");
    for (size_t i = 0; i < N_USB_TESTS; i++) {
        char num[16];
        snprintf(num, sizeof(num), ",%zu,", i + 1);
        char *list = NULL;
        bool wanted = !only || (asprintf(&list, ",%s,", only) > 0 && strstr(list, num));
        free(list);
        if (wanted && !CU_add_test(s, usb_tests[i].name, usb_tests[i].fn))
            return -1;
    }
    return 0;
}
