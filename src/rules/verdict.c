/* rules/verdict.c - the per-deployment verdict state machine (see verdict.h).
 *
 * A step first moves every check to its new state (gates: ok / failing / no_data;
 * triggers: ok / pending / firing / no_data, with Prometheus' `for`), then derives the
 * verdict from the checks by precedence: a latched rollback, a firing trigger, a gate
 * failing at the maximum observation time (all rollback), then gates without data
 * past the bound (inconclusive), then every gate held for the minimum observation
 * (promote, or inconclusive with too few requests), else hold.
 */
#include "rules/verdict.h"

#include "promql/ast.h"
#include "util/err.h"
#include "util/json.h"
#include "util/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const verdict_names[RG_VERDICT__COUNT] = {
    "hold", "promote", "rollback", "inconclusive",
};

const char *rg_verdict_name(enum rg_verdict_kind kind)
{
    return (unsigned)kind < RG_VERDICT__COUNT ? verdict_names[kind] : "?";
}

int rg_verdict_parse(const char *name, enum rg_verdict_kind *out)
{
    for (int i = 0; i < RG_VERDICT__COUNT; i++)
        if (strcmp(name, verdict_names[i]) == 0) {
            *out = (enum rg_verdict_kind)i;
            return 0;
        }
    return RG_EINVAL;
}

const char *rg_verdict_state_name(enum rg_verdict_state state)
{
    static const char *const names[] = { "ok", "failing", "pending", "no_data", "firing" };
    return (unsigned)state < 5 ? names[state] : "?";
}

/* Builds the check array of phase @phase: gates, the phase's triggers, shared ones. */
static int make_checks(const struct rg_checklist *cl, size_t phase, int64_t now_ms,
                       struct rg_verdict_check **out, size_t *n, size_t *ngates)
{
    const struct rg_checklist_phase *ph = &cl->phases[phase];
    size_t total = ph->ngates + ph->ntriggers + cl->ntriggers, k = 0;
    struct rg_verdict_check *c = calloc(total ? total : 1, sizeof(*c));

    if (!c)
        return RG_ENOMEM;
    for (size_t i = 0; i < ph->ngates; i++)
        c[k++].spec = &ph->gates[i];
    for (size_t i = 0; i < ph->ntriggers; i++)
        c[k++].spec = &ph->triggers[i];
    for (size_t i = 0; i < cl->ntriggers; i++)
        c[k++].spec = &cl->triggers[i];
    for (size_t i = 0; i < total; i++) {
        /* Before the first evaluation nothing is known: no data since the start. */
        c[i].state = RG_VERDICT_NO_DATA;
        c[i].since_ms = now_ms;
        c[i].active_ms = now_ms;
    }
    *out = c;
    *n = total;
    *ngates = ph->ngates;
    return 0;
}

int rg_verdict_init(struct rg_verdict *v, const struct rg_checklist *cl, size_t phase,
                    int64_t now_ms)
{
    memset(v, 0, sizeof(*v));
    v->cl = cl;
    return rg_verdict_start_phase(v, phase, now_ms);
}

void rg_verdict_cleanup(struct rg_verdict *v)
{
    if (!v)
        return;
    free(v->checks);
    v->checks = NULL;
    v->nchecks = 0;
}

int rg_verdict_start_phase(struct rg_verdict *v, size_t phase, int64_t now_ms)
{
    struct rg_verdict_check *checks;
    size_t n, ng;
    int rc;

    if (phase >= v->cl->nphases)
        return RG_EINVAL;
    if ((rc = make_checks(v->cl, phase, now_ms, &checks, &n, &ng)))
        return rc;
    free(v->checks);
    v->checks = checks;
    v->nchecks = n;
    v->ngates = ng;
    v->phase = phase;
    v->phase_start_ms = now_ms;
    v->verdict = RG_VERDICT_HOLD;
    v->verdict_since_ms = now_ms;
    v->sticky = 0;
    v->human_reason[0] = '\0';
    v->has_requests = 0;
    v->requests = 0;
    v->steps = 0;
    snprintf(v->reason, sizeof(v->reason), "phase %s started", v->cl->phases[phase].name);
    return 0;
}

static void set_state(struct rg_verdict_check *c, enum rg_verdict_state s, int64_t now_ms)
{
    if (c->state != s) {
        c->state = s;
        c->since_ms = now_ms;
    }
}

/* "no worse than the baseline by more than the margin", worse meaning further on
 * the failing side of @op (higher for < and <=, lower for > and >=). */
