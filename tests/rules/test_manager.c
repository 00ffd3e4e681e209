/* tests/rules/test_manager.c - rule groups over a real store: recording rules
 * written back and queryable, ALERTS series and their stale markers, slot
 * alignment and missed slots, query errors, notifications, persisted state. Groups
 * with a `source:` run on a real loop against a fake Prometheus query API
 * (fakeprom.h): alerts fire from its answers, a 500 or a timeout leaves the alert
 * state unchanged with health err and lastError, overlapping evaluations are
 * counted as missed, and an unknown source is a configuration error. */
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
#include "promql/ast.h"
#include "promql/engine.h"
#include "query/client.h"
#include "rules/manager.h"
#include "store/store.h"
#include "fakeprom.h"
#include "util/err.h"
#include "util/file.h"
#include "util/log.h"

#define T0 INT64_C(1700000000000)

struct fx {
    char dir[64];
    char cfg_path[128];
    char state_path[128];
    struct rg_config cfg;
    struct rg_store *store;
    struct rg_rules *rules;
};

static void fx_setup(struct fx *f, const char *global, const char *rules_yml)
{
    char path[256], text[1024];
    struct rg_buf err = { 0 };
    struct rg_store_config sc;

    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "%s/rg-rules-XXXXXX",
             getenv("TMPDIR") && strlen(getenv("TMPDIR")) < 40 ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->cfg_path, sizeof(f->cfg_path), "%s/rollgate.yml", f->dir);
    snprintf(f->state_path, sizeof(f->state_path), "%s/alerts.json", f->dir);
    snprintf(path, sizeof(path), "%s/rules.yml", f->dir);
    assert_int_equal(rg_file_write_atomic(path, rules_yml, strlen(rules_yml)), 0);
    snprintf(text, sizeof(text), "%s\nrule_files: [rules.yml]\n", global);
    rg_config_default(&f->cfg);
    if (rg_config_load_text(f->cfg_path, text, strlen(text), &f->cfg, &err))
        fail_msg("config: %s", err.data);
    rg_store_config_default(&sc);
    sc.retention_ms = 24 * 3600 * 1000;
    assert_int_equal(rg_store_new(&sc, &f->store), 0);
    rg_buf_cleanup(&err);
}

static void fx_start(struct fx *f, int persist)
{
    struct rg_rules_opts o;
    struct rg_buf err = { 0 };

    rg_rules_opts_default(&o);
    o.state_path = persist ? f->state_path : NULL;
    if (rg_rules_new(&f->cfg, f->store, &o, &f->rules, &err))
        fail_msg("rules: %s", err.data);
    rg_buf_cleanup(&err);
}

static void fx_teardown(struct fx *f)
{
    char path[256];
    rg_rules_free(f->rules);
    rg_store_free(f->store);
    rg_config_cleanup(&f->cfg);
    snprintf(path, sizeof(path), "%s/rules.yml", f->dir);
    unlink(path);
    unlink(f->state_path);
    rmdir(f->dir);
}

static void add(struct rg_store *st, const char *name, const char *job, int64_t t, double v)
{
    struct rg_label_ref l[2] = {
        { RG_SLICE_LIT("__name__"), { name, strlen(name) } },
        { RG_SLICE_LIT("job"), { job, strlen(job) } },
    };
    struct rg_series *s;
    assert_int_equal(rg_store_series_get(st, l, 2, &s, NULL), 0);
    assert_true(rg_store_append(st, s, t, v) >= 0);
}

/* Value of @q at @t: NAN when the result is empty. */
static double query(struct rg_store *st, const char *q, int64_t t)
{
    struct rg_promql_node *n;
    struct rg_promql_result res;
    struct rg_promql_opts o;
    struct rg_buf err = { 0 };
    char msg[256];
    double v = NAN;

    assert_int_equal(rg_promql_parse(q, &n, msg, sizeof(msg)), 0);
    rg_promql_opts_default(&o);
    memset(&res, 0, sizeof(res));
    if (rg_promql_eval_instant(st, n, t, &o, &res, &err))
        fail_msg("%s: %s", q, err.data);
    if (res.type == RG_PROMQL_VT_VECTOR && res.nseries > 0)
        v = res.series[0].points[0].v;
    else if (res.type == RG_PROMQL_VT_SCALAR)
        v = res.scalar;
    rg_promql_result_free(&res);
    rg_promql_node_free(n);
    rg_buf_cleanup(&err);
    return v;
}

/* The newest sample of the series with exactly these labels (name=value pairs). */
static int last_sample(struct rg_store *st, struct rg_sample *out, size_t n, ...)
{
    struct rg_label_ref l[16];
    struct rg_series *s;
    va_list ap;

    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        const char *k = va_arg(ap, const char *), *v = va_arg(ap, const char *);
        l[i].name = (struct rg_slice){ k, strlen(k) };
        l[i].value = (struct rg_slice){ v, strlen(v) };
    }
    va_end(ap);
    if (rg_store_series_find(st, l, n, &s))
        return 0;
    return rg_series_sample_at(s, INT64_MIN / 4, INT64_MAX / 4, out);
}

