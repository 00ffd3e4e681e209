/* promql/parse.c - the PromQL parser: tokens -> syntax tree -> type check.
 *
 * A precedence-climbing (Pratt) parser over the token array from lex.c. Binary
 * operators bind, from loosest to tightest: or; and unless; == != <= < >= >;
 * + -; * / % atan2; ^ (the only right-associative one). A unary + or - applies
 * to an operand that may itself contain ^, so -2^2 is -(2^2) and -a*b is
 * (-a)*b, as in Prometheus' grammar where the unary rule has the precedence of
 * "*". Range brackets, "offset" and "@" are postfix and bind tighter than any
 * operator. A minus in front of a number literal is folded into the literal and
 * a unary plus disappears, again as Prometheus does.
 *
 * Parsing happens in two passes, like Prometheus: the first builds the tree and
 * reports syntax errors and the errors Prometheus raises while building nodes
 * (offset/@ placement, aggregation arity, unknown functions, bad regexes); only
 * a syntactically valid tree reaches the second pass, which checks value types
 * (function signatures, aggregation operands, vector matching, set operators,
 * scalar comparisons, selector sanity). The first error wins and is reported as
 * "<line>:<column>: parse error: <message>" with a 1-based byte column.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql/ast.h"
#include "promql/lex.h"
#include "promql/syntax.h"
#include "util/err.h"

/* Where each binary node's operator was written: Prometheus reports operator
 * errors there, and the tree itself does not keep it. */
struct op_pos {
    const struct rg_promql_node *node;
    int pos;
};

struct parser {
    const char *in;
    struct rg__promql_toks toks;
    size_t i;                 /* current token */
    int rc;                   /* first error, 0 while none */
    char *err;
    size_t errlen;
    struct op_pos *ops;
    size_t nops, capops;
    int depth;                /* bound on the depth of the tree being built */
};

/* Trees are walked recursively (check, print, free, evaluation), so their depth
 * is bounded here: a hostile query cannot exhaust the stack. */
#define MAX_DEPTH 1000

enum { PREC_OR = 1, PREC_AND, PREC_CMP, PREC_ADD, PREC_MUL, PREC_POW };

/* ---- errors -------------------------------------------------------------- */

