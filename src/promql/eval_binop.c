/* promql/eval_binop.c - PromQL binary operators: arithmetic, comparison, set operators
 * and vector matching.
 *
 * Follows Prometheus' VectorBinop/VectorscalarBinop: the "one" side of a match is
 * hashed by its matching signature (on: the listed labels; ignoring: every label
 * but the listed ones and __name__), the "many" side is walked in order and looked
 * up. group_right swaps the sides first, so the result labels always come from the
 * "many" side, with group_x(include) labels copied from the "one" side.
 * Arithmetic drops __name__, comparisons keep it unless bool is given. % is fmod
 * (Go's math.Mod), ^ is pow, atan2 is atan2: IEEE results for division by zero.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "promql/eval.h"
#include "util/err.h"

static int is_cmp(enum rg_promql_binop op)
{
    return op >= RG_PROMQL_EQL && op <= RG_PROMQL_LTE;
}

static int drops_name(enum rg_promql_binop op)
{
    return op <= RG_PROMQL_ATAN2;
}

/* Returns whether the element survives; *out is the value (the left one for a
 * comparison, as Prometheus' vectorElemBinop). */
static int elem_op(enum rg_promql_binop op, double l, double r, double *out)
{
    switch (op) {
    case RG_PROMQL_ADD: *out = l + r; return 1;
    case RG_PROMQL_SUB: *out = l - r; return 1;
    case RG_PROMQL_MUL: *out = l * r; return 1;
    case RG_PROMQL_DIV: *out = l / r; return 1;
    case RG_PROMQL_MOD: *out = fmod(l, r); return 1;
    case RG_PROMQL_POW: *out = pow(l, r); return 1;
    case RG_PROMQL_ATAN2: *out = atan2(l, r); return 1;
    case RG_PROMQL_EQL: *out = l; return l == r;
    case RG_PROMQL_NEQ: *out = l; return l != r;
    case RG_PROMQL_GTR: *out = l; return l > r;
    case RG_PROMQL_LSS: *out = l; return l < r;
    case RG_PROMQL_GTE: *out = l; return l >= r;
    case RG_PROMQL_LTE: *out = l; return l <= r;
    default: *out = l; return 0;
    }
}

static int eval_vector_scalar(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                              struct rg__vec *vec, double scalar, int swap, struct rg__vec *out)
{
    enum rg_promql_binop op = n->u.bin.op;
    int rb = n->u.bin.return_bool, err;
    size_t i;

    if ((err = rg__vec_reserve(c, out, vec->n)))
        return err;
    for (i = 0; i < vec->n; i++) {
        double l = vec->e[i].v, r = scalar, v;
        int keep;

        if (swap) {
            l = scalar;
            r = vec->e[i].v;
        }
        keep = elem_op(op, l, r, &v);
        /* A comparison keeps the vector's value even when the scalar is on the left. */
        if (is_cmp(op) && swap)
            v = r;
        if (rb) {
            v = keep ? 1.0 : 0.0;
            keep = 1;
        }
        if (keep && (err = rg__vec_push(c, out, vec->e[i].ls, v, t)))
            return err;
    }
    out->uniq = vec->uniq;
    out->samename = vec->samename;
    if (drops_name(op) || rb) {
        if ((err = rg__vec_drop_names(c, out)))
            return err;
    }
    return rg__vec_check_dups(c, out);
}

static uint64_t sig_of(struct rg__ctx *c, const struct rg_promql_matching *m, struct rg__lset ls)
{
    if (m && m->on)
        return rg__lset_hash_on(ls, m->labels, m->nlabels, &c->hb);
    return rg__lset_hash_without(ls, m ? m->labels : NULL, m ? m->nlabels : 0, &c->hb);
}

static int build_sigs(struct rg__ctx *c, const struct rg_promql_matching *m,
                      const struct rg__vec *v, struct rg__hmap *map)
{
    size_t i;
    uint32_t got;
    int found;

    if (rg__hmap_reset(map, v->n))
        return rg__fail(c, RG_ENOMEM, "out of memory");
    for (i = 0; i < v->n; i++)
        if (rg__hmap_put(map, sig_of(c, m, v->e[i].ls), (uint32_t)i, &got, &found))
            return rg__fail(c, RG_ENOMEM, "out of memory");
    return 0;
}

