/* query/replay.c - verdict and alert machines over history (see replay.h).
 *
 * Each range answer is first laid out on the evaluation grid ("columns": one cell
 * per evaluation holding a value, no data, or the count of series that had a point
 * there), so that stepping the machines is a walk over arrays in time order. Events
 * are collected per deployment and per rule in time order and sorted once at the
 * end with a stable merge (time, then creation order).
 *
 * Prefetching. Before a deployment is stepped, every range query it will ask (the
 * signals of each phase segment, laid out as run_target() cuts them) is sent as one
 * batch through the backend, which may run them concurrently; alerting rules are
 * prefetched likewise, RULE_WAVE rules at a time. Stepping then takes each answer
 * from the prefetched ones (moving it out) and asks the backend only for a query the
 * plan did not foresee, so the plan affects speed, never the outcome. Answers are
 * held for one deployment (or one wave of rules) at a time: at most that
 * deployment's answers plus its columns, where a walk asking one query at a time
 * held one answer plus the columns.
 */
#include "query/replay.h"

#include "promql/ast.h"
#include "rules/alert.h"
#include "util/err.h"
#include "util/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_STEPS 1000000
#define RULE_WAVE 16

/* One query laid out on the evaluation grid. */
struct column {
    char *query;               /* owned */
    double *v;                 /* owned; value per evaluation */
    unsigned *count;           /* owned; series with a point at each evaluation */
    char error[256];           /* the range query's error, or "" */
};

struct ctx {
    const struct rg_checklist *cl;
    const struct rg_query_backend *be;
    const struct rg_query_replay_opts *o;
    struct rg_query_replay *out;
    size_t cap;                /* events allocated */
    size_t seq;
    size_t done, total;        /* progress units */
    struct rg_query_req *pre;  /* prefetched answers (owned); taken ones have no expr */
    size_t npre, cappre;
};

/* ---- events -------------------------------------------------------------------------- */

static int event(struct ctx *c, int64_t t, enum rg_query_event_kind kind, const char *subject,
                 const char *name, const char *from, const char *to, int has_value,
                 double value, const char *detail)
{
    struct rg_query_replay *r = c->out;
    struct rg_query_event *e;

    if (r->nevents == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct rg_query_event *a = realloc(r->events, cap * sizeof(*a));
        if (!a)
            return RG_ENOMEM;
        r->events = a;
        c->cap = cap;
    }
    e = &r->events[r->nevents];
    memset(e, 0, sizeof(*e));
    e->t_ms = t;
    e->kind = kind;
    e->from = from;
    e->to = to;
    e->has_value = has_value;
    e->value = value;
    e->seq = c->seq++;
    e->subject = strdup(subject);
    e->name = strdup(name);
    e->detail = strdup(detail ? detail : "");
    if (!e->subject || !e->name || !e->detail) {
        free(e->subject);
        free(e->name);
        free(e->detail);
        return RG_ENOMEM;
    }
    r->nevents++;
    return 0;
}

