/* rules/alert.c - alert state transitions, send bookkeeping and their JSON form.
 *
 * The active alerts of a rule live in an array sorted by label set. An evaluation
 * sorts its candidates the same way and walks both lists in one merge pass, so
 * that "present in this result" and "absent from it" are decided without hashing
 * and the result stays sorted; the per-alert rules inside the merge are exactly
 * those of Prometheus' AlertingRule.Eval (see alert.h).
 */
#include "rules/alert.h"
#include "promql/labels.h"
#include "rules/rulefile.h"
#include "rules/template.h"
#include "util/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

/* qsort(3) that accepts an empty array with a NULL base (qsort itself may not). */
static void sort_items(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

const char *rg_alert_state_name(enum rg_alert_state s)
{
    switch (s) {
    case RG_ALERT_PENDING: return "pending";
    case RG_ALERT_FIRING: return "firing";
    default: return "inactive";
    }
}

int64_t rg_alert_starts_at(const struct rg_alert *a)
{
    return a->fired_at;
}

int64_t rg_alert_ends_at(const struct rg_alert *a)
{
    return a->resolved_at ? a->resolved_at : a->valid_until;
}

static void labels_free(struct rg_label *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)l[i].name);
        free((char *)l[i].value);
    }
    free(l);
}

static void alert_cleanup(struct rg_alert *a)
{
    labels_free(a->labels, a->nlabels);
    labels_free(a->annotations, a->nannotations);
}

void rg_alert_set_cleanup(struct rg_alert_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        alert_cleanup(&s->alerts[i]);
    free(s->alerts);
    memset(s, 0, sizeof(*s));
}

static int label_name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct rg_label *)a)->name, ((const struct rg_label *)b)->name);
}

/* Label sets compare pair by pair, then by length (Prometheus labels.Compare). */
static int lset_cmp(const struct rg_label *a, size_t na, const struct rg_label *b, size_t nb)
{
    size_t n = na < nb ? na : nb;
    for (size_t i = 0; i < n; i++) {
        int c = strcmp(a[i].name, b[i].name);
        if (c)
            return c;
        if ((c = strcmp(a[i].value, b[i].value)))
            return c;
    }
    return na < nb ? -1 : na > nb;
}

static int input_cmp(const void *a, const void *b)
{
    const struct rg_alert_input *x = a, *y = b;
    return lset_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

static int labels_dup(const struct rg_label *l, size_t n, struct rg_label **out)
{
    struct rg_label *d;

    *out = NULL;
    if (n == 0)
        return 0;
    if (!(d = calloc(n, sizeof(*d))))
        return RG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        d[i].name = strdup(l[i].name);
        d[i].value = strdup(l[i].value);
        if (!d[i].name || !d[i].value) {
            labels_free(d, i + 1);
            return RG_ENOMEM;
        }
    }
    *out = d;
    return 0;
}

/* A new pending alert from candidate @in. */
static int alert_new(struct rg_alert *a, const struct rg_alert_input *in, int64_t ts)
{
    memset(a, 0, sizeof(*a));
    if (labels_dup(in->labels, in->nlabels, &a->labels))
        return RG_ENOMEM;
    a->nlabels = in->nlabels;
    if (labels_dup(in->annotations, in->nannotations, &a->annotations)) {
        alert_cleanup(a);
        return RG_ENOMEM;
    }
    a->nannotations = in->nannotations;
    sort_items(a->annotations, a->nannotations, sizeof(*a->annotations), label_name_cmp);
    a->state = RG_ALERT_PENDING;
    a->active_at = ts;
    a->value = in->value;
    return 0;
}

int rg_alert_set_eval(struct rg_alert_set *s, const struct rg_alert_params *p, int64_t ts,
                      struct rg_alert_input *in, size_t n, struct rg_buf *err)
{
    struct rg_alert *out = NULL;
    struct rg_label *ann = NULL;
    size_t nout = 0, i = 0, j = 0, active = 0;
    struct rg_alert a;

