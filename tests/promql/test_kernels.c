/* tests/promql/test_kernels.c - the numeric kernels of PromQL against values
 * worked out by hand from Prometheus' algorithms (promql/functions.go and
 * quantile.go, 3.x) or taken from its promqltest files.
 *
 * Results are compared bit for bit (same_double), because agreeing to the last
 * digit with Prometheus is the point of these kernels; NaN matches any NaN.
 * Comments next to a case show the arithmetic that gives the expected value.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "promql/ast.h"
#include "promql/kernels.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MAXS 16

/* Bit equality, except that every NaN equals every NaN. */
static int same_double(double a, double b)
{
    uint64_t x, y;

    if (isnan(a) && isnan(b))
        return 1;
    memcpy(&x, &a, sizeof(x));
    memcpy(&y, &b, sizeof(y));
    return x == y;
}

#define assert_same(got, want, name)                                                   \
    do {                                                                               \
        if (!same_double((got), (want)))                                               \
            fail_msg("%s: got %.17g want %.17g", (name), (double)(got), (double)(want)); \
    } while (0)

static void test_kahan__compensates_cancellation(void **state)
{
    double sum = 0, c = 0, naive = 0;
    const double v[] = { 1e100, 1.0, -1e100 };
    (void)state;

    for (size_t i = 0; i < N(v); i++) {
        sum = rg_kahan_inc(v[i], sum, &c);
        naive += v[i];
    }
    /* 1e100 + 1 loses the 1 in the sum but keeps it in c. */
    assert_same(naive, 0.0, "naive");
    assert_same(sum + c, 1.0, "kahan");

    /* An infinite running sum resets the compensation to 0 (no NaN from it). */
    c = 5;
    sum = rg_kahan_inc(INFINITY, 1.0, &c);
    assert_same(sum, INFINITY, "inf sum");
    assert_same(c, 0.0, "inf c");
}

struct rate_case {
    const char *name;
    int64_t start, end;          /* window bounds, ms */
    int counter, rate;
    size_t n;
    struct rg_sample s[MAXS];
    int has;                     /* result expected */
    double want;
};