static int event_cmp(const void *a, const void *b)
{
    const struct rg_query_event *x = a, *y = b;

    if (x->t_ms != y->t_ms)
        return x->t_ms < y->t_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void progress(struct ctx *c)
{
    c->done++;
    if (c->o->progress)
        c->o->progress(c->o->progress_ud, c->done, c->total);
}

/* ---- prefetching ---------------------------------------------------------------------- */

static void pre_clear(struct ctx *c)
{
    for (size_t i = 0; i < c->npre; i++)
        rg_query_req_cleanup(&c->pre[i]);
    c->npre = 0;
}

/* Plans range query @expr over [a, b] every @step (once). Returns 0 or RG_ENOMEM. */
static int pre_add(struct ctx *c, const char *expr, int64_t a, int64_t b, int64_t step)
{
    struct rg_query_req *r;

    for (size_t i = 0; i < c->npre; i++) {
        r = &c->pre[i];
        if (r->t_ms == a && r->end_ms == b && r->step_ms == step && !strcmp(r->expr, expr))
            return 0;
    }
    if (c->npre == c->cappre) {
        size_t cap = c->cappre ? c->cappre * 2 : 16;
        r = realloc(c->pre, cap * sizeof(*r));
        if (!r)
            return RG_ENOMEM;
        c->pre = r;
        c->cappre = cap;
    }
    r = &c->pre[c->npre];
    memset(r, 0, sizeof(*r));
    if (!(r->expr = strdup(expr)))
        return RG_ENOMEM;
    r->range = 1;
    r->t_ms = a;
    r->end_ms = b;
    r->step_ms = step;
    c->npre++;
    return 0;
}

/* Range query @expr over [a, b] every @step: the prefetched answer, moved into *@res
 * and @msg, or the backend's. Returns the query's error. */
static int ask_range(struct ctx *c, const char *expr, int64_t a, int64_t b, int64_t step,
                     struct rg_query_result *res, struct rg_buf *msg)
{
    for (size_t i = 0; i < c->npre; i++) {
        struct rg_query_req *r = &c->pre[i];
        if (!r->answered || !r->expr || r->t_ms != a || r->end_ms != b ||
            r->step_ms != step || strcmp(r->expr, expr))
            continue;
        *res = r->res;
        memset(&r->res, 0, sizeof(r->res));
        if (r->msg.len)
            rg_buf_append(msg, r->msg.data, r->msg.len);
        free(r->expr);
        r->expr = NULL;
        return r->err;
    }
    return c->be->range(c->be->ud, expr, a, b, step, res, msg);
}

/* ---- columns ------------------------------------------------------------------------- */

static void column_free(struct column *col)
{
    free(col->query);
    free(col->v);
    free(col->count);
}

/* Range-queries @col->query over @n evaluations from @t0 every @step and lays the
 * answer out on the grid. A failed query leaves its message in col->error. */
static int column_fill(struct ctx *c, struct column *col, int64_t t0, size_t n, int64_t step)
{
    struct rg_query_result res;
    struct rg_buf msg = { 0 };
    int rc;

    col->v = calloc(n ? n : 1, sizeof(*col->v));
    col->count = calloc(n ? n : 1, sizeof(*col->count));
    if (!col->v || !col->count)
        return RG_ENOMEM;
    memset(&res, 0, sizeof(res));
    c->out->nqueries++;
    rc = ask_range(c, col->query, t0, t0 + (int64_t)(n - 1) * step, step, &res, &msg);
    if (rc == RG_ENOMEM) {
        rg_query_result_free(&res);
        rg_buf_cleanup(&msg);
        return rc;
    }
    if (rc == 0 && res.type != RG_PROMQL_VT_MATRIX) {
        rc = RG_EBADMSG;
        rg_buf_reset(&msg);
        rg_buf_puts(&msg, "the range query did not return a matrix");
    }
    if (rc) {
        snprintf(col->error, sizeof(col->error), "%s",
                 msg.data && msg.len ? msg.data : rg_strerror(rc));
        c->out->nerrors++;
    } else {
        for (size_t i = 0; i < res.nseries; i++) {
            const struct rg_promql_series *s = &res.series[i];
            for (size_t j = 0; j < s->npoints; j++) {
                int64_t d = s->points[j].t - t0;
                int64_t k = (d >= 0 ? d + step / 2 : d - step / 2) / step;
                if (k < 0 || (size_t)k >= n || llabs(d - k * step) * 2 > step)
                    continue;
                if (col->count[k]++ == 0)
                    col->v[k] = s->points[j].v;
            }
        }
    }
    rg_query_result_free(&res);
    rg_buf_cleanup(&msg);
    return 0;
}

/* The check input of evaluation @k of @col, as an instant query would give it. */
static void column_input(const struct column *col, size_t k, struct rg_verdict_input *in,
                         char *errbuf, size_t cap)
{
    memset(in, 0, sizeof(*in));
    if (col->error[0]) {
        in->error = col->error;
    } else if (col->count[k] > 1) {
        snprintf(errbuf, cap, "the signal returned %u series; it must return one (aggregate "
                              "it, e.g. with sum or max)", col->count[k]);
        in->error = errbuf;
    } else if (col->count[k] == 1) {
        in->has_value = 1;
        in->value = col->v[k];
    }
}

/* Index of the column for @query in @cols, added (and filled) on first use. */
static int column_get(struct ctx *c, struct column **cols, size_t *ncols, const char *query,
                      int64_t t0, size_t n, int64_t step, size_t *idx)
{
    struct column *a;
    int rc;

    for (size_t i = 0; i < *ncols; i++)
        if (strcmp((*cols)[i].query, query) == 0) {
            *idx = i;
            return 0;
        }
    a = realloc(*cols, (*ncols + 1) * sizeof(*a));
    if (!a)
        return RG_ENOMEM;
    *cols = a;
    memset(&a[*ncols], 0, sizeof(*a));
    if (!(a[*ncols].query = strdup(query)))
        return RG_ENOMEM;
    *idx = (*ncols)++;
    if ((rc = column_fill(c, &a[*idx], t0, n, step)))
        return rc;
    return 0;
}

/* ---- deployments --------------------------------------------------------------------- */

struct switch_at {
    int64_t t_ms;
    size_t phase;
};

static int switch_cmp(const void *a, const void *b)
{
    const struct switch_at *x = a, *y = b;
    return x->t_ms < y->t_ms ? -1 : x->t_ms > y->t_ms;
}

/* Per check of the current phase: the column of its signal and of its baseline. */
struct slot {
    size_t col;
    long base;                 /* column of the baseline query, or -1 */
    const char *error;         /* a configuration problem (no baseline selector) */
};

/* Steps the machine of @t through evaluations [k0, k1) in phase @phase. */
static int run_segment(struct ctx *c, const struct rg_query_target *t,
                       struct rg_query_replay_target *rt, struct rg_verdict *v, size_t k0,
                       size_t k1, enum rg_verdict_state *prev, enum rg_verdict_kind *prev_v)
{
    const struct rg_checklist_phase *ph = &c->cl->phases[v->phase];
    const struct rg_checklist_signal *reqsig = rg_checklist_signal_find(c->cl, "request_count");
    int64_t step = c->o->step_ms, t0 = c->o->from_ms + (int64_t)k0 * step;
    int64_t window = rg_checklist_window(ph);
    size_t n = k1 - k0, ncols = 0, reqcol = 0, basecol = 0;
    struct column *cols = NULL;
    struct slot *slots = calloc(v->nchecks ? v->nchecks : 1, sizeof(*slots));
    struct rg_verdict_input *in = calloc(v->nchecks ? v->nchecks : 1, sizeof(*in));
    char (*errs)[256] = calloc(v->nchecks ? v->nchecks : 1, sizeof(*errs));
    char reqerr[256];
    struct rg_buf q = { 0 };
    int need_req = reqsig && ph->min_requests > 0;
    int rc = RG_ENOMEM;

    if (!slots || !in || !errs)
        goto done;
    for (size_t i = 0; i < v->nchecks; i++) {
        const struct rg_checklist_check *spec = v->checks[i].spec;
        const struct rg_checklist_signal *sig = rg_checklist_signal_find(c->cl, spec->signal);
        slots[i].base = -1;
        if (!sig) {
            slots[i].error = "unknown signal";
            continue;
        }
        rg_buf_reset(&q);
        if (rg_checklist_expand(sig->expr, t->selector, window, &q) ||
            (rc = column_get(c, &cols, &ncols, q.data, t0, n, step, &slots[i].col)))
            goto done;
        rc = RG_ENOMEM;
        if (!spec->has_baseline)
            continue;
        if (!t->baseline_selector) {
            slots[i].error = "the deployment has no baseline_selector for the baseline "
                             "comparison";
            continue;
        }
        rg_buf_reset(&q);
        if (rg_checklist_expand(sig->expr, t->baseline_selector, window, &q) ||
            (rc = column_get(c, &cols, &ncols, q.data, t0, n, step, &basecol)))
            goto done;
        rc = RG_ENOMEM;
        slots[i].base = (long)basecol;
    }
    if (need_req) {
        rg_buf_reset(&q);
        if (rg_checklist_expand(reqsig->expr, t->selector, window, &q) ||
            (rc = column_get(c, &cols, &ncols, q.data, t0, n, step, &reqcol)))
            goto done;
        rc = RG_ENOMEM;
    }
    for (size_t i = 0; i < ncols; i++)
        if (cols[i].error[0] && (rc = event(c, t0, RG_QUERY_EVENT_ERROR, t->name, "query", "",
                                            "", 0, 0, cols[i].error)))
            goto done;
    rc = RG_ENOMEM;

    for (size_t k = 0; k < n; k++) {
        int64_t now = t0 + (int64_t)k * step;
        struct rg_verdict_input req = { 0 };
        int err = 0;

        for (size_t i = 0; i < v->nchecks; i++) {
            if (slots[i].error) {
                memset(&in[i], 0, sizeof(in[i]));
                in[i].error = slots[i].error;
            } else {
                column_input(&cols[slots[i].col], k, &in[i], errs[i], sizeof(errs[i]));
            }
            if (slots[i].base >= 0) {
                struct rg_verdict_input b;
                column_input(&cols[slots[i].base], k, &b, reqerr, sizeof(reqerr));
                in[i].has_baseline = b.has_value;
                in[i].baseline = b.value;
                if (b.error && !in[i].error) {
                    snprintf(errs[i], sizeof(errs[i]), "%s", b.error);
                    in[i].error = errs[i];
                }
            }
            err |= in[i].error != NULL;
        }
        if (need_req)
            column_input(&cols[reqcol], k, &req, reqerr, sizeof(reqerr));
        rt->errors += err;
        rg_verdict_step(v, now, in, need_req ? &req : NULL);
        for (size_t i = 0; i < v->nchecks; i++) {
            const struct rg_verdict_check *vc = &v->checks[i];
            if (vc->state == prev[i])
                continue;
            if (event(c, now, RG_QUERY_EVENT_CHECK, t->name, vc->spec->name,
                      rg_verdict_state_name(prev[i]), rg_verdict_state_name(vc->state),
                      vc->has_value, vc->value, vc->error))
                goto done;
            prev[i] = vc->state;
        }
        if (v->verdict != *prev_v) {
            if (event(c, now, RG_QUERY_EVENT_VERDICT, t->name, "verdict",
                      rg_verdict_name(*prev_v), rg_verdict_name(v->verdict), 0, 0, v->reason))
                goto done;
            *prev_v = v->verdict;
            if (v->verdict == RG_VERDICT_ROLLBACK && !rt->rolled_back) {
                rt->rolled_back = 1;
                rt->rollback_ms = now;
                rt->rollback_phase = v->phase;
                rt->rollback_phase_start_ms = v->phase_start_ms;
                snprintf(rt->rollback_reason, sizeof(rt->rollback_reason), "%s", v->reason);
            }
        }
    }
    rc = 0;
done:
    for (size_t i = 0; i < ncols; i++)
        column_free(&cols[i]);
    free(cols);
    free(slots);
    free(in);
    free(errs);
    rg_buf_cleanup(&q);
    return rc;
}

static int run_target(struct ctx *c, const struct rg_query_target *t,
                      struct rg_query_replay_target *rt, struct switch_at *sw, size_t nsw)
{
    const struct rg_query_replay_opts *o = c->o;
    size_t nsteps = c->out->nsteps, k0 = 0, next = 0;
    size_t phase = t->phases[0];
    int64_t start = o->from_ms;
    enum rg_verdict_state *prev = NULL;
    enum rg_verdict_kind prev_v = RG_VERDICT_HOLD;
    struct rg_verdict v;
    int rc;

    while (next < nsw && sw[next].t_ms <= o->from_ms) {
        phase = sw[next].phase;
        start = sw[next].t_ms;
        next++;
    }
    if ((rc = rg_verdict_init(&v, c->cl, phase, start)))
        return rc;
    if ((rc = event(c, start, RG_QUERY_EVENT_PHASE, t->name, c->cl->phases[phase].name, "", "",
                    0, 0, "")))
        goto done;
    while (k0 < nsteps) {
        size_t k1 = nsteps;
        int64_t sw_t;
        if (next < nsw) {
            /* The next phase starts at the first evaluation at or after its time. */
            int64_t d = sw[next].t_ms - o->from_ms;
            size_t kk = (size_t)((d + o->step_ms - 1) / o->step_ms);
            k1 = kk < nsteps ? kk : nsteps;
        }
        if (k1 > k0) {
            free(prev);
            prev = calloc(v.nchecks ? v.nchecks : 1, sizeof(*prev));
            rc = RG_ENOMEM;
            if (!prev)
                goto done;
            for (size_t i = 0; i < v.nchecks; i++)
                prev[i] = v.checks[i].state;
            if ((rc = run_segment(c, t, rt, &v, k0, k1, prev, &prev_v)))
                goto done;
            progress(c);
        }
        if (k1 >= nsteps)
            break;
        /* Several phases starting before the same evaluation: the last one wins. */
        while (next + 1 < nsw && sw[next + 1].t_ms <= o->from_ms + (int64_t)k1 * o->step_ms)
            next++;
        sw_t = sw[next].t_ms;
        if ((rc = rg_verdict_start_phase(&v, sw[next].phase, sw_t)))
            goto done;
        prev_v = v.verdict;
        if ((rc = event(c, sw_t, RG_QUERY_EVENT_PHASE, t->name,
                        c->cl->phases[sw[next].phase].name, "", "", 0, 0, "")))
            goto done;
        next++;
        k0 = k1;
    }
    rt->final_verdict = v.verdict;
    rt->final_phase = v.phase;
    snprintf(rt->final_reason, sizeof(rt->final_reason), "%s", v.reason);
    rc = 0;
done:
    free(prev);
    rg_verdict_cleanup(&v);
    return rc;
}

/* ---- alerts -------------------------------------------------------------------------- */

struct snap {
    char *key;                 /* owned: the alert's label set */
    enum rg_alert_state state;
};

/* The alert's labels without alertname as {a="b", c="d"}. */
static int alert_subject(const struct rg_alert *a, struct rg_buf *out)
{
    int first = 1;

    rg_buf_putc(out, '{');
    for (size_t i = 0; i < a->nlabels; i++) {
        if (strcmp(a->labels[i].name, "alertname") == 0)
            continue;
        rg_buf_printf(out, "%s%s=", first ? "" : ", ", a->labels[i].name);
        rg_json_cstr(out, a->labels[i].value);
        first = 0;
    }
    rg_buf_putc(out, '}');
    return out->data ? 0 : RG_ENOMEM;
}

static const char *alert_name(const struct rg_alert *a)
{
    for (size_t i = 0; i < a->nlabels; i++)
        if (strcmp(a->labels[i].name, "alertname") == 0)
            return a->labels[i].value;
    return "";
}

static void snaps_free(struct snap *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i].key);
    free(s);
}

