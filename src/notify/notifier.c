/* notify/notifier.c - the `notifiers:` configuration and the notification facade.
 *
 * Configuration: each `notifiers:` list of every document is walked entry by entry;
 * the keys of an entry are first collected (so that the type is known whatever the
 * key order), then each is validated, and every problem is reported with its
 * position while the walk goes on. Alert matchers reuse the PromQL parser: an item
 * such as severity="critical" is parsed as the selector {__rg_notify__="1",
 * severity="critical"} (a selector needs one matcher that rejects the empty string)
 * and the compiled matchers after the placeholder are kept. The fields a notifier shares
 * with other HTTP clients of the configuration (secret files, tls, basic_auth, headers,
 * durations) are read by config/fields.
 *
 * Facade: every input is turned into requests per notifier, collected in a list of
 * owned bodies, and the whole list is emitted with one rg_dispatch_emit_batch() (one
 * write and one fsync). The alertmanager resend memory is an open-addressing hash
 * table (linear probing) keyed by the alert's label-set fingerprint; it is rebuilt
 * without stale entries whenever it would grow, so its size follows the number of
 * live alerts.
 */
#include "notify/notifier.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/config.h"
#include "config/fields.h"
#include "config/yaml.h"
#include "notify/dispatch.h"
#include "notify/sign.h"
#include "promql/ast.h"
#include "rules/deploy.h"
#include "rules/manager.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

#define NAME_MAX_LEN 128
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_RESEND_MS 60000
#define DEFAULT_IN_FLIGHT 8
#define MAX_IN_FLIGHT 1024
#define PD_DEFAULT_URL "https://events.pagerduty.com/v2/enqueue"
#define MATCH_PLACEHOLDER "__rg_notify__=\"1\""
#define TEST_ALERT_MS (5 * 60 * 1000)   /* a test alert resolves itself after this */
#define TEST_GRACE_MS 6000              /* beyond the timeout: the dispatcher's probe hold */
#define RESOLVED_KEEP_MS (15 * 60 * 1000)   /* Prometheus' resolvedRetention */

static const char *const type_names[] = { "alertmanager", "webhook", "pagerduty", "slack" };
static const char *const verdict_names[] = { "hold", "promote", "rollback", "inconclusive" };

const char *rg_notifier_type_name(enum rg_notifier_type t)
{
    return (unsigned)t < 4 ? type_names[t] : "unknown";
}

/* ---- secrets ------------------------------------------------------------------------ */

static void secret_wipe(struct rg_notifier_secret *s)
{
    if (s->data) {
        /* A volatile pointer keeps the compiler from dropping the stores as dead. */
        volatile char *p = s->data;
        for (size_t i = 0; i < s->len; i++)
            p[i] = 0;
        free(s->data);
    }
    s->data = NULL;
    s->len = 0;
}

/* ---- configuration: fields ---------------------------------------------------------- */

/* Reads a secret file named by @v into @out and returns the resolved path (caller owns
 * both), or NULL after reporting. */
static char *want_secret(struct rg_config_fields *c, const struct rg_yaml_node *v,
                         const char *what, struct rg_notifier_secret *out)
{
    char *path;

    if (rg_config_field_secret_file(c, v, what, &path, &out->data, &out->len))
        return NULL;
    return path;
}

/* Header names whose values the dump hides. */
static int sensitive_header(const char *name, size_t len)
{
    static const char *const words[] = { "auth", "token", "key", "secret", "cookie",
                                         "password", "signature", NULL };
    char low[128];

    if (len >= sizeof(low))
        len = sizeof(low) - 1;
    for (size_t i = 0; i < len; i++)
        low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    low[len] = 0;
    for (size_t i = 0; words[i]; i++)
        if (strstr(low, words[i]))
            return 1;
    return 0;
}

/* The PagerDuty payload fields a notifier may fix, and where they are kept. */
static char **pd_field(struct rg_notifier_config *nc, const char *key)
{
    if (!strcmp(key, "severity"))
        return &nc->pd.severity;
    if (!strcmp(key, "source"))
        return &nc->pd.source;
    if (!strcmp(key, "component"))
        return &nc->pd.component;
    if (!strcmp(key, "group"))
        return &nc->pd.group;
    if (!strcmp(key, "class"))
        return &nc->pd.event_class;
    if (!strcmp(key, "client"))
        return &nc->pd.client;
    if (!strcmp(key, "client_url"))
        return &nc->pd.client_url;
    return NULL;
}

static const char *const pd_keys[] = {
    "severity", "source", "component", "group", "class", "client", "client_url", NULL,
};

/* ---- configuration: one entry ---------------------------------------------------------- */

static int parse_event_kind(const char *s, unsigned *bit)
{
    for (int k = 0; k < RG_NOTIFY_EVENT__COUNT; k++) {
        if (k == RG_NOTIFY_EVENT_TEST)
            continue;
        if (!strcmp(s, rg_payload_event_kind_name((enum rg_notify_event_kind)k))) {
            *bit = 1u << k;
            return 0;
        }
    }
    return -1;
}

static int parse_verdict(const char *s, unsigned *bit)
{
    for (unsigned i = 0; i < 4; i++) {
        if (!strcmp(s, verdict_names[i])) {
            *bit = 1u << i;
            return 0;
        }
    }
    return -1;
}

/* The items of a sequence (none for any other node). */
static size_t seq_items(const struct rg_yaml_node *v, const struct rg_yaml_node *const **items)
{
    if (v->kind == RG_YAML_SEQ) {
        *items = (const struct rg_yaml_node *const *)v->items;
        return v->nitems;
    }
    *items = NULL;
    return 0;
}

static void parse_match(struct rg_config_fields *c, const struct rg_yaml_node *v,
                        struct rg_notifier_filter *f)
{
    const struct rg_yaml_node *const *items;
    const struct rg_yaml_node *one[1] = { v };
    size_t n = seq_items(v, &items);

    if (v->kind == RG_YAML_SCALAR) {
        items = one;
        n = 1;
    } else if (v->kind != RG_YAML_SEQ) {
        rg_config_field_problem(c, v, "events.match: expected a list of label matchers");
        return;
    }
    f->match = calloc(n ? n : 1, sizeof(*f->match));
    f->match_text = calloc(n ? n : 1, sizeof(*f->match_text));
    if (!f->match || !f->match_text) {
        c->oom = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = rg_config_field_string(c, items[i], "events.match");
        struct rg_buf q = { 0 };
        struct rg_promql_node *node = NULL;
        char msg[256];
        int err;

        if (!s)
            continue;
        if (rg_buf_printf(&q, "{" MATCH_PLACEHOLDER ",%s}", s)) {
            c->oom = 1;
            continue;
        }
        err = rg_promql_parse(q.data, &node, msg, sizeof(msg));
        rg_buf_cleanup(&q);
        if (err == RG_ENOMEM) {
            c->oom = 1;
            continue;
        }
        if (err || node->kind != RG_PROMQL_SELECTOR || node->u.sel.name ||
            node->u.sel.nmatchers < 2 || node->u.sel.offset_ms ||
            node->u.sel.at != RG_PROMQL_AT_NONE) {
            /* The parser's column refers to the wrapped text; the message without it
             * is still precise about what is wrong. */
            const char *m = err ? strstr(msg, "parse error: ") : NULL;
            rg_config_field_problem(c, items[i], "events.match: invalid label matcher "
                                    "\"%s\"%s%s", s, m ? ": " : "", m ? m + 13 : "");
            rg_promql_node_free(node);
            continue;
        }
        f->match[f->nmatch] = node;
        f->match_text[f->nmatch++] = rg_config_field_dup(c, s);
    }
}

static void parse_str_list(struct rg_config_fields *c, const struct rg_yaml_node *v,
                           const char *what, int (*conv)(const char *, unsigned *),
                           unsigned *mask, char ***names, size_t *nnames)
{
    const struct rg_yaml_node *const *items;
    size_t n = seq_items(v, &items);

    if (v->kind != RG_YAML_SEQ) {
        rg_config_field_problem(c, v, "%s: expected a list", what);
        return;
    }
    if (names && !(*names = calloc(n ? n : 1, sizeof(char *)))) {
        c->oom = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = rg_config_field_string(c, items[i], what);
        unsigned bit;

        if (!s)
            continue;
        if (conv) {
            if (conv(s, &bit)) {
                rg_config_field_problem(c, items[i], "%s: unknown value \"%s\"", what, s);
                continue;
            }
            *mask |= bit;
        } else {
            (*names)[(*nnames)++] = rg_config_field_dup(c, s);
        }
    }
}

static void parse_events(struct rg_config_fields *c, const struct rg_yaml_node *v,
                         struct rg_notifier_config *nc)
{
    struct rg_notifier_filter *f = &nc->filter;
    const struct rg_yaml_node *alerts_at = v, *deploy_at = v;
    int has_dfilter = 0;

