/* run.c - one run from a checked config (see run.h): set-up of this process's part, the
 * start-up agreement of every rank, the loops (loop.c), and the outputs. */
#include "run.h"

#include <cblas.h>
#include <math.h>
#include <errno.h>
#include <unistd.h>
#include <sys/file.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/device.h"
#include "comm/wire.h"
#include "runtime/checkpoint.h"
#include "runtime/nn/model_device.h"
#include "runtime/npy.h"
#include "runtime/run_internal.h"

static int px__exit_code(px_status st)
{
    return st == PX_OK ? 0 : (st == PX_EINVAL ? 2 : 1);
}

void px__state_dir(const px_config *cfg, uint32_t step, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/%s/state_step%u", cfg->run->output_dir, cfg->run->name, step);
}

/* The launcher and the config must agree on the mode. */
static px_status px__check_mode(const px_config *cfg, int world)
{
    int transport = cfg->cluster->transport;
    if (world >= 2 && transport == PHALANX__CLUSTER__TRANSPORT__LOCAL)
        return px_error(PX_EINVAL,
                        "config: cluster.transport = LOCAL, but the job has %d MPI ranks "
                        "(run it without mpirun, or set cluster.transport = AUTO)",
                        world);
    if (world < 2 && (transport == PHALANX__CLUSTER__TRANSPORT__MPI ||
                      transport == PHALANX__CLUSTER__TRANSPORT__SHM ||
                      transport == PHALANX__CLUSTER__TRANSPORT__NCCL))
        return px_error(PX_EINVAL, "config: cluster.transport = %s needs mpirun with at least 2 "
                                   "ranks (1 server + workers); this process runs alone",
                        transport == PHALANX__CLUSTER__TRANSPORT__MPI   ? "MPI"
                        : transport == PHALANX__CLUSTER__TRANSPORT__SHM ? "SHM"
                                                                        : "NCCL");
    uint32_t S = cfg->cluster->server_shards;
    if (S > 1 && world < (int)S + 1)
        return px_error(PX_EINVAL,
                        "config: cluster.server_shards = %u needs mpirun with at least %u ranks "
                        "(%u server shards + worker ranks); this job has %d",
                        S, S + 1, S, world);
    return PX_OK;
}

/* The pool, the logical workers this process hosts, and BLAS threading. */
static px_status px__setup_threads(px__run *R)
{
    const Phalanx__Cluster *cl = R->cfg->cluster;
    R->threads = cl->threads ? (int)cl->threads : (R->is_mpi ? 1 : px_cpu_count());
    PX_CHECK(px_pool_create(&R->pool, R->threads));
    uint32_t n = cl->workers;
    R->ids = calloc(n ? n : 1, sizeof *R->ids);
    if (!R->ids) return px_error(PX_ENOMEM, "workers: cannot allocate");
    /* under MPI worker w lives on rank S + (w mod (W - S)): rank 1 + (w mod (W - 1)) with one
     * server, as px_worker_rank places it on each shard's transport */
    int S = (int)R->shards;
    for (uint32_t w = 0; w < n; w++)
        if (!R->is_mpi ||
            (R->rank >= S && px_worker_rank(w, R->world - S + 1) + S - 1 == R->rank))
            R->ids[R->hosted++] = w;
    /* One BLAS thread, always: a worker's arithmetic must not depend on the thread count
     * (OpenBLAS splits a GEMM differently on 1 and 2 threads, and the sums then round
     * differently). Threads work on separate workers, evaluation chunks and aggregation
     * tiles through the pool instead. */
    openblas_set_num_threads(1);
    return PX_OK;
}

/* The parts of the training set: one per federated client, or per worker with data.partition.
 * Every rank makes the same (a function of the seed and the labels). */
