/* notify/dispatch.c - per-notifier delivery loops over the outbox, on the libuv loop.
 *
 * See dispatch.h. Scheduling is one pump function and one timer: the pump walks every
 * notifier, starts as many due events as its concurrency allows, then arms the timer
 * for the earliest due event among notifiers with free capacity. Anything that may
 * create work (an emit, a completed attempt) "kicks" the pump by arming the timer at
 * zero, so an evaluation that emits many events is sent in one pass on the next loop
 * iteration rather than from inside emit. Acks are fsync'd by a second, one-shot timer
 * at most sync_interval_ms after the first unsynced ack.
 *
 * Signing happens in send_event(), once per attempt, with the wall clock read just
 * before the request is handed to the client; the header joins the per-attempt header
 * list and is freed with it, so neither the outbox nor any log sees it.
 */
#include "notify/dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "notify/sign.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

#define DEFAULT_TIMEOUT_MS      10000
#define DEFAULT_MAX_RESPONSE    (64u << 10)
#define DEFAULT_IN_FLIGHT       8
#define DEFAULT_SYNC_MS         200
#define DEFAULT_PROBE_MAX_MS    5000
#define MAX_EXTRA_HEADERS       1024
#define NOUTCOMES               4

static const double latency_bounds[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
};

struct notifier {
    char *name, *url, *method;
    char **headers;                    /* owned strings */
    size_t nheaders;
    char *ca_file, *cert_file, *key_file, *server_name;
    int insecure;
    char *basic_user, *basic_password, *bearer_token;   /* secrets */
    char *idem_header;                 /* "" = none */
    unsigned char *secret;             /* signing secret (secret), NULL = unsigned */
    size_t secret_len;
    uint64_t timeout_ms;
    size_t max_response;
    unsigned max_in_flight;
    struct rg_retry_policy retry;
    unsigned in_flight;
    int failing;                       /* last attempt failed and will be retried */
    int64_t hold_until_ms;             /* no attempt before this (wall ms) while failing */
    int64_t probe_max_ms;              /* longest hold after a failure without Retry-After */
    struct rg_dispatch_stats st;
    struct rg_metrics_child *m_outcome[NOUTCOMES];
    struct rg_metrics_child *m_queue;
    struct rg_metrics_child *m_latency;
};

struct attempt {
    struct rg_dispatch *d;
    struct notifier *n;
    uint64_t id;
    struct rg_curl_uv_req *req;
    struct attempt *prev, *next;
};

struct rg_dispatch {
    uv_loop_t *loop;
    struct rg_curl_uv *cu;
    struct rg_outbox *ob;
    struct rg_metrics *metrics;
    struct rg_metrics_family *f_total, *f_queue, *f_latency, *f_dropped;
    struct notifier **notifiers;
    size_t nnotifiers;
    struct attempt *attempts;
    uv_timer_t pump_timer;
    uv_timer_t sync_timer;
    uint64_t sync_ms;
    int handles;
    int started;
    int closing;
    int transport_closed;              /* the curl_uv client refused work */
    struct rg_retry_rng rng;
    void (*on_result)(const struct rg_dispatch_result *r, void *ud);
    void *on_result_ud;
    void (*on_closed)(void *ud);
    void *on_closed_ud;
};

static const char *const outcome_names[NOUTCOMES] = { "success", "retry", "rejected", "expired" };

const char *rg_dispatch_outcome_name(enum rg_dispatch_outcome o)
{
    return (unsigned)o < NOUTCOMES ? outcome_names[o] : "unknown";
}

static struct notifier *find(const struct rg_dispatch *d, const char *name)
{
    for (size_t i = 0; i < d->nnotifiers; i++)
        if (!strcmp(d->notifiers[i]->name, name))
            return d->notifiers[i];
    return NULL;
}

static void on_pump(uv_timer_t *t);

/* Runs the pump on the next loop iteration. */
static void kick(struct rg_dispatch *d)
{
    if (!d->closing && d->started && !d->transport_closed)
        uv_timer_start(&d->pump_timer, on_pump, 0, 0);
}

/* ---- metrics and drops ----------------------------------------------------------------- */