static int baseline_holds(const struct rg_checklist_check *s, double v, double base)
{
    double limit;
    int higher_is_worse = s->op == RG_CHECKLIST_LT || s->op == RG_CHECKLIST_LE;

    if (s->baseline_relative)
        limit = higher_is_worse ? base + fabs(base) * s->baseline_margin
                                : base - fabs(base) * s->baseline_margin;
    else
        limit = higher_is_worse ? base + s->baseline_margin : base - s->baseline_margin;
    return higher_is_worse ? v <= limit : v >= limit;
}

static void step_check(struct rg_verdict_check *c, int64_t now_ms,
                       const struct rg_verdict_input *in)
{
    const struct rg_checklist_check *s = c->spec;
    int data = in->has_value && !isnan(in->value) && !in->error;
    int base = in->has_baseline && !isnan(in->baseline) && !in->error;
    int holds;

    c->has_value = data;
    c->value = data ? in->value : 0;
    c->has_baseline = base;
    c->baseline = base ? in->baseline : 0;
    if (in->error)
        snprintf(c->error, sizeof(c->error), "%s", in->error);
    else
        c->error[0] = '\0';
    /* A baseline comparison without the baseline's value cannot be judged. */
    if (data && s->has_baseline && !base)
        data = 0;

    if (s->kind == RG_CHECKLIST_GATE) {
        if (!data) {
            set_state(c, s->no_data == RG_CHECKLIST_NODATA_OK ? RG_VERDICT_OK
                         : s->no_data == RG_CHECKLIST_NODATA_FAILING ? RG_VERDICT_FAILING
                         : RG_VERDICT_NO_DATA, now_ms);
            return;
        }
        holds = (!s->has_threshold || rg_checklist_compare(s->op, c->value, s->threshold)) &&
                (!s->has_baseline || baseline_holds(s, c->value, c->baseline));
        set_state(c, holds ? RG_VERDICT_OK : RG_VERDICT_FAILING, now_ms);
        return;
    }
    if (!data) {
        set_state(c, RG_VERDICT_NO_DATA, now_ms);
        return;
    }
    if (!rg_checklist_compare(s->op, c->value, s->threshold)) {
        set_state(c, RG_VERDICT_OK, now_ms);
        return;
    }
    if (c->state != RG_VERDICT_PENDING && c->state != RG_VERDICT_FIRING)
        c->active_ms = now_ms;
    if (now_ms - c->active_ms >= s->for_ms)
        set_state(c, RG_VERDICT_FIRING, now_ms);
    else
        set_state(c, RG_VERDICT_PENDING, now_ms);
}

static void fmt_num(char *out, size_t cap, double v)
{
    struct rg_buf b = { 0 };

    rg_metrics_format_value(v, &b);
    snprintf(out, cap, "%s", b.data ? b.data : "?");
    rg_buf_cleanup(&b);
}

static void fmt_dur(char *out, size_t cap, int64_t ms)
{
    struct rg_buf b = { 0 };

    rg_promql_format_duration(ms, &b);
    snprintf(out, cap, "%s", b.data ? b.data : "?");
    rg_buf_cleanup(&b);
}

static void set_verdict(struct rg_verdict *v, enum rg_verdict_kind k, int64_t now_ms)
{
    if (v->verdict != k) {
        v->verdict = k;
        v->verdict_since_ms = now_ms;
    }
}

