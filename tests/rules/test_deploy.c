/* tests/rules/test_deploy.c - the deployments manager over a real store and virtual
 * time: a generated service is written sample by sample, the manager ticks every
 * second, and verdicts, exported series, events, discovery and the state file are
 * checked. Deployments and signals with a `source:` run on a real loop against a
 * fake Prometheus query API (fakeprom.h): promote and rollback from its answers, a
 * signal's own source, failing queries turning the verdict inconclusive after the
 * no-data bound, and unknown source names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/yaml.h"
#include "promql/ast.h"
#include "promql/engine.h"
#include "query/client.h"
#include "rules/deploy.h"
#include "store/store.h"
#include "util/err.h"
#include "util/file.h"
#include "util/log.h"
#include "util/metrics.h"
#include "fakeprom.h"

#define T0 INT64_C(1700000000000)

static const char config_text[] =
    "global: {evaluation_interval: 1s}\n"
    "phases:\n"
    "  - name: canary\n"
    "    traffic_weight: 5%\n"
    "    min_observation: 60s\n"
    "    max_observation: 10m\n"
    "    min_requests: 100\n"
    "    no_data_timeout: 2m\n"
    "    gates:\n"
    "      - {signal: error_ratio, op: \"<\", threshold: 0.1%}\n"
    "      - {signal: p99_latency, op: \"<\", threshold: 0.1}\n"
    "      - {signal: critical_alerts, op: \"==\", threshold: 0}\n"
    "  - name: full\n"
    "    min_observation: 2m\n"
    "    gates:\n"
    "      - {signal: error_ratio, op: \"<\", threshold: 0.1%}\n"
    "      - {name: by_code, signal: per_code, op: \"<\", threshold: 1000}\n"
    "signals:\n"
    "  per_code: sum by (code) (rate(http_requests_total{<selector>}[1m]))\n"
    "triggers:\n"
    "  - {name: error_ratio_rollback, signal: error_ratio_instant, op: \">\", threshold: 1%}\n"
    "  - {name: database_unavailable, signal: database_up, op: \"==\", threshold: 0}\n"
    "deployments:\n"
    "  - name: checkout\n"
    "    selector: job=\"checkout\"\n"
    "discovery:\n"
    "  interval: 5s\n"
    "  exclude: [ignored]\n";

struct world {
    struct rg_config cfg;
    struct rg_store *store;
    struct rg_metrics *metrics;
    struct rg_deploy *d;
    double ok_total, err_total;   /* counters of the checkout service */
    int events[6];
    char last_key[512];
    char state_path[256];
};

static void load_config(struct rg_config *cfg)
{
    struct rg_yaml_node *root = NULL;
    char msg[256];

    rg_config_default(cfg);
    assert_int_equal(rg_yaml_parse(config_text, sizeof(config_text) - 1, &root, msg,
                                   sizeof(msg)), 0);
    cfg->yaml = root;
    cfg->docs = calloc(1, sizeof(*cfg->docs));
    cfg->docs[0].path = strdup("deploy.yml");
    cfg->docs[0].root = root;
    cfg->ndocs = 1;
}

static void on_event(const struct rg_deploy_event *ev, void *ud)
{
    struct world *w = ud;

    w->events[ev->kind]++;
    snprintf(w->last_key, sizeof(w->last_key), "%s", ev->key);
}

static void make_manager(struct world *w, int64_t now_ms)
{
    struct rg_buf err = { 0 };

    if (rg_deploy_new(&w->cfg, w->store, w->metrics, w->state_path[0] ? w->state_path : NULL,
                      now_ms, &w->d, &err))
        fail_msg("%s", err.data ? err.data : "rg_deploy_new failed");
    rg_deploy_set_event_cb(w->d, on_event, w);
    rg_buf_cleanup(&err);
}

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    struct rg_store_config sc;
    char dir[] = "/tmp/rg_deploy_XXXXXX";

    rg_log_set_level(RG_LOG_ERROR);
    load_config(&w->cfg);
    rg_store_config_default(&sc);
    sc.retention_ms = 10 * 60 * 1000;
    assert_int_equal(rg_store_new(&sc, &w->store), 0);
    w->metrics = rg_metrics_new();
    assert_non_null(mkdtemp(dir));
    snprintf(w->state_path, sizeof(w->state_path), "%s/deployments.json", dir);
    make_manager(w, T0);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    char dir[256];

    rg_deploy_free(w->d);
    rg_store_free(w->store);
    rg_metrics_free(w->metrics);
    rg_config_cleanup(&w->cfg);
    unlink(w->state_path);
    snprintf(dir, sizeof(dir), "%.*s", (int)(strrchr(w->state_path, '/') - w->state_path),
             w->state_path);
    rmdir(dir);
    free(w);
    return 0;
}

