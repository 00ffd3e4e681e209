/* rules/template.c - compiler and interpreter for Prometheus alert templates.
 *
 * The text is split into tokens the way Go's text/template lexer does (text,
 * delimiters with trim markers, identifiers, fields, variables, literals), a
 * recursive-descent parser builds a tree of text, action, if, with and range nodes
 * whose pipelines are lists of commands, and a tree-walking interpreter executes it
 * against struct rg_template_data. Values are a small tagged union (nil, bool, int,
 * float, string, label map, query results, the data root) so that Go's typing rules
 * that users meet in practice hold: a missing label is "", nil prints "<no value>",
 * comparing an int literal with a float value is an error, literals with '.', 'e' or
 * 'p' are floats. Every node and every string made while executing lives in a bump list
 * released at once. The humanize functions follow Prometheus' template/template.go.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "rules/template.h"
#include "promql/kernels.h"
#include "util/err.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Prometheus prepends these definitions to every alert template; error columns on
 * the first line count them, so ours do too. */
#define DEFS_LEN ((int)sizeof("{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}" \
                              "{{$externalURL := .ExternalURL}}{{$value := .Value}}") - 1)

#define MAX_DEPTH 100          /* nesting bound for parsing and execution */
#define MAX_OUTPUT (1u << 20)  /* bytes one expansion may produce */

/* ---- Bump list ---------------------------------------------------------- */

struct blk {
    struct blk *next;
    max_align_t align[];
};

struct pool {
    struct blk *head;
};

static void *pool_alloc(struct pool *p, size_t n)
{
    struct blk *b = calloc(1, sizeof(*b) + n + 1);
    if (!b)
        return NULL;
    b->next = p->head;
    p->head = b;
    return b->align;
}

