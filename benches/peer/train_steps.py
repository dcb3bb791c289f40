"""PyTorch replicas of one sorted training step of each zoo family, for
`cargo xtask bench --peer --train-steps` (issue 29, item 1b).

    python benches/peer/train_steps.py --model resnet|mobilenet_v2|minilm \
        [--steps N] [--warmup W] [--threads T] [--config PATH]

Runs W untimed steps, then N timed ones, and prints one JSON line: model, config, ms_per_step
(the mean of the N timed steps), steps, warmup, threads, torch version, the last step's loss and
the sub-models of the last step.

What each replica does per step, read from the configs and the code of the repository:

- `resnet` (configs/fashion-resnet.toml; crates/sorted-zoo/src/vision/resnet.rs, staged_body.rs,
  depth_order.rs, crates/sorted-runner/src/train.rs `ImageTask`): ResNet-32, 3 stages of 5
  basic blocks allocated at 16/32/64 channels, all three stages with stride 2 (`strides = [2,
  2, 2]`: 28 -> 14 -> 7 -> 4), a 3x3 stem (stride 1) whose active width follows the first
  block's, a 1x1 conv + BatchNorm projection shortcut on every stage's first block, identity
  shortcuts elsewhere, global mean pool, a linear head reading the active channels. Depth in
  `depth_order = "per_stage"` (depth d runs the first d of blocks 0, 5, 10, 1, 6, 11, ..., in
  forward order), 13 tied widths (k/16 of every block's channels). Batch 128 of 1x28x28
  images with crop (padding 2) + horizontal flip. Sandwich sampler, k = 4: the full model, the
  smallest, 2 uniform. In-place distillation (`train.distill = 0.5`): one forward pass of the
  full model without autograd (training-mode BatchNorm) gives the teacher's log-probabilities;
  the full model's loss is the cross-entropy, every other sub-model's `0.5 * CE + 0.5 *
  KL(teacher || student)`. Loss weights [2, 1, 1, 1] normalised, times k (`loss_reduction =
  "sum"`): 1.6 / 0.8 / 0.8 / 0.8. One backward pass per sub-model, gradients accumulated, one
  SGD step (momentum 0.9, Nesterov, weight decay 5e-4).
- `mobilenet_v2` (configs/fashion-mobilenetv2.toml; crates/sorted-zoo/src/vision/mobilenet_v2.rs):
  the CIFAR-style MobileNetV2 at width 0.5 (stem 16, stride 1; stages (t, c, n, s) = (1, 8, 1,
  1), (6, 16, 2, 1), (6, 16, 3, 2), (6, 32, 4, 2), (6, 48, 3, 1), (6, 80, 3, 2), (6, 160, 1, 1)),
  a last 1x1 conv to 1280 channels that stays 1280 wide, ReLU6, mean pool, linear head. A
  block's hidden width is t times its *active* input width; residual sums where the allocated
  block keeps its shape. Depth: the first 9/11/13/15/17 blocks (flat order), 6 tied widths.
  Batch 128 with crop + flip. Uniform sampler over the axes, k = 4 (no full model forced),
  the mean of the 4 cross-entropies, one backward per sub-model, one SGD step (momentum 0.9,
  Nesterov, weight decay 4e-5).
- `minilm` (configs/rt-minilm-sorted.toml; crates/sorted-zoo/src/bert/model.rs,
  crates/sorted-nn/src/attention.rs, crates/sorted-runner/src/text/run.rs `TextTask`): the
  all-MiniLM-L6-v2 shape (vocabulary 30,522, hidden 384, 6 layers, 12 heads of 32 features,
  FFN 1,536, 512 positions, post-LayerNorm with eps 1e-12, erf GELU, dropout 0.1 after the
  embeddings, the attention output, the FFN output and before the classifier; no dropout on
  the attention probabilities), mean pooling over the attention mask, a 384 -> 2 classifier.
  A sub-model runs the first L layers with the first H heads (the first H*32 rows of the
  query/key/value weights and columns of the output projection) and the first F FFN units.
  Uniform sampler over the axes, k = 4: depth in {2, 4, 6}, heads in {3, 6, 9, 12}, FFN in
  {768, 1536}. Batch 32 sentences padded to the longest in the batch (at most `data.max_len`
  = 64 tokens), padding masked with an additive -1e9 bias on the scores (ours: `PAD_BIAS`). Mean of the 4
  cross-entropies, one backward per sub-model, one AdamW step (betas 0.9/0.999, eps 1e-8,
  weight decay 0.01) over every parameter with a gradient (the embedding tables get dense
  gradients, as in ours).

Every sub-model slices the full model's parameters (the first channels / units / heads), so the
gradients of a step accumulate into the same tensors, and parameters no sub-model of the step
touched get no update, as in ours.

Differences from ours (none changes the amount of arithmetic of a step, except where said):
- data: the vision replicas draw random batches from data/fashion-mnist when it is there
  (otherwise random pixels); the text replica tokenizes the fresh/rotten reviews of
  data/rt-sentiment with a plain-Python BERT WordPiece (lower case, accents stripped,
  punctuation split, vocabulary data/minilm/vocab.txt) and draws random batches of 32 from all
  of them (ours: the train split in a ChaCha8 epoch order), so the padded lengths follow the
  same distribution but not the same sequence of batches. Without the data it uses random ids
  and lengths uniform in [8, 64]. Step times of the text replica therefore vary with the
  padded length; ours too.
- weights: random initial weights of the right shapes (MiniLM: N(0, 0.02), not the
  pretrained data/minilm weights; the values do not change the work of a step).
- random streams: torch.Generator seeded from the config's seed for the sub-model draws, the
  batches and the augmentation (ours: ChaCha8 streams), so the sub-models of a step differ;
  they come from the same distributions, and the mean over the timed steps estimates the same
  expected step cost. Use more steps for a tighter mean.
- layouts: linear weights are stored PyTorch's way, [out, in] (burn stores [in, out]);
  convolutions are PyTorch's (oneDNN or its native kernels), attention is written out (matmul,
  scale, mask bias, softmax, matmul) as ours does, not through scaled_dot_product_attention.
- parallelism: the sub-models of a step run one after another, each op on `--threads` torch
  threads (ours with `train.threads = 2` runs the k sub-models on 2 worker threads and sums
  their gradients in sampling order). Only the per-step time is compared.
- the learning rate is held at `lr.base` (the schedule is arithmetic on one float); no
  checkpoint is written (ours writes one every `train.checkpoint_every` steps, not within the
  first steps this benchmark times), no divergence checks beyond reading each loss.
"""

