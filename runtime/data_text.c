/* data_text.c - the English text of Debian's fortunes package as a character-level dataset (see
 * px_fortunes_load in dataset.h).
 *
 * Every regular file of the directory except the .dat indexes and the .u8 links, in name order,
 * is a list of fortunes separated by lines holding "%". Fortune k (counting over all files)
 * goes to the validation split when k % 10 == 9, to the training split otherwise, so the split
 * is a function of the files alone. Each split is its fortunes joined by blank lines, as token
 * ids: the vocabulary is every byte that occurs in either split, in byte order. An example is a
 * window of `window` tokens; its labels are the next `window` tokens.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset.h"

#define PX_FORTUNES_PACKAGE  "fortunes"
#define PX__VALIDATION_EVERY 10

/* A growing byte buffer. */
typedef struct {
    unsigned char *data;
    size_t len, cap;
} px__bytes;

static px_status px__append(px__bytes *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 1 << 16;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *p = realloc(b->data, cap);
        if (!p) return px_error(PX_ENOMEM, "fortunes: cannot allocate %zu bytes", cap);
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return PX_OK;
}

static int px__by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the fortune files of dir, sorted; *count of them (caller frees each and the list).
 */
static px_status px__list_files(const char *dir, char ***names, size_t *count)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return px_error(PX_EINVAL,
                        "fortunes not found: %s: %s (install the Debian package %s: apt-get "
                        "install %s, or set data.path)",
                        dir, strerror(errno), PX_FORTUNES_PACKAGE, PX_FORTUNES_PACKAGE);
    size_t cap = 0;
    px_status st = PX_OK;
    struct dirent *e;
    while (st == PX_OK && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || (n > 4 && !strcmp(e->d_name + n - 4, ".dat")) ||
            (n > 3 && !strcmp(e->d_name + n - 3, ".u8")))
            continue;
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        if (*count == cap) {
            cap = cap ? 2 * cap : 64;
            char **p = realloc(*names, cap * sizeof *p);
            if (!p) {
                st = px_error(PX_ENOMEM, "fortunes: cannot allocate");
                break;
            }
            *names = p;
        }
        if (!((*names)[*count] = strdup(e->d_name)))
            st = px_error(PX_ENOMEM, "fortunes: strdup");
        else
            (*count)++;
    }
    closedir(d);
    if (st == PX_OK && *count == 0)
        st = px_error(PX_EINVAL,
                      "fortunes: %s holds no fortune files (install the Debian package %s)", dir,
                      PX_FORTUNES_PACKAGE);
    if (st == PX_OK) qsort(*names, *count, sizeof **names, px__by_name);
    return st;
}

/* Splits one file's fortunes between the two texts; *k counts fortunes over all files. */
static px_status px__split_file(const char *path, px__bytes *train, px__bytes *valid, size_t *k)
{
    FILE *f = fopen(path, "rb");
    if (!f) return px_error(PX_EINVAL, "fortunes: %s: %s", path, strerror(errno));
    char line[8192];
    px__bytes one = {0};
    px_status st = PX_OK;
    for (int more = 1; more && st == PX_OK;) {
        more = fgets(line, sizeof line, f) != NULL;
        int sep = !more || !strcmp(line, "%\n") || !strcmp(line, "%");
        if (!sep) {
            st = px__append(&one, line, strlen(line));
            continue;
        }
        if (one.len == 0) continue;
        px__bytes *to = *k % PX__VALIDATION_EVERY == PX__VALIDATION_EVERY - 1 ? valid : train;
        st = px__append(to, one.data, one.len);
        if (st == PX_OK) st = px__append(to, "\n", 1); /* a blank line between fortunes */
        one.len = 0;
        (*k)++;
    }
    if (ferror(f) && st == PX_OK) st = px_error(PX_EIO, "fortunes: %s: read failed", path);
    fclose(f);
    free(one.data);
    return st;
}

/* A split from its text: token ids (in place of image bytes) and the number of windows, which
 * start every `stride` tokens (training: every position; validation: disjoint windows, so that
 * every character is predicted once). */
static px_status px__make_split(px_split *s, const px__bytes *text, const uint8_t *id_of,
                                size_t window, size_t stride, size_t limit, const char *which)
{
    if (text->len < window + 2)
        return px_error(PX_EINVAL,
                        "fortunes: the %s text has %zu characters, too few for windows of %zu "
                        "(model.context)",
                        which, text->len, window);
    size_t count = (text->len - window - 1) / stride + 1; /* each window needs its next token */
    if (limit && limit < count) count = limit;
    size_t used = (count - 1) * stride + window + 1;
    s->images = px_alloc(used, "the text's token ids");
    if (!s->images) return PX_ENOMEM;
    for (size_t i = 0; i < used; i++)
        s->images[i] = id_of[text->data[i]];
    s->stride = stride;
    s->count = count;
    s->features = window;
    s->rows = 1;
    s->cols = window;
    return PX_OK;
}

px_status px_fortunes_load(px_dataset *ds, const char *dir, size_t window, size_t train_limit,
                           size_t test_limit)
{
    memset(ds, 0, sizeof *ds);
    ds->input = PX_INPUT_TOKENS;
    ds->label_values = window;
    ds->channels = 1;
    if (window < 1) return px_error(PX_EINVAL, "fortunes: windows of 0 characters");
    char **names = NULL;
    size_t n_files = 0, k = 0;
    px__bytes train = {0}, valid = {0};
    px_status st = px__list_files(dir, &names, &n_files);
    for (size_t i = 0; st == PX_OK && i < n_files; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        st = px__split_file(path, &train, &valid, &k);
    }
    if (st == PX_OK) {
        int seen[256] = {0};
        for (size_t i = 0; i < train.len; i++)
            seen[train.data[i]] = 1;
        for (size_t i = 0; i < valid.len; i++)
            seen[valid.data[i]] = 1;
        uint8_t id_of[256] = {0};
        for (int c = 0; c < 256; c++)
            if (seen[c]) {
                id_of[c] = (uint8_t)ds->classes;
                ds->vocab[ds->classes++] = (uint8_t)c;
            }
        st = px__make_split(&ds->train, &train, id_of, window, 1, train_limit, "training");
        if (st == PX_OK)
            st = px__make_split(&ds->test, &valid, id_of, window, window, test_limit, "validation");
    }
    for (size_t i = 0; i < n_files; i++)
        free(names[i]);
    free(names);
    free(train.data);
    free(valid.data);
    if (st < 0) px_dataset_free(ds);
    return st;
}
