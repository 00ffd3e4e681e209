/* http/query.c - application/x-www-form-urlencoded lookups by linear scan.
 *
 * A query string is validated once (every '%' must start a two-hex-digit escape),
 * then scanned pair by pair. Names are compared while decoding them on the fly, so
 * a lookup allocates nothing unless a value is returned; values are decoded into
 * the caller's buffer. This is a linear scan per lookup, which is cheap for the
 * handful of parameters an API request carries.
 */
#include "http/query.h"
#include "util/err.h"
#include "util/hex.h"

#include <string.h>

/* Checks that every '%' in @s starts a valid escape. */
static int validate(struct rg_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] != '%')
            continue;
        if (s.len - i < 3)
            return RG_EBADMSG;
        if (rg_hex_digit(s.ptr[i + 1]) < 0 || rg_hex_digit(s.ptr[i + 2]) < 0)
            return RG_EBADMSG;
        i += 2;
    }
    return 0;
}

/* Decodes one byte of an already validated string starting at @s[*i], advancing *i. */
static char decode_at(const char *s, size_t *i)
{
    char c = s[*i];

    if (c == '+') {
        *i += 1;
        return ' ';
    }
    if (c == '%') {
        c = (char)(rg_hex_digit(s[*i + 1]) * 16 + rg_hex_digit(s[*i + 2]));
        *i += 3;
        return c;
    }
    *i += 1;
    return c;
}

/* True when the validated, encoded @enc decodes to exactly the C string @name. */
static int name_equals(struct rg_slice enc, const char *name)
{
    size_t i = 0, j = 0;
    size_t n = strlen(name);

    while (i < enc.len) {
        if (j == n || decode_at(enc.ptr, &i) != name[j])
            return 0;
        j++;
    }
    return j == n;
}

int rg_http_urldecode(struct rg_slice in, struct rg_buf *out)
{
    int err = validate(in);
    size_t i = 0;

    if (err)
        return err;
    /* Decoding never lengthens the input, so one reservation suffices. */
    err = rg_buf_reserve(out, in.len);
    if (err)
        return err;
    while (i < in.len)
        out->data[out->len++] = decode_at(in.ptr, &i);
    out->data[out->len] = '\0';
    return 0;
}

/* Splits the pair that starts at @pos into name and value, returning the end of the
 * pair (the '&' or the end of @qs). */
static size_t next_pair(struct rg_slice qs, size_t pos, struct rg_slice *name,
                        struct rg_slice *value)
{
    size_t end = pos, eq;

    while (end < qs.len && qs.ptr[end] != '&')
        end++;
    eq = pos;
    while (eq < end && qs.ptr[eq] != '=')
        eq++;
    name->ptr = qs.ptr + pos;
    name->len = eq - pos;
    if (eq < end) {
        value->ptr = qs.ptr + eq + 1;
        value->len = end - eq - 1;
    } else {
        value->ptr = qs.ptr + end;
        value->len = 0;
    }
    return end;
}

int rg_http_query_get(struct rg_slice qs, const char *name, size_t index, struct rg_buf *out)
{
    struct rg_slice n, v;
    size_t pos = 0, seen = 0;
    int err = validate(qs);

    if (err)
        return err;
    rg_buf_reset(out);
    while (pos < qs.len) {
        size_t end = next_pair(qs, pos, &n, &v);
        if (end > pos && name_equals(n, name) && seen++ == index)
            return rg_http_urldecode(v, out);
        pos = end + 1;
    }
    return RG_ENOENT;
}

int rg_http_query_count(struct rg_slice qs, const char *name, size_t *out)
{
    struct rg_slice n, v;
    size_t pos = 0, count = 0;
    int err = validate(qs);

    if (err)
        return err;
    while (pos < qs.len) {
        size_t end = next_pair(qs, pos, &n, &v);
        if (end > pos && name_equals(n, name))
            count++;
        pos = end + 1;
    }
    *out = count;
    return 0;
}
