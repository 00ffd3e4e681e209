/* bench/promql_query.c - latency of one PromQL query through servers' /api/v1/query.
 *
 * Times GET <base>/api/v1/query?query=Q&time=T against one or more Prometheus-compatible
 * servers (rollgate, Prometheus) in the same run, so that every server is measured
 * under the same machine load. Each server gets its own libcurl easy handle, whose
 * HTTP/1.1 connection is kept alive across runs, so a run measures the query and the
 * response transfer rather than TCP setup. Runs alternate between the servers round
 * by round, and the server that goes first rotates, so that none of them
 * systematically follows another's work (caches, CPU frequency, a collector running
 * in the other process).
 *
 * Warm-up runs (untimed) come first. The first answer of every server is parsed (yajl
 * tree) and compared with the first server's: the same result type, the same label
 * sets, the same timestamps and every value within a relative tolerance (NaN equals
 * NaN, infinities exactly), so the timed runs are known to do equal work. Every timed
 * answer must be HTTP 200 with "status":"success".
 *
 * Usage:
 *   promql_query --url BASE [--url BASE ...] --query Q [--time T] [--runs 20]
 *                [--warmup 3] [--timeout-s 60] [--rel-tol 1e-9]
 * BASE is e.g. http://127.0.0.1:9201; T is passed on unchanged (Unix seconds or RFC
 * 3339). Output, one key=value line per server, then the ratios of the first server's
 * median to every other's:
 *   promql_query: url=BASE runs=N min_ms=.. median_ms=.. p90_ms=.. max_ms=.. bytes=..
 *                 result=<value of a one-sample answer, or the number of series>
 *   promql_query: ratio url=BASE vs=BASE2 median_ratio=..
 *   promql_query: results equal=yes|no rel_tol=..
 * The median is the mean of the two middle runs for an even count; p90 is the
 * nearest-rank 90th percentile. Exit status: 0 success, 1 a request failed or the
 * answers differ, 2 bad usage.
 */
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_tree.h>

#include "util/buf.h"

#define MAX_URLS 8
#define MAX_RUNS 100000
#define MAX_BODY ((size_t)256 << 20)   /* bytes of one answer kept; more is an error */

struct server {
    const char *base;           /* borrowed from argv */
    char *url;                  /* owned; the full query URL */
    CURL *curl;                 /* owned; keeps its connection alive */
    struct rg_buf body;         /* owned; the last answer */
    struct rg_buf first;        /* owned; the first answer, for the comparison */
    double *ms;                 /* owned; timed run latencies */
    size_t nms;
    int truncated;              /* the answer exceeded MAX_BODY */
};

/* One series of an answer, flattened for comparison. */
struct flat_series {
    char *key;                  /* owned; sorted name="value" pairs */
    double *t, *v;              /* owned; timestamps (s) and values */
    size_t n;
};

struct flat {
    char type[16];              /* vector, matrix, scalar or string */
    struct flat_series *s;      /* owned array */
    size_t n;
};

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct server *sv = ud;
    size_t len = size * n;

    if (sv->body.len + len > MAX_BODY) {
        sv->truncated = 1;
        return 0;   /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    if (rg_buf_append(&sv->body, p, len) != 0)
        return 0;
    return len;
}

/* Runs the query once on @sv; sets *@ms to the wall time. Returns 0, or -1 after
 * printing why the answer is not a success. */
static int run_once(struct server *sv, double *ms)
{
    long code = 0;
    CURLcode rc;
    double t0;

    rg_buf_reset(&sv->body);
    sv->truncated = 0;
    t0 = now_ms();
    rc = curl_easy_perform(sv->curl);
    *ms = now_ms() - t0;
    if (rc != CURLE_OK) {
        fprintf(stderr, "promql_query: %s: %s%s\n", sv->base, curl_easy_strerror(rc),
                sv->truncated ? " (answer too large)" : "");
        return -1;
    }
    curl_easy_getinfo(sv->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200 || !sv->body.data || !strstr(sv->body.data, "\"status\":\"success\"")) {
        fprintf(stderr, "promql_query: %s: status %ld: %.*s\n", sv->base, code,
                (int)(sv->body.len < 2000 ? sv->body.len : 2000),
                sv->body.data ? sv->body.data : "");
        return -1;
    }
    return 0;
}

/* ---- Comparing answers ----------------------------------------------------------- */

