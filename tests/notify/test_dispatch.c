/* tests/notify/test_dispatch.c - delivery end to end: outbox + retry policy + curl_uv
 * against the scriptable local receiver (tests/notify/receiver.h).
 *
 * The receiver fails in every way the policy must survive (connection refused, 500,
 * 429 with Retry-After, an answer slower than the timeout) and then succeeds; the
 * cases check that each event arrives with its idempotency key, that attempts are
 * spaced as the policy says, that 400 is not retried, that expiry and bounds drop and
 * count, that a restart resends what was not acknowledged, that a signature line is
 * never stored in the outbox and the signing secret never reaches it nor the logs
 * (the signatures themselves are checked end to end in test_notifier.c), and that a
 * backlog of thousands of events is delivered quickly once the receiver returns.
 * Every case ends with uv_loop_close() == 0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "notify/dispatch.h"
#include "util/err.h"
#include "util/file.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/time.h"

#include "receiver.h"

#define MAX_RESULTS 64

struct rec {
    char notifier[32];
    char key[32];
    enum rg_dispatch_outcome outcome;
    int status;
    int err;
    uint32_t attempt;
    int64_t at_ms;                     /* monotonic */
};

struct fx {
    char dir[256];
    char path[300];
    uv_loop_t loop;
    struct receiver rv;
    struct rg_curl_uv *cu;
    struct rg_dispatch *d;
    struct rg_metrics *m;
    uv_timer_t guard, poll, later;
    int guard_fired;
    int closed;                        /* dispatcher closed */
    int cu_closed;
    struct rec res[MAX_RESULTS];
    size_t nres;
    /* The case is done when this returns true (checked every 10 ms). */
    int (*done)(struct fx *f);
    void (*later_fn)(struct fx *f);
    size_t want_acked;
    int64_t t_start;
    int64_t t_done;
    int refused;                       /* attempts refused by a closed port */
};

