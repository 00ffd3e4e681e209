/* promql/syntax.h - helpers shared by the PromQL parser and printer (internal).
 *
 * Matcher construction (PCRE2 compilation of =~ and !~ patterns) and the
 * release of a matcher's owned parts live in matcher.c; the parser uses them
 * to build selectors and rg_promql_node_free() to tear them down.
 */
#ifndef RG_PROMQL_SYNTAX_H
#define RG_PROMQL_SYNTAX_H

#include <stddef.h>

#include "promql/ast.h"

/** Compiles @m->value for RE/NRE matchers into @m->re and @m->md (fully
 *  anchored, dot matches newline, UTF-8). On a bad pattern returns RG_EINVAL
 *  and writes a Go-style message ("<problem>: `<pattern>`") into @msg (capacity
 *  @msglen); constructs RE2 lacks are refused the same way. Other ops: no-op.
 *  Returns 0, RG_EINVAL or RG_ENOMEM. */
int rg__promql_matcher_compile(struct rg_promql_matcher *m, char *msg, size_t msglen);

/** 1 when @m matches the empty string (the value of an absent label). */
int rg__promql_matcher_matches_empty(struct rg_promql_matcher *m);

/** Frees the owned parts of @m (name, value, compiled pattern); NULL is a no-op. */
void rg__promql_matcher_cleanup(struct rg_promql_matcher *m);

/** The whole function table (sorted by name) and its length in *@n; for tests. */
const struct rg_promql_func *rg__promql_func_table(size_t *n);

#endif