static void on_drop(void *ud, const struct rg_outbox_event *ev, enum rg_outbox_drop why)
{
    struct rg_dispatch *d = ud;
    struct notifier *n = find(d, ev->notifier);
    /* Orphans (no notifier) are summarised by rg_dispatch_start(): debug level only. */
    uint64_t k = 2;

    if (n)
        k = ++n->st.dropped[why];
    if (d->f_dropped) {
        const char *labels[2] = { ev->notifier, rg_outbox_drop_name(why) };
        struct rg_metrics_child *c = rg_metrics_child(d->f_dropped, labels);
        if (c)
            c->value += 1;
    }
    /* A full outbox can drop thousands of events in a row: warn for the 1st, 10th,
     * 100th, ... drop of a kind and keep the rest at debug level. */
    while (k >= 10 && k % 10 == 0)
        k /= 10;
    if (k <= 1)
        rg_warn("event=notification_dropped notifier=%s id=%llu dedup_key=%s reason=%s "
                "attempts=%u", ev->notifier, (unsigned long long)ev->id,
                ev->dedup_key[0] ? ev->dedup_key : "-", rg_outbox_drop_name(why), ev->attempts);
    else
        rg_debug("event=notification_dropped notifier=%s id=%llu reason=%s", ev->notifier,
                 (unsigned long long)ev->id, rg_outbox_drop_name(why));
}

static void update_queue_gauge(struct rg_dispatch *d, struct notifier *n)
{
    struct rg_outbox_queue_stats qs;

    rg_outbox_queue_stats(d->ob, n->name, &qs);
    n->st.pending = qs.pending;
    n->st.in_flight = qs.in_flight;
    if (n->m_queue)
        n->m_queue->value = (double)(qs.pending + qs.in_flight);
}

static void count(struct rg_dispatch *d, struct notifier *n, enum rg_dispatch_outcome o)
{
    (void)d;
    n->st.attempts[o]++;
    if (n->m_outcome[o])
        n->m_outcome[o]->value += 1;
}

static int register_metrics(struct rg_dispatch *d)
{
    static const char *const l_outcome[] = { "notifier", "outcome" };
    static const char *const l_notifier[] = { "notifier" };
    static const char *const l_reason[] = { "notifier", "reason" };

    if (!d->metrics)
        return 0;
    d->f_total = rg_metrics_family(d->metrics, "rollgate_notifications_total",
                                   "Notification delivery attempts by outcome.",
                                   RG_METRICS_COUNTER, l_outcome, 2, NULL, 0);
    d->f_queue = rg_metrics_family(d->metrics, "rollgate_notification_queue_length",
                                   "Notification events waiting or in flight.",
                                   RG_METRICS_GAUGE, l_notifier, 1, NULL, 0);
    d->f_latency = rg_metrics_family(d->metrics, "rollgate_notification_latency_seconds",
                                     "Time from an event's emission to its acknowledgement.",
                                     RG_METRICS_HISTOGRAM, l_notifier, 1, latency_bounds,
                                     sizeof(latency_bounds) / sizeof(latency_bounds[0]));
    d->f_dropped = rg_metrics_family(d->metrics, "rollgate_notifications_dropped_total",
                                     "Notification events dropped without delivery.",
                                     RG_METRICS_COUNTER, l_reason, 2, NULL, 0);
    if (!d->f_total || !d->f_queue || !d->f_latency || !d->f_dropped)
        return RG_ENOMEM;
    return 0;
}

/* ---- attempts ------------------------------------------------------------------------------ */

static void attempt_unlink(struct rg_dispatch *d, struct attempt *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else
        d->attempts = a->next;
    if (a->next)
        a->next->prev = a->prev;
    a->n->in_flight--;
}

static void report(struct rg_dispatch *d, struct notifier *n, const struct rg_outbox_event *ev,
                   enum rg_dispatch_outcome o, const struct rg_http_result *res,
                   int64_t next_ms)
{
    struct rg_dispatch_result r;

    count(d, n, o);
    if (!d->on_result)
        return;
    memset(&r, 0, sizeof(r));
    r.notifier = n->name;
    r.id = ev->id;
    r.dedup_key = ev->dedup_key;
    r.outcome = o;
    r.status = res ? res->status : 0;
    r.err = res ? res->err : 0;
    r.attempt = ev->attempts;
    r.next_attempt_ms = next_ms;
    r.seconds = res ? res->total_s : 0;
    d->on_result(&r, d->on_result_ud);
}

