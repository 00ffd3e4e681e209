/* tests/promql/test_promqltest.c - runs Prometheus' PromQL test-file format.
 *
 * Every .test file under tests/promql/testdata is one cmocka case. A file is a list of
 * commands in the promqltest format of Prometheus (promql/promqltest/test.go):
 * `load <step>` blocks of series with expanding value notation, `clear`, and
 * `eval` / `eval_fail` / `eval_ordered` / `eval_warn` / `eval_info` commands, each
 * instant (`instant at <time>`) or range (`range from <t> to <t> step <d>`),
 * followed by the expected series. The runner parses the file itself (it does not
 * use the engine's parser for the data, so that a parser bug cannot hide behind a
 * matching bug in the test data), loads the series into a fresh store, evaluates
 * each expression with the engine and compares label sets and values.
 *
 * Like Prometheus' harness, an instant eval is also run in range mode over
 * [t - 1m, t + 1m] with a 1m step and the point at t is checked against the same
 * expectation, which exercises the range evaluator at no extra cost in test data.
 * Values compare with a relative tolerance of 1e-9 (exact equality first; NaN
 * equals NaN; stale markers compare by their bits). Every failing eval is reported
 * as file:line with the expected and the actual result; a file fails when any of
 * its evals fails, and the runner keeps going so one run shows every failure.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <ctype.h>
#include <glob.h>
#include <inttypes.h>
#include <math.h>
#include <pcre2.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "promql/ast.h"
#include "promql/engine.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

#define PQT_DIR "tests/promql/testdata"
#define PQT_EPS 1e-9
#define PQT_MAX_LABELS 64
#define PQT_MAX_REPEAT 100000     /* bound on `axN` so a typo cannot exhaust memory */
#define PQT_MIN_FILES 8           /* the corpus is split by topic into at least this many */
#define PQT_MIN_EVALS 200         /* and holds at least this many eval statements */

/* ---- Data model ----------------------------------------------------------- */

struct pqt_label {
    char *name;      /* owned */
    char *value;     /* owned */
};

/* One loaded series, or one expected result line. */
struct pqt_series {
    struct pqt_label labels[PQT_MAX_LABELS];
    size_t nlabels;
    double *values;            /* owned */
    unsigned char *omitted;    /* owned; 1 where the notation said `_` */
    size_t nvalues;
    size_t cap;                /* allocated entries of values and omitted */
    int scalar;                /* a bare number line: the expected scalar result */
    char *string;              /* a quoted line: the expected string result, owned */
    int line;                  /* 1-based line in the test file */
    int matched;
};

struct pqt_eval {
    int fail;                  /* eval_fail or `expect fail`: the query must fail */
    int ordered;               /* eval_ordered or `expect ordered`: order matters */
    int want_ann;              /* 1: annotations required, -1: none allowed, 0: either */
    int line;
    int range;                 /* 0: instant at @at; 1: range from start to end by step */
    int64_t at, start, end, step;
    char *expr;                /* owned */
    char *fail_msg;            /* owned; expected_fail_message */
    char *fail_re;             /* owned; expected_fail_regexp */
    char *ann_re;              /* owned; `expect warn regex:`, matched against annotations */
    struct pqt_series *exp;    /* owned array */
    size_t nexp;
    size_t capexp;
};

/* Per-file state: the store and the running report. */
struct pqt_ctx {
    const char *path;
    struct rg_store *store;
    struct rg_promql_opts opts;
    int dry_run;               /* parse the file only; evaluate nothing */
    int evals;
    int failed;
    struct rg_buf report;      /* failure messages, one or more lines each */
};

static void series_cleanup(struct pqt_series *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nlabels; i++) {
        free(s->labels[i].name);
        free(s->labels[i].value);
    }
    free(s->values);
    free(s->omitted);
    free(s->string);
    memset(s, 0, sizeof(*s));
}

static void eval_cleanup(struct pqt_eval *ev)
{
    if (ev == NULL)
        return;
    for (size_t i = 0; i < ev->nexp; i++)
        series_cleanup(&ev->exp[i]);
    free(ev->exp);
    free(ev->expr);
    free(ev->fail_msg);
    free(ev->fail_re);
    free(ev->ann_re);
    memset(ev, 0, sizeof(*ev));
}

/* ---- Lexing helpers ------------------------------------------------------- */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static int is_ident_start(int c)
{
    return isalpha(c) || c == '_' || c == ':';
}

static int is_ident_char(int c)
{
    return isalnum(c) || c == '_' || c == ':';
}

/* Reads a "..." or '...' string with Go-style escapes into a malloc'd string. */
static int parse_quoted(const char **pp, char **out)
{
    const char *p = *pp;
    char q = *p;
    struct rg_buf b = { 0 };

    if (q != '"' && q != '\'' && q != '`')
        return RG_EPARSE;
    p++;
    while (*p != q) {
        char c = *p;
        if (c == '\0')
            goto fail;
        if (c == '\\' && q != '`') {
            p++;
            switch (*p) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case '\\': c = '\\'; break;
            case '"': c = '"'; break;
            case '\'': c = '\''; break;
            default: goto fail;
            }
        }
        if (rg_buf_putc(&b, c) != 0)
            goto fail;
        p++;
    }
    *pp = p + 1;
    if (b.data == NULL && rg_buf_reserve(&b, 1) != 0)
        goto fail;
    *out = rg_buf_steal(&b, NULL);
    return *out != NULL ? 0 : RG_ENOMEM;
fail:
    rg_buf_cleanup(&b);
    return RG_EPARSE;
}

static int add_label(struct pqt_series *s, const char *name, size_t nlen, const char *value)
{
    if (s->nlabels >= PQT_MAX_LABELS)
        return RG_ELIMIT;
    for (size_t i = 0; i < s->nlabels; i++) {
        if (strlen(s->labels[i].name) == nlen && memcmp(s->labels[i].name, name, nlen) == 0)
            return RG_ELABELS;
    }
    s->labels[s->nlabels].name = strndup(name, nlen);
    s->labels[s->nlabels].value = strdup(value);
    if (s->labels[s->nlabels].name == NULL || s->labels[s->nlabels].value == NULL) {
        free(s->labels[s->nlabels].name);
        free(s->labels[s->nlabels].value);
        return RG_ENOMEM;
    }
    s->nlabels++;
    return 0;
}

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const struct pqt_label *)a)->name, ((const struct pqt_label *)b)->name);
}

/* Parses `name`, `name{...}` or `{...}` (label names bare or quoted, a lone quoted
 * string inside the braces being the metric name, as Prometheus 3.x allows) and
 * leaves the labels sorted by name. */
static int parse_labelset(const char **pp, struct pqt_series *s)
{
    const char *p = skip_ws(*pp);
    int rc;

    if (is_ident_start((unsigned char)*p)) {
        const char *start = p;
        while (is_ident_char((unsigned char)*p))
            p++;
        char *name = strndup(start, (size_t)(p - start));
        if (name == NULL)
            return RG_ENOMEM;
        rc = add_label(s, "__name__", 8, name);
        free(name);
        if (rc != 0)
            return rc;
    }
    if (*p == '{') {
        p = skip_ws(p + 1);
        while (*p != '}') {
            char *lname = NULL, *lvalue = NULL;
            if (*p == '"' || *p == '\'') {
                rc = parse_quoted(&p, &lname);
                if (rc != 0)
                    return rc;
            } else if (is_ident_start((unsigned char)*p)) {
                const char *start = p;
                while (is_ident_char((unsigned char)*p))
                    p++;
                lname = strndup(start, (size_t)(p - start));
                if (lname == NULL)
                    return RG_ENOMEM;
            } else {
                return RG_EPARSE;
            }
            p = skip_ws(p);
            if (*p == '=') {
                p = skip_ws(p + 1);
                rc = parse_quoted(&p, &lvalue);
                if (rc != 0) {
                    free(lname);
                    return rc;
                }
                rc = add_label(s, lname, strlen(lname), lvalue);
            } else {
                /* A lone quoted string is the metric name. */
                rc = add_label(s, "__name__", 8, lname);
            }
            free(lname);
            free(lvalue);
            if (rc != 0)
                return rc;
            p = skip_ws(p);
            if (*p == ',')
                p = skip_ws(p + 1);
            else if (*p != '}')
                return RG_EPARSE;
        }
        p++;
    }
    qsort(s->labels, s->nlabels, sizeof(s->labels[0]), cmp_label);
    *pp = p;
    return 0;
}

