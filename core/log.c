#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

static int max_prio = LOG_INFO;
static int with_prefix = 1;
static int journal = -1;     /* -1 not decided yet, 0 stderr, 1 the journal */

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

/*
 * systemd's test (sd_journal_stream_fd, systemd.exec(5)): JOURNAL_STREAM is
 * "DEVICE:INODE" of the stream it connected stderr to. A stderr redirected since
 * (rmad 2>file under a unit) no longer matches and keeps plain lines.
 */
static int stderr_is_journal(void)
{
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    char end;
    struct stat st;
    if (!e || sscanf(e, "%llu:%llu%c", &dev, &ino, &end) != 2 ||
        fstat(STDERR_FILENO, &st) < 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int log_to_journal(void)
{
    if (journal < 0)
        journal = stderr_is_journal();
    return journal;
}

void log_set_journal(int mode)
{
    journal = mode < 0 ? -1 : mode != 0;
}

/*
 * One line in the journal, with its fields. Returns 0, or -errno when the journal
 * did not take it (the caller writes it to stderr instead, so it is not lost).
 */
static int put_journal(int prio, const char *line, const log_field_t *fields)
{
    char msg[1100], pri[16], ident[64], fbuf[LOG_MAX_FIELDS][160];
    struct iovec iov[3 + LOG_MAX_FIELDS];
    int n = 0;
    (void)snprintf(msg, sizeof(msg), "MESSAGE=%s", line);
    (void)snprintf(pri, sizeof(pri), "PRIORITY=%d", prio);
    (void)snprintf(ident, sizeof(ident), "SYSLOG_IDENTIFIER=%s", program_invocation_short_name);
    iov[n++] = (struct iovec){ msg, strlen(msg) };
    iov[n++] = (struct iovec){ pri, strlen(pri) };
    iov[n++] = (struct iovec){ ident, strlen(ident) };
    for (size_t i = 0, k = 0; fields && fields[i].name && k < LOG_MAX_FIELDS; i++) {
        const log_field_t *f = &fields[i];
        int len;
        if (f->text)
            len = snprintf(fbuf[k], sizeof(fbuf[k]), "%s=%s", f->name, f->text);
        else if (f->num != 0)
            len = snprintf(fbuf[k], sizeof(fbuf[k]), "%s=%lld", f->name, f->num);
        else
            continue;
        /* A value with a newline would need the binary framing: cut it there. */
        char *nl = len > 0 ? strchr(fbuf[k], '\n') : NULL;
        if (nl)
            *nl = '\0';
        iov[n++] = (struct iovec){ fbuf[k], strlen(fbuf[k]) };
        k++;
    }
    return sd_journal_sendv(iov, n);
}

static void put(int prio, const char *line, const log_field_t *fields)
{
    if (log_to_journal() && put_journal(prio, line, fields) == 0)
        return;
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
    put(last.prio, line, NULL);
    last.repeats = 0;
}

static void log_line(int prio, const log_field_t *fields, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

void log_msg(int prio, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line(prio, NULL, fmt, ap);
    va_end(ap);
}

void log_with(int prio, const log_field_t *fields, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line(prio, fields, fmt, ap);
    va_end(ap);
}

static void log_line(int prio, const log_field_t *fields, const char *fmt, va_list ap)
{
    if (prio > max_prio)
        return;
    int saved = errno; /* callers may log with %m */
    char line[1024];
    errno = saved;
    /* One write per line, so lines from a crash-time log are never interleaved. */
    int n = vsnprintf(line, sizeof(line), fmt, ap);
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
    put(prio, line, fields);
    memcpy(last.line, line, sizeof(line));
    last.prio = prio;
    last.written_ms = now;
    errno = saved;
}
