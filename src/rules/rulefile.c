/* rules/rulefile.c - Prometheus rule files from the YAML tree, checked as rulefmt does.
 *
 * One pass over the tree: each key is looked up in a fixed table per level (file,
 * group, rule), unknown keys, wrong node kinds and duplicate keys are reported the
 * way yaml.v3's strict decoding words them, then the semantic checks of
 * rulefmt.RuleGroups.Validate and rulefmt.Rule.Validate run in Prometheus' order with
 * its messages. Positions come from the offending node, so that every message reads
 * "file:line:col: ...". A file with any problem yields no rules at all, as in
 * Prometheus, where a broken rule file fails the whole (re)load.
 */
#include "rules/rulefile.h"
#include "config/config.h"
#include "config/yaml.h"
#include "promql/ast.h"
#include "rules/template.h"
#include "util/err.h"
#include "util/file.h"
#include "util/utf8.h"

#include <errno.h>
#include <glob.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* qsort(3) that accepts an empty array with a NULL base (qsort itself may not). */
static void sort_items(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

#define MAX_RULE_FILE (64u << 20)

/* One problem found; they are reported sorted by position once the walk is done. */
struct problem_ent {
    int line, col;
    size_t seq;
    char *text;                 /* owned: "path:line:col: message" */
};

struct walk {
    const char *path;
    int path_suffix_line;       /* when set, a second "line:col: " follows the first */
    int path_suffix_col;
    struct problem_ent *probs;  /* owned */
    size_t nerr, cap;
    int oom;
};

static void problem(struct walk *w, const struct rg_yaml_node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(struct walk *w, const struct rg_yaml_node *at, const char *fmt, ...)
{
    struct rg_buf b = { 0 };
    va_list ap;

    if (w->nerr == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 8;
        struct problem_ent *n = realloc(w->probs, nc * sizeof(*n));
        if (!n) {
            w->oom = 1;
            return;
        }
        w->probs = n;
        w->cap = nc;
    }
    if (at && w->path_suffix_line)
        rg_buf_printf(&b, "%s:%d:%d: %d:%d: ", w->path, at->line, at->col, w->path_suffix_line,
                      w->path_suffix_col);
    else if (at)
        rg_buf_printf(&b, "%s:%d:%d: ", w->path, at->line, at->col);
    else
        rg_buf_printf(&b, "%s: ", w->path);
    va_start(ap, fmt);
    rg_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (!b.data) {
        w->oom = 1;
        return;
    }
    w->probs[w->nerr].line = at ? at->line : 0;
    w->probs[w->nerr].col = at ? at->col : 0;
    w->probs[w->nerr].seq = w->nerr;
    w->probs[w->nerr++].text = b.data;
}

static int problem_cmp(const void *a, const void *b)
{
    const struct problem_ent *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Appends the problems, sorted by position (stable), to @err and frees them. */
static void flush_problems(struct walk *w, struct rg_buf *err)
{
    sort_items(w->probs, w->nerr, sizeof(*w->probs), problem_cmp);
    for (size_t i = 0; i < w->nerr; i++) {
        rg_buf_printf(err, "%s\n", w->probs[i].text);
        free(w->probs[i].text);
    }
    free(w->probs);
}

static const char *kind_tag(const struct rg_yaml_node *n)
{
    return n->kind == RG_YAML_MAP ? "!!map" : n->kind == RG_YAML_SEQ ? "!!seq" : "!!str";
}

/* yaml.v3's message for a node that cannot become @type; it shortens long values to
 * their first 7 bytes and "...". */
static void bad_kind(struct walk *w, const struct rg_yaml_node *n, const char *type)
{
    if (n->kind == RG_YAML_SCALAR && n->scalar_len > 10)
        problem(w, n, "cannot unmarshal !!str `%.7s...` into %s", n->scalar, type);
    else if (n->kind == RG_YAML_SCALAR)
        problem(w, n, "cannot unmarshal !!str `%s` into %s", n->scalar, type);
    else
        problem(w, n, "cannot unmarshal %s into %s", kind_tag(n), type);
}

/* Reports duplicate keys of a map, as yaml.v3 does. */
static void check_dup_keys(struct walk *w, const struct rg_yaml_node *map)
{
    for (size_t i = 0; i + 1 < map->nitems; i += 2)
        for (size_t j = 0; j < i; j += 2) {
            const struct rg_yaml_node *a = map->items[j], *b = map->items[i];
            if (a->kind == RG_YAML_SCALAR && b->kind == RG_YAML_SCALAR &&
                strcmp(a->scalar, b->scalar) == 0) {
                problem(w, b, "mapping key \"%s\" already defined at line %d", b->scalar,
                        a->line);
                break;
            }
        }
}

static const char *scalar_or_empty(const struct rg_yaml_node *n)
{
    if (!n || n->kind != RG_YAML_SCALAR || (!n->quoted && rg_yaml_is_null(n)))
        return "";
    return n->scalar;
}

/* A string field: returns the text ("" for null) or NULL after reporting a wrong
 * node kind. */
static const char *get_string(struct walk *w, const struct rg_yaml_node *n)
{
    if (n->kind != RG_YAML_SCALAR) {
        bad_kind(w, n, "string");
        return NULL;
    }
    return scalar_or_empty(n);
}

/* model.Duration: a PromQL duration or "0"; anything else is an error. */
static int get_duration(struct walk *w, const struct rg_yaml_node *n, int64_t *out)
{
    const char *s;

    if (n->kind != RG_YAML_SCALAR) {
        bad_kind(w, n, "string");   /* model.Duration reads a string first */
        return -1;
    }
    s = scalar_or_empty(n);
    if (*s == '\0') {
        *out = 0;
        return 0;
    }
    if (rg_promql_parse_duration(s, strlen(s), out) || *out < 0) {
        problem(w, n, "not a valid duration string: \"%s\"", s);
        return -1;
    }
    return 0;
}

static int get_int(struct walk *w, const struct rg_yaml_node *n, int64_t *out)
{
    char *end;
    const char *s;

    if (n->kind != RG_YAML_SCALAR) {
        bad_kind(w, n, "int");
        return -1;
    }
    s = scalar_or_empty(n);
    if (*s == '\0') {
        *out = 0;
        return 0;
    }
    errno = 0;
    *out = strtoll(s, &end, 10);
    if (n->quoted || *end || errno || end == s) {
        bad_kind(w, n, "int");
        return -1;
    }
    return 0;
}

int rg_rule_valid_metric_name(const char *s)
{
    if (!*s)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (p > s && c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

int rg_rule_valid_label_name(const char *s)
{
    if (!*s)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (p > s && c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

static void kv_free(struct rg_rule_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
        rg_template_free(kv[i].tmpl);
    }
    free(kv);
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct rg_rule_kv *)a)->name, ((const struct rg_rule_kv *)b)->name);
}

/* Reads a map[string]string, sorted by key. Returns 0, -1 on a reported problem,
 * RG_ENOMEM. */
static int get_map(struct walk *w, const struct rg_yaml_node *n, struct rg_rule_kv **out,
                   size_t *nout)
{
    struct rg_rule_kv *kv;
    size_t k = 0;
    int bad = 0;

    *out = NULL;
    *nout = 0;
    if (n->kind == RG_YAML_SCALAR && !n->quoted && rg_yaml_is_null(n))
        return 0;
    if (n->kind != RG_YAML_MAP) {
        bad_kind(w, n, "map[string]string");
        return -1;
    }
    check_dup_keys(w, n);
    if (n->nitems == 0)
        return 0;
    if (!(kv = calloc(n->nitems / 2, sizeof(*kv))))
        return RG_ENOMEM;
    for (size_t i = 0; i + 1 < n->nitems; i += 2) {
        const struct rg_yaml_node *key = n->items[i], *val = n->items[i + 1];
        const char *v;
        if (key->kind != RG_YAML_SCALAR) {
            bad_kind(w, key, "string");
            bad = 1;
            continue;
        }
        if (!(v = get_string(w, val))) {
            bad = 1;
            continue;
        }
        /* A duplicate key was reported above; keep the last value as yaml.v3 does. */
        {
            size_t j;
            for (j = 0; j < k; j++)
                if (strcmp(kv[j].name, key->scalar) == 0)
                    break;
            if (j < k) {
                free(kv[j].value);
                kv[j].value = strdup(v);
                if (!kv[j].value)
                    goto oom;
                continue;
            }
        }
        kv[k].name = strdup(key->scalar);
        kv[k].value = strdup(v);
        k++;
        if (!kv[k - 1].name || !kv[k - 1].value)
            goto oom;
    }
    sort_items(kv, k, sizeof(*kv), kv_cmp);
    *out = kv;
    *nout = k;
    return bad ? -1 : 0;

oom:
    kv_free(kv, k);
    return RG_ENOMEM;
}

static const struct rg_yaml_node *map_key_node(const struct rg_yaml_node *map, const char *key)
{
    const struct rg_yaml_node *found = NULL;
    for (size_t i = 0; map && map->kind == RG_YAML_MAP && i + 1 < map->nitems; i += 2)
        if (map->items[i]->kind == RG_YAML_SCALAR && strcmp(map->items[i]->scalar, key) == 0)
            found = map->items[i];
    return found;
}

/* The value node of the last occurrence of @key (yaml.v3 keeps the last). */
static const struct rg_yaml_node *map_val(const struct rg_yaml_node *map, const char *key)
{
    const struct rg_yaml_node *found = NULL;
    for (size_t i = 0; map && map->kind == RG_YAML_MAP && i + 1 < map->nitems; i += 2)
        if (map->items[i]->kind == RG_YAML_SCALAR && strcmp(map->items[i]->scalar, key) == 0)
            found = map->items[i + 1];
    return found;
}

static void check_keys(struct walk *w, const struct rg_yaml_node *map, const char *const *keys,
                       const char *type)
{
    check_dup_keys(w, map);
    for (size_t i = 0; i + 1 < map->nitems; i += 2) {
        const struct rg_yaml_node *k = map->items[i];
        size_t j;
        if (k->kind != RG_YAML_SCALAR) {
            bad_kind(w, k, "string");
            continue;
        }
        for (j = 0; keys[j]; j++)
            if (strcmp(keys[j], k->scalar) == 0)
                break;
        if (!keys[j])
            problem(w, k, "field %s not found in type %s", k->scalar, type);
    }
}

static void rule_cleanup(struct rg_rule *r)
{
    free(r->name);
    free(r->expr_text);
    rg_promql_node_free(r->expr);
    kv_free(r->labels, r->nlabels);
    kv_free(r->annotations, r->nannotations);
}

static void group_cleanup(struct rg_rule_group *g)
{
    free(g->source);
    free(g->name);
    free(g->file);
    kv_free(g->labels, g->nlabels);
    for (size_t i = 0; i < g->nrules; i++)
        rule_cleanup(&g->rules[i]);
    free(g->rules);
}

void rg_rulefile_free(struct rg_rulefile *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->ngroups; i++)
        group_cleanup(&f->groups[i]);
    free(f->groups);
    free(f->path);
    free(f);
}

static const char *const group_keys[] = {
    "name", "interval", "query_offset", "limit", "rules", "labels", "source", NULL,
};
static const char *const rule_keys[] = {
    "record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations", NULL,
};

/* Reports a rule-level problem in rulefmt.Error's form. */
static void rule_problem(struct walk *w, const struct rg_yaml_node *at, const char *group,
                         size_t idx, const char *rname, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void rule_problem(struct walk *w, const struct rg_yaml_node *at, const char *group,
                         size_t idx, const char *rname, const char *fmt, ...)
{
    struct rg_buf msg = { 0 };
    va_list ap;

    va_start(ap, fmt);
    rg_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    problem(w, at, "group \"%s\", rule %zu, \"%s\": %s", group, idx, rname,
            msg.data ? msg.data : "");
    rg_buf_cleanup(&msg);
}

static int parse_rule(struct walk *w, const struct rg_yaml_node *n, const char *group,
                      size_t idx, struct rg_rule *r)
{
    const struct rg_yaml_node *rec = map_val(n, "record"), *alert = map_val(n, "alert");
    const struct rg_yaml_node *expr = map_val(n, "expr"), *v;
    const char *srec = "", *salert = "", *sexpr = "", *rname;
    size_t before = w->nerr;
    int rc;

    memset(r, 0, sizeof(*r));
    r->line = n->line;
    r->col = n->col;
    if (n->kind != RG_YAML_MAP) {
        bad_kind(w, n, "rulefmt.Rule");
        return 0;
    }
    check_keys(w, n, rule_keys, "rulefmt.RuleNode");
    if (rec && !(srec = get_string(w, rec)))
        srec = "";
    if (alert && !(salert = get_string(w, alert)))
        salert = "";
    if (expr && !(sexpr = get_string(w, expr)))
        sexpr = "";
    if ((v = map_val(n, "for")))
        get_duration(w, v, &r->for_ms);
    if ((v = map_val(n, "keep_firing_for")))
        get_duration(w, v, &r->keep_firing_for_ms);
    if ((v = map_val(n, "labels")) && (rc = get_map(w, v, &r->labels, &r->nlabels)) == RG_ENOMEM)
        return rc;
    if ((v = map_val(n, "annotations")) &&
        (rc = get_map(w, v, &r->annotations, &r->nannotations)) == RG_ENOMEM)
        return rc;
    rname = *salert ? salert : srec;

    /* rulefmt.Rule.Validate, in its order. */
    if (*srec && *salert) {
        /* Prometheus names both nodes: "record's line:col: alert's line:col: ...". */
        w->path_suffix_line = alert->line;
        w->path_suffix_col = alert->col;
        rule_problem(w, rec, group, idx, rname, "only one of 'record' and 'alert' must be set");
        w->path_suffix_line = 0;
    }
    if (!*srec && !*salert)
        rule_problem(w, rec ? rec : alert ? alert : n, group, idx, rname,
                     "one of 'record' or 'alert' must be set");
    if (!*sexpr) {
        rule_problem(w, expr ? expr : n, group, idx, rname, "field 'expr' must be set in rule");
    } else {
        char msg[512];
        rc = rg_promql_parse(sexpr, &r->expr, msg, sizeof(msg));
        if (rc == RG_ENOMEM)
            return rc;
        if (rc)
            rule_problem(w, expr, group, idx, rname, "could not parse expression: %s", msg);
    }
    if (*srec) {
        if (r->nannotations)
            rule_problem(w, rec, group, idx, rname,
                         "invalid field 'annotations' in recording rule");
        if (r->for_ms)
            rule_problem(w, rec, group, idx, rname, "invalid field 'for' in recording rule");
        if (r->keep_firing_for_ms)
            rule_problem(w, rec, group, idx, rname,
                         "invalid field 'keep_firing_for' in recording rule");
        if (!rg_rule_valid_metric_name(srec))
            rule_problem(w, rec, group, idx, rname, "invalid recording rule name: %s", srec);
        if (strchr(srec, '{') || strchr(srec, '}'))
            rule_problem(w, rec, group, idx, rname,
                         "braces present in the recording rule name; should it be in expr?: %s",
                         srec);
    }
    for (size_t i = 0; i < r->nlabels; i++) {
        const struct rg_yaml_node *at = map_key_node(map_val(n, "labels"), r->labels[i].name);
        if (!rg_rule_valid_label_name(r->labels[i].name) ||
            strcmp(r->labels[i].name, "__name__") == 0)
            rule_problem(w, at, group, idx, rname, "invalid label name: %s", r->labels[i].name);
        if (!rg_utf8_valid(r->labels[i].value, strlen(r->labels[i].value)))
            rule_problem(w, at, group, idx, rname, "invalid label value: %s", r->labels[i].value);
    }
    for (size_t i = 0; i < r->nannotations; i++)
        if (!rg_rule_valid_label_name(r->annotations[i].name))
            rule_problem(w, map_key_node(map_val(n, "annotations"), r->annotations[i].name),
                         group, idx, rname, "invalid annotation name: %s",
                         r->annotations[i].name);
    /* Templates of alerting rules are compiled now and kept for evaluation. */
    if (*salert) {
        struct rg_buf tname = { 0 };
        if (rg_buf_printf(&tname, "__alert_%s", salert))
            return RG_ENOMEM;
        for (int pass = 0; pass < 2; pass++) {
            struct rg_rule_kv *kv = pass ? r->annotations : r->labels;
            size_t nkv = pass ? r->nannotations : r->nlabels;
            const struct rg_yaml_node *m = map_val(n, pass ? "annotations" : "labels");
            for (size_t i = 0; i < nkv; i++) {
                struct rg_buf msg = { 0 };
                rc = rg_template_compile(tname.data, kv[i].value, &kv[i].tmpl, &msg);
                if (rc == RG_EPARSE) {
                    const struct rg_yaml_node *at = map_val(m, kv[i].name);
                    rule_problem(w, at, group, idx, rname, "%s \"%s\": %s",
                                 pass ? "annotation" : "label", kv[i].name, msg.data);
                } else if (rc) {
                    rg_buf_cleanup(&msg);
                    rg_buf_cleanup(&tname);
                    return rc;
                }
                rg_buf_cleanup(&msg);
            }
        }
        rg_buf_cleanup(&tname);
    }
    if (w->nerr != before)
        return 0;
    r->type = *salert ? RG_RULE_ALERT : RG_RULE_RECORD;
    if (!(r->name = strdup(rname)) || !(r->expr_text = strdup(sexpr)))
        return RG_ENOMEM;
    return 0;
}

static int parse_group(struct walk *w, const struct rg_yaml_node *n, struct rg_rule_group *g)
{
    const struct rg_yaml_node *v;
    const char *name = "";
    int rc;

    g->line = n->line;
    g->col = n->col;
    if (n->kind != RG_YAML_MAP) {
        bad_kind(w, n, "rulefmt.RuleGroup");
        return 0;
    }
    check_keys(w, n, group_keys, "rulefmt.RuleGroup");
    if ((v = map_val(n, "name")) && !(name = get_string(w, v)))
        name = "";
    if (!(g->name = strdup(name)) || !(g->file = strdup(w->path)))
        return RG_ENOMEM;
    if ((v = map_val(n, "interval")))
        get_duration(w, v, &g->interval_ms);
    if ((v = map_val(n, "query_offset")) && !(v->kind == RG_YAML_SCALAR && rg_yaml_is_null(v)))
        g->has_query_offset = get_duration(w, v, &g->query_offset_ms) == 0;
    if ((v = map_val(n, "limit")))
        get_int(w, v, &g->limit);
    if ((v = map_val(n, "labels")) && (rc = get_map(w, v, &g->labels, &g->nlabels)) == RG_ENOMEM)
        return rc;
    if ((v = map_val(n, "source")) && !(v->kind == RG_YAML_SCALAR && rg_yaml_is_null(v))) {
        const char *src = get_string(w, v);
        g->source_line = v->line;
        g->source_col = v->col;
        if (src && !*src)
            problem(w, v, "source must not be empty");
        else if (src && !(g->source = strdup(src)))
            return RG_ENOMEM;
    }
    if (!*name)
        problem(w, n, "Groupname must not be empty");
    for (size_t i = 0; i < g->nlabels; i++) {
        const struct rg_yaml_node *at = map_key_node(map_val(n, "labels"), g->labels[i].name);
        if (!rg_rule_valid_label_name(g->labels[i].name) ||
            strcmp(g->labels[i].name, "__name__") == 0)
            problem(w, at, "invalid label name: %s", g->labels[i].name);
        if (!rg_utf8_valid(g->labels[i].value, strlen(g->labels[i].value)))
            problem(w, at, "invalid label value: %s", g->labels[i].value);
    }
    v = map_val(n, "rules");
    if (v && !(v->kind == RG_YAML_SCALAR && rg_yaml_is_null(v))) {
        if (v->kind != RG_YAML_SEQ) {
            bad_kind(w, v, "[]rulefmt.RuleNode");
            return 0;
        }
        if (v->nitems && !(g->rules = calloc(v->nitems, sizeof(*g->rules))))
            return RG_ENOMEM;
        for (size_t i = 0; i < v->nitems; i++) {
            rc = parse_rule(w, v->items[i], name, i + 1, &g->rules[g->nrules]);
            g->nrules++;
            if (rc)
                return rc;
        }
    }
    return 0;
}

int rg_rulefile_parse(const char *path, const char *text, size_t len, struct rg_rulefile **out,
                      struct rg_buf *err)
{
    struct walk w = { .path = path };
    struct rg_yaml_node *root = NULL;
    struct rg_rulefile *f;
    const struct rg_yaml_node *groups;
    char msg[512];
    int rc;

    rc = rg_yaml_parse(text, len, &root, msg, sizeof(msg));
    if (rc == RG_EPARSE) {
        rg_buf_printf(err, "%s:%s\n", path, msg);
        return rc;
    }
    if (rc)
        return rc;
    if (!(f = calloc(1, sizeof(*f))) || !(f->path = strdup(path))) {
        rc = RG_ENOMEM;
        goto done;
    }
    if (root->kind == RG_YAML_SCALAR && rg_yaml_is_null(root))
        goto done;
    if (root->kind != RG_YAML_MAP) {
        bad_kind(&w, root, "rulefmt.RuleGroups");
        goto done;
    }
    {
        static const char *const top_keys[] = { "groups", NULL };
        check_keys(&w, root, top_keys, "rulefmt.RuleGroups");
    }
    groups = map_val(root, "groups");
    if (groups && !(groups->kind == RG_YAML_SCALAR && rg_yaml_is_null(groups))) {
        if (groups->kind != RG_YAML_SEQ) {
            bad_kind(&w, groups, "[]rulefmt.RuleGroup");
            goto done;
        }
        if (groups->nitems && !(f->groups = calloc(groups->nitems, sizeof(*f->groups)))) {
            rc = RG_ENOMEM;
            goto done;
        }
        for (size_t i = 0; i < groups->nitems; i++) {
            struct rg_rule_group *g = &f->groups[f->ngroups++];
            if ((rc = parse_group(&w, groups->items[i], g)))
                goto done;
            for (size_t j = 0; j + 1 < f->ngroups; j++)
                if (g->name && *g->name && f->groups[j].name &&
                    strcmp(f->groups[j].name, g->name) == 0) {
                    problem(&w, groups->items[i], "groupname: \"%s\" is repeated in the same file",
                            g->name);
                    break;
                }
        }
    }

done:
    rg_yaml_free(root);
    flush_problems(&w, err);
    if (rc == 0 && w.oom)
        rc = RG_ENOMEM;
    if (rc == 0 && w.nerr)
        rc = RG_EPARSE;
    if (rc) {
        rg_rulefile_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

int rg_rulefile_load(const char *path, struct rg_rulefile **out, struct rg_buf *err)
{
    struct rg_buf text = { 0 };
    int rc = rg_file_read(path, MAX_RULE_FILE, &text);

    if (rc) {
        if (rc == RG_ENOMEM)
            return rc;
        rg_buf_printf(err, "%s: %s\n", path,
                      rc == RG_ENOENT ? "open: no such file or directory" : rg_strerror(rc));
        return RG_EIO;
    }
    rc = rg_rulefile_parse(path, text.data ? text.data : "", text.len, out, err);
    rg_buf_cleanup(&text);
    return rc;
}

int rg_rulefile_detect(const char *path)
{
    struct rg_buf text = { 0 };
    struct rg_yaml_node *root = NULL;
    char msg[256];
    int found = 0;

    if (rg_file_read(path, MAX_RULE_FILE, &text) == 0 &&
        rg_yaml_parse(text.data ? text.data : "", text.len, &root, msg, sizeof(msg)) == 0) {
        found = root->kind == RG_YAML_MAP && rg_yaml_get(root, "groups") != NULL;
        rg_yaml_free(root);
    }
    rg_buf_cleanup(&text);
    return found;
}

/* ---- Canonical dump ----------------------------------------------------- */

/* A YAML double-quoted scalar: backslash escapes for '"', '\\' and control bytes,
 * UTF-8 passed through. */
static void dq(struct rg_buf *out, const char *s)
{
    rg_buf_putc(out, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"': rg_buf_puts(out, "\\\""); break;
        case '\\': rg_buf_puts(out, "\\\\"); break;
        case '\n': rg_buf_puts(out, "\\n"); break;
        case '\t': rg_buf_puts(out, "\\t"); break;
        case '\r': rg_buf_puts(out, "\\r"); break;
        default:
            if (c < 0x20 || c == 0x7f)
                rg_buf_printf(out, "\\x%02x", c);
            else
                rg_buf_putc(out, (char)c);
        }
    }
    rg_buf_putc(out, '"');
}

static void dump_kv(struct rg_buf *out, const char *indent, const char *key,
                    const struct rg_rule_kv *kv, size_t n)
{
    if (!n)
        return;
    rg_buf_printf(out, "%s%s:\n", indent, key);
    for (size_t i = 0; i < n; i++) {
        rg_buf_printf(out, "%s  %s: ", indent, kv[i].name);
        dq(out, kv[i].value);
        rg_buf_putc(out, '\n');
    }
}

static void dump_duration(struct rg_buf *out, const char *indent, const char *key, int64_t ms)
{
    rg_buf_printf(out, "%s%s: ", indent, key);
    rg_promql_format_duration(ms, out);
    rg_buf_putc(out, '\n');
}

int rg_rulefile_dump(const struct rg_rulefile *f, struct rg_buf *out)
{
    size_t start = out->len;

    if (rg_buf_reserve(out, 64))
        return RG_ENOMEM;
    if (f->ngroups == 0)
        rg_buf_puts(out, "groups: []\n");
    else
        rg_buf_puts(out, "groups:\n");
    for (size_t i = 0; i < f->ngroups; i++) {
        const struct rg_rule_group *g = &f->groups[i];
        rg_buf_puts(out, "  - name: ");
        dq(out, g->name);
        rg_buf_putc(out, '\n');
        if (g->interval_ms)
            dump_duration(out, "    ", "interval", g->interval_ms);
        if (g->has_query_offset)
            dump_duration(out, "    ", "query_offset", g->query_offset_ms);
        if (g->limit)
            rg_buf_printf(out, "    limit: %lld\n", (long long)g->limit);
        dump_kv(out, "    ", "labels", g->labels, g->nlabels);
        if (g->source) {
            rg_buf_puts(out, "    source: ");
            dq(out, g->source);
            rg_buf_putc(out, '\n');
        }
        rg_buf_puts(out, g->nrules ? "    rules:\n" : "    rules: []\n");
        for (size_t j = 0; j < g->nrules; j++) {
            const struct rg_rule *r = &g->rules[j];
            struct rg_buf e = { 0 };
            rg_buf_printf(out, "      - %s: ", r->type == RG_RULE_ALERT ? "alert" : "record");
            dq(out, r->name);
            rg_buf_puts(out, "\n        expr: ");
            if (rg_promql_print(r->expr, &e)) {
                rg_buf_cleanup(&e);
                return RG_ENOMEM;
            }
            dq(out, e.data ? e.data : "");
            rg_buf_cleanup(&e);
            rg_buf_putc(out, '\n');
            if (r->for_ms)
                dump_duration(out, "        ", "for", r->for_ms);
            if (r->keep_firing_for_ms)
                dump_duration(out, "        ", "keep_firing_for", r->keep_firing_for_ms);
            dump_kv(out, "        ", "labels", r->labels, r->nlabels);
            dump_kv(out, "        ", "annotations", r->annotations, r->nannotations);
        }
    }
    /* rg_buf appends only fail on allocation; a short buffer means one failed. */
    if (!out->data || out->len == start)
        return RG_ENOMEM;
    return 0;
}

/* ---- rule_files: in the configuration ------------------------------------ */

struct each_ctx {
    int (*cb)(const char *path, void *ud);
    void *ud;
    struct rg_buf *err;
    size_t nerr;
};

static int each_section(const char *doc, const struct rg_yaml_node *sec, void *ud)
{
    struct each_ctx *c = ud;
    char path[4096];
    int rc;

    if (sec->kind == RG_YAML_SCALAR && rg_yaml_is_null(sec))
        return 0;
    if (sec->kind != RG_YAML_SEQ) {
        rg_buf_printf(c->err, "%s:%d:%d: rule_files: expected a list of file names or "
                      "patterns\n", doc, sec->line, sec->col);
        c->nerr++;
        return 0;
    }
    for (size_t i = 0; i < sec->nitems; i++) {
        const struct rg_yaml_node *it = sec->items[i];
        if (it->kind != RG_YAML_SCALAR || rg_yaml_is_null(it)) {
            rg_buf_printf(c->err, "%s:%d:%d: rule_files: expected a file name or pattern\n",
                          doc, it->line, it->col);
            c->nerr++;
            continue;
        }
        rg_config_resolve_path(doc, it->scalar, path, sizeof(path));
        if (strpbrk(it->scalar, "*?[")) {
            glob_t g;
            int grc = glob(path, 0, NULL, &g);
            if (grc == GLOB_NOMATCH)
                continue;
            if (grc) {
                rg_buf_printf(c->err, "%s:%d:%d: rule_files: invalid pattern \"%s\"\n", doc,
                              it->line, it->col, it->scalar);
                c->nerr++;
                continue;
            }
            for (size_t k = 0; k < g.gl_pathc; k++)
                if ((rc = c->cb(g.gl_pathv[k], c->ud))) {
                    globfree(&g);
                    return rc;
                }
            globfree(&g);
        } else if ((rc = c->cb(path, c->ud))) {
            return rc;
        }
    }
    return 0;
}

int rg_rulefile_each_path(const struct rg_config *cfg,
                          int (*cb)(const char *path, void *ud), void *ud, struct rg_buf *err)
{
    struct each_ctx c = { cb, ud, err, 0 };
    int rc = rg_config_each_section(cfg, "rule_files", each_section, &c);
    if (rc)
        return rc;
    return c.nerr ? RG_EPARSE : 0;
}
