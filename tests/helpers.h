/*
 * Helpers shared by the test suites: temp directories, running a program and
 * capturing what it printed, reading files. All return NULL / negative on failure
 * and never abort, so a broken helper shows up as a failed assertion.
 */
#ifndef RMAD_TESTS_HELPERS_H
#define RMAD_TESTS_HELPERS_H

#include <stddef.h>

/* Directory holding the built binaries (RMAD_BUILD, default "build"). */
const char *th_build_dir(void);

/* Path of a built binary, e.g. th_bin("rmactl"). Static buffer, valid until next call. */
const char *th_bin(const char *name);

/* Create a fresh temp directory; returns a malloc'd path or NULL. */
char *th_mkdtemp(void);

/* Remove a directory tree (best effort). */
void th_rm_rf(const char *path);

/* Result of th_run: exit status (or 128+signal) and everything printed. */
typedef struct {
    int status;
    char *out;   /* stdout, NUL-terminated, malloc'd */
    char *err;   /* stderr, NUL-terminated, malloc'd */
} th_proc_t;

/*
 * Run argv[0] (a path) with argv, feeding `input` (may be NULL) on stdin, and capture
 * both output streams. Returns 0 and fills *p, or -errno. Free with th_proc_free.
 */
int th_run(char *const argv[], const char *input, th_proc_t *p);
void th_proc_free(th_proc_t *p);

/* Read a whole file; returns malloc'd NUL-terminated text or NULL. */
char *th_read_file(const char *path, size_t *len);

/* Write text to a file; returns 0 or -errno. */
int th_write_file(const char *path, const char *text);

#endif