static px_status px__setup_partition(px__run *R)
{
    const px_config *cfg = R->cfg;
    int kind = cfg->data->partition;
    if (!R->federated && kind == PHALANX__DATA__PARTITION__WHOLE) return PX_OK;
    px_partition_kind pk = kind == PHALANX__DATA__PARTITION__DIRICHLET ? PX_PARTITION_DIRICHLET
                           : kind == PHALANX__DATA__PARTITION__SHARDS  ? PX_PARTITION_SHARDS
                                                                       : PX_PARTITION_IID;
    size_t parts = R->federated ? cfg->federated->clients : cfg->cluster->workers;
    const uint8_t *labels = R->data.input == PX_INPUT_VALUES ? R->data.train.labels : NULL;
    if (pk != PX_PARTITION_IID && !labels)
        return px_error(PX_EINVAL, "config: data.partition DIRICHLET and SHARDS split by label; "
                                   "this dataset's examples have none (use IID)");
    px_status st = px_partition_make(&R->partition, pk, labels, R->data.train.count,
                                     R->data.classes, parts, cfg->data->alpha, cfg->run->seed);
    if (st < 0) return px_error_context(st, "config: data.partition");
    R->has_partition = 1;
    return PX_OK;
}

/* Rank 0 at start: the parts' label histogram, summarised on the terminal and written whole to
 * the run directory (partition.csv). */
static void px__report_partition(px__run *R, const px_run_summary *sum)
{
    if (!R->has_partition || R->rank != 0 || !R->data.train.labels) return;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s/partition.csv", R->cfg->run->output_dir, R->cfg->run->name);
    if (px_partition_write_csv(&R->partition, R->data.train.labels, R->data.classes, path) < 0)
        px_log(PX_LOG_WARN, "%s", px_errmsg());
    /* one line per part: on the terminal for a few parts (the CSV has them all) */
    if (R->env->progress && R->cfg->logging->progress != PHALANX__LOGGING__PROGRESS__QUIET &&
        R->partition.parts <= 32) {
        px_partition_summary(&R->partition, R->data.train.labels, R->data.classes,
                             R->env->progress);
        fprintf(R->env->progress, "phalanx: the parts' label histogram -> %s\n", path);
    }
    (void)sum;
}

/* The dataset (the splits this process uses; both shapes checked), the workers' model, the
 * codecs and the transport, sized by the largest legal message. */
static px_status px__setup_data_and_transport(px__run *R)
{
    const px_config *cfg = R->cfg;
    px_config_kinds kinds;
    px_config_kind_names(cfg, &kinds);
    px_data_source src = px_config_data_source(cfg);
    /* the server of a federated run weighs clients by their parts, and with a partition of
     * the workers' data it draws the same parts (from the labels) and reports them: it needs
     * the labels too */
    int parted = cfg->data->partition != PHALANX__DATA__PARTITION__WHOLE;
    int want_train = !R->is_mpi || R->rank >= (int)R->shards || R->federated || parted,
        want_test = R->rank == 0;
    PX_CHECK(px_dataset_open(&R->data, kinds.dataset, &src, want_train, want_test));
    if (R->data.train.count < cfg->data->batch_size)
        return px_error(PX_EINVAL,
                        "config: data.batch_size = %u is larger than the %zu training examples "
                        "(data.train_limit = %u)",
                        cfg->data->batch_size, R->data.train.count, cfg->data->train_limit);
    PX_CHECK(px__setup_partition(R));
    px_model_spec mspec = px_config_model_spec(cfg, &R->data);
    PX_CHECK(px_model_create(&R->model, kinds.model, &mspec));
    if (!R->is_mpi || R->rank >= (int)R->shards) PX_CHECK(px__setup_device(R));
    PX_CHECK(px_config_codecs(cfg, &R->up_spec, &R->down_spec));
    size_t d = R->model->n_params;
    size_t payload_max = d * sizeof(float);
    if (px_codec_payload_bytes(&R->up_spec, d) > payload_max)
        payload_max = px_codec_payload_bytes(&R->up_spec, d);
    if (px_codec_payload_bytes(&R->down_spec, d) > payload_max)
        payload_max = px_codec_payload_bytes(&R->down_spec, d);
    size_t msg_max = PX_WIRE_HEADER_BYTES + payload_max;
    R->msg_max = msg_max;
    if (R->shards > 1) {
        /* every rank cuts the same slices; the transports come after the agreement */
        R->slices = calloc(R->shards, sizeof *R->slices);
        R->ts = calloc(R->shards, sizeof *R->ts);
        if (!R->slices || !R->ts) return px_error(PX_ENOMEM, "server shards: cannot allocate");
        int coded = R->up_spec.format != PX_CODEC_FP32 || R->down_spec.format != PX_CODEC_FP32;
        return px_shard_slices_make(R->slices, R->shards, R->model->groups, R->model->n_groups, d,
                                    coded ? cfg->compression->block_size : 1);
    }
    /* shared memory is attached after the start-up agreement (px__connect): attaching is
     * collective, and a rank that failed its set-up would leave the others waiting for it */
    if (R->is_shm || R->is_split) return PX_OK;
    if (R->is_mpi)
        return px_transport_mpi_create(&R->t, PX_WIRE_HEADER_BYTES, msg_max,
                                       (size_t)cfg->cluster->workers + 1,
                                       (double)cfg->cluster->timeout_ms);
    return px_transport_local_create(&R->t, cfg->cluster->workers);
}

