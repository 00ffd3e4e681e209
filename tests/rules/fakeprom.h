/* tests/rules/fakeprom.h - a scriptable Prometheus query API for the query-mode tests
 * of the rules and deployments managers.
 *
 * Runs src/http/server.h on 127.0.0.1 inside the test's own loop, next to the shared
 * curl transport and the query client, so that one thread drives everything and the
 * managers see real HTTP answers. POST /api/v1/query answers from a table the test
 * sets: an exact query text maps to a value (a one-series vector with the labels
 * {job="api"} at the request's time); any other query gets an empty vector. The
 * test can make every answer a given HTTP status with an HTML body (a broken
 * server) or late by some milliseconds (a slow one, for timeouts and overlapping
 * evaluations; late answers come from the receiver's timer pool of
 * tests/notify/receiver.h). Requests are counted and the last `time` field is kept.
 * Header-only, included by one test file each; every function is static inline so a
 * test that does not use one still compiles warning-free.
 */
#ifndef RG_TESTS_RULES_FAKEPROM_H
#define RG_TESTS_RULES_FAKEPROM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "http/query.h"
#include "http/server.h"
#include "notify/curl_uv.h"
#include "query/client.h"
#include "util/buf.h"
#include "util/metrics.h"
#include "util/time.h"

/* Overlapping evaluations against a slow server defer more answers than the notify
 * receiver does. */
#define RCV_MAX_PEND 32
#include "../notify/receiver.h"

#define FP_MAX_ANSWERS 16

struct fakeprom {
    uv_loop_t *loop;
    struct rg_http_server *srv;
    int port;
    int status;                        /* 0: answer from the table; else this status */
    int delay_ms;                      /* > 0: every answer this late */
    struct {
        char query[256];
        char value[32];
    } ans[FP_MAX_ANSWERS];
    size_t nans;
    int requests;
    char last_time[32];
    struct rcv_pool pool;              /* answers made late by delay_ms */
};

/* Sets the answer to @query: @value (e.g. "5", "NaN"), or NULL for an empty vector. */
static inline void fp_set(struct fakeprom *fp, const char *query, const char *value)
{
    size_t i;

    for (i = 0; i < fp->nans; i++)
        if (strcmp(fp->ans[i].query, query) == 0)
            break;
    if (!value) {
        if (i < fp->nans)
            fp->ans[i] = fp->ans[--fp->nans];
        return;
    }
    if (i == fp->nans) {
        if (fp->nans == FP_MAX_ANSWERS)
            return;
        fp->nans++;
    }
    snprintf(fp->ans[i].query, sizeof(fp->ans[i].query), "%s", query);
    snprintf(fp->ans[i].value, sizeof(fp->ans[i].value), "%s", value);
}

static inline void fp_form(const struct rg_http_request *req, const char *name, char *out,
                           size_t cap)
{
    struct rg_slice body = { req->body.data ? req->body.data : "", req->body.len };
    struct rg_buf b = { 0 };

    out[0] = 0;
    if (rg_http_query_get(body, name, 0, &b) == 0 && b.data)
        snprintf(out, cap, "%s", b.data);
    rg_buf_cleanup(&b);
}

static inline void fp_handler(struct rg_http_request *req, struct rg_http_response *res,
                              void *ud)
{
    struct fakeprom *fp = ud;
    char query[256], t[32];
    const char *value = NULL;

    fp->requests++;
    fp_form(req, "query", query, sizeof(query));
    fp_form(req, "time", t, sizeof(t));
    snprintf(fp->last_time, sizeof(fp->last_time), "%s", t);
    if (req->path.len != strlen("/api/v1/query") ||
        memcmp(req->path.ptr, "/api/v1/query", req->path.len) != 0) {
        res->status = 404;
        return;
    }
    if (fp->status) {
        res->status = fp->status;
        rg_http_response_header(res, "Content-Type", "text/html");
        rg_buf_puts(&res->body, "<html><body>Internal Server Error</body></html>");
    } else {
        for (size_t i = 0; i < fp->nans; i++)
            if (strcmp(fp->ans[i].query, query) == 0)
                value = fp->ans[i].value;
        rg_http_response_header(res, "Content-Type", "application/json");
        rg_buf_puts(&res->body, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                                "\"result\":[");
        if (value)
            rg_buf_printf(&res->body, "{\"metric\":{\"job\":\"api\"},\"value\":[%s,\"%s\"]}",
                          t, value);
        rg_buf_puts(&res->body, "]}}");
    }
    if (fp->delay_ms > 0)
        rcv_defer(&fp->pool, req, fp->delay_ms);
}