    if (v->kind == RG_YAML_SEQ) {
        /* Short form: events: [alerts, deployments]. */
        f->alerts = f->deployments = 0;
        for (size_t i = 0; i < v->nitems; i++) {
            const char *s = rg_config_field_string(c, v->items[i], "events");
            if (!s)
                continue;
            if (!strcmp(s, "alerts"))
                f->alerts = 1, alerts_at = v->items[i];
            else if (!strcmp(s, "deployments"))
                f->deployments = 1, deploy_at = v->items[i];
            else
                rg_config_field_problem(c, v->items[i], "events: unknown value \"%s\" "
                                        "(alerts or deployments)", s);
        }
    } else if (v->kind == RG_YAML_MAP) {
        for (size_t i = 0; i + 1 < v->nitems; i += 2) {
            const struct rg_yaml_node *k = v->items[i], *x = v->items[i + 1];
            const char *key = k->kind == RG_YAML_SCALAR ? k->scalar : "";

            if (rg_config_field_dup_key(c, v, i, "events"))
                continue;
            if (!strcmp(key, "alerts")) {
                rg_config_field_bool(c, x, "events.alerts", &f->alerts);
                alerts_at = x;
            } else if (!strcmp(key, "deployments")) {
                rg_config_field_bool(c, x, "events.deployments", &f->deployments);
                deploy_at = x;
            } else if (!strcmp(key, "match")) {
                parse_match(c, x, f);
            } else if (!strcmp(key, "deployment_names")) {
                parse_str_list(c, x, "events.deployment_names", NULL, NULL, &f->names,
                               &f->nnames);
                has_dfilter = 1;
            } else if (!strcmp(key, "kinds")) {
                parse_str_list(c, x, "events.kinds", parse_event_kind, &f->kinds, NULL, NULL);
                has_dfilter = 1;
            } else if (!strcmp(key, "verdicts")) {
                parse_str_list(c, x, "events.verdicts", parse_verdict, &f->verdicts, NULL,
                               NULL);
                has_dfilter = 1;
            } else {
                rg_config_field_problem(c, k, "events: unknown key \"%s\"", key);
            }
        }
    } else {
        rg_config_field_problem(c, v, "events: expected a list or a map");
        return;
    }
    if (nc->type == RG_NOTIFIER_ALERTMANAGER && f->deployments)
        rg_config_field_problem(c, deploy_at, "events: an alertmanager notifier receives "
                                "alerts only");
    if (!f->alerts && !f->deployments)
        rg_config_field_problem(c, v, "events: selects neither alerts nor deployments");
    if (!f->alerts && f->nmatch)
        rg_config_field_problem(c, alerts_at, "events.match: alerts are not sent to this notifier");
    if (!f->deployments && has_dfilter && nc->type != RG_NOTIFIER_ALERTMANAGER)
        rg_config_field_problem(c, deploy_at, "events: deployment filters given but "
                                "deployments are not sent");
}

/* Headers the transport or the dispatcher write themselves. */
static const char *const reserved_headers[] = {
    "Content-Type", "Content-Length", "Host", "Transfer-Encoding", "Connection",
    "Idempotency-Key", RG_SIGN_HEADER_NAME, NULL,
};

static int cmp_header(const void *a, const void *b)
{
    return strcasecmp(*(char *const *)a, *(char *const *)b);
}

static void parse_retry(struct rg_config_fields *c, const struct rg_yaml_node *v,
                        struct rg_notifier_config *nc, int *age_set)
{
    if (v->kind != RG_YAML_MAP) {
        rg_config_field_problem(c, v, "retry: expected a map");
        return;
    }
    for (size_t i = 0; i + 1 < v->nitems; i += 2) {
        const struct rg_yaml_node *k = v->items[i], *x = v->items[i + 1];
        const char *key = k->kind == RG_YAML_SCALAR ? k->scalar : "";

        if (rg_config_field_dup_key(c, v, i, "retry"))
            continue;
        if (!strcmp(key, "min_backoff"))
            rg_config_field_duration(c, x, "retry.min_backoff", 1, &nc->retry.min_backoff_ms);
        else if (!strcmp(key, "max_backoff"))
            rg_config_field_duration(c, x, "retry.max_backoff", 1, &nc->retry.max_backoff_ms);
        else if (!strcmp(key, "max_age")) {
            if (rg_config_field_duration(c, x, "retry.max_age", 0, &nc->retry.max_age_ms) == 0)
                *age_set = 1;
        } else
            rg_config_field_problem(c, k, "retry: unknown key \"%s\"", key);
    }
    if (nc->retry.max_backoff_ms < nc->retry.min_backoff_ms)
        rg_config_field_problem(c, v, "retry: max_backoff must not be below min_backoff");
}

/* Names already defined, for the duplicate check across documents. */
struct seen_name {
    const char *name;
    const char *path;
    int line, col;
};

static void notifier_config_cleanup(struct rg_notifier_config *nc)
{
    free(nc->name);
    free(nc->url);
    free(nc->url_file);
    free(nc->send_url);
    free(nc->ca_file);
    free(nc->cert_file);
    free(nc->key_file);
    free(nc->server_name);
    free(nc->basic_user);
    free(nc->basic_password_file);
    secret_wipe(&nc->basic_password);
    free(nc->bearer_token_file);
    secret_wipe(&nc->bearer_token);
    for (size_t i = 0; i < nc->nheaders; i++)
        free(nc->headers[i]);
    free(nc->headers);
    free(nc->signing_secret_file);
    secret_wipe(&nc->signing_secret);
    free(nc->routing_key_file);
    secret_wipe(&nc->routing_key);
    for (size_t i = 0; pd_keys[i]; i++)
        free(*pd_field(nc, pd_keys[i]));
    free(nc->idempotency_header);
    for (size_t i = 0; i < nc->filter.nmatch; i++) {
        rg_promql_node_free(nc->filter.match[i]);
        free(nc->filter.match_text[i]);
    }
    free(nc->filter.match);
    free(nc->filter.match_text);
    for (size_t i = 0; i < nc->filter.nnames; i++)
        free(nc->filter.names[i]);
    free(nc->filter.names);
    free(nc->path);
    memset(nc, 0, sizeof(*nc));
}

/* The value of @key in the entry @map (duplicates are reported by parse_entry). */
static const struct rg_yaml_node *entry_get(const struct rg_yaml_node *map, const char *key)
{
    return rg_yaml_get(map, key);
}

static const char *const entry_keys[] = {
    "name", "type", "url", "url_file", "events", "timeout", "tls", "basic_auth",
    "bearer_token_file", "headers", "signing_secret_file", "routing_key_file", "retry",
    "resend_delay", "max_in_flight", "idempotency_header", "severity", "source", "component",
    "group", "class", "client", "client_url", NULL,
};

static void parse_pd_fields(struct rg_config_fields *c, const struct rg_yaml_node *e,
                            struct rg_notifier_config *nc)
{
    for (size_t i = 0; pd_keys[i]; i++) {
        const struct rg_yaml_node *v = rg_yaml_get(e, pd_keys[i]);
        const char *s;

        if (!v)
            continue;
        if (nc->type != RG_NOTIFIER_PAGERDUTY) {
            rg_config_field_problem(c, v, "%s: only pagerduty notifiers have this field",
                                    pd_keys[i]);
            continue;
        }
        if (!(s = rg_config_field_string(c, v, pd_keys[i])))
            continue;
        if (!strcmp(pd_keys[i], "severity") && strcmp(s, "critical") && strcmp(s, "error") &&
            strcmp(s, "warning") && strcmp(s, "info")) {
            rg_config_field_problem(c, v, "severity: expected critical, error, warning or info");
            continue;
        }
        if (!strcmp(pd_keys[i], "client_url") && !rg_config_field_url_ok(s, 1)) {
            rg_config_field_problem(c, v, "client_url: expected an http:// or https:// URL");
            continue;
        }
        *pd_field(nc, pd_keys[i]) = rg_config_field_dup(c, s);
    }
}

static void parse_entry(struct rg_config_fields *c, const struct rg_yaml_node *e,
                        struct rg_notifier_config *nc)
{
    const struct rg_yaml_node *v;
    const char *s;
    int age_set = 0, type_ok = 0;

    nc->line = e->line;
    nc->col = e->col;
    nc->path = rg_config_field_dup(c, c->path);
    nc->timeout_ms = DEFAULT_TIMEOUT_MS;
    nc->resend_delay_ms = DEFAULT_RESEND_MS;
    rg_retry_policy_default(&nc->retry);
    nc->filter.alerts = 1;
    if (e->kind != RG_YAML_MAP) {
        rg_config_field_problem(c, e, "notifiers: expected a map for each notifier");
        return;
    }
    rg_config_field_check_keys(c, e, entry_keys, "notifiers");

    if (!(v = entry_get(e, "name")))
        rg_config_field_problem(c, e, "notifiers: name is required");
    else
        nc->name = rg_config_field_name(c, v, NAME_MAX_LEN);

    if (!(v = entry_get(e, "type")))
        rg_config_field_problem(c, e, "notifiers: type is required");
    else if ((s = rg_config_field_string(c, v, "type"))) {
        for (int t = 0; t < 4; t++)
            if (!strcmp(s, type_names[t]))
                nc->type = (enum rg_notifier_type)t, type_ok = 1;
        if (!type_ok)
            rg_config_field_problem(c, v, "type: unknown notifier type \"%s\" "
                                    "(alertmanager, webhook, pagerduty or slack)", s);
    }
    if (!type_ok)
        return;
    nc->filter.deployments = nc->type != RG_NOTIFIER_ALERTMANAGER;
    if (nc->type == RG_NOTIFIER_ALERTMANAGER)
        nc->retry.max_age_ms = 0;    /* set from resend_delay below unless given */

    {
        const struct rg_yaml_node *u = entry_get(e, "url"), *uf = entry_get(e, "url_file");
        if (u && uf)
            rg_config_field_problem(c, uf, "url_file: give either url or url_file");
        if (u && (s = rg_config_field_string(c, u, "url"))) {
            if (!rg_config_field_url_ok(s, 1))
                rg_config_field_problem(c, u, "url: expected an http:// or https:// URL, "
                                        "got \"%s\"", s);
            else if (nc->type == RG_NOTIFIER_ALERTMANAGER && strpbrk(s, "?#"))
                rg_config_field_problem(c, u, "url: an Alertmanager base URL takes no query or "
                                        "fragment (/api/v2/alerts is appended to its path)");
            else
                nc->url = rg_config_field_dup(c, s);
        } else if (uf && !u) {
            struct rg_notifier_secret sec = { 0 };
            nc->url_file = want_secret(c, uf, "url_file", &sec);
            if (nc->url_file && !rg_config_field_url_ok(sec.data, 1))
                rg_config_field_problem(c, uf, "url_file: \"%s\" does not hold an http:// or "
                                        "https:// URL", nc->url_file);
            else if (nc->url_file)
                nc->send_url = rg_config_field_dup(c, sec.data);
            secret_wipe(&sec);
            nc->url_secret = 1;
        } else if (!u && nc->type != RG_NOTIFIER_PAGERDUTY) {
            rg_config_field_problem(c, e, "notifiers: url is required for a %s notifier",
                                    type_names[nc->type]);
        }
        if (nc->url) {
            if (nc->type == RG_NOTIFIER_ALERTMANAGER) {
                struct rg_buf b = { 0 };
                size_t len = strlen(nc->url);
                while (len && nc->url[len - 1] == '/')
                    len--;
                if (rg_buf_append(&b, nc->url, len) || rg_buf_puts(&b, "/api/v2/alerts"))
                    c->oom = 1;
                nc->send_url = b.data;
            } else {
                nc->send_url = rg_config_field_dup(c, nc->url);
            }
        } else if (!nc->send_url && !uf && nc->type == RG_NOTIFIER_PAGERDUTY) {
            nc->send_url = rg_config_field_dup(c, PD_DEFAULT_URL);
        }
        /* A Slack incoming-webhook URL is itself the credential (in its path). */
        if (nc->type == RG_NOTIFIER_SLACK)
            nc->url_secret = 1;
    }

