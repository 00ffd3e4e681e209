/* tests/promql/test_lex.c - PromQL lexer and the literal helpers.
 *
 * Table-driven: token streams for representative inputs (both lexer modes,
 * keywords, comments), lexing errors with their positions, number parsing,
 * string unquoting with every escape form, Go-compatible quoting, shortest
 * float formatting, and durations in both directions.
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
#include "promql/lex.h"
#include "util/buf.h"
#include "util/err.h"

static const char *tok_name(enum rg__promql_tok_type t)
{
    switch (t) {
    case RG__TOK_EOF: return "EOF";
    case RG__TOK_ERROR: return "ERROR";
    case RG__TOK_IDENT: return "IDENT";
    case RG__TOK_METRIC_IDENT: return "METRIC";
    case RG__TOK_NUMBER: return "NUM";
    case RG__TOK_DURATION: return "DUR";
    case RG__TOK_STRING: return "STR";
    default:
        if (rg__promql_tok_is_keyword(t))
            return "KW";
        if (rg__promql_tok_is_aggregator(t))
            return "AGG";
        if (rg__promql_tok_is_operator(t))
            return "OP";
        return "P";
    }
}

/* Renders the token stream as "TYPE:text TYPE:text ...". */
static void render(const char *in, struct rg_buf *out)
{
    struct rg__promql_toks toks;

    assert_int_equal(rg__promql_lex(in, strlen(in), &toks), 0);
    assert_true(toks.n >= 1);
    for (size_t i = 0; i < toks.n; i++) {
        const struct rg__promql_tok *t = &toks.v[i];
        if (i)
            rg_buf_putc(out, ' ');
        if (t->type == RG__TOK_EOF)
            rg_buf_puts(out, "EOF");
        else if (t->type == RG__TOK_ERROR)
            rg_buf_printf(out, "ERROR@%d:%s", t->pos, toks.errmsg);
        else
            rg_buf_printf(out, "%s:%.*s", tok_name(t->type), t->len, in + t->pos);
        /* Only the last token may end the stream. */
        assert_true(i + 1 == toks.n || (t->type != RG__TOK_EOF && t->type != RG__TOK_ERROR));
    }
    rg__promql_toks_cleanup(&toks);
    rg__promql_toks_cleanup(&toks);
}

static void test_lex__tokens(void **state)
{
    static const struct {
        const char *in;
        const char *want;
    } cases[] = {
        { "", "EOF" },
        { "  \t\n ", "EOF" },
        { "foo", "IDENT:foo EOF" },
        { "foo:bar", "METRIC:foo:bar EOF" },
        { ":x", "METRIC::x EOF" },
        { "_a1", "IDENT:_a1 EOF" },
        { "1 1.5 .5 5. 1e3 1E-3 0x1F 010", "NUM:1 NUM:1.5 NUM:.5 NUM:5. NUM:1e3 NUM:1E-3 "
          "NUM:0x1F NUM:010 EOF" },
        { "Inf NaN inf nAn", "NUM:Inf NUM:NaN NUM:inf NUM:nAn EOF" },
        { "Infinity", "IDENT:Infinity EOF" },
        { "5m 1h30m 500ms 1d 2w 1y 1.5h", "DUR:5m DUR:1h30m DUR:500ms DUR:1d DUR:2w DUR:1y "
          "DUR:1.5h EOF" },
        { "\"a\" 'b' `c`", "STR:\"a\" STR:'b' STR:`c` EOF" },
        { "\"esc \\\" \\n\"", "STR:\"esc \\\" \\n\" EOF" },
        { "`multi\nline`", "STR:`multi\nline` EOF" },
        { "+ - * / % ^ == != <= < >= > =", "OP:+ OP:- OP:* OP:/ OP:% OP:^ OP:== OP:!= "
          "OP:<= OP:< OP:>= OP:> OP:= EOF" },
        { "and or unless atan2 AND", "OP:and OP:or OP:unless OP:atan2 OP:AND EOF" },
        { "sum avg min max count group stddev stdvar topk bottomk quantile count_values "
          "limitk limit_ratio",
          "AGG:sum AGG:avg AGG:min AGG:max AGG:count AGG:group AGG:stddev AGG:stdvar "
          "AGG:topk AGG:bottomk AGG:quantile AGG:count_values AGG:limitk AGG:limit_ratio EOF" },
        { "bool by without on ignoring group_left group_right offset start end BY",
          "KW:bool KW:by KW:without KW:on KW:ignoring KW:group_left KW:group_right KW:offset "
          "KW:start KW:end KW:BY EOF" },
        { "( ) [ ] , @", "P:( P:) P:[ P:] P:, P:@ EOF" },
        { "foo[5m:1m]", "IDENT:foo P:[ DUR:5m P:: DUR:1m P:] EOF" },
        { "foo{a=\"b\",c!~'d'}", "IDENT:foo P:{ IDENT:a OP:= STR:\"b\" P:, IDENT:c OP:!~ "
          "STR:'d' P:} EOF" },
        /* Inside braces words are label names, never keywords. */
        { "{by=\"x\", sum!=\"y\"}", "P:{ IDENT:by OP:= STR:\"x\" P:, IDENT:sum OP:!= STR:\"y\" "
          "P:} EOF" },
        { "{\"quoted.name\"=~\"v\"}", "P:{ STR:\"quoted.name\" OP:=~ STR:\"v\" P:} EOF" },
        { "foo # comment\n+ 1 # another", "IDENT:foo OP:+ NUM:1 EOF" },
        { "a#b", "IDENT:a EOF" },
        { "{a=\"b\" # why\n, c!=\"d\"}", "P:{ IDENT:a OP:= STR:\"b\" P:, IDENT:c OP:!= "
          "STR:\"d\" P:} EOF" },
        { "\"\xc3\xa9\xe2\x82\xac\"", "STR:\"\xc3\xa9\xe2\x82\xac\" EOF" },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_buf b = { 0 };
        render(cases[i].in, &b);
        if (strcmp(b.data, cases[i].want) != 0)
            fail_msg("lex %s:\n  want %s\n  got  %s", cases[i].in, cases[i].want, b.data);
        rg_buf_cleanup(&b);
    }
}

