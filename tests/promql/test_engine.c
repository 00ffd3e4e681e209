/* tests/promql/test_engine.c - table-driven tests of the PromQL evaluator.
 *
 * Each case group loads a small data set into a fresh store (a compact form of
 * Prometheus' `load` notation: "name{a=\"b\"} 1 2 _ stale 0+10x5", one value per
 * step), parses queries with rg_promql_parse and compares the evaluated result
 * with the expectation: one "labels value" line per series (labels rendered as
 * name{a="b"}), "scalar v", "string s", or "error CODE substring". Values compare
 * with a relative tolerance of 1e-9 and NaN equals NaN. Range cases list one value
 * per step ("_" for no point). Expected numbers were worked out by hand from
 * Prometheus 3's documented algorithms.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "promql/ast.h"
#include "promql/engine.h"
#include "promql/eval.h"
#include "promql/labels.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

/* Case tables leave the trailing "ordered" flag out when it is 0. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define MIN 60000
#define MAXL 16

/* ---- Loading ------------------------------------------------------------- */

struct lbls {
    char buf[512];
    struct rg_label_ref r[MAXL];
    size_t n;
};

static int ref_cmp(const void *a, const void *b)
{
    const struct rg_label_ref *x = a, *y = b;
    size_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
    int d = memcmp(x->name.ptr, y->name.ptr, n);

    return d ? d : (int)x->name.len - (int)y->name.len;
}

/* Parses name{a="b",c="d"} (no escapes) into sorted refs; returns the rest. */
static const char *parse_labels(const char *p, struct lbls *l)
{
    char *w = l->buf;

    l->n = 0;
    while (*p == ' ')
        p++;
    if (*p != '{') {
        const char *s = p;

        while (*p && *p != '{' && *p != ' ')
            p++;
        strcpy(w, "__name__");
        l->r[l->n].name.ptr = w;
        l->r[l->n].name.len = 8;
        w += 9;
        memcpy(w, s, (size_t)(p - s));
        l->r[l->n].value.ptr = w;
        l->r[l->n].value.len = (size_t)(p - s);
        w += p - s + 1;
        l->n++;
    }
    if (*p == '{') {
        p++;
        while (*p && *p != '}') {
            const char *ns = p, *vs;

            while (*p != '=')
                p++;
            memcpy(w, ns, (size_t)(p - ns));
            l->r[l->n].name.ptr = w;
            l->r[l->n].name.len = (size_t)(p - ns);
            w += p - ns + 1;
            p += 2;
            vs = p;
            while (*p != '"')
                p++;
            memcpy(w, vs, (size_t)(p - vs));
            l->r[l->n].value.ptr = w;
            l->r[l->n].value.len = (size_t)(p - vs);
            w += p - vs + 1;
            l->n++;
            p++;
            while (*p == ',' || *p == ' ')
                p++;
        }
        p++;
    }
    qsort(l->r, l->n, sizeof(l->r[0]), ref_cmp);
    return p;
}

/* Loads "load <step seconds>" blocks: each following line is a series and values. */
static struct rg_store *load(const char *data)
{
    struct rg_store_config cfg;
    struct rg_store *st;
    int64_t step = MIN;
    const char *line = data;

    rg_store_config_default(&cfg);
    cfg.retention_ms = INT64_C(1) << 50;
    assert_int_equal(rg_store_new(&cfg, &st), 0);
    while (*line) {
        const char *eol = strchr(line, '\n');
        char buf[2048];
        size_t len = eol ? (size_t)(eol - line) : strlen(line);

        assert_true(len < sizeof(buf));
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = eol ? eol + 1 : line + len;
        if (strncmp(buf, "load ", 5) == 0) {
            step = strtoll(buf + 5, NULL, 10) * 1000;
        } else if (buf[0]) {
            struct lbls l;
            struct rg_series *s;
            const char *p = parse_labels(buf, &l);
            int64_t t = 0;

            assert_int_equal(rg_store_series_get(st, l.r, l.n, &s, NULL), 0);
            while (*p) {
                char tok[64], *x;
                int n = 0;

                while (*p == ' ')
                    p++;
                if (!*p)
                    break;
                while (*p && *p != ' ' && n < 63)
                    tok[n++] = *p++;
                tok[n] = '\0';
                if (strcmp(tok, "_") == 0) {
                    t += step;
                    continue;
                }
                if (strcmp(tok, "stale") == 0) {
                    assert_int_equal(rg_store_append(st, s, t, rg_stale_nan()), 0);
                    t += step;
                    continue;
                }
                x = strchr(tok + 1, 'x');
                if (x && (strchr(tok + 1, '+') || strchr(tok + 1, '-'))) {
                    double a = strtod(tok, &x), b;
                    long k, i;

                    b = strtod(x, &x);
                    k = strtol(x + 1, NULL, 10);
                    for (i = 0; i <= k; i++, t += step) {
                        assert_int_equal(rg_store_append(st, s, t, a), 0);
                        a += b;
                    }
                    continue;
                }
                assert_int_equal(rg_store_append(st, s, t, strtod(tok, NULL)), 0);
                t += step;
            }
        }
    }
    return st;
}

/* ---- Rendering and comparing ----------------------------------------------- */

static void render_labels(const struct rg_promql_series *s, struct rg_buf *b)
{
    size_t i, k = 0;
    int named = 0;

    for (i = 0; i < s->nlabels; i++) {
        if (strcmp(s->labels[i].name, "__name__") == 0) {
            rg_buf_puts(b, s->labels[i].value);
            named = 1;
        }
    }
    /* A bare metric name renders without braces, as Prometheus prints it. */
    if (named && s->nlabels == 1)
        return;
    rg_buf_putc(b, '{');
    for (i = 0; i < s->nlabels; i++) {
        if (strcmp(s->labels[i].name, "__name__") == 0)
            continue;
        rg_buf_printf(b, "%s%s=\"%s\"", k++ ? ", " : "", s->labels[i].name,
                      s->labels[i].value);
    }
    rg_buf_putc(b, '}');
}

static int vals_equal(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (a == b)
        return 1;
    return fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b));
}

static double num(const char *s)
{
    if (strcmp(s, "NaN") == 0)
        return NAN;
    return strtod(s, NULL);
}

struct line {
    char labels[512];
    char rest[1024];
};

static size_t split_lines(const char *want, struct line *out, size_t cap)
{
    size_t n = 0;

    while (want && *want && n < cap) {
        const char *eol = strchr(want, '\n'), *sp;
        size_t len = eol ? (size_t)(eol - want) : strlen(want);

        sp = memchr(want, '}', len);
        sp = sp ? sp + 1 : memchr(want, ' ', len);
        assert_non_null(sp);
        snprintf(out[n].labels, sizeof(out[n].labels), "%.*s", (int)(sp - want), want);
        while (*sp == ' ')
            sp++;
        snprintf(out[n].rest, sizeof(out[n].rest), "%.*s", (int)(len - (size_t)(sp - want)),
                 sp);
        n++;
        want = eol ? eol + 1 : want + len;
    }
    return n;
}

static const char *code_name(int rc)
{
    return rg_err_name(rc);
}

/* Checks @res/@rc against @want; on mismatch prints both and fails. */
static void check(const char *q, int rc, const struct rg_buf *err,
                  const struct rg_promql_result *res, const char *want, int ordered,
                  int64_t start, int64_t step, size_t nsteps)
{
    struct line lines[64];
    size_t n, i, j;
    struct rg_buf b = { 0 };
    int ok = 1;

    if (strncmp(want, "error ", 6) == 0) {
        char code[32];
        const char *sub = strchr(want + 6, ' ');

        snprintf(code, sizeof(code), "%.*s", (int)(sub - want - 6), want + 6);
        if (rc == 0 || strcmp(code_name(rc), code) != 0 || !err->data ||
            !strstr(err->data, sub + 1)) {
            print_error("%s: want %s, got rc=%s err=%s\n", q, want, code_name(rc),
                        err->data ? err->data : "");
            fail();
        }
        return;
    }
    if (rc != 0) {
        print_error("%s: unexpected error %s: %s\n", q, code_name(rc),
                    err->data ? err->data : "");
        fail();
    }
    if (strncmp(want, "scalar ", 7) == 0) {
        if (res->type != RG_PROMQL_VT_SCALAR || !vals_equal(res->scalar, num(want + 7))) {
            print_error("%s: want %s, got type %d value %.17g\n", q, want, res->type,
                        res->scalar);
            fail();
        }
        return;
    }
    if (strncmp(want, "string ", 7) == 0) {
        assert_int_equal(res->type, RG_PROMQL_VT_STRING);
        assert_string_equal(res->string, want + 7);
        return;
    }
    n = split_lines(want, lines, 64);
    if (res->nseries != n)
        ok = 0;
    for (i = 0; ok && i < n; i++) {
        int found = 0;

        for (j = 0; j < res->nseries; j++) {
            const struct rg_promql_series *s = &res->series[j];
            char tok[64];
            const char *p = lines[i].rest;
            size_t k, pi = 0;
            int same = 1;

            if (ordered && j != i)
                continue;
            rg_buf_reset(&b);
            render_labels(s, &b);
            if (strcmp(b.data, lines[i].labels) != 0)
                continue;
            found = 1;
            if (nsteps == 0) {
                same = s->npoints == 1 && vals_equal(s->points[0].v, num(p));
            } else {
                for (k = 0; k < nsteps; k++) {
                    int m = 0;

                    while (*p == ' ')
                        p++;
                    while (*p && *p != ' ' && m < 63)
                        tok[m++] = *p++;
                    tok[m] = '\0';
                    if (strcmp(tok, "_") == 0) {
                        if (pi < s->npoints && s->points[pi].t == start + (int64_t)k * step)
                            same = 0;
                        continue;
                    }
                    if (pi >= s->npoints || s->points[pi].t != start + (int64_t)k * step ||
                        !vals_equal(s->points[pi].v, num(tok)))
                        same = 0;
                    pi++;
                }
                if (pi != s->npoints)
                    same = 0;
            }
            if (!same)
                ok = 0;
            break;
        }
        if (!found)
            ok = 0;
    }
    if (!ok) {
        print_error("%s: want\n%s\ngot type %d:\n", q, want, res->type);
        for (j = 0; j < res->nseries; j++) {
            rg_buf_reset(&b);
            render_labels(&res->series[j], &b);
            print_error("  %s", b.data);
            for (i = 0; i < res->series[j].npoints; i++)
                print_error(" %.17g@%lld", res->series[j].points[i].v,
                            (long long)res->series[j].points[i].t);
            print_error("\n");
        }
        rg_buf_cleanup(&b);
        fail();
    }
    rg_buf_cleanup(&b);
}

