/* http/server.c - HTTP/1.1 server on libuv and http-parser.
 *
 * Each connection is a small state machine (enum phase below) driven by three event
 * sources: reads, one timer, and write completions. Bytes go through http-parser,
 * whose callbacks copy the request target and headers into a per-connection buffer
 * (recording offsets, since the buffer may still move) and append the de-chunked
 * body to the request. When a message completes, the parser is paused and reading
 * stops; unparsed bytes of pipelined requests stay in the read buffer. Once the
 * response has been written the parser resumes on those bytes, and only when they
 * are used up does reading start again. This serialises requests per connection,
 * so responses come out in request order, and it also applies back-pressure: a
 * client cannot make the server buffer more than one request.
 *
 * Answers the server produces itself (400, 408, 413, 431, and a headers hook's
 * rejection) are sent before the request has been fully read. The connection is then
 * half-closed and drained for a short while ("lingering close") before it is closed,
 * because closing a socket with unread input makes the kernel send a reset that can
 * destroy the answer before the client reads it.
 *
 * Graceful stop closes the listener and every connection without a request whose
 * headers are complete; the others finish their response with "Connection: close".
 * Memory of a connection is released only when both its handles (socket, timer) have
 * run their close callbacks, and the server itself once every handle it opened has.
 */
#include "http/server.h"
#include "util/err.h"
#include "util/log.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_BUF_SIZE   (16 * 1024)  /* bytes; one per connection, reused for every read */
#define KEEP_BUF_MAX    (64 * 1024)  /* per-request buffers above this are freed after use */
#define LINGER_MS       1000         /* how long a lingering close drains the client */
#define LISTEN_BACKLOG  511
/* http-parser's built-in header bound, and the room we leave above our own limit for
 * the bytes our count leaves out (request line framing, separators, line ends). */
#define HTTP_PARSER_DEFAULT_HEADER_MAX (80 * 1024)
#define HEADER_SLACK    (16 * 1024)

/* Where a connection is in its life. Reading is on in the first five phases. */
enum phase {
    PH_WAIT_FIRST,   /* accepted, no byte of the first request yet; header timer runs */
    PH_IDLE,         /* keep-alive between requests; idle timer runs */
    PH_HEADERS,      /* request begun, headers incomplete; header timer runs */
    PH_BODY,         /* headers accepted, body being read; idle timer restarts per read */
    PH_LINGER,       /* answer sent and write side shut down; input is discarded */
    PH_HANDLER,      /* handler running or deferred; not reading */
    PH_WRITING,      /* response being written; not reading */
    PH_CLOSING,      /* uv_close() called on both handles */
};

/* Offsets of one header inside conn.hbuf (which may move while headers arrive). */
struct hdr_off {
    size_t name_off, name_len;
    size_t value_off, value_len;
};

struct conn {
    uv_tcp_t tcp;                    /* tcp.data = this */
    uv_timer_t timer;                /* timer.data = this */
    uv_write_t write_req;            /* the response */
    uv_write_t cont_req;             /* the interim "100 Continue" */
    uv_shutdown_t shutdown_req;      /* lingering close */
    http_parser parser;              /* parser.data = this */
    struct rg_http_server *srv;
    struct conn *prev, *next;        /* srv->conns list */
    enum phase phase;
    int open_handles;                /* handles not yet through their close callback */
    int reading;                     /* uv_read_start() in effect */
    int reject;                      /* a parser callback produced the final answer */
    int close_after;                 /* close once the current response is written */
    int linger;                      /* input may still be arriving: drain before close */
    int keep_alive;                  /* from http_should_keep_alive() */
    int deferred;                    /* handler called rg_http_request_defer() */
    int in_handler;                  /* handler on the stack */
    int in_field;                    /* last header callback was a name fragment */
    size_t header_bytes;             /* counted toward max_header_bytes */
    struct rg_buf hbuf;              /* request target and header bytes */
    size_t url_off, url_len;         /* in hbuf */
    struct hdr_off *hoff;            /* owned; nhoff used of hoff_cap */
    size_t nhoff, hoff_cap;
    struct rg_http_header *headers;  /* owned; built from hoff when headers complete */
    size_t headers_cap;
    struct rg_http_request req;
    struct rg_http_response res;
    struct rg_buf head;              /* status line and headers of the response */
    size_t rpos, rlen;               /* unparsed bytes are rbuf[rpos, rlen) */
    char rbuf[READ_BUF_SIZE];
};

