/* promql/print.c - the canonical text of a PromQL tree (Prometheus' String()).
 *
 * The output is what Prometheus' printer produces for the same tree, so that
 * rules and logs read the same in both systems and parse(print(parse(x))) is a
 * fixed point: numbers in shortest round-trip decimal without exponent, strings
 * Go-quoted, matchers sorted by their text with the metric name pulled in front
 * of the braces, durations in model.Duration form, "@" before "offset", and
 * only the parentheses that were written (they are nodes of the tree).
 */
#include <stdlib.h>
#include <string.h>

#include "promql/ast.h"
#include "promql/lex.h"
#include "util/err.h"

static const char *const binop_names[] = {
    "+", "-", "*", "/", "%", "^", "atan2", "==", "!=", ">", "<", ">=", "<=",
    "and", "or", "unless",
};

static const char *const aggop_names[] = {
    "sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk",
    "bottomk", "quantile", "count_values", "limitk", "limit_ratio",
};

static const char *const match_op_names[] = { "=", "!=", "=~", "!~" };

/* A name Prometheus would accept unquoted: [a-zA-Z_][a-zA-Z0-9_]*. */
static int legacy_label_name(const char *s)
{
    if (!*s)
        return 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (i > 0 && c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

static int put_label(struct rg_buf *out, const char *s)
{
    if (legacy_label_name(s))
        return rg_buf_puts(out, s);
    return rg__promql_quote(out, s, strlen(s));
}

static int put_labels(struct rg_buf *out, char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((i > 0 && rg_buf_puts(out, ", ")) || put_label(out, v[i]))
            return RG_ENOMEM;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int put_matchers(struct rg_buf *out, const struct rg_promql_node *n)
{
    const char *name = n->u.sel.name;
    struct rg_buf tmp = { 0 };
    size_t *offs, k = 0, i;
    char **strs = NULL;
    int err = RG_ENOMEM;

    offs = malloc((n->u.sel.nmatchers + 1) * sizeof(*offs));
    if (!offs)
        return RG_ENOMEM;
    for (i = 0; i < n->u.sel.nmatchers; i++) {
        const struct rg_promql_matcher *m = &n->u.sel.matchers[i];
        /* The name written outside the braces is printed there, not as a matcher. */
        if (name && m->op == RG_MATCH_EQ && strcmp(m->name, "__name__") == 0 &&
            strcmp(m->value, name) == 0 && m->value[0])
            continue;
        offs[k++] = tmp.len;
        if (put_label(&tmp, m->name) || rg_buf_puts(&tmp, match_op_names[m->op]) ||
            rg__promql_quote(&tmp, m->value, strlen(m->value)) || rg_buf_putc(&tmp, '\0'))
            goto out;
    }
    if (k == 0) {
        err = 0;
        goto out;
    }
    strs = malloc(k * sizeof(*strs));
    if (!strs)
        goto out;
    for (i = 0; i < k; i++)
        strs[i] = tmp.data + offs[i];
    qsort(strs, k, sizeof(*strs), cmp_str);
    if (rg_buf_putc(out, '{'))
        goto out;
    for (i = 0; i < k; i++)
        if ((i > 0 && rg_buf_putc(out, ',')) || rg_buf_puts(out, strs[i]))
            goto out;
    err = rg_buf_putc(out, '}');
out:
    free(strs);
    free(offs);
    rg_buf_cleanup(&tmp);
    return err;
}

static int put_at(struct rg_buf *out, enum rg_promql_at at, int64_t at_ms)
{
    switch (at) {
    case RG_PROMQL_AT_TIME:
        return rg_buf_printf(out, " @ %.3f", (double)at_ms / 1000.0);
    case RG_PROMQL_AT_START:
        return rg_buf_puts(out, " @ start()");
    case RG_PROMQL_AT_END:
        return rg_buf_puts(out, " @ end()");
    default:
        return 0;
    }
}

static int put_offset(struct rg_buf *out, int64_t ms)
{
    if (ms == 0)
        return 0;
    if (rg_buf_puts(out, " offset "))
        return RG_ENOMEM;
    return rg_promql_format_duration(ms, out);
}

static int print_node(const struct rg_promql_node *n, struct rg_buf *out)
{
    size_t i;

    switch (n->kind) {
    case RG_PROMQL_NUMBER:
        return rg__promql_format_float(out, n->u.number);
    case RG_PROMQL_STRING:
        return rg__promql_quote(out, n->u.string, strlen(n->u.string));
    case RG_PROMQL_SELECTOR:
        if ((n->u.sel.name && rg_buf_puts(out, n->u.sel.name)) || put_matchers(out, n) ||
            put_at(out, n->u.sel.at, n->u.sel.at_ms) || put_offset(out, n->u.sel.offset_ms))
            return RG_ENOMEM;
        return 0;
    case RG_PROMQL_MATRIX:
        if ((n->u.sel.name && rg_buf_puts(out, n->u.sel.name)) || put_matchers(out, n) ||
            rg_buf_putc(out, '[') || rg_promql_format_duration(n->u.sel.range_ms, out) ||
            rg_buf_putc(out, ']') || put_at(out, n->u.sel.at, n->u.sel.at_ms) ||
            put_offset(out, n->u.sel.offset_ms))
            return RG_ENOMEM;
        return 0;
    case RG_PROMQL_SUBQUERY:
        if (print_node(n->u.sub.expr, out) || rg_buf_putc(out, '[') ||
            rg_promql_format_duration(n->u.sub.range_ms, out) || rg_buf_putc(out, ':') ||
            (n->u.sub.step_ms != 0 && rg_promql_format_duration(n->u.sub.step_ms, out)) ||
            rg_buf_putc(out, ']') || put_at(out, n->u.sub.at, n->u.sub.at_ms) ||
            put_offset(out, n->u.sub.offset_ms))
            return RG_ENOMEM;
        return 0;
    case RG_PROMQL_CALL:
        if (rg_buf_puts(out, n->u.call.func ? n->u.call.func->name : "") ||
            rg_buf_putc(out, '('))
            return RG_ENOMEM;
        for (i = 0; i < n->u.call.nargs; i++)
            if ((i > 0 && rg_buf_puts(out, ", ")) || print_node(n->u.call.args[i], out))
                return RG_ENOMEM;
        return rg_buf_putc(out, ')');
    case RG_PROMQL_AGGREGATE:
        if (rg_buf_puts(out, aggop_names[n->u.agg.op]))
            return RG_ENOMEM;
        if (n->u.agg.without || n->u.agg.ngrouping > 0) {
            if (rg_buf_puts(out, n->u.agg.without ? " without (" : " by (") ||
                put_labels(out, n->u.agg.grouping, n->u.agg.ngrouping) ||
                rg_buf_puts(out, ") "))
                return RG_ENOMEM;
        }
        if (rg_buf_putc(out, '('))
            return RG_ENOMEM;
        if (n->u.agg.param && (print_node(n->u.agg.param, out) || rg_buf_puts(out, ", ")))
            return RG_ENOMEM;
        if (print_node(n->u.agg.expr, out))
            return RG_ENOMEM;
        return rg_buf_putc(out, ')');
    case RG_PROMQL_BINARY: {
        const struct rg_promql_matching *m = n->u.bin.matching;
        int grouped = m && (m->card == RG_PROMQL_MANY_TO_ONE ||
                            m->card == RG_PROMQL_ONE_TO_MANY);
        if (print_node(n->u.bin.lhs, out) || rg_buf_putc(out, ' ') ||
            rg_buf_puts(out, binop_names[n->u.bin.op]) ||
            (n->u.bin.return_bool && rg_buf_puts(out, " bool")))
            return RG_ENOMEM;
        if (m && (m->nlabels > 0 || m->on || grouped)) {
            if (rg_buf_puts(out, m->on ? " on (" : " ignoring (") ||
                put_labels(out, m->labels, m->nlabels) || rg_buf_putc(out, ')'))
                return RG_ENOMEM;
        }
        if (grouped) {
            if (rg_buf_puts(out, m->card == RG_PROMQL_MANY_TO_ONE ? " group_left ("
                                                                 : " group_right (") ||
                put_labels(out, m->include, m->ninclude) || rg_buf_putc(out, ')'))
                return RG_ENOMEM;
        }
        if (rg_buf_putc(out, ' ') || print_node(n->u.bin.rhs, out))
            return RG_ENOMEM;
        return 0;
    }
    case RG_PROMQL_UNARY:
        if (rg_buf_putc(out, '-') || print_node(n->u.un.expr, out))
            return RG_ENOMEM;
        return 0;
    case RG_PROMQL_PAREN:
        if (rg_buf_putc(out, '(') || print_node(n->u.un.expr, out) || rg_buf_putc(out, ')'))
            return RG_ENOMEM;
        return 0;
    }
    return 0;
}

int rg_promql_print(const struct rg_promql_node *node, struct rg_buf *out)
{
    if (!node)
        return 0;
    return print_node(node, out);
}
