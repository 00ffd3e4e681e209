/* api/rules.c - Prometheus' GET /api/v1/rules and GET /api/v1/alerts.
 *
 * The JSON mirrors web/api/v1 (RuleDiscovery, AlertDiscovery): groups with name,
 * file, rules, interval (seconds), limit, evaluationTime and lastEvaluation; alerting
 * rules with state, name, query, duration, keepFiringFor, labels, annotations,
 * alerts, health, lastError, evaluationTime, lastEvaluation and type "alerting";
 * recording rules with name, query, labels, health, lastError, evaluationTime,
 * lastEvaluation and type "recording". Alerts listed are the active ones (pending or
 * firing), with activeAt as RFC 3339 and the value as Go's strconv.FormatFloat(v,
 * 'e', -1, 64), as Prometheus writes it. Times are UTC. /api/v1/rules accepts
 * type=alert|record, rule_name[], rule_group[], file[] and exclude_alerts.
 */
#include "api/api.h"
#include "http/query.h"
#include "promql/kernels.h"
#include "rules/manager.h"
#include "util/err.h"
#include "util/json.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* RFC 3339 with the fraction trimmed, as Go's time.Time marshals: 0 is Go's zero time. */
static void put_time(struct rg_buf *out, int64_t ms)
{
    struct tm tm;
    time_t s;
    int64_t frac;
    char date[40];

    if (ms == 0) {
        rg_buf_puts(out, "\"0001-01-01T00:00:00Z\"");
        return;
    }
    s = (time_t)(ms / 1000);
    frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        s--;
    }
    if (!gmtime_r(&s, &tm)) {
        rg_buf_puts(out, "\"0001-01-01T00:00:00Z\"");
        return;
    }
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac == 0) {
        rg_buf_printf(out, "\"%sZ\"", date);
    } else {
        char f[8];
        int n = snprintf(f, sizeof(f), "%03d", (int)frac);
        while (n > 0 && f[n - 1] == '0')
            f[--n] = '\0';
        rg_buf_printf(out, "\"%s.%sZ\"", date, f);
    }
}

/* Go's strconv.FormatFloat(v, 'e', -1, 64): the shortest mantissa that reads back
 * exactly, exponent with a sign and at least two digits ("1e+00", "1.5e-07"). */
static void put_float_e(struct rg_buf *out, double v)
{
    char buf[40];

    if (isnan(v)) {
        rg_buf_puts(out, "NaN");
        return;
    }
    if (isinf(v)) {
        rg_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 0; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    rg_buf_puts(out, buf);
}

static void put_seconds(struct rg_buf *out, double s)
{
    rg_format_float(s, out);
}

static void put_kv_map(struct rg_buf *out, const struct rg_rule_kv *kv, size_t n)
{
    rg_buf_putc(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            rg_buf_putc(out, ',');
        rg_json_cstr(out, kv[i].name);
        rg_buf_putc(out, ':');
        rg_json_cstr(out, kv[i].value);
    }
    rg_buf_putc(out, '}');
}

static void put_alert(struct rg_buf *out, const struct rg_alert *a)
{
    rg_buf_puts(out, "{\"labels\":");
    rg__api_put_labels(out, a->labels, a->nlabels);
    rg_buf_puts(out, ",\"annotations\":");
    rg__api_put_labels(out, a->annotations, a->nannotations);
    rg_buf_printf(out, ",\"state\":\"%s\",\"activeAt\":", rg_alert_state_name(a->state));
    put_time(out, a->active_at);
    if (a->keep_firing_since) {
        rg_buf_puts(out, ",\"keepFiringSince\":");
        put_time(out, a->keep_firing_since);
    }
    rg_buf_puts(out, ",\"value\":\"");
    put_float_e(out, a->value);
    rg_buf_puts(out, "\"}");
}

/* Appends the active alerts of @rs; returns how many. */
static size_t put_alerts(struct rg_buf *out, const struct rg_rule_state *rs, size_t already)
{
    size_t n = 0;
    for (size_t i = 0; i < rs->alerts.n; i++) {
        const struct rg_alert *a = &rs->alerts.alerts[i];
        if (a->state == RG_ALERT_INACTIVE)
            continue;
        if (already + n)
            rg_buf_putc(out, ',');
        put_alert(out, a);
        n++;
    }
    return n;
}

/* Values of a repeated parameter. */
struct strset {
    char **v;
    size_t n;
};

static void strset_free(struct strset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

static int strset_load(struct rg_slice qs, const char *name, struct strset *s)
{
    size_t n = 0;
    int rc = rg_http_query_count(qs, name, &n);

    memset(s, 0, sizeof(*s));
    if (rc || n == 0)
        return rc;
    if (!(s->v = calloc(n, sizeof(*s->v))))
        return RG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct rg_buf b = { 0 };
        if ((rc = rg_http_query_get(qs, name, i, &b))) {
            rg_buf_cleanup(&b);
            return rc;
        }
        s->v[s->n] = strdup(b.data ? b.data : "");
        rg_buf_cleanup(&b);
        if (!s->v[s->n++])
            return RG_ENOMEM;
    }
    return 0;
}

static int strset_has(const struct strset *s, const char *v)
{
    if (s->n == 0)
        return 1;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], v) == 0)
            return 1;
    return 0;
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct rg_label *)a)->name, ((const struct rg_label *)b)->name);
}

