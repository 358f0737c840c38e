/*
 * Test runner: every suite of tests/suites.h, CUnit's basic summary, exit status 0
 * only when every assertion passed. `test_runner NAME...` runs only those suites.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include "tests/suites.h"

struct suite_entry {
    const char *name;
    int (*add)(void);
};

#define RMAD_SUITE_ENTRY(n) { #n, suite_##n },
static const struct suite_entry suites[] = { RMAD_SUITES(RMAD_SUITE_ENTRY) };

static int wanted(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "test_runner: %s\n", CU_get_error_msg());
        return 2;
    }
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
        if (!wanted(suites[i].name, argc, argv))
            continue;
        if (suites[i].add() < 0) {
            fprintf(stderr, "test_runner: suite %s: %s\n", suites[i].name, CU_get_error_msg());
            CU_cleanup_registry();
            return 2;
        }
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (ran == 0) {
        fprintf(stderr, "test_runner: no test ran\n");
        return 1;
    }
    return failed ? 1 : 0;
}
