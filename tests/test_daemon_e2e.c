/*
 * The daemon end to end, driven by independent clients: each tests/integration/
 * *_e2e.py runs build/rmad on a temp config and talks to it with python3-zmq
 * (Debian's, hence /usr/bin/python3), scanner inputs (TCP, and USB and serial devices
 * emulated by umockdev), the SQLite file and, for labels, a private cupsd; the web pages
 * in Debian's headless Chromium (python3-selenium).
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/helpers.h"
#include "tests/suites.h"

/* Run one script; it passed when it exits 0 and says so. */
static void run_script(const char *script, const char *passed)
{
    char build[4096];
    snprintf(build, sizeof(build), "%s", th_build_dir());
    char *argv[] = { "/usr/bin/python3", (char *)script, build, NULL };
    th_proc_t p;
    CU_ASSERT_FATAL(th_run(argv, NULL, &p) == 0);
    if (p.status != 0)
        fprintf(stderr, "\n%s%s\n", p.out, p.err);
    CU_ASSERT_EQUAL(p.status, 0);
    ASSERT_CONTAINS(p.out, passed);
    th_proc_free(&p);
}

static void test_daemon_end_to_end(void)
{
    run_script("tests/integration/daemon_e2e.py", "daemon e2e: all checks passed");
}

static void test_labels_end_to_end(void)
{
    run_script("tests/integration/labels_e2e.py", "labels e2e: all checks passed");
}

static void test_printing_end_to_end(void)
{
    run_script("tests/integration/printing_e2e.py", "printing e2e: all checks passed");
}

static void test_station_end_to_end(void)
{
    run_script("tests/integration/station_e2e.py", "station e2e: all checks passed");
}

static void test_storage_end_to_end(void)
{
    run_script("tests/integration/storage_e2e.py", "storage e2e: all checks passed");
}

/* The short crash harness (make reliability runs 50 kills). */
static void test_crash_harness(void)
{
    CU_ASSERT_EQUAL_FATAL(setenv("RELIABILITY_KILLS", "5", 1), 0);
    run_script("tests/reliability/crash_harness.py", "crash harness: 0 lost, 0 duplicated, 0 crashes");
    (void)unsetenv("RELIABILITY_KILLS");
}

/*
 * The short fault runs (make reliability runs them all, longer): a disk turning
 * read-only under rmad, a subscriber that never reads, a flooding scanner, 16 idle
 * connections and a connect/close storm, a big import while scanning, control peers and
 * unknown arguments. The locked-database, full-disk and cupsd-crash runs have their
 * short versions in storage_e2e.py and printing_e2e.py.
 */
static void test_fault_runs(void)
{
    char build[4096];
    snprintf(build, sizeof(build), "%s", th_build_dir());
    char *argv[] = { "/usr/bin/python3", "tests/reliability/faults.py", build, "--short", NULL };
    th_proc_t p;
    CU_ASSERT_FATAL(th_run(argv, NULL, &p) == 0);
    if (p.status != 0)
        fprintf(stderr, "\n%s%s\n", p.out, p.err);
    CU_ASSERT_EQUAL(p.status, 0);
    ASSERT_CONTAINS(p.out, "fault runs: all passed, 0 lost");
    th_proc_free(&p);
}

static void test_scanners_end_to_end(void)
{
    run_script("tests/integration/scanners_e2e.py", "scanners e2e: all checks passed");
}

/* Issue 16: recorded wedges in fr, gb, ch(de), es and Alt mode each complete a receipt. */
static void test_wedge_end_to_end(void)
{
    run_script("tests/integration/wedge_e2e.py", "wedge e2e: all checks passed");
}

static void test_web_end_to_end(void)
{
    run_script("tests/integration/web_e2e.py", "web e2e: all checks passed");
}

static void test_ops_end_to_end(void)
{
    run_script("tests/integration/ops_e2e.py", "ops e2e: all checks passed");
}

static void test_lines_end_to_end(void)
{
    run_script("tests/integration/lines_e2e.py", "lines e2e: all checks passed");
}

static void test_vocabulary_end_to_end(void)
{
    run_script("tests/integration/vocabulary_e2e.py", "vocabulary e2e: all checks passed");
}

int suite_daemon_e2e(void)
{
    CU_pSuite s = CU_add_suite("daemon_e2e", NULL, NULL);
    if (!s ||
        !CU_add_test(s, "two stations, garbage, replay, SIGKILL, SIGTERM",
                     test_daemon_end_to_end) ||
        !CU_add_test(s, "labels through a private cupsd: ZPL, PDF, disabled printer, restarts",
                     test_labels_end_to_end) ||
        !CU_add_test(s, "printing exactly once: stops mid-submit, cupsd crash, media empty",
                     test_printing_end_to_end) ||
        !CU_add_test(s, "storage faults: locked database, full disk, read-only",
                     test_storage_end_to_end) ||
        !CU_add_test(s, "crash harness: 5 SIGKILLs while scanning and printing",
                     test_crash_harness) ||
        !CU_add_test(s, "fault runs, short: read-only disk, stuck subscriber, flood, idle, "
                     "import, control", test_fault_runs) ||
        !CU_add_test(s, "a USB and a serial scanner (umockdev) complete receipts",
                     test_scanners_end_to_end) ||
        !CU_add_test(s, "keyboard wedges in fr, gb, ch(de), es and Alt mode complete receipts",
                     test_wedge_end_to_end) ||
        !CU_add_test(s, "station replies over TCP: mis-scans, own labels, the checklist",
                     test_station_end_to_end) ||
        !CU_add_test(s, "an RMA of 3 cameras and a recorder, unit by unit; rmactl rma show",
                     test_lines_end_to_end) ||
        !CU_add_test(s, "a policy's own finding at a station (sixth vendor), its hash, the site zone",
                     test_vocabulary_end_to_end) ||
        !CU_add_test(s, "web pages in headless Chromium: station screen, receipt, SSE cut",
                     test_web_end_to_end) ||
        !CU_add_test(s, "operations: CURVE keys, allow=, off-loopback refusals, backup while "
                        "scanning, retention, doctor", test_ops_end_to_end))
        return -1;
    return 0;
}