/* Appends one sample to the series with @n label pairs (sorted by name). */
static void put(struct world *w, const char *const *kv, size_t n, int64_t t, double v)
{
    struct rg_label_ref l[8];
    struct rg_series *s;

    for (size_t i = 0; i < n; i++) {
        l[i].name = (struct rg_slice){ kv[2 * i], strlen(kv[2 * i]) };
        l[i].value = (struct rg_slice){ kv[2 * i + 1], strlen(kv[2 * i + 1]) };
    }
    assert_int_equal(rg_store_series_get(w->store, l, n, &s, NULL), 0);
    assert_true(rg_store_append(w->store, s, t, v) >= 0);
}

/* One second of the checkout service: @ok and @err requests, all faster than 50 ms;
 * the database is up. */
static void feed(struct world *w, const char *job, int64_t t, double ok, double err)
{
    static const char *const les[] = { "0.05", "0.1", "0.25", "0.5", "+Inf" };
    double total;

    w->ok_total += ok;
    w->err_total += err;
    total = w->ok_total + w->err_total;
    {
        const char *kv[] = { "__name__", "http_requests_total", "code", "200", "job", job };
        put(w, kv, 3, t, w->ok_total);
        kv[3] = "500";
        put(w, kv, 3, t, w->err_total);
    }
    for (size_t i = 0; i < 5; i++) {
        const char *kv[] = { "__name__", "http_request_duration_seconds_bucket", "job", job,
                             "le", les[i] };
        put(w, kv, 3, t, total);
    }
    {
        const char *kv[] = { "__name__", "up", "job", "database" };
        put(w, kv, 2, t, 1);
    }
}

/* Runs the service and the manager from @from to @to (inclusive), 1 s apart. */
static void run(struct world *w, int64_t from, int64_t to, double ok, double err)
{
    for (int64_t t = from; t <= to; t += 1000) {
        feed(w, "checkout", t, ok, err);
        assert_int_equal(rg_deploy_tick(w->d, t), t + 1000);
    }
}

static const struct rg_verdict *verdict(struct world *w, const char *name)
{
    const struct rg_verdict *v = rg_deploy_verdict(w->d, name);
    assert_non_null(v);
    return v;
}

/* Evaluates @q on the store at @t: the single value, or NaN when empty. */
static double query(struct world *w, const char *q, int64_t t)
{
    struct rg_promql_node *n = NULL;
    struct rg_promql_result r;
    struct rg_promql_opts o;
    struct rg_buf err = { 0 };
    char msg[256];
    double v = NAN;

    assert_int_equal(rg_promql_parse(q, &n, msg, sizeof(msg)), 0);
    rg_promql_opts_default(&o);
    memset(&r, 0, sizeof(r));
    assert_int_equal(rg_promql_eval_instant(w->store, n, t, &o, &r, &err), 0);
    if (r.type == RG_PROMQL_VT_VECTOR && r.nseries == 1)
        v = r.series[0].points[0].v;
    rg_promql_result_free(&r);
    rg_promql_node_free(n);
    rg_buf_cleanup(&err);
    return v;
}

static void test_deploy__healthy_service_promotes(void **state)
{
    struct world *w = *state;
    struct rg_buf out = { 0 };
    const struct rg_verdict *v;

    run(w, T0, T0 + 30000, 100, 0);
    v = verdict(w, "checkout");
    assert_int_equal(v->verdict, RG_VERDICT_HOLD);
    assert_int_equal(v->checks[0].state, RG_VERDICT_OK);
    assert_true(v->checks[0].value == 0);
    assert_int_equal(v->checks[1].state, RG_VERDICT_OK);
    assert_true(v->checks[1].value > 0 && v->checks[1].value < 0.05);
    assert_int_equal(v->checks[2].state, RG_VERDICT_OK);   /* or vector(0) */
    assert_int_equal(w->events[RG_DEPLOY_EVENT_PROMOTE], 0);

    run(w, T0 + 31000, T0 + 70000, 100, 0);
    v = verdict(w, "checkout");
    assert_int_equal(v->verdict, RG_VERDICT_PROMOTE);
    assert_true(v->has_requests && v->requests >= 100);
    assert_int_equal(w->events[RG_DEPLOY_EVENT_PROMOTE], 1);
    assert_string_equal(w->last_key, "checkout/canary/1700000000000/promote");

    /* The decision is served by the query API and /metrics. */
    assert_true(query(w, "rollgate_deployment_verdict{deployment=\"checkout\","
                         "verdict=\"promote\"}", T0 + 70000) == 1);
    assert_true(query(w, "rollgate_deployment_verdict{deployment=\"checkout\","
                         "verdict=\"hold\"}", T0 + 70000) == 0);
    assert_true(query(w, "rollgate_check_threshold{deployment=\"checkout\","
                         "check=\"p99_latency\",kind=\"gate\",phase=\"canary\"}",
                      T0 + 70000) == 0.1);
    assert_true(query(w, "rollgate_check_value{deployment=\"checkout\","
                         "check=\"error_ratio_rollback\",kind=\"trigger\"}", T0 + 70000) == 0);
    assert_int_equal(rg_metrics_render(w->metrics, &out), 0);
    assert_non_null(strstr(out.data, "rollgate_deployment_verdict{deployment=\"checkout\","
                                     "phase=\"canary\",verdict=\"promote\"} 1\n"));
    assert_non_null(strstr(out.data, "rollgate_check_threshold{deployment=\"checkout\","
                                     "phase=\"canary\",check=\"error_ratio\",kind=\"gate\"} "
                                     "0.001\n"));
    rg_buf_reset(&out);

    /* The verdict JSON carries the instantiated queries. */
    assert_int_equal(rg_deploy_json(w->d, "checkout", T0 + 70000, &out), 0);
    assert_non_null(strstr(out.data, "\"verdict\":\"promote\""));
    assert_non_null(strstr(out.data, "\"query\":\"sum(rate(http_requests_total{job=\\\"checkout"
                                     "\\\",code=~\\\"5..\\\"}[1m]))"));
    assert_non_null(strstr(out.data, "\"requests_query\":\"sum(increase(http_requests_total{"
                                     "job=\\\"checkout\\\"}[1m]))\""));
    assert_non_null(strstr(out.data, "\"selector\":\"job=\\\"checkout\\\"\""));
    rg_buf_cleanup(&out);
}

