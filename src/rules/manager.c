/* rules/manager.c - evaluation of Prometheus rule groups over the store.
 *
 * Groups are scheduled on Prometheus' slots (interval-aligned plus a per-group
 * offset from an FNV-1a hash of file and name). A group evaluation runs its rules in
 * order; each rule's output series are tracked as sorted label-set keys
 * ("name 0xff value 0xff ...", 0xff never occurs in UTF-8) so that the series that
 * disappeared since the previous evaluation get stale markers by one merge of two
 * sorted lists. Alert state changes are detected with an FNV-1a fingerprint over
 * every alert's label set, state and timestamps; a tick that changed one rewrites
 * the state file atomically.
 */
#include "rules/manager.h"
#include "config/config.h"
#include "config/yaml.h"
#include "promql/ast.h"
#include "query/client.h"
#include "rules/template.h"
#include "util/err.h"
#include "util/file.h"
#include "util/json.h"
#include "util/log.h"
#include "util/time.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#define MAX_STATE_FILE (256u << 20)

/* One output series key of a rule: sorted labels as name 0xff value 0xff ... */
struct key {
    char *p;
    size_t len;
};

struct rg__rule_series {
    struct key *keys;      /* owned, sorted by bytes, unique */
    size_t n, cap;
};

struct rg_rules {
    const struct rg_config *cfg;
    struct rg_store *store;
    struct rg_rules_opts opts;
    char *state_path;                  /* owned copy of opts.state_path */
    struct rg_rules_global global;
    struct rg_rulefile **files;        /* owned */
    size_t nfiles;
    struct rg_rules_group *groups;     /* owned */
    size_t ngroups;
    rg_rules_notify_cb notify;
    void *notify_ud;
    int dirty;                         /* alert state changed since the last save */
    int save_err;                      /* error of the last failed save, logged once */
    struct rg_rules_notification *out; /* scratch: notifications of one group */
    size_t nout, capout;
    struct remote_eval **remote;       /* owned array, one per group: its evaluation in
                                        * flight (not owned) or NULL */
};

struct remote_eval;
static void save_if_dirty(struct rg_rules *r);
static void remote_detach(struct remote_eval *ev);

static void sort_items(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

#define FNV_INIT UINT64_C(0xcbf29ce484222325)

const char *rg_rule_health_name(enum rg_rule_health h)
{
    switch (h) {
    case RG_RULE_HEALTH_OK: return "ok";
    case RG_RULE_HEALTH_ERR: return "err";
    default: return "unknown";
    }
}

/* ---- global ---------------------------------------------------------------- */

struct gctx {
    struct rg_rules_global *g;
    struct rg_buf *err;
    size_t nerr;
    int oom;
};

static void gproblem(struct gctx *c, const char *path, const struct rg_yaml_node *n,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void gproblem(struct gctx *c, const char *path, const struct rg_yaml_node *n,
                     const char *fmt, ...)
{
    va_list ap;
    rg_buf_printf(c->err, "%s:%d:%d: ", path, n->line, n->col);
    va_start(ap, fmt);
    rg_buf_vprintf(c->err, fmt, ap);
    va_end(ap);
    rg_buf_putc(c->err, '\n');
    c->nerr++;
}

static int label_name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct rg_label *)a)->name, ((const struct rg_label *)b)->name);
}

static void labels_free(struct rg_label *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)l[i].name);
        free((char *)l[i].value);
    }
    free(l);
}

static int global_duration(struct gctx *c, const char *path, const struct rg_yaml_node *v,
                           const char *key, int positive, int64_t *out)
{
    int64_t ms;
    if (v->kind != RG_YAML_SCALAR || rg_promql_parse_duration(v->scalar, v->scalar_len, &ms) ||
        ms < 0 || (positive && ms == 0)) {
        gproblem(c, path, v, "global.%s: expected a %sduration such as 1m or 30s", key,
                 positive ? "positive " : "");
        return -1;
    }
    *out = ms;
    return 0;
}

