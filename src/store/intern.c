/* store/intern.c - refcounted string interning (see intern.h).
 *
 * Released ids go on a free list threaded through the id array and are handed out
 * again before the id range grows, which keeps the array dense under series churn.
 * The array grows by half.
 */
#include "store/intern.h"

#include <stdlib.h>
#include <string.h>

#include "store/hash.h"
#include "util/err.h"

struct key {
    const struct rg__intern *in;
    const char *p;
    size_t len;
};

static int key_eq(const void *ctx, uint32_t id)
{
    const struct key *k = ctx;

    return rg__intern_eq(k->in, id, k->p, k->len);
}

void rg__intern_init(struct rg__intern *in)
{
    memset(in, 0, sizeof(*in));
    in->free_head = UINT32_MAX;
    for (size_t k = 0; k < sizeof(in->slabs) / sizeof(in->slabs[0]); k++)
        rg__slab_init(&in->slabs[k], 16 + 8 * k);
}

/* Bytes of the block of a string of @len bytes. */
static inline size_t block_size(size_t len)
{
    return sizeof(struct rg__sym) + len + 1;
}

/* The slab class for a block of @size bytes, or NULL when it is malloc'd. */
static struct rg__slab_class *class_of(struct rg__intern *in, size_t size)
{
    if (size > RG__INTERN_SLAB_MAX)
        return NULL;
    /* Blocks are at least 9 bytes, so the smallest class is the 16-byte one. */
    return &in->slabs[(size + 7) / 8 - 2];
}

static void block_free(struct rg__intern *in, struct rg__sym *s)
{
    struct rg__slab_class *c = class_of(in, block_size(s->len));

    if (c)
        rg__slab_free_ptr(c, s);
    else
        free(s);
}

void rg__intern_cleanup(struct rg__intern *in)
{
    if (!in)
        return;
    /* Slab blocks go with their slabs; only the long strings are freed one by one. */
    for (uint32_t i = 0; i < in->used; i++)
        if (!(in->syms[i].free_next & 1) && !class_of(in, block_size(in->syms[i].sym->len)))
            free(in->syms[i].sym);
    for (size_t k = 0; k < sizeof(in->slabs) / sizeof(in->slabs[0]); k++)
        rg__slab_cleanup(&in->slabs[k]);
    free(in->syms);
    rg__htab_cleanup(&in->index);
    rg__intern_init(in);
}

int rg__intern_find(const struct rg__intern *in, const char *p, size_t len, uint32_t *id)
{
    struct key k = { in, p, len };
    uint32_t found;

    if (len > UINT32_MAX)
        return RG_ENOENT;
    found = rg__htab_find(&in->index, rg__hash_fold(rg__hash_bytes(p, len, 0)), key_eq, &k);
    if (found == RG__HTAB_EMPTY)
        return RG_ENOENT;
    *id = found;
    return 0;
}

static int take_id(struct rg__intern *in, uint32_t *id)
{
    if (in->free_head != UINT32_MAX) {
        *id = in->free_head;
        in->free_head = (uint32_t)(in->syms[*id].free_next >> 1);
        return 0;
    }
    if (in->used > RG__INTERN_MAX_ID)
        return RG_ENOMEM;
    if (in->used == in->cap) {
        size_t cap = in->cap ? (size_t)in->cap + in->cap / 2 : 64;
        union rg__intern_slot *syms;

        if (cap > (size_t)RG__INTERN_MAX_ID + 1)
            cap = (size_t)RG__INTERN_MAX_ID + 1;
        syms = realloc(in->syms, cap * sizeof(*syms));
        if (!syms)
            return RG_ENOMEM;
        in->syms = syms;
        in->cap = (uint32_t)cap;
    }
    *id = in->used++;
    return 0;
}

int rg__intern_get(struct rg__intern *in, const char *p, size_t len, uint32_t *id)
{
    struct key k = { in, p, len };
    struct rg__slab_class *c;
    struct rg__sym *s;
    uint32_t hash, found, h;
    void *block;
    int err;

    if (len >= UINT32_MAX)
        return RG_EINVAL;
    hash = rg__hash_fold(rg__hash_bytes(p, len, 0));
    found = rg__htab_find(&in->index, hash, key_eq, &k);
    if (found != RG__HTAB_EMPTY) {
        in->syms[found].sym->refs++;
        *id = found;
        return 0;
    }
    /* Make every later step infallible before taking the id. */
    err = rg__htab_reserve(&in->index, 1);
    if (err)
        return err;
    c = class_of(in, block_size(len));
    if (c) {
        err = rg__slab_alloc(c, &h, &block);
        if (err)
            return err;
        s = block;
    } else {
        s = malloc(block_size(len));
        if (!s)
            return RG_ENOMEM;
        in->big_bytes += block_size(len);
    }
    err = take_id(in, &found);
    if (err)
        goto fail_id;
    s->refs = 1;
    s->len = (uint32_t)len;
    if (len)
        memcpy(s->str, p, len);
    s->str[len] = '\0';
    in->syms[found].sym = s;
    in->live++;
    in->bytes += sizeof(*s) + len + 1;
    rg__htab_insert(&in->index, hash, found);
    *id = found;
    return 0;

fail_id:
    if (!c)
        in->big_bytes -= block_size(len);
    s->len = (uint32_t)len;
    block_free(in, s);
    return err;
}

void rg__intern_release(struct rg__intern *in, uint32_t id)
{
    struct rg__sym *s = in->syms[id].sym;

    if (--s->refs)
        return;
    /* The hash is recomputed rather than stored: releasing is rare next to
     * looking up, and 4 bytes per string add up over millions of strings. */
    rg__htab_remove(&in->index, rg__hash_fold(rg__hash_bytes(s->str, s->len, 0)), id);
    in->bytes -= block_size(s->len);
    if (!class_of(in, block_size(s->len)))
        in->big_bytes -= block_size(s->len);
    block_free(in, s);
    in->syms[id].free_next = ((uintptr_t)in->free_head << 1) | 1;
    in->free_head = id;
    in->live--;
}

int rg__intern_cmp(const struct rg__intern *in, uint32_t a, uint32_t b)
{
    const struct rg__sym *x, *y;
    size_t n;
    int c;

    if (a == b)
        return 0;
    x = in->syms[a].sym;
    y = in->syms[b].sym;
    n = x->len < y->len ? x->len : y->len;
    c = n ? memcmp(x->str, y->str, n) : 0;
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

size_t rg__intern_bytes(const struct rg__intern *in)
{
    size_t b = in->big_bytes + (size_t)in->cap * sizeof(*in->syms) + rg__htab_bytes(&in->index);

    for (size_t k = 0; k < sizeof(in->slabs) / sizeof(in->slabs[0]); k++)
        b += rg__slab_bytes(&in->slabs[k]) + rg__slab_table_bytes(&in->slabs[k]);
    return b;
}