static char *pool_strndup(struct pool *p, const char *s, size_t n)
{
    char *d = pool_alloc(p, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void pool_free(struct pool *p)
{
    while (p->head) {
        struct blk *b = p->head;
        p->head = b->next;
        free(b);
    }
}

/* ---- Tokens ------------------------------------------------------------- */

enum tok {
    T_EOF, T_TEXT, T_LEFT, T_RIGHT, T_IDENT, T_FIELD, T_DOT, T_VAR, T_STRING, T_RAW,
    T_CHAR, T_NUMBER, T_PIPE, T_LPAREN, T_RPAREN, T_DECLARE, T_ASSIGN, T_COMMA, T_OTHER,
    T_ERROR,   /* a lexical error; lexer.err holds its message */
};

struct token {
    enum tok t;
    const char *p;      /* into the template text */
    size_t len;
    int line;           /* 1-based */
    int col;            /* 0-based byte offset in the line, as Go reports it */
    int space;          /* whitespace precedes the token */
};

struct lexer {
    const char *src;
    size_t len;
    size_t pos;
    struct token *toks;
    size_t ntoks, cap;
    char err[256];
    int err_line;
};

static void pos_of(const char *src, size_t off, int *line, int *col)
{
    int l = 1;
    size_t ls = 0;
    for (size_t i = 0; i < off; i++)
        if (src[i] == '\n') {
            l++;
            ls = i + 1;
        }
    *line = l;
    *col = (int)(off - ls) + (l == 1 ? DEFS_LEN : 0);
}

static int emit(struct lexer *lx, enum tok t, size_t start, size_t end, int space)
{
    struct token *tk;
    if (lx->ntoks == lx->cap) {
        size_t nc = lx->cap ? lx->cap * 2 : 32;
        struct token *n = realloc(lx->toks, nc * sizeof(*n));
        if (!n)
            return RG_ENOMEM;
        lx->toks = n;
        lx->cap = nc;
    }
    tk = &lx->toks[lx->ntoks++];
    tk->t = t;
    tk->p = lx->src + start;
    tk->len = end - start;
    tk->space = space;
    pos_of(lx->src, start, &tk->line, &tk->col);
    return 0;
}

static int lex_fail(struct lexer *lx, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int lex_fail(struct lexer *lx, size_t at, const char *fmt, ...)
{
    va_list ap;
    int col;
    va_start(ap, fmt);
    vsnprintf(lx->err, sizeof(lx->err), fmt, ap);
    va_end(ap);
    pos_of(lx->src, at, &lx->err_line, &col);
    return RG_EPARSE;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_alnum(unsigned char c)
{
    return c == '_' || isalnum(c) || c >= 0x80;
}

/* "{{- " opens with a left trim marker; the space after '-' is required. */
static int left_trim_at(const char *s, size_t rest)
{
    return rest >= 3 && s[2] == '-' && is_space(s[3 < rest ? 3 : 2]) && rest > 3;
}

/* Lexes one action's inside, starting after "{{" (and a trim marker). Stops after
 * "}}"; *@trim_after is set when it was " -}}". */
static int lex_action(struct lexer *lx, int *trim_after)
{
    int space = 0;
    int depth = 0;
    int rc;

    for (;;) {
        const char *s = lx->src + lx->pos;
        size_t rest = lx->len - lx->pos;
        size_t start = lx->pos;

        if (rest == 0)
            return lex_fail(lx, start, "unclosed action");
        if (is_space(*s)) {
            while (lx->pos < lx->len && is_space(lx->src[lx->pos]))
                lx->pos++;
            if (lx->len - lx->pos >= 3 && memcmp(lx->src + lx->pos, "-}}", 3) == 0) {
                if (depth)
                    return lex_fail(lx, lx->pos, "unclosed left paren");
                lx->pos += 3;
                *trim_after = 1;
                return emit(lx, T_RIGHT, lx->pos - 3, lx->pos, 1);
            }
            space = 1;
            continue;
        }
        if (rest >= 2 && s[0] == '}' && s[1] == '}') {
            if (depth)
                return lex_fail(lx, start, "unclosed left paren");
            lx->pos += 2;
            *trim_after = 0;
            return emit(lx, T_RIGHT, start, lx->pos, space);
        }
        if (*s == '|') {
            lx->pos++;
            rc = emit(lx, T_PIPE, start, lx->pos, space);
        } else if (*s == '(') {
            lx->pos++;
            depth++;
            rc = emit(lx, T_LPAREN, start, lx->pos, space);
        } else if (*s == ')') {
            if (depth == 0)
                return lex_fail(lx, start, "unexpected right paren");
            depth--;
            lx->pos++;
            rc = emit(lx, T_RPAREN, start, lx->pos, space);
        } else if (*s == ',') {
            lx->pos++;
            rc = emit(lx, T_COMMA, start, lx->pos, space);
        } else if (rest >= 2 && s[0] == ':' && s[1] == '=') {
            lx->pos += 2;
            rc = emit(lx, T_DECLARE, start, lx->pos, space);
        } else if (*s == '=') {
            lx->pos++;
            rc = emit(lx, T_ASSIGN, start, lx->pos, space);
        } else if (*s == '"' || *s == '\'') {
            char q = *s;
            lx->pos++;
            while (lx->pos < lx->len && lx->src[lx->pos] != q) {
                if (lx->src[lx->pos] == '\n')
                    break;
                if (lx->src[lx->pos] == '\\' && lx->pos + 1 < lx->len)
                    lx->pos++;
                lx->pos++;
            }
            if (lx->pos >= lx->len || lx->src[lx->pos] != q)
                return lex_fail(lx, start, q == '"' ? "unterminated quoted string"
                                                    : "unterminated character constant");
            lx->pos++;
            rc = emit(lx, q == '"' ? T_STRING : T_CHAR, start, lx->pos, space);
        } else if (*s == '`') {
            const char *e = memchr(s + 1, '`', rest - 1);
            if (!e)
                return lex_fail(lx, start, "unterminated raw quoted string");
            lx->pos = (size_t)(e - lx->src) + 1;
            rc = emit(lx, T_RAW, start, lx->pos, space);
        } else if (*s == '$') {
            lx->pos++;
            while (lx->pos < lx->len && is_alnum((unsigned char)lx->src[lx->pos]))
                lx->pos++;
            rc = emit(lx, T_VAR, start, lx->pos, space);
        } else if (*s == '.') {
            if (rest >= 2 && isdigit((unsigned char)s[1]))
                goto number;
            lx->pos++;
            while (lx->pos < lx->len && is_alnum((unsigned char)lx->src[lx->pos]))
                lx->pos++;
            rc = emit(lx, lx->pos - start == 1 ? T_DOT : T_FIELD, start, lx->pos, space);
        } else if (*s == '+' || *s == '-' || isdigit((unsigned char)*s)) {
        number:
            lx->pos++;
            while (lx->pos < lx->len) {
                char c = lx->src[lx->pos];
                if (is_alnum((unsigned char)c) || c == '.' ||
                    ((c == '+' || c == '-') && strchr("eEpP", lx->src[lx->pos - 1])))
                    lx->pos++;
                else
                    break;
            }
            rc = emit(lx, T_NUMBER, start, lx->pos, space);
        } else if (is_alnum((unsigned char)*s)) {
            while (lx->pos < lx->len && is_alnum((unsigned char)lx->src[lx->pos]))
                lx->pos++;
            rc = emit(lx, T_IDENT, start, lx->pos, space);
        } else if ((unsigned char)*s > 0x20 && (unsigned char)*s < 0x7f) {
            /* Other printable ASCII is a token of its own, as in Go; the parser
             * rejects it where it appears. */
            lx->pos++;
            rc = emit(lx, T_OTHER, start, lx->pos, space);
        } else {
            return lex_fail(lx, start, "unrecognized character in action: U+%04X",
                            (unsigned char)*s);
        }
        if (rc)
            return rc;
        space = 0;
    }
}

static int lex(struct lexer *lx)
{
    int trim_next = 0;
    int rc;

    while (lx->pos < lx->len) {
        const char *s = lx->src + lx->pos;
        const char *open = NULL;
        size_t start = lx->pos, end, after;
        int trim_before;

        for (size_t i = lx->pos; i + 1 < lx->len; i++)
            if (lx->src[i] == '{' && lx->src[i + 1] == '{') {
                open = lx->src + i;
                break;
            }
        end = open ? (size_t)(open - lx->src) : lx->len;
        trim_before = open && left_trim_at(open, lx->len - end);
        if (trim_next)
            while (start < end && is_space(lx->src[start]))
                start++;
        trim_next = 0;
        {
            size_t e = end;
            if (trim_before)
                while (e > start && is_space(lx->src[e - 1]))
                    e--;
            if (e > start && (rc = emit(lx, T_TEXT, start, e, 0)))
                return rc;
        }
        (void)s;
        if (!open)
            break;
        after = end + 2 + (trim_before ? 2 : 0);
        /* A comment must follow the delimiter directly, with no space before the slash. */
        if (lx->len - after >= 2 && lx->src[after] == '/' && lx->src[after + 1] == '*') {
            const char *c = NULL;
            for (size_t i = after + 2; i + 1 < lx->len; i++)
                if (lx->src[i] == '*' && lx->src[i + 1] == '/') {
                    c = lx->src + i;
                    break;
                }
            if (!c) {
                rc = lex_fail(lx, after, "unclosed comment");
                goto fail;
            }
            lx->pos = (size_t)(c - lx->src) + 2;
            if (lx->len - lx->pos >= 4 && memcmp(lx->src + lx->pos, " -}}", 4) == 0) {
                lx->pos += 4;
                trim_next = 1;
            } else if (lx->len - lx->pos >= 2 && memcmp(lx->src + lx->pos, "}}", 2) == 0) {
                lx->pos += 2;
            } else {
                rc = lex_fail(lx, lx->pos, "comment ends before closing delimiter");
                goto fail;
            }
            continue;
        }
        if ((rc = emit(lx, T_LEFT, end, after, 0)))
            return rc;
        lx->pos = after;
        if ((rc = lex_action(lx, &trim_next)))
            goto fail;
    }
    return emit(lx, T_EOF, lx->len, lx->len, 0);

fail:
    /* As in Go, tokens before a lexical error still reach the parser, whose own
     * error wins when it comes first; the error itself is a token. */
    if (rc != RG_EPARSE || (rc = emit(lx, T_ERROR, lx->pos, lx->pos, 0)))
        return rc;
    return emit(lx, T_EOF, lx->len, lx->len, 0);
}

/* ---- Tree --------------------------------------------------------------- */

enum akind { A_FUNC, A_DOT, A_VAR, A_STRING, A_INT, A_FLOAT, A_BOOL, A_NIL, A_PIPE };

struct pipe;

struct arg {
    enum akind kind;
    const char *name;           /* FUNC, VAR: identifier ("$x" for VAR) */
    const char **chain;         /* field names following the term */
    size_t nchain;
    const char *str;            /* STRING: unquoted */
    size_t slen;
    int64_t i;                  /* INT, BOOL */
    double f;                   /* FLOAT */
    struct pipe *pipe;          /* PIPE */
};

struct cmd {
    struct arg **args;
    size_t nargs;
    const char *src;            /* source text for messages */
    size_t srclen;
    int line, col;
};

struct pipe {
    const char **decl;          /* declared or assigned variables */
    size_t ndecl;
    int assign;                 /* '=' rather than ':=' */
    struct cmd **cmds;
    size_t ncmds;
};

enum nkind { N_TEXT, N_ACTION, N_IF, N_WITH, N_RANGE };

struct node {
    enum nkind kind;
    const char *text;           /* TEXT */
    size_t len;
    struct pipe *pipe;
    struct node **list;
    size_t nlist;
    struct node **elist;
    size_t nelist;
};

struct rg_template {
    struct pool pool;
    char *name;                 /* in the pool */
    struct node **list;
    size_t nlist;
    int is_static;
};

struct parser {
    struct lexer *lx;
    size_t i;
    struct pool *pool;
    const char **vars;          /* declared variable names in scope */
    size_t nvars, capvars;
    int depth;
    char err[256];
    int err_line;
};

enum fn_id {
    F_AND, F_OR, F_NOT, F_EQ, F_NE, F_LT, F_LE, F_GT, F_GE, F_LEN, F_INDEX, F_PRINT,
    F_PRINTF, F_PRINTLN, F_HUMANIZE, F_HUMANIZE1024, F_HUMANIZE_DURATION,
    F_HUMANIZE_PERCENTAGE, F_HUMANIZE_TIMESTAMP, F_TO_UPPER, F_TO_LOWER, F_TITLE,
    F_RE_REPLACE_ALL, F_MATCH, F_SAFE_HTML, F_STRIP_PORT, F_STRIP_DOMAIN,
    F_EXTERNAL_URL, F_PATH_PREFIX, F_GRAPH_LINK, F_TABLE_LINK, F_PARSE_DURATION,
    F_QUERY, F_FIRST, F_LABEL, F_VALUE, F_STRVALUE, F_SORT_BY_LABEL, F_UNAVAILABLE,
};

struct fn {
    const char *name;
    enum fn_id id;
    int min, max;               /* argument counts; max -1 = any */
};

static const struct fn fns[] = {
    { "and", F_AND, 1, -1 }, { "or", F_OR, 1, -1 }, { "not", F_NOT, 1, 1 },
    { "eq", F_EQ, 1, -1 }, { "ne", F_NE, 2, 2 }, { "lt", F_LT, 2, 2 },
    { "le", F_LE, 2, 2 }, { "gt", F_GT, 2, 2 }, { "ge", F_GE, 2, 2 },
    { "len", F_LEN, 1, 1 }, { "index", F_INDEX, 1, -1 }, { "print", F_PRINT, 0, -1 },
    { "printf", F_PRINTF, 1, -1 }, { "println", F_PRINTLN, 0, -1 },
    { "humanize", F_HUMANIZE, 1, 1 }, { "humanize1024", F_HUMANIZE1024, 1, 1 },
    { "humanizeDuration", F_HUMANIZE_DURATION, 1, 1 },
    { "humanizePercentage", F_HUMANIZE_PERCENTAGE, 1, 1 },
    { "humanizeTimestamp", F_HUMANIZE_TIMESTAMP, 1, 1 },
    { "toUpper", F_TO_UPPER, 1, 1 }, { "toLower", F_TO_LOWER, 1, 1 },
    { "title", F_TITLE, 1, 1 }, { "reReplaceAll", F_RE_REPLACE_ALL, 3, 3 },
    { "match", F_MATCH, 2, 2 }, { "safeHtml", F_SAFE_HTML, 1, 1 },
    { "stripPort", F_STRIP_PORT, 1, 1 }, { "stripDomain", F_STRIP_DOMAIN, 1, 1 },
    { "externalURL", F_EXTERNAL_URL, 0, 0 }, { "pathPrefix", F_PATH_PREFIX, 0, 0 },
    { "graphLink", F_GRAPH_LINK, 1, 1 }, { "tableLink", F_TABLE_LINK, 1, 1 },
    { "parseDuration", F_PARSE_DURATION, 1, 1 },
    /* The rest are known to Go or Prometheus but of no use in alert texts here:
     * accepted by the parser, an error when executed. */
    { "query", F_QUERY, 1, 1 }, { "first", F_FIRST, 1, 1 }, { "label", F_LABEL, 2, 2 },
    { "value", F_VALUE, 1, 1 }, { "strvalue", F_STRVALUE, 1, 1 },
    { "sortByLabel", F_SORT_BY_LABEL, 2, 2 }, { "args", F_UNAVAILABLE, 0, -1 },
    { "toTime", F_UNAVAILABLE, 0, -1 },
    { "toDuration", F_UNAVAILABLE, 0, -1 }, { "now", F_UNAVAILABLE, 0, -1 },
    { "html", F_UNAVAILABLE, 0, -1 }, { "js", F_UNAVAILABLE, 0, -1 },
    { "urlquery", F_UNAVAILABLE, 0, -1 }, { "call", F_UNAVAILABLE, 0, -1 },
    { "slice", F_UNAVAILABLE, 0, -1 },
};

static const struct fn *fn_lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
        if (strlen(fns[i].name) == len && memcmp(fns[i].name, name, len) == 0)
            return &fns[i];
    return NULL;
}

static int perr(struct parser *p, const struct token *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int perr(struct parser *p, const struct token *t, const char *fmt, ...)
{
    va_list ap;
    if (p->err[0])
        return RG_EPARSE;
    if (t->t == T_ERROR || (t->t == T_EOF && p->lx->err[0])) {
        snprintf(p->err, sizeof(p->err), "%s", p->lx->err);
        p->err_line = p->lx->err_line;
        return RG_EPARSE;
    }
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof(p->err), fmt, ap);
    va_end(ap);
    p->err_line = t->line;
    return RG_EPARSE;
}

static const struct token *peek(struct parser *p)
{
    return &p->lx->toks[p->i];
}

static const struct token *next(struct parser *p)
{
    const struct token *t = &p->lx->toks[p->i];
    if (t->t != T_EOF)
        p->i++;
    return t;
}

static int tok_is(const struct token *t, enum tok k, const char *s)
{
    return t->t == k && strlen(s) == t->len && memcmp(t->p, s, t->len) == 0;
}

static const char *tok_desc(const struct token *t, char *buf, size_t cap)
{
    if (t->t == T_EOF)
        return "EOF";
    if (t->t == T_RIGHT)
        return "right delimiter";
    snprintf(buf, cap, "\"%.*s\"", (int)(t->len > 40 ? 40 : t->len), t->p);
    return buf;
}

static int push_ptr(struct pool *pool, void ***arr, size_t *n, void *item)
{
    /* Arrays grow by doubling inside the pool; the old copy is simply left there. */
    if ((*n & (*n - 1)) == 0) {
        size_t cap = *n ? *n * 2 : 1;
        void **na = pool_alloc(pool, cap * sizeof(void *));
        if (!na)
            return RG_ENOMEM;
        if (*n)
            memcpy(na, *arr, *n * sizeof(void *));
        *arr = na;
    }
    (*arr)[(*n)++] = item;
    return 0;
}

static int var_declared(struct parser *p, const char *name, size_t len)
{
    for (size_t i = p->nvars; i-- > 0;)
        if (strlen(p->vars[i]) == len && memcmp(p->vars[i], name, len) == 0)
            return 1;
    return 0;
}

static int var_push(struct parser *p, const char *name)
{
    if (p->nvars == p->capvars) {
        size_t nc = p->capvars ? p->capvars * 2 : 8;
        const char **n = realloc(p->vars, nc * sizeof(*n));
        if (!n)
            return RG_ENOMEM;
        p->vars = n;
        p->capvars = nc;
    }
    p->vars[p->nvars++] = name;
    return 0;
}

/* Unquotes a Go interpreted string literal (with its quotes) into the pool. */
static int unquote(struct parser *p, const struct token *t, const char **out, size_t *outlen)
{
    char *d = pool_alloc(p->pool, t->len + 4);
    size_t n = 0;
    const char *s = t->p + 1, *e = t->p + t->len - 1;

    if (!d)
        return RG_ENOMEM;
    while (s < e) {
        unsigned long cp;
        int digits;
        if (*s != '\\') {
            d[n++] = *s++;
            continue;
        }
        s++;
        switch (*s) {
        case 'n': d[n++] = '\n'; s++; continue;
        case 't': d[n++] = '\t'; s++; continue;
        case 'r': d[n++] = '\r'; s++; continue;
        case 'a': d[n++] = '\a'; s++; continue;
        case 'b': d[n++] = '\b'; s++; continue;
        case 'f': d[n++] = '\f'; s++; continue;
        case 'v': d[n++] = '\v'; s++; continue;
        case '\\': d[n++] = '\\'; s++; continue;
        case '"': d[n++] = '"'; s++; continue;
        case '\'': d[n++] = '\''; s++; continue;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default:
            if (*s >= '0' && *s <= '7' && e - s >= 3) {
                d[n++] = (char)(((s[0] - '0') << 6) | ((s[1] - '0') << 3) | (s[2] - '0'));
                s += 3;
                continue;
            }
            return perr(p, t, "invalid syntax");
        }
        s++;
        if (e - s < digits)
            return perr(p, t, "invalid syntax");
        cp = 0;
        for (int k = 0; k < digits; k++, s++) {
            if (!isxdigit((unsigned char)*s))
                return perr(p, t, "invalid syntax");
            cp = cp * 16 + (unsigned long)(isdigit((unsigned char)*s) ? *s - '0'
                                                                       : (tolower(*s) - 'a' + 10));
        }
        if (digits == 2) {
            d[n++] = (char)cp;
        } else if (cp < 0x80) {
            d[n++] = (char)cp;
        } else if (cp < 0x800) {
            d[n++] = (char)(0xc0 | (cp >> 6));
            d[n++] = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            d[n++] = (char)(0xe0 | (cp >> 12));
            d[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            d[n++] = (char)(0x80 | (cp & 0x3f));
        } else if (cp <= 0x10ffff) {
            d[n++] = (char)(0xf0 | (cp >> 18));
            d[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
            d[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            d[n++] = (char)(0x80 | (cp & 0x3f));
        } else {
            return perr(p, t, "invalid syntax");
        }
    }
    d[n] = '\0';
    *out = d;
    *outlen = n;
    return 0;
}

static int parse_pipe(struct parser *p, int in_paren, int decl_ok, struct pipe **out);

static int parse_number(struct parser *p, const struct token *t, struct arg *a)
{
    char buf[64];
    char *end;
    int is_hex;

    if (t->len >= sizeof(buf))
        return perr(p, t, "bad number syntax: \"%.*s\"", (int)t->len, t->p);
    memcpy(buf, t->p, t->len);
    buf[t->len] = '\0';
    is_hex = strstr(buf, "0x") || strstr(buf, "0X");
    if (!is_hex && strpbrk(buf, ".eEpP")) {
        errno = 0;
        a->kind = A_FLOAT;
        a->f = strtod(buf, &end);
    } else {
        errno = 0;
        a->kind = A_INT;
        a->i = strtoll(buf, &end, 0);
    }
    if (*end || errno)
        return perr(p, t, "bad number syntax: \"%s\"", buf);
    return 0;
}

/* operand: term followed by adjacent .field chain. */
static int parse_operand(struct parser *p, struct arg **out)
{
    const struct token *t = next(p);
    struct arg *a = pool_alloc(p->pool, sizeof(*a));
    char d[64];
    int rc;

    if (!a)
        return RG_ENOMEM;
    switch (t->t) {
    case T_IDENT:
        if (tok_is(t, T_IDENT, "true") || tok_is(t, T_IDENT, "false")) {
            a->kind = A_BOOL;
            a->i = t->p[0] == 't';
        } else if (tok_is(t, T_IDENT, "nil")) {
            a->kind = A_NIL;
        } else {
            if (!fn_lookup(t->p, t->len))
                return perr(p, t, "function \"%.*s\" not defined", (int)t->len, t->p);
            a->kind = A_FUNC;
            if (!(a->name = pool_strndup(p->pool, t->p, t->len)))
                return RG_ENOMEM;
        }
        break;
    case T_DOT:
        a->kind = A_DOT;
        break;
    case T_FIELD:
        a->kind = A_DOT;
        p->i--;      /* the chain loop below takes it */
        break;
    case T_VAR:
        if (!var_declared(p, t->p, t->len))
            return perr(p, t, "undefined variable \"%.*s\"", (int)t->len, t->p);
        a->kind = A_VAR;
        if (!(a->name = pool_strndup(p->pool, t->p, t->len)))
            return RG_ENOMEM;
        break;
    case T_STRING:
        a->kind = A_STRING;
        if ((rc = unquote(p, t, &a->str, &a->slen)))
            return rc;
        break;
    case T_RAW:
        a->kind = A_STRING;
        a->slen = t->len - 2;
        if (!(a->str = pool_strndup(p->pool, t->p + 1, t->len - 2)))
            return RG_ENOMEM;
        break;
    case T_CHAR: {
        const char *s;
        size_t n;
        if ((rc = unquote(p, t, &s, &n)))
            return rc;
        a->kind = A_INT;
        a->i = n ? (unsigned char)s[0] : 0;
        break;
    }
    case T_NUMBER:
        if ((rc = parse_number(p, t, a)))
            return rc;
        break;
    case T_LPAREN:
        a->kind = A_PIPE;
        if ((rc = parse_pipe(p, 1, 0, &a->pipe)))
            return rc;
        if (next(p)->t != T_RPAREN)
            return perr(p, t, "unclosed left paren");
        break;
    default:
        return perr(p, t, "unexpected %s in operand", tok_desc(t, d, sizeof(d)));
    }
    {
        int first = t->t == T_FIELD;   /* .Labels.x: the term itself is a field */
        while (peek(p)->t == T_FIELD && (first || !peek(p)->space)) {
            const struct token *f = next(p);
            const char *nm;
            first = 0;
            if (a->kind != A_DOT && a->kind != A_VAR && a->kind != A_PIPE)
                return perr(p, f, "unexpected . after term \"%.*s\"", (int)t->len, t->p);
            if (!(nm = pool_strndup(p->pool, f->p + 1, f->len - 1)))
                return RG_ENOMEM;
            if ((rc = push_ptr(p->pool, (void ***)&a->chain, &a->nchain, (void *)nm)))
                return rc;
        }
    }
    *out = a;
    return 0;
}

static int parse_cmd(struct parser *p, struct cmd **out)
{
    struct cmd *c = pool_alloc(p->pool, sizeof(*c));
    const struct token *first = peek(p);
    char d[64];
    int rc;

    if (!c)
        return RG_ENOMEM;
    c->src = first->p;
    c->line = first->line;
    c->col = first->col;
    for (;;) {
        const struct token *t = peek(p);
        struct arg *a = NULL;
        if (t->t == T_PIPE || t->t == T_RIGHT || t->t == T_RPAREN)
            break;
        if (t->t == T_EOF || t->t == T_DECLARE || t->t == T_ASSIGN || t->t == T_COMMA ||
            t->t == T_LEFT || t->t == T_TEXT)
            return perr(p, t, "unexpected %s in operand", tok_desc(t, d, sizeof(d)));
        if ((rc = parse_operand(p, &a)))
            return rc;
        if ((rc = push_ptr(p->pool, (void ***)&c->args, &c->nargs, a)))
            return rc;
    }
    if (c->nargs == 0)
        return perr(p, peek(p), "empty command");
    {
        const struct token *last = &p->lx->toks[p->i - 1];
        c->srclen = (size_t)(last->p + last->len - c->src);
    }
    *out = c;
    return 0;
}

static int parse_pipe(struct parser *p, int in_paren, int decl_ok, struct pipe **out)
{
    struct pipe *pp = pool_alloc(p->pool, sizeof(*pp));
    size_t save = p->i;
    int rc;

    if (!pp)
        return RG_ENOMEM;
    if (++p->depth > MAX_DEPTH)
        return perr(p, peek(p), "max nesting depth reached");
    /* Declarations: $x := ..., $x = ..., and in range $k, $v := ... */
    if (peek(p)->t == T_VAR) {
        const struct token *v = next(p);
        const struct token *n = peek(p);
        if (n->t == T_DECLARE || n->t == T_ASSIGN ||
            (decl_ok == 2 && n->t == T_COMMA)) {
            const struct token *v2 = NULL;
            if (n->t == T_COMMA) {
                next(p);
                v2 = next(p);
                if (v2->t != T_VAR)
                    return perr(p, v2, "range can only initialize variables");
                n = peek(p);
                if (n->t != T_DECLARE && n->t != T_ASSIGN)
                    return perr(p, n, "expected := or = in range declaration");
            }
            next(p);
            pp->assign = n->t == T_ASSIGN;
            if (pp->assign && !var_declared(p, v->p, v->len))
                return perr(p, v, "undefined variable \"%.*s\"", (int)v->len, v->p);
            if ((rc = push_ptr(p->pool, (void ***)&pp->decl, &pp->ndecl,
                               pool_strndup(p->pool, v->p, v->len))))
                return rc;
            if (v2 && (rc = push_ptr(p->pool, (void ***)&pp->decl, &pp->ndecl,
                                     pool_strndup(p->pool, v2->p, v2->len))))
                return rc;
            for (size_t i = 0; i < pp->ndecl; i++)
                if (!pp->decl[i])
                    return RG_ENOMEM;
        } else {
            p->i = save;
        }
    }
    for (;;) {
        struct cmd *c = NULL;
        if ((rc = parse_cmd(p, &c)))
            return rc;
        if ((rc = push_ptr(p->pool, (void ***)&pp->cmds, &pp->ncmds, c)))
            return rc;
        if (peek(p)->t == T_PIPE) {
            next(p);
            continue;
        }
        if (in_paren ? peek(p)->t == T_RPAREN : peek(p)->t == T_RIGHT)
            break;
        {
            char d[64];
            return perr(p, peek(p), "unexpected %s in operand", tok_desc(peek(p), d, sizeof(d)));
        }
    }
    /* Declared variables are visible after the declaration. */
    if (!pp->assign)
        for (size_t i = 0; i < pp->ndecl; i++)
            if ((rc = var_push(p, pp->decl[i])))
                return rc;
    p->depth--;
    *out = pp;
    return 0;
}

enum stop { STOP_EOF, STOP_END, STOP_ELSE };

static int parse_list(struct parser *p, struct node ***list, size_t *n, enum stop *stop);

static int parse_control(struct parser *p, enum nkind kind, const struct token *kw,
                         struct node **out)
{
    struct node *nd = pool_alloc(p->pool, sizeof(*nd));
    size_t scope = p->nvars;
    enum stop stop;
    int rc;

    if (!nd)
        return RG_ENOMEM;
    nd->kind = kind;
    if (peek(p)->t == T_RIGHT)
        return perr(p, kw, "missing value for %.*s", (int)kw->len, kw->p);
    if ((rc = parse_pipe(p, 0, kind == N_RANGE ? 2 : 1, &nd->pipe)))
        return rc;
    next(p);   /* T_RIGHT */
    if ((rc = parse_list(p, &nd->list, &nd->nlist, &stop)))
        return rc;
    if (stop == STOP_EOF)
        return perr(p, peek(p), "unexpected EOF");
    if (stop == STOP_ELSE) {
        const struct token *t = peek(p);
        /* {{else if ...}} and {{else with ...}} chain into a nested node that shares
         * this node's {{end}}. */
        if ((kind == N_IF && tok_is(t, T_IDENT, "if")) ||
            (kind == N_WITH && tok_is(t, T_IDENT, "with"))) {
            struct node *inner;
            next(p);
            p->nvars = scope;
            if ((rc = parse_control(p, kind, t, &inner)))
                return rc;
            if ((rc = push_ptr(p->pool, (void ***)&nd->elist, &nd->nelist, inner)))
                return rc;
            p->nvars = scope;
            *out = nd;
            return 0;
        }
        if (next(p)->t != T_RIGHT)
            return perr(p, t, "unexpected %.*s in else", (int)t->len, t->p);
        p->nvars = scope;
        if ((rc = parse_list(p, &nd->elist, &nd->nelist, &stop)))
            return rc;
        if (stop != STOP_END)
            return perr(p, peek(p), stop == STOP_EOF ? "unexpected EOF"
                                                     : "expected end; found {{else}}");
    }
    p->nvars = scope;
    *out = nd;
    return 0;
}

static int parse_list(struct parser *p, struct node ***list, size_t *n, enum stop *stop)
{
    int rc;

    if (++p->depth > MAX_DEPTH)
        return perr(p, peek(p), "max nesting depth reached");
    for (;;) {
        const struct token *t = next(p);
        struct node *nd;
        if (t->t == T_EOF) {
            *stop = STOP_EOF;
            break;
        }
        if (t->t == T_TEXT) {
            if (!(nd = pool_alloc(p->pool, sizeof(*nd))))
                return RG_ENOMEM;
            nd->kind = N_TEXT;
            nd->text = t->p;
            nd->len = t->len;
        } else {
            const struct token *k = peek(p);
            if (k->t == T_RIGHT)
                return perr(p, k, "missing value for command");
            if (tok_is(k, T_IDENT, "end")) {
                next(p);
                if (next(p)->t != T_RIGHT)
                    return perr(p, k, "unexpected %s in end", "token");
                *stop = STOP_END;
                break;
            }
            if (tok_is(k, T_IDENT, "else")) {
                next(p);
                *stop = STOP_ELSE;
                break;
            }
            if (tok_is(k, T_IDENT, "if") || tok_is(k, T_IDENT, "with") ||
                tok_is(k, T_IDENT, "range")) {
                next(p);
                if ((rc = parse_control(p, k->p[0] == 'i' ? N_IF : k->p[0] == 'w' ? N_WITH
                                                                                    : N_RANGE,
                                        k, &nd)))
                    return rc;
            } else if (tok_is(k, T_IDENT, "define") || tok_is(k, T_IDENT, "template") ||
                       tok_is(k, T_IDENT, "block") || tok_is(k, T_IDENT, "break") ||
                       tok_is(k, T_IDENT, "continue")) {
                return perr(p, k, "unsupported action \"%.*s\"", (int)k->len, k->p);
            } else {
                if (!(nd = pool_alloc(p->pool, sizeof(*nd))))
                    return RG_ENOMEM;
                nd->kind = N_ACTION;
                if ((rc = parse_pipe(p, 0, 1, &nd->pipe)))
                    return rc;
                next(p);
            }
        }
        if ((rc = push_ptr(p->pool, (void ***)list, n, nd)))
            return rc;
    }
    p->depth--;
    return 0;
}

static const char *const predeclared[] = {
    "$", "$labels", "$externalLabels", "$externalURL", "$value",
};

int rg_template_compile(const char *name, const char *text, struct rg_template **out,
                        struct rg_buf *err)
{
    struct lexer lx = { .src = text, .len = strlen(text) };
    struct parser p = { .lx = &lx };
    struct rg_template *t = calloc(1, sizeof(*t));
    enum stop stop;
    int rc;

    if (!t)
        return RG_ENOMEM;
    p.pool = &t->pool;
    if (!(t->name = pool_strndup(&t->pool, name, strlen(name)))) {
        rc = RG_ENOMEM;
        goto fail;
    }
    if ((rc = lex(&lx)))
        goto fail;
    for (size_t i = 0; i < sizeof(predeclared) / sizeof(predeclared[0]); i++)
        if ((rc = var_push(&p, predeclared[i])))
            goto fail;
    rc = parse_list(&p, &t->list, &t->nlist, &stop);
    if (rc == 0 && stop != STOP_EOF)
        rc = perr(&p, &lx.toks[p.i - 1], "unexpected {{%s}}", stop == STOP_END ? "end" : "else");
    if (rc == RG_EPARSE && err)
        rg_buf_printf(err, "template: %s:%d: %s", name, p.err_line, p.err);
    if (rc)
        goto fail;
    t->is_static = 1;
    for (size_t i = 0; i < t->nlist; i++)
        if (t->list[i]->kind != N_TEXT)
            t->is_static = 0;
    free(lx.toks);
    free(p.vars);
    *out = t;
    return 0;

fail:
    free(lx.toks);
    free(p.vars);
    rg_template_free(t);
    return rc;
}

void rg_template_free(struct rg_template *t)
{
    if (!t)
        return;
    pool_free(&t->pool);
    free(t);
}

int rg_template_is_static(const struct rg_template *t)
{
    return t->is_static;
}

int rg_template_check(const char *name, const char *text, struct rg_buf *err)
{
    struct rg_template *t = NULL;
    int rc = rg_template_compile(name, text, &t, err);
    if (rc == 0)
        rg_template_free(t);
    return rc;
}

/* ---- Humanize ----------------------------------------------------------- */

/* Go's %.4g differs from C's only in how it spells the special values. */
static int fmt_4g(struct rg_buf *out, double v, const char *suffix)
{
    if (isnan(v))
        return rg_buf_printf(out, "NaN%s", suffix);
    if (isinf(v))
        return rg_buf_printf(out, "%sInf%s", v > 0 ? "+" : "-", suffix);
    return rg_buf_printf(out, "%.4g%s", v, suffix);
}

int rg_template_humanize(double v, struct rg_buf *out)
{
    static const char *const big[] = { "k", "M", "G", "T", "P", "E", "Z", "Y" };
    static const char *const small[] = { "m", "u", "n", "p", "f", "a", "z", "y" };
    const char *prefix = "";

    if (v == 0 || isnan(v) || isinf(v))
        return fmt_4g(out, v, "");
    if (fabs(v) >= 1) {
        for (size_t i = 0; i < 8; i++) {
            if (fabs(v) < 1000)
                break;
            prefix = big[i];
            v /= 1000;
        }
        return fmt_4g(out, v, prefix);
    }
    for (size_t i = 0; i < 8; i++) {
        if (fabs(v) >= 1)
            break;
        prefix = small[i];
        v *= 1000;
    }
    return fmt_4g(out, v, prefix);
}

int rg_template_humanize1024(double v, struct rg_buf *out)
{
    static const char *const pre[] = { "ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi" };
    const char *prefix = "";

    if (fabs(v) <= 1 || isnan(v) || isinf(v))
        return fmt_4g(out, v, "");
    for (size_t i = 0; i < 8; i++) {
        if (fabs(v) < 1024)
            break;
        prefix = pre[i];
        v /= 1024;
    }
    return fmt_4g(out, v, prefix);
}

int rg_template_humanize_duration(double v, struct rg_buf *out)
{
    static const char *const small[] = { "m", "u", "n", "p", "f", "a", "z", "y" };
    const char *prefix = "";

    if (isnan(v) || isinf(v))
        return fmt_4g(out, v, "");
    if (v == 0)
        return fmt_4g(out, v, "s");
    if (fabs(v) >= 1) {
        const char *sign = "";
        int64_t d, sec, min, hour, day;
        if (v < 0) {
            sign = "-";
            v = -v;
        }
        /* Go converts an out-of-range float to int64 as amd64 does: INT64_MIN. */
        d = v >= 9223372036854775808.0 ? INT64_MIN : (int64_t)v;
        sec = d % 60;
        min = (d / 60) % 60;
        hour = (d / 60 / 60) % 24;
        day = d / 60 / 60 / 24;
        if (day != 0)
            return rg_buf_printf(out, "%s%" PRId64 "d %" PRId64 "h %" PRId64 "m %" PRId64 "s",
                                 sign, day, hour, min, sec);
        if (hour != 0)
            return rg_buf_printf(out, "%s%" PRId64 "h %" PRId64 "m %" PRId64 "s", sign, hour,
                                 min, sec);
        if (min != 0)
            return rg_buf_printf(out, "%s%" PRId64 "m %" PRId64 "s", sign, min, sec);
        return rg_buf_printf(out, "%s%.4gs", sign, v);
    }
    for (size_t i = 0; i < 8; i++) {
        if (fabs(v) >= 1)
            break;
        prefix = small[i];
        v *= 1000;
    }
    return rg_buf_printf(out, "%.4g%ss", v, prefix);
}

int rg_template_humanize_percentage(double v, struct rg_buf *out)
{
    return fmt_4g(out, v * 100, "%");
}

int rg_template_humanize_timestamp(double v, struct rg_buf *out)
{
    double ns;
    int64_t ms, sec, frac;
    time_t tt;
    struct tm tm;
    char date[64];

    if (isnan(v) || isinf(v))
        return fmt_4g(out, v, "");
    ns = v * 1e9;
    if (ns >= 9223372036854775807.0 || ns < -9223372036854775808.0)
        return RG_EINVAL;
    /* model.TimeFromUnixNano keeps milliseconds, truncating toward zero. */
    ms = (int64_t)ns / 1000000;
    sec = ms / 1000;
    frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        sec--;
    }
    tt = (time_t)sec;
    if (!gmtime_r(&tt, &tm))
        return RG_EINVAL;
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
    if (frac == 0)
        return rg_buf_printf(out, "%s +0000 UTC", date);
    {
        char f[8];
        int n = snprintf(f, sizeof(f), "%03d", (int)frac);
        while (n > 0 && f[n - 1] == '0')
            f[--n] = '\0';
        return rg_buf_printf(out, "%s.%s +0000 UTC", date, f);
    }
}

/* ---- Execution ---------------------------------------------------------- */

enum vk { V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_MAP, V_DATA, V_SAMPLES, V_SAMPLE };

struct val {
    enum vk k;
    int64_t i;                  /* BOOL, INT */
    double f;                   /* FLOAT */
    const char *s;              /* STR */
    size_t n;                   /* STR length; MAP entries; SAMPLES count */
    const struct rg_label *m;   /* MAP */
    const struct rg_template_sample *q;  /* SAMPLES (array), SAMPLE (one) */
};

struct var {
    const char *name;
    struct val v;
};

struct exec {
    const struct rg_template *t;
    const struct rg_template_data *data;
    struct pool pool;
    struct var *vars;
    size_t nvars, capvars;
    struct rg_buf out;
    struct rg_buf err;
    const struct cmd *at;       /* command being run, for messages */
    int depth;
};

static int xerr(struct exec *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int xerr(struct exec *e, const char *fmt, ...)
{
    va_list ap;
    if (e->err.len)
        return RG_EINVAL;
    if (e->at)
        rg_buf_printf(&e->err, "template: %s:%d:%d: executing \"%s\" at <%.*s>: ", e->t->name,
                      e->at->line, e->at->col, e->t->name, (int)e->at->srclen, e->at->src);
    else
        rg_buf_printf(&e->err, "template: %s: executing \"%s\": ", e->t->name, e->t->name);
    va_start(ap, fmt);
    rg_buf_vprintf(&e->err, fmt, ap);
    va_end(ap);
    return RG_EINVAL;
}

static struct val vstr(const char *s, size_t n)
{
    struct val v = { .k = V_STR, .s = s, .n = n };
    return v;
}

static int vstr_buf(struct exec *e, struct rg_buf *b, struct val *out)
{
    char *s = pool_strndup(&e->pool, b->data ? b->data : "", b->len);
    if (!s)
        return RG_ENOMEM;
    *out = vstr(s, b->len);
    return 0;
}

static const char *type_name(const struct val *v)
{
    switch (v->k) {
    case V_BOOL: return "bool";
    case V_INT: return "int";
    case V_FLOAT: return "float64";
    case V_STR: return "string";
    case V_MAP: return "map[string]string";
    case V_DATA: return "template.tmplData";
    case V_SAMPLES: return "template.queryResult";
    case V_SAMPLE: return "*template.sample";
    default: return "<nil>";
    }
}

static int truth(const struct val *v)
{
    switch (v->k) {
    case V_BOOL:
    case V_INT: return v->i != 0;
    case V_FLOAT: return v->f != 0;
    case V_STR:
    case V_MAP:
    case V_SAMPLES: return v->n != 0;
    case V_DATA:
    case V_SAMPLE: return 1;
    default: return 0;
    }
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct rg_label *)a)->name, ((const struct rg_label *)b)->name);
}

/* Go prints maps with their keys sorted: map[a:1 b:2]. */
static int print_map(struct exec *e, const struct rg_label *m, size_t n, struct rg_buf *out)
{
    struct rg_label *s = n ? malloc(n * sizeof(*s)) : NULL;
    if (n && !s)
        return RG_ENOMEM;
    if (n)
        memcpy(s, m, n * sizeof(*s));
    if (n)
        qsort(s, n, sizeof(*s), label_cmp);
    rg_buf_puts(out, "map[");
    for (size_t i = 0; i < n; i++)
        rg_buf_printf(out, "%s%s:%s", i ? " " : "", s[i].name, s[i].value);
    free(s);
    (void)e;
    return rg_buf_putc(out, ']');
}

/* Go's fmt %v. */
static int print_val(struct exec *e, const struct val *v, struct rg_buf *out)
{
    switch (v->k) {
    case V_BOOL: return rg_buf_puts(out, v->i ? "true" : "false");
    case V_INT: return rg_buf_printf(out, "%" PRId64, v->i);
    case V_FLOAT: return rg_format_float_g(v->f, out);
    case V_STR: return rg_buf_append(out, v->s, v->n);
    case V_MAP: return print_map(e, v->m, v->n, out);
    case V_SAMPLE:
        /* Prometheus prints a sample as {map[...] value}. */
        rg_buf_puts(out, "{");
        print_map(e, v->q->labels, v->q->nlabels, out);
        rg_buf_putc(out, ' ');
        rg_format_float_g(v->q->value, out);
        return rg_buf_putc(out, '}');
    case V_SAMPLES:
        rg_buf_putc(out, '[');
        for (size_t i = 0; i < v->n; i++) {
            struct val one = { .k = V_SAMPLE, .q = &v->q[i] };
            if (i)
                rg_buf_putc(out, ' ');
            print_val(e, &one, out);
        }
        return rg_buf_putc(out, ']');
    case V_DATA: {
        const struct rg_template_data *d = e->data;
        rg_buf_putc(out, '{');
        print_map(e, d->labels, d->nlabels, out);
        rg_buf_putc(out, ' ');
        print_map(e, d->external_labels, d->nexternal, out);
        rg_buf_printf(out, " %s ", d->external_url ? d->external_url : "");
        rg_format_float_g(d->value, out);
        return rg_buf_putc(out, '}');
    }
    default: return rg_buf_puts(out, "<no value>");
    }
}

static int map_get(const struct rg_label *m, size_t n, const char *key, size_t klen,
                   struct val *out)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(m[i].name) == klen && memcmp(m[i].name, key, klen) == 0) {
            *out = vstr(m[i].value, strlen(m[i].value));
            return 1;
        }
    return 0;
}

static int field(struct exec *e, struct val *v, const char *name)
{
    const struct rg_template_data *d = e->data;
    if (v->k == V_DATA) {
        if (strcmp(name, "Labels") == 0) {
            *v = (struct val){ .k = V_MAP, .m = d->labels, .n = d->nlabels };
        } else if (strcmp(name, "ExternalLabels") == 0) {
            *v = (struct val){ .k = V_MAP, .m = d->external_labels, .n = d->nexternal };
        } else if (strcmp(name, "ExternalURL") == 0) {
            const char *u = d->external_url ? d->external_url : "";
            *v = vstr(u, strlen(u));
        } else if (strcmp(name, "Value") == 0) {
            *v = (struct val){ .k = V_FLOAT, .f = d->value };
        } else {
            return xerr(e, "can't evaluate field %s in type template.tmplData", name);
        }
        return 0;
    }
    if (v->k == V_SAMPLE) {
        if (strcmp(name, "Labels") == 0) {
            *v = (struct val){ .k = V_MAP, .m = v->q->labels, .n = v->q->nlabels };
        } else if (strcmp(name, "Value") == 0) {
            *v = (struct val){ .k = V_FLOAT, .f = v->q->value };
        } else {
            return xerr(e, "can't evaluate field %s in type *template.sample", name);
        }
        return 0;
    }
    if (v->k == V_MAP) {
        /* A missing key of a map[string]string is the zero value, "" (Prometheus
         * prints nothing for $labels.missing, not "<no value>"). */
        if (!map_get(v->m, v->n, name, strlen(name), v))
            *v = vstr("", 0);
        return 0;
    }
    if (v->k == V_NONE)
        return xerr(e, "nil pointer evaluating interface {}.%s", name);
    return xerr(e, "can't evaluate field %s in type %s", name, type_name(v));
}

static struct val *var_lookup(struct exec *e, const char *name)
{
    for (size_t i = e->nvars; i-- > 0;)
        if (strcmp(e->vars[i].name, name) == 0)
            return &e->vars[i].v;
    return NULL;
}

static int var_set(struct exec *e, const char *name, const struct val *v)
{
    if (e->nvars == e->capvars) {
        size_t nc = e->capvars ? e->capvars * 2 : 16;
        struct var *n = realloc(e->vars, nc * sizeof(*n));
        if (!n)
            return RG_ENOMEM;
        e->vars = n;
        e->capvars = nc;
    }
    e->vars[e->nvars].name = name;
    e->vars[e->nvars++].v = *v;
    return 0;
}

static int eval_pipe(struct exec *e, const struct pipe *p, const struct val *dot,
                     struct val *out);

static int to_float(struct exec *e, const char *fn, const struct val *v, double *out)
{
    char *end;
    switch (v->k) {
    case V_INT: *out = (double)v->i; return 0;
    case V_FLOAT: *out = v->f; return 0;
    case V_STR: {
        char buf[128];
        if (v->n && v->n < sizeof(buf)) {
            memcpy(buf, v->s, v->n);
            buf[v->n] = '\0';
            errno = 0;
            *out = strtod(buf, &end);
            if (*end == '\0' && !isspace((unsigned char)buf[0]))
                return 0;
        }
        return xerr(e, "error calling %s: strconv.ParseFloat: parsing \"%.*s\": invalid syntax",
                    fn, (int)(v->n > 64 ? 64 : v->n), v->s);
    }
    default:
        return xerr(e, "error calling %s: can't convert %s to float", fn, type_name(v));
    }
}

static int need_str(struct exec *e, const char *fn, const struct val *v, char **out)
{
    if (v->k != V_STR)
        return xerr(e, "wrong type for value; expected string; got %s", type_name(v));
    if (!(*out = pool_strndup(&e->pool, v->s, v->n)))
        return RG_ENOMEM;
    (void)fn;
    return 0;
}

/* Go's basicKind classes for comparisons. */
static int cmp_vals(struct exec *e, const char *fn, const struct val *a, const struct val *b,
                    int *out)
{
    if (a->k != b->k) {
        if (a->k == V_NONE || b->k == V_NONE) {
            if (strcmp(fn, "eq") == 0 || strcmp(fn, "ne") == 0) {
                *out = 1;   /* unequal */
                return 0;
            }
            return xerr(e, "error calling %s: invalid type for comparison", fn);
        }
        return xerr(e, "error calling %s: incompatible types for comparison", fn);
    }
    switch (a->k) {
    case V_BOOL:
        if (strcmp(fn, "eq") && strcmp(fn, "ne"))
            return xerr(e, "error calling %s: invalid type for comparison", fn);
        /* fall through */
    case V_INT: *out = a->i < b->i ? -1 : a->i > b->i; return 0;
    case V_FLOAT:
        if (isnan(a->f) || isnan(b->f))
            *out = 2;   /* unordered: every comparison but ne is false */
        else
            *out = a->f < b->f ? -1 : a->f > b->f;
        return 0;
    case V_STR: {
        size_t n = a->n < b->n ? a->n : b->n;
        int c = memcmp(a->s, b->s, n);
        *out = c ? (c < 0 ? -1 : 1) : (a->n < b->n ? -1 : a->n > b->n);
        return 0;
    }
    case V_NONE: *out = 0; return 0;
    default:
        return xerr(e, "error calling %s: invalid type for comparison", fn);
    }
}

static void url_escape(struct rg_buf *out, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            rg_buf_putc(out, (char)c);
        else if (c == ' ')
            rg_buf_putc(out, '+');
        else
            rg_buf_printf(out, "%%%02X", c);
    }
}

