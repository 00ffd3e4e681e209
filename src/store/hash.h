/* store/hash.h - 64-bit byte hashing and 32-bit integer mixing for the store's tables.
 *
 * The series index hashes every label set of every remote-write request, so the
 * hash must be cheap on short strings and still spread well. The construction is
 * the multiply-fold ("mum") one of the wyhash family: 16 input bytes are folded
 * into the state with one 64x64->128-bit multiplication whose halves are xor-ed
 * together. A label set is hashed by chaining rg__hash_step() over its names and
 * values (one multiplication per string of up to 16 bytes) and finishing once, so
 * no bytes are copied and a typical 10-label set costs about 21 multiplications.
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

/** Loads 8 bytes at @p, any alignment, in host order. */
static inline uint64_t rg__hash_read64(const unsigned char *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

/** Loads 4 bytes at @p, any alignment, in host order, widened to 64 bits. */
static inline uint64_t rg__hash_read32(const unsigned char *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

/** Folds @len bytes at @data into the running state @h and returns the new state.
 *  Strings of up to 16 bytes cost one multiplication: their bytes are gathered
 *  into two words with overlapping loads (no copy, no byte loop), and the length
 *  is mixed in so that strings sharing those words still differ. Chaining steps
 *  hashes a sequence of strings; finish with rg__hash_final(). */
static inline uint64_t rg__hash_step(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t a, b;

    if (len <= 16) {
        if (len >= 4) {
            size_t q = (len >> 3) << 2;

            a = (rg__hash_read32(p) << 32) | rg__hash_read32(p + q);
            b = (rg__hash_read32(p + len - 4) << 32) | rg__hash_read32(p + len - 4 - q);
        } else if (len > 0) {
            a = ((uint64_t)p[0] << 16) | ((uint64_t)p[len >> 1] << 8) | p[len - 1];
            b = 0;
        } else {
            a = 0;
            b = 0;
        }
    } else {
        size_t i = len;

        while (i > 16) {
            h = rg__hash_mum(rg__hash_read64(p) ^ RG__HASH_P1, rg__hash_read64(p + 8) ^ h);
            p += 16;
            i -= 16;
        }
        /* The last 16 bytes, overlapping bytes already folded in when shorter. */
        a = rg__hash_read64(p + i - 16);
        b = rg__hash_read64(p + i - 8);
    }
    return rg__hash_mum(a ^ RG__HASH_P1 ^ ((uint64_t)len * RG__HASH_P2), b ^ h);
}

/** Final avalanche of a chained state. */
static inline uint64_t rg__hash_final(uint64_t h)
{
    return rg__hash_mum(h ^ RG__HASH_P2, RG__HASH_P0);
}

/** Hashes @len bytes at @data, continuing from @seed (0 for a fresh hash). */
static inline uint64_t rg__hash_bytes(const void *data, size_t len, uint64_t seed)
{
    return rg__hash_final(rg__hash_step(seed ^ RG__HASH_P0, data, len));
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