static int snapshot(const struct rg_alert_set *set, struct snap **out)
{
    struct snap *s = calloc(set->n ? set->n : 1, sizeof(*s));
    struct rg_buf b = { 0 };

    *out = s;
    if (!s)
        return RG_ENOMEM;
    for (size_t i = 0; i < set->n; i++) {
        rg_buf_reset(&b);
        rg_buf_puts(&b, alert_name(&set->alerts[i]));
        if (alert_subject(&set->alerts[i], &b) || !(s[i].key = strdup(b.data))) {
            rg_buf_cleanup(&b);
            return RG_ENOMEM;
        }
        s[i].state = set->alerts[i].state;
    }
    rg_buf_cleanup(&b);
    return 0;
}

/* Emits the alert transitions between @before (@nb alerts) and @set at @t. */
static int diff_alerts(struct ctx *c, int64_t t, const struct snap *before, size_t nb,
                       const struct rg_alert_set *set)
{
    struct rg_buf key = { 0 }, subj = { 0 };
    char *seen = calloc(nb ? nb : 1, 1);
    int rc = RG_ENOMEM;

    if (!seen)
        return rc;
    for (size_t i = 0; i < set->n; i++) {
        const struct rg_alert *a = &set->alerts[i];
        enum rg_alert_state was = RG_ALERT_INACTIVE;
        int found = 0;
        rg_buf_reset(&key);
        rg_buf_reset(&subj);
        rg_buf_puts(&key, alert_name(a));
        if (alert_subject(a, &key) || alert_subject(a, &subj))
            goto done;
        for (size_t j = 0; j < nb; j++)
            if (!seen[j] && strcmp(before[j].key, key.data) == 0) {
                seen[j] = 1;
                was = before[j].state;
                found = 1;
                break;
            }
        if ((found && was == a->state) || (!found && a->state == RG_ALERT_INACTIVE))
            continue;
        if (a->state == RG_ALERT_FIRING)
            c->out->alerts_fired++;
        if (event(c, t, RG_QUERY_EVENT_ALERT, subj.data, alert_name(a), rg_alert_state_name(was),
                  rg_alert_state_name(a->state), 1, a->value, ""))
            goto done;
    }
    for (size_t j = 0; j < nb; j++) {
        /* A pending alert that is gone was deleted: its `for` timer restarts. */
        const char *brace;
        if (seen[j] || before[j].state != RG_ALERT_PENDING)
            continue;
        brace = strchr(before[j].key, '{');
        rg_buf_reset(&subj);
        rg_buf_append(&subj, before[j].key, brace ? (size_t)(brace - before[j].key) : 0);
        if (!subj.data && rg_buf_puts(&subj, ""))
            goto done;
        if (event(c, t, RG_QUERY_EVENT_ALERT, brace ? brace : "{}", subj.data, "pending",
                  "inactive", 0, 0, ""))
            goto done;
    }
    rc = 0;
done:
    free(seen);
    rg_buf_cleanup(&key);
    rg_buf_cleanup(&subj);
    return rc;
}

