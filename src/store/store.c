/* store/store.c - the in-memory series store: label index, postings and sample windows.
 *
 * Layout, chosen for memory per series (about ten labels and a few dozen samples
 * each, a million series):
 *
 * - A series is one heap block: a 48-byte header followed by the 32-bit symbol ids
 *   (store/intern.h) of its label values; with ten labels that is 88 bytes, which
 *   fills a 96-byte malloc chunk exactly. The label names live in a shape, a
 *   refcounted list of name symbols shared by every series with the same names
 *   (all series of a metric family, typically), found through a hash of the name
 *   bytes when a series is created; the series points at its shape, and the shape
 *   at the store. Series are numbered by dense uint32 ids handed out in increasing
 *   order; by_id maps an id back to its block. Series blocks stay malloc blocks on
 *   purpose: made once and kept, they fill the holes that the daemon's short-lived
 *   request buffers leave in the heap, which slab slots would not (tried: the
 *   daemon then held about 20 bytes more per series).
 * - The label-set index is an rg__htab from the hash of the label bytes to the
 *   series id, so a lookup from borrowed protobuf slices hashes the bytes, probes,
 *   and compares against the interned strings without allocating anything.
 * - Postings: for every label name an entry table keyed by value symbol, each entry
 *   holding the sorted ids of the series with that pair (store/postings.h).
 * - Samples live in a ring buffer per series that grows by at most a quarter
 *   (capacity classes 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, ...), so a growing ring
 *   is at most 20 % slack; GC halves rings left three-quarters empty. Rings are
 *   slots of a slab allocator with one class per capacity and timestamp width
 *   (store/slab.h): no malloc header or rounding per ring, and since all series
 *   grow through the classes together, the slabs a class gives up are reused whole
 *   by the next class instead of leaving the heap full of small holes. Timestamps
 *   are stored as 32-bit millisecond offsets from a per-series base (12 bytes a
 *   sample); a series whose window spans more than 49 days switches to full 64-bit
 *   timestamps. Values are copied as raw bits, so every NaN, the stale marker
 *   included, comes back unchanged.
 *
 * Garbage collection walks all series once: it drops expired samples with a
 * binary search per ring, removes series left empty, queues each postings list
 * they were on, filters every queued list once, and frees strings whose last user
 * went away. When more than half of the id range is holes it renumbers the live
 * series in order, which keeps every postings list sorted while rewriting it in
 * place. Selection follows Prometheus' PostingsForMatchers: a matcher that does
 * not match "" contributes the union of the postings of its matching values to an
 * intersection; one that matches "" (so it also accepts series lacking the label)
 * contributes the postings of its non-matching values to a set subtracted at the
 * end, from all series when no intersection was formed. "=" matchers go first (one
 * list, already sorted, used in place); a union of many lists that covers a good
 * part of the id range is built as a bitmap over the ids, smaller ones by a radix
 * sort. Results are ordered by label set through cached ranks: the position of
 * each series among all series by label set, kept lazily (see "Label-set ranks"),
 * so that ordering a selection is a radix sort of integers instead of a sort by
 * string comparison. The window of a series is found by galloping back from its
 * newest sample, where query windows end.
 *
 * Readers may attach one cache to the store (rg_store_cache_set); it is dropped
 * whenever series go away, and readers learn which series were created since they
 * filled it from creation marks (the ids, which only grow while it lives).
 */
#include "store/store.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "store/hash.h"
#include "store/htab.h"
#include "store/intern.h"
#include "store/introspect.h"
#include "store/postings.h"
#include "store/slab.h"
#include "util/err.h"

#define NONE        UINT32_MAX
#define SERIES_WIDE 0x01u   /* timestamps stored as int64 instead of base + uint32 */
#define CLS_MIN     0u      /* first sample buffer: 4 samples */
#define CLS_MAX     116u    /* 2^31 samples */
#define RANK_MIN_DEFAULT 64 /* smaller selections sort by string comparison */

/* The label names of a series, shared by every series with the same names in the
 * same order (most series of a metric family have the same label names). */
struct shape {
    struct rg_store *store;   /* owner; gives access to the label strings */
    uint32_t refs;            /* series using this shape */
    uint32_t id;              /* index in store->shapes */
    uint32_t hash;            /* of the name bytes, see hash_names() */
    uint32_t n;               /* labels */
    uint32_t names[];         /* name symbols, sorted by name; one reference each */
};

struct rg_series {
    struct shape *shape;      /* label names (shared, counted) and the store */
    void *buf;                /* ring slot: double v[cap], then uint32 dt[cap] or int64 t[cap] */
    int64_t base;             /* ms; narrow timestamps are base + dt */
    uint32_t id;              /* index in store->by_id and in postings */
    uint32_t start;           /* ring slot of the oldest sample */
    uint32_t count;           /* samples held */
    uint32_t ring;            /* slab handle of buf in store->rings[wide][capcls] */
    uint8_t capcls;           /* capacity class of buf, see cls_cap() */
    uint8_t flags;            /* SERIES_WIDE */
    uint32_t vals[];          /* value symbols, in the order of shape->names */
};

/* Free shape ids are chained through the id array as odd values, like free
 * symbol ids (store/intern.h). */
union shape_slot {
    struct shape *shape;      /* live id: owned block (even address) */
    uintptr_t free_next;      /* free id: (next free id << 1) | 1 */
};

/* A name=value entry is a postings list whose key is the value symbol, with
 * KEY_MARK set while the garbage collector has it queued. Free entries have key
 * NONE and keep the next free entry in u.inl[0]. */
#define KEY_MARK  UINT32_C(0x80000000)
#define KEY_VALUE UINT32_C(0x7fffffff)

struct lname {
    uint32_t name;             /* name symbol; NONE while free (nvalues = next free) */
    uint32_t nvalues;          /* live entries */
    uint32_t ecap, eused;      /* entries allocated / handed out (high-water) */
    uint32_t efree;            /* first free entry or NONE */
    struct rg__postings *entries;   /* owned; key = value symbol */
    struct rg__htab values;    /* value symbol -> entry index */
};

struct meta {
    char *family;               /* owned */
    enum rg_metric_type type;
    char *help;                 /* owned */
    char *unit;                 /* owned */
};

struct dirty {
    uint32_t ln, e;   /* a postings list that lost series in this GC */
};

struct rg_store {
    struct rg_store_config cfg;
    struct rg__intern syms;          /* label strings */
    union shape_slot *shapes;        /* owned; indexed by shape id */
    uint32_t sh_cap, sh_used;        /* allocated / high-water */
    uint32_t sh_free;                /* first free shape id or NONE */
    struct rg__htab shape_idx;       /* name-bytes hash -> shape id */
    struct rg__htab series_idx;      /* label-set hash -> series id */
    struct rg_series **by_id;        /* owned array of owned series; NULL for holes */
    uint32_t next_id, id_cap;        /* ids handed out / allocated in by_id */
    size_t nseries, nsamples;
    struct lname *lnames;            /* owned; indexed by label-name slot */
    uint32_t ln_cap, ln_used;        /* allocated / high-water */
    uint32_t ln_free;                /* first free slot or NONE */
    struct rg__htab names;           /* name symbol -> lnames slot */
    size_t npairs;                   /* live name=value entries */
    struct meta *meta;               /* owned, sorted by family */
    size_t nmeta, meta_cap;
    struct dirty *dirty;             /* GC scratch */
    size_t ndirty, dirty_cap;
    size_t bytes;                    /* series blocks, postings, entry arrays */
    /* Label-set order, kept lazily for selection (see "Label-set ranks"): rank[id]
     * is the position of series id among all series by label set, valid for the
     * live ids below ranked_hi; ranks of removed series are left as holes. */
    uint32_t *rank;                  /* owned, rank_cap entries; NULL until needed */
    uint32_t rank_cap;
    uint32_t ranked_hi;              /* ids below this have a rank */
    uint32_t rank_n;                 /* ranks handed out by the last ranking (bound) */
    size_t rank_min;                 /* selections this large are sorted by rank */
    void *rcache;                    /* readers' cache (rg_store_cache_set), owned */
    void (*rcache_free)(void *);
    /* Sample rings by timestamp width (narrow, wide) and capacity class. */
    struct rg__slab_class rings[2][CLS_MAX + 1];
};

static void rcache_drop(struct rg_store *st);

/* ---- Small helpers ------------------------------------------------------ */

int rg_is_stale_nan(double v)
{
    uint64_t b;

    memcpy(&b, &v, sizeof(b));
    return b == RG_STALE_NAN_BITS;
}

double rg_stale_nan(void)
{
    uint64_t b = RG_STALE_NAN_BITS;
    double v;

    memcpy(&v, &b, sizeof(v));
    return v;
}

void rg_store_config_default(struct rg_store_config *cfg)
{
    cfg->retention_ms = 3600000;
    cfg->max_series = 1000000;
}

const char *rg_metric_type_name(enum rg_metric_type t)
{
    switch (t) {
    case RG_METRIC_COUNTER:        return "counter";
    case RG_METRIC_GAUGE:          return "gauge";
    case RG_METRIC_HISTOGRAM:      return "histogram";
    case RG_METRIC_GAUGEHISTOGRAM: return "gaugehistogram";
    case RG_METRIC_SUMMARY:        return "summary";
    case RG_METRIC_INFO:           return "info";
    case RG_METRIC_STATESET:       return "stateset";
    case RG_METRIC_UNKNOWN:        break;
    }
    return "unknown";
}

static int cmp_bytes(const char *a, size_t na, const char *b, size_t nb)
{
    size_t n = na < nb ? na : nb;
    int c = n ? memcmp(a, b, n) : 0;

    if (c)
        return c;
    return (na > nb) - (na < nb);
}

/* ---- Label accessors ---------------------------------------------------- */

static inline uint32_t s_n(const struct rg_series *s)
{
    return s->shape->n;
}

static inline uint32_t s_name(const struct rg_series *s, size_t i)
{
    return s->shape->names[i];
}

static inline const struct rg__intern *s_syms(const struct rg_series *s)
{
    return &s->shape->store->syms;
}

/* ---- Sample ring -------------------------------------------------------- */

/* Capacity classes: four steps per doubling, 4, 5, 6, 7, 8, 10, 12, 14, 16, ... */
static inline uint32_t cls_cap(unsigned cls)
{
    return (uint32_t)(4u + (cls & 3u)) << (cls >> 2);
}

static inline size_t sample_size(unsigned flags)
{
    return sizeof(double) + ((flags & SERIES_WIDE) ? sizeof(int64_t) : sizeof(uint32_t));
}

