/* tests/ingest/test_snappy.c - bounded snappy decompression (ingest/snappy.h).
 *
 * Covers the order of the checks (framed signature, length preamble against the limit
 * before any allocation, then real decompression), corrupt and empty bodies, and reuse
 * of the output buffer without reallocation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <snappy-c.h>

#include "ingest/snappy.h"
#include "util/err.h"

/* Compresses @len bytes of @in into a malloc'd block; *@out_len gets its size. */
static char *compress(const void *in, size_t len, size_t *out_len)
{
    size_t cap = snappy_max_compressed_length(len);
    char *out = malloc(cap);

    assert_non_null(out);
    *out_len = cap;
    assert_int_equal(snappy_compress(in, len, out, out_len), SNAPPY_OK);
    return out;
}

static void test_snappy__round_trip(void **state)
{
    static const size_t sizes[] = { 0, 1, 63, 64, 1000, 65536, 300000 };
    struct rg_buf out = { 0 };
    (void)state;

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *raw = malloc(sizes[i] + 1);
        size_t clen;
        char *c;
        const char *reason = "unset";

        assert_non_null(raw);
        for (size_t j = 0; j < sizes[i]; j++)
            raw[j] = (char)((j * 7 + j / 13) & 0xff);
        c = compress(raw, sizes[i], &clen);
        assert_int_equal(rg_snappy_uncompress(c, clen, RG_SNAPPY_DEFAULT_LIMIT, &out, &reason),
                         0);
        assert_null(reason);
        assert_int_equal(out.len, sizes[i]);
        if (sizes[i])
            assert_memory_equal(out.data, raw, sizes[i]);
        assert_int_equal(out.data[out.len], '\0');
        free(c);
        free(raw);
    }
    rg_buf_cleanup(&out);
}

static void test_snappy__declared_length_over_limit_refused_before_allocation(void **state)
{
    /* A 5-byte preamble declaring 4 GiB - 1, with no data at all behind it. */
    static const unsigned char forged[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
    static const struct {
        size_t raw_len;     /* 0: use the forged body */
        size_t limit;
        int want;
    } cases[] = {
        { 0, RG_SNAPPY_DEFAULT_LIMIT, RG_ETOOBIG },
        { 1000, 999, RG_ETOOBIG },
        { 1000, 1000, 0 },
        { 1000, 1001, 0 },
        { (size_t)32 << 20 | 1, RG_SNAPPY_DEFAULT_LIMIT, RG_ETOOBIG },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_buf out = { 0 };
        const char *reason = NULL;
        const void *body = forged;
        size_t blen = sizeof(forged);
        char *raw = NULL, *c = NULL;
        size_t declared;

        if (cases[i].raw_len) {
            raw = calloc(1, cases[i].raw_len);
            assert_non_null(raw);
            c = compress(raw, cases[i].raw_len, &blen);
            body = c;
        }
        assert_int_equal(rg_snappy_declared_len(body, blen, &declared), 0);
        assert_int_equal(declared, cases[i].raw_len ? cases[i].raw_len : 0xffffffffu);
        assert_int_equal(rg_snappy_uncompress(body, blen, cases[i].limit, &out, &reason),
                         cases[i].want);
        if (cases[i].want) {
            /* Refused before any allocation: the buffer was never grown. */
            assert_null(out.data);
            assert_int_equal(out.cap, 0);
            assert_string_equal(reason, "snappy: uncompressed body over the size limit");
        } else {
            assert_int_equal(out.len, cases[i].raw_len);
        }
        rg_buf_cleanup(&out);
        free(c);
        free(raw);
    }
}

static void test_snappy__malformed_bodies(void **state)
{
    static const unsigned char framed[] = {
        0xff, 0x06, 0x00, 0x00, 's', 'N', 'a', 'P', 'p', 'Y',
        0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x61,
    };
    /* Declares 10 bytes, then a literal of 3 bytes only. */
    static const unsigned char short_data[] = { 0x0a, 0x08, 'a', 'b', 'c' };
    /* Declares 2 bytes, then a 5-byte literal: more output than declared. */
    static const unsigned char long_data[] = { 0x02, 0x10, 'a', 'b', 'c', 'd', 'e' };
    /* A preamble varint that never ends. */
    static const unsigned char bad_varint[] = { 0x80, 0x80, 0x80 };
    /* A copy referring before the start of the output. */
    static const unsigned char bad_copy[] = { 0x04, 0x01, 0x05, 0x00 };
    static const struct {
        const char *name;
        const void *body;
        size_t len;
        int want;
        const char *reason;
    } cases[] = {
        { "empty", "", 0, RG_EBADMSG, "snappy: empty body" },
        { "framed", framed, sizeof(framed), RG_EBADMSG, "snappy framed format not supported" },
        { "framed header only", framed, 10, RG_EBADMSG, "snappy framed format not supported" },
        { "short data", short_data, sizeof(short_data), RG_EBADMSG, "snappy: corrupt input" },
        { "long data", long_data, sizeof(long_data), RG_EBADMSG, "snappy: corrupt input" },
        { "bad varint", bad_varint, sizeof(bad_varint), RG_EBADMSG,
          "snappy: corrupt length preamble" },
        { "bad copy", bad_copy, sizeof(bad_copy), RG_EBADMSG, "snappy: corrupt input" },
        { "empty message", "\x00", 1, 0, NULL },
    };
    struct rg_buf out = { 0 };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *reason = "unset";
        int rc = rg_snappy_uncompress(cases[i].body, cases[i].len, RG_SNAPPY_DEFAULT_LIMIT,
                                      &out, &reason);

        if (rc != cases[i].want)
            fail_msg("case %s: rc %d, want %d", cases[i].name, rc, cases[i].want);
        if (cases[i].reason)
            assert_string_equal(reason, cases[i].reason);
        else
            assert_null(reason);
        assert_int_equal(out.len, 0);
    }
    assert_true(rg_snappy_is_framed(framed, sizeof(framed)));
    assert_false(rg_snappy_is_framed(framed, 9));
    assert_false(rg_snappy_is_framed(short_data, sizeof(short_data)));
    rg_buf_cleanup(&out);
}

