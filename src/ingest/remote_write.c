/* ingest/remote_write.c - remote-write 1.0 header checks and zero-copy decoding.
 *
 * The decoder is a single forward walk over the protobuf bytes (ingest/pbwire.h).
 * For each WriteRequest.timeseries entry it gathers label references and samples into
 * scratch arrays, decodes exemplars and native histograms far enough to validate their
 * structure, then applies the label rules of the 1.0 specification and either hands
 * the series to the sink or counts it as rejected. Exemplars and histograms of a valid
 * series are decoded a second time, from the same bytes, only when the sink wants
 * them: this keeps one histogram's arrays in scratch at a time instead of all of a
 * series' histograms, and costs nothing when the sink has no such callbacks.
 *
 * Label validation is a single pass in wire order that checks each label's name and
 * value (non-empty, valid UTF-8) and compares its name with the previous one (which
 * must be strictly smaller bytewise: this finds both unsorted and duplicate names),
 * then requires a non-empty __name__. The UTF-8 check is util/utf8's strict one (RFC
 * 3629: no overlong forms, no surrogates, nothing above U+10FFFF), with its ASCII fast
 * path eight bytes at a time.
 */
#include "ingest/remote_write.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/pbwire.h"
#include "ingest/snappy.h"
#include "util/err.h"
#include "util/utf8.h"

struct rg_rw_decoder {
    struct rg_label_ref *labels;       /* owned; labels of the current series */
    size_t labels_cap;
    struct rg_sample *samples;         /* owned; samples of the current series */
    size_t samples_cap;
    struct rg_label_ref *ex_labels;    /* owned; labels of the current exemplar */
    size_t ex_labels_cap;
    struct rg_rw_span *spans[2];       /* owned; [0] negative, [1] positive */
    size_t spans_cap[2];
    int64_t *deltas[2];                /* owned */
    size_t deltas_cap[2];
    double *counts[2];                 /* owned */
    size_t counts_cap[2];
    double *custom;                    /* owned; custom bucket bounds */
    size_t custom_cap;
    struct rg_buf raw;                 /* owned; decompressed body for the snappy path */
    struct rg_rw_limits limits;        /* bounds on what the scratch arrays may hold */
    int hist_overflow;                 /* the last histogram read broke max_buckets */
};

/* ---- Header checks ------------------------------------------------------ */

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

