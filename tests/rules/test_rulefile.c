/* tests/rules/test_rulefile.c - rule files: golden dumps, exact error positions,
 * rule_files globbing in the configuration.
 *
 * Every tests/data/rules/NAME.yml must load and dump to NAME.dump; every
 * tests/data/rules/bad/NAME.yml must fail with exactly the lines of NAME.err.
 * RG_APPROVE=1 rewrites the expected files from the current output. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "promql/ast.h"
#include "rules/rulefile.h"
#include "rules/template.h"
#include "util/err.h"
#include "util/file.h"

#define DATA "tests/data/rules"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted *.yml names in @dir. */
static size_t list_yml(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;

    assert_non_null(d);
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".yml") == 0) {
            names = realloc(names, (n + 1) * sizeof(*names));
            names[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_str);
    *out = names;
    return n;
}

static void compare_golden(const char *want_path, const struct rg_buf *got)
{
    struct rg_buf want = { 0 };

    if (getenv("RG_APPROVE")) {
        assert_int_equal(rg_file_write_atomic(want_path, got->data ? got->data : "", got->len), 0);
        return;
    }
    if (rg_file_read(want_path, 1 << 20, &want) != 0)
        fail_msg("missing golden file %s (run with RG_APPROVE=1)", want_path);
    if (want.len != got->len || memcmp(want.data, got->data, got->len) != 0)
        fail_msg("%s differs; got:\n%s", want_path, got->data ? got->data : "");
    rg_buf_cleanup(&want);
}

static void test_rulefile__golden_dumps(void **state)
{
    char **names;
    size_t n = list_yml(DATA, &names);
    (void)state;

    assert_true(n >= 3);
    for (size_t i = 0; i < n; i++) {
        char path[512], dump_path[512];
        struct rg_rulefile *f = NULL;
        struct rg_buf err = { 0 }, dump = { 0 };
        int rc;

        snprintf(path, sizeof(path), DATA "/%s", names[i]);
        snprintf(dump_path, sizeof(dump_path), DATA "/%.*s.dump",
                 (int)(strlen(names[i]) - 4), names[i]);
        rc = rg_rulefile_load(path, &f, &err);
        if (rc)
            fail_msg("%s: %s", path, err.data);
        assert_int_equal(rg_rulefile_dump(f, &dump), 0);
        compare_golden(dump_path, &dump);

        /* The dump is itself a valid rule file whose dump is the same (a fixpoint). */
        {
            struct rg_rulefile *f2 = NULL;
            struct rg_buf dump2 = { 0 };
            rg_buf_reset(&err);
            rc = rg_rulefile_parse(path, dump.data, dump.len, &f2, &err);
            if (rc)
                fail_msg("%s dump does not parse: %s", path, err.data);
            assert_int_equal(rg_rulefile_dump(f2, &dump2), 0);
            assert_string_equal(dump.data, dump2.data);
            rg_rulefile_free(f2);
            rg_buf_cleanup(&dump2);
        }
        rg_rulefile_free(f);
        rg_buf_cleanup(&err);
        rg_buf_cleanup(&dump);
        free(names[i]);
    }
    free(names);
}

static void test_rulefile__bad_files_report_positions(void **state)
{
    char **names;
    size_t n = list_yml(DATA "/bad", &names);
    (void)state;

    assert_true(n >= 5);
    for (size_t i = 0; i < n; i++) {
        char path[512], err_path[512];
        struct rg_rulefile *f = NULL;
        struct rg_buf err = { 0 };
        int rc;

        snprintf(path, sizeof(path), DATA "/bad/%s", names[i]);
        snprintf(err_path, sizeof(err_path), DATA "/bad/%.*s.err",
                 (int)(strlen(names[i]) - 4), names[i]);
        rc = rg_rulefile_load(path, &f, &err);
        assert_int_equal(rc, RG_EPARSE);
        assert_null(f);
        compare_golden(err_path, &err);
        rg_buf_cleanup(&err);
        free(names[i]);
    }
    free(names);
}

static void test_rulefile__parsed_fields(void **state)
{
    static const char text[] =
        "groups:\n"
        "- name: g\n"
        "  interval: 2m\n"
        "  query_offset: 30s\n"
        "  limit: 5\n"
        "  labels: {team: a}\n"
        "  rules:\n"
        "  - alert: X\n"
        "    expr: up == 0\n"
        "    for: 1m\n"
        "    keep_firing_for: 90s\n"
        "    labels: {b: '2', a: '1'}\n"
        "    annotations: {s: '{{ $value }}'}\n"
        "  - record: y\n"
        "    expr: sum(up)\n";
    struct rg_rulefile *f = NULL;
    struct rg_buf err = { 0 };
    const struct rg_rule_group *g;
    (void)state;

    assert_int_equal(rg_rulefile_parse("t.yml", text, strlen(text), &f, &err), 0);
    assert_int_equal(f->ngroups, 1);
    g = &f->groups[0];
    assert_string_equal(g->name, "g");
    assert_string_equal(g->file, "t.yml");
    assert_int_equal(g->interval_ms, 120000);
    assert_true(g->has_query_offset);
    assert_int_equal(g->query_offset_ms, 30000);
    assert_int_equal(g->limit, 5);
    assert_int_equal(g->nlabels, 1);
    assert_int_equal(g->nrules, 2);
    assert_int_equal(g->rules[0].type, RG_RULE_ALERT);
    assert_int_equal(g->rules[0].for_ms, 60000);
    assert_int_equal(g->rules[0].keep_firing_for_ms, 90000);
    assert_string_equal(g->rules[0].labels[0].name, "a");   /* sorted */
    assert_non_null(g->rules[0].annotations[0].tmpl);
    assert_int_equal(g->rules[0].line, 8);
    assert_int_equal(g->rules[1].type, RG_RULE_RECORD);
    assert_string_equal(g->rules[1].name, "y");
    assert_non_null(g->rules[1].expr);
    rg_rulefile_free(f);
    rg_rulefile_free(NULL);

    /* An empty file is an empty rule file. */
    f = NULL;
    assert_int_equal(rg_rulefile_parse("e.yml", "", 0, &f, &err), 0);
    assert_int_equal(f->ngroups, 0);
    rg_rulefile_free(f);

    /* A missing file is one error line. */
    rg_buf_reset(&err);
    assert_int_equal(rg_rulefile_load(DATA "/nonexistent.yml", &f, &err), RG_EIO);
    assert_string_equal(err.data, DATA "/nonexistent.yml: open: no such file or directory\n");
    rg_buf_cleanup(&err);
}