/* Rank 0 holds the run directory for the run's life: a second run of the same run.name is
 * refused (exit 2, naming the holder) instead of mixing its outputs with this one's. */
static px_status px__lock_run_dir(px__run *R)
{
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/%s", R->cfg->run->output_dir, R->cfg->run->name);
    PX_CHECK(px_make_dirs(dir));
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return px_error(PX_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char holder[32] = "";
        ssize_t got = pread(fd, holder, sizeof holder - 1, 0);
        holder[got > 0 ? got : 0] = 0;
        close(fd);
        return px_error(PX_EINVAL,
                        "run directory %s is in use by process %s (another run with run.name = "
                        "\"%s\"): choose another run.name or wait for it",
                        dir, holder[0] ? holder : "?", R->cfg->run->name);
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        close(fd);
        return px_error(PX_EIO, "%s: cannot write: %s", path, strerror(errno));
    }
    R->lock_fd = fd;
    return PX_OK;
}

/* Rank 0: the server, its metrics file, and the per-rank bookkeeping of the gather. */
static px_status px__setup_server(px__run *R, px_run_summary *sum)
{
    const px_config *cfg = R->cfg;
    px_server_shard sh = {.index = (size_t)R->rank,
                          .count = R->shards,
                          .slice = R->shards > 1 ? &R->slices[R->rank] : NULL,
                          .rank_base = (int)R->shards - 1}; /* the link comes with px__connect */
    px_status st = px_server_create_shard(&R->server, cfg, &R->data,
                                          R->world - (int)R->shards + 1, R->pool,
                                          R->shards > 1 ? &sh : NULL);
    R->has_server = 1;
    PX_CHECK(st);
    if (R->federated)
        PX_CHECK(px_server_federate(&R->server, &R->partition, cfg->federated->weighted));
    PX_CHECK(px__setup_server_device(R));
    R->compression_ratio = (double)(PX_WIRE_HEADER_BYTES + R->server.up_payload_bytes) /
                           (double)(PX_WIRE_HEADER_BYTES + R->server.d * sizeof(float));
    px_codec_describe(&R->up_spec, R->uplink, sizeof R->uplink);
    px_codec_describe(&R->down_spec, R->downlink, sizeof R->downlink);
    if (R->is_mpi) {
        R->expected = calloc((size_t)R->world, sizeof *R->expected);
        R->got = calloc((size_t)R->world, sizeof *R->got);
        if (!R->expected || !R->got) return px_error(PX_ENOMEM, "server: cannot allocate");
    }
    if (R->rank > 0) return PX_OK; /* a shard other than 0: no outputs of its own */
    if (R->state_dir)
        PX_CHECK(px_server_load(&R->server, R->state_dir, &R->first_step, R->bytes_totals));
    const char *out = cfg->run->output_dir, *name = cfg->run->name;
    if (cfg->logging->metrics_path[0])
        snprintf(sum->metrics_path, sizeof sum->metrics_path, "%s", cfg->logging->metrics_path);
    else
        snprintf(sum->metrics_path, sizeof sum->metrics_path, "%s/%s/metrics.jsonl", out, name);
    snprintf(sum->params_path, sizeof sum->params_path, "%s/%s/params.npy", out, name);
    PX_CHECK(px__lock_run_dir(R));
    px_checkpoint_clear_partial(cfg); /* before any rank of this run writes a checkpoint */
    PX_CHECK(px_metrics_open(&R->metrics, sum->metrics_path, R->env->progress,
                             (px_progress_mode)cfg->logging->progress, cfg->schedule->steps,
                             R->first_step));
    R->metrics.unit = R->federated ? "round" : "step";
    return PX_OK;
}

