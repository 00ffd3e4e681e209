/* tests/notify/test_notifier.c - the `notifiers:` configuration and the facade, end to end.
 *
 * Configuration cases are table-driven: valid files with their effective settings and
 * a golden dump, and broken files with the exact "file:line:col: message" lines
 * (missing secret files included). The facade cases run a real loop with a recording
 * HTTP receiver on 127.0.0.1 (src/http/server.h): alerts fan out to two Alertmanagers
 * with Prometheus' exact body, a webhook event arrives signed and with its idempotency
 * key, a retry and a resend after a restart are signed with the time they are sent
 * (an outbox record of an older version with a stored signature included), filters
 * route only matching inputs, notify-test reports each notifier's outcome, and no
 * secret reaches the logs, the metrics, the dump or the outbox file. Every case ends
 * with uv_loop_close() == 0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "http/server.h"
#include "notify/notifier.h"
#include "notify/outbox.h"
#include "notify/payload.h"
#include "notify/sign.h"
#include "rules/deploy.h"
#include "rules/manager.h"
#include "util/err.h"
#include "util/file.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/time.h"

#include "receiver.h"

#define DATA "tests/data/notify/config/"
#define MAX_HITS 256

static const char *const secrets[] = {
    "bearer-TOKEN-aa11", "pass-WORD-bb22", "sign-SECRET-cc33",
    "routingKEYdd44ee55ff66001122334455",
};

/* ---- configuration ------------------------------------------------------------------------ */

static int load(const char *name, const char *text, struct rg_config *c,
                struct rg_notify_config *nc, struct rg_buf *err)
{
    rg_config_default(c);
    assert_int_equal(rg_config_load_text(name, text, strlen(text), c, err), 0);
    return rg_notify_config_parse(c, nc, err);
}

static void test_notifier__config_file(void **state)
{
    struct rg_config c;
    struct rg_notify_config nc;
    struct rg_buf err = { 0 }, dump = { 0 }, want = { 0 };
    const struct rg_notifier_config *v;
    (void)state;

    rg_config_default(&c);
    assert_int_equal(rg_config_load_file(DATA "notifiers.yml", &c, &err), 0);
    assert_int_equal(rg_notify_config_parse(&c, &nc, &err), 0);
    assert_int_equal(err.len, 0);
    assert_int_equal(nc.n, 5);
    v = nc.v;

    /* Alertmanager: POST <url>/api/v2/alerts, one request at a time, retry for the
     * alerts' validity window, alerts only. */
    assert_string_equal(v[0].name, "am-eu");
    assert_int_equal(v[0].type, RG_NOTIFIER_ALERTMANAGER);
    assert_string_equal(v[0].send_url, "http://am-eu.example:9093/api/v2/alerts");
    assert_int_equal(v[0].resend_delay_ms, 120000);
    assert_int_equal(v[0].retry.max_age_ms, 480000);
    assert_int_equal(v[0].max_in_flight, 1);
    assert_int_equal(v[0].timeout_ms, 10000);
    assert_true(v[0].filter.alerts);
    assert_false(v[0].filter.deployments);
    assert_int_equal(v[1].filter.nmatch, 2);
    assert_string_equal(v[1].bearer_token.data, "bearer-TOKEN-aa11");
    assert_string_equal(v[1].server_name, "am.internal");
    assert_string_equal(v[1].ca_file, DATA "bearer_token");

    /* Webhook: filters, secrets, headers sorted by name. */
    assert_string_equal(v[2].send_url, "https://hooks.example/rollgate");
    assert_false(v[2].filter.alerts);
    assert_true(v[2].filter.deployments);
    assert_int_equal(v[2].filter.nnames, 2);
    assert_int_equal(v[2].filter.kinds, (1u << RG_NOTIFY_EVENT_ROLLBACK) |
                                            (1u << RG_NOTIFY_EVENT_HUMAN_TRIGGER) |
                                            (1u << RG_NOTIFY_EVENT_PROMOTE));
    assert_string_equal(v[2].basic_user, "rollgate");
    assert_string_equal(v[2].basic_password.data, "pass-WORD-bb22");
    assert_string_equal(v[2].signing_secret.data, "sign-SECRET-cc33");
    assert_int_equal(v[2].nheaders, 2);
    assert_string_equal(v[2].headers[0], "X-Api-Key: should-not-be-dumped");
    assert_string_equal(v[2].headers[1], "X-Team: payments");
    assert_int_equal(v[2].retry.min_backoff_ms, 1000);
    assert_int_equal(v[2].retry.max_backoff_ms, 60000);
    assert_int_equal(v[2].retry.max_age_ms, 6 * 3600000);
    assert_int_equal(v[2].max_in_flight, 4);
    assert_int_equal(v[2].timeout_ms, 5000);

    /* PagerDuty: the Events API v2 endpoint by default; both inputs. */
    assert_string_equal(v[3].send_url, "https://events.pagerduty.com/v2/enqueue");
    assert_string_equal(v[3].routing_key.data, secrets[3]);
    assert_true(v[3].filter.alerts && v[3].filter.deployments);
    assert_string_equal(v[3].pd.severity, "critical");
    assert_string_equal(v[3].pd.source, "rollgate-eu");
    assert_string_equal(v[3].idempotency_header, "X-Dedup-Key");
    assert_null(v[2].idempotency_header);
    /* Slack: deployments only; its URL counts as a secret. */
    assert_false(v[4].filter.alerts);
    assert_true(v[4].url_secret);

    /* The dump is canonical (golden) and holds no secret. */
    assert_int_equal(rg_notify_config_dump(&nc, &dump), 0);
    assert_int_equal(rg_file_read(DATA "notifiers.dump", 1 << 20, &want), 0);
    if (strcmp(dump.data, want.data ? want.data : ""))
        fail_msg("dump differs from " DATA "notifiers.dump:\n%s", dump.data);
    for (size_t i = 0; i < 4; i++)
        assert_null(strstr(dump.data, secrets[i]));
    assert_null(strstr(dump.data, "should-not-be-dumped"));
    assert_null(strstr(dump.data, "XXXXSECRETPATH"));
    assert_null(strstr(dump.data, "user@"));

    rg_notify_config_cleanup(&nc);
    rg_notify_config_cleanup(&nc);
    rg_notify_config_cleanup(NULL);
    rg_config_cleanup(&c);
    rg_buf_cleanup(&err);
    rg_buf_cleanup(&dump);
    rg_buf_cleanup(&want);
}

static void test_notifier__config_empty(void **state)
{
    struct rg_config c;
    struct rg_notify_config nc;
    struct rg_buf err = { 0 }, dump = { 0 };
    (void)state;

    assert_int_equal(load(DATA "t.yml", "server: {}\n", &c, &nc, &err), 0);
    assert_int_equal(nc.n, 0);
    assert_int_equal(rg_notify_config_dump(&nc, &dump), 0);
    assert_string_equal(dump.data, "notifiers: []\n");
    assert_int_equal(rg_notify_config_check(&c, &err), 0);
    rg_notify_config_cleanup(&nc);
    rg_config_cleanup(&c);
    rg_buf_cleanup(&err);
    rg_buf_cleanup(&dump);
}

