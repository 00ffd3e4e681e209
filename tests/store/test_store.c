/* tests/store/test_store.c - behaviour of the series store through its public contract.
 *
 * Covers creation and lookup of series, label interning and its release by GC,
 * the append ordering rules, sample windows and their inclusive bounds, retention,
 * the series limit, Prometheus matcher semantics (including the empty-string rule
 * for missing labels), result ordering, label names and values, metadata, and a
 * randomised comparison against a naive model of the whole store.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>

#include "store/introspect.h"
#include "store/store.h"
#include "util/err.h"

#include "helpers.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static struct rg_store *new_store(int64_t retention_ms, size_t max_series)
{
    struct rg_store_config cfg;
    struct rg_store *st = NULL;

    rg_store_config_default(&cfg);
    cfg.retention_ms = retention_ms;
    cfg.max_series = max_series;
    assert_int_equal(rg_store_new(&cfg, &st), 0);
    assert_non_null(st);
    return st;
}

static struct rg_series *must_get(struct rg_store *st, const char *spec)
{
    struct rg_series *s = NULL;

    assert_int_equal(t_get(st, spec, &s, NULL), 0);
    assert_non_null(s);
    return s;
}

/* ---- Configuration and helpers ----------------------------------------- */

static void test_store__config_default(void **state)
{
    struct rg_store_config cfg;

    (void)state;
    memset(&cfg, 0xff, sizeof(cfg));
    rg_store_config_default(&cfg);
    assert_int_equal(cfg.retention_ms, 3600000);
    assert_int_equal(cfg.max_series, 1000000);
}

static void test_store__new_rejects_bad_config(void **state)
{
    static const struct { int64_t retention; size_t max; int want; } cases[] = {
        { 3600000, 10, 0 },
        { 0, 10, RG_EINVAL },
        { -1, 10, RG_EINVAL },
        { 1000, 0, RG_EINVAL },
    };
    (void)state;

    for (size_t i = 0; i < N_OF(cases); i++) {
        struct rg_store_config cfg = { cases[i].retention, cases[i].max };
        struct rg_store *st = NULL;

        assert_int_equal(rg_store_new(&cfg, &st), cases[i].want);
        rg_store_free(st);
    }
    assert_int_equal(rg_store_new(NULL, &(struct rg_store *){ NULL }), RG_EINVAL);
    rg_store_free(NULL);
}

static void test_stale__marker_bits(void **state)
{
    (void)state;
    assert_int_equal(t_bits(rg_stale_nan()), RG_STALE_NAN_BITS);
    assert_true(rg_is_stale_nan(rg_stale_nan()));
    assert_false(rg_is_stale_nan(NAN));
    assert_false(rg_is_stale_nan(t_from_bits(UINT64_C(0x7ff8000000000001))));
    assert_false(rg_is_stale_nan(0.0));
    assert_false(rg_is_stale_nan(INFINITY));
}

static void test_metric_type__names(void **state)
{
    static const struct { enum rg_metric_type t; const char *want; } cases[] = {
        { RG_METRIC_UNKNOWN, "unknown" },     { RG_METRIC_COUNTER, "counter" },
        { RG_METRIC_GAUGE, "gauge" },         { RG_METRIC_HISTOGRAM, "histogram" },
        { RG_METRIC_GAUGEHISTOGRAM, "gaugehistogram" },
        { RG_METRIC_SUMMARY, "summary" },     { RG_METRIC_INFO, "info" },
        { RG_METRIC_STATESET, "stateset" },   { (enum rg_metric_type)99, "unknown" },
    };
    (void)state;

    for (size_t i = 0; i < N_OF(cases); i++)
        assert_string_equal(rg_metric_type_name(cases[i].t), cases[i].want);
}

/* ---- Series ------------------------------------------------------------- */

static void test_series__get_find_created(void **state)
{
    struct rg_store *st = new_store(3600000, 100);
    struct rg_series *a, *b, *c, *f;
    struct rg_label l[4];
    char out[256];
    int created = -1;
    (void)state;

    assert_int_equal(t_find(st, "__name__=up,job=api", &f), RG_ENOENT);
    assert_int_equal(t_get(st, "__name__=up,job=api", &a, &created), 0);
    assert_int_equal(created, 1);
    assert_int_equal(t_get(st, "__name__=up,job=api", &b, &created), 0);
    assert_int_equal(created, 0);
    assert_ptr_equal(a, b);
    assert_int_equal(t_find(st, "__name__=up,job=api", &f), 0);
    assert_ptr_equal(a, f);
    /* A prefix, a superset and a changed value are all other series. */
    assert_int_equal(t_find(st, "__name__=up", &f), RG_ENOENT);
    assert_int_equal(t_find(st, "__name__=up,job=api,x=1", &f), RG_ENOENT);
    assert_int_equal(t_find(st, "__name__=up,job=ap", &f), RG_ENOENT);
    assert_int_equal(t_find(st, "__name__=upj,ob=api", &f), RG_ENOENT);
    assert_int_equal(t_get(st, "__name__=up,job=web", &c, &created), 0);
    assert_int_equal(created, 1);
    assert_ptr_not_equal(a, c);
    assert_int_equal(rg_store_series_count(st), 2);

    assert_int_equal(rg_series_label_count(a), 2);
    assert_int_equal(rg_series_labels(a, l, 1), 2);
    assert_string_equal(l[0].name, "__name__");
    assert_string_equal(l[0].value, "up");
    assert_string_equal(t_render(c, out, sizeof(out)), "__name__=up,job=web");
    assert_string_equal(rg_series_label(a, "job"), "api");
    assert_null(rg_series_label(a, "instance"));
    assert_int_equal(rg_series_max_time(a), INT64_MIN);
    assert_int_equal(rg_series_min_time(a), INT64_MAX);
    /* The created flag may be omitted. */
    assert_int_equal(t_get(st, "x=1", &f, NULL), 0);
    rg_store_free(st);
}

static void test_series__labels_with_binary_bytes(void **state)
{
    struct rg_store *st = new_store(3600000, 100);
    struct rg_label_ref one[1] = { { { "k", 1 }, { "a\0b", 3 } } };
    struct rg_label_ref two[1] = { { { "k", 1 }, { "a\0c", 3 } } };
    struct rg_series *a, *b;
    int created;
    (void)state;

    assert_int_equal(rg_store_series_get(st, one, 1, &a, &created), 0);
    assert_int_equal(rg_store_series_get(st, two, 1, &b, &created), 0);
    assert_int_equal(created, 1);
    assert_ptr_not_equal(a, b);
    assert_int_equal(rg_store_series_find(st, one, 1, &b), 0);
    assert_ptr_equal(a, b);
    rg_store_free(st);
}

static void test_intern__shared_and_released(void **state)
{
    struct rg_store *st = new_store(1000, 100);
    struct rg_series *a = must_get(st, "__name__=up,job=api");
    struct rg_series *b = must_get(st, "__name__=up,job=web");
    struct rg_label la[2], lb[2];
    (void)state;

    rg_series_labels(a, la, 2);
    rg_series_labels(b, lb, 2);
    /* One copy of each distinct string: __name__, up, job, api, web. */
    assert_ptr_equal(la[0].name, lb[0].name);
    assert_ptr_equal(la[0].value, lb[0].value);
    assert_ptr_equal(la[1].name, lb[1].name);
    assert_ptr_not_equal(la[1].value, lb[1].value);
    assert_int_equal(rg__store_symbol_count(st), 5);

    assert_int_equal(rg_store_append(st, a, 5000, 1), 0);
    assert_int_equal(rg_store_append(st, b, 1000, 1), 0);
    /* b's only sample is older than 5000 - 1000: b goes, and "web" with it. */
    assert_int_equal(rg_store_gc(st, 5000), 1);
    assert_int_equal(rg__store_symbol_count(st), 4);
    assert_int_equal(rg_store_gc(st, 7000), 1);
    assert_int_equal(rg__store_symbol_count(st), 0);
    assert_int_equal(rg__store_pair_count(st), 0);
    rg_store_free(st);
}