static struct rg_slice trim(struct rg_slice s)
{
    while (s.len && is_space(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len && is_space(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

static struct rg_slice slice(const char *p, size_t n)
{
    struct rg_slice s = { p, n };

    return s;
}

int rg_rw_check_encoding(struct rg_slice content_encoding)
{
    struct rg_slice ce = trim(content_encoding);

    /* A missing header is read as snappy, as Prometheus' own receiver does: the body
     * of a remote-write request is snappy-compressed by definition. */
    if (ce.len == 0 || rg_slice_eq_nocase(ce, "snappy"))
        return 0;
    return RG_ENOTSUP;
}

/* Length of the next ';'-separated segment of @s, honouring quoted strings (a ';'
 * inside a quoted parameter value does not end the parameter). */
static size_t segment_len(struct rg_slice s)
{
    int quoted = 0;
    size_t i;

    for (i = 0; i < s.len; i++) {
        char c = s.ptr[i];

        if (quoted && c == '\\' && i + 1 < s.len)
            i++;
        else if (c == '"')
            quoted = !quoted;
        else if (!quoted && c == ';')
            break;
    }
    return i;
}

int rg_rw_parse_content_type(struct rg_slice content_type, int *version, const char **reason)
{
    struct rg_slice rest = trim(content_type);
    struct rg_slice seg;
    size_t n;

    *version = 0;
    if (rest.len == 0) {
        *version = 1;
        return 0;
    }
    n = segment_len(rest);
    seg = trim(slice(rest.ptr, n));
    if (!rg_slice_eq_nocase(seg, "application/x-protobuf")) {
        if (reason)
            *reason = "unsupported Content-Type: expected application/x-protobuf";
        return RG_ENOTSUP;
    }
    rest = slice(rest.ptr + n, rest.len - n);
    while (rest.len) {
        struct rg_slice name, value;
        const char *eq;

        rest = slice(rest.ptr + 1, rest.len - 1);       /* the ';' */
        n = segment_len(rest);
        seg = trim(slice(rest.ptr, n));
        rest = slice(rest.ptr + n, rest.len - n);
        if (seg.len == 0)
            continue;                                     /* tolerate ";;" and a trailing ';' */
        eq = memchr(seg.ptr, '=', seg.len);
        if (!eq) {
            if (reason)
                *reason = "malformed Content-Type parameter: expected name=value";
            return RG_ENOTSUP;
        }
        name = trim(slice(seg.ptr, (size_t)(eq - seg.ptr)));
        value = trim(slice(eq + 1, seg.len - (size_t)(eq - seg.ptr) - 1));
        if (value.len >= 2 && value.ptr[0] == '"' && value.ptr[value.len - 1] == '"')
            value = slice(value.ptr + 1, value.len - 2);
        if (!rg_slice_eq_nocase(name, "proto"))
            continue;                                     /* e.g. charset: irrelevant */
        /* The first proto parameter decides, as in Prometheus' own parser. */
        if (rg_slice_eq(value, "prometheus.WriteRequest")) {
            *version = 1;
            return 0;
        }
        if (reason) {
            *reason = rg_slice_eq(value, "io.prometheus.write.v2.Request")
                ? "remote-write 2.0 (proto=io.prometheus.write.v2.Request) is not supported; "
                  "send prometheus.WriteRequest"
                : "unsupported proto parameter in Content-Type: expected "
                  "prometheus.WriteRequest";
        }
        return RG_ENOTSUP;
    }
    *version = 1;
    return 0;
}

/* ---- Results ------------------------------------------------------------ */

static const char *const reject_names[RG_RW_REJECT__COUNT] = {
    [RG_RW_REJECT_MISSING_METRIC_NAME]  = "missing_metric_name",
    [RG_RW_REJECT_EMPTY_LABEL_NAME]     = "empty_label_name",
    [RG_RW_REJECT_EMPTY_LABEL_VALUE]    = "empty_label_value",
    [RG_RW_REJECT_DUPLICATE_LABEL_NAME] = "duplicate_label_name",
    [RG_RW_REJECT_UNSORTED_LABELS]      = "unsorted_labels",
    [RG_RW_REJECT_INVALID_UTF8]         = "invalid_utf8",
    [RG_RW_REJECT_INVALID_HISTOGRAM]    = "invalid_histogram",
    [RG_RW_REJECT_TOO_MANY_LABELS]      = "too_many_labels",
    [RG_RW_REJECT_TOO_MANY_SAMPLES]     = "too_many_samples",
};

const char *rg_rw_reject_name(enum rg_rw_reject reason)
{
    if ((unsigned)reason >= RG_RW_REJECT__COUNT)
        return "unknown";
    return reject_names[reason];
}

uint64_t rg_rw_result_rejected_series(const struct rg_rw_result *res)
{
    uint64_t n = 0;

    for (int i = 0; i < RG_RW_REJECT__COUNT; i++)
        n += res->rejected_series[i];
    return n;
}

uint64_t rg_rw_result_rejected_samples(const struct rg_rw_result *res)
{
    uint64_t n = 0;

    for (int i = 0; i < RG_RW_REJECT__COUNT; i++)
        n += res->rejected_samples[i];
    return n;
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

int rg_rw_result_format(const struct rg_rw_result *res, struct rg_buf *out)
{
    uint64_t series = rg_rw_result_rejected_series(res);
    const char *sep = "";
    int err = 0;

    if (series) {
        err |= rg_buf_printf(out, "rejected %" PRIu64 " series (", series);
        for (int i = 0; i < RG_RW_REJECT__COUNT; i++) {
            if (!res->rejected_series[i])
                continue;
            err |= rg_buf_printf(out, "%s%" PRIu64 " %s", sep, res->rejected_series[i],
                                 reject_names[i]);
            sep = ", ";
        }
        uint64_t samples = rg_rw_result_rejected_samples(res);
        err |= rg_buf_printf(out, ") carrying %" PRIu64 " %s", samples,
                             plural(samples, "sample", "samples"));
        if (res->rejected_histograms)
            err |= rg_buf_printf(out, ", %" PRIu64 " %s", res->rejected_histograms,
                                 plural(res->rejected_histograms, "histogram", "histograms"));
        if (res->rejected_exemplars)
            err |= rg_buf_printf(out, ", %" PRIu64 " %s", res->rejected_exemplars,
                                 plural(res->rejected_exemplars, "exemplar", "exemplars"));
    }
    if (res->rejected_metadata)
        err |= rg_buf_printf(out, "%srejected %" PRIu64 " metadata %s (empty family name or "
                             "invalid UTF-8)", series ? "; " : "", res->rejected_metadata,
                             plural(res->rejected_metadata, "entry", "entries"));
    return err ? RG_ENOMEM : 0;
}

/* ---- Decoder lifecycle and scratch space ------------------------------- */

void rg_rw_limits_default(struct rg_rw_limits *limits)
{
    limits->max_labels = 256;
    limits->max_samples = 65536;
    limits->max_buckets = 65536;
}

int rg_rw_decoder_new(struct rg_rw_decoder **out)
{
    struct rg_rw_decoder *dec = calloc(1, sizeof(*dec));

    *out = dec;
    if (!dec)
        return RG_ENOMEM;
    rg_rw_limits_default(&dec->limits);
    return 0;
}

int rg_rw_decoder_set_limits(struct rg_rw_decoder *dec, const struct rg_rw_limits *limits)
{
    if (!limits->max_labels || !limits->max_samples || !limits->max_buckets)
        return RG_EINVAL;
    dec->limits = *limits;
    return 0;
}

void rg_rw_decoder_free(struct rg_rw_decoder *dec)
{
    if (!dec)
        return;
    free(dec->labels);
    free(dec->samples);
    free(dec->ex_labels);
    for (int i = 0; i < 2; i++) {
        free(dec->spans[i]);
        free(dec->deltas[i]);
        free(dec->counts[i]);
    }
    free(dec->custom);
    rg_buf_cleanup(&dec->raw);
    free(dec);
}

/* Returns @arr grown (by doubling) to hold at least @need elements of @elem bytes, or
 * NULL, leaving @arr untouched, when that is impossible. Scratch arrays only grow, so
 * a decoder that has seen its largest series allocates nothing more. */
static void *grow(void *arr, size_t *cap, size_t need, size_t elem)
{
    size_t n = *cap ? *cap : 16;
    void *p;

    while (n < need) {
        if (n > SIZE_MAX / 2 / elem)
            return NULL;
        n *= 2;
    }
    p = realloc(arr, n * elem);
    if (p)
        *cap = n;
    return p;
}

/* Makes room for @need elements in scratch array @arr of capacity @cap. On failure it
 * returns RG_ENOMEM from the enclosing function, which owns nothing that needs undoing:
 * every allocation here belongs to the decoder and stays valid. */
#define RESERVE(arr, cap, need)                                          \
    do {                                                                 \
        if ((need) > (cap)) {                                            \
            void *grown_ = grow((arr), &(cap), (need), sizeof(*(arr)));  \
            if (!grown_)                                                 \
                return RG_ENOMEM;                                        \
            (arr) = grown_;                                              \
        }                                                                \
    } while (0)

/* ---- Validation --------------------------------------------------------- */

static int slice_cmp(struct rg_slice a, struct rg_slice b)
{
    int c;

    /* Sorted label names nearly always differ in their first byte; deciding there
     * saves a library call per label. */
    if (a.len && b.len && a.ptr[0] != b.ptr[0])
        return (unsigned char)a.ptr[0] < (unsigned char)b.ptr[0] ? -1 : 1;
    c = memcmp(a.ptr, b.ptr, a.len < b.len ? a.len : b.len);

    if (c)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

/* Returns the first rule @labels break, or -1 when they are a valid 1.0 label set. */
static int validate_labels(const struct rg_label_ref *labels, size_t n)
{
    int have_name = 0;

    for (size_t i = 0; i < n; i++) {
        struct rg_slice name = labels[i].name;
        struct rg_slice value = labels[i].value;

        if (name.len == 0)
            return RG_RW_REJECT_EMPTY_LABEL_NAME;
        if (!rg_utf8_valid(name.ptr, name.len) || !rg_utf8_valid(value.ptr, value.len))
            return RG_RW_REJECT_INVALID_UTF8;
        if (i > 0) {
            int c = slice_cmp(labels[i - 1].name, name);

            if (c == 0)
                return RG_RW_REJECT_DUPLICATE_LABEL_NAME;
            if (c > 0)
                return RG_RW_REJECT_UNSORTED_LABELS;
        }
        if (name.len == 8 && memcmp(name.ptr, "__name__", 8) == 0) {
            if (value.len == 0)
                return RG_RW_REJECT_MISSING_METRIC_NAME;
            have_name = 1;
        } else if (value.len == 0) {
            return RG_RW_REJECT_EMPTY_LABEL_VALUE;
        }
    }
    return have_name ? -1 : RG_RW_REJECT_MISSING_METRIC_NAME;
}

/* Structural validity of a native histogram: a known schema, and for each side as
 * many bucket values (deltas for integer histograms, counts for float ones) as the
 * spans cover, with nothing of the other kind. */
static int histogram_valid(const struct rg_rw_histogram *h)
{
    const struct rg_rw_span *spans[2] = { h->neg_spans, h->pos_spans };
    size_t nspans[2] = { h->n_neg_spans, h->n_pos_spans };
    size_t ndeltas[2] = { h->n_neg_deltas, h->n_pos_deltas };
    size_t ncounts[2] = { h->n_neg_counts, h->n_pos_counts };

    if (!(h->schema >= -4 && h->schema <= 8) && h->schema != -53)
        return 0;
    for (int side = 0; side < 2; side++) {
        uint64_t covered = 0;

        for (size_t i = 0; i < nspans[side]; i++)
            covered += spans[side][i].length;
        if (h->is_float ? (ndeltas[side] != 0 || covered != ncounts[side])
                        : (ncounts[side] != 0 || covered != ndeltas[side]))
            return 0;
    }
    return 1;
}

/* ---- Message readers ---------------------------------------------------- */

static int wrong_type(struct rg_pb_reader *r, const uint8_t *tag_at)
{
    return rg_pb_fail(r, tag_at, "known field with the wrong wire type");
}

static const struct rg_slice empty_slice = { "", 0 };

static int read_label(struct rg_pb_reader *r, struct rg_label_ref *l)
{
    struct rg_pb_reader m;
    uint32_t f;
    unsigned wt;

    if (rg_pb_read_sub(r, &m) != 0)
        return RG_EBADMSG;
    /* Fast path for the form every encoder emits: name then value, each shorter than
     * 128 bytes (one-byte lengths), and nothing else in the message. */
    if (m.end - m.p >= 4 && m.p[0] == 0x0a && m.p[1] < 0x80
        && (size_t)(m.end - m.p) >= 4u + m.p[1]) {
        const uint8_t *v = m.p + 2 + m.p[1];

        if (v[0] == 0x12 && v[1] < 0x80 && v + 2 + v[1] == m.end) {
            l->name.ptr = (const char *)m.p + 2;
            l->name.len = m.p[1];
            l->value.ptr = (const char *)v + 2;
            l->value.len = v[1];
            return 0;
        }
    }
    l->name = empty_slice;
    l->value = empty_slice;
    while (!rg_pb_done(&m)) {
        const uint8_t *at = m.p;

        if (rg_pb_read_tag(&m, &f, &wt) != 0)
            return RG_EBADMSG;
        if (f == 1 || f == 2) {
            if (wt != RG_PB_LEN)
                return wrong_type(&m, at);
            if (rg_pb_read_bytes(&m, f == 1 ? &l->name : &l->value) != 0)
                return RG_EBADMSG;
        } else if (rg_pb_skip(&m, wt) != 0) {
            return RG_EBADMSG;
        }
    }
    return 0;
}

static int read_sample(struct rg_pb_reader *r, struct rg_sample *s)
{
    struct rg_pb_reader m;
    uint32_t f;
    unsigned wt;
    uint64_t v;

    if (rg_pb_read_sub(r, &m) != 0)
        return RG_EBADMSG;
    s->t = 0;
    s->v = 0.0;
    while (!rg_pb_done(&m)) {
        const uint8_t *at = m.p;

        if (rg_pb_read_tag(&m, &f, &wt) != 0)
            return RG_EBADMSG;
        if (f == 1) {
            if (wt != RG_PB_FIXED64)
                return wrong_type(&m, at);
            if (rg_pb_read_fixed64(&m, &v) != 0)
                return RG_EBADMSG;
            s->v = rg_pb_bits_to_double(v);
        } else if (f == 2) {
            if (wt != RG_PB_VARINT)
                return wrong_type(&m, at);
            if (rg_pb_read_varint(&m, &v) != 0)
                return RG_EBADMSG;
            s->t = (int64_t)v;
        } else if (rg_pb_skip(&m, wt) != 0) {
            return RG_EBADMSG;
        }
    }
    return 0;
}

/* Reads one Exemplar. Labels beyond max_labels are checked but not kept, and set
 * *@too_many. */
static int read_exemplar(struct rg_rw_decoder *dec, struct rg_pb_reader *r,
                         struct rg_rw_exemplar *ex, int *too_many)
{
    struct rg_pb_reader m;
    struct rg_label_ref spare;
    uint32_t f;
    unsigned wt;
    uint64_t v;
    size_t n = 0;

    if (rg_pb_read_sub(r, &m) != 0)
        return RG_EBADMSG;
    ex->v = 0.0;
    ex->t = 0;
    while (!rg_pb_done(&m)) {
        const uint8_t *at = m.p;

        if (rg_pb_read_tag(&m, &f, &wt) != 0)
            return RG_EBADMSG;
        switch (f) {
        case 1:
            if (wt != RG_PB_LEN)
                return wrong_type(&m, at);
            if (n == dec->limits.max_labels) {
                *too_many = 1;
                if (read_label(&m, &spare) != 0)
                    return RG_EBADMSG;
                break;
            }
            RESERVE(dec->ex_labels, dec->ex_labels_cap, n + 1);
            if (read_label(&m, &dec->ex_labels[n]) != 0)
                return RG_EBADMSG;
            n++;
            break;
        case 2:
            if (wt != RG_PB_FIXED64)
                return wrong_type(&m, at);
            if (rg_pb_read_fixed64(&m, &v) != 0)
                return RG_EBADMSG;
            ex->v = rg_pb_bits_to_double(v);
            break;
        case 3:
            if (wt != RG_PB_VARINT)
                return wrong_type(&m, at);
            if (rg_pb_read_varint(&m, &v) != 0)
                return RG_EBADMSG;
            ex->t = (int64_t)v;
            break;
        default:
            if (rg_pb_skip(&m, wt) != 0)
                return RG_EBADMSG;
        }
    }
    ex->labels = dec->ex_labels;
    ex->nlabels = n;
    return 0;
}

static int read_span(struct rg_pb_reader *r, struct rg_rw_span *s)
{
    struct rg_pb_reader m;
    uint32_t f;
    unsigned wt;
    uint64_t v;

    if (rg_pb_read_sub(r, &m) != 0)
        return RG_EBADMSG;
    s->offset = 0;
    s->length = 0;
    while (!rg_pb_done(&m)) {
        const uint8_t *at = m.p;

        if (rg_pb_read_tag(&m, &f, &wt) != 0)
            return RG_EBADMSG;
        if (f == 1 || f == 2) {
            if (wt != RG_PB_VARINT)
                return wrong_type(&m, at);
            if (rg_pb_read_varint(&m, &v) != 0)
                return RG_EBADMSG;
            /* sint32 and uint32 keep the low 32 bits, as every protobuf parser does. */
            if (f == 1)
                s->offset = rg_pb_zigzag32(v);
            else
                s->length = (uint32_t)v;
        } else if (rg_pb_skip(&m, wt) != 0) {
            return RG_EBADMSG;
        }
    }
    return 0;
}

/* Appends the elements of one packed or unpacked occurrence of a repeated sint64
 * field to @arr (holding *@n of capacity *@cap). Elements that would take *@n over
 * @limit are checked but not kept, and set *@overflow. */
static int read_sint64s(struct rg_pb_reader *r, unsigned wt, int64_t **arr, size_t *n,
                        size_t *cap, size_t limit, int *overflow)
{
    struct rg_pb_reader e;
    size_t count;
    uint64_t v;
    int keep;

    if (rg_pb_repeated(r, wt, RG_PB_VARINT, &e, &count) != 0)
        return RG_EBADMSG;
    keep = count <= limit - *n;
    if (keep)
        RESERVE(*arr, *cap, *n + count);
    else
        *overflow = 1;
    for (size_t i = 0; i < count; i++) {
        if (rg_pb_read_varint(&e, &v) != 0)
            return RG_EBADMSG;
        if (keep)
            (*arr)[(*n)++] = rg_pb_zigzag64(v);
    }
    return 0;
}

/* As read_sint64s(), for a repeated double field. */
static int read_doubles(struct rg_pb_reader *r, unsigned wt, double **arr, size_t *n,
                        size_t *cap, size_t limit, int *overflow)
{
    struct rg_pb_reader e;
    size_t count;
    uint64_t v;
    int keep;

    if (rg_pb_repeated(r, wt, RG_PB_FIXED64, &e, &count) != 0)
        return RG_EBADMSG;
    keep = count <= limit - *n;
    if (keep)
        RESERVE(*arr, *cap, *n + count);
    else
        *overflow = 1;
    for (size_t i = 0; i < count; i++) {
        if (rg_pb_read_fixed64(&e, &v) != 0)
            return RG_EBADMSG;
        if (keep)
            (*arr)[(*n)++] = rg_pb_bits_to_double(v);
    }
    return 0;
}

static int read_histogram(struct rg_rw_decoder *dec, struct rg_pb_reader *r,
                          struct rg_rw_histogram *h)
{
    struct rg_pb_reader m;
    uint32_t f;
    unsigned wt;
    uint64_t v;
    size_t nspans[2] = { 0, 0 }, ndeltas[2] = { 0, 0 }, ncounts[2] = { 0, 0 };
    size_t ncustom = 0;
    int err;

    if (rg_pb_read_sub(r, &m) != 0)
        return RG_EBADMSG;
    memset(h, 0, sizeof(*h));
    dec->hist_overflow = 0;
    while (!rg_pb_done(&m)) {
        const uint8_t *at = m.p;
        int side;

        if (rg_pb_read_tag(&m, &f, &wt) != 0)
            return RG_EBADMSG;
        switch (f) {
        case 1: case 4: case 6: case 14: case 15:       /* varint scalars */
            if (wt != RG_PB_VARINT)
                return wrong_type(&m, at);
            if (rg_pb_read_varint(&m, &v) != 0)
                return RG_EBADMSG;
            if (f == 1) {
                h->is_float = 0;
                h->count_float = 0.0;
                h->count_int = v;
            } else if (f == 4) {
                h->schema = rg_pb_zigzag32(v);
            } else if (f == 6) {
                h->zero_is_float = 0;
                h->zero_count_float = 0.0;
                h->zero_count_int = v;
            } else if (f == 14) {
                h->reset_hint = (int32_t)(uint32_t)v;
            } else {
                h->t = (int64_t)v;
            }
            break;
        case 2: case 3: case 5: case 7:                 /* double scalars */
            if (wt != RG_PB_FIXED64)
                return wrong_type(&m, at);
            if (rg_pb_read_fixed64(&m, &v) != 0)
                return RG_EBADMSG;
            if (f == 2) {
                /* A later member of a oneof replaces an earlier one. */
                h->is_float = 1;
                h->count_int = 0;
                h->count_float = rg_pb_bits_to_double(v);
            } else if (f == 3) {
                h->sum = rg_pb_bits_to_double(v);
            } else if (f == 5) {
                h->zero_threshold = rg_pb_bits_to_double(v);
            } else {
                h->zero_is_float = 1;
                h->zero_count_int = 0;
                h->zero_count_float = rg_pb_bits_to_double(v);
            }
            break;
        case 8: case 11:                                /* spans */
            side = f == 11;
            if (wt != RG_PB_LEN)
                return wrong_type(&m, at);
            if (nspans[side] == dec->limits.max_buckets) {
                struct rg_rw_span spare;

                dec->hist_overflow = 1;
                if (read_span(&m, &spare) != 0)
                    return RG_EBADMSG;
                break;
            }
            RESERVE(dec->spans[side], dec->spans_cap[side], nspans[side] + 1);
            if (read_span(&m, &dec->spans[side][nspans[side]]) != 0)
                return RG_EBADMSG;
            nspans[side]++;
            break;
        case 9: case 12:                                /* deltas */
            side = f == 12;
            err = read_sint64s(&m, wt, &dec->deltas[side], &ndeltas[side],
                               &dec->deltas_cap[side], dec->limits.max_buckets,
                               &dec->hist_overflow);
            if (err)
                return err;
            break;
        case 10: case 13:                               /* counts */
            side = f == 13;
            err = read_doubles(&m, wt, &dec->counts[side], &ncounts[side],
                               &dec->counts_cap[side], dec->limits.max_buckets,
                               &dec->hist_overflow);
            if (err)
                return err;
            break;
        case 16:
            err = read_doubles(&m, wt, &dec->custom, &ncustom, &dec->custom_cap,
                               dec->limits.max_buckets, &dec->hist_overflow);
            if (err)
                return err;
            break;
        default:
            if (rg_pb_skip(&m, wt) != 0)
                return RG_EBADMSG;
        }
    }
    h->neg_spans = dec->spans[0];
    h->n_neg_spans = nspans[0];
    h->pos_spans = dec->spans[1];
    h->n_pos_spans = nspans[1];
    h->neg_deltas = dec->deltas[0];
    h->n_neg_deltas = ndeltas[0];
    h->pos_deltas = dec->deltas[1];
    h->n_pos_deltas = ndeltas[1];
    h->neg_counts = dec->counts[0];
    h->n_neg_counts = ncounts[0];
    h->pos_counts = dec->counts[1];
    h->n_pos_counts = ncounts[1];
    h->custom_values = dec->custom;
    h->n_custom_values = ncustom;
    return 0;
}

static int read_metadata(struct rg_pb_reader *m, const struct rg_rw_sink *sink,
                         struct rg_rw_result *res)
{
    struct rg_slice family = empty_slice, help = empty_slice, unit = empty_slice;
    uint64_t type = 0;
    uint32_t f;
    unsigned wt;

    while (!rg_pb_done(m)) {
        const uint8_t *at = m->p;

        if (rg_pb_read_tag(m, &f, &wt) != 0)
            return RG_EBADMSG;
        if (f == 1) {
            if (wt != RG_PB_VARINT)
                return wrong_type(m, at);
            if (rg_pb_read_varint(m, &type) != 0)
                return RG_EBADMSG;
        } else if (f == 2 || f == 4 || f == 5) {
            if (wt != RG_PB_LEN)
                return wrong_type(m, at);
            if (rg_pb_read_bytes(m, f == 2 ? &family : f == 4 ? &help : &unit) != 0)
                return RG_EBADMSG;
        } else if (rg_pb_skip(m, wt) != 0) {
            return RG_EBADMSG;
        }
    }
    if (family.len == 0 || !rg_utf8_valid(family.ptr, family.len)
        || !rg_utf8_valid(help.ptr, help.len) || !rg_utf8_valid(unit.ptr, unit.len)) {
        res->rejected_metadata++;
        return 0;
    }
    res->metadata++;
    if (sink && sink->metadata) {
        /* Enum values this schema does not know are kept by protobuf as numbers; they
         * carry no meaning here, so they become "unknown". */
        enum rg_metric_type t = type <= RG_METRIC_STATESET ? (enum rg_metric_type)type
                                                           : RG_METRIC_UNKNOWN;
        if (sink->metadata(sink->ud, t, family, help, unit) == RG_ENOMEM)
            return RG_ENOMEM;
    }
    return 0;
}

/* Hands the exemplars and histograms of a valid series to the sink, decoding them
 * again from the series' bytes @ts. */
static int emit_extras(struct rg_rw_decoder *dec, struct rg_pb_reader ts, size_t nlabels,
                       const struct rg_rw_sink *sink)
{
    struct rg_rw_exemplar ex;
    struct rg_rw_histogram h;
    uint32_t f;
    unsigned wt;
    int too_many = 0;
    int err;

    while (!rg_pb_done(&ts)) {
        if (rg_pb_read_tag(&ts, &f, &wt) != 0)
            return RG_EBADMSG;
        if (f == 3 && sink->exemplar) {
            err = read_exemplar(dec, &ts, &ex, &too_many);
            if (err)
                return err;
            if (sink->exemplar(sink->ud, dec->labels, nlabels, &ex) == RG_ENOMEM)
                return RG_ENOMEM;
        } else if (f == 4 && sink->histogram) {
            err = read_histogram(dec, &ts, &h);
            if (err)
                return err;
            if (sink->histogram(sink->ud, dec->labels, nlabels, &h) == RG_ENOMEM)
                return RG_ENOMEM;
        } else if (rg_pb_skip(&ts, wt) != 0) {
            return RG_EBADMSG;
        }
    }
    return 0;
}

static int read_series(struct rg_rw_decoder *dec, struct rg_pb_reader ts,
                       const struct rg_rw_sink *sink, struct rg_rw_result *res)
{
    struct rg_pb_reader m = ts;
    struct rg_rw_exemplar ex;
    struct rg_rw_histogram h;
    struct rg_label_ref spare_label;
    struct rg_sample spare_sample;
    size_t nl = 0, ns = 0, nex = 0, nh = 0;
    int bad_histogram = 0, too_many_labels = 0;
    uint32_t f;
    unsigned wt;
    int reason;
    int err;

    /* Counts go on past the limits so that the rejection is counted in full, but the
     * items past them are only checked, not kept: scratch space stays bounded. */
    while (!rg_pb_done(&m)) {
        const uint8_t *at = m.p;

        if (rg_pb_read_tag(&m, &f, &wt) != 0)
            return RG_EBADMSG;
        if (f >= 1 && f <= 4 && wt != RG_PB_LEN)
            return wrong_type(&m, at);
        switch (f) {
        case 1:
            if (nl < dec->limits.max_labels) {
                RESERVE(dec->labels, dec->labels_cap, nl + 1);
                if (read_label(&m, &dec->labels[nl]) != 0)
                    return RG_EBADMSG;
            } else if (read_label(&m, &spare_label) != 0) {
                return RG_EBADMSG;
            }
            nl++;
            break;
        case 2:
            if (ns < dec->limits.max_samples) {
                RESERVE(dec->samples, dec->samples_cap, ns + 1);
                if (read_sample(&m, &dec->samples[ns]) != 0)
                    return RG_EBADMSG;
            } else if (read_sample(&m, &spare_sample) != 0) {
                return RG_EBADMSG;
            }
            ns++;
            break;
        case 3:
            err = read_exemplar(dec, &m, &ex, &too_many_labels);
            if (err)
                return err;
            nex++;
            break;
        case 4:
            err = read_histogram(dec, &m, &h);
            if (err)
                return err;
            if (dec->hist_overflow || !histogram_valid(&h))
                bad_histogram = 1;
            nh++;
            break;
        default:
            if (rg_pb_skip(&m, wt) != 0)
                return RG_EBADMSG;
        }
    }

    if (too_many_labels || nl > dec->limits.max_labels)
        reason = RG_RW_REJECT_TOO_MANY_LABELS;
    else
        reason = validate_labels(dec->labels, nl);
    if (reason < 0 && ns > dec->limits.max_samples)
        reason = RG_RW_REJECT_TOO_MANY_SAMPLES;
    if (reason < 0 && bad_histogram)
        reason = RG_RW_REJECT_INVALID_HISTOGRAM;
    if (reason >= 0) {
        res->rejected_series[reason]++;
        res->rejected_samples[reason] += ns;
        res->rejected_exemplars += nex;
        res->rejected_histograms += nh;
        return 0;
    }
    res->series++;
    res->samples += ns;
    res->exemplars += nex;
    res->histograms += nh;
    if (!sink)
        return 0;
    if (sink->series && sink->series(sink->ud, dec->labels, nl, dec->samples, ns) == RG_ENOMEM)
        return RG_ENOMEM;
    if ((nex && sink->exemplar) || (nh && sink->histogram))
        return emit_extras(dec, ts, nl, sink);
    return 0;
}

int rg_rw_decode_v1(struct rg_rw_decoder *dec, const uint8_t *pb, size_t len,
                    const struct rg_rw_sink *sink, struct rg_rw_result *res)
{
    static const uint8_t none[1];
    struct rg_pb_error perr;
    struct rg_pb_reader r, sub;
    uint32_t f;
    unsigned wt;
    int err = 0;

    memset(res, 0, sizeof(*res));
    rg_pb_reader_init(&r, pb ? pb : none, pb ? len : 0, &perr);
    while (!rg_pb_done(&r)) {
        const uint8_t *at = r.p;

        if (rg_pb_read_tag(&r, &f, &wt) != 0) {
            err = RG_EBADMSG;
        } else if (f == 1 || f == 3) {
            if (wt != RG_PB_LEN)
                err = wrong_type(&r, at);
            else if (rg_pb_read_sub(&r, &sub) != 0)
                err = RG_EBADMSG;
            else if (f == 1)
                err = read_series(dec, sub, sink, res);
            else
                err = read_metadata(&sub, sink, res);
        } else {
            err = rg_pb_skip(&r, wt);
        }
        if (err)
            break;
    }
    if (err == RG_EBADMSG)
        snprintf(res->error, sizeof(res->error), "proto: %s at offset %zu",
                 perr.what ? perr.what : "malformed message", perr.off);
    else if (err == RG_ENOMEM)
        snprintf(res->error, sizeof(res->error), "out of memory");
    return err;
}

int rg_rw_decode_snappy_v1(struct rg_rw_decoder *dec, const void *body, size_t len,
                           size_t limit, const struct rg_rw_sink *sink,
                           struct rg_rw_result *res)
{
    const char *reason = NULL;
    int err;

    err = rg_snappy_uncompress(body, len, limit, &dec->raw, &reason);
    if (err) {
        memset(res, 0, sizeof(*res));
        snprintf(res->error, sizeof(res->error), "%s", reason ? reason : rg_strerror(err));
        return err;
    }
    return rg_rw_decode_v1(dec, (const uint8_t *)dec->raw.data, dec->raw.len, sink, res);
}
