/* promql/eval_agg.c - PromQL aggregation operators.
 *
 * Follows Prometheus 3's engine.aggregation(): groups are keyed by the hash of the
 * grouping labels (by) or of all labels but those and __name__ (without) and kept
 * in order of first appearance. sum is a Kahan-Neumaier sum; avg is a compensated
 * sum divided by the count that switches to an incremental mean only when the sum
 * overflows (the same algorithm as the avg_over_time kernel); stddev/stdvar use
 * Welford's update; min/max let a number replace NaN. topk/bottomk keep a binary
 * heap of k elements per group (the comparison puts NaN lowest, as
 * vectorByValueHeap does) and emit it sorted; limitk and
 * limit_ratio keep the first k elements or those whose label hash falls into the
 * ratio, the latter exactly as Prometheus' AddRatioSample. count_values labels
 * groups with the value formatted like Go's FormatFloat('f', -1).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "promql/eval.h"
#include "promql/kernels.h"
#include "util/err.h"

struct grp {
    struct rg__lset ls;
    double fv;        /* running value */
    double fmean;     /* mean (avg incremental, stddev) */
    double kc;        /* Kahan compensation */
    double count;
    int incremental;
    double *vals;     /* quantile: collected values (owned) */
    size_t nvals;
    size_t capvals;
    size_t *heap;     /* topk and friends: element indexes (owned) */
    size_t nheap;
};

struct groups {
    struct grp *g;
    size_t n;
    size_t cap;
    uint32_t *of;     /* element index -> group index */
};

static void groups_free(struct groups *gs)
{
    size_t i;

    for (i = 0; i < gs->n; i++) {
        free(gs->g[i].vals);
        free(gs->g[i].heap);
    }
    free(gs->g);
    free(gs->of);
    memset(gs, 0, sizeof(*gs));
}

static int group_labels(struct rg__ctx *c, const struct rg_promql_node *n, struct rg__lset ls,
                        struct rg__lset *out)
{
    if (n->u.agg.without)
        return rg__lset_without(&c->arena, ls, n->u.agg.grouping, n->u.agg.ngrouping, 1, out);
    return rg__lset_keep(&c->arena, ls, n->u.agg.grouping, n->u.agg.ngrouping, out);
}

/* A range query evaluates an aggregation once per step over mostly the same input
 * label sets, whose arrays keep their addresses for the whole query (arena and
 * selector arrays are never changed or freed while it runs). This cache maps each
 * array to a stable group id, and each id to the group's labels, so that a step
 * neither hashes a known label set again nor allocates a known group's labels
 * again: one table lookup per element. */
struct rg__aggcache {
    const struct rg_promql_node *node;
    struct rg__hmap byptr;     /* mixed (array address, length) -> stable group id */
    struct rg__hmap bykey;     /* group key -> stable group id */
    struct rg__lset *ls;       /* owned; labels by stable id (arrays in the arena) */
    uint32_t *slot;            /* owned; stable id -> group index in the current step */
    uint32_t *stamp;           /* owned; stable id -> step in which slot is valid */
    size_t n;
    size_t cap;
    uint32_t cur;              /* current step stamp */
};

void rg__agg_cleanup(struct rg__ctx *c)
{
    size_t i;

    for (i = 0; i < c->naggs; i++) {
        rg__hmap_free(&c->aggs[i]->byptr);
        rg__hmap_free(&c->aggs[i]->bykey);
        free(c->aggs[i]->ls);
        free(c->aggs[i]->slot);
        free(c->aggs[i]->stamp);
        free(c->aggs[i]);
    }
    free(c->aggs);
    c->aggs = NULL;
    c->naggs = c->capaggs = 0;
}

static struct rg__aggcache *agg_cache(struct rg__ctx *c, const struct rg_promql_node *n)
{
    struct rg__aggcache *ac;
    size_t i;

    if (c->gn == 0 || c->subq_depth > 0)
        return NULL;
    for (i = 0; i < c->naggs; i++)
        if (c->aggs[i]->node == n)
            return c->aggs[i];
    if (c->naggs == c->capaggs) {
        size_t cap = c->capaggs ? c->capaggs * 2 : 4;
        struct rg__aggcache **p = realloc(c->aggs, cap * sizeof(*p));

        if (!p)
            return NULL;
        c->aggs = p;
        c->capaggs = cap;
    }
    ac = calloc(1, sizeof(*ac));
    if (!ac)
        return NULL;
    ac->node = n;
    c->aggs[c->naggs++] = ac;
    return ac;
}

