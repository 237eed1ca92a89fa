"""gpt_step_torch.py - the PyTorch peer of bench/gpt_step: the GPT of runtime/nn/gpt.c in
PyTorch 1.13 (Debian's python3-torch), same shapes, same initialisation scheme, AdamW with the
same hyper-parameters, one training step = forward, backward, AdamW; timed over the same number
of steps after the same warm-up, on the same thread count.

The model, as runtime/nn/gpt.c (GPT-2's layout, pre-norm blocks, as llm.c's train_gpt2.py):
token + position embedding; L blocks of [ln1, qkv linear C->3C with bias, causal multi-head
attention (scores masked with -inf above the diagonal, softmax, @ v: torch 1.13 has no
scaled_dot_product_attention), proj linear C->C with bias, residual, ln2, fc C->4C with bias,
GELU(approximate='tanh'), fcproj 4C->C with bias, residual]; final layer norm; head C->V without
bias, untied from the token embedding; mean cross-entropy over every position.

    /usr/bin/python3 bench/gpt_step_torch.py THREADS BATCH STEPS [WARMUP [BLOCKS WIDTH HEADS
        CONTEXT VOCAB [FOREACH]]]
      -> batch=B steps=N params=P step_ms=S grad_ms=G opt_ms=O cpu_ms=U samples_per_s=X
         tokens_per_s=Y loss0=A loss=L
(step_ms: mean wall time of a step; cpu_ms: the process's CPU time per step, as
bench_gpt_step.c prints them.)

Default shape: examples/gpt_full.txtpb's, vocabulary 114 (the distinct bytes of Debian's
fortunes, as bench_gpt_step.c). FOREACH: 0 (default: torch 1.13's default on CPU, a loop over
the tensors) or 1 (AdamW(foreach=True), the multi-tensor path; slower here on one CPU thread). Every step draws fresh uniform tokens and targets, as
bench_gpt_step.c does (not the same numbers: a different generator; timing does not depend on
them).
"""
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def arg(i, default):
    return int(sys.argv[i]) if len(sys.argv) > i else default


threads, B, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
warmup = arg(4, 10)
L, C, NH, T, V = arg(5, 8), arg(6, 128), arg(7, 4), arg(8, 64), arg(9, 114)
foreach = bool(arg(10, 0))
torch.set_num_threads(threads)
torch.manual_seed(1)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(C)
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        self.ln2 = nn.LayerNorm(C)
        self.fc = nn.Linear(C, 4 * C)
        self.fcproj = nn.Linear(4 * C, C)
        self.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)).view(1, 1, T, T))

    def attention(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(b, t, NH, c // NH).transpose(1, 2)  # (B, NH, T, hs)
        k = k.view(b, t, NH, c // NH).transpose(1, 2)
        v = v.view(b, t, NH, c // NH).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(~self.mask[:, :, :t, :t], float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, c)
        return self.proj(y)

    def forward(self, x):
        x = x + self.attention(self.ln1(x))
        return x + self.fcproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(T, C)
        self.blocks = nn.ModuleList(Block() for _ in range(L))
        self.lnf = nn.LayerNorm(C)
        self.head = nn.Linear(C, V, bias=False)
        # GPT-2's initialisation, as runtime/nn/gpt.c: normal(0, 0.02), the two projections into
        # the stream normal(0, 0.02 / sqrt(2L)), biases 0, layer norms 1 and 0
        for name, p in self.named_parameters():
            if name.endswith(".bias"):
                nn.init.zeros_(p)
            elif "ln" in name:
                nn.init.ones_(p)
            else:
                std = 0.02 / math.sqrt(2 * L) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx, targets):
        pos = torch.arange(idx.shape[1])
        x = self.wte(idx) + self.wpe(pos)
        for blk in self.blocks:
            x = blk(x)
        logits = self.head(self.lnf(x))
        return F.cross_entropy(logits.view(-1, V), targets.view(-1))


model = GPT()
n_params = sum(p.numel() for p in model.parameters())
opt = torch.optim.AdamW(model.parameters(), lr=0.002, betas=(0.9, 0.999), eps=1e-8,
                        weight_decay=0.01, foreach=foreach)
gen = torch.Generator().manual_seed(1)
grad_s = opt_s = cpu_s = 0.0
loss0 = loss = None
for s in range(warmup + steps):
    idx = torch.randint(0, V, (B, T), generator=gen)
    tgt = torch.randint(0, V, (B, T), generator=gen)
    c0, t0 = time.process_time(), time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss_t = model(idx, tgt)
    loss_t.backward()
    t1 = time.perf_counter()
    opt.step()
    t2, c2 = time.perf_counter(), time.process_time()
    loss = loss_t.item()
    if s == 0:
        loss0 = loss
    if s >= warmup:
        grad_s += t1 - t0
        opt_s += t2 - t1
        cpu_s += c2 - c0
step_ms = 1000 * (grad_s + opt_s) / steps
print(f"batch={B} steps={steps} params={n_params} step_ms={step_ms:.4f} "
      f"grad_ms={1000 * grad_s / steps:.4f} opt_ms={1000 * opt_s / steps:.4f} "
      f"cpu_ms={1000 * cpu_s / steps:.4f} "
      f"samples_per_s={1000 * B / step_ms:.2f} tokens_per_s={1000 * B * T / step_ms:.1f} "
      f"loss0={loss0:.4f} loss={loss:.4f}")
