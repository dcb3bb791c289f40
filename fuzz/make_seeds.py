#!/usr/bin/env python3
"""Writes the small seed corpus of every fuzz target into fuzz/seeds/<target>/ (issue 27).

Each seed is a few hundred bytes to a few KB, hand-laid byte by byte after the formats'
documentation in the crates: valid files, and near-valid ones (one field wrong). Crash
reproducers found by fuzzing are added to the folders by hand, named `crash-<what>`.
Run from the repository root: python3 fuzz/make_seeds.py
"""
import gzip, json, os, shutil, struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def put(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    assert len(data) < 20_000, (target, name, len(data))
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


# IDX: big-endian magic, counts, then bytes.
images = struct.pack(">IIII", 0x803, 2, 2, 3) + bytes(range(12))
labels = struct.pack(">II", 0x801, 3) + bytes([3, 1, 4])
put("idx", "images.idx3", images)
put("idx", "labels.idx1", labels)
put("idx", "labels.idx1.gz", gzip.compress(labels, mtime=0))
put("idx", "images-truncated.idx3", images[:-1])
put("idx", "images-trailing.idx3", images + b"\0")
put("idx", "images-zero-rows.idx3", struct.pack(">IIII", 0x803, 1, 0, 3))

# CIFAR: CIFAR-10 records are a label byte and 3072 pixels; CIFAR-100 two label bytes.
pixels = bytes((i * 7) % 256 for i in range(3072))
put("cifar", "cifar10-one.bin", bytes([3]) + pixels)
put("cifar", "cifar100-one.bin", bytes([19, 99]) + pixels)
put("cifar", "cifar10-bad-label.bin", bytes([10]) + pixels)
put("cifar", "cifar10-short.bin", bytes([1]) + pixels[:100])

# CSV: the Rotten Tomatoes layout, quoting, and a Gutenberg-wrapped work.
put("csv", "reviews.csv",
    "category,text,source,date\n"
    "fresh,\"Funny, \"\"warm\"\"\nand long.\",critic,2001\r\n"
    "rotten,Dull.,paper,2002\n"
    "plot,A plot.,site,2003\n")
put("csv", "unterminated.csv", "category,text,source,date\nfresh,\"open,x,y\n")
put("csv", "quote-inside.csv", "a,b\"c\n")
put("csv", "lone-cr.csv", "a,b\rc\n")
put("csv", "hamlet_gut.txt",
    "The Project Gutenberg EBook of Hamlet\n*** START OF THE PROJECT GUTENBERG EBOOK HAMLET ***\n"
    "HAMLET\n\nTo be, or not to be\n*** END OF THE PROJECT GUTENBERG EBOOK HAMLET ***\nlicense\n")
put("csv", "bad-utf8.csv", b"a,b\n\xff\xfe,c\n")

# WordPiece vocabularies: one token per line.
vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", ",", "!", "na", "##ive",
         "caf", "##e", "東", "京", "x", "##x", "h", "##i"]
put("wordpiece_vocab", "vocab.txt", "\n".join(vocab) + "\n")
put("wordpiece_vocab", "vocab-crlf.txt", "\ufeff" + "\r\n".join(vocab) + "\r\n")
put("wordpiece_vocab", "vocab-duplicate.txt", "\n".join(vocab + ["hello"]) + "\n")
put("wordpiece_vocab", "vocab-no-cls.txt", "\n".join(v for v in vocab if v != "[CLS]") + "\n")


# GGUF: little-endian; strings are u64 length + bytes; see crates/sorted-zoo/src/llama/gguf.rs.
def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


U32, F32, STRING, ARRAY, I32 = 4, 6, 8, 9, 5


def kv(key, vtype, value):
    return gstr(key) + struct.pack("<I", vtype) + value


def str_array(items):
    return struct.pack("<IQ", STRING, len(items)) + b"".join(gstr(s) for s in items)