static inline uint32_t s_cap(const struct rg_series *s)
{
    return s->buf ? cls_cap(s->capcls) : 0;
}

static inline uint32_t s_phys(const struct rg_series *s, uint32_t cap, uint32_t i)
{
    uint32_t p = s->start + i;

    return p >= cap ? p - cap : p;
}

static inline double *s_vals(const struct rg_series *s)
{
    return s->buf;
}

static inline int64_t s_time_p(const struct rg_series *s, uint32_t cap, uint32_t p)
{
    const double *v = s->buf;

    if (s->flags & SERIES_WIDE)
        return ((const int64_t *)(const void *)(v + cap))[p];
    /* Unsigned arithmetic: base + dt is the true timestamp and fits in int64. */
    return (int64_t)((uint64_t)s->base + ((const uint32_t *)(const void *)(v + cap))[p]);
}

static inline void s_put(struct rg_series *s, uint32_t cap, uint32_t p, int64_t t, double v)
{
    double *vals = s->buf;

    memcpy(&vals[p], &v, sizeof(v));
    if (s->flags & SERIES_WIDE)
        ((int64_t *)(void *)(vals + cap))[p] = t;
    else
        ((uint32_t *)(void *)(vals + cap))[p] = (uint32_t)((uint64_t)t - (uint64_t)s->base);
}

static inline int64_t s_time(const struct rg_series *s, uint32_t i)
{
    uint32_t cap = s_cap(s);

    return s_time_p(s, cap, s_phys(s, cap, i));
}

