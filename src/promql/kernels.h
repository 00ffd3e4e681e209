/* promql/kernels.h - PromQL's numeric kernels: pure functions over sample arrays.
 *
 * Each kernel reproduces one Prometheus algorithm exactly (same operation order,
 * same Kahan compensation, same special cases), so that results agree to the last
 * digit. Samples come oldest first; ranges are given in ms. None of these
 * allocate unless said, and none keep pointers. Stale markers never reach a kernel:
 * the evaluator removes them first.
 */
#ifndef RG_PROMQL_KERNELS_H
#define RG_PROMQL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/buf.h"

/** Kahan-Babuska (Neumaier) step as Prometheus' kahanSumInc: returns the new sum
 *  and updates *@c. The final value is sum + c. */
double rg_kahan_inc(double inc, double sum, double *c);

/** rate / increase / delta (Prometheus extrapolatedRate). @range_start and
 *  @range_end are the window's bounds in ms (eval time - offset - range, and eval
 *  time - offset). @is_counter handles resets; @is_rate divides by the range in s.
 *  Returns 1 and sets *@out when there is a result (>= 2 samples), else 0. */
int rg_kernel_extrapolated_rate(const struct rg_sample *s, size_t n, int64_t range_start,
                                int64_t range_end, int is_counter, int is_rate, double *out);

/** irate (@is_rate 1) / idelta (0) over the last two samples. Returns 1 or 0. */
int rg_kernel_instant_value(const struct rg_sample *s, size_t n, int is_rate, double *out);

/** deriv: slope of the least-squares line, x relative to @s[0].t (seconds).
 *  predict_linear: intercept at @t_ms plus slope times @duration_s.
 *  Both return 1 or 0 (fewer than 2 samples). */
int rg_kernel_deriv(const struct rg_sample *s, size_t n, double *out);
int rg_kernel_predict_linear(const struct rg_sample *s, size_t n, int64_t t_ms,
                             double duration_s, double *out);

/** resets / changes. Always a result when n >= 1. */
double rg_kernel_resets(const struct rg_sample *s, size_t n);
double rg_kernel_changes(const struct rg_sample *s, size_t n);

enum rg_over_time {
    RG_OT_AVG, RG_OT_MIN, RG_OT_MAX, RG_OT_SUM, RG_OT_COUNT, RG_OT_STDDEV, RG_OT_STDVAR,
    RG_OT_LAST, RG_OT_PRESENT, RG_OT_MAD,
};
/** <agg>_over_time with n >= 1 samples. MAD may reorder a scratch copy: @scratch
 *  must hold n doubles (or be NULL for other kinds). */
double rg_kernel_over_time(enum rg_over_time kind, const struct rg_sample *s, size_t n,
                           double *scratch);

/** Prometheus' quantile(): @q outside [0,1] gives -Inf/+Inf, NaN q gives NaN,
 *  n == 0 gives NaN. Sorts @v in place. */
double rg_kernel_quantile(double q, double *v, size_t n);

/** One classic histogram bucket: upper bound and cumulative count. */
struct rg_bucket {
    double upper;
    double count;
};

/** Prometheus' bucketQuantile for classic buckets: sorts by upper bound, coalesces
 *  equal bounds, fixes non-monotonic counts (sets *@forced_monotonic), applies the
 *  +Inf and lowest-bucket rules. Returns NaN when no +Inf bucket or fewer than two
 *  buckets. @b is reordered in place. *@forced_monotonic may be NULL. */
double rg_kernel_bucket_quantile(double q, struct rg_bucket *b, size_t n,
                                 int *forced_monotonic);

/** round(v, to_nearest) exactly as Prometheus (floor(v/to + 0.5) * to, with the
 *  inverse trick). */
double rg_kernel_round(double v, double to_nearest);

/** Calendar functions on a Unix time in seconds (UTC), as Go's time package:
 *  which is one of RG_FN_DAY_OF_MONTH .. RG_FN_YEAR (see ast.h). */
double rg_kernel_date(int which, double unix_s);

/** Appends @v formatted as Prometheus' JSON API does (Go strconv 'f', -1:
 *  shortest round-trip digits, no exponent; "NaN", "+Inf", "-Inf").
 *  Returns 0 or RG_ENOMEM. */
int rg_format_float(double v, struct rg_buf *out);
/** Appends a ms timestamp as Prometheus' JSON API does: whole seconds, then '.'
 *  and always three millisecond digits unless they are zero (1435781451.781,
 *  1435781451.500, 1435781451). */
int rg_format_time(int64_t ms, struct rg_buf *out);
/** Appends @v as Go's strconv.FormatFloat(v, 'g', -1, 64): shortest digits, with
 *  an exponent when exp < -4 or exp >= 6 (Go's rule for shortest precision:
 *  100000, 1e+06, 1.23456789e+08), "NaN", "+Inf", "-Inf". */
int rg_format_float_g(double v, struct rg_buf *out);

#endif
