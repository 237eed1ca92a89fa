/* run.c - roles, step loops and outputs of a training run (see run.h). */
#include "run.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "comm/transport.h"
#include "comm/wire.h"
#include "runtime/dataset.h"
#include "runtime/metrics.h"
#include "runtime/npy.h"
#include "base/pool.h"
#include "runtime/server.h"
#include "runtime/worker.h"

static int px__exit_code(px_status st)
{
    return st == PX_OK ? 0 : (st == PX_EINVAL ? 2 : 1);
}

/* Accumulates the per-step figures between two metrics lines. */
typedef struct {
    uint32_t steps;
    double step_ms, agg_ms, comm_ms, compute_ms;
    double loss_sum;
    uint32_t loss_n;
    double bytes_up, bytes_down;
    uint64_t dropped, nonfinite, late;
    size_t received_last, injected_last;
} px__interval;

typedef struct {
    const px_config *cfg;
    const px_run_env *env;
    px_transport *t;
    px_server server;
    px_worker_group local; /* one-process mode: every worker */
    int is_local;
    px_metrics metrics;
    uint64_t bytes_up_total, bytes_down_total;
    int *expected, *got; /* per rank: messages due and received this step (MPI) */
    uint64_t drops_seen; /* drops already put in an interval */
    uint64_t late_seen, nonfinite_seen;
    double compression_ratio; /* uplink message bytes over those of a float32 message */
    char uplink[64], downlink[64];
} px__server_run;

static uint64_t px__drops_total(const px_server *s)
{
    uint64_t t = 0;
    for (int r = 0; r < PX_DROP_REASON_COUNT; r++)
        t += s->drops[r];
    return t;
}

/* Receives the step's messages. Ends when every expected gradient is in, or (cluster.f_wait)
 * as soon as n - f_wait are, or when the rest cannot come: every rank has delivered what it
 * owes (MPI), or no message is left or on its way (one process). A wait past the deadline ends
 * the run when every gradient was required, and the step otherwise. */
static px_status px__gather(px__server_run *R, double *bytes_up)
{
    px_server *s = &R->server;
    px_transport *t = R->t;
    const Phalanx__Cluster *cl = R->cfg->cluster;
    uint32_t f_wait = cl->f_wait;
    double timeout = f_wait && cl->step_timeout_ms ? cl->step_timeout_ms : cl->timeout_ms;
    double deadline = px_now_ms() + timeout;
    size_t quorum = s->n - f_wait, need = quorum < s->n_alive ? quorum : s->n_alive;
    int world = t->world, ranks_owing = 0;
    if (!R->is_local) {
        for (int r = 1; r < world; r++)
            R->expected[r] = R->got[r] = 0;
        for (uint32_t w = 0; w < s->n; w++)
            if (s->alive[w]) R->expected[px_worker_rank(w, world)]++;
        for (int r = 1; r < world; r++)
            ranks_owing += R->expected[r] > 0;
    }
    size_t valid = 0, delivered = 0;
    int silent = 0;
    while (valid < need && (R->is_local || ranks_owing > 0)) {
        const unsigned char *msg;
        size_t len;
        int src;
        px_status st = t->recv(t, &msg, &len, &src, deadline);
        if (st == PX_ETIMEOUT) {
            /* one process: the queue ran dry; silent if some live worker sent nothing */
            silent = R->is_local ? delivered < s->n_alive : 1;
            break;
        }
        *bytes_up += (double)len;
        int counts = 1;
        if (st == PX_EPROTO) {
            px_server_count_drop(s, PX_DROP_LENGTH, src, px_errmsg());
        } else {
            PX_CHECK(st);
            px_drop_reason r = px_server_accept(s, msg, len, src);
            valid += r == PX_DROP_NONE;
            /* a message of another step (late) does not pay what the sender owes now */
            counts = r != PX_DROP_STEP;
        }
        delivered += counts;
        if (!R->is_local && counts && src > 0 && src < world && ++R->got[src] == R->expected[src])
            ranks_owing--;
    }
    if (R->is_local) {
        /* messages past the quorum would reach the server in the next step and be dropped there
         * as late, as under MPI: drop them now (a buffer must not be queued when rewritten) */
        const unsigned char *msg;
        size_t len;
        int src;
        while (t->recv(t, &msg, &len, &src, 0) == PX_OK) {
            *bytes_up += (double)len;
            px_server_count_drop(s, PX_DROP_STEP, 0, "arrived after the step's quorum");
        }
    }
    if (silent && f_wait == 0) {
        char who[1024] = "";
        if (R->is_local) {
            for (uint32_t w = 0; w < s->n; w++) {
                if (s->have[w]) continue;
                char one[32];
                snprintf(one, sizeof one, "%s%u", who[0] ? ", " : "", w);
                strncat(who, one, sizeof who - strlen(who) - 1);
            }
            return px_error(PX_ERUNTIME,
                            "step %u: no gradient from worker %s, and every worker "
                            "is required (cluster.f_wait = 0)",
                            s->step, who);
        }
        for (int r = 1; r < world; r++) {
            if (R->got[r] >= R->expected[r]) continue;
            char one[64];
            snprintf(one, sizeof one, "%srank %d (%d of %d messages)", who[0] ? ", " : "", r,
                     R->got[r], R->expected[r]);
            strncat(who, one, sizeof who - strlen(who) - 1);
        }
        return px_error(PX_ETIMEOUT,
                        "step %u: no gradient from %s within %u ms "
                        "(cluster.timeout_ms): stalled or dead",
                        s->step, who, cl->timeout_ms);
    }
    if (f_wait) {
        int changed;
        PX_CHECK(px_server_track_liveness(s, px_now_ms(), cl->timeout_ms, &changed));
    }
    return PX_OK;
}