/* The evaluations of the rules of group @g: every *@step from `from`, *@n of them,
 * each querying at t - *@offset. */
static void rule_grid(const struct ctx *c, const struct rg_rule_group *g,
                      const struct rg_rules_global *global, int64_t *step, int64_t *offset,
                      size_t *n)
{
    const struct rg_query_replay_opts *o = c->o;
    size_t max = o->max_steps ? o->max_steps : DEFAULT_MAX_STEPS;

    *step = g->interval_ms > 0 ? g->interval_ms : o->step_ms;
    *offset = g->has_query_offset ? g->query_offset_ms
              : global ? global->rule_query_offset_ms : 0;
    *n = (size_t)((o->to_ms - o->from_ms) / *step) + 1;
    if (*n > max)
        *n = max;
}

static int run_rule(struct ctx *c, const struct rg_rule_group *g, const struct rg_rule *rule,
                    const struct rg_rules_global *global)
{
    const struct rg_query_replay_opts *o = c->o;
    int64_t step, offset;
    size_t n;
    struct rg_alert_params params = { rule->for_ms, rule->keep_firing_for_ms, g->limit };
    struct rg_alert_env env = { 0 };
    struct rg_alert_set set = { 0 };
    struct rg_query_result res;
    struct rg_buf msg = { 0 }, subj = { 0 };
    struct rg_alert_input *in = NULL;
    size_t *cursor = NULL;
    int rc;

    if (global) {
        env.external_labels = global->external_labels;
        env.nexternal = global->nexternal;
        env.external_url = global->external_url;
    }
    memset(&res, 0, sizeof(res));
    rule_grid(c, g, global, &step, &offset, &n);
    c->out->nqueries++;
    if (rg_buf_printf(&subj, "%s/%s", g->file, g->name)) {
        rc = RG_ENOMEM;
        goto done;
    }
    rc = ask_range(c, rule->expr_text, o->from_ms - offset,
                   o->from_ms - offset + (int64_t)(n - 1) * step, step, &res, &msg);
    if (rc == RG_ENOMEM)
        goto done;
    if (rc == 0 && res.type != RG_PROMQL_VT_MATRIX) {
        rc = RG_EBADMSG;
        rg_buf_reset(&msg);
        rg_buf_puts(&msg, "the range query did not return a matrix");
    }
    if (rc) {
        c->out->nerrors++;
        rc = event(c, o->from_ms, RG_QUERY_EVENT_ERROR, subj.data, rule->name,
                   "", "", 0, 0, msg.data && msg.len ? msg.data : rg_strerror(rc));
        goto done;
    }
    rc = RG_ENOMEM;
    in = calloc(res.nseries ? res.nseries : 1, sizeof(*in));
    cursor = calloc(res.nseries ? res.nseries : 1, sizeof(*cursor));
    if (!in || !cursor)
        goto done;
    for (size_t k = 0; k < n; k++) {
        int64_t t = o->from_ms + (int64_t)k * step, qt = t - offset;
        struct snap *before = NULL;
        struct rg_buf e = { 0 };
        size_t m = 0, nb = set.n;
        int erc;

        for (size_t i = 0; i < res.nseries; i++) {
            const struct rg_promql_series *s = &res.series[i];
            size_t *p = &cursor[i];
            while (*p < s->npoints && (s->points[*p].t - qt) * 2 < -step)
                (*p)++;
            if (*p >= s->npoints || llabs(s->points[*p].t - qt) * 2 > step)
                continue;
            if (rg_alert_input_build(rule, g->labels, g->nlabels, &env, s->labels, s->nlabels,
                                     s->points[*p].v, &in[m]))
                goto done;
            m++;
        }
        if (snapshot(&set, &before)) {
            snaps_free(before, nb);
            for (size_t i = 0; i < m; i++)
                rg_alert_input_cleanup(&in[i]);
            goto done;
        }
        erc = rg_alert_set_eval(&set, &params, t, in, m, &e);
        for (size_t i = 0; i < m; i++)
            rg_alert_input_cleanup(&in[i]);
        if (erc == RG_ENOMEM) {
            snaps_free(before, nb);
            rg_buf_cleanup(&e);
            goto done;
        }
        if (erc)
            rc = event(c, t, RG_QUERY_EVENT_ERROR, subj.data, rule->name, "", "", 0, 0,
                       e.data ? e.data : rg_strerror(erc));
        else
            rc = diff_alerts(c, t, before, nb, &set);
        snaps_free(before, nb);
        rg_buf_cleanup(&e);
        if (rc)
            goto done;
        rc = RG_ENOMEM;
    }
    rc = 0;
done:
    free(in);
    free(cursor);
    rg_alert_set_cleanup(&set);
    rg_query_result_free(&res);
    rg_buf_cleanup(&msg);
    rg_buf_cleanup(&subj);
    return rc;
}

