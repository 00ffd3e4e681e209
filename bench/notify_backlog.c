/* bench/notify_backlog.c - notification throughput: a backlog queued during an outage.
 *
 * Measures issue 5's throughput goal: 10,000 events queued while the receiver was down
 * are delivered within 10 s of its return. Everything runs in this process on one
 * libuv loop, as in the daemon: the dispatcher (notify/dispatch.h: durable outbox,
 * retry policy, libcurl multi on the loop) with one webhook-style notifier using the
 * production defaults (retry policy, probe hold, timeout; --in-flight overrides the
 * concurrent requests), and an in-process receiver (http/server.h) that answers 200 to
 * every request. The events go to the dispatcher directly, not through the notifier
 * facade, so requests are not signed.
 *
 * The run goes through these steps:
 *   1. a port on 127.0.0.1 is reserved by a socket that is bound but never listens, so
 *      every connection to it is refused and no other program can take it meanwhile;
 *   2. --events events (rollgate's deployment-event document, about 1.2 KB each, every
 *      one with a distinct 64-hex-digit dedup key that the dispatcher sends as
 *      Idempotency-Key) are emitted in batches of --batch through
 *      rg_dispatch_emit_batch() into an outbox in a fresh temporary directory; the
 *      emit time (the emit calls only, not building the bodies) and the outbox's fsync
 *      count are reported;
 *   3. the dispatcher keeps failing against the refused port for --outage-ms plus a
 *      draw, seeded by --seed, uniform below --outage-jitter-ms (default 500 ms). While
 *      failing, the dispatcher sends one probe at a time and holds the notifier for the
 *      probed event's backoff, which is the policy's minimum (500 ms) as long as events
 *      that were never tried remain; a whole number of those intervals would put the
 *      receiver's return just before a probe every time, so the draw spreads the return
 *      over the probe cycle as a real outage's end would fall;
 *   4. the reserving socket is closed and the receiver starts on that port; the clock
 *      starts here. The receiver checks each request's key and body length and
 *      records the first arrival of every key; a loop check handle (run once per loop
 *      iteration, after I/O) reads the dispatcher's stats and stops the clock when the
 *      last event has been acknowledged;
 *   5. the dispatcher, the client and the receiver are closed, uv_loop_close() must
 *      return 0, and the temporary directory is removed.
 *
 * Per-event latencies run from the event's creation (just before the emit call of its
 * batch; the dispatcher stamps created_ms at the same moment) to the first arrival of
 * its key at the receiver; the acknowledgement follows on the same loop when the
 * response is read. The dispatcher's own mean from creation to ack (stats
 * latency_sum_s, ms resolution) is printed beside them as a cross-check. Percentiles
 * are nearest-rank.
 *
 * Usage:
 *   notify_backlog [--events 10000] [--batch 100] [--in-flight N] [--outage-ms 2000]
 *                  [--outage-jitter-ms 500] [--goal-ms 10000] [--timeout-ms 60000]
 *                  [--seed 1] [--log-level error]
 * --in-flight 0 (the default) keeps the dispatcher's default (8). --timeout-ms bounds
 * the wait after the receiver's start.
 * Output (key=value lines):
 *   notify_backlog: emit events=.. batches=.. body_bytes_mean=.. emit_ms=.. fsyncs=..
 *   notify_backlog: outage ms=.. failed_attempts=..
 *   notify_backlog: delivery first_request_ms=.. delivered_ms=.. events_per_s=.. ...
 *   notify_backlog: latency created_to_received_p50_ms=.. p99_ms=.. ...
 *   notify_backlog: summary events=.. in_flight=.. delivered_ms=.. events_per_s=..
 *                   goal_ms=.. result=PASS|FAIL
 * Exit status: 0 the goal was met, 1 it was missed or the run failed, 2 bad usage.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "http/server.h"
#include "notify/curl_uv.h"
#include "notify/dispatch.h"
#include "notify/outbox.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/time.h"

#define NOTIFIER "bench-hook"
#define KEY_LEN 64
#define MAX_EVENTS 1000000L

struct opts {
    long events;
    long batch;
    long in_flight;                /* 0 = the dispatcher's default */
    long outage_ms;
    long outage_jitter_ms;         /* a seeded uniform draw below this is added */
    long goal_ms;
    long timeout_ms;               /* after the receiver's start */
    unsigned long seed;
    enum rg_log_level log_level;
};

