/* query/response.c - streaming parser of Prometheus HTTP API query responses.
 *
 * yajl's event parser turns the bytes into callbacks; a pushdown automaton over the
 * few containers we understand (root object, "data", "result", one series, its
 * "metric", its "values", one [t, "v"] point, the "warnings"/"infos" arrays) gives
 * each callback its meaning. The stack holds at most six known frames; anything under
 * an unknown key is skipped by counting container starts and ends, and the total
 * nesting depth is capped so that a "[[[[..." attack costs nothing.
 *
 * Memory: label strings, label arrays and points are carved from a chunked bump
 * arena (blocks doubling from 4 KiB to 1 MiB) that the result owns, so a 50 MB
 * response makes a few hundred allocations, not millions. A series is built in
 * reusable scratch arrays (labels in arrival order, points) and copied into the arena
 * when its object closes, because "metric" may come after "values". Label names and
 * values equal to the previous series' label at the same position reuse its copy:
 * servers write series with the same label names in the same order, so most names and
 * many values are stored once.
 *
 * Numbers: timestamps are converted from the decimal text yajl hands over, as an
 * integer mantissa and a power of ten, so 1435781451.781 is exactly 1435781451781 ms
 * (going through a double would give ...780.99). Values take Clinger's fast path (an
 * integer mantissa <= 2^53 times or divided by an exact power of ten <= 10^22 is one
 * correctly rounded IEEE operation) and fall back to strtod for anything else.
 *
 * UTF-8: yajl checks it while lexing strings. That costs one extra table bit for ASCII
 * bytes, so it stays on; results may go out again in JSON, logs and notifications.
 */
#include "query/response.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "util/err.h"

#define DEPTH_MAX        64          /* JSON nesting accepted; Prometheus' deepest is 6 */
#define STACK_MAX        8           /* known frames; the deepest known path has 6 */
#define ARENA_FIRST      4096
#define ARENA_BLOCK_MAX  (1u << 20)
#define VALUE_TEXT_MAX   1024        /* longest sample value text handed to strtod */
#define PATH_KEY_MAX     64          /* bytes of a key quoted in an error path */

#define DEF_MAX_BYTES    ((size_t)64 << 20)
#define DEF_MAX_SERIES   ((size_t)1000000)
#define DEF_MAX_POINTS   ((size_t)20000000)

/* ---- Arena -------------------------------------------------------------------------- */

struct blk {
    struct blk *next;
    size_t used;
    size_t cap;
    size_t pad;          /* keeps the payload 16-byte aligned after the header */
};

struct arena {
    struct blk *head;    /* owned list, newest first */
    size_t next_cap;     /* payload size of the next regular block */
};

static void *arena_alloc(struct arena *a, size_t n, size_t align)
{
    struct blk *b = a->head;
    size_t off;

    if (b) {
        off = (b->used + align - 1) & ~(align - 1);
        if (off <= b->cap && n <= b->cap - off) {
            b->used = off + n;
            return (char *)(b + 1) + off;
        }
    }
    if (!a->next_cap)
        a->next_cap = ARENA_FIRST;
    if (n > a->next_cap / 4) {
        /* A large piece gets a block of its own, linked behind the current one so
         * that the current block's free space is not abandoned. */
        struct blk *big = malloc(sizeof(*big) + n);

        if (!big)
            return NULL;
        big->used = big->cap = n;
        if (b) {
            big->next = b->next;
            b->next = big;
        } else {
            big->next = NULL;
            a->head = big;
        }
        return big + 1;
    }
    b = malloc(sizeof(*b) + a->next_cap);
    if (!b)
        return NULL;
    b->cap = a->next_cap;
    b->used = n;
    b->next = a->head;
    a->head = b;
    if (a->next_cap < ARENA_BLOCK_MAX)
        a->next_cap *= 2;
    return b + 1;
}

static char *arena_strndup(struct arena *a, const void *s, size_t len)
{
    char *d = arena_alloc(a, len + 1, 1);

    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

static void arena_clear(struct arena *a)
{
    struct blk *b, *next;

    if (!a)
        return;
    for (b = a->head; b; b = next) {
        next = b->next;
        free(b);
    }
    a->head = NULL;
    a->next_cap = 0;
}

/* ---- Parser state -------------------------------------------------------------------- */

enum frame_kind {
    F_ROOT,      /* the top-level object */
    F_DATA,      /* "data" */
    F_RESULT,    /* "data"."result": series list, or [t, "v"] for scalar and string */
    F_SERIES,    /* one element of a series list */
    F_METRIC,    /* a series' "metric" */
    F_VALUES,    /* a series' "values" */
    F_POINT,     /* a series' "value", or one element of "values" */
    F_STRS,      /* "warnings" or "infos" */
};

enum want {
    W_NONE,
    W_SKIP,
    W_STATUS,
    W_ERRTYPE,
    W_ERROR,
    W_WARNINGS,
    W_INFOS,
    W_DATA,
    W_RTYPE,
    W_RESULT,
    W_METRIC,
    W_VALUE,
    W_VALUES,
    W_HIST,
    W_LABEL,
};

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_MAP, J_ARR };

static const char *const jtype_name[] = {
    "null", "boolean", "number", "string", "object", "array",
};

enum shape { SHAPE_NONE, SHAPE_SERIES, SHAPE_PAIR };

enum status { ST_NONE, ST_SUCCESS, ST_ERROR, ST_OTHER };

struct frame {
    unsigned char kind;      /* enum frame_kind */
    unsigned char want;      /* maps: meaning of the value after the last key */
    unsigned char aux;       /* F_STRS: W_WARNINGS or W_INFOS; F_POINT: 1 in "values" */
    const char *key;         /* maps: the last key (static or arena string), or NULL */
    size_t idx;              /* arrays: elements begun so far */
};

struct lab {                 /* a label in arrival order; strings in the arena */
    const char *name;
    const char *value;
    size_t nlen;
    size_t vlen;
};

struct strv {                /* growable array of arena strings */
    char **v;
    size_t n;
    size_t cap;
};

struct rg_query_parser {
    struct rg_query_parse_opts opts;
    yajl_handle y;
    int err;                     /* first error, sticky */
    struct rg_buf msg;           /* its message */
    size_t fed;                  /* body bytes fed so far */
    int done;                    /* the root object closed */

    struct frame st[STACK_MAX];
    int nst;
    int depth;                   /* open containers, skipped ones included */
    int skip;                    /* > 0: open containers of a skipped value */

