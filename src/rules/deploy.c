/* rules/deploy.c - the deployments manager (see deploy.h).
 *
 * Per deployment the manager keeps the verdict machine and, for the phase it is in,
 * one "slot" per distinct signal its checks use: the instantiated query text and its
 * parsed tree (plus a baseline variant when a gate compares against the baseline).
 * Slots are rebuilt only when the deployment enters another phase, so a tick costs
 * one instant evaluation per distinct signal and deployment, and one per tick for
 * signals that do not depend on the deployment.
 *
 * A slot whose signal or deployment names a source is remote: it is never shared
 * or batched, and its query goes to the server. A deployment with remote slots is
 * evaluated in a "round": its local slots are evaluated in the tick, its remote
 * queries are sent, and the verdict steps (with the tick's time) when the last
 * answer is in. The round is a separate allocation that survives the deployment
 * and the manager (both only detach it), so a late answer never touches freed
 * memory; the client's cancellation finishes it at the latest.
 */
#include "rules/deploy.h"

#include "promql/ast.h"
#include "promql/engine.h"
#include "query/client.h"
#include "util/err.h"
#include "util/file.h"
#include "util/json.h"
#include "util/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#define MAX_DEPLOYMENTS 10000          /* discovery stops adding beyond this */
#define MAX_STATE_BYTES (16u << 20)    /* state file size accepted on restore */

/* One distinct signal of a deployment's current phase. */
struct slot {
    const struct rg_checklist_signal *sig;   /* borrowed from the checklist */
    long shared;                   /* index into d->shared when the template has no
                                    * <selector>, else -1 */
    long group;                    /* index into d->groups when batched, else -1 */
    struct rg_promql_node *expr;   /* owned; NULL when it could not be built */
    struct rg_promql_node *base;   /* owned; the baseline variant, when needed */
    char *query;                   /* owned */
    char *base_query;              /* owned */
    int need_base;
    char error[256];               /* why expr or base could not be built */
    struct rg_verdict_input val;   /* this tick's results */
    struct rg_verdict_input bval;
    char val_err[256];
    char bval_err[256];
    const struct rg_query_source *src;   /* borrowed; NULL: the store */
};

/* A signal evaluated once per tick for every deployment. */
struct shared {
    struct rg_promql_node *expr;   /* owned; NULL when the query does not parse */
    char *query;                   /* owned */
    char error[256];
    int64_t tick;                  /* tick the value below belongs to */
    struct rg_verdict_input val;
    char val_err[256];
};

/* One result of a grouped query: the value for one discovery label value. */
struct gval {
    const char *key;               /* borrowed from the group's result */
    double v;
    size_t count;                  /* series with this key (more than one: an error) */
};

/* A signal evaluated once per tick for every discovered deployment at once: the
 * template is instantiated with `<label>!=""` instead of one deployment's selector and
 * every aggregation that depends on it is grouped by the discovery label, so the
 * result holds one series per label value. Only templates whose meaning is
 * unchanged by that rewrite are batched (see regroup()); others are evaluated per
 * deployment. */
struct group {
    const struct rg_checklist_signal *sig;   /* borrowed */
    int64_t window_ms;
    int eligible;                  /* 0: evaluate per deployment instead */
    struct rg_promql_node *expr;   /* owned */
    char *query;                   /* owned */
    int64_t tick;                  /* tick the results belong to */
    struct rg_promql_result res;   /* owned; the keys below point into it */
    struct gval *vals;             /* owned; sorted by key */
    size_t nvals;
    int has_default;               /* a series without the label: the value of every
                                    * deployment the result does not name */
    double dflt;
    char error[256];               /* this tick's evaluation error, or "" */
};

struct dep {
    char *name;                    /* owned */
    char *selector;                /* owned */
    char *baseline_selector;       /* owned; NULL when none */
    size_t *phases;                /* owned copy of the deployment's phase indexes */
    size_t nphases;
    int discovered;
    int seen;                      /* found by the current discovery scan */
    struct rg_verdict v;
    struct slot *slots;            /* owned; for phase compiled_phase */
    size_t nslots;
    size_t *check_slot;            /* owned; slot of each of v.checks */
    const char **queries;          /* owned array (strings borrowed from slots) */
    struct slot req;               /* the request_count signal */
    int compiled;
    size_t compiled_phase;
    int stale_pending;             /* the series of stale_phase must get stale markers */
    size_t stale_phase;
    const struct rg_query_source *source;   /* borrowed; `source:` of the deployment */
    size_t nremote;                /* remote slots of the compiled phase (req included) */
    struct round *round;           /* remote evaluation in flight (not owned), or NULL */
    uint64_t rounds_missed;        /* ticks skipped while a round was still out */
};

struct rg_deploy {
    struct rg_checklist *cl;       /* owned */
    struct rg_store *store;        /* borrowed */
    struct rg_metrics *metrics;    /* borrowed; may be NULL */
    struct rg_metrics_family *f_verdict, *f_value, *f_threshold;
    char *state_path;              /* owned; NULL: nothing saved */
    struct dep **deps;             /* owned array of owned deployments */
    size_t ndeps;
    struct shared *shared;         /* owned; one per checklist signal */
    struct group **groups;         /* owned; batched signals by (signal, window) */
    size_t ngroups;
    int batching;                  /* 1: discovered deployments use groups */
    struct rg_promql_opts popts;
    int64_t tick;                  /* ticks so far */
    int64_t last_scan_ms;
    int scanned;
    int dirty;                     /* saved state changed since the last write */
    int save_failing;              /* the last write failed (logged once) */
    int full_warned;
    rg_deploy_event_cb cb;
    void *cb_ud;
    struct rg_query_client *client;          /* borrowed; may be NULL */
    const struct rg_query_sources *sources;  /* borrowed; may be NULL */
};

struct round;
static void round_detach_dep(struct round *rd);
static void round_detach_all(struct round *rd);

/* ---- deployments --------------------------------------------------------------------- */

static void slot_clear(struct slot *s)
{
    rg_promql_node_free(s->expr);
    rg_promql_node_free(s->base);
    free(s->query);
    free(s->base_query);
    memset(s, 0, sizeof(*s));
}

static void dep_uncompile(struct dep *p)
{
    for (size_t i = 0; i < p->nslots; i++)
        slot_clear(&p->slots[i]);
    free(p->slots);
    p->slots = NULL;
    p->nslots = 0;
    free(p->check_slot);
    p->check_slot = NULL;
    free(p->queries);
    p->queries = NULL;
    slot_clear(&p->req);
    p->compiled = 0;
    p->nremote = 0;
}

static void dep_free(struct dep *p)
{
    if (!p)
        return;
    if (p->round)
        round_detach_dep(p->round);
    dep_uncompile(p);
    rg_verdict_cleanup(&p->v);
    free(p->name);
    free(p->selector);
    free(p->baseline_selector);
    free(p->phases);
    free(p);
}

static struct dep *dep_new(struct rg_deploy *d, const char *name, const char *selector,
                           const char *baseline, const size_t *phases, size_t nphases,
                           int discovered, int64_t now_ms)
{
    struct dep *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    p->name = strdup(name);
    p->selector = strdup(selector);
    p->baseline_selector = baseline ? strdup(baseline) : NULL;
    p->phases = calloc(nphases ? nphases : 1, sizeof(*p->phases));
    p->discovered = discovered;
    if (!p->name || !p->selector || (baseline && !p->baseline_selector) || !p->phases ||
        nphases == 0)
        goto fail_dep;
    memcpy(p->phases, phases, nphases * sizeof(*phases));
    p->nphases = nphases;
    if (rg_verdict_init(&p->v, d->cl, phases[0], now_ms))
        goto fail_dep;
    return p;

fail_dep:
    dep_free(p);
    return NULL;
}

static long dep_index(const struct rg_deploy *d, const char *name)
{
    for (size_t i = 0; i < d->ndeps; i++)
        if (strcmp(d->deps[i]->name, name) == 0)
            return (long)i;
    return -1;
}