    if ((v = entry_get(e, "events")))
        parse_events(c, v, nc);
    if ((v = entry_get(e, "timeout"))) {
        int64_t ms;
        if (rg_config_field_duration(c, v, "timeout", 1, &ms) == 0)
            nc->timeout_ms = (uint64_t)ms;
    }
    if ((v = entry_get(e, "tls"))) {
        struct rg_config_tls tls = { 0 };

        rg_config_field_tls(c, v, &tls);
        nc->ca_file = tls.ca_file;
        nc->cert_file = tls.cert_file;
        nc->key_file = tls.key_file;
        nc->server_name = tls.server_name;
        nc->insecure_skip_verify = tls.insecure_skip_verify;
    }
    if ((v = entry_get(e, "basic_auth"))) {
        struct rg_config_basic_auth ba = { 0 };

        rg_config_field_basic_auth(c, v, &ba);
        nc->basic_user = ba.user;
        nc->basic_password_file = ba.password_file;
        nc->basic_password.data = ba.password;
        nc->basic_password.len = ba.password_len;
    }
    if ((v = entry_get(e, "bearer_token_file"))) {
        nc->bearer_token_file = want_secret(c, v, "bearer_token_file", &nc->bearer_token);
        if (entry_get(e, "basic_auth"))
            rg_config_field_problem(c, v, "bearer_token_file: give either basic_auth or "
                                    "bearer_token_file");
    }
    if ((v = entry_get(e, "headers"))) {
        int other_auth = entry_get(e, "basic_auth") || entry_get(e, "bearer_token_file");

        rg_config_field_headers(c, v, reserved_headers, other_auth, &nc->headers,
                                &nc->nheaders);
        qsort(nc->headers, nc->nheaders, sizeof(char *), cmp_header);
    }
    if ((v = entry_get(e, "signing_secret_file"))) {
        if (nc->type != RG_NOTIFIER_WEBHOOK)
            rg_config_field_problem(c, v, "signing_secret_file: only webhook notifiers are "
                                    "signed");
        else
            nc->signing_secret_file = want_secret(c, v, "signing_secret_file",
                                                  &nc->signing_secret);
    }
    if ((v = entry_get(e, "routing_key_file"))) {
        if (nc->type != RG_NOTIFIER_PAGERDUTY)
            rg_config_field_problem(c, v, "routing_key_file: only pagerduty notifiers have a "
                                    "routing key");
        else
            nc->routing_key_file = want_secret(c, v, "routing_key_file", &nc->routing_key);
    } else if (nc->type == RG_NOTIFIER_PAGERDUTY) {
        rg_config_field_problem(c, e, "notifiers: routing_key_file is required for a "
                                "pagerduty notifier");
    }
    if ((v = entry_get(e, "retry")))
        parse_retry(c, v, nc, &age_set);
    if ((v = entry_get(e, "resend_delay"))) {
        if (nc->type != RG_NOTIFIER_ALERTMANAGER)
            rg_config_field_problem(c, v, "resend_delay: only alertmanager notifiers resend "
                                    "alerts");
        else
            rg_config_field_duration(c, v, "resend_delay", 1, &nc->resend_delay_ms);
    }
    nc->max_in_flight = nc->type == RG_NOTIFIER_ALERTMANAGER ? 1 : DEFAULT_IN_FLIGHT;
    if ((v = entry_get(e, "max_in_flight"))) {
        char *end = NULL;
        long x = -1;
        if (v->kind == RG_YAML_SCALAR) {
            errno = 0;
            x = strtol(v->scalar, &end, 10);
            if (errno || *end || !v->scalar_len)
                x = -1;
        }
        if (x < 1 || x > MAX_IN_FLIGHT)
            rg_config_field_problem(c, v, "max_in_flight: expected an integer from 1 to %d",
                                    MAX_IN_FLIGHT);
        else
            nc->max_in_flight = (unsigned)x;
    }
    parse_pd_fields(c, e, nc);
    if ((v = entry_get(e, "idempotency_header")) &&
        (s = rg_config_field_string(c, v, "idempotency_header"))) {
        int bad = strlen(s) > 128;
        for (const char *p = s; *p; p++)
            bad |= !rg_config_field_token_char((unsigned char)*p);
        if (bad)
            rg_config_field_problem(c, v, "idempotency_header: invalid header name \"%s\"", s);
        else
            nc->idempotency_header = rg_config_field_dup(c, s);
    }
    /* Prometheus never retries a batch: the next resend is the retry. Retrying for the
     * validity window of the alerts (endsAt = send time + 4 x resend delay) gives at
     * least as much, and nothing older is worth delivering. */
    if (nc->type == RG_NOTIFIER_ALERTMANAGER && !age_set)
        nc->retry.max_age_ms = 4 * nc->resend_delay_ms;
}

struct parse_state {
    struct rg_config_fields c;
    struct rg_notify_config *out;
    size_t cap;
};

static int each_section(const char *path, const struct rg_yaml_node *sec, void *ud)
{
    struct parse_state *ps = ud;
    struct rg_config_fields *c = &ps->c;

    if (!rg_config_field_list(c, path, sec, "notifiers"))
        return 0;
    for (size_t i = 0; i < sec->nitems; i++) {
        struct rg_notifier_config *nc;

        if (ps->out->n == ps->cap) {
            size_t cap = ps->cap ? ps->cap * 2 : 8;
            void *p = realloc(ps->out->v, cap * sizeof(*ps->out->v));
            if (!p) {
                c->oom = 1;
                return RG_ENOMEM;
            }
            ps->out->v = p;
            ps->cap = cap;
        }
        nc = &ps->out->v[ps->out->n++];
        memset(nc, 0, sizeof(*nc));
        parse_entry(c, sec->items[i], nc);
        if (!nc->name)
            continue;
        for (size_t j = 0; j + 1 < ps->out->n; j++) {
            const struct rg_notifier_config *o = &ps->out->v[j];
            if (o->name && !strcmp(o->name, nc->name)) {
                const struct rg_yaml_node *at = rg_yaml_get(sec->items[i], "name");
                rg_config_field_problem(c, at, "name: notifier \"%s\" is already defined at "
                                        "%s:%d:%d", nc->name, o->path ? o->path : "",
                                        o->line, o->col);
                break;
            }
        }
    }
    return c->oom ? RG_ENOMEM : 0;
}

int rg_notify_config_parse(const struct rg_config *cfg, struct rg_notify_config *out,
                           struct rg_buf *err)
{
    struct parse_state ps;
    int rc;

    memset(out, 0, sizeof(*out));
    memset(&ps, 0, sizeof(ps));
    ps.c.err = err;
    ps.c.path = cfg->path;
    ps.out = out;
    rc = rg_config_each_section(cfg, "notifiers", each_section, &ps);
    if (rc == RG_ENOMEM || ps.c.oom)
        return RG_ENOMEM;
    return ps.c.problems ? RG_EINVAL : 0;
}

void rg_notify_config_cleanup(struct rg_notify_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        notifier_config_cleanup(&c->v[i]);
    free(c->v);
    c->v = NULL;
    c->n = 0;
}

int rg_notify_config_check(const struct rg_config *cfg, struct rg_buf *err)
{
    struct rg_notify_config c;
    int rc = rg_notify_config_parse(cfg, &c, err);

    rg_notify_config_cleanup(&c);
    return rc;
}

/* ---- configuration: dump ------------------------------------------------------------ */

char *rg_notifier_display_url(const struct rg_notifier_config *nc, char *out, size_t cap)
{
    const char *u = nc->send_url ? nc->send_url : "";

    if (!cap)
        return out;
    if (nc->url_secret) {
        const char *sch = strstr(u, "://");
        size_t slen = sch ? (size_t)(sch + 3 - u) : 0;
        const char *auth = u + slen;
        size_t alen = strcspn(auth, "/?#");
        const char *at = memchr(auth, '@', alen);

        /* Scheme and host only: user info, path and query may all carry the secret. */
        if (at) {
            alen -= (size_t)(at + 1 - auth);
            auth = at + 1;
        }
        snprintf(out, cap, "%.*s%.*s/<secret>", (int)slen, u, (int)alen, auth);
        return out;
    }
    return rg_http_redact_url(u, out, cap);
}

static int dump_duration(struct rg_buf *out, const char *key, int64_t ms)
{
    if (rg_buf_printf(out, "    %s: ", key))
        return RG_ENOMEM;
    if (ms == 0)
        return rg_buf_puts(out, "0s\n");
    if (rg_promql_format_duration(ms, out))
        return RG_ENOMEM;
    return rg_buf_putc(out, '\n');
}

/* Appends @s as a double-quoted YAML string. */
static int dump_quoted(struct rg_buf *out, const char *s)
{
    int err = rg_buf_putc(out, '"');
    for (; !err && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            err = rg_buf_putc(out, '\\') || rg_buf_putc(out, (char)ch);
        else if (ch < 0x20)
            err = rg_buf_printf(out, "\\x%02x", ch);
        else
            err = rg_buf_putc(out, (char)ch);
    }
    return err || rg_buf_putc(out, '"') ? RG_ENOMEM : 0;
}

