/* tests/rules/test_alert.c - the alert state machine in virtual time: every
 * transition, `for` restarts, keep_firing_for, resolved retention, limit, duplicate
 * label sets, resend bookkeeping, and persistence across a restart. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "rules/alert.h"
#include "rules/rulefile.h"
#include "util/err.h"

#define T0 INT64_C(1700000000000)   /* virtual epoch, ms */
#define S(x) (T0 + (int64_t)(x) * 1000)

/* One evaluation: the instances present ("a b"), the result expected, the set after
 * it ("a:pending b:firing", sorted) and the alerts sent ("a b"). */
struct step {
    int64_t t;          /* seconds after T0 */
    const char *present;
    int want_rc;
    const char *want;
    const char *sent;
};

struct scenario {
    const char *name;
    int64_t for_s, keep_s, limit;
    struct step steps[12];
};

static void inputs(const char *present, struct rg_alert_input *in, size_t *n,
                   struct rg_label *store)
{
    char buf[128];
    char *save = NULL;
    *n = 0;
    snprintf(buf, sizeof(buf), "%s", present);
    for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        struct rg_label *l = &store[*n * 2];
        /* Duplicates ("a a") share one label set on purpose. */
        l[0].name = "alertname";
        l[0].value = "Test";
        l[1].name = "instance";
        l[1].value = tok[0] == 'a' ? "a" : tok[0] == 'b' ? "b" : "c";
        in[*n] = (struct rg_alert_input){ .labels = l, .nlabels = 2, .value = (double)*n };
        (*n)++;
    }
}

static void dump(const struct rg_alert_set *s, struct rg_buf *out)
{
    rg_buf_reset(out);
    rg_buf_puts(out, "");
    for (size_t i = 0; i < s->n; i++)
        rg_buf_printf(out, "%s%s:%s", i ? " " : "", s->alerts[i].labels[1].value,
                      rg_alert_state_name(s->alerts[i].state));
}

static void on_send(const struct rg_alert *a, void *ud)
{
    struct rg_buf *b = ud;
    rg_buf_printf(b, "%s%s", b->len ? " " : "", a->labels[1].value);
}

static void run(const struct scenario *sc)
{
    struct rg_alert_set set = { 0 };
    struct rg_alert_params p = { sc->for_s * 1000, sc->keep_s * 1000, sc->limit };
    struct rg_buf got = { 0 }, err = { 0 }, sent = { 0 };

    for (size_t i = 0; i < sizeof(sc->steps) / sizeof(sc->steps[0]) && sc->steps[i].want; i++) {
        const struct step *st = &sc->steps[i];
        struct rg_alert_input in[8];
        struct rg_label store[16];
        size_t n;
        int rc;

        inputs(st->present, in, &n, store);
        rg_buf_reset(&err);
        rc = rg_alert_set_eval(&set, &p, S(st->t), in, n, &err);
        if (rc != st->want_rc)
            fail_msg("%s step %zu: rc %d want %d (%s)", sc->name, i, rc, st->want_rc,
                     err.data ? err.data : "");
        dump(&set, &got);
        if (strcmp(got.data, st->want) != 0)
            fail_msg("%s step %zu (t=%llds): got \"%s\" want \"%s\"", sc->name, i,
                     (long long)st->t, got.data, st->want);
        rg_buf_reset(&sent);
        rg_buf_puts(&sent, "");
        if (rc == 0)
            rg_alert_set_send(&set, S(st->t), 60000, 60000, on_send, &sent);
        if (st->sent && strcmp(sent.data, st->sent) != 0)
            fail_msg("%s step %zu (t=%llds): sent \"%s\" want \"%s\"", sc->name, i,
                     (long long)st->t, sent.data, st->sent);
    }
    rg_alert_set_cleanup(&set);
    rg_buf_cleanup(&got);
    rg_buf_cleanup(&err);
    rg_buf_cleanup(&sent);
}

