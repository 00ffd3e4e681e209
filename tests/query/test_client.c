/* tests/query/test_client.c - the query-mode client against a local fake server.
 *
 * The `sources:` section is checked with a table of configurations and the exact
 * "file:line:col: message" each must produce. The client is driven on a real libuv
 * loop with the shared curl transport against a fake Prometheus API built on
 * src/http/server.h on 127.0.0.1: the URL path before /api/v1/ picks its behaviour
 * (answers, errors, delays), and every request is recorded so that the tests can
 * check what went over the wire (form fields, auth, extra headers), how many requests
 * were in flight at once, and in which order they arrived (header copies and late
 * answers use the notify tests' receiver helpers). An over-large response is
 * streamed by a raw libuv TCP writer that only produces bytes as fast as the client
 * reads them, so the test shows the transfer stops at the bound. The blocking
 * calls and the command line's runner run the fake server on a second thread, since
 * they block this one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "config/config.h"
#include "http/server.h"
#include "query/client.h"
#include "util/err.h"
#include "util/metrics.h"
#include "util/time.h"

#include "../notify/receiver.h"

#define DATA "tests/data/query/sources/"
#define T0 1700000000000LL               /* ms */
#define MAX_SEEN 64

/* ---- the fake server -------------------------------------------------------------------- */

struct seen {
    char path[48];
    char query[64];
    char time[32], start[32], end[32], step[32], timeout[32];
    char auth[96], org[64], accept[64], ctype[96];
};

struct fake {
    struct rg_http_server *srv;
    int port;
    int hold_ms;                       /* /hold: answer after this long */
    struct seen seen[MAX_SEEN];
    int nseen;
    struct rcv_pool pool;              /* /slow and /hold answers; max_cur is checked */
    int stopped;
};

static void form_get(const struct rg_http_request *req, const char *name, char *out, size_t cap)
{
    struct rg_slice body = { req->body.data ? req->body.data : "", req->body.len };
    struct rg_buf b = { 0 };

    out[0] = 0;
    if (rg_http_query_get(body, name, 0, &b) == 0 && b.data)
        snprintf(out, cap, "%s", b.data);
    rg_buf_cleanup(&b);
}

static int64_t secs_to_ms(const char *s)
{
    return (int64_t)llround(strtod(s, NULL) * 1000.0);
}

/* A matrix for [start, end] by step, values in seconds since T0: series a at every
 * step, b at even step numbers, c from T0 + 200 s on; c is written first so that the
 * merged order (first appearance) differs from the order within a late chunk. */
static void range_body(struct rg_buf *b, int64_t start, int64_t end, int64_t step)
{
    const char *names[3] = { "c", "a", "b" };

    rg_buf_puts(b, "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[");
    for (int s = 0, first = 1; s < 3; s++) {
        int any = 0;
        for (int64_t t = start; t <= end; t += step) {
            int64_t k = t / step;
            int has = s == 1 || (s == 2 && k % 2 == 0) || (s == 0 && t >= T0 + 200000);
            if (!has)
                continue;
            if (!any) {
                rg_buf_printf(b, "%s{\"metric\":{\"__name__\":\"m\",\"s\":\"%s\"},\"values\":[",
                              first ? "" : ",", names[s]);
                first = 0;
            }
            rg_buf_printf(b, "%s[%" PRId64 ".%03d,\"%" PRId64 "\"]", any ? "," : "",
                          t / 1000, (int)(t % 1000), (int64_t)((t - T0) / 1000));
            any = 1;
        }
        if (any)
            rg_buf_puts(b, "]}");
    }
    rg_buf_puts(b, "]},\"warnings\":[\"chunked\"]}");
}

static void handler(struct rg_http_request *req, struct rg_http_response *res, void *ud)
{
    static const char prefix[] = "/api/v1/";
    struct fake *fk = ud;
    struct seen *sn = fk->nseen < MAX_SEEN ? &fk->seen[fk->nseen++] : &fk->seen[MAX_SEEN - 1];
    const char *p = req->path.ptr, *api;
    size_t plen = req->path.len;
    int range;
    char mode[48];

    memset(sn, 0, sizeof(*sn));
    snprintf(sn->path, sizeof(sn->path), "%.*s", (int)plen, p);
    form_get(req, "query", sn->query, sizeof(sn->query));
    form_get(req, "time", sn->time, sizeof(sn->time));
    form_get(req, "start", sn->start, sizeof(sn->start));
    form_get(req, "end", sn->end, sizeof(sn->end));
    form_get(req, "step", sn->step, sizeof(sn->step));
    form_get(req, "timeout", sn->timeout, sizeof(sn->timeout));
    rcv_header_copy(req, "Authorization", sn->auth, sizeof(sn->auth));
    rcv_header_copy(req, "X-Scope-OrgID", sn->org, sizeof(sn->org));
    rcv_header_copy(req, "Accept", sn->accept, sizeof(sn->accept));
    rcv_header_copy(req, "Content-Type", sn->ctype, sizeof(sn->ctype));

    api = strstr(sn->path, prefix);
    if (!api || strcmp(req->method, "POST")) {
        res->status = 404;
        return;
    }
    snprintf(mode, sizeof(mode), "%.*s", (int)(api - sn->path), sn->path);
    range = !strcmp(api + sizeof(prefix) - 1, "query_range");
    rg_http_response_header(res, "Content-Type", "application/json");

    if (!strcmp(mode, "/ok") && range) {
        range_body(&res->body, secs_to_ms(sn->start), secs_to_ms(sn->end),
                   secs_to_ms(sn->step));
    } else if (!strcmp(mode, "/ok") && !strcmp(sn->query, "scalar(up)")) {
        rg_buf_printf(&res->body, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\","
                      "\"result\":[%s,\"1.5\"]}}", sn->time);
    } else if (!strcmp(mode, "/ok") && !strcmp(sn->query, "specials")) {
        rg_buf_printf(&res->body, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                      "\"result\":[{\"metric\":{\"v\":\"nan\"},\"value\":[%s,\"NaN\"]},"
                      "{\"metric\":{\"v\":\"pinf\"},\"value\":[%s,\"+Inf\"]},"
                      "{\"metric\":{\"v\":\"ninf\"},\"value\":[%s,\"-Inf\"]}]}}",
                      sn->time, sn->time, sn->time);
    } else if (!strcmp(mode, "/ok")) {
        rg_buf_printf(&res->body, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                      "\"result\":[{\"metric\":{\"__name__\":\"up\",\"job\":\"api\"},"
                      "\"value\":[%s,\"1\"]}]}}", sn->time);
    } else if (!strcmp(mode, "/slow")) {
        rg_buf_puts(&res->body, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                    "\"result\":[]}}");
        rcv_defer(&fk->pool, req, 3000);
    } else if (!strcmp(mode, "/hold")) {
        rg_buf_puts(&res->body, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                    "\"result\":[]}}");
        rcv_defer(&fk->pool, req, fk->hold_ms);
    } else if (!strcmp(mode, "/html500")) {
        res->status = 500;
        rg_http_response_header(res, "Content-Type", "text/html");
        rg_buf_puts(&res->body, "<html><body>Internal Server Error</body></html>");
    } else if (!strcmp(mode, "/timeout503")) {
        res->status = 503;
        rg_buf_puts(&res->body, "{\"status\":\"error\",\"errorType\":\"timeout\","
                    "\"error\":\"query timed out in expression evaluation\"}");
    } else if (!strcmp(mode, "/exec422")) {
        res->status = 422;
        rg_buf_puts(&res->body, "{\"status\":\"error\",\"errorType\":\"execution\","
                    "\"error\":\"vector cannot contain metrics with the same labelset\"}");
    } else if (!strcmp(mode, "/bad400")) {
        res->status = 400;
        rg_buf_puts(&res->body, "{\"status\":\"error\",\"errorType\":\"bad_data\","
                    "\"error\":\"1:5: parse error: unexpected end of input\"}");
    } else if (!strcmp(mode, "/truncated")) {
        rg_buf_puts(&res->body, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                    "\"result\":[{\"metric\":{\"a\":\"b\"},\"value\":[1700000000,\"1");
    } else if (!strcmp(mode, "/wrongtype")) {
        /* A vector where query_range must answer a matrix. */
        rg_buf_puts(&res->body, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                    "\"result\":[]}}");
    } else if (!strcmp(mode, "/unknowntype")) {
        rg_buf_puts(&res->body, "{\"status\":\"success\",\"data\":{\"resultType\":\"streams\","
                    "\"result\":[]}}");
    } else if (!strcmp(mode, "/chunkfail")) {
        /* The third chunk of the range test fails. */
        if (secs_to_ms(sn->start) == T0 + 200000) {
            res->status = 500;
            rg_buf_puts(&res->body, "<html>down</html>");
        } else {
            range_body(&res->body, secs_to_ms(sn->start), secs_to_ms(sn->end),
                       secs_to_ms(sn->step));
        }
    } else {
        res->status = 404;
    }
}

