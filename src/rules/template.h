/* rules/template.h - the Go text/template subset Prometheus alert templates use.
 *
 * Alert labels and annotations are Go templates ("{{ $labels.instance }} is down,
 * {{ $value | humanizePercentage }} errors"). This module compiles such a text into a
 * small syntax tree (recursive descent over a token stream, as text/template's own
 * lexer and parser) and executes it against the alert's data with a tree-walking
 * interpreter. Supported: text, {{ }} actions with the trim markers {{- and -}},
 * comments, variables ($labels, $value, $externalLabels, $externalURL and any
 * `$x := pipeline`), fields (.Labels.x, .Value, .ExternalLabels.x, .ExternalURL),
 * pipelines, parenthesised pipelines, string/number/bool literals, if/else if/else,
 * with, range over maps, and the functions and, or, not, eq, ne, lt, le, gt, ge,
 * len, index, print, printf, humanize, humanize1024, humanizeDuration,
 * humanizePercentage, humanizeTimestamp, toUpper, toLower, title, reReplaceAll,
 * match, safeHtml, stripPort, stripDomain, externalURL, pathPrefix, graphLink,
 * tableLink, parseDuration, and query, first, label, value, strvalue and
 * sortByLabel over query results (through a callback, so that this module stays
 * free of the engine). The humanize functions reproduce Prometheus'
 * template/template.go output exactly (SI prefixes with %.4g, "1d 2h 3m 4s").
 * The few other Go or Prometheus functions (html, js, args, ...) are known to the
 * parser, so that rule files using them pass `rollgate check`, and fail at
 * expansion time.
 *
 * Like Prometheus, an expansion error yields the text
 * "<error expanding template: ...>" instead of failing the rule. Pure: no I/O, no
 * clock, no global mutable state, so any thread may use it. A compiled template is
 * immutable and may be executed any number of times, also concurrently.
 */
#ifndef RG_RULES_TEMPLATE_H
#define RG_RULES_TEMPLATE_H

#include <stddef.h>

#include "store/store.h"
#include "util/buf.h"

struct rg_template;   /* opaque compiled template */

/** One sample of a `query` result: .Labels and .Value in a template. */
struct rg_template_sample {
    const struct rg_label *labels;
    size_t nlabels;
    double value;
};

/** Runs the PromQL @expr for the template's `query` function. On success stores
 *  *@n samples in *@out, which must stay valid until the rg_template_exec() call
 *  returns (the callback's owner frees them afterwards); on failure appends a
 *  message to @err and returns non-zero. */
typedef int (*rg_template_query_fn)(void *ud, const char *expr,
                                    const struct rg_template_sample **out, size_t *n,
                                    struct rg_buf *err);

/** What a template sees: Prometheus' AlertTemplateData. Everything is borrowed for
 *  the duration of one rg_template_exec() call. Label arrays need not be sorted. */
struct rg_template_data {
    const struct rg_label *labels;           /* $labels, .Labels */
    size_t nlabels;
    const struct rg_label *external_labels;  /* $externalLabels, .ExternalLabels */
    size_t nexternal;
    const char *external_url;                /* $externalURL, .ExternalURL; NULL = "" */
    double value;                            /* $value, .Value */
    rg_template_query_fn query;              /* `query`; NULL: the function fails */
    void *query_ud;
};

/** Compiles @text. @name names the template in messages, as Prometheus does
 *  ("__alert_" + alert name). On a syntax error returns RG_EPARSE and appends
 *  "template: <name>:<line>: <message>" to @err (may be NULL). Returns 0, RG_EPARSE
 *  or RG_ENOMEM; *@out (owned by the caller) is set on success only. */
int rg_template_compile(const char *name, const char *text, struct rg_template **out,
                        struct rg_buf *err);

/** Frees a compiled template. NULL is a no-op. */
void rg_template_free(struct rg_template *t);

/** True when @t is plain text without any action (its expansion is the text). */
int rg_template_is_static(const struct rg_template *t);

/** Executes @t with @data and appends the result to @out. On an execution error the
 *  text appended is "<error expanding template: ...>" and RG_EINVAL is returned (the
 *  output is still usable, as in Prometheus). Returns 0, RG_EINVAL or RG_ENOMEM. */
int rg_template_exec(const struct rg_template *t, const struct rg_template_data *data,
                     struct rg_buf *out);

/** Compiles and executes in one go; a syntax error also yields the
 *  "<error expanding template: ...>" text. Returns as rg_template_exec(). */
int rg_template_expand(const char *name, const char *text, const struct rg_template_data *data,
                       struct rg_buf *out);

/** Syntax check for `rollgate check`: 0, or RG_EPARSE with the message appended to
 *  @err (no trailing newline). */
int rg_template_check(const char *name, const char *text, struct rg_buf *err);

/* ---- Prometheus' formatting functions, exposed for tests and other modules ---- */

/** humanize: SI prefixes (k, M, G, ... / m, u, n, ...) with %.4g. */
int rg_template_humanize(double v, struct rg_buf *out);
/** humanize1024: binary prefixes (ki, Mi, ...) with %.4g. */
int rg_template_humanize1024(double v, struct rg_buf *out);
/** humanizeDuration: seconds as "1d 2h 3m 4s", "1.5s" or "500ms". */
int rg_template_humanize_duration(double seconds, struct rg_buf *out);
/** humanizePercentage: v * 100 with %.4g and a '%'. */
int rg_template_humanize_percentage(double v, struct rg_buf *out);
/** humanizeTimestamp: Unix seconds as Go's time.Time String() in UTC
 *  ("2024-06-01 10:00:00.5 +0000 UTC"). */
int rg_template_humanize_timestamp(double v, struct rg_buf *out);

#endif