/* First logical index whose time is >= @t (count when none). */
static uint32_t lower_bound(const struct rg_series *s, int64_t t)
{
    uint32_t cap = s_cap(s), lo = 0, hi = s->count;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (s_time_p(s, cap, s_phys(s, cap, mid)) < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* First logical index below @hi whose time is >= @t (strict 0) or > @t (strict 1),
 * @hi when none. Query windows are short and end at or near the newest sample, so
 * the search gallops backwards from @hi, 1, 2, 4, ... samples at a time, before it
 * bisects what is left: O(log k) reads for an answer k samples from the end, instead
 * of a bisection over the whole ring. */
static uint32_t gallop_back(const struct rg_series *s, uint32_t cap, uint32_t hi, int64_t t,
                            int strict)
{
    uint32_t lo = 0, b = hi, step = 1;

    /* Samples usually come at a steady interval: the first probe goes where the
     * answer would be if they all did, and a step or two either way finds it. */
    if (hi >= 2) {
        int64_t t0 = s_time_p(s, cap, s_phys(s, cap, 0));
        int64_t tn = s_time_p(s, cap, s_phys(s, cap, hi - 1));
        double back;
        uint32_t p;

        if (strict ? tn <= t : tn < t)
            return hi;
        if (tn > t0 && t > t0) {
            /* Unsigned: the differences are positive and may not fit in int64. */
            back = (double)((uint64_t)tn - (uint64_t)t) / (double)((uint64_t)tn - (uint64_t)t0) *
                   (double)(hi - 1);
            p = back < (double)(hi - 1) ? hi - 1 - (uint32_t)back : 0;
            for (int k = 0; k < 3; k++) {
                int64_t pt = s_time_p(s, cap, s_phys(s, cap, p));

                if (strict ? pt <= t : pt < t) {
                    /* The answer is above p. */
                    int64_t nt = s_time_p(s, cap, s_phys(s, cap, p + 1));

                    if (!(strict ? nt <= t : nt < t))
                        return p + 1;
                    p++;
                } else {
                    /* The answer is p or below. */
                    int64_t qt;

                    if (p == 0)
                        return 0;
                    qt = s_time_p(s, cap, s_phys(s, cap, p - 1));
                    if (strict ? qt <= t : qt < t)
                        return p;
                    p--;
                }
            }
        }
    }
    while (b > 0) {
        uint32_t p = b > step ? b - step : 0;
        int64_t pt = s_time_p(s, cap, s_phys(s, cap, p));

        if (strict ? pt <= t : pt < t) {
            lo = p + 1;
            break;
        }
        b = p;
        step = step < UINT32_MAX / 2 ? step * 2 : step;
    }
    while (lo < b) {
        uint32_t mid = lo + (b - lo) / 2;
        int64_t mt = s_time_p(s, cap, s_phys(s, cap, mid));

        if (strict ? mt <= t : mt < t)
            lo = mid + 1;
        else
            b = mid;
    }
    return lo;
}

/* First logical index whose time is > @t (count when none). The newest sample is
 * checked first: a window ending at or after it, the usual case, needs no search. */
static uint32_t upper_bound(const struct rg_series *s, uint32_t cap, int64_t t)
{
    if (!s->count || s_time_p(s, cap, s_phys(s, cap, s->count - 1)) <= t)
        return s->count;
    return gallop_back(s, cap, s->count - 1, t, 1);
}

static inline struct rg__slab_class *ring_class(struct rg_store *st, unsigned cls,
                                               unsigned flags)
{
    return &st->rings[(flags & SERIES_WIDE) ? 1 : 0][cls];
}

/* Gives the ring of @s back to its slab class. */
static void s_release(struct rg_store *st, struct rg_series *s)
{
    if (s->buf)
        rg__slab_free(ring_class(st, s->capcls, s->flags), s->ring);
    s->buf = NULL;
}

/* Moves the samples into a new ring of class @cls, oldest at slot 0, with
 * timestamps in the layout selected by @flags. On failure nothing changes. */
static int s_resize(struct rg_store *st, struct rg_series *s, unsigned cls, unsigned flags)
{
    uint32_t ocap = s_cap(s), ncap = cls_cap(cls);
    struct rg_series tmp;
    uint32_t h;
    void *nbuf;
    int err;

    err = rg__slab_alloc(ring_class(st, cls, flags), &h, &nbuf);
    if (err)
        return err;
    tmp = *s;
    tmp.buf = nbuf;
    tmp.start = 0;
    tmp.capcls = (uint8_t)cls;
    tmp.flags = (uint8_t)flags;
    for (uint32_t i = 0; i < s->count; i++) {
        uint32_t p = s_phys(s, ocap, i);
        double v;

        /* memcpy keeps signalling NaNs (the stale marker is one) bit-exact. */
        memcpy(&v, &s_vals(s)[p], sizeof(v));
        s_put(&tmp, ncap, i, s_time_p(s, ocap, p), v);
    }
    s_release(st, s);
    s->buf = nbuf;
    s->ring = h;
    s->start = 0;
    s->capcls = (uint8_t)cls;
    s->flags = (uint8_t)flags;
    return 0;
}

/* Makes @t representable in a narrow ring: moves the base up to the oldest sample,
 * or switches the series to 64-bit timestamps when the span is too wide. */
static int s_rebase(struct rg_store *st, struct rg_series *s, int64_t t)
{
    uint32_t cap = s_cap(s);
    int64_t oldest = s_time(s, 0);
    uint32_t *dt = (uint32_t *)(void *)(s_vals(s) + cap);
    uint32_t shift;

    if ((uint64_t)t - (uint64_t)oldest > UINT32_MAX)
        return s_resize(st, s, s->capcls, s->flags | SERIES_WIDE);
    shift = (uint32_t)((uint64_t)oldest - (uint64_t)s->base);
    for (uint32_t i = 0; i < s->count; i++)
        dt[s_phys(s, cap, i)] -= shift;
    s->base = oldest;
    return 0;
}

int rg_store_append(struct rg_store *store, struct rg_series *series, int64_t t, double v)
{
    struct rg_series *s = series;
    uint32_t cap = s_cap(s);
    int err;

    if (s->count) {
        uint32_t p = s_phys(s, cap, s->count - 1);
        int64_t last = s_time_p(s, cap, p);

        if (t < last)
            return RG_EORDER;
        if (t == last) {
            uint64_t a, b;

            memcpy(&a, &s_vals(s)[p], sizeof(a));
            memcpy(&b, &v, sizeof(b));
            return a == b ? 1 : RG_EDUP;
        }
    }
    if (s->count == cap) {
        unsigned cls = s->buf ? s->capcls + 1u : CLS_MIN;

        if (cls > CLS_MAX)
            return RG_ENOMEM;
        err = s_resize(store, s, cls, s->flags);
        if (err)
            return err;
        cap = s_cap(s);
    }
    if (!(s->flags & SERIES_WIDE)) {
        if (!s->count) {
            s->base = t;
        } else if ((uint64_t)t - (uint64_t)s->base > UINT32_MAX) {
            err = s_rebase(store, s, t);
            if (err)
                return err;
        }
    }
    s_put(s, cap, s_phys(s, cap, s->count), t, v);
    s->count++;
    store->nsamples++;
    return 0;
}

int rg_series_samples(const struct rg_series *series, int64_t mint, int64_t maxt,
                      struct rg_sample **buf, size_t *n, size_t *cap)
{
    const struct rg_series *s = series;
    uint32_t lo, hi, scap = s_cap(s), p, run;
    const double *vals;
    struct rg_sample *o;
    size_t need;

    hi = upper_bound(s, scap, maxt);
    lo = gallop_back(s, scap, hi, mint, 0);
    if (hi <= lo)
        return 0;
    need = *n + (hi - lo);
    if (need > *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct rg_sample *nb;

        if (ncap < need)
            ncap = need;
        nb = realloc(*buf, ncap * sizeof(*nb));
        if (!nb)
            return RG_ENOMEM;
        *buf = nb;
        *cap = ncap;
    }
    /* The window is at most two contiguous runs of the ring: copy each with the
     * timestamp layout decided once, not per sample. */
    o = *buf + *n;
    vals = s_vals(s);
    p = s_phys(s, scap, lo);
    for (uint32_t left = hi - lo; left; left -= run) {
        run = scap - p < left ? scap - p : left;
        if (s->flags & SERIES_WIDE) {
            const int64_t *ts = (const int64_t *)(const void *)(vals + scap);

            for (uint32_t i = 0; i < run; i++) {
                o[i].t = ts[p + i];
                memcpy(&o[i].v, &vals[p + i], sizeof(o[i].v));
            }
        } else {
            const uint32_t *dt = (const uint32_t *)(const void *)(vals + scap);

            /* Unsigned arithmetic: base + dt is the true timestamp and fits in int64. */
            for (uint32_t i = 0; i < run; i++) {
                o[i].t = (int64_t)((uint64_t)s->base + dt[p + i]);
                memcpy(&o[i].v, &vals[p + i], sizeof(o[i].v));
            }
        }
        o += run;
        p = 0;
    }
    *n += hi - lo;
    return 0;
}

int rg_series_sample_at(const struct rg_series *series, int64_t mint, int64_t maxt,
                        struct rg_sample *out)
{
    const struct rg_series *s = series;
    uint32_t cap = s_cap(s), hi = upper_bound(s, cap, maxt), p;
    int64_t t;

    if (!hi)
        return 0;
    p = s_phys(s, cap, hi - 1);
    t = s_time_p(s, cap, p);
    if (t < mint)
        return 0;
    out->t = t;
    memcpy(&out->v, &s_vals(s)[p], sizeof(out->v));
    return 1;
}

void rg_series_prefetch(const struct rg_series *series)
{
    __builtin_prefetch(series);
}

void rg_series_prefetch_samples(const struct rg_series *s)
{
    uint32_t cap = s_cap(s), p;
    const double *v = s->buf;

    if (!s->count)
        return;
    p = s_phys(s, cap, s->count - 1);
    /* The newest values and timestamps, and the values a few samples before. */
    __builtin_prefetch(&v[p]);
    __builtin_prefetch(&v[p >= 7 ? p - 7 : 0]);
    if (s->flags & SERIES_WIDE)
        __builtin_prefetch((const int64_t *)(const void *)(v + cap) + p);
    else
        __builtin_prefetch((const uint32_t *)(const void *)(v + cap) + p);
}

int64_t rg_series_max_time(const struct rg_series *series)
{
    return series->count ? s_time(series, series->count - 1) : INT64_MIN;
}

int64_t rg_series_min_time(const struct rg_series *series)
{
    return series->count ? s_time(series, 0) : INT64_MAX;
}

/* ---- Labels of a series ------------------------------------------------- */

size_t rg_series_label_count(const struct rg_series *series)
{
    return s_n(series);
}

size_t rg_series_labels(const struct rg_series *series, struct rg_label *out, size_t cap)
{
    const struct rg__intern *in = s_syms(series);

    for (size_t i = 0; i < s_n(series) && i < cap; i++) {
        out[i].name = rg__intern_str(in, s_name(series, i));
        out[i].value = rg__intern_str(in, series->vals[i]);
    }
    return s_n(series);
}

const char *rg_series_label(const struct rg_series *series, const char *name)
{
    const struct rg__intern *in = s_syms(series);

    for (size_t i = 0; i < s_n(series); i++)
        if (strcmp(rg__intern_str(in, s_name(series, i)), name) == 0)
            return rg__intern_str(in, series->vals[i]);
    return NULL;
}

/* Orders series like Prometheus' labels.Compare: pair by pair, name before value,
 * byte-wise; a label set that is a prefix of another sorts first. */
static int cmp_series(const void *a, const void *b)
{
    const struct rg_series *x = *(const struct rg_series *const *)a;
    const struct rg_series *y = *(const struct rg_series *const *)b;
    const struct rg__intern *in = s_syms(x);
    size_t n = s_n(x) < s_n(y) ? s_n(x) : s_n(y);
    int c;

    for (size_t i = 0; i < n; i++) {
        /* Series of one shape share their names: only values can differ. */
        if (x->shape != y->shape) {
            c = rg__intern_cmp(in, s_name(x, i), s_name(y, i));
            if (c)
                return c;
        }
        c = rg__intern_cmp(in, x->vals[i], y->vals[i]);
        if (c)
            return c;
    }
    return (s_n(x) > s_n(y)) - (s_n(x) < s_n(y));
}

/* ---- Label-set hashing -------------------------------------------------- */

static inline uint64_t hash_label(uint64_t h, const char *n, size_t nl, const char *v, size_t vl)
{
    return rg__hash_step(rg__hash_step(h, n, nl), v, vl);
}

static uint32_t hash_refs(const struct rg_label_ref *l, size_t n)
{
    uint64_t h = RG__HASH_P0 ^ n;

    for (size_t i = 0; i < n; i++)
        h = hash_label(h, l[i].name.ptr, l[i].name.len, l[i].value.ptr, l[i].value.len);
    return rg__hash_fold(rg__hash_final(h));
}

static uint32_t hash_series(const struct rg_series *s)
{
    const struct rg__intern *in = s_syms(s);
    uint64_t h = RG__HASH_P0 ^ s_n(s);

    for (size_t i = 0; i < s_n(s); i++) {
        const struct rg__sym *n = rg__intern_sym(in, s_name(s, i));
        const struct rg__sym *v = rg__intern_sym(in, s->vals[i]);

        h = hash_label(h, n->str, n->len, v->str, v->len);
    }
    return rg__hash_fold(rg__hash_final(h));
}

struct refs_key {
    const struct rg_store *st;
    const struct rg_label_ref *l;
    size_t n;
};

static int refs_eq(const void *ctx, uint32_t id)
{
    const struct refs_key *k = ctx;
    const struct rg_series *s = k->st->by_id[id];
    const struct rg__intern *in = &k->st->syms;

    const uint32_t *names = s->shape->names;

    if (s->shape->n != k->n)
        return 0;
    for (size_t i = 0; i < k->n; i++) {
        if (!rg__intern_eq(in, names[i], k->l[i].name.ptr, k->l[i].name.len) ||
            !rg__intern_eq(in, s->vals[i], k->l[i].value.ptr, k->l[i].value.len))
            return 0;
    }
    return 1;
}

static uint32_t find_id(const struct rg_store *st, const struct rg_label_ref *l, size_t n,
                        uint32_t hash)
{
    struct refs_key k = { st, l, n };

    return rg__htab_find(&st->series_idx, hash, refs_eq, &k);
}

/* ---- Shapes ------------------------------------------------------------- */

/* Hashes the label names of @l in order; equal name lists hash alike whatever
 * their values. */
static uint32_t hash_names(const struct rg_label_ref *l, size_t n)
{
    uint64_t h = RG__HASH_P2 ^ n;

    for (size_t i = 0; i < n; i++)
        h = rg__hash_step(h, l[i].name.ptr, l[i].name.len);
    return rg__hash_fold(rg__hash_final(h));
}

static int shape_eq(const void *ctx, uint32_t id)
{
    const struct refs_key *k = ctx;
    const struct shape *sh = k->st->shapes[id].shape;

    if (sh->n != k->n)
        return 0;
    for (size_t i = 0; i < k->n; i++)
        if (!rg__intern_eq(&k->st->syms, sh->names[i], k->l[i].name.ptr, k->l[i].name.len))
            return 0;
    return 1;
}

/* Drops one series' reference to @sh; the last frees it and its name symbols. */
static void shape_release(struct rg_store *st, struct shape *sh)
{
    if (--sh->refs)
        return;
    rg__htab_remove(&st->shape_idx, sh->hash, sh->id);
    for (uint32_t i = 0; i < sh->n; i++)
        rg__intern_release(&st->syms, sh->names[i]);
    st->shapes[sh->id].free_next = ((uintptr_t)st->sh_free << 1) | 1;
    st->sh_free = sh->id;
    st->bytes -= sizeof(*sh) + sizeof(uint32_t) * sh->n;
    free(sh);
}

/* Grows a table of @elem-byte slots, @arr with *@cap of them, to @want slots; the slot
 * indexes are uint32_t with NONE reserved, so @want must stay below NONE. On success
 * updates *@cap, adds the growth to *@bytes when @bytes is not NULL, and returns the
 * moved table; on failure returns NULL and leaves @arr, *@cap and *@bytes as they were. */
static void *grow_slots(void *arr, uint32_t *cap, size_t want, size_t elem, size_t *bytes)
{
    void *a;

    if (want >= NONE)
        return NULL;
    a = realloc(arr, want * elem);
    if (!a)
        return NULL;
    if (bytes)
        *bytes += (want - *cap) * elem;
    *cap = (uint32_t)want;
    return a;
}

/* Finds or creates the shape of the names of @l and takes a reference to it. */
static int shape_get(struct rg_store *st, const struct rg_label_ref *l, size_t n,
                     struct shape **out)
{
    struct refs_key k = { st, l, n };
    uint32_t hash = hash_names(l, n), id;
    struct shape *sh;
    size_t i;
    int err;

    id = rg__htab_find(&st->shape_idx, hash, shape_eq, &k);
    if (id != NONE) {
        sh = st->shapes[id].shape;
        sh->refs++;
        *out = sh;
        return 0;
    }
    err = rg__htab_reserve(&st->shape_idx, 1);
    if (err)
        return err;
    if (st->sh_free == NONE && st->sh_used == st->sh_cap) {
        size_t cap = st->sh_cap ? (size_t)st->sh_cap * 2 : 16;
        union shape_slot *a = grow_slots(st->shapes, &st->sh_cap, cap, sizeof(*a), NULL);

        if (!a)
            return RG_ENOMEM;
        st->shapes = a;
    }
    sh = malloc(sizeof(*sh) + sizeof(uint32_t) * n);
    if (!sh)
        return RG_ENOMEM;
    for (i = 0; i < n; i++) {
        err = rg__intern_get(&st->syms, l[i].name.ptr, l[i].name.len, &sh->names[i]);
        if (err)
            goto fail_intern;
    }
    if (st->sh_free != NONE) {
        id = st->sh_free;
        st->sh_free = (uint32_t)(st->shapes[id].free_next >> 1);
    } else {
        id = st->sh_used++;
    }
    sh->store = st;
    sh->refs = 1;
    sh->id = id;
    sh->hash = hash;
    sh->n = (uint32_t)n;
    st->shapes[id].shape = sh;
    rg__htab_insert(&st->shape_idx, hash, id);
    st->bytes += sizeof(*sh) + sizeof(uint32_t) * n;
    *out = sh;
    return 0;

fail_intern:
    while (i > 0)
        rg__intern_release(&st->syms, sh->names[--i]);
    free(sh);
    return err;
}

/* ---- Postings index ----------------------------------------------------- */

struct u32_key {
    const void *base;
    uint32_t key;
};

static int lname_eq(const void *ctx, uint32_t idx)
{
    const struct u32_key *k = ctx;

    return ((const struct lname *)k->base)[idx].name == k->key;
}

static int entry_eq(const void *ctx, uint32_t idx)
{
    const struct u32_key *k = ctx;

    return (((const struct rg__postings *)k->base)[idx].key & KEY_VALUE) == k->key;
}

static uint32_t lname_find(const struct rg_store *st, uint32_t name)
{
    struct u32_key k = { st->lnames, name };

    return rg__htab_find(&st->names, rg__hash_u32(name), lname_eq, &k);
}

static uint32_t entry_find(const struct lname *ln, uint32_t value)
{
    struct u32_key k = { ln->entries, value };

    return rg__htab_find(&ln->values, rg__hash_u32(value), entry_eq, &k);
}

static int lname_get(struct rg_store *st, uint32_t name, uint32_t *out)
{
    struct lname *ln;
    uint32_t idx = lname_find(st, name);
    int err;

    if (idx != NONE) {
        *out = idx;
        return 0;
    }
    err = rg__htab_reserve(&st->names, 1);
    if (err)
        return err;
    if (st->ln_free != NONE) {
        idx = st->ln_free;
        st->ln_free = st->lnames[idx].nvalues;
    } else {
        if (st->ln_used == st->ln_cap) {
            size_t cap = st->ln_cap ? (size_t)st->ln_cap + st->ln_cap / 2 : 16;
            struct lname *a = grow_slots(st->lnames, &st->ln_cap, cap, sizeof(*a),
                                         &st->bytes);

            if (!a)
                return RG_ENOMEM;
            st->lnames = a;
        }
        idx = st->ln_used++;
    }
    ln = &st->lnames[idx];
    memset(ln, 0, sizeof(*ln));
    ln->name = name;
    ln->efree = NONE;
    rg__htab_insert(&st->names, rg__hash_u32(name), idx);
    *out = idx;
    return 0;
}

static void lname_remove(struct rg_store *st, uint32_t li)
{
    struct lname *ln = &st->lnames[li];

    rg__htab_remove(&st->names, rg__hash_u32(ln->name), li);
    for (uint32_t i = 0; i < ln->eused; i++)
        if (ln->entries[i].key != NONE)
            rg__postings_cleanup(&ln->entries[i]);
    st->bytes -= (size_t)ln->ecap * sizeof(*ln->entries);
    free(ln->entries);
    rg__htab_cleanup(&ln->values);
    memset(ln, 0, sizeof(*ln));
    ln->name = NONE;
    ln->nvalues = st->ln_free;
    st->ln_free = li;
}

static int entry_get(struct rg_store *st, uint32_t li, uint32_t value, uint32_t *out)
{
    struct lname *ln = &st->lnames[li];
    struct rg__postings *e;
    uint32_t idx = entry_find(ln, value);
    int err;

    if (idx != NONE) {
        *out = idx;
        return 0;
    }
    err = rg__htab_reserve(&ln->values, 1);
    if (err)
        return err;
    if (ln->efree != NONE) {
        idx = ln->efree;
        ln->efree = ln->entries[idx].u.inl[0];
    } else {
        if (ln->eused == ln->ecap) {
            size_t cap = ln->ecap ? (size_t)ln->ecap + (ln->ecap + 1) / 2 : 2;
            struct rg__postings *a = grow_slots(ln->entries, &ln->ecap, cap, sizeof(*a),
                                                &st->bytes);

            if (!a)
                return RG_ENOMEM;
            ln->entries = a;
        }
        idx = ln->eused++;
    }
    e = &ln->entries[idx];
    memset(e, 0, sizeof(*e));
    e->key = value;
    rg__htab_insert(&ln->values, rg__hash_u32(value), idx);
    ln->nvalues++;
    st->npairs++;
    *out = idx;
    return 0;
}

/* Removes entry @ei of label name @li, and the name when it was its last value. */
static void entry_remove(struct rg_store *st, uint32_t li, uint32_t ei)
{
    struct lname *ln = &st->lnames[li];
    struct rg__postings *e = &ln->entries[ei];

    rg__htab_remove(&ln->values, rg__hash_u32(e->key & KEY_VALUE), ei);
    st->bytes -= rg__postings_bytes(e);
    rg__postings_cleanup(e);
    e->key = NONE;
    e->u.inl[0] = ln->efree;
    ln->efree = ei;
    ln->nvalues--;
    st->npairs--;
    if (!ln->nvalues)
        lname_remove(st, li);
}

static int live_id(const void *ctx, uint32_t id)
{
    const struct rg_store *st = ctx;

    return st->by_id[id] != NULL;
}

/* Drops the ids of removed series from one list, and the list when it empties. */
static void entry_filter(struct rg_store *st, uint32_t li, uint32_t ei)
{
    struct rg__postings *e = &st->lnames[li].entries[ei];
    size_t before = rg__postings_bytes(e);

    rg__postings_filter(e, live_id, st);
    st->bytes -= before - rg__postings_bytes(e);
    if (!e->n)
        entry_remove(st, li, ei);
}

/* Takes the series id out of the lists of its first @k labels (creation rollback);
 * the id is the newest in each list, so it is the last element. */
static void unindex_new(struct rg_store *st, const struct rg_series *s, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        uint32_t li = lname_find(st, s_name(s, i)), ei;

        if (li == NONE)
            continue;
        ei = entry_find(&st->lnames[li], s->vals[i]);
        if (ei != NONE) {
            struct rg__postings *e = &st->lnames[li].entries[ei];
            size_t before = rg__postings_bytes(e);

            rg__postings_pop(e, s->id);
            st->bytes -= before - rg__postings_bytes(e);
            if (!e->n)
                entry_remove(st, li, ei);
        } else if (!st->lnames[li].nvalues) {
            lname_remove(st, li);
        }
    }
}

static int index_series(struct rg_store *st, const struct rg_series *s)
{
    size_t i;
    int err = 0;

    for (i = 0; i < s_n(s); i++) {
        uint32_t li, ei;
        struct rg__postings *e;
        size_t before;

        err = lname_get(st, s_name(s, i), &li);
        if (err)
            goto fail;
        err = entry_get(st, li, s->vals[i], &ei);
        if (err)
            goto fail;
        e = &st->lnames[li].entries[ei];
        before = rg__postings_bytes(e);
        err = rg__postings_append(e, s->id);
        if (err)
            goto fail;
        st->bytes += rg__postings_bytes(e) - before;
    }
    return 0;

fail:
    unindex_new(st, s, i + 1);
    return err;
}

/* ---- Lifecycle ---------------------------------------------------------- */

int rg_store_new(const struct rg_store_config *cfg, struct rg_store **out)
{
    struct rg_store *st;

    if (!cfg || !out || cfg->retention_ms <= 0 || cfg->max_series == 0)
        return RG_EINVAL;
    st = calloc(1, sizeof(*st));
    if (!st)
        return RG_ENOMEM;
    st->cfg = *cfg;
    st->rank_min = RANK_MIN_DEFAULT;
    st->ln_free = NONE;
    st->sh_free = NONE;
    for (unsigned w = 0; w < 2; w++)
        for (unsigned cls = 0; cls <= CLS_MAX; cls++)
            rg__slab_init(&st->rings[w][cls],
                          (size_t)cls_cap(cls) * sample_size(w ? SERIES_WIDE : 0));
    rg__intern_init(&st->syms);
    *out = st;
    return 0;
}

static void series_destroy(struct rg_store *st, struct rg_series *s)
{
    size_t n = s_n(s);

    for (size_t i = 0; i < n; i++)
        rg__intern_release(&st->syms, s->vals[i]);
    shape_release(st, s->shape);
    st->bytes -= sizeof(*s) + sizeof(uint32_t) * n;
    st->nsamples -= s->count;
    s_release(st, s);
    free(s);
}

void rg_store_free(struct rg_store *store)
{
    if (!store)
        return;
    for (uint32_t i = 0; i < store->next_id; i++) {
        struct rg_series *s = store->by_id[i];

        free(s);
    }
    rcache_drop(store);
    free(store->by_id);
    free(store->rank);
    for (int w = 0; w < 2; w++)
        for (unsigned cls = 0; cls <= CLS_MAX; cls++)
            rg__slab_cleanup(&store->rings[w][cls]);
    for (uint32_t i = 0; i < store->ln_used; i++) {
        struct lname *ln = &store->lnames[i];

        if (ln->name == NONE)
            continue;
        for (uint32_t j = 0; j < ln->eused; j++)
            if (ln->entries[j].key != NONE)
                rg__postings_cleanup(&ln->entries[j]);
        free(ln->entries);
        rg__htab_cleanup(&ln->values);
    }
    free(store->lnames);
    rg__htab_cleanup(&store->names);
    rg__htab_cleanup(&store->series_idx);
    for (uint32_t i = 0; i < store->sh_used; i++)
        if (!(store->shapes[i].free_next & 1))
            free(store->shapes[i].shape);
    free(store->shapes);
    rg__htab_cleanup(&store->shape_idx);
    rg__intern_cleanup(&store->syms);
    for (size_t i = 0; i < store->nmeta; i++) {
        free(store->meta[i].family);
        free(store->meta[i].help);
        free(store->meta[i].unit);
    }
    free(store->meta);
    free(store->dirty);
    free(store);
}

/* ---- Series lookup and creation ----------------------------------------- */

int rg_store_series_find(const struct rg_store *store, const struct rg_label_ref *labels,
                         size_t n, struct rg_series **out)
{
    uint32_t id = find_id(store, labels, n, hash_refs(labels, n));

    if (id == NONE)
        return RG_ENOENT;
    *out = store->by_id[id];
    return 0;
}

int rg_store_series_get(struct rg_store *store, const struct rg_label_ref *labels, size_t n,
                        struct rg_series **out, int *created)
{
    struct rg_store *st = store;
    struct rg_series *s;
    uint32_t hash = hash_refs(labels, n), id;
    size_t k = 0;
    int err;

    if (created)
        *created = 0;
    id = find_id(st, labels, n, hash);
    if (id != NONE) {
        *out = st->by_id[id];
        return 0;
    }
    if (n > UINT16_MAX)
        return RG_EINVAL;
    if (st->nseries >= st->cfg.max_series || st->next_id >= NONE - 1)
        return RG_ELIMIT;
    if (st->next_id == st->id_cap) {
        size_t cap = st->id_cap ? (size_t)st->id_cap + st->id_cap / 2 : 64;
        struct rg_series **a;

        if (cap > NONE)
            cap = NONE;
        a = realloc(st->by_id, cap * sizeof(*a));
        if (!a)
            return RG_ENOMEM;
        st->by_id = a;
        st->id_cap = (uint32_t)cap;
    }
    err = rg__htab_reserve(&st->series_idx, 1);
    if (err)
        return err;
    s = calloc(1, sizeof(*s) + sizeof(uint32_t) * n);
    if (!s)
        return RG_ENOMEM;
    s->id = st->next_id;
    err = shape_get(st, labels, n, &s->shape);
    if (err)
        goto fail_shape;
    for (k = 0; k < n; k++) {
        err = rg__intern_get(&st->syms, labels[k].value.ptr, labels[k].value.len, &s->vals[k]);
        if (err)
            goto fail_intern;
    }
    err = index_series(st, s);
    if (err)
        goto fail_intern;
    rg__htab_insert(&st->series_idx, hash, s->id);
    st->by_id[st->next_id++] = s;
    st->nseries++;
    st->bytes += sizeof(*s) + sizeof(uint32_t) * n;
    if (created)
        *created = 1;
    *out = s;
    return 0;

fail_intern:
    while (k > 0)
        rg__intern_release(&st->syms, s->vals[--k]);
    shape_release(st, s->shape);
fail_shape:
    free(s);
    return err;
}

size_t rg_store_series_count(const struct rg_store *store)
{
    return store->nseries;
}

size_t rg_store_sample_count(const struct rg_store *store)
{
    return store->nsamples;
}

/* ---- Garbage collection ------------------------------------------------- */

/* Queues every postings list of @s for filtering and frees @s. Its id slot must
 * already be NULL so that the filter drops it. */
static void series_remove(struct rg_store *st, struct rg_series *s)
{
    rg__htab_remove(&st->series_idx, hash_series(s), s->id);
    for (size_t i = 0; i < s_n(s); i++) {
        uint32_t li = lname_find(st, s_name(s, i)), ei;
        struct rg__postings *e;

        if (li == NONE)
            continue;
        ei = entry_find(&st->lnames[li], s->vals[i]);
        if (ei == NONE)
            continue;
        e = &st->lnames[li].entries[ei];
        if (e->key & KEY_MARK)
            continue;
        if (st->ndirty == st->dirty_cap) {
            size_t cap = st->dirty_cap ? st->dirty_cap * 2 : 256;
            struct dirty *d = realloc(st->dirty, cap * sizeof(*d));

            if (!d) {
                /* Without room to queue it, filter this list right away: slower
                 * for long lists, but the index stays exact. */
                entry_filter(st, li, ei);
                continue;
            }
            st->dirty = d;
            st->dirty_cap = cap;
        }
        e->key |= KEY_MARK;
        st->dirty[st->ndirty].ln = li;
        st->dirty[st->ndirty].e = ei;
        st->ndirty++;
    }
    st->nseries--;
    series_destroy(st, s);
}

static uint32_t new_id(const void *ctx, uint32_t id)
{
    const struct rg_store *st = ctx;

    return st->by_id[id]->id;
}

/* Renumbers live series 0..n-1 in their current order. Because the mapping is
 * monotonic, every postings list stays sorted and is rewritten in place. */
static void compact_ids(struct rg_store *st)
{
    uint32_t w = 0, hi = 0;

    /* Creation marks are ids: renumbering ends what readers cached with them. */
    rcache_drop(st);

    for (uint32_t id = 0; id < st->next_id; id++)
        if (st->by_id[id])
            st->by_id[id]->id = w++;
    for (uint32_t li = 0; li < st->ln_used; li++) {
        struct lname *ln = &st->lnames[li];

        if (ln->name == NONE)
            continue;
        for (uint32_t ei = 0; ei < ln->eused; ei++)
            if (ln->entries[ei].key != NONE)
                rg__postings_remap(&ln->entries[ei], new_id, st);
    }
    for (uint32_t i = 0; i < st->series_idx.cap; i++) {
        struct rg__htab_slot *slot = &st->series_idx.slots[i];

        if (slot->id != RG__HTAB_EMPTY)
            slot->id = st->by_id[slot->id]->id;
    }
    w = 0;
    for (uint32_t id = 0; id < st->next_id; id++) {
        if (!st->by_id[id])
            continue;
        /* Ranks follow their series (w <= id: nothing unread is overwritten), and
         * the ranked ids stay the lowest ones. */
        if (id < st->ranked_hi) {
            st->rank[w] = st->rank[id];
            hi = w + 1;
        }
        st->by_id[w++] = st->by_id[id];
    }
    st->ranked_hi = hi;
    st->next_id = w;
    if (st->id_cap > 1024 && (size_t)w * 4 < st->id_cap) {
        size_t cap = (size_t)w * 2 > 64 ? (size_t)w * 2 : 64;
        struct rg_series **a = realloc(st->by_id, cap * sizeof(*a));

        if (a) {
            st->by_id = a;
            st->id_cap = (uint32_t)cap;
        }
    }
    if (st->rank && st->rank_cap > st->id_cap) {
        uint32_t *r = realloc(st->rank, (size_t)st->id_cap * sizeof(*r));

        if (r) {
            st->rank = r;
            st->rank_cap = st->id_cap;
        }
    }
}

size_t rg_store_gc(struct rg_store *store, int64_t now_ms)
{
    struct rg_store *st = store;
    int64_t cutoff;
    size_t removed = 0;

    cutoff = now_ms < INT64_MIN + st->cfg.retention_ms ? INT64_MIN
                                                       : now_ms - st->cfg.retention_ms;
    for (uint32_t id = 0; id < st->next_id; id++) {
        struct rg_series *s = st->by_id[id];
        uint32_t k, cap;

        if (!s)
            continue;
        /* Most passes find the oldest sample still inside the window. */
        k = s->count && s_time(s, 0) >= cutoff ? 0 : lower_bound(s, cutoff);
        if (k) {
            cap = s_cap(s);
            s->start = s_phys(s, cap, k == s->count ? 0 : k);
            s->count -= k;
            st->nsamples -= k;
        }
        if (!s->count) {
            st->by_id[id] = NULL;
            series_remove(st, s);
            removed++;
            continue;
        }
        if (s->capcls > CLS_MIN && (size_t)s->count * 4 <= s_cap(s)) {
            unsigned cls = CLS_MIN;

            while (cls_cap(cls) < (size_t)s->count * 2)
                cls++;
            /* A failed shrink keeps the bigger ring, which is still correct. */
            (void)s_resize(st, s, cls, s->flags);
        }
    }
    for (size_t i = 0; i < st->ndirty; i++) {
        st->lnames[st->dirty[i].ln].entries[st->dirty[i].e].key &= ~KEY_MARK;
        entry_filter(st, st->dirty[i].ln, st->dirty[i].e);
    }
    st->ndirty = 0;
    if (st->dirty_cap > 4096) {
        free(st->dirty);
        st->dirty = NULL;
        st->dirty_cap = 0;
    }
    if (st->next_id > 1024 && (size_t)(st->next_id - st->nseries) * 2 > st->next_id)
        compact_ids(st);
    if (removed && st->rcache_free)
        rcache_drop(st);
    return removed;
}

/* ---- Label-set ranks ------------------------------------------------------ */

/* Selections hand out series ordered by label set, and comparing label sets means
 * comparing strings: sorting a selection of 100,000 series that way cost more than
 * the rest of a query. So the store keeps the position of every series in the
 * label-set order of all series, its rank, and sorts a selection by rank with a
 * radix sort. Ranks are made lazily, by a selection that meets many series created
 * since the last ranking: the new series are sorted among themselves with the
 * string comparison and merged into the ranked ones (a binary search each), and
 * all series are renumbered in one pass. Removing series leaves holes in the
 * ranks, which keeps the others in order; compact_ids() moves ranks with the ids.
 * A selection with new series that are few next to the whole store sorts those by
 * string comparison and merges them into the ranked rest instead. Without memory
 * for ranks, selection falls back to sorting by string comparison, so results
 * never depend on them. */

/* Ranks every series created since the last ranking. Returns 0 or RG_ENOMEM (the
 * ranks are then unchanged). */
static int rank_update(struct rg_store *st)
{
    struct rg_series **fresh;
    uint32_t *order, *inv = NULL;
    size_t nold = 0, nnew = 0, w = 0, i = 0;
    int err = RG_ENOMEM;

    if (st->ranked_hi == st->next_id)
        return 0;
    if (st->rank_cap < st->id_cap) {
        uint32_t *r = realloc(st->rank, (size_t)st->id_cap * sizeof(*r));

        if (!r)
            return RG_ENOMEM;
        st->rank = r;
        st->rank_cap = st->id_cap;
    }
    for (uint32_t id = st->ranked_hi; id < st->next_id; id++)
        nnew += st->by_id[id] != NULL;
    fresh = malloc((nnew ? nnew : 1) * sizeof(*fresh));
    if (!fresh)
        goto fail_fresh;
    order = malloc((st->nseries ? st->nseries : 1) * sizeof(*order));
    if (!order)
        goto fail_order;
    if (st->rank_n) {
        inv = malloc((size_t)st->rank_n * sizeof(*inv));
        if (!inv)
            goto fail_inv;
    }
    /* The ranked series in rank order: invert their ranks, then close the holes
     * that removed series left. */
    for (uint32_t r = 0; r < st->rank_n; r++)
        inv[r] = NONE;
    for (uint32_t id = 0; id < st->ranked_hi; id++)
        if (st->by_id[id])
            inv[st->rank[id]] = id;
    for (uint32_t r = 0; r < st->rank_n; r++)
        if (inv[r] != NONE)
            inv[nold++] = inv[r];
    nnew = 0;
    for (uint32_t id = st->ranked_hi; id < st->next_id; id++)
        if (st->by_id[id])
            fresh[nnew++] = st->by_id[id];
    qsort(fresh, nnew, sizeof(*fresh), cmp_series);
    for (size_t j = 0; j < nnew; j++) {
        size_t lo = i, hi = nold;

        /* The first ranked series after the new one; those before it go first. */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;

            if (cmp_series(&st->by_id[inv[mid]], &fresh[j]) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        while (i < lo)
            order[w++] = inv[i++];
        order[w++] = fresh[j]->id;
    }
    while (i < nold)
        order[w++] = inv[i++];
    for (size_t r = 0; r < w; r++)
        st->rank[order[r]] = (uint32_t)r;
    st->rank_n = (uint32_t)w;
    st->ranked_hi = st->next_id;
    err = 0;
    free(inv);
fail_inv:
    free(order);
fail_order:
    free(fresh);
fail_fresh:
    return err;
}

/* Writes to @perm the positions 0..n-1 of the ranked @ids in rank order: an LSD
 * radix sort of (rank, position) pairs over the bytes that ranks below rank_n use.
 * Returns 0 or RG_ENOMEM. */
static int sort_by_rank(const struct rg_store *st, const uint32_t *ids, size_t n,
                        uint32_t *perm)
{
    uint64_t *a = malloc(2 * n * sizeof(*a)), *b, *t;

    if (!a)
        return RG_ENOMEM;
    b = a + n;
    for (size_t i = 0; i < n; i++)
        a[i] = (uint64_t)st->rank[ids[i]] << 32 | i;
    for (unsigned shift = 32; shift < 64 && ((uint64_t)st->rank_n - 1) >> (shift - 32);
         shift += 8) {
        size_t count[257] = { 0 };

        for (size_t i = 0; i < n; i++)
            count[((a[i] >> shift) & 0xff) + 1]++;
        for (size_t k = 1; k < 257; k++)
            count[k] += count[k - 1];
        for (size_t i = 0; i < n; i++)
            b[count[(a[i] >> shift) & 0xff]++] = a[i];
        t = a;
        a = b;
        b = t;
    }
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)a[i];
    free(a < b ? a : b);
    return 0;
}

struct fresh {
    struct rg_series *s;
    uint32_t pos;   /* in the ascending ids */
};

static int cmp_fresh(const void *a, const void *b)
{
    return cmp_series(&((const struct fresh *)a)->s, &((const struct fresh *)b)->s);
}

/* Fills @res with the series of the ascending ids @ids[0..n) in label-set order,
 * by rank where ranks allow it, and @visit (may be NULL) with where each of them
 * went: visit[j] is the position in @res of the series of ids[j]. Returns 1 when
 * @visit was filled, 0 when it was not (a small selection, or short of memory: the
 * order of @res is right either way). @st is the store behind a const selection:
 * ranks are a cache that selection keeps up to date, invisible to every caller. */
static int order_series(struct rg_store *st, const uint32_t *ids, size_t n,
                        struct rg_series **res, uint32_t *visit)
{
    struct fresh *fresh = NULL;
    uint32_t *perm = NULL;
    size_t k = n, lo = 0, nb, i = 0, w = 0;

    if (n >= st->rank_min) {
        /* Ids at or above ranked_hi have no rank yet; they are the last ones. */
        while (lo < k) {
            size_t mid = lo + (k - lo) / 2;

            if (ids[mid] < st->ranked_hi)
                lo = mid + 1;
            else
                k = mid;
        }
        /* Ranking touches every series: worth it once the unranked ones selected
         * are a good part of the store, else they are merged in below. */
        if (k < n && (n - k) * 32 >= st->nseries && rank_update(st) == 0)
            k = n;
    }
    nb = n - k;
    if (n < st->rank_min || k == 0 || (nb && !(fresh = malloc(nb * sizeof(*fresh)))) ||
        !(perm = malloc(k * sizeof(*perm))) || sort_by_rank(st, ids, k, perm)) {
        free(fresh);
        free(perm);
        for (size_t j = 0; j < n; j++)
            res[j] = st->by_id[ids[j]];
        qsort(res, n, sizeof(*res), cmp_series);
        return 0;
    }
    /* The few unranked series: sorted by string comparison, then each placed after
     * the ranked ones that sort before it (a binary search each). */
    for (size_t j = 0; j < nb; j++) {
        fresh[j].s = st->by_id[ids[k + j]];
        fresh[j].pos = (uint32_t)(k + j);
    }
    if (nb)
        qsort(fresh, nb, sizeof(*fresh), cmp_fresh);
    for (size_t j = 0; j < nb; j++) {
        size_t a = i, b = k;

        while (a < b) {
            size_t mid = a + (b - a) / 2;

            if (cmp_series(&st->by_id[ids[perm[mid]]], &fresh[j].s) < 0)
                a = mid + 1;
            else
                b = mid;
        }
        for (; i < a; i++, w++) {
            res[w] = st->by_id[ids[perm[i]]];
            if (visit)
                visit[perm[i]] = (uint32_t)w;
        }
        if (visit)
            visit[fresh[j].pos] = (uint32_t)w;
        res[w++] = fresh[j].s;
    }
    for (; i < k; i++, w++) {
        res[w] = st->by_id[ids[perm[i]]];
        if (visit)
            visit[perm[i]] = (uint32_t)w;
    }
    free(fresh);
    free(perm);
    return visit != NULL;
}

/* ---- Selection ---------------------------------------------------------- */

struct idvec {
    uint32_t *ids;   /* owned */
    size_t n, cap;
};

static int idvec_reserve(struct idvec *v, size_t n)
{
    if (n > v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        uint32_t *a;

        while (cap < n)
            cap *= 2;
        a = realloc(v->ids, cap * sizeof(*a));
        if (!a)
            return RG_ENOMEM;
        v->ids = a;
        v->cap = cap;
    }
    return 0;
}

static int idvec_add(struct idvec *v, const uint32_t *ids, size_t n)
{
    if (idvec_reserve(v, v->n + n))
        return RG_ENOMEM;
    if (n)
        memcpy(v->ids + v->n, ids, n * sizeof(*ids));
    v->n += n;
    return 0;
}

static int matches(const struct rg_matcher *m, const char *s, size_t len)
{
    switch (m->op) {
    case RG_MATCH_EQ:
        return cmp_bytes(m->value, strlen(m->value), s, len) == 0;
    case RG_MATCH_NE:
        return cmp_bytes(m->value, strlen(m->value), s, len) != 0;
    case RG_MATCH_RE:
        return m->re_match(m->re, s, len) != 0;
    case RG_MATCH_NRE:
        return m->re_match(m->re, s, len) == 0;
    }
    return 0;
}

/* Borrowed postings lists whose union is a set of series. The lists are disjoint
 * when they come from one label name (one value per name per series). */
struct lists {
    const struct rg__postings **p;   /* owned array of borrowed lists */
    size_t n, cap;
    size_t total;                    /* ids over all lists */
    uint32_t name;                   /* label name symbol of the last gather() */
};

static int lists_add(struct lists *l, const struct rg__postings *p)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        const struct rg__postings **a = realloc(l->p, cap * sizeof(*a));

        if (!a)
            return RG_ENOMEM;
        l->p = a;
        l->cap = cap;
    }
    l->p[l->n++] = p;
    l->total += p->n;
    return 0;
}

