/* query/response.h - streaming parser of Prometheus HTTP API query responses.
 *
 * Query mode asks a Prometheus-compatible server (Prometheus, Thanos, Mimir,
 * VictoriaMetrics) instead of the in-memory store, so the bodies of /api/v1/query and
 * /api/v1/query_range have to become the same result the local engine produces. The
 * body arrives in pieces from a curl write callback; this parser takes the pieces as
 * they come (any boundaries) and drives yajl's event (SAX) parser over them, with a
 * small explicit state machine for the envelope {"status","data":{"resultType",
 * "result"},"errorType","error","warnings","infos"}. There is no document tree: only
 * the series being read is buffered (its labels and points, since "metric" may follow
 * "values"), and finished series go straight into the result's arena. Keys may come
 * in any order at every level ("data" before "status", "resultType" after "result"),
 * unknown keys are skipped with whatever they contain, and native histogram samples
 * are dropped with a warning.
 *
 * Everything is bounded: the body's size, the series and points it may hold, and the
 * nesting depth; malformed, truncated or oversized input is an error, never a crash.
 * Timestamps are converted from their decimal text to exact int64 milliseconds; values
 * ("1.5", "NaN", "+Inf", "-Inf", "Inf") are parsed with correct rounding.
 *
 * The result type mirrors struct rg_promql_result (promql/engine.h) field for field
 * (type, t, scalar, string, series, nseries, warnings, nwarnings) and uses the same
 * struct rg_promql_series, so that rules code can handle local and remote results with
 * the same loops; it is a separate type because the engine's result keeps its memory in
 * an engine-private arena, and because a remote answer also carries infos and the
 * server's errorType/error.
 *
 * Not thread-safe: one parser per request, used from one thread at a time. Pure: no
 * I/O, no clock.
 */
#ifndef RG_QUERY_RESPONSE_H
#define RG_QUERY_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#include "promql/engine.h"
#include "util/buf.h"

/** Bit for @type in rg_query_parse_opts.expect. */
#define RG_QUERY_EXPECT(type) (1u << (unsigned)(type))

/** Parser settings. Zero in a limit field means "the default". */
struct rg_query_parse_opts {
    size_t max_bytes;     /* response body bytes; default 64 MiB */
    size_t max_series;    /* series in a vector or matrix; default 1,000,000 */
    size_t max_points;    /* float points over all series; default 20,000,000 */
    unsigned expect;      /* RG_QUERY_EXPECT() bits of the acceptable result types;
                           * 0 accepts any */
};

/** A parsed response. Every pointer, string and array in it is owned by the result
 *  (most live in one arena) and stays valid until rg_query_result_free(); never pass
 *  it to rg_promql_result_free(). */
struct rg_query_result {
    enum rg_promql_vtype type;         /* SCALAR, VECTOR, MATRIX or STRING; NONE on error */
    int64_t t;                         /* SCALAR and STRING: the server's time, ms */
    double scalar;                     /* SCALAR */
    char *string;                      /* STRING */
    struct rg_promql_series *series;   /* VECTOR (one point each) and MATRIX (oldest
                                        * first), in the server's order; labels sorted
                                        * by name; series with no float sample left
                                        * out */
    size_t nseries;
    char **warnings;                   /* the server's "warnings", then the parser's own
                                        * (e.g. skipped native histograms) */
    size_t nwarnings;
    char **infos;                      /* the server's "infos" */
    size_t ninfos;
    char *error_type;                  /* status "error": "errorType" ("" if absent) */
    char *error;                       /* status "error": "error" ("" if absent) */
    void *priv;                        /* the arena; owned */
};

struct rg_query_parser;   /* opaque */

/** Fills @opts with the defaults. */
void rg_query_parse_opts_default(struct rg_query_parse_opts *opts);

/** Creates a parser. Copies @opts (NULL: defaults). Returns 0 or RG_ENOMEM. */
int rg_query_parser_new(const struct rg_query_parse_opts *opts, struct rg_query_parser **out);

/** Frees @p and any result it was still building. NULL is a no-op. */
void rg_query_parser_free(struct rg_query_parser *p);

/** Makes @p ready for the next response with the same options, keeping its scratch
 *  buffers. Returns 0 or RG_ENOMEM. */
int rg_query_parser_reset(struct rg_query_parser *p);

/** Feeds the next @len bytes of the body (borrowed for the call only; any split is
 *  fine, including inside a token or a UTF-8 sequence). Returns 0, or the first error
 *  (sticky: every later call returns it again without looking at the data):
 *  RG_EBADMSG malformed JSON or wrong structure, RG_ETOOBIG over a limit ("response
 *  too large"), RG_ENOMEM. A curl write callback should abort the transfer on error;
 *  rg_query_parser_finish() then reports the message. After
 *  rg_query_parser_finish() it returns RG_EINVAL until rg_query_parser_reset(). */
int rg_query_parser_feed(struct rg_query_parser *p, const void *data, size_t len);

/** Ends the body and hands over the result. *@out is always left valid for
 *  rg_query_result_free() (zeroed when there is nothing to hand over). Returns:
 *   0            status "success" with a well-formed result of an expected type;
 *   RG_EEXEC     status "error" from the server: *@out holds error_type, error,
 *                warnings and infos; RG_ETIMEDOUT instead when errorType is "timeout";
 *   RG_EBADMSG   malformed, truncated or wrongly shaped JSON, unknown status, missing
 *                fields, or a result type not in opts.expect;
 *   RG_ETOOBIG   a limit was exceeded;  RG_ENOMEM.
 *  On every error a one-line message replaces @err's contents (@err may be NULL),
 *  with the JSON path where it applies, e.g. `data.result[3].value[1]: sample value
 *  must be a string, got number`, or `execution: vector cannot contain metrics with
 *  the same labelset` from the server. Call rg_query_parser_reset() before reusing
 *  @p. */
int rg_query_parser_finish(struct rg_query_parser *p, struct rg_query_result *out,
                           struct rg_buf *err);

/** One shot: parses the whole body @data/@len as feed + finish would.
 *  Same returns and ownership as rg_query_parser_finish(). */
int rg_query_parse(const struct rg_query_parse_opts *opts, const void *data, size_t len,
                   struct rg_query_result *out, struct rg_buf *err);

/** Frees what @res holds and zeroes it. NULL is a no-op. */
void rg_query_result_free(struct rg_query_result *res);

/** Appends a canonical, line-oriented text form of @res (for tests, golden files and
 *  debugging): the type, then one line per series `{a="b", c="d"}` with its points
 *  `  <t_ms> <value>` (shortest round-trip doubles, NaN, +Inf, -Inf), then warnings,
 *  infos and the server's error. Returns 0 or RG_ENOMEM. */
int rg_query_result_dump(const struct rg_query_result *res, struct rg_buf *out);

/** Parses a JSON number's text (e.g. 1435781451.781, 1.5e9, -3) as seconds into exact
 *  milliseconds, rounding any sub-millisecond digits half away from zero.
 *  Returns 0, or RG_EINVAL when the text is not a number or out of int64 range. */
int rg_query_parse_time(const char *s, size_t len, int64_t *ms);

/** Parses a sample value string as Go's strconv.ParseFloat accepts them from
 *  Prometheus-compatible servers: decimal and exponent forms, "NaN", "Inf", "+Inf",
 *  "-Inf", "Infinity" (any case). Correctly rounded. Returns 0 or RG_EINVAL. */
int rg_query_parse_value(const char *s, size_t len, double *v);

#endif