static void test_notifier__config_errors(void **state)
{
    static const struct {
        const char *text;
        const char *want;           /* every problem, in order */
    } cases[] = {
        { "notifiers: {a: 1}\n",
          DATA "t.yml:1:12: notifiers: expected a list of notifiers\n" },
        { "notifiers:\n  - type: webhook\n    url: http://x/\n",
          DATA "t.yml:2:5: notifiers: name is required\n" },
        { "notifiers:\n  - name: a\n    type: email\n",
          DATA "t.yml:3:11: type: unknown notifier type \"email\" "
               "(alertmanager, webhook, pagerduty or slack)\n" },
        { "notifiers:\n  - name: a\n    type: webhook\n",
          DATA "t.yml:2:5: notifiers: url is required for a webhook notifier\n" },
        { "notifiers:\n  - name: a\n    type: webhook\n    url: ftp://x/\n    colour: red\n",
          DATA "t.yml:5:5: notifiers: unknown key \"colour\"\n"
          DATA "t.yml:4:10: url: expected an http:// or https:// URL, got \"ftp://x/\"\n" },
        /* Every problem of a file, across entries, with the duplicate name's origin. */
        { "notifiers:\n"
          "  - name: a\n    type: webhook\n    url: http://x/\n    timeout: soon\n"
          "  - name: a\n    type: alertmanager\n    url: http://y/\n"
          "    events: {deployments: true}\n    max_in_flight: 0\n",
          DATA "t.yml:5:14: timeout: invalid duration \"soon\"\n"
          DATA "t.yml:9:27: events: an alertmanager notifier receives alerts only\n"
          DATA "t.yml:10:20: max_in_flight: expected an integer from 1 to 1024\n"
          DATA "t.yml:6:11: name: notifier \"a\" is already defined at " DATA "t.yml:2:5\n" },
        /* Secret files: missing, empty, and inline secrets refused. */
        { "notifiers:\n  - name: a\n    type: webhook\n    url: http://x/\n"
          "    bearer_token_file: nope\n",
          DATA "t.yml:5:24: bearer_token_file: cannot read \"" DATA "nope\": "
               "No such file or directory\n" },
        { "notifiers:\n  - name: a\n    type: webhook\n    url: http://x/\n"
          "    signing_secret_file: empty_secret\n",
          DATA "t.yml:5:26: signing_secret_file: \"" DATA "empty_secret\" is empty\n" },
        { "notifiers:\n  - name: a\n    type: webhook\n    url: http://x/\n"
          "    basic_auth: {username: u, password: hunter2}\n",
          DATA "t.yml:5:31: basic_auth.password: secrets are read from files; "
               "use password_file\n" },
        { "notifiers:\n  - name: p\n    type: pagerduty\n",
          DATA "t.yml:2:5: notifiers: routing_key_file is required for a pagerduty "
               "notifier\n" },
        { "notifiers:\n  - name: p\n    type: pagerduty\n    routing_key_file: routing_key\n"
          "    severity: fatal\n  - name: w\n    type: webhook\n    url: http://x/\n"
          "    class: deploy\n    idempotency_header: 'X Key'\n",
          DATA "t.yml:5:15: severity: expected critical, error, warning or info\n"
          DATA "t.yml:9:12: class: only pagerduty notifiers have this field\n"
          DATA "t.yml:10:25: idempotency_header: invalid header name \"X Key\"\n" },
        { "notifiers:\n  - name: a\n    type: alertmanager\n    url: http://am/?x=1\n",
          DATA "t.yml:4:10: url: an Alertmanager base URL takes no query or fragment "
               "(/api/v2/alerts is appended to its path)\n" },
        { "notifiers:\n  - name: s\n    type: slack\n    url: http://x/\n"
          "    signing_secret_file: signing_secret\n    resend_delay: 1m\n",
          DATA "t.yml:5:26: signing_secret_file: only webhook notifiers are signed\n"
          DATA "t.yml:6:19: resend_delay: only alertmanager notifiers resend alerts\n" },
        /* Matchers, filters, headers and retry. */
        { "notifiers:\n  - name: a\n    type: webhook\n    url: http://x/\n"
          "    events:\n      match: ['severity=critical']\n      kinds: [explode]\n",
          DATA "t.yml:6:15: events.match: invalid label matcher \"severity=critical\": "
               "unexpected identifier \"critical\" in label matching, expected string\n"
          DATA "t.yml:7:15: events.kinds: unknown value \"explode\"\n" },
        { "notifiers:\n  - name: a\n    type: webhook\n    url: http://x/\n"
          "    headers: {Content-Type: text/plain, 'Bad Name': x}\n",
          DATA "t.yml:5:15: headers: \"Content-Type\" is set by rollgate itself\n"
          DATA "t.yml:5:41: headers: invalid header name \"Bad Name\"\n" },
        { "notifiers:\n  - name: a\n    type: webhook\n    url: http://x/\n"
          "    tls: {ca_file: password, ca_file: password}\n"
          "    events: {match: 'a=\"b\"} offset 5m', deployment_names: [x],\n"
          "             deployment_names: [y]}\n",
          DATA "t.yml:6:21: events.match: invalid label matcher \"a=\"b\"} offset 5m\": "
               "unexpected right brace '}'\n"
          DATA "t.yml:7:14: events: duplicate key \"deployment_names\"\n"
          DATA "t.yml:5:30: tls: duplicate key \"ca_file\"\n" },
        { "notifiers:\n  - name: a\n    type: webhook\n    url: http://x/\n"
          "    retry: {min_backoff: 10s, max_backoff: 1s}\n",
          DATA "t.yml:5:12: retry: max_backoff must not be below min_backoff\n" },
        { "notifiers:\n  - name: a\n    type: webhook\n    url: http://x/\n"
          "    events: {alerts: false, deployments: false}\n",
          DATA "t.yml:5:13: events: selects neither alerts nor deployments\n" },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_config c;
        struct rg_notify_config nc;
        struct rg_buf err = { 0 };
        int rc = load(DATA "t.yml", cases[i].text, &c, &nc, &err);

        if (rc != RG_EINVAL || !err.data || strcmp(err.data, cases[i].want))
            fail_msg("case %zu: rc %d, got:\n%s\nwant:\n%s", i, rc, err.data ? err.data : "",
                     cases[i].want);
        rg_notify_config_cleanup(&nc);
        rg_config_cleanup(&c);
        rg_buf_cleanup(&err);
    }
}

/* ---- the receiver ------------------------------------------------------------------------- */

struct hit {
    char path[64];
    char key[80];                  /* Idempotency-Key */
    char sig[128];                 /* X-Rollgate-Signature */
    char ctype[64];
    char auth[128];
    char *body;                    /* owned */
    size_t len;
    int status;                    /* answered */
    int64_t at_s;                  /* wall clock at arrival, Unix seconds */
};

struct fx {
    char dir[256];
    char log[300];
    uv_loop_t loop;
    struct rg_http_server *srv;
    int port;
    struct rg_curl_uv *cu;
    struct rg_notify *n;
    struct rg_metrics *m;
    struct rg_config cfg;
    struct hit hits[MAX_HITS];
    size_t nhits;
    uv_timer_t tick;
    int (*pred)(struct fx *f);
    size_t want;                   /* for the predicates */
    int64_t deadline;
    int timed_out;
    int closed;
    struct rg_notify_test_result res[8];
    size_t nres;
    int answered;
    int flaky;                     /* requests to /flaky still to answer 500 */
};

/* Paths starting with /fail answer 500, /reject 400, /pd 202, /flaky 500 while
 * f->flaky counts down, everything else 200. */
static void on_request(struct rg_http_request *req, struct rg_http_response *res, void *ud)
{
    struct fx *f = ud;
    struct hit *h;

    if (req->path.len >= 5 && !memcmp(req->path.ptr, "/fail", 5))
        res->status = 500;
    else if (req->path.len >= 7 && !memcmp(req->path.ptr, "/reject", 7))
        res->status = 400;
    else if (req->path.len >= 3 && !memcmp(req->path.ptr, "/pd", 3))
        res->status = 202;
    else if (rg_slice_eq(req->path, "/flaky") && f->flaky > 0) {
        f->flaky--;
        res->status = 500;
    }
    if (f->nhits == MAX_HITS)
        return;
    h = &f->hits[f->nhits++];
    snprintf(h->path, sizeof(h->path), "%.*s", (int)req->path.len, req->path.ptr);
    rcv_header_copy(req, "Idempotency-Key", h->key, sizeof(h->key));
    rcv_header_copy(req, RG_SIGN_HEADER_NAME, h->sig, sizeof(h->sig));
    rcv_header_copy(req, "Content-Type", h->ctype, sizeof(h->ctype));
    rcv_header_copy(req, "Authorization", h->auth, sizeof(h->auth));
    h->len = req->body.len;
    h->body = malloc(h->len + 1);
    memcpy(h->body, req->body.data ? req->body.data : "", h->len);
    h->body[h->len] = 0;
    h->status = res->status;
    h->at_s = rg_now_ms() / 1000;
}

