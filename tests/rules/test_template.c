/* tests/rules/test_template.c - alert templates: expansion, Prometheus' humanize
 * functions, Go's typing rules, error texts and syntax checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "rules/template.h"
#include "util/file.h"
#include "util/err.h"

static const struct rg_label labels[] = {
    { "__name__", "up" }, { "instance", "host-1.example.com:9100" }, { "job", "node" },
    { "severity", "page" },
};
static const struct rg_label ext[] = { { "cluster", "eu-1" } };

static void expand(const char *text, double value, struct rg_buf *out, int *rc)
{
    struct rg_template_data d = {
        .labels = labels, .nlabels = 4, .external_labels = ext, .nexternal = 1,
        .external_url = "http://rollgate:9201", .value = value,
    };
    rg_buf_reset(out);
    *rc = rg_template_expand("__alert_Test", text, &d, out);
}

static void test_template__expansions(void **state)
{
    static const struct {
        const char *text;
        double value;
        const char *want;
    } cases[] = {
        { "plain text", 0, "plain text" },
        { "{{ $labels.instance }} is down", 0, "host-1.example.com:9100 is down" },
        { "{{ .Labels.job }}/{{.Labels.severity}}", 0, "node/page" },
        { "{{ $value }}", 0.5, "0.5" },
        { "{{ $value }}", 1234567, "1.234567e+06" },
        { "{{ .Value }}", 100000, "100000" },
        { "{{ $value | humanize }}", 1234567, "1.235M" },
        { "{{ humanize $value }}", 0.12, "120m" },
        { "{{ humanizePercentage $value }}", 0.0234, "2.34%" },
        { "{{ $value | humanizePercentage }}", 0.001, "0.1%" },
        { "{{ printf \"%.2f\" $value }}", 3.14159, "3.14" },
        { "{{ printf \"%d items, %s\" 3 \"ok\" }}", 0, "3 items, ok" },
        { "{{ printf \"%5.1f|%-4s|%v\" $value \"a\" true }}", 2.25, "  2.2|a   |true" },
        { "{{ printf \"%d\" $value }}", 1.5, "%!d(float64=1.5)" },
        { "{{ if gt $value 0.5 }}high{{ else }}low{{ end }}", 0.7, "high" },
        { "{{ if gt $value 0.5 }}high{{ else }}low{{ end }}", 0.2, "low" },
        { "{{ if eq $labels.severity \"warn\" }}W{{ else if eq $labels.severity \"page\" }}P"
          "{{ else }}-{{ end }}", 0, "P" },
        { "a  {{- 1 -}}  b", 0, "a1b" },
        { "a\n  {{- \"x\" }}\n", 0, "ax\n" },
        { "[{{ $labels.missing }}]", 0, "[]" },
        { "[{{ index $labels \"job\" }}][{{ index $labels \"nope\" }}]", 0, "[node][]" },
        { "{{ toUpper \"abc\" }} {{ \"hello wORLD-x_y\" | title }} {{ toLower \"ABC\" }}", 0,
          "ABC Hello WORLD-X_y abc" },
        { "{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }}", 0, "host-1.example.com" },
        { "{{ reReplaceAll \"o\" \"0\" \"foo boo\" }}", 0, "f00 b00" },
        { "{{ if match \"^host-[0-9]\" $labels.instance }}yes{{ end }}", 0, "yes" },
        { "{{ $externalLabels.cluster }} {{ $externalURL }} {{ .ExternalLabels.cluster }}", 0,
          "eu-1 http://rollgate:9201 eu-1" },
        { "{{ with $labels.job }}job={{ . }}{{ end }}", 0, "job=node" },
        { "{{ with $labels.nope }}x{{ else }}none{{ end }}", 0, "none" },
        { "{{ if and (gt $value 0.1) (lt $value 1.0) }}in{{ end }}", 0.5, "in" },
        { "{{ if or (eq $labels.job \"x\") (not false) }}ok{{ end }}", 0, "ok" },
        { "{{ $x := 5 }}{{ $x }}{{ $x = 6 }}{{ $x }}", 0, "56" },
        { "{{ range $k, $v := $externalLabels }}{{ $k }}={{ $v }};{{ end }}", 0, "cluster=eu-1;" },
        { "{{ range $labels }}{{ . }},{{ end }}", 0,
          "up,host-1.example.com:9100,node,page," },
        { "{{/* a comment */}}x{{- /* trimmed */ -}} y", 0, "xy" },
        { "{{ humanizeDuration 3661 }}", 0, "1h 1m 1s" },
        { "{{ not true }} {{ len $labels }} {{ 1.5 }} {{ 7 }} {{ 'a' }}", 0, "false 4 1.5 7 97" },
        { "{{ \"a\\tb\\u00e9\" }} {{ `raw\\n` }}", 0, "a\tb\xc3\xa9 raw\\n" },
        { "{{ stripPort $labels.instance }} {{ stripDomain $labels.instance }}", 0,
          "host-1.example.com host-1:9100" },
        { "{{ stripDomain \"10.0.0.1:80\" }} {{ stripPort \"[::1]:9090\" }}", 0,
          "10.0.0.1:80 ::1" },
        { "{{ tableLink \"up == 0\" }}", 0, "/graph?g0.expr=up+%3D%3D+0&g0.tab=1" },
        { "{{ print 1 2 \"a\" \"b\" 3 }}", 0, "1 2ab3" },
        { "{{ $value | printf \"%.1f%%\" }}", 12.34, "12.3%" },
        { "{{ humanize \"1500\" }}", 0, "1.5k" },
        { "{{ parseDuration \"1m30s\" }}", 0, "90" },
        { "{{ eq 1 1 2 }} {{ ne \"a\" \"b\" }} {{ le 2 2 }} {{ ge 1.0 2.0 }}", 0,
          "true true true false" },
        { "{{ (index $labels \"job\") | toUpper }}", 0, "NODE" },
        { "[{{ printf \"%*d|%.*f\" 4 7 1 2.25 }}]", 0, "[   7|2.2]" },
        { "[{{ printf \"%*d\" 100000000 1 | len }}]", 0, "[1000]" },
    };
    struct rg_buf out = { 0 };
    int rc;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        expand(cases[i].text, cases[i].value, &out, &rc);
        if (rc || strcmp(out.data ? out.data : "", cases[i].want) != 0)
            fail_msg("case %zu %s: rc %d got \"%s\" want \"%s\"", i, cases[i].text, rc,
                     out.data ? out.data : "", cases[i].want);
    }
    rg_buf_cleanup(&out);
}

