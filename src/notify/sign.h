/* notify/sign.h - signatures of webhook requests, and their verification.
 *
 * A signed webhook request carries
 *
 *     X-Rollgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 *
 * Binding the time into the MAC lets a receiver refuse replays outside a tolerance
 * window; the "v1" tag leaves room for other schemes, and a receiver accepts a header
 * with several v1 values (one per secret while a secret is rotated) when any of them
 * matches. HMAC is RFC 2104 with SHA-256, computed by OpenSSL's EVP_MAC interface;
 * comparisons run in constant time (CRYPTO_memcmp) so that a verifier does not leak
 * how many leading bytes of a forged signature were right.
 *
 * Pure: no I/O and no clock (the caller passes the times). Secrets are borrowed for
 * the call and never copied or logged. Any thread.
 */
#ifndef RG_NOTIFY_SIGN_H
#define RG_NOTIFY_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define RG_SIGN_HEADER_NAME "X-Rollgate-Signature"
/** Size of a header value buffer: "t=" + up to 20 digits + ",v1=" + 64 hex + NUL. */
#define RG_SIGN_HEADER_SIZE 96
/** Size of an HMAC-SHA256 digest in bytes. */
#define RG_SIGN_MAC_SIZE 32

/** HMAC-SHA256 with @key (@key_len bytes, at least 1) over the concatenation of the
 *  @n byte ranges @parts, into @mac. Returns 0, RG_EINVAL (empty key) or RG_ENOMEM. */
int rg_sign_hmac_sha256(const void *key, size_t key_len, const struct rg_slice *parts, size_t n,
                        unsigned char mac[RG_SIGN_MAC_SIZE]);

/** Writes the X-Rollgate-Signature value for @body (@len bytes) sent at @unix_ts
 *  seconds, NUL-terminated, into @out: "t=<unix_ts>,v1=<64 hex digits>". Returns 0,
 *  RG_EINVAL (empty secret) or RG_ENOMEM. */
int rg_sign_webhook(const void *secret, size_t secret_len, int64_t unix_ts, const void *body,
                    size_t len, char out[RG_SIGN_HEADER_SIZE]);

/** Checks the header value @header (NUL-terminated) against @body with @secret, at
 *  @now_unix seconds, accepting timestamps at most @tolerance_s away (negative: any
 *  time). Returns 0 when a v1 signature matches; RG_EBADMSG when the header is
 *  malformed (no or several t=, a v1 that is not 64 hex digits, no v1); RG_ETOOOLD
 *  or RG_EFUTURE when t is outside the tolerance; RG_EINVAL when no v1 matches or
 *  the secret is empty; RG_ENOMEM. */
int rg_sign_verify(const void *secret, size_t secret_len, const char *header, const void *body,
                   size_t len, int64_t now_unix, int64_t tolerance_s);

/** Constant-time equality of @a and @b (@n bytes each): 1 when equal, else 0. */
int rg_sign_equal(const void *a, const void *b, size_t n);

#endif
