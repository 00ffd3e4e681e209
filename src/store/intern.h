/* store/intern.h - refcounted string interning with dense 32-bit symbol ids.
 *
 * Label names and values repeat across millions of series ("__name__", "job",
 * the same instance under a hundred metrics), so the store keeps one copy of each
 * distinct string and refers to it by a uint32 symbol id: half the size of a
 * pointer, and equal strings compare as equal ids. Each symbol counts its users;
 * when the last series holding it is collected the string is freed and its id is
 * reused. A symbol is one block (refcount, length, bytes, NUL: an 8-byte header),
 * found through an rg__htab keyed by the string's hash. Blocks of up to 256 bytes
 * are slots of slab classes 8 bytes apart (store/slab.h), so a 14-byte string
 * takes 24 bytes where malloc would use a 32-byte chunk, and freed strings leave
 * no scattered holes; they are freed by address, so no handle is stored. Longer
 * strings get their own malloc block. Free ids are chained through the id array
 * itself, so a symbol costs no more than its block, one array slot and one hash
 * slot. Internal to src/store; not thread-safe. Strings returned stay valid until
 * their symbol is released.
 */
#ifndef RG_STORE_INTERN_H
#define RG_STORE_INTERN_H

#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include "store/htab.h"
#include "store/slab.h"

/** Symbol blocks up to this many bytes live in slabs; longer ones are malloc'd. */
#define RG__INTERN_SLAB_MAX 256

/** Symbol ids stay below this bound, which leaves callers a spare top bit. */
#define RG__INTERN_MAX_ID UINT32_C(0x7ffffffe)

struct rg__sym {
    uint32_t refs;   /* users of this symbol */
    uint32_t len;    /* bytes, not counting the NUL */
    char str[];      /* NUL-terminated copy */
};

/** One id's slot: its block, or (odd) the next free id shifted left by one. */
union rg__intern_slot {
    struct rg__sym *sym;   /* live id: owned block (even address) */
    uintptr_t free_next;   /* free id: (next free id << 1) | 1 */
};

/** Set up with rg__intern_init() before use (zeroed memory is not enough). */
struct rg__intern {
    union rg__intern_slot *syms;   /* owned; indexed by id */
    uint32_t cap;                  /* entries allocated in syms */
    uint32_t used;                 /* ids handed out so far (high-water mark) */
    uint32_t live;                 /* symbols currently alive */
    uint32_t free_head;            /* first free id below used, or UINT32_MAX */
    struct rg__htab index;         /* hash -> id */
    size_t bytes;                  /* bytes in symbol blocks */
    size_t big_bytes;              /* of those, in malloc'd blocks */
    /* Slab classes for blocks of 16, 24, ... RG__INTERN_SLAB_MAX bytes. */
    struct rg__slab_class slabs[RG__INTERN_SLAB_MAX / 8 - 1];
};

/** Prepares an empty table; needs no cleanup until something is interned. */
void rg__intern_init(struct rg__intern *in);

/** Frees every symbol and the table. NULL is a no-op. */
void rg__intern_cleanup(struct rg__intern *in);

/** Returns in *@id the symbol for @len bytes at @p, creating it when absent, and
 *  takes one reference. Copies the bytes. Returns 0, RG_EINVAL (longer than
 *  4 GiB) or RG_ENOMEM. */
int rg__intern_get(struct rg__intern *in, const char *p, size_t len, uint32_t *id);

/** Looks the string up without creating it or taking a reference. Never
 *  allocates. Returns 0 or RG_ENOENT. */
int rg__intern_find(const struct rg__intern *in, const char *p, size_t len, uint32_t *id);

/** Drops one reference of @id; the last one frees the string and the id. */
void rg__intern_release(struct rg__intern *in, uint32_t id);

/** The symbol block of a live @id. */
static inline const struct rg__sym *rg__intern_sym(const struct rg__intern *in, uint32_t id)
{
    return in->syms[id].sym;
}

/** The NUL-terminated string of a live @id. */
static inline const char *rg__intern_str(const struct rg__intern *in, uint32_t id)
{
    return in->syms[id].sym->str;
}

/** True when live symbol @id holds exactly @len bytes at @p. */
static inline int rg__intern_eq(const struct rg__intern *in, uint32_t id, const char *p,
                                size_t len)
{
    const struct rg__sym *s = in->syms[id].sym;

    return s->len == len && (len == 0 || memcmp(s->str, p, len) == 0);
}

/** Orders two live symbols by their bytes (memcmp, then length), like Go strings. */
int rg__intern_cmp(const struct rg__intern *in, uint32_t a, uint32_t b);

/** Bytes held by the table, its index and its strings. */
size_t rg__intern_bytes(const struct rg__intern *in);

#endif