/* Adds to @out the postings of every value of @m's label for which matches() equals
 * @want. */
static int gather(const struct rg_store *st, const struct rg_matcher *m, int want,
                  struct lists *out)
{
    const struct lname *ln;
    uint32_t nsym, li;

    if (rg__intern_find(&st->syms, m->name, strlen(m->name), &nsym))
        return 0;
    li = lname_find(st, nsym);
    if (li == NONE)
        return 0;
    ln = &st->lnames[li];
    out->name = nsym;
    /* "=" wanting matches and "!=" wanting non-matches both name one value. */
    if ((m->op == RG_MATCH_EQ && want) || (m->op == RG_MATCH_NE && !want)) {
        uint32_t vsym, ei;

        if (rg__intern_find(&st->syms, m->value, strlen(m->value), &vsym))
            return 0;
        ei = entry_find(ln, vsym);
        if (ei == NONE)
            return 0;
        return lists_add(out, &ln->entries[ei]);
    }
    for (uint32_t ei = 0; ei < ln->eused; ei++) {
        const struct rg__postings *e = &ln->entries[ei];
        const struct rg__sym *v;

        if (e->key == NONE)
            continue;
        v = rg__intern_sym(&st->syms, e->key & KEY_VALUE);
        if (!matches(m, v->str, v->len) != !want)
            continue;
        if (lists_add(out, e))
            return RG_ENOMEM;
    }
    return 0;
}