static void test_series__label_counts_around_block_limit(void **state)
{
    /* A series block is a 48-byte header plus 4 bytes per label: from empty to
     * blocks of a few KiB, every label must come back and be released. */
    static const size_t counts[] = { 0, 1, 10, 115, 116, 117, 300 };
    struct rg_store *st = new_store(1000, 100);
    struct rg_label_ref refs[300];
    struct rg_label out[300];
    struct rg_series *s[N_OF(counts)], *f;
    char names[300][8], value[16];
    (void)state;

    for (size_t j = 0; j < 300; j++) {
        /* Three-digit names sort in index order. */
        snprintf(names[j], sizeof(names[j]), "l%03zu", j);
        refs[j].name = (struct rg_slice){ names[j], 4 };
    }
    for (size_t i = 0; i < N_OF(counts); i++) {
        int created = 0;

        snprintf(value, sizeof(value), "v%zu", counts[i]);
        for (size_t j = 0; j < counts[i]; j++)
            refs[j].value = (struct rg_slice){ value, strlen(value) };
        assert_int_equal(rg_store_series_get(st, refs, counts[i], &s[i], &created), 0);
        assert_int_equal(created, 1);
        assert_int_equal(rg_store_append(st, s[i], 5000, (double)i), 0);
    }
    for (size_t i = 0; i < N_OF(counts); i++) {
        snprintf(value, sizeof(value), "v%zu", counts[i]);
        assert_int_equal(rg_series_labels(s[i], out, 300), counts[i]);
        for (size_t j = 0; j < counts[i]; j++) {
            assert_string_equal(out[j].name, names[j]);
            assert_string_equal(out[j].value, value);
            refs[j].value = (struct rg_slice){ value, strlen(value) };
        }
        assert_int_equal(rg_store_series_find(st, refs, counts[i], &f), 0);
        assert_ptr_equal(f, s[i]);
        assert_int_equal(rg_series_max_time(s[i]), 5000);
    }
    assert_int_equal(rg_store_gc(st, 10000), N_OF(counts));
    assert_int_equal(rg__store_symbol_count(st), 0);
    /* Freeing the store frees live series of any size. */
    assert_int_equal(rg_store_series_get(st, refs, 300, &f, NULL), 0);
    assert_int_equal(rg_store_series_get(st, refs, 10, &f, NULL), 0);
    assert_int_equal(rg_store_series_count(st), 2);
    rg_store_free(st);
}

static void test_shape__shared_and_released(void **state)
{
    /* Each step creates one series (with a sample at time t) and expects this
     * many distinct label-name lists afterwards. */
    static const struct { const char *spec; int64_t t; size_t shapes; } steps[] = {
        { "__name__=up,job=api", 5000, 1 },
        { "__name__=up,job=web", 1000, 1 },
        { "__name__=down,job=api", 5000, 1 },
        { "__name__=up,instance=a", 1000, 2 },
        { "a=1,b=1", 5000, 3 },
        { "a=1,c=1", 5000, 4 },
        { "__name__=up", 1000, 5 },
    };
    struct rg_store *st = new_store(1000, 100);
    struct rg_series *s[N_OF(steps)], *f;
    struct t_labels l;
    char out[256];
    (void)state;

    for (size_t i = 0; i < N_OF(steps); i++) {
        s[i] = must_get(st, steps[i].spec);
        assert_int_equal(rg_store_append(st, s[i], steps[i].t, 1), 0);
        assert_int_equal(rg__store_shape_count(st), steps[i].shapes);
    }
    /* Series of one shape keep their own values; equal values under other names
     * are other series. */
    for (size_t i = 0; i < N_OF(steps); i++) {
        assert_string_equal(t_render(s[i], out, sizeof(out)), steps[i].spec);
        t_labels(&l, steps[i].spec);
        assert_int_equal(rg_store_series_find(st, l.refs, l.n, &f), 0);
        assert_ptr_equal(f, s[i]);
    }
    assert_string_equal(rg_series_label(s[1], "job"), "web");
    assert_null(rg_series_label(s[1], "instance"));
    /* Time 1000 expires: the two shapes used only by old series go, the shared
     * one stays for the series still on it. */
    assert_int_equal(rg_store_gc(st, 5000), 3);
    assert_int_equal(rg__store_shape_count(st), 3);
    assert_string_equal(t_render(s[0], out, sizeof(out)), "__name__=up,job=api");
    /* A released shape's id is reused by the next new name list. */
    f = must_get(st, "x=1,y=2");
    assert_int_equal(rg__store_shape_count(st), 4);
    assert_string_equal(t_render(f, out, sizeof(out)), "x=1,y=2");
    assert_int_equal(rg_store_append(st, f, 100000, 1), 0);
    assert_int_equal(rg_store_gc(st, 100000), 4);
    assert_int_equal(rg__store_shape_count(st), 1);
    assert_int_equal(rg_store_gc(st, 200000), 1);
    assert_int_equal(rg__store_shape_count(st), 0);
    assert_int_equal(rg__store_symbol_count(st), 0);
    rg_store_free(st);
}

/* ---- Appending and reading samples -------------------------------------- */

static void test_append__ordering(void **state)
{
    static const struct { int64_t t; uint64_t bits; int want; } steps[] = {
        { 1000, 0x3ff0000000000000, 0 },             /* 1.0 */
        { 1000, 0x3ff0000000000000, 1 },             /* identical re-send */
        { 1000, 0x4000000000000000, RG_EDUP },       /* 2.0 at the same time */
        { 999, 0x3ff0000000000000, RG_EORDER },      /* older */
        { 2000, 0x7ff0000000000002, 0 },             /* stale marker */
        { 2000, 0x7ff0000000000002, 1 },
        { 2000, 0x7ff8000000000000, RG_EDUP },       /* NaN is not the stale marker */
        { 3000, 0x7ff8000000000000, 0 },
        { 3000, 0x7ff0000000000002, RG_EDUP },
        { 3000, 0x7ff8000000000001, RG_EDUP },       /* other NaN payload */
        { 3000, 0x7ff8000000000000, 1 },
        { 4000, 0x0000000000000000, 0 },             /* +0 */
        { 4000, 0x8000000000000000, RG_EDUP },       /* -0 compares equal, bits differ */
        { 2500, 0x0000000000000000, RG_EORDER },
        { -5, 0x0000000000000000, RG_EORDER },
        { 4001, 0xfff0000000000000, 0 },             /* -Inf */
    };
    struct rg_store *st = new_store(3600000, 10);
    struct rg_series *s = must_get(st, "a=1");
    struct rg_sample *buf = NULL;
    size_t n = 0, cap = 0, appended = 0;
    (void)state;

    for (size_t i = 0; i < N_OF(steps); i++) {
        int rc = rg_store_append(st, s, steps[i].t, t_from_bits(steps[i].bits));

        if (rc != steps[i].want)
            fail_msg("step %zu: got %d want %d", i, rc, steps[i].want);
        appended += rc == 0;
    }
    assert_int_equal(rg_store_sample_count(st), appended);
    assert_int_equal(rg_series_samples(s, INT64_MIN, INT64_MAX, &buf, &n, &cap), 0);
    assert_int_equal(n, appended);
    for (size_t i = 0, k = 0; i < N_OF(steps); i++) {
        if (steps[i].want != 0)
            continue;
        assert_int_equal(buf[k].t, steps[i].t);
        assert_int_equal(t_bits(buf[k].v), steps[i].bits);
        k++;
    }
    free(buf);
    rg_store_free(st);
}

static void test_append__nan_payloads_round_trip(void **state)
{
    static const uint64_t bits[] = {
        0x7ff0000000000002, 0x7ff8000000000000, 0xfff8000000000000, 0x7ff0000000000001,
        0x7fffffffffffffff, 0x7ff4000000000000, 0x0000000000000001, 0x8000000000000000,
    };
    struct rg_store *st = new_store(3600000, 10);
    struct rg_series *s = must_get(st, "a=1");
    struct rg_sample one;
    (void)state;

    for (size_t i = 0; i < N_OF(bits); i++)
        assert_int_equal(rg_store_append(st, s, (int64_t)i * 10, t_from_bits(bits[i])), 0);
    for (size_t i = 0; i < N_OF(bits); i++) {
        assert_int_equal(rg_series_sample_at(s, (int64_t)i * 10, (int64_t)i * 10, &one), 1);
        assert_int_equal(t_bits(one.v), bits[i]);
    }
    rg_store_free(st);
}