static void on_sync(uv_timer_t *t)
{
    struct rg_dispatch *d = t->data;
    int err = rg_outbox_sync(d->ob);

    if (err)
        rg_warn("event=outbox_sync_failed err=%s", rg_err_name(err));
}

static void schedule_sync(struct rg_dispatch *d)
{
    if (!d->closing && !uv_is_active((uv_handle_t *)&d->sync_timer))
        uv_timer_start(&d->sync_timer, on_sync, d->sync_ms, 0);
}

/* The receiver answered again after failures: stop probing and make the backlog due. */
static void recovered(struct rg_dispatch *d, struct notifier *n, int64_t now)
{
    if (!n->failing)
        return;
    n->failing = 0;
    n->hold_until_ms = 0;
    rg_outbox_hurry(d->ob, n->name, now);
    rg_info("event=notifier_recovered notifier=%s", n->name);
}

static void on_attempt_done(const struct rg_http_result *res, void *ud)
{
    struct attempt *a = ud;
    struct rg_dispatch *d = a->d;
    struct notifier *n = a->n;
    uint64_t id = a->id;
    const struct rg_outbox_event *ev;
    struct rg_retry_attempt in;
    struct rg_retry_decision dec;
    int64_t now;

    attempt_unlink(d, a);
    free(a);
    if (d->closing) {
        /* The event stays in the outbox (in flight only in memory): it is resent
         * after the next start. */
        return;
    }
    ev = rg_outbox_get(d->ob, id);
    if (!ev) {
        /* Dropped while in flight (the outbox was full): nothing left to settle. */
        kick(d);
        return;
    }
    now = rg_now_ms();
    if (res->err == RG_ECANCELED && res->status == 0) {
        /* Cancelled by the transport (it is closing): not the receiver's fault. */
        rg_outbox_retry(d->ob, id, now, ev->last_backoff_ms);
        update_queue_gauge(d, n);
        kick(d);
        return;
    }
    memset(&in, 0, sizeof(in));
    in.status = res->status;
    in.err = res->err;
    in.retry_after = res->retry_after;
    in.attempts = ev->attempts;
    in.created_ms = ev->created_ms;
    in.now_ms = now;
    in.prev_backoff_ms = ev->last_backoff_ms;
    rg_retry_decide(&n->retry, &in, &d->rng, &dec);

    switch (dec.action) {
    case RG_RETRY_ACK: {
        double lat = now > ev->created_ms ? (double)(now - ev->created_ms) / 1000.0 : 0.0;
        n->st.acked++;
        n->st.latency_sum_s += lat;
        if (n->m_latency)
            rg_metrics_observe(d->f_latency, n->m_latency, lat);
        report(d, n, ev, RG_DISPATCH_SUCCESS, res, 0);
        rg_outbox_ack(d->ob, id);
        schedule_sync(d);
        recovered(d, n, now);
        break;
    }
    case RG_RETRY_AGAIN:
        if (!n->failing) {
            char q[256];
            rg_warn("event=notifier_failing notifier=%s status=%d err=%s error=%s "
                    "retry_in_ms=%lld", n->name, res->status,
                    res->err ? rg_err_name(res->err) : "none",
                    rg_log_quote(q, sizeof(q), res->error, strlen(res->error)),
                    (long long)dec.delay_ms);
        }
        n->failing = 1;
        /* The receiver, not just this event, is in trouble: hold the whole notifier.
         * A Retry-After is the receiver's own request and is honoured in full; other
         * failures hold it at most probe_max_ms, so a receiver that comes back is
         * found again within that time even when events back off longer. */
        {
            int64_t hold = dec.retry_after_used || dec.delay_ms < n->probe_max_ms
                               ? dec.delay_ms : n->probe_max_ms;
            if (now + hold > n->hold_until_ms)
                n->hold_until_ms = now + hold;
        }
        rg_outbox_retry(d->ob, id, dec.next_attempt_ms, dec.delay_ms);
        report(d, n, ev, RG_DISPATCH_RETRY, res, dec.next_attempt_ms);
        break;
    case RG_RETRY_DROP_REJECTED:
        rg_warn("event=notification_rejected notifier=%s id=%llu status=%d err=%s",
                n->name, (unsigned long long)id, res->status,
                res->err ? rg_err_name(res->err) : "none");
        report(d, n, ev, RG_DISPATCH_REJECTED, res, 0);
        rg_outbox_drop(d->ob, id, RG_OUTBOX_DROP_REJECTED);
        schedule_sync(d);
        /* An answer, even a refusal, shows the receiver is up. */
        if (res->status > 0)
            recovered(d, n, now);
        break;
    case RG_RETRY_DROP_EXPIRED:
        report(d, n, ev, RG_DISPATCH_EXPIRED, res, 0);
        rg_outbox_drop(d->ob, id, RG_OUTBOX_DROP_EXPIRED);
        schedule_sync(d);
        break;
    }
    update_queue_gauge(d, n);
    kick(d);
}

