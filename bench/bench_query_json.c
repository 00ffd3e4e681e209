/* bench/bench_query_json.c - throughput of the query response parser.
 *
 * Query mode parses every /api/v1/query and /api/v1/query_range answer, and a large
 * fleet's answers are tens of megabytes, so the parser's speed bounds the evaluation
 * cycle. This builds two Prometheus-shaped bodies of about 50 MB each in memory:
 *   vector  many series of ten labels with one point each (an instant query over a
 *           fleet), the shape the goal of >= 200 MB/s is about;
 *   matrix  fewer series with many points each (a range query for replay);
 * then feeds each one to the parser in 16 KiB pieces, as a curl write callback would,
 * several times, and prints the best and median MB/s (1 MB = 10^6 bytes). For scale it
 * also times yajl alone with empty callbacks over the same bytes: the difference is
 * the cost of the state machine, the number parsing and the result building.
 *
 *   bench_query_json [--rounds N] [--mb SIZE] [--check]
 * With --check the exit status is 1 when the vector figure is below 200 MB/s.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_parse.h>

#include "query/response.h"
#include "util/buf.h"
#include "util/err.h"

#define CHUNK         16384
#define GOAL_MB_S     200.0

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void value_text(struct rg_buf *b)
{
    switch (rnd() % 4) {
    case 0:
        rg_buf_printf(b, "%u", (unsigned)(rnd() % 100000));
        break;
    case 1:
        rg_buf_printf(b, "%.3f", (double)(rnd() % 10000000) / 1000.0);
        break;
    case 2:
        rg_buf_printf(b, "%.17g", (double)(rnd() % 1000000) / 7.0);
        break;
    default:
        rg_buf_printf(b, "%.6g", (double)(rnd() % 100000) * 1e-9);
        break;
    }
}

/* Series labels as a Kubernetes scrape gives them: ten labels, some shared by many
 * series, some (instance, pod) unique. */
static void metric(struct rg_buf *b, size_t i)
{
    static const char *const names[] = {
        "http_requests_total", "http_request_duration_seconds_count",
        "process_cpu_seconds_total", "up",
    };
    static const char *const paths[] = {
        "/api/v1/items", "/api/v1/orders", "/healthz", "/api/v1/users/{id}",
    };

    rg_buf_printf(b, "{\"__name__\":\"%s\",\"cluster\":\"prod-eu-west-%zu\","
                  "\"code\":\"%d\",\"instance\":\"10.%zu.%zu.%zu:8080\",\"job\":"
                  "\"kubernetes-pods\",\"method\":\"%s\",\"namespace\":\"shop-%zu\","
                  "\"path\":\"%s\",\"pod\":\"checkout-7d9f8c6b5-%05zx\",\"service\":"
                  "\"checkout\"}",
                  names[i % 4], i % 3, (int)(200 + (i % 5) * 100), (i >> 16) & 255,
                  (i >> 8) & 255, i & 255, i % 2 ? "GET" : "POST", i % 8, paths[i % 4],
                  i * 2654435761u % 1048576);
}