static void test_alert__transitions(void **state)
{
    static const struct scenario cases[] = {
        { "for 0 fires at once", 0, 0, 0, {
            { 0, "a", 0, "a:firing", "a" },
            { 60, "a", 0, "a:firing", "" },   /* last sent + 1m is not before ts */
            { 120, "a", 0, "a:firing", "a" },
        } },
        { "pending then firing after for", 60, 0, 0, {
            { 0, "a", 0, "a:pending", "" },
            { 30, "a", 0, "a:pending", "" },
            { 59, "a", 0, "a:pending", "" },
            { 60, "a", 0, "a:firing", "a" },
        } },
        { "a missed evaluation restarts the for timer", 60, 0, 0, {
            { 0, "a", 0, "a:pending", "" },
            { 30, "", 0, "", "" },
            { 45, "a", 0, "a:pending", "" },
            { 90, "a", 0, "a:pending", "" },
            { 105, "a", 0, "a:firing", "a" },
        } },
        { "firing resolves and is kept 15 minutes", 0, 0, 0, {
            { 0, "a", 0, "a:firing", "a" },
            { 60, "", 0, "a:inactive", "a" },            /* resolution sent at once */
            { 120, "", 0, "a:inactive", "" },
            { 180, "", 0, "a:inactive", "a" },           /* re-sent every resend delay */
            { 960, "", 0, "a:inactive", "a" },           /* exactly 15m: still kept */
            { 961, "", 0, "", "" },                       /* then deleted */
        } },
        { "a resolved alert that returns is new", 30, 0, 0, {
            { 0, "a", 0, "a:pending", "" },
            { 30, "a", 0, "a:firing", "a" },
            { 60, "", 0, "a:inactive", "a" },
            { 90, "a", 0, "a:pending", "" },
            { 120, "a", 0, "a:firing", "a" },
        } },
        { "keep_firing_for holds a firing alert", 0, 120, 0, {
            { 0, "a", 0, "a:firing", "a" },
            { 60, "", 0, "a:firing", "" },               /* keep_firing_since = 60 */
            { 120, "", 0, "a:firing", "a" },             /* resent: 0 + 1m < 120 */
            { 179, "", 0, "a:firing", "" },
            { 180, "", 0, "a:inactive", "a" },           /* 120s since 60: resolved */
        } },
        { "keep_firing_for resets when the alert returns", 0, 120, 0, {
            { 0, "a", 0, "a:firing", "a" },
            { 60, "", 0, "a:firing", "" },
            { 90, "a", 0, "a:firing", "a" },
            { 150, "", 0, "a:firing", "" },              /* since 150 now */
            { 240, "", 0, "a:firing", "a" },
            { 270, "", 0, "a:inactive", "a" },
        } },
        { "keep_firing_for does not hold pending alerts", 60, 300, 0, {
            { 0, "a", 0, "a:pending", "" },
            { 30, "", 0, "", "" },
        } },
        { "several alerts move independently", 60, 0, 0, {
            { 0, "a", 0, "a:pending", "" },
            { 30, "a b", 0, "a:pending b:pending", "" },
            { 60, "a b", 0, "a:firing b:pending", "a" },
            { 90, "b", 0, "a:inactive b:firing", "a b" },
        } },
        { "limit exceeded clears every alert", 0, 0, 1, {
            { 0, "a", 0, "a:firing", "a" },
            { 60, "a b", RG_ELIMIT, "", "" },
            { 120, "b", 0, "b:firing", "b" },
        } },
        { "the limit counts active alerts only", 0, 0, 1, {
            { 0, "a", 0, "a:firing", "a" },
            { 60, "b", 0, "a:inactive b:firing", "a b" },
        } },
        { "duplicate label sets leave the state untouched", 60, 0, 0, {
            { 0, "a", 0, "a:pending", "" },
            { 30, "a a", RG_EEXEC, "a:pending", NULL },
            { 60, "a", 0, "a:firing", "a" },
        } },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run(&cases[i]);
}

/* Sequences checked against Prometheus itself: tests/data/rules/promtool-alerts/
 * testN.yml ask `promtool test rules` (Prometheus 2.42) for ALERTS and
 * ALERTS_FOR_STATE after every one-minute evaluation of rulesN.yml over the same
 * series, and pass. Each word is the alert after one evaluation: "-" none, "pN" or
 * "fN" pending or firing with active_at N seconds. */
static void test_alert__matches_prometheus(void **state)
{
    static const struct {
        int64_t for_s, keep_s;
        const char *values;
        const char *want;
    } cases[] = {
        { 120, 180, "0 0 1 1 1 1 0 0 1 0 0 0 0 0 1 1 1 0 1 1 1 1 0 0 0 0",
          "- - p120 p120 f120 f120 f120 f120 f120 f120 f120 f120 - - p840 p840 f840 f840 "
          "f840 f840 f840 f840 f840 f840 f840 -" },
        { 0, 0, "1 1 0 1 0 0 1 1 1 0", "f0 f0 - f180 - - f360 f360 f360 -" },
        { 180, 0, "1 1 0 1 1 1 1 1 0 1", "p0 p0 - p180 p180 p180 f180 f180 - p540" },
        { 0, 120, "1 0 1 0 0 1 0 0 0 1 1 0", "f0 f0 f0 f0 f0 f0 f0 f0 - f540 f540 f540" },
        { 60, 60, "0 1 1 0 1 1 1 0 0 1 0 1 1 1 1 0 0 0",
          "- p60 f60 f60 f60 f60 f60 f60 - p540 - p660 f660 f660 f660 f660 - -" },
    };
    (void)state;

    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct rg_alert_set set = { 0 };
        struct rg_alert_params p = { cases[c].for_s * 1000, cases[c].keep_s * 1000, 0 };
        struct rg_buf got = { 0 }, err = { 0 };
        const char *v = cases[c].values;

        for (int minute = 0; *v; minute++) {
            struct rg_label l[2] = { { "alertname", "High" }, { "job", "a" } };
            struct rg_alert_input in = { l, 2, NULL, 0, 1 };
            int present = *v == '1';
            size_t active = 0;
            v += v[1] ? 2 : 1;
            assert_int_equal(rg_alert_set_eval(&set, &p, (int64_t)minute * 60000, &in,
                                               present ? 1 : 0, &err), 0);
            if (got.len)
                rg_buf_putc(&got, ' ');
            for (size_t k = 0; k < set.n; k++)
                if (set.alerts[k].state != RG_ALERT_INACTIVE) {
                    rg_buf_printf(&got, "%c%lld",
                                  set.alerts[k].state == RG_ALERT_FIRING ? 'f' : 'p',
                                  (long long)(set.alerts[k].active_at / 1000));
                    active++;
                }
            if (!active)
                rg_buf_putc(&got, '-');
        }
        if (strcmp(got.data, cases[c].want) != 0)
            fail_msg("case %zu:\n got  %s\n want %s", c, got.data, cases[c].want);
        rg_alert_set_cleanup(&set);
        rg_buf_cleanup(&got);
        rg_buf_cleanup(&err);
    }
}