/* Murmur3's 64-bit finaliser: a bijection, so distinct inputs stay distinct. */
static uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= UINT64_C(0xff51afd7ed558ccd);
    k ^= k >> 33;
    k *= UINT64_C(0xc4ceb9fe1a85ec53);
    k ^= k >> 33;
    return k;
}

static uint64_t group_key(struct rg__ctx *c, const struct rg_promql_node *n, struct rg__lset ls)
{
    return n->u.agg.without
               ? rg__lset_hash_without(ls, n->u.agg.grouping, n->u.agg.ngrouping, &c->hb)
               : rg__lset_hash_on(ls, n->u.agg.grouping, n->u.agg.ngrouping, &c->hb);
}

/* The stable group id of @ls, creating the group when it is new to the query. */
static int stable_id(struct rg__ctx *c, const struct rg_promql_node *n,
                     struct rg__aggcache *ac, struct rg__lset ls, uint32_t *out)
{
    uint64_t pk = fmix64((uint64_t)(uintptr_t)ls.l ^ ((uint64_t)ls.n << 48)), key;
    uint32_t id = rg__hmap_get(&ac->byptr, pk), got;
    int found;

    if (id != UINT32_MAX) {
        *out = id;
        return 0;
    }
    key = group_key(c, n, ls);
    id = rg__hmap_get(&ac->bykey, key);
    if (id == UINT32_MAX) {
        if (ac->n == ac->cap) {
            size_t cap = ac->cap ? ac->cap * 2 : 16;
            struct rg__lset *l = realloc(ac->ls, cap * sizeof(*l));
            uint32_t *sl, *st;

            if (!l)
                return RG_ENOMEM;
            ac->ls = l;
            sl = realloc(ac->slot, cap * sizeof(*sl));
            if (!sl)
                return RG_ENOMEM;
            ac->slot = sl;
            st = realloc(ac->stamp, cap * sizeof(*st));
            if (!st)
                return RG_ENOMEM;
            ac->stamp = st;
            ac->cap = cap;
        }
        if (group_labels(c, n, ls, &ac->ls[ac->n]))
            return RG_ENOMEM;
        ac->stamp[ac->n] = 0;
        id = (uint32_t)ac->n;
        if (rg__hmap_put(&ac->bykey, key, id, &got, &found))
            return RG_ENOMEM;
        ac->n++;
    }
    if (rg__hmap_put(&ac->byptr, pk, id, &got, &found))
        return RG_ENOMEM;
    *out = id;
    return 0;
}

static int new_group(struct rg__ctx *c, struct groups *gs, struct rg__lset ls)
{
    if (gs->n == gs->cap) {
        size_t cap = gs->cap ? gs->cap * 2 : 8;
        struct grp *p = realloc(gs->g, cap * sizeof(*p));

        if (!p)
            return rg__fail(c, RG_ENOMEM, "out of memory");
        gs->g = p;
        gs->cap = cap;
    }
    memset(&gs->g[gs->n], 0, sizeof(gs->g[gs->n]));
    gs->g[gs->n++].ls = ls;
    return 0;
}

/* The value of label @name in @ls, or NULL. *@known remembers the address of the
 * name string last found: label names from the store are interned, so most label
 * sets carry that very string and are searched without comparing bytes. */
static const char *value_of(struct rg__lset ls, const char *name, const char **known)
{
    size_t k;

    for (k = 0; k < ls.n; k++)
        if (ls.l[k].name == *known)
            return ls.l[k].value;
    for (k = 0; k < ls.n; k++) {
        if (strcmp(ls.l[k].name, name) == 0) {
            *known = ls.l[k].name;
            return ls.l[k].value;
        }
    }
    return NULL;
}

/* Assigns every element of @v to a group; groups are numbered by first appearance.
 * With `by` one label the group of an element follows from the address of its
 * value string, which equal values from the store share (interned): each distinct
 * address is hashed once and remembered, and addresses of equal strings that are
 * not shared still meet in the group of their hash. */