/* A connection over the cap: only a handle to accept and close. */
struct rejected {
    uv_tcp_t tcp;                    /* tcp.data = this */
    struct rg_http_server *srv;
};

struct rg_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;               /* listener.data = this */
    struct rg_http_server_config cfg; /* host is not kept */
    rg_http_headers_cb hook;
    rg_http_handler_cb handler;
    void *ud;
    struct conn *conns;              /* open connections (not yet closing) */
    size_t closing;                  /* connections and rejected sockets still closing */
    struct rg_http_server_stats st;
    int port;
    int stopping;
    int listener_closed;
    void (*on_stopped)(void *ud);
    void *stop_ud;
    char addr[64];                   /* for logs */
};

/* ---- status lines ------------------------------------------------------------------ */

const char *rg_http_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default:  return "Unknown";
    }
}

/* ---- request and response helpers --------------------------------------------------- */

const struct rg_slice *rg_http_request_header(const struct rg_http_request *req,
                                              const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (rg_slice_eq_nocase(req->headers[i].name, name))
            return &req->headers[i].value;
    }
    return NULL;
}

/* RFC 9110 token characters. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int rg_http_response_header(struct rg_http_response *res, const char *name, const char *value)
{
    static const char *const reserved[] = { "Content-Length", "Transfer-Encoding",
                                            "Connection" };
    struct rg_slice n = { name, strlen(name) };
    size_t old = res->headers.len;
    int err;

    if (n.len == 0)
        return RG_EINVAL;
    for (size_t i = 0; i < n.len; i++) {
        if (!is_tchar((unsigned char)name[i]))
            return RG_EINVAL;
    }
    if (strpbrk(value, "\r\n"))
        return RG_EINVAL;
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (rg_slice_eq_nocase(n, reserved[i]))
            return RG_EINVAL;
    }
    err = rg_buf_printf(&res->headers, "%s: %s\r\n", name, value);
    if (err)
        res->headers.len = old;    /* keep the block well-formed on failure */
    return err;
}

/* Releases a buffer that grew large for one request, or just empties it, so that a
 * long-lived connection does not keep its largest request's memory. */
static void buf_recycle(struct rg_buf *b)
{
    if (b->cap > KEEP_BUF_MAX)
        rg_buf_cleanup(b);
    else
        rg_buf_reset(b);
}

/* Prepares the connection for the next request on it. */
static void request_reset(struct conn *c)
{
    struct rg_buf body = c->req.body;

    buf_recycle(&c->hbuf);
    c->url_off = c->url_len = 0;
    c->nhoff = 0;
    c->header_bytes = 0;
    c->in_field = 0;
    buf_recycle(&body);
    memset(&c->req, 0, sizeof(c->req));
    c->req.body = body;
    c->req.path = RG_SLICE_LIT("");
    c->req.query = RG_SLICE_LIT("");
    c->req.url = RG_SLICE_LIT("");
    c->req.method = "";
    c->res.status = 200;
    buf_recycle(&c->res.headers);
    buf_recycle(&c->res.body);
    buf_recycle(&c->head);
    c->reject = 0;
    c->close_after = 0;
    c->linger = 0;
    c->keep_alive = 0;
    c->deferred = 0;
}

/* Replaces the response with a short plain-text answer made by the server itself. */
static void set_error_response(struct conn *c, int status)
{
    rg_buf_reset(&c->res.headers);
    rg_buf_reset(&c->res.body);
    c->res.status = status;
    /* Both appends are tiny; on allocation failure the answer goes out without them. */
    (void)rg_http_response_header(&c->res, "Content-Type", "text/plain; charset=utf-8");
    (void)rg_buf_printf(&c->res.body, "%s\n", rg_http_status_reason(status));
}

