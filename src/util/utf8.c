/* util/utf8.c - strict UTF-8 decoding rules (Go's utf8.DecodeRune).
 *
 * The lead byte gives the sequence length and the first payload bits; each
 * continuation byte adds six bits. Checking the decoded code point against the
 * smallest value of its length rejects overlong forms, and the explicit surrogate and
 * U+10FFFF bounds reject what UTF-8 may not encode (RFC 3629, section 3). A whole
 * string is first skipped eight bytes at a time while no byte has its high bit set.
 */
#include "util/utf8.h"

#include <string.h>

size_t rg_utf8_decode(const char *s, size_t n, uint32_t *out)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned c = p[0];
    size_t len;
    uint32_t cp;

    if (c < 0x80) {
        *out = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    *out = cp;
    return len;
}

size_t rg_utf8_seq_len(const char *s, size_t n)
{
    uint32_t cp;

    return rg_utf8_decode(s, n, &cp);
}

int rg_utf8_valid(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint64_t w;
        size_t u;

        if (n - i >= 8) {
            memcpy(&w, s + i, 8);
            if (!(w & UINT64_C(0x8080808080808080))) {
                i += 8;
                continue;
            }
        }
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        if ((u = rg_utf8_seq_len(s + i, n - i)) == 0)
            return 0;
        i += u;
    }
    return 1;
}