static void test_deploy__error_ratio_rolls_back(void **state)
{
    struct world *w = *state;
    const struct rg_verdict *v;
    int64_t t;

    run(w, T0, T0 + 20000, 100, 0);
    assert_int_equal(verdict(w, "checkout")->verdict, RG_VERDICT_HOLD);
    /* 2% errors from now on. */
    for (t = T0 + 21000; t <= T0 + 120000; t += 1000) {
        feed(w, "checkout", t, 98, 2);
        rg_deploy_tick(w->d, t);
        if (verdict(w, "checkout")->verdict == RG_VERDICT_ROLLBACK)
            break;
    }
    v = verdict(w, "checkout");
    assert_int_equal(v->verdict, RG_VERDICT_ROLLBACK);
    /* The instant error ratio breaches with the first erroneous second: the tick that
     * follows that sample decides. */
    assert_int_equal(t, T0 + 21000);
    assert_int_equal(v->verdict_since_ms, T0 + 21000);
    assert_non_null(strstr(v->reason, "trigger error_ratio_rollback fired"));
    assert_int_equal(w->events[RG_DEPLOY_EVENT_ROLLBACK], 1);
    /* Sticky: healthy traffic does not undo it. */
    run(w, t + 1000, t + 90000, 100, 0);
    assert_int_equal(verdict(w, "checkout")->verdict, RG_VERDICT_ROLLBACK);
    assert_int_equal(w->events[RG_DEPLOY_EVENT_ROLLBACK], 1);
    assert_true(query(w, "rollgate_deployment_verdict{deployment=\"checkout\","
                         "verdict=\"rollback\"}", t + 90000) == 1);
}

static void test_deploy__database_down_rolls_back(void **state)
{
    struct world *w = *state;
    const char *kv[] = { "__name__", "up", "job", "database" };

    run(w, T0, T0 + 5000, 100, 0);
    /* The scrape of the database fails: up is 0 (after feed wrote 1 for the second). */
    for (int64_t t = T0 + 6000; t <= T0 + 8000; t += 1000) {
        w->ok_total += 100;
        put(w, kv, 2, t, 0);
        rg_deploy_tick(w->d, t);
    }
    assert_int_equal(verdict(w, "checkout")->verdict, RG_VERDICT_ROLLBACK);
    assert_non_null(strstr(verdict(w, "checkout")->reason, "database_unavailable"));
}

