/* tests/tools/rwgen.c - deterministic remote-write data generator and sender.
 *
 * Integration and differential tests need the same data in rollgate and in reference
 * servers (Prometheus, VictoriaMetrics). rwgen generates a scenario's samples from a
 * seed, encodes them once as remote-write 1.0 requests (ingest/rw_encode) and POSTs
 * every request to each --url in turn, so every receiver gets byte-identical bodies.
 *
 *   rwgen --url URL [--url URL2 ...] --scenario promql|service|bench
 *         --start-ms T --end-ms T --step-ms S [--seed N] [--jitter-ms J] [--job NAME]
 *         [--jobs N] [--error-ratio R] [--latency-scale X] [--label NAME=VALUE ...]
 *         [--chunk N] [--timeout-s S] [--print]
 *
 * Time: step k (k = 0, 1, ...) has base time start + k * step, for every base time up
 * to and including end. With --jitter-ms J > 0 each sample is moved 1..J ms later
 * (uniformly, from the seed; J is capped at step - 2), and a sample that would still
 * land on a whole second is moved one more millisecond, so no sample ever sits on a
 * multiple of 1000 ms and query windows with whole-second bounds never hit one
 * exactly. Each series' samples stay strictly increasing in time.
 *
 * Sending: samples go out step by step, time order, in requests of at most --chunk
 * (default 2000) samples; a request never holds a later step of a series before an
 * earlier one, and requests are sent one after another, so receivers that require
 * in-order samples accept everything (scenario `bench` sends series by series
 * instead, see there). Every response must be 2xx, or rwgen prints
 * the status and body and exits 1. The first request also carries the metadata
 * (type, help, unit) of the scenario's metric families. --print writes every sample
 * to stdout as `{labels} timestamp_ms value` (value "stale" for a stale marker);
 * with --print, --url is optional.
 *
 * Scenario `promql` (default jitter 999 ms), for PromQL differential tests; job =
 * --job (default "rwgen"):
 *   http_requests_total{code="200"|"500", instance="10.0.0.1:8080"|"10.0.0.2:8080",
 *       job, method="GET"|"POST"}           8 integer counters with random increments;
 *       each resets to a small value with probability 1/50 per step, and the first
 *       one always resets at the middle step.
 *   process_cpu_seconds_total{instance="10.0.0.1:8080"|"10.0.0.2:8080", job}
 *                                           float counters, reset at 2/3 of the range.
 *   http_request_duration_seconds_bucket{instance, job, le} (12 buckets: 0.005 0.01
 *       0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 +Inf), _sum and _count, for both instances:
 *       a classic histogram, cumulative across buckets and monotonic in time.
 *   node_temperature_celsius{instance="10.0.0.1:9100", job}
 *                                           gauge random walk around 50; each sample is
 *       missing with probability 1/10, and none exist from 30 % to 45 % of the steps.
 *   signal_level_dbm{instance="10.0.0.1:9100", job}
 *                                           gauge random walk with negative values.
 *   queue_depth{job, queue="q1"}            integer gauge; a stale marker (NaN bits
 *       0x7ff0000000000002) at 40 % of the steps, silent until 60 %, then resumes.
 *   queue_depth{job, queue="q2"}            integer gauge; a stale marker at 70 %, then
 *       nothing more.
 *
 * Scenario `service` (default jitter 0), a healthy web service for deployment tests;
 * job = --job (default "rwgen"), instances "10.1.0.1:8080" and "10.1.0.2:8080":
 *   http_requests_total{code="200"|"500", instance, job}
 *       about 40 requests/s per instance (integer increments, +-10 %); exactly a
 *       fraction --error-ratio R (default 0) of them, accumulated with carry, counts
 *       as code 500. The code="500" series exist even when R is 0.
 *   http_request_duration_seconds_bucket{instance, job, le} (same 12 buckets), _sum,
 *       _count: every request is observed; the latency distribution is fixed, with
 *       30 % <= 5 ms, 60 % <= 10 ms, 90 % <= 25 ms, 99.2 % <= 50 ms, 99.8 % <= 100 ms,
 *       99.95 % <= 250 ms, all <= 500 ms (piecewise linear in between), so
 *       histogram_quantile(0.99, ...) is about 0.0495 s and the mean 12.6 ms.
 *       --latency-scale X multiplies every latency by X (P99 about X * 49.5 ms).
 *   container_cpu_usage_seconds_total{container="app", instance, job}
 *                                           about 0.25 CPU-seconds per second.
 *   container_memory_working_set_bytes{container="app", instance, job}
 *                                           gauge, 200 MB +- 10 MB.
 *   up{instance, job}                       always 1.
 * --jobs N (service only) generates N such services instead of one, a fleet for the
 * query-mode benchmark: jobs "NAME-1" ... "NAME-N", the number zero-padded to the
 * width of N (--job svc --jobs 100: "svc-001" ... "svc-100"), all with the same
 * options and their own random draws, each step of every job in one request when
 * --chunk allows. Without --jobs the output is that of a single service named NAME.
 *
 * Scenario `bench` (default jitter 999 ms, default --chunk 500000), the data set of
 * the PromQL benchmark (bench/run.sh, section promql), sized like a mid-sized fleet:
 * 10 jobs ("api-gateway", "auth", ..., "users") of 10 instances each
 * ("10.<20+job>.<i/4>.<10+i>:8080"); --job is not used.
 *   http_requests_total{code, handler, instance, job, method}
 *       100,000 integer counters: per instance 25 handlers ("/api/v1/items", ...,
 *       "/healthz", "/") x 4 methods (GET 70 %, POST 20 %, PUT 7 %, DELETE 3 % of
 *       the requests) x 10 codes (200 80 %, 201 5 %, 204 3 %, 304 5 %, 400 2 %,
 *       404 3 %, 429 0.5 %, 500 0.8 %, 502 0.1 %, 503 0.6 %; 5xx 1.5 %), about
 *       100 requests/s per instance, handler popularity 0.2-2x per job and instance
 *       load 0.7-1.3x. Counters start where an uptime of 1 h to 30 days would have
 *       left them and never reset; increments are rounded stochastically, so slow
 *       series stay flat most steps and count an occasional request.
 *   req_duration_seconds_bucket{handler, instance, job, le} (the same 12 buckets),
 *       _sum and _count: 1,000 classic histograms (the first 10 handlers of every
 *       instance; 12,000 bucket series), cumulative across buckets and monotonic in
 *       time, with the service scenario's latency distribution scaled 0.5-2x per
 *       histogram, and 10-20x for the slow handlers (every 7th, from the 4th).
 * In all 114,000 series. Sending goes block by block instead of step by step: a block
 * is as many series as fit --chunk with all their steps (whole histograms), and each
 * block's samples, in time order per series, are sent before the next block's; a
 * series' labels thus travel once per request instead of once per step, about a
 * tenth of the bytes. Receivers only need samples in time order per series, which
 * this keeps. With the defaults, 30 minutes every 15 s (121 steps) is 13.8 million
 * samples in 29 requests of at most 9.6 MB uncompressed (rollgate's default limit is
 * 32 MiB), 4 MB compressed.
 *
 * --label NAME=VALUE adds (or overrides) a label on every series, e.g. a version.
 * Exit status: 0 success, 1 a send failed, 2 bad usage.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/rw_encode.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

#define MAX_URLS 16
#define MAX_EXTRA 16
#define MAX_LABELS 32
#define MAX_RESPONSE 4096
#define NBUCKETS 12

static const double bucket_le[NBUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, INFINITY,
};
static const char *const bucket_le_text[NBUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
};

struct series {
    struct rg_label_ref labels[MAX_LABELS];   /* strings owned by gen.strings */
    size_t nl;
    struct rg_sample *pend;                   /* owned; samples not yet sent */
    size_t npend, cap;
};

