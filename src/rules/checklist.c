/* rules/checklist.c - parses and dumps the deployment checklist (see checklist.h).
 *
 * Two passes over the documents of the configuration: the first reads every
 * definition (metrics, discovery, signals, phases, shared triggers, deployments)
 * into the model and remembers where each name was referenced; the second resolves
 * those references (gate and trigger signals, deployment and discovery phases)
 * once everything is known. The bundled signals are generated from the metric
 * names after the first pass, so a `metrics:` section anywhere changes them. When
 * no phase is configured, the bundled production phases are parsed from the
 * embedded text below with the same code, so they follow exactly the rules a
 * user-written file follows.
 */
#include "rules/checklist.h"

#include "config/yaml.h"
#include "promql/ast.h"
#include "util/err.h"
#include "util/json.h"
#include "util/metrics.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const rg_checklist_sections[] = {
    "signals", "phases", "triggers", "deployments", "metrics", "discovery", NULL,
};

/* The production checklist's phases, gates and triggers, used when a configuration
 * names no phase. rules/production-checklist.yaml holds the same text, and a test
 * checks that both parse to the same dump. */
static const char bundled_phases[] =
    "phases:\n"
    "  - name: canary\n"
    "    description: \"Phase 1 - canary, 5% of traffic, monitored for 15-30 min\"\n"
    "    traffic_weight: 5%\n"
    "    min_observation: 15m\n"
    "    max_observation: 30m\n"
    "    min_requests: 100\n"
    "    gates: &gates\n"
    "      - {signal: error_ratio, op: \"<\", threshold: 0.1%,"
    " description: \"Error rate < 0.1%\"}\n"
    "      - {signal: p99_latency, op: \"<\", threshold: 0.1,"
    " description: \"P99 latency < 100 ms\"}\n"
    "      - {signal: cpu_utilisation, op: \"<\", threshold: 70%, no_data: ok,"
    " description: \"CPU utilisation < 70%\"}\n"
    "      - {signal: memory_utilisation, op: \"<\", threshold: 75%, no_data: ok,"
    " description: \"Memory utilisation < 75%\"}\n"
    "      - {signal: database_connection_utilisation, op: \"<\", threshold: 80%, no_data: ok,"
    " description: \"Database connections healthy (pool below 80% of its maximum)\"}\n"
    "      - {signal: queue_depth, op: \"<\", threshold: 1000, no_data: ok,"
    " description: \"Queue depth normal (below 1000 waiting items)\"}\n"
    "      - {signal: critical_alerts, op: \"==\", threshold: 0, no_data: ok,"
    " description: \"No critical alert firing for the deployment\"}\n"
    "  - name: progressive\n"
    "    description: \"Phase 2 - progressive rollout, 25% of traffic, monitored for 15-30 min\"\n"
    "    traffic_weight: 25%\n"
    "    min_observation: 15m\n"
    "    max_observation: 30m\n"
    "    min_requests: 100\n"
    "    gates: *gates\n"
    "  - name: full\n"
    "    description: \"Phase 3 - full rollout, 100% of traffic, monitored for 1 hour or more\"\n"
    "    traffic_weight: 100%\n"
    "    min_observation: 1h\n"
    "    min_requests: 100\n"
    "    gates: *gates\n"
    "  - name: post_deployment\n"
    "    description: \"Post-deployment watch, T+24 hours\"\n"
    "    traffic_weight: 100%\n"
    "    min_observation: 24h\n"
    "    min_requests: 100\n"
    "    gates: *gates\n"
    "triggers:\n"
    "  - {name: error_ratio_rollback, signal: error_ratio_instant, op: \">\", threshold: 1%,"
    " description: \"Rollback: error rate > 1%\"}\n"
    "  - {name: p99_latency_rollback, signal: p99_latency_instant, op: \">\", threshold: 0.5,"
    " description: \"Rollback: API latency P99 > 500 ms\"}\n"
    "  - {name: database_unavailable, signal: database_up, op: \"==\", threshold: 0,"
    " description: \"Rollback: database unavailable\"}\n";

#define DEFAULT_NO_DATA_MS (5 * 60 * 1000)
#define DEFAULT_DISCOVERY_MS (5 * 1000)
#define MAX_NAME 128
#define MAX_TEXT 4096

/* A reference to a phase by name, resolved in the second pass. */
struct phase_ref {
    char *name;                 /* owned */
    struct rg_checklist_pos pos;
    long dep;                   /* deployment index, or -1 for discovery.phases */
    size_t idx;                 /* element of that phase list */
};

/* One problem, kept until the end so that messages come out in file order. */
struct message {
    const char *path;
    int line;
    int col;
    size_t seq;
    char *text;                 /* owned: the whole "path:line:col: message" line */
};

struct parser {
    struct rg_checklist *cl;
    struct rg_buf *err;
    struct message *msgs;       /* owned */
    int nerr;
    int nomem;
    const char *path;           /* current document, owned by cl->paths */
    struct phase_ref *refs;
    size_t nrefs;
    int have_phases;            /* a `phases:` section was seen */
    int have_triggers;
    int have_discovery_phases;
};

static void problem(struct parser *p, const struct rg_yaml_node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void vproblem(struct parser *p, const char *path, int line, int col, const char *fmt,
                     va_list ap)
{
    struct rg_buf b = { 0 };
    struct message *m = realloc(p->msgs, (size_t)(p->nerr + 1) * sizeof(*m));

    p->nerr++;
    if (!m) {
        p->nomem = 1;
        return;
    }
    p->msgs = m;
    rg_buf_printf(&b, "%s:%d:%d: ", path, line, col);
    rg_buf_vprintf(&b, fmt, ap);
    rg_buf_putc(&b, '\n');
    m[p->nerr - 1] = (struct message){ path, line, col, (size_t)p->nerr, b.data };
    if (!b.data)
        p->nomem = 1;
}

static void problem(struct parser *p, const struct rg_yaml_node *at, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vproblem(p, p->path, at ? at->line : 1, at ? at->col : 1, fmt, ap);
    va_end(ap);
}

static void problem_at(struct parser *p, const struct rg_checklist_pos *pos, const char *fmt,
                       ...) __attribute__((format(printf, 3, 4)));

static void problem_at(struct parser *p, const struct rg_checklist_pos *pos, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vproblem(p, pos->path, pos->line, pos->col, fmt, ap);
    va_end(ap);
}

/* Documents in configuration order (paths are interned in cl->paths), then line,
 * column and the order found. */
static const struct rg_checklist *sort_cl;

static size_t path_rank(const char *path)
{
    for (size_t i = 0; i < sort_cl->npaths; i++)
        if (sort_cl->paths[i] == path)
            return i;
    return sort_cl->npaths;
}

static int message_cmp(const void *a, const void *b)
{
    const struct message *x = a, *y = b;
    size_t px = path_rank(x->path), py = path_rank(y->path);

    if (px != py)
        return px < py ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void flush_messages(struct parser *p)
{
    size_t n = p->msgs ? (size_t)p->nerr : 0;

    sort_cl = p->cl;
    qsort(p->msgs, n, sizeof(*p->msgs), message_cmp);
    sort_cl = NULL;
    for (size_t i = 0; i < n; i++) {
        if (p->msgs[i].text)
            rg_buf_puts(p->err, p->msgs[i].text);
        free(p->msgs[i].text);
    }
    free(p->msgs);
    p->msgs = NULL;
}

static char *dup_or_flag(struct parser *p, const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        p->nomem = 1;
    return d;
}

static struct rg_checklist_pos pos_of(const struct parser *p, const struct rg_yaml_node *n)
{
    struct rg_checklist_pos pos = { p->path, n ? n->line : 1, n ? n->col : 1 };
    return pos;
}

static void *grow(struct parser *p, void *arr, size_t n, size_t size)
{
    void *a = realloc(arr, (n + 1) * size);
    if (!a) {
        p->nomem = 1;
        return NULL;
    }
    memset((char *)a + n * size, 0, size);
    return a;
}

/* ---- scalar readers ---------------------------------------------------------- */

static int is_ident(const char *s)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return 0;
    return 1;
}

static int is_metric_name(const char *s)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_' || *s == ':'))
        return 0;
    for (s++; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == ':'))
            return 0;
    return 1;
}

