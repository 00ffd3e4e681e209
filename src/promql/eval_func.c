/* promql/eval_func.c - PromQL functions.
 *
 * Range-vector functions (rate, *_over_time, deriv, ...) call the numeric kernels
 * of kernels.h once per series with that series' samples; instant-vector functions
 * map values. Every function drops __name__ except last_over_time, the sorting
 * functions and label_replace/label_join, as Prometheus 3 does, and a result that
 * then holds one label set twice is an error. histogram_quantile groups classic
 * buckets by their labels without le (the result also drops __name__), parses le
 * like Go's strconv.ParseFloat and calls the bucket-quantile kernel. label_replace compiles
 * its pattern with PCRE2, anchored at both ends with "." matching newlines (Go's
 * "^(?s:re)$"), and expands $1, ${1} and $name like Go's Regexp.Expand.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "promql/eval.h"
#include "promql/kernels.h"
#include "util/err.h"

struct rg__recache {
    const struct rg_promql_node *node;
    pcre2_code *re;
    pcre2_match_data *md;
};

void rg__func_cleanup(struct rg__ctx *c)
{
    size_t i;

    for (i = 0; i < c->nre; i++) {
        pcre2_match_data_free(c->re[i].md);
        pcre2_code_free(c->re[i].re);
    }
    free(c->re);
    c->re = NULL;
    c->nre = c->capre = 0;
    free(c->dscr);
    c->dscr = NULL;
    c->dcap = 0;
}

static int nomem(struct rg__ctx *c)
{
    return rg__fail(c, RG_ENOMEM, "out of memory");
}

static double *scratch(struct rg__ctx *c, size_t n)
{
    if (n > c->dcap) {
        size_t cap = c->dcap ? c->dcap : 64;
        double *p;

        while (cap < n)
            cap *= 2;
        p = realloc(c->dscr, cap * sizeof(*p));
        if (!p)
            return NULL;
        c->dscr = p;
        c->dcap = cap;
    }
    return c->dscr;
}

/* ---- Go numeric semantics ------------------------------------------------- */

/* Go's math.Min/Max: NaN wins, and signed zeros are ordered. */
static double go_min(double x, double y)
{
    if (isinf(x) && x < 0)
        return x;
    if (isinf(y) && y < 0)
        return y;
    if (isnan(x) || isnan(y))
        return NAN;
    if (x == 0 && x == y)
        return signbit(x) ? x : y;
    return x < y ? x : y;
}

static double go_max(double x, double y)
{
    if (isinf(x) && x > 0)
        return x;
    if (isinf(y) && y > 0)
        return y;
    if (isnan(x) || isnan(y))
        return NAN;
    if (x == 0 && x == y)
        return signbit(x) ? y : x;
    return x > y ? x : y;
}

/* Go's math.Log2: exact for powers of two. */
static double go_log2(double x)
{
    int e;
    double frac = frexp(x, &e);

    if (frac == 0.5)
        return (double)(e - 1);
    return log(frac) * (1 / M_LN2) + (double)e;
}

int rg__parse_float(const char *s, double *out)
{
    char *end;
    double v;
    const char *p = s;

    if (!*s || *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
        return 0;
    if (*p == '+' || *p == '-')
        p++;
    /* strtod also takes "nan(...)" and "infinity" variants Go does not; Go accepts
     * "inf", "infinity" and "nan" in any case, so only the parenthesised form is
     * refused here. */
    if (strchr(s, '(') || strchr(s, '_'))
        return 0;
    /* Go wants a binary exponent in a hexadecimal float; strtod does not. */
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && !strpbrk(p, "pP"))
        return 0;
    errno = 0;
    v = strtod(s, &end);
    if (end == s || *end)
        return 0;
    if (errno == ERANGE && isinf(v))
        return 0;
    *out = v;
    return 1;
}

/* ---- Helpers ---------------------------------------------------------------- */

static int eval_vector(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                       struct rg__val *v)
{
    int err = rg__eval(c, n, t, v);

    if (err)
        return err;
    if (v->type != RG_PROMQL_VT_VECTOR) {
        rg__val_free(c, v);
        return rg__fail(c, RG_EEXEC, "expected an instant vector argument");
    }
    return 0;
}

static const char *string_arg(const struct rg_promql_node *n)
{
    n = rg__unparen(n);
    return n && n->kind == RG_PROMQL_STRING ? n->u.string : NULL;
}

/* Drops names when asked and checks the result for repeated label sets. */
static int finish(struct rg__ctx *c, struct rg__vec *v, int drop)
{
    int err;

    if (drop && (err = rg__vec_drop_names(c, v)))
        return err;
    return rg__vec_check_dups(c, v);
}

