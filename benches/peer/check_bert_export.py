"""Checks Hugging Face exports of BERT sub-models (issue 30) with `transformers`.

Each folder given (searched recursively) holds an `expected_logits.json` beside the export:
either inside the export folder itself (the sorted-zoo test) or beside its `hf/` folder
(`sorted-runner export --run <text run>`). The JSON holds `input_ids` (lists, padded or not),
optionally `attention_mask`, `logits` (sortednet-rs's logits of the sub-model) and, from the
runner, `labels` and `accuracy` (the sub-model's accuracy on those sentences in sortednet-rs).

`cls` exports load with `BertForSequenceClassification.from_pretrained`; `mean` exports with
`BertModel.from_pretrained(..., add_pooling_layer=False)`, then the documented head:
`classifier(mean of last_hidden_state over attention-masked tokens)`, with `classifier.*`
read from `model.safetensors`. The tokenizer (`vocab.txt`, `tokenizer_config.json`) must load
as a `BertTokenizer`. The manifest's SHA-256 digests are checked. Prints the largest logit
difference, prediction agreement and, with labels, both accuracies.

    SORTED_EXPORT_DIR=/tmp/bertexp cargo test -p sorted-zoo --test integration bert_export
    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install torch transformers safetensors
    /tmp/hfvenv/bin/python benches/peer/check_bert_export.py /tmp/bertexp

Exits 1 if a difference exceeds 1e-4 (f32), a prediction differs, or a digest does not match.
"""

import hashlib
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import BertForSequenceClassification, BertModel, BertTokenizer

TOLERANCE = 1e-4


def logits_of(hf: Path, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    config = json.loads((hf / "config.json").read_text())
    if config["architectures"][0] == "BertForSequenceClassification":
        model = BertForSequenceClassification.from_pretrained(hf, dtype=torch.float32).eval()
        with torch.no_grad():
            return model(input_ids=ids, attention_mask=mask).logits
    # Mean pooling: BertModel + the documented head.
    model = BertModel.from_pretrained(hf, add_pooling_layer=False, dtype=torch.float32).eval()
    weights = load_file(hf / "model.safetensors")
    with torch.no_grad():
        states = model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * m).sum(1) / m.sum(1).clamp_min(1e-9)
        return pooled @ weights["classifier.weight"].T + weights["classifier.bias"]


def batches(expected: dict, size: int = 64):
    rows = expected["input_ids"]
    masks = expected.get("attention_mask")
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        width = max(len(r) for r in chunk)
        ids = torch.tensor([r + [0] * (width - len(r)) for r in chunk])
        if masks is not None:
            mask = torch.tensor(masks[start : start + size], dtype=torch.long)
        else:
            mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in chunk])
        yield ids, mask


def check(expected_path: Path) -> bool:
    hf = expected_path.parent / "hf" if (expected_path.parent / "hf").is_dir() else expected_path.parent
    manifest = json.loads((hf / "manifest.json").read_text())
    ok = True
    for name, digest in manifest["sha256"].items():
        actual = hashlib.sha256((hf / name).read_bytes()).hexdigest()
        if actual != digest:
            print(f"{hf}: {name}: sha256 {actual} != manifest {digest}")
            ok = False
    if (hf / "vocab.txt").exists():
        tokenizer = BertTokenizer.from_pretrained(hf)
        assert tokenizer.do_lower_case, "tokenizer_config.json: do_lower_case"
    expected = json.loads(expected_path.read_text())
    ours = torch.tensor(expected["logits"], dtype=torch.float32).reshape(len(expected["input_ids"]), -1)
    theirs = torch.cat([logits_of(hf, ids, mask) for ids, mask in batches(expected)])
    diff = (theirs - ours).abs().max().item()
    agree = (theirs.argmax(1) == ours.argmax(1)).float().mean().item()
    line = (
        f"{hf}: {manifest['sub_model']} ({manifest['architecture']}, {manifest['pooling']} pooling, "
        f"{manifest['active_heads']}/{manifest['hf_heads']} heads active): {len(ours)} sentences, "
        f"max |logit diff| {diff:.2e}, predictions agree {100 * agree:.2f}%"
    )
    if "labels" in expected:
        labels = torch.tensor(expected["labels"])
        hf_acc = (theirs.argmax(1) == labels).float().mean().item()
        line += f", accuracy transformers {hf_acc:.4f} vs sortednet-rs {expected['accuracy']:.4f}"
    print(line)
    return ok and diff < TOLERANCE and agree == 1.0


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    found = sorted(p for arg in sys.argv[1:] for p in Path(arg).rglob("expected_logits.json"))
    if not found:
        print("no expected_logits.json under", sys.argv[1:])
        return 2
    results = [check(p) for p in found]
    print(f"{sum(results)}/{len(results)} exports match")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
