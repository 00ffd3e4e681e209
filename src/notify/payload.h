/* notify/payload.h - request bodies for every notifier type, built from plain inputs.
 *
 * The notifiers speak other programs' formats, and existing receivers must accept what
 * rollgate sends without change, so each builder reproduces the reference encoder:
 *
 *   alertmanager  Prometheus' POST /api/v2/alerts body: the go-swagger PostableAlert
 *                 encoding (annotations, endsAt, startsAt, then generatorURL, labels),
 *                 RFC 3339 millisecond UTC times, external labels added where the
 *                 alert lacks them;
 *   webhook       Alertmanager's webhook "version 4" message for alerts (field order
 *                 of Go's struct encoding, RFC3339Nano times, zero time as
 *                 "0001-01-01T00:00:00Z", fingerprints), and rollgate's own
 *                 deployment-event document (docs/notifications.md);
 *   pagerduty     Events API v2 trigger/resolve events;
 *   slack         incoming-webhook messages with blocks inside a coloured attachment.
 *
 * Strings are escaped as Go's encoding/json does (HTML characters and U+2028/U+2029
 * as \u escapes, invalid UTF-8 as \ufffd), and label maps are written with sorted
 * keys as Go writes maps, so the bodies match the reference byte for byte. Labels
 * with an empty value are left out everywhere: Prometheus never sends them and
 * Alertmanager drops them on ingest, so they are not part of an alert's identity.
 *
 * Fingerprints are Prometheus' model.LabelSet.Fingerprint: FNV-1a 64 over the label
 * pairs sorted by name, each written as name, 0xff, value, 0xff; the empty set hashes
 * to the FNV offset basis. Dedup keys are SHA-256 digests (OpenSSL) of their parts.
 *
 * Pure: no I/O and no clock; the caller passes "now" where a status depends on it.
 * Every builder appends to an rg_buf and returns 0 or RG_ENOMEM (after which the
 * buffer's contents past its previous length are unspecified). Inputs are borrowed
 * for the duration of the call only. Any thread; no shared state.
 */
#ifndef RG_NOTIFY_PAYLOAD_H
#define RG_NOTIFY_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/buf.h"

/** Alerts per Alertmanager request: Prometheus' notifier maxBatchSize. */
#define RG_PAYLOAD_AM_BATCH 64
/** PagerDuty's limit on payload.summary (characters; we never exceed it in bytes). */
#define RG_PAYLOAD_PD_SUMMARY_MAX 1024
/** PagerDuty's limit on a whole event; beyond it custom_details are left out. */
#define RG_PAYLOAD_PD_EVENT_MAX 512000
/** Size of a key buffer: 64 hex digits of a SHA-256 digest and a NUL. */
#define RG_PAYLOAD_KEY_SIZE 65
/** Size of a fingerprint buffer: 16 hex digits and a NUL. */
#define RG_PAYLOAD_FP_SIZE 17

/** An alert to send. Every pointer is borrowed for the call. */
struct rg_notify_alert {
    const struct rg_label *labels;       /* any order; the first of duplicate names wins */
    size_t nlabels;
    const struct rg_label *annotations;  /* any order; the first of duplicate names wins */
    size_t nannotations;
    int64_t starts_at_ms;                /* ms since the epoch (Prometheus' FiredAt) */
    int64_t ends_at_ms;                  /* ms since the epoch; 0 = unset */
    const char *generator_url;           /* NULL or "" = none */
};

enum rg_notify_status {
    RG_NOTIFY_FIRING,
    RG_NOTIFY_RESOLVED,
};

/** An Alertmanager-style group of alerts, for webhook, PagerDuty and Slack bodies.
 *  Every pointer is borrowed for the call. */
struct rg_notify_group {
    const char *receiver;                    /* notifier name; NULL = "" */
    const char *group_key;                   /* NULL = "{}:" + group labels, as Alertmanager */
    const struct rg_label *group_labels;     /* labels the group was formed by; may be none */
    size_t ngroup_labels;
    const struct rg_label *external_labels;  /* added to every alert that lacks them */
    size_t nexternal_labels;
    const char *external_url;                /* rollgate's external URL; NULL = "" */
    uint64_t truncated_alerts;               /* alerts left out by a max_alerts setting */
};

/** Deployment event kinds (the "kind" field of the rollgate event document). */
enum rg_notify_event_kind {
    RG_NOTIFY_EVENT_PHASE_STARTED,    /* a phase was started or advanced */
    RG_NOTIFY_EVENT_VERDICT_CHANGED,  /* the verdict changed to hold or inconclusive */
    RG_NOTIFY_EVENT_ROLLBACK,         /* the verdict became rollback through a check */
    RG_NOTIFY_EVENT_PROMOTE,          /* the verdict became promote */
    RG_NOTIFY_EVENT_HUMAN_TRIGGER,    /* a human raised a rollback trigger */
    RG_NOTIFY_EVENT_RESET,            /* the deployment was reset to its first phase */
    RG_NOTIFY_EVENT_TEST,             /* `rollgate notify-test` */
};
#define RG_NOTIFY_EVENT__COUNT 7