static int global_section(const char *path, const struct rg_yaml_node *sec, void *ud)
{
    struct gctx *c = ud;
    struct rg_rules_global *g = c->g;

    if (sec->kind == RG_YAML_SCALAR && rg_yaml_is_null(sec))
        return 0;
    if (sec->kind != RG_YAML_MAP) {
        gproblem(c, path, sec, "global: expected a map");
        return 0;
    }
    for (size_t i = 0; i + 1 < sec->nitems; i += 2) {
        const struct rg_yaml_node *k = sec->items[i], *v = sec->items[i + 1];
        const char *key = k->kind == RG_YAML_SCALAR ? k->scalar : "";
        if (strcmp(key, "evaluation_interval") == 0) {
            global_duration(c, path, v, key, 1, &g->evaluation_interval_ms);
        } else if (strcmp(key, "rule_query_offset") == 0) {
            global_duration(c, path, v, key, 0, &g->rule_query_offset_ms);
        } else if (strcmp(key, "resend_delay") == 0) {
            global_duration(c, path, v, key, 1, &g->resend_delay_ms);
        } else if (strcmp(key, "external_url") == 0) {
            char *u;
            size_t len;
            if (v->kind != RG_YAML_SCALAR) {
                gproblem(c, path, v, "global.external_url: expected a URL");
                continue;
            }
            if (!(u = strdup(rg_yaml_is_null(v) ? "" : v->scalar))) {
                c->oom = 1;
                return RG_ENOMEM;
            }
            len = strlen(u);
            while (len && u[len - 1] == '/')
                u[--len] = '\0';
            if (len && strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
                gproblem(c, path, v, "global.external_url: expected an http:// or https:// URL");
            free(g->external_url);
            g->external_url = u;
        } else if (strcmp(key, "external_labels") == 0) {
            struct rg_label *l = NULL;
            size_t n = 0;
            if (!(v->kind == RG_YAML_MAP || (v->kind == RG_YAML_SCALAR && rg_yaml_is_null(v)))) {
                gproblem(c, path, v, "global.external_labels: expected a map of labels");
                continue;
            }
            if (v->kind == RG_YAML_MAP && v->nitems &&
                !(l = calloc(v->nitems / 2, sizeof(*l)))) {
                c->oom = 1;
                return RG_ENOMEM;
            }
            for (size_t j = 0; v->kind == RG_YAML_MAP && j + 1 < v->nitems; j += 2) {
                const struct rg_yaml_node *lk = v->items[j], *lv = v->items[j + 1];
                if (lk->kind != RG_YAML_SCALAR || !rg_rule_valid_label_name(lk->scalar) ||
                    strcmp(lk->scalar, "__name__") == 0) {
                    gproblem(c, path, lk, "global.external_labels: invalid label name \"%s\"",
                             lk->kind == RG_YAML_SCALAR ? lk->scalar : "?");
                    continue;
                }
                if (lv->kind != RG_YAML_SCALAR) {
                    gproblem(c, path, lv, "global.external_labels.%s: expected a string",
                             lk->scalar);
                    continue;
                }
                for (size_t q = 0; q < n; q++)
                    if (strcmp(l[q].name, lk->scalar) == 0)
                        gproblem(c, path, lk, "global.external_labels: duplicate label \"%s\"",
                                 lk->scalar);
                l[n].name = strdup(lk->scalar);
                l[n].value = strdup(rg_yaml_is_null(lv) ? "" : lv->scalar);
                n++;
                if (!l[n - 1].name || !l[n - 1].value) {
                    labels_free(l, n);
                    c->oom = 1;
                    return RG_ENOMEM;
                }
            }
            sort_items(l, n, sizeof(*l), label_name_cmp);
            labels_free(g->external_labels, g->nexternal);
            g->external_labels = l;
            g->nexternal = n;
        } else {
            gproblem(c, path, k, "global: unknown key \"%s\"", key);
        }
    }
    return 0;
}

int rg_rules_global_parse(const struct rg_config *cfg, struct rg_rules_global *out,
                          struct rg_buf *err)
{
    struct gctx c = { out, err, 0, 0 };
    int rc;

    memset(out, 0, sizeof(*out));
    out->evaluation_interval_ms = 60000;
    out->resend_delay_ms = RG_ALERT_DEFAULT_RESEND_DELAY_MS;
    if (!(out->external_url = strdup("")))
        return RG_ENOMEM;
    rc = rg_config_each_section(cfg, "global", global_section, &c);
    if (rc || c.oom)
        return RG_ENOMEM;
    return c.nerr ? RG_EPARSE : 0;
}

void rg_rules_global_cleanup(struct rg_rules_global *g)
{
    if (!g)
        return;
    free(g->external_url);
    labels_free(g->external_labels, g->nexternal);
    memset(g, 0, sizeof(*g));
}

/* ---- Loading ---------------------------------------------------------------- */

struct load_ctx {
    struct rg_rulefile ***files;
    size_t *nfiles;
    struct rg_buf *err;
    int rc;                            /* first loading error */
};

static int load_one(const char *path, void *ud)
{
    struct load_ctx *c = ud;
    struct rg_rulefile *f = NULL;
    int rc = rg_rulefile_load(path, &f, c->err);

    if (rc == RG_ENOMEM)
        return rc;
    if (rc) {
        if (!c->rc)
            c->rc = rc;
        return 0;
    }
    if (!c->files) {
        rg_rulefile_free(f);
        return 0;
    }
    {
        struct rg_rulefile **n = realloc(*c->files, (*c->nfiles + 1) * sizeof(*n));
        if (!n) {
            rg_rulefile_free(f);
            return RG_ENOMEM;
        }
        *c->files = n;
        n[(*c->nfiles)++] = f;
    }
    return 0;
}

int rg_rules_check(const struct rg_config *cfg, struct rg_buf *err)
{
    struct rg_rules_global g;
    struct load_ctx c = { NULL, NULL, err, 0 };
    int rc = rg_rules_global_parse(cfg, &g, err);
    int rc2;

    rg_rules_global_cleanup(&g);
    if (rc == RG_ENOMEM)
        return rc;
    rc2 = rg_rulefile_each_path(cfg, load_one, &c, err);
    if (rc2 == RG_ENOMEM)
        return rc2;
    if (rc)
        return rc;
    if (rc2)
        return rc2;
    return c.rc;
}

int rg_rules_generator_url(const char *external_url, const char *expr, struct rg_buf *out)
{
    rg_buf_puts(out, external_url ? external_url : "");
    rg_buf_puts(out, "/graph?g0.expr=");
    for (const unsigned char *p = (const unsigned char *)expr; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~')
            rg_buf_putc(out, (char)*p);
        else if (*p == ' ')
            rg_buf_putc(out, '+');
        else
            rg_buf_printf(out, "%%%02X", *p);
    }
    return rg_buf_puts(out, "&g0.tab=1");
}

void rg_rules_opts_default(struct rg_rules_opts *o)
{
    memset(o, 0, sizeof(*o));
    rg_promql_opts_default(&o->query);
    o->clock_ns = rg_mono_ns;
}

static void series_free(struct rg__rule_series *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->keys[i].p);
    free(s->keys);
    free(s);
}

static void group_cleanup(struct rg_rules_group *g)
{
    for (size_t i = 0; i < g->nrules; i++) {
        struct rg_rule_state *rs = &g->rules[i];
        free(rs->query);
        free(rs->generator_url);
        free(rs->last_error);
        rg_alert_set_cleanup(&rs->alerts);
        series_free(rs->prev);
    }
    free(g->rules);
}

void rg_rules_free(struct rg_rules *r)
{
    if (!r)
        return;
    /* Evaluations in flight finish without the manager: their completions (at the
     * latest the client's cancellation) free them. */
    for (size_t i = 0; r->remote && i < r->ngroups; i++)
        if (r->remote[i])
            remote_detach(r->remote[i]);
    free(r->remote);
    for (size_t i = 0; i < r->ngroups; i++)
        group_cleanup(&r->groups[i]);
    free(r->groups);
    for (size_t i = 0; i < r->nfiles; i++)
        rg_rulefile_free(r->files[i]);
    free(r->files);
    rg_rules_global_cleanup(&r->global);
    free(r->state_path);
    free(r->out);
    free(r);
}

static int load_state(struct rg_rules *r);

/* Resolves every group's `source:` against opts.sources. */
static int resolve_sources(struct rg_rules *r, struct rg_buf *err)
{
    int bad = 0;

    for (size_t i = 0; i < r->ngroups; i++) {
        struct rg_rules_group *g = &r->groups[i];
        if (!g->def->source)
            continue;
        g->source = rg_query_sources_find(r->opts.sources, g->def->source);
        if (!g->source) {
            rg_buf_printf(err, "%s:%d:%d: group \"%s\": unknown source \"%s\" (not in "
                               "sources:)\n", g->def->file, g->def->source_line,
                          g->def->source_col, g->def->name, g->def->source);
            bad = 1;
        }
    }
    return bad ? RG_EPARSE : 0;
}