struct icase {
    const char *q;
    int64_t t;
    const char *want;
    int ordered;
};

static struct rg_promql_node *parse(const char *q)
{
    struct rg_promql_node *n = NULL;
    char err[256];
    int rc = rg_promql_parse(q, &n, err, sizeof(err));

    if (rc) {
        print_error("parse %s: %s\n", q, err);
        fail();
    }
    return n;
}

static void run_instant(const char *data, const struct icase *cases, size_t n,
                        const struct rg_promql_opts *opts)
{
    struct rg_store *st = load(data);
    size_t i;

    for (i = 0; i < n; i++) {
        struct rg_promql_node *expr = parse(cases[i].q);
        struct rg_promql_result res;
        struct rg_buf err = { 0 };
        int rc = rg_promql_eval_instant(st, expr, cases[i].t, opts, &res, &err);

        check(cases[i].q, rc, &err, &res, cases[i].want, cases[i].ordered, 0, 0, 0);
        rg_promql_result_free(&res);
        rg_buf_cleanup(&err);
        rg_promql_node_free(expr);
    }
    rg_store_free(st);
}

#define RUN(data, cases) run_instant(data, cases, sizeof(cases) / sizeof(cases[0]), NULL)

/* ---- Selectors ------------------------------------------------------------- */

static const char *sel_data =
    "load 60\n"
    "m{a=\"1\"} 1 2 _ _ _ _ _ _ 9\n"
    "m{a=\"2\"} 1 stale 3\n"
    "lin 0+1x20\n";

static void test_engine__selectors(void **state)
{
    static const struct icase cases[] = {
        { "m", 1 * MIN, "m{a=\"1\"} 2" },
        { "m", 2 * MIN, "m{a=\"1\"} 2\nm{a=\"2\"} 3" },
        /* The lookback window is left-open: a sample exactly 5m old is gone. */
        { "m", 6 * MIN, "m{a=\"2\"} 3" },
        { "m", 6 * MIN - 1, "m{a=\"1\"} 2\nm{a=\"2\"} 3" },
        { "m", 7 * MIN + 1, "" },
        { "m{a=\"1\"}", 8 * MIN, "m{a=\"1\"} 9" },
        { "m{a!=\"1\"}", 2 * MIN, "m{a=\"2\"} 3" },
        { "m{a=~\"1|2\"}", 2 * MIN, "m{a=\"1\"} 2\nm{a=\"2\"} 3" },
        { "m{a!~\"1\"}", 2 * MIN, "m{a=\"2\"} 3" },
        { "{__name__=\"m\", a=\"2\"}", 2 * MIN, "m{a=\"2\"} 3" },
        { "nothing", 2 * MIN, "" },
        /* Offset moves the reference time back; the stale marker then hides a="2". */
        { "m offset 1m", 2 * MIN, "m{a=\"1\"} 2" },
        { "m offset -1m", 1 * MIN, "m{a=\"1\"} 2\nm{a=\"2\"} 3" },
        { "m @ 60", 100 * MIN, "m{a=\"1\"} 2" },
        { "m @ 180 offset 1m", 0, "m{a=\"1\"} 2\nm{a=\"2\"} 3" },
        { "m @ start()", 2 * MIN, "m{a=\"1\"} 2\nm{a=\"2\"} 3" },
        { "m @ end()", 1 * MIN, "m{a=\"1\"} 2" },
        /* Range selectors: (T - r, T], stale markers removed. */
        { "count_over_time(m[2m])", 2 * MIN, "{a=\"1\"} 1\n{a=\"2\"} 1" },
        { "count_over_time(m[2m])", 2 * MIN + 1, "{a=\"1\"} 1\n{a=\"2\"} 1" },
        { "count_over_time(m[3m])", 2 * MIN, "{a=\"1\"} 2\n{a=\"2\"} 2" },
        { "count_over_time(lin[5m])", 10 * MIN, "{} 5" },
        { "count_over_time(lin[5m] offset 5m)", 10 * MIN, "{} 5" },
        { "sum_over_time(lin[5m] offset 5m)", 10 * MIN, "{} 15" },
        { "sum_over_time(lin[2m] @ 300)", 10 * MIN, "{} 9" },
        { "lin", 24 * MIN, "lin 20" },
        { "lin", 25 * MIN, "" },
        { "\"hello\"", 0, "string hello" },
        { "42", 0, "scalar 42" },
        { "-(1)", 0, "scalar -1" },
    };

    (void)state;
    RUN(sel_data, cases);
}

static void test_engine__matrix_result(void **state)
{
    struct rg_store *st = load(sel_data);
    struct rg_promql_node *e = parse("m[3m]");
    struct rg_promql_result res;
    struct rg_buf err = { 0 };

    (void)state;
    assert_int_equal(rg_promql_eval_instant(st, e, 2 * MIN, NULL, &res, &err), 0);
    assert_int_equal(res.type, RG_PROMQL_VT_MATRIX);
    assert_int_equal(res.nseries, 2);
    assert_int_equal(res.series[0].npoints, 2);
    assert_int_equal(res.series[0].points[0].t, 0);
    assert_int_equal(res.series[0].points[1].t, MIN);
    /* a="2": 1@0 and 3@2m, the stale marker at 1m is not part of the range. */
    assert_int_equal(res.series[1].npoints, 2);
    assert_true(res.series[1].points[1].v == 3);
    assert_string_equal(res.series[1].labels[0].name, "__name__");
    assert_string_equal(res.series[1].labels[1].value, "2");
    rg_promql_result_free(&res);
    rg_promql_result_free(&res);
    rg_promql_result_free(NULL);
    rg_promql_node_free(e);
    rg_buf_cleanup(&err);
    rg_store_free(st);
}

/* ---- Subqueries -------------------------------------------------------------- */

static void test_engine__subqueries(void **state)
{
    static const struct icase cases[] = {
        { "sum_over_time(lin[5m:1m])", 10 * MIN, "{} 40" },
        { "sum_over_time(lin[5m:1m])", 10 * MIN + 30000, "{} 40" },
        /* Steps are absolute multiples of the step inside (T - range, T]. */
        { "count_over_time(lin[5m:2m])", 10 * MIN, "{} 3" },
        { "max_over_time(lin[5m:2m])", 10 * MIN, "{} 10" },
        { "min_over_time(lin[5m:2m])", 10 * MIN, "{} 6" },
        { "count_over_time(lin[5m:2m])", 11 * MIN, "{} 2" },
        { "sum_over_time(lin[5m:1m] offset 2m)", 10 * MIN, "{} 30" },
        { "sum_over_time(lin[2m:1m] @ 300)", 10 * MIN, "{} 9" },
        /* No step: the default of one minute. */
        { "count_over_time(lin[5m:])", 10 * MIN, "{} 5" },
        { "rate(lin[5m:1m])", 10 * MIN, "{} 0.016666666666666666" },
        { "sum_over_time((lin * 2)[3m:1m])", 10 * MIN, "{} 54" },
        { "max_over_time(rate(lin[2m])[4m:1m])", 10 * MIN, "{} 0.016666666666666666" },
        { "sum_over_time(sum_over_time(lin[2m:1m])[2m:1m])", 10 * MIN, "{} 36" },
        { "count_over_time(m[5m:1m])", 3 * MIN, "{a=\"1\"} 4\n{a=\"2\"} 3" },
        { "last_over_time(m[5m:1m])", 3 * MIN, "m{a=\"1\"} 2\nm{a=\"2\"} 3" },
    };

    (void)state;
    RUN(sel_data, cases);
}

/* ---- Binary operators --------------------------------------------------------- */

static const char *bin_data =
    "load 60\n"
    "a{x=\"1\", y=\"a\"} 10\n"
    "a{x=\"2\", y=\"b\"} 20\n"
    "b{x=\"1\", y=\"c\"} 2\n"
    "b{x=\"2\", y=\"d\"} 4\n"
    "c{x=\"1\"} 3\n"
    "d{x=\"1\"} 1\n"
    "e{x=\"1\"} 2\n";

