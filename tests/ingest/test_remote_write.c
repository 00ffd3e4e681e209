/* tests/ingest/test_remote_write.c - remote-write 1.0 header checks and decoding.
 *
 * The zero-copy decoder (ingest/remote_write.h) is compared against protobuf-c, the
 * reference decoder generated from proto/remote.proto: both feed one recording sink
 * that prints a canonical text form (series with their samples, exemplars and
 * histograms, then metadata, then the result counts), and the two texts must be equal.
 * The protobuf-c side applies the label and histogram rules through a separate,
 * deliberately plain implementation in this file. Requests come from tables, from the
 * captured Prometheus requests under tests/data/remote-write (whose canonical form is
 * also kept as golden files; RG_APPROVE=1 rewrites them), and from a seeded random
 * generator, whose packed bytes are also truncated and bit-flipped to check that the
 * decoder only ever answers 0 or RG_EBADMSG.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <snappy-c.h>

#include "remote.pb-c.h"

#include "ingest/remote_write.h"
#include "ingest/snappy.h"
#include "util/err.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define VALID (-1)

/* ---- Canonical text form ------------------------------------------------ */

static void put_quoted(struct rg_buf *b, const char *p, size_t n)
{
    rg_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if (c == '"' || c == '\\')
            rg_buf_printf(b, "\\%c", c);
        else if (c == '\n')
            rg_buf_puts(b, "\\n");
        else if (c < 0x20 || c == 0x7f)
            rg_buf_printf(b, "\\x%02x", c);
        else
            rg_buf_putc(b, (char)c);
    }
    rg_buf_putc(b, '"');
}

/* %.17g round-trips every double; NaNs are printed with their bits, so the stale
 * marker and other payloads stay distinguishable. */
static void put_double(struct rg_buf *b, double v)
{
    if (isnan(v)) {
        uint64_t bits;

        memcpy(&bits, &v, 8);
        rg_buf_printf(b, "NaN:0x%016" PRIx64, bits);
    } else {
        rg_buf_printf(b, "%.17g", v);
    }
}

static void put_labels(struct rg_buf *b, const struct rg_label_ref *l, size_t n)
{
    rg_buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            rg_buf_puts(b, ", ");
        rg_buf_append(b, l[i].name.ptr, l[i].name.len);
        rg_buf_putc(b, '=');
        put_quoted(b, l[i].value.ptr, l[i].value.len);
    }
    rg_buf_putc(b, '}');
}

static void put_doubles(struct rg_buf *b, const char *name, const double *v, size_t n)
{
    rg_buf_printf(b, " %s=[", name);
    for (size_t i = 0; i < n; i++) {
        if (i)
            rg_buf_putc(b, ',');
        put_double(b, v[i]);
    }
    rg_buf_putc(b, ']');
}

static void put_spans(struct rg_buf *b, const char *name, const struct rg_rw_span *s, size_t n)
{
    rg_buf_printf(b, " %s=[", name);
    for (size_t i = 0; i < n; i++)
        rg_buf_printf(b, "%s%" PRId32 ":%" PRIu32, i ? "," : "", s[i].offset, s[i].length);
    rg_buf_putc(b, ']');
}

static void put_ints(struct rg_buf *b, const char *name, const int64_t *v, size_t n)
{
    rg_buf_printf(b, " %s=[", name);
    for (size_t i = 0; i < n; i++)
        rg_buf_printf(b, "%s%" PRId64, i ? "," : "", v[i]);
    rg_buf_putc(b, ']');
}

static const char *type_name(enum rg_metric_type t)
{
    static const char *const names[] = {
        "unknown", "counter", "gauge", "histogram", "gaugehistogram", "summary", "info",
        "stateset",
    };
    return (unsigned)t < N(names) ? names[t] : "invalid";
}

/* A sink printing everything it gets. Exemplars and histograms are kept aside until
 * the next series so that each series prints as samples, exemplars, histograms
 * whatever their order on the wire; metadata prints after all series. */
struct rec {
    struct rg_buf series;
    struct rg_buf meta;
    struct rg_buf ex;
    struct rg_buf hist;
    size_t calls;               /* series() calls */
    size_t enomem_at;           /* series() call (1-based) answering RG_ENOMEM; 0 never */
    int verdict;                /* returned by series() otherwise */
};

static void rec_flush(struct rec *r)
{
    rg_buf_append(&r->series, r->ex.data ? r->ex.data : "", r->ex.len);
    rg_buf_append(&r->series, r->hist.data ? r->hist.data : "", r->hist.len);
    rg_buf_reset(&r->ex);
    rg_buf_reset(&r->hist);
}

static int rec_series(void *ud, const struct rg_label_ref *labels, size_t nlabels,
                      const struct rg_sample *samples, size_t nsamples)
{
    struct rec *r = ud;

    rec_flush(r);
    r->calls++;
    rg_buf_puts(&r->series, "series ");
    put_labels(&r->series, labels, nlabels);
    rg_buf_putc(&r->series, '\n');
    for (size_t i = 0; i < nsamples; i++) {
        rg_buf_printf(&r->series, "  sample t=%" PRId64 " v=", samples[i].t);
        put_double(&r->series, samples[i].v);
        rg_buf_putc(&r->series, '\n');
    }
    if (r->enomem_at && r->calls == r->enomem_at)
        return RG_ENOMEM;
    return r->verdict;
}

static int rec_exemplar(void *ud, const struct rg_label_ref *labels, size_t nlabels,
                        const struct rg_rw_exemplar *ex)
{
    struct rec *r = ud;

    (void)labels;
    (void)nlabels;
    rg_buf_puts(&r->ex, "  exemplar ");
    put_labels(&r->ex, ex->labels, ex->nlabels);
    rg_buf_printf(&r->ex, " t=%" PRId64 " v=", ex->t);
    put_double(&r->ex, ex->v);
    rg_buf_putc(&r->ex, '\n');
    return 1;    /* a verdict the decoder must not act on */
}

static int rec_histogram(void *ud, const struct rg_label_ref *labels, size_t nlabels,
                         const struct rg_rw_histogram *h)
{
    struct rec *r = ud;
    struct rg_buf *b = &r->hist;

    (void)labels;
    (void)nlabels;
    rg_buf_printf(b, "  histogram t=%" PRId64 " count=", h->t);
    if (h->is_float)
        put_double(b, h->count_float);
    else
        rg_buf_printf(b, "%" PRIu64, h->count_int);
    rg_buf_puts(b, " sum=");
    put_double(b, h->sum);
    rg_buf_printf(b, " schema=%" PRId32 " zero_threshold=", h->schema);
    put_double(b, h->zero_threshold);
    rg_buf_puts(b, " zero_count=");
    if (h->zero_is_float)
        put_double(b, h->zero_count_float);
    else
        rg_buf_printf(b, "%" PRIu64, h->zero_count_int);
    rg_buf_printf(b, " reset=%" PRId32, h->reset_hint);
    put_spans(b, "neg_spans", h->neg_spans, h->n_neg_spans);
    put_ints(b, "neg_deltas", h->neg_deltas, h->n_neg_deltas);
    put_doubles(b, "neg_counts", h->neg_counts, h->n_neg_counts);
    put_spans(b, "pos_spans", h->pos_spans, h->n_pos_spans);
    put_ints(b, "pos_deltas", h->pos_deltas, h->n_pos_deltas);
    put_doubles(b, "pos_counts", h->pos_counts, h->n_pos_counts);
    put_doubles(b, "custom", h->custom_values, h->n_custom_values);
    rg_buf_putc(b, '\n');
    return 0;
}

static int rec_metadata(void *ud, enum rg_metric_type type, struct rg_slice family,
                        struct rg_slice help, struct rg_slice unit)
{
    struct rec *r = ud;

    rg_buf_printf(&r->meta, "metadata type=%s family=", type_name(type));
    put_quoted(&r->meta, family.ptr, family.len);
    rg_buf_puts(&r->meta, " help=");
    put_quoted(&r->meta, help.ptr, help.len);
    rg_buf_puts(&r->meta, " unit=");
    put_quoted(&r->meta, unit.ptr, unit.len);
    rg_buf_putc(&r->meta, '\n');
    return 0;
}

static struct rg_rw_sink rec_sink(struct rec *r)
{
    struct rg_rw_sink s = { rec_series, rec_exemplar, rec_histogram, rec_metadata, r };

    return s;
}

/* Writes the canonical text of what @r recorded and of @res into @out (reset first). */
static void rec_finish(struct rec *r, const struct rg_rw_result *res, struct rg_buf *out)
{
    rec_flush(r);
    rg_buf_reset(out);
    rg_buf_append(out, r->series.data ? r->series.data : "", r->series.len);
    rg_buf_append(out, r->meta.data ? r->meta.data : "", r->meta.len);
    rg_buf_printf(out, "result series=%" PRIu64 " samples=%" PRIu64 " exemplars=%" PRIu64
                  " histograms=%" PRIu64 " metadata=%" PRIu64 "\n", res->series, res->samples,
                  res->exemplars, res->histograms, res->metadata);
    rg_buf_printf(out, "rejected exemplars=%" PRIu64 " histograms=%" PRIu64 " metadata=%"
                  PRIu64 "\n", res->rejected_exemplars, res->rejected_histograms,
                  res->rejected_metadata);
    for (int i = 0; i < RG_RW_REJECT__COUNT; i++)
        if (res->rejected_series[i])
            rg_buf_printf(out, "rejected reason=%s series=%" PRIu64 " samples=%" PRIu64 "\n",
                          rg_rw_reject_name(i), res->rejected_series[i],
                          res->rejected_samples[i]);
}

static void rec_cleanup(struct rec *r)
{
    rg_buf_cleanup(&r->series);
    rg_buf_cleanup(&r->meta);
    rg_buf_cleanup(&r->ex);
    rg_buf_cleanup(&r->hist);
    memset(r, 0, sizeof(*r));
}

/* Decodes @pb with the zero-copy decoder into canonical text; returns the rc. */
static int dump_mine(struct rg_rw_decoder *dec, const uint8_t *pb, size_t len,
                     struct rg_buf *out, struct rg_rw_result *res)
{
    struct rec r = { 0 };
    struct rg_rw_sink sink = rec_sink(&r);
    int rc = rg_rw_decode_v1(dec, pb, len, &sink, res);