static const struct rate_case rate_cases[] = {
    /* 10..60 at 10s..60s in (0, 60s]: result 50; to_start 10 < 1.1*10;
     * to_zero = 50*(10/50) = 10, not below; factor 60/50 = 1.2 -> 60. */
    { "increase_extrapolates_to_start", 0, 60000, 1, 0, 6,
      { { 10000, 10 }, { 20000, 20 }, { 30000, 30 }, { 40000, 40 }, { 50000, 50 },
        { 60000, 60 } }, 1, 60.0 },
    /* The same as a rate: factor 1.2 / 60 s = 0.02, 50 * 0.02 = 1. */
    { "rate_per_second", 0, 60000, 1, 1, 6,
      { { 10000, 10 }, { 20000, 20 }, { 30000, 30 }, { 40000, 40 }, { 50000, 50 },
        { 60000, 60 } }, 1, 1.0 },
    /* functions.test http_requests{path="/foo"} 0+10x10, load 5m, increase[50m]
     * at 50m with the left-open range of 3.x: the sample at 0 is excluded, so
     * 10..100 at 5m..50m; result 90, to_start 300 s, to_zero 2700*(10/90) = 300,
     * factor 3000/2700 -> 100. */
    { "increase_prometheus_http_requests", 0, 3000000, 1, 0, 10,
      { { 300000, 10 }, { 600000, 20 }, { 900000, 30 }, { 1200000, 40 }, { 1500000, 50 },
        { 1800000, 60 }, { 2100000, 70 }, { 2400000, 80 }, { 2700000, 90 },
        { 3000000, 100 } }, 1, 100.0 },
    /* functions.test testcounter_reset_middle 0+10x4 0+10x5, rate[50m] at 50m,
     * left-open: 10 20 30 40 0 10 20 30 40 50; result 50-10 + 40 (reset) = 80;
     * factor 3000/2700/3000 s; 80 * 0.00037037037037037035 = 0.02962962962962963. */
    { "rate_counter_reset_middle", 0, 3000000, 1, 1, 10,
      { { 300000, 10 }, { 600000, 20 }, { 900000, 30 }, { 1200000, 40 }, { 1500000, 0 },
        { 1800000, 10 }, { 2100000, 20 }, { 2400000, 30 }, { 2700000, 40 },
        { 3000000, 50 } }, 1, 0.02962962962962963 },
    /* Gauge 1 4 9 16 at 15..45 s in (0, 60 s]: both gaps (15 s) exceed 1.1*10,
     * so extrapolate half an interval each way: 15 * 40/30 = 20. */
    { "delta_half_interval_both_ends", 0, 60000, 0, 0, 4,
      { { 15000, 1 }, { 25000, 4 }, { 35000, 9 }, { 45000, 16 } }, 1, 20.0 },
    /* Counter 1 11 21 at 20..40 s in (0, 60 s]: to_start 20 -> 5 (threshold),
     * zero point 20*(1/20) = 1 s before the first sample -> 1; to_end 20 -> 5;
     * factor 26/20 -> 26. */
    { "increase_zero_clamp", 0, 60000, 1, 0, 3,
      { { 20000, 1 }, { 30000, 11 }, { 40000, 21 } }, 1, 26.0 },
    /* Counter 7 17 27: the zero point (7 s) lies between avg/2 (5 s) and the
     * threshold (11 s). 3.x applies the threshold first (5 s), then the clamp
     * (7 s is not shorter): factor 30/20 -> 30. Before 2.51 this gave 32. */
    { "increase_threshold_before_clamp", 0, 60000, 1, 0, 3,
      { { 20000, 7 }, { 30000, 17 }, { 40000, 27 } }, 1, 30.0 },
    /* A delta does not clamp: 7 17 27 as a gauge -> 20 * 30/20 = 30 as well,
     * but a falling gauge goes negative: 27 17 7 -> -20 * 1.5 = -30. */
    { "delta_negative", 0, 60000, 0, 0, 3,
      { { 20000, 27 }, { 30000, 17 }, { 40000, 7 } }, 1, -30.0 },
    /* 5 then 1 as a counter is a reset: 1 - 5 + 5 = 1. The average interval
     * is 10 s (threshold 11): to_start 10 and to_end 10 are kept, to_zero
     * 10*(5/1) = 50 is not shorter; factor 30/10 -> 3. */
    { "increase_reset_only", 0, 30000, 1, 0, 2,
      { { 10000, 5 }, { 20000, 1 } }, 1, 3.0 },
    { "one_sample_no_result", 0, 60000, 1, 1, 1, { { 10000, 5 } }, 0, 0 },
    { "no_samples_no_result", 0, 60000, 0, 0, 0, { { 0, 0 } }, 0, 0 },
    /* Two samples at one timestamp: sampled interval 0 gives 0/0. */
    { "equal_timestamps_nan", 0, 60000, 1, 1, 2, { { 10000, 1 }, { 10000, 2 } }, 1, NAN },
    /* delta looks only at the first and last value: a NaN in between does not
     * matter (3 - 1 = 2, extrapolated by 30/20 -> 3), a NaN at the end does. */
    { "nan_middle_ignored_by_delta", 0, 60000, 0, 0, 3,
      { { 20000, 1 }, { 30000, NAN }, { 40000, 3 } }, 1, 3.0 },
    { "nan_last", 0, 60000, 0, 0, 3,
      { { 20000, 1 }, { 30000, 2 }, { 40000, NAN } }, 1, NAN },
    /* Negative times work the same: window (-60 s, 0]. */
    { "negative_times", -60000, 0, 1, 0, 6,
      { { -50000, 10 }, { -40000, 20 }, { -30000, 30 }, { -20000, 40 }, { -10000, 50 },
        { 0, 60 } }, 1, 60.0 },
};

static void test_rate__table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(rate_cases); i++) {
        const struct rate_case *c = &rate_cases[i];
        double out = -12345;
        int has = rg_kernel_extrapolated_rate(c->s, c->n, c->start, c->end, c->counter,
                                              c->rate, &out);

        if (has != c->has)
            fail_msg("%s: has %d want %d", c->name, has, c->has);
        if (has)
            assert_same(out, c->want, c->name);
        else
            assert_same(out, -12345.0, c->name);
    }
}

