"""Exported SmolLM2 sub-models in llama.cpp, and a real k-quant file made by llama.cpp (issue 30).

llama.cpp is the tool most people run GGUF files with. This script drives its own programs,
built from the llama.cpp sources that PyPI ships (see docs/results/export-interop.md for the
build), so nothing here reimplements it:

* `--case GGUF RUNNER_STDOUT`: `llama-completion` greedy-decodes (`--temp 0`) the 20 prompts of
  `greedy_prompts.PROMPTS` from `GGUF` (a file `sorted-runner export` wrote, or any SmolLM2
  GGUF), ChatML-wrapped exactly as `sorted-runner generate` wraps them, and the text is compared
  with what `sorted-runner generate` printed for the same file and sub-model (`RUNNER_STDOUT`).
  For the first prompt the script also checks that llama.cpp tokenizes the ChatML text to
  sortednet-rs's ids (`OUR_FIRST_PROMPT_IDS`).
* `--quantize SRC DST TYPE`: `llama-quantize --allow-requantize SRC DST TYPE` (e.g. `Q4_K_M`),
  llama.cpp's own quantizer, to make a real k-quant file that sortednet-rs must read.

llama.cpp computes with the file's types (quantized dot products, f16 activations for F16
weights); sortednet-rs dequantizes to f32 and computes in f32. So agreement is reported, not
required: identical texts show that both read the same model; near-ties may flip.

    python3 benches/peer/check_llama_cpp.py --llama-cpp BUILD/bin \\
        --case /tmp/exp/L20-H9-F1536/model-f16.gguf /tmp/greedy/L20-f16.out

Prints a Markdown table (one row per case) and exits 1 if a case's first prompt is tokenized
differently from sortednet-rs (a tokenizer or template fault rather than arithmetic).
"""

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from greedy_prompts import OUR_FIRST_PROMPT, OUR_FIRST_PROMPT_IDS, PROMPTS, parse_runner

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chatml(prompt: str) -> str:
    """The ChatML text `sorted-runner generate` feeds the model for `prompt`."""
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n"
            "<|im_start|>assistant\n")


def completion(binary: Path, gguf: Path, prompt: str, max_new: int, verbose_prompt: bool) -> tuple[bytes, str, float]:
    """Greedy continuation of `prompt` by llama-completion: (stdout bytes, stderr, seconds)."""
    cmd = [str(binary / "llama-completion"), "-m", str(gguf), "-p", prompt, "-n", str(max_new), "--temp", "0",
           "-no-cnv", "--no-display-prompt", "--no-warmup", "-t", "2", "-c", "512", "-s", "0",
           # Flash attention crashed (SIGSEGV) in this CPU build of llama.cpp at 0ce8cd1; the plain path is used.
           "-fa", "off",
           # The KV cache in f32 as ours (llama.cpp's default is f16).
           "-ctk", "f32", "-ctv", "f32"]
    if verbose_prompt:
        cmd.append("--verbose-prompt")
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, timeout=600)
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])} ... failed ({out.returncode}):\n{out.stderr.decode(errors='replace')[-3000:]}")
    return out.stdout, out.stderr.decode(errors="replace"), seconds


def prompt_ids(stderr: str) -> list[int]:
    """The prompt's token ids from llama-completion's `--verbose-prompt` listing (`  id -> 'piece'`)."""
    # Lines look like `0.00.233.064 I   1780 -> 'What'` (llama.cpp's log prefix, then the id).
    return [int(m.group(1)) for m in re.finditer(r"^(?:\S+ I)?\s+(\d+) -> '", stderr, re.M)]


def answer_text(stdout: bytes) -> str:
    """The generated text as the runner prints it: lossy UTF-8, without llama.cpp's end marker and
    the surrounding white space (llama-completion prints a newline after the hidden prompt and
    several after the answer; the runner's answers are compared stripped too)."""
    text = stdout.decode("utf-8", errors="replace").rstrip()
    if text.endswith("[end of text]"):
        text = text[: -len("[end of text]")]
    return text.strip()


def check_case(binary: Path, gguf: Path, runner_out: Path, max_new: int) -> dict:
    answers, runner_tokens = parse_runner(runner_out.read_text())
    same, first_diff, seconds, ids_same = 0, {}, 0.0, None
    for k, (p, want) in enumerate(zip(PROMPTS, answers)):
        text = chatml(p)
        if k == 0:
            assert text == OUR_FIRST_PROMPT
        stdout, stderr, s = completion(binary, gguf, text, max_new, verbose_prompt=k == 0)
        seconds += s
        if k == 0:
            ids = prompt_ids(stderr)
            ids_same = ids == OUR_FIRST_PROMPT_IDS
            if not ids_same:
                print(f"  first prompt ids differ: llama.cpp {ids[:12]}... ({len(ids)}), ours "
                      f"{OUR_FIRST_PROMPT_IDS[:12]}... ({len(OUR_FIRST_PROMPT_IDS)})")
        got, want = answer_text(stdout), want.strip()
        if got == want:
            same += 1
        else:
            at = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            first_diff[k + 1] = at
            print(f"  prompt {k + 1} {p!r} differs at character {at}\n    runner:    {want!r}\n    llama.cpp: {got!r}")
    print(f"{gguf}: {same}/{len(PROMPTS)} prompts identical; first prompt ids as ours: {ids_same}; "
          f"llama.cpp {seconds:.1f} s for 20 prompts (process start and load included)", flush=True)
    return {"file": str(gguf), "identical": same, "first_difference": first_diff, "ids_same": ids_same,
            "seconds": seconds, "runner_tokens": runner_tokens}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llama-cpp", type=Path, required=True, help="folder with llama-completion and llama-quantize")
    ap.add_argument("--case", nargs=2, action="append", default=[], metavar=("GGUF", "RUNNER_STDOUT"))
    ap.add_argument("--quantize", nargs=3, metavar=("SRC", "DST", "TYPE"))
    ap.add_argument("--max-new", type=int, default=32)
    args = ap.parse_args()
    if args.quantize:
        src, dst, kind = args.quantize
        started = time.perf_counter()
        out = subprocess.run([str(args.llama_cpp / "llama-quantize"), "--allow-requantize", src, dst, kind, "2"],
                             capture_output=True, text=True)
        print(out.stdout[-2000:] + out.stderr[-4000:])
        if out.returncode != 0:
            return 1
        print(f"llama-quantize {kind}: {time.perf_counter() - started:.1f} s, {Path(dst).stat().st_size} bytes")
    rows = [check_case(args.llama_cpp, Path(g), Path(r), args.max_new) for g, r in args.case]
    if rows:
        print("\n| file | prompts identical | first differing character (prompt: position) | first prompt ids as ours |")
        print("|---|---:|---|---|")
        for r in rows:
            first = ", ".join(f"{k}: {v}" for k, v in r["first_difference"].items()) or "–"
            print(f"| {r['file']} | {r['identical']}/{len(PROMPTS)} | {first} | {r['ids_same']} |")
    return 0 if all(r["ids_same"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