static int assign_groups(struct rg__ctx *c, const struct rg_promql_node *n,
                         const struct rg__vec *v, struct groups *gs)
{
    struct rg__hmap map = { 0 }, byval = { 0 };
    struct rg__aggcache *ac = NULL;
    const char *known = NULL;
    size_t i;
    int err = 0;
    int single = !n->u.agg.without && n->u.agg.ngrouping == 0;
    int one = !n->u.agg.without && n->u.agg.ngrouping == 1;

    gs->of = malloc((v->n ? v->n : 1) * sizeof(*gs->of));
    if (!gs->of)
        return rg__fail(c, RG_ENOMEM, "out of memory");
    if (!single && (ac = agg_cache(c, n)))
        ac->cur++;
    for (i = 0; i < v->n && !err; i++) {
        struct rg__lset ls;
        uint64_t key;
        uint32_t idx, id;
        int found;

        if (single) {
            if (gs->n == 0)
                err = new_group(c, gs, (struct rg__lset){ NULL, 0 });
            gs->of[i] = 0;
        } else if (ac) {
            if (stable_id(c, n, ac, v->e[i].ls, &id)) {
                err = rg__fail(c, RG_ENOMEM, "out of memory");
                break;
            }
            if (ac->stamp[id] != ac->cur) {
                ac->stamp[id] = ac->cur;
                ac->slot[id] = (uint32_t)gs->n;
                err = new_group(c, gs, ac->ls[id]);
            }
            gs->of[i] = ac->slot[id];
        } else {
            uint64_t vk = 0;

            if (one) {
                /* fmix64 is a bijection: distinct addresses, distinct keys. */
                vk = fmix64((uint64_t)(uintptr_t)value_of(v->e[i].ls, n->u.agg.grouping[0],
                                                          &known));
                idx = rg__hmap_get(&byval, vk);
                if (idx != UINT32_MAX) {
                    gs->of[i] = idx;
                    continue;
                }
            }
            key = group_key(c, n, v->e[i].ls);
            if (rg__hmap_put(&map, key, (uint32_t)gs->n, &idx, &found) ||
                (one && rg__hmap_put(&byval, vk, idx, &id, &found))) {
                err = rg__fail(c, RG_ENOMEM, "out of memory");
                break;
            }
            if (idx == gs->n) {
                if (group_labels(c, n, v->e[i].ls, &ls)) {
                    err = rg__fail(c, RG_ENOMEM, "out of memory");
                    break;
                }
                err = new_group(c, gs, ls);
            }
            gs->of[i] = idx;
        }
    }
    rg__hmap_free(&map);
    rg__hmap_free(&byval);
    return err;
}

static int push_val(struct rg__ctx *c, struct grp *g, double f)
{
    if (g->nvals == g->capvals) {
        size_t cap = g->capvals ? g->capvals * 2 : 8;
        double *p = realloc(g->vals, cap * sizeof(*p));

        if (!p)
            return rg__fail(c, RG_ENOMEM, "out of memory");
        g->vals = p;
        g->capvals = cap;
    }
    g->vals[g->nvals++] = f;
    return 0;
}

static void avg_add(struct grp *g, double f)
{
    double q;

    g->count++;
    if (!g->incremental) {
        double c2 = g->kc;
        double nv = rg_kahan_inc(f, g->fv, &c2);

        if (!isinf(nv)) {
            g->fv = nv;
            g->kc = c2;
            return;
        }
        /* The sum would overflow: continue with an incremental mean, scaling the
         * previous mean and its compensation by (n-1)/n before adding f/n. */
        g->incremental = 1;
        g->fmean = g->fv / (g->count - 1);
        g->kc /= g->count - 1;
    }
    q = (g->count - 1) / g->count;
    g->kc = q * g->kc;
    g->fmean = rg_kahan_inc(f / g->count, q * g->fmean, &g->kc);
}

