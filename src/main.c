/* main.c - the rollgate command line and daemon lifecycle.
 *
 *   rollgate run [--config FILE] [--listen HOST:PORT] [--data-dir DIR] [--log-level LEVEL]
 *   rollgate check [--dump] FILE...
 *   rollgate notify-test [--config FILE]
 *   rollgate version
 *   rollgate --help
 *
 * `run` loads the configuration (the bundled rules/rollgate.yml when no --config is
 * given), builds the store, starts the HTTP server on one libuv loop with a timer
 * for store garbage collection, and on SIGTERM or SIGINT stops accepting, lets
 * in-flight requests finish, closes every handle and exits 0 once uv_loop_close()
 * succeeds.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "config/config.h"
#include "http/server.h"
#include "notify/curl_uv.h"
#include "notify/notifier.h"
#include "query/cli.h"
#include "query/client.h"
#include "rules/check.h"
#include "rules/deploy.h"
#include "rules/manager.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/time.h"

#define BUNDLED_CONFIG "rules/rollgate.yml"

struct daemon {
    uv_loop_t loop;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t gc_timer;
    uv_timer_t deploy_timer;
    uv_timer_t rules_timer;
    struct rg_http_server *http;
    struct rg_config cfg;
    struct rg_store *store;
    struct rg_metrics *metrics;
    struct rg_api api;
    struct rg_deploy *deploy;
    struct rg_rules *rules;
    struct rg_curl_uv *cu;
    struct rg_query_sources *sources;   /* `sources:` of query mode */
    struct rg_query_client *qc;         /* on the shared transport */
    struct rg_notify *notify;
    int pending_stops;             /* parts still closing: HTTP server, notifications */
    uint64_t deploy_last_tick;     /* loop time (ms) when the last evaluation ended */
    uint64_t deploy_last_ns;       /* how long it took */
    struct rg_metrics_family *deploy_eval_family;
    struct rg_metrics_child *deploy_eval_seconds;
    char deploy_state[1100];
    char rules_state[1100];
    int stopping;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: rollgate <command> [options]\n"
            "\n"
            "commands:\n"
            "  run       receive remote-write, keep rolling windows, serve the API\n"
            "  check     validate configuration and Prometheus rule files (--dump: canonical form;\n"
            "            --source URL: also run every signal against a Prometheus-compatible server)\n"
            "  eval      evaluate the gates and triggers once against a Prometheus-compatible server\n"
            "  replay    run the verdict and alert machines over history from a server\n"
            "  notify-test  send a test event through every notifier and report each result\n"
            "  version   print the version and exit\n"
            "\n"
            "run options:\n"
            "  --config FILE       configuration file (default: the bundled %s)\n"
            "  --listen HOST:PORT  listen address (default 0.0.0.0:9201)\n"
            "  --data-dir DIR      directory for persistent state (default ./data)\n"
            "  --log-level LEVEL   debug, info, warn or error (default info)\n"
            "  -h, --help          this help\n",
            BUNDLED_CONFIG);
}

static void on_gc_timer(uv_timer_t *t)
{
    struct daemon *d = t->data;
    size_t removed = rg_store_gc(d->store, rg_now_ms());
    if (removed)
        rg_debug("event=store_gc removed_series=%zu active_series=%zu", removed,
                 rg_store_series_count(d->store));
}

/* The shortest pause between two deployment evaluations: 50 ms, or twice the last
 * evaluation's duration when that is longer, so that evaluating never takes more
 * than a third of the loop, however often samples arrive. */
static uint64_t deploy_gap_ms(const struct daemon *d)
{
    uint64_t twice = 2 * (d->deploy_last_ns / 1000000u);
    return twice > 50 ? twice : 50;
}

static void on_deploy_timer(uv_timer_t *t)
{
    struct daemon *d = t->data;
    uint64_t start_ns = rg_mono_ns();
    int64_t now = rg_now_ms();
    int64_t next = rg_deploy_tick(d->deploy, now);
    uint64_t delay;

    d->deploy_last_ns = rg_mono_ns() - start_ns;
    rg_metrics_observe(d->deploy_eval_family, d->deploy_eval_seconds,
                       (double)d->deploy_last_ns / 1e9);
    uv_update_time(&d->loop);
    d->deploy_last_tick = uv_now(&d->loop);
    /* The next tick comes at the manager's own due time, but never sooner than the
     * gap after this one ended. */
    delay = next > now ? (uint64_t)(next - now) : 0;
    if (delay < deploy_gap_ms(d))
        delay = deploy_gap_ms(d);
    uv_timer_start(&d->deploy_timer, on_deploy_timer, delay, 0);
}

