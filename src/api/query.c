/* api/query.c - the Prometheus HTTP query API over the in-memory store.
 *
 *   GET|POST /api/v1/query              query, time, timeout
 *   GET|POST /api/v1/query_range        query, start, end, step, timeout
 *   GET|POST /api/v1/series             match[], start, end
 *   GET|POST /api/v1/labels             match[], start, end
 *   GET      /api/v1/label/<name>/values  match[], start, end
 *   GET      /api/v1/metadata           metric, limit, limit_per_metric
 *   GET      /api/v1/status/buildinfo
 *
 * Same JSON envelopes, parameter parsing and status codes as Prometheus' web/api/v1:
 * {"status":"success","data":...} or {"status":"error","errorType":"bad_data",
 * "error":"..."} with 400 for bad parameters, 422 for execution errors, 503 for
 * timeouts. POST parameters come from a form-encoded body and are merged with the
 * query string.
 */
#include "api/api.h"
#include "promql/ast.h"
#include "promql/engine.h"
#include "promql/kernels.h"
#include "util/err.h"
#include "util/json.h"
#include "util/time.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Prometheus' minTime/maxTime for absent start/end: far enough to cover everything. */
#define MIN_TIME_MS (INT64_MIN / 4)
#define MAX_TIME_MS (INT64_MAX / 4)

static int is_form(const struct rg_http_request *req)
{
    const struct rg_slice *ct = rg_http_request_header(req, "Content-Type");
    return strcmp(req->method, "POST") == 0 && ct && ct->len >= 33 &&
           strncasecmp(ct->ptr, "application/x-www-form-urlencoded", 33) == 0;
}

/* The @index-th value of parameter @name from the query string, then the form body.
 * Returns 0, RG_ENOENT, RG_EBADMSG or RG_ENOMEM. */
static int param(const struct rg_http_request *req, const char *name, size_t index,
                 struct rg_buf *out)
{
    size_t in_query = 0;
    struct rg_buf tmp = { 0 };
    int rc;

    rc = rg_http_query_get(req->query, name, index, out);
    if (rc != RG_ENOENT || !is_form(req))
        return rc;
    /* Count the occurrences in the query string so that indexes continue in the body. */
    while (rg_http_query_get(req->query, name, in_query, &tmp) == 0)
        in_query++;
    rg_buf_cleanup(&tmp);
    return rg_http_query_get((struct rg_slice){ req->body.data ? req->body.data : "", req->body.len },
                             name, index - in_query, out);
}

/* Parses a time as Prometheus does: Unix seconds with a fraction (rounded to ms), or
 * RFC 3339. Returns 0 or RG_EINVAL. */
int rg__api_parse_time(const char *s, int64_t *out_ms)
{
    char *end;
    double f;
    int y, mo, d, h, mi, sec, n = 0;
    struct tm tm;
    int64_t ms = 0;
    const char *p;

    if (*s == '\0')
        return RG_EINVAL;
    errno = 0;
    f = strtod(s, &end);
    if (*end == '\0' && errno == 0 && isfinite(f)) {
        double ip;
        double frac = modf(f, &ip);
        if (fabs(ip) > 9.2e15)
            return RG_EINVAL;
        *out_ms = (int64_t)ip * 1000 + (int64_t)llround(frac * 1000);
        return 0;
    }
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        return RG_EINVAL;
    p = s + 19;
    if (*p == '.') {
        int digits = 0;
        p++;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0)
            return RG_EINVAL;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return RG_EINVAL;
    int64_t t = (int64_t)timegm(&tm);
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2 || strlen(p) != 6)
            return RG_EINVAL;
        t -= (*p == '+' ? 1 : -1) * (int64_t)(oh * 3600 + om * 60);
        p += 6;
    } else {
        return RG_EINVAL;
    }
    if (*p)
        return RG_EINVAL;
    *out_ms = t * 1000 + ms;
    return 0;
}

