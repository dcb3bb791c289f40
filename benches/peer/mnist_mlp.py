"""PyTorch replica of sortednet-rs's default experiment (configs/mnist-mlp.toml), for
`cargo xtask bench --peer` (issue 29, item 1a).

What it replicates, read from the repository:
- data: the embedded MNIST subset (crates/sorted-data/data/mnist-subset, 10,000 train / 2,000
  test images), pixels normalised to (x / 255 - 0.1307) / 0.3081 (crates/sorted-data/src/batcher.rs);
  each epoch a fresh shuffle cut into batches of `data.batch_size`, the incomplete last batch
  dropped (crates/sorted-data/src/epoch_order.rs);
- model: the sorted MLP of crates/sorted-zoo/src/vision/mlp.rs: allocated 784 -> 256 x 4 -> 10,
  weights stored [d_in, d_out] like burn's Linear; a sub-model uses the first `w` units of each
  of its first `depth` blocks (ReLU after each) and the head reads the active prefix of its
  input; weights and biases drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (burn's
  KaimingUniform with gain 1/sqrt(3), crates/sorted-nn/src/linear.rs);
- sampler: `[sampler.uniform] k, over = "axes"`: a uniform depth, then a uniform width per
  active block (crates/sorted-sched/src/sampler.rs); `include_full` puts the full model first;
- step: one backward pass per sub-model of loss_i / k (cross-entropy), gradients summed, then one
  Adam step (beta1 0.9, beta2 0.999, eps 1e-8: crates/sorted-sched/src/optimizer.rs) at the
  learning rate of crates/sorted-sched/src/schedule.rs (linear warm-up (step + 1) / warmup_steps,
  then half-cosine to base * final_ratio).

Differences from ours (they change no amount of work, so the timing compares like with like):
- random streams: ours draws sub-models and epoch orders from ChaCha8 streams; this replica uses
  torch.Generator seeded from the config's seed, so the draws, batches and initial weights differ
  (the same distributions). Losses agree in distribution, not step by step.
- no checkpoint is written (ours writes `train.checkpoint_every` checkpoints and a final one: a
  few 1.4 MB files, milliseconds each), and no sub-model is evaluated after training (ours
  evaluates all 340 at the end of `train`); `--eval` reports two, untimed.

Prints one JSON object: steps, the training wall time (seconds, data already decoded, as ours
reports its training), the mean loss of the last 100 steps, threads, torch version; with --eval,
the test accuracy of the full model and of the smallest sub-model (not timed).

Usage: python benches/peer/mnist_mlp.py [--config configs/mnist-mlp.toml] [--steps N]
       [--threads N] [--eval]
"""

import argparse
import gzip
import json
import math
import os
import struct
import time
import tomllib

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUBSET = os.path.join(ROOT, "crates", "sorted-data", "data", "mnist-subset")
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def read_idx(name):
    """Reads one gzip IDX file of the embedded subset as a uint8 tensor."""
    with gzip.open(os.path.join(SUBSET, name + ".gz"), "rb") as f:
        data = f.read()
    n_dims = data[3]
    dims = struct.unpack(">" + "I" * n_dims, data[4 : 4 + 4 * n_dims])
    return torch.frombuffer(bytearray(data[4 + 4 * n_dims :]), dtype=torch.uint8).reshape(dims)


def load_split(images, labels):
    x = read_idx(images).reshape(-1, 28 * 28).float()
    return (x / 255.0 - MNIST_MEAN) / MNIST_STD, read_idx(labels).long()


class SortedMlp(torch.nn.Module):
    """784 -> hidden blocks -> 10 with weights [d_in, d_out]; forward slices prefixes."""

    def __init__(self, d_input, hidden, n_classes, generator):
        super().__init__()
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        # The head is allocated for the widest block (mlp.rs: d_head = max(hidden)).
        d_in = d_input
        for d_out in list(hidden) + [n_classes]:
            bound = 1.0 / math.sqrt(d_in)
            w = (torch.rand(d_in, d_out, generator=generator) * 2 - 1) * bound
            b = (torch.rand(d_out, generator=generator) * 2 - 1) * bound
            self.weights.append(torch.nn.Parameter(w))
            self.biases.append(torch.nn.Parameter(b))
            d_in = d_out
        self.n_classes = n_classes

    def forward(self, x, widths):
        for w, W, b in zip(widths, self.weights, self.biases):
            x = F.relu(x @ W[: x.shape[1], :w] + b[:w])
        return x @ self.weights[-1][: x.shape[1], :] + self.biases[-1]