static int dep_add(struct rg_deploy *d, struct dep *p)
{
    struct dep **a = realloc(d->deps, (d->ndeps + 1) * sizeof(*a));

    if (!a)
        return RG_ENOMEM;
    d->deps = a;
    a[d->ndeps++] = p;
    return 0;
}

static int dep_has_phase(const struct dep *p, size_t phase)
{
    for (size_t i = 0; i < p->nphases; i++)
        if (p->phases[i] == phase)
            return 1;
    return 0;
}

/* ---- events -------------------------------------------------------------------------- */

static void emit(struct rg_deploy *d, struct dep *p, enum rg_deploy_event_kind kind,
                 enum rg_verdict_kind previous, const char *reason, int64_t now_ms)
{
    static const char *const suffix[] = { "phase_started", NULL, NULL, NULL, "human_trigger",
                                          "reset" };
    const char *phase = d->cl->phases[p->v.phase].name;
    struct rg_deploy_event ev;
    char key[512];
    char q[300];

    snprintf(key, sizeof(key), "%s/%s/%lld/%s", p->name, phase, (long long)p->v.phase_start_ms,
             suffix[kind] ? suffix[kind] : rg_verdict_name(p->v.verdict));
    rg_info("event=deployment_%s deployment=%s phase=%s verdict=%s previous=%s reason=%s",
            suffix[kind] ? suffix[kind] : "verdict", p->name, phase,
            rg_verdict_name(p->v.verdict), rg_verdict_name(previous),
            rg_log_quote(q, sizeof(q), reason, strlen(reason)));
    if (!d->cb)
        return;
    ev.kind = kind;
    ev.deployment = p->name;
    ev.phase = phase;
    ev.verdict = p->v.verdict;
    ev.previous = previous;
    ev.reason = reason;
    ev.at_ms = now_ms;
    ev.key = key;
    ev.state = &p->v;
    d->cb(&ev, d->cb_ud);
}

/* ---- compiling a phase's signals ----------------------------------------------------- */

static int build_query(const char *tmpl, const char *selector, int64_t window_ms,
                       char **query, struct rg_promql_node **expr, char *error, size_t cap)
{
    struct rg_buf b = { 0 };
    char msg[256];

    if (rg_checklist_expand(tmpl, selector, window_ms, &b))
        return RG_ENOMEM;
    *query = rg_buf_steal(&b, NULL);
    if (!*query)
        return RG_ENOMEM;
    if (rg_promql_parse(*query, expr, msg, sizeof(msg))) {
        *expr = NULL;
        snprintf(error, cap, "%s", msg);
    }
    return 0;
}

static int has_selector(const char *tmpl)
{
    return strstr(tmpl, "<selector>") != NULL || strstr(tmpl, "<window>") != NULL;
}

/* ---- batched evaluation of discovered deployments -------------------------------- */

#define BATCH_MARK "__rollgate_batch__"

static int fn_batchable(enum rg_promql_func_id id)
{
    switch (id) {
    case RG_FN_ABS: case RG_FN_AVG_OVER_TIME: case RG_FN_CEIL: case RG_FN_CHANGES:
    case RG_FN_CLAMP: case RG_FN_CLAMP_MAX: case RG_FN_CLAMP_MIN: case RG_FN_COUNT_OVER_TIME:
    case RG_FN_DELTA: case RG_FN_DERIV: case RG_FN_EXP: case RG_FN_FLOOR:
    case RG_FN_HISTOGRAM_QUANTILE: case RG_FN_IDELTA: case RG_FN_INCREASE: case RG_FN_IRATE:
    case RG_FN_LAST_OVER_TIME: case RG_FN_LN: case RG_FN_LOG10: case RG_FN_LOG2:
    case RG_FN_MAD_OVER_TIME: case RG_FN_MAX_OVER_TIME: case RG_FN_MIN_OVER_TIME:
    case RG_FN_PREDICT_LINEAR: case RG_FN_PRESENT_OVER_TIME: case RG_FN_QUANTILE_OVER_TIME:
    case RG_FN_RATE: case RG_FN_RESETS: case RG_FN_ROUND: case RG_FN_SGN: case RG_FN_SQRT:
    case RG_FN_STDDEV_OVER_TIME: case RG_FN_STDVAR_OVER_TIME: case RG_FN_SUM_OVER_TIME:
        return 1;
    default:
        return 0;
    }
}

static int is_vector(const struct rg_promql_node *n)
{
    return rg_promql_node_type(n) == RG_PROMQL_VT_VECTOR;
}

/* Checks that grouping the deployment-dependent parts of @n by @label gives, for each
 * label value, exactly what the per-deployment query gives, and rewrites @n so: the
 * placeholder matcher becomes label!="", and every aggregation over a dependent
 * expression gets `by (label)` added. Conservative: selectors, the rate-like and
 * element-wise functions, sum/avg/min/max/count/group/stddev/stdvar/quantile, and
 * binary operations with default matching between two dependent vectors (or with a
 * scalar). At the top only, `... or vector(<number>)` is allowed: its series without
 * the label becomes the value of every deployment the result does not name.
 * Returns 1 when eligible (and sets *@dep when @n depends on the deployment). */
static int regroup(struct rg_promql_node *n, const char *label, int top, int *dep, int *rc)
{
    int dl = 0, dr = 0;

    *dep = 0;
    switch (n->kind) {
    case RG_PROMQL_NUMBER:
    case RG_PROMQL_STRING:
        return 1;
    case RG_PROMQL_SELECTOR:
    case RG_PROMQL_MATRIX:
        for (size_t i = 0; i < n->u.sel.nmatchers; i++) {
            struct rg_promql_matcher *m = &n->u.sel.matchers[i];
            char *name, *value;
            if (strcmp(m->name, BATCH_MARK) != 0)
                continue;
            name = strdup(label);
            value = strdup("");
            if (!name || !value) {
                free(name);
                free(value);
                *rc = RG_ENOMEM;
                return 0;
            }
            free(m->name);
            free(m->value);
            m->name = name;
            m->value = value;
            m->op = RG_MATCH_NE;
            *dep = 1;
        }
        for (size_t i = 0; i < n->u.sel.nmatchers; i++)
            if (strcmp(n->u.sel.matchers[i].name, label) == 0 && !*dep)
                return 0;   /* names the label itself: leave it alone */
        return 1;
    case RG_PROMQL_CALL:
        if (!fn_batchable(n->u.call.func->id))
            return 0;
        for (size_t i = 0; i < n->u.call.nargs; i++) {
            int da;
            if (!regroup(n->u.call.args[i], label, 0, &da, rc))
                return 0;
            *dep |= da;
        }
        return 1;
    case RG_PROMQL_AGGREGATE: {
        char **g;
        switch (n->u.agg.op) {
        case RG_PROMQL_SUM: case RG_PROMQL_AVG: case RG_PROMQL_MIN: case RG_PROMQL_MAX:
        case RG_PROMQL_COUNT: case RG_PROMQL_GROUP: case RG_PROMQL_STDDEV:
        case RG_PROMQL_STDVAR: case RG_PROMQL_QUANTILE:
            break;
        default:
            return 0;
        }
        if (n->u.agg.param && n->u.agg.param->kind != RG_PROMQL_NUMBER)
            return 0;
        if (!regroup(n->u.agg.expr, label, 0, dep, rc))
            return 0;
        if (!*dep)
            return 1;
        for (size_t i = 0; i < n->u.agg.ngrouping; i++)
            if (strcmp(n->u.agg.grouping[i], label) == 0)
                return !n->u.agg.without;   /* by (label) already; without (label): no */
        if (n->u.agg.without)
            return 1;   /* the label survives `without` of other labels */
        g = realloc(n->u.agg.grouping, (n->u.agg.ngrouping + 1) * sizeof(*g));
        if (!g) {
            *rc = RG_ENOMEM;
            return 0;
        }
        n->u.agg.grouping = g;
        if (!(g[n->u.agg.ngrouping] = strdup(label))) {
            *rc = RG_ENOMEM;
            return 0;
        }
        n->u.agg.ngrouping++;
        n->u.agg.has_grouping = 1;
        return 1;
    }
    case RG_PROMQL_BINARY: {
        struct rg_promql_node *l = n->u.bin.lhs, *r = n->u.bin.rhs;
        const struct rg_promql_matching *mt = n->u.bin.matching;
        if (top && n->u.bin.op == RG_PROMQL_OR && r->kind == RG_PROMQL_CALL &&
            r->u.call.func->id == RG_FN_VECTOR && r->u.call.nargs == 1 &&
            r->u.call.args[0]->kind == RG_PROMQL_NUMBER)
            return regroup(l, label, 0, dep, rc) && *dep;
        if (!regroup(l, label, 0, &dl, rc) || !regroup(r, label, 0, &dr, rc))
            return 0;
        *dep = dl | dr;
        if (is_vector(l) && is_vector(r)) {
            if (dl != dr)
                return 0;
            if (mt && (mt->on || mt->nlabels || mt->ninclude ||
                       mt->card == RG_PROMQL_MANY_TO_ONE || mt->card == RG_PROMQL_ONE_TO_MANY))
                return 0;
        }
        return 1;
    }
    case RG_PROMQL_UNARY:
    case RG_PROMQL_PAREN:
        return regroup(n->u.un.expr, label, 0, dep, rc);
    default:
        return 0;
    }
}

