/* tests/promql/test_parse.c - PromQL parser, type checker and printer.
 *
 * The bulk of the cases live in the golden file tests/data/promql/parse/cases.txt
 * (query -> canonical text, structure, type; or query -> exact error message).
 * Every accepted case is also printed, re-parsed and printed again, which must
 * give the same text (the printer's round-trip property). The C tables below
 * cover what text cannot show: the fields of the tree, regex matching
 * semantics, multi-line error positions, the function table, small error
 * buffers, and a mutation pass that feeds truncated and corrupted queries to
 * the parser under the sanitizers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "promql/ast.h"
#include "promql/syntax.h"
#include "util/buf.h"
#include "util/err.h"

#define CASES_FILE "tests/data/promql/parse/cases.txt"

static const char *const binop_names[] = {
    "+", "-", "*", "/", "%", "^", "atan2", "==", "!=", ">", "<", ">=", "<=",
    "and", "or", "unless",
};

/* Writes the structure of @n: binary and unary nodes and parentheses are made
 * explicit, everything else is printed canonically. */
static void dump(const struct rg_promql_node *n, struct rg_buf *out)
{
    switch (n->kind) {
    case RG_PROMQL_BINARY:
        rg_buf_putc(out, '(');
        dump(n->u.bin.lhs, out);
        rg_buf_printf(out, " %s ", binop_names[n->u.bin.op]);
        dump(n->u.bin.rhs, out);
        rg_buf_putc(out, ')');
        break;
    case RG_PROMQL_UNARY:
        rg_buf_puts(out, "(-");
        dump(n->u.un.expr, out);
        rg_buf_putc(out, ')');
        break;
    case RG_PROMQL_PAREN:
        rg_buf_puts(out, "(paren ");
        dump(n->u.un.expr, out);
        rg_buf_putc(out, ')');
        break;
    default:
        rg_promql_print(n, out);
    }
}

static const char *type_name(enum rg_promql_vtype t)
{
    switch (t) {
    case RG_PROMQL_VT_SCALAR: return "scalar";
    case RG_PROMQL_VT_VECTOR: return "vector";
    case RG_PROMQL_VT_MATRIX: return "matrix";
    case RG_PROMQL_VT_STRING: return "string";
    default: return "none";
    }
}

/* Parses @in and prints it into @out; returns the parse result code. */
static int parse_print(const char *in, struct rg_buf *out, char *err, size_t errlen)
{
    struct rg_promql_node *n = NULL;
    int rc = rg_promql_parse(in, &n, err, errlen);

    if (rc == 0) {
        assert_non_null(n);
        assert_int_equal(rg_promql_print(n, out), 0);
        rg_promql_node_free(n);
    } else {
        assert_null(n);
    }
    return rc;
}

struct golden {
    char in[512], out[512], tree[512], type[32], err[512];
    int has_in, has_out, has_tree, has_type, has_err, line;
};

/* Runs one golden case; returns 1 when it passed, printing what differs otherwise. */
static int run_golden(const struct golden *g)
{
    struct rg_promql_node *n = NULL;
    char err[512];
    int rc = rg_promql_parse(g->in, &n, err, sizeof(err));
    int ok = 1;

    if (g->has_err) {
        if (rc != RG_EPARSE || strcmp(err, g->err) != 0) {
            printf("line %d: %s\n  want error: %s\n  got (rc %d): %s\n", g->line, g->in, g->err,
                   rc, rc ? err : "(success)");
            ok = 0;
        }
        rg_promql_node_free(n);
        return ok;
    }
    if (rc != 0) {
        printf("line %d: %s\n  want: %s\n  got error: %s\n", g->line, g->in, g->out, err);
        return 0;
    }
    struct rg_buf out = { 0 }, again = { 0 }, tree = { 0 };
    rg_promql_print(n, &out);
    if (g->has_out && strcmp(out.data ? out.data : "", g->out) != 0) {
        printf("line %d: %s\n  want: %s\n  got:  %s\n", g->line, g->in, g->out, out.data);
        ok = 0;
    }
    if (g->has_tree) {
        dump(n, &tree);
        if (strcmp(tree.data, g->tree) != 0) {
            printf("line %d: %s\n  want tree: %s\n  got tree:  %s\n", g->line, g->in, g->tree,
                   tree.data);
            ok = 0;
        }
    }
    if (g->has_type && strcmp(type_name(rg_promql_node_type(n)), g->type) != 0) {
        printf("line %d: %s\n  want type %s, got %s\n", g->line, g->in, g->type,
               type_name(rg_promql_node_type(n)));
        ok = 0;
    }
    /* Round trip: the canonical text parses to a tree that prints identically. */
    rc = parse_print(out.data, &again, err, sizeof(err));
    if (rc != 0 || strcmp(again.data, out.data) != 0) {
        printf("line %d: round trip of %s\n  gave: %s\n", g->line, out.data,
               rc ? err : again.data);
        ok = 0;
    }
    rg_buf_cleanup(&out);
    rg_buf_cleanup(&again);
    rg_buf_cleanup(&tree);
    rg_promql_node_free(n);
    return ok;
}

