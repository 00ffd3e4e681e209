/* notify/retry.c - retry classification, jittered exponential backoff, Retry-After.
 *
 * See retry.h for the policy. The random source is splitmix64 (Steele, Lea and
 * Flood, "Fast splittable pseudorandom number generators", 2014): one add and two
 * multiply-xorshift rounds, good enough to spread retries and trivially seedable.
 * HTTP-dates are converted to epoch milliseconds with the days-from-civil algorithm
 * (Hinnant, "chrono-compatible low-level date algorithms"), so no libc time zone
 * state is touched.
 */
#include "notify/retry.h"

#include <string.h>

#include "util/err.h"

void rg_retry_policy_default(struct rg_retry_policy *p)
{
    p->min_backoff_ms = 500;
    p->max_backoff_ms = 30000;
    p->multiplier = 2.0;
    p->jitter = RG_RETRY_JITTER_FULL;
    p->max_age_ms = 3600 * 1000;
}

int rg_retry_policy_validate(const struct rg_retry_policy *p)
{
    if (p->min_backoff_ms <= 0 || p->max_backoff_ms < p->min_backoff_ms)
        return RG_EINVAL;
    if (!(p->multiplier >= 1.0) || p->multiplier > 1000.0)
        return RG_EINVAL;
    if (p->max_age_ms < 0)
        return RG_EINVAL;
    if (p->jitter != RG_RETRY_JITTER_FULL && p->jitter != RG_RETRY_JITTER_DECORRELATED &&
        p->jitter != RG_RETRY_JITTER_NONE)
        return RG_EINVAL;
    return 0;
}

void rg_retry_rng_seed(struct rg_retry_rng *rng, uint64_t seed)
{
    rng->state = seed;
}