static double simple(enum rg_promql_func_id id, double v)
{
    switch (id) {
    case RG_FN_ABS: return fabs(v);
    case RG_FN_CEIL: return ceil(v);
    case RG_FN_FLOOR: return floor(v);
    case RG_FN_EXP: return exp(v);
    case RG_FN_LN: return log(v);
    case RG_FN_LOG2: return go_log2(v);
    case RG_FN_LOG10: return log(v) * (1 / M_LN10);
    case RG_FN_SQRT: return sqrt(v);
    case RG_FN_SGN: return v < 0 ? -1.0 : v > 0 ? 1.0 : v;
    case RG_FN_SIN: return sin(v);
    case RG_FN_COS: return cos(v);
    case RG_FN_TAN: return tan(v);
    case RG_FN_ASIN: return asin(v);
    case RG_FN_ACOS: return acos(v);
    case RG_FN_ATAN: return atan(v);
    case RG_FN_SINH: return sinh(v);
    case RG_FN_COSH: return cosh(v);
    case RG_FN_TANH: return tanh(v);
    case RG_FN_ASINH: return asinh(v);
    case RG_FN_ACOSH: return acosh(v);
    case RG_FN_ATANH: return atanh(v);
    case RG_FN_DEG: return v * 180 / M_PI;
    case RG_FN_RAD: return v * M_PI / 180;
    default: return v;
    }
}

/* ---- Range-vector functions ---------------------------------------------------- */

static enum rg_over_time ot_kind(enum rg_promql_func_id id)
{
    switch (id) {
    case RG_FN_AVG_OVER_TIME: return RG_OT_AVG;
    case RG_FN_MIN_OVER_TIME: return RG_OT_MIN;
    case RG_FN_MAX_OVER_TIME: return RG_OT_MAX;
    case RG_FN_SUM_OVER_TIME: return RG_OT_SUM;
    case RG_FN_COUNT_OVER_TIME: return RG_OT_COUNT;
    case RG_FN_STDDEV_OVER_TIME: return RG_OT_STDDEV;
    case RG_FN_STDVAR_OVER_TIME: return RG_OT_STDVAR;
    case RG_FN_LAST_OVER_TIME: return RG_OT_LAST;
    case RG_FN_PRESENT_OVER_TIME: return RG_OT_PRESENT;
    default: return RG_OT_MAD;
    }
}

static int absent_labels(struct rg__ctx *c, const struct rg_promql_node *arg,
                         struct rg__lset *out)
{
    size_t i, j;

    out->l = NULL;
    out->n = 0;
    arg = rg__unparen(arg);
    if (!arg || (arg->kind != RG_PROMQL_SELECTOR && arg->kind != RG_PROMQL_MATRIX))
        return 0;
    for (i = 0; i < arg->u.sel.nmatchers; i++) {
        const struct rg_promql_matcher *m = &arg->u.sel.matchers[i];
        int seen = 0;

        if (strcmp(m->name, "__name__") == 0)
            continue;
        for (j = 0; j < i; j++)
            if (strcmp(arg->u.sel.matchers[j].name, m->name) == 0 &&
                arg->u.sel.matchers[j].op == RG_MATCH_EQ)
                seen = 1;
        /* Only the first equality matcher of a name sets it; any other matcher on
         * that name removes it again (Prometheus' historic behaviour). */
        if (m->op == RG_MATCH_EQ && !seen) {
            if (rg__lset_set(&c->arena, *out, m->name, m->value, strlen(m->value), out))
                return nomem(c);
        } else if (rg__lset_set(&c->arena, *out, m->name, "", 0, out)) {
            return nomem(c);
        }
    }
    return 0;
}

/* One series' value for a range-vector function; returns 0 when the series gives
 * no output (too few samples), 1 with *out set, or a negative error. */
static int series_value(struct rg__ctx *c, enum rg_promql_func_id id, const struct rg_sample *s,
                        size_t ns, int64_t range_start, int64_t range_end, int64_t t,
                        double param, double *out)
{
    double *d;
    size_t j;

    switch (id) {
    case RG_FN_RATE:
    case RG_FN_INCREASE:
    case RG_FN_DELTA:
        return rg_kernel_extrapolated_rate(s, ns, range_start, range_end, id != RG_FN_DELTA,
                                           id == RG_FN_RATE, out);
    case RG_FN_IRATE:
    case RG_FN_IDELTA:
        return rg_kernel_instant_value(s, ns, id == RG_FN_IRATE, out);
    case RG_FN_DERIV:
        return rg_kernel_deriv(s, ns, out);
    case RG_FN_PREDICT_LINEAR:
        return rg_kernel_predict_linear(s, ns, t, param, out);
    case RG_FN_RESETS:
        *out = rg_kernel_resets(s, ns);
        return 1;
    case RG_FN_CHANGES:
        *out = rg_kernel_changes(s, ns);
        return 1;
    case RG_FN_QUANTILE_OVER_TIME:
        if (!(d = scratch(c, ns)))
            return nomem(c);
        for (j = 0; j < ns; j++)
            d[j] = s[j].v;
        *out = rg_kernel_quantile(param, d, ns);
        return 1;
    default:
        d = NULL;
        if (id == RG_FN_MAD_OVER_TIME && !(d = scratch(c, ns)))
            return nomem(c);
        *out = rg_kernel_over_time(ot_kind(id), s, ns, d);
        return 1;
    }
}

