/* config/config.c - defaults and the YAML walk for rollgate's configuration.
 *
 * Each section is a table of keys with a setter; a key not in the table, a value of
 * the wrong kind, or a value out of range is reported with its position and the
 * walk goes on, so one run lists every problem in the file.
 */
#include "config/config.h"
#include "config/yaml.h"
#include "promql/ast.h"
#include "util/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rg_config_default(struct rg_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->server.listen, sizeof(cfg->server.listen), "0.0.0.0:9201");
    cfg->server.max_connections = 1024;
    cfg->server.max_header_bytes = 64 * 1024;
    cfg->server.max_body_bytes = 32u * 1024 * 1024;
    cfg->server.header_timeout_ms = 10 * 1000;
    cfg->server.idle_timeout_ms = 120 * 1000;
    cfg->remote_write.max_decompressed_bytes = 32u * 1024 * 1024;
    cfg->remote_write.future_tolerance_ms = 10 * 60 * 1000;
    cfg->storage.retention_ms = 3600 * 1000;
    cfg->storage.max_series = 1000000;
    cfg->storage.gc_interval_ms = 10 * 1000;
    cfg->query.lookback_delta_ms = 5 * 60 * 1000;
    cfg->query.max_samples = 50000000;
    cfg->query.timeout_ms = 2 * 60 * 1000;
    cfg->query.max_points = 11000;
}

void rg_config_cleanup(struct rg_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->ndocs; i++) {
        free(cfg->docs[i].path);
        if (cfg->docs[i].root != cfg->yaml)
            rg_yaml_free(cfg->docs[i].root);
    }
    free(cfg->docs);
    cfg->docs = NULL;
    cfg->ndocs = 0;
    rg_yaml_free(cfg->yaml);
    cfg->yaml = NULL;
}

void rg_config_resolve_path(const char *base_path, const char *rel, char *out, size_t cap)
{
    const char *slash = strrchr(base_path, '/');

    if (rel[0] == '/' || !slash)
        snprintf(out, cap, "%s", rel);
    else
        snprintf(out, cap, "%.*s/%s", (int)(slash - base_path), base_path, rel);
}

int rg_config_each_section(const struct rg_config *cfg, const char *name,
                           int (*cb)(const char *path, const struct rg_yaml_node *section,
                                     void *ud),
                           void *ud)
{
    for (size_t i = 0; i < cfg->ndocs; i++) {
        const struct rg_yaml_node *sec = rg_yaml_get(cfg->docs[i].root, name);
        int rc;
        if (!sec)
            continue;
        if ((rc = cb(cfg->docs[i].path, sec, ud)))
            return rc;
    }
    return 0;
}

static int add_doc(struct rg_config *cfg, const char *path, struct rg_yaml_node *root)
{
    struct rg_config_doc *d = realloc(cfg->docs, (cfg->ndocs + 1) * sizeof(*d));
    if (!d)
        return RG_ENOMEM;
    cfg->docs = d;
    d[cfg->ndocs].path = strdup(path);
    if (!d[cfg->ndocs].path)
        return RG_ENOMEM;
    d[cfg->ndocs++].root = root;
    return 0;
}

static int read_file(const char *path, struct rg_buf *text, struct rg_buf *err);

const char *const rg_config_foreign_sections[] = {
    "global", "rule_files", "signals", "phases", "triggers", "deployments", "metrics",
    "discovery", "notifiers", "sources", "include", NULL,
};

static int is_foreign(const char *key)
{
    for (const char *const *s = rg_config_foreign_sections; *s; s++)
        if (strcmp(*s, key) == 0)
            return 1;
    return 0;
}

int rg_config_split_hostport(const char *s, char *host, size_t hostcap, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    char *end;
    long p;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return RG_EINVAL;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return RG_EINVAL;
        hlen = (size_t)(colon - s);
    }
    if (hlen >= hostcap)
        return RG_EINVAL;
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (errno || *end || colon[1] == '\0' || p < 0 || p > 65535)
        return RG_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (hlen == 0)
        snprintf(host, hostcap, "0.0.0.0");
    *port = (int)p;
    return 0;
}