/* Parses a duration as Prometheus' API does: float seconds or a PromQL duration. */
int rg__api_parse_duration(const char *s, int64_t *out_ms)
{
    char *end;
    double f;

    if (*s == '\0')
        return RG_EINVAL;
    errno = 0;
    f = strtod(s, &end);
    if (*end == '\0' && errno == 0) {
        if (!isfinite(f) || fabs(f) > 9.2e15)
            return RG_EINVAL;
        *out_ms = (int64_t)llround(f * 1000);
        return 0;
    }
    return rg_promql_parse_duration(s, strlen(s), out_ms);
}

/* Reads time parameter @name; absent -> @def. Fills the error response on failure. */
static int time_param(const struct rg_http_request *req, struct rg_http_response *res,
                      const char *name, int64_t def, int required, int64_t *out)
{
    struct rg_buf v = { 0 };
    int rc = param(req, name, 0, &v);

    if (rc == RG_ENOENT && !required) {
        *out = def;
        return 0;
    }
    if (rc == 0 && rg__api_parse_time(v.data, out) == 0) {
        rg_buf_cleanup(&v);
        return 0;
    }
    rg__api_error(res, 400, "bad_data",
                  "invalid parameter \"%s\": cannot parse \"%s\" to a valid timestamp", name,
                  rc == 0 ? v.data : "");
    rg_buf_cleanup(&v);
    return RG_EINVAL;
}

static void query_opts(struct rg_api *api, const struct rg_http_request *req,
                       struct rg_promql_opts *o)
{
    struct rg_buf v = { 0 };
    int64_t t;

    rg_promql_opts_default(o);
    o->lookback_ms = api->cfg->query.lookback_delta_ms;
    o->max_samples = api->cfg->query.max_samples;
    o->timeout_ms = api->cfg->query.timeout_ms;
    if (param(req, "timeout", 0, &v) == 0 && rg__api_parse_duration(v.data, &t) == 0 && t > 0 &&
        t < o->timeout_ms)
        o->timeout_ms = t;
    rg_buf_cleanup(&v);
}

static int parse_query(const struct rg_http_request *req, struct rg_http_response *res,
                       struct rg_promql_node **expr)
{
    struct rg_buf q = { 0 };
    char err[512];
    int rc = param(req, "query", 0, &q);

    if (rc) {
        rg__api_error(res, 400, "bad_data", "invalid parameter \"query\": %s",
                      rc == RG_ENOENT ? "1:1: parse error: no expression found in input"
                                      : "invalid percent-encoding");
        rg_buf_cleanup(&q);
        return RG_EINVAL;
    }
    rc = rg_promql_parse(q.data, expr, err, sizeof(err));
    rg_buf_cleanup(&q);
    if (rc) {
        rg__api_error(res, 400, "bad_data", "invalid parameter \"query\": %s",
                      rc == RG_EPARSE ? err : rg_strerror(rc));
        return rc;
    }
    return 0;
}

static void eval_error(struct rg_http_response *res, int rc, const struct rg_buf *msg)
{
    const char *m = msg->data && msg->len ? msg->data : rg_strerror(rc);

    if (rc == RG_ETIMEDOUT)
        rg__api_error(res, 503, "timeout", "query timed out in %s", m);
    else if (rc == RG_ENOMEM)
        rg__api_error(res, 500, "internal", "%s", m);
    else
        rg__api_error(res, 422, "execution", "%s", m);
}

static void finish_result(struct rg_http_response *res, const struct rg_promql_result *r)
{
    rg__api_success_begin(res);
    if (rg_promql_result_json(r, &res->body)) {
        rg__api_error(res, 500, "internal", "out of memory encoding the result");
        return;
    }
    if (r->nwarnings) {
        rg_buf_puts(&res->body, ",\"warnings\":[");
        for (size_t i = 0; i < r->nwarnings; i++) {
            if (i)
                rg_buf_putc(&res->body, ',');
            rg_json_cstr(&res->body, r->warnings[i]);
        }
        rg_buf_putc(&res->body, ']');
    }
    rg_buf_putc(&res->body, '}');
}

