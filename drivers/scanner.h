/*
 * Scanners: where scans come from (spec station, "Scanner inputs").
 *
 * A scanner_t is one `scanner = ...` line of the config: a TCP listener, a USB HID
 * device or a serial port. Every kind is the same opaque scanner_t, made by its driver's
 * scanner_new_<kind>() and then used only through the functions below, so the daemon
 * never needs to know which kind it holds.
 *
 * A scanner does its I/O on the loop's thread, through fds it registers with the
 * event loop (core/loop.h). It cuts its input into reads (a line, a HID report
 * sequence), decodes each with scan_decode() and reports the outcome through one
 * callback. Drivers produce scans only: they never touch SQLite or ZeroMQ, never log
 * and never exit. The daemon decides what a scan means, stores it and logs what the
 * events tell it.
 */
#ifndef RMAD_SCANNER_H
#define RMAD_SCANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/loop.h"
#include "drivers/scan.h"

typedef struct scanner scanner_t;

typedef enum {
    /* One read decoded: scan is set, with scan->scanner = scanner_id and t_ms. */
    SCANNER_EV_SCAN,
    /*
     * One read refused (bad bytes, over-long, cut short by a disconnect): raw and
     * raw_len hold the bytes as received, without the line terminator, for the audit
     * trail; reason says why. Never a scan: the daemon stores it as a rejected read.
     */
    SCANNER_EV_REJECTED,
    /* A client (TCP) or device (USB, serial) is now connected. */
    SCANNER_EV_CONNECTED,
    /*
     * That client or device is gone, reason says why. Also reported, without a
     * CONNECTED before it, for a connection the scanner refused ("too many clients")
     * and, with scanner_id = the scanner's spec, when the scanner cannot accept
     * connections for a moment (out of file descriptors).
     */
    SCANNER_EV_DISCONNECTED,
    /*
     * TCP: connections from peers outside the scanner's allow= list were closed at
     * accept (never a client: no CONNECTED, no DISCONNECTED, no connection number).
     * Reported at the first refusal, then at most once per SCANNER_TCP_REFUSED_REPORT_MS
     * while more come: count is how many since the last report, peer the latest one.
     */
    SCANNER_EV_REFUSED,
    /*
     * A client or device went over its scan budget (option rate/burst, see
     * scanner_lines_feed): count 0, reason naming the budget, when it starts; then,
     * when its scans fit the budget again or it disconnects, count = the reads refused
     * meanwhile. Those reads were answered REJECT by the driver and are not reported
     * one by one (storing each would be the very load the budget prevents).
     */
    SCANNER_EV_OVER_BUDGET,
} scanner_ev_kind_t;

/*
 * What the callback receives. Everything it points at is borrowed: valid until the
 * callback returns, so the callback copies what it keeps (scan_t fields included).
 */
typedef struct {
    scanner_ev_kind_t kind;
    const char *scanner_id; /* the client or device, "tcp:127.0.0.1:7790#3" (#N counts the
                               scanner's connections from 1); always set */
    const scan_t *scan;     /* SCAN only */
    const uint8_t *raw;     /* SCAN, REJECTED: the bytes as received, no terminator */
    size_t raw_len;
    const char *reason;     /* REJECTED, DISCONNECTED: one line of English */
    const char *peer;       /* CONNECTED, DISCONNECTED of a TCP client: "10.0.0.5:51234",
                               "[::1]:51234"; otherwise NULL */
    bool refused;           /* DISCONNECTED: never served (full, out of memory, cannot
                               accept): no CONNECTED came before it */
    uint64_t count;         /* REFUSED: connections refused by allow= since the last
                               report; OVER_BUDGET: reads refused (0 when it starts) */
} scanner_event_t;

/*
 * Called on the loop's thread for every event, in the order things happened. It may
 * do anything with the loop (loop_stop, other registrations) and query the scanner,
 * but must not destroy the scanner that is calling it: the driver is in the middle of
 * its input.
 */
typedef void (*scanner_event_fn)(const scanner_event_t *ev, void *data);