static void test_instant_value__table(void **state)
{
    static const struct rg_sample reset[] = { { 0, 10 }, { 10000, 20 }, { 15000, 5 } };
    static const struct rg_sample up[] = { { 0, 1 }, { 2000, 2 }, { 4000, 9 } };
    static const struct rg_sample same_t[] = { { 0, 1 }, { 1000, 2 }, { 1000, 3 } };
    double out = 0;
    (void)state;

    /* irate after a reset: the new value over 5 s -> 1. idelta: 5 - 20. */
    assert_int_equal(rg_kernel_instant_value(reset, 3, 1, &out), 1);
    assert_same(out, 1.0, "irate reset");
    assert_int_equal(rg_kernel_instant_value(reset, 3, 0, &out), 1);
    assert_same(out, -15.0, "idelta");
    /* Only the last two samples count: (9 - 2) / 2 s. */
    assert_int_equal(rg_kernel_instant_value(up, 3, 1, &out), 1);
    assert_same(out, 3.5, "irate");
    assert_int_equal(rg_kernel_instant_value(same_t, 3, 1, &out), 0);
    assert_int_equal(rg_kernel_instant_value(up, 1, 1, &out), 0);
    assert_int_equal(rg_kernel_instant_value(up, 0, 0, &out), 0);
}

static void test_deriv__table(void **state)
{
    static const struct rg_sample line[] = { { 0, 0 }, { 10000, 10 }, { 20000, 20 } };
    static const struct rg_sample flat[] = { { 0, 7 }, { 10000, 7 }, { 20000, 7 } };
    static const struct rg_sample inf[] = { { 0, INFINITY }, { 10000, INFINITY } };
    static const struct rg_sample big[] = { { 1700000000000, 1 }, { 1700000060000, 4 } };
    double out = 0;
    (void)state;

    /* x = 0, 10, 20; sums 30, 30, 500, 500; cov = 500 - 900/3 = 200 = var -> 1. */
    assert_int_equal(rg_kernel_deriv(line, 3, &out), 1);
    assert_same(out, 1.0, "deriv line");
    /* Constant series short-cut: slope 0; an infinite constant gives NaN. */
    assert_int_equal(rg_kernel_deriv(flat, 3, &out), 1);
    assert_same(out, 0.0, "deriv flat");
    assert_int_equal(rg_kernel_deriv(inf, 2, &out), 1);
    assert_same(out, NAN, "deriv inf");
    /* Times near 2023 stay exact because x is relative to the first sample:
     * x = 0, 60; cov = 240 - 60*5/2 = 90; var = 3600 - 1800 = 1800 -> 0.05. */
    assert_int_equal(rg_kernel_deriv(big, 2, &out), 1);
    assert_same(out, 90.0 / 1800.0, "deriv big t");
    assert_int_equal(rg_kernel_deriv(line, 1, &out), 0);

    /* predict_linear at t = 20 s, 60 s ahead: x = -20, -10, 0; slope 1,
     * intercept 30/3 - 1*(-30)/3 = 20; 1*60 + 20 = 80. */
    assert_int_equal(rg_kernel_predict_linear(line, 3, 20000, 60, &out), 1);
    assert_same(out, 80.0, "predict_linear");
    assert_int_equal(rg_kernel_predict_linear(flat, 3, 20000, 3600, &out), 1);
    assert_same(out, 7.0, "predict flat");
    assert_int_equal(rg_kernel_predict_linear(line, 1, 0, 1, &out), 0);
}

static void test_resets_changes__table(void **state)
{
    static const struct rg_sample r[] = { { 1, 3 }, { 2, 2 }, { 3, 1 }, { 4, 5 }, { 5, 4 } };
    static const struct rg_sample c[] = { { 1, 1 }, { 2, 1 }, { 3, NAN }, { 4, NAN },
                                          { 5, 2 } };
    (void)state;

    assert_same(rg_kernel_resets(r, 5), 3.0, "resets");
    assert_same(rg_kernel_changes(r, 5), 4.0, "changes r");
    /* 1->1 no, 1->NaN yes, NaN->NaN no, NaN->2 yes; NaN < x is never a reset. */
    assert_same(rg_kernel_changes(c, 5), 2.0, "changes nan");
    assert_same(rg_kernel_resets(c, 5), 0.0, "resets nan");
    assert_same(rg_kernel_resets(r, 1), 0.0, "resets one");
    assert_same(rg_kernel_changes(r, 1), 0.0, "changes one");
}