static int dump_one(const struct rg_notifier_config *nc, struct rg_buf *out)
{
    const struct rg_notifier_filter *f = &nc->filter;
    char url[512];
    int err = 0;

    err |= rg_buf_printf(out, "  - name: %s\n    type: %s\n", nc->name ? nc->name : "",
                         rg_notifier_type_name(nc->type));
    if (nc->url_file)
        err |= rg_buf_printf(out, "    url_file: %s\n", nc->url_file);
    else if (nc->url)
        err |= rg_buf_puts(out, "    url: ") ||
               dump_quoted(out, nc->url_secret ? rg_notifier_display_url(nc, url, sizeof(url))
                                               : rg_http_redact_url(nc->url, url, sizeof(url))) ||
               rg_buf_putc(out, '\n');
    if (!nc->url_secret && nc->send_url && (!nc->url || strcmp(nc->url, nc->send_url)))
        err |= rg_buf_puts(out, "    # requests go to ") ||
               rg_buf_puts(out, rg_http_redact_url(nc->send_url, url, sizeof(url))) ||
               rg_buf_putc(out, '\n');
    err |= rg_buf_printf(out, "    events:\n      alerts: %s\n      deployments: %s\n",
                         f->alerts ? "true" : "false", f->deployments ? "true" : "false");
    if (f->nmatch) {
        err |= rg_buf_puts(out, "      match:\n");
        for (size_t i = 0; i < f->nmatch; i++)
            err |= rg_buf_puts(out, "        - ") || dump_quoted(out, f->match_text[i]) ||
                   rg_buf_putc(out, '\n');
    }
    if (f->nnames) {
        err |= rg_buf_puts(out, "      deployment_names:\n");
        for (size_t i = 0; i < f->nnames; i++)
            err |= rg_buf_puts(out, "        - ") || dump_quoted(out, f->names[i]) ||
                   rg_buf_putc(out, '\n');
    }
    if (f->kinds) {
        err |= rg_buf_puts(out, "      kinds: [");
        for (int k = 0, first = 1; k < RG_NOTIFY_EVENT__COUNT; k++)
            if (f->kinds & (1u << k)) {
                err |= rg_buf_printf(out, "%s%s", first ? "" : ", ",
                                     rg_payload_event_kind_name((enum rg_notify_event_kind)k));
                first = 0;
            }
        err |= rg_buf_puts(out, "]\n");
    }
    if (f->verdicts) {
        err |= rg_buf_puts(out, "      verdicts: [");
        for (unsigned k = 0, first = 1; k < 4; k++)
            if (f->verdicts & (1u << k)) {
                err |= rg_buf_printf(out, "%s%s", first ? "" : ", ", verdict_names[k]);
                first = 0;
            }
        err |= rg_buf_puts(out, "]\n");
    }
    err |= dump_duration(out, "timeout", (int64_t)nc->timeout_ms);
    if (nc->ca_file || nc->cert_file || nc->server_name || nc->insecure_skip_verify) {
        err |= rg_buf_puts(out, "    tls:\n");
        if (nc->ca_file)
            err |= rg_buf_printf(out, "      ca_file: %s\n", nc->ca_file);
        if (nc->cert_file)
            err |= rg_buf_printf(out, "      cert_file: %s\n      key_file: %s\n",
                                 nc->cert_file, nc->key_file ? nc->key_file : "");
        if (nc->server_name)
            err |= rg_buf_printf(out, "      server_name: %s\n", nc->server_name);
        err |= rg_buf_printf(out, "      insecure_skip_verify: %s\n",
                             nc->insecure_skip_verify ? "true" : "false");
    }
    if (nc->basic_user)
        err |= rg_buf_printf(out, "    basic_auth:\n      username: %s\n", nc->basic_user) ||
               rg_buf_printf(out, "      password_file: %s\n",
                             nc->basic_password_file ? nc->basic_password_file : "");
    if (nc->bearer_token_file)
        err |= rg_buf_printf(out, "    bearer_token_file: %s\n", nc->bearer_token_file);
    if (nc->nheaders) {
        err |= rg_buf_puts(out, "    headers:\n");
        for (size_t i = 0; i < nc->nheaders; i++) {
            const char *h = nc->headers[i];
            size_t nlen = strcspn(h, ":");
            const char *val = h + nlen + (h[nlen] ? 2 : 0);
            err |= rg_buf_printf(out, "      %.*s: ", (int)nlen, h) ||
                   dump_quoted(out, sensitive_header(h, nlen) ? "<secret>" : val) ||
                   rg_buf_putc(out, '\n');
        }
    }
    if (nc->signing_secret_file)
        err |= rg_buf_printf(out, "    signing_secret_file: %s\n", nc->signing_secret_file);
    if (nc->routing_key_file)
        err |= rg_buf_printf(out, "    routing_key_file: %s\n", nc->routing_key_file);
    for (size_t i = 0; pd_keys[i]; i++) {
        const char *v = *pd_field((struct rg_notifier_config *)nc, pd_keys[i]);
        if (v)
            err |= rg_buf_printf(out, "    %s: ", pd_keys[i]) || dump_quoted(out, v) ||
                   rg_buf_putc(out, '\n');
    }
    if (nc->idempotency_header)
        err |= rg_buf_puts(out, "    idempotency_header: ") ||
               dump_quoted(out, nc->idempotency_header) || rg_buf_putc(out, '\n');
    err |= rg_buf_puts(out, "    retry:\n");
    err |= dump_duration(out, "  min_backoff", nc->retry.min_backoff_ms);
    err |= dump_duration(out, "  max_backoff", nc->retry.max_backoff_ms);
    err |= dump_duration(out, "  max_age", nc->retry.max_age_ms);
    if (nc->type == RG_NOTIFIER_ALERTMANAGER)
        err |= dump_duration(out, "resend_delay", nc->resend_delay_ms);
    err |= rg_buf_printf(out, "    max_in_flight: %u\n", nc->max_in_flight);
    return err ? RG_ENOMEM : 0;
}

int rg_notify_config_dump(const struct rg_notify_config *c, struct rg_buf *out)
{
    if (!c->n)
        return rg_buf_puts(out, "notifiers: []\n");
    if (rg_buf_puts(out, "notifiers:\n"))
        return RG_ENOMEM;
    for (size_t i = 0; i < c->n; i++)
        if (dump_one(&c->v[i], out))
            return RG_ENOMEM;
    return 0;
}

/* ---- facade: state ------------------------------------------------------------------- */

/* What an alertmanager notifier last sent for one alert. */
struct seen {
    uint64_t fp;                   /* label-set fingerprint (external labels included) */
    int64_t sent_ms;               /* wall time of the last send */
    int64_t starts_ms;             /* startsAt then: a new one is a new alert */
    int resolved;
    int used;
};

struct nstate {
    struct rg_notifier_config *cfg;  /* borrowed from the facade's configuration */
    struct seen *seen;               /* owned open-addressing table (alertmanager) */
    size_t seen_n, seen_cap;         /* cap: a power of two, or 0 */
};

struct rg_notify {
    uv_loop_t *loop;
    struct rg_curl_uv *cu;
    struct rg_dispatch *d;
    struct rg_notify_config cfg;     /* owned */
    struct nstate *ns;               /* owned, one per notifier */
    struct rg_label *ext;            /* owned strings: external labels */
    size_t next;
    char *ext_url;                   /* owned; "" when unset */
    struct rg_metrics_child *m_errors;   /* emit failures of the hooks */
    uv_timer_t test_timer;           /* notify-test deadline; test_timer.data = this */
    struct rg_notify_test_result *test_res;   /* owned while a test runs */
    uint64_t *test_ids;              /* outbox id of each notifier's test request */
    size_t test_pending;             /* notifiers without an outcome yet */
    int test_running;
    rg_notify_test_cb test_cb;
    void *test_ud;
    int closing;
    int close_pending;               /* handles and dispatcher still closing */
    void (*on_closed)(void *ud);
    void *on_closed_ud;
};

size_t rg_notify_count(const struct rg_notify *n)
{
    return n->cfg.n;
}

const struct rg_notifier_config *rg_notify_notifier(const struct rg_notify *n, size_t i)
{
    return i < n->cfg.n ? &n->cfg.v[i] : NULL;
}

/* ---- facade: alertmanager resend memory ------------------------------------------------ */

static struct seen *seen_find(struct nstate *s, uint64_t fp)
{
    if (!s->seen_cap)
        return NULL;
    for (size_t i = (size_t)fp & (s->seen_cap - 1);; i = (i + 1) & (s->seen_cap - 1)) {
        if (!s->seen[i].used)
            return NULL;
        if (s->seen[i].fp == fp)
            return &s->seen[i];
    }
}

/* Rebuilds the table without entries last sent before @cutoff_ms, at a size that
 * leaves room for @extra more. Returns 0 or RG_ENOMEM (the old table is kept). */
static int seen_rebuild(struct nstate *s, int64_t cutoff_ms, size_t extra)
{
    size_t live = 0, cap = 16;
    struct seen *t;

    for (size_t i = 0; i < s->seen_cap; i++)
        live += s->seen[i].used && s->seen[i].sent_ms >= cutoff_ms;
    while (cap < 2 * (live + extra))
        cap *= 2;
    if (!(t = calloc(cap, sizeof(*t))))
        return RG_ENOMEM;
    for (size_t i = 0; i < s->seen_cap; i++) {
        const struct seen *e = &s->seen[i];
        size_t j;
        if (!e->used || e->sent_ms < cutoff_ms)
            continue;
        for (j = (size_t)e->fp & (cap - 1); t[j].used; j = (j + 1) & (cap - 1))
            ;
        t[j] = *e;
    }
    free(s->seen);
    s->seen = t;
    s->seen_cap = cap;
    s->seen_n = live;
    return 0;
}