int rg_config_parse_size(const char *s, size_t *out)
{
    static const struct {
        const char *unit;
        unsigned long long mult;
    } units[] = {
        { "", 1 }, { "B", 1 },
        { "KiB", 1ull << 10 }, { "MiB", 1ull << 20 }, { "GiB", 1ull << 30 },
        { "KB", 1000ull }, { "MB", 1000ull * 1000 }, { "GB", 1000ull * 1000 * 1000 },
    };
    unsigned long long v;
    char *end;

    if (*s < '0' || *s > '9')
        return RG_EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        return RG_EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].unit) == 0) {
            if (v > (unsigned long long)SIZE_MAX / units[i].mult)
                return RG_EINVAL;
            *out = (size_t)(v * units[i].mult);
            return 0;
        }
    }
    return RG_EINVAL;
}

/* ---- the walk ------------------------------------------------------------ */

struct walk {
    const char *name;      /* file name for messages */
    struct rg_buf *err;
    int nerr;
};

static void problem(struct walk *w, const struct rg_yaml_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(struct walk *w, const struct rg_yaml_node *n, const char *fmt, ...)
{
    va_list ap;

    rg_buf_printf(w->err, "%s:%d:%d: ", w->name, n ? n->line : 1, n ? n->col : 1);
    va_start(ap, fmt);
    rg_buf_vprintf(w->err, fmt, ap);
    va_end(ap);
    rg_buf_putc(w->err, '\n');
    w->nerr++;
}

enum key_kind { K_DURATION, K_SIZE, K_INT, K_STRING };

struct key {
    const char *name;
    enum key_kind kind;
    size_t offset;        /* into struct rg_config */
    size_t size;          /* K_STRING: capacity */
    long long min;        /* K_INT / K_DURATION (ms) / K_SIZE lower bound */
};

#define KEY(n, k, field, min) { n, k, offsetof(struct rg_config, field), \
                                sizeof(((struct rg_config *)0)->field), min }

static const struct key server_keys[] = {
    KEY("listen", K_STRING, server.listen, 0),
    KEY("max_connections", K_INT, server.max_connections, 1),
    KEY("max_header_bytes", K_SIZE, server.max_header_bytes, 1024),
    KEY("max_body_bytes", K_SIZE, server.max_body_bytes, 1024),
    KEY("header_timeout", K_DURATION, server.header_timeout_ms, 1),
    KEY("idle_timeout", K_DURATION, server.idle_timeout_ms, 1),
    { NULL, 0, 0, 0, 0 },
};

static const struct key remote_write_keys[] = {
    KEY("max_decompressed_bytes", K_SIZE, remote_write.max_decompressed_bytes, 1024),
    KEY("future_tolerance", K_DURATION, remote_write.future_tolerance_ms, 0),
    { NULL, 0, 0, 0, 0 },
};

static const struct key storage_keys[] = {
    KEY("retention", K_DURATION, storage.retention_ms, 1000),
    KEY("max_series", K_SIZE, storage.max_series, 1),
    KEY("gc_interval", K_DURATION, storage.gc_interval_ms, 100),
    { NULL, 0, 0, 0, 0 },
};

static const struct key query_keys[] = {
    KEY("lookback_delta", K_DURATION, query.lookback_delta_ms, 1),
    KEY("max_samples", K_SIZE, query.max_samples, 1),
    KEY("timeout", K_DURATION, query.timeout_ms, 1),
    KEY("max_points", K_INT, query.max_points, 1),
    { NULL, 0, 0, 0, 0 },
};

static void set_key(struct walk *w, const struct key *k, const struct rg_yaml_node *v,
                    struct rg_config *cfg)
{
    char *dst = (char *)cfg + k->offset;