static void put_rule(struct rg_buf *out, const struct rg_rules_group *g,
                     const struct rg_rule_state *rs, int with_alerts)
{
    const struct rg_rule *r = rs->rule;
    struct rg_label *merged = NULL;
    size_t nmerged = 0;

    /* Group labels apply to every rule; the rule's own labels win. */
    if (g->def->nlabels) {
        merged = calloc(g->def->nlabels + r->nlabels, sizeof(*merged));
        if (merged) {
            for (size_t i = 0; i < g->def->nlabels; i++) {
                size_t k;
                for (k = 0; k < r->nlabels; k++)
                    if (strcmp(r->labels[k].name, g->def->labels[i].name) == 0)
                        break;
                if (k == r->nlabels)
                    merged[nmerged++] = (struct rg_label){ g->def->labels[i].name,
                                                           g->def->labels[i].value };
            }
            for (size_t k = 0; k < r->nlabels; k++)
                merged[nmerged++] = (struct rg_label){ r->labels[k].name, r->labels[k].value };
            /* Go marshals maps with sorted keys. */
            if (nmerged > 1)
                qsort(merged, nmerged, sizeof(*merged), label_cmp);
        }
    }
    if (r->type == RG_RULE_ALERT) {
        enum rg_alert_state st = RG_ALERT_INACTIVE;
        for (size_t i = 0; i < rs->alerts.n; i++)
            if (rs->alerts.alerts[i].state > st)
                st = rs->alerts.alerts[i].state;
        rg_buf_printf(out, "{\"state\":\"%s\",\"name\":", rg_alert_state_name(st));
        rg_json_cstr(out, r->name);
        rg_buf_puts(out, ",\"query\":");
        rg_json_cstr(out, rs->query);
        rg_buf_puts(out, ",\"duration\":");
        put_seconds(out, (double)r->for_ms / 1000);
        rg_buf_puts(out, ",\"keepFiringFor\":");
        put_seconds(out, (double)r->keep_firing_for_ms / 1000);
        rg_buf_puts(out, ",\"labels\":");
        if (merged)
            rg__api_put_labels(out, merged, nmerged);
        else
            put_kv_map(out, r->labels, r->nlabels);
        rg_buf_puts(out, ",\"annotations\":");
        put_kv_map(out, r->annotations, r->nannotations);
        if (with_alerts) {
            rg_buf_puts(out, ",\"alerts\":[");
            put_alerts(out, rs, 0);
            rg_buf_putc(out, ']');
        }
    } else {
        rg_buf_puts(out, "{\"name\":");
        rg_json_cstr(out, r->name);
        rg_buf_puts(out, ",\"query\":");
        rg_json_cstr(out, rs->query);
        /* Prometheus omits a recording rule's empty label set. */
        if (merged && nmerged) {
            rg_buf_puts(out, ",\"labels\":");
            rg__api_put_labels(out, merged, nmerged);
        } else if (r->nlabels) {
            rg_buf_puts(out, ",\"labels\":");
            put_kv_map(out, r->labels, r->nlabels);
        }
    }
    free(merged);
    rg_buf_printf(out, ",\"health\":\"%s\"", rg_rule_health_name(rs->health));
    if (rs->last_error) {
        rg_buf_puts(out, ",\"lastError\":");
        rg_json_cstr(out, rs->last_error);
    }
    rg_buf_puts(out, ",\"evaluationTime\":");
    put_seconds(out, rs->eval_seconds);
    rg_buf_puts(out, ",\"lastEvaluation\":");
    put_time(out, rs->last_eval_ms);
    rg_buf_printf(out, ",\"type\":\"%s\"}", r->type == RG_RULE_ALERT ? "alerting" : "recording");
}

