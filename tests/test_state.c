/* test_state.c - run-state files: sections round-trip byte for byte; a corrupt, truncated,
 * extended or foreign file is refused with a message naming the fault; writing is atomic (no
 * temporary left, the previous file intact when a write fails). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/state.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/px_test_state.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static void write_sample(const char *path)
{
    float p[5] = {1, -2, 3.5f, 0, 1e-30f};
    uint64_t step = 17;
    px_state_section s[3] = {{"PRMS", p, sizeof p}, {"STEP", &step, sizeof step}, {"NONE", "", 0}};
    assert_int_equal(px_state_write(path, s, 3), PX_OK);
}

static void test_round_trip(void **state)
{
    (void)state;
    char path[300], tmp[310];
    snprintf(path, sizeof path, "%s/a.pxs", dir);
    write_sample(path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0); /* renamed, not left behind */
    px_state_file f;
    assert_int_equal(px_state_read(path, &f), PX_OK);
    assert_int_equal(f.count, 3);
    const void *d;
    size_t n;
    assert_int_equal(px_state_get(&f, "PRMS", 20, &d, &n), PX_OK);
    float want[5] = {1, -2, 3.5f, 0, 1e-30f};
    assert_memory_equal(d, want, sizeof want);
    assert_int_equal(px_state_get(&f, "STEP", SIZE_MAX, &d, &n), PX_OK);
    assert_int_equal(n, 8);
    assert_int_equal(*(const uint64_t *)d, 17);
    assert_int_equal(px_state_get(&f, "NONE", 0, &d, &n), PX_OK);
    /* a section of the wrong size, a missing section */
    assert_int_equal(px_state_get(&f, "PRMS", 24, &d, &n), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "PRMS has 20 bytes, this run needs 24"));
    assert_int_equal(px_state_get(&f, "OPTM", SIZE_MAX, &d, &n), PX_EINVAL);
    assert_non_null(strstr(px_errmsg(), "no section OPTM"));
    px_state_close(&f);
    /* layout by hand: magic, count 3, then the first section's tag and length */
    FILE *in = fopen(path, "rb");
    unsigned char head[24];
    assert_int_equal(fread(head, 1, sizeof head, in), sizeof head);
    fclose(in);
    assert_memory_equal(head, "PXSTATE1\3\0\0\0PRMS\x14\0\0\0\0\0\0\0", 24);
}

/* Rewrites the file with byte `at` xor-ed, or cut to `len`, or extended by one byte. */
static void mangle(const char *path, long at, long len, int extend)
{
    FILE *f = fopen(path, "rb");
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (at >= 0) buf[at] ^= 0x40;
    if (len >= 0) n = (size_t)len;
    if (extend) buf[n++] = 0;
    f = fopen(path, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
}

static void expect_refused(const char *path, const char *part)
{
    px_state_file f;
    assert_int_equal(px_state_read(path, &f), PX_EINVAL);
    if (!strstr(px_errmsg(), part)) fail_msg("'%s' lacks '%s'", px_errmsg(), part);
    assert_null(f.bytes);
}

static void test_hostile_files(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/b.pxs", dir);
    /* header 12 + PRMS 16 + 20 + STEP 16 + 8 + NONE 16 = 88 bytes */
    write_sample(path);
    mangle(path, 12 + 16 + 3, -1, 0); /* a parameter byte */
    expect_refused(path, "section PRMS is corrupt (CRC-32C mismatch)");
    write_sample(path);
    mangle(path, 12 + 16 + 20 + 16 + 1, -1, 0); /* a step byte */
    expect_refused(path, "section STEP is corrupt");
    for (long cut = 0; cut < 88; cut += 7) {
        write_sample(path);
        mangle(path, -1, cut, 0);
        px_state_file f;
        assert_int_equal(px_state_read(path, &f), PX_EINVAL);
    }
    write_sample(path);
    mangle(path, -1, 40, 0);
    expect_refused(path, "PRMS is truncated");
    write_sample(path);
    mangle(path, -1, -1, 1);
    expect_refused(path, "1 bytes after the last section");
    write_sample(path);
    mangle(path, 0, -1, 0);
    expect_refused(path, "bad magic");
    write_sample(path);
    mangle(path, 8, -1, 0); /* the section count: 3 ^ 0x40 = 67 */
    expect_refused(path, "67 sections");
    expect_refused("/nonexistent/state.pxs", "cannot open");
    expect_refused(dir, "not a regular file");
}

static void test_failed_write_keeps_the_old_file(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/c.pxs", dir);
    write_sample(path);
    /* a directory where the temporary file would go: the write fails, the file stays */
    char tmp[310];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(mkdir(tmp, 0755), 0);
    uint64_t v = 1;
    px_state_section s[1] = {{"STEP", &v, sizeof v}};
    assert_int_equal(px_state_write(path, s, 1), PX_EIO);
    assert_non_null(strstr(px_errmsg(), "c.pxs.tmp"));
    px_state_file f;
    assert_int_equal(px_state_read(path, &f), PX_OK);
    assert_int_equal(f.count, 3);
    px_state_close(&f);
    rmdir(tmp);
}

static void test_mkdir(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/x/y/z", dir);
    assert_int_equal(px_state_mkdir(path), PX_OK);
    assert_int_equal(px_state_mkdir(path), PX_OK); /* exists: fine */
    assert_int_equal(access(path, W_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_hostile_files),
        cmocka_unit_test(test_failed_write_keeps_the_old_file),
        cmocka_unit_test(test_mkdir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