/* Copies a golden-file field; a field that does not fit fails the test. */
static void copy_field(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);

    assert_true(n < cap);
    memcpy(dst, src, n + 1);
}

static void test_parse__golden_cases(void **state)
{
    FILE *f = fopen(CASES_FILE, "r");
    char line[1024];
    struct golden g;
    int lineno = 0, ncases = 0, nfail = 0, nerr = 0;
    (void)state;

    assert_non_null(f);
    memset(&g, 0, sizeof(g));
    for (;;) {
        char *got = fgets(line, sizeof(line), f);
        size_t len;

        if (got) {
            lineno++;
            len = strlen(line);
            if (len && line[len - 1] == '\n')
                line[--len] = '\0';
        }
        if (!got || len == 0) {
            if (g.has_in) {
                assert_true(g.has_out || g.has_err);
                ncases++;
                nerr += g.has_err;
                nfail += !run_golden(&g);
            }
            memset(&g, 0, sizeof(g));
            if (!got)
                break;
            continue;
        }
        if (line[0] == '#')
            continue;
        if (strncmp(line, "in:", 3) == 0) {
            copy_field(g.in, sizeof(g.in), line[3] == ' ' ? line + 4 : line + 3);
            g.has_in = 1;
            g.line = lineno;
        } else if (strncmp(line, "out: ", 5) == 0) {
            copy_field(g.out, sizeof(g.out), line + 5);
            g.has_out = 1;
        } else if (strncmp(line, "tree: ", 6) == 0) {
            copy_field(g.tree, sizeof(g.tree), line + 6);
            g.has_tree = 1;
        } else if (strncmp(line, "type: ", 6) == 0) {
            copy_field(g.type, sizeof(g.type), line + 6);
            g.has_type = 1;
        } else if (strncmp(line, "err: ", 5) == 0) {
            copy_field(g.err, sizeof(g.err), line + 5);
            g.has_err = 1;
        } else {
            fail_msg("%s:%d: unknown line: %s", CASES_FILE, lineno, line);
        }
    }
    fclose(f);
    printf("golden: %d cases (%d errors), %d failed\n", ncases, nerr, nfail);
    assert_true(ncases >= 250);
    assert_true(nerr >= 90);
    assert_int_equal(nfail, 0);
}

static struct rg_promql_node *must_parse(const char *in)
{
    struct rg_promql_node *n = NULL;
    char err[256];
    int rc = rg_promql_parse(in, &n, err, sizeof(err));

    if (rc != 0)
        fail_msg("parse %s: %s", in, err);
    return n;
}

