/* util/utf8.c - strict UTF-8 decoding rules (Go's utf8.DecodeRune).
 *
 * The lead byte gives the sequence length and the first payload bits; each
 * continuation byte adds six bits. Checking the decoded code point against the
 * smallest value of its length rejects overlong forms, and the explicit surrogate and
 * U+10FFFF bounds reject what UTF-8 may not encode (RFC 3629, section 3).
 */
#include "util/utf8.h"

size_t rg_utf8_seq_len(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned c = p[0];
    size_t len;
    unsigned cp;

    if (c < 0x80)
        return 1;
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
    return len;
}

int rg_utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t u = rg_utf8_seq_len(s + i, n - i);

        if (u == 0)
            return 0;
        i += u;
    }
    return 1;
}
