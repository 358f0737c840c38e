/*
 * Logging (core/log.h): priority prefixes, and repeated lines folded into a count so
 * a flood of identical errors cannot fill the journal. stderr is pointed at a temp
 * file for each test and read back.
 */
#include <CUnit/CUnit.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "tests/helpers.h"
#include "tests/suites.h"

static int saved_fd = -1;
static FILE *capture;

static void capture_start(void)
{
    fflush(stderr);
    capture = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(capture);
    saved_fd = dup(STDERR_FILENO);
    CU_ASSERT_FATAL(saved_fd >= 0);
    CU_ASSERT_FATAL(dup2(fileno(capture), STDERR_FILENO) >= 0);
}

/* Restore stderr; the captured text, malloc'd. */
static char *capture_end(void)
{
    fflush(stderr);
    (void)dup2(saved_fd, STDERR_FILENO);
    close(saved_fd);
    long n = ftell(capture);
    char *text = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    rewind(capture);
    size_t got = fread(text, 1, (size_t)(n > 0 ? n : 0), capture);
    text[got] = '\0';
    fclose(capture);
    return text;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_repeats_folded(void)
{
    capture_start();
    for (int i = 0; i < 1000; i++)
        log_err("storing a scan failed: disk full");
    log_warning("something else");
    log_warning("something else");
    log_flush();
    log_flush(); /* nothing left: writes nothing */
    char *out = capture_end();
    CU_ASSERT_EQUAL(count_lines(out), 4);
    ASSERT_CONTAINS(out, "<3>storing a scan failed: disk full\n");
    ASSERT_CONTAINS(out, "<3>last message repeated 999 times: storing a scan failed: disk full\n");
    ASSERT_CONTAINS(out, "<4>something else\n<4>last message repeated 1 time: something else\n");
    free(out);
}

static void test_same_text_other_priority(void)
{
    capture_start();
    log_err("x");
    log_info("x");
    log_flush();
    char *out = capture_end();
    ASSERT_STR(out, "<3>x\n<6>x\n");
    free(out);
}

/*
 * The journal path, against a real datagram socket at the journal's address: a child
 * in its own mount namespace puts a tmpfs over /run (the host's journal, if any, is
 * never touched), listens on /run/systemd/journal/socket, points JOURNAL_STREAM at its
 * stderr, logs one line with fields and checks what libsystemd sent. Where namespaces
 * are not allowed (not root), it says so and checks nothing.
 */
static int journal_child(void)
{
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") < 0)
        return 77;
    if (mkdir("/run/systemd", 0755) < 0 || mkdir("/run/systemd/journal", 0755) < 0)
        return 10;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    strcpy(sa.sun_path, "/run/systemd/journal/socket");
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return 11;
    struct stat st;
    char env[64];
    if (fstat(STDERR_FILENO, &st) < 0)
        return 12;
    snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", env, 1);
    log_set_journal(-1);
    if (!log_to_journal())
        return 13;
    log_with(LOG_WARNING, LOG_FIELDS(LOG_STATION("dock1"), LOG_RECEIPT(12), LOG_RMA(NULL),
                                     LOG_SEQ(345)),
             "station %s: receipt %d completed", "dock1", 12);
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    if (n <= 0)
        return 14;
    buf[n] = '\0';
    if (!strstr(buf, "MESSAGE=station dock1: receipt 12 completed\n") ||
        !strstr(buf, "PRIORITY=4\n") || !strstr(buf, "STATION=dock1\n") ||
        !strstr(buf, "RECEIPT=12\n") || !strstr(buf, "SEQ=345\n") || strstr(buf, "RMA=") ||
        !strstr(buf, "SYSLOG_IDENTIFIER="))
        return 15;
    /* A stderr that is not the journal's stream (redirected): plain lines again. */
    setenv("JOURNAL_STREAM", "1:1", 1);
    log_set_journal(-1);
    return log_to_journal() ? 16 : 0;
}

static void test_journal_fields(void)
{
    fflush(stderr);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0)
        _exit(journal_child());
    int status = 0;
    CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_FATAL(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        fprintf(stderr, "\n  skipped: no mount namespace here (not root?): "
                        "the journal path is not checked\n");
        return;
    }
    CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
    if (WEXITSTATUS(status))
        fprintf(stderr, "\n  journal child failed at step %d\n", WEXITSTATUS(status));
}

/* Without JOURNAL_STREAM, fields change nothing on stderr. */
static void test_fields_on_stderr(void)
{
    (void)unsetenv("JOURNAL_STREAM");
    log_set_journal(-1);
    capture_start();
    log_with(LOG_NOTICE, LOG_FIELDS(LOG_STATION("dock2"), LOG_RECEIPT(0)), "plain %d", 1);
    log_flush();
    char *out = capture_end();
    CU_ASSERT_STRING_EQUAL(out, "<5>plain 1\n");
    free(out);
    CU_ASSERT_EQUAL(log_to_journal(), 0);
}

int suite_log(void)
{
    CU_pSuite s = CU_add_suite("log", NULL, NULL);
    if (!s || !CU_add_test(s, "identical lines folded into a count", test_repeats_folded) ||
        !CU_add_test(s, "another priority is another line", test_same_text_other_priority) ||
        !CU_add_test(s, "journal: native protocol with STATION/RECEIPT/SEQ fields",
                     test_journal_fields) ||
        !CU_add_test(s, "fields are not shown on stderr", test_fields_on_stderr))
        return -1;
    return 0;
}
