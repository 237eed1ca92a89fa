/* run.h - one training run from a checked config: the roles of the processes, the step loop of
 * the server and of the worker ranks, the metrics and the final outputs.
 *
 * Under MPI with world size W >= 2, rank 0 runs the server and ranks 1..W-1 host the logical
 * workers round-robin. Alone (W = 1), one process runs the server and every worker through the
 * in-process transport. Both modes compute the same trajectory: the random streams are named
 * by logical worker and step, and the server aggregates in worker order.
 */
#ifndef PX_RUN_H
#define PX_RUN_H

#include <stdint.h>
#include <stdio.h>

#include "base/common.h"
#include "runtime/config.h"

typedef struct {
    int world;      /* processes in the job (1 without MPI) */
    int rank;       /* this process */
    FILE *progress; /* where rank 0 shows progress and the run's summary lines (stderr) */
    /* a run state saved by logging.save_state_step to continue from (NULL: start afresh) */
    const char *load_state_dir;
    /* trainer --resume: a checkpoint directory, or "latest" (NULL: none) */
    const char *resume;
} px_run_env;

typedef struct {
    uint32_t steps;
    double wall_s;  /* start-up included */
    double train_s; /* the step loop */
    double test_acc, test_loss, train_loss;
    uint64_t dropped;
    char metrics_path[4096];
    char params_path[4096]; /* "" when not saved */
    /* set when the run failed because of another rank: this rank has nothing to report */
    int failed_elsewhere;
    int exit_code;         /* 0, 1 or 2, agreed by every rank at start-up */
    int unreachable_ranks; /* some rank did not take the final stop message */
    int started;           /* every rank passed start-up: a later failure leaves the other
                              ranks in the middle of a step (MPI: abort the job) */
    int preempted;         /* stopped by SIGTERM or SIGUSR1 after a checkpoint (exit 3) */
} px_run_summary;

/* Runs the configured training. Returns PX_OK on success; on failure the error message says
 * what happened, and summary->exit_code the exit status the program should use. */
px_status px_run(const px_config *cfg, const px_run_env *env, px_run_summary *summary);

#endif