/* Called after a remote-write request stored samples: judge them now rather than at
 * the next interval (rollgate's edge is to see each sample as it arrives), at most
 * once per gap so that a burst of writes costs one evaluation. */
static void on_ingest(void *ud)
{
    struct daemon *d = ud;
    uint64_t now = uv_now(&d->loop);
    uint64_t earliest = d->deploy_last_tick + deploy_gap_ms(d);
    uint64_t delay = earliest > now ? earliest - now : 0;

    if (d->stopping || uv_timer_get_due_in(&d->deploy_timer) <= delay)
        return;
    uv_timer_start(&d->deploy_timer, on_deploy_timer, delay, 0);
}

static void on_rules_timer(uv_timer_t *t)
{
    struct daemon *d = t->data;
    int64_t now = rg_now_ms();
    int64_t next = rg_rules_tick(d->rules, now);

    if (next != INT64_MAX)
        uv_timer_start(&d->rules_timer, on_rules_timer,
                       next > now ? (uint64_t)(next - now) : 0, 0);
}

/* Called when one part (HTTP server, notifications) has closed all its handles;
 * once both have, the daemon closes its own and uv_run returns. */
static void on_part_stopped(void *ud)
{
    struct daemon *d = ud;

    if (--d->pending_stops > 0)
        return;
    uv_close((uv_handle_t *)&d->gc_timer, NULL);
    uv_close((uv_handle_t *)&d->deploy_timer, NULL);
    uv_close((uv_handle_t *)&d->rules_timer, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
}

static void on_notify_closed(void *ud)
{
    struct daemon *d = ud;
    rg_curl_uv_close(d->cu, on_part_stopped, d);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct daemon *d = s->data;

    if (d->stopping) {
        rg_warn("event=signal signal=%d msg=\"already stopping\"", signum);
        return;
    }
    d->stopping = 1;
    d->api.ready = 0;
    rg_info("event=shutdown signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    uv_timer_stop(&d->gc_timer);
    uv_timer_stop(&d->deploy_timer);
    uv_timer_stop(&d->rules_timer);
    /* Queries still out are cancelled (the managers drop them) before the transport
     * closes. */
    rg_rules_set_query_client(d->rules, NULL);
    rg_deploy_set_query_client(d->deploy, NULL);
    rg_query_client_free(d->qc);
    d->qc = NULL;
    d->pending_stops = 2;
    rg_http_server_stop(d->http, on_part_stopped, d);
    /* No new events from here on; what is in the outbox stays there for the next start. */
    rg_rules_set_notify(d->rules, NULL, NULL);
    rg_deploy_set_event_cb(d->deploy, NULL, NULL);
    rg_notify_close(d->notify, on_notify_closed, d);
}

/* Finds the bundled configuration: in the working directory (make run), else
 * next to the binary's checkout (build/rollgate -> ../rules). */
static int find_bundled_config(char *out, size_t cap)
{
    char exe[1024];
    struct stat st;
    ssize_t n;

    if (stat(BUNDLED_CONFIG, &st) == 0) {
        snprintf(out, cap, "%s", BUNDLED_CONFIG);
        return 0;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        for (int up = 0; up < 3; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash)
                break;
            *slash = '\0';
            snprintf(out, cap, "%s/%s", exe, BUNDLED_CONFIG);
            if (stat(out, &st) == 0)
                return 0;
        }
    }
    return RG_ENOENT;
}

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "listen", required_argument, NULL, 'l' },
        { "data-dir", required_argument, NULL, 'd' },
        { "log-level", required_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = NULL, *listen = NULL, *data_dir = "data";
    struct rg_http_server_config hcfg;
    struct rg_store_config scfg;
    struct rg_buf err = { 0 };
    struct daemon d;
    char bundled[1100];
    char host[256];
    int port;
    int c, rc;

    memset(&d, 0, sizeof(d));
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'l': listen = optarg; break;
        case 'd': data_dir = optarg; break;
        case 'v': {
            enum rg_log_level lvl;
            if (rg_log_level_parse(optarg, &lvl)) {
                fprintf(stderr, "rollgate: invalid --log-level \"%s\"\n", optarg);
                return 2;
            }
            rg_log_set_level(lvl);
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rollgate: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }

    rg_config_default(&d.cfg);
    if (!config_path && find_bundled_config(bundled, sizeof(bundled)) == 0)
        config_path = bundled;
    if (config_path) {
        rc = rg_config_load_file(config_path, &d.cfg, &err);
        if (rc) {
            fprintf(stderr, "%s", err.data ? err.data : "");
            fprintf(stderr, "rollgate: invalid configuration %s\n", config_path);
            rg_config_cleanup(&d.cfg);
            rg_buf_cleanup(&err);
            return 1;
        }
    } else {
        rg_warn("event=config msg=\"bundled configuration not found; using defaults\"");
    }
    if (listen) {
        if (rg_config_split_hostport(listen, host, sizeof(host), &port)) {
            fprintf(stderr, "rollgate: invalid --listen \"%s\" (want HOST:PORT)\n", listen);
            return 2;
        }
        snprintf(d.cfg.server.listen, sizeof(d.cfg.server.listen), "%s", listen);
    }
    if (mkdir(data_dir, 0755) && errno != EEXIST) {
        fprintf(stderr, "rollgate: cannot create --data-dir %s: %s\n", data_dir, strerror(errno));
        return 1;
    }

    rg_store_config_default(&scfg);
    scfg.retention_ms = d.cfg.storage.retention_ms;
    scfg.max_series = d.cfg.storage.max_series;
    rc = rg_store_new(&scfg, &d.store);
    if (rc)
        goto fail_store;
    d.metrics = rg_metrics_new();
    if (!d.metrics) {
        rc = RG_ENOMEM;
        goto fail_metrics;
    }
    rc = rg_api_init(&d.api, &d.cfg, d.store, d.metrics);
    if (rc)
        goto fail_api;
    {
        static const double bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25, 0.5, 1, 2.5 };
        d.deploy_eval_family = rg_metrics_family(
            d.metrics, "rollgate_deployment_evaluation_duration_seconds",
            "Time to evaluate every deployment once.", RG_METRICS_HISTOGRAM, NULL, 0, bounds,
            sizeof(bounds) / sizeof(bounds[0]));
        d.deploy_eval_seconds = d.deploy_eval_family
                                    ? rg_metrics_child(d.deploy_eval_family, NULL) : NULL;
        if (!d.deploy_eval_seconds) {
            rc = RG_ENOMEM;
            goto fail_api;
        }
    }
    rc = rg_query_sources_parse(&d.cfg, &d.sources, &err);
    if (rc) {
        fprintf(stderr, "%s", err.data ? err.data : "");
        goto fail_sources;
    }
    {
        struct rg_rules_opts ro;
        rg_rules_opts_default(&ro);
        ro.query.lookback_ms = d.cfg.query.lookback_delta_ms;
        ro.query.max_samples = d.cfg.query.max_samples;
        ro.query.timeout_ms = d.cfg.query.timeout_ms;
        snprintf(d.rules_state, sizeof(d.rules_state), "%s/alerts.json", data_dir);
        ro.state_path = d.rules_state;
        ro.sources = d.sources;
        rc = rg_rules_new(&d.cfg, d.store, &ro, &d.rules, &err);
        if (rc) {
            fprintf(stderr, "%s", err.data ? err.data : "");
            goto fail_rules;
        }
        d.api.rules = d.rules;
    }
    snprintf(d.deploy_state, sizeof(d.deploy_state), "%s/deployments.json", data_dir);
    {
        struct rg_deploy_opts dopt;
        memset(&dopt, 0, sizeof(dopt));
        dopt.state_path = d.deploy_state;
        dopt.now_ms = rg_now_ms();
        dopt.sources = d.sources;
        rc = rg_deploy_new_opts(&d.cfg, d.store, d.metrics, &dopt, &d.deploy, &err);
    }
    if (rc) {
        fprintf(stderr, "%s", err.data ? err.data : "");
        goto fail_deploy;
    }
    d.api.deploy = d.deploy;

    rc = uv_loop_init(&d.loop);
    if (rc)
        goto fail_loop;
    rg_http_server_config_default(&hcfg);
    rg_config_split_hostport(d.cfg.server.listen, host, sizeof(host), &port);
    hcfg.host = host;
    hcfg.port = port;
    hcfg.max_connections = d.cfg.server.max_connections;
    hcfg.max_header_bytes = d.cfg.server.max_header_bytes;
    hcfg.max_body_bytes = d.cfg.server.max_body_bytes;
    hcfg.header_timeout_ms = (uint64_t)d.cfg.server.header_timeout_ms;
    hcfg.idle_timeout_ms = (uint64_t)d.cfg.server.idle_timeout_ms;
    rc = rg_curl_uv_new(&d.loop, &d.cu);
    if (rc)
        goto fail_curl;
    rc = rg_query_client_new(&d.loop, d.cu, d.metrics, &d.qc);
    if (rc)
        goto fail_notify;
    rg_rules_set_query_client(d.rules, d.qc);
    rg_deploy_set_query_client(d.deploy, d.qc);
    {
        const struct rg_rules_global *g = rg_rules_global_get(d.rules);
        struct rg_notify_config nc;
        struct rg_notify_opts no;

        rc = rg_notify_config_parse(&d.cfg, &nc, &err);
        if (rc) {
            fprintf(stderr, "%s", err.data ? err.data : "");
            goto fail_notify;
        }
        memset(&no, 0, sizeof(no));
        no.loop = &d.loop;
        no.cu = d.cu;
        no.metrics = d.metrics;
        no.data_dir = data_dir;
        no.external_labels = g->external_labels;
        no.nexternal = g->nexternal;
        no.external_url = g->external_url;
        rc = rg_notify_new(&no, &nc, &d.notify);
        if (rc) {
            rg_error("event=notify_failed err=%s msg=\"%s\"", rg_err_name(rc),
                     rc == RG_EEXIST ? "another process holds the outbox in --data-dir"
                                     : rg_strerror(rc));
            goto fail_notify;
        }
        rg_rules_set_notify(d.rules, rg_notify_rules_hook, d.notify);
        rg_deploy_set_event_cb(d.deploy, rg_notify_deploy_hook, d.notify);
    }
    rc = rg_http_server_start(&d.loop, &hcfg, rg_api_on_headers, rg_api_handle, &d.api, &d.http);
    if (rc) {
        rg_error("event=listen_failed addr=%s err=%s msg=\"%s\"", d.cfg.server.listen,
                 rg_err_name(rc), rg_strerror(rc));
        goto fail_http;
    }
    rg_api_set_http(&d.api, d.http);

    uv_timer_init(&d.loop, &d.gc_timer);
    d.gc_timer.data = &d;
    uv_timer_start(&d.gc_timer, on_gc_timer, (uint64_t)d.cfg.storage.gc_interval_ms,
                   (uint64_t)d.cfg.storage.gc_interval_ms);
    uv_timer_init(&d.loop, &d.deploy_timer);
    d.deploy_timer.data = &d;
    uv_timer_start(&d.deploy_timer, on_deploy_timer, (uint64_t)rg_deploy_interval(d.deploy), 0);
    d.api.on_ingest = on_ingest;
    d.api.on_ingest_ud = &d;
    uv_timer_init(&d.loop, &d.rules_timer);
    d.rules_timer.data = &d;
    uv_timer_start(&d.rules_timer, on_rules_timer, 0, 0);
    uv_signal_init(&d.loop, &d.sigterm);
    uv_signal_init(&d.loop, &d.sigint);
    d.sigterm.data = d.sigint.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    signal(SIGPIPE, SIG_IGN);

    d.api.ready = 1;
    rg_info("event=started version=%s listen=%s:%d config=%s retention_ms=%lld max_series=%zu",
            RG_VERSION, host, rg_http_server_port(d.http), config_path ? config_path : "defaults",
            (long long)d.cfg.storage.retention_ms, d.cfg.storage.max_series);
    uv_run(&d.loop, UV_RUN_DEFAULT);

    rc = uv_loop_close(&d.loop);
    if (rc)
        rg_error("event=loop_close err=%s", rg_err_name(rc));
    rg_deploy_save(d.deploy);
    rg_deploy_free(d.deploy);
    rg_api_cleanup(&d.api);
    rg_rules_free(d.rules);
    rg_query_sources_free(d.sources);
    rg_metrics_free(d.metrics);
    rg_store_free(d.store);
    rg_config_cleanup(&d.cfg);
    rg_buf_cleanup(&err);
    rg_info("event=stopped");
    return rc ? 1 : 0;