    rec_finish(&r, res, out);
    rec_cleanup(&r);
    return rc;
}

/* ---- The reference path: protobuf-c plus a plain restatement of the rules --- */

/* Decodes one code point; returns its length, or 0 when the bytes are not UTF-8. */
static size_t ref_code_point(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len;

    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
        return 0;                                  /* overlong */
    if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

static int ref_utf8(const char *s)
{
    size_t n = strlen(s);

    for (size_t i = 0; i < n;) {
        size_t l = ref_code_point((const unsigned char *)s + i, n - i);

        if (!l)
            return 0;
        i += l;
    }
    return 1;
}

static int ref_validate(Prometheus__Label **l, size_t n)
{
    int have_name = 0;

    for (size_t i = 0; i < n; i++) {
        if (l[i]->name[0] == '\0')
            return RG_RW_REJECT_EMPTY_LABEL_NAME;
        if (!ref_utf8(l[i]->name) || !ref_utf8(l[i]->value))
            return RG_RW_REJECT_INVALID_UTF8;
        if (i > 0 && strcmp(l[i - 1]->name, l[i]->name) == 0)
            return RG_RW_REJECT_DUPLICATE_LABEL_NAME;
        if (i > 0 && strcmp(l[i - 1]->name, l[i]->name) > 0)
            return RG_RW_REJECT_UNSORTED_LABELS;
        if (strcmp(l[i]->name, "__name__") == 0) {
            if (l[i]->value[0] == '\0')
                return RG_RW_REJECT_MISSING_METRIC_NAME;
            have_name = 1;
        } else if (l[i]->value[0] == '\0') {
            return RG_RW_REJECT_EMPTY_LABEL_VALUE;
        }
    }
    return have_name ? VALID : RG_RW_REJECT_MISSING_METRIC_NAME;
}

static uint64_t ref_span_total(Prometheus__BucketSpan **s, size_t n)
{
    uint64_t t = 0;

    for (size_t i = 0; i < n; i++)
        t += s[i]->length;
    return t;
}

static int ref_histogram_ok(const Prometheus__Histogram *h)
{
    int is_float = h->count_case == PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT;
    uint64_t neg = ref_span_total(h->negative_spans, h->n_negative_spans);
    uint64_t pos = ref_span_total(h->positive_spans, h->n_positive_spans);

    if (h->schema != -53 && (h->schema < -4 || h->schema > 8))
        return 0;
    if (is_float)
        return h->n_negative_deltas == 0 && h->n_positive_deltas == 0
            && neg == h->n_negative_counts && pos == h->n_positive_counts;
    return h->n_negative_counts == 0 && h->n_positive_counts == 0
        && neg == h->n_negative_deltas && pos == h->n_positive_deltas;
}

static struct rg_label_ref *ref_labels(Prometheus__Label **l, size_t n)
{
    struct rg_label_ref *out = calloc(n + 1, sizeof(*out));

    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        out[i].name = (struct rg_slice){ l[i]->name, strlen(l[i]->name) };
        out[i].value = (struct rg_slice){ l[i]->value, strlen(l[i]->value) };
    }
    return out;
}

static struct rg_rw_span *ref_spans(Prometheus__BucketSpan **s, size_t n)
{
    struct rg_rw_span *out = calloc(n + 1, sizeof(*out));

    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        out[i].offset = s[i]->offset;
        out[i].length = s[i]->length;
    }
    return out;
}

static void ref_emit_histogram(struct rec *r, const Prometheus__Histogram *p)
{
    struct rg_rw_histogram h = { 0 };
    struct rg_rw_span *neg = ref_spans(p->negative_spans, p->n_negative_spans);
    struct rg_rw_span *pos = ref_spans(p->positive_spans, p->n_positive_spans);

    h.is_float = p->count_case == PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT;
    if (h.is_float)
        h.count_float = p->count_float;
    else if (p->count_case == PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT)
        h.count_int = p->count_int;
    h.sum = p->sum;
    h.schema = p->schema;
    h.zero_threshold = p->zero_threshold;
    h.zero_is_float = p->zero_count_case == PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT;
    if (h.zero_is_float)
        h.zero_count_float = p->zero_count_float;
    else if (p->zero_count_case == PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT)
        h.zero_count_int = p->zero_count_int;
    h.neg_spans = neg;
    h.n_neg_spans = p->n_negative_spans;
    h.neg_deltas = p->negative_deltas;
    h.n_neg_deltas = p->n_negative_deltas;
    h.neg_counts = p->negative_counts;
    h.n_neg_counts = p->n_negative_counts;
    h.pos_spans = pos;
    h.n_pos_spans = p->n_positive_spans;
    h.pos_deltas = p->positive_deltas;
    h.n_pos_deltas = p->n_positive_deltas;
    h.pos_counts = p->positive_counts;
    h.n_pos_counts = p->n_positive_counts;
    h.reset_hint = (int32_t)p->reset_hint;
    h.t = p->timestamp;
    h.custom_values = p->custom_values;
    h.n_custom_values = p->n_custom_values;
    rec_histogram(r, NULL, 0, &h);
    free(neg);
    free(pos);
}

/* The canonical text of @req as decoded by protobuf-c. */
static void dump_ref(const Prometheus__WriteRequest *req, struct rg_buf *out)
{
    struct rec r = { 0 };
    struct rg_rw_result res;

    memset(&res, 0, sizeof(res));
    for (size_t i = 0; i < req->n_timeseries; i++) {
        const Prometheus__TimeSeries *ts = req->timeseries[i];
        int reason = ref_validate(ts->labels, ts->n_labels);

        if (reason == VALID)
            for (size_t j = 0; j < ts->n_histograms; j++)
                if (!ref_histogram_ok(ts->histograms[j]))
                    reason = RG_RW_REJECT_INVALID_HISTOGRAM;
        if (reason != VALID) {
            res.rejected_series[reason]++;
            res.rejected_samples[reason] += ts->n_samples;
            res.rejected_exemplars += ts->n_exemplars;
            res.rejected_histograms += ts->n_histograms;
            continue;
        }
        res.series++;
        res.samples += ts->n_samples;
        res.exemplars += ts->n_exemplars;
        res.histograms += ts->n_histograms;

        struct rg_label_ref *labels = ref_labels(ts->labels, ts->n_labels);
        struct rg_sample *samples = calloc(ts->n_samples + 1, sizeof(*samples));

        assert_non_null(samples);
        for (size_t j = 0; j < ts->n_samples; j++) {
            samples[j].t = ts->samples[j]->timestamp;
            samples[j].v = ts->samples[j]->value;
        }
        rec_series(&r, labels, ts->n_labels, samples, ts->n_samples);
        for (size_t j = 0; j < ts->n_exemplars; j++) {
            const Prometheus__Exemplar *e = ts->exemplars[j];
            struct rg_label_ref *el = ref_labels(e->labels, e->n_labels);
            struct rg_rw_exemplar ex = { el, e->n_labels, e->value, e->timestamp };

            rec_exemplar(&r, labels, ts->n_labels, &ex);
            free(el);
        }
        for (size_t j = 0; j < ts->n_histograms; j++)
            ref_emit_histogram(&r, ts->histograms[j]);
        free(samples);
        free(labels);
    }
    for (size_t i = 0; i < req->n_metadata; i++) {
        const Prometheus__MetricMetadata *m = req->metadata[i];
        int t = (int)m->type;

        if (m->metric_family_name[0] == '\0' || !ref_utf8(m->metric_family_name)
            || !ref_utf8(m->help) || !ref_utf8(m->unit)) {
            res.rejected_metadata++;
            continue;
        }
        res.metadata++;
        rec_metadata(&r, t >= 0 && t <= 7 ? (enum rg_metric_type)t : RG_METRIC_UNKNOWN,
                     (struct rg_slice){ m->metric_family_name, strlen(m->metric_family_name) },
                     (struct rg_slice){ m->help, strlen(m->help) },
                     (struct rg_slice){ m->unit, strlen(m->unit) });
    }
    rec_finish(&r, &res, out);
    rec_cleanup(&r);
}

/* Decodes @pb both ways and requires the same canonical text; returns the text. */
static void cross_check(struct rg_rw_decoder *dec, const uint8_t *pb, size_t len,
                        struct rg_buf *mine)
{
    struct rg_buf ref = { 0 };
    struct rg_rw_result res;
    Prometheus__WriteRequest *req = prometheus__write_request__unpack(NULL, len, pb);

    assert_non_null(req);
    assert_int_equal(dump_mine(dec, pb, len, mine, &res), 0);
    dump_ref(req, &ref);
    if (strcmp(mine->data, ref.data) != 0) {
        size_t i = 0, line = 0;

        /* Report the first line that differs. */
        while (mine->data[i] && mine->data[i] == ref.data[i])
            if (mine->data[i++] == '\n')
                line = i;
        fail_msg("zero-copy decoder and protobuf-c disagree:\n mine: %.200s\n  ref: %.200s",
                 mine->data + line, ref.data + line);
    }
    prometheus__write_request__free_unpacked(req, NULL);
    rg_buf_cleanup(&ref);
}

/* ---- Building requests with protobuf-c ---------------------------------- */

/* Every allocation of a request under construction, freed at once. */
struct arena {
    void **p;
    size_t n, cap;
};

static void *aalloc(struct arena *a, size_t size)
{
    void *p = calloc(1, size ? size : 1);

    assert_non_null(p);
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->p = realloc(a->p, a->cap * sizeof(*a->p));
        assert_non_null(a->p);
    }
    a->p[a->n++] = p;
    return p;
}

static char *astr(struct arena *a, const char *s)
{
    char *p = aalloc(a, strlen(s) + 1);

    memcpy(p, s, strlen(s) + 1);
    return p;
}

static void arena_free(struct arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->p[i]);
    free(a->p);
    memset(a, 0, sizeof(*a));
}

static Prometheus__Label *mk_label(struct arena *a, const char *name, const char *value)
{
    Prometheus__Label *l = aalloc(a, sizeof(*l));

    prometheus__label__init(l);
    l->name = astr(a, name);
    l->value = astr(a, value);
    return l;
}

