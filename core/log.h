/*
 * The one logger: stderr with syslog priority prefixes ("<3>..."), which journald
 * turns into priorities; or, when stderr is the journal's own stream (systemd sets
 * JOURNAL_STREAM to its device:inode), the journal's native protocol
 * (sd_journal_sendv), so that each line also carries structured fields: STATION=,
 * RECEIPT=, RMA=, SEQ= (journalctl STATION=dock1). Library modules do not log: they
 * return errors, and the caller that decides what to do logs once.
 */
#ifndef RMAD_LOG_H
#define RMAD_LOG_H

#include <syslog.h>

/* Messages above this priority (numerically greater) are dropped. Default LOG_INFO. */
void log_set_level(int prio);

/* Prefix every line with "<prio>" (default on; off makes terminal output plainer). */
void log_set_prefix(int on);

/*
 * Write one line. A line identical to the one before (same priority, same text) within
 * LOG_REPEAT_WINDOW_MS of it being written is counted, not written; the count comes
 * out as "last message repeated N times: LINE" before the next different line, when
 * the window has passed and the line comes again, or at log_flush().
 */
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * A structured field of a line, for the journal: NAME=text, or NAME=num when text is
 * NULL. A field with neither (NULL text, num 0: no receipt, no RMA) is left out.
 * NAME is upper case letters, digits and '_' (the journal's rule).
 */
typedef struct {
    const char *name;
    const char *text;
    long long num;
} log_field_t;

/* A field list for log_with: LOG_FIELDS(LOG_STATION(name), LOG_RECEIPT(id)). */
#define LOG_FIELDS(...) ((const log_field_t[]){ __VA_ARGS__, { NULL, NULL, 0 } })
#define LOG_STATION(s)  { "STATION", (s), 0 }
#define LOG_RECEIPT(id) { "RECEIPT", NULL, (long long)(id) }
#define LOG_RMA(r)      { "RMA", (r), 0 }
#define LOG_SEQ(n)      { "SEQ", NULL, (long long)(n) }

/* log_msg with fields (terminated by a NULL name); on stderr the fields are not shown. */
void log_with(int prio, const log_field_t *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Whether lines go to the journal: decided at the first line from JOURNAL_STREAM and
 * stderr, or forced here (1 journal, 0 stderr, -1 decide again at the next line).
 */
void log_set_journal(int mode);

/* 1 when lines go to the journal, 0 when to stderr (deciding now if not yet). */
int log_to_journal(void);

/* The journal's field limit for one line: more fields are dropped. */
#define LOG_MAX_FIELDS 8

#define LOG_REPEAT_WINDOW_MS 60000

/* Write the pending repeat count, if any (at exit, so no count is lost). */
void log_flush(void);

#define log_err(...)     log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
