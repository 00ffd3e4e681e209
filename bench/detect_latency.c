/* bench/detect_latency.c - detection latency: breaching sample to `rollback` in the API.
 *
 * Measures, against a running rollgate, how long a deployment takes to turn `rollback`
 * after its first breaching sample arrives: the time from just before the POST of that
 * sample to the first GET /api/v1/deployments/<name> whose verdict is "rollback". The
 * daemon must run a checklist with the bundled rollback trigger (error_ratio_instant >
 * 1%) and discovery on the `job` label, so that every job written here becomes a
 * deployment; its evaluation interval is given with --interval-ms.
 *
 * Each trial uses a fresh deployment (job <prefix><N>) and goes through these steps:
 *   1. two minutes of healthy history in one request (samples 1 s apart);
 *   2. healthy samples every --feed-ms until discovery shows the deployment, then
 *      POST .../phase {"phase":"canary"};
 *   3. healthy samples for a random time, --settle-ms plus a uniform draw below one
 *      evaluation interval, so the breach falls at a uniformly distributed point of
 *      the evaluation cycle (the deployment must not be in rollback by then);
 *   4. the first breaching sample is posted (the clock starts just before the POST),
 *      then a breaching sample every --feed-ms while GET polls the deployment every
 *      --poll-ms on a keep-alive connection until its verdict is "rollback".
 * The service model is the one of tests/integration/svcgen.py: counters are functions
 * of absolute time (--rate requests per second since an origin before the history), so
 * consecutive requests continue each other without counter resets; a 5xx counter that
 * stays flat while healthy and, from the last healthy sample on, grows at 2% of the
 * requests, so the last two samples (what irate reads) give an error ratio of exactly
 * 0.02; and classic histogram buckets with a P99 near 48 ms, below every latency check.
 * Values are doubles, so a 2% share of a 100 ms step is exact at any rate.
 *
 * With --background N the daemon judges N more deployments (jobs bg-1 ... bg-N, fed by
 * a thread of their own), so the figures show how the evaluation's cost on the daemon's
 * one loop adds to the latency.
 *
 * Besides the latency each trial reports its two parts, split at the verdict's
 * "verdict_since" (the evaluation time of the tick that decided it, on the daemon's
 * wall clock, which is this machine's): tick_wait_ms, from the POST to that tick (the
 * wait for the next evaluation), and after_tick_ms, from the tick to the answer that
 * showed it (the tick's own cost plus the polling delay). verdict_since has a
 * resolution of 1 ms, so the split is good to about a millisecond.
 *
 * With --webhook-port the run also measures the end-to-end latency to a notification:
 * a receiver thread listens on 127.0.0.1:PORT (the daemon's configuration must name a
 * webhook notifier there for rollback events), and each trial also waits for the
 * rollback deployment event of its deployment; webhook_ms runs from the same POST to
 * the moment that request's body was completely received.
 *
 * Usage:
 *   detect_latency --url http://127.0.0.1:PORT [--interval-ms 1000] [--trials 20]
 *                  [--goal-ms 1200] [--poll-ms 5] [--feed-ms 100] [--settle-ms 300]
 *                  [--rate 1000] [--prefix trial-] [--seed 1] [--timeout-ms T]
 *                  [--webhook-port PORT] [--webhook-goal-ms 1500]
 *                  [--background N] [--background-feed-ms 1000]
 * Output, one key=value line per trial and a summary (p99 is the nearest-rank 99th
 * percentile, which is the maximum for fewer than 100 trials):
 *   detect_latency: trial=N job=J latency_ms=.. tick_wait_ms=.. after_tick_ms=..
 *                   post_ms=.. polls=.. [webhook_ms=..]
 *   detect_latency: summary interval_ms=.. trials=.. min_ms=.. p50_ms=.. p99_ms=..
 *                   max_ms=.. mean_ms=.. goal_p99_ms=.. result=PASS|FAIL
 * and with --webhook-port the same line named webhook_summary, and the receiver's
 * counts of requests and matched rollback events; with --background a line with the
 * number of background requests that failed (any makes the run fail). --timeout-ms bounds each wait
 * (discovery, the rollback, the webhook; default ten intervals, at least 10 s).
 * Exit status: 0 every goal was met, 1 one was missed or a trial failed, 2 bad usage.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "ingest/rw_encode.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

#define MAX_TRIALS 1000
#define MAX_BODY ((size_t)4 << 20)     /* bytes of one API answer kept; more is an error */
#define HISTORY_MS INT64_C(120000)     /* healthy history written before each trial */
#define HISTORY_STEP_MS 1000
#define BREACH_RATIO 0.02
#define NBUCKETS 9

/* Cumulative share of requests at or below each bucket bound: P99 about 48 ms. */
static const struct {
    const char *le;
    double share;
} buckets[NBUCKETS] = {
    { "0.005", 0.3 }, { "0.01", 0.6 }, { "0.025", 0.9 }, { "0.05", 0.995 },
    { "0.1", 0.999 }, { "0.25", 1.0 }, { "0.5", 1.0 }, { "1", 1.0 }, { "+Inf", 1.0 },
};

struct opts {
    const char *url;
    long interval_ms;
    long trials;
    long goal_ms;
    long poll_ms;
    long feed_ms;
    long settle_ms;
    long rate;
    long timeout_ms;
    unsigned long seed;
    const char *prefix;
    long background;            /* more deployments, evaluated as a load */
    long background_feed_ms;
    long webhook_port;          /* 0: no webhook receiver */
    long webhook_goal_ms;
};

/* One HTTP client: a libcurl easy handle keeps its connection alive between calls. */
struct client {
    CURL *curl;                 /* owned */
    struct curl_slist *hdrs;    /* owned; NULL for the API client */
    struct rg_buf body;         /* owned; the last answer */
    int truncated;
};

