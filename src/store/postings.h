/* store/postings.h - postings lists: sorted arrays of series ids, and set algebra.
 *
 * For every label name=value pair the store keeps the ids of the series carrying
 * it, ascending. Series ids are handed out in increasing order, so indexing a new
 * series only appends; the store's garbage collector filters dead ids out in one
 * pass per touched list. Most pairs in a real index belong to one or two series
 * (an instance label, a pod name), so lists of up to two ids live inline in the
 * 16-byte list header and need no allocation at all. The capacity of a heap list
 * is not stored: it is implied by the count (the smallest of 6, 10, 14, ... 30, 38,
 * 46, 54, 62, 78, ... that holds it, see postings.c), which leaves room in the
 * header for a 32-bit key the owner uses (the store keeps the value symbol there).
 * Selection works on plain sorted uint32 arrays: merge intersection and
 * difference, and an LSD radix sort (four 8-bit passes) for unions built by
 * concatenation. Internal to src/store.
 */
#ifndef RG_STORE_POSTINGS_H
#define RG_STORE_POSTINGS_H

#include <stddef.h>
#include <stdint.h>

#define RG__POSTINGS_INLINE 2   /* ids held without allocation */

/** Zero-initialised is a valid empty list. */
struct rg__postings {
    uint32_t n;     /* ids in the list */
    uint32_t key;   /* owned by the caller; never touched here */
    union {
        uint32_t *ids;                       /* owned, when n > RG__POSTINGS_INLINE */
        uint32_t inl[RG__POSTINGS_INLINE];   /* otherwise */
    } u;
};

/** The ids of @p, ascending. */
static inline const uint32_t *rg__postings_ids(const struct rg__postings *p)
{
    return p->n > RG__POSTINGS_INLINE ? p->u.ids : p->u.inl;
}

/** Ids a list of @n ids has room for. */
size_t rg__postings_cap(size_t n);

/** Appends @id, which must not be smaller than the last id; an id equal to the last
 *  is not added twice. Returns 0 or RG_ENOMEM. */
int rg__postings_append(struct rg__postings *p, uint32_t id);

/** Removes the last id when it equals @id. */
void rg__postings_pop(struct rg__postings *p, uint32_t id);

/** Keeps the ids for which @keep(@ctx, id) is non-zero, in order, and gives back
 *  the memory the shorter list no longer needs. */
void rg__postings_filter(struct rg__postings *p, int (*keep)(const void *ctx, uint32_t id),
                         const void *ctx);

/** Replaces every id by @map(@ctx, id); @map must preserve order. */
void rg__postings_remap(struct rg__postings *p, uint32_t (*map)(const void *ctx, uint32_t id),
                        const void *ctx);

/** Frees the list; it is empty and reusable afterwards, @key is kept. NULL is a no-op. */
void rg__postings_cleanup(struct rg__postings *p);

/** Heap bytes held by the list (0 while inline). */
static inline size_t rg__postings_bytes(const struct rg__postings *p)
{
    return p->n > RG__POSTINGS_INLINE ? rg__postings_cap(p->n) * sizeof(uint32_t) : 0;
}

/** Writes to @out the ids in both sorted arrays; returns how many. @out may be @a. */
size_t rg__ids_intersect(const uint32_t *a, size_t na, const uint32_t *b, size_t nb,
                         uint32_t *out);

/** Writes to @out the ids of sorted @a not in sorted @b; returns how many. @out may
 *  be @a. */
size_t rg__ids_subtract(const uint32_t *a, size_t na, const uint32_t *b, size_t nb,
                        uint32_t *out);

/** Sorts @n ids ascending and removes duplicates; returns the new count.
 *  Returns (size_t)-1 when scratch memory could not be allocated. */
size_t rg__ids_sort_unique(uint32_t *ids, size_t n);

#endif