/* The t= of signature header value @sig, or -1. */
static long long sig_time(const char *sig)
{
    long long t;

    return sscanf(sig, "t=%lld,", &t) == 1 ? t : -1;
}

/* The signature of @h verifies with the configured secret at the time it arrived (one
 * second of slack: the request may be signed just before a second boundary). */
static void assert_signed_on_arrival(const struct hit *h)
{
    long long t = sig_time(h->sig);

    assert_int_equal(rg_sign_verify(secrets[2], strlen(secrets[2]), h->sig, h->body, h->len,
                                    h->at_s, 1), 0);
    assert_true(t <= h->at_s && t >= h->at_s - 1);
}

/* Whether the outbox file of @f holds @what anywhere in its bytes. */
static int outbox_holds(const struct fx *f, const char *what)
{
    struct rg_buf b = { 0 };
    char p[400];
    int found = 0;

    snprintf(p, sizeof(p), "%s/notify.outbox", f->dir);
    assert_int_equal(rg_file_read(p, 1 << 24, &b), 0);
    found = b.len && memmem(b.data, b.len, what, strlen(what)) != NULL;
    rg_buf_cleanup(&b);
    return found;
}

static size_t hits_on(const struct fx *f, const char *path)
{
    size_t n = 0;
    for (size_t i = 0; i < f->nhits; i++)
        n += !strcmp(f->hits[i].path, path);
    return n;
}

static const struct hit *hit_on(const struct fx *f, const char *path, size_t nth)
{
    for (size_t i = 0; i < f->nhits; i++)
        if (!strcmp(f->hits[i].path, path) && nth-- == 0)
            return &f->hits[i];
    return NULL;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");

    snprintf(f->dir, sizeof(f->dir), "%s/rg-notifier-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char p[400];

    snprintf(p, sizeof(p), "%s/notify.outbox", f->dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/notify.outbox.compact", f->dir);
    unlink(p);
    if (f->log[0])
        unlink(f->log);
    snprintf(p, sizeof(p), "%s/slack_url", f->dir);
    unlink(p);
    rmdir(f->dir);
    for (size_t i = 0; i < f->nhits; i++)
        free(f->hits[i].body);
    rg_metrics_free(f->m);
    rg_config_cleanup(&f->cfg);
    free(f);
    return 0;
}

static void on_tick(uv_timer_t *t)
{
    struct fx *f = t->data;
    int ok = f->pred && f->pred(f);

    if (ok || rg_mono_ms() >= f->deadline) {
        f->timed_out = !ok && f->pred;
        uv_stop(&f->loop);
    }
}

/* Runs the loop until @pred holds (1) or @ms pass (0). @pred NULL: run for @ms. */
static int run_until(struct fx *f, int (*pred)(struct fx *), int ms)
{
    f->pred = pred;
    f->timed_out = 0;
    f->deadline = rg_mono_ms() + ms;
    uv_timer_start(&f->tick, on_tick, 5, 5);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&f->tick);
    return !f->timed_out;
}

/* Starts loop, receiver and client, then the facade for @yaml, in which every "PORT"
 * stands for the receiver's port. Relative files resolve against tests/data/. */
static void fx_start(struct fx *f, const char *yaml, const struct rg_label *ext, size_t next,
                     const char *ext_url)
{
    struct rg_http_server_config sc;
    struct rg_notify_config nc;
    struct rg_notify_opts o;
    struct rg_buf text = { 0 }, err = { 0 };
    char port[16];

    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->tick);
    f->tick.data = f;
    rg_http_server_config_default(&sc);
    sc.host = "127.0.0.1";
    sc.port = 0;
    assert_int_equal(rg_http_server_start(&f->loop, &sc, NULL, on_request, f, &f->srv), 0);
    f->port = rg_http_server_port(f->srv);
    snprintf(port, sizeof(port), "%d", f->port);
    for (const char *p = yaml; *p;) {
        const char *q = strstr(p, "PORT");
        size_t n = q ? (size_t)(q - p) : strlen(p);
        rg_buf_append(&text, p, n);
        p += n;
        if (q) {
            rg_buf_puts(&text, port);
            p += 4;
        }
    }
    rg_config_default(&f->cfg);
    assert_int_equal(rg_config_load_text(DATA "live.yml", text.data, text.len, &f->cfg, &err), 0);
    if (rg_notify_config_parse(&f->cfg, &nc, &err))
        fail_msg("config: %s", err.data);
    assert_int_equal(rg_curl_uv_new(&f->loop, &f->cu), 0);
    f->m = rg_metrics_new();
    memset(&o, 0, sizeof(o));
    o.loop = &f->loop;
    o.cu = f->cu;
    o.metrics = f->m;
    o.data_dir = f->dir;
    o.external_labels = ext;
    o.nexternal = next;
    o.external_url = ext_url;
    o.seed = 7;
    o.sync_interval_ms = 10;
    assert_int_equal(rg_notify_new(&o, &nc, &f->n), 0);
    assert_int_equal(nc.n, 0);
    rg_buf_cleanup(&text);
    rg_buf_cleanup(&err);
}

static void on_closed(void *ud)
{
    struct fx *f = ud;

    f->closed++;
    rg_curl_uv_close(f->cu, NULL, NULL);
    f->cu = NULL;
    if (f->srv)
        rg_http_server_stop(f->srv, NULL, NULL);
    f->srv = NULL;
}