/* Whether "Name: value" line @h is a signature header. Such a line is never stored and
 * never sent as it was: the dispatcher signs every attempt itself. */
static int is_sig_header(const char *h)
{
    size_t hl = sizeof(RG_SIGN_HEADER_NAME) - 1;

    return !strncasecmp(h, RG_SIGN_HEADER_NAME, hl) && (h[hl] == ':' || h[hl] == ' ');
}

/* Builds the request of @ev and starts it. Returns 0 or the transport's error. */
static int send_event(struct rg_dispatch *d, struct notifier *n, const struct rg_outbox_event *ev)
{
    const char *stack_hdrs[32];
    const char **hdrs = stack_hdrs;
    size_t nh = 0, cap = n->nheaders + ev->nheaders + 2;
    char *idem = NULL;
    char sig[sizeof(RG_SIGN_HEADER_NAME) + 2 + RG_SIGN_HEADER_SIZE];
    struct rg_http_call call;
    struct attempt *a;
    int err;

    if (cap > MAX_EXTRA_HEADERS)
        return RG_EINVAL;
    if (cap > sizeof(stack_hdrs) / sizeof(stack_hdrs[0])) {
        hdrs = malloc(cap * sizeof(*hdrs));
        if (!hdrs)
            return RG_ENOMEM;
    }
    for (size_t i = 0; i < n->nheaders; i++)
        hdrs[nh++] = n->headers[i];
    /* A stored signature comes from an outbox written by a version that signed at
     * emit time: its t is the emit time, which a receiver may already consider a
     * replay. It is dropped and the attempt signed afresh below. */
    for (size_t i = 0; i < ev->nheaders; i++)
        if (!is_sig_header(ev->headers[i]))
            hdrs[nh++] = ev->headers[i];
    if (n->secret) {
        char val[RG_SIGN_HEADER_SIZE];

        err = rg_sign_webhook(n->secret, n->secret_len, rg_now_ms() / 1000, ev->payload,
                              ev->payload_len, val);
        if (err)
            goto out;
        snprintf(sig, sizeof(sig), "%s: %s", RG_SIGN_HEADER_NAME, val);
        hdrs[nh++] = sig;
    }
    if (n->idem_header[0] && ev->dedup_key[0]) {
        size_t hl = strlen(n->idem_header);
        int present = 0;
        for (size_t i = 0; i < ev->nheaders && !present; i++)
            present = !strncasecmp(ev->headers[i], n->idem_header, hl) &&
                      ev->headers[i][hl] == ':';
        if (!present) {
            size_t len = hl + 2 + strlen(ev->dedup_key) + 1;
            idem = malloc(len);
            if (!idem) {
                err = RG_ENOMEM;
                goto out;
            }
            snprintf(idem, len, "%s: %s", n->idem_header, ev->dedup_key);
            hdrs[nh++] = idem;
        }
    }
    a = calloc(1, sizeof(*a));
    if (!a) {
        err = RG_ENOMEM;
        goto out;
    }
    a->d = d;
    a->n = n;
    a->id = ev->id;
    memset(&call, 0, sizeof(call));
    call.method = n->method;
    call.url = n->url;
    call.content_type = ev->content_type[0] ? ev->content_type : NULL;
    call.headers = hdrs;
    call.nheaders = nh;
    call.body = ev->payload;
    call.body_len = ev->payload_len;
    call.timeout_ms = n->timeout_ms;
    call.max_response_bytes = n->max_response;
    call.tls.ca_file = n->ca_file;
    call.tls.cert_file = n->cert_file;
    call.tls.key_file = n->key_file;
    call.tls.server_name = n->server_name;
    call.tls.insecure_skip_verify = n->insecure;
    call.basic_user = n->basic_user;
    call.basic_password = n->basic_password;
    call.bearer_token = n->bearer_token;
    err = rg_curl_uv_request(d->cu, &call, on_attempt_done, a, &a->req);
    if (err) {
        free(a);
        goto out;
    }
    a->next = d->attempts;
    if (d->attempts)
        d->attempts->prev = a;
    d->attempts = a;
    n->in_flight++;
out:
    free(idem);
    if (hdrs != stack_hdrs)
        free(hdrs);
    /* The signature is harmless once sent, but it is wiped like every other value
     * derived from the secret. */
    memset(sig, 0, sizeof(sig));
    return err;
}

