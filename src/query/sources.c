/* query/sources.c - the `sources:` configuration: named Prometheus-compatible servers.
 *
 * Each `sources:` list of every configuration document (main file first, then the
 * included ones) is walked entry by entry. Every key of an entry is checked, every
 * problem is reported as "file:line:col: message" and the walk goes on, so that one
 * run of `rollgate check` lists all of them. Secrets (the basic-auth password and the
 * bearer token) are read from their files while parsing, so that a missing or empty
 * file is a configuration error and not a failure at the first query; they are kept
 * in memory only and wiped before they are freed. The fields a source shares with
 * other HTTP clients of the configuration (secret files, tls, basic_auth, headers,
 * durations) are read by config/fields.
 *
 * The set is one array; sources added later for ad-hoc URLs (the command line's
 * --source) are appended to it. Its capacity is implicit (the next power of two, at
 * least 8), so that a few ad-hoc additions after parsing do not move the array.
 */
#include "query/client.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/fields.h"
#include "config/yaml.h"
#include "util/err.h"

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_CONCURRENCY 4
#define MAX_CONCURRENCY 1024
#define DEFAULT_MAX_RESPONSE ((size_t)64 << 20)
#define MIN_MAX_RESPONSE ((size_t)1024)
#define DEFAULT_MAX_POINTS 11000
#define MAX_MAX_POINTS 100000000
#define NAME_MAX_LEN 128

/* ---- the set ---------------------------------------------------------------------------- */

static size_t implicit_cap(size_t n)
{
    size_t cap = 8;

    while (cap < n)
        cap *= 2;
    return cap;
}

/* Makes room for one more source; the array moves only when n reaches its capacity. */
static int grow(struct rg_query_sources *s)
{
    size_t cap = implicit_cap(s->n);
    void *p;

    if (s->v && s->n < cap)
        return 0;
    if (s->v)
        cap *= 2;
    p = realloc(s->v, cap * sizeof(*s->v));
    if (!p)
        return RG_ENOMEM;
    s->v = p;
    return 0;
}

static void source_cleanup(struct rg_query_source *src)
{
    free(src->name);
    free(src->url);
    free(src->basic_user);
    rg_config_field_secret_free(src->basic_password);
    rg_config_field_secret_free(src->bearer_token);
    for (size_t i = 0; i < src->nheaders; i++)
        free(src->headers[i]);
    free(src->headers);
    /* The TLS strings are const in the transport's struct but owned by the source. */
    free((void *)src->tls.ca_file);
    free((void *)src->tls.cert_file);
    free((void *)src->tls.key_file);
    free((void *)src->tls.server_name);
    memset(src, 0, sizeof(*src));
}

static void source_defaults(struct rg_query_source *src)
{
    memset(src, 0, sizeof(*src));
    src->timeout_ms = DEFAULT_TIMEOUT_MS;
    src->query_offset_ms = 0;
    src->max_concurrency = DEFAULT_CONCURRENCY;
    src->max_response_bytes = DEFAULT_MAX_RESPONSE;
    src->max_points = DEFAULT_MAX_POINTS;
}

void rg_query_sources_free(struct rg_query_sources *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        source_cleanup(&s->v[i]);
    free(s->v);
    free(s);
}

const struct rg_query_source *rg_query_sources_find(const struct rg_query_sources *s,
                                                    const char *name)
{
    if (!s || !name)
        return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].name && !strcmp(s->v[i].name, name))
            return &s->v[i];
    return NULL;
}

/* The base URL without trailing slashes ("/api/v1/query" is appended to it). */
static char *base_url(const char *s)
{
    size_t len = strlen(s);
    char *d;

    while (len > 0 && s[len - 1] == '/')
        len--;
    d = malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = 0;
    }
    return d;
}

