/* rules/check.h - `rollgate check`: validates configuration and rule files.
 *
 * A file with a top-level `groups:` key is a Prometheus rule file, checked as
 * Prometheus would load it (PromQL included). Any other file is a rollgate
 * configuration, checked with everything it names: included files, the rule files
 * of `rule_files:`, and the checklist (signals, phases, triggers, deployments).
 * Every problem is reported as "file:line:col: message", all of them in one run.
 */
#ifndef RG_RULES_CHECK_H
#define RG_RULES_CHECK_H

#include "util/buf.h"

/** Checks @path. Appends one line per problem to @problems; with @dump and no
 *  problem, appends the canonical form to @dump_out (rule file: the rule groups;
 *  configuration: the checklist rollgate will judge with, then each rule file).
 *  @summary (may be NULL) receives a one-line description of what was found.
 *  Returns 0 when the file is valid, RG_EINVAL when it is not, RG_ENOMEM. */
int rg_check_file(const char *path, int dump, struct rg_buf *problems, struct rg_buf *dump_out,
                  struct rg_buf *summary);

#endif