static void test_samples__inclusive_bounds(void **state)
{
    static const struct { int64_t mint, maxt; const char *want; int at; int64_t at_t; } cases[] = {
        { 10, 30, "10,20,30", 1, 30 },
        { 11, 29, "20", 1, 20 },
        { 20, 20, "20", 1, 20 },
        { 21, 29, "", 0, 0 },
        { 0, 9, "", 0, 0 },
        { 31, 100, "", 0, 0 },
        { 0, 10, "10", 1, 10 },
        { 30, 30, "30", 1, 30 },
        { INT64_MIN, INT64_MAX, "10,20,30", 1, 30 },
        { 30, 10, "", 0, 0 },
        { 15, 25, "20", 1, 20 },
        { 0, 25, "10,20", 1, 20 },
    };
    struct rg_store *st = new_store(3600000, 10);
    struct rg_series *s = must_get(st, "a=1");
    (void)state;

    for (int64_t t = 10; t <= 30; t += 10)
        assert_int_equal(rg_store_append(st, s, t, (double)t), 0);
    assert_int_equal(rg_series_min_time(s), 10);
    assert_int_equal(rg_series_max_time(s), 30);
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct rg_sample *buf = NULL, one;
        size_t n = 0, cap = 0, w = 0;
        char got[64] = "";

        assert_int_equal(rg_series_samples(s, cases[i].mint, cases[i].maxt, &buf, &n, &cap), 0);
        for (size_t k = 0; k < n; k++) {
            assert_true(buf[k].v == (double)buf[k].t);
            w += (size_t)snprintf(got + w, sizeof(got) - w, "%s%lld", k ? "," : "",
                                  (long long)buf[k].t);
        }
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu: got '%s' want '%s'", i, got, cases[i].want);
        assert_int_equal(rg_series_sample_at(s, cases[i].mint, cases[i].maxt, &one), cases[i].at);
        if (cases[i].at)
            assert_int_equal(one.t, cases[i].at_t);
        free(buf);
    }
    rg_store_free(st);
}

static void test_samples__appends_to_existing_buffer(void **state)
{
    struct rg_store *st = new_store(3600000, 10);
    struct rg_series *a = must_get(st, "a=1"), *b = must_get(st, "a=2");
    struct rg_sample *buf = NULL;
    size_t n = 0, cap = 0;
    (void)state;

    for (int64_t t = 0; t < 100; t++) {
        assert_int_equal(rg_store_append(st, a, t, 1), 0);
        assert_int_equal(rg_store_append(st, b, t * 2, 2), 0);
    }
    assert_int_equal(rg_series_samples(a, 10, 19, &buf, &n, &cap), 0);
    assert_int_equal(rg_series_samples(b, 10, 19, &buf, &n, &cap), 0);
    assert_int_equal(n, 15);
    assert_true(cap >= n);
    assert_int_equal(buf[9].t, 19);
    assert_int_equal(buf[10].t, 10);
    assert_true(buf[14].v == 2);
    free(buf);
    rg_store_free(st);
}

static void test_samples__wide_time_spans(void **state)
{
    /* Offsets from the first sample beyond 2^32 ms force a rebase (window still
     * narrow) or 64-bit timestamps (window wider than 49 days). */
    static const int64_t ts[] = {
        -5, 0, 1000, INT64_C(4294967295), INT64_C(4294967296), INT64_C(9000000000),
        INT64_C(9000000001), INT64_C(1700000000000), INT64_C(1700000000001),
        INT64_MAX - 1, INT64_MAX,
    };
    struct rg_store_config cfg = { INT64_MAX, 10 };
    struct rg_store *st = NULL;
    struct rg_series *s, *r;
    struct rg_sample *buf = NULL;
    size_t n = 0, cap = 0;
    (void)state;

    assert_int_equal(rg_store_new(&cfg, &st), 0);
    s = must_get(st, "a=1");
    r = must_get(st, "a=2");
    for (size_t i = 0; i < N_OF(ts); i++)
        assert_int_equal(rg_store_append(st, s, ts[i], (double)i), 0);
    assert_int_equal(rg_series_samples(s, INT64_MIN, INT64_MAX, &buf, &n, &cap), 0);
    assert_int_equal(n, N_OF(ts));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(buf[i].t, ts[i]);
        assert_true(buf[i].v == (double)i);
    }
    assert_int_equal(rg_store_append(st, s, INT64_MAX - 2, 0), RG_EORDER);
    assert_int_equal(rg_series_min_time(s), -5);
    assert_int_equal(rg_series_max_time(s), INT64_MAX);
    /* A series sliding forward in time stays exact across rebases. */
    for (int64_t k = 0; k < 40; k++)
        assert_int_equal(rg_store_append(st, r, k * INT64_C(1000000000), (double)k), 0);
    n = 0;
    assert_int_equal(rg_series_samples(r, INT64_C(5000000000), INT64_C(7000000000), &buf, &n,
                                       &cap), 0);
    assert_int_equal(n, 3);
    assert_int_equal(buf[0].t, INT64_C(5000000000));
    assert_int_equal(buf[2].t, INT64_C(7000000000));
    free(buf);
    rg_store_free(st);
}

static void test_samples__sliding_window_rebases(void **state)
{
    /* A window of about 10^9 ms sliding far past 2^32 ms from the first sample:
     * the 32-bit offsets must be rebased onto the oldest kept sample, and the ring
     * wraps around as GC drops from the front while appends go on at the back. */
    struct rg_store_config cfg = { INT64_C(1000000000), 10 };
    struct rg_store *st = NULL;
    struct rg_series *s;
    struct rg_sample *buf = NULL, one;
    size_t n, cap = 0;
    const int64_t step = INT64_C(300000000);
    (void)state;

    assert_int_equal(rg_store_new(&cfg, &st), 0);
    s = must_get(st, "a=1");
    for (int64_t k = 0; k < 60; k++) {
        int64_t t = INT64_C(-2000000000) + k * step;

        assert_int_equal(rg_store_append(st, s, t, (double)k), 0);
        assert_int_equal(rg_store_gc(st, t), 0);
        /* Kept: t - 1e9 <= t' <= t, i.e. this sample and the three before it. */
        n = 0;
        assert_int_equal(rg_series_samples(s, INT64_MIN, INT64_MAX, &buf, &n, &cap), 0);
        assert_int_equal(n, k < 3 ? k + 1 : 4);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(buf[i].t, t - (int64_t)(n - 1 - i) * step);
            assert_true(buf[i].v == (double)(k - (int64_t)(n - 1 - i)));
        }
        assert_int_equal(rg_series_sample_at(s, t - step, t - 1, &one), k > 0);
        if (k > 0)
            assert_int_equal(one.t, t - step);
    }
    free(buf);
    rg_store_free(st);
}

/* ---- Retention and garbage collection ----------------------------------- */

