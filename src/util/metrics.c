/* util/metrics.c - metric families, children and the text exposition format.
 *
 * Families live in an array kept sorted by name (tens of them: linear lookups on
 * registration are fine). Children live in an array per family, sorted at render
 * time, and are found by label values through an open-addressing hash index (FNV-1a
 * over the values), because some families have a child per deployment and check and
 * are looked up on every evaluation.
 */
#include "util/metrics.h"
#include "util/err.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct child_slot {
    uint64_t hash;                  /* of the label values, for the index */
    char **values;                  /* owned label values */
    struct rg_metrics_child c;
};

struct rg_metrics_family {
    char *name;
    char *help;
    enum rg_metrics_kind kind;
    char **labels;
    size_t nlabels;
    double *bounds;
    size_t nbounds;
    struct child_slot **children;   /* pointers, so children never move */
    size_t nchildren;
    struct child_slot **index;      /* hash index over children; NULL slots empty */
    size_t index_cap;               /* power of two, at least twice nchildren */
};

struct collector {
    void (*cb)(struct rg_metrics *m, void *ud);
    void *ud;
};

struct rg_metrics {
    struct rg_metrics_family **families;
    size_t nfamilies;
    struct collector *collectors;
    size_t ncollectors;
};

struct rg_metrics *rg_metrics_new(void)
{
    return calloc(1, sizeof(struct rg_metrics));
}

static void free_strings(char **s, size_t n)
{
    if (!s)
        return;
    for (size_t i = 0; i < n; i++)
        free(s[i]);
    free(s);
}

static void family_free(struct rg_metrics_family *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nchildren; i++) {
        free_strings(f->children[i]->values, f->nlabels);
        free(f->children[i]->c.buckets);
        free(f->children[i]);
    }
    free(f->children);
    free(f->index);
    free_strings(f->labels, f->nlabels);
    free(f->bounds);
    free(f->name);
    free(f->help);
    free(f);
}

void rg_metrics_free(struct rg_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nfamilies; i++)
        family_free(m->families[i]);
    free(m->families);
    free(m->collectors);
    free(m);
}

static char **copy_strings(const char *const *s, size_t n)
{
    char **out = calloc(n ? n : 1, sizeof(*out));
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = strdup(s[i]);
        if (!out[i]) {
            free_strings(out, i);
            return NULL;
        }
    }
    return out;
}

struct rg_metrics_family *rg_metrics_family(struct rg_metrics *m, const char *name,
                                            const char *help, enum rg_metrics_kind kind,
                                            const char *const *label_names, size_t nlabels,
                                            const double *bounds, size_t nbounds)
{
    struct rg_metrics_family *f, **fams;
    size_t pos = 0;

    while (pos < m->nfamilies && strcmp(m->families[pos]->name, name) < 0)
        pos++;
    if (pos < m->nfamilies && strcmp(m->families[pos]->name, name) == 0)
        return m->families[pos];
    f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->kind = kind;
    f->nlabels = nlabels;
    f->name = strdup(name);
    f->help = strdup(help);
    f->labels = copy_strings(label_names, nlabels);
    if (kind == RG_METRICS_HISTOGRAM) {
        f->bounds = malloc((nbounds ? nbounds : 1) * sizeof(double));
        if (f->bounds && nbounds)
            memcpy(f->bounds, bounds, nbounds * sizeof(double));
        f->nbounds = nbounds;
    }
    fams = realloc(m->families, (m->nfamilies + 1) * sizeof(*fams));
    if (!f->name || !f->help || !f->labels || (kind == RG_METRICS_HISTOGRAM && !f->bounds) ||
        !fams) {
        if (fams)
            m->families = fams;
        family_free(f);
        return NULL;
    }
    m->families = fams;
    memmove(fams + pos + 1, fams + pos, (m->nfamilies - pos) * sizeof(*fams));
    fams[pos] = f;
    m->nfamilies++;
    return f;
}

static uint64_t values_hash(const char *const *values, size_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);

    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++)
            h = (h ^ *p) * UINT64_C(0x100000001b3);
        h = (h ^ 0xff) * UINT64_C(0x100000001b3);   /* separator: ("a","b") != ("ab","") */
    }
    return h;
}

