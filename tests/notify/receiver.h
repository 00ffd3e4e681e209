/* tests/notify/receiver.h - a scriptable HTTP receiver for the notify tests.
 *
 * Runs src/http/server.h on 127.0.0.1 inside the test's own loop, so the client under
 * test and the receiver share one thread and need no locks. Paths:
 *   /ok                  200, body "method=.. body=.. auth=.. ctype=.. custom=.."
 *   /status?code=N&ra=S  status N, with "Retry-After: S" when ra is given
 *   /big?n=N             200 with N bytes of 'x'
 *   /slow?ms=N           200 after N ms (the request is deferred)
 *   /script              the next entry of the script (status, Retry-After, delay),
 *                        200 once the script is used up
 * Every request is recorded (arrival time, path, Idempotency-Key, status answered).
 * Header-only helpers, included by one test file each; the entry points are static
 * inline so a test that does not use one of them still compiles warning-free. The
 * pieces any fake server needs (copying a request header, answering a request late
 * from a pool of timers) are used by the other fake servers of the tests as well.
 */
#ifndef RG_TESTS_NOTIFY_RECEIVER_H
#define RG_TESTS_NOTIFY_RECEIVER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "http/server.h"
#include "util/buf.h"
#include "util/time.h"

#define RCV_MAX_HITS   20000
/* A fake server that defers more requests at once defines its own pool size first. */
#ifndef RCV_MAX_PEND
#define RCV_MAX_PEND   16
#endif
#define RCV_MAX_SCRIPT 16

struct rcv_hit {
    int64_t at_ms;                     /* monotonic */
    char path[32];
    char key[64];                      /* Idempotency-Key */
    int status;
};

struct rcv_step {
    int status;
    const char *retry_after;           /* NULL: none */
    int delay_ms;                      /* > 0: answer late */
};

struct rcv_pool;

struct rcv_pend {
    struct rcv_pool *pool;
    struct rg_http_request *req;
    uv_timer_t timer;
    int inited, active;
};

/* Requests answered late, one timer each; set loop before the first rcv_defer. */
struct rcv_pool {
    uv_loop_t *loop;
    struct rcv_pend pend[RCV_MAX_PEND];
    int cur, max_cur;                  /* requests deferred now, and at most at once */
};

struct receiver {
    uv_loop_t *loop;
    struct rg_http_server *srv;
    int port;                          /* kept across restarts */
    int running;
    struct rcv_step script[RCV_MAX_SCRIPT];
    size_t nscript, next_step;
    struct rcv_hit *hits;
    size_t nhits;
    size_t ok;                         /* 2xx answered */
    struct rcv_pool pool;
    struct rg_http_server_stats last_stats;
    int stops;                         /* on_stopped calls */
};

static int rcv_qint(const struct rg_http_request *req, const char *name, int def)
{
    struct rg_buf b = { 0 };
    int v = def;

    if (rg_http_query_get(req->query, name, 0, &b) == 0 && b.len)
        v = atoi(b.data);
    rg_buf_cleanup(&b);
    return v;
}

static void rcv_pend_fire(uv_timer_t *t)
{
    struct rcv_pend *p = t->data;

    if (!p->active)
        return;
    p->active = 0;
    p->pool->cur--;
    rg_http_request_finish(p->req);
}

/* Answers @req after @ms instead of when the handler returns; a request that finds the
 * pool full is answered at once. */
static void rcv_defer(struct rcv_pool *pool, struct rg_http_request *req, int ms)
{
    for (int i = 0; i < RCV_MAX_PEND; i++) {
        struct rcv_pend *p = &pool->pend[i];
        if (p->active)
            continue;
        if (!p->inited) {
            uv_timer_init(pool->loop, &p->timer);
            p->timer.data = p;
            p->inited = 1;
        }
        p->pool = pool;
        p->req = req;
        p->active = 1;
        if (++pool->cur > pool->max_cur)
            pool->max_cur = pool->cur;
        rg_http_request_defer(req);
        uv_timer_start(&p->timer, rcv_pend_fire, (uint64_t)ms, 0);
        return;
    }
}

/* Answers every deferred request now, so that a server stop can complete. */
static inline void rcv_pool_finish(struct rcv_pool *pool)
{
    for (int i = 0; i < RCV_MAX_PEND; i++) {
        struct rcv_pend *p = &pool->pend[i];
        if (p->active) {
            p->active = 0;
            pool->cur--;
            rg_http_request_finish(p->req);
        }
    }
}

static void rcv_pend_closed(uv_handle_t *h)
{
    struct rcv_pend *p = h->data;
    p->inited = 0;
}

/* Releases the timers; the pool's memory must stay valid until the loop has run their
 * close callbacks. */