static void group_free(struct group *g)
{
    if (!g)
        return;
    rg_promql_node_free(g->expr);
    free(g->query);
    rg_promql_result_free(&g->res);
    free(g->vals);
    free(g);
}

/* Builds the batched form of @sig for windows of @window_ms. Returns 0 (with
 * g->eligible 0 when the template cannot be batched) or RG_ENOMEM. */
static int group_build(struct rg_deploy *d, struct group *g)
{
    struct rg_buf text = { 0 }, printed = { 0 };
    struct rg_promql_node *n = NULL;
    char msg[256];
    int dep = 0, rc = 0;

    if (rg_checklist_expand(g->sig->expr, BATCH_MARK "=\"1\"", g->window_ms, &text))
        return RG_ENOMEM;
    if (rg_promql_parse(text.data, &n, msg, sizeof(msg)) == 0 &&
        regroup(n, d->cl->discovery.label, 1, &dep, &rc) && dep && is_vector(n)) {
        /* Print and parse again, so the tree evaluated is one the parser made. */
        if (rg_promql_print(n, &printed) == 0 && printed.data &&
            rg_promql_parse(printed.data, &g->expr, msg, sizeof(msg)) == 0) {
            g->query = rg_buf_steal(&printed, NULL);
            g->eligible = g->query != NULL;
        }
    }
    rg_promql_node_free(n);
    rg_buf_cleanup(&text);
    rg_buf_cleanup(&printed);
    if (!g->eligible) {
        rg_promql_node_free(g->expr);
        g->expr = NULL;
    }
    return rc;
}

/* Index of the group of (@sig, @window_ms), created on first use; -2 on OOM. */
static long group_find(struct rg_deploy *d, const struct rg_checklist_signal *sig,
                       int64_t window_ms)
{
    struct group *g, **a;
    int64_t w = strstr(sig->expr, "<window>") ? window_ms : 0;

    for (size_t i = 0; i < d->ngroups; i++)
        if (d->groups[i]->sig == sig && d->groups[i]->window_ms == w)
            return (long)i;
    g = calloc(1, sizeof(*g));
    if (!g)
        return -2;
    g->sig = sig;
    g->window_ms = w;
    g->tick = -1;
    if (group_build(d, g) || !(a = realloc(d->groups, (d->ngroups + 1) * sizeof(*a)))) {
        group_free(g);
        return -2;
    }
    d->groups = a;
    a[d->ngroups++] = g;
    return (long)(d->ngroups - 1);
}

static int gval_cmp(const void *a, const void *b)
{
    return strcmp(((const struct gval *)a)->key, ((const struct gval *)b)->key);
}

static void group_eval(struct rg_deploy *d, struct group *g, int64_t now_ms)
{
    const char *label = d->cl->discovery.label;
    struct rg_buf msg = { 0 };
    size_t k = 0;
    int rc;

    rg_promql_result_free(&g->res);
    memset(&g->res, 0, sizeof(g->res));
    free(g->vals);
    g->vals = NULL;
    g->nvals = 0;
    g->has_default = 0;
    g->error[0] = '\0';
    g->tick = d->tick;
    rc = rg_promql_eval_instant(d->store, g->expr, now_ms, &d->popts, &g->res, &msg);
    if (rc) {
        snprintf(g->error, sizeof(g->error), "%s", msg.data ? msg.data : rg_strerror(rc));
        rg_buf_cleanup(&msg);
        return;
    }
    rg_buf_cleanup(&msg);
    if (g->res.type != RG_PROMQL_VT_VECTOR)
        return;
    g->vals = calloc(g->res.nseries ? g->res.nseries : 1, sizeof(*g->vals));
    if (!g->vals) {
        snprintf(g->error, sizeof(g->error), "out of memory");
        return;
    }
    for (size_t i = 0; i < g->res.nseries; i++) {
        const struct rg_promql_series *s = &g->res.series[i];
        const char *key = NULL;
        for (size_t j = 0; j < s->nlabels; j++)
            if (strcmp(s->labels[j].name, label) == 0)
                key = s->labels[j].value;
        if (!s->npoints)
            continue;
        if (!key) {
            g->has_default = 1;
            g->dflt = s->points[0].v;
            continue;
        }
        g->vals[k].key = key;
        g->vals[k].v = s->points[0].v;
        g->vals[k].count = 1;
        k++;
    }
    qsort(g->vals, k, sizeof(*g->vals), gval_cmp);
    /* Several series of one label value: the per-deployment query would have
     * returned them all, which is an error for that deployment. */
    g->nvals = 0;
    for (size_t i = 0; i < k; i++) {
        if (g->nvals && strcmp(g->vals[g->nvals - 1].key, g->vals[i].key) == 0)
            g->vals[g->nvals - 1].count++;
        else
            g->vals[g->nvals++] = g->vals[i];
    }
}

static void group_lookup(struct rg_deploy *d, struct group *g, const char *name, int64_t now_ms,
                         struct rg_verdict_input *in, char *errbuf, size_t cap)
{
    struct gval key = { name, 0, 0 }, *hit;

    if (g->tick != d->tick)
        group_eval(d, g, now_ms);
    memset(in, 0, sizeof(*in));
    if (g->error[0]) {
        snprintf(errbuf, cap, "%s", g->error);
        in->error = errbuf;
        return;
    }
    hit = g->nvals ? bsearch(&key, g->vals, g->nvals, sizeof(*g->vals), gval_cmp) : NULL;
    if (hit && hit->count > 1) {
        snprintf(errbuf, cap, "the signal returned %zu series; it must return one (aggregate "
                              "it, e.g. with sum or max)", hit->count);
        in->error = errbuf;
    } else if (hit) {
        in->has_value = 1;
        in->value = hit->v;
    } else if (g->has_default) {
        in->has_value = 1;
        in->value = g->dflt;
    }
}

