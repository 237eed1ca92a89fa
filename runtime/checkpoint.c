/* checkpoint.c - checkpoint directories: schedule, commit, validation, resolution (see
 * checkpoint.h). */
#define _GNU_SOURCE
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/state.h"

void px_checkpoint_root(const px_config *cfg, char *buf, size_t cap)
{
    if (cfg->checkpoint->dir && cfg->checkpoint->dir[0])
        snprintf(buf, cap, "%s", cfg->checkpoint->dir);
    else
        snprintf(buf, cap, "%s/%s/checkpoints", cfg->run->output_dir, cfg->run->name);
}

void px_checkpoint_path(const px_config *cfg, uint32_t step, int tmp, char *buf, size_t cap)
{
    char root[4096];
    px_checkpoint_root(cfg, root, sizeof root);
    snprintf(buf, cap, "%s/step_%08u%s", root, step, tmp ? ".tmp" : "");
}

int px_checkpoint_due(const px_config *cfg, uint32_t done)
{
    uint32_t every = cfg->checkpoint->every;
    if (!every) return 0;
    return done % every == 0 || (cfg->checkpoint->at_end && done == cfg->schedule->steps);
}

px_status px_checkpoint_write_config(const px_config *cfg, const char *dir)
{
    size_t len = protobuf_c_message_get_packed_size(&cfg->base);
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) return px_error(PX_ENOMEM, "checkpoint: cannot allocate the config");
    protobuf_c_message_pack(&cfg->base, buf);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.pxs", dir);
    px_state_section sec = {"CNFG", buf, len};
    px_status st = px_state_write(path, &sec, 1);
    free(buf);
    return st;
}

static px_status px__fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return px_error(PX_EIO, "%s: cannot open: %s", dir, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? PX_OK : px_error(PX_EIO, "%s: fsync failed: %s", dir, strerror(errno));
}

/* Removes a checkpoint directory and the files in it (it holds no subdirectory). */
static void px__remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[4700];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* The steps of the complete checkpoints under root, newest first; *count of them. */
static px_status px__list(const char *root, uint32_t **steps, size_t *count)
{
    *steps = NULL;
    *count = 0;
    DIR *d = opendir(root);
    if (!d) return PX_OK; /* no checkpoint yet */
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        unsigned step;
        char tail;
        if (sscanf(e->d_name, "step_%8u%c", &step, &tail) != 1 || strlen(e->d_name) != 13) continue;
        if (*count == cap) {
            cap = cap ? 2 * cap : 16;
            uint32_t *p = realloc(*steps, cap * sizeof *p);
            if (!p) {
                closedir(d);
                return px_error(PX_ENOMEM, "checkpoint: cannot allocate");
            }
            *steps = p;
        }
        (*steps)[(*count)++] = step;
    }
    closedir(d);
    for (size_t i = 1; i < *count; i++) /* newest first: insertion sort, a handful of entries */
        for (size_t j = i; j > 0 && (*steps)[j] > (*steps)[j - 1]; j--) {
            uint32_t t = (*steps)[j];
            (*steps)[j] = (*steps)[j - 1];
            (*steps)[j - 1] = t;
        }
    return PX_OK;
}

static px_status px__prune(const px_config *cfg)
{
    char root[4096];
    px_checkpoint_root(cfg, root, sizeof root);
    uint32_t *steps;
    size_t count;
    PX_CHECK(px__list(root, &steps, &count));
    for (size_t i = cfg->checkpoint->keep; i < count; i++) {
        char dir[4200];
        px_checkpoint_path(cfg, steps[i], 0, dir, sizeof dir);
        px__remove_dir(dir);
    }
    free(steps);
    return PX_OK;
}

px_status px_checkpoint_commit(const px_config *cfg, uint32_t step, size_t n, const uint8_t *expect,
                               double deadline_ms)
{
    char tmp[4200], final[4200];
    px_checkpoint_path(cfg, step, 1, tmp, sizeof tmp);
    px_checkpoint_path(cfg, step, 0, final, sizeof final);
    /* the worker ranks write their files as soon as they have computed the step: wait */
    for (;;) {
        size_t missing = 0, first = 0;
        for (size_t w = 0; w < n; w++) {
            if (expect && !expect[w]) continue;
            char path[4400];
            snprintf(path, sizeof path, "%s/worker_%zu.pxs", tmp, w);
            if (access(path, R_OK) != 0 && !missing++) first = w;
        }
        if (!missing) break;
        if (px_now_ms() > deadline_ms) {
            px__remove_dir(tmp);
            return px_error(PX_ETIMEOUT,
                            "checkpoint of step %u abandoned: %zu worker state%s missing (worker "
                            "%zu first) before the deadline",
                            step, missing, missing > 1 ? "s" : "", first);
        }
        px_sleep_us(1000);
    }
    PX_CHECK(px__fsync_dir(tmp));
    px__remove_dir(final); /* a complete one of the same step (a rerun): the new one wins */
    if (rename(tmp, final) != 0)
        return px_error(PX_EIO, "checkpoint: cannot rename %s to %s: %s", tmp, final,
                        strerror(errno));
    char root[4096];
    px_checkpoint_root(cfg, root, sizeof root);
    PX_CHECK(px__fsync_dir(root));
    return px__prune(cfg);
}

static px_status px__validate_file(const char *dir, const char *name)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    px_state_file f;
    PX_CHECK(px_state_read(path, &f));
    px_state_close(&f);
    return PX_OK;
}

px_status px_checkpoint_validate(const char *dir, size_t n)
{
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return px_error(PX_EINVAL, "checkpoint %s: not a directory", dir);
    PX_CHECK(px__validate_file(dir, "server.pxs"));
    PX_CHECK(px__validate_file(dir, "config.pxs"));
    for (size_t w = 0; w < n; w++) {
        char name[64];
        snprintf(name, sizeof name, "worker_%zu.pxs", w);
        PX_CHECK(px__validate_file(dir, name));
    }
    return PX_OK;
}

px_status px_checkpoint_resolve(const px_config *cfg, const char *what, size_t n, char *dir,
                                size_t cap)
{
    if (strcmp(what, "latest") != 0) {
        snprintf(dir, cap, "%s", what);
        return px_checkpoint_validate(dir, n);
    }
    char root[4096];
    px_checkpoint_root(cfg, root, sizeof root);
    uint32_t *steps;
    size_t count;
    PX_CHECK(px__list(root, &steps, &count));
    px_status st = px_error(PX_EINVAL, "--resume latest: no checkpoint in %s", root);
    for (size_t i = 0; i < count; i++) {
        px_checkpoint_path(cfg, steps[i], 0, dir, cap);
        st = px_checkpoint_validate(dir, n);
        if (st == PX_OK) break;
        px_log(PX_LOG_WARN, "skipping checkpoint %s: %s", dir, px_errmsg());
        st = px_error(PX_EINVAL,
                      "--resume latest: no valid checkpoint in %s (the newest failed: %s)", root,
                      px_errmsg());
    }
    free(steps);
    return st;
}

void px_checkpoint_clear_partial(const px_config *cfg)
{
    char root[4096];
    px_checkpoint_root(cfg, root, sizeof root);
    DIR *d = opendir(root);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, "step_", 5) != 0 || n < 4 || strcmp(e->d_name + n - 4, ".tmp"))
            continue;
        char dir[4400];
        snprintf(dir, sizeof dir, "%s/%s", root, e->d_name);
        px__remove_dir(dir);
    }
    closedir(d);
}
