/* tests/notify/test_curl_uv.c - the libcurl-on-libuv client against a real local receiver.
 *
 * Each case runs one libuv loop holding both the client and the receiver
 * (tests/notify/receiver.h, built on src/http/server.h), records every callback, closes
 * everything and requires uv_loop_close() == 0, so a handle left open fails the case.
 * A guard timer ends a case that would otherwise hang.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/curl_uv.h"
#include "util/err.h"
#include "util/time.h"

#include "receiver.h"

#define MAX_RES 16

struct res_copy {
    int err;
    int status;
    char body[512];
    size_t body_bytes;
    char retry_after[64];
    int has_retry_after;
    char content_type[64];
    double total_s;
    long new_connections;
    char error[256];
};

struct ctx;
typedef void (*step_fn)(struct ctx *c);

struct ctx {
    uv_loop_t loop;
    struct receiver rv;
    struct rg_curl_uv *cu;
    uv_timer_t guard;
    uv_timer_t later;                  /* a delayed action of the case */
    int later_inited;
    int expected, ndone;
    struct res_copy res[MAX_RES];
    int cu_closed;
    int torn_down;
    int guard_fired;
    step_fn after_done;                /* run after each completion */
    step_fn later_fn;
    struct rg_curl_uv_req *handles[MAX_RES];
    /* streaming */
    struct rg_buf streamed;
    int stream_abort_at;
};

static void on_cu_closed(void *ud)
{
    struct ctx *c = ud;
    c->cu_closed++;
}

static void teardown_case(struct ctx *c)
{
    if (c->torn_down)
        return;
    c->torn_down = 1;
    uv_close((uv_handle_t *)&c->guard, NULL);
    if (c->later_inited)
        uv_close((uv_handle_t *)&c->later, NULL);
    rg_curl_uv_close(c->cu, on_cu_closed, c);
    rcv_cleanup(&c->rv);
}

static void on_guard(uv_timer_t *t)
{
    struct ctx *c = t->data;
    c->guard_fired = 1;
    teardown_case(c);
}

static void on_done(const struct rg_http_result *r, void *ud)
{
    struct ctx *c = ud;
    struct res_copy *rc = c->ndone < MAX_RES ? &c->res[c->ndone] : NULL;

    if (rc) {
        rc->err = r->err;
        rc->status = r->status;
        snprintf(rc->body, sizeof(rc->body), "%.*s", (int)r->body->len,
                 r->body->data ? r->body->data : "");
        rc->body_bytes = r->body_bytes;
        rc->has_retry_after = r->retry_after != NULL;
        snprintf(rc->retry_after, sizeof(rc->retry_after), "%s",
                 r->retry_after ? r->retry_after : "");
        snprintf(rc->content_type, sizeof(rc->content_type), "%s",
                 r->content_type ? r->content_type : "");
        rc->total_s = r->total_s;
        rc->new_connections = r->new_connections;
        snprintf(rc->error, sizeof(rc->error), "%s", r->error ? r->error : "(null)");
    }
    c->ndone++;
    if (c->after_done && !c->torn_down)
        c->after_done(c);
    if (c->ndone >= c->expected)
        teardown_case(c);
}

static void case_begin(struct ctx *c, int expected)
{
    memset(c, 0, sizeof(*c));
    assert_int_equal(uv_loop_init(&c->loop), 0);
    assert_int_equal(rcv_start(&c->rv, &c->loop), 0);
    assert_int_equal(rg_curl_uv_new(&c->loop, &c->cu), 0);
    uv_timer_init(&c->loop, &c->guard);
    c->guard.data = c;
    uv_timer_start(&c->guard, on_guard, 8000, 0);
    c->expected = expected;
}

static void case_end(struct ctx *c)
{
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_int_equal(c->cu_closed, 1);
    assert_int_equal(c->rv.stops, 1);
    assert_int_equal(uv_loop_close(&c->loop), 0);
    assert_false(c->guard_fired);
    rcv_free(&c->rv);
}