struct stream_ud {
    enum rg_promql_func_id id;
    int64_t t;
    double param;
};

static int stream_cb(struct rg__ctx *c, const struct rg_sample *s, size_t n,
                     const struct rg__mat *meta, void *arg, double *v)
{
    struct stream_ud *u = arg;

    return series_value(c, u->id, s, n, meta->range_start, meta->range_end, u->t, u->param, v);
}

/* True when every argument but the range vector is a number literal, so that the
 * function's value at each step depends on the step time alone. */
static int params_constant(const struct rg_promql_node *n, const struct rg_promql_node *marg)
{
    size_t i;

    for (i = 0; i < n->u.call.nargs; i++) {
        const struct rg_promql_node *a = rg__unparen(n->u.call.args[i]);

        if (n->u.call.args[i] != marg && (!a || a->kind != RG_PROMQL_NUMBER))
            return 0;
    }
    return 1;
}

/* Fills the grid of a range function over range selector @m for every step of the
 * range query: each series' samples are read once and two cursors slide the
 * window (ref - range, ref] along the steps. */
static int function_grid(struct rg__ctx *c, const struct rg_promql_node *n,
                         const struct rg_promql_node *m, double param, struct rg__grid **out)
{
    enum rg_promql_func_id id = n->u.call.func->id;
    struct rg__selcache *sc;
    struct rg__grid *g;
    int64_t first, last, mint, r = m->u.sel.range_ms;
    size_t i, k;
    int err;

    if ((err = rg__select_series(c, m, &sc)))
        return err;
    if (!rg__grid_fits(c, sc->n))
        return 0;
    if ((err = rg__grid_new(c, n, sc, &g)))
        return err;
    first = rg__ref_time(c, m->u.sel.at, m->u.sel.at_ms, m->u.sel.offset_ms, c->gstart);
    last = rg__ref_time(c, m->u.sel.at, m->u.sel.at_ms, m->u.sel.offset_ms,
                        c->gstart + (int64_t)(c->gn - 1) * c->gstep);
    mint = rg__sub_sat(first, r);
    if (mint == INT64_MAX) {
        *out = g;
        return 0;
    }
    for (i = 0; i < sc->n; i++) {
        size_t ns = 0, j, lo = 0, hi = 0;
        struct rg_sample *s;

        if ((i & 4095) == 4095 && (err = rg__check_time(c)))
            return err;
        rg__sel_prefetch_labels(sc, i);
        if (rg_series_samples(sc->series[i], mint + 1, last, &c->sbuf, &ns, &c->scap))
            return nomem(c);
        s = c->sbuf;
        for (j = k = 0; j < ns; j++)
            if (!rg_is_stale_nan(s[j].v))
                s[k++] = s[j];
        ns = k;
        for (k = 0; k < c->gn && ns; k++) {
            int64_t t = c->gstart + (int64_t)k * c->gstep;
            int64_t ref = rg__ref_time(c, m->u.sel.at, m->u.sel.at_ms, m->u.sel.offset_ms, t);
            int64_t start = rg__sub_sat(ref, r);
            double v;
            int ok;

            while (lo < ns && s[lo].t <= start)
                lo++;
            while (hi < ns && s[hi].t <= ref)
                hi++;
            if (hi <= lo)
                continue;
            ok = series_value(c, id, s + lo, hi - lo, start, ref, t, param, &v);
            if (ok < 0)
                return ok;
            if (ok && (err = rg__grid_add(c, g, k, (uint32_t)i, v, t)))
                return err;
        }
    }
    *out = g;
    return 0;
}