static void test_deploy__discovery(void **state)
{
    struct world *w = *state;
    struct rg_buf out = { 0 };

    feed(w, "search", T0, 10, 0);
    feed(w, "ignored", T0, 10, 0);
    run(w, T0, T0 + 2000, 100, 0);
    /* checkout (explicit), search (discovered); database and ignored are excluded. */
    assert_int_equal(rg_deploy_count(w->d), 2);
    assert_non_null(rg_deploy_verdict(w->d, "search"));
    assert_null(rg_deploy_verdict(w->d, "database"));
    assert_null(rg_deploy_verdict(w->d, "ignored"));
    assert_int_equal(rg_deploy_json(w->d, "search", T0 + 2000, &out), 0);
    assert_non_null(strstr(out.data, "\"selector\":\"job=\\\"search\\\"\",\"baseline_selector\""
                                     ":null,\"discovered\":true,\"phases\":[\"canary\",\"full\"]"));
    rg_buf_reset(&out);
    assert_int_equal(rg_deploy_list_json(w->d, T0 + 2000, &out), 0);
    assert_non_null(strstr(out.data, "[{\"name\":\"checkout\",\"phase\":\"canary\""));
    assert_non_null(strstr(out.data, "},{\"name\":\"search\",\"phase\":\"canary\""));
    assert_int_equal(rg_deploy_json(w->d, "nope", T0, &out), RG_ENOENT);

    /* A job that appears later is found at the next scan (every 5 s). */
    feed(w, "payments", T0 + 3000, 10, 0);
    rg_deploy_tick(w->d, T0 + 3000);
    assert_null(rg_deploy_verdict(w->d, "payments"));
    rg_deploy_tick(w->d, T0 + 7000);
    assert_non_null(rg_deploy_verdict(w->d, "payments"));

    /* Jobs that left the store (after the retention) are dropped. */
    run(w, T0 + 8000, T0 + 8000, 100, 0);
    rg_store_gc(w->store, T0 + 11 * 60 * 1000);
    rg_deploy_tick(w->d, T0 + 11 * 60 * 1000);
    assert_null(rg_deploy_verdict(w->d, "search"));
    assert_null(rg_deploy_verdict(w->d, "payments"));
    assert_non_null(rg_deploy_verdict(w->d, "checkout"));   /* explicit: always there */
    rg_buf_cleanup(&out);
}

static void test_deploy__api_operations(void **state)
{
    struct world *w = *state;
    const struct rg_verdict *v;

    run(w, T0, T0 + 3000, 100, 0);
    assert_int_equal(rg_deploy_start_phase(w->d, "nope", "canary", T0), RG_ENOENT);
    assert_int_equal(rg_deploy_start_phase(w->d, "checkout", "warp", T0), RG_EINVAL);
    assert_int_equal(rg_deploy_trigger(w->d, "nope", "x", T0), RG_ENOENT);
    assert_int_equal(rg_deploy_reset(w->d, "nope", T0), RG_ENOENT);

    assert_int_equal(rg_deploy_start_phase(w->d, "checkout", "full", T0 + 3500), 0);
    assert_int_equal(w->events[RG_DEPLOY_EVENT_PHASE_STARTED], 1);
    assert_string_equal(w->last_key, "checkout/full/1700000003500/phase_started");
    v = verdict(w, "checkout");
    assert_int_equal(v->phase, 1);
    assert_int_equal(v->phase_start_ms, T0 + 3500);
    run(w, T0 + 4000, T0 + 5000, 100, 0);
    /* The canary phase's series ended; the full phase's exist. */
    assert_true(isnan(query(w, "rollgate_deployment_verdict{deployment=\"checkout\","
                               "phase=\"canary\",verdict=\"hold\"}", T0 + 5000)));
    assert_true(query(w, "rollgate_deployment_verdict{deployment=\"checkout\","
                         "phase=\"full\",verdict=\"hold\"}", T0 + 5000) == 1);
    /* A signal with one series per code cannot be judged: a query error. */
    v = verdict(w, "checkout");
    assert_string_equal(v->checks[1].spec->name, "by_code");
    assert_int_equal(v->checks[1].state, RG_VERDICT_NO_DATA);
    assert_non_null(strstr(v->checks[1].error, "returned 2 series"));

    assert_int_equal(rg_deploy_trigger(w->d, "checkout", "data corruption detected",
                                       T0 + 5500), 0);
    assert_int_equal(verdict(w, "checkout")->verdict, RG_VERDICT_ROLLBACK);
    assert_int_equal(w->events[RG_DEPLOY_EVENT_HUMAN_TRIGGER], 1);
    run(w, T0 + 6000, T0 + 7000, 100, 0);
    assert_int_equal(verdict(w, "checkout")->verdict, RG_VERDICT_ROLLBACK);
    assert_int_equal(rg_deploy_reset(w->d, "checkout", T0 + 8000), 0);
    v = verdict(w, "checkout");
    assert_int_equal(v->phase, 0);
    assert_int_equal(v->verdict, RG_VERDICT_HOLD);
    assert_string_equal(v->human_reason, "");
    assert_int_equal(w->events[RG_DEPLOY_EVENT_RESET], 1);
}

