/* tests/util/test_file.c - atomic writes replace whole files; reads are bounded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"
#include "util/file.h"

static void test_file__write_read_replace(void **state)
{
    char dir[] = "/tmp/rg-test-file.XXXXXX";
    char path[128];
    struct rg_buf b = { 0 };
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/state.json", dir);
    assert_int_equal(rg_file_read(path, 100, &b), RG_ENOENT);
    assert_int_equal(rg_file_write_atomic(path, "first", 5), 0);
    assert_int_equal(rg_file_read(path, 100, &b), 0);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "first", 5);
    rg_buf_reset(&b);
    assert_int_equal(rg_file_write_atomic(path, "2nd", 3), 0);
    assert_int_equal(rg_file_read(path, 100, &b), 0);
    assert_string_equal(b.data, "2nd");
    rg_buf_reset(&b);
    assert_int_equal(rg_file_read(path, 2, &b), RG_ETOOBIG);
    /* No temporary file is left behind. */
    snprintf(path, sizeof(path), "%s/state.json.tmp.%d", dir, (int)getpid());
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof(path), "%s/nodir/state.json", dir);
    assert_true(rg_file_write_atomic(path, "x", 1) < 0);
    snprintf(path, sizeof(path), "%s/state.json", dir);
    unlink(path);
    rmdir(dir);
    rg_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file__write_read_replace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
