"""PyTorch peer of `sorted-runner generate` (issue 29): SmolLM2-135M greedy decoding in
`transformers`, timed on the same prompts and token budget, and the memory bandwidth of this
machine for the physical bound of decoding (weight bytes per token / bandwidth).

    G=data/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
    sorted-runner export --gguf $G --sub-model L30-H9-F1536 --out /tmp/exp/full   # writes hf/ (f32)
    target/peer-venv/bin/python benches/peer/smollm2_decode.py --hf /tmp/exp/full/hf --max-new 32 --threads 2

The 20 prompts are `greedy_prompts.PROMPTS` (ChatML through the export's chat template, as the
runner wraps them); `generate(do_sample=False, max_new_tokens=N)` stops at `<|im_end|>` like the
runner. Prints one JSON line: tokens, seconds, tokens/s (decoding only: each prompt's prefill is
included, as in the runner's figure), torch's thread count, and the measured copy bandwidth
(GB/s, a 512 MiB array copied, best of 5).
"""

import argparse
import json
import time

import numpy as np
import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from greedy_prompts import PROMPTS


def bandwidth_gb_s() -> float:
    """Bytes read plus bytes written per second by a large array copy (best of 5)."""
    src = np.ones(128 * 1024 * 1024, dtype=np.float32)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hf", help="an f32 Hugging Face folder written by `sorted-runner export`")
    parser.add_argument("--print-prompts", action="store_true", help="print the 20 prompts, one per line, and exit")
    parser.add_argument("--max-new", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bandwidth", action="store_true", help="also measure the copy bandwidth")
    args = parser.parse_args()
    if args.print_prompts:
        print("\n".join(PROMPTS))
        return
    if not args.hf:
        parser.error("--hf is required")
    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(args.hf)
    model = LlamaForCausalLM.from_pretrained(args.hf, torch_dtype=torch.float32).eval()
    stop = tok.convert_tokens_to_ids("<|im_end|>")
    encoded = [
        torch.tensor([tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=True,
                                              return_dict=False)])
        for p in PROMPTS
    ]
    tokens = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for ids in encoded:
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=args.max_new, eos_token_id=stop, pad_token_id=stop)
            tokens += out.shape[1] - ids.shape[1]
    seconds = time.perf_counter() - start
    result = {"tokens": tokens, "seconds": seconds, "tokens_per_second": tokens / seconds,
              "threads": torch.get_num_threads(), "torch": torch.__version__}
    if args.bandwidth:
        result["copy_bandwidth_gb_s"] = bandwidth_gb_s()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