static void test_alert__value_and_annotations_update(void **state)
{
    struct rg_alert_set set = { 0 };
    struct rg_alert_params p = { 60000, 0, 0 };
    struct rg_label l[2] = { { "instance", "a" }, { "alertname", "X" } };
    struct rg_label ann1[1] = { { "summary", "v=1" } }, ann2[1] = { { "summary", "v=2" } };
    struct rg_alert_input in = { l, 2, ann1, 1, 1.0 };
    struct rg_buf err = { 0 };
    (void)state;

    assert_int_equal(rg_alert_set_eval(&set, &p, S(0), &in, 1, &err), 0);
    in.labels = l;
    in.annotations = ann2;
    in.value = 2.0;
    assert_int_equal(rg_alert_set_eval(&set, &p, S(30), &in, 1, &err), 0);
    assert_int_equal(set.n, 1);
    assert_int_equal(set.alerts[0].active_at, S(0));
    assert_true(set.alerts[0].value == 2.0);
    assert_string_equal(set.alerts[0].annotations[0].value, "v=2");
    /* Labels were sorted and copied: alertname first. */
    assert_string_equal(set.alerts[0].labels[0].name, "alertname");
    assert_int_equal(rg_alert_set_count(&set, RG_ALERT_PENDING), 1);
    rg_alert_set_cleanup(&set);
    rg_alert_set_cleanup(NULL);
    rg_buf_cleanup(&err);
}

struct capture {
    int64_t starts, ends;
    int n;
};

static void on_capture(const struct rg_alert *a, void *ud)
{
    struct capture *c = ud;
    c->starts = rg_alert_starts_at(a);
    c->ends = rg_alert_ends_at(a);
    c->n++;
}