struct ot_case {
    const char *name;
    enum rg_over_time kind;
    size_t n;
    double v[MAXS];
    double want;
};

#define M 1.7976931348623157e308

static const struct ot_case ot_cases[] = {
    /* functions.test (load 10s): metric 1 2 3 4 5 -> 3; 1 2 3 4 Inf -> Inf;
     * 1 2 3 Inf -Inf -> NaN. */
    { "avg_simple", RG_OT_AVG, 5, { 1, 2, 3, 4, 5 }, 3 },
    { "avg_inf", RG_OT_AVG, 5, { 1, 2, 3, 4, INFINITY }, INFINITY },
    { "avg_inf_minus_inf", RG_OT_AVG, 5, { 1, 2, 3, INFINITY, -INFINITY }, NAN },
    /* Kahan: 1 + 1e100 + 1 - 1e100 keeps 2 in the compensation -> 2/4. */
    { "avg_kahan", RG_OT_AVG, 4, { 1, 1e100, 1, -1e100 }, 0.5 },
    /* Naively (0.1+0.2+0.3)/3 = 0.20000000000000004; the compensated sum is 0.6. */
    { "avg_tenths", RG_OT_AVG, 3, { 0.1, 0.2, 0.3 }, 0.2 },
    /* M + M overflows: switch to the incremental mean: mean M, then
     * M/2 + M/2 = M with zero compensation. */
    { "avg_overflow_incremental", RG_OT_AVG, 2, { M, M }, M },
    /* 1e308 1e308 -1e308: incremental from the 2nd sample; the mean ends at
     * 2/3*1e308 - 1e308/3 = 3.333333333333333e307 (worked step by step). */
    { "avg_overflow_three", RG_OT_AVG, 3, { 1e308, 1e308, -1e308 }, 3.333333333333333e307 },
    { "avg_one", RG_OT_AVG, 1, { -4.5 }, -4.5 },
    { "sum_kahan", RG_OT_SUM, 3, { 1e100, 1.0, -1e100 }, 1.0 },
    /* functions.test: 1 1e100 1 -1e100 -> 2. */
    { "sum_kahan_four", RG_OT_SUM, 4, { 1, 1e100, 1, -1e100 }, 2.0 },
    { "sum_inf", RG_OT_SUM, 3, { 1, INFINITY, 1 }, INFINITY },
    { "sum_inf_minus_inf", RG_OT_SUM, 2, { INFINITY, -INFINITY }, NAN },
    { "sum_overflow", RG_OT_SUM, 2, { M, M }, INFINITY },
    { "max_nan_first", RG_OT_MAX, 4, { NAN, 1, 3, 2 }, 3 },
    { "min_nan_first", RG_OT_MIN, 4, { NAN, 1, 3, 2 }, 1 },
    { "max_nan_later_ignored", RG_OT_MAX, 3, { 1, NAN, 0.5 }, 1 },
    { "min_nan_later_ignored", RG_OT_MIN, 3, { 1, NAN, 0.5 }, 0.5 },
    { "max_all_nan", RG_OT_MAX, 2, { NAN, NAN }, NAN },
    { "min_neg_inf", RG_OT_MIN, 3, { 1, -INFINITY, 2 }, -INFINITY },
    /* Welford: var(1,2,3,4) = 5/4; stddev sqrt(1.25). */
    { "stdvar", RG_OT_STDVAR, 4, { 1, 2, 3, 4 }, 1.25 },
    { "stddev", RG_OT_STDDEV, 4, { 1, 2, 3, 4 }, 1.118033988749895 },
    { "stddev_one", RG_OT_STDDEV, 1, { 42 }, 0 },
    { "stdvar_equal", RG_OT_STDVAR, 3, { 0.1, 0.1, 0.1 }, 0 },
    { "stdvar_inf", RG_OT_STDVAR, 2, { 1, INFINITY }, NAN },
    { "count", RG_OT_COUNT, 3, { NAN, 1, 2 }, 3 },
    { "last", RG_OT_LAST, 3, { 1, 2, NAN }, NAN },
    { "last_value", RG_OT_LAST, 2, { 1, 2 }, 2 },
    { "present", RG_OT_PRESENT, 1, { NAN }, 1 },
    /* median 3; |v - 3| = 2 1 0 1 97 -> median 1. */
    { "mad_odd", RG_OT_MAD, 5, { 1, 2, 3, 4, 100 }, 1 },
    /* median 2.5; deviations .5 .5 1.5 1.5 -> .5*.5 + 1.5*.5 = 1. */
    { "mad_even", RG_OT_MAD, 4, { 4, 1, 3, 2 }, 1 },
    { "mad_one", RG_OT_MAD, 1, { 5 }, 0 },
};

