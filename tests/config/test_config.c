/* tests/config/test_config.c - configuration defaults, overrides and error positions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "config/yaml.h"
#include "util/err.h"

static void test_config__defaults(void **state)
{
    struct rg_config c;
    (void)state;

    rg_config_default(&c);
    assert_string_equal(c.server.listen, "0.0.0.0:9201");
    assert_int_equal(c.server.max_body_bytes, 32u << 20);
    assert_int_equal(c.remote_write.max_decompressed_bytes, 32u << 20);
    assert_int_equal(c.remote_write.future_tolerance_ms, 600000);
    assert_int_equal(c.storage.retention_ms, 3600000);
    assert_int_equal(c.storage.max_series, 1000000);
    assert_int_equal(c.query.lookback_delta_ms, 300000);
}

static void test_config__bundled_file_is_valid(void **state)
{
    struct rg_config c, d;
    struct rg_buf err = { 0 };
    (void)state;

    rg_config_default(&c);
    assert_int_equal(rg_config_load_file("rules/rollgate.yml", &c, &err), 0);
    assert_int_equal(err.len, 0);
    /* The bundled file states the defaults: loading it changes nothing. */
    rg_config_default(&d);
    assert_memory_equal(&c.server, &d.server, sizeof(c.server));
    assert_memory_equal(&c.storage, &d.storage, sizeof(c.storage));
    assert_memory_equal(&c.remote_write, &d.remote_write, sizeof(c.remote_write));
    assert_memory_equal(&c.query, &d.query, sizeof(c.query));
    assert_non_null(c.yaml);
    rg_config_cleanup(&c);
    rg_config_cleanup(NULL);
    rg_buf_cleanup(&err);
}

static void test_config__overrides(void **state)
{
    static const char text[] =
        "server:\n"
        "  listen: 127.0.0.1:9999\n"
        "  max_body_bytes: 1MiB\n"
        "  header_timeout: 1500ms\n"
        "storage:\n"
        "  retention: 2h30m\n"
        "  max_series: 5000\n";
    struct rg_config c;
    struct rg_buf err = { 0 };
    (void)state;

    rg_config_default(&c);
    assert_int_equal(rg_config_load_text("t.yml", text, strlen(text), &c, &err), 0);
    assert_string_equal(c.server.listen, "127.0.0.1:9999");
    assert_int_equal(c.server.max_body_bytes, 1u << 20);
    assert_int_equal(c.server.header_timeout_ms, 1500);
    assert_int_equal(c.storage.retention_ms, 9000000);
    assert_int_equal(c.storage.max_series, 5000);
    assert_int_equal(c.server.max_connections, 1024);   /* untouched */
    rg_config_cleanup(&c);
    rg_buf_cleanup(&err);
}

static void test_config__errors_have_positions(void **state)
{
    static const struct {
        const char *text;
        const char *want;   /* the whole error output */
    } cases[] = {
        { "serverr:\n  listen: x\n", "t.yml:1:1: unknown key \"serverr\"\n" },
        { "server:\n  listn: 1\n", "t.yml:2:3: server: unknown key \"listn\"\n" },
        { "storage:\n  retention: 5 minutes\n",
          "t.yml:2:14: retention: invalid duration \"5 minutes\"\n" },
        { "storage:\n  max_series: -3\n", "t.yml:2:15: max_series: invalid size \"-3\"\n" },
        { "server:\n  max_connections: many\n",
          "t.yml:2:20: max_connections: invalid integer \"many\"\n" },
        { "server:\n  listen: nohostport\n",
          "t.yml:2:11: server.listen: expected host:port, got \"nohostport\"\n" },
        { "server: [1, 2]\n", "t.yml:1:9: server: expected a mapping\n" },
        { "server:\n  listen: [a]\n", "t.yml:2:11: listen: expected a scalar value\n" },
        { "- a\n- b\n", "t.yml:1:1: expected a mapping at the top level\n" },
        { "server:\n  listen: \"x\n",
          "t.yml:3:1: found unexpected end of stream while scanning a quoted scalar\n" },
        { "server:\n  listn: 1\nstorage:\n  retention: x\n",
          "t.yml:2:3: server: unknown key \"listn\"\n"
          "t.yml:4:14: retention: invalid duration \"x\"\n" },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_config c;
        struct rg_buf err = { 0 };
        int rc;

        rg_config_default(&c);
        rc = rg_config_load_text("t.yml", cases[i].text, strlen(cases[i].text), &c, &err);
        assert_true(rc == RG_EINVAL || rc == RG_EPARSE);
        assert_non_null(err.data);
        assert_string_equal(err.data, cases[i].want);
        rg_config_cleanup(&c);
        rg_buf_cleanup(&err);
    }
}

static void test_config__missing_file(void **state)
{
    struct rg_config c;
    struct rg_buf err = { 0 };
    (void)state;

    rg_config_default(&c);
    assert_int_equal(rg_config_load_file("tests/data/config/does-not-exist.yml", &c, &err),
                     RG_EIO);
    assert_non_null(strstr(err.data, "cannot open"));
    rg_config_cleanup(&c);
    rg_buf_cleanup(&err);
}

