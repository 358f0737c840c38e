#include "core/caldate.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * Day-number conversions after Howard Hinnant's civil-from-days algorithms: exact
 * for the proleptic Gregorian calendar, no tables, no time zone.
 */
caldate_t caldate_from_ymd(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void caldate_to_ymd(caldate_t z, int *y, int *m, int *d)
{
    z += 719468;
    int era = (z >= 0 ? z : z - 146096) / 146097;
    int doe = z - era * 146097;
    int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp + (mp < 10 ? 3 : -9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

int caldate_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int caldate_parse(const char *s, caldate_t *out)
{
    int y, m, d;
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -EINVAL;
    if (caldate_digits(s, 4, &y) < 0 || caldate_digits(s + 5, 2, &m) < 0 ||
        caldate_digits(s + 8, 2, &d) < 0)
        return -EINVAL;
    if (y < 1900 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return -EINVAL;
    *out = caldate_from_ymd(y, m, d);
    return 0;
}

void caldate_format(caldate_t dt, char buf[CALDATE_STRLEN])
{
    if (dt == CALDATE_NONE) {
        buf[0] = '\0';
        return;
    }
    int y, m, d;
    caldate_to_ymd(dt, &y, &m, &d);
    /* Parsed dates are 1900..9999; the masks only tell the compiler the width. */
    snprintf(buf, CALDATE_STRLEN, "%04u-%02u-%02u", (unsigned)y % 10000u, (unsigned)m % 100u,
             (unsigned)d % 100u);
}

int caldate_weekday(caldate_t d)
{
    /* 1970-01-01 was a Thursday (3 when Monday is 0). */
    int w = (int)((d % 7 + 7 + 3) % 7);
    return w;
}

caldate_t caldate_on(time_t t)
{
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return CALDATE_NONE;
    return caldate_from_ymd(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

caldate_t caldate_today(void)
{
    return caldate_on(time(NULL));
}

const char *caldate_zone_name(void)
{
    static char buf[256];
    const char *tz = getenv("TZ");
    if (tz && *tz) {
        snprintf(buf, sizeof(buf), "%s", tz + (*tz == ':'));
        return buf;
    }
    /* Debian: /etc/localtime -> /usr/share/zoneinfo/Europe/Berlin. */
    char link[PATH_MAX];
    ssize_t n = readlink("/etc/localtime", link, sizeof(link) - 1);
    const char *z = NULL;
    if (n > 0) {
        link[n] = '\0';
        z = strstr(link, "zoneinfo/");
    }
    snprintf(buf, sizeof(buf), "%s", z && z[9] ? z + 9 : "localtime");
    return buf;
}

int duration_parse(const char *s, duration_t *out)
{
    if (!s || !*s)
        return -EINVAL;
    int n = 0, nd = 0;
    const char *p = s;
    while (*p >= '0' && *p <= '9') {
        if (++nd > 5)
            return -EINVAL;
        n = n * 10 + (*p++ - '0');
    }
    if (nd == 0)
        return -EINVAL;
    duration_t d = { .n = n };
    if (strcmp(p, "y") == 0) {
        d.unit = DUR_MONTHS, d.n = n * 12, d.unit_given = 'y';
        if (n > 1200)
            return -EINVAL;
    } else if (strcmp(p, "m") == 0) {
        d.unit = DUR_MONTHS, d.unit_given = 'm';
    } else if (strcmp(p, "d") == 0) {
        d.unit = DUR_DAYS, d.unit_given = 'd';
    } else if (strcmp(p, "bd") == 0) {
        d.unit = DUR_BDAYS, d.unit_given = 'b';
    } else {
        return -EINVAL;
    }
    *out = d;
    return 0;
}

void duration_format(duration_t d, char *buf, unsigned len)
{
    switch (d.unit_given) {
    case 'y':
        snprintf(buf, len, "%dy", d.n / 12);
        break;
    case 'b':
        snprintf(buf, len, "%dbd", d.n);
        break;
    case 'd':
        snprintf(buf, len, "%dd", d.n);
        break;
    default:
        snprintf(buf, len, "%dm", d.n);
        break;
    }
}

static caldate_t add_months(caldate_t dt, int months)
{
    int y, m, d;
    caldate_to_ymd(dt, &y, &m, &d);
    int total = y * 12 + (m - 1) + months;
    y = total / 12;
    m = total % 12 + 1;
    int dim = days_in_month(y, m);
    return caldate_from_ymd(y, m, d > dim ? dim : d);
}

static caldate_t add_business_days(caldate_t d, int n)
{
    /* The n-th business day after a Saturday or Sunday is the n-th after the Friday
     * before it; from a weekday, whole weeks keep the weekday, so add them at once. */
    while (caldate_weekday(d) >= 5)
        d--;
    d += (n / 5) * 7;
    n %= 5;
    while (n > 0) {
        d++;
        if (caldate_weekday(d) < 5)
            n--;
    }
    return d;
}

caldate_t caldate_add(caldate_t d, duration_t dur)
{
    if (d == CALDATE_NONE)
        return d;
    switch (dur.unit) {
    case DUR_DAYS:
        return d + dur.n;
    case DUR_BDAYS:
        return add_business_days(d, dur.n);
    case DUR_MONTHS:
        return add_months(d, dur.n);
    }
    return d;
}

static double approx_days(duration_t d)
{
    switch (d.unit) {
    case DUR_DAYS:
        return d.n;
    case DUR_BDAYS:
        return d.n * 7.0 / 5.0;
    case DUR_MONTHS:
        return d.n * 30.4375;
    }
    return 0;
}

int duration_cmp(duration_t a, duration_t b)
{
    if (a.unit == b.unit)
        return (a.n > b.n) - (a.n < b.n);
    double x = approx_days(a), y = approx_days(b);
    return (x > y) - (x < y);
}