static void handle_query(struct rg_api *api, struct rg_http_request *req,
                         struct rg_http_response *res)
{
    struct rg_promql_node *expr = NULL;
    struct rg_promql_result r;
    struct rg_promql_opts o;
    struct rg_buf err = { 0 };
    int64_t t;
    int rc;

    memset(&r, 0, sizeof(r));
    if (parse_query(req, res, &expr))
        return;
    if (time_param(req, res, "time", rg_now_ms(), 0, &t))
        goto out;
    query_opts(api, req, &o);
    rc = rg_promql_eval_instant(api->store, expr, t, &o, &r, &err);
    if (rc)
        eval_error(res, rc, &err);
    else
        finish_result(res, &r);
out:
    rg_promql_result_free(&r);
    rg_promql_node_free(expr);
    rg_buf_cleanup(&err);
}

static void handle_query_range(struct rg_api *api, struct rg_http_request *req,
                               struct rg_http_response *res)
{
    struct rg_promql_node *expr = NULL;
    struct rg_promql_result r;
    struct rg_promql_opts o;
    struct rg_buf err = { 0 }, v = { 0 };
    int64_t start, end, step;
    int rc;

    memset(&r, 0, sizeof(r));
    if (time_param(req, res, "start", 0, 1, &start) || time_param(req, res, "end", 0, 1, &end))
        goto out;
    if (end < start) {
        rg__api_error(res, 400, "bad_data", "end timestamp must not be before start time");
        goto out;
    }
    rc = param(req, "step", 0, &v);
    if (rc || rg__api_parse_duration(v.data, &step)) {
        rg__api_error(res, 400, "bad_data",
                      "invalid parameter \"step\": cannot parse \"%s\" to a valid duration",
                      rc ? "" : v.data);
        goto out;
    }
    if (step <= 0) {
        rg__api_error(res, 400, "bad_data", "zero or negative query resolution step widths are "
                      "not accepted. Try a positive integer");
        goto out;
    }
    if ((end - start) / step > api->cfg->query.max_points) {
        rg__api_error(res, 400, "bad_data", "exceeded maximum resolution of %lld points per "
                      "timeseries. Try decreasing the query resolution (?step=XX)",
                      (long long)api->cfg->query.max_points);
        goto out;
    }
    if (parse_query(req, res, &expr))
        goto out;
    query_opts(api, req, &o);
    rc = rg_promql_eval_range(api->store, expr, start, end, step, &o, &r, &err);
    if (rc)
        eval_error(res, rc, &err);
    else
        finish_result(res, &r);
out:
    rg_promql_result_free(&r);
    rg_promql_node_free(expr);
    rg_buf_cleanup(&err);
    rg_buf_cleanup(&v);
}

/* ---- series, labels, label values ---------------------------------------- */

struct series_set {
    struct rg_series **v;
    size_t n;
    size_t cap;
};

static int ptr_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(struct rg_series *const *)a;
    uintptr_t y = (uintptr_t)*(struct rg_series *const *)b;
    return x < y ? -1 : x > y;
}

/* Collects the series selected by every match[] parameter that have samples in the
 * [start, end] of the request's start and end parameters (the whole time range when
 * absent). Returns 0, or fills @res with the error and returns non-zero. @none_given is
 * set when there is no match[] at all. */
static int match_series(struct rg_api *api, const struct rg_http_request *req,
                        struct rg_http_response *res, struct series_set *set, int *none_given)
{
    struct rg_buf m = { 0 };
    size_t i = 0;
    int64_t start, end;
    int rc = 0;

    if (time_param(req, res, "start", MIN_TIME_MS, 0, &start) ||
        time_param(req, res, "end", MAX_TIME_MS, 0, &end))
        return -1;

