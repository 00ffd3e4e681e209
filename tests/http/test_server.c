/* tests/http/test_server.c - the HTTP/1.1 server against a real socket client.
 *
 * Each case runs a server on 127.0.0.1, port 0, in the test's own libuv loop on the
 * main thread, and a scenario on a second thread that talks to it with plain blocking
 * sockets (receive timeouts keep a broken server from hanging the test). The scenario
 * records what it saw; when it ends it wakes the loop through a uv_async, the loop
 * stops the server, and the main thread asserts on the records, which is where cmocka
 * may fail. Every case ends with uv_loop_close() == 0, so a handle the server forgot
 * to close fails the test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http/server.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

#define NRESP    8
#define RESP_MAX 8192

struct harness;
typedef void (*scenario_fn)(struct harness *h);

struct harness {
    uv_loop_t loop;
    struct rg_http_server *srv;
    struct rg_http_server_config cfg;
    uv_async_t done;
    uv_timer_t finish_timer;             /* completes deferred requests */
    struct rg_http_request *pending;     /* the deferred request */
    struct rg_http_response *pending_res;
    int port;
    int stop_called;
    int stopped;                         /* on_stopped calls */
    int stopped_in_handler;              /* stop requested by the handler */
    struct rg_http_server_stats stats;   /* taken just before stopping */
    scenario_fn scenario;
    /* Written by the scenario thread, read by the main thread after join. */
    char resp[NRESP][RESP_MAX];
    int val[16];
};

/* ---- blocking client ------------------------------------------------------------------ */

struct cli {
    int fd;
    size_t len;
    char buf[65536];
};

static int cli_open(struct cli *c, int port)
{
    struct sockaddr_in sa;
    struct timeval tv = { 3, 0 };

    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -errno;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int err = -errno;
        close(c->fd);
        c->fd = -1;
        return err;
    }
    return 0;
}

static void cli_close(struct cli *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static int cli_send_n(struct cli *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int cli_send(struct cli *c, const char *s)
{
    return cli_send_n(c, s, strlen(s));
}

/* Reads one response (of a HEAD request when @head) into @out; returns its length,
 * or -1 when the connection ends or times out first. */
static int cli_response(struct cli *c, int head, char *out, size_t cap)
{
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end) {
            size_t hl = (size_t)(end - c->buf) + 4, cl = 0, total;
            char hdr[16384];
            const char *p;

            if (hl >= sizeof(hdr))
                return -1;
            memcpy(hdr, c->buf, hl);
            hdr[hl] = '\0';
            p = strcasestr(hdr, "\r\nContent-Length:");
            if (p && !head)
                cl = strtoul(p + 17, NULL, 10);
            total = hl + cl;
            if (c->len >= total) {
                if (total >= cap)
                    return -1;
                memcpy(out, c->buf, total);
                out[total] = '\0';
                memmove(c->buf, c->buf + total, c->len - total);
                c->len -= total;
                return (int)total;
            }
        }
        if (c->len == sizeof(c->buf))
            return -1;
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        if (n <= 0)
            return -1;
        c->len += (size_t)n;
    }
}

/* Returns 1 when the server has closed the connection (EOF or reset) with nothing
 * more to read, 0 otherwise (data, or still open at the receive timeout). */