static void test_manager__recording_rules_written_back(void **state)
{
    static const char rules[] =
        "groups:\n"
        "- name: rec\n"
        "  labels: {team: core}\n"
        "  rules:\n"
        "  - record: job:requests:rate1m\n"
        "    expr: sum by (job) (rate(http_requests_total[1m]))\n"
        "  - record: job:requests:rate1m_x2\n"
        "    expr: job:requests:rate1m * 2\n"
        "    labels: {kind: doubled}\n"
        "  - record: scalar_one\n"
        "    expr: '1'\n";
    struct fx f;
    int64_t next, ts;
    size_t ng;
    const struct rg_rules_group *g;
    (void)state;

    fx_setup(&f, "global:\n  evaluation_interval: 10s", rules);
    for (int64_t t = T0 - 600000; t <= T0 + 120000; t += 5000)
        add(f.store, "http_requests_total", "api", t, (double)(t - (T0 - 600000)) / 1000 * 3);
    fx_start(&f, 0);
    next = rg_rules_tick(f.rules, T0);
    g = rg_rules_groups(f.rules, &ng);
    assert_int_equal(ng, 1);
    assert_int_equal(g[0].iterations, 0);            /* the first tick only schedules */
    assert_true(next > T0 && next <= T0 + 10000);
    ts = next;
    next = rg_rules_tick(f.rules, ts);
    assert_int_equal(next, ts + 10000);
    assert_int_equal(g[0].iterations, 1);
    assert_int_equal(g[0].last_eval_ms, ts);
    for (size_t i = 0; i < g[0].nrules; i++)
        assert_int_equal(g[0].rules[i].health, RG_RULE_HEALTH_OK);
    /* 3 per second, queryable under the new name with the labels applied. */
    assert_true(fabs(query(f.store, "job:requests:rate1m{job=\"api\",team=\"core\"}", ts) - 3)
                < 1e-9);
    /* The second rule saw the first one's output of the same evaluation. */
    assert_true(fabs(query(f.store, "job:requests:rate1m_x2{kind=\"doubled\"}", ts) - 6) < 1e-9);
    assert_true(query(f.store, "scalar_one{team=\"core\"}", ts) == 1);
    fx_teardown(&f);
}

static int64_t alerts_value(struct fx *f, const char *state_name, struct rg_sample *s)
{
    return last_sample(f->store, s, 5, "__name__", "ALERTS", "alertname", "High",
                       "alertstate", state_name, "job", "api", "severity", "page");
}

static void test_manager__alerts_series_and_stale_markers(void **state)
{
    static const char rules[] =
        "groups:\n"
        "- name: alerts\n"
        "  rules:\n"
        "  - alert: High\n"
        "    expr: load > 0.5\n"
        "    for: 20s\n"
        "    labels: {severity: page}\n"
        "    annotations:\n"
        "      summary: 'load {{ $value }} on {{ $labels.job }}'\n"
        "      total: '{{ query \"sum(load) * 2\" | first | value }}'\n";
    struct fx f;
    struct rg_sample s;
    int64_t ts;
    const struct rg_rules_group *g;
    size_t ng;
    (void)state;

    fx_setup(&f, "global:\n  evaluation_interval: 10s", rules);
    for (int64_t t = T0 - 60000; t <= T0 + 60000; t += 5000)
        add(f.store, "load", "api", t, 0.9);
    fx_start(&f, 0);
    ts = rg_rules_tick(f.rules, T0);
    g = rg_rules_groups(f.rules, &ng);

    rg_rules_tick(f.rules, ts);                                   /* pending */
    assert_true(alerts_value(&f, "pending", &s));
    assert_int_equal(s.t, ts);
    assert_true(s.v == 1);
    assert_true(last_sample(f.store, &s, 4, "__name__", "ALERTS_FOR_STATE", "alertname",
                            "High", "job", "api", "severity", "page"));
    assert_true(s.v == (double)(ts / 1000));
    assert_string_equal(g[0].rules[0].alerts.alerts[0].annotations[0].value,
                        "load 0.9 on api");
    /* The template's query runs against the store at the evaluation time. */
    assert_string_equal(g[0].rules[0].alerts.alerts[0].annotations[1].name, "total");
    assert_string_equal(g[0].rules[0].alerts.alerts[0].annotations[1].value, "1.8");

    rg_rules_tick(f.rules, ts + 10000);                           /* still pending */
    rg_rules_tick(f.rules, ts + 20000);                           /* firing */
    assert_int_equal(g[0].rules[0].alerts.alerts[0].state, RG_ALERT_FIRING);
    assert_true(alerts_value(&f, "firing", &s));
    assert_true(s.v == 1 && s.t == ts + 20000);
    /* The pending series went stale when the alert moved on. */
    assert_true(alerts_value(&f, "pending", &s));
    assert_int_equal(s.t, ts + 20000);
    assert_true(rg_is_stale_nan(s.v));

    /* The condition ends after the last sample: resolved, both series stale. */
    rg_rules_tick(f.rules, T0 + 60000 + 300000 + 30000);
    assert_int_equal(g[0].rules[0].alerts.alerts[0].state, RG_ALERT_INACTIVE);
    assert_true(alerts_value(&f, "firing", &s));
    assert_true(rg_is_stale_nan(s.v));
    assert_true(last_sample(f.store, &s, 4, "__name__", "ALERTS_FOR_STATE", "alertname",
                            "High", "job", "api", "severity", "page"));
    assert_true(rg_is_stale_nan(s.v));
    assert_true(g[0].iterations_missed > 0);
    fx_teardown(&f);
}

