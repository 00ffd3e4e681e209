/* notify/curl_uv.c - libcurl multi_socket driven by libuv poll and timer handles.
 *
 * See curl_uv.h. Lifetimes: a struct sock wraps the uv_poll_t of one curl socket; it
 * is created on the first CURL_POLL_* for the socket, attached with curl_multi_assign(),
 * and closed on CURL_POLL_REMOVE (which libcurl sends before it closes the socket, so
 * libuv never watches a closed descriptor); its memory is freed in the close callback,
 * as libuv requires. A struct rg_curl_uv_req owns its easy handle, header list and
 * body copy, and is freed right after its callback. The client counts its open libuv
 * handles and frees itself when the last close callback has run. Completed transfers
 * are collected after every curl_multi_socket_action(); while that collection runs
 * (depth > 0), a close requested from a callback is deferred to its end, so no
 * structure is freed under the loop that walks it.
 */
#include "notify/curl_uv.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "util/err.h"
#include "util/log.h"

#ifndef RG_VERSION
#define RG_VERSION "dev"
#endif

#define DEFAULT_TIMEOUT_MS      30000
#define MAX_CONNECT_TIMEOUT_MS  10000
#define DEFAULT_MAX_RESPONSE    (1u << 20)
#define HEADER_VALUE_MAX        256

struct sock {
    uv_poll_t poll;                    /* poll.data = this */
    curl_socket_t fd;
    struct rg_curl_uv *cu;
    struct sock *prev, *next;          /* cu->socks */
    int closing;
};

struct rg_curl_uv_req {
    struct rg_curl_uv *cu;
    CURL *easy;
    struct curl_slist *hdrs;           /* owned; libcurl borrows it */
    struct curl_slist *connect_to;     /* owned; for tls.server_name */
    struct rg_buf body;                /* request body, owned */
    struct rg_buf resp;                /* collected response body */
    size_t max_bytes;
    size_t got;
    int too_big;
    int abort_err;
    int (*on_data)(const char *p, size_t n, void *ud);
    char retry_after[HEADER_VALUE_MAX];
    char content_type[HEADER_VALUE_MAX];
    int has_retry_after, has_content_type;
    char errbuf[CURL_ERROR_SIZE];
    char method[8];
    char log_url[160];                 /* scheme, host and port, for logs */
    rg_http_done_cb cb;
    void *ud;
    struct rg_curl_uv_req *prev, *next;
};

struct rg_curl_uv {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;                  /* timer.data = this */
    struct sock *socks;
    struct rg_curl_uv_req *reqs;
    size_t nreqs;
    int handles;                       /* open libuv handles (timer + polls) */
    int depth;                         /* > 0 while collecting finished transfers */
    int closing;
    int closed;                        /* teardown done, waiting for close callbacks */
    void (*on_closed)(void *ud);
    void *on_closed_ud;
};

static void do_close(struct rg_curl_uv *cu);

/* ---- handle bookkeeping ------------------------------------------------------------- */

static void maybe_free(struct rg_curl_uv *cu)
{
    void (*cb)(void *) = cu->on_closed;
    void *ud = cu->on_closed_ud;

    if (!cu->closed || cu->handles > 0)
        return;
    free(cu);
    curl_global_cleanup();
    if (cb)
        cb(ud);
}

static void sock_closed(uv_handle_t *h)
{
    struct sock *sk = h->data;
    struct rg_curl_uv *cu = sk->cu;

    free(sk);
    cu->handles--;
    maybe_free(cu);
}

static void timer_closed(uv_handle_t *h)
{
    struct rg_curl_uv *cu = h->data;

    cu->handles--;
    maybe_free(cu);
}

static void sock_close(struct sock *sk)
{
    struct rg_curl_uv *cu = sk->cu;

    if (sk->closing)
        return;
    sk->closing = 1;
    if (sk->prev)
        sk->prev->next = sk->next;
    else
        cu->socks = sk->next;
    if (sk->next)
        sk->next->prev = sk->prev;
    uv_poll_stop(&sk->poll);
    uv_close((uv_handle_t *)&sk->poll, sock_closed);
}

/* ---- finishing requests -------------------------------------------------------------- */