static void test_parse__selector_fields(void **state)
{
    struct rg_promql_node *n = must_parse("foo{a=\"b\", c!~\"x.*\"}[5m] offset -1h @ 12.345");
    (void)state;

    assert_int_equal(n->kind, RG_PROMQL_MATRIX);
    assert_int_equal(n->pos, 0);
    assert_string_equal(n->u.sel.name, "foo");
    assert_int_equal(n->u.sel.nmatchers, 3);
    assert_int_equal(n->u.sel.matchers[0].op, RG_MATCH_EQ);
    assert_string_equal(n->u.sel.matchers[0].name, "a");
    assert_string_equal(n->u.sel.matchers[0].value, "b");
    assert_null(n->u.sel.matchers[0].re);
    assert_int_equal(n->u.sel.matchers[1].op, RG_MATCH_NRE);
    assert_string_equal(n->u.sel.matchers[1].value, "x.*");
    assert_non_null(n->u.sel.matchers[1].re);
    assert_non_null(n->u.sel.matchers[1].md);
    /* The name written outside the braces becomes the last matcher. */
    assert_string_equal(n->u.sel.matchers[2].name, "__name__");
    assert_string_equal(n->u.sel.matchers[2].value, "foo");
    assert_int_equal(n->u.sel.range_ms, 300000);
    assert_int_equal(n->u.sel.offset_ms, -3600000);
    assert_int_equal(n->u.sel.at, RG_PROMQL_AT_TIME);
    assert_int_equal(n->u.sel.at_ms, 12345);
    rg_promql_node_free(n);

    n = must_parse("{\"foo.bar\", job=\"x\"}");
    assert_int_equal(n->kind, RG_PROMQL_SELECTOR);
    assert_null(n->u.sel.name);
    assert_int_equal(n->u.sel.nmatchers, 2);
    assert_string_equal(n->u.sel.matchers[0].name, "__name__");
    assert_string_equal(n->u.sel.matchers[0].value, "foo.bar");
    assert_int_equal(n->u.sel.offset_ms, 0);
    assert_int_equal(n->u.sel.at, RG_PROMQL_AT_NONE);
    rg_promql_node_free(n);

    n = must_parse("foo @ end()");
    assert_int_equal(n->u.sel.at, RG_PROMQL_AT_END);
    rg_promql_node_free(n);
}

static void test_parse__subquery_fields(void **state)
{
    struct rg_promql_node *n = must_parse("rate(foo[1m])[1h:30s] @ start() offset 5m");
    (void)state;

    assert_int_equal(n->kind, RG_PROMQL_SUBQUERY);
    assert_int_equal(n->u.sub.range_ms, 3600000);
    assert_int_equal(n->u.sub.step_ms, 30000);
    assert_int_equal(n->u.sub.offset_ms, 300000);
    assert_int_equal(n->u.sub.at, RG_PROMQL_AT_START);
    assert_int_equal(n->u.sub.expr->kind, RG_PROMQL_CALL);
    assert_int_equal(n->u.sub.expr->u.call.func->id, RG_FN_RATE);
    assert_int_equal(n->u.sub.expr->u.call.nargs, 1);
    assert_int_equal(n->u.sub.expr->u.call.args[0]->kind, RG_PROMQL_MATRIX);
    assert_int_equal(n->u.sub.expr->u.call.args[0]->pos, 5);
    rg_promql_node_free(n);

    n = must_parse("foo[10m:]");
    assert_int_equal(n->u.sub.step_ms, 0);
    assert_int_equal(n->u.sub.expr->kind, RG_PROMQL_SELECTOR);
    rg_promql_node_free(n);
}

static void test_parse__aggregate_fields(void **state)
{
    static const struct {
        const char *in;
        enum rg_promql_aggop op;
        int without, has_grouping, has_param;
        size_t ngrouping;
    } cases[] = {
        { "sum(foo)", RG_PROMQL_SUM, 0, 0, 0, 0 },
        { "avg by (a, b) (foo)", RG_PROMQL_AVG, 0, 1, 0, 2 },
        { "max(foo) without (a)", RG_PROMQL_MAX, 1, 1, 0, 1 },
        { "count by () (foo)", RG_PROMQL_COUNT, 0, 1, 0, 0 },
        { "topk(3, foo)", RG_PROMQL_TOPK, 0, 0, 1, 0 },
        { "quantile without () (0.5, foo)", RG_PROMQL_QUANTILE, 1, 1, 1, 0 },
        { "count_values(\"v\", foo)", RG_PROMQL_COUNT_VALUES, 0, 0, 1, 0 },
        { "limit_ratio(0.1, foo)", RG_PROMQL_LIMIT_RATIO, 0, 0, 1, 0 },
        { "group(foo)", RG_PROMQL_GROUP, 0, 0, 0, 0 },
        { "stdvar(foo)", RG_PROMQL_STDVAR, 0, 0, 0, 0 },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_promql_node *n = must_parse(cases[i].in);
        assert_int_equal(n->kind, RG_PROMQL_AGGREGATE);
        assert_int_equal(n->u.agg.op, cases[i].op);
        assert_int_equal(n->u.agg.without, cases[i].without);
        assert_int_equal(n->u.agg.has_grouping, cases[i].has_grouping);
        assert_int_equal(n->u.agg.ngrouping, cases[i].ngrouping);
        assert_int_equal(n->u.agg.param != NULL, cases[i].has_param);
        assert_int_equal(n->u.agg.expr->kind, RG_PROMQL_SELECTOR);
        rg_promql_node_free(n);
    }
}

