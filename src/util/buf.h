/* util/buf.h - growable byte buffer and borrowed byte slices.
 *
 * struct rg_buf owns its bytes; it is always NUL-terminated after any append so
 * that its contents can be used as a C string. struct rg_slice borrows bytes it
 * does not own (h2o_iovec_t style). Keep offsets, not pointers, into an rg_buf
 * that may still grow.
 */
#ifndef RG_UTIL_BUF_H
#define RG_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

/** Borrowed bytes; not NUL-terminated unless said otherwise. */
struct rg_slice {
    const char *ptr;
    size_t len;
};

#define RG_SLICE_LIT(s) ((struct rg_slice){ (s), sizeof(s) - 1 })

/** Owned, growable bytes. Zero-initialised is a valid empty buffer. */
struct rg_buf {
    char *data;    /* owned; NULL while cap == 0 */
    size_t len;    /* bytes used, not counting the trailing NUL */
    size_t cap;    /* bytes allocated */
};

/** Makes room for @extra more bytes (plus a NUL). Returns 0 or RG_ENOMEM. */
int rg_buf_reserve(struct rg_buf *b, size_t extra);
/** Appends @len bytes. Returns 0 or RG_ENOMEM. */
int rg_buf_append(struct rg_buf *b, const void *p, size_t len);
/** Appends a C string. Returns 0 or RG_ENOMEM. */
int rg_buf_puts(struct rg_buf *b, const char *s);
/** Appends one byte. Returns 0 or RG_ENOMEM. */
int rg_buf_putc(struct rg_buf *b, char c);
/** Appends printf-formatted text. Returns 0 or RG_ENOMEM. */
int rg_buf_printf(struct rg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int rg_buf_vprintf(struct rg_buf *b, const char *fmt, va_list ap);
/** Empties @b, keeping its allocation. */
void rg_buf_reset(struct rg_buf *b);
/** Frees the bytes; @b is empty and reusable afterwards. NULL is a no-op. */
void rg_buf_cleanup(struct rg_buf *b);
/** Hands the bytes to the caller (who frees them) and leaves @b empty. Never NULL
 *  unless allocation fails. */
char *rg_buf_steal(struct rg_buf *b, size_t *len);

/** True when @s equals the C string @lit. */
int rg_slice_eq(struct rg_slice s, const char *lit);
/** Case-insensitive equality with a C string. */
int rg_slice_eq_nocase(struct rg_slice s, const char *lit);

#endif
