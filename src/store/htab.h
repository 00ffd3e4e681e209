/* store/htab.h - open-addressing hash index from a 32-bit hash to a 32-bit id.
 *
 * Every lookup structure of the store (label set -> series, string -> symbol,
 * label name -> postings, label value -> postings) is an array of records
 * addressed by a dense uint32 id; this table only maps hashes to those ids, and
 * the caller decides equality through a callback that looks at the record. Slots
 * are 8 bytes (id, full 32-bit hash), so probing compares hashes without touching
 * the records, and a mismatching record is only dereferenced on a true hash
 * collision. A hash picks its home slot by multiply-shift range reduction
 * ((hash * cap) >> 32, D. Lemire's "fastrange"), so the table can grow by a
 * quarter instead of doubling, which keeps the load between 0.64 and 0.8 and the
 * slot cost near 11 bytes per entry (the store has three tables with an entry per
 * series). Linear probing with a maximum load of 4/5: a hit then takes about three
 * probes on average, within one or two cache lines of 8-byte slots. Removal uses
 * backward-shift deletion (Knuth, TAOCP vol. 3, algorithm 6.4R), so there are no
 * tombstones and lookups stay short after heavy churn. Internal to src/store;
 * not thread-safe.
 */
#ifndef RG_STORE_HTAB_H
#define RG_STORE_HTAB_H

#include <stddef.h>
#include <stdint.h>

#define RG__HTAB_EMPTY UINT32_MAX   /* id of a free slot; never a valid id */

struct rg__htab_slot {
    uint32_t id;     /* record id, or RG__HTAB_EMPTY */
    uint32_t hash;   /* full hash of the record's key */
};

/** Zero-initialised is a valid empty table. */
struct rg__htab {
    struct rg__htab_slot *slots;   /* owned; NULL while cap == 0 */
    uint32_t cap;                  /* slots allocated (any size), or 0 */
    uint32_t n;                    /* used slots */
};

/** Frees the slots; @t is empty and reusable afterwards. NULL is a no-op. */
void rg__htab_cleanup(struct rg__htab *t);

/** Makes room for @extra more insertions without growing. Returns 0 or RG_ENOMEM. */
int rg__htab_reserve(struct rg__htab *t, size_t extra);

/** Returns the id whose slot has @hash and for which @eq(@ctx, id) is non-zero,
 *  or RG__HTAB_EMPTY. Never allocates. */
uint32_t rg__htab_find(const struct rg__htab *t, uint32_t hash,
                       int (*eq)(const void *ctx, uint32_t id), const void *ctx);

/** Inserts @id under @hash. The caller has reserved room and knows that no equal
 *  record is present. */
void rg__htab_insert(struct rg__htab *t, uint32_t hash, uint32_t id);

/** Removes the slot holding @id under @hash (no-op when absent). */
void rg__htab_remove(struct rg__htab *t, uint32_t hash, uint32_t id);

/** Bytes allocated for slots. */
size_t rg__htab_bytes(const struct rg__htab *t);

#endif