/* A scalar's text, or NULL after reporting @what as expected. */
static const char *scalar(struct parser *p, const struct rg_yaml_node *n, const char *what)
{
    if (!n || n->kind != RG_YAML_SCALAR || (!n->quoted && rg_yaml_is_null(n))) {
        problem(p, n, "%s: expected %s", what,
                n && n->kind == RG_YAML_MAP ? "a scalar, got a mapping"
                : n && n->kind == RG_YAML_SEQ ? "a scalar, got a list" : "a value");
        return NULL;
    }
    if (strlen(n->scalar) != n->scalar_len || n->scalar_len > MAX_TEXT) {
        problem(p, n, "%s: text contains a NUL byte or is longer than %d bytes", what,
                MAX_TEXT);
        return NULL;
    }
    return n->scalar;
}

/* A number, optionally followed by "%" (divided by 100). */
static int number(struct parser *p, const struct rg_yaml_node *n, const char *what,
                  double *out)
{
    const char *s = scalar(p, n, what);
    char *end;
    double v;

    if (!s)
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno == ERANGE || isnan(v)) {
        problem(p, n, "%s: expected a number, got \"%s\"", what, s);
        return -1;
    }
    if (*end == '%') {
        v /= 100;
        end++;
    }
    if (*end != '\0') {
        problem(p, n, "%s: expected a number, got \"%s\"", what, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int duration(struct parser *p, const struct rg_yaml_node *n, const char *what,
                    int64_t *out)
{
    const char *s = scalar(p, n, what);

    if (!s)
        return -1;
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    if (rg_promql_parse_duration(s, strlen(s), out) || *out < 0) {
        problem(p, n, "%s: expected a duration such as 30s, 15m or 1h, got \"%s\"", what, s);
        return -1;
    }
    return 0;
}

static int boolean(struct parser *p, const struct rg_yaml_node *n, const char *what, int *out)
{
    const char *s = scalar(p, n, what);

    if (!s)
        return -1;
    if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0) {
        *out = 1;
        return 0;
    }
    if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0) {
        *out = 0;
        return 0;
    }
    problem(p, n, "%s: expected true or false, got \"%s\"", what, s);
    return -1;
}

static int parse_op(const char *s, enum rg_checklist_op *op)
{
    static const char *const names[] = { "<", "<=", ">", ">=", "==", "!=" };
    for (int i = 0; i < 6; i++)
        if (strcmp(s, names[i]) == 0) {
            *op = (enum rg_checklist_op)i;
            return 0;
        }
    return -1;
}

const char *rg_checklist_op_name(enum rg_checklist_op op)
{
    static const char *const names[] = { "<", "<=", ">", ">=", "==", "!=" };
    return (unsigned)op < 6 ? names[op] : "?";
}

const char *rg_checklist_kind_name(enum rg_checklist_kind kind)
{
    return kind == RG_CHECKLIST_TRIGGER ? "trigger" : "gate";
}

int rg_checklist_compare(enum rg_checklist_op op, double v, double t)
{
    switch (op) {
    case RG_CHECKLIST_LT: return v < t;
    case RG_CHECKLIST_LE: return v <= t;
    case RG_CHECKLIST_GT: return v > t;
    case RG_CHECKLIST_GE: return v >= t;
    case RG_CHECKLIST_EQ: return v == t;
    case RG_CHECKLIST_NE: return v != t;
    }
    return 0;
}

/* Walks the pairs of a mapping, reporting a non-mapping once. */
#define FOR_PAIRS(node, k, v)                                                   \
    for (size_t i_ = 0; (node) && (node)->kind == RG_YAML_MAP &&                \
                        i_ + 1 < (node)->nitems &&                              \
                        ((k) = (node)->items[i_]->scalar ? (node)->items[i_]->scalar : "", \
                         (v) = (node)->items[i_ + 1], 1);                       \
         i_ += 2)

static int expect_map(struct parser *p, const struct rg_yaml_node *n, const char *what)
{
    if (!n || n->kind != RG_YAML_MAP) {
        problem(p, n, "%s: expected a mapping", what);
        return -1;
    }
    return 0;
}

static int expect_seq(struct parser *p, const struct rg_yaml_node *n, const char *what)
{
    if (!n || n->kind != RG_YAML_SEQ) {
        problem(p, n, "%s: expected a list", what);
        return -1;
    }
    return 0;
}

/* The key node of the pair whose value is @v (for positions of unknown keys). */
static const struct rg_yaml_node *key_of(const struct rg_yaml_node *map,
                                         const struct rg_yaml_node *v)
{
    for (size_t i = 0; i + 1 < map->nitems; i += 2)
        if (map->items[i + 1] == v)
            return map->items[i];
    return map;
}

/* ---- metrics and discovery ---------------------------------------------------- */

struct metric_key {
    const char *key;
    size_t off;
    int is_name;    /* 1: must be a metric or label name */
};

#define MK(k, f, n) { k, offsetof(struct rg_checklist_metrics, f), n }
static const struct metric_key metric_keys[] = {
    MK("http_requests", http_requests, 1),
    MK("code_label", code_label, 1),
    MK("error_codes", error_codes, 0),
    MK("http_duration_bucket", http_duration_bucket, 1),
    MK("resources", resources, 0),
    MK("cpu_usage", cpu_usage, 1),
    MK("cpu_quota", cpu_quota, 1),
    MK("cpu_period", cpu_period, 1),
    MK("memory_usage", memory_usage, 1),
    MK("memory_limit", memory_limit, 1),
    MK("node_cpu", node_cpu, 1),
    MK("node_memory_available", node_memory_available, 1),
    MK("node_memory_total", node_memory_total, 1),
    MK("database_job", database_job, 0),
    MK("db_connections", db_connections, 1),
    MK("db_max_connections", db_max_connections, 1),
    MK("queue_depth", queue_depth, 1),
    MK("alerts", alerts, 1),
    MK("rate_window", rate_window, 0),
};
#define NMETRIC_KEYS (sizeof(metric_keys) / sizeof(metric_keys[0]))

static void metrics_default(struct rg_checklist_metrics *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->http_requests, sizeof(m->http_requests), "http_requests_total");
    snprintf(m->code_label, sizeof(m->code_label), "code");
    snprintf(m->error_codes, sizeof(m->error_codes), "5..");
    snprintf(m->http_duration_bucket, sizeof(m->http_duration_bucket),
             "http_request_duration_seconds_bucket");
    snprintf(m->resources, sizeof(m->resources), "cadvisor");
    snprintf(m->cpu_usage, sizeof(m->cpu_usage), "container_cpu_usage_seconds_total");
    snprintf(m->cpu_quota, sizeof(m->cpu_quota), "container_spec_cpu_quota");
    snprintf(m->cpu_period, sizeof(m->cpu_period), "container_spec_cpu_period");
    snprintf(m->memory_usage, sizeof(m->memory_usage), "container_memory_working_set_bytes");
    snprintf(m->memory_limit, sizeof(m->memory_limit), "container_spec_memory_limit_bytes");
    snprintf(m->node_cpu, sizeof(m->node_cpu), "node_cpu_seconds_total");
    snprintf(m->node_memory_available, sizeof(m->node_memory_available),
             "node_memory_MemAvailable_bytes");
    snprintf(m->node_memory_total, sizeof(m->node_memory_total), "node_memory_MemTotal_bytes");
    snprintf(m->database_job, sizeof(m->database_job), "database");
    snprintf(m->db_connections, sizeof(m->db_connections), "pg_stat_activity_count");
    snprintf(m->db_max_connections, sizeof(m->db_max_connections),
             "pg_settings_max_connections");
    snprintf(m->queue_depth, sizeof(m->queue_depth), "queue_depth");
    snprintf(m->alerts, sizeof(m->alerts), "ALERTS");
    snprintf(m->rate_window, sizeof(m->rate_window), "1m");
}