static void perr(struct parser *p, int pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void perr(struct parser *p, int pos, const char *fmt, ...)
{
    int line = 1, col;
    int last_nl = -1;
    size_t off;
    va_list ap;

    if (p->rc)
        return;
    p->rc = RG_EPARSE;
    if (!p->err || p->errlen == 0)
        return;
    for (int k = 0; k < pos && p->in[k]; k++) {
        if (p->in[k] == '\n') {
            line++;
            last_nl = k;
        }
    }
    col = pos - last_nl;
    snprintf(p->err, p->errlen, "%d:%d: parse error: ", line, col);
    off = strlen(p->err);
    if (off < p->errlen) {
        va_start(ap, fmt);
        vsnprintf(p->err + off, p->errlen - off, fmt, ap);
        va_end(ap);
    }
}

static void oom(struct parser *p)
{
    if (!p->rc)
        p->rc = RG_ENOMEM;
}

static const struct rg__promql_tok *tok(const struct parser *p)
{
    return &p->toks.v[p->i];
}

static const struct rg__promql_tok *peek_tok(const struct parser *p)
{
    return p->i + 1 < p->toks.n ? &p->toks.v[p->i + 1] : &p->toks.v[p->i];
}

static void next(struct parser *p)
{
    if (p->i + 1 < p->toks.n)
        p->i++;
}

/* Reports the current token as unexpected; a lexing error token reports the
 * lexer's own message instead. */
static void unexpected(struct parser *p, const char *context, const char *expected)
{
    const struct rg__promql_tok *t = tok(p);
    struct rg_buf b = { 0 };

    if (t->type == RG__TOK_ERROR) {
        perr(p, t->pos, "%s", p->toks.errmsg);
        return;
    }
    if (rg__promql_tok_describe(p->in, t, &b) ||
        (context && *context && rg_buf_printf(&b, " in %s", context)) ||
        (expected && *expected && rg_buf_printf(&b, ", expected %s", expected))) {
        rg_buf_cleanup(&b);
        oom(p);
        return;
    }
    perr(p, t->pos, "unexpected %s", b.data);
    rg_buf_cleanup(&b);
}

/* ---- node helpers -------------------------------------------------------- */

static struct rg_promql_node *new_node(struct parser *p, enum rg_promql_kind kind, int pos)
{
    struct rg_promql_node *n = calloc(1, sizeof(*n));
    if (!n) {
        oom(p);
        return NULL;
    }
    n->kind = kind;
    n->pos = pos;
    return n;
}

static char *dup_tok(struct parser *p, const struct rg__promql_tok *t)
{
    char *s = strndup(p->in + t->pos, (size_t)t->len);
    if (!s)
        oom(p);
    return s;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void matching_free(struct rg_promql_matching *m)
{
    if (!m)
        return;
    free_strv(m->labels, m->nlabels);
    free_strv(m->include, m->ninclude);
    free(m);
}

void rg_promql_node_free(struct rg_promql_node *n)
{
    size_t i;

    if (!n)
        return;
    switch (n->kind) {
    case RG_PROMQL_NUMBER:
        break;
    case RG_PROMQL_STRING:
        free(n->u.string);
        break;
    case RG_PROMQL_SELECTOR:
    case RG_PROMQL_MATRIX:
        free(n->u.sel.name);
        for (i = 0; i < n->u.sel.nmatchers; i++)
            rg__promql_matcher_cleanup(&n->u.sel.matchers[i]);
        free(n->u.sel.matchers);
        break;
    case RG_PROMQL_SUBQUERY:
        rg_promql_node_free(n->u.sub.expr);
        break;
    case RG_PROMQL_CALL:
        for (i = 0; i < n->u.call.nargs; i++)
            rg_promql_node_free(n->u.call.args[i]);
        free(n->u.call.args);
        break;
    case RG_PROMQL_AGGREGATE:
        rg_promql_node_free(n->u.agg.expr);
        rg_promql_node_free(n->u.agg.param);
        free_strv(n->u.agg.grouping, n->u.agg.ngrouping);
        break;
    case RG_PROMQL_BINARY:
        rg_promql_node_free(n->u.bin.lhs);
        rg_promql_node_free(n->u.bin.rhs);
        matching_free(n->u.bin.matching);
        break;
    case RG_PROMQL_UNARY:
    case RG_PROMQL_PAREN:
        rg_promql_node_free(n->u.un.expr);
        break;
    }
    free(n);
}

/* Appends @s (taking ownership) to a growable string array. */
static int push_str(struct parser *p, char ***v, size_t *n, char *s)
{
    char **nv;

    if (!s)
        return -1;
    nv = realloc(*v, (*n + 1) * sizeof(*nv));
    if (!nv) {
        free(s);
        oom(p);
        return -1;
    }
    nv[(*n)++] = s;
    *v = nv;
    return 0;
}

static int push_node(struct parser *p, struct rg_promql_node ***v, size_t *n,
                     struct rg_promql_node *e)
{
    struct rg_promql_node **nv = realloc(*v, (*n + 1) * sizeof(*nv));

    if (!nv) {
        rg_promql_node_free(e);
        oom(p);
        return -1;
    }
    nv[(*n)++] = e;
    *v = nv;
    return 0;
}

static int tok_is_label(enum rg__promql_tok_type t)
{
    return t == RG__TOK_IDENT || t == RG__TOK_METRIC_IDENT || rg__promql_tok_is_keyword(t) ||
           rg__promql_tok_is_aggregator(t) || t == RG__TOK_LAND || t == RG__TOK_LOR ||
           t == RG__TOK_LUNLESS || t == RG__TOK_ATAN2;
}

static int tok_is_metric_name(enum rg__promql_tok_type t)
{
    return t == RG__TOK_IDENT || t == RG__TOK_METRIC_IDENT || rg__promql_tok_is_aggregator(t) ||
           t == RG__TOK_BY || t == RG__TOK_WITHOUT || t == RG__TOK_OFFSET ||
           t == RG__TOK_START || t == RG__TOK_END || t == RG__TOK_LAND ||
           t == RG__TOK_LOR || t == RG__TOK_LUNLESS;
}

/* Decodes the string token under the cursor; NULL on error. */
static char *string_tok(struct parser *p, size_t *len)
{
    const struct rg__promql_tok *t = tok(p);
    char *s = NULL;
    size_t n = 0;
    int err = rg__promql_unquote(p->in + t->pos, (size_t)t->len, &s, &n);

    if (err == RG_ENOMEM) {
        oom(p);
        return NULL;
    }
    if (err) {
        perr(p, t->pos, "error unquoting string %.*s", t->len, p->in + t->pos);
        return NULL;
    }
    /* The tree keeps strings NUL-terminated, so an embedded NUL cannot be kept. */
    if (memchr(s, '\0', n)) {
        free(s);
        perr(p, t->pos, "string literals must not contain NUL bytes");
        return NULL;
    }
    if (len)
        *len = n;
    return s;
}

/* "(" [label {"," label} [","]] ")"; labels may be quoted (Prometheus 3). */
static int parse_label_list(struct parser *p, char ***v, size_t *n)
{
    if (tok(p)->type != RG__TOK_LPAREN) {
        unexpected(p, "grouping opts", "\"(\"");
        return -1;
    }
    next(p);
    for (;;) {
        const struct rg__promql_tok *t = tok(p);
        char *s;

        if (t->type == RG__TOK_RPAREN) {
            next(p);
            return 0;
        }
        if (tok_is_label(t->type))
            s = dup_tok(p, t);
        else if (t->type == RG__TOK_STRING)
            s = string_tok(p, NULL);
        else {
            unexpected(p, "grouping opts", "label");
            return -1;
        }
        if (push_str(p, v, n, s))
            return -1;
        next(p);
        if (tok(p)->type == RG__TOK_COMMA) {
            next(p);
        } else if (tok(p)->type != RG__TOK_RPAREN) {
            unexpected(p, "grouping opts", "\",\" or \")\"");
            return -1;
        }
    }
}

/* ---- selectors ------------------------------------------------------------ */

static int add_matcher(struct parser *p, struct rg_promql_node *n, enum rg_match_op op,
                       char *name, char *value, int pos)
{
    struct rg_promql_matcher *m;
    char msg[160];
    int err;

    if (!name || !value) {
        free(name);
        free(value);
        return -1;
    }
    m = realloc(n->u.sel.matchers, (n->u.sel.nmatchers + 1) * sizeof(*m));
    if (!m) {
        free(name);
        free(value);
        oom(p);
        return -1;
    }
    n->u.sel.matchers = m;
    m = &m[n->u.sel.nmatchers++];
    memset(m, 0, sizeof(*m));
    m->op = op;
    m->name = name;
    m->value = value;
    err = rg__promql_matcher_compile(m, msg, sizeof(msg));
    if (err == RG_ENOMEM) {
        oom(p);
        return -1;
    }
    if (err) {
        perr(p, pos, "error parsing regexp: %s", msg);
        return -1;
    }
    return 0;
}

static int match_op(enum rg__promql_tok_type t, enum rg_match_op *op)
{
    switch (t) {
    case RG__TOK_EQL: *op = RG_MATCH_EQ; return 1;
    case RG__TOK_NEQ: *op = RG_MATCH_NE; return 1;
    case RG__TOK_EQL_REGEX: *op = RG_MATCH_RE; return 1;
    case RG__TOK_NEQ_REGEX: *op = RG_MATCH_NRE; return 1;
    default: return 0;
    }
}

/* [name] ["{" matchers "}"]; the cursor is on the name or on "{". */
static struct rg_promql_node *parse_selector(struct parser *p, int has_name)
{
    struct rg_promql_node *n = new_node(p, RG_PROMQL_SELECTOR, tok(p)->pos);

    if (!n)
        return NULL;
    if (has_name) {
        n->u.sel.name = dup_tok(p, tok(p));
        if (!n->u.sel.name)
            goto fail;
        next(p);
    }
    if (tok(p)->type == RG__TOK_LBRACE) {
        next(p);
        for (;;) {
            const struct rg__promql_tok *t = tok(p);
            enum rg_match_op op;
            char *lname, *value;
            int lpos = t->pos;

            if (t->type == RG__TOK_RBRACE) {
                next(p);
                break;
            }
            if (t->type == RG__TOK_IDENT) {
                lname = dup_tok(p, t);
            } else if (t->type == RG__TOK_STRING) {
                lname = string_tok(p, NULL);
            } else {
                unexpected(p, "label matching", "identifier or \"}\"");
                goto fail;
            }
            if (!lname)
                goto fail;
            next(p);
            if (!match_op(tok(p)->type, &op)) {
                if (t->type == RG__TOK_STRING) {
                    /* A lone quoted string is the metric name (Prometheus 3). */
                    char *mname = strdup("__name__");
                    if (!mname)
                        oom(p);
                    if (add_matcher(p, n, RG_MATCH_EQ, mname, lname, lpos))
                        goto fail;
                    goto separator;
                }
                free(lname);
                unexpected(p, "label matching", "label matching operator");
                goto fail;
            }
            next(p);
            if (tok(p)->type != RG__TOK_STRING) {
                free(lname);
                unexpected(p, "label matching", "string");
                goto fail;
            }
            value = string_tok(p, NULL);
            if (!value) {
                free(lname);
                goto fail;
            }
            next(p);
            if (add_matcher(p, n, op, lname, value, lpos))
                goto fail;
separator:
            if (tok(p)->type == RG__TOK_COMMA) {
                next(p);
            } else if (tok(p)->type != RG__TOK_RBRACE) {
                unexpected(p, "label matching", "\",\" or \"}\"");
                goto fail;
            }
        }
    }
    if (n->u.sel.name) {
        char *mname = strdup("__name__");
        char *mval = strdup(n->u.sel.name);
        if (!mname || !mval)
            oom(p);
        if (add_matcher(p, n, RG_MATCH_EQ, mname, mval, n->pos))
            goto fail;
    }
    return n;
fail:
    rg_promql_node_free(n);
    return NULL;
}

/* ---- durations and modifiers ----------------------------------------------- */

/* The value of the NUMBER token under the cursor, or of a DURATION token in
 * seconds (where Prometheus accepts either, as after "@"). */
static int tok_value(struct parser *p, double *secs)
{
    const struct rg__promql_tok *t = tok(p);

    if (t->type == RG__TOK_DURATION) {
        int64_t ms;
        if (rg_promql_parse_duration(p->in + t->pos, (size_t)t->len, &ms)) {
            perr(p, t->pos, "not a valid duration string: \"%.*s\"", t->len, p->in + t->pos);
            return -1;
        }
        *secs = (double)ms / 1000.0;
        return 0;
    }
    if (rg__promql_parse_number(p->in + t->pos, (size_t)t->len, secs)) {
        perr(p, t->pos, "error parsing number: strconv.ParseFloat: parsing \"%.*s\": "
             "invalid syntax", t->len, p->in + t->pos);
        return -1;
    }
    return 0;
}

/* A number (seconds) or a duration, with an optional leading minus when
 * @allow_neg; converted to milliseconds. @context and @expected feed the
 * "unexpected ..." message when neither is there. */
static int parse_duration_tok(struct parser *p, const char *context, const char *expected,
                              int allow_neg, int64_t *out)
{
    const struct rg__promql_tok *t;
    int neg = 0, pos = tok(p)->pos;
    double secs;

    if (allow_neg && tok(p)->type == RG__TOK_SUB) {
        neg = 1;
        next(p);
    }
    t = tok(p);
    if (t->type != RG__TOK_DURATION && t->type != RG__TOK_NUMBER) {
        unexpected(p, context, expected);
        return -1;
    }
    if (t->type == RG__TOK_DURATION) {
        int64_t ms;
        if (rg_promql_parse_duration(p->in + t->pos, (size_t)t->len, &ms)) {
            perr(p, t->pos, "not a valid duration string: \"%.*s\"", t->len, p->in + t->pos);
            return -1;
        }
        *out = neg ? -ms : ms;
        next(p);
        return 0;
    }
    if (tok_value(p, &secs))
        return -1;
    if (neg)
        secs = -secs;
    /* Prometheus converts seconds to milliseconds by truncation. */
    if (!(fabs(secs * 1000.0) < 9223372036854775807.0)) {
        perr(p, pos, "duration out of range");
        return -1;
    }
    *out = (int64_t)(secs * 1000.0);
    next(p);
    return 0;
}

static const char *const not_selector_offset =
    "offset modifier must be preceded by an instant vector selector or range vector "
    "selector or a subquery";
static const char *const not_selector_at =
    "@ modifier must be preceded by an instant vector selector or range vector "
    "selector or a subquery";

static int parse_offset(struct parser *p, struct rg_promql_node *n)
{
    int64_t ms;
    int64_t *slot;

    next(p);
    if (parse_duration_tok(p, "offset", "number or duration", 1, &ms))
        return -1;
    if (n->kind == RG_PROMQL_SELECTOR || n->kind == RG_PROMQL_MATRIX)
        slot = &n->u.sel.offset_ms;
    else if (n->kind == RG_PROMQL_SUBQUERY)
        slot = &n->u.sub.offset_ms;
    else {
        perr(p, n->pos, "%s", not_selector_offset);
        return -1;
    }
    if (*slot != 0) {
        perr(p, n->pos, "offset may not be set multiple times");
        return -1;
    }
    *slot = ms;
    return 0;
}

static int parse_at(struct parser *p, struct rg_promql_node *n)
{
    enum rg_promql_at at;
    enum rg_promql_at *at_slot;
    int64_t *ms_slot;
    int64_t ms = 0;

    next(p);
    if (tok(p)->type == RG__TOK_START || tok(p)->type == RG__TOK_END) {
        at = tok(p)->type == RG__TOK_START ? RG_PROMQL_AT_START : RG_PROMQL_AT_END;
        next(p);
        if (tok(p)->type != RG__TOK_LPAREN) {
            unexpected(p, "@", "\"(\"");
            return -1;
        }
        next(p);
        if (tok(p)->type != RG__TOK_RPAREN) {
            unexpected(p, "@", "\")\"");
            return -1;
        }
        next(p);
    } else {
        int neg = 0;
        double secs;
        if (tok(p)->type == RG__TOK_SUB || tok(p)->type == RG__TOK_ADD) {
            neg = tok(p)->type == RG__TOK_SUB;
            next(p);
        }
        if (tok(p)->type != RG__TOK_NUMBER && tok(p)->type != RG__TOK_DURATION) {
            unexpected(p, "@", "timestamp");
            return -1;
        }
        if (tok_value(p, &secs))
            return -1;
        next(p);
        if (neg)
            secs = -secs;
        if (isnan(secs) || isinf(secs) || secs >= 9223372036854775807.0 ||
            secs <= -9223372036854775808.0 || fabs(secs * 1000.0) >= 9223372036854775807.0) {
            /* Go prints infinities as "+Inf"/"-Inf" and NaN as "NaN" with %f. */
            if (isnan(secs))
                perr(p, n->pos, "timestamp out of bounds for @ modifier: NaN");
            else if (isinf(secs))
                perr(p, n->pos, "timestamp out of bounds for @ modifier: %sInf",
                     secs > 0 ? "+" : "-");
            else
                perr(p, n->pos, "timestamp out of bounds for @ modifier: %f", secs);
            return -1;
        }
        at = RG_PROMQL_AT_TIME;
        ms = (int64_t)round(secs * 1000.0);
    }
    if (n->kind == RG_PROMQL_SELECTOR || n->kind == RG_PROMQL_MATRIX) {
        at_slot = &n->u.sel.at;
        ms_slot = &n->u.sel.at_ms;
    } else if (n->kind == RG_PROMQL_SUBQUERY) {
        at_slot = &n->u.sub.at;
        ms_slot = &n->u.sub.at_ms;
    } else {
        perr(p, n->pos, "%s", not_selector_at);
        return -1;
    }
    if (*at_slot != RG_PROMQL_AT_NONE) {
        perr(p, n->pos, "@ <timestamp> may not be set multiple times");
        return -1;
    }
    *at_slot = at;
    *ms_slot = ms;
    return 0;
}

/* "[" range "]" or "[" range ":" [step] "]" after @n, which it consumes. */
static struct rg_promql_node *parse_brackets(struct parser *p, struct rg_promql_node *n)
{
    int lbpos = tok(p)->pos;
    int64_t range, step = 0;
    struct rg_promql_node *sq;

    next(p);
    if (parse_duration_tok(p, "subquery selector", "number or duration", 0, &range))
        goto fail;
    if (tok(p)->type == RG__TOK_COLON) {
        next(p);
        if (tok(p)->type == RG__TOK_NUMBER || tok(p)->type == RG__TOK_DURATION) {
            if (parse_duration_tok(p, "subquery selector", "number or duration", 0, &step))
                goto fail;
            if (tok(p)->type != RG__TOK_RBRACKET) {
                unexpected(p, "subquery selector", "\"]\"");
                goto fail;
            }
        } else if (tok(p)->type != RG__TOK_RBRACKET) {
            unexpected(p, "subquery selector", "number or duration or \"]\"");
            goto fail;
        }
        next(p);
        sq = new_node(p, RG_PROMQL_SUBQUERY, n->pos);
        if (!sq)
            goto fail;
        sq->u.sub.expr = n;
        sq->u.sub.range_ms = range;
        sq->u.sub.step_ms = step;
        return sq;
    }
    if (tok(p)->type != RG__TOK_RBRACKET) {
        unexpected(p, "subquery or range", "\":\" or \"]\"");
        goto fail;
    }
    next(p);
    if (n->kind != RG_PROMQL_SELECTOR) {
        perr(p, lbpos, "ranges only allowed for vector selectors");
        goto fail;
    }
    if (n->u.sel.offset_ms != 0) {
        perr(p, lbpos, "no offset modifiers allowed before range");
        goto fail;
    }
    if (n->u.sel.at != RG_PROMQL_AT_NONE) {
        perr(p, lbpos, "no @ modifiers allowed before range");
        goto fail;
    }
    n->kind = RG_PROMQL_MATRIX;
    n->u.sel.range_ms = range;
    return n;
fail:
    rg_promql_node_free(n);
    return NULL;
}

/* ---- expressions ------------------------------------------------------------ */

static struct rg_promql_node *parse_expr(struct parser *p, int min_prec);

/* "(" [expr {"," expr}] ")" into @args. */
static int parse_args(struct parser *p, struct rg_promql_node ***args, size_t *nargs)
{
    if (tok(p)->type != RG__TOK_LPAREN) {
        unexpected(p, "aggregation", "\"(\"");
        return -1;
    }
    next(p);
    if (tok(p)->type == RG__TOK_RPAREN) {
        next(p);
        return 0;
    }
    for (;;) {
        struct rg_promql_node *e = parse_expr(p, 0);
        if (!e || push_node(p, args, nargs, e))
            return -1;
        if (tok(p)->type == RG__TOK_COMMA) {
            int cpos = tok(p)->pos;
            next(p);
            if (tok(p)->type == RG__TOK_RPAREN) {
                perr(p, cpos, "trailing commas not allowed in function call args");
                return -1;
            }
            continue;
        }
        if (tok(p)->type == RG__TOK_RPAREN) {
            next(p);
            return 0;
        }
        unexpected(p, NULL, NULL);
        return -1;
    }
}

static struct rg_promql_node *parse_call(struct parser *p)
{
    const struct rg__promql_tok *name = tok(p);
    struct rg_promql_node *n = new_node(p, RG_PROMQL_CALL, name->pos);
    char fname[64];

    if (!n)
        return NULL;
    next(p);
    if (parse_args(p, &n->u.call.args, &n->u.call.nargs))
        goto fail;
    snprintf(fname, sizeof(fname), "%.*s", name->len, p->in + name->pos);
    n->u.call.func = (size_t)name->len < sizeof(fname) ? rg_promql_func_lookup(fname) : NULL;
    if (!n->u.call.func) {
        perr(p, name->pos, "unknown function with name \"%.*s\"", name->len,
             p->in + name->pos);
        goto fail;
    }
    return n;
fail:
    rg_promql_node_free(n);
    return NULL;
}

static const enum rg_promql_aggop agg_ops[] = {
    RG_PROMQL_SUM, RG_PROMQL_AVG, RG_PROMQL_MIN, RG_PROMQL_MAX, RG_PROMQL_COUNT,
    RG_PROMQL_GROUP, RG_PROMQL_STDDEV, RG_PROMQL_STDVAR, RG_PROMQL_TOPK,
    RG_PROMQL_BOTTOMK, RG_PROMQL_QUANTILE, RG_PROMQL_COUNT_VALUES, RG_PROMQL_LIMITK,
    RG_PROMQL_LIMIT_RATIO,
};

static int agg_has_param(enum rg_promql_aggop op)
{
    return op == RG_PROMQL_TOPK || op == RG_PROMQL_BOTTOMK || op == RG_PROMQL_QUANTILE ||
           op == RG_PROMQL_COUNT_VALUES || op == RG_PROMQL_LIMITK ||
           op == RG_PROMQL_LIMIT_RATIO;
}

static int parse_grouping(struct parser *p, struct rg_promql_node *n)
{
    n->u.agg.without = tok(p)->type == RG__TOK_WITHOUT;
    n->u.agg.has_grouping = 1;
    next(p);
    return parse_label_list(p, &n->u.agg.grouping, &n->u.agg.ngrouping);
}

static struct rg_promql_node *parse_aggregate(struct parser *p)
{
    const struct rg__promql_tok *op = tok(p);
    struct rg_promql_node *n = new_node(p, RG_PROMQL_AGGREGATE, op->pos);
    struct rg_promql_node **args = NULL;
    size_t nargs = 0, i, want;

    if (!n)
        return NULL;
    n->u.agg.op = agg_ops[op->type - RG__TOK_SUM];
    next(p);
    if (tok(p)->type == RG__TOK_BY || tok(p)->type == RG__TOK_WITHOUT) {
        if (parse_grouping(p, n))
            goto fail;
    }
    if (parse_args(p, &args, &nargs))
        goto fail;
    if (!n->u.agg.has_grouping &&
        (tok(p)->type == RG__TOK_BY || tok(p)->type == RG__TOK_WITHOUT)) {
        if (parse_grouping(p, n))
            goto fail;
    }
    if (nargs == 0) {
        perr(p, n->pos, "no arguments for aggregate expression provided");
        goto fail;
    }
    want = agg_has_param(n->u.agg.op) ? 2 : 1;
    if (nargs != want) {
        perr(p, n->pos,
             "wrong number of arguments for aggregate expression provided, expected %zu, "
             "got %zu", want, nargs);
        goto fail;
    }
    if (want == 2)
        n->u.agg.param = args[0];
    n->u.agg.expr = args[want - 1];
    free(args);
    return n;
fail:
    for (i = 0; i < nargs; i++)
        rg_promql_node_free(args[i]);
    free(args);
    rg_promql_node_free(n);
    return NULL;
}

static struct rg_promql_node *parse_primary(struct parser *p)
{
    const struct rg__promql_tok *t = tok(p);
    struct rg_promql_node *n;

    switch (t->type) {
    case RG__TOK_NUMBER: {
        double v;
        if (tok_value(p, &v))
            return NULL;
        n = new_node(p, RG_PROMQL_NUMBER, t->pos);
        if (n)
            n->u.number = v;
        next(p);
        return n;
    }
    case RG__TOK_STRING:
        n = new_node(p, RG_PROMQL_STRING, t->pos);
        if (!n)
            return NULL;
        n->u.string = string_tok(p, NULL);
        if (!n->u.string) {
            free(n);
            return NULL;
        }
        next(p);
        return n;
    case RG__TOK_LPAREN: {
        struct rg_promql_node *inner;
        n = new_node(p, RG_PROMQL_PAREN, t->pos);
        if (!n)
            return NULL;
        next(p);
        inner = parse_expr(p, 0);
        if (!inner) {
            free(n);
            return NULL;
        }
        n->u.un.expr = inner;
        if (tok(p)->type != RG__TOK_RPAREN) {
            unexpected(p, NULL, NULL);
            rg_promql_node_free(n);
            return NULL;
        }
        next(p);
        return n;
    }
    case RG__TOK_LBRACE:
        return parse_selector(p, 0);
    default:
        break;
    }
    if (rg__promql_tok_is_aggregator(t->type)) {
        enum rg__promql_tok_type nt = peek_tok(p)->type;
        if (nt == RG__TOK_LPAREN || nt == RG__TOK_BY || nt == RG__TOK_WITHOUT)
            return parse_aggregate(p);
    }
    if (t->type == RG__TOK_IDENT && peek_tok(p)->type == RG__TOK_LPAREN)
        return parse_call(p);
    if (tok_is_metric_name(t->type))
        return parse_selector(p, 1);
    unexpected(p, NULL, NULL);
    return NULL;
}

static struct rg_promql_node *parse_postfix(struct parser *p)
{
    struct rg_promql_node *n = parse_primary(p);

    while (n) {
        switch (tok(p)->type) {
        case RG__TOK_LBRACKET:
            n = parse_brackets(p, n);
            break;
        case RG__TOK_OFFSET:
            if (parse_offset(p, n))
                goto fail;
            break;
        case RG__TOK_AT:
            if (parse_at(p, n))
                goto fail;
            break;
        default:
            return n;
        }
    }
    return NULL;
fail:
    rg_promql_node_free(n);
    return NULL;
}

static struct rg_promql_node *parse_unary(struct parser *p)
{
    const struct rg__promql_tok *t = tok(p);
    struct rg_promql_node *e, *n;

    if (t->type != RG__TOK_ADD && t->type != RG__TOK_SUB)
        return parse_postfix(p);
    next(p);
    /* The operand takes everything that binds tighter than "*", i.e. "^". */
    e = parse_expr(p, PREC_POW);
    if (!e)
        return NULL;
    if (e->kind == RG_PROMQL_NUMBER) {
        if (t->type == RG__TOK_SUB)
            e->u.number = -e->u.number;
        e->pos = t->pos;
        return e;
    }
    /* A unary plus stays a node until the type check (which still has to reject
     * +"string") and is dropped there; it is recognised by its source text. */
    n = new_node(p, RG_PROMQL_UNARY, t->pos);
    if (!n) {
        rg_promql_node_free(e);
        return NULL;
    }
    n->u.un.expr = e;
    return n;
}

static int binop(enum rg__promql_tok_type t, enum rg_promql_binop *op)
{
    static const struct {
        enum rg__promql_tok_type tok;
        enum rg_promql_binop op;
        int prec;
    } ops[] = {
        { RG__TOK_LOR, RG_PROMQL_OR, PREC_OR },
        { RG__TOK_LAND, RG_PROMQL_AND, PREC_AND },
        { RG__TOK_LUNLESS, RG_PROMQL_UNLESS, PREC_AND },
        { RG__TOK_EQLC, RG_PROMQL_EQL, PREC_CMP },
        { RG__TOK_NEQ, RG_PROMQL_NEQ, PREC_CMP },
        { RG__TOK_LTE, RG_PROMQL_LTE, PREC_CMP },
        { RG__TOK_LSS, RG_PROMQL_LSS, PREC_CMP },
        { RG__TOK_GTE, RG_PROMQL_GTE, PREC_CMP },
        { RG__TOK_GTR, RG_PROMQL_GTR, PREC_CMP },
        { RG__TOK_ADD, RG_PROMQL_ADD, PREC_ADD },
        { RG__TOK_SUB, RG_PROMQL_SUB, PREC_ADD },
        { RG__TOK_MUL, RG_PROMQL_MUL, PREC_MUL },
        { RG__TOK_DIV, RG_PROMQL_DIV, PREC_MUL },
        { RG__TOK_MOD, RG_PROMQL_MOD, PREC_MUL },
        { RG__TOK_ATAN2, RG_PROMQL_ATAN2, PREC_MUL },
        { RG__TOK_POW, RG_PROMQL_POW, PREC_POW },
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (ops[i].tok == t) {
            *op = ops[i].op;
            return ops[i].prec;
        }
    }
    return 0;
}

/* bool? (on|ignoring "(" labels ")" (group_left|group_right ["(" labels ")"])?)? */
static int parse_bin_modifiers(struct parser *p, struct rg_promql_node *n)
{
    struct rg_promql_matching *m = calloc(1, sizeof(*m));

    if (!m) {
        oom(p);
        return -1;
    }
    n->u.bin.matching = m;
    m->card = RG_PROMQL_ONE_TO_ONE;
    if (tok(p)->type == RG__TOK_BOOL) {
        n->u.bin.return_bool = 1;
        next(p);
    }
    if (tok(p)->type != RG__TOK_ON && tok(p)->type != RG__TOK_IGNORING)
        return 0;
    m->on = tok(p)->type == RG__TOK_ON;
    next(p);
    if (parse_label_list(p, &m->labels, &m->nlabels))
        return -1;
    if (tok(p)->type != RG__TOK_GROUP_LEFT && tok(p)->type != RG__TOK_GROUP_RIGHT)
        return 0;
    m->card = tok(p)->type == RG__TOK_GROUP_LEFT ? RG_PROMQL_MANY_TO_ONE
                                                 : RG_PROMQL_ONE_TO_MANY;
    next(p);
    if (tok(p)->type == RG__TOK_LPAREN)
        return parse_label_list(p, &m->include, &m->ninclude);
    return 0;
}

static int remember_op(struct parser *p, const struct rg_promql_node *n, int pos)
{
    if (p->nops == p->capops) {
        size_t cap = p->capops ? p->capops * 2 : 16;
        struct op_pos *v = realloc(p->ops, cap * sizeof(*v));
        if (!v) {
            oom(p);
            return -1;
        }
        p->ops = v;
        p->capops = cap;
    }
    p->ops[p->nops].node = n;
    p->ops[p->nops].pos = pos;
    p->nops++;
    return 0;
}

static struct rg_promql_node *parse_expr(struct parser *p, int min_prec)
{
    int saved = p->depth;
    struct rg_promql_node *lhs;

    if (++p->depth > MAX_DEPTH) {
        perr(p, tok(p)->pos, "expression nesting exceeds %d levels", MAX_DEPTH);
        p->depth = saved;
        return NULL;
    }
    lhs = parse_unary(p);
    while (lhs) {
        enum rg_promql_binop op;
        int oppos = tok(p)->pos;
        int prec = binop(tok(p)->type, &op);
        struct rg_promql_node *n;

        if (prec == 0 || prec < min_prec) {
            p->depth = saved;
            return lhs;
        }
        /* Each operator of a left-associative chain adds a level to the tree. */
        if (++p->depth > MAX_DEPTH) {
            perr(p, oppos, "expression nesting exceeds %d levels", MAX_DEPTH);
            break;
        }
        next(p);
        n = new_node(p, RG_PROMQL_BINARY, lhs->pos);
        if (!n)
            break;
        n->u.bin.op = op;
        n->u.bin.lhs = lhs;
        lhs = n;
        if (remember_op(p, n, oppos) || parse_bin_modifiers(p, n))
            break;
        /* "^" is right-associative; every other operator is left-associative. */
        n->u.bin.rhs = parse_expr(p, op == RG_PROMQL_POW ? prec : prec + 1);
        if (!n->u.bin.rhs)
            break;
    }
    p->depth = saved;
    rg_promql_node_free(lhs);
    return NULL;
}

/* ---- type check ------------------------------------------------------------- */

static const char *documented_type(enum rg_promql_vtype t)
{
    switch (t) {
    case RG_PROMQL_VT_SCALAR: return "scalar";
    case RG_PROMQL_VT_VECTOR: return "instant vector";
    case RG_PROMQL_VT_MATRIX: return "range vector";
    case RG_PROMQL_VT_STRING: return "string";
    default: return "none";
    }
}

static const char *value_type(enum rg_promql_vtype t)
{
    switch (t) {
    case RG_PROMQL_VT_SCALAR: return "scalar";
    case RG_PROMQL_VT_VECTOR: return "vector";
    case RG_PROMQL_VT_MATRIX: return "matrix";
    case RG_PROMQL_VT_STRING: return "string";
    default: return "none";
    }
}

static const char *binop_name(enum rg_promql_binop op)
{
    static const char *const names[] = {
        "+", "-", "*", "/", "%", "^", "atan2", "==", "!=", ">", "<", ">=", "<=",
        "and", "or", "unless",
    };
    return names[op];
}

static int is_comparison(enum rg_promql_binop op)
{
    return op >= RG_PROMQL_EQL && op <= RG_PROMQL_LTE;
}

static int is_set_op(enum rg_promql_binop op)
{
    return op == RG_PROMQL_AND || op == RG_PROMQL_OR || op == RG_PROMQL_UNLESS;
}

static int cmp_op_pos(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct op_pos *)a)->node;
    uintptr_t y = (uintptr_t)((const struct op_pos *)b)->node;

    return x < y ? -1 : x > y;
}

