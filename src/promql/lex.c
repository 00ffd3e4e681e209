/* promql/lex.c - the PromQL lexer: a two-mode hand-written scanner.
 *
 * Outside braces the scanner recognises operators, punctuation, numbers,
 * durations, strings and identifiers; words are looked up case-insensitively in
 * the keyword table (Inf and NaN are numbers). Inside braces only label names,
 * strings, commas and the four matcher operators are valid, as in Prometheus.
 * Numbers are scanned as "digits [. digits] [e [+-] digits]" (or a 0x prefix and
 * hex digits); a number directly followed by letters is re-read as a duration
 * ("5m", "1h30m"), and anything else alphanumeric is "bad number or duration
 * syntax". The module also holds the small text helpers shared by the parser and
 * the printer: Go-compatible unquoting and quoting, and shortest float format.
 */
#include "promql/lex.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/err.h"
#include "util/hex.h"
#include "util/utf8.h"

struct lexer {
    const char *in;               /* the query, borrowed */
    size_t len;                   /* bytes */
    size_t pos;                   /* next byte to read */
    int paren_depth;              /* open "(" not yet closed */
    int bracket_open;             /* inside "[...]" */
    int brace_open;               /* inside "{...}": label matcher mode */
    struct rg__promql_toks *out;  /* where tokens go */
    size_t cap;                   /* allocated tokens in out->v */
};

static const struct {
    const char *word;
    enum rg__promql_tok_type type;
} keywords[] = {
    { "and", RG__TOK_LAND }, { "or", RG__TOK_LOR }, { "unless", RG__TOK_LUNLESS },
    { "atan2", RG__TOK_ATAN2 }, { "sum", RG__TOK_SUM }, { "avg", RG__TOK_AVG },
    { "min", RG__TOK_MIN }, { "max", RG__TOK_MAX }, { "count", RG__TOK_COUNT },
    { "group", RG__TOK_GROUP }, { "stddev", RG__TOK_STDDEV }, { "stdvar", RG__TOK_STDVAR },
    { "topk", RG__TOK_TOPK }, { "bottomk", RG__TOK_BOTTOMK },
    { "quantile", RG__TOK_QUANTILE }, { "count_values", RG__TOK_COUNT_VALUES },
    { "limitk", RG__TOK_LIMITK }, { "limit_ratio", RG__TOK_LIMIT_RATIO },
    { "bool", RG__TOK_BOOL }, { "by", RG__TOK_BY }, { "without", RG__TOK_WITHOUT },
    { "on", RG__TOK_ON }, { "ignoring", RG__TOK_IGNORING },
    { "group_left", RG__TOK_GROUP_LEFT }, { "group_right", RG__TOK_GROUP_RIGHT },
    { "offset", RG__TOK_OFFSET }, { "start", RG__TOK_START }, { "end", RG__TOK_END },
    { "inf", RG__TOK_NUMBER }, { "nan", RG__TOK_NUMBER },
};

int rg__promql_tok_is_aggregator(enum rg__promql_tok_type t)
{
    return t >= RG__TOK_SUM && t <= RG__TOK_LIMIT_RATIO;
}

int rg__promql_tok_is_keyword(enum rg__promql_tok_type t)
{
    return t >= RG__TOK_BOOL && t <= RG__TOK_END;
}

int rg__promql_tok_is_operator(enum rg__promql_tok_type t)
{
    return t >= RG__TOK_ADD && t <= RG__TOK_ATAN2;
}

