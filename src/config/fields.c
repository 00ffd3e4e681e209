/* config/fields.c - checked reading of the fields that several configuration sections share.
 *
 * Every reader checks one YAML node, reports what is wrong with it through
 * rg_config_field_problem() and leaves its output untouched on error, so that a section
 * walk can go on and list every problem of a file. Map blocks (tls, basic_auth, headers)
 * are walked pair by pair in document order; duplicate keys are found by a linear scan of
 * the earlier keys, which is cheap for maps of a handful of entries. Secret files are read
 * through a growable buffer that is wiped on every error path, so no partial secret is
 * left in freed memory.
 */
#include "config/fields.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/config.h"
#include "promql/ast.h"
#include "util/err.h"
#include "util/file.h"

#define SECRET_MAX (64 * 1024)             /* bytes of a secret file */
#define HEADER_NAME_MAX 256                /* bytes of a header name */

void rg_config_field_problem(struct rg_config_fields *c, const struct rg_yaml_node *at,
                             const char *fmt, ...)
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

int rg_config_field_list(struct rg_config_fields *c, const char *path,
                         const struct rg_yaml_node *sec, const char *what)
{
    c->path = path;
    if (rg_yaml_is_null(sec))
        return 0;
    if (sec->kind != RG_YAML_SEQ) {
        rg_config_field_problem(c, sec, "%s: expected a list of %s", what, what);
        return 0;
    }
    return 1;
}

char *rg_config_field_dup(struct rg_config_fields *c, const char *s)
{
    char *d = strdup(s);

    if (!d)
        c->oom = 1;
    return d;
}

int rg_config_field_dup_key(struct rg_config_fields *c, const struct rg_yaml_node *map,
                            size_t i, const char *section)
{
    const struct rg_yaml_node *k = map->items[i];

    if (k->kind != RG_YAML_SCALAR)
        return 0;
    for (size_t j = 0; j < i; j += 2) {
        const struct rg_yaml_node *o = map->items[j];
        if (o->kind == RG_YAML_SCALAR && !strcmp(o->scalar, k->scalar)) {
            rg_config_field_problem(c, k, "%s: duplicate key \"%s\"", section, k->scalar);
            return 1;
        }
    }
    return 0;
}

void rg_config_field_check_keys(struct rg_config_fields *c, const struct rg_yaml_node *map,
                                const char *const *keys, const char *section)
{
    for (size_t i = 0; i + 1 < map->nitems; i += 2) {
        const struct rg_yaml_node *k = map->items[i];
        const char *key = k->kind == RG_YAML_SCALAR ? k->scalar : "";
        int known = 0;

        for (size_t j = 0; keys[j]; j++)
            known |= !strcmp(keys[j], key);
        if (!known)
            rg_config_field_problem(c, k, "%s: unknown key \"%s\"", section, key);
        rg_config_field_dup_key(c, map, i, section);
    }
}

const char *rg_config_field_string(struct rg_config_fields *c, const struct rg_yaml_node *v,
                                   const char *what)
{
    if (!v || v->kind != RG_YAML_SCALAR || (!v->quoted && rg_yaml_is_null(v))) {
        rg_config_field_problem(c, v, "%s: expected a string", what);
        return NULL;
    }
    if (strlen(v->scalar) != v->scalar_len) {
        rg_config_field_problem(c, v, "%s: contains a NUL byte", what);
        return NULL;
    }
    return v->scalar;
}

int rg_config_field_bool(struct rg_config_fields *c, const struct rg_yaml_node *v,
                         const char *what, int *out)
{
    if (v && v->kind == RG_YAML_SCALAR && !v->quoted) {
        if (!strcmp(v->scalar, "true")) {
            *out = 1;
            return 0;
        }
        if (!strcmp(v->scalar, "false")) {
            *out = 0;
            return 0;
        }
    }
    rg_config_field_problem(c, v, "%s: expected true or false", what);
    return -1;
}

int rg_config_field_duration(struct rg_config_fields *c, const struct rg_yaml_node *v,
                             const char *what, int64_t min_ms, int64_t *out)
{
    int64_t ms;

    if (!v || v->kind != RG_YAML_SCALAR ||
        rg_promql_parse_duration(v->scalar, v->scalar_len, &ms) != 0) {
        rg_config_field_problem(c, v, "%s: invalid duration \"%s\"", what,
                                v && v->kind == RG_YAML_SCALAR ? v->scalar : "");
        return -1;
    }
    if (ms < min_ms) {
        rg_config_field_problem(c, v, "%s: must be at least %lldms", what, (long long)min_ms);
        return -1;
    }
    *out = ms;
    return 0;
}

int rg_config_field_int(struct rg_config_fields *c, const struct rg_yaml_node *v,
                        const char *what, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    long long x = 0;
    int ok = 0;

    if (v && v->kind == RG_YAML_SCALAR && !v->quoted && v->scalar_len) {
        errno = 0;
        x = strtoll(v->scalar, &end, 10);
        ok = !errno && !*end;
    }
    if (!ok || x < lo || x > hi) {
        rg_config_field_problem(c, v, "%s: expected an integer from %lld to %lld", what, lo,
                                hi);
        return -1;
    }
    *out = x;
    return 0;
}

