/* query/client.c - PromQL over HTTP: instant and chunked range queries, per-source limits.
 *
 * A query is one call of rg_query_instant() or rg_query_range(); it is carried out as
 * one or more chunks, each one HTTP request (POST form to /api/v1/query or
 * /api/v1/query_range). A range query is cut into chunks of at most max_points steps
 * on the step grid of the whole range (start, start+step, ...), so the merged answer
 * has exactly the points one unlimited request would have. Each chunk's body streams
 * from the transport's on_data hook into its own rg_query_parser, so no response is
 * ever held as text and the size bound cuts a transfer off as soon as it is crossed.
 *
 * Concurrency: every source (by name) has a budget of max_concurrency requests in
 * flight; a chunk that finds the budget spent waits in the source's FIFO queue and
 * is started when a request of that source finishes. A range query keeps at most
 * max_concurrency of its own chunks queued or in flight at a time, so one long replay
 * cannot fill the queue ahead of the rules' instant queries.
 *
 * Merging: chunk results are kept until the last chunk arrives, then series are
 * matched by label set (an open-addressing hash table over the sorted labels) and
 * their points concatenated chunk by chunk (chunks cover disjoint, increasing time
 * ranges). The merged result is built in one malloc block that starts with the
 * series array, since rg_query_result_free() frees exactly that array and the
 * parser's arena (none here). Range results, merged or not, are sorted by label set
 * as Prometheus sorts its range query results, so the answer does not depend on how
 * the range was cut.
 *
 * Errors: the first failing chunk fails its query: the other chunks are cancelled or
 * dropped from the queue, and the callback runs once. Each query is counted once in
 * rollgate_queries_total and, on failure, in rollgate_query_errors_total with one
 * reason, and its wall time (queue wait included) in rollgate_query_duration_seconds.
 *
 * Re-entrancy: callbacks may start queries and may free the client; the client keeps
 * a depth counter and frees its memory only when the outermost callback returns.
 *
 * The command line's runner owns a private loop, a transport and a client for a whole
 * command: its queries share the transport's connection cache (one TCP connection per
 * concurrent request, reused from query to query) instead of connecting anew for each,
 * and a batch of queries submitted at once runs max_concurrency at a time while the
 * loop turns. The blocking calls run the same loop until their own query is answered.
 */
#include "query/client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/fields.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_CONCURRENCY 4
#define DEFAULT_MAX_RESPONSE ((size_t)64 << 20)
#define DEFAULT_MAX_POINTS 11000
#define MAX_CHUNKS 1000000

enum reason {
    R_TIMEOUT,
    R_HTTP,
    R_BAD_RESPONSE,
    R_TOO_LARGE,
    R_EXECUTION,
    R_CONNECTION,
    R_CANCELED,
    R__COUNT,
};

static const char *const reason_names[R__COUNT] = {
    "timeout", "http", "bad_response", "too_large", "execution", "connection", "canceled",
};

static const double duration_bounds[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
};

struct chunk;

/* Per-source state, found by name; lives as long as the client. */
struct src_state {
    struct src_state *next;
    char *name;                        /* owned */
    int limit;                         /* max_concurrency of the latest query */
    int inflight;                      /* requests started and not finished */
    struct chunk *qhead, *qtail;       /* FIFO of chunks waiting for a slot */
    struct rg_metrics_child *queries;  /* may be NULL (no registry) */
    struct rg_metrics_child *duration;
    struct rg_metrics_child *errors[R__COUNT];
};

enum chunk_state { CH_IDLE, CH_QUEUED, CH_INFLIGHT, CH_DONE };

struct query;

struct chunk {
    struct query *q;
    enum chunk_state state;
    int64_t start_ms, end_ms;          /* range: this chunk's part; instant: both = t */
    struct chunk *qnext;               /* source FIFO link */
    struct rg_query_parser *parser;    /* while in flight */
    struct rg_curl_uv_req *req;        /* while in flight */
    struct rg_query_result res;        /* once done */
};

/* One query; everything it needs from the source is copied, so that queued chunks do
 * not depend on the caller's source set staying alive. */
struct query {
    struct rg_query_client *c;
    struct query *prev, *next;         /* the client's live queries */
    struct src_state *st;
    int range;
    char *url;                         /* endpoint, owned */
    char **headers;                    /* "Accept: ..." then the source's; owned */
    size_t nheaders;
    char *user, *password, *bearer;    /* owned; the secrets are wiped */
    char *ca_file, *cert_file, *key_file, *server_name;
    int insecure;
    int64_t timeout_ms;
    size_t max_bytes;
    int window;                        /* chunks queued or in flight at most */
    char *expr;
    int64_t step_ms;
    struct chunk *chunks;
    size_t nchunks, next_chunk, ndone, nactive;
    int failed;
    int linked;                        /* in the client's list */
    uint64_t t0_ns;                    /* monotonic, at submission */
    rg_query_cb cb;
    void *ud;
};

struct rg_query_client {
    uv_loop_t *loop;
    struct rg_curl_uv *cu;             /* borrowed */
    struct rg_metrics_family *f_queries, *f_errors, *f_duration;
    struct src_state *states;
    struct query *queries;
    size_t nqueries;                   /* in the list above */
    int depth;                         /* callbacks running */
    int closing;
};

static void pump(struct rg_query_client *c, struct src_state *st);
static void query_fail(struct query *q, int err, enum reason why, const char *msg,
                       struct rg_query_result *res);

/* ---- small functions -------------------------------------------------------------------- */