    for (size_t k = 0; k < n; k++)
        sort_items(in[k].labels, in[k].nlabels, sizeof(*in[k].labels), label_name_cmp);
    sort_items(in, n, sizeof(*in), input_cmp);
    for (size_t k = 1; k < n; k++)
        if (input_cmp(&in[k - 1], &in[k]) == 0) {
            rg_buf_puts(err, "vector contains metrics with the same labelset after applying "
                             "alert labels");
            return RG_EEXEC;
        }
    /* The merged list can hold at most every old alert and every candidate, so it is
     * allocated once and appending never fails. */
    if (s->n + n && !(out = malloc((s->n + n) * sizeof(*out))))
        return RG_ENOMEM;
    while (i < s->n || j < n) {
        int c = i == s->n ? 1 : j == n ? -1
                : lset_cmp(s->alerts[i].labels, s->alerts[i].nlabels, in[j].labels,
                           in[j].nlabels);

        if (c == 0) {
            a = s->alerts[i++];
            if (a.state != RG_ALERT_INACTIVE) {
                /* Still active: only the value and annotations change. */
                if (labels_dup(in[j].annotations, in[j].nannotations, &ann))
                    goto oom;
                sort_items(ann, in[j].nannotations, sizeof(*ann), label_name_cmp);
                labels_free(a.annotations, a.nannotations);
                a.annotations = ann;
                a.nannotations = in[j].nannotations;
                ann = NULL;
                a.value = in[j].value;
            } else {
                /* A resolved alert that comes back is a new pending alert. */
                struct rg_alert fresh;
                if (alert_new(&fresh, &in[j], ts))
                    goto oom;
                alert_cleanup(&a);
                a = fresh;
            }
            j++;
            a.keep_firing_since = 0;
        } else if (c > 0) {
            if (alert_new(&a, &in[j], ts))
                goto oom_none;   /* nothing was taken from the old list */
            j++;
        } else {
            int keep_firing = 0;
            a = s->alerts[i++];
            if (a.state == RG_ALERT_FIRING && p->keep_firing_for_ms > 0) {
                if (a.keep_firing_since == 0)
                    a.keep_firing_since = ts;
                if (ts - a.keep_firing_since < p->keep_firing_for_ms)
                    keep_firing = 1;
            }
            if (a.state == RG_ALERT_PENDING ||
                (a.resolved_at && ts - a.resolved_at > RG_ALERT_RESOLVED_RETENTION_MS)) {
                alert_cleanup(&a);
                continue;
            }
            if (a.state != RG_ALERT_INACTIVE && !keep_firing) {
                a.state = RG_ALERT_INACTIVE;
                a.resolved_at = ts;
            }
            if (!keep_firing) {
                out[nout++] = a;
                continue;
            }
        }
        if (a.state == RG_ALERT_PENDING && ts - a.active_at >= p->for_ms) {
            a.state = RG_ALERT_FIRING;
            a.fired_at = ts;
        }
        if (a.state != RG_ALERT_INACTIVE)
            active++;
        out[nout++] = a;
    }
    free(s->alerts);
    s->alerts = out;
    s->n = nout;
    s->cap = nout;
    if (p->limit > 0 && active > (size_t)p->limit) {
        rg_alert_set_cleanup(s);
        rg_buf_printf(err, "exceeded limit of %lld with %zu alerts", (long long)p->limit, active);
        return RG_ELIMIT;
    }
    return 0;

oom:
    /* The alert taken from the old list goes back unchanged. Everything already
     * merged sorts before the alerts not yet visited, so appending those keeps the
     * list sorted and nothing leaks; the evaluation as a whole fails. */
    out[nout++] = a;
oom_none:
    while (i < s->n)
        out[nout++] = s->alerts[i++];
    free(s->alerts);
    s->alerts = out;
    s->n = nout;
    s->cap = nout;
    return RG_ENOMEM;
}

size_t rg_alert_set_count(const struct rg_alert_set *s, enum rg_alert_state state)
{
    size_t c = 0;
    for (size_t i = 0; i < s->n; i++)
        c += s->alerts[i].state == state;
    return c;
}

int rg_alert_needs_sending(const struct rg_alert *a, int64_t ts, int64_t resend_delay_ms)
{
    if (a->state == RG_ALERT_PENDING)
        return 0;
    /* Resolved since the last send: send the resolution at once. */
    if (a->resolved_at > a->last_sent_at)
        return 1;
    return a->last_sent_at + resend_delay_ms < ts;
}

