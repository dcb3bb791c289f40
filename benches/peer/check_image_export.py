"""Loads exported image sub-models (MLP, CNN, ResNet, MobileNetV2) in PyTorch and checks them.

The modules are the ones of docs/export-pytorch.md (same code). For every export folder given,
this script builds the PyTorch module from `manifest.json` and `model.safetensors`, loads the
weights with `load_state_dict(strict=True)`, evaluates it on the embedded MNIST test subset
(the first `data.test_limit` images, normalised with the manifest's `input_normalisation`) and
compares its accuracy with the runner's for that sub-model (`metrics.accuracy` in the manifest,
copied from the run's results.json).

With `--burn-logits`, it also writes the normalised images into each folder (`images.f32`), runs
the ignored Rust test `export_pytorch` (crates/sorted-runner/tests/export_pytorch.rs), which
loads the same folder with `sorted_runner::load_export` and writes the dense burn model's logits
(`logits.burn.f32`), and compares the logits.

    python benches/peer/check_image_export.py [--burn-logits] EXPORT_DIR...

Needs torch, safetensors and numpy. Exit status 1 if a check fails.
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

REPO = Path(__file__).resolve().parents[2]
MNIST = REPO / "crates/sorted-data/data/mnist-subset"

# ---- the modules (identical to docs/export-pytorch.md) ------------------------------------


def batch_norm(channels):
    """BatchNorm2d for inference with the exported running statistics and no step counter
    (the export has no `num_batches_tracked`, so `strict=True` loading accepts it). Use in eval."""
    norm = nn.BatchNorm2d(channels, eps=1e-5, track_running_stats=False)
    norm.running_mean, norm.running_var = torch.zeros(channels), torch.ones(channels)  # buffers
    return norm


class ConvNorm(nn.Module):
    """k x k convolution (no bias, padding k // 2) then BatchNorm; `depthwise`: one group per channel."""

    def __init__(self, c_in, c_out, k, stride=1, depthwise=False):
        super().__init__()
        groups = c_out if depthwise else 1
        self.conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, groups=groups, bias=False)
        self.norm = batch_norm(c_out)

    def forward(self, x):
        return self.norm(self.conv(x))


def add_prefix(main, shortcut):
    """main + shortcut over main's channels: a narrower shortcut is zero-padded, a wider one is
    truncated (a sub-model's block may read fewer or more channels than it writes)."""
    c_main, c_short = main.shape[1], shortcut.shape[1]
    if c_short >= c_main:
        return main + shortcut[:, :c_main]
    return main + F.pad(shortcut, (0, 0, 0, 0, 0, c_main - c_short))


class DenseMlp(nn.Module):
    """784 -> widths... (ReLU after each) -> n_classes."""

    def __init__(self, d_input, widths, n_classes):
        super().__init__()
        sizes = [d_input] + widths
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.head = nn.Linear(sizes[-1], n_classes)

    def forward(self, images):
        x = images.flatten(1)
        for layer in self.layers:
            x = torch.relu(layer(x))
        return self.head(x)