static void test_engine__binary_scalar(void **state)
{
    static const struct icase cases[] = {
        { "1 + 2", 0, "scalar 3" },
        { "1 - 2", 0, "scalar -1" },
        { "3 * 4", 0, "scalar 12" },
        { "1 / 4", 0, "scalar 0.25" },
        { "1 / 0", 0, "scalar Inf" },
        { "-1 / 0", 0, "scalar -Inf" },
        { "0 / 0", 0, "scalar NaN" },
        { "5 % 3", 0, "scalar 2" },
        { "-5 % 3", 0, "scalar -2" },
        { "5.5 % 2", 0, "scalar 1.5" },
        { "2 ^ 10", 0, "scalar 1024" },
        { "2 ^ 3 ^ 2", 0, "scalar 512" },
        { "1 atan2 1", 0, "scalar 0.7853981633974483" },
        { "1 == bool 1", 0, "scalar 1" },
        { "1 != bool 1", 0, "scalar 0" },
        { "2 > bool 1", 0, "scalar 1" },
        { "2 < bool 1", 0, "scalar 0" },
        { "2 >= bool 2", 0, "scalar 1" },
        { "2 <= bool 1", 0, "scalar 0" },
        { "NaN == bool NaN", 0, "scalar 0" },
        /* vector op scalar */
        { "a + 1", 0, "{x=\"1\", y=\"a\"} 11\n{x=\"2\", y=\"b\"} 21" },
        { "1 - a", 0, "{x=\"1\", y=\"a\"} -9\n{x=\"2\", y=\"b\"} -19" },
        { "a / 0", 0, "{x=\"1\", y=\"a\"} Inf\n{x=\"2\", y=\"b\"} Inf" },
        { "a % 3", 0, "{x=\"1\", y=\"a\"} 1\n{x=\"2\", y=\"b\"} 2" },
        { "a ^ 2", 0, "{x=\"1\", y=\"a\"} 100\n{x=\"2\", y=\"b\"} 400" },
        { "a atan2 0", 0, "{x=\"1\", y=\"a\"} 1.5707963267948966\n"
                          "{x=\"2\", y=\"b\"} 1.5707963267948966" },
        /* Comparisons filter and keep the name; bool gives 0/1 and drops it. */
        { "a > 15", 0, "a{x=\"2\", y=\"b\"} 20" },
        { "a == 10", 0, "a{x=\"1\", y=\"a\"} 10" },
        { "a != 10", 0, "a{x=\"2\", y=\"b\"} 20" },
        { "a < 15", 0, "a{x=\"1\", y=\"a\"} 10" },
        { "a >= 20", 0, "a{x=\"2\", y=\"b\"} 20" },
        { "a <= 9", 0, "" },
        { "15 < a", 0, "a{x=\"2\", y=\"b\"} 20" },
        { "15 > a", 0, "a{x=\"1\", y=\"a\"} 10" },
        { "a > bool 15", 0, "{x=\"1\", y=\"a\"} 0\n{x=\"2\", y=\"b\"} 1" },
        { "15 > bool a", 0, "{x=\"1\", y=\"a\"} 1\n{x=\"2\", y=\"b\"} 0" },
        { "-a", 0, "{x=\"1\", y=\"a\"} -10\n{x=\"2\", y=\"b\"} -20" },
        { "-{__name__=~\"d|e\"}", 0, "error RG_EEXEC same labelset" },
        { "{__name__=~\"d|e\"} * 2", 0,
          "error RG_EEXEC vector cannot contain metrics with the same labelset" },
        { "{__name__=~\"d|e\"} > 0", 0, "d{x=\"1\"} 1\ne{x=\"1\"} 2" },
        { "{__name__=~\"d|e\"} > bool 0", 0, "error RG_EEXEC same labelset" },
    };

    (void)state;
    RUN(bin_data, cases);
}

static void test_engine__binary_vector(void **state)
{
    static const struct icase cases[] = {
        /* Without modifiers all labels but the name must match. */
        { "a / b", 0, "" },
        { "a / on(x) b", 0, "{x=\"1\"} 5\n{x=\"2\"} 5" },
        { "a / ignoring(y) b", 0, "{x=\"1\"} 5\n{x=\"2\"} 5" },
        { "a - ignoring(y) b", 0, "{x=\"1\"} 8\n{x=\"2\"} 16" },
        { "a > on(x) b", 0, "{x=\"1\"} 10\n{x=\"2\"} 20" },
        { "a > ignoring(y) b", 0, "a{x=\"1\"} 10\na{x=\"2\"} 20" },
        { "b > ignoring(y) a", 0, "" },
        { "a > bool on(x) b", 0, "{x=\"1\"} 1\n{x=\"2\"} 1" },
        { "a + on(x) c", 0, "{x=\"1\"} 13" },
        { "c == on(x) d + 2", 0, "{x=\"1\"} 3" },
        /* Many-to-one with include labels taken from the "one" side. */
        { "a * on(x) group_left(y) b", 0, "{x=\"1\", y=\"c\"} 20\n{x=\"2\", y=\"d\"} 80" },
        { "a * on(x) group_left c", 0, "{x=\"1\", y=\"a\"} 30" },
        { "c * on(x) group_right a", 0, "{x=\"1\", y=\"a\"} 30" },
        { "c - on(x) group_right a", 0, "{x=\"1\", y=\"a\"} -7" },
        { "c < on(x) group_right a", 0, "a{x=\"1\", y=\"a\"} 3" },
        { "a > on(x) group_left c", 0, "a{x=\"1\", y=\"a\"} 10" },
        /* Matching errors. */
        { "a + on() b", 0,
          "error RG_EEXEC found duplicate series for the match group {} on the right "
          "hand-side of the operation: [{__name__=\"b\", x=\"2\", y=\"d\"}, "
          "{__name__=\"b\", x=\"1\", y=\"c\"}];many-to-many matching not allowed: matching "
          "labels must be unique on one side" },
        { "b + on() group_right a", 0,
          "error RG_EEXEC on the left hand-side of the operation" },
        { "a + on() c", 0,
          "error RG_EEXEC multiple matches for labels: many-to-one matching must be "
          "explicit (group_left/group_right)" },
        { "{__name__=~\"d|e\"} + on(x) group_left c", 0,
          "error RG_EEXEC multiple matches for labels: grouping labels must ensure unique "
          "matches" },
        { "nothing + on() b", 0, "" },
        /* Cardinality is checked before a comparison filters. */
        { "a > on() c", 0,
          "error RG_EEXEC multiple matches for labels: many-to-one matching must be explicit" },
        { "a > on() group_left c", 0, "a{x=\"1\", y=\"a\"} 10\na{x=\"2\", y=\"b\"} 20" },
        { "a > 100 + on() c", 0, "" },
        /* Set operators. */
        { "a and b", 0, "" },
        { "a and on(x) b", 0, "a{x=\"1\", y=\"a\"} 10\na{x=\"2\", y=\"b\"} 20" },
        { "a and on(x) c", 0, "a{x=\"1\", y=\"a\"} 10" },
        { "a and ignoring(y) c", 0, "a{x=\"1\", y=\"a\"} 10" },
        { "a unless on(x) c", 0, "a{x=\"2\", y=\"b\"} 20" },
        { "a unless b", 0, "a{x=\"1\", y=\"a\"} 10\na{x=\"2\", y=\"b\"} 20" },
        { "c or on(x) a", 0, "c{x=\"1\"} 3\na{x=\"2\", y=\"b\"} 20" },
        { "a or b", 0,
          "a{x=\"1\", y=\"a\"} 10\na{x=\"2\", y=\"b\"} 20\nb{x=\"1\", y=\"c\"} 2\n"
          "b{x=\"2\", y=\"d\"} 4" },
        { "d or e", 0, "d{x=\"1\"} 1" },
        { "nothing or c", 0, "c{x=\"1\"} 3" },
        { "(a + 1) or on(x) c", 0, "{x=\"1\", y=\"a\"} 11\n{x=\"2\", y=\"b\"} 21" },
    };

    (void)state;
    RUN(bin_data, cases);
}

/* ---- Aggregations -------------------------------------------------------------- */

static const char *agg_data =
    "load 60\n"
    "v{job=\"a\", i=\"1\"} 1\n"
    "v{job=\"a\", i=\"2\"} 2\n"
    "v{job=\"a\", i=\"3\"} 3\n"
    "v{job=\"b\", i=\"1\"} 10\n"
    "v{job=\"b\", i=\"2\"} 20\n"
    "w{k=\"1\"} NaN\n"
    "w{k=\"2\"} 5\n"
    "w{k=\"3\"} 3\n"
    "cv{k=\"1\"} 1\n"
    "cv{k=\"2\"} 1\n"
    "cv{k=\"3\"} 2.5\n"
    "big{k=\"1\"} 1e308\n"
    "big{k=\"2\"} 1e308\n"
    "big{k=\"3\"} -1e308\n"
    "bigs 1e308 1e308 -1e308\n"
    "kh{k=\"1\"} 1e100\n"
    "kh{k=\"2\"} 1\n"
    "kh{k=\"3\"} -1e100\n";