    *none_given = 1;
    while ((rc = param(req, "match[]", i, &m)) == 0) {
        struct rg_promql_node *sel = NULL;
        struct rg_matcher *ms = NULL;
        struct rg_series **found = NULL;
        size_t nfound = 0;
        char err[512];

        *none_given = 0;
        i++;
        rc = rg_promql_parse(m.data, &sel, err, sizeof(err));
        if (rc || sel->kind != RG_PROMQL_SELECTOR) {
            rg__api_error(res, 400, "bad_data", "invalid parameter \"match[]\": %s",
                          rc ? err : "expected a vector selector");
            rg_promql_node_free(sel);
            rc = RG_EINVAL;
            break;
        }
        ms = calloc(sel->u.sel.nmatchers ? sel->u.sel.nmatchers : 1, sizeof(*ms));
        if (!ms) {
            rg_promql_node_free(sel);
            rc = RG_ENOMEM;
            break;
        }
        for (size_t k = 0; k < sel->u.sel.nmatchers; k++) {
            struct rg_promql_matcher *pm = &sel->u.sel.matchers[k];
            ms[k].op = pm->op;
            ms[k].name = pm->name;
            ms[k].value = pm->value;
            ms[k].re_match = rg_promql_matcher_re_match;
            ms[k].re = pm;
        }
        rc = rg_store_select(api->store, ms, sel->u.sel.nmatchers, &found, &nfound);
        for (size_t k = 0; rc == 0 && k < nfound; k++) {
            if (rg_series_max_time(found[k]) < start || rg_series_min_time(found[k]) > end)
                continue;
            if (set->n == set->cap) {
                size_t cap = set->cap ? set->cap * 2 : 64;
                struct rg_series **v = realloc(set->v, cap * sizeof(*v));
                if (!v) {
                    rc = RG_ENOMEM;
                    break;
                }
                set->v = v;
                set->cap = cap;
            }
            set->v[set->n++] = found[k];
        }
        free(found);
        free(ms);
        rg_promql_node_free(sel);
        if (rc)
            break;
    }
    rg_buf_cleanup(&m);
    if (rc == RG_ENOENT)
        rc = 0;
    if (rc == RG_EBADMSG)
        rg__api_error(res, 400, "bad_data",
                      "invalid parameter \"match[]\": invalid percent-encoding");
    else if (rc == RG_ENOMEM)
        rg__api_error(res, 500, "internal", "out of memory");
    if (rc)
        return rc;
    /* Several match[] may select the same series: keep each once. */
    if (set->n > 1) {
        size_t w = 1;
        qsort(set->v, set->n, sizeof(*set->v), ptr_cmp);
        for (size_t k = 1; k < set->n; k++)
            if (set->v[k] != set->v[w - 1])
                set->v[w++] = set->v[k];
        set->n = w;
    }
    return 0;
}

static int labels_cmp(const void *a, const void *b)
{
    const struct rg_series *x = *(struct rg_series *const *)a;
    const struct rg_series *y = *(struct rg_series *const *)b;
    struct rg_label lx[64], ly[64];
    size_t nx = rg_series_labels(x, lx, 64), ny = rg_series_labels(y, ly, 64);

    for (size_t i = 0; i < nx && i < ny && i < 64; i++) {
        int c = strcmp(lx[i].name, ly[i].name);
        if (c)
            return c;
        c = strcmp(lx[i].value, ly[i].value);
        if (c)
            return c;
    }
    return nx < ny ? -1 : nx > ny;
}

static void put_labels(struct rg_buf *out, const struct rg_series *s)
{
    size_t n = rg_series_label_count(s);
    struct rg_label *l = malloc((n ? n : 1) * sizeof(*l));

    if (l) {
        rg_series_labels(s, l, n);
        rg__api_put_labels(out, l, n);
        free(l);
    } else {
        rg_buf_puts(out, "{}");
    }
}

static void handle_series(struct rg_api *api, struct rg_http_request *req,
                          struct rg_http_response *res)
{
    struct series_set set = { 0 };
    int none;