/* Called from parser callbacks: answer @status before the request is fully read, then
 * close. Returns -1 so the callback can stop the parser with it. */
static int fail_early(struct conn *c, int status)
{
    set_error_response(c, status);
    c->reject = 1;
    c->close_after = 1;
    c->linger = 1;
    if (status >= 400 && status < 500)
        c->srv->st.client_errors++;
    rg_debug("event=http_request_rejected addr=%s status=%d", c->srv->addr, status);
    return -1;
}

/* ---- connection lifecycle ----------------------------------------------------------- */

static void maybe_finish_stop(struct rg_http_server *srv)
{
    void (*cb)(void *ud);
    void *ud;

    if (!srv->stopping || !srv->listener_closed || srv->conns || srv->closing)
        return;
    cb = srv->on_stopped;
    ud = srv->stop_ud;
    rg_info("event=http_stopped addr=%s port=%d requests=%llu", srv->addr, srv->port,
            (unsigned long long)srv->st.requests);
    free(srv);
    if (cb)
        cb(ud);
}

static void conn_free(struct conn *c)
{
    rg_buf_cleanup(&c->hbuf);
    free(c->hoff);
    free(c->headers);
    rg_buf_cleanup(&c->req.body);
    rg_buf_cleanup(&c->res.headers);
    rg_buf_cleanup(&c->res.body);
    rg_buf_cleanup(&c->head);
    free(c);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct rg_http_server *srv = c->srv;

    if (--c->open_handles > 0)
        return;
    conn_free(c);
    srv->closing--;
    maybe_finish_stop(srv);
}