enum rg_notify_check_kind {
    RG_NOTIFY_CHECK_GATE,             /* must hold for promotion */
    RG_NOTIFY_CHECK_TRIGGER,          /* rolls back when it holds for its `for` */
};

/** One check of a deployment phase as last evaluated. Borrowed pointers. */
struct rg_notify_check {
    const char *name;
    enum rg_notify_check_kind kind;
    const char *signal;               /* the signal's name or query; NULL = none */
    double value;                     /* last value; NaN = no data */
    const char *op;                   /* "<", "<=", ">", ">=", "==", "!=" */
    double threshold;                 /* NaN = none (a comparison with the baseline only) */
    const char *state;                /* "ok", "failing", "pending", "no_data", "firing" */
    int64_t since_ms;                 /* when @state began (ms); 0 = unknown */
    int has_baseline;                 /* 1: the check also compares with the baseline */
    double baseline;                  /* the baseline's last value; NaN = no data */
};

/** A deployment event. Every pointer is borrowed for the call; strings may be NULL
 *  (written as null, or "" where the format requires a string). */
struct rg_notify_deploy_event {
    enum rg_notify_event_kind kind;
    const char *deployment;
    const char *phase;
    int64_t phase_start_ms;           /* when the current phase started (ms) */
    const char *verdict;              /* after the event: hold, promote, rollback, inconclusive */
    const char *previous_verdict;     /* before it */
    const char *reason;               /* one sentence: why the verdict */
    const struct rg_notify_check *checks;
    size_t nchecks;
    int64_t at_ms;                    /* when the event happened (ms) */
    double traffic_weight;            /* percent of traffic on the new version; NaN = unknown */
    const char *dedup_key;            /* NULL = rg_payload_deploy_dedup_key() */
    const char *url;                  /* link to the deployment in rollgate's API; NULL = none */
    const char *version;              /* rollgate version reported; NULL = the build's */
};

/** PagerDuty settings of one notifier. Borrowed pointers; NULL picks the default. */
struct rg_notify_pagerduty {
    const char *routing_key;          /* integration key (secret: never logged) */
    const char *severity;             /* fixed severity; NULL = mapped (see builders) */
    const char *source;               /* NULL = "rollgate" */
    const char *component;            /* NULL = derived (see builders) or left out */
    const char *group;
    const char *event_class;          /* payload.class */
    const char *client;               /* NULL = "rollgate" */
    const char *client_url;           /* NULL = the group's external URL / event's url */
    const char *dedup_key;            /* NULL = derived (see builders) */
};

/* ---- Building blocks --------------------------------------------------------------- */

/** Appends @ms as RFC 3339 with exactly three fractional digits in UTC, as Go's
 *  strfmt.DateTime: "2024-06-01T10:00:00.000Z" (no quotes). Times before 1970 and
 *  years past 9999 are written as Go's time.Format writes them. */
int rg_payload_rfc3339_ms(int64_t ms, struct rg_buf *out);

/** Appends @ms as Go's time.Time JSON encoding of a UTC time (RFC3339Nano): the
 *  fraction without trailing zeros and left out when zero ("...:00Z", "...:00.5Z"). */
int rg_payload_rfc3339_nano(int64_t ms, struct rg_buf *out);

/** Status of @a at @now_ms: resolved when ends_at is set and not after now
 *  (Alertmanager's Alert.Resolved), else firing. */
enum rg_notify_status rg_payload_alert_status(const struct rg_notify_alert *a, int64_t now_ms);

/** "firing" or "resolved". */
const char *rg_payload_status_name(enum rg_notify_status s);

/** "phase_started", "verdict_changed", "rollback", "promote", "human_trigger",
 *  "reset", "test"; "unknown" for other values. */
const char *rg_payload_event_kind_name(enum rg_notify_event_kind kind);

/** Fingerprint of the label set @labels plus the @ext labels it lacks (either may be
 *  empty), empty values left out: Prometheus' LabelSet.Fingerprint (see the top of
 *  this file). Returns 0 or RG_ENOMEM. */
int rg_payload_fingerprint(const struct rg_label *labels, size_t n, const struct rg_label *ext,
                           size_t next, uint64_t *out);

/** Writes @fp as Alertmanager prints it: 16 lower-case hex digits and a NUL. */
void rg_payload_fingerprint_hex(uint64_t fp, char out[RG_PAYLOAD_FP_SIZE]);

/** Length of the longest prefix of @s (@len bytes) that is at most @max bytes and does
 *  not end inside a UTF-8 sequence. An invalid byte counts as a sequence of its own. */
size_t rg_payload_utf8_prefix(const char *s, size_t len, size_t max);

/** Generic idempotency key: 64 hex digits of SHA-256 over the @n strings @parts, each
 *  followed by a NUL byte (so "ab","c" and "a","bc" differ). NULL parts hash as "".
 *  Returns 0 or RG_ENOMEM. */
int rg_payload_idempotency_key(const char *const *parts, size_t n,
                               char out[RG_PAYLOAD_KEY_SIZE]);