/* 1 when the union of @l is better built as a bitmap over the id range than by
 * sorting the concatenated lists: the bitmap costs a bit per id handed out, the
 * radix sort four passes over every listed id. */
static int lists_dense(const struct rg_store *st, const struct lists *l)
{
    return l->total * 32 >= st->next_id;
}

/* A bitmap of the union of @l over ids 0..next_id-1 (caller frees), or NULL. */
static uint64_t *lists_bitmap(const struct rg_store *st, const struct lists *l)
{
    uint64_t *bits = calloc(((size_t)st->next_id + 63) / 64 + 1, sizeof(*bits));

    if (!bits)
        return NULL;
    for (size_t i = 0; i < l->n; i++) {
        const uint32_t *ids = rg__postings_ids(l->p[i]);

        for (uint32_t k = 0; k < l->p[i]->n; k++)
            bits[ids[k] >> 6] |= UINT64_C(1) << (ids[k] & 63);
    }
    return bits;
}

/* Replaces @out by the union of @l, ascending. Returns 0 or RG_ENOMEM. */
static int lists_union(const struct rg_store *st, const struct lists *l, struct idvec *out)
{
    size_t cnt;

    out->n = 0;
    if (l->n == 1)
        return idvec_add(out, rg__postings_ids(l->p[0]), l->p[0]->n);
    if (lists_dense(st, l)) {
        uint64_t *bits = lists_bitmap(st, l);

        if (!bits || idvec_reserve(out, l->total)) {
            free(bits);
            return RG_ENOMEM;
        }
        for (size_t wd = 0; wd <= (size_t)st->next_id / 64; wd++) {
            for (uint64_t b = bits[wd]; b; b &= b - 1)
                out->ids[out->n++] = (uint32_t)(wd * 64 + (size_t)__builtin_ctzll(b));
        }
        free(bits);
        return 0;
    }
    for (size_t i = 0; i < l->n; i++)
        if (idvec_add(out, rg__postings_ids(l->p[i]), l->p[i]->n))
            return RG_ENOMEM;
    cnt = rg__ids_sort_unique(out->ids, out->n);
    if (cnt == (size_t)-1)
        return RG_ENOMEM;
    out->n = cnt;
    return 0;
}