static void make_vector(struct rg_buf *b, size_t target)
{
    size_t i;

    rg_buf_puts(b, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[");
    for (i = 0; b->len < target; i++) {
        rg_buf_puts(b, i ? ",{\"metric\":" : "{\"metric\":");
        metric(b, i);
        rg_buf_printf(b, ",\"value\":[1700000000.%03u,\"", (unsigned)(rnd() % 1000));
        value_text(b);
        rg_buf_puts(b, "\"]}");
    }
    rg_buf_puts(b, "]}}");
}

static void make_matrix(struct rg_buf *b, size_t target)
{
    size_t i, j;

    rg_buf_puts(b, "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[");
    for (i = 0; b->len < target; i++) {
        rg_buf_puts(b, i ? ",{\"metric\":" : "{\"metric\":");
        metric(b, i);
        rg_buf_puts(b, ",\"values\":[");
        for (j = 0; j < 720; j++) {
            rg_buf_printf(b, "%s[%u.%03u,\"", j ? "," : "", 1700000000u + (unsigned)j * 15,
                          (unsigned)(i % 1000));
            value_text(b);
            rg_buf_puts(b, "\"]");
        }
        rg_buf_puts(b, "]}");
    }
    rg_buf_puts(b, "]}}");
}

/* One parse in 16 KiB pieces; returns seconds, or -1 on error. */
static double run_parser(struct rg_query_parser *p, const struct rg_buf *doc, size_t *nseries,
                         size_t *npoints)
{
    struct rg_query_result res;
    struct rg_buf err = { 0 };
    double t0 = now_s();
    size_t off, i;
    int rc;

    if (rg_query_parser_reset(p))
        return -1;
    for (off = 0; off < doc->len; off += CHUNK)
        if (rg_query_parser_feed(p, doc->data + off,
                                 doc->len - off < CHUNK ? doc->len - off : CHUNK))
            break;
    rc = rg_query_parser_finish(p, &res, &err);
    if (rc) {
        fprintf(stderr, "bench_query_json: parse failed: %s: %s\n", rg_err_name(rc),
                err.data ? err.data : "");
        rg_buf_cleanup(&err);
        return -1;
    }
    *nseries = res.nseries;
    *npoints = 0;
    for (i = 0; i < res.nseries; i++)
        *npoints += res.series[i].npoints;
    /* Freeing is part of a query's cost. */
    rg_query_result_free(&res);
    rg_buf_cleanup(&err);
    return now_s() - t0;
}

static int nop(void *ctx)
{
    (void)ctx;
    return 1;
}

static int nop_bool(void *ctx, int b)
{
    (void)ctx;
    (void)b;
    return 1;
}

static int nop_num(void *ctx, const char *s, size_t len)
{
    (void)ctx;
    (void)s;
    (void)len;
    return 1;
}

static int nop_str(void *ctx, const unsigned char *s, size_t len)
{
    (void)ctx;
    (void)s;
    (void)len;
    return 1;
}

static const yajl_callbacks nop_callbacks = {
    .yajl_null = nop, .yajl_boolean = nop_bool, .yajl_number = nop_num,
    .yajl_string = nop_str, .yajl_start_map = nop, .yajl_map_key = nop_str,
    .yajl_end_map = nop, .yajl_start_array = nop, .yajl_end_array = nop,
};

/* yajl alone, validating UTF-8 (@validate) or not, same pieces. */
static double run_yajl(const struct rg_buf *doc, int validate)
{
    yajl_handle h = yajl_alloc(&nop_callbacks, NULL, NULL);
    double t0 = now_s();
    size_t off;
    int ok = 1;

    if (!h)
        return -1;
    if (!validate)
        yajl_config(h, yajl_dont_validate_strings, 1);
    for (off = 0; ok && off < doc->len; off += CHUNK)
        ok = yajl_parse(h, (const unsigned char *)doc->data + off,
                        doc->len - off < CHUNK ? doc->len - off : CHUNK) == yajl_status_ok;
    ok = ok && yajl_complete_parse(h) == yajl_status_ok;
    yajl_free(h);
    return ok ? now_s() - t0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Prints one line; returns the best MB/s of the parser, or -1. */
static double bench(const char *name, const struct rg_buf *doc, int rounds)
{
    struct rg_query_parse_opts o;
    struct rg_query_parser *p;
    double *t = calloc((size_t)rounds, sizeof(*t)), best_y = 1e9, best_yn = 1e9, mb;
    size_t nseries = 0, npoints = 0;
    int r;

    if (!t)
        return -1;
    rg_query_parse_opts_default(&o);
    o.max_bytes = doc->len;
    o.max_points = 100000000;
    if (rg_query_parser_new(&o, &p)) {
        free(t);
        return -1;
    }
    for (r = 0; r < rounds; r++) {
        double y, yn;

        t[r] = run_parser(p, doc, &nseries, &npoints);
        y = run_yajl(doc, 1);
        yn = run_yajl(doc, 0);
        if (t[r] < 0 || y < 0 || yn < 0) {
            rg_query_parser_free(p);
            free(t);
            return -1;
        }
        best_y = y < best_y ? y : best_y;
        best_yn = yn < best_yn ? yn : best_yn;
    }
    rg_query_parser_free(p);
    qsort(t, (size_t)rounds, sizeof(*t), cmp_double);
    mb = (double)doc->len / 1e6;
    printf("bench_query_json: %-6s %.1f MB, %zu series, %zu points, 16 KiB pieces: "
           "best %.0f MB/s, median %.0f MB/s (yajl alone: %.0f MB/s validating UTF-8, "
           "%.0f MB/s not)\n", name, mb, nseries, npoints, mb / t[0],
           mb / t[rounds / 2], mb / best_y, mb / best_yn);
    mb /= t[0];
    free(t);
    return mb;
}

int main(int argc, char **argv)
{
    struct rg_buf vec = { 0 }, mat = { 0 };
    size_t target = 50;
    int rounds = 7, check = 0, i;
    double v, m;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mb") && i + 1 < argc)
            target = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--check"))
            check = 1;
        else {
            fprintf(stderr, "usage: bench_query_json [--rounds N] [--mb SIZE] [--check]\n");
            return 2;
        }
    }
    if (rounds < 1)
        rounds = 1;
    make_vector(&vec, target * 1000000);
    make_matrix(&mat, target * 1000000);
    if (!vec.data || !mat.data) {
        fprintf(stderr, "bench_query_json: out of memory\n");
        return 1;
    }
    v = bench("vector", &vec, rounds);
    m = bench("matrix", &mat, rounds);
    rg_buf_cleanup(&vec);
    rg_buf_cleanup(&mat);
    if (v < 0 || m < 0)
        return 1;
    if (check && v < GOAL_MB_S) {
        printf("bench_query_json: vector %.0f MB/s is below the goal of %.0f MB/s\n", v,
               GOAL_MB_S);
        return 1;
    }
    return 0;
}
