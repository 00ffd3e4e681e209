/* tests/query/test_eval.c - one-shot evaluation and replay with a fake query backend,
 * and the command line's time and duration parsing.
 *
 * The backend answers from the current case's table: each signal of the test
 * checklist reads one metric (err, lat, opt, reqs), and the fake looks the metric
 * name up, so every gate, trigger, no-data and min-requests case can be written as
 * one row with the exit code and verdict expected. NaN stands for no data, ERR for a
 * query error and MULTI for an answer with two series.
 *
 * The same fake also answers in batches (batch_backend): it answers a batch's
 * requests last to first and counts the batches and their sizes, so that tests can
 * check that the batched evaluation and replay give exactly the answers of the
 * one-query-at-a-time ones, and that every query went through a batch.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "query/cli.h"
#include "query/eval.h"
#include "query/replay.h"
#include "rules/checklist.h"
#include "rules/rulefile.h"
#include "util/err.h"

static const char config_text[] =
    "global:\n"
    "  evaluation_interval: 1s\n"
    "signals:\n"
    "  err: {expr: 'err_ratio{<selector>}'}\n"
    "  lat: {expr: 'lat{<selector>}'}\n"
    "  opt: {expr: 'opt{<selector>}'}\n"
    "  request_count: {expr: 'reqs{<selector>}'}\n"
    "phases:\n"
    "  - name: canary\n"
    "    min_observation: 10s\n"
    "    max_observation: 60s\n"
    "    min_requests: 100\n"
    "    no_data_timeout: 20s\n"
    "    gates:\n"
    "      - {signal: err, op: \"<\", threshold: 0.01}\n"
    "      - {signal: lat, op: \"<\", threshold: 0.1}\n"
    "      - {signal: opt, op: \"<\", threshold: 5, no_data: ok}\n"
    "    triggers:\n"
    "      - {name: err_high, signal: err, op: \">\", threshold: 0.05}\n"
    "      - {name: lat_high, signal: lat, op: \">\", threshold: 0.5, for: 5s}\n"
    "  - name: full\n"
    "    min_observation: 20s\n"
    "    gates:\n"
    "      - {signal: err, op: \"<\", threshold: 0.001}\n"
    "deployments:\n"
    "  - {name: web, selector: 'job=\"web\"'}\n";

#define ND NAN
#define ERR (-12345.0)
#define MULTI (-23456.0)
#define T0 1000000000000LL   /* the evaluation time, ms */

static struct rg_checklist *cl;

/* ---- the fake backend ----------------------------------------------------------- */

/* Values per metric at the evaluation time; lat is the value of `lat` at T and
 * lat_held says for how long before T it has had that value (before: 0.05). */
struct fake {
    double err, lat, opt, reqs;
    int64_t lat_held_ms;
    int range_error;
    /* Replay: metric values as a function of time. */
    int replay;
    int64_t breach_ms;         /* err jumps to 0.2 from here on */
    size_t ninstant, nrange;
    char last_query[256];
    /* Batches: how many, their sizes, and queries asked outside any batch. */
    int in_batch;
    size_t nbatches, batch_size[8], outside;
};

static struct fake cur;

static double metric_of(const char *expr, char *name, size_t cap)
{
    size_t n = strcspn(expr, "{ ");
    snprintf(name, cap, "%.*s", (int)n, expr);
    if (strcmp(name, "err_ratio") == 0)
        return cur.err;
    if (strcmp(name, "lat") == 0)
        return cur.lat;
    if (strcmp(name, "opt") == 0)
        return cur.opt;
    if (strcmp(name, "reqs") == 0)
        return cur.reqs;
    return ND;
}

/* Builds a genuine result through the response parser from JSON text: @n series of
 * one point each (vector) or of @npoints points (matrix). */
static void make_result(struct rg_query_result *out, enum rg_promql_vtype type, size_t n,
                        const int64_t *t, const double *v, size_t npoints)
{
    struct rg_buf j = { 0 };

    rg_buf_printf(&j, "{\"status\":\"success\",\"data\":{\"resultType\":\"%s\","
                      "\"result\":[", type == RG_PROMQL_VT_MATRIX ? "matrix" : "vector");
    for (size_t i = 0; i < n; i++) {
        rg_buf_printf(&j, "%s{\"metric\":{\"i\":\"%zu\"},\"%s\":", i ? "," : "", i,
                      type == RG_PROMQL_VT_MATRIX ? "values" : "value");
        if (type == RG_PROMQL_VT_MATRIX)
            rg_buf_putc(&j, '[');
        for (size_t k = 0; k < npoints; k++)
            rg_buf_printf(&j, "%s[%.3f,\"%.17g\"]", k ? "," : "", (double)t[k] / 1000.0, v[k]);
        if (type == RG_PROMQL_VT_MATRIX)
            rg_buf_putc(&j, ']');
        rg_buf_putc(&j, '}');
    }
    rg_buf_puts(&j, "]}}");
    memset(out, 0, sizeof(*out));
    assert_int_equal(rg_query_parse(NULL, j.data, j.len, out, NULL), 0);
    rg_buf_cleanup(&j);
}

