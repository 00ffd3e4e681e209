/* http/server.h - the HTTP/1.1 server every rollgate endpoint is served by.
 *
 * One libuv loop, no threads: a uv_tcp listener accepts connections, and each
 * connection feeds its bytes to http-parser (a callback-driven, incremental state
 * machine that also removes chunked transfer coding). A connection processes one
 * request at a time: when a message is complete the parser is paused and reading
 * stops until the response has been written, so pipelined requests are answered in
 * order without queueing responses. Every input is bounded (header bytes, body
 * bytes, header and idle timers, connection count) and answered with 4xx instead of
 * growing without limit. Requests pass through two callbacks: a headers hook that
 * may answer before any body byte is read (so 413/415 need not read the body, and
 * "Expect: 100-continue" gets its 100 only when the hook accepts), and a handler
 * that sees the complete body and may defer its response.
 *
 * Threading: every function here must be called on the loop thread, except the
 * pure helpers rg_http_request_header() and rg_http_status_reason(). Query-string
 * decoding lives in http/query.h (included here for convenience).
 */
#ifndef RG_HTTP_SERVER_H
#define RG_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "http/query.h"
#include "util/buf.h"

/** Listener settings and the bounds applied to every connection. */
struct rg_http_server_config {
    const char *host;            /* "0.0.0.0", "127.0.0.1", "::", "[::1]", "localhost";
                                  * borrowed during rg_http_server_start() only */
    int port;                    /* 0 picks an ephemeral port, see rg_http_server_port() */
    size_t max_header_bytes;     /* request target + header names and values + 4 bytes
                                  * per header (trailers count too); over it: 431, close */
    size_t max_body_bytes;       /* de-chunked body; over it: 413 and close */
    uint64_t header_timeout_ms;  /* from accept (or first byte of a later request) until
                                  * the headers are complete; then 408 and close */
    uint64_t idle_timeout_ms;    /* keep-alive wait between requests (then closed
                                  * silently), longest pause while a body is received
                                  * (then 408), and longest time to write a response */
    int max_connections;         /* more are accepted and closed at once */
};

/** One request header; both slices borrow from the request (see rg_http_request). */
struct rg_http_header {
    struct rg_slice name;        /* as sent, not case-folded */
    struct rg_slice value;       /* leading and trailing blanks removed by the parser */
};

/** A parsed request. Owned by the server; the handler borrows it (and everything it
 *  points to) until its response is written, i.e. until the handler returns, or
 *  until rg_http_request_finish() when it deferred. */
struct rg_http_request {
    const char *method;              /* static upper-case name: "GET", "POST", ... */
    struct rg_slice url;             /* request target as sent */
    struct rg_slice path;            /* target without query, not percent-decoded */
    struct rg_slice query;           /* raw query without '?', empty when absent */
    struct rg_http_header *headers;  /* in arrival order; trailers are not included */
    size_t nheaders;
    struct rg_buf body;              /* complete, de-chunked; the handler may move the
                                      * buffer out (leaving it zeroed) to keep it */
    int http_major;
    int http_minor;
    int is_head;                     /* HEAD: the response body is never written */
    void *user;                      /* free for the handler; NULL on each request */
};

/** The response the server writes. The handler fills it; the server adds the status
 *  line, Content-Length (except for 204 and 304, which never carry a body) and, when the
 *  connection closes or the client speaks HTTP/1.0 with keep-alive, Connection. */
struct rg_http_response {
    int status;                  /* 200 unless set; anything outside 200..599 -> 500 */
    struct rg_buf headers;       /* "Name: value\r\n" lines; use rg_http_response_header */
    struct rg_buf body;          /* owned by the response; a handler may move its own
                                  * rg_buf in (after freeing this one) instead of copying;
                                  * it is written without a copy and freed by the server */
};

/** Counters since start; plain loads, read on the loop thread. */
struct rg_http_server_stats {
    uint64_t connections_accepted;   /* including those rejected at the cap */
    uint64_t connections_rejected;   /* closed at once because of max_connections */
    uint64_t connections_active;     /* open now */
    uint64_t requests;               /* requests whose headers were complete */
    uint64_t responses;              /* responses queued for writing, any status */
    uint64_t client_errors;          /* 400/408/413/431 produced by the server itself */
    uint64_t timeouts;               /* header and idle timeouts that closed a connection */
    uint64_t bytes_read;             /* raw bytes received */
    uint64_t bytes_written;          /* raw bytes of responses (status line, headers, body) */
};

