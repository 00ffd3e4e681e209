/* query/eval.c - one-shot evaluation of a deployment's checklist (see eval.h).
 *
 * The evaluation reuses the verdict machine of rules/verdict.h for the per-check
 * rules (thresholds, baselines, no_data policies), stepping it once at T with the
 * queried values; only the parts a single step cannot know are done here: triggers
 * with `for` are decided from a range query (the "held throughout" test below) and
 * the verdict is derived from the check states by the one-shot rules of eval.h.
 * Each distinct (signal, selector) pair is queried once.
 *
 * Known answers. The rounds of rg_query_eval_run_all() (eval.h, "Batching") share a
 * table of requests and their answers: an open-addressing hash table (FNV-1a over the
 * expression, mixed with the kind and times of the query) indexing individually
 * allocated requests, so that a borrowed answer stays put while new requests are
 * recorded. An evaluation looks every query up there first; in a recording round a
 * miss is recorded and answered with a placeholder, and the evaluation, marked as
 * having missed, is thrown away and repeated in the next round.
 */
#include "query/eval.h"

#include "promql/ast.h"
#include "util/err.h"
#include "util/json.h"
#include "util/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- deployments ------------------------------------------------------------------- */

static void target_clear(struct rg_query_target *t)
{
    free(t->name);
    free(t->selector);
    free(t->baseline_selector);
    free(t->phases);
    memset(t, 0, sizeof(*t));
}

void rg_query_targets_cleanup(struct rg_query_targets *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        target_clear(&t->v[i]);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

static int target_add(struct rg_query_targets *ts, const char *name, const char *selector,
                      const char *baseline, const size_t *phases, size_t nphases,
                      int discovered)
{
    struct rg_query_target *a = realloc(ts->v, (ts->n + 1) * sizeof(*a));
    struct rg_query_target *t;

    if (!a)
        return RG_ENOMEM;
    ts->v = a;
    t = &a[ts->n];
    memset(t, 0, sizeof(*t));
    t->name = strdup(name);
    t->selector = strdup(selector);
    t->baseline_selector = baseline ? strdup(baseline) : NULL;
    t->phases = calloc(nphases ? nphases : 1, sizeof(*t->phases));
    t->discovered = discovered;
    if (!t->name || !t->selector || (baseline && !t->baseline_selector) || !t->phases) {
        target_clear(t);
        return RG_ENOMEM;
    }
    memcpy(t->phases, phases, nphases * sizeof(*phases));
    t->nphases = nphases;
    ts->n++;
    return 0;
}

/* The matcher discovery writes for label=value: the value quoted with \ and "
 * escaped, so that any label value makes a valid selector. */
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

int rg_query_targets_build(const struct rg_checklist *cl, const char *name,
                           struct rg_query_targets *out, struct rg_buf *err)
{
    struct rg_buf sel = { 0 };
    long i;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!name) {
        if (cl->ndeployments == 0) {
            rg_buf_printf(err, "the configuration names no deployments: give one with "
                               "--deployment NAME (selector %s=\"NAME\")",
                          cl->discovery.label);
            return RG_ENOENT;
        }
        for (size_t k = 0; k < cl->ndeployments; k++) {
            const struct rg_checklist_deployment *d = &cl->deployments[k];
            if ((rc = target_add(out, d->name, d->selector, d->baseline_selector, d->phases,
                                 d->nphases, 0)))
                return rc;
        }
        return 0;
    }
    i = rg_checklist_deployment_find(cl, name);
    if (i >= 0) {
        const struct rg_checklist_deployment *d = &cl->deployments[i];
        return target_add(out, d->name, d->selector, d->baseline_selector, d->phases,
                          d->nphases, 0);
    }
    if (!cl->discovery.enabled || cl->discovery.nphases == 0) {
        rg_buf_printf(err, "no deployment \"%s\" in the configuration, and discovery is off",
                      name);
        return RG_ENOENT;
    }
    if ((rc = matcher_text(cl->discovery.label, name, &sel)) == 0)
        rc = target_add(out, name, sel.data, NULL, cl->discovery.phases,
                        cl->discovery.nphases, 1);
    rg_buf_cleanup(&sel);
    return rc;
}

static int excluded(const struct rg_checklist *cl, const char *value)
{
    if (!value[0])
        return 1;
    if (strcmp(cl->discovery.label, "job") == 0 && strcmp(value, cl->metrics.database_job) == 0)
        return 1;
    for (size_t i = 0; i < cl->discovery.nexclude; i++)
        if (strcmp(cl->discovery.exclude[i], value) == 0)
            return 1;
    return 0;
}

static int target_cmp(const void *a, const void *b)
{
    return strcmp(((const struct rg_query_target *)a)->name,
                  ((const struct rg_query_target *)b)->name);
}

int rg_query_targets_discover(const struct rg_checklist *cl, const struct rg_query_backend *be,
                              int64_t t_ms, int64_t lookback_ms, struct rg_query_targets *out,
                              struct rg_buf *err)
{
    const char *label = cl->discovery.label;
    struct rg_buf q = { 0 }, sel = { 0 }, msg = { 0 };
    struct rg_query_result res;
    int rc;