static void test_template__execution_errors(void **state)
{
    static const struct {
        const char *text;
        const char *want;   /* the whole expansion */
    } cases[] = {
        { "{{ gt $value 1 }}",
          "<error expanding template: error executing template __alert_Test: template: "
          "__alert_Test:1:115: executing \"__alert_Test\" at <gt $value 1>: error calling gt: "
          "incompatible types for comparison>" },
        { "x\n{{ humanize \"abc\" }}",
          "<error expanding template: error executing template __alert_Test: template: "
          "__alert_Test:2:3: executing \"__alert_Test\" at <humanize \"abc\">: error calling "
          "humanize: strconv.ParseFloat: parsing \"abc\": invalid syntax>" },
        { "{{ $value humanize }}",
          "<error expanding template: error executing template __alert_Test: template: "
          "__alert_Test:1:115: executing \"__alert_Test\" at <$value humanize>: can't give "
          "argument to non-function $value>" },
        { "{{ .Nope }}",
          "<error expanding template: error executing template __alert_Test: template: "
          "__alert_Test:1:115: executing \"__alert_Test\" at <.Nope>: can't evaluate field "
          "Nope in type template.tmplData>" },
        { "{{ foo }}",
          "<error expanding template: error parsing template __alert_Test: template: "
          "__alert_Test:1: function \"foo\" not defined>" },
        { "{{ query \"up\" }}",
          "<error expanding template: error executing template __alert_Test: template: "
          "__alert_Test:1:115: executing \"__alert_Test\" at <query \"up\">: error calling "
          "query: no query engine available>" },
        { "{{ html \"x\" }}",
          "<error expanding template: error executing template __alert_Test: template: "
          "__alert_Test:1:115: executing \"__alert_Test\" at <html \"x\">: error calling "
          "html: function html is not available in alert templates here>" },
        { "{{ match \"(\" \"x\" }}",
          "<error expanding template: error executing template __alert_Test: template: "
          "__alert_Test:1:115: executing \"__alert_Test\" at <match \"(\" \"x\">: error calling "
          "match: error parsing regexp: missing closing parenthesis: `(`>" },
    };
    struct rg_buf out = { 0 };
    int rc;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        expand(cases[i].text, 2.5, &out, &rc);
        assert_int_equal(rc, RG_EINVAL);
        if (strcmp(out.data, cases[i].want) != 0)
            fail_msg("case %zu: got\n%s\nwant\n%s", i, out.data, cases[i].want);
    }
    rg_buf_cleanup(&out);
}