/* Closes both handles; the connection is freed in the last close callback. */
static void conn_close(struct conn *c)
{
    struct rg_http_server *srv = c->srv;

    if (c->phase == PH_CLOSING)
        return;
    c->phase = PH_CLOSING;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    srv->st.connections_active--;
    srv->closing++;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_timer(uv_timer_t *t);

static void timer_start(struct conn *c, uint64_t ms)
{
    /* Cannot fail on an initialised timer with a callback. */
    (void)uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;

    (void)suggested;
    /* Reading only runs once earlier input has been parsed, so the whole buffer is free. */
    buf->base = c->rbuf;
    buf->len = sizeof(c->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void reading_start(struct conn *c)
{
    int err;

    if (c->reading || c->phase == PH_CLOSING)
        return;
    err = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (err) {
        rg_debug("event=http_read_error addr=%s err=%s", c->srv->addr, uv_err_name(err));
        conn_close(c);
        return;
    }
    c->reading = 1;
}

static void reading_stop(struct conn *c)
{
    if (!c->reading)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;

    if (c->phase == PH_CLOSING)
        return;
    if (status < 0 || c->srv->stopping) {
        conn_close(c);
        return;
    }
    /* The answer is flushed and FIN sent; drain whatever the client still sends until
     * it closes or the linger time is over. */
    c->phase = PH_LINGER;
    timer_start(c, LINGER_MS);
    reading_start(c);
}

/* Ends the connection after its last response: directly when all input was read,
 * otherwise through a lingering close. */
static void conn_end(struct conn *c)
{
    int err;

    reading_stop(c);
    if (!c->linger && c->rpos == c->rlen) {
        conn_close(c);
        return;
    }
    c->shutdown_req.data = c;
    err = uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown);
    if (err) {
        conn_close(c);
        return;
    }
    /* Reading stays off until the shutdown completes; the timer bounds the wait. */
    c->phase = PH_LINGER;
    timer_start(c, LINGER_MS);
}

/* ---- response writing --------------------------------------------------------------- */

static void conn_feed(struct conn *c, const char *data, size_t len);

static void on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    size_t pos;

    if (c->phase == PH_CLOSING)
        return;
    uv_timer_stop(&c->timer);
    if (status < 0) {
        rg_debug("event=http_write_error addr=%s err=%s", c->srv->addr, uv_err_name(status));
        conn_close(c);
        return;
    }
    if (c->close_after || c->srv->stopping) {
        conn_end(c);
        return;
    }
    request_reset(c);
    c->phase = PH_IDLE;
    timer_start(c, c->srv->cfg.idle_timeout_ms);
    http_parser_pause(&c->parser, 0);
    if (c->rpos < c->rlen) {
        /* Pipelined bytes that arrived with the previous request. */
        pos = c->rpos;
        conn_feed(c, c->rbuf + pos, c->rlen - pos);
    }
    if (c->phase <= PH_BODY)
        reading_start(c);
}

/* Writes c->res: status line and headers from c->head, body straight from res.body. */
static void send_response(struct conn *c)
{
    struct rg_http_server *srv = c->srv;
    struct rg_http_response *res = &c->res;
    uv_buf_t bufs[2];
    unsigned nbufs = 1;
    int status = res->status;
    int no_body, err;

    reading_stop(c);
    if (status < 200 || status > 599 || res->body.len > UINT32_MAX) {
        /* A handler bug: answer 500 rather than an invalid status line, or a body that
         * a single uv_buf_t cannot describe. */
        rg_warn("event=http_bad_response addr=%s status=%d body_bytes=%zu", srv->addr,
                status, res->body.len);
        set_error_response(c, 500);
        status = 500;
    }
    no_body = status == 204 || status == 304;
    if (!c->keep_alive || srv->stopping)
        c->close_after = 1;
    rg_buf_reset(&c->head);
    err = rg_buf_printf(&c->head, "HTTP/1.1 %d %s\r\n", status, rg_http_status_reason(status));
    if (!err)
        err = rg_buf_append(&c->head, res->headers.data, res->headers.len);
    if (!err && !no_body)
        err = rg_buf_printf(&c->head, "Content-Length: %zu\r\n", res->body.len);
    if (!err && c->close_after)
        err = rg_buf_puts(&c->head, "Connection: close\r\n");
    else if (!err && c->req.http_major == 1 && c->req.http_minor == 0)
        err = rg_buf_puts(&c->head, "Connection: keep-alive\r\n");
    if (!err)
        err = rg_buf_puts(&c->head, "\r\n");
    if (err) {
        rg_warn("event=http_response_error addr=%s err=%s", srv->addr, rg_err_name(err));
        conn_close(c);
        return;
    }
    bufs[0] = uv_buf_init(c->head.data, (unsigned)c->head.len);
    if (!no_body && !c->req.is_head && res->body.len > 0)
        bufs[nbufs++] = uv_buf_init(res->body.data, (unsigned)res->body.len);
    c->write_req.data = c;
    err = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs, nbufs, on_write);
    if (err) {
        rg_debug("event=http_write_error addr=%s err=%s", srv->addr, uv_err_name(err));
        conn_close(c);
        return;
    }
    c->phase = PH_WRITING;
    /* A client that stops reading must not hold the connection for ever. */
    timer_start(c, srv->cfg.idle_timeout_ms);
    srv->st.responses++;
    srv->st.bytes_written += c->head.len + (nbufs > 1 ? res->body.len : 0);
}

/* Runs the handler on a complete request. */
static void dispatch(struct conn *c)
{
    struct rg_http_server *srv = c->srv;

    c->phase = PH_HANDLER;
    c->in_handler = 1;
    srv->handler(&c->req, &c->res, srv->ud);
    c->in_handler = 0;
    if (!c->deferred)
        send_response(c);
}

void rg_http_request_defer(struct rg_http_request *req)
{
    struct conn *c = (struct conn *)((char *)req - offsetof(struct conn, req));

    if (c->in_handler)
        c->deferred = 1;
}

void rg_http_request_finish(struct rg_http_request *req)
{
    struct conn *c = (struct conn *)((char *)req - offsetof(struct conn, req));

    if (!c->deferred)
        return;
    c->deferred = 0;
    if (!c->in_handler)
        send_response(c);
}

/* ---- parsing ------------------------------------------------------------------------ */

