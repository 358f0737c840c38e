/*
 * What every scanner driver shares (drivers/scanner.h, driver side): the scanner_t
 * around a driver's state, turning bytes into SCAN/REJECTED events, and cutting a
 * byte stream into lines. Kept here so the tcp, serial and usb drivers never repeat it.
 */
#include "drivers/scanner.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


struct scanner {
    const scanner_ops_t *ops;
    void *impl;
    char *spec;
    scan_limits_t lim;      /* max_len resolved: never 0 */
    unsigned rate, burst;   /* every stream's scan budget; rate 0: none */
    scanner_event_fn fn;
    void *data;
};

scanner_t *scanner_create(const scanner_ops_t *ops, void *impl, const char *spec,
                          const scan_limits_t *lim, scanner_event_fn fn, void *data)
{
    scanner_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->spec = strdup(spec);
    if (!s->spec) {
        free(s);
        errno = ENOMEM;
        return NULL;
    }
    s->ops = ops;
    s->impl = impl;
    s->lim.max_len = lim && lim->max_len ? lim->max_len : SCAN_MAX_LEN_DEFAULT;
    s->rate = SCANNER_RATE_DEFAULT;
    s->burst = SCANNER_BURST_DEFAULT;
    s->fn = fn;
    s->data = data;
    return s;
}

void scanner_destroy(scanner_t **scanner_p)
{
    if (!scanner_p || !*scanner_p)
        return;
    scanner_t *s = *scanner_p;
    s->ops->destroy(s->impl);
    free(s->spec);
    free(s);
    *scanner_p = NULL;
}

void *scanner_impl(const scanner_t *s, const scanner_ops_t *ops)
{
    return s && s->ops == ops ? s->impl : NULL;
}

const char *scanner_spec(const scanner_t *s)
{
    return s ? s->spec : NULL;
}

size_t scanner_clients(const scanner_t *s)
{
    return s ? s->ops->clients(s->impl) : 0;
}

const char *scanner_reply_word(scanner_reply_t reply)
{
    switch (reply) {
    case SCANNER_REPLY_OK: return "OK";
    case SCANNER_REPLY_REJECT: return "REJECT";
    case SCANNER_REPLY_DOUBLE: return "DOUBLE";
    }
    return "REJECT";
}

int scanner_feedback(scanner_t *s, const char *scanner_id, scanner_reply_t reply,
                     const char *text)
{
    if (!s || !scanner_id)
        return -EINVAL;
    if (!s->ops->feedback)
        return -ENOTSUP;
    return s->ops->feedback(s->impl, scanner_id, reply, text ? text : "");
}

int scanner_hold(scanner_t *s, bool hold)
{
    if (!s)
        return -EINVAL;
    if (!s->ops->hold)
        return -ENOTSUP;
    s->ops->hold(s->impl, hold);
    return 0;
}

void scanner_budget_config(scanner_t *s, const config_scanner_t *cfg)
{
    /* The config checked both (core/config.c): numbers in range. */
    const char *rate = cfg ? config_scanner_option(cfg, "rate") : NULL;
    const char *burst = cfg ? config_scanner_option(cfg, "burst") : NULL;
    if (rate)
        s->rate = (unsigned)strtoul(rate, NULL, 10);
    if (burst)
        s->burst = (unsigned)strtoul(burst, NULL, 10);
}

size_t scanner_max_len(const scanner_t *s)
{
    return s->lim.max_len;
}

void scanner_emit(scanner_t *s, const scanner_event_t *ev)
{
    s->fn(ev, s->data);
}

void scanner_emit_read(scanner_t *s, const char *scanner_id, const uint8_t *raw,
                       size_t len)
{
    scan_t scan = { 0 };
    const char *reason = NULL;
    int rc = scan_decode(raw, len, &s->lim, &scan, &reason);
    if (rc == 0 && scan_set_source(&scan, scanner_id, loop_now_ms()) < 0) {
        scan_clear(&scan);
        rc = -ENOMEM;
        reason = "out of memory";
    }
    scanner_event_t ev = { .scanner_id = scanner_id, .raw = raw, .raw_len = len };
    if (rc == 0) {
        ev.kind = SCANNER_EV_SCAN;
        ev.scan = &scan;
    } else {
        ev.kind = SCANNER_EV_REJECTED;
        ev.reason = reason;
    }
    scanner_emit(s, &ev);
    scan_clear(&scan);
}

/* ---- line framing ------------------------------------------------------------- */

/* A run of reads over the budget ends after this long without a refusal. */
#define BUDGET_CALM_MS 1000

struct scanner_lines {
    scanner_t *s;
    const char *id;
    int64_t tokens;         /* the budget left, in thousandths of a read */
    int64_t refilled_ms;    /* monotonic: when tokens were last topped up */
    uint64_t over;          /* reads refused since the budget ran out; 0: within it */
    int64_t refused_ms;     /* monotonic: the last read refused */
    size_t max;             /* scanner_max_len(s) */
    size_t len;             /* bytes of the current line in buf */
    bool discarding;        /* current line was too long and is reported: drop to its end */
    uint8_t buf[];          /* max bytes: a line is reported before it could grow more */
};