static int seen_put(struct nstate *s, uint64_t fp, int64_t now_ms, int64_t starts_ms,
                    int resolved)
{
    struct seen *e = seen_find(s, fp);
    size_t j;

    if (!e) {
        if (2 * (s->seen_n + 1) > s->seen_cap) {
            /* An entry can only matter while Prometheus would still resend: a firing
             * alert every resend delay, a resolved one for 15 minutes. */
            int64_t keep = 4 * s->cfg->resend_delay_ms;
            if (keep < RESOLVED_KEEP_MS)
                keep = RESOLVED_KEEP_MS;
            if (seen_rebuild(s, now_ms - keep, 1 + s->seen_n / 2))
                return RG_ENOMEM;
        }
        for (j = (size_t)fp & (s->seen_cap - 1); s->seen[j].used; j = (j + 1) & (s->seen_cap - 1))
            ;
        e = &s->seen[j];
        e->used = 1;
        e->fp = fp;
        s->seen_n++;
    }
    e->sent_ms = now_ms;
    e->starts_ms = starts_ms;
    e->resolved = resolved;
    return 0;
}

/* ---- facade: the requests of one call --------------------------------------------------- */

struct item {
    size_t notifier;               /* index into the facade's notifiers */
    struct rg_buf body;            /* owned */
    char key[RG_PAYLOAD_KEY_SIZE];
};

/* An alert an alertmanager notifier is about to send, remembered once it is durable. */
struct sent {
    size_t notifier;
    uint64_t fp;
    int64_t starts_ms;
    int resolved;
};

struct batch {
    struct item *v;                /* owned */
    size_t n, cap;
    struct sent *sent;             /* owned */
    size_t nsent, capsent;
};

static void batch_cleanup(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        rg_buf_cleanup(&b->v[i].body);
    free(b->v);
    free(b->sent);
    memset(b, 0, sizeof(*b));
}

static struct item *batch_add(struct batch *b, size_t notifier)
{
    struct item *it;

    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        void *p = realloc(b->v, cap * sizeof(*b->v));
        if (!p)
            return NULL;
        b->v = p;
        b->cap = cap;
    }
    it = &b->v[b->n++];
    memset(it, 0, sizeof(*it));
    it->notifier = notifier;
    return it;
}

/* A dedup key that can be sent as a header value as it is: visible ASCII only. */
static int header_safe(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len >= RG_PAYLOAD_KEY_SIZE)
        return 0;
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e)
            return 0;
    return 1;
}

/* Finishes @it with its idempotency key. A deployment event's key is its dedup key
 * (@event_key) when that is a safe header value, else a key over notifier and dedup
 * key; an alert request's key is a key over notifier and body. The signature of a
 * signed webhook is not made here: the dispatcher signs every attempt with the time
 * it is sent. */
static int item_finish(struct rg_notify *n, struct item *it, const char *event_key)
{
    const struct rg_notifier_config *nc = &n->cfg.v[it->notifier];
    const char *parts[3];
    int err;

    if (!it->body.data && rg_buf_reserve(&it->body, 1))
        return RG_ENOMEM;
    parts[0] = nc->name;
    parts[1] = event_key ? "event" : "alerts";
    parts[2] = event_key ? event_key : it->body.data;
    if (event_key && header_safe(event_key))
        snprintf(it->key, sizeof(it->key), "%s", event_key);
    else if ((err = rg_payload_idempotency_key(parts, 3, it->key)))
        return err;
    return 0;
}

/* Emits every item with one fsync; @ids_out (may be NULL) receives one id per item. */
static int batch_emit(struct rg_notify *n, struct batch *b, uint64_t *ids_out)
{
    struct rg_outbox_entry *e;
    int err;

    if (!b->n)
        return 0;
    e = calloc(b->n, sizeof(*e));
    if (!e)
        return RG_ENOMEM;
    for (size_t i = 0; i < b->n; i++) {
        struct item *it = &b->v[i];
        e[i].notifier = n->cfg.v[it->notifier].name;
        e[i].dedup_key = it->key;
        e[i].content_type = "application/json";
        e[i].payload = it->body.data;
        e[i].payload_len = it->body.len;
    }
    err = rg_dispatch_emit_batch(n->d, e, b->n, ids_out);
    free(e);
    if (err)
        rg_warn("event=notifications_emit_failed count=%zu err=%s", b->n, rg_err_name(err));
    else
        rg_debug("event=notifications_emitted count=%zu", b->n);
    return err;
}

/* ---- facade: alerts --------------------------------------------------------------------- */

static const char *alert_label(const struct rg_notify *n, const struct rg_notify_alert *a,
                               const char *name)
{
    for (size_t i = 0; i < a->nlabels; i++)
        if (!strcmp(a->labels[i].name, name) && a->labels[i].value && *a->labels[i].value)
            return a->labels[i].value;
    for (size_t i = 0; i < n->next; i++)
        if (!strcmp(n->ext[i].name, name))
            return n->ext[i].value;
    return "";
}

/* Every `match` item must hold (an absent label has the value ""). */
static int alert_passes(const struct rg_notify *n, const struct rg_notifier_filter *f,
                        const struct rg_notify_alert *a)
{
    for (size_t i = 0; i < f->nmatch; i++) {
        const struct rg_promql_node *sel = f->match[i];
        for (size_t j = 1; j < sel->u.sel.nmatchers; j++) {
            struct rg_promql_matcher *m = &sel->u.sel.matchers[j];
            const char *v = alert_label(n, a, m->name);
            int ok;
            switch (m->op) {
            case RG_MATCH_EQ:
                ok = !strcmp(v, m->value);
                break;
            case RG_MATCH_NE:
                ok = strcmp(v, m->value) != 0;
                break;
            case RG_MATCH_RE:
                ok = rg_promql_matcher_re_match(m, v, strlen(v));
                break;
            default:
                ok = !rg_promql_matcher_re_match(m, v, strlen(v));
                break;
            }
            if (!ok)
                return 0;
        }
    }
    return 1;
}

static int cmp_by_alertname(const void *x, const void *y, void *ud)
{
    const struct rg_notify_alert *a = *(const struct rg_notify_alert *const *)x;
    const struct rg_notify_alert *b = *(const struct rg_notify_alert *const *)y;
    const struct rg_notify *n = ud;
    int c = strcmp(alert_label(n, a, "alertname"), alert_label(n, b, "alertname"));

    /* Input order among equals keeps the sort stable: qsort_r is not. */
    return c ? c : (a < b ? -1 : a > b);
}

static int am_alerts(struct rg_notify *n, size_t ni, struct rg_notify_alert *sel, size_t cnt,
                     int64_t now_ms, int throttle, struct batch *b)
{
    struct nstate *s = &n->ns[ni];
    int64_t valid = 4 * s->cfg->resend_delay_ms;
    size_t keep = 0;

    for (size_t i = 0; i < cnt; i++) {
        struct rg_notify_alert *a = &sel[i];
        int resolved = rg_payload_alert_status(a, now_ms) == RG_NOTIFY_RESOLVED;
        uint64_t fp;

        if (rg_payload_fingerprint(a->labels, a->nlabels, n->ext, n->next, &fp))
            return RG_ENOMEM;
        if (throttle) {
            const struct seen *e = seen_find(s, fp);
            /* Prometheus' needsSending, per notifier: a change of status or a new
             * alert goes out at once, an unchanged one once the resend delay has
             * passed (strictly). */
            if (e && e->resolved == resolved && e->starts_ms == a->starts_at_ms &&
                !(e->sent_ms + s->cfg->resend_delay_ms < now_ms))
                continue;
            if (b->nsent == b->capsent) {
                size_t cap = b->capsent ? b->capsent * 2 : 16;
                void *p = realloc(b->sent, cap * sizeof(*b->sent));
                if (!p)
                    return RG_ENOMEM;
                b->sent = p;
                b->capsent = cap;
            }
            b->sent[b->nsent++] = (struct sent){ ni, fp, a->starts_at_ms, resolved };
        }
        if (!resolved && a->ends_at_ms && a->ends_at_ms < now_ms + valid)
            a->ends_at_ms = now_ms + valid;
        sel[keep++] = *a;
    }
    for (size_t i = 0; i < rg_payload_batch_count(keep, RG_PAYLOAD_AM_BATCH); i++) {
        size_t first, count;
        struct item *it = batch_add(b, ni);

        if (!it)
            return RG_ENOMEM;
        rg_payload_batch_range(keep, RG_PAYLOAD_AM_BATCH, i, &first, &count);
        if (rg_payload_alertmanager(sel + first, count, n->ext, n->next, &it->body) ||
            item_finish(n, it, NULL))
            return RG_ENOMEM;
    }
    return 0;
}

/* Webhook and Slack: one message per alertname group of at most 64 alerts. */
static int grouped_alerts(struct rg_notify *n, size_t ni, const struct rg_notify_alert **ptrs,
                          size_t cnt, int64_t now_ms, struct batch *b)
{
    const struct rg_notifier_config *nc = &n->cfg.v[ni];
    struct rg_notify_alert *run = calloc(cnt ? cnt : 1, sizeof(*run));
    int err = 0;

    if (!run)
        return RG_ENOMEM;
    qsort_r(ptrs, cnt, sizeof(*ptrs), cmp_by_alertname, n);
    for (size_t i = 0; i < cnt && !err;) {
        const char *name = alert_label(n, ptrs[i], "alertname");
        struct rg_label gl = { "alertname", name };
        struct rg_notify_group g = { 0 };
        size_t j = i, m;

        while (j < cnt && !strcmp(alert_label(n, ptrs[j], "alertname"), name))
            j++;
        m = j - i;
        for (size_t k = 0; k < m; k++)
            run[k] = *ptrs[i + k];
        g.receiver = nc->name;
        g.group_labels = *name ? &gl : NULL;
        g.ngroup_labels = *name ? 1 : 0;
        g.external_labels = n->ext;
        g.nexternal_labels = n->next;
        g.external_url = n->ext_url;
        for (size_t c = 0; c < rg_payload_batch_count(m, RG_PAYLOAD_AM_BATCH) && !err; c++) {
            size_t first, count;
            struct item *it = batch_add(b, ni);
            if (!it) {
                err = RG_ENOMEM;
                break;
            }
            rg_payload_batch_range(m, RG_PAYLOAD_AM_BATCH, c, &first, &count);
            err = nc->type == RG_NOTIFIER_SLACK
                      ? rg_payload_slack_alerts(&g, run + first, count, now_ms, &it->body)
                      : rg_payload_webhook_alerts(&g, run + first, count, now_ms, &it->body);
            if (!err)
                err = item_finish(n, it, NULL);
        }
        i = j;
    }
    free(run);
    return err;
}

