/*
 * The one table of CUnit suites. Each tests/test_<name>.c defines
 * `int suite_<name>(void)`, which adds its suite and returns 0 (or -1 when CUnit
 * cannot allocate). Add one line here per module.
 */
#ifndef RMAD_TESTS_SUITES_H
#define RMAD_TESTS_SUITES_H

#define RMAD_SUITES(X) \
    X(caldate)         \
    X(log)             \
    X(scan)            \
    X(keymap)          \
    X(hidpos)          \
    X(scancmd)         \
    X(db)              \
    X(loop)            \
    X(config)          \
    X(tcp)             \
    X(usb)             \
    X(serial)          \
    X(policy_cases)    \
    X(rmactl_cli)      \
    X(event)           \
    X(station)         \
    X(commit)          \
    X(intake)          \
    X(bus)             \
    X(control)         \
    X(http)            \
    X(labels)          \
    X(printer)         \
    X(daemon_e2e)      \
    X(forward)         \
    X(install)

#define RMAD_DECLARE_SUITE(name) int suite_##name(void);
RMAD_SUITES(RMAD_DECLARE_SUITE)

#endif