static void on_result(const struct rg_dispatch_result *r, void *ud)
{
    struct fx *f = ud;
    struct rec *x;

    if (r->err == -ECONNREFUSED)
        f->refused++;
    if (f->nres >= MAX_RESULTS)
        return;
    x = &f->res[f->nres++];
    snprintf(x->notifier, sizeof(x->notifier), "%s", r->notifier);
    snprintf(x->key, sizeof(x->key), "%s", r->dedup_key);
    x->outcome = r->outcome;
    x->status = r->status;
    x->err = r->err;
    x->attempt = r->attempt;
    x->at_ms = rg_mono_ms();
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");

    snprintf(f->dir, sizeof(f->dir), "%s/rg-dispatch-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/notify.outbox", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char p[400];

    unlink(f->path);
    snprintf(p, sizeof(p), "%s.compact", f->path);
    unlink(p);
    rmdir(f->dir);
    rcv_free(&f->rv);
    rg_metrics_free(f->m);
    free(f);
    return 0;
}

static void on_d_closed(void *ud)
{
    struct fx *f = ud;
    f->closed++;
    rg_curl_uv_close(f->cu, NULL, NULL);
    f->cu = NULL;
    f->cu_closed++;
}

static void finish(struct fx *f)
{
    uv_timer_stop(&f->guard);
    uv_timer_stop(&f->poll);
    uv_timer_stop(&f->later);
    uv_close((uv_handle_t *)&f->guard, NULL);
    uv_close((uv_handle_t *)&f->poll, NULL);
    uv_close((uv_handle_t *)&f->later, NULL);
    rg_dispatch_close(f->d, on_d_closed, f);
    f->d = NULL;
    rcv_cleanup(&f->rv);
}

static void on_guard(uv_timer_t *t)
{
    struct fx *f = t->data;
    f->guard_fired = 1;
    finish(f);
}

static void on_poll_done(uv_timer_t *t)
{
    struct fx *f = t->data;
    if (f->done && f->done(f)) {
        f->t_done = rg_mono_ms();
        finish(f);
    }
}

static void on_later(uv_timer_t *t)
{
    struct fx *f = t->data;
    if (f->later_fn)
        f->later_fn(f);
}

/* Starts loop, client, dispatcher (not yet started) and timers; the receiver is left
 * to the case. @max_events bounds the outbox (0 = default). */
static void fx_begin(struct fx *f, int guard_ms, size_t max_events)
{
    struct rg_dispatch_config cfg;

    f->nres = 0;
    f->refused = 0;
    f->closed = f->cu_closed = f->guard_fired = 0;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->rv.loop = &f->loop;
    assert_int_equal(rg_curl_uv_new(&f->loop, &f->cu), 0);
    rg_metrics_free(f->m);
    f->m = rg_metrics_new();
    memset(&cfg, 0, sizeof(cfg));
    rg_outbox_config_default(&cfg.outbox);
    cfg.outbox.path = f->path;
    if (max_events)
        cfg.outbox.max_events = max_events;
    cfg.metrics = f->m;
    cfg.seed = 12345;
    cfg.sync_interval_ms = 20;
    assert_int_equal(rg_dispatch_new(&f->loop, f->cu, &cfg, &f->d), 0);
    rg_dispatch_on_result(f->d, on_result, f);
    uv_timer_init(&f->loop, &f->guard);
    uv_timer_init(&f->loop, &f->poll);
    uv_timer_init(&f->loop, &f->later);
    f->guard.data = f->poll.data = f->later.data = f;
    uv_timer_start(&f->guard, on_guard, (uint64_t)guard_ms, 0);
    uv_timer_start(&f->poll, on_poll_done, 10, 10);
}

static void fx_end(struct fx *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(f->closed, 1);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void add_notifier(struct fx *f, const char *name, const char *path, int64_t min_ms,
                         int64_t max_ms, int64_t max_age_ms, uint64_t timeout_ms)
{
    struct rg_dispatch_notifier n;
    char url[256];

    memset(&n, 0, sizeof(n));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", f->rv.port, path);
    n.name = name;
    n.url = url;
    n.timeout_ms = timeout_ms;
    n.bearer_token = "s3cret-token";
    rg_retry_policy_default(&n.retry);
    n.retry.min_backoff_ms = min_ms;
    n.retry.max_backoff_ms = max_ms;
    n.retry.jitter = RG_RETRY_JITTER_NONE;
    if (max_age_ms)
        n.retry.max_age_ms = max_age_ms;
    assert_int_equal(rg_dispatch_add_notifier(f->d, &n), 0);
}

/* A port that refuses connections now and can be listened on later: the receiver is
 * started once for an ephemeral port and stopped again. */
static void reserve_port(struct fx *f)
{
    assert_int_equal(rcv_start(&f->rv, &f->loop), 0);
    rcv_stop(&f->rv);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* ---- the failure sequence ---------------------------------------------------------------- */

static int seq_done(struct fx *f)
{
    struct rg_dispatch_stats a, r;
    rg_dispatch_stats(f->d, "hook", &a);
    rg_dispatch_stats(f->d, "reject", &r);
    return a.acked == 1 && r.dropped[RG_OUTBOX_DROP_REJECTED] == 1;
}

static void seq_bring_up(struct fx *f)
{
    assert_int_equal(rcv_start(&f->rv, &f->loop), 0);
}

static void test_dispatch__failures_then_success(void **state)
{
    struct fx *f = *state;
    const char *hdr[] = { "X-Rollgate-Signature: t=1,v1=00" };
    int64_t gap[3];
    size_t nscript = 0;
    (void)state;

    fx_begin(f, 9000, 0);
    reserve_port(f);
    /* Policy: 100 ms doubling, at most 1500 ms, no jitter; 300 ms per attempt. */
    add_notifier(f, "hook", "/script", 100, 1500, 0, 300);
    add_notifier(f, "reject", "/status?code=400", 100, 1500, 0, 300);
    f->rv.script[nscript++] = (struct rcv_step){ 500, NULL, 0 };
    f->rv.script[nscript++] = (struct rcv_step){ 429, "1", 0 };
    f->rv.script[nscript++] = (struct rcv_step){ 200, NULL, 1000 };   /* past the timeout */
    f->rv.nscript = nscript;
    f->done = seq_done;
    assert_int_equal(rg_dispatch_start(f->d), 0);
    assert_int_equal(rg_dispatch_emit(f->d, "hook", "evt-A", "application/json", hdr, 1,
                                      "{\"a\":1}", 7), 0);
    assert_int_equal(rg_dispatch_emit(f->d, "nobody", "x", NULL, NULL, 0, "", 0), RG_ENOENT);
    /* The receiver comes up after the first (refused) attempt, before the second. */
    f->later_fn = seq_bring_up;
    uv_timer_start(&f->later, on_later, 50, 0);
    /* The 400 notifier only after the receiver is up. */
    while (!f->rv.running && !f->guard_fired)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(rg_dispatch_emit(f->d, "reject", "evt-B", "application/json", NULL, 0,
                                      "{}", 2), 0);
    fx_end(f);
    assert_false(f->guard_fired);

    /* Attempts of evt-A: refused, 500, 429, timeout, 200. */
    {
        static const struct { enum rg_dispatch_outcome o; int status; int err; } want[] = {
            { RG_DISPATCH_RETRY, 0, -ECONNREFUSED },
            { RG_DISPATCH_RETRY, 500, 0 },
            { RG_DISPATCH_RETRY, 429, 0 },
            { RG_DISPATCH_RETRY, 0, RG_ETIMEDOUT },
            { RG_DISPATCH_SUCCESS, 200, 0 },
        };
        size_t k = 0;
        for (size_t i = 0; i < f->nres; i++) {
            if (strcmp(f->res[i].notifier, "hook"))
                continue;
            assert_true(k < 5);
            if (f->res[i].outcome != want[k].o || f->res[i].status != want[k].status ||
                f->res[i].err != want[k].err)
                fail_msg("attempt %zu: outcome %d status %d err %d", k, f->res[i].outcome,
                         f->res[i].status, f->res[i].err);
            assert_int_equal(f->res[i].attempt, k + 1);
            assert_string_equal(f->res[i].key, "evt-A");
            k++;
        }
        assert_int_equal(k, 5);
    }
    /* The receiver saw four requests for evt-A (the refused one never arrived), each
     * with the idempotency key; the 400 was sent once and never retried. */
    {
        int64_t at[4];
        size_t k = 0, n400 = 0;
        for (size_t i = 0; i < f->rv.nhits; i++) {
            struct rcv_hit *h = &f->rv.hits[i];
            if (!strcmp(h->path, "/script")) {
                assert_string_equal(h->key, "evt-A");
                if (k < 4)
                    at[k] = h->at_ms;
                k++;
            } else if (!strcmp(h->path, "/status")) {
                assert_string_equal(h->key, "evt-B");
                n400++;
            }
        }
        assert_int_equal(k, 4);
        assert_int_equal(n400, 1);
        for (int i = 0; i < 3; i++)
            gap[i] = at[i + 1] - at[i];
    }
    /* Spacing per policy: after the 500 (2nd failure) 200 ms; after the 429 the
     * Retry-After of 1 s; after the timeout (300 ms) the 4th backoff, 800 ms. */
    if (gap[0] < 190 || gap[0] > 600)
        fail_msg("gap after 500: %lld ms", (long long)gap[0]);
    if (gap[1] < 990 || gap[1] > 1500)
        fail_msg("gap after 429: %lld ms", (long long)gap[1]);
    if (gap[2] < 1090 || gap[2] > 1700)
        fail_msg("gap after timeout: %lld ms", (long long)gap[2]);
}

/* ---- metrics, expiry, bound ------------------------------------------------------------- */

static int drops_done(struct fx *f)
{
    struct rg_dispatch_stats st;
    rg_dispatch_stats(f->d, "hook", &st);
    return st.dropped[RG_OUTBOX_DROP_EXPIRED] == 3;
}

static void test_dispatch__expiry_bound_metrics(void **state)
{
    struct fx *f = *state;
    struct rg_dispatch_stats st;
    struct rg_buf mt = { 0 };
    const char *text;

    fx_begin(f, 5000, 3);
    reserve_port(f);
    /* Receiver down for good; events expire after 300 ms. */
    add_notifier(f, "hook", "/ok", 50, 100, 300, 200);
    assert_int_equal(rg_dispatch_start(f->d), 0);
    for (int i = 0; i < 5; i++) {
        char key[16];
        snprintf(key, sizeof(key), "e%d", i);
        assert_int_equal(rg_dispatch_emit(f->d, "hook", key, NULL, NULL, 0, "x", 1), 0);
    }
    rg_dispatch_stats(f->d, "hook", &st);
    assert_int_equal(st.dropped[RG_OUTBOX_DROP_FULL], 2);
    assert_int_equal(st.pending, 3);
    f->done = drops_done;
    fx_end(f);
    assert_false(f->guard_fired);
    rg_metrics_render(f->m, &mt);
    text = mt.data;
    assert_non_null(strstr(text, "rollgate_notifications_dropped_total{notifier=\"hook\","
                                 "reason=\"outbox_full\"} 2\n"));
    assert_non_null(strstr(text, "rollgate_notifications_dropped_total{notifier=\"hook\","
                                 "reason=\"expired\"} 3\n"));
    assert_non_null(strstr(text, "rollgate_notification_queue_length{notifier=\"hook\"} 0\n"));
    assert_non_null(strstr(text, "rollgate_notifications_total{notifier=\"hook\","
                                 "outcome=\"success\"} 0\n"));
    assert_non_null(strstr(text, "rollgate_notifications_total{notifier=\"hook\","
                                 "outcome=\"retry\"}"));
    assert_null(strstr(text, "s3cret"));
    rg_buf_cleanup(&mt);
}

/* ---- restart: the outbox resends ----------------------------------------------------------- */

static int three_acked(struct fx *f)
{
    struct rg_dispatch_stats st;
    rg_dispatch_stats(f->d, "hook", &st);
    return st.acked == 3;
}

static int never(struct fx *f)
{
    (void)f;
    return 0;
}

static void stop_now(struct fx *f)
{
    finish(f);
}

static void test_dispatch__restart_resends(void **state)
{
    struct fx *f = *state;
    struct rg_buf mt = { 0 };

    /* Run 1: receiver down; three events emitted, then the process goes away. */
    fx_begin(f, 5000, 0);
    reserve_port(f);
    add_notifier(f, "hook", "/ok", 50, 100, 0, 200);
    add_notifier(f, "gone", "/ok", 50, 100, 0, 200);
    assert_int_equal(rg_dispatch_start(f->d), 0);
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof(key), "r%d", i);
        assert_int_equal(rg_dispatch_emit(f->d, "hook", key, NULL, NULL, 0, "{}", 2), 0);
    }
    assert_int_equal(rg_dispatch_emit(f->d, "gone", "g", NULL, NULL, 0, "{}", 2), 0);
    f->done = never;
    f->later_fn = stop_now;
    uv_timer_start(&f->later, on_later, 150, 0);
    fx_end(f);

    /* Run 2: the receiver is up on the same port; "gone" is no longer configured. */
    fx_begin(f, 5000, 0);
    assert_int_equal(rcv_start(&f->rv, &f->loop), 0);
    add_notifier(f, "hook", "/ok", 50, 100, 0, 200);
    {
        struct rg_outbox_stats os;
        rg_outbox_stats(rg_dispatch_outbox(f->d), &os);
        assert_int_equal(os.replayed, 4);
    }
    assert_int_equal(rg_dispatch_start(f->d), 0);
    f->done = three_acked;
    fx_end(f);
    assert_false(f->guard_fired);
    {
        size_t seen = 0;
        for (size_t i = 0; i < f->rv.nhits; i++) {
            const char *k = f->rv.hits[i].key;
            if (!strcmp(k, "r0") || !strcmp(k, "r1") || !strcmp(k, "r2"))
                seen++;
            assert_string_not_equal(k, "g");
        }
        assert_int_equal(seen, 3);
    }
    rg_metrics_render(f->m, &mt);
    assert_non_null(strstr(mt.data, "rollgate_notifications_dropped_total{notifier=\"gone\","
                                    "reason=\"no_notifier\"} 1\n"));
    assert_non_null(strstr(mt.data, "rollgate_notification_latency_seconds_count"
                                    "{notifier=\"hook\"} 3\n"));
    rg_buf_cleanup(&mt);
}

/* ---- secrets stay out of logs and metrics --------------------------------------------- */

static int secrets_done(struct fx *f)
{
    struct rg_dispatch_stats a, b;
    rg_dispatch_stats(f->d, "basic", &a);
    rg_dispatch_stats(f->d, "bearer", &b);
    return a.dropped[RG_OUTBOX_DROP_REJECTED] == 1 && b.attempts[RG_DISPATCH_RETRY] >= 1;
}

static void test_dispatch__secrets_never_logged(void **state)
{
    struct fx *f = *state;
    struct rg_dispatch_notifier n;
    struct rg_buf mt = { 0 }, logs = { 0 };
    char url[256], logpath[320];
    int saved, fd;

    snprintf(logpath, sizeof(logpath), "%s/stderr.log", f->dir);
    fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
    rg_log_set_level(RG_LOG_DEBUG);

    fx_begin(f, 5000, 0);
    assert_int_equal(rcv_start(&f->rv, &f->loop), 0);
    memset(&n, 0, sizeof(n));
    n.name = "basic";
    snprintf(url, sizeof(url),
             "http://user:url-SECRET-1@127.0.0.1:%d/status?code=400&key=query-SECRET-2",
             f->rv.port);
    n.url = url;
    n.basic_user = "user";
    n.basic_password = "password-SECRET-3";
    assert_int_equal(rg_dispatch_add_notifier(f->d, &n), 0);
    n.name = "bearer";
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/status?code=503&key=query-SECRET-4",
             f->rv.port);
    n.url = url;
    n.basic_user = n.basic_password = NULL;
    n.bearer_token = "token-SECRET-5";
    n.signing_secret = "sign-SECRET-6";
    n.signing_secret_len = strlen("sign-SECRET-6");
    rg_retry_policy_default(&n.retry);
    n.retry.min_backoff_ms = 50;
    assert_int_equal(rg_dispatch_add_notifier(f->d, &n), 0);
    assert_int_equal(rg_dispatch_start(f->d), 0);
    assert_int_equal(rg_dispatch_emit(f->d, "basic", "k1", NULL, NULL, 0, "{}", 2), 0);
    assert_int_equal(rg_dispatch_emit(f->d, "bearer", "k2", NULL, NULL, 0, "{}", 2), 0);
    f->done = secrets_done;
    fx_end(f);

    rg_log_set_level(RG_LOG_INFO);
    dup2(saved, STDERR_FILENO);
    close(saved);
    assert_false(f->guard_fired);
    assert_int_equal(rg_file_read(logpath, 1 << 20, &logs), 0);
    unlink(logpath);
    rg_metrics_render(f->m, &mt);
    /* The logs did record the failures, only without the secrets. */
    assert_non_null(strstr(logs.data, "event=notification_rejected notifier=basic"));
    assert_non_null(strstr(logs.data, "event=notifier_failing notifier=bearer"));
    assert_non_null(strstr(logs.data, "event=http_done"));
    assert_null(strstr(logs.data, "SECRET"));
    assert_null(strstr(mt.data, "SECRET"));
    rg_buf_cleanup(&logs);
    rg_buf_cleanup(&mt);
}

