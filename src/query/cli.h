/* query/cli.h - the query-mode commands of the command line: eval, replay, check --source.
 *
 *   rollgate eval --config FILE --source URL|NAME [--deployment NAME] [--phase PHASE]
 *                 [--time T] [--output table|json]
 *   rollgate replay --config FILE --source URL|NAME --from T --to T [--step S]
 *                 [--deployment NAME] [--phase-at TIME=PHASE ...] [--output text|json]
 *   rollgate check --source URL|NAME FILE...
 *
 * Each command loads the configuration, resolves the source (a name from its
 * `sources:` section, or an http(s) URL used with default settings; it replaces every
 * `source:` the configuration gives signals and deployments), and hands a query
 * backend built on one runner of query/client.h (one loop, transport and client for
 * the whole command, so queries share connections and run concurrently in batches)
 * to query/eval.h or query/replay.h. Times are Unix seconds (with a fraction) or
 * RFC 3339; durations are PromQL durations ("15s", "1m30s") or seconds.
 *
 * Deployments: --deployment NAME picks one (a configured one, or the one discovery
 * would make: selector <discovery label>="NAME"); without it every configured
 * deployment is judged, and when the configuration names none, every value of the
 * discovery label on the source's request-count series (rg_query_targets_discover)
 * is a deployment, as the daemon's discovery would make them from remote-written
 * data.
 *
 * Exit codes. eval: 0 every gate passes, 1 a rollback trigger fires, 2 a gate fails or
 * the data is insufficient, 3 an error (usage, configuration, source, queries); with
 * several deployments the most severe answer wins, in the order 1, 3, 2, 0.
 * replay: 0 no rollback would have happened, 1 one would have, 3 an error (including
 * range queries that failed). check --source: 0 every signal returned data, 1 a file
 * is invalid or a signal returned no data or failed, 2 usage errors.
 *
 * Main thread only; these functions print to stdout and stderr and return the exit
 * code. argv[0] is the command's name.
 */
#ifndef RG_QUERY_CLI_H
#define RG_QUERY_CLI_H

#include <stdint.h>

/** `rollgate eval ...`; returns the exit code. */
int rg_query_cli_eval(int argc, char **argv);

/** `rollgate replay ...`; returns the exit code. */
int rg_query_cli_replay(int argc, char **argv);

/** `rollgate check --source URL FILE...`: validates each file like `rollgate check`,
 *  then runs every signal the configuration uses once, now, for each deployment (or
 *  with the selector <discovery label>=~".+" when none is configured) and every
 *  rule expression of its rule files, and reports those that return no data or fail.
 *  A signal without data that only gates with `no_data: ok` use is reported but not
 *  counted, and rule expressions count only when they fail (an alert condition that
 *  is false returns nothing). Returns the exit code. */
int rg_query_cli_check(int argc, char **argv);

/** True when the argument list of `rollgate check` asks for query mode (--source). */
int rg_query_cli_wants_check(int argc, char **argv);

/** Parses a time: Unix seconds with an optional fraction, or RFC 3339
 *  (2026-11-24T10:00:00Z, with optional fraction and numeric offset). Returns 0 or
 *  RG_EINVAL. */
int rg_query_cli_parse_time(const char *s, int64_t *out_ms);

/** Parses a duration: a PromQL duration ("15s", "1h30m") or seconds ("15", "0.5").
 *  Returns 0 or RG_EINVAL (also for zero and negative durations). */
int rg_query_cli_parse_duration(const char *s, int64_t *out_ms);

#endif