static int fake_start(struct fake *fk, uv_loop_t *loop)
{
    struct rg_http_server_config cfg;
    int err;

    memset(fk, 0, sizeof(*fk));
    fk->pool.loop = loop;
    fk->hold_ms = 100;
    rg_http_server_config_default(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    err = rg_http_server_start(loop, &cfg, NULL, handler, fk, &fk->srv);
    if (err)
        return err;
    fk->port = rg_http_server_port(fk->srv);
    return 0;
}

static void fake_stopped(void *ud)
{
    struct fake *fk = ud;
    fk->stopped = 1;
}

static void fake_stop(struct fake *fk)
{
    rcv_pool_finish(&fk->pool);
    rcv_pool_close(&fk->pool);
    if (fk->srv)
        rg_http_server_stop(fk->srv, fake_stopped, fk);
    fk->srv = NULL;
}

/* ---- the streaming writer: an endless JSON vector, as fast as it is read ---------------- */

struct streamer {
    uv_tcp_t listener;
    uv_tcp_t conn;
    int port;
    int connected, writing, done;
    uint64_t written;                  /* body bytes handed to the socket and written */
    uint64_t limit;                    /* stop after this many */
    unsigned next_series;
    char chunk[65536 + 64];
    uv_write_t wr;
    size_t len;                        /* bytes of the write in progress */
    char head[256];
};

static void st_write_next(struct streamer *s);

static void st_closed(uv_handle_t *h)
{
    (void)h;
}

static void st_finish(struct streamer *s)
{
    if (s->done)
        return;
    s->done = 1;
    if (!uv_is_closing((uv_handle_t *)&s->conn))
        uv_close((uv_handle_t *)&s->conn, st_closed);
}

static void st_written(uv_write_t *w, int status)
{
    struct streamer *s = w->data;

    s->writing = 0;
    if (status < 0) {
        st_finish(s);
        return;
    }
    s->written += s->len;
    st_write_next(s);
}

/* One HTTP chunk of vector elements with distinct labels. */
static void st_write_next(struct streamer *s)
{
    char body[65536];
    size_t n = 0, len;
    uv_buf_t buf;

    if (s->done)
        return;
    if (s->written >= s->limit) {
        st_finish(s);
        return;
    }
    if (s->next_series == 0)
        n += (size_t)snprintf(body, sizeof(body), "{\"status\":\"success\",\"data\":"
                              "{\"resultType\":\"vector\",\"result\":[");
    while (n + 80 < sizeof(body)) {
        n += (size_t)snprintf(body + n, sizeof(body) - n,
                              "%s{\"metric\":{\"i\":\"%u\"},\"value\":[1700000000,\"1\"]}",
                              s->next_series ? "," : "", s->next_series);
        s->next_series++;
    }
    len = (size_t)snprintf(s->chunk, sizeof(s->chunk), "%zx\r\n", n);
    memcpy(s->chunk + len, body, n);
    len += n;
    memcpy(s->chunk + len, "\r\n", 2);
    len += 2;
    s->len = len;
    buf = uv_buf_init(s->chunk, (unsigned)len);
    s->wr.data = s;
    s->writing = 1;
    if (uv_write(&s->wr, (uv_stream_t *)&s->conn, &buf, 1, st_written) != 0) {
        s->writing = 0;
        st_finish(s);
    }
}

static void st_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char scratch[4096];
    (void)h;
    (void)hint;
    buf->base = scratch;
    buf->len = sizeof(scratch);
}

static void st_head_written(uv_write_t *w, int status)
{
    struct streamer *s = w->data;

    s->writing = 0;
    if (status < 0)
        st_finish(s);
    else
        st_write_next(s);
}

static void st_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct streamer *s = h->data;

    (void)buf;
    if (nread < 0) {
        if (!s->writing)
            st_finish(s);
        return;
    }
    /* The request is small and arrives in one read; answer once. */
    if (nread > 0 && !s->writing && !s->written && !s->next_series && !s->done) {
        int n = snprintf(s->head, sizeof(s->head),
                         "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n");
        uv_buf_t hb = uv_buf_init(s->head, (unsigned)n);
        s->wr.data = s;
        s->writing = 1;
        if (uv_write(&s->wr, h, &hb, 1, st_head_written) != 0)
            st_finish(s);
    }
}

static void st_connection(uv_stream_t *l, int status)
{
    struct streamer *s = l->data;

    if (status < 0 || s->connected)
        return;
    uv_tcp_init(l->loop, &s->conn);
    s->conn.data = s;
    if (uv_accept(l, (uv_stream_t *)&s->conn) == 0) {
        s->connected = 1;
        uv_read_start((uv_stream_t *)&s->conn, st_alloc, st_read);
    } else {
        uv_close((uv_handle_t *)&s->conn, st_closed);
    }
}

static int st_start(struct streamer *s, uv_loop_t *loop, uint64_t limit)
{
    struct sockaddr_in addr;
    struct sockaddr_storage name;
    int len = sizeof(name);

    memset(s, 0, sizeof(*s));
    s->limit = limit;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    if (uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0) ||
        uv_listen((uv_stream_t *)&s->listener, 8, st_connection) ||
        uv_tcp_getsockname(&s->listener, (struct sockaddr *)&name, &len))
        return -1;
    s->port = ntohs(((struct sockaddr_in *)&name)->sin_port);
    return 0;
}

