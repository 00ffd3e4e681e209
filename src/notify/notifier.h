/* notify/notifier.h - the `notifiers:` configuration and the notification facade.
 *
 * This module ties the notification pieces together. It parses the `notifiers:`
 * section of every configuration document (a list; each entry names a receiver of one
 * type: alertmanager, webhook, pagerduty or slack) with every problem reported as
 * "file:line:col: message", reads the secrets the entries name from files at load
 * time, and prints a canonical dump without secrets for `rollgate check --dump`.
 *
 * struct rg_notify is the facade the daemon talks to. It registers every notifier
 * with the dispatcher (dispatch.h: durable outbox, retries, metrics) and turns the
 * two kinds of input into requests with the payload builders (payload.h):
 *
 *   alerts             alertmanager: Prometheus' POST /api/v2/alerts body in batches
 *                      of at most 64, external labels added; webhook: Alertmanager's
 *                      webhook "version 4" message per alertname group; pagerduty: one
 *                      trigger/resolve event per alert (dedup key from its labels);
 *                      slack: one message per alertname group;
 *   deployment events  webhook: rollgate's event document; pagerduty: trigger on
 *                      rollback, human trigger and inconclusive, resolve otherwise;
 *                      slack: one message.
 *
 * Each notifier chooses its input with `events:` (alerts, deployments, label matchers
 * on alerts, deployment names, kinds and verdicts). Every request carries an
 * "Idempotency-Key" header: a SHA-256 key over the notifier, the input kind and the
 * body (alerts) or the event's dedup key (deployment events). It is stored with the
 * event in the outbox, so it is the same for every retry and after a restart.
 * Webhook requests are signed when signing_secret_file is set (sign.h). The facade
 * hands the secret to the dispatcher, which signs every attempt with the time it is
 * sent, so a retry or a resend after a restart passes a receiver's replay window
 * however late it comes; neither the secret nor a signature is stored in the outbox.
 *
 * Alertmanager resend delay: each alertmanager notifier remembers, per alert
 * fingerprint, when it last sent the alert and whether it was resolved; an unchanged
 * firing alert is not sent again until resend_delay has passed (Prometheus'
 * needsSending rule, applied per notifier), a status change always goes out. Firing
 * alerts get endsAt no earlier than now + 4 x resend_delay, so an alert never expires
 * in Alertmanager between two sends.
 *
 * Every batch of input is emitted with one rg_dispatch_emit_batch(): when
 * rg_notify_alerts() or rg_notify_event() returns 0, every request is durable.
 *
 * Secrets (basic_auth password, bearer token, signing secret, PagerDuty routing key,
 * URLs read from url_file) are held in memory only, handed to libcurl or the payload
 * builder, and never logged, exported as metrics or dumped. A PagerDuty routing key
 * is part of the request body, so it is stored in the outbox file in the data
 * directory like the rest of the body.
 *
 * Threading: loop thread only.
 */
#ifndef RG_NOTIFY_NOTIFIER_H
#define RG_NOTIFY_NOTIFIER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "notify/curl_uv.h"
#include "notify/payload.h"
#include "notify/retry.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/metrics.h"

struct rg_config;
struct rg_promql_node;
struct rg_rules_notification;
struct rg_deploy_event;

enum rg_notifier_type {
    RG_NOTIFIER_ALERTMANAGER = 0,
    RG_NOTIFIER_WEBHOOK,
    RG_NOTIFIER_PAGERDUTY,
    RG_NOTIFIER_SLACK,
};

/** A secret read from a file: owned bytes, wiped before they are freed. */
struct rg_notifier_secret {
    char *data;                    /* owned, NUL-terminated; NULL when unset */
    size_t len;
};

/** Which inputs go to a notifier. */
struct rg_notifier_filter {
    int alerts;                    /* 1: alerts are sent */
    int deployments;               /* 1: deployment events are sent */
    struct rg_promql_node **match; /* owned: one parsed selector per `match` item; its
                                    * first matcher is a placeholder the parser needs,
                                    * the others must all hold; none = every alert */
    char **match_text;             /* owned: the items as written, for the dump */
    size_t nmatch;
    char **names;                  /* owned: deployment names; none = every deployment */
    size_t nnames;
    unsigned kinds;                /* bit (1 << enum rg_notify_event_kind); 0 = all */
    unsigned verdicts;             /* bit per verdict (hold, promote, rollback,
                                    * inconclusive); 0 = all */
};