/** The stable dedup key of a deployment event: a key over a version tag, deployment,
 *  phase, kind, verdict and the phase's start time (and, for test events, the event
 *  time). The same event yields the same key after retries and restarts; a new phase
 *  start, kind or verdict yields a new one. Ignores @ev->dedup_key. Returns 0 or
 *  RG_ENOMEM. */
int rg_payload_deploy_dedup_key(const struct rg_notify_deploy_event *ev,
                                char out[RG_PAYLOAD_KEY_SIZE]);

/** Number of requests needed for @n alerts at most @max (0 = RG_PAYLOAD_AM_BATCH) each. */
size_t rg_payload_batch_count(size_t n, size_t max);

/** Batch @i of rg_payload_batch_count(@n, @max): sets *@first and *@count (0 when @i
 *  is past the end). */
void rg_payload_batch_range(size_t n, size_t max, size_t i, size_t *first, size_t *count);

/* ---- Builders ---------------------------------------------------------------------- */

/** Alertmanager POST /api/v2/alerts body for @n alerts (the caller splits into batches
 *  of RG_PAYLOAD_AM_BATCH): a JSON array of {"annotations" (left out when empty),
 *  "endsAt" (left out when unset), "startsAt", "generatorURL" (left out when empty),
 *  "labels"} with the @ext labels added where the alert lacks them. */
int rg_payload_alertmanager(const struct rg_notify_alert *alerts, size_t n,
                            const struct rg_label *ext, size_t next, struct rg_buf *out);

/** Alertmanager webhook "version 4" message for @alerts as group @g at @now_ms:
 *  {"receiver","status","alerts":[{"status","labels","annotations","startsAt","endsAt",
 *  "generatorURL","fingerprint"}],"groupLabels","commonLabels","commonAnnotations",
 *  "externalURL","version":"4","groupKey","truncatedAlerts"} and a newline, as
 *  Alertmanager's json.Encoder writes it. */
int rg_payload_webhook_alerts(const struct rg_notify_group *g, const struct rg_notify_alert *alerts,
                              size_t n, int64_t now_ms, struct rg_buf *out);

/** rollgate's deployment-event document (docs/notifications.md) and a newline. The
 *  dedup key is @ev->dedup_key, or rg_payload_deploy_dedup_key() when NULL. */
int rg_payload_webhook_event(const struct rg_notify_deploy_event *ev, struct rg_buf *out);

/** PagerDuty Events API v2 event for a group of alerts: "resolve" when every alert is
 *  resolved at @now_ms, else "trigger"; dedup_key = SHA-256 hex of the group key (as
 *  Alertmanager) unless @pd sets one; severity from @pd, else the most severe
 *  "severity" label of the firing alerts (critical/crit/page/fatal -> critical,
 *  error/err/major, warning/warn, info/none; default "error"); summary as
 *  Alertmanager's default subject, cut to 1024 bytes on a UTF-8 boundary ("…" marks
 *  the cut); timestamp @now_ms; custom_details {num_firing, num_resolved, alerts[]}
 *  with the webhook alert objects, or only the counts when the event would exceed
 *  RG_PAYLOAD_PD_EVENT_MAX. @pd is required. */
int rg_payload_pagerduty_alerts(const struct rg_notify_pagerduty *pd,
                                const struct rg_notify_group *g,
                                const struct rg_notify_alert *alerts, size_t n, int64_t now_ms,
                                struct rg_buf *out);

/** PagerDuty Events API v2 event for a deployment event. Rollback, human trigger and
 *  an inconclusive verdict trigger an incident (critical, critical, warning); promote,
 *  reset, a phase start and a return to hold resolve it; a test event triggers an info
 *  incident under its own key. The dedup_key is one per deployment (SHA-256 hex of
 *  "rollgate-deployment", deployment), so the resolve closes what the trigger opened;
 *  a test event uses the event's dedup key. component = deployment, group = phase,
 *  class = kind unless set in @pd; custom_details is the event document (its checks
 *  left out when the event would exceed RG_PAYLOAD_PD_EVENT_MAX). @pd is required. */
int rg_payload_pagerduty_event(const struct rg_notify_pagerduty *pd,
                               const struct rg_notify_deploy_event *ev, struct rg_buf *out);

/** Slack incoming-webhook message for a deployment event: "text" (the notification
 *  line) and one attachment coloured by verdict (promote green, hold blue,
 *  inconclusive amber, rollback red) holding blocks: a header, the phase, verdict and
 *  traffic fields, the reason, and the checks not ok with value vs threshold. Text is
 *  escaped for Slack (&, <, >) and bounded by Slack's block limits. */
int rg_payload_slack_event(const struct rg_notify_deploy_event *ev, struct rg_buf *out);

/** Slack incoming-webhook message for a group of alerts at @now_ms: Alertmanager's
 *  default subject as text, red while any alert fires and green when all resolved,
 *  one line per alert (summary annotation or labels) in a bounded section. */
int rg_payload_slack_alerts(const struct rg_notify_group *g, const struct rg_notify_alert *alerts,
                            size_t n, int64_t now_ms, struct rg_buf *out);

#endif
