/* query/sources.c - the `sources:` configuration: named Prometheus-compatible servers.
 *
 * Each `sources:` list of every configuration document (main file first, then the
 * included ones) is walked entry by entry. Every key of an entry is checked, every
 * problem is reported as "file:line:col: message" and the walk goes on, so that one
 * run of `rollgate check` lists all of them. Secrets (the basic-auth password and the
 * bearer token) are read from their files while parsing, so that a missing or empty
 * file is a configuration error and not a failure at the first query; they are kept
 * in memory only and wiped before they are freed.
 *
 * The set is one array; sources added later for ad-hoc URLs (the command line's
 * --source) are appended to it. Its capacity is implicit (the next power of two, at
 * least 8), so that a few ad-hoc additions after parsing do not move the array.
 */
#include "query/client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/yaml.h"
#include "promql/ast.h"
#include "util/err.h"
#include "util/file.h"

#define SECRET_MAX (64 * 1024)             /* bytes of a password or token file */
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

static void wipe_free(char *p)
{
    if (p) {
        /* A volatile pointer keeps the compiler from dropping the stores as dead. */
        volatile char *v = p;
        for (size_t i = 0; p[i]; i++)
            v[i] = 0;
        free(p);
    }
}

static void source_cleanup(struct rg_query_source *src)
{
    free(src->name);
    free(src->url);
    free(src->basic_user);
    wipe_free(src->basic_password);
    wipe_free(src->bearer_token);
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

/* An http:// or https:// URL with a host, no query or fragment, no blanks or control
 * characters. */
static int url_ok(const char *s)
{
    const char *host;

    if (!strncasecmp(s, "http://", 7))
        host = s + 7;
    else if (!strncasecmp(s, "https://", 8))
        host = s + 8;
    else
        return 0;
    if (!*host || *host == '/' || *host == '?' || *host == '#')
        return 0;
    if (strpbrk(s, "?#"))
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
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
    if (!s || !url || !url_ok(url) || strlen(url) >= sizeof(name))
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

/* ---- parsing: problems ------------------------------------------------------------------ */

struct pctx {
    struct rg_buf *err;
    const char *path;              /* document being read */
    int problems;
    int oom;
};

static void problem(struct pctx *c, const struct rg_yaml_node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(struct pctx *c, const struct rg_yaml_node *at, const char *fmt, ...)
{
    va_list ap;

    c->problems++;
    if (!c->err)
        return;
    if (rg_buf_printf(c->err, "%s:%d:%d: ", c->path, at ? at->line : 1, at ? at->col : 1))
        c->oom = 1;
    va_start(ap, fmt);
    if (rg_buf_vprintf(c->err, fmt, ap))
        c->oom = 1;
    va_end(ap);
    if (rg_buf_putc(c->err, '\n'))
        c->oom = 1;
}

static char *dup_or_oom(struct pctx *c, const char *s)
{
    char *d = strdup(s);

    if (!d)
        c->oom = 1;
    return d;
}

static const char *want_string(struct pctx *c, const struct rg_yaml_node *v, const char *what)
{
    if (!v || v->kind != RG_YAML_SCALAR || (!v->quoted && rg_yaml_is_null(v))) {
        problem(c, v, "%s: expected a string", what);
        return NULL;
    }
    if (strlen(v->scalar) != v->scalar_len) {
        problem(c, v, "%s: contains a NUL byte", what);
        return NULL;
    }
    return v->scalar;
}

static void want_bool(struct pctx *c, const struct rg_yaml_node *v, const char *what, int *out)
{
    if (v && v->kind == RG_YAML_SCALAR && !v->quoted) {
        if (!strcmp(v->scalar, "true")) {
            *out = 1;
            return;
        }
        if (!strcmp(v->scalar, "false")) {
            *out = 0;
            return;
        }
    }
    problem(c, v, "%s: expected true or false", what);
}

static void want_duration(struct pctx *c, const struct rg_yaml_node *v, const char *what,
                          int64_t min_ms, int64_t *out)
{
    int64_t ms;

    if (!v || v->kind != RG_YAML_SCALAR ||
        rg_promql_parse_duration(v->scalar, v->scalar_len, &ms) != 0) {
        problem(c, v, "%s: invalid duration \"%s\"", what,
                v && v->kind == RG_YAML_SCALAR ? v->scalar : "");
        return;
    }
    if (ms < min_ms) {
        problem(c, v, "%s: must be at least %lldms", what, (long long)min_ms);
        return;
    }
    *out = ms;
}

static void want_int(struct pctx *c, const struct rg_yaml_node *v, const char *what,
                     long long lo, long long hi, long long *out)
{
    char *end = NULL;
    long long x = lo - 1;

    if (v && v->kind == RG_YAML_SCALAR && !v->quoted && v->scalar_len) {
        errno = 0;
        x = strtoll(v->scalar, &end, 10);
        if (errno || *end)
            x = lo - 1;
    }
    if (x < lo || x > hi) {
        problem(c, v, "%s: expected an integer from %lld to %lld", what, lo, hi);
        return;
    }
    *out = x;
}

/* Resolves a file path against the document and checks that it can be read. */
static char *want_file(struct pctx *c, const struct rg_yaml_node *v, const char *what)
{
    char full[1024];
    const char *s = want_string(c, v, what);

    if (!s)
        return NULL;
    if (!*s) {
        problem(c, v, "%s: empty path", what);
        return NULL;
    }
    rg_config_resolve_path(c->path, s, full, sizeof(full));
    if (access(full, R_OK) != 0) {
        problem(c, v, "%s: cannot read \"%s\": %s", what, full, strerror(errno));
        return NULL;
    }
    return dup_or_oom(c, full);
}

/* Reads the secret file named by @v: trailing blanks and line ends are removed, as
 * Prometheus does with its credential files; the rest must be one non-empty line. */
static char *want_secret(struct pctx *c, const struct rg_yaml_node *v, const char *what)
{
    struct rg_buf b = { 0 };
    char *path = want_file(c, v, what);
    int err;

    if (!path)
        return NULL;
    err = rg_file_read(path, SECRET_MAX, &b);
    if (err) {
        problem(c, v, "%s: cannot read \"%s\": %s", what, path,
                err == RG_ETOOBIG ? "larger than 64 KiB" : rg_strerror(err));
        goto fail;
    }
    while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r' ||
                     b.data[b.len - 1] == ' ' || b.data[b.len - 1] == '\t'))
        b.data[--b.len] = 0;
    if (b.len == 0) {
        problem(c, v, "%s: \"%s\" is empty", what, path);
        goto fail;
    }
    if (strlen(b.data) != b.len || strchr(b.data, '\n') || strchr(b.data, '\r')) {
        problem(c, v, "%s: \"%s\" holds a line break or NUL byte", what, path);
        goto fail;
    }
    free(path);
    return b.data;
fail:
    if (b.data) {
        volatile char *p = b.data;
        for (size_t i = 0; i < b.cap; i++)
            p[i] = 0;
    }
    rg_buf_cleanup(&b);
    free(path);
    return NULL;
}

static int token_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* ---- parsing: one source ---------------------------------------------------------------- */

static void parse_tls(struct pctx *c, const struct rg_yaml_node *v, struct rg_query_source *src)
{
    if (v->kind != RG_YAML_MAP) {
        problem(c, v, "tls: expected a map");
        return;
    }
    for (size_t i = 0; i + 1 < v->nitems; i += 2) {
        const struct rg_yaml_node *k = v->items[i], *x = v->items[i + 1];
        const char *key = k->kind == RG_YAML_SCALAR ? k->scalar : "";
        const char *s;

        if (!strcmp(key, "ca_file")) {
            free((void *)src->tls.ca_file);
            src->tls.ca_file = want_file(c, x, "tls.ca_file");
        } else if (!strcmp(key, "cert_file")) {
            free((void *)src->tls.cert_file);
            src->tls.cert_file = want_file(c, x, "tls.cert_file");
        } else if (!strcmp(key, "key_file")) {
            free((void *)src->tls.key_file);
            src->tls.key_file = want_file(c, x, "tls.key_file");
        } else if (!strcmp(key, "server_name")) {
            if ((s = want_string(c, x, "tls.server_name"))) {
                free((void *)src->tls.server_name);
                src->tls.server_name = dup_or_oom(c, s);
            }
        } else if (!strcmp(key, "insecure_skip_verify")) {
            want_bool(c, x, "tls.insecure_skip_verify", &src->tls.insecure_skip_verify);
        } else {
            problem(c, k, "tls: unknown key \"%s\"", key);
        }
    }
    if (!src->tls.cert_file != !src->tls.key_file)
        problem(c, v, "tls: cert_file and key_file must be given together");
}

static void parse_basic_auth(struct pctx *c, const struct rg_yaml_node *v,
                             struct rg_query_source *src)
{
    int has_password = 0;

    if (v->kind != RG_YAML_MAP) {
        problem(c, v, "basic_auth: expected a map");
        return;
    }
    for (size_t i = 0; i + 1 < v->nitems; i += 2) {
        const struct rg_yaml_node *k = v->items[i], *x = v->items[i + 1];
        const char *key = k->kind == RG_YAML_SCALAR ? k->scalar : "";
        const char *s;

        if (!strcmp(key, "username")) {
            s = want_string(c, x, "basic_auth.username");
            if (s && strchr(s, ':')) {
                problem(c, x, "basic_auth.username: must not contain ':'");
            } else if (s) {
                free(src->basic_user);
                src->basic_user = dup_or_oom(c, s);
            }
        } else if (!strcmp(key, "password_file")) {
            has_password = 1;
            wipe_free(src->basic_password);
            src->basic_password = want_secret(c, x, "basic_auth.password_file");
        } else if (!strcmp(key, "password")) {
            problem(c, k, "basic_auth.password: secrets are read from files; use password_file");
        } else {
            problem(c, k, "basic_auth: unknown key \"%s\"", key);
        }
    }
    if (!src->basic_user)
        problem(c, v, "basic_auth: username is required");
    if (!has_password)
        problem(c, v, "basic_auth: password_file is required");
}

static void parse_headers(struct pctx *c, const struct rg_yaml_node *v,
                          struct rg_query_source *src)
{
    /* Headers the transport or this client write themselves. */
    static const char *const reserved[] = {
        "Content-Type", "Content-Length", "Host", "Transfer-Encoding", "Connection",
        "Accept", "Accept-Encoding", "Expect", NULL,
    };

    if (v->kind != RG_YAML_MAP) {
        problem(c, v, "headers: expected a map of header names to values");
        return;
    }
    if (!(src->headers = calloc(v->nitems / 2 + 1, sizeof(char *)))) {
        c->oom = 1;
        return;
    }
    for (size_t i = 0; i + 1 < v->nitems; i += 2) {
        const struct rg_yaml_node *k = v->items[i], *x = v->items[i + 1];
        const char *name = want_string(c, k, "headers"), *val;
        struct rg_buf line = { 0 };
        int bad = 0;

        if (!name)
            continue;
        for (const char *p = name; *p; p++)
            bad |= !token_char((unsigned char)*p);
        if (!*name || bad || strlen(name) > 256) {
            problem(c, k, "headers: invalid header name \"%s\"", name);
            continue;
        }
        for (size_t r = 0; reserved[r]; r++)
            bad |= !strcasecmp(name, reserved[r]);
        if (bad) {
            problem(c, k, "headers: \"%s\" is set by rollgate itself", name);
            continue;
        }
        for (size_t j = 0; j < src->nheaders; j++) {
            size_t len = strcspn(src->headers[j], ":");
            bad |= len == strlen(name) && !strncasecmp(src->headers[j], name, len);
        }
        if (bad) {
            problem(c, k, "headers: duplicate header \"%s\"", name);
            continue;
        }
        if (!(val = want_string(c, x, "headers")))
            continue;
        if (strpbrk(val, "\r\n")) {
            problem(c, x, "headers.%s: value holds a line break", name);
            continue;
        }
        if (rg_buf_printf(&line, "%s: %s", name, val)) {
            rg_buf_cleanup(&line);
            c->oom = 1;
            continue;
        }
        src->headers[src->nheaders++] = line.data;
    }
}

static const char *const entry_keys[] = {
    "name", "url", "basic_auth", "bearer_token_file", "tls", "headers", "timeout",
    "query_offset", "max_concurrency", "max_response_bytes", "max_points", NULL,
};

static void parse_entry(struct pctx *c, const struct rg_yaml_node *e,
                        struct rg_query_source *src)
{
    const struct rg_yaml_node *v;
    const char *s;
    long long x;

    if (e->kind != RG_YAML_MAP) {
        problem(c, e, "sources: expected a map for each source");
        return;
    }
    for (size_t i = 0; i + 1 < e->nitems; i += 2) {
        const struct rg_yaml_node *k = e->items[i];
        const char *key = k->kind == RG_YAML_SCALAR ? k->scalar : "";
        int known = 0;

        for (size_t j = 0; entry_keys[j]; j++)
            known |= !strcmp(entry_keys[j], key);
        if (!known)
            problem(c, k, "sources: unknown key \"%s\"", key);
        for (size_t j = 0; j + 1 < i; j += 2)
            if (e->items[j]->kind == RG_YAML_SCALAR && !strcmp(e->items[j]->scalar, key))
                problem(c, k, "sources: duplicate key \"%s\"", key);
    }

    if (!(v = rg_yaml_get(e, "name"))) {
        problem(c, e, "sources: name is required");
    } else if ((s = want_string(c, v, "name"))) {
        int bad = !*s || strlen(s) > NAME_MAX_LEN;
        for (const char *p = s; *p; p++)
            bad |= !(token_char((unsigned char)*p) && *p != '|' && *p != '`');
        if (bad)
            problem(c, v, "name: \"%s\" must be 1 to %d letters, digits or -_.", s,
                    NAME_MAX_LEN);
        else
            src->name = dup_or_oom(c, s);
    }
    if (!(v = rg_yaml_get(e, "url"))) {
        problem(c, e, "sources: url is required");
    } else if ((s = want_string(c, v, "url"))) {
        if (!url_ok(s))
            problem(c, v, "url: expected an http:// or https:// URL without query, got \"%s\"",
                    s);
        else if (!(src->url = base_url(s)))
            c->oom = 1;
    }
    if ((v = rg_yaml_get(e, "basic_auth")))
        parse_basic_auth(c, v, src);
    if ((v = rg_yaml_get(e, "bearer_token_file"))) {
        if (rg_yaml_get(e, "basic_auth"))
            problem(c, v, "bearer_token_file: give either basic_auth or bearer_token_file");
        else
            src->bearer_token = want_secret(c, v, "bearer_token_file");
    }
    if ((v = rg_yaml_get(e, "tls")))
        parse_tls(c, v, src);
    if ((v = rg_yaml_get(e, "headers"))) {
        parse_headers(c, v, src);
        for (size_t i = 0; i < src->nheaders; i++)
            if (!strncasecmp(src->headers[i], "Authorization:", 14) &&
                (rg_yaml_get(e, "basic_auth") || rg_yaml_get(e, "bearer_token_file")))
                problem(c, v, "headers: Authorization conflicts with basic_auth or "
                        "bearer_token_file");
    }
    if ((v = rg_yaml_get(e, "timeout")))
        want_duration(c, v, "timeout", 1, &src->timeout_ms);
    if ((v = rg_yaml_get(e, "query_offset")))
        want_duration(c, v, "query_offset", 0, &src->query_offset_ms);
    if ((v = rg_yaml_get(e, "max_concurrency"))) {
        x = src->max_concurrency;
        want_int(c, v, "max_concurrency", 1, MAX_CONCURRENCY, &x);
        src->max_concurrency = (int)x;
    }
    if ((v = rg_yaml_get(e, "max_response_bytes"))) {
        size_t n = 0;
        if (v->kind != RG_YAML_SCALAR || rg_config_parse_size(v->scalar, &n) != 0)
            problem(c, v, "max_response_bytes: invalid size \"%s\" (e.g. 64MiB)",
                    v->kind == RG_YAML_SCALAR ? v->scalar : "");
        else if (n < MIN_MAX_RESPONSE)
            problem(c, v, "max_response_bytes: must be at least 1KiB");
        else
            src->max_response_bytes = n;
    }
    if ((v = rg_yaml_get(e, "max_points"))) {
        x = src->max_points;
        want_int(c, v, "max_points", 1, MAX_MAX_POINTS, &x);
        src->max_points = x;
    }
}

struct parse_state {
    struct pctx c;
    struct rg_query_sources *out;
    int *lines, *cols;             /* where each source is defined, for duplicates */
    char **paths;
};

static int each_section(const char *path, const struct rg_yaml_node *sec, void *ud)
{
    struct parse_state *ps = ud;
    struct pctx *c = &ps->c;

    c->path = path;
    if (rg_yaml_is_null(sec))
        return 0;
    if (sec->kind != RG_YAML_SEQ) {
        problem(c, sec, "sources: expected a list of sources");
        return 0;
    }
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
        ps->paths[s->n] = dup_or_oom(c, path);
        s->n++;
        if (!src->name)
            continue;
        for (size_t j = 0; j + 1 < s->n; j++) {
            if (s->v[j].name && !strcmp(s->v[j].name, src->name)) {
                problem(c, rg_yaml_get(e, "name"), "name: source \"%s\" is already defined "
                        "at %s:%d:%d", src->name, ps->paths[j] ? ps->paths[j] : "",
                        ps->lines[j], ps->cols[j]);
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