static void test_template__syntax_errors(void **state)
{
    static const struct {
        const char *text;
        const char *want;   /* "" when valid */
    } cases[] = {
        { "{{ $labels.x }} {{ $value | humanize }}", "" },
        { "{{ query \"up\" | first | value }}", "" },
        { "{{ foo }}", "template: n:1: function \"foo\" not defined" },
        { "{{ if }}x{{ end }}", "template: n:1: missing value for if" },
        { "a\n{{ $x }}", "template: n:2: undefined variable \"$x\"" },
        { "{{ end }}", "template: n:1: unexpected {{end}}" },
        { "{{ if true }}x", "template: n:1: unexpected EOF" },
        { "{{ \"abc }}", "template: n:1: unterminated quoted string" },
        { "{{ $value", "template: n:1: unclosed action" },
        { "{{ (1 }}", "template: n:1: unclosed left paren" },
        { "{{ define \"x\" }}{{ end }}", "template: n:1: unsupported action \"define\"" },
        { "{{ 1 | }}", "template: n:1: empty command" },
        { "{{ true.x }}", "template: n:1: unexpected . after term \"true\"" },
    };
    struct rg_buf err = { 0 };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;
        rg_buf_reset(&err);
        rc = rg_template_check("n", cases[i].text, &err);
        if (cases[i].want[0] == '\0') {
            if (rc != 0)
                fail_msg("case %zu: unexpected error %s", i, err.data);
            continue;
        }
        assert_int_equal(rc, RG_EPARSE);
        if (strcmp(err.data, cases[i].want) != 0)
            fail_msg("case %zu: got \"%s\" want \"%s\"", i, err.data, cases[i].want);
    }
    rg_buf_cleanup(&err);
}

static const struct rg_label q1[] = { { "instance", "b:1" }, { "job", "node" } };
static const struct rg_label q2[] = { { "instance", "a:1" }, { "job", "node" } };
static const struct rg_template_sample qres[] = { { q1, 2, 0.25 }, { q2, 2, 1234 } };

static int fake_query(void *ud, const char *expr, const struct rg_template_sample **out,
                      size_t *n, struct rg_buf *err)
{
    int *calls = ud;
    (*calls)++;
    if (strcmp(expr, "broken(") == 0) {
        rg_buf_puts(err, "1:8: parse error: unexpected end of input");
        return -1;
    }
    *out = qres;
    *n = strcmp(expr, "none") == 0 ? 0 : 2;
    return 0;
}