static void test_gc__retention(void **state)
{
    struct rg_store *st = new_store(1000, 100);
    struct rg_series *a = must_get(st, "__name__=up,job=api");
    struct rg_series *b = must_get(st, "__name__=up,job=web");
    struct rg_series *c;
    char out[256];
    int created;
    (void)state;

    for (int64_t t = 0; t <= 3000; t += 100)
        assert_int_equal(rg_store_append(st, a, t, 1), 0);
    assert_int_equal(rg_store_append(st, b, 500, 1), 0);
    assert_int_equal(rg_store_sample_count(st), 32);
    assert_int_equal(rg__store_postings_len(st, "__name__", "up"), 2);

    /* Cut-off is 2500: samples at exactly now - retention stay. */
    assert_int_equal(rg_store_gc(st, 3500), 1);
    assert_int_equal(rg_series_min_time(a), 2500);
    assert_int_equal(rg_series_max_time(a), 3000);
    assert_int_equal(rg_store_sample_count(st), 6);
    assert_int_equal(rg_store_series_count(st), 1);
    assert_int_equal(t_find(st, "__name__=up,job=web", &c), RG_ENOENT);
    assert_int_equal(rg__store_postings_len(st, "__name__", "up"), 1);
    assert_int_equal(rg__store_postings_len(st, "job", "web"), 0);
    assert_int_equal(t_select(st, "__name__=up", out, sizeof(out)), 0);
    assert_string_equal(out, "__name__=up,job=api");
    assert_int_equal(t_select(st, "job=web", out, sizeof(out)), 0);
    assert_string_equal(out, "");

    /* Appending after GC keeps the window exact, and the series can come back. */
    assert_int_equal(rg_store_append(st, a, 3100, 2), 0);
    assert_int_equal(rg_series_min_time(a), 2500);
    assert_int_equal(t_get(st, "__name__=up,job=web", &c, &created), 0);
    assert_int_equal(created, 1);
    assert_int_equal(rg_store_append(st, c, 3100, 7), 0);
    assert_int_equal(t_select(st, "__name__=up", out, sizeof(out)), 0);
    assert_string_equal(out, "__name__=up,job=api|__name__=up,job=web");

    /* Series without samples are removed by the next GC. */
    c = must_get(st, "__name__=down");
    assert_int_equal(rg_store_gc(st, 3100), 1);
    assert_int_equal(rg_store_series_count(st), 2);
    /* Everything expires. */
    assert_int_equal(rg_store_gc(st, 100000), 2);
    assert_int_equal(rg_store_series_count(st), 0);
    assert_int_equal(rg_store_sample_count(st), 0);
    assert_int_equal(rg__store_symbol_count(st), 0);
    assert_int_equal(rg__store_pair_count(st), 0);
    rg_store_free(st);
}

static void test_gc__many_series_renumbered(void **state)
{
    struct rg_store *st = new_store(100, 10000);
    struct rg_series *s[3000], *f;
    char spec[64], out[512];
    (void)state;

    for (int i = 0; i < 3000; i++) {
        snprintf(spec, sizeof(spec), "__name__=m,i=%04d,odd=%d", i, i % 2);
        s[i] = must_get(st, spec);
        /* Every tenth series stays alive; the others expire. */
        assert_int_equal(rg_store_append(st, s[i], i % 10 == 0 ? 1000 : 10, i), 0);
    }
    assert_int_equal(rg_store_gc(st, 1000), 2700);
    assert_int_equal(rg_store_series_count(st), 300);
    assert_int_equal(rg__store_postings_len(st, "__name__", "m"), 300);
    assert_int_equal(rg__store_postings_len(st, "odd", "0"), 300);
    assert_int_equal(rg__store_postings_len(st, "odd", "1"), 0);
    for (int i = 0; i < 3000; i++) {
        snprintf(spec, sizeof(spec), "__name__=m,i=%04d,odd=%d", i, i % 2);
        if (i % 10 == 0) {
            assert_int_equal(t_find(st, spec, &f), 0);
            assert_ptr_equal(f, s[i]);
        } else {
            assert_int_equal(t_find(st, spec, &f), RG_ENOENT);
        }
    }
    assert_int_equal(t_select(st, "i=~002.|2990", out, sizeof(out)), 0);
    assert_string_equal(out, "__name__=m,i=0020,odd=0|__name__=m,i=2990,odd=0");
    /* New series after renumbering are indexed after the survivors. */
    f = must_get(st, "__name__=m,i=0001,odd=1");
    assert_int_equal(rg_store_append(st, f, 1000, 1), 0);
    assert_int_equal(t_select(st, "i=~000.", out, sizeof(out)), 0);
    assert_string_equal(out, "__name__=m,i=0000,odd=0|__name__=m,i=0001,odd=1");
    assert_int_equal(t_select(st, "odd=1", out, sizeof(out)), 0);
    assert_string_equal(out, "__name__=m,i=0001,odd=1");
    rg_store_free(st);
}

static void test_limit__max_series(void **state)
{
    struct rg_store *st = new_store(1000, 3);
    struct rg_series *a = must_get(st, "a=1"), *x;
    int created = -1;
    (void)state;

    must_get(st, "a=2");
    must_get(st, "a=3");
    assert_int_equal(t_get(st, "a=4", &x, &created), RG_ELIMIT);
    assert_int_equal(created, 0);
    assert_int_equal(rg_store_series_count(st), 3);
    /* Existing series keep working at the cap. */
    assert_int_equal(t_get(st, "a=1", &x, &created), 0);
    assert_ptr_equal(x, a);
    assert_int_equal(rg_store_append(st, a, 5000, 1), 0);
    /* GC removes the two empty series, which frees room. */
    assert_int_equal(rg_store_gc(st, 5000), 2);
    assert_int_equal(t_get(st, "a=4", &x, &created), 0);
    assert_int_equal(created, 1);
    rg_store_free(st);
}

/* ---- Selection ---------------------------------------------------------- */

static const char *const select_series[] = {
    "__name__=up,instance=a,job=api",
    "__name__=up,instance=b,job=api",
    "__name__=up,instance=c,job=web",
    "__name__=up,instance=d",
    "__name__=http_requests_total,code=200,job=api",
    "__name__=http_requests_total,code=500,job=api",
    "__name__=http_requests_total,code=200,job=web,path=/x",
    "env=prod,job=api",
};

static void test_select__matchers(void **state)
{
    static const struct { const char *m; const char *want; } cases[] = {
        { "__name__=up", "__name__=up,instance=a,job=api|__name__=up,instance=b,job=api|"
                         "__name__=up,instance=c,job=web|__name__=up,instance=d" },
        { "__name__=up;job=api", "__name__=up,instance=a,job=api|__name__=up,instance=b,job=api" },
        { "__name__=nope", "" },
        { "nolabel=x", "" },
        /* != keeps series lacking the label (their value is ""). */
        { "__name__=up;job!=api", "__name__=up,instance=c,job=web|__name__=up,instance=d" },
        { "__name__=up;job!=nothing", "__name__=up,instance=a,job=api|"
          "__name__=up,instance=b,job=api|__name__=up,instance=c,job=web|"
          "__name__=up,instance=d" },
        /* ="" selects exactly the series lacking the label. */
        { "__name__=up;job=", "__name__=up,instance=d" },
        { "job=", "__name__=up,instance=d" },
        /* !="" requires the label. */
        { "__name__=up;job!=", "__name__=up,instance=a,job=api|"
          "__name__=up,instance=b,job=api|__name__=up,instance=c,job=web" },
        { "path!=", "__name__=http_requests_total,code=200,job=web,path=/x" },
        /* Regexes are anchored. */
        { "__name__=~up|http.*;job=~ap", "" },
        { "__name__=~up|http.*;job=~ap.", "__name__=http_requests_total,code=200,job=api|"
          "__name__=http_requests_total,code=500,job=api|__name__=up,instance=a,job=api|"
          "__name__=up,instance=b,job=api" },
        /* A regex matching "" also takes series lacking the label. */
        { "__name__=up;job=~web|", "__name__=up,instance=c,job=web|__name__=up,instance=d" },
        { "__name__=up;job=~.*", "__name__=up,instance=a,job=api|"
          "__name__=up,instance=b,job=api|__name__=up,instance=c,job=web|"
          "__name__=up,instance=d" },
        { "__name__=up;job=~.+", "__name__=up,instance=a,job=api|"
          "__name__=up,instance=b,job=api|__name__=up,instance=c,job=web" },
        /* !~ */
        { "__name__=up;job!~api", "__name__=up,instance=c,job=web|__name__=up,instance=d" },
        { "__name__=up;job!~.*", "" },
        { "__name__=up;job!~", "__name__=up,instance=a,job=api|"
          "__name__=up,instance=b,job=api|__name__=up,instance=c,job=web" },
        { "__name__=up;job!~.+", "__name__=up,instance=d" },
        /* Only empty-matching matchers: start from all series. */
        { "__name__=", "env=prod,job=api" },
        { "job!~api|web", "__name__=up,instance=d" },
        { "code=~|200;path=", "__name__=http_requests_total,code=200,job=api|"
          "__name__=up,instance=a,job=api|__name__=up,instance=b,job=api|"
          "__name__=up,instance=c,job=web|__name__=up,instance=d|env=prod,job=api" },
        /* Several matchers on one name intersect. */
        { "job=~a.*|w.*;job!=web;__name__!=up", "__name__=http_requests_total,code=200,job=api|"
          "__name__=http_requests_total,code=500,job=api|env=prod,job=api" },
        { "job=api;job=web", "" },
        { "__name__=http_requests_total;code!=200",
          "__name__=http_requests_total,code=500,job=api" },
        { "__name__=~.*;env!=", "env=prod,job=api" },
    };
    struct rg_store *st = new_store(3600000, 100);
    char out[2048];
    (void)state;

    for (size_t i = 0; i < N_OF(select_series); i++)
        must_get(st, select_series[i]);
    for (size_t i = 0; i < N_OF(cases); i++) {
        assert_int_equal(t_select(st, cases[i].m, out, sizeof(out)), 0);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("case %zu {%s}:\n got  %s\n want %s", i, cases[i].m, out, cases[i].want);
    }
    rg_store_free(st);
}

