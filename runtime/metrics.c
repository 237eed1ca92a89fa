/* metrics.c - JSON Lines metrics and the progress display (see metrics.h). */
#define _GNU_SOURCE
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void px__append(px_json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void px__append(px_json *j, const char *fmt, ...)
{
    if (j->len >= sizeof j->buf - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(j->buf + j->len, sizeof j->buf - j->len, fmt, ap);
    va_end(ap);
    if (w > 0) j->len += (size_t)w;
    if (j->len > sizeof j->buf - 1) j->len = sizeof j->buf - 1;
}

static void px__key(px_json *j, const char *key)
{
    px__append(j, "%s\"%s\":", j->n_keys++ ? "," : "", key);
}

void px_json_begin(px_json *j)
{
    j->len = 0;
    j->n_keys = 0;
    j->buf[0] = 0;
    px__append(j, "{");
}

void px_json_int(px_json *j, const char *key, long long v)
{
    px__key(j, key);
    px__append(j, "%lld", v);
}

void px_json_num(px_json *j, const char *key, double v)
{
    px__key(j, key);
    if (isfinite(v))
        px__append(j, "%.6g", v);
    else
        px__append(j, "null");
}

void px_json_str(px_json *j, const char *key, const char *v)
{
    px__key(j, key);
    px__append(j, "\"");
    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            px__append(j, "\\%c", c);
        else if (c < 0x20)
            px__append(j, "\\u%04x", c);
        else
            px__append(j, "%c", c);
    }
    px__append(j, "\"");
}

void px_json_raw(px_json *j, const char *key, const char *raw)
{
    px__key(j, key);
    px__append(j, "%s", raw);
}

void px_json_end(px_json *j)
{
    px__append(j, "}");
}

px_status px_make_dirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
            return px_error(PX_EIO, "cannot create directory %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
        return px_error(PX_EIO, "cannot create directory %s: %s", tmp, strerror(errno));
    return PX_OK;
}

/* The step (or round) a metrics line is about; UINT32_MAX for the done line or an unreadable one.
 */
static uint32_t px__line_step(const char *line)
{
    if (strstr(line, "\"event\":\"done\"")) return UINT32_MAX;
    const char *k = strstr(line, "{\"step\":");
    if (!k) k = strstr(line, "{\"round\":");
    if (!k) return UINT32_MAX;
    k = strchr(k, ':') + 1;
    char *end;
    unsigned long v = strtoul(k, &end, 10);
    return end == k || v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* A resumed run starts its metrics with the lines its checkpoint covers (steps <= upto) of
 * the run it continues: that run's partial metrics (killed), or its finished ones. */
static px_status px__carry_over(px_metrics *m, const char *from, uint32_t upto)
{
    FILE *old = fopen(from, "r");
    if (!old) return PX_OK;
    char line[16384];
    px_status st = PX_OK;
    while (st == PX_OK && fgets(line, sizeof line, old))
        if (px__line_step(line) <= upto && fputs(line, m->file) == EOF)
            st = px_error(PX_EIO, "cannot write metrics to %s: %s", m->part_path, strerror(errno));
    fclose(old);
    return st;
}

px_status px_metrics_open(px_metrics *m, const char *path, FILE *out, px_progress_mode mode,
                          uint32_t total_steps, uint32_t resumed_at)
{
    memset(m, 0, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s", path);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        PX_CHECK(px_make_dirs(dir));
    }
    /* lines go to PATH.partial, renamed over PATH when the run completes: an earlier run's
     * metrics stay whole until then, and a killed run leaves its lines beside them, apart.
     * A path that is not a regular file (a pipe, a device) is written directly. */
    struct stat sb;
    m->direct = stat(path, &sb) == 0 && !S_ISREG(sb.st_mode);
    snprintf(m->part_path, sizeof m->part_path, "%s%s", path, m->direct ? "" : ".partial");
    char previous[4300] = "";
    if (resumed_at && !m->direct) {
        snprintf(previous, sizeof previous, "%s.previous", m->part_path);
        if (rename(m->part_path, previous) != 0) snprintf(previous, sizeof previous, "%s", path);
    }
    m->file = fopen(m->part_path, "w");
    if (!m->file)
        return px_error(PX_EIO, "cannot write metrics to %s: %s", m->part_path, strerror(errno));
    if (previous[0]) {
        PX_CHECK(px__carry_over(m, previous, resumed_at));
        if (strcmp(previous, path) != 0) remove(previous);
    }
    m->out = out;
    if (mode == PX_PROGRESS_AUTO)
        mode = (out && isatty(fileno(out))) ? PX_PROGRESS_BAR : PX_PROGRESS_LINES;
    m->mode = mode;
    m->total_steps = total_steps;
    m->line_every = total_steps >= 10 ? total_steps / 10 : 1;
    m->start_ms = px_now_ms();
    return PX_OK;
}

px_status px_metrics_write(px_metrics *m, const px_json *j)
{
    if (!m->file) return PX_OK;
    if (fputs(j->buf, m->file) == EOF || fputc('\n', m->file) == EOF || fflush(m->file) != 0)
        return px_error(PX_EIO, "cannot write metrics to %s: %s", m->part_path, strerror(errno));
    return PX_OK;
}

px_status px_metrics_commit(px_metrics *m)
{
    if (!m->file) return PX_OK;
    px_status st = PX_OK;
    if (fflush(m->file) != 0 || (!m->direct && fsync(fileno(m->file)) != 0))
        st = px_error(PX_EIO, "cannot write metrics to %s: %s", m->part_path, strerror(errno));
    if (fclose(m->file) != 0 && st == PX_OK)
        st = px_error(PX_EIO, "cannot write metrics to %s: %s", m->part_path, strerror(errno));
    m->file = NULL;
    if (st == PX_OK && !m->direct && rename(m->part_path, m->path) != 0)
        st = px_error(PX_EIO, "cannot rename %s to %s: %s", m->part_path, m->path, strerror(errno));
    return st;
}

void px_metrics_close(px_metrics *m)
{
    if (m->file) fclose(m->file);
    m->file = NULL;
}

void px_progress_update(px_metrics *m, uint32_t step, double train_loss, double test_acc,
                        double step_ms, int evaluated_now)
{
    if (!m->out || m->mode == PX_PROGRESS_QUIET) return;
    double elapsed = (px_now_ms() - m->start_ms) / 1000.0;
    char acc[32] = "";
    if (test_acc >= 0) snprintf(acc, sizeof acc, "  test_acc %.2f%%", 100.0 * test_acc);
    if (m->mode == PX_PROGRESS_BAR) {
        /* redraw at most ten times a second, but always on evaluations and at the end */
        double now = px_now_ms();
        if (!evaluated_now && step != m->total_steps && now - m->last_draw_ms < 100) return;
        m->last_draw_ms = now;
        const int width = 24;
        int fill = (int)((double)width * step / (m->total_steps ? m->total_steps : 1));
        char bar[32];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        double eta = step ? elapsed * (double)(m->total_steps - step) / (double)step : 0;
        fprintf(m->out, "\r\033[K[%s] %u/%u  loss %.4f%s  %.1f ms/step  ETA %.0fs", bar, step,
                m->total_steps, train_loss, acc, step_ms, eta);
        fflush(m->out);
        m->bar_drawn = 1;
        return;
    }
    if (evaluated_now || step % m->line_every == 0 || step == m->total_steps) {
        const char *unit = m->unit ? m->unit : "step";
        fprintf(m->out, "%s %u/%u  train_loss %.4f%s  %.1f ms/%s  %.1f s\n", unit, step,
                m->total_steps, train_loss, acc, step_ms, unit, elapsed);
        fflush(m->out);
    }
}

void px_progress_finish(px_metrics *m)
{
    if (m->bar_drawn && m->out) {
        fputc('\n', m->out);
        fflush(m->out);
    }
    m->bar_drawn = 0;
}