struct metadata {
    enum rg_metric_type type;
    const char *family, *help, *unit;         /* static strings */
};

struct target {
    const char *url;
    CURL *curl;                               /* owned; keeps its connection alive */
};

struct gen {
    /* options */
    const char *scenario;
    const char *job;
    int64_t njobs;                            /* --jobs; 0: one job named job */
    int64_t start_ms, end_ms, step_ms, jitter_ms;
    uint64_t seed;
    double error_ratio;
    double latency_scale;
    size_t chunk;
    long timeout_s;
    int print;
    const char *extra_name[MAX_EXTRA], *extra_value[MAX_EXTRA];
    size_t nextra;
    struct target targets[MAX_URLS];
    size_t ntargets;

    /* state */
    uint64_t rng;
    struct series *series;                    /* owned array */
    size_t nseries, series_cap;
    char **strings;                           /* owned label strings */
    size_t nstrings, strings_cap;
    struct metadata md[16];
    size_t nmd;
    int md_sent;
    size_t pending;                           /* samples over all series not yet sent */
    struct rg_rw_encoder enc;
    struct rg_buf body;
    struct curl_slist *headers;               /* owned */
    uint64_t sent_samples, sent_requests;
};

/* ---- Helpers --------------------------------------------------------------------- */

/* splitmix64: small, fast, and the same sequence on every platform. */
static uint64_t rnd(struct gen *g)
{
    uint64_t z = (g->rng += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* A double carrying the stale-marker bits exactly. */
static double stale_marker(void)
{
    uint64_t bits = RG_STALE_NAN_BITS;
    double v;

    memcpy(&v, &bits, sizeof(v));
    return v;
}

/* Uniform in [0, 1). */
static double uni(struct gen *g)
{
    return (double)(rnd(g) >> 11) * (1.0 / 9007199254740992.0);
}

static void die_nomem(void)
{
    fprintf(stderr, "rwgen: out of memory\n");
    exit(1);
}

static const char *keep_string(struct gen *g, const char *s)
{
    char *copy;

    if (g->nstrings == g->strings_cap) {
        size_t cap = g->strings_cap ? g->strings_cap * 2 : 64;
        char **p = realloc(g->strings, cap * sizeof(*p));

        if (!p)
            die_nomem();
        g->strings = p;
        g->strings_cap = cap;
    }
    copy = strdup(s);
    if (!copy)
        die_nomem();
    g->strings[g->nstrings++] = copy;
    return copy;
}

/* Adds a series named @name with the NULL-terminated name/value list @kv plus the
 * --label extras (which win over scenario labels of the same name); labels are
 * sorted by name as remote-write requires. Returns the series index. */
static size_t add_series(struct gen *g, const char *name, const char *const *kv)
{
    const char *names[MAX_LABELS], *values[MAX_LABELS];
    struct series *s;
    size_t n = 0;

    names[n] = "__name__";
    values[n++] = name;
    for (size_t i = 0; kv[i] && kv[i + 1] && n < MAX_LABELS; i += 2) {
        names[n] = kv[i];
        values[n++] = kv[i + 1];
    }
    for (size_t e = 0; e < g->nextra; e++) {
        size_t i;

        for (i = 0; i < n; i++)
            if (strcmp(names[i], g->extra_name[e]) == 0)
                break;
        if (i == n && n == MAX_LABELS)
            continue;
        names[i] = g->extra_name[e];
        values[i] = g->extra_value[e];
        if (i == n)
            n++;
    }
    /* Insertion sort: a handful of labels. */
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *tn = names[j], *tv = values[j];

            names[j] = names[j - 1];
            values[j] = values[j - 1];
            names[j - 1] = tn;
            values[j - 1] = tv;
        }
    }
    if (g->nseries == g->series_cap) {
        size_t cap = g->series_cap ? g->series_cap * 2 : 32;
        struct series *p = realloc(g->series, cap * sizeof(*p));

        if (!p)
            die_nomem();
        g->series = p;
        g->series_cap = cap;
    }
    s = &g->series[g->nseries];
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < n; i++) {
        const char *kn = keep_string(g, names[i]), *kv2 = keep_string(g, values[i]);

        s->labels[i].name = (struct rg_slice){ kn, strlen(kn) };
        s->labels[i].value = (struct rg_slice){ kv2, strlen(kv2) };
    }
    s->nl = n;
    return g->nseries++;
}

static void add_metadata(struct gen *g, enum rg_metric_type type, const char *family,
                         const char *help, const char *unit)
{
    if (g->nmd < sizeof(g->md) / sizeof(g->md[0]))
        g->md[g->nmd++] = (struct metadata){ type, family, help, unit };
}

/* ---- Sending --------------------------------------------------------------------- */

static size_t on_response(char *p, size_t size, size_t n, void *ud)
{
    struct rg_buf *b = ud;
    size_t len = size * n;

    if (b->len < MAX_RESPONSE)
        rg_buf_append(b, p, len < MAX_RESPONSE - b->len ? len : MAX_RESPONSE - b->len);
    return len;
}