static int range_func(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                      struct rg__val *out)
{
    enum rg_promql_func_id id = n->u.call.func->id;
    const struct rg_promql_node *marg;
    struct rg__val m = { 0 };
    double param = 0;
    size_t i, k;
    int err;

    marg = n->u.call.args[id == RG_FN_QUANTILE_OVER_TIME ? 1 : 0];
    if (id == RG_FN_QUANTILE_OVER_TIME &&
        (err = rg__eval_scalar(c, n->u.call.args[0], t, &param)))
        return err;
    if (id == RG_FN_PREDICT_LINEAR && (err = rg__eval_scalar(c, n->u.call.args[1], t, &param)))
        return err;
    if (id == RG_FN_QUANTILE_OVER_TIME && (isnan(param) || param < 0 || param > 1)) {
        rg_buf_reset(&c->tmp);
        if (rg_format_float_g(param, &c->tmp) ||
            (err = rg__warn(c, "PromQL warning: quantile value should be between 0 and 1, "
                            "got %s", c->tmp.data)))
            return err ? err : nomem(c);
    }
    out->type = RG_PROMQL_VT_VECTOR;
    if (id != RG_FN_ABSENT_OVER_TIME && rg__unparen(marg)->kind == RG_PROMQL_MATRIX &&
        params_constant(n, marg) && rg__grid_step(c, t, &k)) {
        struct rg__grid *g = rg__grid_find(c, n);

        if (!g && (err = function_grid(c, n, rg__unparen(marg), param, &g)))
            return err;
        if (g && (err = rg__grid_take(c, g, k, &out->vec)) <= 0) {
            if (err)
                return err;
            return finish(c, &out->vec, id != RG_FN_LAST_OVER_TIME);
        }
    }
    if (id != RG_FN_ABSENT_OVER_TIME && rg__unparen(marg)->kind == RG_PROMQL_MATRIX) {
        /* A range selector is read one series at a time into a reused buffer:
         * the samples of all series are never held at once. */
        struct stream_ud u = { id, t, param };
        struct rg__mat meta = { 0 };

        if ((err = rg__matrix_stream(c, rg__unparen(marg), t, stream_cb, &u, &meta,
                                     &out->vec)))
            return err;
        out->vec.uniq = 1;
        out->vec.samename = meta.samename;
        return finish(c, &out->vec, id != RG_FN_LAST_OVER_TIME);
    }
    if ((err = rg__eval(c, marg, t, &m)))
        return err;
    if (m.type != RG_PROMQL_VT_MATRIX) {
        rg__val_free(c, &m);
        return rg__fail(c, RG_EEXEC, "expected a range vector argument");
    }
    if (id == RG_FN_ABSENT_OVER_TIME) {
        struct rg__lset ls;

        if (m.mat.n == 0) {
            if (!(err = absent_labels(c, marg, &ls)))
                err = rg__vec_push(c, &out->vec, ls, 1, t);
        }
        out->vec.uniq = 1;
        rg__val_free(c, &m);
        return err;
    }
    if ((err = rg__vec_reserve(c, &out->vec, m.mat.n)))
        goto done;
    for (i = 0; i < m.mat.n; i++) {
        double v;
        int ok = series_value(c, id, m.mat.pts + m.mat.s[i].off, m.mat.s[i].n,
                              m.mat.range_start, m.mat.range_end, t, param, &v);

        if (ok < 0) {
            err = ok;
            goto done;
        }
        if (ok && (err = rg__vec_push(c, &out->vec, m.mat.s[i].ls, v, t)))
            goto done;
    }
    out->vec.uniq = 1;
    out->vec.samename = m.mat.samename;
    err = finish(c, &out->vec, id != RG_FN_LAST_OVER_TIME);
done:
    rg__val_free(c, &m);
    return err;
}

/* ---- histogram_quantile ----------------------------------------------------------- */

struct hgroup {
    struct rg__lset ls;
    const char *name;          /* metric name of the first bucket, for the warning */
    struct rg_bucket *b;       /* owned */
    size_t n;
    size_t cap;
};

