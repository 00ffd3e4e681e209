/* promql/engine.c - drives PromQL evaluation: selectors, subqueries, instant and range
 * queries, and turning internal values into results.
 *
 * The tree is evaluated once per evaluation time (rg__eval). A range query loops
 * over its steps and merges the per-step vectors into series keyed by the 64-bit
 * hash of their label sets, raising "vector cannot contain metrics with the same
 * labelset" when one step yields a label set twice, as Prometheus' rangeEval does.
 * Selectors resolve their series once per query (the store does not change while a
 * query runs) and keep the label arrays in the query arena; per step they only
 * read samples. Instant selectors take the newest sample in (T - lookback, T] and
 * drop the series when it is a stale marker; range selectors take (T - r, T]
 * without stale markers (Prometheus 3 left-open windows). Subqueries evaluate their
 * expression at the multiples of the step inside (T - range, T].
 *
 * In a range query, selectors and range functions over a range selector do not read
 * the store step by step: on their first step they read every series once for all
 * steps and slide a cursor (or a window) along the step times, keeping each step's
 * values (a "grid") until that step is evaluated. This follows Prometheus' own
 * series-at-a-time range evaluation and avoids one search per series and step.
 *
 * Large selections are read in the store's order (rg_store_select_visit), which
 * follows memory, instead of label order, which scatters reads over it; range
 * functions then append their values in label order, so results, sums included,
 * are bit for bit those of reading in label order. A selection's label arrays lie
 * in label order in one block. Large selections are kept between queries in the
 * store's readers' cache, keyed by their matchers, while no series went away and
 * no new one matches them: the deployments manager runs the same selectors every
 * second.
 */
#include "promql/engine.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql/eval.h"
#include "promql/kernels.h"
#include "util/err.h"
#include "util/time.h"

void rg_promql_opts_default(struct rg_promql_opts *opts)
{
    opts->lookback_ms = 300000;
    opts->max_samples = 50000000;
    opts->timeout_ms = 120000;
    opts->default_step_ms = 60000;
}

/* ---- Errors, warnings, limits ------------------------------------------ */