static int build_groups(struct rg_rules *r)
{
    size_t total = 0;

    for (size_t i = 0; i < r->nfiles; i++)
        total += r->files[i]->ngroups;
    if (total && !(r->groups = calloc(total, sizeof(*r->groups))))
        return RG_ENOMEM;
    for (size_t i = 0; i < r->nfiles; i++)
        for (size_t j = 0; j < r->files[i]->ngroups; j++) {
            const struct rg_rule_group *def = &r->files[i]->groups[j];
            struct rg_rules_group *g = &r->groups[r->ngroups++];
            uint64_t h = fnv(FNV_INIT, def->file, strlen(def->file));
            h = fnv(h, "\xff", 1);
            h = fnv(h, def->name, strlen(def->name));
            g->def = def;
            g->interval_ms = def->interval_ms ? def->interval_ms
                                              : r->global.evaluation_interval_ms;
            g->query_offset_ms = def->has_query_offset ? def->query_offset_ms
                                                       : r->global.rule_query_offset_ms;
            g->offset_ms = (int64_t)(h % (uint64_t)g->interval_ms);
            if (def->nrules && !(g->rules = calloc(def->nrules, sizeof(*g->rules))))
                return RG_ENOMEM;
            g->nrules = def->nrules;
            for (size_t k = 0; k < def->nrules; k++) {
                struct rg_rule_state *rs = &g->rules[k];
                struct rg_buf q = { 0 }, u = { 0 };
                rs->rule = &def->rules[k];
                if (rg_promql_print(rs->rule->expr, &q) ||
                    rg_rules_generator_url(r->global.external_url, q.data ? q.data : "", &u) ||
                    !q.data || !u.data) {
                    rg_buf_cleanup(&q);
                    rg_buf_cleanup(&u);
                    return RG_ENOMEM;
                }
                rs->query = rg_buf_steal(&q, NULL);
                rs->generator_url = rg_buf_steal(&u, NULL);
            }
        }
    return 0;
}

int rg_rules_new(const struct rg_config *cfg, struct rg_store *store,
                 const struct rg_rules_opts *opts, struct rg_rules **out, struct rg_buf *err)
{
    struct rg_rules *r = calloc(1, sizeof(*r));
    struct load_ctx c;
    int rc;

    if (!r)
        return RG_ENOMEM;
    r->cfg = cfg;
    r->store = store;
    if (opts)
        r->opts = *opts;
    else
        rg_rules_opts_default(&r->opts);
    if (!r->opts.clock_ns)
        r->opts.clock_ns = rg_mono_ns;
    r->opts.state_path = NULL;
    if (opts && opts->state_path && !(r->state_path = strdup(opts->state_path))) {
        rc = RG_ENOMEM;
        goto fail;
    }
    if ((rc = rg_rules_global_parse(cfg, &r->global, err)))
        goto fail;
    c = (struct load_ctx){ &r->files, &r->nfiles, err, 0 };
    rc = rg_rulefile_each_path(cfg, load_one, &c, err);
    if (!rc)
        rc = c.rc;
    if (rc)
        goto fail;
    if ((rc = build_groups(r)))
        goto fail;
    if ((rc = resolve_sources(r, err)))
        goto fail;
    if (r->ngroups && !(r->remote = calloc(r->ngroups, sizeof(*r->remote)))) {
        rc = RG_ENOMEM;
        goto fail;
    }
    if ((rc = load_state(r)))
        goto fail;
    *out = r;
    return 0;

fail:
    rg_rules_free(r);
    return rc;
}

void rg_rules_set_notify(struct rg_rules *r, rg_rules_notify_cb cb, void *ud)
{
    r->notify = cb;
    r->notify_ud = ud;
}

void rg_rules_set_query_client(struct rg_rules *r, struct rg_query_client *c)
{
    r->opts.client = c;
}

const struct rg_rules_global *rg_rules_global_get(const struct rg_rules *r)
{
    return &r->global;
}

const struct rg_rules_group *rg_rules_groups(const struct rg_rules *r, size_t *n)
{
    *n = r ? r->ngroups : 0;
    return r ? r->groups : NULL;
}

/* ---- Output series ---------------------------------------------------------- */

static int key_cmp(const void *a, const void *b)
{
    const struct key *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->len < y->len ? -1 : x->len > y->len);
}

/* Builds the key of @l (sorted by name, unique). */
static int make_key(const struct rg_label *l, size_t n, struct key *out)
{
    struct rg_buf b = { 0 };
    for (size_t i = 0; i < n; i++) {
        rg_buf_puts(&b, l[i].name);
        rg_buf_putc(&b, '\xff');
        rg_buf_puts(&b, l[i].value);
        rg_buf_putc(&b, '\xff');
    }
    if (!b.data && rg_buf_reserve(&b, 1))
        return RG_ENOMEM;
    out->len = b.len;
    out->p = rg_buf_steal(&b, NULL);
    return out->p ? 0 : RG_ENOMEM;
}

/* Splits a key back into label references (into @refs, capacity @cap). */
static size_t key_refs(const struct key *k, struct rg_label_ref *refs, size_t cap)
{
    size_t n = 0;
    const char *p = k->p, *e = k->p + k->len;
    while (p < e && n < cap) {
        const char *a = memchr(p, '\xff', (size_t)(e - p));
        const char *b = a ? memchr(a + 1, '\xff', (size_t)(e - a - 1)) : NULL;
        if (!b)
            break;
        refs[n].name = (struct rg_slice){ p, (size_t)(a - p) };
        refs[n].value = (struct rg_slice){ a + 1, (size_t)(b - a - 1) };
        n++;
        p = b + 1;
    }
    return n;
}

static int series_add(struct rg__rule_series *s, struct key *k)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        struct key *n = realloc(s->keys, nc * sizeof(*n));
        if (!n)
            return RG_ENOMEM;
        s->keys = n;
        s->cap = nc;
    }
    s->keys[s->n++] = *k;
    return 0;
}

/* Appends one sample to the series @labels (sorted, unique). Store-side refusals
 * (series limit, out of order) are logged at debug level: a rule keeps running. */
