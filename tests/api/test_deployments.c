/* tests/api/test_deployments.c - the deployments endpoints, called directly with
 * requests built in memory: routing, methods, bodies, status codes and envelopes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "config/config.h"
#include "config/yaml.h"
#include "rules/deploy.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

int rg__api_deployments_route(struct rg_api *api, struct rg_http_request *req,
                              struct rg_http_response *res);

static const char config_text[] =
    "phases:\n"
    "  - {name: canary, min_observation: 15m}\n"
    "  - {name: full, min_observation: 1h}\n"
    "  - {name: other, min_observation: 1h}\n"
    "deployments:\n"
    "  - {name: checkout, selector: 'job=\"checkout\"', phases: [canary, full]}\n"
    "  - {name: a b+c, selector: 'job=\"abc\"'}\n"
    "discovery: {enabled: false}\n";

struct env {
    struct rg_config cfg;
    struct rg_store *store;
    struct rg_deploy *deploy;
    struct rg_api api;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    struct rg_store_config sc;
    struct rg_yaml_node *root = NULL;
    struct rg_buf err = { 0 };
    char msg[256];

    rg_log_set_level(RG_LOG_ERROR);
    rg_config_default(&e->cfg);
    assert_int_equal(rg_yaml_parse(config_text, sizeof(config_text) - 1, &root, msg,
                                   sizeof(msg)), 0);
    e->cfg.yaml = root;
    e->cfg.docs = calloc(1, sizeof(*e->cfg.docs));
    e->cfg.docs[0].path = strdup("api.yml");
    e->cfg.docs[0].root = root;
    e->cfg.ndocs = 1;
    rg_store_config_default(&sc);
    assert_int_equal(rg_store_new(&sc, &e->store), 0);
    if (rg_deploy_new(&e->cfg, e->store, NULL, NULL, rg_now_ms(), &e->deploy, &err))
        fail_msg("%s", err.data);
    e->api.deploy = e->deploy;
    e->api.store = e->store;
    e->api.cfg = &e->cfg;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;

    rg_deploy_free(e->deploy);
    rg_store_free(e->store);
    rg_config_cleanup(&e->cfg);
    free(e);
    return 0;
}

/* Sends one request; returns the status and leaves the body in @body. */
static int call(struct env *e, const char *method, const char *path, const char *body,
                struct rg_buf *out, int *handled)
{
    struct rg_http_request req;
    struct rg_http_response res;

    memset(&req, 0, sizeof(req));
    memset(&res, 0, sizeof(res));
    req.method = method;
    req.path = (struct rg_slice){ path, strlen(path) };
    req.url = req.path;
    if (body)
        rg_buf_append(&req.body, body, strlen(body));
    res.status = 200;
    *handled = rg__api_deployments_route(&e->api, &req, &res);
    rg_buf_reset(out);
    rg_buf_append(out, res.body.data ? res.body.data : "", res.body.len);
    rg_buf_cleanup(&req.body);
    rg_buf_cleanup(&res.body);
    rg_buf_cleanup(&res.headers);
    return res.status;
}