static pcre2_code *re_compile(struct exec *e, const char *fn, const char *pat)
{
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &off,
                                   NULL);
    if (!re) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        xerr(e, "error calling %s: error parsing regexp: %s: `%s`", fn, (char *)msg, pat);
    }
    return re;
}

/* Go's Regexp.Expand: $1, ${1}, $name, ${name}, $$; a name is the longest run of
 * letters, digits and underscores. */
static void re_expand(struct rg_buf *out, const char *repl, const char *src, pcre2_code *re,
                      PCRE2_SIZE *ov, int nmatch)
{
    for (const char *r = repl; *r;) {
        const char *name;
        size_t nlen;
        int idx = -1;
        if (*r != '$') {
            rg_buf_putc(out, *r++);
            continue;
        }
        r++;
        if (*r == '$') {
            rg_buf_putc(out, '$');
            r++;
            continue;
        }
        if (*r == '{') {
            const char *close = strchr(r, '}');
            name = r + 1;
            nlen = close ? (size_t)(close - name) : 0;
            if (!close || nlen == 0) {
                rg_buf_putc(out, '$');
                continue;
            }
            r = close + 1;
        } else {
            name = r;
            while (is_alnum((unsigned char)*r) && (unsigned char)*r < 0x80)
                r++;
            nlen = (size_t)(r - name);
            if (nlen == 0) {
                rg_buf_putc(out, '$');
                continue;
            }
        }
        {
            char nb[64];
            size_t k;
            for (k = 0; k < nlen && isdigit((unsigned char)name[k]); k++)
                ;
            if (k == nlen && nlen < 9) {
                idx = atoi(name);
            } else if (nlen < sizeof(nb)) {
                memcpy(nb, name, nlen);
                nb[nlen] = '\0';
                idx = pcre2_substring_number_from_name(re, (PCRE2_SPTR)nb);
            }
        }
        if (idx >= 0 && idx < nmatch && ov[2 * idx] != PCRE2_UNSET)
            rg_buf_append(out, src + ov[2 * idx], ov[2 * idx + 1] - ov[2 * idx]);
    }
}

