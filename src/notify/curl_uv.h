/* notify/curl_uv.h - an asynchronous HTTP client: libcurl's multi interface on libuv.
 *
 * This is the only place that couples libcurl to libuv. One multi handle serves every
 * request of the process (notifications and remote PromQL queries alike), so its
 * connection cache keeps connections to each receiver alive and reuses them. libcurl
 * tells us which sockets it wants watched (CURLMOPT_SOCKETFUNCTION: one uv_poll_t per
 * socket) and when it next needs the clock (CURLMOPT_TIMERFUNCTION: one uv_timer_t);
 * libuv tells libcurl when a socket is ready or the timer fired, through
 * curl_multi_socket_action(), and finished transfers are collected with
 * curl_multi_info_read() (the "multi_socket" API; curl's docs/examples/multi-uv.c shows
 * the same wiring). Nothing blocks the loop and no thread is started per request;
 * name resolution runs in libcurl's own resolver (threaded in Debian's build).
 *
 * Every request is bounded: a total timeout (default 30 s), a connect timeout, and a
 * maximum response size (default 1 MiB; a Content-Length above it fails at once, a
 * body that grows past it is aborted) - never unbounded memory. TLS verification is on
 * unless insecure_skip_verify is set. Proxies come from the environment exactly as
 * libcurl reads them by default (http_proxy, https_proxy, HTTPS_PROXY, all_proxy,
 * no_proxy): CURLOPT_PROXY is never set, so that handling stays enabled. Only http and
 * https URLs are accepted. Passwords and tokens are handed to libcurl and never logged;
 * URLs are logged as scheme, host and port only (see rg_http_log_url()).
 *
 * Threading: loop thread only. Callbacks run on the loop thread, never from inside
 * rg_curl_uv_request().
 */
#ifndef RG_NOTIFY_CURL_UV_H
#define RG_NOTIFY_CURL_UV_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "util/buf.h"

/** TLS settings of a request; all strings are borrowed for the rg_curl_uv_request()
 *  call only (libcurl copies them). */
struct rg_http_tls {
    const char *ca_file;           /* PEM CA bundle; NULL = the system's */
    const char *cert_file;         /* client certificate (PEM) for mutual TLS, or NULL */
    const char *key_file;          /* its private key (PEM), or NULL */
    const char *server_name;       /* verify the certificate for this name (and send it
                                    * as SNI and Host) while connecting to the URL's host */
    int insecure_skip_verify;      /* 1: no peer or host name verification */
};

/** One request. Everything is copied or borrowed for the call only, except body_move. */
struct rg_http_call {
    const char *method;            /* "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD";
                                    * NULL = GET, or POST when a body is given */
    const char *url;               /* http:// or https://, with any query string */
    const char *content_type;      /* Content-Type of the body; NULL leaves libcurl's
                                    * default for bodies (form-urlencoded) */
    const char *const *headers;    /* extra "Name: value" lines (no CR/LF) */
    size_t nheaders;
    const char *body;              /* copied */
    size_t body_len;
    struct rg_buf *body_move;      /* if non-NULL, used instead of body: its bytes are
                                    * taken over and the buffer left empty */
    uint64_t timeout_ms;           /* whole exchange; 0 = 30 s */
    uint64_t connect_timeout_ms;   /* 0 = min(timeout, 10 s) */
    size_t max_response_bytes;     /* body bound; 0 = 1 MiB */
    long max_redirects;            /* redirects followed; 0 = none (a 3xx is returned) */
    struct rg_http_tls tls;
    const char *basic_user;        /* basic auth when non-NULL (secret: never logged) */
    const char *basic_password;
    const char *bearer_token;      /* "Authorization: Bearer" when non-NULL (secret) */
    /* Streaming (e.g. a yajl parser): when set, body bytes are passed here as they
     * arrive, with the request's @ud, instead of being collected (still counted against
     * max_response_bytes). Returning non-zero (an RG_E* code) aborts the transfer, and
     * that value becomes the result's err. */
    int (*on_data)(const char *p, size_t n, void *ud);
};

