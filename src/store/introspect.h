/* store/introspect.h - read-only views of the store's internals for tests and benches.
 *
 * The public contract (store.h) hides how labels are interned and indexed; tests
 * still need to prove that strings are shared and released and that postings
 * shrink with the series they list. These functions expose counts only, never
 * pointers into the structures, and one knob for tests that never changes results.
 */
#ifndef RG_STORE_INTROSPECT_H
#define RG_STORE_INTROSPECT_H

#include <stddef.h>

#include "store/store.h"

/** Sorts selections of @n or more series by their label-set rank instead of by
 *  string comparison (default 64), so that tests can drive the rank bookkeeping
 *  with small stores. The order of results does not change. */
void rg__store_set_rank_min(struct rg_store *store, size_t n);

/** Number of distinct interned strings alive. */
size_t rg__store_symbol_count(const struct rg_store *store);

/** Number of distinct label-name lists (shapes) in use. */
size_t rg__store_shape_count(const struct rg_store *store);

/** Number of label name=value pairs with a postings list. */
size_t rg__store_pair_count(const struct rg_store *store);

/** Number of ids in the postings list of @name=@value (0 when absent). */
size_t rg__store_postings_len(const struct rg_store *store, const char *name,
                              const char *value);

/* ---- Memory accounting -------------------------------------------------- */

/** The parts of the store's memory, as rg__store_mem() reports them. */
enum rg__store_mem_part {
    RG__MEM_SERIES,      /* series blocks: header and value ids */
    RG__MEM_SHAPES,      /* label-name lists shared by series, their array and hash */
    RG__MEM_RINGS,       /* sample rings */
    RG__MEM_BY_ID,       /* series id -> series array */
    RG__MEM_SERIES_IDX,  /* label-set hash table */
    RG__MEM_SYMS,        /* interned string blocks */
    RG__MEM_SYM_IDS,     /* symbol id -> string array */
    RG__MEM_SYM_IDX,     /* string hash table */
    RG__MEM_LNAMES,      /* label name array and its hash table */
    RG__MEM_ENTRIES,     /* name=value entry arrays (postings headers) */
    RG__MEM_VALUE_IDX,   /* per-name value hash tables */
    RG__MEM_POSTINGS,    /* heap postings lists */
    RG__MEM_OTHER,       /* metadata, GC scratch, the store itself */
    RG__MEM_NPARTS
};

/** Bytes of one part, from the smallest to the largest view of them. */
struct rg__store_mem_use {
    size_t blocks;     /* separate heap blocks (0 for parts carved from shared blocks) */
    size_t used;       /* bytes holding live data */
    size_t reserved;   /* bytes the store asked for (used plus its own slack) */
    size_t usable;     /* bytes the allocator set aside (malloc_usable_size) */
};

/** Fills @out[RG__MEM_NPARTS] with the memory of every part; @names (may be NULL)
 *  receives a short static name for each. Walks every series: for tests and
 *  benches only. */
void rg__store_mem(const struct rg_store *store, struct rg__store_mem_use *out,
                   const char **names);

#endif