/* The operator position of binary node @n; the table is sorted by node address
 * before the type check, so this is a bisection. */
static int op_pos_of(const struct parser *p, const struct rg_promql_node *n)
{
    struct op_pos key = { n, 0 };
    const struct op_pos *hit;

    if (!p->nops)
        return n->pos;
    hit = bsearch(&key, p->ops, p->nops, sizeof(*p->ops), cmp_op_pos);
    return hit ? hit->pos : n->pos;
}

static enum rg_promql_vtype check(struct parser *p, struct rg_promql_node **slot);

static int expect_type(struct parser *p, struct rg_promql_node **slot,
                       enum rg_promql_vtype want, const char *context)
{
    enum rg_promql_vtype t = check(p, slot);

    if (p->rc)
        return -1;
    if (t != want) {
        perr(p, (*slot)->pos, "expected type %s in %s, got %s", documented_type(want), context,
             documented_type(t));
        return -1;
    }
    return 0;
}

static int check_selector(struct parser *p, struct rg_promql_node *n)
{
    size_t i;

    if (n->u.sel.name) {
        /* The last matcher is the one made from the name outside the braces. */
        for (i = 0; i + 1 < n->u.sel.nmatchers; i++) {
            if (strcmp(n->u.sel.matchers[i].name, "__name__") == 0) {
                perr(p, n->pos, "metric name must not be set twice: \"%s\" or \"%s\"",
                     n->u.sel.name, n->u.sel.matchers[i].value);
                return -1;
            }
        }
        return 0;
    }
    for (i = 0; i < n->u.sel.nmatchers; i++)
        if (!rg__promql_matcher_matches_empty(&n->u.sel.matchers[i]))
            return 0;
    perr(p, n->pos, "vector selector must contain at least one non-empty matcher");
    return -1;
}