/* Keeps the ids of the ascending @cur that are in the union of @l (@keep 1) or
 * that are not (@keep 0); @tmp is scratch. Returns 0 or RG_ENOMEM. */
static int lists_filter(const struct rg_store *st, const struct lists *l, int keep,
                        struct idvec *cur, struct idvec *tmp)
{
    const uint32_t *ids;
    size_t n;

    if (!l->n) {
        if (keep)
            cur->n = 0;
        return 0;
    }
    if (l->n > 1 && lists_dense(st, l)) {
        uint64_t *bits = lists_bitmap(st, l);
        size_t w = 0;

        if (!bits)
            return RG_ENOMEM;
        for (size_t i = 0; i < cur->n; i++) {
            uint32_t id = cur->ids[i];

            if (!(bits[id >> 6] >> (id & 63) & 1) == !keep)
                cur->ids[w++] = id;
        }
        cur->n = w;
        free(bits);
        return 0;
    }
    if (l->n == 1) {
        ids = rg__postings_ids(l->p[0]);
        n = l->p[0]->n;
    } else {
        if (lists_union(st, l, tmp))
            return RG_ENOMEM;
        ids = tmp->ids;
        n = tmp->n;
    }
    cur->n = keep ? rg__ids_intersect(cur->ids, cur->n, ids, n, cur->ids)
                  : rg__ids_subtract(cur->ids, cur->n, ids, n, cur->ids);
    return 0;
}

