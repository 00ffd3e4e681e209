/* ingest/remote_write.h - Prometheus remote-write 1.0 request checks and decoding.
 *
 * Three pure steps turn an HTTP request into calls on a sink:
 *   1. header checks (rg_rw_check_encoding, rg_rw_parse_content_type), done before the
 *      body is read so unsupported requests get 415 even when their body is garbage;
 *   2. snappy block decompression (ingest/snappy.h);
 *   3. a zero-copy walk of the prometheus.WriteRequest protobuf (rg_rw_decode_v1).
 *
 * The walk reads the wire format directly (ingest/pbwire.h): label names and values
 * are handed out as slices borrowed from the decompressed buffer, samples are gathered
 * into a scratch array that the decoder reuses across requests, so after a warm-up
 * decoding allocates nothing. Each TimeSeries is decoded in full (labels, samples,
 * exemplars, native histograms) and then validated against the 1.0 label rules; a
 * valid series is passed to the sink at once, an invalid one is counted by reason and
 * dropped, and decoding continues with the next series (a partial write, which the
 * 1.0 specification allows with a 400 answer). Metadata entries (WriteRequest field 3)
 * go to the sink as they are met.
 *
 * Because series are passed on while the walk proceeds, a protobuf error late in the
 * body is detected after earlier series reached the sink; the request is then answered
 * 400 and those series stay written, as with any other partial write.
 *
 * Pure: no I/O, no clock. A decoder is used by one thread at a time.
 */
#ifndef RG_INGEST_REMOTE_WRITE_H
#define RG_INGEST_REMOTE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/buf.h"

/* ---- Header checks ------------------------------------------------------ */

/** 415 body text for an unsupported Content-Encoding. */
#define RG_RW_ENCODING_REASON "unsupported Content-Encoding: only snappy is accepted"

/** Checks a Content-Encoding header value (borrowed; empty when the header is absent).
 *  Empty or "snappy" (any case, surrounding whitespace ignored) is accepted.
 *  Returns 0, or RG_ENOTSUP (answer 415 with RG_RW_ENCODING_REASON). */
int rg_rw_check_encoding(struct rg_slice content_encoding);

/** Parses a Content-Type header value (borrowed; empty when absent) per RFC 9110:
 *  the media type must be application/x-protobuf (any case); parameters are separated
 *  by ';' with optional whitespace, values may be quoted; a `proto` parameter must be
 *  prometheus.WriteRequest; other parameters are ignored. An empty header means 1.0.
 *  On success sets *@version to 1 and returns 0. Otherwise returns RG_ENOTSUP (answer
 *  415) and sets *@reason (may be NULL) to a static sentence for the body; this is
 *  also the answer to io.prometheus.write.v2.Request, which is not supported. */
int rg_rw_parse_content_type(struct rg_slice content_type, int *version, const char **reason);

/* ---- Decoded items handed to the sink ---------------------------------- */

/** One BucketSpan of a native histogram. */
struct rg_rw_span {
    int32_t offset;    /* gap to the previous span, or start index of the first */
    uint32_t length;   /* consecutive buckets */
};

/** One native histogram sample. Arrays are borrowed from the decoder and valid only
 *  during the sink call. Integer histograms carry deltas, float histograms counts. */
struct rg_rw_histogram {
    int is_float;                      /* count arrived as count_float (oneof) */
    uint64_t count_int;                /* when !is_float */
    double count_float;                /* when is_float */
    double sum;
    int32_t schema;                    /* -4..8, or -53 for custom bounds */
    double zero_threshold;
    int zero_is_float;                 /* zero count arrived as zero_count_float */
    uint64_t zero_count_int;
    double zero_count_float;
    const struct rg_rw_span *neg_spans;
    size_t n_neg_spans;
    const int64_t *neg_deltas;         /* bucket deltas (first relative to 0) */
    size_t n_neg_deltas;
    const double *neg_counts;          /* absolute bucket counts */
    size_t n_neg_counts;
    const struct rg_rw_span *pos_spans;
    size_t n_pos_spans;
    const int64_t *pos_deltas;
    size_t n_pos_deltas;
    const double *pos_counts;
    size_t n_pos_counts;
    int32_t reset_hint;                /* 0 unknown, 1 yes, 2 no, 3 gauge */
    int64_t t;                         /* ms since the epoch */
    const double *custom_values;       /* upper bounds for schema -53 */
    size_t n_custom_values;
};