static enum rg_promql_vtype check_call(struct parser *p, struct rg_promql_node *n)
{
    const struct rg_promql_func *f = n->u.call.func;
    size_t na = n->u.call.nargs, i;
    int variadic = f->min_args != f->nargs || f->max_args != f->nargs;
    char name[64];

    snprintf(name, sizeof(name), "%s", f->name);
    if (!variadic && na != (size_t)f->nargs) {
        perr(p, n->pos, "expected %d argument(s) in call to \"%s\", got %zu", f->nargs, name,
             na);
        return RG_PROMQL_VT_NONE;
    }
    if (variadic && na < (size_t)f->min_args) {
        perr(p, n->pos, "expected at least %d argument(s) in call to \"%s\", got %zu",
             f->min_args, name, na);
        return RG_PROMQL_VT_NONE;
    }
    if (variadic && f->max_args >= 0 && na > (size_t)f->max_args) {
        perr(p, n->pos, "expected at most %d argument(s) in call to \"%s\", got %zu",
             f->max_args, name, na);
        return RG_PROMQL_VT_NONE;
    }
    for (i = 0; i < na; i++) {
        size_t k = i < (size_t)f->nargs ? i : (size_t)f->nargs - 1;
        enum rg_promql_vtype t = check(p, &n->u.call.args[i]);
        if (p->rc)
            return RG_PROMQL_VT_NONE;
        if (t != f->arg_types[k]) {
            perr(p, n->u.call.args[i]->pos, "expected type %s in call to function \"%s\", got %s",
                 documented_type(f->arg_types[k]), name, documented_type(t));
            return RG_PROMQL_VT_NONE;
        }
    }
    return f->ret;
}