static int map_error(struct rg_curl_uv_req *r, CURLcode rc)
{
    long os_errno = 0;

    switch (rc) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return RG_ETIMEDOUT;
    case CURLE_FILESIZE_EXCEEDED:
        return RG_ETOOBIG;
    case CURLE_WRITE_ERROR:
        if (r->too_big)
            return RG_ETOOBIG;
        if (r->abort_err)
            return r->abort_err;
        return RG_EIO;
    case CURLE_URL_MALFORMAT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        return RG_EINVAL;
    case CURLE_UNSUPPORTED_PROTOCOL:
        return RG_ENOTSUP;
    case CURLE_OUT_OF_MEMORY:
        return RG_ENOMEM;
    case CURLE_ABORTED_BY_CALLBACK:
        return RG_ECANCELED;
    default:
        break;
    }
    /* Connection-level failures keep the system's reason (ECONNREFUSED, EHOSTUNREACH,
     * ...), which is more useful in logs and metrics than "couldn't connect". */
    if (curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK && os_errno > 0)
        return (int)-os_errno;
    return RG_EIO;
}

static void req_free(struct rg_curl_uv_req *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdrs);
    curl_slist_free_all(r->connect_to);
    rg_buf_cleanup(&r->body);
    rg_buf_cleanup(&r->resp);
    free(r);
}

static void req_unlink(struct rg_curl_uv_req *r)
{
    struct rg_curl_uv *cu = r->cu;

    if (r->prev)
        r->prev->next = r->next;
    else
        cu->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    cu->nreqs--;
}

/* Removes @r from the multi handle, reports @err (or the transfer's own result when
 * @err is 0) to its callback and frees it. */
static void req_finish(struct rg_curl_uv_req *r, CURLcode rc, int forced_err)
{
    struct rg_curl_uv *cu = r->cu;
    struct rg_http_result res;
    curl_off_t total_us = 0;
    long status = 0, conns = 0;

    req_unlink(r);
    curl_multi_remove_handle(cu->multi, r->easy);
    memset(&res, 0, sizeof(res));
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME_T, &total_us);
    curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &conns);
    res.err = forced_err ? forced_err : map_error(r, rc);
    res.status = (int)status;
    if (forced_err)
        res.error = rg_strerror(forced_err);
    else if (rc != CURLE_OK)
        res.error = r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);
    else
        res.error = "";
    res.retry_after = r->has_retry_after ? r->retry_after : NULL;
    res.content_type = r->has_content_type ? r->content_type : NULL;
    res.body = &r->resp;
    res.body_bytes = r->got;
    res.total_s = (double)total_us / 1e6;
    res.new_connections = conns;
    rg_debug("event=http_done method=%s url=%s status=%d err=%s seconds=%.3f", r->method,
             r->log_url, res.status, res.err ? rg_err_name(res.err) : "none", res.total_s);
    r->cb(&res, r->ud);
    req_free(r);
}

static void collect(struct rg_curl_uv *cu)
{
    CURLMsg *msg;
    int left;

    cu->depth++;
    while (cu->multi && (msg = curl_multi_info_read(cu->multi, &left))) {
        char *priv = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        if (priv)
            req_finish((struct rg_curl_uv_req *)priv, msg->data.result, 0);
    }
    cu->depth--;
    if (cu->closing && !cu->closed && !cu->depth)
        do_close(cu);
}

/* ---- libcurl -> libuv ------------------------------------------------------------------ */

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *sk = h->data;
    struct rg_curl_uv *cu = sk->cu;
    int flags = 0, running;

    if (sk->closing || !cu->multi)
        return;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(cu->multi, sk->fd, flags, &running);
    collect(cu);
}

