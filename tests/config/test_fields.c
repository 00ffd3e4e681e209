/* tests/config/test_fields.c - the shared configuration field readers: each reader is fed
 * small YAML documents and must either fill its output or report the expected
 * "file:line:col: message" lines and leave the output alone. Secret files are written to
 * a fresh temporary directory that the test removes again.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/fields.h"
#include "config/yaml.h"
#include "util/buf.h"

/* One document under test with its reporting context. */
struct doc {
    struct rg_yaml_node *root;
    struct rg_buf err;
    struct rg_config_fields c;
};

static void doc_open(struct doc *d, const char *path, const char *text)
{
    char msg[256];

    memset(d, 0, sizeof(*d));
    assert_int_equal(rg_yaml_parse(text, strlen(text), &d->root, msg, sizeof(msg)), 0);
    d->c.err = &d->err;
    d->c.path = path;
}

static const char *doc_errors(struct doc *d)
{
    return d->err.data ? d->err.data : "";
}

static void doc_close(struct doc *d)
{
    rg_yaml_free(d->root);
    rg_buf_cleanup(&d->err);
}

static void test_fields__problem_has_position(void **state)
{
    struct doc d;
    (void)state;

    doc_open(&d, "a.yml", "x: 1\ny:\n  z: 2\n");
    rg_config_field_problem(&d.c, rg_yaml_get(rg_yaml_get(d.root, "y"), "z"), "z: %s", "bad");
    rg_config_field_problem(&d.c, NULL, "no node");
    assert_string_equal(doc_errors(&d), "a.yml:3:6: z: bad\na.yml:1:1: no node\n");
    assert_int_equal(d.c.problems, 2);
    assert_int_equal(d.c.oom, 0);
    /* Without an error buffer the problems are only counted. */
    d.c.err = NULL;
    rg_config_field_problem(&d.c, NULL, "counted");
    assert_int_equal(d.c.problems, 3);
    doc_close(&d);
}

static void test_fields__list(void **state)
{
    struct doc d;
    (void)state;

    doc_open(&d, "t.yml", "a: [x, y]\nb: ~\nc: {x: 1}\n");
    assert_int_equal(rg_config_field_list(&d.c, "u.yml", rg_yaml_get(d.root, "a"), "a"), 1);
    assert_string_equal(d.c.path, "u.yml");
    assert_int_equal(rg_config_field_list(&d.c, "u.yml", rg_yaml_get(d.root, "b"), "b"), 0);
    assert_int_equal(d.c.problems, 0);
    assert_int_equal(rg_config_field_list(&d.c, "u.yml", rg_yaml_get(d.root, "c"), "cs"), 0);
    assert_string_equal(doc_errors(&d), "u.yml:3:4: cs: expected a list of cs\n");
    doc_close(&d);
}

/* Scalar readers: the YAML value of "v", whether it is accepted, and the value read or
 * the message expected. */
static const struct scalar_case {
    const char *yaml;
    const char *kind;          /* "string", "bool", "duration", "int" */
    long long want;            /* bool, duration (ms) and int (1 to 12) results */
    const char *want_text;     /* string result, or the expected message */
} scalar_cases[] = {
    { "v: hello", "string", 0, "hello" },
    { "v: \"\"", "string", 0, "" },
    { "v: ~", "string", -1, "t.yml:1:4: v: expected a string\n" },
    { "v: [a]", "string", -1, "t.yml:1:4: v: expected a string\n" },
    { "v: \"a\\0b\"", "string", -1, "t.yml:1:4: v: contains a NUL byte\n" },
    { "v: true", "bool", 1, NULL },
    { "v: false", "bool", 0, NULL },
    { "v: \"true\"", "bool", -1, "t.yml:1:4: v: expected true or false\n" },
    { "v: 1m30s", "duration", 90000, NULL },
    { "v: 0s", "duration", -1, "t.yml:1:4: v: must be at least 1ms\n" },
    { "v: soon", "duration", -1, "t.yml:1:4: v: invalid duration \"soon\"\n" },
    { "v: 12", "int", 12, NULL },
    { "v: 13", "int", -1, "t.yml:1:4: v: expected an integer from 1 to 12\n" },
    { "v: \"5\"", "int", -1, "t.yml:1:4: v: expected an integer from 1 to 12\n" },
    { "v: 5x", "int", -1, "t.yml:1:4: v: expected an integer from 1 to 12\n" },
    { "v: 7", "int", 7, NULL },
};