static unsigned capacity(const struct notifier *n)
{
    return n->failing ? 1 : n->max_in_flight;
}

/* Starts every due event that the concurrency bounds allow, then arms the timer for
 * the next due one. */
static void pump(struct rg_dispatch *d)
{
    int64_t now = rg_now_ms(), next = INT64_MAX;

    for (size_t i = 0; i < d->nnotifiers && !d->transport_closed; i++) {
        struct notifier *n = d->notifiers[i];
        const struct rg_outbox_event *ev;
        int64_t due;

        /* No due time or hold is ever set further ahead than the larger of the
         * backoff cap and the probe cap. One beyond that means the wall clock was
         * stepped back: pull everything in rather than stall until it catches up. */
        {
            int64_t horizon = now + (n->retry.max_backoff_ms > n->probe_max_ms
                                         ? n->retry.max_backoff_ms : n->probe_max_ms);
            if (n->hold_until_ms > horizon)
                n->hold_until_ms = now;
            due = rg_outbox_next_due_ms(d->ob, n->name);
            if (due != INT64_MAX && due > horizon)
                rg_outbox_hurry(d->ob, n->name, now);
        }
        if (n->hold_until_ms > now) {
            update_queue_gauge(d, n);
            if (n->hold_until_ms < next && rg_outbox_next_due_ms(d->ob, n->name) < INT64_MAX)
                next = n->hold_until_ms;
            continue;
        }
        while (n->in_flight < capacity(n) && (ev = rg_outbox_next_due(d->ob, n->name, now))) {
            uint64_t id = ev->id;
            int err;

            if (rg_retry_expired(&n->retry, ev->created_ms, now)) {
                rg_outbox_drop(d->ob, id, RG_OUTBOX_DROP_EXPIRED);
                schedule_sync(d);
                continue;
            }
            rg_outbox_take(d->ob, id);
            err = send_event(d, n, ev);
            if (err == 0)
                continue;
            if (err == RG_ECANCELED) {
                /* The client is closing: leave the event for the next start. */
                d->transport_closed = 1;
                rg_outbox_retry(d->ob, id, now, 0);
                break;
            }
            if (err == RG_EINVAL) {
                /* The notifier's settings cannot make a request (bad header): no
                 * attempt can ever succeed. */
                rg_error("event=notification_unsendable notifier=%s id=%llu",
                         n->name, (unsigned long long)id);
                count(d, n, RG_DISPATCH_REJECTED);
                rg_outbox_drop(d->ob, id, RG_OUTBOX_DROP_REJECTED);
                continue;
            }
            /* Out of memory: try again after the minimum backoff. */
            rg_outbox_retry(d->ob, id, now + n->retry.min_backoff_ms, n->retry.min_backoff_ms);
            break;
        }
        update_queue_gauge(d, n);
        if (n->in_flight < capacity(n)) {
            due = rg_outbox_next_due_ms(d->ob, n->name);
            if (due < next)
                next = due;
        }
    }
    if (d->transport_closed || next == INT64_MAX) {
        uv_timer_stop(&d->pump_timer);
        return;
    }
    uv_timer_start(&d->pump_timer, on_pump, next > now ? (uint64_t)(next - now) : 0, 0);
}

