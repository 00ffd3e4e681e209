/* config/yaml.h - a YAML document as a small tree with source positions.
 *
 * libyaml's event parser feeds a tree of maps, sequences and scalars; every node
 * remembers its line and column so that configuration errors can be reported as
 * "file:line:col: message", the way compilers and promtool do. Anchors and aliases
 * are resolved by reference at load time (an alias points at its anchor's node);
 * merge keys are not supported. The tree owns all its strings.
 */
#ifndef RG_CONFIG_YAML_H
#define RG_CONFIG_YAML_H

#include <stddef.h>

enum rg_yaml_kind {
    RG_YAML_SCALAR,
    RG_YAML_MAP,
    RG_YAML_SEQ,
};

struct rg_yaml_node {
    enum rg_yaml_kind kind;
    int line;                       /* 1-based */
    int col;                        /* 1-based */
    char *scalar;                   /* SCALAR: value (owned), NUL-terminated */
    size_t scalar_len;              /* SCALAR: bytes, may contain NUL */
    int quoted;                     /* SCALAR: written in quotes (never a null/bool) */
    int literal;                    /* SCALAR: block literal | or > */
    struct rg_yaml_node **items;    /* SEQ: items; MAP: keys and values interleaved */
    size_t nitems;                  /* SEQ: count; MAP: 2 x pairs */
    int is_alias;                   /* node is shared; not freed through this parent */
};

/** Parses @len bytes of YAML text (the first document) into *@out. On a syntax
 *  error returns RG_EPARSE and writes "line:col: message" into @err. An empty
 *  document yields an empty map. Returns 0, RG_EPARSE or RG_ENOMEM. */
int rg_yaml_parse(const char *text, size_t len, struct rg_yaml_node **out, char *err,
                  size_t errlen);

/** Frees a tree. NULL is a no-op. */
void rg_yaml_free(struct rg_yaml_node *node);

/** MAP lookup by key; NULL when absent or @map is not a map. */
const struct rg_yaml_node *rg_yaml_get(const struct rg_yaml_node *map, const char *key);

/** True when @n is a plain scalar meaning null ("", "~", "null"). */
int rg_yaml_is_null(const struct rg_yaml_node *n);

#endif