static void test_engine__aggregations(void **state)
{
    static const struct icase cases[] = {
        { "sum(v)", 0, "{} 36" },
        { "sum by (job) (v)", 0, "{job=\"a\"} 6\n{job=\"b\"} 30" },
        { "sum(v) by (job)", 0, "{job=\"a\"} 6\n{job=\"b\"} 30" },
        { "sum without (job) (v)", 0, "{i=\"1\"} 11\n{i=\"2\"} 22\n{i=\"3\"} 3" },
        { "sum without (i, job) (v)", 0, "{} 36" },
        { "sum by (__name__) (v)", 0, "v 36" },
        { "sum by (nope) (v)", 0, "{} 36" },
        /* Kahan summation keeps the 1 that naive addition loses. */
        { "sum(kh)", 0, "{} 1" },
        { "avg by (job) (v)", 0, "{job=\"a\"} 2\n{job=\"b\"} 15" },
        { "avg(kh)", 0, "{} 0.3333333333333333" },
        /* The sum overflows: avg switches to an incremental mean. */
        { "avg(big)", 0, "{} 3.333333333333333e307" },
        { "avg(big{k!=\"3\"})", 0, "{} 1e308" },
        /* The same algorithm as avg_over_time. */
        { "avg_over_time(bigs[3m])", 2 * MIN, "{} 3.333333333333333e307" },
        { "min by (job) (v)", 0, "{job=\"a\"} 1\n{job=\"b\"} 10" },
        { "max by (job) (v)", 0, "{job=\"a\"} 3\n{job=\"b\"} 20" },
        { "max(w)", 0, "{} 5" },
        { "min(w)", 0, "{} 3" },
        { "max(w{k=\"1\"})", 0, "{} NaN" },
        { "count(v)", 0, "{} 5" },
        { "count by (job) (v)", 0, "{job=\"a\"} 3\n{job=\"b\"} 2" },
        { "count(nothing)", 0, "" },
        { "group by (job) (v)", 0, "{job=\"a\"} 1\n{job=\"b\"} 1" },
        { "stddev by (job) (v)", 0, "{job=\"a\"} 0.816496580927726\n{job=\"b\"} 5" },
        { "stdvar by (job) (v)", 0, "{job=\"a\"} 0.6666666666666666\n{job=\"b\"} 25" },
        { "stddev(w)", 0, "{} NaN" },
        { "stdvar(cv)", 0, "{} 0.5" },
        { "quantile(0.5, v)", 0, "{} 3" },
        { "quantile by (job) (0.5, v)", 0, "{job=\"a\"} 2\n{job=\"b\"} 15" },
        { "quantile(0.25, v)", 0, "{} 2" },
        { "quantile(2, v)", 0, "{} Inf" },
        { "quantile(-1, v)", 0, "{} -Inf" },
        /* topk/bottomk keep labels and come out best first. */
        { "topk(2, v)", 0, "v{i=\"2\", job=\"b\"} 20\nv{i=\"1\", job=\"b\"} 10", 1 },
        { "bottomk(2, v)", 0, "v{i=\"1\", job=\"a\"} 1\nv{i=\"2\", job=\"a\"} 2", 1 },
        { "topk by (job) (1, v)", 0, "v{i=\"3\", job=\"a\"} 3\nv{i=\"2\", job=\"b\"} 20" },
        { "bottomk by (job) (1, v)", 0, "v{i=\"1\", job=\"a\"} 1\nv{i=\"1\", job=\"b\"} 10" },
        { "topk(0, v)", 0, "" },
        { "topk(-1, v)", 0, "" },
        { "count(topk(100, v))", 0, "{} 5" },
        { "topk(1.9, v)", 0, "v{i=\"2\", job=\"b\"} 20" },
        { "topk(scalar(cv{k=\"1\"}), v)", 0, "v{i=\"2\", job=\"b\"} 20" },
        { "topk(2, w)", 0, "w{k=\"2\"} 5\nw{k=\"3\"} 3", 1 },
        { "bottomk(1, w)", 0, "w{k=\"3\"} 3" },
        { "topk(NaN, v)", 0, "error RG_EEXEC Scalar value NaN overflows int64" },
        { "count_values(\"val\", cv)", 0, "{val=\"1\"} 2\n{val=\"2.5\"} 1" },
        { "count_values by (k) (\"val\", cv)", 0,
          "{k=\"1\", val=\"1\"} 1\n{k=\"2\", val=\"1\"} 1\n{k=\"3\", val=\"2.5\"} 1" },
        { "count_values without (k) (\"val\", cv)", 0, "{val=\"1\"} 2\n{val=\"2.5\"} 1" },
        { "count_values(\"val\", kh{k=\"2\"})", 0, "{val=\"1\"} 1" },
        { "count_values(\"\", cv)", 0, "error RG_EEXEC invalid label name" },
        { "count(limitk(2, v))", 0, "{} 2" },
        { "limitk(2, v)", 0, "v{i=\"1\", job=\"a\"} 1\nv{i=\"1\", job=\"b\"} 10" },
        { "count(limitk by (job) (1, v))", 0, "{} 2" },
        { "limitk(0, v)", 0, "" },
        { "count(limit_ratio(1, v))", 0, "{} 5" },
        { "count(limit_ratio(-1, v))", 0, "{} 5" },
        { "limit_ratio(0, v)", 0, "" },
        /* A ratio and its negative complement split the series between them. */
        { "count(limit_ratio(0.5, v) or limit_ratio(-0.5, v))", 0, "{} 5" },
        { "count(limit_ratio(0.5, v) and limit_ratio(-0.5, v))", 0, "" },
        { "count(limit_ratio(2, v))", 0, "{} 5" },
        { "limit_ratio(NaN, v)", 0, "error RG_EEXEC Ratio value NaN is NaN" },
        { "sum(sum by (job) (v))", 0, "{} 36" },
    };

    (void)state;
    RUN(agg_data, cases);
}

/* ---- Functions ------------------------------------------------------------------ */

static const char *fn_data =
    "load 60\n"
    "ctr{i=\"1\"} 0+10x10\n"
    "g{i=\"1\"} 5 3 8 2 9\n"
    "neg{i=\"1\"} -2.5\n"
    "rc 0 10 20 5 15\n"
    "v{job=\"a\", i=\"1\"} 1\n"
    "v{job=\"a\", i=\"2\"} 2\n"
    "w{k=\"1\"} NaN\n"
    "w{k=\"2\"} 5\n"
    "w{k=\"3\"} 3\n"
    "nat{n=\"a10\"} 1\n"
    "nat{n=\"a2\"} 2\n"
    "nat{n=\"a1\"} 3\n"
    "nat{n=\"b\"} 4\n"
    "h_bucket{job=\"x\", le=\"1\"} 10\n"
    "h_bucket{job=\"x\", le=\"2.0e0\"} 20\n"
    "h_bucket{job=\"x\", le=\"+Inf\"} 20\n"
    "h_bucket{job=\"y\", le=\"1\"} 0\n"
    "h_bucket{job=\"y\", le=\"+Inf\"} 4\n"
    "hm_bucket{le=\"1\"} 10\n"
    "hm_bucket{le=\"2\"} 5\n"
    "hm_bucket{le=\"+Inf\"} 12\n"
    "hb_bucket{le=\"abc\"} 1\n"
    "hb_bucket{le=\"+Inf\"} 1\n"
    "up{job=\"api-server\", instance=\"host1:9090\"} 1\n"
    "up{job=\"app\", instance=\"host2\"} 0\n";

static void test_engine__range_functions(void **state)
{
    static const struct icase cases[] = {
        { "rate(ctr[5m])", 10 * MIN, "{i=\"1\"} 0.16666666666666666" },
        { "increase(ctr[5m])", 10 * MIN, "{i=\"1\"} 50" },
        { "delta(ctr[5m])", 10 * MIN, "{i=\"1\"} 50" },
        { "rate(ctr[5m] offset 5m)", 10 * MIN, "{i=\"1\"} 0.16666666666666666" },
        { "rate(ctr[1m])", 10 * MIN, "" },
        { "irate(ctr[5m])", 10 * MIN, "{i=\"1\"} 0.16666666666666666" },
        { "idelta(ctr[5m])", 10 * MIN, "{i=\"1\"} 10" },
        { "deriv(ctr[5m])", 10 * MIN, "{i=\"1\"} 0.16666666666666666" },
        { "predict_linear(ctr[5m], 60)", 10 * MIN, "{i=\"1\"} 110" },
        { "resets(g[10m])", 4 * MIN, "{i=\"1\"} 2" },
        /* A reset adds the value before it; the zero clamp stops extrapolation at 0. */
        { "increase(rc[5m])", 4 * MIN, "{} 35" },
        { "rate(rc[5m])", 4 * MIN, "{} 0.11666666666666667" },
        { "delta(rc[5m])", 4 * MIN, "{} 18.75" },
        { "irate(rc[5m])", 3 * MIN, "{} 0.08333333333333333" },
        { "idelta(rc[5m])", 3 * MIN, "{} -15" },
        { "resets(rc[5m])", 4 * MIN, "{} 1" },
        { "changes(g[10m])", 4 * MIN, "{i=\"1\"} 4" },
        { "avg_over_time(g[10m])", 4 * MIN, "{i=\"1\"} 5.4" },
        { "min_over_time(g[10m])", 4 * MIN, "{i=\"1\"} 2" },
        { "max_over_time(g[10m])", 4 * MIN, "{i=\"1\"} 9" },
        { "sum_over_time(g[10m])", 4 * MIN, "{i=\"1\"} 27" },
        { "count_over_time(g[10m])", 4 * MIN, "{i=\"1\"} 5" },
        { "stdvar_over_time(g[10m])", 4 * MIN, "{i=\"1\"} 7.44" },
        { "stddev_over_time(g[10m])", 4 * MIN, "{i=\"1\"} 2.727636339397171" },
        { "mad_over_time(g[10m])", 4 * MIN, "{i=\"1\"} 3" },
        { "quantile_over_time(0.5, g[10m])", 4 * MIN, "{i=\"1\"} 5" },
        { "quantile_over_time(1, g[10m])", 4 * MIN, "{i=\"1\"} 9" },
        { "last_over_time(g[10m])", 4 * MIN, "g{i=\"1\"} 9" },
        { "present_over_time(g[10m])", 4 * MIN, "{i=\"1\"} 1" },
        { "present_over_time(g[1m])", 20 * MIN, "" },
        { "absent_over_time(g[10m])", 4 * MIN, "" },
        { "absent_over_time(nothing{a=\"b\", c=~\"d\"}[5m])", 4 * MIN, "{a=\"b\"} 1" },
        { "absent_over_time(g[1m])", 20 * MIN, "{} 1" },
        { "absent_over_time(nothing[5m:1m])", 4 * MIN, "{} 1" },
    };
    static const struct icase dup[] = {
        { "rate({__name__=~\"ctr|g\"}[5m])", 4 * MIN,
          "error RG_EEXEC vector cannot contain metrics with the same labelset" },
        { "last_over_time({__name__=~\"ctr|g\"}[5m])", 4 * MIN,
          "ctr{i=\"1\"} 40\ng{i=\"1\"} 9" },
    };

    (void)state;
    RUN(fn_data, cases);
    RUN(fn_data, dup);
}