static void pd_settings(const struct rg_notifier_config *nc, struct rg_notify_pagerduty *pd)
{
    memset(pd, 0, sizeof(*pd));
    pd->routing_key = nc->routing_key.data;
    pd->severity = nc->pd.severity;
    pd->source = nc->pd.source;
    pd->component = nc->pd.component;
    pd->group = nc->pd.group;
    pd->event_class = nc->pd.event_class;
    pd->client = nc->pd.client;
    pd->client_url = nc->pd.client_url;
}

/* PagerDuty: one event per alert, keyed by its own label set, so that each alert
 * opens and resolves its own incident whatever else is sent with it. */
static int pd_alerts(struct rg_notify *n, size_t ni, const struct rg_notify_alert **ptrs,
                     size_t cnt, int64_t now_ms, struct batch *b)
{
    const struct rg_notifier_config *nc = &n->cfg.v[ni];
    struct rg_notify_pagerduty pd;

    pd_settings(nc, &pd);
    for (size_t i = 0; i < cnt; i++) {
        struct rg_notify_group g = { 0 };
        struct item *it = batch_add(b, ni);

        if (!it)
            return RG_ENOMEM;
        g.receiver = nc->name;
        g.group_labels = ptrs[i]->labels;
        g.ngroup_labels = ptrs[i]->nlabels;
        g.external_labels = n->ext;
        g.nexternal_labels = n->next;
        g.external_url = n->ext_url;
        if (rg_payload_pagerduty_alerts(&pd, &g, ptrs[i], 1, now_ms, &it->body) ||
            item_finish(n, it, NULL))
            return RG_ENOMEM;
    }
    return 0;
}

/* Builds the requests of every notifier for @alerts into @b. @test: every notifier,
 * no filter or resend memory (notify-test). */
static int build_alerts(struct rg_notify *n, const struct rg_notify_alert *alerts, size_t count,
                        int64_t now_ms, int test, size_t only, struct batch *b)
{
    const struct rg_notify_alert **ptrs = calloc(count ? count : 1, sizeof(*ptrs));
    struct rg_notify_alert *sel = calloc(count ? count : 1, sizeof(*sel));
    int err = 0;

    if (!ptrs || !sel) {
        err = RG_ENOMEM;
        goto out;
    }
    for (size_t ni = 0; ni < n->cfg.n && !err; ni++) {
        const struct rg_notifier_config *nc = &n->cfg.v[ni];
        size_t cnt = 0;

        if (test ? ni != only : !nc->filter.alerts)
            continue;
        for (size_t i = 0; i < count; i++)
            if (test || alert_passes(n, &nc->filter, &alerts[i])) {
                ptrs[cnt] = &alerts[i];
                sel[cnt++] = alerts[i];
            }
        if (!cnt)
            continue;
        switch (nc->type) {
        case RG_NOTIFIER_ALERTMANAGER:
            err = am_alerts(n, ni, sel, cnt, now_ms, !test, b);
            break;
        case RG_NOTIFIER_PAGERDUTY:
            err = pd_alerts(n, ni, ptrs, cnt, now_ms, b);
            break;
        default:
            err = grouped_alerts(n, ni, ptrs, cnt, now_ms, b);
            break;
        }
    }
out:
    free(ptrs);
    free(sel);
    return err;
}

int rg_notify_alerts(struct rg_notify *n, const struct rg_notify_alert *alerts, size_t count,
                     int64_t now_ms)
{
    struct batch b = { 0 };
    int err;

    if (n->closing)
        return RG_ECANCELED;
    err = build_alerts(n, alerts, count, now_ms, 0, 0, &b);
    if (!err)
        err = batch_emit(n, &b, NULL);
    /* Only what is durable counts as sent: after a failure the next call tries again.
     * Without memory for an entry the alert is merely resent earlier. */
    for (size_t i = 0; !err && i < b.nsent; i++)
        seen_put(&n->ns[b.sent[i].notifier], b.sent[i].fp, now_ms, b.sent[i].starts_ms,
                 b.sent[i].resolved);
    batch_cleanup(&b);
    return err;
}

/* ---- facade: deployment events ----------------------------------------------------------- */

static int event_passes(const struct rg_notifier_filter *f, const struct rg_notify_deploy_event *ev)
{
    int ok;

    if (ev->kind == RG_NOTIFY_EVENT_TEST)
        return 1;
    if (!f->deployments)
        return 0;
    if (f->kinds && !(f->kinds & (1u << ev->kind)))
        return 0;
    if (f->verdicts) {
        unsigned bit = 0;
        if (!ev->verdict || parse_verdict(ev->verdict, &bit) || !(f->verdicts & bit))
            return 0;
    }
    if (!f->nnames)
        return 1;
    ok = 0;
    for (size_t i = 0; i < f->nnames && !ok; i++)
        ok = ev->deployment && !strcmp(f->names[i], ev->deployment);
    return ok;
}

static int build_event(struct rg_notify *n, const struct rg_notify_deploy_event *in, int test,
                       size_t only, struct batch *b)
{
    struct rg_notify_deploy_event ev = *in;
    char dedup[RG_PAYLOAD_KEY_SIZE];
    int err;

    if (!ev.dedup_key) {
        if ((err = rg_payload_deploy_dedup_key(&ev, dedup)))
            return err;
        ev.dedup_key = dedup;
    }
    for (size_t ni = 0; ni < n->cfg.n; ni++) {
        const struct rg_notifier_config *nc = &n->cfg.v[ni];
        struct rg_notify_pagerduty pd;
        struct item *it;

        if (test ? ni != only : (nc->type == RG_NOTIFIER_ALERTMANAGER ||
                                 !event_passes(&nc->filter, &ev)))
            continue;
        if (!(it = batch_add(b, ni)))
            return RG_ENOMEM;
        switch (nc->type) {
        case RG_NOTIFIER_PAGERDUTY:
            pd_settings(nc, &pd);
            err = rg_payload_pagerduty_event(&pd, &ev, &it->body);
            break;
        case RG_NOTIFIER_SLACK:
            err = rg_payload_slack_event(&ev, &it->body);
            break;
        default:
            err = rg_payload_webhook_event(&ev, &it->body);
            break;
        }
        if (!err)
            err = item_finish(n, it, ev.dedup_key);
        if (err)
            return err;
    }
    return 0;
}

int rg_notify_event(struct rg_notify *n, const struct rg_notify_deploy_event *ev)
{
    struct batch b = { 0 };
    int err;

    if (n->closing)
        return RG_ECANCELED;
    err = build_event(n, ev, 0, 0, &b);
    if (!err)
        err = batch_emit(n, &b, NULL);
    batch_cleanup(&b);
    return err;
}

/* ---- facade: hooks for the rules and deployments managers ---------------------------------- */

static void count_error(struct rg_notify *n)
{
    if (n->m_errors)
        n->m_errors->value += 1;
}

void rg_notify_rules_hook(const struct rg_rules_notification *alerts, size_t count, void *ud)
{
    struct rg_notify *n = ud;
    struct rg_notify_alert *a;
    int err;

    if (!n || !count)
        return;
    if (!(a = calloc(count, sizeof(*a)))) {
        err = RG_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < count; i++) {
        a[i].labels = alerts[i].labels;
        a[i].nlabels = alerts[i].nlabels;
        a[i].annotations = alerts[i].annotations;
        a[i].nannotations = alerts[i].nannotations;
        a[i].starts_at_ms = alerts[i].starts_at_ms;
        a[i].ends_at_ms = alerts[i].ends_at_ms;
        a[i].generator_url = alerts[i].generator_url;
    }
    err = rg_notify_alerts(n, a, count, rg_now_ms());
    free(a);
    if (!err)
        return;
fail:
    count_error(n);
    rg_error("event=alerts_not_emitted count=%zu err=%s", count, rg_err_name(err));
}