static int fn_replace(struct exec *e, char *pat, char *repl, char *text, struct val *out)
{
    pcre2_code *re = re_compile(e, "reReplaceAll", pat);
    pcre2_match_data *md;
    struct rg_buf b = { 0 };
    size_t len = strlen(text), search = 0, last = 0;
    int rc = 0;

    if (!re)
        return RG_EINVAL;
    if (!(md = pcre2_match_data_create_from_pattern(re, NULL))) {
        pcre2_code_free(re);
        return RG_ENOMEM;
    }
    while (search <= len) {
        int n = pcre2_match(re, (PCRE2_SPTR)text, len, search, 0, md, NULL);
        PCRE2_SIZE *ov;
        size_t width;
        if (n <= 0)
            break;
        ov = pcre2_get_ovector_pointer(md);
        rg_buf_append(&b, text + last, ov[0] - last);
        if (ov[1] > last || ov[0] == 0)
            re_expand(&b, repl, text, re, ov, n);
        last = ov[1];
        width = 1;
        while (search + width < len && ((unsigned char)text[search + width] & 0xc0) == 0x80)
            width++;
        if (search + width > ov[1])
            search += width;
        else
            search = ov[1];
    }
    rg_buf_append(&b, text + last, len - last);
    rc = vstr_buf(e, &b, out);
    rg_buf_cleanup(&b);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc;
}

