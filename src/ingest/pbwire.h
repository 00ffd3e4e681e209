/* ingest/pbwire.h - a minimal zero-copy reader of the protobuf wire format.
 *
 * The remote-write decoder walks protobuf messages directly instead of unpacking them
 * into allocated structures: a reader is a window [p, end) over bytes the caller owns,
 * length-delimited fields become borrowed slices or nested readers over the same
 * bytes, and nothing is copied or allocated. Every read is bounds-checked against the
 * window of the innermost message, so a length prefix can never reach past its parent.
 *
 * The encoding follows the protobuf wire-format specification: base-128 varints of at
 * most 10 bytes (the 10th may only carry the top bit of a 64-bit value), zigzag for
 * sint32/sint64, little-endian fixed32/fixed64, and tags of (field << 3 | wire type)
 * with field numbers 1..2^29-1. Unknown fields of every wire type are skipped; the
 * deprecated group wire types (3, 4) are rejected as malformed. Repeated scalars are
 * accepted both packed (one length-delimited run) and unpacked (one tag per element),
 * as proto3 requires of parsers.
 *
 * The first error found is recorded in a struct rg_pb_error shared by a reader and all
 * the nested readers made from it, with the offset from the start of the outermost
 * message, so callers can report "truncated varint at offset 123".
 *
 * The hot primitives are static inline because the decoder calls them several times
 * per label; everything else lives in pbwire.c. Pure, no allocation, thread-safe.
 */
#ifndef RG_INGEST_PBWIRE_H
#define RG_INGEST_PBWIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"

/** Wire types of the protobuf encoding. */
enum rg_pb_wire {
    RG_PB_VARINT  = 0,
    RG_PB_FIXED64 = 1,
    RG_PB_LEN     = 2,
    RG_PB_SGROUP  = 3,   /* deprecated groups: always an error here */
    RG_PB_EGROUP  = 4,
    RG_PB_FIXED32 = 5,
};

/** The first error met while reading; shared by nested readers. */
struct rg_pb_error {
    const char *what;   /* static text, e.g. "truncated varint"; NULL while no error */
    size_t off;         /* byte offset from the start of the outermost message */
};

/** A window over borrowed bytes. Copy it freely; it owns nothing. */
struct rg_pb_reader {
    const uint8_t *p;           /* next byte to read */
    const uint8_t *end;         /* one past the last byte of this message */
    const uint8_t *base;        /* start of the outermost message (for error offsets) */
    struct rg_pb_error *err;    /* borrowed; where the first error is recorded */
};

/** Starts reading the message @p (borrowed, @len bytes). @err (borrowed) is cleared
 *  and receives the first error of this reader and every reader nested in it. */
void rg_pb_reader_init(struct rg_pb_reader *r, const uint8_t *p, size_t len,
                       struct rg_pb_error *err);

/** Records @what at position @at unless an error was recorded already. */
void rg__pb_record(struct rg_pb_reader *r, const uint8_t *at, const char *what);

/** Records @what at position @at (if no error was recorded yet) and returns
 *  RG_EBADMSG, so callers can write `return rg_pb_fail(r, at, "...")`. Inline so that
 *  the compiler sees every failure path return non-zero. */
static inline int rg_pb_fail(struct rg_pb_reader *r, const uint8_t *at, const char *what)
{
    rg__pb_record(r, at, what);
    return RG_EBADMSG;
}

/** Skips the value of a field of wire type @wt whose tag was just read.
 *  Returns 0 or RG_EBADMSG (truncated value, group or unknown wire type). */
int rg_pb_skip(struct rg_pb_reader *r, unsigned wt);

/** Prepares to read a repeated scalar field whose tag (wire type @wt) was just read
 *  and whose elements have wire type @elem_wt (RG_PB_VARINT, RG_PB_FIXED64 or
 *  RG_PB_FIXED32). For a packed run (@wt == RG_PB_LEN) @elems covers the whole run;
 *  for one unpacked element (@wt == @elem_wt) it covers that element. Either way the
 *  caller then reads exactly *@count elements from @elems with the matching reader.
 *  Returns 0 or RG_EBADMSG (wrong wire type, truncated or ragged run). */
int rg_pb_repeated(struct rg_pb_reader *r, unsigned wt, unsigned elem_wt,
                   struct rg_pb_reader *elems, size_t *count);

/** Human-readable name of wire type @wt ("varint", "len", ...). */
const char *rg_pb_wire_name(unsigned wt);

/** True when @r has no bytes left. */
static inline int rg_pb_done(const struct rg_pb_reader *r)
{
    return r->p >= r->end;
}

/** Byte offset of the read position from the start of the outermost message. */
static inline size_t rg_pb_offset(const struct rg_pb_reader *r)
{
    return (size_t)(r->p - r->base);
}

/** Reads a base-128 varint into @v. Returns 0 or RG_EBADMSG (truncated, longer than
 *  10 bytes, or over 64 bits). */