static double replay_value(const char *name, int64_t t)
{
    if (strcmp(name, "err_ratio") == 0)
        return t >= cur.breach_ms ? 0.2 : 0.0005;
    if (strcmp(name, "lat") == 0)
        return 0.05;
    if (strcmp(name, "reqs") == 0)
        return 1000;
    if (strcmp(name, "alert_metric") == 0)
        return t >= cur.breach_ms ? 1 : ND;
    return ND;
}

static int fake_instant(void *ud, const char *expr, int64_t t_ms, struct rg_query_result *out,
                        struct rg_buf *errmsg)
{
    char name[64];
    double v = metric_of(expr, name, sizeof(name));

    (void)ud;
    cur.ninstant++;
    cur.outside += !cur.in_batch;
    if (strcmp(name, "group") == 0) {
        /* Discovery: the jobs on the request counter, the database among them. */
        static const char body[] =
            "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
            "{\"metric\":{\"job\":\"web\"},\"value\":[1,\"1\"]},"
            "{\"metric\":{\"job\":\"database\"},\"value\":[1,\"1\"]},"
            "{\"metric\":{\"job\":\"api\"},\"value\":[1,\"1\"]},"
            "{\"metric\":{\"job\":\"batch\"},\"value\":[1,\"1\"]}]}}";
        snprintf(cur.last_query, sizeof(cur.last_query), "%s", expr);
        memset(out, 0, sizeof(*out));
        if (cur.err == ERR) {
            rg_buf_puts(errmsg, "bad_data: nope");
            return RG_EEXEC;
        }
        return rg_query_parse(NULL, body, sizeof(body) - 1, out, NULL);
    }
    if (cur.replay)
        v = replay_value(name, t_ms);
    if (v == ERR) {
        rg_buf_printf(errmsg, "execution: %s failed", name);
        memset(out, 0, sizeof(*out));
        return RG_EEXEC;
    }
    if (isnan(v)) {
        make_result(out, RG_PROMQL_VT_VECTOR, 0, NULL, NULL, 0);
        return 0;
    }
    make_result(out, RG_PROMQL_VT_VECTOR, v == MULTI ? 2 : 1, &t_ms, &v, 1);
    return 0;
}

static int fake_range(void *ud, const char *expr, int64_t start, int64_t end, int64_t step,
                      struct rg_query_result *out, struct rg_buf *errmsg)
{
    size_t n = (size_t)((end - start) / step) + 1, k = 0;
    int64_t *t = calloc(n, sizeof(*t));
    double *v = calloc(n, sizeof(*v));
    char name[64];
    double at_t = metric_of(expr, name, sizeof(name));

    (void)ud;
    cur.nrange++;
    cur.outside += !cur.in_batch;
    if (cur.range_error) {
        free(t);
        free(v);
        rg_buf_printf(errmsg, "server said no");
        memset(out, 0, sizeof(*out));
        return RG_EIO;
    }
    for (int64_t x = start; x <= end; x += step) {
        double y = cur.replay ? replay_value(name, x)
                              : (x >= T0 - cur.lat_held_ms ? at_t : 0.05);
        if (isnan(y))
            continue;
        t[k] = x;
        v[k++] = y;
    }
    make_result(out, RG_PROMQL_VT_MATRIX, k ? 1 : 0, t, v, k);
    free(t);
    free(v);
    return 0;
}

/* Answers last to first, as a concurrent backend may. */
static void fake_batch(void *ud, struct rg_query_req *reqs, size_t n)
{
    if (cur.nbatches < sizeof(cur.batch_size) / sizeof(cur.batch_size[0]))
        cur.batch_size[cur.nbatches] = n;
    cur.nbatches++;
    cur.in_batch = 1;
    for (size_t i = n; i-- > 0;) {
        struct rg_query_req *r = &reqs[i];
        if (r->range)
            r->err = fake_range(ud, r->expr, r->t_ms, r->end_ms, r->step_ms, &r->res, &r->msg);
        else
            r->err = fake_instant(ud, r->expr, r->t_ms, &r->res, &r->msg);
        r->answered = 1;
    }
    cur.in_batch = 0;
}

static const struct rg_query_backend backend = { fake_instant, fake_range, NULL, NULL };
static const struct rg_query_backend batch_backend = { fake_instant, fake_range, NULL,
                                                       fake_batch };

/* ---- fixtures ------------------------------------------------------------------- */

static struct rg_checklist *parse(const char *text)
{
    struct rg_config cfg;
    struct rg_buf err = { 0 };
    struct rg_checklist *c = NULL;

    rg_config_default(&cfg);
    if (rg_config_load_text("eval.yml", text, strlen(text), &cfg, &err))
        fail_msg("%s", err.data);
    if (rg_checklist_parse(&cfg, &c, &err))
        fail_msg("%s", err.data);
    rg_config_cleanup(&cfg);
    rg_buf_cleanup(&err);
    return c;
}