/* Every process that hosts workers (every worker rank, if only to follow the server, and the
 * one-process run): the group, and its state when resuming. */
static px_status px__setup_workers(px__run *R)
{
    const px_config *cfg = R->cfg;
    PX_CHECK(px_config_byz_spec(cfg, &R->byz));
    const Phalanx__Lisa *lc = cfg->lisa;
    PX_CHECK(px_lisa_init(&R->lisa, lc->enabled, lc->gamma, lc->period, cfg->run->seed,
                          R->model->groups, R->model->n_groups));
    px_worker_setup setup = {
        .model = R->model,
        .lisa = &R->lisa,
        .partition = R->has_partition ? &R->partition : NULL,
        .slots = cfg->cluster->workers,
        .clients = R->federated ? cfg->federated->clients : 0,
        .local_steps = cfg->federated->local_steps,
        .local_epochs = cfg->federated->local_epochs,
        .local_lr = cfg->federated->local_lr,
        .prox_mu = cfg->federated->objective == PHALANX__FEDERATED__OBJECTIVE__FEDPROX
                       ? cfg->federated->prox_mu
                       : 0.0f,
        .margin_lambda = cfg->federated->objective == PHALANX__FEDERATED__OBJECTIVE__FEDLD
                             ? cfg->federated->margin_lambda
                             : 0.0f,
        .data = &R->data,
        .batch = cfg->data->batch_size,
        .seed = cfg->run->seed,
        .update = R->federated ? "local" : "minibatch",
        .byz = &R->byz,
        .uplink = R->up_spec,
        .downlink = R->down_spec,
        .error_feedback = cfg->compression->error_feedback,
        .slices = R->slices,
        .shards = R->shards};
    px_status st = px_worker_group_create(&R->group, &setup, R->ids, R->hosted, R->pool);
    R->has_group = 1;
    PX_CHECK(st);
    if (R->state_dir) PX_CHECK(px_worker_group_load(&R->group, R->state_dir));
    return PX_OK;
}

static px_status px__setup(px__run *R, px_run_summary *sum)
{
    PX_CHECK(px__check_mode(R->cfg, R->world));
    PX_CHECK(px__check_device(R->cfg));
    R->state_dir = R->env->load_state_dir;
    if (R->shards > 1 && (R->state_dir || R->env->resume))
        return px_error(PX_EINVAL, "cluster.server_shards = %zu: a sharded server cannot load "
                                   "a saved state yet (--resume, --load-state)",
                        R->shards);
    if (R->env->resume) { /* every rank resolves "latest" alike: the same files decide */
        PX_CHECK(px_checkpoint_resolve(R->cfg, R->env->resume, R->cfg->cluster->workers,
                                       R->resume_dir, sizeof R->resume_dir));
        R->state_dir = R->resume_dir;
    }
    PX_CHECK(px__setup_threads(R));
    PX_CHECK(px__setup_data_and_transport(R));
    if (R->rank < (int)R->shards) PX_CHECK(px__setup_server(R, sum));
    if (R->rank >= (int)R->shards || !R->is_mpi) PX_CHECK(px__setup_workers(R));
    return PX_OK;
}

/* Start-up agreement: every rank learns whether every other rank is ready, so that all start
 * or all stop together. Returns the status this rank goes on with. */
