/* Dates and policy durations: the arithmetic every warranty and RMA window uses. */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/caldate.h"
#include "core/config.h"
#include "core/sha256.h"
#include "policy/policy.h"
#include "proto/policy_json.h"
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

/* FIPS 180-4 / NIST test vectors, including the two-block and the million-a message. */
static void test_sha256(void)
{
    char hex[SHA256_HEXLEN];
    sha256_hex("", 0, hex);
    CU_ASSERT_STRING_EQUAL(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex("abc", 3, hex);
    CU_ASSERT_STRING_EQUAL(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(two, strlen(two), hex);
    CU_ASSERT_STRING_EQUAL(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* Fed in uneven pieces, so the buffering between blocks is exercised. */
    sha256_t s;
    unsigned char d[32];
    char a[997];
    memset(a, 'a', sizeof(a));
    sha256_init(&s);
    for (size_t left = 1000000; left;) {
        size_t n = left < sizeof(a) ? left : sizeof(a);
        sha256_update(&s, a, n);
        left -= n;
    }
    sha256_final(&s, d);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    CU_ASSERT_STRING_EQUAL(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Evaluate EverFocus' "RMA valid 30 days" (issued 2026-03-01) on the date t falls on. */
static const char *rma_decision_at(const policy_t *p, time_t t)
{
    char day[CALDATE_STRLEN], text[512], *err = NULL;
    static char disp[32];
    caldate_format(caldate_on(t), day);
    snprintf(text, sizeof(text),
             "{\"today\": \"%s\", \"rma\": {\"number\": \"RMA-1\", \"issued\": \"2026-03-01\","
             " \"kind\": \"warranty\"}, \"product\": {\"vendor\": \"EverFocus\", \"model\": "
             "\"EPN4208\", \"family\": \"NVR\", \"shipped\": \"2025-03-10\", "
             "\"warranty_months\": 36}, \"inspection\": {\"fault\": \"confirmed\"}}", day);
    policy_case_t c;
    policy_result_t r;
    CU_ASSERT_EQUAL_FATAL(case_from_json_text(text, strlen(text), &c, &err), 0);
    CU_ASSERT_EQUAL_FATAL(policy_evaluate(p, &c, &r), 0);
    snprintf(disp, sizeof(disp), "%s", ENUM_DISPOSITION.names[r.disposition]);
    policy_result_free(&r);
    policy_case_free(&c);
    return disp;
}

/*
 * Issue 13: "today" is the site's date ([daemon] timezone, applied as the process's
 * zone). One instant, 2026-03-31T22:30Z, is already April 1 in Berlin and still
 * March 31 in New York: day 31 of an RMA valid 30 days (refused) in one, day 30 (on
 * time) in the other. The instant is given, not waited for.
 */
static void test_site_zone_today(void)
{
    const char *saved = getenv("TZ");
    char *old = saved ? strdup(saved) : NULL;
    policy_t *p = NULL;
    char *err = NULL;
    CU_ASSERT_EQUAL_FATAL(policy_load("policies/everfocus.yaml", &p, &err), 0);
    struct tm tm = { .tm_year = 2026 - 1900, .tm_mon = 2, .tm_mday = 31, .tm_hour = 22,
                     .tm_min = 30 };
    time_t t = timegm(&tm);

    config_t berlin = { .timezone = "Europe/Berlin" }, ny = { .timezone = "America/New_York" };
    CU_ASSERT_EQUAL(config_timezone_apply(&berlin), 0);
    CU_ASSERT_EQUAL(caldate_on(t), caldate_from_ymd(2026, 4, 1));
    CU_ASSERT_STRING_EQUAL(caldate_zone_name(), "Europe/Berlin");
    CU_ASSERT_STRING_EQUAL(rma_decision_at(p, t), "refuse");
    CU_ASSERT_STRING_EQUAL(rma_decision_at(p, t - 3600), "warranty_repair");  /* 23:30 Berlin */

    CU_ASSERT_EQUAL(config_timezone_apply(&ny), 0);
    CU_ASSERT_EQUAL(caldate_on(t), caldate_from_ymd(2026, 3, 31));
    CU_ASSERT_STRING_EQUAL(caldate_zone_name(), "America/New_York");
    CU_ASSERT_STRING_EQUAL(rma_decision_at(p, t), "warranty_repair");
    CU_ASSERT_STRING_EQUAL(rma_decision_at(p, t + 6 * 3600), "refuse");  /* 00:30 New York (UTC-4) */

    policy_destroy(&p);
    if (old)
        setenv("TZ", old, 1);
    else
        unsetenv("TZ");
    tzset();
    free(old);
}

int suite_caldate(void)
{
    CU_pSuite s = CU_add_suite("caldate", NULL, NULL);
    if (!s || !CU_add_test(s, "parse/format round trip", test_parse_format_roundtrip) ||
        !CU_add_test(s, "impossible dates rejected", test_parse_rejects) ||
        !CU_add_test(s, "weekday", test_weekday) ||
        !CU_add_test(s, "durations parse", test_durations) ||
        !CU_add_test(s, "date + duration", test_add) ||
        !CU_add_test(s, "duration comparison", test_cmp) ||
        !CU_add_test(s, "sha256 test vectors", test_sha256) ||
        !CU_add_test(s, "site time zone decides today near midnight", test_site_zone_today))
        return -1;
    return 0;
}
