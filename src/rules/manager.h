/* rules/manager.h - Prometheus rule groups over the store: scheduling, evaluation,
 * recording, ALERTS series, notifications hook, persisted alert state.
 *
 * The manager loads every rule file the configuration names (`rule_files:`, see
 * rules/rulefile.h) and the `global:` section, and owns the state of every group:
 *
 *   - Scheduling follows Prometheus' Group.EvalTimestamp: a group with interval I
 *     runs at the slots k*I + offset, where offset = hash(file, name) % I spreads
 *     groups over the interval. The first evaluation is at the first slot after the
 *     manager's first tick; when ticks come late, missed slots are skipped (counted
 *     in iterations_missed) and the latest due slot is evaluated.
 *   - Each rule of a group runs in order as an instant query at ts - query_offset
 *     (rg_promql_eval_instant). Recording rules write their result back into the
 *     store (metric name replaced, group then rule labels applied), so that later
 *     rules, other groups and the query API see it. Alerting rules run the state
 *     machine of rules/alert.h and write ALERTS{alertname, alertstate, ...} = 1 and
 *     ALERTS_FOR_STATE{alertname, ...} = active_at (Unix seconds). Series written by
 *     a rule in its previous evaluation and missing now get a stale marker, as
 *     Prometheus' Group.Eval does.
 *   - A query error leaves the rule's alert state untouched, sets its health to
 *     "err" with the message as lastError, and is logged.
 *   - A group with `source: NAME` (rollgate's extension to the rule file format,
 *     see rules/rulefile.h) is evaluated on that Prometheus-compatible server
 *     instead of the store: its tick sends every rule's expression as an instant
 *     query (rg_query_instant) at the slot minus the group's query_offset (the
 *     client subtracts the source's own query_offset too) and returns. When the
 *     last answer is in, the results are applied in rule order exactly as local
 *     ones: recording rules write into the store at the query time, so the local
 *     API serves them, and alerting rules run the state machine with the slot as
 *     the evaluation timestamp. A failed or timed-out query leaves that rule's
 *     alerts unchanged and sets health "err" and lastError (the client counts it
 *     in rollgate_query_errors_total{source,reason}). A slot that comes while the
 *     group's previous evaluation is still in flight is skipped and counted in
 *     iterations_missed, as Prometheus does when an evaluation overruns. The
 *     template function `query` is refused in such groups (templates cannot wait
 *     for a server).
 *   - After each group evaluation the notify hook receives the alerts that need
 *     sending (Prometheus' sendAlerts: resend delay, ValidUntil = ts + 4 *
 *     max(resend delay, interval), resolved alerts at once), with StartsAt, EndsAt
 *     and GeneratorURL = external_url + "/graph?g0.expr=" + escaped expr +
 *     "&g0.tab=1".
 *   - With a state path, every alert of every alerting rule (labels, annotations,
 *     state, active_at, fired_at, resolved_at, keep_firing_since, last_sent_at,
 *     valid_until, value) is written to one JSON file with rg_file_write_atomic()
 *     after each tick in which any alert's state or timers changed, and read back by
 *     rg_rules_new(): pending `for` timers and keep_firing_for survive a restart
 *     (see rules/alert.h for the exact semantics). A missing file starts empty; a
 *     corrupt one is logged and ignored.
 *
 * Loop thread only. The manager borrows the store and the configuration for its
 * whole life; the `global` values are copied.
 */
#ifndef RG_RULES_MANAGER_H
#define RG_RULES_MANAGER_H

#include <stddef.h>
#include <stdint.h>

#include "promql/engine.h"
#include "rules/alert.h"
#include "rules/rulefile.h"
#include "store/store.h"
#include "util/buf.h"

struct rg_config;
struct rg_rules;        /* opaque */
struct rg_query_client;
struct rg_query_source;
struct rg_query_sources;

/* ---- The `global:` section ----------------------------------------------- */

