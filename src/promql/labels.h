/* promql/labels.h - label sets, hashing and a bump arena for the PromQL evaluator.
 *
 * The evaluator handles label sets as borrowed arrays of struct rg_label sorted by
 * name (struct rg__lset). Arrays and strings made during a query (grouping labels,
 * label_replace results) live in a bump arena that is released in one go when the
 * query ends, so evaluation never frees individual label sets. Hashes are
 * XXH64 (seed 0) over "name 0xff value 0xff ..." as Prometheus' HashForLabels,
 * or over the length-prefixed layout of its default labels.Hash(), so that
 * hash-dependent results (limit_ratio) agree with it.
 * A small open-addressing table maps 64-bit hashes to indexes for grouping and
 * vector matching. Internal to src/promql; loop thread only, except
 * rg_promql_labels_json, which the API and the alert state writer use to write a label
 * set as a JSON object (any thread; it lives here because util may not know struct
 * rg_label, and rules may not depend on api).
 */
#ifndef RG_PROMQL_LABELS_H
#define RG_PROMQL_LABELS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/buf.h"

/* ---- Arena ------------------------------------------------------------- */

struct rg__arena_blk;

/** Bump allocator; zero-initialised is empty. Everything is freed at once. */
struct rg__arena {
    struct rg__arena_blk *head;   /* owned list of blocks, newest first */
};

/** Returns @n bytes aligned to 16, or NULL on OOM. */
void *rg__arena_alloc(struct rg__arena *a, size_t n);
/** Copies @len bytes of @s plus a NUL into the arena; NULL on OOM. */
char *rg__arena_strndup(struct rg__arena *a, const char *s, size_t len);
/** Frees every block. NULL is a no-op; the arena is empty afterwards. */
void rg__arena_free(struct rg__arena *a);

/* ---- Label sets -------------------------------------------------------- */

/** A borrowed label set, sorted by name, no empty values. */
struct rg__lset {
    const struct rg_label *l;
    size_t n;
};

/** XXH64 with seed 0 of @len bytes. */
uint64_t rg__xxh64(const void *p, size_t len);

/** Hash of the whole set as Prometheus' labels.Hash(). @scratch is reused. */
uint64_t rg__lset_hash(struct rg__lset ls, struct rg_buf *scratch);
/** Hash of the whole set as Prometheus 3 release builds compute labels.Hash()
 *  (the "stringlabels" layout: each string preceded by its length, one byte below
 *  255, else 255 and three bytes little-endian). limit_ratio depends on it. */
uint64_t rg__lset_hash_packed(struct rg__lset ls, struct rg_buf *scratch);
/** Hash of the labels named in @names only (HashForLabels); @names any order. */
uint64_t rg__lset_hash_on(struct rg__lset ls, char *const *names, size_t nnames,
                          struct rg_buf *scratch);
/** Hash of all labels except @names and __name__ (HashWithoutLabels). */
uint64_t rg__lset_hash_without(struct rg__lset ls, char *const *names, size_t nnames,
                               struct rg_buf *scratch);

/** Hash of all labels except @names (__name__ included): BytesWithoutLabels. */
uint64_t rg__lset_hash_except(struct rg__lset ls, char *const *names, size_t nnames,
                              struct rg_buf *scratch);

/** Value of @name in @ls or NULL. */
const char *rg__lset_get(struct rg__lset ls, const char *name);
/** Prometheus labels.Compare: <0, 0, >0. */
int rg__lset_cmp(struct rg__lset a, struct rg__lset b);
/** True when @ls carries __name__. */
int rg__lset_has_name(struct rg__lset ls);

/** @ls without __name__. Borrows @ls when possible (no name, or name first);
 *  otherwise copies the array into @a. Returns 0 or RG_ENOMEM. */
int rg__lset_drop_name(struct rg__arena *a, struct rg__lset ls, struct rg__lset *out);
/** Only the labels named in @names (by). Array in @a. 0 or RG_ENOMEM. */
int rg__lset_keep(struct rg__arena *a, struct rg__lset ls, char *const *names, size_t nnames,
                  struct rg__lset *out);
/** All labels but @names and, when @drop_name, __name__ (without). 0 or RG_ENOMEM. */
int rg__lset_without(struct rg__arena *a, struct rg__lset ls, char *const *names,
                     size_t nnames, int drop_name, struct rg__lset *out);
/** @ls with @name set to @value (copied into @a); an empty value removes the label.
 *  0 or RG_ENOMEM. */
int rg__lset_set(struct rg__arena *a, struct rg__lset ls, const char *name, const char *value,
                 size_t vlen, struct rg__lset *out);

/** Appends Prometheus' labels.String() form: {__name__="x", a="b"}. */
int rg__lset_format(struct rg__lset ls, struct rg_buf *out);

/** Appends the labels @l (@n of them, borrowed) as a JSON object of names to values, in
 *  the order given, strings escaped by rg_json_string. Returns 0 or RG_ENOMEM. */
int rg_promql_labels_json(const struct rg_label *l, size_t n, struct rg_buf *out);

/* ---- Hash table -------------------------------------------------------- */

/** Open-addressing map from 64-bit hash to a uint32 index. */
struct rg__hmap {
    uint64_t *keys;    /* owned */
    uint32_t *vals;    /* owned; UINT32_MAX marks an empty slot */
    size_t cap;        /* power of two */
    size_t n;
};

/** Empties @m keeping room for @expect entries. Returns 0 or RG_ENOMEM. */
int rg__hmap_reset(struct rg__hmap *m, size_t expect);
/** Looks @key up: returns its index or UINT32_MAX. */
uint32_t rg__hmap_get(const struct rg__hmap *m, uint64_t key);
/** Inserts @key -> @val unless present. Sets *@found and *@val_out to the stored
 *  index either way. Returns 0 or RG_ENOMEM. */
int rg__hmap_put(struct rg__hmap *m, uint64_t key, uint32_t val, uint32_t *val_out,
                 int *found);
/** Frees the table. NULL is a no-op. */
void rg__hmap_free(struct rg__hmap *m);

#endif