fail_http:
    rg_rules_set_notify(d.rules, NULL, NULL);
    rg_deploy_set_event_cb(d.deploy, NULL, NULL);
    rg_notify_close(d.notify, NULL, NULL);
fail_notify:
    rg_rules_set_query_client(d.rules, NULL);
    rg_deploy_set_query_client(d.deploy, NULL);
    rg_query_client_free(d.qc);
    rg_curl_uv_close(d.cu, NULL, NULL);
fail_curl:
    uv_run(&d.loop, UV_RUN_DEFAULT);   /* let the close callbacks run */
    uv_loop_close(&d.loop);
fail_loop:
    rg_deploy_free(d.deploy);
fail_deploy:
    rg_rules_free(d.rules);
fail_rules:
    rg_query_sources_free(d.sources);
fail_sources:
    rg_api_cleanup(&d.api);
fail_api:
    rg_metrics_free(d.metrics);
fail_metrics:
    rg_store_free(d.store);
fail_store:
    if (rc)
        fprintf(stderr, "rollgate: %s\n", rg_strerror(rc));
    rg_config_cleanup(&d.cfg);
    rg_buf_cleanup(&err);
    return 1;
}

/* rollgate check [--dump] FILE...: problems on stdout as file:line:col: message;
 * exit 0 when every file is valid, 1 otherwise, 2 on usage errors. */
