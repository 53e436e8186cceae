"""The 32-trial digits reference grid (sweeps/digits_full.toml) in PyTorch, for
benches/compare_pytorch.sh: an MLP 64-128-10, Adam, 30 epochs, every combination of
4 learning rates x 2 batch sizes x 4 activations, one thread per worker process.

Usage: python benches/pytorch_sweep.py [--workers 2]
Prints the wall time and the best validation loss and accuracy.
"""

import argparse
import multiprocessing as mp
import time

import numpy as np


def load():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(7)
    order = rng.permutation(len(x))
    n_valid = int(round(0.2 * len(x)))
    valid, train = order[:n_valid], order[n_valid:]
    mean, std = x[train].mean(0), x[train].std(0)
    std[std == 0] = 1.0
    x = ((x - mean) / std).astype(np.float32)
    return x[train], y[train], x[valid], y[valid]


def trial(args):
    import torch

    torch.set_num_threads(1)
    lr, batch, act, seed = args
    xt, yt, xv, yv = DATA
    xt, yt = torch.from_numpy(xt), torch.from_numpy(yt).long()
    xv, yv = torch.from_numpy(xv), torch.from_numpy(yv).long()
    torch.manual_seed(seed)
    acts = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh,
            "sigmoid": torch.nn.Sigmoid, "gelu": torch.nn.GELU}
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), acts[act](), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(seed)
    best_loss, best_acc = float("inf"), 0.0
    for _ in range(30):
        model.train()
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            out = model(xv)
            best_loss = min(best_loss, loss_fn(out, yv).item())
            best_acc = max(best_acc, (out.argmax(1) == yv).float().mean().item())
    return best_loss, best_acc


DATA = None


def init(data):
    global DATA
    DATA = data


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    grid = [(lr, b, act, 7) for lr in (1e-3, 3e-3, 1e-2, 3e-2) for b in (32, 128)
            for act in ("relu", "tanh", "sigmoid", "gelu")]
    data = load()
    started = time.perf_counter()
    with mp.get_context("fork").Pool(a.workers, initializer=init, initargs=(data,)) as pool:
        results = pool.map(trial, grid, chunksize=1)
    wall = time.perf_counter() - started
    print(f"pytorch: {len(grid)} trials x 30 epochs with {a.workers} worker processes: {wall:.2f} s; "
          f"best val_loss {min(r[0] for r in results):.4f}, best val_accuracy {max(r[1] for r in results):.4f}")


if __name__ == "__main__":
    main()