static void test_alert__send_bookkeeping(void **state)
{
    struct rg_alert_set set = { 0 };
    struct rg_alert_params p = { 30000, 0, 0 };
    struct rg_label l[2] = { { "alertname", "X" }, { "instance", "a" } };
    struct rg_alert_input in = { l, 2, NULL, 0, 1 };
    struct rg_buf err = { 0 };
    struct capture c = { 0 };
    (void)state;

    /* Pending alerts are never sent. */
    assert_int_equal(rg_alert_set_eval(&set, &p, S(0), &in, 1, &err), 0);
    assert_int_equal(rg_alert_set_send(&set, S(0), 60000, 15000, on_capture, &c), 0);
    assert_false(rg_alert_needs_sending(&set.alerts[0], S(0), 60000));
    /* Firing: StartsAt = FiredAt, EndsAt = ValidUntil = ts + 4 * max(resend, interval). */
    assert_int_equal(rg_alert_set_eval(&set, &p, S(30), &in, 1, &err), 0);
    assert_int_equal(rg_alert_set_send(&set, S(30), 60000, 15000, on_capture, &c), 1);
    assert_int_equal(c.starts, S(30));
    assert_int_equal(c.ends, S(30 + 240));
    assert_int_equal(set.alerts[0].last_sent_at, S(30));
    /* A group interval longer than the resend delay stretches ValidUntil. */
    assert_int_equal(rg_alert_set_send(&set, S(200), 60000, 120000, on_capture, &c), 1);
    assert_int_equal(c.ends, S(200 + 480));
    /* Resolved: sent at once with EndsAt = ResolvedAt. */
    assert_int_equal(rg_alert_set_eval(&set, &p, S(215), NULL, 0, &err), 0);
    assert_int_equal(rg_alert_set_send(&set, S(215), 60000, 15000, on_capture, &c), 1);
    assert_int_equal(c.starts, S(30));
    assert_int_equal(c.ends, S(215));
    assert_int_equal(c.n, 3);
    rg_alert_set_cleanup(&set);
    rg_buf_cleanup(&err);
}

static void roundtrip(struct rg_alert_set *s)
{
    struct rg_buf json = { 0 }, json2 = { 0 }, err = { 0 };
    char ebuf[256];
    yajl_val tree;

    assert_int_equal(rg_alert_set_to_json(s, &json), 0);
    tree = yajl_tree_parse(json.data, ebuf, sizeof(ebuf));
    assert_non_null(tree);
    rg_alert_set_cleanup(s);
    assert_int_equal(rg_alert_set_from_json(s, tree, &err), 0);
    assert_int_equal(err.len, 0);
    yajl_tree_free(tree);
    assert_int_equal(rg_alert_set_to_json(s, &json2), 0);
    assert_string_equal(json.data, json2.data);
    rg_buf_cleanup(&json);
    rg_buf_cleanup(&json2);
    rg_buf_cleanup(&err);
}

static void test_alert__restore_keeps_timers(void **state)
{
    struct rg_alert_set set = { 0 };
    struct rg_alert_params pend = { 300000, 0, 0 }, keep = { 0, 120000, 0 };
    struct rg_label l[2] = { { "alertname", "X" }, { "instance", "a" } };
    struct rg_label ann[1] = { { "summary", "quote \" and \\ and \xc3\xa9" } };
    struct rg_alert_input in = { l, 2, ann, 1, NAN };
    struct rg_buf err = { 0 };
    (void)state;

    /* A pending alert's `for` timer survives: it fires 300s after it first became
     * pending, not 300s after the restart. */
    assert_int_equal(rg_alert_set_eval(&set, &pend, S(0), &in, 1, &err), 0);
    assert_int_equal(rg_alert_set_eval(&set, &pend, S(200), &in, 1, &err), 0);
    roundtrip(&set);
    assert_int_equal(set.alerts[0].state, RG_ALERT_PENDING);
    assert_int_equal(set.alerts[0].active_at, S(0));
    assert_true(isnan(set.alerts[0].value));
    assert_string_equal(set.alerts[0].annotations[0].value, ann[0].value);
    assert_int_equal(rg_alert_set_eval(&set, &pend, S(300), &in, 1, &err), 0);
    assert_int_equal(set.alerts[0].state, RG_ALERT_FIRING);
    rg_alert_set_cleanup(&set);

    /* keep_firing_for keeps counting from when the alert went missing. */
    assert_int_equal(rg_alert_set_eval(&set, &keep, S(0), &in, 1, &err), 0);
    rg_alert_set_send(&set, S(0), 60000, 60000, NULL, NULL);
    assert_int_equal(rg_alert_set_eval(&set, &keep, S(60), NULL, 0, &err), 0);
    assert_int_equal(set.alerts[0].keep_firing_since, S(60));
    roundtrip(&set);
    assert_int_equal(set.alerts[0].state, RG_ALERT_FIRING);
    assert_int_equal(set.alerts[0].keep_firing_since, S(60));
    assert_int_equal(set.alerts[0].last_sent_at, S(0));
    assert_int_equal(rg_alert_set_eval(&set, &keep, S(150), NULL, 0, &err), 0);
    assert_int_equal(set.alerts[0].state, RG_ALERT_FIRING);
    assert_int_equal(rg_alert_set_eval(&set, &keep, S(180), NULL, 0, &err), 0);
    assert_int_equal(set.alerts[0].state, RG_ALERT_INACTIVE);
    assert_int_equal(set.alerts[0].resolved_at, S(180));
    roundtrip(&set);
    assert_int_equal(set.alerts[0].resolved_at, S(180));
    rg_alert_set_cleanup(&set);
    rg_buf_cleanup(&err);
}

