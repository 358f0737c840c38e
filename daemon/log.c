#include "daemon/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static int max_prio = LOG_INFO;
static int with_prefix = 1;

void log_set_level(int prio)
{
    max_prio = prio;
}

void log_set_prefix(int on)
{
    with_prefix = on;
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
    if (with_prefix)
        fprintf(stderr, "<%d>%s\n", prio, line);
    else
        fprintf(stderr, "%s\n", line);
    errno = saved;
}