/** One configured notifier. Every string is owned. */
struct rg_notifier_config {
    char *name;                    /* unique */
    enum rg_notifier_type type;
    char *url;                     /* as configured (NULL when from url_file) */
    char *url_file;                /* file holding the URL (secret), or NULL */
    char *send_url;                /* where requests go: alertmanager adds
                                    * "/api/v2/alerts"; pagerduty's default is
                                    * https://events.pagerduty.com/v2/enqueue */
    int url_secret;                /* 1: send_url came from url_file or is a Slack
                                    * webhook (secret path): never printed in full */
    uint64_t timeout_ms;           /* per attempt; default 10 s */
    char *ca_file, *cert_file, *key_file, *server_name;   /* tls: paths or NULL */
    int insecure_skip_verify;
    char *basic_user;              /* basic_auth.username, or NULL */
    char *basic_password_file;
    struct rg_notifier_secret basic_password;
    char *bearer_token_file;
    struct rg_notifier_secret bearer_token;
    char **headers;                /* "Name: value" lines, sorted by name */
    size_t nheaders;
    char *signing_secret_file;     /* webhook */
    struct rg_notifier_secret signing_secret;
    char *routing_key_file;        /* pagerduty */
    struct rg_notifier_secret routing_key;
    struct {                       /* pagerduty: fixed payload fields; NULL = derived */
        char *severity;            /* critical, error, warning or info */
        char *source, *component, *group, *event_class, *client, *client_url;
    } pd;
    char *idempotency_header;      /* header carrying the key; NULL = "Idempotency-Key",
                                    * "" = none */
    struct rg_retry_policy retry;  /* defaults: retry.h, alertmanager max_age 4 x
                                    * resend_delay */
    int64_t resend_delay_ms;       /* alertmanager; default 1 m */
    unsigned max_in_flight;        /* default 8; alertmanager 1 (keeps batches in order) */
    struct rg_notifier_filter filter;
    char *path;                    /* document it was defined in */
    int line, col;                 /* position of the entry */
};

/** The parsed `notifiers:` section of every document, in configuration order. */
struct rg_notify_config {
    struct rg_notifier_config *v;  /* owned array */
    size_t n;
};

/** Parses the `notifiers:` sections of every document of @cfg (borrowed during the
 *  call) into @out, reading every secret file now. Relative file paths are resolved
 *  against the directory of the document that names them. Every problem is appended
 *  to @err as one "file:line:col: message\n" line (a missing or empty secret file
 *  included). Clean @out with rg_notify_config_cleanup(), also after an error.
 *  Returns 0, RG_EINVAL (problems found) or RG_ENOMEM. */
int rg_notify_config_parse(const struct rg_config *cfg, struct rg_notify_config *out,
                           struct rg_buf *err);

/** Frees everything @c owns (secrets are wiped first). NULL is a no-op. */
void rg_notify_config_cleanup(struct rg_notify_config *c);

/** Validates the `notifiers:` sections without keeping them (for `rollgate check`).
 *  Same messages and results as rg_notify_config_parse(). */
int rg_notify_config_check(const struct rg_config *cfg, struct rg_buf *err);

/** Appends the canonical text form of @c to @out: every notifier with every effective
 *  setting (defaults filled in), secrets replaced by the file they come from, secret
 *  URLs without their path, sensitive header values as <secret>. Returns 0 or
 *  RG_ENOMEM. */
int rg_notify_config_dump(const struct rg_notify_config *c, struct rg_buf *out);

/** "alertmanager", "webhook", "pagerduty", "slack". */
const char *rg_notifier_type_name(enum rg_notifier_type t);

/** Writes the URL of @nc for logs and tables into @out (capacity @cap): no user info,
 *  query or fragment, and for secret URLs only scheme and host. Returns @out. */
char *rg_notifier_display_url(const struct rg_notifier_config *nc, char *out, size_t cap);

/* ---- Facade -------------------------------------------------------------------------- */

struct rg_notify;                  /* opaque */

struct rg_notify_opts {
    uv_loop_t *loop;               /* borrowed */
    struct rg_curl_uv *cu;         /* borrowed; shared with other users; close it after
                                    * rg_notify_close() has called back */
    struct rg_metrics *metrics;    /* borrowed, may be NULL */
    const char *data_dir;          /* the outbox is <data_dir>/notify.outbox (copied) */
    const struct rg_label *external_labels;  /* copied; added to alerts that lack them */
    size_t nexternal;
    const char *external_url;      /* copied; for webhook/pagerduty/slack links; NULL = "" */
    uint64_t seed;                 /* retry jitter; 0 = from the clock */
    uint64_t sync_interval_ms;     /* fsync delay of acks; 0 = dispatcher default */
};

/** Creates the facade: opens the outbox (replaying undelivered events), registers
 *  every notifier of @nc and starts delivery. Takes ownership of what @nc holds (it is
 *  left empty, also on error). Returns 0, RG_EINVAL (no loop, client or data dir),
 *  RG_ENOMEM or an error of rg_dispatch_new() (RG_EEXIST: another process holds the
 *  outbox). After an error the loop must still run once before uv_loop_close(), to
 *  release handles the dispatcher had opened. */