static void px__write_line(px__server_run *R, uint32_t done, float lr, px__interval *iv,
                           int evaluated, double test_loss, double test_acc)
{
    const px_config *cfg = R->cfg;
    px_json j;
    px_json_begin(&j);
    px_json_int(&j, "step", done);
    double samples = (double)done * cfg->cluster->workers * cfg->data->batch_size;
    px_json_num(&j, "epoch", samples / (double)R->server.data->train.count);
    px_json_num(&j, "lr", lr);
    px_json_num(&j, "train_loss", iv->loss_n ? iv->loss_sum / iv->loss_n : NAN);
    if (evaluated) {
        px_json_num(&j, "test_loss", test_loss);
        px_json_num(&j, "test_acc", test_acc);
    }
    double k = iv->steps ? (double)iv->steps : 1.0;
    px_json_num(&j, "step_ms", iv->step_ms / k);
    px_json_num(&j, "agg_ms", iv->agg_ms / k);
    px_json_num(&j, "comm_ms", iv->comm_ms / k);
    if (R->is_local) px_json_num(&j, "compute_ms", iv->compute_ms / k);
    px_json_num(&j, "bytes_up", iv->bytes_up / k);
    px_json_num(&j, "bytes_down", iv->bytes_down / k);
    px_json_int(&j, "dropped", (long long)iv->dropped);
    px_json_int(&j, "nonfinite", (long long)iv->nonfinite);
    px_json_int(&j, "late", (long long)iv->late);
    px_json_int(&j, "workers_used", (long long)iv->received_last);
    if (R->server.byz_on) px_json_int(&j, "byzantine_injected", (long long)iv->injected_last);
    px_json_int(&j, "workers_alive", (long long)R->server.n_alive);
    px_json_num(&j, "compression_ratio", R->compression_ratio);
    px_json_end(&j);
    px_status st = px_metrics_write(&R->metrics, &j);
    if (st < 0) px_log(PX_LOG_WARN, "%s", px_errmsg());
}