/** One exemplar. @labels are borrowed and valid only during the sink call. */
struct rg_rw_exemplar {
    const struct rg_label_ref *labels;
    size_t nlabels;
    double v;
    int64_t t;                         /* ms since the epoch */
};

/** Where decoded data goes. Every callback may be NULL (the item is then only
 *  counted). Slices and arrays are borrowed: they point into the request buffer or
 *  the decoder's scratch space and are valid only during the call; copy what you keep.
 *  A callback's return value is the sink's own verdict, for the sink to count; the
 *  decoder ignores it, except RG_ENOMEM, which aborts decoding with RG_ENOMEM. */
struct rg_rw_sink {
    /** A valid series: @labels sorted by name, unique, non-empty, valid UTF-8, with a
     *  non-empty __name__. @nsamples may be 0 (histogram-only or empty series). */
    int (*series)(void *ud, const struct rg_label_ref *labels, size_t nlabels,
                  const struct rg_sample *samples, size_t nsamples);
    /** Each exemplar of a valid series, after its series() call, in wire order. */
    int (*exemplar)(void *ud, const struct rg_label_ref *labels, size_t nlabels,
                    const struct rg_rw_exemplar *ex);
    /** Each native histogram of a valid series, after its series() call. */
    int (*histogram)(void *ud, const struct rg_label_ref *labels, size_t nlabels,
                     const struct rg_rw_histogram *h);
    /** A metadata entry with a non-empty family name and valid UTF-8 strings. Types
     *  outside the known enum arrive as RG_METRIC_UNKNOWN. */
    int (*metadata)(void *ud, enum rg_metric_type type, struct rg_slice family,
                    struct rg_slice help, struct rg_slice unit);
    void *ud;                          /* passed back to every callback */
};

/* ---- Results ------------------------------------------------------------ */

/** Why a series was rejected. The names (rg_rw_reject_name) are usable as the value
 *  of a Prometheus `reason` label. When a series breaks several rules, one reason
 *  counts, found in this order: too many labels; the label rules, checked label by
 *  label in wire order with the metric name last; too many samples; histograms. */
enum rg_rw_reject {
    RG_RW_REJECT_MISSING_METRIC_NAME = 0,  /* no __name__, or an empty one */
    RG_RW_REJECT_EMPTY_LABEL_NAME,
    RG_RW_REJECT_EMPTY_LABEL_VALUE,
    RG_RW_REJECT_DUPLICATE_LABEL_NAME,
    RG_RW_REJECT_UNSORTED_LABELS,           /* names not strictly increasing bytewise */
    RG_RW_REJECT_INVALID_UTF8,              /* in a label name or value */
    RG_RW_REJECT_INVALID_HISTOGRAM,         /* schema, spans vs buckets, bucket limit */
    RG_RW_REJECT_TOO_MANY_LABELS,           /* over rg_rw_limits.max_labels */
    RG_RW_REJECT_TOO_MANY_SAMPLES,          /* over rg_rw_limits.max_samples */
    RG_RW_REJECT__COUNT
};

/** What one request produced. Filled by rg_rw_decode_v1(), which zeroes it first. */
struct rg_rw_result {
    uint64_t series;                       /* valid series handed to the sink */
    uint64_t samples;                      /* their samples */
    uint64_t exemplars;                    /* their exemplars */
    uint64_t histograms;                   /* their native histograms */
    uint64_t metadata;                     /* metadata entries handed to the sink */
    uint64_t rejected_series[RG_RW_REJECT__COUNT];   /* by reason */
    uint64_t rejected_samples[RG_RW_REJECT__COUNT];  /* samples those series carried */
    uint64_t rejected_exemplars;           /* carried by rejected series */
    uint64_t rejected_histograms;          /* carried by rejected series */
    uint64_t rejected_metadata;            /* empty family name or invalid UTF-8 */
    char error[112];                       /* on RG_EBADMSG: "proto: ... at offset N" */
};

