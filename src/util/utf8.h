/* util/utf8.h - strict UTF-8 decoding rules shared by every module that checks text.
 *
 * Prometheus checks label values with Go's utf8.ValidString, and Go's JSON encoders
 * replace what utf8.DecodeRune rejects; the two must agree byte for byte with ours. A
 * sequence is valid when its lead byte announces its length (0xc2..0xf4 for multi-byte
 * forms), every continuation byte is 10xxxxxx, and the decoded code point is neither an
 * overlong form, nor a UTF-16 surrogate (U+D800..U+DFFF), nor beyond U+10FFFF. Whole
 * strings are checked eight ASCII bytes at a time, since label names and values (the
 * remote-write hot path) are nearly always ASCII. Pure functions; any thread.
 */
#ifndef RG_UTIL_UTF8_H
#define RG_UTIL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/** Length (1 to 4) of the valid UTF-8 sequence at the start of @s, which has @n > 0
 *  bytes, with its code point in *@cp; 0 (and *@cp untouched) when the bytes there are
 *  not a valid sequence. */
size_t rg_utf8_decode(const char *s, size_t n, uint32_t *cp);

/** Length (1 to 4) of the valid UTF-8 sequence at the start of @s, which has @n > 0
 *  bytes, or 0 when the bytes there are not a valid sequence. */
size_t rg_utf8_seq_len(const char *s, size_t n);

/** True when all @n bytes of @s are valid UTF-8 (an empty string is valid). */
int rg_utf8_valid(const char *s, size_t n);

#endif
