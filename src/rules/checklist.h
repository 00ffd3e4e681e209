/* rules/checklist.h - the deployment checklist: signals, phases, gates, triggers,
 * deployments and discovery, parsed from the configuration.
 *
 * The checklist is the data model behind every verdict. Signals are named PromQL
 * templates in which the literal text `<selector>` stands for a deployment's label
 * matchers and `<window>` for the phase's observation window; a set of bundled
 * signals (error_ratio, p99_latency, cpu_utilisation, ...) is always present and
 * built from metric names that the `metrics:` section may change. Phases are an
 * ordered list; each has a traffic weight, a minimum and optional maximum
 * observation time, a minimum request count, gates (conditions that must hold
 * continuously before promotion) and rollback triggers (conditions that, held for
 * their `for`, roll the deployment back). `triggers:` apply to every phase.
 * `deployments:` name label selectors and the phases they go through; with
 * `discovery:` every value of a label (default `job`) on incoming series becomes a
 * deployment too. A signal or a deployment may name a `source:` (a server of the
 * `sources:` section, query/client.h): its queries then go to that server instead of
 * the in-memory store; a signal's own source wins over its deployment's. Names are
 * checked against the sources with rg_checklist_check_sources(), since parsing the
 * sources reads secret files and this module does no I/O.
 *
 * Parsing walks the sections of every configuration document (the main file and
 * its `include:`d files, via rg_config_each_section) in two passes: first every
 * definition is read, then references (gate signals, deployment phases) are
 * resolved, so that order and file boundaries do not matter. Every problem found is
 * reported as "file:line:col: message" (all of them, not only the first). Each
 * signal template is validated by instantiating it with a dummy selector and
 * parsing the result as PromQL. rg_checklist_dump() prints the effective checklist
 * in one canonical text form, which golden tests and `rollgate check --dump` use.
 *
 * Pure: no I/O besides what the configuration already read. A parsed checklist is
 * immutable and may be shared; any thread.
 */
#ifndef RG_RULES_CHECKLIST_H
#define RG_RULES_CHECKLIST_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "util/buf.h"

/** Comparison of a check: value OP threshold. */
enum rg_checklist_op {
    RG_CHECKLIST_LT,   /* <  */
    RG_CHECKLIST_LE,   /* <= */
    RG_CHECKLIST_GT,   /* >  */
    RG_CHECKLIST_GE,   /* >= */
    RG_CHECKLIST_EQ,   /* == */
    RG_CHECKLIST_NE,   /* != */
};

enum rg_checklist_kind {
    RG_CHECKLIST_GATE,      /* must hold for promotion */
    RG_CHECKLIST_TRIGGER,   /* rolls back when it holds for `for` */
};

/** What a gate counts as while its signal has no data (a NaN counts as no data). */
enum rg_checklist_no_data {
    RG_CHECKLIST_NODATA_INCONCLUSIVE,  /* default: "no_data"; inconclusive after the bound */
    RG_CHECKLIST_NODATA_OK,            /* held: e.g. a service without a queue */
    RG_CHECKLIST_NODATA_FAILING,       /* failing */
};

/** Where a definition was written, for messages. */
struct rg_checklist_pos {
    const char *path;   /* borrowed from the checklist's path table */
    int line;
    int col;
};

struct rg_checklist_signal {
    char *name;          /* owned; [a-zA-Z_][a-zA-Z0-9_]* */
    char *expr;          /* owned; PromQL template with <selector> and <window> */
    char *unit;          /* owned; "ratio", "seconds", "count", ... or "" */
    char *description;   /* owned; may be "" */
    int builtin;         /* 1: bundled and not overridden by the configuration */
    struct rg_checklist_pos pos;
    char *source;        /* owned; `source:` server name, NULL: the deployment's */
    struct rg_checklist_pos source_pos;
};

struct rg_checklist_check {
    char *name;                     /* owned; defaults to the signal name */
    enum rg_checklist_kind kind;
    char *signal;                   /* owned; name of a signal of the checklist */
    enum rg_checklist_op op;
    int has_threshold;              /* a gate may compare against the baseline only */
    double threshold;
    int has_baseline;               /* "no worse than baseline by more than margin" */
    int baseline_relative;          /* 1: margin is a fraction of the baseline value */
    double baseline_margin;         /* absolute units of the signal, or a fraction */
    int64_t for_ms;                 /* triggers: how long the condition must hold */
    enum rg_checklist_no_data no_data;   /* gates only */
    char *description;              /* owned; may be "" */
    struct rg_checklist_pos pos;
};

struct rg_checklist_phase {
    char *name;                     /* owned */
    double traffic_weight;          /* percent, 0..100 */
    int64_t min_observation_ms;     /* gates must hold this long continuously */
    int64_t max_observation_ms;     /* 0: unbounded (full rollout, post-deployment watch) */
    double min_requests;            /* requests needed in the phase before promotion */
    int64_t no_data_timeout_ms;     /* gates without data this long: inconclusive; 5 m */
    struct rg_checklist_check *gates;      /* owned array */
    size_t ngates;
    struct rg_checklist_check *triggers;   /* owned array: the phase's own triggers */
    size_t ntriggers;
    char *description;              /* owned; may be "" */
    struct rg_checklist_pos pos;
};