static inline void rcv_pool_close(struct rcv_pool *pool)
{
    for (int i = 0; i < RCV_MAX_PEND; i++) {
        struct rcv_pend *p = &pool->pend[i];
        if (p->inited && !uv_is_closing((uv_handle_t *)&p->timer))
            uv_close((uv_handle_t *)&p->timer, rcv_pend_closed);
    }
}

/* Copies the value of header @name of @req into @out (truncated to @cap - 1 bytes and
 * NUL-terminated; "" when absent). */
static void rcv_header_copy(const struct rg_http_request *req, const char *name, char *out,
                            size_t cap)
{
    const struct rg_slice *v = rg_http_request_header(req, name);
    size_t n = v ? v->len : 0;

    if (n >= cap)
        n = cap - 1;
    if (v)
        memcpy(out, v->ptr, n);
    out[n] = 0;
}

static void rcv_handler(struct rg_http_request *req, struct rg_http_response *res, void *ud)
{
    struct receiver *rv = ud;
    struct rcv_hit *h = rv->nhits < RCV_MAX_HITS ? &rv->hits[rv->nhits++] : NULL;
    char auth[128], ctype[128], custom[128];
    int delay = 0;

    if (rg_slice_eq(req->path, "/ok")) {
        rcv_header_copy(req, "Authorization", auth, sizeof(auth));
        rcv_header_copy(req, "Content-Type", ctype, sizeof(ctype));
        rcv_header_copy(req, "X-Custom", custom, sizeof(custom));
        rg_buf_printf(&res->body, "method=%s body=%.*s auth=%s ctype=%s custom=%s",
                      req->method, (int)req->body.len, req->body.data ? req->body.data : "",
                      auth, ctype, custom);
    } else if (rg_slice_eq(req->path, "/status")) {
        char ra[32];
        res->status = rcv_qint(req, "code", 200);
        if (rcv_qint(req, "ra", -1) >= 0) {
            snprintf(ra, sizeof(ra), "%d", rcv_qint(req, "ra", 0));
            rg_http_response_header(res, "Retry-After", ra);
        }
    } else if (rg_slice_eq(req->path, "/big")) {
        int n = rcv_qint(req, "n", 0);
        for (int i = 0; i < n; i++)
            rg_buf_putc(&res->body, 'x');
    } else if (rg_slice_eq(req->path, "/slow")) {
        delay = rcv_qint(req, "ms", 1000);
    } else if (rg_slice_eq(req->path, "/script")) {
        if (rv->next_step < rv->nscript) {
            const struct rcv_step *s = &rv->script[rv->next_step++];
            res->status = s->status;
            if (s->retry_after)
                rg_http_response_header(res, "Retry-After", s->retry_after);
            delay = s->delay_ms;
        }
    } else {
        res->status = 404;
    }
    if (res->status >= 200 && res->status <= 299)
        rv->ok++;
    if (h) {
        h->at_ms = rg_mono_ms();
        snprintf(h->path, sizeof(h->path), "%.*s", (int)req->path.len, req->path.ptr);
        rcv_header_copy(req, "Idempotency-Key", h->key, sizeof(h->key));
        h->status = res->status;
    }
    if (delay > 0)
        rcv_defer(&rv->pool, req, delay);
}

static inline int rcv_start(struct receiver *rv, uv_loop_t *loop)
{
    struct rg_http_server_config cfg;
    int err;

    rg_http_server_config_default(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = rv->port;
    rv->loop = loop;
    rv->pool.loop = loop;
    if (!rv->hits)
        rv->hits = calloc(RCV_MAX_HITS, sizeof(*rv->hits));
    err = rg_http_server_start(loop, &cfg, NULL, rcv_handler, rv, &rv->srv);
    if (err)
        return err;
    rv->port = rg_http_server_port(rv->srv);
    rv->running = 1;
    return 0;
}

static void rcv_on_stopped(void *ud)
{
    struct receiver *rv = ud;
    rv->stops++;
}

/* Stops the server: answers deferred requests at once so the stop can complete. */
static inline void rcv_stop(struct receiver *rv)
{
    if (!rv->running)
        return;
    rcv_pool_finish(&rv->pool);
    rg_http_server_stats(rv->srv, &rv->last_stats);
    rg_http_server_stop(rv->srv, rcv_on_stopped, rv);
    rv->srv = NULL;
    rv->running = 0;
}

/* Releases the timers; call once the receiver is stopped and will not be restarted. */
static inline void rcv_cleanup(struct receiver *rv)
{
    rcv_stop(rv);
    rcv_pool_close(&rv->pool);
}

static inline void rcv_free(struct receiver *rv)
{
    free(rv->hits);
    rv->hits = NULL;
}

#endif