static void write_sample(struct rg_rules *r, const struct rg_label *l, size_t n, int64_t t,
                         double v)
{
    struct rg_label_ref refs[64];
    struct rg_label_ref *rp = refs;
    struct rg_series *s;
    int rc;

    if (n > 64 && !(rp = malloc(n * sizeof(*rp))))
        return;
    for (size_t i = 0; i < n; i++) {
        rp[i].name = (struct rg_slice){ l[i].name, strlen(l[i].name) };
        rp[i].value = (struct rg_slice){ l[i].value, strlen(l[i].value) };
    }
    rc = rg_store_series_get(r->store, rp, n, &s, NULL);
    if (rc == 0)
        rc = rg_store_append(r->store, s, t, v);
    if (rc < 0)
        rg_debug("event=rule_write_failed err=%s", rg_err_name(rc));
    if (rp != refs)
        free(rp);
}

static void write_stale(struct rg_rules *r, const struct key *k, int64_t t)
{
    struct rg_label_ref refs[128];
    size_t n = key_refs(k, refs, 128);
    struct rg_series *s;

    if (rg_store_series_find(r->store, refs, n, &s) == 0) {
        int rc = rg_store_append(r->store, s, t, rg_stale_nan());
        if (rc < 0)
            rg_debug("event=rule_stale_failed err=%s", rg_err_name(rc));
    }
}

/* A label set under construction (unsorted, owned values). */
struct lset {
    struct rg_label *l;
    size_t n, cap;
};

static int lset_set(struct lset *s, const char *name, const char *value)
{
    size_t k;
    for (k = 0; k < s->n; k++)
        if (strcmp(s->l[k].name, name) == 0)
            break;
    if (k < s->n) {
        if (*value == '\0') {
            s->l[k] = s->l[--s->n];
            return 0;
        }
        s->l[k].value = value;
        return 0;
    }
    if (*value == '\0')
        return 0;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        struct rg_label *n = realloc(s->l, nc * sizeof(*n));
        if (!n)
            return RG_ENOMEM;
        s->l = n;
        s->cap = nc;
    }
    s->l[s->n].name = name;
    s->l[s->n++].value = value;
    return 0;
}

/* ---- Evaluation ----------------------------------------------------------- */

static void set_health(struct rg_rule_state *rs, const char *msg)
{
    free(rs->last_error);
    rs->last_error = NULL;
    if (msg) {
        rs->health = RG_RULE_HEALTH_ERR;
        rs->last_error = strdup(msg);
    } else {
        rs->health = RG_RULE_HEALTH_OK;
    }
}

static void log_failure(const struct rg_rules_group *g, const struct rg_rule_state *rs,
                        const char *msg)
{
    char q1[256], q2[512];
    rg_warn("event=rule_eval_failed group=%s rule=%s err=%s",
            rg_log_quote(q1, sizeof(q1), g->def->name, strlen(g->def->name)),
            rs->rule->name, rg_log_quote(q2, sizeof(q2), msg, strlen(msg)));
}

/* Replaces the rule's tracked series by @cur, writing stale markers at @t for the
 * series of the previous evaluation that @cur lacks. Takes ownership of @cur. */
static void finish_series(struct rg_rules *r, struct rg_rule_state *rs,
                          struct rg__rule_series *cur, int64_t t)
{
    struct rg__rule_series *prev = rs->prev;
    size_t i = 0, j = 0;

    sort_items(cur->keys, cur->n, sizeof(*cur->keys), key_cmp);
    while (prev && i < prev->n) {
        int c = j < cur->n ? key_cmp(&prev->keys[i], &cur->keys[j]) : -1;
        if (c < 0)
            write_stale(r, &prev->keys[i++], t);
        else if (c == 0)
            i++, j++;
        else
            j++;
    }
    series_free(prev);
    rs->prev = cur;
}

static uint64_t alerts_fp(const struct rg_alert_set *s)
{
    uint64_t h = FNV_INIT;
    for (size_t i = 0; i < s->n; i++) {
        const struct rg_alert *a = &s->alerts[i];
        int64_t t[7] = { a->state, a->active_at, a->fired_at, a->resolved_at,
                         a->keep_firing_since, a->last_sent_at, a->valid_until };
        for (size_t k = 0; k < a->nlabels; k++) {
            h = fnv(h, a->labels[k].name, strlen(a->labels[k].name) + 1);
            h = fnv(h, a->labels[k].value, strlen(a->labels[k].value) + 1);
        }
        h = fnv(h, t, sizeof(t));
    }
    return h;
}

static void on_send(const struct rg_alert *a, void *ud);

struct send_ctx {
    struct rg_rules *r;
    const struct rg_rule_state *rs;
    int oom;
};

static void on_send(const struct rg_alert *a, void *ud)
{
    struct send_ctx *c = ud;
    struct rg_rules *r = c->r;
    if (r->nout == r->capout) {
        size_t nc = r->capout ? r->capout * 2 : 16;
        struct rg_rules_notification *n = realloc(r->out, nc * sizeof(*n));
        if (!n) {
            c->oom = 1;
            return;
        }
        r->out = n;
        r->capout = nc;
    }
    r->out[r->nout++] = (struct rg_rules_notification){
        .labels = a->labels, .nlabels = a->nlabels,
        .annotations = a->annotations, .nannotations = a->nannotations,
        .starts_at_ms = rg_alert_starts_at(a), .ends_at_ms = rg_alert_ends_at(a),
        .generator_url = c->rs->generator_url,
    };
}

/* Converts a query result into (labels, value) pairs: a scalar is one sample with
 * no labels. Returns 0 or RG_EEXEC for matrix and string results. */
static int result_samples(const struct rg_promql_result *res, struct rg_promql_series *scalar,
                          struct rg_sample *pt, const struct rg_promql_series **out, size_t *n)
{
    if (res->type == RG_PROMQL_VT_VECTOR) {
        *out = res->series;
        *n = res->nseries;
        return 0;
    }
    if (res->type == RG_PROMQL_VT_SCALAR) {
        pt->t = res->t;
        pt->v = res->scalar;
        *scalar = (struct rg_promql_series){ .points = pt, .npoints = 1 };
        *out = scalar;
        *n = 1;
        return 0;
    }
    return RG_EEXEC;
}

static int eval_record(struct rg_rules *r, struct rg_rules_group *g, struct rg_rule_state *rs,
                       const struct rg_promql_series *ss, size_t n, int64_t qt,
                       struct rg__rule_series *cur, struct rg_buf *err)
{
    const struct rg_rule *rule = rs->rule;
    struct lset *sets = n ? calloc(n, sizeof(*sets)) : NULL;
    struct key *keys = n ? calloc(n, sizeof(*keys)) : NULL;
    int rc = 0;