static void test_snappy__corrupt_never_crashes(void **state)
{
    char raw[4096];
    struct rg_buf out = { 0 };
    size_t clen;
    char *c;
    unsigned seed = 12345;
    (void)state;

    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (char)("remote write "[i % 13] + (i / 512));
    c = compress(raw, sizeof(raw), &clen);
    for (int round = 0; round < 2000; round++) {
        char *m = malloc(clen);
        size_t mlen = clen;
        int rc;

        assert_non_null(m);
        memcpy(m, c, clen);
        seed = seed * 1103515245u + 12345u;
        if (round % 3 == 0)
            mlen = (seed >> 8) % clen;
        else
            m[(seed >> 8) % clen] ^= (char)(1u << ((seed >> 4) & 7));
        rc = rg_snappy_uncompress(m, mlen, sizeof(raw) * 2, &out, NULL);
        assert_true(rc == 0 || rc == RG_EBADMSG || rc == RG_ETOOBIG);
        free(m);
    }
    free(c);
    rg_buf_cleanup(&out);
}

static void test_snappy__buffer_reused(void **state)
{
    char big[10000], small[100];
    struct rg_buf out = { 0 };
    size_t blen, slen;
    char *cb, *cs;
    const char *data;
    size_t cap;
    (void)state;

    memset(big, 'x', sizeof(big));
    memset(small, 'y', sizeof(small));
    cb = compress(big, sizeof(big), &blen);
    cs = compress(small, sizeof(small), &slen);
    assert_int_equal(rg_snappy_uncompress(cb, blen, RG_SNAPPY_DEFAULT_LIMIT, &out, NULL), 0);
    data = out.data;
    cap = out.cap;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(rg_snappy_uncompress(i % 2 ? cb : cs, i % 2 ? blen : slen,
                                              RG_SNAPPY_DEFAULT_LIMIT, &out, NULL), 0);
        assert_int_equal(out.len, i % 2 ? sizeof(big) : sizeof(small));
        assert_ptr_equal(out.data, data);
        assert_int_equal(out.cap, cap);
    }
    free(cb);
    free(cs);
    rg_buf_cleanup(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snappy__round_trip),
        cmocka_unit_test(test_snappy__declared_length_over_limit_refused_before_allocation),
        cmocka_unit_test(test_snappy__malformed_bodies),
        cmocka_unit_test(test_snappy__corrupt_never_crashes),
        cmocka_unit_test(test_snappy__buffer_reused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
