/* store/intern.h - refcounted string interning with dense 32-bit symbol ids.
 *
 * Label names and values repeat across millions of series ("__name__", "job",
 * the same instance under a hundred metrics), so the store keeps one copy of each
 * distinct string and refers to it by a uint32 symbol id: half the size of a
 * pointer, and equal strings compare as equal ids. Each symbol counts its users;
 * when the last series holding it is collected the string is freed and its id is
 * reused. Symbols live in one heap block each (refcount, length, hash, bytes, NUL),
 * found through an rg__htab keyed by the string's hash. Internal to src/store;
 * not thread-safe. Strings returned stay valid until their symbol is released.
 */
#ifndef RG_STORE_INTERN_H
#define RG_STORE_INTERN_H

#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include "store/htab.h"

struct rg__sym {
    uint32_t refs;   /* users of this symbol */
    uint32_t len;    /* bytes, not counting the NUL */
    uint32_t hash;   /* folded rg__hash_bytes() of the bytes */
    char str[];      /* NUL-terminated copy */
};

/** Zero-initialised is a valid empty table. */
struct rg__intern {
    struct rg__sym **syms;   /* owned; indexed by id, NULL for a free id */
    uint32_t cap;            /* entries allocated in syms */
    uint32_t used;           /* ids handed out so far (high-water mark) */
    uint32_t live;           /* symbols currently alive */
    uint32_t *free_ids;      /* owned stack of released ids */
    uint32_t nfree, free_cap;
    struct rg__htab index;   /* hash -> id */
    size_t bytes;            /* bytes in symbol blocks */
};

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
    return in->syms[id];
}

/** The NUL-terminated string of a live @id. */
static inline const char *rg__intern_str(const struct rg__intern *in, uint32_t id)
{
    return in->syms[id]->str;
}

/** True when live symbol @id holds exactly @len bytes at @p. */
static inline int rg__intern_eq(const struct rg__intern *in, uint32_t id, const char *p,
                                size_t len)
{
    const struct rg__sym *s = in->syms[id];

    return s->len == len && (len == 0 || memcmp(s->str, p, len) == 0);
}

/** Orders two live symbols by their bytes (memcmp, then length), like Go strings. */
int rg__intern_cmp(const struct rg__intern *in, uint32_t a, uint32_t b);

/** Bytes held by the table, its index and its strings. */
size_t rg__intern_bytes(const struct rg__intern *in);

#endif
