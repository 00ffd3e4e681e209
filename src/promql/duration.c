/* promql/duration.c - PromQL duration literals ("1h30m", "500ms", "1y").
 *
 * The grammar is Prometheus' model.ParseDuration: one or more "<digits><unit>"
 * groups with units y w d h m s ms, each unit at most once and in decreasing
 * order; the bare string "0" is also zero. A year is 365 days and a week seven.
 * Formatting is model.Duration.String(): years and weeks are only used when they
 * divide the value exactly, then days, hours, minutes, seconds, milliseconds
 * greedily, and zero prints as "0s".
 */
#include <stdint.h>
#include <string.h>

#include "promql/ast.h"
#include "util/err.h"

static const struct {
    const char *unit;
    int64_t ms;
    int exact;            /* only used when it divides the remainder */
} units[] = {
    { "y", 365LL * 24 * 3600 * 1000, 1 },
    { "w", 7LL * 24 * 3600 * 1000, 1 },
    { "d", 24LL * 3600 * 1000, 0 },
    { "h", 3600LL * 1000, 0 },
    { "m", 60LL * 1000, 0 },
    { "s", 1000, 0 },
    { "ms", 1, 0 },
};

#define NUNITS (sizeof(units) / sizeof(units[0]))

int rg_promql_parse_duration(const char *s, size_t len, int64_t *out_ms)
{
    size_t i = 0;
    size_t next_unit = 0;     /* units before this index are used up */
    int64_t total = 0;

    if (len == 1 && s[0] == '0') {
        *out_ms = 0;
        return 0;
    }
    if (len == 0)
        return RG_EINVAL;
    while (i < len) {
        int64_t v = 0;
        size_t start = i, u, ulen;

        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return RG_EINVAL;
            v = v * 10 + (s[i] - '0');
            i++;
        }
        if (i == start || i == len)
            return RG_EINVAL;
        /* "ms" must be tried before "m". */
        if (len - i >= 2 && s[i] == 'm' && s[i + 1] == 's')
            u = NUNITS - 1, ulen = 2;
        else {
            for (u = 0; u < NUNITS - 1; u++)
                if (units[u].unit[0] == s[i])
                    break;
            if (u == NUNITS - 1)
                return RG_EINVAL;
            ulen = 1;
        }
        if (u < next_unit)
            return RG_EINVAL;
        next_unit = u + 1;
        i += ulen;
        if (v > INT64_MAX / units[u].ms || total > INT64_MAX - v * units[u].ms)
            return RG_EINVAL;
        total += v * units[u].ms;
    }
    *out_ms = total;
    return 0;
}

int rg_promql_format_duration(int64_t ms, struct rg_buf *out)
{
    uint64_t rest;
    size_t u;

    if (ms == 0)
        return rg_buf_puts(out, "0s");
    /* Work on the magnitude so that INT64_MIN has a representation too. */
    rest = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    if (ms < 0 && rg_buf_putc(out, '-'))
        return RG_ENOMEM;
    for (u = 0; u < NUNITS; u++) {
        uint64_t unit = (uint64_t)units[u].ms, v;
        if (units[u].exact && rest % unit != 0)
            continue;
        v = rest / unit;
        if (v > 0) {
            if (rg_buf_printf(out, "%llu%s", (unsigned long long)v, units[u].unit))
                return RG_ENOMEM;
            rest -= v * unit;
        }
    }
    return 0;
}