static void test_deploy__state_survives_restart(void **state)
{
    struct world *w = *state;
    const struct rg_verdict *v;
    struct rg_buf text = { 0 };

    feed(w, "search", T0, 10, 0);
    run(w, T0, T0 + 2000, 100, 0);
    assert_int_equal(rg_deploy_start_phase(w->d, "checkout", "full", T0 + 2500), 0);
    assert_int_equal(rg_deploy_trigger(w->d, "search", "security vulnerability discovered",
                                       T0 + 2600), 0);
    assert_int_equal(rg_file_read(w->state_path, 1 << 20, &text), 0);
    assert_non_null(strstr(text.data, "\"name\":\"checkout\",\"phase\":\"full\","
                                      "\"phase_start\":1700000002500"));
    rg_buf_cleanup(&text);

    /* Restart: a new manager on the same file. */
    rg_deploy_free(w->d);
    make_manager(w, T0 + 50000);
    v = verdict(w, "checkout");
    assert_int_equal(v->phase, 1);
    assert_int_equal(v->phase_start_ms, T0 + 2500);
    assert_int_equal(v->verdict, RG_VERDICT_HOLD);
    v = verdict(w, "search");   /* discovered, restored before the first scan */
    assert_int_equal(v->verdict, RG_VERDICT_ROLLBACK);
    assert_int_equal(v->verdict_since_ms, T0 + 2600);
    assert_string_equal(v->human_reason, "security vulnerability discovered");
    feed(w, "search", T0 + 51000, 10, 0);
    run(w, T0 + 51000, T0 + 52000, 100, 0);
    assert_int_equal(verdict(w, "search")->verdict, RG_VERDICT_ROLLBACK);

    /* A corrupt file is ignored: everything starts fresh. */
    rg_deploy_free(w->d);
    assert_int_equal(rg_file_write_atomic(w->state_path, "{\"deployments\":[{\"na", 21), 0);
    make_manager(w, T0 + 60000);
    v = verdict(w, "checkout");
    assert_int_equal(v->phase, 0);
    assert_int_equal(v->phase_start_ms, T0 + 60000);
    assert_null(rg_deploy_verdict(w->d, "search"));

    /* Entries naming unknown phases or deployments are skipped. */
    rg_deploy_free(w->d);
    assert_int_equal(rg_file_write_atomic(w->state_path,
                                          "{\"version\":1,\"deployments\":["
                                          "{\"name\":\"checkout\",\"phase\":\"gone\"},"
                                          "{\"name\":\"old\",\"phase\":\"canary\"}]}", 86), 0);
    make_manager(w, T0 + 70000);
    assert_int_equal(verdict(w, "checkout")->phase_start_ms, T0 + 70000);
    assert_int_equal(rg_deploy_count(w->d), 1);
}

/* Batched evaluation of discovered deployments gives exactly the per-deployment
 * values, including errors (by_code), defaults (critical_alerts' `or vector(0)`) and
 * missing data (a job without requests). */
static void test_deploy__batched_equals_per_deployment(void **state)
{
    struct world *w = *state;
    struct rg_deploy *plain = NULL;
    struct rg_buf err = { 0 };
    static const char *const jobs[] = { "alpha", "beta", "gamma" };
    double ok[3] = { 0 }, bad[3] = { 0 };

    assert_int_equal(rg_deploy_new(&w->cfg, w->store, NULL, NULL, T0, &plain, &err), 0);
    rg_deploy_set_batching(plain, 0);
    for (int64_t t = T0; t <= T0 + 30000; t += 1000) {
        for (int j = 0; j < 3; j++) {
            const char *kv[] = { "__name__", "http_requests_total", "code", "200", "job",
                                 jobs[j] };
            ok[j] += 50 * (j + 1);
            bad[j] += j;                     /* alpha: no errors, gamma: 2 per second */
            put(w, kv, 3, t, ok[j]);
            kv[3] = "500";
            put(w, kv, 3, t, bad[j]);
        }
        {
            const char *kv[] = { "__name__", "queue_depth", "job", "idle" };
            put(w, kv, 2, t, 3);             /* a job without requests */
        }
        run(w, t, t, 100, 0);
        rg_deploy_tick(plain, t);
        if (t == T0 + 10000) {
            assert_int_equal(rg_deploy_start_phase(w->d, "beta", "full", t), 0);
            assert_int_equal(rg_deploy_start_phase(plain, "beta", "full", t), 0);
        }
    }
    assert_int_equal(rg_deploy_count(w->d), 5);
    assert_int_equal(rg_deploy_count(plain), 5);
    for (int j = 0; j < 4; j++) {
        const char *name = j < 3 ? jobs[j] : "idle";
        const struct rg_verdict *a = rg_deploy_verdict(w->d, name);
        const struct rg_verdict *b = rg_deploy_verdict(plain, name);
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(a->nchecks, b->nchecks);
        assert_int_equal(a->verdict, b->verdict);
        assert_string_equal(a->reason, b->reason);
        assert_int_equal(a->has_requests, b->has_requests);
        assert_true(a->requests == b->requests);
        for (size_t i = 0; i < a->nchecks; i++) {
            if (a->checks[i].has_value != b->checks[i].has_value ||
                a->checks[i].state != b->checks[i].state ||
                strcmp(a->checks[i].error, b->checks[i].error) != 0 ||
                (a->checks[i].has_value && a->checks[i].value != b->checks[i].value))
                fail_msg("%s %s: batched %d %g %s \"%s\", plain %d %g %s \"%s\"", name,
                         a->checks[i].spec->name, a->checks[i].has_value, a->checks[i].value,
                         rg_verdict_state_name(a->checks[i].state), a->checks[i].error,
                         b->checks[i].has_value, b->checks[i].value,
                         rg_verdict_state_name(b->checks[i].state), b->checks[i].error);
        }
    }
    /* Spot checks that the comparison compared something. */
    assert_true(rg_deploy_verdict(w->d, "gamma")->checks[0].value > 0.001);
    assert_false(rg_deploy_verdict(w->d, "idle")->checks[0].has_value);
    assert_true(rg_deploy_verdict(w->d, "alpha")->checks[2].has_value);   /* critical_alerts */
    assert_non_null(strstr(rg_deploy_verdict(w->d, "beta")->checks[1].error, "2 series"));
    rg_deploy_free(plain);
    rg_buf_cleanup(&err);
}