static void test_engine__instant_functions(void **state)
{
    static const struct icase cases[] = {
        { "abs(neg)", 0, "{i=\"1\"} 2.5" },
        { "ceil(neg)", 0, "{i=\"1\"} -2" },
        { "floor(neg)", 0, "{i=\"1\"} -3" },
        { "sgn(neg)", 0, "{i=\"1\"} -1" },
        { "sgn(w)", 0, "{k=\"1\"} NaN\n{k=\"2\"} 1\n{k=\"3\"} 1" },
        { "round(neg)", 0, "{i=\"1\"} -2" },
        { "round(neg, 2)", 0, "{i=\"1\"} -2" },
        { "round(vector(1.26), 0.1)", 0, "{} 1.3" },
        { "exp(vector(0))", 0, "{} 1" },
        { "ln(vector(1))", 0, "{} 0" },
        { "log2(vector(8))", 0, "{} 3" },
        { "log10(vector(1000))", 0, "{} 3" },
        { "sqrt(vector(16))", 0, "{} 4" },
        { "sqrt(neg)", 0, "{i=\"1\"} NaN" },
        { "sin(vector(0))", 0, "{} 0" },
        { "cos(vector(0))", 0, "{} 1" },
        { "tan(vector(0))", 0, "{} 0" },
        { "asin(vector(1))", 0, "{} 1.5707963267948966" },
        { "acos(vector(1))", 0, "{} 0" },
        { "atan(vector(1))", 0, "{} 0.7853981633974483" },
        { "sinh(vector(0))", 0, "{} 0" },
        { "cosh(vector(0))", 0, "{} 1" },
        { "tanh(vector(0))", 0, "{} 0" },
        { "asinh(vector(0))", 0, "{} 0" },
        { "acosh(vector(1))", 0, "{} 0" },
        { "atanh(vector(0))", 0, "{} 0" },
        { "deg(vector(pi()))", 0, "{} 180" },
        { "rad(vector(180))", 0, "{} 3.141592653589793" },
        { "pi()", 0, "scalar 3.141592653589793" },
        { "clamp(g, 3, 6)", 4 * MIN, "{i=\"1\"} 6" },
        { "clamp(g, 6, 3)", 4 * MIN, "" },
        { "clamp_min(neg, 0)", 0, "{i=\"1\"} 0" },
        { "clamp_max(ctr, 5)", 10 * MIN, "{i=\"1\"} 5" },
        { "clamp_max(w, 4)", 0, "{k=\"1\"} NaN\n{k=\"2\"} 4\n{k=\"3\"} 3" },
        { "scalar(g)", 4 * MIN, "scalar 9" },
        { "scalar(v)", 0, "scalar NaN" },
        { "scalar(nothing)", 0, "scalar NaN" },
        { "vector(3)", 0, "{} 3" },
        { "vector(time())", 2 * MIN, "{} 120" },
        { "time()", 4 * MIN, "scalar 240" },
        { "time() + 1", 4 * MIN, "scalar 241" },
        { "timestamp(g)", 4 * MIN + 30000, "{i=\"1\"} 240" },
        { "timestamp(g offset 1m)", 4 * MIN + 30000, "{i=\"1\"} 180" },
        { "timestamp((g))", 4 * MIN + 30000, "{i=\"1\"} 240" },
        { "timestamp(-g)", 4 * MIN + 30000, "{i=\"1\"} 270" },
        { "timestamp(g @ 90)", 9 * MIN, "{i=\"1\"} 60" },
        { "day_of_month(vector(2678400))", 0, "{} 1" },
        { "day_of_week(vector(0))", 0, "{} 4" },
        { "day_of_year(vector(2678400))", 0, "{} 32" },
        { "days_in_month(vector(2678400))", 0, "{} 28" },
        { "month(vector(2678400))", 0, "{} 2" },
        { "year(vector(2678400))", 0, "{} 1970" },
        { "hour(vector(18000))", 0, "{} 5" },
        { "minute(vector(90))", 0, "{} 1" },
        { "year()", 0, "{} 1970" },
        { "minute()", 5 * MIN, "{} 5" },
        { "hour(v)", 0, "{i=\"1\", job=\"a\"} 0\n{i=\"2\", job=\"a\"} 0" },
        { "absent(nothing{job=\"x\"})", 0, "{job=\"x\"} 1" },
        { "absent(nothing{job=\"x\", job=\"y\", i=\"1\"})", 0, "{i=\"1\"} 1" },
        { "absent(nothing{job=~\"x\"})", 0, "{} 1" },
        { "absent(nothing)", 0, "{} 1" },
        { "absent(g)", 0, "" },
        { "absent(sum(nothing))", 0, "{} 1" },
        { "sort(v)", 0, "v{i=\"1\", job=\"a\"} 1\nv{i=\"2\", job=\"a\"} 2", 1 },
        { "sort_desc(v)", 0, "v{i=\"2\", job=\"a\"} 2\nv{i=\"1\", job=\"a\"} 1", 1 },
        { "sort(w)", 0, "w{k=\"3\"} 3\nw{k=\"2\"} 5\nw{k=\"1\"} NaN", 1 },
        { "sort_desc(w)", 0, "w{k=\"2\"} 5\nw{k=\"3\"} 3\nw{k=\"1\"} NaN", 1 },
        { "sort_by_label(nat, \"n\")", 0,
          "nat{n=\"a1\"} 3\nnat{n=\"a2\"} 2\nnat{n=\"a10\"} 1\nnat{n=\"b\"} 4", 1 },
        { "sort_by_label_desc(nat, \"n\")", 0,
          "nat{n=\"b\"} 4\nnat{n=\"a10\"} 1\nnat{n=\"a2\"} 2\nnat{n=\"a1\"} 3", 1 },
        { "sort_by_label(v, \"job\")", 0, "v{i=\"1\", job=\"a\"} 1\nv{i=\"2\", job=\"a\"} 2",
          1 },
        { "histogram_quantile(0.5, h_bucket)", 0, "{job=\"x\"} 1\n{job=\"y\"} 1" },
        { "histogram_quantile(0.75, h_bucket{job=\"x\"})", 0, "{job=\"x\"} 1.5" },
        { "histogram_quantile(1, h_bucket{job=\"x\"})", 0, "{job=\"x\"} 2" },
        { "histogram_quantile(2, h_bucket{job=\"x\"})", 0, "{job=\"x\"} Inf" },
        { "histogram_quantile(0.5, sum by (le) (h_bucket))", 0, "{} 1.2" },
        { "histogram_quantile(0.5, hm_bucket)", 0, "{} 0.6" },
        { "histogram_quantile(0.5, hb_bucket)", 0, "{} NaN" },
        { "histogram_quantile(0.5, {__name__=~\"hm_bucket|hb_bucket\"})", 0,
          "error RG_EEXEC vector cannot contain metrics with the same labelset" },
        { "label_replace(up, \"kind\", \"$1\", \"job\", \"(.*)-server\")", 0,
          "up{instance=\"host1:9090\", job=\"api-server\", kind=\"api\"} 1\n"
          "up{instance=\"host2\", job=\"app\"} 0" },
        { "label_replace(up, \"port\", \"${1}0\", \"instance\", \".*:(.*)\")", 0,
          "up{instance=\"host1:9090\", job=\"api-server\", port=\"90900\"} 1\n"
          "up{instance=\"host2\", job=\"app\"} 0" },
        { "label_replace(up, \"x\", \"$1x\", \"instance\", \"(.*)\")", 0,
          "up{instance=\"host1:9090\", job=\"api-server\"} 1\n"
          "up{instance=\"host2\", job=\"app\"} 0" },
        { "label_replace(up, \"x\", \"$h-$$-$\", \"instance\", \"(?P<h>[a-z]+)\\\\d.*\")", 0,
          "up{instance=\"host1:9090\", job=\"api-server\", x=\"host-$-$\"} 1\n"
          "up{instance=\"host2\", job=\"app\", x=\"host-$-$\"} 0" },
        { "label_replace(up, \"instance\", \"\", \"instance\", \".*\")", 0,
          "up{job=\"api-server\"} 1\nup{job=\"app\"} 0" },
        { "label_replace(up, \"job\", \"same\", \"job\", \".*\")", 0,
          "up{instance=\"host1:9090\", job=\"same\"} 1\nup{instance=\"host2\", job=\"same\"} 0" },
        { "label_replace(label_replace(up, \"instance\", \"\", \"instance\", \".*\"), \"job\", "
          "\"same\", \"job\", \".*\")", 0,
          "error RG_EEXEC vector cannot contain metrics with the same labelset" },
        { "label_replace(up, \"x\", \"y\", \"job\", \"(\")", 0,
          "error RG_EEXEC invalid regular expression in label_replace(): (" },
        { "label_replace(up, \"\", \"y\", \"job\", \".*\")", 0,
          "error RG_EEXEC invalid destination label name in label_replace(): " },
        { "label_replace(up, \"__name__\", \"other\", \"job\", \"app\")", 0,
          "up{instance=\"host1:9090\", job=\"api-server\"} 1\n"
          "other{instance=\"host2\", job=\"app\"} 0" },
        { "label_join(v, \"new\", \"-\", \"job\", \"i\")", 0,
          "v{i=\"1\", job=\"a\", new=\"a-1\"} 1\nv{i=\"2\", job=\"a\", new=\"a-2\"} 2" },
        { "label_join(v, \"new\", \"-\", \"nope\")", 0,
          "v{i=\"1\", job=\"a\"} 1\nv{i=\"2\", job=\"a\"} 2" },
        { "label_join(v, \"i\", \"\", \"job\")", 0, "error RG_EEXEC same labelset" },
    };

    (void)state;
    RUN(fn_data, cases);
}

static void test_engine__histogram_warnings(void **state)
{
    static const struct {
        const char *q;
        const char *warning;
    } cases[] = {
        { "histogram_quantile(0.5, hm_bucket)", "fixed for monotonicity" },
        { "histogram_quantile(0.5, hb_bucket)", "bucket label \"le\" is missing or has a "
                                                "malformed value of \"abc\"" },
        { "histogram_quantile(2, h_bucket)", "quantile value should be between 0 and 1" },
        { "quantile(NaN, v)", "quantile value should be between 0 and 1, got NaN" },
        { "limit_ratio(3, v)", "ratio value should be between -1 and 1, got 3, capping to 1" },
    };
    struct rg_store *st = load(fn_data);
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_promql_node *e = parse(cases[i].q);
        struct rg_promql_result res;
        struct rg_buf err = { 0 };

        assert_int_equal(rg_promql_eval_instant(st, e, 0, NULL, &res, &err), 0);
        assert_int_equal(res.nwarnings, 1);
        if (!strstr(res.warnings[0], cases[i].warning)) {
            print_error("%s: warning %s\n", cases[i].q, res.warnings[0]);
            fail();
        }
        rg_promql_result_free(&res);
        rg_promql_node_free(e);
        rg_buf_cleanup(&err);
    }
    rg_store_free(st);
}

/* ---- Range evaluation ------------------------------------------------------------- */

struct rcase {
    const char *q;
    int64_t start, end, step;
    const char *want;
};