def gguf(metadata, tensors, alignment=32):
    """metadata: list of kv bytes; tensors: list of (name, dims fastest-first, type id, data)."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata)) + b"".join(metadata)
    data = b""
    for name, dims, type_id, raw in tensors:
        out += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", type_id, len(data))
        data += raw
        data += b"\0" * (-len(data) % alignment)
    out += b"\0" * (-len(out) % alignment)
    return out + data


def f32s(n, scale=0.01):
    return b"".join(struct.pack("<f", ((i * 37) % 17 - 8) * scale) for i in range(n))


# A tiny llama: vocab 8, hidden 8, 1 layer, 2 query heads / 1 KV head of 4, FFN 8.
V, D, F, HQ, HKV, HD = 8, 8, 8, 2, 1, 4
meta = [
    kv("general.architecture", STRING, gstr("llama")),
    kv("llama.block_count", U32, struct.pack("<I", 1)),
    kv("llama.embedding_length", U32, struct.pack("<I", D)),
    kv("llama.feed_forward_length", U32, struct.pack("<I", F)),
    kv("llama.attention.head_count", U32, struct.pack("<I", HQ)),
    kv("llama.attention.head_count_kv", U32, struct.pack("<I", HKV)),
    kv("llama.rope.freq_base", F32, struct.pack("<f", 10000.0)),
    kv("llama.attention.layer_norm_rms_epsilon", F32, struct.pack("<f", 1e-5)),
    kv("llama.vocab_size", U32, struct.pack("<I", V)),
]
tensors = [("token_embd.weight", [D, V], 0, f32s(D * V))]
for part, dims in [("attn_norm", [D]), ("attn_q", [D, HQ * HD]), ("attn_k", [D, HKV * HD]),
                   ("attn_v", [D, HKV * HD]), ("attn_output", [HQ * HD, D]), ("ffn_norm", [D]),
                   ("ffn_gate", [D, F]), ("ffn_up", [D, F]), ("ffn_down", [F, D])]:
    n = 1
    for d in dims:
        n *= d
    tensors.append((f"blk.0.{part}.weight", dims, 0, f32s(n)))
tensors.append(("output_norm.weight", [D], 0, f32s(D)))
put("gguf", "tiny-llama.gguf", gguf(meta, tensors))
put("gguf", "tiny-llama-vocab-mismatch.gguf",
    gguf(meta + [kv("tokenizer.ggml.tokens", ARRAY, str_array(["a", "b", "c"]))], tensors))
# Quantized blocks: Q8_0 (f16 scale + 32 bytes), Q4_0 (f16 scale + 16 bytes), Q4_1, F16, BF16.
quant = [
    ("q8_0", [32], 8, struct.pack("<H", 0x3400) + bytes(range(32))),
    ("q4_0", [32], 2, struct.pack("<H", 0x4000) + bytes(range(16))),
    ("q4_1", [32], 3, struct.pack("<HH", 0x3800, 0xBC00) + bytes(range(16))),
    ("f16", [4], 1, struct.pack("<4H", 0x3C00, 0xC000, 0x7C00, 0x0001)),
    ("bf16", [2], 30, struct.pack("<2H", 0x3F80, 0xC040)),
    ("q4_k", [256], 12, bytes(144)),
]
put("gguf", "quantized.gguf", gguf([kv("general.alignment", U32, struct.pack("<I", 64)),
                                     kv("nested", ARRAY, struct.pack("<IQ", ARRAY, 1) + struct.pack("<IQ", I32, 2)
                                        + struct.pack("<ii", -1, 7))], quant, alignment=64))
put("gguf", "huge-tensor.gguf", gguf([], [("huge", [1 << 30], 0, f32s(4))]))
put("gguf", "huge-count.gguf", b"GGUF" + struct.pack("<IQQ", 3, 0, 1 << 40))


# A GGUF tokenizer: GPT-2's byte alphabet as the base tokens, a few merges, control tokens.
def gpt2_bytes():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
base = gpt2_bytes()
merges = ["H e", "l l", "He ll", "Hell o", "Ġ W", "o r", "ĠW or"]
merged = ["He", "ll", "Hell", "Hello", "ĠW", "or", "ĠWor"]
tokens = special + base + merged
tok_meta = [
    kv("tokenizer.ggml.model", STRING, gstr("gpt2")),
    kv("tokenizer.ggml.pre", STRING, gstr("smollm")),
    kv("tokenizer.ggml.tokens", ARRAY, str_array(tokens)),
    kv("tokenizer.ggml.token_type", ARRAY,
       struct.pack("<IQ", I32, len(tokens)) + b"".join(struct.pack("<i", 3 if t in special else 1) for t in tokens)),
    kv("tokenizer.ggml.merges", ARRAY, str_array(merges)),
]
put("gguf_tokenizer", "tokenizer.gguf", gguf(tok_meta, []))
put("gguf_tokenizer", "tokenizer-gpt2-pre.gguf", gguf([m for m in tok_meta if b"ggml.pre" not in m[:30]], []))
put("gguf_tokenizer", "tokenizer-bad-merge.gguf",
    gguf(tok_meta[:4] + [kv("tokenizer.ggml.merges", ARRAY, str_array(["H e", "x y"]))], []))
put("gguf_tokenizer", "tokenizer-duplicate.gguf",
    gguf([kv("tokenizer.ggml.tokens", ARRAY, str_array(["a", "b", "a"])),
          kv("tokenizer.ggml.merges", ARRAY, str_array([]))], []))


# safetensors: u64 header length, JSON header, data.
def safetensors(header, data):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


good = {"__metadata__": {"format": "pt"},
        "embeddings.word_embeddings.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "pooler.dense.bias": {"dtype": "F16", "shape": [2], "data_offsets": [16, 20]},
        "embeddings.position_ids": {"dtype": "I64", "shape": [1, 2], "data_offsets": [20, 36]}}
put("safetensors_header", "model.safetensors", safetensors(good, bytes(36)))
put("safetensors_header", "truncated.safetensors", safetensors(good, bytes(30)))
put("safetensors_header", "shape-mismatch.safetensors",
    safetensors({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)))
put("safetensors_header", "header-too-long.safetensors", struct.pack("<Q", 1 << 40) + b"{}")

# BERT config.json.
minilm = {"architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
          "hidden_dropout_prob": 0.1, "hidden_size": 384, "initializer_range": 0.02,
          "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
          "model_type": "bert", "num_attention_heads": 12, "num_hidden_layers": 6,
          "pad_token_id": 0, "type_vocab_size": 2, "vocab_size": 30522}
put("bert_config", "minilm-config.json", json.dumps(minilm, indent=2))
put("bert_config", "tiny-config.json", json.dumps({**minilm, "hidden_size": 16, "intermediate_size": 32,
                                                    "num_attention_heads": 4, "num_hidden_layers": 2,
                                                    "vocab_size": 64, "max_position_embeddings": 32}))
put("bert_config", "huge-vocab-config.json", json.dumps({**minilm, "vocab_size": 1 << 40}))
put("bert_config", "roberta-config.json", json.dumps({**minilm, "model_type": "roberta"}))
put("bert_config", "relu-config.json", json.dumps({**minilm, "hidden_act": "relu"}))

# Experiment TOML: the committed configs, and one with an error.
configs = os.path.join(os.path.dirname(ROOT), "..", "configs")
for name in ["mnist-mlp.toml", "mnist-cnn.toml", "fashion-resnet.toml", "fashion-mobilenetv2.toml",
             "rt-minilm-sorted.toml"]:
    with open(os.path.join(configs, name), "rb") as f:
        put("experiment_toml", name, f.read())
with open(os.path.join(configs, "mnist-mlp.toml")) as f:
    put("experiment_toml", "mnist-mlp-zero-batch.toml", f.read().replace("batch_size =", "batch_size = 0 #"))

# Checkpoint manifests (sorted-sched's manifest.json).
sha = "ab" * 32
manifest = {"format": "sortednet-checkpoint/1", "step": 120,
            "files": {"model.mpk": {"bytes": 1234, "sha256": sha}, "optim.mpk": {"bytes": 99, "sha256": sha}}}
put("checkpoint_manifest", "manifest.json", json.dumps(manifest, indent=2))
put("checkpoint_manifest", "manifest-negative-step.json", json.dumps({**manifest, "step": -1}))
put("checkpoint_manifest", "manifest-no-files.json", json.dumps({"format": "sortednet-checkpoint/1", "step": 0}))