static int post(struct gen *g, struct target *t)
{
    struct rg_buf resp = { 0 };
    long code = 0;
    CURLcode rc;

    curl_easy_setopt(t->curl, CURLOPT_URL, t->url);
    curl_easy_setopt(t->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, g->body.data);
    curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)g->body.len);
    curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, g->headers);
    curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, on_response);
    curl_easy_setopt(t->curl, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(t->curl, CURLOPT_TIMEOUT, g->timeout_s);
    curl_easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L);
    rc = curl_easy_perform(t->curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK || code < 200 || code > 299) {
        if (rc != CURLE_OK)
            fprintf(stderr, "rwgen: POST %s failed: %s\n", t->url, curl_easy_strerror(rc));
        else
            fprintf(stderr, "rwgen: POST %s: status %ld, request %" PRIu64 ", body: %.*s\n",
                    t->url, code, g->sent_requests + 1, (int)resp.len,
                    resp.data ? resp.data : "");
        rg_buf_cleanup(&resp);
        return -1;
    }
    rg_buf_cleanup(&resp);
    return 0;
}

static void print_sample(const struct series *s, const struct rg_sample *smp)
{
    uint64_t bits;

    memcpy(&bits, &smp->v, sizeof(bits));
    putchar('{');
    for (size_t i = 0; i < s->nl; i++)
        printf("%s%.*s=\"%.*s\"", i ? "," : "", (int)s->labels[i].name.len,
               s->labels[i].name.ptr, (int)s->labels[i].value.len, s->labels[i].value.ptr);
    if (bits == RG_STALE_NAN_BITS)
        printf("} %" PRId64 " stale\n", smp->t);
    else
        printf("} %" PRId64 " %.17g\n", smp->t, smp->v);
}

/* Encodes every pending sample into one request and sends it to every target. */
static int flush(struct gen *g)
{
    int err = 0;

    if (!g->pending && (g->md_sent || !g->nmd))
        return 0;
    rg_rw_encoder_reset(&g->enc);
    for (size_t i = 0; i < g->nseries && !err; i++) {
        struct series *s = &g->series[i];

        if (!s->npend)
            continue;
        err = rg_rw_encoder_add_series(&g->enc, s->labels, s->nl, s->pend, s->npend);
        if (g->print)
            for (size_t j = 0; j < s->npend; j++)
                print_sample(s, &s->pend[j]);
    }
    if (!g->md_sent) {
        for (size_t i = 0; i < g->nmd && !err; i++) {
            const struct metadata *m = &g->md[i];

            err = rg_rw_encoder_add_metadata(&g->enc, m->type,
                                             (struct rg_slice){ m->family, strlen(m->family) },
                                             (struct rg_slice){ m->help, strlen(m->help) },
                                             (struct rg_slice){ m->unit, strlen(m->unit) });
        }
        g->md_sent = 1;
    }
    if (!err)
        err = rg_rw_encoder_finish(&g->enc, &g->body);
    if (err) {
        fprintf(stderr, "rwgen: encoding failed: %s\n", rg_strerror(err));
        return -1;
    }
    for (size_t i = 0; i < g->ntargets; i++)
        if (post(g, &g->targets[i]) != 0)
            return -1;
    g->sent_requests++;
    g->sent_samples += g->pending;
    for (size_t i = 0; i < g->nseries; i++)
        g->series[i].npend = 0;
    g->pending = 0;
    return 0;
}

/* Queues one sample of series @idx; sends a request when the chunk is full. */
static int emit(struct gen *g, size_t idx, int64_t t, double v)
{
    struct series *s = &g->series[idx];

    if (s->npend == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct rg_sample *p = realloc(s->pend, cap * sizeof(*p));

        if (!p)
            die_nomem();
        s->pend = p;
        s->cap = cap;
    }
    s->pend[s->npend++] = (struct rg_sample){ t, v };
    g->pending++;
    return g->pending >= g->chunk ? flush(g) : 0;
}

/* The timestamp of one sample at step @k: the base time, moved by the jitter. */
static int64_t sample_time(struct gen *g, int64_t k)
{
    int64_t t = g->start_ms + k * g->step_ms;

    if (g->jitter_ms > 0) {
        t += 1 + (int64_t)(rnd(g) % (uint64_t)g->jitter_ms);
        if (t % 1000 == 0)
            t++;
    }
    return t;
}

/* ---- Scenario promql --------------------------------------------------------------- */

struct promql_state {
    size_t req[8];                 /* http_requests_total series */
    double req_v[8], req_rate[8];  /* value; requests per second */
    size_t cpu[2];
    double cpu_v[2];
    size_t bucket[2][NBUCKETS], hsum[2], hcount[2];
    double bucket_v[2][NBUCKETS], hsum_v[2], hcount_v[2];
    size_t temp, signal, q1, q2;
    double temp_v, signal_v, q1_v, q2_v;
};

static void promql_setup(struct gen *g, struct promql_state *st)
{
    static const char *const instances[2] = { "10.0.0.1:8080", "10.0.0.2:8080" };
    static const char *const methods[2] = { "GET", "POST" };
    static const char *const codes[2] = { "200", "500" };
    static const double rates[2][2] = { { 10, 0.5 }, { 3, 0.2 } };   /* [method][code] */
    size_t n = 0;

    memset(st, 0, sizeof(*st));
    for (int i = 0; i < 2; i++)
        for (int m = 0; m < 2; m++)
            for (int c = 0; c < 2; c++) {
                const char *kv[] = { "code", codes[c], "instance", instances[i], "job", g->job,
                                     "method", methods[m], NULL };

                st->req[n] = add_series(g, "http_requests_total", kv);
                st->req_rate[n] = rates[m][c] * (i ? 0.7 : 1.0);
                st->req_v[n] = (double)(rnd(g) % 1000);
                n++;
            }
    for (int i = 0; i < 2; i++) {
        const char *kv[] = { "instance", instances[i], "job", g->job, NULL };

        st->cpu[i] = add_series(g, "process_cpu_seconds_total", kv);
        st->cpu_v[i] = 100 * uni(g);
    }
    for (int i = 0; i < 2; i++) {
        const char *kv[] = { "instance", instances[i], "job", g->job, NULL };

        for (int b = 0; b < NBUCKETS; b++) {
            const char *kvb[] = { "instance", instances[i], "job", g->job, "le",
                                  bucket_le_text[b], NULL };

            st->bucket[i][b] = add_series(g, "http_request_duration_seconds_bucket", kvb);
        }
        st->hsum[i] = add_series(g, "http_request_duration_seconds_sum", kv);
        st->hcount[i] = add_series(g, "http_request_duration_seconds_count", kv);
    }
    {
        const char *kv[] = { "instance", "10.0.0.1:9100", "job", g->job, NULL };
        const char *kq1[] = { "job", g->job, "queue", "q1", NULL };
        const char *kq2[] = { "job", g->job, "queue", "q2", NULL };

        st->temp = add_series(g, "node_temperature_celsius", kv);
        st->signal = add_series(g, "signal_level_dbm", kv);
        st->q1 = add_series(g, "queue_depth", kq1);
        st->q2 = add_series(g, "queue_depth", kq2);
    }
    st->temp_v = 50;
    st->signal_v = -60;
    st->q1_v = 10;
    st->q2_v = 5;

    add_metadata(g, RG_METRIC_COUNTER, "http_requests_total", "Requests served.", "");
    add_metadata(g, RG_METRIC_COUNTER, "process_cpu_seconds_total", "CPU time used.",
                 "seconds");
    add_metadata(g, RG_METRIC_HISTOGRAM, "http_request_duration_seconds",
                 "Request latency.", "seconds");
    add_metadata(g, RG_METRIC_GAUGE, "node_temperature_celsius", "Temperature.", "celsius");
    add_metadata(g, RG_METRIC_GAUGE, "signal_level_dbm", "Signal level.", "");
    add_metadata(g, RG_METRIC_GAUGE, "queue_depth", "Items waiting.", "");
}