size_t rg_alert_set_send(struct rg_alert_set *s, int64_t ts, int64_t resend_delay_ms,
                         int64_t interval_ms,
                         void (*cb)(const struct rg_alert *a, void *ud), void *ud)
{
    /* "Allow for two Eval or Alertmanager send failures." */
    int64_t delta = interval_ms > resend_delay_ms ? interval_ms : resend_delay_ms;
    size_t sent = 0;

    for (size_t i = 0; i < s->n; i++) {
        struct rg_alert *a = &s->alerts[i];
        if (!rg_alert_needs_sending(a, ts, resend_delay_ms))
            continue;
        a->last_sent_at = ts;
        a->valid_until = ts + 4 * delta;
        sent++;
        if (cb)
            cb(a, ud);
    }
    return sent;
}

/* ---- Candidates ----------------------------------------------------------- */

void rg_alert_input_cleanup(struct rg_alert_input *in)
{
    if (!in)
        return;
    labels_free(in->labels, in->nlabels);
    labels_free(in->annotations, in->nannotations);
    memset(in, 0, sizeof(*in));
}

/* Expands one label or annotation template into a new string. */
static char *expand(const struct rg_rule_kv *kv, const char *tname,
                    const struct rg_template_data *d)
{
    struct rg_buf b = { 0 };
    int rc;

    if (kv->tmpl)
        rc = rg_template_exec(kv->tmpl, d, &b);
    else if (strstr(kv->value, "{{"))
        rc = rg_template_expand(tname, kv->value, d, &b);
    else
        rc = rg_buf_puts(&b, kv->value);
    if (rc == RG_ENOMEM) {
        rg_buf_cleanup(&b);
        return NULL;
    }
    if (b.len == 0) {
        rg_buf_cleanup(&b);
        return strdup("");
    }
    return rg_buf_steal(&b, NULL);
}

/* Sets @name to @value (taking ownership of @value) in the unsorted set @l; an
 * empty value removes the label, as labels.Builder.Set does. */
static int set_label(struct rg_label *l, size_t *n, const char *name, char *value)
{
    size_t k;
    for (k = 0; k < *n; k++)
        if (strcmp(l[k].name, name) == 0)
            break;
    if (k < *n) {
        free((char *)l[k].value);
        if (*value == '\0') {
            free((char *)l[k].name);
            free(value);
            l[k] = l[--*n];
            return 0;
        }
        l[k].value = value;
        return 0;
    }
    if (*value == '\0') {
        free(value);
        return 0;
    }
    if (!(l[*n].name = strdup(name))) {
        free(value);
        return RG_ENOMEM;
    }
    l[(*n)++].value = value;
    return 0;
}

int rg_alert_input_build(const struct rg_rule *rule, const struct rg_rule_kv *group_labels,
                         size_t ngroup_labels, const struct rg_alert_env *env,
                         const struct rg_label *labels, size_t nlabels, double value,
                         struct rg_alert_input *out)
{
    struct rg_template_data d = {
        .labels = labels, .nlabels = nlabels,
        .external_labels = env ? env->external_labels : NULL,
        .nexternal = env ? env->nexternal : 0,
        .external_url = env ? env->external_url : NULL,
        .value = value,
        .query = env ? env->query : NULL,
        .query_ud = env ? env->query_ud : NULL,
    };
    struct rg_buf tname = { 0 };
    size_t cap = nlabels + ngroup_labels + rule->nlabels + 1;
    int rc = RG_ENOMEM;

