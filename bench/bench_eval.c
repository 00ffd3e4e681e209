/* bench/bench_eval.c - cost of PromQL evaluation and of one deployments-manager cycle.
 *
 * Builds in process a store shaped like a real fleet: per job (default 1,000 jobs,
 * "svc-000" ... "svc-999") two instances, each with
 *   http_requests_total{code, handler, instance, job}  5 handlers x 10 codes,
 *   container_cpu_usage_seconds_total, container_spec_cpu_quota,
 *   container_spec_cpu_period, container_memory_working_set_bytes,
 *   container_spec_memory_limit_bytes {container="app", instance, job}, up,
 * and for the first instance's first handler a classic latency histogram,
 *   http_request_duration_seconds_bucket{handler, instance, job, le}, 12 buckets;
 * with the defaults 100,000 request counters and 124,000 series in all, plus the
 * database job's up and connection series. Every series gets 20 samples 15 s apart
 * (a healthy service: 0.05 % of requests are 5xx, P99 about 50 ms, CPU 25 %, memory
 * 40 %). Then it measures:
 *   (a) the PromQL benchmark's two instant queries (issue 3) through
 *       rg_promql_eval_instant: median and p90 over the runs, and the answers,
 *       "cold" (what the engine keeps in the store between queries dropped before
 *       each run, as a collection that removes series does) and "warm";
 *   (b) the deployments manager on the bundled configuration (rules/rollgate.yml,
 *       loaded with rg_config_load_file, so discovery on the job label makes every
 *       job a deployment), every deployment started in the canary phase, then
 *       rg_deploy_tick once per second of virtual time: median and p90 per cycle, and
 *       a digest of every check's value so that two builds can be compared for
 *       identical results; warm (no series removed between ticks, the steady state)
 *       and cold (as after every collection that removes series). The last line
 *       says PASS or FAIL against the goal of <= 50 ms of evaluation cost per
 *       cycle: the warm median in CPU time, and the wall-clock median, which only
 *       a machine busy with other work makes longer; and whether cold cycles meet
 *       it too. BENCH_EVAL_UNBATCHED=1 also times three cycles with batching off.
 * Every figure is given in wall-clock time and in the thread's CPU time, which a
 * busy machine does not inflate. Run from the repository root (the configuration is
 * found relative to it).
 * Usage: bench_eval [jobs] [cycles] [query runs]
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "promql/ast.h"
#include "promql/engine.h"
#include "rules/deploy.h"
#include "rules/verdict.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"

#define NINST 2
#define NHANDLERS 5
#define NCODES 10
#define NBUCKETS 12
#define NSAMPLES 20
#define STEP_MS 15000
#define GOAL_MS 50.0
#define CONFIG "rules/rollgate.yml"

/* Sample times end here (a whole minute; queries and ticks fall between samples). */
#define T_END INT64_C(1700000040000)

static const char *const codes[NCODES] = {
    "200", "201", "204", "304", "400", "404", "429", "500", "502", "503",
};
/* Shares of the requests per code; the three 5xx codes make 0.05 %, half the gate. */
static const double code_share[NCODES] = {
    0.8145, 0.050, 0.030, 0.050, 0.020, 0.030, 0.005, 0.0003, 0.0001, 0.0001,
};
static const char *const handlers[NHANDLERS] = {
    "/api/v1/items", "/api/v1/orders", "/api/v1/users", "/healthz", "/",
};
static const char *const les[NBUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf",
};
/* Cumulative share of requests at or below each bucket's bound: P99 about 50 ms. */
static const double le_share[NBUCKETS] = {
    0.10, 0.30, 0.60, 0.99, 0.995, 0.998, 0.9995, 0.9999, 1, 1, 1, 1,
};

static uint64_t rng_state = UINT64_C(0x9e3779b97f4a7c15);

