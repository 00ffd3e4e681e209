/* notify/sign.c - HMAC-SHA256 webhook signatures (RFC 2104) through OpenSSL EVP_MAC.
 *
 * The MAC input "<t>.<body>" is fed to the MAC in three updates, so the body is never
 * copied. Verification parses the comma-separated key=value items of the header,
 * checks the timestamp window first (cheap, and it is what stops replays), then
 * compares every v1 value with the expected MAC in constant time.
 */
#include "notify/sign.h"
#include "util/err.h"
#include "util/hex.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

int rg_sign_hmac_sha256(const void *key, size_t key_len, const struct rg_slice *parts, size_t n,
                        unsigned char mac[RG_SIGN_MAC_SIZE])
{
    char digest[] = "SHA256";
    OSSL_PARAM params[2];
    EVP_MAC *alg;
    EVP_MAC_CTX *ctx;
    size_t maclen = 0;
    int ok;

    /* OpenSSL treats a NULL or empty key as "keep the previous key", which a fresh
     * context does not have; an empty secret is a configuration error anyway. */
    if (!key || key_len == 0)
        return RG_EINVAL;
    alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!alg)
        return RG_ENOMEM;
    ctx = EVP_MAC_CTX_new(alg);
    if (!ctx) {
        EVP_MAC_free(alg);
        return RG_ENOMEM;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    ok = EVP_MAC_init(ctx, key, key_len, params);
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_MAC_update(ctx, (const unsigned char *)parts[i].ptr, parts[i].len);
    ok = ok && EVP_MAC_final(ctx, mac, &maclen, RG_SIGN_MAC_SIZE) && maclen == RG_SIGN_MAC_SIZE;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(alg);
    return ok ? 0 : RG_ENOMEM;
}

/* MAC of "<ts>.<body>"; @ts is the decimal text exactly as it appears in the header. */
static int mac_for(const void *secret, size_t secret_len, const char *ts, size_t ts_len,
                   const void *body, size_t len, unsigned char mac[RG_SIGN_MAC_SIZE])
{
    struct rg_slice parts[3] = {
        { ts, ts_len },
        { ".", 1 },
        { body ? (const char *)body : "", body ? len : 0 },
    };

    return rg_sign_hmac_sha256(secret, secret_len, parts, 3, mac);
}

int rg_sign_webhook(const void *secret, size_t secret_len, int64_t unix_ts, const void *body,
                    size_t len, char out[RG_SIGN_HEADER_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[RG_SIGN_MAC_SIZE];
    char ts[24];
    int tlen, err, pos;

    tlen = snprintf(ts, sizeof(ts), "%" PRId64, unix_ts);
    if ((err = mac_for(secret, secret_len, ts, (size_t)tlen, body, len, mac)))
        return err;
    pos = snprintf(out, RG_SIGN_HEADER_SIZE, "t=%s,v1=", ts);
    for (int i = 0; i < RG_SIGN_MAC_SIZE; i++) {
        out[pos++] = hex[mac[i] >> 4];
        out[pos++] = hex[mac[i] & 15];
    }
    out[pos] = '\0';
    return 0;
}

int rg_sign_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

/* Decodes 64 hex digits at @s into @mac; returns 0 or -1. */
static int unhex_mac(const char *s, size_t len, unsigned char mac[RG_SIGN_MAC_SIZE])
{
    if (len != 2 * RG_SIGN_MAC_SIZE)
        return -1;
    for (size_t i = 0; i < RG_SIGN_MAC_SIZE; i++) {
        int hi = rg_hex_digit(s[2 * i]), lo = rg_hex_digit(s[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return -1;
        mac[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* Parses a decimal timestamp of 1 to 18 digits with an optional minus sign, so the
 * value cannot overflow. Returns 0 or -1. */
static int parse_ts(const char *s, size_t len, int64_t *out)
{
    int neg = len > 0 && s[0] == '-';
    int64_t v = 0;

    if (len - (size_t)neg == 0 || len - (size_t)neg > 18)
        return -1;
    for (size_t i = (size_t)neg; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

#define MAX_V1 8   /* signatures considered per header; more is not a rotation */

int rg_sign_verify(const void *secret, size_t secret_len, const char *header, const void *body,
                   size_t len, int64_t now_unix, int64_t tolerance_s)
{
    unsigned char want[RG_SIGN_MAC_SIZE], got[MAX_V1][RG_SIGN_MAC_SIZE];
    const char *ts = NULL;
    size_t ts_len = 0, nv1 = 0;
    int64_t t;
    int match = 0, err;

    if (!secret || secret_len == 0)
        return RG_EINVAL;
    if (!header)
        return RG_EBADMSG;
    for (const char *p = header; *p;) {
        const char *end = strchr(p, ','), *eq;
        size_t item = end ? (size_t)(end - p) : strlen(p);

        while (item && *p == ' ')
            p++, item--;
        eq = memchr(p, '=', item);
        if (!eq)
            return RG_EBADMSG;
        if (eq - p == 1 && p[0] == 't') {
            if (ts)
                return RG_EBADMSG;
            ts = eq + 1;
            ts_len = item - 2;
        } else if (eq - p == 2 && p[0] == 'v' && p[1] == '1') {
            if (nv1 == MAX_V1)
                return RG_EBADMSG;
            if (unhex_mac(eq + 1, item - 3, got[nv1]) != 0)
                return RG_EBADMSG;
            nv1++;
        }
        /* Other keys belong to other schemes and are skipped. */
        p += item;
        if (*p == ',')
            p++;
    }
    if (!ts || nv1 == 0 || parse_ts(ts, ts_len, &t) != 0)
        return RG_EBADMSG;
    if (tolerance_s >= 0) {
        /* The difference of two int64 values in the right order always fits in a
         * uint64, so the subtraction is done there and cannot overflow. */
        if (now_unix > t && (uint64_t)now_unix - (uint64_t)t > (uint64_t)tolerance_s)
            return RG_ETOOOLD;
        if (t > now_unix && (uint64_t)t - (uint64_t)now_unix > (uint64_t)tolerance_s)
            return RG_EFUTURE;
    }
    if ((err = mac_for(secret, secret_len, ts, ts_len, body, len, want)))
        return err;
    /* Compare against every value, without stopping early, so the time taken does
     * not tell which one matched. */
    for (size_t i = 0; i < nv1; i++)
        match |= rg_sign_equal(want, got[i], RG_SIGN_MAC_SIZE);
    return match ? 0 : RG_EINVAL;
}