static px_status px__server_loop(px__server_run *R, px_run_summary *sum)
{
    const px_config *cfg = R->cfg;
    px_server *s = &R->server;
    px_transport *t = R->t;
    uint32_t steps = cfg->schedule->steps;
    uint32_t eval_every = cfg->schedule->eval_every, log_every = cfg->schedule->log_every;
    px__interval iv;
    memset(&iv, 0, sizeof iv);
    double test_loss = NAN, test_acc = NAN, last_train_loss = NAN;
    double loop_start = px_now_ms();
    int n_worker_ranks = R->is_local ? (int)cfg->cluster->workers : t->world - 1;

    for (uint32_t step = 0; step < steps; step++) {
        double t0 = px_now_ms();
        const unsigned char *pmsg;
        size_t plen;
        const unsigned char *full;
        size_t full_len;
        PX_CHECK(px_server_begin_step(s, step, &pmsg, &plen, &full, &full_len));
        int skipped = 0, n_full = 0;
        for (int r = 0; full && r < (t->world > 1 ? t->world : 1); r++)
            n_full += s->needs_full[r];
        PX_CHECK(t->send_params(t, pmsg, plen, full, full_len, s->needs_full, &skipped));
        double compute_ms = 0;
        if (R->is_local) {
            /* the local workers take the message as a worker rank would */
            double c0 = px_now_ms();
            const unsigned char *in;
            size_t in_len;
            const float *params;
            uint32_t in_step;
            int stop;
            PX_CHECK(t->recv_from_server(t, &in, &in_len, 0));
            PX_CHECK(px_worker_group_take(&R->local, in, in_len, &params, &in_step, &stop));
            PX_CHECK(px_worker_group_step(&R->local, params, step, t));
            compute_ms = px_now_ms() - c0;
        }
        /* bytes as they would travel: one message per worker rank (per worker, alone) */
        double bytes_down = (double)plen * (n_worker_ranks - skipped) +
                            (double)n_full * ((double)full_len - (double)plen);
        double bytes_up = 0;
        PX_CHECK(px__gather(R, &bytes_up));
        double comm_ms = px_now_ms() - t0 - compute_ms;

        float lr = px_lr_at(&s->schedule, step);
        px_step_result res;
        PX_CHECK(px_server_finish_step(s, lr, &res));
        uint32_t done = step + 1;
        int evaluate = (eval_every && done % eval_every == 0) || done == steps;
        if (evaluate) px_server_evaluate(s, &test_loss, &test_acc);
        double step_ms = px_now_ms() - t0;

        R->bytes_up_total += (uint64_t)bytes_up;
        R->bytes_down_total += (uint64_t)bytes_down;
        iv.steps++;
        iv.step_ms += step_ms;
        iv.agg_ms += res.agg_ms;
        iv.comm_ms += comm_ms;
        iv.compute_ms += compute_ms;
        iv.bytes_up += bytes_up;
        iv.bytes_down += bytes_down;
        iv.nonfinite += s->drops[PX_DROP_NONFINITE] - R->nonfinite_seen;
        R->nonfinite_seen = s->drops[PX_DROP_NONFINITE];
        iv.received_last = res.received;
        iv.injected_last = res.injected;
        iv.late += s->drops[PX_DROP_STEP] - R->late_seen;
        R->late_seen = s->drops[PX_DROP_STEP];
        if (isfinite(res.train_loss)) {
            iv.loss_sum += res.train_loss;
            iv.loss_n++;
        }
        uint64_t drops = px__drops_total(s);
        iv.dropped += drops - R->drops_seen;
        R->drops_seen = drops;

        if (done % log_every == 0 || evaluate || done == steps) {
            if (iv.loss_n) last_train_loss = iv.loss_sum / iv.loss_n;
            px__write_line(R, done, lr, &iv, evaluate, test_loss, test_acc);
            px_progress_update(&R->metrics, done, last_train_loss,
                               isfinite(test_acc) ? test_acc : -1, iv.step_ms / iv.steps, evaluate);
            memset(&iv, 0, sizeof iv);
        }
    }
    px_progress_finish(&R->metrics);

    const unsigned char *smsg = s->params_msg;
    px_msg_header stop = {
        .kind = PX_MSG_STOP, .step = steps, .worker = PX_WIRE_SERVER, .loss = NAN};
    px_wire_seal(s->params_msg, &stop, 0);
    px_status stop_st = t->send_stop(t, smsg, PX_WIRE_HEADER_BYTES, px_wire_is_bye,
                                     px_now_ms() + 2.0 * cfg->cluster->timeout_ms);
    if (stop_st < 0) {
        /* the training is done; a rank that stopped listening cannot spoil it, but the job
         * cannot end normally with it either (see trainer.c) */
        px_log(PX_LOG_WARN, "%s", px_errmsg());
        sum->unreachable_ranks = 1;
    }

    sum->steps = steps;
    sum->train_s = (px_now_ms() - loop_start) / 1000.0;
    sum->test_acc = test_acc;
    sum->test_loss = test_loss;
    sum->train_loss = last_train_loss;
    sum->dropped = px__drops_total(s);
    return PX_OK;
}

