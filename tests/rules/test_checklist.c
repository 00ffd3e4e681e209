/* tests/rules/test_checklist.c - checklist parsing, validation messages and the
 * canonical dump.
 *
 * Golden cases live in tests/data/checklist: every NAME.yml has either NAME.dump
 * (it must parse and dump to exactly that text) or NAME.err (it must fail with
 * exactly those "file:line:col: message" lines). RG_APPROVE=1 rewrites the
 * expected files from the current output. The bundled checklist, every example and
 * the bundled defaults are checked against each other.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/yaml.h"
#include "rules/checklist.h"
#include "util/err.h"
#include "util/file.h"

#define DATA "tests/data/checklist"

static struct rg_yaml_node *read_yaml(const char *path)
{
    struct rg_buf text = { 0 };
    struct rg_yaml_node *root = NULL;
    char msg[256];

    if (rg_file_read(path, 1 << 20, &text) == 0 &&
        rg_yaml_parse(text.data ? text.data : "", text.len, &root, msg, sizeof(msg)) != 0)
        root = NULL;
    rg_buf_cleanup(&text);
    return root;
}

static void add_doc(struct rg_config *cfg, const char *path, struct rg_yaml_node *root)
{
    cfg->docs = realloc(cfg->docs, (cfg->ndocs + 1) * sizeof(*cfg->docs));
    assert_non_null(cfg->docs);
    cfg->docs[cfg->ndocs].path = strdup(path);
    cfg->docs[cfg->ndocs++].root = root;
}

/* Builds the configuration documents of @path (and of its `include:`s) without the
 * config loader's own sections check, so that a file may hold checklist sections the
 * loader does not list. */
static int load_doc(const char *path, struct rg_config *cfg)
{
    struct rg_yaml_node *root = read_yaml(path);
    const struct rg_yaml_node *inc;

    rg_config_default(cfg);
    if (!root)
        return RG_EPARSE;
    cfg->yaml = root;
    snprintf(cfg->path, sizeof(cfg->path), "%s", path);
    add_doc(cfg, path, root);
    inc = rg_yaml_get(root, "include");
    for (size_t i = 0; inc && inc->kind == RG_YAML_SEQ && i < inc->nitems; i++) {
        char p[1024];
        struct rg_yaml_node *r;
        rg_config_resolve_path(path, inc->items[i]->scalar, p, sizeof(p));
        r = read_yaml(p);
        assert_non_null(r);
        add_doc(cfg, p, r);
    }
    return 0;
}

static int parse_file(const char *path, struct rg_checklist **cl, struct rg_buf *err)
{
    struct rg_config cfg;
    int rc = load_doc(path, &cfg);

    assert_int_equal(rc, 0);
    rc = rg_checklist_parse(&cfg, cl, err);
    rg_config_cleanup(&cfg);
    return rc;
}

