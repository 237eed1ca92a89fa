/* checkpoint.h - checkpoints: a run state on disk that a later run continues from.
 *
 * One directory per checkpoint, <root>/step_NNNNNNNN, holding the server's state (server.pxs),
 * one file per logical worker (worker_<id>.pxs) and the config (config.pxs); every file is a
 * run-state file (state.h: sections with a CRC-32C, written to a temporary name, fsynced,
 * renamed). The directory is first built as step_NNNNNNNN.tmp -- the server writes its files,
 * the ranks that host workers write theirs -- and the server renames it once every file is in
 * and fsynced, so a reader sees a checkpoint whole or not at all. The newest `keep` are kept.
 *
 * Which steps: every `every` steps, and after the last one (at_end), or when the run is
 * preempted (SIGTERM, SIGUSR1): a function of the config that every rank evaluates alike, except
 * preemption, which the server announces in its stop message.
 */
#ifndef PX_CHECKPOINT_H
#define PX_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "runtime/config.h"

/* The directory checkpoints go to: checkpoint.dir, or <output_dir>/<name>/checkpoints. */
void px_checkpoint_root(const px_config *cfg, char *buf, size_t cap);

/* The directory of the checkpoint after `step` steps, complete (tmp = 0) or being built. */
void px_checkpoint_path(const px_config *cfg, uint32_t step, int tmp, char *buf, size_t cap);

/* 1 if a checkpoint is due after `done` steps on the schedule (not preemption). */
int px_checkpoint_due(const px_config *cfg, uint32_t done);

/* Writes the config (the packed config.pb) into dir/config.pxs. */
px_status px_checkpoint_write_config(const px_config *cfg, const char *dir);

/* The server, once its own files are in the .tmp directory of `step`: waits until deadline_ms
 * for the worker files of the workers marked in `expect` (n flags; NULL = all n), fsyncs,
 * renames the directory complete and removes all but the newest checkpoint.keep. On a timeout
 * the partial directory is removed and PX_ETIMEOUT names the missing workers (the previous
 * checkpoints stay). */
px_status px_checkpoint_commit(const px_config *cfg, uint32_t step, size_t n, const uint8_t *expect,
                               double deadline_ms);

/* Checks that dir is a complete checkpoint of n workers: every file present and every section's
 * CRC right. PX_EINVAL names the file and the section. */
px_status px_checkpoint_validate(const char *dir, size_t n);

/* Resolves `--resume` WHAT: a directory is taken as it is (it must validate); "latest" is the
 * newest checkpoint under the root that validates, older ones tried in turn when a newer one is
 * corrupt or incomplete (each skipped one is logged). PX_EINVAL when there is none. */
px_status px_checkpoint_resolve(const px_config *cfg, const char *what, size_t n, char *dir,
                                size_t cap);

/* Removes the partial (.tmp) checkpoint directories an interrupted run left: rank 0 calls it
 * at set-up, before the start-up agreement, so that no rank of this run has written into them
 * yet and a checkpoint of this run never mixes with a dead run's files. */
void px_checkpoint_clear_partial(const px_config *cfg);

#endif
