/*
 * Test preload (tests/test_serial.c): lets libserialport open umockdev's emulated
 * serial ports.
 *
 * umockdev backs an emulated tty such as /dev/ttyUSB0 with a pty, and a pty has no
 * modem control lines: TIOCMGET and friends fail with ENOTTY, so sp_open() refuses the
 * port. This library sits before libumockdev-preload.so.0 in LD_PRELOAD and answers
 * those four requests on a terminal that cannot do them as a port whose lines are all
 * low (TIOCMGET gives 0; setting or clearing lines is accepted and changes nothing).
 * Every other request, and modem control on a real serial port, goes through
 * untouched. Built by the Makefile as $(B)/tiocm-shim.so; never linked into rmad.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <termios.h>

typedef int (*ioctl_fn)(int fd, unsigned long request, ...);

/* glibc declares ioctl(int, unsigned long, ...); keep the same prototype. */
int ioctl(int fd, unsigned long request, ...);

int ioctl(int fd, unsigned long request, ...)
{
    static ioctl_fn next;
    if (!next) {
        next = (ioctl_fn)dlsym(RTLD_NEXT, "ioctl");
        if (!next) {
            errno = ENOSYS;
            return -1;
        }
    }
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);

    int rc = next(fd, request, arg);
    if (rc == 0 || (errno != ENOTTY && errno != EINVAL))
        return rc;
    if (request != TIOCMGET && request != TIOCMSET && request != TIOCMBIS &&
        request != TIOCMBIC)
        return rc;
    int saved = errno;
    struct termios t;
    /* Only a terminal: anything else keeps its real error. */
    if (tcgetattr(fd, &t) != 0) {
        errno = saved;
        return rc;
    }
    if (request == TIOCMGET) {
        if (!arg) {
            errno = EFAULT;
            return -1;
        }
        *(int *)arg = 0;
    }
    errno = saved;
    return 0;
}