/** Prometheus-compatible global settings:
 *
 *   global:
 *     evaluation_interval: 1m     # default group interval (Prometheus' default 1m)
 *     rule_query_offset: 0s       # default query_offset of groups (Prometheus 2.53)
 *     resend_delay: 1m            # Prometheus' --rules.alert.resend-delay
 *     external_url: http://rollgate.example:9201   # for generator URLs and templates
 *     external_labels: {cluster: eu-1}             # $externalLabels in templates
 */
struct rg_rules_global {
    int64_t evaluation_interval_ms;   /* default 60,000 */
    int64_t rule_query_offset_ms;     /* default 0 */
    int64_t resend_delay_ms;          /* default 60,000 */
    char *external_url;               /* owned; "" when unset; no trailing '/' */
    struct rg_label *external_labels; /* owned strings, sorted by name */
    size_t nexternal;
};

/** Reads the `global` section of every configuration document over the defaults
 *  into @out (clean it with rg_rules_global_cleanup, also after an error). Problems
 *  are appended to @err as "file:line:col: message" lines. Returns 0, RG_EPARSE or
 *  RG_ENOMEM. */
int rg_rules_global_parse(const struct rg_config *cfg, struct rg_rules_global *out,
                          struct rg_buf *err);

/** Frees what @g owns. NULL is a no-op. */
void rg_rules_global_cleanup(struct rg_rules_global *g);

/* ---- Manager ------------------------------------------------------------- */

struct rg_rules_opts {
    const char *state_path;            /* alert state file (copied); NULL: not persisted */
    struct rg_promql_opts query;       /* engine options for rule queries */
    uint64_t (*clock_ns)(void);        /* monotonic clock for evaluation durations;
                                        * default rg_mono_ns */
    struct rg_query_client *client;    /* borrowed; NULL: groups with a source fail
                                        * every evaluation with "no query client" */
    const struct rg_query_sources *sources;  /* borrowed (query/client.h); the names
                                        * groups' `source:` may use. NULL: none. Both
                                        * must outlive the manager, and the set must
                                        * not grow (rg_query_sources_add_url) */
};

/** Fills @o with defaults: no state file, rg_promql_opts_default(), rg_mono_ns. */
void rg_rules_opts_default(struct rg_rules_opts *o);

/** One alert to send, as the notifier needs it (Alertmanager's PostableAlert). All
 *  pointers are borrowed for the duration of the callback. */
struct rg_rules_notification {
    const struct rg_label *labels;       /* sorted by name; includes alertname */
    size_t nlabels;
    const struct rg_label *annotations;  /* sorted by name */
    size_t nannotations;
    int64_t starts_at_ms;
    int64_t ends_at_ms;
    const char *generator_url;
};

/** Called after each group evaluation that has alerts to send (n > 0), on the loop
 *  thread. */
typedef void (*rg_rules_notify_cb)(const struct rg_rules_notification *alerts, size_t n,
                                   void *ud);

enum rg_rule_health {
    RG_RULE_HEALTH_UNKNOWN = 0,        /* not evaluated yet */
    RG_RULE_HEALTH_OK,
    RG_RULE_HEALTH_ERR,
};

/** "unknown", "ok" or "err" (Prometheus' API spelling). */
const char *rg_rule_health_name(enum rg_rule_health h);

struct rg__rule_series;

/** The state of one rule, for the API. */
struct rg_rule_state {
    const struct rg_rule *rule;        /* borrowed from the group's file */
    char *query;                       /* owned: canonical expression (rg_promql_print) */
    char *generator_url;               /* owned: see rg_rules_generator_url() */
    struct rg_alert_set alerts;        /* alerting rules: every alert, resolved included */
    enum rg_rule_health health;
    char *last_error;                  /* owned; NULL when healthy */
    int64_t last_eval_ms;              /* evaluation timestamp of the last run; 0 never */
    double eval_seconds;               /* duration of the last run */
    struct rg__rule_series *prev;      /* owned: series written last time (staleness) */
    uint64_t state_fp;                 /* fingerprint of the persisted alert state */
};

