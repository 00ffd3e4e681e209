/* bench/rw_load.c - remote-write ingest benchmark: throughput, server CPU and memory.
 *
 * A load generator in the style of Prometheus' remote-write benchmarks: it pre-builds
 * every request before the clock starts (so the measurement is the receiver's, not
 * the encoder's), then posts them over several HTTP/1.1 keep-alive connections with
 * plain blocking sockets, one thread per connection.
 *
 * Workload: --series series of --labels labels each. One round sends one sample for
 * every series, --per-request samples (hence series) per request; --rounds rounds
 * are sent with timestamps increasing by --interval-ms per round, the first at
 * now - rounds * interval, so every sample lies within the receiver's retention and
 * none is in the future. Request k of every round holds the same series, and all
 * requests with the same k go over the same connection in round order, so each
 * series' samples arrive in time order even with several connections.
 *
 * Measures: wall time; the server's CPU seconds (utime + stime from /proc/PID/stat);
 * its resident memory (VmRSS from /proc/PID/status) before the first request (the
 * idle baseline: code, libraries, empty tables) and after the run; and the number of
 * active series, read from rollgate_series_active on GET /metrics of the same
 * host:port. Figures are printed for all rounds and for the steady state, the rounds
 * after the first (which also creates every series); all threads meet at a barrier
 * after round one so the split is exact. Memory per active series is printed twice:
 * the whole RSS divided by the series, and the RSS above the idle baseline divided by
 * the series, which is what each further series costs. Every response must be 204:
 * failures are counted and the first ones printed, and the exit status is 1 when any
 * occurred.
 *
 * Usage:
 *   rw_load --url http://127.0.0.1:PORT/api/v1/write [--pid PID] [--series 100000]
 *           [--labels 10] [--per-request 2000] [--rounds 20] [--connections 4]
 *           [--interval-ms 15000] [--timeout-s 60]
 *           [--series-metric rollgate_series_active]
 * --series-metric names the gauge read from /metrics; prometheus_tsdb_head_series
 * makes the same run comparable against a Prometheus remote-write receiver.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ingest/rw_encode.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/time.h"

#define MAX_HEAD 16384            /* bytes of response status line and headers */
#define MAX_ERR_BODY 4096         /* bytes of an error response body kept for printing */
#define MAX_METRICS_BODY ((size_t)64 << 20)   /* bytes of GET /metrics read */
#define MAX_PRINTED_FAILURES 10
#define MAX_SPAN_MS INT64_C(1800000)   /* oldest timestamp at most 30 min back */

struct opts {
    char host[256];
    char port[16];
    char path[1024];
    long pid;                  /* 0 when not given */
    size_t series;
    size_t labels;
    size_t per_request;
    size_t rounds;
    size_t connections;
    int64_t interval_ms;
    int timeout_s;
    const char *series_metric; /* gauge on GET /metrics counting active series */
};

/* One pre-built request body. */
struct request {
    char *body;                /* owned; snappy-compressed WriteRequest */
    size_t len;
    size_t samples;
};

/* A keep-alive connection and the bytes read but not yet consumed. */
struct conn {
    int fd;                    /* -1 while closed */
    const struct addrinfo *ai; /* borrowed from main */
    int timeout_s;
    size_t keep_max;           /* response body bytes kept for the caller */
    char rbuf[MAX_HEAD];
    size_t rlen;
};

struct shared {
    const struct opts *o;
    const struct addrinfo *ai;
    struct request *reqs;      /* rounds x chunks, round-major */
    size_t chunks;
    pthread_barrier_t round1_done;
    pthread_barrier_t measured;
    pthread_mutex_t print_lock;
    size_t printed;
};

struct worker {
    pthread_t tid;
    struct shared *sh;
    size_t index;              /* connection number */
    uint64_t sent_samples[2];  /* [0] first round, [1] later rounds; 204 only */
    uint64_t failures[2];
    uint64_t requests[2];
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rw_load --url http://HOST:PORT/PATH [--pid PID] [--series N] [--labels N]\n"
            "               [--per-request N] [--rounds N] [--connections N]\n"
            "               [--interval-ms MS] [--timeout-s S] [--series-metric NAME]\n");
}