static void flat_cleanup(struct flat *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->s[i].key);
        free(f->s[i].t);
        free(f->s[i].v);
    }
    free(f->s);
    memset(f, 0, sizeof(*f));
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int series_cmp(const void *a, const void *b)
{
    return strcmp(((const struct flat_series *)a)->key, ((const struct flat_series *)b)->key);
}

/* The label set of @metric as one string of sorted name="value" pairs (JSON object
 * key order is not part of the contract). Returns NULL when out of memory. */
static char *labels_key(yajl_val metric)
{
    struct rg_buf b = { 0 };
    size_t n = YAJL_IS_OBJECT(metric) ? metric->u.object.len : 0;
    char **pairs = calloc(n ? n : 1, sizeof(*pairs));
    char *out = NULL;

    if (!pairs)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *v = YAJL_GET_STRING(metric->u.object.values[i]);
        size_t len = strlen(metric->u.object.keys[i]) + strlen(v ? v : "") + 4;

        pairs[i] = malloc(len);
        if (!pairs[i])
            goto done;
        snprintf(pairs[i], len, "%s=\"%s\"", metric->u.object.keys[i], v ? v : "");
    }
    qsort(pairs, n, sizeof(*pairs), str_cmp);
    rg_buf_putc(&b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            rg_buf_putc(&b, ',');
        rg_buf_puts(&b, pairs[i]);
    }
    if (rg_buf_putc(&b, '}') == 0)
        out = rg_buf_steal(&b, NULL);
done:
    for (size_t i = 0; i < n; i++)
        free(pairs[i]);
    free(pairs);
    rg_buf_cleanup(&b);
    return out;
}

/* Appends the [t, "v"] pair @pair to @s. Returns 0, or -1 when it is malformed. */
static int add_point(struct flat_series *s, yajl_val pair)
{
    const char *vs;
    double *t, *v;

    if (!YAJL_IS_ARRAY(pair) || pair->u.array.len != 2 ||
        !YAJL_IS_NUMBER(pair->u.array.values[0]) ||
        !(vs = YAJL_GET_STRING(pair->u.array.values[1])))
        return -1;
    t = realloc(s->t, (s->n + 1) * sizeof(*t));
    if (t)
        s->t = t;
    v = realloc(s->v, (s->n + 1) * sizeof(*v));
    if (v)
        s->v = v;
    if (!t || !v)
        return -1;
    s->t[s->n] = YAJL_GET_DOUBLE(pair->u.array.values[0]);
    /* strtod reads Prometheus' "NaN", "+Inf" and "-Inf" as well as the numbers. */
    s->v[s->n] = strtod(vs, NULL);
    s->n++;
    return 0;
}

/* Parses a success answer @json into @out. Returns 0, or -1 with a message. */
static int flatten(const char *base, const char *json, struct flat *out)
{
    static const char *type_path[] = { "data", "resultType", NULL };
    static const char *result_path[] = { "data", "result", NULL };
    char err[256];
    yajl_val root = yajl_tree_parse(json, err, sizeof(err));
    yajl_val type, result;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (!root) {
        fprintf(stderr, "promql_query: %s: answer is not JSON: %s\n", base, err);
        return -1;
    }
    type = yajl_tree_get(root, type_path, yajl_t_string);
    result = yajl_tree_get(root, result_path, yajl_t_any);
    if (!type || !result)
        goto done;
    snprintf(out->type, sizeof(out->type), "%s", YAJL_GET_STRING(type));
    if (strcmp(out->type, "scalar") == 0 || strcmp(out->type, "string") == 0) {
        out->s = calloc(1, sizeof(*out->s));
        if (!out->s || !(out->s->key = strdup("")))
            goto done;
        out->n = 1;
        if (strcmp(out->type, "scalar") == 0 && add_point(out->s, result) != 0)
            goto done;
        rc = 0;
        goto done;
    }
    if (!YAJL_IS_ARRAY(result))
        goto done;
    out->s = calloc(result->u.array.len ? result->u.array.len : 1, sizeof(*out->s));
    if (!out->s)
        goto done;
    for (size_t i = 0; i < result->u.array.len; i++) {
        static const char *metric_path[] = { "metric", NULL };
        static const char *value_path[] = { "value", NULL };
        static const char *values_path[] = { "values", NULL };
        yajl_val e = result->u.array.values[i];
        struct flat_series *s = &out->s[out->n++];
        yajl_val pts;

        s->key = labels_key(yajl_tree_get(e, metric_path, yajl_t_object));
        if (!s->key)
            goto done;
        if ((pts = yajl_tree_get(e, value_path, yajl_t_array)) != NULL) {
            if (add_point(s, pts) != 0)
                goto done;
        } else if ((pts = yajl_tree_get(e, values_path, yajl_t_array)) != NULL) {
            for (size_t j = 0; j < pts->u.array.len; j++)
                if (add_point(s, pts->u.array.values[j]) != 0)
                    goto done;
        } else {
            goto done;
        }
    }
    qsort(out->s, out->n, sizeof(*out->s), series_cmp);
    rc = 0;
done:
    if (rc != 0) {
        fprintf(stderr, "promql_query: %s: unexpected answer shape\n", base);
        flat_cleanup(out);
    }
    yajl_tree_free(root);
    return rc;
}

