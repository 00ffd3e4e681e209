/* rules/rulefile.h - Prometheus rule files: parsing, validation, canonical dump.
 *
 * A rule file is Prometheus' format, read unchanged:
 *
 *   groups:
 *     - name: node
 *       interval: 30s          # optional; default global.evaluation_interval
 *       query_offset: 1m       # optional (Prometheus 2.53)
 *       limit: 100             # optional; 0 = no limit
 *       labels: {team: infra}  # optional group labels (Prometheus 3)
 *       source: prometheus     # optional; rollgate's extension: evaluate the group's
 *                              # queries on this server of `sources:` (query mode)
 *       rules:
 *         - alert: HostDown    # or  record: job:up:sum
 *           expr: up == 0
 *           for: 5m
 *           keep_firing_for: 2m
 *           labels: {severity: page}
 *           annotations: {summary: "{{ $labels.instance }} is down"}
 *
 * The YAML tree (config/yaml.h) is walked with every node's position, and the
 * checks of Prometheus' rulefmt (RuleGroups.Validate, RuleNode.Validate) run with
 * its messages, each prefixed "file:line:col: " from the offending node, and every
 * problem of a file is reported, not just the first. Expressions are parsed with
 * rg_promql_parse() and kept; label and annotation templates are compiled
 * (rules/template.h) and kept. The canonical dump prints a file in a fixed key
 * order with canonical durations and expressions, for golden tests and
 * `rollgate check --dump`. The one key Prometheus does not know, `source`, is only
 * read here; rules/manager.c resolves the name against `sources:`. Pure apart from
 * rg_rulefile_load() and rg_rulefile_detect() reading one file and
 * rg_rulefile_each_path() globbing; no global state, any thread.
 * A struct rg_rulefile owns everything it points to.
 */
#ifndef RG_RULES_RULEFILE_H
#define RG_RULES_RULEFILE_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct rg_promql_node;
struct rg_template;
struct rg_config;

enum rg_rule_type {
    RG_RULE_ALERT,
    RG_RULE_RECORD,
};

/** A label or annotation as written, with its compiled template (alert rules only;
 *  NULL for recording rules and group labels). */
struct rg_rule_kv {
    char *name;                    /* owned */
    char *value;                   /* owned */
    struct rg_template *tmpl;      /* owned or NULL */
};

struct rg_rule {
    enum rg_rule_type type;
    char *name;                    /* owned: the alert or record name */
    char *expr_text;               /* owned: expr as written */
    struct rg_promql_node *expr;   /* owned: parsed expression */
    int64_t for_ms;                /* alert: hold duration; 0 = fire at once */
    int64_t keep_firing_for_ms;    /* alert: 0 = off */
    struct rg_rule_kv *labels;     /* owned, sorted by name, unique */
    size_t nlabels;
    struct rg_rule_kv *annotations;  /* owned, sorted by name, unique */
    size_t nannotations;
    int line, col;                 /* position of the rule in its file */
};

struct rg_rule_group {
    char *name;                    /* owned */
    char *file;                    /* owned: path of the file it came from */
    int64_t interval_ms;           /* 0: not set (the global default applies) */
    int64_t query_offset_ms;       /* meaningful when has_query_offset */
    int has_query_offset;
    int64_t limit;                 /* 0: no limit */
    struct rg_rule_kv *labels;     /* owned, sorted; group labels (Prometheus 3) */
    size_t nlabels;
    struct rg_rule *rules;         /* owned */
    size_t nrules;
    int line, col;
    char *source;                  /* owned: `source:` (rollgate's extension), or NULL
                                    * for the in-memory store */
    int source_line, source_col;   /* position of the source's value */
};

struct rg_rulefile {
    char *path;                    /* owned */
    struct rg_rule_group *groups;  /* owned */
    size_t ngroups;
};

/** Parses the text of a rule file named @path. Every problem is appended to @err
 *  as one "path:line:col: message\n" line; with any problem RG_EPARSE is returned
 *  and *@out is left untouched. Returns 0, RG_EPARSE or RG_ENOMEM. On success *@out
 *  (owned by the caller; rg_rulefile_free) holds the file. */
int rg_rulefile_parse(const char *path, const char *text, size_t len, struct rg_rulefile **out,
                      struct rg_buf *err);

/** Reads and parses @path (at most 64 MiB). A missing or unreadable file is one
 *  "path: message" error line and RG_EIO. Otherwise as rg_rulefile_parse(). */
int rg_rulefile_load(const char *path, struct rg_rulefile **out, struct rg_buf *err);

/** True when @path holds a Prometheus rule file rather than a rollgate configuration:
 *  its YAML parses to a map with a top-level `groups` key. For `rollgate check FILE`,
 *  which accepts both. Unreadable or unparsable files give 0. */
int rg_rulefile_detect(const char *path);

/** Frees a rule file. NULL is a no-op. */
void rg_rulefile_free(struct rg_rulefile *f);

/** Appends the canonical YAML form of @f: keys in the order name, interval,
 *  query_offset, limit, labels, source, rules and record|alert, expr, for, keep_firing_for,
 *  labels, annotations; absent optional keys omitted; strings double-quoted;
 *  durations as rg_promql_format_duration(); expressions as rg_promql_print();
 *  labels and annotations sorted by name. Returns 0 or RG_ENOMEM. */
int rg_rulefile_dump(const struct rg_rulefile *f, struct rg_buf *out);

/** Calls @cb with every rule file path the configuration names: each entry of every
 *  `rule_files:` section (main file and included files) is a path or glob(3)
 *  pattern relative to the file that lists it; patterns expand in sorted order, a
 *  pattern matching nothing names no file (as Prometheus), a plain path is passed on
 *  even when missing (so loading reports it). Problems with the section itself are
 *  appended to @err as "file:line:col: message" lines and make the result
 *  RG_EPARSE after every entry was seen. A non-zero return from @cb stops the walk
 *  and is returned. */
int rg_rulefile_each_path(const struct rg_config *cfg,
                          int (*cb)(const char *path, void *ud), void *ud, struct rg_buf *err);

/** True when @s is a valid legacy metric name ([a-zA-Z_:][a-zA-Z0-9_:]*). */
int rg_rule_valid_metric_name(const char *s);
/** True when @s is a valid label name ([a-zA-Z_][a-zA-Z0-9_]*). */
int rg_rule_valid_label_name(const char *s);

#endif
