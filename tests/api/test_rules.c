/* tests/api/test_rules.c - GET /api/v1/rules and /api/v1/alerts, called directly with
 * requests built in memory over a rules manager with a fake clock, so that the whole
 * JSON (evaluation times included) is compared exactly. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "config/config.h"
#include "rules/manager.h"
#include "util/err.h"
#include "util/log.h"

#define T0 INT64_C(1700000000000)

static uint64_t fake_ns;

/* Every reading advances 250 microseconds. */
static uint64_t fake_clock(void)
{
    return fake_ns += 250000;
}

struct env {
    struct rg_config cfg;
    struct rg_store *store;
    struct rg_rules *rules;
    struct rg_api api;
};

static void add(struct rg_store *st, const char *job, int64_t t, double v)
{
    struct rg_label_ref l[2] = {
        { RG_SLICE_LIT("__name__"), RG_SLICE_LIT("load") },
        { RG_SLICE_LIT("job"), { job, strlen(job) } },
    };
    struct rg_series *s;
    assert_int_equal(rg_store_series_get(st, l, 2, &s, NULL), 0);
    assert_true(rg_store_append(st, s, t, v) >= 0);
}

static int setup(void **state)
{
    static const char text[] = "rule_files: [rules.yml]\n";
    struct env *e = calloc(1, sizeof(*e));
    struct rg_store_config sc;
    struct rg_rules_opts o;
    struct rg_buf err = { 0 };

    rg_log_set_level(RG_LOG_ERROR);
    rg_config_default(&e->cfg);
    assert_int_equal(rg_config_load_text("tests/data/rules/api/rollgate.yml", text,
                                         sizeof(text) - 1, &e->cfg, &err), 0);
    rg_store_config_default(&sc);
    assert_int_equal(rg_store_new(&sc, &e->store), 0);
    for (int64_t t = T0 - 60000; t <= T0 + 60000; t += 5000)
        add(e->store, "web", t, 0.75);
    rg_rules_opts_default(&o);
    o.clock_ns = fake_clock;
    if (rg_rules_new(&e->cfg, e->store, &o, &e->rules, &err))
        fail_msg("%s", err.data);
    e->api.store = e->store;
    e->api.cfg = &e->cfg;
    rg_buf_cleanup(&err);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    rg_rules_free(e->rules);
    rg_store_free(e->store);
    rg_config_cleanup(&e->cfg);
    free(e);
    return 0;
}

/* Sends one request; returns the status, the body in @out, *@handled the route's answer. */
static int call(struct env *e, const char *method, const char *path, const char *query,
                struct rg_buf *out, int *handled)
{
    struct rg_http_request req;
    struct rg_http_response res;
    int status;

    memset(&req, 0, sizeof(req));
    memset(&res, 0, sizeof(res));
    req.method = method;
    req.path = (struct rg_slice){ path, strlen(path) };
    req.query = (struct rg_slice){ query, strlen(query) };
    res.status = 200;
    *handled = rg__api_rules_route(&e->api, &req, &res);
    status = res.status;
    rg_buf_reset(out);
    rg_buf_append(out, res.body.data ? res.body.data : "", res.body.len);
    rg_buf_cleanup(&res.body);
    rg_buf_cleanup(&res.headers);
    return status;
}

static void test_rules__bad_requests(void **state)
{
    struct env *e = *state;
    struct rg_buf b = { 0 };
    int h;

    e->api.rules = e->rules;
    assert_int_equal(call(e, "GET", "/api/v1/rules", "type=bogus", &b, &h), 400);
    assert_string_equal(b.data, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":"
                                "\"invalid parameter \\\"type\\\": not supported value "
                                "\\\"bogus\\\"\"}");
    assert_int_equal(call(e, "GET", "/api/v1/rules", "exclude_alerts=maybe", &b, &h), 400);
    assert_non_null(strstr(b.data, "invalid parameter \\\"exclude_alerts\\\""));
    assert_int_equal(call(e, "GET", "/api/v1/rules", "type=%zz", &b, &h), 400);
    assert_int_equal(call(e, "POST", "/api/v1/alerts", "", &b, &h), 405);
    assert_true(h);
    assert_int_equal(call(e, "GET", "/api/v1/rules", "type=RECORD", &b, &h), 200);
    assert_null(strstr(b.data, "alerting"));
    rg_buf_cleanup(&b);
}

static void test_rules__without_manager(void **state)
{
    struct env *e = *state;
    struct rg_buf b = { 0 };
    int h;

    assert_int_equal(call(e, "GET", "/api/v1/rules", "", &b, &h), 200);
    assert_true(h);
    assert_string_equal(b.data, "{\"status\":\"success\",\"data\":{\"groups\":[]}}");
    assert_int_equal(call(e, "GET", "/api/v1/alerts", "", &b, &h), 200);
    assert_string_equal(b.data, "{\"status\":\"success\",\"data\":{\"alerts\":[]}}");
    call(e, "GET", "/api/v1/query", "", &b, &h);
    assert_false(h);
    rg_buf_cleanup(&b);
}