static void px__write_done(px__server_run *R, const px_run_summary *sum)
{
    const px_server *s = &R->server;
    px_json j;
    char drops[1024] = "{";
    for (int r = 1; r < PX_DROP_REASON_COUNT; r++) {
        char one[64];
        snprintf(one, sizeof one, "%s\"%s\":%llu", r > 1 ? "," : "", px_drop_reason_name(r),
                 (unsigned long long)s->drops[r]);
        strncat(drops, one, sizeof drops - strlen(drops) - 2);
    }
    strcat(drops, "}");
    const px_config *cfg = R->cfg;
    px_json_begin(&j);
    px_json_str(&j, "event", "done");
    px_json_int(&j, "steps", sum->steps);
    px_json_num(&j, "wall_s", sum->wall_s);
    px_json_num(&j, "train_s", sum->train_s);
    px_json_num(&j, "step_ms_mean", sum->steps ? 1000.0 * sum->train_s / sum->steps : NAN);
    px_json_num(&j, "samples_per_s",
                sum->train_s > 0 ? (double)sum->steps * cfg->cluster->workers *
                                       cfg->data->batch_size / sum->train_s
                                 : NAN);
    px_json_num(&j, "test_acc", sum->test_acc);
    px_json_num(&j, "test_loss", sum->test_loss);
    px_json_num(&j, "train_loss", sum->train_loss);
    px_json_int(&j, "bytes_up_total", (long long)R->bytes_up_total);
    px_json_int(&j, "bytes_down_total", (long long)R->bytes_down_total);
    px_json_int(&j, "dropped_total", (long long)sum->dropped);
    px_json_int(&j, "late_total", (long long)s->drops[PX_DROP_STEP]);
    px_json_int(&j, "nonfinite_total", (long long)s->drops[PX_DROP_NONFINITE]);
    px_json_int(&j, "update_refused_total", (long long)s->update_refused);
    px_json_int(&j, "steps_skipped", (long long)s->steps_skipped);
    px_json_int(&j, "workers_alive", (long long)s->n_alive);
    px_json_raw(&j, "drops", drops);
    px_json_str(&j, "mode", R->is_local ? "local" : "mpi");
    px_json_str(&j, "uplink", R->uplink);
    px_json_str(&j, "downlink", R->downlink);
    px_json_num(&j, "compression_ratio", R->compression_ratio);
    px_json_int(&j, "world", R->env->world);
    px_json_int(&j, "workers", cfg->cluster->workers);
    px_json_str(&j, "aggregator", cfg->aggregator->rule);
    px_json_str(&j, "attack",
                cfg->byzantine->count ? px_attack_name((px_attack)cfg->byzantine->attack) : "none");
    px_json_int(&j, "byzantine", cfg->byzantine->count);
    px_json_end(&j);
    px_status st = px_metrics_write(&R->metrics, &j);
    if (st < 0) px_log(PX_LOG_WARN, "%s", px_errmsg());
}

static void px__output_paths(const px_config *cfg, char *metrics, char *params, size_t cap)
{
    const char *out = cfg->run->output_dir, *name = cfg->run->name;
    if (cfg->logging->metrics_path[0])
        snprintf(metrics, cap, "%s", cfg->logging->metrics_path);
    else
        snprintf(metrics, cap, "%s/%s/metrics.jsonl", out, name);
    snprintf(params, cap, "%s/%s/params.npy", out, name);
}