/* The generated service of one trial (see the header comment). */
struct svc {
    char job[128];
    int64_t origin_ms;          /* counters are 0 here */
    double rate;                /* requests per second */
    int64_t breach_ms;          /* errors grow from here on; INT64_MAX while healthy */
    int64_t last_ms;            /* timestamp of the newest sample written */
};

/* ---- Clocks and randomness ------------------------------------------------------- */

static double mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms)
{
    struct timespec ts;

    if (ms <= 0)
        return;
    ts.tv_sec = (time_t)(ms / 1e3);
    ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1e3) * 1e6);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* xorshift64*: a reproducible draw for a given --seed, independent of libc's rand. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * UINT64_C(2685821657736338717);
}

/* ---- The service model ----------------------------------------------------------- */

static double svc_total(const struct svc *s, int64_t t)
{
    return s->rate * (double)(t - s->origin_ms) / 1e3;
}

static double svc_errors(const struct svc *s, int64_t t)
{
    if (t <= s->breach_ms)
        return 0;
    return BREACH_RATIO * (svc_total(s, t) - svc_total(s, s->breach_ms));
}

/* Appends the 11 series of @s with one sample at each of @ts[0..n). */
static int svc_encode(const struct svc *s, struct rg_rw_encoder *enc, const int64_t *ts,
                      size_t n)
{
    struct rg_sample smp[HISTORY_MS / HISTORY_STEP_MS + 1];
    struct rg_label_ref l[4];
    int rc;

    if (n > sizeof(smp) / sizeof(smp[0]))
        return RG_EINVAL;
    /* Labels in name order, as remote write requires. */
    for (int code = 0; code < 2; code++) {
        l[0] = (struct rg_label_ref){ { "__name__", 8 }, { "http_requests_total", 19 } };
        l[1] = (struct rg_label_ref){ { "code", 4 }, { code ? "500" : "200", 3 } };
        l[2] = (struct rg_label_ref){ { "instance", 8 }, { "i1", 2 } };
        l[3] = (struct rg_label_ref){ { "job", 3 }, { s->job, strlen(s->job) } };
        for (size_t i = 0; i < n; i++) {
            double e = svc_errors(s, ts[i]);
            smp[i] = (struct rg_sample){ ts[i], code ? e : svc_total(s, ts[i]) - e };
        }
        if ((rc = rg_rw_encoder_add_series(enc, l, 4, smp, n)))
            return rc;
    }
    for (size_t b = 0; b < NBUCKETS; b++) {
        l[0] = (struct rg_label_ref){ { "__name__", 8 },
                                      { "http_request_duration_seconds_bucket", 36 } };
        l[1] = (struct rg_label_ref){ { "instance", 8 }, { "i1", 2 } };
        l[2] = (struct rg_label_ref){ { "job", 3 }, { s->job, strlen(s->job) } };
        l[3] = (struct rg_label_ref){ { "le", 2 }, { buckets[b].le, strlen(buckets[b].le) } };
        for (size_t i = 0; i < n; i++)
            smp[i] = (struct rg_sample){ ts[i], svc_total(s, ts[i]) * buckets[b].share };
        if ((rc = rg_rw_encoder_add_series(enc, l, 4, smp, n)))
            return rc;
    }
    return 0;
}

/* ---- HTTP ------------------------------------------------------------------------ */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct client *c = ud;
    size_t len = size * n;

    if (c->body.len + len > MAX_BODY) {
        c->truncated = 1;
        return 0;   /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    return rg_buf_append(&c->body, p, len) == 0 ? len : 0;
}

static int client_init(struct client *c, long timeout_ms)
{
    memset(c, 0, sizeof(*c));
    if (!(c->curl = curl_easy_init()))
        return -1;
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_TCP_NODELAY, 1L);
    return 0;
}

static void client_cleanup(struct client *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->hdrs);
    rg_buf_cleanup(&c->body);
}

/* Appends @line to *@list; 0, or -1 with the list intact when out of memory. */
static int add_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);

    if (!l)
        return -1;
    *list = l;
    return 0;
}

/* Performs the request set up on @c; sets *@code. Returns 0, or -1 after printing a
 * transport error. */
static int perform(struct client *c, const char *what, long *code)
{
    CURLcode rc;

    rg_buf_reset(&c->body);
    c->truncated = 0;
    *code = 0;
    rc = curl_easy_perform(c->curl);
    if (rc != CURLE_OK) {
        fprintf(stderr, "detect_latency: %s: %s%s\n", what, curl_easy_strerror(rc),
                c->truncated ? " (answer too large)" : "");
        return -1;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, code);
    return 0;
}

static void print_answer(const char *what, long code, const struct client *c)
{
    fprintf(stderr, "detect_latency: %s: status %ld: %.*s\n", what, code,
            (int)(c->body.len < 1000 ? c->body.len : 1000), c->body.data ? c->body.data : "");
}

/* The two clocks read together just before a request. */
struct stamp {
    double mono;
    double wall;
};

/* Posts one remote-write request with the samples of @s at @ts[0..n); when @t0 is not
 * NULL it receives the time just before the request is sent. Returns 0 or -1. */
static int post_samples(struct client *w, struct rg_rw_encoder *enc, struct rg_buf *snappy,
                        struct svc *s, const int64_t *ts, size_t n, struct stamp *t0)
{
    long code;