    if (n && (!sets || !keys)) {
        rc = RG_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        for (size_t k = 0; k < ss[i].nlabels && !rc; k++)
            rc = lset_set(&sets[i], ss[i].labels[k].name, ss[i].labels[k].value);
        if (!rc)
            rc = lset_set(&sets[i], "__name__", rule->name);
        for (size_t k = 0; k < g->def->nlabels && !rc; k++)
            rc = lset_set(&sets[i], g->def->labels[k].name, g->def->labels[k].value);
        for (size_t k = 0; k < rule->nlabels && !rc; k++)
            rc = lset_set(&sets[i], rule->labels[k].name, rule->labels[k].value);
        if (!rc) {
            sort_items(sets[i].l, sets[i].n, sizeof(*sets[i].l), label_name_cmp);
            rc = make_key(sets[i].l, sets[i].n, &keys[i]);
        }
    }
    if (rc)
        goto done;
    {
        struct key *sorted = n ? malloc(n * sizeof(*sorted)) : NULL;
        if (n && !sorted) {
            rc = RG_ENOMEM;
            goto done;
        }
        if (n)
            memcpy(sorted, keys, n * sizeof(*sorted));
        sort_items(sorted, n, sizeof(*sorted), key_cmp);
        for (size_t i = 1; i < n; i++)
            if (key_cmp(&sorted[i - 1], &sorted[i]) == 0) {
                rg_buf_puts(err, "vector contains metrics with the same labelset after "
                                 "applying rule labels");
                rc = RG_EEXEC;
                break;
            }
        free(sorted);
    }
    if (!rc && g->def->limit > 0 && n > (size_t)g->def->limit) {
        rg_buf_printf(err, "exceeded limit of %lld with %zu series", (long long)g->def->limit,
                      n);
        rc = RG_ELIMIT;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        write_sample(r, sets[i].l, sets[i].n, qt, ss[i].points[0].v);
        if ((rc = series_add(cur, &keys[i])))
            break;
        keys[i].p = NULL;
    }

done:
    for (size_t i = 0; i < n; i++) {
        if (sets)
            free(sets[i].l);
        if (keys)
            free(keys[i].p);
    }
    free(sets);
    free(keys);
    return rc;
}

/* Writes ALERTS and ALERTS_FOR_STATE for every active alert of @rs. */
static int write_alert_series(struct rg_rules *r, struct rg_rule_state *rs, int64_t qt,
                              struct rg__rule_series *cur)
{
    struct lset ls = { 0 };
    int rc = 0;

    for (size_t i = 0; i < rs->alerts.n && !rc; i++) {
        const struct rg_alert *a = &rs->alerts.alerts[i];
        struct key k;
        if (a->state == RG_ALERT_INACTIVE)
            continue;
        for (int which = 0; which < 2 && !rc; which++) {
            ls.n = 0;
            for (size_t q = 0; q < a->nlabels && !rc; q++)
                rc = lset_set(&ls, a->labels[q].name, a->labels[q].value);
            if (!rc)
                rc = lset_set(&ls, "__name__", which ? "ALERTS_FOR_STATE" : "ALERTS");
            if (!rc && !which)
                rc = lset_set(&ls, "alertstate", rg_alert_state_name(a->state));
            if (rc)
                break;
            sort_items(ls.l, ls.n, sizeof(*ls.l), label_name_cmp);
            write_sample(r, ls.l, ls.n, qt, which ? (double)(a->active_at / 1000) : 1.0);
            if ((rc = make_key(ls.l, ls.n, &k)))
                break;
            if ((rc = series_add(cur, &k)))
                free(k.p);
        }
    }
    free(ls.l);
    return rc;
}

/* Results of template `query` calls during one rule evaluation; freed together
 * once the alert candidates are built. */
struct qres {
    struct qres *next;
    struct rg_promql_result res;
    struct rg_template_sample *samples;
};

struct qctx {
    struct rg_rules *r;
    int64_t t;
    struct qres *results;
    const struct rg_query_source *source;   /* the group's source, or NULL */
};

static int tmpl_query(void *ud, const char *expr, const struct rg_template_sample **out,
                      size_t *n, struct rg_buf *err)
{
    struct qctx *c = ud;
    struct rg_promql_node *node = NULL;
    struct qres *q;
    char msg[512];
    int rc;

    /* Templates expand synchronously, so they cannot wait for a server: in a group
     * with a source the function is refused rather than silently answered from the
     * in-memory store, which does not hold the source's data. */
    if (c->source) {
        rg_buf_printf(err, "the query function is not available in groups with a source "
                           "(%s)", c->source->name);
        return RG_EEXEC;
    }
    if ((rc = rg_promql_parse(expr, &node, msg, sizeof(msg)))) {
        rg_buf_puts(err, rc == RG_EPARSE ? msg : rg_strerror(rc));
        return rc;
    }
    if (!(q = calloc(1, sizeof(*q)))) {
        rg_promql_node_free(node);
        return RG_ENOMEM;
    }
    q->next = c->results;
    c->results = q;
    rc = rg_promql_eval_instant(c->r->store, node, c->t, &c->r->opts.query, &q->res, err);
    rg_promql_node_free(node);
    if (rc)
        return rc;
    if (q->res.type == RG_PROMQL_VT_SCALAR) {
        if (!(q->samples = calloc(1, sizeof(*q->samples))))
            return RG_ENOMEM;
        q->samples[0].value = q->res.scalar;
        *n = 1;
    } else if (q->res.type == RG_PROMQL_VT_VECTOR) {
        if (q->res.nseries && !(q->samples = calloc(q->res.nseries, sizeof(*q->samples))))
            return RG_ENOMEM;
        for (size_t i = 0; i < q->res.nseries; i++)
            q->samples[i] = (struct rg_template_sample){ q->res.series[i].labels,
                                                         q->res.series[i].nlabels,
                                                         q->res.series[i].points[0].v };
        *n = q->res.nseries;
    } else {
        rg_buf_puts(err, "query result is not a vector or a scalar");
        return RG_EEXEC;
    }
    *out = q->samples;
    return 0;
}

static void qctx_cleanup(struct qctx *c)
{
    while (c->results) {
        struct qres *q = c->results;
        c->results = q->next;
        rg_promql_result_free(&q->res);
        free(q->samples);
        free(q);
    }
}