static void test_over_time__table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(ot_cases); i++) {
        const struct ot_case *c = &ot_cases[i];
        struct rg_sample s[MAXS];
        double scratch[MAXS];

        for (size_t j = 0; j < c->n; j++) {
            s[j].t = (int64_t)j * 10000;
            s[j].v = c->v[j];
        }
        assert_same(rg_kernel_over_time(c->kind, s, c->n, scratch), c->want, c->name);
    }
}

static void test_over_time__mad_keeps_input(void **state)
{
    struct rg_sample s[] = { { 0, 9 }, { 1, 1 }, { 2, 5 } };
    double scratch[3];
    (void)state;

    /* median 5; deviations 4 4 0 -> 4. The samples are not reordered. */
    assert_same(rg_kernel_over_time(RG_OT_MAD, s, 3, scratch), 4.0, "mad");
    assert_same(s[0].v, 9.0, "s0");
    assert_same(s[1].v, 1.0, "s1");
}

struct q_case {
    const char *name;
    double q;
    size_t n;
    double v[MAXS];
    double want;
};

static const struct q_case q_cases[] = {
    { "median", 0.5, 5, { 5, 3, 1, 4, 2 }, 3 },
    { "rank_integer", 0.25, 5, { 5, 3, 1, 4, 2 }, 2 },
    /* rank 3.6: weight 0.6000000000000001; 4*0.3999999999999999 +
     * 5*0.6000000000000001 = 1.5999999999999996 + 3.0000000000000004 = 4.6. */
    { "interpolated", 0.9, 5, { 1, 2, 3, 4, 5 }, 4.6 },
    { "q0_min", 0, 3, { 3, -1, 2 }, -1 },
    { "q1_max", 1, 3, { 3, -1, 2 }, 3 },
    { "nan_q", NAN, 2, { 1, 2 }, NAN },
    { "negative_q", -0.1, 2, { 1, 2 }, -INFINITY },
    { "q_above_one", 1.01, 2, { 1, 2 }, INFINITY },
    { "empty", 0.5, 0, { 0 }, NAN },
    /* NaN sorts first: NaN 1 2. */
    { "nan_first_q0", 0, 3, { 2, NAN, 1 }, NAN },
    { "nan_first_median", 0.5, 3, { 2, NAN, 1 }, 1 },
    { "nan_first_q1", 1, 3, { 2, NAN, 1 }, 2 },
    { "single", 0.3, 1, { 7 }, 7 },
    /* Thirteen values take the non-insertion-sort path: 0..12 reversed,
     * rank 0.5*12 = 6 -> 6. */
    { "long_input", 0.5, 13, { 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0 }, 6 },
};

static void test_quantile__table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(q_cases); i++) {
        const struct q_case *c = &q_cases[i];
        double v[MAXS];

        memcpy(v, c->v, sizeof(v));
        assert_same(rg_kernel_quantile(c->q, v, c->n), c->want, c->name);
    }
}

struct bq_case {
    const char *name;
    double q;
    size_t n;
    struct rg_bucket b[MAXS];
    double want;
    int forced;
};