    memset(out, 0, sizeof(*out));
    out->value = value;
    if (rg_buf_printf(&tname, "__alert_%s", rule->name))
        return RG_ENOMEM;
    if (!(out->labels = calloc(cap, sizeof(*out->labels))))
        goto fail;
    for (size_t i = 0; i < nlabels; i++) {
        char *v;
        if (strcmp(labels[i].name, "__name__") == 0)
            continue;
        if (!(v = strdup(labels[i].value)) || set_label(out->labels, &out->nlabels,
                                                       labels[i].name, v))
            goto fail;
    }
    /* Group labels first, so that the rule's own labels override them. */
    for (size_t i = 0; i < ngroup_labels; i++) {
        char *v = expand(&group_labels[i], tname.data, &d);
        if (!v || set_label(out->labels, &out->nlabels, group_labels[i].name, v))
            goto fail;
    }
    for (size_t i = 0; i < rule->nlabels; i++) {
        char *v = expand(&rule->labels[i], tname.data, &d);
        if (!v || set_label(out->labels, &out->nlabels, rule->labels[i].name, v))
            goto fail;
    }
    {
        char *v = strdup(rule->name);
        if (!v || set_label(out->labels, &out->nlabels, "alertname", v))
            goto fail;
    }
    if (rule->nannotations &&
        !(out->annotations = calloc(rule->nannotations, sizeof(*out->annotations))))
        goto fail;
    for (size_t i = 0; i < rule->nannotations; i++) {
        char *v = expand(&rule->annotations[i], tname.data, &d);
        if (!v)
            goto fail;
        out->annotations[i].value = v;
        out->nannotations++;
        if (!(out->annotations[i].name = strdup(rule->annotations[i].name)))
            goto fail;
    }
    rg_buf_cleanup(&tname);
    return 0;

fail:
    rg_buf_cleanup(&tname);
    rg_alert_input_cleanup(out);
    return rc;
}

/* ---- Persistence ---------------------------------------------------------- */

int rg_alert_set_to_json(const struct rg_alert_set *s, struct rg_buf *out)
{
    rg_buf_putc(out, '[');
    for (size_t i = 0; i < s->n; i++) {
        const struct rg_alert *a = &s->alerts[i];
        char v[40];
        if (i)
            rg_buf_putc(out, ',');
        rg_buf_puts(out, "{\"labels\":");
        rg_promql_labels_json(a->labels, a->nlabels, out);
        rg_buf_puts(out, ",\"annotations\":");
        rg_promql_labels_json(a->annotations, a->nannotations, out);
        if (isnan(a->value))
            snprintf(v, sizeof(v), "NaN");
        else if (isinf(a->value))
            snprintf(v, sizeof(v), "%sInf", a->value > 0 ? "+" : "-");
        else
            snprintf(v, sizeof(v), "%.17g", a->value);
        rg_buf_printf(out, ",\"state\":\"%s\",\"activeAt\":%lld,\"firedAt\":%lld,"
                      "\"resolvedAt\":%lld,\"keepFiringSince\":%lld,\"lastSentAt\":%lld,"
                      "\"validUntil\":%lld,\"value\":\"%s\"}",
                      rg_alert_state_name(a->state), (long long)a->active_at,
                      (long long)a->fired_at, (long long)a->resolved_at,
                      (long long)a->keep_firing_since, (long long)a->last_sent_at,
                      (long long)a->valid_until, v);
    }
    rg_buf_putc(out, ']');
    return out->data ? 0 : RG_ENOMEM;
}

static int json_labels(const struct yajl_val_s *obj, struct rg_label **out, size_t *n)
{
    yajl_val o = (yajl_val)obj;
    struct rg_label *l;

    *out = NULL;
    *n = 0;
    if (!YAJL_IS_OBJECT(o))
        return RG_EBADMSG;
    if (o->u.object.len == 0)
        return 0;
    if (!(l = calloc(o->u.object.len, sizeof(*l))))
        return RG_ENOMEM;
    for (size_t i = 0; i < o->u.object.len; i++) {
        yajl_val v = o->u.object.values[i];
        if (!YAJL_IS_STRING(v)) {
            labels_free(l, *n);
            return RG_EBADMSG;
        }
        l[i].name = strdup(o->u.object.keys[i]);
        l[i].value = strdup(v->u.string);
        (*n)++;
        if (!l[i].name || !l[i].value) {
            labels_free(l, *n);
            return RG_ENOMEM;
        }
    }
    sort_items(l, *n, sizeof(*l), label_name_cmp);
    for (size_t i = 1; i < *n; i++)
        if (strcmp(l[i - 1].name, l[i].name) == 0) {
            labels_free(l, *n);
            return RG_EBADMSG;
        }
    *out = l;
    return 0;
}