static int eval_alert(struct rg_rules *r, struct rg_rules_group *g, struct rg_rule_state *rs,
                      const struct rg_promql_series *ss, size_t n, int64_t ts,
                      struct rg_buf *err)
{
    struct rg_alert_input *in = n ? calloc(n, sizeof(*in)) : NULL;
    struct qctx qc = { r, ts, NULL, g->source };
    struct rg_alert_env env = { r->global.external_labels, r->global.nexternal,
                                r->global.external_url, tmpl_query, &qc };
    struct rg_alert_params p = { rs->rule->for_ms, rs->rule->keep_firing_for_ms,
                                 g->def->limit };
    size_t built = 0;
    int rc = 0;

    if (n && !in)
        return RG_ENOMEM;
    for (; built < n; built++)
        if ((rc = rg_alert_input_build(rs->rule, g->def->labels, g->def->nlabels, &env,
                                       ss[built].labels, ss[built].nlabels,
                                       ss[built].points[0].v, &in[built])))
            break;
    qctx_cleanup(&qc);
    if (!rc)
        rc = rg_alert_set_eval(&rs->alerts, &p, ts, in, n, err);
    for (size_t i = 0; i < built; i++)
        rg_alert_input_cleanup(&in[i]);
    free(in);
    return rc;
}

/* Everything after a rule's query: the result (or the error @rc with its message in
 * @err) is applied as Prometheus' Group.Eval does. @qt is the query time (where
 * recording rules and ALERTS write), @ts the evaluation timestamp of the alert
 * state machine. Notifications go to r->out. */
static void finish_rule(struct rg_rules *r, struct rg_rules_group *g, struct rg_rule_state *rs,
                        int64_t ts, int64_t qt, int rc, const struct rg_promql_result *res,
                        struct rg_buf *err)
{
    struct rg_promql_series scalar;
    struct rg_sample pt;
    const struct rg_promql_series *ss = NULL;
    struct rg__rule_series *cur = NULL;
    size_t n = 0;

    if (rc == 0 && result_samples(res, &scalar, &pt, &ss, &n)) {
        rg_buf_puts(err, "rule result is not a vector or scalar");
        rc = RG_EEXEC;
    }
    if (rc == 0 && !(cur = calloc(1, sizeof(*cur))))
        rc = RG_ENOMEM;
    if (rc == 0) {
        if (rs->rule->type == RG_RULE_RECORD) {
            rc = eval_record(r, g, rs, ss, n, qt, cur, err);
        } else {
            rc = eval_alert(r, g, rs, ss, n, ts, err);
            if (rc == 0)
                rc = write_alert_series(r, rs, qt, cur);
        }
        /* As in Prometheus' Group.Eval, a failed rule (an exceeded limit included)
         * writes nothing and keeps the series of its last good evaluation, which
         * the next good one marks stale if they are gone by then. */
        if (rc == 0)
            finish_series(r, rs, cur, qt);
        else
            series_free(cur);
    }
    if (rc) {
        if (rc == RG_ENOMEM && err->len == 0)
            rg_buf_puts(err, "out of memory");
        else if (err->len == 0)
            rg_buf_puts(err, rg_strerror(rc));
        set_health(rs, err->data);
        log_failure(g, rs, err->data);
    } else {
        set_health(rs, NULL);
    }
    /* A query error sends nothing (Prometheus skips sendAlerts), so that the
     * alerts' ValidUntil lapses only if the errors persist. */
    if (rc == 0 && rs->rule->type == RG_RULE_ALERT) {
        struct send_ctx sc = { r, rs, 0 };
        rg_alert_set_send(&rs->alerts, ts, r->global.resend_delay_ms, g->interval_ms,
                          on_send, &sc);
    }
    if (rs->rule->type == RG_RULE_ALERT) {
        uint64_t fp = alerts_fp(&rs->alerts);
        if (fp != rs->state_fp) {
            rs->state_fp = fp;
            r->dirty = 1;
        }
    }
    rs->last_eval_ms = ts;
}

/* The end of a group evaluation: counters and the notify hook. */
static void finish_group(struct rg_rules *r, struct rg_rules_group *g, int64_t ts,
                         uint64_t g0)
{
    g->last_eval_ms = ts;
    g->iterations++;
    g->eval_seconds = (double)(r->opts.clock_ns() - g0) / 1e9;
    if (r->notify && r->nout)
        r->notify(r->out, r->nout, r->notify_ud);
    r->nout = 0;
}

static void eval_group(struct rg_rules *r, struct rg_rules_group *g, int64_t ts)
{
    uint64_t g0 = r->opts.clock_ns();
    int64_t qt = ts - g->query_offset_ms;
    struct rg_buf err = { 0 };

    r->nout = 0;
    for (size_t i = 0; i < g->nrules; i++) {
        struct rg_rule_state *rs = &g->rules[i];
        struct rg_promql_result res;
        uint64_t t0 = r->opts.clock_ns();
        int rc;

        memset(&res, 0, sizeof(res));
        rg_buf_reset(&err);
        rc = rg_promql_eval_instant(r->store, rs->rule->expr, qt, &r->opts.query, &res, &err);
        finish_rule(r, g, rs, ts, qt, rc, &res, &err);
        rg_promql_result_free(&res);
        rs->eval_seconds = (double)(r->opts.clock_ns() - t0) / 1e9;
    }
    rg_buf_cleanup(&err);
    finish_group(r, g, ts, g0);
}

/* ---- Groups with a source ------------------------------------------------------- */

/* One rule's answer in a remote evaluation. */
struct remote_res {
    struct remote_eval *ev;
    int err;                           /* 0 or the query's RG_E* error */
    char *msg;                         /* owned; the error message */
    struct rg_query_result res;        /* owned; stolen from the client */
    uint64_t done_ns;
};

/* One evaluation of a group with a source: every rule's query goes out at once and
 * the results are applied in rule order when the last one is in. It is a separate
 * allocation so that it can outlive the manager: rg_rules_free() only clears @r,
 * and the last completion (at the latest the client's cancellation) frees it. */
struct remote_eval {
    struct rg_rules *r;                /* NULL once the manager is gone */
    size_t group;                      /* index into r->groups */
    int64_t ts;                        /* evaluation timestamp (the slot) */
    int64_t qt;                        /* time the answers are for: ts minus both offsets */
    uint64_t t0_ns;
    size_t pending;                    /* answers still out */
    struct remote_res *res;            /* one per rule */
    size_t nres;
};

static void remote_detach(struct remote_eval *ev)
{
    ev->r = NULL;
}