/** The state of one group, for the API. */
struct rg_rules_group {
    const struct rg_rule_group *def;   /* borrowed from its file */
    int64_t interval_ms;               /* effective interval */
    int64_t query_offset_ms;           /* effective query offset */
    int64_t offset_ms;                 /* slot offset: hash(file, name) % interval */
    int64_t next_eval_ms;              /* next slot; 0 before the first tick */
    int64_t last_eval_ms;              /* timestamp of the last evaluation; 0 never */
    double eval_seconds;               /* duration of the last evaluation */
    uint64_t iterations;               /* evaluations run */
    uint64_t iterations_missed;        /* slots skipped because ticks came late or
                                        * the previous evaluation was still in flight */
    struct rg_rule_state *rules;       /* owned, one per rule of def */
    size_t nrules;
    const struct rg_query_source *source;   /* borrowed from opts.sources; NULL: the
                                        * store */
    int in_flight;                     /* 1 while a remote evaluation is out */
};

/** Loads the `global` section and every rule file of @cfg, restores alert state from
 *  opts->state_path when it exists, and returns the manager in *@out. A group's
 *  `source:` must name one of opts->sources ("file:line:col: group ...: unknown
 *  source" otherwise, RG_EPARSE). Borrows @cfg
 *  (it must outlive the manager) and @store; copies @opts. Problems in rule files or
 *  the global section are appended to @err as "file:line:col: message" lines and
 *  give RG_EPARSE (or RG_EIO for unreadable files). Returns 0 or an error. */
int rg_rules_new(const struct rg_config *cfg, struct rg_store *store,
                 const struct rg_rules_opts *opts, struct rg_rules **out, struct rg_buf *err);

/** Frees the manager. NULL is a no-op. It does not write the state file: the last
 *  tick that changed anything already did. Remote evaluations still in flight are
 *  detached and their answers dropped; free the manager before the query client. */
void rg_rules_free(struct rg_rules *r);

/** Sets (or, with NULL, removes) the query client of groups with a source, for a
 *  client created after the manager; it replaces opts.client. Remove it before
 *  freeing the client while the manager lives on. */
void rg_rules_set_query_client(struct rg_rules *r, struct rg_query_client *c);

/** Sets the hook that receives alerts to send (NULL to remove it). */
void rg_rules_set_notify(struct rg_rules *r, rg_rules_notify_cb cb, void *ud);

/** Evaluates every group whose slot is due at @now_ms (wall-clock ms) - groups with
 *  a source only send their queries, and are finished by the loop - and returns
 *  the time of the next due slot, INT64_MAX when there are no groups. The caller
 *  (main.c) arms a timer for the returned time and calls again then. */
int64_t rg_rules_tick(struct rg_rules *r, int64_t now_ms);

/** The effective global settings (owned by the manager). */
const struct rg_rules_global *rg_rules_global_get(const struct rg_rules *r);

/** The groups, in configuration order (files in rule_files order, groups in file
 *  order). Borrowed until rg_rules_free(). */
const struct rg_rules_group *rg_rules_groups(const struct rg_rules *r, size_t *n);

/** Validates the `global` section and every rule file of @cfg without building a
 *  manager (for `rollgate check`): problems are appended to @err, one
 *  "file:line:col: message" per line. Returns 0, RG_EPARSE, RG_EIO or RG_ENOMEM. */
int rg_rules_check(const struct rg_config *cfg, struct rg_buf *err);

/** Appends the generator URL of @expr_text (canonical PromQL) for @external_url:
 *  external_url + "/graph?g0.expr=" + url.QueryEscape(expr) + "&g0.tab=1". */
int rg_rules_generator_url(const char *external_url, const char *expr_text, struct rg_buf *out);

/* ---- HTTP (api/rules.c) ---------------------------------------------------- */

struct rg_api;
struct rg_http_request;
struct rg_http_response;

/** Serves GET /api/v1/rules (filters type=alert|record, rule_name[], rule_group[],
 *  file[], exclude_alerts) and GET /api/v1/alerts in Prometheus' JSON form from
 *  api->rules (NULL: empty lists). Returns 1 when @req was one of them (the
 *  response is filled), else 0. */
int rg__api_rules_route(struct rg_api *api, struct rg_http_request *req,
                        struct rg_http_response *res);

#endif
