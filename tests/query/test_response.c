/* tests/query/test_response.c - the streaming parser of Prometheus query responses.
 *
 * Golden files: every tests/data/query/NAME.json is parsed and its canonical dump (or
 * its error) compared with NAME.out; RG_APPROVE=1 rewrites the .out files. Each golden
 * input is also fed byte by byte and in seeded random chunks, which must give the very
 * same text. Tables cover timestamp and value text, limits, truncation at every byte,
 * nesting attacks, the expected-type check, parser reuse, and a seeded mutation pass
 * that must never crash (run it under SANITIZE=1).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/response.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/file.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define DATA_DIR "tests/data/query/"

/* ---- Parsing and reading -------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64*: deterministic across runs and platforms. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static void load(const char *name, const char *ext, struct rg_buf *out)
{
    char path[256];
    int rc;

    snprintf(path, sizeof(path), DATA_DIR "%s%s", name, ext);
    rc = rg_file_read(path, 1 << 26, out);
    if (rc)
        fail_msg("cannot read %s: %s", path, rg_strerror(rc));
}

/* Appends the outcome of a finished parse: "error NAME: message" when it failed,
 * then the dump of whatever result came back. */
static void outcome(int rc, struct rg_query_result *res, const struct rg_buf *err,
                    struct rg_buf *text)
{
    if (rc)
        rg_buf_printf(text, "error %s: %s\n", rg_err_name(rc), err->data ? err->data : "");
    if (!rc || res->priv)
        assert_int_equal(rg_query_result_dump(res, text), 0);
}

/* Feeds @data in pieces: @chunk > 0 fixed-size pieces, 0 random pieces (1..64 bytes,
 * sometimes empty), and returns the outcome text in @text. */
static int parse_text(const struct rg_query_parse_opts *opts, const char *data, size_t len,
                      size_t chunk, struct rg_buf *text)
{
    struct rg_query_parser *p;
    struct rg_query_result res;
    struct rg_buf err = { 0 };
    size_t off = 0;
    int rc;

    assert_int_equal(rg_query_parser_new(opts, &p), 0);
    while (off < len) {
        size_t n = chunk ? chunk : (size_t)(rnd() % 65);

        if (n > len - off)
            n = len - off;
        if (rg_query_parser_feed(p, data + off, n))
            break;
        off += n;
    }
    rc = rg_query_parser_finish(p, &res, &err);
    outcome(rc, &res, &err, text);
    rg_query_result_free(&res);
    rg_query_parser_free(p);
    rg_buf_cleanup(&err);
    return rc;
}

static int parse_str(const struct rg_query_parse_opts *opts, const char *json,
                     struct rg_query_result *res, struct rg_buf *err)
{
    rg_buf_reset(err);
    return rg_query_parse(opts, json, strlen(json), res, err);
}

/* ---- Golden files -------------------------------------------------------------------- */

static const char *const golden[] = {
    "vector", "vector_empty", "scalar", "string", "matrix", "no_labels",
    "error_bad_data", "error_execution", "error_timeout", "error_unavailable",
    "warnings_infos", "out_of_order", "unknown_fields", "nan_inf", "unsorted_labels",
    "histogram_vector", "histogram_matrix", "victoriametrics",
    "bad_value_number", "bad_result_object", "bad_label_number", "bad_timestamp_string",
    "bad_point_extra", "bad_point_short", "bad_duplicate_label", "bad_missing_status",
    "bad_unknown_status", "bad_shape_mismatch", "bad_scalar_series", "bad_result_type",
    "bad_value_text", "bad_no_samples", "bad_html", "bad_top_array", "bad_trailing",
    "bad_truncated", "bad_time_range", "bad_missing_result", "bad_nul_label",
    "bad_duplicate_status", "bad_utf8", "error_odd_data", "bad_data_string",
    "bad_time_order", "scalar_type_last", "string_type_last", "bad_pair_in_vector",
};