static inline int rg_pb_read_varint(struct rg_pb_reader *r, uint64_t *v)
{
    const uint8_t *p = r->p;
    uint64_t x = 0;

    /* Most varints in remote-write (tags, lengths) are a single byte. */
    if (p < r->end && *p < 0x80) {
        *v = *p;
        r->p = p + 1;
        return 0;
    }
    for (unsigned i = 0; i < 10; i++) {
        if (p + i >= r->end)
            return rg_pb_fail(r, r->p, "truncated varint");
        uint8_t b = p[i];
        if (i == 9 && b > 1)
            return rg_pb_fail(r, r->p, "varint overflows 64 bits");
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (b < 0x80) {
            *v = x;
            r->p = p + i + 1;
            return 0;
        }
    }
    return rg_pb_fail(r, r->p, "varint longer than 10 bytes");
}

/** Reads a field tag. Returns 0 or RG_EBADMSG (bad varint, field number 0 or over
 *  2^29-1). The wire type is not checked here; see rg_pb_skip(). */
static inline int rg_pb_read_tag(struct rg_pb_reader *r, uint32_t *field, unsigned *wt)
{
    const uint8_t *at = r->p;
    uint64_t t = 0;

    if (at < r->end && *at < 0x80) {
        t = *at;
        r->p = at + 1;
    } else if (rg_pb_read_varint(r, &t) != 0) {
        return RG_EBADMSG;
    }
    if (t > UINT32_MAX || (t >> 3) == 0)
        return rg_pb_fail(r, at, "invalid field number");
    *field = (uint32_t)(t >> 3);
    *wt = (unsigned)(t & 7);
    return 0;
}

/** Reads a little-endian fixed64. Returns 0 or RG_EBADMSG (truncated). */
static inline int rg_pb_read_fixed64(struct rg_pb_reader *r, uint64_t *v)
{
    const uint8_t *p = r->p;

    if ((size_t)(r->end - p) < 8)
        return rg_pb_fail(r, p, "truncated fixed64");
    *v = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24
       | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48
       | (uint64_t)p[7] << 56;
    r->p = p + 8;
    return 0;
}

/** Reads a little-endian fixed32. Returns 0 or RG_EBADMSG (truncated). */
static inline int rg_pb_read_fixed32(struct rg_pb_reader *r, uint32_t *v)
{
    const uint8_t *p = r->p;

    if ((size_t)(r->end - p) < 4)
        return rg_pb_fail(r, p, "truncated fixed32");
    *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    r->p = p + 4;
    return 0;
}

/** Reinterprets the bits of a fixed64 as a double; every bit (NaN payloads, the
 *  stale marker) is preserved. */
static inline double rg_pb_bits_to_double(uint64_t bits)
{
    double d;

    memcpy(&d, &bits, sizeof(d));
    return d;
}

/** Reads a double (fixed64). Returns 0 or RG_EBADMSG. */
static inline int rg_pb_read_double(struct rg_pb_reader *r, double *v)
{
    uint64_t bits;

    if (rg_pb_read_fixed64(r, &bits) != 0)
        return RG_EBADMSG;
    *v = rg_pb_bits_to_double(bits);
    return 0;
}

/** Reads a length-delimited value as a slice borrowed from the reader's bytes.
 *  Returns 0 or RG_EBADMSG (bad length varint, length past the end). */
static inline int rg_pb_read_bytes(struct rg_pb_reader *r, struct rg_slice *s)
{
    const uint8_t *at = r->p;
    uint64_t n = 0;

    if (at < r->end && *at < 0x80) {
        n = *at;
        r->p = at + 1;
    } else if (rg_pb_read_varint(r, &n) != 0) {
        return RG_EBADMSG;
    }
    if (n > (uint64_t)(r->end - r->p))
        return rg_pb_fail(r, at, "length-delimited field past the end of its message");
    s->ptr = (const char *)r->p;
    s->len = (size_t)n;
    r->p += n;
    return 0;
}

/** Reads a length-delimited value as a nested reader sharing @r's base and error.
 *  Returns 0 or RG_EBADMSG. */
static inline int rg_pb_read_sub(struct rg_pb_reader *r, struct rg_pb_reader *sub)
{
    struct rg_slice s;

    if (rg_pb_read_bytes(r, &s) != 0)
        return RG_EBADMSG;
    sub->p = (const uint8_t *)s.ptr;
    sub->end = sub->p + s.len;
    sub->base = r->base;
    sub->err = r->err;
    return 0;
}

/** Decodes a zigzag-encoded sint64. */
static inline int64_t rg_pb_zigzag64(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/** Decodes a zigzag-encoded sint32 (from the low 32 bits, as protobuf parsers do). */
static inline int32_t rg_pb_zigzag32(uint64_t v)
{
    uint32_t u = (uint32_t)v;

    return (int32_t)((u >> 1) ^ (0u - (u & 1)));
}

#endif