static enum rg_promql_vtype check_binary(struct parser *p, struct rg_promql_node *n)
{
    enum rg_promql_vtype lt = check(p, &n->u.bin.lhs), rt;
    enum rg_promql_binop op = n->u.bin.op;
    struct rg_promql_matching *m = n->u.bin.matching;
    int oppos = op_pos_of(p, n);
    size_t i, j;

    if (p->rc)
        return RG_PROMQL_VT_NONE;
    rt = check(p, &n->u.bin.rhs);
    if (p->rc)
        return RG_PROMQL_VT_NONE;
    if (n->u.bin.return_bool && !is_comparison(op)) {
        perr(p, oppos, "bool modifier can only be used on comparison operators");
        return RG_PROMQL_VT_NONE;
    }
    if (is_comparison(op) && !n->u.bin.return_bool && lt == RG_PROMQL_VT_SCALAR &&
        rt == RG_PROMQL_VT_SCALAR) {
        perr(p, oppos, "comparisons between scalars must use BOOL modifier");
        return RG_PROMQL_VT_NONE;
    }
    if (m && is_set_op(op) && m->card == RG_PROMQL_ONE_TO_ONE)
        m->card = RG_PROMQL_MANY_TO_MANY;
    if (m && m->on) {
        for (i = 0; i < m->nlabels; i++)
            for (j = 0; j < m->ninclude; j++)
                if (strcmp(m->labels[i], m->include[j]) == 0) {
                    perr(p, oppos, "label \"%s\" must not occur in ON and GROUP clause at once",
                         m->labels[i]);
                    return RG_PROMQL_VT_NONE;
                }
    }
    if (lt != RG_PROMQL_VT_SCALAR && lt != RG_PROMQL_VT_VECTOR) {
        perr(p, n->u.bin.lhs->pos,
             "binary expression must contain only scalar and instant vector types");
        return RG_PROMQL_VT_NONE;
    }
    if (rt != RG_PROMQL_VT_SCALAR && rt != RG_PROMQL_VT_VECTOR) {
        perr(p, n->u.bin.rhs->pos,
             "binary expression must contain only scalar and instant vector types");
        return RG_PROMQL_VT_NONE;
    }
    if (lt != RG_PROMQL_VT_VECTOR || rt != RG_PROMQL_VT_VECTOR) {
        if (m && m->nlabels > 0) {
            perr(p, n->pos, "vector matching only allowed between instant vectors");
            return RG_PROMQL_VT_NONE;
        }
        matching_free(m);
        n->u.bin.matching = NULL;
    } else if (is_set_op(op) && m &&
               (m->card == RG_PROMQL_ONE_TO_MANY || m->card == RG_PROMQL_MANY_TO_ONE)) {
        perr(p, n->pos, "no grouping allowed for \"%s\" operation", binop_name(op));
        return RG_PROMQL_VT_NONE;
    }
    if ((lt == RG_PROMQL_VT_SCALAR || rt == RG_PROMQL_VT_SCALAR) && is_set_op(op)) {
        perr(p, n->pos, "set operator \"%s\" not allowed in binary scalar expression",
             binop_name(op));
        return RG_PROMQL_VT_NONE;
    }
    return lt == RG_PROMQL_VT_SCALAR && rt == RG_PROMQL_VT_SCALAR ? RG_PROMQL_VT_SCALAR
                                                                  : RG_PROMQL_VT_VECTOR;
}