    /* Envelope. */
    enum status status;
    const char *status_text;     /* arena */
    const char *error_type;      /* arena */
    const char *error;           /* arena */
    int seen_data, seen_rtype, seen_result;
    int data_bad;                /* 1 + enum jtype of a "data" that is not an object */
    int rtype;                   /* enum rg_promql_vtype of "resultType" */
    enum shape shape;
    size_t first_value;          /* 1 + index of the first series with "value", or 0 */
    size_t first_values;         /* the same for "values" */
    int pair_has_t;
    int64_t pair_t;
    const char *pair_v;          /* arena; NUL-terminated */
    size_t pair_vlen;

    /* The series being read. */
    size_t nseries_seen;         /* series objects begun, dropped ones included */
    int cur_metric, cur_value, cur_values, cur_hist;
    struct lab *cur;             /* scratch, arrival order */
    size_t ncur, capcur;
    struct lab *prev;            /* the previous series' labels, arrival order */
    size_t nprev, capprev;
    struct rg_sample *pts;       /* scratch */
    size_t npts, cappts;
    int64_t point_t;
    size_t points_total;
    size_t hist_series;          /* series dropped for carrying only histograms */
    size_t hist_mixed;           /* series that kept floats but lost histograms */

    /* The result being built. */
    struct arena *ar;
    struct rg_promql_series *series;
    size_t nseries, capseries;
    struct strv warnings;
    struct strv infos;
};

/* ---- Errors and paths ------------------------------------------------------------------ */

static int is_map_frame(int kind)
{
    return kind == F_ROOT || kind == F_DATA || kind == F_SERIES || kind == F_METRIC;
}

/* Writes the JSON path of the current position: every frame's current key or index.
 * @elem says whether the error concerns the current value inside the top frame (its
 * key or index is included) or the top container itself. */
static void put_path(struct rg_query_parser *p, int elem)
{
    int j;

    for (j = 0; j < p->nst; j++) {
        const struct frame *f = &p->st[j];
        int last = j == p->nst - 1;

        if (last && !elem)
            break;
        if (is_map_frame(f->kind)) {
            if (f->key) {
                size_t n = strlen(f->key);

                if (p->msg.len)
                    rg_buf_putc(&p->msg, '.');
                rg_buf_append(&p->msg, f->key, n < PATH_KEY_MAX ? n : PATH_KEY_MAX);
                if (n > PATH_KEY_MAX)
                    rg_buf_puts(&p->msg, "...");
            }
        } else if (f->idx) {
            rg_buf_printf(&p->msg, "[%zu]", f->idx - 1);
        }
    }
    if (p->msg.len)
        rg_buf_puts(&p->msg, ": ");
}

/* Records the first error with its message (prefixed by the JSON path when @path is
 * non-negative: see put_path) and returns 0, which makes yajl cancel the parse. */
__attribute__((format(printf, 4, 5)))
static int fail(struct rg_query_parser *p, int code, int path, const char *fmt, ...)
{
    va_list ap;

    if (p->err)
        return 0;
    p->err = code;
    rg_buf_reset(&p->msg);
    if (code == RG_ENOMEM) {
        rg_buf_puts(&p->msg, "out of memory");
        return 0;
    }
    if (path >= 0)
        put_path(p, path);
    va_start(ap, fmt);
    rg_buf_vprintf(&p->msg, fmt, ap);
    va_end(ap);
    return 0;
}

static int oom(struct rg_query_parser *p)
{
    return fail(p, RG_ENOMEM, -1, "out of memory");
}

/* fail() for code outside callbacks: returns the (first) error code. */
#define FAIL_RC(p, ...) (fail((p), __VA_ARGS__), (p)->err)

/* ---- Numbers ---------------------------------------------------------------------------- */

static const uint64_t pow10_u64[20] = {
    1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
    100000000ull, 1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull,
    10000000000000ull, 100000000000000ull, 1000000000000000ull, 10000000000000000ull,
    100000000000000000ull, 1000000000000000000ull, 10000000000000000000ull,
};

static const double pow10_dbl[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* The digits of a decimal number as mantissa * 10^exp10: up to 19 significant digits
 * are kept, the first dropped one is remembered for rounding. */
struct decimal {
    int neg;
    uint64_t mant;
    int exp10;
    int ndigits;         /* significant digits kept */
    int round_digit;     /* first dropped digit, or 0 */
    int dropped;         /* digits dropped */
};

/* Scans [+-]digits[.digits][(e|E)[+-]digits] over all of s..e.
 * Returns 0, or -1 when the text is something else. */
static int scan_decimal(const char *s, const char *e, int allow_plus, struct decimal *d)
{
    int any = 0, frac = 0;

    memset(d, 0, sizeof(*d));
    if (s < e && (*s == '-' || (allow_plus && *s == '+')))
        d->neg = *s++ == '-';
    for (; s < e; s++) {
        unsigned c = (unsigned char)*s;

        if (c == '.' && !frac) {
            frac = 1;
            continue;
        }
        if (c - '0' > 9)
            break;
        any = 1;
        if (d->mant == 0 && c == '0') {
            /* Leading zeros are not significant; in a fraction they shift the point. */
            if (frac)
                d->exp10--;
            continue;
        }
        if (d->ndigits < 19) {
            d->mant = d->mant * 10 + (c - '0');
            d->ndigits++;
            if (frac)
                d->exp10--;
        } else {
            if (!d->dropped)
                d->round_digit = (int)(c - '0');
            d->dropped++;
            if (!frac)
                d->exp10++;
        }
    }
    if (!any)
        return -1;
    if (s < e && (*s == 'e' || *s == 'E')) {
        int eneg = 0, edig = 0;
        long x = 0;

        s++;
        if (s < e && (*s == '+' || *s == '-'))
            eneg = *s++ == '-';
        for (; s < e && (unsigned)(*s - '0') <= 9; s++, edig++)
            if (x < 100000)
                x = x * 10 + (*s - '0');
        if (!edig)
            return -1;
        d->exp10 += (int)(eneg ? -x : x);
    }
    return s == e ? 0 : -1;
}

int rg_query_parse_time(const char *s, size_t len, int64_t *ms)
{
    struct decimal d;
    uint64_t q;
    int k;

    if (scan_decimal(s, s + len, 0, &d))
        return RG_EINVAL;
    k = d.exp10 + 3;   /* seconds to milliseconds */
    if (d.mant == 0) {
        q = 0;
    } else if (k >= 0) {
        if (k > 19 || d.mant > UINT64_MAX / pow10_u64[k])
            return RG_EINVAL;
        q = d.mant * pow10_u64[k];
        /* Dropped digits lie below the last kept one; with k == 0 that is below a
         * millisecond, so they round. With k > 0 the value has overflowed already. */
        if (k == 0 && d.dropped && d.round_digit >= 5)
            q++;
    } else if (-k > 19) {
        q = 0;
    } else {
        uint64_t pw = pow10_u64[-k];

        q = d.mant / pw;
        if (d.mant % pw >= pw / 2)
            q++;
    }
    if (q > (uint64_t)INT64_MAX)
        return RG_EINVAL;
    *ms = d.neg ? -(int64_t)q : (int64_t)q;
    return 0;
}

static int lower_eq(const char *s, size_t len, const char *lit)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (!lit[i] || c != (unsigned char)lit[i])
            return 0;
    }
    return lit[len] == '\0';
}