static void test_golden__files(void **state)
{
    const char *approve = getenv("RG_APPROVE");
    size_t i;
    int k;

    (void)state;
    for (i = 0; i < N(golden); i++) {
        struct rg_buf in = { 0 }, want = { 0 }, got = { 0 }, again = { 0 };
        char gpath[256];

        load(golden[i], ".json", &in);
        parse_text(NULL, in.data, in.len, in.len ? in.len : 1, &got);
        snprintf(gpath, sizeof(gpath), DATA_DIR "%s.out", golden[i]);
        if (approve && *approve) {
            assert_int_equal(rg_file_write_atomic(gpath, got.data, got.len), 0);
        } else {
            if (rg_file_read(gpath, 1 << 20, &want))
                fail_msg("missing %s: run the test with RG_APPROVE=1 to create it", gpath);
            if (strcmp(want.data, got.data) != 0)
                fail_msg("%s differs (RG_APPROVE=1 rewrites it):\n--- want\n%s--- got\n%s",
                         gpath, want.data, got.data);
        }
        /* The same bytes in any pieces give the same outcome. */
        parse_text(NULL, in.data, in.len, 1, &again);
        if (strcmp(got.data, again.data) != 0)
            fail_msg("%s: byte-by-byte feed differs:\n%s---\n%s", golden[i], got.data,
                     again.data);
        rng_state = 0x9e3779b97f4a7c15ull + i;
        for (k = 0; k < 20; k++) {
            rg_buf_reset(&again);
            parse_text(NULL, in.data, in.len, 0, &again);
            if (strcmp(got.data, again.data) != 0)
                fail_msg("%s: random split %d differs:\n%s---\n%s", golden[i], k, got.data,
                         again.data);
        }
        rg_buf_cleanup(&in);
        rg_buf_cleanup(&want);
        rg_buf_cleanup(&got);
        rg_buf_cleanup(&again);
    }
}

/* ---- Numbers --------------------------------------------------------------------------- */

static void test_time__table(void **state)
{
    static const struct {
        const char *text;
        int ok;
        int64_t ms;
    } cases[] = {
        { "1435781451.781", 1, 1435781451781 },
        { "1435781451", 1, 1435781451000 },
        { "1435781451.7", 1, 1435781451700 },
        { "1435781451.78", 1, 1435781451780 },
        { "1435781451.001", 1, 1435781451001 },
        { "1435781451.0015", 1, 1435781451002 },   /* half away from zero */
        { "1435781451.0014999", 1, 1435781451001 },
        { "1435781451.780999899", 1, 1435781451781 },
        { "1.435781451781e9", 1, 1435781451781 },
        { "1.435781451781E+9", 1, 1435781451781 },
        { "1435781451781e-3", 1, 1435781451781 },
        { "0", 1, 0 },
        { "0.0", 1, 0 },
        { "-0", 1, 0 },
        { "0.0004", 1, 0 },
        { "0.0005", 1, 1 },
        { "-1.5", 1, -1500 },
        { "-0.0005", 1, -1 },
        { "1e-30", 1, 0 },
        { "0.000000000000000000000000000001", 1, 0 },
        { "9223372036854775.807", 1, INT64_MAX },
        { "-9223372036854775.807", 1, -INT64_MAX },
        { "9223372036854775.808", 0, 0 },
        { "1e30", 0, 0 },
        { "1e100000000", 0, 0 },
        { "1000000000000000.0001234", 1, 1000000000000000000 },
        { "1000000000000000.0005", 1, 1000000000000000001 },
        { "00001.5", 1, 1500 },
        { "", 0, 0 },
        { "-", 0, 0 },
        { ".", 0, 0 },
        { "1.5x", 0, 0 },
        { "1e", 0, 0 },
        { "1e+", 0, 0 },
        { "+1", 0, 0 },
        { "abc", 0, 0 },
    };
    size_t i;

    (void)state;
    for (i = 0; i < N(cases); i++) {
        int64_t ms = -42;
        int rc = rg_query_parse_time(cases[i].text, strlen(cases[i].text), &ms);

        if (cases[i].ok) {
            if (rc || ms != cases[i].ms)
                fail_msg("\"%s\": rc %d ms %" PRId64 ", want %" PRId64, cases[i].text, rc, ms,
                         cases[i].ms);
        } else if (rc != RG_EINVAL) {
            fail_msg("\"%s\": accepted as %" PRId64, cases[i].text, ms);
        }
    }
}