static void fx_end(struct fx *f)
{
    rg_notify_close(f->n, on_closed, f);
    rg_notify_close(NULL, NULL, NULL);
    f->n = NULL;
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(f->closed, 1);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static int want_hits(struct fx *f)
{
    return f->nhits >= f->want;
}

/* ---- alerts to two Alertmanagers ------------------------------------------------------------ */

static void test_notifier__alerts_fan_out(void **state)
{
    struct fx *f = *state;
    static const struct rg_label ext[] = { { "cluster", "eu-1" }, { "replica", "a" } };
    struct rg_label labels[70][3];
    char names[70][16];
    struct rg_label ann[] = { { "summary", "Error ratio <high> & rising" } };
    struct rg_notify_alert alerts[70];
    /* 2024-06-01T10:00:00Z and 10:04:00Z: endsAt is already 4 x resend delay ahead. */
    const int64_t t0 = 1717236000000LL, now = t0 + 30000, ends = now + 240000;
    (void)state;

    fx_start(f,
             "notifiers:\n"
             "  - {name: am-1, type: alertmanager, url: 'http://127.0.0.1:PORT/am1/'}\n"
             "  - {name: am-2, type: alertmanager, url: 'http://127.0.0.1:PORT/am2'}\n",
             ext, 2, "http://rollgate.example:9201");
    for (int i = 0; i < 70; i++) {
        snprintf(names[i], sizeof(names[i]), "pod-%02d", i);
        labels[i][0] = (struct rg_label){ "alertname", "HighErrorRatio" };
        labels[i][1] = (struct rg_label){ "instance", names[i] };
        labels[i][2] = (struct rg_label){ "replica", "b" };   /* the alert's own wins */
        alerts[i] = (struct rg_notify_alert){
            labels[i], 3, ann, 1, t0, ends,
            "http://rollgate.example:9201/graph?g0.expr=up&g0.tab=1" };
    }
    alerts[69].nlabels = 2;   /* lacks replica: the external one is added */
    assert_int_equal(rg_notify_alerts(f->n, alerts, 70, now), 0);
    f->want = 4;   /* 64 + 6 alerts to each */
    assert_true(run_until(f, want_hits, 3000));
    assert_int_equal(hits_on(f, "/am1/api/v2/alerts"), 2);
    assert_int_equal(hits_on(f, "/am2/api/v2/alerts"), 2);

    /* Batches in order, the second holding the last six alerts; the body is byte for
     * byte what Prometheus posts (field order of PostableAlert, millisecond times). */
    {
        const struct hit *a = hit_on(f, "/am1/api/v2/alerts", 0);
        const struct hit *b = hit_on(f, "/am1/api/v2/alerts", 1);
        const struct hit *c = hit_on(f, "/am2/api/v2/alerts", 1);
        const char *last = strstr(b->body, "pod-69");
        static const char want_last[] =
            "{\"annotations\":{\"summary\":\"Error ratio \\u003chigh\\u003e \\u0026 rising\"},"
            "\"endsAt\":\"2024-06-01T10:04:30.000Z\",\"startsAt\":\"2024-06-01T10:00:00.000Z\","
            "\"generatorURL\":\"http://rollgate.example:9201/graph?g0.expr=up\\u0026g0.tab=1\","
            "\"labels\":{\"alertname\":\"HighErrorRatio\",\"cluster\":\"eu-1\","
            "\"instance\":\"pod-69\",\"replica\":\"a\"}}]";
        struct rg_buf exp = { 0 };
        size_t count = 0;

        assert_non_null(a);
        assert_non_null(strstr(a->body, "pod-00"));
        assert_null(strstr(a->body, "pod-64"));
        for (const char *p = a->body; (p = strstr(p, "\"startsAt\"")); p++)
            count++;
        assert_int_equal(count, 64);
        assert_non_null(last);
        assert_true(b->len > strlen(want_last));
        assert_string_equal(b->body + b->len - strlen(want_last), want_last);
        assert_non_null(strstr(a->body, "\"instance\":\"pod-00\",\"replica\":\"b\""));
        /* The same bodies go to both, as rg_payload_alertmanager() builds them. */
        assert_int_equal(rg_payload_alertmanager(alerts + 64, 6, ext, 2, &exp), 0);
        assert_string_equal(b->body, exp.data);
        assert_string_equal(c->body, exp.data);
        assert_string_equal(a->ctype, "application/json");
        assert_int_equal(strlen(a->key), 64);
        /* Keys differ per request and per notifier. */
        assert_string_not_equal(a->key, b->key);
        assert_string_not_equal(b->key, c->key);
        rg_buf_cleanup(&exp);
    }

    /* Sent again within the resend delay: nothing new goes out. A resolved alert goes
     * out at once, and only that one. */
    assert_int_equal(rg_notify_alerts(f->n, alerts, 70, now + 1000), 0);
    alerts[3].ends_at_ms = now + 2000;
    assert_int_equal(rg_notify_alerts(f->n, alerts, 70, now + 2000), 0);
    f->want = 6;
    assert_true(run_until(f, want_hits, 3000));
    run_until(f, NULL, 100);
    assert_int_equal(f->nhits, 6);
    assert_non_null(strstr(hit_on(f, "/am1/api/v2/alerts", 2)->body, "pod-03"));
    assert_null(strstr(hit_on(f, "/am1/api/v2/alerts", 2)->body, "pod-04"));
    /* After the resend delay every alert is sent again. */
    assert_int_equal(rg_notify_alerts(f->n, alerts, 70, now + 60001), 0);
    f->want = 10;
    assert_true(run_until(f, want_hits, 3000));
    fx_end(f);
}

/* ---- a signed webhook event ---------------------------------------------------------------- */

static void test_notifier__webhook_event_signed(void **state)
{
    struct fx *f = *state;
    struct rg_notify_check checks[] = {
        { "error_ratio", RG_NOTIFY_CHECK_TRIGGER, "error_ratio", 0.12, ">", 0.05, "firing", 0,
          0, NAN },
    };
    struct rg_notify_deploy_event ev;
    struct rg_buf want = { 0 };
    char key[RG_PAYLOAD_KEY_SIZE];
    const struct hit *h;
    (void)state;

    fx_start(f,
             "notifiers:\n"
             "  - name: hook\n    type: webhook\n    url: http://127.0.0.1:PORT/hook\n"
             "    signing_secret_file: signing_secret\n    bearer_token_file: bearer_token\n"
             "    headers: {X-Team: payments}\n",
             NULL, 0, NULL);
    memset(&ev, 0, sizeof(ev));
    ev.kind = RG_NOTIFY_EVENT_ROLLBACK;
    ev.deployment = "checkout";
    ev.phase = "canary";
    ev.phase_start_ms = 1717236000000LL;
    ev.verdict = "rollback";
    ev.previous_verdict = "hold";
    ev.reason = "error_ratio > 0.05 for 1m";
    ev.checks = checks;
    ev.nchecks = 1;
    ev.at_ms = 1717236090000LL;
    ev.traffic_weight = 10;
    ev.dedup_key = "checkout/canary/1717236000000/rollback";
    assert_int_equal(rg_notify_event(f->n, &ev), 0);
    f->want = 1;
    assert_true(run_until(f, want_hits, 3000));
    h = hit_on(f, "/hook", 0);
    assert_non_null(h);

    /* The body is the rollgate event document. */
    assert_int_equal(rg_payload_webhook_event(&ev, &want), 0);
    assert_string_equal(h->body, want.data);
    /* The signature verifies with the secret and fails with another one. */
    assert_int_equal(rg_sign_verify("sign-SECRET-cc33", 16, h->sig, h->body, h->len,
                                    rg_now_ms() / 1000, 300), 0);
    assert_int_equal(rg_sign_verify("sign-SECRET-cc34", 16, h->sig, h->body, h->len,
                                    rg_now_ms() / 1000, 300), RG_EINVAL);
    /* The idempotency key is the event's dedup key, so it is the same for every retry
     * and after a restart. */
    assert_string_equal(h->key, ev.dedup_key);
    snprintf(key, sizeof(key), "%.64s", h->key);
    assert_string_equal(h->auth, "Bearer bearer-TOKEN-aa11");
    /* The same event again yields the same key. */
    assert_int_equal(rg_notify_event(f->n, &ev), 0);
    f->want = 2;
    assert_true(run_until(f, want_hits, 3000));
    assert_string_equal(hit_on(f, "/hook", 1)->key, key);
    rg_buf_cleanup(&want);
    fx_end(f);
}

/* ---- a retry is signed afresh -------------------------------------------------------------- */

/* The receiver fails the first attempt; the retry comes more than a second later, so a
 * signature made at emit time would carry the old t. Each attempt must instead carry
 * the time it was sent, verify, and keep the idempotency key. */
static void test_notifier__retry_signed_afresh(void **state)
{
    struct fx *f = *state;
    struct rg_notify_deploy_event ev;
    const struct hit *a, *b;
    int64_t emit_s;
    (void)state;

    fx_start(f,
             "notifiers:\n"
             "  - name: hook\n    type: webhook\n    url: http://127.0.0.1:PORT/flaky\n"
             "    signing_secret_file: signing_secret\n"
             "    retry: {min_backoff: 1100ms, max_backoff: 2s}\n",
             NULL, 0, NULL);
    f->flaky = 1;
    memset(&ev, 0, sizeof(ev));
    ev.kind = RG_NOTIFY_EVENT_ROLLBACK;
    ev.deployment = "checkout";
    ev.phase = "canary";
    ev.verdict = "rollback";
    ev.at_ms = 1717236090000LL;
    ev.traffic_weight = NAN;
    ev.dedup_key = "checkout/canary/retry";
    emit_s = rg_now_ms() / 1000;
    assert_int_equal(rg_notify_event(f->n, &ev), 0);
    f->want = 1;
    assert_true(run_until(f, want_hits, 3000));

    /* While the event waits for its retry, the outbox holds it (its key and body) but
     * neither the secret nor a signature. */
    assert_true(outbox_holds(f, ev.dedup_key));
    assert_true(outbox_holds(f, "\"checkout\""));
    assert_false(outbox_holds(f, secrets[2]));
    assert_false(outbox_holds(f, RG_SIGN_HEADER_NAME));
    assert_false(outbox_holds(f, "v1="));

    f->want = 2;
    assert_true(run_until(f, want_hits, 5000));
    a = hit_on(f, "/flaky", 0);
    b = hit_on(f, "/flaky", 1);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->status, 500);
    assert_int_equal(b->status, 200);
    assert_signed_on_arrival(a);
    assert_signed_on_arrival(b);
    assert_true(sig_time(a->sig) >= emit_s);
    /* The retry was signed when it was sent, not when the event was emitted. */
    assert_true(sig_time(b->sig) > sig_time(a->sig));
    assert_string_not_equal(a->sig, b->sig);
    /* Same body, same idempotency key on both attempts. */
    assert_string_equal(a->body, b->body);
    assert_string_equal(a->key, ev.dedup_key);
    assert_string_equal(b->key, ev.dedup_key);
    fx_end(f);
}