/* Text that goes between double quotes of a PromQL label matcher as is. */
static int plain_label_value(const char *s)
{
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            return 0;
    return 1;
}

static int parse_metrics(const char *path, const struct rg_yaml_node *sec, void *ud)
{
    struct parser *p = ud;
    const char *k;
    const struct rg_yaml_node *v;

    p->path = path;
    if (expect_map(p, sec, "metrics"))
        return 0;
    FOR_PAIRS(sec, k, v) {
        size_t i = 0;
        const char *s;
        while (i < NMETRIC_KEYS && strcmp(metric_keys[i].key, k) != 0)
            i++;
        if (i == NMETRIC_KEYS) {
            problem(p, key_of(sec, v), "metrics: unknown key \"%s\"", k);
            continue;
        }
        if (!(s = scalar(p, v, metric_keys[i].key)))
            continue;
        if (strlen(s) >= MAX_NAME) {
            problem(p, v, "metrics.%s: longer than %d bytes", k, MAX_NAME - 1);
            continue;
        }
        if (metric_keys[i].is_name && !is_metric_name(s)) {
            problem(p, v, "metrics.%s: \"%s\" is not a valid metric or label name", k, s);
            continue;
        }
        if (!metric_keys[i].is_name && !plain_label_value(s)) {
            problem(p, v, "metrics.%s: must not contain quotes, backslashes or control "
                          "characters", k);
            continue;
        }
        if (strcmp(k, "resources") == 0 && strcmp(s, "cadvisor") != 0 &&
            strcmp(s, "node_exporter") != 0) {
            problem(p, v, "metrics.resources: expected cadvisor or node_exporter, got \"%s\"",
                    s);
            continue;
        }
        if (strcmp(k, "rate_window") == 0) {
            int64_t ms;
            if (rg_promql_parse_duration(s, strlen(s), &ms) || ms <= 0) {
                problem(p, v, "metrics.rate_window: expected a duration such as 1m, got \"%s\"",
                        s);
                continue;
            }
        }
        snprintf((char *)&p->cl->metrics + metric_keys[i].off, MAX_NAME, "%s", s);
    }
    return 0;
}

static void add_phase_ref(struct parser *p, const struct rg_yaml_node *n, long dep,
                          size_t **arr, size_t *count)
{
    const char *s = scalar(p, n, "phases");
    size_t *a;
    struct phase_ref *r;

    if (!s)
        return;
    a = grow(p, *arr, *count, sizeof(**arr));
    if (!a)
        return;
    *arr = a;
    (*count)++;
    r = grow(p, p->refs, p->nrefs, sizeof(*p->refs));
    if (!r)
        return;
    p->refs = r;
    r[p->nrefs].name = dup_or_flag(p, s);
    r[p->nrefs].pos = pos_of(p, n);
    r[p->nrefs].dep = dep;
    r[p->nrefs].idx = *count - 1;
    p->nrefs++;
}

static int parse_discovery(const char *path, const struct rg_yaml_node *sec, void *ud)
{
    struct parser *p = ud;
    struct rg_checklist_discovery *d = &p->cl->discovery;
    const char *k;
    const struct rg_yaml_node *v;

    p->path = path;
    if (expect_map(p, sec, "discovery"))
        return 0;
    FOR_PAIRS(sec, k, v) {
        if (strcmp(k, "enabled") == 0) {
            boolean(p, v, "discovery.enabled", &d->enabled);
        } else if (strcmp(k, "label") == 0) {
            const char *s = scalar(p, v, "discovery.label");
            if (s && (!is_ident(s) || strlen(s) >= MAX_NAME))
                problem(p, v, "discovery.label: \"%s\" is not a valid label name", s);
            else if (s)
                snprintf(d->label, sizeof(d->label), "%s", s);
        } else if (strcmp(k, "interval") == 0) {
            int64_t ms;
            if (duration(p, v, "discovery.interval", &ms) == 0)
                d->interval_ms = ms;
        } else if (strcmp(k, "exclude") == 0) {
            if (expect_seq(p, v, "discovery.exclude"))
                continue;
            for (size_t i = 0; i < v->nitems; i++) {
                const char *s = scalar(p, v->items[i], "discovery.exclude");
                char **a;
                if (!s || !(a = grow(p, d->exclude, d->nexclude, sizeof(*a))))
                    continue;
                d->exclude = a;
                a[d->nexclude++] = dup_or_flag(p, s);
            }
        } else if (strcmp(k, "phases") == 0) {
            if (expect_seq(p, v, "discovery.phases"))
                continue;
            if (p->have_discovery_phases) {
                problem(p, v, "discovery.phases: already given");
                continue;
            }
            p->have_discovery_phases = 1;
            for (size_t i = 0; i < v->nitems; i++)
                add_phase_ref(p, v->items[i], -1, &d->phases, &d->nphases);
        } else {
            problem(p, key_of(sec, v), "discovery: unknown key \"%s\"", k);
        }
    }
    return 0;
}

/* ---- signals ------------------------------------------------------------------ */

static struct rg_checklist_signal *signal_slot(struct parser *p, const char *name)
{
    struct rg_checklist *cl = p->cl;
    struct rg_checklist_signal *s;

    for (size_t i = 0; i < cl->nsignals; i++)
        if (strcmp(cl->signals[i].name, name) == 0)
            return &cl->signals[i];
    s = grow(p, cl->signals, cl->nsignals, sizeof(*s));
    if (!s)
        return NULL;
    cl->signals = s;
    s = &cl->signals[cl->nsignals++];
    s->name = dup_or_flag(p, name);
    return s;
}

static void signal_set(struct parser *p, struct rg_checklist_signal *s, const char *expr,
                       const char *unit, const char *desc, int builtin,
                       struct rg_checklist_pos pos)
{
    free(s->expr);
    free(s->unit);
    free(s->description);
    free(s->source);
    s->expr = dup_or_flag(p, expr);
    s->unit = dup_or_flag(p, unit);
    s->description = dup_or_flag(p, desc);
    s->source = NULL;
    s->builtin = builtin;
    s->pos = pos;
}

int rg_checklist_expand(const char *tmpl, const char *selector, int64_t window_ms,
                        struct rg_buf *out)
{
    static const char sel[] = "<selector>", win[] = "<window>";
    const char *s = tmpl;

    while (*s) {
        if (strncmp(s, sel, sizeof(sel) - 1) == 0) {
            if (rg_buf_puts(out, selector))
                return RG_ENOMEM;
            s += sizeof(sel) - 1;
        } else if (strncmp(s, win, sizeof(win) - 1) == 0) {
            if (rg_promql_format_duration(window_ms, out))
                return RG_ENOMEM;
            s += sizeof(win) - 1;
        } else {
            if (rg_buf_putc(out, *s++))
                return RG_ENOMEM;
        }
    }
    if (!out->data)
        return rg_buf_reserve(out, 1);
    return 0;
}

int64_t rg_checklist_window(const struct rg_checklist_phase *p)
{
    int64_t w = p ? p->min_observation_ms : 0;

    if (w < 60 * 1000)
        w = 60 * 1000;
    if (w > 3600 * 1000)
        w = 3600 * 1000;
    return w;
}

/* Parses the expression built in @b (@built is what building it returned), then releases
 * @b. Returns 0 or -1 with @msg filled, "out of memory" when the build itself failed. */
static int parse_built(struct rg_buf *b, int built, char *msg, size_t cap)
{
    struct rg_promql_node *node = NULL;
    int rc;

    if (built) {
        snprintf(msg, cap, "out of memory");
        return -1;
    }
    rc = rg_promql_parse(b->data, &node, msg, cap);
    rg_promql_node_free(node);
    rg_buf_cleanup(b);
    return rc ? -1 : 0;
}

