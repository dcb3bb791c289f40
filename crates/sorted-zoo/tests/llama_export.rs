//! Issue 30: a LLaMA sub-model exported as GGUF reloads into `SortedLlama` with the same logits,
//! and its Hugging Face folder, run by an independent HF-layout forward pass (half-split RoPE,
//! `rotate_half`), gives the sorted sub-model's logits: proof that the RoPE row permutation is
//! undone. With `SORTED_EXPORT_DIR` set, the HF folder and the expected logits are also left
//! there for `benches/peer/check_llama_export.py` (transformers).

use std::path::Path;

use burn::backend::Flex;
use burn::module::Param;
use burn::prelude::*;
use sha2::{Digest, Sha256};
use sorted_data::{BpePreTokenizer, ByteLevelBpe, GgmlType, GgufFile, gpt2_byte_char};
use sorted_nn::{TransformerSpace, TransformerSpaceConfig, TransformerSubModel};
use sorted_zoo::llama::{
    KvCache, LlamaExportOptions, SortedLlama, SortedLlamaConfig, export_llama_gguf, export_llama_hf,
};

type F = Flex;

/// A toy byte-level BPE: three special tokens, the 256 byte characters, one token per merge.
fn tokenizer() -> ByteLevelBpe {
    let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"].map(String::from).to_vec();
    tokens.extend((0..=255u8).map(|byte| gpt2_byte_char(byte).to_string()));
    let merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld"];
    tokens.extend(merges.iter().map(|merge| merge.replace(' ', "")));
    ByteLevelBpe::new(tokens, &merges, "toy")
        .unwrap()
        .with_pre_tokenizer(BpePreTokenizer::SmolLm)
        .with_special_tokens(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        .unwrap()
}

/// Values uniform in `lo..hi` from a seeded splitmix64 stream: the same weights in every run,
/// whatever other tests draw from the backend's shared generator meanwhile.
struct Values(u64);

impl Values {
    fn tensor<const D: usize>(
        &mut self,
        shape: [usize; D],
        lo: f32,
        hi: f32,
        device: &<F as burn::tensor::backend::BackendTypes>::Device,
    ) -> Tensor<F, D> {
        let n = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| {
                self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = self.0;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                lo + (hi - lo) * (z >> 40) as f32 / (1u64 << 24) as f32
            })
            .collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }
}

/// 3 layers, hidden 32, 4 query heads over 2 KV groups of 8 features, SwiGLU 64, the toy
/// tokenizer's vocabulary; weights of std 0.16 and norm scales in 0.5..1.5, so that every
/// mistake moves the logits.
fn model(vocab: usize) -> (SortedLlama<F>, TransformerSpace) {
    let device = Default::default();
    let config = SortedLlamaConfig::new(vocab, 32, 3, 4, 2, 8, 64).with_rope_theta(10_000.0);
    let mut model = config.init::<F>(&device);
    let mut values = Values(30);
    // Uniform in +-0.277: std 0.16.
    let mut weight = |p: Param<Tensor<F, 2>>| {
        let dims = p.dims();
        p.map(|_| values.tensor(dims, -0.277, 0.277, &device))
    };
    model.embedding = weight(model.embedding);
    for l in &mut model.layers {
        for linear in [&mut l.query, &mut l.key, &mut l.value, &mut l.output, &mut l.gate, &mut l.up, &mut l.down] {
            linear.weight = weight(linear.weight.clone());
        }
    }
    let mut norm = |p: Param<Tensor<F, 1>>| {
        let dims = p.dims();
        p.map(|_| values.tensor(dims, 0.5, 1.5, &device))
    };
    model.norm.weight = norm(model.norm.weight);
    for l in &mut model.layers {
        l.attention_norm.weight = norm(l.attention_norm.weight.clone());
        l.ffn_norm.weight = norm(l.ffn_norm.weight.clone());
    }
    let space = TransformerSpace::new(
        TransformerSpaceConfig { depths: vec![2, 3], heads: vec![2, 4], ffn: vec![32, 64], hidden: None },
        32,
    )
    .unwrap();
    (model, space)
}

const TOKENS: [i32; 6] = [1, 200, 7, 265, 42, 2];