int rg_query_parse_value(const char *s, size_t len, double *v)
{
    struct decimal d;
    char tmp[VALUE_TEXT_MAX + 1];
    const char *body = s;
    size_t blen = len;
    char *end;
    double x;

    if (!scan_decimal(s, s + len, 1, &d)) {
        if (!d.dropped && d.mant <= (1ull << 53) && d.exp10 >= -22 && d.exp10 <= 22) {
            x = (double)d.mant;
            x = d.exp10 < 0 ? x / pow10_dbl[-d.exp10] : x * pow10_dbl[d.exp10];
            *v = d.neg ? -x : x;
            return 0;
        }
    } else {
        int sign = 0;

        if (len && (s[0] == '+' || s[0] == '-')) {
            sign = s[0] == '-' ? -1 : 1;
            body = s + 1;
            blen = len - 1;
        }
        if (lower_eq(body, blen, "inf") || lower_eq(body, blen, "infinity")) {
            *v = sign < 0 ? -INFINITY : INFINITY;
            return 0;
        }
        if (!sign && lower_eq(body, blen, "nan")) {
            *v = NAN;
            return 0;
        }
        /* Hexadecimal floats ("0x1p-3") are the only other spelling Go accepts. */
        if (blen < 2 || body[0] != '0' || (body[1] != 'x' && body[1] != 'X'))
            return RG_EINVAL;
    }
    if (len == 0 || len > VALUE_TEXT_MAX || memchr(s, '\0', len))
        return RG_EINVAL;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    x = strtod(tmp, &end);
    if (end != tmp + len)
        return RG_EINVAL;
    *v = x;
    return 0;
}

/* ---- Building the result ---------------------------------------------------------------- */

static int strv_push(struct strv *sv, char *s)
{
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 8;
        char **v = realloc(sv->v, cap * sizeof(*v));

        if (!v)
            return RG_ENOMEM;
        sv->v = v;
        sv->cap = cap;
    }
    sv->v[sv->n++] = s;
    return 0;
}

/* Copies @s (@len bytes) into the arena, reusing @prev's copy when the bytes match. */
static const char *intern_like(struct rg_query_parser *p, const char *s, size_t len,
                               const char *prev, size_t prevlen)
{
    if (prev && prevlen == len && memcmp(prev, s, len) == 0)
        return prev;
    return arena_strndup(p->ar, s, len);
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct rg_label *)a)->name, ((const struct rg_label *)b)->name);
}

static int series_begin(struct rg_query_parser *p)
{
    if (p->nseries_seen >= p->opts.max_series)
        return fail(p, RG_ETOOBIG, 1, "response too large: more than %zu series",
                    p->opts.max_series);
    p->nseries_seen++;
    p->cur_metric = p->cur_value = p->cur_values = p->cur_hist = 0;
    p->ncur = 0;
    p->npts = 0;
    return 1;
}

/* Moves the series just closed into the result: labels sorted by name (servers
 * already sort them, so this is usually one pass), points copied into the arena. */
static int series_commit(struct rg_query_parser *p)
{
    struct rg_promql_series *s;
    struct rg_label *l = NULL;
    struct lab *tmp;
    size_t i, tcap;
    int sorted = 1;

    if (!p->cur_value && !p->cur_values && !p->cur_hist)
        return fail(p, RG_EBADMSG, 0, "series has no \"value\" or \"values\"");
    if (p->cur_hist) {
        if (!p->npts) {
            p->hist_series++;
            goto keep_labels;
        }
        p->hist_mixed++;
    }
    if (!p->npts)
        goto keep_labels;   /* an empty "values": nothing to evaluate */
    if (p->nseries == p->capseries) {
        size_t cap = p->capseries ? p->capseries * 2 : 16;
        struct rg_promql_series *ns = realloc(p->series, cap * sizeof(*ns));

        if (!ns)
            return oom(p);
        p->series = ns;
        p->capseries = cap;
    }
    if (p->ncur) {
        l = arena_alloc(p->ar, p->ncur * sizeof(*l), _Alignof(struct rg_label));
        if (!l)
            return oom(p);
        for (i = 0; i < p->ncur; i++) {
            l[i].name = p->cur[i].name;
            l[i].value = p->cur[i].value;
            if (i && sorted) {
                int c = strcmp(l[i - 1].name, l[i].name);

                if (c == 0)
                    return fail(p, RG_EBADMSG, 0, "duplicate label name \"%.*s\"",
                                PATH_KEY_MAX, l[i].name);
                sorted = c < 0;
            }
        }
        if (!sorted) {
            qsort(l, p->ncur, sizeof(*l), label_cmp);
            for (i = 1; i < p->ncur; i++)
                if (strcmp(l[i - 1].name, l[i].name) == 0)
                    return fail(p, RG_EBADMSG, 0, "duplicate label name \"%.*s\"",
                                PATH_KEY_MAX, l[i].name);
        }
    }
    s = &p->series[p->nseries];
    s->labels = l;
    s->nlabels = p->ncur;
    s->npoints = p->npts;
    s->points = arena_alloc(p->ar, p->npts * sizeof(*s->points), _Alignof(struct rg_sample));
    if (!s->points)
        return oom(p);
    memcpy(s->points, p->pts, p->npts * sizeof(*s->points));
    p->nseries++;
keep_labels:
    /* The next series compares its labels with these (see intern_like). */
    tmp = p->prev;
    tcap = p->capprev;
    p->prev = p->cur;
    p->capprev = p->capcur;
    p->nprev = p->ncur;
    p->cur = tmp;
    p->capcur = tcap;
    p->ncur = 0;
    return 1;
}