static void test_template__query_functions(void **state)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        { "{{ query \"up\" | first | value | humanize }}", "250m" },
        { "{{ with query \"up\" }}{{ . | first | label \"instance\" }}{{ end }}", "b:1" },
        { "{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }}="
          "{{ .Value }};{{ end }}", "a:1=1234;b:1=0.25;" },
        { "{{ range $i, $s := query \"up\" }}{{ $i }}:{{ $s.Labels.job }} {{ end }}",
          "0:node 1:node " },
        { "{{ len (query \"up\") }} {{ if query \"none\" }}some{{ else }}none{{ end }}",
          "2 none" },
        { "{{ range query \"none\" }}x{{ else }}empty{{ end }}", "empty" },
        { "{{ query \"none\" | first }}",
          "<error expanding template: error executing template q: template: q:1:130: "
          "executing \"q\" at <first>: error calling first: first() called on vector with "
          "no elements>" },
        { "{{ query \"broken(\" }}",
          "<error expanding template: error executing template q: template: q:1:115: "
          "executing \"q\" at <query \"broken(\">: error calling query: 1:8: parse error: "
          "unexpected end of input>" },
    };
    struct rg_buf out = { 0 };
    int calls = 0;
    struct rg_template_data d = { .query = fake_query, .query_ud = &calls };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rg_buf_reset(&out);
        rg_template_expand("q", cases[i].text, &d, &out);
        if (strcmp(out.data ? out.data : "", cases[i].want) != 0)
            fail_msg("case %zu: got \"%s\" want \"%s\"", i, out.data, cases[i].want);
    }
    assert_true(calls >= 8);
    rg_buf_cleanup(&out);
}

typedef int (*hfn)(double, struct rg_buf *);

static void test_template__humanize_functions(void **state)
{
    static const struct {
        hfn fn;
        double v;
        const char *want;
    } cases[] = {
        { rg_template_humanize, 0, "0" },
        { rg_template_humanize, 1, "1" },
        { rg_template_humanize, 1234567, "1.235M" },
        { rg_template_humanize, 0.12, "120m" },
        { rg_template_humanize, -1500, "-1.5k" },
        { rg_template_humanize, 1e30, "1e+06Y" },
        { rg_template_humanize, 2.5e-7, "250n" },
        { rg_template_humanize, NAN, "NaN" },
        { rg_template_humanize, INFINITY, "+Inf" },
        { rg_template_humanize1024, 0, "0" },
        { rg_template_humanize1024, 1, "1" },
        { rg_template_humanize1024, 1048576, "1Mi" },
        { rg_template_humanize1024, 0.12, "0.12" },
        { rg_template_humanize1024, 1536, "1.5ki" },
        { rg_template_humanize_duration, 0, "0s" },
        { rg_template_humanize_duration, 1, "1s" },
        { rg_template_humanize_duration, 60, "1m 0s" },
        { rg_template_humanize_duration, 3600, "1h 0m 0s" },
        { rg_template_humanize_duration, 86400, "1d 0h 0m 0s" },
        { rg_template_humanize_duration, 86400 + 3600, "1d 1h 0m 0s" },
        { rg_template_humanize_duration, -(86400 * 2 + 3600 * 3 + 60 * 4 + 5), "-2d 3h 4m 5s" },
        { rg_template_humanize_duration, 899.99, "14m 59s" },
        { rg_template_humanize_duration, 0.1, "100ms" },
        { rg_template_humanize_duration, 0.0001, "100us" },
        { rg_template_humanize_duration, 0.12345, "123.5ms" },
        { rg_template_humanize_duration, 60.1, "1m 0s" },
        { rg_template_humanize_duration, 1.2345, "1.234s" },
        { rg_template_humanize_duration, 12.345, "12.35s" },
        { rg_template_humanize_duration, NAN, "NaN" },
        { rg_template_humanize_duration, 1e30, "-106751991167300d -15h -30m -8s" },
        { rg_template_humanize_percentage, 0, "0%" },
        { rg_template_humanize_percentage, 0.1, "10%" },
        { rg_template_humanize_percentage, 0.0123456, "1.235%" },
        { rg_template_humanize_percentage, 1.5, "150%" },
        { rg_template_humanize_timestamp, 1435065584.128, "2015-06-23 13:19:44.128 +0000 UTC" },
        { rg_template_humanize_timestamp, 0, "1970-01-01 00:00:00 +0000 UTC" },
        { rg_template_humanize_timestamp, 1.5, "1970-01-01 00:00:01.5 +0000 UTC" },
        { rg_template_humanize_timestamp, INFINITY, "+Inf" },
    };
    struct rg_buf out = { 0 };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rg_buf_reset(&out);
        assert_int_equal(cases[i].fn(cases[i].v, &out), 0);
        if (strcmp(out.data, cases[i].want) != 0)
            fail_msg("case %zu (%g): got \"%s\" want \"%s\"", i, cases[i].v, out.data,
                     cases[i].want);
    }
    rg_buf_cleanup(&out);
}