struct bench {
    const struct opts *o;
    uv_loop_t loop;
    struct rg_metrics *metrics;
    struct rg_curl_uv *cu;
    struct rg_dispatch *d;
    struct rg_http_server *srv;
    uv_timer_t outage;             /* brings the receiver up */
    uv_timer_t guard;              /* gives up after --timeout-ms */
    uv_check_t check;              /* stops the clock at the last ack */
    int hold_fd;                   /* bound, never listening: refuses connections */
    int port;
    char dir[256];
    char path[300];
    /* Per event. */
    uint64_t *created_ns;          /* monotonic, just before its batch was emitted */
    uint64_t *received_ns;         /* monotonic, first arrival; 0 = not yet */
    uint32_t *body_len;
    size_t nevents;
    /* Receiver counters. */
    uint64_t requests;
    uint64_t distinct;
    uint64_t duplicates;
    uint64_t unknown;              /* key missing or not one of ours */
    uint64_t bad_body;             /* body length differs from the one emitted */
    /* Timeline (monotonic ns). */
    uint64_t t_emitted, t_up, t_first, t_done;
    uint64_t failed_before_up;     /* retry outcomes counted when the receiver came up */
    struct rg_dispatch_stats final;
    int failed;                    /* the run itself failed (not the goal) */
    int finishing;
    int dispatch_closed, server_stopped;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: notify_backlog [--events N] [--batch N] [--in-flight N] "
               "[--outage-ms MS]\n"
               "                      [--outage-jitter-ms MS] [--goal-ms MS] "
               "[--timeout-ms MS]\n"
               "                      [--seed N] [--log-level L]\n");
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

static int parse_opts(int argc, char **argv, struct opts *o)
{
    long seed = 1;

    *o = (struct opts){ .events = 10000, .batch = 100, .outage_ms = 2000, .outage_jitter_ms = 500,
                        .goal_ms = 10000,
                        .timeout_ms = 60000, .log_level = RG_LOG_ERROR };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (!val) {
            fprintf(stderr, "notify_backlog: %s needs a value\n", a);
            return -1;
        }
        i++;
        if (strcmp(a, "--events") == 0)
            bad = parse_long(val, 1, MAX_EVENTS, &o->events);
        else if (strcmp(a, "--batch") == 0)
            bad = parse_long(val, 1, 100000, &o->batch);
        else if (strcmp(a, "--in-flight") == 0)
            bad = parse_long(val, 0, 1024, &o->in_flight);
        else if (strcmp(a, "--outage-ms") == 0)
            bad = parse_long(val, 0, 600000, &o->outage_ms);
        else if (strcmp(a, "--outage-jitter-ms") == 0)
            bad = parse_long(val, 0, 600000, &o->outage_jitter_ms);
        else if (strcmp(a, "--goal-ms") == 0)
            bad = parse_long(val, 1, 3600000, &o->goal_ms);
        else if (strcmp(a, "--timeout-ms") == 0)
            bad = parse_long(val, 1, 3600000, &o->timeout_ms);
        else if (strcmp(a, "--seed") == 0)
            bad = parse_long(val, 0, 0x7fffffffL, &seed);
        else if (strcmp(a, "--log-level") == 0)
            bad = rg_log_level_parse(val, &o->log_level) != 0;
        else {
            fprintf(stderr, "notify_backlog: unknown option %s\n", a);
            return -1;
        }
        if (bad) {
            fprintf(stderr, "notify_backlog: bad value for %s: %s\n", a, val);
            return -1;
        }
    }
    o->seed = (unsigned long)seed;
    return 0;
}

/* ---- events ------------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The dedup key of event @i: 56 pseudo-random hex digits from the seed and the index,
 * then the index as 8 hex digits, so the receiver can find the event a key belongs to
 * and still check every digit. */
static void event_key(unsigned long seed, size_t i, char out[KEY_LEN + 1])
{
    uint64_t s = ((uint64_t)seed << 32) ^ (uint64_t)i;
    char *p = out;

    for (int w = 0; w < 4; w++) {
        uint64_t r = splitmix64(&s);
        int digits = w < 3 ? 16 : 8;
        for (int k = digits - 1; k >= 0; k--)
            *p++ = "0123456789abcdef"[(r >> (4 * k)) & 0xf];
    }
    snprintf(p, 9, "%08zx", i);
}

