/* promql/lex.h - the PromQL lexer (internal to the promql module).
 *
 * rg__promql_lex() turns a whole query into an array of tokens before parsing
 * starts. It is a hand-written scanner with two modes, outside and inside label
 * braces, that follows the Prometheus lexer closely: the same token classes,
 * the same keyword table (case-insensitive), the same rules for numbers and
 * durations, and the same error texts. Parenthesis and bracket depth are
 * tracked while scanning, so "unclosed left parenthesis" and friends come out
 * at the same place as in Prometheus. A lexing error ends the token array with
 * an RG__TOK_ERROR token that carries the message; the parser reports it only
 * when it reaches that token, so a syntax error earlier in the input wins.
 * Comments ("# ..." to the end of the line) are dropped. Pure; no I/O.
 */
#ifndef RG_PROMQL_LEX_H
#define RG_PROMQL_LEX_H

#include <stddef.h>

#include "util/buf.h"

enum rg__promql_tok_type {
    RG__TOK_EOF = 0,
    RG__TOK_ERROR,
    RG__TOK_IDENT,          /* foo, also label names inside braces */
    RG__TOK_METRIC_IDENT,   /* an identifier containing ':' */
    RG__TOK_NUMBER,         /* 1, 0x1f, 1e3, .5, Inf, NaN */
    RG__TOK_DURATION,       /* 5m, 1h30m */
    RG__TOK_STRING,         /* "..", '..', `..` (text includes the quotes) */
    RG__TOK_LPAREN, RG__TOK_RPAREN, RG__TOK_LBRACE, RG__TOK_RBRACE,
    RG__TOK_LBRACKET, RG__TOK_RBRACKET, RG__TOK_COMMA, RG__TOK_COLON, RG__TOK_AT,
    /* Operators. */
    RG__TOK_ADD, RG__TOK_SUB, RG__TOK_MUL, RG__TOK_DIV, RG__TOK_MOD, RG__TOK_POW,
    RG__TOK_EQLC, RG__TOK_NEQ, RG__TOK_LTE, RG__TOK_LSS, RG__TOK_GTE, RG__TOK_GTR,
    RG__TOK_EQL, RG__TOK_EQL_REGEX, RG__TOK_NEQ_REGEX,
    RG__TOK_LAND, RG__TOK_LOR, RG__TOK_LUNLESS, RG__TOK_ATAN2,
    /* Aggregators. */
    RG__TOK_SUM, RG__TOK_AVG, RG__TOK_MIN, RG__TOK_MAX, RG__TOK_COUNT, RG__TOK_GROUP,
    RG__TOK_STDDEV, RG__TOK_STDVAR, RG__TOK_TOPK, RG__TOK_BOTTOMK, RG__TOK_QUANTILE,
    RG__TOK_COUNT_VALUES, RG__TOK_LIMITK, RG__TOK_LIMIT_RATIO,
    /* Keywords. */
    RG__TOK_BOOL, RG__TOK_BY, RG__TOK_WITHOUT, RG__TOK_ON, RG__TOK_IGNORING,
    RG__TOK_GROUP_LEFT, RG__TOK_GROUP_RIGHT, RG__TOK_OFFSET, RG__TOK_START, RG__TOK_END,
};

/** One token: a byte range of the input. */
struct rg__promql_tok {
    enum rg__promql_tok_type type;
    int pos;              /* byte offset of the first character */
    int len;              /* bytes */
};

/** The token array of one query. */
struct rg__promql_toks {
    struct rg__promql_tok *v;   /* owned; the last one is EOF or ERROR */
    size_t n;
    char errmsg[160];           /* message of the final ERROR token, if any */
};

/** Lexes @input (@len bytes). On success @out owns a token array that ends with
 *  EOF or ERROR; release it with rg__promql_toks_cleanup(). Returns 0 or
 *  RG_ENOMEM (lexing errors are tokens, not return codes). */
int rg__promql_lex(const char *input, size_t len, struct rg__promql_toks *out);

/** Frees the token array. NULL is a no-op. */
void rg__promql_toks_cleanup(struct rg__promql_toks *toks);

/** True for the aggregation operator tokens. */
int rg__promql_tok_is_aggregator(enum rg__promql_tok_type t);
/** True for keyword tokens (bool, by, ..., start, end). */
int rg__promql_tok_is_keyword(enum rg__promql_tok_type t);
/** True for operator tokens (+ ... atan2, =, =~, !~). */
int rg__promql_tok_is_operator(enum rg__promql_tok_type t);

/** Appends the Prometheus description of @tok as used in "unexpected ..."
 *  messages: `end of input`, `identifier "foo"`, `<op:+>`, `<aggr:sum>`, `<by>`,
 *  `"("`. Returns 0 or RG_ENOMEM. */
int rg__promql_tok_describe(const char *input, const struct rg__promql_tok *tok,
                            struct rg_buf *out);

/** Decodes the string literal @s (@len bytes, quotes included) into a fresh
 *  malloc'd NUL-terminated string *@out (caller frees), *@outlen bytes long.
 *  The lexer has validated the escapes already. Returns 0, RG_EINVAL or
 *  RG_ENOMEM. */
int rg__promql_unquote(const char *s, size_t len, char **out, size_t *outlen);

/** Appends @s quoted as Go's strconv.Quote does (the printer's string form).
 *  Returns 0 or RG_ENOMEM. */
int rg__promql_quote(struct rg_buf *out, const char *s, size_t len);

/** Appends @v as Go's strconv.FormatFloat(v, 'f', -1, 64): the shortest digits
 *  that read back as @v, never an exponent; "+Inf", "-Inf", "NaN". */
int rg__promql_format_float(struct rg_buf *out, double v);

/** Parses a number token's text as Prometheus does (integer with base prefix
 *  first, then float). Returns 0 or RG_EINVAL. */
int rg__promql_parse_number(const char *s, size_t len, double *out);

#endif