static void compare_or_approve(const char *expected_path, const struct rg_buf *got)
{
    struct rg_buf want = { 0 };
    const char *g = got->data ? got->data : "";

    if (getenv("RG_APPROVE")) {
        assert_int_equal(rg_file_write_atomic(expected_path, g, got->len), 0);
        return;
    }
    if (rg_file_read(expected_path, 1 << 20, &want) != 0)
        fail_msg("missing %s (run with RG_APPROVE=1 to create it)", expected_path);
    if (strcmp(want.data ? want.data : "", g) != 0) {
        print_error("%s differs; got:\n%s\n", expected_path, g);
        fail();
    }
    rg_buf_cleanup(&want);
}

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static void test_checklist__golden(void **state)
{
    DIR *dir = opendir(DATA);
    struct dirent *e;
    int cases = 0, bad = 0;
    (void)state;

    assert_non_null(dir);
    while ((e = readdir(dir))) {
        char path[512], exp[512];
        struct rg_checklist *cl = NULL;
        struct rg_buf err = { 0 }, out = { 0 };
        FILE *f;
        int rc;

        if (!has_suffix(e->d_name, ".yml"))
            continue;
        snprintf(path, sizeof(path), "%s/%s", DATA, e->d_name);
        snprintf(exp, sizeof(exp), "%s/%.*s.err", DATA, (int)strlen(e->d_name) - 4, e->d_name);
        f = fopen(exp, "r");
        rc = parse_file(path, &cl, &err);
        if (f || strncmp(e->d_name, "bad-", 4) == 0) {
            if (f)
                fclose(f);
            if (rc != RG_EINVAL)
                print_error("%s: expected errors, got rc %d\n", path, rc);
            assert_int_equal(rc, RG_EINVAL);
            assert_null(cl);
            compare_or_approve(exp, &err);
            bad++;
        } else {
            if (rc)
                print_error("%s: %s", path, err.data ? err.data : "");
            assert_int_equal(rc, 0);
            assert_int_equal(rg_checklist_dump(cl, &out), 0);
            snprintf(exp, sizeof(exp), "%s/%.*s.dump", DATA, (int)strlen(e->d_name) - 4,
                     e->d_name);
            compare_or_approve(exp, &out);
        }
        cases++;
        rg_checklist_free(cl);
        rg_buf_cleanup(&err);
        rg_buf_cleanup(&out);
    }
    closedir(dir);
    assert_true(cases >= 6);
    assert_true(bad >= 3);
}

/* The bundled defaults, rules/production-checklist.yaml and the seed's numbers agree. */
static void test_checklist__production_file(void **state)
{
    struct rg_checklist *file = NULL, *builtin = NULL;
    struct rg_buf err = { 0 }, a = { 0 }, b = { 0 };
    struct rg_config empty;
    (void)state;

    assert_int_equal(parse_file("rules/production-checklist.yaml", &file, &err), 0);
    rg_config_default(&empty);
    assert_int_equal(rg_checklist_parse(&empty, &builtin, &err), 0);
    assert_int_equal(err.len, 0);
    assert_int_equal(rg_checklist_dump(file, &a), 0);
    assert_int_equal(rg_checklist_dump(builtin, &b), 0);
    assert_string_equal(a.data, b.data);

    assert_int_equal(file->nphases, 4);
    assert_string_equal(file->phases[0].name, "canary");
    assert_true(file->phases[0].traffic_weight == 5);
    assert_int_equal(file->phases[0].min_observation_ms, 15 * 60000);
    assert_int_equal(file->phases[0].max_observation_ms, 30 * 60000);
    assert_true(file->phases[1].traffic_weight == 25);
    assert_int_equal(file->phases[1].min_observation_ms, 15 * 60000);
    assert_int_equal(file->phases[1].max_observation_ms, 30 * 60000);
    assert_true(file->phases[2].traffic_weight == 100);
    assert_int_equal(file->phases[2].min_observation_ms, 3600000);
    assert_int_equal(file->phases[2].max_observation_ms, 0);
    assert_int_equal(file->phases[3].min_observation_ms, 24 * 3600000);
    assert_int_equal(file->phases[2].ngates, 7);
    assert_string_equal(file->phases[2].gates[0].signal, "error_ratio");
    assert_true(file->phases[2].gates[0].threshold == 0.001);
    assert_int_equal(file->phases[2].gates[0].op, RG_CHECKLIST_LT);
    assert_true(file->phases[2].gates[1].threshold == 0.1);
    assert_true(file->phases[2].gates[2].threshold == 0.7);
    assert_true(file->phases[2].gates[3].threshold == 0.75);
    assert_int_equal(file->ntriggers, 3);
    assert_true(file->triggers[0].threshold == 0.01);
    assert_int_equal(file->triggers[0].op, RG_CHECKLIST_GT);
    assert_true(file->triggers[1].threshold == 0.5);
    assert_string_equal(file->triggers[2].signal, "database_up");
    assert_int_equal(file->triggers[2].op, RG_CHECKLIST_EQ);

    rg_checklist_free(file);
    rg_checklist_free(builtin);
    rg_checklist_free(NULL);
    rg_buf_cleanup(&err);
    rg_buf_cleanup(&a);
    rg_buf_cleanup(&b);
}