static void test_engine__range(void **state)
{
    static const struct rcase cases[] = {
        { "lin", 0, 2 * MIN, MIN, "lin 0 1 2" },
        { "m", 0, 3 * MIN, MIN, "m{a=\"1\"} 1 2 2 2\nm{a=\"2\"} 1 _ 3 3" },
        { "m", 0, 9 * MIN, 3 * MIN, "m{a=\"1\"} 1 2 _ 9\nm{a=\"2\"} 1 3 3 _" },
        { "1 + 1", 0, 2 * MIN, MIN, "{} 2 2 2" },
        { "time()", 0, 2 * MIN, MIN, "{} 0 60 120" },
        { "rate(lin[5m])", 5 * MIN, 7 * MIN, MIN,
          "{} 0.016666666666666666 0.016666666666666666 0.016666666666666666" },
        { "m @ end()", 0, 2 * MIN, MIN, "m{a=\"1\"} 2 2 2\nm{a=\"2\"} 3 3 3" },
        { "m @ start()", 0, 2 * MIN, MIN, "m{a=\"1\"} 1 1 1\nm{a=\"2\"} 1 1 1" },
        { "sum_over_time(lin[2m:1m])", 2 * MIN, 4 * MIN, MIN, "{} 3 5 7" },
        { "lin > 2 and lin < 5", 0, 6 * MIN, MIN, "lin _ _ _ 3 4 _ _" },
        { "label_replace(m, \"b\", \"$1\", \"a\", \"(2)\")", 0, 2 * MIN, MIN,
          "m{a=\"1\"} 1 2 2\nm{a=\"2\", b=\"2\"} 1 _ 3" },
        { "sort_desc(m)", 0, MIN, MIN, "m{a=\"1\"} 1 2\nm{a=\"2\"} 1 _" },
        { "m[5m]", 0, MIN, MIN, "error RG_EEXEC invalid expression type \"range vector\"" },
        { "\"s\"", 0, MIN, MIN, "error RG_EEXEC invalid expression type \"string\"" },
        { "m", MIN, 0, MIN, "error RG_EEXEC end timestamp must not be before start time" },
        { "m", 0, MIN, 0, "error RG_EEXEC zero or negative query resolution step" },
        { "label_replace(m, \"a\", \"\", \"a\", \".*\")", 0, MIN, MIN,
          "error RG_EEXEC same labelset" },
    };
    struct rg_store *st = load(sel_data);
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct rcase *c = &cases[i];
        struct rg_promql_node *e = parse(c->q);
        struct rg_promql_result res;
        struct rg_buf err = { 0 };
        int rc = rg_promql_eval_range(st, e, c->start, c->end, c->step, NULL, &res, &err);
        size_t nsteps = c->step > 0 && c->end >= c->start
                            ? (size_t)((c->end - c->start) / c->step + 1) : 0;

        if (rc == 0)
            assert_int_equal(res.type, RG_PROMQL_VT_MATRIX);
        check(c->q, rc, &err, &res, c->want, 0, c->start, c->step, nsteps);
        rg_promql_result_free(&res);
        rg_promql_node_free(e);
        rg_buf_cleanup(&err);
    }
    rg_store_free(st);
}

static void test_engine__range_sorted(void **state)
{
    struct rg_store *st = load(agg_data);
    struct rg_promql_node *e = parse("sort_desc(v) or w");
    struct rg_promql_result res;
    struct rg_buf err = { 0 }, b = { 0 };
    size_t i;

    (void)state;
    assert_int_equal(rg_promql_eval_range(st, e, 0, MIN, MIN, NULL, &res, &err), 0);
    assert_int_equal(res.nseries, 8);
    /* A range result is sorted by label set whatever order the steps produced. */
    for (i = 0; i < res.nseries; i++) {
        rg_buf_reset(&b);
        render_labels(&res.series[i], &b);
        if (i < 5)
            assert_string_equal(res.series[i].labels[0].value, "v");
        else
            assert_string_equal(res.series[i].labels[0].value, "w");
    }
    rg_buf_reset(&b);
    render_labels(&res.series[0], &b);
    assert_string_equal(b.data, "v{i=\"1\", job=\"a\"}");
    rg_promql_result_free(&res);
    rg_promql_node_free(e);
    rg_buf_cleanup(&err);
    rg_buf_cleanup(&b);
    rg_store_free(st);
}

/* A range query reads each series once for all its steps; its answer must equal
 * the instant queries at each step, which read the store step by step. */
static void test_engine__range_matches_instant(void **state)
{
    static const char *data =
        "load 15\n"
        "r{a=\"1\"} 0+1x10 stale 5 6 _ _ 9 10 0 1 2 _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ 7\n"
        "r{a=\"2\"} 3 _ _ 4 _ _ stale _ 8 9 10+2x20\n"
        "r{a=\"3\"} NaN 1 2 NaN 3\n";
    static const char *exprs[] = {
        "r", "r offset 30s", "r @ 100", "r @ 300", "r offset -1m",
        "rate(r[1m])", "increase(r[45s])", "delta(r[2m] offset 15s)", "irate(r[1m])",
        "idelta(r[1m])", "deriv(r[2m])", "predict_linear(r[2m], 30)", "resets(r[3m])",
        "changes(r[3m])", "avg_over_time(r[1m])", "min_over_time(r[1m])",
        "max_over_time(r[1m])", "sum_over_time(r[1m])", "count_over_time(r[1m])",
        "stddev_over_time(r[1m])", "stdvar_over_time(r[1m])", "last_over_time(r[1m])",
        "present_over_time(r[30s])", "mad_over_time(r[2m])", "quantile_over_time(0.3, r[2m])",
        "rate(r[1m] @ 120)", "sum(rate(r[1m]))", "timestamp(r)", "absent_over_time(r[15s])",
        "sum_over_time(r[1m:15s])", "r > 4", "sum by (a) (r)", "count without (a) (r)",
        "max by (a) (rate(r[1m]))", "topk by (a) (1, r)", "sum by (a) (r) / on(a) r",
        "count_values(\"v\", r)", "quantile without () (0.5, r)",
    };
    struct rg_store *st = load(data);
    size_t i, j, k;
    int64_t start = 7000, end = 600000, step = 7000;

    (void)state;
    for (i = 0; i < sizeof(exprs) / sizeof(exprs[0]); i++) {
        struct rg_promql_node *e = parse(exprs[i]);
        struct rg_promql_result rr, ir;
        struct rg_buf err = { 0 }, a = { 0 }, b = { 0 };
        int64_t t;

        assert_int_equal(rg_promql_eval_range(st, e, start, end, step, NULL, &rr, &err), 0);
        for (t = start; t <= end; t += step) {
            size_t seen = 0;

            assert_int_equal(rg_promql_eval_instant(st, e, t, NULL, &ir, &err), 0);
            for (j = 0; j < ir.nseries; j++) {
                int found = 0;

                rg_buf_reset(&a);
                render_labels(&ir.series[j], &a);
                for (k = 0; k < rr.nseries && !found; k++) {
                    size_t p;

                    rg_buf_reset(&b);
                    render_labels(&rr.series[k], &b);
                    if (strcmp(a.data, b.data) != 0)
                        continue;
                    for (p = 0; p < rr.series[k].npoints; p++) {
                        if (rr.series[k].points[p].t != t)
                            continue;
                        found = vals_equal(rr.series[k].points[p].v, ir.series[j].points[0].v);
                    }
                }
                if (!found) {
                    print_error("%s at %lld: %s %.17g missing from the range result\n",
                                exprs[i], (long long)t, a.data, ir.series[j].points[0].v);
                    fail();
                }
                seen++;
            }
            /* And the range result holds nothing else at t. */
            for (k = 0; k < rr.nseries; k++)
                for (j = 0; j < rr.series[k].npoints; j++)
                    if (rr.series[k].points[j].t == t)
                        seen--;
            assert_int_equal(seen, 0);
            rg_promql_result_free(&ir);
        }
        rg_promql_result_free(&rr);
        rg_promql_node_free(e);
        rg_buf_cleanup(&err);
        rg_buf_cleanup(&a);
        rg_buf_cleanup(&b);
    }
    rg_store_free(st);
}

/* ---- Limits --------------------------------------------------------------------------- */

static void test_engine__limits(void **state)
{
    struct rg_store *st = load(sel_data);
    struct rg_promql_opts o;
    struct rg_promql_node *e = parse("m[10m]"), *e2 = parse("lin"), *e3 = parse("vector(1)");
    struct rg_promql_node *e4 = parse("sum_over_time(lin[10m:1m])");
    struct rg_promql_result res;
    struct rg_buf err = { 0 };

    (void)state;
    rg_promql_opts_default(&o);
    assert_int_equal(o.lookback_ms, 300000);
    assert_int_equal(o.max_samples, 50000000);
    assert_int_equal(o.timeout_ms, 120000);
    assert_int_equal(o.default_step_ms, 60000);
    /* m[10m] at 9m holds 1, 2, 9 and 1, 3: five samples. */
    o.max_samples = 5;
    assert_int_equal(rg_promql_eval_instant(st, e, 9 * MIN, &o, &res, &err), 0);
    rg_promql_result_free(&res);
    o.max_samples = 4;
    assert_int_equal(rg_promql_eval_instant(st, e, 9 * MIN, &o, &res, &err), RG_ELIMIT);
    assert_string_equal(err.data, "query processing would load too many samples into memory "
                                  "in query execution");
    assert_null(res.series);
    /* A range query holds its whole output. */
    o.max_samples = 10;
    assert_int_equal(rg_promql_eval_range(st, e2, 0, 20 * MIN, MIN, &o, &res, &err),
                     RG_ELIMIT);
    o.max_samples = 30;
    assert_int_equal(rg_promql_eval_range(st, e2, 0, 20 * MIN, MIN, &o, &res, &err), 0);
    assert_int_equal(res.series[0].npoints, 21);
    rg_promql_result_free(&res);
    /* Subquery points count as well. */
    o.max_samples = 5;
    assert_int_equal(rg_promql_eval_instant(st, e4, 20 * MIN, &o, &res, &err), RG_ELIMIT);
    /* Extreme times and steps neither overflow nor crash. */
    rg_promql_opts_default(&o);
    assert_int_equal(rg_promql_eval_range(st, e2, INT64_MIN / 2, INT64_MAX / 2, INT64_MAX / 4,
                                          &o, &res, &err), 0);
    rg_promql_result_free(&res);
    assert_int_equal(rg_promql_eval_range(st, e4, INT64_MIN + 1, INT64_MAX, INT64_MAX, &o, &res,
                                          &err), 0);
    rg_promql_result_free(&res);
    assert_int_equal(rg_promql_eval_instant(st, e, INT64_MIN, &o, &res, &err), 0);
    rg_promql_result_free(&res);
    assert_int_equal(rg_promql_eval_instant(st, e4, INT64_MAX, &o, &res, &err), 0);
    rg_promql_result_free(&res);
    /* A deadline stops a query that would run for a very long time. */
    rg_promql_opts_default(&o);
    o.timeout_ms = 5;
    assert_int_equal(rg_promql_eval_range(st, e3, 0, INT64_C(1) << 40, 1, &o, &res, &err),
                     RG_ETIMEDOUT);
    assert_string_equal(err.data, "query timed out in query execution");
    rg_promql_node_free(e);
    rg_promql_node_free(e2);
    rg_promql_node_free(e3);
    rg_promql_node_free(e4);
    rg_buf_cleanup(&err);
    rg_store_free(st);
}