/* A series from NULL-terminated name/value pairs with @ns samples (t = i, v = i + 0.5). */
static Prometheus__TimeSeries *mk_series(struct arena *a, const char *const *kv, size_t ns)
{
    Prometheus__TimeSeries *ts = aalloc(a, sizeof(*ts));
    size_t n = 0;

    prometheus__time_series__init(ts);
    while (kv[2 * n])
        n++;
    ts->labels = aalloc(a, n * sizeof(*ts->labels));
    ts->n_labels = n;
    for (size_t i = 0; i < n; i++)
        ts->labels[i] = mk_label(a, kv[2 * i], kv[2 * i + 1]);
    ts->samples = aalloc(a, ns * sizeof(*ts->samples));
    ts->n_samples = ns;
    for (size_t i = 0; i < ns; i++) {
        Prometheus__Sample *s = aalloc(a, sizeof(*s));

        prometheus__sample__init(s);
        s->timestamp = (int64_t)i;
        s->value = (double)i + 0.5;
        ts->samples[i] = s;
    }
    return ts;
}

static uint8_t *pack(const Prometheus__WriteRequest *req, size_t *len)
{
    uint8_t *out;

    *len = prometheus__write_request__get_packed_size(req);
    out = malloc(*len + 1);
    assert_non_null(out);
    assert_int_equal(prometheus__write_request__pack(req, out), *len);
    return out;
}

/* ---- Header checks ------------------------------------------------------ */

static struct rg_slice sl(const char *s)
{
    return (struct rg_slice){ s, strlen(s) };
}

static void test_rw__content_encoding(void **state)
{
    static const struct { const char *value; int want; } cases[] = {
        { "", 0 },
        { "snappy", 0 },
        { "SNAPPY", 0 },
        { "Snappy", 0 },
        { "  snappy\t", 0 },
        { "gzip", RG_ENOTSUP },
        { "deflate", RG_ENOTSUP },
        { "zstd", RG_ENOTSUP },
        { "identity", RG_ENOTSUP },
        { "snappy, gzip", RG_ENOTSUP },
        { "snapp", RG_ENOTSUP },
        { "x-snappy-framed", RG_ENOTSUP },
    };
    (void)state;

    for (size_t i = 0; i < N(cases); i++)
        if (rg_rw_check_encoding(sl(cases[i].value)) != cases[i].want)
            fail_msg("Content-Encoding \"%s\": want %d", cases[i].value, cases[i].want);
    assert_true(strlen(RG_RW_ENCODING_REASON) > 0);
}

static void test_rw__content_type(void **state)
{
    static const char v2[] = "remote-write 2.0 (proto=io.prometheus.write.v2.Request) is not "
                             "supported; send prometheus.WriteRequest";
    static const char media[] = "unsupported Content-Type: expected application/x-protobuf";
    static const char badproto[] = "unsupported proto parameter in Content-Type: expected "
                                   "prometheus.WriteRequest";
    static const char badparam[] = "malformed Content-Type parameter: expected name=value";
    static const struct { const char *value; int want; const char *reason; } cases[] = {
        { "", 0, NULL },
        { "   ", 0, NULL },
        { "application/x-protobuf", 0, NULL },
        { "Application/X-Protobuf", 0, NULL },
        { "application/x-protobuf;proto=prometheus.WriteRequest", 0, NULL },
        { "application/x-protobuf ; proto=prometheus.WriteRequest", 0, NULL },
        { "application/x-protobuf;  proto=prometheus.WriteRequest  ", 0, NULL },
        { "application/x-protobuf; PROTO=prometheus.WriteRequest", 0, NULL },
        { "application/x-protobuf;proto=\"prometheus.WriteRequest\"", 0, NULL },
        { "application/x-protobuf; charset=utf-8", 0, NULL },
        { "application/x-protobuf; charset=\"a;b\"; proto=prometheus.WriteRequest", 0, NULL },
        { "application/x-protobuf;", 0, NULL },
        { "application/x-protobuf;proto=io.prometheus.write.v2.Request", RG_ENOTSUP, v2 },
        { "application/x-protobuf ; proto=io.prometheus.write.v2.Request", RG_ENOTSUP, v2 },
        { "application/x-protobuf;proto=prometheus.writerequest", RG_ENOTSUP, badproto },
        { "application/x-protobuf;proto=", RG_ENOTSUP, badproto },
        { "application/x-protobuf;proto=foo.Bar", RG_ENOTSUP, badproto },
        { "application/x-protobuf;proto", RG_ENOTSUP, badparam },
        { "application/json", RG_ENOTSUP, media },
        { "image/png", RG_ENOTSUP, media },
        { "text/plain; version=0.0.4", RG_ENOTSUP, media },
        { "application/x-protobuf-foo", RG_ENOTSUP, media },
        { "application/protobuf", RG_ENOTSUP, media },
        { ";proto=prometheus.WriteRequest", RG_ENOTSUP, media },
    };
    (void)state;

    for (size_t i = 0; i < N(cases); i++) {
        int version = -1;
        const char *reason = NULL;
        int rc = rg_rw_parse_content_type(sl(cases[i].value), &version, &reason);

        if (rc != cases[i].want)
            fail_msg("Content-Type \"%s\": rc %d, want %d", cases[i].value, rc, cases[i].want);
        if (rc == 0) {
            assert_int_equal(version, 1);
        } else {
            assert_int_equal(version, 0);
            assert_string_equal(reason, cases[i].reason);
        }
    }
}

/* ---- Series validation -------------------------------------------------- */

static void test_rw__series_validation(void **state)
{
    static const struct {
        const char *name;
        const char *kv[13];
        size_t nsamples;
        int want;
    } cases[] = {
        { "valid", { "__name__", "up", "job", "x", NULL }, 2, VALID },
        { "name only", { "__name__", "up", NULL }, 1, VALID },
        { "no samples", { "__name__", "up", NULL }, 0, VALID },
        { "utf8, dots, spaces, newlines",
          { "__name__", "my.metric", "a b", "v\nw", "\xc3\xa9", "\xe6\x97\xa5", NULL }, 1, VALID },
        { "uppercase sorts before underscore", { "Z", "1", "__name__", "up", NULL }, 1, VALID },
        { "prefix sorts first", { "__name__", "up", "job", "1", "jobs", "2", NULL }, 1, VALID },
        { "largest code point", { "__name__", "\xf4\x8f\xbf\xbf", NULL }, 1, VALID },
        { "no labels", { NULL }, 3, RG_RW_REJECT_MISSING_METRIC_NAME },
        { "no __name__", { "job", "x", NULL }, 2, RG_RW_REJECT_MISSING_METRIC_NAME },
        { "empty __name__", { "__name__", "", "job", "x", NULL }, 1,
          RG_RW_REJECT_MISSING_METRIC_NAME },
        { "__name__ case matters", { "__NAME__", "up", NULL }, 1,
          RG_RW_REJECT_MISSING_METRIC_NAME },
        { "empty label name", { "", "x", "__name__", "up", NULL }, 1,
          RG_RW_REJECT_EMPTY_LABEL_NAME },
        { "empty label value", { "__name__", "up", "job", "", NULL }, 4,
          RG_RW_REJECT_EMPTY_LABEL_VALUE },
        { "duplicate name", { "__name__", "up", "job", "a", "job", "b", NULL }, 1,
          RG_RW_REJECT_DUPLICATE_LABEL_NAME },
        { "duplicate identical pair", { "__name__", "up", "job", "a", "job", "a", NULL }, 1,
          RG_RW_REJECT_DUPLICATE_LABEL_NAME },
        { "duplicate __name__", { "__name__", "a", "__name__", "b", NULL }, 1,
          RG_RW_REJECT_DUPLICATE_LABEL_NAME },
        { "unsorted", { "__name__", "up", "job", "x", "instance", "y", NULL }, 2,
          RG_RW_REJECT_UNSORTED_LABELS },
        { "name after others", { "job", "x", "__name__", "up", NULL }, 1,
          RG_RW_REJECT_UNSORTED_LABELS },
        { "longer before prefix", { "__name__", "up", "jobs", "1", "job", "2", NULL }, 1,
          RG_RW_REJECT_UNSORTED_LABELS },
        { "non-adjacent duplicate", { "__name__", "up", "b", "1", "a", "2", "b", "3", NULL }, 1,
          RG_RW_REJECT_UNSORTED_LABELS },
        { "invalid byte in value", { "__name__", "up", "job", "\xff", NULL }, 1,
          RG_RW_REJECT_INVALID_UTF8 },
        { "invalid byte in name", { "__name__", "up", "\xfe", "x", NULL }, 1,
          RG_RW_REJECT_INVALID_UTF8 },
        { "overlong slash", { "__name__", "up", "job", "\xc0\xaf", NULL }, 1,
          RG_RW_REJECT_INVALID_UTF8 },
        { "overlong 3-byte", { "__name__", "\xe0\x80\xaf", NULL }, 1, RG_RW_REJECT_INVALID_UTF8 },
        { "surrogate", { "__name__", "\xed\xa0\x80", NULL }, 1, RG_RW_REJECT_INVALID_UTF8 },
        { "above U+10FFFF", { "__name__", "\xf4\x90\x80\x80", NULL }, 1,
          RG_RW_REJECT_INVALID_UTF8 },
        { "truncated sequence", { "__name__", "up", "job", "ab\xe2\x82", NULL }, 1,
          RG_RW_REJECT_INVALID_UTF8 },
        { "stray continuation after ascii run", { "__name__", "abcdefghijkl\x80", NULL }, 1,
          RG_RW_REJECT_INVALID_UTF8 },
        { "first problem wins", { "__name__", "up", "job", "", "a", "x", NULL }, 1,
          RG_RW_REJECT_EMPTY_LABEL_VALUE },
        { "utf8 before order", { "b", "\xff", "a", "x", NULL }, 1, RG_RW_REJECT_INVALID_UTF8 },
    };
    static const char *const ctl[] = { "__name__", "ctl", NULL };
    struct rg_rw_decoder *dec;
    (void)state;

    assert_int_equal(rg_rw_decoder_new(&dec), 0);
    for (size_t i = 0; i < N(cases); i++) {
        struct arena a = { 0 };
        Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
        Prometheus__TimeSeries *ts[3];
        struct rg_rw_result res;
        struct rec r = { 0 };
        struct rg_rw_sink sink = rec_sink(&r);
        struct rg_buf want = { 0 };
        uint8_t *pb;
        size_t len;

        ts[0] = mk_series(&a, ctl, 1);
        ts[1] = mk_series(&a, cases[i].kv, cases[i].nsamples);
        ts[2] = mk_series(&a, ctl, 1);
        req.timeseries = ts;
        req.n_timeseries = 3;
        pb = pack(&req, &len);
        if (rg_rw_decode_v1(dec, pb, len, &sink, &res) != 0)
            fail_msg("case %s: decode failed: %s", cases[i].name, res.error);
        if (cases[i].want == VALID) {
            assert_int_equal(res.series, 3);
            assert_int_equal(res.samples, 2 + cases[i].nsamples);
            assert_int_equal(rg_rw_result_rejected_series(&res), 0);
            assert_int_equal(r.calls, 3);
        } else {
            if (res.rejected_series[cases[i].want] != 1)
                fail_msg("case %s: not rejected as %s", cases[i].name,
                         rg_rw_reject_name(cases[i].want));
            assert_int_equal(rg_rw_result_rejected_series(&res), 1);
            assert_int_equal(res.rejected_samples[cases[i].want], cases[i].nsamples);
            assert_int_equal(rg_rw_result_rejected_samples(&res), cases[i].nsamples);
            assert_int_equal(res.series, 2);
            assert_int_equal(res.samples, 2);
            /* Only the two control series reached the sink. */
            assert_int_equal(r.calls, 2);
            rg_buf_puts(&want, "series {__name__=\"ctl\"}\n  sample t=0 v=0.5\n"
                               "series {__name__=\"ctl\"}\n  sample t=0 v=0.5\n");
            rec_flush(&r);
            assert_string_equal(r.series.data, want.data);
        }
        rg_buf_cleanup(&want);
        rec_cleanup(&r);
        free(pb);
        arena_free(&a);
    }
    rg_rw_decoder_free(dec);
}

