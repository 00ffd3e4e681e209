/* rules/verdict.h - the per-deployment verdict state machine.
 *
 * A deployment is always in one phase of the checklist. Each evaluation (a "step")
 * feeds the current value of every check's signal - the phase's gates, then the
 * phase's own triggers, then the shared triggers - and the request count, and the
 * machine answers with one of four verdicts:
 *
 *   promote       every gate has held continuously for the phase's minimum
 *                 observation time and at least min_requests requests were served;
 *   hold          still observing;
 *   rollback      a trigger held for its `for`, or a gate was still failing when the
 *                 phase's maximum observation time was reached, or a human raised a
 *                 trigger. Rollback is sticky: it stays until a phase is started
 *                 (which is also how a deployment is reset);
 *   inconclusive  the gates held long enough but too few requests were served, or a
 *                 gate has had no data (or only query errors) for longer than the
 *                 phase's no_data_timeout.
 *
 * Every check carries its value (or none), threshold, comparison, state (ok, failing,
 * pending, no_data, firing) and the time its state began, so that each verdict can be
 * explained. A gate's "held continuously" clock is the time its state became ok: any
 * failure (or no data, unless the gate's no_data policy is ok) restarts it. Triggers
 * follow Prometheus' `for`: pending while the condition holds for less than `for`,
 * firing afterwards, back to ok as soon as it stops holding.
 *
 * Pure: no I/O and no clock; the caller passes the time (ms) with every call, so
 * tests drive it with virtual time. Not thread-safe; one owner per machine.
 */
#ifndef RG_RULES_VERDICT_H
#define RG_RULES_VERDICT_H

#include <stddef.h>
#include <stdint.h>

#include "rules/checklist.h"
#include "util/buf.h"

enum rg_verdict_kind {
    RG_VERDICT_HOLD,
    RG_VERDICT_PROMOTE,
    RG_VERDICT_ROLLBACK,
    RG_VERDICT_INCONCLUSIVE,
};
#define RG_VERDICT__COUNT 4

enum rg_verdict_state {
    RG_VERDICT_OK,        /* gate holds / trigger condition false */
    RG_VERDICT_FAILING,   /* gate does not hold */
    RG_VERDICT_PENDING,   /* trigger condition true for less than `for` */
    RG_VERDICT_NO_DATA,   /* no value (empty result, NaN or a query error) */
    RG_VERDICT_FIRING,    /* trigger condition true for `for` or longer */
};

/** One evaluation of a check's signal, as the caller measured it. */
struct rg_verdict_input {
    int has_value;        /* 0: empty result */
    double value;         /* NaN counts as no data */
    int has_baseline;     /* gates with a baseline comparison: the baseline's value */
    double baseline;
    const char *error;    /* query error message, or NULL; borrowed during the step */
};

struct rg_verdict_check {
    const struct rg_checklist_check *spec;   /* borrowed from the checklist */
    int has_value;
    double value;
    int has_baseline;
    double baseline;
    enum rg_verdict_state state;
    int64_t since_ms;     /* when @state began */
    int64_t active_ms;    /* triggers: when the condition started holding (pending start) */
    char error[256];      /* last query error, "" when the last evaluation succeeded */
};

struct rg_verdict {
    const struct rg_checklist *cl;           /* borrowed */
    size_t phase;                            /* index into cl->phases */
    int64_t phase_start_ms;
    enum rg_verdict_kind verdict;
    int64_t verdict_since_ms;                /* when @verdict was first given */
    int sticky;                              /* 1 while a rollback is latched */
    char reason[512];                        /* why @verdict, one sentence */
    char human_reason[256];                  /* human trigger's reason, or "" */
    struct rg_verdict_check *checks;         /* owned: gates, phase triggers, shared triggers */
    size_t nchecks;
    size_t ngates;                           /* checks[0 .. ngates) are the gates */
    int has_requests;
    double requests;                         /* last request count, when has_requests */
    int64_t steps;                           /* evaluations so far in this phase */
};

/** Prepares @v in phase @phase of @cl (borrowed for the life of @v), started at
 *  @now_ms, verdict hold. Returns 0, RG_EINVAL (no such phase) or RG_ENOMEM. */
int rg_verdict_init(struct rg_verdict *v, const struct rg_checklist *cl, size_t phase,
                    int64_t now_ms);

/** Frees what @v owns. NULL is a no-op. */
void rg_verdict_cleanup(struct rg_verdict *v);

/** Starts (or restarts) phase @phase at @now_ms: check states are cleared, a latched
 *  rollback and a human trigger are released, the verdict is hold. Used for phase
 *  advance and for reset. Returns 0, RG_EINVAL or RG_ENOMEM (@v unchanged then). */
int rg_verdict_start_phase(struct rg_verdict *v, size_t phase, int64_t now_ms);

/** One evaluation at @now_ms. @in holds v->nchecks inputs in the order of
 *  v->checks; @requests is the request count (has_value 0 when unknown). Returns the
 *  new verdict (also in v->verdict). */
enum rg_verdict_kind rg_verdict_step(struct rg_verdict *v, int64_t now_ms,
                                     const struct rg_verdict_input *in,
                                     const struct rg_verdict_input *requests);

/** A human rollback trigger with @reason (copied, truncated to 255 bytes): the
 *  verdict becomes rollback at once and stays so until a phase is started. */
void rg_verdict_trigger(struct rg_verdict *v, int64_t now_ms, const char *reason);

/** Latches a rollback restored from saved state (@reason copied). */
void rg_verdict_restore_rollback(struct rg_verdict *v, int64_t since_ms, const char *reason,
                                 const char *human_reason);

/** "hold", "promote", "rollback", "inconclusive". */
const char *rg_verdict_name(enum rg_verdict_kind kind);
/** Parses a verdict name; returns 0 or RG_EINVAL. */
int rg_verdict_parse(const char *name, enum rg_verdict_kind *out);
/** "ok", "failing", "pending", "no_data", "firing". */
const char *rg_verdict_state_name(enum rg_verdict_state state);

/** Appends the JSON object of @v for deployment @name at @now_ms (@queries, may be
 *  NULL, holds each check's instantiated PromQL, in the order of v->checks):
 *  {"name","phase","phase_index","traffic_weight","phase_start","time_in_phase",
 *   "min_observation","max_observation","verdict","verdict_since","reason",
 *   "human_trigger","requests","min_requests","checks":[{"name","kind","signal",
 *   "op","threshold","baseline_margin","baseline_relative","baseline","value",
 *   "state","since","for","error","description","query"}]}. Times are Unix seconds,
 *  durations seconds; a missing value is null, an infinite one the string "+Inf"
 *  or "-Inf". Returns 0 or RG_ENOMEM. */
int rg_verdict_json(const struct rg_verdict *v, const char *name,
                    const char *const *queries, int64_t now_ms, struct rg_buf *out);

#endif
