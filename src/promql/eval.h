/* promql/eval.h - the evaluator's internal values and the entry points its parts share.
 *
 * The evaluator walks the tree once per evaluation time (a range query and a
 * subquery call it for each step). Values are a scalar, a string, an instant
 * vector (struct rg__vec: one element per series) or a range vector at one time
 * (struct rg__mat: samples of all series in one contiguous array). Label sets are
 * borrowed: from the store (interned strings, valid for the whole query), from the
 * syntax tree, or from the per-query arena; only the final result copies them.
 * engine.c holds the driver and selectors, eval_binop.c the binary operators,
 * eval_agg.c the aggregations, eval_func.c the functions. Internal to src/promql.
 */
#ifndef RG_PROMQL_EVAL_H
#define RG_PROMQL_EVAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "promql/ast.h"
#include "promql/engine.h"
#include "promql/labels.h"

/** One element of an instant vector. */
struct rg__el {
    struct rg__lset ls;   /* borrowed */
    double v;
    int64_t t;            /* the selected sample's time for selectors; else eval time */
};

struct rg__vec {
    struct rg__el *e;     /* owned */
    size_t n;
    size_t cap;
    size_t counted;       /* samples charged to the query's limit */
    int uniq;             /* 1: label sets known to be distinct */
    int samename;         /* 1: every element has the same __name__ (or none) */
};

/** One series of a range vector: samples pts[off .. off+n) of the matrix. */
struct rg__mser {
    struct rg__lset ls;
    size_t off;
    size_t n;
};

struct rg__mat {
    struct rg__mser *s;   /* owned */
    size_t n;
    size_t cap;
    struct rg_sample *pts;   /* owned */
    size_t npts;
    size_t cap_pts;
    size_t counted;
    int64_t range_start;  /* exclusive lower bound of the window, ms */
    int64_t range_end;    /* inclusive upper bound, ms */
    int64_t range_ms;
    int samename;         /* 1: every series has the same __name__ (or none) */
};

struct rg__val {
    enum rg_promql_vtype type;
    double scalar;
    const char *str;      /* borrowed from the tree */
    struct rg__vec vec;
    struct rg__mat mat;
};

/** The series of one selector node, resolved once per query. */
struct rg__selcache {
    const struct rg_promql_node *node;   /* the SELECTOR or MATRIX node */
    struct rg_series **series;           /* owned array */
    struct rg__lset *ls;                 /* arena */
    size_t n;
    int samename;
    uint32_t *visit;   /* owned: indexes of series in memory order; NULL: in order */
    struct rg_series **vseries;   /* owned with visit: the series in that order */
    struct rg_label *labels;   /* owned block behind ls when not in the arena, or NULL */
    int ls_heap;       /* 1: ls is malloc'd (owned) instead of in the arena */
    int borrowed;      /* 1: series, visit, ls and labels belong to the store's cache */
};

/** Index of the @j-th series of @sc to read when reading all of them: series in
 *  the order of their memory, not of their labels, so that a loop over a large
 *  selection walks memory forwards instead of jumping around it. */
static inline size_t rg__sel_visit(const struct rg__selcache *sc, size_t j)
{
    return sc->visit ? sc->visit[j] : j;
}

/** The @j-th series of @sc in that order (read from an array in that order, not
 *  by index into the label-ordered one, which would jump around it). */
static inline struct rg_series *rg__sel_vseries(const struct rg__selcache *sc, size_t j)
{
    return sc->visit ? sc->vseries[j] : sc->series[j];
}

/** True when @v carries the stale-marker bits (rg_is_stale_nan, inline). */
static inline int rg__is_stale(double v)
{
    uint64_t b;

    memcpy(&b, &v, sizeof(b));
    return b == RG_STALE_NAN_BITS;
}

/** A range query's precomputed per-step values of one node ("grid"): reading each
 *  series once for all steps instead of once per step. Items of a step are in
 *  series order and are released when that step is taken. */
struct rg__gitem {
    uint32_t idx;          /* series index in the selector cache */
    double v;
    int64_t t;             /* sample time (selectors) */
};

struct rg__gstep {
    struct rg__gitem *it;  /* owned */
    size_t n;
    size_t cap;
    int taken;             /* 1 once the step's values were handed out */
};

struct rg__grid {
    const struct rg_promql_node *node;
    struct rg__selcache *sc;
    struct rg__gstep *steps;   /* owned, one per query step */
};

struct rg__recache;
struct rg__aggcache;

struct rg__ctx {
    const struct rg_store *store;
    const struct rg_promql_opts *opts;
    int64_t start;              /* query start (instant: the evaluation time) */
    int64_t end;                /* query end */
    int64_t deadline;           /* monotonic ms; 0: none */
    struct rg__arena arena;     /* per-query labels and strings */
    size_t cur_samples;
    struct rg_buf *err;
    struct rg_buf hb;           /* hash scratch */
    struct rg_buf tmp;          /* string scratch */
    struct rg__hmap hm;         /* scratch table (not reentrant: use inside one op only) */
    struct rg__selcache **sel;  /* selector cache, one per selector node (owned) */
    uint64_t selclock;          /* this query's stamp in the store's selection cache */
    size_t nsel;
    size_t capsel;
    char **warnings;
    size_t nwarnings;
    size_t capwarnings;
    unsigned tick;              /* deadline-check throttle */
    int64_t gstart;             /* range query: first step, ms */
    int64_t gstep;              /* range query: step, ms */
    size_t gn;                  /* range query: number of steps; 0 for instant queries */
    int subq_depth;             /* > 0 while evaluating inside a subquery */
    struct rg__grid **grids;    /* owned */
    size_t ngrids;
    size_t capgrids;
    struct rg__aggcache **aggs; /* range query: grouping caches per aggregation (owned) */
    size_t naggs;
    size_t capaggs;
    double *dscr;               /* scratch doubles for kernels (owned) */
    struct rg_sample *sbuf;     /* scratch samples for streamed range selectors (owned) */
    size_t scap;
    size_t dcap;
    struct rg__recache *re;     /* compiled label_replace patterns (owned) */
    size_t nre;
    size_t capre;
};

