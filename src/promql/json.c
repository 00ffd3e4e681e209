/* promql/json.c - a query result as the "data" object of Prometheus' HTTP API.
 *
 * Shapes follow web/api/v1: vector elements carry "value":[t,"v"], matrix series
 * "values":[[t,"v"],...], scalars and strings are a bare [t,"v"]. Times are
 * seconds with millisecond fraction (rg_format_time) and values as Prometheus'
 * jsonutil.MarshalFloat writes them: Go's FormatFloat('f', -1) (rg_format_float),
 * switching to the exponent form for non-zero magnitudes below 1e-6 or from 1e21 on
 * (where 'g' and 'e' agree, so rg_format_float_g); label names and values go
 * through util/json's string escaping.
 */
#include "promql/engine.h"

#include <math.h>

#include "promql/kernels.h"
#include "util/err.h"
#include "util/json.h"

static int point(struct rg_buf *out, int64_t t, double v)
{
    int err = rg_buf_putc(out, '[');

    if (!err)
        err = rg_format_time(t, out);
    if (!err)
        err = rg_buf_puts(out, ",\"");
    if (!err) {
        double a = fabs(v);
        err = a != 0 && (a < 1e-6 || a >= 1e21) ? rg_format_float_g(v, out)
                                                : rg_format_float(v, out);
    }
    return err ? err : rg_buf_puts(out, "\"]");
}

static int metric(struct rg_buf *out, const struct rg_promql_series *s)
{
    size_t i;
    int err = rg_buf_puts(out, "{\"metric\":{");

    for (i = 0; !err && i < s->nlabels; i++) {
        if (i)
            err = rg_buf_putc(out, ',');
        if (!err)
            err = rg_json_cstr(out, s->labels[i].name);
        if (!err)
            err = rg_buf_putc(out, ':');
        if (!err)
            err = rg_json_cstr(out, s->labels[i].value);
    }
    return err ? err : rg_buf_puts(out, "},");
}

static const char *type_name(enum rg_promql_vtype t)
{
    switch (t) {
    case RG_PROMQL_VT_SCALAR: return "scalar";
    case RG_PROMQL_VT_VECTOR: return "vector";
    case RG_PROMQL_VT_MATRIX: return "matrix";
    case RG_PROMQL_VT_STRING: return "string";
    default: return "vector";
    }
}

int rg_promql_result_json(const struct rg_promql_result *res, struct rg_buf *out)
{
    size_t i, j;
    int err = rg_buf_printf(out, "{\"resultType\":\"%s\",\"result\":", type_name(res->type));

    if (err)
        return err;
    switch (res->type) {
    case RG_PROMQL_VT_SCALAR:
        err = point(out, res->t, res->scalar);
        break;
    case RG_PROMQL_VT_STRING:
        err = rg_buf_putc(out, '[');
        if (!err)
            err = rg_format_time(res->t, out);
        if (!err)
            err = rg_buf_putc(out, ',');
        if (!err)
            err = rg_json_cstr(out, res->string ? res->string : "");
        if (!err)
            err = rg_buf_putc(out, ']');
        break;
    default:
        err = rg_buf_putc(out, '[');
        for (i = 0; !err && i < res->nseries; i++) {
            const struct rg_promql_series *s = &res->series[i];

            if (i)
                err = rg_buf_putc(out, ',');
            if (!err)
                err = metric(out, s);
            if (err)
                break;
            if (res->type == RG_PROMQL_VT_MATRIX) {
                err = rg_buf_puts(out, "\"values\":[");
                for (j = 0; !err && j < s->npoints; j++) {
                    if (j)
                        err = rg_buf_putc(out, ',');
                    if (!err)
                        err = point(out, s->points[j].t, s->points[j].v);
                }
                if (!err)
                    err = rg_buf_puts(out, "]}");
            } else {
                err = rg_buf_puts(out, "\"value\":");
                if (!err)
                    err = point(out, s->npoints ? s->points[0].t : res->t,
                                s->npoints ? s->points[0].v : 0);
                if (!err)
                    err = rg_buf_putc(out, '}');
            }
        }
        if (!err)
            err = rg_buf_putc(out, ']');
        break;
    }
    return err ? err : rg_buf_putc(out, '}');
}
