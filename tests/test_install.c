/*
 * Installing and running rmad as a system service, driven by independent checks:
 * tests/integration/install_e2e.py runs `make install` into a DESTDIR (its own build
 * directory, a packager's environment) and checks the tree, the unit with
 * systemd-analyze verify and security (exposure <= 3.0), sysusers, tmpfiles, udev
 * rules and man pages; tests/integration/service_e2e.py plays the service manager's
 * end of sd_notify (READY=1 once, STATUS=, WATCHDOG=1 at the interval) and checks the
 * local policy overrides.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "tests/helpers.h"
#include "tests/suites.h"

/* Run one script with the build under test; it passed when it exits 0 and says so. */
static void run_script(const char *script, const char *passed)
{
    char *argv[] = { "/usr/bin/python3", (char *)script, (char *)th_build_dir(), NULL };
    th_proc_t p;
    CU_ASSERT_FATAL(th_run(argv, NULL, &p) == 0);
    if (p.status != 0)
        fprintf(stderr, "\n%s%s\n", p.out, p.err);
    CU_ASSERT_EQUAL(p.status, 0);
    ASSERT_CONTAINS(p.out, passed);
    /* A check skipped for want of systemd says so in the test's output. */
    if (strstr(p.out, "skipped"))
        fprintf(stderr, "\n%s", p.out);
    th_proc_free(&p);
}

static void test_make_install(void)
{
    run_script("tests/integration/install_e2e.py", "install e2e: all checks passed");
}

static void test_service_manager(void)
{
    run_script("tests/integration/service_e2e.py", "service e2e: all checks passed");
}

int suite_install(void)
{
    CU_pSuite s = CU_add_suite("install", NULL, NULL);
    if (!s ||
        !CU_add_test(s, "make install into a DESTDIR: tree, unit (verify, security <= 3.0), "
                        "sysusers, tmpfiles, udev, man pages, upgrade, uninstall",
                     test_make_install) ||
        !CU_add_test(s, "sd_notify: READY=1 once, STATUS=, WATCHDOG=1 at the interval; "
                        "status fields; local policy overrides",
                     test_service_manager))
        return -1;
    return 0;
}