static void st_stop(struct streamer *s)
{
    if (s->connected)
        st_finish(s);
    uv_close((uv_handle_t *)&s->listener, st_closed);
}

/* ---- the test environment --------------------------------------------------------------- */

struct got {
    int n;
    int err;
    char msg[512];
    struct rg_query_result res;
    int order;                         /* completion number */
};

static int completions;

static void got_cb(void *ud, int err, const char *msg, struct rg_query_result *res)
{
    struct got *g = ud;

    g->n++;
    g->err = err;
    g->order = ++completions;
    snprintf(g->msg, sizeof(g->msg), "%s", msg);
    rg_query_result_free(&g->res);
    g->res = *res;
    memset(res, 0, sizeof(*res));
}

struct env {
    uv_loop_t loop;
    struct rg_curl_uv *cu;
    struct rg_metrics *m;
    struct rg_query_client *c;
    struct rg_query_sources *set;
    struct fake fk;
    uv_timer_t tick;
    char base[64];
};

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void env_init(struct env *e)
{
    memset(e, 0, sizeof(*e));
    assert_int_equal(uv_loop_init(&e->loop), 0);
    assert_int_equal(rg_curl_uv_new(&e->loop, &e->cu), 0);
    assert_non_null(e->m = rg_metrics_new());
    assert_int_equal(rg_query_client_new(&e->loop, e->cu, e->m, &e->c), 0);
    assert_int_equal(fake_start(&e->fk, &e->loop), 0);
    snprintf(e->base, sizeof(e->base), "http://127.0.0.1:%d", e->fk.port);
    assert_non_null(e->set = calloc(1, sizeof(*e->set)));
    /* The tick keeps uv_run(ONCE) from sleeping past a deadline. */
    uv_timer_init(&e->loop, &e->tick);
    uv_timer_start(&e->tick, on_tick, 20, 20);
}

/* A source for the fake server's @mode (e.g. "/ok"); owned by the env's set. */
static struct rg_query_source *env_source(struct env *e, const char *mode)
{
    char url[128];
    const struct rg_query_source *src;

    snprintf(url, sizeof(url), "%s%s", e->base, mode);
    assert_int_equal(rg_query_sources_add_url(e->set, url, &src), 0);
    return (struct rg_query_source *)src;
}

static void env_run_until(struct env *e, const int *count, int want, int64_t max_ms)
{
    int64_t deadline = rg_mono_ms() + max_ms;

    while (*count < want && rg_mono_ms() < deadline)
        uv_run(&e->loop, UV_RUN_ONCE);
}

