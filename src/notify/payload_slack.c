/* notify/payload_slack.c - Slack incoming-webhook messages.
 *
 * A message is {"text": <one line>, "attachments": [{"color", "fallback", "blocks"}]}:
 * the top-level text is what notifications and clients without blocks show, and the
 * attachment carries the colour bar (only attachments have one) around Block Kit
 * blocks. Slack rejects blocks over its limits, so every piece of text is bounded
 * before it is written: header text 150 characters, section text 3000, field text
 * 2000, at most 10 fields. Check lists longer than a section are cut at a whole line
 * and end with "… and N more". Text is escaped for mrkdwn (&, <, > as entities), as
 * Slack's formatting guide asks, before JSON escaping.
 */
#include "notify/payload.h"
#include "notify/payload_internal.h"
#include "util/err.h"

#include <math.h>
#include <string.h>

#define HEADER_MAX  150
#define SECTION_MAX 3000
#define FIELD_MAX   2000
/* Room kept free in a section for the "… and N more" line. */
#define SECTION_RESERVE 64

#define COLOR_PROMOTE      "#2eb67d"
#define COLOR_HOLD         "#439fe0"
#define COLOR_INCONCLUSIVE "#ecb22e"
#define COLOR_ROLLBACK     "#e01e5a"

/* Appends @s with Slack's three control characters replaced by entities. */
static int put_escaped(struct rg_buf *out, const char *s)
{
    int err = 0;

    for (; s && *s && !err; s++) {
        if (*s == '&')
            err = rg_buf_puts(out, "&amp;");
        else if (*s == '<')
            err = rg_buf_puts(out, "&lt;");
        else if (*s == '>')
            err = rg_buf_puts(out, "&gt;");
        else
            err = rg_buf_putc(out, *s);
    }
    return err;
}

/* Writes @text (@len bytes), bounded to @max bytes, as a JSON string. */
static int put_bounded(struct rg_buf *out, const char *text, size_t len, size_t max)
{
    struct rg_buf t = { 0 };
    int err = rg__pl_truncated(&t, text ? text : "", text ? len : 0, max);

    if (!err)
        err = rg__pl_str(out, t.data ? t.data : "", t.len);
    rg_buf_cleanup(&t);
    return err;
}

/* {"type":"mrkdwn","text":...} (a section field or context element). */
static int put_mrkdwn(struct rg_buf *out, const struct rg_buf *text, size_t max)
{
    int err = rg_buf_puts(out, "{\"type\":\"mrkdwn\",\"text\":");

    if (!err)
        err = put_bounded(out, text->data, text->len, max);
    return err ? err : rg_buf_putc(out, '}');
}

/* A section block holding one mrkdwn text. */
static int put_section(struct rg_buf *out, const struct rg_buf *text)
{
    int err = rg_buf_puts(out, ",{\"type\":\"section\",\"text\":");

    if (!err)
        err = put_mrkdwn(out, text, SECTION_MAX);
    return err ? err : rg_buf_putc(out, '}');
}

static const char *verdict_color(const char *verdict)
{
    if (!verdict)
        return COLOR_HOLD;
    if (strcmp(verdict, "promote") == 0)
        return COLOR_PROMOTE;
    if (strcmp(verdict, "rollback") == 0)
        return COLOR_ROLLBACK;
    if (strcmp(verdict, "inconclusive") == 0)
        return COLOR_INCONCLUSIVE;
    return COLOR_HOLD;
}

static int put_value(struct rg_buf *out, double v)
{
    int err;

    if (isnan(v))
        return rg_buf_puts(out, "no data");
    if ((err = rg_buf_putc(out, '`')) || (err = rg__pl_number(out, v)))
        return err;
    return rg_buf_putc(out, '`');
}

/* One line of the checks section: "• *name* (trigger, firing since <time>): `v` > `t`". */
static int check_line(struct rg_buf *line, const struct rg_notify_check *c)
{
    int err;

    if ((err = rg_buf_puts(line, "\xe2\x80\xa2 *")) || (err = put_escaped(line, c->name)) ||
        (err = rg_buf_puts(line, "* (")) ||
        (err = rg_buf_puts(line, c->kind == RG_NOTIFY_CHECK_TRIGGER ? "trigger, " : "gate, ")) ||
        (err = put_escaped(line, c->state ? c->state : "unknown")))
        return err;
    if (c->since_ms &&
        ((err = rg_buf_puts(line, " since ")) || (err = rg_payload_rfc3339_ms(c->since_ms, line))))
        return err;
    if ((err = rg_buf_puts(line, "): ")) || (err = put_value(line, c->value)) ||
        (err = rg_buf_putc(line, ' ')) || (err = put_escaped(line, c->op ? c->op : "?")) ||
        (err = rg_buf_putc(line, ' ')) || (err = put_value(line, c->threshold)))
        return err;
    return rg_buf_putc(line, '\n');
}