static void on_timer(uv_timer_t *t)
{
    struct rg_curl_uv *cu = t->data;
    int running;

    if (!cu->multi)
        return;
    curl_multi_socket_action(cu->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect(cu);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct rg_curl_uv *cu = userp;
    struct sock *sk = socketp;
    int events = 0;
    (void)easy;

    if (what == CURL_POLL_REMOVE) {
        if (sk) {
            sock_close(sk);
            curl_multi_assign(cu->multi, fd, NULL);
        }
        return 0;
    }
    if (cu->closed)
        return 0;
    if (!sk) {
        sk = calloc(1, sizeof(*sk));
        if (!sk)
            return -1;
        if (uv_poll_init_socket(cu->loop, &sk->poll, fd)) {
            free(sk);
            return -1;
        }
        sk->poll.data = sk;
        sk->fd = fd;
        sk->cu = cu;
        sk->next = cu->socks;
        if (cu->socks)
            cu->socks->prev = sk;
        cu->socks = sk;
        cu->handles++;
        curl_multi_assign(cu->multi, fd, sk);
    }
    if (sk->closing)
        return 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    return uv_poll_start(&sk->poll, events, on_poll) ? -1 : 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct rg_curl_uv *cu = userp;
    (void)multi;

    if (cu->closed)
        return 0;
    if (timeout_ms < 0)
        return uv_timer_stop(&cu->timer) ? -1 : 0;
    /* 0 means "as soon as possible", but never from inside this callback: a 0 ms libuv
     * timer runs on the next loop iteration, which is both. (Rounding it up to 1 ms
     * cost every request a millisecond and capped one-at-a-time notifiers at about
     * 770 requests/s.) */
    return uv_timer_start(&cu->timer, on_timer, (uint64_t)timeout_ms, 0) ? -1 : 0;
}

/* ---- per-request callbacks -------------------------------------------------------------- */

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    struct rg_curl_uv_req *r = ud;
    size_t len = size * n;

    if (len > r->max_bytes - r->got) {
        r->too_big = 1;
        return 0;                       /* aborts with CURLE_WRITE_ERROR */
    }
    r->got += len;
    if (r->on_data) {
        int rc = r->on_data(p, len, r->ud);
        if (rc) {
            r->abort_err = rc;
            return 0;
        }
        return len;
    }
    if (rg_buf_append(&r->resp, p, len)) {
        r->abort_err = RG_ENOMEM;
        return 0;
    }
    return len;
}

/* Copies a header's value, trimmed and bounded, if @line is "@name: value". */
static int header_value(const char *line, size_t len, const char *name, char *out)
{
    size_t nl = strlen(name), i, end;

    if (len <= nl || strncasecmp(line, name, nl) || line[nl] != ':')
        return 0;
    for (i = nl + 1; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
        ;
    for (end = len; end > i && isspace((unsigned char)line[end - 1]); end--)
        ;
    if (end - i >= HEADER_VALUE_MAX)
        end = i + HEADER_VALUE_MAX - 1;
    memcpy(out, line + i, end - i);
    out[end - i] = 0;
    return 1;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct rg_curl_uv_req *r = ud;
    size_t len = size * n;

    /* A new status line starts a new response (after a 100 or a redirect): only the
     * last response's headers describe the result. */
    if (len >= 5 && !strncmp(p, "HTTP/", 5)) {
        r->has_retry_after = 0;
        r->has_content_type = 0;
    } else if (header_value(p, len, "Retry-After", r->retry_after)) {
        r->has_retry_after = 1;
    } else if (header_value(p, len, "Content-Type", r->content_type)) {
        r->has_content_type = 1;
    }
    return len;
}

/* ---- public API -------------------------------------------------------------------------- */

int rg_curl_uv_new(uv_loop_t *loop, struct rg_curl_uv **out)
{
    struct rg_curl_uv *cu;
    int err;

    *out = NULL;
    /* Reference-counted by libcurl; paired with curl_global_cleanup() in maybe_free. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT))
        return RG_EIO;
    cu = calloc(1, sizeof(*cu));
    if (!cu) {
        err = RG_ENOMEM;
        goto fail_alloc;
    }
    cu->loop = loop;
    cu->multi = curl_multi_init();
    if (!cu->multi) {
        err = RG_ENOMEM;
        goto fail_multi;
    }
    err = uv_timer_init(loop, &cu->timer);
    if (err)
        goto fail_timer;
    cu->timer.data = cu;
    cu->handles = 1;
    curl_multi_setopt(cu->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(cu->multi, CURLMOPT_SOCKETDATA, cu);
    curl_multi_setopt(cu->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(cu->multi, CURLMOPT_TIMERDATA, cu);
    *out = cu;
    return 0;

fail_timer:
    curl_multi_cleanup(cu->multi);
fail_multi:
    free(cu);
fail_alloc:
    curl_global_cleanup();
    return err;
}

static int valid_header(const char *h)
{
    const char *colon = strchr(h, ':');

    if (!colon || colon == h || strpbrk(h, "\r\n"))
        return 0;
    return 1;
}

static int add_header(struct rg_curl_uv_req *r, const char *line)
{
    struct curl_slist *n = curl_slist_append(r->hdrs, line);

    if (!n)
        return RG_ENOMEM;
    r->hdrs = n;
    return 0;
}

/* Points the request at tls.server_name while connecting to the URL's own host, so
 * the certificate is verified (and SNI sent) for that name. */
static int set_server_name(struct rg_curl_uv_req *r, const char *url, const char *name,
                           char **new_url)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, line[600];
    int err = RG_EINVAL;

    if (!u)
        return RG_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) ||
        curl_url_set(u, CURLUPART_HOST, name, 0) ||
        curl_url_get(u, CURLUPART_URL, new_url, 0))
        goto out;
    if ((size_t)snprintf(line, sizeof(line), "%s:%s:%s:%s", name, port, host, port) >=
        sizeof(line))
        goto out;
    r->connect_to = curl_slist_append(NULL, line);
    err = r->connect_to ? 0 : RG_ENOMEM;