/* Every ms timestamp, written as Prometheus writes it, comes back exactly. */
static void test_time__prometheus_format_roundtrip(void **state)
{
    int i;

    (void)state;
    rng_state = 7;
    for (i = 0; i < 200000; i++) {
        int64_t t = (int64_t)(rnd() % 4102444800000ull), got = 0;
        char txt[40];

        if (t % 1000)
            snprintf(txt, sizeof(txt), "%" PRId64 ".%03d", t / 1000, (int)(t % 1000));
        else
            snprintf(txt, sizeof(txt), "%" PRId64, t / 1000);
        assert_int_equal(rg_query_parse_time(txt, strlen(txt), &got), 0);
        if (got != t)
            fail_msg("%s -> %" PRId64 ", want %" PRId64, txt, got, t);
    }
}

static int same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof(a)) == 0 || (isnan(a) && isnan(b));
}

static void test_value__table(void **state)
{
    static const struct {
        const char *text;
        int ok;
        double v;
    } cases[] = {
        { "1.5", 1, 1.5 },
        { "0", 1, 0.0 },
        { "-0", 1, -0.0 },
        { "+3", 1, 3.0 },
        { "1e3", 1, 1000.0 },
        { "1E-3", 1, 0.001 },
        { "0.1", 1, 0.1 },
        { ".5", 1, 0.5 },
        { "5.", 1, 5.0 },
        { "123456789012345678", 1, 123456789012345678.0 },
        { "9007199254740993", 1, 9007199254740992.0 },   /* ties to even, via strtod */
        { "0.30000000000000004", 1, 0.30000000000000004 },
        { "1.7976931348623157e+308", 1, 1.7976931348623157e+308 },
        { "4.9e-324", 1, 4.9e-324 },
        { "1e400", 1, INFINITY },
        { "0x1p-2", 1, 0.25 },
        { "NaN", 1, NAN },
        { "nan", 1, NAN },
        { "+Inf", 1, INFINITY },
        { "-Inf", 1, -INFINITY },
        { "Inf", 1, INFINITY },
        { "inf", 1, INFINITY },
        { "+infinity", 1, INFINITY },
        { "-Infinity", 1, -INFINITY },
        { "", 0, 0 },
        { " 1", 0, 0 },
        { "1 ", 0, 0 },
        { "1,5", 0, 0 },
        { "abc", 0, 0 },
        { "-NaN", 0, 0 },
        { "nan(1)", 0, 0 },
        { "infin", 0, 0 },
        { "--1", 0, 0 },
        { "1e", 0, 0 },
        { "0x", 0, 0 },
        { "0xg", 0, 0 },
    };
    size_t i;

    (void)state;
    for (i = 0; i < N(cases); i++) {
        double v = 42;
        int rc = rg_query_parse_value(cases[i].text, strlen(cases[i].text), &v);

        if (cases[i].ok) {
            if (rc || !same_double(v, cases[i].v))
                fail_msg("\"%s\": rc %d v %.17g, want %.17g", cases[i].text, rc, v,
                         cases[i].v);
        } else if (rc != RG_EINVAL) {
            fail_msg("\"%s\": accepted as %.17g", cases[i].text, v);
        }
    }
}

/* The fast path must agree bit for bit with strtod (correct rounding) on random
 * decimal texts of every length and exponent, and on shortest spellings of doubles. */