static void test_manager__slot_alignment(void **state)
{
    static const char rules[] =
        "groups:\n"
        "- name: a\n"
        "  interval: 7s\n"
        "  rules: [{record: x, expr: vector(1)}]\n"
        "- name: b\n"
        "  rules: [{record: y, expr: vector(2)}]\n"
        "- name: c\n"
        "  query_offset: 1m\n"
        "  rules: [{record: z, expr: vector(3)}]\n";
    struct fx f;
    const struct rg_rules_group *g;
    size_t ng;
    int64_t next;
    (void)state;

    fx_setup(&f, "global:\n  evaluation_interval: 10s\n  rule_query_offset: 5s", rules);
    fx_start(&f, 0);
    next = rg_rules_tick(f.rules, T0);
    g = rg_rules_groups(f.rules, &ng);
    assert_int_equal(ng, 3);
    assert_int_equal(g[0].interval_ms, 7000);
    assert_int_equal(g[1].interval_ms, 10000);
    assert_int_equal(g[1].query_offset_ms, 5000);
    assert_int_equal(g[2].query_offset_ms, 60000);
    for (size_t i = 0; i < ng; i++) {
        assert_true(g[i].offset_ms >= 0 && g[i].offset_ms < g[i].interval_ms);
        /* Slots are interval-aligned plus the group's offset, and in the future. */
        assert_int_equal((g[i].next_eval_ms - g[i].offset_ms) % g[i].interval_ms, 0);
        assert_true(g[i].next_eval_ms > T0 && g[i].next_eval_ms <= T0 + g[i].interval_ms);
        assert_true(next <= g[i].next_eval_ms);
    }
    /* Offsets differ between groups of one interval: the hash spreads them. */
    assert_true(g[1].offset_ms != g[2].offset_ms);
    /* A late tick skips the missed slots and evaluates the latest due one. */
    {
        int64_t due = g[1].next_eval_ms;
        rg_rules_tick(f.rules, due + 35000);
        assert_int_equal(g[1].last_eval_ms, due + 30000);
        assert_int_equal(g[1].iterations_missed, 3);
        assert_int_equal(g[1].next_eval_ms, due + 40000);
        /* Recording output is written at ts - query_offset. */
        assert_true(query(f.store, "y", due + 30000 - 5000) == 2);
        assert_true(isnan(query(f.store, "y", due + 30000 - 5001)));
    }
    fx_teardown(&f);
}

static void test_manager__query_error_keeps_state(void **state)
{
    static const char rules[] =
        "groups:\n"
        "- name: g\n"
        "  rules:\n"
        "  - alert: Errors\n"
        "    expr: rate({__name__=~\"errs_.*\"}[1m]) > 0\n";
    struct fx f;
    const struct rg_rules_group *g;
    size_t ng;
    int64_t ts;
    (void)state;

    fx_setup(&f, "global:\n  evaluation_interval: 10s", rules);
    for (int64_t t = T0 - 60000; t <= T0 + 60000; t += 5000)
        add(f.store, "errs_a", "x", t, (double)(t - T0));
    fx_start(&f, 0);
    ts = rg_rules_tick(f.rules, T0);
    g = rg_rules_groups(f.rules, &ng);
    rg_rules_tick(f.rules, ts);
    assert_int_equal(g[0].rules[0].health, RG_RULE_HEALTH_OK);
    assert_null(g[0].rules[0].last_error);
    assert_int_equal(g[0].rules[0].alerts.n, 1);
    assert_int_equal(g[0].rules[0].alerts.alerts[0].state, RG_ALERT_FIRING);
    /* A second series with the same labels once the name is dropped: the query fails. */
    for (int64_t t = T0 - 60000; t <= T0 + 60000; t += 5000)
        add(f.store, "errs_b", "x", t, (double)(t - T0));
    rg_rules_tick(f.rules, ts + 10000);
    assert_int_equal(g[0].rules[0].health, RG_RULE_HEALTH_ERR);
    assert_non_null(g[0].rules[0].last_error);
    assert_non_null(strstr(g[0].rules[0].last_error, "same labelset"));
    /* The alert is untouched: still firing, not resolved. */
    assert_int_equal(g[0].rules[0].alerts.n, 1);
    assert_int_equal(g[0].rules[0].alerts.alerts[0].state, RG_ALERT_FIRING);
    assert_int_equal(g[0].rules[0].alerts.alerts[0].resolved_at, 0);
    fx_teardown(&f);
}

