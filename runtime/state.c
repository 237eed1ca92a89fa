/* state.c - run-state files (see state.h). */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm/crc32c.h"

static const char px__magic[8] = {'P', 'X', 'S', 'T', 'A', 'T', 'E', '1'};

static void px__put(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t px__get(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static px_status px__write_all(int fd, const void *data, size_t len, const char *path)
{
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return px_error(PX_EIO, "%s: cannot write: %s", path, strerror(errno));
        p += w;
        len -= (size_t)w;
    }
    return PX_OK;
}

px_status px_state_write(const char *path, const px_state_section *s, size_t count)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return px_error(PX_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    unsigned char head[12];
    memcpy(head, px__magic, 8);
    px__put(head + 8, count, 4);
    px_status st = px__write_all(fd, head, sizeof head, tmp);
    for (size_t i = 0; st == PX_OK && i < count; i++) {
        unsigned char sh[16];
        memcpy(sh, s[i].tag, 4);
        px__put(sh + 4, s[i].bytes, 8);
        px__put(sh + 12, px_crc32c(0, s[i].data, s[i].bytes), 4);
        st = px__write_all(fd, sh, sizeof sh, tmp);
        if (st == PX_OK && s[i].bytes) st = px__write_all(fd, s[i].data, s[i].bytes, tmp);
    }
    if (st == PX_OK && fsync(fd) != 0)
        st = px_error(PX_EIO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (close(fd) != 0 && st == PX_OK)
        st = px_error(PX_EIO, "%s: close failed: %s", tmp, strerror(errno));
    if (st == PX_OK && rename(tmp, path) != 0)
        st = px_error(PX_EIO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (st < 0) unlink(tmp);
    return st;
}

px_status px_state_read(const char *path, px_state_file *f)
{
    memset(f, 0, sizeof *f);
    FILE *in = fopen(path, "rb");
    if (!in) return px_error(PX_EINVAL, "state %s: cannot open: %s", path, strerror(errno));
    px_status st = PX_OK;
    struct stat sb;
    if (fstat(fileno(in), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(in);
        return px_error(PX_EINVAL, "state %s: not a regular file", path);
    }
    f->len = (size_t)sb.st_size;
    f->bytes = malloc(f->len ? f->len : 1);
    if (!f->bytes) {
        fclose(in);
        return px_error(PX_ENOMEM, "state %s: cannot allocate %zu bytes", path, f->len);
    }
    if (fread(f->bytes, 1, f->len, in) != f->len)
        st = px_error(PX_EINVAL, "state %s: read failed", path);
    fclose(in);
    const unsigned char *p = f->bytes, *end = f->bytes + f->len;
    if (st == PX_OK && (f->len < 12 || memcmp(p, px__magic, 8) != 0))
        st = px_error(PX_EINVAL, "state %s: not a Phalanx state file (bad magic)", path);
    if (st == PX_OK) {
        f->count = (size_t)px__get(p + 8, 4);
        if (f->count > PX_STATE_MAX_SECTIONS)
            st = px_error(PX_EINVAL, "state %s: %zu sections, at most %d", path, f->count,
                          PX_STATE_MAX_SECTIONS);
        p += 12;
    }
    for (size_t i = 0; st == PX_OK && i < f->count; i++) {
        px_state_section *s = &f->sections[i];
        if ((size_t)(end - p) < 16) {
            st = px_error(PX_EINVAL, "state %s: truncated in the header of section %zu", path, i);
            break;
        }
        memcpy(s->tag, p, 4);
        s->tag[4] = 0;
        uint64_t len = px__get(p + 4, 8);
        uint32_t crc = (uint32_t)px__get(p + 12, 4);
        p += 16;
        if (len > (uint64_t)(end - p)) {
            st = px_error(PX_EINVAL,
                          "state %s: section %s is truncated (%llu bytes announced, %zu "
                          "left)",
                          path, s->tag, (unsigned long long)len, (size_t)(end - p));
            break;
        }
        if (px_crc32c(0, p, (size_t)len) != crc) {
            st = px_error(PX_EINVAL, "state %s: section %s is corrupt (CRC-32C mismatch)", path,
                          s->tag);
            break;
        }
        s->data = p;
        s->bytes = (size_t)len;
        p += len;
    }
    if (st == PX_OK && p != end)
        st = px_error(PX_EINVAL, "state %s: %zu bytes after the last section", path,
                      (size_t)(end - p));
    if (st < 0) px_state_close(f);
    return st;
}

void px_state_close(px_state_file *f)
{
    free(f->bytes);
    memset(f, 0, sizeof *f);
}

px_status px_state_get(const px_state_file *f, const char *tag, size_t want, const void **data,
                       size_t *bytes)
{
    for (size_t i = 0; i < f->count; i++) {
        if (strcmp(f->sections[i].tag, tag) != 0) continue;
        if (want != SIZE_MAX && f->sections[i].bytes != want)
            return px_error(PX_EINVAL, "state: section %s has %zu bytes, this run needs %zu", tag,
                            f->sections[i].bytes, want);
        *data = f->sections[i].data;
        if (bytes) *bytes = f->sections[i].bytes;
        return PX_OK;
    }
    return px_error(PX_EINVAL, "state: no section %s", tag);
}

px_status px_state_mkdir(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return px_error(PX_EIO, "cannot create directory %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return px_error(PX_EIO, "cannot create directory %s: %s", buf, strerror(errno));
    return PX_OK;
}
