/* api/api.c - routing, health endpoints, the /metrics exposition and the Prometheus API
 * answer envelope ({"status":"success","data":...} or {"status":"error",...}) that the
 * query, rules and deployments handlers share.
 *
 * Process metrics follow the Prometheus client conventions (process_cpu_seconds_total,
 * process_resident_memory_bytes, process_open_fds, ...) and are read from /proc at
 * scrape time by a collector callback, so nothing is sampled in the background.
 */
#include "api/api.h"
#include "promql/labels.h"
#include "rules/manager.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"
#include "util/time.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

void rg__api_text(struct rg_http_response *res, int status, const char *fmt, ...)
{
    va_list ap;

    res->status = status;
    rg_buf_reset(&res->body);
    va_start(ap, fmt);
    rg_buf_vprintf(&res->body, fmt, ap);
    va_end(ap);
    rg_buf_putc(&res->body, '\n');
    rg_http_response_header(res, "Content-Type", "text/plain; charset=utf-8");
}

void rg__api_error(struct rg_http_response *res, int status, const char *type,
                   const char *fmt, ...)
{
    struct rg_buf msg = { 0 };
    va_list ap;

    va_start(ap, fmt);
    rg_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    res->status = status;
    rg_buf_reset(&res->body);
    rg_buf_printf(&res->body, "{\"status\":\"error\",\"errorType\":\"%s\",\"error\":", type);
    rg_json_string(&res->body, msg.data ? msg.data : "", msg.len);
    rg_buf_putc(&res->body, '}');
    rg_buf_cleanup(&msg);
    rg_http_response_header(res, "Content-Type", "application/json");
}

void rg__api_success_begin(struct rg_http_response *res)
{
    res->status = 200;
    rg_buf_reset(&res->body);
    rg_buf_puts(&res->body, "{\"status\":\"success\",\"data\":");
    rg_http_response_header(res, "Content-Type", "application/json");
}

void rg__api_put_labels(struct rg_buf *out, const struct rg_label *l, size_t n)
{
    rg_promql_labels_json(l, n, out);
}

static void collect(struct rg_metrics *m, void *ud)
{
    struct rg_api *api = ud;
    struct rg_api_process_metrics *pm = &api->pm;
    struct rusage ru;
    struct rlimit rl;
    long page = sysconf(_SC_PAGESIZE);
    unsigned long vsz_pages = 0, rss_pages = 0;
    FILE *f;
    DIR *dir;
    (void)m;

    if (getrusage(RUSAGE_SELF, &ru) == 0)
        pm->cpu->value = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                        (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu %lu", &vsz_pages, &rss_pages) == 2) {
            pm->rss->value = (double)rss_pages * (double)page;
            pm->vsz->value = (double)vsz_pages * (double)page;
        }
        fclose(f);
    }
    dir = opendir("/proc/self/fd");
    if (dir) {
        double n = 0;
        while (readdir(dir))
            n++;
        closedir(dir);
        pm->fds->value = n - 3;   /* ".", ".." and the directory's own descriptor */
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        pm->max_fds->value = (double)rl.rlim_cur;
    pm->start->value = (double)api->start_ms / 1000.0;
    pm->series->value = (double)rg_store_series_count(api->store);
    pm->samples->value = (double)rg_store_sample_count(api->store);
    pm->store_bytes->value = (double)rg_store_bytes(api->store);
    if (api->http) {
        struct rg_http_server_stats st;
        rg_http_server_stats(api->http, &st);
        pm->conns_active->value = (double)st.connections_active;
        pm->conns_accepted->value = (double)st.connections_accepted;
        pm->conns_rejected->value = (double)st.connections_rejected;
        pm->http_requests->value = (double)st.requests;
    }
}

static struct rg_metrics_child *simple(struct rg_metrics *m, const char *name, const char *help,
                                       enum rg_metrics_kind kind)
{
    struct rg_metrics_family *f = rg_metrics_family(m, name, help, kind, NULL, 0, NULL, 0);
    return f ? rg_metrics_child(f, NULL) : NULL;
}