static void url_of(struct ctx *c, char *out, size_t cap, const char *path)
{
    snprintf(out, cap, "http://127.0.0.1:%d%s", c->rv.port, path);
}

static void start(struct ctx *c, struct rg_http_call *call, const char *path)
{
    char url[256];
    url_of(c, url, sizeof(url), path);
    call->url = url;
    assert_int_equal(rg_curl_uv_request(c->cu, call, on_done, c, NULL), 0);
}

static void test_curl_uv__get_post_auth_headers(void **state)
{
    struct ctx *c = malloc(sizeof(*c));
    const char *hdrs[] = { "X-Custom: forty two" };
    struct rg_http_call get = { .method = "GET" };
    struct rg_http_call post = { .content_type = "application/json", .body = "{\"a\":1}",
                                 .body_len = 7, .headers = hdrs, .nheaders = 1,
                                 .basic_user = "user", .basic_password = "pass" };
    struct rg_http_call bearer = { .method = "PUT", .bearer_token = "tok3n" };
    struct rg_buf moved = { 0 };
    struct rg_http_call move = { .body_move = &moved };
    (void)state;

    case_begin(c, 4);
    start(c, &get, "/ok?x=1");
    start(c, &post, "/ok");
    start(c, &bearer, "/ok");
    rg_buf_puts(&moved, "moved-body");
    start(c, &move, "/ok");
    assert_null(moved.data);                       /* taken over */
    case_end(c);

    for (int i = 0; i < 4; i++) {
        assert_int_equal(c->res[i].err, 0);
        assert_int_equal(c->res[i].status, 200);
        assert_string_equal(c->res[i].error, "");
    }
    /* Completion order may differ from start order: find each by content. */
    int seen = 0;
    for (int i = 0; i < 4; i++) {
        const char *b = c->res[i].body;
        if (!strcmp(b, "method=GET body= auth= ctype= custom="))
            seen |= 1;
        if (!strcmp(b, "method=POST body={\"a\":1} auth=Basic dXNlcjpwYXNz "
                       "ctype=application/json custom=forty two"))
            seen |= 2;
        if (!strcmp(b, "method=PUT body= auth=Bearer tok3n "
                       "ctype=application/x-www-form-urlencoded custom="))
            seen |= 4;
        if (!strncmp(b, "method=POST body=moved-body ", 28))
            seen |= 8;
    }
    if (seen != 15)
        fail_msg("seen %d: %s | %s | %s | %s", seen, c->res[0].body, c->res[1].body,
                 c->res[2].body, c->res[3].body);
    free(c);
}

static void reuse_next(struct ctx *c)
{
    struct rg_http_call call = { 0 };
    if (c->ndone < c->expected)
        start(c, &call, "/ok");
}

static void test_curl_uv__connection_reuse(void **state)
{
    struct ctx *c = malloc(sizeof(*c));
    struct rg_http_call call = { 0 };
    (void)state;

    case_begin(c, 6);
    c->after_done = reuse_next;
    start(c, &call, "/ok");
    case_end(c);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(c->res[i].status, 200);
        assert_int_equal(c->res[i].new_connections, i == 0 ? 1 : 0);
    }
    assert_int_equal(c->rv.last_stats.connections_accepted, 1);
    assert_int_equal(c->rv.last_stats.requests, 6);
    free(c);
}

static void test_curl_uv__timeout(void **state)
{
    struct ctx *c = malloc(sizeof(*c));
    struct rg_http_call call = { .timeout_ms = 200 };
    int64_t t0 = rg_mono_ms(), dt;
    (void)state;

    case_begin(c, 1);
    start(c, &call, "/slow?ms=3000");
    case_end(c);
    dt = rg_mono_ms() - t0;
    assert_int_equal(c->res[0].err, RG_ETIMEDOUT);
    assert_int_equal(c->res[0].status, 0);
    assert_true(c->res[0].total_s >= 0.19 && c->res[0].total_s < 1.0);
    assert_true(dt < 2000);
    assert_true(strlen(c->res[0].error) > 0);
    free(c);
}