/* Keeps the ids of @cur whose series carry label l->name with one of the values of
 * the lists of @l (all from one gather(), keyed by value symbol). For a set already
 * much smaller than the lists, looking at each series beats going through every
 * listed id: a selector like {__name__="x", job!=""} meets every job's list. */
static int lists_filter_direct(const struct rg_store *st, const struct lists *l,
                               struct idvec *cur)
{
    uint64_t *want = calloc((size_t)st->syms.used / 64 + 1, sizeof(*want));
    size_t w = 0;

    if (!want)
        return RG_ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        uint32_t v = l->p[i]->key & KEY_VALUE;

        want[v / 64] |= UINT64_C(1) << (v % 64);
    }
    for (size_t i = 0; i < cur->n; i++) {
        const struct rg_series *s = st->by_id[cur->ids[i]];

        for (uint32_t k = 0; k < s_n(s); k++) {
            if (s_name(s, k) == l->name) {
                if (want[s->vals[k] / 64] >> (s->vals[k] % 64) & 1)
                    cur->ids[w++] = cur->ids[i];
                break;
            }
        }
    }
    cur->n = w;
    free(want);
    return 0;
}

/* Selection, with the visit order when @visit is not NULL. */
static int select_series(const struct rg_store *store, const struct rg_matcher *m, size_t nm,
                         struct rg_series ***out, uint32_t **visit, size_t *n)
{
    const struct rg_store *st = store;
    struct idvec cur = { 0 }, tmp = { 0 };
    struct lists l = { 0 };
    struct rg_series **res;
    uint32_t *vis = NULL;
    int have_cur = 0, err = 0;

    *out = NULL;
    *n = 0;
    if (visit)
        *visit = NULL;
    for (size_t i = 0; i < nm; i++) {
        if (!m[i].name || ((m[i].op == RG_MATCH_EQ || m[i].op == RG_MATCH_NE) && !m[i].value) ||
            ((m[i].op == RG_MATCH_RE || m[i].op == RG_MATCH_NRE) && !m[i].re_match) ||
            (unsigned)m[i].op > RG_MATCH_NRE)
            return RG_EINVAL;
    }
    if (!nm)
        return 0;
    /* Matchers that do not match "" narrow the set down: the "=" ones first (one
     * sorted list each, usually the shortest), then the others. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < nm; i++) {
            if ((m[i].op == RG_MATCH_EQ) != (pass == 0) || matches(&m[i], "", 0))
                continue;
            l.n = l.total = 0;
            if ((err = gather(st, &m[i], 1, &l)))
                goto out;
            if (!have_cur)
                err = lists_union(st, &l, &cur);
            else if (l.n > 1 && cur.n * 16 < l.total)
                err = lists_filter_direct(st, &l, &cur);
            else
                err = lists_filter(st, &l, 1, &cur, &tmp);
            have_cur = 1;
            if (err || !cur.n)
                goto out;
        }
    }
    /* Series lacking the label count as "", which those that match "" accept:
     * they only remove the series whose value does not match. */
    l.n = l.total = 0;
    for (size_t i = 0; i < nm; i++)
        if (matches(&m[i], "", 0) && (err = gather(st, &m[i], 0, &l)))
            goto out;
    if (!have_cur) {
        if ((err = idvec_reserve(&cur, st->nseries)))
            goto out;
        for (uint32_t id = 0; id < st->next_id; id++)
            if (st->by_id[id])
                cur.ids[cur.n++] = id;
    }
    if ((err = lists_filter(st, &l, 0, &cur, &tmp)) || !cur.n)
        goto out;
    res = malloc(cur.n * sizeof(*res));
    if (!res) {
        err = RG_ENOMEM;
        goto out;
    }
    if (visit && cur.n >= st->rank_min)
        vis = malloc(cur.n * sizeof(*vis));
    if (!order_series((struct rg_store *)st, cur.ids, cur.n, res, vis)) {
        free(vis);
        vis = NULL;
    }
    *out = res;
    *n = cur.n;
    if (visit)
        *visit = vis;
out:
    free(cur.ids);
    free(tmp.ids);
    free(l.p);
    return err;
}

int rg_store_select(const struct rg_store *store, const struct rg_matcher *m, size_t nm,
                    struct rg_series ***out, size_t *n)
{
    return select_series(store, m, nm, out, NULL, n);
}

int rg_store_select_visit(const struct rg_store *store, const struct rg_matcher *m, size_t nm,
                          struct rg_series ***out, uint32_t **visit, size_t *n)
{
    return select_series(store, m, nm, out, visit, n);
}

/* ---- Label names and values --------------------------------------------- */

static int cmp_sym(const void *a, const void *b)
{
    const struct rg__sym *x = *(const struct rg__sym *const *)a;
    const struct rg__sym *y = *(const struct rg__sym *const *)b;

    return cmp_bytes(x->str, x->len, y->str, y->len);
}

/* Sorts @syms by bytes and calls @cb on each string until it returns non-zero. */
static int walk_sorted(const struct rg__sym **syms, size_t n, int (*cb)(const char *, void *),
                       void *ud)
{
    qsort(syms, n, sizeof(*syms), cmp_sym);
    for (size_t i = 0; i < n; i++) {
        int rc = cb(syms[i]->str, ud);

        if (rc)
            return rc;
    }
    return 0;
}

int rg_store_label_names(const struct rg_store *store, int (*cb)(const char *name, void *ud),
                         void *ud)
{
    const struct rg__sym **syms;
    size_t n = 0;
    int rc;

    if (!store->names.n)
        return 0;
    syms = malloc(store->names.n * sizeof(*syms));
    if (!syms)
        return RG_ENOMEM;
    for (uint32_t i = 0; i < store->ln_used; i++)
        if (store->lnames[i].name != NONE)
            syms[n++] = rg__intern_sym(&store->syms, store->lnames[i].name);
    rc = walk_sorted(syms, n, cb, ud);
    free(syms);
    return rc;
}

int rg_store_label_values(const struct rg_store *store, const char *name,
                          int (*cb)(const char *value, void *ud), void *ud)
{
    const struct lname *ln;
    const struct rg__sym **syms;
    uint32_t nsym, li;
    size_t n = 0;
    int rc;

    if (rg__intern_find(&store->syms, name, strlen(name), &nsym))
        return 0;
    li = lname_find(store, nsym);
    if (li == NONE)
        return 0;
    ln = &store->lnames[li];
    syms = malloc(ln->nvalues * sizeof(*syms));
    if (!syms)
        return RG_ENOMEM;
    for (uint32_t i = 0; i < ln->eused; i++)
        if (ln->entries[i].key != NONE)
            syms[n++] = rg__intern_sym(&store->syms, ln->entries[i].key & KEY_VALUE);
    rc = walk_sorted(syms, n, cb, ud);
    free(syms);
    return rc;
}

/* ---- Metadata ----------------------------------------------------------- */

static char *dup_slice(struct rg_slice s)
{
    char *p = malloc(s.len + 1);

    if (!p)
        return NULL;
    if (s.len)
        memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return p;
}

int rg_store_metadata_set(struct rg_store *store, struct rg_slice family,
                          enum rg_metric_type type, struct rg_slice help, struct rg_slice unit)
{
    size_t lo = 0, hi = store->nmeta;
    char *h, *u, *f = NULL;
    struct meta *m;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *mf = store->meta[mid].family;
        int c = cmp_bytes(mf, strlen(mf), family.ptr, family.len);

        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    h = dup_slice(help);
    if (!h)
        goto fail_help;
    u = dup_slice(unit);
    if (!u)
        goto fail_unit;
    if (lo < store->nmeta &&
        cmp_bytes(store->meta[lo].family, strlen(store->meta[lo].family), family.ptr,
                  family.len) == 0) {
        m = &store->meta[lo];
        free(m->help);
        free(m->unit);
        m->type = type;
        m->help = h;
        m->unit = u;
        return 0;
    }
    f = dup_slice(family);
    if (!f)
        goto fail_family;
    if (store->nmeta == store->meta_cap) {
        size_t cap = store->meta_cap ? store->meta_cap * 2 : 16;
        struct meta *a = realloc(store->meta, cap * sizeof(*a));

        if (!a)
            goto fail_grow;
        store->meta = a;
        store->meta_cap = cap;
    }
    memmove(&store->meta[lo + 1], &store->meta[lo], (store->nmeta - lo) * sizeof(*m));
    m = &store->meta[lo];
    m->family = f;
    m->type = type;
    m->help = h;
    m->unit = u;
    store->nmeta++;
    return 0;

fail_grow:
    free(f);
fail_family:
    free(u);
fail_unit:
    free(h);
fail_help:
    return RG_ENOMEM;
}

int rg_store_metadata_each(const struct rg_store *store,
                           int (*cb)(const char *family, enum rg_metric_type type,
                                     const char *help, const char *unit, void *ud),
                           void *ud)
{
    for (size_t i = 0; i < store->nmeta; i++) {
        const struct meta *m = &store->meta[i];
        int rc = cb(m->family, m->type, m->help, m->unit, ud);

        if (rc)
            return rc;
    }
    return 0;
}

/* ---- Readers' cache ------------------------------------------------------ */

/* Frees the readers' cache: the set of series changed. */
static void rcache_drop(struct rg_store *st)
{
    void *data = st->rcache;
    void (*fn)(void *) = st->rcache_free;

    st->rcache = NULL;
    st->rcache_free = NULL;
    if (fn)
        fn(data);
}

void rg_store_cache_set(const struct rg_store *store, void *data, void (*free_fn)(void *))
{
    /* The cache is outside the store's contents: readers holding the store const
     * may replace it. */
    struct rg_store *st = (struct rg_store *)store;

    rcache_drop(st);
    st->rcache = data;
    st->rcache_free = free_fn;
}

void *rg_store_cache(const struct rg_store *store, void (*free_fn)(void *))
{
    return store->rcache_free == free_fn ? store->rcache : NULL;
}

uint64_t rg_store_created_mark(const struct rg_store *store)
{
    /* Ids are handed out in increasing order and only renumbered by a collection
     * that removed series, which drops the readers' cache. */
    return store->next_id;
}

int rg_store_created_since(const struct rg_store *store, uint64_t since,
                           int (*cb)(const struct rg_series *series, void *ud), void *ud)
{
    for (uint64_t id = since; id < store->next_id; id++) {
        int rc;

        if (!store->by_id[id])
            continue;
        rc = cb(store->by_id[id], ud);
        if (rc)
            return rc;
    }
    return 0;
}

