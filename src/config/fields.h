/* config/fields.h - checked reading of the fields that several configuration sections share.
 *
 * The `notifiers:` and `sources:` sections (and any later section that talks to an HTTP
 * server) are read the same way: each value is checked, every problem is appended to an
 * error buffer as "file:line:col: message" and the walk goes on, so that one run of
 * `rollgate check` lists every problem. This module holds that reporting context and the
 * readers of the fields those sections have in common: strings, booleans, durations,
 * bounded integers, names, readable files, secret files, a `tls:` block, a `basic_auth:`
 * block and a `headers:` map. Secrets are read from their files while parsing (so that a
 * missing or empty file is a configuration error, not a failure at the first request)
 * and are wiped before they are freed. Pure apart from reading the named files; one
 * thread (the one loading the configuration).
 */
#ifndef RG_CONFIG_FIELDS_H
#define RG_CONFIG_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#include "config/yaml.h"
#include "util/buf.h"

/** The reporting context of one section walk. */
struct rg_config_fields {
    struct rg_buf *err;            /* borrowed; problems are appended here; NULL: counted only */
    const char *path;              /* borrowed; document being read (messages, relative paths) */
    int problems;                  /* problems reported so far */
    int oom;                       /* 1 once an allocation failed */
};

/** The `tls:` block of a client. All strings are owned by the caller once filled. */
struct rg_config_tls {
    char *ca_file;                 /* resolved path or NULL */
    char *cert_file;               /* resolved path or NULL */
    char *key_file;                /* resolved path or NULL */
    char *server_name;             /* SNI and verification name, or NULL */
    int insecure_skip_verify;      /* 1: do not verify the server's certificate */
};

/** The `basic_auth:` block of a client. All strings are owned by the caller once filled. */
struct rg_config_basic_auth {
    char *user;                    /* username, or NULL when missing or invalid */
    char *password_file;           /* resolved path, or NULL */
    char *password;                /* secret read from password_file (wipe it), or NULL */
    size_t password_len;           /* bytes of password */
    int password_given;            /* 1: the block names password_file (valid or not) */
};

/** Appends "path:line:col: message\n" for the node @at (NULL: line 1, column 1) and
 *  counts the problem. An allocation failure sets c->oom. */