static int slot_build(struct rg_deploy *d, struct dep *p, struct slot *s,
                      const struct rg_checklist_signal *sig, int64_t window_ms)
{
    int rc;

    s->sig = sig;
    s->shared = -1;
    s->group = -1;
    /* A signal's own source wins over its deployment's. */
    s->src = sig->source ? rg_query_sources_find(d->sources, sig->source) : p->source;
    if (s->src) {
        p->nremote++;
        if ((rc = build_query(sig->expr, p->selector, window_ms, &s->query, &s->expr, s->error,
                              sizeof(s->error))))
            return rc;
        if (!s->need_base)
            return 0;
        if (!p->baseline_selector) {
            snprintf(s->error, sizeof(s->error), "deployment %s has no baseline_selector for "
                     "the baseline comparison", p->name);
            return 0;
        }
        return build_query(sig->expr, p->baseline_selector, window_ms, &s->base_query,
                           &s->base, s->error, sizeof(s->error));
    }
    if (!has_selector(sig->expr) && !s->need_base) {
        s->shared = (long)(sig - d->cl->signals);
        return 0;
    }
    if (p->discovered && d->batching && !s->need_base) {
        long g = group_find(d, sig, window_ms);
        if (g == -2)
            return RG_ENOMEM;
        if (g >= 0 && d->groups[g]->eligible) {
            struct rg_buf b = { 0 };
            s->group = g;
            /* The deployment's own query text is kept for display: it is what the
             * batched query computes for this deployment. */
            if (rg_checklist_expand(sig->expr, p->selector, window_ms, &b))
                return RG_ENOMEM;
            s->query = rg_buf_steal(&b, NULL);
            return s->query ? 0 : RG_ENOMEM;
        }
    }
    if ((rc = build_query(sig->expr, p->selector, window_ms, &s->query, &s->expr, s->error,
                          sizeof(s->error))))
        return rc;
    if (!s->need_base)
        return 0;
    if (!p->baseline_selector) {
        snprintf(s->error, sizeof(s->error),
                 "deployment %s has no baseline_selector for the baseline comparison", p->name);
        return 0;
    }
    return build_query(sig->expr, p->baseline_selector, window_ms, &s->base_query, &s->base,
                       s->error, sizeof(s->error));
}

static int dep_compile(struct rg_deploy *d, struct dep *p)
{
    const struct rg_checklist_phase *ph = &d->cl->phases[p->v.phase];
    int64_t window = rg_checklist_window(ph);
    const struct rg_checklist_signal *req;
    size_t n = p->v.nchecks;
    int rc = RG_ENOMEM;

    dep_uncompile(p);
    p->slots = calloc(n ? n : 1, sizeof(*p->slots));
    p->check_slot = calloc(n ? n : 1, sizeof(*p->check_slot));
    p->queries = calloc(n ? n : 1, sizeof(*p->queries));
    if (!p->slots || !p->check_slot || !p->queries)
        goto fail_compile;
    for (size_t i = 0; i < n; i++) {
        const struct rg_checklist_check *c = p->v.checks[i].spec;
        size_t k = 0;
        while (k < p->nslots && strcmp(p->slots[k].sig->name, c->signal) != 0)
            k++;
        if (k == p->nslots) {
            p->slots[k].sig = rg_checklist_signal_find(d->cl, c->signal);
            p->nslots++;
        }
        if (c->has_baseline)
            p->slots[k].need_base = 1;
        p->check_slot[i] = k;
    }
    for (size_t k = 0; k < p->nslots; k++)
        if ((rc = slot_build(d, p, &p->slots[k], p->slots[k].sig, window)))
            goto fail_compile;
    req = rg_checklist_signal_find(d->cl, "request_count");
    if (req && ph->min_requests > 0 &&
        (rc = slot_build(d, p, &p->req, req, rg_checklist_window(ph))))
        goto fail_compile;
    for (size_t i = 0; i < n; i++) {
        const struct slot *s = &p->slots[p->check_slot[i]];
        p->queries[i] = s->shared >= 0 && !s->src ? d->shared[s->shared].query : s->query;
    }
    p->compiled = 1;
    p->compiled_phase = p->v.phase;
    return 0;

fail_compile:
    dep_uncompile(p);
    return rc;
}

/* ---- evaluation ---------------------------------------------------------------------- */

/* The value of a signal from a successful result, local or remote: a scalar or a
 * one-element vector is the value, an empty vector is no data, anything else is an
 * error. @in must be zeroed. */
static void extract(enum rg_promql_vtype type, double scalar,
                    const struct rg_promql_series *series, size_t nseries,
                    struct rg_verdict_input *in, char *errbuf, size_t cap)
{
    if (type == RG_PROMQL_VT_SCALAR) {
        in->has_value = 1;
        in->value = scalar;
    } else if (type == RG_PROMQL_VT_VECTOR && nseries == 1 && series[0].npoints) {
        in->has_value = 1;
        in->value = series[0].points[0].v;
    } else if (type == RG_PROMQL_VT_VECTOR && nseries > 1) {
        snprintf(errbuf, cap, "the signal returned %zu series; it must return one (aggregate "
                              "it, e.g. with sum or max)", nseries);
        in->error = errbuf;
    } else if (type != RG_PROMQL_VT_VECTOR) {
        snprintf(errbuf, cap, "the signal must return a scalar or an instant vector");
        in->error = errbuf;
    }
}

static void eval_one(struct rg_deploy *d, const struct rg_promql_node *expr, const char *error,
                     int64_t now_ms, struct rg_verdict_input *in, char *errbuf, size_t cap)
{
    struct rg_promql_result res;
    struct rg_buf msg = { 0 };
    int rc;

    memset(in, 0, sizeof(*in));
    if (!expr) {
        snprintf(errbuf, cap, "%s", error[0] ? error : "query not built");
        in->error = errbuf;
        return;
    }
    memset(&res, 0, sizeof(res));
    rc = rg_promql_eval_instant(d->store, expr, now_ms, &d->popts, &res, &msg);
    if (rc) {
        snprintf(errbuf, cap, "%s", msg.data ? msg.data : rg_strerror(rc));
        in->error = errbuf;
    } else {
        extract(res.type, res.scalar, res.series, res.nseries, in, errbuf, cap);
    }
    rg_promql_result_free(&res);
    rg_buf_cleanup(&msg);
}

static void eval_slot(struct rg_deploy *d, const struct dep *p, struct slot *s, int64_t now_ms)
{
    if (s->group >= 0) {
        group_lookup(d, d->groups[s->group], p->name, now_ms, &s->val, s->val_err,
                     sizeof(s->val_err));
        return;
    }
    if (s->shared >= 0) {
        struct shared *sh = &d->shared[s->shared];
        if (sh->tick != d->tick) {
            eval_one(d, sh->expr, sh->error, now_ms, &sh->val, sh->val_err,
                     sizeof(sh->val_err));
            sh->tick = d->tick;
        }
        s->val = sh->val;
        s->bval = sh->val;
        return;
    }
    eval_one(d, s->expr, s->error, now_ms, &s->val, s->val_err, sizeof(s->val_err));
    if (s->need_base)
        eval_one(d, s->base, s->error, now_ms, &s->bval, s->bval_err, sizeof(s->bval_err));
}

/* ---- exported series ----------------------------------------------------------------- */

/* Writes one sample of the series with the label pairs @kv (name, value, ...; sorted
 * by name, __name__ first). A stale marker (@stale) is only written to a series that
 * exists, so a check that never had data creates nothing. */
static void put_sample(struct rg_deploy *d, const char *const *kv, size_t npairs, int64_t t,
                       double v, int stale)
{
    struct rg_label_ref l[6];
    struct rg_series *s;
    int rc;

    for (size_t i = 0; i < npairs && i < 6; i++) {
        l[i].name = (struct rg_slice){ kv[2 * i], strlen(kv[2 * i]) };
        l[i].value = (struct rg_slice){ kv[2 * i + 1], strlen(kv[2 * i + 1]) };
    }
    if (stale)
        rc = rg_store_series_find(d->store, l, npairs, &s);
    else
        rc = rg_store_series_get(d->store, l, npairs, &s, NULL);
    if (rc == 0)
        rg_store_append(d->store, s, t, stale ? rg_stale_nan() : v);
}

static void set_child(struct rg_metrics_family *f, const char *const *values, double v)
{
    struct rg_metrics_child *c;

    if (f && (c = rg_metrics_child(f, values)))
        c->value = v;
}

static void put_check(struct rg_deploy *d, const struct dep *p, const char *phase,
                      const struct rg_checklist_check *c, const struct rg_verdict_check *vc,
                      int64_t now_ms)
{
    const char *kind = rg_checklist_kind_name(c->kind);
    const char *kv[] = { "__name__", "rollgate_check_value", "check", c->name,
                         "deployment", p->name, "kind", kind, "phase", phase };
    const char *mv[] = { p->name, phase, c->name, kind };
    int has = vc && vc->has_value;

    /* Without @vc the phase was left: every series of the check ends. */
    put_sample(d, kv, 5, now_ms, has ? vc->value : 0, !has);
    set_child(d->f_value, mv, has ? vc->value : NAN);
    kv[1] = "rollgate_check_threshold";
    if (c->has_threshold && vc) {
        put_sample(d, kv, 5, now_ms, c->threshold, 0);
        set_child(d->f_threshold, mv, c->threshold);
    } else if (!vc) {
        put_sample(d, kv, 5, now_ms, 0, 1);
        set_child(d->f_threshold, mv, NAN);
    }
}

