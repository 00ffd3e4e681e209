/* rules/alert.h - the alert state machine of one alerting rule, in virtual time.
 *
 * This is Prometheus' AlertingRule.Eval (rules/alerting.go, v2.53) step for step:
 * each evaluation at time ts takes the rule's query result, turned into alert
 * candidates (labels = sample labels minus __name__, plus the templated rule labels,
 * plus alertname; templated annotations; the sample value), and moves every alert
 * along inactive -> pending -> firing -> inactive (resolved):
 *
 *   - a new label set becomes pending with active_at = ts; an alert still present
 *     keeps active_at and only takes the new value and annotations; a resolved alert
 *     that comes back starts over as a new pending alert;
 *   - pending becomes firing once ts - active_at >= for (at once when for is 0);
 *   - a pending alert that is absent from one evaluation is deleted (the `for` timer
 *     restarts); a firing one becomes inactive with resolved_at = ts, unless
 *     keep_firing_for holds it: it then stays firing until keep_firing_for has passed
 *     since it first went missing (keep_firing_since);
 *   - resolved alerts are kept 15 minutes (so that the resolution is re-sent), then
 *     deleted;
 *   - two candidates with the same label set are an error that leaves the state
 *     untouched; more active alerts than the rule's limit clears every alert and is
 *     an error.
 *
 * Sending (Prometheus' needsSending and sendAlerts): never pending alerts; an alert
 * resolved since it was last sent at once; otherwise when last_sent_at + resend delay
 * is strictly before ts. Each alert sent gets last_sent_at = ts and valid_until =
 * ts + 4 * max(resend delay, group interval); its StartsAt is fired_at and its EndsAt
 * resolved_at when resolved, else valid_until.
 *
 * Restart: instead of Prometheus' ALERTS_FOR_STATE series read back from the TSDB,
 * a set serialises to JSON with every alert's full state (labels, annotations, state,
 * active_at, fired_at, resolved_at, keep_firing_since, last_sent_at, valid_until,
 * value), and is restored exactly. So a pending alert keeps its `for` timer (the time
 * spent down counts as time the condition held: the first evaluation after the
 * restart fires it if the condition still holds and `for` has elapsed since
 * active_at, or deletes it if the condition is gone), a firing alert stays firing
 * without going back to pending (prometheus#15175), and keep_firing_for keeps
 * counting from when the alert first went missing (prometheus#13957).
 *
 * Pure: no I/O, no clock; times are ms since the epoch given by the caller, and 0
 * means "unset" (Go's zero time). Loop thread only.
 */
#ifndef RG_RULES_ALERT_H
#define RG_RULES_ALERT_H

#include <stddef.h>
#include <stdint.h>

#include "rules/template.h"
#include "store/store.h"
#include "util/buf.h"

struct rg_rule;
struct rg_rule_kv;
struct yajl_val_s;

/** How long resolved alerts are kept (and re-sent): Prometheus' resolvedRetention. */
#define RG_ALERT_RESOLVED_RETENTION_MS (15 * 60 * 1000)
/** Prometheus' default --rules.alert.resend-delay. */
#define RG_ALERT_DEFAULT_RESEND_DELAY_MS (60 * 1000)

enum rg_alert_state {
    RG_ALERT_INACTIVE = 0,   /* resolved (kept for the retention) */
    RG_ALERT_PENDING,
    RG_ALERT_FIRING,
};

/** "inactive", "pending" or "firing". */
const char *rg_alert_state_name(enum rg_alert_state s);

struct rg_alert {
    struct rg_label *labels;        /* owned strings; sorted by name; includes alertname */
    size_t nlabels;
    struct rg_label *annotations;   /* owned strings; sorted by name */
    size_t nannotations;
    enum rg_alert_state state;
    double value;                   /* the sample value of the last evaluation */
    int64_t active_at;              /* ms; when it became pending */
    int64_t fired_at;               /* ms; 0 until firing */
    int64_t resolved_at;            /* ms; 0 unless resolved */
    int64_t keep_firing_since;      /* ms; 0 unless held by keep_firing_for */
    int64_t last_sent_at;           /* ms; 0 until sent */
    int64_t valid_until;            /* ms; EndsAt of the last send while not resolved */
};

/** StartsAt of a notification for @a (fired_at). */
int64_t rg_alert_starts_at(const struct rg_alert *a);
/** EndsAt of a notification for @a (resolved_at if resolved, else valid_until). */
int64_t rg_alert_ends_at(const struct rg_alert *a);

