/* promql/kernels.c - the range-vector kernels of PromQL: rate, irate, deriv,
 * predict_linear, resets, changes, the *_over_time family and round().
 *
 * Each function repeats Prometheus 3.x (promql/functions.go) operation for
 * operation, because floating-point results depend on the order of operations:
 * extrapolatedRate (counter-reset correction, extrapolation to the range bounds
 * with the 1.1 x average-interval threshold, then the zero-point clamp for
 * counters), Kahan-Babuska (Neumaier) compensated sums in sum_over_time,
 * avg_over_time (direct mean, switching to an incremental mean only when the sum
 * overflows), stddev/stdvar_over_time (Welford with compensation) and the least
 * squares fit behind deriv and predict_linear. The file must be compiled with
 * -ffp-contract=off so that no multiply-add is fused, as on amd64 Go. The
 * quantile kernels live in quantile.c and the calendar ones in date.c.
 */
#include "promql/kernels.h"

#include <math.h>

double rg_kahan_inc(double inc, double sum, double *c)
{
    double t = sum + inc;

    /* An infinite running sum makes the compensation meaningless (it would turn
     * into NaN), so Prometheus drops it from then on. */
    if (isinf(t))
        *c = 0;
    else if (fabs(sum) >= fabs(inc))
        *c += (sum - t) + inc;
    else
        *c += (inc - t) + sum;
    return t;
}

/* Go's time.Duration.Seconds() on a duration of @ms milliseconds: whole seconds
 * plus the nanosecond remainder divided by 1e9. Both operands are exact, so
 * dividing the millisecond remainder by 1000 gives the same correctly rounded
 * quotient. */
static double duration_seconds(int64_t ms)
{
    return (double)(ms / 1000) + (double)(ms % 1000) / 1000.0;
}

int rg_kernel_extrapolated_rate(const struct rg_sample *s, size_t n, int64_t range_start,
                                int64_t range_end, int is_counter, int is_rate, double *out)
{
    double result, to_start, to_end, sampled, avg, threshold, factor;

    if (n < 2)
        return 0;
    result = s[n - 1].v - s[0].v;
    if (is_counter) {
        /* Every drop is a reset: the counter restarted from zero, so the value
         * before the drop is added back. */
        for (size_t i = 1; i < n; i++)
            if (s[i].v < s[i - 1].v)
                result += s[i - 1].v;
    }

    /* Integer subtraction first, then the division, as Prometheus does. */
    to_start = (double)(s[0].t - range_start) / 1000;
    to_end = (double)(range_end - s[n - 1].t) / 1000;
    sampled = (double)(s[n - 1].t - s[0].t) / 1000;
    avg = sampled / (double)(n - 1);
    threshold = avg * 1.1;

    /* A sample close enough to a boundary means the series covers it: extrapolate
     * all the way. Otherwise assume the series starts (ends) half an average
     * interval beyond the outermost sample. */
    if (to_start >= threshold)
        to_start = avg / 2;
    if (is_counter) {
        /* A counter cannot go below zero: do not extrapolate past the point
         * where the line through the samples reaches zero. */
        double to_zero = to_start;

        if (result > 0 && s[0].v >= 0)
            to_zero = sampled * (s[0].v / result);
        if (to_zero < to_start)
            to_start = to_zero;
    }
    if (to_end >= threshold)
        to_end = avg / 2;

    factor = (sampled + to_start + to_end) / sampled;
    if (is_rate)
        factor /= duration_seconds(range_end - range_start);
    *out = result * factor;
    return 1;
}

int rg_kernel_instant_value(const struct rg_sample *s, size_t n, int is_rate, double *out)
{
    const struct rg_sample *last, *prev;
    int64_t dt;
    double result;

    if (n < 2)
        return 0;
    last = &s[n - 1];
    prev = &s[n - 2];
    dt = last->t - prev->t;
    if (dt == 0)
        return 0;
    /* irate after a counter reset takes the new value as the increase. A NaN
     * comparison is false, so NaNs fall through to the plain difference. */
    if (is_rate && last->v < prev->v)
        result = last->v;
    else
        result = last->v - prev->v;
    if (is_rate)
        result /= (double)dt / 1000;
    *out = result;
    return 1;
}

/* Prometheus' linearRegression: least squares over (x, y) with x the sample time
 * in seconds relative to @intercept_t, every sum Kahan-compensated. A constant
 * series short-cuts to slope 0 (NaN for an infinite constant) so that rounding
 * cannot invent a slope. */
