/* notify/dispatch.h - at-least-once delivery of notification events.
 *
 * The dispatcher ties the durable outbox (outbox.h), the retry policy (retry.h) and the
 * HTTP client (curl_uv.h) together on the libuv loop. rg_dispatch_emit() appends an
 * event to the outbox (fsync'd: from then on it is "emitted" and survives kill -9) and
 * schedules it. Per notifier, a delivery loop takes due events from the outbox, oldest
 * due first, and sends each as one HTTP request, with at most max_in_flight requests
 * at a time. Outcomes (retry.h): 2xx acks the event; a network error, timeout, 5xx or
 * 429 schedules another attempt after a jittered exponential backoff or the receiver's
 * Retry-After; any other status drops it (reason "rejected"); an event older than the
 * policy's max age is dropped (reason "expired").
 *
 * Three refinements keep a down receiver cheap and a recovered one fast. While the
 * last attempt of a notifier failed, it sends one request at a time (a probe), so
 * thousands of queued events do not all hammer a dead endpoint. After a failure the
 * whole notifier pauses: for the Retry-After the receiver asked for, otherwise for the
 * failed event's backoff but at most probe_max_ms (5 s), which bounds how long a
 * receiver that came back goes unnoticed. When an attempt succeeds again, every
 * waiting event of that notifier is made due at once, so a backlog is delivered as
 * soon as the receiver is back rather than after each event's own backoff.
 *
 * The dispatcher knows nothing about payload formats: notifier-type code builds the
 * body and headers and calls emit. It adds one header itself, "Idempotency-Key:
 * <dedup key>" (name configurable, may be turned off), unless the event already
 * carries it; the key is stored with the event, so it is the same on every attempt
 * and after a restart. Secrets in notifier settings are copied, handed to libcurl,
 * and never logged or exported.
 *
 * Signatures are made at send time, not at emit time. A notifier with a signing
 * secret gets "X-Rollgate-Signature: t=<unix now>,v1=<HMAC-SHA256 of "t.body">"
 * (sign.h) computed afresh for every attempt, so a retry or a resend after a restart
 * carries the time it was actually sent and passes a receiver's replay window however
 * late it comes. The outbox therefore never holds a signature or the secret: a
 * signature header given to emit is dropped before the event is stored, and one read
 * from an outbox written by an older version (which signed at emit time) is dropped
 * before the attempt and replaced by a fresh one.
 *
 * Metrics (when a registry is given): rollgate_notifications_total{notifier,outcome}
 * counts attempts by outcome ("success", "retry", "rejected", "expired": the attempt
 * failed and the event was too old for another), rollgate_notification_queue_length
 * {notifier} (waiting + in flight), rollgate_notification_latency_seconds{notifier}
 * (event created -> acked, histogram), rollgate_notifications_dropped_total
 * {notifier,reason} (reason: expired, rejected, outbox_full, no_notifier).
 *
 * Times: created, due and age use the wall clock (they must survive restarts).
 * Threading: loop thread only.
 */
#ifndef RG_NOTIFY_DISPATCH_H
#define RG_NOTIFY_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "notify/curl_uv.h"
#include "notify/outbox.h"
#include "notify/retry.h"
#include "util/metrics.h"

struct rg_dispatch;                /* opaque */

/** One delivery target. Every string is copied by rg_dispatch_add_notifier(). */
struct rg_dispatch_notifier {
    const char *name;              /* unique; the "notifier" label */
    const char *url;               /* where every event of this notifier is sent */
    const char *method;            /* NULL = "POST" */
    const char *const *headers;    /* static "Name: value" lines sent with every event */
    size_t nheaders;
    struct rg_http_tls tls;
    const char *basic_user;        /* secret-bearing fields: never logged */
    const char *basic_password;
    const char *bearer_token;
    uint64_t timeout_ms;           /* per attempt; 0 = 10 s */
    size_t max_response_bytes;     /* 0 = 64 KiB (bodies are read only for logs) */
    unsigned max_in_flight;        /* concurrent requests; 0 = 8 */
    int64_t probe_max_ms;          /* longest pause of a failing notifier; 0 = 5 s */
    struct rg_retry_policy retry;  /* all zero = rg_retry_policy_default() */
    const char *idempotency_header;/* NULL = "Idempotency-Key"; "" = none */
    const void *signing_secret;    /* NULL = unsigned; else @signing_secret_len bytes (at
                                    * least 1): copied, wiped when freed, never logged */
    size_t signing_secret_len;
};