/* The checks section: every check whose state is not "ok", whole lines only. */
static int checks_text(struct rg_buf *text, const struct rg_notify_deploy_event *ev)
{
    struct rg_buf line = { 0 };
    size_t shown = 0, bad = 0;
    int err;

    for (size_t i = 0; i < ev->nchecks; i++)
        if (!ev->checks[i].state || strcmp(ev->checks[i].state, "ok") != 0)
            bad++;
    if (bad == 0) {
        if (ev->nchecks == 0)
            return rg_buf_puts(text, "*Checks*\nnone configured");
        return rg_buf_printf(text, "*Checks*\nall %zu ok", ev->nchecks);
    }
    if ((err = rg_buf_printf(text, "*Checks not ok (%zu of %zu)*\n", bad, ev->nchecks)))
        return err;
    for (size_t i = 0; i < ev->nchecks; i++) {
        const struct rg_notify_check *c = &ev->checks[i];

        if (c->state && strcmp(c->state, "ok") == 0)
            continue;
        rg_buf_reset(&line);
        if ((err = check_line(&line, c)))
            goto out;
        if (text->len + line.len > SECTION_MAX - SECTION_RESERVE)
            break;
        if ((err = rg_buf_append(text, line.data, line.len)))
            goto out;
        shown++;
    }
    if (shown < bad)
        err = rg_buf_printf(text, "\xe2\x80\xa6 and %zu more\n", bad - shown);
out:
    rg_buf_cleanup(&line);
    return err;
}

int rg_payload_slack_event(const struct rg_notify_deploy_event *ev, struct rg_buf *out)
{
    struct rg_buf title = { 0 }, t = { 0 };
    char key[RG_PAYLOAD_KEY_SIZE];
    const char *dedup = ev->dedup_key;
    int err;

    if (!dedup) {
        if ((err = rg_payload_deploy_dedup_key(ev, key)))
            return err;
        dedup = key;
    }
    if ((err = rg__pl_event_title(&title, ev)))
        goto out;
    /* The top-level text is not mrkdwn-escaped by Slack either: escape it too. */
    if ((err = put_escaped(&t, title.data)))
        goto out;
    if ((err = rg_buf_puts(out, "{\"text\":")) ||
        (err = put_bounded(out, t.data, t.len, SECTION_MAX)) ||
        (err = rg_buf_puts(out, ",\"attachments\":[{\"color\":\"")) ||
        (err = rg_buf_puts(out, verdict_color(ev->verdict))) ||
        (err = rg_buf_puts(out, "\",\"fallback\":")) ||
        (err = put_bounded(out, t.data, t.len, SECTION_MAX)) ||
        (err = rg_buf_puts(out, ",\"blocks\":[{\"type\":\"header\",\"text\":"
                                "{\"type\":\"plain_text\",\"text\":")) ||
        (err = put_bounded(out, title.data, title.len, HEADER_MAX)) ||
        (err = rg_buf_puts(out, "}},{\"type\":\"section\",\"fields\":[")))
        goto out;

    /* Fields: deployment, phase, verdict, traffic. */
    rg_buf_reset(&t);
    if ((err = rg_buf_puts(&t, "*Deployment*\n")) || (err = put_escaped(&t, ev->deployment)) ||
        (err = put_mrkdwn(out, &t, FIELD_MAX)) || (err = rg_buf_putc(out, ',')))
        goto out;
    rg_buf_reset(&t);
    if ((err = rg_buf_puts(&t, "*Phase*\n")) || (err = put_escaped(&t, ev->phase)) ||
        (err = put_mrkdwn(out, &t, FIELD_MAX)) || (err = rg_buf_putc(out, ',')))
        goto out;
    rg_buf_reset(&t);
    if ((err = rg_buf_puts(&t, "*Verdict*\n")) ||
        (err = put_escaped(&t, ev->verdict ? ev->verdict : "unknown")))
        goto out;
    if (ev->previous_verdict && ev->previous_verdict[0] &&
        ((err = rg_buf_puts(&t, " (was ")) || (err = put_escaped(&t, ev->previous_verdict)) ||
         (err = rg_buf_putc(&t, ')'))))
        goto out;
    if ((err = put_mrkdwn(out, &t, FIELD_MAX)) || (err = rg_buf_putc(out, ',')))
        goto out;
    rg_buf_reset(&t);
    if ((err = rg_buf_puts(&t, "*Traffic*\n")))
        goto out;
    if (isnan(ev->traffic_weight))
        err = rg_buf_puts(&t, "unknown");
    else if (!(err = rg__pl_number(&t, ev->traffic_weight)))
        err = rg_buf_putc(&t, '%');
    if (err || (err = put_mrkdwn(out, &t, FIELD_MAX)) || (err = rg_buf_puts(out, "]}")))
        goto out;

    if (ev->reason && ev->reason[0]) {
        rg_buf_reset(&t);
        if ((err = rg_buf_puts(&t, "*Reason*\n")) || (err = put_escaped(&t, ev->reason)) ||
            (err = put_section(out, &t)))
            goto out;
    }
    rg_buf_reset(&t);
    if ((err = checks_text(&t, ev)) || (err = put_section(out, &t)))
        goto out;

    rg_buf_reset(&t);
    if ((err = rg_buf_puts(&t, rg_payload_event_kind_name(ev->kind))) ||
        (err = rg_buf_puts(&t, " \xc2\xb7 ")) || (err = rg_payload_rfc3339_ms(ev->at_ms, &t)) ||
        (err = rg_buf_puts(&t, " \xc2\xb7 key ")) || (err = put_escaped(&t, dedup)))
        goto out;
    if (ev->url && ev->url[0] &&
        ((err = rg_buf_puts(&t, " \xc2\xb7 <")) || (err = put_escaped(&t, ev->url)) ||
         (err = rg_buf_puts(&t, "|details>"))))
        goto out;
    if ((err = rg_buf_puts(out, ",{\"type\":\"context\",\"elements\":[")) ||
        (err = put_mrkdwn(out, &t, FIELD_MAX)) || (err = rg_buf_puts(out, "]}]}]}")))
        goto out;
out:
    rg_buf_cleanup(&t);
    rg_buf_cleanup(&title);
    return err;
}

