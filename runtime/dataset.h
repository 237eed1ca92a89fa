/* dataset.h - the data interface: datasets by name (data.dataset, its lower-case enum name),
 * image classification data in memory, the Fashion-MNIST IDX reader, and seeded minibatch
 * sampling per logical worker.
 *
 * Opening a dataset loads the splits a process uses and reads the shape of the others from
 * their headers, so that every mode knows both shapes and refuses a mismatch once, at start
 * (exit 2 naming both shapes): the server shapes the model from the same numbers as the
 * workers. Batches are drawn from index lists (px_split_gather).
 *
 * Images stay as bytes (47 MB for Fashion-MNIST's training set instead of 188 MB of floats);
 * a batch is converted to normalised floats when it is drawn.
 */
#ifndef PX_DATASET_H
#define PX_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

typedef struct {
    size_t count;      /* number of examples (known even when the split is not loaded) */
    size_t features;   /* values per example (28 * 28) */
    size_t rows, cols; /* image shape */
    size_t stride;     /* text: tokens between the starts of two examples (1, or the window) */
    uint8_t *images;   /* count x features, row-major, 0..255; NULL when not loaded */
    uint8_t *labels;   /* count, each < classes; NULL when not loaded */
} px_split;

/* What one example is: values (image pixels, as normalised floats) or tokens (a text window,
 * as token ids whose labels are the next tokens). */
typedef enum { PX_INPUT_VALUES = 0, PX_INPUT_TOKENS = 1 } px_input_kind;

typedef struct {
    const char *kind; /* registry name ("fashion_mnist") */
    px_split train, test;
    size_t classes;      /* classes, or the vocabulary's size */
    float mean, std;     /* normalisation: x = (pixel / 255 - mean) / std */
    px_input_kind input; /* values or tokens */
    size_t label_values; /* labels per example: 1, or the window's length for text */
    size_t channels;     /* image channels (1) */
    /* text: a split's images hold its token ids (count + window values), labels are NULL, and
     * vocab maps a token id back to its byte */
    uint8_t vocab[256];
} px_dataset;

/* Reads one IDX file compressed with gzip (the format of the MNIST family): magic 0x00000801
 * (labels, 1 dimension) or 0x00000803 (images, 3 dimensions), big-endian dimensions, then the
 * bytes. `expect_dims` is 1 or 3. At most `limit` items are kept (0 = all). Fills *count, *item
 * (bytes per item) and *data (owned by the caller, px_free). A missing, truncated or corrupt
 * file is refused with a message naming the file and the fault. Memory follows the file, not
 * its header: a header that claims more bytes than a file of its size can decode to (gzip
 * expands at most 1032:1) is refused before anything of the claimed size is allocated. */
px_status px_idx_read_gz(const char *path, int expect_dims, size_t limit, size_t *count,
                         size_t *item_bytes, uint8_t **data);

/* Loads Fashion-MNIST from `dir` (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
 * t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz). Either split may be skipped (a worker
 * needs only the training set, the server only the test set); limits of 0 keep everything.
 * When the directory or a file is missing the message names the Debian package
 * (dataset-fashion-mnist). */
px_status px_fmnist_load(px_dataset *ds, const char *dir, int want_train, int want_test,
                         size_t train_limit, size_t test_limit);

void px_dataset_free(px_dataset *ds);

/* Where a dataset comes from (the data section of the config, as plain values). */
typedef struct {
    const char *path;               /* "" = the dataset's standard location */
    size_t train_limit, test_limit; /* 0 = all */
    size_t window;                  /* text: characters per example (model.context) */
} px_data_source;

/* Where a batch goes: values x (n x features) or tokens (n x window), and labels y
 * (n x label_values). Only the pointer matching the dataset's input kind is read. */
typedef struct {
    float *x;
    int32_t *tokens;
    uint8_t *y;
} px_batch_io;

/* Examples idx[0..n) of `split` into io (training batches). */
void px_dataset_gather(const px_dataset *ds, const px_split *split, const uint32_t *idx, size_t n,
                       const px_batch_io *io);

/* The contiguous examples [first, first + n) (evaluation). */
void px_dataset_slice(const px_dataset *ds, const px_split *split, size_t first, size_t n,
                      const px_batch_io *io);

/* Loads the fortunes of Debian's fortunes package from `dir` as text (data_text.c): see
 * phalanx.Data.FORTUNES in proto/config.proto. The vocabulary is every byte that occurs,
 * sorted; both splits are loaded (they are small). Refuses a missing directory naming the
 * package, a directory without fortunes, and a window longer than a split. */
px_status px_fortunes_load(px_dataset *ds, const char *dir, size_t window, size_t train_limit,
                           size_t test_limit);

typedef struct {
    const char *name;
    const char *summary;
    const char *default_path; /* where Debian puts it */
    px_status (*open)(px_dataset *ds, const px_data_source *src, int want_train, int want_test);
} px_dataset_kind;

const px_dataset_kind *px_dataset_find(const char *name);

/* Opens dataset `name`: loads the wanted splits, reads the other's shape, checks that both
 * shapes agree. Refuses an unknown name, missing or corrupt files, a shape mismatch (PX_EINVAL,
 * naming the files and both shapes). Free with px_dataset_free. */
px_status px_dataset_open(px_dataset *ds, const char *name, const px_data_source *src,
                          int want_train, int want_test);

/* Converts examples idx[0..n) of `split` into normalised floats x (n x features) and labels y. */
void px_split_gather(const px_dataset *ds, const px_split *split, const uint32_t *idx, size_t n,
                     float *x, uint8_t *y);

/* Converts the contiguous examples [first, first + n) (evaluation). */
void px_split_slice(const px_dataset *ds, const px_split *split, size_t first, size_t n, float *x,
                    uint8_t *y);

/* Minibatch order of one logical worker: each epoch is a fresh permutation of the training set,
 * drawn from the stream (seed, PX_STREAM_BATCH, worker, epoch), and batch s takes positions
 * [s * B, (s + 1) * B) of the concatenated epochs. The order is a function of (seed, worker,
 * step) only: any rank hosting the worker, and a resumed run, draws the same batches. */
typedef struct {
    uint64_t seed;
    uint32_t worker;
    size_t n;       /* examples drawn from */
    size_t cap;     /* the permutation's capacity (the largest n) */
    uint32_t *perm; /* permutation of the current epoch */
    uint64_t epoch; /* epoch held in perm (UINT64_MAX = none yet) */
} px_sampler;

px_status px_sampler_init(px_sampler *s, uint64_t seed, uint32_t worker, size_t n);

/* The same sampler drawing for another worker or client over n <= the n it was made for
 * (federated slots play a different client each round): no allocation. */
void px_sampler_retarget(px_sampler *s, uint32_t worker, size_t n);
void px_sampler_free(px_sampler *s);

/* Writes the B example indices of `step` into idx. */
void px_sampler_batch(px_sampler *s, uint64_t step, size_t batch, uint32_t *idx);

#endif
