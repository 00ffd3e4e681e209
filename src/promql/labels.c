/* promql/labels.c - label-set operations, XXH64 hashing, bump arena and hash table.
 *
 * The evaluator builds many short-lived label arrays per step; allocating them from
 * a bump arena (64 KiB blocks) keeps that to a pointer increment. Hashing follows
 * Prometheus' labels.Hash(): XXH64 (Yann Collet's algorithm, seed 0) over
 * name, 0xff, value, 0xff for every label in order (and, for limit_ratio, over
 * the length-prefixed layout of Prometheus 3's default build). The hash table is linear
 * probing over a power-of-two array, grown at 50 % load. A label set is also written
 * here as a JSON object, which the API answers and the alert state file share.
 */
#include "promql/labels.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/json.h"

/* ---- Arena ------------------------------------------------------------- */

struct rg__arena_blk {
    struct rg__arena_blk *next;
    size_t used;
    size_t cap;
    _Alignas(16) unsigned char data[];
};

#define ARENA_BLOCK (64 * 1024)

void *rg__arena_alloc(struct rg__arena *a, size_t n)
{
    struct rg__arena_blk *b = a->head;
    void *p;

    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;

        if (n > (size_t)-1 / 2)
            return NULL;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        /* A large one-off block goes behind the current one so that the current
         * block's free space is still used by later small allocations. */
        if (a->head && cap > ARENA_BLOCK) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    p = b->data + b->used;
    b->used += n;
    return p;
}