static void test_select__no_matchers_and_bad_args(void **state)
{
    struct rg_store *st = new_store(3600000, 100);
    struct rg_series **res = (struct rg_series **)1;
    struct rg_matcher bad = { RG_MATCH_RE, "a", "x", NULL, NULL };
    struct rg_matcher noname = { RG_MATCH_EQ, NULL, "x", NULL, NULL };
    size_t n = 7;
    (void)state;

    must_get(st, "a=1");
    assert_int_equal(rg_store_select(st, NULL, 0, &res, &n), 0);
    assert_null(res);
    assert_int_equal(n, 0);
    assert_int_equal(rg_store_select(st, &bad, 1, &res, &n), RG_EINVAL);
    assert_int_equal(rg_store_select(st, &noname, 1, &res, &n), RG_EINVAL);
    rg_store_free(st);
}

static void test_select__ordered_by_label_set(void **state)
{
    /* Inserted shuffled; labels.Compare puts a prefix first, compares names before
     * values and uses bytes ("B" < "a", "a" < "a_"). */
    static const char *const in[] = {
        "z=1", "a=2", "a=1,b=x", "a=1", "a_=0", "B=9", "a=10", "a=1,c=x", "a=1,b=w",
    };
    static const char *want = "B=9|a=1|a=1,b=w|a=1,b=x|a=1,c=x|a=10|a=2|a_=0|z=1";
    struct rg_store *st = new_store(3600000, 100);
    char out[512];
    (void)state;

    for (size_t i = 0; i < N_OF(in); i++)
        must_get(st, in[i]);
    assert_int_equal(t_select(st, "nothing=", out, sizeof(out)), 0);
    assert_string_equal(out, want);
    rg_store_free(st);
}

/* ---- Label names and values --------------------------------------------- */

struct collect_ud {
    char out[512];
    size_t w;
    int stop_after;   /* 0 = never */
    int seen;
};

static int collect_cb(const char *s, void *ud)
{
    struct collect_ud *c = ud;

    c->w += (size_t)snprintf(c->out + c->w, sizeof(c->out) - c->w, "%s%s", c->seen ? "," : "",
                             s);
    c->seen++;
    return c->stop_after && c->seen >= c->stop_after ? 42 : 0;
}

static void test_labels__names_and_values(void **state)
{
    static const struct { const char *name; const char *want; } values[] = {
        { "__name__", "http_requests_total,up" },
        { "job", "api,web" },
        { "code", "200,500" },
        { "instance", "a,b,c,d" },
        { "missing", "" },
    };
    struct rg_store *st = new_store(1000, 100);
    struct collect_ud c;
    struct rg_series *s;
    (void)state;

    for (size_t i = 0; i < N_OF(select_series); i++) {
        s = must_get(st, select_series[i]);
        assert_int_equal(rg_store_append(st, s, i == 7 ? 5000 : 10, 1), 0);
    }
    memset(&c, 0, sizeof(c));
    assert_int_equal(rg_store_label_names(st, collect_cb, &c), 0);
    assert_string_equal(c.out, "__name__,code,env,instance,job,path");
    for (size_t i = 0; i < N_OF(values); i++) {
        memset(&c, 0, sizeof(c));
        assert_int_equal(rg_store_label_values(st, values[i].name, collect_cb, &c), 0);
        assert_string_equal(c.out, values[i].want);
    }
    memset(&c, 0, sizeof(c));
    c.stop_after = 2;
    assert_int_equal(rg_store_label_names(st, collect_cb, &c), 42);
    assert_string_equal(c.out, "__name__,code");
    /* After GC only env=prod,job=api is left. */
    assert_int_equal(rg_store_gc(st, 5000), 7);
    memset(&c, 0, sizeof(c));
    assert_int_equal(rg_store_label_names(st, collect_cb, &c), 0);
    assert_string_equal(c.out, "env,job");
    memset(&c, 0, sizeof(c));
    assert_int_equal(rg_store_label_values(st, "job", collect_cb, &c), 0);
    assert_string_equal(c.out, "api");
    rg_store_free(st);
}

/* ---- Metadata ----------------------------------------------------------- */

static int meta_cb(const char *family, enum rg_metric_type type, const char *help,
                   const char *unit, void *ud)
{
    struct collect_ud *c = ud;

    c->w += (size_t)snprintf(c->out + c->w, sizeof(c->out) - c->w, "%s%s:%s:%s:%s",
                             c->seen ? "|" : "", family, rg_metric_type_name(type), help, unit);
    c->seen++;
    return c->stop_after && c->seen >= c->stop_after ? 7 : 0;
}

static void test_metadata__set_replace_sorted(void **state)
{
    struct rg_store *st = new_store(1000, 100);
    struct collect_ud c;
    char family[16] = "up";
    (void)state;

    assert_int_equal(rg_store_metadata_set(st, (struct rg_slice){ family, 2 }, RG_METRIC_GAUGE,
                                           RG_SLICE_LIT("Target up."), RG_SLICE_LIT("")), 0);
    /* The store copied the bytes. */
    memcpy(family, "zz", 2);
    assert_int_equal(rg_store_metadata_set(st, RG_SLICE_LIT("http_requests_total"),
                                           RG_METRIC_COUNTER, RG_SLICE_LIT("Requests."),
                                           RG_SLICE_LIT("requests")), 0);
    assert_int_equal(rg_store_metadata_set(st, RG_SLICE_LIT("a_seconds"), RG_METRIC_HISTOGRAM,
                                           RG_SLICE_LIT("Latency."), RG_SLICE_LIT("seconds")), 0);
    assert_int_equal(rg_store_metadata_set(st, RG_SLICE_LIT("up"), RG_METRIC_UNKNOWN,
                                           RG_SLICE_LIT("Replaced."), RG_SLICE_LIT("x")), 0);
    memset(&c, 0, sizeof(c));
    assert_int_equal(rg_store_metadata_each(st, meta_cb, &c), 0);
    assert_string_equal(c.out, "a_seconds:histogram:Latency.:seconds|"
                               "http_requests_total:counter:Requests.:requests|"
                               "up:unknown:Replaced.:x");
    memset(&c, 0, sizeof(c));
    c.stop_after = 1;
    assert_int_equal(rg_store_metadata_each(st, meta_cb, &c), 7);
    assert_true(rg_store_bytes(st) > 0);
    rg_store_free(st);
}

static void test_store__bytes_track_contents(void **state)
{
    struct rg_store *st = new_store(1000, 100000);
    size_t empty = rg_store_bytes(st), full;
    char spec[64];
    (void)state;

    for (int i = 0; i < 1000; i++) {
        struct rg_series *s;

        snprintf(spec, sizeof(spec), "__name__=m,i=%d", i);
        s = must_get(st, spec);
        for (int t = 0; t < 20; t++)
            assert_int_equal(rg_store_append(st, s, t, t), 0);
    }
    full = rg_store_bytes(st);
    /* At least the samples (12 bytes each) and the label ids are counted. */
    assert_true(full - empty >= 1000 * (20 * 12 + 16));
    assert_int_equal(rg_store_gc(st, 100000), 1000);
    assert_true(rg_store_bytes(st) < full - 1000 * 20 * 12);
    rg_store_free(st);
}