static void test_template__compiled_reuse(void **state)
{
    struct rg_template *t = NULL;
    struct rg_buf out = { 0 };
    struct rg_template_data d = { .labels = labels, .nlabels = 4 };
    (void)state;

    assert_int_equal(rg_template_compile("x", "static", &t, NULL), 0);
    assert_true(rg_template_is_static(t));
    rg_template_free(t);
    assert_int_equal(rg_template_compile("x", "{{ $labels.job }}:{{ $value }}", &t, NULL), 0);
    assert_false(rg_template_is_static(t));
    for (int i = 0; i < 3; i++) {
        d.value = i;
        rg_buf_reset(&out);
        assert_int_equal(rg_template_exec(t, &d, &out), 0);
        char want[32];
        snprintf(want, sizeof(want), "node:%d", i);
        assert_string_equal(out.data, want);
    }
    rg_template_free(t);
    rg_template_free(NULL);
    rg_buf_cleanup(&out);
}

/* Golden expansions checked against Prometheus itself: tests/data/rules/templates/
 * expected.jsonl holds, for every value of values.txt, the expansion of every line of
 * cases.txt; promtool-test.yml states the same expectations as a `promtool test rules`
 * file, which Prometheus 2.42's promtool passes (run it there to re-check). The
 * `query "m"` of the cases returns the alert's own series, as it does in promtool. */
static double golden_value;
static const struct rg_label golden_labels[3] = {
    { "__name__", "m" }, { "instance", "host.example.com:9100" }, { "job", "node" },
};

static int golden_query(void *ud, const char *expr, const struct rg_template_sample **out,
                        size_t *n, struct rg_buf *err)
{
    static struct rg_template_sample one;
    (void)ud;
    (void)err;
    one = (struct rg_template_sample){ golden_labels, 3, golden_value };
    *out = &one;
    *n = strcmp(expr, "m") == 0 ? 1 : 0;
    return 0;
}

