#include "tests/helpers.h"

#include <CUnit/CUnit.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

const char *th_build_dir(void)
{
    const char *b = getenv("RMAD_BUILD");
    return b && *b ? b : "build";
}

const char *th_bin(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof(path), "%s/%s", th_build_dir(), name);
    return path;
}

char *th_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    char *t = NULL;
    if (asprintf(&t, "%s/rmad-test-XXXXXX", base && *base ? base : "/tmp") < 0)
        return NULL;
    if (!mkdtemp(t)) {
        free(t);
        return NULL;
    }
    return t;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

void th_rm_rf(const char *path)
{
    if (path)
        (void)nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Append what is readable on fd to a growing buffer; returns bytes read, 0 at EOF. */
static ssize_t drain(int fd, char **buf, size_t *len, size_t *cap)
{
    if (*cap - *len < 4096) {
        size_t ncap = *cap ? *cap * 2 : 8192;
        char *n = realloc(*buf, ncap);
        if (!n)
            return -ENOMEM;
        *buf = n;
        *cap = ncap;
        n[*len] = '\0';
    }
    ssize_t r = read(fd, *buf + *len, *cap - *len - 1);
    if (r > 0) {
        *len += (size_t)r;
        (*buf)[*len] = '\0';
    }
    return r < 0 ? -errno : r;
}

int th_run(char *const argv[], const char *input, th_proc_t *p)
{
    int in[2], out[2], err[2];
    memset(p, 0, sizeof(*p));
    if (pipe2(in, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
        return -errno;

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (rc != 0) {
        close(in[1]);
        close(out[0]);
        close(err[0]);
        return -rc;
    }

    /* Write stdin and read both outputs together, so a chatty child never blocks. */
    size_t ilen = input ? strlen(input) : 0, ioff = 0;
    size_t olen = 0, ocap = 0, elen = 0, ecap = 0;
    int open_fds = 2;
    struct sigaction ign = { .sa_handler = SIG_IGN }, old;
    sigaction(SIGPIPE, &ign, &old);
    if (ilen == 0) {
        close(in[1]);
        in[1] = -1;
    }
    while (open_fds > 0 || in[1] >= 0) {
        struct pollfd pf[3] = {
            { out[0], POLLIN, 0 }, { err[0], POLLIN, 0 }, { in[1], POLLOUT, 0 }
        };
        if (poll(pf, 3, -1) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; i++) {
            if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = i == 0 ? drain(out[0], &p->out, &olen, &ocap)
                               : drain(err[0], &p->err, &elen, &ecap);
            if (r <= 0 && r != -EINTR) {
                close(pf[i].fd);
                if (i == 0)
                    out[0] = -1;
                else
                    err[0] = -1;
                open_fds--;
            }
        }
        if (in[1] >= 0 && (pf[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(in[1], input + ioff, ilen - ioff);
            if (w > 0)
                ioff += (size_t)w;
            if (w < 0 || ioff == ilen) {
                close(in[1]);
                in[1] = -1;
            }
        }
    }
    sigaction(SIGPIPE, &old, NULL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (!p->out)
        p->out = strdup("");
    if (!p->err)
        p->err = strdup("");
    return 0;
}

void th_proc_free(th_proc_t *p)
{
    free(p->out);
    free(p->err);
    p->out = p->err = NULL;
}

char *th_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 4096) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int th_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -errno;
    size_t n = strlen(text);
    int rc = fwrite(text, 1, n, f) == n ? 0 : -EIO;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

th_proc_t th_run_proc(char *const argv[], const char *input)
{
    th_proc_t p;
    if (th_run(argv, input, &p) < 0) {
        p.status = -1;
        p.out = strdup("");
        p.err = strdup("spawn failed");
    }
    return p;
}

static char *tmpdb_dir, *tmpdb_path;

int th_tmpdb_setup(void)
{
    tmpdb_dir = th_mkdtemp();
    if (!tmpdb_dir || asprintf(&tmpdb_path, "%s/rmad.db", tmpdb_dir) < 0)
        return -1;
    return 0;
}

int th_tmpdb_teardown(void)
{
    th_rm_rf(tmpdb_dir);
    free(tmpdb_dir);
    free(tmpdb_path);
    tmpdb_dir = tmpdb_path = NULL;
    return 0;
}

const char *th_tmpdb_dir(void)
{
    return tmpdb_dir;
}

const char *th_tmpdb_path(void)
{
    return tmpdb_path;
}

/* Polls the stop flag from inside the loop, so loop_stop() runs on the loop's thread. */
static int64_t serve_check(loop_t *loop, uint64_t id, void *data)
{
    th_serve_t *s = data;
    (void)id;
    if (atomic_load(&s->stop)) {
        loop_stop(loop);
        return -1;
    }
    return 5;
}

static void *serve_main(void *data)
{
    th_serve_t *s = data;
    s->rc = loop_run(s->loop);
    return NULL;
}

void th_serve_start(th_serve_t *s, loop_t *loop)
{
    s->loop = loop;
    s->rc = -1;
    atomic_store(&s->stop, 0);
    CU_ASSERT_FATAL(loop_add_timer(loop, 0, serve_check, s) > 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&s->th, NULL, serve_main, s), 0);
}

void th_serve_stop(th_serve_t *s)
{
    atomic_store(&s->stop, 1);
    CU_ASSERT_EQUAL(pthread_join(s->th, NULL), 0);
    CU_ASSERT_EQUAL(s->rc, 0);
}

/* ---- event-loop tests ------------------------------------------------------------ */

static int64_t stop_timer(loop_t *loop, uint64_t id, void *data)
{
    (void)id;
    if (data)
        *(int *)data = 1;
    loop_stop(loop);
    return -1;
}

void th_loop_run_for(loop_t *loop, int64_t ms)
{
    CU_ASSERT_FATAL(loop_add_timer(loop, ms, stop_timer, NULL) > 0);
    CU_ASSERT_EQUAL(loop_run(loop), 0);
}

int th_loop_run_stopped(loop_t *loop, int64_t deadline_ms)
{
    int expired = 0;
    uint64_t t = loop_add_timer(loop, deadline_ms, stop_timer, &expired);
    CU_ASSERT_FATAL(t > 0);
    CU_ASSERT_EQUAL(loop_run(loop), 0);
    if (!expired)
        (void)loop_del_timer(loop, t);
    return !expired;
}

char *th_memdup(const void *p, size_t n)
{
    char *d = malloc(n + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

char *th_strdup(const char *s)
{
    return s ? th_memdup(s, strlen(s)) : NULL;
}
