/* query/eval.h - one-shot evaluation of a deployment's checklist against a query source.
 *
 * Query mode judges a deployment by asking a Prometheus-compatible server instead of
 * the in-memory store. This module holds the logic shared by `rollgate eval`,
 * `rollgate check --source` and `rollgate replay`: which deployments a configuration
 * names, how a query answer becomes a check's input, and the one-shot evaluation.
 *
 * Queries go through a backend: two function pointers (instant and range query),
 * an optional third that answers a batch of queries at once, and their user data.
 * The command line plugs in the HTTP client of query/client.h, whose batch runs the
 * queries concurrently over shared connections; tests plug in a fake that answers
 * from tables, so everything here is pure (no I/O, no clock; every time is a
 * parameter).
 *
 * Batching (prefetch, then evaluate). An evaluation asks its queries one at a time,
 * and which range queries it asks depends on the instant answers. To let a backend
 * run them concurrently without changing the evaluation, rg_query_eval_run_all()
 * evaluates in rounds: each round evaluates the deployments still open against the
 * answers known so far, recording every query whose answer is missing instead of
 * asking it; the recorded queries are then sent as one batch and the round repeats
 * for the deployments that missed something. The first round learns the instant
 * queries, the second their answers and the range queries they call for, the third
 * completes the rare deployment with a pending trigger. A deployment's answer is
 * always the one of an evaluation that found every answer it asked for, so it is
 * exactly the answer of the one-query-at-a-time evaluation.
 *
 * A query answer becomes a check's input exactly as the daemon's deployments manager
 * (rules/deploy.c) does it on the local store: a scalar or a one-element vector is
 * the value, an empty vector is "no data", more than one element is an error (the
 * signal must aggregate), any other type is an error.
 *
 * One-shot semantics. A single evaluation at time T cannot know whether the gates
 * have held for the phase's minimum observation, so `eval` answers a narrower
 * question, "if the deployment were judged at T, what would the checks say?":
 *
 *   - every gate is evaluated once at T, with the verdict machine's own rules (the
 *     threshold, the baseline margin, the gate's no_data policy); the bundled gate
 *     signals are already averages over a window, so a single evaluation is the
 *     state of the gate over that window;
 *   - a trigger without `for` fires when its condition holds at T;
 *   - a trigger with `for` is queried over [T - K*step, T] with a range query, K the
 *     smallest count of steps that covers `for` and step the evaluation interval
 *     (global.evaluation_interval): it fires when the condition held at every point
 *     of that range with no gap longer than one step, which is what the daemon,
 *     evaluating every step, would have concluded at T; when it holds at T only, it
 *     is pending;
 *   - the request count (signal request_count over the phase's window) is queried
 *     when the phase has min_requests.
 *
 * The verdict and the exit code of `eval` follow from the checks, in this order:
 * a firing trigger is `rollback` (exit 1); otherwise any query error makes the
 * answer untrustworthy (`inconclusive`, exit 3); otherwise a failing gate is `hold`
 * (exit 2), a gate without data or fewer requests than min_requests is
 * `inconclusive` (exit 2), and every gate holding is `promote` (exit 0).
 *
 * Not thread-safe; one evaluation at a time per result.
 */
#ifndef RG_QUERY_EVAL_H
#define RG_QUERY_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "query/response.h"
#include "rules/checklist.h"
#include "rules/verdict.h"
#include "util/buf.h"

/** Exit codes of `rollgate eval` (and the summary of a one-shot evaluation). */
enum rg_query_exit {
    RG_QUERY_EXIT_PASS = 0,       /* every gate holds, enough requests */
    RG_QUERY_EXIT_ROLLBACK = 1,   /* a rollback trigger fires */
    RG_QUERY_EXIT_GATES = 2,      /* a gate fails, or data is insufficient */
    RG_QUERY_EXIT_ERROR = 3,      /* bad configuration, unreachable source, query errors */
};

/** Where queries go. Each function fills *@out (owned by the caller afterwards, free
 *  with rg_query_result_free()) and returns 0, or returns an RG_E* code with a
 *  one-line reason in @errmsg (then *@out holds nothing that needs freeing beyond
 *  rg_query_result_free()). @range may be NULL when only instant queries are used. */