/** The outcome passed to the callback; valid during the callback only. */
struct rg_http_result {
    int err;                       /* 0: a complete response was received. Otherwise
                                    * RG_ETIMEDOUT, RG_ETOOBIG (response over the bound),
                                    * RG_ECANCELED (cancel or close), RG_EINVAL (bad URL or
                                    * call), RG_ENOTSUP (scheme), RG_ENOMEM, a negated errno
                                    * of the connection (-ECONNREFUSED, ...) or RG_EIO */
    int status;                    /* HTTP status of the last response, 0 when none */
    const char *error;             /* libcurl's message ("" when err == 0) */
    const char *retry_after;       /* Retry-After value, NULL when absent */
    const char *content_type;      /* Content-Type value, NULL when absent */
    struct rg_buf *body;           /* collected body (empty when streamed); the callback
                                    * may steal or move it */
    size_t body_bytes;             /* body bytes received, streamed or not */
    double total_s;                /* from start to end of the transfer */
    long new_connections;          /* connections this request opened (0 = reused) */
};

struct rg_curl_uv;                 /* opaque */
struct rg_curl_uv_req;             /* opaque in-flight request */

typedef void (*rg_http_done_cb)(const struct rg_http_result *res, void *ud);

/** Creates a client on @loop. Returns 0, RG_ENOMEM, or RG_EIO when libcurl cannot be
 *  initialised. The client holds one uv_timer_t (plus a uv_poll_t per open socket). */
int rg_curl_uv_new(uv_loop_t *loop, struct rg_curl_uv **out);

/** Starts a request; @cb(@ud) is called exactly once, later, from the loop (also when
 *  it is cancelled). @out (may be NULL) receives a handle valid until @cb starts.
 *  Returns 0, or RG_EINVAL (no URL, bad header, unknown method), RG_ECANCELED (the
 *  client is closing) or RG_ENOMEM, and then @cb is never called. */
int rg_curl_uv_request(struct rg_curl_uv *cu, const struct rg_http_call *call,
                       rg_http_done_cb cb, void *ud, struct rg_curl_uv_req **out);

/** Cancels an in-flight request: its callback runs at once with RG_ECANCELED. Not
 *  from inside an on_data callback (libcurl forbids removing a transfer there). */
void rg_curl_uv_cancel(struct rg_curl_uv *cu, struct rg_curl_uv_req *req);

/** Number of requests in flight. */
size_t rg_curl_uv_pending(const struct rg_curl_uv *cu);

/** Graceful close: cancels every in-flight request (callbacks with RG_ECANCELED),
 *  closes every connection and handle, frees the client and then calls
 *  @on_closed(@ud) (may be NULL) from a close callback; after that uv_loop_close()
 *  can succeed. Requests started from the cancel callbacks are refused. NULL is a
 *  no-op; a second call is ignored. */
void rg_curl_uv_close(struct rg_curl_uv *cu, void (*on_closed)(void *ud), void *ud);

/** Appends @len bytes of @s percent-encoded (everything but RFC 3986 unreserved). */
int rg_http_urlencode(struct rg_buf *out, const char *s, size_t len);

/** Appends "name=value" (both encoded) to a form or query string, preceded by '&' when
 *  @form is not empty. For GET query strings and POST form bodies. */
int rg_http_form_add(struct rg_buf *form, const char *name, const char *value);

/** Copies @url into @out (capacity @cap, NUL-terminated, truncated) without user info,
 *  query and fragment, for display. Returns @out. */
char *rg_http_redact_url(const char *url, char *out, size_t cap);

/** Copies the scheme, host and port of @url into @out for log lines: no user info, no
 *  query, and the path only as "/..." since a path can be a credential (Slack's
 *  incoming webhooks). Returns @out. */
char *rg_http_log_url(const char *url, char *out, size_t cap);

#endif