    rg_rw_encoder_reset(enc);
    if (svc_encode(s, enc, ts, n) || rg_rw_encoder_finish(enc, snappy)) {
        fprintf(stderr, "detect_latency: cannot encode a request\n");
        return -1;
    }
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, snappy->data);
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE, (long)snappy->len);
    if (t0) {
        t0->wall = wall_ms();
        t0->mono = mono_ms();
    }
    if (perform(w, "remote write", &code))
        return -1;
    if (code != 204 && code != 200) {
        print_answer("remote write", code, w);
        return -1;
    }
    s->last_ms = ts[n - 1];
    return 0;
}

/* Posts one sample of every series at the current wall time (skipped when the clock
 * has not moved past the newest sample). @t0 as in post_samples. */
static int post_now(struct client *w, struct rg_rw_encoder *enc, struct rg_buf *snappy,
                    struct svc *s, struct stamp *t0)
{
    int64_t t = (int64_t)wall_ms();

    if (t <= s->last_ms)
        t = s->last_ms + 1;
    return post_samples(w, enc, snappy, s, &t, 1, t0);
}

/* GETs the deployment; *@found is 0 for a 404, otherwise @verdict (cap bytes), @reason
 * (rcap bytes) and *@since_ms are filled from data.verdict, data.reason and
 * data.verdict_since. Returns 0 or -1. */
static int get_verdict(struct client *api, int *found, char *verdict, size_t cap,
                       char *reason, size_t rcap, double *since_ms)
{
    const char *vpath[] = { "data", "verdict", NULL };
    const char *spath[] = { "data", "verdict_since", NULL };
    const char *rpath[] = { "data", "reason", NULL };
    char msg[128];
    yajl_val root, v, s, why;
    long code;

    *found = 0;
    if (perform(api, "GET deployment", &code))
        return -1;
    if (code == 404)
        return 0;
    if (code != 200 || !api->body.data) {
        print_answer("GET deployment", code, api);
        return -1;
    }
    root = yajl_tree_parse(api->body.data, msg, sizeof(msg));
    v = root ? yajl_tree_get(root, vpath, yajl_t_string) : NULL;
    s = root ? yajl_tree_get(root, spath, yajl_t_number) : NULL;
    why = root ? yajl_tree_get(root, rpath, yajl_t_string) : NULL;
    if (!v) {
        yajl_tree_free(root);
        print_answer("GET deployment: no data.verdict", code, api);
        return -1;
    }
    snprintf(verdict, cap, "%s", YAJL_GET_STRING(v));
    snprintf(reason, rcap, "%s", why ? YAJL_GET_STRING(why) : "");
    *since_ms = s ? YAJL_GET_DOUBLE(s) * 1e3 : NAN;
    *found = 1;
    yajl_tree_free(root);
    return 0;
}

/* ---- Webhook receiver ------------------------------------------------------------ */

/* A minimal HTTP/1.1 server on a thread of its own, for --webhook-port: it reads
 * requests with a Content-Length body on keep-alive connections (answering an
 * "Expect: 100-continue" as a real server would, so a client that sends one is not
 * timed waiting for it), answers every one with 200, and records for each trial the
 * monotonic time the first deployment event with kind "rollback" for its deployment
 * was completely received. Chunked bodies are refused with 411. */

#define MAX_CONNS 32
#define MAX_HEAD 65536
#define MAX_REQUEST ((size_t)4 << 20)

struct conn {
    int fd;                     /* -1 when the slot is free */
    struct rg_buf in;           /* owned; bytes read and not yet consumed */
    int continued;              /* 100 Continue sent for the current request */
};

struct receiver {
    int lfd;                    /* listening socket, -1 when not listening */
    int stop[2];                /* a byte written to stop[1] ends the thread */
    pthread_t thread;
    pthread_mutex_t mu;         /* guards at_ms and the counters */
    const char *prefix;         /* borrowed; deployments are <prefix><trial> */
    long ntrials;
    double *at_ms;              /* owned; per trial, NAN until its rollback arrived */
    long requests;              /* requests answered */
    long rollbacks;             /* rollback events matched to a trial */
    struct conn conns[MAX_CONNS];
};

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->continued = 0;
    rg_buf_cleanup(&c->in);
}

/* The value of header @name (with its colon, lower case) in @head, or NULL. */
static const char *header_value(const char *head, size_t len, const char *name)
{
    size_t nl = strlen(name);

    for (const char *p = head; p && p < head + len;) {
        const char *eol = memmem(p, (size_t)(head + len - p), "\r\n", 2);
        if ((size_t)((eol ? eol : head + len) - p) > nl && strncasecmp(p, name, nl) == 0) {
            p += nl;
            while (*p == ' ' || *p == '\t')
                p++;
            return p;
        }
        p = eol ? eol + 2 : NULL;
    }
    return NULL;
}

/* Records a rollback event of @body (@len bytes) against its trial. */
static void receiver_event(struct receiver *rx, const char *body, size_t len, double at)
{
    const char *kpath[] = { "kind", NULL };
    const char *dpath[] = { "deployment", NULL };
    size_t plen = strlen(rx->prefix);
    char *text = malloc(len + 1);
    yajl_val root, k, d;
    const char *kind, *name;
    char *end;
    long n;

    if (!text)
        return;
    memcpy(text, body, len);
    text[len] = '\0';
    root = yajl_tree_parse(text, NULL, 0);
    free(text);
    k = root ? yajl_tree_get(root, kpath, yajl_t_string) : NULL;
    d = root ? yajl_tree_get(root, dpath, yajl_t_string) : NULL;
    kind = k ? YAJL_GET_STRING(k) : NULL;
    name = d ? YAJL_GET_STRING(d) : NULL;
    if (kind && name && strcmp(kind, "rollback") == 0 &&
        strncmp(name, rx->prefix, plen) == 0) {
        errno = 0;
        n = strtol(name + plen, &end, 10);
        if (!errno && end != name + plen && !*end && n >= 1 && n <= rx->ntrials) {
            pthread_mutex_lock(&rx->mu);
            if (isnan(rx->at_ms[n - 1])) {
                rx->at_ms[n - 1] = at;
                rx->rollbacks++;
            }
            pthread_mutex_unlock(&rx->mu);
        }
    }
    yajl_tree_free(root);
}