/** One query of a batch and, once answered, its answer. */
struct rg_query_req {
    char *expr;                 /* owned */
    int range;                  /* 0: instant query at t_ms; 1: range query */
    int64_t t_ms;               /* instant: the time; range: the start */
    int64_t end_ms, step_ms;    /* range only */
    int answered;               /* set by the backend */
    int err;                    /* 0 or an RG_E* code, as the single-query functions */
    struct rg_query_result res; /* on success; owned by the request */
    struct rg_buf msg;          /* on failure: the one-line reason */
};

struct rg_query_backend {
    int (*instant)(void *ud, const char *expr, int64_t t_ms, struct rg_query_result *out,
                   struct rg_buf *errmsg);
    int (*range)(void *ud, const char *expr, int64_t start_ms, int64_t end_ms,
                 int64_t step_ms, struct rg_query_result *out, struct rg_buf *errmsg);
    void *ud;
    /** Optional (NULL: the queries are asked one by one through @instant and @range).
     *  Answers every request of @reqs (@n of them) in any order, possibly at once, and
     *  returns when all are answered: each gets answered = 1 and err, res or msg as
     *  the single-query functions would have given them. */
    void (*batch)(void *ud, struct rg_query_req *reqs, size_t n);
};

/** Answers @reqs[0..@n) through @be (its batch, or one by one). */
void rg_query_backend_run(const struct rg_query_backend *be, struct rg_query_req *reqs,
                          size_t n);

/** Frees what @r holds (expr, answer) and zeroes it. NULL is a no-op. */
void rg_query_req_cleanup(struct rg_query_req *r);

/** A deployment to judge: an explicit one of the configuration or, by name, one
 *  that discovery would have made (selector <discovery label>="NAME"). */
struct rg_query_target {
    char *name;                 /* owned */
    char *selector;             /* owned */
    char *baseline_selector;    /* owned; NULL when none */
    size_t *phases;             /* owned; indexes into the checklist's phases */
    size_t nphases;
    int discovered;
};

struct rg_query_targets {
    struct rg_query_target *v;  /* owned */
    size_t n;
};

/** Builds the deployments to judge from @cl (borrowed during the call): with @name
 *  (may be NULL) the explicit deployment of that name, else, with discovery on, the
 *  deployment discovery would make for that label value; without @name every explicit
 *  deployment. Returns 0, RG_ENOENT (with a sentence in @err: no such deployment, or
 *  none configured and no name given) or RG_ENOMEM. Clean *@out with
 *  rg_query_targets_cleanup(), also after an error. */
int rg_query_targets_build(const struct rg_checklist *cl, const char *name,
                           struct rg_query_targets *out, struct rg_buf *err);

/** Discovery through the source, for configurations without explicit deployments:
 *  every value of the discovery label on the request-count metric
 *  (metrics.http_requests) within @lookback_ms before @t_ms becomes a deployment,
 *  as the daemon's discovery would make it from remote-written series (the database
 *  job and discovery.exclude left out), sorted by name. One instant query:
 *  group by (<label>) (count_over_time(<metric>{<label>!=""}[<lookback>])).
 *  Returns 0 (possibly with no deployment), RG_ENOENT with discovery off,
 *  RG_EEXEC when the query failed (the reason in @err), or RG_ENOMEM; clean *@out
 *  with rg_query_targets_cleanup() in every case. */
int rg_query_targets_discover(const struct rg_checklist *cl, const struct rg_query_backend *be,
                              int64_t t_ms, int64_t lookback_ms, struct rg_query_targets *out,
                              struct rg_buf *err);

/** Frees what @t holds and zeroes it. NULL is a no-op. */
void rg_query_targets_cleanup(struct rg_query_targets *t);

/** Index into cl->phases of phase @name for @t (NULL: the target's first phase), or
 *  -1 when @t does not go through that phase. */
long rg_query_target_phase(const struct rg_checklist *cl, const struct rg_query_target *t,
                           const char *name);

/** Turns an instant query answer into a check input, as the daemon does: a scalar or
 *  a one-element vector is the value, an empty vector no data, anything else an error
 *  whose message is written to @errbuf (capacity @cap) and pointed to by in->error. */
