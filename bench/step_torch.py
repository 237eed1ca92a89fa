"""step_torch.py - the PyTorch peer of bench/step: the same MLP (784-256-256-10, ReLU), batch,
SGD with momentum, learning rate and thread count, on the same Fashion-MNIST training images
(a random minibatch gathered and normalised every step, as the trainer's workers do).

    /usr/bin/python3 bench/step_torch.py THREADS STEPS   -> prints samples_per_s=X step_ms=Y
"""
import gzip
import sys
import time

import numpy as np
import torch

threads, steps = int(sys.argv[1]), int(sys.argv[2])
batch = 64
torch.set_num_threads(threads)
torch.manual_seed(1)
d = "/usr/share/datasets/fashion-mnist/"
with gzip.open(d + "train-images-idx3-ubyte.gz") as f:
    images = torch.from_numpy(np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).copy())
with gzip.open(d + "train-labels-idx1-ubyte.gz") as f:
    labels = torch.from_numpy(np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64))

model = torch.nn.Sequential(
    torch.nn.Linear(784, 256), torch.nn.ReLU(),
    torch.nn.Linear(256, 256), torch.nn.ReLU(),
    torch.nn.Linear(256, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
loss_fn = torch.nn.CrossEntropyLoss()
gen = torch.Generator().manual_seed(1)


def step():
    idx = torch.randint(0, images.shape[0], (batch,), generator=gen)
    x = (images[idx].float() / 255.0 - 0.2860) / 0.3530
    y = labels[idx]
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    return loss


for _ in range(50):
    step()
t0 = time.perf_counter()
for _ in range(steps):
    step()
dt = time.perf_counter() - t0
print(f"samples_per_s={steps * batch / dt:.1f} step_ms={1000 * dt / steps:.4f}")
