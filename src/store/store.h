/* store/store.h - the in-memory series store: rolling windows of every series.
 *
 * A series is a sorted label set plus a window of (timestamp ms, value) samples
 * covering the retention (default 1 h). Label strings are interned. The index maps
 * a label set to its series and each label name=value pair to the sorted list of
 * series that carry it (postings), so selectors resolve without a scan.
 *
 * Pure: no I/O, no clock. Callers pass "now" where time matters. Not thread-safe:
 * every call happens on the loop thread. Pointers handed out (series, interned
 * strings) stay valid until the next rg_store_gc() or rg_store_free().
 */
#ifndef RG_STORE_STORE_H
#define RG_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct rg_store;    /* opaque */
struct rg_series;   /* opaque; owned by the store */

/** The exact bits of a Prometheus stale marker (a NaN no other value uses). */
#define RG_STALE_NAN_BITS UINT64_C(0x7ff0000000000002)

/** True when @v carries the stale-marker bits (not merely any NaN). */
int rg_is_stale_nan(double v);
/** Returns a double with the stale-marker bits. */
double rg_stale_nan(void);

struct rg_store_config {
    int64_t retention_ms;   /* window kept per series; default 3,600,000 */
    size_t max_series;      /* cap on live series; default 1,000,000 */
};

/** Fills @cfg with the defaults above. */
void rg_store_config_default(struct rg_store_config *cfg);

/** A label with NUL-terminated strings; in results they are interned and owned
 *  by the store. */
struct rg_label {
    const char *name;
    const char *value;
};

/** A label given by borrowed bytes (e.g. straight out of a protobuf buffer). */
struct rg_label_ref {
    struct rg_slice name;
    struct rg_slice value;
};

struct rg_sample {
    int64_t t;   /* ms since the epoch */
    double v;
};

/** Creates a store. Copies @cfg. Returns 0, RG_EINVAL or RG_ENOMEM. */
int rg_store_new(const struct rg_store_config *cfg, struct rg_store **out);
/** Frees the store and everything it owns. NULL is a no-op. */
void rg_store_free(struct rg_store *store);

/** Finds the series with exactly @labels (sorted by name, no duplicates, already
 *  validated by the caller), creating it when absent. Copies what it keeps.
 *  @created (may be NULL) is set to 1 when a new series was made.
 *  Returns 0, RG_ELIMIT when a new series would exceed max_series, RG_EINVAL for
 *  more than 65,535 labels or a label string of 4 GiB or more, RG_ENOMEM. */
int rg_store_series_get(struct rg_store *store, const struct rg_label_ref *labels, size_t n,
                        struct rg_series **out, int *created);

/** Finds the series with exactly @labels without creating it.
 *  Returns 0 or RG_ENOENT. */
int rg_store_series_find(const struct rg_store *store, const struct rg_label_ref *labels,
                         size_t n, struct rg_series **out);

/** Appends one sample to @series.
 *  Returns 0 when appended; 1 when an identical sample (same t, same value bits)
 *  is already there (idempotent re-send, nothing changes); RG_EORDER when @t is
 *  older than the newest sample; RG_EDUP when @t equals the newest sample's time
 *  with other value bits; RG_ENOMEM. Stale markers are stored as given. */
int rg_store_append(struct rg_store *store, struct rg_series *series, int64_t t, double v);

/** Drops samples older than @now_ms - retention and removes series left without
 *  samples. Invalidates pointers to removed series. Returns the number removed. */
size_t rg_store_gc(struct rg_store *store, int64_t now_ms);

/** Number of live series. */
size_t rg_store_series_count(const struct rg_store *store);
/** Number of samples held over all series. */
size_t rg_store_sample_count(const struct rg_store *store);

/* ---- Reading ------------------------------------------------------------ */

enum rg_match_op {
    RG_MATCH_EQ,    /* =  */
    RG_MATCH_NE,    /* != */
    RG_MATCH_RE,    /* =~ (fully anchored) */
    RG_MATCH_NRE,   /* !~ */
};

/** One label matcher. For RE/NRE the store calls @re_match, which returns 1 when
 *  the (fully anchored) pattern matches @s of @len bytes (NUL-terminated), else 0;
 *  it is also called with ("", 0) to decide whether series lacking the label
 *  match. A matcher that matches the empty string also matches series that lack
 *  the label, exactly as in Prometheus. */
struct rg_matcher {
    enum rg_match_op op;
    const char *name;
    const char *value;                                      /* EQ/NE; pattern text for RE/NRE */
    int (*re_match)(void *re, const char *s, size_t len);  /* RE/NRE */
    void *re;                                               /* borrowed */
};

/** Selects the series matching every matcher. On success *out is a malloc'd array
 *  (caller frees it with free()) of *n series pointers, ordered by label set.
 *  With n == 0 matchers nothing is selected. Returns 0, RG_EINVAL for a malformed
 *  matcher (NULL name or value, NULL re_match for RE/NRE, unknown op) or RG_ENOMEM. */
int rg_store_select(const struct rg_store *store, const struct rg_matcher *m, size_t nm,
                    struct rg_series ***out, size_t *n);

/** As rg_store_select(), and sets *@visit to a malloc'd array (caller frees it) of
 *  *@n indexes into *@out that lists the series in the order the store keeps them:
 *  the order they were created in, which is mostly their order in memory too, so
 *  that a caller reading all of many series goes through memory forwards instead
 *  of in label order, which jumps around it. *@visit is NULL when the selection is
 *  small (tens of series) or memory for it was short: read in any order then. */
