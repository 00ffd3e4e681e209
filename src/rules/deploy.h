/* rules/deploy.h - the deployments manager: every deployment judged on every tick.
 *
 * The manager owns the checklist parsed from the configuration and one verdict
 * machine (rules/verdict.h) per deployment. Deployments come from `deployments:`
 * and, with discovery on, from every value of the discovery label (default `job`)
 * found on the store's series, scanned at most every discovery.interval; explicit
 * deployments override discovered ones of the same name, and the database job is
 * never a deployment. A discovered deployment disappears when its label value has
 * left the store (after the retention) and its saved state with it.
 *
 * On each tick (rg_deploy_tick) each deployment's signals are instantiated with its
 * selector - once per phase, then the parsed queries are cached - and evaluated as
 * instant queries on the store: a scalar or a one-element vector is the value, an
 * empty vector is "no data", more than one element or an execution error is a
 * query error. Signals without `<selector>` (database_up, ...) are evaluated once
 * per tick for all deployments, and so are, for discovered deployments, signals whose
 * aggregations can be grouped by the discovery label without changing their meaning
 * (one query with `by (job)` instead of one per job). The verdict machine then
 * steps, and the results are written back as series so that the query API serves
 * them:
 *
 *   rollgate_deployment_verdict{deployment,phase,verdict}   1 for the current verdict,
 *                                                           0 for the other three
 *   rollgate_check_value{deployment,phase,check,kind}      the check's signal value
 *   rollgate_check_threshold{deployment,phase,check,kind}  its threshold
 *
 * and the same families are kept in the metrics registry for /metrics. A check
 * without data gets a stale marker, as does every series of a phase that was left.
 *
 * Events (verdict changes, phase starts, human triggers, resets) go to a callback
 * with a stable deduplication key "<deployment>/<phase>/<phase start ms>/<verdict>"
 * (or ".../phase_started", ".../human_trigger", ".../reset"), so a notifier sees
 * each decision once even across restarts. The state that must survive a restart
 * (phase, phase start, latched rollback and its reason, human trigger) is saved to a
 * JSON file with rg_file_write_atomic() whenever it changes, and restored when the
 * manager is created; an unreadable or corrupt file is logged and ignored.
 *
 * Query mode: a deployment or a signal with `source: NAME` (a server of the
 * `sources:` section) is evaluated on that server through the query client
 * (query/client.h) with the same semantics as on the store (value extraction, no
 * data, request count, baseline). The tick evaluates a deployment's local signals,
 * sends its remote queries at the tick's time aligned down to the evaluation
 * interval (the client subtracts the source's query_offset) and returns; the
 * verdict steps, with the tick's time, when all of the deployment's answers are in.
 * A failed or timed-out query makes the check's state no_data with the error as its
 * "error", so that the verdict becomes inconclusive once the errors last longer
 * than the phase's no_data_timeout. While a deployment's answers are still out its
 * next ticks are skipped. A signal's source wins over its deployment's; signals of
 * remote deployments are neither shared between deployments nor batched.
 *
 * Loop thread only, like the store. The only I/O is the state file and, with
 * sources, the client's requests.
 */
#ifndef RG_RULES_DEPLOY_H
#define RG_RULES_DEPLOY_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "rules/checklist.h"
#include "rules/verdict.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/metrics.h"

struct rg_deploy;   /* opaque */
struct rg_query_client;
struct rg_query_sources;

enum rg_deploy_event_kind {
    RG_DEPLOY_EVENT_PHASE_STARTED,   /* a phase was started or advanced through the API */
    RG_DEPLOY_EVENT_VERDICT,         /* the verdict changed (hold, inconclusive) */
    RG_DEPLOY_EVENT_PROMOTE,         /* the verdict became promote */
    RG_DEPLOY_EVENT_ROLLBACK,        /* the verdict became rollback through a check */
    RG_DEPLOY_EVENT_HUMAN_TRIGGER,   /* a human raised a rollback trigger */
    RG_DEPLOY_EVENT_RESET,           /* the deployment was reset to its first phase */
};

/** One event; every pointer is borrowed for the duration of the callback. */
struct rg_deploy_event {
    enum rg_deploy_event_kind kind;
    const char *deployment;
    const char *phase;
    enum rg_verdict_kind verdict;    /* after the event */
    enum rg_verdict_kind previous;   /* before it */
    const char *reason;              /* the verdict's reason, or the human's */
    int64_t at_ms;
    const char *key;                 /* stable deduplication key */
    const struct rg_verdict *state;  /* the whole verdict with its checks */
};

typedef void (*rg_deploy_event_cb)(const struct rg_deploy_event *ev, void *ud);

/** Creates the manager for @cfg's checklist (parsed here: problems are appended to
 *  @err as "file:line:col: message" lines and RG_EINVAL is returned). Borrows
 *  @store and @metrics (may be NULL: no /metrics families) for the manager's life.
 *  @state_path (copied; NULL: nothing saved) is the JSON file of saved state,
 *  normally "<data dir>/deployments.json"; it is read here. @now_ms starts the
 *  explicit deployments that have no saved state in their first phase.
 *  Returns 0, RG_EINVAL or RG_ENOMEM. */