static void test_rw__result_format(void **state)
{
    static const struct {
        uint64_t series[RG_RW_REJECT__COUNT];
        uint64_t samples[RG_RW_REJECT__COUNT];
        uint64_t histograms, exemplars, metadata;
        const char *want;
    } cases[] = {
        { { 0 }, { 0 }, 0, 0, 0, "" },
        { { [RG_RW_REJECT_MISSING_METRIC_NAME] = 2, [RG_RW_REJECT_UNSORTED_LABELS] = 1 },
          { [RG_RW_REJECT_MISSING_METRIC_NAME] = 2, [RG_RW_REJECT_UNSORTED_LABELS] = 1 }, 0, 0,
          0, "rejected 3 series (2 missing_metric_name, 1 unsorted_labels) carrying 3 samples" },
        { { [RG_RW_REJECT_INVALID_UTF8] = 1 }, { [RG_RW_REJECT_INVALID_UTF8] = 1 }, 0, 0, 0,
          "rejected 1 series (1 invalid_utf8) carrying 1 sample" },
        { { [RG_RW_REJECT_INVALID_HISTOGRAM] = 1 }, { 0 }, 2, 1, 0,
          "rejected 1 series (1 invalid_histogram) carrying 0 samples, 2 histograms, "
          "1 exemplar" },
        { { 0 }, { 0 }, 0, 0, 2,
          "rejected 2 metadata entries (empty family name or invalid UTF-8)" },
        { { [RG_RW_REJECT_EMPTY_LABEL_NAME] = 4 }, { [RG_RW_REJECT_EMPTY_LABEL_NAME] = 8 }, 0, 0, 1,
          "rejected 4 series (4 empty_label_name) carrying 8 samples; rejected 1 metadata entry "
          "(empty family name or invalid UTF-8)" },
    };
    (void)state;

    for (size_t i = 0; i < N(cases); i++) {
        struct rg_rw_result res;
        struct rg_buf out = { 0 };

        memset(&res, 0, sizeof(res));
        memcpy(res.rejected_series, cases[i].series, sizeof(res.rejected_series));
        memcpy(res.rejected_samples, cases[i].samples, sizeof(res.rejected_samples));
        res.rejected_histograms = cases[i].histograms;
        res.rejected_exemplars = cases[i].exemplars;
        res.rejected_metadata = cases[i].metadata;
        assert_int_equal(rg_rw_result_format(&res, &out), 0);
        assert_string_equal(out.data ? out.data : "", cases[i].want);
        rg_buf_cleanup(&out);
    }
    assert_string_equal(rg_rw_reject_name(RG_RW_REJECT_DUPLICATE_LABEL_NAME),
                        "duplicate_label_name");
    assert_string_equal(rg_rw_reject_name(RG_RW_REJECT_EMPTY_LABEL_VALUE), "empty_label_value");
    assert_string_equal(rg_rw_reject_name(RG_RW_REJECT__COUNT), "unknown");
}

/* The sink's verdict is the caller's business; only RG_ENOMEM stops the walk. */
static void test_rw__sink_verdicts(void **state)
{
    static const char *const s1[] = { "__name__", "a", NULL };
    static const char *const s2[] = { "__name__", "b", NULL };
    static const char *const s3[] = { "__name__", "c", NULL };
    struct arena a = { 0 };
    Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
    Prometheus__TimeSeries *ts[3];
    struct rg_rw_decoder *dec;
    struct rg_rw_result res;
    uint8_t *pb;
    size_t len;
    (void)state;

    ts[0] = mk_series(&a, s1, 1);
    ts[1] = mk_series(&a, s2, 2);
    ts[2] = mk_series(&a, s3, 3);
    req.timeseries = ts;
    req.n_timeseries = 3;
    pb = pack(&req, &len);
    assert_int_equal(rg_rw_decoder_new(&dec), 0);
    for (int verdict = -3; verdict <= 3; verdict++) {
        struct rec r = { .verdict = verdict == -3 ? RG_EORDER : verdict };
        struct rg_rw_sink sink = rec_sink(&r);

        assert_int_equal(rg_rw_decode_v1(dec, pb, len, &sink, &res), 0);
        assert_int_equal(r.calls, 3);
        assert_int_equal(res.series, 3);
        assert_int_equal(res.samples, 6);
        rec_cleanup(&r);
    }
    for (size_t at = 1; at <= 3; at++) {
        struct rec r = { .enomem_at = at };
        struct rg_rw_sink sink = rec_sink(&r);

        assert_int_equal(rg_rw_decode_v1(dec, pb, len, &sink, &res), RG_ENOMEM);
        assert_int_equal(r.calls, at);
        rec_cleanup(&r);
    }
    /* A NULL sink, or one without callbacks, only counts. */
    assert_int_equal(rg_rw_decode_v1(dec, pb, len, NULL, &res), 0);
    assert_int_equal(res.series, 3);
    {
        struct rg_rw_sink empty = { 0 };

        assert_int_equal(rg_rw_decode_v1(dec, pb, len, &empty, &res), 0);
        assert_int_equal(res.samples, 6);
    }
    /* An empty message is a valid, empty request. */
    assert_int_equal(rg_rw_decode_v1(dec, NULL, 0, NULL, &res), 0);
    assert_int_equal(res.series, 0);
    rg_rw_decoder_free(dec);
    rg_rw_decoder_free(NULL);
    free(pb);
    arena_free(&a);
}

/* ---- Protobuf-level errors and hand-built wire forms --------------------- */

static void test_rw__protobuf_errors(void **state)
{
    static const struct {
        const char *name;
        unsigned char in[16];
        size_t len;
        int want;
        const char *error;
    } cases[] = {
        { "truncated length", { 0x0a }, 1, RG_EBADMSG, "proto: truncated varint at offset 1" },
        { "length past the end", { 0x0a, 0x05, 0x0a }, 3, RG_EBADMSG,
          "proto: length-delimited field past the end of its message at offset 1" },
        { "timeseries as varint", { 0x08, 0x01 }, 2, RG_EBADMSG,
          "proto: known field with the wrong wire type at offset 0" },
        { "metadata as fixed32", { 0x1d, 0, 0, 0, 0 }, 5, RG_EBADMSG,
          "proto: known field with the wrong wire type at offset 0" },
        { "field number 0", { 0x00 }, 1, RG_EBADMSG, "proto: invalid field number at offset 0" },
        { "group", { 0x0a, 0x00, 0x13 }, 3, RG_EBADMSG,
          "proto: group wire type not supported at offset 3" },
        { "label name as varint", { 0x0a, 0x04, 0x0a, 0x02, 0x08, 0x01 }, 6, RG_EBADMSG,
          "proto: known field with the wrong wire type at offset 4" },
        { "sample value as varint", { 0x0a, 0x04, 0x12, 0x02, 0x08, 0x01 }, 6, RG_EBADMSG,
          "proto: known field with the wrong wire type at offset 4" },
        { "truncated sample value", { 0x0a, 0x05, 0x12, 0x03, 0x09, 0x00, 0x00 }, 7, RG_EBADMSG,
          "proto: truncated fixed64 at offset 5" },
        { "label overruns series", { 0x0a, 0x03, 0x0a, 0x05, 0x0a, 0x00, 0x00, 0x00 }, 8,
          RG_EBADMSG, "proto: length-delimited field past the end of its message at offset 3" },
        { "histogram count as len", { 0x0a, 0x04, 0x22, 0x02, 0x0a, 0x00 }, 6, RG_EBADMSG,
          "proto: known field with the wrong wire type at offset 4" },
        { "metadata type as len", { 0x1a, 0x02, 0x0a, 0x00 }, 4, RG_EBADMSG,
          "proto: known field with the wrong wire type at offset 2" },
        { "reserved field 2 skipped", { 0x12, 0x01, 0xff }, 3, 0, "" },
        { "empty series", { 0x0a, 0x00 }, 2, 0, "" },
    };
    struct rg_rw_decoder *dec;
    (void)state;

    assert_int_equal(rg_rw_decoder_new(&dec), 0);
    for (size_t i = 0; i < N(cases); i++) {
        struct rg_rw_result res;
        int rc = rg_rw_decode_v1(dec, cases[i].in, cases[i].len, NULL, &res);

        if (rc != cases[i].want || strcmp(res.error, cases[i].error) != 0)
            fail_msg("case %s: rc %d error \"%s\", want %d \"%s\"", cases[i].name, rc,
                     res.error, cases[i].want, cases[i].error);
    }
    rg_rw_decoder_free(dec);
}

