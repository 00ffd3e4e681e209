/* util/buf.c - growable byte buffer; doubles its allocation as needed. */
#include "util/buf.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int rg_buf_reserve(struct rg_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (extra > (size_t)-1 / 2 - b->len)
        return RG_ENOMEM;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    p = realloc(b->data, cap);
    if (!p)
        return RG_ENOMEM;
    b->data = p;
    b->cap = cap;
    b->data[b->len] = '\0';   /* usable as a C string even before the first append */
    return 0;
}

int rg_buf_append(struct rg_buf *b, const void *p, size_t len)
{
    int err = rg_buf_reserve(b, len);
    if (err)
        return err;
    if (len)
        memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int rg_buf_puts(struct rg_buf *b, const char *s)
{
    return rg_buf_append(b, s, strlen(s));
}

int rg_buf_putc(struct rg_buf *b, char c)
{
    return rg_buf_append(b, &c, 1);
}

int rg_buf_vprintf(struct rg_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;
    int err;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return RG_EINVAL;
    err = rg_buf_reserve(b, (size_t)n);
    if (err)
        return err;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int rg_buf_printf(struct rg_buf *b, const char *fmt, ...)
{
    va_list ap;
    int err;

    va_start(ap, fmt);
    err = rg_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return err;
}

void rg_buf_reset(struct rg_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void rg_buf_cleanup(struct rg_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *rg_buf_steal(struct rg_buf *b, size_t *len)
{
    char *p;

    if (!b->data && rg_buf_reserve(b, 0))
        return NULL;
    p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

int rg_slice_eq(struct rg_slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

int rg_slice_eq_nocase(struct rg_slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && strncasecmp(s.ptr, lit, n) == 0;
}