static void env_done(struct env *e)
{
    rg_query_client_free(e->c);
    rg_curl_uv_close(e->cu, NULL, NULL);
    fake_stop(&e->fk);
    uv_close((uv_handle_t *)&e->tick, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    rg_metrics_free(e->m);
    rg_query_sources_free(e->set);
}

static int metric_has(struct env *e, const char *line)
{
    struct rg_buf b = { 0 };
    int found;

    assert_int_equal(rg_metrics_render(e->m, &b), 0);
    found = b.data && strstr(b.data, line) != NULL;
    if (!found)
        fprintf(stderr, "metrics lack %s in:\n%s", line, b.data ? b.data : "");
    rg_buf_cleanup(&b);
    return found;
}

static int metric_has_quiet(struct env *e, const char *line)
{
    struct rg_buf b = { 0 };
    int found;

    assert_int_equal(rg_metrics_render(e->m, &b), 0);
    found = b.data && strstr(b.data, line) != NULL;
    rg_buf_cleanup(&b);
    return found;
}

static void dump_eq(const struct rg_query_result *res, const char *want)
{
    struct rg_buf b = { 0 };

    assert_int_equal(rg_query_result_dump(res, &b), 0);
    if (strcmp(b.data ? b.data : "", want))
        fprintf(stderr, "got:\n%s\nwant:\n%s\n", b.data ? b.data : "", want);
    assert_string_equal(b.data ? b.data : "", want);
    rg_buf_cleanup(&b);
}

/* ---- sources ---------------------------------------------------------------------------- */

static void test_sources__parse_file(void **state)
{
    struct rg_config cfg;
    struct rg_buf err = { 0 };
    struct rg_query_sources *s = NULL;
    const struct rg_query_source *p, *m, *adhoc, *again;
    (void)state;

    rg_config_default(&cfg);
    assert_int_equal(rg_config_load_file(DATA "sources.yml", &cfg, &err), 0);
    assert_int_equal(rg_query_sources_parse(&cfg, &s, &err), 0);
    assert_int_equal(err.len, 0);
    assert_int_equal(s->n, 2);

    p = rg_query_sources_find(s, "prometheus");
    assert_non_null(p);
    assert_string_equal(p->url, "http://prometheus.example:9090");
    assert_string_equal(p->basic_user, "rollgate");
    assert_string_equal(p->basic_password, "s3cret");
    assert_null(p->bearer_token);
    assert_string_equal(p->tls.ca_file, DATA "password");
    assert_string_equal(p->tls.server_name, "prom.internal");
    assert_int_equal(p->tls.insecure_skip_verify, 0);
    assert_int_equal(p->nheaders, 2);
    assert_string_equal(p->headers[0], "X-Scope-OrgID: tenant-1");
    assert_string_equal(p->headers[1], "X-Extra: a b");
    assert_int_equal(p->timeout_ms, 15000);
    assert_int_equal(p->query_offset_ms, 60000);
    assert_int_equal(p->max_concurrency, 2);
    assert_int_equal(p->max_response_bytes, 8u << 20);
    assert_int_equal(p->max_points, 5000);

    m = rg_query_sources_find(s, "mimir");
    assert_non_null(m);
    assert_string_equal(m->url, "https://mimir.example/prometheus");
    assert_string_equal(m->bearer_token, "tok-123");
    assert_null(m->basic_user);
    assert_int_equal(m->timeout_ms, 30000);
    assert_int_equal(m->query_offset_ms, 0);
    assert_int_equal(m->max_concurrency, 4);
    assert_int_equal(m->max_response_bytes, 64u << 20);
    assert_int_equal(m->max_points, 11000);
    assert_null(rg_query_sources_find(s, "nope"));

    /* Ad-hoc URLs: defaults, the URL as name, the same URL twice is one source, and the
     * parsed sources do not move. */
    assert_int_equal(rg_query_sources_add_url(s, "http://127.0.0.1:9090/", &adhoc), 0);
    assert_string_equal(adhoc->name, "http://127.0.0.1:9090/");
    assert_string_equal(adhoc->url, "http://127.0.0.1:9090");
    assert_int_equal(adhoc->max_points, 11000);
    assert_int_equal(rg_query_sources_add_url(s, "http://127.0.0.1:9090/", &again), 0);
    assert_ptr_equal(adhoc, again);
    assert_ptr_equal(p, rg_query_sources_find(s, "prometheus"));
    assert_int_equal(s->n, 3);
    /* User info in an ad-hoc URL is sent (libcurl reads it) but kept out of the name,
     * which labels metrics. */
    assert_int_equal(rg_query_sources_add_url(s, "http://u:pw@10.0.0.1:9090/prom", &again), 0);
    assert_string_equal(again->name, "http://10.0.0.1:9090/prom");
    assert_string_equal(again->url, "http://u:pw@10.0.0.1:9090/prom");
    assert_int_equal(rg_query_sources_add_url(s, "ftp://x", &again), RG_EINVAL);
    assert_int_equal(rg_query_sources_add_url(s, "http://x/?q=1", &again), RG_EINVAL);

    rg_query_sources_free(s);
    rg_query_sources_free(NULL);
    rg_buf_cleanup(&err);
    rg_config_cleanup(&cfg);
}

static void test_sources__no_section(void **state)
{
    static const char text[] = "server:\n  listen: \"127.0.0.1:9201\"\n";
    struct rg_config cfg;
    struct rg_buf err = { 0 };
    struct rg_query_sources *s = NULL;
    (void)state;

    rg_config_default(&cfg);
    assert_int_equal(rg_config_load_text(DATA "t.yml", text, strlen(text), &cfg, &err), 0);
    assert_int_equal(rg_query_sources_parse(&cfg, &s, &err), 0);
    assert_int_equal(s->n, 0);
    rg_query_sources_free(s);
    rg_config_cleanup(&cfg);
    rg_buf_cleanup(&err);
}

static void test_sources__errors(void **state)
{
    static const struct {
        const char *yaml;
        const char *want;
    } cases[] = {
        { "sources: {}\n",
          DATA "t.yml:1:10: sources: expected a list of sources\n" },
        { "sources:\n  - name: a\n",
          DATA "t.yml:2:5: sources: url is required\n" },
        { "sources:\n  - url: http://x\n",
          DATA "t.yml:2:5: sources: name is required\n" },
        { "sources:\n  - name: a\n    url: ftp://x\n",
          DATA "t.yml:3:10: url: expected an http:// or https:// URL without query, "
               "got \"ftp://x\"\n" },
        { "sources:\n  - name: a\n    url: http://x\n    bogus: 1\n",
          DATA "t.yml:4:5: sources: unknown key \"bogus\"\n" },
        { "sources:\n  - name: a b\n    url: http://x\n",
          DATA "t.yml:2:11: name: \"a b\" must be 1 to 128 letters, digits or -_.\n" },
        { "sources:\n  - name: a\n    url: http://x\n  - name: a\n    url: http://y\n",
          DATA "t.yml:4:11: name: source \"a\" is already defined at " DATA "t.yml:2:5\n" },
        { "sources:\n  - name: a\n    url: http://x\n"
          "    basic_auth: {username: u, password_file: missing}\n",
          DATA "t.yml:4:46: basic_auth.password_file: cannot read \"" DATA
               "missing\": No such file or directory\n" },
        { "sources:\n  - name: a\n    url: http://x\n"
          "    basic_auth: {username: u, password_file: empty}\n",
          DATA "t.yml:4:46: basic_auth.password_file: \"" DATA "empty\" is empty\n" },
        { "sources:\n  - name: a\n    url: http://x\n    basic_auth: {username: u}\n",
          DATA "t.yml:4:17: basic_auth: password_file is required\n" },
        { "sources:\n  - name: a\n    url: http://x\n    basic_auth: {username: u, "
          "password: p, password_file: password}\n",
          DATA "t.yml:4:31: basic_auth.password: secrets are read from files; "
               "use password_file\n" },
        { "sources:\n  - name: a\n    url: http://x\n    bearer_token_file: nope\n",
          DATA "t.yml:4:24: bearer_token_file: cannot read \"" DATA
               "nope\": No such file or directory\n" },
        { "sources:\n  - name: a\n    url: http://x\n"
          "    basic_auth: {username: u, password_file: password}\n"
          "    bearer_token_file: token\n",
          DATA "t.yml:5:24: bearer_token_file: give either basic_auth or "
               "bearer_token_file\n" },
        { "sources:\n  - name: a\n    url: http://x\n    tls: {cert_file: password}\n",
          DATA "t.yml:4:10: tls: cert_file and key_file must be given together\n" },
        { "sources:\n  - name: a\n    url: http://x\n    tls: {insecure_skip_verify: yes}\n",
          DATA "t.yml:4:33: tls.insecure_skip_verify: expected true or false\n" },
        { "sources:\n  - name: a\n    url: http://x\n    headers: {Accept: text/plain}\n",
          DATA "t.yml:4:15: headers: \"Accept\" is set by rollgate itself\n" },
        { "sources:\n  - name: a\n    url: http://x\n    headers: {\"X Bad\": 1}\n",
          DATA "t.yml:4:15: headers: invalid header name \"X Bad\"\n" },
        { "sources:\n  - name: a\n    url: http://x\n    timeout: soon\n",
          DATA "t.yml:4:14: timeout: invalid duration \"soon\"\n" },
        { "sources:\n  - name: a\n    url: http://x\n    query_offset: -1m\n",
          DATA "t.yml:4:19: query_offset: invalid duration \"-1m\"\n" },
        { "sources:\n  - name: a\n    url: http://x\n    max_concurrency: 0\n",
          DATA "t.yml:4:22: max_concurrency: expected an integer from 1 to 1024\n" },
        { "sources:\n  - name: a\n    url: http://x\n    max_response_bytes: lots\n",
          DATA "t.yml:4:25: max_response_bytes: invalid size \"lots\" (e.g. 64MiB)\n" },
        { "sources:\n  - name: a\n    url: http://x\n    max_response_bytes: 10\n",
          DATA "t.yml:4:25: max_response_bytes: must be at least 1KiB\n" },
        { "sources:\n  - name: a\n    url: http://x\n    max_points: 1.5\n",
          DATA "t.yml:4:17: max_points: expected an integer from 1 to 100000000\n" },
        /* Every problem of a document is reported, in order. */
        { "sources:\n  - name: a\n    url: nope\n    timeout: 0s\n  - 7\n",
          DATA "t.yml:3:10: url: expected an http:// or https:// URL without query, "
               "got \"nope\"\n"
          DATA "t.yml:4:14: timeout: must be at least 1ms\n"
          DATA "t.yml:5:5: sources: expected a map for each source\n" },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_config cfg;
        struct rg_buf err = { 0 };
        struct rg_query_sources *s = (void *)1;
        int rc;

        rg_config_default(&cfg);
        rc = rg_config_load_text(DATA "t.yml", cases[i].yaml, strlen(cases[i].yaml), &cfg,
                                 &err);
        assert_int_equal(rc, 0);
        rc = rg_query_sources_parse(&cfg, &s, &err);
        if (strcmp(err.data ? err.data : "", cases[i].want))
            fprintf(stderr, "case %zu: got\n%swant\n%s", i, err.data ? err.data : "",
                    cases[i].want);
        assert_int_equal(rc, RG_EINVAL);
        assert_null(s);
        assert_string_equal(err.data ? err.data : "", cases[i].want);
        rg_buf_cleanup(&err);
        rg_config_cleanup(&cfg);
    }
}

/* ---- instant queries -------------------------------------------------------------------- */

static void test_instant__result_types(void **state)
{
    static const struct {
        const char *expr;
        const char *dump;
    } cases[] = {
        { "up", "type vector\nseries {__name__=\"up\", job=\"api\"}\n  1700000000123 1\n" },
        { "scalar(up)", "type scalar\nscalar 1700000000123 1.5\n" },
        { "specials", "type vector\nseries {v=\"nan\"}\n  1700000000123 NaN\n"
                      "series {v=\"pinf\"}\n  1700000000123 +Inf\n"
                      "series {v=\"ninf\"}\n  1700000000123 -Inf\n" },
    };
    struct env e;
    (void)state;

    env_init(&e);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct got g = { 0 };
        assert_int_equal(rg_query_instant(e.c, env_source(&e, "/ok"), cases[i].expr,
                                          T0 + 123, got_cb, &g), 0);
        assert_int_equal(g.n, 0);            /* never called back from inside the call */
        env_run_until(&e, &g.n, 1, 5000);
        assert_int_equal(g.n, 1);
        assert_int_equal(g.err, 0);
        assert_string_equal(g.msg, "");
        dump_eq(&g.res, cases[i].dump);
        rg_query_result_free(&g.res);
    }
    assert_int_equal(e.fk.nseen, 3);
    assert_string_equal(e.fk.seen[0].path, "/ok/api/v1/query");
    assert_string_equal(e.fk.seen[0].query, "up");
    assert_string_equal(e.fk.seen[0].time, "1700000000.123");
    assert_string_equal(e.fk.seen[0].timeout, "30");
    {
        char line[160];
        snprintf(line, sizeof(line), "rollgate_queries_total{source=\"%s/ok\"} 3\n", e.base);
        assert_true(metric_has(&e, line));
        snprintf(line, sizeof(line), "rollgate_query_duration_seconds_count{source=\"%s/ok\"} 3\n",
                 e.base);
        assert_true(metric_has(&e, line));
        assert_false(metric_has_quiet(&e, "rollgate_query_errors_total{"));
    }
    env_done(&e);
}