/* Scans one number as the series notation writes it: optional sign, then Inf, NaN
 * or a decimal with optional fraction and exponent. Hexadecimal is not accepted,
 * as in Prometheus, because `0x5` would be ambiguous with the repeat notation. */
static int scan_number(const char **pp, double *out)
{
    const char *p = *pp;
    const char *start = p;
    char tmp[64];
    int neg = 0;

    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
    }
    if (strncasecmp(p, "inf", 3) == 0 && !is_ident_char((unsigned char)p[3])) {
        *out = neg ? -INFINITY : INFINITY;
        *pp = p + 3;
        return 0;
    }
    if (strncasecmp(p, "nan", 3) == 0 && !is_ident_char((unsigned char)p[3])) {
        *out = NAN;
        *pp = p + 3;
        return 0;
    }
    const char *digits = p;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (p == digits || (p == digits + 1 && *digits == '.'))
        return RG_EPARSE;
    if (*p == 'e' || *p == 'E') {
        const char *e = p + 1;
        if (*e == '+' || *e == '-')
            e++;
        if (isdigit((unsigned char)*e)) {
            while (isdigit((unsigned char)*e))
                e++;
            p = e;
        }
    }
    if ((size_t)(p - start) >= sizeof(tmp))
        return RG_EPARSE;
    memcpy(tmp, start, (size_t)(p - start));
    tmp[p - start] = '\0';
    *out = strtod(tmp, NULL);
    *pp = p;
    return 0;
}

static int scan_uint(const char **pp, size_t *out)
{
    const char *p = *pp;
    size_t v = 0;

    if (!isdigit((unsigned char)*p))
        return RG_EPARSE;
    while (isdigit((unsigned char)*p)) {
        v = v * 10 + (size_t)(*p - '0');
        if (v > PQT_MAX_REPEAT)
            return RG_ELIMIT;
        p++;
    }
    *out = v;
    *pp = p;
    return 0;
}

static int push_value(struct pqt_series *s, double v, int omitted)
{
    if (s->nvalues == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        double *nv = realloc(s->values, cap * sizeof(*nv));
        if (nv == NULL)
            return RG_ENOMEM;
        s->values = nv;
        unsigned char *no = realloc(s->omitted, cap);
        if (no == NULL)
            return RG_ENOMEM;
        s->omitted = no;
        s->cap = cap;
    }
    s->values[s->nvalues] = v;
    s->omitted[s->nvalues] = (unsigned char)omitted;
    s->nvalues++;
    return 0;
}

/* Expands the value notation of the rest of a line: `_`, `_xN` (N omitted),
 * `stale`, a number, `axN` (N+1 copies) and `a+bxN` / `a-bxN` (N+1 values made by
 * repeated addition, exactly as Prometheus' grammar builds them). */
static int parse_values(const char *p, struct pqt_series *s)
{
    int rc;

    for (;;) {
        p = skip_ws(p);
        if (*p == '\0' || *p == '\n' || *p == '\r')
            return 0;
        if (*p == '_') {
            size_t n = 1;
            p++;
            if (*p == 'x') {
                p++;
                if ((rc = scan_uint(&p, &n)) != 0)
                    return rc;
            }
            for (size_t i = 0; i < n; i++) {
                if ((rc = push_value(s, 0, 1)) != 0)
                    return rc;
            }
        } else if (strncmp(p, "stale", 5) == 0) {
            p += 5;
            if ((rc = push_value(s, rg_stale_nan(), 0)) != 0)
                return rc;
        } else {
            double a, b = 0;
            size_t n = 0;
            if ((rc = scan_number(&p, &a)) != 0)
                return rc;
            if (*p == '+' || *p == '-') {
                if ((rc = scan_number(&p, &b)) != 0)
                    return rc;
                if (*p != 'x')
                    return RG_EPARSE;
            }
            if (*p == 'x') {
                p++;
                if ((rc = scan_uint(&p, &n)) != 0)
                    return rc;
            }
            for (size_t i = 0; i <= n; i++) {
                if ((rc = push_value(s, a, 0)) != 0)
                    return rc;
                a += b;
            }
        }
        if (*p != ' ' && *p != '\t' && *p != '\0' && *p != '\n' && *p != '\r')
            return RG_EPARSE;
    }
}

/* Parses a duration or time as the test files write them: "0", "10m", "1h30m",
 * "500ms", "1d", or a plain number of seconds ("1000", "2.5"). */
static int parse_time(const char *s, size_t len, int64_t *out)
{
    char tmp[64];
    const char *p;
    int64_t total = 0;
    int neg = 0;

    if (len == 0 || len >= sizeof(tmp))
        return RG_EINVAL;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    p = tmp;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    char *end;
    double v = strtod(p, &end);
    if (end == p)
        return RG_EINVAL;
    if (*end == '\0') {
        *out = (int64_t)llround(v * 1000.0) * (neg ? -1 : 1);
        return 0;
    }
    while (*p != '\0') {
        int64_t n = 0;
        if (!isdigit((unsigned char)*p))
            return RG_EINVAL;
        while (isdigit((unsigned char)*p))
            n = n * 10 + (*p++ - '0');
        int64_t unit;
        if (strncmp(p, "ms", 2) == 0) {
            unit = 1;
            p += 2;
        } else if (*p == 's') {
            unit = 1000;
            p++;
        } else if (*p == 'm') {
            unit = 60000;
            p++;
        } else if (*p == 'h') {
            unit = 3600000;
            p++;
        } else if (*p == 'd') {
            unit = 86400000;
            p++;
        } else if (*p == 'w') {
            unit = 7 * 86400000LL;
            p++;
        } else if (*p == 'y') {
            unit = 365 * 86400000LL;
            p++;
        } else {
            return RG_EINVAL;
        }
        total += n * unit;
    }
    *out = neg ? -total : total;
    return 0;
}

/* ---- Formatting for messages ---------------------------------------------- */

static void fmt_value(struct rg_buf *b, double v)
{
    char tmp[40];

    if (rg_is_stale_nan(v)) {
        rg_buf_puts(b, "stale");
        return;
    }
    if (isnan(v)) {
        rg_buf_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        rg_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    /* Whole numbers print as such; others in the shortest form that reads back
     * to the same double. */
    if (v == trunc(v) && fabs(v) < 1e17) {
        snprintf(tmp, sizeof(tmp), "%.0f", v);
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
            if (strtod(tmp, NULL) == v)
                break;
        }
    }
    rg_buf_puts(b, tmp);
}

static void fmt_labels(struct rg_buf *b, const struct pqt_label *l, size_t n)
{
    rg_buf_putc(b, '{');
    for (size_t i = 0; i < n; i++)
        rg_buf_printf(b, "%s%s=\"%s\"", i ? ", " : "", l[i].name, l[i].value);
    rg_buf_putc(b, '}');
}

static void fmt_rg_labels(struct rg_buf *b, const struct rg_label *l, size_t n)
{
    rg_buf_putc(b, '{');
    for (size_t i = 0; i < n; i++)
        rg_buf_printf(b, "%s%s=\"%s\"", i ? ", " : "", l[i].name, l[i].value);
    rg_buf_putc(b, '}');
}