/* A minimal protobuf writer for wire forms protobuf-c never emits. */
static void w_varint(struct rg_buf *b, uint64_t v)
{
    do {
        unsigned char c = (unsigned char)(v & 0x7f);

        v >>= 7;
        rg_buf_putc(b, (char)(v ? c | 0x80 : c));
    } while (v);
}

static void w_tag(struct rg_buf *b, uint32_t f, unsigned wt)
{
    w_varint(b, (uint64_t)f << 3 | wt);
}

static void w_bytes(struct rg_buf *b, uint32_t f, const void *p, size_t n)
{
    w_tag(b, f, 2);
    w_varint(b, n);
    rg_buf_append(b, p, n);
}

static void w_sub(struct rg_buf *b, uint32_t f, struct rg_buf *sub)
{
    w_bytes(b, f, sub->data ? sub->data : "", sub->len);
    rg_buf_reset(sub);
}

static void w_double(struct rg_buf *b, uint32_t f, double d)
{
    uint64_t bits;

    memcpy(&bits, &d, 8);
    w_tag(b, f, 1);
    for (int i = 0; i < 8; i++)
        rg_buf_putc(b, (char)(bits >> (8 * i)));
}

/* Every unknown wire type, to be sprinkled into every message. */
static void w_unknown(struct rg_buf *b)
{
    w_tag(b, 100, 0);
    w_varint(b, UINT64_MAX);
    w_tag(b, 101, 1);
    rg_buf_append(b, "12345678", 8);
    w_bytes(b, 102, "junk", 4);
    w_tag(b, 103, 5);
    rg_buf_append(b, "1234", 4);
}

static void test_rw__unknown_fields_and_unpacked_repeats(void **state)
{
    struct rg_buf req = { 0 }, ts = { 0 }, m = { 0 }, h = { 0 }, span = { 0 }, packed = { 0 };
    struct rg_buf mine = { 0 };
    struct rg_rw_decoder *dec;
    struct rg_rw_result res;
    (void)state;

    /* Label { name, unknown..., value } */
    w_unknown(&m);
    w_bytes(&m, 1, "__name__", 8);
    w_unknown(&m);
    w_bytes(&m, 2, "up", 2);
    w_sub(&ts, 1, &m);
    w_bytes(&m, 1, "job", 3);
    w_bytes(&m, 2, "first", 5);
    w_bytes(&m, 2, "x", 1);                       /* a repeated scalar: the last wins */
    w_sub(&ts, 1, &m);
    /* Samples, fields in reverse order, with unknown fields. */
    w_tag(&m, 2, 0);
    w_varint(&m, 1700000000000ULL);
    w_unknown(&m);
    w_double(&m, 1, 42.25);
    w_sub(&ts, 2, &m);
    w_unknown(&ts);
    /* A histogram with unpacked deltas, a packed run split in two, both count kinds in
     * turn (the last oneof member wins), and unknown fields in spans. */
    w_tag(&h, 2, 1);
    rg_buf_append(&h, "\0\0\0\0\0\0\0\0", 8);
    w_tag(&h, 1, 0);
    w_varint(&h, 7);
    w_tag(&h, 4, 0);
    w_varint(&h, 5);                              /* schema -3 */
    w_tag(&span, 1, 0);
    w_varint(&span, 3);                           /* offset -2 */
    w_unknown(&span);
    w_tag(&span, 2, 0);
    w_varint(&span, 3);
    w_sub(&h, 11, &span);
    w_tag(&h, 12, 0);
    w_varint(&h, 2);                              /* +1, unpacked */
    w_varint(&packed, 3);                         /* -2 */
    w_sub(&h, 12, &packed);
    w_varint(&packed, 4);                         /* +2 */
    w_sub(&h, 12, &packed);
    w_unknown(&h);
    w_double(&h, 16, 1.5);                        /* custom value, unpacked */
    w_double(&h, 16, 2.5);
    w_tag(&h, 14, 0);
    w_varint(&h, 2);
    w_tag(&h, 15, 0);
    w_varint(&h, 99);
    w_tag(&h, 7, 1);
    rg_buf_append(&h, "\0\0\0\0\0\0\xf0\x3f", 8); /* zero count 1.0 */
    w_sub(&ts, 4, &h);
    /* An exemplar with a label and unknown fields. */
    w_bytes(&span, 1, "trace_id", 8);
    w_bytes(&span, 2, "abc", 3);
    w_sub(&m, 1, &span);
    w_unknown(&m);
    w_double(&m, 2, -1.0);
    w_tag(&m, 3, 0);
    w_varint(&m, 5);
    w_sub(&ts, 3, &m);
    w_sub(&req, 1, &ts);
    w_unknown(&req);
    /* Metadata with unknown fields, including the absent field 3. */
    w_tag(&m, 1, 0);
    w_varint(&m, 1);
    w_bytes(&m, 2, "up", 2);
    w_bytes(&m, 3, "ignored", 7);
    w_unknown(&m);
    w_bytes(&m, 4, "help text", 9);
    w_bytes(&m, 5, "seconds", 7);
    w_sub(&req, 3, &m);

    assert_int_equal(rg_rw_decoder_new(&dec), 0);
    cross_check(dec, (const uint8_t *)req.data, req.len, &mine);
    assert_string_equal(mine.data,
        "series {__name__=\"up\", job=\"x\"}\n"
        "  sample t=1700000000000 v=42.25\n"
        "  exemplar {trace_id=\"abc\"} t=5 v=-1\n"
        "  histogram t=99 count=7 sum=0 schema=-3 zero_threshold=0 zero_count=1 reset=2"
        " neg_spans=[] neg_deltas=[] neg_counts=[] pos_spans=[-2:3] pos_deltas=[1,-2,2]"
        " pos_counts=[] custom=[1.5,2.5]\n"
        "metadata type=counter family=\"up\" help=\"help text\" unit=\"seconds\"\n"
        "result series=1 samples=1 exemplars=1 histograms=1 metadata=1\n"
        "rejected exemplars=0 histograms=0 metadata=0\n");
    (void)res;
    rg_rw_decoder_free(dec);
    rg_buf_cleanup(&req);
    rg_buf_cleanup(&ts);
    rg_buf_cleanup(&m);
    rg_buf_cleanup(&h);
    rg_buf_cleanup(&span);
    rg_buf_cleanup(&packed);
    rg_buf_cleanup(&mine);
}

/* ---- Histograms and metadata --------------------------------------------- */

struct hist_case {
    const char *name;
    int is_float;
    int32_t schema;
    uint32_t neg_spans[3], pos_spans[3];   /* span lengths, 0-terminated */
    size_t n_neg, n_pos;                   /* deltas or counts per side */
    size_t n_neg_other, n_pos_other;       /* values of the other kind */
    int valid;
};

static Prometheus__Histogram *mk_histogram(struct arena *a, const struct hist_case *c)
{
    Prometheus__Histogram *h = aalloc(a, sizeof(*h));
    const uint32_t *spans[2] = { c->neg_spans, c->pos_spans };
    size_t nvals[2] = { c->n_neg, c->n_pos }, nother[2] = { c->n_neg_other, c->n_pos_other };

    prometheus__histogram__init(h);
    h->schema = c->schema;
    h->sum = 12.5;
    h->timestamp = 1000;
    if (c->is_float) {
        h->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT;
        h->count_float = 3.5;
    } else {
        h->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT;
        h->count_int = 3;
    }
    for (int side = 0; side < 2; side++) {
        size_t ns = 0, nd = c->is_float ? nother[side] : nvals[side];
        size_t nc = c->is_float ? nvals[side] : nother[side];
        Prometheus__BucketSpan **sp;
        int64_t *d = aalloc(a, (nd + 1) * sizeof(*d));
        double *cnt = aalloc(a, (nc + 1) * sizeof(*cnt));

        while (ns < 3 && spans[side][ns])
            ns++;
        sp = aalloc(a, (ns + 1) * sizeof(*sp));
        for (size_t i = 0; i < ns; i++) {
            sp[i] = aalloc(a, sizeof(**sp));
            prometheus__bucket_span__init(sp[i]);
            sp[i]->offset = (int32_t)i - 1;
            sp[i]->length = spans[side][i];
        }
        for (size_t i = 0; i < nd; i++)
            d[i] = (int64_t)i - 1;
        for (size_t i = 0; i < nc; i++)
            cnt[i] = (double)i + 0.25;
        if (side == 0) {
            h->negative_spans = sp, h->n_negative_spans = ns;
            h->negative_deltas = d, h->n_negative_deltas = nd;
            h->negative_counts = cnt, h->n_negative_counts = nc;
        } else {
            h->positive_spans = sp, h->n_positive_spans = ns;
            h->positive_deltas = d, h->n_positive_deltas = nd;
            h->positive_counts = cnt, h->n_positive_counts = nc;
        }
    }
    return h;
}