/* ---- filters ------------------------------------------------------------------------------ */

static void test_notifier__filters_route(void **state)
{
    struct fx *f = *state;
    struct rg_label crit[] = { { "alertname", "A" }, { "severity", "critical" } };
    struct rg_label warn[] = { { "alertname", "B" }, { "severity", "warning" } };
    struct rg_label none[] = { { "alertname", "C" } };
    struct rg_notify_alert alerts[3] = {
        { crit, 2, NULL, 0, 1000, 0, NULL },
        { warn, 2, NULL, 0, 1000, 0, NULL },
        { none, 1, NULL, 0, 1000, 0, NULL },
    };
    static const struct {
        enum rg_notify_event_kind kind;
        const char *deployment, *verdict;
    } evs[] = {
        { RG_NOTIFY_EVENT_ROLLBACK, "checkout", "rollback" },
        { RG_NOTIFY_EVENT_ROLLBACK, "search", "rollback" },
        { RG_NOTIFY_EVENT_PROMOTE, "checkout", "promote" },
        { RG_NOTIFY_EVENT_PHASE_STARTED, "checkout", "hold" },
    };
    (void)state;

    fx_start(f,
             "notifiers:\n"
             "  - name: crit\n    type: webhook\n    url: http://127.0.0.1:PORT/crit\n"
             "    events: {deployments: false, match: ['severity=\"critical\"']}\n"
             "  - name: notinfo\n    type: alertmanager\n    url: http://127.0.0.1:PORT/am\n"
             "    events: {match: ['severity!=\"warning\"', 'alertname=~\"[AC]\"']}\n"
             "  - name: rb\n    type: webhook\n    url: http://127.0.0.1:PORT/rb\n"
             "    events: {alerts: false, deployment_names: [checkout], kinds: [rollback]}\n"
             "  - name: chat\n    type: slack\n    url: http://127.0.0.1:PORT/chat\n"
             "    events: {alerts: false, verdicts: [promote, rollback]}\n",
             NULL, 0, NULL);
    assert_int_equal(rg_notify_alerts(f->n, alerts, 3, 2000), 0);
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        struct rg_notify_deploy_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.kind = evs[i].kind;
        ev.deployment = evs[i].deployment;
        ev.phase = "canary";
        ev.verdict = evs[i].verdict;
        ev.at_ms = 5000 + (int64_t)i;
        ev.phase_start_ms = 1000 + (int64_t)i;
        ev.traffic_weight = NAN;
        assert_int_equal(rg_notify_event(f->n, &ev), 0);
    }
    /* crit: alert A; am: A and C (one batch); rb: checkout rollback; chat: three. */
    f->want = 6;
    assert_true(run_until(f, want_hits, 3000));
    run_until(f, NULL, 100);
    assert_int_equal(f->nhits, 6);
    assert_int_equal(hits_on(f, "/crit"), 1);
    assert_non_null(strstr(hit_on(f, "/crit", 0)->body, "\"alertname\":\"A\""));
    assert_null(strstr(hit_on(f, "/crit", 0)->body, "\"alertname\":\"B\""));
    assert_int_equal(hits_on(f, "/am/api/v2/alerts"), 1);
    assert_non_null(strstr(hit_on(f, "/am/api/v2/alerts", 0)->body, "\"alertname\":\"C\""));
    assert_null(strstr(hit_on(f, "/am/api/v2/alerts", 0)->body, "\"alertname\":\"B\""));
    assert_int_equal(hits_on(f, "/rb"), 1);
    assert_non_null(strstr(hit_on(f, "/rb", 0)->body, "\"checkout\""));
    assert_int_equal(hits_on(f, "/chat"), 3);
    fx_end(f);
}

/* ---- every notifier type ------------------------------------------------------------------ */

static void test_notifier__alerts_per_type(void **state)
{
    struct fx *f = *state;
    static const struct rg_label ext[] = { { "cluster", "eu-1" } };
    struct rg_label a1[] = { { "alertname", "Down" }, { "job", "api" } };
    struct rg_label a2[] = { { "alertname", "Slow" }, { "job", "api" } };
    struct rg_label a3[] = { { "alertname", "Down" }, { "job", "db" } };
    struct rg_notify_alert alerts[3] = {
        { a1, 2, NULL, 0, 1000, 0, NULL },
        { a2, 2, NULL, 0, 1000, 0, NULL },
        { a3, 2, NULL, 0, 1000, 1500, NULL },      /* resolved */
    };
    struct rg_label gl = { "alertname", "Down" };
    struct rg_notify_group g = { "hook", NULL, &gl, 1, ext, 1, "http://rg.example", 0 };
    struct rg_notify_alert down[2] = { alerts[0], alerts[2] };
    struct rg_buf want = { 0 };
    const struct hit *h;
    (void)state;

    fx_start(f,
             "notifiers:\n"
             "  - {name: hook, type: webhook, url: 'http://127.0.0.1:PORT/hook'}\n"
             "  - {name: pd, type: pagerduty, url: 'http://127.0.0.1:PORT/pd',\n"
             "     routing_key_file: routing_key}\n"
             "  - {name: chat, type: slack, url: 'http://127.0.0.1:PORT/chat'}\n",
             ext, 1, "http://rg.example/");
    assert_int_equal(rg_notify_alerts(f->n, alerts, 3, 2000), 0);
    /* Webhook and Slack: one message per alertname (2 each); PagerDuty: one per alert. */
    f->want = 7;
    assert_true(run_until(f, want_hits, 3000));
    run_until(f, NULL, 50);
    assert_int_equal(hits_on(f, "/hook"), 2);
    assert_int_equal(hits_on(f, "/chat"), 2);
    assert_int_equal(hits_on(f, "/pd"), 3);

    /* The "Down" group is Alertmanager's webhook message for those two alerts. */
    assert_int_equal(rg_payload_webhook_alerts(&g, down, 2, 2000, &want), 0);
    h = hit_on(f, "/hook", 0);
    assert_string_equal(h->body, want.data);
    assert_non_null(strstr(hit_on(f, "/hook", 1)->body,
                           "\"groupKey\":\"{}:{alertname=\\\"Slow\\\"}\""));
    /* PagerDuty: the resolved alert resolves its own incident, the others trigger. */
    {
        size_t trig = 0, res = 0;
        for (size_t i = 0; i < 3; i++) {
            const struct hit *p = hit_on(f, "/pd", i);
            trig += strstr(p->body, "\"event_action\":\"trigger\"") != NULL;
            res += strstr(p->body, "\"event_action\":\"resolve\"") != NULL;
            assert_non_null(strstr(p->body, secrets[3]));
        }
        assert_int_equal(trig, 2);
        assert_int_equal(res, 1);
    }
    rg_buf_cleanup(&want);
    fx_end(f);
}