static void rfc3339(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char s[24];

    gmtime_r(&t, &tm);
    strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", s, (int)(ms % 1000));
}

/* Appends the body of event @i: rollgate's deployment-event document
 * (docs/notifications.md) with three checks, about 1.2 KB, as the webhook notifier sends
 * it. Returns 0 or RG_ENOMEM. */
static int event_body(struct rg_buf *b, size_t i, const char *key, int64_t now_ms)
{
    static const char *const kinds[] = { "rollback", "verdict_changed", "promote" };
    static const char *const verdicts[] = { "rollback", "hold", "promote" };
    const char *kind = kinds[i % 3], *verdict = verdicts[i % 3];
    char at[32], phase_at[32], since[32];
    double value = 0.01 + (double)(i % 997) / 10000.0;

    rfc3339(now_ms, at);
    rfc3339(now_ms - 600000, phase_at);
    rfc3339(now_ms - 60000, since);
    return rg_buf_printf(b,
        "{\"schema\":\"rollgate.deployment_event/v1\",\"kind\":\"%s\","
        "\"deployment\":\"svc-%03zu\",\"phase\":\"canary-10\",\"phase_started_at\":\"%s\","
        "\"traffic_weight\":10,\"verdict\":\"%s\",\"previous_verdict\":\"hold\","
        "\"reason\":\"trigger error_rate held for 1m: %.4f \\u003e 0.01\",\"at\":\"%s\","
        "\"dedup_key\":\"%s\","
        "\"url\":\"http://rollgate.example:9100/api/v1/deployments/svc-%03zu\","
        "\"checks\":["
        "{\"name\":\"error_rate\",\"kind\":\"trigger\",\"signal\":\"sum(rate("
        "http_requests_total{code=~\\\"5..\\\",job=\\\"svc-%03zu\\\"}[1m])) / sum(rate("
        "http_requests_total{job=\\\"svc-%03zu\\\"}[1m]))\",\"value\":%.4f,"
        "\"op\":\"\\u003e\",\"threshold\":0.01,\"baseline\":null,\"state\":\"firing\","
        "\"since\":\"%s\"},"
        "{\"name\":\"latency_p99\",\"kind\":\"gate\",\"signal\":\"histogram_quantile(0.99, "
        "sum by (le) (rate(http_request_duration_seconds_bucket{job=\\\"svc-%03zu\\\"}"
        "[5m])))\",\"value\":0.0%03zu,\"op\":\"\\u003c\",\"threshold\":0.25,"
        "\"baseline\":0.041,\"state\":\"ok\",\"since\":\"%s\"},"
        "{\"name\":\"saturation\",\"kind\":\"gate\",\"signal\":null,\"value\":null,"
        "\"op\":\"\\u003c\",\"threshold\":0.8,\"baseline\":null,\"state\":\"no_data\","
        "\"since\":\"%s\"}],"
        "\"rollgate_version\":\"0.1.0\"}\n",
        kind, i % 500, phase_at, verdict, value, at, key, i % 500, i % 500, i % 500, value,
        since, i % 500, 30 + i % 60, phase_at, phase_at);
}

/* Emits every event in batches of --batch; fills created_ns and body_len. Returns 0
 * or an error (printed). */