static int close_enough(double a, double b, double tol)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (a == b)
        return 1;
    if (isinf(a) || isinf(b))
        return 0;
    return fabs(a - b) <= tol * fmax(fabs(a), fabs(b));
}

/* Compares two flattened answers; prints the first difference. Returns 1 if equal. */
static int same_answer(const struct flat *a, const char *an, const struct flat *b,
                       const char *bn, double tol)
{
    if (strcmp(a->type, b->type) != 0) {
        printf("promql_query: differ: result type %s at %s, %s at %s\n", a->type, an,
               b->type, bn);
        return 0;
    }
    if (a->n != b->n) {
        printf("promql_query: differ: %zu series at %s, %zu at %s\n", a->n, an, b->n, bn);
        return 0;
    }
    for (size_t i = 0; i < a->n; i++) {
        const struct flat_series *x = &a->s[i], *y = &b->s[i];

        if (strcmp(x->key, y->key) != 0 || x->n != y->n) {
            printf("promql_query: differ: series %s (%zu points) at %s, %s (%zu) at %s\n",
                   x->key, x->n, an, y->key, y->n, bn);
            return 0;
        }
        for (size_t j = 0; j < x->n; j++)
            if (x->t[j] != y->t[j] || !close_enough(x->v[j], y->v[j], tol)) {
                printf("promql_query: differ: %s at t=%.3f: %.17g at %s, %.17g at %s\n",
                       x->key, x->t[j], x->v[j], an, y->v[j], bn);
                return 0;
            }
    }
    return 1;
}

