// optimizer_cuda.cu - the CUDA twins of the optimizers' updates (see layers_cuda.h): one thread
// per parameter running optimizer_math.h, the arithmetic of runtime/nn/optimizer.c's loops. The
// per-step scalars are computed on the host by the same function as on the CPU
// (px_om_adam_at). Elements that keep their old values are counted on the device; the host
// reads the count only when it asks (px_nn_cuda_take_refused), so a step needs no
// synchronisation.
#include "runtime/nn/cuda_internal.cuh"
#include "runtime/nn/optimizer_math.h"

__global__ static void px__k_sgd_plain(float *w, const float *g, size_t n, float lr, float wd,
                                       unsigned long long *refused)
{
    PX_NN_FOR(i, n)
    {
        float nw = px_om_sgd_plain(w[i], g[i], lr, wd);
        int ok = px_om_finite(nw);
        if (ok)
            w[i] = nw;
        else
            atomicAdd(refused, 1ull);
    }
}

__global__ static void px__k_sgd_momentum(float *w, const float *g, float *v, size_t n, float lr,
                                          float mu, float wd, int nesterov,
                                          unsigned long long *refused)
{
    PX_NN_FOR(i, n)
    {
        float gi = px_om_sgd_grad(g[i], w[i], wd);
        float nv = px_om_sgd_velocity(v[i], gi, mu);
        float nw = px_om_sgd_weight(w[i], gi, nv, lr, mu, nesterov);
        if (px_om_finite(nw) & px_om_finite(nv)) {
            v[i] = nv;
            w[i] = nw;
        } else {
            atomicAdd(refused, 1ull);
        }
    }
}

__global__ static void px__k_adamw(float *w, const float *g, float *m, float *v, size_t n,
                                   float b1, float b2, float eps, px_om_adam_scalars sc,
                                   unsigned long long *refused)
{
    PX_NN_FOR(i, n)
    {
        float nm = px_om_adam_m(m[i], g[i], b1);
        float nv = px_om_adam_v(v[i], g[i], b2);
        float nw = px_om_adamw_weight(w[i], nm, nv, sc.decay, sc.step, sc.bc2_sqrt, eps);
        if (px_om_finite(nw) & px_om_finite(nm) & px_om_finite(nv)) {
            m[i] = nm;
            v[i] = nv;
            w[i] = nw;
        } else {
            atomicAdd(refused, 1ull);
        }
    }
}

extern "C" px_status px_sgd_step_cuda(px_nn_cuda *c, float *w, const float *g, float *v, size_t n,
                                      float lr, float momentum, float weight_decay, int nesterov)
{
    if (n == 0) return PX_OK;
    if (v)
        px__k_sgd_momentum<<<px_nn_blocks(n), PX_NN_THREADS, 0, c->stream>>>(
            w, g, v, n, lr, momentum, weight_decay, nesterov, c->refused);
    else
        px__k_sgd_plain<<<px_nn_blocks(n), PX_NN_THREADS, 0, c->stream>>>(w, g, n, lr,
                                                                         weight_decay, c->refused);
    PX_CUDA_CHECK_LAUNCH();
    return PX_OK;
}

extern "C" px_status px_adamw_step_cuda(px_nn_cuda *c, float *w, const float *g, float *m,
                                        float *v, size_t n, float lr, float beta1, float beta2,
                                        float eps, float weight_decay, uint64_t t)
{
    if (n == 0) return PX_OK;
    px_om_adam_scalars sc = px_om_adam_at(lr, beta1, beta2, weight_decay, t);
    px__k_adamw<<<px_nn_blocks(n), PX_NN_THREADS, 0, c->stream>>>(w, g, m, v, n, beta1, beta2, eps,
                                                                  sc, c->refused);
    PX_CUDA_CHECK_LAUNCH();
    return PX_OK;
}

extern "C" px_status px_nn_cuda_take_refused(px_nn_cuda *c, size_t *refused)
{
    unsigned long long r = 0;
    PX_CUDA_CHECK(cudaMemcpyAsync(&r, c->refused, sizeof r, cudaMemcpyDeviceToHost, c->stream));
    PX_CUDA_CHECK(cudaMemsetAsync(c->refused, 0, sizeof r, c->stream));
    PX_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    *refused = (size_t)r;
    return PX_OK;
}