static const struct bq_case bq_cases[] = {
    /* histograms.test testhistogram2: le 0 2 4 6 +Inf with 0 1 2 3 3 ->
     * q = 1/6, 1/2, 5/6 give 1, 3, 5. */
    { "uniform_sixth", 1.0 / 6, 5,
      { { 0, 0 }, { 2, 1 }, { 4, 2 }, { 6, 3 }, { INFINITY, 3 } }, 1, 0 },
    { "uniform_half", 0.5, 5,
      { { 0, 0 }, { 2, 1 }, { 4, 2 }, { 6, 3 }, { INFINITY, 3 } }, 3, 0 },
    { "uniform_five_sixths", 5.0 / 6, 5,
      { { 0, 0 }, { 2, 1 }, { 4, 2 }, { 6, 3 }, { INFINITY, 3 } }, 5, 0 },
    /* q = 1: rank 3 is reached in the le=6 bucket -> its upper bound. */
    { "q_one", 1, 5, { { 0, 0 }, { 2, 1 }, { 4, 2 }, { 6, 3 }, { INFINITY, 3 } }, 6, 0 },
    { "unsorted", 0.5, 5,
      { { 6, 3 }, { INFINITY, 3 }, { 2, 1 }, { 0, 0 }, { 4, 2 } }, 3, 0 },
    /* le 0.1:2, 0.2 twice (2 and 2 -> 4), +Inf and +inf (2 and 2 -> 4):
     * rank 3 in (0.1, 0.2]: 0.1 + 0.1*(1/2), an exact tie that rounds to
     * even: 0.15000000000000002. */
    { "duplicate_bounds", 0.75, 5,
      { { 0.2, 2 }, { INFINITY, 2 }, { 0.1, 2 }, { 0.2, 2 }, { INFINITY, 2 } },
      0.15000000000000002, 0 },
    /* 2 1 5 5: the 1 is raised to 2 (forced); rank 2.5 in (2, 3]:
     * 2 + 1*(0.5/3). */
    { "non_monotonic", 0.5, 4, { { 1, 2 }, { 2, 1 }, { 3, 5 }, { INFINITY, 5 } },
      2.1666666666666665, 1 },
    /* 1e12 then 1e12 - 0.5: relative delta 2.5e-13 < 1e-12, silently absorbed
     * (not "forced"); rank 5e11 in the first bucket -> 0.5. */
    { "tiny_delta_absorbed", 0.25, 3,
      { { 1, 1e12 }, { 2, 1e12 - 0.5 }, { INFINITY, 2e12 } }, 0.5, 0 },
    { "no_inf_bucket", 0.5, 2, { { 1, 1 }, { 2, 2 } }, NAN, 0 },
    { "only_inf_bucket", 0.5, 1, { { INFINITY, 4 } }, NAN, 0 },
    /* Two +Inf buckets coalesce into one: fewer than two buckets. */
    { "inf_twice_only", 0.5, 2, { { INFINITY, 1 }, { INFINITY, 3 } }, NAN, 0 },
    { "zero_observations", 0.5, 2, { { 1, 0 }, { INFINITY, 0 } }, NAN, 0 },
    { "negative_q", -1, 2, { { 1, 1 }, { INFINITY, 1 } }, -INFINITY, 0 },
    { "q_above_one", 2, 2, { { 1, 1 }, { INFINITY, 1 } }, INFINITY, 0 },
    { "nan_q", NAN, 2, { { 1, 1 }, { INFINITY, 1 } }, NAN, 0 },
    { "no_buckets", 0.5, 0, { { 0, 0 } }, NAN, 0 },
    /* Lowest bucket with a bound <= 0 returns that bound. */
    { "negative_lowest", 0, 4, { { -1, 1 }, { 0, 2 }, { 1, 3 }, { INFINITY, 3 } }, -1, 0 },
    /* rank 1.5 in (-1, 0]: -1 + 1*(0.5/1). */
    { "negative_interpolated", 0.5, 4, { { -1, 1 }, { 0, 2 }, { 1, 3 }, { INFINITY, 3 } },
      -0.5, 0 },
    /* rank 5 is beyond every finite bucket: the second-highest bound. */
    { "in_inf_bucket", 0.5, 3, { { 1, 1 }, { 2, 2 }, { INFINITY, 10 } }, 2, 0 },
    /* q = 0 with an empty lowest bucket: 0 + 1*(0/0). */
    { "q0_empty_first", 0, 3, { { 1, 0 }, { 2, 1 }, { INFINITY, 1 } }, NAN, 0 },
    /* First bucket from 0: rank 1 of 4 in (0, 8] holding 2 -> 8*(1/2). */
    { "first_bucket_from_zero", 0.25, 3, { { 8, 2 }, { 16, 4 }, { INFINITY, 4 } }, 4, 0 },
};