static int parse_size(const char *s, size_t min, size_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v < min || v > SIZE_MAX / 4)
        return -1;
    *out = (size_t)v;
    return 0;
}

/* Splits http://host[:port][/path]; IPv6 hosts are written in brackets. */
static int parse_url(const char *url, struct opts *o)
{
    const char *p, *host_end, *port = NULL, *path;
    size_t hl;

    if (strncmp(url, "http://", 7) != 0)
        return -1;
    p = url + 7;
    path = strchr(p, '/');
    if (!path)
        path = p + strlen(p);
    if (*p == '[') {
        host_end = memchr(p, ']', (size_t)(path - p));
        if (!host_end)
            return -1;
        p++;
        if (host_end[1] == ':')
            port = host_end + 2;
    } else {
        host_end = memchr(p, ':', (size_t)(path - p));
        if (host_end)
            port = host_end + 1;
        else
            host_end = path;
    }
    hl = (size_t)(host_end - p);
    if (!hl || hl >= sizeof(o->host))
        return -1;
    memcpy(o->host, p, hl);
    o->host[hl] = '\0';
    if (port && (size_t)(path - port) > 0 && (size_t)(path - port) < sizeof(o->port)) {
        memcpy(o->port, port, (size_t)(path - port));
        o->port[path - port] = '\0';
    } else {
        snprintf(o->port, sizeof(o->port), "80");
    }
    snprintf(o->path, sizeof(o->path), "%s", *path ? path : "/");
    return 0;
}

/* ---- HTTP/1.1 over a blocking socket ------------------------------------------ */

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->rlen = 0;
}

static int conn_open(struct conn *c)
{
    struct timeval tv = { c->timeout_s, 0 };
    int one = 1;

    conn_close(c);
    c->fd = socket(c->ai->ai_family, c->ai->ai_socktype, c->ai->ai_protocol);
    if (c->fd < 0)
        return -errno;
    /* Timeouts bound every blocking call, so a stuck server cannot hang the run. */
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, c->ai->ai_addr, c->ai->ai_addrlen) != 0) {
        int err = -errno;

        conn_close(c);
        return err;
    }
    return 0;
}

static int write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Reads more bytes into the connection buffer. Returns bytes read, 0 at EOF, or a
 * negative errno. */