/* The worker ranks' loop: parameters in, gradients out, until the server says stop. */
static px_status px__worker_loop(const px_config *cfg, px_transport *t, px_worker_group *g)
{
    /* a worker waits twice as long for the server as the server waits for a worker: when a
     * worker goes silent the server, which can name it, reports first */
    double wait_ms = 2.0 * cfg->cluster->timeout_ms;
    for (;;) {
        const unsigned char *msg;
        size_t len;
        const float *params = NULL;
        uint32_t step = 0;
        int stop = 0;
        PX_CHECK(t->recv_from_server(t, &msg, &len, px_now_ms() + wait_ms));
        PX_CHECK(px_worker_group_take(g, msg, len, &params, &step, &stop));
        /* a slow rank may find more queued: take each in order (deltas build on each other),
         * compute only on the newest */
        while (!stop && t->recv_from_server(t, &msg, &len, 0) == PX_OK)
            PX_CHECK(px_worker_group_take(g, msg, len, &params, &step, &stop));
        if (stop) {
            /* answer after the last gradient (messages from one rank arrive in order), so
             * that the server takes everything still on its way before it ends */
            static unsigned char bye[PX_WIRE_HEADER_BYTES]; /* read until t->destroy */
            px_msg_header b = {
                .kind = PX_MSG_BYE, .step = step, .worker = PX_WIRE_SERVER, .loss = NAN};
            px_wire_seal(bye, &b, 0);
            PX_CHECK(t->send(t, bye, sizeof bye, 0));
            return t->sends_done(t, px_now_ms() + wait_ms);
        }
        PX_CHECK(t->sends_done(t, px_now_ms() + wait_ms));
        PX_CHECK(px_worker_group_step(g, params, step, t));
    }
}

static int px__threads(const px_config *cfg, int world)
{
    if (cfg->cluster->threads) return (int)cfg->cluster->threads;
    return world > 1 ? 1 : px_cpu_count();
}