fn logits(model: &SortedLlama<F>, sub: &TransformerSubModel) -> Vec<f32> {
    let ids = Tensor::<F, 1, Int>::from_ints(TOKENS, &Default::default()).reshape([1, TOKENS.len()]);
    model.forward(ids, sub, &mut KvCache::new()).into_data().to_vec::<f32>().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The single sub-model of a dense model loaded back: all of it.
fn whole(model: &SortedLlama<F>) -> TransformerSubModel {
    let l0 = &model.layers[0];
    TransformerSpace::new(
        TransformerSpaceConfig {
            depths: vec![model.layers.len()],
            heads: vec![l0.num_heads],
            ffn: vec![l0.gate.d_output_max()],
            hidden: None,
        },
        model.embedding.dims()[1],
    )
    .unwrap()
    .largest()
}

#[test]
fn issue_30_gguf_export_of_a_sub_model_reloads_with_the_sorted_logits() {
    let _rng = crate::rng_guard();
    let bpe = tokenizer();
    let (model, space) = model(bpe.vocab_size());
    let options = LlamaExportOptions { tokenizer: Some(&bpe), name: "toy".into(), ..Default::default() };
    let dir = tempfile::tempdir().unwrap();
    for sub in ["L2-H2-F32", "L3-H4-F64", "L3-H2-F64"].map(|s| space.parse_sub_model(s).unwrap()) {
        let expected = logits(&model, &sub);
        for (ty, tolerance) in [(GgmlType::F32, 1e-5), (GgmlType::F16, 1e-2), (GgmlType::Q8_0, 5e-2)] {
            let path = dir.path().join(format!("{sub}-{}.gguf", ty.name()));
            export_llama_gguf(&model, &sub, &options, ty, &path).unwrap();
            let file = GgufFile::read(&path).unwrap();
            assert_eq!(file.tensor_info("blk.0.attn_q.weight").unwrap().ggml_type(), ty);
            assert_eq!(file.tensor_info("blk.0.attn_norm.weight").unwrap().ggml_type(), GgmlType::F32);
            assert_eq!(file.u32("llama.attention.key_length").unwrap(), 8);
            assert_eq!(file.u32("tokenizer.ggml.eos_token_id").unwrap(), 2);
            let loaded = SortedLlama::<F>::from_gguf(&file, &Default::default()).unwrap();
            assert_eq!(loaded.layers.len(), sub.depth);
            assert_eq!(loaded.layers[0].num_heads, sub.heads);
            // F32 is exact up to summation order; F16 and Q8_0 within their rounding, relative
            // to the largest logit.
            let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
            let diff = max_diff(&logits(&loaded, &whole(&loaded)), &expected);
            assert!(diff <= tolerance * scale.max(1.0), "{sub} {ty}: logits differ by {diff} (largest {scale})");
            // The tokenizer survives: same vocabulary, merges, special tokens and encoding.
            let back = ByteLevelBpe::from_gguf(&file).unwrap();
            assert_eq!(back.tokens(), bpe.tokens());
            assert_eq!(back.merges(), bpe.merges());
            assert_eq!(back.special_tokens().collect::<Vec<_>>(), bpe.special_tokens().collect::<Vec<_>>());
            let text = "<|im_start|>hello world 42<|im_end|>";
            assert_eq!(back.encode(text), bpe.encode(text));
        }
    }
    // No file is left half-written, and a sub-model that does not fit is refused by name.
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains("tmp")));
    let wide = TransformerSpace::new(
        TransformerSpaceConfig { depths: vec![3], heads: vec![3], ffn: vec![64], hidden: None },
        32,
    )
    .unwrap()
    .largest();
    let err = export_llama_gguf(&model, &wide, &options, GgmlType::F32, dir.path().join("x.gguf")).unwrap_err();
    let message = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(message.contains("L3-H3-F64") && message.contains("KV"), "{message}");
}

/// Name to shape and f32 values.
type Tensors = std::collections::HashMap<String, (Vec<usize>, Vec<f32>)>;

/// The f32 tensors of a safetensors file, parsed by hand, and its metadata.
fn read_safetensors(path: &Path) -> (serde_json::Value, Tensors) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    let mut tensors = std::collections::HashMap::new();
    for (name, info) in header.as_object().unwrap() {
        if name == "__metadata__" {
            continue;
        }
        assert_eq!(info["dtype"], "F32");
        let shape: Vec<usize> = serde_json::from_value(info["shape"].clone()).unwrap();
        let [start, end]: [usize; 2] = serde_json::from_value(info["data_offsets"].clone()).unwrap();
        let values: Vec<f32> =
            data[start..end].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(values.len(), shape.iter().product::<usize>(), "{name}");
        tensors.insert(name.clone(), (shape, values));
    }
    (header["__metadata__"].clone(), tensors)
}