static ssize_t fill(struct conn *c)
{
    ssize_t r;

    if (c->rlen >= sizeof(c->rbuf))
        return -EMSGSIZE;
    do
        r = read(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    c->rlen += (size_t)r;
    return r;
}

/* Drops the first @n buffered bytes. */
static void consume(struct conn *c, size_t n)
{
    memmove(c->rbuf, c->rbuf + n, c->rlen - n);
    c->rlen -= n;
}

/* Reads exactly @n body bytes, keeping up to c->keep_max of them in @keep. */
static int read_body_bytes(struct conn *c, uint64_t n, struct rg_buf *keep)
{
    while (n > 0) {
        size_t take;

        if (c->rlen == 0) {
            ssize_t r = fill(c);

            if (r <= 0)
                return r < 0 ? (int)r : -ECONNRESET;
        }
        take = c->rlen < n ? c->rlen : (size_t)n;
        if (keep && keep->len < c->keep_max)
            rg_buf_append(keep, c->rbuf,
                          take < c->keep_max - keep->len ? take : c->keep_max - keep->len);
        consume(c, take);
        n -= take;
    }
    return 0;
}

/* Reads one CRLF-terminated line into @line (NUL-terminated, bounded). */
static int read_line(struct conn *c, char *line, size_t cap)
{
    for (;;) {
        char *nl = memchr(c->rbuf, '\n', c->rlen);

        if (nl) {
            size_t n = (size_t)(nl - c->rbuf) + 1;
            size_t copy = n - 1;

            if (copy && c->rbuf[copy - 1] == '\r')
                copy--;
            if (copy >= cap)
                return -EMSGSIZE;
            memcpy(line, c->rbuf, copy);
            line[copy] = '\0';
            consume(c, n);
            return 0;
        }
        ssize_t r = fill(c);
        if (r <= 0)
            return r < 0 ? (int)r : -ECONNRESET;
    }
}

/* Reads a response: status, headers, and a body framed by Content-Length, chunked
 * encoding, or the end of the connection. Sets *@got_any when any response byte
 * arrived, so the caller knows whether a retry on a fresh connection is safe. */
static int read_response(struct conn *c, int *status, struct rg_buf *body, int *got_any)
{
    char line[MAX_HEAD];
    uint64_t content_length = 0;
    int have_length = 0, chunked = 0, close_after = 0;
    int err;

    *got_any = 0;
    if (c->rlen == 0) {
        ssize_t r = fill(c);

        if (r <= 0)
            return r < 0 ? (int)r : -ECONNRESET;
    }
    *got_any = 1;
    err = read_line(c, line, sizeof(line));
    if (err)
        return err;
    if (strncmp(line, "HTTP/1.", 7) != 0 || strlen(line) < 12)
        return -EPROTO;
    *status = atoi(line + 9);
    if (strncmp(line, "HTTP/1.0", 8) == 0)
        close_after = 1;
    for (;;) {
        err = read_line(c, line, sizeof(line));
        if (err)
            return err;
        if (!line[0])
            break;
        if (strncasecmp(line, "content-length:", 15) == 0) {
            content_length = strtoull(line + 15, NULL, 10);
            have_length = 1;
        } else if (strncasecmp(line, "transfer-encoding:", 18) == 0) {
            chunked = strstr(line + 18, "chunked") != NULL;
        } else if (strncasecmp(line, "connection:", 11) == 0) {
            if (strcasestr(line + 11, "close"))
                close_after = 1;
            else if (strcasestr(line + 11, "keep-alive"))
                close_after = 0;
        }
    }
    if (*status == 204 || *status == 304 || *status / 100 == 1) {
        /* No body by definition. */
    } else if (chunked) {
        for (;;) {
            uint64_t size;

            err = read_line(c, line, sizeof(line));
            if (err)
                return err;
            size = strtoull(line, NULL, 16);
            if (size == 0) {
                /* Trailers end with an empty line. */
                do {
                    err = read_line(c, line, sizeof(line));
                    if (err)
                        return err;
                } while (line[0]);
                break;
            }
            err = read_body_bytes(c, size, body);
            if (err)
                return err;
            err = read_line(c, line, sizeof(line));
            if (err)
                return err;
        }
    } else if (have_length) {
        err = read_body_bytes(c, content_length, body);
        if (err)
            return err;
    } else {
        for (;;) {
            ssize_t r;

            err = read_body_bytes(c, c->rlen, body);
            if (err)
                return err;
            r = fill(c);
            if (r < 0)
                return (int)r;
            if (r == 0)
                break;
        }
        close_after = 1;
    }
    if (close_after)
        conn_close(c);
    return 0;
}

/* Sends one request and reads its response. A request on a reused connection that
 * the server closed while idle is retried once on a new connection. */
static int http_exchange(struct conn *c, const char *head, size_t head_len, const char *body,
                         size_t body_len, int *status, struct rg_buf *resp)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        struct iovec iov[2] = { { (void *)head, head_len }, { (void *)body, body_len } };
        int fresh = c->fd < 0;
        int got_any = 0;
        int err = 0;

        if (fresh) {
            err = conn_open(c);
            if (err)
                return err;
        }
        rg_buf_reset(resp);
        err = write_all(c->fd, iov, body_len ? 2 : 1);
        if (!err)
            err = read_response(c, status, resp, &got_any);
        if (!err)
            return 0;
        conn_close(c);
        if (fresh || got_any)
            return err;
    }
    return -ECONNRESET;
}

/* ---- Workload ------------------------------------------------------------------ */