/* ---- plans --------------------------------------------------------------------------- */

/* Plans the range queries of signal @signal (and with @baseline of its baseline
 * variant) for the @n evaluations of a segment from @t0. */
static int plan_signal(struct ctx *c, const struct rg_query_target *t, const char *signal,
                       int baseline, int64_t window, int64_t t0, size_t n)
{
    const struct rg_checklist_signal *sig = rg_checklist_signal_find(c->cl, signal);
    int64_t step = c->o->step_ms, end = t0 + (int64_t)(n - 1) * step;
    struct rg_buf q = { 0 };
    int rc = 0;

    if (!sig)
        return 0;
    if (rg_checklist_expand(sig->expr, t->selector, window, &q) ||
        pre_add(c, q.data, t0, end, step))
        rc = RG_ENOMEM;
    if (!rc && baseline && t->baseline_selector) {
        rg_buf_reset(&q);
        if (rg_checklist_expand(sig->expr, t->baseline_selector, window, &q) ||
            pre_add(c, q.data, t0, end, step))
            rc = RG_ENOMEM;
    }
    rg_buf_cleanup(&q);
    return rc;
}

/* Plans the queries of one phase segment, as run_segment() asks them. */
static int plan_segment(struct ctx *c, const struct rg_query_target *t, size_t phase,
                        size_t k0, size_t k1)
{
    const struct rg_checklist *cl = c->cl;
    const struct rg_checklist_phase *ph = &cl->phases[phase];
    const struct rg_checklist_signal *reqsig = rg_checklist_signal_find(cl, "request_count");
    int64_t window = rg_checklist_window(ph), t0 = c->o->from_ms + (int64_t)k0 * c->o->step_ms;
    size_t n = k1 - k0;
    int rc = 0;

    for (size_t i = 0; i < ph->ngates && !rc; i++)
        rc = plan_signal(c, t, ph->gates[i].signal, ph->gates[i].has_baseline, window, t0, n);
    for (size_t i = 0; i < ph->ntriggers && !rc; i++)
        rc = plan_signal(c, t, ph->triggers[i].signal, ph->triggers[i].has_baseline, window,
                         t0, n);
    for (size_t i = 0; i < cl->ntriggers && !rc; i++)
        rc = plan_signal(c, t, cl->triggers[i].signal, cl->triggers[i].has_baseline, window,
                         t0, n);
    if (!rc && reqsig && ph->min_requests > 0)
        rc = plan_signal(c, t, "request_count", 0, window, t0, n);
    return rc;
}