/// Hugging Face's `LlamaForCausalLM` forward pass in plain f32 loops, from `config.json` and the
/// safetensors tensors: RMSNorm, RoPE on the two halves of each head (`rotate_half`), grouped
/// query attention (head `h` reads KV head `h / (heads / kv_heads)`), SwiGLU, tied head.
fn hf_reference_logits(dir: &Path, tokens: &[i32]) -> Vec<f32> {
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let (_, t) = read_safetensors(&dir.join("model.safetensors"));
    let get = |k: &str| config[k].as_u64().unwrap() as usize;
    let (d, n_layers, nh, nkv, hd, vocab) = (
        get("hidden_size"),
        get("num_hidden_layers"),
        get("num_attention_heads"),
        get("num_key_value_heads"),
        get("head_dim"),
        get("vocab_size"),
    );
    let (eps, theta) = (config["rms_norm_eps"].as_f64().unwrap(), config["rope_theta"].as_f64().unwrap());
    let w = |name: &str| &t[name].1;
    let rms = |x: &[f32], g: &[f32]| {
        let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
        let r = 1.0 / (ms + eps as f32).sqrt();
        x.iter().zip(g).map(|(v, g)| v * r * g).collect::<Vec<f32>>()
    };
    // y = W x for W [out, in].
    let matvec = |m: &[f32], x: &[f32]| {
        m.chunks_exact(x.len()).map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum()).collect::<Vec<f32>>()
    };
    let rope = |v: &mut [f32], pos: usize| {
        let half = hd / 2;
        for head in v.chunks_exact_mut(hd) {
            let rotated: Vec<f32> = (0..hd)
                .map(|j| {
                    let i = j % half;
                    let angle = pos as f64 * theta.powf(-(2.0 * i as f64) / hd as f64);
                    let (sin, cos) = (angle.sin() as f32, angle.cos() as f32);
                    // rotate_half(x) = cat(-x2, x1)
                    let rot = if j < half { -head[j + half] } else { head[j - half] };
                    head[j] * cos + rot * sin
                })
                .collect();
            head.copy_from_slice(&rotated);
        }
    };
    let embed = w("model.embed_tokens.weight");
    let mut xs: Vec<Vec<f32>> =
        tokens.iter().map(|&id| embed[id as usize * d..(id as usize + 1) * d].to_vec()).collect();
    for l in 0..n_layers {
        let p = |s: &str| format!("model.layers.{l}.{s}.weight");
        let (mut qs, mut ks, mut vs) = (Vec::new(), Vec::new(), Vec::new());
        for (pos, x) in xs.iter().enumerate() {
            let h = rms(x, w(&p("input_layernorm")));
            let mut q = matvec(w(&p("self_attn.q_proj")), &h);
            let mut k = matvec(w(&p("self_attn.k_proj")), &h);
            rope(&mut q, pos);
            rope(&mut k, pos);
            qs.push(q);
            ks.push(k);
            vs.push(matvec(w(&p("self_attn.v_proj")), &h));
        }
        for (pos, x) in xs.iter_mut().enumerate() {
            let mut attended = vec![0f32; nh * hd];
            for head in 0..nh {
                let kv = head / (nh / nkv);
                let q = &qs[pos][head * hd..(head + 1) * hd];
                let scores: Vec<f32> = (0..=pos)
                    .map(|j| {
                        q.iter().zip(&ks[j][kv * hd..(kv + 1) * hd]).map(|(a, b)| a * b).sum::<f32>()
                            / (hd as f32).sqrt()
                    })
                    .collect();
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                let z: f32 = e.iter().sum();
                for (j, e) in e.iter().enumerate() {
                    for c in 0..hd {
                        attended[head * hd + c] += e / z * vs[j][kv * hd + c];
                    }
                }
            }
            let o = matvec(w(&p("self_attn.o_proj")), &attended);
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
            let h = rms(x, w(&p("post_attention_layernorm")));
            let gate = matvec(w(&p("mlp.gate_proj")), &h);
            let up = matvec(w(&p("mlp.up_proj")), &h);
            let act: Vec<f32> = gate.iter().zip(&up).map(|(g, u)| g / (1.0 + (-g).exp()) * u).collect();
            let down = matvec(w(&p("mlp.down_proj")), &act);
            x.iter_mut().zip(&down).for_each(|(a, b)| *a += b);
        }
    }
    let mut out = Vec::with_capacity(tokens.len() * vocab);
    for x in &xs {
        out.extend(matvec(embed, &rms(x, w("model.norm.weight"))));
    }
    out
}