/* xorshift64*: a fixed sequence, so every run builds the same data. */
static double uni(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * UINT64_C(0x2545f4914f6cdd1d)) >> 11) / 9007199254740992.0;
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* CPU time of this thread: unlike the wall clock, it does not count the time the
 * thread waited for a processor, so figures from a busy machine stay comparable. */
static double cpu_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_eval: %s: %s\n", what, rg_strerror(rc));
    exit(1);
}

/* Creates the series of @kv (name, value, ... NULL; sorted by name, __name__ first)
 * and appends @vals[k] at the k-th sample time. */
static void put(struct rg_store *st, const char *const *kv, const double *vals)
{
    struct rg_label_ref l[8];
    struct rg_series *s;
    size_t n = 0;
    int rc;

    for (; kv[2 * n]; n++) {
        l[n].name.ptr = kv[2 * n];
        l[n].name.len = strlen(kv[2 * n]);
        l[n].value.ptr = kv[2 * n + 1];
        l[n].value.len = strlen(kv[2 * n + 1]);
    }
    rc = rg_store_series_get(st, l, n, &s, NULL);
    if (rc)
        die("series", rc);
    for (int k = 0; k < NSAMPLES; k++) {
        int64_t t = T_END - (int64_t)(NSAMPLES - 1 - k) * STEP_MS;

        rc = rg_store_append(st, s, t, vals[k]);
        if (rc < 0)
            die("append", rc);
    }
}

/* A counter starting at @start that grows by about @rate per second (integral). */
static void counter(double *v, double start, double rate)
{
    v[0] = floor(start);
    for (int k = 1; k < NSAMPLES; k++)
        v[k] = v[k - 1] + floor(rate * STEP_MS / 1000.0 + uni());
}

static void gauge(double *v, double mid, double spread)
{
    for (int k = 0; k < NSAMPLES; k++)
        v[k] = mid + spread * (2 * uni() - 1);
}

static void build_job(struct rg_store *st, const char *job)
{
    double v[NSAMPLES];
    char inst[64];

    for (int i = 0; i < NINST; i++) {
        double load = 0.7 + 0.6 * uni();

        snprintf(inst, sizeof(inst), "10.%d.%d.%d:8080", (int)(uni() * 250), i, 10 + i);
        for (int h = 0; h < NHANDLERS; h++) {
            double hw = 0.2 + 1.8 * uni();

            for (int c = 0; c < NCODES; c++) {
                const char *kv[] = { "__name__", "http_requests_total", "code", codes[c],
                                     "handler", handlers[h], "instance", inst, "job", job,
                                     NULL };

                counter(v, 1e6 * uni(), 100.0 * load * hw * code_share[c]);
                put(st, kv, v);
            }
        }
        if (i == 0) {
            double cum[NSAMPLES][NBUCKETS];
            double rate = 20.0 * load;

            for (int b = 0; b < NBUCKETS; b++)
                cum[0][b] = floor(1e5 * le_share[b]);
            for (int k = 1; k < NSAMPLES; k++) {
                double n = floor(rate * STEP_MS / 1000.0);

                for (int b = 0; b < NBUCKETS; b++)
                    cum[k][b] = cum[k - 1][b] + floor(n * le_share[b]);
            }
            for (int b = 0; b < NBUCKETS; b++) {
                const char *kv[] = { "__name__", "http_request_duration_seconds_bucket",
                                     "handler", handlers[0], "instance", inst, "job", job,
                                     "le", les[b], NULL };

                for (int k = 0; k < NSAMPLES; k++)
                    v[k] = cum[k][b];
                put(st, kv, v);
            }
        }
        {
            const char *cpu[] = { "__name__", "container_cpu_usage_seconds_total", "container",
                                  "app", "instance", inst, "job", job, NULL };
            const char *quota[] = { "__name__", "container_spec_cpu_quota", "container", "app",
                                    "instance", inst, "job", job, NULL };
            const char *period[] = { "__name__", "container_spec_cpu_period", "container",
                                     "app", "instance", inst, "job", job, NULL };
            const char *mem[] = { "__name__", "container_memory_working_set_bytes",
                                  "container", "app", "instance", inst, "job", job, NULL };
            const char *lim[] = { "__name__", "container_spec_memory_limit_bytes", "container",
                                  "app", "instance", inst, "job", job, NULL };
            const char *up[] = { "__name__", "up", "instance", inst, "job", job, NULL };

            counter(v, 1e5 * uni(), 0.25);
            put(st, cpu, v);
            gauge(v, 100000, 0);
            put(st, quota, v);
            put(st, period, v);
            gauge(v, 200e6, 10e6);
            put(st, mem, v);
            gauge(v, 512e6, 0);
            put(st, lim, v);
            gauge(v, 1, 0);
            put(st, up, v);
        }
    }
}

