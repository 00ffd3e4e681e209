/* tests/ingest/test_pbwire.c - the zero-copy protobuf wire reader (ingest/pbwire.h).
 *
 * Table-driven: varint edge cases (longest valid, overflow, truncation, non-minimal
 * forms), zigzag, fixed-width values, tags, length-delimited bounds, skipping unknown
 * fields of every wire type, packed and unpacked repeated scalars, and the offsets
 * recorded in errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ingest/pbwire.h"
#include "util/err.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_pbwire__varint(void **state)
{
    static const struct {
        const char *name;
        unsigned char in[12];
        size_t len;
        int want;
        uint64_t value;
        size_t consumed;
        const char *what;
    } cases[] = {
        { "zero", { 0x00 }, 1, 0, 0, 1, NULL },
        { "one byte max", { 0x7f }, 1, 0, 127, 1, NULL },
        { "two bytes", { 0x80, 0x01 }, 2, 0, 128, 2, NULL },
        { "300", { 0xac, 0x02 }, 2, 0, 300, 2, NULL },
        { "uint32 max", { 0xff, 0xff, 0xff, 0xff, 0x0f }, 5, 0, UINT32_MAX, 5, NULL },
        { "uint64 max", { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 }, 10, 0,
          UINT64_MAX, 10, NULL },
        { "trailing bytes stay", { 0x05, 0x06 }, 2, 0, 5, 1, NULL },
        { "non-minimal zero", { 0x80, 0x00 }, 2, 0, 0, 2, NULL },
        { "non-minimal ten bytes",
          { 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 }, 10, 0, 1, 10, NULL },
        { "overflow in 10th byte",
          { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02 }, 10, RG_EBADMSG, 0, 0,
          "varint overflows 64 bits" },
        { "eleven bytes",
          { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 }, 11, RG_EBADMSG,
          0, 0, "varint overflows 64 bits" },
        { "empty", { 0 }, 0, RG_EBADMSG, 0, 0, "truncated varint" },
        { "truncated", { 0x80 }, 1, RG_EBADMSG, 0, 0, "truncated varint" },
        { "truncated long", { 0xff, 0xff, 0xff, 0xff, 0xff }, 5, RG_EBADMSG, 0, 0,
          "truncated varint" },
    };
    (void)state;

    for (size_t i = 0; i < N(cases); i++) {
        struct rg_pb_error err;
        struct rg_pb_reader r;
        uint64_t v = 0xdead;
        int rc;

        rg_pb_reader_init(&r, cases[i].in, cases[i].len, &err);
        rc = rg_pb_read_varint(&r, &v);
        if (rc != cases[i].want)
            fail_msg("case %s: rc %d, want %d", cases[i].name, rc, cases[i].want);
        if (rc == 0) {
            assert_true(v == cases[i].value);
            assert_int_equal(rg_pb_offset(&r), cases[i].consumed);
            assert_null(err.what);
        } else {
            assert_string_equal(err.what, cases[i].what);
            assert_int_equal(err.off, 0);
            assert_int_equal(rg_pb_offset(&r), 0);    /* nothing consumed on error */
        }
    }
}

static void test_pbwire__zigzag(void **state)
{
    static const struct { uint64_t in; int64_t want64; int32_t want32; } cases[] = {
        { 0, 0, 0 },
        { 1, -1, -1 },
        { 2, 1, 1 },
        { 3, -2, -2 },
        { 0xfffffffe, 2147483647, 2147483647 },
        { 0xffffffff, -2147483648LL, INT32_MIN },
        { UINT64_C(0x100000000), 2147483648LL, 0 },      /* sint32 keeps the low 32 bits */
        { UINT64_MAX - 1, INT64_MAX, INT32_MAX },
        { UINT64_MAX, INT64_MIN, INT32_MIN },
    };
    (void)state;

    for (size_t i = 0; i < N(cases); i++) {
        assert_true(rg_pb_zigzag64(cases[i].in) == cases[i].want64);
        assert_true(rg_pb_zigzag32(cases[i].in) == cases[i].want32);
    }
}

