/*
 * msgf: a malloc'd, printf-formatted message, the form every module's `char **errmsg`
 * takes. Returns NULL when out of memory (callers treat a NULL message as "out of
 * memory"). Caller frees.
 */
#ifndef RMAD_MSGF_H
#define RMAD_MSGF_H

char *msgf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
