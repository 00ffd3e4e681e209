/* notify/retry.h - when to retry a notification delivery, and after how long.
 *
 * The policy follows the at-least-once contract of the notifications: network
 * errors, timeouts, 5xx and 429 are retried; 2xx is success; every other status
 * (other 4xx, and 1xx/3xx since redirects are not followed) is a permanent rejection.
 * The delay before attempt n+1 is exponential backoff with jitter, as in "Exponential
 * Backoff And Jitter" (Brooker, AWS Architecture Blog, 2015):
 *   full jitter:         delay = uniform(min, min(max, min * multiplier^n))
 *   decorrelated jitter: delay = min(max, uniform(min, 3 * previous delay))
 *   none:                delay = min(max, min * multiplier^n)
 * The lower bound is the configured minimum rather than zero, so a receiver that
 * just failed is never hit again at once. A Retry-After header (delay-seconds or an
 * HTTP-date, RFC 9110 section 10.2.3) replaces the computed delay, raised to the
 * minimum and capped by the maximum, so one misbehaving receiver cannot park an
 * event for hours. An event older than max_age is dropped ("expired"); the decision
 * looks ahead, so an event is never scheduled for an attempt it would be too old for.
 *
 * Defaults (rg_retry_policy_default): min 500 ms (Alertmanager's initial interval),
 * max 30 s (a recovered receiver is found again within half a minute), multiplier
 * 2, full jitter, max age 1 h (alerts are re-sent by the rules anyway, and a
 * deployment signal older than that is stale).
 *
 * Pure: no I/O, no clock; the caller passes the times and the random source, so
 * tests are deterministic. Any thread, no shared state.
 */
#ifndef RG_NOTIFY_RETRY_H
#define RG_NOTIFY_RETRY_H

#include <stddef.h>
#include <stdint.h>

enum rg_retry_jitter {
    RG_RETRY_JITTER_FULL = 0,
    RG_RETRY_JITTER_DECORRELATED,
    RG_RETRY_JITTER_NONE,
};

struct rg_retry_policy {
    int64_t min_backoff_ms;        /* lower bound of every delay, > 0 */
    int64_t max_backoff_ms;        /* upper bound of every delay, >= min */
    double multiplier;             /* growth per attempt, >= 1 */
    enum rg_retry_jitter jitter;
    int64_t max_age_ms;            /* event created -> dropped as expired; 0 = never */
};

/** What one attempt's outcome means for the event. */
enum rg_retry_class {
    RG_RETRY_SUCCESS = 0,          /* delivered (2xx) */
    RG_RETRY_RETRYABLE,            /* network error, timeout, 5xx, 429 */
    RG_RETRY_PERMANENT,            /* any other status, or an unusable request */
};

/** The decision after an attempt. */
enum rg_retry_action {
    RG_RETRY_ACK = 0,              /* delivered: mark acked */
    RG_RETRY_AGAIN,                /* schedule another attempt at next_attempt_ms */
    RG_RETRY_DROP_REJECTED,        /* permanent failure: drop, reason "rejected" */
    RG_RETRY_DROP_EXPIRED,         /* too old for another attempt: drop, reason "expired" */
};

/** Deterministic random source (splitmix64). Seed it once; any seed is valid. */
struct rg_retry_rng {
    uint64_t state;
};

/** Inputs of rg_retry_decide(). Strings are borrowed for the call only. */
struct rg_retry_attempt {
    int status;                    /* HTTP status, 0 when no response was received */
    int err;                       /* 0 or the transport's RG_E* / negated errno code */
    const char *retry_after;       /* Retry-After header value, NULL when absent */
    uint32_t attempts;             /* attempts made so far, including this one (>= 1) */
    int64_t created_ms;            /* event creation, wall clock */
    int64_t now_ms;                /* wall clock now */
    int64_t prev_backoff_ms;       /* last delay used (decorrelated jitter), 0 at first */
};

struct rg_retry_decision {
    enum rg_retry_action action;
    int64_t delay_ms;              /* AGAIN: delay chosen */
    int64_t next_attempt_ms;       /* AGAIN: now_ms + delay_ms */
    int retry_after_used;          /* AGAIN: 1 when Retry-After set the delay */
};

/** Fills @p with the defaults documented above. */
void rg_retry_policy_default(struct rg_retry_policy *p);

/** Checks @p; returns 0 or RG_EINVAL (min <= 0, max < min, multiplier < 1, age < 0). */
int rg_retry_policy_validate(const struct rg_retry_policy *p);

/** Seeds @rng. */
void rg_retry_rng_seed(struct rg_retry_rng *rng, uint64_t seed);
/** Next 64 random bits. */
uint64_t rg_retry_rng_next(struct rg_retry_rng *rng);

/** Classifies one attempt: @status > 0 decides (2xx success, 429 and 5xx retryable,
 *  else permanent); without a status, RG_EINVAL / RG_ENOTSUP (malformed URL,
 *  unsupported scheme) are permanent and every other error is retryable. */
enum rg_retry_class rg_retry_classify(int status, int err);

/** The backoff before attempt @attempts + 1, i.e. after @attempts failures (>= 1),
 *  per the policy's jitter; @prev_ms is the previous delay (decorrelated only). */
int64_t rg_retry_backoff(const struct rg_retry_policy *p, uint32_t attempts, int64_t prev_ms,
                         struct rg_retry_rng *rng);

/** Parses a Retry-After value: delay-seconds ("120") or an HTTP-date in IMF-fixdate,
 *  RFC 850 or asctime form. A date in the past gives 0. Returns 0 with the delay in
 *  @delay_ms, or RG_EINVAL when @s is neither. */
int rg_retry_after_parse(const char *s, int64_t now_ms, int64_t *delay_ms);

/** Decides what to do after an attempt (see the module comment). */
void rg_retry_decide(const struct rg_retry_policy *p, const struct rg_retry_attempt *a,
                     struct rg_retry_rng *rng, struct rg_retry_decision *out);

/** True when an event created at @created_ms is too old to be attempted at @now_ms. */
int rg_retry_expired(const struct rg_retry_policy *p, int64_t created_ms, int64_t now_ms);

#endif