/* ---- signatures are made per attempt and never stored ---------------------------------- */

#define SIGN_SECRET "dispatch-SIGNING-key-77"

static int one_retry(struct fx *f)
{
    struct rg_dispatch_stats st;
    rg_dispatch_stats(f->d, "signed", &st);
    return st.attempts[RG_DISPATCH_RETRY] >= 1;
}

/* Whether the file at @path holds the bytes of @what. */
static int file_holds(const char *path, const char *what)
{
    struct rg_buf b = { 0 };
    int found;

    assert_int_equal(rg_file_read(path, 1 << 24, &b), 0);
    found = b.len && memmem(b.data, b.len, what, strlen(what)) != NULL;
    rg_buf_cleanup(&b);
    return found;
}

static void test_dispatch__signature_not_stored(void **state)
{
    struct fx *f = *state;
    struct rg_dispatch_notifier n;
    const char *hdr[] = { "x-rollgate-signature: t=1,v1=00", "X-Other: kept" };
    char url[256];
    (void)state;

    fx_begin(f, 5000, 0);
    reserve_port(f);
    memset(&n, 0, sizeof(n));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", f->rv.port);
    n.name = "signed";
    n.url = url;
    n.signing_secret = SIGN_SECRET;
    n.signing_secret_len = 0;
    /* A secret of no bytes cannot sign. */
    assert_int_equal(rg_dispatch_add_notifier(f->d, &n), RG_EINVAL);
    n.signing_secret_len = strlen(SIGN_SECRET);
    rg_retry_policy_default(&n.retry);
    n.retry.min_backoff_ms = 50;
    assert_int_equal(rg_dispatch_add_notifier(f->d, &n), 0);
    assert_int_equal(rg_dispatch_start(f->d), 0);
    assert_int_equal(rg_dispatch_emit(f->d, "signed", "sig-1", NULL, hdr, 2, "{\"s\":1}", 7), 0);
    /* The event is durable with its other header, without the signature line. */
    assert_true(file_holds(f->path, "X-Other: kept"));
    assert_true(file_holds(f->path, "sig-1"));
    assert_false(file_holds(f->path, "x-rollgate-signature"));
    assert_false(file_holds(f->path, "t=1,v1=00"));
    f->done = one_retry;
    fx_end(f);
    assert_false(f->guard_fired);
    /* Attempts were made (and refused); the secret was never written to the file. */
    assert_true(f->refused >= 1);
    assert_false(file_holds(f->path, SIGN_SECRET));
}