static void test_manager__recording_rule_errors(void **state)
{
    static const char rules[] =
        "groups:\n"
        "- name: limited\n"
        "  limit: 1\n"
        "  rules:\n"
        "  - record: both\n"
        "    expr: m_a or m_b\n"
        "- name: clash\n"
        "  rules:\n"
        "  - record: same\n"
        "    expr: '{__name__=~\"m_.*\"}'\n"
        "  - record: matrix\n"
        "    expr: m_a[1m]\n";
    struct fx f;
    const struct rg_rules_group *g;
    size_t ng;
    int64_t t;
    (void)state;

    fx_setup(&f, "global:\n  evaluation_interval: 10s", rules);
    add(f.store, "m_a", "x", T0, 1);
    add(f.store, "m_b", "y", T0, 2);
    add(f.store, "m_c", "x", T0, 3);
    fx_start(&f, 0);
    t = rg_rules_tick(f.rules, T0);
    t = rg_rules_tick(f.rules, t);
    t = rg_rules_tick(f.rules, t);
    g = rg_rules_groups(f.rules, &ng);
    assert_int_equal(g[0].rules[0].health, RG_RULE_HEALTH_ERR);
    assert_string_equal(g[0].rules[0].last_error, "exceeded limit of 1 with 2 series");
    assert_true(isnan(query(f.store, "both", T0 + 30000)));
    assert_int_equal(g[1].rules[0].health, RG_RULE_HEALTH_ERR);
    assert_string_equal(g[1].rules[0].last_error, "vector contains metrics with the same "
                                                  "labelset after applying rule labels");
    assert_int_equal(g[1].rules[1].health, RG_RULE_HEALTH_ERR);
    assert_string_equal(g[1].rules[1].last_error, "rule result is not a vector or scalar");
    fx_teardown(&f);
}

struct got {
    int calls;
    char labels[256];
    char url[512];
    int64_t starts, ends;
};

static void on_notify(const struct rg_rules_notification *a, size_t n, void *ud)
{
    struct got *g = ud;
    g->calls++;
    assert_int_equal(n, 1);
    g->labels[0] = '\0';
    for (size_t i = 0; i < a[0].nlabels; i++)
        snprintf(g->labels + strlen(g->labels), sizeof(g->labels) - strlen(g->labels),
                 "%s=%s,", a[0].labels[i].name, a[0].labels[i].value);
    snprintf(g->url, sizeof(g->url), "%s", a[0].generator_url);
    g->starts = a[0].starts_at_ms;
    g->ends = a[0].ends_at_ms;
}

static void test_manager__notify_hook(void **state)
{
    static const char rules[] =
        "groups:\n"
        "- name: g\n"
        "  interval: 2m\n"
        "  rules:\n"
        "  - alert: Down\n"
        "    expr: up{job=\"db\"} == 0\n"
        "    labels: {cluster: '{{ $externalLabels.cluster }}'}\n";
    struct fx f;
    struct got got = { 0 };
    int64_t ts;
    (void)state;

    fx_setup(&f, "global:\n  external_url: http://rg.example:9201/\n"
                 "  external_labels: {cluster: eu-1}", rules);
    for (int64_t t = T0 - 60000; t <= T0 + 600000; t += 15000)
        add(f.store, "up", "db", t, 0);
    fx_start(&f, 0);
    assert_string_equal(rg_rules_global_get(f.rules)->external_url, "http://rg.example:9201");
    rg_rules_set_notify(f.rules, on_notify, &got);
    ts = rg_rules_tick(f.rules, T0);
    rg_rules_tick(f.rules, ts);
    assert_int_equal(got.calls, 1);
    assert_string_equal(got.labels, "alertname=Down,cluster=eu-1,job=db,");
    assert_string_equal(got.url, "http://rg.example:9201/graph?g0.expr=up%7Bjob%3D%22db%22%7D"
                                 "+%3D%3D+0&g0.tab=1");
    assert_int_equal(got.starts, ts);
    assert_int_equal(got.ends, ts + 4 * 120000);    /* 4 x max(resend 1m, interval 2m) */
    /* Re-sent at the next slot (last sent + 1m is before it). */
    rg_rules_tick(f.rules, ts + 120000);
    assert_int_equal(got.calls, 2);
    fx_teardown(&f);
}