static void test_rules__documents(void **state)
{
    struct env *e = *state;
    struct rg_buf b = { 0 };
    int64_t ts;
    int h;

    e->api.rules = e->rules;
    /* Before any evaluation: health unknown, Go's zero time. */
    assert_int_equal(call(e, "GET", "/api/v1/rules", "type=record&rule_group[]=other", &b, &h),
                     200);
    assert_string_equal(b.data,
        "{\"status\":\"success\",\"data\":{\"groups\":[{\"name\":\"other\",\"file\":"
        "\"tests/data/rules/api/rules.yml\",\"rules\":[{\"name\":\"answer\",\"query\":"
        "\"vector(42)\",\"health\":\"unknown\",\"evaluationTime\":0,\"lastEvaluation\":"
        "\"0001-01-01T00:00:00Z\",\"type\":\"recording\"}],\"interval\":10,\"limit\":0,"
        "\"evaluationTime\":0,\"lastEvaluation\":\"0001-01-01T00:00:00Z\"}]}}");

    for (ts = rg_rules_tick(e->rules, T0); ts <= T0 + 40000;)
        ts = rg_rules_tick(e->rules, ts);
    assert_int_equal(call(e, "GET", "/api/v1/rules", "rule_group[]=api", &b, &h), 200);
    assert_string_equal(b.data,
        "{\"status\":\"success\",\"data\":{\"groups\":[{\"name\":\"api\",\"file\":"
        "\"tests/data/rules/api/rules.yml\",\"rules\":[{\"state\":\"firing\",\"name\":"
        "\"HighLoad\",\"query\":\"load > 0.5\",\"duration\":10,\"keepFiringFor\":60,"
        "\"labels\":{\"severity\":\"page\",\"team\":\"core\"},\"annotations\":{\"summary\":"
        "\"load {{ $value }} on {{ $labels.job }}\"},\"alerts\":[{\"labels\":{\"alertname\":"
        "\"HighLoad\",\"job\":\"web\",\"severity\":\"page\",\"team\":\"core\"},"
        "\"annotations\":{\"summary\":\"load 0.75 on web\"},\"state\":\"firing\","
        "\"activeAt\":\"2023-11-14T22:13:27.711Z\",\"value\":\"7.5e-01\"}],\"health\":"
        "\"ok\",\"evaluationTime\":0.00025,\"lastEvaluation\":\"2023-11-14T22:13:57.711Z\","
        "\"type\":\"alerting\"},{\"name\":\"job:load:sum\",\"query\":"
        "\"sum by (job) (load)\",\"labels\":{\"team\":\"core\"},\"health\":\"ok\","
        "\"evaluationTime\":0.00025,\"lastEvaluation\":\"2023-11-14T22:13:57.711Z\","
        "\"type\":\"recording\"}],\"interval\":10,\"limit\":0,\"evaluationTime\":0.00125,"
        "\"lastEvaluation\":\"2023-11-14T22:13:57.711Z\"}]}}");
    assert_int_equal(call(e, "GET", "/api/v1/alerts", "", &b, &h), 200);
    assert_string_equal(b.data,
        "{\"status\":\"success\",\"data\":{\"alerts\":[{\"labels\":{\"alertname\":"
        "\"HighLoad\",\"job\":\"web\",\"severity\":\"page\",\"team\":\"core\"},"
        "\"annotations\":{\"summary\":\"load 0.75 on web\"},\"state\":\"firing\","
        "\"activeAt\":\"2023-11-14T22:13:27.711Z\",\"value\":\"7.5e-01\"}]}}");
    /* exclude_alerts drops the alert lists; type=alert drops recording rules and the
     * group left without rules. */
    assert_int_equal(call(e, "GET", "/api/v1/rules", "type=alert&exclude_alerts=1", &b, &h),
                     200);
    assert_null(strstr(b.data, "\"alerts\""));
    assert_null(strstr(b.data, "recording"));
    assert_null(strstr(b.data, "\"other\""));
    assert_non_null(strstr(b.data, "\"name\":\"HighLoad\""));
    assert_int_equal(call(e, "GET", "/api/v1/rules", "rule_name[]=answer&file[]=nope", &b, &h),
                     200);
    assert_string_equal(b.data, "{\"status\":\"success\",\"data\":{\"groups\":[]}}");

    /* The data ends at T0+60s and leaves the lookback at T0+360s: keep_firing_for
     * holds the alert, and the API shows since when. */
    while (ts <= T0 + 370000)
        ts = rg_rules_tick(e->rules, ts);
    assert_int_equal(call(e, "GET", "/api/v1/alerts", "", &b, &h), 200);
    assert_string_equal(b.data,
        "{\"status\":\"success\",\"data\":{\"alerts\":[{\"labels\":{\"alertname\":"
        "\"HighLoad\",\"job\":\"web\",\"severity\":\"page\",\"team\":\"core\"},"
        "\"annotations\":{\"summary\":\"load 0.75 on web\"},\"state\":\"firing\","
        "\"activeAt\":\"2023-11-14T22:13:27.711Z\",\"keepFiringSince\":"
        "\"2023-11-14T22:19:27.711Z\",\"value\":\"7.5e-01\"}]}}");
    rg_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rules__without_manager, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rules__documents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rules__bad_requests, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