static void test_lex__errors(void **state)
{
    static const struct {
        const char *in;
        const char *want;   /* the last token */
    } cases[] = {
        { "(", "ERROR@1:unclosed left parenthesis" },
        { "(()", "ERROR@3:unclosed left parenthesis" },
        { ")", "ERROR@0:unexpected right parenthesis ')'" },
        { "[", "ERROR@1:unclosed left bracket" },
        { "[[", "ERROR@1:unexpected left bracket '['" },
        { "]", "ERROR@0:unexpected right bracket ']'" },
        { "}", "ERROR@0:unexpected right brace '}'" },
        { "{", "ERROR@1:unexpected end of input inside braces" },
        { "{{", "ERROR@1:unexpected left brace '{'" },
        { "{a!b}", "ERROR@2:unexpected character after '!' inside braces: 'b'" },
        { "{1}", "ERROR@1:unexpected character inside braces: '1'" },
        { "$", "ERROR@0:unexpected character: '$'" },
        { "\x01", "ERROR@0:unexpected character: '\\x01'" },
        { "a ! b", "ERROR@2:unexpected character after '!': ' '" },
        { "a !~ b", "ERROR@2:unexpected character after '!': '~'" },
        { "a !\tb", "ERROR@2:unexpected character after '!': '\\t'" },
        { "{a!\n}", "ERROR@2:unexpected character after '!' inside braces: '\\n'" },
        { "a =~ b", "ERROR@2:unexpected character after '=': '~'" },
        { "\"\xff\"", "ERROR@0:invalid UTF-8 rune" },
        { "`ok \xc3\xa9 \xc3`", "ERROR@0:invalid UTF-8 rune" },
        { "{a=\"\xed\xa0\x80\"}", "ERROR@3:invalid UTF-8 rune" },
        { "\"abc", "ERROR@0:unterminated quoted string" },
        { "'abc\n'", "ERROR@0:unterminated quoted string" },
        { "`abc", "ERROR@0:unterminated raw string" },
        { "\"\\", "ERROR@0:escape sequence not terminated" },
        { "\"\\x4", "ERROR@0:escape sequence not terminated" },
        { "\"\\q\"", "ERROR@0:unknown escape sequence U+0071 'q'" },
        { "'\\\"'", "ERROR@0:unknown escape sequence U+0022 '\"'" },
        { "\"\\xg0\"", "ERROR@0:illegal character U+0067 in escape sequence" },
        { "\"\\8\"", "ERROR@0:unknown escape sequence U+0038 '8'" },
        { "\"\\400\"", "ERROR@0:escape sequence is an invalid Unicode code point" },
        { "\"\\U00110000\"", "ERROR@0:escape sequence is an invalid Unicode code point" },
        { "\"\\udfff\"", "ERROR@0:escape sequence is an invalid Unicode code point" },
        { "5mm", "ERROR@0:bad number or duration syntax: \"5mm\"" },
        { "1x", "ERROR@0:bad number or duration syntax: \"1\"" },
        { "x 0x1g", "ERROR@2:bad number or duration syntax: \"0x1\"" },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_buf b = { 0 };
        const char *last;
        render(cases[i].in, &b);
        /* The error token is the last one; its message may contain spaces. */
        last = strstr(b.data, "ERROR@");
        if (!last || strcmp(last, cases[i].want) != 0)
            fail_msg("lex %s:\n  want %s\n  got  %s", cases[i].in, cases[i].want, b.data);
        rg_buf_cleanup(&b);
    }
}