/* ---- Randomised comparison against a naive model ------------------------ */

#define M_NAMES 4
#define M_MAX 64

static const char *const m_names[M_NAMES] = { "__name__", "a", "b", "c" };
static const char *const m_values[] = { "m1", "m2", "x", "y", "zz" };
static const char *const m_patterns[] = { "x|y", "x|", ".*", ".+", "zz", "y.*", "m.", "" };

struct m_sample {
    int64_t t;
    uint64_t bits;
};

struct m_series {
    int live;
    char spec[128];
    const char *val[M_NAMES];     /* NULL when the label is absent */
    struct rg_series *s;
    struct m_sample *smp;
    size_t n, cap;
};

struct model {
    struct m_series ser[M_MAX];
    size_t live;
};

static uint64_t rng_state = 88172645463325252ULL;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static int m_cmp(const struct m_series *x, const struct m_series *y)
{
    /* Same as labels.Compare over present labels in name order. */
    size_t i = 0, j = 0;

    for (;;) {
        while (i < M_NAMES && !x->val[i])
            i++;
        while (j < M_NAMES && !y->val[j])
            j++;
        if (i == M_NAMES || j == M_NAMES)
            return (i < M_NAMES) - (j < M_NAMES);
        if (i != j)
            return i < j ? -1 : 1;
        if (strcmp(x->val[i], y->val[j]))
            return strcmp(x->val[i], y->val[j]);
        i++;
        j++;
    }
}

static int m_matches(const struct rg_matcher *m, const struct m_series *s)
{
    const char *v = "";

    for (size_t i = 0; i < M_NAMES; i++)
        if (strcmp(m_names[i], m->name) == 0 && s->val[i])
            v = s->val[i];
    switch (m->op) {
    case RG_MATCH_EQ:  return strcmp(v, m->value) == 0;
    case RG_MATCH_NE:  return strcmp(v, m->value) != 0;
    case RG_MATCH_RE:  return m->re_match(m->re, v, strlen(v));
    case RG_MATCH_NRE: return !m->re_match(m->re, v, strlen(v));
    }
    return 0;
}

/* A random live series of the model, or NULL when there is none. */
static struct m_series *m_pick(struct model *md)
{
    size_t start = rnd(M_MAX);

    for (size_t i = 0; i < M_MAX; i++) {
        struct m_series *ms = &md->ser[(start + i) % M_MAX];

        if (ms->live)
            return ms;
    }
    return NULL;
}

static void m_check_select(struct rg_store *st, struct model *md)
{
    static const char *const ops[] = { "=", "!=", "=~", "!~" };
    struct t_matchers ms;
    struct rg_series **res;
    const struct m_series *want[M_MAX];
    char spec[256];
    size_t n, nw = 0, w = 0, nm = 1 + rnd(3);

    for (size_t i = 0; i < nm; i++) {
        uint32_t op = rnd(4);
        const char *val = op >= 2 ? m_patterns[rnd(N_OF(m_patterns))]
                                  : (rnd(4) == 0 ? "" : m_values[rnd(N_OF(m_values))]);

        w += (size_t)snprintf(spec + w, sizeof(spec) - w, "%s%s%s%s", i ? ";" : "",
                              m_names[rnd(M_NAMES)], ops[op], val);
    }
    assert_int_equal(t_matchers(&ms, spec), 0);
    assert_int_equal(rg_store_select(st, ms.m, ms.n, &res, &n), 0);
    for (size_t i = 0; i < M_MAX; i++) {
        int ok = md->ser[i].live;

        for (size_t k = 0; ok && k < ms.n; k++)
            ok = m_matches(&ms.m[k], &md->ser[i]);
        if (ok)
            want[nw++] = &md->ser[i];
    }
    /* Insertion sort of the expected series by label set. */
    for (size_t i = 1; i < nw; i++)
        for (size_t k = i; k > 0 && m_cmp(want[k - 1], want[k]) > 0; k--) {
            const struct m_series *t = want[k];

            want[k] = want[k - 1];
            want[k - 1] = t;
        }
    if (n != nw)
        fail_msg("{%s}: got %zu series, want %zu", spec, n, nw);
    for (size_t i = 0; i < n; i++)
        if (res[i] != want[i]->s)
            fail_msg("{%s}: position %zu differs (want %s)", spec, i, want[i]->spec);
    free(res);
    t_matchers_free(&ms);
}

static void m_check_samples(struct m_series *ms)
{
    int64_t base = ms->n ? ms->smp[0].t : 0;
    int64_t a = base + (int64_t)rnd(80) - 20, b = a + (int64_t)rnd(60) - 5;
    struct rg_sample *buf = NULL, one;
    size_t n = 0, cap = 0, k = 0;
    const struct m_sample *last = NULL;

    assert_int_equal(rg_series_samples(ms->s, a, b, &buf, &n, &cap), 0);
    for (size_t i = 0; i < ms->n; i++) {
        if (ms->smp[i].t < a || ms->smp[i].t > b)
            continue;
        assert_true(k < n);
        assert_int_equal(buf[k].t, ms->smp[i].t);
        assert_int_equal(t_bits(buf[k].v), ms->smp[i].bits);
        last = &ms->smp[i];
        k++;
    }
    assert_int_equal(k, n);
    assert_int_equal(rg_series_sample_at(ms->s, a, b, &one), last != NULL);
    if (last) {
        assert_int_equal(one.t, last->t);
        assert_int_equal(t_bits(one.v), last->bits);
    }
    assert_int_equal(rg_series_min_time(ms->s), ms->n ? ms->smp[0].t : INT64_MAX);
    assert_int_equal(rg_series_max_time(ms->s), ms->n ? ms->smp[ms->n - 1].t : INT64_MIN);
    free(buf);
}

/* Random operations checked against a plain model; @rank_min 0 sorts every
 * selection by the store's label-set ranks, so that ranking, merging new series
 * into the ranks, holes left by collection and renumbering are all exercised. */