int rg_config_field_token_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

int rg_config_field_url_ok(const char *s, int allow_query)
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
    if (!allow_query && strpbrk(s, "?#"))
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

char *rg_config_field_name(struct rg_config_fields *c, const struct rg_yaml_node *v,
                           size_t max_len)
{
    const char *s = rg_config_field_string(c, v, "name");
    int bad;

    if (!s)
        return NULL;
    /* '|' and '`' are token characters but would break the names' use in PromQL label
     * values and Markdown messages. */
    bad = !*s || strlen(s) > max_len;
    for (const char *p = s; *p; p++)
        bad |= !(rg_config_field_token_char((unsigned char)*p) && *p != '|' && *p != '`');
    if (bad) {
        rg_config_field_problem(c, v, "name: \"%s\" must be 1 to %zu letters, digits or -_.",
                                s, max_len);
        return NULL;
    }
    return rg_config_field_dup(c, s);
}

char *rg_config_field_file(struct rg_config_fields *c, const struct rg_yaml_node *v,
                           const char *what)
{
    char full[1024];
    const char *s = rg_config_field_string(c, v, what);

    if (!s)
        return NULL;
    if (!*s) {
        rg_config_field_problem(c, v, "%s: empty path", what);
        return NULL;
    }
    rg_config_resolve_path(c->path, s, full, sizeof(full));
    if (access(full, R_OK) != 0) {
        rg_config_field_problem(c, v, "%s: cannot read \"%s\": %s", what, full,
                                strerror(errno));
        return NULL;
    }
    return rg_config_field_dup(c, full);
}

/* Zeroes every byte the buffer holds (not only its length) before freeing it. */
static void buf_wipe(struct rg_buf *b)
{
    if (b->data) {
        /* A volatile pointer keeps the compiler from dropping the stores as dead. */
        volatile char *p = b->data;
        for (size_t i = 0; i < b->cap; i++)
            p[i] = 0;
    }
    rg_buf_cleanup(b);
}

int rg_config_field_secret_file(struct rg_config_fields *c, const struct rg_yaml_node *v,
                                const char *what, char **path, char **data, size_t *len)
{
    struct rg_buf b = { 0 };
    char *full = rg_config_field_file(c, v, what);
    int err;

    if (!full)
        return -1;
    err = rg_file_read(full, SECRET_MAX, &b);
    if (err) {
        rg_config_field_problem(c, v, "%s: cannot read \"%s\": %s", what, full,
                                err == RG_ETOOBIG ? "larger than 64 KiB" : rg_strerror(err));
        goto fail_read;
    }
    while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r' ||
                     b.data[b.len - 1] == ' ' || b.data[b.len - 1] == '\t'))
        b.data[--b.len] = 0;
    if (b.len == 0) {
        rg_config_field_problem(c, v, "%s: \"%s\" is empty", what, full);
        goto fail_read;
    }
    if (strlen(b.data) != b.len || strchr(b.data, '\n') || strchr(b.data, '\r')) {
        rg_config_field_problem(c, v, "%s: \"%s\" holds a line break or NUL byte", what, full);
        goto fail_read;
    }
    *data = b.data;
    *len = b.len;
    if (path)
        *path = full;
    else
        free(full);
    return 0;
fail_read:
    buf_wipe(&b);
    free(full);
    return -1;
}

void rg_config_field_secret_free(char *data)
{
    if (data) {
        /* A volatile pointer keeps the compiler from dropping the stores as dead. */
        volatile char *v = data;
        for (size_t i = 0; data[i]; i++)
            v[i] = 0;
        free(data);
    }
}

void rg_config_field_tls(struct rg_config_fields *c, const struct rg_yaml_node *v,
                         struct rg_config_tls *out)
{
    if (v->kind != RG_YAML_MAP) {
        rg_config_field_problem(c, v, "tls: expected a map");
        return;
    }
    for (size_t i = 0; i + 1 < v->nitems; i += 2) {
        const struct rg_yaml_node *k = v->items[i], *x = v->items[i + 1];
        const char *key = k->kind == RG_YAML_SCALAR ? k->scalar : "";
        const char *s;

        /* A duplicate is reported and skipped, so each field is set at most once. */
        if (rg_config_field_dup_key(c, v, i, "tls"))
            continue;
        if (!strcmp(key, "ca_file")) {
            out->ca_file = rg_config_field_file(c, x, "tls.ca_file");
        } else if (!strcmp(key, "cert_file")) {
            out->cert_file = rg_config_field_file(c, x, "tls.cert_file");
        } else if (!strcmp(key, "key_file")) {
            out->key_file = rg_config_field_file(c, x, "tls.key_file");
        } else if (!strcmp(key, "server_name")) {
            if ((s = rg_config_field_string(c, x, "tls.server_name")))
                out->server_name = rg_config_field_dup(c, s);
        } else if (!strcmp(key, "insecure_skip_verify")) {
            rg_config_field_bool(c, x, "tls.insecure_skip_verify", &out->insecure_skip_verify);
        } else {
            rg_config_field_problem(c, k, "tls: unknown key \"%s\"", key);
        }
    }
    if (!out->cert_file != !out->key_file)
        rg_config_field_problem(c, v, "tls: cert_file and key_file must be given together");
}