static void test_instant__headers_auth_offset(void **state)
{
    struct env e;
    struct rg_query_source *basic, *bearer;
    struct got g1 = { 0 }, g2 = { 0 };
    (void)state;

    env_init(&e);
    basic = env_source(&e, "/ok");
    basic->basic_user = strdup("rollgate");
    basic->basic_password = strdup("s3cret");
    basic->headers = calloc(1, sizeof(char *));
    basic->headers[0] = strdup("X-Scope-OrgID: tenant-1");
    basic->nheaders = 1;
    basic->query_offset_ms = 60000;
    basic->timeout_ms = 2500;
    bearer = env_source(&e, "/ok/");       /* a second source: trailing slash */
    bearer->bearer_token = strdup("tok-123");

    assert_int_equal(rg_query_instant(e.c, basic, "up", T0 + 7, got_cb, &g1), 0);
    assert_int_equal(rg_query_instant(e.c, bearer, "up", T0, got_cb, &g2), 0);
    env_run_until(&e, &completions, completions + 2, 5000);
    assert_int_equal(g1.err, 0);
    assert_int_equal(g2.err, 0);
    assert_int_equal(e.fk.nseen, 2);
    for (int i = 0; i < 2; i++) {
        const struct seen *sn = &e.fk.seen[i];
        assert_string_equal(sn->path, "/ok/api/v1/query");
        assert_string_equal(sn->accept, "application/json");
        assert_string_equal(sn->ctype, "application/x-www-form-urlencoded");
        if (!strcmp(sn->auth, "Bearer tok-123")) {
            assert_string_equal(sn->time, "1700000000.000");
            assert_string_equal(sn->org, "");
        } else {
            /* base64("rollgate:s3cret") */
            assert_string_equal(sn->auth, "Basic cm9sbGdhdGU6czNjcmV0");
            assert_string_equal(sn->org, "tenant-1");
            /* query_offset is subtracted from the evaluation time. */
            assert_string_equal(sn->time, "1699999940.007");
            assert_string_equal(sn->timeout, "2.5");
        }
    }
    /* The result carries the server's time, i.e. the offset one. */
    assert_int_equal(g1.res.series[0].points[0].t, T0 + 7 - 60000);
    rg_query_result_free(&g1.res);
    rg_query_result_free(&g2.res);
    env_done(&e);
}

/* ---- range queries ---------------------------------------------------------------------- */

/* One point line as rg_query_result_dump() writes it (shortest round-trip %g). */
static void point_line(struct rg_buf *b, int k)
{
    char v[40];
    double x = k * 10.0;

    for (int prec = 1; prec <= 17; prec++) {
        snprintf(v, sizeof(v), "%.*g", prec, x);
        if (strtod(v, NULL) == x)
            break;
    }
    rg_buf_printf(b, "  %lld %s\n", T0 + k * 10000LL, v);
}

/* The dump the fake server's matrix gives for points 0..n-1 from T0 by 10 s. */
static void expected_matrix(struct rg_buf *b, int n)
{
    rg_buf_puts(b, "type matrix\nseries {__name__=\"m\", s=\"a\"}\n");
    for (int k = 0; k < n; k++)
        point_line(b, k);
    rg_buf_puts(b, "series {__name__=\"m\", s=\"b\"}\n");
    for (int k = 0; k < n; k++)
        if (((T0 + k * 10000LL) / 10000) % 2 == 0)
            point_line(b, k);
    rg_buf_puts(b, "series {__name__=\"m\", s=\"c\"}\n");
    for (int k = 20; k < n; k++)
        point_line(b, k);
    rg_buf_puts(b, "warning \"chunked\"\n");
}