static void test_lex__describe(void **state)
{
    static const struct {
        const char *in;
        const char *want;    /* description of the first token */
    } cases[] = {
        { "", "end of input" },
        { "foo", "identifier \"foo\"" },
        { "a:b", "metric identifier \"a:b\"" },
        { "42", "number \"42\"" },
        { "12345678901234", "number \"1234567890\"..." },
        { "5m", "duration \"5m\"" },
        { "'s'", "string \"'s'\"" },
        { "\"s\"", "string \"\\\"s\\\"\"" },
        { "+", "<op:+>" },
        { "AND", "<op:AND>" },
        { "sum", "<aggr:sum>" },
        { "by", "<by>" },
        { "(", "\"(\"" },
        { "]", "error" },
        { "@", "\"@\"" },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg__promql_toks toks;
        struct rg_buf b = { 0 };
        assert_int_equal(rg__promql_lex(cases[i].in, strlen(cases[i].in), &toks), 0);
        assert_int_equal(rg__promql_tok_describe(cases[i].in, &toks.v[0], &b), 0);
        if (strcmp(b.data, cases[i].want) != 0)
            fail_msg("describe %s: want %s, got %s", cases[i].in, cases[i].want, b.data);
        rg_buf_cleanup(&b);
        rg__promql_toks_cleanup(&toks);
    }
}

static void test_lex__numbers(void **state)
{
    static const struct {
        const char *in;
        int ok;
        double want;
    } cases[] = {
        { "0", 1, 0 }, { "42", 1, 42 }, { "1.5", 1, 1.5 }, { ".5", 1, 0.5 }, { "5.", 1, 5 },
        { "1e3", 1, 1000 }, { "1E-2", 1, 0.01 }, { "1e+2", 1, 100 }, { "0x1f", 1, 31 },
        { "0XFF", 1, 255 }, { "010", 1, 8 }, { "0777", 1, 511 }, { "09", 1, 9 },
        { "0.5", 1, 0.5 }, { "00", 1, 0 },
        { "9223372036854775807", 1, 9223372036854775807.0 },
        { "99999999999999999999", 1, 1e20 },
        { "1e", 0, 0 }, { "1e+", 0, 0 }, { "0x", 0, 0 }, { "0x1.8", 0, 0 }, { "", 0, 0 },
        { "1.2.3", 0, 0 }, { "0x10000000000000000", 0, 0 },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double v = -1;
        int rc = rg__promql_parse_number(cases[i].in, strlen(cases[i].in), &v);
        if ((rc == 0) != cases[i].ok || (cases[i].ok && v != cases[i].want))
            fail_msg("number %s: rc %d value %g", cases[i].in, rc, v);
    }
    double v;
    assert_int_equal(rg__promql_parse_number("Inf", 3, &v), 0);
    assert_true(isinf(v) && v > 0);
    assert_int_equal(rg__promql_parse_number("nan", 3, &v), 0);
    assert_true(isnan(v));
}