static void test_config__hostport_and_sizes(void **state)
{
    static const struct {
        const char *in;
        int rc;
        const char *host;
        int port;
    } hp[] = {
        { "127.0.0.1:9201", 0, "127.0.0.1", 9201 },
        { ":80", 0, "0.0.0.0", 80 },
        { "[::1]:9090", 0, "::1", 9090 },
        { "localhost:0", 0, "localhost", 0 },
        { "host", RG_EINVAL, NULL, 0 },
        { "host:70000", RG_EINVAL, NULL, 0 },
        { "host:", RG_EINVAL, NULL, 0 },
        { "[::1]9090", RG_EINVAL, NULL, 0 },
    };
    static const struct {
        const char *in;
        int rc;
        size_t want;
    } sz[] = {
        { "1024", 0, 1024 }, { "64KiB", 0, 65536 }, { "32MiB", 0, 32u << 20 },
        { "1GiB", 0, 1u << 30 }, { "10MB", 0, 10000000 }, { "7B", 0, 7 },
        { "", RG_EINVAL, 0 }, { "1.5MiB", RG_EINVAL, 0 }, { "12XB", RG_EINVAL, 0 },
        { "-1", RG_EINVAL, 0 },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(hp) / sizeof(hp[0]); i++) {
        char host[64];
        int port = -1;
        assert_int_equal(rg_config_split_hostport(hp[i].in, host, sizeof(host), &port), hp[i].rc);
        if (hp[i].rc == 0) {
            assert_string_equal(host, hp[i].host);
            assert_int_equal(port, hp[i].port);
        }
    }
    for (size_t i = 0; i < sizeof(sz) / sizeof(sz[0]); i++) {
        size_t v = 0;
        assert_int_equal(rg_config_parse_size(sz[i].in, &v), sz[i].rc);
        if (sz[i].rc == 0)
            assert_int_equal(v, sz[i].want);
    }
}

static int collect_section(const char *path, const struct rg_yaml_node *sec, void *ud)
{
    struct rg_buf *b = ud;
    rg_buf_printf(b, "%s:%d:%d;", path, sec->line, sec->col);
    return 0;
}

static void test_config__includes(void **state)
{
    struct rg_config c;
    struct rg_buf err = { 0 }, seen = { 0 };
    char p[256];
    (void)state;

    rg_config_default(&c);
    assert_int_equal(rg_config_load_file("tests/data/config/inc/main.yml", &c, &err), 0);
    assert_int_equal(c.ndocs, 2);
    assert_int_equal(rg_config_each_section(&c, "signals", collect_section, &seen), 0);
    assert_string_equal(seen.data, "tests/data/config/inc/main.yml:6:3;"
                                   "tests/data/config/inc/part.yml:2:3;");
    rg_config_cleanup(&c);

    rg_config_default(&c);
    assert_int_equal(rg_config_load_file("tests/data/config/inc/bad.yml", &c, &err), RG_EINVAL);
    assert_non_null(strstr(err.data, "tests/data/config/inc/bad.yml:2:5: include: "
                                     "tests/data/config/inc/missing.yml: cannot open"));
    assert_non_null(strstr(err.data, "tests/data/config/inc/badpart.yml:1:1: unknown key "
                                     "\"server\" in an included file"));
    rg_config_cleanup(&c);

    rg_config_resolve_path("a/b/c.yml", "d.yml", p, sizeof(p));
    assert_string_equal(p, "a/b/d.yml");
    rg_config_resolve_path("c.yml", "d.yml", p, sizeof(p));
    assert_string_equal(p, "d.yml");
    rg_config_resolve_path("a/c.yml", "/abs/d.yml", p, sizeof(p));
    assert_string_equal(p, "/abs/d.yml");
    rg_buf_cleanup(&err);
    rg_buf_cleanup(&seen);
}

static void test_yaml__tree_positions_and_aliases(void **state)
{
    static const char text[] =
        "a: &x\n"
        "  b: \"q\"\n"
        "  c: [1, 2]\n"
        "d: *x\n"
        "e: ~\n";
    struct rg_yaml_node *root;
    char err[128];
    const struct rg_yaml_node *a, *b, *c, *d;
    (void)state;

    assert_int_equal(rg_yaml_parse(text, strlen(text), &root, err, sizeof(err)), 0);
    a = rg_yaml_get(root, "a");
    assert_non_null(a);
    assert_int_equal(a->kind, RG_YAML_MAP);
    b = rg_yaml_get(a, "b");
    assert_string_equal(b->scalar, "q");
    assert_true(b->quoted);
    assert_int_equal(b->line, 2);
    assert_int_equal(b->col, 6);
    c = rg_yaml_get(a, "c");
    assert_int_equal(c->kind, RG_YAML_SEQ);
    assert_int_equal(c->nitems, 2);
    d = rg_yaml_get(root, "d");
    assert_string_equal(rg_yaml_get(d, "b")->scalar, "q");
    assert_true(rg_yaml_is_null(rg_yaml_get(root, "e")));
    assert_null(rg_yaml_get(root, "nope"));
    rg_yaml_free(root);

    assert_int_equal(rg_yaml_parse("", 0, &root, err, sizeof(err)), 0);
    assert_int_equal(root->kind, RG_YAML_MAP);
    rg_yaml_free(root);
    assert_int_equal(rg_yaml_parse("a: *nope\n", 9, &root, err, sizeof(err)), RG_EPARSE);
    assert_string_equal(err, "1:4: unknown anchor \"nope\"");
    assert_int_equal(rg_yaml_parse("a: [\n", 5, &root, err, sizeof(err)), RG_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config__defaults),
        cmocka_unit_test(test_config__bundled_file_is_valid),
        cmocka_unit_test(test_config__overrides),
        cmocka_unit_test(test_config__errors_have_positions),
        cmocka_unit_test(test_config__missing_file),
        cmocka_unit_test(test_config__hostport_and_sizes),
        cmocka_unit_test(test_config__includes),
        cmocka_unit_test(test_yaml__tree_positions_and_aliases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
