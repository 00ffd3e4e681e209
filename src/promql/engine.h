/* promql/engine.h - evaluates a PromQL tree over the in-memory store.
 *
 * Instant and range evaluation with Prometheus 3.x semantics: lookback delta for
 * instant selectors, stale markers ending a series, left-open range windows
 * (mint, maxt], offset and @ modifiers, subqueries, vector matching, aggregations
 * and every function of ast.h. Pure: reads the store, never writes it, no I/O.
 * Loop thread only (the store is not thread-safe).
 *
 * Results own all their memory (labels, points, strings, warnings); free them with
 * rg_promql_result_free().
 */
#ifndef RG_PROMQL_ENGINE_H
#define RG_PROMQL_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "promql/ast.h"
#include "store/store.h"
#include "util/buf.h"

/** One series of a vector or matrix result. */
struct rg_promql_series {
    struct rg_label *labels;    /* sorted by name; strings owned by the result */
    size_t nlabels;
    struct rg_sample *points;   /* vector: exactly one, t = evaluation time; matrix: oldest first */
    size_t npoints;
};

struct rg_promql_result {
    enum rg_promql_vtype type;         /* SCALAR, VECTOR, MATRIX or STRING */
    int64_t t;                         /* SCALAR and STRING: evaluation time, ms */
    double scalar;                     /* SCALAR */
    char *string;                      /* STRING, owned */
    struct rg_promql_series *series;   /* VECTOR, MATRIX; owned */
    size_t nseries;
    char **warnings;                   /* owned; e.g. histogram_quantile's monotonicity fix */
    size_t nwarnings;
    void *priv;                        /* owned by the engine */
};

struct rg_promql_opts {
    int64_t lookback_ms;      /* instant-selector lookback; default 300,000 */
    size_t max_samples;       /* samples a query may hold at once; default 50,000,000 */
    int64_t timeout_ms;       /* wall-clock budget; 0: none; default 120,000 */
    int64_t default_step_ms;  /* subquery step when none is written; default 60,000 */
};

/** Fills @opts with the defaults above. */
void rg_promql_opts_default(struct rg_promql_opts *opts);

/** Evaluates @expr at @t_ms. On success fills *@out (caller frees it with
 *  rg_promql_result_free()). On failure writes a message into @err and returns
 *  RG_EEXEC (execution error: e.g. "vector cannot contain metrics with the same
 *  labelset"), RG_ELIMIT (too many samples), RG_ETIMEDOUT or RG_ENOMEM. */
int rg_promql_eval_instant(const struct rg_store *store, const struct rg_promql_node *expr,
                           int64_t t_ms, const struct rg_promql_opts *opts,
                           struct rg_promql_result *out, struct rg_buf *err);

/** Evaluates @expr at start, start+step, ... <= end. The result is always a MATRIX
 *  (a scalar expression gives one series with no labels), series sorted by labels.
 *  Errors as rg_promql_eval_instant(). */
int rg_promql_eval_range(const struct rg_store *store, const struct rg_promql_node *expr,
                         int64_t start_ms, int64_t end_ms, int64_t step_ms,
                         const struct rg_promql_opts *opts, struct rg_promql_result *out,
                         struct rg_buf *err);

/** Frees what @res holds and zeroes it. NULL is a no-op. */
void rg_promql_result_free(struct rg_promql_result *res);

/** Appends the Prometheus API "data" object of @res:
 *  {"resultType":"vector","result":[{"metric":{...},"value":[<t>,"<v>"]}, ...]}
 *  with Prometheus' float and time formatting. Returns 0 or RG_ENOMEM. */
int rg_promql_result_json(const struct rg_promql_result *res, struct rg_buf *out);

#endif