static void random_against_model(size_t rank_min)
{
    static const uint64_t vals[] = {
        0x3ff0000000000000, 0x4000000000000000, 0x7ff0000000000002, 0x7ff8000000000000,
    };
    const int64_t retention = 50;
    struct rg_store *st = new_store(retention, 24);
    struct model *md = calloc(1, sizeof(*md));
    int64_t now = 0;

    if (rank_min != (size_t)-1)
        rg__store_set_rank_min(st, rank_min);

    assert_non_null(md);
    for (int op = 0; op < 20000; op++) {
        uint32_t what = rnd(100);

        if (what < 25) {
            /* Get or create a random label set. */
            const char *val[M_NAMES];
            struct rg_series *s;
            size_t w = 0, slot = M_MAX, free_slot = M_MAX;
            char spec[128] = "";
            int created, rc;

            for (size_t i = 0; i < M_NAMES; i++) {
                val[i] = i == 0 ? m_values[rnd(2)]
                                : (rnd(2) ? m_values[2 + rnd(3)] : NULL);
                if (val[i])
                    w += (size_t)snprintf(spec + w, sizeof(spec) - w, "%s%s=%s",
                                          w ? "," : "", m_names[i], val[i]);
            }
            for (size_t i = 0; i < M_MAX; i++) {
                if (md->ser[i].live && strcmp(md->ser[i].spec, spec) == 0)
                    slot = i;
                if (!md->ser[i].live && free_slot == M_MAX)
                    free_slot = i;
            }
            rc = t_get(st, spec, &s, &created);
            if (slot != M_MAX) {
                assert_int_equal(rc, 0);
                assert_int_equal(created, 0);
                assert_ptr_equal(s, md->ser[slot].s);
            } else if (md->live >= 24) {
                assert_int_equal(rc, RG_ELIMIT);
            } else {
                struct m_series *ms = &md->ser[free_slot];

                assert_int_equal(rc, 0);
                assert_int_equal(created, 1);
                memset(ms, 0, sizeof(*ms));
                ms->live = 1;
                snprintf(ms->spec, sizeof(ms->spec), "%s", spec);
                memcpy(ms->val, val, sizeof(val));
                ms->s = s;
                md->live++;
            }
        } else if (what < 70) {
            /* Append near the series' newest time, sometimes before it. */
            struct m_series *ms = m_pick(md);
            int64_t t;
            uint64_t bits = vals[rnd(N_OF(vals))];
            int want, rc;

            if (!ms)
                continue;
            t = ms->n ? ms->smp[ms->n - 1].t + (int64_t)rnd(6) - 2 : now - (int64_t)rnd(10);
            if (ms->n && t < ms->smp[ms->n - 1].t)
                want = RG_EORDER;
            else if (ms->n && t == ms->smp[ms->n - 1].t)
                want = ms->smp[ms->n - 1].bits == bits ? 1 : RG_EDUP;
            else
                want = 0;
            rc = rg_store_append(st, ms->s, t, t_from_bits(bits));
            assert_int_equal(rc, want);
            if (!want) {
                if (ms->n == ms->cap) {
                    ms->cap = ms->cap ? ms->cap * 2 : 8;
                    ms->smp = realloc(ms->smp, ms->cap * sizeof(*ms->smp));
                    assert_non_null(ms->smp);
                }
                ms->smp[ms->n].t = t;
                ms->smp[ms->n].bits = bits;
                ms->n++;
                if (t > now)
                    now = t;
            }
        } else if (what < 74) {
            /* Advance time and collect. */
            size_t removed = 0;

            now += rnd(30);
            for (size_t i = 0; i < M_MAX; i++) {
                struct m_series *ms = &md->ser[i];
                size_t k = 0;

                if (!ms->live)
                    continue;
                while (k < ms->n && ms->smp[k].t < now - retention)
                    k++;
                if (k) {
                    memmove(ms->smp, ms->smp + k, (ms->n - k) * sizeof(*ms->smp));
                    ms->n -= k;
                }
                if (!ms->n) {
                    free(ms->smp);
                    memset(ms, 0, sizeof(*ms));
                    md->live--;
                    removed++;
                }
            }
            assert_int_equal(rg_store_gc(st, now), removed);
        } else if (what < 90) {
            m_check_select(st, md);
        } else {
            struct m_series *ms = m_pick(md);

            if (ms)
                m_check_samples(ms);
        }
        if (op % 97 == 0) {
            size_t samples = 0;

            for (size_t i = 0; i < M_MAX; i++)
                samples += md->ser[i].live ? md->ser[i].n : 0;
            assert_int_equal(rg_store_series_count(st), md->live);
            assert_int_equal(rg_store_sample_count(st), samples);
        }
    }
    for (size_t i = 0; i < M_MAX; i++)
        free(md->ser[i].smp);
    free(md);
    rg_store_free(st);
}

static void test_store__random_against_model(void **state)
{
    (void)state;
    random_against_model((size_t)-1);
}

static void test_store__random_against_model_ranked(void **state)
{
    (void)state;
    random_against_model(0);
}

/* Windows anywhere in rings with steady and with uneven intervals, wrapped around
 * by collection, against a plain scan of the samples. */
static void test_samples__windows_against_scan(void **state)
{
    static int64_t ts[400];
    struct rg_store *st = new_store(3000, 10);
    struct rg_series *s = must_get(st, "__name__=w");
    struct rg_sample *buf = NULL, one;
    size_t n, cap = 0, first = 0, count = 0;
    uint32_t seed = 7;
    int64_t t = 1000;
    (void)state;

    for (int round = 0; round < 4; round++) {
        /* Rounds 0 and 2 steady, 1 and 3 uneven; collection in between slides the
         * window so that the ring wraps. */
        for (int i = 0; i < 100; i++) {
            seed = seed * 1103515245u + 12345u;
            t += round % 2 ? 1 + (int64_t)(seed >> 16) % 40 : 15;
            ts[count++] = t;
            assert_int_equal(rg_store_append(st, s, t, (double)t), 0);
        }
        rg_store_gc(st, t);
        while (ts[first] < t - 3000)
            first++;
        for (int64_t a = ts[first] - 20; a <= t + 20; a += 7) {
            for (int64_t w = 0; w <= 400; w += 13) {
                size_t k = 0;
                const int64_t *last = NULL;

                n = 0;
                assert_int_equal(rg_series_samples(s, a, a + w, &buf, &n, &cap), 0);
                for (size_t i = first; i < count; i++) {
                    if (ts[i] < a || ts[i] > a + w)
                        continue;
                    assert_true(k < n);
                    assert_int_equal(buf[k].t, ts[i]);
                    k++;
                    last = &ts[i];
                }
                assert_int_equal(k, n);
                assert_int_equal(rg_series_sample_at(s, a, a + w, &one), last != NULL);
                if (last)
                    assert_int_equal(one.t, *last);
            }
        }
    }
    free(buf);
    rg_store_free(st);
}

/* Whether @m accepts value @v (NULL: the label is missing, which counts as ""). */
static int m_matches_one(const struct rg_matcher *m, const char *v)
{
    if (!v)
        v = "";
    switch (m->op) {
    case RG_MATCH_EQ:  return strcmp(v, m->value) == 0;
    case RG_MATCH_NE:  return strcmp(v, m->value) != 0;
    case RG_MATCH_RE:  return m->re_match(m->re, v, strlen(v));
    case RG_MATCH_NRE: return !m->re_match(m->re, v, strlen(v));
    }
    return 0;
}

/* A small set from "=" meets matchers whose value lists hold many more ids: the
 * store then looks at each series of the set instead of at every list. */
static void test_select__small_set_against_long_lists(void **state)
{
    static const struct {
        const char *m;
        size_t want;
    } cases[] = {
        { "__name__=m;j!=", 40 },              /* every m that has j */
        { "__name__=m;j=~.+", 40 },
        { "__name__=m;j=~[0-9]*[13579]", 20 }, /* odd j */
        { "__name__=m;j=~1.|2.", 20 },
        { "__name__=m;j=~nothing.*", 0 },
        { "__name__=n;j!=", 1950 },
    };
    struct rg_store *st = new_store(100, 10000);
    char spec[64];
    (void)state;

    for (int i = 0; i < 2000; i++) {
        if (i >= 40 && i < 50)
            snprintf(spec, sizeof(spec), "__name__=m,k=%d", i);
        else
            snprintf(spec, sizeof(spec), "__name__=%s,j=%d,k=%d", i < 40 ? "m" : "n",
                     i % 100, i);
        must_get(st, spec);
    }
    for (size_t c = 0; c < N_OF(cases); c++) {
        struct t_matchers ms;
        struct rg_series **res;
        size_t n;

        assert_int_equal(t_matchers(&ms, cases[c].m), 0);
        assert_int_equal(rg_store_select(st, ms.m, ms.n, &res, &n), 0);
        if (n != cases[c].want)
            fail_msg("{%s}: got %zu series, want %zu", cases[c].m, n, cases[c].want);
        for (size_t i = 0; i < n; i++) {
            const char *j = rg_series_label(res[i], "j");

            assert_non_null(j);
            for (size_t k = 0; k < ms.n; k++)
                assert_true(m_matches_one(&ms.m[k], rg_series_label(res[i], ms.m[k].name)));
        }
        free(res);
        t_matchers_free(&ms);
    }
    rg_store_free(st);
}

static int cache_frees;

static void cache_free(void *p)
{
    cache_frees++;
    free(p);
}

static void other_free(void *p)
{
    free(p);
}

struct since_ud {
    char seen[256];
    size_t w;
};

static int since_cb(const struct rg_series *s, void *ud)
{
    struct since_ud *u = ud;
    char buf[64];

    u->w += (size_t)snprintf(u->seen + u->w, sizeof(u->seen) - u->w, "%s%s", u->w ? "|" : "",
                             t_render(s, buf, sizeof(buf)));
    return 0;
}

