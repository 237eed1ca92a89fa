/* trainer.c - the main program: `trainer [--set field.path=value]... [--print-config] CONFIG.pb`.
 *
 * Reads and checks the config (exit 2 with a message naming the field, the rule and the value
 * when it is wrong), then trains: under mpirun with several ranks rank 0 is the parameter
 * server and the other ranks host the workers; alone, one process does everything. Exit 0 on
 * success, 2 on bad input, 1 on a run-time failure. Only rank 0 prints, except a rank that
 * fails on its own.
 */
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregators/aggregator.h"
#include "runtime/config.h"
#include "runtime/run.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: trainer [--set section.field=value]... [--print-config]\n"
        "               [--load-state DIR] CONFIG.pb\n"
        "       trainer --help | --version\n"
        "\n"
        "Trains a model with a parameter server and robust aggregation.\n"
        "  mpirun -np 8 trainer config.pb   rank 0 = server, ranks 1..7 host the workers\n"
        "  trainer config.pb                one process: server and every worker\n"
        "\n"
        "CONFIG.pb is a binary phalanx.Config (proto/config.proto); encode a text config with\n"
        "  protoc --encode=phalanx.Config -I proto proto/config.proto < my.txtpb > my.pb\n"
        "\n"
        "options:\n"
        "  --set PATH=VALUE  override one field, e.g. --set optimizer.lr=0.05,\n"
        "                    --set model.hidden=256,256, --set aggregator.rule=median\n"
        "  --print-config    print the effective config (text format) and exit\n"
        "  --load-state DIR  continue from a run state saved by logging.save_state_step\n"
        "                    (DIR = <output_dir>/<name>/state_step<N>), on any number of ranks\n"
        "  --help            this text\n"
        "  --version         the version\n"
        "\n"
        "aggregation rules (aggregator.rule):\n");
    for (size_t i = 0; i < px_agg_rule_count(); i++) {
        const px_agg_rule *r = px_agg_rule_at(i);
        fprintf(out, "  %-14s %s\n", r->name, r->summary);
    }
    /* the defaults as a config without the field gets them: the aggregator library's */
    fprintf(out, "\naggregator parameters (--set aggregator.KEY=VALUE; the default, from the "
                 "aggregator library;\nthe rules that read it; aggregator.seed = 0 takes "
                 "run.seed):\n");
    px_config *def = NULL;
    if (px_config_default(&def) == PX_OK) {
        for (size_t i = 0; i < px_agg_param_count(); i++) {
            const px_agg_param_info *k = px_agg_param_at(i);
            char path[64], value[64], range[64];
            snprintf(path, sizeof path, "aggregator.%s", k->key);
            if (px_config_get_text(def, path, value, sizeof value) < 0) continue; /* not a field */
            px_agg_param_range(k, range, sizeof range);
            fprintf(out, "  %-14s default %-10s [%s]\n  %14s %s%s%s%s\n", k->key,
                    value[0] ? value : "(none)", k->used_by, "", k->help, range[0] ? " (" : "",
                    range, range[0] ? ")" : "");
        }
        px_config_free(def);
    }
    fprintf(out, "\nexit status: 0 success, 2 bad command line or config, 1 run-time failure,\n"
                 "             3 preempted (SIGTERM or SIGUSR1): checkpoint written, continue\n"
                 "             with --resume latest\n");
}

/* The version and what this build holds beyond the CPU path (a user on a GPU machine asks
 * first whether the binary can use it at all). */
static void print_version(void)
{
    printf("phalanx trainer %s\n", PX_VERSION_STRING);
#ifdef PX_HAVE_CUDA
    printf("cuda: built in (toolkit %s, device code for architectures %s)\n", PX_CUDA_VERSION,
           PX_CUDA_ARCHS);
#else
    printf("cuda: not built in (configured without the CUDA toolkit; cluster.device = CUDA "
           "is refused)\n");
#endif
#ifdef PX_HAVE_NCCL
    printf("nccl: built in (NCCL %s)\n", PX_NCCL_VERSION);
#else
    printf("nccl: not built in (cluster.transport = NCCL is refused)\n");
#endif
}

/* Under `mpirun --enable-recovery` (launch/mpirun.sh) mpirun's own exit status does not
 * reflect the ranks': rank 0 writes its exit status to PX_EXIT_STATUS_FILE when that is set,
 * and the wrapper exits with it. */