static void test_range__chunked_and_merged(void **state)
{
    static const struct {
        int64_t max_points;
        int64_t end_extra;             /* ms past the last step (not a point) */
        int requests;
    } cases[] = {
        { 10, 0, 4 },                  /* 35 points: 10 + 10 + 10 + 5 */
        { 10, 9999, 4 },
        { 35, 0, 1 },
        { 34, 0, 2 },
        { 1, 0, 35 },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct env e;
        struct rg_query_source *src;
        struct got g = { 0 };
        struct rg_buf want = { 0 };
        int64_t end = T0 + 34 * 10000 + cases[i].end_extra;

        env_init(&e);
        src = env_source(&e, "/ok");
        src->max_points = cases[i].max_points;
        src->max_concurrency = 2;
        assert_int_equal(rg_query_range(e.c, src, "m", T0, end, 10000, got_cb, &g), 0);
        env_run_until(&e, &g.n, 1, 5000);
        assert_int_equal(g.n, 1);
        assert_int_equal(g.err, 0);
        expected_matrix(&want, 35);
        dump_eq(&g.res, want.data);
        rg_buf_cleanup(&want);
        assert_int_equal(e.fk.nseen, cases[i].requests);
        /* Chunks start on the step grid, end on it (the last one at the caller's end
         * when there is one request), and arrive in order with two in flight. */
        for (int r = 0; r < e.fk.nseen; r++) {
            char s[32], en[32];
            int64_t first = r * cases[i].max_points;
            int64_t last = first + cases[i].max_points - 1 < 34 ? first + cases[i].max_points - 1
                                                               : 34;
            int found = 0;
            snprintf(s, sizeof(s), "%lld.000", (long long)((T0 + first * 10000) / 1000));
            if (cases[i].requests == 1)
                snprintf(en, sizeof(en), "%lld.%03lld", (long long)(end / 1000),
                         (long long)(end % 1000));
            else
                snprintf(en, sizeof(en), "%lld.000", (long long)((T0 + last * 10000) / 1000));
            for (int k = 0; k < e.fk.nseen; k++)
                if (!strcmp(e.fk.seen[k].start, s) && !strcmp(e.fk.seen[k].end, en))
                    found++;
            assert_int_equal(found, 1);
            assert_string_equal(e.fk.seen[r].path, "/ok/api/v1/query_range");
            assert_string_equal(e.fk.seen[r].step, "10");
            assert_string_equal(e.fk.seen[r].query, "m");
        }
        rg_query_result_free(&g.res);
        env_done(&e);
    }
}

static void test_range__chunk_error_fails_call(void **state)
{
    static const struct {
        int concurrency;
        int min_seen, max_seen;        /* requests the server sees */
    } cases[] = {
        { 1, 3, 3 },                   /* sequential: the fourth chunk is never sent */
        { 4, 3, 4 },                   /* parallel: the others are cancelled or ignored */
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct env e;
        struct rg_query_source *src;
        struct got g = { 0 };
        char line[200];

        env_init(&e);
        src = env_source(&e, "/chunkfail");
        src->max_points = 10;
        src->max_concurrency = cases[i].concurrency;
        assert_int_equal(rg_query_range(e.c, src, "m", T0, T0 + 340000, 10000, got_cb, &g),
                         0);
        env_run_until(&e, &g.n, 1, 5000);
        assert_int_equal(g.n, 1);
        assert_int_equal(g.err, RG_EIO);
        assert_string_equal(g.msg, "chunk 3 of 4: server answered HTTP 500 without a "
                                   "Prometheus error body");
        assert_int_equal(g.res.nseries, 0);
        /* Settle: nothing else calls back, whatever the server still answers. */
        for (int k = 0; k < 10; k++)
            uv_run(&e.loop, UV_RUN_NOWAIT);
        assert_int_equal(g.n, 1);
        assert_true(e.fk.nseen >= cases[i].min_seen && e.fk.nseen <= cases[i].max_seen);
        snprintf(line, sizeof(line), "rollgate_queries_total{source=\"%s/chunkfail\"} 1\n",
                 e.base);
        assert_true(metric_has(&e, line));
        snprintf(line, sizeof(line),
                 "rollgate_query_errors_total{source=\"%s/chunkfail\",reason=\"http\"} 1\n",
                 e.base);
        assert_true(metric_has(&e, line));
        env_done(&e);
    }
}

static void test_range__bad_arguments(void **state)
{
    struct env e;
    struct rg_query_source *src;
    struct got g = { 0 };
    (void)state;

    env_init(&e);
    src = env_source(&e, "/ok");
    assert_int_equal(rg_query_range(e.c, src, "m", T0, T0 + 1000, 0, got_cb, &g), RG_EINVAL);
    assert_int_equal(rg_query_range(e.c, src, "m", T0, T0 - 1, 1000, got_cb, &g), RG_EINVAL);
    assert_int_equal(rg_query_range(e.c, src, "m", INT64_MIN, INT64_MAX, 1, got_cb, &g),
                     RG_EINVAL);
    assert_int_equal(rg_query_range(e.c, src, NULL, T0, T0, 1000, got_cb, &g), RG_EINVAL);
    assert_int_equal(rg_query_instant(e.c, NULL, "up", T0, got_cb, &g), RG_EINVAL);
    assert_int_equal(rg_query_instant(e.c, src, "up", T0, NULL, &g), RG_EINVAL);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    assert_int_equal(g.n, 0);
    assert_int_equal(e.fk.nseen, 0);
    env_done(&e);
}

/* ---- failures --------------------------------------------------------------------------- */

static void test_failures__table(void **state)
{
    static const struct {
        const char *mode;
        int range;
        int err;
        const char *reason;
        const char *msg;               /* prefix */
        const char *error_type;        /* server's, or NULL */
    } cases[] = {
        { "/slow", 0, RG_ETIMEDOUT, "timeout", "query timed out after 300ms", NULL },
        { "/html500", 0, RG_EIO, "http",
          "server answered HTTP 500 without a Prometheus error body", NULL },
        { "/timeout503", 0, RG_ETIMEDOUT, "timeout",
          "timeout: query timed out in expression evaluation", "timeout" },
        { "/exec422", 0, RG_EEXEC, "execution",
          "execution: vector cannot contain metrics with the same labelset", "execution" },
        { "/bad400", 0, RG_EEXEC, "execution", "bad_data: 1:5: parse error", "bad_data" },
        { "/truncated", 0, RG_EBADMSG, "bad_response", "", NULL },
        { "/wrongtype", 1, RG_EBADMSG, "bad_response", "", NULL },
        { "/unknowntype", 0, RG_EBADMSG, "bad_response", "", NULL },
        { "/nothere", 0, RG_EIO, "http", "server answered HTTP 404", NULL },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct env e;
        struct rg_query_source *src;
        struct got g = { 0 };
        char line[256];
        int64_t t0 = rg_mono_ms();

        env_init(&e);
        src = env_source(&e, cases[i].mode);
        src->timeout_ms = 300;
        if (cases[i].range)
            assert_int_equal(rg_query_range(e.c, src, "m", T0, T0 + 60000, 15000, got_cb, &g),
                             0);
        else
            assert_int_equal(rg_query_instant(e.c, src, "up", T0, got_cb, &g), 0);
        env_run_until(&e, &g.n, 1, 5000);
        if (g.err != cases[i].err || strncmp(g.msg, cases[i].msg, strlen(cases[i].msg)))
            fprintf(stderr, "case %s: err %s msg \"%s\"\n", cases[i].mode, rg_err_name(g.err),
                    g.msg);
        assert_int_equal(g.n, 1);
        assert_int_equal(g.err, cases[i].err);
        assert_true(strncmp(g.msg, cases[i].msg, strlen(cases[i].msg)) == 0);
        assert_true(g.msg[0] != 0);
        assert_null(strchr(g.msg, '\n'));
        if (cases[i].error_type) {
            assert_non_null(g.res.error_type);
            assert_string_equal(g.res.error_type, cases[i].error_type);
        } else {
            assert_int_equal(g.res.nseries, 0);
        }
        snprintf(line, sizeof(line),
                 "rollgate_query_errors_total{source=\"%s%s\",reason=\"%s\"} 1\n", e.base,
                 cases[i].mode, cases[i].reason);
        assert_true(metric_has(&e, line));
        rg_query_result_free(&g.res);
        env_done(&e);
        assert_true(rg_mono_ms() - t0 < 3000);
    }
}