static int setup(void **state)
{
    (void)state;
    cl = parse(config_text);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rg_checklist_free(cl);
    return 0;
}

/* ---- one-shot evaluation -------------------------------------------------------- */

struct eval_case {
    const char *name;
    double err, lat, opt, reqs;
    int64_t lat_held_ms;
    int range_error;
    int want_exit;
    enum rg_verdict_kind want;
    const char *want_reason;       /* a substring of the reason */
};

static const struct eval_case eval_cases[] = {
    { "healthy", 0.001, 0.05, ND, 500, 0, 0, 0, RG_VERDICT_PROMOTE, "every gate holds" },
    { "optional gate with data", 0.001, 0.05, 3, 500, 0, 0, 0, RG_VERDICT_PROMOTE, "500" },
    { "gate fails", 0.02, 0.05, ND, 500, 0, 0, 2, RG_VERDICT_HOLD, "gate err fails" },
    { "optional gate fails", 0.001, 0.05, 10, 500, 0, 0, 2, RG_VERDICT_HOLD, "gate opt" },
    { "trigger without for", 0.06, 0.05, ND, 500, 0, 0, 1, RG_VERDICT_ROLLBACK,
      "trigger err_high fires" },
    { "gate without data", ND, 0.05, ND, 500, 0, 0, 2, RG_VERDICT_INCONCLUSIVE,
      "has no data" },
    { "too few requests", 0.001, 0.05, ND, 50, 0, 0, 2, RG_VERDICT_INCONCLUSIVE,
      "too few requests" },
    { "no request count", 0.001, 0.05, ND, ND, 0, 0, 2, RG_VERDICT_INCONCLUSIVE,
      "no data on" },
    { "query error", 0.001, ERR, ND, 500, 0, 0, 3, RG_VERDICT_INCONCLUSIVE,
      "query failed: execution: lat failed" },
    { "several series", MULTI, 0.05, ND, 500, 0, 0, 3, RG_VERDICT_INCONCLUSIVE,
      "returned 2 series" },
    { "request count error", 0.001, 0.05, ND, ERR, 0, 0, 3, RG_VERDICT_INCONCLUSIVE,
      "request count" },
    { "for held throughout", 0.001, 0.6, ND, 500, 10000, 0, 1, RG_VERDICT_ROLLBACK,
      "trigger lat_high fires" },
    { "for held exactly", 0.001, 0.6, ND, 500, 5000, 0, 1, RG_VERDICT_ROLLBACK,
      "held for 5s" },
    { "for held too briefly", 0.001, 0.6, ND, 500, 3000, 0, 2, RG_VERDICT_HOLD,
      "gate lat fails" },
    { "for range error", 0.001, 0.6, ND, 500, 10000, 1, 3, RG_VERDICT_INCONCLUSIVE,
      "server said no" },
    { "rollback beats errors", 0.06, 0.05, ERR, 500, 0, 0, 1, RG_VERDICT_ROLLBACK,
      "err_high" },
};

static void run_case_with(const struct eval_case *c, const struct rg_query_backend *be,
                          struct rg_query_eval *e)
{
    struct rg_query_targets ts;
    struct rg_buf err = { 0 };

    memset(&cur, 0, sizeof(cur));
    cur.err = c->err;
    cur.lat = c->lat;
    cur.opt = c->opt;
    cur.reqs = c->reqs;
    cur.lat_held_ms = c->lat_held_ms;
    cur.range_error = c->range_error;
    assert_int_equal(rg_query_targets_build(cl, NULL, &ts, &err), 0);
    assert_int_equal(ts.n, 1);
    assert_int_equal(rg_query_eval_run(cl, &ts.v[0], 0, T0, 0, be, e), 0);
    rg_query_targets_cleanup(&ts);
    rg_buf_cleanup(&err);
}

static void run_case(const struct eval_case *c, struct rg_query_eval *e)
{
    run_case_with(c, &backend, e);
}

static void test_eval__table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(eval_cases) / sizeof(eval_cases[0]); i++) {
        const struct eval_case *c = &eval_cases[i];
        struct rg_query_eval e;
        run_case(c, &e);
        if (e.exit_code != c->want_exit || e.verdict != c->want ||
            !strstr(e.reason, c->want_reason))
            fail_msg("case \"%s\": exit %d verdict %s reason \"%s\"; want exit %d verdict %s "
                     "reason with \"%s\"", c->name, e.exit_code, rg_verdict_name(e.verdict),
                     e.reason, c->want_exit, rg_verdict_name(c->want), c->want_reason);
        rg_query_eval_cleanup(&e);
    }
}

