/* api/write.c - POST /api/v1/write: the remote-write 1.0 receiver.
 *
 * Order of checks follows the specification and Prometheus' own receiver: method
 * (405), Content-Encoding and Content-Type (415) before any body byte is read; then
 * snappy (declared size over the limit: 413; framed or corrupt: 400), the protobuf
 * walk (malformed: 400), and per series and per sample validation. Invalid series
 * and samples are dropped and counted by reason while the rest is stored, and the
 * answer is 400 with a body that says what was rejected and why; never 5xx for bad
 * data, since a sender retries 5xx forever. A fully accepted request gets 204 with an
 * empty body. An identical re-send is accepted (the store treats an equal sample at
 * the same timestamp as already present).
 */
#include "api/api.h"
#include "ingest/remote_write.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Sample-level rejections, in addition to the decoder's series-level ones. */
enum sample_reject {
    REJ_OUT_OF_ORDER,
    REJ_DUPLICATE,
    REJ_TOO_OLD,
    REJ_FUTURE,
    REJ_SERIES_LIMIT,
    REJ__COUNT
};

static const char *const sample_reject_names[REJ__COUNT] = {
    "out_of_order", "duplicate_timestamp", "too_old", "too_far_in_future", "series_limit",
};

struct write_ctx {
    struct rg_api *api;
    int64_t min_t;                 /* oldest timestamp still inside the retention */
    int64_t max_t;                 /* newest timestamp accepted (now + tolerance) */
    uint64_t appended;
    uint64_t idempotent;           /* identical re-sends, accepted without change */
    uint64_t created;
    uint64_t rejected[REJ__COUNT];
    uint64_t limited_series;       /* series refused by max_series */
    uint64_t metadata_failed;
};

static int on_series(void *ud, const struct rg_label_ref *labels, size_t nlabels,
                     const struct rg_sample *samples, size_t nsamples)
{
    struct write_ctx *w = ud;
    struct rg_series *series = NULL;
    int created = 0;
    int rc;

    for (size_t i = 0; i < nsamples; i++) {
        const struct rg_sample *s = &samples[i];
        if (s->t > w->max_t) {
            w->rejected[REJ_FUTURE]++;
            continue;
        }
        if (s->t < w->min_t) {
            w->rejected[REJ_TOO_OLD]++;
            continue;
        }
        if (!series) {
            /* The series is created only once a sample is known to be storable. */
            rc = rg_store_series_get(w->api->store, labels, nlabels, &series, &created);
            if (rc == RG_ELIMIT) {
                w->limited_series++;
                w->rejected[REJ_SERIES_LIMIT] += nsamples - i;
                return RG_ELIMIT;
            }
            if (rc)
                return rc;
            w->created += (uint64_t)created;
        }
        rc = rg_store_append(w->api->store, series, s->t, s->v);
        if (rc == 0)
            w->appended++;
        else if (rc == 1)
            w->idempotent++;
        else if (rc == RG_EORDER)
            w->rejected[REJ_OUT_OF_ORDER]++;
        else if (rc == RG_EDUP)
            w->rejected[REJ_DUPLICATE]++;
        else
            return rc;
    }
    return 0;
}

static int on_metadata(void *ud, enum rg_metric_type type, struct rg_slice family,
                       struct rg_slice help, struct rg_slice unit)
{
    struct write_ctx *w = ud;
    int rc = rg_store_metadata_set(w->api->store, family, type, help, unit);
    if (rc)
        w->metadata_failed++;
    return rc;
}

static void count_request(struct rg_api *api, int status)
{
    char code[8];
    const char *values[1] = { code };
    struct rg_metrics_child *c;

    snprintf(code, sizeof(code), "%d", status);
    c = rg_metrics_child(api->wm.requests, values);
    if (c)
        c->value += 1;
}

static void add_reason(struct rg_metrics_family *f, const char *reason, uint64_t n)
{
    const char *values[1] = { reason };
    struct rg_metrics_child *c;

    if (!n)
        return;
    c = rg_metrics_child(f, values);
    if (c)
        c->value += (double)n;
}

