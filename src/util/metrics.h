/* util/metrics.h - rollgate's own metrics and their Prometheus text exposition.
 *
 * A registry of metric families (counter, gauge, histogram), each with fixed label
 * names; a child per distinct label-value tuple, created on first use and kept for
 * the life of the registry. Hot paths keep the returned child pointer and add to
 * it directly, so counting costs one add. Rendering (text format 0.0.4) sorts
 * families by name and children by label values. Not thread-safe: loop thread.
 */
#ifndef RG_UTIL_METRICS_H
#define RG_UTIL_METRICS_H

#include <stddef.h>

#include "util/buf.h"

enum rg_metrics_kind {
    RG_METRICS_COUNTER,
    RG_METRICS_GAUGE,
    RG_METRICS_HISTOGRAM,
};

struct rg_metrics;          /* registry, opaque */
struct rg_metrics_family;   /* opaque; owned by the registry */

/** One child: a counter or gauge value, or a histogram's buckets. */
struct rg_metrics_child {
    double value;           /* counter / gauge; histogram: sum of observations */
    double count;           /* histogram: observations */
    double *buckets;        /* histogram: per-bound counts (non-cumulative), owned */
};

/** Creates an empty registry. Returns NULL on OOM. */
struct rg_metrics *rg_metrics_new(void);
/** Frees the registry and every family and child. NULL is a no-op. */
void rg_metrics_free(struct rg_metrics *m);

/** Registers (or returns the existing) family @name. Copies @help and the label
 *  names. @bounds (histograms only) are the sorted upper bounds, +Inf implied.
 *  Returns NULL on OOM. */
struct rg_metrics_family *rg_metrics_family(struct rg_metrics *m, const char *name,
                                            const char *help, enum rg_metrics_kind kind,
                                            const char *const *label_names, size_t nlabels,
                                            const double *bounds, size_t nbounds);

/** The child for @label_values (nlabels of them; copied), created at zero.
 *  The pointer stays valid for the life of the registry. NULL on OOM. */
struct rg_metrics_child *rg_metrics_child(struct rg_metrics_family *f,
                                          const char *const *label_values);

/** Adds @v to a histogram child. */
void rg_metrics_observe(struct rg_metrics_family *f, struct rg_metrics_child *c, double v);

/** Registers a callback run before every render (to refresh gauges read from
 *  elsewhere, e.g. process memory). */
int rg_metrics_on_collect(struct rg_metrics *m, void (*cb)(struct rg_metrics *m, void *ud),
                          void *ud);

/** Appends the text exposition of every family to @out. Returns 0 or RG_ENOMEM. */
int rg_metrics_render(struct rg_metrics *m, struct rg_buf *out);

/** Appends @v in the shortest form that reads back exactly ("NaN", "+Inf", "-Inf"). */
int rg_metrics_format_value(double v, struct rg_buf *out);

#endif