/* Every expression is run with every sample limit from 1 up to the one it needs,
 * so that the limit error strikes at each point where the evaluator allocates;
 * the sanitizer build then proves that every unwinding path frees what it holds. */
static void test_engine__limit_at_every_point(void **state)
{
    static const char *exprs[] = {
        "sum by (job) (rate(v[5m]))", "topk(2, v) + on(job, i) group_left v",
        "histogram_quantile(0.5, sum by (le) (rate(h_bucket[5m])))",
        "label_replace(v, \"x\", \"$1\", \"job\", \"(.*)\") or w",
        "count_values(\"c\", v) unless on() vector(1)", "max_over_time(v[5m:1m])",
        "quantile by (job) (0.5, v) * 2", "sort_desc(v) > bool 1", "-v offset 1m",
        "absent(nothing) + absent_over_time(nothing[1m])", "limitk(1, v) and v",
        "stddev_over_time(rate(v[2m])[4m:1m])", "v @ 120 / scalar(w{k=\"2\"})",
    };
    static const char *data =
        "load 60\n"
        "v{job=\"a\", i=\"1\"} 0+1x6\n"
        "v{job=\"a\", i=\"2\"} 0+2x6\n"
        "v{job=\"b\", i=\"1\"} 0+3x6\n"
        "w{k=\"2\"} 5 5 5 5 5 5 5\n"
        "h_bucket{le=\"1\"} 0+1x6\n"
        "h_bucket{le=\"+Inf\"} 0+2x6\n";
    struct rg_store *st = load(data);
    struct rg_promql_opts o;
    size_t i, lim;

    (void)state;
    rg_promql_opts_default(&o);
    for (i = 0; i < sizeof(exprs) / sizeof(exprs[0]); i++) {
        struct rg_promql_node *e = parse(exprs[i]);
        int done_instant = 0, done_range = 0;

        for (lim = 1; lim < 400 && !(done_instant && done_range); lim++) {
            struct rg_promql_result res;
            struct rg_buf err = { 0 };
            int rc;

            o.max_samples = lim;
            if (!done_instant) {
                rc = rg_promql_eval_instant(st, e, 6 * MIN, &o, &res, &err);
                if (rc != 0 && rc != RG_ELIMIT) {
                    print_error("%s: %s\n", exprs[i], err.data);
                    fail();
                }
                done_instant = rc == 0;
                rg_promql_result_free(&res);
            }
            if (!done_range) {
                rc = rg_promql_eval_range(st, e, 2 * MIN, 6 * MIN, MIN, &o, &res, &err);
                if (rc != 0 && rc != RG_ELIMIT) {
                    print_error("%s (range): %s\n", exprs[i], err.data);
                    fail();
                }
                done_range = rc == 0;
                rg_promql_result_free(&res);
            }
            rg_buf_cleanup(&err);
        }
        /* Every expression succeeds once the limit is high enough. */
        assert_true(done_instant && done_range);
        rg_promql_node_free(e);
    }
    rg_store_free(st);
}

/* ---- JSON ------------------------------------------------------------------------------ */

static void test_engine__json(void **state)
{
    static const struct {
        const char *q;
        int64_t t;
        int range;
        const char *want;
    } cases[] = {
        { "j", 1435781451781, 0,
          "{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"j\","
          "\"a\":\"q\\\"\\\\\\n\\u0001é\"},\"value\":[1435781451.781,\"1.5\"]}]}" },
        { "j", 1435781451000, 1,
          "{\"resultType\":\"matrix\",\"result\":[{\"metric\":{\"__name__\":\"j\","
          "\"a\":\"q\\\"\\\\\\n\\u0001é\"},\"values\":[[1435781391,\"1.5\"],"
          "[1435781451,\"1.5\"]]}]}" },
        { "1/0", 1000, 0, "{\"resultType\":\"scalar\",\"result\":[1,\"+Inf\"]}" },
        { "-1/0", 1500, 0, "{\"resultType\":\"scalar\",\"result\":[1.500,\"-Inf\"]}" },
        { "0/0", 1000, 0, "{\"resultType\":\"scalar\",\"result\":[1,\"NaN\"]}" },
        /* MarshalFloat: exponent form below 1e-6 and from 1e21 on, plain otherwise. */
        { "0.0000001", 1000, 0, "{\"resultType\":\"scalar\",\"result\":[1,\"1e-07\"]}" },
        { "0.000001", 1000, 0, "{\"resultType\":\"scalar\",\"result\":[1,\"0.000001\"]}" },
        { "-1.5e21", 1000, 0, "{\"resultType\":\"scalar\",\"result\":[1,\"-1.5e+21\"]}" },
        { "1e20", 1000, 0,
          "{\"resultType\":\"scalar\",\"result\":[1,\"100000000000000000000\"]}" },
        { "0", 1000, 0, "{\"resultType\":\"scalar\",\"result\":[1,\"0\"]}" },
        { "\"a\\\"b\"", 2000, 0, "{\"resultType\":\"string\",\"result\":[2,\"a\\\"b\"]}" },
        { "nothing", 0, 0, "{\"resultType\":\"vector\",\"result\":[]}" },
        { "nothing", 0, 1, "{\"resultType\":\"matrix\",\"result\":[]}" },
    };
    struct rg_store_config cfg;
    struct rg_store *st;
    struct rg_series *s;
    struct rg_label_ref l[2] = {
        { RG_SLICE_LIT("__name__"), RG_SLICE_LIT("j") },
        { RG_SLICE_LIT("a"), RG_SLICE_LIT("q\"\\\n\001é") },
    };
    size_t i;

    (void)state;
    rg_store_config_default(&cfg);
    cfg.retention_ms = INT64_C(1) << 50;
    assert_int_equal(rg_store_new(&cfg, &st), 0);
    assert_int_equal(rg_store_series_get(st, l, 2, &s, NULL), 0);
    assert_int_equal(rg_store_append(st, s, 1435781391000, 1.5), 0);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_promql_node *e = parse(cases[i].q);
        struct rg_promql_result res;
        struct rg_buf err = { 0 }, out = { 0 };

        if (cases[i].range)
            assert_int_equal(rg_promql_eval_range(st, e, cases[i].t - 60000, cases[i].t,
                                                  60000, NULL, &res, &err), 0);
        else
            assert_int_equal(rg_promql_eval_instant(st, e, cases[i].t, NULL, &res, &err), 0);
        assert_int_equal(rg_promql_result_json(&res, &out), 0);
        assert_string_equal(out.data, cases[i].want);
        rg_buf_cleanup(&out);
        rg_buf_cleanup(&err);
        rg_promql_result_free(&res);
        rg_promql_node_free(e);
    }
    rg_store_free(st);
}

/* ---- Scale ----------------------------------------------------------------------------- */

