/* util/log.c - key=value log lines on stderr, one write(2) per line. */
#include "util/log.h"
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum rg_log_level min_level = RG_LOG_INFO;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

void rg_log_set_level(enum rg_log_level level)
{
    min_level = level;
}

int rg_log_level_parse(const char *s, enum rg_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum rg_log_level)i;
            return 0;
        }
    }
    return RG_EINVAL;
}

int rg_log_enabled(enum rg_log_level level)
{
    return level >= min_level;
}

void rg_log(enum rg_log_level level, const char *fmt, ...)
{
    char line[4096];
    struct timeval tv;
    struct tm tm;
    size_t n;
    va_list ap;
    int w;

    if (level < min_level)
        return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
    w = snprintf(line + n, sizeof(line) - n, ".%03ldZ level=%s ", (long)(tv.tv_usec / 1000),
                 level_names[level]);
    n += (size_t)w;
    va_start(ap, fmt);
    w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (w < 0)
        return;
    n += (size_t)w;
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;    /* truncated: keep the newline */
    line[n++] = '\n';
    /* One write per line keeps lines whole when several processes share stderr. */
    if (write(STDERR_FILENO, line, n) < 0)
        return;
}

char *rg_log_quote(char *out, size_t cap, const char *s, size_t len)
{
    size_t o = 0;

    if (cap < 8) {
        if (cap)
            out[0] = '\0';
        return out;
    }
    out[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        const char *esc = NULL;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        size_t need = esc ? 2 : 1;
        if (o + need + 5 > cap) {   /* room for `..."` and NUL */
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (esc) {
            memcpy(out + o, esc, 2);
            o += 2;
        } else {
            out[o++] = c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}