static int aggregate_plain(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                           const struct rg__vec *v, double q, struct rg__vec *out)
{
    enum rg_promql_aggop op = n->u.agg.op;
    struct groups gs = { 0 };
    size_t i;
    int err;

    if ((err = assign_groups(c, n, v, &gs)))
        goto done;
    for (i = 0; i < v->n; i++) {
        struct grp *g = &gs.g[gs.of[i]];
        double f = v->e[i].v;

        if (g->count == 0) {
            g->count = 1;
            g->fv = f;
            g->fmean = f;
            if (op == RG_PROMQL_STDDEV || op == RG_PROMQL_STDVAR)
                g->fv = (isnan(f) || isinf(f)) ? NAN : 0;
            else if (op == RG_PROMQL_GROUP)
                g->fv = 1;
            else if (op == RG_PROMQL_QUANTILE && (err = push_val(c, g, f)))
                goto done;
            continue;
        }
        switch (op) {
        case RG_PROMQL_SUM:
            g->fv = rg_kahan_inc(f, g->fv, &g->kc);
            break;
        case RG_PROMQL_AVG:
            avg_add(g, f);
            break;
        case RG_PROMQL_MAX:
            if (g->fv < f || isnan(g->fv))
                g->fv = f;
            break;
        case RG_PROMQL_MIN:
            if (g->fv > f || isnan(g->fv))
                g->fv = f;
            break;
        case RG_PROMQL_COUNT:
            g->count++;
            break;
        case RG_PROMQL_STDDEV:
        case RG_PROMQL_STDVAR: {
            double delta;

            g->count++;
            delta = f - g->fmean;
            g->fmean += delta / g->count;
            g->fv += delta * (f - g->fmean);
            break;
        }
        case RG_PROMQL_QUANTILE:
            if ((err = push_val(c, g, f)))
                goto done;
            break;
        default:
            break;
        }
    }
    if ((err = rg__vec_reserve(c, out, gs.n)))
        goto done;
    for (i = 0; i < gs.n; i++) {
        struct grp *g = &gs.g[i];
        double r = g->fv;

        switch (op) {
        case RG_PROMQL_SUM:
            r = g->fv + g->kc;
            break;
        case RG_PROMQL_AVG:
            r = g->incremental ? g->fmean + g->kc : g->fv / g->count + g->kc / g->count;
            break;
        case RG_PROMQL_COUNT:
            r = g->count;
            break;
        case RG_PROMQL_STDVAR:
            r = g->fv / g->count;
            break;
        case RG_PROMQL_STDDEV:
            r = sqrt(g->fv / g->count);
            break;
        case RG_PROMQL_QUANTILE:
            r = rg_kernel_quantile(q, g->vals, g->nvals);
            break;
        default:
            break;
        }
        if ((err = rg__vec_push(c, out, g->ls, r, t)))
            goto done;
    }
    out->uniq = 1;
    out->samename = 0;
done:
    groups_free(&gs);
    return err;
}

/* ---- topk, bottomk, limitk, limit_ratio ------------------------------------ */

struct heapctx {
    const struct rg__vec *v;
    int reverse;   /* bottomk: the largest on top */
};

/* vectorByValueHeap.Less (or the reverse heap's): NaN counts as the smallest. */
static int hless(const struct heapctx *h, size_t a, size_t b)
{
    double x = h->v->e[a].v, y = h->v->e[b].v;

    if (isnan(x))
        return 1;
    return h->reverse ? x > y : x < y;
}

static void heap_up(const struct heapctx *h, size_t *hp, size_t j)
{
    while (j > 0) {
        size_t i = (j - 1) / 2, tmp;

        if (i == j || !hless(h, hp[j], hp[i]))
            break;
        tmp = hp[i];
        hp[i] = hp[j];
        hp[j] = tmp;
        j = i;
    }
}

static int heap_down(const struct heapctx *h, size_t *hp, size_t i0, size_t n)
{
    size_t i = i0;

    for (;;) {
        size_t j1 = 2 * i + 1, j, tmp;

        if (j1 >= n)
            break;
        j = j1;
        if (j1 + 1 < n && hless(h, hp[j1 + 1], hp[j1]))
            j = j1 + 1;
        if (!hless(h, hp[j], hp[i]))
            break;
        tmp = hp[i];
        hp[i] = hp[j];
        hp[j] = tmp;
        i = j;
    }
    return i > i0;
}