static void test_curl_uv__connection_refused(void **state)
{
    struct ctx *c = malloc(sizeof(*c));
    struct rg_http_call call = { .url = "http://127.0.0.1:1/x" };
    (void)state;

    case_begin(c, 1);
    assert_int_equal(rg_curl_uv_request(c->cu, &call, on_done, c, NULL), 0);
    case_end(c);
    assert_int_equal(c->res[0].err, -ECONNREFUSED);
    assert_int_equal(c->res[0].status, 0);
    free(c);
}

static void test_curl_uv__response_bound(void **state)
{
    struct ctx *c = malloc(sizeof(*c));
    struct rg_http_call at = { .max_response_bytes = 300 };
    struct rg_http_call over = { .max_response_bytes = 300 };
    int ok = 0, big = 0;
    (void)state;

    case_begin(c, 2);
    start(c, &at, "/big?n=300");
    start(c, &over, "/big?n=301");
    case_end(c);
    for (int i = 0; i < 2; i++) {
        if (c->res[i].err == 0 && c->res[i].body_bytes == 300 && strlen(c->res[i].body) == 300)
            ok++;
        if (c->res[i].err == RG_ETOOBIG && c->res[i].body_bytes <= 300)
            big++;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(big, 1);
    free(c);
}

static int stream_cb(const char *p, size_t n, void *ud)
{
    struct ctx *c = ud;
    rg_buf_append(&c->streamed, p, n);
    if (c->stream_abort_at && c->streamed.len >= (size_t)c->stream_abort_at)
        return RG_EBADMSG;
    return 0;
}

static void test_curl_uv__streaming(void **state)
{
    struct ctx *c = malloc(sizeof(*c));
    struct rg_http_call call = { .on_data = stream_cb, .max_response_bytes = 1 << 20 };
    (void)state;

    case_begin(c, 1);
    start(c, &call, "/big?n=200000");
    case_end(c);
    assert_int_equal(c->res[0].err, 0);
    assert_int_equal(c->res[0].body_bytes, 200000);
    assert_int_equal(c->res[0].body[0], 0);        /* not collected */
    assert_int_equal(c->streamed.len, 200000);
    rg_buf_cleanup(&c->streamed);
    free(c);

    /* The callback aborts: its code is the result. */
    c = malloc(sizeof(*c));
    case_begin(c, 1);
    c->stream_abort_at = 1000;
    start(c, &call, "/big?n=200000");
    case_end(c);
    assert_int_equal(c->res[0].err, RG_EBADMSG);
    assert_true(c->streamed.len < 200000);
    rg_buf_cleanup(&c->streamed);
    free(c);
}

static void test_curl_uv__status_and_retry_after(void **state)
{
    struct ctx *c = malloc(sizeof(*c));
    struct rg_http_call call = { 0 };
    int n429 = 0, n500 = 0;
    (void)state;

    case_begin(c, 2);
    start(c, &call, "/status?code=429&ra=7");
    start(c, &call, "/status?code=500");
    case_end(c);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(c->res[i].err, 0);
        if (c->res[i].status == 429) {
            assert_true(c->res[i].has_retry_after);
            assert_string_equal(c->res[i].retry_after, "7");
            n429++;
        } else {
            assert_int_equal(c->res[i].status, 500);
            assert_false(c->res[i].has_retry_after);
            n500++;
        }
    }
    assert_int_equal(n429 + n500, 2);
    free(c);
}

static void close_now(uv_timer_t *t)
{
    struct ctx *c = t->data;
    teardown_case(c);
}