class DenseCnn(nn.Module):
    """conv3x3 (no bias) -> BatchNorm -> ReLU per block, global mean pool, linear head."""

    def __init__(self, in_channels, widths, strides, n_classes):
        super().__init__()
        sizes = [in_channels] + widths
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, 3, stride=s, padding=1, bias=False) for a, b, s in zip(sizes, sizes[1:], strides)
        )
        self.norms = nn.ModuleList(batch_norm(b) for b in widths)
        self.head = nn.Linear(widths[-1], n_classes)

    def forward(self, images):
        x = images
        for conv, norm in zip(self.convs, self.norms):
            x = torch.relu(norm(conv(x)))
        return self.head(x.mean(dim=(2, 3)))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU. The shortcut is a 1x1 conv-BN projection
    when the export has one (`shortcut.*`), else the identity added by `add_prefix`."""

    def __init__(self, c_in, c_out, stride, projection):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm1 = batch_norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = batch_norm(c_out)
        self.shortcut = ConvNorm(c_in, c_out, 1, stride) if projection else None

    def forward(self, x):
        main = self.norm2(self.conv2(torch.relu(self.norm1(self.conv1(x)))))
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return torch.relu(add_prefix(main, shortcut))


class DenseResNet(nn.Module):
    """3x3 conv-BN-ReLU stem (stride 1), basic blocks, global mean pool, linear head.
    `blocks`: (c_in, c_out, stride, projection) per block, in forward order."""

    def __init__(self, in_channels, stem_width, blocks, n_classes):
        super().__init__()
        self.stem = ConvNorm(in_channels, stem_width, 3)
        self.blocks = nn.ModuleList(BasicBlock(*b) for b in blocks)
        self.head = nn.Linear(blocks[-1][1], n_classes)

    def forward(self, images):
        x = torch.relu(self.stem(images))
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(dim=(2, 3)))


class InvertedResidual(nn.Module):
    """[1x1 expand-BN-ReLU6] 3x3 depthwise-BN-ReLU6 (stride) 1x1 project-BN [+ input]."""

    def __init__(self, c_in, hidden, c_out, stride, expand, residual):
        super().__init__()
        self.expand = ConvNorm(c_in, hidden, 1) if expand else None
        self.depthwise = ConvNorm(hidden, hidden, 3, stride, depthwise=True)
        self.project = ConvNorm(hidden, c_out, 1)
        self.residual = residual

    def forward(self, x):
        h = x if self.expand is None else F.relu6(self.expand(x))
        out = self.project(F.relu6(self.depthwise(h)))
        return add_prefix(out, x) if self.residual else out


class DenseMobileNetV2(nn.Module):
    """3x3 conv-BN-ReLU6 stem, inverted residual blocks, 1x1 conv-BN-ReLU6, mean pool, head.
    `blocks`: (c_in, hidden, c_out, stride, expand, residual) per block, in forward order."""

    def __init__(self, in_channels, stem_width, stem_stride, blocks, last_width, n_classes):
        super().__init__()
        self.stem = ConvNorm(in_channels, stem_width, 3, stem_stride)
        self.blocks = nn.ModuleList(InvertedResidual(*b) for b in blocks)
        self.last = ConvNorm(blocks[-1][2], last_width, 1)
        self.head = nn.Linear(last_width, n_classes)

    def forward(self, images):
        x = F.relu6(self.stem(images))
        for block in self.blocks:
            x = block(x)
        x = F.relu6(self.last(x))
        return self.head(x.mean(dim=(2, 3)))


# Which blocks a sub-model runs, with their strides: the experiment config decides, not the file.


def activation_order(blocks_per_stage, depth_order):
    """Flat index of the r-th block to activate (`depth_order`: "flat" or "per_stage")."""
    starts = np.cumsum([0] + blocks_per_stage[:-1]).tolist()
    if depth_order == "flat":
        return list(range(sum(blocks_per_stage)))
    rounds = range(max(blocks_per_stage))
    return [s + j for j in rounds for s, n in zip(starts, blocks_per_stage) if j < n]


def active_blocks(blocks_per_stage, stage_strides, depth_order, depth):
    """(flat index, stride, stage) of the blocks a depth-`depth` sub-model runs, in forward order."""
    flat = [(s, i == 0) for s, n in enumerate(blocks_per_stage) for i in range(n)]
    run = sorted(activation_order(blocks_per_stage, depth_order)[:depth])
    return [(b, stage_strides[flat[b][0]] if flat[b][1] else 1, flat[b][0]) for b in run]


def make_divisible(v):
    rounded = max(int((v + 4.0) // 8.0) * 8, 8)
    return rounded + 8 if rounded < 0.9 * v else rounded


MOBILENET_V2_TABLE = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def build(manifest, state):
    """The PyTorch module of an export: layer sizes from the tensors, strides and residual sums
    from the experiment config in the manifest."""
    c, h, w = manifest["input_shape"]
    n_classes = manifest["n_classes"]
    kind, opts = next(iter(manifest["config"]["model"].items()))
    depth = len(manifest["widths"])
    out_in = lambda key: tuple(state[key].shape[:2])  # noqa: E731 (conv weight: [out, in, k, k])
    if kind == "mlp":
        widths = [state[f"layers.{i}.weight"].shape[0] for i in range(depth)]
        return DenseMlp(c * h * w, widths, n_classes)
    if kind == "cnn":
        widths = [state[f"convs.{i}.weight"].shape[0] for i in range(depth)]
        return DenseCnn(c, widths, opts["strides"][:depth], n_classes)
    if kind == "resnet":
        per_stage = opts["blocks_per_stage"]
        strides = opts.get("strides") or [1] + [2] * (len(per_stage) - 1)
        plan = active_blocks(per_stage, strides, opts.get("depth_order", "flat"), depth)
        blocks = [
            (*out_in(f"blocks.{i}.conv1.weight")[::-1], stride, f"blocks.{i}.shortcut.conv.weight" in state)
            for i, (_, stride, _) in enumerate(plan)
        ]
        return DenseResNet(c, state["stem.conv.weight"].shape[0], blocks, n_classes)
    if kind == "mobilenet_v2":
        m = opts.get("width_multiplier", 1.0)
        table = [(t, make_divisible(ch * m), n, s) for t, ch, n, s in MOBILENET_V2_TABLE]
        per_stage = [n for _, _, n, _ in table]
        plan = active_blocks(per_stage, [s for *_, s in table], opts.get("depth_order", "flat"), depth)
        # A block adds its input when the *allocated* block keeps its shape: stride 1 and the
        # allocated input channels (the previous block's, or the stem's) equal its own.
        allocated = [make_divisible(32 * m)] + [ch for _, ch, n, _ in table for _ in range(n)]
        blocks = []
        for i, (b, stride, _) in enumerate(plan):
            expand = f"blocks.{i}.expand.conv.weight" in state
            hidden, c_in = out_in(f"blocks.{i}.expand.conv.weight") if expand else out_in(f"blocks.{i}.project.conv.weight")[::-1]
            c_out = state[f"blocks.{i}.project.conv.weight"].shape[0]
            blocks.append((c_in, hidden, c_out, stride, expand, stride == 1 and allocated[b] == allocated[b + 1]))
        stem_stride = opts.get("stem_stride", 1)
        return DenseMobileNetV2(c, state["stem.conv.weight"].shape[0], stem_stride, blocks, state["last.conv.weight"].shape[0], n_classes)
    raise ValueError(f"unknown model family {kind}")


def load_sorted_export(folder):
    manifest = json.load(open(f"{folder}/manifest.json"))
    state = load_file(f"{folder}/model.safetensors")
    model = build(manifest, state)
    model.load_state_dict(state, strict=True)  # every tensor used, none missing
    return model.eval(), manifest


# ---- the check ----------------------------------------------------------------------------


def idx(path):
    data = gzip.open(path).read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def test_images(manifest):
    images, labels = idx(MNIST / "t10k-images-idx3-ubyte.gz"), idx(MNIST / "t10k-labels-idx1-ubyte.gz")
    limit = manifest["config"]["data"].get("test_limit", 0) or len(labels)
    stats = torch.tensor(manifest["input_normalisation"])  # [channels, 2]: (mean, std)
    mean, std = stats[:, 0].view(1, -1, 1, 1), stats[:, 1].view(1, -1, 1, 1)
    pixels = torch.from_numpy(images[:limit].astype(np.float32) / 255.0).view(limit, *manifest["input_shape"])
    return (pixels - mean) / std, torch.from_numpy(labels[:limit].astype(np.int64))


def burn_logits(folders, test_binary=None):
    """Runs the ignored Rust test that writes each folder's burn logits (through cargo, or the
    already built test binary `test_binary`, target/debug/deps/integration-<hash>)."""
    env = dict(os.environ, SORTED_EXPORT_LOGITS=":".join(str(Path(f).resolve()) for f in folders))
    cmd = ["cargo", "test", "-q", "-p", "sorted-runner", "--test", "integration"] if test_binary is None else [test_binary]
    cmd += ["export_pytorch", "--", "--ignored"] if test_binary is None else ["export_pytorch", "--ignored"]
    subprocess.run(cmd, cwd=REPO, env=env, check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--burn-logits", action="store_true", help="compare logits with the Rust test's")
    parser.add_argument("--test-binary", help="the built integration test binary (default: cargo test)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max |logit difference| allowed")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    results = []
    for folder in args.folders:
        model, manifest = load_sorted_export(folder)
        images, labels = test_images(manifest)
        logits = model(images)
        accuracy = (logits.argmax(1) == labels).float().mean().item()
        results.append((folder, manifest, images, logits, accuracy, labels))
        if args.burn_logits:
            images.numpy().astype("<f4").tofile(f"{folder}/images.f32")
    if args.burn_logits:
        burn_logits(args.folders, args.test_binary)
    ok = True
    for folder, manifest, images, logits, accuracy, labels in results:
        ours = (manifest.get("metrics") or {}).get("accuracy")
        same_acc = ours is not None and abs(accuracy - ours) < 0.5 / len(labels)
        line = (
            f"{manifest['model']:>12} {manifest['sub_model']:<38} {manifest['params']:>6} params  "
            f"torch {accuracy:.4f}  runner {ours if ours is not None else float('nan'):.4f}  n={len(labels)}"
        )
        ok &= same_acc
        if args.burn_logits:
            burn = torch.from_numpy(np.fromfile(f"{folder}/logits.burn.f32", "<f4")).view_as(logits)
            diff = (burn - logits).abs().max().item()
            argmax = (burn.argmax(1) == logits.argmax(1)).float().mean().item()
            line += f"  max|dlogit| {diff:.2e}  argmax agree {argmax:.4f}"
            ok &= diff <= args.tolerance and argmax == 1.0
        print(line)
    print("OK" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