static int values_equal(const struct child_slot *s, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->values[i], values[i]) != 0)
            return 0;
    return 1;
}

static void index_put(struct child_slot **index, size_t cap, struct child_slot *s)
{
    size_t i = (size_t)s->hash & (cap - 1);

    while (index[i])
        i = (i + 1) & (cap - 1);
    index[i] = s;
}

/* Keeps the index at most half full. Returns 0 or RG_ENOMEM. */
static int index_grow(struct rg_metrics_family *f)
{
    size_t cap = f->index_cap ? f->index_cap * 2 : 16;
    struct child_slot **index;

    if ((f->nchildren + 1) * 2 <= f->index_cap)
        return 0;
    index = calloc(cap, sizeof(*index));
    if (!index)
        return RG_ENOMEM;
    for (size_t i = 0; i < f->nchildren; i++)
        index_put(index, cap, f->children[i]);
    free(f->index);
    f->index = index;
    f->index_cap = cap;
    return 0;
}

struct rg_metrics_child *rg_metrics_child(struct rg_metrics_family *f,
                                          const char *const *label_values)
{
    uint64_t h = values_hash(label_values, f->nlabels);
    struct child_slot *s, **kids;

    if (f->index_cap) {
        for (size_t i = (size_t)h & (f->index_cap - 1); f->index[i];
             i = (i + 1) & (f->index_cap - 1)) {
            s = f->index[i];
            if (s->hash == h && values_equal(s, label_values, f->nlabels))
                return &s->c;
        }
    }
    if (index_grow(f))
        return NULL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->values = copy_strings(label_values, f->nlabels);
    if (f->kind == RG_METRICS_HISTOGRAM)
        s->c.buckets = calloc(f->nbounds + 1, sizeof(double));
    kids = realloc(f->children, (f->nchildren + 1) * sizeof(*kids));
    if (!s->values || (f->kind == RG_METRICS_HISTOGRAM && !s->c.buckets) || !kids) {
        if (kids)
            f->children = kids;
        free_strings(s->values, f->nlabels);
        free(s->c.buckets);
        free(s);
        return NULL;
    }
    f->children = kids;
    s->hash = h;
    kids[f->nchildren++] = s;
    index_put(f->index, f->index_cap, s);
    return &s->c;
}

void rg_metrics_observe(struct rg_metrics_family *f, struct rg_metrics_child *c, double v)
{
    size_t i = 0;

    while (i < f->nbounds && v > f->bounds[i])
        i++;
    c->buckets[i] += 1;
    c->count += 1;
    c->value += v;
}

int rg_metrics_on_collect(struct rg_metrics *m, void (*cb)(struct rg_metrics *m, void *ud),
                          void *ud)
{
    struct collector *c = realloc(m->collectors, (m->ncollectors + 1) * sizeof(*c));
    if (!c)
        return RG_ENOMEM;
    m->collectors = c;
    c[m->ncollectors].cb = cb;
    c[m->ncollectors++].ud = ud;
    return 0;
}

int rg_metrics_format_value(double v, struct rg_buf *out)
{
    char tmp[40];

    if (isnan(v))
        return rg_buf_puts(out, "NaN");
    if (isinf(v))
        return rg_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    /* The shortest precision that reads back to the same double, written without an
     * exponent between 1e-4 and 1e21 as Go's 'g' format does (20000, not 2e+04). */
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
        if (strtod(tmp, NULL) == v) {
            int exp = atoi(strchr(tmp, 'e') + 1);
            if (exp >= -4 && exp < 21)
                snprintf(tmp, sizeof(tmp), "%.*f", p - 1 - exp > 0 ? p - 1 - exp : 0, v);
            else
                snprintf(tmp, sizeof(tmp), "%.*g", p, v);
            break;
        }
    }
    return rg_buf_puts(out, tmp);
}

/* Label values escape backslash, double quote and newline; HELP escapes only
 * backslash and newline (text format 0.0.4). */
