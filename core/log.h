/*
 * Logging to stderr with syslog priority prefixes ("<3>..."), which journald turns
 * into priorities. Library modules do not log: they return errors, and the caller
 * that decides what to do logs once.
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

#define LOG_REPEAT_WINDOW_MS 60000

/* Write the pending repeat count, if any (at exit, so no count is lost). */
void log_flush(void);

#define log_err(...)     log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
