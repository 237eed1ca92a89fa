/* loop.c - the step loops of a run (see run_internal.h): the server's, stage by stage
 * (parameters out, collect, attack + aggregate + update, metrics, evaluation, state), and the
 * worker ranks'. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "comm/wire.h"
#include "runtime/checkpoint.h"
#include "runtime/run_internal.h"

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

static uint64_t px__drops_total(const px_server *s)
{
    uint64_t t = 0;
    for (int r = 0; r < PX_DROP_REASON_COUNT; r++)
        t += s->drops[r];
    return t;
}

/* Before a step's messages come in: what each worker rank owes (MPI). */
static int px__expect(px__run *R)
{
    const px_server *s = &R->server;
    int ranks_owing = 0, world = R->t->world; /* the ranks of this server's (shard's) transport */
    for (int r = 1; r < world; r++)
        R->expected[r] = R->got[r] = 0;
    for (uint32_t w = 0; w < s->n; w++)
        if (s->alive[w]) R->expected[px_worker_rank(w, world)]++;
    for (int r = 1; r < world; r++)
        ranks_owing += R->expected[r] > 0;
    return ranks_owing;
}

/* A required gradient did not come: the error names the silent workers (one process) or ranks. */
static px_status px__silent_error(px__run *R)
{
    const px_server *s = &R->server;
    char who[1024] = "";
    if (R->is_local) {
        for (uint32_t w = 0; w < s->n; w++) {
            if (s->have[w]) continue;
            char one[32];
            snprintf(one, sizeof one, "%s%u", who[0] ? ", " : "", w);
            strncat(who, one, sizeof who - strlen(who) - 1);
        }
        return px_error(PX_ERUNTIME,
                        "step %u: no gradient from worker %s, and every worker is required "
                        "(cluster.f_wait = 0)",
                        s->step, who);
    }
    for (int r = 1; r < R->t->world; r++) {
        if (R->got[r] >= R->expected[r]) continue;
        char one[64];
        snprintf(one, sizeof one, "%srank %d (%d of %d messages)", who[0] ? ", " : "",
                 r + s->rank_base, R->got[r], R->expected[r]);
        strncat(who, one, sizeof who - strlen(who) - 1);
    }
    return px_error(PX_ETIMEOUT,
                    "step %u: no gradient from %s within %u ms (cluster.timeout_ms): stalled or "
                    "dead",
                    s->step, who, R->cfg->cluster->timeout_ms);
}

/* One process: messages past the quorum would reach the server in the next step and be dropped
 * there as late, as under MPI: drop them now (a buffer must not be queued when rewritten). */
static void px__drop_rest_local(px__run *R, double *bytes_up)
{
    const unsigned char *msg;
    size_t len;
    int src;
    while (R->t->recv(R->t, &msg, &len, &src, 0) == PX_OK) {
        *bytes_up += (double)len;
        px_server_count_drop(&R->server, PX_DROP_STEP, 0, "arrived after the step's quorum");
    }
}

/* Stage collect: receives the step's messages. Ends when every expected gradient is in, or
 * (cluster.f_wait) as soon as n - f_wait are, or when the rest cannot come: every rank has
 * delivered what it owes (MPI), or no message is left or on its way (one process). A wait past
 * the deadline ends the run when every gradient was required, and the step otherwise. */