char *rg__arena_strndup(struct rg__arena *a, const char *s, size_t len)
{
    char *p = rg__arena_alloc(a, len + 1);

    if (!p)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void rg__arena_free(struct rg__arena *a)
{
    struct rg__arena_blk *b, *next;

    if (!a)
        return;
    for (b = a->head; b; b = next) {
        next = b->next;
        free(b);
    }
    a->head = NULL;
}

/* ---- XXH64 ------------------------------------------------------------- */

#define P1 UINT64_C(0x9E3779B185EBCA87)
#define P2 UINT64_C(0xC2B2AE3D27D4EB4F)
#define P3 UINT64_C(0x165667B19E3779F9)
#define P4 UINT64_C(0x85EBCA77C2B2AE63)
#define P5 UINT64_C(0x27D4EB2F165667C5)

static uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static uint64_t rd64(const unsigned char *p)
{
    uint64_t v = 0;
    int i;

    /* Little-endian read regardless of the host, as XXH64 specifies. */
    for (i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t round64(uint64_t acc, uint64_t in)
{
    acc += in * P2;
    acc = rotl(acc, 31);
    return acc * P1;
}

static uint64_t merge64(uint64_t acc, uint64_t v)
{
    acc ^= round64(0, v);
    return acc * P1 + P4;
}

uint64_t rg__xxh64(const void *data, size_t len)
{
    const unsigned char *p = data, *end = p + len;
    uint64_t h;

    if (len >= 32) {
        uint64_t v1 = P1 + P2, v2 = P2, v3 = 0, v4 = (uint64_t)0 - P1;
        const unsigned char *limit = end - 32;

        do {
            v1 = round64(v1, rd64(p));
            v2 = round64(v2, rd64(p + 8));
            v3 = round64(v3, rd64(p + 16));
            v4 = round64(v4, rd64(p + 24));
            p += 32;
        } while (p <= limit);
        h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
        h = merge64(h, v1);
        h = merge64(h, v2);
        h = merge64(h, v3);
        h = merge64(h, v4);
    } else {
        h = P5;
    }
    h += (uint64_t)len;
    while (p + 8 <= end) {
        h ^= round64(0, rd64(p));
        h = rotl(h, 27) * P1 + P4;
        p += 8;
    }
    if (p + 4 <= end) {
        h ^= (uint64_t)rd32(p) * P1;
        h = rotl(h, 23) * P2 + P3;
        p += 4;
    }
    while (p < end) {
        h ^= (uint64_t)*p * P5;
        h = rotl(h, 11) * P1;
        p++;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

/* ---- Label sets -------------------------------------------------------- */

static int in_names(const char *name, char *const *names, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

static int hash_add(struct rg_buf *b, const struct rg_label *l)
{
    size_t nl = strlen(l->name), vl = strlen(l->value);
    int err = rg_buf_reserve(b, nl + vl + 2);

    if (err)
        return err;
    memcpy(b->data + b->len, l->name, nl);
    b->len += nl;
    b->data[b->len++] = (char)0xff;
    memcpy(b->data + b->len, l->value, vl);
    b->len += vl;
    b->data[b->len++] = (char)0xff;
    return 0;
}

/* Allocation failure while hashing is practically impossible (the scratch buffer
 * holds one label set); hashing what was gathered keeps the function total. */
uint64_t rg__lset_hash(struct rg__lset ls, struct rg_buf *scratch)
{
    size_t i;

    rg_buf_reset(scratch);
    for (i = 0; i < ls.n; i++)
        if (hash_add(scratch, &ls.l[i]))
            break;
    return rg__xxh64(scratch->data ? scratch->data : "", scratch->len);
}

static int packed_add(struct rg_buf *b, const char *str)
{
    size_t len = strlen(str);
    unsigned char hdr[4];
    size_t nh = 1;

    if (len < 255) {
        hdr[0] = (unsigned char)len;
    } else {
        hdr[0] = 255;
        hdr[1] = (unsigned char)len;
        hdr[2] = (unsigned char)(len >> 8);
        hdr[3] = (unsigned char)(len >> 16);
        nh = 4;
    }
    if (rg_buf_append(b, hdr, nh))
        return RG_ENOMEM;
    return rg_buf_append(b, str, len);
}

uint64_t rg__lset_hash_packed(struct rg__lset ls, struct rg_buf *scratch)
{
    size_t i;

    rg_buf_reset(scratch);
    for (i = 0; i < ls.n; i++)
        if (packed_add(scratch, ls.l[i].name) || packed_add(scratch, ls.l[i].value))
            break;
    return rg__xxh64(scratch->data ? scratch->data : "", scratch->len);
}

uint64_t rg__lset_hash_on(struct rg__lset ls, char *const *names, size_t nnames,
                          struct rg_buf *scratch)
{
    size_t i;

    rg_buf_reset(scratch);
    for (i = 0; i < ls.n; i++)
        if (in_names(ls.l[i].name, names, nnames) && hash_add(scratch, &ls.l[i]))
            break;
    return rg__xxh64(scratch->data ? scratch->data : "", scratch->len);
}

uint64_t rg__lset_hash_without(struct rg__lset ls, char *const *names, size_t nnames,
                               struct rg_buf *scratch)
{
    size_t i;

    rg_buf_reset(scratch);
    for (i = 0; i < ls.n; i++) {
        if (strcmp(ls.l[i].name, "__name__") == 0 || in_names(ls.l[i].name, names, nnames))
            continue;
        if (hash_add(scratch, &ls.l[i]))
            break;
    }
    return rg__xxh64(scratch->data ? scratch->data : "", scratch->len);
}

uint64_t rg__lset_hash_except(struct rg__lset ls, char *const *names, size_t nnames,
                              struct rg_buf *scratch)
{
    size_t i;

    rg_buf_reset(scratch);
    for (i = 0; i < ls.n; i++) {
        if (in_names(ls.l[i].name, names, nnames))
            continue;
        if (hash_add(scratch, &ls.l[i]))
            break;
    }
    return rg__xxh64(scratch->data ? scratch->data : "", scratch->len);
}

const char *rg__lset_get(struct rg__lset ls, const char *name)
{
    size_t i;

    for (i = 0; i < ls.n; i++)
        if (strcmp(ls.l[i].name, name) == 0)
            return ls.l[i].value;
    return NULL;
}

int rg__lset_cmp(struct rg__lset a, struct rg__lset b)
{
    size_t i, n = a.n < b.n ? a.n : b.n;
    int d;

    for (i = 0; i < n; i++) {
        d = strcmp(a.l[i].name, b.l[i].name);
        if (d)
            return d;
        d = strcmp(a.l[i].value, b.l[i].value);
        if (d)
            return d;
    }
    return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
}

int rg__lset_has_name(struct rg__lset ls)
{
    return rg__lset_get(ls, "__name__") != NULL;
}

int rg__lset_drop_name(struct rg__arena *a, struct rg__lset ls, struct rg__lset *out)
{
    size_t i, k;
    struct rg_label *l;

    for (i = 0; i < ls.n; i++)
        if (strcmp(ls.l[i].name, "__name__") == 0)
            break;
    if (i == ls.n) {
        *out = ls;
        return 0;
    }
    if (i == 0) {
        /* The usual case: no label name sorts before "__name__", so the rest of
         * the array is the answer and nothing is copied. */
        out->l = ls.l + 1;
        out->n = ls.n - 1;
        return 0;
    }
    l = rg__arena_alloc(a, (ls.n - 1) * sizeof(*l));
    if (!l)
        return RG_ENOMEM;
    for (k = 0; k < ls.n; k++)
        if (k != i)
            l[k < i ? k : k - 1] = ls.l[k];
    out->l = l;
    out->n = ls.n - 1;
    return 0;
}

int rg__lset_keep(struct rg__arena *a, struct rg__lset ls, char *const *names, size_t nnames,
                  struct rg__lset *out)
{
    struct rg_label *l;
    size_t i, n = 0;

    l = rg__arena_alloc(a, (ls.n ? ls.n : 1) * sizeof(*l));
    if (!l)
        return RG_ENOMEM;
    for (i = 0; i < ls.n; i++)
        if (in_names(ls.l[i].name, names, nnames))
            l[n++] = ls.l[i];
    out->l = l;
    out->n = n;
    return 0;
}

int rg__lset_without(struct rg__arena *a, struct rg__lset ls, char *const *names,
                     size_t nnames, int drop_name, struct rg__lset *out)
{
    struct rg_label *l;
    size_t i, n = 0;

    l = rg__arena_alloc(a, (ls.n ? ls.n : 1) * sizeof(*l));
    if (!l)
        return RG_ENOMEM;
    for (i = 0; i < ls.n; i++) {
        if (drop_name && strcmp(ls.l[i].name, "__name__") == 0)
            continue;
        if (in_names(ls.l[i].name, names, nnames))
            continue;
        l[n++] = ls.l[i];
    }
    out->l = l;
    out->n = n;
    return 0;
}

int rg__lset_set(struct rg__arena *a, struct rg__lset ls, const char *name, const char *value,
                 size_t vlen, struct rg__lset *out)
{
    struct rg_label *l;
    const char *v = NULL, *nm;
    size_t i, n = 0;
    int placed = 0;

    l = rg__arena_alloc(a, (ls.n + 1) * sizeof(*l));
    if (!l)
        return RG_ENOMEM;
    if (vlen) {
        v = rg__arena_strndup(a, value, vlen);
        nm = rg__arena_strndup(a, name, strlen(name));
        if (!v || !nm)
            return RG_ENOMEM;
    } else {
        nm = name;
    }
    for (i = 0; i < ls.n; i++) {
        int d = strcmp(ls.l[i].name, nm);

        if (d == 0)
            continue;
        if (d > 0 && !placed) {
            if (v) {
                l[n].name = nm;
                l[n++].value = v;
            }
            placed = 1;
        }
        l[n++] = ls.l[i];
    }
    if (!placed && v) {
        l[n].name = nm;
        l[n++].value = v;
    }
    out->l = l;
    out->n = n;
    return 0;
}

static int quote(struct rg_buf *out, const char *s)
{
    int err = rg_buf_putc(out, '"');

    for (; !err && *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            err = rg_buf_printf(out, "\\%c", c);
        else if (c == '\n')
            err = rg_buf_puts(out, "\\n");
        else if (c == '\t')
            err = rg_buf_puts(out, "\\t");
        else if (c == '\r')
            err = rg_buf_puts(out, "\\r");
        else if (c < 0x20 || c == 0x7f)
            err = rg_buf_printf(out, "\\x%02x", c);
        else
            err = rg_buf_putc(out, (char)c);
    }
    return err ? err : rg_buf_putc(out, '"');
}

static int legacy_name(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

int rg__lset_format(struct rg__lset ls, struct rg_buf *out)
{
    size_t i;
    int err = rg_buf_putc(out, '{');

    for (i = 0; !err && i < ls.n; i++) {
        if (i)
            err = rg_buf_puts(out, ", ");
        if (!err)
            err = legacy_name(ls.l[i].name) ? rg_buf_puts(out, ls.l[i].name)
                                            : quote(out, ls.l[i].name);
        if (!err)
            err = rg_buf_putc(out, '=');
        if (!err)
            err = quote(out, ls.l[i].value);
    }
    return err ? err : rg_buf_putc(out, '}');
}

int rg_promql_labels_json(const struct rg_label *l, size_t n, struct rg_buf *out)
{
    int err = rg_buf_putc(out, '{');

    for (size_t i = 0; !err && i < n; i++) {
        if (i)
            err = rg_buf_putc(out, ',');
        if (!err)
            err = rg_json_cstr(out, l[i].name);
        if (!err)
            err = rg_buf_putc(out, ':');
        if (!err)
            err = rg_json_cstr(out, l[i].value);
    }
    return err ? err : rg_buf_putc(out, '}');
}

/* ---- Hash table -------------------------------------------------------- */

static int hmap_alloc(struct rg__hmap *m, size_t cap)
{
    uint64_t *k = malloc(cap * sizeof(*k));
    uint32_t *v = malloc(cap * sizeof(*v));

    if (!k || !v) {
        free(k);
        free(v);
        return RG_ENOMEM;
    }
    memset(v, 0xff, cap * sizeof(*v));
    free(m->keys);
    free(m->vals);
    m->keys = k;
    m->vals = v;
    m->cap = cap;
    m->n = 0;
    return 0;
}

int rg__hmap_reset(struct rg__hmap *m, size_t expect)
{
    size_t cap = 16;

    while (cap < expect * 2 + 2)
        cap *= 2;
    if (m->cap >= cap && m->cap <= cap * 8) {
        memset(m->vals, 0xff, m->cap * sizeof(*m->vals));
        m->n = 0;
        return 0;
    }
    return hmap_alloc(m, cap);
}

uint32_t rg__hmap_get(const struct rg__hmap *m, uint64_t key)
{
    size_t mask = m->cap - 1, i;

    if (!m->cap)
        return UINT32_MAX;
    for (i = (size_t)(key ^ (key >> 29)) & mask; m->vals[i] != UINT32_MAX; i = (i + 1) & mask)
        if (m->keys[i] == key)
            return m->vals[i];
    return UINT32_MAX;
}

static void hmap_insert_raw(struct rg__hmap *m, uint64_t key, uint32_t val)
{
    size_t mask = m->cap - 1, i = (size_t)(key ^ (key >> 29)) & mask;

    while (m->vals[i] != UINT32_MAX)
        i = (i + 1) & mask;
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
}

int rg__hmap_put(struct rg__hmap *m, uint64_t key, uint32_t val, uint32_t *val_out,
                 int *found)
{
    uint32_t cur = rg__hmap_get(m, key);

    if (cur != UINT32_MAX) {
        *found = 1;
        *val_out = cur;
        return 0;
    }
    *found = 0;
    *val_out = val;
    if ((m->n + 1) * 2 > m->cap) {
        struct rg__hmap nm = { 0 };
        size_t i;
        int err = hmap_alloc(&nm, m->cap ? m->cap * 2 : 16);

        if (err)
            return err;
        for (i = 0; i < m->cap; i++)
            if (m->vals[i] != UINT32_MAX)
                hmap_insert_raw(&nm, m->keys[i], m->vals[i]);
        free(m->keys);
        free(m->vals);
        *m = nm;
    }
    hmap_insert_raw(m, key, val);
    return 0;
}

void rg__hmap_free(struct rg__hmap *m)
{
    if (!m)
        return;
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}