static void test_rw__histogram_validation(void **state)
{
    static const struct hist_case cases[] = {
        { "empty integer histogram", 0, 0, { 0 }, { 0 }, 0, 0, 0, 0, 1 },
        { "integer, both sides", 0, 3, { 2 }, { 1, 2 }, 2, 3, 0, 0, 1 },
        { "float, both sides", 1, 3, { 2 }, { 1, 2 }, 2, 3, 0, 0, 1 },
        { "schema -4", 0, -4, { 0 }, { 1 }, 0, 1, 0, 0, 1 },
        { "schema 8", 0, 8, { 0 }, { 1 }, 0, 1, 0, 0, 1 },
        { "custom buckets", 0, -53, { 0 }, { 3 }, 0, 3, 0, 0, 1 },
        { "schema 9", 0, 9, { 0 }, { 1 }, 0, 1, 0, 0, 0 },
        { "schema -5", 0, -5, { 0 }, { 1 }, 0, 1, 0, 0, 0 },
        { "schema -52", 0, -52, { 0 }, { 1 }, 0, 1, 0, 0, 0 },
        { "too few positive deltas", 0, 0, { 0 }, { 3 }, 0, 2, 0, 0, 0 },
        { "too many negative deltas", 0, 0, { 1 }, { 0 }, 2, 0, 0, 0, 0 },
        { "deltas without spans", 0, 0, { 0 }, { 0 }, 0, 1, 0, 0, 0 },
        { "too few float counts", 1, 0, { 2 }, { 0 }, 1, 0, 0, 0, 0 },
        { "float histogram with deltas", 1, 0, { 0 }, { 1 }, 0, 1, 0, 1, 0 },
        { "integer histogram with counts", 0, 0, { 1 }, { 0 }, 1, 0, 1, 0, 0 },
    };
    static const char *const kv[] = { "__name__", "h", NULL };
    struct rg_rw_decoder *dec;
    (void)state;

    assert_int_equal(rg_rw_decoder_new(&dec), 0);
    for (size_t i = 0; i < N(cases); i++) {
        struct arena a = { 0 };
        Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
        Prometheus__TimeSeries *ts = mk_series(&a, kv, 1);
        Prometheus__Histogram *hs[2];
        struct rg_rw_result res;
        struct rg_buf mine = { 0 };
        uint8_t *pb;
        size_t len;

        hs[0] = mk_histogram(&a, &cases[0]);
        hs[1] = mk_histogram(&a, &cases[i]);
        ts->histograms = hs;
        ts->n_histograms = 2;
        req.timeseries = &ts;
        req.n_timeseries = 1;
        pb = pack(&req, &len);
        cross_check(dec, pb, len, &mine);
        assert_int_equal(rg_rw_decode_v1(dec, pb, len, NULL, &res), 0);
        if (cases[i].valid) {
            if (res.histograms != 2)
                fail_msg("case %s: rejected", cases[i].name);
            assert_int_equal(res.series, 1);
        } else {
            if (res.rejected_series[RG_RW_REJECT_INVALID_HISTOGRAM] != 1)
                fail_msg("case %s: accepted", cases[i].name);
            assert_int_equal(res.rejected_samples[RG_RW_REJECT_INVALID_HISTOGRAM], 1);
            assert_int_equal(res.rejected_histograms, 2);
            assert_int_equal(res.series, 0);
        }
        rg_buf_cleanup(&mine);
        free(pb);
        arena_free(&a);
    }
    rg_rw_decoder_free(dec);
}

static void test_rw__metadata(void **state)
{
    static const struct {
        int type;
        const char *family, *help, *unit;
        const char *want;     /* NULL: rejected */
    } cases[] = {
        { 1, "http_requests_total", "Requests.", "",
          "metadata type=counter family=\"http_requests_total\" help=\"Requests.\" unit=\"\"\n" },
        { 0, "x", "", "", "metadata type=unknown family=\"x\" help=\"\" unit=\"\"\n" },
        { 7, "s", "multi\nline \"quoted\"", "bytes",
          "metadata type=stateset family=\"s\" help=\"multi\\nline \\\"quoted\\\"\" "
          "unit=\"bytes\"\n" },
        { 9, "future", "", "", "metadata type=unknown family=\"future\" help=\"\" unit=\"\"\n" },
        { -1, "negative", "", "", "metadata type=unknown family=\"negative\" help=\"\" "
                                  "unit=\"\"\n" },
        { 2, "", "no family", "", NULL },
        { 2, "g", "bad \xff help", "", NULL },
        { 2, "\xc3", "", "", NULL },
        { 2, "g", "", "\xed\xbf\xbf", NULL },
    };
    struct rg_rw_decoder *dec;
    (void)state;

    assert_int_equal(rg_rw_decoder_new(&dec), 0);
    for (size_t i = 0; i < N(cases); i++) {
        struct arena a = { 0 };
        Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
        Prometheus__MetricMetadata *md = aalloc(&a, sizeof(*md));
        struct rg_rw_result res;
        struct rec r = { 0 };
        struct rg_rw_sink sink = rec_sink(&r);
        struct rg_buf mine = { 0 };
        uint8_t *pb;
        size_t len;

        prometheus__metric_metadata__init(md);
        md->type = (Prometheus__MetricMetadata__MetricType)cases[i].type;
        md->metric_family_name = astr(&a, cases[i].family);
        md->help = astr(&a, cases[i].help);
        md->unit = astr(&a, cases[i].unit);
        req.metadata = &md;
        req.n_metadata = 1;
        pb = pack(&req, &len);
        cross_check(dec, pb, len, &mine);
        assert_int_equal(rg_rw_decode_v1(dec, pb, len, &sink, &res), 0);
        if (cases[i].want) {
            assert_int_equal(res.metadata, 1);
            assert_string_equal(r.meta.data, cases[i].want);
        } else {
            assert_int_equal(res.rejected_metadata, 1);
            assert_null(r.meta.data);
        }
        rec_cleanup(&r);
        rg_buf_cleanup(&mine);
        free(pb);
        arena_free(&a);
    }
    rg_rw_decoder_free(dec);
}

/* Scratch space is bounded per series: a series over a limit is rejected and counted,
 * and the series after it decode normally. */
static void test_rw__limits(void **state)
{
    static const char *const three[] = { "__name__", "m", "a", "1", "b", "2", NULL };
    static const char *const four[] = { "__name__", "m", "a", "1", "b", "2", "c", "3", NULL };
    static const struct hist_case at_limit = { "", 0, 0, { 5 }, { 5 }, 5, 5, 0, 0, 1 };
    static const struct hist_case deltas_over = { "", 0, 0, { 6 }, { 0 }, 6, 0, 0, 0, 1 };
    static const struct hist_case counts_over = { "", 1, 0, { 0 }, { 3, 3 }, 0, 6, 0, 0, 1 };
    static const struct {
        const char *name;
        const char *const *kv;
        size_t nsamples;
        size_t ex_labels;                 /* labels of one exemplar; 0: no exemplar */
        const struct hist_case *hist;     /* NULL: no histogram */
        int want;
    } cases[] = {
        { "at the label limit", three, 1, 0, NULL, VALID },
        { "over the label limit", four, 1, 0, NULL, RG_RW_REJECT_TOO_MANY_LABELS },
        { "at the sample limit", three, 4, 0, NULL, VALID },
        { "over the sample limit", three, 5, 0, NULL, RG_RW_REJECT_TOO_MANY_SAMPLES },
        { "labels counted before samples", four, 9, 0, NULL, RG_RW_REJECT_TOO_MANY_LABELS },
        { "exemplar at the label limit", three, 1, 3, NULL, VALID },
        { "exemplar over the label limit", three, 1, 4, NULL, RG_RW_REJECT_TOO_MANY_LABELS },
        { "histogram at the bucket limit", three, 0, 0, &at_limit, VALID },
        { "deltas over the bucket limit", three, 0, 0, &deltas_over,
          RG_RW_REJECT_INVALID_HISTOGRAM },
        { "counts over the bucket limit", three, 0, 0, &counts_over,
          RG_RW_REJECT_INVALID_HISTOGRAM },
    };
    struct rg_rw_limits limits = { 3, 4, 5 }, bad;
    struct rg_rw_decoder *dec;
    (void)state;

    assert_int_equal(rg_rw_decoder_new(&dec), 0);
    for (int i = 0; i < 3; i++) {
        rg_rw_limits_default(&bad);
        if (i == 0)
            bad.max_labels = 0;
        else if (i == 1)
            bad.max_samples = 0;
        else
            bad.max_buckets = 0;
        assert_int_equal(rg_rw_decoder_set_limits(dec, &bad), RG_EINVAL);
    }
    rg_rw_limits_default(&bad);
    assert_int_equal(bad.max_labels, 256);
    assert_int_equal(bad.max_samples, 65536);
    assert_int_equal(bad.max_buckets, 65536);
    assert_int_equal(rg_rw_decoder_set_limits(dec, &limits), 0);
    for (size_t i = 0; i < N(cases); i++) {
        static const char *const ctl[] = { "__name__", "ctl", NULL };
        struct arena a = { 0 };
        Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
        Prometheus__TimeSeries *ts[2];
        Prometheus__Exemplar ex = PROMETHEUS__EXEMPLAR__INIT, *exp = &ex;
        Prometheus__Histogram *hp;
        struct rg_rw_result res;
        struct rec r = { 0 };
        struct rg_rw_sink sink = rec_sink(&r);
        uint8_t *pb;
        size_t len;

        ts[0] = mk_series(&a, cases[i].kv, cases[i].nsamples);
        ts[1] = mk_series(&a, ctl, 1);
        if (cases[i].ex_labels) {
            ex.labels = aalloc(&a, cases[i].ex_labels * sizeof(*ex.labels));
            ex.n_labels = cases[i].ex_labels;
            for (size_t j = 0; j < ex.n_labels; j++)
                ex.labels[j] = mk_label(&a, "trace_id", "abc");
            ts[0]->exemplars = &exp;
            ts[0]->n_exemplars = 1;
        }
        if (cases[i].hist) {
            hp = mk_histogram(&a, cases[i].hist);
            ts[0]->histograms = &hp;
            ts[0]->n_histograms = 1;
        }
        req.timeseries = ts;
        req.n_timeseries = 2;
        pb = pack(&req, &len);
        assert_int_equal(rg_rw_decode_v1(dec, pb, len, &sink, &res), 0);
        if (cases[i].want == VALID) {
            if (res.series != 2)
                fail_msg("case %s: rejected", cases[i].name);
            assert_int_equal(r.calls, 2);
        } else {
            if (res.rejected_series[cases[i].want] != 1)
                fail_msg("case %s: not rejected as %s", cases[i].name,
                         rg_rw_reject_name(cases[i].want));
            assert_int_equal(res.rejected_samples[cases[i].want], cases[i].nsamples);
            assert_int_equal(res.series, 1);
            assert_int_equal(r.calls, 1);
        }
        rec_cleanup(&r);
        free(pb);
        arena_free(&a);
    }
    /* Six empty spans: one more than max_buckets allows. */
    {
        struct rg_buf req = { 0 }, ts = { 0 }, lab = { 0 }, h = { 0 };
        struct rg_rw_result res;

        w_bytes(&lab, 1, "__name__", 8);
        w_bytes(&lab, 2, "m", 1);
        w_sub(&ts, 1, &lab);
        for (int i = 0; i < 6; i++)
            w_bytes(&h, 11, "", 0);
        w_sub(&ts, 4, &h);
        w_sub(&req, 1, &ts);
        assert_int_equal(rg_rw_decode_v1(dec, (const uint8_t *)req.data, req.len, NULL, &res),
                         0);
        assert_int_equal(res.rejected_series[RG_RW_REJECT_INVALID_HISTOGRAM], 1);
        assert_int_equal(res.rejected_histograms, 1);
        rg_buf_cleanup(&req);
        rg_buf_cleanup(&ts);
        rg_buf_cleanup(&lab);
        rg_buf_cleanup(&h);
    }
    rg_rw_decoder_free(dec);
}