static void test_eval__queries_once_per_signal(void **state)
{
    struct rg_query_eval e;

    (void)state;
    run_case(&eval_cases[0], &e);
    /* err, lat, opt and reqs: the two triggers reuse the gates' answers, and a
     * trigger with `for` whose condition is false needs no range query. */
    assert_int_equal(cur.ninstant, 4);
    assert_int_equal(cur.nrange, 0);
    assert_string_equal(e.checks[0].query, "err_ratio{job=\"web\"}");
    assert_string_equal(e.requests_query, "reqs{job=\"web\"}");
    rg_query_eval_cleanup(&e);
    run_case(&eval_cases[11], &e);
    assert_int_equal(cur.nrange, 1);
    assert_int_equal(e.checks[4].state, RG_VERDICT_FIRING);
    /* The range covers `for` (5 s) and no more. */
    assert_int_equal(e.checks[4].held_ms, 5000);
    rg_query_eval_cleanup(&e);
}

static void test_eval__json_and_table(void **state)
{
    struct rg_query_eval e;
    struct rg_buf out = { 0 };

    (void)state;
    run_case(&eval_cases[4], &e);
    assert_int_equal(rg_query_eval_json(cl, &e, &out), 0);
    assert_non_null(strstr(out.data, "\"deployment\":\"web\""));
    assert_non_null(strstr(out.data, "\"verdict\":\"rollback\""));
    assert_non_null(strstr(out.data, "\"exit_code\":1"));
    assert_non_null(strstr(out.data, "{\"name\":\"err_high\",\"kind\":\"trigger\",\"signal\":"
                                     "\"err\",\"op\":\">\",\"threshold\":0.05,\"baseline\":null,"
                                     "\"value\":0.06,\"state\":\"firing\""));
    assert_non_null(strstr(out.data, "\"requests\":500,\"min_requests\":100"));
    rg_buf_reset(&out);
    assert_int_equal(rg_query_eval_table(cl, &e, 0, &out), 0);
    assert_non_null(strstr(out.data, "deployment web (job=\"web\"), phase canary, at "
                                     "2001-09-09T01:46:40Z"));
    assert_non_null(strstr(out.data, "verdict: rollback - trigger err_high fires"));
    assert_null(strchr(out.data, '\033'));
    rg_buf_reset(&out);
    assert_int_equal(rg_query_eval_table(cl, &e, 1, &out), 0);
    assert_non_null(strstr(out.data, "\033[31mfiring\033[0m"));
    rg_buf_cleanup(&out);
    rg_query_eval_cleanup(&e);
}

static void test_eval__targets(void **state)
{
    struct rg_query_targets ts;
    struct rg_buf err = { 0 };
    struct rg_checklist *disc;

    (void)state;
    /* An explicit deployment by name. */
    assert_int_equal(rg_query_targets_build(cl, "web", &ts, &err), 0);
    assert_int_equal(ts.n, 1);
    assert_string_equal(ts.v[0].selector, "job=\"web\"");
    assert_int_equal(ts.v[0].discovered, 0);
    assert_int_equal(rg_query_target_phase(cl, &ts.v[0], NULL), 0);
    assert_int_equal(rg_query_target_phase(cl, &ts.v[0], "full"), 1);
    assert_int_equal(rg_query_target_phase(cl, &ts.v[0], "nope"), -1);
    rg_query_targets_cleanup(&ts);
    /* Any other name: the deployment discovery would make. */
    assert_int_equal(rg_query_targets_build(cl, "pay\"ments", &ts, &err), 0);
    assert_string_equal(ts.v[0].selector, "job=\"pay\\\"ments\"");
    assert_int_equal(ts.v[0].discovered, 1);
    assert_int_equal(ts.v[0].nphases, 2);
    rg_query_targets_cleanup(&ts);
    /* Without deployments, a name is needed. */
    disc = parse("discovery: {label: service}\n");
    assert_int_equal(rg_query_targets_build(disc, NULL, &ts, &err), RG_ENOENT);
    assert_non_null(strstr(err.data, "--deployment NAME (selector service=\"NAME\")"));
    rg_query_targets_cleanup(&ts);
    assert_int_equal(rg_query_targets_build(disc, "api", &ts, &err), 0);
    assert_string_equal(ts.v[0].selector, "service=\"api\"");
    rg_query_targets_cleanup(&ts);
    rg_checklist_free(disc);
    disc = parse("discovery: {enabled: false}\n");
    rg_buf_reset(&err);
    assert_int_equal(rg_query_targets_build(disc, "api", &ts, &err), RG_ENOENT);
    assert_non_null(strstr(err.data, "discovery is off"));
    rg_query_targets_cleanup(&ts);
    rg_checklist_free(disc);
    rg_buf_cleanup(&err);
}