static void test_bucket_quantile__table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(bq_cases); i++) {
        const struct bq_case *c = &bq_cases[i];
        struct rg_bucket b[MAXS];
        int forced = -1;

        memcpy(b, c->b, sizeof(b));
        assert_same(rg_kernel_bucket_quantile(c->q, b, c->n, &forced), c->want, c->name);
        if (forced != c->forced)
            fail_msg("%s: forced %d want %d", c->name, forced, c->forced);
        memcpy(b, c->b, sizeof(b));
        assert_same(rg_kernel_bucket_quantile(c->q, b, c->n, NULL), c->want, c->name);
    }
}

static void test_round__table(void **state)
{
    static const struct { double v, to, want; } cases[] = {
        { 2.5, 1, 3 },
        { -2.5, 1, -2 },        /* ties round up: floor(-2) */
        { 0.5, 1, 1 },
        { 1.49, 1, 1 },
        { 12.345, 0.01, 12.35 },   /* 1/0.01 = 100; 1234.5 + 0.5 -> 1235 / 100 */
        { 5, 10, 10 },             /* inverse 0.1: floor(1) / 0.1 */
        { 0.1, 0.1, 0.1 },
        { NAN, 1, NAN },
        { INFINITY, 1, INFINITY },
        { -INFINITY, 5, -INFINITY },
        { 7, 0, NAN },             /* inverse +Inf: floor(Inf) / Inf */
    };
    (void)state;

    for (size_t i = 0; i < N(cases); i++) {
        char name[64];

        snprintf(name, sizeof(name), "round(%g, %g)", cases[i].v, cases[i].to);
        assert_same(rg_kernel_round(cases[i].v, cases[i].to), cases[i].want, name);
    }
}

struct date_case {
    const char *name;
    double t;
    int year, month, dom, doy, dow, dim, hour, minute;
};

static const struct date_case date_cases[] = {
    { "epoch", 0, 1970, 1, 1, 1, 4, 31, 0, 0 },
    /* 2000-02-29 12:34:56, a Tuesday, 400-year leap year. */
    { "leap_day_2000", 951827696, 2000, 2, 29, 60, 2, 29, 12, 34 },
    /* Fractions truncate: 951827696.999 is still 12:34:56. */
    { "fraction", 951827696.999, 2000, 2, 29, 60, 2, 29, 12, 34 },
    /* 2000-03-10 is day 31+29+10 = 70. */
    { "march_leap_year", 951782400 + 10 * 86400, 2000, 3, 10, 70, 5, 31, 0, 0 },
    /* 1900-02-15: 1900 is not a leap year (divisible by 100, not 400). */
    { "feb_1900", -2205100800, 1900, 2, 15, 46, 4, 28, 0, 0 },
    /* 1900-03-01 is day 60 in a common year; a Thursday. */
    { "march_1900", -2203891200, 1900, 3, 1, 60, 4, 31, 0, 0 },
    /* 1900-01-01 was a Monday. */
    { "jan_1900", -2208988800, 1900, 1, 1, 1, 1, 31, 0, 0 },
    /* One second before the epoch: 1969-12-31 23:59:59, a Wednesday. */
    { "before_epoch", -1, 1969, 12, 31, 365, 3, 31, 23, 59 },
    /* -0.5 truncates toward zero to 0, so it is still 1970. */
    { "negative_fraction", -0.5, 1970, 1, 1, 1, 4, 31, 0, 0 },
    /* 2024-12-31, a Tuesday, day 366 of a leap year. */
    { "leap_year_end", 1735603200, 2024, 12, 31, 366, 2, 31, 0, 0 },
    /* 2100-02-01: 2100 is not a leap year. */
    { "feb_2100", 4105123200, 2100, 2, 1, 32, 1, 28, 0, 0 },
    /* 2000-02-01 */
    { "feb_2000", 949363200, 2000, 2, 1, 32, 2, 29, 0, 0 },
    /* 2023-04-30 23:59:59 (Sunday): April has 30 days. */
    { "april", 1682899199, 2023, 4, 30, 120, 0, 30, 23, 59 },
    /* 0001-01-01 00:00:00, a Monday. */
    { "year_one", -62135596800, 1, 1, 1, 1, 1, 31, 0, 0 },
    /* One second earlier: 0000-12-31 23:59:59; year 0 is a leap year. */
    { "year_zero", -62135596801, 0, 12, 31, 366, 0, 31, 23, 59 },
    /* 9999-12-31 23:59:59, a Friday. */
    { "year_9999", 253402300799, 9999, 12, 31, 365, 5, 31, 23, 59 },
};