static int json_time(yajl_val obj, const char *key, int64_t *out)
{
    const char *path[] = { key, NULL };
    yajl_val v = yajl_tree_get(obj, path, yajl_t_number);
    if (!v || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0)
        return RG_EBADMSG;
    *out = YAJL_GET_INTEGER(v);
    return 0;
}

static int alert_from_json(yajl_val o, struct rg_alert *a)
{
    const char *p_labels[] = { "labels", NULL }, *p_ann[] = { "annotations", NULL };
    const char *p_state[] = { "state", NULL }, *p_value[] = { "value", NULL };
    yajl_val st, val;
    const char *s;
    char *end;
    int rc;

    memset(a, 0, sizeof(*a));
    if (!YAJL_IS_OBJECT(o))
        return RG_EBADMSG;
    if ((rc = json_labels(yajl_tree_get(o, p_labels, yajl_t_object), &a->labels, &a->nlabels)))
        return rc;
    if ((rc = json_labels(yajl_tree_get(o, p_ann, yajl_t_object), &a->annotations,
                          &a->nannotations)))
        goto fail;
    rc = RG_EBADMSG;
    if (a->nlabels == 0)
        goto fail;
    st = yajl_tree_get(o, p_state, yajl_t_string);
    s = st ? YAJL_GET_STRING(st) : "";
    if (strcmp(s, "pending") == 0)
        a->state = RG_ALERT_PENDING;
    else if (strcmp(s, "firing") == 0)
        a->state = RG_ALERT_FIRING;
    else if (strcmp(s, "inactive") == 0)
        a->state = RG_ALERT_INACTIVE;
    else
        goto fail;
    if (json_time(o, "activeAt", &a->active_at) || json_time(o, "firedAt", &a->fired_at) ||
        json_time(o, "resolvedAt", &a->resolved_at) ||
        json_time(o, "keepFiringSince", &a->keep_firing_since) ||
        json_time(o, "lastSentAt", &a->last_sent_at) ||
        json_time(o, "validUntil", &a->valid_until))
        goto fail;
    val = yajl_tree_get(o, p_value, yajl_t_string);
    if (!val)
        goto fail;
    s = YAJL_GET_STRING(val);
    if (strcmp(s, "NaN") == 0)
        a->value = NAN;
    else {
        a->value = strtod(s, &end);
        if (end == s || *end)
            goto fail;
    }
    return 0;

fail:
    alert_cleanup(a);
    return rc;
}

static int alert_cmp(const void *a, const void *b)
{
    const struct rg_alert *x = a, *y = b;
    return lset_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

int rg_alert_set_from_json(struct rg_alert_set *s, const struct yajl_val_s *array,
                           struct rg_buf *err)
{
    yajl_val arr = (yajl_val)array;
    size_t n;

    rg_alert_set_cleanup(s);
    if (!YAJL_IS_ARRAY(arr)) {
        rg_buf_puts(err, "alerts: expected an array");
        return 0;
    }
    n = arr->u.array.len;
    if (n && !(s->alerts = calloc(n, sizeof(*s->alerts))))
        return RG_ENOMEM;
    s->cap = n;
    for (size_t i = 0; i < n; i++) {
        int rc = alert_from_json(arr->u.array.values[i], &s->alerts[s->n]);
        if (rc == RG_ENOMEM)
            return rc;
        if (rc) {
            rg_buf_printf(err, "%salert %zu: malformed", err->len ? "; " : "", i);
            continue;
        }
        s->n++;
    }
    sort_items(s->alerts, s->n, sizeof(*s->alerts), alert_cmp);
    /* Two saved alerts with one label set cannot both be right: keep the first. */
    for (size_t i = 1; i < s->n;) {
        if (alert_cmp(&s->alerts[i - 1], &s->alerts[i]) == 0) {
            alert_cleanup(&s->alerts[i]);
            memmove(&s->alerts[i], &s->alerts[i + 1], (s->n - i - 1) * sizeof(*s->alerts));
            s->n--;
            rg_buf_printf(err, "%sduplicate alert dropped", err->len ? "; " : "");
            continue;
        }
        i++;
    }
    return 0;
}