static int count_header_bytes(struct conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->srv->cfg.max_header_bytes)
        return fail_early(c, 431);
    return 0;
}

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;

    /* A first request keeps the timer started at accept, so the header timeout counts
     * from the connection; a later one gets a fresh header timeout from its first byte. */
    if (c->phase == PH_IDLE)
        timer_start(c, c->srv->cfg.header_timeout_ms);
    c->phase = PH_HEADERS;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;

    if (count_header_bytes(c, len))
        return -1;
    if (c->url_len == 0)
        c->url_off = c->hbuf.len;
    if (rg_buf_append(&c->hbuf, at, len))
        return fail_early(c, 500);
    c->url_len += len;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct hdr_off *h;

    if (c->phase != PH_HEADERS)
        return count_header_bytes(c, len);   /* a trailer: bounded, then ignored */
    if (count_header_bytes(c, len + (c->in_field ? 0 : 4)))
        return -1;
    if (!c->in_field) {
        if (c->nhoff == c->hoff_cap) {
            size_t cap = c->hoff_cap ? c->hoff_cap * 2 : 16;
            h = realloc(c->hoff, cap * sizeof(*h));
            if (!h)
                return fail_early(c, 500);
            c->hoff = h;
            c->hoff_cap = cap;
        }
        h = &c->hoff[c->nhoff++];
        h->name_off = c->hbuf.len;
        h->name_len = 0;
        h->value_off = 0;
        h->value_len = 0;
        c->in_field = 1;
    }
    h = &c->hoff[c->nhoff - 1];
    if (rg_buf_append(&c->hbuf, at, len))
        return fail_early(c, 500);
    h->name_len += len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct hdr_off *h;

    if (c->phase != PH_HEADERS)
        return count_header_bytes(c, len);
    if (count_header_bytes(c, len))
        return -1;
    if (c->nhoff == 0)
        return fail_early(c, 400);
    h = &c->hoff[c->nhoff - 1];
    if (c->in_field) {
        h->value_off = c->hbuf.len;
        c->in_field = 0;
    }
    if (rg_buf_append(&c->hbuf, at, len))
        return fail_early(c, 500);
    h->value_len += len;
    return 0;
}

/* Fills req.path and req.query from req.url. */
static int split_target(struct conn *c, int is_connect)
{
    struct http_parser_url u;
    struct rg_http_request *req = &c->req;

    if (req->url.len == 1 && req->url.ptr[0] == '*') {
        req->path = req->url;     /* OPTIONS * */
        return 0;
    }
    http_parser_url_init(&u);
    if (http_parser_parse_url(req->url.ptr, req->url.len, is_connect, &u))
        return RG_EBADMSG;
    if (u.field_set & (1 << UF_PATH)) {
        req->path.ptr = req->url.ptr + u.field_data[UF_PATH].off;
        req->path.len = u.field_data[UF_PATH].len;
    } else if (!is_connect) {
        req->path = RG_SLICE_LIT("/");   /* absolute-form without a path */
    }
    if (u.field_set & (1 << UF_QUERY)) {
        req->query.ptr = req->url.ptr + u.field_data[UF_QUERY].off;
        req->query.len = u.field_data[UF_QUERY].len;
    }
    return 0;
}

static void on_continue_written(uv_write_t *req, int status)
{
    /* A failed interim write also fails the final response, which closes. */
    (void)req;
    (void)status;
}