static void test_eval__discovery_through_the_source(void **state)
{
    struct rg_query_targets ts;
    struct rg_buf err = { 0 };
    struct rg_checklist *disc = parse("discovery: {exclude: [batch]}\n");

    (void)state;
    memset(&cur, 0, sizeof(cur));
    assert_int_equal(rg_query_targets_discover(disc, &backend, T0, 600000, &ts, &err), 0);
    assert_string_equal(cur.last_query, "group by (job) (count_over_time("
                                        "http_requests_total{job!=\"\"}[10m]))");
    /* Sorted; the database job and the excluded one left out. */
    assert_int_equal(ts.n, 2);
    assert_string_equal(ts.v[0].name, "api");
    assert_string_equal(ts.v[0].selector, "job=\"api\"");
    assert_string_equal(ts.v[1].name, "web");
    assert_int_equal(ts.v[1].discovered, 1);
    assert_int_equal(ts.v[1].nphases, disc->discovery.nphases);
    rg_query_targets_cleanup(&ts);
    cur.err = ERR;
    assert_int_equal(rg_query_targets_discover(disc, &backend, T0, 0, &ts, &err), RG_EEXEC);
    assert_non_null(strstr(err.data, "bad_data: nope"));
    rg_query_targets_cleanup(&ts);
    rg_checklist_free(disc);
    disc = parse("discovery: {enabled: false}\n");
    assert_int_equal(rg_query_targets_discover(disc, &backend, T0, 0, &ts, &err), RG_ENOENT);
    rg_query_targets_cleanup(&ts);
    rg_checklist_free(disc);
    rg_buf_cleanup(&err);
}

static void test_eval__value_extraction(void **state)
{
    struct rg_query_result r;
    struct rg_verdict_input in;
    char msg[256];
    int64_t t = T0;
    double v = 0.25;

    (void)state;
    memset(&r, 0, sizeof(r));
    r.type = RG_PROMQL_VT_SCALAR;
    r.scalar = 3;
    rg_query_value(&r, &in, msg, sizeof(msg));
    assert_true(in.has_value && in.value == 3 && !in.error);
    make_result(&r, RG_PROMQL_VT_VECTOR, 1, &t, &v, 1);
    rg_query_value(&r, &in, msg, sizeof(msg));
    assert_true(in.has_value && in.value == 0.25 && !in.error);
    rg_query_result_free(&r);
    make_result(&r, RG_PROMQL_VT_VECTOR, 0, NULL, NULL, 0);
    rg_query_value(&r, &in, msg, sizeof(msg));
    assert_true(!in.has_value && !in.error);
    rg_query_result_free(&r);
    make_result(&r, RG_PROMQL_VT_VECTOR, 3, &t, &v, 1);
    rg_query_value(&r, &in, msg, sizeof(msg));
    assert_true(!in.has_value && in.error);
    assert_non_null(strstr(in.error, "returned 3 series"));
    rg_query_result_free(&r);
    make_result(&r, RG_PROMQL_VT_MATRIX, 1, &t, &v, 1);
    rg_query_value(&r, &in, msg, sizeof(msg));
    assert_non_null(in.error);
    rg_query_result_free(&r);
}

static void eval_json(const struct rg_query_eval *e, struct rg_buf *out)
{
    rg_buf_reset(out);
    assert_int_equal(rg_query_eval_json(cl, e, out), 0);
}

static void test_eval__batches_give_the_same_answers(void **state)
{
    struct rg_buf a = { 0 }, b = { 0 };

    (void)state;
    for (size_t i = 0; i < sizeof(eval_cases) / sizeof(eval_cases[0]); i++) {
        const struct eval_case *c = &eval_cases[i];
        struct rg_query_eval e;
        size_t ninstant, nrange;
        run_case(c, &e);
        eval_json(&e, &a);
        ninstant = cur.ninstant;
        nrange = cur.nrange;
        rg_query_eval_cleanup(&e);
        run_case_with(c, &batch_backend, &e);
        eval_json(&e, &b);
        rg_query_eval_cleanup(&e);
        if (strcmp(a.data, b.data) != 0)
            fail_msg("case \"%s\": one by one\n%s\nbatched\n%s", c->name, a.data, b.data);
        /* Every query in a batch, each asked as often as one by one: the instant
         * queries in the first batch, a range query its answers call for in a second. */
        if (cur.outside != 0 || cur.ninstant != ninstant || cur.nrange != nrange ||
            cur.nbatches != 1 + (nrange > 0) || cur.batch_size[0] != ninstant)
            fail_msg("case \"%s\": %zu outside, %zu+%zu queries (want %zu+%zu), %zu batches",
                     c->name, cur.outside, cur.ninstant, cur.nrange, ninstant, nrange,
                     cur.nbatches);
    }
    rg_buf_cleanup(&a);
    rg_buf_cleanup(&b);
}