static int collect(const char *path, void *ud)
{
    struct rg_buf *b = ud;
    rg_buf_printf(b, "%s\n", path);
    return 0;
}

static void test_rulefile__config_rule_files(void **state)
{
    static const char text[] =
        "rule_files:\n"
        "  - '*.yml'\n"
        "  - bad/nomatch-*.yml\n"
        "  - explicit.yml\n"
        "  - [x]\n";
    struct rg_config cfg;
    struct rg_buf err = { 0 }, got = { 0 };
    (void)state;

    rg_config_default(&cfg);
    assert_int_equal(rg_config_load_text(DATA "/rollgate.yml", text, strlen(text), &cfg, &err), 0);
    assert_int_equal(rg_rulefile_each_path(&cfg, collect, &got, &err), RG_EPARSE);
    assert_string_equal(got.data,
                        DATA "/app.yml\n" DATA "/node.yml\n" DATA "/slo.yml\n"
                        DATA "/explicit.yml\n");
    assert_string_equal(err.data, DATA "/rollgate.yml:5:5: rule_files: expected a file name or "
                                  "pattern\n");
    rg_config_cleanup(&cfg);
    rg_buf_cleanup(&err);
    rg_buf_cleanup(&got);
}

static void test_rulefile__names(void **state)
{
    (void)state;
    assert_true(rg_rulefile_detect(DATA "/node.yml"));
    assert_false(rg_rulefile_detect(DATA "/nonexistent.yml"));
    assert_false(rg_rulefile_detect(DATA "/bad/yaml.yml"));
    assert_true(rg_rulefile_detect(DATA "/node.dump"));   /* dumps are rule files too */
    assert_true(rg_rule_valid_metric_name("job:up:sum"));
    assert_true(rg_rule_valid_metric_name("_x9"));
    assert_false(rg_rule_valid_metric_name("9x"));
    assert_false(rg_rule_valid_metric_name(""));
    assert_false(rg_rule_valid_metric_name("a-b"));
    assert_true(rg_rule_valid_label_name("a_1"));
    assert_false(rg_rule_valid_label_name("a:b"));
    assert_false(rg_rule_valid_label_name("1a"));
}

/* Byte mutations of a real rule file: parsing never crashes or leaks, and a file
 * that loads also dumps. */
static void test_rulefile__mutations(void **state)
{
    struct rg_buf orig = { 0 }, text = { 0 }, err = { 0 }, dump = { 0 };
    static const char bytes[] = "{}[]:-'\"\n #|>&*!%@`\\ \t0aZ";
    uint64_t seed = 7;
    size_t ok = 0;
    (void)state;

    assert_int_equal(rg_file_read(DATA "/node.yml", 1 << 20, &orig), 0);
    for (int iter = 0; iter < 3000; iter++) {
        struct rg_rulefile *f = NULL;
        rg_buf_reset(&text);
        rg_buf_append(&text, orig.data, orig.len);
        for (int k = 0; k < 3; k++) {
            size_t at;
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            at = (size_t)(seed >> 33) % text.len;
            text.data[at] = bytes[(seed >> 20) % (sizeof(bytes) - 1)];
        }
        rg_buf_reset(&err);
        if (rg_rulefile_parse("m.yml", text.data, text.len, &f, &err) == 0) {
            ok++;
            rg_buf_reset(&dump);
            assert_int_equal(rg_rulefile_dump(f, &dump), 0);
            rg_rulefile_free(f);
        } else {
            assert_true(err.len > 0);
            assert_int_equal(strncmp(err.data, "m.yml:", 6), 0);
        }
    }
    assert_true(ok > 0);
    rg_buf_cleanup(&orig);
    rg_buf_cleanup(&text);
    rg_buf_cleanup(&err);
    rg_buf_cleanup(&dump);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rulefile__golden_dumps),
        cmocka_unit_test(test_rulefile__bad_files_report_positions),
        cmocka_unit_test(test_rulefile__parsed_fields),
        cmocka_unit_test(test_rulefile__config_rule_files),
        cmocka_unit_test(test_rulefile__names),
        cmocka_unit_test(test_rulefile__mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