struct rg_checklist_deployment {
    char *name;                     /* owned */
    char *selector;                 /* owned; label matchers: job="checkout",track="canary" */
    char *baseline_selector;        /* owned; NULL when absent */
    size_t *phases;                 /* owned; indexes into the checklist's phases */
    size_t nphases;
    struct rg_checklist_pos pos;
    char *source;                   /* owned; `source:` server name, NULL: in-memory */
    struct rg_checklist_pos source_pos;
};

/** Metric names and labels the bundled signals are built from. */
struct rg_checklist_metrics {
    char http_requests[128];        /* http_requests_total */
    char code_label[128];           /* code */
    char error_codes[128];          /* regex of error codes: 5.. */
    char http_duration_bucket[128]; /* http_request_duration_seconds_bucket */
    char resources[32];             /* "cadvisor" or "node_exporter" */
    char cpu_usage[128];            /* container_cpu_usage_seconds_total */
    char cpu_quota[128];            /* container_spec_cpu_quota */
    char cpu_period[128];           /* container_spec_cpu_period */
    char memory_usage[128];         /* container_memory_working_set_bytes */
    char memory_limit[128];         /* container_spec_memory_limit_bytes */
    char node_cpu[128];             /* node_cpu_seconds_total */
    char node_memory_available[128];/* node_memory_MemAvailable_bytes */
    char node_memory_total[128];    /* node_memory_MemTotal_bytes */
    char database_job[128];         /* database */
    char db_connections[128];       /* pg_stat_activity_count */
    char db_max_connections[128];   /* pg_settings_max_connections */
    char queue_depth[128];          /* queue_depth */
    char alerts[128];               /* ALERTS */
    char rate_window[32];           /* 1m: range of rate() in the bundled signals */
};

struct rg_checklist_discovery {
    int enabled;                    /* default 1 */
    char label[128];                /* job */
    char **exclude;                 /* owned; values never made deployments (the
                                     * database job is always excluded) */
    size_t nexclude;
    int64_t interval_ms;            /* shortest time between scans; default 5 s */
    size_t *phases;                 /* owned; phases of discovered deployments (default all) */
    size_t nphases;
};

struct rg_checklist {
    char **paths;                   /* owned: the documents' paths, for positions */
    size_t npaths;
    struct rg_checklist_signal *signals;   /* owned; bundled ones first, then the rest */
    size_t nsignals;
    struct rg_checklist_phase *phases;     /* owned; in the order written */
    size_t nphases;
    struct rg_checklist_check *triggers;   /* owned; shared by every phase */
    size_t ntriggers;
    struct rg_checklist_deployment *deployments;   /* owned; in the order written */
    size_t ndeployments;
    struct rg_checklist_metrics metrics;
    struct rg_checklist_discovery discovery;
    int64_t evaluation_interval_ms; /* global.evaluation_interval; default 1 s */
};

/** The top-level sections this module reads: signals, phases, triggers,
 *  deployments, metrics, discovery (and global.evaluation_interval). */
extern const char *const rg_checklist_sections[];

/** Parses the checklist sections of every document of @cfg (borrowed during the
 *  call only; the checklist copies what it keeps). When no phase is configured the
 *  bundled phases of the production checklist are used. On success *@out is a new
 *  checklist (free with rg_checklist_free()). On error returns RG_EINVAL (or
 *  RG_ENOMEM) and appends one "file:line:col: message\n" line per problem to @err. */
int rg_checklist_parse(const struct rg_config *cfg, struct rg_checklist **out,
                       struct rg_buf *err);

/** Frees @cl and all it owns. NULL is a no-op. */
void rg_checklist_free(struct rg_checklist *cl);

/** Checks every `source:` name of @cl's signals and deployments with @known (1 when
 *  the name is a configured source). Appends one "file:line:col: ... unknown source"
 *  line per unknown name to @err. Returns 0 or RG_EINVAL. */
int rg_checklist_check_sources(const struct rg_checklist *cl,
                               int (*known)(const char *name, void *ud), void *ud,
                               struct rg_buf *err);

/** Appends the canonical text form of @cl to @out. Returns 0 or RG_ENOMEM. */
int rg_checklist_dump(const struct rg_checklist *cl, struct rg_buf *out);

/** Looks a signal up by name; NULL when unknown. */
const struct rg_checklist_signal *rg_checklist_signal_find(const struct rg_checklist *cl,
                                                           const char *name);
/** Index of phase @name, or -1. */
long rg_checklist_phase_find(const struct rg_checklist *cl, const char *name);
/** Index of deployment @name, or -1. */
long rg_checklist_deployment_find(const struct rg_checklist *cl, const char *name);

/** Appends @tmpl with every `<selector>` replaced by @selector and every
 *  `<window>` by the duration @window_ms (Prometheus' canonical form) to @out.
 *  Returns 0 or RG_ENOMEM. */
int rg_checklist_expand(const char *tmpl, const char *selector, int64_t window_ms,
                        struct rg_buf *out);

/** The window `<window>` stands for in phase @p: its minimum observation, at
 *  least 1 m and at most 1 h (the store's default retention). */
int64_t rg_checklist_window(const struct rg_checklist_phase *p);

/** "<", "<=", ">", ">=", "==", "!=". */
const char *rg_checklist_op_name(enum rg_checklist_op op);
/** "gate" or "trigger". */
const char *rg_checklist_kind_name(enum rg_checklist_kind kind);
/** Applies @op: 1 when @value OP @threshold holds (0 for NaN operands except !=). */
int rg_checklist_compare(enum rg_checklist_op op, double value, double threshold);

#endif