static void test_fields__scalars(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(scalar_cases) / sizeof(scalar_cases[0]); i++) {
        const struct scalar_case *tc = &scalar_cases[i];
        const struct rg_yaml_node *v;
        struct doc d;
        int bad = tc->want < 0;

        doc_open(&d, "t.yml", tc->yaml);
        v = rg_yaml_get(d.root, "v");
        if (!strcmp(tc->kind, "string")) {
            const char *s = rg_config_field_string(&d.c, v, "v");
            if (bad)
                assert_null(s);
            else
                assert_string_equal(s, tc->want_text);
        } else if (!strcmp(tc->kind, "bool")) {
            int b = 42;
            assert_int_equal(rg_config_field_bool(&d.c, v, "v", &b), bad ? -1 : 0);
            assert_int_equal(b, bad ? 42 : tc->want);
        } else if (!strcmp(tc->kind, "duration")) {
            int64_t ms = 42;
            assert_int_equal(rg_config_field_duration(&d.c, v, "v", 1, &ms), bad ? -1 : 0);
            assert_int_equal(ms, bad ? 42 : tc->want);
        } else {
            long long x = 42;
            assert_int_equal(rg_config_field_int(&d.c, v, "v", 1, 12, &x), bad ? -1 : 0);
            assert_int_equal(x, bad ? 42 : tc->want);
        }
        if (bad)
            assert_string_equal(doc_errors(&d), tc->want_text);
        else
            assert_int_equal(d.c.problems, 0);
        doc_close(&d);
    }
}

static void test_fields__url_ok(void **state)
{
    static const struct {
        const char *url;
        int with_query, without_query;
    } cases[] = {
        { "http://prom:9090", 1, 1 },
        { "HTTPS://prom.example/base/", 1, 1 },
        { "https://hooks.example/x?token=1", 1, 0 },
        { "http://prom#frag", 1, 0 },
        { "ftp://prom", 0, 0 },
        { "http://", 0, 0 },
        { "http:///path", 0, 0 },
        { "http://prom /x", 0, 0 },
        { "http://prom\x7f", 0, 0 },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(rg_config_field_url_ok(cases[i].url, 1), cases[i].with_query);
        assert_int_equal(rg_config_field_url_ok(cases[i].url, 0), cases[i].without_query);
    }
}

static void test_fields__name_and_keys(void **state)
{
    static const char *const keys[] = { "name", "url", NULL };
    struct doc d;
    char *name;
    (void)state;

    doc_open(&d, "t.yml", "name: prod-eu.1\n");
    name = rg_config_field_name(&d.c, rg_yaml_get(d.root, "name"), 16);
    assert_string_equal(name, "prod-eu.1");
    free(name);
    assert_int_equal(d.c.problems, 0);
    doc_close(&d);

    doc_open(&d, "t.yml", "name: a|b\n");
    assert_null(rg_config_field_name(&d.c, rg_yaml_get(d.root, "name"), 16));
    assert_string_equal(doc_errors(&d),
                        "t.yml:1:7: name: \"a|b\" must be 1 to 16 letters, digits or -_.\n");
    doc_close(&d);

    doc_open(&d, "t.yml", "name: abcdef\n");
    assert_null(rg_config_field_name(&d.c, rg_yaml_get(d.root, "name"), 5));
    assert_int_equal(d.c.problems, 1);
    doc_close(&d);

    doc_open(&d, "t.yml", "name: a\nuri: b\nname: c\n");
    rg_config_field_check_keys(&d.c, d.root, keys, "sources");
    assert_string_equal(doc_errors(&d), "t.yml:2:1: sources: unknown key \"uri\"\n"
                                        "t.yml:3:1: sources: duplicate key \"name\"\n");
    doc_close(&d);
}

/* A temporary directory holding the files the file and secret readers are given. */
struct tmp {
    char dir[64];
    char paths[8][128];
    int n;
};

static const char *tmp_file(struct tmp *t, const char *name, const char *content)
{
    char *p = t->paths[t->n++];
    char full[128];
    FILE *f;

    snprintf(full, sizeof(full), "%s/%s", t->dir, name);
    memcpy(p, full, sizeof(full));
    assert_non_null(f = fopen(p, "w"));
    assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
    assert_int_equal(fclose(f), 0);
    return p;
}