px_status px_run(const px_config *cfg, const px_run_env *env, px_run_summary *sum)
{
    memset(sum, 0, sizeof *sum);
    double t_start = px_now_ms();
    const Phalanx__Cluster *cl = cfg->cluster;
    int world = env->world, rank = env->rank;
    int is_mpi = world >= 2;
    px_status st = PX_OK;

    if (is_mpi && cl->transport == PHALANX__CLUSTER__TRANSPORT__LOCAL)
        st = px_error(PX_EINVAL,
                      "config: cluster.transport = LOCAL, but the job has %d MPI ranks "
                      "(run it without mpirun, or set cluster.transport = AUTO)",
                      world);
    if (!is_mpi && cl->transport == PHALANX__CLUSTER__TRANSPORT__MPI)
        st = px_error(PX_EINVAL, "config: cluster.transport = MPI needs mpirun with at least 2 "
                                 "ranks (1 server + workers); this process runs alone");
    if (st < 0) {
        sum->exit_code = 2;
        return st;
    }

    int threads = px__threads(cfg, world);
    uint32_t n = cl->workers;
    px_pool *pool = NULL;
    px_dataset data;
    memset(&data, 0, sizeof data);
    px_transport *t = NULL;
    px__server_run R;
    memset(&R, 0, sizeof R);
    R.cfg = cfg;
    R.env = env;
    px_worker_group group;
    memset(&group, 0, sizeof group);
    px_mlp model;
    px_byz_spec byz;
    uint32_t *ids = NULL;

    PX_CHECK_GOTO(px_pool_create(&pool, threads), st, startup_done);
    /* Several gradients at once, one BLAS thread each; or one BLAS call with every thread. */
    size_t hosted = 0;
    if (!is_mpi)
        hosted = n;
    else if (rank > 0)
        for (uint32_t w = 0; w < n; w++)
            hosted += px_worker_rank(w, world) == rank;
    openblas_set_num_threads(hosted > 1 && threads > 1 ? 1 : threads);

    const Phalanx__Data *dc = cfg->data;
    int want_train = !is_mpi || rank > 0, want_test = rank == 0;
    PX_CHECK_GOTO(
        px_fmnist_load(&data, dc->path, want_train, want_test, dc->train_limit, dc->test_limit), st,
        startup_done);
    if (!want_train) {
        /* the server needs only the size of the training set (for epochs) */
        char lpath[4096];
        size_t count, one;
        uint8_t *labels;
        snprintf(lpath, sizeof lpath, "%s/train-labels-idx1-ubyte.gz", dc->path);
        PX_CHECK_GOTO(px_idx_read_gz(lpath, 1, dc->train_limit, &count, &one, &labels), st,
                      startup_done);
        px_free(labels);
        data.train.count = count;
        data.train.features = data.test.features;
    }
    if (want_train && data.train.count < dc->batch_size) {
        st = px_error(PX_EINVAL,
                      "config: data.batch_size = %u is larger than the %zu training "
                      "examples (data.train_limit = %u)",
                      dc->batch_size, data.train.count, dc->train_limit);
        goto startup_done;
    }

    size_t features = want_train ? data.train.features : data.test.features;
    PX_CHECK_GOTO(
        px_mlp_shape(&model, features, cfg->model->hidden, cfg->model->n_hidden, data.classes), st,
        startup_done);
    /* the largest legal message: parameters in float32, or a gradient or delta payload */
    px_codec_spec up_spec, down_spec;
    PX_CHECK_GOTO(px_config_codecs(cfg, &up_spec, &down_spec), st, startup_done);
    size_t payload_max = model.n_params * sizeof(float);
    if (px_codec_payload_bytes(&up_spec, model.n_params) > payload_max)
        payload_max = px_codec_payload_bytes(&up_spec, model.n_params);
    if (px_codec_payload_bytes(&down_spec, model.n_params) > payload_max)
        payload_max = px_codec_payload_bytes(&down_spec, model.n_params);
    size_t msg_max = PX_WIRE_HEADER_BYTES + payload_max;
    if (is_mpi)
        PX_CHECK_GOTO(px_transport_mpi_create(&t, PX_WIRE_HEADER_BYTES, msg_max, (size_t)n + 1), st,
                      startup_done);
    else
        PX_CHECK_GOTO(px_transport_local_create(&t, n), st, startup_done);

    if (rank == 0) {
        PX_CHECK_GOTO(px_server_create(&R.server, cfg, &data, world, pool), st, startup_done);
        R.t = t;
        R.is_local = !is_mpi;
        R.compression_ratio = (double)(PX_WIRE_HEADER_BYTES + R.server.up_payload_bytes) /
                              (double)(PX_WIRE_HEADER_BYTES + R.server.d * sizeof(float));
        px_codec_describe(&up_spec, R.uplink, sizeof R.uplink);
        px_codec_describe(&down_spec, R.downlink, sizeof R.downlink);
        if (is_mpi) {
            R.expected = calloc((size_t)world, sizeof *R.expected);
            R.got = calloc((size_t)world, sizeof *R.got);
            if (!R.expected || !R.got) {
                st = px_error(PX_ENOMEM, "server: cannot allocate");
                goto startup_done;
            }
            for (uint32_t w = 0; w < n; w++)
                R.expected[px_worker_rank(w, world)]++;
        }
        px__output_paths(cfg, sum->metrics_path, sum->params_path, sizeof sum->metrics_path);
        PX_CHECK_GOTO(px_metrics_open(&R.metrics, sum->metrics_path, env->progress,
                                      (px_progress_mode)cfg->logging->progress,
                                      cfg->schedule->steps),
                      st, startup_done);
    }
    if (rank > 0 || !is_mpi) { /* every worker rank has a group, if only to follow the server */
        ids = calloc(hosted ? hosted : 1, sizeof *ids);
        if (!ids) {
            st = px_error(PX_ENOMEM, "workers: cannot allocate");
            goto startup_done;
        }
        size_t k = 0;
        for (uint32_t w = 0; w < n; w++)
            if (!is_mpi || px_worker_rank(w, world) == rank) ids[k++] = w;
        PX_CHECK_GOTO(px_config_byz_spec(cfg, &byz), st, startup_done);
        px_worker_setup setup = {.model = &model,
                                 .data = &data,
                                 .batch = dc->batch_size,
                                 .seed = cfg->run->seed,
                                 .byz = &byz,
                                 .uplink = up_spec,
                                 .downlink = down_spec,
                                 .error_feedback = cfg->compression->error_feedback};
        PX_CHECK_GOTO(px_worker_group_create(is_mpi ? &group : &R.local, &setup, ids, hosted, pool),
                      st, startup_done);
    }

startup_done:
    if (is_mpi) {
        /* every rank learns whether every other rank is ready, so that all stop together */
        int worst = 0, worst_rank = 0;
        px_status ast =
            px_mpi_agree(px__exit_code(st), px_now_ms() + cl->timeout_ms, &worst, &worst_rank);
        if (ast < 0 && st == PX_OK)
            st = ast;
        else if (ast == PX_OK && worst > 0 && st < 0 && worst_rank != rank) {
            /* the same failure on several ranks (a missing dataset): one of them reports */
            sum->failed_elsewhere = 1;
        } else if (ast == PX_OK && worst > 0 && st == PX_OK) {
            sum->failed_elsewhere = 1;
            st = px_error(worst == 2 ? PX_EINVAL : PX_ERUNTIME,
                          "rank %d could not start (see its message)", worst_rank);
        }
        if (ast == PX_OK && worst > 0) sum->exit_code = worst;
    }
    if (st == PX_OK && env->progress && rank == 0) {
        if (is_mpi)
            fprintf(env->progress,
                    "phalanx: MPI job of %d ranks: server on rank 0, %u logical "
                    "workers on ranks 1..%d (round-robin), %d thread%s per rank\n",
                    world, n, world - 1, threads, threads > 1 ? "s" : "");
        else
            fprintf(env->progress,
                    "phalanx: one process: server and %u logical workers, %d "
                    "thread%s\n",
                    n, threads, threads > 1 ? "s" : "");
        fprintf(env->progress,
                "phalanx: model %zu parameters; %zu training / %zu test "
                "examples; metrics -> %s\n",
                R.server.d, data.train.count, data.test.count, sum->metrics_path);
        if (up_spec.format != PX_CODEC_FP32 || down_spec.format != PX_CODEC_FP32)
            fprintf(env->progress, "phalanx: uplink %s (%.3f of the float32 bytes), downlink %s\n",
                    R.uplink, R.compression_ratio, R.downlink);
        fflush(env->progress);
    }

    if (st == PX_OK) {
        sum->started = 1;
        if (rank == 0) {
            st = px__server_loop(&R, sum);
            if (st == PX_OK) {
                sum->wall_s = (px_now_ms() - t_start) / 1000.0;
                px__write_done(&R, sum);
                if (cfg->logging->save_params) {
                    size_t dims[1] = {R.server.d};
                    st = px_npy_write_f32(sum->params_path, R.server.params, dims, 1);
                }
                if (!cfg->logging->save_params) sum->params_path[0] = 0;
            } else {
                px_progress_finish(&R.metrics);
            }
        } else {
            st = px__worker_loop(cfg, t, &group);
        }
    }
    if (!sum->exit_code) sum->exit_code = px__exit_code(st);

    px_metrics_close(&R.metrics);
    if (t) t->destroy(t); /* first: it ends the sends that read the workers' buffers */
    if (rank == 0 && R.server.params_msg) px_server_free(&R.server);
    px_worker_group_free(is_mpi ? &group : &R.local);
    free(R.expected);
    free(R.got);
    free(ids);
    px_dataset_free(&data);
    px_pool_destroy(pool);
    sum->wall_s = (px_now_ms() - t_start) / 1000.0;
    return st;
}