static void remote_free(struct remote_eval *ev)
{
    if (!ev)
        return;
    for (size_t i = 0; i < ev->nres; i++) {
        free(ev->res[i].msg);
        rg_query_result_free(&ev->res[i].res);
    }
    free(ev->res);
    free(ev);
}

/* Applies every answer of @ev in rule order, as eval_group() does for local ones. */
static void remote_apply(struct remote_eval *ev)
{
    struct rg_rules *r = ev->r;
    struct rg_rules_group *g = &r->groups[ev->group];
    struct rg_buf err = { 0 };

    r->remote[ev->group] = NULL;
    g->in_flight = 0;
    /* A cancelled query (the client is closing) is no answer from the server: the
     * evaluation is dropped as if it had never started. */
    for (size_t i = 0; i < ev->nres; i++)
        if (ev->res[i].err == RG_ECANCELED)
            return;
    r->nout = 0;
    for (size_t i = 0; i < g->nrules && i < ev->nres; i++) {
        struct remote_res *rr = &ev->res[i];
        struct rg_promql_result view;

        /* The answer has the engine result's public fields; the view is never freed. */
        memset(&view, 0, sizeof(view));
        view.type = rr->res.type;
        view.t = rr->res.t;
        view.scalar = rr->res.scalar;
        view.string = rr->res.string;
        view.series = rr->res.series;
        view.nseries = rr->res.nseries;
        view.warnings = rr->res.warnings;
        view.nwarnings = rr->res.nwarnings;
        rg_buf_reset(&err);
        if (rr->err)
            rg_buf_puts(&err, rr->msg && rr->msg[0] ? rr->msg : rg_strerror(rr->err));
        finish_rule(r, g, &g->rules[i], ev->ts, ev->qt, rr->err, &view, &err);
        g->rules[i].eval_seconds = (double)(rr->done_ns - ev->t0_ns) / 1e9;
    }
    rg_buf_cleanup(&err);
    finish_group(r, g, ev->ts, ev->t0_ns);
    save_if_dirty(r);
}

static void on_remote_result(void *ud, int err, const char *msg, struct rg_query_result *res)
{
    struct remote_res *rr = ud;
    struct remote_eval *ev = rr->ev;

    rr->err = err;
    if (err && !(rr->msg = strdup(msg ? msg : "")))
        rr->err = RG_ENOMEM;
    rr->res = *res;
    memset(res, 0, sizeof(*res));
    if (ev->r)
        rr->done_ns = ev->r->opts.clock_ns();
    if (--ev->pending)
        return;
    if (ev->r)
        remote_apply(ev);
    remote_free(ev);
}

/* Sends the queries of group @gi for slot @ts. Returns at once; the results are
 * applied by the last completion (or here, when no query could be sent). */
static void eval_remote(struct rg_rules *r, size_t gi, int64_t ts)
{
    struct rg_rules_group *g = &r->groups[gi];
    struct remote_eval *ev = calloc(1, sizeof(*ev));
    int64_t qt = ts - g->query_offset_ms;

    if (ev && g->nrules && !(ev->res = calloc(g->nrules, sizeof(*ev->res)))) {
        free(ev);
        ev = NULL;
    }
    if (!ev) {
        rg_warn("event=rule_group_skipped group=%s err=%s", g->def->name,
                rg_err_name(RG_ENOMEM));
        return;
    }
    ev->r = r;
    ev->group = gi;
    ev->ts = ts;
    ev->qt = qt - g->source->query_offset_ms;
    ev->t0_ns = r->opts.clock_ns();
    ev->nres = g->nrules;
    /* One extra count keeps completions from finishing the evaluation before every
     * query is out (the client never calls back from inside rg_query_instant). */
    ev->pending = g->nrules + 1;
    r->remote[gi] = ev;
    g->in_flight = 1;
    for (size_t i = 0; i < g->nrules; i++) {
        struct remote_res *rr = &ev->res[i];
        int rc = RG_EINVAL;
        rr->ev = ev;
        if (r->opts.client)
            rc = rg_query_instant(r->opts.client, g->source, g->rules[i].query, qt,
                                  on_remote_result, rr);
        if (rc) {
            char msg[256];
            if (!r->opts.client)
                snprintf(msg, sizeof(msg), "source %s: no query client", g->source->name);
            else
                snprintf(msg, sizeof(msg), "source %s: cannot send the query: %s",
                         g->source->name, rg_strerror(rc));
            rr->err = rc;
            rr->msg = strdup(msg);
            rr->done_ns = ev->t0_ns;
            ev->pending--;
        }
    }
    if (--ev->pending == 0) {
        remote_apply(ev);
        remote_free(ev);
    }
}

/* ---- Persistence ------------------------------------------------------------ */

/* The ordinal of rule @k among the alerting rules of its group with the same name. */
static size_t rule_index(const struct rg_rules_group *g, size_t k)
{
    size_t idx = 0;
    for (size_t i = 0; i < k; i++)
        idx += g->rules[i].rule->type == RG_RULE_ALERT &&
               strcmp(g->rules[i].rule->name, g->rules[k].rule->name) == 0;
    return idx;
}

static int save_state(struct rg_rules *r)
{
    struct rg_buf b = { 0 };
    int first = 1, rc;

    rg_buf_puts(&b, "{\"version\":1,\"rules\":[");
    for (size_t i = 0; i < r->ngroups; i++) {
        const struct rg_rules_group *g = &r->groups[i];
        for (size_t k = 0; k < g->nrules; k++) {
            const struct rg_rule_state *rs = &g->rules[k];
            if (rs->rule->type != RG_RULE_ALERT || rs->alerts.n == 0)
                continue;
            if (!first)
                rg_buf_putc(&b, ',');
            first = 0;
            rg_buf_puts(&b, "{\"file\":");
            rg_json_cstr(&b, g->def->file);
            rg_buf_puts(&b, ",\"group\":");
            rg_json_cstr(&b, g->def->name);
            rg_buf_puts(&b, ",\"rule\":");
            rg_json_cstr(&b, rs->rule->name);
            rg_buf_printf(&b, ",\"index\":%zu,\"alerts\":", rule_index(g, k));
            if (rg_alert_set_to_json(&rs->alerts, &b)) {
                rg_buf_cleanup(&b);
                return RG_ENOMEM;
            }
            rg_buf_putc(&b, '}');
        }
    }
    rg_buf_puts(&b, "]}\n");
    if (!b.data) {
        rg_buf_cleanup(&b);
        return RG_ENOMEM;
    }
    rc = rg_file_write_atomic(r->state_path, b.data, b.len);
    rg_buf_cleanup(&b);
    return rc;
}