static int is_alpha(int c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(int c)
{
    return is_alpha(c) || is_digit(c);
}

static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int peek(const struct lexer *l, size_t off)
{
    return l->pos + off < l->len ? (unsigned char)l->in[l->pos + off] : -1;
}

static int emit(struct lexer *l, enum rg__promql_tok_type type, size_t start)
{
    struct rg__promql_toks *t = l->out;

    if (t->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 32;
        struct rg__promql_tok *v = realloc(t->v, ncap * sizeof(*v));
        if (!v)
            return RG_ENOMEM;
        t->v = v;
        l->cap = ncap;
    }
    t->v[t->n].type = type;
    t->v[t->n].pos = (int)start;
    t->v[t->n].len = (int)(l->pos - start);
    t->n++;
    return 0;
}

/* Ends the token stream with an error token at @start. Always returns 1 so that
 * callers can write "return lex_error(...)" to stop scanning. */
static int lex_error(struct lexer *l, size_t start, int *rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int lex_error(struct lexer *l, size_t start, int *rc, const char *fmt, ...)
{
    va_list ap;
    size_t save = l->pos;

    va_start(ap, fmt);
    vsnprintf(l->out->errmsg, sizeof(l->out->errmsg), fmt, ap);
    va_end(ap);
    l->pos = start;
    *rc = emit(l, RG__TOK_ERROR, start);
    l->pos = save;
    return 1;
}

/* Formats one character the way Go's %q formats a rune, for error messages. */
static void rune_quote(int c, char *buf, size_t cap)
{
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\')
        snprintf(buf, cap, "'%c'", c);
    else if (c == '\'' || c == '\\')
        snprintf(buf, cap, "'\\%c'", c);
    else if (c > 0 && c < 0x20 && strchr("\a\b\f\n\r\t\v", c))
        snprintf(buf, cap, "'\\%c'", "abtnvfr"[c - '\a']);
    else if (c < 0)
        snprintf(buf, cap, "'\\uffff'");
    else
        snprintf(buf, cap, "'\\x%02x'", c);
}

/* Steps over the character at the cursor; 0 when it is not valid UTF-8. */
static int skip_char(struct lexer *l)
{
    size_t n = rg_utf8_seq_len(l->in + l->pos, l->len - l->pos);

    l->pos += n;
    return n != 0;
}

/* Scans a quoted string starting at the opening quote, validating escapes as
 * Go does. Returns 1 when scanning must stop (error token emitted). */
static int lex_string(struct lexer *l, int *rc)
{
    size_t start = l->pos;
    int quote = peek(l, 0);

    l->pos++;
    if (quote == '`') {
        while (peek(l, 0) != '`') {
            if (peek(l, 0) < 0)
                return lex_error(l, start, rc, "unterminated raw string");
            if (!skip_char(l))
                return lex_error(l, start, rc, "invalid UTF-8 rune");
        }
        l->pos++;
        *rc = emit(l, RG__TOK_STRING, start);
        return *rc != 0;
    }
    for (;;) {
        int c = peek(l, 0);
        if (c < 0 || c == '\n')
            return lex_error(l, start, rc, "unterminated quoted string");
        if (!skip_char(l))
            return lex_error(l, start, rc, "invalid UTF-8 rune");
        if (c == quote)
            break;
        if (c != '\\')
            continue;
        c = peek(l, 0);
        if (c < 0)
            return lex_error(l, start, rc, "escape sequence not terminated");
        l->pos++;
        int n = 0, base = 0;
        uint32_t max = 0, x = 0;
        switch (c) {
        case 'a': case 'b': case 'f': case 'n': case 'r': case 't': case 'v': case '\\':
            continue;
        case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
            n = 3, base = 8, max = 255;
            l->pos--;
            break;
        case 'x':
            n = 2, base = 16, max = 255;
            break;
        case 'u':
            n = 4, base = 16, max = 0x10ffff;
            break;
        case 'U':
            n = 8, base = 16, max = 0x10ffff;
            break;
        default:
            if (c == quote)
                continue;
            if (c >= 0x20 && c < 0x7f)
                return lex_error(l, start, rc, "unknown escape sequence U+%04X '%c'", c, c);
            return lex_error(l, start, rc, "unknown escape sequence U+%04X", c);
        }
        for (; n > 0; n--) {
            int d = peek(l, 0);
            int v = rg_hex_digit(d);
            if (d < 0)
                return lex_error(l, start, rc, "escape sequence not terminated");
            if (v < 0 || v >= base)
                return lex_error(l, start, rc, "illegal character U+%04X in escape sequence",
                                 d);
            x = x * (uint32_t)base + (uint32_t)v;
            l->pos++;
        }
        if (x > max || (x >= 0xD800 && x < 0xE000))
            return lex_error(l, start, rc,
                             "escape sequence is an invalid Unicode code point");
    }
    *rc = emit(l, RG__TOK_STRING, start);
    return *rc != 0;
}

/* Scans the number part of a number or duration, as Prometheus' scanNumber:
 * returns 1 when the token is a complete number (not followed by a letter). */
static int scan_number(struct lexer *l)
{
    const char *digits = "0123456789";

    if (peek(l, 0) == '0' && (peek(l, 1) == 'x' || peek(l, 1) == 'X')) {
        l->pos += 2;
        digits = "0123456789abcdefABCDEF";
    }
    while (peek(l, 0) > 0 && strchr(digits, peek(l, 0)))
        l->pos++;
    if (peek(l, 0) == '.') {
        l->pos++;
        while (peek(l, 0) > 0 && strchr(digits, peek(l, 0)))
            l->pos++;
    }
    if (peek(l, 0) == 'e' || peek(l, 0) == 'E') {
        l->pos++;
        if (peek(l, 0) == '+' || peek(l, 0) == '-')
            l->pos++;
        while (is_digit(peek(l, 0)))
            l->pos++;
    }
    return !is_alnum(peek(l, 0));
}

static int accept_unit(struct lexer *l, const char *units)
{
    int c = peek(l, 0);
    if (c > 0 && strchr(units, c)) {
        l->pos++;
        return 1;
    }
    return 0;
}

/* After the digits of a duration: "unit [s] (digits unit [s])*", then a
 * non-alphanumeric character. Bad unit combinations are left to the duration
 * parser, which gives the more precise message. */
static int accept_remaining_duration(struct lexer *l)
{
    if (!accept_unit(l, "nsumhdwy"))
        return 0;
    accept_unit(l, "s");
    while (is_digit(peek(l, 0))) {
        while (is_digit(peek(l, 0)))
            l->pos++;
        if (!accept_unit(l, "nsumhdw"))
            return 0;
        accept_unit(l, "s");
    }
    if (is_alnum(peek(l, 0))) {
        l->pos++;
        return 0;
    }
    return 1;
}

static int lex_number(struct lexer *l, int *rc)
{
    size_t start = l->pos;

    if (scan_number(l)) {
        *rc = emit(l, RG__TOK_NUMBER, start);
        return *rc != 0;
    }
    if (accept_remaining_duration(l)) {
        *rc = emit(l, RG__TOK_DURATION, start);
        return *rc != 0;
    }
    return lex_error(l, start, rc, "bad number or duration syntax: \"%.*s\"",
                     (int)(l->pos - start), l->in + start);
}

static int lex_word(struct lexer *l, int *rc)
{
    size_t start = l->pos;
    int colon = 0;
    size_t i;

    while (is_alnum(peek(l, 0)) || peek(l, 0) == ':') {
        colon |= peek(l, 0) == ':';
        l->pos++;
    }
    for (i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
        if (strlen(keywords[i].word) == l->pos - start &&
            strncasecmp(keywords[i].word, l->in + start, l->pos - start) == 0) {
            *rc = emit(l, keywords[i].type, start);
            return *rc != 0;
        }
    }
    *rc = emit(l, colon ? RG__TOK_METRIC_IDENT : RG__TOK_IDENT, start);
    return *rc != 0;
}

/* One token inside label braces. Returns 1 when scanning must stop. */
static int lex_inside_braces(struct lexer *l, int *rc)
{
    size_t start = l->pos;
    int c = peek(l, 0);
    char q[16];

    if (c < 0)
        return lex_error(l, start, rc, "unexpected end of input inside braces");
    if (is_space(c)) {
        l->pos++;
        return 0;
    }
    if (c == '#') {
        while (peek(l, 0) >= 0 && peek(l, 0) != '\n')
            l->pos++;
        return 0;
    }
    if (is_alpha(c)) {
        while (is_alnum(peek(l, 0)))
            l->pos++;
        *rc = emit(l, RG__TOK_IDENT, start);
        return *rc != 0;
    }
    if (c == '"' || c == '\'' || c == '`')
        return lex_string(l, rc);
    l->pos++;
    switch (c) {
    case ',':
        *rc = emit(l, RG__TOK_COMMA, start);
        return *rc != 0;
    case '=':
        if (peek(l, 0) == '~') {
            l->pos++;
            *rc = emit(l, RG__TOK_EQL_REGEX, start);
        } else {
            *rc = emit(l, RG__TOK_EQL, start);
        }
        return *rc != 0;
    case '!':
        c = peek(l, 0);
        l->pos++;
        if (c == '~') {
            *rc = emit(l, RG__TOK_NEQ_REGEX, start);
            return *rc != 0;
        }
        if (c == '=') {
            *rc = emit(l, RG__TOK_NEQ, start);
            return *rc != 0;
        }
        rune_quote(c, q, sizeof(q));
        return lex_error(l, start, rc, "unexpected character after '!' inside braces: %s", q);
    case '{':
        return lex_error(l, start, rc, "unexpected left brace '{'");
    case '}':
        l->brace_open = 0;
        *rc = emit(l, RG__TOK_RBRACE, start);
        return *rc != 0;
    default:
        rune_quote(c, q, sizeof(q));
        return lex_error(l, start, rc, "unexpected character inside braces: %s", q);
    }
}

static int lex_op(struct lexer *l, enum rg__promql_tok_type t, size_t n, size_t start, int *rc)
{
    l->pos += n;
    *rc = emit(l, t, start);
    return *rc != 0;
}

/* One token outside braces. Returns 1 when scanning must stop. */
static int lex_statement(struct lexer *l, int *rc)
{
    size_t start = l->pos;
    int c = peek(l, 0);
    char q[16];

    if (c < 0) {
        if (l->paren_depth)
            return lex_error(l, start, rc, "unclosed left parenthesis");
        if (l->bracket_open)
            return lex_error(l, start, rc, "unclosed left bracket");
        *rc = emit(l, RG__TOK_EOF, start);
        return 1;
    }
    if (is_space(c)) {
        l->pos++;
        return 0;
    }
    if (c == '#') {
        while (peek(l, 0) >= 0 && peek(l, 0) != '\n')
            l->pos++;
        return 0;
    }
    if (is_digit(c) || (c == '.' && is_digit(peek(l, 1))))
        return lex_number(l, rc);
    if (c == '"' || c == '\'' || c == '`')
        return lex_string(l, rc);
    if (is_alpha(c) || (c == ':' && !l->bracket_open))
        return lex_word(l, rc);
    switch (c) {
    case ',': return lex_op(l, RG__TOK_COMMA, 1, start, rc);
    case '@': return lex_op(l, RG__TOK_AT, 1, start, rc);
    case ':': return lex_op(l, RG__TOK_COLON, 1, start, rc);
    case '+': return lex_op(l, RG__TOK_ADD, 1, start, rc);
    case '-': return lex_op(l, RG__TOK_SUB, 1, start, rc);
    case '*': return lex_op(l, RG__TOK_MUL, 1, start, rc);
    case '/': return lex_op(l, RG__TOK_DIV, 1, start, rc);
    case '%': return lex_op(l, RG__TOK_MOD, 1, start, rc);
    case '^': return lex_op(l, RG__TOK_POW, 1, start, rc);
    case '=':
        if (peek(l, 1) == '=')
            return lex_op(l, RG__TOK_EQLC, 2, start, rc);
        /* Regex matching exists only inside braces. */
        if (peek(l, 1) == '~')
            return lex_error(l, start, rc, "unexpected character after '=': '~'");
        return lex_op(l, RG__TOK_EQL, 1, start, rc);
    case '!':
        if (peek(l, 1) == '=')
            return lex_op(l, RG__TOK_NEQ, 2, start, rc);
        rune_quote(peek(l, 1), q, sizeof(q));
        return lex_error(l, start, rc, "unexpected character after '!': %s", q);
    case '<':
        if (peek(l, 1) == '=')
            return lex_op(l, RG__TOK_LTE, 2, start, rc);
        return lex_op(l, RG__TOK_LSS, 1, start, rc);
    case '>':
        if (peek(l, 1) == '=')
            return lex_op(l, RG__TOK_GTE, 2, start, rc);
        return lex_op(l, RG__TOK_GTR, 1, start, rc);
    case '(':
        l->paren_depth++;
        return lex_op(l, RG__TOK_LPAREN, 1, start, rc);
    case ')':
        if (l->paren_depth == 0)
            return lex_error(l, start, rc, "unexpected right parenthesis ')'");
        l->paren_depth--;
        return lex_op(l, RG__TOK_RPAREN, 1, start, rc);
    case '{':
        l->brace_open = 1;
        return lex_op(l, RG__TOK_LBRACE, 1, start, rc);
    case '}':
        return lex_error(l, start, rc, "unexpected right brace '}'");
    case '[':
        if (l->bracket_open)
            return lex_error(l, start, rc, "unexpected left bracket '['");
        l->bracket_open = 1;
        return lex_op(l, RG__TOK_LBRACKET, 1, start, rc);
    case ']':
        if (!l->bracket_open)
            return lex_error(l, start, rc, "unexpected right bracket ']'");
        l->bracket_open = 0;
        return lex_op(l, RG__TOK_RBRACKET, 1, start, rc);
    default:
        rune_quote(c, q, sizeof(q));
        return lex_error(l, start, rc, "unexpected character: %s", q);
    }
}

int rg__promql_lex(const char *input, size_t len, struct rg__promql_toks *out)
{
    struct lexer l;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    memset(&l, 0, sizeof(l));
    l.in = input;
    l.len = len;
    l.out = out;
    for (;;) {
        int stop = l.brace_open ? lex_inside_braces(&l, &rc) : lex_statement(&l, &rc);
        if (rc) {
            rg__promql_toks_cleanup(out);
            return rc;
        }
        if (stop)
            return 0;
    }
}

void rg__promql_toks_cleanup(struct rg__promql_toks *toks)
{
    if (!toks)
        return;
    free(toks->v);
    toks->v = NULL;
    toks->n = 0;
}

static const char *punct_text(enum rg__promql_tok_type t)
{
    switch (t) {
    case RG__TOK_LPAREN: return "(";
    case RG__TOK_RPAREN: return ")";
    case RG__TOK_LBRACE: return "{";
    case RG__TOK_RBRACE: return "}";
    case RG__TOK_LBRACKET: return "[";
    case RG__TOK_RBRACKET: return "]";
    case RG__TOK_COMMA: return ",";
    case RG__TOK_COLON: return ":";
    case RG__TOK_AT: return "@";
    default: return NULL;
    }
}

/* Go's "%.10q": quotes at most the first ten characters (runes). */
static int quote_prefix(struct rg_buf *out, const char *s, size_t len)
{
    size_t i = 0;
    int runes = 0;

    while (i < len && runes < 10) {
        unsigned char c = (unsigned char)s[i++];
        if (c >= 0xc0)
            while (i < len && ((unsigned char)s[i] & 0xc0) == 0x80)
                i++;
        runes++;
    }
    if (rg__promql_quote(out, s, i))
        return RG_ENOMEM;
    return i < len ? rg_buf_puts(out, "...") : 0;
}

int rg__promql_tok_describe(const char *input, const struct rg__promql_tok *tok,
                            struct rg_buf *out)
{
    const char *s = input + tok->pos;
    size_t n = (size_t)tok->len;
    const char *p = punct_text(tok->type);

    switch (tok->type) {
    case RG__TOK_EOF:
        return rg_buf_puts(out, "end of input");
    case RG__TOK_ERROR:
        return rg_buf_puts(out, "error");
    case RG__TOK_IDENT:
        return rg_buf_puts(out, "identifier ") || rg__promql_quote(out, s, n) ? RG_ENOMEM : 0;
    case RG__TOK_METRIC_IDENT:
        return rg_buf_puts(out, "metric identifier ") || rg__promql_quote(out, s, n)
                   ? RG_ENOMEM : 0;
    case RG__TOK_NUMBER:
        return rg_buf_puts(out, "number ") || quote_prefix(out, s, n) ? RG_ENOMEM : 0;
    case RG__TOK_DURATION:
        return rg_buf_puts(out, "duration ") || quote_prefix(out, s, n) ? RG_ENOMEM : 0;
    case RG__TOK_STRING:
        return rg_buf_puts(out, "string ") || quote_prefix(out, s, n) ? RG_ENOMEM : 0;
    default:
        break;
    }
    if (p)
        return rg_buf_printf(out, "\"%s\"", p);
    if (rg__promql_tok_is_aggregator(tok->type))
        return rg_buf_printf(out, "<aggr:%.*s>", (int)n, s);
    if (rg__promql_tok_is_operator(tok->type))
        return rg_buf_printf(out, "<op:%.*s>", (int)n, s);
    return rg_buf_printf(out, "<%.*s>", (int)n, s);
}

static int put_utf8(struct rg_buf *b, uint32_t cp)
{
    char u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return rg_buf_append(b, u, n);
}

int rg__promql_unquote(const char *s, size_t len, char **out, size_t *outlen)
{
    struct rg_buf b = { 0 };
    char quote;
    size_t i;
    int err = 0;

    if (len < 2 || s[0] != s[len - 1])
        return RG_EINVAL;
    quote = s[0];
    if (rg_buf_reserve(&b, len))
        return RG_ENOMEM;
    for (i = 1; i < len - 1 && !err; i++) {
        char c = s[i];
        if (quote == '`') {
            /* Go drops carriage returns from raw strings. */
            if (c != '\r')
                err = rg_buf_putc(&b, c);
            continue;
        }
        if (c != '\\') {
            err = rg_buf_putc(&b, c);
            continue;
        }
        if (++i >= len - 1) {
            err = RG_EINVAL;
            break;
        }
        c = s[i];
        int n = 0, base = 16;
        switch (c) {
        case 'a': err = rg_buf_putc(&b, '\a'); continue;
        case 'b': err = rg_buf_putc(&b, '\b'); continue;
        case 'f': err = rg_buf_putc(&b, '\f'); continue;
        case 'n': err = rg_buf_putc(&b, '\n'); continue;
        case 'r': err = rg_buf_putc(&b, '\r'); continue;
        case 't': err = rg_buf_putc(&b, '\t'); continue;
        case 'v': err = rg_buf_putc(&b, '\v'); continue;
        case '\\': case '\'': case '"': err = rg_buf_putc(&b, c); continue;
        case 'x': n = 2; break;
        case 'u': n = 4; break;
        case 'U': n = 8; break;
        default:
            if (c >= '0' && c <= '7') {
                n = 3;
                base = 8;
                i--;
                break;
            }
            err = RG_EINVAL;
            continue;
        }
        uint32_t x = 0;
        for (; n > 0; n--) {
            int v = ++i < len - 1 ? rg_hex_digit((unsigned char)s[i]) : -1;
            if (v < 0 || v >= base) {
                err = RG_EINVAL;
                break;
            }
            x = x * (uint32_t)base + (uint32_t)v;
        }
        if (err)
            break;
        /* \x and octal escapes are single bytes; \u and \U are code points. */
        if (c == 'x' || base == 8) {
            err = x > 255 ? RG_EINVAL : rg_buf_putc(&b, (char)x);
        } else {
            if (x > 0x10ffff || (x >= 0xD800 && x < 0xE000))
                err = RG_EINVAL;
            else
                err = put_utf8(&b, x);
        }
    }
    /* Appending nothing still writes the terminating NUL (empty strings). */
    if (!err)
        err = rg_buf_append(&b, "", 0);
    if (err) {
        rg_buf_cleanup(&b);
        return err;
    }
    *outlen = b.len;
    *out = rg_buf_steal(&b, NULL);
    return *out ? 0 : RG_ENOMEM;
}

/* An approximation of Go's unicode.IsPrint for non-ASCII code points: the C1
 * controls, the line/paragraph separators, format characters commonly met in
 * text and non-characters are escaped; everything else prints as itself. */
static int rune_printable(uint32_t cp)
{
    if (cp < 0xa0)
        return 0;
    if (cp == 0xad || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x200b && cp <= 0x200f) ||
        (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb) ||
        (cp & 0xfffe) == 0xfffe || (cp >= 0xe000 && cp <= 0xf8ff) || cp >= 0xf0000)
        return 0;
    return 1;
}

int rg__promql_quote(struct rg_buf *out, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    int err = rg_buf_putc(out, '"');

    while (!err && i < len) {
        unsigned char c = u[i];
        uint32_t cp;
        size_t n;

        if (c < 0x80) {
            i++;
            switch (c) {
            case '\a': err = rg_buf_puts(out, "\\a"); break;
            case '\b': err = rg_buf_puts(out, "\\b"); break;
            case '\f': err = rg_buf_puts(out, "\\f"); break;
            case '\n': err = rg_buf_puts(out, "\\n"); break;
            case '\r': err = rg_buf_puts(out, "\\r"); break;
            case '\t': err = rg_buf_puts(out, "\\t"); break;
            case '\v': err = rg_buf_puts(out, "\\v"); break;
            case '\\': err = rg_buf_puts(out, "\\\\"); break;
            case '"': err = rg_buf_puts(out, "\\\""); break;
            default:
                if (c < 0x20 || c == 0x7f)
                    err = rg_buf_printf(out, "\\x%02x", c);
                else
                    err = rg_buf_putc(out, (char)c);
            }
            continue;
        }
        n = rg_utf8_decode(s + i, len - i, &cp);
        if (n == 0) {
            err = rg_buf_printf(out, "\\x%02x", c);
            i++;
        } else if (rune_printable(cp)) {
            err = rg_buf_append(out, s + i, n);
            i += n;
        } else {
            err = cp < 0x10000 ? rg_buf_printf(out, "\\u%04x", (unsigned)cp)
                               : rg_buf_printf(out, "\\U%08x", (unsigned)cp);
            i += n;
        }
    }
    return err ? err : rg_buf_putc(out, '"');
}

int rg__promql_format_float(struct rg_buf *out, double v)
{
    char tmp[40], digits[24];
    int prec, exp, nd, i, k;
    char *e;

    if (isnan(v))
        return rg_buf_puts(out, "NaN");
    if (isinf(v))
        return rg_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    /* Find the shortest %e form that reads back exactly (at most 17 digits). */
    for (prec = 0; prec < 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* tmp is "[-]d[.ddd]e[+-]xx": collect the digits and the exponent. */
    nd = 0;
    for (i = tmp[0] == '-' ? 1 : 0; tmp[i] != 'e'; i++)
        if (is_digit(tmp[i]))
            digits[nd++] = tmp[i];
    exp = (int)strtol(tmp + i + 1, &e, 10);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    if (signbit(v) && rg_buf_putc(out, '-'))
        return RG_ENOMEM;
    if (exp < 0) {
        if (rg_buf_puts(out, "0."))
            return RG_ENOMEM;
        for (k = -1; k > exp; k--)
            if (rg_buf_putc(out, '0'))
                return RG_ENOMEM;
        return rg_buf_append(out, digits, (size_t)nd);
    }
    for (k = 0; k <= exp; k++)
        if (rg_buf_putc(out, k < nd ? digits[k] : '0'))
            return RG_ENOMEM;
    if (nd > exp + 1) {
        if (rg_buf_putc(out, '.'))
            return RG_ENOMEM;
        return rg_buf_append(out, digits + exp + 1, (size_t)(nd - exp - 1));
    }
    return 0;
}

int rg__promql_parse_number(const char *s, size_t len, double *out)
{
    char tmp[128];
    char *end;
    size_t i;
    int all_digits = 1;

    if (len == 0 || len >= sizeof(tmp))
        return RG_EINVAL;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    for (i = 0; i < len; i++)
        all_digits &= is_digit(tmp[i]);
    /* Go's ParseInt with base 0 comes first: 0x hex, a leading 0 means octal. */
    if (len > 2 && tmp[0] == '0' && (tmp[1] == 'x' || tmp[1] == 'X')) {
        for (i = 2; i < len; i++)
            if (rg_hex_digit((unsigned char)tmp[i]) < 0)
                return RG_EINVAL;
        errno = 0;
        unsigned long long x = strtoull(tmp + 2, &end, 16);
        if (errno == ERANGE || x > INT64_MAX)
            return RG_EINVAL;
        *out = (double)x;
        return 0;
    }
    if (all_digits && len > 1 && tmp[0] == '0') {
        int octal = 1;
        for (i = 1; i < len; i++)
            octal &= tmp[i] <= '7';
        if (octal) {
            errno = 0;
            unsigned long long x = strtoull(tmp, &end, 8);
            if (errno != ERANGE && x <= INT64_MAX) {
                *out = (double)x;
                return 0;
            }
        }
    }
    if (tmp[0] == '0' && (tmp[1] == 'x' || tmp[1] == 'X'))
        return RG_EINVAL;
    errno = 0;
    *out = strtod(tmp, &end);
    if (end != tmp + len)
        return RG_EINVAL;
    return 0;
}