void rg_notify_deploy_hook(const struct rg_deploy_event *dev, void *ud)
{
    static const char *const ops[] = { "<", "<=", ">", ">=", "==", "!=" };
    static const char *const states[] = { "ok", "failing", "pending", "no_data", "firing" };
    struct rg_notify *n = ud;
    const struct rg_verdict *v = dev->state;
    struct rg_notify_deploy_event ev;
    struct rg_notify_check *checks = NULL;
    struct rg_buf url = { 0 };
    int err = 0;

    if (!n)
        return;
    memset(&ev, 0, sizeof(ev));
    switch (dev->kind) {
    case RG_DEPLOY_EVENT_PHASE_STARTED: ev.kind = RG_NOTIFY_EVENT_PHASE_STARTED; break;
    case RG_DEPLOY_EVENT_VERDICT: ev.kind = RG_NOTIFY_EVENT_VERDICT_CHANGED; break;
    case RG_DEPLOY_EVENT_PROMOTE: ev.kind = RG_NOTIFY_EVENT_PROMOTE; break;
    case RG_DEPLOY_EVENT_ROLLBACK: ev.kind = RG_NOTIFY_EVENT_ROLLBACK; break;
    case RG_DEPLOY_EVENT_HUMAN_TRIGGER: ev.kind = RG_NOTIFY_EVENT_HUMAN_TRIGGER; break;
    default: ev.kind = RG_NOTIFY_EVENT_RESET; break;
    }
    ev.deployment = dev->deployment;
    ev.phase = dev->phase;
    ev.verdict = (unsigned)dev->verdict < 4 ? verdict_names[dev->verdict] : NULL;
    ev.previous_verdict = (unsigned)dev->previous < 4 ? verdict_names[dev->previous] : NULL;
    ev.reason = dev->reason;
    ev.at_ms = dev->at_ms;
    /* The payload's dedup key (a SHA-256 over deployment, phase, kind, verdict and the
     * phase's start) identifies the same decision as the manager's readable key, and is
     * a safe header value whatever the deployment is called. */
    ev.dedup_key = NULL;
    ev.traffic_weight = NAN;
    if (v) {
        ev.phase_start_ms = v->phase_start_ms;
        if (v->cl && v->phase < v->cl->nphases)
            ev.traffic_weight = v->cl->phases[v->phase].traffic_weight;
        if (v->nchecks && !(checks = calloc(v->nchecks, sizeof(*checks)))) {
            err = RG_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < v->nchecks; i++) {
            const struct rg_verdict_check *c = &v->checks[i];
            const struct rg_checklist_check *sp = c->spec;
            checks[i].name = sp ? sp->name : NULL;
            checks[i].kind = sp && sp->kind == RG_CHECKLIST_TRIGGER ? RG_NOTIFY_CHECK_TRIGGER
                                                                     : RG_NOTIFY_CHECK_GATE;
            checks[i].signal = sp ? sp->signal : NULL;
            checks[i].value = c->has_value ? c->value : NAN;
            checks[i].op = sp && (unsigned)sp->op < 6 ? ops[sp->op] : NULL;
            checks[i].threshold = sp && sp->has_threshold ? sp->threshold : NAN;
            checks[i].state = (unsigned)c->state < 5 ? states[c->state] : NULL;
            checks[i].since_ms = c->since_ms;
            checks[i].has_baseline = sp && sp->has_baseline;
            checks[i].baseline = c->has_baseline ? c->baseline : NAN;
        }
        ev.checks = checks;
        ev.nchecks = v->nchecks;
    }
    if (*n->ext_url && dev->deployment) {
        if (rg_buf_printf(&url, "%s/api/v1/deployments/", n->ext_url) ||
            rg_http_urlencode(&url, dev->deployment, strlen(dev->deployment))) {
            err = RG_ENOMEM;
            goto out;
        }
        ev.url = url.data;
    }
    err = rg_notify_event(n, &ev);
out:
    free(checks);
    rg_buf_cleanup(&url);
    if (err) {
        count_error(n);
        rg_error("event=deployment_event_not_emitted deployment=%s kind=%s err=%s",
                 dev->deployment ? dev->deployment : "", rg_payload_event_kind_name(ev.kind),
                 rg_err_name(err));
    }
}

/* ---- facade: lifecycle ------------------------------------------------------------------ */

static void on_result(const struct rg_dispatch_result *r, void *ud);

static int copy_external(struct rg_notify *n, const struct rg_notify_opts *o)
{
    n->ext_url = strdup(o->external_url ? o->external_url : "");
    if (!n->ext_url)
        return RG_ENOMEM;
    /* No trailing '/': links are built by appending absolute paths. */
    for (size_t len = strlen(n->ext_url); len && n->ext_url[len - 1] == '/';)
        n->ext_url[--len] = 0;
    if (!o->nexternal)
        return 0;
    if (!(n->ext = calloc(o->nexternal, sizeof(*n->ext))))
        return RG_ENOMEM;
    for (size_t i = 0; i < o->nexternal; i++) {
        n->ext[i].name = strdup(o->external_labels[i].name ? o->external_labels[i].name : "");
        n->ext[i].value = strdup(o->external_labels[i].value ? o->external_labels[i].value : "");
        n->next++;
        if (!n->ext[i].name || !n->ext[i].value)
            return RG_ENOMEM;
    }
    return 0;
}

static void notify_free(struct rg_notify *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->cfg.n && n->ns; i++)
        free(n->ns[i].seen);
    free(n->ns);
    rg_notify_config_cleanup(&n->cfg);
    for (size_t i = 0; i < n->next; i++) {
        free((char *)n->ext[i].name);
        free((char *)n->ext[i].value);
    }
    free(n->ext);
    free(n->ext_url);
    free(n->test_res);
    free(n->test_ids);
    free(n);
}

int rg_notify_new(const struct rg_notify_opts *o, struct rg_notify_config *nc,
                  struct rg_notify **out)
{
    struct rg_dispatch_config dc;
    struct rg_notify *n;
    struct rg_buf path = { 0 };
    int err;

    *out = NULL;
    if (!(n = calloc(1, sizeof(*n)))) {
        rg_notify_config_cleanup(nc);
        return RG_ENOMEM;
    }
    n->cfg = *nc;
    memset(nc, 0, sizeof(*nc));
    if (!o->loop || !o->cu || !o->data_dir || !*o->data_dir) {
        err = RG_EINVAL;
        goto fail_args;
    }
    n->loop = o->loop;
    n->cu = o->cu;
    if ((err = copy_external(n, o)))
        goto fail_args;
    if (!(n->ns = calloc(n->cfg.n ? n->cfg.n : 1, sizeof(*n->ns)))) {
        err = RG_ENOMEM;
        goto fail_args;
    }
    for (size_t i = 0; i < n->cfg.n; i++)
        n->ns[i].cfg = &n->cfg.v[i];
    if (o->metrics) {
        struct rg_metrics_family *f = rg_metrics_family(
            o->metrics, "rollgate_notification_emit_errors_total",
            "Inputs (alert sets, deployment events) that could not be made durable.",
            RG_METRICS_COUNTER, NULL, 0, NULL, 0);
        if (!f || !(n->m_errors = rg_metrics_child(f, NULL))) {
            err = RG_ENOMEM;
            goto fail_args;
        }
    }
    if (rg_buf_printf(&path, "%s/notify.outbox", o->data_dir)) {
        err = RG_ENOMEM;
        goto fail_args;
    }
    memset(&dc, 0, sizeof(dc));
    rg_outbox_config_default(&dc.outbox);
    dc.outbox.path = path.data;
    dc.metrics = o->metrics;
    dc.seed = o->seed;
    dc.sync_interval_ms = o->sync_interval_ms;
    err = rg_dispatch_new(o->loop, o->cu, &dc, &n->d);
    rg_buf_cleanup(&path);
    if (err)
        goto fail_args;
    for (size_t i = 0; i < n->cfg.n; i++) {
        const struct rg_notifier_config *c = &n->cfg.v[i];
        struct rg_dispatch_notifier dn;

        memset(&dn, 0, sizeof(dn));
        dn.name = c->name;
        dn.url = c->send_url;
        dn.headers = (const char *const *)c->headers;
        dn.nheaders = c->nheaders;
        dn.tls.ca_file = c->ca_file;
        dn.tls.cert_file = c->cert_file;
        dn.tls.key_file = c->key_file;
        dn.tls.server_name = c->server_name;
        dn.tls.insecure_skip_verify = c->insecure_skip_verify;
        dn.basic_user = c->basic_user;
        dn.basic_password = c->basic_user ? (c->basic_password.data ? c->basic_password.data
                                                                     : "")
                                          : NULL;
        dn.bearer_token = c->bearer_token.data;
        dn.timeout_ms = c->timeout_ms;
        dn.max_in_flight = c->max_in_flight;
        dn.retry = c->retry;
        dn.idempotency_header = c->idempotency_header;
        dn.signing_secret = c->signing_secret.data;
        dn.signing_secret_len = c->signing_secret.data ? c->signing_secret.len : 0;
        if ((err = rg_dispatch_add_notifier(n->d, &dn))) {
            rg_error("event=notifier_not_registered notifier=%s err=%s",
                     c->name ? c->name : "", rg_err_name(err));
            goto fail_dispatch;
        }
    }
    rg_dispatch_on_result(n->d, on_result, n);
    if ((err = rg_dispatch_start(n->d)))
        goto fail_dispatch;
    uv_timer_init(o->loop, &n->test_timer);
    n->test_timer.data = n;
    rg_info("event=notifiers_started count=%zu", n->cfg.n);
    *out = n;
    return 0;

fail_dispatch:
    /* The dispatcher owns timers: it is freed from its close callbacks, which only
     * need the loop to run; nothing of @n is referenced by then. */
    rg_dispatch_on_result(n->d, NULL, NULL);
    rg_dispatch_close(n->d, NULL, NULL);
fail_args:
    notify_free(n);
    return err;
}

static void close_step(struct rg_notify *n)
{
    void (*cb)(void *) = n->on_closed;
    void *ud = n->on_closed_ud;

    if (--n->close_pending)
        return;
    notify_free(n);
    if (cb)
        cb(ud);
}

static void on_dispatch_closed(void *ud)
{
    close_step(ud);
}

static void on_timer_closed(uv_handle_t *h)
{
    close_step(h->data);
}

void rg_notify_close(struct rg_notify *n, void (*on_closed)(void *ud), void *ud)
{
    if (!n || n->closing)
        return;
    n->closing = 1;
    n->test_running = 0;
    n->on_closed = on_closed;
    n->on_closed_ud = ud;
    n->close_pending = 2;
    uv_timer_stop(&n->test_timer);
    uv_close((uv_handle_t *)&n->test_timer, on_timer_closed);
    rg_dispatch_close(n->d, on_dispatch_closed, n);
    n->d = NULL;
}

/* ---- facade: notify-test ------------------------------------------------------------------ */

static void test_finish(struct rg_notify *n)
{
    rg_notify_test_cb cb = n->test_cb;

    n->test_running = 0;
    uv_timer_stop(&n->test_timer);
    /* The results stay owned by @n until the next test or the close, so the callback
     * may close the facade. */
    cb(n->test_res, n->cfg.n, n->test_ud);
}

