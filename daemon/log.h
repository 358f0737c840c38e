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

void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)     log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