/* Parses the template with a dummy selector. Returns 0 or -1 with @msg filled. */
static int validate_template(const char *expr, char *msg, size_t cap)
{
    struct rg_buf b = { 0 };
    int built = rg_checklist_expand(expr, "job=\"rollgate_check\"", 5 * 60 * 1000, &b);

    return parse_built(&b, built, msg, cap);
}

static int parse_signals(const char *path, const struct rg_yaml_node *sec, void *ud)
{
    struct parser *p = ud;
    const char *name;
    const struct rg_yaml_node *v;

    p->path = path;
    if (expect_map(p, sec, "signals"))
        return 0;
    FOR_PAIRS(sec, name, v) {
        const struct rg_yaml_node *kn = key_of(sec, v), *exprn = NULL;
        const char *expr = NULL, *unit = "", *desc = "", *source = NULL, *k;
        const struct rg_yaml_node *f, *srcn = NULL;
        struct rg_checklist_signal *s;
        char msg[512];

        if (!is_ident(name) || strlen(name) >= MAX_NAME) {
            problem(p, kn, "signals: \"%s\" is not a valid signal name", name);
            continue;
        }
        for (size_t i = 0; i < p->cl->nsignals; i++)
            if (strcmp(p->cl->signals[i].name, name) == 0 && !p->cl->signals[i].builtin) {
                problem(p, kn, "signals: \"%s\" is already defined at %s:%d:%d", name,
                        p->cl->signals[i].pos.path, p->cl->signals[i].pos.line,
                        p->cl->signals[i].pos.col);
                name = NULL;
                break;
            }
        if (!name)
            continue;
        if (v->kind == RG_YAML_SCALAR) {
            exprn = v;
            expr = scalar(p, v, "signal expr");
        } else if (expect_map(p, v, "signal") == 0) {
            FOR_PAIRS(v, k, f) {
                if (strcmp(k, "expr") == 0) {
                    exprn = f;
                    expr = scalar(p, f, "expr");
                } else if (strcmp(k, "unit") == 0) {
                    const char *u = scalar(p, f, "unit");
                    unit = u ? u : "";
                } else if (strcmp(k, "description") == 0) {
                    const char *d = scalar(p, f, "description");
                    desc = d ? d : "";
                } else if (strcmp(k, "source") == 0) {
                    srcn = f;
                    source = scalar(p, f, "source");
                    if (source && !source[0]) {
                        problem(p, f, "signal \"%s\": source must not be empty", name);
                        source = NULL;
                    }
                } else {
                    problem(p, key_of(v, f), "signal \"%s\": unknown key \"%s\"", name, k);
                }
            }
            if (!exprn)
                problem(p, v, "signal \"%s\": expr is required", name);
        } else {
            continue;
        }
        if (!expr)
            continue;
        if (validate_template(expr, msg, sizeof(msg))) {
            problem(p, exprn, "signal \"%s\": expr: %s", name, msg);
            continue;
        }
        if ((s = signal_slot(p, name))) {
            signal_set(p, s, expr, unit, desc, 0, pos_of(p, kn));
            if (source) {
                s->source = dup_or_flag(p, source);
                s->source_pos = pos_of(p, srcn);
            }
        }
    }
    return 0;
}

/* Adds (or refreshes, keeping configured ones) the bundled signals. */
static void builtin_signals(struct parser *p)
{
    const struct rg_checklist_metrics *m = &p->cl->metrics;
    const char *w = m->rate_window;
    struct rg_checklist_pos pos = { "<builtin>", 0, 0 };
    char cpu[1024], mem[1024];
    struct {
        const char *name, *unit, *desc;
        char expr[1024];
    } b[11];
    size_t n = 0;

#define ADD(nm, un, de, ...)                                            \
    do {                                                                \
        b[n].name = nm;                                                 \
        b[n].unit = un;                                                 \
        b[n].desc = de;                                                 \
        snprintf(b[n].expr, sizeof(b[n].expr), __VA_ARGS__);            \
        n++;                                                            \
    } while (0)

    if (strcmp(m->resources, "node_exporter") == 0) {
        snprintf(cpu, sizeof(cpu), "1 - avg(rate(%s{<selector>,mode=\"idle\"}[%s]))",
                 m->node_cpu, w);
        snprintf(mem, sizeof(mem), "1 - sum(%s{<selector>}) / sum(%s{<selector>})",
                 m->node_memory_available, m->node_memory_total);
    } else {
        snprintf(cpu, sizeof(cpu),
                 "sum(rate(%s{<selector>}[%s])) / sum(%s{<selector>} / %s{<selector>})",
                 m->cpu_usage, w, m->cpu_quota, m->cpu_period);
        snprintf(mem, sizeof(mem), "sum(%s{<selector>}) / sum(%s{<selector>})",
                 m->memory_usage, m->memory_limit);
    }
    ADD("error_ratio", "ratio", "Share of requests answered with an error code",
        "sum(rate(%s{<selector>,%s=~\"%s\"}[%s])) / sum(rate(%s{<selector>}[%s]))",
        m->http_requests, m->code_label, m->error_codes, w, m->http_requests, w);
    ADD("p99_latency", "seconds", "99th percentile of request latency",
        "histogram_quantile(0.99, sum by (le) (rate(%s{<selector>}[%s])))",
        m->http_duration_bucket, w);
    /* The instant variants look at the last two samples only (irate), so that a
     * rollback trigger reacts to the first breaching samples instead of waiting
     * for a rate window to fill up with them. */
    ADD("error_ratio_instant", "ratio", "Share of errors between the last two samples",
        "sum(irate(%s{<selector>,%s=~\"%s\"}[%s])) / sum(irate(%s{<selector>}[%s]))",
        m->http_requests, m->code_label, m->error_codes, w, m->http_requests, w);
    ADD("p99_latency_instant", "seconds",
        "99th percentile of request latency between the last two samples",
        "histogram_quantile(0.99, sum by (le) (irate(%s{<selector>}[%s])))",
        m->http_duration_bucket, w);
    ADD("cpu_utilisation", "ratio", "CPU used as a share of the CPU available", "%s", cpu);
    ADD("memory_utilisation", "ratio", "Memory used as a share of the memory limit", "%s",
        mem);
    ADD("database_up", "bool", "1 while every target of the database job is up",
        "min(up{job=\"%s\"})", m->database_job);
    ADD("database_connection_utilisation", "ratio",
        "Database connections in use as a share of the maximum",
        "sum(%s{job=\"%s\"}) / sum(%s{job=\"%s\"})", m->db_connections, m->database_job,
        m->db_max_connections, m->database_job);
    ADD("queue_depth", "count", "Items waiting in the deployment's queues",
        "sum(%s{<selector>})", m->queue_depth);
    ADD("request_count", "count", "Requests served in the observation window",
        "sum(increase(%s{<selector>}[<window>]))", m->http_requests);
    ADD("critical_alerts", "count", "Critical alerts firing for the deployment",
        "count(%s{alertstate=\"firing\",severity=\"critical\",<selector>}) or vector(0)",
        m->alerts);
#undef ADD
    for (size_t i = 0; i < n; i++) {
        struct rg_checklist_signal *s = NULL;
        int configured = 0;
        for (size_t j = 0; j < p->cl->nsignals; j++)
            if (strcmp(p->cl->signals[j].name, b[i].name) == 0) {
                configured = !p->cl->signals[j].builtin;
                s = &p->cl->signals[j];
            }
        if (configured)
            continue;
        if (!s && !(s = signal_slot(p, b[i].name)))
            return;
        signal_set(p, s, b[i].expr, b[i].unit, b[i].desc, 1, pos);
    }
}

/* ---- checks, phases ----------------------------------------------------------- */

static void check_free(struct rg_checklist_check *c)
{
    free(c->name);
    free(c->signal);
    free(c->description);
}