def lr_at(lr, step, total):
    if step < lr["warmup_steps"]:
        return lr["base"] * (step + 1) / lr["warmup_steps"]
    span = max(total - lr["warmup_steps"], 1)
    t = min((step - lr["warmup_steps"]) / span, 1.0)
    end = lr["base"] * lr["final_ratio"]
    if lr.get("decay", "cosine") == "cosine":
        return end + (lr["base"] - end) * 0.5 * (1.0 + math.cos(math.pi * t))
    return lr["base"] + (end - lr["base"]) * t


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.path.join(ROOT, "configs", "mnist-mlp.toml"))
    parser.add_argument("--steps", type=int, help="override train.steps")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--eval", action="store_true", help="also report test accuracies")
    args = parser.parse_args()
    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    for section, expected in (("data", "embedded"),):
        if cfg[section].get("source") != expected:
            raise SystemExit(f"only data.source = \"{expected}\" is replicated")
    if "mlp" not in cfg["model"] or "uniform" not in cfg["sampler"] or "adam" not in cfg["optimizer"]:
        raise SystemExit("only [model.mlp], [sampler.uniform] and [optimizer.adam] are replicated")
    sampler = cfg["sampler"]["uniform"]
    if sampler.get("over", "sub_models") != "axes" or cfg["space"].get("tie_widths", False):
        raise SystemExit('only sampler.uniform.over = "axes" with untied widths is replicated')
    if args.threads:
        torch.set_num_threads(args.threads)
    seed = cfg["seed"]
    depths, widths = cfg["space"]["depths"], cfg["space"]["widths"]
    batch = cfg["data"]["batch_size"]
    steps = args.steps or cfg["train"]["steps"]
    k, include_full = sampler["k"], sampler.get("include_full", False)
    adam = cfg["optimizer"]["adam"]

    train_x, train_y = load_split("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    gen = torch.Generator().manual_seed(seed)
    model = SortedMlp(28 * 28, [max(widths)] * max(depths), 10, gen)
    opt = torch.optim.Adam(
        model.parameters(),
        lr=cfg["lr"]["base"],
        betas=(adam.get("beta1", 0.9), adam.get("beta2", 0.999)),
        eps=adam.get("epsilon", 1e-8),
        weight_decay=adam.get("weight_decay", 0.0) or 0.0,
    )
    per_epoch = train_x.shape[0] // batch
    order = None
    losses = []
    started = time.perf_counter()
    for step in range(steps):
        epoch, i = divmod(step, per_epoch)
        if i == 0:
            order = torch.randperm(train_x.shape[0], generator=gen)
        idx = order[i * batch : (i + 1) * batch]
        x, y = train_x[idx], train_y[idx]
        subs = [[max(widths)] * max(depths)] if include_full else []
        while len(subs) < k:
            depth = depths[int(torch.randint(len(depths), (1,), generator=gen))]
            subs.append([widths[int(torch.randint(len(widths), (1,), generator=gen))] for _ in range(depth)])
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg["lr"], step, steps)
        opt.zero_grad(set_to_none=True)
        step_loss = 0.0
        for sub in subs:
            loss = F.cross_entropy(model(x, sub), y) / len(subs)
            loss.backward()
            step_loss += loss.item()
        opt.step()
        losses.append(step_loss)
    seconds = time.perf_counter() - started
    out = {
        "steps": steps,
        "train_seconds": seconds,
        "final_loss": sum(losses[-100:]) / len(losses[-100:]),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if args.eval:
        test_x, test_y = load_split("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
        with torch.no_grad():
            for name, sub in (("full", [max(widths)] * max(depths)), ("smallest", [min(widths)] * min(depths))):
                out[f"accuracy_{name}"] = (model(test_x, sub).argmax(1) == test_y).float().mean().item()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