static int eval_setop(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                      struct rg__vec *l, struct rg__vec *r, struct rg__vec *out)
{
    const struct rg_promql_matching *m = n->u.bin.matching;
    struct rg__hmap map = { 0 };
    size_t i;
    int err = 0;

    (void)t;
    switch (n->u.bin.op) {
    case RG_PROMQL_AND:
    case RG_PROMQL_UNLESS: {
        int want = n->u.bin.op == RG_PROMQL_AND;

        if ((err = build_sigs(c, m, r, &map)))
            break;
        for (i = 0; i < l->n && !err; i++) {
            int hit = rg__hmap_get(&map, sig_of(c, m, l->e[i].ls)) != UINT32_MAX;

            if (hit == want)
                err = rg__vec_push(c, out, l->e[i].ls, l->e[i].v, l->e[i].t);
        }
        out->uniq = l->uniq;
        out->samename = l->samename;
        break;
    }
    default: /* OR */
        if ((err = build_sigs(c, m, l, &map)))
            break;
        for (i = 0; i < l->n && !err; i++)
            err = rg__vec_push(c, out, l->e[i].ls, l->e[i].v, l->e[i].t);
        for (i = 0; i < r->n && !err; i++)
            if (rg__hmap_get(&map, sig_of(c, m, r->e[i].ls)) == UINT32_MAX)
                err = rg__vec_push(c, out, r->e[i].ls, r->e[i].v, r->e[i].t);
        out->uniq = l->uniq && r->uniq;
        out->samename = 0;
        break;
    }
    rg__hmap_free(&map);
    return err;
}

/* The labels a match group is shown with in errors (Prometheus' MatchLabels). */
static int match_labels(struct rg__ctx *c, const struct rg_promql_matching *m,
                        struct rg__lset ls, struct rg__lset *out)
{
    if (m && m->on)
        return rg__lset_keep(&c->arena, ls, m->labels, m->nlabels, out);
    return rg__lset_without(&c->arena, ls, m ? m->labels : NULL, m ? m->nlabels : 0, 1, out);
}

static int dup_error(struct rg__ctx *c, const struct rg_promql_matching *m, struct rg__lset a,
                     struct rg__lset b)
{
    struct rg__lset ml;
    struct rg_buf *t = &c->tmp;

    if (match_labels(c, m, a, &ml))
        return rg__fail(c, RG_ENOMEM, "out of memory");
    rg_buf_reset(t);
    (void)rg__lset_format(ml, t);
    (void)rg_buf_printf(t, " on the %s hand-side of the operation: [",
                        m && m->card == RG_PROMQL_ONE_TO_MANY ? "left" : "right");
    (void)rg__lset_format(a, t);
    (void)rg_buf_puts(t, ", ");
    (void)rg__lset_format(b, t);
    return rg__fail(c, RG_EEXEC, "found duplicate series for the match group %s];many-to-many "
                    "matching not allowed: matching labels must be unique on one side",
                    t->data ? t->data : "");
}

static int result_labels(struct rg__ctx *c, const struct rg_promql_node *n, struct rg__lset ls,
                         struct rg__lset rs, struct rg__lset *out)
{
    const struct rg_promql_matching *m = n->u.bin.matching;
    size_t i;
    int err = 0;

    *out = ls;
    if (drops_name(n->u.bin.op) || n->u.bin.return_bool)
        err = rg__lset_drop_name(&c->arena, *out, out);
    if (!err && m && m->card == RG_PROMQL_ONE_TO_ONE) {
        if (m->on)
            err = rg__lset_keep(&c->arena, *out, m->labels, m->nlabels, out);
        else if (m->nlabels)
            err = rg__lset_without(&c->arena, *out, m->labels, m->nlabels, 0, out);
    }
    for (i = 0; !err && m && i < m->ninclude; i++) {
        const char *v = rg__lset_get(rs, m->include[i]);

        err = rg__lset_set(&c->arena, *out, m->include[i], v ? v : "", v ? strlen(v) : 0, out);
    }
    return err ? rg__fail(c, RG_ENOMEM, "out of memory") : 0;
}