static void test_deployments__routes(void **state)
{
    static const struct {
        const char *method, *path, *body;
        int status;
        const char *want;   /* substring of the answer */
    } cases[] = {
        { "GET", "/api/v1/deployments", NULL, 200,
          "{\"status\":\"success\",\"data\":[{\"name\":\"a b+c\"" },
        { "GET", "/api/v1/deployments/", NULL, 200, "\"name\":\"checkout\",\"phase\":\"canary\"" },
        { "POST", "/api/v1/deployments", NULL, 405, "method not allowed" },
        { "GET", "/api/v1/deployments/checkout", NULL, 200,
          "{\"status\":\"success\",\"data\":{\"name\":\"checkout\",\"phase\":\"canary\"" },
        { "GET", "/api/v1/deployments/a%20b+c", NULL, 200, "\"name\":\"a b+c\"" },
        { "GET", "/api/v1/deployments/nope", NULL, 404,
          "{\"status\":\"error\",\"errorType\":\"not_found\",\"error\":\"unknown deployment" },
        { "GET", "/api/v1/deployments/a/b", NULL, 404, "no such deployment path" },
        { "GET", "/api/v1/deployments/%zz", NULL, 404, "no such deployment path" },
        { "GET", "/api/v1/deployments/%2F", NULL, 404, "no such deployment path" },
        { "DELETE", "/api/v1/deployments/checkout", NULL, 405, "method not allowed" },
        { "GET", "/api/v1/deployments/checkout/phase", NULL, 405, "method not allowed" },
        { "POST", "/api/v1/deployments/nope/phase", "{\"phase\":\"full\"}", 404,
          "unknown deployment" },
        { "POST", "/api/v1/deployments/checkout/phase", NULL, 400,
          "expected a JSON body such as {\\\"phase\\\":" },
        { "POST", "/api/v1/deployments/checkout/phase", "{\"phase\":", 400,
          "invalid JSON body" },
        { "POST", "/api/v1/deployments/checkout/phase", "[\"full\"]", 400,
          "expected a JSON object" },
        { "POST", "/api/v1/deployments/checkout/phase", "{\"phase\":3}", 400,
          "\\\"phase\\\" must be a non-empty string" },
        { "POST", "/api/v1/deployments/checkout/phase", "{\"phase\":\"warp\"}", 400,
          "deployment \\\"checkout\\\" has no phase \\\"warp\\\"" },
        { "POST", "/api/v1/deployments/checkout/phase", "{\"phase\":\"other\"}", 400,
          "has no phase" },
        { "POST", "/api/v1/deployments/checkout/phase", "{\"phase\":\"full\"}", 200,
          "\"phase\":\"full\",\"phase_index\":1" },
        { "POST", "/api/v1/deployments/checkout/trigger", "{}", 400,
          "\\\"reason\\\" must be a non-empty string" },
        { "POST", "/api/v1/deployments/checkout/trigger", "{\"reason\":\"\"}", 400,
          "must be a non-empty string" },
        { "POST", "/api/v1/deployments/checkout/trigger",
          "{\"reason\":\"data corruption detected\"}", 200,
          "\"verdict\":\"rollback\"" },
        { "GET", "/api/v1/deployments/checkout", NULL, 200,
          "\"human_trigger\":\"data corruption detected\"" },
        { "POST", "/api/v1/deployments/checkout/reset", NULL, 200,
          "\"phase\":\"canary\",\"phase_index\":0" },
        { "POST", "/api/v1/deployments/checkout/reset", "{}", 200, "\"verdict\":\"hold\"" },
        { "GET", "/api/v1/deploymentsx", NULL, 0, NULL },
        { "GET", "/api/v1/query", NULL, 0, NULL },
    };
    struct env *e = *state;
    struct rg_buf out = { 0 };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int handled = 0;
        int status = call(e, cases[i].method, cases[i].path, cases[i].body, &out, &handled);
        if (!cases[i].want) {
            if (handled)
                fail_msg("case %zu: %s should not be handled", i, cases[i].path);
            continue;
        }
        if (!handled || status != cases[i].status || !out.data ||
            !strstr(out.data, cases[i].want))
            fail_msg("case %zu: %s %s -> %d %s (want %d with %s)", i, cases[i].method,
                     cases[i].path, status, out.data ? out.data : "", cases[i].status,
                     cases[i].want);
    }
    rg_buf_cleanup(&out);
}

static void test_deployments__long_bodies(void **state)
{
    struct env *e = *state;
    struct rg_buf body = { 0 }, out = { 0 };
    int handled;

    rg_buf_puts(&body, "{\"reason\":\"");
    for (int i = 0; i < 300; i++)
        rg_buf_putc(&body, 'x');
    rg_buf_puts(&body, "\"}");
    assert_int_equal(call(e, "POST", "/api/v1/deployments/checkout/trigger", body.data, &out,
                          &handled), 400);
    assert_non_null(strstr(out.data, "longer than 255 bytes"));
    rg_buf_reset(&body);
    for (int i = 0; i < 70000; i++)
        rg_buf_putc(&body, ' ');
    assert_int_equal(call(e, "POST", "/api/v1/deployments/checkout/trigger", body.data, &out,
                          &handled), 400);
    assert_non_null(strstr(out.data, "larger than 65536 bytes"));
    assert_int_equal(rg_deploy_verdict(e->deploy, "checkout")->verdict, RG_VERDICT_HOLD);
    rg_buf_cleanup(&body);
    rg_buf_cleanup(&out);
}

static void test_deployments__without_manager(void **state)
{
    struct env *e = *state;
    struct rg_buf out = { 0 };
    int handled;

    e->api.deploy = NULL;
    assert_int_equal(call(e, "GET", "/api/v1/deployments", NULL, &out, &handled), 200);
    assert_string_equal(out.data, "{\"status\":\"success\",\"data\":[]}");
    assert_int_equal(call(e, "GET", "/api/v1/deployments/checkout", NULL, &out, &handled), 404);
    assert_int_equal(call(e, "POST", "/api/v1/deployments/checkout/reset", NULL, &out,
                          &handled), 404);
    e->api.deploy = e->deploy;
    rg_buf_cleanup(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_deployments__routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deployments__long_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deployments__without_manager, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