static px_status px__agree(px__run *R, px_status st, px_run_summary *sum)
{
    if (!R->is_mpi) return st;
    int worst = 0, worst_rank = 0;
    px_status ast = px_mpi_agree(px__exit_code(st), px_now_ms() + R->cfg->cluster->timeout_ms,
                                 &worst, &worst_rank);
    if (ast < 0 && st == PX_OK) {
        st = ast;
    } else if (ast == PX_OK && worst > 0 && st < 0 && worst_rank != R->rank) {
        /* the same failure on several ranks (a missing dataset): one of them reports */
        sum->failed_elsewhere = 1;
    } else if (ast == PX_OK && worst > 0 && st == PX_OK) {
        sum->failed_elsewhere = 1;
        st = px_error(worst == 2 ? PX_EINVAL : PX_ERUNTIME,
                      "rank %d could not start (see its message)", worst_rank);
    }
    if (ast == PX_OK && worst > 0) sum->exit_code = worst;
    return st;
}

/* cluster.transport = AUTO under mpirun: shared memory when mpirun placed every rank on this
 * node (its OMPI_COMM_WORLD_LOCAL_SIZE is the world size), MPI otherwise (several nodes, or a
 * launcher that does not say). */
static int px__one_node_job(void)
{
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE"), *world = getenv("OMPI_COMM_WORLD_SIZE");
    return local && world && atoi(local) > 1 && strcmp(local, world) == 0;
}

/* After the agreement, with every rank present: the shared-memory transport (collective, with
 * its own agreement), and the worker ranks' messages moved into their slots. Under AUTO a
 * shared memory that cannot be set up (every rank learns it alike) leaves the job on MPI. */
static px_status px__connect(px__run *R)
{
    if (R->shards > 1) {
        PX_CHECK(px_shard_connect(R->shards, PX_WIRE_HEADER_BYTES, R->msg_max,
                                  (size_t)R->cfg->cluster->workers + 1,
                                  (double)R->cfg->cluster->timeout_ms, R->ts, &R->link));
        R->t = R->ts[0];
        R->server.link = R->link;
        return PX_OK;
    }
    if (R->is_split) return px__connect_split(R);
    if (!R->is_shm) return PX_OK;
    px_status st = px_transport_shm_create(&R->t, PX_WIRE_HEADER_BYTES, R->msg_max,
                                           R->cfg->cluster->workers,
                                           px_now_ms() + R->cfg->cluster->timeout_ms);
    if (st < 0 && R->cfg->cluster->transport == PHALANX__CLUSTER__TRANSPORT__AUTO) {
        if (R->rank == 0)
            px_log(PX_LOG_WARN, "shared memory unavailable (%s): messages through MPI",
                   px_errmsg());
        R->is_shm = 0;
        return px_transport_mpi_create(&R->t, PX_WIRE_HEADER_BYTES, R->msg_max,
                                       (size_t)R->cfg->cluster->workers + 1,
                                       (double)R->cfg->cluster->timeout_ms);
    }
    PX_CHECK(st);
    if (R->rank > 0) PX_CHECK(px_worker_group_place(&R->group, R->t));
    if (R->rank == 0) { /* the copy out of a slot checks the payload's CRC as it goes */
        R->t->copy_in = px_wire_copy;
        R->t->copy_user = &R->server.copied;
    }
    return PX_OK;
}