static void test_parse__binary_fields(void **state)
{
    static const struct {
        const char *in;
        enum rg_promql_binop op;
        int return_bool, has_matching;
        enum rg_promql_card card;
        int on;
        size_t nlabels, ninclude;
    } cases[] = {
        { "a + b", RG_PROMQL_ADD, 0, 1, RG_PROMQL_ONE_TO_ONE, 0, 0, 0 },
        { "a > bool b", RG_PROMQL_GTR, 1, 1, RG_PROMQL_ONE_TO_ONE, 0, 0, 0 },
        { "a / on(x, y) group_left(z) b", RG_PROMQL_DIV, 0, 1, RG_PROMQL_MANY_TO_ONE, 1, 2, 1 },
        { "a * ignoring(x) group_right b", RG_PROMQL_MUL, 0, 1, RG_PROMQL_ONE_TO_MANY, 0, 1, 0 },
        { "a and b", RG_PROMQL_AND, 0, 1, RG_PROMQL_MANY_TO_MANY, 0, 0, 0 },
        { "a unless on(j) b", RG_PROMQL_UNLESS, 0, 1, RG_PROMQL_MANY_TO_MANY, 1, 1, 0 },
        { "a or b", RG_PROMQL_OR, 0, 1, RG_PROMQL_MANY_TO_MANY, 0, 0, 0 },
        { "a ^ 2", RG_PROMQL_POW, 0, 0, RG_PROMQL_ONE_TO_ONE, 0, 0, 0 },
        { "1 atan2 2", RG_PROMQL_ATAN2, 0, 0, RG_PROMQL_ONE_TO_ONE, 0, 0, 0 },
        { "1 <= bool 2", RG_PROMQL_LTE, 1, 0, RG_PROMQL_ONE_TO_ONE, 0, 0, 0 },
        { "2 % a", RG_PROMQL_MOD, 0, 0, RG_PROMQL_ONE_TO_ONE, 0, 0, 0 },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_promql_node *n = must_parse(cases[i].in);
        const struct rg_promql_matching *m = n->u.bin.matching;
        assert_int_equal(n->kind, RG_PROMQL_BINARY);
        assert_int_equal(n->u.bin.op, cases[i].op);
        assert_int_equal(n->u.bin.return_bool, cases[i].return_bool);
        assert_int_equal(m != NULL, cases[i].has_matching);
        if (m) {
            assert_int_equal(m->card, cases[i].card);
            assert_int_equal(m->on, cases[i].on);
            assert_int_equal(m->nlabels, cases[i].nlabels);
            assert_int_equal(m->ninclude, cases[i].ninclude);
        }
        rg_promql_node_free(n);
    }
}

static void test_parse__number_values(void **state)
{
    static const struct {
        const char *in;
        double want;
    } cases[] = {
        { "0x1f", 31 }, { "1e3", 1000 }, { ".5", 0.5 }, { "-2.5", -2.5 }, { "010", 8 },
        { "0777", 511 }, { "08", 8 },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_promql_node *n = must_parse(cases[i].in);
        assert_int_equal(n->kind, RG_PROMQL_NUMBER);
        assert_true(n->u.number == cases[i].want);
        rg_promql_node_free(n);
    }
    struct rg_promql_node *n = must_parse("-Inf");
    assert_true(isinf(n->u.number) && n->u.number < 0);
    assert_int_equal(n->pos, 0);
    rg_promql_node_free(n);
    n = must_parse("NaN");
    assert_true(isnan(n->u.number));
    rg_promql_node_free(n);
    /* A minus folded into the literal makes the literal start at the minus. */
    n = must_parse("1 + -2");
    assert_int_equal(n->u.bin.rhs->kind, RG_PROMQL_NUMBER);
    assert_int_equal(n->u.bin.rhs->pos, 4);
    rg_promql_node_free(n);
}