static int histogram_quantile(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                              struct rg__val *out)
{
    static char *le[] = { "le" };
    struct rg__val v = { 0 };
    struct hgroup *g = NULL;
    struct rg__hmap map = { 0 };
    size_t ng = 0, capg = 0, i;
    double q;
    int err;

    if ((err = rg__eval_scalar(c, n->u.call.args[0], t, &q)))
        return err;
    if ((err = eval_vector(c, n->u.call.args[1], t, &v)))
        return err;
    out->type = RG_PROMQL_VT_VECTOR;
    if (isnan(q) || q < 0 || q > 1) {
        rg_buf_reset(&c->tmp);
        if (rg_format_float_g(q, &c->tmp) ||
            (err = rg__warn(c, "PromQL warning: quantile value should be between 0 and 1, "
                            "got %s", c->tmp.data)))
            goto done;
    }
    for (i = 0; i < v.vec.n; i++) {
        const struct rg__el *e = &v.vec.e[i];
        const char *les = rg__lset_get(e->ls, "le"), *name = rg__lset_get(e->ls, "__name__");
        double ub;
        uint32_t idx;
        int found;

        if (!les || !rg__parse_float(les, &ub)) {
            if ((err = rg__warn(c, "PromQL warning: bucket label \"le\" is missing or has a "
                                "malformed value of \"%s\" for metric name \"%s\"",
                                les ? les : "", name ? name : "")))
                goto done;
            continue;
        }
        /* Buckets group by all their labels but le; the name stays part of the key
         * (two histograms differing only in name then collide below, as in
         * Prometheus). */
        if (rg__hmap_put(&map, rg__lset_hash_except(e->ls, le, 1, &c->hb), (uint32_t)ng, &idx,
                         &found)) {
            err = nomem(c);
            goto done;
        }
        if (!found) {
            if (ng == capg) {
                size_t cap = capg ? capg * 2 : 8;
                struct hgroup *p = realloc(g, cap * sizeof(*p));

                if (!p) {
                    err = nomem(c);
                    goto done;
                }
                g = p;
                capg = cap;
            }
            memset(&g[ng], 0, sizeof(g[ng]));
            g[ng].name = name;
            if (rg__lset_without(&c->arena, e->ls, le, 1, 1, &g[ng].ls)) {
                err = nomem(c);
                goto done;
            }
            ng++;
        }
        if (g[idx].n == g[idx].cap) {
            size_t cap = g[idx].cap ? g[idx].cap * 2 : 16;
            struct rg_bucket *p = realloc(g[idx].b, cap * sizeof(*p));

            if (!p) {
                err = nomem(c);
                goto done;
            }
            g[idx].b = p;
            g[idx].cap = cap;
        }
        g[idx].b[g[idx].n].upper = ub;
        g[idx].b[g[idx].n++].count = e->v;
    }
    for (i = 0; i < ng; i++) {
        int forced = 0;
        double r = rg_kernel_bucket_quantile(q, g[i].b, g[i].n, &forced);

        if ((err = rg__vec_push(c, &out->vec, g[i].ls, r, t)))
            goto done;
        if (forced && (err = rg__warn(c, "PromQL info: input to histogram_quantile needed to "
                                      "be fixed for monotonicity (see https://prometheus.io/"
                                      "docs/prometheus/latest/querying/functions/"
                                      "#histogram_quantile) for metric name \"%s\"",
                                      g[i].name ? g[i].name : "")))
            goto done;
    }
    out->vec.uniq = 0;
    err = rg__vec_check_dups(c, &out->vec);
done:
    for (i = 0; i < ng; i++)
        free(g[i].b);
    free(g);
    rg__hmap_free(&map);
    rg__val_free(c, &v);
    return err;
}

/* ---- label_replace and label_join ------------------------------------------------ */

static int valid_name(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    if (!*p)
        return 0;
    while (*p) {
        int len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3
                : (*p >> 3) == 30 ? 4 : 0;
        int i;

        if (!len)
            return 0;
        for (i = 1; i < len; i++)
            if ((p[i] & 0xc0) != 0x80)
                return 0;
        p += len;
    }
    return 1;
}

static int get_regex(struct rg__ctx *c, const struct rg_promql_node *n, const char *pat,
                     struct rg__recache **out)
{
    struct rg__recache *rc = NULL;
    int ecode;
    PCRE2_SIZE eoff;
    size_t i;

    for (i = 0; i < c->nre; i++) {
        if (c->re[i].node == n) {
            *out = &c->re[i];
            return 0;
        }
    }
    if (c->nre == c->capre) {
        size_t cap = c->capre ? c->capre * 2 : 4;
        struct rg__recache *p = realloc(c->re, cap * sizeof(*p));

        if (!p)
            return nomem(c);
        c->re = p;
        c->capre = cap;
    }
    rc = &c->re[c->nre];
    rc->node = n;
    rc->re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                           PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOTALL |
                               PCRE2_DOLLAR_ENDONLY | PCRE2_ANCHORED | PCRE2_ENDANCHORED,
                           &ecode, &eoff, NULL);
    if (!rc->re)
        return rg__fail(c, RG_EEXEC, "invalid regular expression in label_replace(): %s", pat);
    (void)pcre2_jit_compile(rc->re, PCRE2_JIT_COMPLETE);
    rc->md = pcre2_match_data_create_from_pattern(rc->re, NULL);
    if (!rc->md) {
        pcre2_code_free(rc->re);
        return nomem(c);
    }
    c->nre++;
    *out = rc;
    return 0;
}

static int name_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch >= 0x80;
}

