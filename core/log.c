#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int max_prio = LOG_INFO;
static int with_prefix = 1;

/*
 * The last line written, for folding repeats: a flooding scanner or a sick disk must
 * not write the same line a million times, but the first of them is always shown at
 * once and the count is never lost.
 */
static struct {
    char line[1024];
    int prio;
    unsigned long repeats;   /* identical lines since it was written */
    int64_t written_ms;      /* monotonic */
} last;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put(int prio, const char *line)
{
    if (with_prefix)
        fprintf(stderr, "<%d>%s\n", prio, line);
    else
        fprintf(stderr, "%s\n", line);
}

void log_set_level(int prio)
{
    max_prio = prio;
}

void log_set_prefix(int on)
{
    with_prefix = on;
}

void log_flush(void)
{
    if (last.repeats == 0)
        return;
    char line[1100];
    (void)snprintf(line, sizeof(line), "last message repeated %lu time%s: %s", last.repeats,
                   last.repeats == 1 ? "" : "s", last.line);
    put(last.prio, line);
    last.repeats = 0;
}

void log_msg(int prio, const char *fmt, ...)
{
    if (prio > max_prio)
        return;
    int saved = errno; /* callers may log with %m */
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    errno = saved;
    /* One write per line, so lines from a crash-time log are never interleaved. */
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    int64_t now = mono_ms();
    if (prio == last.prio && strcmp(line, last.line) == 0 &&
        now - last.written_ms < LOG_REPEAT_WINDOW_MS) {
        last.repeats++;
        errno = saved;
        return;
    }
    log_flush();
    put(prio, line);
    memcpy(last.line, line, sizeof(line));
    last.prio = prio;
    last.written_ms = now;
    errno = saved;
}