/* Rank 0's start-up lines: the mode, the model and data, the codecs. */
static void px__announce(const px__run *R, const px_run_summary *sum)
{
    FILE *out = R->env->progress;
    if (!out || R->rank != 0) return;
    uint32_t n = R->cfg->cluster->workers;
    if (R->is_mpi && R->shards > 1)
        fprintf(out,
                "phalanx: MPI job of %d ranks: server of %zu shards on ranks 0..%zu (shard 0: "
                "%zu of %zu parameters), %u logical workers on ranks %zu..%d (round-robin), %d "
                "thread%s per rank\n",
                R->world, R->shards, R->shards - 1, R->slices[0].n, R->model->n_params, n,
                R->shards, R->world - 1, R->threads, R->threads > 1 ? "s" : "");
    else if (R->is_mpi)
        fprintf(out,
                "phalanx: MPI job of %d ranks: server on rank 0, %u logical workers on ranks "
                "1..%d (round-robin), %d thread%s per rank%s\n",
                R->world, n, R->world - 1, R->threads, R->threads > 1 ? "s" : "",
                R->is_shm     ? "; messages through shared memory"
                : R->is_split ? R->link_where
                              : "");
    else
        fprintf(out, "phalanx: one process: server and %u logical workers, %d thread%s\n", n,
                R->threads, R->threads > 1 ? "s" : "");
    fprintf(out,
            "phalanx: model %s of %zu parameters; %zu training / %zu test examples; metrics -> "
            "%s\n",
            R->server.model->kind, R->server.d_all, R->data.train.count, R->data.test.count,
            sum->metrics_path);
    px_device *dv = px_model_device(R->model);
    if (dv)
        fprintf(out, "phalanx: the workers' forward and backward passes run on %s\n",
                px_device_name(dv));
    else if (R->cfg->cluster->device == PHALANX__CLUSTER__DEVICE__CUDA)
        fprintf(out, "phalanx: the workers' forward and backward passes run on the GPU of each "
                     "worker rank's node-local rank\n");
    if (R->agg_where[0]) fprintf(out, "phalanx: the server aggregates on %s\n", R->agg_where);
    if (R->up_spec.format != PX_CODEC_FP32 || R->down_spec.format != PX_CODEC_FP32)
        fprintf(out, "phalanx: uplink %s (%.3f of the float32 bytes), downlink %s\n", R->uplink,
                R->compression_ratio, R->downlink);
    if (R->first_step)
        fprintf(out, "phalanx: resuming at step %u from %s\n", R->first_step, R->state_dir);
    if (R->federated)
        fprintf(out,
                "phalanx: federated: %u clients, %u per round, %s local objective; rounds = "
                "schedule.steps\n",
                R->cfg->federated->clients, n,
                R->cfg->federated->objective == PHALANX__FEDERATED__OBJECTIVE__FEDLD ? "FedLD"
                : R->cfg->federated->objective == PHALANX__FEDERATED__OBJECTIVE__FEDPROX
                    ? "FedProx"
                    : "FedAvg");
    fflush(out);
}