static void test_cache__kept_until_series_go_away(void **state)
{
    struct rg_store *st = new_store(100, 100);
    struct rg_series *a, *b;
    struct since_ud u = { "", 0 };
    struct t_matchers ms;
    uint64_t mark;
    (void)state;

    cache_frees = 0;
    assert_null(rg_store_cache(st, cache_free));
    a = must_get(st, "__name__=a,job=x");
    rg_store_cache_set(st, malloc(8), cache_free);
    assert_non_null(rg_store_cache(st, cache_free));
    /* Only the function it was attached with finds it. */
    assert_null(rg_store_cache(st, other_free));
    /* Appends, finding existing series and collections that remove nothing keep it. */
    mark = rg_store_created_mark(st);
    assert_int_equal(rg_store_append(st, a, 10, 1), 0);
    assert_ptr_equal(must_get(st, "__name__=a,job=x"), a);
    assert_int_equal(rg_store_gc(st, 50), 0);
    assert_int_equal(rg_store_created_mark(st), mark);
    /* New series keep it too, and are listed as created since the mark. */
    b = must_get(st, "__name__=b,job=y");
    must_get(st, "__name__=c");
    assert_non_null(rg_store_cache(st, cache_free));
    assert_int_equal(cache_frees, 0);
    assert_int_equal(rg_store_created_mark(st), mark + 2);
    assert_int_equal(rg_store_created_since(st, mark, since_cb, &u), 0);
    assert_string_equal(u.seen, "__name__=b,job=y|__name__=c");
    assert_int_equal(rg_store_created_since(st, mark + 2, since_cb, &u), 0);
    assert_int_equal(t_matchers(&ms, "job=~x|y;__name__!=a"), 0);
    assert_int_equal(rg_store_series_matches(a, ms.m, ms.n), 0);
    assert_int_equal(rg_store_series_matches(b, ms.m, ms.n), 1);
    t_matchers_free(&ms);
    /* A missing label counts as "". */
    assert_int_equal(t_matchers(&ms, "job="), 0);
    assert_int_equal(rg_store_series_matches(b, ms.m, ms.n), 0);
    assert_int_equal(rg_store_series_matches(must_get(st, "__name__=c"), ms.m, ms.n), 1);
    t_matchers_free(&ms);
    /* A collection that removes series drops it, and so does replacing it. */
    assert_int_equal(rg_store_append(st, b, 200, 1), 0);
    assert_int_equal(rg_store_gc(st, 200), 2);
    assert_null(rg_store_cache(st, cache_free));
    assert_int_equal(cache_frees, 1);
    rg_store_cache_set(st, malloc(8), cache_free);
    rg_store_cache_set(st, malloc(8), other_free);
    assert_int_equal(cache_frees, 2);
    assert_null(rg_store_cache(st, cache_free));
    assert_non_null(rg_store_cache(st, other_free));
    rg_store_cache_set(st, malloc(8), cache_free);
    /* And freeing the store. */
    rg_store_free(st);
    assert_int_equal(cache_frees, 3);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks that selecting every series of @st gives the @n specs of @want, sorted
 * (with one label name per spec, byte order of the specs is label-set order). */
static void check_all_sorted(struct rg_store *st, const char **want, size_t n)
{
    static const char *made[6000];
    struct t_matchers ms;
    struct rg_series **res;
    uint32_t *visit;
    size_t got;
    char buf[64];

    /* @want comes in creation order, which the visit order must give. */
    memcpy(made, want, n * sizeof(*want));
    qsort(want, n, sizeof(*want), cmp_str);
    assert_int_equal(t_matchers(&ms, "v=~.+"), 0);
    assert_int_equal(rg_store_select(st, ms.m, ms.n, &res, &got), 0);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(t_render(res[i], buf, sizeof(buf)), want[i]);
    free(res);
    assert_int_equal(rg_store_select_visit(st, ms.m, ms.n, &res, &visit, &got), 0);
    assert_int_equal(got, n);
    assert_non_null(visit);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(t_render(res[i], buf, sizeof(buf)), want[i]);
        assert_true(visit[i] < n);
        assert_string_equal(t_render(res[visit[i]], buf, sizeof(buf)), made[i]);
    }
    free(visit);
    free(res);
    t_matchers_free(&ms);
}

static void test_select__ranks_follow_new_and_removed_series(void **state)
{
    /* Created in a scrambled order, so that ids and label order differ. */
    static char specs[6000][16];
    const char *want[6000];
    struct rg_store *st = new_store(100, 10000);
    size_t n = 0, live = 0;
    (void)state;

    for (size_t i = 0; i < 6000; i++)
        snprintf(specs[i], sizeof(specs[i]), "v=%05zu", (i * 3301) % 6000);
    /* 4000 series rank at the first selection. */
    for (; n < 4000; n++)
        assert_int_equal(rg_store_append(st, must_get(st, specs[n]), 50, 1), 0);
    for (size_t i = 0; i < n; i++)
        want[i] = specs[i];
    check_all_sorted(st, want, n);
    /* A few more are merged into the ranked ones without ranking again... */
    for (; n < 4100; n++)
        assert_int_equal(rg_store_append(st, must_get(st, specs[n]), 100, 1), 0);
    for (size_t i = 0; i < n; i++)
        want[i] = specs[i];
    check_all_sorted(st, want, n);
    /* ... many more make the store rank them all. */
    for (; n < 5000; n++)
        assert_int_equal(rg_store_append(st, must_get(st, specs[n]), 100, 1), 0);
    for (size_t i = 0; i < n; i++)
        want[i] = specs[i];
    check_all_sorted(st, want, n);
    /* Collecting the first 4000 renumbers the survivors; ranks move with them. */
    assert_int_equal(rg_store_gc(st, 151), 4000);
    for (; n < 5050; n++)
        assert_int_equal(rg_store_append(st, must_get(st, specs[n]), 160, 1), 0);
    for (size_t i = 4000; i < n; i++)
        want[live++] = specs[i];
    check_all_sorted(st, want, live);
    for (; n < 6000; n++)
        assert_int_equal(rg_store_append(st, must_get(st, specs[n]), 160, 1), 0);
    live = 0;
    for (size_t i = 4000; i < n; i++)
        want[live++] = specs[i];
    check_all_sorted(st, want, live);
    rg_store_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store__config_default),
        cmocka_unit_test(test_store__new_rejects_bad_config),
        cmocka_unit_test(test_stale__marker_bits),
        cmocka_unit_test(test_metric_type__names),
        cmocka_unit_test(test_series__get_find_created),
        cmocka_unit_test(test_series__labels_with_binary_bytes),
        cmocka_unit_test(test_intern__shared_and_released),
        cmocka_unit_test(test_series__label_counts_around_block_limit),
        cmocka_unit_test(test_shape__shared_and_released),
        cmocka_unit_test(test_append__ordering),
        cmocka_unit_test(test_append__nan_payloads_round_trip),
        cmocka_unit_test(test_samples__inclusive_bounds),
        cmocka_unit_test(test_samples__appends_to_existing_buffer),
        cmocka_unit_test(test_samples__wide_time_spans),
        cmocka_unit_test(test_samples__sliding_window_rebases),
        cmocka_unit_test(test_gc__retention),
        cmocka_unit_test(test_gc__many_series_renumbered),
        cmocka_unit_test(test_limit__max_series),
        cmocka_unit_test(test_select__matchers),
        cmocka_unit_test(test_select__no_matchers_and_bad_args),
        cmocka_unit_test(test_select__ordered_by_label_set),
        cmocka_unit_test(test_labels__names_and_values),
        cmocka_unit_test(test_metadata__set_replace_sorted),
        cmocka_unit_test(test_store__bytes_track_contents),
        cmocka_unit_test(test_store__random_against_model),
        cmocka_unit_test(test_store__random_against_model_ranked),
        cmocka_unit_test(test_select__ranks_follow_new_and_removed_series),
        cmocka_unit_test(test_select__small_set_against_long_lists),
        cmocka_unit_test(test_samples__windows_against_scan),
        cmocka_unit_test(test_cache__kept_until_series_go_away),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
