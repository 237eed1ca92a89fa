/* test_npy.c - the .npy reader and writer: round trips, the layout NumPy expects (magic,
 * version 1.0, 64-byte aligned header), and refusals of what the reader must not accept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/npy.h"

static void test_round_trip(void **state)
{
    (void)state;
    const char *path = "/tmp/px_test_npy.npy";
    float a[3][4];
    for (int i = 0; i < 12; i++)
        a[i / 4][i % 4] = (float)i * 0.5f - 1.0f;
    const float *rows[3] = {a[2], a[0], a[1]}; /* rows in another order */
    assert_int_equal(px_npy_write_rows(path, rows, 3, 4), PX_OK);
    float *got;
    size_t dims[8];
    int ndim;
    assert_int_equal(px_npy_read_f32(path, &got, dims, &ndim, 8), PX_OK);
    assert_int_equal(ndim, 2);
    assert_int_equal(dims[0], 3);
    assert_int_equal(dims[1], 4);
    assert_memory_equal(got, a[2], sizeof a[2]);
    assert_memory_equal(got + 4, a[0], sizeof a[0]);
    px_free(got);
    /* the layout: magic, version 1.0, header length such that the data starts at 64k */
    FILE *f = fopen(path, "rb");
    unsigned char head[10];
    assert_int_equal(fread(head, 1, 10, f), 10);
    fclose(f);
    assert_memory_equal(head, "\x93NUMPY\x01\x00", 8);
    assert_int_equal((10 + (head[8] | head[9] << 8)) % 64, 0);
    /* one dimension */
    size_t d1 = 5;
    assert_int_equal(px_npy_write_f32(path, a[0], &d1, 1), PX_OK);
    assert_int_equal(px_npy_read_f32(path, &got, dims, &ndim, 8), PX_OK);
    assert_int_equal(ndim, 1);
    assert_int_equal(dims[0], 5);
    px_free(got);
    /* one value short of the shape */
    f = fopen(path, "r+b");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    assert_int_equal(truncate(path, size - 4), 0);
    assert_int_equal(px_npy_read_f32(path, &got, dims, &ndim, 8), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "truncated"));
    assert_null(got);
    /* more dimensions than the caller takes */
    assert_int_equal(px_npy_write_rows(path, rows, 3, 4), PX_OK);
    assert_int_equal(px_npy_read_f32(path, &got, dims, &ndim, 1), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "2 dimensions"));
    remove(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
