"""aggregate_torch.py - the PyTorch side of bench/aggregate (Debian's python3-torch, run with
/usr/bin/python3): torch.mean, torch.median(dim=0), a sort-based trimmed mean, and the reference
Flag Aggregator algorithm (normalise, random orthonormal start, IRLS with an SVD of the d x n
matrix, project; ALGORITHMS.md section 1) on the same shapes as bench_aggregate.

Prints one tab-separated line per measurement: n  d  op  best_ms  median_ms
Usage: aggregate_torch.py [--n 7,15,31] [--d 100000,1000000,10000000] [--reps R] [--threads T]
"""
import argparse
import statistics
import time

import torch


def flag_reference(G, m, iters=4, eps=1e-7, tol=1e-10, seed=1):
    """The reference algorithm in d x n space, as the FA reference code runs it."""
    n, d = G.shape
    X = (G / G.norm(dim=1, keepdim=True).clamp_min(1e-12)).T  # d x n
    gen = torch.Generator().manual_seed(seed)
    Y = torch.linalg.qr(torch.randn(d, m, generator=gen)).Q

    def energy(Y):
        r = ((Y.T @ X) ** 2).sum(0)
        return torch.sqrt(torch.clamp(1 - r, min=0)).sum().item()

    E = energy(Y)
    for _ in range(iters):
        r = ((Y.T @ X) ** 2).sum(0)
        a = (torch.abs(1 - r) + eps) ** -0.25
        U, _, _ = torch.linalg.svd(X * a, full_matrices=False)
        Yn = U[:, :m]
        En = energy(Yn)
        if not E - En > tol:
            break
        Y, E = Yn, En
    return Y @ (Y.T @ X.sum(1)) / m


def trimmed_mean(G, f):
    s = torch.sort(G, dim=0).values
    return s[f:G.shape[0] - f].mean(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", default="7,15,31")
    ap.add_argument("--d", default="100000,1000000,10000000")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ops", default="mean,median,trimmed_mean,flag")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"#torch\t{torch.__version__}\tthreads={torch.get_num_threads()}", flush=True)
    ops = args.ops.split(",")
    for n in [int(float(x)) for x in args.n.split(",")]:
        for d in [int(float(x)) for x in args.d.split(",")]:
            g = torch.Generator().manual_seed(n * 7919 + d)
            G = torch.rand(n, d, generator=g) - 0.5
            f = (n - 3) // 4
            m = (n + 1) // 2
            fns = {
                "mean": lambda: torch.mean(G, dim=0),
                "median": lambda: torch.median(G, dim=0).values,
                "trimmed_mean": lambda: trimmed_mean(G, f),
                "flag": lambda: flag_reference(G, m),
            }
            for op in ops:
                fn = fns[op]
                # the reference FA at d = 1e7 takes many seconds: fewer repetitions there
                reps = args.reps if (op != "flag" or d <= 1000000) else 1
                fn()  # warm-up
                times = []
                for _ in range(reps):
                    t0 = time.perf_counter()
                    fn()
                    times.append((time.perf_counter() - t0) * 1e3)
                print(f"{n}\t{d}\t{op}\t{min(times):.3f}\t{statistics.median(times):.3f}",
                      flush=True)
            del G


if __name__ == "__main__":
    main()