/* Step @k of @nsteps; percentages of the range place the gaps and stale markers. */
static int promql_step(struct gen *g, struct promql_state *st, int64_t k, int64_t nsteps)
{
    /* Share of each step's observations falling in each bucket (not cumulative; the
     * shares sum to 1), and a typical latency inside each bucket for the sum. */
    static const double share[NBUCKETS] = {
        0.05, 0.10, 0.20, 0.25, 0.15, 0.10, 0.06, 0.04, 0.03, 0.01, 0.008, 0.002,
    };
    static const double mid[NBUCKETS] = {
        0.003, 0.0075, 0.0175, 0.0375, 0.075, 0.175, 0.375, 0.75, 1.75, 3.75, 7.5, 15,
    };
    double step_s = (double)g->step_ms / 1000.0;
    int64_t p30 = nsteps * 30 / 100, p40 = nsteps * 40 / 100, p45 = nsteps * 45 / 100;
    int64_t p60 = nsteps * 60 / 100, p70 = nsteps * 70 / 100;
    int err = 0;

    for (int i = 0; i < 8 && !err; i++) {
        double inc = floor(st->req_rate[i] * step_s * (0.5 + uni(g)) + 0.5);
        int reset = rnd(g) % 50 == 0 || (i == 0 && k == nsteps / 2 && k > 0);

        st->req_v[i] = reset ? inc : st->req_v[i] + inc;
        err = emit(g, st->req[i], sample_time(g, k), st->req_v[i]);
    }
    for (int i = 0; i < 2 && !err; i++) {
        double inc = 0.05 * step_s * (0.5 + uni(g));

        st->cpu_v[i] = k == nsteps * 2 / 3 && k > 0 ? inc : st->cpu_v[i] + inc;
        err = emit(g, st->cpu[i], sample_time(g, k), st->cpu_v[i]);
    }
    for (int i = 0; i < 2 && !err; i++) {
        double nobs = floor(20 * step_s * (0.5 + uni(g)));
        double inc[NBUCKETS], run = 0, sum_inc = 0;
        int64_t t = sample_time(g, k);

        for (int b = 0; b < NBUCKETS; b++) {
            inc[b] = floor(nobs * share[b] * (0.8 + 0.4 * uni(g)) + 0.5);
            sum_inc += inc[b] * mid[b] * (0.9 + 0.2 * uni(g));
        }
        /* Bucket b counts every observation at or below its bound: a running sum
         * makes the buckets cumulative, and adding it keeps them monotonic. */
        for (int b = 0; b < NBUCKETS; b++) {
            run += inc[b];
            st->bucket_v[i][b] += run;
        }
        st->hcount_v[i] += run;
        st->hsum_v[i] += sum_inc;
        for (int b = 0; b < NBUCKETS && !err; b++)
            err = emit(g, st->bucket[i][b], t, st->bucket_v[i][b]);
        if (!err)
            err = emit(g, st->hsum[i], t, st->hsum_v[i]);
        if (!err)
            err = emit(g, st->hcount[i], t, st->hcount_v[i]);
    }
    if (err)
        return err;

    st->temp_v += 2 * (uni(g) - 0.5);
    if (!(k >= p30 && k < p45) && rnd(g) % 10 != 0)
        err = emit(g, st->temp, sample_time(g, k), st->temp_v);
    st->signal_v += 4 * (uni(g) - 0.5);
    if (!err)
        err = emit(g, st->signal, sample_time(g, k), st->signal_v);

    st->q1_v = fmax(0, st->q1_v + (double)(rnd(g) % 5) - 2);
    if (!err && (k < p40 || k >= p60))
        err = emit(g, st->q1, sample_time(g, k), st->q1_v);
    else if (!err && k == p40)
        err = emit(g, st->q1, sample_time(g, k), stale_marker());
    st->q2_v = fmax(0, st->q2_v + (double)(rnd(g) % 3) - 1);
    if (!err && k < p70)
        err = emit(g, st->q2, sample_time(g, k), st->q2_v);
    else if (!err && k == p70)
        err = emit(g, st->q2, sample_time(g, k), stale_marker());
    return err;
}

/* ---- Scenario service ------------------------------------------------------------- */

struct service_state {
    size_t ok[2], bad[2], bucket[2][NBUCKETS], hsum[2], hcount[2], cpu[2], mem[2], up[2];
    double ok_v[2], bad_v[2], count_v[2], cpu_v[2], carry[2];
    double frac[NBUCKETS];     /* share of requests at or below each bucket bound */
    double mean_s;             /* mean latency, for _sum */
};

/* The latency distribution of the healthy service as (seconds, cumulative share)
 * points, linear in between. */
static const double lat_x[] = { 0, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5 };
static const double lat_f[] = { 0, 0.30, 0.60, 0.90, 0.992, 0.998, 0.9995, 1 };
#define NLAT (sizeof(lat_x) / sizeof(lat_x[0]))

static double latency_cdf(double x)
{
    for (size_t i = 1; i < NLAT; i++)
        if (x < lat_x[i])
            return lat_f[i - 1] + (lat_f[i] - lat_f[i - 1]) * (x - lat_x[i - 1]) /
                                      (lat_x[i] - lat_x[i - 1]);
    return 1;
}