    if (v->kind != RG_YAML_SCALAR) {
        problem(w, v, "%s: expected a scalar value", k->name);
        return;
    }
    switch (k->kind) {
    case K_STRING:
        if (v->scalar_len >= k->size) {
            problem(w, v, "%s: value too long", k->name);
            return;
        }
        memcpy(dst, v->scalar, v->scalar_len + 1);
        return;
    case K_DURATION: {
        int64_t ms;
        if (rg_promql_parse_duration(v->scalar, v->scalar_len, &ms) || ms < k->min) {
            problem(w, v, "%s: invalid duration \"%s\"", k->name, v->scalar);
            return;
        }
        memcpy(dst, &ms, sizeof(ms));
        return;
    }
    case K_SIZE: {
        size_t sz;
        if (rg_config_parse_size(v->scalar, &sz) || sz < (size_t)k->min) {
            problem(w, v, "%s: invalid size \"%s\"", k->name, v->scalar);
            return;
        }
        memcpy(dst, &sz, sizeof(sz));
        return;
    }
    case K_INT: {
        char *end;
        long long x;
        errno = 0;
        x = strtoll(v->scalar, &end, 10);
        if (errno || *end || v->scalar_len == 0 || x < k->min) {
            problem(w, v, "%s: invalid integer \"%s\"", k->name, v->scalar);
            return;
        }
        if (k->size == sizeof(int)) {
            int i = x > 0x7fffffff ? 0x7fffffff : (int)x;
            memcpy(dst, &i, sizeof(i));
        } else {
            int64_t i = x;
            memcpy(dst, &i, sizeof(i));
        }
        return;
    }
    }
}

static void walk_section(struct walk *w, const char *section, const struct key *keys,
                         const struct rg_yaml_node *map, struct rg_config *cfg)
{
    if (rg_yaml_is_null(map))
        return;
    if (map->kind != RG_YAML_MAP) {
        problem(w, map, "%s: expected a mapping", section);
        return;
    }
    for (size_t i = 0; i + 1 < map->nitems; i += 2) {
        const struct rg_yaml_node *kn = map->items[i];
        const struct key *k = keys;
        while (k->name && strcmp(k->name, kn->scalar ? kn->scalar : "") != 0)
            k++;
        if (!k->name) {
            problem(w, kn, "%s: unknown key \"%s\"", section, kn->scalar ? kn->scalar : "?");
            continue;
        }
        set_key(w, k, map->items[i + 1], cfg);
    }
}

static const struct {
    const char *name;
    const struct key *keys;
} sections[] = {
    { "server", server_keys },
    { "remote_write", remote_write_keys },
    { "storage", storage_keys },
    { "query", query_keys },
};

/* Included files may hold only the sections other modules own; one level deep. */
static void load_includes(struct walk *w, struct rg_config *cfg, const char *base,
                          const struct rg_yaml_node *inc)
{
    if (!inc || rg_yaml_is_null(inc))
        return;
    if (inc->kind != RG_YAML_SEQ) {
        problem(w, inc, "include: expected a list of file names");
        return;
    }
    for (size_t i = 0; i < inc->nitems; i++) {
        const struct rg_yaml_node *item = inc->items[i];
        struct rg_buf text = { 0 }, err = { 0 };
        struct rg_yaml_node *root = NULL;
        char path[1024], msg[512];

        if (item->kind != RG_YAML_SCALAR || item->scalar_len == 0) {
            problem(w, item, "include: expected a file name");
            continue;
        }
        rg_config_resolve_path(base, item->scalar, path, sizeof(path));
        if (read_file(path, &text, &err)) {
            problem(w, item, "include: %s", err.data ? err.data : path);
        } else if (rg_yaml_parse(text.data ? text.data : "", text.len, &root, msg, sizeof(msg))) {
            rg_buf_printf(w->err, "%s:%s\n", path, msg);
            w->nerr++;
        } else if (root->kind != RG_YAML_MAP) {
            struct walk iw = { path, w->err, 0 };
            problem(&iw, root, "expected a mapping at the top level");
            w->nerr += iw.nerr;
            rg_yaml_free(root);
        } else {
            struct walk iw = { path, w->err, 0 };
            for (size_t k = 0; k + 1 < root->nitems; k += 2) {
                const struct rg_yaml_node *kn = root->items[k];
                if (!kn->scalar || !is_foreign(kn->scalar) || strcmp(kn->scalar, "include") == 0)
                    problem(&iw, kn, "unknown key \"%s\" in an included file",
                            kn->scalar ? kn->scalar : "?");
            }
            w->nerr += iw.nerr;
            if (add_doc(cfg, path, root)) {
                rg_yaml_free(root);
                w->nerr++;
            }
        }
        rg_buf_cleanup(&text);
        rg_buf_cleanup(&err);
    }
}