static double ms_since(const struct timespec *a)
{
    struct timespec b;

    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

/* Many series: checks the answers of the two reference queries over 20,000 request
 * series and 200 histograms x 12 buckets, and prints how long they take. */
static void test_engine__scale(void **state)
{
    struct rg_store_config cfg;
    struct rg_store *st;
    struct rg_promql_node *e1, *e2;
    struct rg_promql_result res;
    struct rg_buf err = { 0 };
    struct timespec t0;
    char code[8], inst[16], le[16];
    size_t i, k;
    int j;
    static const char *les[12] = { "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                                   "1", "2.5", "5", "10", "+Inf" };

    (void)state;
    rg_store_config_default(&cfg);
    cfg.retention_ms = INT64_C(1) << 50;
    assert_int_equal(rg_store_new(&cfg, &st), 0);
    for (i = 0; i < 20000; i++) {
        struct rg_series *s;
        struct rg_label_ref l[3];

        snprintf(code, sizeof(code), "%d", i % 10 == 0 ? 500 : 200);
        snprintf(inst, sizeof(inst), "i%zu", i);
        l[0] = (struct rg_label_ref){ RG_SLICE_LIT("__name__"),
                                      RG_SLICE_LIT("http_requests_total") };
        l[1] = (struct rg_label_ref){ RG_SLICE_LIT("code"), { code, strlen(code) } };
        l[2] = (struct rg_label_ref){ RG_SLICE_LIT("instance"), { inst, strlen(inst) } };
        assert_int_equal(rg_store_series_get(st, l, 3, &s, NULL), 0);
        for (j = 0; j <= 20; j++)
            assert_int_equal(rg_store_append(st, s, (int64_t)j * 15000, j * 1.5), 0);
    }
    for (i = 0; i < 200; i++) {
        for (k = 0; k < 12; k++) {
            struct rg_series *s;
            struct rg_label_ref l[3];

            snprintf(inst, sizeof(inst), "i%zu", i);
            snprintf(le, sizeof(le), "%s", les[k]);
            l[0] = (struct rg_label_ref){ RG_SLICE_LIT("__name__"), RG_SLICE_LIT("x_bucket") };
            l[1] = (struct rg_label_ref){ RG_SLICE_LIT("instance"), { inst, strlen(inst) } };
            l[2] = (struct rg_label_ref){ RG_SLICE_LIT("le"), { le, strlen(le) } };
            assert_int_equal(rg_store_series_get(st, l, 3, &s, NULL), 0);
            for (j = 0; j <= 20; j++)
                assert_int_equal(rg_store_append(st, s, (int64_t)j * 15000,
                                                 (double)j * (double)(k + 1)), 0);
        }
    }
    e1 = parse("sum(rate(http_requests_total{code=~\"5..\"}[1m])) / "
               "sum(rate(http_requests_total[1m]))");
    e2 = parse("histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(rg_promql_eval_instant(st, e1, 300000, NULL, &res, &err), 0);
    print_message("scale: error ratio over 20000 series: %.2f ms\n", ms_since(&t0));
    assert_int_equal(res.nseries, 1);
    assert_true(vals_equal(res.series[0].points[0].v, 0.1));
    rg_promql_result_free(&res);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(rg_promql_eval_instant(st, e2, 300000, NULL, &res, &err), 0);
    print_message("scale: histogram_quantile over 2400 buckets: %.2f ms\n", ms_since(&t0));
    assert_int_equal(res.nseries, 1);
    /* Bucket k holds (k+1)/12 of the total, so 0.99 falls into the +Inf bucket's
     * predecessor range: rank 0.99 * 12 = 11.88 lies between 11 (le=10) and 12. */
    assert_true(vals_equal(res.series[0].points[0].v, 10));
    rg_promql_result_free(&res);
    rg_promql_node_free(e1);
    rg_promql_node_free(e2);
    rg_buf_cleanup(&err);
    rg_store_free(st);
}

/* Finds or adds series m{g=<g>,i=<i>}, appending samples 0, 1, ... every 15 s up to
 * @last_ms (none when negative). */
static struct rg_series *add_m(struct rg_store *st, const char *g, const char *i,
                               int64_t last_ms)
{
    struct rg_series *s;
    struct rg_label_ref l[3];
    int64_t t;

    l[0] = (struct rg_label_ref){ RG_SLICE_LIT("__name__"), RG_SLICE_LIT("m") };
    l[1] = (struct rg_label_ref){ RG_SLICE_LIT("g"), { g, strlen(g) } };
    l[2] = (struct rg_label_ref){ RG_SLICE_LIT("i"), { i, strlen(i) } };
    assert_int_equal(rg_store_series_get(st, l, 3, &s, NULL), 0);
    for (t = 0; t <= last_ms; t += 15000)
        assert_int_equal(rg_store_append(st, s, t, (double)(t / 15000)), 0);
    return s;
}

/* The value of the one-element vector or scalar @q at @t. */
static double eval1(struct rg_store *st, const char *q, int64_t t)
{
    struct rg_promql_node *e = parse(q);
    struct rg_promql_result res;
    struct rg_buf err = { 0 };
    double v;

    assert_int_equal(rg_promql_eval_instant(st, e, t, NULL, &res, &err), 0);
    if (res.type == RG_PROMQL_VT_SCALAR) {
        v = res.scalar;
    } else {
        assert_int_equal(res.nseries, 1);
        v = res.series[0].points[0].v;
    }
    rg_promql_result_free(&res);
    rg_promql_node_free(e);
    rg_buf_cleanup(&err);
    return v;
}

/* Large selections are kept in the store's cache between queries: answers must
 * follow new series, appended samples and collected series exactly, and queries
 * with more large selectors than the cache holds must still be right. */
static void test_engine__selection_cache(void **state)
{
    struct rg_store_config cfg;
    struct rg_store *st;
    struct rg_series *s;
    char i_s[16];
    size_t i;

    (void)state;
    rg_store_config_default(&cfg);
    cfg.retention_ms = 10 * MIN;
    assert_int_equal(rg_store_new(&cfg, &st), 0);
    for (i = 0; i < 600; i++) {
        snprintf(i_s, sizeof(i_s), "%03zu", i);
        add_m(st, i % 3 ? "a" : "b", i_s, 5 * MIN);
    }
    for (int round = 0; round < 2; round++) {
        assert_true(vals_equal(eval1(st, "count(m)", 5 * MIN), 600));
        assert_true(vals_equal(eval1(st, "count(m{g=\"a\"})", 5 * MIN), 400));
        assert_true(vals_equal(eval1(st, "count({g=\"a\"})", 5 * MIN), 400));
        assert_true(vals_equal(eval1(st, "sum(m)", 5 * MIN), 600 * 20));
        assert_true(vals_equal(eval1(st, "sum(rate(m[1m]))", 5 * MIN), 600 / 15.0));
        assert_true(vals_equal(eval1(st, "count(sum by (i) (m))", 5 * MIN), 600));
        /* m, m{g="a"} and {g="a"} are large enough to be kept. */
        assert_int_equal(rg__selcache_entries(st), 3);
    }
    /* A new series of another name leaves the selections of m as they were, and
     * joins those it matches... */
    {
        struct rg_label_ref l[2] = {
            { RG_SLICE_LIT("__name__"), RG_SLICE_LIT("other") },
            { RG_SLICE_LIT("g"), RG_SLICE_LIT("a") },
        };

        assert_int_equal(rg_store_series_get(st, l, 2, &s, NULL), 0);
        assert_int_equal(rg_store_append(st, s, 5 * MIN, 1), 0);
    }
    assert_true(vals_equal(eval1(st, "count(m)", 5 * MIN), 600));
    assert_true(vals_equal(eval1(st, "count({g=\"a\"})", 5 * MIN), 401));
    /* ... and a new series of the selection is seen at once. */
    s = add_m(st, "a", "new", 5 * MIN);
    assert_true(vals_equal(eval1(st, "count(m)", 5 * MIN), 601));
    assert_true(vals_equal(eval1(st, "count(m{g=\"a\"})", 5 * MIN), 401));
    /* Appended samples are read, though the selection stays cached. */
    assert_true(vals_equal(eval1(st, "sum(m)", 5 * MIN + 15000), 601 * 20));
    assert_int_equal(rg_store_append(st, s, 5 * MIN + 15000, 100), 0);
    assert_true(vals_equal(eval1(st, "sum(m)", 5 * MIN + 15000), 600 * 20 + 100));
    /* Several large selectors in one query, more than the cache's budget. */
    assert_true(vals_equal(eval1(st, "count(m{i!=\"x\"}) + count(m{i!=\"y\"}) + "
                                     "count(m{i!=\"z\"}) + count(m{i!=\"w\"})",
                                 5 * MIN), 4 * 601));
    for (int k = 0; k < 40; k++) {
        char q[64];

        snprintf(q, sizeof(q), "count(m{i!=\"%03d\"})", k);
        assert_true(vals_equal(eval1(st, q, 5 * MIN), 600));
    }
    assert_true(rg__selcache_entries(st) > 0);
    /* Collecting series drops them from the answers. */
    for (i = 0; i < 300; i++) {
        snprintf(i_s, sizeof(i_s), "%03zu", i);
        s = add_m(st, i % 3 ? "a" : "b", i_s, -1);
        assert_int_equal(rg_store_append(st, s, 20 * MIN, 1), 0);
    }
    assert_int_equal(rg_store_gc(st, 20 * MIN), 302);
    assert_true(vals_equal(eval1(st, "count(m)", 20 * MIN), 300));
    assert_true(vals_equal(eval1(st, "count(m{g=\"a\"})", 20 * MIN), 200));
    /* 300 and 200 series: only m is large enough to be kept. */
    assert_int_equal(rg__selcache_entries(st), 1);
    rg_store_free(st);
}

/* le values are parsed with Go's strconv.ParseFloat rules. */
static void test_engine__parse_float(void **state)
{
    static const struct {
        const char *s;
        int ok;
        double v;
    } cases[] = {
        { "1", 1, 1 }, { "+Inf", 1, INFINITY }, { "+inf", 1, INFINITY }, { "Inf", 1, INFINITY },
        { "-Inf", 1, -INFINITY }, { "infinity", 1, INFINITY }, { "0.25", 1, 0.25 },
        { ".2", 1, 0.2 }, { "2.0e-1", 1, 0.2 }, { "1e0", 1, 1 }, { "0x1p-2", 1, 0.25 },
        { "1e-400", 1, 0 }, { "", 0, 0 }, { " 1", 0, 0 }, { "1 ", 0, 0 }, { "abc", 0, 0 },
        { "1e400", 0, 0 }, { "0x10", 0, 0 }, { "1_0", 0, 0 }, { "nan(1)", 0, 0 },
        { "1e", 0, 0 },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double v = -1;
        int ok = rg__parse_float(cases[i].s, &v);

        if (ok != cases[i].ok || (ok && v != cases[i].v)) {
            print_error("\"%s\": ok %d v %g\n", cases[i].s, ok, v);
            fail();
        }
    }
}

/* ---- Hashing ---------------------------------------------------------------------------- */

static void test_engine__xxh64(void **state)
{
    static const struct rg_label ls[] = { { "__name__", "up" }, { "job", "a" } };
    struct rg_buf b = { 0 };
    uint64_t h1, h2;

    (void)state;
    /* Reference values of the XXH64 specification's implementation, seed 0. */
    assert_true(rg__xxh64("", 0) == UINT64_C(0xEF46DB3751D8E999));
    assert_true(rg__xxh64("a", 1) == UINT64_C(0xD24EC4F1A98C6E5B));
    assert_true(rg__xxh64("abc", 3) == UINT64_C(0x44BC2CF5AD770999));
    assert_true(rg__xxh64("Nobody inspects the spammish repetition", 39) ==
                UINT64_C(0xFBCEA83C8A378BF1));
    /* The label-set hashes are those of their byte layouts. */
    h1 = rg__lset_hash((struct rg__lset){ ls, 2 }, &b);
    assert_true(h1 == rg__xxh64("__name__\xff" "up\xff" "job\xff" "a\xff", 18));
    h2 = rg__lset_hash_packed((struct rg__lset){ ls, 2 }, &b);
    assert_true(h2 == rg__xxh64("\x08" "__name__\x02" "up\x03" "job\x01" "a", 18));
    rg_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine__selectors),
        cmocka_unit_test(test_engine__matrix_result),
        cmocka_unit_test(test_engine__subqueries),
        cmocka_unit_test(test_engine__binary_scalar),
        cmocka_unit_test(test_engine__binary_vector),
        cmocka_unit_test(test_engine__aggregations),
        cmocka_unit_test(test_engine__range_functions),
        cmocka_unit_test(test_engine__instant_functions),
        cmocka_unit_test(test_engine__histogram_warnings),
        cmocka_unit_test(test_engine__range),
        cmocka_unit_test(test_engine__range_sorted),
        cmocka_unit_test(test_engine__range_matches_instant),
        cmocka_unit_test(test_engine__limits),
        cmocka_unit_test(test_engine__limit_at_every_point),
        cmocka_unit_test(test_engine__json),
        cmocka_unit_test(test_engine__scale),
        cmocka_unit_test(test_engine__selection_cache),
        cmocka_unit_test(test_engine__xxh64),
        cmocka_unit_test(test_engine__parse_float),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