static void test_pbwire__fixed(void **state)
{
    static const unsigned char b[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08 };
    /* The stale marker, little-endian: every bit must survive. */
    static const unsigned char stale[] = { 0x02, 0, 0, 0, 0, 0, 0xf0, 0x7f };
    struct rg_pb_error err;
    struct rg_pb_reader r;
    uint64_t v64;
    uint32_t v32;
    double d = 0;
    (void)state;

    rg_pb_reader_init(&r, b, 8, &err);
    assert_int_equal(rg_pb_read_fixed64(&r, &v64), 0);
    assert_true(v64 == UINT64_C(0x0807060504030201));
    assert_true(rg_pb_done(&r));
    rg_pb_reader_init(&r, b, 4, &err);
    assert_int_equal(rg_pb_read_fixed32(&r, &v32), 0);
    assert_true(v32 == 0x04030201u);
    for (size_t len = 0; len < 8; len++) {
        rg_pb_reader_init(&r, b, len, &err);
        assert_int_equal(rg_pb_read_fixed64(&r, &v64), RG_EBADMSG);
        assert_string_equal(err.what, "truncated fixed64");
        if (len < 4) {
            rg_pb_reader_init(&r, b, len, &err);
            assert_int_equal(rg_pb_read_fixed32(&r, &v32), RG_EBADMSG);
            assert_string_equal(err.what, "truncated fixed32");
        }
    }
    rg_pb_reader_init(&r, stale, 8, &err);
    assert_int_equal(rg_pb_read_double(&r, &d), 0);
    memcpy(&v64, &d, 8);
    assert_true(v64 == UINT64_C(0x7ff0000000000002));
}

static void test_pbwire__tags(void **state)
{
    static const struct {
        const char *name;
        unsigned char in[6];
        size_t len;
        int want;
        uint32_t field;
        unsigned wt;
    } cases[] = {
        { "field 1 varint", { 0x08 }, 1, 0, 1, 0 },
        { "field 1 len", { 0x0a }, 1, 0, 1, 2 },
        { "field 15 fixed32", { 0x7d }, 1, 0, 15, 5 },
        { "field 16", { 0x80, 0x01 }, 2, 0, 16, 0 },
        { "largest field", { 0xf9, 0xff, 0xff, 0xff, 0x0f }, 5, 0, 536870911, 1 },
        { "field 0", { 0x02 }, 1, RG_EBADMSG, 0, 0 },
        { "tag over 32 bits", { 0x80, 0x80, 0x80, 0x80, 0x10 }, 5, RG_EBADMSG, 0, 0 },
        { "truncated tag", { 0x80 }, 1, RG_EBADMSG, 0, 0 },
    };
    (void)state;

    for (size_t i = 0; i < N(cases); i++) {
        struct rg_pb_error err;
        struct rg_pb_reader r;
        uint32_t f = 0;
        unsigned wt = 0;
        int rc;

        rg_pb_reader_init(&r, cases[i].in, cases[i].len, &err);
        rc = rg_pb_read_tag(&r, &f, &wt);
        if (rc != cases[i].want)
            fail_msg("case %s: rc %d, want %d", cases[i].name, rc, cases[i].want);
        if (rc == 0) {
            assert_int_equal(f, cases[i].field);
            assert_int_equal(wt, cases[i].wt);
        }
    }
}

static void test_pbwire__length_delimited(void **state)
{
    static const struct {
        const char *name;
        unsigned char in[8];
        size_t len;
        int want;
        size_t slen;
        const char *what;
    } cases[] = {
        { "empty value", { 0x00 }, 1, 0, 0, NULL },
        { "three bytes", { 0x03, 'a', 'b', 'c' }, 4, 0, 3, NULL },
        { "one past the end", { 0x04, 'a', 'b', 'c' }, 4, RG_EBADMSG, 0,
          "length-delimited field past the end of its message" },
        { "huge length", { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f }, 8, RG_EBADMSG, 0,
          "length-delimited field past the end of its message" },
        { "missing length", { 0 }, 0, RG_EBADMSG, 0, "truncated varint" },
    };
    (void)state;

    for (size_t i = 0; i < N(cases); i++) {
        struct rg_pb_error err;
        struct rg_pb_reader r;
        struct rg_slice s = { NULL, 99 };
        int rc;

        rg_pb_reader_init(&r, cases[i].in, cases[i].len, &err);
        rc = rg_pb_read_bytes(&r, &s);
        if (rc != cases[i].want)
            fail_msg("case %s: rc %d, want %d", cases[i].name, rc, cases[i].want);
        if (rc == 0) {
            assert_int_equal(s.len, cases[i].slen);
            assert_ptr_equal(s.ptr, (const char *)cases[i].in + 1);   /* zero-copy */
        } else {
            assert_string_equal(err.what, cases[i].what);
        }
    }
}

/* Reads a message of known field 1 (varint) interleaved with unknown fields, skipping
 * the rest; returns the rc and the last value of field 1. */
static int read_field1(const unsigned char *in, size_t len, uint64_t *v, struct rg_pb_error *err)
{
    struct rg_pb_reader r;
    uint32_t f;
    unsigned wt;

    rg_pb_reader_init(&r, in, len, err);
    while (!rg_pb_done(&r)) {
        if (rg_pb_read_tag(&r, &f, &wt) != 0)
            return RG_EBADMSG;
        if (f == 1 && wt == RG_PB_VARINT) {
            if (rg_pb_read_varint(&r, v) != 0)
                return RG_EBADMSG;
        } else if (rg_pb_skip(&r, wt) != 0) {
            return RG_EBADMSG;
        }
    }
    return 0;
}