static int label_name(struct rg_query_parser *p, const char *s, size_t len)
{
    struct lab *lb;
    size_t k = p->ncur;

    /* "\u0000" would cut the C string that every consumer of labels sees. */
    if (memchr(s, '\0', len))
        return fail(p, RG_EBADMSG, 0, "label name contains a NUL character");
    if (k == p->capcur) {
        size_t cap = p->capcur ? p->capcur * 2 : 16;
        struct lab *n = realloc(p->cur, cap * sizeof(*n));

        if (!n)
            return oom(p);
        p->cur = n;
        p->capcur = cap;
    }
    lb = &p->cur[k];
    lb->name = intern_like(p, s, len, k < p->nprev ? p->prev[k].name : NULL,
                           k < p->nprev ? p->prev[k].nlen : 0);
    if (!lb->name)
        return oom(p);
    lb->nlen = len;
    lb->value = NULL;
    lb->vlen = 0;
    p->st[p->nst - 1].key = lb->name;
    return 1;
}

static int label_value(struct rg_query_parser *p, const char *s, size_t len)
{
    size_t k = p->ncur;
    struct lab *lb = &p->cur[k];

    if (memchr(s, '\0', len))
        return fail(p, RG_EBADMSG, 1, "label value contains a NUL character");
    lb->value = intern_like(p, s, len, k < p->nprev ? p->prev[k].value : NULL,
                            k < p->nprev ? p->prev[k].vlen : 0);
    if (!lb->value)
        return oom(p);
    lb->vlen = len;
    p->ncur++;
    return 1;
}

static int point_value(struct rg_query_parser *p, const char *s, size_t len)
{
    double v;

    if (rg_query_parse_value(s, len, &v))
        return fail(p, RG_EBADMSG, 1, "invalid sample value \"%.*s\"",
                    (int)(len < PATH_KEY_MAX ? len : PATH_KEY_MAX), s);
    /* Consumers assume oldest first, as from the local engine; a server that breaks
     * that is answering wrongly, and silently reordering would hide it. */
    if (p->npts && p->point_t <= p->pts[p->npts - 1].t)
        return fail(p, RG_EBADMSG, 0, "timestamps must increase");
    if (p->points_total >= p->opts.max_points)
        return fail(p, RG_ETOOBIG, 1, "response too large: more than %zu points",
                    p->opts.max_points);
    if (p->npts == p->cappts) {
        size_t cap = p->cappts ? p->cappts * 2 : 64;
        struct rg_sample *n = realloc(p->pts, cap * sizeof(*n));

        if (!n)
            return oom(p);
        p->pts = n;
        p->cappts = cap;
    }
    p->pts[p->npts].t = p->point_t;
    p->pts[p->npts].v = v;
    p->npts++;
    p->points_total++;
    return 1;
}

static int push(struct rg_query_parser *p, enum frame_kind kind, int aux)
{
    struct frame *f;

    if (p->nst == STACK_MAX)
        return fail(p, RG_EBADMSG, 1, "unexpected nesting");
    f = &p->st[p->nst++];
    f->kind = (unsigned char)kind;
    f->want = W_NONE;
    f->aux = (unsigned char)aux;
    f->key = NULL;
    f->idx = 0;
    return 1;
}

static int rtype_from(const char *s, size_t len)
{
    if (len == 6 && !memcmp(s, "vector", 6))
        return RG_PROMQL_VT_VECTOR;
    if (len == 6 && !memcmp(s, "matrix", 6))
        return RG_PROMQL_VT_MATRIX;
    if (len == 6 && !memcmp(s, "scalar", 6))
        return RG_PROMQL_VT_SCALAR;
    if (len == 6 && !memcmp(s, "string", 6))
        return RG_PROMQL_VT_STRING;
    return -1;
}

static const char *rtype_name(int t)
{
    switch (t) {
    case RG_PROMQL_VT_VECTOR: return "vector";
    case RG_PROMQL_VT_MATRIX: return "matrix";
    case RG_PROMQL_VT_SCALAR: return "scalar";
    case RG_PROMQL_VT_STRING: return "string";
    default: return "none";
    }
}

static int is_series_type(int t)
{
    return t == RG_PROMQL_VT_VECTOR || t == RG_PROMQL_VT_MATRIX;
}

/* The shape of "result" must agree with "resultType", whichever came first. */
static int check_shape(struct rg_query_parser *p)
{
    if (!p->seen_rtype || p->shape == SHAPE_NONE)
        return 1;
    if (is_series_type(p->rtype) && p->shape != SHAPE_SERIES)
        return fail(p, RG_EBADMSG, -1, "data.result: a %s result must be an array of "
                    "series objects", rtype_name(p->rtype));
    if (!is_series_type(p->rtype) && p->shape != SHAPE_PAIR)
        return fail(p, RG_EBADMSG, -1, "data.result: a %s result must be "
                    "[<time>, \"<value>\"]", rtype_name(p->rtype));
    return 1;
}

/* ---- Events ------------------------------------------------------------------------------ */

static int type_error(struct rg_query_parser *p, enum jtype got, const char *what)
{
    return fail(p, RG_EBADMSG, 1, "%s, got %s", what, jtype_name[got]);
}