static void test_value__matches_strtod(void **state)
{
    int i;

    (void)state;
    rng_state = 11;
    for (i = 0; i < 300000; i++) {
        char txt[64];
        double want, got;
        int nd = 1 + (int)(rnd() % 20), dot = (int)(rnd() % (unsigned)(nd + 1)), n = 0, d;

        if (rnd() % 4 == 0)
            txt[n++] = '-';
        for (d = 0; d < nd; d++) {
            if (d == dot && d)
                txt[n++] = '.';
            txt[n++] = (char)('0' + rnd() % 10);
        }
        if (rnd() % 3 == 0)
            n += snprintf(txt + n, sizeof(txt) - (size_t)n, "e%d", (int)(rnd() % 61) - 30);
        txt[n] = '\0';
        want = strtod(txt, NULL);
        assert_int_equal(rg_query_parse_value(txt, (size_t)n, &got), 0);
        if (!same_double(got, want))
            fail_msg("\"%s\": %.17g, strtod %.17g", txt, got, want);
    }
    for (i = 0; i < 100000; i++) {
        uint64_t bits = rnd();
        double x, got;
        char txt[40];

        memcpy(&x, &bits, sizeof(x));
        if (isnan(x) || isinf(x))
            continue;
        snprintf(txt, sizeof(txt), "%.17g", x);
        assert_int_equal(rg_query_parse_value(txt, strlen(txt), &got), 0);
        if (!same_double(got, x))
            fail_msg("\"%s\": %.17g", txt, got);
    }
}

/* ---- Results --------------------------------------------------------------------------- */

static void test_result__vector_fields(void **state)
{
    static const char json[] =
        "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
        "{\"metric\":{\"job\":\"b\",\"__name__\":\"up\"},\"value\":[1435781451.781,\"1\"]},"
        "{\"metric\":{\"__name__\":\"up\",\"job\":\"c\"},\"value\":[1435781451.781,\"NaN\"]}"
        "]}}";
    struct rg_query_result res;
    struct rg_buf err = { 0 };
    char *copy = strdup(json);

    (void)state;
    assert_non_null(copy);
    assert_int_equal(rg_query_parse(NULL, copy, strlen(copy), &res, &err), 0);
    /* The result owns its strings: scribbling over the input changes nothing. */
    memset(copy, 'x', strlen(copy));
    free(copy);
    assert_int_equal(res.type, RG_PROMQL_VT_VECTOR);
    assert_int_equal(res.nseries, 2);
    assert_int_equal(res.series[0].nlabels, 2);
    assert_string_equal(res.series[0].labels[0].name, "__name__");
    assert_string_equal(res.series[0].labels[0].value, "up");
    assert_string_equal(res.series[0].labels[1].name, "job");
    assert_string_equal(res.series[0].labels[1].value, "b");
    assert_int_equal(res.series[0].npoints, 1);
    assert_int_equal(res.series[0].points[0].t, 1435781451781);
    assert_true(res.series[0].points[0].v == 1.0);
    assert_string_equal(res.series[1].labels[1].value, "c");
    assert_true(isnan(res.series[1].points[0].v));
    assert_int_equal(res.nwarnings, 0);
    assert_null(res.error);
    rg_query_result_free(&res);
    assert_null(res.series);
    rg_query_result_free(&res);
    rg_query_result_free(NULL);
    rg_query_parser_free(NULL);
    rg_buf_cleanup(&err);
}

static void test_result__server_errors(void **state)
{
    static const struct {
        const char *json;
        int rc;
        const char *type, *msg, *errtext;
        size_t nwarnings, ninfos;
    } cases[] = {
        { "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error\"}",
          RG_EEXEC, "bad_data", "parse error", "bad_data: parse error", 0, 0 },
        { "{\"error\":\"vector cannot contain metrics with the same labelset\","
          "\"errorType\":\"execution\",\"status\":\"error\",\"warnings\":[\"w\"],"
          "\"infos\":[\"i1\",\"i2\"]}",
          RG_EEXEC, "execution", "vector cannot contain metrics with the same labelset",
          "execution: vector cannot contain metrics with the same labelset", 1, 2 },
        { "{\"status\":\"error\",\"errorType\":\"timeout\",\"error\":\"query timed out\"}",
          RG_ETIMEDOUT, "timeout", "query timed out", "timeout: query timed out", 0, 0 },
        { "{\"status\":\"error\"}", RG_EEXEC, "", "", "error: ", 0, 0 },
        { "{\"status\":\"error\",\"errorType\":null,\"error\":\"x\",\"data\":{\"resultType\":"
          "\"vector\",\"result\":[{\"metric\":{},\"value\":[1,\"2\"]}]}}",
          RG_EEXEC, "", "x", "error: x", 0, 0 },
    };
    size_t i;

    (void)state;
    for (i = 0; i < N(cases); i++) {
        struct rg_query_result res;
        struct rg_buf err = { 0 };
        int rc = parse_str(NULL, cases[i].json, &res, &err);

        assert_int_equal(rc, cases[i].rc);
        assert_string_equal(res.error_type, cases[i].type);
        assert_string_equal(res.error, cases[i].msg);
        assert_string_equal(err.data, cases[i].errtext);
        assert_int_equal(res.nwarnings, cases[i].nwarnings);
        assert_int_equal(res.ninfos, cases[i].ninfos);
        assert_int_equal(res.nseries, 0);
        assert_int_equal(res.type, RG_PROMQL_VT_NONE);
        rg_query_result_free(&res);
        rg_buf_cleanup(&err);
    }
}

