/* fuzz_npy.c - the .npy reader (runtime/npy.h) on arbitrary files. An accepted file must hold
 * exactly the floats its shape says; a refused one must leave nothing allocated. Read twice:
 * with the aggregate tool's 8 dimensions and with a 1-dimension limit. */
#include "fuzz.h"

#include "base/alloc.h"
#include "runtime/npy.h"

static void px__write_seeds(const char *dir);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    px_fuzz_quiet();
    px_fuzz_seeds(px__write_seeds);
    return 0;
}

static void px__read(const char *path, size_t size, int max_ndim)
{
    float *data = (float *)1;
    size_t dims[8];
    int ndim = -1;
    px_status st = px_npy_read_f32(path, &data, dims, &ndim, max_ndim);
    if (st < 0) {
        PX_FUZZ_ASSERT(data == NULL, "px_npy_read_f32 refused the file but left *data set");
        return;
    }
    PX_FUZZ_ASSERT(data != NULL, "px_npy_read_f32 accepted the file without data");
    PX_FUZZ_ASSERT(ndim >= 0 && ndim <= max_ndim, "px_npy_read_f32: ndim out of range");
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= dims[i];
    PX_FUZZ_ASSERT(count * sizeof(float) < size, "accepted a shape larger than the file");
    /* every value readable (ASan checks the buffer holds them) */
    volatile float sink = 0;
    for (size_t i = 0; i < count; i++)
        sink += data[i];
    (void)sink;
    px_free(data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = px_fuzz_file(data, size);
    px__read(path, size, 8);
    px__read(path, size, 1);
    return 0;
}

/* ---- the seed corpus: what px_npy_write_f32 writes, and NumPy's other layouts -------------- */

/* A .npy of version major.0 with header dict `dict` (padded to 64 bytes and ended by a newline)
 * and `values` floats after it. */
static void px__handmade(const char *dir, const char *name, int major, const char *dict,
                         size_t values)
{
    size_t pre = major == 1 ? 10 : 12, dict_len = strlen(dict);
    size_t hlen = dict_len + 1 + (64 - (pre + dict_len + 1) % 64) % 64;
    size_t size = pre + hlen + values * 4;
    uint8_t *b = calloc(1, size);
    if (!b) exit(1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    px_fuzz_put32(b + 8, (uint32_t)hlen); /* the 2-byte field of 1.0 takes the low half */
    memset(b + pre, ' ', hlen);
    memcpy(b + pre, dict, dict_len);
    b[pre + hlen - 1] = '\n';
    for (size_t i = 0; i < values; i++) {
        float v = (float)i - 1.5f;
        memcpy(b + pre + hlen + 4 * i, &v, 4);
    }
    px_fuzz_write_seed(dir, name, b, size);
    free(b);
}

static void px__write_seeds(const char *dir)
{
    float v[12];
    for (int i = 0; i < 12; i++)
        v[i] = (float)i * 0.5f - 2.0f;
    char path[4096];
    size_t d1[1] = {5}, d2[2] = {3, 4}, d0[1] = {0};
    snprintf(path, sizeof path, "%s/vector.npy", dir);
    if (px_npy_write_f32(path, v, d1, 1) < 0) exit(1);
    snprintf(path, sizeof path, "%s/matrix.npy", dir);
    if (px_npy_write_f32(path, v, d2, 2) < 0) exit(1);
    snprintf(path, sizeof path, "%s/empty.npy", dir);
    if (px_npy_write_f32(path, v, d0, 1) < 0) exit(1);
    px__handmade(dir, "v2_3d.npy", 2,
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 3), }", 6);
    px__handmade(dir, "v3_scalar.npy", 3, "{'shape': (), 'fortran_order': False, 'descr': '<f4'}",
                 1);
    px__handmade(dir, "fortran.npy", 1,
                 "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 4);
    px__handmade(dir, "float64.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
                 4);
    px__handmade(dir, "truncated.npy", 1,
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (9,), }", 4);
}