static void test_checklist__examples_parse(void **state)
{
    DIR *dir = opendir("examples");
    struct dirent *e;
    int n = 0;
    (void)state;

    assert_non_null(dir);
    while ((e = readdir(dir))) {
        char path[512];
        struct rg_checklist *cl = NULL;
        struct rg_buf err = { 0 };
        if (!has_suffix(e->d_name, ".yml"))
            continue;
        snprintf(path, sizeof(path), "examples/%s", e->d_name);
        if (parse_file(path, &cl, &err))
            fail_msg("%s: %s", path, err.data ? err.data : "?");
        assert_non_null(cl);
        rg_checklist_free(cl);
        rg_buf_cleanup(&err);
        n++;
    }
    closedir(dir);
    assert_true(n >= 3);
}

/* Sections in included files are read like those of the main file. */
static void test_checklist__include(void **state)
{
    struct rg_config cfg;
    struct rg_checklist *cl = NULL;
    struct rg_buf err = { 0 };
    (void)state;

    rg_config_default(&cfg);
    if (rg_config_load_file(DATA "/include/main.yml", &cfg, &err))
        fail_msg("%s", err.data ? err.data : "?");
    assert_int_equal(rg_checklist_parse(&cfg, &cl, &err), 0);
    assert_int_equal(cl->nphases, 4);
    assert_int_equal(cl->ndeployments, 1);
    assert_int_equal(cl->deployments[0].nphases, 2);
    assert_string_equal(cl->phases[cl->deployments[0].phases[1]].name, "progressive");
    assert_non_null(rg_checklist_signal_find(cl, "checkout_errors"));
    rg_checklist_free(cl);
    rg_config_cleanup(&cfg);

    /* An error inside an included file names that file. */
    rg_buf_reset(&err);
    rg_config_default(&cfg);
    if (rg_config_load_file(DATA "/include/broken.yml", &cfg, &err))
        fail_msg("%s", err.data ? err.data : "?");
    assert_int_equal(rg_checklist_parse(&cfg, &cl, &err), RG_EINVAL);
    assert_string_equal(err.data, DATA "/include/broken-part.yml:4:17: gate \"error_ratio\": "
                                       "unknown signal \"eror_ratio\"\n");
    rg_config_cleanup(&cfg);
    rg_buf_cleanup(&err);
}

/* The bundled configuration (which includes the production checklist) loads, and its
 * checklist has the production phases either way. */
static void test_checklist__bundled_config(void **state)
{
    struct rg_config cfg;
    struct rg_checklist *cl = NULL;
    struct rg_buf err = { 0 };
    (void)state;

    rg_config_default(&cfg);
    if (rg_config_load_file("rules/rollgate.yml", &cfg, &err))
        fail_msg("%s", err.data ? err.data : "?");
    if (rg_checklist_parse(&cfg, &cl, &err))
        fail_msg("%s", err.data ? err.data : "?");
    assert_int_equal(cl->nphases, 4);
    assert_string_equal(cl->phases[3].name, "post_deployment");
    assert_int_equal(cl->ntriggers, 3);
    assert_int_equal(cl->evaluation_interval_ms, 1000);
    rg_checklist_free(cl);
    rg_config_cleanup(&cfg);
    rg_buf_cleanup(&err);
}

static void test_checklist__window(void **state)
{
    struct rg_checklist_phase p;
    (void)state;

    memset(&p, 0, sizeof(p));
    assert_int_equal(rg_checklist_window(NULL), 60000);
    p.min_observation_ms = 10000;
    assert_int_equal(rg_checklist_window(&p), 60000);
    p.min_observation_ms = 15 * 60000;
    assert_int_equal(rg_checklist_window(&p), 15 * 60000);
    p.min_observation_ms = 24 * 3600000;
    assert_int_equal(rg_checklist_window(&p), 3600000);
}

