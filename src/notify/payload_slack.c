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
static void esc(struct rg__pl_w *w, const char *s)
{
    size_t run = 0;

    for (; s && *s; s++) {
        const char *ent = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;

        if (!ent) {
            run++;
            continue;
        }
        rg__pl_rawn(w, s - run, run);
        rg__pl_raw(w, ent);
        run = 0;
    }
    if (run)
        rg__pl_rawn(w, s - run, run);
}

/* Writes @text, bounded to @max bytes, as a JSON string. */
static void put_bounded(struct rg__pl_w *w, const struct rg_buf *text, size_t max)
{
    struct rg_buf cut = { 0 };

    if (!w->err)
        w->err = rg__pl_truncated(&cut, text->data ? text->data : "", text->len, max);
    rg__pl_sn(w, cut.data, cut.len);
    rg_buf_cleanup(&cut);
}

/* {"type":"mrkdwn","text":...}: a section field, section text or context element. */
static void put_mrkdwn(struct rg__pl_w *w, const struct rg_buf *text, size_t max)
{
    rg__pl_raw(w, "{\"type\":\"mrkdwn\",\"text\":");
    put_bounded(w, text, max);
    rg__pl_raw(w, "}");
}

/* A section block holding one mrkdwn text, after a preceding block. */
static void put_section(struct rg__pl_w *w, const struct rg_buf *text)
{
    rg__pl_raw(w, ",{\"type\":\"section\",\"text\":");
    put_mrkdwn(w, text, SECTION_MAX);
    rg__pl_raw(w, "}");
}

/* The message head: text, the attachment's colour and fallback, the header block.
 * @plain is the unescaped line (plain_text shows it literally); @line the escaped one. */