static int register_process_metrics(struct rg_api *api)
{
    struct rg_metrics *m = api->metrics;
    struct rg_api_process_metrics *pm = &api->pm;
    static const char *const bi_labels[] = { "version", "revision" };
    static const char *const bi_values[] = { RG_VERSION, RG_GIT_SHA };
    struct rg_metrics_family *bi;
    struct rg_metrics_child *bic;

    pm->cpu = simple(m, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                    RG_METRICS_COUNTER);
    pm->rss = simple(m, "process_resident_memory_bytes", "Resident memory size in bytes.",
                    RG_METRICS_GAUGE);
    pm->vsz = simple(m, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                    RG_METRICS_GAUGE);
    pm->fds = simple(m, "process_open_fds", "Number of open file descriptors.", RG_METRICS_GAUGE);
    pm->max_fds = simple(m, "process_max_fds", "Maximum number of open file descriptors.",
                        RG_METRICS_GAUGE);
    pm->start = simple(m, "process_start_time_seconds",
                      "Start time of the process since unix epoch in seconds.", RG_METRICS_GAUGE);
    pm->series = simple(m, "rollgate_series_active", "Series held in memory.", RG_METRICS_GAUGE);
    pm->samples = simple(m, "rollgate_samples_in_memory", "Samples held in memory over all series.",
                        RG_METRICS_GAUGE);
    pm->store_bytes = simple(m, "rollgate_store_bytes",
                            "Approximate bytes of memory held by the series store.",
                            RG_METRICS_GAUGE);
    pm->conns_active = simple(m, "rollgate_http_connections_active", "Open HTTP connections.",
                             RG_METRICS_GAUGE);
    pm->conns_accepted = simple(m, "rollgate_http_connections_accepted_total",
                               "HTTP connections accepted.", RG_METRICS_COUNTER);
    pm->conns_rejected = simple(m, "rollgate_http_connections_rejected_total",
                               "HTTP connections closed at once because of the connection cap.",
                               RG_METRICS_COUNTER);
    pm->http_requests = simple(m, "rollgate_http_requests_total", "HTTP requests received.",
                              RG_METRICS_COUNTER);
    bi = rg_metrics_family(m, "rollgate_build_info",
                           "A metric with a constant '1' value labeled by version and revision.",
                           RG_METRICS_GAUGE, bi_labels, 2, NULL, 0);
    bic = bi ? rg_metrics_child(bi, bi_values) : NULL;
    if (!pm->cpu || !pm->rss || !pm->vsz || !pm->fds || !pm->max_fds || !pm->start || !pm->series ||
        !pm->samples || !pm->store_bytes || !pm->conns_active || !pm->conns_accepted ||
        !pm->conns_rejected || !pm->http_requests || !bic)
        return RG_ENOMEM;
    bic->value = 1;
    return rg_metrics_on_collect(m, collect, api);
}

int rg_api_init(struct rg_api *api, const struct rg_config *cfg, struct rg_store *store,
                struct rg_metrics *metrics)
{
    int rc;

    memset(api, 0, sizeof(*api));
    api->cfg = cfg;
    api->store = store;
    api->metrics = metrics;
    api->start_ms = rg_now_ms();
    rc = register_process_metrics(api);
    if (rc)
        return rc;
    return rg__api_write_init(api);
}

void rg_api_cleanup(struct rg_api *api)
{
    if (!api)
        return;
    rg__api_write_cleanup(api);
}

void rg_api_set_http(struct rg_api *api, struct rg_http_server *http)
{
    api->http = http;
}

static int path_is(const struct rg_http_request *req, const char *p)
{
    return rg_slice_eq(req->path, p);
}

int rg_api_on_headers(const struct rg_http_request *req, struct rg_http_response *res, void *ud)
{
    struct rg_api *api = ud;

    if (path_is(req, "/api/v1/write"))
        return rg__api_write_headers(api, req, res);
    return 0;
}

static void handle_metrics(struct rg_api *api, struct rg_http_response *res)
{
    if (rg_metrics_render(api->metrics, &res->body)) {
        rg__api_text(res, 500, "out of memory rendering metrics");
        return;
    }
    res->status = 200;
    rg_http_response_header(res, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
}

void rg_api_handle(struct rg_http_request *req, struct rg_http_response *res, void *ud)
{
    struct rg_api *api = ud;
    int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;

    if (path_is(req, "/api/v1/write")) {
        rg__api_write(api, req, res);
        return;
    }
    if (rg__api_query_route(api, req, res))
        return;
    if (rg__api_deployments_route(api, req, res))
        return;
    if (rg__api_rules_route(api, req, res))
        return;
    if (path_is(req, "/-/healthy") || path_is(req, "/-/ready") || path_is(req, "/metrics")) {
        if (!get) {
            rg_http_response_header(res, "Allow", "GET, HEAD");
            rg__api_text(res, 405, "method %s not allowed", req->method);
            return;
        }
        if (path_is(req, "/metrics"))
            handle_metrics(api, res);
        else if (path_is(req, "/-/healthy"))
            rg__api_text(res, 200, "rollgate is Healthy.");
        else if (api->ready)
            rg__api_text(res, 200, "rollgate is Ready.");
        else
            rg__api_text(res, 503, "Service Unavailable");
        return;
    }
    rg__api_text(res, 404, "404 page not found");
}