int rg__api_write_headers(struct rg_api *api, const struct rg_http_request *req,
                          struct rg_http_response *res)
{
    static const struct rg_slice empty = { "", 0 };
    const struct rg_slice *ce, *ct;
    const char *reason = NULL;
    int version;

    if (strcmp(req->method, "POST") != 0) {
        rg_http_response_header(res, "Allow", "POST");
        rg__api_text(res, 405, "method %s not allowed: remote write takes POST", req->method);
    } else if (rg_rw_check_encoding((ce = rg_http_request_header(req, "Content-Encoding"))
                                        ? *ce : empty)) {
        rg__api_text(res, 415, "%s", RG_RW_ENCODING_REASON);
    } else if (rg_rw_parse_content_type((ct = rg_http_request_header(req, "Content-Type"))
                                            ? *ct : empty, &version, &reason)) {
        rg__api_text(res, 415, "%s", reason ? reason : "unsupported Content-Type");
    } else {
        return 0;
    }
    count_request(api, res->status);
    return 1;
}

void rg__api_write(struct rg_api *api, struct rg_http_request *req, struct rg_http_response *res)
{
    struct write_ctx w;
    struct rg_rw_sink sink = { on_series, NULL, NULL, on_metadata, &w };
    struct rg_rw_result r;
    uint64_t start_ns = rg_mono_ns();
    int64_t now = rg_now_ms();
    uint64_t rejected_samples = 0;
    int rc;

    memset(&w, 0, sizeof(w));
    w.api = api;
    w.min_t = now - api->cfg->storage.retention_ms;
    w.max_t = now + api->cfg->remote_write.future_tolerance_ms;

    rc = rg_rw_decode_snappy_v1(api->decoder, req->body.data ? req->body.data : "",
                                req->body.len, api->cfg->remote_write.max_decompressed_bytes,
                                &sink, &r);
    if (rc == RG_ETOOBIG) {
        rg__api_text(res, 413, "%s", r.error[0] ? r.error : "decompressed body too large");
    } else if (rc == RG_EBADMSG) {
        rg__api_text(res, 400, "%s", r.error[0] ? r.error : "malformed request");
    } else if (rc) {
        rg_error("event=remote_write_failed err=%s", rg_err_name(rc));
        rg__api_text(res, 500, "internal error: %s", rg_strerror(rc));
    }

    /* Count what was stored and rejected, also when a late protobuf error cut the
     * request short: the series before it were stored. */
    api->wm.samples->value += (double)(w.appended + w.idempotent);
    api->wm.series_created->value += (double)w.created;
    api->wm.exemplars->value += (double)r.exemplars;
    api->wm.histograms->value += (double)r.histograms;
    api->wm.metadata->value += (double)r.metadata;
    for (int i = 0; i < RG_RW_REJECT__COUNT; i++) {
        add_reason(api->wm.rejected_series, rg_rw_reject_name(i), r.rejected_series[i]);
        add_reason(api->wm.rejected_samples, rg_rw_reject_name(i), r.rejected_samples[i]);
    }
    for (int i = 0; i < REJ__COUNT; i++) {
        add_reason(api->wm.rejected_samples, sample_reject_names[i], w.rejected[i]);
        rejected_samples += w.rejected[i];
    }
    add_reason(api->wm.rejected_series, "series_limit", w.limited_series);

    if (rc == 0) {
        if (rg_rw_result_rejected_series(&r) == 0 && rejected_samples == 0 &&
            r.rejected_metadata == 0) {
            res->status = 204;
        } else {
            struct rg_buf *b = &res->body;
            rg_rw_result_format(&r, b);
            if (rejected_samples) {
                int first = 1;
                rg_buf_printf(b, "%srejected %llu samples (", b->len ? "; " : "",
                              (unsigned long long)rejected_samples);
                for (int i = 0; i < REJ__COUNT; i++) {
                    if (!w.rejected[i])
                        continue;
                    rg_buf_printf(b, "%s%llu %s", first ? "" : ", ",
                                  (unsigned long long)w.rejected[i], sample_reject_names[i]);
                    first = 0;
                }
                rg_buf_putc(b, ')');
            }
            if (w.limited_series)
                rg_buf_printf(b, "; %llu new series over the limit of %zu series",
                              (unsigned long long)w.limited_series,
                              api->cfg->storage.max_series);
            rg_buf_printf(b, "; accepted %llu samples\n",
                          (unsigned long long)(w.appended + w.idempotent));
            res->status = 400;
            rg_http_response_header(res, "Content-Type", "text/plain; charset=utf-8");
        }
    }
    if (w.appended && api->on_ingest)
        api->on_ingest(api->on_ingest_ud);
    if (res->status >= 400)
        rg_debug("event=remote_write_rejected status=%d body_bytes=%zu", res->status,
                 req->body.len);
    count_request(api, res->status);
    rg_metrics_observe(api->wm.duration, api->wm.duration_all,
                       (double)(rg_mono_ns() - start_ns) / 1e9);
}

