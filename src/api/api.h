/* api/api.h - rollgate's HTTP endpoints: routing and the handlers behind them.
 *
 * The HTTP server (http/server.h) hands every request to rg_api_on_headers() and
 * then rg_api_handle(); this module picks the endpoint by method and path:
 *
 *   POST /api/v1/write     remote-write 1.0 receiver (api/write.c)
 *   GET  /-/healthy        200 while the process runs
 *   GET  /-/ready          200 once serving, 503 while starting or stopping
 *   GET  /metrics          rollgate's own metrics, Prometheus text format 0.0.4
 *   /api/v1/query, query_range, series, labels, label/<name>/values, metadata,
 *   status/buildinfo      the Prometheus HTTP query API (api/query.c)
 *
 * All handlers run on the loop thread and answer synchronously. struct rg_api
 * borrows the configuration, store and metrics registry; it owns the remote-write
 * decoder and the metric children it registers.
 */
#ifndef RG_API_API_H
#define RG_API_API_H

#include <stdint.h>

#include "config/config.h"
#include "http/server.h"
#include "store/store.h"
#include "util/metrics.h"

struct rg_rw_decoder;
struct rg_rules;         /* rules/manager.h: Prometheus rule groups and alerts */
struct rg_deploy;        /* rules/deploy.h: deployments, phases and verdicts */

/** Counters of the remote-write endpoint (children of registry families). */
struct rg_api_write_metrics {
    struct rg_metrics_family *requests;          /* {code} */
    struct rg_metrics_family *rejected_samples;  /* {reason} */
    struct rg_metrics_family *rejected_series;   /* {reason} */
    struct rg_metrics_child *samples;            /* accepted samples */
    struct rg_metrics_child *exemplars;
    struct rg_metrics_child *histograms;
    struct rg_metrics_child *metadata;
    struct rg_metrics_child *series_created;
    struct rg_metrics_family *duration;          /* request latency histogram */
    struct rg_metrics_child *duration_all;
};

/** Gauges and counters read at scrape time (process and store figures). */
struct rg_api_process_metrics {
    struct rg_metrics_child *cpu;
    struct rg_metrics_child *rss;
    struct rg_metrics_child *vsz;
    struct rg_metrics_child *fds;
    struct rg_metrics_child *max_fds;
    struct rg_metrics_child *start;
    struct rg_metrics_child *series;
    struct rg_metrics_child *samples;
    struct rg_metrics_child *store_bytes;
    struct rg_metrics_child *conns_active;
    struct rg_metrics_child *conns_accepted;
    struct rg_metrics_child *conns_rejected;
    struct rg_metrics_child *http_requests;
};

struct rg_api {
    const struct rg_config *cfg;      /* borrowed */
    struct rg_store *store;           /* borrowed */
    struct rg_metrics *metrics;       /* borrowed */
    struct rg_http_server *http;      /* borrowed, for its stats; may be NULL */
    struct rg_rw_decoder *decoder;    /* owned; reused by every write request */
    struct rg_rules *rules;           /* borrowed; NULL when no rules are loaded */
    struct rg_deploy *deploy;         /* borrowed; NULL when no deployments are configured */
    int ready;                        /* /-/ready answers 200 when set */
    void (*on_ingest)(void *ud);       /* called after a write stored samples; may be NULL */
    void *on_ingest_ud;
    int64_t start_ms;                 /* process start, for process_start_time_seconds */
    struct rg_api_write_metrics wm;
    struct rg_api_process_metrics pm;
};

/** Prepares @api and registers its metrics in @metrics. Borrows all three.
 *  Returns 0 or RG_ENOMEM. */
int rg_api_init(struct rg_api *api, const struct rg_config *cfg, struct rg_store *store,
                struct rg_metrics *metrics);

/** Releases what @api owns. NULL is a no-op. */
void rg_api_cleanup(struct rg_api *api);

/** Lets /metrics report the server's connection counters. */
void rg_api_set_http(struct rg_api *api, struct rg_http_server *http);

/** The server's headers hook (ud is the struct rg_api): rejects a remote-write
 *  request with a wrong method, Content-Encoding or Content-Type before its body is
 *  read. */
int rg_api_on_headers(const struct rg_http_request *req, struct rg_http_response *res, void *ud);

/** The server's handler (ud is the struct rg_api). */
void rg_api_handle(struct rg_http_request *req, struct rg_http_response *res, void *ud);

/* ---- shared by the handler files (api/write.c, api/api.c) ---- */

/** Sets a plain-text response. */
void rg__api_text(struct rg_http_response *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Sets a Prometheus API error answer: @status and the body
 *  {"status":"error","errorType":@type,"error":<message>}, the message formatted from
 *  @fmt and JSON-escaped. Replaces any body written so far. */
void rg__api_error(struct rg_http_response *res, int status, const char *type,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/** Starts a Prometheus API success answer: status 200, a JSON content type and the body
 *  {"status":"success","data": ; the caller appends the data and the closing '}'. */
void rg__api_success_begin(struct rg_http_response *res);
/** Appends the labels @l (@n of them, borrowed) as a JSON object of names to values, in
 *  the order given, with rg_promql_labels_json. Like the other answer writers here it
 *  does not report a failed append (out of memory). */
void rg__api_put_labels(struct rg_buf *out, const struct rg_label *l, size_t n);
/** Remote-write: header checks (returns 0 to go on, else res is filled). */
int rg__api_write_headers(struct rg_api *api, const struct rg_http_request *req,
                          struct rg_http_response *res);
/** Remote-write: decode, validate and store the body. */
void rg__api_write(struct rg_api *api, struct rg_http_request *req, struct rg_http_response *res);
/** Query API: handles /api/v1/{query,query_range,series,labels,label/<n>/values,
 *  metadata,status/buildinfo}. Returns 1 when @req was one of them. */
int rg__api_query_route(struct rg_api *api, struct rg_http_request *req,
                        struct rg_http_response *res);
/** Parses a Prometheus API time (Unix seconds with fraction, or RFC 3339) into ms. */
int rg__api_parse_time(const char *s, int64_t *out_ms);
/** Parses a Prometheus API duration (float seconds or "5m") into ms. */
int rg__api_parse_duration(const char *s, int64_t *out_ms);
/** Deployments API (api/deployments.c): /api/v1/deployments[/{name}[/phase|trigger|
 *  reset]]. Returns 1 when @req was one of them. */
int rg__api_deployments_route(struct rg_api *api, struct rg_http_request *req,
                              struct rg_http_response *res);
/** Remote-write: registers its metric families. */
int rg__api_write_init(struct rg_api *api);
void rg__api_write_cleanup(struct rg_api *api);

#endif
