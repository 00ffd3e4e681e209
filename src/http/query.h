/* http/query.h - application/x-www-form-urlencoded lookups (query strings, form bodies).
 *
 * The PromQL API takes its parameters either in the query string or in a form body,
 * and repeats some of them (match[]). Rather than building a map per request, a
 * lookup scans the raw string once, left to right, splitting pairs on '&' and the
 * name from the value on the first '=', and percent-decodes only the name being
 * compared and the value returned (WHATWG urlencoded parsing, with '+' as space).
 * Pure: no allocation besides @out, no I/O, any thread.
 */
#ifndef RG_HTTP_QUERY_H
#define RG_HTTP_QUERY_H

#include <stddef.h>

#include "util/buf.h"

/** Finds the @index-th (0-based) pair of @qs whose percent-decoded name equals @name
 *  (a C string, compared byte for byte) and stores its decoded value in @out, which is
 *  reset first and NUL-terminated. Empty pairs ("a=1&&b=2") are skipped; a pair without
 *  '=' has an empty value. Borrows @qs. Returns 0, RG_ENOENT when there is no such pair,
 *  RG_EBADMSG when @qs holds an invalid %-escape anywhere (checked before any lookup,
 *  so the answer does not depend on @name), or RG_ENOMEM. */
int rg_http_query_get(struct rg_slice qs, const char *name, size_t index, struct rg_buf *out);

/** Counts the pairs of @qs whose decoded name equals @name into @out. Returns 0 or
 *  RG_EBADMSG (invalid %-escape anywhere in @qs). */
int rg_http_query_count(struct rg_slice qs, const char *name, size_t *out);

/** Percent-decodes @in ('+' becomes a space) and appends it to @out. Returns 0,
 *  RG_EBADMSG on an invalid escape ('%' not followed by two hex digits), or RG_ENOMEM;
 *  on error @out may hold a partial result. */
int rg_http_urldecode(struct rg_slice in, struct rg_buf *out);

#endif