struct rg_dispatch_config {
    struct rg_outbox_config outbox;  /* path required; on_drop is the dispatcher's */
    struct rg_metrics *metrics;      /* borrowed, may be NULL; must outlive the dispatcher */
    uint64_t seed;                   /* backoff jitter; 0 = from the clock and pid */
    uint64_t sync_interval_ms;       /* fsync of acks at most this late; 0 = 200 ms */
};

/** Attempt outcomes, for rg_dispatch_on_result() and the metric label. */
enum rg_dispatch_outcome {
    RG_DISPATCH_SUCCESS = 0,
    RG_DISPATCH_RETRY,
    RG_DISPATCH_REJECTED,
    RG_DISPATCH_EXPIRED,
};

/** One attempt's outcome, passed to the result hook (borrowed for the call). */
struct rg_dispatch_result {
    const char *notifier;
    uint64_t id;                   /* outbox id */
    const char *dedup_key;
    enum rg_dispatch_outcome outcome;
    int status;                    /* HTTP status, 0 when none */
    int err;                       /* transport error (curl_uv.h), 0 when none */
    uint32_t attempt;              /* 1 for the first attempt since load */
    int64_t next_attempt_ms;       /* RETRY: when the next attempt is due (wall ms) */
    double seconds;                /* request duration */
};

/** Per-notifier figures since the dispatcher started. */
struct rg_dispatch_stats {
    uint64_t attempts[4];          /* by enum rg_dispatch_outcome */
    uint64_t dropped[RG_OUTBOX_DROP__COUNT];
    size_t pending;                /* waiting for an attempt */
    size_t in_flight;
    uint64_t acked;
    double latency_sum_s;          /* created -> acked, over acked events */
};

/** Opens the outbox (replaying undelivered events) and creates the dispatcher. It
 *  borrows @cu (which must stay open until the dispatcher has closed) and @loop.
 *  Returns 0 or an error of rg_outbox_open(), RG_EINVAL, RG_ENOMEM. */
int rg_dispatch_new(uv_loop_t *loop, struct rg_curl_uv *cu, const struct rg_dispatch_config *cfg,
                    struct rg_dispatch **out);

/** Registers a notifier (before or after start). Returns 0, RG_EEXIST (name taken),
 *  RG_EINVAL (no name or URL, invalid retry policy, a signing secret of length 0) or
 *  RG_ENOMEM. */
int rg_dispatch_add_notifier(struct rg_dispatch *d, const struct rg_dispatch_notifier *n);

/** Starts delivery: events replayed for notifiers that are no longer registered are
 *  dropped (reason "no_notifier"); the rest are sent as they become due. */
int rg_dispatch_start(struct rg_dispatch *d);

/** Emits one event: appends it durably to the outbox (fsync) and schedules it. Copies
 *  everything. @headers are "Name: value" lines (an X-Rollgate-Signature line among
 *  them is not stored: signatures are made per attempt); @dedup_key may be NULL.
 *  Returns 0
 *  once the event is durable, RG_ENOENT (unknown notifier), RG_ECANCELED (closing),
 *  or an error of rg_outbox_append(). */
int rg_dispatch_emit(struct rg_dispatch *d, const char *notifier, const char *dedup_key,
                     const char *content_type, const char *const *headers, size_t nheaders,
                     const void *body, size_t len);

/** Emits @n events with one fsync (all or none). created_ms of the entries is
 *  replaced by the current time. @ids_out may be NULL. */
int rg_dispatch_emit_batch(struct rg_dispatch *d, struct rg_outbox_entry *entries, size_t n,
                           uint64_t *ids_out);

/** Sets a hook called after every attempt (may be NULL): for logs, tests and the
 *  notify-test command. It must not close the dispatcher. */
void rg_dispatch_on_result(struct rg_dispatch *d,
                           void (*cb)(const struct rg_dispatch_result *r, void *ud), void *ud);

/** Figures of @notifier (zeros when unknown). */
void rg_dispatch_stats(const struct rg_dispatch *d, const char *notifier,
                       struct rg_dispatch_stats *out);

/** The dispatcher's outbox (borrowed), for introspection. */
struct rg_outbox *rg_dispatch_outbox(struct rg_dispatch *d);

/** Graceful close: stops scheduling, cancels in-flight attempts (their events stay in
 *  the outbox and are resent after the next start), fsyncs and closes the outbox,
 *  closes its timers, frees the dispatcher and calls @on_closed(@ud) (may be NULL)
 *  from a close callback. Close the dispatcher before the curl_uv client. NULL is a
 *  no-op. */
void rg_dispatch_close(struct rg_dispatch *d, void (*on_closed)(void *ud), void *ud);

/** "success", "retry", "rejected", "expired". */
const char *rg_dispatch_outcome_name(enum rg_dispatch_outcome o);

#endif