static px_status px__write_done(px__run *R, const px_run_summary *sum)
{
    const px_server *s = &R->server;
    const px_config *cfg = R->cfg;
    char drops[1024] = "{";
    for (int r = 1; r < PX_DROP_REASON_COUNT; r++) {
        char one[64];
        snprintf(one, sizeof one, "%s\"%s\":%llu", r > 1 ? "," : "", px_drop_reason_name(r),
                 (unsigned long long)s->drops[r]);
        strncat(drops, one, sizeof drops - strlen(drops) - 2);
    }
    strcat(drops, "}");
    double steps_run = (double)(sum->steps - R->first_step);
    px_json j;
    px_json_begin(&j);
    px_json_str(&j, "event", "done");
    px_json_int(&j, "steps", sum->steps);
    if (R->federated) px_json_int(&j, "rounds", sum->steps);
    px_json_num(&j, "wall_s", sum->wall_s);
    px_json_num(&j, "train_s", sum->train_s);
    px_json_num(&j, "step_ms_mean", steps_run > 0 ? 1000.0 * sum->train_s / steps_run : NAN);
    /* a federated round trains many batches per client: its figure is rounds per second */
    if (R->federated)
        px_json_num(&j, "rounds_per_s", sum->train_s > 0 ? steps_run / sum->train_s : NAN);
    else
        px_json_num(&j, "samples_per_s",
                    sum->train_s > 0
                        ? steps_run * cfg->cluster->workers * cfg->data->batch_size / sum->train_s
                        : NAN);
    px_json_num(&j, "test_acc", sum->test_acc);
    px_json_num(&j, "test_loss", sum->test_loss);
    px_json_num(&j, "train_loss", sum->train_loss);
    px_json_int(&j, "bytes_up_total", (long long)R->bytes_totals[0]);
    px_json_int(&j, "bytes_down_total", (long long)R->bytes_totals[1]);
    px_json_int(&j, "dropped_total", (long long)sum->dropped);
    px_json_int(&j, "late_total", (long long)s->drops[PX_DROP_STEP]);
    px_json_int(&j, "nonfinite_total", (long long)s->drops[PX_DROP_NONFINITE]);
    px_json_int(&j, "update_refused_total", (long long)s->update_refused);
    px_json_int(&j, "steps_skipped", (long long)s->steps_skipped);
    px_json_int(&j, "full_params_sent", (long long)R->full_sent);
    px_json_int(&j, "workers_alive", (long long)s->n_alive);
    px_json_raw(&j, "drops", drops);
    px_json_str(&j, "mode", R->is_local ? "local" : "mpi");
    px_json_str(&j, "model", s->model->kind);
    px_json_str(&j, "uplink", R->uplink);
    px_json_str(&j, "downlink", R->downlink);
    px_json_num(&j, "compression_ratio", R->compression_ratio);
    px_json_int(&j, "world", R->world);
    px_json_int(&j, "server_shards", (long long)R->shards);
    px_json_int(&j, "workers", cfg->cluster->workers);
    px_json_str(&j, "aggregator", cfg->aggregator->rule);
    px_json_str(&j, "attack",
                cfg->byzantine->count ? px_attack_name((px_attack)cfg->byzantine->attack) : "none");
    px_json_int(&j, "byzantine", cfg->byzantine->count);
    if (R->first_step) px_json_int(&j, "resumed_at", R->first_step);
    if (R->data.input == PX_INPUT_TOKENS) {
        px_json_num(&j, "val_loss", sum->test_loss);
        px_json_num(&j, "bits_per_char", sum->test_loss / M_LN2);
    }
    px_json_int(&j, "lisa", R->server.lisa.on);
    px_json_int(&j, "params", (long long)R->server.d_all);
    px_json_int(&j, "classes", (long long)R->data.classes); /* the vocabulary, for text */
    char groups[2048] = "";
    for (size_t g = 0; g < s->model->n_groups; g++) { /* name@offset+size: the layout */
        char one[96];
        const px_layer_group *G = &s->model->groups[g];
        snprintf(one, sizeof one, "%s%s@%zu+%zu", g ? "," : "", G->name, G->offset, G->size);
        strncat(groups, one, sizeof groups - strlen(groups) - 1);
    }
    px_json_str(&j, "layer_groups", groups);
    px_json_num(&j, "trained_fraction",
                sum->steps > R->first_step
                    ? R->trained_values / ((double)R->server.d_all * (sum->steps - R->first_step))
                    : NAN);
    px_json_int(&j, "optimizer_state_bytes",
                (long long)R->server.opt->ops->state_bytes(R->server.opt));
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) px_json_num(&j, "peak_rss_mb", ru.ru_maxrss / 1024.0);
    px_json_end(&j);
    return px_metrics_write(&R->metrics, &j);
}

/* logging.sample_chars (trainer --sample N): characters sampled from the final model, after a
 * newline, to stdout. */
static px_status px__sample_text(px__run *R)
{
    size_t n = R->cfg->logging->sample_chars;
    const px_model *m = R->server.model;
    if (!n) return PX_OK;
    if (!m->ops->generate || R->data.input != PX_INPUT_TOKENS)
        return px_error(PX_EINVAL, "logging.sample_chars: model.kind = %s does not generate text",
                        m->kind);
    int32_t *out = malloc(n * sizeof *out);
    if (!out) return px_error(PX_ENOMEM, "cannot allocate %zu sampled tokens", n);
    int32_t start = 0;
    for (size_t v = 0; v < R->data.classes; v++)
        if (R->data.vocab[v] == '\n') start = (int32_t)v;
    m->ops->generate(m, R->server.eval_work[0], px_server_params(&R->server), R->cfg->run->seed,
                     start, n, out);
    printf("---- %zu characters sampled from the final model ----\n", n);
    for (size_t i = 0; i < n; i++)
        putchar(R->data.vocab[out[i]]);
    printf("\n----\n");
    fflush(stdout);
    free(out);
    return PX_OK;
}