static px_status px__collect(px__run *R, double *bytes_up, double *bytes_down, int *stop)
{
    px_server *s = &R->server;
    const Phalanx__Cluster *cl = R->cfg->cluster;
    uint32_t f_wait = cl->f_wait;
    double timeout = f_wait && cl->step_timeout_ms ? cl->step_timeout_ms : cl->timeout_ms;
    double deadline = px_now_ms() + timeout;
    size_t quorum = s->n - f_wait, need = quorum < s->n_alive ? quorum : s->n_alive;
    int ranks_owing = R->is_local ? 0 : px__expect(R);
    size_t valid = 0, delivered = 0;
    int silent = 0;
    while (valid < need && (R->is_local || ranks_owing > 0)) {
        const unsigned char *msg;
        size_t len;
        int src;
        px_status st = R->t->recv(R->t, &msg, &len, &src, deadline);
        if (st == PX_ETIMEOUT) {
            /* one process: the queue ran dry; silent if some live worker sent nothing */
            silent = R->is_local ? delivered < s->n_alive : 1;
            break;
        }
        if (st == PX_ELOST && f_wait && src > 0 && src < R->t->world) {
            /* the rank died or was cut off mid-message: its workers are gone for good, and the
             * step goes on with the others if the rule still holds for them */
            PX_CHECK(px_server_lose_rank(s, src));
            if (R->got[src] < R->expected[src]) {
                R->expected[src] = R->got[src];
                ranks_owing--;
            }
            need = need < s->n_alive ? need : s->n_alive;
            continue;
        }
        *bytes_up += (double)len;
        int counts = 1;
        if (st == PX_EPROTO) {
            /* a size no legal message has: it belongs to no step and pays nothing owed */
            px_server_count_drop(s, PX_DROP_LENGTH, src, px_errmsg());
            counts = 0;
        } else {
            PX_CHECK(st);
            px_drop_reason r = px_server_accept(s, msg, len, src);
            valid += r == PX_DROP_NONE;
            /* a message of another step (late) does not pay what the sender owes now */
            counts = r != PX_DROP_STEP;
        }
        delivered += counts;
        if (!R->is_local && counts && src > 0 && src < R->t->world &&
            ++R->got[src] == R->expected[src])
            ranks_owing--;
    }
    if (R->is_local) px__drop_rest_local(R, bytes_up);
    if (silent && f_wait == 0) return px__silent_error(R);
    /* a sharded server goes on with the gradients every shard took */
    if (s->slice) PX_CHECK(px_server_agree_inputs(s, bytes_up, bytes_down, stop));
    if (f_wait) {
        int changed;
        PX_CHECK(px_server_track_liveness(s, px_now_ms(), cl->timeout_ms, &changed));
    }
    return PX_OK;
}