/* Handles every complete request buffered on @c. Returns 0, or -1 to close it. */
static int conn_process(struct receiver *rx, struct conn *c)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    static const char chunked[] = "HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\n"
                                  "Connection: close\r\n\r\n";

    while (c->in.len > 0) {
        const char *end = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
        const char *v;
        size_t head, body = 0;

        if (!end)
            return c->in.len > MAX_HEAD ? -1 : 0;
        head = (size_t)(end - c->in.data) + 4;
        if (header_value(c->in.data, head, "transfer-encoding:")) {
            write_all(c->fd, chunked, sizeof(chunked) - 1);
            return -1;
        }
        if ((v = header_value(c->in.data, head, "content-length:"))) {
            char *e;
            unsigned long long n;

            errno = 0;
            n = strtoull(v, &e, 10);
            if (errno || e == v || n > MAX_REQUEST)
                return -1;
            body = (size_t)n;
        }
        if (c->in.len < head + body) {
            v = header_value(c->in.data, head, "expect:");
            if (v && strncasecmp(v, "100-continue", 12) == 0 && !c->continued) {
                if (write_all(c->fd, cont, sizeof(cont) - 1))
                    return -1;
                c->continued = 1;
            }
            return 0;
        }
        receiver_event(rx, c->in.data + head, body, mono_ms());
        pthread_mutex_lock(&rx->mu);
        rx->requests++;
        pthread_mutex_unlock(&rx->mu);
        if (write_all(c->fd, ok, sizeof(ok) - 1))
            return -1;
        memmove(c->in.data, c->in.data + head + body, c->in.len - head - body);
        c->in.len -= head + body;
        c->continued = 0;
    }
    return 0;
}

static void *receiver_main(void *ud)
{
    struct receiver *rx = ud;
    struct pollfd p[2 + MAX_CONNS];
    int slot[2 + MAX_CONNS];
    char chunk[65536];

    for (;;) {
        nfds_t n = 2;

        p[0] = (struct pollfd){ .fd = rx->stop[0], .events = POLLIN };
        p[1] = (struct pollfd){ .fd = rx->lfd, .events = POLLIN };
        for (int i = 0; i < MAX_CONNS; i++)
            if (rx->conns[i].fd >= 0) {
                slot[n] = i;
                p[n++] = (struct pollfd){ .fd = rx->conns[i].fd, .events = POLLIN };
            }
        if (poll(p, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents)
            break;
        for (nfds_t k = 2; k < n; k++) {
            struct conn *c = &rx->conns[slot[k]];
            ssize_t got;

            if (!p[k].revents)
                continue;
            got = recv(c->fd, chunk, sizeof(chunk), 0);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0 || c->in.len + (size_t)got > MAX_HEAD + MAX_REQUEST ||
                rg_buf_append(&c->in, chunk, (size_t)got) || conn_process(rx, c))
                conn_close(c);
        }
        if (p[1].revents & POLLIN) {
            int fd = accept4(rx->lfd, NULL, NULL, SOCK_CLOEXEC);
            int i = 0;

            while (fd >= 0 && i < MAX_CONNS && rx->conns[i].fd >= 0)
                i++;
            if (fd >= 0 && i == MAX_CONNS)
                close(fd);
            else if (fd >= 0)
                rx->conns[i].fd = fd;
        }
    }
    return NULL;
}