/* ---- Golden files from captured Prometheus requests ---------------------- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        p = malloc((size_t)n + 1);
        if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
            free(p);
            p = NULL;
        }
        if (p) {
            p[n] = '\0';
            *len = (size_t)n;
        }
    }
    fclose(f);
    return p;
}

static void test_rw__golden_captured_requests(void **state)
{
    static const struct {
        const char *id;
        uint64_t series, samples, metadata;
    } cases[] = {
        { "0001", 500, 500, 0 },
        { "0002", 500, 500, 0 },
        { "0005", 0, 0, 448 },
        { "0010", 500, 500, 0 },
        { "0020", 500, 500, 0 },
    };
    const char *approve = getenv("RG_APPROVE");
    struct rg_rw_decoder *dec;
    struct rg_buf raw = { 0 };
    (void)state;

    assert_int_equal(rg_rw_decoder_new(&dec), 0);
    for (size_t i = 0; i < N(cases); i++) {
        char path[128], gpath[128];
        size_t blen = 0, glen = 0;
        char *body, *golden;
        struct rg_buf mine = { 0 };
        struct rg_rw_result res;
        struct rg_rw_result res2;
        struct rg_rw_sink none = { 0 };

        snprintf(path, sizeof(path), "tests/data/remote-write/req-%s.snappy", cases[i].id);
        snprintf(gpath, sizeof(gpath), "tests/data/ingest/req-%s.golden", cases[i].id);
        body = read_file(path, &blen);
        if (!body)
            fail_msg("cannot read %s (run from the repository root)", path);
        assert_int_equal(rg_snappy_uncompress(body, blen, RG_SNAPPY_DEFAULT_LIMIT, &raw, NULL),
                         0);
        cross_check(dec, (const uint8_t *)raw.data, raw.len, &mine);
        assert_int_equal(dump_mine(dec, (const uint8_t *)raw.data, raw.len, &mine, &res), 0);
        assert_int_equal(res.series + rg_rw_result_rejected_series(&res), cases[i].series);
        assert_int_equal(res.samples + rg_rw_result_rejected_samples(&res), cases[i].samples);
        assert_int_equal(res.metadata + res.rejected_metadata, cases[i].metadata);
        /* The snappy entry point gives the same counts. */
        assert_int_equal(rg_rw_decode_snappy_v1(dec, body, blen, RG_SNAPPY_DEFAULT_LIMIT, &none,
                                                &res2), 0);
        assert_memory_equal(&res, &res2, sizeof(res));

        if (approve && strcmp(approve, "1") == 0) {
            FILE *f = fopen(gpath, "wb");

            assert_non_null(f);
            assert_int_equal(fwrite(mine.data, 1, mine.len, f), mine.len);
            assert_int_equal(fclose(f), 0);
        }
        golden = read_file(gpath, &glen);
        if (!golden)
            fail_msg("missing %s: run the test with RG_APPROVE=1 to create it", gpath);
        if (glen != mine.len || memcmp(golden, mine.data, glen) != 0)
            fail_msg("%s differs from the decoder's output (RG_APPROVE=1 rewrites it)", gpath);
        free(golden);
        free(body);
        rg_buf_cleanup(&mine);
    }
    rg_buf_cleanup(&raw);
    rg_rw_decoder_free(dec);
}

static void test_rw__snappy_entry_point(void **state)
{
    static const unsigned char framed[] = { 0xff, 0x06, 0x00, 0x00, 's', 'N', 'a', 'P', 'p',
                                            'Y', 0x00, 0x00, 0x00, 0x00 };
    static const unsigned char big[] = { 0x80, 0x80, 0x80, 0x80, 0x01 };   /* 256 MiB */
    static const unsigned char bad_pb[] = { 0x02, 0x04, 0x0a, 0x05 };      /* "\n\x05" */
    struct rg_rw_decoder *dec;
    struct rg_rw_result res;
    (void)state;

    assert_int_equal(rg_rw_decoder_new(&dec), 0);
    assert_int_equal(rg_rw_decode_snappy_v1(dec, framed, sizeof(framed),
                                            RG_SNAPPY_DEFAULT_LIMIT, NULL, &res), RG_EBADMSG);
    assert_string_equal(res.error, "snappy framed format not supported");
    assert_int_equal(rg_rw_decode_snappy_v1(dec, big, sizeof(big), RG_SNAPPY_DEFAULT_LIMIT,
                                            NULL, &res), RG_ETOOBIG);
    assert_string_equal(res.error, "snappy: uncompressed body over the size limit");
    assert_int_equal(rg_rw_decode_snappy_v1(dec, "", 0, RG_SNAPPY_DEFAULT_LIMIT, NULL, &res),
                     RG_EBADMSG);
    assert_string_equal(res.error, "snappy: empty body");
    assert_int_equal(rg_rw_decode_snappy_v1(dec, bad_pb, sizeof(bad_pb),
                                            RG_SNAPPY_DEFAULT_LIMIT, NULL, &res), RG_EBADMSG);
    assert_string_equal(res.error,
                        "proto: length-delimited field past the end of its message at offset 1");
    assert_int_equal(rg_rw_decode_snappy_v1(dec, "\x00", 1, RG_SNAPPY_DEFAULT_LIMIT, NULL,
                                            &res), 0);
    assert_int_equal(res.series, 0);
    rg_rw_decoder_free(dec);
}

/* ---- Random requests ------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64*: deterministic, so a failure reproduces from the printed seed. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static size_t rndn(size_t n)
{
    return (size_t)(rnd() % n);
}

static const char *const pieces[] = {
    "a", "b", "z", "_", "job", "instance", "le", "0", "9", ".", " ", "\n", "\"", "\\", "\t",
    "\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x98\x80", "\xef\xbf\xbd", "\x7f",
};
static const char *const bad_pieces[] = {
    "\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80",
};

static char *rnd_string(struct arena *a, size_t max_pieces, int allow_bad)
{
    char tmp[512] = "";
    size_t n = 1 + rndn(max_pieces);

    for (size_t i = 0; i < n; i++) {
        const char *p = allow_bad && rndn(30) == 0 ? bad_pieces[rndn(N(bad_pieces))]
                                                   : pieces[rndn(N(pieces))];
        if (strlen(tmp) + strlen(p) < sizeof(tmp))
            strcat(tmp, p);
    }
    /* Now and then a string of 128 bytes or more, whose length takes two varint bytes
     * and so leaves the decoder's one-byte-length fast path. */
    if (rndn(25) == 0) {
        size_t len = strlen(tmp), extra = 128 + rndn(200);

        memset(tmp + len, 'q', extra);
        tmp[len + extra] = '\0';
    }
    return astr(a, tmp);
}

static double rnd_double(void)
{
    static const uint64_t special[] = {
        UINT64_C(0x7ff0000000000002),    /* stale marker */
        UINT64_C(0x7ff8000000000001),    /* another NaN */
        UINT64_C(0x7ff8000000000000),
        UINT64_C(0xfff8000000000000),
        UINT64_C(0x7ff0000000000000),    /* +Inf */
        UINT64_C(0xfff0000000000000),    /* -Inf */
        UINT64_C(0x8000000000000000),    /* -0 */
        UINT64_C(0x0000000000000001),    /* smallest subnormal */
        UINT64_C(0x7fefffffffffffff),    /* largest finite */
    };
    uint64_t bits;
    double d;

    switch (rndn(4)) {
    case 0:
        bits = special[rndn(N(special))];
        break;
    case 1:
        bits = rnd();
        break;
    default:
        d = (double)(int64_t)(rnd() % 2000000) / 8.0 - 100000.0;
        memcpy(&bits, &d, 8);
    }
    memcpy(&d, &bits, 8);
    return d;
}

static int cmp_label(const void *x, const void *y)
{
    const Prometheus__Label *a = *(Prometheus__Label *const *)x;
    const Prometheus__Label *b = *(Prometheus__Label *const *)y;

    return strcmp(a->name, b->name);
}

static Prometheus__Label **rnd_labels(struct arena *a, size_t *n, int for_series)
{
    size_t k = rndn(for_series ? 7 : 3);
    Prometheus__Label **l = aalloc(a, (k + 2) * sizeof(*l));
    size_t m = 0;

    if (for_series && rndn(10) != 0)
        l[m++] = mk_label(a, "__name__", rnd_string(a, 3, for_series));
    for (size_t i = 0; i < k; i++)
        l[m++] = mk_label(a, rnd_string(a, 3, for_series), rnd_string(a, 4, for_series));
    if (!for_series) {
        *n = m;
        return l;
    }
    qsort(l, m, sizeof(*l), cmp_label);
    /* Drop duplicates, so that only the mutations below break the rules. */
    size_t u = 0;
    for (size_t i = 0; i < m; i++)
        if (u == 0 || strcmp(l[u - 1]->name, l[i]->name) != 0)
            l[u++] = l[i];
    m = u;
    if (m && rndn(4) == 0) {
        size_t i = rndn(m);

        switch (rndn(6)) {
        case 0:
            if (m > 1) {
                Prometheus__Label *t = l[0];

                l[0] = l[m - 1];
                l[m - 1] = t;
            }
            break;
        case 1:
            l[m] = mk_label(a, l[i]->name, "dup");
            m++;
            qsort(l, m, sizeof(*l), cmp_label);
            break;
        case 2:
            l[i]->name = astr(a, "");
            break;
        case 3:
            l[i]->value = astr(a, "");
            break;
        case 4:
            m = 0;
            break;
        default:
            l[i]->value = astr(a, bad_pieces[rndn(N(bad_pieces))]);
        }
    }
    *n = m;
    return l;
}