/* ---- Statistics ------------------------------------------------------------------ */

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median(const double *sorted, size_t n)
{
    return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/* Nearest rank: the smallest value with at least @p of the runs at or below it. */
static double percentile(const double *sorted, size_t n, double p)
{
    size_t rank = (size_t)ceil(p * (double)n);

    return sorted[rank ? rank - 1 : 0];
}

/* ---- Driver ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: promql_query --url BASE [--url BASE ...] --query Q [--time T]\n"
               "                    [--runs N] [--warmup N] [--timeout-s S] [--rel-tol R]\n");
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct server sv[MAX_URLS];
    struct flat flats[MAX_URLS];
    size_t nsv = 0;
    const char *query = NULL, *at = NULL;
    long runs = 20, warmup = 3, timeout_s = 60;
    double tol = 1e-9;
    int rc = 2, equal = 1;

    memset(sv, 0, sizeof(sv));
    memset(flats, 0, sizeof(flats));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (!val) {
            fprintf(stderr, "promql_query: %s needs a value\n", a);
            goto usage;
        }
        i++;
        if (strcmp(a, "--url") == 0) {
            bad = nsv == MAX_URLS;
            if (!bad)
                sv[nsv++].base = val;
        } else if (strcmp(a, "--query") == 0) {
            query = val;
        } else if (strcmp(a, "--time") == 0) {
            at = val;
        } else if (strcmp(a, "--runs") == 0) {
            bad = parse_long(val, 1, MAX_RUNS, &runs);
        } else if (strcmp(a, "--warmup") == 0) {
            bad = parse_long(val, 1, MAX_RUNS, &warmup);
        } else if (strcmp(a, "--timeout-s") == 0) {
            bad = parse_long(val, 1, 3600, &timeout_s);
        } else if (strcmp(a, "--rel-tol") == 0) {
            char *end;

            tol = strtod(val, &end);
            bad = end == val || *end || !(tol >= 0);
        } else {
            fprintf(stderr, "promql_query: unknown option %s\n", a);
            goto usage;
        }
        if (bad) {
            fprintf(stderr, "promql_query: bad value for %s: %s\n", a, val);
            goto usage;
        }
    }
    if (!nsv || !query) {
        fprintf(stderr, "promql_query: --url and --query are required\n");
        goto usage;
    }
    if (!at && nsv > 1)
        fprintf(stderr, "promql_query: no --time: each server evaluates at its own now\n");

    rc = 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    for (size_t s = 0; s < nsv; s++) {
        struct rg_buf u = { 0 };
        char *q, *t = NULL;
        size_t blen = strlen(sv[s].base);

        sv[s].curl = curl_easy_init();
        sv[s].ms = malloc((size_t)runs * sizeof(double));
        if (!sv[s].curl || !sv[s].ms)
            goto out;
        q = curl_easy_escape(sv[s].curl, query, 0);
        if (at)
            t = curl_easy_escape(sv[s].curl, at, 0);
        /* A trailing slash on BASE would make the path //api/v1/query. */
        while (blen > 0 && sv[s].base[blen - 1] == '/')
            blen--;
        if (q && (!at || t))
            rg_buf_printf(&u, "%.*s/api/v1/query?query=%s%s%s", (int)blen, sv[s].base, q,
                          t ? "&time=" : "", t ? t : "");
        curl_free(q);
        curl_free(t);
        if (!u.data)
            goto out;
        sv[s].url = rg_buf_steal(&u, NULL);
        curl_easy_setopt(sv[s].curl, CURLOPT_URL, sv[s].url);
        curl_easy_setopt(sv[s].curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(sv[s].curl, CURLOPT_WRITEDATA, &sv[s]);
        curl_easy_setopt(sv[s].curl, CURLOPT_TIMEOUT, timeout_s);
        curl_easy_setopt(sv[s].curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(sv[s].curl, CURLOPT_TCP_NODELAY, 1L);
    }

    /* Warm-up: untimed, and the first answers are the ones compared. */
    for (long r = 0; r < warmup; r++)
        for (size_t s = 0; s < nsv; s++) {
            double ms;

            if (run_once(&sv[s], &ms) != 0)
                goto out;
            if (r == 0 && rg_buf_append(&sv[s].first, sv[s].body.data, sv[s].body.len) != 0)
                goto out;
        }
    for (size_t s = 0; s < nsv; s++)
        if (flatten(sv[s].base, sv[s].first.data, &flats[s]) != 0)
            goto out;
    for (size_t s = 1; s < nsv; s++)
        if (!same_answer(&flats[0], sv[0].base, &flats[s], sv[s].base, tol))
            equal = 0;

    for (long r = 0; r < runs; r++)
        for (size_t k = 0; k < nsv; k++) {
            struct server *x = &sv[((size_t)r + k) % nsv];

            if (run_once(x, &x->ms[x->nms]) != 0)
                goto out;
            x->nms++;
        }

    for (size_t s = 0; s < nsv; s++) {
        const struct flat *f = &flats[s];

        qsort(sv[s].ms, sv[s].nms, sizeof(double), dbl_cmp);
        printf("promql_query: url=%s runs=%zu min_ms=%.3f median_ms=%.3f p90_ms=%.3f "
               "max_ms=%.3f bytes=%zu ",
               sv[s].base, sv[s].nms, sv[s].ms[0], median(sv[s].ms, sv[s].nms),
               percentile(sv[s].ms, sv[s].nms, 0.9), sv[s].ms[sv[s].nms - 1], sv[s].body.len);
        if (f->n == 1 && f->s[0].n == 1)
            printf("result=%.17g\n", f->s[0].v[0]);
        else
            printf("result=%zu_series\n", f->n);
    }
    for (size_t s = 1; s < nsv; s++)
        printf("promql_query: ratio url=%s vs=%s median_ratio=%.4f\n", sv[0].base, sv[s].base,
               median(sv[0].ms, sv[0].nms) / median(sv[s].ms, sv[s].nms));
    if (nsv > 1)
        printf("promql_query: results equal=%s rel_tol=%g\n", equal ? "yes" : "no", tol);
    rc = equal ? 0 : 1;

out:
    for (size_t s = 0; s < nsv; s++) {
        flat_cleanup(&flats[s]);
        if (sv[s].curl)
            curl_easy_cleanup(sv[s].curl);
        free(sv[s].url);
        free(sv[s].ms);
        rg_buf_cleanup(&sv[s].body);
        rg_buf_cleanup(&sv[s].first);
    }
    curl_global_cleanup();
    return rc;
usage:
    usage(stderr);
    return rc;
}