static void test_date__table(void **state)
{
    static const int which[] = { RG_FN_YEAR, RG_FN_MONTH, RG_FN_DAY_OF_MONTH,
                                 RG_FN_DAY_OF_YEAR, RG_FN_DAY_OF_WEEK, RG_FN_DAYS_IN_MONTH,
                                 RG_FN_HOUR, RG_FN_MINUTE };
    (void)state;

    for (size_t i = 0; i < N(date_cases); i++) {
        const struct date_case *c = &date_cases[i];
        const int want[] = { c->year, c->month, c->dom, c->doy, c->dow, c->dim, c->hour,
                             c->minute };

        for (size_t k = 0; k < N(which); k++) {
            char name[80];

            snprintf(name, sizeof(name), "%s field %zu", c->name, k);
            assert_same(rg_kernel_date(which[k], c->t), (double)want[k], name);
        }
    }
}

static void test_date__odd_inputs(void **state)
{
    (void)state;
    /* Not a calendar function. */
    assert_same(rg_kernel_date(RG_FN_ABS, 0), NAN, "which");
    /* NaN and infinities convert to INT64_MIN as on amd64 Go; whatever date
     * that is, every field is a finite, in-range number. */
    assert_true(rg_kernel_date(RG_FN_HOUR, NAN) >= 0 && rg_kernel_date(RG_FN_HOUR, NAN) < 24);
    assert_true(rg_kernel_date(RG_FN_MONTH, INFINITY) >= 1);
    assert_true(rg_kernel_date(RG_FN_MONTH, -1e300) <= 12);
    assert_same(rg_kernel_date(RG_FN_YEAR, NAN), rg_kernel_date(RG_FN_YEAR, 1e300), "same");
}

/* Go's own time.Unix(s, 0).UTC() fields for a thousand pseudo-random times
 * from year -1199 to 5121, half of them between 1938 and 2064. */
static void test_date__go_reference(void **state)
{
    static const int which[] = { RG_FN_YEAR, RG_FN_MONTH, RG_FN_DAY_OF_MONTH,
                                 RG_FN_DAY_OF_YEAR, RG_FN_DAY_OF_WEEK, RG_FN_DAYS_IN_MONTH,
                                 RG_FN_HOUR, RG_FN_MINUTE };
    FILE *fp = fopen("tests/data/promql/kernels/go_reference.txt", "r");
    char line[1024];
    size_t checked = 0;
    (void)state;

    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp)) {
        long long s, want[8];

        if (line[0] != 'D')
            continue;
        assert_int_equal(sscanf(line, "D %lld %lld %lld %lld %lld %lld %lld %lld %lld", &s,
                                &want[0], &want[1], &want[2], &want[3], &want[4], &want[5],
                                &want[6], &want[7]), 9);
        for (size_t k = 0; k < N(which); k++) {
            char name[80];

            snprintf(name, sizeof(name), "t=%lld field %zu", s, k);
            assert_same(rg_kernel_date(which[k], (double)s), (double)want[k], name);
        }
        checked++;
    }
    fclose(fp);
    assert_int_equal(checked, 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kahan__compensates_cancellation),
        cmocka_unit_test(test_rate__table),
        cmocka_unit_test(test_instant_value__table),
        cmocka_unit_test(test_deriv__table),
        cmocka_unit_test(test_resets_changes__table),
        cmocka_unit_test(test_over_time__table),
        cmocka_unit_test(test_over_time__mad_keeps_input),
        cmocka_unit_test(test_quantile__table),
        cmocka_unit_test(test_bucket_quantile__table),
        cmocka_unit_test(test_round__table),
        cmocka_unit_test(test_date__table),
        cmocka_unit_test(test_date__odd_inputs),
        cmocka_unit_test(test_date__go_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