/* A TCP scanner reports refused peers (allow=) at most this often: once, with a count. */
#define SCANNER_TCP_REFUSED_REPORT_MS 60000

/* Connections a TCP scanner serves at once; more are accepted and closed at once. */
#define SCANNER_TCP_MAX_CLIENTS 16
/*
 * A TCP client that sends nothing for this long is closed (option idle_timeout=S, 0:
 * never): a forgotten `nc` or a phone app in the background gives its slot back. A
 * full scanner also closes its longest-idle client (idle 5 s or more) for a new one.
 */
#define SCANNER_TCP_IDLE_TIMEOUT_S 300

/*
 * The scan budget of each client or device (options rate=N,burst=N; rate=0: none):
 * a token bucket of `burst` reads refilled at `rate` a second. Every read counts, a
 * refused one too (each is a stored transaction). A read over the budget is answered
 * REJECT "not stored: over the scan budget ..." and not stored. A person scans a few
 * times a second; a phone app may send a stored batch at once: both fit. A client
 * pouring 20,000 lines gets `burst` stored and then `rate` a second.
 */
#define SCANNER_RATE_DEFAULT 20
#define SCANNER_BURST_DEFAULT 200

/* Reply bytes a TCP connection may leave unread before it is disconnected. */
#define SCANNER_TCP_REPLY_MAX 16384

/*
 * TCP scanner input: listen on cfg->host:cfg->port (kind CONFIG_SCANNER_TCP) and take
 * one scan per line from every client: CR, LF or CRLF end a line, empty lines are
 * ignored. host is an IPv4 or IPv6 literal, or "localhost" for both 127.0.0.1 and
 * ::1 (::1 is left out on a host without IPv6). Port 0 lets the kernel pick a free
 * port (tests): scanner_tcp_port() tells which.
 *
 * A line longer than the limit is rejected once, with its first max_len bytes, and
 * the rest of it is dropped; a line cut short by the client closing is rejected with
 * its bytes; the client stays connected through bad lines. Each client holds at most
 * max_len bytes of a pending line. Replies go back through scanner_feedback(). A client
 * that vanishes without closing (a phone leaving the Wi-Fi) is found by TCP keepalive
 * within about 90 s, so it cannot hold a client slot forever.
 *
 * lim may be NULL (defaults); it and cfg are copied, not kept. Nothing is reported
 * from inside this call. Returns the scanner, listening and registered with loop, or
 * NULL with errno set and, when errmsg is not NULL, *errmsg a malloc'd one-line
 * message (caller frees): "tcp:127.0.0.1:7790: Address already in use".
 */
scanner_t *scanner_new_tcp(loop_t *loop, const config_scanner_t *cfg,
                           const scan_limits_t *lim, scanner_event_fn fn, void *data,
                           char **errmsg);

/*
 * Option defaults of usb and serial scanners (config_scanner_option names them).
 * eol=required: a scan ends at CR, LF or Enter/Tab; bytes left pending for
 * SCANNER_EOL_MS_DEFAULT without one are rejected ("no end of line within N ms"),
 * never guessed into a scan. eol=none: the scanner sends no suffix, and eol_ms of
 * silence ends each scan.
 */
#define SCANNER_EOL_MS_DEFAULT 300

/*
 * USB HID scanner (kind CONFIG_SCANNER_USB, drivers/usb.c): the device with cfg's
 * VID:PID (and serial number, when given), found now or whenever it is plugged in
 * (hotplug), and found again after it is unplugged. Boot-keyboard (keyboard-wedge) and
 * HID POS (usage page 0x8C) scanners. CONNECTED/DISCONNECTED report the device coming
 * and going, each device under its own id, "usb:0c2e:0b61@1-4.2" (drivers/usb.h); a
 * device that is absent at start is not an error. All USB I/O is
 * asynchronous, on fds registered with loop. Same contract as scanner_new_tcp
 * otherwise; an error is returned only for what retrying cannot fix (libusb cannot
 * start, out of memory).
 */
scanner_t *scanner_new_usb(loop_t *loop, const config_scanner_t *cfg,
                           const scan_limits_t *lim, scanner_event_fn fn, void *data,
                           char **errmsg);

