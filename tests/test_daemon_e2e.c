/*
 * The daemon end to end, driven by an independent client: tests/integration/
 * daemon_e2e.py runs build/rmad on a temp config and talks to it with python3-zmq
 * (Debian's, hence /usr/bin/python3), TCP scanner sockets and the SQLite file.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "tests/helpers.h"
#include "tests/suites.h"

static void test_daemon_end_to_end(void)
{
    char build[4096];
    snprintf(build, sizeof(build), "%s", th_build_dir());
    char *argv[] = { "/usr/bin/python3", "tests/integration/daemon_e2e.py", build, NULL };
    th_proc_t p;
    CU_ASSERT_FATAL(th_run(argv, NULL, &p) == 0);
    if (p.status != 0)
        fprintf(stderr, "\n%s%s\n", p.out, p.err);
    CU_ASSERT_EQUAL(p.status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(p.out, "daemon e2e: all checks passed"));
    th_proc_free(&p);
}

int suite_daemon_e2e(void)
{
    CU_pSuite s = CU_add_suite("daemon_e2e", NULL, NULL);
    if (!s || !CU_add_test(s, "two stations, garbage, replay, SIGKILL, SIGTERM",
                           test_daemon_end_to_end))
        return -1;
    return 0;
}