/* sort.Reverse of the heap order: the result comes out best first, NaN last. */
static int rev_cmp(const void *a, const void *b, void *arg)
{
    const struct heapctx *h = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;

    if (hless(h, y, x))
        return -1;
    if (hless(h, x, y))
        return 1;
    return x < y ? -1 : x > y;
}

static int ratio_take(struct rg__ctx *c, double r, struct rg__lset ls)
{
    double off = (double)rg__lset_hash_packed(ls, &c->hb) / (double)UINT64_MAX;

    return (r >= 0 && off < r) || (r < 0 && off >= 1.0 + r);
}

static int fmt_g(struct rg__ctx *c, double v)
{
    rg_buf_reset(&c->tmp);
    return rg_format_float_g(v, &c->tmp);
}

static int aggregate_k(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                       const struct rg__vec *v, double param, struct rg__vec *out)
{
    enum rg_promql_aggop op = n->u.agg.op;
    struct groups gs = { 0 };
    struct heapctx h = { v, op == RG_PROMQL_BOTTOMK };
    double ratio = 0;
    size_t i, j, k = 0;
    int err;

    out->uniq = v->uniq;
    out->samename = v->samename;
    if (op == RG_PROMQL_LIMIT_RATIO) {
        if (isnan(param)) {
            fmt_g(c, param);
            return rg__fail(c, RG_EEXEC, "Ratio value %s is NaN", c->tmp.data);
        }
        if (param == 0)
            return 0;
        ratio = param;
        if (param < -1.0 || param > 1.0) {
            ratio = param < -1.0 ? -1.0 : 1.0;
            fmt_g(c, param);
            if ((err = rg__warn(c, "PromQL warning: ratio value should be between -1 and 1, "
                                "got %s, capping to %g", c->tmp.data, ratio)))
                return err;
        }
        k = v->n;
    } else {
        if (!(param >= -9223372036854775808.0 && param < 9223372036854775808.0)) {
            fmt_g(c, param);
            return rg__fail(c, RG_EEXEC, "Scalar value %s overflows int64", c->tmp.data);
        }
        if (param < 1.0 || v->n == 0)
            return 0;
        k = param > (double)v->n ? v->n : (size_t)param;
    }
    if ((err = assign_groups(c, n, v, &gs)))
        goto done;
    for (i = 0; i < v->n; i++) {
        struct grp *g = &gs.g[gs.of[i]];

        if (!g->heap) {
            g->heap = malloc(k * sizeof(*g->heap));
            if (!g->heap) {
                err = rg__fail(c, RG_ENOMEM, "out of memory");
                goto done;
            }
        }
        switch (op) {
        case RG_PROMQL_TOPK:
        case RG_PROMQL_BOTTOMK:
            if (g->nheap < k) {
                g->heap[g->nheap++] = i;
                heap_up(&h, g->heap, g->nheap - 1);
            } else {
                double top = v->e[g->heap[0]].v, f = v->e[i].v;
                int better = op == RG_PROMQL_TOPK ? top < f : top > f;

                if (better || (isnan(top) && !isnan(f))) {
                    g->heap[0] = i;
                    if (k > 1 && !heap_down(&h, g->heap, 0, g->nheap))
                        heap_up(&h, g->heap, 0);
                }
            }
            break;
        case RG_PROMQL_LIMITK:
            if (g->nheap < k) {
                g->heap[g->nheap++] = i;
                heap_up(&h, g->heap, g->nheap - 1);
            }
            break;
        default: /* LIMIT_RATIO */
            if (ratio_take(c, ratio, v->e[i].ls)) {
                g->heap[g->nheap++] = i;
                heap_up(&h, g->heap, g->nheap - 1);
            }
            break;
        }
    }
    for (i = 0; i < gs.n; i++) {
        struct grp *g = &gs.g[i];

        if ((op == RG_PROMQL_TOPK || op == RG_PROMQL_BOTTOMK) && g->nheap > 1)
            qsort_r(g->heap, g->nheap, sizeof(*g->heap), rev_cmp, &h);
        for (j = 0; j < g->nheap; j++) {
            const struct rg__el *e = &v->e[g->heap[j]];

            if ((err = rg__vec_push(c, out, e->ls, e->v, t)))
                goto done;
        }
    }
done:
    groups_free(&gs);
    return err;
}

/* ---- count_values ------------------------------------------------------------- */