/* Parses a gate or trigger into @c. Returns 0 when usable. */
static int parse_check(struct parser *p, const struct rg_yaml_node *n,
                       enum rg_checklist_kind kind, struct rg_checklist_check *c)
{
    const char *what = kind == RG_CHECKLIST_GATE ? "gate" : "trigger";
    const char *k, *name = NULL, *sig = NULL, *desc = "";
    const struct rg_yaml_node *v, *opn = NULL, *basen = NULL;
    int bad = 0, has_op = 0;

    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->pos = pos_of(p, n);
    if (expect_map(p, n, what))
        return -1;
    FOR_PAIRS(n, k, v) {
        if (strcmp(k, "name") == 0) {
            if ((name = scalar(p, v, "name")) && (!is_ident(name) || strlen(name) >= MAX_NAME)) {
                problem(p, v, "%s: \"%s\" is not a valid name", what, name);
                bad = 1;
            }
        } else if (strcmp(k, "signal") == 0) {
            sig = scalar(p, v, "signal");
            c->pos = pos_of(p, v);
        } else if (strcmp(k, "op") == 0) {
            const char *o = scalar(p, v, "op");
            opn = v;
            if (o && parse_op(o, &c->op) == 0)
                has_op = 1;
            else if (o)
                problem(p, v, "%s: op must be one of < <= > >= == !=, got \"%s\"", what, o);
            bad |= !has_op;
        } else if (strcmp(k, "threshold") == 0) {
            if (number(p, v, "threshold", &c->threshold) == 0)
                c->has_threshold = 1;
            else
                bad = 1;
        } else if (strcmp(k, "for") == 0 && kind == RG_CHECKLIST_TRIGGER) {
            bad |= duration(p, v, "for", &c->for_ms) != 0;
        } else if (strcmp(k, "baseline") == 0 && kind == RG_CHECKLIST_GATE) {
            const char *bk;
            const struct rg_yaml_node *bv;
            basen = v;
            if (expect_map(p, v, "baseline")) {
                bad = 1;
                continue;
            }
            FOR_PAIRS(v, bk, bv) {
                if (strcmp(bk, "margin") == 0) {
                    if (number(p, bv, "baseline.margin", &c->baseline_margin) == 0 &&
                        c->baseline_margin >= 0)
                        c->has_baseline = 1;
                    else if (c->baseline_margin < 0)
                        problem(p, bv, "baseline.margin: must not be negative");
                } else if (strcmp(bk, "relative") == 0) {
                    boolean(p, bv, "baseline.relative", &c->baseline_relative);
                } else {
                    problem(p, key_of(v, bv), "baseline: unknown key \"%s\"", bk);
                }
            }
            if (!c->has_baseline)
                bad = 1;
        } else if (strcmp(k, "no_data") == 0 && kind == RG_CHECKLIST_GATE) {
            const char *s = scalar(p, v, "no_data");
            if (s && strcmp(s, "inconclusive") == 0)
                c->no_data = RG_CHECKLIST_NODATA_INCONCLUSIVE;
            else if (s && strcmp(s, "ok") == 0)
                c->no_data = RG_CHECKLIST_NODATA_OK;
            else if (s && strcmp(s, "failing") == 0)
                c->no_data = RG_CHECKLIST_NODATA_FAILING;
            else if (s)
                problem(p, v, "no_data: expected inconclusive, ok or failing, got \"%s\"", s);
        } else if (strcmp(k, "description") == 0) {
            const char *d = scalar(p, v, "description");
            desc = d ? d : "";
        } else {
            problem(p, key_of(n, v), "%s: unknown key \"%s\"", what, k);
        }
    }
    if (!sig) {
        problem(p, n, "%s: signal is required", what);
        bad = 1;
    }
    if (!opn) {
        problem(p, n, "%s: op is required", what);
        bad = 1;
    }
    if (!c->has_threshold && !(kind == RG_CHECKLIST_GATE && basen)) {
        problem(p, n, "%s: threshold is required%s", what,
                kind == RG_CHECKLIST_GATE ? " (or a baseline comparison)" : "");
        bad = 1;
    }
    if (basen && has_op && (c->op == RG_CHECKLIST_EQ || c->op == RG_CHECKLIST_NE)) {
        problem(p, basen, "gate: a baseline comparison needs op < <= > or >=");
        bad = 1;
    }
    c->signal = dup_or_flag(p, sig ? sig : "");
    c->name = dup_or_flag(p, name ? name : sig ? sig : "");
    c->description = dup_or_flag(p, desc);
    /* A check with other errors is still kept when it names a signal, so that its
     * signal reference is checked too; the parse fails anyway. */
    if ((bad && !sig) || p->nomem) {
        check_free(c);
        memset(c, 0, sizeof(*c));
        return -1;
    }
    return 0;
}

static void parse_checks(struct parser *p, const struct rg_yaml_node *seq,
                         enum rg_checklist_kind kind, struct rg_checklist_check **arr,
                         size_t *count, const char *where)
{
    if (expect_seq(p, seq, where))
        return;
    for (size_t i = 0; i < seq->nitems; i++) {
        struct rg_checklist_check c, *a;
        if (parse_check(p, seq->items[i], kind, &c))
            continue;
        for (size_t j = 0; j < *count; j++)
            if (strcmp((*arr)[j].name, c.name) == 0) {
                problem(p, seq->items[i], "%s: a %s named \"%s\" is already defined", where,
                        rg_checklist_kind_name(kind), c.name);
                check_free(&c);
                c.name = NULL;
                break;
            }
        if (!c.name)
            continue;
        if (!(a = grow(p, *arr, *count, sizeof(*a)))) {
            check_free(&c);
            return;
        }
        *arr = a;
        a[(*count)++] = c;
    }
}

static void phase_free(struct rg_checklist_phase *ph)
{
    free(ph->name);
    free(ph->description);
    for (size_t i = 0; i < ph->ngates; i++)
        check_free(&ph->gates[i]);
    free(ph->gates);
    for (size_t i = 0; i < ph->ntriggers; i++)
        check_free(&ph->triggers[i]);
    free(ph->triggers);
}