static void report(struct pqt_ctx *ctx, const struct pqt_eval *ev, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends "file:line: <eval header>: <message>" to the file's report. */
static void report(struct pqt_ctx *ctx, const struct pqt_eval *ev, const char *fmt, ...)
{
    va_list ap;

    rg_buf_printf(&ctx->report, "%s:%d: %s: ", ctx->path, ev->line, ev->expr);
    va_start(ap, fmt);
    rg_buf_vprintf(&ctx->report, fmt, ap);
    va_end(ap);
    rg_buf_putc(&ctx->report, '\n');
}

/* ---- Comparison ----------------------------------------------------------- */

static int values_equal(double exp, double got)
{
    uint64_t be, bg;

    memcpy(&be, &exp, sizeof(be));
    memcpy(&bg, &got, sizeof(bg));
    if (rg_is_stale_nan(exp) || rg_is_stale_nan(got))
        return be == bg;
    if (isnan(exp) || isnan(got))
        return isnan(exp) && isnan(got);
    if (exp == got)
        return 1;
    if (isinf(exp) || isinf(got))
        return 0;
    return fabs(exp - got) <= PQT_EPS * fmax(fabs(exp), fabs(got));
}

static int labels_equal(const struct pqt_series *e, const struct rg_label *l, size_t n)
{
    if (e->nlabels != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(e->labels[i].name, l[i].name) != 0 ||
            strcmp(e->labels[i].value, l[i].value) != 0)
            return 0;
    }
    return 1;
}

/* Prometheus' labels.Compare: name, then value, label by label; shorter first. */
static int labels_cmp(const struct rg_label *a, size_t na, const struct rg_label *b, size_t nb)
{
    for (size_t i = 0; i < na && i < nb; i++) {
        int c = strcmp(a[i].name, b[i].name);
        if (c != 0)
            return c;
        c = strcmp(a[i].value, b[i].value);
        if (c != 0)
            return c;
    }
    return na < nb ? -1 : na > nb ? 1 : 0;
}

static int labels_sorted(const struct rg_label *l, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (strcmp(l[i - 1].name, l[i].name) >= 0)
            return 0;
    }
    return 1;
}

/* Checks the got label sets: sorted by name and no two the same. Returns the number
 * of problems reported. */
static int check_label_sets(struct pqt_ctx *ctx, const struct pqt_eval *ev,
                            const struct rg_promql_result *res, const char *mode)
{
    int bad = 0;

    for (size_t i = 0; i < res->nseries; i++) {
        const struct rg_promql_series *s = &res->series[i];
        if (!labels_sorted(s->labels, s->nlabels)) {
            struct rg_buf b = { 0 };
            fmt_rg_labels(&b, s->labels, s->nlabels);
            report(ctx, ev, "%s: labels not sorted by name: %s", mode, b.data);
            rg_buf_cleanup(&b);
            bad++;
        }
        for (size_t j = 0; j < i; j++) {
            const struct rg_promql_series *o = &res->series[j];
            if (labels_cmp(s->labels, s->nlabels, o->labels, o->nlabels) == 0) {
                struct rg_buf b = { 0 };
                fmt_rg_labels(&b, s->labels, s->nlabels);
                report(ctx, ev, "%s: duplicate series in result: %s", mode, b.data);
                rg_buf_cleanup(&b);
                bad++;
            }
        }
    }
    return bad;
}

static void fmt_expected_all(struct rg_buf *b, const struct pqt_eval *ev)
{
    if (ev->nexp == 0)
        rg_buf_puts(b, "  (nothing)\n");
    for (size_t i = 0; i < ev->nexp; i++) {
        const struct pqt_series *e = &ev->exp[i];
        rg_buf_puts(b, "  ");
        if (e->string != NULL) {
            rg_buf_printf(b, "\"%s\"\n", e->string);
            continue;
        }
        if (!e->scalar) {
            fmt_labels(b, e->labels, e->nlabels);
            rg_buf_putc(b, ' ');
        }
        for (size_t k = 0; k < e->nvalues; k++) {
            if (k)
                rg_buf_putc(b, ' ');
            if (e->omitted[k])
                rg_buf_putc(b, '_');
            else
                fmt_value(b, e->values[k]);
        }
        rg_buf_putc(b, '\n');
    }
}

/* Formats a result as the expected lines would be written; for a matrix the points
 * are shown as value@t(ms). */
static void fmt_result(struct rg_buf *b, const struct rg_promql_result *res)
{
    switch (res->type) {
    case RG_PROMQL_VT_SCALAR:
        rg_buf_puts(b, "  scalar ");
        fmt_value(b, res->scalar);
        rg_buf_putc(b, '\n');
        return;
    case RG_PROMQL_VT_STRING:
        rg_buf_printf(b, "  string \"%s\"\n", res->string ? res->string : "");
        return;
    case RG_PROMQL_VT_VECTOR:
    case RG_PROMQL_VT_MATRIX:
        if (res->nseries == 0)
            rg_buf_puts(b, "  (nothing)\n");
        for (size_t i = 0; i < res->nseries; i++) {
            const struct rg_promql_series *s = &res->series[i];
            rg_buf_puts(b, "  ");
            fmt_rg_labels(b, s->labels, s->nlabels);
            for (size_t k = 0; k < s->npoints; k++) {
                rg_buf_putc(b, ' ');
                fmt_value(b, s->points[k].v);
                if (res->type == RG_PROMQL_VT_MATRIX)
                    rg_buf_printf(b, "@%" PRId64, s->points[k].t);
            }
            rg_buf_putc(b, '\n');
        }
        return;
    default:
        rg_buf_printf(b, "  (result of type %d)\n", (int)res->type);
    }
}

static void report_mismatch(struct pqt_ctx *ctx, const struct pqt_eval *ev,
                            const struct rg_promql_result *res, const char *mode,
                            const char *why)
{
    struct rg_buf b = { 0 };

    rg_buf_puts(&b, "expected:\n");
    fmt_expected_all(&b, ev);
    rg_buf_puts(&b, " got:\n");
    fmt_result(&b, res);
    if (b.len > 0 && b.data[b.len - 1] == '\n')
        b.data[--b.len] = '\0';
    report(ctx, ev, "%s: %s\n %s", mode, why, b.data);
    rg_buf_cleanup(&b);
}

/* Compares an instant result (scalar, vector, or the points at @t of a range
 * result given as a vector-like view) with the expectation. Returns 0 when equal,
 * else writes one report and returns 1. */
