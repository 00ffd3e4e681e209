/* query/replay.h - the verdict and alert state machines run over history.
 *
 * "Would this checklist have rolled back last Tuesday's release, and when?" Replay
 * answers it by running, over a past interval [from, to], the same machines the
 * daemon runs live: the verdict machine (rules/verdict.h) of every deployment and
 * the alert state machine (rules/alert.h) of every alerting rule of the
 * configuration's rule files. Instead of one instant query per evaluation it asks
 * one range query per signal (query_range, chunked by the client to the server's
 * points limit) and then steps the machines through the points in time order, in
 * virtual time.
 *
 * Deployments: evaluation k happens at from + k*step. A deployment starts in its
 * first phase at `from`, or in the phases given by "phase at" entries (TIME=PHASE):
 * an entry at or before `from` sets the initial phase and its start time, later ones
 * start that phase at TIME (the machine's rg_verdict_start_phase), effective from the
 * first evaluation at or after TIME. The signals of each phase are range-queried over
 * the evaluations that phase covers; a point belongs to the evaluation nearest to it
 * within half a step (servers may align points to multiples of the step). At each
 * evaluation a query's value is what an instant query would have given: one series
 * with a point is the value, none is no data, several are an error; a failed range
 * query is an error at each of its evaluations, which the machine treats as it
 * treats live query errors.
 *
 * Alerts: each group runs at its own interval (the replay step when the group sets
 * none) from `from`, queries at t - query_offset, and feeds the candidates to
 * rg_alert_set_eval() as the rules manager does. Recording rules are not replayed:
 * their results cannot be written back to the server, so alerting rules that read
 * recorded series see what the server holds. The `query` template function is not
 * available and expands to an error text.
 *
 * The result is a timeline of events (phase starts, check state changes, verdict
 * changes, alert state changes, query errors) sorted by time, and per deployment the
 * first moment its verdict became rollback.
 *
 * Pure: all queries go through the backend of query/eval.h; no clock. Not
 * thread-safe.
 */
#ifndef RG_QUERY_REPLAY_H
#define RG_QUERY_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "query/eval.h"
#include "rules/checklist.h"
#include "rules/manager.h"
#include "rules/rulefile.h"
#include "rules/verdict.h"
#include "util/buf.h"

/** A phase started at a given time (from --phase-at TIME=PHASE). */
struct rg_query_phase_at {
    int64_t t_ms;
    const char *phase;          /* borrowed */
};

struct rg_query_replay_opts {
    int64_t from_ms;
    int64_t to_ms;              /* inclusive */
    int64_t step_ms;            /* > 0 */
    const struct rg_query_phase_at *phase_at;   /* borrowed; any order */
    size_t nphase_at;
    size_t max_steps;           /* evaluations per deployment; 0: 1,000,000 */
    /** Called after each unit of work (one phase of a deployment, one alerting rule)
     *  with the units done and their total. May be NULL. */
    void (*progress)(void *ud, size_t done, size_t total);
    void *progress_ud;
};

enum rg_query_event_kind {
    RG_QUERY_EVENT_PHASE,       /* a phase started */
    RG_QUERY_EVENT_CHECK,       /* a gate or trigger changed state */
    RG_QUERY_EVENT_VERDICT,     /* the verdict changed */
    RG_QUERY_EVENT_ALERT,       /* an alert changed state */
    RG_QUERY_EVENT_ERROR,       /* a query or rule evaluation failed */
};

struct rg_query_event {
    int64_t t_ms;
    enum rg_query_event_kind kind;
    char *subject;              /* owned: the deployment, or the alert's labels without
                                 * alertname as {a="b", ...}, or the rule */
    char *name;                 /* owned: phase, check, verdict "verdict", alertname */
    const char *from;           /* static state names ("" for a phase start) */
    const char *to;
    int has_value;
    double value;
    char *detail;               /* owned: the verdict's reason, the error, or "" */
    size_t seq;                 /* order of creation, for a stable sort */
};

struct rg_query_replay_target {
    char *name;                 /* owned */
    int rolled_back;
    int64_t rollback_ms;        /* the first evaluation with verdict rollback */
    size_t rollback_phase;
    int64_t rollback_phase_start_ms;
    char rollback_reason[512];
    enum rg_verdict_kind final_verdict;
    size_t final_phase;
    char final_reason[512];
    size_t errors;              /* evaluations with a query error in a check */
};

struct rg_query_replay {
    int64_t from_ms, to_ms, step_ms;
    size_t nsteps;              /* evaluations per deployment */
    struct rg_query_event *events;           /* owned; sorted by time */
    size_t nevents;
    struct rg_query_replay_target *targets;  /* owned; in the order given */
    size_t ntargets;
    size_t nrules;              /* alerting rules replayed */
    size_t alerts_fired;        /* transitions to firing */
    size_t nqueries;            /* range queries sent */
    size_t nerrors;             /* range queries that failed */
    long first_rollback;        /* index into targets of the earliest rollback, or -1 */
};

/** Runs the replay of @targets (deployments of @cl) and of the alerting rules of
 *  @files (may be NULL with @nfiles 0; @global may be NULL: no external labels, no
 *  query offset) through @be with the options @o. Everything is borrowed during the
 *  call only. Returns 0; RG_EINVAL with a sentence in @err (a --phase-at phase the
 *  deployment does not go through, from after to, a bad step, too many steps);
 *  RG_ENOMEM. Clean *@out with rg_query_replay_cleanup() in every case. */
int rg_query_replay_run(const struct rg_checklist *cl, const struct rg_query_targets *targets,
                        const struct rg_rulefile *const *files, size_t nfiles,
                        const struct rg_rules_global *global, const struct rg_query_backend *be,
                        const struct rg_query_replay_opts *o, struct rg_query_replay *out,
                        struct rg_buf *err);

/** Frees what @r holds and zeroes it. NULL is a no-op. */
void rg_query_replay_cleanup(struct rg_query_replay *r);

/** Appends the timeline as text, one event per line (RFC 3339 time, subject, what
 *  changed), then a summary with each deployment's first rollback (time, phase, time
 *  into the phase, reason) or final verdict. With @color, verdicts and states are
 *  coloured with ANSI escapes. Returns 0 or RG_ENOMEM. */
int rg_query_replay_text(const struct rg_checklist *cl, const struct rg_query_replay *r,
                         int color, struct rg_buf *out);

/** Appends the replay as JSON: {"from","to","step","steps","queries","query_errors",
 *  "rules","alerts_fired","first_rollback":{"deployment","time","phase","reason"}|null,
 *  "deployments":[{"name","rollback":{"time","phase","after","reason"}|null,
 *  "final_verdict","final_phase","final_reason","errors"}],"events":[{"time","kind",
 *  "subject","name","from","to","value","detail"}]}. Times are Unix seconds.
 *  Returns 0 or RG_ENOMEM. */
int rg_query_replay_json(const struct rg_checklist *cl, const struct rg_query_replay *r,
                         struct rg_buf *out);

#endif