static int report_rank;
static void px__report_exit(int code)
{
    const char *path = getenv("PX_EXIT_STATUS_FILE");
    if (!path || !path[0] || report_rank != 0) return;
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "%d\n", code);
    fclose(f);
}

/* Ending MPI can wait forever on a peer that died (MPI_Finalize, or MPI_Abort under
 * --enable-recovery, seen spinning in Open MPI after the server's abort): past a deadline the
 * process ends on its own with the status it was going to report. */
#define PX_MPI_END_S 20
static volatile sig_atomic_t px__end_code;
static void px__end_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "trainer: MPI did not let this rank end within 20 s: exiting\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w; /* nothing more to do if it fails */
    _exit(px__end_code);
}
static void px__end_mpi_within(int code)
{
    px__end_code = code;
    signal(SIGALRM, px__end_alarm);
    alarm(PX_MPI_END_S);
}

/* Rank and size as the launcher announces them, before MPI is initialised. */
static int launched_by_mpi(int *rank)
{
    const char *r = getenv("OMPI_COMM_WORLD_RANK");
    if (!r) r = getenv("PMIX_RANK");
    if (!r) r = getenv("PMI_RANK");
    *rank = r ? atoi(r) : 0;
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE") ||
           getenv("PMI_RANK");
}

static int px__mpi_started; /* MPI_Init has been called */