static void test_deploy__config_errors(void **state)
{
    struct rg_config cfg;
    struct rg_yaml_node *root = NULL;
    struct rg_deploy *d = (struct rg_deploy *)1;
    struct rg_buf err = { 0 };
    static const char text[] = "phases: [{name: a, gates: [{signal: nope, op: \"<\", "
                               "threshold: 1}]}]\n";
    char msg[128];
    struct world *w = *state;

    rg_config_default(&cfg);
    assert_int_equal(rg_yaml_parse(text, sizeof(text) - 1, &root, msg, sizeof(msg)), 0);
    cfg.yaml = root;
    cfg.docs = calloc(1, sizeof(*cfg.docs));
    cfg.docs[0].path = strdup("x.yml");
    cfg.docs[0].root = root;
    cfg.ndocs = 1;
    assert_int_equal(rg_deploy_new(&cfg, w->store, NULL, NULL, T0, &d, &err), RG_EINVAL);
    assert_null(d);
    assert_string_equal(err.data, "x.yml:1:37: gate \"nope\": unknown signal \"nope\"\n");
    rg_deploy_free(NULL);
    rg_config_cleanup(&cfg);
    rg_buf_cleanup(&err);
    assert_int_equal(rg_deploy_interval(w->d), 1000);
    assert_int_equal(rg_deploy_checklist(w->d)->nphases, 2);
}

/* ---- query mode ------------------------------------------------------------------------ */

static const char remote_config[] =
    "global: {evaluation_interval: 1s}\n"
    "sources:\n"
    "  - {name: prom, url: \"http://127.0.0.1:%d\", timeout: 2s}\n"
    "  - {name: broken, url: \"http://127.0.0.1:%d/broken\", timeout: 2s}\n"
    "phases:\n"
    "  - name: canary\n"
    "    min_observation: 5s\n"
    "    max_observation: 10m\n"
    "    min_requests: 100\n"
    "    no_data_timeout: 3s\n"
    "    gates:\n"
    "      - {signal: err, op: \"<\", threshold: 0.01}\n"
    "signals:\n"
    "  err: 'sum(errs{<selector>})'\n"
    "  err_now: {expr: 'max(errs_now{<selector>})', source: prom}\n"
    "triggers:\n"
    "  - {name: err_rollback, signal: err_now, op: \">\", threshold: 0.05, for: 2s}\n"
    "deployments:\n"
    "  - {name: web, selector: 'job=\"web\"', source: prom}\n"
    "  - {name: api, selector: 'job=\"api\"', source: prom}\n"
    "  - {name: local, selector: 'job=\"local\"'}\n"
    "  - {name: down, selector: 'job=\"down\"', source: broken}\n"
    "discovery: {enabled: false}\n";

struct rworld {
    struct fp_env e;
    struct rg_config cfg;
    struct rg_store *store;
    struct rg_query_sources *srcs;
    struct rg_deploy *d;
};

static int rworld_new(struct rworld *w, const char *fmt, struct rg_buf *err)
{
    char text[4096];
    struct rg_store_config sc;
    struct rg_deploy_opts o;
    int rc;

    memset(w, 0, sizeof(*w));
    assert_int_equal(fp_env_init(&w->e), 0);
    snprintf(text, sizeof(text), fmt, w->e.fp.port, w->e.fp.port);
    rg_config_default(&w->cfg);
    if (rg_config_load_text("deploy.yml", text, strlen(text), &w->cfg, err))
        fail_msg("config: %s", err->data);
    rg_store_config_default(&sc);
    assert_int_equal(rg_store_new(&sc, &w->store), 0);
    if (rg_query_sources_parse(&w->cfg, &w->srcs, err))
        fail_msg("sources: %s", err->data);
    memset(&o, 0, sizeof(o));
    o.now_ms = T0;
    o.client = w->e.client;
    o.sources = w->srcs;
    rc = rg_deploy_new_opts(&w->cfg, w->store, w->e.metrics, &o, &w->d, err);
    return rc;
}

