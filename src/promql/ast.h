/* promql/ast.h - the syntax tree of a PromQL expression (Prometheus 3.x grammar).
 *
 * rg_promql_parse() builds it; the evaluator walks it; rg_promql_print() turns it
 * back into canonical text. A tree owns everything below its root: every string,
 * array and child node is malloc'd and released by rg_promql_node_free(). Compiled
 * regular expressions (PCRE2, JIT) live in the matchers and are freed with them.
 * Times and durations are int64 milliseconds.
 */
#ifndef RG_PROMQL_AST_H
#define RG_PROMQL_AST_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/buf.h"

enum rg_promql_vtype {
    RG_PROMQL_VT_NONE = 0,
    RG_PROMQL_VT_SCALAR,
    RG_PROMQL_VT_VECTOR,   /* instant vector */
    RG_PROMQL_VT_MATRIX,   /* range vector */
    RG_PROMQL_VT_STRING,
};

enum rg_promql_kind {
    RG_PROMQL_NUMBER,      /* 1, 0x1f, 1e3, Inf, NaN; also a duration used as a number */
    RG_PROMQL_STRING,      /* "..." '...' `...` */
    RG_PROMQL_SELECTOR,    /* instant vector selector: foo{a="b"} */
    RG_PROMQL_MATRIX,      /* range selector: foo{a="b"}[5m] (sel holds the selector) */
    RG_PROMQL_SUBQUERY,    /* expr[range:step] */
    RG_PROMQL_CALL,        /* f(args) */
    RG_PROMQL_AGGREGATE,   /* sum by (a) (expr) */
    RG_PROMQL_BINARY,      /* a + b */
    RG_PROMQL_UNARY,       /* -a (and +a, which the parser folds away) */
    RG_PROMQL_PAREN,       /* (a) */
};

enum rg_promql_binop {
    RG_PROMQL_ADD, RG_PROMQL_SUB, RG_PROMQL_MUL, RG_PROMQL_DIV, RG_PROMQL_MOD,
    RG_PROMQL_POW, RG_PROMQL_ATAN2,
    RG_PROMQL_EQL, RG_PROMQL_NEQ, RG_PROMQL_GTR, RG_PROMQL_LSS, RG_PROMQL_GTE,
    RG_PROMQL_LTE,
    RG_PROMQL_AND, RG_PROMQL_OR, RG_PROMQL_UNLESS,
};

enum rg_promql_aggop {
    RG_PROMQL_SUM, RG_PROMQL_AVG, RG_PROMQL_MIN, RG_PROMQL_MAX, RG_PROMQL_COUNT,
    RG_PROMQL_GROUP, RG_PROMQL_STDDEV, RG_PROMQL_STDVAR, RG_PROMQL_TOPK,
    RG_PROMQL_BOTTOMK, RG_PROMQL_QUANTILE, RG_PROMQL_COUNT_VALUES, RG_PROMQL_LIMITK,
    RG_PROMQL_LIMIT_RATIO,
};

/** Every function the engine knows. The parser checks arity and argument types
 *  against rg_promql_func_lookup(); the evaluator switches on the id. */
enum rg_promql_func_id {
    RG_FN_ABS, RG_FN_ABSENT, RG_FN_ABSENT_OVER_TIME, RG_FN_AVG_OVER_TIME, RG_FN_CEIL,
    RG_FN_CHANGES, RG_FN_CLAMP, RG_FN_CLAMP_MAX, RG_FN_CLAMP_MIN, RG_FN_COUNT_OVER_TIME,
    RG_FN_DAY_OF_MONTH, RG_FN_DAY_OF_WEEK, RG_FN_DAY_OF_YEAR, RG_FN_DAYS_IN_MONTH,
    RG_FN_DELTA, RG_FN_DERIV, RG_FN_EXP, RG_FN_FLOOR, RG_FN_HISTOGRAM_QUANTILE,
    RG_FN_HOUR, RG_FN_IDELTA, RG_FN_INCREASE, RG_FN_IRATE, RG_FN_LABEL_JOIN,
    RG_FN_LABEL_REPLACE, RG_FN_LAST_OVER_TIME, RG_FN_LN, RG_FN_LOG10, RG_FN_LOG2,
    RG_FN_MAD_OVER_TIME, RG_FN_MAX_OVER_TIME, RG_FN_MIN_OVER_TIME, RG_FN_MINUTE,
    RG_FN_MONTH, RG_FN_PREDICT_LINEAR, RG_FN_PRESENT_OVER_TIME, RG_FN_QUANTILE_OVER_TIME,
    RG_FN_RATE, RG_FN_RESETS, RG_FN_ROUND, RG_FN_SCALAR, RG_FN_SGN, RG_FN_SORT,
    RG_FN_SORT_DESC, RG_FN_SQRT, RG_FN_STDDEV_OVER_TIME, RG_FN_STDVAR_OVER_TIME,
    RG_FN_SUM_OVER_TIME, RG_FN_TIME, RG_FN_TIMESTAMP, RG_FN_VECTOR, RG_FN_YEAR,
    RG_FN_SIN, RG_FN_COS, RG_FN_TAN, RG_FN_ASIN, RG_FN_ACOS, RG_FN_ATAN, RG_FN_SINH,
    RG_FN_COSH, RG_FN_TANH, RG_FN_ASINH, RG_FN_ACOSH, RG_FN_ATANH, RG_FN_DEG, RG_FN_RAD,
    RG_FN_PI, RG_FN_SORT_BY_LABEL, RG_FN_SORT_BY_LABEL_DESC,
    RG_FN__COUNT
};