/* Writes the exported series of @p for @phase: current values, or (@stale) stale
 * markers for a phase that was left. */
static void export_phase(struct rg_deploy *d, struct dep *p, size_t phase, int64_t now_ms,
                         int stale)
{
    const struct rg_checklist_phase *ph = &d->cl->phases[phase];
    const char *pn = ph->name;

    for (int v = 0; v < RG_VERDICT__COUNT; v++) {
        const char *vn = rg_verdict_name((enum rg_verdict_kind)v);
        const char *kv[] = { "__name__", "rollgate_deployment_verdict", "deployment", p->name,
                             "phase", pn, "verdict", vn };
        const char *mv[] = { p->name, pn, vn };
        double val = !stale && p->v.verdict == (enum rg_verdict_kind)v;
        put_sample(d, kv, 4, now_ms, val, stale);
        set_child(d->f_verdict, mv, val);
    }
    if (!stale) {
        for (size_t i = 0; i < p->v.nchecks; i++)
            put_check(d, p, pn, p->v.checks[i].spec, &p->v.checks[i], now_ms);
        return;
    }
    for (size_t j = 0; j < ph->ngates; j++)
        put_check(d, p, pn, &ph->gates[j], NULL, now_ms);
    for (size_t j = 0; j < ph->ntriggers; j++)
        put_check(d, p, pn, &ph->triggers[j], NULL, now_ms);
    for (size_t j = 0; j < d->cl->ntriggers; j++)
        put_check(d, p, pn, &d->cl->triggers[j], NULL, now_ms);
}

/* ---- state file ---------------------------------------------------------------------- */

int rg_deploy_save(struct rg_deploy *d)
{
    struct rg_buf b = { 0 };
    int rc;

    if (!d->state_path || !d->dirty)
        return 0;
    rg_buf_puts(&b, "{\"version\":1,\"deployments\":[");
    for (size_t i = 0; i < d->ndeps; i++) {
        const struct dep *p = d->deps[i];
        if (i)
            rg_buf_putc(&b, ',');
        rg_buf_puts(&b, "{\"name\":");
        rg_json_cstr(&b, p->name);
        rg_buf_puts(&b, ",\"phase\":");
        rg_json_cstr(&b, d->cl->phases[p->v.phase].name);
        rg_buf_printf(&b, ",\"phase_start\":%lld,\"discovered\":%s,\"rollback\":%s,"
                          "\"verdict_since\":%lld,\"reason\":",
                      (long long)p->v.phase_start_ms, p->discovered ? "true" : "false",
                      p->v.sticky ? "true" : "false", (long long)p->v.verdict_since_ms);
        rg_json_cstr(&b, p->v.sticky ? p->v.reason : "");
        rg_buf_puts(&b, ",\"human_trigger\":");
        rg_json_cstr(&b, p->v.human_reason);
        rg_buf_putc(&b, '}');
    }
    rg_buf_puts(&b, "]}\n");
    if (!b.data) {
        rg_buf_cleanup(&b);
        return RG_ENOMEM;
    }
    rc = rg_file_write_atomic(d->state_path, b.data, b.len);
    rg_buf_cleanup(&b);
    if (rc) {
        /* Retried on every tick while it fails, but logged once. */
        if (!d->save_failing)
            rg_warn("event=deployments_save_failed path=%s err=%s", d->state_path,
                    rg_strerror(rc));
        d->save_failing = 1;
        return rc;
    }
    if (d->save_failing)
        rg_info("event=deployments_saved path=%s", d->state_path);
    d->save_failing = 0;
    d->dirty = 0;
    return 0;
}

static struct dep *discovered_new(struct rg_deploy *d, const char *value, int64_t now_ms);

static int64_t json_int(yajl_val v, int64_t dflt)
{
    return YAJL_IS_INTEGER(v) ? (int64_t)YAJL_GET_INTEGER(v) : dflt;
}

static void restore(struct rg_deploy *d, int64_t now_ms)
{
    static const char *const k_deps[] = { "deployments", NULL };
    static const char *const k_name[] = { "name", NULL };
    static const char *const k_phase[] = { "phase", NULL };
    static const char *const k_start[] = { "phase_start", NULL };
    static const char *const k_disc[] = { "discovered", NULL };
    static const char *const k_rb[] = { "rollback", NULL };
    static const char *const k_since[] = { "verdict_since", NULL };
    static const char *const k_reason[] = { "reason", NULL };
    static const char *const k_human[] = { "human_trigger", NULL };
    struct rg_buf text = { 0 };
    char msg[256];
    yajl_val root, deps;
    int rc;

    rc = rg_file_read(d->state_path, MAX_STATE_BYTES, &text);
    if (rc == RG_ENOENT)
        return;
    if (rc) {
        rg_warn("event=deployments_restore_failed path=%s err=%s", d->state_path,
                rg_strerror(rc));
        rg_buf_cleanup(&text);
        return;
    }
    root = yajl_tree_parse(text.data ? text.data : "", msg, sizeof(msg));
    rg_buf_cleanup(&text);
    deps = root ? yajl_tree_get(root, (const char **)k_deps, yajl_t_array) : NULL;
    if (!deps) {
        rg_warn("event=deployments_restore_failed path=%s err=\"corrupt state file, starting "
                "fresh\"", d->state_path);
        yajl_tree_free(root);
        return;
    }
    for (size_t i = 0; i < deps->u.array.len; i++) {
        yajl_val e = deps->u.array.values[i];
        const char *name = YAJL_GET_STRING(yajl_tree_get(e, (const char **)k_name,
                                                         yajl_t_string));
        const char *phase = YAJL_GET_STRING(yajl_tree_get(e, (const char **)k_phase,
                                                          yajl_t_string));
        const char *reason = YAJL_GET_STRING(yajl_tree_get(e, (const char **)k_reason,
                                                           yajl_t_string));
        const char *human = YAJL_GET_STRING(yajl_tree_get(e, (const char **)k_human,
                                                          yajl_t_string));
        int64_t start = json_int(yajl_tree_get(e, (const char **)k_start, yajl_t_number),
                                 now_ms);
        int64_t since = json_int(yajl_tree_get(e, (const char **)k_since, yajl_t_number),
                                 start);
        int disc = YAJL_IS_TRUE(yajl_tree_get(e, (const char **)k_disc, yajl_t_true));
        int rb = YAJL_IS_TRUE(yajl_tree_get(e, (const char **)k_rb, yajl_t_true));
        long idx, ph;
        struct dep *p;

        if (!name || !phase) {
            rg_warn("event=deployments_restore_skip path=%s entry=%zu err=\"no name or phase\"",
                    d->state_path, i);
            continue;
        }
        idx = dep_index(d, name);
        if (idx < 0 && disc && d->cl->discovery.enabled) {
            if ((p = discovered_new(d, name, now_ms)))
                idx = dep_index(d, name);
        }
        if (idx < 0)
            continue;   /* a deployment no longer configured */
        p = d->deps[idx];
        ph = rg_checklist_phase_find(d->cl, phase);
        if (ph < 0 || !dep_has_phase(p, (size_t)ph)) {
            rg_warn("event=deployments_restore_skip deployment=%s phase=%s err=\"phase no "
                    "longer configured\"", name, phase);
            continue;
        }
        if (rg_verdict_start_phase(&p->v, (size_t)ph, start))
            continue;
        if (rb || (human && human[0]))
            rg_verdict_restore_rollback(&p->v, since, reason ? reason : "", human ? human : "");
    }
    yajl_tree_free(root);
}

/* ---- discovery ----------------------------------------------------------------------- */