enum rg_verdict_kind rg_verdict_step(struct rg_verdict *v, int64_t now_ms,
                                     const struct rg_verdict_input *in,
                                     const struct rg_verdict_input *requests)
{
    const struct rg_checklist_phase *ph = &v->cl->phases[v->phase];
    int64_t elapsed = now_ms - v->phase_start_ms;
    int64_t held_from = v->phase_start_ms;
    const struct rg_verdict_check *worst = NULL;
    char a[64], b[64], c[64];
    int all_ok = 1;

    for (size_t i = 0; i < v->nchecks; i++)
        step_check(&v->checks[i], now_ms, &in[i]);
    v->has_requests = requests && requests->has_value && !isnan(requests->value) &&
                      !requests->error;
    v->requests = v->has_requests ? requests->value : 0;
    v->steps++;

    if (v->sticky)
        return v->verdict;

    for (size_t i = v->ngates; i < v->nchecks; i++) {
        const struct rg_verdict_check *t = &v->checks[i];
        if (t->state != RG_VERDICT_FIRING)
            continue;
        fmt_num(a, sizeof(a), t->value);
        fmt_num(b, sizeof(b), t->spec->threshold);
        fmt_dur(c, sizeof(c), now_ms - t->active_ms);
        snprintf(v->reason, sizeof(v->reason), "trigger %s fired: %s = %s %s %s for %s",
                 t->spec->name, t->spec->signal, a, rg_checklist_op_name(t->spec->op), b, c);
        set_verdict(v, RG_VERDICT_ROLLBACK, now_ms);
        v->sticky = 1;
        return v->verdict;
    }

    for (size_t i = 0; i < v->ngates; i++) {
        const struct rg_verdict_check *g = &v->checks[i];
        if (g->state != RG_VERDICT_OK) {
            all_ok = 0;
            if (!worst || (g->state == RG_VERDICT_FAILING && worst->state != RG_VERDICT_FAILING))
                worst = g;
        } else if (g->since_ms > held_from) {
            held_from = g->since_ms;
        }
    }

    if (ph->max_observation_ms > 0 && elapsed >= ph->max_observation_ms) {
        for (size_t i = 0; i < v->ngates; i++) {
            const struct rg_verdict_check *g = &v->checks[i];
            if (g->state != RG_VERDICT_FAILING)
                continue;
            fmt_dur(a, sizeof(a), ph->max_observation_ms);
            if (g->has_value)
                fmt_num(b, sizeof(b), g->value);
            else
                snprintf(b, sizeof(b), "no data");
            snprintf(v->reason, sizeof(v->reason),
                     "gate %s still failing at the maximum observation time %s: %s = %s",
                     g->spec->name, a, g->spec->signal, b);
            set_verdict(v, RG_VERDICT_ROLLBACK, now_ms);
            v->sticky = 1;
            return v->verdict;
        }
    }

    for (size_t i = 0; i < v->ngates; i++) {
        const struct rg_verdict_check *g = &v->checks[i];
        if (g->state != RG_VERDICT_NO_DATA || now_ms - g->since_ms < ph->no_data_timeout_ms)
            continue;
        fmt_dur(a, sizeof(a), now_ms - g->since_ms);
        if (g->error[0])
            snprintf(v->reason, sizeof(v->reason), "gate %s: query failing for %s: %s",
                     g->spec->name, a, g->error);
        else
            snprintf(v->reason, sizeof(v->reason), "gate %s: signal %s has had no data for %s",
                     g->spec->name, g->spec->signal, a);
        set_verdict(v, RG_VERDICT_INCONCLUSIVE, now_ms);
        return v->verdict;
    }

    if (all_ok && now_ms - held_from >= ph->min_observation_ms) {
        fmt_dur(a, sizeof(a), now_ms - held_from);
        fmt_num(b, sizeof(b), v->requests);
        fmt_num(c, sizeof(c), ph->min_requests);
        if (ph->min_requests > 0 && v->requests < ph->min_requests) {
            snprintf(v->reason, sizeof(v->reason),
                     "too few requests to judge: %s of the %s needed (gates held for %s)",
                     v->has_requests ? b : "no data on", c, a);
            set_verdict(v, RG_VERDICT_INCONCLUSIVE, now_ms);
            return v->verdict;
        }
        snprintf(v->reason, sizeof(v->reason), "every gate held for %s with %s requests", a,
                 b);
        set_verdict(v, RG_VERDICT_PROMOTE, now_ms);
        return v->verdict;
    }

    if (worst) {
        if (worst->has_value)
            fmt_num(a, sizeof(a), worst->value);
        snprintf(v->reason, sizeof(v->reason), "observing: gate %s is %s%s%s", worst->spec->name,
                 rg_verdict_state_name(worst->state), worst->has_value ? ": value " : "",
                 worst->has_value ? a : "");
    } else {
        fmt_dur(a, sizeof(a), now_ms - held_from);
        fmt_dur(b, sizeof(b), ph->min_observation_ms);
        snprintf(v->reason, sizeof(v->reason), "observing: gates held for %s of %s", a, b);
    }
    set_verdict(v, RG_VERDICT_HOLD, now_ms);
    return v->verdict;
}

void rg_verdict_trigger(struct rg_verdict *v, int64_t now_ms, const char *reason)
{
    snprintf(v->human_reason, sizeof(v->human_reason), "%s", reason ? reason : "");
    snprintf(v->reason, sizeof(v->reason), "human trigger: %s", v->human_reason);
    set_verdict(v, RG_VERDICT_ROLLBACK, now_ms);
    v->sticky = 1;
}