static void test_notifier__events_per_type(void **state)
{
    struct fx *f = *state;
    struct rg_notify_deploy_event ev;
    struct rg_notify_pagerduty pd;
    struct rg_buf want = { 0 };
    (void)state;

    fx_start(f,
             "notifiers:\n"
             "  - {name: hook, type: webhook, url: 'http://127.0.0.1:PORT/hook'}\n"
             "  - {name: pd, type: pagerduty, url: 'http://127.0.0.1:PORT/pd',\n"
             "     routing_key_file: routing_key, source: rollgate-eu}\n"
             "  - {name: chat, type: slack, url: 'http://127.0.0.1:PORT/chat'}\n"
             "  - {name: am, type: alertmanager, url: 'http://127.0.0.1:PORT/am'}\n",
             NULL, 0, NULL);
    memset(&ev, 0, sizeof(ev));
    ev.kind = RG_NOTIFY_EVENT_ROLLBACK;
    ev.deployment = "checkout";
    ev.phase = "canary";
    ev.phase_start_ms = 1000;
    ev.verdict = "rollback";
    ev.previous_verdict = "hold";
    ev.reason = "error_ratio > 0.05";
    ev.at_ms = 9000;
    ev.traffic_weight = 10;
    assert_int_equal(rg_notify_event(f->n, &ev), 0);
    f->want = 3;
    assert_true(run_until(f, want_hits, 3000));
    run_until(f, NULL, 50);
    /* Alertmanager takes alerts only. */
    assert_int_equal(f->nhits, 3);
    assert_int_equal(rg_payload_webhook_event(&ev, &want), 0);
    assert_string_equal(hit_on(f, "/hook", 0)->body, want.data);
    rg_buf_reset(&want);
    memset(&pd, 0, sizeof(pd));
    pd.routing_key = secrets[3];
    pd.source = "rollgate-eu";
    assert_int_equal(rg_payload_pagerduty_event(&pd, &ev, &want), 0);
    assert_string_equal(hit_on(f, "/pd", 0)->body, want.data);
    assert_non_null(strstr(want.data, "\"event_action\":\"trigger\""));
    rg_buf_reset(&want);
    assert_int_equal(rg_payload_slack_event(&ev, &want), 0);
    assert_string_equal(hit_on(f, "/chat", 0)->body, want.data);
    /* One dedup key for the event, the same at every receiver. */
    assert_string_equal(hit_on(f, "/hook", 0)->key, hit_on(f, "/pd", 0)->key);
    assert_string_equal(hit_on(f, "/hook", 0)->key, hit_on(f, "/chat", 0)->key);
    rg_buf_cleanup(&want);
    fx_end(f);
}

/* ---- a restart resends with the same key -------------------------------------------------- */

/* Writes into the outbox of @f an event as a version that signed at emit time stored
 * it: with its X-Rollgate-Signature header (a valid one, made at t=1000). */
static void write_legacy_event(struct fx *f, const char *key, const char *body)
{
    struct rg_outbox_config oc;
    struct rg_outbox_entry e;
    struct rg_outbox *ob;
    char path[400], val[RG_SIGN_HEADER_SIZE], line[160];
    const char *hdrs[1] = { line };

    assert_int_equal(rg_sign_webhook(secrets[2], strlen(secrets[2]), 1000, body, strlen(body),
                                     val), 0);
    snprintf(line, sizeof(line), "%s: %s", RG_SIGN_HEADER_NAME, val);
    snprintf(path, sizeof(path), "%s/notify.outbox", f->dir);
    rg_outbox_config_default(&oc);
    oc.path = path;
    assert_int_equal(rg_outbox_open(&oc, rg_now_ms(), &ob), 0);
    memset(&e, 0, sizeof(e));
    e.notifier = "hook";
    e.dedup_key = key;
    e.content_type = "application/json";
    e.headers = hdrs;
    e.nheaders = 1;
    e.payload = body;
    e.payload_len = strlen(body);
    e.created_ms = rg_now_ms();
    assert_int_equal(rg_outbox_append(ob, &e, NULL), 0);
    rg_outbox_close(ob);
    assert_true(outbox_holds(f, "t=1000,v1="));
}

static const struct hit *hit_with_key(const struct fx *f, const char *key)
{
    for (size_t i = 0; i < f->nhits; i++)
        if (!strcmp(f->hits[i].key, key))
            return &f->hits[i];
    return NULL;
}

static void test_notifier__restart_resends(void **state)
{
    struct fx *f = *state;
    static const char yaml[] =
        "notifiers:\n"
        "  - {name: hook, type: webhook, url: 'http://127.0.0.1:PORT/hook',\n"
        "     signing_secret_file: signing_secret}\n";
    struct rg_http_server_config sc;
    struct rg_notify_deploy_event ev;
    char key[RG_PAYLOAD_KEY_SIZE];
    const struct hit *h, *old;
    int64_t emit_s, life2_s;
    int port;
    (void)state;

    /* An event left by a version that stored the signature made at emit time. */
    write_legacy_event(f, "legacy-key", "{\"legacy\":1}");

    /* First life: the receiver is down (its port refuses), the event stays queued. It
     * lasts more than a second, so a resend signed with the emit time would show. */
    fx_start(f, yaml, NULL, 0, NULL);
    port = f->port;
    rg_http_server_stop(f->srv, NULL, NULL);
    f->srv = NULL;
    memset(&ev, 0, sizeof(ev));
    ev.kind = RG_NOTIFY_EVENT_HUMAN_TRIGGER;
    ev.deployment = "checkout";
    ev.phase = "canary";
    ev.verdict = "rollback";
    ev.at_ms = 5000;
    ev.traffic_weight = NAN;
    assert_int_equal(rg_payload_deploy_dedup_key(&ev, key), 0);
    emit_s = rg_now_ms() / 1000;
    assert_int_equal(rg_notify_event(f->n, &ev), 0);
    run_until(f, NULL, 1100);
    assert_int_equal(f->nhits, 0);
    assert_false(outbox_holds(f, secrets[2]));
    fx_end(f);
    f->closed = 0;
    rg_metrics_free(f->m);
    f->m = NULL;
    rg_config_cleanup(&f->cfg);

    /* Second life on the same data directory, receiver up on the same port. */
    life2_s = rg_now_ms() / 1000;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    {
        struct rg_notify_config nc;
        struct rg_notify_opts o;
        struct rg_buf text = { 0 }, err = { 0 };
        char num[16];
        const char *q = strstr(yaml, "PORT");

        uv_timer_init(&f->loop, &f->tick);
        f->tick.data = f;
        rg_http_server_config_default(&sc);
        sc.host = "127.0.0.1";
        sc.port = port;
        assert_int_equal(rg_http_server_start(&f->loop, &sc, NULL, on_request, f, &f->srv), 0);
        snprintf(num, sizeof(num), "%d", port);
        rg_buf_append(&text, yaml, (size_t)(q - yaml));
        rg_buf_puts(&text, num);
        rg_buf_puts(&text, q + 4);
        rg_config_default(&f->cfg);
        assert_int_equal(rg_config_load_text(DATA "live.yml", text.data, text.len, &f->cfg,
                                             &err), 0);
        assert_int_equal(rg_notify_config_parse(&f->cfg, &nc, &err), 0);
        assert_int_equal(rg_curl_uv_new(&f->loop, &f->cu), 0);
        memset(&o, 0, sizeof(o));
        o.loop = &f->loop;
        o.cu = f->cu;
        o.data_dir = f->dir;
        assert_int_equal(rg_notify_new(&o, &nc, &f->n), 0);
        rg_buf_cleanup(&text);
        rg_buf_cleanup(&err);
    }
    f->want = 2;
    assert_true(run_until(f, want_hits, 3000));
    h = hit_with_key(f, key);
    old = hit_with_key(f, "legacy-key");
    assert_non_null(h);
    assert_non_null(old);
    assert_non_null(strstr(h->body, "\"human_trigger\""));
    /* Both are signed with the time of the resend, not of the emit. */
    assert_signed_on_arrival(h);
    assert_true(sig_time(h->sig) >= life2_s);
    assert_true(sig_time(h->sig) > emit_s);
    /* The stored signature of the old record was dropped and replaced. */
    assert_string_equal(old->body, "{\"legacy\":1}");
    assert_signed_on_arrival(old);
    assert_true(sig_time(old->sig) >= life2_s);
    assert_null(strstr(old->sig, "t=1000,"));
    fx_end(f);
}