static px_status px__write_line(px__run *R, uint32_t done, float lr, px__interval *iv,
                                int evaluated, double test_loss, double test_acc)
{
    const px_config *cfg = R->cfg;
    px_json j;
    px_json_begin(&j);
    if (R->federated) { /* a step is a round */
        px_json_int(&j, "round", done);
        px_json_int(&j, "clients", (long long)iv->received_last);
    } else {
        px_json_int(&j, "step", done);
        double samples = (double)done * cfg->cluster->workers * cfg->data->batch_size;
        px_json_num(&j, "epoch", samples / (double)R->server.data->train.count);
    }
    px_json_num(&j, "lr", lr);
    px_json_num(&j, "train_loss", iv->loss_n ? iv->loss_sum / iv->loss_n : NAN);
    if (evaluated) {
        px_json_num(&j, "test_loss", test_loss);
        px_json_num(&j, "test_acc", test_acc);
        if (R->data.input == PX_INPUT_TOKENS) { /* text: the held-out characters */
            px_json_num(&j, "val_loss", test_loss);
            px_json_num(&j, "bits_per_char", test_loss / M_LN2);
        }
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
    /* the adaptive attacks' factor of the last step (tau or gamma), for reading a run */
    if (R->server.byz_on && isfinite(R->server.byz.last.factor))
        px_json_num(&j, "attack_factor", R->server.byz.last.factor);
    px_json_int(&j, "workers_alive", (long long)R->server.n_alive);
    px_json_num(&j, "compression_ratio", R->compression_ratio);
    size_t groups = 0;
    for (size_t g = 0; g < R->server.model->n_groups; g++)
        groups += R->server.active_mask[g];
    px_json_int(&j, "active_layers", (long long)groups);
    px_json_int(&j, "active_values", (long long)R->server.n_active_all);
    if (R->server.lisa.on) { /* which groups: the names, in order */
        char names[1024] = "";
        for (size_t g = 0; g < R->server.model->n_groups; g++) {
            if (!R->server.active_mask[g]) continue;
            if (names[0]) strncat(names, ",", sizeof names - strlen(names) - 1);
            strncat(names, R->server.model->groups[g].name, sizeof names - strlen(names) - 1);
        }
        px_json_str(&j, "active", names);
    }
    px_json_num(&j, "trained_fraction",
                (double)R->server.n_active_all / (double)R->server.d_all);
    px_json_int(&j, "optimizer_state_bytes",
                (long long)R->server.opt->ops->state_bytes(R->server.opt));
    px_json_end(&j);
    return px_metrics_write(&R->metrics, &j); /* a lost metrics line stops the run */
}

/* One process: the local workers take the parameter message as a worker rank would. */
static px_status px__local_workers(px__run *R, uint32_t step)
{
    const unsigned char *in;
    size_t in_len;
    const float *params;
    uint32_t in_step;
    int stop;
    PX_CHECK(R->t->recv_from_server(R->t, &in, &in_len, 0));
    PX_CHECK(px_worker_group_take(&R->group, in, in_len, &params, &in_step, &stop));
    return px_worker_group_step(&R->group, params, step, &R->t);
}

/* The figures of one step, for the interval and the totals. */
typedef struct {
    double t0, step_ms, comm_ms, compute_ms, bytes_up, bytes_down;
    int stop; /* a preemption signal (on any shard of a sharded server) */
    px_step_result res;
} px__step_figures;

/* Stages parameters-out and collect of one step, then attack + aggregate + update. */
static px_status px__server_step(px__run *R, uint32_t step, float lr, px__step_figures *fig)
{
    px_server *s = &R->server;
    px_transport *t = R->t;
    double t0 = fig->t0 = px_now_ms();
    const unsigned char *pmsg, *full;
    size_t plen, full_len;
    PX_CHECK(px_server_begin_step(s, step, &pmsg, &plen, &full, &full_len));
    /* the ranks that get the full message: marked before the send, cleared by it */
    int skipped = 0, n_full = 0, ranks = t->world > 1 ? t->world : 1;
    for (int r = 0; full && r < ranks; r++)
        n_full += s->needs_full[r];
    PX_CHECK(t->send_params(t, pmsg, plen, full, full_len, s->needs_full, &skipped));
    for (int r = 0; full && r < ranks; r++)
        n_full -= s->needs_full[r];
    R->full_sent += (uint64_t)n_full;
    fig->compute_ms = 0;
    if (R->is_local) {
        double c0 = px_now_ms();
        PX_CHECK(px__local_workers(R, step));
        fig->compute_ms = px_now_ms() - c0;
    }
    /* bytes as they would travel: one message per worker rank (per worker, alone) */
    int n_worker_ranks = R->is_local ? (int)R->cfg->cluster->workers : t->world - 1;
    fig->bytes_down = (double)plen * (n_worker_ranks - skipped - n_full) + (double)n_full * full_len;
    fig->bytes_up = 0;
    fig->stop = px__preempt_signal != 0;
    PX_CHECK(px__collect(R, &fig->bytes_up, &fig->bytes_down, &fig->stop));
    fig->comm_ms = px_now_ms() - t0 - fig->compute_ms;
    return px_server_finish_step(s, lr, &fig->res);
}

static void px__account(px__run *R, const px__step_figures *fig, px__interval *iv)
{
    const px_server *s = &R->server;
    R->bytes_totals[0] += (uint64_t)fig->bytes_up;
    R->bytes_totals[1] += (uint64_t)fig->bytes_down;
    R->trained_values += (double)s->n_active_all;
    iv->steps++;
    iv->step_ms += fig->step_ms;
    iv->agg_ms += fig->res.agg_ms;
    iv->comm_ms += fig->comm_ms;
    iv->compute_ms += fig->compute_ms;
    iv->bytes_up += fig->bytes_up;
    iv->bytes_down += fig->bytes_down;
    iv->nonfinite += s->drops[PX_DROP_NONFINITE] - R->nonfinite_seen;
    R->nonfinite_seen = s->drops[PX_DROP_NONFINITE];
    iv->received_last = fig->res.received;
    iv->injected_last = fig->res.injected;
    iv->late += s->drops[PX_DROP_STEP] - R->late_seen;
    R->late_seen = s->drops[PX_DROP_STEP];
    if (isfinite(fig->res.train_loss)) {
        iv->loss_sum += fig->res.train_loss;
        iv->loss_n++;
    }
    uint64_t drops = px__drops_total(s);
    iv->dropped += drops - R->drops_seen;
    R->drops_seen = drops;
}

/* logging.save_state_step: the server's state (and the local workers', alone) after `done`. */
static px_status px__save_state(px__run *R, uint32_t done)
{
    char dir[4096];
    px__state_dir(R->cfg, done, dir, sizeof dir);
    PX_CHECK(px_state_mkdir(dir));
    PX_CHECK(px_server_save(&R->server, done, R->bytes_totals, dir));
    if (R->is_local) PX_CHECK(px_worker_group_save(&R->group, dir));
    px_log(PX_LOG_INFO, "step %u: run state saved to %s", done, dir);
    return PX_OK;
}

/* Preemption: SIGTERM and SIGUSR1 set this (px_run installs the handlers); the server checks it
 * at every step boundary. */
volatile sig_atomic_t px__preempt_signal;

/* The server's part of a checkpoint after `done` steps: its state and the config into the
 * .tmp directory, and (one process) the workers' state too. */
static px_status px__checkpoint_begin(px__run *R, uint32_t done)
{
    char dir[4200];
    px_checkpoint_path(R->cfg, done, 1, dir, sizeof dir);
    PX_CHECK(px_state_mkdir(dir));
    PX_CHECK(px_server_save(&R->server, done, R->bytes_totals, dir));
    PX_CHECK(px_checkpoint_write_config(R->cfg, dir));
    if (R->is_local) PX_CHECK(px_worker_group_save(&R->group, dir));
    return PX_OK;
}

/* ... and its end, once the worker ranks have written theirs: a checkpoint that cannot be
 * completed is abandoned (the previous ones stay) and the run goes on. */
static void px__checkpoint_end(px__run *R, uint32_t done)
{
    double deadline = px_now_ms() + R->cfg->cluster->timeout_ms;
    px_status st = px_checkpoint_commit(R->cfg, done, R->server.n,
                                        R->is_local ? NULL : R->server.alive, deadline);
    if (st < 0)
        px_log(PX_LOG_WARN, "%s", px_errmsg());
    else
        px_log(PX_LOG_INFO, "step %u: checkpoint written", done);
}

/* The end of the loop: every worker rank is told to stop (and, when preempted, to save its
 * state first). A rank that stopped listening cannot spoil the finished training, but the job
 * cannot end normally with it either (trainer.c). */
static void px__stop_workers(px__run *R, px_run_summary *sum, uint32_t steps, int save)
{
    px_server *s = &R->server;
    px_msg_header stop = {.kind = PX_MSG_STOP,
                          .step = steps,
                          .worker = PX_WIRE_SERVER,
                          .elem_count = save ? 1 : 0,
                          .loss = NAN};
    px_wire_seal(s->params_msg, &stop, 0);
    px_status st = R->t->send_stop(R->t, s->params_msg, PX_WIRE_HEADER_BYTES, px_wire_is_bye,
                                   px_now_ms() + 2.0 * R->cfg->cluster->timeout_ms);
    if (st < 0) {
        px_log(PX_LOG_WARN, "%s", px_errmsg());
        sum->unreachable_ranks = 1;
    }
}

px_status px__server_loop(px__run *R, px_run_summary *sum)
{
    const px_config *cfg = R->cfg;
    px_server *s = &R->server;
    uint32_t steps = cfg->schedule->steps, save_at = cfg->logging->save_state_step;
    uint32_t eval_every = cfg->schedule->eval_every, log_every = cfg->schedule->log_every;
    px__interval iv;
    memset(&iv, 0, sizeof iv);
    double test_loss = NAN, test_acc = NAN, last_train_loss = NAN;
    double loop_start = px_now_ms();
    R->drops_seen = px__drops_total(s);
    R->late_seen = s->drops[PX_DROP_STEP];
    R->nonfinite_seen = s->drops[PX_DROP_NONFINITE];

    uint32_t step = R->first_step;
    int preempted = 0;
    for (; step < steps && !preempted; step++) {
        float lr = px_lr_at(&s->schedule, step);
        px__step_figures fig;
        PX_CHECK(px__server_step(R, step, lr, &fig));
        uint32_t done = step + 1;
        int evaluate = (eval_every && done % eval_every == 0) || done == steps;
        if (evaluate) PX_CHECK(px_server_gather_params(s)); /* sharded: to shard 0 */
        if (evaluate && R->rank == 0) px_server_evaluate(s, &test_loss, &test_acc);
        fig.step_ms = px_now_ms() - fig.t0; /* an evaluation counts in its step's time */
        px__account(R, &fig, &iv);
        if (R->rank != 0) { /* a shard other than 0: no metrics, no outputs */
            memset(&iv, 0, sizeof iv);
        } else if (done % log_every == 0 || evaluate || done == steps) {
            if (iv.loss_n) last_train_loss = iv.loss_sum / iv.loss_n;
            PX_CHECK(px__write_line(R, done, lr, &iv, evaluate, test_loss, test_acc));
            px_progress_update(&R->metrics, done, last_train_loss,
                               isfinite(test_acc) ? test_acc : -1, iv.step_ms / iv.steps, evaluate);
            memset(&iv, 0, sizeof iv);
        }
        if (done == save_at) PX_CHECK(px__save_state(R, done));
        preempted = (R->shards > 1 ? fig.stop : px__preempt_signal != 0) && done < steps;
        if (preempted && R->shards > 1) {
            /* every shard learnt it in the same step; none can save its state yet */
            px__stop_workers(R, sum, done, 0);
            return px_error(PX_ERUNTIME,
                            "preempted after step %u: a sharded server cannot checkpoint yet "
                            "(cluster.server_shards = %zu); stopped without a checkpoint",
                            done, R->shards);
        }
        if (px_checkpoint_due(cfg, done) && !preempted) {
            PX_CHECK(px__checkpoint_begin(R, done));
            px__checkpoint_end(R, done);
        }
    }
    px_progress_finish(&R->metrics);
    if (preempted) {
        /* the workers save their state on the stop message, before their BYE: then the
         * checkpoint is whole */
        px_log(PX_LOG_WARN, "preempted by signal %d after step %u: checkpointing and stopping",
               (int)px__preempt_signal, step);
        PX_CHECK(px__checkpoint_begin(R, step));
        px__stop_workers(R, sum, step, 1);
        px__checkpoint_end(R, step);
        sum->preempted = 1;
    } else {
        px__stop_workers(R, sum, steps, 0);
    }

    sum->steps = step;
    sum->train_s = (px_now_ms() - loop_start) / 1000.0;
    sum->test_acc = test_acc;
    sum->test_loss = test_loss;
    sum->train_loss = last_train_loss;
    sum->dropped = px__drops_total(s);
    return PX_OK;
}

/* A worker rank answers STOP after its last gradient (messages from one rank arrive in order),
 * so that the server takes everything still on its way before it ends. */
static px_status px__say_bye(px__run *R, uint32_t step, double wait_ms)
{
    /* static: its send may still be pending when sends_done gives up, until t->destroy */
    static unsigned char bye[PX_WIRE_HEADER_BYTES];
    px_msg_header b = {.kind = PX_MSG_BYE, .step = step, .worker = PX_WIRE_SERVER, .loss = NAN};
    px_wire_seal(bye, &b, 0);
    PX_CHECK(R->t->send(R->t, bye, sizeof bye, 0));
    return R->t->sends_done(R->t, px_now_ms() + wait_ms);
}

/* A worker rank's part of the checkpoint after `done` steps: its workers' state. */
static px_status px__worker_checkpoint(px__run *R, uint32_t done)
{
    char dir[4200];
    px_checkpoint_path(R->cfg, done, 1, dir, sizeof dir);
    PX_CHECK(px_state_mkdir(dir));
    return px_worker_group_save(&R->group, dir);
}

/* Sharded server: shard k's next message, applied to the replica's slice; *got = 0 when a poll
 * (deadline 0) finds none. */
static px_status px__take_part(px__run *R, size_t k, double deadline_ms, uint32_t *step,
                               int *stop, int *got)
{
    const unsigned char *msg;
    size_t len;
    *got = 0;
    px_status st = R->ts[k]->recv_from_server(R->ts[k], &msg, &len, deadline_ms);
    if (st == PX_ETIMEOUT && deadline_ms == 0) return PX_OK;
    PX_CHECK(st);
    *got = 1;
    return px_worker_group_take_part(&R->group, k, msg, len, step, stop);
}

/* A worker rank of a sharded server: every shard sends its slice of the step's parameters; the
 * rank computes once it holds every slice of one step (a shard that skipped the rank, because
 * it was late, sends the whole slice of a later step: the rank then waits for the others'
 * slices of that one), and sends each shard its slice of every update. At the end every shard
 * gets a BYE. */
static px_status px__worker_loop_sharded(px__run *R)
{
    px_worker_group *g = &R->group;
    size_t S = R->shards;
    double wait_ms = 2.0 * R->cfg->cluster->timeout_ms;
    uint32_t at[PX_MAX_SERVER_SHARDS], step;
    int stopped[PX_MAX_SERVER_SHARDS], stop, got;
    for (;;) {
        double deadline = px_now_ms() + wait_ms;
        int any_stop = 0;
        for (size_t k = 0; k < S; k++) { /* each shard's next, and all it queued, in order */
            PX_CHECK(px__take_part(R, k, deadline, &at[k], &stopped[k], &got));
            while (!stopped[k]) {
                PX_CHECK(px__take_part(R, k, 0, &step, &stop, &got));
                if (!got) break;
                at[k] = step;
                stopped[k] = stop;
            }
            any_stop |= stopped[k];
        }
        for (int behind = 1; behind && !any_stop;) { /* until every slice is of one step */
            uint32_t target = 0;
            for (size_t k = 0; k < S; k++)
                target = at[k] > target ? at[k] : target;
            behind = 0;
            for (size_t k = 0; k < S && !any_stop; k++) {
                if (at[k] == target) continue;
                behind = 1;
                PX_CHECK(px__take_part(R, k, deadline, &at[k], &stopped[k], &got));
                any_stop |= stopped[k];
            }
        }
        if (any_stop) {
            /* the others' stop messages (what comes before them is taken, then dropped) */
            for (size_t k = 0; k < S; k++)
                while (!stopped[k])
                    PX_CHECK(px__take_part(R, k, deadline, &at[k], &stopped[k], &got));
            static unsigned char bye[PX_WIRE_HEADER_BYTES]; /* read by sends until destroy */
            px_msg_header b = {
                .kind = PX_MSG_BYE, .step = at[0], .worker = PX_WIRE_SERVER, .loss = NAN};
            px_wire_seal(bye, &b, 0);
            for (size_t k = 0; k < S; k++)
                PX_CHECK(R->ts[k]->send(R->ts[k], bye, sizeof bye, 0));
            for (size_t k = 0; k < S; k++)
                PX_CHECK(R->ts[k]->sends_done(R->ts[k], px_now_ms() + wait_ms));
            return PX_OK;
        }
        for (size_t k = 0; k < S; k++)
            PX_CHECK(R->ts[k]->sends_done(R->ts[k], px_now_ms() + wait_ms));
        PX_CHECK(px_worker_group_step(g, g->replica, at[0], R->ts));
    }
}

px_status px__worker_loop(px__run *R)
{
    if (R->shards > 1) return px__worker_loop_sharded(R);
    px_transport *t = R->t;
    px_worker_group *g = &R->group;
    uint32_t save_at = R->cfg->logging->save_state_step;
    /* a worker waits twice as long for the server as the server waits for a worker: when a
     * worker goes silent the server, which can name it, reports first */
    double wait_ms = 2.0 * R->cfg->cluster->timeout_ms;
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
            if (g->stop_save) PX_CHECK(px__worker_checkpoint(R, step));
            return px__say_bye(R, step, wait_ms);
        }
        PX_CHECK(t->sends_done(t, px_now_ms() + wait_ms));
        PX_CHECK(px_worker_group_step(g, params, step, &R->t));
        if (px_checkpoint_due(R->cfg, step + 1)) PX_CHECK(px__worker_checkpoint(R, step + 1));
        if (save_at && step + 1 == save_at) {
            char dir[4096];
            px__state_dir(R->cfg, save_at, dir, sizeof dir);
            PX_CHECK(px_state_mkdir(dir));
            PX_CHECK(px_worker_group_save(g, dir));
        }
    }
}