static void test_pbwire__skip_unknown_fields(void **state)
{
    static const struct {
        const char *name;
        unsigned char in[24];
        size_t len;
        int want;
        const char *what;
    } cases[] = {
        { "unknown varint", { 0x10, 0xff, 0x01, 0x08, 0x2a }, 5, 0, NULL },
        { "unknown fixed64", { 0x11, 1, 2, 3, 4, 5, 6, 7, 8, 0x08, 0x2a }, 11, 0, NULL },
        { "unknown len", { 0x12, 0x03, 0x08, 0x07, 0x00, 0x08, 0x2a }, 7, 0, NULL },
        { "unknown fixed32", { 0x15, 1, 2, 3, 4, 0x08, 0x2a }, 7, 0, NULL },
        { "unknown high field", { 0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x08, 0x2a }, 8, 0, NULL },
        { "all kinds", { 0x10, 0x01, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x00, 0x15, 0, 0, 0, 0,
                         0x08, 0x2a }, 20, 0, NULL },
        { "start group", { 0x13, 0x14, 0x08, 0x2a }, 4, RG_EBADMSG,
          "group wire type not supported" },
        { "end group", { 0x14, 0x08, 0x2a }, 3, RG_EBADMSG, "group wire type not supported" },
        { "wire type 6", { 0x16, 0x08, 0x2a }, 3, RG_EBADMSG, "invalid wire type" },
        { "wire type 7", { 0x17, 0x08, 0x2a }, 3, RG_EBADMSG, "invalid wire type" },
        { "truncated unknown fixed64", { 0x08, 0x2a, 0x11, 1, 2, 3 }, 6, RG_EBADMSG,
          "truncated fixed64" },
        { "truncated unknown fixed32", { 0x08, 0x2a, 0x15, 1, 2, 3 }, 6, RG_EBADMSG,
          "truncated fixed32" },
        { "truncated unknown len", { 0x08, 0x2a, 0x12, 0x05, 1 }, 5, RG_EBADMSG,
          "length-delimited field past the end of its message" },
        { "truncated unknown varint", { 0x08, 0x2a, 0x10, 0x80 }, 4, RG_EBADMSG,
          "truncated varint" },
    };
    (void)state;

    for (size_t i = 0; i < N(cases); i++) {
        struct rg_pb_error err;
        uint64_t v = 0;
        int rc = read_field1(cases[i].in, cases[i].len, &v, &err);

        if (rc != cases[i].want)
            fail_msg("case %s: rc %d, want %d", cases[i].name, rc, cases[i].want);
        if (rc == 0)
            assert_true(v == 42);
        else
            assert_string_equal(err.what, cases[i].what);
    }
}

/* Collects every element of repeated field 1 (sint64 or double) from @in. */
static int collect(const unsigned char *in, size_t len, unsigned elem_wt, int64_t *ints,
                   double *dbls, size_t *n, struct rg_pb_error *err)
{
    struct rg_pb_reader r, e;
    uint32_t f;
    unsigned wt;
    size_t count;
    uint64_t v = 0;

    *n = 0;
    rg_pb_reader_init(&r, in, len, err);
    while (!rg_pb_done(&r)) {
        if (rg_pb_read_tag(&r, &f, &wt) != 0)
            return RG_EBADMSG;
        if (f != 1) {
            if (rg_pb_skip(&r, wt) != 0)
                return RG_EBADMSG;
            continue;
        }
        if (rg_pb_repeated(&r, wt, elem_wt, &e, &count) != 0)
            return RG_EBADMSG;
        for (size_t i = 0; i < count; i++) {
            if (elem_wt == RG_PB_VARINT) {
                assert_int_equal(rg_pb_read_varint(&e, &v), 0);
                ints[(*n)++] = rg_pb_zigzag64(v);
            } else {
                assert_int_equal(rg_pb_read_fixed64(&e, &v), 0);
                dbls[(*n)++] = rg_pb_bits_to_double(v);
            }
        }
        assert_true(rg_pb_done(&e));
    }
    return 0;
}