/* The value of a key in one of the known objects begins. */
static int map_value(struct rg_query_parser *p, struct frame *f, enum jtype jt,
                     const char *s, size_t len)
{
    int w = f->want;

    f->want = W_NONE;
    switch (w) {
    case W_SKIP:
        if (jt == J_MAP || jt == J_ARR)
            p->skip = 1;
        return 1;
    case W_HIST:
        p->cur_hist = 1;
        if (jt == J_MAP || jt == J_ARR)
            p->skip = 1;
        return 1;
    case W_STATUS:
        if (jt != J_STR)
            return type_error(p, jt, "status must be a string");
        if (len == 7 && !memcmp(s, "success", 7))
            p->status = ST_SUCCESS;
        else if (len == 5 && !memcmp(s, "error", 5))
            p->status = ST_ERROR;
        else
            p->status = ST_OTHER;
        if (!(p->status_text = arena_strndup(p->ar, s, len)))
            return oom(p);
        return 1;
    case W_ERRTYPE:
    case W_ERROR:
        if (jt == J_NULL)
            return 1;
        if (jt != J_STR)
            return type_error(p, jt, "must be a string");
        s = arena_strndup(p->ar, s, len);
        if (!s)
            return oom(p);
        if (w == W_ERRTYPE)
            p->error_type = s;
        else
            p->error = s;
        return 1;
    case W_WARNINGS:
    case W_INFOS:
        if (jt == J_NULL)
            return 1;
        if (jt != J_ARR)
            return type_error(p, jt, "must be an array of strings");
        return push(p, F_STRS, w);
    case W_DATA:
        if (jt == J_NULL)
            return 1;
        if (jt != J_MAP) {
            /* Judged once the status is known: an error response may carry anything
             * here, and its errorType and error are what the caller needs. */
            p->data_bad = (int)jt + 1;
            if (jt == J_ARR)
                p->skip = 1;
            return 1;
        }
        p->seen_data = 1;
        return push(p, F_DATA, 0);
    case W_RTYPE:
        if (jt != J_STR)
            return type_error(p, jt, "must be a string");
        p->rtype = rtype_from(s, len);
        if (p->rtype < 0)
            return fail(p, RG_EBADMSG, 1, "unknown result type \"%.*s\"",
                        (int)(len < PATH_KEY_MAX ? len : PATH_KEY_MAX), s);
        p->seen_rtype = 1;
        if (p->first_value && p->rtype != RG_PROMQL_VT_VECTOR)
            return fail(p, RG_EBADMSG, 1, "%s result, but data.result[%zu] has \"value\"",
                        rtype_name(p->rtype), p->first_value - 1);
        if (p->first_values && p->rtype != RG_PROMQL_VT_MATRIX)
            return fail(p, RG_EBADMSG, 1, "%s result, but data.result[%zu] has \"values\"",
                        rtype_name(p->rtype), p->first_values - 1);
        return check_shape(p);
    case W_RESULT:
        p->seen_result = 1;
        if (jt == J_NULL)
            return 1;
        if (jt != J_ARR)
            return type_error(p, jt, "must be an array");
        return push(p, F_RESULT, 0);
    case W_METRIC:
        if (jt == J_NULL)
            return 1;
        if (jt != J_MAP)
            return type_error(p, jt, "must be an object of label names to values");
        return push(p, F_METRIC, 0);
    case W_VALUE:
    case W_VALUES:
        if (jt != J_ARR)
            return type_error(p, jt, w == W_VALUE ? "must be [<time>, \"<value>\"]"
                                                  : "must be an array of points");
        if (w == W_VALUE) {
            if (p->seen_rtype && p->rtype != RG_PROMQL_VT_VECTOR)
                return fail(p, RG_EBADMSG, 1, "a %s result cannot hold \"value\"",
                            rtype_name(p->rtype));
            if (!p->first_value)
                p->first_value = p->nseries_seen;
            return push(p, F_POINT, 0);
        }
        if (p->seen_rtype && p->rtype != RG_PROMQL_VT_MATRIX)
            return fail(p, RG_EBADMSG, 1, "a %s result cannot hold \"values\"",
                        rtype_name(p->rtype));
        if (!p->first_values)
            p->first_values = p->nseries_seen;
        return push(p, F_VALUES, 0);
    default:
        return fail(p, RG_EBADMSG, 1, "unexpected value");
    }
}

/* Any value begins (scalar or container) outside skipped territory. */
static int value_begin(struct rg_query_parser *p, enum jtype jt, const char *s, size_t len)
{
    struct frame *f;
    size_t i;

    if (p->nst == 0) {
        if (p->done)
            return fail(p, RG_EBADMSG, -1, "more than one JSON value");
        if (jt != J_MAP)
            return fail(p, RG_EBADMSG, -1, "response is not a JSON object, got %s",
                        jtype_name[jt]);
        return push(p, F_ROOT, 0);
    }
    f = &p->st[p->nst - 1];
    switch (f->kind) {
    case F_ROOT:
    case F_DATA:
    case F_SERIES:
        return map_value(p, f, jt, s, len);
    case F_METRIC:
        if (jt != J_STR)
            return type_error(p, jt, "label value must be a string");
        return label_value(p, s, len);
    case F_POINT:
        i = f->idx++;
        if (i == 0) {
            if (jt != J_NUM)
                return type_error(p, jt, "timestamp must be a number");
            if (rg_query_parse_time(s, len, &p->point_t))
                return fail(p, RG_EBADMSG, 1, "timestamp %.*s out of range",
                            (int)(len < PATH_KEY_MAX ? len : PATH_KEY_MAX), s);
            return 1;
        }
        if (i == 1) {
            if (jt != J_STR)
                return type_error(p, jt, "sample value must be a string");
            return point_value(p, s, len);
        }
        return fail(p, RG_EBADMSG, 0, "a point must be [<time>, \"<value>\"]");
    case F_VALUES:
        f->idx++;
        if (jt != J_ARR)
            return type_error(p, jt, "a point must be [<time>, \"<value>\"]");
        return push(p, F_POINT, 1);
    case F_RESULT:
        i = f->idx++;
        if (i == 0) {
            p->shape = jt == J_NUM ? SHAPE_PAIR : SHAPE_SERIES;
            if (!check_shape(p))
                return 0;
        }
        if (p->shape == SHAPE_SERIES) {
            if (jt != J_MAP)
                return type_error(p, jt, "a series must be an object");
            if (!series_begin(p))
                return 0;
            return push(p, F_SERIES, 0);
        }
        if (i == 0) {
            if (rg_query_parse_time(s, len, &p->pair_t))
                return fail(p, RG_EBADMSG, 1, "timestamp %.*s out of range",
                            (int)(len < PATH_KEY_MAX ? len : PATH_KEY_MAX), s);
            p->pair_has_t = 1;
            return 1;
        }
        if (i == 1) {
            if (jt != J_STR)
                return type_error(p, jt, "value must be a string");
            p->pair_v = arena_strndup(p->ar, s, len);
            if (!p->pair_v)
                return oom(p);
            p->pair_vlen = len;
            return 1;
        }
        return fail(p, RG_EBADMSG, 0, "a %s result must be [<time>, \"<value>\"]",
                    p->seen_rtype ? rtype_name(p->rtype) : "scalar or string");
    case F_STRS: {
        char *c;

        f->idx++;
        if (jt != J_STR)
            return type_error(p, jt, "must be a string");
        c = arena_strndup(p->ar, s, len);
        if (!c || strv_push(f->aux == W_WARNINGS ? &p->warnings : &p->infos, c))
            return oom(p);
        return 1;
    }
    default:
        return fail(p, RG_EBADMSG, 1, "unexpected value");
    }
}