/* Checks the subtree in *@slot and returns its type; on error sets p->rc. May
 * replace *@slot (a unary plus is dropped here). */
static enum rg_promql_vtype check(struct parser *p, struct rg_promql_node **slot)
{
    struct rg_promql_node *n = *slot;
    enum rg_promql_vtype t;

    switch (n->kind) {
    case RG_PROMQL_NUMBER:
        return RG_PROMQL_VT_SCALAR;
    case RG_PROMQL_STRING:
        return RG_PROMQL_VT_STRING;
    case RG_PROMQL_SELECTOR:
        return check_selector(p, n) ? RG_PROMQL_VT_NONE : RG_PROMQL_VT_VECTOR;
    case RG_PROMQL_MATRIX:
        return check_selector(p, n) ? RG_PROMQL_VT_NONE : RG_PROMQL_VT_MATRIX;
    case RG_PROMQL_SUBQUERY:
        t = check(p, &n->u.sub.expr);
        if (p->rc)
            return RG_PROMQL_VT_NONE;
        if (t != RG_PROMQL_VT_VECTOR) {
            perr(p, n->pos, "subquery is only allowed on instant vector, got %s instead",
                 value_type(t));
            return RG_PROMQL_VT_NONE;
        }
        return RG_PROMQL_VT_MATRIX;
    case RG_PROMQL_PAREN:
        return check(p, &n->u.un.expr);
    case RG_PROMQL_UNARY:
        t = check(p, &n->u.un.expr);
        if (p->rc)
            return RG_PROMQL_VT_NONE;
        if (t != RG_PROMQL_VT_SCALAR && t != RG_PROMQL_VT_VECTOR) {
            perr(p, n->pos,
                 "unary expression only allowed on expressions of type scalar or instant "
                 "vector, got \"%s\"", documented_type(t));
            return RG_PROMQL_VT_NONE;
        }
        if (p->in[n->pos] == '+') {
            *slot = n->u.un.expr;
            n->u.un.expr = NULL;
            rg_promql_node_free(n);
        }
        return t;
    case RG_PROMQL_CALL:
        return check_call(p, n);
    case RG_PROMQL_AGGREGATE:
        if (expect_type(p, &n->u.agg.expr, RG_PROMQL_VT_VECTOR, "aggregation expression"))
            return RG_PROMQL_VT_NONE;
        if (n->u.agg.param &&
            expect_type(p, &n->u.agg.param,
                        n->u.agg.op == RG_PROMQL_COUNT_VALUES ? RG_PROMQL_VT_STRING
                                                              : RG_PROMQL_VT_SCALAR,
                        "aggregation parameter"))
            return RG_PROMQL_VT_NONE;
        return RG_PROMQL_VT_VECTOR;
    case RG_PROMQL_BINARY:
        return check_binary(p, n);
    }
    return RG_PROMQL_VT_NONE;
}

