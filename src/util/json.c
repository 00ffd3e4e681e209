/* util/json.c - JSON string escaping with UTF-8 validation.
 *
 * One pass over the input copies runs of bytes that need no escaping with a single
 * append and writes an escape for each byte or sequence that does. UTF-8 sequences are
 * checked with util/utf8 (Go's utf8.DecodeRune rules); the flags choose between the
 * escaping of Prometheus' API answers and that of Go's encoding/json, which notification
 * payloads must match byte for byte.
 */
#include "util/json.h"
#include "util/err.h"
#include "util/metrics.h"
#include "util/utf8.h"

#include <math.h>
#include <string.h>

int rg_json_string_flags(struct rg_buf *out, const char *s, size_t len, unsigned flags)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    int go = (flags & RG_JSON_GO_HTML) != 0;
    size_t run = 0;   /* bytes at p[i - run .. i) that are copied as they are */
    int err;

    if ((err = rg_buf_reserve(out, len + 2)) || (err = rg_buf_putc(out, '"')))
        return err;
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        char esc[8];
        size_t elen = 2, u = 1;

        if (c < 0x80) {
            if (c >= 0x20 && c != '"' && c != '\\' &&
                !(go && (c == '<' || c == '>' || c == '&'))) {
                run++;
                i++;
                continue;
            }
            esc[0] = '\\';
            if (c == '"' || c == '\\')
                esc[1] = (char)c;
            else if (c == '\n')
                esc[1] = 'n';
            else if (c == '\r')
                esc[1] = 'r';
            else if (c == '\t')
                esc[1] = 't';
            else if (go && c == '\b')
                esc[1] = 'b';
            else if (go && c == '\f')
                esc[1] = 'f';
            else {
                /* Other control bytes, and <, > and & in the HTML-safe form. */
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4], esc[5] = hex[c & 15], elen = 6;
            }
        } else if ((u = rg_utf8_seq_len(s + i, len - i)) == 0) {
            /* Each invalid byte becomes U+FFFD, so the output is always valid JSON. */
            u = 1;
            if (go)
                memcpy(esc, "\\ufffd", 6), elen = 6;
            else
                memcpy(esc, "\xef\xbf\xbd", 3), elen = 3;
        } else if (go && u == 3 && c == 0xe2 && p[i + 1] == 0x80 && (p[i + 2] & 0xfe) == 0xa8) {
            /* U+2028 and U+2029 end lines in JavaScript; Go escapes them. */
            memcpy(esc, p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6), elen = 6;
        } else {
            run += u;
            i += u;
            continue;
        }
        if (run && (err = rg_buf_append(out, p + i - run, run)))
            return err;
        run = 0;
        if ((err = rg_buf_append(out, esc, elen)))
            return err;
        i += u;
    }
    if (run && (err = rg_buf_append(out, p + len - run, run)))
        return err;
    return rg_buf_putc(out, '"');
}

int rg_json_string(struct rg_buf *out, const char *s, size_t len)
{
    return rg_json_string_flags(out, s, len, 0);
}

int rg_json_cstr(struct rg_buf *out, const char *s)
{
    return rg_json_string(out, s, strlen(s));
}

int rg_json_number(struct rg_buf *out, double v)
{
    if (isnan(v))
        return rg_buf_puts(out, "null");
    if (isinf(v))
        return rg_buf_puts(out, v > 0 ? "\"+Inf\"" : "\"-Inf\"");
    return rg_metrics_format_value(v, out);
}