/* Go's fmt.Sprintf for the verbs templates use. */
static int go_printf(struct exec *e, const char *f, size_t flen, const struct val *args,
                     size_t nargs, struct rg_buf *out)
{
    size_t ai = 0;
    const char *end = f + flen;

    while (f < end) {
        char spec[32];
        size_t sl = 0;
        int prec = -1, width = -1;
        char verb;
        const struct val *a;

        if (*f != '%') {
            rg_buf_putc(out, *f++);
            continue;
        }
        f++;
        if (f < end && *f == '%') {
            rg_buf_putc(out, '%');
            f++;
            continue;
        }
        spec[sl++] = '%';
        while (f < end && strchr("+-# 0", *f) && sl < 8)
            spec[sl++] = *f++;
        if (f < end && *f == '*') {
            f++;
            /* Bounded like every other width: no template may ask for a huge pad. */
            if (ai < nargs && args[ai].k == V_INT)
                width = (int)(args[ai].i < -1000 ? 1000 : args[ai].i < 0 ? -args[ai].i
                              : args[ai].i > 1000 ? 1000 : args[ai].i);
            ai++;
        } else {
            while (f < end && isdigit((unsigned char)*f)) {
                width = (width < 0 ? 0 : width) * 10 + (*f++ - '0');
                if (width > 1000)
                    width = 1000;
            }
        }
        if (f < end && *f == '.') {
            f++;
            prec = 0;
            if (f < end && *f == '*') {
                f++;
                if (ai < nargs && args[ai].k == V_INT)
                    prec = (int)(args[ai].i < 0 ? 0 : args[ai].i > 100 ? 100 : args[ai].i);
                ai++;
            } else {
                while (f < end && isdigit((unsigned char)*f)) {
                    prec = prec * 10 + (*f++ - '0');
                    if (prec > 100)
                        prec = 100;
                }
            }
        }
        if (f >= end) {
            rg_buf_puts(out, "%!(NOVERB)");
            break;
        }
        verb = *f++;
        if (width >= 0)
            sl += (size_t)snprintf(spec + sl, sizeof(spec) - sl, "%d", width);
        if (prec >= 0)
            sl += (size_t)snprintf(spec + sl, sizeof(spec) - sl, ".%d", prec);
        if (ai >= nargs) {
            rg_buf_printf(out, "%%!%c(MISSING)", verb);
            continue;
        }
        a = &args[ai++];
        switch (verb) {
        case 'd':
        case 'x':
        case 'X':
        case 'o':
        case 'c':
            if (a->k == V_INT && verb != 'c') {
                snprintf(spec + sl, sizeof(spec) - sl, "ll%c", verb);
                rg_buf_printf(out, spec, (long long)a->i);
            } else if (a->k == V_INT) {
                rg_buf_putc(out, (char)a->i);
            } else if (a->k == V_STR && (verb == 'x' || verb == 'X')) {
                for (size_t i = 0; i < a->n; i++)
                    rg_buf_printf(out, verb == 'x' ? "%02x" : "%02X", (unsigned char)a->s[i]);
            } else {
                goto bad;
            }
            break;
        case 'e':
        case 'E':
        case 'f':
        case 'F':
        case 'g':
        case 'G':
            if (a->k != V_FLOAT)
                goto bad;
            if (isnan(a->f) || isinf(a->f)) {
                rg_buf_puts(out, isnan(a->f) ? "NaN" : a->f > 0 ? "+Inf" : "-Inf");
            } else if ((verb == 'g' || verb == 'G') && prec < 0) {
                rg_format_float_g(a->f, out);
            } else {
                snprintf(spec + sl, sizeof(spec) - sl, "%c", verb);
                rg_buf_printf(out, spec, a->f);
            }
            break;
        case 's':
        case 'v':
        case 'q':
            if (verb == 's' && a->k != V_STR && a->k != V_MAP && a->k != V_DATA &&
                a->k != V_NONE)
                goto bad;
            {
                struct rg_buf tmp = { 0 };
                if (a->k == V_NONE && verb != 'v')
                    rg_buf_puts(&tmp, "%!s(<nil>)");
                else
                    print_val(e, a, &tmp);
                if (verb == 'q') {
                    rg_buf_putc(out, '"');
                    for (size_t i = 0; i < tmp.len; i++) {
                        char c = tmp.data[i];
                        if (c == '"' || c == '\\')
                            rg_buf_printf(out, "\\%c", c);
                        else if (c == '\n')
                            rg_buf_puts(out, "\\n");
                        else if ((unsigned char)c < 0x20)
                            rg_buf_printf(out, "\\x%02x", (unsigned char)c);
                        else
                            rg_buf_putc(out, c);
                    }
                    rg_buf_putc(out, '"');
                } else {
                    snprintf(spec + sl, sizeof(spec) - sl, ".*s");
                    if (prec >= 0 && (size_t)prec < tmp.len)
                        tmp.len = (size_t)prec;
                    if (width >= 0 || prec >= 0) {
                        /* Go pads by runes; ASCII values are the norm here. */
                        char sp2[16];
                        snprintf(sp2, sizeof(sp2), "%%%s%d.*s", strchr(spec, '-') ? "-" : "",
                                 width < 0 ? 0 : width);
                        rg_buf_printf(out, sp2, (int)tmp.len, tmp.data ? tmp.data : "");
                    } else {
                        rg_buf_append(out, tmp.data ? tmp.data : "", tmp.len);
                    }
                }
                rg_buf_cleanup(&tmp);
            }
            break;
        case 't':
            if (a->k != V_BOOL)
                goto bad;
            rg_buf_puts(out, a->i ? "true" : "false");
            break;
        default:
        bad:
            rg_buf_printf(out, "%%!%c(%s=", verb, type_name(a));
            print_val(e, a, out);
            rg_buf_putc(out, ')');
        }
    }
    if (ai < nargs) {
        rg_buf_puts(out, "%!(EXTRA ");
        for (size_t i = ai; i < nargs; i++) {
            rg_buf_printf(out, "%s%s=", i > ai ? ", " : "", type_name(&args[i]));
            print_val(e, &args[i], out);
        }
        rg_buf_putc(out, ')');
    }
    return 0;
}