static void test_manager__state_survives_restart(void **state)
{
    static const char rules[] =
        "groups:\n"
        "- name: g\n"
        "  rules:\n"
        "  - alert: Slow\n"
        "    expr: latency > 1\n"
        "    for: 5m\n"
        "  - alert: Flappy\n"
        "    expr: errors > 1\n"
        "    keep_firing_for: 1m\n";
    struct fx f;
    const struct rg_rules_group *g;
    size_t ng;
    int64_t ts, active_at;
    (void)state;

    fx_setup(&f, "global:\n  evaluation_interval: 10s", rules);
    for (int64_t t = T0 - 60000; t <= T0 + 900000; t += 5000)
        add(f.store, "latency", "api", t, 2);
    for (int64_t t = T0 - 60000; t <= T0 + 40000; t += 5000)
        add(f.store, "errors", "api", t, 5);
    fx_start(&f, 1);
    ts = rg_rules_tick(f.rules, T0);
    rg_rules_tick(f.rules, ts);
    g = rg_rules_groups(f.rules, &ng);
    assert_int_equal(g[0].rules[0].alerts.alerts[0].state, RG_ALERT_PENDING);
    active_at = g[0].rules[0].alerts.alerts[0].active_at;
    assert_int_equal(active_at, ts);
    /* errors stops after T0+40s; at T0+40s+5m lookback it is gone: keep_firing holds. */
    {
        int64_t t = ts;
        while (t < T0 + 40000 + 300000 + 10000)
            t = rg_rules_tick(f.rules, t);
    }
    assert_int_equal(g[0].rules[1].alerts.alerts[0].state, RG_ALERT_FIRING);
    assert_true(g[0].rules[1].alerts.alerts[0].keep_firing_since != 0);
    assert_int_equal(g[0].rules[0].alerts.alerts[0].state, RG_ALERT_FIRING);
    {
        int64_t since = g[0].rules[1].alerts.alerts[0].keep_firing_since;
        int64_t last = g[0].last_eval_ms;
        struct rg_buf saved = { 0 };
        assert_int_equal(rg_file_read(f.state_path, 1 << 20, &saved), 0);
        assert_non_null(strstr(saved.data, "\"rule\":\"Flappy\""));
        rg_buf_cleanup(&saved);

        /* Restart: a new manager over the same store restores both alerts. */
        rg_rules_free(f.rules);
        f.rules = NULL;
        fx_start(&f, 1);
        g = rg_rules_groups(f.rules, &ng);
        assert_int_equal(g[0].rules[0].alerts.n, 1);
        assert_int_equal(g[0].rules[0].alerts.alerts[0].state, RG_ALERT_FIRING);
        assert_int_equal(g[0].rules[0].alerts.alerts[0].active_at, active_at);
        assert_int_equal(g[0].rules[1].alerts.alerts[0].state, RG_ALERT_FIRING);
        assert_int_equal(g[0].rules[1].alerts.alerts[0].keep_firing_since, since);
        /* keep_firing_for goes on counting from before the restart. */
        ts = rg_rules_tick(f.rules, last + 1);
        while (ts < since + 60000)
            ts = rg_rules_tick(f.rules, ts);
        assert_int_equal(g[0].rules[1].alerts.alerts[0].state, RG_ALERT_FIRING);
        ts = rg_rules_tick(f.rules, ts);
        assert_int_equal(g[0].rules[1].alerts.alerts[0].state, RG_ALERT_INACTIVE);
    }
    fx_teardown(&f);
}

static void test_manager__pending_timer_survives_restart(void **state)
{
    static const char rules[] =
        "groups:\n"
        "- name: g\n"
        "  rules:\n"
        "  - alert: Slow\n"
        "    expr: latency > 1\n"
        "    for: 1m\n";
    struct fx f;
    const struct rg_rules_group *g;
    size_t ng;
    int64_t ts, active_at;
    (void)state;

    fx_setup(&f, "global:\n  evaluation_interval: 10s", rules);
    for (int64_t t = T0 - 60000; t <= T0 + 900000; t += 5000)
        add(f.store, "latency", "api", t, 2);
    fx_start(&f, 1);
    ts = rg_rules_tick(f.rules, T0);
    ts = rg_rules_tick(f.rules, ts);
    ts = rg_rules_tick(f.rules, ts);
    g = rg_rules_groups(f.rules, &ng);
    active_at = g[0].rules[0].alerts.alerts[0].active_at;
    rg_rules_free(f.rules);
    f.rules = NULL;
    /* Down for 30s, then back: the alert fires 1m after it first became pending,
     * not 1m after the restart and not from scratch. */
    fx_start(&f, 1);
    g = rg_rules_groups(f.rules, &ng);
    assert_int_equal(g[0].rules[0].alerts.alerts[0].state, RG_ALERT_PENDING);
    ts = rg_rules_tick(f.rules, ts + 30000);
    while (ts < active_at + 60000) {
        ts = rg_rules_tick(f.rules, ts);
        assert_int_equal(g[0].rules[0].alerts.alerts[0].active_at, active_at);
    }
    assert_int_equal(g[0].rules[0].alerts.alerts[0].state, RG_ALERT_PENDING);
    rg_rules_tick(f.rules, ts);
    assert_int_equal(g[0].rules[0].alerts.alerts[0].state, RG_ALERT_FIRING);
    assert_int_equal(g[0].rules[0].alerts.alerts[0].fired_at, ts);
    fx_teardown(&f);
}