    if (match_series(api, req, res, &set, &none))
        goto out;
    if (none) {
        rg__api_error(res, 400, "bad_data", "no match[] parameter provided");
        goto out;
    }
    qsort(set.v, set.n, sizeof(*set.v), labels_cmp);
    rg__api_success_begin(res);
    rg_buf_putc(&res->body, '[');
    for (size_t i = 0; i < set.n; i++) {
        if (i)
            rg_buf_putc(&res->body, ',');
        put_labels(&res->body, set.v[i]);
    }
    rg_buf_puts(&res->body, "]}");
out:
    free(set.v);
}

struct strlist {
    char **v;
    size_t n;
    size_t cap;
    struct rg_buf *out;
};

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int emit_string(const char *s, void *ud)
{
    struct strlist *l = ud;
    if (l->n++)
        rg_buf_putc(l->out, ',');
    return rg_json_cstr(l->out, s);
}

/* Label names (@name NULL) or values of label @name, of the series selected by
 * match[] or of all series. */
static void handle_label_strings(struct rg_api *api, struct rg_http_request *req,
                                 struct rg_http_response *res, const char *name)
{
    struct series_set set = { 0 };
    struct strlist l = { 0 };
    int none;

    if (match_series(api, req, res, &set, &none))
        goto out;
    rg__api_success_begin(res);
    rg_buf_putc(&res->body, '[');
    l.out = &res->body;
    if (none) {
        if (name)
            rg_store_label_values(api->store, name, emit_string, &l);
        else
            rg_store_label_names(api->store, emit_string, &l);
    } else {
        size_t emitted = 0;
        for (size_t i = 0; i < set.n; i++) {
            size_t n = rg_series_label_count(set.v[i]);
            struct rg_label *lab = malloc((n ? n : 1) * sizeof(*lab));
            if (!lab)
                break;
            rg_series_labels(set.v[i], lab, n);
            for (size_t k = 0; k < n; k++) {
                const char *s = name ? (strcmp(lab[k].name, name) == 0 ? lab[k].value : NULL)
                                     : lab[k].name;
                if (!s)
                    continue;
                if (l.n == l.cap) {
                    size_t cap = l.cap ? l.cap * 2 : 64;
                    char **v = realloc(l.v, cap * sizeof(*v));
                    if (!v)
                        break;
                    l.v = v;
                    l.cap = cap;
                }
                l.v[l.n++] = (char *)s;   /* interned by the store; not freed here */
            }
            free(lab);
        }
        qsort(l.v, l.n, sizeof(*l.v), str_cmp);
        for (size_t i = 0; i < l.n; i++) {
            if (i && strcmp(l.v[i], l.v[i - 1]) == 0)
                continue;
            if (emitted++)
                rg_buf_putc(&res->body, ',');
            rg_json_cstr(&res->body, l.v[i]);
        }
    }
    rg_buf_puts(&res->body, "]}");
out:
    free(l.v);
    free(set.v);
}

/* ---- metadata and build info --------------------------------------------- */

struct md_walk {
    struct rg_buf *out;
    const char *metric;   /* only this family, or NULL */
    long limit;           /* families, <0 unlimited */
    long n;
};

static int emit_metadata(const char *family, enum rg_metric_type type, const char *help,
                         const char *unit, void *ud)
{
    struct md_walk *w = ud;

    if (w->metric && strcmp(w->metric, family) != 0)
        return 0;
    if (w->limit >= 0 && w->n >= w->limit)
        return 1;
    if (w->n++)
        rg_buf_putc(w->out, ',');
    rg_json_cstr(w->out, family);
    rg_buf_puts(w->out, ":[{\"type\":");
    rg_json_cstr(w->out, rg_metric_type_name(type));
    rg_buf_puts(w->out, ",\"help\":");
    rg_json_cstr(w->out, help);
    rg_buf_puts(w->out, ",\"unit\":");
    rg_json_cstr(w->out, unit);
    rg_buf_puts(w->out, "}]");
    return 0;
}

static void handle_metadata(struct rg_api *api, struct rg_http_request *req,
                            struct rg_http_response *res)
{
    struct rg_buf metric = { 0 }, limit = { 0 };
    struct md_walk w = { &res->body, NULL, -1, 0 };