int rg__api_write_init(struct rg_api *api)
{
    static const char *const code[] = { "code" };
    static const char *const reason[] = { "reason" };
    static const double bounds[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                     0.025, 0.05, 0.1, 0.25, 0.5, 1 };
    struct rg_metrics *m = api->metrics;
    struct rg_api_write_metrics *wm = &api->wm;
    struct rg_metrics_family *f;
    int rc;

    rc = rg_rw_decoder_new(&api->decoder);
    if (rc)
        return rc;
    wm->requests = rg_metrics_family(m, "rollgate_remote_write_requests_total",
                                     "Remote-write requests by HTTP status code.",
                                     RG_METRICS_COUNTER, code, 1, NULL, 0);
    wm->rejected_samples = rg_metrics_family(m, "rollgate_remote_write_rejected_samples_total",
                                             "Samples received but not stored, by reason.",
                                             RG_METRICS_COUNTER, reason, 1, NULL, 0);
    wm->rejected_series = rg_metrics_family(m, "rollgate_remote_write_rejected_series_total",
                                            "Series received but not stored, by reason.",
                                            RG_METRICS_COUNTER, reason, 1, NULL, 0);
#define ONE(field, name, help) \
    f = rg_metrics_family(m, name, help, RG_METRICS_COUNTER, NULL, 0, NULL, 0); \
    wm->field = f ? rg_metrics_child(f, NULL) : NULL;
    ONE(samples, "rollgate_remote_write_samples_total", "Samples accepted by remote write.")
    ONE(exemplars, "rollgate_remote_write_exemplars_total",
        "Exemplars received by remote write (decoded and counted, not stored).")
    ONE(histograms, "rollgate_remote_write_histograms_total",
        "Native histogram samples received by remote write (decoded and counted, not stored).")
    ONE(metadata, "rollgate_remote_write_metadata_total",
        "Metric metadata entries received by remote write.")
    ONE(series_created, "rollgate_series_created_total", "Series created in memory.")
#undef ONE
    wm->duration = rg_metrics_family(m, "rollgate_remote_write_request_duration_seconds",
                                     "Time to decode, validate and store one remote-write request.",
                                     RG_METRICS_HISTOGRAM, NULL, 0, bounds,
                                     sizeof(bounds) / sizeof(bounds[0]));
    wm->duration_all = wm->duration ? rg_metrics_child(wm->duration, NULL) : NULL;
    if (!wm->requests || !wm->rejected_samples || !wm->rejected_series || !wm->samples ||
        !wm->exemplars || !wm->histograms || !wm->metadata || !wm->series_created ||
        !wm->duration_all) {
        rg_rw_decoder_free(api->decoder);
        api->decoder = NULL;
        return RG_ENOMEM;
    }
    /* Expose the success and the common rejection series from the start, at zero, so
     * that rate() over them works from the first scrape. */
    {
        const char *ok[1] = { "204" };
        const char *none[1] = { "out_of_order" };
        if (!rg_metrics_child(wm->requests, ok) || !rg_metrics_child(wm->rejected_samples, none))
            return RG_ENOMEM;
    }
    return 0;
}

void rg__api_write_cleanup(struct rg_api *api)
{
    rg_rw_decoder_free(api->decoder);
    api->decoder = NULL;
}