/* Sets up one service named @job (a string that outlives the generator's series). */
static void service_setup(struct gen *g, struct service_state *st, const char *job)
{
    static const char *const instances[2] = { "10.1.0.1:8080", "10.1.0.2:8080" };

    memset(st, 0, sizeof(*st));
    for (int i = 0; i < 2; i++) {
        const char *kok[] = { "code", "200", "instance", instances[i], "job", job, NULL };
        const char *kbad[] = { "code", "500", "instance", instances[i], "job", job, NULL };
        const char *kv[] = { "instance", instances[i], "job", job, NULL };
        const char *kc[] = { "container", "app", "instance", instances[i], "job", job,
                             NULL };

        st->ok[i] = add_series(g, "http_requests_total", kok);
        st->bad[i] = add_series(g, "http_requests_total", kbad);
        for (int b = 0; b < NBUCKETS; b++) {
            const char *kb[] = { "instance", instances[i], "job", job, "le",
                                 bucket_le_text[b], NULL };

            st->bucket[i][b] = add_series(g, "http_request_duration_seconds_bucket", kb);
        }
        st->hsum[i] = add_series(g, "http_request_duration_seconds_sum", kv);
        st->hcount[i] = add_series(g, "http_request_duration_seconds_count", kv);
        st->cpu[i] = add_series(g, "container_cpu_usage_seconds_total", kc);
        st->mem[i] = add_series(g, "container_memory_working_set_bytes", kc);
        st->up[i] = add_series(g, "up", kv);
        st->ok_v[i] = (double)(rnd(g) % 10000);
        st->bad_v[i] = floor(st->ok_v[i] * g->error_ratio);
        st->count_v[i] = st->ok_v[i] + st->bad_v[i];
        st->cpu_v[i] = 1000 * uni(g);
    }
    for (int b = 0; b < NBUCKETS; b++)
        st->frac[b] = isinf(bucket_le[b]) ? 1 : latency_cdf(bucket_le[b] / g->latency_scale);
    for (size_t i = 1; i < NLAT; i++)
        st->mean_s += (lat_f[i] - lat_f[i - 1]) * (lat_x[i - 1] + lat_x[i]) / 2;
    st->mean_s *= g->latency_scale;
}

/* The metadata of the service's families, once however many jobs there are. */
static void service_metadata(struct gen *g)
{
    add_metadata(g, RG_METRIC_COUNTER, "http_requests_total", "Requests served.", "");
    add_metadata(g, RG_METRIC_HISTOGRAM, "http_request_duration_seconds",
                 "Request latency.", "seconds");
    add_metadata(g, RG_METRIC_COUNTER, "container_cpu_usage_seconds_total",
                 "Cumulative CPU time consumed.", "seconds");
    add_metadata(g, RG_METRIC_GAUGE, "container_memory_working_set_bytes",
                 "Current working set.", "bytes");
    add_metadata(g, RG_METRIC_GAUGE, "up", "Whether the target is up.", "");
}

static int service_step(struct gen *g, struct service_state *st, int64_t k)
{
    double step_s = (double)g->step_ms / 1000.0;
    int err = 0;

    for (int i = 0; i < 2 && !err; i++) {
        double total = floor(40 * step_s * (0.9 + 0.2 * uni(g)) + 0.5);
        double e;
        int64_t t = sample_time(g, k);

        /* Carry the fractional errors to the next step, so that over any window the
         * 500s are the requested share of all requests, up to one request. */
        st->carry[i] += total * g->error_ratio;
        e = floor(st->carry[i] + 1e-9);
        if (e > total)
            e = total;
        st->carry[i] -= e;
        st->ok_v[i] += total - e;
        st->bad_v[i] += e;
        st->count_v[i] += total;
        err = emit(g, st->ok[i], t, st->ok_v[i]);
        if (!err)
            err = emit(g, st->bad[i], t, st->bad_v[i]);
        t = sample_time(g, k);
        for (int b = 0; b < NBUCKETS && !err; b++) {
            double v = b == NBUCKETS - 1 ? st->count_v[i] : floor(st->count_v[i] * st->frac[b]);

            err = emit(g, st->bucket[i][b], t, v);
        }
        if (!err)
            err = emit(g, st->hsum[i], t, st->count_v[i] * st->mean_s);
        if (!err)
            err = emit(g, st->hcount[i], t, st->count_v[i]);
        st->cpu_v[i] += 0.25 * step_s * (0.8 + 0.4 * uni(g));
        if (!err)
            err = emit(g, st->cpu[i], sample_time(g, k), st->cpu_v[i]);
        if (!err)
            err = emit(g, st->mem[i], sample_time(g, k), floor(200e6 + 20e6 * (uni(g) - 0.5)));
        if (!err)
            err = emit(g, st->up[i], sample_time(g, k), 1);
    }
    return err;
}

/* ---- Scenario bench ------------------------------------------------------------- */

/* The PromQL benchmark's data set: many series, few samples each, sized like a
 * mid-sized fleet. Series are laid out in index order: every http_requests_total
 * series first, then per histogram its 12 buckets, _sum and _count. */
#define BENCH_JOBS 10
#define BENCH_INSTANCES 10      /* per job */
#define BENCH_HANDLERS 25
#define BENCH_HIST_HANDLERS 10  /* handlers with a latency histogram */
#define BENCH_METHODS 4
#define BENCH_CODES 10
#define BENCH_HIST_SERIES (NBUCKETS + 2)
#define BENCH_DEFAULT_CHUNK 500000   /* samples per request: about 9.6 MB uncompressed */

static const char *const bench_jobs[BENCH_JOBS] = {
    "api-gateway", "auth", "catalog", "checkout", "inventory",
    "orders", "payments", "search", "shipping", "users",
};
static const char *const bench_handlers[BENCH_HANDLERS] = {
    "/api/v1/items", "/api/v1/items/{id}", "/api/v1/cart", "/api/v1/cart/items",
    "/api/v1/orders", "/api/v1/orders/{id}", "/api/v1/users/{id}", "/api/v1/login",
    "/api/v1/logout", "/api/v1/search", "/api/v1/recommendations", "/api/v1/reviews",
    "/api/v1/prices", "/api/v1/stock", "/api/v1/shipments", "/api/v1/payments",
    "/api/v1/refunds", "/api/v1/coupons", "/api/v1/addresses", "/api/v1/wishlist",
    "/api/v1/notifications", "/api/v1/sessions", "/healthz", "/metrics", "/",
};
static const char *const bench_methods[BENCH_METHODS] = { "GET", "POST", "PUT", "DELETE" };
static const double bench_method_share[BENCH_METHODS] = { 0.70, 0.20, 0.07, 0.03 };
static const char *const bench_codes[BENCH_CODES] = {
    "200", "201", "204", "304", "400", "404", "429", "500", "502", "503",
};
/* Shares of the responses per code; the three 5xx codes make 1.5 %. */
static const double bench_code_share[BENCH_CODES] = {
    0.800, 0.050, 0.030, 0.050, 0.020, 0.030, 0.005, 0.008, 0.001, 0.006,
};