static int parse_bool(const char *s, int *out)
{
    static const char *const t[] = { "1", "t", "T", "true", "TRUE", "True" };
    static const char *const f[] = { "0", "f", "F", "false", "FALSE", "False" };
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(s, t[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(s, f[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return RG_EINVAL;
}

static void handle_rules(struct rg_api *api, struct rg_http_request *req,
                         struct rg_http_response *res)
{
    struct rg_buf type = { 0 }, excl = { 0 };
    struct strset names, groups_f, files;
    const struct rg_rules_group *groups;
    size_t ngroups, emitted = 0;
    int want_alert = 1, want_record = 1, with_alerts = 1, rc;

    memset(&names, 0, sizeof(names));
    memset(&groups_f, 0, sizeof(groups_f));
    memset(&files, 0, sizeof(files));
    rc = rg_http_query_get(req->query, "type", 0, &type);
    if (rc == 0 && type.len) {
        for (size_t i = 0; i < type.len; i++)
            type.data[i] = (char)tolower((unsigned char)type.data[i]);
        if (strcmp(type.data, "alert") == 0) {
            want_record = 0;
        } else if (strcmp(type.data, "record") == 0) {
            want_alert = 0;
        } else {
            rg__api_error(res, 400, "bad_data", "invalid parameter \"type\": not supported "
                          "value \"%s\"", type.data);
            goto done;
        }
    } else if (rc == RG_EBADMSG) {
        rg__api_error(res, 400, "bad_data", "invalid query string");
        goto done;
    }
    rc = rg_http_query_get(req->query, "exclude_alerts", 0, &excl);
    if (rc == 0 && excl.len) {
        int b;
        if (parse_bool(excl.data, &b)) {
            rg__api_error(res, 400, "bad_data", "invalid parameter \"exclude_alerts\": "
                          "strconv.ParseBool: parsing \"%s\": invalid syntax", excl.data);
            goto done;
        }
        with_alerts = !b;
    }
    if (strset_load(req->query, "rule_name[]", &names) ||
        strset_load(req->query, "rule_group[]", &groups_f) ||
        strset_load(req->query, "file[]", &files)) {
        rg__api_error(res, 400, "bad_data", "invalid query string");
        goto done;
    }
    rg__api_success_begin(res);
    rg_buf_puts(&res->body, "{\"groups\":[");
    groups = rg_rules_groups(api->rules, &ngroups);
    for (size_t i = 0; i < ngroups; i++) {
        const struct rg_rules_group *g = &groups[i];
        size_t start = res->body.len, nrules = 0;
        if (!strset_has(&groups_f, g->def->name) || !strset_has(&files, g->def->file))
            continue;
        if (emitted)
            rg_buf_putc(&res->body, ',');
        rg_buf_puts(&res->body, "{\"name\":");
        rg_json_cstr(&res->body, g->def->name);
        rg_buf_puts(&res->body, ",\"file\":");
        rg_json_cstr(&res->body, g->def->file);
        rg_buf_puts(&res->body, ",\"rules\":[");
        for (size_t k = 0; k < g->nrules; k++) {
            const struct rg_rule_state *rs = &g->rules[k];
            if ((rs->rule->type == RG_RULE_ALERT && !want_alert) ||
                (rs->rule->type == RG_RULE_RECORD && !want_record) ||
                !strset_has(&names, rs->rule->name))
                continue;
            if (nrules++)
                rg_buf_putc(&res->body, ',');
            put_rule(&res->body, g, rs, with_alerts);
        }
        /* With a rule filter, groups left without rules are not listed. */
        if (nrules == 0 && (names.n || !want_alert || !want_record)) {
            res->body.len = start;
            res->body.data[start] = '\0';
            continue;
        }
        rg_buf_puts(&res->body, "],\"interval\":");
        put_seconds(&res->body, (double)g->interval_ms / 1000);
        rg_buf_printf(&res->body, ",\"limit\":%lld,\"evaluationTime\":",
                      (long long)g->def->limit);
        put_seconds(&res->body, g->eval_seconds);
        rg_buf_puts(&res->body, ",\"lastEvaluation\":");
        put_time(&res->body, g->last_eval_ms);
        rg_buf_putc(&res->body, '}');
        emitted++;
    }
    rg_buf_puts(&res->body, "]}}");

done:
    rg_buf_cleanup(&type);
    rg_buf_cleanup(&excl);
    strset_free(&names);
    strset_free(&groups_f);
    strset_free(&files);
}

static void handle_alerts(struct rg_api *api, struct rg_http_response *res)
{
    const struct rg_rules_group *groups;
    size_t ngroups, n = 0;

    rg__api_success_begin(res);
    rg_buf_puts(&res->body, "{\"alerts\":[");
    groups = rg_rules_groups(api->rules, &ngroups);
    for (size_t i = 0; i < ngroups; i++)
        for (size_t k = 0; k < groups[i].nrules; k++)
            n += put_alerts(&res->body, &groups[i].rules[k], n);
    rg_buf_puts(&res->body, "]}}");
}

int rg__api_rules_route(struct rg_api *api, struct rg_http_request *req,
                        struct rg_http_response *res)
{
    int rules = rg_slice_eq(req->path, "/api/v1/rules");
    int alerts = rg_slice_eq(req->path, "/api/v1/alerts");

    if (!rules && !alerts)
        return 0;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        rg_http_response_header(res, "Allow", "GET, HEAD");
        rg__api_text(res, 405, "method %s not allowed", req->method);
        return 1;
    }
    if (rules)
        handle_rules(api, req, res);
    else
        handle_alerts(api, res);
    return 1;
}
