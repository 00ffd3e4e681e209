/* util/log.h - key=value logging on stderr.
 *
 * Every line is "ts=<RFC3339 ms> level=<lvl> " followed by the caller's
 * key=value pairs, so that log shippers can split it without a grammar. The level
 * check happens before any formatting. Values with spaces or quotes must be
 * passed through rg_log_quote(). Loop thread or any thread: each line is one
 * write(2).
 */
#ifndef RG_UTIL_LOG_H
#define RG_UTIL_LOG_H

#include <stddef.h>

enum rg_log_level {
    RG_LOG_DEBUG = 0,
    RG_LOG_INFO  = 1,
    RG_LOG_WARN  = 2,
    RG_LOG_ERROR = 3,
};

/** Sets the minimum level written. */
void rg_log_set_level(enum rg_log_level level);

/** Parses "debug", "info", "warn" or "error" into @out; returns 0 or RG_EINVAL. */
int rg_log_level_parse(const char *s, enum rg_log_level *out);

/** True when @level would be written. */
int rg_log_enabled(enum rg_log_level level);

/** Writes one line: @fmt holds the key=value pairs, e.g. "event=listen addr=%s". */
void rg_log(enum rg_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Quotes @s (length @len) for a log value: "..." with \" and \\ and \n escaped.
 *  Writes at most @cap bytes into @out, NUL-terminated, truncating with "..." . Returns @out. */
char *rg_log_quote(char *out, size_t cap, const char *s, size_t len);

#define rg_debug(...) do { if (rg_log_enabled(RG_LOG_DEBUG)) rg_log(RG_LOG_DEBUG, __VA_ARGS__); } while (0)
#define rg_info(...)  rg_log(RG_LOG_INFO, __VA_ARGS__)
#define rg_warn(...)  rg_log(RG_LOG_WARN, __VA_ARGS__)
#define rg_error(...) rg_log(RG_LOG_ERROR, __VA_ARGS__)

#endif