static Prometheus__Histogram *rnd_histogram(struct arena *a)
{
    static const int32_t schemas[] = { -53, -4, -1, 0, 1, 3, 8, 0, 2, 9 };
    Prometheus__Histogram *h = aalloc(a, sizeof(*h));
    int is_float = (int)rndn(2);

    prometheus__histogram__init(h);
    switch (rndn(3)) {
    case 0:
        break;                          /* count unset: an integer histogram */
    case 1:
        h->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT;
        h->count_int = rnd() >> rndn(64);
        is_float = 0;
        break;
    default:
        h->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT;
        h->count_float = rnd_double();
        is_float = 1;
    }
    if (h->count_case == PROMETHEUS__HISTOGRAM__COUNT__NOT_SET)
        is_float = 0;
    h->sum = rnd_double();
    h->schema = schemas[rndn(N(schemas))];
    h->zero_threshold = rndn(2) ? 0.0 : rnd_double();
    switch (rndn(3)) {
    case 0:
        break;
    case 1:
        h->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT;
        h->zero_count_int = rnd() >> rndn(64);
        break;
    default:
        h->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT;
        h->zero_count_float = rnd_double();
    }
    for (int side = 0; side < 2; side++) {
        size_t ns = rndn(4), total = 0;
        Prometheus__BucketSpan **sp = aalloc(a, (ns + 1) * sizeof(*sp));
        size_t nv;
        int64_t *d;
        double *c;

        for (size_t i = 0; i < ns; i++) {
            sp[i] = aalloc(a, sizeof(**sp));
            prometheus__bucket_span__init(sp[i]);
            sp[i]->offset = (int32_t)rndn(9) - 4;
            if (rndn(20) == 0)
                sp[i]->offset = rndn(2) ? INT32_MAX : INT32_MIN;
            sp[i]->length = (uint32_t)rndn(4);
            total += sp[i]->length;
        }
        nv = total + (rndn(12) == 0);                 /* sometimes one too many */
        d = aalloc(a, (nv + 1) * sizeof(*d));
        c = aalloc(a, (nv + 1) * sizeof(*c));
        for (size_t i = 0; i < nv; i++) {
            d[i] = (int64_t)(rnd() >> rndn(64)) * (rndn(2) ? 1 : -1);
            c[i] = rnd_double();
        }
        if (side == 0) {
            h->negative_spans = sp, h->n_negative_spans = ns;
            if (is_float)
                h->negative_counts = c, h->n_negative_counts = nv;
            else
                h->negative_deltas = d, h->n_negative_deltas = nv;
        } else {
            h->positive_spans = sp, h->n_positive_spans = ns;
            if (is_float)
                h->positive_counts = c, h->n_positive_counts = nv;
            else
                h->positive_deltas = d, h->n_positive_deltas = nv;
        }
    }
    h->reset_hint = (Prometheus__Histogram__ResetHint)rndn(4);
    h->timestamp = (int64_t)rnd();
    h->n_custom_values = h->schema == -53 ? rndn(4) : (rndn(10) == 0);
    h->custom_values = aalloc(a, (h->n_custom_values + 1) * sizeof(double));
    for (size_t i = 0; i < h->n_custom_values; i++)
        h->custom_values[i] = (double)i * 0.5 + rnd_double() * (rndn(4) == 0);
    return h;
}

static Prometheus__WriteRequest *rnd_request(struct arena *a)
{
    Prometheus__WriteRequest *req = aalloc(a, sizeof(*req));
    size_t nts = rndn(12), nmd = rndn(4);

    prometheus__write_request__init(req);
    req->timeseries = aalloc(a, (nts + 1) * sizeof(*req->timeseries));
    req->n_timeseries = nts;
    for (size_t i = 0; i < nts; i++) {
        Prometheus__TimeSeries *ts = aalloc(a, sizeof(*ts));

        prometheus__time_series__init(ts);
        ts->labels = rnd_labels(a, &ts->n_labels, 1);
        ts->n_samples = rndn(6);
        ts->samples = aalloc(a, (ts->n_samples + 1) * sizeof(*ts->samples));
        for (size_t j = 0; j < ts->n_samples; j++) {
            Prometheus__Sample *s = aalloc(a, sizeof(*s));

            prometheus__sample__init(s);
            s->value = rnd_double();
            s->timestamp = rndn(8) ? (int64_t)(1700000000000 + rndn(100000)) : (int64_t)rnd();
            ts->samples[j] = s;
        }
        ts->n_exemplars = rndn(5) == 0 ? 1 + rndn(2) : 0;
        ts->exemplars = aalloc(a, (ts->n_exemplars + 1) * sizeof(*ts->exemplars));
        for (size_t j = 0; j < ts->n_exemplars; j++) {
            Prometheus__Exemplar *e = aalloc(a, sizeof(*e));

            prometheus__exemplar__init(e);
            e->labels = rnd_labels(a, &e->n_labels, 0);
            e->value = rnd_double();
            e->timestamp = (int64_t)rnd();
            ts->exemplars[j] = e;
        }
        ts->n_histograms = rndn(4) == 0 ? 1 + rndn(2) : 0;
        ts->histograms = aalloc(a, (ts->n_histograms + 1) * sizeof(*ts->histograms));
        for (size_t j = 0; j < ts->n_histograms; j++)
            ts->histograms[j] = rnd_histogram(a);
        req->timeseries[i] = ts;
    }
    req->metadata = aalloc(a, (nmd + 1) * sizeof(*req->metadata));
    req->n_metadata = nmd;
    for (size_t i = 0; i < nmd; i++) {
        Prometheus__MetricMetadata *m = aalloc(a, sizeof(*m));

        prometheus__metric_metadata__init(m);
        m->type = (Prometheus__MetricMetadata__MetricType)rndn(9);
        m->metric_family_name = rndn(10) ? rnd_string(a, 3, 1) : astr(a, "");
        m->help = rndn(2) ? rnd_string(a, 8, 1) : astr(a, "");
        m->unit = rndn(3) ? astr(a, "") : rnd_string(a, 2, 1);
        req->metadata[i] = m;
    }
    return req;
}

static void test_rw__random_cross_check(void **state)
{
    struct rg_rw_decoder *dec;
    uint64_t totals[4] = { 0 };
    (void)state;

    rng_state = UINT64_C(0x9e3779b97f4a7c15);
    assert_int_equal(rg_rw_decoder_new(&dec), 0);
    for (int round = 0; round < 400; round++) {
        struct arena a = { 0 };
        Prometheus__WriteRequest *req = rnd_request(&a);
        struct rg_buf mine = { 0 };
        struct rg_rw_result res;
        uint8_t *pb;
        size_t len;

        pb = pack(req, &len);
        cross_check(dec, pb, len, &mine);
        assert_int_equal(rg_rw_decode_v1(dec, pb, len, NULL, &res), 0);
        totals[0] += res.series;
        totals[1] += rg_rw_result_rejected_series(&res);
        totals[2] += res.histograms;
        totals[3] += res.exemplars;
        rg_buf_cleanup(&mine);
        free(pb);
        arena_free(&a);
    }
    /* The generator must exercise both outcomes and every kind of item. */
    assert_true(totals[0] > 500);
    assert_true(totals[1] > 100);
    assert_true(totals[2] > 50);
    assert_true(totals[3] > 50);
    rg_rw_decoder_free(dec);
}

static void test_rw__random_corruption(void **state)
{
    struct rg_rw_decoder *dec;
    size_t outcomes[2] = { 0, 0 }, compared = 0;
    (void)state;

    rng_state = UINT64_C(0x2545f4914f6cdd1d);
    assert_int_equal(rg_rw_decoder_new(&dec), 0);
    for (int round = 0; round < 300; round++) {
        struct arena a = { 0 };
        Prometheus__WriteRequest *req = rnd_request(&a);
        size_t len;
        uint8_t *pb = pack(req, &len);

        for (int m = 0; m < 24 && len > 0; m++) {
            uint8_t *c = malloc(len);
            size_t clen = len;
            struct rg_buf mine = { 0 }, ref = { 0 };
            struct rg_rw_result res;
            Prometheus__WriteRequest *back;
            int rc;

            assert_non_null(c);
            memcpy(c, pb, len);
            switch (m % 3) {
            case 0:
                clen = rndn(len);
                break;
            case 1:
                c[rndn(len)] ^= (uint8_t)(1u << rndn(8));
                break;
            default:
                for (int k = 0; k < 3; k++)
                    c[rndn(len)] = (uint8_t)rnd();
            }
            rc = dump_mine(dec, c, clen, &mine, &res);
            if (rc != 0 && rc != RG_EBADMSG)
                fail_msg("round %d mutation %d: rc %d", round, m, rc);
            assert_true(rc == 0 || strncmp(res.error, "proto: ", 7) == 0);
            outcomes[rc == 0]++;
            /* When both decoders accept the bytes they must still agree, unless a string
             * picked up a NUL byte, which protobuf-c's C strings cannot carry. */
            back = prometheus__write_request__unpack(NULL, clen, c);
            if (rc == 0 && back) {
                dump_ref(back, &ref);
                if (strcmp(mine.data, ref.data) == 0)
                    compared++;
                else if (!memchr(c, 0, clen))
                    assert_string_equal(mine.data, ref.data);
            }
            if (back)
                prometheus__write_request__free_unpacked(back, NULL);
            rg_buf_cleanup(&mine);
            rg_buf_cleanup(&ref);
            free(c);
        }
        free(pb);
        arena_free(&a);
    }
    assert_true(outcomes[0] > 1000);
    assert_true(outcomes[1] > 100);
    /* Most accepted mutations must have been checked against protobuf-c. */
    fprintf(stderr, "corruption: %zu rejected, %zu accepted, %zu agreed with protobuf-c\n",
            outcomes[0], outcomes[1], compared);
    assert_true(compared > outcomes[1] / 2);
    rg_rw_decoder_free(dec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rw__content_encoding),
        cmocka_unit_test(test_rw__content_type),
        cmocka_unit_test(test_rw__series_validation),
        cmocka_unit_test(test_rw__result_format),
        cmocka_unit_test(test_rw__sink_verdicts),
        cmocka_unit_test(test_rw__protobuf_errors),
        cmocka_unit_test(test_rw__unknown_fields_and_unpacked_repeats),
        cmocka_unit_test(test_rw__histogram_validation),
        cmocka_unit_test(test_rw__metadata),
        cmocka_unit_test(test_rw__limits),
        cmocka_unit_test(test_rw__golden_captured_requests),
        cmocka_unit_test(test_rw__snappy_entry_point),
        cmocka_unit_test(test_rw__random_cross_check),
        cmocka_unit_test(test_rw__random_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