static void test_lex__unquote(void **state)
{
    static const struct {
        const char *in;
        const char *want;     /* NULL: must fail */
        size_t len;
    } cases[] = {
        { "\"\"", "", 0 },
        { "''", "", 0 },
        { "``", "", 0 },
        { "\"abc\"", "abc", 3 },
        { "'abc'", "abc", 3 },
        { "\"\\a\\b\\f\\n\\r\\t\\v\\\\\"", "\a\b\f\n\r\t\v\\", 8 },
        { "\"\\\"\"", "\"", 1 },
        { "'\\''", "'", 1 },
        { "\"\\x41\\x7a\"", "Az", 2 },
        { "\"\\101\\172\"", "Az", 2 },
        { "\"\\377\"", "\xff", 1 },
        { "\"\\u00e9\"", "\xc3\xa9", 2 },
        { "\"\\u20AC\"", "\xe2\x82\xac", 3 },
        { "\"\\U0001F600\"", "\xf0\x9f\x98\x80", 4 },
        { "\"\\x00\"", "\0", 1 },
        { "`a\\nb`", "a\\nb", 4 },
        { "`a\r\nb`", "a\nb", 3 },           /* raw strings drop carriage returns */
        { "\"é\"", "\xc3\xa9", 2 },
        { "\"\\q\"", NULL, 0 },
        { "\"\\x4\"", NULL, 0 },
        { "\"\\u12\"", NULL, 0 },
        { "\"\\ud800\"", NULL, 0 },
        { "\"abc'", NULL, 0 },
        { "\"", NULL, 0 },
        { "\"\\\"", NULL, 0 },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        size_t len = 0;
        int rc = rg__promql_unquote(cases[i].in, strlen(cases[i].in), &out, &len);
        if (!cases[i].want) {
            if (rc != RG_EINVAL)
                fail_msg("unquote %s: want failure, rc %d", cases[i].in, rc);
            continue;
        }
        if (rc != 0)
            fail_msg("unquote %s: rc %d", cases[i].in, rc);
        assert_int_equal(len, cases[i].len);
        assert_memory_equal(out, cases[i].want, len);
        assert_int_equal(out[len], '\0');
        free(out);
    }
}

static void test_lex__quote(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        { "", 0, "\"\"" },
        { "abc", 3, "\"abc\"" },
        { "a\"b\\c", 5, "\"a\\\"b\\\\c\"" },
        { "'", 1, "\"'\"" },
        { "\a\b\f\n\r\t\v", 7, "\"\\a\\b\\f\\n\\r\\t\\v\"" },
        { "\x01\x1f\x7f", 3, "\"\\x01\\x1f\\x7f\"" },
        { "\0", 1, "\"\\x00\"" },
        { "\xc3\xa9", 2, "\"\xc3\xa9\"" },
        { "\xe2\x82\xac", 3, "\"\xe2\x82\xac\"" },
        { "\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\"" },
        { "\xff", 1, "\"\\xff\"" },                  /* invalid UTF-8 */
        { "\xc3", 1, "\"\\xc3\"" },                  /* truncated sequence */
        { "\xc2\x80", 2, "\"\\u0080\"" },            /* C1 control */
        { "\xe2\x80\xa8", 3, "\"\\u2028\"" },        /* line separator */
        { "\xef\xbb\xbf", 3, "\"\\ufeff\"" },        /* byte order mark */
        { "\xc2\xa0", 2, "\"\xc2\xa0\"" },           /* no-break space prints */
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_buf b = { 0 };
        assert_int_equal(rg__promql_quote(&b, cases[i].in, cases[i].len), 0);
        if (strcmp(b.data, cases[i].want) != 0)
            fail_msg("quote case %zu: want %s got %s", i, cases[i].want, b.data);
        rg_buf_cleanup(&b);
    }
}

static void test_lex__format_float(void **state)
{
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        { 0, "0" },
        { 1, "1" },
        { -1, "-1" },
        { 0.1, "0.1" },
        { 0.3, "0.3" },
        { 1.5, "1.5" },
        { 100, "100" },
        { 123.456, "123.456" },
        { 1e21, "1000000000000000000000" },
        { 1e-7, "0.0000001" },
        { 1.25e-5, "0.0000125" },
        { 9007199254740993.0, "9007199254740992" },
        { 0.1 + 0.2, "0.30000000000000004" },
        { 1.0 / 3.0, "0.3333333333333333" },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_buf b = { 0 };
        assert_int_equal(rg__promql_format_float(&b, cases[i].v), 0);
        if (strcmp(b.data, cases[i].want) != 0)
            fail_msg("format %.17g: want %s got %s", cases[i].v, cases[i].want, b.data);
        /* The text reads back as the same double. */
        assert_true(strtod(b.data, NULL) == cases[i].v);
        rg_buf_cleanup(&b);
    }
    /* The extremes: 309 integer digits, and 323 zeros after the point. */
    struct rg_buf b = { 0 }, want = { 0 };
    rg__promql_format_float(&b, 1.7976931348623157e308);
    rg_buf_puts(&want, "17976931348623157");
    while (want.len < 309)
        rg_buf_putc(&want, '0');
    assert_string_equal(b.data, want.data);
    rg_buf_reset(&b);
    rg_buf_reset(&want);
    rg__promql_format_float(&b, 5e-324);
    rg_buf_puts(&want, "0.");
    for (int i = 0; i < 323; i++)
        rg_buf_putc(&want, '0');
    rg_buf_putc(&want, '5');
    assert_string_equal(b.data, want.data);
    rg_buf_cleanup(&want);
    rg_buf_reset(&b);
    rg__promql_format_float(&b, INFINITY);
    rg__promql_format_float(&b, -INFINITY);
    rg__promql_format_float(&b, NAN);
    rg__promql_format_float(&b, -0.0);
    assert_string_equal(b.data, "+Inf-InfNaN-0");
    rg_buf_cleanup(&b);
}