static int compare_instant(struct pqt_ctx *ctx, struct pqt_eval *ev,
                           const struct rg_promql_result *res, int64_t t, const char *mode)
{
    char why[256];

    for (size_t i = 0; i < ev->nexp; i++)
        ev->exp[i].matched = 0;

    if (res->type == RG_PROMQL_VT_SCALAR) {
        if (ev->nexp != 1 || !ev->exp[0].scalar) {
            report_mismatch(ctx, ev, res, mode, "got a scalar, expected something else");
            return 1;
        }
        if (!values_equal(ev->exp[0].values[0], res->scalar)) {
            report_mismatch(ctx, ev, res, mode, "scalar value differs");
            return 1;
        }
        return 0;
    }
    if (res->type == RG_PROMQL_VT_STRING) {
        if (ev->nexp != 1 || ev->exp[0].string == NULL || res->string == NULL ||
            strcmp(ev->exp[0].string, res->string) != 0) {
            report_mismatch(ctx, ev, res, mode, "string result differs");
            return 1;
        }
        return 0;
    }
    if (res->type != RG_PROMQL_VT_VECTOR && res->type != RG_PROMQL_VT_MATRIX) {
        report_mismatch(ctx, ev, res, mode, "unexpected result type");
        return 1;
    }
    for (size_t i = 0; i < ev->nexp; i++) {
        if (ev->exp[i].scalar || ev->exp[i].string != NULL) {
            report_mismatch(ctx, ev, res, mode, "expected a scalar or string, got a vector");
            return 1;
        }
    }

    size_t seen = 0;
    for (size_t i = 0; i < res->nseries; i++) {
        const struct rg_promql_series *s = &res->series[i];
        const struct rg_sample *pt = NULL;
        struct pqt_series *e = NULL;
        size_t ei = 0;

        /* In range mode only the point at @t is looked at, as Prometheus does. */
        for (size_t k = 0; k < s->npoints; k++) {
            if (s->points[k].t == t) {
                pt = &s->points[k];
                break;
            }
        }
        if (res->type == RG_PROMQL_VT_VECTOR && (s->npoints != 1 || pt == NULL)) {
            snprintf(why, sizeof(why), "vector series %zu has %zu points, not one at t=%" PRId64,
                     i, s->npoints, t);
            report_mismatch(ctx, ev, res, mode, why);
            return 1;
        }
        if (pt == NULL)
            continue;
        for (ei = 0; ei < ev->nexp; ei++) {
            if (labels_equal(&ev->exp[ei], s->labels, s->nlabels)) {
                e = &ev->exp[ei];
                break;
            }
        }
        if (e == NULL) {
            struct rg_buf b = { 0 };
            fmt_rg_labels(&b, s->labels, s->nlabels);
            snprintf(why, sizeof(why), "unexpected series %s", b.data);
            rg_buf_cleanup(&b);
            report_mismatch(ctx, ev, res, mode, why);
            return 1;
        }
        if (e->nvalues != 1 || e->omitted[0]) {
            snprintf(why, sizeof(why), "expected line %d must hold exactly one value", e->line);
            report_mismatch(ctx, ev, res, mode, why);
            return 1;
        }
        if (!values_equal(e->values[0], pt->v)) {
            struct rg_buf b = { 0 };
            fmt_labels(&b, e->labels, e->nlabels);
            snprintf(why, sizeof(why), "value of %s differs", b.data);
            rg_buf_cleanup(&b);
            report_mismatch(ctx, ev, res, mode, why);
            return 1;
        }
        if (ev->ordered && ei != seen) {
            snprintf(why, sizeof(why), "order: result %zu is expected line %d", seen, e->line);
            report_mismatch(ctx, ev, res, mode, why);
            return 1;
        }
        e->matched = 1;
        seen++;
    }
    for (size_t i = 0; i < ev->nexp; i++) {
        if (!ev->exp[i].matched) {
            snprintf(why, sizeof(why), "expected line %d has no match", ev->exp[i].line);
            report_mismatch(ctx, ev, res, mode, why);
            return 1;
        }
    }
    return 0;
}

/* Compares a range result with expected lines whose i-th value is the point at
 * start + i * step (`_`: no point there). */
static int compare_range(struct pqt_ctx *ctx, struct pqt_eval *ev,
                         const struct rg_promql_result *res)
{
    char why[256];

    if (res->type != RG_PROMQL_VT_MATRIX) {
        report_mismatch(ctx, ev, res, "range", "range query did not return a matrix");
        return 1;
    }
    for (size_t i = 0; i < ev->nexp; i++) {
        ev->exp[i].matched = 0;
        if (ev->exp[i].scalar || ev->exp[i].string != NULL) {
            report_mismatch(ctx, ev, res, "range", "expected lines need label sets");
            return 1;
        }
    }
    for (size_t i = 0; i < res->nseries; i++) {
        const struct rg_promql_series *s = &res->series[i];
        struct pqt_series *e = NULL;

        if (i > 0 && labels_cmp(res->series[i - 1].labels, res->series[i - 1].nlabels,
                                s->labels, s->nlabels) > 0) {
            report_mismatch(ctx, ev, res, "range", "matrix not sorted by label set");
            return 1;
        }
        for (size_t ei = 0; ei < ev->nexp; ei++) {
            if (labels_equal(&ev->exp[ei], s->labels, s->nlabels)) {
                e = &ev->exp[ei];
                break;
            }
        }
        if (e == NULL) {
            struct rg_buf b = { 0 };
            fmt_rg_labels(&b, s->labels, s->nlabels);
            snprintf(why, sizeof(why), "unexpected series %s", b.data);
            rg_buf_cleanup(&b);
            report_mismatch(ctx, ev, res, "range", why);
            return 1;
        }
        size_t k = 0;
        for (size_t vi = 0; vi < e->nvalues; vi++) {
            int64_t t = ev->start + (int64_t)vi * ev->step;
            if (e->omitted[vi]) {
                if (k < s->npoints && s->points[k].t == t) {
                    snprintf(why, sizeof(why), "line %d: point at t=%" PRId64
                             " where none was expected", e->line, t);
                    report_mismatch(ctx, ev, res, "range", why);
                    return 1;
                }
                continue;
            }
            if (k >= s->npoints || s->points[k].t != t) {
                snprintf(why, sizeof(why), "line %d: no point at t=%" PRId64, e->line, t);
                report_mismatch(ctx, ev, res, "range", why);
                return 1;
            }
            if (!values_equal(e->values[vi], s->points[k].v)) {
                snprintf(why, sizeof(why), "line %d: value at t=%" PRId64 " differs",
                         e->line, t);
                report_mismatch(ctx, ev, res, "range", why);
                return 1;
            }
            k++;
        }
        if (k != s->npoints) {
            snprintf(why, sizeof(why), "line %d: %zu points beyond the expected ones",
                     e->line, s->npoints - k);
            report_mismatch(ctx, ev, res, "range", why);
            return 1;
        }
        e->matched = 1;
    }
    for (size_t i = 0; i < ev->nexp; i++) {
        if (!ev->exp[i].matched) {
            snprintf(why, sizeof(why), "expected line %d has no match", ev->exp[i].line);
            report_mismatch(ctx, ev, res, "range", why);
            return 1;
        }
    }
    return 0;
}

/* ---- Running one eval ----------------------------------------------------- */

/* True when any @ modifier in the tree is start() or end(): those refer to the
 * query's bounds, which the range-mode cross-check shifts. */
static int uses_start_end(const struct rg_promql_node *n)
{
    if (n == NULL)
        return 0;
    switch (n->kind) {
    case RG_PROMQL_SELECTOR:
    case RG_PROMQL_MATRIX:
        return n->u.sel.at == RG_PROMQL_AT_START || n->u.sel.at == RG_PROMQL_AT_END;
    case RG_PROMQL_SUBQUERY:
        return n->u.sub.at == RG_PROMQL_AT_START || n->u.sub.at == RG_PROMQL_AT_END ||
               uses_start_end(n->u.sub.expr);
    case RG_PROMQL_CALL:
        for (size_t i = 0; i < n->u.call.nargs; i++) {
            if (uses_start_end(n->u.call.args[i]))
                return 1;
        }
        return 0;
    case RG_PROMQL_AGGREGATE:
        return uses_start_end(n->u.agg.expr) || uses_start_end(n->u.agg.param);
    case RG_PROMQL_BINARY:
        return uses_start_end(n->u.bin.lhs) || uses_start_end(n->u.bin.rhs);
    case RG_PROMQL_UNARY:
    case RG_PROMQL_PAREN:
        return uses_start_end(n->u.un.expr);
    default:
        return 0;
    }
}

static int regex_search(const char *pattern, const char *subject)
{
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &errcode,
                                   &erroff, NULL);
    if (re == NULL)
        return -1;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (md == NULL) {
        pcre2_code_free(re);
        return -1;
    }
    int rc = pcre2_match(re, (PCRE2_SPTR)subject, strlen(subject), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc >= 0;
}