static void test_result__expected_type(void **state)
{
    static const char matrix[] =
        "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
        "{\"metric\":{},\"values\":[[1,\"1\"]]}]}}";
    static const char scalar[] =
        "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"1\"]}}";
    static const struct {
        const char *json;
        unsigned expect;
        int rc;
        const char *msg;
    } cases[] = {
        { matrix, RG_QUERY_EXPECT(RG_PROMQL_VT_VECTOR) | RG_QUERY_EXPECT(RG_PROMQL_VT_SCALAR),
          RG_EBADMSG, "unexpected result type matrix (wanted scalar or vector)" },
        { matrix, RG_QUERY_EXPECT(RG_PROMQL_VT_MATRIX), 0, NULL },
        { matrix, 0, 0, NULL },
        { scalar, RG_QUERY_EXPECT(RG_PROMQL_VT_MATRIX), RG_EBADMSG,
          "unexpected result type scalar (wanted matrix)" },
        { scalar, RG_QUERY_EXPECT(RG_PROMQL_VT_VECTOR) | RG_QUERY_EXPECT(RG_PROMQL_VT_SCALAR),
          0, NULL },
    };
    size_t i;

    (void)state;
    for (i = 0; i < N(cases); i++) {
        struct rg_query_parse_opts o;
        struct rg_query_result res;
        struct rg_buf err = { 0 };
        int rc;

        rg_query_parse_opts_default(&o);
        o.expect = cases[i].expect;
        rc = parse_str(&o, cases[i].json, &res, &err);
        assert_int_equal(rc, cases[i].rc);
        if (cases[i].msg) {
            assert_string_equal(err.data, cases[i].msg);
            assert_null(res.series);
            assert_null(res.priv);
        }
        rg_query_result_free(&res);
        rg_buf_cleanup(&err);
    }
}

/* ---- Limits ------------------------------------------------------------------------------ */

