/* query/client.h - PromQL over HTTP against Prometheus-compatible servers.
 *
 * Query mode asks a server (Prometheus, Thanos, Mimir, VictoriaMetrics) instead of
 * the in-memory store. A source is a named server from the `sources:` section of the
 * configuration (url, basic auth, bearer token file, TLS, extra headers such as
 * X-Scope-OrgID, timeout, query_offset), or an ad-hoc URL given on the command line.
 * Requests go through the shared libcurl-multi-on-libuv transport (notify/curl_uv.h)
 * as POST /api/v1/query and /api/v1/query_range forms; responses stream into the
 * bounded yajl parser of query/response.h. Concurrency is bounded per source (queued
 * beyond it). Errors and timeouts are counted in rollgate_query_errors_total{source,
 * reason} and reported to the caller; they never crash and never leave state behind.
 *
 * Loop thread only. The runner and the synchronous helpers run a private loop and are
 * meant for the command line (eval, replay, check --source), never inside the daemon.
 */
#ifndef RG_QUERY_CLIENT_H
#define RG_QUERY_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config/config.h"
#include "notify/curl_uv.h"
#include "query/response.h"
#include "util/buf.h"
#include "util/metrics.h"

/** One Prometheus-compatible server. Strings owned by the sources set. */
struct rg_query_source {
    char *name;                 /* "prometheus", or the URL for an ad-hoc source */
    char *url;                  /* base URL, without /api/v1/... */
    char *basic_user;           /* or NULL */
    char *basic_password;       /* read from password_file; secret, never logged */
    char *bearer_token;         /* read from bearer_token_file; secret */
    char **headers;             /* "Name: value" lines, e.g. "X-Scope-OrgID: tenant-1" */
    size_t nheaders;
    struct rg_http_tls tls;     /* strings owned */
    int64_t timeout_ms;         /* per query; default 30 s */
    int64_t query_offset_ms;    /* subtracted from instant-query times; default 0 */
    int max_concurrency;        /* queries in flight; default 4 */
    size_t max_response_bytes;  /* default 64 MiB */
    int64_t max_points;         /* points per series per range request; default 11,000 */
};

struct rg_query_sources {
    struct rg_query_source *v;
    size_t n;
};

/** Parses every `sources:` section of @cfg (a list of sources with the fields above;
 *  secrets from files). Problems are appended to @err as "file:line:col: message"
 *  lines. Returns 0, RG_EINVAL or RG_ENOMEM. *@out is owned by the caller. */
int rg_query_sources_parse(const struct rg_config *cfg, struct rg_query_sources **out,
                           struct rg_buf *err);

/** Adds an ad-hoc source for @url (name = url, defaults otherwise) and returns it. */
int rg_query_sources_add_url(struct rg_query_sources *s, const char *url,
                             const struct rg_query_source **out);

/** Finds a source by name; NULL when unknown. Pointers into the set stay valid until
 *  an rg_query_sources_add_url() grows it past 8, 16, 32... entries. */
const struct rg_query_source *rg_query_sources_find(const struct rg_query_sources *s,
                                                    const char *name);

/** Frees the set. NULL is a no-op. */
void rg_query_sources_free(struct rg_query_sources *s);

struct rg_query_client;    /* opaque */

/** Creates a client on @loop using the shared transport @cu (borrowed) and registers
 *  rollgate_query_errors_total{source,reason} and rollgate_queries_total{source} in
 *  @metrics (may be NULL). Returns 0 or RG_ENOMEM. */
int rg_query_client_new(uv_loop_t *loop, struct rg_curl_uv *cu, struct rg_metrics *metrics,
                        struct rg_query_client **out);

/** Cancels queued and in-flight queries (their callbacks run with RG_ECANCELED) and
 *  frees the client. NULL is a no-op. */
void rg_query_client_free(struct rg_query_client *c);