/* An expected failure happened with message @msg: check the optional message
 * expectations. */
static int check_fail_message(struct pqt_ctx *ctx, const struct pqt_eval *ev, const char *msg)
{
    if (ev->fail_msg != NULL && strcmp(ev->fail_msg, msg) != 0) {
        report(ctx, ev, "error message \"%s\", expected \"%s\"", msg, ev->fail_msg);
        return 1;
    }
    if (ev->fail_re != NULL) {
        int m = regex_search(ev->fail_re, msg);
        if (m < 0) {
            report(ctx, ev, "bad expected_fail_regexp \"%s\"", ev->fail_re);
            return 1;
        }
        if (m == 0) {
            report(ctx, ev, "error message \"%s\" does not match /%s/", msg, ev->fail_re);
            return 1;
        }
    }
    return 0;
}

static int run_eval(struct pqt_ctx *ctx, struct pqt_eval *ev)
{
    char perr[512] = "";
    struct rg_promql_node *node = NULL;
    struct rg_promql_result res;
    struct rg_buf err = { 0 };
    int rc, bad = 0;

    memset(&res, 0, sizeof(res));
    rc = rg_promql_parse(ev->expr, &node, perr, sizeof(perr));
    if (rc != 0) {
        if (ev->fail)
            return check_fail_message(ctx, ev, perr);
        report(ctx, ev, "parse failed (%s): %s", rg_err_name(rc), perr);
        return 1;
    }
    if (ev->range)
        rc = rg_promql_eval_range(ctx->store, node, ev->start, ev->end, ev->step, &ctx->opts,
                                  &res, &err);
    else
        rc = rg_promql_eval_instant(ctx->store, node, ev->at, &ctx->opts, &res, &err);
    if (ev->fail) {
        if (rc == 0) {
            report_mismatch(ctx, ev, &res, ev->range ? "range" : "instant",
                            "expected an error, the query succeeded");
            bad = 1;
        } else {
            bad = check_fail_message(ctx, ev, err.data ? err.data : "");
        }
        goto out;
    }
    if (rc != 0) {
        report(ctx, ev, "%s evaluation failed (%s): %s", ev->range ? "range" : "instant",
               rg_err_name(rc), err.data ? err.data : "");
        bad = 1;
        goto out;
    }
    /* The engine keeps Prometheus' warnings and infos in one list, so warn and
     * info expectations both look at it. */
    if (ev->want_ann > 0 && res.nwarnings == 0) {
        report(ctx, ev, "expected a warning or info annotation, got none");
        bad = 1;
    } else if (ev->want_ann < 0 && res.nwarnings > 0) {
        report(ctx, ev, "expected no annotation, got \"%s\"", res.warnings[0]);
        bad = 1;
    } else if (ev->ann_re != NULL) {
        int found = 0;
        for (size_t i = 0; i < res.nwarnings && !found; i++)
            found = regex_search(ev->ann_re, res.warnings[i]) > 0;
        if (!found) {
            report(ctx, ev, "no annotation matches /%s/", ev->ann_re);
            bad = 1;
        }
    }
    if (res.type == RG_PROMQL_VT_VECTOR || res.type == RG_PROMQL_VT_MATRIX) {
        if (check_label_sets(ctx, ev, &res, ev->range ? "range" : "instant") != 0)
            bad = 1;
    }
    if (ev->range) {
        bad |= compare_range(ctx, ev, &res);
        goto out;
    }
    if (res.type == RG_PROMQL_VT_MATRIX) {
        /* An instant query of a range selector: expected lines list the values
         * in the window, oldest first. */
        for (size_t i = 0; i < ev->nexp; i++)
            ev->exp[i].matched = 0;
        for (size_t i = 0; i < res.nseries && !bad; i++) {
            const struct rg_promql_series *s = &res.series[i];
            struct pqt_series *e = NULL;
            for (size_t ei = 0; ei < ev->nexp; ei++) {
                if (labels_equal(&ev->exp[ei], s->labels, s->nlabels))
                    e = &ev->exp[ei];
            }
            size_t k = 0, ok = e != NULL;
            for (size_t vi = 0; ok && vi < e->nvalues; vi++) {
                if (e->omitted[vi])
                    continue;
                ok = k < s->npoints && values_equal(e->values[vi], s->points[k].v);
                k++;
            }
            if (!ok || k != s->npoints) {
                report_mismatch(ctx, ev, &res, "instant", "range vector differs");
                bad = 1;
            } else {
                e->matched = 1;
            }
        }
        for (size_t i = 0; i < ev->nexp && !bad; i++) {
            if (!ev->exp[i].matched) {
                report_mismatch(ctx, ev, &res, "instant", "expected series missing");
                bad = 1;
            }
        }
        goto out;
    }
    bad |= compare_instant(ctx, ev, &res, ev->at, "instant");
    if (bad || ev->ordered || res.type == RG_PROMQL_VT_STRING ||
        uses_start_end(node))
        goto out;

    /* Range-mode cross-check over [t-1m, t+1m], looking at the point at t. */
    {
        struct rg_promql_result rres;
        memset(&rres, 0, sizeof(rres));
        rg_buf_reset(&err);
        rc = rg_promql_eval_range(ctx->store, node, ev->at - 60000, ev->at + 60000, 60000,
                                  &ctx->opts, &rres, &err);
        if (rc != 0) {
            report(ctx, ev, "range-mode evaluation failed (%s): %s", rg_err_name(rc),
                   err.data ? err.data : "");
            bad = 1;
        } else if (rres.type != RG_PROMQL_VT_MATRIX) {
            report(ctx, ev, "range-mode evaluation did not return a matrix");
            bad = 1;
        } else if (res.type == RG_PROMQL_VT_SCALAR) {
            int ok = rres.nseries == 1 && rres.series[0].nlabels == 0;
            const struct rg_sample *pt = NULL;
            for (size_t k = 0; ok && k < rres.series[0].npoints; k++) {
                if (rres.series[0].points[k].t == ev->at)
                    pt = &rres.series[0].points[k];
            }
            if (!ok || pt == NULL || !values_equal(ev->exp[0].values[0], pt->v)) {
                report_mismatch(ctx, ev, &rres, "range mode", "scalar differs in range mode");
                bad = 1;
            }
        } else {
            bad |= check_label_sets(ctx, ev, &rres, "range mode") != 0;
            if (!bad)
                bad |= compare_instant(ctx, ev, &rres, ev->at, "range mode");
        }
        rg_promql_result_free(&rres);
    }
out:
    rg_promql_result_free(&res);
    rg_promql_node_free(node);
    rg_buf_cleanup(&err);
    return bad;
}

/* ---- File parsing --------------------------------------------------------- */

struct pqt_lines {
    char *text;       /* owned; the file with '\n' replaced by '\0' */
    char **line;      /* owned array of pointers into text, trimmed */
    size_t n;
};

static void lines_cleanup(struct pqt_lines *l)
{
    free(l->text);
    free(l->line);
    memset(l, 0, sizeof(*l));
}

