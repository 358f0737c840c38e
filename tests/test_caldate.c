/* Dates and policy durations: the arithmetic every warranty and RMA window uses. */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <string.h>

#include "core/caldate.h"
#include "tests/suites.h"

static caldate_t D(const char *s)
{
    caldate_t d = CALDATE_NONE;
    CU_ASSERT_EQUAL_FATAL(caldate_parse(s, &d), 0);
    return d;
}

static void test_parse_format_roundtrip(void)
{
    const char *good[] = { "1970-01-01", "2000-02-29", "2024-02-29", "2026-11-21",
                           "1900-03-01", "9999-12-31" };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char buf[CALDATE_STRLEN];
        caldate_format(D(good[i]), buf);
        CU_ASSERT_STRING_EQUAL(buf, good[i]);
    }
    CU_ASSERT_EQUAL(D("1970-01-01"), 0);
    CU_ASSERT_EQUAL(D("1970-01-02"), 1);
}

static void test_parse_rejects(void)
{
    const char *bad[] = { "2026-02-30", "2025-02-29", "1900-02-29", "2026-13-01",
                          "2026-00-10", "2026-04-31", "2026-1-01", "26-01-01",
                          "2026/01/01", "2026-01-01x", "", "abcd-ef-gh", "1899-12-31" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        caldate_t d = 42;
        CU_ASSERT_EQUAL(caldate_parse(bad[i], &d), -EINVAL);
        CU_ASSERT_EQUAL(d, 42);
    }
    CU_ASSERT_EQUAL(caldate_parse(NULL, &(caldate_t){ 0 }), -EINVAL);
}

static void test_weekday(void)
{
    CU_ASSERT_EQUAL(caldate_weekday(D("2026-11-21")), 5); /* Saturday */
    CU_ASSERT_EQUAL(caldate_weekday(D("2026-11-23")), 0); /* Monday */
    CU_ASSERT_EQUAL(caldate_weekday(D("1969-12-31")), 2); /* Wednesday, before the epoch */
}

static void test_durations(void)
{
    duration_t d;
    char buf[16];
    CU_ASSERT_EQUAL(duration_parse("3y", &d), 0);
    CU_ASSERT_EQUAL(d.unit, DUR_MONTHS);
    CU_ASSERT_EQUAL(d.n, 36);
    duration_format(d, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "3y");
    CU_ASSERT_EQUAL(duration_parse("10bd", &d), 0);
    CU_ASSERT_EQUAL(d.unit, DUR_BDAYS);
    duration_format(d, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "10bd");
    CU_ASSERT_EQUAL(duration_parse("90d", &d), 0);
    CU_ASSERT_EQUAL(duration_parse("18m", &d), 0);
    const char *bad[] = { "", "y", "3", "3w", "-3d", "3 d", "3yy", "1201y", "123456d", "3D" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(duration_parse(bad[i], &d), -EINVAL);
}

static caldate_t add(const char *date, const char *dur)
{
    duration_t d;
    CU_ASSERT_EQUAL_FATAL(duration_parse(dur, &d), 0);
    return caldate_add(D(date), d);
}

static void test_add(void)
{
    CU_ASSERT_EQUAL(add("2025-06-03", "3y"), D("2028-06-03"));
    CU_ASSERT_EQUAL(add("2024-02-29", "1y"), D("2025-02-28")); /* clamp to month end */
    CU_ASSERT_EQUAL(add("2024-01-31", "1m"), D("2024-02-29"));
    CU_ASSERT_EQUAL(add("2025-01-10", "18m"), D("2026-07-10"));
    CU_ASSERT_EQUAL(add("2026-10-10", "30d"), D("2026-11-09"));
    /* Business days: Monday + 10bd is the Monday two weeks later. */
    CU_ASSERT_EQUAL(add("2026-11-02", "10bd"), D("2026-11-16"));
    /* Wednesday + 3bd skips the weekend. */
    CU_ASSERT_EQUAL(add("2026-11-04", "3bd"), D("2026-11-09"));
    /* From a Saturday, the 5th business day is the next Friday. */
    CU_ASSERT_EQUAL(add("2026-11-21", "5bd"), D("2026-11-27"));
    CU_ASSERT_EQUAL(caldate_add(CALDATE_NONE, (duration_t){ 3, DUR_DAYS, 'd' }), CALDATE_NONE);
}

static void test_cmp(void)
{
    duration_t a, b;
    duration_parse("1y", &a);
    duration_parse("12m", &b);
    CU_ASSERT_EQUAL(duration_cmp(a, b), 0);
    duration_parse("180d", &b);
    CU_ASSERT(duration_cmp(a, b) > 0);
    duration_parse("10bd", &a);
    duration_parse("14d", &b);
    CU_ASSERT_EQUAL(duration_cmp(a, b), 0);
}

int suite_caldate(void)
{
    CU_pSuite s = CU_add_suite("caldate", NULL, NULL);
    if (!s || !CU_add_test(s, "parse/format round trip", test_parse_format_roundtrip) ||
        !CU_add_test(s, "impossible dates rejected", test_parse_rejects) ||
        !CU_add_test(s, "weekday", test_weekday) ||
        !CU_add_test(s, "durations parse", test_durations) ||
        !CU_add_test(s, "date + duration", test_add) ||
        !CU_add_test(s, "duration comparison", test_cmp))
        return -1;
    return 0;
}