static void test_eval__run_all_shares_batches(void **state)
{
    static const char *const jobs[] = { "api", "db", "web" };
    struct rg_query_target t[3];
    size_t phases[3] = { 0, 0, 1 };
    struct rg_query_eval all[3], one;
    struct rg_buf a = { 0 }, b = { 0 };

    (void)state;
    memset(t, 0, sizeof(t));
    for (size_t i = 0; i < 3; i++) {
        size_t *ph = malloc(2 * sizeof(*ph));
        ph[0] = 0;
        ph[1] = 1;
        rg_buf_reset(&a);
        rg_buf_printf(&a, "job=\"%s\"", jobs[i]);
        t[i].name = strdup(jobs[i]);
        t[i].selector = strdup(a.data);
        t[i].phases = ph;
        t[i].nphases = 2;
    }
    /* A trigger with `for` pending at T in the canary phase: range queries too. */
    for (int pending = 0; pending < 2; pending++) {
        memset(&cur, 0, sizeof(cur));
        cur.err = 0.001;
        cur.lat = pending ? 0.6 : 0.05;
        cur.opt = ND;
        cur.reqs = 500;
        cur.lat_held_ms = 10000;
        assert_int_equal(rg_query_eval_run_all(cl, t, phases, 3, T0, 0, &batch_backend, all),
                         0);
        assert_int_equal(cur.outside, 0);
        /* canary: err, lat, opt, reqs for api and db; full: err for web. */
        assert_int_equal(cur.batch_size[0], 9);
        assert_int_equal(cur.nbatches, pending ? 2 : 1);
        if (pending)
            assert_int_equal(cur.batch_size[1], 2);
        assert_int_equal(all[0].exit_code, pending ? 1 : 0);
        for (size_t i = 0; i < 3; i++) {
            struct fake saved = cur;
            assert_string_equal(all[i].deployment, jobs[i]);
            assert_int_equal(all[i].phase, phases[i]);
            eval_json(&all[i], &a);
            assert_int_equal(rg_query_eval_run(cl, &t[i], phases[i], T0, 0, &backend, &one),
                             0);
            eval_json(&one, &b);
            assert_string_equal(a.data, b.data);
            rg_query_eval_cleanup(&one);
            rg_query_eval_cleanup(&all[i]);
            cur = saved;
        }
    }
    for (size_t i = 0; i < 3; i++) {
        free(t[i].name);
        free(t[i].selector);
        free(t[i].phases);
    }
    rg_buf_cleanup(&a);
    rg_buf_cleanup(&b);
}

/* ---- replay --------------------------------------------------------------------- */

static const char rules_text[] =
    "groups:\n"
    "  - name: g\n"
    "    rules:\n"
    "      - alert: Breach\n"
    "        expr: alert_metric > 0\n"
    "        for: 10s\n"
    "        labels: {severity: critical}\n";

static void replay_with(const struct rg_query_phase_at *pa, size_t npa, int with_rules,
                        const struct rg_query_backend *be, struct rg_query_replay *r)
{
    struct rg_query_replay_opts o = { 0 };
    struct rg_query_targets ts;
    struct rg_rulefile *rf = NULL;
    const struct rg_rulefile *files[1];
    struct rg_buf err = { 0 };

    memset(&cur, 0, sizeof(cur));
    cur.replay = 1;
    cur.breach_ms = T0 + 23000;
    o.from_ms = T0;
    o.to_ms = T0 + 60000;
    o.step_ms = 5000;
    o.phase_at = pa;
    o.nphase_at = npa;
    assert_int_equal(rg_query_targets_build(cl, NULL, &ts, &err), 0);
    if (with_rules) {
        if (rg_rulefile_parse("alerts.yml", rules_text, sizeof(rules_text) - 1, &rf, &err))
            fail_msg("%s", err.data);
        files[0] = rf;
    }
    if (rg_query_replay_run(cl, &ts, files, with_rules ? 1 : 0, NULL, be, &o, r, &err))
        fail_msg("%s", err.data);
    rg_rulefile_free(rf);
    rg_query_targets_cleanup(&ts);
    rg_buf_cleanup(&err);
}

static void replay(const struct rg_query_phase_at *pa, size_t npa, int with_rules,
                   struct rg_query_replay *r)
{
    replay_with(pa, npa, with_rules, &backend, r);
}

static const struct rg_query_event *find_event(const struct rg_query_replay *r,
                                               enum rg_query_event_kind kind, const char *name,
                                               const char *to)
{
    for (size_t i = 0; i < r->nevents; i++)
        if (r->events[i].kind == kind && strcmp(r->events[i].name, name) == 0 &&
            strcmp(r->events[i].to, to) == 0)
            return &r->events[i];
    return NULL;
}

