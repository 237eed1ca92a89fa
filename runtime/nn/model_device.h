/* model_device.h - a model whose training pass runs on a device: the engine's seam between the
 * CPU models and a GPU.
 *
 * px_model_on_device wraps a model (which it then owns) into one with the same shape and the
 * same interface (model.h), whose loss_grad runs the kind's executor pass (xloss_grad) on a
 * device: per call it copies the parameters and the batch to the device, runs the forward and
 * backward pass there, and copies the gradient back. Everything else (init, evaluate, generate)
 * is the wrapped model's, on the CPU. The worker, the server and the transports see a model as
 * before: this is how cluster.device = CUDA puts the workers' compute on the GPU.
 *
 * Each work area has its own executor (a stream and a cuBLAS handle on a GPU), so the threads of
 * a process each queue their own work; device memory for the parameters, the gradient, the batch
 * and the activations is allocated once, with the work area. A pass that fails on the device (a
 * CUDA error: sticky, the context is then lost) returns a NaN loss and keeps its cause for
 * work_failed, which the worker checks after every step: the run stops with that message.
 *
 * On the CPU backend (kind PX_DEVICE_CPU) the same staging and the same executor pass run over
 * host memory: the CPU tests check the wrapper there (bit for bit against the plain model for
 * the models whose CPU pass is the executor pass).
 */
#ifndef PX_NN_MODEL_DEVICE_H
#define PX_NN_MODEL_DEVICE_H

#include "base/device.h"
#include "runtime/nn/model.h"

/* Wraps *base into *out on device `ordinal` of `kind`. Refuses a model kind without an executor
 * pass, a build without the backend and a machine without the device (PX_ENOTSUP, with the
 * runtime's reason); on failure *base is left to the caller, on success *out owns it. */
px_status px_model_on_device(px_model **out, px_model *base, px_device_kind kind, int ordinal);

/* The device a wrapped model runs on (NULL for a plain model). */
px_device *px_model_device(const px_model *m);

#endif