/* Listens on 127.0.0.1:@port and starts the thread. Returns 0 or -1 (printed). */
static int receiver_start(struct receiver *rx, long port, const char *prefix, long ntrials)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int one = 1;

    rx->prefix = prefix;
    rx->ntrials = ntrials;
    if (!(rx->at_ms = malloc((size_t)ntrials * sizeof(*rx->at_ms))))
        goto fail_alloc;
    for (long i = 0; i < ntrials; i++)
        rx->at_ms[i] = NAN;
    for (int i = 0; i < MAX_CONNS; i++)
        rx->conns[i].fd = -1;
    if ((rx->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        goto fail_socket;
    setsockopt(rx->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(rx->lfd, (struct sockaddr *)&a, sizeof(a)) || listen(rx->lfd, 64))
        goto fail_listen;
    if (pipe2(rx->stop, O_CLOEXEC))
        goto fail_listen;
    /* pthread calls return their error instead of setting errno. */
    if ((errno = pthread_mutex_init(&rx->mu, NULL)))
        goto fail_mutex;
    if ((errno = pthread_create(&rx->thread, NULL, receiver_main, rx)))
        goto fail_thread;
    return 0;

fail_thread:
    pthread_mutex_destroy(&rx->mu);
fail_mutex:
    close(rx->stop[0]);
    close(rx->stop[1]);
fail_listen:
    fprintf(stderr, "detect_latency: webhook receiver on 127.0.0.1:%ld: %s\n", port,
            strerror(errno));
    close(rx->lfd);
fail_socket:
    rx->lfd = -1;
    free(rx->at_ms);
    rx->at_ms = NULL;
fail_alloc:
    return -1;
}

/* Stops the thread and frees everything; a receiver that never started is a no-op. */
static void receiver_stop(struct receiver *rx)
{
    char byte = 0;

    if (rx->lfd < 0)
        return;
    while (write(rx->stop[1], &byte, 1) < 0 && errno == EINTR)
        ;
    pthread_join(rx->thread, NULL);
    for (int i = 0; i < MAX_CONNS; i++)
        conn_close(&rx->conns[i]);
    pthread_mutex_destroy(&rx->mu);
    close(rx->stop[0]);
    close(rx->stop[1]);
    close(rx->lfd);
    rx->lfd = -1;
    free(rx->at_ms);
    rx->at_ms = NULL;
}

/* The arrival time of trial @n's rollback event, NAN while it has not arrived. */
static double receiver_arrival(struct receiver *rx, long n)
{
    double at;

    pthread_mutex_lock(&rx->mu);
    at = rx->at_ms[n - 1];
    pthread_mutex_unlock(&rx->mu);
    return at;
}

/* ---- Background deployments ------------------------------------------------------ */

/* --background N adds N more services (jobs bg-1 ... bg-N), hence N more discovered
 * deployments that every tick evaluates, as a load on the evaluation: they get the
 * same history and then one sample of every series each --background-feed-ms, posted
 * by a thread of its own on its own connection so that these larger requests never
 * delay the measuring thread (the daemon still serves them on its one loop, as it
 * would serve a Prometheus). At most BG_PER_REQUEST services go into one request. */

#define BG_PER_REQUEST 100

struct background {
    const struct opts *o;
    long n;
    struct svc *svc;            /* owned; n services */
    struct client write;        /* owned; its own connection */
    struct rg_rw_encoder enc;   /* owned */
    struct rg_buf snappy;       /* owned */
    pthread_t thread;
    int running;
    atomic_int stop;
    atomic_long failures;       /* requests that failed in the thread */
};

/* Posts the samples of every background service at @ts[0..n). Returns 0 or -1. */
static int background_post(struct background *bg, const int64_t *ts, size_t n)
{
    long code;

    for (long i = 0; i < bg->n;) {
        rg_rw_encoder_reset(&bg->enc);
        for (long k = 0; k < BG_PER_REQUEST && i < bg->n; k++, i++)
            if (svc_encode(&bg->svc[i], &bg->enc, ts, n))
                return -1;
        if (rg_rw_encoder_finish(&bg->enc, &bg->snappy))
            return -1;
        curl_easy_setopt(bg->write.curl, CURLOPT_POSTFIELDS, bg->snappy.data);
        curl_easy_setopt(bg->write.curl, CURLOPT_POSTFIELDSIZE, (long)bg->snappy.len);
        if (perform(&bg->write, "background write", &code))
            return -1;
        if (code != 204 && code != 200) {
            print_answer("background write", code, &bg->write);
            return -1;
        }
    }
    return 0;
}

static void *background_main(void *ud)
{
    struct background *bg = ud;
    int64_t last = bg->svc[0].last_ms;
    double next = mono_ms() + (double)bg->o->background_feed_ms;

    while (!atomic_load(&bg->stop)) {
        int64_t t;

        if (mono_ms() < next) {
            sleep_ms(next - mono_ms() < 20 ? next - mono_ms() : 20);
            continue;
        }
        next += (double)bg->o->background_feed_ms;
        t = (int64_t)wall_ms();
        if (t <= last)
            t = last + 1;
        if (background_post(bg, &t, 1))
            atomic_fetch_add(&bg->failures, 1);
        last = t;
    }
    return NULL;
}

/* Writes the history of --background services (bg-1 ... bg-N) and starts the feeding
 * thread. Returns 0 or -1 (printed). */
static int background_start(struct background *bg, const struct opts *o, const char *url)
{
    int64_t hist[HISTORY_MS / HISTORY_STEP_MS + 1];
    int64_t now = (int64_t)wall_ms();
    size_t nh = 0;

    bg->o = o;
    bg->n = o->background;
    rg_rw_encoder_init(&bg->enc);
    if (!(bg->svc = calloc((size_t)bg->n, sizeof(*bg->svc))))
        return -1;
    for (long i = 0; i < bg->n; i++) {
        snprintf(bg->svc[i].job, sizeof(bg->svc[i].job), "bg-%ld", i + 1);
        bg->svc[i].rate = (double)o->rate;
        bg->svc[i].breach_ms = INT64_MAX;
        bg->svc[i].origin_ms = now - HISTORY_MS - 60000;
    }
    for (int64_t t = now - HISTORY_MS; t <= now; t += HISTORY_STEP_MS)
        hist[nh++] = t;
    if (client_init(&bg->write, 60000) ||
        add_header(&bg->write.hdrs, "Content-Encoding: snappy") ||
        add_header(&bg->write.hdrs, "Content-Type: application/x-protobuf") ||
        add_header(&bg->write.hdrs, "X-Prometheus-Remote-Write-Version: 0.1.0"))
        return -1;
    curl_easy_setopt(bg->write.curl, CURLOPT_HTTPHEADER, bg->write.hdrs);
    curl_easy_setopt(bg->write.curl, CURLOPT_URL, url);
    if (background_post(bg, hist, nh))
        return -1;
    for (long i = 0; i < bg->n; i++)
        bg->svc[i].last_ms = now;
    if ((errno = pthread_create(&bg->thread, NULL, background_main, bg))) {
        fprintf(stderr, "detect_latency: background thread: %s\n", strerror(errno));
        return -1;
    }
    bg->running = 1;
    return 0;
}

/* Stops the thread and frees everything; also after a failed background_start(). */
static void background_stop(struct background *bg)
{
    if (bg->running) {
        atomic_store(&bg->stop, 1);
        pthread_join(bg->thread, NULL);
        bg->running = 0;
    }
    client_cleanup(&bg->write);
    rg_buf_cleanup(&bg->snappy);
    rg_rw_encoder_cleanup(&bg->enc);
    free(bg->svc);
    bg->svc = NULL;
}

/* ---- One trial ------------------------------------------------------------------- */

struct bench {
    const struct opts *o;
    struct client write, poll, ctl;
    struct rg_rw_encoder enc;
    struct rg_buf snappy;
    struct rg_buf url;
    char base[1024];            /* --url without a trailing slash */
    uint64_t rnd;
    struct receiver rx;         /* listening only with --webhook-port */
    struct background bg;       /* running only with --background */
};

struct result {
    double latency_ms;
    double tick_wait_ms;
    double after_tick_ms;
    double post_ms;
    long polls;
    double webhook_ms;          /* POST to the webhook's arrival (--webhook-port) */
};

/* Feeds @s every --feed-ms while waiting until @until (monotonic ms). */
static int feed_until(struct bench *b, struct svc *s, double *next_feed, double until)
{
    double t;

    while ((t = mono_ms()) < until) {
        if (t >= *next_feed) {
            if (post_now(&b->write, &b->enc, &b->snappy, s, NULL))
                return -1;
            *next_feed = t + (double)b->o->feed_ms;
        }
        sleep_ms((*next_feed < until ? *next_feed : until) - mono_ms());
    }
    return 0;
}

static int run_trial(struct bench *b, long n, struct result *r)
{
    const struct opts *o = b->o;
    int64_t hist[HISTORY_MS / HISTORY_STEP_MS + 1];
    struct svc s;
    char verdict[32], reason[512], what[160];
    double since = NAN, seen, seen_wall, deadline, next_feed, next_poll;
    struct stamp t0;
    int found = 0;
    long code;
    int64_t now = (int64_t)wall_ms();
    size_t nh = 0;

    memset(r, 0, sizeof(*r));
    memset(&s, 0, sizeof(s));
    snprintf(s.job, sizeof(s.job), "%s%ld", o->prefix, n);
    s.rate = (double)o->rate;
    s.breach_ms = INT64_MAX;
    s.origin_ms = now - HISTORY_MS - 60000;

    /* 1. History. */
    for (int64_t t = now - HISTORY_MS; t <= now; t += HISTORY_STEP_MS)
        hist[nh++] = t;
    if (post_samples(&b->write, &b->enc, &b->snappy, &s, hist, nh, NULL))
        return -1;

    /* 2. Discovery, then the canary phase. */
    rg_buf_reset(&b->url);
    {
        char *esc = curl_easy_escape(b->poll.curl, s.job, 0);

        if (!esc)
            return -1;
        rg_buf_printf(&b->url, "%s/api/v1/deployments/%s", b->base, esc);
        curl_free(esc);
    }
    if (!b->url.data)
        return -1;
    curl_easy_setopt(b->poll.curl, CURLOPT_URL, b->url.data);
    next_feed = mono_ms() + (double)o->feed_ms;
    deadline = mono_ms() + (double)o->timeout_ms;
    for (;;) {
        if (get_verdict(&b->poll, &found, verdict, sizeof(verdict), reason, sizeof(reason),
                        &since))
            return -1;
        if (found)
            break;
        if (mono_ms() > deadline) {
            fprintf(stderr, "detect_latency: %s not discovered within %ld ms\n", s.job,
                    o->timeout_ms);
            return -1;
        }
        if (feed_until(b, &s, &next_feed, mono_ms() + 20))
            return -1;
    }
    rg_buf_puts(&b->url, "/phase");
    if (!b->url.data)
        return -1;
    curl_easy_setopt(b->ctl.curl, CURLOPT_URL, b->url.data);
    curl_easy_setopt(b->ctl.curl, CURLOPT_POSTFIELDS, "{\"phase\":\"canary\"}");
    snprintf(what, sizeof(what), "POST %s/phase", s.job);
    if (perform(&b->ctl, what, &code))
        return -1;
    if (code != 200) {
        print_answer(what, code, &b->ctl);
        return -1;
    }

    /* 3. Healthy samples for a random part of the cycle. */
    if (feed_until(b, &s, &next_feed,
                   mono_ms() + (double)o->settle_ms +
                       (double)(next_random(&b->rnd) % (uint64_t)o->interval_ms)))
        return -1;
    if (get_verdict(&b->poll, &found, verdict, sizeof(verdict), reason, sizeof(reason),
                    &since))
        return -1;
    if (!found || strcmp(verdict, "rollback") == 0) {
        fprintf(stderr, "detect_latency: %s is %s before the breach\n", s.job,
                found ? "already in rollback" : "gone");
        return -1;
    }

    /* 4. The breach: errors grow from the last healthy sample on. */
    s.breach_ms = s.last_ms;
    if (post_now(&b->write, &b->enc, &b->snappy, &s, &t0))
        return -1;
    r->post_ms = mono_ms() - t0.mono;
    next_feed = t0.mono + (double)o->feed_ms;
    deadline = t0.mono + (double)o->timeout_ms;
    for (;;) {
        next_poll = mono_ms() + (double)o->poll_ms;
        if (get_verdict(&b->poll, &found, verdict, sizeof(verdict), reason, sizeof(reason),
                        &since))
            return -1;
        seen = mono_ms();
        seen_wall = wall_ms();
        r->polls++;
        if (!found) {
            fprintf(stderr, "detect_latency: %s disappeared\n", s.job);
            return -1;
        }
        if (strcmp(verdict, "rollback") == 0)
            break;
        if (seen > deadline) {
            fprintf(stderr, "detect_latency: %s: no rollback within %ld ms (verdict %s)\n",
                    s.job, o->timeout_ms, verdict);
            return -1;
        }
        if (seen >= next_feed) {
            if (post_now(&b->write, &b->enc, &b->snappy, &s, NULL))
                return -1;
            next_feed = seen + (double)o->feed_ms;
        }
        sleep_ms(next_poll - mono_ms());
    }
    /* Only the breach may decide: a rollback for another reason (the latency trigger, a
     * database) would time something else. */
    if (!strstr(reason, "error_ratio")) {
        fprintf(stderr, "detect_latency: %s: rollback not caused by the error ratio: %s\n",
                s.job, reason);
        return -1;
    }
    r->latency_ms = seen - t0.mono;
    r->tick_wait_ms = since - t0.wall;
    r->after_tick_ms = seen_wall - since;
    printf("detect_latency: trial=%ld job=%s latency_ms=%.1f tick_wait_ms=%.1f "
           "after_tick_ms=%.1f post_ms=%.2f polls=%ld",
           n, s.job, r->latency_ms, r->tick_wait_ms, r->after_tick_ms, r->post_ms, r->polls);
    if (o->webhook_port) {
        double at;

        while (isnan(at = receiver_arrival(&b->rx, n))) {
            if (mono_ms() > deadline) {
                printf("\n");
                fprintf(stderr, "detect_latency: %s: no rollback event on the webhook "
                        "within %ld ms\n", s.job, o->timeout_ms);
                return -1;
            }
            sleep_ms(1);
        }
        r->webhook_ms = at - t0.mono;
        printf(" webhook_ms=%.1f", r->webhook_ms);
    }
    printf("\n");
    fflush(stdout);
    return 0;
}

/* ---- Driver ---------------------------------------------------------------------- */

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least @p of the trials at or below it. */
static double percentile(const double *sorted, size_t n, double p)
{
    size_t rank = (size_t)ceil(p * (double)n);

    return sorted[rank ? rank - 1 : 0];
}

static void usage(FILE *f)
{
    fprintf(f, "usage: detect_latency --url BASE [--interval-ms 1000] [--trials 20]\n"
               "                      [--goal-ms 1200] [--poll-ms 5] [--feed-ms 100]\n"
               "                      [--settle-ms 300] [--rate 1000] [--prefix trial-]\n"
               "                      [--seed 1] [--timeout-ms T]\n"
               "                      [--webhook-port PORT] [--webhook-goal-ms 1500]\n"
               "                      [--background N] [--background-feed-ms 1000]\n");
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

    *o = (struct opts){ .interval_ms = 1000, .trials = 20, .goal_ms = 1200, .poll_ms = 5,
                        .feed_ms = 100, .settle_ms = 300, .rate = 1000, .prefix = "trial-",
                        .background_feed_ms = 1000, .webhook_goal_ms = 1500 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (!val) {
            fprintf(stderr, "detect_latency: %s needs a value\n", a);
            return -1;
        }
        i++;
        if (strcmp(a, "--url") == 0)
            o->url = val;
        else if (strcmp(a, "--prefix") == 0) {
            /* The name goes into a label value and a URL path segment. */
            bad = strlen(val) > 64 || strpbrk(val, "/\"\\") != NULL;
            o->prefix = val;
        } else if (strcmp(a, "--interval-ms") == 0)
            bad = parse_long(val, 1, 3600000, &o->interval_ms);
        else if (strcmp(a, "--trials") == 0)
            bad = parse_long(val, 1, MAX_TRIALS, &o->trials);
        else if (strcmp(a, "--goal-ms") == 0)
            bad = parse_long(val, 1, 3600000, &o->goal_ms);
        else if (strcmp(a, "--poll-ms") == 0)
            bad = parse_long(val, 0, 10000, &o->poll_ms);
        else if (strcmp(a, "--feed-ms") == 0)
            bad = parse_long(val, 1, 60000, &o->feed_ms);
        else if (strcmp(a, "--settle-ms") == 0)
            bad = parse_long(val, 0, 600000, &o->settle_ms);
        else if (strcmp(a, "--rate") == 0)
            bad = parse_long(val, 1, 100000000, &o->rate);
        else if (strcmp(a, "--timeout-ms") == 0)
            bad = parse_long(val, 1, 3600000, &o->timeout_ms);
        else if (strcmp(a, "--background") == 0)
            bad = parse_long(val, 0, 100000, &o->background);
        else if (strcmp(a, "--background-feed-ms") == 0)
            bad = parse_long(val, 10, 600000, &o->background_feed_ms);
        else if (strcmp(a, "--webhook-port") == 0)
            bad = parse_long(val, 1, 65535, &o->webhook_port);
        else if (strcmp(a, "--webhook-goal-ms") == 0)
            bad = parse_long(val, 1, 3600000, &o->webhook_goal_ms);
        else if (strcmp(a, "--seed") == 0)
            bad = parse_long(val, 0, 0x7fffffffL, &seed);
        else {
            fprintf(stderr, "detect_latency: unknown option %s\n", a);
            return -1;
        }
        if (bad) {
            fprintf(stderr, "detect_latency: bad value for %s: %s\n", a, val);
            return -1;
        }
    }
    if (!o->url) {
        fprintf(stderr, "detect_latency: --url is required\n");
        return -1;
    }
    if (!o->timeout_ms)
        o->timeout_ms = o->interval_ms * 10 > 10000 ? o->interval_ms * 10 : 10000;
    o->seed = (unsigned long)seed;
    return 0;
}

/* Starts the background services and waits until the last of them is a deployment.
 * Returns 0 or -1 (printed). */
static int background_start_wait(struct bench *b)
{
    char verdict[32], reason[512], *esc;
    double since, t0 = mono_ms(), deadline = t0 + (double)b->o->timeout_ms + 30000;
    int found = 0;

    if (background_start(&b->bg, b->o, b->url.data))
        return -1;
    rg_buf_reset(&b->url);
    esc = curl_easy_escape(b->poll.curl, b->bg.svc[b->bg.n - 1].job, 0);
    if (esc)
        rg_buf_printf(&b->url, "%s/api/v1/deployments/%s", b->base, esc);
    curl_free(esc);
    if (!b->url.data)
        return -1;
    curl_easy_setopt(b->poll.curl, CURLOPT_URL, b->url.data);
    while (!found) {
        if (get_verdict(&b->poll, &found, verdict, sizeof(verdict), reason, sizeof(reason),
                        &since))
            return -1;
        if (!found && mono_ms() > deadline) {
            fprintf(stderr, "detect_latency: background deployments not discovered\n");
            return -1;
        }
        sleep_ms(20);
    }
    printf("detect_latency: background deployments=%ld ready in %.0f ms\n", b->bg.n,
           mono_ms() - t0);
    return 0;
}

/* Sorts @v[0..n) and prints its summary line; returns 1 when the p99 meets @goal. */
static int summary(const char *name, double *v, long n, const struct opts *o, long goal)
{
    double sum = 0, p99;

    qsort(v, (size_t)n, sizeof(*v), dbl_cmp);
    for (long i = 0; i < n; i++)
        sum += v[i];
    p99 = percentile(v, (size_t)n, 0.99);
    printf("detect_latency: %s interval_ms=%ld trials=%ld min_ms=%.1f p50_ms=%.1f "
           "p99_ms=%.1f max_ms=%.1f mean_ms=%.1f goal_p99_ms=%ld result=%s\n",
           name, o->interval_ms, n, v[0], percentile(v, (size_t)n, 0.5), p99, v[n - 1],
           sum / (double)n, goal, p99 <= (double)goal ? "PASS" : "FAIL");
    return p99 <= (double)goal;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct bench b;
    double *lat = NULL, *hook = NULL;
    long done = 0;
    size_t blen;
    int rc = 1, ok;

    if (parse_opts(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    memset(&b, 0, sizeof(b));
    b.o = &o;
    b.rx.lfd = -1;
    /* xorshift must not start at zero. */
    b.rnd = ((uint64_t)o.seed << 1) | 1;
    blen = strlen(o.url);
    while (blen > 0 && o.url[blen - 1] == '/')
        blen--;
    if (blen >= sizeof(b.base)) {
        fprintf(stderr, "detect_latency: --url too long\n");
        return 2;
    }
    memcpy(b.base, o.url, blen);
    rg_rw_encoder_init(&b.enc);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    lat = calloc((size_t)o.trials, sizeof(*lat));
    hook = calloc((size_t)o.trials, sizeof(*hook));
    if (!lat || !hook)
        goto fail_alloc;
    if (client_init(&b.write, 10000))
        goto fail_alloc;
    if (client_init(&b.poll, 10000))
        goto fail_poll;
    if (client_init(&b.ctl, 10000))
        goto fail_ctl;
    if (add_header(&b.write.hdrs, "Content-Encoding: snappy") ||
        add_header(&b.write.hdrs, "Content-Type: application/x-protobuf") ||
        add_header(&b.write.hdrs, "X-Prometheus-Remote-Write-Version: 0.1.0") ||
        add_header(&b.ctl.hdrs, "Content-Type: application/json"))
        goto fail_setup;
    curl_easy_setopt(b.write.curl, CURLOPT_HTTPHEADER, b.write.hdrs);
    curl_easy_setopt(b.ctl.curl, CURLOPT_HTTPHEADER, b.ctl.hdrs);
    rg_buf_printf(&b.url, "%s/api/v1/write", b.base);
    if (!b.url.data)
        goto fail_setup;
    curl_easy_setopt(b.write.curl, CURLOPT_URL, b.url.data);
    if (o.webhook_port && receiver_start(&b.rx, o.webhook_port, o.prefix, o.trials))
        goto fail_setup;

    printf("detect_latency: url=%s interval_ms=%ld trials=%ld poll_ms=%ld feed_ms=%ld "
           "background=%ld "
           "goal_p99_ms=%ld", b.base, o.interval_ms, o.trials, o.poll_ms, o.feed_ms,
           o.background, o.goal_ms);
    if (o.webhook_port)
        printf(" webhook=127.0.0.1:%ld webhook_goal_p99_ms=%ld", o.webhook_port,
               o.webhook_goal_ms);
    printf("\n");
    fflush(stdout);
    if (o.background && background_start_wait(&b))
        goto out;
    for (long n = 1; n <= o.trials; n++) {
        struct result r;

        if (run_trial(&b, n, &r)) {
            fprintf(stderr, "detect_latency: trial %ld failed\n", n);
            goto out;
        }
        lat[done] = r.latency_ms;
        hook[done++] = r.webhook_ms;
    }
    ok = summary("summary", lat, done, &o, o.goal_ms);
    if (o.webhook_port) {
        ok &= summary("webhook_summary", hook, done, &o, o.webhook_goal_ms);
        printf("detect_latency: webhook requests=%ld rollback_events=%ld\n", b.rx.requests,
               b.rx.rollbacks);
    }
    rc = ok ? 0 : 1;

    if (o.background)
        printf("detect_latency: background deployments=%ld feed_ms=%ld failed_requests=%ld\n",
               o.background, o.background_feed_ms, atomic_load(&b.bg.failures));
    if (atomic_load(&b.bg.failures))
        rc = 1;

out:
    background_stop(&b.bg);
    receiver_stop(&b.rx);
fail_setup:
    client_cleanup(&b.ctl);
fail_ctl:
    client_cleanup(&b.poll);
fail_poll:
    client_cleanup(&b.write);
fail_alloc:
    free(hook);
    free(lat);
    rg_buf_cleanup(&b.url);
    rg_buf_cleanup(&b.snappy);
    rg_rw_encoder_cleanup(&b.enc);
    curl_global_cleanup();
    return rc;
}