uint64_t rg_retry_rng_next(struct rg_retry_rng *rng)
{
    uint64_t z = (rng->state += 0x9E3779B97F4A7C15ull);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform integer in [lo, hi]; the modulo bias is below 2^-40 for any span a delay
 * can have, which is irrelevant for spreading retries. */
static int64_t uniform(struct rg_retry_rng *rng, int64_t lo, int64_t hi)
{
    uint64_t span;

    if (hi <= lo)
        return lo;
    span = (uint64_t)(hi - lo) + 1;
    return lo + (int64_t)(rg_retry_rng_next(rng) % span);
}

enum rg_retry_class rg_retry_classify(int status, int err)
{
    if (status > 0) {
        if (status >= 200 && status <= 299)
            return RG_RETRY_SUCCESS;
        if (status == 429 || (status >= 500 && status <= 599))
            return RG_RETRY_RETRYABLE;
        return RG_RETRY_PERMANENT;
    }
    if (err == RG_EINVAL || err == RG_ENOTSUP)
        return RG_RETRY_PERMANENT;
    return RG_RETRY_RETRYABLE;
}

int64_t rg_retry_backoff(const struct rg_retry_policy *p, uint32_t attempts, int64_t prev_ms,
                         struct rg_retry_rng *rng)
{
    int64_t lo = p->min_backoff_ms, hi = p->max_backoff_ms;
    double ceil_ms = (double)lo;

    if (p->jitter == RG_RETRY_JITTER_DECORRELATED) {
        int64_t prev = prev_ms < lo ? lo : prev_ms;
        int64_t top = prev > hi / 3 ? hi : prev * 3;
        return uniform(rng, lo, top < lo ? lo : top);
    }
    /* min * multiplier^(attempts-1), computed in doubles and clamped before it can
     * overflow, so attempt 10,000 is as safe as attempt 2. */
    for (uint32_t i = 1; i < attempts && ceil_ms < (double)hi; i++)
        ceil_ms *= p->multiplier;
    if (ceil_ms > (double)hi)
        ceil_ms = (double)hi;
    if (p->jitter == RG_RETRY_JITTER_NONE)
        return (int64_t)ceil_ms;
    return uniform(rng, lo, (int64_t)ceil_ms);
}

/* ---- Retry-After ---------------------------------------------------------------------- */

static const char *const month_names[12] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* Civil year of @ms since the epoch (for RFC 850's two-digit years). */
static int64_t year_of(int64_t ms)
{
    int64_t z = (ms >= 0 ? ms : ms - 86399999) / 86400000 + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return (int64_t)yoe + era * 400 + (m <= 2);
}

struct cur {
    const char *p;
};

static int skip_sp(struct cur *c)
{
    if (*c->p != ' ')
        return -1;
    while (*c->p == ' ')
        c->p++;
    return 0;
}

static int lit(struct cur *c, const char *s)
{
    size_t n = strlen(s);

    if (strncmp(c->p, s, n))
        return -1;
    c->p += n;
    return 0;
}

/* Reads 1 to @maxd digits (exactly @maxd when @exact) into @out. */
static int digits(struct cur *c, int maxd, int exact, int64_t *out)
{
    int n = 0;
    int64_t v = 0;

    while (n < maxd && *c->p >= '0' && *c->p <= '9') {
        v = v * 10 + (*c->p - '0');
        c->p++;
        n++;
    }
    if (n == 0 || (exact && n != maxd))
        return -1;
    *out = v;
    return 0;
}

static int month(struct cur *c, unsigned *out)
{
    for (unsigned i = 0; i < 12; i++) {
        if (!strncmp(c->p, month_names[i], 3)) {
            c->p += 3;
            *out = i + 1;
            return 0;
        }
    }
    return -1;
}

static int hms(struct cur *c, int64_t *secs)
{
    int64_t h, m, s;

    if (digits(c, 2, 1, &h) || lit(c, ":") || digits(c, 2, 1, &m) || lit(c, ":") ||
        digits(c, 2, 1, &s))
        return -1;
    if (h > 23 || m > 59 || s > 60)
        return -1;
    *secs = h * 3600 + m * 60 + s;
    return 0;
}

/* Parses the three HTTP-date forms into epoch milliseconds. */
static int http_date(const char *s, int64_t now_ms, int64_t *out_ms)
{
    struct cur c = { s };
    int64_t day, year, secs;
    unsigned mon;
    const char *comma = strchr(s, ',');

    /* The weekday name is not checked against the date: RFC 9110 lets a recipient
     * ignore it, and a wrong one is no reason to hammer a receiver. */
    while ((*c.p >= 'A' && *c.p <= 'Z') || (*c.p >= 'a' && *c.p <= 'z'))
        c.p++;
    if (c.p == s || c.p - s > 9)
        return -1;
    if (comma == c.p) {
        c.p++;
        if (skip_sp(&c) || digits(&c, 2, 1, &day))
            return -1;
        if (*c.p == '-') {
            /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT". A two-digit year more than
             * 50 years in the future means the most recent past such year. */
            int64_t ny = year_of(now_ms);
            if (lit(&c, "-") || month(&c, &mon) || lit(&c, "-") || digits(&c, 2, 1, &year))
                return -1;
            year += ny - ny % 100;
            if (year > ny + 50)
                year -= 100;
        } else if (skip_sp(&c) || month(&c, &mon) || skip_sp(&c) ||
                   digits(&c, 4, 1, &year)) {
            return -1;
        }
        if (skip_sp(&c) || hms(&c, &secs) || skip_sp(&c) || lit(&c, "GMT"))
            return -1;
    } else {
        /* asctime: "Sun Nov  6 08:49:37 1994". */
        if (skip_sp(&c) || month(&c, &mon) || skip_sp(&c) || digits(&c, 2, 0, &day) ||
            skip_sp(&c) || hms(&c, &secs) || skip_sp(&c) || digits(&c, 4, 1, &year))
            return -1;
    }
    while (*c.p == ' ')
        c.p++;
    if (*c.p || day < 1 || day > 31)
        return -1;
    *out_ms = (days_from_civil(year, mon, (unsigned)day) * 86400 + secs) * 1000;
    return 0;
}

int rg_retry_after_parse(const char *s, int64_t now_ms, int64_t *delay_ms)
{
    const char *p = s;
    int64_t v = 0, at;

    if (!s)
        return RG_EINVAL;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p >= '0' && *p <= '9') {
        for (; *p >= '0' && *p <= '9'; p++) {
            /* Saturate: a delay of more than ~300 years is capped by the policy
             * anyway, and must not overflow on the way. */
            v = v * 10 + (*p - '0');
            if (v > INT64_C(10000000000))
                v = INT64_C(10000000000);
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p)
            return RG_EINVAL;
        *delay_ms = v * 1000;
        return 0;
    }
    if (http_date(p, now_ms, &at))
        return RG_EINVAL;
    *delay_ms = at > now_ms ? at - now_ms : 0;
    return 0;
}

int rg_retry_expired(const struct rg_retry_policy *p, int64_t created_ms, int64_t now_ms)
{
    return p->max_age_ms > 0 && now_ms - created_ms > p->max_age_ms;
}

void rg_retry_decide(const struct rg_retry_policy *p, const struct rg_retry_attempt *a,
                     struct rg_retry_rng *rng, struct rg_retry_decision *out)
{
    int64_t delay, ra;

    memset(out, 0, sizeof(*out));
    switch (rg_retry_classify(a->status, a->err)) {
    case RG_RETRY_SUCCESS:
        out->action = RG_RETRY_ACK;
        return;
    case RG_RETRY_PERMANENT:
        out->action = RG_RETRY_DROP_REJECTED;
        return;
    case RG_RETRY_RETRYABLE:
        break;
    }
    delay = rg_retry_backoff(p, a->attempts ? a->attempts : 1, a->prev_backoff_ms, rng);
    if (a->retry_after && rg_retry_after_parse(a->retry_after, a->now_ms, &ra) == 0) {
        delay = ra < p->min_backoff_ms ? p->min_backoff_ms : ra;
        if (delay > p->max_backoff_ms)
            delay = p->max_backoff_ms;
        out->retry_after_used = 1;
    }
    if (rg_retry_expired(p, a->created_ms, a->now_ms + delay)) {
        out->action = RG_RETRY_DROP_EXPIRED;
        return;
    }
    out->action = RG_RETRY_AGAIN;
    out->delay_ms = delay;
    out->next_attempt_ms = a->now_ms + delay;
}