static void rworld_free(struct rworld *w)
{
    rg_deploy_free(w->d);
    rg_store_free(w->store);
    rg_config_cleanup(&w->cfg);
    rg_query_sources_free(w->srcs);
    fp_env_done(&w->e);
}

/* Ticks at @t and runs the loop until every deployment has stepped. */
static void rtick(struct rworld *w, int64_t t)
{
    static const char *const names[] = { "web", "api", "local", "down" };
    int64_t steps[4], deadline = rg_mono_ms() + 5000;
    int done = 0;

    for (int i = 0; i < 4; i++)
        steps[i] = rg_deploy_verdict(w->d, names[i])->steps;
    assert_int_equal(rg_deploy_tick(w->d, t), t + 1000);
    while (!done && rg_mono_ms() < deadline) {
        uv_run(&w->e.loop, UV_RUN_ONCE);
        done = 1;
        for (int i = 0; i < 4; i++)
            done &= rg_deploy_verdict(w->d, names[i])->steps > steps[i];
    }
    assert_true(done);
}

static void test_deploy__remote_promote_rollback_inconclusive(void **state)
{
    struct rworld w;
    struct rg_buf err = { 0 }, js = { 0 };
    const struct rg_verdict *web, *api, *loc, *down;
    (void)state;

    assert_int_equal(rworld_new(&w, remote_config, &err), 0);
    fp_set(&w.e.fp, "sum(errs{job=\"web\"})", "0.001");
    fp_set(&w.e.fp, "max(errs_now{job=\"web\"})", "0");
    fp_set(&w.e.fp, "sum(increase(http_requests_total{job=\"web\"}[1m]))", "500");
    fp_set(&w.e.fp, "sum(errs{job=\"api\"})", "0.001");
    fp_set(&w.e.fp, "max(errs_now{job=\"api\"})", "0.5");
    fp_set(&w.e.fp, "sum(increase(http_requests_total{job=\"api\"}[1m]))", "500");
    fp_set(&w.e.fp, "max(errs_now{job=\"local\"})", "0.9");
    web = rg_deploy_verdict(w.d, "web");
    api = rg_deploy_verdict(w.d, "api");
    loc = rg_deploy_verdict(w.d, "local");
    down = rg_deploy_verdict(w.d, "down");

    rtick(&w, T0 + 1000);
    /* The query time is the tick's, aligned to the 1 s interval. */
    assert_int_equal(llround(strtod(w.e.fp.last_time, NULL) * 1000), T0 + 1000);
    assert_int_equal(web->checks[0].state, RG_VERDICT_OK);
    assert_true(web->checks[0].value == 0.001);
    assert_true(web->has_requests && web->requests == 500);
    assert_int_equal(api->checks[1].state, RG_VERDICT_PENDING);
    /* The signal's own source: err_now of the deployment without one went remote,
     * its err stayed on the (empty) store. */
    assert_int_equal(loc->checks[0].state, RG_VERDICT_NO_DATA);
    assert_string_equal(loc->checks[0].error, "");
    assert_int_equal(loc->checks[1].state, RG_VERDICT_PENDING);
    assert_true(loc->checks[1].value == 0.9);
    /* The broken source: the error is the check's. */
    assert_int_equal(down->checks[0].state, RG_VERDICT_NO_DATA);
    assert_non_null(strstr(down->checks[0].error, "HTTP 404"));
    assert_int_equal(down->verdict, RG_VERDICT_HOLD);

    for (int64_t t = T0 + 2000; t <= T0 + 6000; t += 1000)
        rtick(&w, t);
    assert_int_equal(web->verdict, RG_VERDICT_PROMOTE);
    assert_int_equal(api->verdict, RG_VERDICT_ROLLBACK);
    assert_non_null(strstr(api->reason, "trigger err_rollback fired"));
    assert_int_equal(loc->verdict, RG_VERDICT_ROLLBACK);
    assert_int_equal(down->verdict, RG_VERDICT_INCONCLUSIVE);
    assert_non_null(strstr(down->reason, "gate err: query failing for"));
    assert_non_null(strstr(down->reason, "HTTP 404"));
    assert_true(fp_env_metric_has(&w.e, "rollgate_query_errors_total{source=\"broken\","
                                        "reason=\"http\"} "));
    /* The JSON shows the error of the check and the query sent. */
    assert_int_equal(rg_deploy_json(w.d, "down", T0 + 6000, &js), 0);
    assert_non_null(strstr(js.data, "\"query\":\"sum(errs{job=\\\"down\\\"})\""));
    assert_non_null(strstr(js.data, "HTTP 404"));

    rg_buf_cleanup(&js);
    rg_buf_cleanup(&err);
    rworld_free(&w);
}

