/* tests/store/helpers.h - shared helpers for the store tests.
 *
 * Series are written as "name=value,name=value" specs (already sorted by name),
 * turned into borrowed label refs the way ingest hands them to the store, and
 * results are rendered back to the same text so tables can compare strings.
 * Regex matchers use POSIX extended regexes anchored as ^(...)$, which is enough
 * for the store's contract (it only calls the callback).
 */
#ifndef RG_TESTS_STORE_HELPERS_H
#define RG_TESTS_STORE_HELPERS_H

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define T_MAX_LABELS 16

struct t_labels {
    char buf[512];                            /* copy of the spec, split in place */
    struct rg_label_ref refs[T_MAX_LABELS];
    size_t n;
};

/* Splits @spec into refs; the refs borrow @l->buf. */
static inline void t_labels(struct t_labels *l, const char *spec)
{
    char *p;

    snprintf(l->buf, sizeof(l->buf), "%s", spec);
    l->n = 0;
    p = l->buf;
    while (*p && l->n < T_MAX_LABELS) {
        char *eq = strchr(p, '='), *end;

        if (!eq)
            break;
        end = strchr(eq + 1, ',');
        l->refs[l->n].name.ptr = p;
        l->refs[l->n].name.len = (size_t)(eq - p);
        l->refs[l->n].value.ptr = eq + 1;
        l->refs[l->n].value.len = end ? (size_t)(end - eq - 1) : strlen(eq + 1);
        l->n++;
        if (!end)
            break;
        p = end + 1;
    }
}

/* Renders the labels of @s as "a=1,b=2" into @out. */
static inline const char *t_render(const struct rg_series *s, char *out, size_t cap)
{
    struct rg_label l[T_MAX_LABELS];
    size_t n = rg_series_labels(s, l, T_MAX_LABELS), w = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n && i < T_MAX_LABELS; i++)
        w += (size_t)snprintf(out + w, cap > w ? cap - w : 0, "%s%s=%s", i ? "," : "",
                              l[i].name, l[i].value);
    return out;
}

static inline int t_get(struct rg_store *st, const char *spec, struct rg_series **out,
                        int *created)
{
    struct t_labels l;

    t_labels(&l, spec);
    return rg_store_series_get(st, l.refs, l.n, out, created);
}

static inline int t_find(const struct rg_store *st, const char *spec, struct rg_series **out)
{
    struct t_labels l;

    t_labels(&l, spec);
    return rg_store_series_find(st, l.refs, l.n, out);
}

/* POSIX regex callback: @re is a regex_t compiled from ^(pattern)$. */
static inline int t_re_match(void *re, const char *s, size_t len)
{
    char tmp[256];

    if (len >= sizeof(tmp))
        return 0;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    return regexec((regex_t *)re, tmp, 0, NULL, 0) == 0;
}

static inline int t_re_compile(regex_t *re, const char *pattern)
{
    char anchored[256];

    snprintf(anchored, sizeof(anchored), "^(%s)$", pattern);
    return regcomp(re, anchored, REG_EXTENDED | REG_NOSUB);
}

static inline double t_from_bits(uint64_t b)
{
    double v;

    memcpy(&v, &b, sizeof(v));
    return v;
}

static inline uint64_t t_bits(double v)
{
    uint64_t b;

    memcpy(&b, &v, sizeof(b));
    return b;
}

#define T_MAX_MATCHERS 8

/* Matchers parsed from "name<op>value;name<op>value" with op one of = != =~ !~. */
struct t_matchers {
    char buf[512];
    struct rg_matcher m[T_MAX_MATCHERS];
    regex_t re[T_MAX_MATCHERS];
    int compiled[T_MAX_MATCHERS];
    size_t n;
};

static inline int t_matchers(struct t_matchers *ms, const char *spec)
{
    char *p, *save = NULL;

    snprintf(ms->buf, sizeof(ms->buf), "%s", spec);
    ms->n = 0;
    for (p = strtok_r(ms->buf, ";", &save); p && ms->n < T_MAX_MATCHERS;
         p = strtok_r(NULL, ";", &save)) {
        struct rg_matcher *m = &ms->m[ms->n];
        char *q = p;

        while (*q == '_' || (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
               (*q >= '0' && *q <= '9'))
            q++;
        memset(m, 0, sizeof(*m));
        if (q[0] == '!' && q[1] == '=') {
            m->op = RG_MATCH_NE;
            m->value = q + 2;
        } else if (q[0] == '=' && q[1] == '~') {
            m->op = RG_MATCH_RE;
            m->value = q + 2;
        } else if (q[0] == '!' && q[1] == '~') {
            m->op = RG_MATCH_NRE;
            m->value = q + 2;
        } else if (q[0] == '=') {
            m->op = RG_MATCH_EQ;
            m->value = q + 1;
        } else {
            return -1;
        }
        *q = '\0';
        m->name = p;
        ms->compiled[ms->n] = 0;
        if (m->op == RG_MATCH_RE || m->op == RG_MATCH_NRE) {
            if (t_re_compile(&ms->re[ms->n], m->value))
                return -1;
            ms->compiled[ms->n] = 1;
            m->re_match = t_re_match;
            m->re = &ms->re[ms->n];
        }
        ms->n++;
    }
    return 0;
}

static inline void t_matchers_free(struct t_matchers *ms)
{
    for (size_t i = 0; i < ms->n; i++)
        if (ms->compiled[i])
            regfree(&ms->re[i]);
    ms->n = 0;
}

/* Selects with @spec and renders the result as "a=1,b=2|a=2" into @out. */
static inline int t_select(const struct rg_store *st, const char *spec, char *out, size_t cap)
{
    struct t_matchers ms;
    struct rg_series **res;
    size_t n, w = 0;
    int err;

    out[0] = '\0';
    if (t_matchers(&ms, spec))
        return -1;
    err = rg_store_select(st, ms.m, ms.n, &res, &n);
    t_matchers_free(&ms);
    if (err)
        return err;
    for (size_t i = 0; i < n; i++) {
        char one[256];

        w += (size_t)snprintf(out + w, cap > w ? cap - w : 0, "%s%s", i ? "|" : "",
                              t_render(res[i], one, sizeof(one)));
    }
    free(res);
    return 0;
}

#endif