static void put_head(struct rg__pl_w *w, const struct rg_buf *plain, const struct rg_buf *line,
                     const char *color)
{
    rg__pl_raw(w, "{\"text\":");
    put_bounded(w, line, SECTION_MAX);
    rg__pl_raw(w, ",\"attachments\":[{\"color\":\"");
    rg__pl_raw(w, color);
    rg__pl_raw(w, "\",\"fallback\":");
    put_bounded(w, line, SECTION_MAX);
    rg__pl_raw(w, ",\"blocks\":[{\"type\":\"header\",\"text\":{\"type\":\"plain_text\","
                  "\"text\":");
    put_bounded(w, plain, HEADER_MAX);
    rg__pl_raw(w, "}}");
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

static void put_value(struct rg__pl_w *w, double v)
{
    if (isnan(v)) {
        rg__pl_raw(w, "no data");
        return;
    }
    rg__pl_raw(w, "`");
    rg__pl_num(w, v);
    rg__pl_raw(w, "`");
}

/* One line of the checks section: "• *name* (trigger, firing since <time>): `v` > `t`". */
static void check_line(struct rg__pl_w *w, const struct rg_notify_check *c)
{
    rg__pl_raw(w, "\xe2\x80\xa2 *");
    esc(w, c->name);
    rg__pl_raw(w, c->kind == RG_NOTIFY_CHECK_TRIGGER ? "* (trigger, " : "* (gate, ");
    esc(w, c->state ? c->state : "unknown");
    if (c->since_ms) {
        rg__pl_raw(w, " since ");
        if (!w->err)
            w->err = rg_payload_rfc3339_ms(c->since_ms, w->out);
    }
    rg__pl_raw(w, "): ");
    put_value(w, c->value);
    rg__pl_raw(w, " ");
    esc(w, c->op ? c->op : "?");
    if (!isnan(c->threshold)) {
        rg__pl_raw(w, " ");
        put_value(w, c->threshold);
    }
    if (c->has_baseline) {
        rg__pl_raw(w, isnan(c->threshold) ? " baseline " : " (baseline ");
        put_value(w, c->baseline);
        if (!isnan(c->threshold))
            rg__pl_raw(w, ")");
    }
    rg__pl_raw(w, "\n");
}

static int check_ok(const struct rg_notify_check *c)
{
    return c->state && strcmp(c->state, "ok") == 0;
}

/* The checks section: every check whose state is not "ok", whole lines only, then
 * how many did not fit. */
static void checks_text(struct rg__pl_w *w, const struct rg_notify_deploy_event *ev)
{
    struct rg_buf line = { 0 };
    struct rg__pl_w lw = { &line, 0 };
    size_t shown = 0, bad = 0;

    for (size_t i = 0; i < ev->nchecks; i++)
        bad += !check_ok(&ev->checks[i]);
    if (bad == 0) {
        if (ev->nchecks == 0)
            rg__pl_raw(w, "*Checks*\nnone configured");
        else
            rg__pl_printf(w, "*Checks*\nall %zu ok", ev->nchecks);
        return;
    }
    rg__pl_printf(w, "*Checks not ok (%zu of %zu)*\n", bad, ev->nchecks);
    for (size_t i = 0; i < ev->nchecks && !lw.err; i++) {
        if (check_ok(&ev->checks[i]))
            continue;
        rg_buf_reset(&line);
        check_line(&lw, &ev->checks[i]);
        if (w->out->len + line.len > SECTION_MAX - SECTION_RESERVE)
            break;
        rg__pl_rawn(w, line.data, line.len);
        shown++;
    }
    if (shown < bad)
        rg__pl_printf(w, "\xe2\x80\xa6 and %zu more\n", bad - shown);
    if (!w->err)
        w->err = lw.err;
    rg_buf_cleanup(&line);
}

int rg_payload_slack_event(const struct rg_notify_deploy_event *ev, struct rg_buf *out)
{
    struct rg_buf title = { 0 }, t = { 0 };
    struct rg__pl_w w = { out, 0 }, tw = { &t, 0 };
    char key[RG_PAYLOAD_KEY_SIZE];
    const char *dedup = ev->dedup_key;
    int err;

    if (!dedup) {
        if ((err = rg_payload_deploy_dedup_key(ev, key)))
            return err;
        dedup = key;
    }
    /* Slack reads the top-level text as mrkdwn too, so it is escaped like the rest;
     * only the plain_text header shows the sentence as it is. */
    tw.err = rg__pl_event_title(&title, ev);
    esc(&tw, title.data);
    put_head(&w, &title, &t, verdict_color(ev->verdict));

    rg__pl_raw(&w, ",{\"type\":\"section\",\"fields\":[");
    rg_buf_reset(&t);
    rg__pl_raw(&tw, "*Deployment*\n");
    esc(&tw, ev->deployment);
    put_mrkdwn(&w, &t, FIELD_MAX);
    rg_buf_reset(&t);
    rg__pl_raw(&tw, "*Phase*\n");
    esc(&tw, ev->phase);
    rg__pl_raw(&w, ",");
    put_mrkdwn(&w, &t, FIELD_MAX);
    rg_buf_reset(&t);
    rg__pl_raw(&tw, "*Verdict*\n");
    esc(&tw, ev->verdict ? ev->verdict : "unknown");
    if (ev->previous_verdict && ev->previous_verdict[0]) {
        rg__pl_raw(&tw, " (was ");
        esc(&tw, ev->previous_verdict);
        rg__pl_raw(&tw, ")");
    }
    rg__pl_raw(&w, ",");
    put_mrkdwn(&w, &t, FIELD_MAX);
    rg_buf_reset(&t);
    rg__pl_raw(&tw, "*Traffic*\n");
    if (isnan(ev->traffic_weight)) {
        rg__pl_raw(&tw, "unknown");
    } else {
        rg__pl_num(&tw, ev->traffic_weight);
        rg__pl_raw(&tw, "%");
    }
    rg__pl_raw(&w, ",");
    put_mrkdwn(&w, &t, FIELD_MAX);
    rg__pl_raw(&w, "]}");

    if (ev->reason && ev->reason[0]) {
        rg_buf_reset(&t);
        rg__pl_raw(&tw, "*Reason*\n");
        esc(&tw, ev->reason);
        put_section(&w, &t);
    }
    rg_buf_reset(&t);
    checks_text(&tw, ev);
    put_section(&w, &t);

    rg_buf_reset(&t);
    rg__pl_raw(&tw, rg_payload_event_kind_name(ev->kind));
    rg__pl_raw(&tw, " \xc2\xb7 ");
    if (!tw.err)
        tw.err = rg_payload_rfc3339_ms(ev->at_ms, &t);
    rg__pl_raw(&tw, " \xc2\xb7 key ");
    esc(&tw, dedup);
    if (ev->url && ev->url[0]) {
        rg__pl_raw(&tw, " \xc2\xb7 <");
        esc(&tw, ev->url);
        rg__pl_raw(&tw, "|details>");
    }
    rg__pl_raw(&w, ",{\"type\":\"context\",\"elements\":[");
    put_mrkdwn(&w, &t, FIELD_MAX);
    rg__pl_raw(&w, "]}]}]}");
    rg_buf_cleanup(&t);
    rg_buf_cleanup(&title);
    return w.err ? w.err : tw.err;
}

/* One line per alert: its summary annotation, or else its labels. */
static void alert_line(struct rg__pl_w *w, const struct rg__pl_group *gv,
                       const struct rg_notify_alert *a, size_t i, int64_t now_ms)
{
    const char *summary = rg__pl_lset_get(&gv->annotations[i], "summary");

    rg__pl_raw(w, "\xe2\x80\xa2 [");
    rg__pl_raw(w, rg_payload_status_name(rg_payload_alert_status(a, now_ms)));
    rg__pl_raw(w, "] ");
    if (summary)
        esc(w, summary);
    for (size_t j = 0; !summary && j < gv->labels[i].n; j++) {
        const struct rg_label *l = gv->labels[i].v[j];

        if (j)
            rg__pl_raw(w, " ");
        esc(w, l->name);
        rg__pl_raw(w, "=");
        esc(w, l->value);
    }
    rg__pl_raw(w, "\n");
}

int rg_payload_slack_alerts(const struct rg_notify_group *g, const struct rg_notify_alert *alerts,
                            size_t n, int64_t now_ms, struct rg_buf *out)
{
    struct rg__pl_group gv;
    struct rg_buf subject = { 0 }, t = { 0 }, line = { 0 };
    struct rg__pl_w w = { out, 0 }, tw = { &t, 0 }, lw = { &line, 0 };
    size_t shown = 0;
    int err;

    if ((err = rg__pl_group_build(&gv, g, alerts, n, now_ms)))
        return err;
    tw.err = rg__pl_group_subject(&subject, &gv);
    esc(&tw, subject.data);
    put_head(&w, &subject, &t, gv.firing ? COLOR_ROLLBACK : COLOR_PROMOTE);

    rg_buf_reset(&t);
    for (size_t i = 0; i < n && !lw.err; i++) {
        rg_buf_reset(&line);
        alert_line(&lw, &gv, &alerts[i], i, now_ms);
        if (t.len + line.len > SECTION_MAX - SECTION_RESERVE)
            break;
        rg__pl_rawn(&tw, line.data, line.len);
        shown++;
    }
    if (shown < n)
        rg__pl_printf(&tw, "\xe2\x80\xa6 and %zu more\n", n - shown);
    if (n)
        put_section(&w, &t);
    if (g && g->external_url && g->external_url[0]) {
        rg_buf_reset(&t);
        rg__pl_raw(&tw, "<");
        esc(&tw, g->external_url);
        rg__pl_raw(&tw, "|rollgate>");
        rg__pl_raw(&w, ",{\"type\":\"context\",\"elements\":[");
        put_mrkdwn(&w, &t, FIELD_MAX);
        rg__pl_raw(&w, "]}");
    }
    rg__pl_raw(&w, "]}]}");
    rg_buf_cleanup(&line);
    rg_buf_cleanup(&t);
    rg_buf_cleanup(&subject);
    rg__pl_group_cleanup(&gv);
    return w.err ? w.err : tw.err ? tw.err : lw.err;
}