static int cmd_check(int argc, char **argv)
{
    int dump = 0, bad = 0, files = 0;

    if (rg_query_cli_wants_check(argc, argv))
        return rg_query_cli_check(argc, argv);
    for (int i = 1; i < argc; i++) {
        struct rg_buf problems = { 0 }, out = { 0 }, summary = { 0 };
        int rc;

        if (strcmp(argv[i], "--dump") == 0) {
            dump = 1;
            continue;
        }
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: rollgate check [--dump] FILE...\n");
            return 0;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "rollgate check: unknown option \"%s\"\n", argv[i]);
            return 2;
        }
        files++;
        rc = rg_check_file(argv[i], dump, &problems, &out, &summary);
        if (rc) {
            bad = 1;
            fputs(problems.data ? problems.data : "", stdout);
            if (rc == RG_ENOMEM)
                fprintf(stderr, "rollgate check: %s: out of memory\n", argv[i]);
        } else if (dump) {
            fputs(out.data ? out.data : "", stdout);
        } else {
            printf("%s: ok\n", summary.data ? summary.data : argv[i]);
        }
        rg_buf_cleanup(&problems);
        rg_buf_cleanup(&out);
        rg_buf_cleanup(&summary);
    }
    if (!files) {
        fprintf(stderr, "usage: rollgate check [--dump] FILE...\n");
        return 2;
    }
    return bad;
}