/* ---- the managers' hooks ----------------------------------------------------------------- */

static void test_notifier__hooks(void **state)
{
    struct fx *f = *state;
    struct rg_label labels[] = { { "alertname", "Down" }, { "job", "api" } };
    struct rg_rules_notification rn = { labels, 2, NULL, 0, 1000, rg_now_ms() + 600000, NULL };
    struct rg_checklist_check spec[2];
    struct rg_checklist_phase phase;
    struct rg_checklist cl;
    struct rg_verdict_check vc[2];
    struct rg_verdict v;
    struct rg_deploy_event dev;
    const struct hit *h;
    (void)state;

    fx_start(f,
             "notifiers:\n"
             "  - {name: am, type: alertmanager, url: 'http://127.0.0.1:PORT/am'}\n"
             "  - {name: hook, type: webhook, url: 'http://127.0.0.1:PORT/hook',\n"
             "     events: {alerts: false}}\n",
             NULL, 0, "http://rollgate.example:9201/");
    rg_notify_rules_hook(&rn, 1, f->n);

    memset(spec, 0, sizeof(spec));
    memset(&phase, 0, sizeof(phase));
    memset(&cl, 0, sizeof(cl));
    memset(vc, 0, sizeof(vc));
    memset(&v, 0, sizeof(v));
    spec[0].name = "error_ratio";
    spec[0].kind = RG_CHECKLIST_TRIGGER;
    spec[0].signal = "error_ratio";
    spec[0].op = RG_CHECKLIST_GT;
    spec[0].has_threshold = 1;
    spec[0].threshold = 0.05;
    spec[1].name = "p99_latency";
    spec[1].kind = RG_CHECKLIST_GATE;
    spec[1].signal = "p99_latency";
    spec[1].op = RG_CHECKLIST_LE;
    spec[1].has_threshold = 1;
    spec[1].threshold = 0.3;
    phase.name = "canary";
    phase.traffic_weight = 5;
    cl.phases = &phase;
    cl.nphases = 1;
    vc[0] = (struct rg_verdict_check){ &spec[0], 1, 0.125, 0, 0, RG_VERDICT_FIRING, 1000, 0, "" };
    vc[1] = (struct rg_verdict_check){ &spec[1], 0, 0, 0, 0, RG_VERDICT_NO_DATA, 1000, 0, "" };
    v.cl = &cl;
    v.phase = 0;
    v.phase_start_ms = 500;
    v.verdict = RG_VERDICT_ROLLBACK;
    v.checks = vc;
    v.nchecks = 2;
    memset(&dev, 0, sizeof(dev));
    dev.kind = RG_DEPLOY_EVENT_ROLLBACK;
    dev.deployment = "check out";
    dev.phase = "canary";
    dev.verdict = RG_VERDICT_ROLLBACK;
    dev.previous = RG_VERDICT_HOLD;
    dev.reason = "error_ratio above 0.05";
    dev.at_ms = 2000;
    dev.key = "check out/canary/500/rollback";
    dev.state = &v;
    rg_notify_deploy_hook(&dev, f->n);

    f->want = 2;
    assert_true(run_until(f, want_hits, 3000));
    assert_non_null(strstr(hit_on(f, "/am/api/v2/alerts", 0)->body, "\"job\":\"api\""));
    h = hit_on(f, "/hook", 0);
    assert_non_null(h);
    /* Checks, kind, verdicts, weight and the API link made it into the document. */
    assert_non_null(strstr(h->body, "\"rollback\""));
    assert_non_null(strstr(h->body, "\"hold\""));
    assert_non_null(strstr(h->body, "error_ratio"));
    assert_non_null(strstr(h->body, "0.125"));
    assert_non_null(strstr(h->body, "p99_latency"));
    assert_non_null(strstr(h->body, "no_data"));
    assert_non_null(strstr(h->body, "http://rollgate.example:9201/api/v1/deployments/check%20out"));
    /* The key is the payload's dedup key of the converted event, in header and body. */
    {
        char key[RG_PAYLOAD_KEY_SIZE], field[100];
        struct rg_notify_deploy_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.kind = RG_NOTIFY_EVENT_ROLLBACK;
        ev.deployment = "check out";
        ev.phase = "canary";
        ev.verdict = "rollback";
        ev.phase_start_ms = 500;
        assert_int_equal(rg_payload_deploy_dedup_key(&ev, key), 0);
        assert_string_equal(h->key, key);
        snprintf(field, sizeof(field), "\"dedup_key\":\"%s\"", key);
        assert_non_null(strstr(h->body, field));
    }
    fx_end(f);
}

/* ---- notify-test ----------------------------------------------------------------------- */

static void on_test(const struct rg_notify_test_result *r, size_t n, void *ud)
{
    struct fx *f = ud;

    f->answered++;
    f->nres = n < 8 ? n : 8;
    memcpy(f->res, r, f->nres * sizeof(*r));
}

static int test_answered(struct fx *f)
{
    return f->answered > 0;
}

static void test_notifier__notify_test(void **state)
{
    struct fx *f = *state;
    char *out = NULL;
    size_t outlen = 0;
    FILE *mem;
    (void)state;

    fx_start(f,
             "notifiers:\n"
             "  - {name: am, type: alertmanager, url: 'http://127.0.0.1:PORT/am'}\n"
             "  - {name: broken, type: webhook, url: 'http://127.0.0.1:PORT/fail',\n"
             "     events: [alerts]}\n"
             "  - {name: pd, type: pagerduty, url: 'http://127.0.0.1:PORT/pd',\n"
             "     routing_key_file: routing_key}\n"
             "  - {name: chat, type: slack, url: 'http://127.0.0.1:PORT/reject/T0/B0/SECRET'}\n",
             NULL, 0, NULL);
    assert_int_equal(rg_notify_test(f->n, on_test, f), 0);
    assert_int_equal(rg_notify_test(f->n, on_test, f), RG_EEXIST);
    assert_true(run_until(f, test_answered, 4000));
    assert_int_equal(f->answered, 1);
    assert_int_equal(f->nres, 4);
    assert_string_equal(f->res[0].notifier, "am");
    assert_true(f->res[0].ok);
    assert_int_equal(f->res[0].status, 200);
    assert_string_equal(f->res[1].notifier, "broken");
    assert_false(f->res[1].ok);
    assert_int_equal(f->res[1].status, 500);
    assert_string_equal(f->res[1].detail, "HTTP 500, will be retried");
    assert_true(f->res[2].ok);
    assert_int_equal(f->res[2].status, 202);
    assert_false(f->res[3].ok);
    assert_int_equal(f->res[3].status, 400);
    assert_string_equal(f->res[3].detail, "HTTP 400, rejected, not retried");
    /* The Slack URL is shown without its secret path. */
    assert_null(strstr(f->res[3].url, "SECRET"));
    /* What each receiver got: a test alert, test events. */
    assert_non_null(strstr(hit_on(f, "/am/api/v2/alerts", 0)->body, "RollgateNotifyTest"));
    assert_non_null(strstr(hit_on(f, "/pd", 0)->body, "\"event_action\":\"trigger\""));
    assert_non_null(strstr(hit_on(f, "/fail", 0)->body, "\"test\""));

    mem = open_memstream(&out, &outlen);
    rg_notify_test_print(f->res, f->nres, mem);
    fclose(mem);
    assert_non_null(strstr(out, "NOTIFIER"));
    assert_non_null(strstr(out, "am        alertmanager  http://127.0.0.1:"));
    assert_non_null(strstr(out, "FAILED  500"));
    assert_null(strstr(out, "SECRET"));
    free(out);
    fx_end(f);
}