static int cli_closed(struct cli *c)
{
    char b[256];
    ssize_t n;

    if (c->len)
        return 0;
    n = recv(c->fd, b, sizeof(b), 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

static int status_of(const char *resp)
{
    return strncmp(resp, "HTTP/1.1 ", 9) == 0 ? atoi(resp + 9) : -1;
}

static const char *body_of(const char *resp)
{
    const char *p = strstr(resp, "\r\n\r\n");
    return p ? p + 4 : "";
}

static int has_header(const char *resp, const char *line)
{
    const char *end = strstr(resp, "\r\n\r\n");
    const char *p = strcasestr(resp, line);
    return p && end && p < end;
}

/* ---- server side (loop thread) ----------------------------------------------------------- */

static void on_stopped(void *ud)
{
    struct harness *h = ud;
    h->stopped++;
}

static void on_stopped_count(void *ud)
{
    (*(int *)ud)++;
}

static void on_finish_timer(uv_timer_t *t)
{
    struct harness *h = t->data;

    rg_buf_puts(&h->pending_res->body, "deferred");
    rg_http_request_finish(h->pending);
    h->pending = NULL;
}

static int hook(const struct rg_http_request *req, struct rg_http_response *res, void *ud)
{
    (void)ud;
    if (rg_slice_eq(req->path, "/reject")) {
        res->status = 415;
        rg_buf_puts(&res->body, "unsupported\n");
        return 1;
    }
    return 0;
}

static void handler(struct rg_http_request *req, struct rg_http_response *res, void *ud)
{
    struct harness *h = ud;
    const struct rg_slice *x = rg_http_request_header(req, "x-test");
    const struct rg_slice *e = rg_http_request_header(req, "X-EMPTY");

    if (rg_slice_eq(req->path, "/defer") || rg_slice_eq(req->path, "/stop")) {
        rg_http_request_defer(req);
        h->pending = req;
        h->pending_res = res;
        uv_timer_start(&h->finish_timer, on_finish_timer, 100, 0);
        if (rg_slice_eq(req->path, "/stop")) {
            rg_http_server_stats(h->srv, &h->stats);
            h->stop_called = 1;
            h->stopped_in_handler = 1;
            rg_http_server_stop(h->srv, on_stopped, h);
        }
        return;
    }
    if (rg_slice_eq(req->path, "/badstatus")) {
        res->status = 42;
        rg_buf_puts(&res->body, "never sent");
        return;
    }
    if (rg_slice_eq(req->path, "/len")) {
        const struct rg_slice *pad = rg_http_request_header(req, "X-Pad");
        rg_buf_printf(&res->body, "len=%zu pad=%zu", req->body.len, pad ? pad->len : 0);
        return;
    }
    assert_int_equal(rg_http_response_header(res, "Content-Type", "text/plain"), 0);
    rg_buf_printf(&res->body, "%s %.*s q=%.*s x=%.*s e=%s n=%zu body=%.*s", req->method,
                  (int)req->path.len, req->path.ptr, (int)req->query.len, req->query.ptr,
                  x ? (int)x->len : 1, x ? x->ptr : "-", e ? (e->len ? "set" : "empty") : "-",
                  req->nheaders, (int)req->body.len, req->body.data ? req->body.data : "");
}

static void on_done(uv_async_t *a)
{
    struct harness *h = a->data;

    if (!h->stop_called) {
        rg_http_server_stats(h->srv, &h->stats);
        h->stop_called = 1;
        rg_http_server_stop(h->srv, on_stopped, h);
    }
    uv_close((uv_handle_t *)&h->done, NULL);
    uv_close((uv_handle_t *)&h->finish_timer, NULL);
}

static void *scenario_main(void *arg)
{
    struct harness *h = arg;

    h->scenario(h);
    uv_async_send(&h->done);
    return NULL;
}

static struct harness *harness_new(void)
{
    struct harness *h = calloc(1, sizeof(*h));

    assert_non_null(h);
    rg_http_server_config_default(&h->cfg);
    h->cfg.host = "127.0.0.1";
    h->cfg.port = 0;
    return h;
}

/* Runs @fn against a server configured by h->cfg; returns when everything is closed. */
static void harness_run(struct harness *h, scenario_fn fn)
{
    pthread_t th;

    h->scenario = fn;
    assert_int_equal(uv_loop_init(&h->loop), 0);
    assert_int_equal(rg_http_server_start(&h->loop, &h->cfg, hook, handler, h, &h->srv), 0);
    h->port = rg_http_server_port(h->srv);
    assert_true(h->port > 0);
    assert_int_equal(uv_async_init(&h->loop, &h->done, on_done), 0);
    h->done.data = h;
    assert_int_equal(uv_timer_init(&h->loop, &h->finish_timer), 0);
    h->finish_timer.data = h;
    assert_int_equal(pthread_create(&th, NULL, scenario_main, h), 0);
    assert_int_equal(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(h->stopped, 1);
    assert_int_equal(uv_loop_close(&h->loop), 0);
}

/* ---- cases --------------------------------------------------------------------------------- */

static void sc_keep_alive(struct harness *h)
{
    struct cli c;
    char req[256];

    if (cli_open(&c, h->port))
        return;
    for (int i = 0; i < 3; i++) {
        snprintf(req, sizeof(req), "GET /echo?i=%d HTTP/1.1\r\nHost: t\r\nX-Test: v%d\r\n\r\n",
                 i, i);
        cli_send(&c, req);
        cli_response(&c, 0, h->resp[i], RESP_MAX);
    }
    cli_send(&c, "HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    cli_response(&c, 1, h->resp[3], RESP_MAX);
    cli_send(&c, "GET /last HTTP/1.0\r\n\r\n");
    cli_response(&c, 0, h->resp[4], RESP_MAX);
    h->val[0] = cli_closed(&c);
    cli_close(&c);
}

static void test_server__keep_alive(void **state)
{
    struct harness *h = harness_new();
    char want[128];
    (void)state;

    harness_run(h, sc_keep_alive);
    for (int i = 0; i < 3; i++) {
        snprintf(want, sizeof(want), "GET /echo q=i=%d x=v%d e=- n=2 body=", i, i);
        assert_int_equal(status_of(h->resp[i]), 200);
        assert_string_equal(body_of(h->resp[i]), want);
        assert_true(has_header(h->resp[i], "\r\nContent-Type: text/plain\r\n"));
        assert_false(has_header(h->resp[i], "Connection: close"));
    }
    /* HEAD: the length of the body that a GET would have had, but no body bytes. */
    assert_int_equal(status_of(h->resp[3]), 200);
    assert_true(has_header(h->resp[3], "\r\nContent-Length: 31\r\n"));
    assert_string_equal(body_of(h->resp[3]), "");
    /* HTTP/1.0 without keep-alive: answered, then closed. */
    assert_int_equal(status_of(h->resp[4]), 200);
    assert_true(has_header(h->resp[4], "\r\nConnection: close\r\n"));
    assert_int_equal(h->val[0], 1);
    assert_int_equal(h->stats.connections_accepted, 1);
    assert_int_equal(h->stats.requests, 5);
    assert_int_equal(h->stats.responses, 5);
    free(h);
}

static void sc_pipelined(struct harness *h)
{
    struct cli c;

    if (cli_open(&c, h->port))
        return;
    cli_send(&c, "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
                 "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                 "GET /c?z=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    for (int i = 0; i < 3; i++)
        cli_response(&c, 0, h->resp[i], RESP_MAX);
    /* The connection is still usable afterwards. */
    cli_send(&c, "GET /d HTTP/1.1\r\nHost: t\r\n\r\n");
    cli_response(&c, 0, h->resp[3], RESP_MAX);
    cli_send(&c, "GET /badstatus HTTP/1.1\r\nHost: t\r\n\r\n");
    cli_response(&c, 0, h->resp[4], RESP_MAX);
    cli_close(&c);
}

static void test_server__pipelined(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    harness_run(h, sc_pipelined);
    assert_string_equal(body_of(h->resp[0]), "GET /a q= x=- e=- n=1 body=");
    assert_string_equal(body_of(h->resp[1]), "POST /b q= x=- e=- n=2 body=hello");
    assert_string_equal(body_of(h->resp[2]), "GET /c q=z=1 x=- e=- n=1 body=");
    assert_string_equal(body_of(h->resp[3]), "GET /d q= x=- e=- n=1 body=");
    /* An invalid status from the handler becomes a 500 with the server's own body. */
    assert_int_equal(status_of(h->resp[4]), 500);
    assert_string_equal(body_of(h->resp[4]), "Internal Server Error\n");
    assert_int_equal(h->stats.connections_accepted, 1);
    assert_int_equal(h->stats.requests, 5);
    free(h);
}

static void sc_chunked(struct harness *h)
{
    struct cli c;

    if (cli_open(&c, h->port))
        return;
    /* Sent in pieces so that chunks straddle reads; a trailer ends the body. */
    cli_send(&c, "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                 "X-Empty:\r\nX-Test: yes\r\n\r\n5\r\nhel");
    usleep(20 * 1000);
    cli_send(&c, "lo\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
    cli_response(&c, 0, h->resp[0], RESP_MAX);
    cli_close(&c);
}

static void test_server__chunked_body(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    harness_run(h, sc_chunked);
    assert_int_equal(status_of(h->resp[0]), 200);
    /* Four headers: the trailer is not one of them; the empty value stays separate. */
    assert_string_equal(body_of(h->resp[0]),
                        "POST /up q= x=yes e=empty n=4 body=hello world");
    free(h);
}

static void sc_expect_accepted(struct harness *h)
{
    struct cli c;
    char b[256];
    ssize_t n;

    if (cli_open(&c, h->port))
        return;
    cli_send(&c, "PUT /put HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                 "Content-Length: 5\r\n\r\n");
    n = recv(c.fd, b, sizeof(b) - 1, 0);
    b[n > 0 ? n : 0] = '\0';
    snprintf(h->resp[0], RESP_MAX, "%s", b);
    cli_send(&c, "12345");
    cli_response(&c, 0, h->resp[1], RESP_MAX);
    cli_close(&c);
}

static void test_server__expect_continue_accepted(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    harness_run(h, sc_expect_accepted);
    assert_string_equal(h->resp[0], "HTTP/1.1 100 Continue\r\n\r\n");
    assert_int_equal(status_of(h->resp[1]), 200);
    assert_string_equal(body_of(h->resp[1]), "PUT /put q= x=- e=- n=3 body=12345");
    free(h);
}

static void sc_expect_rejected(struct harness *h)
{
    struct cli c;

    if (cli_open(&c, h->port))
        return;
    cli_send(&c, "POST /reject HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                 "Content-Length: 100000\r\n\r\n");
    cli_response(&c, 0, h->resp[0], RESP_MAX);
    h->val[0] = cli_closed(&c);
    cli_close(&c);
}

static void test_server__expect_continue_rejected(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    harness_run(h, sc_expect_rejected);
    assert_int_equal(status_of(h->resp[0]), 415);
    assert_true(has_header(h->resp[0], "\r\nConnection: close\r\n"));
    assert_string_equal(body_of(h->resp[0]), "unsupported\n");
    assert_int_equal(h->val[0], 1);
    free(h);
}

static void sc_big_headers(struct harness *h)
{
    struct cli c;
    char req[8192];
    char pad[4097];

    if (cli_open(&c, h->port))
        return;
    memset(pad, 'a', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: t\r\nX-Pad: %s\r\n\r\n", pad);
    cli_send(&c, req);
    cli_response(&c, 0, h->resp[0], RESP_MAX);
    h->val[0] = cli_closed(&c);
    cli_close(&c);
}

static void test_server__headers_too_large_431(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    h->cfg.max_header_bytes = 2048;
    harness_run(h, sc_big_headers);
    assert_int_equal(status_of(h->resp[0]), 431);
    assert_true(has_header(h->resp[0], "\r\nConnection: close\r\n"));
    assert_int_equal(h->val[0], 1);
    assert_int_equal(h->stats.client_errors, 1);
    free(h);
}

static void sc_length_over_limit(struct harness *h)
{
    struct cli c;

    if (cli_open(&c, h->port))
        return;
    /* No body byte is sent: the answer must come from the headers alone. */
    cli_send(&c, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n");
    cli_response(&c, 0, h->resp[0], RESP_MAX);
    h->val[0] = cli_closed(&c);
    cli_close(&c);
}

static void test_server__content_length_over_limit_413(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    h->cfg.max_body_bytes = 1024;
    harness_run(h, sc_length_over_limit);
    assert_int_equal(status_of(h->resp[0]), 413);
    assert_true(has_header(h->resp[0], "\r\nConnection: close\r\n"));
    assert_int_equal(h->val[0], 1);
    free(h);
}

static void sc_chunked_over_limit(struct harness *h)
{
    struct cli c;
    char chunk[700];

    if (cli_open(&c, h->port))
        return;
    cli_send(&c, "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    memset(chunk, 'x', sizeof(chunk));
    memcpy(chunk, "258\r\n", 5);                 /* 0x258 = 600 bytes */
    memcpy(chunk + 5 + 600, "\r\n", 2);
    cli_send_n(&c, chunk, 5 + 600 + 2);
    cli_send_n(&c, chunk, 5 + 600 + 2);
    cli_response(&c, 0, h->resp[0], RESP_MAX);
    h->val[0] = cli_closed(&c);
    cli_close(&c);
}

static void test_server__chunked_over_limit_413(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    h->cfg.max_body_bytes = 1024;
    harness_run(h, sc_chunked_over_limit);
    assert_int_equal(status_of(h->resp[0]), 413);
    assert_true(has_header(h->resp[0], "\r\nConnection: close\r\n"));
    assert_int_equal(h->val[0], 1);
    free(h);
}

static const char *const malformed[] = {
    "GET / HTTP/1.1\r\nHost x\r\n\r\n",                                  /* no colon */
    "G@T / HTTP/1.1\r\n\r\n",                                            /* bad method */
    "GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", /* two lengths */
    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",       /* bad chunk */
    "GET /a b HTTP/1.1\r\n\r\n",                                        /* bad version */
};
#define NMALFORMED (sizeof(malformed) / sizeof(malformed[0]))

static void sc_malformed(struct harness *h)
{
    for (size_t i = 0; i < NMALFORMED; i++) {
        struct cli c;
        if (cli_open(&c, h->port))
            return;
        cli_send(&c, malformed[i]);
        cli_response(&c, 0, h->resp[i], RESP_MAX);
        h->val[i] = cli_closed(&c);
        cli_close(&c);
    }
}

static void test_server__malformed_400(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    harness_run(h, sc_malformed);
    for (size_t i = 0; i < NMALFORMED; i++) {
        if (status_of(h->resp[i]) != 400 || h->val[i] != 1)
            fail_msg("malformed[%zu]: status %d closed %d", i, status_of(h->resp[i]),
                     h->val[i]);
        assert_true(has_header(h->resp[i], "\r\nConnection: close\r\n"));
    }
    assert_int_equal(h->stats.client_errors, NMALFORMED);
    assert_int_equal(h->stats.requests, 1);   /* only the bad chunk got past headers */
    free(h);
}

static void sc_header_timeout(struct harness *h)
{
    struct cli a, b;
    int64_t t0 = rg_mono_ms();

    if (cli_open(&a, h->port) || cli_open(&b, h->port))
        return;
    cli_send(&a, "GET / HTTP/1.1\r\nHost: t\r\n");    /* headers never finish */
    cli_response(&a, 0, h->resp[0], RESP_MAX);
    cli_response(&b, 0, h->resp[1], RESP_MAX);        /* sends nothing at all */
    h->val[0] = (int)(rg_mono_ms() - t0);
    h->val[1] = cli_closed(&a);
    h->val[2] = cli_closed(&b);
    cli_close(&a);
    cli_close(&b);
}

static void test_server__header_timeout_408(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    h->cfg.header_timeout_ms = 200;
    harness_run(h, sc_header_timeout);
    assert_int_equal(status_of(h->resp[0]), 408);
    assert_int_equal(status_of(h->resp[1]), 408);
    assert_true(h->val[0] >= 150 && h->val[0] < 2000);
    assert_int_equal(h->val[1], 1);
    assert_int_equal(h->val[2], 1);
    assert_int_equal(h->stats.timeouts, 2);
    free(h);
}

static void sc_idle_timeout(struct harness *h)
{
    struct cli c;
    int64_t t0;

    if (cli_open(&c, h->port))
        return;
    cli_send(&c, "GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
    cli_response(&c, 0, h->resp[0], RESP_MAX);
    t0 = rg_mono_ms();
    h->val[0] = cli_closed(&c);      /* closed without an answer */
    h->val[1] = (int)(rg_mono_ms() - t0);
    cli_close(&c);
}

static void test_server__idle_timeout_closes(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    h->cfg.idle_timeout_ms = 200;
    harness_run(h, sc_idle_timeout);
    assert_int_equal(status_of(h->resp[0]), 200);
    assert_int_equal(h->val[0], 1);
    assert_true(h->val[1] >= 150 && h->val[1] < 2000);
    assert_int_equal(h->stats.timeouts, 1);
    free(h);
}

static void sc_connection_cap(struct harness *h)
{
    struct cli a, b, c;
    const char *req = "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";

    if (cli_open(&a, h->port) || cli_open(&b, h->port))
        return;
    /* A round trip on each proves both were accepted before the third arrives. */
    cli_send(&a, req);
    cli_response(&a, 0, h->resp[0], RESP_MAX);
    cli_send(&b, req);
    cli_response(&b, 0, h->resp[1], RESP_MAX);
    if (cli_open(&c, h->port) == 0) {
        cli_send(&c, req);
        h->val[0] = cli_closed(&c);
        cli_close(&c);
    }
    /* The accepted ones keep working. */
    cli_send(&a, req);
    cli_response(&a, 0, h->resp[2], RESP_MAX);
    cli_close(&a);
    cli_close(&b);
}

static void test_server__connection_cap(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    h->cfg.max_connections = 2;
    harness_run(h, sc_connection_cap);
    assert_int_equal(status_of(h->resp[0]), 200);
    assert_int_equal(status_of(h->resp[1]), 200);
    assert_int_equal(h->val[0], 1);
    assert_int_equal(status_of(h->resp[2]), 200);
    assert_int_equal(h->stats.connections_accepted, 3);
    assert_int_equal(h->stats.connections_rejected, 1);
    assert_int_equal(h->stats.requests, 3);
    free(h);
}

static void sc_deferred(struct harness *h)
{
    struct cli c;
    int64_t t0 = rg_mono_ms();

    if (cli_open(&c, h->port))
        return;
    cli_send(&c, "GET /defer HTTP/1.1\r\nHost: t\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n");
    cli_response(&c, 0, h->resp[0], RESP_MAX);
    h->val[0] = (int)(rg_mono_ms() - t0);
    cli_response(&c, 0, h->resp[1], RESP_MAX);
    cli_close(&c);
}

static void test_server__deferred_response(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    harness_run(h, sc_deferred);
    assert_int_equal(status_of(h->resp[0]), 200);
    assert_string_equal(body_of(h->resp[0]), "deferred");
    assert_true(h->val[0] >= 80);
    /* The pipelined request behind it waited and was answered second. */
    assert_string_equal(body_of(h->resp[1]), "GET /after q= x=- e=- n=1 body=");
    free(h);
}

static void sc_graceful_stop(struct harness *h)
{
    struct cli idle, busy, late;

    if (cli_open(&idle, h->port) || cli_open(&busy, h->port))
        return;
    cli_send(&idle, "GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
    cli_response(&idle, 0, h->resp[0], RESP_MAX);
    /* The handler stops the server and answers 100 ms later. */
    cli_send(&busy, "GET /stop HTTP/1.1\r\nHost: t\r\n\r\n");
    h->val[0] = cli_closed(&idle);
    cli_response(&busy, 0, h->resp[1], RESP_MAX);
    h->val[1] = cli_closed(&busy);
    h->val[2] = cli_open(&late, h->port);
    cli_close(&late);
    cli_close(&idle);
    cli_close(&busy);
}

static void test_server__graceful_stop(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    harness_run(h, sc_graceful_stop);
    assert_int_equal(h->stopped_in_handler, 1);
    assert_int_equal(h->val[0], 1);                    /* idle one closed at once */
    assert_int_equal(status_of(h->resp[1]), 200);      /* in-flight one finished */
    assert_string_equal(body_of(h->resp[1]), "deferred");
    assert_true(has_header(h->resp[1], "\r\nConnection: close\r\n"));
    assert_int_equal(h->val[1], 1);
    assert_int_equal(h->val[2], -ECONNREFUSED);        /* no longer listening */
    assert_int_equal(h->stats.connections_active, 2);
    free(h);
}

static void sc_hook_rejects_sent_body(struct harness *h)
{
    struct cli c;
    static char body[100000];

    if (cli_open(&c, h->port))
        return;
    memset(body, 'b', sizeof(body));
    cli_send(&c, "POST /reject HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
    /* The body follows at once; the answer must still arrive intact. */
    cli_send_n(&c, body, sizeof(body));
    cli_response(&c, 0, h->resp[0], RESP_MAX);
    h->val[0] = cli_closed(&c);
    cli_close(&c);
}

static void test_server__hook_rejects_with_body_in_flight(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    harness_run(h, sc_hook_rejects_sent_body);
    assert_int_equal(status_of(h->resp[0]), 415);
    assert_string_equal(body_of(h->resp[0]), "unsupported\n");
    assert_int_equal(h->val[0], 1);
    free(h);
}

static void sc_large_inputs(struct harness *h)
{
    struct cli c;
    struct rg_buf req = { 0 };
    static char body[1 << 20];

    if (cli_open(&c, h->port))
        return;
    memset(body, 'z', sizeof(body));
    rg_buf_printf(&req, "POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
                  sizeof(body));
    cli_send(&c, req.data);
    cli_send_n(&c, body, sizeof(body));
    cli_response(&c, 0, h->resp[0], RESP_MAX);
    /* Three 100 000-byte chunks. */
    cli_send(&c, "POST /len HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        cli_send(&c, "186A0\r\n");
        cli_send_n(&c, body, 100000);
        cli_send(&c, "\r\n");
    }
    cli_send(&c, "0\r\n\r\n");
    cli_response(&c, 0, h->resp[1], RESP_MAX);
    /* A 100 KiB header: above http-parser's built-in 80 KiB, below the configured bound. */
    rg_buf_reset(&req);
    rg_buf_puts(&req, "GET /len HTTP/1.1\r\nHost: t\r\nX-Pad: ");
    rg_buf_append(&req, body, 100 * 1024);
    rg_buf_puts(&req, "\r\n\r\n");
    cli_send_n(&c, req.data, req.len);
    cli_response(&c, 0, h->resp[2], RESP_MAX);
    rg_buf_cleanup(&req);
    cli_close(&c);
}

static void test_server__large_inputs(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    h->cfg.max_header_bytes = 200 * 1024;
    harness_run(h, sc_large_inputs);
    assert_string_equal(body_of(h->resp[0]), "len=1048576 pad=0");
    assert_string_equal(body_of(h->resp[1]), "len=300000 pad=0");
    assert_string_equal(body_of(h->resp[2]), "len=0 pad=102400");
    assert_true(h->stats.bytes_read > (1 << 20) + 300000 + 100 * 1024);
    free(h);
}

static void sc_byte_by_byte(struct harness *h)
{
    static const char req[] = "POST /split?a=%20b HTTP/1.1\r\nHost: t\r\nX-Test: piece\r\n"
                              "Content-Length: 4\r\n\r\nbody";
    struct cli c;
    int one = 1;

    if (cli_open(&c, h->port))
        return;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (size_t i = 0; i < sizeof(req) - 1; i++) {
        cli_send_n(&c, req + i, 1);
        usleep(500);
    }
    cli_response(&c, 0, h->resp[0], RESP_MAX);
    cli_close(&c);
}

static void test_server__byte_by_byte(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    harness_run(h, sc_byte_by_byte);
    assert_string_equal(body_of(h->resp[0]), "POST /split q=a=%20b x=piece e=- n=3 body=body");
    free(h);
}

static void sc_client_gone(struct harness *h)
{
    struct cli c;

    if (cli_open(&c, h->port))
        return;
    cli_send(&c, "GET /defer HTTP/1.1\r\nHost: t\r\n\r\n");
    cli_close(&c);              /* gone before the deferred answer */
    usleep(200 * 1000);
    if (cli_open(&c, h->port))
        return;
    cli_send(&c, "GET /again HTTP/1.1\r\nHost: t\r\n\r\n");
    cli_response(&c, 0, h->resp[0], RESP_MAX);
    cli_close(&c);
}

static void test_server__client_gone_while_deferred(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    harness_run(h, sc_client_gone);
    assert_int_equal(status_of(h->resp[0]), 200);
    assert_int_equal(h->stats.requests, 2);
    assert_int_equal(h->stats.connections_accepted, 2);
    free(h);
}

static void sc_upgrade(struct harness *h)
{
    struct cli c;

    if (cli_open(&c, h->port))
        return;
    cli_send(&c, "GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                 "\r\n\x81\x05hello");
    cli_response(&c, 0, h->resp[0], RESP_MAX);
    h->val[0] = cli_closed(&c);
    cli_close(&c);
}

static void test_server__upgrade_answered_and_closed(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    harness_run(h, sc_upgrade);
    assert_int_equal(status_of(h->resp[0]), 200);
    assert_true(has_header(h->resp[0], "\r\nConnection: close\r\n"));
    assert_int_equal(h->val[0], 1);
    free(h);
}

/* Mutations of valid requests (a fixed-seed xorshift picks bytes to overwrite, insert
 * or drop) sent on fresh connections whose write side is then shut down: whatever the
 * server makes of them, it must answer or close, and keep serving. */
static void sc_mutations(struct harness *h)
{
    static const char *const seeds[] = {
        "GET /a?b=c HTTP/1.1\r\nHost: t\r\nX-Test: 1\r\n\r\n",
        "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",
        "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    };
    uint32_t x = 2463534242u;
    int answered = 0, closed = 0;
    struct cli after;

    for (int round = 0; round < 150; round++) {
        char buf[256];
        const char *seed = seeds[round % 3];
        size_t len = strlen(seed);
        struct cli c;
        char resp[RESP_MAX];

        memcpy(buf, seed, len);
        for (int k = 0; k < 1 + round % 4; k++) {
            size_t pos;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            pos = x % len;
            if (x & 0x100) {
                buf[pos] = (char)(x >> 24);
            } else if (x & 0x200 && len < sizeof(buf) - 1) {
                memmove(buf + pos + 1, buf + pos, len - pos);
                buf[pos] = (char)(x >> 16);
                len++;
            } else if (len > 1) {
                memmove(buf + pos, buf + pos + 1, len - pos - 1);
                len--;
            }
        }
        if (cli_open(&c, h->port))
            return;
        cli_send_n(&c, buf, len);
        shutdown(c.fd, SHUT_WR);
        while (cli_response(&c, 0, resp, sizeof(resp)) > 0)
            answered++;
        closed++;
        cli_close(&c);
    }
    h->val[0] = answered;
    h->val[1] = closed;
    if (cli_open(&after, h->port) == 0) {
        cli_send(&after, "GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
        cli_response(&after, 0, h->resp[0], RESP_MAX);
        cli_close(&after);
    }
}

static void test_server__mutated_requests(void **state)
{
    struct harness *h = harness_new();
    (void)state;

    harness_run(h, sc_mutations);
    assert_int_equal(h->val[1], 150);
    assert_true(h->val[0] > 0);
    assert_int_equal(status_of(h->resp[0]), 200);
    assert_int_equal(h->stats.connections_accepted, 151);
    free(h);
}

static void test_server__bind_in_use(void **state)
{
    struct rg_http_server_config cfg;
    struct rg_http_server *a = NULL, *b = NULL;
    uv_loop_t loop;
    int stopped = 0;
    (void)state;

    rg_http_server_config_default(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(rg_http_server_start(&loop, &cfg, NULL, handler, NULL, &a), 0);
    cfg.port = rg_http_server_port(a);
    assert_int_equal(rg_http_server_start(&loop, &cfg, NULL, handler, NULL, &b),
                     UV_EADDRINUSE);
    assert_null(b);
    cfg.host = "not-an-address";
    assert_int_equal(rg_http_server_start(&loop, &cfg, NULL, handler, NULL, &b), RG_EINVAL);
    cfg.host = "[::1";
    assert_int_equal(rg_http_server_start(&loop, &cfg, NULL, handler, NULL, &b), RG_EINVAL);
    cfg.host = "127.0.0.1";
    cfg.max_connections = 0;
    assert_int_equal(rg_http_server_start(&loop, &cfg, NULL, handler, NULL, &b), RG_EINVAL);
    rg_http_server_stop(a, on_stopped_count, &stopped);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(stopped, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_server__response_header_validation(void **state)
{
    struct rg_http_response res = { 0 };
    (void)state;

    assert_int_equal(rg_http_response_header(&res, "Content-Type", "application/json"), 0);
    assert_int_equal(rg_http_response_header(&res, "content-length", "5"), RG_EINVAL);
    assert_int_equal(rg_http_response_header(&res, "Connection", "close"), RG_EINVAL);
    assert_int_equal(rg_http_response_header(&res, "Bad Name", "x"), RG_EINVAL);
    assert_int_equal(rg_http_response_header(&res, "", "x"), RG_EINVAL);
    assert_int_equal(rg_http_response_header(&res, "X-A", "a\r\nX-Evil: 1"), RG_EINVAL);
    assert_string_equal(res.headers.data, "Content-Type: application/json\r\n");
    assert_string_equal(rg_http_status_reason(431), "Request Header Fields Too Large");
    assert_string_equal(rg_http_status_reason(799), "Unknown");
    rg_buf_cleanup(&res.headers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server__keep_alive),
        cmocka_unit_test(test_server__pipelined),
        cmocka_unit_test(test_server__chunked_body),
        cmocka_unit_test(test_server__expect_continue_accepted),
        cmocka_unit_test(test_server__expect_continue_rejected),
        cmocka_unit_test(test_server__headers_too_large_431),
        cmocka_unit_test(test_server__content_length_over_limit_413),
        cmocka_unit_test(test_server__chunked_over_limit_413),
        cmocka_unit_test(test_server__malformed_400),
        cmocka_unit_test(test_server__header_timeout_408),
        cmocka_unit_test(test_server__idle_timeout_closes),
        cmocka_unit_test(test_server__connection_cap),
        cmocka_unit_test(test_server__deferred_response),
        cmocka_unit_test(test_server__graceful_stop),
        cmocka_unit_test(test_server__hook_rejects_with_body_in_flight),
        cmocka_unit_test(test_server__large_inputs),
        cmocka_unit_test(test_server__byte_by_byte),
        cmocka_unit_test(test_server__client_gone_while_deferred),
        cmocka_unit_test(test_server__upgrade_answered_and_closed),
        cmocka_unit_test(test_server__mutated_requests),
        cmocka_unit_test(test_server__bind_in_use),
        cmocka_unit_test(test_server__response_header_validation),
    };

    rg_log_set_level(RG_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