static void test_manager__corrupt_state_file_starts_empty(void **state)
{
    static const char rules[] =
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: vector(1)\n";
    static const char *const bad[] = {
        "{not json", "[]", "{\"version\":2,\"rules\":[]}",
        "{\"version\":1,\"rules\":[{\"file\":1}]}",
        "{\"version\":1,\"rules\":[{\"file\":\"x\",\"group\":\"g\",\"rule\":\"A\",\"index\":0,"
        "\"alerts\":[]}]}",
    };
    (void)state;

    rg_log_set_level(RG_LOG_ERROR);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fx f;
        const struct rg_rules_group *g;
        size_t ng;
        fx_setup(&f, "global:\n  evaluation_interval: 10s", rules);
        assert_int_equal(rg_file_write_atomic(f.state_path, bad[i], strlen(bad[i])), 0);
        fx_start(&f, 1);
        g = rg_rules_groups(f.rules, &ng);
        assert_int_equal(g[0].rules[0].alerts.n, 0);
        fx_teardown(&f);
    }
    rg_log_set_level(RG_LOG_INFO);
}

static void test_manager__global_and_check_errors(void **state)
{
    static const char text[] =
        "global:\n"
        "  evaluation_interval: 0s\n"
        "  external_labels: {'bad-name': x, ok: y}\n"
        "  external_url: ftp://x\n"
        "  nope: 1\n"
        "rule_files: [tests/data/rules/bad/semantic.yml, tests/data/rules/node.yml]\n";
    struct rg_config cfg;
    struct rg_buf err = { 0 };
    struct rg_rules_global g;
    (void)state;

    rg_config_default(&cfg);
    assert_int_equal(rg_config_load_text("rollgate.yml", text, strlen(text), &cfg, &err), 0);
    assert_int_equal(rg_rules_global_parse(&cfg, &g, &err), RG_EPARSE);
    rg_rules_global_cleanup(&g);
    assert_string_equal(err.data,
        "rollgate.yml:2:24: global.evaluation_interval: expected a positive duration such as "
        "1m or 30s\n"
        "rollgate.yml:3:21: global.external_labels: invalid label name \"bad-name\"\n"
        "rollgate.yml:4:17: global.external_url: expected an http:// or https:// URL\n"
        "rollgate.yml:5:3: global: unknown key \"nope\"\n");
    rg_buf_reset(&err);
    assert_int_equal(rg_rules_check(&cfg, &err), RG_EPARSE);
    assert_non_null(strstr(err.data, "tests/data/rules/bad/semantic.yml:6:5: groupname: \"dup\" "
                                     "is repeated in the same file\n"));
    rg_config_cleanup(&cfg);
    rg_buf_cleanup(&err);

    /* Defaults without a global section. */
    rg_config_default(&cfg);
    assert_int_equal(rg_rules_global_parse(&cfg, &g, &err), 0);
    assert_int_equal(g.evaluation_interval_ms, 60000);
    assert_int_equal(g.resend_delay_ms, 60000);
    assert_string_equal(g.external_url, "");
    rg_rules_global_cleanup(&g);
    rg_rules_global_cleanup(NULL);
    rg_rules_free(NULL);
    rg_config_cleanup(&cfg);
    rg_buf_cleanup(&err);
}

/* ---- groups with a source ------------------------------------------------------ */

static const char remote_rules[] =
    "groups:\n"
    "- name: remote\n"
    "  source: prom\n"
    "  rules:\n"
    "  - alert: HighErrors\n"
    "    expr: errors > 1\n"
    "    for: 20s\n"
    "    labels: {severity: page}\n"
    "    annotations:\n"
    "      summary: '{{ $labels.job }} at {{ $value }}'\n"
    "      other: '{{ with query \"errors\" }}{{ . | first | value }}{{ end }}'\n"
    "  - record: job:errors:copy\n"
    "    expr: errors\n";

static void remote_setup(struct fx *f, struct fp_env *e, struct rg_query_sources **srcs,
                         const char *rules, int timeout_ms)
{
    char global[512];
    struct rg_rules_opts o;
    struct rg_buf err = { 0 };

    assert_int_equal(fp_env_init(e), 0);
    snprintf(global, sizeof(global),
             "global:\n  evaluation_interval: 10s\n"
             "sources:\n  - name: prom\n    url: http://127.0.0.1:%d\n    timeout: %dms\n",
             e->fp.port, timeout_ms);
    fx_setup(f, global, rules);
    if (rg_query_sources_parse(&f->cfg, srcs, &err))
        fail_msg("sources: %s", err.data);
    rg_rules_opts_default(&o);
    o.client = e->client;
    o.sources = *srcs;
    if (rg_rules_new(&f->cfg, f->store, &o, &f->rules, &err))
        fail_msg("rules: %s", err.data);
    rg_buf_cleanup(&err);
}

/* Ticks at @ts and runs the loop until the group's answers are applied. */
static const struct rg_rules_group *remote_tick(struct fx *f, struct fp_env *e, int64_t ts)
{
    size_t ng;
    const struct rg_rules_group *g;

    rg_rules_tick(f->rules, ts);
    g = rg_rules_groups(f->rules, &ng);
    assert_int_equal(ng, 1);
    assert_int_equal(fp_env_run_while(e, &g->in_flight, 5000), 0);
    return g;
}