static void tmp_open(struct tmp *t)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/rg-fields-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
}

static void tmp_close(struct tmp *t)
{
    for (int i = 0; i < t->n; i++)
        unlink(t->paths[i]);
    rmdir(t->dir);
}

static void test_fields__secret_file(void **state)
{
    static const struct {
        const char *content;       /* NULL: the file does not exist */
        const char *want;          /* secret, or NULL for a problem */
        const char *message;       /* part of the expected message */
    } cases[] = {
        { "s3cret\n", "s3cret", NULL },
        { "tok en \t\r\n\n", "tok en", NULL },
        { " \n\n", NULL, "is empty" },
        { "two\nlines\n", NULL, "holds a line break or NUL byte" },
        { NULL, NULL, "cannot read" },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tmp t;
        struct doc d;
        struct rg_buf yaml = { 0 };
        char *path = NULL, *data = NULL;
        size_t len = 0;
        int rc;

        tmp_open(&t);
        if (cases[i].content)
            tmp_file(&t, "secret", cases[i].content);
        assert_int_equal(rg_buf_printf(&yaml, "f: %s/secret\n", t.dir), 0);
        doc_open(&d, "t.yml", yaml.data);
        rc = rg_config_field_secret_file(&d.c, rg_yaml_get(d.root, "f"), "f", &path, &data,
                                         &len);
        if (cases[i].want) {
            assert_int_equal(rc, 0);
            assert_string_equal(data, cases[i].want);
            assert_int_equal(len, strlen(cases[i].want));
            assert_non_null(strstr(path, "/secret"));
            assert_int_equal(d.c.problems, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_null(path);
            assert_null(data);
            assert_non_null(strstr(doc_errors(&d), cases[i].message));
            assert_int_equal(d.c.problems, 1);
        }
        free(path);
        rg_config_field_secret_free(data);
        rg_config_field_secret_free(NULL);
        rg_buf_cleanup(&yaml);
        doc_close(&d);
        tmp_close(&t);
    }
}

static void test_fields__tls_and_basic_auth(void **state)
{
    struct tmp t;
    struct doc d;
    struct rg_buf yaml = { 0 };
    struct rg_config_tls tls = { 0 };
    struct rg_config_basic_auth ba = { 0 };
    (void)state;

    tmp_open(&t);
    tmp_file(&t, "ca.pem", "ca");
    tmp_file(&t, "pw", "hunter2\n");
    assert_int_equal(rg_buf_printf(&yaml,
                                   "tls:\n"
                                   "  ca_file: %s/ca.pem\n"
                                   "  server_name: db.internal\n"
                                   "  insecure_skip_verify: true\n"
                                   "basic_auth:\n"
                                   "  username: ops\n"
                                   "  password_file: %s/pw\n", t.dir, t.dir), 0);
    doc_open(&d, "t.yml", yaml.data);
    rg_config_field_tls(&d.c, rg_yaml_get(d.root, "tls"), &tls);
    rg_config_field_basic_auth(&d.c, rg_yaml_get(d.root, "basic_auth"), &ba);
    assert_string_equal(doc_errors(&d), "");
    assert_non_null(strstr(tls.ca_file, "/ca.pem"));
    assert_null(tls.cert_file);
    assert_string_equal(tls.server_name, "db.internal");
    assert_int_equal(tls.insecure_skip_verify, 1);
    assert_string_equal(ba.user, "ops");
    assert_string_equal(ba.password, "hunter2");
    assert_int_equal(ba.password_len, 7);
    assert_int_equal(ba.password_given, 1);
    assert_non_null(strstr(ba.password_file, "/pw"));
    rg_config_tls_cleanup(&tls);
    rg_config_basic_auth_cleanup(&ba);
    rg_config_tls_cleanup(NULL);
    rg_config_basic_auth_cleanup(NULL);
    doc_close(&d);

    doc_open(&d, "t.yml",
             "tls:\n"
             "  server_name: a\n"
             "  server_name: b\n"
             "  cert_file: \"\"\n"
             "  ciphers: all\n"
             "basic_auth:\n"
             "  username: a:b\n"
             "  password: x\n");
    rg_config_field_tls(&d.c, rg_yaml_get(d.root, "tls"), &tls);
    rg_config_field_basic_auth(&d.c, rg_yaml_get(d.root, "basic_auth"), &ba);
    assert_string_equal(doc_errors(&d),
                        "t.yml:3:3: tls: duplicate key \"server_name\"\n"
                        "t.yml:4:14: tls.cert_file: empty path\n"
                        "t.yml:5:3: tls: unknown key \"ciphers\"\n"
                        "t.yml:7:13: basic_auth.username: must not contain ':'\n"
                        "t.yml:8:3: basic_auth.password: secrets are read from files; "
                        "use password_file\n"
                        "t.yml:7:3: basic_auth: username is required\n");
    /* The first server_name is kept; nothing else was accepted. */
    assert_string_equal(tls.server_name, "a");
    assert_null(tls.cert_file);
    assert_null(ba.user);
    assert_int_equal(ba.password_given, 0);
    rg_config_tls_cleanup(&tls);
    rg_config_basic_auth_cleanup(&ba);
    doc_close(&d);

    doc_open(&d, "t.yml", "tls: [a]\nbasic_auth: x\n");
    rg_config_field_tls(&d.c, rg_yaml_get(d.root, "tls"), &tls);
    rg_config_field_basic_auth(&d.c, rg_yaml_get(d.root, "basic_auth"), &ba);
    assert_string_equal(doc_errors(&d), "t.yml:1:6: tls: expected a map\n"
                                        "t.yml:2:13: basic_auth: expected a map\n");
    doc_close(&d);

    rg_buf_cleanup(&yaml);
    tmp_close(&t);
}

static void test_fields__headers(void **state)
{
    static const char *const reserved[] = { "Host", "X-Signature", NULL };
    struct doc d;
    char **h = NULL;
    size_t n = 0;
    (void)state;

    doc_open(&d, "t.yml",
             "headers:\n"
             "  X-Scope-OrgID: tenant-1\n"
             "  x-scope-orgid: tenant-2\n"
             "  host: example\n"
             "  x-signature: s\n"
             "  Bad Name: v\n"
             "  X-Multi: \"a\\nb\"\n"
             "  Authorization: Bearer x\n");
    rg_config_field_headers(&d.c, rg_yaml_get(d.root, "headers"), reserved, 1, &h, &n);
    assert_string_equal(doc_errors(&d),
                        "t.yml:3:3: headers: duplicate header \"x-scope-orgid\"\n"
                        "t.yml:4:3: headers: \"host\" is set by rollgate itself\n"
                        "t.yml:5:3: headers: \"x-signature\" is set by rollgate itself\n"
                        "t.yml:6:3: headers: invalid header name \"Bad Name\"\n"
                        "t.yml:7:12: headers.X-Multi: value holds a line break\n"
                        "t.yml:2:3: headers: Authorization conflicts with basic_auth or "
                        "bearer_token_file\n");
    assert_int_equal(n, 2);
    assert_string_equal(h[0], "X-Scope-OrgID: tenant-1");
    assert_string_equal(h[1], "Authorization: Bearer x");
    for (size_t i = 0; i < n; i++)
        free(h[i]);
    free(h);
    doc_close(&d);

    /* Without other credentials an Authorization header is fine. */
    doc_open(&d, "t.yml", "headers:\n  Authorization: Bearer x\n");
    h = NULL;
    n = 0;
    rg_config_field_headers(&d.c, rg_yaml_get(d.root, "headers"), reserved, 0, &h, &n);
    assert_int_equal(d.c.problems, 0);
    assert_int_equal(n, 1);
    free(h[0]);
    free(h);
    doc_close(&d);

    doc_open(&d, "t.yml", "headers: [a]\n");
    h = NULL;
    rg_config_field_headers(&d.c, rg_yaml_get(d.root, "headers"), reserved, 0, &h, &n);
    assert_null(h);
    assert_string_equal(doc_errors(&d),
                        "t.yml:1:10: headers: expected a map of header names to values\n");
    doc_close(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields__problem_has_position),
        cmocka_unit_test(test_fields__list),
        cmocka_unit_test(test_fields__scalars),
        cmocka_unit_test(test_fields__url_ok),
        cmocka_unit_test(test_fields__name_and_keys),
        cmocka_unit_test(test_fields__secret_file),
        cmocka_unit_test(test_fields__tls_and_basic_auth),
        cmocka_unit_test(test_fields__headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