static void test_parse__regex_semantics(void **state)
{
    static const struct {
        const char *pattern;
        const char *subject;
        size_t len;
        int want;
    } cases[] = {
        { "abc", "abc", 3, 1 },
        { "abc", "xabc", 4, 0 },          /* anchored at the start */
        { "abc", "abcd", 4, 0 },          /* anchored at the end */
        { "a.c", "a\nc", 3, 1 },          /* dot matches newline */
        { "a.*", "a\n\nb", 4, 1 },
        { "x|y", "x", 1, 1 },
        { "x|y", "xy", 2, 0 },            /* alternation stays anchored */
        { "a$", "a\n", 2, 0 },            /* "$" is the very end, as in RE2 */
        { "a$", "a", 1, 1 },
        { "(?i)abc", "ABC", 3, 1 },
        { "é.", "éx", 3, 1 },
        { ".", "é", 2, 1 },               /* one character, two bytes */
        { ".", "\xff", 1, 0 },            /* invalid UTF-8 never matches */
        { "", "", 0, 1 },
        { "", "a", 1, 0 },
        { ".*", "", 0, 1 },
        { "a+", "aaa", 3, 1 },
        { "[0-9]{2}", "123", 3, 0 },
        { "\\d+", "42", 2, 1 },
        { "foo|foobar", "foobar", 6, 1 }, /* backtracks to the longer branch */
        { "a\\.b", "a.b", 3, 1 },
        { "a\\.b", "axb", 3, 0 },
        { "nul", "nul\0x", 5, 0 },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_promql_matcher m;
        char msg[160];
        memset(&m, 0, sizeof(m));
        m.op = RG_MATCH_RE;
        m.name = strdup("l");
        m.value = strdup(cases[i].pattern);
        assert_int_equal(rg__promql_matcher_compile(&m, msg, sizeof(msg)), 0);
        if (rg_promql_matcher_re_match(&m, cases[i].subject, cases[i].len) != cases[i].want)
            fail_msg("case %zu: /%s/ on %s: want %d", i, cases[i].pattern, cases[i].subject,
                     cases[i].want);
        rg__promql_matcher_cleanup(&m);
        rg__promql_matcher_cleanup(&m);   /* idempotent */
    }
    assert_int_equal(rg_promql_matcher_re_match(NULL, "a", 1), 0);
    rg__promql_matcher_cleanup(NULL);
}

static void test_parse__regex_via_selector(void **state)
{
    struct rg_promql_node *n = must_parse("foo{a=~\"x.y\", b!~\"(?i)skip\"}");
    (void)state;

    assert_int_equal(rg_promql_matcher_re_match(&n->u.sel.matchers[0], "x\ny", 3), 1);
    assert_int_equal(rg_promql_matcher_re_match(&n->u.sel.matchers[0], "xzy!", 4), 0);
    assert_int_equal(rg_promql_matcher_re_match(&n->u.sel.matchers[1], "SKIP", 4), 1);
    assert_int_equal(rg__promql_matcher_matches_empty(&n->u.sel.matchers[1]), 1);
    rg_promql_node_free(n);
}

