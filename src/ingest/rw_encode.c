/* ingest/rw_encode.c - hand-rolled protobuf encoding of prometheus.WriteRequest.
 *
 * Protobuf nests messages behind a length prefix, so a message's size must be known
 * before its first byte is written. For each series the encoder first computes the
 * exact size of every Label and Sample (varint lengths included), reserves that many
 * bytes once, and then writes straight into the buffer; nothing is copied twice and
 * no per-field objects exist. Sizes are checked against the Snappy limit (2^32 - 1
 * bytes of input) while they are summed, so no arithmetic can overflow.
 */
#include "ingest/rw_encode.h"

#include <snappy-c.h>
#include <string.h>

#include "util/err.h"

/* The Snappy block format stores the uncompressed length as a 32-bit varint. */
#define RW_MAX_RAW UINT64_C(0xffffffff)

/* Wire types, and the field tags of the messages above (field << 3 | wire type). */
#define WT_VARINT 0
#define WT_FIXED64 1
#define WT_LEN 2
#define TAG(field, wt) ((uint8_t)(((field) << 3) | (wt)))

#define TAG_REQ_TIMESERIES TAG(1, WT_LEN)
#define TAG_REQ_METADATA TAG(3, WT_LEN)
#define TAG_TS_LABEL TAG(1, WT_LEN)
#define TAG_TS_SAMPLE TAG(2, WT_LEN)
#define TAG_LABEL_NAME TAG(1, WT_LEN)
#define TAG_LABEL_VALUE TAG(2, WT_LEN)
#define TAG_SAMPLE_VALUE TAG(1, WT_FIXED64)
#define TAG_SAMPLE_TS TAG(2, WT_VARINT)
#define TAG_MD_TYPE TAG(1, WT_VARINT)
#define TAG_MD_FAMILY TAG(2, WT_LEN)
#define TAG_MD_HELP TAG(4, WT_LEN)
#define TAG_MD_UNIT TAG(5, WT_LEN)