struct bench_state {
    size_t nreq, nhist;            /* counter series; histograms (each 14 series) */
    double *req_v, *req_rate;      /* per counter series: value, requests per second */
    double *bucket_v;              /* per histogram, NBUCKETS cumulative counts */
    double *hsum_v, *hrate, *hscale;   /* per histogram: _sum, requests/s, latency x */
};

static void bench_free(struct bench_state *st)
{
    if (!st)
        return;
    free(st->req_v);
    free(st->req_rate);
    free(st->bucket_v);
    free(st->hsum_v);
    free(st->hrate);
    free(st->hscale);
}

/* Stochastic rounding: an integer whose mean is @x (x >= 0), so that slow series
 * still count the occasional request and every counter stays integral. */
static double round_random(struct gen *g, double x)
{
    return floor(x + uni(g));
}

static void bench_setup(struct gen *g, struct bench_state *st)
{
    /* Handler popularity differs per job, from 0.2 to 2 times the mean; instances of
     * a job share its load unevenly (+-30 %) and have been up between an hour and 30
     * days, which sets their counters' start values. */
    double hweight[BENCH_JOBS][BENCH_HANDLERS];
    double load[BENCH_JOBS][BENCH_INSTANCES], uptime_s[BENCH_JOBS][BENCH_INSTANCES];
    char instance[BENCH_JOBS][BENCH_INSTANCES][48];   /* room for any int, for -Wformat */
    size_t n = 0, h = 0;

    memset(st, 0, sizeof(*st));
    st->nreq = (size_t)BENCH_JOBS * BENCH_INSTANCES * BENCH_HANDLERS * BENCH_METHODS *
               BENCH_CODES;
    st->nhist = (size_t)BENCH_JOBS * BENCH_INSTANCES * BENCH_HIST_HANDLERS;
    st->req_v = malloc(st->nreq * sizeof(double));
    st->req_rate = malloc(st->nreq * sizeof(double));
    st->bucket_v = malloc(st->nhist * NBUCKETS * sizeof(double));
    st->hsum_v = malloc(st->nhist * sizeof(double));
    st->hrate = malloc(st->nhist * sizeof(double));
    st->hscale = malloc(st->nhist * sizeof(double));
    if (!st->req_v || !st->req_rate || !st->bucket_v || !st->hsum_v || !st->hrate ||
        !st->hscale)
        die_nomem();

    for (int j = 0; j < BENCH_JOBS; j++) {
        for (int hd = 0; hd < BENCH_HANDLERS; hd++)
            hweight[j][hd] = 0.2 + 1.8 * uni(g);
        for (int i = 0; i < BENCH_INSTANCES; i++) {
            load[j][i] = 0.7 + 0.6 * uni(g);
            uptime_s[j][i] = 3600 + (30 * 86400 - 3600) * uni(g);
            snprintf(instance[j][i], sizeof(instance[j][i]), "10.%d.%d.%d:8080", 20 + j,
                     i / 4, 10 + i);
        }
    }

    /* The counters first, then the histograms, each histogram's 14 series together:
     * bench_step() finds a series' kind and histogram from its index. */
    for (int j = 0; j < BENCH_JOBS; j++)
        for (int i = 0; i < BENCH_INSTANCES; i++)
            for (int hd = 0; hd < BENCH_HANDLERS; hd++)
                for (int m = 0; m < BENCH_METHODS; m++)
                    for (int c = 0; c < BENCH_CODES; c++) {
                        const char *kv[] = { "code", bench_codes[c], "handler",
                                             bench_handlers[hd], "instance", instance[j][i],
                                             "job", bench_jobs[j], "method", bench_methods[m],
                                             NULL };
                        /* About 100 requests/s per instance over all its series. */
                        double rate = 100.0 / BENCH_HANDLERS * hweight[j][hd] * load[j][i] *
                                      bench_method_share[m] * bench_code_share[c];

                        add_series(g, "http_requests_total", kv);
                        st->req_rate[n] = rate;
                        st->req_v[n] = round_random(g, rate * uptime_s[j][i] *
                                                           (0.9 + 0.2 * uni(g)));
                        n++;
                    }
    for (int j = 0; j < BENCH_JOBS; j++)
        for (int i = 0; i < BENCH_INSTANCES; i++)
            for (int hd = 0; hd < BENCH_HIST_HANDLERS; hd++) {
                const char *kv[] = { "handler", bench_handlers[hd], "instance", instance[j][i],
                                     "job", bench_jobs[j], NULL };
                double total;

                for (int b = 0; b < NBUCKETS; b++) {
                    const char *kb[] = { "handler", bench_handlers[hd], "instance",
                                         instance[j][i], "job", bench_jobs[j], "le",
                                         bucket_le_text[b], NULL };

                    add_series(g, "req_duration_seconds_bucket", kb);
                }
                add_series(g, "req_duration_seconds_sum", kv);
                add_series(g, "req_duration_seconds_count", kv);
                st->hrate[h] = 100.0 / BENCH_HANDLERS * hweight[j][hd] * load[j][i];
                /* Latency scale: most handlers are fast, a few 10-20 times slower. */
                st->hscale[h] = hd % 7 == 3 ? 10 + 10 * uni(g) : 0.5 + 1.5 * uni(g);
                /* Start values as the uptime would have left them: the buckets follow
                 * the distribution (cumulative, so monotonic across bounds). */
                total = round_random(g, st->hrate[h] * uptime_s[j][i]);
                for (int b = 0; b < NBUCKETS; b++)
                    st->bucket_v[h * NBUCKETS + b] =
                        b == NBUCKETS - 1 ? total
                                          : floor(total * latency_cdf(bucket_le[b] /
                                                                      st->hscale[h]));
                st->hsum_v[h] = total * 0.02 * st->hscale[h];
                h++;
            }
    add_metadata(g, RG_METRIC_COUNTER, "http_requests_total", "Requests served.", "");
    add_metadata(g, RG_METRIC_HISTOGRAM, "req_duration_seconds", "Request latency.",
                 "seconds");
}