static void test_replay__finds_breach_at_the_right_step(void **state)
{
    struct rg_query_replay r;
    const struct rg_query_event *e;
    struct rg_buf out = { 0 };

    (void)state;
    replay(NULL, 0, 1, &r);
    assert_int_equal(r.nsteps, 13);
    assert_int_equal(r.ntargets, 1);
    assert_int_equal(r.first_rollback, 0);
    /* The breach starts at +23s: the first evaluation that sees it is +25s. */
    assert_int_equal(r.targets[0].rolled_back, 1);
    assert_int_equal(r.targets[0].rollback_ms, T0 + 25000);
    assert_non_null(strstr(r.targets[0].rollback_reason, "trigger err_high fired"));
    assert_int_equal(r.targets[0].final_verdict, RG_VERDICT_ROLLBACK);
    /* The gates held from the first evaluation; 10s of minimum observation. */
    e = find_event(&r, RG_QUERY_EVENT_VERDICT, "verdict", "promote");
    assert_non_null(e);
    assert_int_equal(e->t_ms, T0 + 10000);
    e = find_event(&r, RG_QUERY_EVENT_CHECK, "err", "failing");
    assert_non_null(e);
    assert_int_equal(e->t_ms, T0 + 25000);
    assert_true(e->value == 0.2);
    /* The alert: pending at the first point, firing `for` (10s) later. */
    assert_int_equal(r.nrules, 1);
    e = find_event(&r, RG_QUERY_EVENT_ALERT, "Breach", "pending");
    assert_non_null(e);
    assert_int_equal(e->t_ms, T0 + 25000);
    assert_string_equal(e->subject, "{i=\"0\", severity=\"critical\"}");
    e = find_event(&r, RG_QUERY_EVENT_ALERT, "Breach", "firing");
    assert_non_null(e);
    assert_int_equal(e->t_ms, T0 + 35000);
    assert_int_equal(r.alerts_fired, 1);
    /* One range query per distinct signal (err, lat, opt, reqs) and one per rule. */
    assert_int_equal(r.nqueries, 5);
    assert_int_equal(r.nerrors, 0);
    for (size_t i = 1; i < r.nevents; i++)
        assert_true(r.events[i - 1].t_ms <= r.events[i].t_ms);

    assert_int_equal(rg_query_replay_text(cl, &r, 0, &out), 0);
    assert_non_null(strstr(out.data, "2001-09-09T01:47:05Z  web: verdict promote -> rollback: "
                                     "trigger err_high fired"));
    assert_non_null(strstr(out.data, "2001-09-09T01:47:15Z  alert Breach{i=\"0\", severity="
                                     "\"critical\"} pending -> firing (1)"));
    assert_non_null(strstr(out.data, "2001-09-09T01:47:05Z  web: err ok -> failing (0.2)"));
    assert_non_null(strstr(out.data, "web: would have rolled back at 2001-09-09T01:47:05Z "
                                     "(phase canary, 25s after it started)"));
    rg_buf_reset(&out);
    assert_int_equal(rg_query_replay_json(cl, &r, &out), 0);
    assert_non_null(strstr(out.data, "\"first_rollback\":{\"deployment\":\"web\","
                                     "\"time\":1000000025.000,\"phase\":\"canary\""));
    assert_non_null(strstr(out.data, "{\"time\":1000000035.000,\"kind\":\"alert\","
                                     "\"subject\":\"{i=\\\"0\\\", severity=\\\"critical\\\"}\","
                                     "\"name\":\"Breach\",\"from\":\"pending\","
                                     "\"to\":\"firing\",\"value\":1"));
    rg_buf_cleanup(&out);
    rg_query_replay_cleanup(&r);
}

static void test_replay__phase_at(void **state)
{
    const struct rg_query_phase_at pa[] = { { T0 + 8000, "full" } };
    struct rg_query_replay r;
    const struct rg_query_event *e;

    (void)state;
    replay(pa, 1, 0, &r);
    /* "full" starts at +8s, effective from the evaluation at +10s; it has no
     * trigger, so the breach only fails its gate: hold, never rollback. */
    e = find_event(&r, RG_QUERY_EVENT_PHASE, "full", "");
    assert_non_null(e);
    assert_int_equal(e->t_ms, T0 + 8000);
    assert_int_equal(r.targets[0].rolled_back, 0);
    assert_int_equal(r.first_rollback, -1);
    assert_int_equal(r.targets[0].final_phase, 1);
    assert_int_equal(r.targets[0].final_verdict, RG_VERDICT_HOLD);
    /* Neither phase lasts its minimum observation with the gates holding. */
    assert_null(find_event(&r, RG_QUERY_EVENT_VERDICT, "verdict", "promote"));
    e = find_event(&r, RG_QUERY_EVENT_CHECK, "err", "failing");
    assert_non_null(e);
    assert_int_equal(e->t_ms, T0 + 25000);
    rg_query_replay_cleanup(&r);
}

static void test_replay__batches_give_the_same_timeline(void **state)
{
    const struct rg_query_phase_at pa[] = { { T0 + 8000, "full" }, { T0 + 40000, "canary" } };
    struct rg_query_replay r;
    struct rg_buf a = { 0 }, b = { 0 };

    (void)state;
    for (size_t npa = 0; npa <= 2; npa++) {
        size_t nrange;
        replay(pa, npa, 1, &r);
        assert_int_equal(rg_query_replay_json(cl, &r, &a), 0);
        nrange = cur.nrange;
        rg_query_replay_cleanup(&r);
        replay_with(pa, npa, 1, &batch_backend, &r);
        assert_int_equal(rg_query_replay_json(cl, &r, &b), 0);
        rg_query_replay_cleanup(&r);
        assert_string_equal(a.data, b.data);
        /* One batch for the deployment (every phase segment), one for the rule. */
        assert_int_equal(cur.outside, 0);
        assert_int_equal(cur.nrange, nrange);
        assert_int_equal(cur.nbatches, 2);
        assert_int_equal(cur.batch_size[0], nrange - 1);
        assert_int_equal(cur.batch_size[1], 1);
        rg_buf_reset(&a);
        rg_buf_reset(&b);
    }
    rg_buf_cleanup(&a);
    rg_buf_cleanup(&b);
}

