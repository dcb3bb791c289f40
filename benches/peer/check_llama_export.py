"""Checks Hugging Face exports of LLaMA sub-models (issue 30) with `transformers`.

Each folder given (or each sub-folder of the one given) is an `export_llama_hf` folder holding
`expected_logits.json` (`{"tokens": [...], "logits": [...], "vocab": n}`: the sorted sub-model's
logits in sortednet-rs). The folder is loaded with `LlamaForCausalLM.from_pretrained` and
`AutoTokenizer.from_pretrained`, run on the same tokens in float32, and the largest logit
difference is printed; the manifest's SHA-256 digests are checked too, and the chat template
and token ids against sortednet-rs's. A `model-f32.gguf` beside them (the test writes one) is
loaded through transformers' GGUF loader (needs the `gguf` and `accelerate` packages) and checked the same way.

    SORTED_EXPORT_DIR=/tmp/llexp cargo test -p sorted-zoo --test integration llama_export
    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install torch transformers safetensors gguf accelerate
    /tmp/hfvenv/bin/python benches/peer/check_llama_export.py /tmp/llexp

Exits 1 if a difference exceeds 1e-4 or a digest does not match.
"""

import hashlib
import json
import sys
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaForCausalLM

TOLERANCE = 1e-4


def check(folder: Path) -> bool:
    manifest = json.loads((folder / "manifest.json").read_text())
    ok = True
    for name, digest in manifest["sha256"].items():
        actual = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        if actual != digest:
            print(f"{folder.name}: {name}: sha256 {actual} != manifest {digest}")
            ok = False
    expected = json.loads((folder / "expected_logits.json").read_text())
    model = LlamaForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
    ids = torch.tensor([expected["tokens"]])
    with torch.no_grad():
        logits = model(ids).logits[0]
    want = torch.tensor(expected["logits"]).reshape(logits.shape)
    diff = (logits - want).abs().max().item()
    tok = AutoTokenizer.from_pretrained(folder)
    prompt = tok.apply_chat_template([{"role": "user", "content": "hello world 42"}], tokenize=False,
                                     add_generation_prompt=True)
    encoded = tok(prompt)["input_ids"]
    same_ids = prompt == expected["chat_prompt"] and encoded == expected["chat_ids"]
    print(f"{folder.name} ({manifest['sub_model']}): {model.config.num_hidden_layers} layers, "
          f"{model.config.num_attention_heads}/{model.config.num_key_value_heads} heads, "
          f"FFN {model.config.intermediate_size}; max |logit diff| = {diff:.3g} "
          f"(largest |logit| {want.abs().max().item():.3g}); chat prompt -> {len(encoded)} tokens, "
          f"same prompt and ids as sortednet-rs: {same_ids}, decodes back: {tok.decode(encoded) == prompt}")
    ok = ok and diff <= TOLERANCE and same_ids and tok.decode(encoded) == prompt
    gguf = folder / "model-f32.gguf"
    if gguf.exists():
        # transformers dequantizes the GGUF and undoes llama.cpp's Q/K row permutation itself.
        model = LlamaForCausalLM.from_pretrained(folder, gguf_file=gguf.name, torch_dtype=torch.float32).eval()
        with torch.no_grad():
            gguf_diff = (model(ids).logits[0] - want).abs().max().item()
        print(f"{folder.name}: {gguf.name} through transformers' GGUF loader: max |logit diff| = {gguf_diff:.3g}")
        ok = ok and gguf_diff <= TOLERANCE
    return ok


def main() -> int:
    torch.set_num_threads(2)
    roots = [Path(a) for a in sys.argv[1:]] or [Path("/tmp/llexp")]
    folders = []
    for root in roots:
        folders += [root] if (root / "config.json").exists() else sorted(p.parent for p in root.glob("*/config.json"))
    results = [check(f) for f in folders]
    print(f"{sum(results)}/{len(results)} exports match")
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