int rg_store_select_visit(const struct rg_store *store, const struct rg_matcher *m, size_t nm,
                          struct rg_series ***out, uint32_t **visit, size_t *n);

/** Number of labels of @series. */
size_t rg_series_label_count(const struct rg_series *series);
/** Fills @out with up to @cap labels of @series (sorted by name); returns the
 *  total count. Strings are interned, owned by the store. */
size_t rg_series_labels(const struct rg_series *series, struct rg_label *out, size_t cap);
/** Value of label @name in @series, or NULL. */
const char *rg_series_label(const struct rg_series *series, const char *name);

/** Appends to *@buf (a malloc'd array of capacity *@cap holding *@n, grown with
 *  realloc as needed) the samples of @series with mint <= t <= maxt, oldest first.
 *  Returns 0 or RG_ENOMEM. */
int rg_series_samples(const struct rg_series *series, int64_t mint, int64_t maxt,
                      struct rg_sample **buf, size_t *n, size_t *cap);
/** The newest sample with mint <= t <= maxt into @out. Returns 1 found, 0 none. */
int rg_series_sample_at(const struct rg_series *series, int64_t mint, int64_t maxt,
                        struct rg_sample *out);
/** Starts loading @series' header, which every accessor above reads first, into the
 *  processor's cache, and returns at once: a hint for loops over many series, which
 *  call it a few series ahead of the one they read. No effect on any result. */
void rg_series_prefetch(const struct rg_series *series);
/** Likewise for the newest samples of @series, where query windows end (reads the
 *  header, so call it after rg_series_prefetch() had time to load it). */
void rg_series_prefetch_samples(const struct rg_series *series);
/** Newest sample's timestamp, or INT64_MIN when empty. */
int64_t rg_series_max_time(const struct rg_series *series);
/** Oldest sample's timestamp, or INT64_MAX when empty. */
int64_t rg_series_min_time(const struct rg_series *series);

/** Calls @cb for every label name in use, in sorted order. A non-zero return from
 *  @cb stops the walk and is returned; RG_ENOMEM is returned when the store cannot
 *  allocate its sorted view (callbacks should return positive values to stop). */
int rg_store_label_names(const struct rg_store *store, int (*cb)(const char *name, void *ud),
                         void *ud);
/** Calls @cb for every value of label @name in use, in sorted order. */
int rg_store_label_values(const struct rg_store *store, const char *name,
                          int (*cb)(const char *value, void *ud), void *ud);

/* ---- Metadata (remote-write 1.0 field 3: per metric family) --------------- */

enum rg_metric_type {
    RG_METRIC_UNKNOWN = 0, RG_METRIC_COUNTER = 1, RG_METRIC_GAUGE = 2,
    RG_METRIC_HISTOGRAM = 3, RG_METRIC_GAUGEHISTOGRAM = 4, RG_METRIC_SUMMARY = 5,
    RG_METRIC_INFO = 6, RG_METRIC_STATESET = 7,
};

/** "counter", "gauge", ... as Prometheus' /api/v1/metadata spells them. */
const char *rg_metric_type_name(enum rg_metric_type t);

/** Sets (replaces) the metadata of metric family @family. Copies the strings.
 *  Returns 0 or RG_ENOMEM. */
int rg_store_metadata_set(struct rg_store *store, struct rg_slice family,
                          enum rg_metric_type type, struct rg_slice help, struct rg_slice unit);

/** Calls @cb for every family with metadata, sorted by family name. */
int rg_store_metadata_each(const struct rg_store *store,
                           int (*cb)(const char *family, enum rg_metric_type type,
                                     const char *help, const char *unit, void *ud),
                           void *ud);

/* ---- Readers' cache ------------------------------------------------------ */

/** Attaches @data, a cache of what a reader derived from the store's series (the
 *  PromQL engine keeps its large selections there between queries), replacing and
 *  freeing with its own function the one attached before. The store calls
 *  @free_fn(@data) as soon as series go away: when rg_store_gc() removes any, and
 *  in rg_store_free(). Creating series and appending samples keep it. So while a
 *  reader finds it, every series pointer and label string it holds is valid, and
 *  a selection it made would select the same series plus, at most, series created
 *  since, which rg_store_created_since() lists. @store is const because readers
 *  hold it so; the cache is not part of its contents. */
void rg_store_cache_set(const struct rg_store *store, void *data, void (*free_fn)(void *));

/** The data attached by rg_store_cache_set() with @free_fn, or NULL (nothing
 *  attached, attached with another function, or dropped since). */
void *rg_store_cache(const struct rg_store *store, void (*free_fn)(void *));

/** A mark of the series created so far, for rg_store_created_since(): it grows by
 *  one with every series created. Marks compare only while the readers' cache
 *  lives (series removed by rg_store_gc() renumber them). */
uint64_t rg_store_created_mark(const struct rg_store *store);

/** Calls @cb with each live series created after mark @since (oldest first) until
 *  @cb returns non-zero, which is returned; 0 after the last. */
int rg_store_created_since(const struct rg_store *store, uint64_t since,
                           int (*cb)(const struct rg_series *series, void *ud), void *ud);

/** 1 when @series satisfies every matcher of @m (as rg_store_select() decides it:
 *  a missing label counts as ""), else 0. The matchers must be well formed. */
int rg_store_series_matches(const struct rg_series *series, const struct rg_matcher *m,
                            size_t nm);

/** Approximate bytes of memory held by the store (for /metrics). */
size_t rg_store_bytes(const struct rg_store *store);

#endif
