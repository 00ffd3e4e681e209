/* store/hash.h - 64-bit byte hashing and 32-bit integer mixing for the store's tables.
 *
 * The series index hashes every label set of every remote-write request, so the
 * hash must be cheap on short strings and still spread well. rg__hash_bytes()
 * follows the multiply-fold ("mum") construction of the wyhash family: 16 input
 * bytes are folded into the state with one 64x64->128-bit multiplication whose
 * halves are xor-ed together, and the length is mixed in up front so that zero
 * padding of the tail cannot make two different strings collide. Chaining calls
 * through @seed hashes a sequence of strings (a label set) without copying them.
 * rg__hash_u32() is the murmur3 32-bit finaliser, used for tables keyed by ids.
 * Header-only and internal to src/store.
 */
#ifndef RG_STORE_HASH_H
#define RG_STORE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RG__HASH_P0 UINT64_C(0xa0761d6478bd642f)
#define RG__HASH_P1 UINT64_C(0xe7037ed1a0b428db)
#define RG__HASH_P2 UINT64_C(0x8ebc6af09c88c6e3)

/** Multiplies @a by @b to 128 bits and folds the halves together. */
static inline uint64_t rg__hash_mum(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;

    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t rg__hash_read64(const unsigned char *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

/** Hashes @len bytes at @data, continuing from @seed (0 for a fresh hash). */
static inline uint64_t rg__hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    unsigned char tail[16] = { 0 };
    uint64_t h = seed ^ RG__HASH_P0 ^ ((uint64_t)len * RG__HASH_P1);

    while (len >= 16) {
        h = rg__hash_mum(rg__hash_read64(p) ^ RG__HASH_P1, rg__hash_read64(p + 8) ^ h);
        p += 16;
        len -= 16;
    }
    if (len)
        memcpy(tail, p, len);
    h = rg__hash_mum(rg__hash_read64(tail) ^ RG__HASH_P1, rg__hash_read64(tail + 8) ^ h);
    return rg__hash_mum(h ^ RG__HASH_P2, RG__HASH_P0);
}

/** Folds a 64-bit hash to the 32 bits the tables store. */
static inline uint32_t rg__hash_fold(uint64_t h)
{
    return (uint32_t)(h ^ (h >> 32));
}

/** Mixes a 32-bit key (a symbol id) into a well-spread 32-bit hash. */
static inline uint32_t rg__hash_u32(uint32_t k)
{
    k ^= k >> 16;
    k *= UINT32_C(0x85ebca6b);
    k ^= k >> 13;
    k *= UINT32_C(0xc2b2ae35);
    k ^= k >> 16;
    return k;
}

#endif