#[test]
fn issue_30_hf_export_run_in_hf_layout_gives_the_sorted_logits() {
    let _rng = crate::rng_guard();
    let bpe = tokenizer();
    let (model, space) = model(bpe.vocab_size());
    let options = LlamaExportOptions { tokenizer: Some(&bpe), name: "toy".into(), ..Default::default() };
    let dir = tempfile::tempdir().unwrap();
    let keep = std::env::var_os("SORTED_EXPORT_DIR");
    for sub in ["L2-H2-F32", "L3-H4-F64"].map(|s| space.parse_sub_model(s).unwrap()) {
        let out = dir.path().join(sub.to_string());
        let manifest = export_llama_hf(&model, &sub, &options, &out).unwrap();
        let expected = logits(&model, &sub);
        let diff = max_diff(&hf_reference_logits(&out, &TOKENS), &expected);
        assert!(diff < 1e-4, "{sub}: HF reference logits differ by {diff}");

        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["architectures"][0], "LlamaForCausalLM");
        assert_eq!(config["num_hidden_layers"], sub.depth);
        assert_eq!(config["num_attention_heads"], sub.heads);
        assert_eq!(config["num_key_value_heads"], 2);
        assert_eq!(config["intermediate_size"], sub.ffn);
        assert_eq!(config["tie_word_embeddings"], true);
        assert_eq!((config["bos_token_id"].clone(), config["eos_token_id"].clone()), (1.into(), 2.into()));
        let (metadata, tensors) = read_safetensors(&out.join("model.safetensors"));
        assert_eq!(metadata, serde_json::json!({ "format": "pt" }));
        assert_eq!(tensors["model.layers.0.self_attn.q_proj.weight"].0, [sub.heads * 8, 32]);
        assert!(!tensors.contains_key("lm_head.weight"));
        let tok: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("tokenizer.json")).unwrap()).unwrap();
        assert_eq!(tok["model"]["vocab"]["Ġworld"], bpe.token_id("Ġworld").unwrap());
        assert_eq!(tok["model"]["merges"][3], "hell o");
        let tok_config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("tokenizer_config.json")).unwrap()).unwrap();
        assert_eq!(tok_config["eos_token"], "<|im_end|>");
        assert!(tok_config["chat_template"].as_str().unwrap().contains("<|im_start|>"));
        // The manifest's digests are those of the files.
        let mut names: Vec<_> =
            std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "config.json",
                "generation_config.json",
                "manifest.json",
                "model.safetensors",
                "tokenizer.json",
                "tokenizer_config.json"
            ]
        );
        for (name, digest) in &manifest.sha256 {
            let actual: String =
                Sha256::digest(std::fs::read(out.join(name)).unwrap()).iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(&actual, digest, "{name}");
        }
        if let Some(keep) = &keep {
            let target = Path::new(keep).join(sub.to_string());
            export_llama_hf(&model, &sub, &options, &target).unwrap();
            let prompt = sorted_data::chatml_prompt(&[("user", "hello world 42")], true);
            let expected = serde_json::json!({
                "tokens": TOKENS, "logits": expected, "vocab": bpe.vocab_size(),
                "chat_prompt": prompt, "chat_ids": bpe.encode(&prompt),
            });
            std::fs::write(target.join("expected_logits.json"), expected.to_string()).unwrap();
            export_llama_gguf(&model, &sub, &options, GgmlType::F32, target.join("model-f32.gguf")).unwrap();
        }
    }
    // Exporting again replaces the folder whole, leaving nothing else behind.
    let sub = space.smallest();
    export_llama_hf(&model, &sub, &options, dir.path().join("L2-H2-F32")).unwrap();
    let mut left: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(left, ["L2-H2-F32", "L3-H4-F64"]);
}