out:
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return err;
}

static int setup_easy(struct rg_curl_uv_req *r, const struct rg_http_call *c)
{
    CURL *e = r->easy;
    uint64_t timeout = c->timeout_ms ? c->timeout_ms : DEFAULT_TIMEOUT_MS;
    uint64_t ctimeout = c->connect_timeout_ms;
    const char *method = c->method;
    int has_body = c->body_move || c->body_len;
    char *url2 = NULL;
    int err = 0;

    if (!method)
        method = has_body ? "POST" : "GET";
    if (strlen(method) >= sizeof(r->method))
        return RG_EINVAL;
    strcpy(r->method, method);
    if (!ctimeout || ctimeout > timeout)
        ctimeout = timeout < MAX_CONNECT_TIMEOUT_MS ? timeout : MAX_CONNECT_TIMEOUT_MS;

    if (c->tls.server_name && c->tls.server_name[0] && !strncasecmp(c->url, "https:", 6)) {
        err = set_server_name(r, c->url, c->tls.server_name, &url2);
        if (err)
            return err;
        curl_easy_setopt(e, CURLOPT_CONNECT_TO, r->connect_to);
    }
    if (curl_easy_setopt(e, CURLOPT_URL, url2 ? url2 : c->url) != CURLE_OK) {
        curl_free(url2);
        return RG_EINVAL;
    }
    curl_free(url2);

    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)ctimeout);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "rollgate/" RG_VERSION);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_bytes);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    if (c->max_redirects > 0) {
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, c->max_redirects);
    }

    if (c->tls.ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->tls.ca_file);
    if (c->tls.cert_file)
        curl_easy_setopt(e, CURLOPT_SSLCERT, c->tls.cert_file);
    if (c->tls.key_file)
        curl_easy_setopt(e, CURLOPT_SSLKEY, c->tls.key_file);
    if (c->tls.insecure_skip_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (c->basic_user) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, c->basic_user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, c->basic_password ? c->basic_password : "");
    } else if (c->bearer_token) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, c->bearer_token);
    }

    if (!strcmp(method, "GET")) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(method, "POST") || !strcmp(method, "PUT") ||
               !strcmp(method, "DELETE") || !strcmp(method, "PATCH")) {
        if (strcmp(method, "POST"))
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        if (strcmp(method, "DELETE") || has_body) {
            curl_easy_setopt(e, CURLOPT_POST, 1L);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body.data ? r->body.data : "");
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
        }
    } else {
        return RG_EINVAL;
    }

    /* libcurl would wait up to a second for "100 Continue" before sending a larger
     * body; receivers answer without it, so the header is suppressed. */
    err = add_header(r, "Expect:");
    if (!err && c->content_type) {
        char line[HEADER_VALUE_MAX + 16];
        if (strpbrk(c->content_type, "\r\n") ||
            (size_t)snprintf(line, sizeof(line), "Content-Type: %s", c->content_type) >=
                sizeof(line))
            return RG_EINVAL;
        err = add_header(r, line);
    }
    for (size_t i = 0; !err && i < c->nheaders; i++) {
        if (!c->headers[i] || !valid_header(c->headers[i]))
            return RG_EINVAL;
        err = add_header(r, c->headers[i]);
    }
    if (err)
        return err;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    return 0;
}

