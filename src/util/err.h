/* util/err.h - rollgate's error codes.
 *
 * Every function that can fail returns 0 or a negative RG_E* code, in the manner
 * of libuv. Codes below RG_E__BASE are rollgate's own; any other negative value
 * is a negated errno (libuv's UV_E* on Unix), passed through unchanged.
 */
#ifndef RG_UTIL_ERR_H
#define RG_UTIL_ERR_H

#define RG_E__BASE   (-10000)

enum rg_err {
    RG_OK        = 0,
    RG_ENOMEM    = RG_E__BASE - 1,  /* allocation failed */
    RG_EINVAL    = RG_E__BASE - 2,  /* invalid argument or value */
    RG_EBADMSG   = RG_E__BASE - 3,  /* malformed input (protobuf, snappy, JSON, ...) */
    RG_ETOOBIG   = RG_E__BASE - 4,  /* input over a configured size limit */
    RG_ENOTSUP   = RG_E__BASE - 5,  /* unsupported media type, encoding or feature */
    RG_ENOENT    = RG_E__BASE - 6,  /* no such object */
    RG_EEXIST    = RG_E__BASE - 7,  /* object already exists */
    RG_EORDER    = RG_E__BASE - 8,  /* sample older than the series' newest sample */
    RG_EDUP      = RG_E__BASE - 9,  /* same timestamp, different value */
    RG_ETOOOLD   = RG_E__BASE - 10, /* sample older than the retention window */
    RG_EFUTURE   = RG_E__BASE - 11, /* sample too far in the future */
    RG_ELIMIT    = RG_E__BASE - 12, /* a configured limit (series, samples, points) reached */
    RG_EPARSE    = RG_E__BASE - 13, /* syntax error in a query, rule or config file */
    RG_EEXEC     = RG_E__BASE - 14, /* evaluation error (PromQL execution) */
    RG_ETIMEDOUT = RG_E__BASE - 15, /* deadline passed */
    RG_EIO       = RG_E__BASE - 16, /* I/O failure */
    RG_ELABELS   = RG_E__BASE - 17, /* invalid label set */
    RG_ECANCELED = RG_E__BASE - 18, /* operation cancelled (shutdown) */
};

/** Returns a static, human-readable message for @err (never NULL). */
const char *rg_strerror(int err);

/** Returns the symbolic name of @err ("RG_EINVAL", "ENOENT", ...), never NULL. */
const char *rg_err_name(int err);

#endif