static int eval_matching(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                         struct rg__vec *lhs, struct rg__vec *rhs, struct rg__vec *out)
{
    const struct rg_promql_matching *m = n->u.bin.matching;
    enum rg_promql_card card = m ? m->card : RG_PROMQL_ONE_TO_ONE;
    struct rg__hmap right = { 0 }, matched = { 0 };
    struct rg__vec *l = lhs, *r = rhs;
    size_t i;
    int err = 0;

    out->samename = 0;
    if (lhs->n == 0 || rhs->n == 0)
        return 0;
    if (card == RG_PROMQL_ONE_TO_MANY) {
        l = rhs;
        r = lhs;
    }
    if (rg__hmap_reset(&right, r->n) || rg__hmap_reset(&matched, l->n)) {
        err = rg__fail(c, RG_ENOMEM, "out of memory");
        goto done;
    }
    for (i = 0; i < r->n; i++) {
        uint32_t got;
        int found;

        if (rg__hmap_put(&right, sig_of(c, m, r->e[i].ls), (uint32_t)i, &got, &found)) {
            err = rg__fail(c, RG_ENOMEM, "out of memory");
            goto done;
        }
        if (found) {
            err = dup_error(c, m, r->e[i].ls, r->e[got].ls);
            goto done;
        }
    }
    for (i = 0; i < l->n; i++) {
        uint64_t sig = sig_of(c, m, l->e[i].ls), key;
        uint32_t ri = rg__hmap_get(&right, sig), got;
        double fl, fr, v;
        struct rg__lset ls;
        int keep, found;

        if (ri == UINT32_MAX)
            continue;
        fl = l->e[i].v;
        fr = r->e[ri].v;
        if (card == RG_PROMQL_ONE_TO_MANY) {
            fl = r->e[ri].v;
            fr = l->e[i].v;
        }
        keep = elem_op(n->u.bin.op, fl, fr, &v);
        if (n->u.bin.return_bool)
            v = keep ? 1.0 : 0.0;
        /* The match counts even when a comparison then filters the element out:
         * Prometheus checks the cardinality before it drops the sample. */
        if ((err = result_labels(c, n, l->e[i].ls, r->e[ri].ls, &ls)))
            goto done;
        if (card == RG_PROMQL_ONE_TO_ONE) {
            key = sig;
        } else {
            /* Many-to-one: the result label sets of one match group must differ. */
            key = sig ^ (rg__lset_hash(ls, &c->hb) * UINT64_C(0x9E3779B97F4A7C15));
        }
        if (rg__hmap_put(&matched, key, (uint32_t)i, &got, &found)) {
            err = rg__fail(c, RG_ENOMEM, "out of memory");
            goto done;
        }
        if (found) {
            err = card == RG_PROMQL_ONE_TO_ONE
                      ? rg__fail(c, RG_EEXEC, "multiple matches for labels: many-to-one "
                                 "matching must be explicit (group_left/group_right)")
                      : rg__fail(c, RG_EEXEC, "multiple matches for labels: grouping labels "
                                 "must ensure unique matches");
            goto done;
        }
        if (!keep && !n->u.bin.return_bool)
            continue;
        if ((err = rg__vec_push(c, out, ls, v, t)))
            goto done;
    }
    out->uniq = 0;
    err = rg__vec_check_dups(c, out);
done:
    rg__hmap_free(&right);
    rg__hmap_free(&matched);
    return err;
}

int rg__eval_binary(struct rg__ctx *c, const struct rg_promql_node *n, int64_t t,
                    struct rg__val *out)
{
    struct rg__val l = { 0 }, r = { 0 };
    enum rg_promql_binop op = n->u.bin.op;
    int err;

    if ((err = rg__eval(c, n->u.bin.lhs, t, &l)))
        return err;
    if ((err = rg__eval(c, n->u.bin.rhs, t, &r)))
        goto done;
    if (l.type == RG_PROMQL_VT_SCALAR && r.type == RG_PROMQL_VT_SCALAR) {
        double v;
        int keep = elem_op(op, l.scalar, r.scalar, &v);

        out->type = RG_PROMQL_VT_SCALAR;
        out->scalar = is_cmp(op) ? (keep ? 1.0 : 0.0) : v;
    } else if (l.type == RG_PROMQL_VT_VECTOR && r.type == RG_PROMQL_VT_SCALAR) {
        out->type = RG_PROMQL_VT_VECTOR;
        err = eval_vector_scalar(c, n, t, &l.vec, r.scalar, 0, &out->vec);
    } else if (l.type == RG_PROMQL_VT_SCALAR && r.type == RG_PROMQL_VT_VECTOR) {
        out->type = RG_PROMQL_VT_VECTOR;
        err = eval_vector_scalar(c, n, t, &r.vec, l.scalar, 1, &out->vec);
    } else if (l.type == RG_PROMQL_VT_VECTOR && r.type == RG_PROMQL_VT_VECTOR) {
        out->type = RG_PROMQL_VT_VECTOR;
        if (op == RG_PROMQL_AND || op == RG_PROMQL_OR || op == RG_PROMQL_UNLESS)
            err = eval_setop(c, n, t, &l.vec, &r.vec, &out->vec);
        else
            err = eval_matching(c, n, t, &l.vec, &r.vec, &out->vec);
    } else {
        err = rg__fail(c, RG_EEXEC, "binary expression must contain only scalar and instant "
                       "vector types");
    }
done:
    rg__val_free(c, &l);
    rg__val_free(c, &r);
    return err;
}