int rg_store_series_matches(const struct rg_series *series, const struct rg_matcher *m,
                            size_t nm)
{
    const struct rg__intern *in = s_syms(series);

    for (size_t i = 0; i < nm; i++) {
        const struct rg__sym *v = NULL;

        for (uint32_t k = 0; k < s_n(series); k++) {
            const struct rg__sym *nsym = rg__intern_sym(in, s_name(series, k));

            if (cmp_bytes(nsym->str, nsym->len, m[i].name, strlen(m[i].name)) == 0) {
                v = rg__intern_sym(in, series->vals[k]);
                break;
            }
        }
        if (!(v ? matches(&m[i], v->str, v->len) : matches(&m[i], "", 0)))
            return 0;
    }
    return 1;
}

/* ---- Accounting and introspection --------------------------------------- */

size_t rg_store_bytes(const struct rg_store *store)
{
    size_t b = sizeof(*store) + store->bytes + rg__intern_bytes(&store->syms) +
               rg__htab_bytes(&store->series_idx) + rg__htab_bytes(&store->names) +
               rg__htab_bytes(&store->shape_idx) + (size_t)store->sh_cap * sizeof(*store->shapes) +
               (size_t)store->id_cap * sizeof(*store->by_id) +
               (size_t)store->rank_cap * sizeof(*store->rank) +
               store->dirty_cap * sizeof(*store->dirty) + store->meta_cap * sizeof(*store->meta);

    for (uint32_t i = 0; i < store->ln_used; i++)
        b += rg__htab_bytes(&store->lnames[i].values);
    for (int w = 0; w < 2; w++)
        for (unsigned cls = 0; cls <= CLS_MAX; cls++)
            b += rg__slab_bytes(&store->rings[w][cls]) +
                 rg__slab_table_bytes(&store->rings[w][cls]);
    for (size_t i = 0; i < store->nmeta; i++)
        b += strlen(store->meta[i].family) + strlen(store->meta[i].help) +
             strlen(store->meta[i].unit) + 3;
    return b;
}

void rg__store_set_rank_min(struct rg_store *store, size_t n)
{
    store->rank_min = n;
}

size_t rg__store_symbol_count(const struct rg_store *store)
{
    return store->syms.live;
}

size_t rg__store_shape_count(const struct rg_store *store)
{
    return store->shape_idx.n;
}

size_t rg__store_pair_count(const struct rg_store *store)
{
    return store->npairs;
}

size_t rg__store_postings_len(const struct rg_store *store, const char *name,
                              const char *value)
{
    uint32_t nsym, vsym, li, ei;

    if (rg__intern_find(&store->syms, name, strlen(name), &nsym) ||
        rg__intern_find(&store->syms, value, strlen(value), &vsym))
        return 0;
    li = lname_find(store, nsym);
    if (li == NONE)
        return 0;
    ei = entry_find(&store->lnames[li], vsym);
    return ei == NONE ? 0 : store->lnames[li].entries[ei].n;
}

/* ---- Memory breakdown ---------------------------------------------------- */

static void mem_add(struct rg__store_mem_use *u, const void *block, size_t used, size_t reserved)
{
    if (!block)
        return;
    u->blocks++;
    u->used += used;
    u->reserved += reserved;
    u->usable += malloc_usable_size((void *)block);
}

void rg__store_mem(const struct rg_store *store, struct rg__store_mem_use *out,
                   const char **names)
{
    static const char *const part_names[RG__MEM_NPARTS] = {
        "series blocks", "shapes", "sample rings", "by_id array", "series hash", "string blocks",
        "symbol array", "string hash", "label names", "entry arrays", "value hashes",
        "postings lists", "other",
    };
    const struct rg__intern *in = &store->syms;

    memset(out, 0, RG__MEM_NPARTS * sizeof(*out));
    if (names)
        for (int i = 0; i < RG__MEM_NPARTS; i++)
            names[i] = part_names[i];
    for (uint32_t id = 0; id < store->next_id; id++) {
        const struct rg_series *s = store->by_id[id];
        size_t lb;

        if (!s)
            continue;
        lb = sizeof(uint32_t) * s_n(s);
        mem_add(&out[RG__MEM_SERIES], s, sizeof(*s) + lb, sizeof(*s) + lb);
        if (s->buf) {
            out[RG__MEM_RINGS].used += (size_t)s->count * sample_size(s->flags);
            out[RG__MEM_RINGS].reserved += ring_class((struct rg_store *)store, s->capcls,
                                                      s->flags)->slot;
        }
    }
    for (int w = 0; w < 2; w++) {
        for (unsigned cls = 0; cls <= CLS_MAX; cls++) {
            const struct rg__slab_class *c = &store->rings[w][cls];

            for (uint32_t i = 0; i < c->nslabs; i++) {
                if (!c->slabs[i])
                    continue;
                out[RG__MEM_RINGS].blocks++;
                out[RG__MEM_RINGS].usable += malloc_usable_size(c->slabs[i]);
            }
            if (c->slabs) {
                out[RG__MEM_OTHER].blocks += 3;
                out[RG__MEM_OTHER].used += rg__slab_table_bytes(c);
                out[RG__MEM_OTHER].reserved += rg__slab_table_bytes(c);
                out[RG__MEM_OTHER].usable += malloc_usable_size(c->slabs) +
                                             malloc_usable_size(c->recs) +
                                             malloc_usable_size(c->by_addr);
            }
        }
    }
    for (uint32_t i = 0; i < store->sh_used; i++) {
        const struct shape *sh = store->shapes[i].shape;

        if (store->shapes[i].free_next & 1)
            continue;
        mem_add(&out[RG__MEM_SHAPES], sh, sizeof(*sh) + sizeof(uint32_t) * sh->n,
                sizeof(*sh) + sizeof(uint32_t) * sh->n);
    }
    mem_add(&out[RG__MEM_SHAPES], store->shapes, store->shape_idx.n * sizeof(*store->shapes),
            (size_t)store->sh_cap * sizeof(*store->shapes));
    mem_add(&out[RG__MEM_SHAPES], store->shape_idx.slots,
            store->shape_idx.n * sizeof(struct rg__htab_slot), rg__htab_bytes(&store->shape_idx));
    mem_add(&out[RG__MEM_BY_ID], store->by_id, store->nseries * sizeof(*store->by_id),
            (size_t)store->id_cap * sizeof(*store->by_id));
    mem_add(&out[RG__MEM_SERIES_IDX], store->series_idx.slots,
            store->series_idx.n * sizeof(struct rg__htab_slot),
            rg__htab_bytes(&store->series_idx));
    for (uint32_t i = 0; i < in->used; i++) {
        const struct rg__sym *sym;

        if (in->syms[i].free_next & 1)
            continue;
        sym = in->syms[i].sym;
        if (sizeof(*sym) + sym->len + 1 > RG__INTERN_SLAB_MAX) {
            mem_add(&out[RG__MEM_SYMS], sym, sizeof(*sym) + sym->len + 1,
                    sizeof(*sym) + sym->len + 1);
        } else {
            /* A slot of a slab: counted with its slab below. */
            out[RG__MEM_SYMS].used += sizeof(*sym) + sym->len + 1;
            out[RG__MEM_SYMS].reserved += (sizeof(*sym) + sym->len + 1 + 7) & ~(size_t)7;
        }
    }
    for (size_t k = 0; k < sizeof(in->slabs) / sizeof(in->slabs[0]); k++) {
        const struct rg__slab_class *c = &in->slabs[k];

        for (uint32_t i = 0; i < c->nslabs; i++)
            if (c->slabs[i])
                mem_add(&out[RG__MEM_SYMS], c->slabs[i], 0, 0);
        if (c->slabs) {
            out[RG__MEM_OTHER].blocks += 3;
            out[RG__MEM_OTHER].used += rg__slab_table_bytes(c);
            out[RG__MEM_OTHER].reserved += rg__slab_table_bytes(c);
            out[RG__MEM_OTHER].usable += malloc_usable_size(c->slabs) +
                                         malloc_usable_size(c->recs) +
                                         malloc_usable_size(c->by_addr);
        }
    }
    mem_add(&out[RG__MEM_SYM_IDS], in->syms, (size_t)in->live * sizeof(*in->syms),
            (size_t)in->cap * sizeof(*in->syms));
    mem_add(&out[RG__MEM_SYM_IDX], in->index.slots, in->index.n * sizeof(struct rg__htab_slot),
            rg__htab_bytes(&in->index));
    mem_add(&out[RG__MEM_LNAMES], store->lnames, store->names.n * sizeof(*store->lnames),
            (size_t)store->ln_cap * sizeof(*store->lnames));
    mem_add(&out[RG__MEM_LNAMES], store->names.slots,
            store->names.n * sizeof(struct rg__htab_slot), rg__htab_bytes(&store->names));
    for (uint32_t li = 0; li < store->ln_used; li++) {
        const struct lname *ln = &store->lnames[li];

        if (ln->name == NONE)
            continue;
        mem_add(&out[RG__MEM_ENTRIES], ln->entries, (size_t)ln->nvalues * sizeof(*ln->entries),
                (size_t)ln->ecap * sizeof(*ln->entries));
        mem_add(&out[RG__MEM_VALUE_IDX], ln->values.slots,
                ln->values.n * sizeof(struct rg__htab_slot), rg__htab_bytes(&ln->values));
        for (uint32_t ei = 0; ei < ln->eused; ei++) {
            const struct rg__postings *e = &ln->entries[ei];

            if (e->key == NONE || e->n <= RG__POSTINGS_INLINE)
                continue;
            mem_add(&out[RG__MEM_POSTINGS], e->u.ids, (size_t)e->n * sizeof(uint32_t),
                    rg__postings_bytes(e));
        }
    }
    mem_add(&out[RG__MEM_OTHER], store, sizeof(*store), sizeof(*store));
    mem_add(&out[RG__MEM_OTHER], store->rank, (size_t)store->nseries * sizeof(*store->rank),
            (size_t)store->rank_cap * sizeof(*store->rank));
    mem_add(&out[RG__MEM_OTHER], store->dirty, store->ndirty * sizeof(*store->dirty),
            store->dirty_cap * sizeof(*store->dirty));
    mem_add(&out[RG__MEM_OTHER], store->meta, store->nmeta * sizeof(*store->meta),
            store->meta_cap * sizeof(*store->meta));
    for (size_t i = 0; i < store->nmeta; i++) {
        const struct meta *m = &store->meta[i];

        mem_add(&out[RG__MEM_OTHER], m->family, strlen(m->family) + 1, strlen(m->family) + 1);
        mem_add(&out[RG__MEM_OTHER], m->help, strlen(m->help) + 1, strlen(m->help) + 1);
        mem_add(&out[RG__MEM_OTHER], m->unit, strlen(m->unit) + 1, strlen(m->unit) + 1);
    }
}