/* Label names after __name__, already in sorted order; more are generated. */
static const char *const label_names[] = {
    "cluster", "container", "env", "instance", "job", "namespace", "pod", "region", "zone",
};

/* Builds the label sets of all series into one arena. Series s gets __name__ =
 * rwload_metric_<s/100> and further labels of small cardinality; its last label
 * carries s itself, so every label set is distinct. */
static int build_labels(const struct opts *o, struct rg_buf *arena, struct rg_label_ref **out)
{
    size_t nl = o->labels;
    size_t nnames = sizeof(label_names) / sizeof(label_names[0]);
    size_t *offs;
    struct rg_label_ref *refs;
    int err = 0;

    offs = malloc(o->series * nl * 4 * sizeof(*offs));
    refs = malloc(o->series * nl * sizeof(*refs));
    if (!offs || !refs) {
        err = RG_ENOMEM;
        goto fail;
    }
    for (size_t s = 0; s < o->series && !err; s++) {
        for (size_t j = 0; j < nl && !err; j++) {
            size_t *off = &offs[(s * nl + j) * 4];

            off[0] = arena->len;
            if (j == 0)
                err = rg_buf_puts(arena, "__name__");
            else if (j - 1 < nnames)
                err = rg_buf_puts(arena, label_names[j - 1]);
            else
                err = rg_buf_printf(arena, "zz_label_%02zu", j);
            off[1] = arena->len;
            if (err)
                break;
            if (j == 0 && nl == 1)
                err = rg_buf_printf(arena, "rwload_metric_%zu", s);
            else if (j == 0)
                err = rg_buf_printf(arena, "rwload_metric_%zu", s / 100);
            else if (j == nl - 1)
                err = rg_buf_printf(arena, "series-%07zu", s);
            else
                err = rg_buf_printf(arena, "%s-value-%zu", j - 1 < nnames ? label_names[j - 1]
                                                                        : "extra",
                                    (s / 7 + j) % (3 * j + 2));
            off[2] = arena->len;
        }
    }
    if (err)
        goto fail;
    /* The arena has stopped growing, so offsets can now become pointers. */
    for (size_t i = 0; i < o->series * nl; i++) {
        size_t *off = &offs[i * 4];

        refs[i].name = (struct rg_slice){ arena->data + off[0], off[1] - off[0] };
        refs[i].value = (struct rg_slice){ arena->data + off[1], off[2] - off[1] };
    }
    free(offs);
    *out = refs;
    return 0;
fail:
    free(refs);
    free(offs);
    return err;
}

static int build_requests(const struct opts *o, const struct rg_label_ref *labels,
                          int64_t start_ms, struct request *reqs, size_t chunks,
                          size_t *raw_total, size_t *body_total)
{
    struct rg_rw_encoder enc;
    struct rg_buf out = { 0 };
    int err = 0;

    rg_rw_encoder_init(&enc);
    for (size_t r = 0; r < o->rounds && !err; r++) {
        int64_t t = start_ms + (int64_t)r * o->interval_ms;

        for (size_t k = 0; k < chunks && !err; k++) {
            size_t first = k * o->per_request;
            size_t last = first + o->per_request < o->series ? first + o->per_request
                                                             : o->series;
            struct request *rq = &reqs[r * chunks + k];

            rg_rw_encoder_reset(&enc);
            for (size_t s = first; s < last && !err; s++) {
                /* A counter-like value, different per series and growing per round. */
                struct rg_sample smp = { t, (double)((r + 1) * (s % 17 + 1)) };

                err = rg_rw_encoder_add_series(&enc, &labels[s * o->labels], o->labels,
                                               &smp, 1);
            }
            if (!err)
                err = rg_rw_encoder_finish(&enc, &out);
            if (err)
                break;
            *raw_total += rg_rw_encoder_raw(&enc).len;
            *body_total += out.len;
            rq->samples = last - first;
            rq->body = rg_buf_steal(&out, &rq->len);
            if (!rq->body)
                err = RG_ENOMEM;
        }
    }
    rg_buf_cleanup(&out);
    rg_rw_encoder_cleanup(&enc);
    return err;
}