    memset(out, 0, sizeof(*out));
    memset(&res, 0, sizeof(res));
    if (!cl->discovery.enabled || cl->discovery.nphases == 0) {
        rg_buf_puts(err, "the configuration names no deployments and discovery is off");
        return RG_ENOENT;
    }
    rg_buf_printf(&q, "group by (%s) (count_over_time(%s{%s!=\"\"}[", label,
                  cl->metrics.http_requests, label);
    rg_promql_format_duration(lookback_ms > 0 ? lookback_ms : 5 * 60 * 1000, &q);
    rg_buf_puts(&q, "]))");
    if (!q.data)
        return RG_ENOMEM;
    rc = be->instant(be->ud, q.data, t_ms, &res, &msg);
    if (rc == RG_ENOMEM)
        goto done;
    if (rc || res.type != RG_PROMQL_VT_VECTOR) {
        rg_buf_printf(err, "discovering deployments with %s: %s", q.data,
                      rc ? (msg.data && msg.len ? msg.data : rg_strerror(rc))
                         : "the query did not return a vector");
        rc = RG_EEXEC;
        goto done;
    }
    for (size_t i = 0; i < res.nseries && !rc; i++) {
        const struct rg_promql_series *s = &res.series[i];
        for (size_t j = 0; j < s->nlabels; j++) {
            if (strcmp(s->labels[j].name, label) != 0 || excluded(cl, s->labels[j].value))
                continue;
            rg_buf_reset(&sel);
            rc = matcher_text(label, s->labels[j].value, &sel);
            if (!rc)
                rc = target_add(out, s->labels[j].value, sel.data, NULL, cl->discovery.phases,
                                cl->discovery.nphases, 1);
        }
    }
    if (!rc)
        qsort(out->v, out->n, sizeof(*out->v), target_cmp);
done:
    rg_query_result_free(&res);
    rg_buf_cleanup(&q);
    rg_buf_cleanup(&sel);
    rg_buf_cleanup(&msg);
    return rc;
}

long rg_query_target_phase(const struct rg_checklist *cl, const struct rg_query_target *t,
                           const char *name)
{
    long ph;

    if (t->nphases == 0)
        return -1;
    if (!name)
        return (long)t->phases[0];
    ph = rg_checklist_phase_find(cl, name);
    for (size_t i = 0; ph >= 0 && i < t->nphases; i++)
        if (t->phases[i] == (size_t)ph)
            return ph;
    return -1;
}

/* ---- values ------------------------------------------------------------------------ */

void rg_query_value(const struct rg_query_result *res, struct rg_verdict_input *in,
                    char *errbuf, size_t cap)
{
    memset(in, 0, sizeof(*in));
    if (res->type == RG_PROMQL_VT_SCALAR) {
        in->has_value = 1;
        in->value = res->scalar;
    } else if (res->type == RG_PROMQL_VT_VECTOR && res->nseries == 1 &&
               res->series[0].npoints) {
        in->has_value = 1;
        in->value = res->series[0].points[0].v;
    } else if (res->type == RG_PROMQL_VT_VECTOR && res->nseries > 1) {
        snprintf(errbuf, cap, "the signal returned %zu series; it must return one (aggregate "
                              "it, e.g. with sum or max)", res->nseries);
        in->error = errbuf;
    } else if (res->type != RG_PROMQL_VT_VECTOR) {
        snprintf(errbuf, cap, "the signal must return a scalar or an instant vector");
        in->error = errbuf;
    }
}

int rg_query_format_value(double v, struct rg_buf *out)
{
    if (isnan(v))
        return rg_buf_puts(out, "NaN");
    if (isinf(v))
        return rg_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    return rg_metrics_format_value(v, out);
}

int rg_query_format_time(int64_t ms, struct rg_buf *out)
{
    time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)s * 1000);
    struct tm tm;
    char text[64];

    if (!gmtime_r(&s, &tm) || strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return rg_buf_printf(out, "%lld", (long long)ms);
    if (frac)
        return rg_buf_printf(out, "%s.%03dZ", text, frac);
    return rg_buf_printf(out, "%sZ", text);
}

/* ---- the evaluation ---------------------------------------------------------------- */

/* ---- batches and known answers ----------------------------------------------------- */

void rg_query_req_cleanup(struct rg_query_req *r)
{
    if (!r)
        return;
    free(r->expr);
    rg_query_result_free(&r->res);
    rg_buf_cleanup(&r->msg);
    memset(r, 0, sizeof(*r));
}

