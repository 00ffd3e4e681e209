/* notify/payload_pagerduty.c - PagerDuty Events API v2 events.
 *
 * One event per alert group or deployment event, shaped as the Events API v2 enqueue
 * request: routing_key, event_action (trigger or resolve), dedup_key, payload
 * {summary, source, severity, timestamp, component, group, class, custom_details},
 * client and client_url. For alerts the choices follow Alertmanager's PagerDuty
 * integration (dedup key = SHA-256 of the group key, resolve only when every alert
 * is resolved, severity "error" unless the alerts say otherwise). The summary is
 * limited to 1024 bytes cut on a UTF-8 boundary, which also keeps it within the
 * 1024-character limit; an event over PagerDuty's 512 KB limit is rebuilt with
 * only the summary counts in custom_details, as Alertmanager drops its details.
 */
#include "notify/payload.h"
#include "notify/payload_internal.h"
#include "util/err.h"

#include <string.h>
#include <strings.h>

#define DEFAULT_SOURCE "rollgate"
#define DEFAULT_CLIENT "rollgate"

static const char *str_default(const char *s, const char *dflt)
{
    return s && s[0] ? s : dflt;
}

/* Severity ranks, highest last, and the label values that map to them. */
static const char *const severities[] = { "info", "warning", "error", "critical" };

static int severity_rank(const char *v)
{
    static const struct { const char *name; int rank; } map[] = {
        { "info", 0 },    { "none", 0 },    { "informational", 0 },
        { "warning", 1 }, { "warn", 1 },
        { "error", 2 },   { "err", 2 },     { "major", 2 },
        { "critical", 3 }, { "crit", 3 },   { "page", 3 },     { "fatal", 3 },
    };

    for (size_t i = 0; v && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcasecmp(v, map[i].name) == 0)
            return map[i].rank;
    return -1;
}

/* What every event carries besides its action, key, summary, severity and details. */
struct pd_meta {
    int64_t timestamp_ms;
    const char *component;
    const char *group;
    const char *event_class;
    const char *client_url;
};

static void put_opt(struct rg__pl_w *w, const char *key, const char *v)
{
    if (!v || !v[0])
        return;
    rg__pl_printf(w, ",\"%s\":", key);
    rg__pl_s(w, v);
}

/* Writes {"routing_key","event_action","dedup_key","payload":{"summary","source",
 * "severity","timestamp"[,"component","group","class"],"custom_details": and leaves
 * the details to the caller. */
static void pd_head(struct rg__pl_w *w, const struct rg_notify_pagerduty *pd, int resolve,
                    const char *dedup, const struct rg_buf *summary, const char *severity,
                    const struct pd_meta *m)
{
    struct rg_buf cut = { 0 };

    if (!w->err)
        w->err = rg__pl_truncated(&cut, summary->data ? summary->data : "", summary->len,
                                  RG_PAYLOAD_PD_SUMMARY_MAX);
    rg__pl_raw(w, "{\"routing_key\":");
    rg__pl_s(w, pd->routing_key);
    rg__pl_raw(w, resolve ? ",\"event_action\":\"resolve\"" : ",\"event_action\":\"trigger\"");
    rg__pl_raw(w, ",\"dedup_key\":");
    rg__pl_s(w, dedup);
    rg__pl_raw(w, ",\"payload\":{\"summary\":");
    rg__pl_sn(w, cut.data, cut.len);
    rg__pl_raw(w, ",\"source\":");
    rg__pl_s(w, str_default(pd->source, DEFAULT_SOURCE));
    rg__pl_raw(w, ",\"severity\":");
    rg__pl_s(w, severity);
    rg__pl_raw(w, ",\"timestamp\":");
    rg__pl_ms(w, m->timestamp_ms, 0);
    put_opt(w, "component", m->component);
    put_opt(w, "group", m->group);
    put_opt(w, "class", m->event_class);
    rg__pl_raw(w, ",\"custom_details\":");
    rg_buf_cleanup(&cut);
}

/* Closes the payload and writes the client fields. */
static void pd_tail(struct rg__pl_w *w, const struct rg_notify_pagerduty *pd,
                    const struct pd_meta *m)
{
    rg__pl_raw(w, "},\"client\":");
    rg__pl_s(w, str_default(pd->client, DEFAULT_CLIENT));
    put_opt(w, "client_url", m->client_url);
    rg__pl_raw(w, "}");
}

/* Rewinds @out to @mark, dropping a body that came out too large. */
static void rewind_to(struct rg_buf *out, size_t mark)
{
    out->len = mark;
    if (out->data)
        out->data[mark] = '\0';
}

int rg_payload_pagerduty_alerts(const struct rg_notify_pagerduty *pd,
                                const struct rg_notify_group *g,
                                const struct rg_notify_alert *alerts, size_t n, int64_t now_ms,
                                struct rg_buf *out)
{
    struct rg__pl_group gv;
    struct rg_buf key = { 0 }, subject = { 0 };
    struct rg__pl_w w = { out, 0 };
    char hash[RG_PAYLOAD_KEY_SIZE];
    const char *dedup = pd->dedup_key, *severity = pd->severity;
    struct pd_meta m = {
        .timestamp_ms = now_ms,
        .component = pd->component,
        .group = pd->group,
        .event_class = pd->event_class,
        .client_url = pd->client_url ? pd->client_url : (g ? g->external_url : NULL),
    };
    size_t mark = out->len;