/* Copies @s (NULL stays NULL); sets *@oom on failure. */
static char *dup_opt(const char *s, int *oom)
{
    char *d;

    if (!s)
        return NULL;
    if (!(d = strdup(s)))
        *oom = 1;
    return d;
}

/* Milliseconds as decimal seconds: always three decimals for times ("1700000000.123"),
 * trimmed for durations ("15", "0.5"), which servers read as float seconds. */
static void fmt_seconds(char *out, size_t cap, int64_t ms, int trim)
{
    uint64_t a = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    char frac[8];
    size_t n;

    snprintf(frac, sizeof(frac), "%03u", (unsigned)(a % 1000));
    n = 3;
    if (trim)
        while (n > 0 && frac[n - 1] == '0')
            n--;
    frac[n] = 0;
    snprintf(out, cap, "%s%" PRIu64 "%s%s", ms < 0 ? "-" : "", a / 1000, n ? "." : "", frac);
}

static enum reason reason_of(int err)
{
    switch (err) {
    case RG_ETIMEDOUT:
        return R_TIMEOUT;
    case RG_EBADMSG:
        return R_BAD_RESPONSE;
    case RG_ETOOBIG:
        return R_TOO_LARGE;
    case RG_EEXEC:
        return R_EXECUTION;
    case RG_ECANCELED:
        return R_CANCELED;
    default:
        return R_CONNECTION;
    }
}

/* ---- client and per-source state -------------------------------------------------------- */

int rg_query_client_new(uv_loop_t *loop, struct rg_curl_uv *cu, struct rg_metrics *metrics,
                        struct rg_query_client **out)
{
    static const char *const l_source[] = { "source" };
    static const char *const l_errors[] = { "source", "reason" };
    struct rg_query_client *c;

    *out = NULL;
    if (!loop || !cu)
        return RG_EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return RG_ENOMEM;
    c->loop = loop;
    c->cu = cu;
    if (metrics) {
        c->f_queries = rg_metrics_family(metrics, "rollgate_queries_total",
                                         "Queries sent to Prometheus-compatible sources.",
                                         RG_METRICS_COUNTER, l_source, 1, NULL, 0);
        c->f_errors = rg_metrics_family(metrics, "rollgate_query_errors_total",
                                        "Queries to sources that failed, by reason.",
                                        RG_METRICS_COUNTER, l_errors, 2, NULL, 0);
        c->f_duration = rg_metrics_family(
            metrics, "rollgate_query_duration_seconds",
            "Wall time of queries to sources, queueing and all chunks included.",
            RG_METRICS_HISTOGRAM, l_source, 1, duration_bounds,
            sizeof(duration_bounds) / sizeof(duration_bounds[0]));
        if (!c->f_queries || !c->f_errors || !c->f_duration) {
            free(c);
            return RG_ENOMEM;
        }
    }
    *out = c;
    return 0;
}

static struct src_state *state_get(struct rg_query_client *c, const struct rg_query_source *src)
{
    struct src_state *st;
    const char *name = src->name ? src->name : src->url;

    for (st = c->states; st; st = st->next)
        if (!strcmp(st->name, name))
            break;
    if (!st) {
        st = calloc(1, sizeof(*st));
        if (!st)
            return NULL;
        if (!(st->name = strdup(name))) {
            free(st);
            return NULL;
        }
        if (c->f_queries) {
            const char *v[1] = { st->name };
            st->queries = rg_metrics_child(c->f_queries, v);
            st->duration = rg_metrics_child(c->f_duration, v);
            if (!st->queries || !st->duration) {
                free(st->name);
                free(st);
                return NULL;
            }
        }
        st->next = c->states;
        c->states = st;
    }
    st->limit = src->max_concurrency > 0 ? src->max_concurrency : DEFAULT_CONCURRENCY;
    return st;
}

static void count_error(struct rg_query_client *c, struct src_state *st, enum reason why)
{
    if (!c->f_errors)
        return;
    if (!st->errors[why]) {
        const char *v[2] = { st->name, reason_names[why] };
        st->errors[why] = rg_metrics_child(c->f_errors, v);
    }
    if (st->errors[why])
        st->errors[why]->value += 1;
}

/* ---- queries ---------------------------------------------------------------------------- */

static void query_free(struct query *q)
{
    for (size_t i = 0; i < q->nchunks; i++) {
        rg_query_parser_free(q->chunks[i].parser);
        rg_query_result_free(&q->chunks[i].res);
    }
    free(q->chunks);
    free(q->url);
    for (size_t i = 0; i < q->nheaders; i++)
        free(q->headers[i]);
    free(q->headers);
    free(q->user);
    rg_config_field_secret_free(q->password);
    rg_config_field_secret_free(q->bearer);
    free(q->ca_file);
    free(q->cert_file);
    free(q->key_file);
    free(q->server_name);
    free(q->expr);
    free(q);
}

