/*
 * Calendar dates and policy durations.
 *
 * A date is a day number (days since 1970-01-01, proleptic Gregorian), so that
 * comparisons are integer comparisons and no time zone is involved: policy
 * evaluation works on receiving dates, never on the wall clock.
 *
 * Durations read like the vendor policies: "3y", "18m", "6m", "90d", "10bd"
 * (business days, Monday to Friday; holidays are not modelled, see docs/policy.md).
 */
#ifndef RMAD_CALDATE_H
#define RMAD_CALDATE_H

#include <stdint.h>
#include <time.h>

typedef int32_t caldate_t;

/* "No date": absent from the case or the RMA. Never a valid day number. */
#define CALDATE_NONE INT32_MIN

/* Length of the text form "YYYY-MM-DD" plus NUL. */
#define CALDATE_STRLEN 11

/*
 * Parse exactly "YYYY-MM-DD" (years 1900..9999), rejecting impossible dates such as
 * 2026-02-30. Returns 0 and sets *out, or -EINVAL (*out untouched).
 */
int caldate_parse(const char *s, caldate_t *out);

/*
 * Exactly n decimal digits at s as a number (the fixed-width fields of dates and
 * times: "2026", "09", "123"). Returns 0 and sets *out, or -1 on anything else.
 */
int caldate_digits(const char *s, int n, int *out);

/* Write "YYYY-MM-DD" into buf (CALDATE_STRLEN bytes). CALDATE_NONE gives "". */
void caldate_format(caldate_t d, char buf[CALDATE_STRLEN]);

caldate_t caldate_from_ymd(int y, int m, int d);
void caldate_to_ymd(caldate_t d, int *y, int *m, int *dd);

/* 0 = Monday ... 6 = Sunday. */
int caldate_weekday(caldate_t d);

/* Today's date in the local time zone (the dock's calendar). Daemon use only. */
caldate_t caldate_today(void);

/*
 * The date instant t falls on in the process's local zone: the site zone once
 * config_timezone_apply() ran ([daemon] timezone), else the system's. caldate_today()
 * is caldate_on(time(NULL)); tests pass an instant near midnight instead of waiting.
 */
caldate_t caldate_on(time_t t);

/*
 * The name of the zone caldate_today() uses, for records of a decision: $TZ without
 * a leading ':' when set, else the zone /etc/localtime links to ("Europe/Berlin"),
 * else "localtime". Static storage, valid until the next call.
 */
const char *caldate_zone_name(void);

typedef enum {
    DUR_DAYS,       /* calendar days */
    DUR_BDAYS,      /* business days, Monday to Friday */
    DUR_MONTHS,     /* calendar months; years are stored as 12 months */
} dur_unit_t;

typedef struct {
    int n;
    dur_unit_t unit;
    char unit_given; /* 'y', 'm', 'd' or 'b' as written, for reasons ("3y") */
} duration_t;

/*
 * Parse "3y", "18m", "90d", "10bd" (n from 0 to 1200 years' worth). Returns 0 and
 * sets *out, or -EINVAL.
 */
int duration_parse(const char *s, duration_t *out);

/* Write the duration as written ("3y", "10bd") into buf (at least 16 bytes). */
void duration_format(duration_t d, char *buf, unsigned len);

/*
 * d + duration. Months add calendar months, clamping to the month's last day
 * (2024-01-31 + 1m = 2024-02-29). Business days skip Saturdays and Sundays: the
 * result is the n-th business day after d. CALDATE_NONE stays CALDATE_NONE.
 */
caldate_t caldate_add(caldate_t d, duration_t dur);

/*
 * Compare two durations by length; months count as 30.4375 days and business days
 * as 7/5 of a day. Returns <0, 0, >0.
 */
int duration_cmp(duration_t a, duration_t b);

#endif
