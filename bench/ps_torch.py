"""ps_torch.py - the PyTorch peer of bench/ps: a parameter server written with torch.distributed
(gloo) the way Phalanx's MPI mode works. 8 processes on this machine: rank 0 is the server,
ranks 1..7 are the workers, one thread each (torch.set_num_threads(1)).

Each step the server sends the flat parameter vector to every worker (point-to-point isend, as
Phalanx's server does), each worker loads it, draws its own minibatch of 32 Fashion-MNIST
training images (normalised with Phalanx's mean 0.2860 and std 0.3530), computes the gradient
of the 784-256-256-10 ReLU MLP's cross-entropy and sends the flat gradient back with its loss
(Phalanx's message header carries the loss too); the server averages the 7 gradients and
applies torch.optim.SGD(lr=0.05, momentum=0.9).

The first WARMUP steps are not timed; the test-set evaluation after the last step is not timed
either (bench/ps leaves Phalanx's final evaluation out in the same way).

    /usr/bin/python3 bench/ps_torch.py [--steps 1000] [--warmup 10] [--workers 7] [--batch 32]
                                       [--blocking]
    -> samples_per_s=X step_ms=Y timed_steps=N train_loss=L test_acc=A
"""
import argparse
import gzip
import os
import socket
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

DATA = "/usr/share/datasets/fashion-mnist/"
MEAN, STD = 0.2860, 0.3530


def load(kind):
    with gzip.open(DATA + f"{kind}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(DATA + f"{kind}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return torch.from_numpy(x.copy()), torch.from_numpy(y)


def make_model():
    torch.manual_seed(1)  # the same initial parameters on every rank (the server's are sent anyway)
    return torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 10))


def flat_params(model):
    return torch.nn.utils.parameters_to_vector(model.parameters())


def server(args, model, n_params):
    world = args.workers + 1
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    params = torch.empty(n_params)
    # one receive buffer per worker: the gradient plus its loss in the last element
    grads = torch.empty(args.workers, n_params + 1)
    t0 = None
    loss = float("nan")
    for step in range(args.steps):
        if step == args.warmup:
            t0 = time.perf_counter()
        with torch.no_grad():
            params.copy_(flat_params(model))
        if args.blocking:  # one worker after the other, each call waits
            for r in range(1, world):
                dist.send(params, dst=r)
            for r in range(1, world):
                dist.recv(grads[r - 1], src=r)
        else:  # every send and receive posted at once, as Phalanx's server does
            sends = [dist.isend(params, dst=r) for r in range(1, world)]
            recvs = [dist.irecv(grads[r - 1], src=r) for r in range(1, world)]
            for q in sends + recvs:
                q.wait()
        mean = grads.mean(dim=0)
        loss = float(mean[-1])
        offset = 0
        for p in model.parameters():
            n = p.numel()
            p.grad = mean[offset:offset + n].view_as(p)
            offset += n
        opt.step()
    dt = time.perf_counter() - t0
    stop = torch.full((n_params,), float("nan"))  # a NaN first element tells workers to stop
    for r in range(1, world):
        dist.send(stop, dst=r)
    timed = args.steps - args.warmup
    # outside the timed loop: test accuracy, to show both trainers learn the same way
    x, y = load("t10k")
    with torch.no_grad():
        acc = (model((x.float() / 255.0 - MEAN) / STD).argmax(1) == y).float().mean().item()
    print(f"samples_per_s={timed * args.workers * args.batch / dt:.1f} "
          f"step_ms={1000 * dt / timed:.4f} timed_steps={timed} train_loss={loss:.4f} "
          f"test_acc={acc:.4f}", flush=True)


def worker(args, rank, model, n_params):
    images, labels = load("train")
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(1000 + rank)  # each worker its own minibatch stream
    params = torch.empty(n_params)
    out = torch.empty(n_params + 1)
    while True:
        dist.recv(params, src=0)
        if torch.isnan(params[0]):
            return
        torch.nn.utils.vector_to_parameters(params, model.parameters())
        idx = torch.randint(0, images.shape[0], (args.batch,), generator=gen)
        x = (images[idx].float() / 255.0 - MEAN) / STD
        for p in model.parameters():
            p.grad = None
        loss = loss_fn(model(x), labels[idx])
        loss.backward()
        torch.cat([p.grad.view(-1) for p in model.parameters()], out=out[:n_params])
        out[n_params] = loss.detach()
        dist.send(out, dst=0)


def run(rank, args, port):
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=args.workers + 1)
    model = make_model()
    n_params = sum(p.numel() for p in model.parameters())
    if rank == 0:
        server(args, model, n_params)
    else:
        worker(args, rank, model, n_params)
    dist.barrier()
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--workers", type=int, default=7)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--blocking", action="store_true",
                    help="server: blocking send to each worker in turn, then blocking receives "
                         "in rank order (default: all sends and receives posted at once)")
    args = ap.parse_args()
    if not 0 <= args.warmup < args.steps:
        ap.error("--warmup must be below --steps")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(run, args=(args, port), nprocs=args.workers + 1, join=True)


if __name__ == "__main__":
    main()