/* Plans the queries of @t, cutting the evaluations into phase segments exactly as
 * run_target() does. */
static int plan_target(struct ctx *c, const struct rg_query_target *t,
                       const struct switch_at *sw, size_t nsw)
{
    const struct rg_query_replay_opts *o = c->o;
    size_t nsteps = c->out->nsteps, k0 = 0, next = 0, phase = t->phases[0];
    int rc;

    while (next < nsw && sw[next].t_ms <= o->from_ms)
        phase = sw[next++].phase;
    while (k0 < nsteps) {
        size_t k1 = nsteps;
        if (next < nsw) {
            int64_t d = sw[next].t_ms - o->from_ms;
            size_t kk = (size_t)((d + o->step_ms - 1) / o->step_ms);
            k1 = kk < nsteps ? kk : nsteps;
        }
        if (k1 > k0 && (rc = plan_segment(c, t, phase, k0, k1)))
            return rc;
        if (k1 >= nsteps)
            break;
        while (next + 1 < nsw && sw[next + 1].t_ms <= o->from_ms + (int64_t)k1 * o->step_ms)
            next++;
        phase = sw[next++].phase;
        k0 = k1;
    }
    return 0;
}

/* Prefetches the queries of the next RULE_WAVE alerting rules from rule @r of group
 * @g of file @f on; *@planned is how many rules that covers. */
static int plan_rules(struct ctx *c, const struct rg_rulefile *const *files, size_t nfiles,
                      size_t f, size_t g, size_t r, const struct rg_rules_global *global,
                      size_t *planned)
{
    const struct rg_query_replay_opts *o = c->o;

    pre_clear(c);
    *planned = 0;
    for (; f < nfiles; f++, g = 0, r = 0)
        for (; g < files[f]->ngroups; g++, r = 0) {
            const struct rg_rule_group *grp = &files[f]->groups[g];
            int64_t step, offset;
            size_t n;
            rule_grid(c, grp, global, &step, &offset, &n);
            for (; r < grp->nrules; r++) {
                int64_t a = o->from_ms - offset;
                if (grp->rules[r].type != RG_RULE_ALERT)
                    continue;
                if (*planned == RULE_WAVE)
                    goto run;
                if (pre_add(c, grp->rules[r].expr_text, a, a + (int64_t)(n - 1) * step, step))
                    return RG_ENOMEM;
                (*planned)++;
            }
        }
run:
    rg_query_backend_run(c->be, c->pre, c->npre);
    return 0;
}

/* ---- the replay ---------------------------------------------------------------------- */

void rg_query_replay_cleanup(struct rg_query_replay *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nevents; i++) {
        free(r->events[i].subject);
        free(r->events[i].name);
        free(r->events[i].detail);
    }
    free(r->events);
    for (size_t i = 0; i < r->ntargets; i++)
        free(r->targets[i].name);
    free(r->targets);
    memset(r, 0, sizeof(*r));
    r->first_rollback = -1;
}

int rg_query_replay_run(const struct rg_checklist *cl, const struct rg_query_targets *targets,
                        const struct rg_rulefile *const *files, size_t nfiles,
                        const struct rg_rules_global *global, const struct rg_query_backend *be,
                        const struct rg_query_replay_opts *o, struct rg_query_replay *out,
                        struct rg_buf *err)
{
    struct ctx c;
    size_t max = o->max_steps ? o->max_steps : DEFAULT_MAX_STEPS;
    struct switch_at *sw = NULL;
    size_t planned = 0;
    int rc = RG_ENOMEM;

    memset(&c, 0, sizeof(c));
    c.cl = cl;
    c.be = be;
    c.o = o;
    c.out = out;
    memset(out, 0, sizeof(*out));
    out->first_rollback = -1;
    out->from_ms = o->from_ms;
    out->to_ms = o->to_ms;
    out->step_ms = o->step_ms;
    if (o->step_ms <= 0 || o->to_ms < o->from_ms) {
        rg_buf_puts(err, o->step_ms <= 0 ? "the step must be positive"
                                         : "--from must not be after --to");
        return RG_EINVAL;
    }
    if ((uint64_t)(o->to_ms - o->from_ms) / (uint64_t)o->step_ms >= max) {
        rg_buf_printf(err, "%lld evaluations is more than the %zu allowed: use a larger step",
                      (long long)((o->to_ms - o->from_ms) / o->step_ms + 1), max);
        return RG_EINVAL;
    }
    if (!be->range) {
        rg_buf_puts(err, "the query backend has no range queries");
        return RG_EINVAL;
    }
    out->nsteps = (size_t)((o->to_ms - o->from_ms) / o->step_ms) + 1;
    out->targets = calloc(targets->n ? targets->n : 1, sizeof(*out->targets));
    sw = calloc(o->nphase_at ? o->nphase_at : 1, sizeof(*sw));
    if (!out->targets || !sw)
        goto done;
    for (size_t i = 0; i < targets->n; i++) {
        if (!(out->targets[i].name = strdup(targets->v[i].name)))
            goto done;
        out->ntargets++;
        /* One unit per phase segment (at most one more than the switches). */
        c.total += o->nphase_at + 1;
    }
    for (size_t f = 0; f < nfiles; f++)
        for (size_t g = 0; g < files[f]->ngroups; g++)
            for (size_t r = 0; r < files[f]->groups[g].nrules; r++)
                if (files[f]->groups[g].rules[r].type == RG_RULE_ALERT)
                    c.total++;

