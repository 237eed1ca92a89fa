/* run_device.c - where a run computes (cluster.device): the checks of a device run, the GPU a
 * process takes, the workers' model on the device (runtime/nn/model_device.h), the server's
 * Gram matrix there (runtime/server_device.h), and the NCCL transport. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/device.h"
#include "comm/bulk.h"
#include "comm/transport.h"
#include "runtime/nn/model_device.h"
#include "runtime/run_internal.h"
#include "runtime/server_device.h"

/* PX_DEVICE_BACKEND=cpu: every device path of the run (the workers' passes, the server's
 * aggregation, the NCCL transport's channel) on its CPU backend, cluster.device = CUDA or not:
 * the seam on which the tests run the GPU path's code where there is no GPU. */
static int px__cpu_backend_forced(void)
{
    const char *force = getenv("PX_DEVICE_BACKEND");
    return force && !strcmp(force, "cpu");
}

/* cluster.device = CUDA: the machine must have a usable GPU (the config rules have already
 * refused it in a build without CUDA), and what the GPU path does not do yet is refused here. A
 * refusal is a config error (exit 2) with the runtime's own reason, on every rank alike. */
px_status px__check_device(const px_config *cfg)
{
    const Phalanx__Cluster *cl = cfg->cluster;
    if (cl->device != PHALANX__CLUSTER__DEVICE__CUDA) return PX_OK;
    int n = 0;
    if (!px__cpu_backend_forced() && px_device_count(PX_DEVICE_CUDA, &n) < 0)
        return px_error_context(PX_EINVAL, "config: cluster.device = CUDA, but this machine "
                                           "cannot run it (set cluster.device = CPU)");
    if (cfg->federated->enabled &&
        cfg->federated->objective == PHALANX__FEDERATED__OBJECTIVE__FEDLD &&
        cfg->federated->margin_lambda != 0.0f)
        return px_error(PX_EINVAL, "config: federated.margin_lambda = %g (FedLD's margin term) "
                                   "has no GPU kernel; set cluster.device = CPU or "
                                   "federated.margin_lambda = 0",
                        (double)cfg->federated->margin_lambda);
    return PX_OK;
}

/* The node-local rank the launcher gives this process (Open MPI's mpirun, Slurm's srun), 0 when
 * none says: it picks the GPU, as NCCL's examples do. An environment variable, not a collective:
 * this runs before the start-up agreement, where a rank that failed earlier would never join. */
static int px__node_rank(void)
{
    const char *v = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    if (!v) v = getenv("SLURM_LOCALID");
    int r = v ? atoi(v) : 0;
    return r > 0 ? r : 0;
}

/* The device this process computes on, if any: cluster.device = CUDA gives the GPU of its
 * node-local rank (modulo the GPUs); PX_DEVICE_BACKEND=cpu runs the device paths on the CPU
 * backend (tests: it must not change a bit for CNN and GPT). 0 when the run is on the CPU. */
static int px__run_device(const px__run *R, px_device_kind *kind, int *ordinal)
{
    *ordinal = 0;
    if (!px__cpu_backend_forced() && R->cfg->cluster->device == PHALANX__CLUSTER__DEVICE__CUDA) {
        int n = 0;
        if (px_device_count(PX_DEVICE_CUDA, &n) < 0 || n < 1) return 0; /* refused earlier */
        *kind = PX_DEVICE_CUDA;
        *ordinal = px__node_rank() % n;
        return 1;
    }
    *kind = PX_DEVICE_CPU;
    return px__cpu_backend_forced();
}

/* The workers' model on the run's device: each worker's forward and backward pass runs there,
 * through model_device.h; the server keeps its own model on the CPU. */
px_status px__setup_device(px__run *R)
{
    px_device_kind kind;
    int ordinal;
    if (!px__run_device(R, &kind, &ordinal)) return PX_OK;
    px_model *m;
    px_status st = px_model_on_device(&m, R->model, kind, ordinal);
    if (st < 0)
        return px_error_context(st == PX_ENOTSUP ? PX_EINVAL : st, "cluster.device = %s",
                                px_device_kind_name(kind));
    R->model = m;
    return PX_OK;
}

/* The server's aggregation on the run's device where its rule reads a Gram matrix
 * (server_device.h); elsewhere it stays on the CPU, and the announcement says why. */
px_status px__setup_server_device(px__run *R)
{
    px_device_kind kind;
    int ordinal;
    if (!px__run_device(R, &kind, &ordinal)) return PX_OK;
    px_status st = px_server_use_device(&R->server, kind, ordinal, R->pool);
    if (st == PX_ENOTSUP) {
        snprintf(R->agg_where, sizeof R->agg_where, "the CPU (%s)", px_errmsg());
        return PX_OK;
    }
    PX_CHECK(st);
    snprintf(R->agg_where, sizeof R->agg_where, "%s (%s)", px_server_device_name(&R->server),
             px_server_device_coordwise(&R->server)
                 ? "the coordinate-wise rule; a step with an input to drop on the CPU"
                 : "the Gram matrix; the n x n work on the CPU");
    return PX_OK;
}

px_status px__connect_split(px__run *R)
{
    const Phalanx__Cluster *cl = R->cfg->cluster;
    px_bulk *bulk = NULL;
    int gpu = -1;
    px_status st = px__cpu_backend_forced()
                       ? px_bulk_mpi_create(&bulk, 2 * R->world)
                       : px_bulk_nccl_create(&bulk, 2 * R->world,
                                             px_now_ms() + (double)cl->timeout_ms, &gpu);
    if (st < 0)
        return px_error_context(st == PX_ENOTSUP ? PX_EINVAL : st, "cluster.transport = NCCL");
    if (gpu >= 0)
        snprintf(R->link_where, sizeof R->link_where,
                 "; payloads GPU to GPU through NCCL (rank 0 on GPU %d), headers through MPI",
                 gpu);
    else
        snprintf(R->link_where, sizeof R->link_where,
                 "; the NCCL transport's protocol with its payloads through MPI "
                 "(PX_DEVICE_BACKEND=cpu)");
    return px_transport_split_create(&R->t, bulk, PX_WIRE_HEADER_BYTES, R->msg_max,
                                     (double)cl->timeout_ms);
}