static void linear_regression(const struct rg_sample *s, size_t n, int64_t intercept_t,
                              double *slope, double *intercept)
{
    double cnt = 0, sum_x = 0, c_x = 0, sum_y = 0, c_y = 0;
    double sum_xy = 0, c_xy = 0, sum_x2 = 0, c_x2 = 0;
    double init_y = s[0].v, cov_xy, var_x;
    int const_y = 1;

    for (size_t i = 0; i < n; i++) {
        double x;

        if (const_y && i > 0 && s[i].v != init_y)
            const_y = 0;
        cnt += 1.0;
        x = (double)(s[i].t - intercept_t) / 1e3;
        sum_x = rg_kahan_inc(x, sum_x, &c_x);
        sum_y = rg_kahan_inc(s[i].v, sum_y, &c_y);
        sum_xy = rg_kahan_inc(x * s[i].v, sum_xy, &c_xy);
        sum_x2 = rg_kahan_inc(x * x, sum_x2, &c_x2);
    }
    if (const_y) {
        if (isinf(init_y)) {
            *slope = NAN;
            *intercept = NAN;
        } else {
            *slope = 0;
            *intercept = init_y;
        }
        return;
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;

    cov_xy = sum_xy - sum_x * sum_y / cnt;
    var_x = sum_x2 - sum_x * sum_x / cnt;
    *slope = cov_xy / var_x;
    *intercept = sum_y / cnt - *slope * sum_x / cnt;
}

int rg_kernel_deriv(const struct rg_sample *s, size_t n, double *out)
{
    double slope, intercept;

    if (n < 2)
        return 0;
    /* x is taken relative to the first sample to keep the sums small (the
     * precision problem of prometheus/prometheus#2674). */
    linear_regression(s, n, s[0].t, &slope, &intercept);
    *out = slope;
    return 1;
}

int rg_kernel_predict_linear(const struct rg_sample *s, size_t n, int64_t t_ms,
                             double duration_s, double *out)
{
    double slope, intercept;

    if (n < 2)
        return 0;
    linear_regression(s, n, t_ms, &slope, &intercept);
    *out = slope * duration_s + intercept;
    return 1;
}

double rg_kernel_resets(const struct rg_sample *s, size_t n)
{
    double resets = 0;

    for (size_t i = 1; i < n; i++)
        if (s[i].v < s[i - 1].v)
            resets++;
    return resets;
}

double rg_kernel_changes(const struct rg_sample *s, size_t n)
{
    double changes = 0;

    /* Two NaNs in a row are no change, although NaN != NaN. */
    for (size_t i = 1; i < n; i++)
        if (s[i].v != s[i - 1].v && !(isnan(s[i].v) && isnan(s[i - 1].v)))
            changes++;
    return changes;
}

/* avg_over_time: the plain Kahan sum divided by the count is the most accurate
 * mean as long as the sum stays finite. When adding a sample would overflow,
 * switch for good to the incremental mean, rescaling the mean and compensation
 * at each step by (count-1)/count. */
static double avg_over_time(const struct rg_sample *s, size_t n)
{
    double sum = s[0].v, count = 1, mean = 0, c = 0;
    int incremental = 0;

    for (size_t i = 1; i < n; i++) {
        double q;

        count = (double)(i + 1);
        if (!incremental) {
            double new_c = c;
            double new_sum = rg_kahan_inc(s[i].v, sum, &new_c);

            if (!isinf(new_sum)) {
                sum = new_sum;
                c = new_c;
                continue;
            }
            incremental = 1;
            mean = sum / (count - 1);
            c /= (count - 1);
        }
        q = (count - 1) / count;
        c = q * c;
        mean = rg_kahan_inc(s[i].v / count, q * mean, &c);
    }
    if (incremental)
        return mean + c;
    return sum / count + c / count;
}

/* stddev/stdvar_over_time: Welford's online variance with every running value
 * compensated. Returns the population variance. */
static double variance_over_time(const struct rg_sample *s, size_t n)
{
    double count = 0, mean = 0, c_mean = 0, aux = 0, c_aux = 0;

    for (size_t i = 0; i < n; i++) {
        double delta;

        count++;
        delta = s[i].v - (mean + c_mean);
        mean = rg_kahan_inc(delta / count, mean, &c_mean);
        aux = rg_kahan_inc(delta * (s[i].v - (mean + c_mean)), aux, &c_aux);
    }
    return (aux + c_aux) / count;
}

double rg_kernel_over_time(enum rg_over_time kind, const struct rg_sample *s, size_t n,
                           double *scratch)
{
    double acc, c = 0;

    if (n == 0)
        return NAN;
    switch (kind) {
    case RG_OT_AVG:
        return avg_over_time(s, n);
    case RG_OT_MIN:
    case RG_OT_MAX:
        /* A NaN is replaced by any later value, so NaN only survives when
         * every sample is NaN. */
        acc = s[0].v;
        for (size_t i = 0; i < n; i++) {
            int better = kind == RG_OT_MAX ? s[i].v > acc : s[i].v < acc;

            if (better || isnan(acc))
                acc = s[i].v;
        }
        return acc;
    case RG_OT_SUM:
        acc = 0;
        for (size_t i = 0; i < n; i++)
            acc = rg_kahan_inc(s[i].v, acc, &c);
        return isinf(acc) ? acc : acc + c;
    case RG_OT_COUNT:
        return (double)n;
    case RG_OT_STDDEV:
        return sqrt(variance_over_time(s, n));
    case RG_OT_STDVAR:
        return variance_over_time(s, n);
    case RG_OT_LAST:
        return s[n - 1].v;
    case RG_OT_PRESENT:
        return 1;
    case RG_OT_MAD: {
        double median;

        if (!scratch)
            return NAN;
        for (size_t i = 0; i < n; i++)
            scratch[i] = s[i].v;
        median = rg_kernel_quantile(0.5, scratch, n);
        for (size_t i = 0; i < n; i++)
            scratch[i] = fabs(s[i].v - median);
        return rg_kernel_quantile(0.5, scratch, n);
    }
    }
    return NAN;
}

double rg_kernel_round(double v, double to_nearest)
{
    /* Multiplying by the inverse, then dividing by it, is what Prometheus does
     * ("fewer floating point accuracy issues"); ties round up. */
    double inverse = 1.0 / to_nearest;

    return floor(v * inverse + 0.5) / inverse;
}
