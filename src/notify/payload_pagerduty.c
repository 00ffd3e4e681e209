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

/* The common tail of every event: payload fields after severity, client fields. */
struct pd_tail {
    int64_t timestamp_ms;
    const char *component;
    const char *group;
    const char *event_class;
    const char *client_url;
};

static int put_opt(struct rg_buf *out, const char *key, const char *v)
{
    int err;

    if (!v || !v[0])
        return 0;
    if ((err = rg_buf_printf(out, ",\"%s\":", key)))
        return err;
    return rg__pl_cstr(out, v);
}

/* Appends the head: {"routing_key","event_action","dedup_key","payload":{"summary",
 * "source","severity","timestamp"[,"component","group","class"],"custom_details": */
static int pd_head(struct rg_buf *out, const struct rg_notify_pagerduty *pd, int resolve,
                   const char *dedup, const char *summary, size_t summary_len,
                   const char *severity, const struct pd_tail *t)
{
    struct rg_buf s = { 0 };
    int err;

    if ((err = rg__pl_truncated(&s, summary, summary_len, RG_PAYLOAD_PD_SUMMARY_MAX)))
        goto out;
    if ((err = rg_buf_puts(out, "{\"routing_key\":")) ||
        (err = rg__pl_cstr(out, pd->routing_key)) ||
        (err = rg_buf_puts(out, ",\"event_action\":")) ||
        (err = rg_buf_puts(out, resolve ? "\"resolve\"" : "\"trigger\"")) ||
        (err = rg_buf_puts(out, ",\"dedup_key\":")) || (err = rg__pl_cstr(out, dedup)) ||
        (err = rg_buf_puts(out, ",\"payload\":{\"summary\":")) ||
        (err = rg__pl_str(out, s.data ? s.data : "", s.len)) ||
        (err = rg_buf_puts(out, ",\"source\":")) ||
        (err = rg__pl_cstr(out, str_default(pd->source, DEFAULT_SOURCE))) ||
        (err = rg_buf_puts(out, ",\"severity\":")) || (err = rg__pl_cstr(out, severity)) ||
        (err = rg_buf_puts(out, ",\"timestamp\":")) ||
        (err = rg__pl_time(out, t->timestamp_ms, 0)) ||
        (err = put_opt(out, "component", t->component)) ||
        (err = put_opt(out, "group", t->group)) || (err = put_opt(out, "class", t->event_class)))
        goto out;
    err = rg_buf_puts(out, ",\"custom_details\":");
out:
    rg_buf_cleanup(&s);
    return err;
}

static int pd_tail(struct rg_buf *out, const struct rg_notify_pagerduty *pd,
                   const struct pd_tail *t)
{
    int err;

    if ((err = rg_buf_puts(out, "},\"client\":")) ||
        (err = rg__pl_cstr(out, str_default(pd->client, DEFAULT_CLIENT))) ||
        (err = put_opt(out, "client_url", t->client_url)))
        return err;
    return rg_buf_putc(out, '}');
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
    char hash[RG_PAYLOAD_KEY_SIZE];
    const char *dedup = pd->dedup_key, *severity = pd->severity;
    struct pd_tail t = {
        .timestamp_ms = now_ms,
        .component = pd->component,
        .group = pd->group,
        .event_class = pd->event_class,
        .client_url = pd->client_url ? pd->client_url : (g ? g->external_url : NULL),
    };
    size_t mark = out->len;
    int err;

    if ((err = rg__pl_group_build(&gv, g, alerts, n, now_ms)))
        return err;
    if (!dedup) {
        struct rg_slice sl;

        /* notify.Key.Hash(): SHA-256 of the group key, so every notification of one
         * group lands in the same incident. */
        if ((err = rg__pl_group_key(&key, g, &gv)))
            goto out;
        sl.ptr = key.data ? key.data : "";
        sl.len = key.len;
        if ((err = rg__pl_sha256_hex(&sl, 1, hash)))
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
    if ((err = rg__pl_group_subject(&subject, &gv)))
        goto out;
    for (int full = 1; full >= 0; full--) {
        rewind_to(out, mark);
        if ((err = pd_head(out, pd, gv.firing == 0, dedup, subject.data ? subject.data : "",
                           subject.len, severity, &t)) ||
            (err = rg_buf_printf(out, "{\"num_firing\":%zu,\"num_resolved\":%zu", gv.firing,
                                 gv.resolved)))
            goto out;
        if (full) {
            if ((err = rg_buf_puts(out, ",\"alerts\":[")))
                goto out;
            for (size_t i = 0; i < n; i++)
                if ((i && (err = rg_buf_putc(out, ','))) ||
                    (err = rg__pl_webhook_alert(out, &gv, &alerts[i], i, now_ms)))
                    goto out;
            if ((err = rg_buf_putc(out, ']')))
                goto out;
        }
        if ((err = rg_buf_putc(out, '}')) || (err = pd_tail(out, pd, &t)))
            goto out;
        if (out->len - mark <= RG_PAYLOAD_PD_EVENT_MAX)
            break;
    }
out:
    rg_buf_cleanup(&subject);
    rg_buf_cleanup(&key);
    rg__pl_group_cleanup(&gv);
    return err;
}

int rg_payload_pagerduty_event(const struct rg_notify_pagerduty *pd,
                               const struct rg_notify_deploy_event *ev, struct rg_buf *out)
{
    struct rg_buf title = { 0 };
    char hash[RG_PAYLOAD_KEY_SIZE];
    const char *dedup = pd->dedup_key, *severity;
    const char *verdict = ev->verdict ? ev->verdict : "";
    struct pd_tail t = {
        .timestamp_ms = ev->at_ms,
        .component = str_default(pd->component, ev->deployment),
        .group = str_default(pd->group, ev->phase),
        .event_class = str_default(pd->event_class, rg_payload_event_kind_name(ev->kind)),
        .client_url = pd->client_url ? pd->client_url : ev->url,
    };
    size_t mark = out->len;
    int resolve = 0;
    int err;

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
    if (!dedup && ev->kind == RG_NOTIFY_EVENT_TEST) {
        dedup = ev->dedup_key;
        if (!dedup && (err = rg_payload_deploy_dedup_key(ev, hash)))
            return err;
    } else if (!dedup) {
        const char *parts[2] = { "rollgate-deployment", ev->deployment };

        /* One incident per deployment: the resolve must carry the key of the trigger
         * it closes, whatever phase or verdict came in between. */
        if ((err = rg_payload_idempotency_key(parts, 2, hash)))
            return err;
    }
    if (!dedup)
        dedup = hash;
    if ((err = rg__pl_event_title(&title, ev)))
        goto out;
    for (int full = 1; full >= 0; full--) {
        rewind_to(out, mark);
        if ((err = pd_head(out, pd, resolve, dedup, title.data ? title.data : "", title.len,
                           severity, &t)) ||
            (err = rg__pl_event_json(out, ev, full)) || (err = pd_tail(out, pd, &t)))
            goto out;
        if (out->len - mark <= RG_PAYLOAD_PD_EVENT_MAX)
            break;
    }
out:
    rg_buf_cleanup(&title);
    return err;
}