int rg_curl_uv_request(struct rg_curl_uv *cu, const struct rg_http_call *call,
                       rg_http_done_cb cb, void *ud, struct rg_curl_uv_req **out)
{
    struct rg_curl_uv_req *r;
    int err;

    if (out)
        *out = NULL;
    if (cu->closing)
        return RG_ECANCELED;
    if (!call || !call->url || !cb)
        return RG_EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return RG_ENOMEM;
    r->cu = cu;
    r->cb = cb;
    r->ud = ud;
    r->on_data = call->on_data;
    r->max_bytes = call->max_response_bytes ? call->max_response_bytes : DEFAULT_MAX_RESPONSE;
    rg_http_log_url(call->url, r->log_url, sizeof(r->log_url));
    r->easy = curl_easy_init();
    if (!r->easy) {
        err = RG_ENOMEM;
        goto fail_req;
    }
    if (call->body_move) {
        r->body = *call->body_move;
        memset(call->body_move, 0, sizeof(*call->body_move));
    } else if (call->body_len && rg_buf_append(&r->body, call->body, call->body_len)) {
        err = RG_ENOMEM;
        goto fail_req;
    }
    err = setup_easy(r, call);
    if (err)
        goto fail_req;
    if (curl_multi_add_handle(cu->multi, r->easy) != CURLM_OK) {
        err = RG_ENOMEM;
        goto fail_req;
    }
    r->next = cu->reqs;
    if (cu->reqs)
        cu->reqs->prev = r;
    cu->reqs = r;
    cu->nreqs++;
    if (out)
        *out = r;
    return 0;

fail_req:
    req_free(r);
    return err;
}

void rg_curl_uv_cancel(struct rg_curl_uv *cu, struct rg_curl_uv_req *req)
{
    (void)cu;
    if (req)
        req_finish(req, CURLE_OK, RG_ECANCELED);
}

size_t rg_curl_uv_pending(const struct rg_curl_uv *cu)
{
    return cu->nreqs;
}

static void do_close(struct rg_curl_uv *cu)
{
    cu->depth++;
    while (cu->reqs)
        req_finish(cu->reqs, CURLE_OK, RG_ECANCELED);
    cu->depth--;
    cu->closed = 1;
    /* Close the polls first and mark them, so that the CURL_POLL_REMOVE calls made
     * while libcurl closes its cached connections find them already closing. */
    while (cu->socks)
        sock_close(cu->socks);
    uv_timer_stop(&cu->timer);
    curl_multi_cleanup(cu->multi);
    cu->multi = NULL;
    uv_close((uv_handle_t *)&cu->timer, timer_closed);
}

void rg_curl_uv_close(struct rg_curl_uv *cu, void (*on_closed)(void *ud), void *ud)
{
    if (!cu || cu->closing)
        return;
    cu->closing = 1;
    cu->on_closed = on_closed;
    cu->on_closed_ud = ud;
    if (!cu->depth)
        do_close(cu);
}

/* ---- helpers ---------------------------------------------------------------------------- */

int rg_http_urlencode(struct rg_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";

    if (rg_buf_reserve(out, len * 3))
        return RG_ENOMEM;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out->data[out->len++] = (char)c;
        } else {
            out->data[out->len++] = '%';
            out->data[out->len++] = hex[c >> 4];
            out->data[out->len++] = hex[c & 15];
        }
    }
    out->data[out->len] = 0;
    return 0;
}

int rg_http_form_add(struct rg_buf *form, const char *name, const char *value)
{
    if (form->len && rg_buf_putc(form, '&'))
        return RG_ENOMEM;
    if (rg_http_urlencode(form, name, strlen(name)) || rg_buf_putc(form, '=') ||
        rg_http_urlencode(form, value, strlen(value)))
        return RG_ENOMEM;
    return 0;
}

char *rg_http_log_url(const char *url, char *out, size_t cap)
{
    const char *scheme_end = strstr(url, "://");
    const char *authority = scheme_end ? scheme_end + 3 : url;
    const char *end = authority + strcspn(authority, "/?#");
    const char *at = memchr(authority, '@', (size_t)(end - authority));
    const char *host = at ? at + 1 : authority;
    int has_path = *end == '/' && strcspn(end + 1, "?#") > 0;

    /* A path can itself be a credential (Slack's incoming webhooks): "/..." only. */
    snprintf(out, cap, "%.*s%.*s%s", (int)(authority - url), url, (int)(end - host), host,
             has_path ? "/..." : "");
    return out;
}

char *rg_http_redact_url(const char *url, char *out, size_t cap)
{
    const char *scheme_end = strstr(url, "://");
    const char *start = url, *authority, *at, *end;
    size_t n = 0;

    if (!cap)
        return out;
    authority = scheme_end ? scheme_end + 3 : url;
    end = authority + strcspn(authority, "/?#");
    at = memchr(authority, '@', (size_t)(end - authority));
    /* scheme:// */
    for (; start < authority && n + 1 < cap; start++)
        out[n++] = *start;
    start = at ? at + 1 : authority;
    end = start + strcspn(start, "?#");
    for (; start < end && n + 1 < cap; start++)
        out[n++] = *start;
    out[n] = 0;
    return out;
}