static void parse_phase(struct parser *p, const struct rg_yaml_node *n)
{
    struct rg_checklist *cl = p->cl;
    struct rg_checklist_phase ph, *a;
    const char *k, *name = NULL;
    const struct rg_yaml_node *v, *maxn = NULL;

    memset(&ph, 0, sizeof(ph));
    ph.traffic_weight = 100;
    ph.no_data_timeout_ms = DEFAULT_NO_DATA_MS;
    ph.pos = pos_of(p, n);
    if (expect_map(p, n, "phase"))
        return;
    FOR_PAIRS(n, k, v) {
        if (strcmp(k, "name") == 0) {
            name = scalar(p, v, "name");
            if (name && (!is_ident(name) || strlen(name) >= MAX_NAME)) {
                problem(p, v, "phase: \"%s\" is not a valid name", name);
            }
        } else if (strcmp(k, "traffic_weight") == 0) {
            double w;
            const char *s = v->kind == RG_YAML_SCALAR ? v->scalar : "";
            if (number(p, v, "traffic_weight", &w) == 0) {
                /* "5%" and 5 both mean five percent. */
                if (strchr(s, '%'))
                    w *= 100;
                if (w < 0 || w > 100) {
                    problem(p, v, "traffic_weight: must be between 0 and 100%%");
                }
                ph.traffic_weight = w;
            }
        } else if (strcmp(k, "min_observation") == 0) {
            duration(p, v, "min_observation", &ph.min_observation_ms);
        } else if (strcmp(k, "max_observation") == 0) {
            maxn = v;
            if (!(v->kind == RG_YAML_SCALAR && strcmp(v->scalar, "unbounded") == 0))
                duration(p, v, "max_observation", &ph.max_observation_ms);
        } else if (strcmp(k, "min_requests") == 0) {
            if (number(p, v, "min_requests", &ph.min_requests) == 0 && ph.min_requests < 0) {
                problem(p, v, "min_requests: must not be negative");
            }
        } else if (strcmp(k, "no_data_timeout") == 0) {
            duration(p, v, "no_data_timeout", &ph.no_data_timeout_ms);
        } else if (strcmp(k, "gates") == 0) {
            parse_checks(p, v, RG_CHECKLIST_GATE, &ph.gates, &ph.ngates, "gates");
        } else if (strcmp(k, "triggers") == 0) {
            parse_checks(p, v, RG_CHECKLIST_TRIGGER, &ph.triggers, &ph.ntriggers, "triggers");
        } else if (strcmp(k, "description") == 0) {
            const char *d = scalar(p, v, "description");
            free(ph.description);   /* a repeated key: the last one wins */
            ph.description = dup_or_flag(p, d ? d : "");
        } else {
            problem(p, key_of(n, v), "phase: unknown key \"%s\"", k);
        }
    }
    if (!name) {
        problem(p, n, "phase: name is required");
    }
    if (maxn && ph.max_observation_ms > 0 && ph.max_observation_ms < ph.min_observation_ms) {
        problem(p, maxn, "max_observation: shorter than min_observation");
    }
    if (name && rg_checklist_phase_find(cl, name) >= 0) {
        problem(p, n, "phase \"%s\" is already defined", name);
        name = NULL;
    }
    if (!ph.description)
        ph.description = dup_or_flag(p, "");
    ph.name = dup_or_flag(p, name ? name : "");
    /* A phase with errors is kept (unless nameless or a duplicate), so that
     * references to it and problems in its checks are still reported; the parse
     * fails anyway because the errors were counted. */
    if (!name || !(a = grow(p, cl->phases, cl->nphases, sizeof(*a)))) {
        phase_free(&ph);
        return;
    }
    cl->phases = a;
    a[cl->nphases++] = ph;
}

static int parse_phases(const char *path, const struct rg_yaml_node *sec, void *ud)
{
    struct parser *p = ud;

    p->path = path;
    p->have_phases = 1;
    if (expect_seq(p, sec, "phases"))
        return 0;
    for (size_t i = 0; i < sec->nitems; i++)
        parse_phase(p, sec->items[i]);
    return 0;
}

static int parse_triggers(const char *path, const struct rg_yaml_node *sec, void *ud)
{
    struct parser *p = ud;

    p->path = path;
    p->have_triggers = 1;
    parse_checks(p, sec, RG_CHECKLIST_TRIGGER, &p->cl->triggers, &p->cl->ntriggers,
                 "triggers");
    return 0;
}

/* ---- deployments --------------------------------------------------------------- */

static int validate_selector(const char *sel, char *msg, size_t cap)
{
    struct rg_buf b = { 0 };
    int built = rg_buf_printf(&b, "up{%s}", sel);

    return parse_built(&b, built, msg, cap);
}

static int parse_deployments(const char *path, const struct rg_yaml_node *sec, void *ud)
{
    struct parser *p = ud;
    struct rg_checklist *cl = p->cl;

    p->path = path;
    if (expect_seq(p, sec, "deployments"))
        return 0;
    for (size_t i = 0; i < sec->nitems; i++) {
        const struct rg_yaml_node *n = sec->items[i], *v;
        struct rg_checklist_deployment d, *a;
        const char *k, *name = NULL, *sel = NULL, *base = NULL, *source = NULL;
        const struct rg_yaml_node *phases = NULL;
        int bad = 0;
        char msg[512];

        memset(&d, 0, sizeof(d));
        d.pos = pos_of(p, n);
        if (expect_map(p, n, "deployment"))
            continue;
        FOR_PAIRS(n, k, v) {
            if (strcmp(k, "name") == 0) {
                name = scalar(p, v, "name");
                if (name && (name[0] == '\0' || strlen(name) >= MAX_NAME ||
                             strchr(name, '/') || !plain_label_value(name))) {
                    problem(p, v, "deployment: \"%s\" is not a valid name (1-%d bytes, no "
                                  "slash, quote, backslash or control character)", name,
                            MAX_NAME - 1);
                    bad = 1;
                }
            } else if (strcmp(k, "selector") == 0 || strcmp(k, "baseline_selector") == 0) {
                const char *s = scalar(p, v, k);
                if (!s) {
                    bad = 1;
                    continue;
                }
                if (validate_selector(s, msg, sizeof(msg))) {
                    problem(p, v, "deployment: %s: invalid label matchers: %s", k, msg);
                    bad = 1;
                }
                if (k[0] == 's')
                    sel = s;
                else
                    base = s;
            } else if (strcmp(k, "phases") == 0) {
                phases = v;
                bad |= expect_seq(p, v, "phases") != 0;
            } else if (strcmp(k, "source") == 0) {
                source = scalar(p, v, "source");
                if (source && !source[0]) {
                    problem(p, v, "deployment: source must not be empty");
                    bad = 1;
                }
                d.source_pos = pos_of(p, v);
            } else {
                problem(p, key_of(n, v), "deployment: unknown key \"%s\"", k);
            }
        }
        if (!name) {
            problem(p, n, "deployment: name is required");
            bad = 1;
        }
        if (!sel && !bad) {
            problem(p, n, "deployment: selector is required");
            bad = 1;
        }
        if (name && rg_checklist_deployment_find(cl, name) >= 0) {
            problem(p, n, "deployment \"%s\" is already defined", name);
            bad = 1;
        }
        if (bad)
            continue;
        d.name = dup_or_flag(p, name);
        d.selector = dup_or_flag(p, sel);
        d.baseline_selector = base ? dup_or_flag(p, base) : NULL;
        d.source = source ? dup_or_flag(p, source) : NULL;
        if (!(a = grow(p, cl->deployments, cl->ndeployments, sizeof(*a)))) {
            free(d.name);
            free(d.selector);
            free(d.baseline_selector);
            free(d.source);
            return 0;
        }
        cl->deployments = a;
        a[cl->ndeployments] = d;
        if (phases) {
            struct rg_checklist_deployment *dd = &cl->deployments[cl->ndeployments];
            for (size_t j = 0; j < phases->nitems; j++)
                add_phase_ref(p, phases->items[j], (long)cl->ndeployments, &dd->phases,
                              &dd->nphases);
        }
        cl->ndeployments++;
    }
    return 0;
}

/* ---- second pass ----------------------------------------------------------------- */

static void resolve_checks(struct parser *p, const struct rg_checklist_check *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!rg_checklist_signal_find(p->cl, c[i].signal))
            problem_at(p, &c[i].pos, "%s \"%s\": unknown signal \"%s\"",
                       rg_checklist_kind_name(c[i].kind), c[i].name, c[i].signal);
}

static void resolve(struct parser *p)
{
    struct rg_checklist *cl = p->cl;

    for (size_t i = 0; i < cl->nphases; i++) {
        resolve_checks(p, cl->phases[i].gates, cl->phases[i].ngates);
        resolve_checks(p, cl->phases[i].triggers, cl->phases[i].ntriggers);
        for (size_t j = 0; j < cl->phases[i].ntriggers; j++)
            for (size_t t = 0; t < cl->ntriggers; t++)
                if (strcmp(cl->phases[i].triggers[j].name, cl->triggers[t].name) == 0)
                    problem_at(p, &cl->phases[i].triggers[j].pos,
                               "trigger \"%s\" of phase \"%s\" has the name of a shared trigger",
                               cl->triggers[t].name, cl->phases[i].name);
    }
    resolve_checks(p, cl->triggers, cl->ntriggers);
    for (size_t r = 0; r < p->nrefs; r++) {
        struct phase_ref *ref = &p->refs[r];
        long idx = rg_checklist_phase_find(cl, ref->name);
        size_t *target = NULL;

        if (ref->dep < 0 && ref->idx < cl->discovery.nphases)
            target = &cl->discovery.phases[ref->idx];
        else if (ref->dep >= 0 && (size_t)ref->dep < cl->ndeployments &&
                 ref->idx < cl->deployments[ref->dep].nphases)
            target = &cl->deployments[ref->dep].phases[ref->idx];
        if (idx < 0) {
            problem_at(p, &ref->pos, "unknown phase \"%s\"", ref->name);
            continue;
        }
        if (target)
            *target = (size_t)idx;
    }
}