static void test_curl_uv__cancel_on_close(void **state)
{
    struct ctx *c = malloc(sizeof(*c));
    struct rg_http_call call = { 0 };
    int64_t t0 = rg_mono_ms();
    (void)state;

    case_begin(c, 100);                            /* never reached: the close ends it */
    for (int i = 0; i < 3; i++)
        start(c, &call, "/slow?ms=5000");
    assert_int_equal(rg_curl_uv_pending(c->cu), 3);
    uv_timer_init(&c->loop, &c->later);
    c->later_inited = 1;
    c->later.data = c;
    uv_timer_start(&c->later, close_now, 150, 0);
    case_end(c);
    assert_int_equal(c->ndone, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(c->res[i].err, RG_ECANCELED);
    assert_true(rg_mono_ms() - t0 < 3000);
    free(c);
}

static void test_curl_uv__cancel_one(void **state)
{
    struct ctx *c = malloc(sizeof(*c));
    struct rg_http_call call = { 0 };
    struct rg_curl_uv_req *h = NULL;
    char url[256];
    (void)state;

    case_begin(c, 2);
    url_of(c, url, sizeof(url), "/slow?ms=5000");
    call.url = url;
    assert_int_equal(rg_curl_uv_request(c->cu, &call, on_done, c, &h), 0);
    assert_non_null(h);
    start(c, &call, "/ok");
    rg_curl_uv_cancel(c->cu, h);                   /* its callback runs at once */
    assert_int_equal(c->ndone, 1);
    assert_int_equal(c->res[0].err, RG_ECANCELED);
    case_end(c);
    assert_int_equal(c->res[1].err, 0);
    assert_int_equal(c->res[1].status, 200);
    free(c);
}

static void test_curl_uv__bad_calls(void **state)
{
    struct ctx *c = malloc(sizeof(*c));
    const char *crlf[] = { "X-Evil: a\r\nX-Injected: b" };
    const char *noname[] = { ": value" };
    struct rg_http_call call = { 0 };
    char url[256];
    (void)state;

    case_begin(c, 2);
    url_of(c, url, sizeof(url), "/ok");
    assert_int_equal(rg_curl_uv_request(c->cu, &call, on_done, c, NULL), RG_EINVAL);
    call.url = url;
    call.headers = crlf;
    call.nheaders = 1;
    assert_int_equal(rg_curl_uv_request(c->cu, &call, on_done, c, NULL), RG_EINVAL);
    call.headers = noname;
    assert_int_equal(rg_curl_uv_request(c->cu, &call, on_done, c, NULL), RG_EINVAL);
    call.nheaders = 0;
    call.method = "BREW";
    assert_int_equal(rg_curl_uv_request(c->cu, &call, on_done, c, NULL), RG_EINVAL);
    call.method = NULL;
    call.content_type = "text/plain\r\nX-Injected: 1";
    assert_int_equal(rg_curl_uv_request(c->cu, &call, on_done, c, NULL), RG_EINVAL);
    call.content_type = NULL;
    /* Schemes other than http(s) fail in the callback, never read a file. */
    call.url = "file:///etc/passwd";
    assert_int_equal(rg_curl_uv_request(c->cu, &call, on_done, c, NULL), 0);
    call.url = "http://[::1";
    assert_int_equal(rg_curl_uv_request(c->cu, &call, on_done, c, NULL), 0);
    case_end(c);
    for (int i = 0; i < 2; i++)
        assert_true(c->res[i].err == RG_ENOTSUP || c->res[i].err == RG_EINVAL);
    assert_true(c->res[0].err != c->res[1].err);
    assert_int_equal(c->rv.last_stats.requests, 0);
    free(c);
}

/* libcurl's environment proxy handling stays enabled: with http_proxy pointing at the
 * receiver, a request for an unresolvable host reaches the receiver as a proxy request. */
static void test_curl_uv__proxy_from_environment(void **state)
{
    struct ctx *c = malloc(sizeof(*c));
    struct rg_http_call call = { .url = "http://notify.example.invalid/ok" };
    char proxy[64];
    (void)state;

    case_begin(c, 1);
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", c->rv.port);
    setenv("http_proxy", proxy, 1);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    assert_int_equal(rg_curl_uv_request(c->cu, &call, on_done, c, NULL), 0);
    case_end(c);
    unsetenv("http_proxy");
    assert_int_equal(c->res[0].err, 0);
    assert_true(c->res[0].status == 200 || c->res[0].status == 404);
    assert_int_equal(c->rv.last_stats.requests, 1);
    assert_int_equal(c->rv.nhits, 1);
    free(c);
}

struct closing_probe {
    struct rg_curl_uv *cu;
    int calls;
    int cb_err;
    int again_rc;
    int closed;
};

static void probe_done(const struct rg_http_result *r, void *ud)
{
    struct closing_probe *p = ud;
    struct rg_http_call call = { .url = "http://127.0.0.1:1/again" };

    p->calls++;
    p->cb_err = r->err;
    p->again_rc = rg_curl_uv_request(p->cu, &call, probe_done, p, NULL);
}

static void probe_closed(void *ud)
{
    struct closing_probe *p = ud;
    p->closed++;
}

static void test_curl_uv__refuse_while_closing(void **state)
{
    uv_loop_t loop;
    struct closing_probe p = { 0 };
    struct rg_http_call call = { .url = "http://127.0.0.1:1/" };
    (void)state;

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(rg_curl_uv_new(&loop, &p.cu), 0);
    assert_int_equal(rg_curl_uv_request(p.cu, &call, probe_done, &p, NULL), 0);
    rg_curl_uv_close(p.cu, probe_closed, &p);
    assert_int_equal(p.calls, 1);                  /* cancelled synchronously */
    assert_int_equal(p.cb_err, RG_ECANCELED);
    assert_int_equal(p.again_rc, RG_ECANCELED);    /* no new work while closing */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(p.closed, 1);
    assert_int_equal(p.calls, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    rg_curl_uv_close(NULL, NULL, NULL);
}

static void test_curl_uv__helpers(void **state)
{
    static const struct { const char *in, *want; } redact[] = {
        { "http://user:secret@host:9093/api/v2/alerts?token=abc#f",
          "http://host:9093/api/v2/alerts" },
        { "https://events.pagerduty.com/v2/enqueue", "https://events.pagerduty.com/v2/enqueue" },
        { "http://h/?q=up", "http://h/" },
        { "host:80/x", "host:80/x" },
    };
    struct rg_buf b = { 0 };
    char out[128];
    (void)state;

    assert_int_equal(rg_http_form_add(&b, "query", "sum(rate(x{a=\"b c\"}[5m]))"), 0);
    assert_int_equal(rg_http_form_add(&b, "time", "1700000000.5"), 0);
    assert_string_equal(b.data, "query=sum%28rate%28x%7Ba%3D%22b%20c%22%7D%5B5m%5D%29%29"
                                "&time=1700000000.5");
    rg_buf_cleanup(&b);
    for (size_t i = 0; i < sizeof(redact) / sizeof(redact[0]); i++)
        assert_string_equal(rg_http_redact_url(redact[i].in, out, sizeof(out)), redact[i].want);
    assert_string_equal(rg_http_redact_url("http://long/path", out, 8), "http://");
    assert_string_equal(rg_http_log_url("https://u:p@hooks.slack.com/services/T0/B0/XX", out,
                                        sizeof(out)), "https://hooks.slack.com/...");
    assert_string_equal(rg_http_log_url("http://h:9093/?q=1", out, sizeof(out)), "http://h:9093");
    assert_string_equal(rg_http_log_url("http://h", out, sizeof(out)), "http://h");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_curl_uv__get_post_auth_headers),
        cmocka_unit_test(test_curl_uv__connection_reuse),
        cmocka_unit_test(test_curl_uv__timeout),
        cmocka_unit_test(test_curl_uv__connection_refused),
        cmocka_unit_test(test_curl_uv__response_bound),
        cmocka_unit_test(test_curl_uv__streaming),
        cmocka_unit_test(test_curl_uv__status_and_retry_after),
        cmocka_unit_test(test_curl_uv__cancel_on_close),
        cmocka_unit_test(test_curl_uv__cancel_one),
        cmocka_unit_test(test_curl_uv__bad_calls),
        cmocka_unit_test(test_curl_uv__proxy_from_environment),
        cmocka_unit_test(test_curl_uv__refuse_while_closing),
        cmocka_unit_test(test_curl_uv__helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