/*
 * Serial scanner (kind CONFIG_SCANNER_SERIAL, drivers/serial.c): cfg's port path, or
 * the port of the USB-serial device with cfg's VID:PID, opened with cfg's options
 * (default 9600 8N1, no flow control), one scan per CR, LF or CRLF. A port that is
 * absent or goes away is retried until it is back, with CONNECTED/DISCONNECTED.
 * Same contract as scanner_new_usb.
 */
scanner_t *scanner_new_serial(loop_t *loop, const config_scanner_t *cfg,
                              const scan_limits_t *lim, scanner_event_fn fn, void *data,
                              char **errmsg);

/*
 * Close everything the scanner holds (listening sockets, clients, devices) and
 * unregister it from its loop, which must still exist. Nothing is reported: a pending
 * half line is dropped. Accepts NULL and clears the caller's pointer.
 */
void scanner_destroy(scanner_t **scanner_p);

/* "tcp:127.0.0.1:7790": the config's spec (with the real port when it asked for 0). */
const char *scanner_spec(const scanner_t *s);

/* Clients or devices connected now (for `rmactl status`). */
size_t scanner_clients(const scanner_t *s);

/* The port a TCP scanner listens on; 0 for other kinds. */
uint16_t scanner_tcp_port(const scanner_t *s);

/*
 * The answer to one scan (docs/station.md, "Replies"): taken, refused, or a double
 * read that was ignored.
 */
typedef enum {
    SCANNER_REPLY_OK,
    SCANNER_REPLY_REJECT,
    SCANNER_REPLY_DOUBLE,
} scanner_reply_t;

/* "OK", "REJECT", "DOUBLE": the first word of a TCP reply line. Static. */
const char *scanner_reply_word(scanner_reply_t reply);

/*
 * Answer the read that scanner_id (a client or device id from this scanner's events)
 * just reported, so a worker holding only the scanner knows whether it was taken.
 * text is one line for people (control bytes are sent as spaces). Each driver answers
 * in the way its devices can:
 *   tcp     "WORD text\n" to that connection, never blocking: what the socket does
 *           not take is queued, at most SCANNER_TCP_REPLY_MAX bytes per connection;
 *           beyond that replies are dropped (-ENOBUFS) until the queue drains, and
 *           the client keeps its connection: a scanner that only sends must never be
 *           cut off for ignoring answers.
 *   serial  the option bytes feedback_ok / feedback_reject / feedback_double, written
 *           without blocking (a beep that does not fit the port's buffer is dropped).
 *   usb     HID POS scanners whose report descriptor declares an output report with a
 *           good-read / error indicator (drivers/hidpos.h) get it set; keyboard-wedge
 *           scanners have no way back.
 * Returns 0 when sent or queued, -ENOTSUP when this scanner (or that device) has no
 * feedback for `reply`, -ENOENT when scanner_id is not connected now, -EPIPE when the
 * connection can no longer be written (its end is reported as a disconnect), -ENOBUFS
 * when a TCP client's reply queue is full (the reply is dropped), -ENOMEM.
 */
int scanner_feedback(scanner_t *s, const char *scanner_id, scanner_reply_t reply,
                     const char *text);

/* ==== Driver side: for drivers/<kind>.c only ======================================
 *
 * What every driver shares, so that no driver repeats it: the scanner_t around the
 * driver's own state, turning bytes into SCAN/REJECTED events, and cutting a byte
 * stream into lines (tcp, serial, and keyboard-wedge characters from usb).
 */

/* A driver's entry points, called through the scanner_t. */
typedef struct {
    const char *kind;                    /* "tcp", "usb", "serial" */
    size_t (*clients)(const void *impl); /* what scanner_clients() returns */
    void (*destroy)(void *impl);         /* close, unregister and free; report nothing */
    /* scanner_feedback(); NULL when the kind never answers (-ENOTSUP). Must not report
     * events or free anything the caller's callback chain is using. */
    int (*feedback)(void *impl, const char *scanner_id, scanner_reply_t reply,
                    const char *text);
    /* scanner_hold(); NULL when the kind cannot wait (the device's bytes would be lost). */
    void (*hold)(void *impl, bool hold);
} scanner_ops_t;