/** One candidate of an evaluation: the final alert labels (need not be sorted, no
 *  duplicate names), expanded annotations and the sample value. Borrowed by
 *  rg_alert_set_eval(), which copies what it keeps. */
struct rg_alert_input {
    struct rg_label *labels;
    size_t nlabels;
    struct rg_label *annotations;
    size_t nannotations;
    double value;
};

/** The alerts of one alerting rule, sorted by label set. Zero-initialised is an
 *  empty set. */
struct rg_alert_set {
    struct rg_alert *alerts;        /* owned */
    size_t n, cap;
};

/** The rule settings an evaluation needs. */
struct rg_alert_params {
    int64_t for_ms;                 /* hold duration */
    int64_t keep_firing_for_ms;     /* 0 = off */
    int64_t limit;                  /* max active (pending or firing) alerts; 0 = none */
};

/** Frees every alert; the set is empty and reusable afterwards. NULL is a no-op. */
void rg_alert_set_cleanup(struct rg_alert_set *s);

/** One evaluation at @ts_ms with the candidates @in (reordered in place; their
 *  strings are copied). Returns 0; RG_EEXEC with "vector contains metrics with the
 *  same labelset after applying alert labels" in @err (state untouched); RG_ELIMIT
 *  with "exceeded limit of L with N alerts" (every alert cleared); RG_ENOMEM. */
int rg_alert_set_eval(struct rg_alert_set *s, const struct rg_alert_params *p, int64_t ts_ms,
                      struct rg_alert_input *in, size_t n, struct rg_buf *err);

/** Number of alerts in @state. */
size_t rg_alert_set_count(const struct rg_alert_set *s, enum rg_alert_state state);

/** Prometheus' needsSending. */
int rg_alert_needs_sending(const struct rg_alert *a, int64_t ts_ms, int64_t resend_delay_ms);

/** Prometheus' sendAlerts bookkeeping: for every alert that needs sending at @ts_ms,
 *  sets last_sent_at = ts and valid_until = ts + 4 * max(resend delay, interval),
 *  then calls @cb with it (borrowed for the call). Returns how many were sent. */
size_t rg_alert_set_send(struct rg_alert_set *s, int64_t ts_ms, int64_t resend_delay_ms,
                         int64_t interval_ms,
                         void (*cb)(const struct rg_alert *a, void *ud), void *ud);

/* ---- Candidates from a query result ---------------------------------------- */

/** What templates see besides the sample: external labels and URL, and the `query`
 *  function's callback (see rules/template.h; NULL: `query` fails). Borrowed. */
struct rg_alert_env {
    const struct rg_label *external_labels;
    size_t nexternal;
    const char *external_url;
    rg_template_query_fn query;
    void *query_ud;
};

/** Builds the candidate for one sample (@labels of the series, @value) of alerting
 *  rule @rule: labels are the sample's without __name__, then @group_labels and the
 *  rule's labels (rule labels win) expanded as templates (an empty result removes
 *  the label), then alertname; annotations expanded. Expansion errors become the
 *  "<error expanding template: ...>" text, as in Prometheus. *@out owns its strings
 *  (rg_alert_input_cleanup). Returns 0 or RG_ENOMEM. */
int rg_alert_input_build(const struct rg_rule *rule, const struct rg_rule_kv *group_labels,
                         size_t ngroup_labels, const struct rg_alert_env *env,
                         const struct rg_label *labels, size_t nlabels, double value,
                         struct rg_alert_input *out);

/** Frees what rg_alert_input_build() made. NULL is a no-op. */
void rg_alert_input_cleanup(struct rg_alert_input *in);

/* ---- Persistence ---------------------------------------------------------- */

/** Appends @s as a JSON array of alert objects:
 *  {"labels":{...},"annotations":{...},"state":"firing","activeAt":ms,"firedAt":ms,
 *   "resolvedAt":ms,"keepFiringSince":ms,"lastSentAt":ms,"validUntil":ms,
 *   "value":"<float>"}. Returns 0 or RG_ENOMEM. */
int rg_alert_set_to_json(const struct rg_alert_set *s, struct rg_buf *out);

/** Replaces the contents of @s with the alerts of a yajl_tree array in the form
 *  above. Malformed entries are skipped with a message appended to @err; returns 0
 *  or RG_ENOMEM. */
int rg_alert_set_from_json(struct rg_alert_set *s, const struct yajl_val_s *array,
                           struct rg_buf *err);

#endif