int rg__fail(struct rg__ctx *c, int code, const char *fmt, ...)
{
    va_list ap;

    /* The first failure explains the error; callers up the stack only unwind. */
    if (c->err && c->err->len == 0) {
        va_start(ap, fmt);
        (void)rg_buf_vprintf(c->err, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Doubles the capacity *@cap of the array @arr of @elem-byte elements, or makes it @first
 * when it is 0. Returns the moved array and updates *@cap, or returns NULL and leaves
 * @arr and *@cap as they were. */
static void *grow_array(void *arr, size_t *cap, size_t first, size_t elem)
{
    size_t want = *cap ? *cap * 2 : first;
    void *a = realloc(arr, want * elem);

    if (a)
        *cap = want;
    return a;
}

/* Appends one zeroed @elem-byte element to the array @arr of *@n elements with room for
 * *@cap, growing it as grow_array() does when it is full. Returns the array, possibly
 * moved, with *@n counted up; or NULL, leaving @arr, *@n and *@cap as they were. */
static void *push_zeroed(void *arr, size_t *n, size_t *cap, size_t first, size_t elem)
{
    if (*n == *cap) {
        arr = grow_array(arr, cap, first, elem);
        if (!arr)
            return NULL;
    }
    memset((char *)arr + *n * elem, 0, elem);
    (*n)++;
    return arr;
}

static int oom(struct rg__ctx *c)
{
    return rg__fail(c, RG_ENOMEM, "out of memory");
}

int rg__warn(struct rg__ctx *c, const char *fmt, ...)
{
    struct rg_buf b = { 0 };
    va_list ap;
    size_t i;
    int err;

    va_start(ap, fmt);
    err = rg_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (err)
        return oom(c);
    /* A warning raised at every step of a range query is reported once. */
    for (i = 0; i < c->nwarnings; i++) {
        if (strcmp(c->warnings[i], b.data) == 0) {
            rg_buf_cleanup(&b);
            return 0;
        }
    }
    if (c->nwarnings == c->capwarnings) {
        char **w = grow_array(c->warnings, &c->capwarnings, 4, sizeof(*w));

        if (!w) {
            rg_buf_cleanup(&b);
            return oom(c);
        }
        c->warnings = w;
    }
    c->warnings[c->nwarnings++] = rg_buf_steal(&b, NULL);
    return 0;
}

int rg__check_time(struct rg__ctx *c)
{
    if (c->deadline && rg_mono_ms() > c->deadline)
        return rg__fail(c, RG_ETIMEDOUT, "query timed out in query execution");
    return 0;
}

static int charge(struct rg__ctx *c, size_t n)
{
    c->cur_samples += n;
    if (c->cur_samples > c->opts->max_samples)
        return rg__fail(c, RG_ELIMIT,
                        "query processing would load too many samples into memory in query "
                        "execution");
    return 0;
}

/* ---- Values -------------------------------------------------------------- */

int rg__vec_reserve(struct rg__ctx *c, struct rg__vec *v, size_t more)
{
    size_t cap;
    struct rg__el *e;

    if (v->cap - v->n >= more)
        return 0;
    cap = v->cap ? v->cap : 8;
    while (cap - v->n < more) {
        if (cap > ((size_t)-1 / sizeof(*e)) / 2)
            return oom(c);
        cap *= 2;
    }
    e = realloc(v->e, cap * sizeof(*e));
    if (!e)
        return oom(c);
    v->e = e;
    v->cap = cap;
    return 0;
}

int rg__vec_push(struct rg__ctx *c, struct rg__vec *v, struct rg__lset ls, double val,
                 int64_t t)
{
    int err;

    if (v->n == v->cap && (err = rg__vec_reserve(c, v, 1)))
        return err;
    v->e[v->n].ls = ls;
    v->e[v->n].v = val;
    v->e[v->n].t = t;
    v->n++;
    v->counted++;
    return charge(c, 1);
}

void rg__vec_free(struct rg__ctx *c, struct rg__vec *v)
{
    c->cur_samples -= v->counted;
    free(v->e);
    memset(v, 0, sizeof(*v));
}

void rg__mat_free(struct rg__ctx *c, struct rg__mat *m)
{
    c->cur_samples -= m->counted;
    free(m->s);
    free(m->pts);
    memset(m, 0, sizeof(*m));
}

void rg__val_free(struct rg__ctx *c, struct rg__val *v)
{
    if (!v)
        return;
    if (v->type == RG_PROMQL_VT_VECTOR)
        rg__vec_free(c, &v->vec);
    else if (v->type == RG_PROMQL_VT_MATRIX)
        rg__mat_free(c, &v->mat);
    memset(v, 0, sizeof(*v));
}

int rg__vec_check_dups(struct rg__ctx *c, struct rg__vec *v)
{
    size_t i;
    uint32_t got;
    int found, err;

    if (v->uniq || v->n < 2) {
        v->uniq = 1;
        return 0;
    }
    err = rg__hmap_reset(&c->hm, v->n);
    if (err)
        return oom(c);
    for (i = 0; i < v->n; i++) {
        err = rg__hmap_put(&c->hm, rg__lset_hash(v->e[i].ls, &c->hb), (uint32_t)i, &got, &found);
        if (err)
            return oom(c);
        if (found)
            return rg__fail(c, RG_EEXEC, "vector cannot contain metrics with the same labelset");
    }
    v->uniq = 1;
    return 0;
}

int rg__vec_drop_names(struct rg__ctx *c, struct rg__vec *v)
{
    size_t i;

    for (i = 0; i < v->n; i++)
        if (rg__lset_drop_name(&c->arena, v->e[i].ls, &v->e[i].ls))
            return oom(c);
    v->uniq = v->uniq && v->samename;
    v->samename = 1;
    return 0;
}

const struct rg_promql_node *rg__unparen(const struct rg_promql_node *n)
{
    while (n && n->kind == RG_PROMQL_PAREN)
        n = n->u.un.expr;
    return n;
}

int rg__eval_scalar(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t, double *out)
{
    struct rg__val v = { 0 };
    int err = rg__eval(c, n, t, &v);

    if (err)
        return err;
    if (v.type != RG_PROMQL_VT_SCALAR) {
        rg__val_free(c, &v);
        return rg__fail(c, RG_EEXEC, "expected a scalar argument");
    }
    *out = v.scalar;
    return 0;
}

/* ---- Selectors ------------------------------------------------------------ */

static int64_t at_time(const struct rg__ctx *c, enum rg_promql_at at, int64_t at_ms, int64_t t)
{
    switch (at) {
    case RG_PROMQL_AT_TIME:
        return at_ms;
    case RG_PROMQL_AT_START:
        return c->start;
    case RG_PROMQL_AT_END:
        return c->end;
    default:
        return t;
    }
}

/* Saturating subtraction keeps absurd offsets and ranges from wrapping around. */
int64_t rg__sub_sat(int64_t a, int64_t b)
{
    if (b > 0 && a < INT64_MIN + b)
        return INT64_MIN;
    if (b < 0 && a > INT64_MAX + b)
        return INT64_MAX;
    return a - b;
}

/* Makes sc->vseries, the series in the order of sc->visit, which the store gave
 * with the selection: the order it keeps them in, which follows their creation and
 * so their place in memory, while label order scatters them, and reading in label
 * order would cost a cache and TLB miss per series. Small selections, and any when
 * memory is short, are read in label order (visit NULL): the order of reading never
 * changes a result. */
static void visit_order(struct rg__selcache *sc)
{
    if (sc->visit && sc->n >= 256)
        sc->vseries = malloc(sc->n * sizeof(*sc->vseries));
    if (!sc->vseries) {
        free(sc->visit);
        sc->visit = NULL;
        return;
    }
    for (size_t j = 0; j < sc->n; j++)
        sc->vseries[j] = sc->series[sc->visit[j]];
}

/* Fills sc->ls with the label arrays of the selected series. The arrays are laid
 * out in label order in one block, so that evaluation, which goes through a
 * selection's label sets in label order, reads the block front to back; the series
 * are read in memory order (sc->visit) in two passes, counting then copying. The
 * block is malloc'd into sc->labels when sc->ls is (ls_heap), else in the arena. */
static int label_arrays(struct rg__ctx *c, struct rg__selcache *sc)
{
    struct rg_label *block, *start;
    uint32_t *nls;
    size_t i, j, total = 0, bytes;

    if (!sc->n)
        return 0;
    nls = malloc(sc->n * sizeof(*nls));
    if (!nls)
        return oom(c);
    for (j = 0; j < sc->n; j++) {
        i = rg__sel_visit(sc, j);
        if (j + 8 < sc->n)
            rg_series_prefetch(rg__sel_vseries(sc, j + 8));
        nls[i] = (uint32_t)rg_series_label_count(rg__sel_vseries(sc, j));
        total += nls[i];
    }
    bytes = (total ? total : 1) * sizeof(*block);
    block = NULL;
    /* Offsets into the block are kept as uint32 in nls. */
    if (total <= UINT32_MAX && total <= ((size_t)-1 / 2) / sizeof(*block))
        block = sc->ls_heap ? (sc->labels = malloc(bytes)) : rg__arena_alloc(&c->arena, bytes);
    if (!block) {
        free(nls);
        return oom(c);
    }
    /* nls[i] becomes the offset of series i's labels in the block. */
    start = block;
    for (i = 0; i < sc->n; i++) {
        uint32_t nl = nls[i];

        sc->ls[i].l = block;
        sc->ls[i].n = nl;
        nls[i] = (uint32_t)(block - start);
        block += nl;
    }
    for (j = 0; j < sc->n; j++) {
        i = rg__sel_visit(sc, j);
        (void)rg_series_labels(rg__sel_vseries(sc, j), start + nls[i], sc->ls[i].n);
    }
    free(nls);
    return 0;
}

/* Large selections are kept between queries in the store's readers' cache
 * (rg_store_cache_set), keyed by their matchers: the deployments manager runs the
 * same selectors every second, and making a selection of 100,000 series (postings,
 * order, label arrays) costs more than reading their samples. The store drops the
 * cache when series go away; an entry is used again only when none of the series
 * created since it was made matches its matchers, so it is exactly what selecting
 * again would give. Entries are evicted least recently used first, never one the
 * running query uses, and hold at most half the bytes the store holds in all. */
#define SELCACHE_MAX 16    /* selections kept */
#define SELCACHE_MIN 256   /* smaller selections are cheap to make again */
#define SELCACHE_RECHECK 4096   /* new series checked against an entry at most */

struct selentry {
    char *key;                 /* owned: the matchers, see sel_key() */
    size_t keylen;
    struct rg_series **series; /* owned */
    uint32_t *visit;           /* owned, NULL: in order */
    struct rg_series **vseries;   /* owned, with visit */
    struct rg__lset *ls;       /* owned */
    struct rg_label *labels;   /* owned: the block ls points into */
    size_t n;
    int samename;
    uint64_t used;             /* stamp of the last query that used it */
    uint64_t mark;             /* rg_store_created_mark() when it was last right */
    size_t bytes;              /* held by the entry */
};

struct selstore {
    struct selentry e[SELCACHE_MAX];
    size_t n;
    size_t bytes;              /* held by all entries */
    uint64_t clock;            /* last query stamp handed out */
};

static void selentry_free(struct selentry *e)
{
    free(e->key);
    free(e->series);
    free(e->visit);
    free(e->vseries);
    free(e->ls);
    free(e->labels);
}

static void selstore_free(void *p)
{
    struct selstore *cs = p;

    for (size_t i = 0; cs && i < cs->n; i++)
        selentry_free(&cs->e[i]);
    free(cs);
}

/* The cache key of @n's matchers: op, name, NUL, value, NUL for each. NULL when
 * out of memory (the selection is then simply not cached). */
static char *sel_key(const struct rg_promql_node *n, size_t *len)
{
    size_t i, w = 0, total = 1;
    char *k;

    for (i = 0; i < n->u.sel.nmatchers; i++)
        total += 3 + strlen(n->u.sel.matchers[i].name) + strlen(n->u.sel.matchers[i].value);
    k = malloc(total);
    if (!k)
        return NULL;
    for (i = 0; i < n->u.sel.nmatchers; i++) {
        const struct rg_promql_matcher *pm = &n->u.sel.matchers[i];
        size_t nl = strlen(pm->name) + 1, vl = strlen(pm->value) + 1;

        k[w++] = (char)('0' + (int)pm->op);
        memcpy(k + w, pm->name, nl);
        w += nl;
        memcpy(k + w, pm->value, vl);
        w += vl;
    }
    *len = w;
    return k;
}

size_t rg__selcache_entries(const struct rg_store *store)
{
    const struct selstore *cs = rg_store_cache(store, selstore_free);

    return cs ? cs->n : 0;
}

/* This query's stamp in @cs. */
static uint64_t sel_stamp(struct rg__ctx *c, struct selstore *cs)
{
    if (!c->selclock)
        c->selclock = ++cs->clock;
    return c->selclock;
}

struct created_ud {
    const struct rg_matcher *m;
    size_t nm;
};

static int created_matches(const struct rg_series *s, void *ud)
{
    const struct created_ud *u = ud;

    return rg_store_series_matches(s, u->m, u->nm);
}

/* Fills @sc from the cached selection of key @key (matchers @m), if any, and still
 * right: series created since it was made must not match. Returns 1 on a hit. */
static int sel_lookup(struct rg__ctx *c, struct rg__selcache *sc, const char *key, size_t len,
                      const struct rg_matcher *m, size_t nm)
{
    struct selstore *cs = rg_store_cache(c->store, selstore_free);
    uint64_t mark = rg_store_created_mark(c->store);

    for (size_t i = 0; cs && key && i < cs->n; i++) {
        struct selentry *e = &cs->e[i];
        struct created_ud u = { m, nm };

        if (e->keylen != len || memcmp(e->key, key, len) != 0)
            continue;
        /* Checking many new series one by one costs more than selecting again. */
        if (e->mark != mark &&
            (mark - e->mark > SELCACHE_RECHECK ||
             rg_store_created_since(c->store, e->mark, created_matches, &u))) {
            cs->bytes -= e->bytes;
            selentry_free(e);
            cs->e[i] = cs->e[--cs->n];
            return 0;
        }
        e->mark = mark;
        e->used = sel_stamp(c, cs);
        sc->series = e->series;
        sc->visit = e->visit;
        sc->vseries = e->vseries;
        sc->ls = e->ls;
        sc->labels = e->labels;
        sc->n = e->n;
        sc->samename = e->samename;
        sc->borrowed = 1;
        return 1;
    }
    return 0;
}

/* Hands the heap-built selection @sc over to the store's cache under @key (taken
 * over as well), when there is room. */
static void sel_insert(struct rg__ctx *c, struct rg__selcache *sc, char *key, size_t len)
{
    struct selstore *cs = rg_store_cache(c->store, selstore_free);
    size_t budget = rg_store_bytes(c->store) / 2, bytes = len, nl = 0;
    struct selentry *e;

    for (size_t i = 0; i < sc->n; i++)
        nl += sc->ls[i].n;
    bytes += sc->n * (sizeof(*sc->series) + sizeof(*sc->ls)) + nl * sizeof(*sc->labels);
    if (sc->visit)
        bytes += sc->n * (sizeof(*sc->visit) + sizeof(*sc->vseries));
    /* Too big to keep at all: evicting the others would not make room. */
    if (bytes > budget) {
        free(key);
        return;
    }
    if (!cs) {
        if (!(cs = calloc(1, sizeof(*cs)))) {
            free(key);
            return;
        }
        rg_store_cache_set(c->store, cs, selstore_free);
    }
    while (cs->n == SELCACHE_MAX || cs->bytes + bytes > budget) {
        size_t victim = cs->n;

        for (size_t i = 0; i < cs->n; i++)
            if (cs->e[i].used != sel_stamp(c, cs) &&
                (victim == cs->n || cs->e[i].used < cs->e[victim].used))
                victim = i;
        if (victim == cs->n) {
            free(key);
            return;
        }
        cs->bytes -= cs->e[victim].bytes;
        selentry_free(&cs->e[victim]);
        cs->e[victim] = cs->e[--cs->n];
    }
    e = &cs->e[cs->n++];
    e->key = key;
    e->keylen = len;
    e->series = sc->series;
    e->visit = sc->visit;
    e->vseries = sc->vseries;
    e->ls = sc->ls;
    e->labels = sc->labels;
    e->n = sc->n;
    e->samename = sc->samename;
    e->used = sel_stamp(c, cs);
    e->mark = rg_store_created_mark(c->store);
    e->bytes = bytes;
    cs->bytes += bytes;
    sc->borrowed = 1;
}

int rg__select_series(struct rg__ctx *c, const struct rg_promql_node *n,
                      struct rg__selcache **out)
{
    struct rg__selcache *sc;
    struct rg_matcher *m = NULL;
    size_t i, nm = n->u.sel.nmatchers, keylen = 0;
    char *key;
    int err;

    for (i = 0; i < c->nsel; i++) {
        if (c->sel[i]->node == n) {
            *out = c->sel[i];
            return 0;
        }
    }
    if (c->nsel == c->capsel) {
        struct rg__selcache **p = grow_array(c->sel, &c->capsel, 4, sizeof(*p));

        if (!p)
            return oom(c);
        c->sel = p;
    }
    sc = calloc(1, sizeof(*sc));
    if (!sc)
        return oom(c);
    c->sel[c->nsel++] = sc;
    sc->node = n;
    if (nm) {
        m = calloc(nm, sizeof(*m));
        if (!m)
            return oom(c);
    }
    for (i = 0; i < nm; i++) {
        const struct rg_promql_matcher *pm = &n->u.sel.matchers[i];

        m[i].op = pm->op;
        m[i].name = pm->name;
        m[i].value = pm->value;
        if (pm->op == RG_MATCH_RE || pm->op == RG_MATCH_NRE) {
            m[i].re_match = rg_promql_matcher_re_match;
            m[i].re = (void *)pm;
        }
    }
    key = nm ? sel_key(n, &keylen) : NULL;
    if (sel_lookup(c, sc, key, keylen, m, nm)) {
        free(key);
        free(m);
        *out = sc;
        return 0;
    }
    err = rg_store_select_visit(c->store, m, nm, &sc->series, &sc->visit, &sc->n);
    free(m);
    if (err) {
        free(key);
        sc->series = NULL;
        sc->n = 0;
        return oom(c);
    }
    if (!key || sc->n < SELCACHE_MIN) {
        free(key);
        key = NULL;
    }
    sc->ls_heap = key != NULL;
    sc->ls = key ? malloc(sc->n * sizeof(*sc->ls))
                 : rg__arena_alloc(&c->arena, (sc->n ? sc->n : 1) * sizeof(*sc->ls));
    if (!sc->ls) {
        free(key);
        sc->n = 0;
        return oom(c);
    }
    visit_order(sc);
    if ((err = label_arrays(c, sc))) {
        free(key);
        sc->n = 0;
        return err;
    }
    sc->samename = 1;
    for (i = 1; i < sc->n && sc->samename; i++) {
        const char *a = rg__lset_get(sc->ls[0], "__name__");
        const char *b = rg__lset_get(sc->ls[i], "__name__");

        /* Interned names: equal names are usually the same string. */
        if (a != b && ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0)))
            sc->samename = 0;
    }
    if (key)
        sel_insert(c, sc, key, keylen);
    *out = sc;
    return 0;
}

int64_t rg__ref_time(const struct rg__ctx *c, enum rg_promql_at at, int64_t at_ms,
                     int64_t offset_ms, int64_t t)
{
    return rg__sub_sat(at_time(c, at, at_ms, t), offset_ms);
}

/* ---- Range-query grids ------------------------------------------------------ */

int rg__grid_step(const struct rg__ctx *c, int64_t t, size_t *k)
{
    uint64_t d;

    if (c->gn == 0 || c->subq_depth > 0 || t < c->gstart)
        return 0;
    /* Unsigned arithmetic: the difference of two int64 may not fit in one. */
    d = (uint64_t)t - (uint64_t)c->gstart;
    if (d % (uint64_t)c->gstep != 0 || d / (uint64_t)c->gstep >= c->gn)
        return 0;
    *k = (size_t)(d / (uint64_t)c->gstep);
    return 1;
}

int rg__grid_fits(const struct rg__ctx *c, size_t nseries)
{
    /* The grid holds up to series x steps values at once; beyond a quarter of the
     * sample limit the step-by-step evaluation is used instead. */
    return c->gn <= (c->opts->max_samples / 4) / (nseries ? nseries : 1);
}

struct rg__grid *rg__grid_find(const struct rg__ctx *c, const struct rg_promql_node *n)
{
    size_t i;

    for (i = 0; i < c->ngrids; i++)
        if (c->grids[i]->node == n)
            return c->grids[i];
    return NULL;
}

int rg__grid_new(struct rg__ctx *c, const struct rg_promql_node *n, struct rg__selcache *sc,
                 struct rg__grid **out)
{
    struct rg__grid *g;

    if (c->ngrids == c->capgrids) {
        struct rg__grid **p = grow_array(c->grids, &c->capgrids, 4, sizeof(*p));

        if (!p)
            return oom(c);
        c->grids = p;
    }
    g = calloc(1, sizeof(*g));
    if (!g)
        return oom(c);
    g->steps = calloc(c->gn, sizeof(*g->steps));
    if (!g->steps) {
        free(g);
        return oom(c);
    }
    g->node = n;
    g->sc = sc;
    c->grids[c->ngrids++] = g;
    *out = g;
    return 0;
}

int rg__grid_add(struct rg__ctx *c, struct rg__grid *g, size_t k, uint32_t idx, double v,
                 int64_t ts)
{
    struct rg__gstep *st = &g->steps[k];

    if (st->n == st->cap) {
        struct rg__gitem *p = grow_array(st->it, &st->cap, 64, sizeof(*p));

        if (!p)
            return oom(c);
        st->it = p;
    }
    st->it[st->n].idx = idx;
    st->it[st->n].v = v;
    st->it[st->n++].t = ts;
    return charge(c, 1);
}

int rg__grid_take(struct rg__ctx *c, struct rg__grid *g, size_t k, struct rg__vec *out)
{
    struct rg__gstep *st = &g->steps[k];
    size_t i;
    int err;

    if (st->taken)
        return 1;
    st->taken = 1;
    err = rg__vec_reserve(c, out, st->n);

    for (i = 0; !err && i < st->n; i++)
        err = rg__vec_push(c, out, g->sc->ls[st->it[i].idx], st->it[i].v, st->it[i].t);
    c->cur_samples -= st->n;
    free(st->it);
    st->it = NULL;
    st->n = st->cap = 0;
    out->uniq = 1;
    out->samename = g->sc->samename;
    return err;
}

static void grids_free(struct rg__ctx *c)
{
    size_t i, k;

    for (i = 0; i < c->ngrids; i++) {
        for (k = 0; k < c->gn; k++)
            free(c->grids[i]->steps[k].it);
        free(c->grids[i]->steps);
        free(c->grids[i]);
    }
    free(c->grids);
}

/* Fills the grid of instant selector @n: each series' samples over all steps are
 * read once, and a cursor walks them step by step (newest sample in
 * (ref - lookback, ref], none when it is a stale marker). */
static int selector_grid(struct rg__ctx *c, const struct rg_promql_node *n,
                         struct rg__selcache *sc, struct rg__grid **out)
{
    struct rg__grid *g;
    int64_t first, last, mint;
    size_t i, k;
    int err = rg__grid_new(c, n, sc, &g);

    if (err)
        return err;
    first = rg__ref_time(c, n->u.sel.at, n->u.sel.at_ms, n->u.sel.offset_ms, c->gstart);
    last = rg__ref_time(c, n->u.sel.at, n->u.sel.at_ms, n->u.sel.offset_ms,
                        c->gstart + (int64_t)(c->gn - 1) * c->gstep);
    mint = rg__sub_sat(first, c->opts->lookback_ms);
    mint = mint == INT64_MAX ? mint : mint + 1;
    for (i = 0; i < sc->n; i++) {
        size_t ns = 0, j = 0;

        if ((i & 4095) == 4095 && (err = rg__check_time(c)))
            return err;
        rg__sel_prefetch_labels(sc, i);
        if (rg_series_samples(sc->series[i], mint, last, &c->sbuf, &ns, &c->scap))
            return oom(c);
        for (k = 0; k < c->gn && ns; k++) {
            int64_t ref = rg__ref_time(c, n->u.sel.at, n->u.sel.at_ms, n->u.sel.offset_ms,
                                       c->gstart + (int64_t)k * c->gstep);
            const struct rg_sample *s;

            while (j < ns && c->sbuf[j].t <= ref)
                j++;
            if (j == 0)
                continue;
            s = &c->sbuf[j - 1];
            if (s->t <= rg__sub_sat(ref, c->opts->lookback_ms) || rg_is_stale_nan(s->v))
                continue;
            if ((err = rg__grid_add(c, g, k, (uint32_t)i, s->v, s->t)))
                return err;
        }
    }
    *out = g;
    return 0;
}

static int eval_selector(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                         struct rg__vec *out)
{
    struct rg__selcache *sc;
    struct rg__grid *g;
    struct rg_sample s;
    int64_t ref, mint;
    size_t i, k;
    int err = rg__select_series(c, n, &sc);

    if (err)
        return err;
    if (rg__grid_step(c, t, &k)) {
        g = rg__grid_find(c, n);
        if (!g && rg__grid_fits(c, sc->n) && (err = selector_grid(c, n, sc, &g)))
            return err;
        if (g && (err = rg__grid_take(c, g, k, out)) <= 0)
            return err;
    }
    ref = rg__sub_sat(at_time(c, n->u.sel.at, n->u.sel.at_ms, t), n->u.sel.offset_ms);
    /* Prometheus 3 excludes a sample exactly lookback old: the window is open. */
    mint = rg__sub_sat(ref, c->opts->lookback_ms);
    mint = mint == INT64_MAX ? mint : mint + 1;
    out->uniq = 1;
    out->samename = sc->samename;
    for (i = 0; i < sc->n; i++) {
        if ((i & 4095) == 4095 && (err = rg__check_time(c)))
            return err;
        rg__sel_prefetch_labels(sc, i);
        if (!rg_series_sample_at(sc->series[i], mint, ref, &s) || rg_is_stale_nan(s.v))
            continue;
        err = rg__vec_push(c, out, sc->ls[i], s.v, s.t);
        if (err)
            return err;
    }
    return 0;
}

static int mat_push_series(struct rg__ctx *c, struct rg__mat *m, struct rg__lset ls,
                           size_t off, size_t n)
{
    if (m->n == m->cap) {
        struct rg__mser *p = grow_array(m->s, &m->cap, 8, sizeof(*p));

        if (!p)
            return oom(c);
        m->s = p;
    }
    m->s[m->n].ls = ls;
    m->s[m->n].off = off;
    m->s[m->n].n = n;
    m->n++;
    return 0;
}

/* Selects the series of the matrix selector @n evaluated at @t into *@sc and fills the
 * window fields of @m: the window is (start, end] with end the selector's reference time
 * (its @ modifier and offset applied). A start of INT64_MAX means the window is empty. */
static int open_range(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                      struct rg__selcache **sc, struct rg__mat *m)
{
    int64_t ref;
    int err = rg__select_series(c, n, sc);

    if (err)
        return err;
    ref = rg__ref_time(c, n->u.sel.at, n->u.sel.at_ms, n->u.sel.offset_ms, t);
    m->range_start = rg__sub_sat(ref, n->u.sel.range_ms);
    m->range_end = ref;
    m->range_ms = n->u.sel.range_ms;
    m->samename = (*sc)->samename;
    return 0;
}

static int eval_matrix_sel(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                           struct rg__mat *out)
{
    struct rg__selcache *sc;
    int64_t ref, mint;
    size_t i, j, k, off;
    int err = open_range(c, n, t, &sc, out);

    if (err)
        return err;
    ref = out->range_end;
    mint = out->range_start;
    if (mint == INT64_MAX)
        return 0;
    for (i = 0; i < sc->n; i++) {
        if ((i & 4095) == 4095 && (err = rg__check_time(c)))
            return err;
        off = out->npts;
        rg__sel_prefetch_labels(sc, i);
        if (rg_series_samples(sc->series[i], mint + 1, ref, &out->pts, &out->npts,
                              &out->cap_pts))
            return oom(c);
        /* Stale markers only end a series; they never enter a range vector. */
        for (j = k = off; j < out->npts; j++)
            if (!rg__is_stale(out->pts[j].v))
                out->pts[k++] = out->pts[j];
        out->npts = k;
        if (k == off)
            continue;
        out->counted += k - off;
        if ((err = charge(c, k - off)))
            return err;
        if ((err = mat_push_series(c, out, sc->ls[i], off, k - off)))
            return err;
    }
    return 0;
}

int rg__matrix_stream(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                      int (*fn)(struct rg__ctx *c, const struct rg_sample *s, size_t ns,
                                const struct rg__mat *meta, void *ud, double *v),
                      void *ud, struct rg__mat *meta, struct rg__vec *out)
{
    struct rg__selcache *sc;
    int64_t ref, mint;
    size_t i, j, k, ns, produced = 0;
    double *vals = NULL, v;
    uint64_t *has = NULL;   /* bit i: vals[i] is set */
    int err = open_range(c, n, t, &sc, meta);

    if (err)
        return err;
    ref = meta->range_end;
    mint = meta->range_start;
    if (mint == INT64_MAX)
        return 0;
    /* Read in memory order, the values wait here to be appended in label order. */
    if (sc->visit) {
        vals = malloc(sc->n * sizeof(*vals));
        has = calloc(sc->n / 64 + 1, sizeof(*has));
        if (!vals || !has) {
            err = oom(c);
            goto done;
        }
    }
    for (j = 0; j < sc->n; j++) {
        if ((j & 4095) == 4095 && (err = rg__check_time(c)))
            goto done;
        i = rg__sel_visit(sc, j);
        ns = 0;
        rg__sel_prefetch(sc, j);
        if (rg_series_samples(rg__sel_vseries(sc, j), mint + 1, ref, &c->sbuf, &ns,
                              &c->scap)) {
            err = oom(c);
            goto done;
        }
        for (size_t r = k = 0; r < ns; r++)
            if (!rg__is_stale(c->sbuf[r].v))
                c->sbuf[k++] = c->sbuf[r];
        if (k == 0)
            continue;
        /* The series' samples are held only while its value is computed. */
        if ((err = charge(c, k)))
            goto done;
        err = fn(c, c->sbuf, k, meta, ud, &v);
        c->cur_samples -= k;
        if (err <= 0) {
            if (err)
                goto done;
            continue;
        }
        if (!vals) {
            if ((err = rg__vec_push(c, out, sc->ls[i], v, t)))
                goto done;
            continue;
        }
        /* Charged as the element it becomes, so that the limit trips at the same
         * point as when elements are appended as they come. */
        vals[i] = v;
        has[i / 64] |= UINT64_C(1) << (i % 64);
        produced++;
        if ((err = charge(c, 1)))
            goto done;
    }
    err = 0;
    if (vals) {
        c->cur_samples -= produced;
        err = rg__vec_reserve(c, out, produced);
        produced = 0;
        for (i = 0; !err && i < sc->n; i++)
            if (has[i / 64] >> (i % 64) & 1)
                err = rg__vec_push(c, out, sc->ls[i], vals[i], t);
    }
done:
    c->cur_samples -= produced;
    free(vals);
    free(has);
    return err;
}

/* ---- Subqueries ------------------------------------------------------------ */

struct subser {
    struct rg__lset ls;
    struct rg_sample *pts;
    size_t n;
    size_t cap;
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static int eval_subquery(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                         struct rg__mat *out)
{
    struct subser *ss = NULL;
    size_t nss = 0, capss = 0, i, total = 0;
    struct rg__hmap map = { 0 };
    int64_t ref, step, x, ts, first;
    int err = 0;

    ref = rg__sub_sat(at_time(c, n->u.sub.at, n->u.sub.at_ms, t), n->u.sub.offset_ms);
    step = n->u.sub.step_ms > 0 ? n->u.sub.step_ms : c->opts->default_step_ms;
    if (step <= 0)
        step = 60000;
    x = rg__sub_sat(ref, n->u.sub.range_ms);
    out->range_start = x;
    out->range_end = ref;
    out->range_ms = n->u.sub.range_ms;
    /* The first step is the first multiple of the step strictly after the left edge. */
    first = floor_div(x, step);
    if (first > INT64_MAX / step - 1)
        return 0;
    first = (first + 1) * step;
    for (ts = first; ts <= ref; ts += step) {
        struct rg__val v = { 0 };

        if ((err = rg__check_time(c)))
            goto done;
        c->subq_depth++;
        err = rg__eval(c, n->u.sub.expr, ts, &v);
        c->subq_depth--;
        if (err)
            goto done;
        if (v.type == RG_PROMQL_VT_SCALAR) {
            v.type = RG_PROMQL_VT_VECTOR;
            if ((err = rg__vec_push(c, &v.vec, (struct rg__lset){ NULL, 0 }, v.scalar, ts))) {
                rg__val_free(c, &v);
                goto done;
            }
        }
        for (i = 0; v.type == RG_PROMQL_VT_VECTOR && i < v.vec.n; i++) {
            uint64_t h = rg__lset_hash(v.vec.e[i].ls, &c->hb);
            uint32_t idx;
            int found;
            struct subser *s;

            if (rg__hmap_put(&map, h, (uint32_t)nss, &idx, &found)) {
                err = oom(c);
                break;
            }
            if (!found) {
                struct subser *p = push_zeroed(ss, &nss, &capss, 8, sizeof(*p));

                if (!p) {
                    err = oom(c);
                    break;
                }
                ss = p;
                ss[nss - 1].ls = v.vec.e[i].ls;
            }
            s = &ss[idx];
            if (s->n == s->cap) {
                struct rg_sample *p = grow_array(s->pts, &s->cap, 8, sizeof(*p));

                if (!p) {
                    err = oom(c);
                    break;
                }
                s->pts = p;
            }
            s->pts[s->n].t = ts;
            s->pts[s->n++].v = v.vec.e[i].v;
            total++;
            out->counted++;
            if ((err = charge(c, 1)))
                break;
        }
        rg__val_free(c, &v);
        if (err)
            goto done;
        if (ts > INT64_MAX - step)
            break;
    }
    if (total) {
        out->pts = malloc(total * sizeof(*out->pts));
        if (!out->pts) {
            err = oom(c);
            goto done;
        }
        out->cap_pts = total;
    }
    for (i = 0; i < nss; i++) {
        memcpy(out->pts + out->npts, ss[i].pts, ss[i].n * sizeof(*out->pts));
        if ((err = mat_push_series(c, out, ss[i].ls, out->npts, ss[i].n)))
            goto done;
        out->npts += ss[i].n;
    }
done:
    for (i = 0; i < nss; i++)
        free(ss[i].pts);
    free(ss);
    rg__hmap_free(&map);
    return err;
}

/* ---- The evaluator ------------------------------------------------------- */

static int eval_unary(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                      struct rg__val *out)
{
    size_t i;
    int err = rg__eval(c, n->u.un.expr, t, out);

    if (err)
        return err;
    if (out->type == RG_PROMQL_VT_SCALAR) {
        out->scalar = -out->scalar;
        return 0;
    }
    if (out->type != RG_PROMQL_VT_VECTOR)
        return rg__fail(c, RG_EEXEC, "unary expression only allowed on expressions of type "
                                     "scalar or instant vector");
    for (i = 0; i < out->vec.n; i++) {
        out->vec.e[i].v = -out->vec.e[i].v;
        out->vec.e[i].t = t;
    }
    if ((err = rg__vec_drop_names(c, &out->vec)))
        return err;
    return rg__vec_check_dups(c, &out->vec);
}

int rg__eval(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t, struct rg__val *out)
{
    int err;

    memset(out, 0, sizeof(*out));
    if (!n)
        return rg__fail(c, RG_EEXEC, "empty expression");
    if ((++c->tick & 255) == 0 && (err = rg__check_time(c)))
        return err;
    switch (n->kind) {
    case RG_PROMQL_NUMBER:
        out->type = RG_PROMQL_VT_SCALAR;
        out->scalar = n->u.number;
        return 0;
    case RG_PROMQL_STRING:
        out->type = RG_PROMQL_VT_STRING;
        out->str = n->u.string;
        return 0;
    case RG_PROMQL_PAREN:
        return rg__eval(c, n->u.un.expr, t, out);
    case RG_PROMQL_UNARY:
        err = eval_unary(c, n, t, out);
        break;
    case RG_PROMQL_SELECTOR:
        out->type = RG_PROMQL_VT_VECTOR;
        err = eval_selector(c, n, t, &out->vec);
        break;
    case RG_PROMQL_MATRIX:
        out->type = RG_PROMQL_VT_MATRIX;
        err = eval_matrix_sel(c, n, t, &out->mat);
        break;
    case RG_PROMQL_SUBQUERY:
        out->type = RG_PROMQL_VT_MATRIX;
        err = eval_subquery(c, n, t, &out->mat);
        break;
    case RG_PROMQL_CALL:
        err = rg__eval_call(c, n, t, out);
        break;
    case RG_PROMQL_AGGREGATE:
        err = rg__eval_aggregate(c, n, t, out);
        break;
    case RG_PROMQL_BINARY:
        err = rg__eval_binary(c, n, t, out);
        break;
    default:
        return rg__fail(c, RG_EEXEC, "unknown expression node");
    }
    if (err)
        rg__val_free(c, out);
    return err;
}

/* ---- Query set-up and results ---------------------------------------------- */

static void ctx_init(struct rg__ctx *c, const struct rg_store *store,
                     const struct rg_promql_opts *opts, struct rg_buf *err)
{
    memset(c, 0, sizeof(*c));
    c->store = store;
    c->opts = opts;
    c->err = err;
    if (err)
        rg_buf_reset(err);
    if (opts->timeout_ms > 0)
        c->deadline = rg_mono_ms() + opts->timeout_ms;
}

static void ctx_cleanup(struct rg__ctx *c)
{
    size_t i;

    for (i = 0; i < c->nsel; i++) {
        struct rg__selcache *sc = c->sel[i];

        if (!sc->borrowed) {
            free(sc->visit);
            free(sc->vseries);
            free(sc->series);
            free(sc->labels);
            if (sc->ls_heap)
                free(sc->ls);
        }
        free(sc);
    }
    free(c->sel);
    grids_free(c);
    for (i = 0; i < c->nwarnings; i++)
        free(c->warnings[i]);
    free(c->warnings);
    rg__func_cleanup(c);
    rg__agg_cleanup(c);
    free(c->sbuf);
    rg__hmap_free(&c->hm);
    rg_buf_cleanup(&c->hb);
    rg_buf_cleanup(&c->tmp);
    rg__arena_free(&c->arena);
}

/* Copies a label set into the result's arena so that it outlives the store. */
static int copy_lset(struct rg__arena *a, struct rg__lset ls, struct rg_promql_series *s)
{
    struct rg_label *l = rg__arena_alloc(a, (ls.n ? ls.n : 1) * sizeof(*l));
    size_t i;

    if (!l)
        return RG_ENOMEM;
    for (i = 0; i < ls.n; i++) {
        l[i].name = rg__arena_strndup(a, ls.l[i].name, strlen(ls.l[i].name));
        l[i].value = rg__arena_strndup(a, ls.l[i].value, strlen(ls.l[i].value));
        if (!l[i].name || !l[i].value)
            return RG_ENOMEM;
    }
    s->labels = l;
    s->nlabels = ls.n;
    return 0;
}

static int result_begin(struct rg_promql_result *res, size_t nseries)
{
    struct rg__arena *a = calloc(1, sizeof(*a));

    if (!a)
        return RG_ENOMEM;
    res->priv = a;
    if (nseries) {
        res->series = calloc(nseries, sizeof(*res->series));
        if (!res->series)
            return RG_ENOMEM;
    }
    return 0;
}

static void take_warnings(struct rg__ctx *c, struct rg_promql_result *res)
{
    res->warnings = c->warnings;
    res->nwarnings = c->nwarnings;
    c->warnings = NULL;
    c->nwarnings = c->capwarnings = 0;
}

static int val_to_result(struct rg__val *v, int64_t t,
                         struct rg_promql_result *res)
{
    struct rg__arena *a;
    size_t i, n;
    int err;

    res->type = v->type;
    res->t = t;
    switch (v->type) {
    case RG_PROMQL_VT_SCALAR:
        res->scalar = v->scalar;
        return result_begin(res, 0);
    case RG_PROMQL_VT_STRING:
        res->string = strdup(v->str ? v->str : "");
        if (!res->string)
            return RG_ENOMEM;
        return result_begin(res, 0);
    case RG_PROMQL_VT_VECTOR:
        n = v->vec.n;
        break;
    case RG_PROMQL_VT_MATRIX:
        n = v->mat.n;
        break;
    default:
        return RG_EEXEC;
    }
    if ((err = result_begin(res, n)))
        return err;
    a = res->priv;
    for (i = 0; i < n; i++) {
        struct rg_promql_series *s = &res->series[i];
        int is_vec = v->type == RG_PROMQL_VT_VECTOR;

        if ((err = copy_lset(a, is_vec ? v->vec.e[i].ls : v->mat.s[i].ls, s)))
            return err;
        s->npoints = is_vec ? 1 : v->mat.s[i].n;
        /* Matrix points are separate allocations (as a range query's are); vector
         * points live in the arena. */
        s->points = is_vec ? rg__arena_alloc(a, sizeof(*s->points))
                           : malloc(s->npoints * sizeof(*s->points));
        if (!s->points)
            return RG_ENOMEM;
        if (is_vec) {
            s->points[0].t = t;
            s->points[0].v = v->vec.e[i].v;
        } else {
            memcpy(s->points, v->mat.pts + v->mat.s[i].off, s->npoints * sizeof(*s->points));
        }
        res->nseries++;
    }
    return 0;
}

static void copy_opts(struct rg_promql_opts *dst, const struct rg_promql_opts *src)
{
    if (src)
        *dst = *src;
    else
        rg_promql_opts_default(dst);
    if (dst->lookback_ms <= 0)
        dst->lookback_ms = 300000;
    if (dst->default_step_ms <= 0)
        dst->default_step_ms = 60000;
}

int rg_promql_eval_instant(const struct rg_store *store, const struct rg_promql_node *expr,
                           int64_t t_ms, const struct rg_promql_opts *opts,
                           struct rg_promql_result *out, struct rg_buf *err)
{
    struct rg_promql_opts o;
    struct rg__ctx c;
    struct rg__val v;
    int rc;

    memset(out, 0, sizeof(*out));
    copy_opts(&o, opts);
    ctx_init(&c, store, &o, err);
    c.start = c.end = t_ms;
    rc = rg__eval(&c, expr, t_ms, &v);
    if (rc)
        goto done;
    rc = val_to_result(&v, t_ms, out);
    rg__val_free(&c, &v);
    if (rc) {
        rg_promql_result_free(out);
        rc = oom(&c);
        goto done;
    }
    take_warnings(&c, out);
done:
    ctx_cleanup(&c);
    return rc;
}

struct rser {
    struct rg__lset ls;
    struct rg_sample *pts;
    size_t n;
    size_t cap;
};

static int rser_cmp(const void *a, const void *b)
{
    return rg__lset_cmp(((const struct rser *)a)->ls, ((const struct rser *)b)->ls);
}

static int rser_push(struct rg__ctx *c, struct rser *s, int64_t t, double v)
{
    if (s->n && s->pts[s->n - 1].t == t)
        return rg__fail(c, RG_EEXEC, "vector cannot contain metrics with the same labelset");
    if (s->n == s->cap) {
        struct rg_sample *p = grow_array(s->pts, &s->cap, 16, sizeof(*p));

        if (!p)
            return oom(c);
        s->pts = p;
    }
    s->pts[s->n].t = t;
    s->pts[s->n++].v = v;
    return charge(c, 1);
}

/* A bijective mix of a label array's address and length (Murmur3's finaliser). */
static uint64_t ptr_key(struct rg__lset ls)
{
    uint64_t k = (uint64_t)(uintptr_t)ls.l ^ ((uint64_t)ls.n << 48);

    k ^= k >> 33;
    k *= UINT64_C(0xff51afd7ed558ccd);
    k ^= k >> 33;
    k *= UINT64_C(0xc4ceb9fe1a85ec53);
    k ^= k >> 33;
    return k;
}

static int range_loop(struct rg__ctx *c, const struct rg_promql_node *expr, int64_t start,
                      int64_t end, int64_t step, struct rser **out, size_t *nout)
{
    struct rser *ss = NULL;
    size_t nss = 0, capss = 0, i;
    struct rg__hmap map = { 0 }, byptr = { 0 };
    int64_t ts;
    int err = 0;

    for (ts = start; ts <= end; ts += step) {
        struct rg__val v;

        if ((err = rg__check_time(c)))
            break;
        if ((err = rg__eval(c, expr, ts, &v)))
            break;
        if (v.type == RG_PROMQL_VT_SCALAR) {
            v.type = RG_PROMQL_VT_VECTOR;
            v.vec.uniq = 1;
            if ((err = rg__vec_push(c, &v.vec, (struct rg__lset){ NULL, 0 }, v.scalar, ts))) {
                rg__val_free(c, &v);
                break;
            }
        }
        if (v.type != RG_PROMQL_VT_VECTOR) {
            rg__val_free(c, &v);
            err = rg__fail(c, RG_EEXEC, "invalid expression type \"%s\" for range query, must "
                           "be Scalar or instant Vector",
                           v.type == RG_PROMQL_VT_MATRIX ? "range vector" : "string");
            break;
        }
        for (i = 0; i < v.vec.n; i++) {
            struct rg__lset ls = v.vec.e[i].ls;
            uint64_t pk = ptr_key(ls);
            uint32_t idx = rg__hmap_get(&byptr, pk), got;
            int found = 1;

            /* Label arrays keep their address for the whole query, so a known
             * address names a known series without hashing its labels. */
            if (idx == UINT32_MAX &&
                (rg__hmap_put(&map, rg__lset_hash(ls, &c->hb), (uint32_t)nss, &idx, &found) ||
                 rg__hmap_put(&byptr, pk, idx, &got, &found))) {
                err = oom(c);
                break;
            }
            found = idx < nss;
            if (!found) {
                struct rser *p = push_zeroed(ss, &nss, &capss, 16, sizeof(*p));

                if (!p) {
                    err = oom(c);
                    break;
                }
                ss = p;
                ss[nss - 1].ls = v.vec.e[i].ls;
            }
            if ((err = rser_push(c, &ss[idx], ts, v.vec.e[i].v)))
                break;
        }
        rg__val_free(c, &v);
        if (err || ts > INT64_MAX - step)
            break;
    }
    rg__hmap_free(&map);
    rg__hmap_free(&byptr);
    *out = ss;
    *nout = nss;
    return err;
}

int rg_promql_eval_range(const struct rg_store *store, const struct rg_promql_node *expr,
                         int64_t start_ms, int64_t end_ms, int64_t step_ms,
                         const struct rg_promql_opts *opts, struct rg_promql_result *out,
                         struct rg_buf *err)
{
    struct rg_promql_opts o;
    struct rg__ctx c;
    struct rser *ss = NULL;
    size_t nss = 0, i;
    enum rg_promql_vtype vt;
    int rc;

    memset(out, 0, sizeof(*out));
    copy_opts(&o, opts);
    ctx_init(&c, store, &o, err);
    c.start = start_ms;
    c.end = end_ms;
    if (step_ms > 0 && end_ms >= start_ms) {
        /* Unsigned arithmetic: the span of two int64 may not fit in one. */
        uint64_t steps = ((uint64_t)end_ms - (uint64_t)start_ms) / (uint64_t)step_ms + 1;

        c.gstart = start_ms;
        c.gstep = step_ms;
        c.gn = steps > SIZE_MAX ? SIZE_MAX : (size_t)steps;
    }
    if (step_ms <= 0) {
        rc = rg__fail(&c, RG_EEXEC, "zero or negative query resolution step widths are not "
                      "accepted");
        goto done;
    }
    if (end_ms < start_ms) {
        rc = rg__fail(&c, RG_EEXEC, "end timestamp must not be before start time");
        goto done;
    }
    vt = rg_promql_node_type(expr);
    if (vt != RG_PROMQL_VT_SCALAR && vt != RG_PROMQL_VT_VECTOR) {
        rc = rg__fail(&c, RG_EEXEC, "invalid expression type \"%s\" for range query, must be "
                      "Scalar or instant Vector",
                      vt == RG_PROMQL_VT_MATRIX ? "range vector" : "string");
        goto done;
    }
    rc = range_loop(&c, expr, start_ms, end_ms, step_ms, &ss, &nss);
    if (rc)
        goto done;
    if (nss > 1)
        qsort(ss, nss, sizeof(*ss), rser_cmp);
    out->type = RG_PROMQL_VT_MATRIX;
    out->t = end_ms;
    if ((rc = result_begin(out, nss)))
        goto fail_result;
    for (i = 0; i < nss; i++) {
        struct rg_promql_series *s = &out->series[i];

        if ((rc = copy_lset(out->priv, ss[i].ls, s)))
            goto fail_result;
        s->points = ss[i].pts;
        s->npoints = ss[i].n;
        ss[i].pts = NULL;
        out->nseries++;
    }
    take_warnings(&c, out);
    goto done;

fail_result:
    rg_promql_result_free(out);
    rc = oom(&c);
done:
    for (i = 0; i < nss; i++)
        free(ss[i].pts);
    free(ss);
    ctx_cleanup(&c);
    return rc;
}

void rg_promql_result_free(struct rg_promql_result *res)
{
    size_t i;

    if (!res)
        return;
    /* Matrix points are separate allocations; everything else of a series lives
     * in the arena. */
    if (res->type == RG_PROMQL_VT_MATRIX && res->series)
        for (i = 0; i < res->nseries; i++)
            free(res->series[i].points);
    free(res->series);
    free(res->string);
    for (i = 0; i < res->nwarnings; i++)
        free(res->warnings[i]);
    free(res->warnings);
    rg__arena_free(res->priv);
    free(res->priv);
    memset(res, 0, sizeof(*res));
}