/* Every phase, in order, for deployments that list none. */
static int all_phases(struct parser *p, size_t **arr, size_t *n)
{
    if (*n)
        return 0;
    free(*arr);
    *arr = calloc(p->cl->nphases ? p->cl->nphases : 1, sizeof(**arr));
    if (!*arr) {
        p->nomem = 1;
        return -1;
    }
    for (size_t i = 0; i < p->cl->nphases; i++)
        (*arr)[i] = i;
    *n = p->cl->nphases;
    return 0;
}

static int parse_global(const char *path, const struct rg_yaml_node *sec, void *ud)
{
    struct parser *p = ud;
    const struct rg_yaml_node *v = rg_yaml_get(sec, "evaluation_interval");
    int64_t ms;

    p->path = path;
    /* The rules manager owns `global:`; only the evaluation interval is read here. */
    if (v && duration(p, v, "global.evaluation_interval", &ms) == 0) {
        if (ms <= 0)
            problem(p, v, "global.evaluation_interval: must be positive");
        else
            p->cl->evaluation_interval_ms = ms;
    }
    return 0;
}

static int add_path(struct parser *p, const char *path)
{
    char **a = grow(p, p->cl->paths, p->cl->npaths, sizeof(*a));
    if (!a)
        return RG_ENOMEM;
    p->cl->paths = a;
    a[p->cl->npaths] = strdup(path);
    if (!a[p->cl->npaths])
        return RG_ENOMEM;
    p->cl->npaths++;
    return 0;
}

/* The path of a document as stored in the checklist (stable for positions). */
static const char *stored_path(struct parser *p, const char *path)
{
    for (size_t i = 0; i < p->cl->npaths; i++)
        if (strcmp(p->cl->paths[i], path) == 0)
            return p->cl->paths[i];
    return "?";
}

struct section_cb {
    struct parser *p;
    int (*fn)(const char *path, const struct rg_yaml_node *sec, void *ud);
};

static int each_doc(const char *path, const struct rg_yaml_node *sec, void *ud)
{
    struct section_cb *s = ud;
    return s->fn(stored_path(s->p, path), sec, s->p);
}

static void run_section(struct parser *p, const struct rg_config *cfg, const char *name,
                        int (*fn)(const char *, const struct rg_yaml_node *, void *))
{
    struct section_cb s = { p, fn };
    rg_config_each_section(cfg, name, each_doc, &s);
}

static int parse_bundled(struct parser *p)
{
    struct rg_yaml_node *root = NULL;
    char msg[256];
    const char *saved = p->path;

    if (rg_yaml_parse(bundled_phases, sizeof(bundled_phases) - 1, &root, msg, sizeof(msg)))
        return RG_ENOMEM;
    if (add_path(p, "<builtin>")) {
        rg_yaml_free(root);
        return RG_ENOMEM;
    }
    p->path = p->cl->paths[p->cl->npaths - 1];
    parse_phases(p->path, rg_yaml_get(root, "phases"), p);
    if (!p->have_triggers)
        parse_triggers(p->path, rg_yaml_get(root, "triggers"), p);
    p->path = saved;
    rg_yaml_free(root);
    return 0;
}

int rg_checklist_parse(const struct rg_config *cfg, struct rg_checklist **out,
                       struct rg_buf *err)
{
    struct parser p;
    struct rg_checklist *cl;
    int rc = 0;

    *out = NULL;
    cl = calloc(1, sizeof(*cl));
    if (!cl)
        return RG_ENOMEM;
    memset(&p, 0, sizeof(p));
    p.cl = cl;
    p.err = err;
    p.path = cfg->path[0] ? cfg->path : "<config>";
    metrics_default(&cl->metrics);
    cl->discovery.enabled = 1;
    snprintf(cl->discovery.label, sizeof(cl->discovery.label), "job");
    cl->discovery.interval_ms = DEFAULT_DISCOVERY_MS;
    cl->evaluation_interval_ms = 1000;
    for (size_t i = 0; i < cfg->ndocs; i++)
        if (add_path(&p, cfg->docs[i].path)) {
            rc = RG_ENOMEM;
            goto fail_parse;
        }

    run_section(&p, cfg, "global", parse_global);
    run_section(&p, cfg, "metrics", parse_metrics);
    builtin_signals(&p);
    run_section(&p, cfg, "signals", parse_signals);
    run_section(&p, cfg, "phases", parse_phases);
    run_section(&p, cfg, "triggers", parse_triggers);
    run_section(&p, cfg, "deployments", parse_deployments);
    run_section(&p, cfg, "discovery", parse_discovery);
    if (!p.have_phases && (rc = parse_bundled(&p)))
        goto fail_parse;
    resolve(&p);
    if (!p.have_discovery_phases)
        all_phases(&p, &cl->discovery.phases, &cl->discovery.nphases);
    for (size_t i = 0; i < cl->ndeployments; i++)
        all_phases(&p, &cl->deployments[i].phases, &cl->deployments[i].nphases);
    if (cl->nphases == 0 && p.nerr == 0)
        problem(&p, NULL, "phases: at least one phase is required");
    if (p.nomem) {
        rc = RG_ENOMEM;
        goto fail_parse;
    }
    if (p.nerr) {
        rc = RG_EINVAL;
        goto fail_parse;
    }
    free(p.msgs);
    for (size_t i = 0; i < p.nrefs; i++)
        free(p.refs[i].name);
    free(p.refs);
    *out = cl;
    return 0;

fail_parse:
    flush_messages(&p);
    for (size_t i = 0; i < p.nrefs; i++)
        free(p.refs[i].name);
    free(p.refs);
    rg_checklist_free(cl);
    return rc;
}

int rg_checklist_check_sources(const struct rg_checklist *cl,
                               int (*known)(const char *name, void *ud), void *ud,
                               struct rg_buf *err)
{
    int bad = 0;

    for (size_t i = 0; i < cl->nsignals; i++) {
        const struct rg_checklist_signal *s = &cl->signals[i];
        if (!s->source || known(s->source, ud))
            continue;
        rg_buf_printf(err, "%s:%d:%d: signal \"%s\": unknown source \"%s\" (not in "
                           "sources:)\n", s->source_pos.path, s->source_pos.line,
                      s->source_pos.col, s->name, s->source);
        bad = 1;
    }
    for (size_t i = 0; i < cl->ndeployments; i++) {
        const struct rg_checklist_deployment *d = &cl->deployments[i];
        if (!d->source || known(d->source, ud))
            continue;
        rg_buf_printf(err, "%s:%d:%d: deployment \"%s\": unknown source \"%s\" (not in "
                           "sources:)\n", d->source_pos.path, d->source_pos.line,
                      d->source_pos.col, d->name, d->source);
        bad = 1;
    }
    return bad ? RG_EINVAL : 0;
}

void rg_checklist_free(struct rg_checklist *cl)
{
    if (!cl)
        return;
    for (size_t i = 0; i < cl->nsignals; i++) {
        free(cl->signals[i].name);
        free(cl->signals[i].expr);
        free(cl->signals[i].unit);
        free(cl->signals[i].description);
        free(cl->signals[i].source);
    }
    free(cl->signals);
    for (size_t i = 0; i < cl->nphases; i++)
        phase_free(&cl->phases[i]);
    free(cl->phases);
    for (size_t i = 0; i < cl->ntriggers; i++)
        check_free(&cl->triggers[i]);
    free(cl->triggers);
    for (size_t i = 0; i < cl->ndeployments; i++) {
        free(cl->deployments[i].name);
        free(cl->deployments[i].selector);
        free(cl->deployments[i].baseline_selector);
        free(cl->deployments[i].source);
        free(cl->deployments[i].phases);
    }
    free(cl->deployments);
    for (size_t i = 0; i < cl->discovery.nexclude; i++)
        free(cl->discovery.exclude[i]);
    free(cl->discovery.exclude);
    free(cl->discovery.phases);
    for (size_t i = 0; i < cl->npaths; i++)
        free(cl->paths[i]);
    free(cl->paths);
    free(cl);
}