import argparse
import csv
import gzip
import json
import math
import os
import struct
import time
import tomllib
import unicodedata

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = {
    "resnet": "configs/fashion-resnet.toml",
    "mobilenet_v2": "configs/fashion-mobilenetv2.toml",
    "minilm": "configs/rt-minilm-sorted.toml",
}
# Fashion-MNIST normalisation (crates/sorted-data/src/fashion_mnist.rs).
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530
# The additive bias on padded keys (crates/sorted-nn/src/attention.rs `PAD_BIAS`).
PAD_BIAS = -1e9


# ---- data ---------------------------------------------------------------------------------


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    n_dims = data[3]
    dims = struct.unpack(">" + "I" * n_dims, data[4 : 4 + 4 * n_dims])
    return torch.frombuffer(bytearray(data[4 + 4 * n_dims :]), dtype=torch.uint8).reshape(dims)


class ImageBatches:
    """Random batches of Fashion-MNIST training images (or random pixels), cropped from a
    zero-padded copy and flipped at random, normalised."""

    def __init__(self, source, batch, padding, flip, gen):
        images = os.path.join(ROOT, source, "train-images-idx3-ubyte.gz")
        labels = os.path.join(ROOT, source, "train-labels-idx1-ubyte.gz")
        if os.path.exists(images):
            self.x, self.y, self.real = read_idx(images).float() / 255.0, read_idx(labels).long(), True
        else:
            self.x, self.y, self.real = torch.rand(60000, 28, 28, generator=gen), torch.randint(10, (60000,)), False
        self.x = (self.x - FASHION_MEAN) / FASHION_STD
        self.batch, self.padding, self.flip, self.gen = batch, padding, flip, gen

    def next(self):
        idx = torch.randint(self.x.shape[0], (self.batch,), generator=self.gen)
        x, y = self.x[idx], self.y[idx]
        p = self.padding
        if p:
            # Zero padding is the normalised image's background, as ours pads before normalising.
            padded = F.pad(x, (p, p, p, p), value=(0.0 - FASHION_MEAN) / FASHION_STD)
            offsets = torch.randint(2 * p + 1, (self.batch, 2), generator=self.gen).tolist()
            x = torch.stack([padded[i, r : r + 28, c : c + 28] for i, (r, c) in enumerate(offsets)])
        if self.flip:
            flip = torch.rand(self.batch, generator=self.gen) < 0.5
            x = torch.where(flip.view(-1, 1, 1), x.flip(2), x)
        return x.unsqueeze(1).contiguous(), y