static int emit_all(struct bench *b, double *emit_ms, uint64_t *fsyncs, double *mean_body)
{
    size_t n = b->nevents, bsz = (size_t)b->o->batch;
    struct rg_outbox_entry *es = calloc(bsz, sizeof(*es));
    char (*keys)[KEY_LEN + 1] = calloc(bsz, sizeof(*keys));
    size_t *off = calloc(bsz, sizeof(*off));
    struct rg_outbox_stats s0, s1;
    struct rg_buf bodies = { 0 };
    uint64_t emit_ns = 0, total_body = 0;
    int err = RG_ENOMEM;

    if (!es || !keys || !off)
        goto out;
    rg_outbox_stats(rg_dispatch_outbox(b->d), &s0);
    for (size_t first = 0; first < n; first += bsz) {
        size_t m = n - first < bsz ? n - first : bsz;
        int64_t now_ms = rg_now_ms();
        uint64_t t0;

        rg_buf_reset(&bodies);
        for (size_t k = 0; k < m; k++) {
            event_key(b->o->seed, first + k, keys[k]);
            off[k] = bodies.len;
            err = event_body(&bodies, first + k, keys[k], now_ms);
            if (err)
                goto out;
        }
        for (size_t k = 0; k < m; k++) {
            size_t end = k + 1 < m ? off[k + 1] : bodies.len;
            es[k] = (struct rg_outbox_entry){ .notifier = NOTIFIER, .dedup_key = keys[k],
                                              .content_type = "application/json",
                                              .payload = bodies.data + off[k],
                                              .payload_len = end - off[k] };
            b->body_len[first + k] = (uint32_t)(end - off[k]);
            total_body += end - off[k];
        }
        t0 = rg_mono_ns();
        for (size_t k = 0; k < m; k++)
            b->created_ns[first + k] = t0;
        err = rg_dispatch_emit_batch(b->d, es, m, NULL);
        emit_ns += rg_mono_ns() - t0;
        if (err) {
            fprintf(stderr, "notify_backlog: emit of events %zu..%zu failed: %s\n", first,
                    first + m - 1, rg_strerror(err));
            goto out;
        }
    }
    rg_outbox_stats(rg_dispatch_outbox(b->d), &s1);
    *emit_ms = (double)emit_ns / 1e6;
    *fsyncs = s1.fsyncs - s0.fsyncs;
    *mean_body = (double)total_body / (double)n;
out:
    if (err == RG_ENOMEM)
        fprintf(stderr, "notify_backlog: out of memory while building the events\n");
    rg_buf_cleanup(&bodies);
    free(off);
    free(keys);
    free(es);
    return err;
}

/* ---- receiver ---------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The event index of key @v, or -1 when it is not a key of this run. */
static long key_index(const struct bench *b, const struct rg_slice *v)
{
    char want[KEY_LEN + 1];
    unsigned long idx = 0;

    if (!v || v->len != KEY_LEN)
        return -1;
    for (size_t k = KEY_LEN - 8; k < KEY_LEN; k++) {
        int h = hexval(v->ptr[k]);
        if (h < 0)
            return -1;
        idx = idx * 16 + (unsigned long)h;
    }
    if (idx >= b->nevents)
        return -1;
    event_key(b->o->seed, idx, want);
    return memcmp(want, v->ptr, KEY_LEN) == 0 ? (long)idx : -1;
}

static void on_request(struct rg_http_request *req, struct rg_http_response *res, void *ud)
{
    struct bench *b = ud;
    long idx = key_index(b, rg_http_request_header(req, "Idempotency-Key"));
    uint64_t now = rg_mono_ns();

    b->requests++;
    if (!b->t_first)
        b->t_first = now;
    res->status = 200;
    if (idx < 0) {
        b->unknown++;
        return;
    }
    if (req->body.len != b->body_len[idx])
        b->bad_body++;
    if (b->received_ns[idx]) {
        b->duplicates++;
        return;
    }
    b->received_ns[idx] = now;
    b->distinct++;
}

/* A port on 127.0.0.1 that refuses connections until the receiver starts: a socket
 * bound to it that never listens. Returns 0 or -1 (printed). */
static int reserve_port(struct bench *b)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);

    b->hold_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (b->hold_fd < 0)
        goto fail_socket;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(b->hold_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
        getsockname(b->hold_fd, (struct sockaddr *)&sa, &len))
        goto fail_bind;
    b->port = ntohs(sa.sin_port);
    return 0;

fail_bind:
    close(b->hold_fd);
    b->hold_fd = -1;
fail_socket:
    fprintf(stderr, "notify_backlog: cannot reserve a port: %s\n", strerror(errno));
    return -1;
}

/* ---- run --------------------------------------------------------------------------- */

static void on_server_stopped(void *ud)
{
    struct bench *b = ud;
    b->server_stopped = 1;
}

static void on_dispatch_closed(void *ud)
{
    struct bench *b = ud;

    b->dispatch_closed = 1;
    /* The dispatcher borrows the client, so the client closes after it. */
    rg_curl_uv_close(b->cu, NULL, NULL);
    b->cu = NULL;
}

static void finish(struct bench *b)
{
    if (b->finishing)
        return;
    b->finishing = 1;
    if (b->d)
        rg_dispatch_stats(b->d, NOTIFIER, &b->final);
    uv_close((uv_handle_t *)&b->outage, NULL);
    uv_close((uv_handle_t *)&b->guard, NULL);
    uv_close((uv_handle_t *)&b->check, NULL);
    rg_dispatch_close(b->d, on_dispatch_closed, b);
    b->d = NULL;
    if (b->srv)
        rg_http_server_stop(b->srv, on_server_stopped, b);
    else
        b->server_stopped = 1;
    b->srv = NULL;
}