/* ---- entry points ------------------------------------------------------------ */

int rg_promql_parse(const char *input, struct rg_promql_node **out, char *err, size_t errlen)
{
    struct parser p;
    struct rg_promql_node *root = NULL;
    int rc;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!input)
        input = "";
    memset(&p, 0, sizeof(p));
    p.in = input;
    p.err = err;
    p.errlen = errlen;
    if (strlen(input) > INT32_MAX / 2) {
        perr(&p, 0, "query too long");
        return RG_EPARSE;
    }
    rc = rg__promql_lex(input, strlen(input), &p.toks);
    if (rc)
        return rc;
    if (tok(&p)->type == RG__TOK_EOF) {
        perr(&p, 0, "no expression found in input");
        goto out;
    }
    root = parse_expr(&p, 0);
    if (root && tok(&p)->type != RG__TOK_EOF)
        unexpected(&p, NULL, NULL);
    if (!p.rc) {
        if (p.nops)
            qsort(p.ops, p.nops, sizeof(*p.ops), cmp_op_pos);
        check(&p, &root);
    }
out:
    rg__promql_toks_cleanup(&p.toks);
    free(p.ops);
    if (p.rc) {
        rg_promql_node_free(root);
        if (p.rc == RG_ENOMEM && err && errlen)
            snprintf(err, errlen, "out of memory");
        return p.rc;
    }
    *out = root;
    return 0;
}