static void test_failures__connection_refused(void **state)
{
    struct env e;
    struct rg_query_source *src;
    struct got g = { 0 };
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    char url[64], line[160];
    const struct rg_query_source *s2;
    int fd;
    (void)state;

    /* A port that was free a moment ago and has no listener now. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);

    env_init(&e);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
    assert_int_equal(rg_query_sources_add_url(e.set, url, &s2), 0);
    src = (struct rg_query_source *)s2;
    assert_int_equal(rg_query_instant(e.c, src, "up", T0, got_cb, &g), 0);
    env_run_until(&e, &g.n, 1, 5000);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.err, -ECONNREFUSED);
    assert_non_null(strstr(g.msg, "127.0.0.1"));
    snprintf(line, sizeof(line),
             "rollgate_query_errors_total{source=\"http://127.0.0.1:%d\",reason=\"connection\"} 1",
             ntohs(a.sin_port));
    assert_true(metric_has(&e, line));
    env_done(&e);
}

static void test_failures__large_response_cut_at_bound(void **state)
{
    struct env e;
    struct streamer s;
    struct rg_query_source *src;
    struct got g = { 0 };
    char url[64], line[160];
    const struct rg_query_source *s2;
    int64_t t0 = rg_mono_ms();
    (void)state;

    env_init(&e);
    /* 200 MB would be sent if the client kept reading. */
    assert_int_equal(st_start(&s, &e.loop, 200u * 1000 * 1000), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
    assert_int_equal(rg_query_sources_add_url(e.set, url, &s2), 0);
    src = (struct rg_query_source *)s2;
    src->max_response_bytes = 1u << 20;
    assert_int_equal(rg_query_instant(e.c, src, "up", T0, got_cb, &g), 0);
    env_run_until(&e, &g.n, 1, 8000);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.err, RG_ETOOBIG);
    assert_string_equal(g.msg, "response larger than 1048576 bytes");
    /* Let the writer notice the closed connection. */
    env_run_until(&e, &s.done, 1, 3000);
    assert_int_equal(s.done, 1);
    /* Stopped near the bound: socket buffers hold a few MB at most, never 200 MB. */
    assert_true(s.written < 32u * 1024 * 1024);
    assert_true(rg_mono_ms() - t0 < 8000);
    snprintf(line, sizeof(line),
             "rollgate_query_errors_total{source=\"http://127.0.0.1:%d\",reason=\"too_large\"} 1",
             s.port);
    assert_true(metric_has(&e, line));
    st_stop(&s);
    env_done(&e);
}

/* ---- concurrency and cancellation ------------------------------------------------------- */

static void test_client__concurrency_limit_fifo(void **state)
{
    struct env e;
    struct rg_query_source *src;
    struct got g[6];
    char expr[16];
    (void)state;

    memset(g, 0, sizeof(g));
    env_init(&e);
    e.fk.hold_ms = 150;
    src = env_source(&e, "/hold");
    src->max_concurrency = 2;
    for (int i = 0; i < 6; i++) {
        snprintf(expr, sizeof(expr), "q%d", i);
        assert_int_equal(rg_query_instant(e.c, src, expr, T0, got_cb, &g[i]), 0);
    }
    assert_true(rg_curl_uv_pending(e.cu) <= 2);
    env_run_until(&e, &completions, completions + 6, 5000);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(g[i].n, 1);
        assert_int_equal(g[i].err, 0);
        assert_int_equal(g[i].res.type, RG_PROMQL_VT_VECTOR);
        rg_query_result_free(&g[i].res);
    }
    assert_int_equal(e.fk.nseen, 6);
    assert_int_equal(e.fk.pool.max_cur, 2);
    /* Queued queries are sent in the order they were made. */
    for (int i = 0; i < 6; i++) {
        snprintf(expr, sizeof(expr), "q%d", i);
        if (i >= 2)
            assert_string_equal(e.fk.seen[i].query, expr);
    }
    assert_true(g[5].order > g[0].order && g[5].order > g[1].order);
    env_done(&e);
}

/* A callback that frees the client from inside itself. */
struct free_in_cb {
    struct rg_query_client **c;
    int calls;
    int errs[4];
};

static void free_cb(void *ud, int err, const char *msg, struct rg_query_result *res)
{
    struct free_in_cb *f = ud;
    (void)msg;
    (void)res;
    f->errs[f->calls++ & 3] = err;
    if (*f->c) {
        struct rg_query_client *c = *f->c;
        *f->c = NULL;
        rg_query_client_free(c);
    }
}

static void test_client__cancel_on_free(void **state)
{
    struct env e;
    struct rg_query_source *src;
    struct got g[3];
    struct free_in_cb f;
    (void)state;

    memset(g, 0, sizeof(g));
    env_init(&e);
    e.fk.hold_ms = 2000;
    src = env_source(&e, "/hold");
    src->max_concurrency = 1;
    for (int i = 0; i < 3; i++)
        assert_int_equal(rg_query_instant(e.c, src, "up", T0, got_cb, &g[i]), 0);
    assert_int_equal(rg_query_range(e.c, src, "m", T0, T0 + 100000, 1000, got_cb, &g[2]), 0);
    env_run_until(&e, &e.fk.nseen, 1, 5000);
    assert_int_equal(e.fk.nseen, 1);
    /* One in flight, three queued: all called back with RG_ECANCELED, before the
     * free returns. */
    rg_query_client_free(e.c);
    e.c = NULL;
    assert_int_equal(g[0].n, 1);
    assert_int_equal(g[1].n, 1);
    assert_int_equal(g[2].n, 2);
    assert_int_equal(g[0].err, RG_ECANCELED);
    assert_int_equal(g[1].err, RG_ECANCELED);
    assert_int_equal(g[2].err, RG_ECANCELED);
    rg_query_client_free(NULL);

    /* Freeing the client from inside a callback is safe; the other query still gets its
     * cancellation. */
    assert_int_equal(rg_query_client_new(&e.loop, e.cu, e.m, &e.c), 0);
    memset(&f, 0, sizeof(f));
    f.c = &e.c;
    src = env_source(&e, "/ok");
    assert_int_equal(rg_query_instant(e.c, src, "up", T0, free_cb, &f), 0);
    assert_int_equal(rg_query_instant(e.c, src, "up", T0, free_cb, &f), 0);
    env_run_until(&e, &f.calls, 2, 5000);
    assert_int_equal(f.calls, 2);
    assert_int_equal(f.errs[0], 0);
    assert_int_equal(f.errs[1], RG_ECANCELED);
    assert_null(e.c);
    env_done(&e);
}

/* ---- blocking calls --------------------------------------------------------------------- */

struct thread_fake {
    uv_thread_t tid;
    uv_loop_t loop;
    uv_async_t stop;
    uv_sem_t ready;
    struct fake fk;
    struct rg_http_server_stats stats;   /* the server's counters when it stopped */
};

