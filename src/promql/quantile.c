/* promql/quantile.c - PromQL's quantile kernels: quantile() and
 * quantile_over_time (phi-rank with linear interpolation between the two
 * neighbouring order statistics) and histogram_quantile over classic buckets
 * (Prometheus' BucketQuantile: sort by upper bound, coalesce equal bounds,
 * absorb tiny float deltas and force monotonic counts, binary-search the rank,
 * interpolate linearly inside the bucket).
 *
 * Go sorts short slices (up to 12 elements) with a plain insertion sort, so for
 * those we do exactly the same and agree even on the order of equal keys (which
 * decides the summation order when equal bucket bounds are coalesced, and where
 * -0 and +0 end up). Longer inputs use qsort; then only the relative order of
 * equal keys may differ from Go's pattern-defeating quicksort.
 */
#include "promql/kernels.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

/* Relative tolerance under which two neighbouring cumulative bucket counts are
 * treated as equal (Prometheus' smallDeltaTolerance): such differences come from
 * float rounding, e.g. in sharded sums, not from observations. */
#define SMALL_DELTA_TOLERANCE 1e-12

/* Go sorts slices of at most this many elements by insertion sort. */
#define INSERTION_SORT_MAX 12

/* Prometheus' vectorByValueHeap.Less: NaN sorts before everything. */
static int value_less(double a, double b)
{
    if (isnan(a))
        return 1;
    return a < b;
}

static int value_cmp(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;

    if (isnan(a) || isnan(b))
        return isnan(b) - isnan(a);
    return (a > b) - (a < b);
}

static void sort_values(double *v, size_t n)
{
    if (n > INSERTION_SORT_MAX) {
        qsort(v, n, sizeof(*v), value_cmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && value_less(v[j], v[j - 1]); j--) {
            double tmp = v[j];

            v[j] = v[j - 1];
            v[j - 1] = tmp;
        }
    }
}

double rg_kernel_quantile(double q, double *v, size_t n)
{
    double cnt, rank, lo, hi, weight;

    if (n == 0 || isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    sort_values(v, n);

    cnt = (double)n;
    rank = q * (cnt - 1);
    lo = fmax(0, floor(rank));
    hi = fmin(cnt - 1, lo + 1);
    weight = rank - floor(rank);
    return v[(size_t)lo] * (1 - weight) + v[(size_t)hi] * weight;
}

static int bucket_cmp(const void *pa, const void *pb)
{
    const struct rg_bucket *a = pa, *b = pb;

    return (a->upper > b->upper) - (a->upper < b->upper);
}

static void sort_buckets(struct rg_bucket *b, size_t n)
{
    if (n > INSERTION_SORT_MAX) {
        qsort(b, n, sizeof(*b), bucket_cmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && b[j].upper < b[j - 1].upper; j--) {
            struct rg_bucket tmp = b[j];

            b[j] = b[j - 1];
            b[j - 1] = tmp;
        }
    }
}

/* Merges adjacent buckets with the same upper bound (le="0.2" and le="2e-1" of
 * one histogram) by summing their counts. Returns the new length. */
static size_t coalesce_buckets(struct rg_bucket *b, size_t n)
{
    struct rg_bucket last = b[0];
    size_t out = 0;

    for (size_t i = 1; i < n; i++) {
        if (b[i].upper == last.upper) {
            last.count += b[i].count;
        } else {
            b[out++] = last;
            last = b[i];
        }
    }
    b[out++] = last;
    return out;
}

/* Prometheus' almost.Equal: a relative comparison that also treats two NaNs as
 * equal and falls back to an absolute one around zero. */
static int almost_equal(double a, double b, double epsilon)
{
    double abs_sum, diff;

    if (isnan(a) && isnan(b))
        return 1;
    if (a == b)
        return 1;
    abs_sum = fabs(a) + fabs(b);
    diff = fabs(a - b);
    if (a == 0 || b == 0 || abs_sum < DBL_MIN)
        return diff < epsilon * DBL_MIN;
    return diff / fmin(abs_sum, DBL_MAX) < epsilon;
}

/* Silently absorbs numerically insignificant differences (either direction),
 * then removes every remaining decrease. In both cases the reference count
 * (prev) stays the last accepted one. Returns 1 when a real decrease was
 * flattened. */
static int ensure_monotonic(struct rg_bucket *b, size_t n)
{
    double prev = b[0].count;
    int forced = 0;

    for (size_t i = 1; i < n; i++) {
        double curr = b[i].count;

        if (curr == prev)
            continue;
        if (almost_equal(prev, curr, SMALL_DELTA_TOLERANCE)) {
            b[i].count = prev;
            continue;
        }
        if (curr < prev) {
            b[i].count = prev;
            forced = 1;
            continue;
        }
        prev = curr;
    }
    return forced;
}

double rg_kernel_bucket_quantile(double q, struct rg_bucket *b, size_t n,
                                 int *forced_monotonic)
{
    double observations, rank, start, end, count;
    size_t lo, hi, idx;
    int forced;

    if (forced_monotonic)
        *forced_monotonic = 0;
    if (isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    if (n == 0)
        return NAN;
    sort_buckets(b, n);
    if (!(isinf(b[n - 1].upper) && b[n - 1].upper > 0))
        return NAN;

    n = coalesce_buckets(b, n);
    forced = ensure_monotonic(b, n);
    if (n < 2)
        return NAN;
    observations = b[n - 1].count;
    if (observations == 0)
        return NAN;
    if (forced_monotonic)
        *forced_monotonic = forced;
    rank = q * observations;

    /* Go's sort.Search over the first n-1 buckets: the smallest index whose
     * cumulative count reaches the rank, or n-1 when none does. The exact
     * bisection matters only for NaN counts, where the predicate is not
     * monotonic; it is kept identical anyway. */
    lo = 0;
    hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (!(b[mid].count >= rank))
            lo = mid + 1;
        else
            hi = mid;
    }
    idx = lo;

    if (idx == n - 1)
        return b[n - 2].upper;
    if (idx == 0 && b[0].upper <= 0)
        return b[0].upper;
    start = 0;
    end = b[idx].upper;
    count = b[idx].count;
    if (idx > 0) {
        start = b[idx - 1].upper;
        count -= b[idx - 1].count;
        rank -= b[idx - 1].count;
    }
    return start + (end - start) * (rank / count);
}