static int put_escaped(struct rg_buf *out, const char *s, int quote)
{
    int err = 0;
    for (; *s && !err; s++) {
        if (*s == '\\')
            err = rg_buf_puts(out, "\\\\");
        else if (*s == '\n')
            err = rg_buf_puts(out, "\\n");
        else if (quote && *s == '"')
            err = rg_buf_puts(out, "\\\"");
        else
            err = rg_buf_putc(out, *s);
    }
    return err;
}

static const struct rg_metrics_family *sort_family;

static int child_cmp(const void *a, const void *b)
{
    const struct child_slot *x = *(const struct child_slot *const *)a;
    const struct child_slot *y = *(const struct child_slot *const *)b;
    for (size_t i = 0; i < sort_family->nlabels; i++) {
        int c = strcmp(x->values[i], y->values[i]);
        if (c)
            return c;
    }
    return 0;
}

/* name{l1="v1",...[,extra_name="extra_value"]} value */
static int put_sample(struct rg_buf *out, const struct rg_metrics_family *f, const char *suffix,
                      const struct child_slot *s, const char *extra_name, const char *extra_value,
                      double v)
{
    int err = rg_buf_puts(out, f->name);
    int first = 1;

    err = err ? err : rg_buf_puts(out, suffix);
    if (f->nlabels || extra_name) {
        err = err ? err : rg_buf_putc(out, '{');
        for (size_t i = 0; i < f->nlabels && !err; i++) {
            err = rg_buf_printf(out, "%s%s=\"", first ? "" : ",", f->labels[i]);
            err = err ? err : put_escaped(out, s->values[i], 1);
            err = err ? err : rg_buf_putc(out, '"');
            first = 0;
        }
        if (extra_name && !err)
            err = rg_buf_printf(out, "%s%s=\"%s\"", first ? "" : ",", extra_name, extra_value);
        err = err ? err : rg_buf_putc(out, '}');
    }
    err = err ? err : rg_buf_putc(out, ' ');
    err = err ? err : rg_metrics_format_value(v, out);
    return err ? err : rg_buf_putc(out, '\n');
}

static int render_family(struct rg_buf *out, struct rg_metrics_family *f)
{
    static const char *const kinds[] = { "counter", "gauge", "histogram" };
    int err;

    if (f->nchildren == 0)
        return 0;
    sort_family = f;
    qsort(f->children, f->nchildren, sizeof(*f->children), child_cmp);
    err = rg_buf_printf(out, "# HELP %s ", f->name);
    err = err ? err : put_escaped(out, f->help, 0);
    err = err ? err : rg_buf_printf(out, "\n# TYPE %s %s\n", f->name, kinds[f->kind]);
    for (size_t i = 0; i < f->nchildren && !err; i++) {
        const struct child_slot *s = f->children[i];
        if (f->kind != RG_METRICS_HISTOGRAM) {
            err = put_sample(out, f, "", s, NULL, NULL, s->c.value);
            continue;
        }
        double cum = 0;
        char le[40];
        for (size_t b = 0; b <= f->nbounds && !err; b++) {
            struct rg_buf tmp = { 0 };
            cum += s->c.buckets[b];
            if (b < f->nbounds) {
                err = rg_metrics_format_value(f->bounds[b], &tmp);
                snprintf(le, sizeof(le), "%s", tmp.data ? tmp.data : "0");
                rg_buf_cleanup(&tmp);
            } else {
                snprintf(le, sizeof(le), "+Inf");
            }
            err = err ? err : put_sample(out, f, "_bucket", s, "le", le, cum);
        }
        err = err ? err : put_sample(out, f, "_sum", s, NULL, NULL, s->c.value);
        err = err ? err : put_sample(out, f, "_count", s, NULL, NULL, s->c.count);
    }
    return err;
}

int rg_metrics_render(struct rg_metrics *m, struct rg_buf *out)
{
    int err = 0;

    for (size_t i = 0; i < m->ncollectors; i++)
        m->collectors[i].cb(m, m->collectors[i].ud);
    for (size_t i = 0; i < m->nfamilies && !err; i++)
        err = render_family(out, m->families[i]);
    return err;
}