void rg_config_field_problem(struct rg_config_fields *c, const struct rg_yaml_node *at,
                             const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** Starts reading the section @sec of the document @path (kept in c->path for messages
 *  and relative paths): returns 1 when @sec is a list to walk, 0 when it is empty (null)
 *  or, after reporting "@what: expected a list of @what", anything else. */
int rg_config_field_list(struct rg_config_fields *c, const char *path,
                         const struct rg_yaml_node *sec, const char *what);

/** Copies @s; on allocation failure sets c->oom and returns NULL. Caller owns the copy. */
char *rg_config_field_dup(struct rg_config_fields *c, const char *s);

/** True (after reporting "@section: duplicate key") when the key at item @i of the map
 *  @map was already given by an earlier item. */
int rg_config_field_dup_key(struct rg_config_fields *c, const struct rg_yaml_node *map,
                            size_t i, const char *section);

/** Reports every key of the map @map that is not in the NULL-terminated @keys
 *  ("@section: unknown key") and every key given twice. */
void rg_config_field_check_keys(struct rg_config_fields *c, const struct rg_yaml_node *map,
                                const char *const *keys, const char *section);

/** The text of @v when it is a string (plain or quoted, no NUL byte); otherwise reports
 *  and returns NULL. The text is borrowed from the tree. */
const char *rg_config_field_string(struct rg_config_fields *c, const struct rg_yaml_node *v,
                                   const char *what);

/** Reads an unquoted true or false into *@out. Returns 0, or -1 after reporting. */
int rg_config_field_bool(struct rg_config_fields *c, const struct rg_yaml_node *v,
                         const char *what, int *out);

/** Reads a Prometheus duration ("1m30s") of at least @min_ms into *@out (milliseconds).
 *  Returns 0, or -1 after reporting; *@out is unchanged on error. */
int rg_config_field_duration(struct rg_config_fields *c, const struct rg_yaml_node *v,
                             const char *what, int64_t min_ms, int64_t *out);

/** Reads an unquoted decimal integer from @lo to @hi into *@out. Returns 0, or -1 after
 *  reporting; *@out is unchanged on error. */
int rg_config_field_int(struct rg_config_fields *c, const struct rg_yaml_node *v,
                        const char *what, long long lo, long long hi, long long *out);

/** True for the characters of an HTTP token (RFC 9110 tchar). */
int rg_config_field_token_char(unsigned char ch);

/** True when @s is an http:// or https:// URL (scheme in any case) with a host and no
 *  blanks or control characters; with @allow_query zero it must also have no query or
 *  fragment ('?' or '#'). */
int rg_config_field_url_ok(const char *s, int allow_query);

/** Reads the `name:` of an entry: 1 to @max_len token characters other than '|' and '`'.
 *  Returns a copy the caller owns, or NULL after reporting. */
char *rg_config_field_name(struct rg_config_fields *c, const struct rg_yaml_node *v,
                           size_t max_len);

/** Resolves the path @v against the document and checks that it can be read. Returns
 *  the resolved path (caller owns it), or NULL after reporting. */
char *rg_config_field_file(struct rg_config_fields *c, const struct rg_yaml_node *v,
                           const char *what);

/** Reads the secret file named by @v (at most 64 KiB): trailing blanks and line ends are
 *  removed, as Prometheus does with its credential files; the rest must be one non-empty
 *  line without NUL bytes. On success stores the secret in *@data (NUL-terminated, caller
 *  owns it and wipes it with rg_config_field_secret_free) and its length in *@len, and
 *  the resolved path in *@path when @path is not NULL (caller owns it). Returns 0, or -1
 *  after reporting, with nothing stored. */
int rg_config_field_secret_file(struct rg_config_fields *c, const struct rg_yaml_node *v,
                                const char *what, char **path, char **data, size_t *len);

/** Overwrites the NUL-terminated secret @data with zeros and frees it. NULL is a no-op. */
void rg_config_field_secret_free(char *data);

/** Reads a `tls:` map (ca_file, cert_file, key_file, server_name, insecure_skip_verify)
 *  into @out, which the caller zeroes first. Reports unknown and duplicate keys and a
 *  cert_file without key_file or the reverse. */
void rg_config_field_tls(struct rg_config_fields *c, const struct rg_yaml_node *v,
                         struct rg_config_tls *out);

/** Frees what @t owns. NULL is a no-op. */
void rg_config_tls_cleanup(struct rg_config_tls *t);

/** Reads a `basic_auth:` map (username, password_file) into @out, which the caller zeroes
 *  first. Reports unknown and duplicate keys, a username with ':', a password given
 *  inline, and a missing username; whether password_file is required is the caller's
 *  choice (see password_given). */
void rg_config_field_basic_auth(struct rg_config_fields *c, const struct rg_yaml_node *v,
                                struct rg_config_basic_auth *out);

/** Frees what @a owns, wiping the password. NULL is a no-op. */
void rg_config_basic_auth_cleanup(struct rg_config_basic_auth *a);

/** Reads a `headers:` map of header names to values into *@out as "Name: value" lines
 *  (in the order given; *@out and *@nout are set even when some entries are rejected).
 *  Rejects invalid names, names in the NULL-terminated @reserved list (compared without
 *  case), duplicates and values with line breaks. When @other_auth is non-zero the entry
 *  also has basic_auth or bearer_token_file, and an Authorization header is reported as
 *  conflicting with them. Caller owns the array and its lines. */
void rg_config_field_headers(struct rg_config_fields *c, const struct rg_yaml_node *v,
                             const char *const *reserved, int other_auth, char ***out,
                             size_t *nout);

#endif