/* True when an explicit deployment already selects label=value with an equality
 * matcher written exactly so (the usual way to name one job). */
static int explicitly_covered(const struct rg_deploy *d, const char *matcher, size_t len)
{
    for (size_t i = 0; i < d->ndeps; i++) {
        const char *sel = d->deps[i]->selector, *at = sel;
        if (d->deps[i]->discovered)
            continue;
        while ((at = strstr(at, matcher))) {
            if ((at == sel || at[-1] == ',' || at[-1] == ' ') &&
                (at[len] == '\0' || at[len] == ',' || at[len] == ' '))
                return 1;
            at++;
        }
    }
    return 0;
}

static int matcher_text(const char *label, const char *value, struct rg_buf *out)
{
    rg_buf_printf(out, "%s=\"", label);
    for (const char *s = value; *s; s++) {
        if (*s == '"' || *s == '\\')
            rg_buf_putc(out, '\\');
        if (*s == '\n')
            rg_buf_puts(out, "\\n");
        else
            rg_buf_putc(out, *s);
    }
    rg_buf_putc(out, '"');
    return out->data ? 0 : RG_ENOMEM;
}

static int excluded(const struct rg_deploy *d, const char *value)
{
    const struct rg_checklist_discovery *disc = &d->cl->discovery;

    if (strcmp(d->cl->discovery.label, "job") == 0 &&
        strcmp(value, d->cl->metrics.database_job) == 0)
        return 1;
    for (size_t i = 0; i < disc->nexclude; i++)
        if (strcmp(disc->exclude[i], value) == 0)
            return 1;
    return value[0] == '\0';
}

static struct dep *discovered_new(struct rg_deploy *d, const char *value, int64_t now_ms)
{
    struct rg_buf sel = { 0 };
    struct dep *p = NULL;

    if (excluded(d, value) || d->cl->discovery.nphases == 0)
        return NULL;
    if (d->ndeps >= MAX_DEPLOYMENTS) {
        if (!d->full_warned)
            rg_warn("event=deployments_limit max=%d", MAX_DEPLOYMENTS);
        d->full_warned = 1;
        return NULL;
    }
    if (matcher_text(d->cl->discovery.label, value, &sel) == 0 &&
        !explicitly_covered(d, sel.data, sel.len)) {
        p = dep_new(d, value, sel.data, NULL, d->cl->discovery.phases,
                    d->cl->discovery.nphases, 1, now_ms);
        if (p && dep_add(d, p)) {
            dep_free(p);
            p = NULL;
        }
        if (p) {
            p->seen = 1;
            d->dirty = 1;
            rg_info("event=deployment_discovered deployment=%s phase=%s", p->name,
                    d->cl->phases[p->v.phase].name);
        }
    }
    rg_buf_cleanup(&sel);
    return p;
}

struct scan {
    struct rg_deploy *d;
    int64_t now_ms;
};

static int on_label_value(const char *value, void *ud)
{
    struct scan *sc = ud;
    long idx = dep_index(sc->d, value);

    if (idx >= 0)
        sc->d->deps[idx]->seen = 1;
    else
        discovered_new(sc->d, value, sc->now_ms);
    return 0;
}

static void discover(struct rg_deploy *d, int64_t now_ms)
{
    struct scan sc = { d, now_ms };
    size_t k = 0;

    for (size_t i = 0; i < d->ndeps; i++)
        d->deps[i]->seen = 0;
    rg_store_label_values(d->store, d->cl->discovery.label, on_label_value, &sc);
    /* Discovered deployments whose label value has left the store are dropped, with
     * stale markers so that their exported series end too. */
    for (size_t i = 0; i < d->ndeps; i++) {
        struct dep *p = d->deps[i];
        if (p->discovered && !p->seen) {
            export_phase(d, p, p->v.phase, now_ms, 1);
            rg_info("event=deployment_gone deployment=%s", p->name);
            dep_free(p);
            d->dirty = 1;
            continue;
        }
        d->deps[k++] = p;
    }
    d->ndeps = k;
}

/* ---- lifecycle ----------------------------------------------------------------------- */

static int source_known(const char *name, void *ud)
{
    return rg_query_sources_find(ud, name) != NULL;
}

int rg_deploy_new(const struct rg_config *cfg, struct rg_store *store,
                  struct rg_metrics *metrics, const char *state_path, int64_t now_ms,
                  struct rg_deploy **out, struct rg_buf *err)
{
    struct rg_deploy_opts o;

    memset(&o, 0, sizeof(o));
    o.state_path = state_path;
    o.now_ms = now_ms;
    return rg_deploy_new_opts(cfg, store, metrics, &o, out, err);
}

int rg_deploy_new_opts(const struct rg_config *cfg, struct rg_store *store,
                       struct rg_metrics *metrics, const struct rg_deploy_opts *o,
                       struct rg_deploy **out, struct rg_buf *err)
{
    const char *state_path = o->state_path;
    int64_t now_ms = o->now_ms;
    static const char *const verdict_labels[] = { "deployment", "phase", "verdict" };
    static const char *const check_labels[] = { "deployment", "phase", "check", "kind" };
    struct rg_deploy *d;
    int rc;

    *out = NULL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return RG_ENOMEM;
    d->store = store;
    d->metrics = metrics;
    d->batching = 1;
    d->client = o->client;
    d->sources = o->sources;
    rg_promql_opts_default(&d->popts);
    d->popts.lookback_ms = cfg->query.lookback_delta_ms;
    d->popts.max_samples = cfg->query.max_samples;
    /* One evaluation must never stall the loop for long: bound it by the interval. */
    d->popts.timeout_ms = cfg->query.timeout_ms;
    if ((rc = rg_checklist_parse(cfg, &d->cl, err)))
        goto fail_parse;
    if ((rc = rg_checklist_check_sources(d->cl, source_known, (void *)d->sources, err)))
        goto fail_parse;
    rc = RG_ENOMEM;
    d->shared = calloc(d->cl->nsignals, sizeof(*d->shared));
    if (!d->shared || (state_path && !(d->state_path = strdup(state_path))))
        goto fail_alloc;
    for (size_t i = 0; i < d->cl->nsignals; i++) {
        d->shared[i].tick = -1;
        if (!has_selector(d->cl->signals[i].expr) &&
            build_query(d->cl->signals[i].expr, "", 0, &d->shared[i].query, &d->shared[i].expr,
                        d->shared[i].error, sizeof(d->shared[i].error)))
            goto fail_alloc;
    }
    if (metrics) {
        d->f_verdict = rg_metrics_family(metrics, "rollgate_deployment_verdict",
                                         "1 for the current verdict of a deployment, "
                                         "0 for the others.",
                                         RG_METRICS_GAUGE, verdict_labels, 3, NULL, 0);
        d->f_value = rg_metrics_family(metrics, "rollgate_check_value",
                                       "Value of the signal behind a gate or trigger.",
                                       RG_METRICS_GAUGE, check_labels, 4, NULL, 0);
        d->f_threshold = rg_metrics_family(metrics, "rollgate_check_threshold",
                                           "Threshold of a gate or trigger.", RG_METRICS_GAUGE,
                                           check_labels, 4, NULL, 0);
        if (!d->f_verdict || !d->f_value || !d->f_threshold)
            goto fail_alloc;
    }
    for (size_t i = 0; i < d->cl->ndeployments; i++) {
        const struct rg_checklist_deployment *cd = &d->cl->deployments[i];
        struct dep *p = dep_new(d, cd->name, cd->selector, cd->baseline_selector, cd->phases,
                                cd->nphases, 0, now_ms);
        if (!p)
            goto fail_alloc;
        p->source = cd->source ? rg_query_sources_find(d->sources, cd->source) : NULL;
        if (dep_add(d, p)) {
            dep_free(p);
            goto fail_alloc;
        }
    }
    if (d->state_path)
        restore(d, now_ms);
    *out = d;
    return 0;

fail_alloc:
fail_parse:
    rg_deploy_free(d);
    return rc;
}