    for (size_t i = 0; i < targets->n; i++) {
        const struct rg_query_target *t = &targets->v[i];
        size_t before = c.done;
        for (size_t j = 0; j < o->nphase_at; j++) {
            long ph = rg_query_target_phase(cl, t, o->phase_at[j].phase);
            if (ph < 0) {
                rg_buf_printf(err, "deployment %s does not go through phase \"%s\"", t->name,
                              o->phase_at[j].phase);
                rc = RG_EINVAL;
                goto done;
            }
            sw[j].t_ms = o->phase_at[j].t_ms;
            sw[j].phase = (size_t)ph;
        }
        qsort(sw, o->nphase_at, sizeof(*sw), switch_cmp);
        pre_clear(&c);
        if ((rc = plan_target(&c, t, sw, o->nphase_at)))
            goto done;
        rg_query_backend_run(be, c.pre, c.npre);
        if ((rc = run_target(&c, t, &out->targets[i], sw, o->nphase_at)))
            goto done;
        /* Switches before `from` or within one evaluation make fewer segments. */
        c.done = before + o->nphase_at + 1;
        if (o->progress)
            o->progress(o->progress_ud, c.done, c.total);
        if (out->targets[i].rolled_back &&
            (out->first_rollback < 0 ||
             out->targets[i].rollback_ms < out->targets[out->first_rollback].rollback_ms))
            out->first_rollback = (long)i;
    }
    pre_clear(&c);
    for (size_t f = 0; f < nfiles; f++)
        for (size_t g = 0; g < files[f]->ngroups; g++) {
            const struct rg_rule_group *grp = &files[f]->groups[g];
            for (size_t r = 0; r < grp->nrules; r++) {
                if (grp->rules[r].type != RG_RULE_ALERT)
                    continue;
                if (planned == 0 &&
                    (rc = plan_rules(&c, files, nfiles, f, g, r, global, &planned)))
                    goto done;
                planned--;
                out->nrules++;
                if ((rc = run_rule(&c, grp, &grp->rules[r], global)))
                    goto done;
                progress(&c);
            }
        }
    qsort(out->events, out->nevents, sizeof(*out->events), event_cmp);
    rc = 0;
done:
    pre_clear(&c);
    free(c.pre);
    free(sw);
    return rc;
}

/* ---- output -------------------------------------------------------------------------- */

#define C_RESET "\033[0m"
#define C_GREEN "\033[32m"
#define C_RED "\033[31m"
#define C_YELLOW "\033[33m"
#define C_BOLD "\033[1m"

static const char *color_of(const char *state)
{
    if (strcmp(state, "ok") == 0 || strcmp(state, "promote") == 0 ||
        strcmp(state, "inactive") == 0)
        return C_GREEN;
    if (strcmp(state, "failing") == 0 || strcmp(state, "firing") == 0 ||
        strcmp(state, "rollback") == 0)
        return C_RED;
    return C_YELLOW;
}

static void put_state(struct rg_buf *out, const char *state, int color)
{
    if (color)
        rg_buf_printf(out, "%s%s%s", color_of(state), state, C_RESET);
    else
        rg_buf_puts(out, state);
}

/* "from -> to", with the value in parentheses when the event has one. */
static void put_transition(struct rg_buf *out, const struct rg_query_event *e, int color)
{
    put_state(out, e->from, color);
    rg_buf_puts(out, " -> ");
    put_state(out, e->to, color);
    if (e->has_value) {
        rg_buf_puts(out, " (");
        rg_query_format_value(e->value, out);
        rg_buf_putc(out, ')');
    }
}

static void put_dur(struct rg_buf *out, int64_t ms)
{
    rg_promql_format_duration(ms > 0 ? ms : 0, out);
}

int rg_query_replay_text(const struct rg_checklist *cl, const struct rg_query_replay *r,
                         int color, struct rg_buf *out)
{
    rg_buf_puts(out, "replay ");
    rg_query_format_time(r->from_ms, out);
    rg_buf_puts(out, " .. ");
    rg_query_format_time(r->to_ms, out);
    rg_buf_puts(out, " every ");
    put_dur(out, r->step_ms);
    rg_buf_printf(out, ": %zu evaluations of %zu deployment%s, %zu alerting rule%s, "
                       "%zu range queries (%zu failed)\n\n",
                  r->nsteps, r->ntargets, r->ntargets == 1 ? "" : "s", r->nrules,
                  r->nrules == 1 ? "" : "s", r->nqueries, r->nerrors);
    for (size_t i = 0; i < r->nevents; i++) {
        const struct rg_query_event *e = &r->events[i];
        rg_query_format_time(e->t_ms, out);
        rg_buf_puts(out, "  ");
        switch (e->kind) {
        case RG_QUERY_EVENT_PHASE:
            rg_buf_printf(out, "%s: phase %s started\n", e->subject, e->name);
            break;
        case RG_QUERY_EVENT_CHECK:
            rg_buf_printf(out, "%s: %s ", e->subject, e->name);
            put_transition(out, e, color);
            if (e->detail[0])
                rg_buf_printf(out, ": %s", e->detail);
            rg_buf_putc(out, '\n');
            break;
        case RG_QUERY_EVENT_VERDICT:
            rg_buf_printf(out, "%s: verdict ", e->subject);
            if (color)
                rg_buf_puts(out, C_BOLD);
            put_state(out, e->from, color);
            rg_buf_puts(out, " -> ");
            if (color)
                rg_buf_puts(out, C_BOLD);
            put_state(out, e->to, color);
            rg_buf_printf(out, ": %s\n", e->detail);
            break;
        case RG_QUERY_EVENT_ALERT:
            rg_buf_printf(out, "alert %s%s ", e->name, e->subject);
            put_transition(out, e, color);
            rg_buf_putc(out, '\n');
            break;
        case RG_QUERY_EVENT_ERROR:
            rg_buf_printf(out, "%s: %s failed: %s\n", e->subject, e->name, e->detail);
            break;
        }
    }
    rg_buf_puts(out, "\nsummary:\n");
    for (size_t i = 0; i < r->ntargets; i++) {
        const struct rg_query_replay_target *t = &r->targets[i];
        if (t->rolled_back) {
            rg_buf_printf(out, "  %s: ", t->name);
            if (color)
                rg_buf_printf(out, "%s%s", C_BOLD, C_RED);
            rg_buf_puts(out, "would have rolled back");
            if (color)
                rg_buf_puts(out, C_RESET);
            rg_buf_puts(out, " at ");
            rg_query_format_time(t->rollback_ms, out);
            rg_buf_printf(out, " (phase %s, ", cl->phases[t->rollback_phase].name);
            put_dur(out, t->rollback_ms - t->rollback_phase_start_ms);
            rg_buf_printf(out, " after it started): %s\n", t->rollback_reason);
        } else {
            rg_buf_printf(out, "  %s: no rollback; final verdict ", t->name);
            put_state(out, rg_verdict_name(t->final_verdict), color);
            rg_buf_printf(out, " in phase %s: %s\n", cl->phases[t->final_phase].name,
                          t->final_reason);
        }
    }
    if (r->nrules)
        rg_buf_printf(out, "  alerts: %zu transition%s to firing\n", r->alerts_fired,
                      r->alerts_fired == 1 ? "" : "s");
    return out->data ? 0 : RG_ENOMEM;
}