/* Emits step @k of the histogram whose lowest bucket is series @s: the step's
 * observations, spread over the buckets. */
static int bench_histogram_step(struct gen *g, struct bench_state *st, size_t s, int64_t k,
                                double step_s)
{
    size_t h = (s - st->nreq) / BENCH_HIST_SERIES;
    double *bv = &st->bucket_v[h * NBUCKETS];
    double nobs = round_random(g, st->hrate[h] * step_s * (0.8 + 0.4 * uni(g)));
    double prev_frac = 0, run = 0, sum_inc = 0;
    int64_t t = sample_time(g, k);
    int err = 0;

    /* Each bucket's share of the observations comes from the latency distribution
     * scaled by the handler's factor; adding a running sum keeps the buckets
     * cumulative across bounds and monotonic in time. The +Inf bucket takes the
     * rest, so it equals _count. */
    for (int b = 0; b < NBUCKETS; b++) {
        double frac = isinf(bucket_le[b]) ? 1 : latency_cdf(bucket_le[b] / st->hscale[h]);
        double inc = b == NBUCKETS - 1 ? nobs - run
                                       : fmin(nobs - run,
                                              round_random(g, nobs * (frac - prev_frac)));
        double mid = b == 0 ? bucket_le[0] / 2
                     : isinf(bucket_le[b]) ? 2 * bucket_le[b - 1]
                                           : (bucket_le[b - 1] + bucket_le[b]) / 2;

        run += inc;
        sum_inc += inc * mid;
        prev_frac = frac;
        bv[b] += run;
    }
    for (int b = 0; b < NBUCKETS && !err; b++)
        err = emit(g, s + (size_t)b, t, bv[b]);
    st->hsum_v[h] += sum_inc;
    if (!err)
        err = emit(g, s + NBUCKETS, t, st->hsum_v[h]);
    if (!err)
        err = emit(g, s + NBUCKETS + 1, t, bv[NBUCKETS - 1]);
    return err;
}

/* Emits step @k of every series in [@from, @to), series by series. */
static int bench_step(struct gen *g, struct bench_state *st, size_t from, size_t to,
                      int64_t k)
{
    double step_s = (double)g->step_ms / 1000.0;
    int err = 0;

    for (size_t s = from; s < to && !err; s++) {
        if (s < st->nreq) {
            st->req_v[s] += round_random(g, st->req_rate[s] * step_s * (0.5 + uni(g)));
            err = emit(g, s, sample_time(g, k), st->req_v[s]);
            continue;
        }
        /* A histogram's 14 series go out together at one time: its first series
         * (the lowest bucket) draws the step's observations for all of them. */
        if ((s - st->nreq) % BENCH_HIST_SERIES == 0)
            err = bench_histogram_step(g, st, s, k, step_s);
    }
    return err;
}

/* Sends the scenario in blocks of series: each block's samples, every step of them,
 * go out before the next block's, in requests of at most --chunk samples. A block
 * holds as many series as --chunk has room for all their steps (whole histograms),
 * so each series' labels travel about once instead of once per step. The buffers of
 * a sent block are released, which keeps rwgen's memory at one block. */
static int bench_run(struct gen *g, struct bench_state *st, int64_t nsteps)
{
    size_t per_block = g->chunk / (size_t)nsteps;

    if (per_block < BENCH_HIST_SERIES)
        per_block = BENCH_HIST_SERIES;
    per_block -= per_block % BENCH_HIST_SERIES;
    for (size_t from = 0; from < g->nseries;) {
        size_t to = from + per_block;

        /* Never split a histogram across blocks; its series are emitted together. */
        if (to > st->nreq && from < st->nreq)
            to = st->nreq;
        if (to > g->nseries)
            to = g->nseries;
        for (int64_t k = 0; k < nsteps; k++)
            if (bench_step(g, st, from, to, k) != 0)
                return -1;
        if (flush(g) != 0)
            return -1;
        for (size_t s = from; s < to; s++) {
            free(g->series[s].pend);
            g->series[s].pend = NULL;
            g->series[s].cap = 0;
        }
        from = to;
    }
    return 0;
}