void rg_deploy_free(struct rg_deploy *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->ndeps; i++) {
        if (d->deps[i]->round)
            round_detach_all(d->deps[i]->round);
        d->deps[i]->round = NULL;
        dep_free(d->deps[i]);
    }
    free(d->deps);
    if (d->shared && d->cl)
        for (size_t i = 0; i < d->cl->nsignals; i++) {
            rg_promql_node_free(d->shared[i].expr);
            free(d->shared[i].query);
        }
    free(d->shared);
    for (size_t i = 0; i < d->ngroups; i++)
        group_free(d->groups[i]);
    free(d->groups);
    rg_checklist_free(d->cl);
    free(d->state_path);
    free(d);
}

void rg_deploy_set_event_cb(struct rg_deploy *d, rg_deploy_event_cb cb, void *ud)
{
    d->cb = cb;
    d->cb_ud = ud;
}

const struct rg_checklist *rg_deploy_checklist(const struct rg_deploy *d)
{
    return d->cl;
}

void rg_deploy_set_query_client(struct rg_deploy *d, struct rg_query_client *c)
{
    d->client = c;
}

void rg_deploy_set_batching(struct rg_deploy *d, int on)
{
    d->batching = on != 0;
    for (size_t i = 0; i < d->ndeps; i++)
        d->deps[i]->compiled = 0;
}

int64_t rg_deploy_interval(const struct rg_deploy *d)
{
    return d->cl->evaluation_interval_ms;
}

size_t rg_deploy_count(const struct rg_deploy *d)
{
    return d->ndeps;
}

/* ---- the tick ------------------------------------------------------------------------ */

/* Steps @p's verdict machine with the values now in its slots, emits the event of a
 * changed verdict and writes the exported series. */
static void dep_step(struct rg_deploy *d, struct dep *p, int64_t now_ms)
{
    struct rg_verdict_input *in;
    struct rg_verdict_input req = { 0 };
    enum rg_verdict_kind before = p->v.verdict;
    int was_sticky = p->v.sticky;

    in = calloc(p->v.nchecks ? p->v.nchecks : 1, sizeof(*in));
    if (!in)
        return;
    for (size_t i = 0; i < p->v.nchecks; i++) {
        const struct slot *s = &p->slots[p->check_slot[i]];
        in[i] = s->val;
        if (p->v.checks[i].spec->has_baseline) {
            in[i].has_baseline = s->bval.has_value;
            in[i].baseline = s->bval.value;
            if (s->bval.error && !in[i].error)
                in[i].error = s->bval.error;
        }
    }
    if (p->req.sig)
        req = p->req.val;
    rg_verdict_step(&p->v, now_ms, in, p->req.sig ? &req : NULL);
    free(in);
    if (p->v.sticky != was_sticky)
        d->dirty = 1;
    if (p->v.verdict != before)
        emit(d, p, p->v.verdict == RG_VERDICT_PROMOTE ? RG_DEPLOY_EVENT_PROMOTE
                   : p->v.verdict == RG_VERDICT_ROLLBACK ? RG_DEPLOY_EVENT_ROLLBACK
                   : RG_DEPLOY_EVENT_VERDICT,
             before, p->v.reason, now_ms);
    export_phase(d, p, p->v.phase, now_ms, 0);
}

/* ---- remote rounds ------------------------------------------------------------------- */

/* One query of a round: which slot (index, or nslots for the request count) and
 * whether it is the baseline variant; its answer once it is in. */
struct rq {
    struct round *rd;
    size_t slot;
    int base;
    int cancelled;
    struct rg_verdict_input in;
    char err[256];
};

struct round {
    struct rg_deploy *d;           /* NULL once the manager is gone */
    struct dep *p;                 /* NULL once the deployment is gone */
    int64_t now_ms;                /* the tick's time: the verdict steps with it */
    size_t phase;                  /* the phase and its start when the round began: */
    int64_t phase_start_ms;        /* a phase started meanwhile drops the answers */
    size_t pending;
    struct rq *q;                  /* owned */
    size_t nq;
};

static void round_detach_dep(struct round *rd)
{
    rd->p = NULL;
}

static void round_detach_all(struct round *rd)
{
    rd->d = NULL;
    rd->p = NULL;
}

static struct slot *round_slot(struct dep *p, size_t k)
{
    return k < p->nslots ? &p->slots[k] : &p->req;
}

/* Copies the answers into the slots and steps the verdict, unless the deployment
 * entered another phase while the round was out. */
static void round_finish(struct round *rd)
{
    struct rg_deploy *d = rd->d;
    struct dep *p = rd->p;

    if (!d || !p)
        return;
    p->round = NULL;
    /* A cancelled query (the client is closing) is no answer: no step this time. */
    for (size_t i = 0; i < rd->nq; i++)
        if (rd->q[i].cancelled)
            return;
    if (!p->compiled || p->compiled_phase != rd->phase || p->v.phase != rd->phase ||
        p->v.phase_start_ms != rd->phase_start_ms)
        return;
    for (size_t i = 0; i < rd->nq; i++) {
        struct rq *q = &rd->q[i];
        struct slot *s = round_slot(p, q->slot);
        struct rg_verdict_input *in = q->base ? &s->bval : &s->val;
        char *buf = q->base ? s->bval_err : s->val_err;
        *in = q->in;
        if (q->in.error) {
            snprintf(buf, sizeof(s->val_err), "%s", q->err);
            in->error = buf;
        }
    }
    dep_step(d, p, rd->now_ms);
    rg_deploy_save(d);
}

static void round_free(struct round *rd)
{
    free(rd->q);
    free(rd);
}

static void on_answer(void *ud, int err, const char *msg, struct rg_query_result *res)
{
    struct rq *q = ud;
    struct round *rd = q->rd;

    memset(&q->in, 0, sizeof(q->in));
    q->cancelled = err == RG_ECANCELED;
    if (err) {
        snprintf(q->err, sizeof(q->err), "%s", msg && msg[0] ? msg : rg_strerror(err));
        q->in.error = q->err;
    } else {
        extract(res->type, res->scalar, res->series, res->nseries, &q->in, q->err,
                sizeof(q->err));
    }
    if (--rd->pending)
        return;
    round_finish(rd);
    round_free(rd);
}

/* Sends the remote queries of @p's slots for the tick at @now_ms. */
static void round_start(struct rg_deploy *d, struct dep *p, int64_t now_ms)
{
    struct round *rd = calloc(1, sizeof(*rd));
    size_t n = 0;
    /* Like Prometheus' rule evaluation, the query time is aligned to the evaluation
     * interval, so that every deployment (and a rerun) asks for the same instants. */
    int64_t iv = d->cl->evaluation_interval_ms > 0 ? d->cl->evaluation_interval_ms : 1;
    int64_t qt = now_ms - ((now_ms % iv) + iv) % iv;

    if (!rd || !(rd->q = calloc(2 * (p->nslots + 1), sizeof(*rd->q)))) {
        free(rd);
        return;   /* out of memory: try again next tick */
    }
    rd->d = d;
    rd->p = p;
    rd->now_ms = now_ms;
    rd->phase = p->v.phase;
    rd->phase_start_ms = p->v.phase_start_ms;
    for (size_t k = 0; k <= p->nslots; k++) {
        struct slot *s = round_slot(p, k);
        if (!s->sig || !s->src)
            continue;
        for (int base = 0; base <= s->need_base; base++) {
            rd->q[n].rd = rd;
            rd->q[n].slot = k;
            rd->q[n].base = base;
            n++;
        }
    }
    rd->nq = n;
    /* One extra count until every query is out (the client never calls back from
     * inside rg_query_instant). */
    rd->pending = n + 1;
    p->round = rd;
    for (size_t i = 0; i < n; i++) {
        struct rq *q = &rd->q[i];
        struct slot *s = round_slot(p, q->slot);
        const struct rg_promql_node *expr = q->base ? s->base : s->expr;
        const char *text = q->base ? s->base_query : s->query;
        int rc = RG_EINVAL;

        if (!expr || !text)
            snprintf(q->err, sizeof(q->err), "%s", s->error[0] ? s->error : "query not built");
        else if (!d->client)
            snprintf(q->err, sizeof(q->err), "source %s: no query client", s->src->name);
        else if ((rc = rg_query_instant(d->client, s->src, text, qt, on_answer, q)) != 0)
            snprintf(q->err, sizeof(q->err), "source %s: cannot send the query: %s",
                     s->src->name, rg_strerror(rc));
        else
            continue;
        q->cancelled = rc == RG_ECANCELED;
        q->in.error = q->err;
        rd->pending--;
    }
    if (--rd->pending == 0) {
        round_finish(rd);
        round_free(rd);
    }
}