/* ---- backlog throughput ------------------------------------------------------------------ */

#define BACKLOG 10000

static int backlog_done(struct fx *f)
{
    struct rg_dispatch_stats st;
    rg_dispatch_stats(f->d, "hook", &st);
    return st.acked == BACKLOG;
}

static void backlog_up(struct fx *f)
{
    assert_int_equal(rcv_start(&f->rv, &f->loop), 0);
    f->t_start = rg_mono_ms();
}

static void test_dispatch__backlog_after_outage(void **state)
{
    struct fx *f = *state;
    struct rg_outbox_entry *es = calloc(BACKLOG, sizeof(*es));
    char (*keys)[16] = calloc(BACKLOG, 16);
    const char *body = "{\"receiver\":\"hook\",\"status\":\"firing\",\"alerts\":[{\"labels\":"
                       "{\"alertname\":\"HighErrorRate\",\"service\":\"checkout\"}}]}";
    int64_t t0, t_append;
    double secs;

    fx_begin(f, 9500, 0);
    reserve_port(f);
    /* Production-like policy (500 ms .. 30 s would make a test slow): 100 ms .. 1 s. */
    add_notifier(f, "hook", "/ok", 100, 1000, 0, 1000);
    assert_int_equal(rg_dispatch_start(f->d), 0);
    for (int i = 0; i < BACKLOG; i++) {
        snprintf(keys[i], 16, "b%d", i);
        es[i] = (struct rg_outbox_entry){ .notifier = "hook", .dedup_key = keys[i],
                                          .content_type = "application/json",
                                          .payload = body, .payload_len = strlen(body) };
    }
    t0 = rg_mono_ms();
    assert_int_equal(rg_dispatch_emit_batch(f->d, es, BACKLOG, NULL), 0);
    t_append = rg_mono_ms() - t0;
    f->done = backlog_done;
    f->later_fn = backlog_up;
    uv_timer_start(&f->later, on_later, 1500, 0);   /* outage of 1.5 s */
    fx_end(f);
    assert_false(f->guard_fired);
    secs = (double)(f->t_done - f->t_start) / 1000.0;
    print_message("backlog: %d events appended in %lld ms (one fsync); delivered %.2f s after "
                  "the receiver returned; %zu requests received, %d refused attempts during "
                  "the outage\n", BACKLOG, (long long)t_append, secs, f->rv.nhits,
                  f->refused);
    assert_true(secs < 5.0);
    assert_true(f->rv.ok >= BACKLOG);
    free(es);
    free(keys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dispatch__failures_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch__expiry_bound_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch__restart_resends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch__secrets_never_logged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch__signature_not_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch__backlog_after_outage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