static int on_headers_complete(http_parser *p)
{
    static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct conn *c = p->data;
    struct rg_http_server *srv = c->srv;
    struct rg_http_request *req = &c->req;
    const struct rg_slice *expect;
    uv_buf_t buf;

    uv_timer_stop(&c->timer);
    srv->st.requests++;
    if (c->nhoff > c->headers_cap) {
        struct rg_http_header *h = realloc(c->headers, c->nhoff * sizeof(*h));
        if (!h)
            return fail_early(c, 500);
        c->headers = h;
        c->headers_cap = c->nhoff;
    }
    /* hbuf no longer grows for this request, so pointers into it are stable now. */
    for (size_t i = 0; i < c->nhoff; i++) {
        c->headers[i].name.ptr = c->hbuf.data + c->hoff[i].name_off;
        c->headers[i].name.len = c->hoff[i].name_len;
        c->headers[i].value.ptr = c->hoff[i].value_len ? c->hbuf.data + c->hoff[i].value_off
                                                       : "";
        c->headers[i].value.len = c->hoff[i].value_len;
    }
    req->headers = c->headers;
    req->nheaders = c->nhoff;
    req->method = http_method_str((enum http_method)p->method);
    req->url.ptr = c->url_len ? c->hbuf.data + c->url_off : "";
    req->url.len = c->url_len;
    req->http_major = p->http_major;
    req->http_minor = p->http_minor;
    req->is_head = p->method == HTTP_HEAD;
    c->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    c->phase = PH_BODY;

    if (split_target(c, p->method == HTTP_CONNECT))
        return fail_early(c, 400);
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > srv->cfg.max_body_bytes)
        return fail_early(c, 413);
    if (srv->hook && srv->hook(req, &c->res, srv->ud)) {
        c->reject = 1;
        c->close_after = 1;
        c->linger = 1;
        return -1;
    }
    expect = rg_http_request_header(req, "Expect");
    if (expect && rg_slice_eq_nocase(*expect, "100-continue") && req->http_major == 1 &&
        req->http_minor >= 1) {
        buf = uv_buf_init((char *)continue_line, sizeof(continue_line) - 1);
        if (uv_write(&c->cont_req, (uv_stream_t *)&c->tcp, &buf, 1, on_continue_written) == 0)
            srv->st.bytes_written += buf.len;
    }
    /* Content-Length is known and within the limit: size the body buffer once. */
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > 0 &&
        rg_buf_reserve(&req->body, (size_t)p->content_length))
        return fail_early(c, 500);
    timer_start(c, srv->cfg.idle_timeout_ms);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct rg_buf *body = &c->req.body;

    if (len > c->srv->cfg.max_body_bytes - body->len)
        return fail_early(c, 413);
    if (rg_buf_append(body, at, len))
        return fail_early(c, 500);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;

    /* Stop here: the bytes after this message belong to the next request, which is
     * parsed only after this one has been answered. */
    c->phase = PH_HANDLER;
    uv_timer_stop(&c->timer);
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Parses @data (inside c->rbuf) and acts on the outcome. */
static void conn_feed(struct conn *c, const char *data, size_t len)
{
    size_t n = http_parser_execute(&c->parser, &settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

    c->rpos = (size_t)(data - c->rbuf) + n;
    if (c->reject) {
        send_response(c);
        return;
    }
    if (e == HPE_PAUSED) {
        reading_stop(c);
        dispatch(c);
        return;
    }
    if (e != HPE_OK || n != len) {
        rg_debug("event=http_bad_request addr=%s err=%s", c->srv->addr, http_errno_name(e));
        fail_early(c, e == HPE_HEADER_OVERFLOW ? 431 : 400);
        send_response(c);
        return;
    }
    c->rpos = c->rlen = 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;

    (void)buf;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread != UV_EOF)
            rg_debug("event=http_read_error addr=%s err=%s", c->srv->addr,
                     uv_err_name((int)nread));
        conn_close(c);
        return;
    }
    c->srv->st.bytes_read += (uint64_t)nread;
    if (c->phase == PH_LINGER)
        return;
    if (c->phase == PH_BODY)
        timer_start(c, c->srv->cfg.idle_timeout_ms);
    c->rpos = 0;
    c->rlen = (size_t)nread;
    conn_feed(c, c->rbuf, (size_t)nread);
}

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;

    switch (c->phase) {
    case PH_WAIT_FIRST:
    case PH_HEADERS:
    case PH_BODY:
        c->srv->st.timeouts++;
        fail_early(c, 408);
        send_response(c);
        break;
    case PH_IDLE:
    case PH_WRITING:
        c->srv->st.timeouts++;
        conn_close(c);
        break;
    case PH_LINGER:
        conn_close(c);
        break;
    case PH_HANDLER:
    case PH_CLOSING:
        break;
    }
}