/* engine.c */
int rg__eval(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t, struct rg__val *out);
void rg__val_free(struct rg__ctx *c, struct rg__val *v);
int rg__fail(struct rg__ctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int rg__warn(struct rg__ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int rg__check_time(struct rg__ctx *c);
/** Grows @v to hold @n more elements and charges them to the sample limit. */
int rg__vec_reserve(struct rg__ctx *c, struct rg__vec *v, size_t more);
void rg__vec_free(struct rg__ctx *c, struct rg__vec *v);
void rg__mat_free(struct rg__ctx *c, struct rg__mat *m);
/** Appends an element (reserve first or rely on this growing). */
int rg__vec_push(struct rg__ctx *c, struct rg__vec *v, struct rg__lset ls, double val,
                 int64_t t);
/** Errors when two elements share a label set (unless v->uniq says they cannot). */
int rg__vec_check_dups(struct rg__ctx *c, struct rg__vec *v);
/** Drops __name__ from every element, keeping the uniqueness flags right. */
int rg__vec_drop_names(struct rg__ctx *c, struct rg__vec *v);
/** Evaluates @n at @t and requires a scalar. */
int rg__eval_scalar(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t, double *out);
const struct rg_promql_node *rg__unparen(const struct rg_promql_node *n);

/** Selections the engine keeps in @store's readers' cache between queries (tests). */
size_t rg__selcache_entries(const struct rg_store *store);
/** Resolves (once per query) the series of selector node @n. */
int rg__select_series(struct rg__ctx *c, const struct rg_promql_node *n,
                      struct rg__selcache **out);
/** Starts loading, ahead of a loop's use, the header of the series visited @i + 16th
 *  (rg__sel_visit) and the newest samples of the one visited @i + 8th, so that the
 *  cache misses of many series overlap instead of coming one after the other. */
static inline void rg__sel_prefetch(const struct rg__selcache *sc, size_t i)
{
    if (i + 16 < sc->n)
        rg_series_prefetch(rg__sel_vseries(sc, i + 16));
    if (i + 8 < sc->n)
        rg_series_prefetch_samples(rg__sel_vseries(sc, i + 8));
}

/** The same for loops that read the series in label order (index @i). */
static inline void rg__sel_prefetch_labels(const struct rg__selcache *sc, size_t i)
{
    if (i + 16 < sc->n)
        rg_series_prefetch(sc->series[i + 16]);
    if (i + 8 < sc->n)
        rg_series_prefetch_samples(sc->series[i + 8]);
}
/** The reference time of a selector or subquery evaluated at @t: the @ time (or
 *  @t) minus the offset, saturated. */
int64_t rg__ref_time(const struct rg__ctx *c, enum rg_promql_at at, int64_t at_ms,
                     int64_t offset_ms, int64_t t);
/** Saturating a - b. */
int64_t rg__sub_sat(int64_t a, int64_t b);
/** 1 when @t is a step of the running range query (outside subqueries); sets *@k. */
int rg__grid_step(const struct rg__ctx *c, int64_t t, size_t *k);
/** 1 when a grid of @nseries series fits the budget. */
int rg__grid_fits(const struct rg__ctx *c, size_t nseries);
/** The grid of @n or NULL. */
struct rg__grid *rg__grid_find(const struct rg__ctx *c, const struct rg_promql_node *n);
/** Makes an empty grid for @n over the series of @sc. */
int rg__grid_new(struct rg__ctx *c, const struct rg_promql_node *n, struct rg__selcache *sc,
                 struct rg__grid **out);
/** Adds series @idx's value at step @k. */
int rg__grid_add(struct rg__ctx *c, struct rg__grid *g, size_t k, uint32_t idx, double v,
                 int64_t ts);
/** Moves step @k's values into @out (labels from the selector cache) and frees them.
 *  Returns 1 without touching @out when the step was taken before (the caller then
 *  evaluates directly), 0, or a negative error. */
int rg__grid_take(struct rg__ctx *c, struct rg__grid *g, size_t k, struct rg__vec *out);

/** Reads the range selector @n at @t one series at a time (stale markers removed),
 *  in memory order (rg__sel_visit), and calls @fn with each non-empty series; when
 *  @fn returns 1 with a value in *@v, that value is appended to @out with the
 *  series' labels and time @t, in the selection's (label) order whatever the order
 *  of reading. @fn returns 0 for no value or a negative error. @meta receives the
 *  window bounds and the name flag. The samples are valid during the call only. */
int rg__matrix_stream(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                      int (*fn)(struct rg__ctx *c, const struct rg_sample *s, size_t ns,
                                const struct rg__mat *meta, void *ud, double *v),
                      void *ud, struct rg__mat *meta, struct rg__vec *out);

/* eval_binop.c */
int rg__eval_binary(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                    struct rg__val *out);

/* eval_agg.c */
int rg__eval_aggregate(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                       struct rg__val *out);

/** Frees the aggregation caches of @c. */
void rg__agg_cleanup(struct rg__ctx *c);

/* eval_func.c */
int rg__eval_call(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                  struct rg__val *out);
/** Frees what the functions cached in @c (compiled patterns, scratch). */
void rg__func_cleanup(struct rg__ctx *c);
/** Go strconv.ParseFloat acceptance (used for le). Returns 1 and sets *out. */
int rg__parse_float(const char *s, double *out);

#endif
