/* config/yaml.c - builds an rg_yaml_node tree from libyaml's event stream.
 *
 * A stack of open collections receives each event; scalars and closed collections
 * are appended to the collection on top. Anchored nodes are remembered by name so
 * that aliases can point at them (shared, freed once through the anchor).
 */
#include "config/yaml.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct anchor {
    char *name;
    struct rg_yaml_node *node;
};

struct builder {
    struct rg_yaml_node **stack;
    size_t depth;
    size_t cap;
    struct anchor *anchors;
    size_t nanchors;
    struct rg_yaml_node *root;
};

static int add_item(struct rg_yaml_node *parent, struct rg_yaml_node *child)
{
    struct rg_yaml_node **items;

    if ((parent->nitems & (parent->nitems - 1)) == 0) {   /* 0, 1, 2, 4, 8 ... */
        size_t cap = parent->nitems ? parent->nitems * 2 : 4;
        items = realloc(parent->items, cap * sizeof(*items));
        if (!items)
            return RG_ENOMEM;
        parent->items = items;
    }
    parent->items[parent->nitems++] = child;
    return 0;
}

static int remember_anchor(struct builder *b, const yaml_char_t *name,
                           struct rg_yaml_node *node)
{
    struct anchor *a;

    if (!name)
        return 0;
    a = realloc(b->anchors, (b->nanchors + 1) * sizeof(*a));
    if (!a)
        return RG_ENOMEM;
    b->anchors = a;
    a[b->nanchors].name = strdup((const char *)name);
    if (!a[b->nanchors].name)
        return RG_ENOMEM;
    a[b->nanchors++].node = node;
    return 0;
}

/* Attaches @node to the open collection, or makes it the root. */
static int attach(struct builder *b, struct rg_yaml_node *node)
{
    if (b->depth == 0) {
        if (!b->root) {
            b->root = node;
            return 0;
        }
        rg_yaml_free(node);
        return 0;
    }
    return add_item(b->stack[b->depth - 1], node);
}

static struct rg_yaml_node *new_node(enum rg_yaml_kind kind, const yaml_event_t *ev)
{
    struct rg_yaml_node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->kind = kind;
    n->line = (int)ev->start_mark.line + 1;
    n->col = (int)ev->start_mark.column + 1;
    return n;
}

static int push(struct builder *b, struct rg_yaml_node *n)
{
    if (b->depth == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct rg_yaml_node **s = realloc(b->stack, cap * sizeof(*s));
        if (!s)
            return RG_ENOMEM;
        b->stack = s;
        b->cap = cap;
    }
    b->stack[b->depth++] = n;
    return 0;
}

static int handle_event(struct builder *b, const yaml_event_t *ev, char *err, size_t errlen)
{
    struct rg_yaml_node *n;
    int rc;

    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n = new_node(RG_YAML_SCALAR, ev);
        if (!n)
            return RG_ENOMEM;
        n->scalar = malloc(ev->data.scalar.length + 1);
        if (!n->scalar) {
            free(n);
            return RG_ENOMEM;
        }
        memcpy(n->scalar, ev->data.scalar.value, ev->data.scalar.length);
        n->scalar[ev->data.scalar.length] = '\0';
        n->scalar_len = ev->data.scalar.length;
        n->quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                    ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        n->literal = ev->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
                     ev->data.scalar.style == YAML_FOLDED_SCALAR_STYLE;
        if ((rc = remember_anchor(b, ev->data.scalar.anchor, n)) || (rc = attach(b, n))) {
            rg_yaml_free(n);
            return rc;
        }
        return 0;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        n = new_node(ev->type == YAML_SEQUENCE_START_EVENT ? RG_YAML_SEQ : RG_YAML_MAP, ev);
        if (!n)
            return RG_ENOMEM;
        rc = remember_anchor(b, ev->type == YAML_SEQUENCE_START_EVENT
                                    ? ev->data.sequence_start.anchor
                                    : ev->data.mapping_start.anchor, n);
        if (rc || (rc = attach(b, n))) {
            rg_yaml_free(n);
            return rc;
        }
        return push(b, n);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (b->depth)
            b->depth--;
        return 0;
    case YAML_ALIAS_EVENT:
        for (size_t i = b->nanchors; i-- > 0;) {
            if (strcmp(b->anchors[i].name, (const char *)ev->data.alias.anchor) == 0) {
                struct rg_yaml_node *alias = calloc(1, sizeof(*alias));
                if (!alias)
                    return RG_ENOMEM;
                *alias = *b->anchors[i].node;
                alias->is_alias = 1;
                alias->line = (int)ev->start_mark.line + 1;
                alias->col = (int)ev->start_mark.column + 1;
                if ((rc = attach(b, alias))) {
                    free(alias);
                    return rc;
                }
                return 0;
            }
        }
        snprintf(err, errlen, "%zu:%zu: unknown anchor \"%s\"", ev->start_mark.line + 1,
                 ev->start_mark.column + 1, (const char *)ev->data.alias.anchor);
        return RG_EPARSE;
    default:
        return 0;
    }
}