/* One line per alert: its summary annotation, or else its labels. */
static int alert_line(struct rg_buf *line, const struct rg__pl_group *gv,
                      const struct rg_notify_alert *a, size_t i, int64_t now_ms)
{
    const char *summary = rg__pl_lset_get(&gv->annotations[i], "summary");
    int err;

    if ((err = rg_buf_puts(line, "\xe2\x80\xa2 [")) ||
        (err = rg_buf_puts(line, rg_payload_status_name(rg_payload_alert_status(a, now_ms)))) ||
        (err = rg_buf_puts(line, "] ")))
        return err;
    if (summary)
        err = put_escaped(line, summary);
    for (size_t j = 0; !summary && !err && j < gv->labels[i].n; j++) {
        const struct rg_label *l = gv->labels[i].v[j];

        if ((j && (err = rg_buf_putc(line, ' '))) || (err = put_escaped(line, l->name)) ||
            (err = rg_buf_putc(line, '=')))
            break;
        err = put_escaped(line, l->value);
    }
    return err ? err : rg_buf_putc(line, '\n');
}

int rg_payload_slack_alerts(const struct rg_notify_group *g, const struct rg_notify_alert *alerts,
                            size_t n, int64_t now_ms, struct rg_buf *out)
{
    struct rg__pl_group gv;
    struct rg_buf subject = { 0 }, t = { 0 }, line = { 0 };
    size_t shown = 0;
    int err;

    if ((err = rg__pl_group_build(&gv, g, alerts, n, now_ms)))
        return err;
    if ((err = rg__pl_group_subject(&subject, &gv)) || (err = put_escaped(&t, subject.data)))
        goto out;
    if ((err = rg_buf_puts(out, "{\"text\":")) ||
        (err = put_bounded(out, t.data, t.len, SECTION_MAX)) ||
        (err = rg_buf_puts(out, ",\"attachments\":[{\"color\":\"")) ||
        (err = rg_buf_puts(out, gv.firing ? COLOR_ROLLBACK : COLOR_PROMOTE)) ||
        (err = rg_buf_puts(out, "\",\"fallback\":")) ||
        (err = put_bounded(out, t.data, t.len, SECTION_MAX)) ||
        (err = rg_buf_puts(out, ",\"blocks\":[{\"type\":\"header\",\"text\":"
                                "{\"type\":\"plain_text\",\"text\":")) ||
        (err = put_bounded(out, subject.data, subject.len, HEADER_MAX)) ||
        (err = rg_buf_puts(out, "}}")))
        goto out;
    rg_buf_reset(&t);
    for (size_t i = 0; i < n; i++) {
        rg_buf_reset(&line);
        if ((err = alert_line(&line, &gv, &alerts[i], i, now_ms)))
            goto out;
        if (t.len + line.len > SECTION_MAX - SECTION_RESERVE)
            break;
        if ((err = rg_buf_append(&t, line.data, line.len)))
            goto out;
        shown++;
    }
    if (shown < n && (err = rg_buf_printf(&t, "\xe2\x80\xa6 and %zu more\n", n - shown)))
        goto out;
    if (n && (err = put_section(out, &t)))
        goto out;
    if (g && g->external_url && g->external_url[0]) {
        rg_buf_reset(&t);
        if ((err = rg_buf_putc(&t, '<')) || (err = put_escaped(&t, g->external_url)) ||
            (err = rg_buf_puts(&t, "|rollgate>")) ||
            (err = rg_buf_puts(out, ",{\"type\":\"context\",\"elements\":[")) ||
            (err = put_mrkdwn(out, &t, FIELD_MAX)) || (err = rg_buf_puts(out, "]}")))
            goto out;
    }
    err = rg_buf_puts(out, "]}]}");
out:
    rg_buf_cleanup(&line);
    rg_buf_cleanup(&t);
    rg_buf_cleanup(&subject);
    rg__pl_group_cleanup(&gv);
    return err;
}