void rg_verdict_restore_rollback(struct rg_verdict *v, int64_t since_ms, const char *reason,
                                 const char *human_reason)
{
    v->verdict = RG_VERDICT_ROLLBACK;
    v->verdict_since_ms = since_ms;
    v->sticky = 1;
    snprintf(v->reason, sizeof(v->reason), "%s", reason ? reason : "");
    snprintf(v->human_reason, sizeof(v->human_reason), "%s", human_reason ? human_reason : "");
}

/* ---- JSON ------------------------------------------------------------------------ */

static void json_time(struct rg_buf *out, int64_t ms)
{
    rg_buf_printf(out, "%.3f", (double)ms / 1000.0);
}

int rg_verdict_json(const struct rg_verdict *v, const char *name,
                    const char *const *queries, int64_t now_ms, struct rg_buf *out)
{
    const struct rg_checklist_phase *ph = &v->cl->phases[v->phase];
    size_t before = out->len;

    rg_buf_puts(out, "{\"name\":");
    rg_json_cstr(out, name);
    rg_buf_puts(out, ",\"phase\":");
    rg_json_cstr(out, ph->name);
    rg_buf_printf(out, ",\"phase_index\":%zu,\"traffic_weight\":", v->phase);
    rg_json_number(out, ph->traffic_weight);
    rg_buf_puts(out, ",\"phase_start\":");
    json_time(out, v->phase_start_ms);
    rg_buf_puts(out, ",\"time_in_phase\":");
    json_time(out, now_ms - v->phase_start_ms);
    rg_buf_puts(out, ",\"min_observation\":");
    json_time(out, ph->min_observation_ms);
    rg_buf_puts(out, ",\"max_observation\":");
    if (ph->max_observation_ms)
        json_time(out, ph->max_observation_ms);
    else
        rg_buf_puts(out, "null");
    rg_buf_printf(out, ",\"verdict\":\"%s\",\"verdict_since\":", rg_verdict_name(v->verdict));
    json_time(out, v->verdict_since_ms);
    rg_buf_puts(out, ",\"reason\":");
    rg_json_cstr(out, v->reason);
    rg_buf_puts(out, ",\"human_trigger\":");
    if (v->human_reason[0])
        rg_json_cstr(out, v->human_reason);
    else
        rg_buf_puts(out, "null");
    rg_buf_puts(out, ",\"requests\":");
    rg_json_number(out, v->has_requests ? v->requests : NAN);
    rg_buf_puts(out, ",\"min_requests\":");
    rg_json_number(out, ph->min_requests);
    rg_buf_puts(out, ",\"checks\":[");
    for (size_t i = 0; i < v->nchecks; i++) {
        const struct rg_verdict_check *c = &v->checks[i];
        const struct rg_checklist_check *s = c->spec;
        if (i)
            rg_buf_putc(out, ',');
        rg_buf_puts(out, "{\"name\":");
        rg_json_cstr(out, s->name);
        rg_buf_printf(out, ",\"kind\":\"%s\",\"signal\":", rg_checklist_kind_name(s->kind));
        rg_json_cstr(out, s->signal);
        rg_buf_puts(out, ",\"op\":");
        rg_json_cstr(out, rg_checklist_op_name(s->op));
        rg_buf_puts(out, ",\"threshold\":");
        rg_json_number(out, s->has_threshold ? s->threshold : NAN);
        if (s->has_baseline) {
            rg_buf_puts(out, ",\"baseline_margin\":");
            rg_json_number(out, s->baseline_margin);
            rg_buf_printf(out, ",\"baseline_relative\":%s,\"baseline\":",
                          s->baseline_relative ? "true" : "false");
            rg_json_number(out, c->has_baseline ? c->baseline : NAN);
        }
        rg_buf_puts(out, ",\"value\":");
        rg_json_number(out, c->has_value ? c->value : NAN);
        rg_buf_printf(out, ",\"state\":\"%s\",\"since\":", rg_verdict_state_name(c->state));
        json_time(out, c->since_ms);
        if (s->kind == RG_CHECKLIST_TRIGGER) {
            rg_buf_puts(out, ",\"for\":");
            json_time(out, s->for_ms);
        }
        rg_buf_puts(out, ",\"error\":");
        if (c->error[0])
            rg_json_cstr(out, c->error);
        else
            rg_buf_puts(out, "null");
        rg_buf_puts(out, ",\"description\":");
        rg_json_cstr(out, s->description);
        if (queries && queries[i]) {
            rg_buf_puts(out, ",\"query\":");
            rg_json_cstr(out, queries[i]);
        }
        rg_buf_putc(out, '}');
    }
    rg_buf_puts(out, "]}");
    if (!out->data || out->len == before)
        return RG_ENOMEM;
    return 0;
}