int rg_query_sources_add_url(struct rg_query_sources *s, const char *url,
                             const struct rg_query_source **out)
{
    const struct rg_query_source *have;
    struct rg_query_source *src;
    char name[1024];

    if (out)
        *out = NULL;
    if (!s || !url || !rg_config_field_url_ok(url, 0) || strlen(url) >= sizeof(name))
        return RG_EINVAL;
    /* The name labels metrics and messages: never with the URL's user info. */
    rg_http_redact_url(url, name, sizeof(name));
    /* The same URL twice is the same source: no second entry, no move. */
    if ((have = rg_query_sources_find(s, name)) && !strncmp(have->url, url, strlen(have->url))) {
        if (out)
            *out = have;
        return 0;
    }
    if (grow(s))
        return RG_ENOMEM;
    src = &s->v[s->n];
    source_defaults(src);
    src->name = strdup(name);
    src->url = base_url(url);
    if (!src->name || !src->url) {
        source_cleanup(src);
        return RG_ENOMEM;
    }
    s->n++;
    if (out)
        *out = src;
    return 0;
}

/* ---- parsing: one source ---------------------------------------------------------------- */

static const char *const entry_keys[] = {
    "name", "url", "basic_auth", "bearer_token_file", "tls", "headers", "timeout",
    "query_offset", "max_concurrency", "max_response_bytes", "max_points", NULL,
};

/* Headers the transport or this client write themselves. */
static const char *const reserved_headers[] = {
    "Content-Type", "Content-Length", "Host", "Transfer-Encoding", "Connection",
    "Accept", "Accept-Encoding", "Expect", NULL,
};

static void parse_entry(struct rg_config_fields *c, const struct rg_yaml_node *e,
                        struct rg_query_source *src)
{
    const struct rg_yaml_node *v;
    const char *s;
    long long x;

    if (e->kind != RG_YAML_MAP) {
        rg_config_field_problem(c, e, "sources: expected a map for each source");
        return;
    }
    rg_config_field_check_keys(c, e, entry_keys, "sources");

    if (!(v = rg_yaml_get(e, "name")))
        rg_config_field_problem(c, e, "sources: name is required");
    else
        src->name = rg_config_field_name(c, v, NAME_MAX_LEN);
    if (!(v = rg_yaml_get(e, "url"))) {
        rg_config_field_problem(c, e, "sources: url is required");
    } else if ((s = rg_config_field_string(c, v, "url"))) {
        if (!rg_config_field_url_ok(s, 0))
            rg_config_field_problem(c, v, "url: expected an http:// or https:// URL without "
                                    "query, got \"%s\"", s);
        else if (!(src->url = base_url(s)))
            c->oom = 1;
    }
    if ((v = rg_yaml_get(e, "basic_auth"))) {
        struct rg_config_basic_auth ba = { 0 };

        rg_config_field_basic_auth(c, v, &ba);
        if (v->kind == RG_YAML_MAP && !ba.password_given)
            rg_config_field_problem(c, v, "basic_auth: password_file is required");
        /* The source keeps the user and the secret; the file's path is not needed. */
        src->basic_user = ba.user;
        src->basic_password = ba.password;
        free(ba.password_file);
    }
    if ((v = rg_yaml_get(e, "bearer_token_file"))) {
        size_t len;

        if (rg_yaml_get(e, "basic_auth"))
            rg_config_field_problem(c, v, "bearer_token_file: give either basic_auth or "
                                    "bearer_token_file");
        else
            rg_config_field_secret_file(c, v, "bearer_token_file", NULL, &src->bearer_token,
                                        &len);
    }
    if ((v = rg_yaml_get(e, "tls"))) {
        struct rg_config_tls tls = { 0 };

        rg_config_field_tls(c, v, &tls);
        src->tls.ca_file = tls.ca_file;
        src->tls.cert_file = tls.cert_file;
        src->tls.key_file = tls.key_file;
        src->tls.server_name = tls.server_name;
        src->tls.insecure_skip_verify = tls.insecure_skip_verify;
    }
    if ((v = rg_yaml_get(e, "headers"))) {
        int other_auth = rg_yaml_get(e, "basic_auth") || rg_yaml_get(e, "bearer_token_file");

        rg_config_field_headers(c, v, reserved_headers, other_auth, &src->headers,
                                &src->nheaders);
    }
    if ((v = rg_yaml_get(e, "timeout")))
        rg_config_field_duration(c, v, "timeout", 1, &src->timeout_ms);
    if ((v = rg_yaml_get(e, "query_offset")))
        rg_config_field_duration(c, v, "query_offset", 0, &src->query_offset_ms);
    if ((v = rg_yaml_get(e, "max_concurrency"))) {
        x = src->max_concurrency;
        rg_config_field_int(c, v, "max_concurrency", 1, MAX_CONCURRENCY, &x);
        src->max_concurrency = (int)x;
    }
    if ((v = rg_yaml_get(e, "max_response_bytes"))) {
        size_t n = 0;
        if (v->kind != RG_YAML_SCALAR || rg_config_parse_size(v->scalar, &n) != 0)
            rg_config_field_problem(c, v, "max_response_bytes: invalid size \"%s\" (e.g. "
                                    "64MiB)", v->kind == RG_YAML_SCALAR ? v->scalar : "");
        else if (n < MIN_MAX_RESPONSE)
            rg_config_field_problem(c, v, "max_response_bytes: must be at least 1KiB");
        else
            src->max_response_bytes = n;
    }
    if ((v = rg_yaml_get(e, "max_points"))) {
        x = src->max_points;
        rg_config_field_int(c, v, "max_points", 1, MAX_MAX_POINTS, &x);
        src->max_points = x;
    }
}