static void tf_stop(uv_async_t *a)
{
    struct thread_fake *tf = a->data;

    rg_http_server_stats(tf->fk.srv, &tf->stats);
    fake_stop(&tf->fk);
    uv_close((uv_handle_t *)&tf->stop, NULL);
}

static void tf_main(void *arg)
{
    struct thread_fake *tf = arg;

    uv_loop_init(&tf->loop);
    uv_async_init(&tf->loop, &tf->stop, tf_stop);
    tf->stop.data = tf;
    fake_start(&tf->fk, &tf->loop);
    uv_sem_post(&tf->ready);
    uv_run(&tf->loop, UV_RUN_DEFAULT);
    uv_loop_close(&tf->loop);
}

static void test_sync__instant_and_range(void **state)
{
    struct thread_fake tf;
    struct rg_query_sources *set = calloc(1, sizeof(*set));
    const struct rg_query_source *src;
    struct rg_query_result res;
    struct rg_buf msg = { 0 }, want = { 0 };
    char url[64];
    (void)state;

    memset(&tf, 0, sizeof(tf));
    uv_sem_init(&tf.ready, 0);
    assert_int_equal(uv_thread_create(&tf.tid, tf_main, &tf), 0);
    uv_sem_wait(&tf.ready);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", tf.fk.port);
    assert_int_equal(rg_query_sources_add_url(set, url, &src), 0);
    assert_int_equal(rg_query_instant_sync(src, "up", T0 + 5, &res, &msg), 0);
    dump_eq(&res, "type vector\nseries {__name__=\"up\", job=\"api\"}\n  1700000000005 1\n");
    rg_query_result_free(&res);

    ((struct rg_query_source *)src)->max_points = 10;
    assert_int_equal(rg_query_range_sync(src, "m", T0, T0 + 340000, 10000, &res, &msg), 0);
    expected_matrix(&want, 35);
    dump_eq(&res, want.data);
    rg_query_result_free(&res);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/exec422", tf.fk.port);
    assert_int_equal(rg_query_sources_add_url(set, url, &src), 0);
    assert_int_equal(rg_query_instant_sync(src, "up", T0, &res, &msg), RG_EEXEC);
    assert_string_equal(msg.data,
                        "execution: vector cannot contain metrics with the same labelset");
    assert_int_equal(res.type, RG_PROMQL_VT_NONE);
    rg_query_result_free(&res);
    assert_int_equal(rg_query_range_sync(src, "m", T0, T0, 0, &res, &msg), RG_EINVAL);

    uv_async_send(&tf.stop);
    uv_thread_join(&tf.tid);
    uv_sem_destroy(&tf.ready);
    assert_int_equal(tf.fk.nseen, 6);
    rg_buf_cleanup(&msg);
    rg_buf_cleanup(&want);
    rg_query_sources_free(set);
}

/* The runner: a batch submitted at once runs max_concurrency at a time over that many
 * connections, reused by the blocking calls that follow, and an error of one query
 * stays with that query. */
static void test_runner__batch_over_shared_connections(void **state)
{
    struct thread_fake tf;
    struct rg_query_sources *set = calloc(1, sizeof(*set));
    const struct rg_query_source *src, *bad;
    struct rg_query_runner *r;
    struct rg_query_result res;
    struct rg_buf msg = { 0 };
    struct got g[13];
    char url[64], expr[16];
    (void)state;

    memset(&tf, 0, sizeof(tf));
    memset(g, 0, sizeof(g));
    uv_sem_init(&tf.ready, 0);
    assert_int_equal(uv_thread_create(&tf.tid, tf_main, &tf), 0);
    uv_sem_wait(&tf.ready);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", tf.fk.port);
    assert_int_equal(rg_query_sources_add_url(set, url, &src), 0);
    ((struct rg_query_source *)src)->max_concurrency = 3;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/exec422", tf.fk.port);
    assert_int_equal(rg_query_sources_add_url(set, url, &bad), 0);
    ((struct rg_query_source *)bad)->max_concurrency = 3;

    assert_int_equal(rg_query_runner_new(&r), 0);
    assert_int_equal(rg_query_runner_wait(r), 0);
    for (int i = 0; i < 12; i++) {
        snprintf(expr, sizeof(expr), "q%d", i);
        assert_int_equal(rg_query_instant(rg_query_runner_client(r), src, expr, T0 + i,
                                          got_cb, &g[i]), 0);
    }
    assert_int_equal(rg_query_instant(rg_query_runner_client(r), bad, "up", T0, got_cb,
                                      &g[12]), 0);
    assert_int_equal(rg_query_client_pending(rg_query_runner_client(r)), 13);
    assert_int_equal(rg_query_runner_wait(r), 0);
    assert_int_equal(rg_query_client_pending(rg_query_runner_client(r)), 0);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(g[i].n, 1);
        assert_int_equal(g[i].err, 0);
        assert_int_equal(g[i].res.type, RG_PROMQL_VT_VECTOR);
        assert_int_equal(g[i].res.series[0].points[0].t, T0 + i);
        rg_query_result_free(&g[i].res);
    }
    assert_int_equal(g[12].err, RG_EEXEC);
    rg_query_result_free(&g[12].res);
    /* Blocking calls on the same runner use the connections already open. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rg_query_runner_instant(r, src, "up", T0, &res, &msg), 0);
        rg_query_result_free(&res);
    }
    assert_int_equal(rg_query_runner_range(r, src, "m", T0, T0 + 20000, 10000, &res, &msg), 0);
    assert_int_equal(res.type, RG_PROMQL_VT_MATRIX);
    rg_query_result_free(&res);
    assert_int_equal(rg_query_runner_instant(r, bad, "up", T0, &res, &msg), RG_EEXEC);
    assert_non_null(strstr(msg.data, "same labelset"));
    rg_query_result_free(&res);
    rg_query_runner_free(r);
    rg_query_runner_free(NULL);

    uv_async_send(&tf.stop);
    uv_thread_join(&tf.tid);
    uv_sem_destroy(&tf.ready);
    assert_int_equal(tf.fk.nseen, 18);
    /* Never more connections than queries in flight (3 per source, 2 sources); a
     * connection per query would have been 18. */
    assert_true(tf.stats.connections_accepted <= 6);
    rg_buf_cleanup(&msg);
    rg_query_sources_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sources__parse_file),
        cmocka_unit_test(test_sources__no_section),
        cmocka_unit_test(test_sources__errors),
        cmocka_unit_test(test_instant__result_types),
        cmocka_unit_test(test_instant__headers_auth_offset),
        cmocka_unit_test(test_range__chunked_and_merged),
        cmocka_unit_test(test_range__chunk_error_fails_call),
        cmocka_unit_test(test_range__bad_arguments),
        cmocka_unit_test(test_failures__table),
        cmocka_unit_test(test_failures__connection_refused),
        cmocka_unit_test(test_failures__large_response_cut_at_bound),
        cmocka_unit_test(test_client__concurrency_limit_fifo),
        cmocka_unit_test(test_client__cancel_on_free),
        cmocka_unit_test(test_sync__instant_and_range),
        cmocka_unit_test(test_runner__batch_over_shared_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