static void on_result(const struct rg_dispatch_result *r, void *ud)
{
    struct rg_notify *n = ud;

    if (!n->test_running)
        return;
    for (size_t i = 0; i < n->cfg.n; i++) {
        struct rg_notify_test_result *t = &n->test_res[i];

        if (n->test_ids[i] != r->id || t->attempted || strcmp(t->notifier, r->notifier))
            continue;
        t->attempted = 1;
        t->ok = r->outcome == RG_DISPATCH_SUCCESS;
        t->status = r->status;
        t->err = r->err;
        t->seconds = r->seconds;
        if (t->ok)
            t->detail[0] = 0;
        else if (r->status)
            snprintf(t->detail, sizeof(t->detail), "HTTP %d, %s", r->status,
                     r->outcome == RG_DISPATCH_RETRY ? "will be retried" : "rejected, not retried");
        else
            snprintf(t->detail, sizeof(t->detail), "%s, %s", rg_strerror(r->err),
                     r->outcome == RG_DISPATCH_RETRY ? "will be retried" : "not retried");
        if (--n->test_pending == 0)
            test_finish(n);
        return;
    }
}

static void on_test_deadline(uv_timer_t *t)
{
    struct rg_notify *n = t->data;

    if (n->test_running)
        test_finish(n);
}

int rg_notify_test(struct rg_notify *n, rg_notify_test_cb cb, void *ud)
{
    struct batch b = { 0 };
    int64_t now = rg_now_ms();
    uint64_t deadline = 0;
    int err = 0;

    if (n->closing)
        return RG_ECANCELED;
    if (n->test_running)
        return RG_EEXIST;
    free(n->test_res);
    free(n->test_ids);
    n->test_res = calloc(n->cfg.n ? n->cfg.n : 1, sizeof(*n->test_res));
    n->test_ids = calloc(n->cfg.n ? n->cfg.n : 1, sizeof(*n->test_ids));
    if (!n->test_res || !n->test_ids)
        return RG_ENOMEM;
    for (size_t i = 0; i < n->cfg.n && !err; i++) {
        const struct rg_notifier_config *nc = &n->cfg.v[i];
        struct rg_notify_test_result *t = &n->test_res[i];
        size_t before = b.n;

        t->notifier = nc->name;
        t->type = nc->type;
        rg_notifier_display_url(nc, t->url, sizeof(t->url));
        snprintf(t->detail, sizeof(t->detail), "no answer within %llu s",
                 (unsigned long long)((nc->timeout_ms + TEST_GRACE_MS + 999) / 1000));
        if (nc->timeout_ms + TEST_GRACE_MS > deadline)
            deadline = nc->timeout_ms + TEST_GRACE_MS;
        if (nc->type == RG_NOTIFIER_ALERTMANAGER) {
            struct rg_label labels[2] = { { "alertname", "RollgateNotifyTest" },
                                          { "notifier", nc->name } };
            struct rg_label ann[1] = {
                { "summary", "Test alert sent by rollgate notify-test; it resolves itself "
                             "after 5 minutes." },
            };
            struct rg_notify_alert a = { labels, 2, ann, 1, now, now + TEST_ALERT_MS, NULL };
            a.generator_url = *n->ext_url ? n->ext_url : NULL;
            err = build_alerts(n, &a, 1, now, 1, i, &b);
        } else {
            struct rg_notify_deploy_event ev;
            memset(&ev, 0, sizeof(ev));
            ev.kind = RG_NOTIFY_EVENT_TEST;
            ev.deployment = "rollgate-notify-test";
            ev.phase = "test";
            ev.phase_start_ms = now;
            ev.verdict = "hold";
            ev.previous_verdict = "hold";
            ev.reason = "Test notification sent by rollgate notify-test.";
            ev.at_ms = now;
            ev.traffic_weight = NAN;
            err = build_event(n, &ev, 1, i, &b);
        }
        if (!err && b.n != before + 1)
            err = RG_EINVAL;
    }
    if (!err && b.n) {
        uint64_t *ids = calloc(b.n, sizeof(*ids));
        if (!ids)
            err = RG_ENOMEM;
        else if (!(err = batch_emit(n, &b, ids)))
            for (size_t i = 0; i < b.n; i++)
                n->test_ids[b.v[i].notifier] = ids[i];
        free(ids);
    }
    batch_cleanup(&b);
    if (err)
        return err;
    n->test_cb = cb;
    n->test_ud = ud;
    n->test_pending = n->cfg.n;
    n->test_running = 1;
    if (!n->cfg.n) {
        /* Nothing to wait for; still answer from the loop, never from inside this call. */
        deadline = 0;
    }
    uv_timer_start(&n->test_timer, on_test_deadline, deadline, 0);
    return 0;
}

void rg_notify_test_print(const struct rg_notify_test_result *r, size_t n, FILE *out)
{
    size_t wn = 8, wu = 3;

    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(r[i].notifier ? r[i].notifier : "");
        if (l > wn)
            wn = l;
        if (strlen(r[i].url) > wu)
            wu = strlen(r[i].url);
    }
    fprintf(out, "%-*s  %-12s  %-*s  %-6s  %-6s  %-8s  %s\n", (int)wn, "NOTIFIER", "TYPE",
            (int)wu, "URL", "RESULT", "STATUS", "TIME", "DETAIL");
    for (size_t i = 0; i < n; i++) {
        char status[16] = "-", secs[16] = "-";
        if (r[i].status)
            snprintf(status, sizeof(status), "%d", r[i].status);
        if (r[i].attempted)
            snprintf(secs, sizeof(secs), "%.3fs", r[i].seconds);
        fprintf(out, "%-*s  %-12s  %-*s  %-6s  %-6s  %-8s  %s\n", (int)wn,
                r[i].notifier ? r[i].notifier : "", rg_notifier_type_name(r[i].type), (int)wu,
                r[i].url, r[i].ok ? "ok" : "FAILED", status, secs, r[i].detail);
    }
}

/* ---- notify-test as a command ------------------------------------------------------------ */

struct test_run {
    struct rg_curl_uv *cu;
    struct rg_notify *n;
    FILE *out;
    int answered;                  /* the results arrived */
    int failed;                    /* some notifier did not accept its test request */
};

static void run_closed(void *ud)
{
    struct test_run *tr = ud;

    rg_curl_uv_close(tr->cu, NULL, NULL);
    tr->cu = NULL;
}

static void run_results(const struct rg_notify_test_result *r, size_t n, void *ud)
{
    struct test_run *tr = ud;

    /* Printed here: the results borrow the notifier names from the facade. */
    rg_notify_test_print(r, n, tr->out);
    tr->answered = 1;
    for (size_t i = 0; i < n; i++)
        if (!r[i].ok)
            tr->failed = 1;
    rg_notify_close(tr->n, run_closed, tr);
    tr->n = NULL;
}

static void remove_outbox(const char *dir)
{
    char p[1200];

    snprintf(p, sizeof(p), "%s/notify.outbox", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/notify.outbox.compact", dir);
    unlink(p);
    rmdir(dir);
}

int rg_notify_test_run(const struct rg_config *cfg, const struct rg_notify_test_run_opts *o,
                       FILE *out)
{
    struct rg_notify_config nc;
    struct rg_notify_opts no;
    struct test_run tr;
    struct rg_buf err_buf = { 0 };
    const char *tmp = o && o->tmp_dir ? o->tmp_dir : getenv("TMPDIR");
    char dir[1024];
    uv_loop_t loop;
    int err;

    memset(&tr, 0, sizeof(tr));
    tr.out = out;
    err = rg_notify_config_parse(cfg, &nc, &err_buf);
    if (err) {
        fputs(err_buf.data ? err_buf.data : "", out);
        rg_buf_cleanup(&err_buf);
        rg_notify_config_cleanup(&nc);
        return err;
    }
    rg_buf_cleanup(&err_buf);
    if (!nc.n) {
        fprintf(out, "no notifiers configured\n");
        rg_notify_config_cleanup(&nc);
        return RG_ENOENT;
    }
    {
        /* mkdtemp() replaces the six trailing 'X' of its template. */
        int len = snprintf(dir, sizeof(dir) - 7, "%s/rollgate-notify-test-",
                           tmp && *tmp ? tmp : "/tmp");
        if (len < 0 || (size_t)len >= sizeof(dir) - 7)
            len = snprintf(dir, sizeof(dir) - 7, "/tmp/rollgate-notify-test-");
        memset(dir + len, 'X', 6);
        dir[len + 6] = 0;
    }
    if (!mkdtemp(dir)) {
        err = -errno;
        fprintf(out, "cannot create a directory for the test outbox: %s\n", strerror(errno));
        goto fail_dir;
    }
    if ((err = uv_loop_init(&loop)))
        goto fail_loop;
    if ((err = rg_curl_uv_new(&loop, &tr.cu)))
        goto fail_curl;
    memset(&no, 0, sizeof(no));
    no.loop = &loop;
    no.cu = tr.cu;
    no.data_dir = dir;
    if (o) {
        no.external_labels = o->external_labels;
        no.nexternal = o->nexternal;
        no.external_url = o->external_url;
    }
    if ((err = rg_notify_new(&no, &nc, &tr.n)))
        goto fail_notify;
    if ((err = rg_notify_test(tr.n, run_results, &tr))) {
        rg_notify_close(tr.n, run_closed, &tr);
        tr.n = NULL;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    remove_outbox(dir);
    if (err) {
        fprintf(out, "notify-test failed: %s\n", rg_strerror(err));
        return err;
    }
    return tr.failed || !tr.answered ? RG_EIO : 0;

fail_notify:
    fprintf(out, "cannot start the notifiers: %s\n", rg_strerror(err));
    rg_curl_uv_close(tr.cu, NULL, NULL);
fail_curl:
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
fail_loop:
    remove_outbox(dir);
fail_dir:
    rg_notify_config_cleanup(&nc);
    return err;
}
