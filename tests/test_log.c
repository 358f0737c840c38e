/*
 * Logging (core/log.h): priority prefixes, and repeated lines folded into a count so
 * a flood of identical errors cannot fill the journal. stderr is pointed at a temp
 * file for each test and read back.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int suite_log(void)
{
    CU_pSuite s = CU_add_suite("log", NULL, NULL);
    if (!s || !CU_add_test(s, "identical lines folded into a count", test_repeats_folded) ||
        !CU_add_test(s, "another priority is another line", test_same_text_other_priority))
        return -1;
    return 0;
}