static void test_lex__durations(void **state)
{
    static const struct {
        const char *in;
        int ok;
        int64_t ms;
        const char *canon;     /* rg_promql_format_duration(ms) */
    } cases[] = {
        { "0", 1, 0, "0s" },
        { "0s", 1, 0, "0s" },
        { "1ms", 1, 1, "1ms" },
        { "500ms", 1, 500, "500ms" },
        { "1s", 1, 1000, "1s" },
        { "90s", 1, 90000, "1m30s" },
        { "5m", 1, 300000, "5m" },
        { "1h30m", 1, 5400000, "1h30m" },
        { "90m", 1, 5400000, "1h30m" },
        { "1d", 1, 86400000, "1d" },
        { "7d", 1, 604800000, "1w" },
        { "8d", 1, 691200000, "8d" },
        { "14d", 1, 1209600000, "2w" },
        { "1w", 1, 604800000, "1w" },
        { "1y", 1, 31536000000, "1y" },
        { "1y1d", 1, 31622400000, "366d" },
        { "2w3d", 1, 1468800000, "17d" },
        { "1h1ms", 1, 3600001, "1h1ms" },
        { "1y2w3d4h5m6s7ms", 1, 33019506007, "382d4h5m6s7ms" },
        { "", 0, 0, NULL },
        { "5", 0, 0, NULL },
        { "m", 0, 0, NULL },
        { "1.5h", 0, 0, NULL },
        { "1m1h", 0, 0, NULL },
        { "1h1h", 0, 0, NULL },
        { "1ms1s", 0, 0, NULL },
        { "1x", 0, 0, NULL },
        { "-1m", 0, 0, NULL },
        { "1hs", 0, 0, NULL },
        { "99999999999999999999ms", 0, 0, NULL },
        { "9999999999y", 0, 0, NULL },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = -1;
        int rc = rg_promql_parse_duration(cases[i].in, strlen(cases[i].in), &ms);
        if (!cases[i].ok) {
            if (rc != RG_EINVAL)
                fail_msg("duration %s: want RG_EINVAL, rc %d", cases[i].in, rc);
            continue;
        }
        if (rc != 0 || ms != cases[i].ms)
            fail_msg("duration %s: rc %d ms %lld", cases[i].in, rc, (long long)ms);
        struct rg_buf b = { 0 };
        assert_int_equal(rg_promql_format_duration(ms, &b), 0);
        assert_string_equal(b.data, cases[i].canon);
        /* The canonical form parses back to the same value. */
        assert_int_equal(rg_promql_parse_duration(b.data, b.len, &ms), 0);
        assert_int_equal(ms, cases[i].ms);
        rg_buf_cleanup(&b);
    }
    struct rg_buf b = { 0 };
    assert_int_equal(rg_promql_format_duration(-90000, &b), 0);
    assert_string_equal(b.data, "-1m30s");
    rg_buf_reset(&b);
    assert_int_equal(rg_promql_format_duration(INT64_MIN, &b), 0);
    assert_string_equal(b.data, "-106751991167d7h12m55s808ms");
    rg_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lex__tokens),
        cmocka_unit_test(test_lex__errors),
        cmocka_unit_test(test_lex__describe),
        cmocka_unit_test(test_lex__numbers),
        cmocka_unit_test(test_lex__unquote),
        cmocka_unit_test(test_lex__quote),
        cmocka_unit_test(test_lex__format_float),
        cmocka_unit_test(test_lex__durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