static const struct rg_alert *only_alert(const struct rg_rules_group *g)
{
    assert_int_equal(g->rules[0].alerts.n, 1);
    return &g->rules[0].alerts.alerts[0];
}

static void test_manager__remote_group_fires_and_keeps_state_on_errors(void **state)
{
    struct fx f;
    struct fp_env e;
    struct rg_query_sources *srcs = NULL;
    const struct rg_rules_group *g;
    int64_t ts;
    size_t ng;
    (void)state;

    remote_setup(&f, &e, &srcs, remote_rules, 300);
    fp_set(&e.fp, "errors > 1", "5");
    fp_set(&e.fp, "errors", "5");
    ts = rg_rules_tick(f.rules, T0);          /* the first tick only schedules */
    g = rg_rules_groups(f.rules, &ng);
    assert_non_null(g[0].source);
    assert_string_equal(g[0].source->name, "prom");

    /* The tick only sends the queries; the answers arrive through the loop. */
    rg_rules_tick(f.rules, ts);
    assert_int_equal(g[0].in_flight, 1);
    assert_int_equal(g[0].iterations, 0);
    assert_int_equal(fp_env_run_while(&e, &g[0].in_flight, 5000), 0);
    assert_int_equal(g[0].iterations, 1);
    assert_int_equal(e.fp.requests, 2);
    /* The query time is the group's slot, in seconds with milliseconds. */
    assert_int_equal(llround(strtod(e.fp.last_time, NULL) * 1000), ts);
    assert_int_equal(g[0].rules[0].health, RG_RULE_HEALTH_OK);
    assert_int_equal(g[0].rules[1].health, RG_RULE_HEALTH_OK);
    assert_int_equal(only_alert(g)->state, RG_ALERT_PENDING);
    assert_int_equal(only_alert(g)->active_at, ts);
    /* Templates expand from the server's answer; `query` cannot wait for a server. */
    assert_int_equal(only_alert(g)->nannotations, 2);
    assert_string_equal(only_alert(g)->annotations[1].name, "summary");
    assert_string_equal(only_alert(g)->annotations[1].value, "api at 5");
    assert_non_null(strstr(only_alert(g)->annotations[0].value,
                           "the query function is not available in groups with a source"));
    /* The recording rule's result is in the local store. */
    assert_true(query(f.store, "job:errors:copy{job=\"api\"}", ts) == 5);

    g = remote_tick(&f, &e, ts + 10000);
    assert_int_equal(only_alert(g)->state, RG_ALERT_PENDING);
    g = remote_tick(&f, &e, ts + 20000);
    assert_int_equal(only_alert(g)->state, RG_ALERT_FIRING);
    assert_int_equal(only_alert(g)->fired_at, ts + 20000);
    assert_true(query(f.store, "ALERTS{alertname=\"HighErrors\",alertstate=\"firing\"}",
                      ts + 20000) == 1);

    /* A 500: the alert stays firing, the rules say why. */
    e.fp.status = 500;
    g = remote_tick(&f, &e, ts + 30000);
    assert_int_equal(only_alert(g)->state, RG_ALERT_FIRING);
    assert_int_equal(only_alert(g)->fired_at, ts + 20000);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(g->rules[i].health, RG_RULE_HEALTH_ERR);
        assert_non_null(g->rules[i].last_error);
        assert_non_null(strstr(g->rules[i].last_error, "HTTP 500"));
    }
    assert_true(fp_env_metric_has(&e, "rollgate_query_errors_total{source=\"prom\","
                                      "reason=\"http\"} 2"));

    /* A timeout: the same. */
    e.fp.status = 0;
    e.fp.delay_ms = 1000;
    g = remote_tick(&f, &e, ts + 40000);
    assert_int_equal(only_alert(g)->state, RG_ALERT_FIRING);
    assert_int_equal(g->rules[0].health, RG_RULE_HEALTH_ERR);
    assert_non_null(strstr(g->rules[0].last_error, "timed out"));
    assert_true(fp_env_metric_has(&e, "rollgate_query_errors_total{source=\"prom\","
                                      "reason=\"timeout\"} 2"));

    /* Healthy again; then the condition ends and the alert resolves. */
    e.fp.delay_ms = 0;
    g = remote_tick(&f, &e, ts + 50000);
    assert_int_equal(g->rules[0].health, RG_RULE_HEALTH_OK);
    assert_null(g->rules[0].last_error);
    assert_int_equal(only_alert(g)->state, RG_ALERT_FIRING);
    fp_set(&e.fp, "errors > 1", NULL);
    g = remote_tick(&f, &e, ts + 60000);
    assert_int_equal(only_alert(g)->state, RG_ALERT_INACTIVE);
    assert_int_equal(only_alert(g)->resolved_at, ts + 60000);
    assert_int_equal(g->iterations, 7);
    assert_int_equal(g->iterations_missed, 0);

    /* The client closing with answers out (daemon shutdown) is no answer: nothing is
     * applied and the group is free again. */
    e.fp.delay_ms = 1000;
    rg_rules_tick(f.rules, ts + 70000);
    assert_int_equal(g->in_flight, 1);
    rg_rules_set_query_client(f.rules, NULL);
    rg_query_client_free(e.client);
    e.client = NULL;
    assert_int_equal(g->in_flight, 0);
    assert_int_equal(g->iterations, 7);
    assert_int_equal(g->rules[0].health, RG_RULE_HEALTH_OK);
    /* Without a client a group with a source fails at once, state unchanged. */
    rg_rules_tick(f.rules, ts + 80000);
    assert_int_equal(g->in_flight, 0);
    assert_int_equal(g->rules[0].health, RG_RULE_HEALTH_ERR);
    assert_string_equal(g->rules[0].last_error, "source prom: no query client");
    assert_int_equal(only_alert(g)->state, RG_ALERT_INACTIVE);

    fx_teardown(&f);
    rg_query_sources_free(srcs);
    fp_env_done(&e);
}

