/* promql/functions.c - the signature table of every PromQL function we know.
 *
 * One row per function: its Prometheus name, our id, the argument types, how
 * many arguments are required and allowed, and the result type. The parser
 * checks calls against it (arity first, then each argument's type; extra
 * arguments of a variadic function take the type of the last declared one) and
 * the evaluator switches on the id. The table is sorted by name and searched by
 * bisection. Static data; safe from any thread.
 */
#include <string.h>

#include "promql/ast.h"
#include "promql/syntax.h"

#define S RG_PROMQL_VT_SCALAR
#define V RG_PROMQL_VT_VECTOR
#define M RG_PROMQL_VT_MATRIX
#define T RG_PROMQL_VT_STRING

/* name, id, argument types, declared, minimum, maximum (-1: unbounded), result */
static const struct rg_promql_func funcs[] = {
    { "abs", RG_FN_ABS, { V }, 1, 1, 1, V },
    { "absent", RG_FN_ABSENT, { V }, 1, 1, 1, V },
    { "absent_over_time", RG_FN_ABSENT_OVER_TIME, { M }, 1, 1, 1, V },
    { "acos", RG_FN_ACOS, { V }, 1, 1, 1, V },
    { "acosh", RG_FN_ACOSH, { V }, 1, 1, 1, V },
    { "asin", RG_FN_ASIN, { V }, 1, 1, 1, V },
    { "asinh", RG_FN_ASINH, { V }, 1, 1, 1, V },
    { "atan", RG_FN_ATAN, { V }, 1, 1, 1, V },
    { "atanh", RG_FN_ATANH, { V }, 1, 1, 1, V },
    { "avg_over_time", RG_FN_AVG_OVER_TIME, { M }, 1, 1, 1, V },
    { "ceil", RG_FN_CEIL, { V }, 1, 1, 1, V },
    { "changes", RG_FN_CHANGES, { M }, 1, 1, 1, V },
    { "clamp", RG_FN_CLAMP, { V, S, S }, 3, 3, 3, V },
    { "clamp_max", RG_FN_CLAMP_MAX, { V, S }, 2, 2, 2, V },
    { "clamp_min", RG_FN_CLAMP_MIN, { V, S }, 2, 2, 2, V },
    { "cos", RG_FN_COS, { V }, 1, 1, 1, V },
    { "cosh", RG_FN_COSH, { V }, 1, 1, 1, V },
    { "count_over_time", RG_FN_COUNT_OVER_TIME, { M }, 1, 1, 1, V },
    { "day_of_month", RG_FN_DAY_OF_MONTH, { V }, 1, 0, 1, V },
    { "day_of_week", RG_FN_DAY_OF_WEEK, { V }, 1, 0, 1, V },
    { "day_of_year", RG_FN_DAY_OF_YEAR, { V }, 1, 0, 1, V },
    { "days_in_month", RG_FN_DAYS_IN_MONTH, { V }, 1, 0, 1, V },
    { "deg", RG_FN_DEG, { V }, 1, 1, 1, V },
    { "delta", RG_FN_DELTA, { M }, 1, 1, 1, V },
    { "deriv", RG_FN_DERIV, { M }, 1, 1, 1, V },
    { "exp", RG_FN_EXP, { V }, 1, 1, 1, V },
    { "floor", RG_FN_FLOOR, { V }, 1, 1, 1, V },
    { "histogram_quantile", RG_FN_HISTOGRAM_QUANTILE, { S, V }, 2, 2, 2, V },
    { "hour", RG_FN_HOUR, { V }, 1, 0, 1, V },
    { "idelta", RG_FN_IDELTA, { M }, 1, 1, 1, V },
    { "increase", RG_FN_INCREASE, { M }, 1, 1, 1, V },
    { "irate", RG_FN_IRATE, { M }, 1, 1, 1, V },
    { "label_join", RG_FN_LABEL_JOIN, { V, T, T, T }, 4, 3, -1, V },
    { "label_replace", RG_FN_LABEL_REPLACE, { V, T, T, T, T }, 5, 5, 5, V },
    { "last_over_time", RG_FN_LAST_OVER_TIME, { M }, 1, 1, 1, V },
    { "ln", RG_FN_LN, { V }, 1, 1, 1, V },
    { "log10", RG_FN_LOG10, { V }, 1, 1, 1, V },
    { "log2", RG_FN_LOG2, { V }, 1, 1, 1, V },
    { "mad_over_time", RG_FN_MAD_OVER_TIME, { M }, 1, 1, 1, V },
    { "max_over_time", RG_FN_MAX_OVER_TIME, { M }, 1, 1, 1, V },
    { "min_over_time", RG_FN_MIN_OVER_TIME, { M }, 1, 1, 1, V },
    { "minute", RG_FN_MINUTE, { V }, 1, 0, 1, V },
    { "month", RG_FN_MONTH, { V }, 1, 0, 1, V },
    { "pi", RG_FN_PI, { RG_PROMQL_VT_NONE }, 0, 0, 0, S },
    { "predict_linear", RG_FN_PREDICT_LINEAR, { M, S }, 2, 2, 2, V },
    { "present_over_time", RG_FN_PRESENT_OVER_TIME, { M }, 1, 1, 1, V },
    { "quantile_over_time", RG_FN_QUANTILE_OVER_TIME, { S, M }, 2, 2, 2, V },
    { "rad", RG_FN_RAD, { V }, 1, 1, 1, V },
    { "rate", RG_FN_RATE, { M }, 1, 1, 1, V },
    { "resets", RG_FN_RESETS, { M }, 1, 1, 1, V },
    { "round", RG_FN_ROUND, { V, S }, 2, 1, 2, V },
    { "scalar", RG_FN_SCALAR, { V }, 1, 1, 1, S },
    { "sgn", RG_FN_SGN, { V }, 1, 1, 1, V },
    { "sin", RG_FN_SIN, { V }, 1, 1, 1, V },
    { "sinh", RG_FN_SINH, { V }, 1, 1, 1, V },
    { "sort", RG_FN_SORT, { V }, 1, 1, 1, V },
    { "sort_by_label", RG_FN_SORT_BY_LABEL, { V, T }, 2, 1, -1, V },
    { "sort_by_label_desc", RG_FN_SORT_BY_LABEL_DESC, { V, T }, 2, 1, -1, V },
    { "sort_desc", RG_FN_SORT_DESC, { V }, 1, 1, 1, V },
    { "sqrt", RG_FN_SQRT, { V }, 1, 1, 1, V },
    { "stddev_over_time", RG_FN_STDDEV_OVER_TIME, { M }, 1, 1, 1, V },
    { "stdvar_over_time", RG_FN_STDVAR_OVER_TIME, { M }, 1, 1, 1, V },
    { "sum_over_time", RG_FN_SUM_OVER_TIME, { M }, 1, 1, 1, V },
    { "tan", RG_FN_TAN, { V }, 1, 1, 1, V },
    { "tanh", RG_FN_TANH, { V }, 1, 1, 1, V },
    { "time", RG_FN_TIME, { RG_PROMQL_VT_NONE }, 0, 0, 0, S },
    { "timestamp", RG_FN_TIMESTAMP, { V }, 1, 1, 1, V },
    { "vector", RG_FN_VECTOR, { S }, 1, 1, 1, V },
    { "year", RG_FN_YEAR, { V }, 1, 0, 1, V },
};

const struct rg_promql_func *rg_promql_func_lookup(const char *name)
{
    size_t lo = 0, hi = sizeof(funcs) / sizeof(funcs[0]);

    if (!name)
        return NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, funcs[mid].name);
        if (c == 0)
            return &funcs[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Exposed for the tests, which check that every id has exactly one row and that
 * the rows are sorted (bisection depends on it). */
const struct rg_promql_func *rg__promql_func_table(size_t *n)
{
    *n = sizeof(funcs) / sizeof(funcs[0]);
    return funcs;
}