static int container_end(struct rg_query_parser *p)
{
    struct frame *f = &p->st[p->nst - 1];
    int ok = 1;

    switch (f->kind) {
    case F_ROOT:
        p->done = 1;
        break;
    case F_POINT:
        if (f->idx != 2)
            return fail(p, RG_EBADMSG, 0, "a point must be [<time>, \"<value>\"]");
        break;
    case F_RESULT:
        if (p->shape == SHAPE_PAIR && f->idx != 2)
            return fail(p, RG_EBADMSG, 0, "a %s result must be [<time>, \"<value>\"]",
                        p->seen_rtype ? rtype_name(p->rtype) : "scalar or string");
        break;
    case F_SERIES:
        ok = series_commit(p);
        break;
    default:
        break;
    }
    p->nst--;
    return ok;
}

static int cb_null(void *ctx)
{
    struct rg_query_parser *p = ctx;

    return p->skip ? 1 : value_begin(p, J_NULL, NULL, 0);
}

static int cb_boolean(void *ctx, int b)
{
    struct rg_query_parser *p = ctx;

    (void)b;
    return p->skip ? 1 : value_begin(p, J_BOOL, NULL, 0);
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    struct rg_query_parser *p = ctx;

    return p->skip ? 1 : value_begin(p, J_NUM, s, len);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    struct rg_query_parser *p = ctx;

    return p->skip ? 1 : value_begin(p, J_STR, (const char *)s, len);
}

static int cb_start(struct rg_query_parser *p, enum jtype jt)
{
    if (++p->depth > DEPTH_MAX)
        return fail(p, RG_EBADMSG, 1, "JSON nested deeper than %d levels", DEPTH_MAX);
    if (p->skip) {
        p->skip++;
        return 1;
    }
    return value_begin(p, jt, NULL, 0);
}

static int cb_start_map(void *ctx)
{
    return cb_start(ctx, J_MAP);
}

static int cb_start_array(void *ctx)
{
    return cb_start(ctx, J_ARR);
}

static int cb_end(void *ctx)
{
    struct rg_query_parser *p = ctx;

    p->depth--;
    if (p->skip) {
        p->skip--;
        return 1;
    }
    return container_end(p);
}

#define KEY_IS(lit) (len == sizeof(lit) - 1 && memcmp(s, lit, sizeof(lit) - 1) == 0)

/* Sets @f's expectation for a known key; a repeated one is an error because
 * the second would silently replace or merge with the first. */
static int known_key(struct rg_query_parser *p, struct frame *f, int want, const char *name,
                     int *seen)
{
    f->want = (unsigned char)want;
    f->key = name;
    if (seen) {
        if (*seen)
            return fail(p, RG_EBADMSG, 1, "duplicate key");
        *seen = 1;
    }
    return 1;
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
    struct rg_query_parser *p = ctx;
    const char *s = (const char *)key;
    struct frame *f;

    if (p->skip)
        return 1;
    f = &p->st[p->nst - 1];
    switch (f->kind) {
    case F_METRIC:
        return label_name(p, s, len);
    case F_SERIES:
        if (KEY_IS("metric"))
            return known_key(p, f, W_METRIC, "metric", &p->cur_metric);
        if (KEY_IS("value"))
            return known_key(p, f, W_VALUE, "value", &p->cur_value);
        if (KEY_IS("values"))
            return known_key(p, f, W_VALUES, "values", &p->cur_values);
        if (KEY_IS("histogram") || KEY_IS("histograms"))
            return known_key(p, f, W_HIST, NULL, NULL);
        break;
    case F_DATA:
        if (KEY_IS("result"))
            return known_key(p, f, W_RESULT, "result", &p->seen_result);
        if (KEY_IS("resultType")) {
            int seen = p->seen_rtype;

            return known_key(p, f, W_RTYPE, "resultType", &seen);
        }
        break;
    case F_ROOT:
        if (KEY_IS("status")) {
            int seen = p->status != ST_NONE;

            return known_key(p, f, W_STATUS, "status", &seen);
        }
        if (KEY_IS("data")) {
            int seen = p->seen_data || p->data_bad;

            return known_key(p, f, W_DATA, "data", &seen);
        }
        if (KEY_IS("errorType")) {
            int seen = p->error_type != NULL;

            return known_key(p, f, W_ERRTYPE, "errorType", &seen);
        }
        if (KEY_IS("error")) {
            int seen = p->error != NULL;

            return known_key(p, f, W_ERROR, "error", &seen);
        }
        if (KEY_IS("warnings"))
            return known_key(p, f, W_WARNINGS, "warnings", NULL);
        if (KEY_IS("infos"))
            return known_key(p, f, W_INFOS, "infos", NULL);
        break;
    default:
        break;
    }
    f->want = W_SKIP;
    f->key = NULL;
    return 1;
}

static const yajl_callbacks callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_boolean,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end,
};

/* ---- Public API ------------------------------------------------------------------------ */

void rg_query_parse_opts_default(struct rg_query_parse_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->max_bytes = DEF_MAX_BYTES;
    opts->max_series = DEF_MAX_SERIES;
    opts->max_points = DEF_MAX_POINTS;
}

/* Drops everything of the response being parsed, keeping scratch capacity. */
static void clear_doc(struct rg_query_parser *p)
{
    if (p->y) {
        yajl_free(p->y);
        p->y = NULL;
    }
    arena_clear(p->ar);
    free(p->series);
    p->series = NULL;
    p->nseries = p->capseries = 0;
    p->warnings.n = 0;
    p->infos.n = 0;
    p->err = 0;
    rg_buf_reset(&p->msg);
    p->fed = 0;
    p->done = 0;
    p->nst = 0;
    p->depth = 0;
    p->skip = 0;
    p->status = ST_NONE;
    p->status_text = p->error_type = p->error = NULL;
    p->seen_data = p->seen_rtype = p->seen_result = 0;
    p->data_bad = 0;
    p->rtype = RG_PROMQL_VT_NONE;
    p->shape = SHAPE_NONE;
    p->first_value = p->first_values = 0;
    p->pair_has_t = 0;
    p->pair_t = 0;
    p->pair_v = NULL;
    p->pair_vlen = 0;
    p->nseries_seen = 0;
    p->ncur = p->nprev = p->npts = 0;
    p->points_total = 0;
    p->hist_series = p->hist_mixed = 0;
}

