/* util/json.c - JSON string escaping with UTF-8 validation. */
#include "util/json.h"
#include "util/err.h"

#include <string.h>

/* Length of the valid UTF-8 sequence at @s (at most @n bytes), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
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
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

int rg_json_string(struct rg_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t run = 0;   /* bytes at p[i - run .. i) that need no escaping */
    int err;

    if ((err = rg_buf_reserve(out, len + 2)) || (err = rg_buf_putc(out, '"')))
        return err;
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        char esc[8];
        size_t elen = 0;
        size_t u;

        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            run++;
            i++;
            continue;
        }
        if (c >= 0x80 && (u = utf8_len(p + i, len - i)) != 0) {
            run += u;
            i += u;
            continue;
        }
        if (run && (err = rg_buf_append(out, p + i - run, run)))
            return err;
        run = 0;
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, elen = 2;
        } else if (c == '\n') {
            memcpy(esc, "\\n", 2), elen = 2;
        } else if (c == '\r') {
            memcpy(esc, "\\r", 2), elen = 2;
        } else if (c == '\t') {
            memcpy(esc, "\\t", 2), elen = 2;
        } else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4], esc[5] = hex[c & 15], elen = 6;
        } else {
            memcpy(esc, "\xef\xbf\xbd", 3), elen = 3;   /* invalid byte: U+FFFD */
        }
        if ((err = rg_buf_append(out, esc, elen)))
            return err;
        i++;
    }
    if (run && (err = rg_buf_append(out, p + len - run, run)))
        return err;
    return rg_buf_putc(out, '"');
}

int rg_json_cstr(struct rg_buf *out, const char *s)
{
    return rg_json_string(out, s, strlen(s));
}
