/* util/json.h - the small pieces of JSON output every API answer needs.
 *
 * Strings are escaped as encoding/json does for Prometheus' API: quote, backslash
 * and control characters escaped (\n, \r, \t, others as \u00XX), valid UTF-8 passed
 * through, invalid bytes replaced by U+FFFD so that the output is always valid JSON.
 */
#ifndef RG_UTIL_JSON_H
#define RG_UTIL_JSON_H

#include <stddef.h>

#include "util/buf.h"

/** Appends @s (@len bytes) as a quoted JSON string. Returns 0 or RG_ENOMEM. */
int rg_json_string(struct rg_buf *out, const char *s, size_t len);

/** Appends the NUL-terminated @s as a quoted JSON string. */
int rg_json_cstr(struct rg_buf *out, const char *s);

#endif
