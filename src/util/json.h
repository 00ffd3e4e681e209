/* util/json.h - the small pieces of JSON output every API answer needs.
 *
 * By default strings are escaped as Prometheus' API answers escape them: quote, backslash
 * and control characters escaped (\n, \r, \t, others as \u00XX), valid UTF-8 passed
 * through, invalid bytes replaced by U+FFFD so that the output is always valid JSON.
 * With RG_JSON_GO_HTML they are escaped as Go's encoding/json does by default (the
 * bodies of notifications): also <, > and & as \u003c, \u003e, \u0026, backspace and
 * form feed as \b and \f, U+2028 and U+2029 as \u2028 and \u2029, and invalid bytes as
 * the escape \ufffd.
 */
#ifndef RG_UTIL_JSON_H
#define RG_UTIL_JSON_H

#include <stddef.h>

#include "util/buf.h"

/** Flags of rg_json_string_flags. */
enum rg_json_flags {
    RG_JSON_GO_HTML = 1u << 0,     /* escape as Go's encoding/json (HTML-safe) does */
};

/** Appends @s (@len bytes, copied) as a quoted JSON string, escaped as @flags (a set of
 *  enum rg_json_flags) say. Returns 0 or RG_ENOMEM. */
int rg_json_string_flags(struct rg_buf *out, const char *s, size_t len, unsigned flags);

/** Appends @s (@len bytes) as a quoted JSON string. Returns 0 or RG_ENOMEM. */
int rg_json_string(struct rg_buf *out, const char *s, size_t len);

/** Appends the NUL-terminated @s as a quoted JSON string. */
int rg_json_cstr(struct rg_buf *out, const char *s);

/** Appends the sample value @v as the API answers write it: the shortest number that
 *  reads back exactly (rg_metrics_format_value), null for NaN, and the strings "+Inf"
 *  and "-Inf" for the infinities, which JSON numbers cannot hold. Returns 0 or
 *  RG_ENOMEM. */
int rg_json_number(struct rg_buf *out, double v);

#endif