int rg_yaml_parse(const char *text, size_t len, struct rg_yaml_node **out, char *err,
                  size_t errlen)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    struct builder b;
    int rc = 0;
    int done = 0;

    memset(&b, 0, sizeof(b));
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    if (!yaml_parser_initialize(&parser))
        return RG_ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            snprintf(err, errlen, "%zu:%zu: %s%s%s", parser.problem_mark.line + 1,
                     parser.problem_mark.column + 1, parser.problem ? parser.problem : "syntax error",
                     parser.context ? " " : "", parser.context ? parser.context : "");
            rc = RG_EPARSE;
            break;
        }
        /* Only the first document is read; later ones are ignored. */
        done = ev.type == YAML_STREAM_END_EVENT || ev.type == YAML_DOCUMENT_END_EVENT;
        rc = handle_event(&b, &ev, err, errlen);
        yaml_event_delete(&ev);
        if (rc)
            break;
    }
    yaml_parser_delete(&parser);
    for (size_t i = 0; i < b.nanchors; i++)
        free(b.anchors[i].name);
    free(b.anchors);
    free(b.stack);
    if (rc) {
        rg_yaml_free(b.root);
        return rc;
    }
    if (!b.root || (b.root->kind == RG_YAML_SCALAR && rg_yaml_is_null(b.root))) {
        rg_yaml_free(b.root);
        b.root = calloc(1, sizeof(*b.root));
        if (!b.root)
            return RG_ENOMEM;
        b.root->kind = RG_YAML_MAP;
        b.root->line = b.root->col = 1;
    }
    *out = b.root;
    return 0;
}

void rg_yaml_free(struct rg_yaml_node *node)
{
    if (!node)
        return;
    if (node->is_alias) {
        free(node);    /* the anchor owns what this copy points at */
        return;
    }
    for (size_t i = 0; i < node->nitems; i++)
        rg_yaml_free(node->items[i]);
    free(node->items);
    free(node->scalar);
    free(node);
}

const struct rg_yaml_node *rg_yaml_get(const struct rg_yaml_node *map, const char *key)
{
    if (!map || map->kind != RG_YAML_MAP)
        return NULL;
    for (size_t i = 0; i + 1 < map->nitems; i += 2) {
        const struct rg_yaml_node *k = map->items[i];
        if (k->kind == RG_YAML_SCALAR && strcmp(k->scalar, key) == 0)
            return map->items[i + 1];
    }
    return NULL;
}

int rg_yaml_is_null(const struct rg_yaml_node *n)
{
    if (!n || n->kind != RG_YAML_SCALAR || n->quoted)
        return 0;
    return n->scalar_len == 0 || strcmp(n->scalar, "~") == 0 || strcmp(n->scalar, "null") == 0 ||
           strcmp(n->scalar, "Null") == 0 || strcmp(n->scalar, "NULL") == 0;
}