struct rg_http_server;               /* opaque */

/** Called when a request's headers are complete, before any body byte is read (and
 *  before "100 Continue" is sent). Return 0 to continue (the body is then read and the
 *  handler called with @res as left here), or non-zero after setting @res->status (and
 *  optionally headers and body) to answer at once; the connection is then closed after
 *  the answer, since the unread body cannot be skipped. @req->body is empty here. */
typedef int (*rg_http_headers_cb)(const struct rg_http_request *req,
                                  struct rg_http_response *res, void *ud);

/** Called with the complete request. Fill @res and return: the server writes it.
 *  To answer later, call rg_http_request_defer(req) before returning and
 *  rg_http_request_finish(req) later; @req and @res stay valid until then. */
typedef void (*rg_http_handler_cb)(struct rg_http_request *req,
                                   struct rg_http_response *res, void *ud);

/** Fills @cfg with the defaults: host 0.0.0.0, port 9095, headers 64 KiB, body 32 MiB,
 *  header timeout 10 s, idle timeout 120 s, 1024 connections. */
void rg_http_server_config_default(struct rg_http_server_config *cfg);

/** Binds, listens and returns the running server in @out. Copies @cfg. @hook may be
 *  NULL (every request accepted); @handler must not be. @ud is passed to both.
 *  Returns 0, RG_EINVAL (bad host or config), RG_ENOMEM, or a negative libuv code
 *  (UV_EADDRINUSE, UV_EACCES, ...). When binding or listening fails, the listener
 *  handle is already closing and is released by the next uv_run() of @loop. */
int rg_http_server_start(uv_loop_t *loop, const struct rg_http_server_config *cfg,
                         rg_http_headers_cb hook, rg_http_handler_cb handler, void *ud,
                         struct rg_http_server **out);

/** Returns the bound TCP port (the ephemeral one when the configured port was 0). */
int rg_http_server_port(const struct rg_http_server *srv);

/** Copies the counters into @out. */
void rg_http_server_stats(const struct rg_http_server *srv, struct rg_http_server_stats *out);

/** Graceful stop: closes the listener and idle connections (also those still sending
 *  headers), lets requests whose headers are complete finish (responses are written
 *  with "Connection: close" and flushed), then closes every handle. @on_stopped (may
 *  be NULL) is called once, from a close callback, when no handle of the server is left
 *  open, so the caller may then let uv_run() return and call uv_loop_close(). The server
 *  frees itself just before @on_stopped runs: after rg_http_server_stop() only pending
 *  rg_http_request_finish() calls may still refer to it. A second call is ignored. */
void rg_http_server_stop(struct rg_http_server *srv, void (*on_stopped)(void *ud), void *ud);

/** Looks up a request header by name, case-insensitively. Returns the value of the
 *  first match (borrowed from @req) or NULL. */
const struct rg_slice *rg_http_request_header(const struct rg_http_request *req,
                                              const char *name);

/** Inside the handler only: the response will be completed later by
 *  rg_http_request_finish(). */
void rg_http_request_defer(struct rg_http_request *req);

/** Writes the response of a deferred request (its rg_http_response as filled by then).
 *  After it returns @req and its response must not be used. Calling it inside the
 *  handler after rg_http_request_defer() is allowed and simply undoes the deferral. */
void rg_http_request_finish(struct rg_http_request *req);

/** Appends the header "@name: @value" to @res (copies both). Returns 0, RG_ENOMEM, or
 *  RG_EINVAL when a name is empty or not a token, a value holds CR, LF or NUL, or the
 *  name is one the server writes itself (Content-Length, Transfer-Encoding, Connection). */
int rg_http_response_header(struct rg_http_response *res, const char *name, const char *value);

/** Returns the reason phrase of @status ("Not Found"), "Unknown" when unlisted. */
const char *rg_http_status_reason(int status);

#endif
