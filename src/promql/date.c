/* promql/date.c - PromQL's calendar functions (year, month, day_of_month,
 * day_of_year, day_of_week, days_in_month, hour, minute) on a Unix time in
 * seconds, in UTC.
 *
 * Prometheus evaluates them with Go's time.Unix(int64(v), 0).UTC(). We follow
 * the same arithmetic as Go's time package (1.23 and later): seconds are shifted
 * to an unsigned count from an "absolute" epoch, March 1 of year -292277022400,
 * and split into century, year of century and day of year with the Euclidean
 * affine functions of Neri and Schneider ("Euclidean affine functions and their
 * application to calendar algorithms", SP&E 2023). Doing it in wrapping 64-bit
 * unsigned arithmetic, as Go does, makes even absurd inputs (NaN, +-Inf, 1e300)
 * give Go's answers instead of undefined behaviour.
 */
#include "promql/ast.h"
#include "promql/kernels.h"

#include <math.h>

#define SECONDS_PER_DAY 86400
/* Days from March 1 to the end of December. */
#define MARCH_THRU_DECEMBER 306
/* Years from the absolute epoch to year 0; a multiple of 400. */
#define ABSOLUTE_YEARS UINT64_C(292277022400)
/* Seconds from the absolute epoch to 1970-01-01: the days of 292277022400
 * Gregorian years plus March..December, plus the days from year 1 to 1970. */
#define UNIX_TO_ABSOLUTE \
    ((UINT64_C(106751990354238) + UINT64_C(719162)) * SECONDS_PER_DAY)

struct civil {
    uint64_t century;   /* centuries since the absolute epoch */
    uint32_t cyear;     /* year within the century, 0..99 */
    uint32_t ayday;     /* day of the March-based year, 0..365 */
};

/* Go converts float64 to int64 with CVTTSD2SQ on amd64: truncation toward zero,
 * and the "integer indefinite" value INT64_MIN for NaN and out-of-range inputs. */
static int64_t go_float_to_int64(double v)
{
    if (isnan(v) || v >= 9223372036854775808.0 || v < -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)v;
}

static uint64_t abs_seconds(int64_t unix_s)
{
    return (uint64_t)unix_s + UNIX_TO_ABSOLUTE;
}

static struct civil split_days(uint64_t days)
{
    struct civil c;
    uint64_t d = 4 * days + 3;
    uint32_t cd = (uint32_t)(d % 146097) | 3;
    uint64_t prod = (uint64_t)2939745 * cd;

    c.century = d / 146097;
    c.cyear = (uint32_t)(prod >> 32);
    c.ayday = (uint32_t)(prod & 0xFFFFFFFFu) / 2939745 / 4;
    return c;
}

static int jan_feb(const struct civil *c)
{
    return c->ayday >= MARCH_THRU_DECEMBER;
}

static void month_day(uint32_t ayday, int *amonth, int *mday)
{
    uint32_t d = 2141 * ayday + 197913;

    *amonth = (int)(d >> 16);
    *mday = 1 + (int)((d & 0xFFFF) / 2141);
}

static int64_t civil_year(const struct civil *c)
{
    return (int64_t)(c->century * 100 - ABSOLUTE_YEARS) + (int64_t)c->cyear + jan_feb(c);
}

static int civil_month(const struct civil *c)
{
    int amonth, mday;

    month_day(c->ayday, &amonth, &mday);
    return amonth - 12 * jan_feb(c);
}

/* Days from the absolute epoch to @year-@month-@day, as Go's dateToAbsDays
 * (the day may be out of range; it simply runs on). */
static uint64_t date_to_abs_days(int64_t year, int month, int day)
{
    uint32_t amonth = (uint32_t)month, jf = amonth < 3, cyear, cday, ayday;
    uint64_t y, century, century_days;

    amonth += 12 * jf;
    y = (uint64_t)year - jf + ABSOLUTE_YEARS;
    ayday = (979 * amonth - 2919) >> 5;
    century = y / 100;
    cyear = (uint32_t)(y % 100);
    cday = 1461 * cyear / 4;
    century_days = 146097 * century / 4;
    return century_days + (uint64_t)((int64_t)(cday + ayday) + (int64_t)day - 1);
}

/* Go computes days_in_month as 32 - Date(year, month, 32).Day(): day 32 rolls
 * over into the next month by exactly the month's length. */
static int days_in_month(const struct civil *c)
{
    int amonth, mday;
    uint64_t secs = date_to_abs_days(civil_year(c), civil_month(c), 32) * SECONDS_PER_DAY;
    struct civil next = split_days(secs / SECONDS_PER_DAY);

    month_day(next.ayday, &amonth, &mday);
    return 32 - mday;
}

double rg_kernel_date(int which, double unix_s)
{
    uint64_t abs = abs_seconds(go_float_to_int64(unix_s));
    uint64_t days = abs / SECONDS_PER_DAY;
    struct civil c = split_days(days);
    int amonth, mday;

    switch (which) {
    case RG_FN_YEAR:
        return (double)civil_year(&c);
    case RG_FN_MONTH:
        return (double)civil_month(&c);
    case RG_FN_DAY_OF_MONTH:
        month_day(c.ayday, &amonth, &mday);
        return (double)mday;
    case RG_FN_DAY_OF_YEAR: {
        /* March-based day to January-based: add January and February (and the
         * leap day) for March..December, subtract the year for Jan/Feb. */
        int jf = jan_feb(&c);
        int leap = (c.cyear % 4 == 0) && (c.cyear != 0 || c.century % 4 == 0);

        return (double)((int)c.ayday + 1 + 31 + 28 + (leap & !jf) - 365 * jf);
    }
    case RG_FN_DAY_OF_WEEK:
        /* The absolute epoch, a March 1 like that of 2000, was a Wednesday. */
        return (double)((days + 3) % 7);
    case RG_FN_DAYS_IN_MONTH:
        return (double)days_in_month(&c);
    case RG_FN_HOUR:
        return (double)((abs % SECONDS_PER_DAY) / 3600);
    case RG_FN_MINUTE:
        return (double)((abs % 3600) / 60);
    default:
        return NAN;
    }
}