void rg_config_tls_cleanup(struct rg_config_tls *t)
{
    if (!t)
        return;
    free(t->ca_file);
    free(t->cert_file);
    free(t->key_file);
    free(t->server_name);
    memset(t, 0, sizeof(*t));
}

void rg_config_field_basic_auth(struct rg_config_fields *c, const struct rg_yaml_node *v,
                                struct rg_config_basic_auth *out)
{
    if (v->kind != RG_YAML_MAP) {
        rg_config_field_problem(c, v, "basic_auth: expected a map");
        return;
    }
    for (size_t i = 0; i + 1 < v->nitems; i += 2) {
        const struct rg_yaml_node *k = v->items[i], *x = v->items[i + 1];
        const char *key = k->kind == RG_YAML_SCALAR ? k->scalar : "";
        const char *s;

        if (rg_config_field_dup_key(c, v, i, "basic_auth"))
            continue;
        if (!strcmp(key, "username")) {
            s = rg_config_field_string(c, x, "basic_auth.username");
            if (s && strchr(s, ':'))
                rg_config_field_problem(c, x, "basic_auth.username: must not contain ':'");
            else if (s)
                out->user = rg_config_field_dup(c, s);
        } else if (!strcmp(key, "password_file")) {
            out->password_given = 1;
            rg_config_field_secret_file(c, x, "basic_auth.password_file", &out->password_file,
                                        &out->password, &out->password_len);
        } else if (!strcmp(key, "password")) {
            rg_config_field_problem(c, k, "basic_auth.password: secrets are read from files; "
                                    "use password_file");
        } else {
            rg_config_field_problem(c, k, "basic_auth: unknown key \"%s\"", key);
        }
    }
    if (!out->user)
        rg_config_field_problem(c, v, "basic_auth: username is required");
}

void rg_config_basic_auth_cleanup(struct rg_config_basic_auth *a)
{
    if (!a)
        return;
    free(a->user);
    free(a->password_file);
    rg_config_field_secret_free(a->password);
    memset(a, 0, sizeof(*a));
}

/* The problem with the header name @name, or NULL when it may be configured. */
static const char *header_name_problem(const char *name, const char *const *reserved,
                                       char *const *have, size_t nhave)
{
    int bad = 0;

    for (const char *p = name; *p; p++)
        bad |= !rg_config_field_token_char((unsigned char)*p);
    if (!*name || bad || strlen(name) > HEADER_NAME_MAX)
        return "headers: invalid header name \"%s\"";
    for (size_t r = 0; reserved[r]; r++)
        if (!strcasecmp(name, reserved[r]))
            return "headers: \"%s\" is set by rollgate itself";
    for (size_t j = 0; j < nhave; j++) {
        size_t len = strcspn(have[j], ":");
        if (len == strlen(name) && !strncasecmp(have[j], name, len))
            return "headers: duplicate header \"%s\"";
    }
    return NULL;
}

void rg_config_field_headers(struct rg_config_fields *c, const struct rg_yaml_node *v,
                             const char *const *reserved, int other_auth, char ***out,
                             size_t *nout)
{
    char **lines;
    size_t n = 0;

    if (v->kind != RG_YAML_MAP) {
        rg_config_field_problem(c, v, "headers: expected a map of header names to values");
        return;
    }
    if (!(lines = calloc(v->nitems / 2 + 1, sizeof(char *)))) {
        c->oom = 1;
        return;
    }
    for (size_t i = 0; i + 1 < v->nitems; i += 2) {
        const struct rg_yaml_node *k = v->items[i], *x = v->items[i + 1];
        const char *name = rg_config_field_string(c, k, "headers"), *val, *why;
        struct rg_buf line = { 0 };

        if (!name)
            continue;
        if ((why = header_name_problem(name, reserved, lines, n))) {
            rg_config_field_problem(c, k, why, name);
            continue;
        }
        if (!(val = rg_config_field_string(c, x, "headers")))
            continue;
        if (strpbrk(val, "\r\n")) {
            rg_config_field_problem(c, x, "headers.%s: value holds a line break", name);
            continue;
        }
        if (rg_buf_printf(&line, "%s: %s", name, val)) {
            rg_buf_cleanup(&line);
            c->oom = 1;
            continue;
        }
        lines[n++] = line.data;
    }
    /* basic_auth and bearer_token_file are sent as the Authorization header. */
    for (size_t i = 0; other_auth && i < n; i++)
        if (!strncasecmp(lines[i], "Authorization:", 14))
            rg_config_field_problem(c, v, "headers: Authorization conflicts with basic_auth "
                                    "or bearer_token_file");
    *out = lines;
    *nout = n;
}
