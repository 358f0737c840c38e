/*
 * msgf: a malloc'd, printf-formatted message, the form every module's `char **errmsg`
 * takes. Returns NULL when out of memory (callers treat a NULL message as "out of
 * memory"). Caller frees.
 */
#ifndef RMAD_MSGF_H
#define RMAD_MSGF_H

char *msgf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Set *errmsg to msgf(fmt, ...): the one way a module fills its `char **errmsg`
 * output. Nothing happens when errmsg is NULL (the caller did not ask).
 */
void msgf_set(char **errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