int rg_deploy_new(const struct rg_config *cfg, struct rg_store *store,
                  struct rg_metrics *metrics, const char *state_path, int64_t now_ms,
                  struct rg_deploy **out, struct rg_buf *err);

/** Options of rg_deploy_new_opts(); zero fields are the defaults. */
struct rg_deploy_opts {
    const char *state_path;                  /* as rg_deploy_new()'s */
    int64_t now_ms;                          /* as rg_deploy_new()'s */
    struct rg_query_client *client;          /* borrowed; NULL: remote checks fail with
                                              * "no query client" */
    const struct rg_query_sources *sources;  /* borrowed; the names `source:` may use.
                                              * Both must outlive the manager, and the
                                              * set must not grow */
};

/** rg_deploy_new() with query mode: every `source:` of the checklist must name one
 *  of o->sources ("file:line:col: ...: unknown source" in @err and RG_EINVAL
 *  otherwise). */
int rg_deploy_new_opts(const struct rg_config *cfg, struct rg_store *store,
                       struct rg_metrics *metrics, const struct rg_deploy_opts *o,
                       struct rg_deploy **out, struct rg_buf *err);

/** Frees the manager. NULL is a no-op. Rounds of remote queries still out are
 *  detached and their answers dropped; free the manager before the query client. */
void rg_deploy_free(struct rg_deploy *d);

/** Sets (or, with NULL, removes) the query client, for a client created after the
 *  manager; it replaces o->client. Remove it before freeing the client while the
 *  manager lives on. */
void rg_deploy_set_query_client(struct rg_deploy *d, struct rg_query_client *c);

/** Sets the event callback (NULL to remove it). */
void rg_deploy_set_event_cb(struct rg_deploy *d, rg_deploy_event_cb cb, void *ud);

/** The checklist the manager judges with (owned by the manager). */
const struct rg_checklist *rg_deploy_checklist(const struct rg_deploy *d);

/** Evaluates every deployment at @now_ms (scanning for new ones first when the
 *  discovery interval has passed), writes the exported series and saves state that
 *  changed. Returns the time the next tick is due: @now_ms plus the evaluation
 *  interval (global.evaluation_interval, default 1 s). */
int64_t rg_deploy_tick(struct rg_deploy *d, int64_t now_ms);

/** Discovered deployments are evaluated in batches by default: each signal once per
 *  tick for all of them, grouped by the discovery label, when the rewrite cannot
 *  change its meaning. 0 evaluates every deployment's queries separately (for
 *  comparisons in tests and benchmarks). */
void rg_deploy_set_batching(struct rg_deploy *d, int on);

/** The evaluation interval in ms. */
int64_t rg_deploy_interval(const struct rg_deploy *d);

/** Number of deployments. */
size_t rg_deploy_count(const struct rg_deploy *d);

/** The verdict machine of deployment @name, or NULL (borrowed until the next tick
 *  or call that changes deployments). */
const struct rg_verdict *rg_deploy_verdict(const struct rg_deploy *d, const char *name);

/** Appends {"name",...,"checks":[...]} of deployment @name (rg_verdict_json with the
 *  instantiated queries, plus "selector", "baseline_selector", "discovered" and
 *  "phases"). Returns 0, RG_ENOENT or RG_ENOMEM. */
int rg_deploy_json(const struct rg_deploy *d, const char *name, int64_t now_ms,
                   struct rg_buf *out);

/** Appends a JSON array of every deployment, sorted by name, each with name,
 *  phase, phase_index, phase_start, verdict, verdict_since, reason, discovered.
 *  Returns 0 or RG_ENOMEM. */
int rg_deploy_list_json(const struct rg_deploy *d, int64_t now_ms, struct rg_buf *out);

/** Starts phase @phase of deployment @name at @now_ms (advance, or restart the same
 *  phase); the phase must be one of the deployment's phases. Releases a latched
 *  rollback. Returns 0, RG_ENOENT (no such deployment), RG_EINVAL (no such phase for
 *  it) or RG_ENOMEM. */
int rg_deploy_start_phase(struct rg_deploy *d, const char *name, const char *phase,
                          int64_t now_ms);

/** Human rollback trigger on @name with @reason (copied). Returns 0 or RG_ENOENT. */
int rg_deploy_trigger(struct rg_deploy *d, const char *name, const char *reason,
                      int64_t now_ms);

/** Resets @name: back to its first phase, started at @now_ms, rollback released.
 *  Returns 0, RG_ENOENT or RG_ENOMEM. */
int rg_deploy_reset(struct rg_deploy *d, const char *name, int64_t now_ms);

/** Writes the state file now if anything changed since the last write (ticks and the
 *  calls above do this already). Returns 0 or the rg_file_write_atomic() error. */
int rg_deploy_save(struct rg_deploy *d);

#endif