/* Go's Regexp.Expand: $name or ${name}; a number names a group; unknown is empty. */
static int expand(struct rg_buf *o, const char *tpl, const char *src, pcre2_code *re,
                  const PCRE2_SIZE *ov, uint32_t npairs)
{
    const char *p = tpl;
    int err = 0;

    while (*p && !err) {
        const char *name, *q;
        size_t nlen;
        int brace = 0;
        long num = 0;

        if (*p != '$') {
            err = rg_buf_putc(o, *p++);
            continue;
        }
        p++;
        if (*p == '$') {
            err = rg_buf_putc(o, '$');
            p++;
            continue;
        }
        q = p;
        if (*q == '{') {
            brace = 1;
            q++;
        }
        name = q;
        while (*q && name_char((unsigned char)*q))
            q++;
        nlen = (size_t)(q - name);
        if (nlen == 0 || (brace && *q != '}')) {
            err = rg_buf_putc(o, '$');
            continue;
        }
        p = brace ? q + 1 : q;
        for (q = name; q < name + nlen; q++) {
            if (*q < '0' || *q > '9' || num >= 100000000) {
                num = -1;
                break;
            }
            num = num * 10 + (*q - '0');
        }
        if (name[0] == '0' && nlen > 1)
            num = -1;
        if (num < 0) {
            char buf[256];

            if (nlen >= sizeof(buf))
                continue;
            memcpy(buf, name, nlen);
            buf[nlen] = '\0';
            num = pcre2_substring_number_from_name(re, (PCRE2_SPTR)buf);
            if (num < 0)
                continue;
        }
        if ((uint32_t)num < npairs && ov[2 * num] != PCRE2_UNSET)
            err = rg_buf_append(o, src + ov[2 * num], ov[2 * num + 1] - ov[2 * num]);
    }
    return err;
}

static int label_replace(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                         struct rg__val *out)
{
    const char *dst = string_arg(n->u.call.args[1]), *repl = string_arg(n->u.call.args[2]);
    const char *src = string_arg(n->u.call.args[3]), *pat = string_arg(n->u.call.args[4]);
    struct rg__recache *rc = NULL;
    size_t i;
    int err;

    if (!dst || !repl || !src || !pat)
        return rg__fail(c, RG_EEXEC, "label_replace() expects string arguments");
    if ((err = get_regex(c, n, pat, &rc)))
        return err;
    if (!valid_name(dst))
        return rg__fail(c, RG_EEXEC, "invalid destination label name in label_replace(): %s",
                        dst);
    if ((err = eval_vector(c, n->u.call.args[0], t, out)))
        return err;
    for (i = 0; i < out->vec.n; i++) {
        struct rg__el *e = &out->vec.e[i];
        const char *sv = rg__lset_get(e->ls, src);
        int rcode;

        if (!sv)
            sv = "";
        rcode = pcre2_match(rc->re, (PCRE2_SPTR)sv, strlen(sv), 0, 0, rc->md, NULL);
        if (rcode < 0)
            continue;
        rg_buf_reset(&c->tmp);
        if (expand(&c->tmp, repl, sv, rc->re, pcre2_get_ovector_pointer(rc->md),
                   pcre2_get_ovector_count(rc->md)) ||
            rg__lset_set(&c->arena, e->ls, dst, c->tmp.data ? c->tmp.data : "", c->tmp.len,
                         &e->ls))
            return nomem(c);
        e->t = t;
    }
    out->vec.uniq = 0;
    out->vec.samename = 0;
    return finish(c, &out->vec, 0);
}

static int label_join(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                      struct rg__val *out)
{
    const char *dst = string_arg(n->u.call.args[1]), *sep = string_arg(n->u.call.args[2]);
    size_t i, j;
    int err;

    if (!dst || !sep)
        return rg__fail(c, RG_EEXEC, "label_join() expects string arguments");
    for (j = 3; j < n->u.call.nargs; j++) {
        const char *s = string_arg(n->u.call.args[j]);

        if (!s || !valid_name(s))
            return rg__fail(c, RG_EEXEC, "invalid source label name in label_join(): %s",
                            s ? s : "");
    }
    if (!valid_name(dst))
        return rg__fail(c, RG_EEXEC, "invalid destination label name in label_join(): %s", dst);
    if ((err = eval_vector(c, n->u.call.args[0], t, out)))
        return err;
    for (i = 0; i < out->vec.n; i++) {
        struct rg__el *e = &out->vec.e[i];

        rg_buf_reset(&c->tmp);
        for (j = 3; j < n->u.call.nargs; j++) {
            const char *v = rg__lset_get(e->ls, string_arg(n->u.call.args[j]));

            if ((j > 3 && rg_buf_puts(&c->tmp, sep)) || (v && rg_buf_puts(&c->tmp, v)))
                return nomem(c);
        }
        if (rg__lset_set(&c->arena, e->ls, dst, c->tmp.data ? c->tmp.data : "", c->tmp.len,
                         &e->ls))
            return nomem(c);
    }
    out->vec.uniq = 0;
    out->vec.samename = 0;
    return finish(c, &out->vec, 0);
}

/* ---- Sorting --------------------------------------------------------------------- */

struct sortctx {
    const struct rg_promql_node *n;
    int desc;
};

static int by_value_asc(const void *a, const void *b)
{
    const struct rg__el *x = a, *y = b;

    /* sort(): ascending, NaN last. */
    if (isnan(x->v) || isnan(y->v))
        return isnan(x->v) - isnan(y->v);
    return x->v < y->v ? -1 : x->v > y->v;
}