/* net.SplitHostPort: "host:port" or "[v6]:port"; splits @s in place. */
static int split_hostport(char *s, char **host, char **port)
{
    char *colon;
    if (s[0] == '[') {
        char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return 0;
        *close = '\0';
        *host = s + 1;
        *port = close + 2;
        return 1;
    }
    colon = strrchr(s, ':');
    if (!colon || strchr(s, ':') != colon)
        return 0;
    *colon = '\0';
    *host = s;
    *port = colon + 1;
    return 1;
}

/* net.ParseIP, enough to tell addresses from names: dotted quads and anything with
 * a colon (IPv6). */
static int is_ip(const char *h)
{
    int dots = 0, digits = 0;
    if (strchr(h, ':'))
        return 1;
    for (; *h; h++) {
        if (*h == '.') {
            if (!digits)
                return 0;
            dots++;
            digits = 0;
        } else if (isdigit((unsigned char)*h) && digits < 3) {
            digits++;
        } else {
            return 0;
        }
    }
    return dots == 3 && digits;
}

static int call_fn(struct exec *e, const struct fn *fn, struct val *a, size_t n,
                   struct val *out)
{
    struct rg_buf b = { 0 };
    double f = 0;
    char *s1, *s2, *s3;
    int rc = 0, c;

    if ((int)n < fn->min || (fn->max >= 0 && (int)n > fn->max)) {
        if (fn->min == fn->max)
            return xerr(e, "wrong number of args for %s: want %d got %zu", fn->name, fn->min, n);
        return xerr(e, "wrong number of args for %s: want at least %d got %zu", fn->name,
                    fn->min, n);
    }
    switch (fn->id) {
    case F_AND:
    case F_OR:
        for (size_t i = 0; i < n; i++) {
            *out = a[i];
            if (truth(&a[i]) != (fn->id == F_AND))
                break;
        }
        return 0;
    case F_NOT:
        *out = (struct val){ .k = V_BOOL, .i = !truth(&a[0]) };
        return 0;
    case F_EQ:
        if (n < 2)
            return xerr(e, "error calling eq: missing argument for comparison");
        *out = (struct val){ .k = V_BOOL };
        for (size_t i = 1; i < n; i++) {
            if ((rc = cmp_vals(e, "eq", &a[0], &a[i], &c)))
                return rc;
            if (c == 0) {
                out->i = 1;
                break;
            }
        }
        return 0;
    case F_NE:
    case F_LT:
    case F_LE:
    case F_GT:
    case F_GE:
        if ((rc = cmp_vals(e, fn->name, &a[0], &a[1], &c)))
            return rc;
        *out = (struct val){ .k = V_BOOL };
        switch (fn->id) {
        case F_NE: out->i = c != 0; break;
        case F_LT: out->i = c == -1; break;
        case F_LE: out->i = c == -1 || c == 0; break;
        case F_GT: out->i = c == 1; break;
        default: out->i = c == 1 || c == 0; break;
        }
        return 0;
    case F_LEN:
        if (a[0].k != V_STR && a[0].k != V_MAP && a[0].k != V_SAMPLES)
            return xerr(e, "error calling len: len of type %s", type_name(&a[0]));
        *out = (struct val){ .k = V_INT, .i = (int64_t)a[0].n };
        return 0;
    case F_INDEX:
        *out = a[0];
        for (size_t i = 1; i < n; i++) {
            if (out->k != V_MAP)
                return xerr(e, "error calling index: can't index item of type %s",
                            type_name(out));
            if (a[i].k != V_STR)
                return xerr(e, "error calling index: value has type %s; should be string",
                            type_name(&a[i]));
            if (!map_get(out->m, out->n, a[i].s, a[i].n, out))
                *out = vstr("", 0);
        }
        return 0;
    case F_PRINT:
    case F_PRINTLN:
        for (size_t i = 0; i < n; i++) {
            /* Sprint adds spaces between operands when neither is a string;
             * Sprintln always does. */
            if (i && (fn->id == F_PRINTLN || (a[i - 1].k != V_STR && a[i].k != V_STR)))
                rg_buf_putc(&b, ' ');
            print_val(e, &a[i], &b);
        }
        if (fn->id == F_PRINTLN)
            rg_buf_putc(&b, '\n');
        break;
    case F_PRINTF:
        if (a[0].k != V_STR)
            return xerr(e, "wrong type for value; expected string; got %s", type_name(&a[0]));
        go_printf(e, a[0].s, a[0].n, a + 1, n - 1, &b);
        break;
    case F_HUMANIZE:
    case F_HUMANIZE1024:
    case F_HUMANIZE_DURATION:
    case F_HUMANIZE_PERCENTAGE:
    case F_HUMANIZE_TIMESTAMP:
        if ((rc = to_float(e, fn->name, &a[0], &f)))
            return rc;
        switch (fn->id) {
        case F_HUMANIZE: rc = rg_template_humanize(f, &b); break;
        case F_HUMANIZE1024: rc = rg_template_humanize1024(f, &b); break;
        case F_HUMANIZE_DURATION: rc = rg_template_humanize_duration(f, &b); break;
        case F_HUMANIZE_PERCENTAGE: rc = rg_template_humanize_percentage(f, &b); break;
        default: rc = rg_template_humanize_timestamp(f, &b); break;
        }
        if (rc == RG_EINVAL) {
            rg_buf_cleanup(&b);
            return xerr(e, "error calling humanizeTimestamp: %g cannot be represented as a "
                        "nanoseconds timestamp since it overflows int64", f);
        }
        break;
    case F_TO_UPPER:
    case F_TO_LOWER:
    case F_TITLE:
    case F_SAFE_HTML:
    case F_STRIP_PORT:
    case F_STRIP_DOMAIN:
        if ((rc = need_str(e, fn->name, &a[0], &s1)))
            return rc;
        if (fn->id == F_STRIP_PORT || fn->id == F_STRIP_DOMAIN) {
            char *host, *port;
            if (!split_hostport(s1, &host, &port)) {
                host = s1;
                port = NULL;
            }
            if (fn->id == F_STRIP_PORT) {
                rg_buf_puts(&b, port ? host : s1);
            } else if (is_ip(host)) {
                rg_buf_puts(&b, a[0].s);
            } else {
                char *dot = strchr(host, '.');
                if (dot)
                    *dot = '\0';
                if (port && strchr(host, ':'))
                    rg_buf_printf(&b, "[%s]:%s", host, port);
                else if (port)
                    rg_buf_printf(&b, "%s:%s", host, port);
                else
                    rg_buf_puts(&b, host);
            }
            break;
        }
        {
            int prev_sep = 1;
            for (size_t i = 0; i < a[0].n; i++) {
                unsigned char ch = (unsigned char)s1[i];
                if (fn->id == F_TO_UPPER)
                    ch = (unsigned char)toupper(ch);
                else if (fn->id == F_TO_LOWER)
                    ch = (unsigned char)tolower(ch);
                else if (fn->id == F_TITLE) {
                    /* strings.Title: a letter after a separator is upper-cased;
                     * letters, digits, '_' and non-ASCII bytes are not separators. */
                    if (prev_sep)
                        ch = (unsigned char)toupper(ch);
                    prev_sep = !(isalnum(ch) || ch == '_' || ch >= 0x80);
                }
                rg_buf_putc(&b, (char)ch);
            }
        }
        break;
    case F_RE_REPLACE_ALL:
        if ((rc = need_str(e, fn->name, &a[0], &s1)) || (rc = need_str(e, fn->name, &a[1], &s2)) ||
            (rc = need_str(e, fn->name, &a[2], &s3)))
            return rc;
        return fn_replace(e, s1, s2, s3, out);
    case F_MATCH: {
        pcre2_code *re;
        pcre2_match_data *md;
        int m;
        if ((rc = need_str(e, fn->name, &a[0], &s1)) || (rc = need_str(e, fn->name, &a[1], &s2)))
            return rc;
        if (!(re = re_compile(e, "match", s1)))
            return RG_EINVAL;
        if (!(md = pcre2_match_data_create_from_pattern(re, NULL))) {
            pcre2_code_free(re);
            return RG_ENOMEM;
        }
        m = pcre2_match(re, (PCRE2_SPTR)s2, a[1].n, 0, 0, md, NULL);
        pcre2_match_data_free(md);
        pcre2_code_free(re);
        *out = (struct val){ .k = V_BOOL, .i = m > 0 };
        return 0;
    }
    case F_EXTERNAL_URL:
        rg_buf_puts(&b, e->data->external_url ? e->data->external_url : "");
        break;
    case F_PATH_PREFIX:
        break;
    case F_GRAPH_LINK:
    case F_TABLE_LINK:
        if ((rc = need_str(e, fn->name, &a[0], &s1)))
            return rc;
        rg_buf_puts(&b, "/graph?g0.expr=");
        url_escape(&b, s1);
        rg_buf_puts(&b, fn->id == F_GRAPH_LINK ? "&g0.tab=0" : "&g0.tab=1");
        break;
    case F_PARSE_DURATION: {
        /* Go's time.ParseDuration is not PromQL's; the common unit forms suffice:
         * a sequence of decimal numbers with ns, us, ms, s, m, h. */
        double total = 0;
        const char *q;
        int neg = 0;
        if ((rc = need_str(e, fn->name, &a[0], &s1)))
            return rc;
        q = s1;
        if (*q == '-' || *q == '+')
            neg = *q++ == '-';
        if (strcmp(q, "0") == 0) {
            *out = (struct val){ .k = V_FLOAT, .f = 0 };
            return 0;
        }
        if (!*q)
            return xerr(e, "error calling parseDuration: time: invalid duration \"%s\"", s1);
        while (*q) {
            char *endp;
            double v = strtod(q, &endp);
            double unit;
            if (endp == q || *q == '+' || *q == '-')
                return xerr(e, "error calling parseDuration: time: invalid duration \"%s\"", s1);
            q = endp;
            if (strncmp(q, "ns", 2) == 0) unit = 1e-9, q += 2;
            else if (strncmp(q, "us", 2) == 0) unit = 1e-6, q += 2;
            else if (strncmp(q, "ms", 2) == 0) unit = 1e-3, q += 2;
            else if (*q == 's') unit = 1, q++;
            else if (*q == 'm') unit = 60, q++;
            else if (*q == 'h') unit = 3600, q++;
            else
                return xerr(e, "error calling parseDuration: time: unknown unit in duration "
                            "\"%s\"", s1);
            total += v * unit;
        }
        *out = (struct val){ .k = V_FLOAT, .f = neg ? -total : total };
        return 0;
    }
    case F_QUERY: {
        const struct rg_template_sample *res = NULL;
        size_t nres = 0;
        if ((rc = need_str(e, fn->name, &a[0], &s1)))
            return rc;
        if (!e->data->query)
            return xerr(e, "error calling query: no query engine available");
        if (e->data->query(e->data->query_ud, s1, &res, &nres, &b)) {
            rc = xerr(e, "error calling query: %s", b.data ? b.data : "query failed");
            rg_buf_cleanup(&b);
            return rc;
        }
        rg_buf_cleanup(&b);
        *out = (struct val){ .k = V_SAMPLES, .q = res, .n = nres };
        return 0;
    }
    case F_FIRST:
        if (a[0].k != V_SAMPLES)
            return xerr(e, "wrong type for value; expected template.queryResult; got %s",
                        type_name(&a[0]));
        if (a[0].n == 0)
            return xerr(e, "error calling first: first() called on vector with no elements");
        *out = (struct val){ .k = V_SAMPLE, .q = &a[0].q[0] };
        return 0;
    case F_LABEL:
    case F_VALUE:
    case F_STRVALUE: {
        const struct val *smp = &a[fn->id == F_LABEL ? 1 : 0];
        if (smp->k != V_SAMPLE)
            return xerr(e, "wrong type for value; expected *template.sample; got %s",
                        type_name(smp));
        if (fn->id == F_VALUE) {
            *out = (struct val){ .k = V_FLOAT, .f = smp->q->value };
            return 0;
        }
        /* strvalue reads the __value__ label (string results); label any other. */
        if (fn->id == F_LABEL) {
            if ((rc = need_str(e, fn->name, &a[0], &s1)))
                return rc;
        } else {
            s1 = "__value__";
        }
        if (!map_get(smp->q->labels, smp->q->nlabels, s1, strlen(s1), out))
            *out = vstr("", 0);
        return 0;
    }
    case F_SORT_BY_LABEL: {
        struct rg_template_sample *sorted;
        if ((rc = need_str(e, fn->name, &a[0], &s1)))
            return rc;
        if (a[1].k != V_SAMPLES)
            return xerr(e, "wrong type for value; expected template.queryResult; got %s",
                        type_name(&a[1]));
        sorted = pool_alloc(&e->pool, (a[1].n ? a[1].n : 1) * sizeof(*sorted));
        if (!sorted)
            return RG_ENOMEM;
        if (a[1].n)
            memcpy(sorted, a[1].q, a[1].n * sizeof(*sorted));
        /* A stable insertion sort: results are small and ties keep their order. */
        for (size_t i = 1; i < a[1].n; i++) {
            struct rg_template_sample x = sorted[i];
            struct val xv, yv;
            size_t j = i;
            if (!map_get(x.labels, x.nlabels, s1, strlen(s1), &xv))
                xv = vstr("", 0);
            while (j > 0) {
                int c;
                if (!map_get(sorted[j - 1].labels, sorted[j - 1].nlabels, s1, strlen(s1), &yv))
                    yv = vstr("", 0);
                c = strcmp(yv.s, xv.s);
                if (c <= 0)
                    break;
                sorted[j] = sorted[j - 1];
                j--;
            }
            sorted[j] = x;
        }
        *out = (struct val){ .k = V_SAMPLES, .q = sorted, .n = a[1].n };
        return 0;
    }
    case F_UNAVAILABLE:
        return xerr(e, "error calling %s: function %s is not available in alert templates here",
                    fn->name, fn->name);
    }
    if (!b.data && rg_buf_reserve(&b, 1))
        return RG_ENOMEM;
    rc = vstr_buf(e, &b, out);
    rg_buf_cleanup(&b);
    return rc;
}