int rg_notify_new(const struct rg_notify_opts *o, struct rg_notify_config *nc,
                  struct rg_notify **out);

/** Number of notifiers, and the configuration of notifier @i (borrowed). */
size_t rg_notify_count(const struct rg_notify *n);
const struct rg_notifier_config *rg_notify_notifier(const struct rg_notify *n, size_t i);

/** Sends @count alerts (borrowed for the call) to every notifier that takes alerts and
 *  whose matchers they pass, at wall time @now_ms. Returns 0 once every request is
 *  durable in the outbox (also when no notifier wanted any alert), RG_ECANCELED
 *  (closing), RG_ENOMEM or an outbox error (then nothing was emitted). */
int rg_notify_alerts(struct rg_notify *n, const struct rg_notify_alert *alerts, size_t count,
                     int64_t now_ms);

/** Sends one deployment event (borrowed for the call) to every notifier that takes it.
 *  @ev->dedup_key NULL: rg_payload_deploy_dedup_key(). Returns as rg_notify_alerts(). */
int rg_notify_event(struct rg_notify *n, const struct rg_notify_deploy_event *ev);

/** Hook for rg_rules_set_notify(r, rg_notify_rules_hook, notify): converts the rules
 *  manager's alerts and calls rg_notify_alerts() at the current wall time; failures
 *  are logged and counted. */
void rg_notify_rules_hook(const struct rg_rules_notification *alerts, size_t count, void *ud);

/** Hook for rg_deploy_set_event_cb(d, rg_notify_deploy_hook, notify): converts the
 *  deployments manager's event (checks with values and thresholds, traffic weight,
 *  dedup key, API link) and calls rg_notify_event(); failures are logged and counted. */
void rg_notify_deploy_hook(const struct rg_deploy_event *ev, void *ud);

/** The outcome of one notifier in a notify-test. */
struct rg_notify_test_result {
    const char *notifier;          /* borrowed from the facade */
    enum rg_notifier_type type;
    char url[160];                 /* display form (rg_notifier_display_url) */
    int ok;                        /* 1: the receiver accepted the test request (2xx) */
    int attempted;                 /* 0: no attempt finished before the deadline */
    int status;                    /* HTTP status, 0 when none */
    int err;                       /* transport error, 0 when none */
    double seconds;                /* request duration */
    char detail[160];              /* why it failed, "" when ok */
};

typedef void (*rg_notify_test_cb)(const struct rg_notify_test_result *results, size_t n,
                                  void *ud);

/** Sends a test input through every notifier (alertmanager: a RollgateNotifyTest alert
 *  that ends after 5 minutes; others: a deployment event of kind "test") and calls
 *  @cb(@ud) once, from the loop, with the first attempt's outcome of each notifier, or
 *  "no answer" for those without one within their timeout plus 6 s. The test events
 *  stay in the outbox until delivered like any other. Returns 0, RG_EEXIST (a test is
 *  running), RG_ECANCELED, RG_ENOMEM or an outbox error (then @cb is never called). */
int rg_notify_test(struct rg_notify *n, rg_notify_test_cb cb, void *ud);

/** Writes the table of @results to @out: notifier, type, URL, result, status, time and
 *  detail, one line each. */
void rg_notify_test_print(const struct rg_notify_test_result *results, size_t n, FILE *out);

/** Graceful close: stops any notify-test (its callback is not called), closes the
 *  dispatcher (in-flight requests are cancelled; their events stay in the outbox),
 *  frees the facade and then calls @on_closed(@ud) (may be NULL) from a close
 *  callback. The curl client may be closed after that. NULL is a no-op. */
void rg_notify_close(struct rg_notify *n, void (*on_closed)(void *ud), void *ud);

/** Options of rg_notify_test_run(). */
struct rg_notify_test_run_opts {
    const struct rg_label *external_labels;  /* borrowed; may be none */
    size_t nexternal;
    const char *external_url;      /* NULL = "" */
    const char *tmp_dir;           /* where the throw-away outbox goes; NULL = $TMPDIR
                                    * or /tmp */
};

/** The whole `rollgate notify-test` command: parses the notifiers of @cfg (problems to
 *  @out), runs a notify-test on a loop of its own with a throw-away outbox, prints the
 *  table to @out and cleans everything up. Returns 0 when every notifier accepted its
 *  test request, RG_EIO when one did not, RG_ENOENT when no notifier is configured,
 *  RG_EINVAL for configuration problems, or another error. Blocking; call it from
 *  main() with no other loop running on this thread. */
int rg_notify_test_run(const struct rg_config *cfg, const struct rg_notify_test_run_opts *o,
                       FILE *out);

#endif