int rg_config_load_text(const char *name, const char *text, size_t len, struct rg_config *cfg,
                        struct rg_buf *err)
{
    struct rg_yaml_node *root;
    struct walk w = { name, err, 0 };
    char msg[512];
    char host[256];
    int port;
    int rc;

    rc = rg_yaml_parse(text, len, &root, msg, sizeof(msg));
    if (rc == RG_EPARSE) {
        rg_buf_printf(err, "%s:%s\n", name, msg);
        return rc;
    }
    if (rc)
        return rc;
    if (root->kind != RG_YAML_MAP) {
        problem(&w, root, "expected a mapping at the top level");
    } else {
        for (size_t i = 0; i + 1 < root->nitems; i += 2) {
            const struct rg_yaml_node *kn = root->items[i];
            size_t s = 0;
            while (s < sizeof(sections) / sizeof(sections[0]) &&
                   strcmp(sections[s].name, kn->scalar ? kn->scalar : "") != 0)
                s++;
            if (s == sizeof(sections) / sizeof(sections[0]) && kn->scalar &&
                is_foreign(kn->scalar))
                continue;
            if (s == sizeof(sections) / sizeof(sections[0])) {
                problem(&w, kn, "unknown key \"%s\"", kn->scalar ? kn->scalar : "?");
                continue;
            }
            walk_section(&w, sections[s].name, sections[s].keys, root->items[i + 1], cfg);
        }
    }
    if (rg_config_split_hostport(cfg->server.listen, host, sizeof(host), &port)) {
        const struct rg_yaml_node *at = rg_yaml_get(rg_yaml_get(root, "server"), "listen");
        problem(&w, at ? at : root, "server.listen: expected host:port, got \"%s\"",
                cfg->server.listen);
    }
    rg_config_cleanup(cfg);
    cfg->yaml = root;
    if (name != cfg->path)
        snprintf(cfg->path, sizeof(cfg->path), "%s", name);
    if ((rc = add_doc(cfg, name, root)))
        return rc;
    load_includes(&w, cfg, name, rg_yaml_get(root, "include"));
    return w.nerr ? RG_EINVAL : 0;
}

static int read_file(const char *path, struct rg_buf *text, struct rg_buf *err)
{
    char chunk[8192];
    size_t n;
    FILE *f;
    int rc;

    f = fopen(path, "rb");
    if (!f) {
        rg_buf_printf(err, "%s: cannot open: %s", path, strerror(errno));
        return RG_EIO;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (text->len + n > 16u * 1024 * 1024) {
            rg_buf_printf(err, "%s: file larger than 16 MiB", path);
            fclose(f);
            return RG_ETOOBIG;
        }
        if ((rc = rg_buf_append(text, chunk, n))) {
            fclose(f);
            return rc;
        }
    }
    fclose(f);
    return 0;
}

int rg_config_load_file(const char *path, struct rg_config *cfg, struct rg_buf *err)
{
    struct rg_buf text = { 0 };
    int rc;

    if ((rc = read_file(path, &text, err))) {
        rg_buf_putc(err, '\n');
        rg_buf_cleanup(&text);
        return rc;
    }
    rc = rg_config_load_text(path, text.data ? text.data : "", text.len, cfg, err);
    rg_buf_cleanup(&text);
    return rc;
}