static void dep_tick(struct rg_deploy *d, struct dep *p, int64_t now_ms)
{
    if (p->round) {
        /* The previous round is still out: this tick is skipped for @p, as
         * Prometheus skips a group's slot while its evaluation overruns. */
        p->rounds_missed++;
        return;
    }
    if (p->stale_pending) {
        if (p->stale_phase != p->v.phase)
            export_phase(d, p, p->stale_phase, now_ms, 1);
        p->stale_pending = 0;
    }
    if ((!p->compiled || p->compiled_phase != p->v.phase) && dep_compile(d, p))
        return;   /* out of memory: try again next tick */
    for (size_t k = 0; k < p->nslots; k++)
        if (!p->slots[k].src)
            eval_slot(d, p, &p->slots[k], now_ms);
    if (p->req.sig && !p->req.src)
        eval_slot(d, p, &p->req, now_ms);
    if (p->nremote) {
        round_start(d, p, now_ms);
        return;
    }
    dep_step(d, p, now_ms);
}

int64_t rg_deploy_tick(struct rg_deploy *d, int64_t now_ms)
{
    d->tick++;
    if (d->cl->discovery.enabled &&
        (!d->scanned || now_ms - d->last_scan_ms >= d->cl->discovery.interval_ms ||
         now_ms < d->last_scan_ms)) {
        discover(d, now_ms);
        d->scanned = 1;
        d->last_scan_ms = now_ms;
    }
    for (size_t i = 0; i < d->ndeps; i++)
        dep_tick(d, d->deps[i], now_ms);
    rg_deploy_save(d);
    return now_ms + d->cl->evaluation_interval_ms;
}

/* ---- API operations ------------------------------------------------------------------ */

const struct rg_verdict *rg_deploy_verdict(const struct rg_deploy *d, const char *name)
{
    long i = dep_index(d, name);
    return i < 0 ? NULL : &d->deps[i]->v;
}

static void phase_list_json(const struct rg_deploy *d, const struct dep *p, struct rg_buf *out)
{
    rg_buf_putc(out, '[');
    for (size_t i = 0; i < p->nphases; i++) {
        if (i)
            rg_buf_putc(out, ',');
        rg_json_cstr(out, d->cl->phases[p->phases[i]].name);
    }
    rg_buf_putc(out, ']');
}

int rg_deploy_json(const struct rg_deploy *d, const char *name, int64_t now_ms,
                   struct rg_buf *out)
{
    long i = dep_index(d, name);
    const struct dep *p;
    const char *const *queries;

    if (i < 0)
        return RG_ENOENT;
    p = d->deps[i];
    queries = p->compiled && p->compiled_phase == p->v.phase ? p->queries : NULL;
    if (rg_verdict_json(&p->v, p->name, queries, now_ms, out))
        return RG_ENOMEM;
    /* Reopen the object to add the deployment's own fields. */
    out->len--;
    rg_buf_puts(out, ",\"selector\":");
    rg_json_cstr(out, p->selector);
    rg_buf_puts(out, ",\"baseline_selector\":");
    if (p->baseline_selector)
        rg_json_cstr(out, p->baseline_selector);
    else
        rg_buf_puts(out, "null");
    rg_buf_printf(out, ",\"discovered\":%s,\"phases\":", p->discovered ? "true" : "false");
    phase_list_json(d, p, out);
    rg_buf_puts(out, ",\"requests_query\":");
    if (p->req.query)
        rg_json_cstr(out, p->req.query);
    else
        rg_buf_puts(out, "null");
    rg_buf_putc(out, '}');
    return out->data ? 0 : RG_ENOMEM;
}

static const struct rg_deploy *sort_d;

static int by_name(const void *a, const void *b)
{
    return strcmp(sort_d->deps[*(const size_t *)a]->name, sort_d->deps[*(const size_t *)b]->name);
}

int rg_deploy_list_json(const struct rg_deploy *d, int64_t now_ms, struct rg_buf *out)
{
    size_t *order = calloc(d->ndeps ? d->ndeps : 1, sizeof(*order));

    if (!order)
        return RG_ENOMEM;
    for (size_t i = 0; i < d->ndeps; i++)
        order[i] = i;
    sort_d = d;
    qsort(order, d->ndeps, sizeof(*order), by_name);
    sort_d = NULL;
    rg_buf_putc(out, '[');
    for (size_t k = 0; k < d->ndeps; k++) {
        const struct dep *p = d->deps[order[k]];
        const struct rg_checklist_phase *ph = &d->cl->phases[p->v.phase];
        if (k)
            rg_buf_putc(out, ',');
        rg_buf_puts(out, "{\"name\":");
        rg_json_cstr(out, p->name);
        rg_buf_puts(out, ",\"phase\":");
        rg_json_cstr(out, ph->name);
        rg_buf_printf(out, ",\"phase_index\":%zu,\"phase_start\":%.3f,\"time_in_phase\":%.3f,"
                           "\"verdict\":\"%s\",\"verdict_since\":%.3f,\"reason\":",
                      p->v.phase, (double)p->v.phase_start_ms / 1000.0,
                      (double)(now_ms - p->v.phase_start_ms) / 1000.0,
                      rg_verdict_name(p->v.verdict), (double)p->v.verdict_since_ms / 1000.0);
        rg_json_cstr(out, p->v.reason);
        rg_buf_printf(out, ",\"discovered\":%s}", p->discovered ? "true" : "false");
    }
    rg_buf_putc(out, ']');
    free(order);
    return out->data ? 0 : RG_ENOMEM;
}

static int start(struct rg_deploy *d, struct dep *p, size_t phase, int64_t now_ms,
                 enum rg_deploy_event_kind kind)
{
    size_t old = p->v.phase;
    enum rg_verdict_kind before = p->v.verdict;
    int rc = rg_verdict_start_phase(&p->v, phase, now_ms);

    if (rc)
        return rc;
    if (old != phase) {
        p->stale_pending = 1;
        p->stale_phase = old;
    }
    d->dirty = 1;
    emit(d, p, kind, before, p->v.reason, now_ms);
    rg_deploy_save(d);
    return 0;
}

int rg_deploy_start_phase(struct rg_deploy *d, const char *name, const char *phase,
                          int64_t now_ms)
{
    long i = dep_index(d, name);
    long ph;

    if (i < 0)
        return RG_ENOENT;
    ph = rg_checklist_phase_find(d->cl, phase);
    if (ph < 0 || !dep_has_phase(d->deps[i], (size_t)ph))
        return RG_EINVAL;
    return start(d, d->deps[i], (size_t)ph, now_ms, RG_DEPLOY_EVENT_PHASE_STARTED);
}

int rg_deploy_reset(struct rg_deploy *d, const char *name, int64_t now_ms)
{
    long i = dep_index(d, name);

    if (i < 0)
        return RG_ENOENT;
    return start(d, d->deps[i], d->deps[i]->phases[0], now_ms, RG_DEPLOY_EVENT_RESET);
}

int rg_deploy_trigger(struct rg_deploy *d, const char *name, const char *reason,
                      int64_t now_ms)
{
    long i = dep_index(d, name);
    struct dep *p;
    enum rg_verdict_kind before;

    if (i < 0)
        return RG_ENOENT;
    p = d->deps[i];
    before = p->v.verdict;
    rg_verdict_trigger(&p->v, now_ms, reason);
    d->dirty = 1;
    emit(d, p, RG_DEPLOY_EVENT_HUMAN_TRIGGER, before, p->v.human_reason, now_ms);
    rg_deploy_save(d);
    return 0;
}