/*
 * The scan budget of every stream of s from cfg's rate= and burst= options (defaults
 * SCANNER_RATE_DEFAULT, SCANNER_BURST_DEFAULT): drivers call it once after
 * scanner_create, before any stream starts.
 */
void scanner_budget_config(scanner_t *s, const config_scanner_t *cfg);

/*
 * Backpressure: while held, the scanner reads nothing more (a TCP client's bytes wait
 * in the kernel and then in the client: TCP's own flow control), so a burst larger
 * than the daemon can store at once waits at the sender instead of being turned away.
 * Reads already taken in are still reported. Only TCP holds: a serial line or a USB
 * device that is not read loses its bytes, so for them it is -ENOTSUP (their reads
 * keep coming, and past the station's queue they are answered "not stored").
 */
int scanner_hold(scanner_t *s, bool hold);

/*
 * Wrap a driver's state (impl) in a scanner_t. spec is copied; lim may be NULL.
 * Returns NULL (errno ENOMEM) when out of memory, and then impl still belongs to the
 * caller; otherwise scanner_destroy() calls ops->destroy(impl).
 */
scanner_t *scanner_create(const scanner_ops_t *ops, void *impl, const char *spec,
                          const scan_limits_t *lim, scanner_event_fn fn, void *data);

/* The driver state of s when s was made with ops, else NULL. */
void *scanner_impl(const scanner_t *s, const scanner_ops_t *ops);

/* The longest scan s accepts, in bytes (the limit with its default applied). */
size_t scanner_max_len(const scanner_t *s);

/* Hand ev to the scanner's callback. */
void scanner_emit(scanner_t *s, const scanner_event_t *ev);

/*
 * One read of len bytes from scanner_id, without its terminator: decode it, stamp it
 * with scanner_id and loop_now_ms(), and report SCAN or REJECTED (with scan_decode's
 * reason, or "out of memory").
 */
void scanner_emit_read(scanner_t *s, const char *scanner_id, const uint8_t *raw,
                       size_t len);

/*
 * Line framing of one byte stream. CR and LF each end a line and empty lines are
 * ignored, so CRLF (split across reads or not) is one terminator without any state.
 */
typedef struct scanner_lines scanner_lines_t;

/*
 * Framing for the stream of scanner_id (borrowed: it must outlive the framer). Holds
 * at most scanner_max_len(s) bytes. NULL (errno ENOMEM) when out of memory.
 */
scanner_lines_t *scanner_lines_new(scanner_t *s, const char *scanner_id);

/* Accepts NULL and clears the pointer. A pending line is dropped silently. */
void scanner_lines_destroy(scanner_lines_t **lines_p);

/*
 * Feed n bytes: every line they complete is passed to scanner_emit_read() if the
 * stream's budget allows (scanner_budget_config), else answered REJECT through
 * scanner_feedback and counted (SCANNER_EV_OVER_BUDGET). A line that
 * grows past the limit is reported REJECTED at once, with its first max_len bytes and
 * "scan longer than N bytes (...)", and the rest of it, up to its terminator, is
 * dropped. O(n); the only allocations are scan_decode()'s, per complete line.
 */
void scanner_lines_feed(scanner_lines_t *lines, const uint8_t *p, size_t n);

/*
 * The stream ended: a pending unterminated line is reported REJECTED with its bytes
 * and this reason ("connection closed before end of line"); it is never taken as a
 * scan. Then the framer is empty again.
 */
void scanner_lines_end(scanner_lines_t *lines, const char *reason);

/* Whether a line is pending: bytes since the last terminator (drivers time it out). */
bool scanner_lines_pending(const scanner_lines_t *lines);

/*
 * End the pending line as if its terminator had arrived (a scanner configured with
 * eol=none, after eol_ms of silence): it is decoded and reported like any line.
 */
void scanner_lines_flush(scanner_lines_t *lines);

#endif