/** A function's signature. Variadic functions accept @nargs minus the optional
 *  trailing ones, up to @max_args (-1: unbounded, as label_join). */
struct rg_promql_func {
    const char *name;
    enum rg_promql_func_id id;
    enum rg_promql_vtype arg_types[6];
    int nargs;            /* declared arguments */
    int min_args;         /* fewer than nargs when trailing ones are optional */
    int max_args;         /* -1 for unbounded */
    enum rg_promql_vtype ret;
};

/** Looks a function up by name; NULL when unknown. Static data, never freed. */
const struct rg_promql_func *rg_promql_func_lookup(const char *name);

/** A label matcher as written; @re is the compiled, fully anchored pattern for
 *  =~ and !~ (pcre2_code *, owned), NULL otherwise. */
struct rg_promql_matcher {
    enum rg_match_op op;
    char *name;           /* owned */
    char *value;          /* owned; unescaped */
    void *re;             /* owned pcre2_code *, JIT-compiled */
    void *md;             /* owned pcre2_match_data * for @re */
};

/** Fully anchored regex match for a store rg_matcher: @re is a struct
 *  rg_promql_matcher *. Returns 1 on match, else 0. */
int rg_promql_matcher_re_match(void *re, const char *s, size_t len);

enum rg_promql_at {
    RG_PROMQL_AT_NONE = 0,
    RG_PROMQL_AT_TIME,    /* @ <number> (at_ms holds it) */
    RG_PROMQL_AT_START,   /* @ start() */
    RG_PROMQL_AT_END,     /* @ end() */
};

enum rg_promql_card {
    RG_PROMQL_ONE_TO_ONE, RG_PROMQL_MANY_TO_ONE, RG_PROMQL_ONE_TO_MANY,
    RG_PROMQL_MANY_TO_MANY,   /* set operators and/or/unless */
};

/** Vector matching of a binary operation between two vectors. */
struct rg_promql_matching {
    enum rg_promql_card card;
    int on;               /* 1: on(labels); 0: ignoring(labels) (or neither given) */
    char **labels;        /* owned */
    size_t nlabels;
    char **include;       /* group_left/group_right(include), owned */
    size_t ninclude;
};

struct rg_promql_node {
    enum rg_promql_kind kind;
    int pos;              /* byte offset of the node's first character in the input */
    union {
        double number;                  /* NUMBER */
        char *string;                   /* STRING, owned, unescaped */
        struct {                        /* SELECTOR and MATRIX */
            char *name;                 /* metric name or NULL; also present as a matcher */
            struct rg_promql_matcher *matchers;  /* owned array */
            size_t nmatchers;
            int64_t range_ms;           /* MATRIX only */
            int64_t offset_ms;          /* may be negative */
            enum rg_promql_at at;
            int64_t at_ms;              /* AT_TIME */
        } sel;
        struct {                        /* SUBQUERY */
            struct rg_promql_node *expr;
            int64_t range_ms;
            int64_t step_ms;            /* 0: the global evaluation interval */
            int64_t offset_ms;
            enum rg_promql_at at;
            int64_t at_ms;
        } sub;
        struct {                        /* CALL */
            const struct rg_promql_func *func;
            struct rg_promql_node **args;   /* owned array of owned nodes */
            size_t nargs;
        } call;
        struct {                        /* AGGREGATE */
            enum rg_promql_aggop op;
            struct rg_promql_node *expr;
            struct rg_promql_node *param;   /* topk's k, quantile's q, count_values' label; or NULL */
            char **grouping;            /* owned */
            size_t ngrouping;
            int without;                /* 1: without(...), 0: by(...) or none */
            int has_grouping;           /* 1 when by/without was written (even empty) */
        } agg;
        struct {                        /* BINARY */
            enum rg_promql_binop op;
            struct rg_promql_node *lhs;
            struct rg_promql_node *rhs;
            int return_bool;            /* comparison with the bool modifier */
            struct rg_promql_matching *matching;  /* owned; NULL unless both sides are vectors */
        } bin;
        struct {                        /* UNARY (minus) and PAREN */
            struct rg_promql_node *expr;
        } un;
    } u;
};

/** Parses @input into a tree (*@out, owned by the caller). On a syntax or type
 *  error returns RG_EPARSE and writes into @err (capacity @errlen) a message of
 *  the form "1:17: parse error: unexpected ..." (line:column, 1-based, column in
 *  bytes). Returns 0, RG_EPARSE or RG_ENOMEM. */
int rg_promql_parse(const char *input, struct rg_promql_node **out, char *err, size_t errlen);

/** The value type an expression yields. */
enum rg_promql_vtype rg_promql_node_type(const struct rg_promql_node *node);

/** Frees a tree. NULL is a no-op. */
void rg_promql_node_free(struct rg_promql_node *node);

/** Appends the canonical text of @node to @out (Prometheus' String() form:
 *  `sum by (job) (rate(foo{a="b"}[5m]))`). Returns 0 or RG_ENOMEM. */
int rg_promql_print(const struct rg_promql_node *node, struct rg_buf *out);

/** Parses a PromQL duration ("1h30m", "500ms", "1d") into ms.
 *  Returns 0 or RG_EINVAL. */
int rg_promql_parse_duration(const char *s, size_t len, int64_t *out_ms);

/** Writes a duration in Prometheus' canonical form ("1h30m", "500ms") into @out. */
int rg_promql_format_duration(int64_t ms, struct rg_buf *out);

#endif