static inline int fp_start(struct fakeprom *fp, uv_loop_t *loop)
{
    struct rg_http_server_config cfg;
    int err;

    memset(fp, 0, sizeof(*fp));
    fp->loop = loop;
    fp->pool.loop = loop;
    rg_http_server_config_default(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    err = rg_http_server_start(loop, &cfg, NULL, fp_handler, fp, &fp->srv);
    if (err)
        return err;
    fp->port = rg_http_server_port(fp->srv);
    return 0;
}

/* Answers what is still deferred, releases the timers and stops the server; the
 * fake server's memory must stay valid until the loop has run once more. */
static inline void fp_stop(struct fakeprom *fp)
{
    rcv_pool_finish(&fp->pool);
    rcv_pool_close(&fp->pool);
    if (fp->srv)
        rg_http_server_stop(fp->srv, NULL, NULL);
    fp->srv = NULL;
}

/* A loop with the transport, a query client and the fake server, as main.c wires
 * them for the daemon. */
struct fp_env {
    uv_loop_t loop;
    struct rg_curl_uv *cu;
    struct rg_metrics *metrics;
    struct rg_query_client *client;
    struct fakeprom fp;
    uv_timer_t tick;
};

static inline void fp_on_tick(uv_timer_t *t)
{
    (void)t;
}

static inline int fp_env_init(struct fp_env *e)
{
    memset(e, 0, sizeof(*e));
    if (uv_loop_init(&e->loop) || rg_curl_uv_new(&e->loop, &e->cu) ||
        !(e->metrics = rg_metrics_new()) ||
        rg_query_client_new(&e->loop, e->cu, e->metrics, &e->client) ||
        fp_start(&e->fp, &e->loop))
        return -1;
    /* The tick keeps uv_run(UV_RUN_ONCE) from sleeping past a test's deadline. */
    uv_timer_init(&e->loop, &e->tick);
    uv_timer_start(&e->tick, fp_on_tick, 10, 10);
    return 0;
}

/* Runs the loop until *@flag is 0 (or @max_ms passed). Returns 0 when it is. */
static inline int fp_env_run_while(struct fp_env *e, const int *flag, int64_t max_ms)
{
    int64_t deadline = rg_mono_ms() + max_ms;

    while (*flag && rg_mono_ms() < deadline)
        uv_run(&e->loop, UV_RUN_ONCE);
    return *flag ? -1 : 0;
}

/* Runs the loop for @ms. */
static inline void fp_env_run_for(struct fp_env *e, int64_t ms)
{
    int64_t deadline = rg_mono_ms() + ms;

    while (rg_mono_ms() < deadline)
        uv_run(&e->loop, UV_RUN_ONCE);
}

/* 1 when the rendered metrics contain @line. */
static inline int fp_env_metric_has(struct fp_env *e, const char *line)
{
    struct rg_buf b = { 0 };
    int found;

    rg_metrics_render(e->metrics, &b);
    found = b.data && strstr(b.data, line) != NULL;
    if (!found)
        fprintf(stderr, "metrics lack %s in:\n%s", line, b.data ? b.data : "");
    rg_buf_cleanup(&b);
    return found;
}

/* Frees the client (cancelling what is still out), closes the transport and the
 * server and runs the loop dry. The managers must be freed before. */
static inline void fp_env_done(struct fp_env *e)
{
    rg_query_client_free(e->client);
    rg_curl_uv_close(e->cu, NULL, NULL);
    fp_stop(&e->fp);
    uv_close((uv_handle_t *)&e->tick, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    uv_loop_close(&e->loop);
    rg_metrics_free(e->metrics);
}

#endif