static void on_pump(uv_timer_t *t)
{
    struct rg_dispatch *d = t->data;

    if (!d->closing)
        pump(d);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void notifier_free(struct notifier *n)
{
    if (!n)
        return;
    free(n->name);
    free(n->url);
    free(n->method);
    for (size_t i = 0; i < n->nheaders; i++)
        free(n->headers[i]);
    free(n->headers);
    free(n->ca_file);
    free(n->cert_file);
    free(n->key_file);
    free(n->server_name);
    free(n->basic_user);
    if (n->basic_password) {
        /* Secrets do not linger in freed memory. */
        memset(n->basic_password, 0, strlen(n->basic_password));
        free(n->basic_password);
    }
    if (n->bearer_token) {
        memset(n->bearer_token, 0, strlen(n->bearer_token));
        free(n->bearer_token);
    }
    if (n->secret) {
        memset(n->secret, 0, n->secret_len);
        free(n->secret);
    }
    free(n->idem_header);
    free(n);
}

static int dup_opt(const char *s, char **out)
{
    *out = NULL;
    if (!s)
        return 0;
    *out = strdup(s);
    return *out ? 0 : RG_ENOMEM;
}

int rg_dispatch_new(uv_loop_t *loop, struct rg_curl_uv *cu, const struct rg_dispatch_config *cfg,
                    struct rg_dispatch **out)
{
    struct rg_dispatch *d;
    struct rg_outbox_config ocfg;
    uint64_t seed;
    int err;

    *out = NULL;
    if (!loop || !cu || !cfg)
        return RG_EINVAL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return RG_ENOMEM;
    d->loop = loop;
    d->cu = cu;
    d->metrics = cfg->metrics;
    d->sync_ms = cfg->sync_interval_ms ? cfg->sync_interval_ms : DEFAULT_SYNC_MS;
    seed = cfg->seed ? cfg->seed : rg_mono_ns() ^ ((uint64_t)getpid() << 32);
    rg_retry_rng_seed(&d->rng, seed);
    err = register_metrics(d);
    if (err)
        goto fail_alloc;
    ocfg = cfg->outbox;
    ocfg.on_drop = on_drop;
    ocfg.on_drop_ud = d;
    err = rg_outbox_open(&ocfg, rg_now_ms(), &d->ob);
    if (err)
        goto fail_alloc;
    uv_timer_init(loop, &d->pump_timer);
    uv_timer_init(loop, &d->sync_timer);
    d->pump_timer.data = d;
    d->sync_timer.data = d;
    d->handles = 2;
    *out = d;
    return 0;

fail_alloc:
    free(d);
    return err;
}

int rg_dispatch_add_notifier(struct rg_dispatch *d, const struct rg_dispatch_notifier *nc)
{
    struct notifier *n, **nv;
    int err = 0;

    if (!nc || !nc->name || !nc->name[0] || !nc->url || !nc->url[0])
        return RG_EINVAL;
    if (find(d, nc->name))
        return RG_EEXIST;
    if (nc->nheaders > MAX_EXTRA_HEADERS || (nc->nheaders && !nc->headers))
        return RG_EINVAL;
    if (nc->signing_secret && !nc->signing_secret_len)
        return RG_EINVAL;
    n = calloc(1, sizeof(*n));
    if (!n)
        return RG_ENOMEM;
    n->retry = nc->retry;
    if (!n->retry.min_backoff_ms && !n->retry.max_backoff_ms && !n->retry.max_age_ms &&
        n->retry.multiplier == 0.0)
        rg_retry_policy_default(&n->retry);
    if (rg_retry_policy_validate(&n->retry)) {
        err = RG_EINVAL;
        goto fail_notifier;
    }
    n->timeout_ms = nc->timeout_ms ? nc->timeout_ms : DEFAULT_TIMEOUT_MS;
    n->max_response = nc->max_response_bytes ? nc->max_response_bytes : DEFAULT_MAX_RESPONSE;
    n->max_in_flight = nc->max_in_flight ? nc->max_in_flight : DEFAULT_IN_FLIGHT;
    n->probe_max_ms = nc->probe_max_ms > 0 ? nc->probe_max_ms : DEFAULT_PROBE_MAX_MS;
    n->insecure = nc->tls.insecure_skip_verify;
    err |= dup_opt(nc->name, &n->name);
    err |= dup_opt(nc->url, &n->url);
    err |= dup_opt(nc->method ? nc->method : "POST", &n->method);
    err |= dup_opt(nc->tls.ca_file, &n->ca_file);
    err |= dup_opt(nc->tls.cert_file, &n->cert_file);
    err |= dup_opt(nc->tls.key_file, &n->key_file);
    err |= dup_opt(nc->tls.server_name, &n->server_name);
    err |= dup_opt(nc->basic_user, &n->basic_user);
    err |= dup_opt(nc->basic_password, &n->basic_password);
    err |= dup_opt(nc->bearer_token, &n->bearer_token);
    err |= dup_opt(nc->idempotency_header ? nc->idempotency_header : "Idempotency-Key",
                   &n->idem_header);
    if (err) {
        err = RG_ENOMEM;
        goto fail_notifier;
    }
    if (nc->signing_secret) {
        n->secret = malloc(nc->signing_secret_len);
        if (!n->secret) {
            err = RG_ENOMEM;
            goto fail_notifier;
        }
        memcpy(n->secret, nc->signing_secret, nc->signing_secret_len);
        n->secret_len = nc->signing_secret_len;
    }
    if (nc->nheaders) {
        n->headers = calloc(nc->nheaders, sizeof(*n->headers));
        if (!n->headers) {
            err = RG_ENOMEM;
            goto fail_notifier;
        }
        for (size_t i = 0; i < nc->nheaders; i++, n->nheaders++) {
            if (!nc->headers[i] || strpbrk(nc->headers[i], "\r\n") ||
                !strchr(nc->headers[i], ':')) {
                err = RG_EINVAL;
                goto fail_notifier;
            }
            if (!(n->headers[i] = strdup(nc->headers[i]))) {
                err = RG_ENOMEM;
                goto fail_notifier;
            }
        }
    }
    if (d->metrics) {
        for (int o = 0; o < NOUTCOMES; o++) {
            const char *lv[2] = { n->name, outcome_names[o] };
            n->m_outcome[o] = rg_metrics_child(d->f_total, lv);
        }
        /* Every label combination exists from the start, so rate() and absent() work
         * before the first drop. */
        for (int r = 0; r < RG_OUTBOX_DROP__COUNT; r++) {
            const char *lv[2] = { n->name, rg_outbox_drop_name((enum rg_outbox_drop)r) };
            if (!rg_metrics_child(d->f_dropped, lv)) {
                err = RG_ENOMEM;
                goto fail_notifier;
            }
        }
        n->m_queue = rg_metrics_child(d->f_queue, (const char *const[]){ n->name });
        n->m_latency = rg_metrics_child(d->f_latency, (const char *const[]){ n->name });
        if (!n->m_queue || !n->m_latency) {
            err = RG_ENOMEM;
            goto fail_notifier;
        }
    }
    nv = realloc(d->notifiers, (d->nnotifiers + 1) * sizeof(*nv));
    if (!nv) {
        err = RG_ENOMEM;
        goto fail_notifier;
    }
    d->notifiers = nv;
    d->notifiers[d->nnotifiers++] = n;
    update_queue_gauge(d, n);
    kick(d);
    return 0;

fail_notifier:
    notifier_free(n);
    return err;
}

int rg_dispatch_start(struct rg_dispatch *d)
{
    size_t nq = rg_outbox_notifier_count(d->ob);

    for (size_t i = 0; i < nq; i++) {
        const char *name = rg_outbox_notifier_name(d->ob, i);
        if (!find(d, name)) {
            size_t n = rg_outbox_drop_notifier(d->ob, name, RG_OUTBOX_DROP_NO_NOTIFIER);
            if (n)
                rg_warn("event=notifications_orphaned notifier=%s dropped=%zu", name, n);
        }
    }
    rg_outbox_sync(d->ob);
    d->started = 1;
    kick(d);
    return 0;
}

/* Signature lines must not be stored. When some entry of @entries has one, *@copy
 * receives a copy of all @n entries whose header lists leave them out (the lists live
 * in *@lines); otherwise both stay NULL and @entries is stored as it is. The caller
 * frees both. Returns 0 or RG_ENOMEM. */
static int strip_sig_headers(const struct rg_outbox_entry *entries, size_t n,
                             struct rg_outbox_entry **copy, const char ***lines)
{
    size_t total = 0, used = 0;
    int any = 0;

    *copy = NULL;
    *lines = NULL;
    for (size_t i = 0; i < n; i++) {
        total += entries[i].nheaders;
        for (size_t j = 0; j < entries[i].nheaders; j++)
            any |= is_sig_header(entries[i].headers[j]);
    }
    if (!any)
        return 0;
    *copy = malloc(n * sizeof(**copy));
    *lines = malloc(total * sizeof(**lines));
    if (!*copy || !*lines) {
        free(*copy);
        free(*lines);
        *copy = NULL;
        *lines = NULL;
        return RG_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;

        (*copy)[i] = entries[i];
        for (size_t j = 0; j < entries[i].nheaders; j++)
            if (!is_sig_header(entries[i].headers[j]))
                (*lines)[used + k++] = entries[i].headers[j];
        (*copy)[i].headers = k ? &(*lines)[used] : NULL;
        (*copy)[i].nheaders = k;
        used += k;
    }
    return 0;
}

int rg_dispatch_emit_batch(struct rg_dispatch *d, struct rg_outbox_entry *entries, size_t n,
                           uint64_t *ids_out)
{
    int64_t now = rg_now_ms();
    struct rg_outbox_entry *copy;
    const char **lines;
    int err;

    if (d->closing)
        return RG_ECANCELED;
    for (size_t i = 0; i < n; i++) {
        if (!entries[i].notifier || !find(d, entries[i].notifier))
            return RG_ENOENT;
        if (entries[i].nheaders && !entries[i].headers)
            return RG_EINVAL;
        for (size_t j = 0; j < entries[i].nheaders; j++)
            if (!entries[i].headers[j])
                return RG_EINVAL;
        entries[i].created_ms = now;
    }
    if ((err = strip_sig_headers(entries, n, &copy, &lines)))
        return err;
    err = rg_outbox_append_batch(d->ob, copy ? copy : entries, n, ids_out);
    free(copy);
    free(lines);
    if (err)
        return err;
    for (size_t i = 0; i < n; i++) {
        struct notifier *nt = find(d, entries[i].notifier);
        if (i == 0 || strcmp(entries[i].notifier, entries[i - 1].notifier))
            update_queue_gauge(d, nt);
    }
    kick(d);
    return 0;
}

int rg_dispatch_emit(struct rg_dispatch *d, const char *notifier, const char *dedup_key,
                     const char *content_type, const char *const *headers, size_t nheaders,
                     const void *body, size_t len)
{
    struct rg_outbox_entry e = {
        .notifier = notifier, .dedup_key = dedup_key, .content_type = content_type,
        .headers = headers, .nheaders = nheaders, .payload = body, .payload_len = len,
    };

    return rg_dispatch_emit_batch(d, &e, 1, NULL);
}

void rg_dispatch_on_result(struct rg_dispatch *d,
                           void (*cb)(const struct rg_dispatch_result *r, void *ud), void *ud)
{
    d->on_result = cb;
    d->on_result_ud = ud;
}

void rg_dispatch_stats(const struct rg_dispatch *d, const char *notifier,
                       struct rg_dispatch_stats *out)
{
    const struct notifier *n = find(d, notifier);

    if (n)
        *out = n->st;
    else
        memset(out, 0, sizeof(*out));
}

struct rg_outbox *rg_dispatch_outbox(struct rg_dispatch *d)
{
    return d->ob;
}

static void timer_closed(uv_handle_t *h)
{
    struct rg_dispatch *d = h->data;
    void (*cb)(void *);
    void *ud;

    if (--d->handles > 0)
        return;
    rg_outbox_close(d->ob);
    for (size_t i = 0; i < d->nnotifiers; i++)
        notifier_free(d->notifiers[i]);
    free(d->notifiers);
    cb = d->on_closed;
    ud = d->on_closed_ud;
    free(d);
    if (cb)
        cb(ud);
}

void rg_dispatch_close(struct rg_dispatch *d, void (*on_closed)(void *ud), void *ud)
{
    if (!d || d->closing)
        return;
    d->closing = 1;
    d->on_closed = on_closed;
    d->on_closed_ud = ud;
    uv_timer_stop(&d->pump_timer);
    uv_timer_stop(&d->sync_timer);
    while (d->attempts)
        rg_curl_uv_cancel(d->cu, d->attempts->req);
    uv_close((uv_handle_t *)&d->pump_timer, timer_closed);
    uv_close((uv_handle_t *)&d->sync_timer, timer_closed);
}