/* ---- listener ----------------------------------------------------------------------- */

static void on_rejected_closed(uv_handle_t *h)
{
    struct rejected *r = h->data;
    struct rg_http_server *srv = r->srv;

    free(r);
    srv->closing--;
    maybe_finish_stop(srv);
}

static void reject_connection(struct rg_http_server *srv)
{
    struct rejected *r = malloc(sizeof(*r));

    if (!r) {
        rg_error("event=http_accept_error addr=%s err=RG_ENOMEM", srv->addr);
        return;
    }
    r->srv = srv;
    r->tcp.data = r;
    if (uv_tcp_init(srv->loop, &r->tcp)) {
        free(r);
        return;
    }
    (void)uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&r->tcp);
    srv->closing++;
    uv_close((uv_handle_t *)&r->tcp, on_rejected_closed);
    srv->st.connections_accepted++;
    srv->st.connections_rejected++;
    /* Logging every rejection would let a flood of connections flood the log too:
     * log the 1st, 2nd, 4th, 8th, ... one. */
    if ((srv->st.connections_rejected & (srv->st.connections_rejected - 1)) == 0)
        rg_warn("event=http_connection_rejected addr=%s port=%d max_connections=%d "
                "rejected=%llu", srv->addr, srv->port, srv->cfg.max_connections,
                (unsigned long long)srv->st.connections_rejected);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct rg_http_server *srv = listener->data;
    struct conn *c;
    int err;

    if (status < 0) {
        rg_warn("event=http_accept_error addr=%s err=%s", srv->addr, uv_err_name(status));
        return;
    }
    if (srv->st.connections_active >= (uint64_t)srv->cfg.max_connections) {
        reject_connection(srv);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        rg_error("event=http_accept_error addr=%s err=RG_ENOMEM", srv->addr);
        return;
    }
    c->srv = srv;
    c->tcp.data = c;
    c->timer.data = c;
    err = uv_tcp_init(srv->loop, &c->tcp);
    if (err) {
        free(c);
        return;
    }
    /* From here on both handles exist and the connection is released by conn_close(). */
    (void)uv_timer_init(srv->loop, &c->timer);
    c->open_handles = 2;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->st.connections_accepted++;
    srv->st.connections_active++;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    request_reset(c);
    c->phase = PH_WAIT_FIRST;
    err = uv_accept(listener, (uv_stream_t *)&c->tcp);
    if (err) {
        rg_warn("event=http_accept_error addr=%s err=%s", srv->addr, uv_err_name(err));
        conn_close(c);
        return;
    }
    /* Responses are written whole, so Nagle's algorithm would only add latency. */
    (void)uv_tcp_nodelay(&c->tcp, 1);
    timer_start(c, srv->cfg.header_timeout_ms);
    reading_start(c);
}

void rg_http_server_config_default(struct rg_http_server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->host = "0.0.0.0";
    cfg->port = 9095;
    cfg->max_header_bytes = 64 * 1024;
    cfg->max_body_bytes = 32 * 1024 * 1024;
    cfg->header_timeout_ms = 10 * 1000;
    cfg->idle_timeout_ms = 120 * 1000;
    cfg->max_connections = 1024;
}

/* Parses a literal address: IPv4, IPv6 with or without brackets, or "localhost". */
static int parse_addr(const char *host, int port, struct sockaddr_storage *ss)
{
    char tmp[64];
    size_t n;

    if (!host || !*host || strcmp(host, "localhost") == 0)
        host = host && *host ? "127.0.0.1" : "0.0.0.0";
    if (!strchr(host, ':'))
        return uv_ip4_addr(host, port, (struct sockaddr_in *)ss) ? RG_EINVAL : 0;
    n = strlen(host);
    if (host[0] == '[') {
        if (n < 3 || host[n - 1] != ']' || n - 2 >= sizeof(tmp))
            return RG_EINVAL;
        memcpy(tmp, host + 1, n - 2);
        tmp[n - 2] = '\0';
        host = tmp;
    }
    return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) ? RG_EINVAL : 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct rg_http_server *srv = h->data;

    srv->listener_closed = 1;
    maybe_finish_stop(srv);
}