/* Rank 0 after the loop: the done line, the final parameters, a text sample. */
static px_status px__outputs(px__run *R, px_run_summary *sum, double t_start)
{
    sum->wall_s = (px_now_ms() - t_start) / 1000.0;
    PX_CHECK(px__write_done(R, sum));
    PX_CHECK(px__sample_text(R));
    if (!R->cfg->logging->save_params) {
        sum->params_path[0] = 0;
        return px_metrics_commit(&R->metrics);
    }
    size_t dims[1] = {R->server.d_all};
    PX_CHECK(px_npy_write_f32(sum->params_path, px_server_params(&R->server), dims, 1));
    return px_metrics_commit(&R->metrics);
}

static void px__teardown(px__run *R)
{
    px_metrics_close(&R->metrics);
    if (R->lock_fd >= 0) close(R->lock_fd); /* releases the run directory */
    /* the transport first: it completes or cancels every send still reading the server's or
     * the workers' buffers before those are freed */
    if (R->t) R->t->destroy(R->t);
    for (size_t k = 1; R->ts && R->rank >= (int)R->shards && k < R->shards; k++)
        if (R->ts[k]) R->ts[k]->destroy(R->ts[k]);
    px_shard_link_destroy(R->link);
    if (R->has_server) px_server_free(&R->server);
    if (R->has_group) px_worker_group_free(&R->group);
    free(R->expected);
    free(R->got);
    free(R->ids);
    px_model_destroy(R->model);
    px_shard_slices_free(R->slices, R->shards);
    free(R->slices);
    free(R->ts);
    if (R->has_partition) px_partition_free(&R->partition);
    px_dataset_free(&R->data);
    px_pool_destroy(R->pool);
}

static void px__on_preempt(int sig)
{
    px__preempt_signal = sig;
}

px_status px_run(const px_config *cfg, const px_run_env *env, px_run_summary *sum)
{
    /* preemption (Slurm's --signal, a scheduler's TERM, mpirun forwarding USR1): every rank
     * takes the signal and goes on; the server checkpoints at the next step boundary */
    struct sigaction act = {.sa_handler = px__on_preempt}, old_term, old_usr1;
    sigemptyset(&act.sa_mask);
    sigaction(SIGTERM, &act, &old_term);
    sigaction(SIGUSR1, &act, &old_usr1);
    px__preempt_signal = 0;
    memset(sum, 0, sizeof *sum);
    double t_start = px_now_ms();
    px__run R;
    memset(&R, 0, sizeof R);
    R.cfg = cfg;
    R.env = env;
    R.world = env->world;
    R.rank = env->rank;
    R.is_mpi = env->world >= 2;
    R.is_local = !R.is_mpi;
    R.is_shm = R.is_mpi && (cfg->cluster->transport == PHALANX__CLUSTER__TRANSPORT__SHM ||
                            (cfg->cluster->transport == PHALANX__CLUSTER__TRANSPORT__AUTO &&
                             px__one_node_job()));
    R.is_split = R.is_mpi && cfg->cluster->transport == PHALANX__CLUSTER__TRANSPORT__NCCL;
    R.federated = cfg->federated->enabled;
    R.lock_fd = -1;
    R.shards = cfg->cluster->server_shards ? cfg->cluster->server_shards : 1;
    if (R.shards > 1) R.is_shm = 0; /* one MPI channel per shard (config rules: MPI or AUTO) */

    px_status st = px__agree(&R, px__setup(&R, sum), sum);
    if (st == PX_OK) st = px__connect(&R);
    if (st == PX_OK) {
        px__announce(&R, sum);
        px__report_partition(&R, sum);
        sum->started = 1;
        if (R.rank < (int)R.shards) {
            st = px__server_loop(&R, sum);
            if (st == PX_OK && R.rank == 0)
                st = px__outputs(&R, sum, t_start);
            else if (st < 0)
                px_progress_finish(&R.metrics);
        } else {
            st = px__worker_loop(&R);
        }
    }
    if (!sum->exit_code) sum->exit_code = px__exit_code(st);
    px__teardown(&R);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGUSR1, &old_usr1, NULL);
    sum->wall_s = (px_now_ms() - t_start) / 1000.0;
    return st;
}