const struct rg_checklist_signal *rg_checklist_signal_find(const struct rg_checklist *cl,
                                                           const char *name)
{
    for (size_t i = 0; i < cl->nsignals; i++)
        if (strcmp(cl->signals[i].name, name) == 0)
            return &cl->signals[i];
    return NULL;
}

long rg_checklist_phase_find(const struct rg_checklist *cl, const char *name)
{
    for (size_t i = 0; i < cl->nphases; i++)
        if (strcmp(cl->phases[i].name, name) == 0)
            return (long)i;
    return -1;
}

long rg_checklist_deployment_find(const struct rg_checklist *cl, const char *name)
{
    for (size_t i = 0; i < cl->ndeployments; i++)
        if (strcmp(cl->deployments[i].name, name) == 0)
            return (long)i;
    return -1;
}

/* ---- dump ------------------------------------------------------------------------ */

static void put_num(struct rg_buf *b, double v)
{
    rg_metrics_format_value(v, b);
}

static void put_dur(struct rg_buf *b, int64_t ms)
{
    rg_promql_format_duration(ms, b);
}

static void put_str(struct rg_buf *b, const char *s)
{
    rg_json_cstr(b, s);
}

static void dump_check(struct rg_buf *b, const struct rg_checklist_check *c)
{
    static const char *const nodata[] = { "inconclusive", "ok", "failing" };

    rg_buf_puts(b, "    - name: ");
    put_str(b, c->name);
    rg_buf_puts(b, "\n      signal: ");
    put_str(b, c->signal);
    rg_buf_puts(b, "\n      op: ");
    put_str(b, rg_checklist_op_name(c->op));
    if (c->has_threshold) {
        rg_buf_puts(b, "\n      threshold: ");
        put_num(b, c->threshold);
    }
    if (c->has_baseline) {
        rg_buf_puts(b, "\n      baseline: {margin: ");
        put_num(b, c->baseline_margin);
        rg_buf_printf(b, ", relative: %s}", c->baseline_relative ? "true" : "false");
    }
    if (c->kind == RG_CHECKLIST_TRIGGER) {
        rg_buf_puts(b, "\n      for: ");
        put_dur(b, c->for_ms);
    } else {
        rg_buf_printf(b, "\n      no_data: %s", nodata[c->no_data]);
    }
    if (c->description[0]) {
        rg_buf_puts(b, "\n      description: ");
        put_str(b, c->description);
    }
    rg_buf_putc(b, '\n');
}

static void dump_phase_list(struct rg_buf *b, const struct rg_checklist *cl, const size_t *ph,
                            size_t n)
{
    rg_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            rg_buf_puts(b, ", ");
        rg_buf_puts(b, cl->phases[ph[i]].name);
    }
    rg_buf_putc(b, ']');
}

int rg_checklist_dump(const struct rg_checklist *cl, struct rg_buf *b)
{
    const struct rg_checklist_discovery *d = &cl->discovery;
    size_t before = b->len;

    rg_buf_puts(b, "global:\n  evaluation_interval: ");
    put_dur(b, cl->evaluation_interval_ms);
    rg_buf_puts(b, "\nmetrics:\n");
    for (size_t i = 0; i < NMETRIC_KEYS; i++) {
        rg_buf_printf(b, "  %s: ", metric_keys[i].key);
        put_str(b, (const char *)&cl->metrics + metric_keys[i].off);
        rg_buf_putc(b, '\n');
    }
    rg_buf_printf(b, "discovery:\n  enabled: %s\n  label: %s\n  interval: ",
                  d->enabled ? "true" : "false", d->label);
    put_dur(b, d->interval_ms);
    rg_buf_puts(b, "\n  exclude: [");
    for (size_t i = 0; i < d->nexclude; i++) {
        if (i)
            rg_buf_puts(b, ", ");
        put_str(b, d->exclude[i]);
    }
    rg_buf_puts(b, "]\n  phases: ");
    dump_phase_list(b, cl, d->phases, d->nphases);
    rg_buf_puts(b, "\nsignals:\n");
    for (size_t i = 0; i < cl->nsignals; i++) {
        const struct rg_checklist_signal *s = &cl->signals[i];
        rg_buf_printf(b, "  %s:\n    expr: ", s->name);
        put_str(b, s->expr);
        if (s->unit[0]) {
            rg_buf_puts(b, "\n    unit: ");
            put_str(b, s->unit);
        }
        if (s->description[0]) {
            rg_buf_puts(b, "\n    description: ");
            put_str(b, s->description);
        }
        if (s->source) {
            rg_buf_puts(b, "\n    source: ");
            put_str(b, s->source);
        }
        rg_buf_printf(b, "\n    builtin: %s\n", s->builtin ? "true" : "false");
    }
    rg_buf_puts(b, "phases:\n");
    for (size_t i = 0; i < cl->nphases; i++) {
        const struct rg_checklist_phase *ph = &cl->phases[i];
        rg_buf_printf(b, "- name: %s\n  traffic_weight: ", ph->name);
        put_num(b, ph->traffic_weight);
        rg_buf_puts(b, "%\n  min_observation: ");
        put_dur(b, ph->min_observation_ms);
        rg_buf_puts(b, "\n  max_observation: ");
        if (ph->max_observation_ms)
            put_dur(b, ph->max_observation_ms);
        else
            rg_buf_puts(b, "unbounded");
        rg_buf_puts(b, "\n  min_requests: ");
        put_num(b, ph->min_requests);
        rg_buf_puts(b, "\n  no_data_timeout: ");
        put_dur(b, ph->no_data_timeout_ms);
        if (ph->description[0]) {
            rg_buf_puts(b, "\n  description: ");
            put_str(b, ph->description);
        }
        rg_buf_printf(b, "\n  gates:%s\n", ph->ngates ? "" : " []");
        for (size_t j = 0; j < ph->ngates; j++)
            dump_check(b, &ph->gates[j]);
        rg_buf_printf(b, "  triggers:%s\n", ph->ntriggers ? "" : " []");
        for (size_t j = 0; j < ph->ntriggers; j++)
            dump_check(b, &ph->triggers[j]);
    }
    rg_buf_printf(b, "triggers:%s\n", cl->ntriggers ? "" : " []");
    for (size_t j = 0; j < cl->ntriggers; j++)
        dump_check(b, &cl->triggers[j]);
    rg_buf_printf(b, "deployments:%s\n", cl->ndeployments ? "" : " []");
    for (size_t i = 0; i < cl->ndeployments; i++) {
        const struct rg_checklist_deployment *dp = &cl->deployments[i];
        rg_buf_puts(b, "- name: ");
        put_str(b, dp->name);
        rg_buf_puts(b, "\n  selector: ");
        put_str(b, dp->selector);
        if (dp->baseline_selector) {
            rg_buf_puts(b, "\n  baseline_selector: ");
            put_str(b, dp->baseline_selector);
        }
        if (dp->source) {
            rg_buf_puts(b, "\n  source: ");
            put_str(b, dp->source);
        }
        rg_buf_puts(b, "\n  phases: ");
        dump_phase_list(b, cl, dp->phases, dp->nphases);
        rg_buf_putc(b, '\n');
    }
    /* rg_buf appends report allocation failure only through a missing NUL. */
    if (b->len == before || !b->data)
        return RG_ENOMEM;
    return 0;
}