static void test_replay__bad_input(void **state)
{
    const struct rg_query_phase_at pa[] = { { T0, "nope" } };
    struct rg_query_replay_opts o = { 0 };
    struct rg_query_targets ts;
    struct rg_query_replay r;
    struct rg_buf err = { 0 };

    (void)state;
    assert_int_equal(rg_query_targets_build(cl, NULL, &ts, &err), 0);
    o.from_ms = T0;
    o.to_ms = T0 + 1000;
    o.step_ms = 1000;
    o.phase_at = pa;
    o.nphase_at = 1;
    assert_int_equal(rg_query_replay_run(cl, &ts, NULL, 0, NULL, &backend, &o, &r, &err),
                     RG_EINVAL);
    assert_non_null(strstr(err.data, "does not go through phase \"nope\""));
    rg_query_replay_cleanup(&r);
    o.nphase_at = 0;
    o.to_ms = T0 - 1;
    assert_int_equal(rg_query_replay_run(cl, &ts, NULL, 0, NULL, &backend, &o, &r, &err),
                     RG_EINVAL);
    rg_query_replay_cleanup(&r);
    o.to_ms = T0 + 100000000;
    o.max_steps = 1000;
    assert_int_equal(rg_query_replay_run(cl, &ts, NULL, 0, NULL, &backend, &o, &r, &err),
                     RG_EINVAL);
    rg_query_replay_cleanup(&r);
    rg_query_targets_cleanup(&ts);
    rg_buf_cleanup(&err);
}

/* ---- command-line times and durations ---------------------------------------------- */

static void test_cli__parse_time(void **state)
{
    static const struct {
        const char *in;
        int ok;
        int64_t ms;
    } cases[] = {
        { "1700000000", 1, 1700000000000LL },
        { "1700000000.25", 1, 1700000000250LL },
        { "2023-11-14T22:13:20Z", 1, 1700000000000LL },
        { "2023-11-14T22:13:20.5Z", 1, 1700000000500LL },
        { "2023-11-14T22:13:20.123456Z", 1, 1700000000123LL },
        { "2023-11-15T00:13:20+02:00", 1, 1700000000000LL },
        { "2023-11-14T21:13:20-01:00", 1, 1700000000000LL },
        { "2023-11-14T22:13:20", 0, 0 },
        { "2023-13-14T22:13:20Z", 0, 0 },
        { "2023-11-14T22:13:20.Z", 0, 0 },
        { "yesterday", 0, 0 },
        { "", 0, 0 },
        { "1e300", 0, 0 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = -1;
        int rc = rg_query_cli_parse_time(cases[i].in, &ms);
        if (cases[i].ok ? rc != 0 || ms != cases[i].ms : rc == 0)
            fail_msg("\"%s\": rc %d ms %lld", cases[i].in, rc, (long long)ms);
    }
}

static void test_cli__parse_duration(void **state)
{
    static const struct {
        const char *in;
        int ok;
        int64_t ms;
    } cases[] = {
        { "15s", 1, 15000 }, { "1m30s", 1, 90000 }, { "500ms", 1, 500 }, { "1d", 1, 86400000 },
        { "15", 1, 15000 }, { "0.5", 1, 500 }, { "0", 0, 0 }, { "0s", 0, 0 }, { "-1", 0, 0 },
        { "abc", 0, 0 }, { "", 0, 0 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = -1;
        int rc = rg_query_cli_parse_duration(cases[i].in, &ms);
        if (cases[i].ok ? rc != 0 || ms != cases[i].ms : rc == 0)
            fail_msg("\"%s\": rc %d ms %lld", cases[i].in, rc, (long long)ms);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval__table),
        cmocka_unit_test(test_eval__queries_once_per_signal),
        cmocka_unit_test(test_eval__json_and_table),
        cmocka_unit_test(test_eval__targets),
        cmocka_unit_test(test_eval__discovery_through_the_source),
        cmocka_unit_test(test_eval__value_extraction),
        cmocka_unit_test(test_eval__batches_give_the_same_answers),
        cmocka_unit_test(test_eval__run_all_shares_batches),
        cmocka_unit_test(test_replay__finds_breach_at_the_right_step),
        cmocka_unit_test(test_replay__phase_at),
        cmocka_unit_test(test_replay__batches_give_the_same_timeline),
        cmocka_unit_test(test_replay__bad_input),
        cmocka_unit_test(test_cli__parse_time),
        cmocka_unit_test(test_cli__parse_duration),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