scanner_lines_t *scanner_lines_new(scanner_t *s, const char *scanner_id)
{
    size_t max = scanner_max_len(s);
    scanner_lines_t *l = malloc(sizeof(*l) + max);
    if (!l)
        return NULL;
    *l = (scanner_lines_t){ .s = s, .id = scanner_id, .max = max,
                            .tokens = (int64_t)s->burst * 1000, .refilled_ms = loop_now_ms() };
    return l;
}

/* The budget had run out and now a read fits again (or the stream ended): say how many
 * were refused meanwhile, once. */
static void budget_episode_end(scanner_lines_t *l)
{
    if (!l->over)
        return;
    scanner_event_t ev = { .kind = SCANNER_EV_OVER_BUDGET, .scanner_id = l->id,
                           .count = l->over };
    l->over = 0;
    scanner_emit(l->s, &ev);
}

/*
 * Whether one more read of this stream may be reported (a token bucket: `burst` reads,
 * refilled at `rate` a second). One that may not is answered REJECT here and counted;
 * the first of a run is reported, so the daemon logs it once. answer: false at the end
 * of a stream (nobody to answer).
 */
static bool budget_admit(scanner_lines_t *l, bool answer)
{
    const scanner_t *s = l->s;
    if (s->rate == 0)
        return true;
    int64_t now = loop_now_ms(), cap = (int64_t)s->burst * 1000;
    l->tokens += (now - l->refilled_ms) * (int64_t)s->rate;
    if (l->tokens > cap)
        l->tokens = cap;
    l->refilled_ms = now;
    if (l->tokens >= 1000) {
        l->tokens -= 1000;
        /* A flood that goes on gets a read through now and then: still the same run. */
        if (now - l->refused_ms >= BUDGET_CALM_MS)
            budget_episode_end(l);
        return true;
    }
    l->refused_ms = now;
    char why[160];
    (void)snprintf(why, sizeof(why), "over the scan budget of %u a second (burst %u)",
                   s->rate, s->burst);
    if (l->over++ == 0) {
        scanner_event_t ev = { .kind = SCANNER_EV_OVER_BUDGET, .scanner_id = l->id,
                               .reason = why };
        scanner_emit(l->s, &ev);
    }
    if (answer) {
        char reply[200];
        (void)snprintf(reply, sizeof(reply), "not stored: %s; scan it again", why);
        (void)scanner_feedback(l->s, l->id, SCANNER_REPLY_REJECT, reply);
    }
    return false;
}

void scanner_lines_destroy(scanner_lines_t **lines_p)
{
    if (!lines_p || !*lines_p)
        return;
    free(*lines_p);
    *lines_p = NULL;
}

/*
 * The line has just grown past the limit. Report it now, with what we kept, rather
 * than at its terminator: the terminator may never come, and the audit trail should
 * show the read when it happened. The reason says the raw bytes are cut, because
 * everywhere else raw is exactly what arrived.
 */
static void lines_reject_long(scanner_lines_t *l)
{
    if (!budget_admit(l, true))
        return;
    char reason[128];
    (void)snprintf(reason, sizeof(reason),
                   "scan longer than %zu bytes (cut to its first %zu bytes here; "
                   "the rest of the line was dropped)", l->max, l->max);
    scanner_event_t ev = { .kind = SCANNER_EV_REJECTED, .scanner_id = l->id,
                           .raw = l->buf, .raw_len = l->max, .reason = reason };
    scanner_emit(l->s, &ev);
}

void scanner_lines_feed(scanner_lines_t *l, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t b = p[i];
        if (b == '\r' || b == '\n') {
            if (!l->discarding && l->len > 0 && budget_admit(l, true))
                scanner_emit_read(l->s, l->id, l->buf, l->len);
            l->len = 0;
            l->discarding = false;
        } else if (l->discarding) {
            continue;
        } else if (l->len == l->max) {
            lines_reject_long(l);
            l->len = 0;
            l->discarding = true;
        } else {
            l->buf[l->len++] = b;
        }
    }
}

void scanner_lines_end(scanner_lines_t *l, const char *reason)
{
    if (!l->discarding && l->len > 0 && budget_admit(l, false)) {
        scanner_event_t ev = { .kind = SCANNER_EV_REJECTED, .scanner_id = l->id,
                               .raw = l->buf, .raw_len = l->len, .reason = reason };
        scanner_emit(l->s, &ev);
    }
    l->len = 0;
    l->discarding = false;
    budget_episode_end(l);
}


/*
 * An over-long line being dropped counts: its end has not come yet, and a driver that
 * times pending lines out must end it too, or the next scan is dropped as its tail.
 */
bool scanner_lines_pending(const scanner_lines_t *l)
{
    return l->len > 0 || l->discarding;
}

void scanner_lines_flush(scanner_lines_t *l)
{
    if (!l->discarding && l->len > 0 && budget_admit(l, true))
        scanner_emit_read(l->s, l->id, l->buf, l->len);
    l->len = 0;
    l->discarding = false;
}