static int px__main(int argc, char **argv)
{
    int env_rank = 0;
    int under_mpi = launched_by_mpi(&env_rank);
    int quiet = env_rank != 0;
    const char *config_path = NULL;
    int print_config = 0;
    const char *load_state = NULL, *resume = NULL;
    const char **sets = calloc((size_t)argc, sizeof *sets);
    int n_sets = 0;
    if (!sets) {
        fprintf(stderr, "trainer: cannot allocate the list of --set overrides\n");
        return 1;
    }

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            if (!quiet) usage(stdout);
            free(sets);
            return 0;
        }
        if (!strcmp(a, "--version")) {
            if (!quiet) print_version();
            free(sets);
            return 0;
        }
        if (!strcmp(a, "--print-config")) {
            print_config = 1;
        } else if (!strcmp(a, "--sample")) {
            if (i + 1 >= argc) {
                if (!quiet) fprintf(stderr, "trainer: --sample needs a number of characters\n");
                free(sets);
                return 2;
            }
            static char set[64];
            if ((size_t)snprintf(set, sizeof set, "logging.sample_chars=%s", argv[++i]) >=
                sizeof set) { /* refused, not cut: a cut number is another number */
                if (!quiet)
                    fprintf(stderr, "trainer: --sample %s: not a number of characters\n", argv[i]);
                free(sets);
                return 2;
            }
            sets[n_sets++] = set;
        } else if (!strcmp(a, "--resume")) {
            if (i + 1 >= argc) {
                if (!quiet)
                    fprintf(stderr, "trainer: --resume needs a checkpoint directory or 'latest'\n");
                free(sets);
                return 2;
            }
            resume = argv[++i];
        } else if (!strcmp(a, "--load-state")) {
            if (i + 1 >= argc) {
                if (!quiet) fprintf(stderr, "trainer: --load-state needs a directory\n");
                free(sets);
                return 2;
            }
            load_state = argv[++i];
        } else if (!strcmp(a, "--set") || !strncmp(a, "--set=", 6)) {
            const char *v = a[5] == '=' ? a + 6 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) {
                if (!quiet) fprintf(stderr, "trainer: --set needs section.field=value\n");
                free(sets);
                return 2;
            }
            sets[n_sets++] = v;
        } else if (a[0] == '-' && a[1]) {
            if (!quiet) fprintf(stderr, "trainer: unknown option '%s' (see trainer --help)\n", a);
            free(sets);
            return 2;
        } else if (config_path) {
            if (!quiet)
                fprintf(stderr, "trainer: more than one config file given ('%s' and '%s')\n",
                        config_path, a);
            free(sets);
            return 2;
        } else {
            config_path = a;
        }
    }
    if (!config_path) {
        if (!quiet) {
            fprintf(stderr, "trainer: no config file given\n\n");
            usage(stderr);
        }
        free(sets);
        return 2;
    }

    px_config *cfg = NULL;
    px_status st = px_config_load(config_path, &cfg);
    for (int i = 0; st == PX_OK && i < n_sets; i++)
        st = px_config_set(cfg, sets[i]);
    if (st == PX_OK) px_config_resolve(cfg);
    if (st == PX_OK) st = px_config_validate(cfg);
    if (st < 0) {
        if (!quiet) fprintf(stderr, "trainer: %s\n", px_errmsg());
        px_config_free(cfg);
        free(sets);
        return 2;
    }
    if (print_config) {
        if (!quiet) px_config_print_text(stdout, cfg);
        px_config_free(cfg);
        free(sets);
        return 0;
    }

    px_run_env env = {
        .world = 1, .rank = 0, .progress = stderr, .load_state_dir = load_state, .resume = resume};
    if (under_mpi) {
        int provided;
        MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
        px__mpi_started = 1;
        MPI_Comm_rank(MPI_COMM_WORLD, &env.rank);
        MPI_Comm_size(MPI_COMM_WORLD, &env.world);
    }
    report_rank = env.rank;
    if (env.rank == 0) {
        fprintf(stderr, "phalanx trainer %s: %s\n", PX_VERSION_STRING, config_path);
        px_config_print_table(stderr, cfg);
    } else {
        env.progress = NULL;
    }

    px_run_summary sum;
    st = px_run(cfg, &env, &sum);
    int code = sum.exit_code;
    if (st == PX_OK && sum.preempted) code = 3; /* checkpointed: requeue and --resume latest */
    if (st == PX_OK) {
        if (env.rank == 0) {
            char acc[32] = "n/a", tl[32] = "n/a", trl[32] = "n/a";
            if (isfinite(sum.test_acc)) snprintf(acc, sizeof acc, "%.2f%%", 100.0 * sum.test_acc);
            if (isfinite(sum.test_loss)) snprintf(tl, sizeof tl, "%.4f", sum.test_loss);
            if (isfinite(sum.train_loss)) snprintf(trl, sizeof trl, "%.4f", sum.train_loss);
            fprintf(stderr,
                    "final: test_acc %s  test_loss %s  train_loss %s  after %u steps in %.1f s "
                    "(%.1f s training)\n",
                    acc, tl, trl, sum.steps, sum.wall_s, sum.train_s);
            if (sum.dropped)
                fprintf(stderr, "dropped messages: %llu (see \"drops\" in the metrics)\n",
                        (unsigned long long)sum.dropped);
            fprintf(stderr, "metrics: %s\n", sum.metrics_path);
            if (sum.params_path[0]) fprintf(stderr, "parameters: %s\n", sum.params_path);
        }
    } else if (!sum.failed_elsewhere) {
        if (env.world > 1)
            fprintf(stderr, "trainer: rank %d: %s\n", env.rank, px_errmsg());
        else
            fprintf(stderr, "trainer: %s\n", px_errmsg());
    }
    px_config_free(cfg);
    free(sets);
    if (under_mpi) {
        if (st == PX_OK && sum.unreachable_ranks) {
            /* the training is complete and written, but MPI_Finalize would wait forever for a
             * rank that stopped listening (died, or was killed): end the job with the status
             * that says so */
            fprintf(stderr, "trainer: the run is complete and its outputs written, but a rank "
                            "stopped responding (lost): ending the MPI job with exit status 4\n");
            px__report_exit(4);
            fflush(stderr);
            px__end_mpi_within(4);
            MPI_Abort(MPI_COMM_WORLD, 4);
        }
        px__report_exit(code ? code : (st < 0 ? 1 : 0));
        px__end_mpi_within(code ? code : (st < 0 ? 1 : 0));
        if (st < 0 && sum.started) {
            /* the other ranks are in the middle of a step: end the whole job now */
            fflush(stderr);
            MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
        }
        MPI_Finalize();
    }
    return code;
}

int main(int argc, char **argv)
{
    int rank = 0, under_mpi = launched_by_mpi(&rank);
    int code = px__main(argc, argv);
    /* An error found before MPI starts (the command line, the config) is printed by rank 0
     * alone; the others leave it a moment, so that mpirun, which ends the job at the first
     * failed rank, does not kill rank 0 before its message is out. */
    if (under_mpi && rank != 0 && !px__mpi_started && code != 0) sleep(1);
    return code;
}