static size_t varint_size(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint8_t *put_fixed64(uint8_t *p, uint64_t v)
{
    /* Protobuf's fixed64 is little-endian whatever the host order is. */
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 8;
}

static uint64_t double_bits(double v)
{
    uint64_t bits;

    memcpy(&bits, &v, sizeof(bits));
    return bits;
}

/* Size of a string field (tag, length, bytes), or 0 for an empty string, which proto3
 * leaves out. */
static uint64_t string_field_size(size_t len)
{
    return len ? 1 + varint_size(len) + (uint64_t)len : 0;
}

static uint8_t *put_string_field(uint8_t *p, uint8_t tag, struct rg_slice s)
{
    if (!s.len)
        return p;
    *p++ = tag;
    p = put_varint(p, s.len);
    memcpy(p, s.ptr, s.len);
    return p + s.len;
}

static int slice_ok(struct rg_slice s)
{
    return s.ptr || !s.len;
}

static uint64_t label_size(const struct rg_label_ref *l)
{
    return string_field_size(l->name.len) + string_field_size(l->value.len);
}

static uint64_t sample_size(const struct rg_sample *s)
{
    uint64_t size = 0;

    if (double_bits(s->v) != 0)
        size += 1 + 8;
    if (s->t != 0)
        size += 1 + varint_size((uint64_t)s->t);
    return size;
}

/* Reserves @size more bytes in @enc's buffer and returns where to write them. The
 * length is added by the caller after writing, so a failure leaves the buffer as it
 * was. */
static int reserve(struct rg_rw_encoder *enc, uint64_t size, uint8_t **out)
{
    int err;

    if (size > RW_MAX_RAW || enc->raw.len > RW_MAX_RAW - size)
        return RG_ETOOBIG;
    err = rg_buf_reserve(&enc->raw, (size_t)size);
    if (err)
        return err;
    *out = (uint8_t *)enc->raw.data + enc->raw.len;
    return 0;
}

/* Records @end as the new end of the request and keeps the buffer NUL-terminated as
 * rg_buf promises. */
static void commit(struct rg_rw_encoder *enc, const uint8_t *end)
{
    enc->raw.len = (size_t)((const char *)end - enc->raw.data);
    enc->raw.data[enc->raw.len] = '\0';
}

void rg_rw_encoder_init(struct rg_rw_encoder *enc)
{
    memset(enc, 0, sizeof(*enc));
}

void rg_rw_encoder_cleanup(struct rg_rw_encoder *enc)
{
    if (!enc)
        return;
    rg_buf_cleanup(&enc->raw);
    memset(enc, 0, sizeof(*enc));
}

void rg_rw_encoder_reset(struct rg_rw_encoder *enc)
{
    rg_buf_reset(&enc->raw);
    enc->series = 0;
    enc->samples = 0;
    enc->metadata = 0;
}

int rg_rw_encoder_add_series(struct rg_rw_encoder *enc, const struct rg_label_ref *labels,
                             size_t n, const struct rg_sample *samples, size_t ns)
{
    uint64_t body = 0;
    uint8_t *p;
    int err;

    if (!enc || (n && !labels) || (ns && !samples))
        return RG_EINVAL;

    /* Pass one: the exact size of the TimeSeries body, stopping as soon as it could
     * no longer fit in a request. */
    for (size_t i = 0; i < n; i++) {
        uint64_t ls;

        if (!slice_ok(labels[i].name) || !slice_ok(labels[i].value))
            return RG_EINVAL;
        if (labels[i].name.len > RW_MAX_RAW || labels[i].value.len > RW_MAX_RAW)
            return RG_ETOOBIG;
        ls = label_size(&labels[i]);
        body += 1 + varint_size(ls) + ls;
        if (body > RW_MAX_RAW)
            return RG_ETOOBIG;
    }
    for (size_t i = 0; i < ns; i++) {
        uint64_t ss = sample_size(&samples[i]);

        body += 1 + varint_size(ss) + ss;
        if (body > RW_MAX_RAW)
            return RG_ETOOBIG;
    }

    err = reserve(enc, 1 + varint_size(body) + body, &p);
    if (err)
        return err;

    /* Pass two: write the bytes into the reserved space. */
    *p++ = TAG_REQ_TIMESERIES;
    p = put_varint(p, body);
    for (size_t i = 0; i < n; i++) {
        *p++ = TAG_TS_LABEL;
        p = put_varint(p, label_size(&labels[i]));
        p = put_string_field(p, TAG_LABEL_NAME, labels[i].name);
        p = put_string_field(p, TAG_LABEL_VALUE, labels[i].value);
    }
    for (size_t i = 0; i < ns; i++) {
        uint64_t bits = double_bits(samples[i].v);

        *p++ = TAG_TS_SAMPLE;
        p = put_varint(p, sample_size(&samples[i]));
        if (bits != 0) {
            *p++ = TAG_SAMPLE_VALUE;
            p = put_fixed64(p, bits);
        }
        if (samples[i].t != 0) {
            /* int64 is a plain two's-complement varint: negative times take 10 bytes. */
            *p++ = TAG_SAMPLE_TS;
            p = put_varint(p, (uint64_t)samples[i].t);
        }
    }
    commit(enc, p);
    enc->series++;
    enc->samples += ns;
    return 0;
}

int rg_rw_encoder_add_metadata(struct rg_rw_encoder *enc, enum rg_metric_type type,
                               struct rg_slice family, struct rg_slice help,
                               struct rg_slice unit)
{
    uint64_t body;
    uint64_t type_v;
    uint8_t *p;
    int err;

    if (!enc || !slice_ok(family) || !slice_ok(help) || !slice_ok(unit))
        return RG_EINVAL;
    if (family.len > RW_MAX_RAW || help.len > RW_MAX_RAW || unit.len > RW_MAX_RAW)
        return RG_ETOOBIG;
    /* An enum is encoded as an int32 varint; negative values take 10 bytes. */
    type_v = (uint64_t)(int64_t)(int)type;
    body = (type_v ? 1 + varint_size(type_v) : 0) + string_field_size(family.len) +
           string_field_size(help.len) + string_field_size(unit.len);

    err = reserve(enc, 1 + varint_size(body) + body, &p);
    if (err)
        return err;
    *p++ = TAG_REQ_METADATA;
    p = put_varint(p, body);
    if (type_v) {
        *p++ = TAG_MD_TYPE;
        p = put_varint(p, type_v);
    }
    p = put_string_field(p, TAG_MD_FAMILY, family);
    p = put_string_field(p, TAG_MD_HELP, help);
    p = put_string_field(p, TAG_MD_UNIT, unit);
    commit(enc, p);
    enc->metadata++;
    return 0;
}

struct rg_slice rg_rw_encoder_raw(const struct rg_rw_encoder *enc)
{
    struct rg_slice s = { enc->raw.data ? enc->raw.data : "", enc->raw.len };

    return s;
}

int rg_rw_encoder_finish(struct rg_rw_encoder *enc, struct rg_buf *snappy_out)
{
    struct rg_slice raw;
    size_t max, out_len;
    int err;

    if (!enc || !snappy_out)
        return RG_EINVAL;
    rg_buf_reset(snappy_out);
    raw = rg_rw_encoder_raw(enc);
    if ((uint64_t)raw.len > RW_MAX_RAW)
        return RG_ETOOBIG;
    max = snappy_max_compressed_length(raw.len);
    err = rg_buf_reserve(snappy_out, max);
    if (err)
        return err;
    out_len = max;
    /* The only failure snappy reports is a too small output buffer, which the
     * reservation above rules out; treat it as a broken invariant of the input. */
    if (snappy_compress(raw.ptr, raw.len, snappy_out->data, &out_len) != SNAPPY_OK)
        return RG_EINVAL;
    snappy_out->len = out_len;
    snappy_out->data[out_len] = '\0';
    return 0;
}