def basic_tokens(text):
    """BERT's basic tokenizer (uncased): accents stripped, split on whitespace and punctuation."""
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    out, word = [], []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch.isspace() or cat.startswith("C"):
            if word:
                out.append("".join(word))
                word = []
        elif cat.startswith("P") or (33 <= ord(ch) <= 47 or 58 <= ord(ch) <= 64 or 91 <= ord(ch) <= 96 or 123 <= ord(ch) <= 126):
            if word:
                out.append("".join(word))
                word = []
            out.append(ch)
        else:
            word.append(ch)
    if word:
        out.append("".join(word))
    return out


def wordpiece(word, vocab, unk):
    if len(word) > 100:
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        end, piece = len(word), None
        while start < end:
            sub = word[start:end] if start == 0 else "##" + word[start:end]
            if sub in vocab:
                piece = vocab[sub]
                break
            end -= 1
        if piece is None:
            return [unk]
        pieces.append(piece)
        start = end
    return pieces


class TextBatches:
    """Random batches of tokenized review snippets ([CLS] ... [SEP], at most `max_len` ids),
    padded to the longest of the batch; random ids and lengths without the data."""

    def __init__(self, source, vocab_path, max_len, batch, vocab_size, gen):
        self.batch, self.max_len, self.gen = batch, max_len, gen
        csv_path = os.path.join(ROOT, source, "rotten_tomatoes_corpus_full.csv")
        vocab_path = os.path.join(ROOT, vocab_path)
        self.sequences = None
        if os.path.exists(csv_path) and os.path.exists(vocab_path):
            with open(vocab_path, encoding="utf-8") as f:
                vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
            cls, sep, unk = vocab["[CLS]"], vocab["[SEP]"], vocab["[UNK]"]
            self.sequences, self.labels = [], []
            with open(csv_path, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    if row["category"] not in ("fresh", "rotten"):
                        continue
                    ids = [p for w in basic_tokens(row["text"]) for p in wordpiece(w, vocab, unk)]
                    ids = [cls] + ids[: max_len - 2] + [sep]
                    self.sequences.append(ids)
                    self.labels.append(int(row["category"] == "fresh"))
        self.vocab_size = vocab_size

    def mean_padded_length(self, draws=200):
        state = self.gen.get_state()
        total = sum(self.next()[0].shape[1] for _ in range(draws))
        self.gen.set_state(state)
        return total / draws

    def next(self):
        if self.sequences is None:
            lengths = torch.randint(8, self.max_len + 1, (self.batch,), generator=self.gen).tolist()
            seqs = [torch.randint(1000, self.vocab_size, (n,), generator=self.gen).tolist() for n in lengths]
            labels = torch.randint(2, (self.batch,), generator=self.gen)
        else:
            idx = torch.randint(len(self.sequences), (self.batch,), generator=self.gen).tolist()
            seqs = [self.sequences[i] for i in idx]
            labels = torch.tensor([self.labels[i] for i in idx])
        width = max(len(s) for s in seqs)
        ids = torch.zeros(self.batch, width, dtype=torch.long)
        mask = torch.zeros(self.batch, width)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1.0
        return ids, mask, labels


# ---- sorted models (parameters allocated for the full model, forwards slice them) -------


def param(*shape, fan_in, gen):
    bound = 1.0 / math.sqrt(fan_in)
    return torch.nn.Parameter((torch.rand(*shape, generator=gen) * 2 - 1) * bound)


class ConvNorm(torch.nn.Module):
    """A k x k convolution without bias (padding k // 2) and a BatchNorm of batch statistics
    (`batch_norm = "recalibrate"`: no running statistics in training), both sliced."""

    def __init__(self, c_in, c_out, k, stride, gen, depthwise=False):
        super().__init__()
        fan_in = k * k * (1 if depthwise else c_in)
        self.weight = param(c_out, 1 if depthwise else c_in, k, k, fan_in=fan_in, gen=gen)
        self.gamma = torch.nn.Parameter(torch.ones(c_out))
        self.beta = torch.nn.Parameter(torch.zeros(c_out))
        self.k, self.stride, self.depthwise = k, stride, depthwise

    def forward(self, x, c_out):
        c_in = x.shape[1]
        if self.depthwise:
            w, groups = self.weight[:c_out], c_out
        else:
            w, groups = self.weight[:c_out, :c_in], 1
        y = F.conv2d(x, w, stride=self.stride, padding=self.k // 2, groups=groups)
        return F.batch_norm(y, None, None, self.gamma[:c_out], self.beta[:c_out], training=True, eps=1e-5)


def add_prefix(main, shortcut):
    """crates/sorted-zoo/src/vision/residual.rs: add into the first min(c_main, c_short)
    channels (a narrower shortcut zero-padded, a wider one truncated)."""
    c_main, c_short = main.shape[1], shortcut.shape[1]
    if c_short >= c_main:
        return main + shortcut[:, :c_main]
    return main + F.pad(shortcut, (0, 0, 0, 0, 0, c_main - c_short))


def proportional(w, from_, to):
    """crates/sorted-zoo/src/vision/scaling.rs: ceil(w * to / from)."""
    return -(-w * to // from_)


class Head(torch.nn.Module):
    def __init__(self, d_in, n_classes, gen):
        super().__init__()
        self.weight = param(n_classes, d_in, fan_in=d_in, gen=gen)
        self.bias = param(n_classes, fan_in=d_in, gen=gen)

    def forward(self, x):
        return F.linear(x, self.weight[:, : x.shape[1]], self.bias)


def activation_order(blocks_per_stage, per_stage):
    starts = [sum(blocks_per_stage[:i]) for i in range(len(blocks_per_stage))]
    if not per_stage:
        return list(range(sum(blocks_per_stage)))
    return [s + j for j in range(max(blocks_per_stage)) for s, n in zip(starts, blocks_per_stage) if j < n]


class SortedResNet(torch.nn.Module):
    def __init__(self, cfg, space, gen):
        super().__init__()
        opts = cfg["model"]["resnet"]
        per_stage = opts["blocks_per_stage"]
        strides = opts.get("strides") or [1] + [2] * (len(per_stage) - 1)
        self.order = activation_order(per_stage, opts.get("depth_order", "flat") == "per_stage")
        allocated = [0] * len(self.order)
        for r, b in enumerate(self.order):
            allocated[b] = max(space["block_widths"][r])
        widths_flat = [None] * len(self.order)
        for r, b in enumerate(self.order):
            widths_flat[b] = space["block_widths"][r]
        stage_channels, first = [], 0
        for n in per_stage:
            stage_channels.append(max(allocated[first : first + n]))
            first += n
        self.stem = ConvNorm(1, stage_channels[0], 3, 1, gen)
        self.blocks = torch.nn.ModuleList()
        self.plan = []  # (stride, projection) per flat block
        c_in = stage_channels[0]
        for s, (n, c) in enumerate(zip(per_stage, stage_channels)):
            for i in range(n):
                stride = strides[s] if i == 0 else 1
                projection = stride != 1 or c_in != c
                block = torch.nn.ModuleDict(
                    {"conv1": ConvNorm(c_in, c, 3, stride, gen), "conv2": ConvNorm(c, c, 3, 1, gen)}
                )
                if projection:
                    block["shortcut"] = ConvNorm(c_in, c, 1, stride, gen)
                self.blocks.append(block)
                c_in = c
        self.c0 = stage_channels[0]
        self.head = Head(max(stage_channels), 10, gen)

    def forward(self, x, sub):
        depth, widths = sub  # widths in space (activation) order
        active = sorted(zip(self.order[:depth], widths))
        x = F.relu(self.stem(x, proportional(active[0][1], self.c0, self.c0)))
        for b, c in active:
            block = self.blocks[b]
            h = F.relu(block["conv1"](x, c))
            main = block["conv2"](h, c)
            shortcut = block["shortcut"](x, c) if "shortcut" in block else x
            x = F.relu(add_prefix(main, shortcut))
        return self.head(x.mean(dim=(2, 3)))


def make_divisible(v):
    rounded = max(int((v + 4.0) // 8.0) * 8, 8)
    return rounded + 8 if rounded < 0.9 * v else rounded


MOBILENET_V2_TABLE = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


class SortedMobileNetV2(torch.nn.Module):
    def __init__(self, cfg, space, gen):
        super().__init__()
        opts = cfg["model"]["mobilenet_v2"]
        if opts.get("scale_last_conv", False) or opts.get("depth_order", "flat") != "flat":
            raise SystemExit("only scale_last_conv = false and the flat depth order are replicated")
        m = opts.get("width_multiplier", 1.0)
        self.stem_channels = make_divisible(32 * m)
        stem_stride = opts.get("stem_stride", 1)
        self.stem = ConvNorm(1, self.stem_channels, 3, stem_stride, gen)
        self.blocks = torch.nn.ModuleList()
        self.residual, self.expansion = [], []
        c_in, channels = self.stem_channels, []
        for t, c, n, s in MOBILENET_V2_TABLE:
            c = make_divisible(c * m)
            for i in range(n):
                stride = s if i == 0 else 1
                hidden = t * c_in
                block = torch.nn.ModuleDict(
                    {"depthwise": ConvNorm(hidden, hidden, 3, stride, gen, depthwise=True), "project": ConvNorm(hidden, c, 1, 1, gen)}
                )
                if t != 1:
                    block["expand"] = ConvNorm(c_in, hidden, 1, 1, gen)
                self.blocks.append(block)
                self.residual.append(stride == 1 and c_in == c)
                self.expansion.append(t)
                channels.append(c)
                c_in = c
        self.c0 = channels[0]
        self.last_channels = make_divisible(1280 * max(m, 1.0))
        self.last = ConvNorm(max(channels), self.last_channels, 1, 1, gen)
        self.head = Head(self.last_channels, 10, gen)

    def forward(self, x, sub):
        depth, widths = sub
        x = F.relu6(self.stem(x, proportional(widths[0], self.c0, self.stem_channels)))
        for b in range(depth):
            block, c = self.blocks[b], widths[b]
            hidden = self.expansion[b] * x.shape[1]
            h = F.relu6(block["expand"](x, hidden)) if "expand" in block else x
            h = F.relu6(block["depthwise"](h, hidden))
            out = block["project"](h, c)
            x = add_prefix(out, x) if self.residual[b] else out
        x = F.relu6(self.last(x, self.last_channels))
        return self.head(x.mean(dim=(2, 3)))


class SortedBert(torch.nn.Module):
    def __init__(self, sizes, dropout, gen):
        super().__init__()
        d, f, self.head_dim = sizes["hidden_size"], sizes["intermediate_size"], sizes["hidden_size"] // sizes["num_attention_heads"]
        normal = lambda *shape: torch.nn.Parameter(torch.randn(*shape, generator=gen) * 0.02)  # noqa: E731
        zeros = lambda n: torch.nn.Parameter(torch.zeros(n))  # noqa: E731
        ones = lambda n: torch.nn.Parameter(torch.ones(n))  # noqa: E731
        self.word = normal(sizes["vocab_size"], d)
        self.position = normal(sizes["max_position_embeddings"], d)
        self.token_type = normal(sizes["type_vocab_size"], d)
        self.embed_norm = torch.nn.ParameterList([ones(d), zeros(d)])
        self.layers = torch.nn.ModuleList()
        for _ in range(sizes["num_hidden_layers"]):
            layer = torch.nn.ParameterDict(
                {
                    "q_w": normal(d, d), "q_b": zeros(d), "k_w": normal(d, d), "k_b": zeros(d),
                    "v_w": normal(d, d), "v_b": zeros(d), "o_w": normal(d, d), "o_b": zeros(d),
                    "ln1_g": ones(d), "ln1_b": zeros(d),
                    "i_w": normal(f, d), "i_b": zeros(f), "out_w": normal(d, f), "out_b": zeros(d),
                    "ln2_g": ones(d), "ln2_b": zeros(d),
                }
            )  # fmt: skip
            self.layers.append(layer)
        self.cls_w, self.cls_b = normal(2, d), zeros(2)
        self.eps, self.p = sizes.get("layer_norm_eps", 1e-12), dropout

    def forward(self, ids, mask, sub):
        depth, heads, ffn = sub
        n, s = ids.shape
        d, p, eps = self.word.shape[1], self.p, self.eps
        positions = torch.arange(s).unsqueeze(0).expand(n, s)
        x = F.embedding(ids, self.word) + F.embedding(positions, self.position) + self.token_type[0]
        x = F.dropout(F.layer_norm(x, (d,), self.embed_norm[0], self.embed_norm[1], eps), p)
        bias = ((1.0 - mask) * PAD_BIAS).view(n, 1, 1, s)
        inner, hd = heads * self.head_dim, self.head_dim
        for layer in self.layers[:depth]:
            split = lambda t: t.view(n, s, heads, hd).transpose(1, 2)  # noqa: E731
            q = split(F.linear(x, layer["q_w"][:inner], layer["q_b"][:inner]))
            k = split(F.linear(x, layer["k_w"][:inner], layer["k_b"][:inner]))
            v = split(F.linear(x, layer["v_w"][:inner], layer["v_b"][:inner]))
            scores = torch.softmax(q @ k.transpose(2, 3) * (1.0 / math.sqrt(hd)) + bias, dim=3)
            a = (scores @ v).transpose(1, 2).reshape(n, s, inner)
            a = F.linear(a, layer["o_w"][:, :inner], layer["o_b"])
            x = F.layer_norm(x + F.dropout(a, p), (d,), layer["ln1_g"], layer["ln1_b"], eps)
            h = F.gelu(F.linear(x, layer["i_w"][:ffn], layer["i_b"][:ffn]))
            o = F.linear(h, layer["out_w"][:, :ffn], layer["out_b"])
            x = F.layer_norm(x + F.dropout(o, p), (d,), layer["ln2_g"], layer["ln2_b"], eps)
        m = mask.unsqueeze(2)
        pooled = (x * m).sum(1) / m.sum(1).clamp_min(1e-9)
        return F.linear(F.dropout(pooled, p), self.cls_w, self.cls_b)


# ---- the steps ----------------------------------------------------------------------------


def pick(options, gen):
    return options[int(torch.randint(len(options), (1,), generator=gen))]


def sgd(model, opts, lr):
    return torch.optim.SGD(
        model.parameters(),
        lr=lr,
        momentum=opts.get("momentum", 0.0),
        nesterov=opts.get("nesterov", False),
        weight_decay=opts.get("weight_decay", 0.0),
    )


def image_setup(cfg, family, gen):
    space = cfg["space"]
    if not space.get("tie_widths", False):
        raise SystemExit("only tied widths are replicated")
    model = (SortedResNet if family == "resnet" else SortedMobileNetV2)(cfg, space, gen)
    n_options = len(space["block_widths"][0])

    def sub(depth, index):
        return depth, [w[index] for w in space["block_widths"][:depth]]

    largest, smallest = sub(max(space["depths"]), n_options - 1), sub(min(space["depths"]), 0)
    sampler_kind, sampler = next(iter(cfg["sampler"].items()))
    k = sampler.get("k", 4)

    def sample():
        if sampler_kind == "sandwich":
            subs = [largest, smallest]
        elif sampler_kind == "uniform":
            subs = [largest] if sampler.get("include_full", False) else []
        else:
            raise SystemExit(f"sampler.{sampler_kind} is not replicated")
        while len(subs) < k:
            # Tied widths: uniform over sub-models = uniform depth x uniform width option.
            subs.append(sub(pick(space["depths"], gen), pick(range(n_options), gen)))
        return subs

    train = cfg["train"]
    weights = train.get("loss_weights") or [1.0] * k
    weights = [w / sum(weights) for w in weights]
    scale = k if train.get("loss_reduction", "mean") == "sum" else 1.0
    distill = train.get("distill", 0.0)
    aug = cfg["data"].get("augment", {})
    data = ImageBatches(cfg["data"]["source"], cfg["data"]["batch_size"], aug.get("crop_padding", 0), aug.get("horizontal_flip", False), gen)
    opt = sgd(model, cfg["optimizer"]["sgd"], cfg["lr"]["base"])

    def step():
        subs = sample()
        x, y = data.next()
        teacher = None
        if distill > 0 and any(s != largest for s in subs):
            with torch.no_grad():
                teacher = F.log_softmax(model(x, largest), dim=1)
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for i, s in enumerate(subs):
            logits = model(x, s)
            loss = F.cross_entropy(logits, y)
            if teacher is not None and s != largest:
                kl = (teacher.exp() * (teacher - F.log_softmax(logits, dim=1))).sum(1).mean()
                loss = (1.0 - distill) * loss + distill * kl
            (loss * (scale * weights[i])).backward()
            total += weights[i] * loss.item()
        opt.step()
        return total, subs

    return step


def text_setup(cfg, gen):
    space, data_cfg = cfg["space"], cfg["data"]
    pretrained = cfg["model"]["bert"].get("pretrained", "data/minilm")
    config_path = os.path.join(ROOT, pretrained, "config.json")
    if os.path.exists(config_path):
        with open(config_path) as f:
            sizes = json.load(f)
    else:  # all-MiniLM-L6-v2's shape
        sizes = {"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
                 "intermediate_size": 1536, "max_position_embeddings": 512, "type_vocab_size": 2}  # fmt: skip
    if cfg["model"]["bert"].get("pooling", "mean") != "mean":
        raise SystemExit("only pooling = \"mean\" is replicated")
    model = SortedBert(sizes, cfg["model"]["bert"].get("dropout", 0.1), gen)
    sampler_kind, sampler = next(iter(cfg["sampler"].items()))
    if sampler_kind != "uniform" or sampler.get("include_full", False):
        raise SystemExit("only [sampler.uniform] without include_full is replicated")
    k = sampler.get("k", 4)
    data = TextBatches(data_cfg["source"], os.path.join(pretrained, "vocab.txt"), data_cfg.get("max_len", 64), data_cfg["batch_size"], sizes["vocab_size"], gen)
    adamw = cfg["optimizer"]["adamw"]
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=cfg["lr"]["base"],
        betas=(adamw.get("beta1", 0.9), adamw.get("beta2", 0.999)),
        eps=adamw.get("epsilon", 1e-8),
        weight_decay=adamw.get("weight_decay", 0.01),
    )

    def step():
        subs = [(pick(space["depths"], gen), pick(space["heads"], gen), pick(space["ffn"], gen)) for _ in range(k)]
        ids, mask, labels = data.next()
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for s in subs:
            loss = F.cross_entropy(model(ids, mask, s), labels) / k
            loss.backward()
            total += loss.item()
        opt.step()
        return total, subs

    return step, data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, choices=sorted(CONFIGS))
    parser.add_argument("--config", help="the experiment config (default: the model's, see the docstring)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = args.config or os.path.join(ROOT, CONFIGS[args.model])
    with open(config, "rb") as f:
        cfg = tomllib.load(f)
    gen = torch.Generator().manual_seed(cfg["seed"])
    torch.manual_seed(cfg["seed"])  # dropout
    extra = {}
    if args.model == "minilm":
        step, data = text_setup(cfg, gen)
        extra["data"] = "rt-sentiment (plain-Python WordPiece)" if data.sequences is not None else "random ids"
        extra["mean_padded_length"] = round(data.mean_padded_length(), 1)
    else:
        step = image_setup(cfg, args.model, gen)
    for _ in range(args.warmup):
        step()
    started = time.perf_counter()
    for _ in range(args.steps):
        loss, subs = step()
    seconds = time.perf_counter() - started
    out = {
        "model": args.model,
        "config": os.path.relpath(config, ROOT),
        "ms_per_step": 1e3 * seconds / max(args.steps, 1),
        "steps": args.steps,
        "warmup": args.warmup,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "last_loss": loss if args.steps else None,
        "last_subs": [str(s[0]) + ":" + str(s[1] if args.model == "minilm" else s[1][0]) for s in subs] if args.steps else None,
        **extra,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
