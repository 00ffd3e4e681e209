/* tests/notify/test_payload.c - payload builders, keys and webhook signatures.
 *
 * Every builder's output for a fixed set of alerts and one deployment event is
 * compared with a golden file under tests/data/notify (RG_APPROVE=1 rewrites them)
 * and parsed with yajl's tree parser, which also validates UTF-8, so every body is
 * known to be valid JSON. Around the goldens: the Go string escaping, RFC 3339 times
 * (before 1970, year 0, the int64 extremes, computed independently), Prometheus
 * fingerprints (the published value of prometheus/common's model tests and values
 * computed by hand from the algorithm), PagerDuty's summary and size limits, Slack's
 * block limits, dedup-key stability, batching, RFC 4231 HMAC-SHA256 vectors, and the
 * signature header with its verification.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <yajl/yajl_tree.h>

#include "notify/payload.h"
#include "notify/payload_internal.h"
#include "notify/sign.h"
#include "util/err.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define T0 INT64_C(1717236000000)   /* 2024-06-01T10:00:00Z */

/* ---- Test utilities ---------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        p = malloc((size_t)n + 1);
        if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
            free(p);
            p = NULL;
        }
        if (p) {
            p[n] = '\0';
            *len = (size_t)n;
        }
    }
    fclose(f);
    return p;
}

/* Parses @b as JSON (failing the test when it is not) and returns the tree. */
static yajl_val parse_json(const struct rg_buf *b)
{
    char err[256] = "";
    yajl_val v = yajl_tree_parse(b->data, err, sizeof(err));

    if (!v)
        fail_msg("invalid JSON (%s): %.300s", err, b->data);
    return v;
}

/* Compares @b with tests/data/notify/@name (rewritten first under RG_APPROVE=1),
 * after checking that it is valid JSON. */
static void golden(const char *name, const struct rg_buf *b)
{
    char path[256];
    const char *approve = getenv("RG_APPROVE");
    size_t len = 0;
    char *want;

    yajl_tree_free(parse_json(b));
    snprintf(path, sizeof(path), "tests/data/notify/%s", name);
    if (approve && strcmp(approve, "1") == 0) {
        FILE *f = fopen(path, "wb");

        assert_non_null(f);
        assert_int_equal(fwrite(b->data, 1, b->len, f), b->len);
        assert_int_equal(fclose(f), 0);
    }
    want = read_file(path, &len);
    if (!want)
        fail_msg("missing %s: run the test with RG_APPROVE=1 from the repository root", path);
    if (len != b->len || memcmp(want, b->data, len) != 0)
        fail_msg("%s differs from the golden file:\n%s", path, b->data);
    free(want);
}

static const char *get_str(yajl_val root, const char **path)
{
    yajl_val v = yajl_tree_get(root, path, yajl_t_string);

    if (!v)
        fail_msg("no string at %s", path[0]);
    return YAJL_GET_STRING(v);
}

static int valid_utf8(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;

        if (n == 0 || i + n > len)
            return 0;
        for (size_t k = 1; k < n; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
        i += n;
    }
    return 1;
}

/* ---- Fixtures ---------------------------------------------------------------------- */

static const struct rg_label a1_labels[] = {
    { "severity", "critical" },
    { "alertname", "HighErrorRate" },
    { "job", "api" },
    { "instance", "10.0.0.1:8080" },
};
static const struct rg_label a1_annos[] = {
    { "summary", "Error rate 5.2% > 1%" },
    { "description", "<b>5xx & timeouts</b> on \"api\"\nsee runbook" },
};
static const struct rg_label a2_labels[] = {
    { "alertname", "HighErrorRate" },
    { "instance", "10.0.0.2:8080" },
    { "job", "api" },
    { "severity", "warning" },
    { "empty", "" },
};
static const struct rg_label a2_annos[] = {
    { "summary", "Error rate 1.4% > 1%" },
};
static const struct rg_label a3_labels[] = {
    { "job", "api" },
    { "alertname", "HighLatency" },
    { "cluster", "eu1" },
    { "job", "ignored duplicate" },
};
static const struct rg_label ext_labels[] = {
    { "cluster", "eu-west" },
    { "replica", "a" },
};
static const struct rg_label group_labels[] = {
    { "job", "api" },
};

#define GEN_URL "http://rollgate:9100/graph?g0.expr=rate%28errors%5B5m%5D%29&g0.tab=1"

static const struct rg_notify_alert alerts[] = {
    { a1_labels, N(a1_labels), a1_annos, N(a1_annos), T0, T0 + 240000, GEN_URL },
    { a2_labels, N(a2_labels), a2_annos, N(a2_annos), T0 + 15500, T0 + 60000, GEN_URL },
    { a3_labels, N(a3_labels), NULL, 0, T0 + 30120, 0, NULL },
};
#define NOW (T0 + 120000)

static const struct rg_notify_group group = {
    .receiver = "team.ops",
    .group_labels = group_labels,
    .ngroup_labels = N(group_labels),
    .external_labels = ext_labels,
    .nexternal_labels = N(ext_labels),
    .external_url = "http://rollgate.example:9100",
    .truncated_alerts = 0,
};

static const struct rg_notify_check checks[] = {
    { "error_rate", RG_NOTIFY_CHECK_TRIGGER,
      "sum(rate(http_requests_total{code=~\"5..\"}[1m])) / sum(rate(http_requests_total[1m]))",
      0.052, ">", 0.01, "firing", T0 - 60000, 0, 0 },
    { "latency_p99", RG_NOTIFY_CHECK_GATE, "latency_p99", 0.231, "<", 0.3, "ok", T0 - 590000,
      0, 0 },
    { "saturation", RG_NOTIFY_CHECK_GATE, NULL, NAN, "<", 0.8, "no_data", T0 - 300000, 0, 0 },
    /* A gate against the baseline only: no threshold of its own. */
    { "latency_vs_baseline", RG_NOTIFY_CHECK_GATE, "latency_p50", 0.12, "<=", NAN, "failing",
      T0 - 30000, 1, 0.1 },
};

static struct rg_notify_deploy_event make_event(void)
{
    struct rg_notify_deploy_event ev = {
        .kind = RG_NOTIFY_EVENT_ROLLBACK,
        .deployment = "checkout",
        .phase = "canary-10",
        .phase_start_ms = T0 - 600000,
        .verdict = "rollback",
        .previous_verdict = "hold",
        .reason = "trigger error_rate held for 1m: 0.052 > 0.01",
        .checks = checks,
        .nchecks = N(checks),
        .at_ms = T0,
        .traffic_weight = 10,
        .dedup_key = NULL,
        .url = "http://rollgate.example:9100/api/v1/deployments/checkout",
        .version = "test",
    };
    return ev;
}