/** Name of a rejection reason ("missing_metric_name", ...); "unknown" if out of range. */
const char *rg_rw_reject_name(enum rg_rw_reject reason);

/** Total series rejected over all reasons. */
uint64_t rg_rw_result_rejected_series(const struct rg_rw_result *res);
/** Total samples carried by rejected series. */
uint64_t rg_rw_result_rejected_samples(const struct rg_rw_result *res);

/** Appends to @out the human-readable 400 body for @res, e.g. "rejected 3 series
 *  (2 missing_metric_name, 1 unsorted_labels) carrying 3 samples"; histograms,
 *  exemplars and rejected metadata are mentioned only when non-zero. Appends nothing
 *  when nothing was rejected. Returns 0 or RG_ENOMEM. */
int rg_rw_result_format(const struct rg_rw_result *res, struct rg_buf *out);

/* ---- Decoding ----------------------------------------------------------- */

struct rg_rw_decoder;   /* opaque: reusable scratch arrays */

/** Per-series bounds. They keep the decoder's scratch space independent of the body
 *  size: without them a body of empty Label messages (2 bytes each) would need 16
 *  times its size in label references. A series over a bound is rejected (counted as
 *  too_many_labels, too_many_samples or invalid_histogram) and decoding goes on. */
struct rg_rw_limits {
    size_t max_labels;     /* labels per series, and per exemplar; default 256 */
    size_t max_samples;    /* samples per series in one request; default 65536 */
    size_t max_buckets;    /* elements per histogram array (spans, deltas, counts,
                              custom values); default 65536 */
};

/** Fills @limits with the defaults above. */
void rg_rw_limits_default(struct rg_rw_limits *limits);

/** Allocates a decoder with the default limits. Returns 0 or RG_ENOMEM. */
int rg_rw_decoder_new(struct rg_rw_decoder **out);
/** Replaces the limits of @dec (copied). Returns 0, or RG_EINVAL when one is 0. */
int rg_rw_decoder_set_limits(struct rg_rw_decoder *dec, const struct rg_rw_limits *limits);
/** Frees @dec and its scratch space. NULL is a no-op. */
void rg_rw_decoder_free(struct rg_rw_decoder *dec);

/** Walks the prometheus.WriteRequest @pb (borrowed, @len bytes, already
 *  decompressed) and reports what it holds to @sink (borrowed; may be NULL to only
 *  count). Fills @res (zeroed first).
 *  Returns 0 when the message is well-formed, whatever was rejected (check
 *  rg_rw_result_rejected_series()); RG_EBADMSG on a protobuf-level error, with the
 *  reason in res->error (series before the error may already have reached the sink);
 *  RG_ENOMEM when scratch space cannot grow or a sink callback returned RG_ENOMEM. */
int rg_rw_decode_v1(struct rg_rw_decoder *dec, const uint8_t *pb, size_t len,
                    const struct rg_rw_sink *sink, struct rg_rw_result *res);

/** Decompresses the snappy block @body (borrowed, @len bytes) into the decoder's own
 *  reusable buffer, refusing a declared size over @limit before allocating, then runs
 *  rg_rw_decode_v1() on it. Slices given to the sink point into that buffer and are
 *  valid until the next call on @dec. Returns as rg_rw_decode_v1(), plus RG_ETOOBIG
 *  (answer 413) and RG_EBADMSG for snappy errors (reason in res->error). */
int rg_rw_decode_snappy_v1(struct rg_rw_decoder *dec, const void *body, size_t len,
                           size_t limit, const struct rg_rw_sink *sink,
                           struct rg_rw_result *res);

#endif