enum rg_promql_vtype rg_promql_node_type(const struct rg_promql_node *n)
{
    enum rg_promql_vtype l, r;

    if (!n)
        return RG_PROMQL_VT_NONE;
    switch (n->kind) {
    case RG_PROMQL_NUMBER:
        return RG_PROMQL_VT_SCALAR;
    case RG_PROMQL_STRING:
        return RG_PROMQL_VT_STRING;
    case RG_PROMQL_SELECTOR:
        return RG_PROMQL_VT_VECTOR;
    case RG_PROMQL_MATRIX:
    case RG_PROMQL_SUBQUERY:
        return RG_PROMQL_VT_MATRIX;
    case RG_PROMQL_CALL:
        return n->u.call.func ? n->u.call.func->ret : RG_PROMQL_VT_NONE;
    case RG_PROMQL_AGGREGATE:
        return RG_PROMQL_VT_VECTOR;
    case RG_PROMQL_BINARY:
        l = rg_promql_node_type(n->u.bin.lhs);
        r = rg_promql_node_type(n->u.bin.rhs);
        return l == RG_PROMQL_VT_SCALAR && r == RG_PROMQL_VT_SCALAR ? RG_PROMQL_VT_SCALAR
                                                                    : RG_PROMQL_VT_VECTOR;
    case RG_PROMQL_UNARY:
    case RG_PROMQL_PAREN:
        return rg_promql_node_type(n->u.un.expr);
    }
    return RG_PROMQL_VT_NONE;
}