static void query_unlink(struct query *q)
{
    struct rg_query_client *c = q->c;

    if (!q->linked)
        return;
    q->linked = 0;
    c->nqueries--;
    if (q->prev)
        q->prev->next = q->next;
    else if (c->queries == q)
        c->queries = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

/* Builds a query with copies of everything it needs from @src; chunks still unset. */
static int query_new(struct rg_query_client *c, const struct rg_query_source *src,
                     const char *expr, int range, rg_query_cb cb, void *ud, struct query **out)
{
    static const char accept[] = "Accept: application/json";
    const char *path = range ? "/api/v1/query_range" : "/api/v1/query";
    struct query *q;
    size_t ulen;
    int oom = 0;

    *out = NULL;
    q = calloc(1, sizeof(*q));
    if (!q)
        return RG_ENOMEM;
    q->c = c;
    q->range = range;
    q->cb = cb;
    q->ud = ud;
    q->t0_ns = rg_mono_ns();
    ulen = strlen(src->url) + strlen(path) + 1;
    if ((q->url = malloc(ulen)))
        snprintf(q->url, ulen, "%s%s", src->url, path);
    else
        oom = 1;
    q->headers = calloc(src->nheaders + 1, sizeof(char *));
    if (q->headers) {
        q->headers[q->nheaders++] = dup_opt(accept, &oom);
        for (size_t i = 0; i < src->nheaders; i++)
            q->headers[q->nheaders++] = dup_opt(src->headers[i], &oom);
    } else {
        oom = 1;
    }
    q->user = dup_opt(src->basic_user, &oom);
    q->password = dup_opt(src->basic_password, &oom);
    q->bearer = dup_opt(src->bearer_token, &oom);
    q->ca_file = dup_opt(src->tls.ca_file, &oom);
    q->cert_file = dup_opt(src->tls.cert_file, &oom);
    q->key_file = dup_opt(src->tls.key_file, &oom);
    q->server_name = dup_opt(src->tls.server_name, &oom);
    q->insecure = src->tls.insecure_skip_verify;
    q->expr = dup_opt(expr, &oom);
    q->timeout_ms = src->timeout_ms > 0 ? src->timeout_ms : DEFAULT_TIMEOUT_MS;
    q->max_bytes = src->max_response_bytes ? src->max_response_bytes : DEFAULT_MAX_RESPONSE;
    q->window = src->max_concurrency > 0 ? src->max_concurrency : DEFAULT_CONCURRENCY;
    if (oom || !(q->st = state_get(c, src))) {
        query_free(q);
        return RG_ENOMEM;
    }
    *out = q;
    return 0;
}

static void query_link(struct query *q)
{
    struct rg_query_client *c = q->c;

    q->next = c->queries;
    if (c->queries)
        c->queries->prev = q;
    c->queries = q;
    q->linked = 1;
    c->nqueries++;
}

/* Finishes @q: metrics, the callback (once), then the memory. */
static void query_complete(struct query *q, int err, enum reason why, const char *msg,
                           struct rg_query_result *res)
{
    struct rg_query_client *c = q->c;
    struct src_state *st = q->st;
    struct rg_query_result empty;
    double secs = (double)(rg_mono_ns() - q->t0_ns) / 1e9;

    query_unlink(q);
    if (st->queries) {
        st->queries->value += 1;
        rg_metrics_observe(c->f_duration, st->duration, secs);
    }
    if (err) {
        count_error(c, st, why);
        rg_debug("event=query_failed source=%s reason=%s seconds=%.3f", st->name,
                 reason_names[why], secs);
    }
    if (!res) {
        memset(&empty, 0, sizeof(empty));
        res = &empty;
    }
    c->depth++;
    q->cb(q->ud, err, msg ? msg : (err ? rg_strerror(err) : ""), res);
    c->depth--;
    rg_query_result_free(res);
    query_free(q);
}

/* Takes @ch out of its source's FIFO. */
static void unqueue(struct chunk *ch)
{
    struct src_state *st = ch->q->st;
    struct chunk *prev = NULL;

    for (struct chunk *x = st->qhead; x; prev = x, x = x->qnext) {
        if (x != ch)
            continue;
        if (prev)
            prev->qnext = x->qnext;
        else
            st->qhead = x->qnext;
        if (st->qtail == x)
            st->qtail = prev;
        x->qnext = NULL;
        return;
    }
}

/* Fails @q with the first error: drops its queued chunks, cancels those in flight
 * (their completions are ignored), then reports. */
static void query_fail(struct query *q, int err, enum reason why, const char *msg,
                       struct rg_query_result *res)
{
    struct rg_query_client *c = q->c;

    if (q->failed)
        return;
    q->failed = 1;
    for (size_t i = 0; i < q->nchunks; i++) {
        struct chunk *ch = &q->chunks[i];
        if (ch->state == CH_QUEUED) {
            unqueue(ch);
            ch->state = CH_IDLE;
        }
    }
    for (size_t i = 0; i < q->nchunks; i++) {
        struct chunk *ch = &q->chunks[i];
        /* The transport calls back at once (on_http_done ignores it: q->failed). */
        if (ch->state == CH_INFLIGHT && ch->req)
            rg_curl_uv_cancel(c->cu, ch->req);
    }
    query_complete(q, err, why, msg, res);
}

/* ---- merging chunk results -------------------------------------------------------------- */

static uint64_t labels_hash(const struct rg_promql_series *s)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a, 64 bit */

    for (size_t i = 0; i < s->nlabels; i++) {
        for (const unsigned char *p = (const unsigned char *)s->labels[i].name; *p; p++)
            h = (h ^ *p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
        for (const unsigned char *p = (const unsigned char *)s->labels[i].value; *p; p++)
            h = (h ^ *p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
    }
    return h;
}

static int labels_eq(const struct rg_promql_series *a, const struct rg_promql_series *b)
{
    if (a->nlabels != b->nlabels)
        return 0;
    for (size_t i = 0; i < a->nlabels; i++)
        if (strcmp(a->labels[i].name, b->labels[i].name) ||
            strcmp(a->labels[i].value, b->labels[i].value))
            return 0;
    return 1;
}

/* Prometheus' labels.Compare: pairwise by name then value, then the shorter first. */
static int series_cmp(const void *x, const void *y)
{
    const struct rg_promql_series *a = x, *b = y;
    size_t n = a->nlabels < b->nlabels ? a->nlabels : b->nlabels;
    int d;

    for (size_t i = 0; i < n; i++) {
        if ((d = strcmp(a->labels[i].name, b->labels[i].name)) != 0)
            return d;
        if ((d = strcmp(a->labels[i].value, b->labels[i].value)) != 0)
            return d;
    }
    return a->nlabels < b->nlabels ? -1 : a->nlabels > b->nlabels;
}

/* Adds @n to *@total; 1 on overflow. */
static int size_add(size_t *total, size_t n)
{
    if (n > SIZE_MAX - *total)
        return 1;
    *total += n;
    return 0;
}

static size_t align_up(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* Distinct strings of one kind (warnings or infos) over all chunks, first seen first. */
static int collect_strings(struct query *q, int infos, const char ***out, size_t *n)
{
    size_t cap = 0;

    *out = NULL;
    *n = 0;
    for (size_t i = 0; i < q->nchunks; i++)
        cap += infos ? q->chunks[i].res.ninfos : q->chunks[i].res.nwarnings;
    if (!cap)
        return 0;
    if (!(*out = malloc(cap * sizeof(char *))))
        return RG_ENOMEM;
    for (size_t i = 0; i < q->nchunks; i++) {
        const struct rg_query_result *r = &q->chunks[i].res;
        size_t m = infos ? r->ninfos : r->nwarnings;
        for (size_t j = 0; j < m; j++) {
            const char *s = infos ? r->infos[j] : r->warnings[j];
            size_t k = 0;
            while (k < *n && strcmp((*out)[k], s))
                k++;
            if (k == *n)
                (*out)[(*n)++] = s;
        }
    }
    return 0;
}

struct slot {
    const struct rg_promql_series *first;   /* NULL: empty slot */
    size_t index;                            /* merged series number */
};

/* Merges the chunk matrices of @q into @out (one block, see the file comment). */
static int merge(struct query *q, struct rg_query_result *out)
{
    struct slot *tab = NULL;
    size_t tcap = 16, nmerged = 0, total = 0, nstr = 0;
    size_t *npoints = NULL, **map = NULL;
    const struct rg_promql_series **firsts = NULL;
    const char **warn = NULL, **info = NULL;
    size_t nwarn = 0, ninfo = 0, nin = 0;
    struct rg_promql_series *ms;
    char *blk, *sp;
    size_t off_labels, off_points, off_warn, off_info, off_str;
    int err = RG_ENOMEM;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < q->nchunks; i++)
        nin += q->chunks[i].res.nseries;
    while (tcap < 2 * nin)
        tcap *= 2;
    tab = calloc(tcap, sizeof(*tab));
    map = calloc(q->nchunks, sizeof(*map));
    npoints = calloc(nin ? nin : 1, sizeof(*npoints));
    firsts = calloc(nin ? nin : 1, sizeof(*firsts));
    if (!tab || !map || !npoints || !firsts)
        goto out;

    /* Pass 1: the merged series each input series belongs to, and point counts. */
    for (size_t i = 0; i < q->nchunks; i++) {
        const struct rg_query_result *r = &q->chunks[i].res;
        if (!(map[i] = malloc((r->nseries ? r->nseries : 1) * sizeof(size_t))))
            goto out;
        for (size_t j = 0; j < r->nseries; j++) {
            const struct rg_promql_series *s = &r->series[j];
            size_t h = (size_t)labels_hash(s) & (tcap - 1);
            while (tab[h].first && !labels_eq(tab[h].first, s))
                h = (h + 1) & (tcap - 1);
            if (!tab[h].first) {
                tab[h].first = s;
                tab[h].index = nmerged;
                firsts[nmerged++] = s;
            }
            map[i][j] = tab[h].index;
            npoints[tab[h].index] += s->npoints;
        }
    }
    if (collect_strings(q, 0, &warn, &nwarn) || collect_strings(q, 1, &info, &ninfo))
        goto out;

    /* Sizes: series array, label arrays, point arrays, string pointer arrays, strings. */
    if (size_add(&total, nmerged * sizeof(struct rg_promql_series)))
        goto out;
    off_labels = total = align_up(total);
    for (size_t k = 0; k < nmerged; k++) {
        if (size_add(&total, firsts[k]->nlabels * sizeof(struct rg_label)))
            goto out;
        for (size_t l = 0; l < firsts[k]->nlabels; l++)
            if (size_add(&nstr, strlen(firsts[k]->labels[l].name) + 1) ||
                size_add(&nstr, strlen(firsts[k]->labels[l].value) + 1))
                goto out;
    }
    off_points = total = align_up(total);
    for (size_t k = 0; k < nmerged; k++)
        if (npoints[k] > SIZE_MAX / sizeof(struct rg_sample) ||
            size_add(&total, npoints[k] * sizeof(struct rg_sample)))
            goto out;
    off_warn = total = align_up(total);
    if (size_add(&total, nwarn * sizeof(char *)))
        goto out;
    off_info = total;
    if (size_add(&total, ninfo * sizeof(char *)))
        goto out;
    for (size_t k = 0; k < nwarn; k++)
        if (size_add(&nstr, strlen(warn[k]) + 1))
            goto out;
    for (size_t k = 0; k < ninfo; k++)
        if (size_add(&nstr, strlen(info[k]) + 1))
            goto out;
    off_str = total;
    if (size_add(&total, nstr) || size_add(&total, 16))
        goto out;
    if (!(blk = calloc(1, total)))
        goto out;

    /* Pass 2: fill. */
    ms = (struct rg_promql_series *)(void *)blk;
    sp = blk + off_str;
    {
        struct rg_label *lp = (struct rg_label *)(void *)(blk + off_labels);
        struct rg_sample *pp = (struct rg_sample *)(void *)(blk + off_points);
        for (size_t k = 0; k < nmerged; k++) {
            ms[k].labels = lp;
            ms[k].nlabels = firsts[k]->nlabels;
            for (size_t l = 0; l < firsts[k]->nlabels; l++) {
                size_t a = strlen(firsts[k]->labels[l].name) + 1;
                size_t b = strlen(firsts[k]->labels[l].value) + 1;
                memcpy(sp, firsts[k]->labels[l].name, a);
                lp[l].name = sp;
                sp += a;
                memcpy(sp, firsts[k]->labels[l].value, b);
                lp[l].value = sp;
                sp += b;
            }
            lp += firsts[k]->nlabels;
            ms[k].points = pp;
            ms[k].npoints = 0;
            pp += npoints[k];
        }
    }
    for (size_t i = 0; i < q->nchunks; i++) {
        const struct rg_query_result *r = &q->chunks[i].res;
        for (size_t j = 0; j < r->nseries; j++) {
            struct rg_promql_series *m = &ms[map[i][j]];
            for (size_t p = 0; p < r->series[j].npoints; p++) {
                /* Chunks do not overlap; a server that repeats a boundary point anyway
                 * must not make the series go back in time. */
                if (m->npoints && r->series[j].points[p].t <= m->points[m->npoints - 1].t)
                    continue;
                m->points[m->npoints++] = r->series[j].points[p];
            }
        }
    }
    out->warnings = nwarn ? (char **)(void *)(blk + off_warn) : NULL;
    for (size_t k = 0; k < nwarn; k++) {
        size_t a = strlen(warn[k]) + 1;
        memcpy(sp, warn[k], a);
        out->warnings[k] = sp;
        sp += a;
    }
    out->nwarnings = nwarn;
    out->infos = ninfo ? (char **)(void *)(blk + off_info) : NULL;
    for (size_t k = 0; k < ninfo; k++) {
        size_t a = strlen(info[k]) + 1;
        memcpy(sp, info[k], a);
        out->infos[k] = sp;
        sp += a;
    }
    out->ninfos = ninfo;
    qsort(ms, nmerged, sizeof(*ms), series_cmp);
    out->type = RG_PROMQL_VT_MATRIX;
    out->series = ms;
    out->nseries = nmerged;
    err = 0;
out:
    if (map)
        for (size_t i = 0; i < q->nchunks; i++)
            free(map[i]);
    free(map);
    free(tab);
    free(npoints);
    free(firsts);
    free((void *)warn);
    free((void *)info);
    return err;
}

/* ---- chunks ----------------------------------------------------------------------------- */

static void on_http_done(const struct rg_http_result *hr, void *ud);

static int on_body(const char *p, size_t n, void *ud)
{
    struct chunk *ch = ud;

    return rg_query_parser_feed(ch->parser, p, n);
}

/* Starts @ch's request now. Returns 0 or the transport's (or an allocation) error. */
static int chunk_start(struct chunk *ch)
{
    struct query *q = ch->q;
    struct rg_query_parse_opts po;
    struct rg_http_call call;
    struct rg_buf form = { 0 };
    char a[32], b[32], s[32], t[32];
    int err;

    rg_query_parse_opts_default(&po);
    po.max_bytes = q->max_bytes;
    /* Instant queries may answer with any type (a range selector gives a matrix);
     * query_range answers with a matrix only. */
    po.expect = q->range ? RG_QUERY_EXPECT(RG_PROMQL_VT_MATRIX) : 0;
    err = rg_query_parser_new(&po, &ch->parser);
    if (err)
        return err;
    fmt_seconds(t, sizeof(t), q->timeout_ms, 1);
    fmt_seconds(a, sizeof(a), ch->start_ms, 0);
    if (q->range) {
        fmt_seconds(b, sizeof(b), ch->end_ms, 0);
        fmt_seconds(s, sizeof(s), q->step_ms, 1);
        err = rg_http_form_add(&form, "query", q->expr);
        if (!err)
            err = rg_http_form_add(&form, "start", a);
        if (!err)
            err = rg_http_form_add(&form, "end", b);
        if (!err)
            err = rg_http_form_add(&form, "step", s);
    } else {
        err = rg_http_form_add(&form, "query", q->expr);
        if (!err)
            err = rg_http_form_add(&form, "time", a);
    }
    if (!err)
        err = rg_http_form_add(&form, "timeout", t);
    if (err)
        goto fail_form;

    memset(&call, 0, sizeof(call));
    call.method = "POST";
    call.url = q->url;
    call.content_type = "application/x-www-form-urlencoded";
    call.headers = (const char *const *)q->headers;
    call.nheaders = q->nheaders;
    call.body_move = &form;
    call.timeout_ms = (uint64_t)q->timeout_ms;
    call.max_response_bytes = q->max_bytes;
    call.tls.ca_file = q->ca_file;
    call.tls.cert_file = q->cert_file;
    call.tls.key_file = q->key_file;
    call.tls.server_name = q->server_name;
    call.tls.insecure_skip_verify = q->insecure;
    call.basic_user = q->user;
    call.basic_password = q->password;
    call.bearer_token = q->bearer;
    call.on_data = on_body;
    err = rg_curl_uv_request(q->c->cu, &call, on_http_done, ch, &ch->req);
    if (err)
        goto fail_form;
    rg_buf_cleanup(&form);
    ch->state = CH_INFLIGHT;
    q->st->inflight++;
    return 0;

fail_form:
    rg_buf_cleanup(&form);
    rg_query_parser_free(ch->parser);
    ch->parser = NULL;
    return err;
}

/* Starts @ch if its source has a free slot and nobody waits, else queues it. */
static int chunk_submit(struct chunk *ch)
{
    struct src_state *st = ch->q->st;

    if (st->inflight < st->limit && !st->qhead)
        return chunk_start(ch);
    ch->state = CH_QUEUED;
    ch->qnext = NULL;
    if (st->qtail)
        st->qtail->qnext = ch;
    else
        st->qhead = ch;
    st->qtail = ch;
    return 0;
}

/* Submits @q's next chunks up to its window. */
static int query_feed(struct query *q)
{
    while (q->nactive < (size_t)q->window && q->next_chunk < q->nchunks) {
        struct chunk *ch = &q->chunks[q->next_chunk];
        int err = chunk_submit(ch);
        if (err)
            return err;
        q->next_chunk++;
        q->nactive++;
    }
    return 0;
}

/* Starts queued chunks of @st while it has free slots. */
static void pump(struct rg_query_client *c, struct src_state *st)
{
    while (!c->closing && st->qhead && st->inflight < st->limit) {
        struct chunk *ch = st->qhead;
        struct query *q = ch->q;
        int err;

        st->qhead = ch->qnext;
        if (!st->qhead)
            st->qtail = NULL;
        ch->qnext = NULL;
        ch->state = CH_IDLE;
        if ((err = chunk_start(ch)) != 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "cannot start the request: %s", rg_strerror(err));
            query_fail(q, err, reason_of(err), msg, NULL);
        }
    }
}

/* The outcome of one request: error, reason, message and (on success or a server's
 * error answer) the parsed result. */
static int judge(const struct rg_http_result *hr, struct query *q, struct rg_query_parser *p,
                 struct rg_query_result *res, enum reason *why, char *msg, size_t cap)
{
    struct rg_buf pmsg = { 0 };
    int pe, err = hr->err;

    pe = rg_query_parser_finish(p, res, &pmsg);
    *why = reason_of(err);
    if (err == RG_ECANCELED) {
        snprintf(msg, cap, "query canceled");
    } else if (err == RG_ETIMEDOUT) {
        snprintf(msg, cap, "query timed out after %" PRId64 "ms", q->timeout_ms);
    } else if (err == RG_ETOOBIG || pe == RG_ETOOBIG) {
        /* The transport's bound (Content-Length or bytes received) or the parser's
         * bounds on series and points; the status does not matter then. */
        err = RG_ETOOBIG;
        *why = R_TOO_LARGE;
        if (pe == RG_ETOOBIG && pmsg.data)
            snprintf(msg, cap, "%s", pmsg.data);
        else
            snprintf(msg, cap, "response larger than %zu bytes", q->max_bytes);
    } else if (err && err != RG_EBADMSG && err != RG_ENOMEM) {
        /* A transport failure; libcurl's message names the host and port, no secret. */
        snprintf(msg, cap, "%s", hr->error && hr->error[0] ? hr->error : rg_strerror(err));
    } else if (pe == RG_EEXEC || pe == RG_ETIMEDOUT) {
        /* A Prometheus error body: the answer whatever the HTTP status was. */
        err = pe;
        *why = reason_of(err);
        snprintf(msg, cap, "%s", pmsg.data ? pmsg.data : rg_strerror(err));
    } else if (hr->status < 200 || hr->status > 299) {
        err = RG_EIO;
        *why = R_HTTP;
        snprintf(msg, cap, "server answered HTTP %d without a Prometheus error body",
                 hr->status);
    } else if (pe) {
        err = pe;
        *why = reason_of(err);
        snprintf(msg, cap, "%s", pmsg.data ? pmsg.data : rg_strerror(err));
    } else {
        err = 0;
        msg[0] = 0;
    }
    rg_buf_cleanup(&pmsg);
    if (err && err != RG_EEXEC && err != RG_ETIMEDOUT)
        rg_query_result_free(res);
    return err;
}

static void client_release(struct rg_query_client *c)
{
    while (c->states) {
        struct src_state *st = c->states;
        c->states = st->next;
        free(st->name);
        free(st);
    }
    free(c);
}

static void on_http_done(const struct rg_http_result *hr, void *ud)
{
    struct chunk *ch = ud;
    struct query *q = ch->q;
    struct rg_query_client *c = q->c;
    struct src_state *st = q->st;
    struct rg_query_result res;
    enum reason why;
    char msg[512];
    int err;

    c->depth++;
    st->inflight--;
    ch->req = NULL;
    err = judge(hr, q, ch->parser, &res, &why, msg, sizeof(msg));
    rg_query_parser_free(ch->parser);
    ch->parser = NULL;
    ch->state = CH_DONE;
    if (q->failed) {
        /* Cancelled by query_fail(): the query reports its own error. */
        rg_query_result_free(&res);
    } else if (err) {
        if (q->nchunks > 1) {
            char full[600];
            snprintf(full, sizeof(full), "chunk %zu of %zu: %s", (size_t)(ch - q->chunks) + 1,
                     q->nchunks, msg);
            query_fail(q, err, why, full, &res);
        } else {
            query_fail(q, err, why, msg, &res);
        }
    } else {
        ch->res = res;
        q->ndone++;
        q->nactive--;
        if (q->ndone == q->nchunks) {
            if (q->nchunks == 1) {
                res = ch->res;
                memset(&ch->res, 0, sizeof(ch->res));
                if (q->range)
                    qsort(res.series, res.nseries, sizeof(*res.series), series_cmp);
                query_complete(q, 0, R_CONNECTION, "", &res);
            } else if ((err = merge(q, &res)) != 0) {
                query_fail(q, err, R_CONNECTION, "out of memory merging chunks", NULL);
            } else {
                query_complete(q, 0, R_CONNECTION, "", &res);
            }
        } else if ((err = query_feed(q)) != 0) {
            snprintf(msg, sizeof(msg), "cannot start the request: %s", rg_strerror(err));
            query_fail(q, err, reason_of(err), msg, NULL);
        }
    }
    pump(c, st);
    c->depth--;
    if (c->closing && !c->depth)
        client_release(c);
}

/* ---- public API ------------------------------------------------------------------------- */

/* Submits a new query; on a synchronous failure nothing is reported to @cb. */
static int query_go(struct query *q)
{
    struct rg_query_client *c = q->c;
    int err;

    query_link(q);
    /* A failure while submitting must not call back from inside the caller's call:
     * the depth guard keeps any cancellation's callbacks from freeing the client, and
     * the query's own callback is replaced by the return value. */
    c->depth++;
    err = query_feed(q);
    if (err) {
        q->failed = 1;
        for (size_t i = 0; i < q->nchunks; i++) {
            struct chunk *ch = &q->chunks[i];
            if (ch->state == CH_QUEUED)
                unqueue(ch);
            ch->state = CH_IDLE;
        }
        for (size_t i = 0; i < q->nchunks; i++)
            if (q->chunks[i].req)
                rg_curl_uv_cancel(c->cu, q->chunks[i].req);
        query_unlink(q);
        query_free(q);
    }
    c->depth--;
    if (c->closing && !c->depth)
        client_release(c);
    return err;
}

int rg_query_instant(struct rg_query_client *c, const struct rg_query_source *src,
                     const char *expr, int64_t t_ms, rg_query_cb cb, void *ud)
{
    struct query *q;
    int err;

    if (!c || !src || !src->url || !expr || !cb)
        return RG_EINVAL;
    if (c->closing)
        return RG_ECANCELED;
    err = query_new(c, src, expr, 0, cb, ud, &q);
    if (err)
        return err;
    if (!(q->chunks = calloc(1, sizeof(*q->chunks)))) {
        query_free(q);
        return RG_ENOMEM;
    }
    q->nchunks = 1;
    q->chunks[0].q = q;
    q->chunks[0].start_ms = q->chunks[0].end_ms = t_ms - src->query_offset_ms;
    return query_go(q);
}

int rg_query_range(struct rg_query_client *c, const struct rg_query_source *src,
                   const char *expr, int64_t start_ms, int64_t end_ms, int64_t step_ms,
                   rg_query_cb cb, void *ud)
{
    struct query *q;
    int64_t npoints, per;
    size_t nchunks;
    int err;

    uint64_t span;

    if (!c || !src || !src->url || !expr || !cb || step_ms <= 0 || end_ms < start_ms)
        return RG_EINVAL;
    if (c->closing)
        return RG_ECANCELED;
    span = (uint64_t)end_ms - (uint64_t)start_ms;
    if (span > (uint64_t)INT64_MAX)
        return RG_EINVAL;
    npoints = (int64_t)(span / (uint64_t)step_ms) + 1;
    per = src->max_points > 0 ? src->max_points : DEFAULT_MAX_POINTS;
    /* A bound on the bookkeeping, far beyond any sensible replay (a year at 1 s is
     * about 2,900 requests of 11,000 points). */
    if ((npoints + per - 1) / per > MAX_CHUNKS)
        return RG_EINVAL;
    nchunks = (size_t)((npoints + per - 1) / per);
    err = query_new(c, src, expr, 1, cb, ud, &q);
    if (err)
        return err;
    if (!(q->chunks = calloc(nchunks, sizeof(*q->chunks)))) {
        query_free(q);
        return RG_ENOMEM;
    }
    q->nchunks = nchunks;
    q->step_ms = step_ms;
    for (size_t i = 0; i < nchunks; i++) {
        struct chunk *ch = &q->chunks[i];
        int64_t first = (int64_t)i * per;
        int64_t last = first + per - 1 < npoints - 1 ? first + per - 1 : npoints - 1;
        ch->q = q;
        ch->start_ms = start_ms + first * step_ms;
        /* One request keeps the caller's end exactly; chunks end on the step grid. */
        ch->end_ms = nchunks == 1 ? end_ms : start_ms + last * step_ms;
    }
    return query_go(q);
}

/* Fails every live query with RG_ECANCELED; the caller holds a depth reference. */
static void cancel_all(struct rg_query_client *c, const char *msg)
{
    for (;;) {
        /* A query already failing is being finished by an outer frame. */
        struct query *q = c->queries;
        while (q && q->failed)
            q = q->next;
        if (!q)
            break;
        query_fail(q, RG_ECANCELED, R_CANCELED, msg, NULL);
    }
}

void rg_query_client_free(struct rg_query_client *c)
{
    if (!c || c->closing)
        return;
    c->closing = 1;
    c->depth++;
    cancel_all(c, "query canceled: client closed");
    c->depth--;
    if (!c->depth)
        client_release(c);
}

size_t rg_query_client_pending(const struct rg_query_client *c)
{
    return c ? c->nqueries : 0;
}

/* ---- the command line's runner and blocking calls -------------------------------------- */

struct rg_query_runner {
    uv_loop_t loop;
    struct rg_curl_uv *cu;
    struct rg_query_client *c;
};

int rg_query_runner_new(struct rg_query_runner **out)
{
    struct rg_query_runner *r;
    int err;

    *out = NULL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return RG_ENOMEM;
    err = uv_loop_init(&r->loop);
    if (err)
        goto fail_loop;
    err = rg_curl_uv_new(&r->loop, &r->cu);
    if (err)
        goto fail_cu;
    err = rg_query_client_new(&r->loop, r->cu, NULL, &r->c);
    if (err)
        goto fail_client;
    *out = r;
    return 0;

fail_client:
    rg_curl_uv_close(r->cu, NULL, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
fail_cu:
    uv_loop_close(&r->loop);
fail_loop:
    free(r);
    return err;
}

struct rg_query_client *rg_query_runner_client(struct rg_query_runner *r)
{
    return r->c;
}

int rg_query_runner_wait(struct rg_query_runner *r)
{
    struct rg_query_client *c = r->c;

    while (c->nqueries) {
        /* Nothing left to wait for with queries pending cannot happen while a request
         * is in flight, since the transport's timer runs; should it happen, cancel them
         * rather than wait forever. */
        if (!uv_run(&r->loop, UV_RUN_ONCE) && c->nqueries) {
            c->depth++;
            cancel_all(c, "query canceled: nothing left to wait for");
            c->depth--;
            return RG_EIO;
        }
    }
    return 0;
}

void rg_query_runner_free(struct rg_query_runner *r)
{
    if (!r)
        return;
    rg_query_client_free(r->c);
    rg_curl_uv_close(r->cu, NULL, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&r->loop) != 0)
        rg_warn("event=query_runner_loop_busy");
    free(r);
}

struct sync_state {
    int done;
    int err;
    struct rg_query_result *out;
    struct rg_buf *errmsg;
};

static void sync_cb(void *ud, int err, const char *msg, struct rg_query_result *res)
{
    struct sync_state *s = ud;

    s->done = 1;
    s->err = err;
    if (!err) {
        *s->out = *res;
        memset(res, 0, sizeof(*res));
    } else if (s->errmsg) {
        rg_buf_reset(s->errmsg);
        rg_buf_puts(s->errmsg, msg);
    }
}

static int runner_query(struct rg_query_runner *r, const struct rg_query_source *src,
                        const char *expr, int range, int64_t a, int64_t b, int64_t step,
                        struct rg_query_result *out, struct rg_buf *errmsg)
{
    struct sync_state s = { 0, 0, out, errmsg };
    int err;

    memset(out, 0, sizeof(*out));
    if (range)
        err = rg_query_range(r->c, src, expr, a, b, step, sync_cb, &s);
    else
        err = rg_query_instant(r->c, src, expr, a, sync_cb, &s);
    if (!err) {
        /* Other queries submitted to the runner complete meanwhile; only this one is
         * waited for. */
        while (!s.done)
            if (!uv_run(&r->loop, UV_RUN_ONCE) && !s.done) {
                r->c->depth++;
                cancel_all(r->c, "query canceled: nothing left to wait for");
                r->c->depth--;
            }
        return s.err;
    }
    if (errmsg) {
        rg_buf_reset(errmsg);
        rg_buf_puts(errmsg, rg_strerror(err));
    }
    return err;
}

int rg_query_runner_instant(struct rg_query_runner *r, const struct rg_query_source *src,
                            const char *expr, int64_t t_ms, struct rg_query_result *out,
                            struct rg_buf *errmsg)
{
    return runner_query(r, src, expr, 0, t_ms, 0, 0, out, errmsg);
}

int rg_query_runner_range(struct rg_query_runner *r, const struct rg_query_source *src,
                          const char *expr, int64_t start_ms, int64_t end_ms, int64_t step_ms,
                          struct rg_query_result *out, struct rg_buf *errmsg)
{
    return runner_query(r, src, expr, 1, start_ms, end_ms, step_ms, out, errmsg);
}

static int run_sync(const struct rg_query_source *src, const char *expr, int range,
                    int64_t a, int64_t b, int64_t step, struct rg_query_result *out,
                    struct rg_buf *errmsg)
{
    struct rg_query_runner *r;
    int err;

    memset(out, 0, sizeof(*out));
    err = rg_query_runner_new(&r);
    if (err) {
        if (errmsg) {
            rg_buf_reset(errmsg);
            rg_buf_puts(errmsg, rg_strerror(err));
        }
        return err;
    }
    err = runner_query(r, src, expr, range, a, b, step, out, errmsg);
    rg_query_runner_free(r);
    return err;
}

int rg_query_instant_sync(const struct rg_query_source *src, const char *expr, int64_t t_ms,
                          struct rg_query_result *out, struct rg_buf *errmsg)
{
    return run_sync(src, expr, 0, t_ms, 0, 0, out, errmsg);
}

int rg_query_range_sync(const struct rg_query_source *src, const char *expr, int64_t start_ms,
                        int64_t end_ms, int64_t step_ms, struct rg_query_result *out,
                        struct rg_buf *errmsg)
{
    return run_sync(src, expr, 1, start_ms, end_ms, step_ms, out, errmsg);
}
