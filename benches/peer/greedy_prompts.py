"""What the greedy-decoding checks of exported SmolLM2 sub-models share (issue 30): the 20 prompts,
sortednet-rs's ChatML ids of the first one, the parser of `sorted-runner generate`'s output and
the byte-level comparison of another tool's new tokens with the runner's printed answer. No
third-party imports, so both `check_llama_greedy.py` (transformers) and `check_llama_cpp.py`
(llama.cpp) use it.
"""

import re

# The 20 prompts of the lossless-decoding test on the real model
# (crates/sorted-zoo/tests/llama.rs, smollm2_self_speculative_decoding_equals_greedy_on_20_prompts).
PROMPTS = [
    "What is the capital of France?",
    "Name a primary colour.",
    "What is 2 + 3?",
    "Write one line about the moon.",
    "Who wrote Hamlet?",
    "What do cows drink?",
    "Say hello in Spanish.",
    "What colour is the sky on a clear day?",
    "Give a synonym for happy.",
    "How many legs does a spider have?",
    "What is the opposite of cold?",
    "Name a planet in the solar system.",
    "What is water made of?",
    "Complete: the early bird catches the",
    "What season comes after winter?",
    "Name a fruit that is yellow.",
    "What is the largest ocean?",
    "Spell the word cat backwards.",
    "What language is spoken in Brazil?",
    "Count from one to five.",
]

# sortednet-rs's ids for PROMPTS[0] in ChatML with SmolLM2's system prompt: the REFERENCE entry
# of crates/sorted-data/tests/byte_bpe.rs (computed by HF `tokenizers` 0.23.3 on SmolLM2's own
# tokenizer.json; the test asserts ByteLevelBpe::encode gives them, on the real GGUF vocabulary).
OUR_FIRST_PROMPT_IDS = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407,
                        19712, 8182, 2, 198, 1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531,
                        198]
OUR_FIRST_PROMPT = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
                    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
STOP = "<|im_end|>"


def parse_runner(text: str) -> tuple[list[str], int | None]:
    """The answers `sorted-runner generate` printed (`> {prompt}\\n{answer}\\n\\n` each, then
    the timing table), in PROMPTS order, and the `tokens` of its greedy row."""
    answers, at = [], 0
    starts = []
    for p in PROMPTS:
        marker = f"> {p}\n"
        i = text.index(marker, at)
        starts.append((i, i + len(marker)))
        at = i + len(marker)
    table = text.index("\n| mode | tokens |", at)
    for k, (_, body) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else table + 1
        answer = text[body:end]
        assert answer.endswith("\n\n"), f"unexpected runner output after prompt {k + 1}"
        answers.append(answer[:-2])
    m = re.search(r"^\| greedy[^|]*\| (\d+) \|", text[table:], re.M)
    return answers, int(m.group(1)) if m else None


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map of byte-level BPE."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def compare(new_ids: list[int], answer: str, pieces: list[bytes]) -> tuple[bool, int | None]:
    """Whether the new tokens decode to the runner's answer, and else the first token (0-based)
    whose bytes leave it (the answer's length in tokens if ours is a strict prefix)."""
    ours = b"".join(pieces[i] for i in new_ids)
    if ours.endswith(STOP.encode()):
        ours = ours[: -len(STOP)]
    if ours.decode("utf-8", errors="replace") == answer:
        return True, None
    want, at = answer.encode(), 0
    for k, i in enumerate(new_ids):
        piece = pieces[i]
        if piece == STOP.encode() and at == len(want):
            return False, k + 1
        # The runner's text is lossily decoded: a split UTF-8 character there reads U+FFFD.
        if not want.startswith(piece, at):
            return False, k
        at += len(piece)
    return False, len(new_ids)
