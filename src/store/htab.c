/* store/htab.c - linear-probing hash index with backward-shift deletion.
 *
 * See htab.h. The slot array grows by a quarter when an insertion would push the
 * load above 4/5; growth rehashes from the stored 32-bit hashes, never from the
 * records.
 */
#include "store/htab.h"

#include <stdlib.h>

#include "util/err.h"

void rg__htab_cleanup(struct rg__htab *t)
{
    if (!t)
        return;
    free(t->slots);
    t->slots = NULL;
    t->cap = 0;
    t->n = 0;
}

static inline uint32_t home(uint32_t hash, uint32_t cap)
{
    return (uint32_t)(((uint64_t)hash * cap) >> 32);
}

static inline uint32_t next(uint32_t i, uint32_t cap)
{
    return i + 1 == cap ? 0 : i + 1;
}

static void place(struct rg__htab_slot *slots, uint32_t cap, uint32_t hash, uint32_t id)
{
    uint32_t i = home(hash, cap);

    while (slots[i].id != RG__HTAB_EMPTY)
        i = next(i, cap);
    slots[i].id = id;
    slots[i].hash = hash;
}

int rg__htab_reserve(struct rg__htab *t, size_t extra)
{
    size_t need = (size_t)t->n + extra;
    size_t cap = t->cap ? t->cap : 16;
    struct rg__htab_slot *slots;

    if (need * 5 <= (size_t)t->cap * 4)
        return 0;
    while (need * 5 > cap * 4) {
        if (cap >= (size_t)1 << 31)
            return RG_ENOMEM;
        cap += cap / 4;
    }
    slots = malloc(cap * sizeof(*slots));
    if (!slots)
        return RG_ENOMEM;
    for (size_t i = 0; i < cap; i++)
        slots[i].id = RG__HTAB_EMPTY;
    for (uint32_t i = 0; i < t->cap; i++)
        if (t->slots[i].id != RG__HTAB_EMPTY)
            place(slots, (uint32_t)cap, t->slots[i].hash, t->slots[i].id);
    free(t->slots);
    t->slots = slots;
    t->cap = (uint32_t)cap;
    return 0;
}

uint32_t rg__htab_find(const struct rg__htab *t, uint32_t hash,
                       int (*eq)(const void *ctx, uint32_t id), const void *ctx)
{
    uint32_t i;

    if (!t->n)
        return RG__HTAB_EMPTY;
    /* The load never reaches 1, so an empty slot always ends the probe. */
    for (i = home(hash, t->cap);; i = next(i, t->cap)) {
        const struct rg__htab_slot *s = &t->slots[i];

        if (s->id == RG__HTAB_EMPTY)
            return RG__HTAB_EMPTY;
        if (s->hash == hash && eq(ctx, s->id))
            return s->id;
    }
}

void rg__htab_insert(struct rg__htab *t, uint32_t hash, uint32_t id)
{
    place(t->slots, t->cap, hash, id);
    t->n++;
}

void rg__htab_remove(struct rg__htab *t, uint32_t hash, uint32_t id)
{
    uint32_t cap = t->cap, i, j;

    if (!t->n)
        return;
    for (i = home(hash, cap);; i = next(i, cap)) {
        if (t->slots[i].id == RG__HTAB_EMPTY)
            return;
        if (t->slots[i].id == id)
            break;
    }
    /* Backward shift: walk the cluster after the hole and pull back every entry
     * whose home slot does not lie cyclically between the hole and itself, so
     * that no probe sequence crosses an empty slot it should not. */
    for (j = i;;) {
        uint32_t h;

        j = next(j, cap);
        if (t->slots[j].id == RG__HTAB_EMPTY)
            break;
        h = home(t->slots[j].hash, cap);
        /* Cyclic distances: from the entry's home to it, and from the hole to it. */
        if ((j >= h ? j - h : j + cap - h) >= (j >= i ? j - i : j + cap - i)) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i].id = RG__HTAB_EMPTY;
    t->n--;
}

size_t rg__htab_bytes(const struct rg__htab *t)
{
    return (size_t)t->cap * sizeof(struct rg__htab_slot);
}