static struct rg_rule_state *find_rule(struct rg_rules *r, const char *file, const char *group,
                                       const char *rule, long long index)
{
    for (size_t i = 0; i < r->ngroups; i++) {
        struct rg_rules_group *g = &r->groups[i];
        if (strcmp(g->def->file, file) || strcmp(g->def->name, group))
            continue;
        for (size_t k = 0; k < g->nrules; k++)
            if (g->rules[k].rule->type == RG_RULE_ALERT &&
                strcmp(g->rules[k].rule->name, rule) == 0 &&
                (long long)rule_index(g, k) == index)
                return &g->rules[k];
    }
    return NULL;
}

static int load_state(struct rg_rules *r)
{
    static const char *p_version[] = { "version", NULL }, *p_rules[] = { "rules", NULL };
    struct rg_buf text = { 0 }, err = { 0 };
    char ebuf[256], q[300];
    yajl_val tree, v, rules;
    size_t restored = 0;
    int rc;

    if (!r->state_path)
        return 0;
    rc = rg_file_read(r->state_path, MAX_STATE_FILE, &text);
    if (rc == RG_ENOENT)
        return 0;
    if (rc == RG_ENOMEM)
        return rc;
    rg_log_quote(q, sizeof(q), r->state_path, strlen(r->state_path));
    if (rc) {
        rg_warn("event=rules_state_unreadable path=%s err=%s", q, rg_err_name(rc));
        return 0;
    }
    tree = yajl_tree_parse(text.data ? text.data : "", ebuf, sizeof(ebuf));
    rg_buf_cleanup(&text);
    if (!tree) {
        char eq[300];
        rg_warn("event=rules_state_corrupt path=%s err=%s", q,
                rg_log_quote(eq, sizeof(eq), ebuf, strlen(ebuf)));
        return 0;
    }
    v = yajl_tree_get(tree, p_version, yajl_t_number);
    rules = yajl_tree_get(tree, p_rules, yajl_t_array);
    if (!v || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) != 1 || !rules) {
        rg_warn("event=rules_state_corrupt path=%s err=\"unknown format\"", q);
        yajl_tree_free(tree);
        return 0;
    }
    for (size_t i = 0; i < rules->u.array.len; i++) {
        static const char *p_file[] = { "file", NULL }, *p_group[] = { "group", NULL };
        static const char *p_rule[] = { "rule", NULL }, *p_index[] = { "index", NULL };
        static const char *p_alerts[] = { "alerts", NULL };
        yajl_val e = rules->u.array.values[i];
        yajl_val f = yajl_tree_get(e, p_file, yajl_t_string);
        yajl_val g = yajl_tree_get(e, p_group, yajl_t_string);
        yajl_val ru = yajl_tree_get(e, p_rule, yajl_t_string);
        yajl_val ix = yajl_tree_get(e, p_index, yajl_t_number);
        yajl_val al = yajl_tree_get(e, p_alerts, yajl_t_array);
        struct rg_rule_state *rs;
        if (!f || !g || !ru || !ix || !YAJL_IS_INTEGER(ix) || !al) {
            rg_warn("event=rules_state_entry_skipped path=%s entry=%zu", q, i);
            continue;
        }
        rs = find_rule(r, f->u.string, g->u.string, ru->u.string, YAJL_GET_INTEGER(ix));
        if (!rs) {
            rg_debug("event=rules_state_entry_unknown path=%s entry=%zu", q, i);
            continue;
        }
        rg_buf_reset(&err);
        if ((rc = rg_alert_set_from_json(&rs->alerts, al, &err))) {
            yajl_tree_free(tree);
            rg_buf_cleanup(&err);
            return rc;
        }
        if (err.len) {
            char eq[300];
            rg_warn("event=rules_state_alerts_skipped path=%s entry=%zu err=%s", q, i,
                    rg_log_quote(eq, sizeof(eq), err.data, err.len));
        }
        rs->state_fp = alerts_fp(&rs->alerts);
        restored += rs->alerts.n;
    }
    yajl_tree_free(tree);
    rg_buf_cleanup(&err);
    rg_info("event=rules_state_restored path=%s alerts=%zu", q, restored);
    return 0;
}

/* ---- Scheduling ------------------------------------------------------------- */

/* Prometheus' EvalTimestamp: the latest slot k*interval + offset at or before @now. */
static int64_t slot_at(const struct rg_rules_group *g, int64_t now)
{
    int64_t adj = now - g->offset_ms;
    int64_t base = adj - (((adj % g->interval_ms) + g->interval_ms) % g->interval_ms);
    return base + g->offset_ms;
}

int64_t rg_rules_tick(struct rg_rules *r, int64_t now)
{
    int64_t next = INT64_MAX;

    for (size_t i = 0; i < r->ngroups; i++) {
        struct rg_rules_group *g = &r->groups[i];
        if (g->next_eval_ms == 0) {
            /* As Prometheus, the first evaluation waits for the next slot. */
            g->next_eval_ms = slot_at(g, now) + g->interval_ms;
        } else if (now >= g->next_eval_ms) {
            int64_t ts = slot_at(g, now);
            g->iterations_missed += (uint64_t)((ts - g->next_eval_ms) / g->interval_ms);
            if (!g->source)
                eval_group(r, g, ts);
            else if (g->in_flight)
                g->iterations_missed++;   /* the previous evaluation overran its slot */
            else
                eval_remote(r, i, ts);
            g->next_eval_ms = ts + g->interval_ms;
        }
        if (g->next_eval_ms < next)
            next = g->next_eval_ms;
    }
    save_if_dirty(r);
    return next;
}

/* Writes the state file when an alert changed since the last write. */
static void save_if_dirty(struct rg_rules *r)
{
    if (r->dirty && r->state_path) {
        int rc = save_state(r);
        /* A failing write is retried every tick but logged only when it starts
         * failing (or fails differently), not once per evaluation. */
        if (rc && rc != r->save_err) {
            char q[300];
            rg_warn("event=rules_state_write_failed path=%s err=%s",
                    rg_log_quote(q, sizeof(q), r->state_path, strlen(r->state_path)),
                    rg_err_name(rc));
        } else if (!rc) {
            r->dirty = 0;
            if (r->save_err)
                rg_info("event=rules_state_write_recovered");
        }
        r->save_err = rc;
    }
}