/* rollgate notify-test [--config FILE]: one test event through every notifier. */
static int cmd_notify_test(int argc, char **argv)
{
    const char *config_path = NULL;
    struct rg_notify_test_run_opts o;
    struct rg_config cfg;
    struct rg_buf err = { 0 };
    char bundled[1100];
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_path = argv[i] + 9;
        } else {
            fprintf(stderr, "usage: rollgate notify-test [--config FILE]\n");
            return 2;
        }
    }
    if (!config_path && find_bundled_config(bundled, sizeof(bundled)) == 0)
        config_path = bundled;
    rg_config_default(&cfg);
    if (config_path && rg_config_load_file(config_path, &cfg, &err)) {
        fputs(err.data ? err.data : "", stdout);
        rg_config_cleanup(&cfg);
        rg_buf_cleanup(&err);
        return 1;
    }
    memset(&o, 0, sizeof(o));
    rc = rg_notify_test_run(&cfg, &o, stdout);
    if (rc == RG_ENOENT)
        printf("no notifiers configured in %s\n", config_path ? config_path : "the defaults");
    rg_config_cleanup(&cfg);
    rg_buf_cleanup(&err);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(argv[1], "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(argv[1], "eval") == 0)
        return rg_query_cli_eval(argc - 1, argv + 1);
    if (strcmp(argv[1], "replay") == 0)
        return rg_query_cli_replay(argc - 1, argv + 1);
    if (strcmp(argv[1], "notify-test") == 0)
        return cmd_notify_test(argc - 1, argv + 1);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("rollgate %s (revision %s)\n", RG_VERSION, RG_GIT_SHA);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "rollgate: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return 2;
}