static int eval_arg(struct exec *e, const struct arg *a, const struct val *dot, struct val *out)
{
    int rc;
    switch (a->kind) {
    case A_DOT: *out = *dot; break;
    case A_VAR: {
        const struct val *v = var_lookup(e, a->name);
        if (!v)
            return xerr(e, "undefined variable: %s", a->name);
        *out = *v;
        break;
    }
    case A_STRING: *out = vstr(a->str, a->slen); break;
    case A_INT: *out = (struct val){ .k = V_INT, .i = a->i }; break;
    case A_FLOAT: *out = (struct val){ .k = V_FLOAT, .f = a->f }; break;
    case A_BOOL: *out = (struct val){ .k = V_BOOL, .i = a->i }; break;
    case A_NIL: return xerr(e, "nil is not a command");
    case A_PIPE:
        if ((rc = eval_pipe(e, a->pipe, dot, out)))
            return rc;
        break;
    case A_FUNC: {
        const struct fn *fn = fn_lookup(a->name, strlen(a->name));
        if ((rc = call_fn(e, fn, NULL, 0, out)))
            return rc;
        break;
    }
    }
    for (size_t i = 0; i < a->nchain; i++)
        if ((rc = field(e, out, a->chain[i])))
            return rc;
    return 0;
}

static int eval_cmd(struct exec *e, const struct cmd *c, const struct val *dot,
                    const struct val *final, struct val *out)
{
    const struct arg *first = c->args[0];
    const struct cmd *saved = e->at;
    int rc = 0;

    e->at = c;
    if (first->kind == A_FUNC) {
        const struct fn *fn = fn_lookup(first->name, strlen(first->name));
        size_t n = c->nargs - 1 + (final ? 1 : 0);
        struct val *args = n ? calloc(n, sizeof(*args)) : NULL;
        if (n && !args)
            return RG_ENOMEM;
        /* and/or evaluate lazily: stop at the first deciding argument. */
        if (fn->id == F_AND || fn->id == F_OR) {
            size_t k = 0;
            for (size_t i = 1; i < c->nargs; i++) {
                if ((rc = eval_arg(e, c->args[i], dot, &args[k])))
                    goto done;
                k++;
                if (truth(&args[k - 1]) != (fn->id == F_AND))
                    break;
            }
            if (k == c->nargs - 1 && final)
                args[k++] = *final;
            if (k == 0) {
                rc = call_fn(e, fn, args, 0, out);
                goto done;
            }
            *out = args[k - 1];
            goto done;
        }
        for (size_t i = 1; i < c->nargs; i++)
            if ((rc = eval_arg(e, c->args[i], dot, &args[i - 1])))
                goto done;
        if (final)
            args[n - 1] = *final;
        rc = call_fn(e, fn, args, n, out);
    done:
        free(args);
        e->at = saved;
        return rc;
    }
    if (c->nargs > 1 || final) {
        size_t n = 0;
        while (n < c->srclen && !is_space(c->src[n]) && c->src[n] != '|')
            n++;
        rc = xerr(e, "can't give argument to non-function %.*s", (int)n, c->src);
        e->at = saved;
        return rc;
    }
    rc = eval_arg(e, first, dot, out);
    e->at = saved;
    return rc;
}