static int valid_label_name(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    if (!*p)
        return 0;
    /* Prometheus 3 accepts any non-empty valid UTF-8 name. */
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

static int count_values(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                        const struct rg__vec *v, const char *label, struct rg__vec *out)
{
    struct rg__hmap map = { 0 };
    double *counts = NULL;
    size_t i, ng = 0;
    int err = 0;

    if (!valid_label_name(label))
        return rg__fail(c, RG_EEXEC, "invalid label name \"%s\"", label);
    counts = malloc((v->n ? v->n : 1) * sizeof(*counts));
    if (!counts)
        return rg__fail(c, RG_ENOMEM, "out of memory");
    for (i = 0; i < v->n; i++) {
        struct rg__lset ls;
        uint32_t idx;
        int found;

        rg_buf_reset(&c->tmp);
        if (rg_format_float(v->e[i].v, &c->tmp) ||
            rg__lset_set(&c->arena, v->e[i].ls, label, c->tmp.data, c->tmp.len, &ls)) {
            err = rg__fail(c, RG_ENOMEM, "out of memory");
            break;
        }
        if (n->u.agg.without) {
            err = rg__lset_without(&c->arena, ls, n->u.agg.grouping, n->u.agg.ngrouping, 1, &ls);
        } else {
            /* by() keeps the value label besides the grouping labels. */
            struct rg__lset kept;
            const char *val = rg__lset_get(ls, label);

            err = rg__lset_keep(&c->arena, ls, n->u.agg.grouping, n->u.agg.ngrouping, &kept);
            if (!err)
                err = rg__lset_set(&c->arena, kept, label, val, strlen(val), &ls);
        }
        if (err || rg__hmap_put(&map, rg__lset_hash(ls, &c->hb), (uint32_t)ng, &idx, &found)) {
            err = rg__fail(c, RG_ENOMEM, "out of memory");
            break;
        }
        if (!found) {
            counts[ng++] = 0;
            if ((err = rg__vec_push(c, out, ls, 0, t)))
                break;
        }
        counts[idx]++;
    }
    for (i = 0; !err && i < ng; i++)
        out->e[i].v = counts[i];
    out->uniq = 1;
    free(counts);
    rg__hmap_free(&map);
    return err;
}

int rg__eval_aggregate(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                       struct rg__val *out)
{
    enum rg_promql_aggop op = n->u.agg.op;
    struct rg__val v = { 0 };
    const char *label = NULL;
    double param = 0;
    int err;

    if (op == RG_PROMQL_COUNT_VALUES) {
        const struct rg_promql_node *p = rg__unparen(n->u.agg.param);

        if (!p || p->kind != RG_PROMQL_STRING)
            return rg__fail(c, RG_EEXEC, "expected a string parameter for count_values");
        label = p->u.string;
    } else if (n->u.agg.param && (err = rg__eval_scalar(c, n->u.agg.param, t, &param))) {
        return err;
    }
    if ((err = rg__eval(c, n->u.agg.expr, t, &v)))
        return err;
    if (v.type != RG_PROMQL_VT_VECTOR) {
        rg__val_free(c, &v);
        return rg__fail(c, RG_EEXEC, "aggregation expects an instant vector");
    }
    out->type = RG_PROMQL_VT_VECTOR;
    switch (op) {
    case RG_PROMQL_COUNT_VALUES:
        err = count_values(c, n, t, &v.vec, label, &out->vec);
        break;
    case RG_PROMQL_TOPK:
    case RG_PROMQL_BOTTOMK:
    case RG_PROMQL_LIMITK:
    case RG_PROMQL_LIMIT_RATIO:
        err = aggregate_k(c, n, t, &v.vec, param, &out->vec);
        break;
    case RG_PROMQL_QUANTILE:
        if (isnan(param) || param < 0 || param > 1) {
            fmt_g(c, param);
            if ((err = rg__warn(c, "PromQL warning: quantile value should be between 0 and 1, "
                                "got %s", c->tmp.data)))
                break;
        }
        err = aggregate_plain(c, n, t, &v.vec, param, &out->vec);
        break;
    default:
        err = aggregate_plain(c, n, t, &v.vec, param, &out->vec);
        break;
    }
    rg__val_free(c, &v);
    return err;
}
