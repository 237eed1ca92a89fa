/* metrics.h - the run's outputs on rank 0: metrics as JSON Lines, and the progress display.
 *
 * Metrics file: one JSON object per logged step (keys in snake_case: step, epoch, lr,
 * train_loss, test_loss, test_acc, step_ms, agg_ms, comm_ms, bytes_up, bytes_down, dropped,
 * ...) and a last line with "event":"done" and the run's totals. Each line is flushed when
 * written, so a crashed run keeps everything up to its last step.
 *
 * Progress: a bar redrawn in place on a terminal, plain lines otherwise (logs, CI), or nothing.
 */
#ifndef PX_METRICS_H
#define PX_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "base/common.h"

/* A JSON object built in a fixed buffer (no allocation). Non-finite numbers become null. */
typedef struct {
    char buf[4096];
    size_t len;
    int n_keys;
} px_json;

void px_json_begin(px_json *j);
void px_json_int(px_json *j, const char *key, long long v);
void px_json_num(px_json *j, const char *key, double v);
void px_json_str(px_json *j, const char *key, const char *v);
/* Appends "key": followed by raw JSON text (an object built separately). */
void px_json_raw(px_json *j, const char *key, const char *raw);
void px_json_end(px_json *j);

typedef enum {
    PX_PROGRESS_AUTO = 0,
    PX_PROGRESS_BAR,
    PX_PROGRESS_LINES,
    PX_PROGRESS_QUIET
} px_progress_mode;

typedef struct {
    FILE *file;
    char path[4096];
    FILE *out; /* progress stream (stderr) */
    px_progress_mode mode;
    const char *unit;     /* what a step is called in progress lines ("step", "round") */
    char part_path[4200]; /* where lines go until the run completes */
    int direct;           /* the path is not a regular file: written directly */
    uint32_t total_steps;
    uint32_t line_every; /* plain-line mode: a line every this many steps */
    double start_ms;
    int bar_drawn;
    double last_draw_ms;
} px_metrics;

/* Opens (truncates) the metrics file, creating its directory. `out` receives the progress. */
px_status px_metrics_open(px_metrics *m, const char *path, FILE *out, px_progress_mode mode,
                          uint32_t total_steps, uint32_t resumed_at);
/* Writes one JSON line; a failed write (a full disk) is an error the run stops on. */
px_status px_metrics_write(px_metrics *m, const px_json *j);
/* The run is complete: fsync the lines and rename PATH.partial over PATH. */
px_status px_metrics_commit(px_metrics *m);
/* Closes without committing: an unfinished run's lines stay in PATH.partial. */
void px_metrics_close(px_metrics *m);

/* Progress after `step` completed steps. test_acc < 0 when not evaluated yet. */
void px_progress_update(px_metrics *m, uint32_t step, double train_loss, double test_acc,
                        double step_ms, int evaluated_now);
/* Ends the bar (a newline) so that later output starts on a clean line. */
void px_progress_finish(px_metrics *m);

/* mkdir -p */
px_status px_make_dirs(const char *path);

#endif
