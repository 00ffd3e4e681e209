/* store/slab.h - a slab allocator for blocks of one fixed size, addressed by handles.
 *
 * Every series keeps its samples in a ring whose capacity grows through a few size
 * classes, and in a remote-write load all series grow at about the same time: each
 * growth frees a block of the old class and takes one of the next. With malloc,
 * those freed blocks lie scattered between live ones, where no later request of a
 * larger class fits, and each block also pays malloc's 8-byte header and rounding
 * to 16 bytes. A slab class instead carves slots of exactly its size out of slabs,
 * and gives a slab back to malloc as soon as its last slot is freed. Every slab of
 * every class is the same 16 KiB block, so the hole a released slab leaves is
 * exactly what the next slab of any class needs: rings move from class to class
 * without leaving unusable gaps, and slots are packed without headers. This is the
 * segregated-fit slab scheme of Bonwick's slab allocator, without object caching.
 *
 * A slot is named by a 32-bit handle, slab index times slots per slab plus slot
 * index, so freeing by handle needs no search. Owners with no room for a handle
 * free by address instead: the live slabs are also kept sorted by address, and a
 * binary search finds the one holding the slot. Free slots of a slab are chained through their
 * first four bytes; never-used slots are handed out by a bump index, so a new
 * slab's pages are only touched as it fills. Slabs with room are kept on a doubly
 * linked list threaded through the per-slab records. A slot larger than a slab gets
 * a slab of its own size. Internal to src/store; not thread-safe.
 */
#ifndef RG_STORE_SLAB_H
#define RG_STORE_SLAB_H

#include <stddef.h>
#include <stdint.h>

/* Bytes asked of malloc per slab: glibc adds an 8-byte header, so the chunk is
 * exactly 16 KiB and a released slab's hole fits any other slab. */
#define RG__SLAB_BYTES ((size_t)16384 - 8)

struct rg__slab_rec;   /* per-slab bookkeeping, private to slab.c */

/** One class of slots. Set up with rg__slab_init(); free with rg__slab_cleanup(). */
struct rg__slab_class {
    size_t slot;                  /* bytes per slot, a multiple of 8 */
    uint32_t per;                 /* slots per slab */
    char **slabs;                 /* owned; slab index -> block, NULL when released */
    struct rg__slab_rec *recs;    /* owned; per slab */
    uint32_t *by_addr;            /* owned; live slab indexes sorted by block address */
    uint32_t nslabs, cap;         /* indexes handed out / allocated */
    uint32_t partial;             /* first slab with room, or UINT32_MAX */
    uint32_t spare;               /* first released slab index, or UINT32_MAX */
    size_t live_slabs;            /* slabs currently allocated */
};

/** Prepares @c for slots of @slot bytes (rounded up to a multiple of 8, at least 8).
 *  Allocates nothing. */
void rg__slab_init(struct rg__slab_class *c, size_t slot);

/** Frees every slab of @c, live slots included. NULL is a no-op. */
void rg__slab_cleanup(struct rg__slab_class *c);

/** Takes a slot: its handle in *@h and its address in *@p (8-byte aligned,
 *  contents undefined). Returns 0 or RG_ENOMEM. */
int rg__slab_alloc(struct rg__slab_class *c, uint32_t *h, void **p);

/** Gives slot @h back; the slab goes back to malloc when it empties. */
void rg__slab_free(struct rg__slab_class *c, uint32_t h);

/** Gives back the live slot at @p, found by its address (O(log slabs)). */
void rg__slab_free_ptr(struct rg__slab_class *c, const void *p);

/** Address of live slot @h (the allocation also returned it). */
static inline void *rg__slab_ptr(const struct rg__slab_class *c, uint32_t h)
{
    return c->slabs[h / c->per] + (size_t)(h % c->per) * c->slot;
}

/** Bytes of the slabs allocated (live or free slots alike). */
static inline size_t rg__slab_bytes(const struct rg__slab_class *c)
{
    return c->live_slabs * c->slot * c->per;
}

/** Bytes of the class's own tables (slab pointers and per-slab records). */
size_t rg__slab_table_bytes(const struct rg__slab_class *c);

#endif
