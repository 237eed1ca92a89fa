/* fuzz.h - what the libFuzzer targets of tests/fuzz/ share: a quiet library, the input as a
 * file for the readers that take a path, little-endian fields, and a check that aborts (so that
 * libFuzzer records the input) when a contract of a header is broken.
 *
 * Each target is one file, fuzz_<reader>.c, built by tests/fuzz/fuzz.cmake (PX_FUZZ=ON, clang)
 * and run by ctest over its corpus tests/fuzz/corpus/<reader>/. Reproduce a finding with
 *   build-asan/fuzz/fuzz_<reader> CRASH_FILE
 */
#ifndef PX_FUZZ_H
#define PX_FUZZ_H

#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/log.h"
#include "base/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Aborts with the contract that a function broke and the library's last message. */
#define PX_FUZZ_ASSERT(cond, what)                                                                 \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz: %s:%d: contract broken: %s (%s); last error: %s\n", __FILE__,   \
                    __LINE__, what, #cond, px_errmsg());                                           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static inline void px_fuzz_log_drop(px_log_level level, const char *line, void *user)
{
    (void)level, (void)line, (void)user;
}

/* The library logs a few lines (a skipped checkpoint, a fallback): not on the fuzzer's
 * terminal. */
static inline void px_fuzz_quiet(void)
{
    px_log_set_sink(px_fuzz_log_drop, NULL);
}

/* The input as a file: one memfd per process, rewritten for each input, named by its
 * /proc/self/fd path (a regular file to fopen, fstat and gzopen, and nothing left on disk). */
static inline const char *px_fuzz_file(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("px_fuzz_input", 0);
        if (fd < 0) {
            perror("fuzz: memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
        perror("fuzz: writing the input file");
        abort();
    }
    return path;
}

/* Writes size bytes to DIR/NAME (the seed writers of the targets: PX_FUZZ_WRITE_SEEDS=DIR). */
static inline void px_fuzz_write_seed(const char *dir, const char *name, const void *data,
                                      size_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* Calls write(dir) and exits when PX_FUZZ_WRITE_SEEDS=DIR is set: how tests/fuzz/make_corpus.sh
 * makes the valid examples of a corpus with the library's own writers. */
static inline void px_fuzz_seeds(void (*write)(const char *dir))
{
    const char *dir = getenv("PX_FUZZ_WRITE_SEEDS");
    if (!dir) return;
    write(dir);
    exit(0);
}

static inline uint32_t px_fuzz_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t px_fuzz_u64(const uint8_t *p)
{
    return (uint64_t)px_fuzz_u32(p) | (uint64_t)px_fuzz_u32(p + 4) << 32;
}

static inline void px_fuzz_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

#endif