static void test_deploy__remote_recovery_and_cancel(void **state)
{
    static const char *const names[] = { "web", "api", "local", "down" };
    struct rworld w;
    struct rg_buf err = { 0 };
    const struct rg_verdict *web;
    int64_t steps[4];
    (void)state;

    /* A 500 is the check's error; once the server answers again it clears. */
    assert_int_equal(rworld_new(&w, remote_config, &err), 0);
    web = rg_deploy_verdict(w.d, "web");
    w.e.fp.status = 500;
    rtick(&w, T0 + 1000);
    assert_int_equal(web->checks[0].state, RG_VERDICT_NO_DATA);
    assert_non_null(strstr(web->checks[0].error, "HTTP 500"));
    w.e.fp.status = 0;
    fp_set(&w.e.fp, "sum(errs{job=\"web\"})", "0.5");
    rtick(&w, T0 + 2000);
    assert_int_equal(web->checks[0].state, RG_VERDICT_FAILING);
    assert_true(web->checks[0].value == 0.5);
    assert_string_equal(web->checks[0].error, "");

    /* The client closing with answers out (daemon shutdown): no step. */
    w.e.fp.delay_ms = 1000;
    for (int i = 0; i < 4; i++)
        steps[i] = rg_deploy_verdict(w.d, names[i])->steps;
    rg_deploy_tick(w.d, T0 + 3000);
    rg_deploy_set_query_client(w.d, NULL);
    rg_query_client_free(w.e.client);
    w.e.client = NULL;
    for (int i = 0; i < 4; i++)
        assert_int_equal(rg_deploy_verdict(w.d, names[i])->steps, steps[i]);
    /* Without a client the remote checks fail at once and the verdict steps. */
    rg_deploy_tick(w.d, T0 + 4000);
    assert_int_equal(rg_deploy_verdict(w.d, "web")->steps, steps[0] + 1);
    assert_string_equal(rg_deploy_verdict(w.d, "web")->checks[0].error,
                        "source prom: no query client");
    rg_buf_cleanup(&err);
    rworld_free(&w);
}

static void test_deploy__remote_overlap_and_free_in_flight(void **state)
{
    struct rworld w;
    struct rg_buf err = { 0 };
    const struct rg_verdict *web;
    int64_t deadline;
    (void)state;

    assert_int_equal(rworld_new(&w, remote_config, &err), 0);
    fp_set(&w.e.fp, "sum(errs{job=\"web\"})", "0.001");
    w.e.fp.delay_ms = 300;
    web = rg_deploy_verdict(w.d, "web");
    rg_deploy_tick(w.d, T0 + 1000);
    /* The next tick comes before the answers: nothing is sent for the deployments
     * still waiting, and their verdict steps once. */
    rg_deploy_tick(w.d, T0 + 2000);
    deadline = rg_mono_ms() + 5000;
    while (web->steps < 1 && rg_mono_ms() < deadline)
        uv_run(&w.e.loop, UV_RUN_ONCE);
    assert_int_equal(web->steps, 1);
    fp_env_run_for(&w.e, 100);
    assert_int_equal(web->steps, 1);
    /* 3 queries for each of web, api and down, 1 for local: one round each. */
    assert_int_equal(w.e.fp.requests, 10);
    /* A manager freed with answers out leaves them to the client. */
    rg_deploy_tick(w.d, T0 + 3000);
    rg_deploy_free(w.d);
    w.d = NULL;
    fp_env_run_for(&w.e, 50);
    rg_buf_cleanup(&err);
    rworld_free(&w);
}

static void test_deploy__remote_unknown_source(void **state)
{
    static const char text[] =
        "sources:\n"
        "  - {name: prom, url: \"http://127.0.0.1:%d\"}\n"
        "signals:\n"
        "  a: {expr: 'sum(x{<selector>})', source: nope}\n"
        "deployments:\n"
        "  - {name: web, selector: 'job=\"web\"', source: other%d}\n";
    struct rworld w;
    struct rg_buf err = { 0 };
    (void)state;

    assert_int_equal(rworld_new(&w, text, &err), RG_EINVAL);
    assert_null(w.d);
    assert_non_null(strstr(err.data, "deploy.yml:4:43: signal \"a\": unknown source "
                                     "\"nope\" (not in sources:)\n"));
    assert_non_null(strstr(err.data, "deploy.yml:6:48: deployment \"web\": unknown source"));
    rg_buf_cleanup(&err);
    rworld_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_deploy__healthy_service_promotes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deploy__error_ratio_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deploy__database_down_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deploy__discovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deploy__api_operations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deploy__state_survives_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deploy__batched_equals_per_deployment, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deploy__config_errors, setup, teardown),
        cmocka_unit_test(test_deploy__remote_promote_rollback_inconclusive),
        cmocka_unit_test(test_deploy__remote_recovery_and_cancel),
        cmocka_unit_test(test_deploy__remote_overlap_and_free_in_flight),
        cmocka_unit_test(test_deploy__remote_unknown_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