/* ---- Driver ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rwgen --url URL [--url URL ...] --scenario promql|service|bench\n"
            "             --start-ms T --end-ms T --step-ms S [--seed N] [--jitter-ms J]\n"
            "             [--job NAME] [--jobs N] [--error-ratio R] [--latency-scale X]\n"
            "             [--label NAME=VALUE ...] [--chunk N] [--timeout-s S] [--print]\n");
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;

    errno = 0;
    *out = strtod(s, &end);
    return errno || end == s || *end || !isfinite(*out) ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct gen *g = calloc(1, sizeof(*g));
    struct promql_state *pst = NULL;
    struct service_state *sst = NULL;
    struct bench_state *bst = NULL;
    int64_t nsteps, jitter = -1, v;
    size_t nsst = 0;
    int have_start = 0, have_end = 0, have_step = 0, have_chunk = 0;
    int rc = 2;

    if (!g)
        die_nomem();
    g->job = "rwgen";
    g->chunk = 2000;
    g->timeout_s = 30;
    g->latency_scale = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            rc = 0;
            goto out;
        }
        if (strcmp(a, "--print") == 0) {
            g->print = 1;
            continue;
        }
        if (!val) {
            fprintf(stderr, "rwgen: %s needs a value\n", a);
            goto usage;
        }
        i++;
        if (strcmp(a, "--url") == 0) {
            if (g->ntargets == MAX_URLS)
                bad = 1;
            else
                g->targets[g->ntargets++].url = val;
        } else if (strcmp(a, "--scenario") == 0) {
            g->scenario = val;
        } else if (strcmp(a, "--start-ms") == 0) {
            bad = parse_i64(val, &g->start_ms);
            have_start = 1;
        } else if (strcmp(a, "--end-ms") == 0) {
            bad = parse_i64(val, &g->end_ms);
            have_end = 1;
        } else if (strcmp(a, "--step-ms") == 0) {
            bad = parse_i64(val, &g->step_ms) || g->step_ms <= 0;
            have_step = 1;
        } else if (strcmp(a, "--seed") == 0) {
            bad = parse_i64(val, &v);
            g->seed = (uint64_t)v;
        } else if (strcmp(a, "--jitter-ms") == 0) {
            bad = parse_i64(val, &jitter) || jitter < 0;
        } else if (strcmp(a, "--job") == 0) {
            bad = !*val;
            g->job = val;
        } else if (strcmp(a, "--jobs") == 0) {
            bad = parse_i64(val, &g->njobs) || g->njobs < 1 || g->njobs > 100000;
        } else if (strcmp(a, "--error-ratio") == 0) {
            bad = parse_double(val, &g->error_ratio) || g->error_ratio < 0 ||
                  g->error_ratio > 1;
        } else if (strcmp(a, "--latency-scale") == 0) {
            bad = parse_double(val, &g->latency_scale) || g->latency_scale <= 0;
        } else if (strcmp(a, "--label") == 0) {
            const char *eq = strchr(val, '=');

            if (!eq || eq == val || !eq[1] || g->nextra == MAX_EXTRA) {
                bad = 1;
            } else {
                g->extra_name[g->nextra] = keep_string(g, val);
                ((char *)g->extra_name[g->nextra])[eq - val] = '\0';
                g->extra_value[g->nextra] = g->extra_name[g->nextra] + (eq - val) + 1;
                g->nextra++;
            }
        } else if (strcmp(a, "--chunk") == 0) {
            bad = parse_i64(val, &v) || v < 1 || v > 1000000;
            g->chunk = (size_t)v;
            have_chunk = 1;
        } else if (strcmp(a, "--timeout-s") == 0) {
            bad = parse_i64(val, &v) || v < 1 || v > 3600;
            g->timeout_s = (long)v;
        } else {
            fprintf(stderr, "rwgen: unknown option %s\n", a);
            goto usage;
        }
        if (bad) {
            fprintf(stderr, "rwgen: bad value for %s: %s\n", a, val);
            goto usage;
        }
    }
    if (!g->scenario || !have_start || !have_end || !have_step) {
        fprintf(stderr, "rwgen: --scenario, --start-ms, --end-ms and --step-ms are required\n");
        goto usage;
    }
    if (!g->ntargets && !g->print) {
        fprintf(stderr, "rwgen: give at least one --url (or --print)\n");
        goto usage;
    }
    if (g->end_ms < g->start_ms) {
        fprintf(stderr, "rwgen: --end-ms is before --start-ms\n");
        goto usage;
    }
    nsteps = (g->end_ms - g->start_ms) / g->step_ms + 1;
    if (jitter < 0)
        jitter = strcmp(g->scenario, "service") == 0 ? 0 : 999;
    /* Keep every jittered time before the next step's earliest one. */
    g->jitter_ms = jitter < g->step_ms - 2 ? jitter : (g->step_ms > 2 ? g->step_ms - 2 : 0);
    g->rng = g->seed ^ UINT64_C(0x5deece66d);

    if (strcmp(g->scenario, "promql") == 0) {
        pst = malloc(sizeof(*pst));
        if (!pst)
            die_nomem();
        promql_setup(g, pst);
    } else if (strcmp(g->scenario, "service") == 0) {
        nsst = g->njobs ? (size_t)g->njobs : 1;
        sst = calloc(nsst, sizeof(*sst));
        if (!sst)
            die_nomem();
        for (size_t j = 0; j < nsst; j++) {
            char name[256];
            int width = snprintf(NULL, 0, "%zu", nsst);

            if (!g->njobs) {
                service_setup(g, &sst[j], g->job);
                continue;
            }
            if (snprintf(name, sizeof(name), "%s-%0*zu", g->job, width, j + 1) >=
                (int)sizeof(name)) {
                fprintf(stderr, "rwgen: --job is too long for --jobs\n");
                goto usage;
            }
            service_setup(g, &sst[j], keep_string(g, name));
        }
        service_metadata(g);
    } else if (strcmp(g->scenario, "bench") == 0) {
        bst = malloc(sizeof(*bst));
        if (!bst)
            die_nomem();
        bench_setup(g, bst);
        if (!have_chunk)
            g->chunk = BENCH_DEFAULT_CHUNK;
    } else {
        fprintf(stderr, "rwgen: unknown scenario %s (promql, service, bench)\n", g->scenario);
        goto usage;
    }
    if (g->njobs && !sst) {
        fprintf(stderr, "rwgen: --jobs is for scenario service only\n");
        goto usage;
    }

    rc = 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        goto out;
    for (size_t i = 0; i < g->ntargets; i++) {
        g->targets[i].curl = curl_easy_init();
        if (!g->targets[i].curl)
            goto out_curl;
    }
    g->headers = curl_slist_append(g->headers, "Content-Type: application/x-protobuf");
    g->headers = curl_slist_append(g->headers, "Content-Encoding: snappy");
    g->headers = curl_slist_append(g->headers, "X-Prometheus-Remote-Write-Version: 0.1.0");
    g->headers = curl_slist_append(g->headers, "User-Agent: rollgate-rwgen/1.0");
    /* libcurl would otherwise wait for "100 Continue" before sending large bodies. */
    g->headers = curl_slist_append(g->headers, "Expect:");
    if (!g->headers)
        goto out_curl;
    rg_rw_encoder_init(&g->enc);

    for (int64_t k = 0; k < nsteps && !bst; k++) {
        int err = 0;

        /* Start a new request rather than split a step when the next step might not
         * fit; a step larger than a chunk is split by emit(). */
        if (g->pending && g->pending + g->nseries > g->chunk && flush(g) != 0)
            goto out_enc;
        if (pst)
            err = promql_step(g, pst, k, nsteps);
        else
            for (size_t j = 0; j < nsst && !err; j++)
                err = service_step(g, &sst[j], k);
        if (err)
            goto out_enc;
    }
    if (bst && bench_run(g, bst, nsteps) != 0)
        goto out_enc;
    if (flush(g) != 0)
        goto out_enc;
    fprintf(stderr,
            "rwgen: scenario=%s series=%zu steps=%" PRId64 " samples=%" PRIu64
            " requests=%" PRIu64 " urls=%zu\n",
            g->scenario, g->nseries, nsteps, g->sent_samples, g->sent_requests, g->ntargets);
    rc = 0;

out_enc:
    rg_rw_encoder_cleanup(&g->enc);
    rg_buf_cleanup(&g->body);
out_curl:
    curl_slist_free_all(g->headers);
    for (size_t i = 0; i < g->ntargets; i++)
        if (g->targets[i].curl)
            curl_easy_cleanup(g->targets[i].curl);
    curl_global_cleanup();
    goto out;
usage:
    usage(stderr);
out:
    for (size_t i = 0; i < g->nseries; i++)
        free(g->series[i].pend);
    free(g->series);
    for (size_t i = 0; i < g->nstrings; i++)
        free(g->strings[i]);
    free(g->strings);
    free(pst);
    free(sst);
    bench_free(bst);
    free(bst);
    free(g);
    return rc;
}