static const struct rg_notify_pagerduty pd_settings = {
    .routing_key = "0123456789abcdef0123456789abcdef",
};

/* ---- Building blocks --------------------------------------------------------------- */

static void test_time__rfc3339_ms(void **state)
{
    /* Expected values were computed independently (Python's proleptic calendar
     * shifted by 400-year cycles); the extremes match Go's time.UnixMilli. */
    static const struct { int64_t ms; const char *want; } cases[] = {
        { 0, "1970-01-01T00:00:00.000Z" },
        { -1, "1969-12-31T23:59:59.999Z" },
        { -86400000, "1969-12-31T00:00:00.000Z" },
        { T0, "2024-06-01T10:00:00.000Z" },
        { INT64_C(1700000000123), "2023-11-14T22:13:20.123Z" },
        { INT64_C(951782400000), "2000-02-29T00:00:00.000Z" },
        { INT64_C(-62135596800000), "0001-01-01T00:00:00.000Z" },
        { INT64_C(253402300799999), "9999-12-31T23:59:59.999Z" },
        { INT64_C(-62167219200000), "0000-01-01T00:00:00.000Z" },
        { INT64_C(-62167219200001), "-0001-12-31T23:59:59.999Z" },
        { INT64_MAX, "292278994-08-17T07:12:55.807Z" },
        { INT64_MIN, "-292275055-05-16T16:47:04.192Z" },
    };
    (void)state;

    for (size_t i = 0; i < N(cases); i++) {
        struct rg_buf b = { 0 };

        assert_int_equal(rg_payload_rfc3339_ms(cases[i].ms, &b), 0);
        assert_string_equal(b.data, cases[i].want);
        rg_buf_cleanup(&b);
    }
}

static void test_time__rfc3339_nano(void **state)
{
    static const struct { int64_t ms; const char *want; } cases[] = {
        { 0, "1970-01-01T00:00:00Z" },
        { T0, "2024-06-01T10:00:00Z" },
        { T0 + 500, "2024-06-01T10:00:00.5Z" },
        { T0 + 50, "2024-06-01T10:00:00.05Z" },
        { T0 + 120, "2024-06-01T10:00:00.12Z" },
        { T0 + 123, "2024-06-01T10:00:00.123Z" },
        { -1, "1969-12-31T23:59:59.999Z" },
    };
    (void)state;

    for (size_t i = 0; i < N(cases); i++) {
        struct rg_buf b = { 0 };

        assert_int_equal(rg_payload_rfc3339_nano(cases[i].ms, &b), 0);
        assert_string_equal(b.data, cases[i].want);
        rg_buf_cleanup(&b);
    }
}