static void test_checklist__expand(void **state)
{
    static const struct {
        const char *tmpl, *sel;
        int64_t window;
        const char *want;
    } cases[] = {
        { "up{<selector>}", "job=\"a\"", 0, "up{job=\"a\"}" },
        { "sum(rate(x{<selector>,code=~\"5..\"}[1m])) / sum(rate(x{<selector>}[1m]))",
          "job=\"a\",track=\"canary\"", 0,
          "sum(rate(x{job=\"a\",track=\"canary\",code=~\"5..\"}[1m])) / "
          "sum(rate(x{job=\"a\",track=\"canary\"}[1m]))" },
        { "increase(x{<selector>}[<window>])", "a=\"b\"", 900000, "increase(x{a=\"b\"}[15m])" },
        { "vector(1)", "a=\"b\"", 0, "vector(1)" },
        { "<selecto <window", "x", 0, "<selecto <window" },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_buf b = { 0 };
        assert_int_equal(rg_checklist_expand(cases[i].tmpl, cases[i].sel, cases[i].window, &b),
                         0);
        assert_string_equal(b.data, cases[i].want);
        rg_buf_cleanup(&b);
    }
}

static void test_checklist__compare(void **state)
{
    static const struct {
        enum rg_checklist_op op;
        double v, t;
        int want;
    } cases[] = {
        { RG_CHECKLIST_LT, 1, 2, 1 }, { RG_CHECKLIST_LT, 2, 2, 0 },
        { RG_CHECKLIST_LE, 2, 2, 1 }, { RG_CHECKLIST_GT, 3, 2, 1 },
        { RG_CHECKLIST_GT, 2, 2, 0 }, { RG_CHECKLIST_GE, 2, 2, 1 },
        { RG_CHECKLIST_EQ, 0, 0, 1 }, { RG_CHECKLIST_EQ, 1, 0, 0 },
        { RG_CHECKLIST_NE, 1, 0, 1 }, { RG_CHECKLIST_NE, 0, 0, 0 },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(rg_checklist_compare(cases[i].op, cases[i].v, cases[i].t),
                         cases[i].want);
    assert_string_equal(rg_checklist_op_name(RG_CHECKLIST_GE), ">=");
    assert_string_equal(rg_checklist_kind_name(RG_CHECKLIST_TRIGGER), "trigger");
}

/* Every bundled signal instantiates to valid PromQL for a discovered job. */
static void test_checklist__builtin_signals(void **state)
{
    static const char *const names[] = {
        "error_ratio", "p99_latency", "error_ratio_instant", "p99_latency_instant", "cpu_utilisation", "memory_utilisation", "database_up",
        "database_connection_utilisation", "queue_depth", "request_count", "critical_alerts",
    };
    struct rg_config cfg;
    struct rg_checklist *cl = NULL;
    struct rg_buf err = { 0 };
    (void)state;

    rg_config_default(&cfg);
    assert_int_equal(rg_checklist_parse(&cfg, &cl, &err), 0);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const struct rg_checklist_signal *s = rg_checklist_signal_find(cl, names[i]);
        assert_non_null(s);
        assert_true(s->builtin);
    }
    assert_null(rg_checklist_signal_find(cl, "nope"));
    assert_string_equal(rg_checklist_signal_find(cl, "p99_latency")->expr,
                        "histogram_quantile(0.99, sum by (le) (rate("
                        "http_request_duration_seconds_bucket{<selector>}[1m])))");
    assert_int_equal(cl->evaluation_interval_ms, 1000);
    assert_true(cl->discovery.enabled);
    assert_string_equal(cl->discovery.label, "job");
    assert_int_equal(cl->discovery.nphases, 4);
    rg_checklist_free(cl);
    rg_buf_cleanup(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checklist__golden),
        cmocka_unit_test(test_checklist__production_file),
        cmocka_unit_test(test_checklist__examples_parse),
        cmocka_unit_test(test_checklist__include),
        cmocka_unit_test(test_checklist__bundled_config),
        cmocka_unit_test(test_checklist__window),
        cmocka_unit_test(test_checklist__expand),
        cmocka_unit_test(test_checklist__compare),
        cmocka_unit_test(test_checklist__builtin_signals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