/* A vector response of @nseries series with 3 labels each. */
static void make_vector(struct rg_buf *b, size_t nseries)
{
    size_t i;

    rg_buf_puts(b, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[");
    for (i = 0; i < nseries; i++)
        rg_buf_printf(b, "%s{\"metric\":{\"__name__\":\"m\",\"job\":\"j%zu\",\"k\":\"v\"},"
                      "\"value\":[1700000000.%03zu,\"%zu.5\"]}", i ? "," : "", i % 7, i % 1000,
                      i);
    rg_buf_puts(b, "]}}");
}

static void test_limits__table(void **state)
{
    struct rg_buf doc = { 0 };
    struct {
        size_t max_bytes, max_series, max_points;
        int rc;
        const char *msg;
    } cases[] = {
        { 0, 0, 0, 0, NULL },
        { 0 /* doc.len below */, 0, 0, 0, NULL },
        { 0 /* doc.len - 1 */, 0, 0, RG_ETOOBIG, "response too large: more than %zu bytes" },
        { 0, 100, 0, 0, NULL },
        { 0, 99, 0, RG_ETOOBIG, "data.result[99]: response too large: more than 99 series" },
        { 0, 0, 100, 0, NULL },
        { 0, 0, 50, RG_ETOOBIG,
          "data.result[50].value[1]: response too large: more than 50 points" },
    };
    size_t i, chunk;

    (void)state;
    make_vector(&doc, 100);
    cases[1].max_bytes = doc.len;
    cases[2].max_bytes = doc.len - 1;
    for (i = 0; i < N(cases); i++) {
        for (chunk = 1; chunk <= doc.len; chunk = chunk * 3 + 1) {
            struct rg_query_parse_opts o = { 0 };
            struct rg_buf text = { 0 }, want = { 0 };
            int rc;

            o.max_bytes = cases[i].max_bytes;
            o.max_series = cases[i].max_series;
            o.max_points = cases[i].max_points;
            rc = parse_text(&o, doc.data, doc.len, chunk, &text);
            assert_int_equal(rc, cases[i].rc);
            if (cases[i].msg) {
                rg_buf_printf(&want, "error RG_ETOOBIG: ");
                rg_buf_printf(&want, cases[i].msg, cases[i].max_bytes);
                rg_buf_putc(&want, '\n');
                assert_string_equal(text.data, want.data);
            }
            rg_buf_cleanup(&text);
            rg_buf_cleanup(&want);
        }
    }
    rg_buf_cleanup(&doc);
}

/* A bigger document in random pieces, many times: identical to the one-piece parse. */
static void test_chunks__random_splits(void **state)
{
    struct rg_buf doc = { 0 }, whole = { 0 };
    int k;

    (void)state;
    make_vector(&doc, 3000);
    assert_int_equal(parse_text(NULL, doc.data, doc.len, doc.len, &whole), 0);
    rng_state = 99;
    for (k = 0; k < 30; k++) {
        struct rg_buf text = { 0 };

        assert_int_equal(parse_text(NULL, doc.data, doc.len, 0, &text), 0);
        assert_string_equal(text.data, whole.data);
        rg_buf_cleanup(&text);
    }
    rg_buf_cleanup(&doc);
    rg_buf_cleanup(&whole);
}

/* An oversize body is refused as it arrives: nothing past the limit is parsed. */
static void test_limits__stream_refused_early(void **state)
{
    struct rg_query_parse_opts o = { 0 };
    struct rg_query_parser *p;
    struct rg_query_result res;
    struct rg_buf err = { 0 };
    char chunk[4096];
    size_t fed = 0;
    int rc = 0;

    (void)state;
    o.max_bytes = 1 << 20;
    assert_int_equal(rg_query_parser_new(&o, &p), 0);
    assert_int_equal(rg_query_parser_feed(p, "{\"status\":\"success\",\"x\":\"", 25), 0);
    memset(chunk, 'a', sizeof(chunk));
    while (fed < (size_t)200 << 20 && !(rc = rg_query_parser_feed(p, chunk, sizeof(chunk))))
        fed += sizeof(chunk);
    assert_int_equal(rc, RG_ETOOBIG);
    assert_true(fed < o.max_bytes);
    /* Sticky. */
    assert_int_equal(rg_query_parser_feed(p, "}", 1), RG_ETOOBIG);
    assert_int_equal(rg_query_parser_finish(p, &res, &err), RG_ETOOBIG);
    assert_string_equal(err.data, "response too large: more than 1048576 bytes");
    rg_query_result_free(&res);
    rg_query_parser_free(p);
    rg_buf_cleanup(&err);
}

/* ---- Robustness ------------------------------------------------------------------------- */

static const char sample_doc[] =
    "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
    "{\"metric\":{\"__name__\":\"http_requests_total\",\"job\":\"api\",\"path\":\"/a\\\"b\"},"
    "\"values\":[[1435781430.781,\"1\"],[1435781445.781,\"+Inf\"],[1435781460,\"NaN\"]]},"
    "{\"values\":[[1435781430.781,\"-2.5e-3\"]],\"metric\":{\"job\":\"x\\u00e9\"},"
    "\"unknown\":[{\"a\":[1,2,{}]},null,true,false]}],\"stats\":{\"x\":1}},"
    "\"warnings\":[\"w1\"],\"infos\":[\"i1\"]}";

static void test_truncated__every_prefix(void **state)
{
    size_t len = strlen(sample_doc), n;
    struct rg_buf full = { 0 };

    (void)state;
    assert_int_equal(parse_text(NULL, sample_doc, len, len, &full), 0);
    for (n = 0; n < len; n++) {
        struct rg_buf text = { 0 };
        int rc = parse_text(NULL, sample_doc, n, n ? n : 1, &text);

        if (rc != RG_EBADMSG)
            fail_msg("prefix of %zu bytes: rc %d, text %s", n, rc, text.data);
        rg_buf_reset(&text);
        /* Split in two at every position as well. */
        rc = parse_text(NULL, sample_doc, len, n ? n : 1, &text);
        assert_int_equal(rc, 0);
        assert_string_equal(text.data, full.data);
        rg_buf_cleanup(&text);
    }
    rg_buf_cleanup(&full);
}

static void test_nesting__deep(void **state)
{
    static const struct {
        const char *prefix;
        const char *open;
        const char *msg;   /* expected prefix of the message */
    } cases[] = {
        { "", "[", "response is not a JSON object, got array" },
        { "{\"x\":", "[", "JSON nested deeper than 64 levels" },
        { "{\"status\":\"success\",\"zz\":", "{\"a\":", "JSON nested deeper than 64 levels" },
        { "{\"data\":{\"result\":[{\"extra\":", "[", "data.result[0]: JSON nested deeper" },
        { "{\"data\":{\"result\":[{\"metric\":", "{\"a\":",
          "data.result[0].metric.a: label value must be a string, got object" },
        { "{\"data\":{\"result\":", "[", "data.result[0]: a series must be an object, got "
          "array" },
    };
    size_t i, k, depth = 100000;

    (void)state;
    for (i = 0; i < N(cases); i++) {
        struct rg_buf doc = { 0 }, err = { 0 };
        struct rg_query_result res;
        int rc;

        rg_buf_puts(&doc, cases[i].prefix);
        for (k = 0; k < depth; k++)
            rg_buf_puts(&doc, cases[i].open);
        rc = rg_query_parse(NULL, doc.data, doc.len, &res, &err);
        assert_int_equal(rc, RG_EBADMSG);
        if (strncmp(err.data, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("case %zu: message \"%s\", want \"%s...\"", i, err.data, cases[i].msg);
        rg_query_result_free(&res);
        rg_buf_cleanup(&doc);
        rg_buf_cleanup(&err);
    }
}

/* Nesting just under the limit inside an unknown key is skipped like any value. */
static void test_nesting__at_limit(void **state)
{
    struct rg_buf doc = { 0 }, err = { 0 };
    struct rg_query_result res;
    int k;

    (void)state;
    rg_buf_puts(&doc, "{\"x\":");
    for (k = 0; k < 63; k++)
        rg_buf_putc(&doc, '[');
    for (k = 0; k < 63; k++)
        rg_buf_putc(&doc, ']');
    rg_buf_puts(&doc, ",\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                "\"result\":[]}}");
    assert_int_equal(rg_query_parse(NULL, doc.data, doc.len, &res, &err), 0);
    assert_int_equal(res.type, RG_PROMQL_VT_VECTOR);
    rg_query_result_free(&res);
    rg_buf_reset(&doc);
    rg_buf_puts(&doc, "{\"x\":");
    for (k = 0; k < 64; k++)
        rg_buf_putc(&doc, '[');
    for (k = 0; k < 64; k++)
        rg_buf_putc(&doc, ']');
    rg_buf_puts(&doc, "}");
    assert_int_equal(rg_query_parse(NULL, doc.data, doc.len, &res, &err), RG_EBADMSG);
    rg_query_result_free(&res);
    rg_buf_cleanup(&doc);
    rg_buf_cleanup(&err);
}

static void test_parser__reuse_and_sticky(void **state)
{
    struct rg_query_parser *p;
    struct rg_query_result res;
    struct rg_buf err = { 0 }, a = { 0 }, b = { 0 };
    size_t len = strlen(sample_doc);
    int round;

    (void)state;
    assert_int_equal(rg_query_parser_new(NULL, &p), 0);
    for (round = 0; round < 3; round++) {
        struct rg_buf *t = round ? &b : &a;

        rg_buf_reset(t);
        assert_int_equal(rg_query_parser_feed(p, sample_doc, 40), 0);
        assert_int_equal(rg_query_parser_feed(p, sample_doc + 40, len - 40), 0);
        assert_int_equal(rg_query_parser_finish(p, &res, &err), 0);
        assert_int_equal(rg_query_result_dump(&res, t), 0);
        rg_query_result_free(&res);
        /* Finished: more input needs a reset. */
        assert_int_equal(rg_query_parser_feed(p, "{", 1), RG_EINVAL);
        assert_int_equal(rg_query_parser_reset(p), 0);
        if (round)
            assert_string_equal(a.data, b.data);
        /* A failed document in between leaves nothing behind. */
        assert_int_equal(rg_query_parser_feed(p, "{\"status\":1}", 12), RG_EBADMSG);
        assert_int_equal(rg_query_parser_feed(p, "garbage", 7), RG_EBADMSG);
        assert_int_equal(rg_query_parser_finish(p, &res, &err), RG_EBADMSG);
        assert_string_equal(err.data, "status: status must be a string, got number");
        assert_null(res.priv);
        assert_int_equal(rg_query_parser_reset(p), 0);
    }
    rg_query_parser_free(p);
    rg_buf_cleanup(&err);
    rg_buf_cleanup(&a);
    rg_buf_cleanup(&b);
}

/* Seeded random damage to every golden input: any outcome but a crash, a leak or a
 * sanitizer report is fine; successful results must dump. */
static void test_fuzz__mutations(void **state)
{
    size_t i;
    int k;

    (void)state;
    rng_state = 12345;
    for (i = 0; i < N(golden); i++) {
        struct rg_buf in = { 0 };

        load(golden[i], ".json", &in);
        for (k = 0; k < 400; k++) {
            char *m = malloc(in.len + 8);
            size_t len = in.len, pos, j, nmut = 1 + rnd() % 4;
            struct rg_buf text = { 0 };

            assert_non_null(m);
            memcpy(m, in.data, in.len);
            for (j = 0; j < nmut && len; j++) {
                static const char alphabet[] = "{}[]\",:0123456789.eE-+ntfu\\\xc3\xa9\xff\x00";

                pos = rnd() % len;
                switch (rnd() % 3) {
                case 0:
                    m[pos] = alphabet[rnd() % (sizeof(alphabet) - 1)];
                    break;
                case 1:
                    memmove(m + pos, m + pos + 1, len - pos - 1);
                    len--;
                    break;
                default:
                    memmove(m + pos + 1, m + pos, len - pos);
                    m[pos] = alphabet[rnd() % (sizeof(alphabet) - 1)];
                    len++;
                    break;
                }
            }
            parse_text(NULL, m, len, 1 + rnd() % 32, &text);
            assert_non_null(text.data);
            rg_buf_cleanup(&text);
            free(m);
        }
        rg_buf_cleanup(&in);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden__files),
        cmocka_unit_test(test_time__table),
        cmocka_unit_test(test_time__prometheus_format_roundtrip),
        cmocka_unit_test(test_value__table),
        cmocka_unit_test(test_value__matches_strtod),
        cmocka_unit_test(test_result__vector_fields),
        cmocka_unit_test(test_result__server_errors),
        cmocka_unit_test(test_result__expected_type),
        cmocka_unit_test(test_limits__table),
        cmocka_unit_test(test_limits__stream_refused_early),
        cmocka_unit_test(test_chunks__random_splits),
        cmocka_unit_test(test_truncated__every_prefix),
        cmocka_unit_test(test_nesting__deep),
        cmocka_unit_test(test_nesting__at_limit),
        cmocka_unit_test(test_parser__reuse_and_sticky),
        cmocka_unit_test(test_fuzz__mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
