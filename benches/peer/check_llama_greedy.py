"""Greedy decoding of exported LLaMA sub-models in `transformers` against `sorted-runner generate` (issue 30).

For every case `--case EXPORT_DIR RUNNER_STDOUT`, `EXPORT_DIR` is what
`sorted-runner export --sub-model ... --out EXPORT_DIR` wrote (`hf/`, `model-f16.gguf`,
`model-q8_0.gguf`) and `RUNNER_STDOUT` is what `sorted-runner generate` printed for the same
sub-model on the 20 prompts of `PROMPTS` (ChatML-wrapped, as the runner does by default):

    G=data/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
    sorted-runner export --gguf $G --sub-model L20-H9-F1536 --out /tmp/exp/L20-H9-F1536
    python3 benches/peer/check_llama_greedy.py --print-prompts > /tmp/prompts.txt
    args=(); while IFS= read -r p; do args+=(--prompt "$p"); done < /tmp/prompts.txt
    sorted-runner generate --gguf $G --sub-model L20-H9-F1536 --max-new 32 "${args[@]}" > /tmp/L20.out
    /tmp/hfvenv/bin/python benches/peer/check_llama_greedy.py --max-new 32 \
        --case /tmp/exp/L20-H9-F1536 /tmp/L20.out --gguf model-f16.gguf

(a fine-tuned run: `export --run RUN`, and `generate --weights RUN`). The venv needs torch,
transformers, safetensors, gguf and accelerate (`pip install` them).

`hf/` is loaded with `LlamaForCausalLM.from_pretrained(..., torch_dtype=torch.float32)` and
`AutoTokenizer`; each prompt goes through the folder's chat template (its ids are compared with
sortednet-rs's for the first prompt: `OUR_FIRST_PROMPT_IDS`, which
crates/sorted-data/tests/byte_bpe.rs asserts our tokenizer produces), and `generate` decodes
`--max-new` tokens greedily (`do_sample=False`), stopping at `<|im_end|>` as the runner does.
The runner prints text, not ids, so the comparison is on text: the decoded new tokens (less a
final `<|im_end|>`) must equal the runner's answer byte for byte; where they differ, the first
differing token is the first whose bytes leave the runner's answer. The total number of new
tokens is compared with the runner's `tokens` column too. With `--gguf NAME` the case's
`EXPORT_DIR/NAME` is also loaded through transformers' GGUF loader (`from_pretrained(EXPORT_DIR,
gguf_file=NAME)`, dequantized to float32) and decoded the same way: F16 and Q8_0 are lossy, so
their agreement is reported, not required.

Prints a Markdown table (one row per model file) and exits 1 if an f32 `hf/` export differs from
the runner on any prompt, or its first prompt's ids differ from ours.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import transformers
from transformers import AutoTokenizer, LlamaForCausalLM

from greedy_prompts import OUR_FIRST_PROMPT, OUR_FIRST_PROMPT_IDS, PROMPTS, STOP, bytes_to_unicode, compare, parse_runner


def token_bytes(tok) -> list[bytes]:
    """Bytes of every token id (GPT-2 byte-level alphabet, special tokens as their text)."""
    byte_of = {c: b for b, c in bytes_to_unicode().items()}
    special = set(tok.all_special_tokens) | {t.content for t in tok.added_tokens_decoder.values()}
    out = [b""] * len(tok)
    for piece, i in tok.get_vocab().items():
        if piece in special or any(c not in byte_of for c in piece):
            out[i] = piece.encode()
        else:
            out[i] = bytes(byte_of[c] for c in piece)
    return out


def decode_all(model, tok, max_new: int, stop_id: int):
    outputs, seconds = [], 0.0
    for p in PROMPTS:
        ids = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)["input_ids"]
        started = time.perf_counter()
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new, do_sample=False,
                                 eos_token_id=stop_id, pad_token_id=stop_id, temperature=None, top_p=None, top_k=None)
        seconds += time.perf_counter() - started
        outputs.append(out[0, ids.shape[1]:].tolist())
    return outputs, seconds


def check(name: str, model, tok, answers, runner_tokens, max_new, pieces, stop_id) -> dict:
    outputs, seconds = decode_all(model, tok, max_new, stop_id)
    rows = [compare(o, a, pieces) for o, a in zip(outputs, answers)]
    same = sum(r[0] for r in rows)
    total = sum(len(o) for o in outputs)
    first = {k + 1: r[1] for k, r in enumerate(rows) if not r[0]}
    print(f"{name}: {same}/{len(PROMPTS)} prompts identical; {total} new tokens "
          f"(runner: {runner_tokens}); decoding {seconds:.1f} s"
          + (f"; first differing token (prompt: position) {first}" if first else ""), flush=True)
    for k, (o, a) in enumerate(zip(outputs, answers)):
        if not rows[k][0]:
            print(f"  prompt {k + 1} {PROMPTS[k]!r}\n    runner:       {a!r}\n    transformers: "
                  f"{tok.decode(o)!r}")
    return {"model": name, "identical": same, "prompts": len(PROMPTS), "new_tokens": total,
            "runner_tokens": runner_tokens, "first_difference": first, "seconds": seconds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", nargs=2, action="append", default=[], metavar=("EXPORT_DIR", "RUNNER_STDOUT"))
    ap.add_argument("--gguf", action="append", default=[], help="also check EXPORT_DIR/NAME of the first case")
    ap.add_argument("--gguf-all", action="store_true", help="check the --gguf files of every case")
    ap.add_argument("--max-new", type=int, default=32)
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--print-prompts", action="store_true", help="print PROMPTS, one a line, and exit")
    args = ap.parse_args()
    if args.print_prompts:
        print("\n".join(PROMPTS))
        return 0
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    results, ok = [], True
    for n, (export, runner_out) in enumerate(args.case):
        export = Path(export)
        answers, runner_tokens = parse_runner(Path(runner_out).read_text())
        hf = export / "hf"
        sub = json.loads((hf / "manifest.json").read_text())["sub_model"]
        tok = AutoTokenizer.from_pretrained(hf)
        stop_id = tok.convert_tokens_to_ids(STOP)
        pieces = token_bytes(tok)
        prompt = tok.apply_chat_template([{"role": "user", "content": PROMPTS[0]}], tokenize=False,
                                         add_generation_prompt=True)
        ids = tok(prompt)["input_ids"]
        same_prompt = prompt == OUR_FIRST_PROMPT and ids == OUR_FIRST_PROMPT_IDS
        print(f"{export.name} ({sub}): first prompt through the chat template: {len(ids)} tokens, same text and ids "
              f"as sortednet-rs: {same_prompt}")
        if not same_prompt:
            diff = next((k for k, (a, b) in enumerate(zip(ids, OUR_FIRST_PROMPT_IDS)) if a != b),
                        min(len(ids), len(OUR_FIRST_PROMPT_IDS)))
            print(f"  first differing prompt id at {diff}: {ids[diff:diff + 5]} vs ours "
                  f"{OUR_FIRST_PROMPT_IDS[diff:diff + 5]}")
        started = time.perf_counter()
        model = LlamaForCausalLM.from_pretrained(hf, torch_dtype=torch.float32).eval()
        print(f"  loaded hf/ in {time.perf_counter() - started:.1f} s")
        r = check(f"{export.name} hf/ (f32)", model, tok, answers, runner_tokens, args.max_new, pieces, stop_id)
        r.update(export=export.name, sub_model=sub, file="hf/model.safetensors (f32)", same_prompt_ids=same_prompt)
        results.append(r)
        ok = ok and same_prompt and r["identical"] == len(PROMPTS)
        del model
        if n == 0 or args.gguf_all:
            for name in args.gguf:
                started = time.perf_counter()
                model = LlamaForCausalLM.from_pretrained(export, gguf_file=name, torch_dtype=torch.float32).eval()
                gtok = AutoTokenizer.from_pretrained(export, gguf_file=name)
                gprompt = gtok.apply_chat_template([{"role": "user", "content": PROMPTS[0]}], tokenize=False,
                                                   add_generation_prompt=True)
                gsame = gtok(gprompt)["input_ids"] == OUR_FIRST_PROMPT_IDS
                print(f"  loaded {name} through transformers' GGUF loader in {time.perf_counter() - started:.1f} s; "
                      f"its own tokenizer gives our first-prompt ids: {gsame}")
                # Decoded with the hf/ tokenizer: the GGUF's tokenizer is checked on the prompt above.
                r = check(f"{export.name} {name}", model, tok, answers, runner_tokens, args.max_new, pieces, stop_id)
                r.update(export=export.name, sub_model=sub, file=name, same_prompt_ids=gsame)
                results.append(r)
                del model
    print("\n| sub-model | export | file | prompts identical | first differing token (prompt: position) | new tokens (transformers / runner) |")
    print("|---|---|---|---:|---|---|")
    for r in results:
        first = ", ".join(f"{k}: {v}" for k, v in r["first_difference"].items()) or "–"
        print(f"| {r['sub_model']} | {r['export']} | {r['file']} | {r['identical']}/{r['prompts']} | {first} | "
              f"{r['new_tokens']} / {r['runner_tokens']} |")
    if args.json:
        args.json.write_text(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__,
                                         "max_new": args.max_new, "prompts": PROMPTS, "results": results}, indent=1))
    return 0 if ok and results else 1


if __name__ == "__main__":
    sys.exit(main())