static void test_manager__remote_group_overlap_is_missed(void **state)
{
    struct fx f;
    struct fp_env e;
    struct rg_query_sources *srcs = NULL;
    const struct rg_rules_group *g;
    int64_t ts;
    size_t ng;
    (void)state;

    remote_setup(&f, &e, &srcs, remote_rules, 5000);
    fp_set(&e.fp, "errors > 1", "5");
    e.fp.delay_ms = 300;
    ts = rg_rules_tick(f.rules, T0);
    g = rg_rules_groups(f.rules, &ng);
    rg_rules_tick(f.rules, ts);
    assert_int_equal(g[0].in_flight, 1);
    /* The next slot comes while the answers are still out: skipped, not sent. */
    assert_int_equal(rg_rules_tick(f.rules, ts + 10000), ts + 20000);
    assert_int_equal(g[0].iterations_missed, 1);
    assert_int_equal(fp_env_run_while(&e, &g[0].in_flight, 5000), 0);
    assert_int_equal(e.fp.requests, 2);
    assert_int_equal(g[0].iterations, 1);
    /* The late answers are applied with the timestamp of the tick that sent them. */
    assert_int_equal(only_alert(g)->active_at, ts);

    /* A manager freed while its answers are out leaves them to the client. */
    rg_rules_tick(f.rules, ts + 20000);
    assert_int_equal(g[0].in_flight, 1);
    fx_teardown(&f);
    fp_env_run_for(&e, 50);
    rg_query_sources_free(srcs);
    fp_env_done(&e);
}

static void test_manager__remote_group_unknown_source(void **state)
{
    static const char rules[] =
        "groups:\n"
        "- name: remote\n"
        "  source: nope\n"
        "  rules:\n"
        "  - record: x\n"
        "    expr: up\n";
    struct fx f;
    struct rg_rules_opts o;
    struct rg_buf err = { 0 };
    struct rg_query_sources *srcs = NULL;
    (void)state;

    fx_setup(&f, "sources:\n  - name: prom\n    url: http://127.0.0.1:9\n", rules);
    assert_int_equal(rg_query_sources_parse(&f.cfg, &srcs, &err), 0);
    rg_rules_opts_default(&o);
    o.sources = srcs;
    assert_int_equal(rg_rules_new(&f.cfg, f.store, &o, &f.rules, &err), RG_EPARSE);
    assert_non_null(strstr(err.data, "rules.yml:3:11: group \"remote\": unknown source "
                                     "\"nope\" (not in sources:)\n"));
    /* Without any sources every named source is unknown; without a name all is local. */
    rg_buf_reset(&err);
    rg_rules_opts_default(&o);
    assert_int_equal(rg_rules_new(&f.cfg, f.store, &o, &f.rules, &err), RG_EPARSE);
    assert_null(f.rules);
    rg_buf_cleanup(&err);
    rg_query_sources_free(srcs);
    fx_teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manager__recording_rules_written_back),
        cmocka_unit_test(test_manager__alerts_series_and_stale_markers),
        cmocka_unit_test(test_manager__slot_alignment),
        cmocka_unit_test(test_manager__query_error_keeps_state),
        cmocka_unit_test(test_manager__recording_rule_errors),
        cmocka_unit_test(test_manager__notify_hook),
        cmocka_unit_test(test_manager__state_survives_restart),
        cmocka_unit_test(test_manager__pending_timer_survives_restart),
        cmocka_unit_test(test_manager__corrupt_state_file_starts_empty),
        cmocka_unit_test(test_manager__global_and_check_errors),
        cmocka_unit_test(test_manager__remote_group_fires_and_keeps_state_on_errors),
        cmocka_unit_test(test_manager__remote_group_overlap_is_missed),
        cmocka_unit_test(test_manager__remote_group_unknown_source),
    };
    rg_log_set_level(RG_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