void rg_query_value(const struct rg_query_result *res, struct rg_verdict_input *in,
                    char *errbuf, size_t cap);

/** One check of a one-shot evaluation. */
struct rg_query_check {
    const struct rg_checklist_check *spec;   /* borrowed from the checklist */
    char *query;                /* owned: the instantiated signal */
    char *base_query;           /* owned: the baseline variant, or NULL */
    int has_value;
    double value;
    int has_baseline;
    double baseline;
    enum rg_verdict_state state;
    int64_t held_ms;            /* triggers whose condition holds at T: for how long it
                                 * held before T as far as the range query shows (0
                                 * without `for`); -1 otherwise */
    char error[256];            /* the query error, or "" */
};

/** The answer of a one-shot evaluation. */
struct rg_query_eval {
    char *deployment;           /* owned copy of the target's name */
    char *selector;             /* owned copy */
    size_t phase;               /* index into the checklist's phases */
    int64_t t_ms;
    struct rg_query_check *checks;   /* owned: gates, then phase triggers, then shared */
    size_t nchecks;
    size_t ngates;
    int needs_requests;         /* the phase has min_requests */
    int has_requests;
    double requests;
    double min_requests;
    char *requests_query;       /* owned, or NULL */
    char requests_error[256];
    size_t nerrors;             /* queries that failed */
    enum rg_verdict_kind verdict;
    char reason[512];
    int exit_code;              /* enum rg_query_exit */
};

/** Evaluates target @t of @cl in phase @phase (an index of cl->phases) at @t_ms
 *  through @be; triggers with `for` are range-queried with @step_ms (<= 0: the
 *  checklist's evaluation interval). Query failures are part of the answer, not an
 *  error of the call. Returns 0, RG_EINVAL (bad phase) or RG_ENOMEM; clean *@out
 *  with rg_query_eval_cleanup() in every case. */
int rg_query_eval_run(const struct rg_checklist *cl, const struct rg_query_target *t,
                      size_t phase, int64_t t_ms, int64_t step_ms,
                      const struct rg_query_backend *be, struct rg_query_eval *out);

/** Evaluates @n deployments at once: target @targets[i] in phase @phases[i] into
 *  @out[i], exactly as rg_query_eval_run() would, but with the queries of all of them
 *  sent in batches (see "Batching" above), so that a backend with a batch function
 *  runs them concurrently. Returns 0, RG_EINVAL (bad phase) or RG_ENOMEM; clean each
 *  of @out[0..@n) with rg_query_eval_cleanup() in every case. */
int rg_query_eval_run_all(const struct rg_checklist *cl, const struct rg_query_target *targets,
                          const size_t *phases, size_t n, int64_t t_ms, int64_t step_ms,
                          const struct rg_query_backend *be, struct rg_query_eval *out);

/** Frees what @e holds and zeroes it. NULL is a no-op. */
void rg_query_eval_cleanup(struct rg_query_eval *e);

/** Appends the JSON object of @e (for @cl): {"deployment","selector","phase","time",
 *  "verdict","reason","exit_code","requests","min_requests","requests_query",
 *  "errors","checks":[{"name","kind","signal","op","threshold","baseline","value",
 *  "state","for","held","error","description","query"}]}. Times are Unix seconds,
 *  durations seconds, a missing value null. Returns 0 or RG_ENOMEM. */
int rg_query_eval_json(const struct rg_checklist *cl, const struct rg_query_eval *e,
                       struct rg_buf *out);

/** Appends a readable table of @e: a header line with deployment, phase, time and
 *  verdict, then one row per check (kind, name, signal, value, op, threshold,
 *  state), the request count, and the reason. With @color, states and the verdict
 *  are coloured with ANSI escapes. Returns 0 or RG_ENOMEM. */
int rg_query_eval_table(const struct rg_checklist *cl, const struct rg_query_eval *e,
                        int color, struct rg_buf *out);

/** Appends @v for people: shortest round-trip form, "NaN", "+Inf", "-Inf". */
int rg_query_format_value(double v, struct rg_buf *out);

/** Appends @ms as RFC 3339 UTC with seconds, and milliseconds only when not zero. */
int rg_query_format_time(int64_t ms, struct rg_buf *out);

#endif
