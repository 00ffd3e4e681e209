/* ingest/rw_encode.h - builds remote-write 1.0 request bodies (prometheus.WriteRequest).
 *
 * The encoder writes the protobuf wire format by hand instead of going through
 * protobuf-c's generated structs, because the load generator and the test data
 * generators build millions of samples and must not allocate one message object per
 * label and sample. Each series is sized first (a two-pass length-prefix scheme: every
 * nested message's length is computed, then the bytes are written once into a buffer
 * reserved for exactly that size), so the raw request grows in one rg_buf with no
 * copying. rg_rw_encoder_finish() compresses the request with the Snappy block format,
 * which remote-write 1.0 requires (the framed format must not be used).
 *
 * Encoded schema (prometheus/prompb remote.proto and types.proto):
 *   WriteRequest   { repeated TimeSeries timeseries = 1; repeated MetricMetadata metadata = 3; }
 *   TimeSeries     { repeated Label labels = 1; repeated Sample samples = 2; }
 *   Label          { string name = 1; string value = 2; }
 *   Sample         { double value = 1; int64 timestamp = 2; }
 *   MetricMetadata { MetricType type = 1; string metric_family_name = 2; string help = 4;
 *                    string unit = 5; }
 * As a proto3 encoder does, fields holding their default value (empty string, zero,
 * +0.0) are left out. Every other double is written with its exact bits, so NaN
 * payloads such as the stale marker (RG_STALE_NAN_BITS) travel unchanged; unlike
 * protobuf-c and Prometheus' encoder, -0.0 is written too, keeping its sign.
 *
 * The encoder does not validate what it is given (label order, duplicate or empty
 * names, sample order): it encodes exactly the input, so tests can also build requests
 * a receiver must reject. No I/O and no clock; one encoder belongs to one thread.
 */
#ifndef RG_INGEST_RW_ENCODE_H
#define RG_INGEST_RW_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/buf.h"

/** A request under construction. Caller-allocated; set up with rg_rw_encoder_init(). */
struct rg_rw_encoder {
    struct rg_buf raw;      /* owned; the uncompressed WriteRequest built so far */
    size_t series;          /* TimeSeries messages added since the last reset */
    size_t samples;         /* samples added since the last reset */
    size_t metadata;        /* MetricMetadata messages added since the last reset */
};

/** Prepares @enc as an empty request. Allocates nothing. */
void rg_rw_encoder_init(struct rg_rw_encoder *enc);

/** Frees what @enc holds; @enc may be initialised again. NULL is a no-op. */
void rg_rw_encoder_cleanup(struct rg_rw_encoder *enc);

/** Empties the request, keeping the allocation for the next one. */
void rg_rw_encoder_reset(struct rg_rw_encoder *enc);

/** Appends one TimeSeries with the @n labels and the @ns samples, in the order given.
 *  Copies the bytes; @labels and @samples are only read during the call.
 *  Returns 0, RG_EINVAL (NULL array with a non-zero count, or a NULL label slice
 *  pointer with a non-zero length), RG_ETOOBIG (the request would exceed the 4 GiB
 *  Snappy limit) or RG_ENOMEM. On error the request is left as it was. */
int rg_rw_encoder_add_series(struct rg_rw_encoder *enc, const struct rg_label_ref *labels,
                             size_t n, const struct rg_sample *samples, size_t ns);

/** Appends one MetricMetadata entry for metric family @family. @help and @unit may
 *  be empty. Copies the bytes. Returns 0, RG_EINVAL, RG_ETOOBIG or RG_ENOMEM; on error
 *  the request is left as it was. */
int rg_rw_encoder_add_metadata(struct rg_rw_encoder *enc, enum rg_metric_type type,
                               struct rg_slice family, struct rg_slice help,
                               struct rg_slice unit);

/** The uncompressed request built so far; borrowed, valid until the next call that
 *  changes @enc. */
struct rg_slice rg_rw_encoder_raw(const struct rg_rw_encoder *enc);

/** Compresses the request (Snappy block format) into @snappy_out, replacing what it
 *  held; the result is a complete remote-write 1.0 request body. @enc keeps its
 *  contents (call rg_rw_encoder_reset() to start the next request).
 *  Returns 0, RG_EINVAL (a NULL argument), RG_ETOOBIG or RG_ENOMEM; on error
 *  @snappy_out is left empty. */
int rg_rw_encoder_finish(struct rg_rw_encoder *enc, struct rg_buf *snappy_out);

#endif