static void test_pbwire__packed_and_unpacked(void **state)
{
    static const struct {
        const char *name;
        unsigned elem_wt;
        unsigned char in[40];
        size_t len;
        int want;
        size_t n;
        int64_t ints[4];
        double dbls[4];
    } cases[] = {
        { "packed sint64", RG_PB_VARINT, { 0x0a, 0x04, 0x02, 0x01, 0x80, 0x01 }, 6, 0, 3,
          { 1, -1, 64 }, { 0 } },
        { "unpacked sint64", RG_PB_VARINT, { 0x08, 0x02, 0x08, 0x01, 0x08, 0x80, 0x01 }, 7, 0, 3,
          { 1, -1, 64 }, { 0 } },
        { "mixed runs", RG_PB_VARINT, { 0x08, 0x02, 0x10, 0x05, 0x0a, 0x02, 0x01, 0x04 }, 8, 0, 3,
          { 1, -1, 2 }, { 0 } },
        { "empty packed run", RG_PB_VARINT, { 0x0a, 0x00 }, 2, 0, 0, { 0 }, { 0 } },
        { "packed doubles", RG_PB_FIXED64,
          { 0x0a, 0x10, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0xc0 }, 18, 0, 2,
          { 0 }, { 1.0, -2.0 } },
        { "unpacked doubles", RG_PB_FIXED64,
          { 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x09, 0, 0, 0, 0, 0, 0, 0, 0xc0 }, 18, 0, 2,
          { 0 }, { 1.0, -2.0 } },
        { "ragged packed doubles", RG_PB_FIXED64, { 0x0a, 0x07, 0, 0, 0, 0, 0, 0, 0 }, 9,
          RG_EBADMSG, 0, { 0 }, { 0 } },
        { "truncated packed varint", RG_PB_VARINT, { 0x0a, 0x02, 0x02, 0x81 }, 4, RG_EBADMSG, 0,
          { 0 }, { 0 } },
        { "packed run past the end", RG_PB_VARINT, { 0x0a, 0x05, 0x02 }, 3, RG_EBADMSG, 0,
          { 0 }, { 0 } },
        { "wrong wire type", RG_PB_VARINT, { 0x0d, 0, 0, 0, 0 }, 5, RG_EBADMSG, 0, { 0 }, { 0 } },
        { "double as varint", RG_PB_FIXED64, { 0x08, 0x01 }, 2, RG_EBADMSG, 0, { 0 }, { 0 } },
    };
    (void)state;

    for (size_t i = 0; i < N(cases); i++) {
        struct rg_pb_error err;
        int64_t ints[8];
        double dbls[8];
        size_t n = 0;
        int rc = collect(cases[i].in, cases[i].len, cases[i].elem_wt, ints, dbls, &n, &err);

        if (rc != cases[i].want)
            fail_msg("case %s: rc %d, want %d", cases[i].name, rc, cases[i].want);
        if (rc != 0)
            continue;
        assert_int_equal(n, cases[i].n);
        for (size_t j = 0; j < n; j++) {
            if (cases[i].elem_wt == RG_PB_VARINT)
                assert_true(ints[j] == cases[i].ints[j]);
            else
                assert_true(dbls[j] == cases[i].dbls[j]);
        }
    }
}

static void test_pbwire__nested_error_offset(void **state)
{
    /* field 1 len 5 { field 2 len 3 { field 1 varint <truncated> } } at offsets 0, 2, 4 */
    static const unsigned char in[] = { 0x0a, 0x05, 0x12, 0x03, 0x08, 0x80, 0x80 };
    struct rg_pb_error err;
    struct rg_pb_reader r, a, b;
    uint32_t f;
    unsigned wt;
    uint64_t v;
    (void)state;

    rg_pb_reader_init(&r, in, sizeof(in), &err);
    assert_int_equal(rg_pb_read_tag(&r, &f, &wt), 0);
    assert_int_equal(rg_pb_read_sub(&r, &a), 0);
    assert_int_equal(rg_pb_read_tag(&a, &f, &wt), 0);
    assert_int_equal(rg_pb_read_sub(&a, &b), 0);
    assert_int_equal(rg_pb_read_tag(&b, &f, &wt), 0);
    assert_int_equal(rg_pb_read_varint(&b, &v), RG_EBADMSG);
    assert_string_equal(err.what, "truncated varint");
    assert_int_equal(err.off, 5);
    /* The first error is kept. */
    assert_int_equal(rg_pb_fail(&r, in, "later"), RG_EBADMSG);
    assert_string_equal(err.what, "truncated varint");
    assert_string_equal(rg_pb_wire_name(RG_PB_LEN), "len");
    assert_string_equal(rg_pb_wire_name(7), "invalid");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pbwire__varint),
        cmocka_unit_test(test_pbwire__zigzag),
        cmocka_unit_test(test_pbwire__fixed),
        cmocka_unit_test(test_pbwire__tags),
        cmocka_unit_test(test_pbwire__length_delimited),
        cmocka_unit_test(test_pbwire__skip_unknown_fields),
        cmocka_unit_test(test_pbwire__packed_and_unpacked),
        cmocka_unit_test(test_pbwire__nested_error_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