int rg_query_parser_reset(struct rg_query_parser *p)
{
    clear_doc(p);
    if (!p->ar) {
        p->ar = calloc(1, sizeof(*p->ar));
        if (!p->ar)
            return RG_ENOMEM;
    }
    /* UTF-8 validation stays on (yajl's default): see the top of this file. Partial
     * values, comments, trailing garbage and multiple values all stay off. */
    p->y = yajl_alloc(&callbacks, NULL, p);
    if (!p->y)
        return RG_ENOMEM;
    return 0;
}

int rg_query_parser_new(const struct rg_query_parse_opts *opts, struct rg_query_parser **out)
{
    struct rg_query_parser *p = calloc(1, sizeof(*p));
    int err;

    *out = NULL;
    if (!p)
        return RG_ENOMEM;
    rg_query_parse_opts_default(&p->opts);
    if (opts) {
        p->opts.expect = opts->expect;
        if (opts->max_bytes)
            p->opts.max_bytes = opts->max_bytes;
        if (opts->max_series)
            p->opts.max_series = opts->max_series;
        if (opts->max_points)
            p->opts.max_points = opts->max_points;
    }
    err = rg_query_parser_reset(p);
    if (err)
        goto fail_reset;
    *out = p;
    return 0;

fail_reset:
    rg_query_parser_free(p);
    return err;
}

void rg_query_parser_free(struct rg_query_parser *p)
{
    if (!p)
        return;
    clear_doc(p);
    free(p->ar);
    free(p->cur);
    free(p->prev);
    free(p->pts);
    free(p->warnings.v);
    free(p->infos.v);
    rg_buf_cleanup(&p->msg);
    free(p);
}

/* Turns a yajl failure into the sticky error, unless a callback already set one. */
static int yajl_failed(struct rg_query_parser *p, yajl_status st, size_t base)
{
    unsigned char *m;
    size_t n;

    if (p->err)
        return p->err;
    if (st == yajl_status_client_canceled)
        return FAIL_RC(p, RG_EBADMSG, -1, "parse cancelled");
    m = yajl_get_error(p->y, 0, NULL, 0);
    n = m ? strlen((const char *)m) : 0;
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        n--;
    fail(p, RG_EBADMSG, -1, "invalid JSON at byte %zu: %.*s",
         base + yajl_get_bytes_consumed(p->y), (int)n, m ? (const char *)m : "");
    if (m)
        yajl_free_error(p->y, m);
    return p->err;
}

int rg_query_parser_feed(struct rg_query_parser *p, const void *data, size_t len)
{
    yajl_status st;
    size_t base;

    if (p->err)
        return p->err;
    if (!p->y)
        return FAIL_RC(p, RG_EINVAL, -1, "parser not reset after finish");
    if (len > p->opts.max_bytes - p->fed) {
        return FAIL_RC(p, RG_ETOOBIG, -1, "response too large: more than %zu bytes",
                       p->opts.max_bytes);
    }
    base = p->fed;
    p->fed += len;
    if (!len)
        return 0;
    st = yajl_parse(p->y, data, len);
    if (st != yajl_status_ok || p->err)
        return yajl_failed(p, st, base);
    return 0;
}

/* Copies a growable array of strings into the arena as the result's array. */
static int take_strv(struct rg_query_parser *p, struct strv *sv, char ***v, size_t *n)
{
    *v = NULL;
    *n = sv->n;
    if (!sv->n)
        return 0;
    *v = arena_alloc(p->ar, sv->n * sizeof(char *), _Alignof(char *));
    if (!*v)
        return RG_ENOMEM;
    memcpy(*v, sv->v, sv->n * sizeof(char *));
    return 0;
}

static int add_own_warnings(struct rg_query_parser *p)
{
    char line[160];
    char *c;

    if (!p->hist_series && !p->hist_mixed)
        return 0;
    snprintf(line, sizeof(line),
             "native histogram samples skipped (not supported): %zu series dropped, "
             "%zu series kept their float samples", p->hist_series, p->hist_mixed);
    c = arena_strndup(p->ar, line, strlen(line));
    if (!c || strv_push(&p->warnings, c))
        return RG_ENOMEM;
    return 0;
}

/* Checks the complete document and fills @out. Returns 0 or an error (message set). */
static int build(struct rg_query_parser *p, struct rg_query_result *out)
{
    int rc;

    p->nst = 0;   /* paths below are absolute */
    if (p->status == ST_NONE)
        return FAIL_RC(p, RG_EBADMSG, -1, "missing \"status\"");
    if (p->status == ST_OTHER)
        return FAIL_RC(p, RG_EBADMSG, -1, "unknown status \"%.*s\"", PATH_KEY_MAX,
                       p->status_text);
    if (p->status == ST_ERROR) {
        out->error_type = arena_strndup(p->ar, "", 0);
        out->error = out->error_type;
        if (!out->error)
            return FAIL_RC(p, RG_ENOMEM, -1, "out of memory");
        if (p->error_type)
            out->error_type = (char *)p->error_type;
        if (p->error)
            out->error = (char *)p->error;
        rc = strcmp(out->error_type, "timeout") == 0 ? RG_ETIMEDOUT : RG_EEXEC;
        fail(p, rc, -1, "%s: %s", *out->error_type ? out->error_type : "error", out->error);
        return rc;
    }
    if (p->data_bad)
        return FAIL_RC(p, RG_EBADMSG, -1, "data: must be an object, got %s",
                       jtype_name[p->data_bad - 1]);
    if (!p->seen_data)
        return FAIL_RC(p, RG_EBADMSG, -1, "missing \"data\"");
    if (!p->seen_rtype)
        return FAIL_RC(p, RG_EBADMSG, -1, "data: missing \"resultType\"");
    if (!p->seen_result)
        return FAIL_RC(p, RG_EBADMSG, -1, "data: missing \"result\"");
    if (p->opts.expect && !(p->opts.expect & RG_QUERY_EXPECT(p->rtype))) {
        struct rg_buf w = { 0 };
        int t, n = 0;

        for (t = RG_PROMQL_VT_SCALAR; t <= RG_PROMQL_VT_STRING; t++)
            if (p->opts.expect & RG_QUERY_EXPECT(t))
                rg_buf_printf(&w, "%s%s", n++ ? " or " : "", rtype_name(t));
        fail(p, RG_EBADMSG, -1, "unexpected result type %s (wanted %s)",
             rtype_name(p->rtype), w.data ? w.data : "none");
        rg_buf_cleanup(&w);
        return p->err;
    }
    out->type = p->rtype;
    if (!is_series_type(p->rtype)) {
        if (!p->pair_has_t || !p->pair_v)
            return FAIL_RC(p, RG_EBADMSG, -1, "data.result: a %s result must be "
                           "[<time>, \"<value>\"]", rtype_name(p->rtype));
        out->t = p->pair_t;
        if (p->rtype == RG_PROMQL_VT_STRING) {
            out->string = (char *)p->pair_v;
        } else if (rg_query_parse_value(p->pair_v, p->pair_vlen, &out->scalar)) {
            return FAIL_RC(p, RG_EBADMSG, -1, "data.result[1]: invalid sample value \"%.*s\"",
                           (int)(p->pair_vlen < PATH_KEY_MAX ? p->pair_vlen : PATH_KEY_MAX),
                           p->pair_v);
        }
    } else {
        out->series = p->series;
        out->nseries = p->nseries;
        p->series = NULL;
        p->nseries = p->capseries = 0;
    }
    return 0;
}