static void test_json__go_escaping(void **state)
{
    static const struct { const char *in; size_t len; const char *want; } cases[] = {
        { "plain", 5, "\"plain\"" },
        { "a\"b\\c", 5, "\"a\\\"b\\\\c\"" },
        { "<a href='x'>&</a>", 17, "\"\\u003ca href='x'\\u003e\\u0026\\u003c/a\\u003e\"" },
        { "\n\r\t\b\f\x01\x1f", 7, "\"\\n\\r\\t\\b\\f\\u0001\\u001f\"" },
        { "\x7f", 1, "\"\x7f\"" },
        { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80", 14,
          "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80\"" },
        { "\xe2\x80\xa8|\xe2\x80\xa9", 7, "\"\\u2028|\\u2029\"" },
        { "a\xffz", 3, "\"a\\ufffdz\"" },
        { "\xc3", 1, "\"\\ufffd\"" },                       /* truncated sequence */
        { "\xf0\x9f\x9a", 3, "\"\\ufffd\\ufffd\\ufffd\"" },     /* one per byte, as Go */
        { "\xc0\xaf", 2, "\"\\ufffd\\ufffd\"" },             /* overlong form */
        { "\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"" },  /* surrogate */
        { "nul\0byte", 8, "\"nul\\u0000byte\"" },
        { "", 0, "\"\"" },
    };
    (void)state;

    for (size_t i = 0; i < N(cases); i++) {
        struct rg_buf b = { 0 };

        assert_int_equal(rg__pl_str(&b, cases[i].in, cases[i].len), 0);
        assert_string_equal(b.data, cases[i].want);
        rg_buf_cleanup(&b);
    }
}

static void test_fingerprint__table(void **state)
{
    static const struct rg_label garland[] = {
        { "name", "garland, briggs" },
        { "fear", "love is not enough" },
    };
    static const struct rg_label one[] = { { "alertname", "A" } };
    static const struct rg_label three[] = {
        { "severity", "page" }, { "job", "api" }, { "alertname", "HighErrorRate" },
    };
    static const struct rg_label three_sorted[] = {
        { "alertname", "HighErrorRate" }, { "job", "api" }, { "severity", "page" },
    };
    static const struct rg_label with_empty[] = {
        { "alertname", "A" }, { "instance", "" },
    };
    static const struct rg_label dup[] = {
        { "alertname", "A" }, { "alertname", "B" },
    };
    static const struct rg_label ab_c[] = { { "ab", "c" } };
    static const struct rg_label a_bc[] = { { "a", "bc" } };
    static const struct rg_label rb[] = { { "alertname", "RollgateRollback" },
                                          { "deployment", "checkout" } };
    static const struct rg_label rb_ext[] = { { "cluster", "eu1" },
                                              { "deployment", "other" } };
    static const struct rg_label utf[] = { { "name", "\xc3\xa9t\xc3\xa9" } };
    static const struct {
        const struct rg_label *l;
        size_t n;
        const struct rg_label *ext;
        size_t next;
        uint64_t want;
    } cases[] = {
        /* The offset basis: Prometheus' fingerprint of the empty set. */
        { NULL, 0, NULL, 0, UINT64_C(14695981039346656037) },
        /* The value prometheus/common's TestMetricToFingerprint expects. */
        { garland, 2, NULL, 0, UINT64_C(5799056148416392346) },
        /* Computed by hand from the algorithm (FNV-1a 64, sorted, 0xff separators). */
        { one, 1, NULL, 0, UINT64_C(0xd2c6efc389df0927) },
        { three, 3, NULL, 0, UINT64_C(0x8e6582a18bc324d3) },
        { three_sorted, 3, NULL, 0, UINT64_C(0x8e6582a18bc324d3) },
        { with_empty, 2, NULL, 0, UINT64_C(0xd2c6efc389df0927) },
        { dup, 2, NULL, 0, UINT64_C(0xd2c6efc389df0927) },
        { ab_c, 1, NULL, 0, UINT64_C(0x20ba9b3025a8b421) },
        { a_bc, 1, NULL, 0, UINT64_C(0xa0a3542c19b900ab) },
        /* External labels join where missing; the alert's own deployment wins. */
        { rb, 2, rb_ext, 2, UINT64_C(0x7ab7f7dbc29963fc) },
        { utf, 1, NULL, 0, UINT64_C(0xc6d07253558b5f3a) },
    };
    char hex[RG_PAYLOAD_FP_SIZE];
    (void)state;

    for (size_t i = 0; i < N(cases); i++) {
        uint64_t fp = 0;

        assert_int_equal(rg_payload_fingerprint(cases[i].l, cases[i].n, cases[i].ext,
                                                cases[i].next, &fp), 0);
        assert_true(fp == cases[i].want);
    }
    rg_payload_fingerprint_hex(UINT64_C(0xd2c6efc389df0927), hex);
    assert_string_equal(hex, "d2c6efc389df0927");
    rg_payload_fingerprint_hex(15, hex);
    assert_string_equal(hex, "000000000000000f");
}

static void test_status__from_ends_at(void **state)
{
    struct rg_notify_alert a = { .starts_at_ms = T0 };
    (void)state;

    assert_int_equal(rg_payload_alert_status(&a, T0 + 1000000), RG_NOTIFY_FIRING);
    a.ends_at_ms = T0 + 1000;
    assert_int_equal(rg_payload_alert_status(&a, T0 + 999), RG_NOTIFY_FIRING);
    assert_int_equal(rg_payload_alert_status(&a, T0 + 1000), RG_NOTIFY_RESOLVED);
    assert_string_equal(rg_payload_status_name(RG_NOTIFY_RESOLVED), "resolved");
    assert_string_equal(rg_payload_status_name(RG_NOTIFY_FIRING), "firing");
    assert_string_equal(rg_payload_event_kind_name(RG_NOTIFY_EVENT_HUMAN_TRIGGER),
                        "human_trigger");
    assert_string_equal(rg_payload_event_kind_name((enum rg_notify_event_kind)99), "unknown");
}

static void test_utf8__prefix(void **state)
{
    static const struct { const char *s; size_t max; size_t want; } cases[] = {
        { "abcdef", 10, 6 },
        { "abcdef", 3, 3 },
        { "ab\xc3\xa9", 3, 2 },              /* never half of é */
        { "ab\xc3\xa9", 4, 4 },
        { "\xe2\x82\xac\xe2\x82\xac", 5, 3 },
        { "\xf0\x9f\x9a\x80x", 3, 0 },
        { "\xf0\x9f\x9a\x80x", 4, 4 },
        { "a\xff\xfe", 2, 2 },               /* invalid bytes are units of their own */
        { "", 0, 0 },
    };
    (void)state;

    for (size_t i = 0; i < N(cases); i++)
        assert_int_equal(rg_payload_utf8_prefix(cases[i].s, strlen(cases[i].s), cases[i].max),
                         cases[i].want);
}

static void test_batch__ranges(void **state)
{
    size_t first, count;
    (void)state;

    assert_int_equal(rg_payload_batch_count(0, 0), 0);
    assert_int_equal(rg_payload_batch_count(64, 0), 1);
    assert_int_equal(rg_payload_batch_count(65, 0), 2);
    assert_int_equal(rg_payload_batch_count(200, 64), 4);
    rg_payload_batch_range(200, 64, 3, &first, &count);
    assert_int_equal(first, 192);
    assert_int_equal(count, 8);
    rg_payload_batch_range(200, 64, 1, &first, &count);
    assert_int_equal(first, 64);
    assert_int_equal(count, 64);
    rg_payload_batch_range(200, 64, 4, &first, &count);
    assert_int_equal(count, 0);
    rg_payload_batch_range(0, 0, 0, &first, &count);
    assert_int_equal(count, 0);
}

/* ---- Keys -------------------------------------------------------------------------- */

static void test_dedup__stable(void **state)
{
    struct rg_notify_deploy_event ev = make_event(), other;
    char k1[RG_PAYLOAD_KEY_SIZE], k2[RG_PAYLOAD_KEY_SIZE];
    const char *parts_a[] = { "ab", "c" }, *parts_b[] = { "a", "bc" };
    (void)state;

    /* The recipe is pinned: SHA-256 over the tagged, NUL-terminated parts
     * (computed independently), so a change that would orphan keys already in
     * outboxes fails here. */
    assert_int_equal(rg_payload_deploy_dedup_key(&ev, k1), 0);
    assert_string_equal(k1, "de6051a7acec5906fcd4fe9ea7ad45c350bf99518c52616cbbf9d74e938cef62");

    /* What a retry or a restart may change does not change the key. */
    other = ev;
    other.at_ms += 5000;
    other.reason = "another sentence";
    other.nchecks = 1;
    other.traffic_weight = 25;
    other.previous_verdict = "inconclusive";
    assert_int_equal(rg_payload_deploy_dedup_key(&other, k2), 0);
    assert_string_equal(k1, k2);

    /* What identifies the event does. */
    other = ev;
    other.phase_start_ms += 1;
    assert_int_equal(rg_payload_deploy_dedup_key(&other, k2), 0);
    assert_string_not_equal(k1, k2);
    other = ev;
    other.kind = RG_NOTIFY_EVENT_HUMAN_TRIGGER;
    assert_int_equal(rg_payload_deploy_dedup_key(&other, k2), 0);
    assert_string_not_equal(k1, k2);
    other = ev;
    other.verdict = "hold";
    assert_int_equal(rg_payload_deploy_dedup_key(&other, k2), 0);
    assert_string_not_equal(k1, k2);
    other = ev;
    other.phase = "canary-50";
    assert_int_equal(rg_payload_deploy_dedup_key(&other, k2), 0);
    assert_string_not_equal(k1, k2);

    /* Test events are unique per send. */
    other = ev;
    other.kind = RG_NOTIFY_EVENT_TEST;
    assert_int_equal(rg_payload_deploy_dedup_key(&other, k1), 0);
    other.at_ms += 1;
    assert_int_equal(rg_payload_deploy_dedup_key(&other, k2), 0);
    assert_string_not_equal(k1, k2);

    /* Part boundaries matter. */
    assert_int_equal(rg_payload_idempotency_key(parts_a, 2, k1), 0);
    assert_int_equal(rg_payload_idempotency_key(parts_b, 2, k2), 0);
    assert_string_not_equal(k1, k2);
    assert_int_equal(strlen(k1), 64);
}

/* ---- Builders ---------------------------------------------------------------------- */

static void test_alertmanager__golden(void **state)
{
    struct rg_buf b = { 0 };
    yajl_val root;
    const char *p0_cluster[] = { "labels", "cluster", NULL };
    (void)state;

    assert_int_equal(rg_payload_alertmanager(alerts, N(alerts), ext_labels, N(ext_labels), &b), 0);
    golden("alertmanager.json", &b);
    root = parse_json(&b);
    assert_true(YAJL_IS_ARRAY(root));
    assert_int_equal(YAJL_GET_ARRAY(root)->len, 3);
    /* External labels fill in; the alert's own label wins. */
    assert_string_equal(get_str(YAJL_GET_ARRAY(root)->values[0], p0_cluster), "eu-west");
    assert_string_equal(get_str(YAJL_GET_ARRAY(root)->values[2], p0_cluster), "eu1");
    yajl_tree_free(root);
    /* Empty-valued labels and unset ends never appear. */
    assert_null(strstr(b.data, "\"empty\""));
    assert_non_null(strstr(b.data, "\"startsAt\":\"2024-06-01T10:00:30.120Z\",\"labels\""));

    rg_buf_reset(&b);
    assert_int_equal(rg_payload_alertmanager(NULL, 0, NULL, 0, &b), 0);
    assert_string_equal(b.data, "[]");
    rg_buf_cleanup(&b);
}

static void test_webhook__alerts_golden(void **state)
{
    static const char *status[] = { "status", NULL };
    static const char *group_key[] = { "groupKey", NULL };
    static const char *receiver[] = { "receiver", NULL };
    static const char *common_job[] = { "commonLabels", "job", NULL };
    static const char *common_replica[] = { "commonLabels", "replica", NULL };
    static const char *common_cluster[] = { "commonLabels", "cluster", NULL };
    static const char *version[] = { "version", NULL };
    struct rg_buf b = { 0 };
    yajl_val root, arr;
    (void)state;

    assert_int_equal(rg_payload_webhook_alerts(&group, alerts, N(alerts), NOW, &b), 0);
    golden("webhook_alerts.json", &b);
    assert_int_equal(b.data[b.len - 1], '\n');
    root = parse_json(&b);
    assert_string_equal(get_str(root, status), "firing");
    assert_string_equal(get_str(root, version), "4");
    assert_string_equal(get_str(root, group_key), "{}:{job=\"api\"}");
    assert_string_equal(get_str(root, receiver), "team\\.ops");
    assert_string_equal(get_str(root, common_job), "api");
    assert_string_equal(get_str(root, common_replica), "a");
    assert_null(yajl_tree_get(root, common_cluster, yajl_t_any));
    arr = yajl_tree_get(root, (const char *[]){ "alerts", NULL }, yajl_t_array);
    assert_non_null(arr);
    assert_int_equal(YAJL_GET_ARRAY(arr)->len, 3);
    assert_string_equal(get_str(YAJL_GET_ARRAY(arr)->values[1], status), "resolved");
    assert_string_equal(get_str(YAJL_GET_ARRAY(arr)->values[2],
                                (const char *[]){ "endsAt", NULL }), "0001-01-01T00:00:00Z");
    yajl_tree_free(root);
    rg_buf_cleanup(&b);
}

static void test_webhook__resolved_group_and_defaults(void **state)
{
    static const struct rg_label l[] = { { "alertname", "A" }, { "x", "1\"2" } };
    static const struct rg_notify_alert a[] = {
        { l, 2, NULL, 0, T0, T0 + 1, "" },
        { l, 1, NULL, 0, T0, T0 + 2, "" },
    };
    struct rg_notify_group g = { .group_labels = l, .ngroup_labels = 2, .truncated_alerts = 7 };
    struct rg_buf b = { 0 };
    char want_fp[RG_PAYLOAD_FP_SIZE], needle[64];
    uint64_t fp;
    (void)state;

    assert_int_equal(rg_payload_webhook_alerts(&g, a, 2, T0 + 2, &b), 0);
    yajl_tree_free(parse_json(&b));
    assert_non_null(strstr(b.data, "{\"receiver\":\"\",\"status\":\"resolved\",\"alerts\":["));
    /* groupKey {}:{alertname="A", x="1\"2"} (Go's %q), then JSON-escaped. */
    assert_non_null(strstr(b.data,
                           "\"groupKey\":\"{}:{alertname=\\\"A\\\", x=\\\"1\\\\\\\"2\\\"}\""));
    assert_non_null(strstr(b.data, "\"commonLabels\":{\"alertname\":\"A\"}"));
    assert_non_null(strstr(b.data, "\"commonAnnotations\":{}"));
    assert_non_null(strstr(b.data, "\"truncatedAlerts\":7}\n"));
    assert_non_null(strstr(b.data, "\"endsAt\":\"2024-06-01T10:00:00.001Z\""));
    assert_int_equal(rg_payload_fingerprint(l, 1, NULL, 0, &fp), 0);
    rg_payload_fingerprint_hex(fp, want_fp);
    snprintf(needle, sizeof(needle), "\"fingerprint\":\"%s\"", want_fp);
    assert_non_null(strstr(b.data, needle));

    /* No alerts at all still gives a well-formed, resolved message. */
    rg_buf_reset(&b);
    assert_int_equal(rg_payload_webhook_alerts(NULL, NULL, 0, T0, &b), 0);
    assert_string_equal(b.data, "{\"receiver\":\"\",\"status\":\"resolved\",\"alerts\":[],"
                                "\"groupLabels\":{},\"commonLabels\":{},\"commonAnnotations\":{},"
                                "\"externalURL\":\"\",\"version\":\"4\",\"groupKey\":\"{}:{}\","
                                "\"truncatedAlerts\":0}\n");
    rg_buf_cleanup(&b);
}

static void test_webhook__event_golden(void **state)
{
    struct rg_notify_deploy_event ev = make_event();
    struct rg_buf b = { 0 };
    yajl_val root, checks_v, value;
    (void)state;

    assert_int_equal(rg_payload_webhook_event(&ev, &b), 0);
    golden("webhook_event.json", &b);
    root = parse_json(&b);
    assert_string_equal(get_str(root, (const char *[]){ "dedup_key", NULL }),
                        "de6051a7acec5906fcd4fe9ea7ad45c350bf99518c52616cbbf9d74e938cef62");
    checks_v = yajl_tree_get(root, (const char *[]){ "checks", NULL }, yajl_t_array);
    assert_non_null(checks_v);
    assert_int_equal(YAJL_GET_ARRAY(checks_v)->len, 4);
    /* No data is null, not a number. */
    value = yajl_tree_get(YAJL_GET_ARRAY(checks_v)->values[2], (const char *[]){ "value", NULL },
                          yajl_t_any);
    assert_true(value && YAJL_IS_NULL(value));
    yajl_tree_free(root);

    /* A given dedup key is used as it is; infinities and unknowns are explicit. */
    ev.dedup_key = "given-key";
    ev.traffic_weight = NAN;
    ev.kind = RG_NOTIFY_EVENT_TEST;
    ev.previous_verdict = NULL;
    ev.version = NULL;
    ev.nchecks = 0;
    rg_buf_reset(&b);
    assert_int_equal(rg_payload_webhook_event(&ev, &b), 0);
    yajl_tree_free(parse_json(&b));
    assert_non_null(strstr(b.data, "\"dedup_key\":\"given-key\""));
    assert_non_null(strstr(b.data, "\"traffic_weight\":null"));
    assert_non_null(strstr(b.data, "\"previous_verdict\":null"));
    assert_non_null(strstr(b.data, "\"checks\":[]"));
    rg_buf_cleanup(&b);
}

static void test_pagerduty__alerts_golden(void **state)
{
    static const char *action[] = { "event_action", NULL };
    static const char *severity[] = { "payload", "severity", NULL };
    static const char *summary[] = { "payload", "summary", NULL };
    static const char *dedup[] = { "dedup_key", NULL };
    struct rg_buf b = { 0 };
    yajl_val root;
    (void)state;

    assert_int_equal(rg_payload_pagerduty_alerts(&pd_settings, &group, alerts, N(alerts), NOW, &b),
                     0);
    golden("pagerduty_alerts.json", &b);
    root = parse_json(&b);
    assert_string_equal(get_str(root, action), "trigger");
    /* The most severe firing alert decides; the resolved warning does not. */
    assert_string_equal(get_str(root, severity), "critical");
    assert_string_equal(get_str(root, summary), "[FIRING:2] api (a)");
    /* SHA-256 of the group key {}:{job="api"}, computed independently. */
    assert_string_equal(get_str(root, dedup),
                        "3c6f6b81d4e9347da42049f1c7c2e7eedff4a6fbc71dc9d88aa37e702e002e19");
    yajl_tree_free(root);

    /* All resolved: a resolve event; no severity label: "error". */
    rg_buf_reset(&b);
    assert_int_equal(rg_payload_pagerduty_alerts(&pd_settings, &group, &alerts[1], 1, NOW, &b), 0);
    root = parse_json(&b);
    assert_string_equal(get_str(root, action), "resolve");
    assert_string_equal(get_str(root, severity), "warning");
    assert_string_equal(get_str(root, summary), "[RESOLVED] api (HighErrorRate eu-west "
                                                "10.0.0.2:8080 a warning)");
    yajl_tree_free(root);
    rg_buf_reset(&b);
    assert_int_equal(rg_payload_pagerduty_alerts(&pd_settings, NULL, &alerts[2], 1, NOW, &b), 0);
    root = parse_json(&b);
    assert_string_equal(get_str(root, severity), "error");
    yajl_tree_free(root);
    rg_buf_cleanup(&b);
}

static void test_pagerduty__event_golden(void **state)
{
    static const struct {
        enum rg_notify_event_kind kind;
        const char *verdict;
        const char *action;
        const char *severity;
    } cases[] = {
        { RG_NOTIFY_EVENT_ROLLBACK, "rollback", "trigger", "critical" },
        { RG_NOTIFY_EVENT_HUMAN_TRIGGER, "rollback", "trigger", "critical" },
        { RG_NOTIFY_EVENT_VERDICT_CHANGED, "inconclusive", "trigger", "warning" },
        { RG_NOTIFY_EVENT_VERDICT_CHANGED, "hold", "resolve", "info" },
        { RG_NOTIFY_EVENT_PROMOTE, "promote", "resolve", "info" },
        { RG_NOTIFY_EVENT_PHASE_STARTED, "hold", "resolve", "info" },
        { RG_NOTIFY_EVENT_RESET, "hold", "resolve", "info" },
        { RG_NOTIFY_EVENT_TEST, "hold", "trigger", "info" },
    };
    static const char *action[] = { "event_action", NULL };
    static const char *severity[] = { "payload", "severity", NULL };
    static const char *dedup[] = { "dedup_key", NULL };
    struct rg_notify_deploy_event ev = make_event();
    struct rg_buf b = { 0 };
    yajl_val root;
    (void)state;

    assert_int_equal(rg_payload_pagerduty_event(&pd_settings, &ev, &b), 0);
    golden("pagerduty_event.json", &b);
    for (size_t i = 0; i < N(cases); i++) {
        ev.kind = cases[i].kind;
        ev.verdict = cases[i].verdict;
        rg_buf_reset(&b);
        assert_int_equal(rg_payload_pagerduty_event(&pd_settings, &ev, &b), 0);
        root = parse_json(&b);
        assert_string_equal(get_str(root, action), cases[i].action);
        assert_string_equal(get_str(root, severity), cases[i].severity);
        /* One incident per deployment, so the resolve closes the trigger. */
        if (cases[i].kind != RG_NOTIFY_EVENT_TEST)
            assert_string_equal(get_str(root, dedup), "1179156e158c856c678e2f64cd13bc1b638b931c"
                                                      "78f75c18ea740394be0e87cb");
        else
            assert_string_not_equal(get_str(root, dedup), "1179156e158c856c678e2f64cd13bc1b638b"
                                                          "931c78f75c18ea740394be0e87cb");
        yajl_tree_free(root);
    }
    rg_buf_cleanup(&b);
}

static void test_pagerduty__summary_truncated_on_utf8(void **state)
{
    static const char *summary[] = { "payload", "summary", NULL };
    struct rg_notify_deploy_event ev = make_event();
    struct rg_buf reason = { 0 }, b = { 0 };
    yajl_val root;
    const char *s;
    (void)state;

    /* A reason of 2-, 3- and 4-byte characters, offset so that every cut position
     * can fall inside a sequence. */
    for (int shift = 0; shift < 4; shift++) {
        rg_buf_reset(&reason);
        for (int i = 0; i < shift; i++)
            rg_buf_putc(&reason, 'x');
        for (int i = 0; i < 400; i++)
            rg_buf_puts(&reason, i % 3 == 0 ? "\xc3\xa9" : i % 3 == 1 ? "\xe2\x82\xac"
                                                                     : "\xf0\x9f\x9a\x80");
        ev.reason = reason.data;
        rg_buf_reset(&b);
        assert_int_equal(rg_payload_pagerduty_event(&pd_settings, &ev, &b), 0);
        root = parse_json(&b);
        s = get_str(root, summary);
        assert_true(strlen(s) <= RG_PAYLOAD_PD_SUMMARY_MAX);
        assert_true(strlen(s) >= RG_PAYLOAD_PD_SUMMARY_MAX - 6);
        assert_true(valid_utf8((const unsigned char *)s, strlen(s)));
        assert_memory_equal(s + strlen(s) - 3, "\xe2\x80\xa6", 3);
        yajl_tree_free(root);
    }
    /* A summary that fits is left alone. */
    ev.reason = "short";
    rg_buf_reset(&b);
    assert_int_equal(rg_payload_pagerduty_event(&pd_settings, &ev, &b), 0);
    root = parse_json(&b);
    assert_string_equal(get_str(root, summary), "checkout: rollback in phase canary-10 (was hold): "
                                                "short");
    yajl_tree_free(root);
    rg_buf_cleanup(&reason);
    rg_buf_cleanup(&b);
}

static void test_pagerduty__size_limit_drops_details(void **state)
{
    enum { NA = 300 };
    struct rg_notify_alert *many = calloc(NA, sizeof(*many));
    struct rg_label (*labels)[2] = calloc(NA, sizeof(*labels));
    struct rg_label *anno = calloc(NA, sizeof(*anno));
    char (*names)[16] = calloc(NA, sizeof(*names));
    char *big = malloc(4001);
    struct rg_buf b = { 0 };
    (void)state;

    assert_non_null(many);
    assert_non_null(labels);
    assert_non_null(anno);
    assert_non_null(names);
    assert_non_null(big);
    memset(big, 'd', 4000);
    big[4000] = '\0';
    for (size_t i = 0; i < NA; i++) {
        snprintf(names[i], sizeof(names[i]), "i%zu", i);
        labels[i][0] = (struct rg_label){ "alertname", "Big" };
        labels[i][1] = (struct rg_label){ "instance", names[i] };
        anno[i] = (struct rg_label){ "description", big };
        many[i] = (struct rg_notify_alert){ labels[i], 2, &anno[i], 1, T0, 0, NULL };
    }
    /* 300 alerts of 4 KB each exceed 512 KB: the event keeps only the counts. */
    assert_int_equal(rg_payload_pagerduty_alerts(&pd_settings, NULL, many, NA, NOW, &b), 0);
    yajl_tree_free(parse_json(&b));
    assert_true(b.len <= RG_PAYLOAD_PD_EVENT_MAX);
    assert_null(strstr(b.data, "\"alerts\""));
    assert_non_null(strstr(b.data, "\"custom_details\":{\"num_firing\":300,\"num_resolved\":0}"));
    /* 100 of them fit and keep every alert. */
    rg_buf_reset(&b);
    assert_int_equal(rg_payload_pagerduty_alerts(&pd_settings, NULL, many, 100, NOW, &b), 0);
    yajl_tree_free(parse_json(&b));
    assert_non_null(strstr(b.data, "\"alerts\":["));
    rg_buf_cleanup(&b);
    free(big);
    free(names);
    free(anno);
    free(labels);
    free(many);
}

static void test_slack__event_golden(void **state)
{
    struct rg_notify_deploy_event ev = make_event();
    struct rg_buf b = { 0 };
    (void)state;

    assert_int_equal(rg_payload_slack_event(&ev, &b), 0);
    golden("slack_event.json", &b);
    assert_non_null(strstr(b.data, "\"color\":\"#e01e5a\""));
    /* The failing trigger and the gate without data are listed, the ok gate is not. */
    assert_non_null(strstr(b.data, "*error_rate* (trigger, firing since"));
    assert_non_null(strstr(b.data, "*saturation* (gate, no_data"));
    assert_null(strstr(b.data, "*latency_p99*"));
    /* Operators are escaped for mrkdwn. */
    assert_non_null(strstr(b.data, "`0.052` \\u0026gt; `0.01`"));
    assert_non_null(strstr(b.data, "`0.12` \\u0026lt;= baseline `0.1`"));

    ev.verdict = "promote";
    ev.kind = RG_NOTIFY_EVENT_PROMOTE;
    ev.nchecks = 2;
    rg_buf_reset(&b);
    assert_int_equal(rg_payload_slack_event(&ev, &b), 0);
    yajl_tree_free(parse_json(&b));
    assert_non_null(strstr(b.data, "\"color\":\"#2eb67d\""));
    ev.verdict = "inconclusive";
    rg_buf_reset(&b);
    assert_int_equal(rg_payload_slack_event(&ev, &b), 0);
    assert_non_null(strstr(b.data, "\"color\":\"#ecb22e\""));
    ev.checks = &checks[1];
    ev.nchecks = 1;
    rg_buf_reset(&b);
    assert_int_equal(rg_payload_slack_event(&ev, &b), 0);
    assert_non_null(strstr(b.data, "all 1 ok"));
    rg_buf_cleanup(&b);
}

/* Largest "text" of a section block in the Slack message @root, in bytes. */
static size_t max_section_text(yajl_val root)
{
    static const char *blocks_path[] = { "blocks", NULL };
    static const char *text_path[] = { "text", "text", NULL };
    yajl_val att = yajl_tree_get(root, (const char *[]){ "attachments", NULL }, yajl_t_array);
    yajl_val blocks;
    size_t max = 0;

    assert_non_null(att);
    blocks = yajl_tree_get(YAJL_GET_ARRAY(att)->values[0], blocks_path, yajl_t_array);
    assert_non_null(blocks);
    for (size_t i = 0; i < YAJL_GET_ARRAY(blocks)->len; i++) {
        yajl_val t = yajl_tree_get(YAJL_GET_ARRAY(blocks)->values[i], text_path, yajl_t_string);
        const char *s = t ? YAJL_GET_STRING(t) : NULL;

        if (s && strlen(s) > max)
            max = strlen(s);
    }
    return max;
}

static void test_slack__limits(void **state)
{
    enum { NC = 200 };
    struct rg_notify_check *many = calloc(NC, sizeof(*many));
    struct rg_notify_deploy_event ev = make_event();
    struct rg_buf b = { 0 }, longname = { 0 };
    yajl_val root;
    (void)state;

    assert_non_null(many);
    for (size_t i = 0; i < NC; i++)
        many[i] = (struct rg_notify_check){ "a_rather_long_check_name_for_the_limit",
                                            RG_NOTIFY_CHECK_GATE, NULL, 1.5, ">=", 2, "failing",
                                            T0, 0, 0 };
    for (int i = 0; i < 100; i++)
        rg_buf_puts(&longname, "deployment-");
    ev.checks = many;
    ev.nchecks = NC;
    ev.deployment = longname.data;
    assert_int_equal(rg_payload_slack_event(&ev, &b), 0);
    root = parse_json(&b);
    assert_true(max_section_text(root) <= 3000);
    assert_non_null(strstr(b.data, "more\\n"));
    assert_non_null(strstr(b.data, "*Checks not ok (200 of 200)*"));
    yajl_tree_free(root);
    /* The header is plain text of at most 150 bytes. */
    {
        const char *h = strstr(b.data, "\"plain_text\",\"text\":\"");
        const char *e;

        assert_non_null(h);
        h += strlen("\"plain_text\",\"text\":\"");
        e = strchr(h, '"');
        assert_true(e - h <= 150);
    }
    rg_buf_cleanup(&longname);
    rg_buf_cleanup(&b);
    free(many);
}

static void test_slack__alerts_golden(void **state)
{
    struct rg_buf b = { 0 };
    (void)state;

    assert_int_equal(rg_payload_slack_alerts(&group, alerts, N(alerts), NOW, &b), 0);
    golden("slack_alerts.json", &b);
    assert_non_null(strstr(b.data, "\"color\":\"#e01e5a\""));
    rg_buf_reset(&b);
    assert_int_equal(rg_payload_slack_alerts(&group, &alerts[1], 1, NOW, &b), 0);
    yajl_tree_free(parse_json(&b));
    assert_non_null(strstr(b.data, "\"color\":\"#2eb67d\""));
    assert_non_null(strstr(b.data, "\"text\":\"[RESOLVED] api"));
    rg_buf_cleanup(&b);
}

static void test_builders__empty_and_null_inputs(void **state)
{
    static const struct rg_label odd[] = { { NULL, "x" }, { "a", NULL }, { "b", "" } };
    static const struct rg_notify_alert bare[] = { { odd, 3, odd, 3, 0, 0, NULL } };
    static const struct rg_notify_check null_check[] = {
        { NULL, RG_NOTIFY_CHECK_GATE, NULL, INFINITY, NULL, -INFINITY, NULL, 0, 1, NAN },
    };
    struct rg_notify_deploy_event ev = { .kind = RG_NOTIFY_EVENT_VERDICT_CHANGED,
                                         .traffic_weight = NAN, .checks = null_check,
                                         .nchecks = 1 };
    struct rg_notify_pagerduty pd = { 0 };
    struct rg_buf b = { 0 };
    (void)state;

    /* Every builder copes with NULL strings and empty sets and still writes JSON. */
    assert_int_equal(rg_payload_alertmanager(bare, 1, NULL, 0, &b), 0);
    assert_string_equal(b.data, "[{\"startsAt\":\"1970-01-01T00:00:00.000Z\",\"labels\":{}}]");
    rg_buf_reset(&b);
    assert_int_equal(rg_payload_webhook_alerts(NULL, bare, 1, 0, &b), 0);
    yajl_tree_free(parse_json(&b));
    rg_buf_reset(&b);
    assert_int_equal(rg_payload_pagerduty_alerts(&pd, NULL, bare, 1, 0, &b), 0);
    yajl_tree_free(parse_json(&b));
    rg_buf_reset(&b);
    assert_int_equal(rg_payload_slack_alerts(NULL, bare, 1, 0, &b), 0);
    yajl_tree_free(parse_json(&b));
    rg_buf_reset(&b);
    assert_int_equal(rg_payload_slack_alerts(NULL, NULL, 0, 0, &b), 0);
    yajl_tree_free(parse_json(&b));
    rg_buf_reset(&b);
    assert_int_equal(rg_payload_webhook_event(&ev, &b), 0);
    yajl_tree_free(parse_json(&b));
    assert_non_null(strstr(b.data, "\"value\":\"+Inf\",\"op\":\"\",\"threshold\":\"-Inf\""));
    assert_non_null(strstr(b.data, "\"phase_started_at\":null"));
    rg_buf_reset(&b);
    assert_int_equal(rg_payload_pagerduty_event(&pd, &ev, &b), 0);
    yajl_tree_free(parse_json(&b));
    rg_buf_reset(&b);
    assert_int_equal(rg_payload_slack_event(&ev, &b), 0);
    yajl_tree_free(parse_json(&b));
    assert_non_null(strstr(b.data, "\"color\":\"#439fe0\""));
    rg_buf_cleanup(&b);
}

/* ---- Signatures -------------------------------------------------------------------- */

static size_t unhex(const char *s, unsigned char *out)
{
    size_t n = strlen(s) / 2;

    for (size_t i = 0; i < n; i++) {
        unsigned v;

        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
    return n;
}

static void test_sign__rfc4231_vectors(void **state)
{
    static const char tc7[] = "This is a test using a larger than block-size key and a larger "
                              "than block-size data. The key needs to be hashed before being "
                              "used by the HMAC algorithm.";
    static const struct {
        const char *key_hex;
        const char *data_hex;    /* NULL: use data */
        const char *data;
        const char *mac_hex;     /* test case 5 gives only the first 128 bits */
    } cases[] = {
        { "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", NULL, "Hi There",
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
        { "4a656665", NULL, "what do ya want for nothing?",
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
        { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
          "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
          "dddddddddddddddddddddddddddd", NULL,
          "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
        { "0102030405060708090a0b0c0d0e0f10111213141516171819",
          "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
          "cdcdcdcdcdcdcdcdcdcdcdcdcdcd", NULL,
          "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
        { "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", NULL, "Test With Truncation",
          "a3b6167473100ee06e0c796c2955552b" },
        { NULL, NULL, "Test Using Larger Than Block-Size Key - Hash Key First",
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
        { NULL, NULL, tc7,
          "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" },
    };
    (void)state;

    for (size_t i = 0; i < N(cases); i++) {
        unsigned char key[131], data[256], want[32], mac[RG_SIGN_MAC_SIZE];
        size_t klen, dlen, wlen;
        struct rg_slice parts[2];

        if (cases[i].key_hex) {
            klen = unhex(cases[i].key_hex, key);
        } else {
            memset(key, 0xaa, sizeof(key));   /* test cases 6 and 7: 131 bytes of 0xaa */
            klen = sizeof(key);
        }
        if (cases[i].data_hex) {
            dlen = unhex(cases[i].data_hex, data);
        } else {
            dlen = strlen(cases[i].data);
            memcpy(data, cases[i].data, dlen);
        }
        wlen = unhex(cases[i].mac_hex, want);
        /* Split the message in two parts to exercise the incremental updates. */
        parts[0] = (struct rg_slice){ (const char *)data, dlen / 2 };
        parts[1] = (struct rg_slice){ (const char *)data + dlen / 2, dlen - dlen / 2 };
        assert_int_equal(rg_sign_hmac_sha256(key, klen, parts, 2, mac), 0);
        assert_memory_equal(mac, want, wlen);
    }
    assert_int_equal(rg_sign_hmac_sha256("", 0, NULL, 0, (unsigned char[32]){ 0 }), RG_EINVAL);
}

static void test_sign__header_format_and_verify(void **state)
{
    static const char body[] = "{\"kind\":\"test\"}";
    /* Computed independently (Python's hmac module). */
    static const char want[] =
        "t=1717236000,v1=2ca5387b56c28a042f060115df94e472a1d757dd64c3bd351bc88706f4092b5d";
    char h[RG_SIGN_HEADER_SIZE], h2[RG_SIGN_HEADER_SIZE], rot[256];
    (void)state;

    assert_int_equal(rg_sign_webhook("s3cret", 6, 1717236000, body, strlen(body), h), 0);
    assert_string_equal(h, want);
    assert_int_equal(rg_sign_verify("s3cret", 6, h, body, strlen(body), 1717236000, 300), 0);
    assert_int_equal(rg_sign_verify("s3cret", 6, h, body, strlen(body), 1717236300, 300), 0);
    assert_int_equal(rg_sign_verify("s3cret", 6, h, body, strlen(body), 1717236301, 300),
                     RG_ETOOOLD);
    assert_int_equal(rg_sign_verify("s3cret", 6, h, body, strlen(body), 1717235699, 300),
                     RG_EFUTURE);
    assert_int_equal(rg_sign_verify("s3cret", 6, h, body, strlen(body), 0, -1), 0);
    assert_int_equal(rg_sign_verify("s3cret", 6, h, "{\"kind\":\"tesT\"}", strlen(body),
                                    1717236000, 300), RG_EINVAL);
    assert_int_equal(rg_sign_verify("s3creT", 6, h, body, strlen(body), 1717236000, 300),
                     RG_EINVAL);
    assert_int_equal(rg_sign_verify("", 0, h, body, strlen(body), 1717236000, 300), RG_EINVAL);

    /* Rotation: several v1 values (and unknown schemes) in one header. */
    assert_int_equal(rg_sign_webhook("old", 3, 1717236000, body, strlen(body), h2), 0);
    snprintf(rot, sizeof(rot), "t=1717236000,v0=zz,v1=%s, v1=%s", h2 + 16, h + 16);
    assert_int_equal(rg_sign_verify("s3cret", 6, rot, body, strlen(body), 1717236000, 300), 0);
    assert_int_equal(rg_sign_verify("old", 3, rot, body, strlen(body), 1717236000, 300), 0);
    assert_int_equal(rg_sign_verify("new", 3, rot, body, strlen(body), 1717236000, 300),
                     RG_EINVAL);

    /* An empty body and a negative time still sign and verify. */
    assert_int_equal(rg_sign_webhook("k", 1, -5, NULL, 0, h2), 0);
    assert_int_equal(strncmp(h2, "t=-5,v1=", 8), 0);
    assert_int_equal(rg_sign_verify("k", 1, h2, "", 0, -5, 0), 0);

    assert_true(rg_sign_equal("abc", "abc", 3));
    assert_false(rg_sign_equal("abc", "abd", 3));
}

static void test_sign__malformed_headers(void **state)
{
    static const char body[] = "x";
    static const char *bad[] = {
        "",
        "t=1",
        "v1=2ca5387b56c28a042f060115df94e472a1d757dd64c3bd351bc88706f4092b5d",
        "t=,v1=2ca5387b56c28a042f060115df94e472a1d757dd64c3bd351bc88706f4092b5d",
        "t=12x,v1=2ca5387b56c28a042f060115df94e472a1d757dd64c3bd351bc88706f4092b5d",
        "t=1,t=2,v1=2ca5387b56c28a042f060115df94e472a1d757dd64c3bd351bc88706f4092b5d",
        "t=1,v1=2ca5",
        "t=1,v1=zca5387b56c28a042f060115df94e472a1d757dd64c3bd351bc88706f4092b5d",
        "t=1234567890123456789,v1=2ca5387b56c28a042f060115df94e472a1d757dd64c3bd351bc8870"
        "6f4092b5d",
        "t=1,garbage",
        ",,,",
    };
    (void)state;

    for (size_t i = 0; i < N(bad); i++)
        assert_int_equal(rg_sign_verify("k", 1, bad[i], body, 1, 1, -1), RG_EBADMSG);
    assert_int_equal(rg_sign_verify("k", 1, NULL, body, 1, 1, -1), RG_EBADMSG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time__rfc3339_ms),
        cmocka_unit_test(test_time__rfc3339_nano),
        cmocka_unit_test(test_json__go_escaping),
        cmocka_unit_test(test_fingerprint__table),
        cmocka_unit_test(test_status__from_ends_at),
        cmocka_unit_test(test_utf8__prefix),
        cmocka_unit_test(test_batch__ranges),
        cmocka_unit_test(test_dedup__stable),
        cmocka_unit_test(test_alertmanager__golden),
        cmocka_unit_test(test_webhook__alerts_golden),
        cmocka_unit_test(test_webhook__resolved_group_and_defaults),
        cmocka_unit_test(test_webhook__event_golden),
        cmocka_unit_test(test_pagerduty__alerts_golden),
        cmocka_unit_test(test_pagerduty__event_golden),
        cmocka_unit_test(test_pagerduty__summary_truncated_on_utf8),
        cmocka_unit_test(test_pagerduty__size_limit_drops_details),
        cmocka_unit_test(test_slack__event_golden),
        cmocka_unit_test(test_slack__limits),
        cmocka_unit_test(test_slack__alerts_golden),
        cmocka_unit_test(test_builders__empty_and_null_inputs),
        cmocka_unit_test(test_sign__rfc4231_vectors),
        cmocka_unit_test(test_sign__header_format_and_verify),
        cmocka_unit_test(test_sign__malformed_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