static void test_parse__multiline_positions(void **state)
{
    static const struct {
        const char *in;
        const char *err;
    } cases[] = {
        { "foo +\n  bar baz", "2:7: parse error: unexpected identifier \"baz\"" },
        { "sum(\nrate(foo)\n)",
          "2:6: parse error: expected type range vector in call to function \"rate\", got "
          "instant vector" },
        { "a\n+\nb\n+\n1 >", "5:4: parse error: unexpected end of input" },
        { "# comment line\nfoo{a=b}", "2:7: parse error: unexpected identifier \"b\" in label "
          "matching, expected string" },
        { "foo\n\t@ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times" },
        { "(\n  foo\n", "3:1: parse error: unclosed left parenthesis" },
        { "1 >\n2", "1:3: parse error: comparisons between scalars must use BOOL modifier" },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_promql_node *n = NULL;
        char err[256];
        assert_int_equal(rg_promql_parse(cases[i].in, &n, err, sizeof(err)), RG_EPARSE);
        assert_null(n);
        assert_string_equal(err, cases[i].err);
    }
    /* Multi-line input that is valid prints on one line. */
    struct rg_buf b = { 0 };
    assert_int_equal(parse_print("sum by (job) (\n  rate(foo[5m])  # per second\n)", &b, NULL, 0),
                     0);
    assert_string_equal(b.data, "sum by (job) (rate(foo[5m]))");
    rg_buf_reset(&b);
    assert_int_equal(parse_print("foo{a=\"b\", # the job\n  c=\"d\"}", &b, NULL, 0), 0);
    assert_string_equal(b.data, "foo{a=\"b\",c=\"d\"}");
    rg_buf_cleanup(&b);
}

static void test_parse__error_buffer(void **state)
{
    struct rg_promql_node *n = NULL;
    char small[12];
    (void)state;

    memset(small, 'x', sizeof(small));
    assert_int_equal(rg_promql_parse("foo bar", &n, small, sizeof(small)), RG_EPARSE);
    assert_string_equal(small, "1:5: parse ");
    assert_int_equal(rg_promql_parse("foo bar", &n, NULL, 0), RG_EPARSE);
    assert_int_equal(rg_promql_parse("foo bar", &n, small, 0), RG_EPARSE);
    assert_null(n);
    small[0] = 'x';
    assert_int_equal(rg_promql_parse("foo", &n, small, sizeof(small)), 0);
    assert_int_equal(small[0], '\0');      /* cleared on success */
    rg_promql_node_free(n);
    rg_promql_node_free(NULL);
    assert_int_equal(rg_promql_print(NULL, NULL), 0);
}

static void test_parse__nesting_limit(void **state)
{
    struct rg_buf q = { 0 };
    struct rg_promql_node *n = NULL;
    char err[256];
    int i;
    (void)state;

    /* 500 parentheses are fine; 5000 are refused without exhausting the stack. */
    for (i = 0; i < 500; i++)
        rg_buf_putc(&q, '(');
    rg_buf_putc(&q, '1');
    for (i = 0; i < 500; i++)
        rg_buf_putc(&q, ')');
    assert_int_equal(rg_promql_parse(q.data, &n, err, sizeof(err)), 0);
    rg_promql_node_free(n);
    rg_buf_reset(&q);
    for (i = 0; i < 5000; i++)
        rg_buf_putc(&q, '(');
    assert_int_equal(rg_promql_parse(q.data, &n, err, sizeof(err)), RG_EPARSE);
    assert_string_equal(err, "1:1001: parse error: expression nesting exceeds 1000 levels");
    /* A long flat chain builds a deep left spine, which is bounded as well. */
    rg_buf_reset(&q);
    rg_buf_puts(&q, "1");
    for (i = 0; i < 5000; i++)
        rg_buf_puts(&q, " + 1");
    assert_int_equal(rg_promql_parse(q.data, &n, err, sizeof(err)), RG_EPARSE);
    assert_non_null(strstr(err, "expression nesting exceeds 1000 levels"));
    rg_buf_reset(&q);
    for (i = 0; i < 5000; i++)
        rg_buf_puts(&q, "-");
    rg_buf_puts(&q, "foo");
    assert_int_equal(rg_promql_parse(q.data, &n, err, sizeof(err)), RG_EPARSE);
    rg_buf_reset(&q);
    rg_buf_puts(&q, "1");
    for (i = 0; i < 300; i++)
        rg_buf_puts(&q, " + 1");
    assert_int_equal(rg_promql_parse(q.data, &n, err, sizeof(err)), 0);
    rg_promql_node_free(n);
    rg_buf_cleanup(&q);
}