static int eval_pipe(struct exec *e, const struct pipe *p, const struct val *dot,
                     struct val *out)
{
    struct val v = { .k = V_NONE };
    int rc;

    if (++e->depth > MAX_DEPTH)
        return xerr(e, "exceeded maximum template depth (%d)", MAX_DEPTH);
    for (size_t i = 0; i < p->ncmds; i++) {
        struct val r;
        if ((rc = eval_cmd(e, p->cmds[i], dot, i ? &v : NULL, &r)))
            return rc;
        v = r;
    }
    e->depth--;
    for (size_t i = 0; i < p->ndecl; i++) {
        if (p->assign) {
            struct val *t = var_lookup(e, p->decl[i]);
            if (t)
                *t = v;
        } else if ((rc = var_set(e, p->decl[i], &v))) {
            return rc;
        }
    }
    *out = v;
    return 0;
}

static int exec_list(struct exec *e, struct node *const *list, size_t n, const struct val *dot);

static int exec_node(struct exec *e, const struct node *nd, const struct val *dot)
{
    struct val v;
    size_t scope = e->nvars;
    int rc = 0;

    if (e->out.len > MAX_OUTPUT)
        return xerr(e, "output exceeds %u bytes", MAX_OUTPUT);
    switch (nd->kind) {
    case N_TEXT:
        return rg_buf_append(&e->out, nd->text, nd->len);
    case N_ACTION:
        if ((rc = eval_pipe(e, nd->pipe, dot, &v)))
            return rc;
        /* An action that declares or assigns a variable prints nothing. */
        if (nd->pipe->ndecl == 0)
            rc = print_val(e, &v, &e->out);
        return rc;
    case N_IF:
    case N_WITH:
        if ((rc = eval_pipe(e, nd->pipe, dot, &v)))
            break;
        if (truth(&v))
            rc = exec_list(e, nd->list, nd->nlist, nd->kind == N_WITH ? &v : dot);
        else
            rc = exec_list(e, nd->elist, nd->nelist, dot);
        break;
    case N_RANGE: {
        const struct pipe *p = nd->pipe;
        struct pipe bare = *p;
        bare.ndecl = 0;
        if ((rc = eval_pipe(e, &bare, dot, &v)))
            break;
        if (v.k == V_INT) {
            /* Go 1.22: range over an integer counts from 0. */
            for (int64_t i = 0; i < v.i && !rc; i++) {
                struct val iv = { .k = V_INT, .i = i };
                size_t s2 = e->nvars;
                if (p->ndecl && (rc = var_set(e, p->decl[0], &iv)))
                    break;
                rc = exec_list(e, nd->list, nd->nlist, &iv);
                e->nvars = s2;
            }
        } else if (v.k == V_MAP) {
            struct rg_label *s = v.n ? malloc(v.n * sizeof(*s)) : NULL;
            if (v.n && !s) {
                rc = RG_ENOMEM;
                break;
            }
            if (v.n) {
                memcpy(s, v.m, v.n * sizeof(*s));
                qsort(s, v.n, sizeof(*s), label_cmp);
            }
            for (size_t i = 0; i < v.n && !rc; i++) {
                struct val kv = vstr(s[i].name, strlen(s[i].name));
                struct val vv = vstr(s[i].value, strlen(s[i].value));
                size_t s2 = e->nvars;
                if (p->ndecl == 1)
                    rc = var_set(e, p->decl[0], &vv);
                else if (p->ndecl == 2 && !(rc = var_set(e, p->decl[0], &kv)))
                    rc = var_set(e, p->decl[1], &vv);
                if (!rc)
                    rc = exec_list(e, nd->list, nd->nlist, &vv);
                e->nvars = s2;
            }
            free(s);
            if (!rc && v.n == 0)
                rc = exec_list(e, nd->elist, nd->nelist, dot);
        } else if (v.k == V_SAMPLES) {
            for (size_t i = 0; i < v.n && !rc; i++) {
                struct val iv = { .k = V_INT, .i = (int64_t)i };
                struct val sv = { .k = V_SAMPLE, .q = &v.q[i] };
                size_t s2 = e->nvars;
                if (p->ndecl == 1)
                    rc = var_set(e, p->decl[0], &sv);
                else if (p->ndecl == 2 && !(rc = var_set(e, p->decl[0], &iv)))
                    rc = var_set(e, p->decl[1], &sv);
                if (!rc)
                    rc = exec_list(e, nd->list, nd->nlist, &sv);
                e->nvars = s2;
            }
            if (!rc && v.n == 0)
                rc = exec_list(e, nd->elist, nd->nelist, dot);
        } else if (v.k == V_NONE) {
            rc = exec_list(e, nd->elist, nd->nelist, dot);
        } else {
            rc = xerr(e, "range can't iterate over %s", type_name(&v));
        }
        break;
    }
    }
    e->nvars = scope;
    return rc;
}

static int exec_list(struct exec *e, struct node *const *list, size_t n, const struct val *dot)
{
    int rc;
    if (++e->depth > MAX_DEPTH)
        return xerr(e, "exceeded maximum template depth (%d)", MAX_DEPTH);
    for (size_t i = 0; i < n; i++)
        if ((rc = exec_node(e, list[i], dot)))
            return rc;
    e->depth--;
    return 0;
}

int rg_template_exec(const struct rg_template *t, const struct rg_template_data *data,
                     struct rg_buf *out)
{
    struct exec e = { .t = t, .data = data };
    struct val root = { .k = V_DATA };
    struct val v;
    int rc;

    if (t->is_static) {
        for (size_t i = 0; i < t->nlist; i++)
            if (rg_buf_append(out, t->list[i]->text, t->list[i]->len))
                return RG_ENOMEM;
        return 0;
    }
    rc = var_set(&e, "$", &root);
    v = (struct val){ .k = V_MAP, .m = data->labels, .n = data->nlabels };
    if (!rc)
        rc = var_set(&e, "$labels", &v);
    v = (struct val){ .k = V_MAP, .m = data->external_labels, .n = data->nexternal };
    if (!rc)
        rc = var_set(&e, "$externalLabels", &v);
    v = vstr(data->external_url ? data->external_url : "",
             data->external_url ? strlen(data->external_url) : 0);
    if (!rc)
        rc = var_set(&e, "$externalURL", &v);
    v = (struct val){ .k = V_FLOAT, .f = data->value };
    if (!rc)
        rc = var_set(&e, "$value", &v);
    if (!rc)
        rc = exec_list(&e, t->list, t->nlist, &root);
    if (rc == 0) {
        rc = rg_buf_append(out, e.out.data ? e.out.data : "", e.out.len);
    } else if (rc == RG_EINVAL) {
        rg_buf_printf(out, "<error expanding template: error executing template %s: %s>",
                      t->name, e.err.data ? e.err.data : "");
    }
    free(e.vars);
    pool_free(&e.pool);
    rg_buf_cleanup(&e.out);
    rg_buf_cleanup(&e.err);
    return rc;
}

int rg_template_expand(const char *name, const char *text, const struct rg_template_data *data,
                       struct rg_buf *out)
{
    struct rg_template *t = NULL;
    struct rg_buf err = { 0 };
    int rc = rg_template_compile(name, text, &t, &err);

    if (rc == RG_EPARSE) {
        rg_buf_printf(out, "<error expanding template: error parsing template %s: %s>", name,
                      err.data ? err.data : "");
        rg_buf_cleanup(&err);
        return RG_EINVAL;
    }
    rg_buf_cleanup(&err);
    if (rc)
        return rc;
    rc = rg_template_exec(t, data, out);
    rg_template_free(t);
    return rc;
}