static void test_template__matches_prometheus(void **state)
{
    struct rg_buf cases = { 0 }, values = { 0 }, expected = { 0 }, out = { 0 };
    static const struct rg_label ext1[1] = { { "cluster", "eu-1" } };
    char *lines[64], *save = NULL, *vsave = NULL, *esave = NULL;
    size_t nlines = 0, checked = 0;
    (void)state;

    assert_int_equal(rg_file_read("tests/data/rules/templates/cases.txt", 1 << 20, &cases), 0);
    assert_int_equal(rg_file_read("tests/data/rules/templates/values.txt", 1 << 20, &values), 0);
    assert_int_equal(rg_file_read("tests/data/rules/templates/expected.jsonl", 1 << 20,
                                  &expected), 0);
    for (char *l = strtok_r(cases.data, "\n", &save); l && nlines < 64;
         l = strtok_r(NULL, "\n", &save))
        lines[nlines++] = l;
    assert_true(nlines >= 20);
    for (char *v = strtok_r(values.data, "\n", &vsave), *e = strtok_r(expected.data, "\n",
                                                                          &esave);
         v && e; v = strtok_r(NULL, "\n", &vsave), e = strtok_r(NULL, "\n", &esave)) {
        char ebuf[256];
        yajl_val arr = yajl_tree_parse(e, ebuf, sizeof(ebuf));
        struct rg_template_data d = {
            .labels = golden_labels, .nlabels = 3, .external_labels = ext1, .nexternal = 1,
            .external_url = "http://ext.example:9090", .query = golden_query,
        };
        assert_non_null(arr);
        assert_true(YAJL_IS_ARRAY(arr));
        assert_int_equal(arr->u.array.len, nlines);
        golden_value = d.value = strtod(v, NULL);
        for (size_t i = 0; i < nlines; i++) {
            rg_buf_reset(&out);
            rg_template_expand("__alert_A", lines[i], &d, &out);
            const char *want = YAJL_IS_STRING(arr->u.array.values[i])
                               ? arr->u.array.values[i]->u.string : "?";
            if (strcmp(out.data ? out.data : "", want))
                fail_msg("value %s case %zu %s:\n got  %s\n want %s", v, i, lines[i], out.data,
                         want);
            checked++;
        }
        yajl_tree_free(arr);
    }
    assert_true(checked >= 8 * 20);
    rg_buf_cleanup(&cases);
    rg_buf_cleanup(&values);
    rg_buf_cleanup(&expected);
    rg_buf_cleanup(&out);
}

/* Random token soup: compile and run must never crash, leak or loop, whatever the
 * text; the result is either a template or a syntax error. */
static void test_template__random_texts(void **state)
{
    static const char *const parts[] = {
        "{{", "}}", "{{- ", " -}}", " ", "$labels", ".Labels", ".x", "$value", "|", "(", ")",
        "if", "else", "end", "with", "range", "humanize", "printf", "\"%d\"", "\"a\"",
        "1", "2.5", "-", "$x", ":=", "=", ",", "index", "eq", "and", "query", "first",
        "`r`", "'c'", "/*", "*/", "text ", "\n", "len", "not", "$", ".", "toUpper",
        "reReplaceAll", "\"(\"", "title", "nil", "true",
    };
    const size_t nparts = sizeof(parts) / sizeof(parts[0]);
    struct rg_template_data d = { .labels = labels, .nlabels = 4, .value = 1.5 };
    struct rg_buf text = { 0 }, out = { 0 }, err = { 0 };
    uint64_t seed = 42;
    size_t compiled = 0;
    (void)state;

    for (int iter = 0; iter < 20000; iter++) {
        struct rg_template *t = NULL;
        int n;
        rg_buf_reset(&text);
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        n = (int)(seed >> 60) + 1;
        for (int k = 0; k < n; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            rg_buf_puts(&text, parts[(seed >> 33) % nparts]);
        }
        rg_buf_reset(&err);
        if (rg_template_compile("f", text.data, &t, &err) == 0) {
            compiled++;
            rg_buf_reset(&out);
            rg_template_exec(t, &d, &out);
            rg_template_free(t);
        } else {
            assert_non_null(strstr(err.data, "template: f:"));
        }
    }
    assert_true(compiled > 100);
    rg_buf_cleanup(&text);
    rg_buf_cleanup(&out);
    rg_buf_cleanup(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_template__expansions),
        cmocka_unit_test(test_template__execution_errors),
        cmocka_unit_test(test_template__syntax_errors),
        cmocka_unit_test(test_template__humanize_functions),
        cmocka_unit_test(test_template__query_functions),
        cmocka_unit_test(test_template__compiled_reuse),
        cmocka_unit_test(test_template__random_texts),
        cmocka_unit_test(test_template__matches_prometheus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