static void test_parse__function_table(void **state)
{
    size_t n, i;
    const struct rg_promql_func *t = rg__promql_func_table(&n);
    int seen[RG_FN__COUNT] = { 0 };
    (void)state;

    assert_int_equal(n, RG_FN__COUNT);
    for (i = 0; i < n; i++) {
        assert_true(t[i].id >= 0 && t[i].id < RG_FN__COUNT);
        seen[t[i].id]++;
        if (i > 0)
            assert_true(strcmp(t[i - 1].name, t[i].name) < 0);
        assert_ptr_equal(rg_promql_func_lookup(t[i].name), &t[i]);
        assert_true(t[i].nargs >= 0 && t[i].nargs <= 6);
        assert_true(t[i].min_args <= t[i].nargs);
        assert_true(t[i].max_args == -1 || t[i].max_args == t[i].nargs);
        assert_true(t[i].ret == RG_PROMQL_VT_SCALAR || t[i].ret == RG_PROMQL_VT_VECTOR);
    }
    for (i = 0; i < RG_FN__COUNT; i++)
        assert_int_equal(seen[i], 1);
    assert_null(rg_promql_func_lookup("nonexistent"));
    assert_null(rg_promql_func_lookup("RATE"));
    assert_null(rg_promql_func_lookup(NULL));
    assert_int_equal(rg_promql_func_lookup("label_replace")->id, RG_FN_LABEL_REPLACE);
    assert_int_equal(rg_promql_func_lookup("sort_by_label")->id, RG_FN_SORT_BY_LABEL);
    assert_int_equal(rg_promql_func_lookup("quantile_over_time")->arg_types[1],
                     RG_PROMQL_VT_MATRIX);
}

/* Feeds every prefix of a set of queries, and each with one byte replaced by a
 * troublesome character, to the parser: it must answer 0 or RG_EPARSE with a
 * message, and whatever it accepts must round-trip through the printer. */
static void test_parse__mutations(void **state)
{
    static const char *const seeds[] = {
        "sum by (job) (rate(foo{a=\"b\",c=~\"x.*\"}[5m] offset 1m @ 100))",
        "histogram_quantile(0.9, sum without (i) (rate(x_bucket[5m])))[1h:1m] @ end()",
        "a / on(x) group_left(y) -b ^ 2 > bool 0x1f and {\"q.n\"} unless c[5m:]",
        "label_join(foo, \"d\", \"\\x41\\u00e9\", `raw`, 's') # comment",
        "topk(3, -foo) or count_values(\"v\", bar) / ignoring() group_right baz",
    };
    static const char subst[] = "()[]{}\"'`,:@#=!~+-*/^<>.0eE \n\\x";
    long accepted = 0, refused = 0;
    (void)state;

    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        size_t len = strlen(seeds[s]);
        char *q = malloc(len + 1);
        for (size_t cut = 0; cut <= len; cut++) {
            for (size_t k = 0; k <= sizeof(subst) - 1; k++) {
                struct rg_buf out = { 0 }, again = { 0 };
                char err[256];
                int rc;
                memcpy(q, seeds[s], len + 1);
                if (k == sizeof(subst) - 1)
                    q[cut] = '\0';               /* a truncation */
                else if (cut < len)
                    q[cut] = subst[k];           /* a substitution */
                else
                    continue;
                rc = parse_print(q, &out, err, sizeof(err));
                if (rc == 0) {
                    accepted++;
                    assert_int_equal(parse_print(out.data, &again, err, sizeof(err)), 0);
                    assert_string_equal(again.data, out.data);
                } else {
                    refused++;
                    assert_int_equal(rc, RG_EPARSE);
                    assert_non_null(strstr(err, ": parse error: "));
                }
                rg_buf_cleanup(&out);
                rg_buf_cleanup(&again);
            }
        }
        free(q);
    }
    assert_true(accepted > 100);
    assert_true(refused > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse__golden_cases),
        cmocka_unit_test(test_parse__selector_fields),
        cmocka_unit_test(test_parse__subquery_fields),
        cmocka_unit_test(test_parse__aggregate_fields),
        cmocka_unit_test(test_parse__binary_fields),
        cmocka_unit_test(test_parse__number_values),
        cmocka_unit_test(test_parse__regex_semantics),
        cmocka_unit_test(test_parse__regex_via_selector),
        cmocka_unit_test(test_parse__multiline_positions),
        cmocka_unit_test(test_parse__error_buffer),
        cmocka_unit_test(test_parse__nesting_limit),
        cmocka_unit_test(test_parse__function_table),
        cmocka_unit_test(test_parse__mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
