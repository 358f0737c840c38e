/*
 * Helpers shared by the test suites: temp directories, running a program and
 * capturing what it printed, reading files. All return NULL / negative on failure
 * and never abort, so a broken helper shows up as a failed assertion.
 */
#ifndef RMAD_TESTS_HELPERS_H
#define RMAD_TESTS_HELPERS_H

#include <stdatomic.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/loop.h"

/* CUnit string assertions that print both sides when they fail. */
#define ASSERT_STR(actual, expected)                                                  \
    do {                                                                              \
        const char *a_ = (actual), *e_ = (expected);                                  \
        int ok_ = a_ && strcmp(a_, e_) == 0;                                          \
        if (!ok_)                                                                     \
            fprintf(stderr, "\n  %s:%d: got %s%s%s, want \"%s\"\n", __FILE__,         \
                    __LINE__, a_ ? "\"" : "", a_ ? a_ : "NULL", a_ ? "\"" : "", e_);  \
        CU_ASSERT(ok_);                                                               \
    } while (0)

#define ASSERT_CONTAINS(hay, needle)                                                  \
    do {                                                                              \
        const char *h_ = (hay), *n_ = (needle);                                       \
        int ok_ = h_ && strstr(h_, n_) != NULL;                                       \
        if (!ok_)                                                                     \
            fprintf(stderr, "\n  %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__,  \
                    __LINE__, h_ ? h_ : "NULL", n_);                                  \
        CU_ASSERT(ok_);                                                               \
    } while (0)

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

/*
 * Like th_run, but a program that cannot be spawned comes back as status -1 with
 * "spawn failed" on stderr, so callers assert on one result either way.
 */
th_proc_t th_run_proc(char *const argv[], const char *input);

/*
 * A suite-wide temp directory holding a database path: th_tmpdb_setup() and
 * th_tmpdb_teardown() are CUnit suite init/clean functions; th_tmpdb_path() is
 * DIR/rmad.db and th_tmpdb_dir() the directory.
 */
int th_tmpdb_setup(void);
int th_tmpdb_teardown(void);
const char *th_tmpdb_dir(void);
const char *th_tmpdb_path(void);

/*
 * Serve a loop on a second thread while the test thread runs a client process
 * (python3-zmq, rmactl) that talks to it. th_serve_stop() ends the thread; the loop
 * must have returned 0.
 */
typedef struct {
    loop_t *loop;
    pthread_t th;
    atomic_int stop;
    int rc;
} th_serve_t;

void th_serve_start(th_serve_t *s, loop_t *loop);
void th_serve_stop(th_serve_t *s);

/* Read a whole file; returns malloc'd NUL-terminated text or NULL. */
char *th_read_file(const char *path, size_t *len);

/*
 * Event-loop tests. th_loop_run_for runs loop for ms milliseconds (lets a driver do
 * what is due). th_loop_run_stopped runs it until a callback calls loop_stop(), but at
 * most deadline_ms: 1 when a callback stopped it, 0 when the deadline did (a hang
 * becomes a failed assertion, not a stuck test).
 */
void th_loop_run_for(loop_t *loop, int64_t ms);
int th_loop_run_stopped(loop_t *loop, int64_t deadline_ms);

/* NUL-terminated copies for recording events (the driver's pointers die with the
 * callback); a failed allocation is a fatal assertion. th_strdup(NULL) is NULL. */
char *th_memdup(const void *p, size_t n);
char *th_strdup(const char *s);

/* Write text to a file; returns 0 or -errno. */
int th_write_file(const char *path, const char *text);

#endif
