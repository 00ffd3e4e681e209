/* config/config.h - rollgate's configuration: defaults, YAML loading, validation.
 *
 * The configuration is one YAML file. This module knows the server, remote-write,
 * storage and query sections; every key has a default (rg_config_default) and a
 * file only overrides what it names. Unknown keys and wrong types are errors
 * reported as "file:line:col: message", so that `rollgate check` and startup give
 * the same answer. Loading is pure apart from reading the one file.
 */
#ifndef RG_CONFIG_CONFIG_H
#define RG_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct rg_config_server {
    char listen[256];             /* "host:port"; default "0.0.0.0:9201" */
    int max_connections;          /* default 1024 */
    size_t max_header_bytes;      /* default 64 KiB */
    size_t max_body_bytes;        /* compressed request body; default 32 MiB */
    int64_t header_timeout_ms;    /* default 10 s */
    int64_t idle_timeout_ms;      /* keep-alive idle; default 2 m */
};

struct rg_config_remote_write {
    size_t max_decompressed_bytes;  /* snappy-declared size limit; default 32 MiB */
    int64_t future_tolerance_ms;    /* samples further ahead are rejected; default 10 m */
};

struct rg_config_storage {
    int64_t retention_ms;         /* default 1 h */
    size_t max_series;            /* default 1,000,000 */
    int64_t gc_interval_ms;       /* default 10 s */
};

struct rg_config_query {
    int64_t lookback_delta_ms;    /* default 5 m */
    size_t max_samples;           /* default 50,000,000 */
    int64_t timeout_ms;           /* default 2 m */
    int64_t max_points;           /* range query points per series; default 11,000 */
};

struct rg_yaml_node;

/** One YAML document of the configuration: the main file or an included one. */
struct rg_config_doc {
    char *path;                   /* owned; as opened (relative paths resolved against
                                   * the including file's directory) */
    struct rg_yaml_node *root;    /* owned by the config (the main doc's root is cfg->yaml) */
};

struct rg_config {
    char path[1024];              /* file loaded, or "" for built-in defaults */
    struct rg_yaml_node *yaml;    /* owned: the parsed file, kept so that the sections
                                   * other modules own (rule_files, signals, phases,
                                   * deployments, ...) can be read with positions */
    struct rg_config_doc *docs;   /* owned: the main file first, then each `include:` */
    size_t ndocs;
    struct rg_config_server server;
    struct rg_config_remote_write remote_write;
    struct rg_config_storage storage;
    struct rg_config_query query;
};

/** Fills @cfg with every default. */
void rg_config_default(struct rg_config *cfg);

/** Frees what @cfg owns (the YAML tree). NULL is a no-op. */
void rg_config_cleanup(struct rg_config *cfg);

/** Top-level sections this module accepts without reading them: their owners parse
 *  them from cfg->yaml. NULL-terminated. */
extern const char *const rg_config_foreign_sections[];

/** Calls @cb for the section @name (a top-level key) of every document, main file
 *  first, then included files in order; @path names the document for messages and
 *  for resolving relative paths. A non-zero return from @cb stops and is returned. */
int rg_config_each_section(const struct rg_config *cfg, const char *name,
                           int (*cb)(const char *path, const struct rg_yaml_node *section,
                                     void *ud),
                           void *ud);

/** Resolves @rel against the directory of @base_path into @out (absolute paths and
 *  base paths without a directory are kept as they are). */
void rg_config_resolve_path(const char *base_path, const char *rel, char *out, size_t cap);

/** Loads @path over the defaults. On error returns RG_EPARSE / RG_EINVAL / RG_EIO
 *  and appends "path:line:col: message" lines to @err (one per problem found).
 *  Returns 0 on success. */
int rg_config_load_file(const char *path, struct rg_config *cfg, struct rg_buf *err);

/** Loads YAML text (named @name in messages) over the defaults already in @cfg. */
int rg_config_load_text(const char *name, const char *text, size_t len, struct rg_config *cfg,
                        struct rg_buf *err);

/** Parses "host:port" (host may be empty, a name, an IPv4 address or [IPv6]) into
 *  @host (capacity @hostcap) and @port. Returns 0 or RG_EINVAL. */
int rg_config_split_hostport(const char *s, char *host, size_t hostcap, int *port);

/** Parses a byte size: "1048576", "64KiB", "32MiB", "1GiB", "10MB" into @out.
 *  Returns 0 or RG_EINVAL. */
int rg_config_parse_size(const char *s, size_t *out);

#endif