/* The command form on its own loop: an unreachable notifier fails, the table names it. */
static void test_notifier__notify_test_run(void **state)
{
    struct fx *f = *state;
    static const char text[] =
        "notifiers:\n"
        "  - {name: down, type: webhook, url: 'http://127.0.0.1:1/hook', timeout: 2s}\n";
    struct rg_config c;
    struct rg_notify_test_run_opts o = { NULL, 0, NULL, NULL };
    struct rg_buf err = { 0 };
    char *out = NULL;
    size_t outlen = 0;
    FILE *mem;

    o.tmp_dir = f->dir;
    rg_config_default(&c);
    assert_int_equal(rg_config_load_text(DATA "t.yml", text, strlen(text), &c, &err), 0);
    mem = open_memstream(&out, &outlen);
    assert_int_equal(rg_notify_test_run(&c, &o, mem), RG_EIO);
    fclose(mem);
    assert_non_null(strstr(out, "down"));
    assert_non_null(strstr(out, "FAILED"));
    assert_non_null(strstr(out, "will be retried"));
    free(out);
    rg_config_cleanup(&c);

    /* No notifiers, and a broken file. */
    rg_config_default(&c);
    assert_int_equal(rg_config_load_text(DATA "t.yml", "server: {}\n", 11, &c, &err), 0);
    mem = open_memstream(&out, &outlen);
    assert_int_equal(rg_notify_test_run(&c, &o, mem), RG_ENOENT);
    fclose(mem);
    assert_string_equal(out, "no notifiers configured\n");
    free(out);
    rg_config_cleanup(&c);
    rg_config_default(&c);
    assert_int_equal(rg_config_load_text(DATA "t.yml", "notifiers: [{name: x}]\n", 23, &c,
                                         &err), 0);
    mem = open_memstream(&out, &outlen);
    assert_int_equal(rg_notify_test_run(&c, &o, mem), RG_EINVAL);
    fclose(mem);
    assert_non_null(strstr(out, "t.yml:1:13: notifiers: type is required"));
    free(out);
    rg_config_cleanup(&c);
    rg_buf_cleanup(&err);
    /* The throw-away outbox is gone. */
    assert_int_equal(rmdir(f->dir), 0);
    assert_int_equal(mkdir(f->dir, 0700), 0);
}

/* ---- secrets stay out of logs, metrics and the dump --------------------------------------- */

static void test_notifier__secrets_not_leaked(void **state)
{
    struct fx *f = *state;
    struct rg_label labels[] = { { "alertname", "A" } };
    struct rg_notify_alert a = { labels, 1, NULL, 0, 1000, 0, NULL };
    struct rg_notify_deploy_event ev;
    struct rg_buf metrics = { 0 }, log = { 0 }, dump = { 0 };
    struct rg_notify_config nc;
    int fd, saved;
    (void)state;

    snprintf(f->log, sizeof(f->log), "%s/stderr.log", f->dir);
    fflush(stderr);
    fd = open(f->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
    rg_log_set_level(RG_LOG_DEBUG);

    fx_start(f,
             "notifiers:\n"
             "  - name: hook\n    type: webhook\n    url: http://127.0.0.1:PORT/fail\n"
             "    signing_secret_file: signing_secret\n"
             "    basic_auth: {username: u, password_file: password}\n"
             "    retry: {min_backoff: 50ms, max_backoff: 100ms}\n"
             "  - name: bearer\n    type: alertmanager\n    url: http://127.0.0.1:PORT/reject\n"
             "    bearer_token_file: bearer_token\n"
             "  - name: pd\n    type: pagerduty\n    url: http://127.0.0.1:PORT/fail/pd\n"
             "    routing_key_file: routing_key\n"
             "    retry: {min_backoff: 50ms, max_backoff: 100ms}\n",
             NULL, 0, NULL);
    assert_int_equal(rg_notify_alerts(f->n, &a, 1, 2000), 0);
    memset(&ev, 0, sizeof(ev));
    ev.kind = RG_NOTIFY_EVENT_HUMAN_TRIGGER;
    ev.deployment = "checkout";
    ev.verdict = "rollback";
    ev.at_ms = 3000;
    ev.traffic_weight = NAN;
    assert_int_equal(rg_notify_event(f->n, &ev), 0);
    /* Several failed attempts each, and the rejection. */
    f->want = 7;
    assert_true(run_until(f, want_hits, 3000));
    assert_int_equal(rg_metrics_render(f->m, &metrics), 0);
    /* The failing webhook's attempts were signed; neither the secret nor a signature
     * is in the outbox, which holds its event for the next attempt. */
    assert_signed_on_arrival(hit_on(f, "/fail", 0));
    assert_true(outbox_holds(f, "\"human_trigger\""));
    assert_false(outbox_holds(f, secrets[2]));
    assert_false(outbox_holds(f, RG_SIGN_HEADER_NAME));
    fx_end(f);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rg_log_set_level(RG_LOG_INFO);

    /* The requests did carry the credentials. */
    assert_string_equal(hit_on(f, "/reject/api/v2/alerts", 0)->auth, "Bearer bearer-TOKEN-aa11");
    assert_non_null(strstr(hit_on(f, "/fail/pd", 0)->body, secrets[3]));
    assert_int_equal(rg_file_read(f->log, 1 << 22, &log), 0);
    assert_non_null(strstr(log.data, "notifier=hook"));
    assert_non_null(strstr(metrics.data, "rollgate_notifications_total{notifier=\"pd\""));
    for (size_t i = 0; i < 4; i++) {
        if (strstr(log.data, secrets[i]))
            fail_msg("secret %zu in the log", i);
        if (strstr(metrics.data, secrets[i]))
            fail_msg("secret %zu in the metrics", i);
    }
    /* The dump of the same configuration holds none either. */
    rg_buf_reset(&dump);
    assert_int_equal(rg_notify_config_parse(&f->cfg, &nc, NULL), 0);
    assert_int_equal(rg_notify_config_dump(&nc, &dump), 0);
    for (size_t i = 0; i < 4; i++)
        assert_null(strstr(dump.data, secrets[i]));
    rg_notify_config_cleanup(&nc);
    rg_buf_cleanup(&metrics);
    rg_buf_cleanup(&log);
    rg_buf_cleanup(&dump);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notifier__config_file),
        cmocka_unit_test(test_notifier__config_empty),
        cmocka_unit_test(test_notifier__config_errors),
        cmocka_unit_test_setup_teardown(test_notifier__alerts_fan_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notifier__webhook_event_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notifier__retry_signed_afresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notifier__filters_route, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notifier__alerts_per_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notifier__events_per_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notifier__restart_resends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notifier__hooks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notifier__notify_test, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notifier__notify_test_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notifier__secrets_not_leaked, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