    if ((w.err = rg__pl_group_build(&gv, g, alerts, n, now_ms)))
        return w.err;
    if (!dedup) {
        struct rg_slice sl;

        /* notify.Key.Hash(): SHA-256 of the group key, so every notification of one
         * group lands in the same incident. */
        if ((w.err = rg__pl_group_key(&key, g, &gv)))
            goto out;
        sl.ptr = key.data ? key.data : "";
        sl.len = key.len;
        if ((w.err = rg__pl_sha256_hex(&sl, 1, hash)))
            goto out;
        dedup = hash;
    }
    if (!severity) {
        int best = -1;

        /* The most severe "severity" label among the firing alerts (all alerts once
         * resolved), so one critical alert in a group pages as critical. */
        for (size_t i = 0; i < n; i++) {
            int r;

            if (gv.firing && rg_payload_alert_status(&alerts[i], now_ms) != RG_NOTIFY_FIRING)
                continue;
            r = severity_rank(rg__pl_lset_get(&gv.labels[i], "severity"));
            if (r > best)
                best = r;
        }
        severity = best < 0 ? "error" : severities[best];
    }
    if ((w.err = rg__pl_group_subject(&subject, &gv)))
        goto out;
    for (int full = 1; full >= 0 && !w.err; full--) {
        rewind_to(out, mark);
        pd_head(&w, pd, gv.firing == 0, dedup, &subject, severity, &m);
        rg__pl_printf(&w, "{\"num_firing\":%zu,\"num_resolved\":%zu", gv.firing, gv.resolved);
        if (full) {
            rg__pl_raw(&w, ",\"alerts\":[");
            for (size_t i = 0; i < n; i++) {
                if (i)
                    rg__pl_raw(&w, ",");
                rg__pl_webhook_alert(&w, &gv, &alerts[i], i, now_ms);
            }
            rg__pl_raw(&w, "]");
        }
        rg__pl_raw(&w, "}");
        pd_tail(&w, pd, &m);
        if (out->len - mark <= RG_PAYLOAD_PD_EVENT_MAX)
            break;
    }
out:
    rg_buf_cleanup(&subject);
    rg_buf_cleanup(&key);
    rg__pl_group_cleanup(&gv);
    return w.err;
}

int rg_payload_pagerduty_event(const struct rg_notify_pagerduty *pd,
                               const struct rg_notify_deploy_event *ev, struct rg_buf *out)
{
    struct rg_buf title = { 0 };
    struct rg__pl_w w = { out, 0 };
    char hash[RG_PAYLOAD_KEY_SIZE], evkey[RG_PAYLOAD_KEY_SIZE];
    const char *dedup = pd->dedup_key, *evdedup = ev->dedup_key, *severity;
    const char *verdict = ev->verdict ? ev->verdict : "";
    struct pd_meta m = {
        .timestamp_ms = ev->at_ms,
        .component = str_default(pd->component, ev->deployment),
        .group = str_default(pd->group, ev->phase),
        .event_class = str_default(pd->event_class, rg_payload_event_kind_name(ev->kind)),
        .client_url = pd->client_url ? pd->client_url : ev->url,
    };
    size_t mark = out->len;
    int resolve = 0;

    switch (ev->kind) {
    case RG_NOTIFY_EVENT_ROLLBACK:
    case RG_NOTIFY_EVENT_HUMAN_TRIGGER:
        severity = "critical";
        break;
    case RG_NOTIFY_EVENT_TEST:
        severity = "info";
        break;
    case RG_NOTIFY_EVENT_VERDICT_CHANGED:
        if (strcmp(verdict, "rollback") == 0) {
            severity = "critical";
        } else if (strcmp(verdict, "inconclusive") == 0) {
            severity = "warning";
        } else {
            severity = "info";
            resolve = 1;
        }
        break;
    default:
        /* Promote, reset and a new phase close whatever the deployment had open. */
        severity = "info";
        resolve = 1;
        break;
    }
    if (pd->severity)
        severity = pd->severity;
    if (!evdedup) {
        if ((w.err = rg_payload_deploy_dedup_key(ev, evkey)))
            return w.err;
        evdedup = evkey;
    }
    if (!dedup && ev->kind == RG_NOTIFY_EVENT_TEST) {
        dedup = evdedup;
    } else if (!dedup) {
        const char *parts[2] = { "rollgate-deployment", ev->deployment };

        /* One incident per deployment: the resolve must carry the key of the trigger
         * it closes, whatever phase or verdict came in between. */
        if ((w.err = rg_payload_idempotency_key(parts, 2, hash)))
            return w.err;
        dedup = hash;
    }
    if ((w.err = rg__pl_event_title(&title, ev)))
        goto out;
    for (int full = 1; full >= 0 && !w.err; full--) {
        rewind_to(out, mark);
        pd_head(&w, pd, resolve, dedup, &title, severity, &m);
        rg__pl_event_json(&w, ev, evdedup, full);
        pd_tail(&w, pd, &m);
        if (out->len - mark <= RG_PAYLOAD_PD_EVENT_MAX)
            break;
    }
out:
    rg_buf_cleanup(&title);
    return w.err;
}