void rg_query_backend_run(const struct rg_query_backend *be, struct rg_query_req *reqs,
                          size_t n)
{
    if (be->batch) {
        be->batch(be->ud, reqs, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct rg_query_req *r = &reqs[i];
        memset(&r->res, 0, sizeof(r->res));
        if (!r->range)
            r->err = be->instant(be->ud, r->expr, r->t_ms, &r->res, &r->msg);
        else if (be->range)
            r->err = be->range(be->ud, r->expr, r->t_ms, r->end_ms, r->step_ms, &r->res,
                               &r->msg);
        else if ((r->err = RG_ENOTSUP) != 0)
            rg_buf_puts(&r->msg, "range queries are not available");
        if (r->err)
            rg_query_result_free(&r->res);
        r->answered = 1;
    }
}

struct known {
    struct rg_query_req **v;       /* owned array of owned requests */
    size_t n, cap;
    size_t *slots;                 /* index + 1 into v; 0 = empty */
    size_t nslots;                 /* a power of two, at least twice n */
};

static uint64_t req_hash(int range, const char *expr, int64_t a, int64_t b, int64_t step)
{
    uint64_t h = 1469598103934665603ULL;

    for (const unsigned char *p = (const unsigned char *)expr; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    h = (h ^ (uint64_t)range) * 1099511628211ULL;
    h = (h ^ (uint64_t)a) * 1099511628211ULL;
    h = (h ^ (uint64_t)b) * 1099511628211ULL;
    h = (h ^ (uint64_t)step) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static int req_is(const struct rg_query_req *r, int range, const char *expr, int64_t a,
                  int64_t b, int64_t step)
{
    return r->range == range && r->t_ms == a && r->end_ms == b && r->step_ms == step &&
           strcmp(r->expr, expr) == 0;
}

/* The slot of the query, holding it or empty. */
static size_t *known_slot(const struct known *k, int range, const char *expr, int64_t a,
                          int64_t b, int64_t step)
{
    size_t mask = k->nslots - 1, i = (size_t)req_hash(range, expr, a, b, step) & mask;

    while (k->slots[i] && !req_is(k->v[k->slots[i] - 1], range, expr, a, b, step))
        i = (i + 1) & mask;
    return &k->slots[i];
}

static const struct rg_query_req *known_find(const struct known *k, int range, const char *expr,
                                             int64_t a, int64_t b, int64_t step)
{
    size_t *slot;

    if (!k || !k->nslots)
        return NULL;
    slot = known_slot(k, range, expr, a, b, step);
    return *slot ? k->v[*slot - 1] : NULL;
}

static int known_grow(struct known *k)
{
    size_t ns = k->nslots ? k->nslots * 2 : 64;
    size_t *slots = calloc(ns, sizeof(*slots));

    if (!slots)
        return RG_ENOMEM;
    free(k->slots);
    k->slots = slots;
    k->nslots = ns;
    for (size_t i = 0; i < k->n; i++) {
        const struct rg_query_req *r = k->v[i];
        *known_slot(k, r->range, r->expr, r->t_ms, r->end_ms, r->step_ms) = i + 1;
    }
    return 0;
}

/* Records a query to ask (once). Returns 0 or RG_ENOMEM. */
static int known_add(struct known *k, int range, const char *expr, int64_t a, int64_t b,
                     int64_t step)
{
    struct rg_query_req *r;
    size_t *slot;

    if (known_find(k, range, expr, a, b, step))
        return 0;
    if ((k->n + 1) * 2 > k->nslots && known_grow(k))
        return RG_ENOMEM;
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 64;
        struct rg_query_req **v = realloc(k->v, cap * sizeof(*v));
        if (!v)
            return RG_ENOMEM;
        k->v = v;
        k->cap = cap;
    }
    if (!(r = calloc(1, sizeof(*r))) || !(r->expr = strdup(expr))) {
        free(r);
        return RG_ENOMEM;
    }
    r->range = range;
    r->t_ms = a;
    r->end_ms = b;
    r->step_ms = step;
    slot = known_slot(k, range, expr, a, b, step);
    k->v[k->n++] = r;
    *slot = k->n;
    return 0;
}

/* Answers the requests recorded since @from through @be, in one batch. */
static int known_answer(struct known *k, size_t from, const struct rg_query_backend *be)
{
    size_t n = k->n - from;
    struct rg_query_req *batch = calloc(n ? n : 1, sizeof(*batch));

    if (!batch)
        return RG_ENOMEM;
    /* The backend wants one array; the table keeps each request where it is. */
    for (size_t i = 0; i < n; i++)
        batch[i] = *k->v[from + i];
    rg_query_backend_run(be, batch, n);
    for (size_t i = 0; i < n; i++)
        *k->v[from + i] = batch[i];
    free(batch);
    return 0;
}

static void known_cleanup(struct known *k)
{
    for (size_t i = 0; i < k->n; i++) {
        rg_query_req_cleanup(k->v[i]);
        free(k->v[i]);
    }
    free(k->v);
    free(k->slots);
    memset(k, 0, sizeof(*k));
}

/* ---- the evaluation ---------------------------------------------------------------- */

/* One distinct query of the evaluation and its answer. */
struct answer {
    char *query;                   /* owned */
    struct rg_verdict_input in;    /* in.error points into err */
    char err[256];
};

struct evaluator {
    const struct rg_query_backend *be;
    int64_t t_ms;
    struct answer **a;             /* owned array of owned answers (they stay put:
                                    * inputs point into them) */
    size_t n;
    size_t nerrors;
    struct known *known;           /* answers asked for in batches; may be NULL */
    int record;                    /* record misses instead of asking the backend */
    int missed;                    /* an answer was missing: this evaluation is void */
};

static int build(const char *tmpl, const char *selector, int64_t window_ms, char **out)
{
    struct rg_buf b = { 0 };

    if (rg_checklist_expand(tmpl, selector, window_ms, &b))
        return RG_ENOMEM;
    *out = rg_buf_steal(&b, NULL);
    return *out ? 0 : RG_ENOMEM;
}

/* The answer to a query: *@res and *@msg point to a known answer, or to @own and
 * @ownmsg filled by the backend (the caller frees those either way). In a recording
 * round a miss is recorded and answered with RG_ECANCELED. */
static int fetch(struct evaluator *ev, int range, const char *expr, int64_t a, int64_t b,
                 int64_t step, struct rg_query_result *own, struct rg_buf *ownmsg,
                 const struct rg_query_result **res, const struct rg_buf **msg)
{
    const struct rg_query_req *r = known_find(ev->known, range, expr, a, b, step);

    memset(own, 0, sizeof(*own));
    *res = own;
    *msg = ownmsg;
    if (r && r->answered) {
        *res = &r->res;
        *msg = &r->msg;
        return r->err;
    }
    if (ev->record) {
        /* A range query decided by placeholder answers may never be needed. */
        int wanted = !range || !ev->missed;
        ev->missed = 1;
        if (wanted && known_add(ev->known, range, expr, a, b, step))
            return RG_ENOMEM;
        return RG_ECANCELED;
    }
    if (!range)
        return ev->be->instant(ev->be->ud, expr, a, own, ownmsg);
    return ev->be->range(ev->be->ud, expr, a, b, step, own, ownmsg);
}

/* Runs @query at T once (later calls with the same text reuse the answer) and copies
 * the answer into *@in; in->error then points into the evaluator. */
static int ask(struct evaluator *ev, const char *query, const struct rg_verdict_input **in)
{
    const struct rg_query_result *res;
    const struct rg_buf *msg;
    struct rg_query_result own;
    struct rg_buf ownmsg = { 0 };
    struct answer *a, **arr;
    int rc;

    for (size_t i = 0; i < ev->n; i++)
        if (strcmp(ev->a[i]->query, query) == 0) {
            *in = &ev->a[i]->in;
            return 0;
        }
    arr = realloc(ev->a, (ev->n + 1) * sizeof(*arr));
    if (!arr)
        return RG_ENOMEM;
    ev->a = arr;
    if (!(a = calloc(1, sizeof(*a))))
        return RG_ENOMEM;
    if (!(a->query = strdup(query))) {
        free(a);
        return RG_ENOMEM;
    }
    ev->a[ev->n++] = a;
    rc = fetch(ev, 0, query, ev->t_ms, 0, 0, &own, &ownmsg, &res, &msg);
    if (rc == RG_ENOMEM) {
        rg_query_result_free(&own);
        rg_buf_cleanup(&ownmsg);
        return rc;
    }
    if (rc) {
        snprintf(a->err, sizeof(a->err), "%s", msg->data && msg->len ? msg->data
                                                                    : rg_strerror(rc));
        a->in.error = a->err;
    } else {
        rg_query_value(res, &a->in, a->err, sizeof(a->err));
    }
    if (a->in.error)
        ev->nerrors++;
    rg_query_result_free(&own);
    rg_buf_cleanup(&ownmsg);
    *in = &a->in;
    return 0;
}

/* Decides a trigger with `for` from its condition over [T - K*step, T]: returns
 * through *@held how long the condition has held without a break up to T, and
 * through *@throughout whether it held over the whole of `for`. A query error is
 * reported through @err (the trigger then stays as the instant evaluation left it). */
static int held_for(struct evaluator *ev, const struct rg_checklist_check *spec,
                    const char *query, int64_t step, int64_t *held, int *throughout,
                    char *err, size_t cap)
{
    const struct rg_query_result *res;
    const struct rg_buf *msg;
    struct rg_query_result own;
    struct rg_buf ownmsg = { 0 };
    int64_t k = (spec->for_ms + step - 1) / step;
    int64_t start = ev->t_ms - k * step;
    const struct rg_promql_series *s;
    int rc;

    *held = 0;
    *throughout = 0;
    memset(&own, 0, sizeof(own));
    if (!ev->be->range) {
        snprintf(err, cap, "range queries are not available");
        return 1;
    }
    rc = fetch(ev, 1, query, start, ev->t_ms, step, &own, &ownmsg, &res, &msg);
    if (rc == RG_ENOMEM)
        goto done;
    if (rc) {
        snprintf(err, cap, "%s", msg->data && msg->len ? msg->data : rg_strerror(rc));
        rc = 1;
        goto done;
    }
    if (res->type != RG_PROMQL_VT_MATRIX || res->nseries > 1) {
        snprintf(err, cap, res->nseries > 1 ? "the signal returned %zu series; it must "
                                              "return one (aggregate it, e.g. with sum or "
                                              "max)"
                                            : "the range query did not return a matrix",
                 res->nseries);
        rc = 1;
        goto done;
    }
    if (res->nseries == 1) {
        /* Walk back from T while the condition holds and no gap exceeds one step
         * (servers may align the points to multiples of the step, so the points
         * need not fall on T - i*step exactly). */
        const struct rg_sample *prev = NULL;
        s = &res->series[0];
        for (size_t i = s->npoints; i-- > 0;) {
            const struct rg_sample *p = &s->points[i];
            if (p->t > ev->t_ms)
                continue;
            if ((prev ? prev->t : ev->t_ms) - p->t > step || isnan(p->v) ||
                !rg_checklist_compare(spec->op, p->v, spec->threshold))
                break;
            prev = p;
        }
        if (prev) {
            *held = ev->t_ms - prev->t;
            *throughout = prev->t <= ev->t_ms - spec->for_ms;
        }
    }
    rc = 0;
done:
    rg_query_result_free(&own);
    rg_buf_cleanup(&ownmsg);
    return rc;
}

static void fmt_num(char *out, size_t cap, double v)
{
    struct rg_buf b = { 0 };

    rg_query_format_value(v, &b);
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

/* The verdict by the one-shot rules of eval.h. */
static void decide(const struct rg_checklist *cl, struct rg_query_eval *e)
{
    const struct rg_checklist_phase *ph = &cl->phases[e->phase];
    char a[64], b[64], c[64];

    for (size_t i = e->ngates; i < e->nchecks; i++) {
        const struct rg_query_check *t = &e->checks[i];
        if (t->state != RG_VERDICT_FIRING)
            continue;
        fmt_num(a, sizeof(a), t->value);
        fmt_num(b, sizeof(b), t->spec->threshold);
        if (t->spec->for_ms > 0) {
            fmt_dur(c, sizeof(c), t->held_ms);
            snprintf(e->reason, sizeof(e->reason), "trigger %s fires: %s = %s %s %s, held "
                     "for %s", t->spec->name, t->spec->signal, a,
                     rg_checklist_op_name(t->spec->op), b, c);
        } else {
            snprintf(e->reason, sizeof(e->reason), "trigger %s fires: %s = %s %s %s",
                     t->spec->name, t->spec->signal, a, rg_checklist_op_name(t->spec->op), b);
        }
        e->verdict = RG_VERDICT_ROLLBACK;
        e->exit_code = RG_QUERY_EXIT_ROLLBACK;
        return;
    }
    for (size_t i = 0; i < e->nchecks; i++) {
        const struct rg_query_check *k = &e->checks[i];
        if (!k->error[0])
            continue;
        snprintf(e->reason, sizeof(e->reason), "%s %s: query failed: %s",
                 rg_checklist_kind_name(k->spec->kind), k->spec->name, k->error);
        e->verdict = RG_VERDICT_INCONCLUSIVE;
        e->exit_code = RG_QUERY_EXIT_ERROR;
        return;
    }
    if (e->requests_error[0]) {
        snprintf(e->reason, sizeof(e->reason), "request count: query failed: %s",
                 e->requests_error);
        e->verdict = RG_VERDICT_INCONCLUSIVE;
        e->exit_code = RG_QUERY_EXIT_ERROR;
        return;
    }
    for (size_t i = 0; i < e->ngates; i++) {
        const struct rg_query_check *g = &e->checks[i];
        if (g->state != RG_VERDICT_FAILING)
            continue;
        if (g->has_value)
            fmt_num(a, sizeof(a), g->value);
        else
            snprintf(a, sizeof(a), "no data");
        snprintf(e->reason, sizeof(e->reason), "gate %s fails: %s = %s", g->spec->name,
                 g->spec->signal, a);
        e->verdict = RG_VERDICT_HOLD;
        e->exit_code = RG_QUERY_EXIT_GATES;
        return;
    }
    for (size_t i = 0; i < e->ngates; i++) {
        const struct rg_query_check *g = &e->checks[i];
        if (g->state != RG_VERDICT_NO_DATA)
            continue;
        snprintf(e->reason, sizeof(e->reason), "gate %s: signal %s has no data", g->spec->name,
                 g->spec->signal);
        e->verdict = RG_VERDICT_INCONCLUSIVE;
        e->exit_code = RG_QUERY_EXIT_GATES;
        return;
    }
    fmt_num(b, sizeof(b), e->requests);
    fmt_num(c, sizeof(c), ph->min_requests);
    if (e->needs_requests && (!e->has_requests || e->requests < ph->min_requests)) {
        snprintf(e->reason, sizeof(e->reason), "too few requests to judge: %s of the %s needed",
                 e->has_requests ? b : "no data on", c);
        e->verdict = RG_VERDICT_INCONCLUSIVE;
        e->exit_code = RG_QUERY_EXIT_GATES;
        return;
    }
    if (e->needs_requests)
        snprintf(e->reason, sizeof(e->reason), "every gate holds, with %s requests", b);
    else
        snprintf(e->reason, sizeof(e->reason), "every gate holds");
    e->verdict = RG_VERDICT_PROMOTE;
    e->exit_code = RG_QUERY_EXIT_PASS;
}

void rg_query_eval_cleanup(struct rg_query_eval *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nchecks; i++) {
        free(e->checks[i].query);
        free(e->checks[i].base_query);
    }
    free(e->checks);
    free(e->deployment);
    free(e->selector);
    free(e->requests_query);
    memset(e, 0, sizeof(*e));
}

static void evaluator_cleanup(struct evaluator *ev)
{
    for (size_t i = 0; i < ev->n; i++) {
        free(ev->a[i]->query);
        free(ev->a[i]);
    }
    free(ev->a);
}

/* One evaluation of @t against the known answers @known (may be NULL); with @record,
 * missing answers are recorded in @known and *@missed set. */
static int eval_one(const struct rg_checklist *cl, const struct rg_query_target *t,
                    size_t phase, int64_t t_ms, int64_t step_ms,
                    const struct rg_query_backend *be, struct known *known, int record,
                    int *missed, struct rg_query_eval *out)
{
    struct evaluator ev = { be, t_ms, NULL, 0, 0, known, record, 0 };
    const struct rg_checklist_phase *ph;
    const struct rg_checklist_signal *reqsig;
    struct rg_verdict_input *in = NULL, req = { 0 };
    struct rg_verdict v;
    int64_t window;
    int rc;

    memset(out, 0, sizeof(*out));
    if (phase >= cl->nphases)
        return RG_EINVAL;
    if (step_ms <= 0)
        step_ms = cl->evaluation_interval_ms > 0 ? cl->evaluation_interval_ms : 1000;
    ph = &cl->phases[phase];
    window = rg_checklist_window(ph);
    out->phase = phase;
    out->t_ms = t_ms;
    out->min_requests = ph->min_requests;
    out->deployment = strdup(t->name);
    out->selector = strdup(t->selector);
    if (!out->deployment || !out->selector)
        return RG_ENOMEM;
    if ((rc = rg_verdict_init(&v, cl, phase, t_ms)))
        return rc;
    rc = RG_ENOMEM;
    out->checks = calloc(v.nchecks ? v.nchecks : 1, sizeof(*out->checks));
    in = calloc(v.nchecks ? v.nchecks : 1, sizeof(*in));
    if (!out->checks || !in)
        goto fail_alloc;
    out->nchecks = v.nchecks;
    out->ngates = v.ngates;

    for (size_t i = 0; i < v.nchecks; i++) {
        struct rg_query_check *k = &out->checks[i];
        const struct rg_checklist_signal *sig;
        const struct rg_verdict_input *got = NULL, *bgot = NULL;

        k->spec = v.checks[i].spec;
        k->held_ms = -1;
        sig = rg_checklist_signal_find(cl, k->spec->signal);
        if (!sig) {
            /* The checklist resolves every reference; this only guards the seam. */
            snprintf(k->error, sizeof(k->error), "unknown signal %s", k->spec->signal);
            in[i].error = k->error;
            ev.nerrors++;
            continue;
        }
        if ((rc = build(sig->expr, t->selector, window, &k->query)) ||
            (rc = ask(&ev, k->query, &got)))
            goto fail_alloc;
        in[i] = *got;
        if (k->spec->has_baseline) {
            if (!t->baseline_selector) {
                snprintf(k->error, sizeof(k->error), "deployment %s has no baseline_selector "
                         "for the baseline comparison", t->name);
                in[i].error = k->error;
                ev.nerrors++;
                continue;
            }
            if ((rc = build(sig->expr, t->baseline_selector, window, &k->base_query)) ||
                (rc = ask(&ev, k->base_query, &bgot)))
                goto fail_alloc;
            in[i].has_baseline = bgot->has_value;
            in[i].baseline = bgot->value;
            if (bgot->error && !in[i].error)
                in[i].error = bgot->error;
        }
    }
    reqsig = rg_checklist_signal_find(cl, "request_count");
    if (reqsig && ph->min_requests > 0) {
        const struct rg_verdict_input *got = NULL;
        out->needs_requests = 1;
        if ((rc = build(reqsig->expr, t->selector, window, &out->requests_query)) ||
            (rc = ask(&ev, out->requests_query, &got)))
            goto fail_alloc;
        req = *got;
        if (req.error)
            snprintf(out->requests_error, sizeof(out->requests_error), "%s", req.error);
        out->has_requests = req.has_value && !isnan(req.value) && !req.error;
        out->requests = out->has_requests ? req.value : 0;
    }

    rg_verdict_step(&v, t_ms, in, out->needs_requests ? &req : NULL);

    for (size_t i = 0; i < v.nchecks; i++) {
        struct rg_query_check *k = &out->checks[i];
        const struct rg_verdict_check *vc = &v.checks[i];
        k->has_value = vc->has_value;
        k->value = vc->value;
        k->has_baseline = vc->has_baseline;
        k->baseline = vc->baseline;
        k->state = vc->state;
        if (vc->error[0] && !k->error[0])
            snprintf(k->error, sizeof(k->error), "%s", vc->error);
        if (k->spec->kind != RG_CHECKLIST_TRIGGER)
            continue;
        if (vc->state == RG_VERDICT_FIRING)
            k->held_ms = 0;
        if (vc->state == RG_VERDICT_PENDING && k->spec->for_ms > 0) {
            int64_t held = 0;
            int all = 0;
            if (held_for(&ev, k->spec, k->query, step_ms, &held, &all, k->error,
                         sizeof(k->error))) {
                ev.nerrors++;
                continue;
            }
            k->held_ms = held;
            k->state = all ? RG_VERDICT_FIRING : RG_VERDICT_PENDING;
        }
    }
    out->nerrors = ev.nerrors;
    decide(cl, out);
    rc = 0;

fail_alloc:
    *missed = ev.missed;
    free(in);
    evaluator_cleanup(&ev);
    rg_verdict_cleanup(&v);
    return rc;
}

/* Rounds that record missing answers before the last, which asks the backend for
 * whatever is still missing: instant queries, then range queries, then a spare. */
#define RECORDING_ROUNDS 3

int rg_query_eval_run_all(const struct rg_checklist *cl, const struct rg_query_target *targets,
                          const size_t *phases, size_t n, int64_t t_ms, int64_t step_ms,
                          const struct rg_query_backend *be, struct rg_query_eval *out)
{
    struct known known = { 0 };
    unsigned char *open;
    size_t nopen = n;
    int rc = 0;

    for (size_t i = 0; i < n; i++)
        memset(&out[i], 0, sizeof(out[i]));
    if (!(open = malloc(n ? n : 1)))
        return RG_ENOMEM;
    memset(open, 1, n ? n : 1);
    for (int round = 0; nopen && !rc; round++) {
        int record = round < RECORDING_ROUNDS;
        size_t before = known.n;
        for (size_t i = 0; i < n && !rc; i++) {
            int missed = 0;
            if (!open[i])
                continue;
            rg_query_eval_cleanup(&out[i]);
            rc = eval_one(cl, &targets[i], phases[i], t_ms, step_ms, be, &known, record,
                          &missed, &out[i]);
            if (!rc && !missed) {
                open[i] = 0;
                nopen--;
            }
        }
        if (!rc && nopen && known.n > before)
            rc = known_answer(&known, before, be);
    }
    free(open);
    known_cleanup(&known);
    return rc;
}

int rg_query_eval_run(const struct rg_checklist *cl, const struct rg_query_target *t,
                      size_t phase, int64_t t_ms, int64_t step_ms,
                      const struct rg_query_backend *be, struct rg_query_eval *out)
{
    return rg_query_eval_run_all(cl, t, &phase, 1, t_ms, step_ms, be, out);
}

/* ---- output ------------------------------------------------------------------------ */

/* A value that may be missing (@has zero): null then. */
static void json_num(struct rg_buf *out, int has, double v)
{
    if (has)
        rg_json_number(out, v);
    else
        rg_buf_puts(out, "null");
}

static void json_str_or_null(struct rg_buf *out, const char *s)
{
    if (s)
        rg_json_cstr(out, s);
    else
        rg_buf_puts(out, "null");
}

int rg_query_eval_json(const struct rg_checklist *cl, const struct rg_query_eval *e,
                       struct rg_buf *out)
{
    rg_buf_puts(out, "{\"deployment\":");
    rg_json_cstr(out, e->deployment ? e->deployment : "");
    rg_buf_puts(out, ",\"selector\":");
    rg_json_cstr(out, e->selector ? e->selector : "");
    rg_buf_puts(out, ",\"phase\":");
    rg_json_cstr(out, cl->phases[e->phase].name);
    rg_buf_printf(out, ",\"time\":%.3f,\"verdict\":\"%s\",\"reason\":",
                  (double)e->t_ms / 1000.0, rg_verdict_name(e->verdict));
    rg_json_cstr(out, e->reason);
    rg_buf_printf(out, ",\"exit_code\":%d,\"requests\":", e->exit_code);
    json_num(out, e->has_requests, e->requests);
    rg_buf_puts(out, ",\"min_requests\":");
    json_num(out, 1, e->min_requests);
    rg_buf_puts(out, ",\"requests_query\":");
    json_str_or_null(out, e->requests_query);
    rg_buf_printf(out, ",\"errors\":%zu,\"checks\":[", e->nerrors);
    for (size_t i = 0; i < e->nchecks; i++) {
        const struct rg_query_check *k = &e->checks[i];
        const struct rg_checklist_check *s = k->spec;
        if (i)
            rg_buf_putc(out, ',');
        rg_buf_puts(out, "{\"name\":");
        rg_json_cstr(out, s->name);
        rg_buf_printf(out, ",\"kind\":\"%s\",\"signal\":", rg_checklist_kind_name(s->kind));
        rg_json_cstr(out, s->signal);
        rg_buf_printf(out, ",\"op\":\"%s\",\"threshold\":", rg_checklist_op_name(s->op));
        json_num(out, s->has_threshold, s->threshold);
        rg_buf_puts(out, ",\"baseline\":");
        json_num(out, k->has_baseline, k->baseline);
        rg_buf_puts(out, ",\"value\":");
        json_num(out, k->has_value, k->value);
        rg_buf_printf(out, ",\"state\":\"%s\",\"for\":%.3f,\"held\":",
                      rg_verdict_state_name(k->state), (double)s->for_ms / 1000.0);
        if (k->held_ms >= 0)
            rg_buf_printf(out, "%.3f", (double)k->held_ms / 1000.0);
        else
            rg_buf_puts(out, "null");
        rg_buf_puts(out, ",\"error\":");
        json_str_or_null(out, k->error[0] ? k->error : NULL);
        rg_buf_puts(out, ",\"description\":");
        rg_json_cstr(out, s->description);
        rg_buf_puts(out, ",\"query\":");
        json_str_or_null(out, k->query);
        rg_buf_putc(out, '}');
    }
    rg_buf_puts(out, "]}");
    return out->data ? 0 : RG_ENOMEM;
}

#define C_RESET "\033[0m"
#define C_GREEN "\033[32m"
#define C_RED "\033[31m"
#define C_YELLOW "\033[33m"
#define C_BOLD "\033[1m"

static const char *state_color(enum rg_verdict_state s)
{
    switch (s) {
    case RG_VERDICT_OK: return C_GREEN;
    case RG_VERDICT_FAILING: case RG_VERDICT_FIRING: return C_RED;
    default: return C_YELLOW;
    }
}

static const char *verdict_color(enum rg_verdict_kind k)
{
    switch (k) {
    case RG_VERDICT_PROMOTE: return C_GREEN;
    case RG_VERDICT_ROLLBACK: return C_RED;
    default: return C_YELLOW;
    }
}

/* Appends @s padded with spaces to @w columns; never truncated, and followed by at
 * least one space. */
static void cell(struct rg_buf *out, const char *s, int w)
{
    int n = (int)strlen(s);

    rg_buf_puts(out, s);
    do
        rg_buf_putc(out, ' ');
    while (++n < w);
}

/* A value for the table: six significant digits are enough to read. */
static void short_value(struct rg_buf *out, double v)
{
    if (isnan(v) || isinf(v))
        rg_query_format_value(v, out);
    else
        rg_buf_printf(out, "%.6g", v);
}

int rg_query_eval_table(const struct rg_checklist *cl, const struct rg_query_eval *e,
                        int color, struct rg_buf *out)
{
    int wname = 5, wsig = 6;
    struct rg_buf tmp = { 0 };

    for (size_t i = 0; i < e->nchecks; i++) {
        int a = (int)strlen(e->checks[i].spec->name), b = (int)strlen(e->checks[i].spec->signal);
        wname = a > wname ? a : wname;
        wsig = b > wsig ? b : wsig;
    }
    wname = wname > 40 ? 40 : wname;
    wsig = wsig > 40 ? 40 : wsig;
    rg_buf_printf(out, "deployment %s (%s), phase %s, at ", e->deployment, e->selector,
                  cl->phases[e->phase].name);
    rg_query_format_time(e->t_ms, out);
    rg_buf_puts(out, "\n\n");
    cell(out, "KIND", 8);
    cell(out, "CHECK", wname + 2);
    cell(out, "SIGNAL", wsig + 2);
    cell(out, "VALUE", 14);
    cell(out, "OP", 4);
    cell(out, "THRESHOLD", 12);
    rg_buf_puts(out, "STATE\n");
    for (size_t i = 0; i < e->nchecks; i++) {
        const struct rg_query_check *k = &e->checks[i];
        const struct rg_checklist_check *s = k->spec;
        rg_buf_reset(&tmp);
        cell(out, rg_checklist_kind_name(s->kind), 8);
        cell(out, s->name, wname + 2);
        cell(out, s->signal, wsig + 2);
        if (k->has_value)
            short_value(&tmp, k->value);
        else
            rg_buf_puts(&tmp, k->error[0] ? "error" : "-");
        cell(out, tmp.data ? tmp.data : "", 14);
        cell(out, rg_checklist_op_name(s->op), 4);
        rg_buf_reset(&tmp);
        if (s->has_threshold)
            rg_query_format_value(s->threshold, &tmp);
        if (s->has_baseline) {
            if (tmp.len)
                rg_buf_puts(&tmp, ", ");
            rg_buf_puts(&tmp, "baseline");
        }
        cell(out, tmp.data ? tmp.data : "", 12);
        if (color)
            rg_buf_puts(out, state_color(k->state));
        rg_buf_puts(out, rg_verdict_state_name(k->state));
        if (color)
            rg_buf_puts(out, C_RESET);
        if (!k->has_value && !k->error[0] && k->state == RG_VERDICT_OK)
            rg_buf_puts(out, " (no data accepted)");
        if (s->kind == RG_CHECKLIST_TRIGGER && s->for_ms > 0) {
            char d[64], h[64];
            fmt_dur(d, sizeof(d), s->for_ms);
            if (k->held_ms > 0) {
                fmt_dur(h, sizeof(h), k->held_ms);
                rg_buf_printf(out, " (held %s of %s)", h, d);
            } else {
                rg_buf_printf(out, " (for %s)", d);
            }
        }
        if (k->has_baseline) {
            rg_buf_reset(&tmp);
            short_value(&tmp, k->baseline);
            rg_buf_printf(out, " (baseline %s)", tmp.data ? tmp.data : "");
        }
        if (k->error[0])
            rg_buf_printf(out, ": %s", k->error);
        rg_buf_putc(out, '\n');
    }
    if (e->needs_requests) {
        rg_buf_reset(&tmp);
        if (e->has_requests)
            rg_query_format_value(e->requests, &tmp);
        else
            rg_buf_puts(&tmp, e->requests_error[0] ? "error" : "no data");
        rg_buf_printf(out, "\nrequests: %s (minimum ", tmp.data ? tmp.data : "");
        rg_buf_reset(&tmp);
        rg_query_format_value(e->min_requests, &tmp);
        rg_buf_printf(out, "%s)%s%s\n", tmp.data ? tmp.data : "",
                      e->requests_error[0] ? ": " : "", e->requests_error);
    }
    rg_buf_puts(out, "\nverdict: ");
    if (color)
        rg_buf_printf(out, "%s%s", C_BOLD, verdict_color(e->verdict));
    rg_buf_puts(out, rg_verdict_name(e->verdict));
    if (color)
        rg_buf_puts(out, C_RESET);
    rg_buf_printf(out, " - %s\n", e->reason);
    rg_buf_cleanup(&tmp);
    return out->data ? 0 : RG_ENOMEM;
}