static void report_failure(struct shared *sh, size_t conn, size_t round, size_t chunk,
                           int err, int status, const struct rg_buf *resp)
{
    size_t blen = resp->len;

    /* Bodies usually end with a newline; the message line adds its own. */
    while (blen && (resp->data[blen - 1] == '\n' || resp->data[blen - 1] == '\r'))
        blen--;
    pthread_mutex_lock(&sh->print_lock);
    if (sh->printed < MAX_PRINTED_FAILURES) {
        if (err)
            fprintf(stderr, "rw_load: conn=%zu round=%zu request=%zu error: %s\n", conn,
                    round + 1, chunk, strerror(-err));
        else
            fprintf(stderr, "rw_load: conn=%zu round=%zu request=%zu status=%d body=%.*s\n",
                    conn, round + 1, chunk, status, (int)blen,
                    resp->data ? resp->data : "");
    } else if (sh->printed == MAX_PRINTED_FAILURES) {
        fprintf(stderr, "rw_load: further failures are counted but not printed\n");
    }
    sh->printed++;
    pthread_mutex_unlock(&sh->print_lock);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    const struct opts *o = sh->o;
    struct conn *c = malloc(sizeof(*c));
    struct rg_buf resp = { 0 };
    char head[2048];

    if (c) {
        c->fd = -1;
        c->rlen = 0;
        c->ai = sh->ai;
        c->timeout_s = o->timeout_s;
        c->keep_max = MAX_ERR_BODY;
    }
    for (size_t r = 0; r < o->rounds; r++) {
        int phase = r == 0 ? 0 : 1;

        for (size_t k = w->index; k < sh->chunks; k += o->connections) {
            const struct request *rq = &sh->reqs[r * sh->chunks + k];
            int status = 0;
            int err = RG_ENOMEM;
            int hl;

            hl = snprintf(head, sizeof(head),
                          "POST %s HTTP/1.1\r\n"
                          "Host: %s:%s\r\n"
                          "User-Agent: rollgate-rw-load/1.0\r\n"
                          "Content-Type: application/x-protobuf\r\n"
                          "Content-Encoding: snappy\r\n"
                          "X-Prometheus-Remote-Write-Version: 0.1.0\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          o->path, o->host, o->port, rq->len);
            if (c && hl > 0 && (size_t)hl < sizeof(head))
                err = http_exchange(c, head, (size_t)hl, rq->body, rq->len, &status, &resp);
            w->requests[phase]++;
            if (!err && status == 204) {
                w->sent_samples[phase] += rq->samples;
            } else {
                w->failures[phase]++;
                report_failure(sh, w->index, r, k, err == RG_ENOMEM ? -ENOMEM : err, status,
                               &resp);
            }
        }
        if (r == 0) {
            /* Wait for everyone to finish round one, then for main to take its
             * readings, so the steady-state figures exclude series creation. */
            pthread_barrier_wait(&sh->round1_done);
            pthread_barrier_wait(&sh->measured);
        }
    }
    if (c)
        conn_close(c);
    free(c);
    rg_buf_cleanup(&resp);
    return NULL;
}

/* ---- Server readings ------------------------------------------------------------- */

/* utime + stime of @pid in seconds, or -1 when unreadable. */
static double proc_cpu_s(long pid)
{
    char path[64], buf[4096];
    FILE *f;
    size_t n;
    char *p;
    unsigned long long ut = 0, st = 0;

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may contain spaces and parentheses: fields start after the
     * last ')'. Field 3 (state) follows it; utime and stime are fields 14 and 15. */
    p = strrchr(buf, ')');
    if (!p)
        return -1;
    p++;
    if (sscanf(p, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS of @pid in bytes, or -1. */
static double proc_rss_bytes(long pid)
{
    char path[64], line[256];
    FILE *f;
    double kb = -1;

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtod(line + 6, NULL);
            break;
        }
    }
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

/* Sum of the samples of o->series_metric on GET /metrics, or -1. */
static double scrape_active_series(const struct opts *o, const struct addrinfo *ai)
{
    struct conn *c = malloc(sizeof(*c));
    struct rg_buf body = { 0 };
    char head[1024];
    int status = 0, hl;
    double total = -1;
    const char *name = o->series_metric;
    size_t nlen = strlen(name);

    if (!c)
        return -1;
    c->fd = -1;
    c->rlen = 0;
    c->ai = ai;
    c->timeout_s = o->timeout_s;
    c->keep_max = MAX_METRICS_BODY;
    hl = snprintf(head, sizeof(head),
                  "GET /metrics HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: rollgate-rw-load/1.0\r\n"
                  "Accept: text/plain\r\nConnection: close\r\n\r\n",
                  o->host, o->port);
    if (http_exchange(c, head, (size_t)hl, NULL, 0, &status, &body) != 0)
        status = 0;
    conn_close(c);
    free(c);
    if (status == 200 && body.data) {
        for (char *line = body.data; line && *line;) {
            char *next = strchr(line, '\n');

            if (next)
                *next++ = '\0';
            if (strncmp(line, name, nlen) == 0 && (line[nlen] == ' ' || line[nlen] == '{')) {
                char *v = line[nlen] == '{' ? strchr(line + nlen, '}') : line + nlen;

                if (v) {
                    if (*v == '}')
                        v++;
                    total = (total < 0 ? 0 : total) + strtod(v, NULL);
                }
            }
            line = next;
        }
    }
    rg_buf_cleanup(&body);
    return total;
}

static void print_row(const char *what, const char *fmt, double all, double steady)
{
    char a[64], s[64];

    if (all < 0)
        snprintf(a, sizeof(a), "n/a");
    else
        snprintf(a, sizeof(a), fmt, all);
    if (steady < 0)
        snprintf(s, sizeof(s), "n/a");
    else
        snprintf(s, sizeof(s), fmt, steady);
    printf("  %-28s %18s %18s\n", what, a, s);
}

static double ratio(double a, double b)
{
    return a >= 0 && b > 0 ? a / b : -1;
}

int main(int argc, char **argv)
{
    struct opts o = {
        .series = 100000, .labels = 10, .per_request = 2000, .rounds = 20,
        .connections = 4, .interval_ms = 15000, .timeout_s = 60,
        .series_metric = "rollgate_series_active",
    };
    const char *url = NULL;
    struct addrinfo hints = { 0 }, *ai = NULL;
    struct rg_buf arena = { 0 };
    struct rg_label_ref *labels = NULL;
    struct shared sh;
    struct worker *workers = NULL;
    size_t chunks, raw_total = 0, body_total = 0, started = 0;
    uint64_t samples[2] = { 0, 0 }, failures[2] = { 0, 0 }, requests[2] = { 0, 0 };
    double cpu0, cpu1, cpu2, rss0, rss1, rss2, active;
    int64_t now, start_ms, b0;
    uint64_t t0, t1, t2;   /* ns, monotonic */
    int rc = 1, err;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t n;
        int bad = 0;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--url") == 0)
            url = v;
        else if (strcmp(a, "--pid") == 0)
            bad = parse_size(v, 1, &n) || (o.pid = (long)n) <= 0;
        else if (strcmp(a, "--series") == 0)
            bad = parse_size(v, 1, &o.series) || o.series > 100000000;
        else if (strcmp(a, "--labels") == 0)
            bad = parse_size(v, 1, &o.labels) || o.labels > 64;
        else if (strcmp(a, "--per-request") == 0)
            bad = parse_size(v, 1, &o.per_request);
        else if (strcmp(a, "--rounds") == 0)
            bad = parse_size(v, 1, &o.rounds) || o.rounds > 1000000;
        else if (strcmp(a, "--connections") == 0)
            bad = parse_size(v, 1, &o.connections) || o.connections > 256;
        else if (strcmp(a, "--interval-ms") == 0)
            bad = parse_size(v, 1, &n) || (o.interval_ms = (int64_t)n) <= 0;
        else if (strcmp(a, "--series-metric") == 0)
            o.series_metric = v;
        else if (strcmp(a, "--timeout-s") == 0)
            bad = parse_size(v, 1, &n) || n > 3600 || !(o.timeout_s = (int)n);
        else
            bad = 1;
        if (bad) {
            fprintf(stderr, "rw_load: bad option %s %s\n", a, v);
            usage(stderr);
            return 2;
        }
    }
    if (!url || parse_url(url, &o) != 0) {
        fprintf(stderr, "rw_load: --url http://HOST:PORT/PATH is required\n");
        usage(stderr);
        return 2;
    }
    if ((uint64_t)o.rounds * (uint64_t)o.interval_ms > (uint64_t)MAX_SPAN_MS) {
        /* Keep the oldest sample within 30 minutes, well inside any retention. */
        o.interval_ms = MAX_SPAN_MS / (int64_t)o.rounds;
        if (o.interval_ms < 1)
            o.interval_ms = 1;
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    err = getaddrinfo(o.host, o.port, &hints, &ai);
    if (err) {
        fprintf(stderr, "rw_load: cannot resolve %s:%s: %s\n", o.host, o.port,
                gai_strerror(err));
        return 1;
    }

    chunks = (o.series + o.per_request - 1) / o.per_request;
    memset(&sh, 0, sizeof(sh));
    sh.o = &o;
    sh.ai = ai;
    sh.chunks = chunks;
    sh.reqs = calloc(o.rounds * chunks, sizeof(*sh.reqs));
    if (!sh.reqs)
        goto fail_reqs;

    printf("rw_load: %zu series x %zu labels, %zu rounds every %" PRId64 " ms, "
           "%zu samples/request, %zu connections, url http://%s:%s%s\n",
           o.series, o.labels, o.rounds, o.interval_ms, o.per_request, o.connections, o.host,
           o.port, o.path);
    b0 = rg_mono_ms();
    now = rg_now_ms();
    start_ms = now - (int64_t)o.rounds * o.interval_ms;
    err = build_labels(&o, &arena, &labels);
    if (!err)
        err = build_requests(&o, labels, start_ms, sh.reqs, chunks, &raw_total, &body_total);
    if (err) {
        fprintf(stderr, "rw_load: building requests failed: %s\n", rg_strerror(err));
        goto fail_build;
    }
    printf("rw_load: built %zu requests in %.2f s: %.1f MB protobuf, %.1f MB snappy\n",
           o.rounds * chunks, (double)(rg_mono_ms() - b0) / 1000.0, (double)raw_total / 1e6,
           (double)body_total / 1e6);
    fflush(stdout);

    workers = calloc(o.connections, sizeof(*workers));
    if (!workers)
        goto fail_build;
    if (pthread_barrier_init(&sh.round1_done, NULL, (unsigned)o.connections + 1) != 0)
        goto fail_barrier1;
    if (pthread_barrier_init(&sh.measured, NULL, (unsigned)o.connections + 1) != 0)
        goto fail_barrier2;
    pthread_mutex_init(&sh.print_lock, NULL);

    rss0 = proc_rss_bytes(o.pid);
    cpu0 = proc_cpu_s(o.pid);
    t0 = rg_mono_ns();
    for (started = 0; started < o.connections; started++) {
        workers[started].sh = &sh;
        workers[started].index = started;
        if (pthread_create(&workers[started].tid, NULL, worker_main, &workers[started]) != 0)
            break;
    }
    if (started < o.connections) {
        /* The barriers count every connection: without all threads nobody can pass. */
        fprintf(stderr, "rw_load: cannot start %zu threads\n", o.connections);
        exit(1);
    }
    pthread_barrier_wait(&sh.round1_done);
    t1 = rg_mono_ns();
    cpu1 = proc_cpu_s(o.pid);
    rss1 = proc_rss_bytes(o.pid);
    pthread_barrier_wait(&sh.measured);
    for (size_t i = 0; i < started; i++)
        pthread_join(workers[i].tid, NULL);
    t2 = rg_mono_ns();
    cpu2 = proc_cpu_s(o.pid);
    rss2 = proc_rss_bytes(o.pid);
    active = scrape_active_series(&o, ai);

    for (size_t i = 0; i < started; i++) {
        for (int ph = 0; ph < 2; ph++) {
            samples[ph] += workers[i].sent_samples[ph];
            failures[ph] += workers[i].failures[ph];
            requests[ph] += workers[i].requests[ph];
        }
    }

    {
        double wall_all = (double)(t2 - t0) / 1e9, wall_st = (double)(t2 - t1) / 1e9;
        double s_all = (double)(samples[0] + samples[1]), s_st = (double)samples[1];
        double cpu_all = cpu0 >= 0 && cpu2 >= 0 ? cpu2 - cpu0 : -1;
        double cpu_st = cpu1 >= 0 && cpu2 >= 0 ? cpu2 - cpu1 : -1;
        int steady = o.rounds > 1;
        /* What the series cost beyond the daemon at rest; n/a without both readings. */
        double above_idle = rss0 >= 0 && rss2 >= 0 ? ratio(rss2 - rss0, active) : -1;

        printf("rw_load: results (steady state = rounds 2..%zu, after series creation)\n",
               o.rounds);
        printf("  %-28s %18s %18s\n", "", "all rounds", "steady state");
        print_row("requests", "%.0f", (double)(requests[0] + requests[1]),
                  steady ? (double)requests[1] : -1);
        print_row("failed requests", "%.0f", (double)(failures[0] + failures[1]),
                  steady ? (double)failures[1] : -1);
        print_row("samples accepted", "%.0f", s_all, steady ? s_st : -1);
        print_row("wall s", "%.3f", wall_all, steady ? wall_st : -1);
        print_row("samples/s", "%.0f", ratio(s_all, wall_all),
                  steady ? ratio(s_st, wall_st) : -1);
        print_row("server CPU s", "%.2f", cpu_all, steady ? cpu_st : -1);
        print_row("samples per CPU-second", "%.0f", ratio(s_all, cpu_all),
                  steady ? ratio(s_st, cpu_st) : -1);
        print_row("server RSS bytes", "%.0f", rss2, -1);
        print_row("server RSS after round 1", "%.0f", rss1, -1);
        print_row("server RSS idle (before)", "%.0f", rss0, -1);
        print_row("active series", "%.0f", active, -1);
        print_row("RSS bytes per active series", "%.0f", ratio(rss2, active), -1);
        print_row("  above idle", "%.0f", above_idle, -1);
        printf("rw_load: samples=%.0f wall_s=%.3f samples_per_s=%.0f cpu_s=%.2f "
               "samples_per_cpu_s=%.0f steady_samples_per_s=%.0f steady_samples_per_cpu_s=%.0f "
               "rss_bytes=%.0f idle_rss_bytes=%.0f active_series=%.0f "
               "rss_bytes_per_series=%.0f rss_bytes_per_series_above_idle=%.0f "
               "failures=%" PRIu64 "\n",
               s_all, wall_all, ratio(s_all, wall_all), cpu_all, ratio(s_all, cpu_all),
               steady ? ratio(s_st, wall_st) : -1, steady ? ratio(s_st, cpu_st) : -1, rss2,
               rss0, active, ratio(rss2, active), above_idle, failures[0] + failures[1]);
        if (o.pid && active < 0)
            fprintf(stderr, "rw_load: %s not found on GET /metrics\n", o.series_metric);
        rc = failures[0] + failures[1] ? 1 : 0;
    }

    pthread_mutex_destroy(&sh.print_lock);
    pthread_barrier_destroy(&sh.measured);
fail_barrier2:
    pthread_barrier_destroy(&sh.round1_done);
fail_barrier1:
    free(workers);
fail_build:
    for (size_t i = 0; i < o.rounds * chunks; i++)
        free(sh.reqs[i].body);
    free(sh.reqs);
    free(labels);
    rg_buf_cleanup(&arena);
fail_reqs:
    freeaddrinfo(ai);
    return rc;
}