static void free_on_close(uv_handle_t *h)
{
    free(h->data);
}

int rg_http_server_start(uv_loop_t *loop, const struct rg_http_server_config *cfg,
                         rg_http_headers_cb hook, rg_http_handler_cb handler, void *ud,
                         struct rg_http_server **out)
{
    struct rg_http_server *srv;
    struct sockaddr_storage ss;
    int namelen = sizeof(ss);
    int err;

    if (!loop || !cfg || !handler || !out || cfg->port < 0 || cfg->port > 65535 ||
        cfg->max_connections <= 0 || cfg->max_header_bytes == 0 ||
        cfg->header_timeout_ms == 0 || cfg->idle_timeout_ms == 0)
        return RG_EINVAL;
    memset(&ss, 0, sizeof(ss));
    err = parse_addr(cfg->host, cfg->port, &ss);
    if (err)
        return err;
    /* http-parser has its own, process-wide header bound (80 KiB unless changed) that
     * would answer 431 before ours; lift it above the configured limit so that ours,
     * counted per request in count_header_bytes(), is the one that applies. */
    if (cfg->max_header_bytes > HTTP_PARSER_DEFAULT_HEADER_MAX - HEADER_SLACK)
        http_parser_set_max_header_size(cfg->max_header_bytes > UINT32_MAX - HEADER_SLACK
                                            ? UINT32_MAX
                                            : (uint32_t)(cfg->max_header_bytes + HEADER_SLACK));
    srv = calloc(1, sizeof(*srv));
    if (!srv)
        return RG_ENOMEM;
    srv->loop = loop;
    srv->cfg = *cfg;
    srv->cfg.host = NULL;
    srv->hook = hook;
    srv->handler = handler;
    srv->ud = ud;
    srv->listener.data = srv;
    snprintf(srv->addr, sizeof(srv->addr), "%s", cfg->host ? cfg->host : "0.0.0.0");

    err = uv_tcp_init(loop, &srv->listener);
    if (err)
        goto fail_init;
    err = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
    if (err)
        goto fail_bind;
    err = uv_listen((uv_stream_t *)&srv->listener, LISTEN_BACKLOG, on_connection);
    if (err)
        goto fail_bind;
    err = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &namelen);
    if (err)
        goto fail_bind;
    srv->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    rg_info("event=http_listen addr=%s port=%d max_connections=%d max_body_bytes=%zu",
            srv->addr, srv->port, cfg->max_connections, cfg->max_body_bytes);
    *out = srv;
    return 0;

fail_bind:
    rg_error("event=http_listen_error addr=%s port=%d err=%s", srv->addr, cfg->port,
             uv_err_name(err));
    /* The handle belongs to the loop now; its memory goes in the close callback. */
    uv_close((uv_handle_t *)&srv->listener, free_on_close);
    return err;
fail_init:
    free(srv);
    return err;
}

int rg_http_server_port(const struct rg_http_server *srv)
{
    return srv->port;
}

void rg_http_server_stats(const struct rg_http_server *srv, struct rg_http_server_stats *out)
{
    *out = srv->st;
}

void rg_http_server_stop(struct rg_http_server *srv, void (*on_stopped)(void *ud), void *ud)
{
    struct conn *c, *next;

    if (!srv || srv->stopping)
        return;
    srv->stopping = 1;
    srv->on_stopped = on_stopped;
    srv->stop_ud = ud;
    rg_info("event=http_stop addr=%s port=%d active=%llu", srv->addr, srv->port,
            (unsigned long long)srv->st.connections_active);
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    for (c = srv->conns; c; c = next) {
        next = c->next;
        /* Requests whose headers are complete are in flight and finish; send_response()
         * and on_write() see srv->stopping and close after the response. */
        if (c->phase == PH_WAIT_FIRST || c->phase == PH_IDLE || c->phase == PH_HEADERS ||
            c->phase == PH_LINGER)
            conn_close(c);
    }
}