struct parse_state {
    struct rg_config_fields c;
    struct rg_query_sources *out;
    int *lines, *cols;             /* where each source is defined, for duplicates */
    char **paths;
};

static int each_section(const char *path, const struct rg_yaml_node *sec, void *ud)
{
    struct parse_state *ps = ud;
    struct rg_config_fields *c = &ps->c;

    if (!rg_config_field_list(c, path, sec, "sources"))
        return 0;
    for (size_t i = 0; i < sec->nitems; i++) {
        const struct rg_yaml_node *e = sec->items[i];
        struct rg_query_sources *s = ps->out;
        struct rg_query_source *src;
        size_t cap = implicit_cap(s->n + 1);
        void *p;

        if (grow(s))
            return RG_ENOMEM;
        /* The side arrays follow the set's capacity. */
        if (!(p = realloc(ps->lines, cap * sizeof(int))))
            return RG_ENOMEM;
        ps->lines = p;
        if (!(p = realloc(ps->cols, cap * sizeof(int))))
            return RG_ENOMEM;
        ps->cols = p;
        if (!(p = realloc(ps->paths, cap * sizeof(char *))))
            return RG_ENOMEM;
        ps->paths = p;
        src = &s->v[s->n];
        source_defaults(src);
        parse_entry(c, e, src);
        ps->lines[s->n] = e->line;
        ps->cols[s->n] = e->col;
        ps->paths[s->n] = rg_config_field_dup(c, path);
        s->n++;
        if (!src->name)
            continue;
        for (size_t j = 0; j + 1 < s->n; j++) {
            if (s->v[j].name && !strcmp(s->v[j].name, src->name)) {
                rg_config_field_problem(c, rg_yaml_get(e, "name"), "name: source \"%s\" is "
                                        "already defined at %s:%d:%d", src->name,
                                        ps->paths[j] ? ps->paths[j] : "", ps->lines[j],
                                        ps->cols[j]);
                break;
            }
        }
    }
    return c->oom ? RG_ENOMEM : 0;
}

int rg_query_sources_parse(const struct rg_config *cfg, struct rg_query_sources **out,
                           struct rg_buf *err)
{
    struct parse_state ps;
    int rc;

    *out = NULL;
    memset(&ps, 0, sizeof(ps));
    ps.c.err = err;
    ps.c.path = cfg->path;
    ps.out = calloc(1, sizeof(*ps.out));
    if (!ps.out)
        return RG_ENOMEM;
    rc = rg_config_each_section(cfg, "sources", each_section, &ps);
    if (ps.paths)
        for (size_t i = 0; i < ps.out->n; i++)
            free(ps.paths[i]);
    free(ps.paths);
    free(ps.lines);
    free(ps.cols);
    if (rc == RG_ENOMEM || ps.c.oom)
        rc = RG_ENOMEM;
    else if (ps.c.problems)
        rc = RG_EINVAL;
    else
        rc = 0;
    if (rc) {
        rg_query_sources_free(ps.out);
        return rc;
    }
    *out = ps.out;
    return 0;
}