    if (param(req, "limit", 0, &limit) == 0) {
        char *end;
        w.limit = strtol(limit.data, &end, 10);
        if (*end || limit.len == 0) {
            rg__api_error(res, 400, "bad_data", "limit must be a number");
            goto out;
        }
    }
    if (param(req, "metric", 0, &metric) == 0)
        w.metric = metric.data;
    rg__api_success_begin(res);
    rg_buf_putc(&res->body, '{');
    rg_store_metadata_each(api->store, emit_metadata, &w);
    rg_buf_puts(&res->body, "}}");
out:
    rg_buf_cleanup(&metric);
    rg_buf_cleanup(&limit);
}

static void handle_buildinfo(struct rg_http_response *res)
{
    rg__api_success_begin(res);
    rg_buf_puts(&res->body, "{\"version\":\"" RG_VERSION "\",\"revision\":\"" RG_GIT_SHA
                            "\",\"branch\":\"\",\"buildUser\":\"\",\"buildDate\":\"\","
                            "\"goVersion\":\"\"}}");
}

/* Routes /api/v1/... read endpoints. Returns 1 when handled. */
int rg__api_query_route(struct rg_api *api, struct rg_http_request *req,
                        struct rg_http_response *res)
{
    static const char label_prefix[] = "/api/v1/label/";
    static const char values_suffix[] = "/values";
    struct rg_slice p = req->path;
    int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    int post = strcmp(req->method, "POST") == 0;

    if (rg_slice_eq(p, "/api/v1/query") || rg_slice_eq(p, "/api/v1/query_range") ||
        rg_slice_eq(p, "/api/v1/series") || rg_slice_eq(p, "/api/v1/labels")) {
        if (!get && !post) {
            rg_http_response_header(res, "Allow", "GET, POST");
            rg__api_error(res, 405, "bad_data", "method not allowed");
        } else if (rg_slice_eq(p, "/api/v1/query")) {
            handle_query(api, req, res);
        } else if (rg_slice_eq(p, "/api/v1/query_range")) {
            handle_query_range(api, req, res);
        } else if (rg_slice_eq(p, "/api/v1/series")) {
            handle_series(api, req, res);
        } else {
            handle_label_strings(api, req, res, NULL);
        }
        return 1;
    }
    if (rg_slice_eq(p, "/api/v1/metadata") || rg_slice_eq(p, "/api/v1/status/buildinfo") ||
        (p.len > sizeof(label_prefix) - 1 + sizeof(values_suffix) - 1 &&
         memcmp(p.ptr, label_prefix, sizeof(label_prefix) - 1) == 0 &&
         memcmp(p.ptr + p.len - (sizeof(values_suffix) - 1), values_suffix,
                sizeof(values_suffix) - 1) == 0)) {
        if (!get) {
            rg_http_response_header(res, "Allow", "GET");
            rg__api_error(res, 405, "bad_data", "method not allowed");
        } else if (rg_slice_eq(p, "/api/v1/metadata")) {
            handle_metadata(api, req, res);
        } else if (rg_slice_eq(p, "/api/v1/status/buildinfo")) {
            handle_buildinfo(res);
        } else {
            struct rg_buf name = { 0 };
            struct rg_slice enc = { p.ptr + sizeof(label_prefix) - 1,
                                    p.len - (sizeof(label_prefix) - 1) - (sizeof(values_suffix) - 1) };
            /* The label name is one path segment, percent-encoded. */
            struct rg_buf qs = { 0 };
            rg_buf_puts(&qs, "n=");
            rg_buf_append(&qs, enc.ptr, enc.len);
            if (memchr(enc.ptr, '/', enc.len) ||
                rg_http_query_get((struct rg_slice){ qs.data, qs.len }, "n", 0, &name)) {
                rg__api_error(res, 400, "bad_data", "invalid label name");
            } else {
                handle_label_strings(api, req, res, name.data);
            }
            rg_buf_cleanup(&qs);
            rg_buf_cleanup(&name);
        }
        return 1;
    }
    return 0;
}
