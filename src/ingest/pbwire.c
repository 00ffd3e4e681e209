/* ingest/pbwire.c - the cold parts of the protobuf wire reader (see pbwire.h).
 *
 * Error recording, skipping of unknown fields, and the set-up of packed or unpacked
 * repeated scalar runs. Counting the elements of a packed varint run up front lets the
 * caller size its scratch array once: every varint ends in exactly one byte below 0x80.
 */
#include "ingest/pbwire.h"

void rg_pb_reader_init(struct rg_pb_reader *r, const uint8_t *p, size_t len,
                       struct rg_pb_error *err)
{
    r->p = p;
    r->end = p + len;
    r->base = p;
    r->err = err;
    err->what = NULL;
    err->off = 0;
}

void rg__pb_record(struct rg_pb_reader *r, const uint8_t *at, const char *what)
{
    if (r->err && !r->err->what) {
        r->err->what = what;
        r->err->off = (size_t)(at - r->base);
    }
}

const char *rg_pb_wire_name(unsigned wt)
{
    static const char *const names[] = {
        "varint", "fixed64", "len", "start-group", "end-group", "fixed32",
    };

    return wt < sizeof(names) / sizeof(names[0]) ? names[wt] : "invalid";
}

int rg_pb_skip(struct rg_pb_reader *r, unsigned wt)
{
    uint64_t v;
    uint32_t v32;
    struct rg_slice s;

    switch (wt) {
    case RG_PB_VARINT:
        return rg_pb_read_varint(r, &v);
    case RG_PB_FIXED64:
        return rg_pb_read_fixed64(r, &v);
    case RG_PB_LEN:
        return rg_pb_read_bytes(r, &s);
    case RG_PB_FIXED32:
        return rg_pb_read_fixed32(r, &v32);
    case RG_PB_SGROUP:
    case RG_PB_EGROUP:
        /* Groups are not part of proto3 and no remote-write sender emits them. */
        return rg_pb_fail(r, r->p, "group wire type not supported");
    default:
        return rg_pb_fail(r, r->p, "invalid wire type");
    }
}

/* Counts the varints in [p, end); fails when the last one is unterminated or any is
 * longer than 10 bytes. */
static int count_varints(struct rg_pb_reader *r, const uint8_t *p, const uint8_t *end,
                         size_t *count)
{
    size_t n = 0;
    unsigned run = 0;

    for (; p < end; p++) {
        if (*p < 0x80) {
            n++;
            run = 0;
        } else if (++run >= 10) {
            return rg_pb_fail(r, p, "varint longer than 10 bytes");
        }
    }
    if (run != 0)
        return rg_pb_fail(r, end, "truncated varint in packed field");
    *count = n;
    return 0;
}

int rg_pb_repeated(struct rg_pb_reader *r, unsigned wt, unsigned elem_wt,
                   struct rg_pb_reader *elems, size_t *count)
{
    const uint8_t *start = r->p;
    size_t width;

    if (wt == RG_PB_LEN) {
        if (rg_pb_read_sub(r, elems) != 0)
            return RG_EBADMSG;
        switch (elem_wt) {
        case RG_PB_VARINT:
            return count_varints(r, elems->p, elems->end, count);
        case RG_PB_FIXED64:
        case RG_PB_FIXED32:
            width = elem_wt == RG_PB_FIXED64 ? 8 : 4;
            if ((size_t)(elems->end - elems->p) % width != 0)
                return rg_pb_fail(r, start, "packed fixed-width field with a ragged length");
            *count = (size_t)(elems->end - elems->p) / width;
            return 0;
        default:
            return rg_pb_fail(r, start, "packed field of a non-scalar type");
        }
    }
    if (wt != elem_wt)
        return rg_pb_fail(r, start, "repeated scalar field with the wrong wire type");
    /* One unpacked element: skip it to find its extent, then hand back a reader over
     * exactly its bytes, so packed and unpacked runs are consumed the same way. */
    if (rg_pb_skip(r, wt) != 0)
        return RG_EBADMSG;
    elems->p = start;
    elems->end = r->p;
    elems->base = r->base;
    elems->err = r->err;
    *count = 1;
    return 0;
}