static void json_time(struct rg_buf *out, int64_t ms)
{
    rg_buf_printf(out, "%.3f", (double)ms / 1000.0);
}

int rg_query_replay_json(const struct rg_checklist *cl, const struct rg_query_replay *r,
                         struct rg_buf *out)
{
    static const char *const kinds[] = { "phase", "check", "verdict", "alert", "error" };

    rg_buf_puts(out, "{\"from\":");
    json_time(out, r->from_ms);
    rg_buf_puts(out, ",\"to\":");
    json_time(out, r->to_ms);
    rg_buf_puts(out, ",\"step\":");
    json_time(out, r->step_ms);
    rg_buf_printf(out, ",\"steps\":%zu,\"queries\":%zu,\"query_errors\":%zu,\"rules\":%zu,"
                       "\"alerts_fired\":%zu,\"first_rollback\":",
                  r->nsteps, r->nqueries, r->nerrors, r->nrules, r->alerts_fired);
    if (r->first_rollback >= 0) {
        const struct rg_query_replay_target *t = &r->targets[r->first_rollback];
        rg_buf_puts(out, "{\"deployment\":");
        rg_json_cstr(out, t->name);
        rg_buf_puts(out, ",\"time\":");
        json_time(out, t->rollback_ms);
        rg_buf_puts(out, ",\"phase\":");
        rg_json_cstr(out, cl->phases[t->rollback_phase].name);
        rg_buf_puts(out, ",\"reason\":");
        rg_json_cstr(out, t->rollback_reason);
        rg_buf_putc(out, '}');
    } else {
        rg_buf_puts(out, "null");
    }
    rg_buf_puts(out, ",\"deployments\":[");
    for (size_t i = 0; i < r->ntargets; i++) {
        const struct rg_query_replay_target *t = &r->targets[i];
        if (i)
            rg_buf_putc(out, ',');
        rg_buf_puts(out, "{\"name\":");
        rg_json_cstr(out, t->name);
        rg_buf_puts(out, ",\"rollback\":");
        if (t->rolled_back) {
            rg_buf_puts(out, "{\"time\":");
            json_time(out, t->rollback_ms);
            rg_buf_puts(out, ",\"phase\":");
            rg_json_cstr(out, cl->phases[t->rollback_phase].name);
            rg_buf_puts(out, ",\"after\":");
            json_time(out, t->rollback_ms - t->rollback_phase_start_ms);
            rg_buf_puts(out, ",\"reason\":");
            rg_json_cstr(out, t->rollback_reason);
            rg_buf_putc(out, '}');
        } else {
            rg_buf_puts(out, "null");
        }
        rg_buf_printf(out, ",\"final_verdict\":\"%s\",\"final_phase\":",
                      rg_verdict_name(t->final_verdict));
        rg_json_cstr(out, cl->phases[t->final_phase].name);
        rg_buf_puts(out, ",\"final_reason\":");
        rg_json_cstr(out, t->final_reason);
        rg_buf_printf(out, ",\"errors\":%zu}", t->errors);
    }
    rg_buf_puts(out, "],\"events\":[");
    for (size_t i = 0; i < r->nevents; i++) {
        const struct rg_query_event *e = &r->events[i];
        if (i)
            rg_buf_putc(out, ',');
        rg_buf_puts(out, "{\"time\":");
        json_time(out, e->t_ms);
        rg_buf_printf(out, ",\"kind\":\"%s\",\"subject\":", kinds[e->kind]);
        rg_json_cstr(out, e->subject);
        rg_buf_puts(out, ",\"name\":");
        rg_json_cstr(out, e->name);
        rg_buf_puts(out, ",\"from\":");
        rg_json_cstr(out, e->from);
        rg_buf_puts(out, ",\"to\":");
        rg_json_cstr(out, e->to);
        rg_buf_puts(out, ",\"value\":");
        if (e->has_value)
            rg_json_number(out, e->value);
        else
            rg_buf_puts(out, "null");
        rg_buf_puts(out, ",\"detail\":");
        rg_json_cstr(out, e->detail);
        rg_buf_putc(out, '}');
    }
    rg_buf_puts(out, "]}");
    return out->data ? 0 : RG_ENOMEM;
}