int rg_query_parser_finish(struct rg_query_parser *p, struct rg_query_result *out,
                           struct rg_buf *err)
{
    yajl_status st;
    int rc = p->err, handover = 0;

    memset(out, 0, sizeof(*out));
    if (!rc && !p->y)
        rc = FAIL_RC(p, RG_EINVAL, -1, "parser not reset after finish");
    if (!rc) {
        st = yajl_complete_parse(p->y);
        if (st != yajl_status_ok || p->err)
            rc = yajl_failed(p, st, p->fed);
        else if (!p->done)
            rc = FAIL_RC(p, RG_EBADMSG, -1, "truncated JSON");
    }
    if (!rc) {
        rc = build(p, out);
        /* Success and server-reported errors hand the arena over with the result. */
        handover = !rc || (p->status == ST_ERROR && rc != RG_ENOMEM);
    }
    if (handover) {
        int e = add_own_warnings(p);

        if (!e)
            e = take_strv(p, &p->warnings, &out->warnings, &out->nwarnings);
        if (!e)
            e = take_strv(p, &p->infos, &out->infos, &out->ninfos);
        if (e) {
            free(out->series);
            memset(out, 0, sizeof(*out));
            p->err = 0;
            rc = FAIL_RC(p, RG_ENOMEM, -1, "out of memory");
        } else {
            out->priv = p->ar;
            p->ar = NULL;
        }
    } else {
        memset(out, 0, sizeof(*out));
    }
    if (err && rc) {
        rg_buf_reset(err);
        rg_buf_append(err, p->msg.data ? p->msg.data : "", p->msg.len);
    }
    /* The document is finished: feeding more needs a reset. */
    if (p->y) {
        yajl_free(p->y);
        p->y = NULL;
    }
    fail(p, RG_EINVAL, -1, "parser finished: reset it before the next response");
    p->nprev = 0;
    return rc;
}

int rg_query_parse(const struct rg_query_parse_opts *opts, const void *data, size_t len,
                   struct rg_query_result *out, struct rg_buf *err)
{
    struct rg_query_parser *p;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = rg_query_parser_new(opts, &p);
    if (rc) {
        if (err)
            rg_buf_puts(err, "out of memory");
        return rc;
    }
    rg_query_parser_feed(p, data, len);
    rc = rg_query_parser_finish(p, out, err);
    rg_query_parser_free(p);
    return rc;
}

void rg_query_result_free(struct rg_query_result *res)
{
    if (!res)
        return;
    free(res->series);
    arena_clear(res->priv);
    free(res->priv);
    memset(res, 0, sizeof(*res));
}

/* ---- Canonical dump ------------------------------------------------------------------- */

static int put_double(struct rg_buf *out, double v)
{
    char tmp[40];
    int prec;

    if (isnan(v))
        return rg_buf_puts(out, "NaN");
    if (isinf(v))
        return rg_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    /* The shortest %g spelling that reads back as the same double. */
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    return rg_buf_puts(out, tmp);
}

static int put_quoted(struct rg_buf *out, const char *s)
{
    int e = rg_buf_putc(out, '"');

    for (; !e && *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            e = rg_buf_printf(out, "\\%c", c);
        else if (c == '\n')
            e = rg_buf_puts(out, "\\n");
        else if (c < 0x20 || c == 0x7f)
            e = rg_buf_printf(out, "\\x%02x", c);
        else
            e = rg_buf_putc(out, (char)c);
    }
    return e ? e : rg_buf_putc(out, '"');
}

int rg_query_result_dump(const struct rg_query_result *res, struct rg_buf *out)
{
    size_t i, j;
    int e = 0;

    e |= rg_buf_printf(out, "type %s\n", rtype_name(res->type));
    if (res->type == RG_PROMQL_VT_SCALAR) {
        e |= rg_buf_printf(out, "scalar %" PRId64 " ", res->t);
        e |= put_double(out, res->scalar);
        e |= rg_buf_putc(out, '\n');
    } else if (res->type == RG_PROMQL_VT_STRING) {
        e |= rg_buf_printf(out, "string %" PRId64 " ", res->t);
        e |= put_quoted(out, res->string ? res->string : "");
        e |= rg_buf_putc(out, '\n');
    }
    for (i = 0; i < res->nseries; i++) {
        const struct rg_promql_series *s = &res->series[i];

        e |= rg_buf_puts(out, "series {");
        for (j = 0; j < s->nlabels; j++) {
            e |= rg_buf_printf(out, "%s%s=", j ? ", " : "", s->labels[j].name);
            e |= put_quoted(out, s->labels[j].value);
        }
        e |= rg_buf_puts(out, "}\n");
        for (j = 0; j < s->npoints; j++) {
            e |= rg_buf_printf(out, "  %" PRId64 " ", s->points[j].t);
            e |= put_double(out, s->points[j].v);
            e |= rg_buf_putc(out, '\n');
        }
    }
    for (i = 0; i < res->nwarnings; i++) {
        e |= rg_buf_puts(out, "warning ");
        e |= put_quoted(out, res->warnings[i]);
        e |= rg_buf_putc(out, '\n');
    }
    for (i = 0; i < res->ninfos; i++) {
        e |= rg_buf_puts(out, "info ");
        e |= put_quoted(out, res->infos[i]);
        e |= rg_buf_putc(out, '\n');
    }
    if (res->error_type || res->error) {
        e |= rg_buf_puts(out, "error ");
        e |= put_quoted(out, res->error_type ? res->error_type : "");
        e |= rg_buf_putc(out, ' ');
        e |= put_quoted(out, res->error ? res->error : "");
        e |= rg_buf_putc(out, '\n');
    }
    return e ? RG_ENOMEM : 0;
}