/** Completion of a query. @err is 0 or an RG_E* code: RG_ETIMEDOUT, RG_EEXEC (the
 *  server answered status "error"; its errorType and error are in @res), RG_EBADMSG
 *  (malformed, truncated or wrongly typed JSON), RG_ETOOBIG, RG_EIO (any non-2xx
 *  status without a Prometheus error body), a negated errno (connection).
 *  @msg is a one-line human-readable reason. @res is owned by the client and valid
 *  during the callback only (steal it by copying the struct and zeroing the original). */
typedef void (*rg_query_cb)(void *ud, int err, const char *msg, struct rg_query_result *res);

/** Instant query of @expr at @t_ms (minus the source's query_offset), time sent as
 *  Unix seconds with millisecond precision. */
int rg_query_instant(struct rg_query_client *c, const struct rg_query_source *src,
                     const char *expr, int64_t t_ms, rg_query_cb cb, void *ud);

/** Range query over [start, end] with @step_ms, split into requests of at most the
 *  source's max_points steps, merged into one matrix (series matched by label set,
 *  points in time order) before @cb runs once. */
int rg_query_range(struct rg_query_client *c, const struct rg_query_source *src,
                   const char *expr, int64_t start_ms, int64_t end_ms, int64_t step_ms,
                   rg_query_cb cb, void *ud);

/** Number of queries submitted to @c whose callback has not run yet. */
size_t rg_query_client_pending(const struct rg_query_client *c);

/** A runner is what a command-line command needs to send many queries cheaply: one
 *  private loop, one transport and one client for the whole command, so that every
 *  query reuses the transport's open connections, and several run at once (up to each
 *  source's max_concurrency; the client queues the rest). Main thread only; never
 *  inside the daemon, whose loop is already running. */
struct rg_query_runner;    /* opaque */

/** Creates a runner. Returns 0, RG_ENOMEM, RG_EIO (libcurl) or a libuv error. */
int rg_query_runner_new(struct rg_query_runner **out);

/** The runner's client (owned by the runner): submit queries with rg_query_instant()
 *  and rg_query_range(), then call rg_query_runner_wait(). */
struct rg_query_client *rg_query_runner_client(struct rg_query_runner *r);

/** Runs the loop until every query submitted to the runner's client has called back.
 *  Returns 0, or RG_EIO when the loop ran out of work with queries still pending (then
 *  they have been cancelled: their callbacks ran with RG_ECANCELED). */
int rg_query_runner_wait(struct rg_query_runner *r);

/** Blocking queries on the runner: like rg_query_instant_sync() and
 *  rg_query_range_sync(), without a loop and transport of their own. */
int rg_query_runner_instant(struct rg_query_runner *r, const struct rg_query_source *src,
                            const char *expr, int64_t t_ms, struct rg_query_result *out,
                            struct rg_buf *errmsg);
int rg_query_runner_range(struct rg_query_runner *r, const struct rg_query_source *src,
                          const char *expr, int64_t start_ms, int64_t end_ms, int64_t step_ms,
                          struct rg_query_result *out, struct rg_buf *errmsg);

/** Cancels what is pending (callbacks with RG_ECANCELED), closes the transport and the
 *  loop, and frees the runner. NULL is a no-op. */
void rg_query_runner_free(struct rg_query_runner *r);

/** Blocking helpers for a single query: run a private loop and transport until the
 *  query completes (a runner for one query; for more, use one runner). On success
 *  *@out holds the result (free with rg_query_result_free()); on failure @errmsg holds
 *  the reason. */
int rg_query_instant_sync(const struct rg_query_source *src, const char *expr, int64_t t_ms,
                          struct rg_query_result *out, struct rg_buf *errmsg);
int rg_query_range_sync(const struct rg_query_source *src, const char *expr, int64_t start_ms,
                        int64_t end_ms, int64_t step_ms, struct rg_query_result *out,
                        struct rg_buf *errmsg);

#endif