static void test_alert__restore_rejects_malformed(void **state)
{
    static const char *const docs[] = {
        "[{\"labels\":{},\"annotations\":{},\"state\":\"firing\"}]",
        "[{\"labels\":{\"a\":\"b\"},\"annotations\":{},\"state\":\"bogus\",\"activeAt\":1,"
        "\"firedAt\":0,\"resolvedAt\":0,\"keepFiringSince\":0,\"lastSentAt\":0,"
        "\"validUntil\":0,\"value\":\"1\"}]",
        "[{\"labels\":{\"a\":1},\"annotations\":{}}]",
        "[17, \"x\", null]",
    };
    struct rg_alert_set set = { 0 };
    struct rg_buf err = { 0 };
    (void)state;

    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        char ebuf[128];
        yajl_val tree = yajl_tree_parse(docs[i], ebuf, sizeof(ebuf));
        assert_non_null(tree);
        rg_buf_reset(&err);
        assert_int_equal(rg_alert_set_from_json(&set, tree, &err), 0);
        assert_int_equal(set.n, 0);
        assert_true(err.len > 0);
        yajl_tree_free(tree);
    }
    {
        char ebuf[128];
        yajl_val tree = yajl_tree_parse("{\"not\":\"an array\"}", ebuf, sizeof(ebuf));
        rg_buf_reset(&err);
        assert_int_equal(rg_alert_set_from_json(&set, tree, &err), 0);
        assert_string_equal(err.data, "alerts: expected an array");
        yajl_tree_free(tree);
    }
    rg_alert_set_cleanup(&set);
    rg_buf_cleanup(&err);
}

static void test_alert__input_build(void **state)
{
    static const char text[] =
        "groups:\n"
        "- name: g\n"
        "  rules:\n"
        "  - alert: HighErrors\n"
        "    expr: up\n"
        "    labels:\n"
        "      severity: '{{ if gt $value 0.5 }}page{{ else }}ticket{{ end }}'\n"
        "      team: rule\n"
        "      job: ''\n"
        "      alertname: ignored\n"
        "    annotations:\n"
        "      summary: '{{ $labels.instance }} at {{ $value | humanizePercentage }} "
        "in {{ $externalLabels.cluster }}'\n";
    struct rg_rulefile *f = NULL;
    struct rg_buf err = { 0 };
    struct rg_rule_kv glabels[2] = { { "team", "group", NULL }, { "tier", "{{ \"x\" }}", NULL } };
    struct rg_label ext[1] = { { "cluster", "eu" } };
    struct rg_alert_env env = { ext, 1, "http://x", NULL, NULL };
    struct rg_label sample[3] = {
        { "__name__", "up" }, { "instance", "h:1" }, { "job", "node" },
    };
    struct rg_alert_input in;
    (void)state;

    assert_int_equal(rg_rulefile_parse("t.yml", text, strlen(text), &f, &err), 0);
    assert_int_equal(rg_alert_input_build(&f->groups[0].rules[0], glabels, 2, &env, sample, 3,
                                          0.75, &in), 0);
    {
        struct rg_buf got = { 0 };
        /* Order-independent check: render name=value pairs in a fixed order. */
        const char *names[] = { "alertname", "instance", "job", "severity", "team", "tier",
                                "__name__" };
        for (size_t k = 0; k < 7; k++)
            for (size_t i = 0; i < in.nlabels; i++)
                if (strcmp(in.labels[i].name, names[k]) == 0)
                    rg_buf_printf(&got, "%s=%s;", in.labels[i].name, in.labels[i].value);
        assert_int_equal(in.nlabels, 5);
        assert_string_equal(got.data,
                            "alertname=HighErrors;instance=h:1;severity=page;team=rule;tier=x;");
        rg_buf_cleanup(&got);
    }
    assert_int_equal(in.nannotations, 1);
    assert_string_equal(in.annotations[0].value, "h:1 at 75% in eu");
    assert_true(in.value == 0.75);
    rg_alert_input_cleanup(&in);
    rg_alert_input_cleanup(NULL);
    rg_rulefile_free(f);
    rg_buf_cleanup(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alert__transitions),
        cmocka_unit_test(test_alert__matches_prometheus),
        cmocka_unit_test(test_alert__value_and_annotations_update),
        cmocka_unit_test(test_alert__send_bookkeeping),
        cmocka_unit_test(test_alert__restore_keeps_timers),
        cmocka_unit_test(test_alert__restore_rejects_malformed),
        cmocka_unit_test(test_alert__input_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