static int lines_read(const char *path, struct pqt_lines *l)
{
    FILE *f = fopen(path, "rb");
    long size;
    size_t cap = 0;

    memset(l, 0, sizeof(*l));
    if (f == NULL)
        return RG_EIO;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto fail;
    l->text = malloc((size_t)size + 1);
    if (l->text == NULL || fread(l->text, 1, (size_t)size, f) != (size_t)size)
        goto fail;
    l->text[size] = '\0';
    fclose(f);
    f = NULL;
    for (char *p = l->text;;) {
        char *nl = strchr(p, '\n');
        if (nl != NULL)
            *nl = '\0';
        if (l->n == cap) {
            cap = cap ? cap * 2 : 256;
            char **nv = realloc(l->line, cap * sizeof(*nv));
            if (nv == NULL)
                goto fail;
            l->line = nv;
        }
        /* Trim both ends, as Prometheus does. */
        char *s = p;
        while (*s == ' ' || *s == '\t' || *s == '\r')
            s++;
        size_t len = strlen(s);
        while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
            s[--len] = '\0';
        l->line[l->n++] = s;
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return 0;
fail:
    if (f != NULL)
        fclose(f);
    lines_cleanup(l);
    return RG_ENOMEM;
}

static int is_comment(const char *s)
{
    return s[0] == '#';
}

/* Splits off the next whitespace-delimited word of *@pp. */
static int next_word(const char **pp, const char **w, size_t *wlen)
{
    const char *p = skip_ws(*pp);
    const char *s = p;

    while (*p != '\0' && *p != ' ' && *p != '\t')
        p++;
    if (p == s)
        return RG_EPARSE;
    *w = s;
    *wlen = (size_t)(p - s);
    *pp = p;
    return 0;
}

static int word_is(const char *w, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(w, lit, len) == 0;
}

static int fresh_store(struct pqt_ctx *ctx)
{
    struct rg_store_config cfg;

    rg_store_free(ctx->store);
    ctx->store = NULL;
    rg_store_config_default(&cfg);
    /* The data starts at the epoch and no one calls gc: keep everything. */
    cfg.retention_ms = INT64_MAX / 4;
    return rg_store_new(&cfg, &ctx->store);
}

static int load_series(struct pqt_ctx *ctx, const struct pqt_series *s, int64_t step)
{
    struct rg_label_ref refs[PQT_MAX_LABELS];
    struct rg_series *series;
    int rc;

    for (size_t i = 0; i < s->nlabels; i++) {
        refs[i].name.ptr = s->labels[i].name;
        refs[i].name.len = strlen(s->labels[i].name);
        refs[i].value.ptr = s->labels[i].value;
        refs[i].value.len = strlen(s->labels[i].value);
    }
    rc = rg_store_series_get(ctx->store, refs, s->nlabels, &series, NULL);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < s->nvalues; i++) {
        if (s->omitted[i])
            continue;
        rc = rg_store_append(ctx->store, series, (int64_t)i * step, s->values[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Parses an expected line: a bare number (scalar), a quoted string, or a label set
 * followed by values. */
static int parse_expected(const char *line, struct pqt_series *e)
{
    const char *p = line;
    double v;
    int rc;

    if (*p == '"' || *p == '\'' || *p == '`') {
        rc = parse_quoted(&p, &e->string);
        return rc != 0 ? rc : *skip_ws(p) == '\0' ? 0 : RG_EPARSE;
    }
    if (scan_number(&p, &v) == 0 && *skip_ws(p) == '\0') {
        e->scalar = 1;
        return push_value(e, v, 0);
    }
    p = line;
    if ((rc = parse_labelset(&p, e)) != 0)
        return rc;
    return parse_values(p, e);
}

static int add_expected(struct pqt_eval *ev, const char *line, int lineno)
{
    if (ev->nexp == ev->capexp) {
        size_t cap = ev->capexp ? ev->capexp * 2 : 8;
        struct pqt_series *nv = realloc(ev->exp, cap * sizeof(*nv));
        if (nv == NULL)
            return RG_ENOMEM;
        ev->exp = nv;
        ev->capexp = cap;
    }
    struct pqt_series *e = &ev->exp[ev->nexp];
    memset(e, 0, sizeof(*e));
    e->line = lineno;
    ev->nexp++;
    return parse_expected(line, e);
}

/* Splits "msg: text" or "regex: text" off an expect line: sets *@msg or *@re. */
static int expect_detail(const char *p, char **msg, char **re)
{
    char **dst;

    p = skip_ws(p);
    if (*p == '\0')
        return 0;
    if (strncmp(p, "msg:", 4) == 0) {
        dst = msg;
        p += 4;
    } else if (strncmp(p, "regex:", 6) == 0) {
        dst = re;
        p += 6;
    } else {
        return RG_EPARSE;
    }
    if (dst == NULL)
        return RG_EPARSE;
    free(*dst);
    *dst = strdup(skip_ws(p));
    return *dst != NULL ? 0 : RG_ENOMEM;
}

/* The `expect` lines of newer Prometheus test files: `expect fail [msg:|regex:]`,
 * `expect ordered`, `expect warn|info [regex:]`, `expect no_warn|no_info` and
 * `expect string "..."`. */
static int parse_expect(struct pqt_eval *ev, const char *p, int lineno)
{
    const char *w;
    size_t wl;
    int rc;

    if ((rc = next_word(&p, &w, &wl)) != 0)
        return rc;
    if (word_is(w, wl, "fail")) {
        ev->fail = 1;
        return expect_detail(p, &ev->fail_msg, &ev->fail_re);
    }
    if (word_is(w, wl, "ordered")) {
        ev->ordered = 1;
        return *skip_ws(p) == '\0' ? 0 : RG_EPARSE;
    }
    if (word_is(w, wl, "warn") || word_is(w, wl, "info")) {
        ev->want_ann = 1;
        return expect_detail(p, NULL, &ev->ann_re);
    }
    if (word_is(w, wl, "no_warn") || word_is(w, wl, "no_info")) {
        ev->want_ann = -1;
        return *skip_ws(p) == '\0' ? 0 : RG_EPARSE;
    }
    if (word_is(w, wl, "string"))
        return add_expected(ev, skip_ws(p), lineno);
    return RG_ENOTSUP;
}

/* Parses the eval command on @line into @ev (header only). */
static int parse_eval_header(const char *line, struct pqt_eval *ev)
{
    const char *p = line, *w;
    size_t wl;
    int rc;

    if ((rc = next_word(&p, &w, &wl)) != 0)
        return rc;
    if (word_is(w, wl, "eval_fail"))
        ev->fail = 1;
    else if (word_is(w, wl, "eval_ordered"))
        ev->ordered = 1;
    else if (word_is(w, wl, "eval_warn") || word_is(w, wl, "eval_info"))
        ev->want_ann = 1;
    else if (!word_is(w, wl, "eval"))
        return RG_EPARSE;
    if ((rc = next_word(&p, &w, &wl)) != 0)
        return rc;
    if (word_is(w, wl, "instant")) {
        const char *save = p;
        ev->at = 0;
        if (next_word(&p, &w, &wl) == 0 && word_is(w, wl, "at")) {
            if ((rc = next_word(&p, &w, &wl)) != 0 || (rc = parse_time(w, wl, &ev->at)) != 0)
                return RG_EPARSE;
        } else {
            p = save;
        }
    } else if (word_is(w, wl, "range")) {
        ev->range = 1;
        if (next_word(&p, &w, &wl) != 0 || !word_is(w, wl, "from") ||
            next_word(&p, &w, &wl) != 0 || parse_time(w, wl, &ev->start) != 0 ||
            next_word(&p, &w, &wl) != 0 || !word_is(w, wl, "to") ||
            next_word(&p, &w, &wl) != 0 || parse_time(w, wl, &ev->end) != 0 ||
            next_word(&p, &w, &wl) != 0 || !word_is(w, wl, "step") ||
            next_word(&p, &w, &wl) != 0 || parse_time(w, wl, &ev->step) != 0 ||
            ev->step <= 0)
            return RG_EPARSE;
    } else {
        return RG_EPARSE;
    }
    p = skip_ws(p);
    if (*p == '\0')
        return RG_EPARSE;
    ev->expr = strdup(p);
    return ev->expr != NULL ? 0 : RG_ENOMEM;
}

/* Runs (or, in dry-run mode, only parses) every command of the file. Syntax errors
 * in the file itself are reported like failing evals. Returns 0 or RG_EIO /
 * RG_ENOMEM when the file cannot be processed at all. */
static int run_file(struct pqt_ctx *ctx)
{
    struct pqt_lines l;
    int rc;

    if ((rc = lines_read(ctx->path, &l)) != 0)
        return rc;
    if ((rc = fresh_store(ctx)) != 0)
        goto out;
    for (size_t i = 0; i < l.n; i++) {
        const char *line = l.line[i];
        int lineno = (int)i + 1;
        const char *p = line, *w;
        size_t wl;

        if (*line == '\0' || is_comment(line))
            continue;
        if (next_word(&p, &w, &wl) != 0)
            continue;
        if (word_is(w, wl, "clear")) {
            if ((rc = fresh_store(ctx)) != 0)
                goto out;
            continue;
        }
        if (word_is(w, wl, "load")) {
            int64_t step;
            if (next_word(&p, &w, &wl) != 0 || parse_time(w, wl, &step) != 0 || step <= 0) {
                rg_buf_printf(&ctx->report, "%s:%d: bad load step\n", ctx->path, lineno);
                ctx->failed++;
                step = 60000;
            }
            for (i++; i < l.n && l.line[i][0] != '\0'; i++) {
                struct pqt_series s;
                const char *q = l.line[i];
                if (is_comment(q))
                    continue;
                memset(&s, 0, sizeof(s));
                rc = parse_labelset(&q, &s);
                if (rc == 0)
                    rc = parse_values(q, &s);
                if (rc != 0) {
                    rg_buf_printf(&ctx->report, "%s:%zu: bad series line (%s)\n",
                                  ctx->path, i + 1, rg_err_name(rc));
                    ctx->failed++;
                } else if (!ctx->dry_run && (rc = load_series(ctx, &s, step)) != 0) {
                    rg_buf_printf(&ctx->report, "%s:%zu: loading failed (%s)\n",
                                  ctx->path, i + 1, rg_err_name(rc));
                    ctx->failed++;
                }
                series_cleanup(&s);
            }
            continue;
        }
        if (strncmp(w, "eval", 4) == 0) {
            struct pqt_eval ev;
            memset(&ev, 0, sizeof(ev));
            ev.line = lineno;
            rc = parse_eval_header(line, &ev);
            if (rc != 0) {
                rg_buf_printf(&ctx->report, "%s:%d: bad eval command (%s)\n", ctx->path,
                              lineno, rg_err_name(rc));
                ctx->failed++;
                eval_cleanup(&ev);
                while (i + 1 < l.n && l.line[i + 1][0] != '\0')
                    i++;
                continue;
            }
            int syntax_ok = 1;
            for (i++; i < l.n && l.line[i][0] != '\0'; i++) {
                const char *q = l.line[i];
                if (is_comment(q))
                    continue;
                if (strncmp(q, "expected_fail_message ", 22) == 0) {
                    free(ev.fail_msg);
                    ev.fail_msg = strdup(skip_ws(q + 22));
                    continue;
                }
                if (strncmp(q, "expected_fail_regexp ", 21) == 0) {
                    free(ev.fail_re);
                    ev.fail_re = strdup(skip_ws(q + 21));
                    continue;
                }
                if (strncmp(q, "expect ", 7) == 0) {
                    if ((rc = parse_expect(&ev, q + 7, (int)i + 1)) != 0) {
                        rg_buf_printf(&ctx->report, "%s:%zu: bad expect line (%s)\n",
                                      ctx->path, i + 1, rg_err_name(rc));
                        syntax_ok = 0;
                    }
                    continue;
                }
                if ((rc = add_expected(&ev, q, (int)i + 1)) != 0) {
                    rg_buf_printf(&ctx->report, "%s:%zu: bad expected line (%s)\n",
                                  ctx->path, i + 1, rg_err_name(rc));
                    syntax_ok = 0;
                }
            }
            /* A scalar expectation must stand alone. */
            for (size_t k = 0; k < ev.nexp && ev.nexp > 1; k++) {
                if (ev.exp[k].scalar || ev.exp[k].string != NULL) {
                    rg_buf_printf(&ctx->report, "%s:%d: scalar expectation among others\n",
                                  ctx->path, ev.exp[k].line);
                    syntax_ok = 0;
                }
            }
            i--;
            ctx->evals++;
            if (!syntax_ok)
                ctx->failed++;
            else if (!ctx->dry_run && run_eval(ctx, &ev) != 0)
                ctx->failed++;
            eval_cleanup(&ev);
            continue;
        }
        rg_buf_printf(&ctx->report, "%s:%d: unknown command\n", ctx->path, lineno);
        ctx->failed++;
    }
    rc = 0;
out:
    rg_store_free(ctx->store);
    ctx->store = NULL;
    lines_cleanup(&l);
    return rc;
}

/* ---- cmocka cases --------------------------------------------------------- */

static void test_promqltest__file(void **state)
{
    struct pqt_ctx ctx;
    int rc;

    memset(&ctx, 0, sizeof(ctx));
    ctx.path = *state;
    rg_promql_opts_default(&ctx.opts);
    rc = run_file(&ctx);
    if (rc != 0)
        print_error("%s: cannot run: %s\n", ctx.path, rg_err_name(rc));
    /* The report goes straight to stderr: cmocka's own message functions cut
     * long messages, and a file's report can be long. */
    if (ctx.report.len > 0)
        fputs(ctx.report.data, stderr);
    fprintf(stderr, "promqltest: %s: %d evals, %d failed\n", ctx.path, ctx.evals, ctx.failed);
    fflush(stderr);
    rg_buf_cleanup(&ctx.report);
    assert_int_equal(rc, 0);
    assert_true(ctx.evals > 0);
    assert_int_equal(ctx.failed, 0);
}

/* The notation expander on its own, so a runner bug shows up as itself rather
 * than as a wrong engine result. */
static void test_promqltest__expand_notation(void **state)
{
    static const struct {
        const char *in;
        const char *out;    /* values as "%g", `_` for omitted, space separated */
    } cases[] = {
        { "1 2 3", "1 2 3" },
        { "0+10x3", "0 10 20 30" },
        { "10-2x2", "10 8 6" },
        { "-1-1x2", "-1 -2 -3" },
        { "5x2", "5 5 5" },
        { "_ 1 _x2 2", "_ 1 _ _ 2" },
        { "1 stale 2", "1 stale 2" },
        { "Inf -Inf NaN", "inf -inf nan" },
        { "1e3+1e2x1", "1000 1100" },
        { "0.1+0.1x2", "0.1 0.2 0.3" },
        { "1+-1x1", NULL },
        { "1x", NULL },
        { "abc", NULL },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pqt_series s;
        struct rg_buf b = { 0 };
        memset(&s, 0, sizeof(s));
        int rc = parse_values(cases[i].in, &s);
        if (cases[i].out == NULL) {
            assert_int_not_equal(rc, 0);
            series_cleanup(&s);
            continue;
        }
        assert_int_equal(rc, 0);
        for (size_t k = 0; k < s.nvalues; k++) {
            if (k)
                rg_buf_putc(&b, ' ');
            if (s.omitted[k])
                rg_buf_putc(&b, '_');
            else if (rg_is_stale_nan(s.values[k]))
                rg_buf_puts(&b, "stale");
            else
                rg_buf_printf(&b, "%g", s.values[k]);
        }
        assert_string_equal(b.data, cases[i].out);
        rg_buf_cleanup(&b);
        series_cleanup(&s);
    }
}

/* Label sets and durations as the files write them. */
static void test_promqltest__parse_labels_and_times(void **state)
{
    struct pqt_series s;
    const char *p = "foo{b=\"2\", a=\"x\\\"y\"} 1";
    int64_t t;

    (void)state;
    memset(&s, 0, sizeof(s));
    assert_int_equal(parse_labelset(&p, &s), 0);
    assert_int_equal(s.nlabels, 3);
    assert_string_equal(s.labels[0].name, "__name__");
    assert_string_equal(s.labels[0].value, "foo");
    assert_string_equal(s.labels[1].name, "a");
    assert_string_equal(s.labels[1].value, "x\"y");
    assert_string_equal(s.labels[2].name, "b");
    series_cleanup(&s);

    p = "{\"__name__\"=\"bar\", \"c\"=\"d\"}";
    assert_int_equal(parse_labelset(&p, &s), 0);
    assert_int_equal(s.nlabels, 2);
    assert_string_equal(s.labels[0].value, "bar");
    series_cleanup(&s);

    p = "x{a=\"1\", a=\"2\"}";
    assert_int_not_equal(parse_labelset(&p, &s), 0);
    series_cleanup(&s);

    assert_int_equal(parse_time("10m", 3, &t), 0);
    assert_int_equal(t, 600000);
    assert_int_equal(parse_time("1h30m", 5, &t), 0);
    assert_int_equal(t, 5400000);
    assert_int_equal(parse_time("0", 1, &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(parse_time("1000", 4, &t), 0);
    assert_int_equal(t, 1000000);
    assert_int_equal(parse_time("500ms", 5, &t), 0);
    assert_int_equal(t, 500);
    assert_int_not_equal(parse_time("5q", 2, &t), 0);

    assert_true(values_equal(1.0, 1.0 + 1e-12));
    assert_false(values_equal(1.0, 1.0 + 1e-6));
    assert_true(values_equal(NAN, NAN));
    assert_false(values_equal(NAN, rg_stale_nan()));
    assert_false(values_equal(INFINITY, -INFINITY));
}

/* Eval headers and expect lines, including the malformed ones. */
static void test_promqltest__parse_commands(void **state)
{
    static const struct {
        const char *header;
        const char *expect;     /* an expect line's rest, or NULL */
        int rc;                 /* 0, or non-zero for "must be rejected" */
        int fail, ordered, want_ann, range;
        int64_t at, start, end, step;
        const char *expr;
    } cases[] = {
        { "eval instant at 10m sum(x)", NULL, 0, 0, 0, 0, 0, 600000, 0, 0, 0, "sum(x)" },
        { "eval_fail instant at 1h x", NULL, 0, 1, 0, 0, 0, 3600000, 0, 0, 0, "x" },
        { "eval_ordered instant at 0 topk(1, x)", NULL, 0, 0, 1, 0, 0, 0, 0, 0, 0,
          "topk(1, x)" },
        { "eval_warn instant at 5s x", NULL, 0, 0, 0, 1, 0, 5000, 0, 0, 0, "x" },
        { "eval_info instant at 5s x", NULL, 0, 0, 0, 1, 0, 5000, 0, 0, 0, "x" },
        { "eval range from 0 to 10m step 1m rate(x[5m])", NULL, 0, 0, 0, 0, 1, 0, 0, 600000,
          60000, "rate(x[5m])" },
        { "eval instant at 0 x", "fail regex: boom", 0, 1, 0, 0, 0, 0, 0, 0, 0, "x" },
        { "eval instant at 0 x", "ordered", 0, 0, 1, 0, 0, 0, 0, 0, 0, "x" },
        { "eval instant at 0 x", "no_warn", 0, 0, 0, -1, 0, 0, 0, 0, 0, "x" },
        { "eval instant at 0 x", "info", 0, 0, 0, 1, 0, 0, 0, 0, 0, "x" },
        { "eval instant at 0 x", "range vector from 0 to 1m step 1m", 1, 0, 0, 0, 0, 0, 0, 0,
          0, NULL },
        { "eval instant at 0 x", "fail because", 1, 0, 0, 0, 0, 0, 0, 0, 0, NULL },
        { "eval range from 0 to 1m step 0 x", NULL, 1, 0, 0, 0, 0, 0, 0, 0, 0, NULL },
        { "eval range from 0 to 1m x", NULL, 1, 0, 0, 0, 0, 0, 0, 0, 0, NULL },
        { "eval instant at 10q x", NULL, 1, 0, 0, 0, 0, 0, 0, 0, 0, NULL },
        { "eval_bogus instant at 0 x", NULL, 1, 0, 0, 0, 0, 0, 0, 0, 0, NULL },
        { "eval instant at 0", NULL, 1, 0, 0, 0, 0, 0, 0, 0, 0, NULL },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pqt_eval ev;
        memset(&ev, 0, sizeof(ev));
        int rc = parse_eval_header(cases[i].header, &ev);
        if (rc == 0 && cases[i].expect != NULL)
            rc = parse_expect(&ev, cases[i].expect, 1);
        if (cases[i].rc != 0) {
            assert_int_not_equal(rc, 0);
            eval_cleanup(&ev);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(ev.fail, cases[i].fail);
        assert_int_equal(ev.ordered, cases[i].ordered);
        assert_int_equal(ev.want_ann, cases[i].want_ann);
        assert_int_equal(ev.range, cases[i].range);
        assert_int_equal(ev.at, cases[i].at);
        assert_int_equal(ev.start, cases[i].start);
        assert_int_equal(ev.end, cases[i].end);
        assert_int_equal(ev.step, cases[i].step);
        assert_string_equal(ev.expr, cases[i].expr);
        eval_cleanup(&ev);
    }
}

/* The corpus is split by topic and holds enough evals to mean something; this
 * parses every file without evaluating, so a malformed file fails here too. */
static void test_promqltest__corpus(void **state)
{
    glob_t g;
    int evals = 0;

    (void)state;
    assert_int_equal(glob(PQT_DIR "/*.test", 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= PQT_MIN_FILES);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        struct pqt_ctx ctx;
        memset(&ctx, 0, sizeof(ctx));
        ctx.path = g.gl_pathv[i];
        ctx.dry_run = 1;
        assert_int_equal(run_file(&ctx), 0);
        if (ctx.report.len > 0)
            fputs(ctx.report.data, stderr);
        rg_buf_cleanup(&ctx.report);
        assert_int_equal(ctx.failed, 0);
        evals += ctx.evals;
    }
    fprintf(stderr, "promqltest: corpus: %zu files, %d evals\n", g.gl_pathc, evals);
    globfree(&g);
    assert_true(evals >= PQT_MIN_EVALS);
}

int main(void)
{
    glob_t g;
    struct CMUnitTest *tests;
    char **names;
    size_t n = 0;
    int rc;

    if (glob(PQT_DIR "/*.test", 0, NULL, &g) != 0)
        g.gl_pathc = 0;
    tests = calloc(g.gl_pathc + 4, sizeof(*tests));
    names = calloc(g.gl_pathc + 1, sizeof(*names));
    if (tests == NULL || names == NULL) {
        fprintf(stderr, "promqltest: out of memory\n");
        return 1;
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_promqltest__expand_notation);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_promqltest__parse_labels_and_times);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_promqltest__parse_commands);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_promqltest__corpus);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *base = strrchr(g.gl_pathv[i], '/');
        base = base ? base + 1 : g.gl_pathv[i];
        size_t len = strlen(base);
        if (len > 5)
            len -= 5;   /* drop ".test" */
        struct rg_buf b = { 0 };
        rg_buf_printf(&b, "test_promqltest__%.*s", (int)len, base);
        names[i] = rg_buf_steal(&b, NULL);
        tests[n].name = names[i];
        tests[n].test_func = test_promqltest__file;
        tests[n].initial_state = g.gl_pathv[i];
        n++;
    }
    rc = _cmocka_run_group_tests("promqltest", tests, n, NULL, NULL);
    for (size_t i = 0; i < g.gl_pathc; i++)
        free(names[i]);
    free(names);
    free(tests);
    globfree(&g);
    return rc;
}