static void on_guard(uv_timer_t *t)
{
    struct bench *b = t->data;
    struct rg_dispatch_stats st;

    rg_dispatch_stats(b->d, NOTIFIER, &st);
    fprintf(stderr, "notify_backlog: gave up %ld ms after the receiver's start: %llu of %zu "
            "acked, %zu pending, %zu in flight\n", b->o->timeout_ms,
            (unsigned long long)st.acked, b->nevents, st.pending, st.in_flight);
    finish(b);
}

static void on_check(uv_check_t *c)
{
    struct bench *b = c->data;
    struct rg_dispatch_stats st;

    if (!b->t_up || b->t_done || b->finishing)
        return;
    rg_dispatch_stats(b->d, NOTIFIER, &st);
    if (st.acked + st.dropped[RG_OUTBOX_DROP_EXPIRED] + st.dropped[RG_OUTBOX_DROP_REJECTED] +
            st.dropped[RG_OUTBOX_DROP_FULL] >= b->nevents) {
        b->t_done = rg_mono_ns();
        finish(b);
    }
}

static void on_outage_over(uv_timer_t *t)
{
    struct bench *b = t->data;
    struct rg_http_server_config cfg;
    struct rg_dispatch_stats st;
    int err;

    rg_dispatch_stats(b->d, NOTIFIER, &st);
    b->failed_before_up = st.attempts[RG_DISPATCH_RETRY];
    close(b->hold_fd);
    b->hold_fd = -1;
    rg_http_server_config_default(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = b->port;
    cfg.max_body_bytes = 1 << 20;
    err = rg_http_server_start(&b->loop, &cfg, NULL, on_request, b, &b->srv);
    if (err) {
        fprintf(stderr, "notify_backlog: receiver cannot listen on 127.0.0.1:%d: %s\n",
                b->port, rg_strerror(err));
        b->srv = NULL;
        b->failed = 1;
        finish(b);
        return;
    }
    b->t_up = rg_mono_ns();
    uv_timer_start(&b->guard, on_guard, (uint64_t)b->o->timeout_ms, 0);
}

/* Removes the files the outbox left in the temporary directory, then the directory. */
static void remove_dir(const char *dir)
{
    DIR *dh = opendir(dir);
    struct dirent *e;
    char p[600];

    if (dh) {
        while ((e = readdir(dh)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(dh);
    }
    if (rmdir(dir))
        fprintf(stderr, "notify_backlog: cannot remove %s: %s\n", dir, strerror(errno));
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted @v[0..n). */
static double percentile(const double *v, size_t n, double q)
{
    size_t r = (size_t)((double)n * q + 0.999999999);

    if (r < 1)
        r = 1;
    return v[(r > n ? n : r) - 1];
}

/* Prints the figures and returns 1 when the goal was met. */
static int report(struct bench *b, double emit_ms, uint64_t fsyncs, double mean_body)
{
    size_t n = b->nevents, got = 0;
    double *from_create = calloc(n, sizeof(double)), *from_up = calloc(n, sizeof(double));
    double outage_ms = (double)(b->t_up - b->t_emitted) / 1e6;
    double delivered_ms = b->t_done ? (double)(b->t_done - b->t_up) / 1e6 : -1;
    double first_ms = b->t_first ? (double)(b->t_first - b->t_up) / 1e6 : -1;
    double drain_s = b->t_done && b->t_first ? (double)(b->t_done - b->t_first) / 1e9 : 0;
    double dmean = b->final.acked ? b->final.latency_sum_s * 1000 / (double)b->final.acked : 0;
    unsigned in_flight = b->o->in_flight ? (unsigned)b->o->in_flight : 8;
    int ok;

    printf("notify_backlog: emit events=%zu batches=%zu batch=%ld body_bytes_mean=%.0f "
           "emit_ms=%.1f emit_events_per_s=%.0f fsyncs=%llu\n", n,
           (n + (size_t)b->o->batch - 1) / (size_t)b->o->batch, b->o->batch, mean_body,
           emit_ms, emit_ms > 0 ? (double)n / (emit_ms / 1000) : 0,
           (unsigned long long)fsyncs);
    printf("notify_backlog: outage ms=%.0f failed_attempts=%llu\n", b->t_up ? outage_ms : 0,
           (unsigned long long)b->failed_before_up);
    if (!from_create || !from_up) {
        free(from_create);
        free(from_up);
        fprintf(stderr, "notify_backlog: out of memory\n");
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!b->received_ns[i])
            continue;
        from_create[got] = (double)(b->received_ns[i] - b->created_ns[i]) / 1e6;
        from_up[got] = b->received_ns[i] > b->t_up
                           ? (double)(b->received_ns[i] - b->t_up) / 1e6 : 0;
        got++;
    }
    printf("notify_backlog: delivery acked=%llu first_request_ms=%.1f delivered_ms=%.1f "
           "events_per_s=%.0f drain_events_per_s=%.0f requests=%llu distinct=%llu "
           "duplicates=%llu unknown=%llu bad_body=%llu dropped=%llu\n",
           (unsigned long long)b->final.acked, first_ms, delivered_ms,
           delivered_ms > 0 ? (double)n / (delivered_ms / 1000) : 0,
           drain_s > 0 ? (double)n / drain_s : 0, (unsigned long long)b->requests,
           (unsigned long long)b->distinct, (unsigned long long)b->duplicates,
           (unsigned long long)b->unknown, (unsigned long long)b->bad_body,
           (unsigned long long)(b->final.dropped[RG_OUTBOX_DROP_EXPIRED] +
                                b->final.dropped[RG_OUTBOX_DROP_REJECTED] +
                                b->final.dropped[RG_OUTBOX_DROP_FULL] +
                                b->final.dropped[RG_OUTBOX_DROP_NO_NOTIFIER]));
    if (got) {
        qsort(from_create, got, sizeof(double), dbl_cmp);
        qsort(from_up, got, sizeof(double), dbl_cmp);
        printf("notify_backlog: latency created_to_received_p50_ms=%.1f "
               "created_to_received_p99_ms=%.1f created_to_received_max_ms=%.1f "
               "return_to_received_p50_ms=%.1f return_to_received_p99_ms=%.1f "
               "dispatcher_created_to_ack_mean_ms=%.1f\n",
               percentile(from_create, got, 0.5), percentile(from_create, got, 0.99),
               from_create[got - 1], percentile(from_up, got, 0.5),
               percentile(from_up, got, 0.99), dmean);
    }
    free(from_create);
    free(from_up);
    ok = !b->failed && b->t_done && b->final.acked == n && b->distinct == n && !b->unknown &&
         !b->bad_body && delivered_ms <= (double)b->o->goal_ms;
    printf("notify_backlog: summary events=%zu in_flight=%u outage_ms=%.0f emit_ms=%.1f "
           "fsyncs=%llu delivered_ms=%.1f events_per_s=%.0f goal_ms=%ld result=%s\n", n,
           in_flight, b->t_up ? outage_ms : 0, emit_ms, (unsigned long long)fsyncs,
           delivered_ms, delivered_ms > 0 ? (double)n / (delivered_ms / 1000) : 0,
           b->o->goal_ms, ok ? "PASS" : "FAIL");
    return ok;
}

/* Opens the client and the dispatcher with the notifier and starts delivery. Returns
 * 0 or an error (printed); on error the caller still runs the loop to release what
 * was opened. */
static int setup_dispatch(struct bench *b)
{
    struct rg_dispatch_config cfg;
    struct rg_dispatch_notifier n;
    char url[64];
    int err;

    err = rg_curl_uv_new(&b->loop, &b->cu);
    if (err) {
        fprintf(stderr, "notify_backlog: curl client: %s\n", rg_strerror(err));
        return err;
    }
    memset(&cfg, 0, sizeof(cfg));
    rg_outbox_config_default(&cfg.outbox);
    cfg.outbox.path = b->path;
    /* The defaults bound the outbox at 100,000 events and 64 MiB (about 48,000 of these
     * events); a larger run must not drop its oldest events, so the bounds grow with
     * it, allowing 4 KiB per event. */
    if (b->nevents > 100000)
        cfg.outbox.max_events = b->nevents;
    if ((uint64_t)b->nevents * 4096 > ((uint64_t)64 << 20))
        cfg.outbox.max_bytes = (uint64_t)b->nevents * 4096;
    cfg.metrics = b->metrics;
    cfg.seed = b->o->seed;
    err = rg_dispatch_new(&b->loop, b->cu, &cfg, &b->d);
    if (err) {
        fprintf(stderr, "notify_backlog: dispatcher: %s\n", rg_strerror(err));
        return err;
    }
    /* Production settings: the default retry policy, probe hold and timeout. */
    memset(&n, 0, sizeof(n));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", b->port);
    n.name = NOTIFIER;
    n.url = url;
    n.max_in_flight = (unsigned)b->o->in_flight;
    err = rg_dispatch_add_notifier(b->d, &n);
    if (!err)
        err = rg_dispatch_start(b->d);
    if (err)
        fprintf(stderr, "notify_backlog: notifier: %s\n", rg_strerror(err));
    return err;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct bench b;
    const char *tmp = getenv("TMPDIR");
    double emit_ms = 0, mean_body = 0;
    uint64_t fsyncs = 0;
    int ok = 0, err;

    if (parse_opts(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    rg_log_set_level(o.log_level);
    memset(&b, 0, sizeof(b));
    b.o = &o;
    b.hold_fd = -1;
    b.nevents = (size_t)o.events;
    b.created_ns = calloc(b.nevents, sizeof(*b.created_ns));
    b.received_ns = calloc(b.nevents, sizeof(*b.received_ns));
    b.body_len = calloc(b.nevents, sizeof(*b.body_len));
    b.metrics = rg_metrics_new();
    if (!b.created_ns || !b.received_ns || !b.body_len || !b.metrics) {
        fprintf(stderr, "notify_backlog: out of memory\n");
        goto fail_alloc;
    }
    snprintf(b.dir, sizeof(b.dir), "%s/rg-backlog-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(b.dir)) {
        fprintf(stderr, "notify_backlog: mkdtemp %s: %s\n", b.dir, strerror(errno));
        goto fail_alloc;
    }
    snprintf(b.path, sizeof(b.path), "%s/notify.outbox", b.dir);
    if (reserve_port(&b))
        goto fail_port;
    err = uv_loop_init(&b.loop);
    if (err) {
        fprintf(stderr, "notify_backlog: uv_loop_init: %s\n", uv_strerror(err));
        goto fail_loop;
    }
    uv_timer_init(&b.loop, &b.outage);
    uv_timer_init(&b.loop, &b.guard);
    uv_check_init(&b.loop, &b.check);
    b.outage.data = b.guard.data = b.check.data = &b;
    printf("notify_backlog: receiver port 127.0.0.1:%d (refusing), outbox in %s\n", b.port,
           b.dir);

    if (setup_dispatch(&b) || emit_all(&b, &emit_ms, &fsyncs, &mean_body)) {
        b.failed = 1;
        finish(&b);
    } else {
        uint64_t s = o.seed ^ 0x6f75746167650000ULL, outage = (uint64_t)o.outage_ms;

        /* The loop's cached time predates the emission; the outage starts now. */
        uv_update_time(&b.loop);
        b.t_emitted = rg_mono_ns();
        uv_check_start(&b.check, on_check);
        if (o.outage_jitter_ms)
            outage += splitmix64(&s) % (uint64_t)o.outage_jitter_ms;
        uv_timer_start(&b.outage, on_outage_over, outage, 0);
    }
    uv_run(&b.loop, UV_RUN_DEFAULT);
    /* A failed setup may leave the client open when the dispatcher never existed. */
    if (b.cu) {
        rg_curl_uv_close(b.cu, NULL, NULL);
        b.cu = NULL;
        uv_run(&b.loop, UV_RUN_DEFAULT);
    }
    if (!b.failed)
        ok = report(&b, emit_ms, fsyncs, mean_body);
    err = uv_loop_close(&b.loop);
    if (err) {
        fprintf(stderr, "notify_backlog: uv_loop_close: %s (handles left open)\n",
                uv_strerror(err));
        ok = 0;
    }
    printf("notify_backlog: shutdown loop_close=%d dispatcher_closed=%d receiver_stopped=%d\n",
           err, b.dispatch_closed, b.server_stopped);
fail_loop:
    if (b.hold_fd >= 0)
        close(b.hold_fd);
fail_port:
    remove_dir(b.dir);
fail_alloc:
    rg_metrics_free(b.metrics);
    free(b.body_len);
    free(b.received_ns);
    free(b.created_ns);
    return ok ? 0 : 1;
}