static void build_store(struct rg_store *st, int jobs)
{
    double v[NSAMPLES];
    char job[32];
    const char *up[] = { "__name__", "up", "instance", "db-0:9187", "job", "database", NULL };
    const char *act[] = { "__name__", "pg_stat_activity_count", "instance", "db-0:9187", "job",
                          "database", NULL };
    const char *max[] = { "__name__", "pg_settings_max_connections", "instance", "db-0:9187",
                          "job", "database", NULL };

    for (int j = 0; j < jobs; j++) {
        snprintf(job, sizeof(job), "svc-%03d", j);
        build_job(st, job);
    }
    gauge(v, 1, 0);
    put(st, up, v);
    gauge(v, 40, 5);
    put(st, act, v);
    gauge(v, 200, 0);
    put(st, max, v);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Sorts @ms and returns its median; *@p90 receives the 90th percentile. */
static double summarise(double *ms, int n, double *p90)
{
    qsort(ms, (size_t)n, sizeof(*ms), cmp_double);
    *p90 = ms[(int)ceil(0.9 * n) - 1];
    return n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
}

/* Drops what the engine keeps in the store between queries (rg_store_cache_set()),
 * as a collection that removes series does: the next evaluation starts cold. */
static void drop_cache(const struct rg_store *st)
{
    rg_store_cache_set(st, NULL, NULL);
}

static void time_query(const struct rg_store *st, const char *q, int runs, int cold)
{
    struct rg_promql_opts opts;
    struct rg_promql_node *node;
    struct rg_buf err = { 0 };
    int64_t at = T_END + 3000;
    double *ms = calloc(2 * (size_t)runs, sizeof(*ms)), *cpu = ms + runs, med, p90, first = NAN;
    double cmed, cp90;
    size_t nseries = 0;
    char msg[256];
    int rc;

    if (!ms)
        die("query", RG_ENOMEM);
    rg_promql_opts_default(&opts);
    rc = rg_promql_parse(q, &node, msg, sizeof(msg));
    if (rc) {
        fprintf(stderr, "bench_eval: %s: %s\n", q, msg);
        exit(1);
    }
    for (int r = -3; r < runs; r++) {
        struct rg_promql_result res;
        double t0, c0;

        if (cold)
            drop_cache(st);
        c0 = cpu_ms();
        t0 = now_ms();

        rc = rg_promql_eval_instant(st, node, at, &opts, &res, &err);
        if (rc) {
            fprintf(stderr, "bench_eval: %s: %s\n", q, err.data ? err.data : rg_strerror(rc));
            exit(1);
        }
        if (r >= 0) {
            ms[r] = now_ms() - t0;
            cpu[r] = cpu_ms() - c0;
        }
        nseries = res.nseries;
        if (res.type == RG_PROMQL_VT_VECTOR && res.nseries)
            first = res.series[0].points[0].v;
        rg_promql_result_free(&res);
    }
    med = summarise(ms, runs, &p90);
    cmed = summarise(cpu, runs, &cp90);
    if (cold)
        printf("bench_eval: query %s\n", q);
    printf("bench_eval:   %s median %.3f ms  p90 %.3f ms  cpu median %.3f ms  (%d runs; %zu "
           "series, value %.17g)\n", cold ? "cold" : "warm", med, p90, cmed, runs, nseries,
           first);
    rg_promql_node_free(node);
    rg_buf_cleanup(&err);
    free(ms);
}

struct start_ud {
    struct rg_deploy *d;
    int64_t now;
    int started;
};

static int start_canary(const char *value, void *ud)
{
    struct start_ud *s = ud;

    if (rg_deploy_start_phase(s->d, value, "canary", s->now) == 0)
        s->started++;
    return 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

struct digest_ud {
    const struct rg_deploy *d;
    uint64_t h;
    int *verdicts;   /* counts by enum rg_verdict_kind */
};

static int digest_one(const char *value, void *ud)
{
    struct digest_ud *u = ud;
    const struct rg_verdict *v = rg_deploy_verdict(u->d, value);

    if (!v)
        return 0;
    u->h = fnv(u->h, value, strlen(value));
    u->h = fnv(u->h, &v->verdict, sizeof(v->verdict));
    if ((unsigned)v->verdict < RG_VERDICT__COUNT)
        u->verdicts[v->verdict]++;
    for (size_t i = 0; i < v->nchecks; i++) {
        const struct rg_verdict_check *c = &v->checks[i];

        u->h = fnv(u->h, &c->has_value, sizeof(c->has_value));
        if (c->has_value)
            u->h = fnv(u->h, &c->value, sizeof(c->value));
        u->h = fnv(u->h, &c->state, sizeof(c->state));
        u->h = fnv(u->h, c->error, strlen(c->error));
    }
    return 0;
}

/* FNV-1a over the verdict and every check's value, state and error of every
 * deployment, in job order: equal digests mean equal results. */
static uint64_t digest(const struct rg_deploy *d, const struct rg_store *st, int *verdicts)
{
    struct digest_ud u = { d, UINT64_C(0xcbf29ce484222325), verdicts };

    (void)rg_store_label_values(st, "job", digest_one, &u);
    return u.h;
}

/* Times @cycles ticks; returns 1 when batched and the CPU median is within the goal,
 * and the medians through @cpu_out and @wall_out (may be NULL). */
static int time_deploy(struct rg_store *st, int cycles, int batching, int cold,
                       double *cpu_out, double *wall_out)
{
    struct rg_config cfg;
    struct rg_buf err = { 0 };
    struct rg_deploy *d;
    struct start_ud su;
    int64_t t = T_END + 1000;
    double *ms = calloc(2 * (size_t)cycles, sizeof(*ms)), *cpu = ms + cycles, med, p90;
    double cmed, cp90;
    int verdicts[RG_VERDICT__COUNT] = { 0 };
    uint64_t h;
    int rc;

    if (!ms)
        die("deploy", RG_ENOMEM);
    rg_config_default(&cfg);
    rc = rg_config_load_file(CONFIG, &cfg, &err);
    if (rc) {
        fprintf(stderr, "bench_eval: %s: %s\n", CONFIG, err.data ? err.data : rg_strerror(rc));
        exit(1);
    }
    rc = rg_deploy_new(&cfg, st, NULL, NULL, t, &d, &err);
    if (rc) {
        fprintf(stderr, "bench_eval: deployments: %s\n", err.data ? err.data : rg_strerror(rc));
        exit(1);
    }
    rg_deploy_set_batching(d, batching);
    /* The first tick discovers the jobs; then every one starts its canary phase. */
    rg_deploy_tick(d, t);
    su.d = d;
    su.now = t;
    su.started = 0;
    (void)rg_store_label_values(st, "job", start_canary, &su);
    t += 1000;
    rg_deploy_tick(d, t);
    for (int i = 0; i < cycles; i++) {
        double t0, c0;

        t += 1000;
        if (cold)
            drop_cache(st);
        c0 = cpu_ms();
        t0 = now_ms();
        rg_deploy_tick(d, t);
        ms[i] = now_ms() - t0;
        cpu[i] = cpu_ms() - c0;
    }
    med = summarise(ms, cycles, &p90);
    cmed = summarise(cpu, cycles, &cp90);
    h = digest(d, st, verdicts);
    printf("bench_eval: deploy tick (%s, %s): %zu deployments, %d in canary, %zu series in "
           "the store\n", batching ? "batched" : "unbatched", cold ? "cold" : "warm",
           rg_deploy_count(d), su.started, rg_store_series_count(st));
    printf("bench_eval:   median %.3f ms  p90 %.3f ms  cpu median %.3f ms p90 %.3f ms  (%d "
           "cycles; verdicts hold %d promote %d rollback %d inconclusive %d; digest %016" PRIx64
           ")\n", med, p90, cmed, cp90, cycles,
           verdicts[RG_VERDICT_HOLD], verdicts[RG_VERDICT_PROMOTE], verdicts[RG_VERDICT_ROLLBACK],
           verdicts[RG_VERDICT_INCONCLUSIVE], h);
    rg_deploy_free(d);
    rg_config_cleanup(&cfg);
    rg_buf_cleanup(&err);
    free(ms);
    if (cpu_out)
        *cpu_out = cmed;
    if (wall_out)
        *wall_out = med;
    return batching && cmed <= GOAL_MS;
}

int main(int argc, char **argv)
{
    struct rg_store_config sc;
    struct rg_store *st;
    int jobs = argc > 1 ? atoi(argv[1]) : 1000;
    int cycles = argc > 2 ? atoi(argv[2]) : 20;
    int runs = argc > 3 ? atoi(argv[3]) : 20;
    double t0, cpu = 0, wall = 0;
    int ok, cold_ok, rc;

    /* Discovery and verdict changes of a thousand deployments would drown the figures. */
    rg_log_set_level(RG_LOG_WARN);
    if (jobs < 1 || jobs > 100000 || cycles < 1 || runs < 1) {
        fprintf(stderr, "usage: bench_eval [jobs] [cycles] [query runs]\n");
        return 2;
    }
    rg_store_config_default(&sc);
    rc = rg_store_new(&sc, &st);
    if (rc)
        die("store", rc);
    t0 = now_ms();
    build_store(st, jobs);
    printf("bench_eval: %d jobs, %zu series, %zu samples, %.1f MB in the store, built in %.0f "
           "ms\n", jobs, rg_store_series_count(st), rg_store_sample_count(st),
           (double)rg_store_bytes(st) / 1e6, now_ms() - t0);
    for (int q = 0; q < 2; q++) {
        const char *text = q ? "histogram_quantile(0.99, sum by (le) "
                               "(rate(http_request_duration_seconds_bucket[5m])))"
                             : "sum(rate(http_requests_total{code=~\"5..\"}[1m])) / "
                               "sum(rate(http_requests_total[1m]))";

        time_query(st, text, runs, 1);
        time_query(st, text, runs, 0);
    }
    ok = time_deploy(st, cycles, 1, 0, &cpu, &wall);
    cold_ok = time_deploy(st, cycles, 1, 1, NULL, NULL);
    if (getenv("BENCH_EVAL_UNBATCHED"))
        (void)time_deploy(st, cycles < 3 ? cycles : 3, 0, 0, NULL, NULL);
    printf("bench_eval: %s (deployments manager, %d deployments: median cycle %.1f ms CPU, "
           "%.1f ms wall clock, goal <= %.0f ms; cold cycles, after series were removed: %s)\n",
           ok ? "PASS" : "FAIL", jobs, cpu, wall, GOAL_MS, cold_ok ? "also within" : "over");
    rg_store_free(st);
    return ok ? 0 : 1;
}
