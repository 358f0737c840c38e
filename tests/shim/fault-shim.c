/*
 * Test preload (tests/reliability/faults.py): a disk that goes read-only or full under
 * a running rmad.
 *
 * Linux will not remount a filesystem read-only while a process holds a file on it
 * open for writing (the database is), and not every machine lets a test mount a small
 * tmpfs. So this library stands in for the kernel's answer at the one place rmad meets
 * it: while the file named by RMAD_FAULT_FILE exists and holds an errno name (EROFS,
 * ENOSPC, EIO), every write, pwrite and fsync on a file under the directory
 * RMAD_FAULT_DIR fails with that errno, as the kernel's would, and statvfs there says
 * what the kernel would say then (EROFS: mounted read-only; ENOSPC: no block free).
 * Remove the file and
 * writes go through again. Everything else is untouched. Built by the Makefile as
 * $(B)/fault-shim.so; never linked into rmad, and never sanitized (it is loaded ahead
 * of the ASan runtime).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#define NEXT(name) \
    static __typeof__(name) *next; \
    if (!next) \
        next = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

/* The errno named by the fault file now, or 0. */
static int fault_now(void)
{
    const char *file = getenv("RMAD_FAULT_FILE");
    if (!file || !getenv("RMAD_FAULT_DIR"))
        return 0;
    int saved = errno;
    char buf[16] = "";
    int cfd = open(file, O_RDONLY | O_CLOEXEC);
    if (cfd < 0) {
        errno = saved;
        return 0;
    }
    ssize_t n = read(cfd, buf, sizeof(buf) - 1);
    (void)close(cfd);
    buf[n > 0 ? n : 0] = '\0';
    errno = saved;
    return strncmp(buf, "EROFS", 5) == 0    ? EROFS
           : strncmp(buf, "ENOSPC", 6) == 0 ? ENOSPC
           : strncmp(buf, "EIO", 3) == 0    ? EIO
                                            : 0;
}

/* Whether path is under RMAD_FAULT_DIR. */
static int under_dir(const char *path)
{
    const char *dir = getenv("RMAD_FAULT_DIR");
    size_t dl = dir ? strlen(dir) : 0;
    return dir && strncmp(path, dir, dl) == 0 && (path[dl] == '/' || path[dl] == '\0');
}

/* The errno to fail fd's writes with now, or 0. */
static int fault_for(int fd)
{
    int err = fault_now();
    if (!err)
        return 0;
    int saved = errno;
    char link[64], path[4096];
    (void)snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, path, sizeof(path) - 1);
    errno = saved;
    if (len <= 0)
        return 0;
    path[len] = '\0';
    return under_dir(path) ? err : 0;
}

int statvfs(const char *path, struct statvfs *buf)
{
    NEXT(statvfs);
    int rc = next(path, buf);
    int err = rc == 0 && under_dir(path) ? fault_now() : 0;
    if (err == EROFS)
        buf->f_flag |= ST_RDONLY;
    else if (err == ENOSPC)
        buf->f_bavail = buf->f_bfree = 0;
    return rc;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    NEXT(write);
    int err = fault_for(fd);
    if (err) {
        errno = err;
        return -1;
    }
    return next(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    NEXT(pwrite);
    int err = fault_for(fd);
    if (err) {
        errno = err;
        return -1;
    }
    return next(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    NEXT(pwrite64);
    int err = fault_for(fd);
    if (err) {
        errno = err;
        return -1;
    }
    return next(fd, buf, n, off);
}

int fsync(int fd)
{
    NEXT(fsync);
    int err = fault_for(fd);
    if (err) {
        errno = err;
        return -1;
    }
    return next(fd);
}

int fdatasync(int fd)
{
    NEXT(fdatasync);
    int err = fault_for(fd);
    if (err) {
        errno = err;
        return -1;
    }
    return next(fd);
}