static int by_value_desc(const void *a, const void *b)
{
    const struct rg__el *x = a, *y = b;

    if (isnan(x->v) || isnan(y->v))
        return isnan(x->v) - isnan(y->v);
    return x->v > y->v ? -1 : x->v < y->v;
}

/* Chunk-wise natural comparison as Prometheus' sort_by_label (facette natsort):
 * runs of digits compare as numbers, other runs as strings. Returns a < b. */
static int chunk(const char *s, size_t *len, int *digits)
{
    size_t i = 0;

    *digits = s[0] >= '0' && s[0] <= '9';
    while (s[i] && ((s[i] >= '0' && s[i] <= '9') == *digits))
        i++;
    *len = i;
    return i > 0;
}

static int atoi_ok(const char *s, size_t len, long long *out)
{
    long long v = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        if (v > (9223372036854775807LL - (s[i] - '0')) / 10)
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static int nat_less(const char *a, const char *b)
{
    for (;;) {
        size_t la, lb;
        int da, db, ha = chunk(a, &la, &da), hb = chunk(b, &lb, &db);
        int last_a, last_b, cmp;
        long long ia, ib;

        if (!ha)
            return 0;
        if (!hb)
            return 0;
        last_a = a[la] == '\0';
        last_b = b[lb] == '\0';
        if (da && db && atoi_ok(a, la, &ia) && atoi_ok(b, lb, &ib)) {
            if (ia != ib)
                return ia < ib;
        } else {
            cmp = strncmp(a, b, la < lb ? la : lb);
            if (cmp == 0 && la != lb)
                cmp = la < lb ? -1 : 1;
            if (cmp != 0)
                return cmp < 0;
        }
        if (last_a)
            return 1;
        if (last_b)
            return 0;
        a += la;
        b += lb;
    }
}

static int by_label(const void *pa, const void *pb, void *arg)
{
    const struct sortctx *sctx = arg;
    const struct rg__el *a = pa, *b = pb;
    size_t i;

    if (sctx->desc) {
        const struct rg__el *tmp = a;

        a = b;
        b = tmp;
    }
    for (i = 1; i < sctx->n->u.call.nargs; i++) {
        const char *name = string_arg(sctx->n->u.call.args[i]);
        const char *x = name ? rg__lset_get(a->ls, name) : NULL;
        const char *y = name ? rg__lset_get(b->ls, name) : NULL;

        if (!x)
            x = "";
        if (!y)
            y = "";
        if (strcmp(x, y) == 0)
            continue;
        return nat_less(x, y) ? -1 : 1;
    }
    return rg__lset_cmp(a->ls, b->ls);
}

/* ---- Dispatcher ---------------------------------------------------------------------- */

static int is_range_func(enum rg_promql_func_id id)
{
    switch (id) {
    case RG_FN_ABSENT_OVER_TIME: case RG_FN_AVG_OVER_TIME: case RG_FN_CHANGES:
    case RG_FN_COUNT_OVER_TIME: case RG_FN_DELTA: case RG_FN_DERIV: case RG_FN_IDELTA:
    case RG_FN_INCREASE: case RG_FN_IRATE: case RG_FN_LAST_OVER_TIME:
    case RG_FN_MAD_OVER_TIME: case RG_FN_MAX_OVER_TIME: case RG_FN_MIN_OVER_TIME:
    case RG_FN_PREDICT_LINEAR: case RG_FN_PRESENT_OVER_TIME: case RG_FN_QUANTILE_OVER_TIME:
    case RG_FN_RATE: case RG_FN_RESETS: case RG_FN_STDDEV_OVER_TIME:
    case RG_FN_STDVAR_OVER_TIME: case RG_FN_SUM_OVER_TIME:
        return 1;
    default:
        return 0;
    }
}

static int vector_map(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                      struct rg__val *out)
{
    enum rg_promql_func_id id = n->u.call.func->id;
    double a1 = 0, a2 = 0;
    size_t i, k;
    int err;

    if (id == RG_FN_CLAMP || id == RG_FN_CLAMP_MIN || id == RG_FN_CLAMP_MAX ||
        (id == RG_FN_ROUND && n->u.call.nargs > 1)) {
        if ((err = rg__eval_scalar(c, n->u.call.args[1], t, &a1)))
            return err;
    } else if (id == RG_FN_ROUND) {
        a1 = 1;
    }
    if (id == RG_FN_CLAMP && (err = rg__eval_scalar(c, n->u.call.args[2], t, &a2)))
        return err;
    if (n->u.call.nargs == 0) {
        /* The date functions default to vector(time()). */
        out->type = RG_PROMQL_VT_VECTOR;
        if ((err = rg__vec_push(c, &out->vec, (struct rg__lset){ NULL, 0 }, (double)t / 1000,
                                t)))
            return err;
        out->vec.uniq = 1;
    } else if ((err = eval_vector(c, n->u.call.args[0], t, out))) {
        return err;
    }
    if (id == RG_FN_CLAMP_MIN) {
        a2 = INFINITY;
    } else if (id == RG_FN_CLAMP_MAX) {
        a2 = a1;
        a1 = -INFINITY;
    }
    if ((id == RG_FN_CLAMP || id == RG_FN_CLAMP_MIN || id == RG_FN_CLAMP_MAX) && a2 < a1) {
        out->vec.n = 0;
        return 0;
    }
    for (i = k = 0; i < out->vec.n; i++) {
        struct rg__el *e = &out->vec.e[i];

        switch (id) {
        case RG_FN_CLAMP:
        case RG_FN_CLAMP_MIN:
        case RG_FN_CLAMP_MAX:
            e->v = go_max(a1, go_min(a2, e->v));
            break;
        case RG_FN_ROUND:
            e->v = rg_kernel_round(e->v, a1);
            break;
        case RG_FN_DAY_OF_MONTH: case RG_FN_DAY_OF_WEEK: case RG_FN_DAY_OF_YEAR:
        case RG_FN_DAYS_IN_MONTH: case RG_FN_HOUR: case RG_FN_MINUTE: case RG_FN_MONTH:
        case RG_FN_YEAR:
            e->v = rg_kernel_date((int)id, e->v);
            break;
        case RG_FN_TIMESTAMP:
            /* Prometheus 3 gives a selector's own sample time, otherwise the
             * evaluation time. */
            e->v = (double)(rg__unparen(n->u.call.args[0])->kind == RG_PROMQL_SELECTOR ? e->t
                                                                                       : t) /
                   1000;
            break;
        default:
            e->v = simple(id, e->v);
            break;
        }
        e->t = t;
        out->vec.e[k++] = *e;
    }
    out->vec.n = k;
    return finish(c, &out->vec, 1);
}

int rg__eval_call(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                  struct rg__val *out)
{
    enum rg_promql_func_id id;
    struct rg__val v = { 0 };
    int err;

    if (!n->u.call.func)
        return rg__fail(c, RG_EEXEC, "unknown function");
    id = n->u.call.func->id;
    if (is_range_func(id))
        return range_func(c, n, t, out);
    switch (id) {
    case RG_FN_TIME:
        out->type = RG_PROMQL_VT_SCALAR;
        out->scalar = (double)t / 1000;
        return 0;
    case RG_FN_PI:
        out->type = RG_PROMQL_VT_SCALAR;
        out->scalar = M_PI;
        return 0;
    case RG_FN_SCALAR:
        if ((err = eval_vector(c, n->u.call.args[0], t, &v)))
            return err;
        out->type = RG_PROMQL_VT_SCALAR;
        out->scalar = v.vec.n == 1 ? v.vec.e[0].v : NAN;
        rg__val_free(c, &v);
        return 0;
    case RG_FN_VECTOR: {
        double s;

        if ((err = rg__eval_scalar(c, n->u.call.args[0], t, &s)))
            return err;
        out->type = RG_PROMQL_VT_VECTOR;
        out->vec.uniq = 1;
        return rg__vec_push(c, &out->vec, (struct rg__lset){ NULL, 0 }, s, t);
    }
    case RG_FN_ABSENT: {
        struct rg__lset ls;

        if ((err = eval_vector(c, n->u.call.args[0], t, &v)))
            return err;
        out->type = RG_PROMQL_VT_VECTOR;
        out->vec.uniq = 1;
        if (v.vec.n == 0 && !(err = absent_labels(c, n->u.call.args[0], &ls)))
            err = rg__vec_push(c, &out->vec, ls, 1, t);
        rg__val_free(c, &v);
        return err;
    }
    case RG_FN_HISTOGRAM_QUANTILE:
        return histogram_quantile(c, n, t, out);
    case RG_FN_LABEL_REPLACE:
        return label_replace(c, n, t, out);
    case RG_FN_LABEL_JOIN:
        return label_join(c, n, t, out);
    case RG_FN_SORT:
    case RG_FN_SORT_DESC:
        if ((err = eval_vector(c, n->u.call.args[0], t, out)))
            return err;
        if (out->vec.n > 1)
            qsort(out->vec.e, out->vec.n, sizeof(*out->vec.e),
                  id == RG_FN_SORT ? by_value_asc : by_value_desc);
        return 0;
    case RG_FN_SORT_BY_LABEL:
    case RG_FN_SORT_BY_LABEL_DESC: {
        struct sortctx sc = { n, id == RG_FN_SORT_BY_LABEL_DESC };

        if ((err = eval_vector(c, n->u.call.args[0], t, out)))
            return err;
        if (out->vec.n > 1)
            qsort_r(out->vec.e, out->vec.n, sizeof(*out->vec.e), by_label, &sc);
        return 0;
    }
    default:
        return vector_map(c, n, t, out);
    }
}
