//! Issue 30: a BERT sub-model exported as a Hugging Face folder loads back into a `SortedBert`
//! of the folder's sizes (dropped heads zero-padded to Hugging Face's head count) with the
//! sorted sub-model's logits, for `cls` pooling (`BertForSequenceClassification`) and `mean`
//! pooling (`BertModel` + classifier). With `SORTED_EXPORT_DIR` set, the folders and their
//! expected logits are also left there for `benches/peer/check_bert_export.py`
//! (transformers).

use std::path::Path;

use burn::backend::Flex;
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::Distribution;
use sha2::{Digest, Sha256};
use sorted_nn::{TransformerSpace, TransformerSpaceConfig, TransformerSubModel};
use sorted_zoo::{
    BertExportError, BertExportOptions, Pooling, SortedBert, SortedBertConfig, export_bert_hf, safetensors_tensor_names,
};

type F = Flex;

/// The tiny BERT (hidden 16, 3 layers, 4 heads of 4, FFN 32, vocabulary 64) with weights of
/// std 0.3 and random biases, norm scales and shifts, so every mapping mistake moves the logits.
fn model(pooling: Pooling) -> SortedBert<F> {
    let device = Default::default();
    F::seed(&device, 30);
    let mut model = SortedBertConfig::tiny().with_pooling(pooling).with_dropout(0.0).init::<F>(&device);
    let scale = |p: Param<Tensor<F, 2>>| p.map(|t| t.mul_scalar(15.0));
    let random = |p: Param<Tensor<F, 1>>, lo: f64, hi: f64| {
        let d = p.dims()[0];
        p.map(|_| Tensor::random([d], Distribution::Uniform(lo, hi), &device))
    };
    let linear = |l: &mut sorted_nn::SortedLinear<F>| {
        l.weight = scale(l.weight.clone());
        l.bias = l.bias.take().map(|b| random(b, -0.5, 0.5));
    };
    let norm = |n: &mut sorted_nn::SortedLayerNorm<F>| {
        n.gamma = random(n.gamma.clone(), 0.5, 1.5);
        n.beta = random(n.beta.clone(), -0.5, 0.5);
    };
    for t in [&mut model.word_embeddings, &mut model.position_embeddings, &mut model.token_type_embeddings] {
        t.weight = scale(t.weight.clone());
    }
    norm(&mut model.embedding_norm);
    for l in &mut model.layers {
        let a = &mut l.attention;
        for p in [&mut a.query, &mut a.key, &mut a.value, &mut a.output, &mut l.intermediate, &mut l.output] {
            linear(p);
        }
        norm(&mut l.attention_norm);
        norm(&mut l.output_norm);
    }
    if let Some(p) = model.pooler.as_mut() {
        linear(p);
    }
    linear(&mut model.classifier);
    model
}

fn space() -> TransformerSpace {
    TransformerSpace::new(
        TransformerSpaceConfig { depths: vec![2, 3], heads: vec![2, 4], ffn: vec![16, 32], hidden: Some(vec![8, 16]) },
        16,
    )
    .unwrap()
}

/// Two sentences, the second padded.
const IDS: [[i32; 7]; 2] = [[3, 17, 9, 41, 22, 60, 4], [3, 8, 55, 4, 0, 0, 0]];
const MASK: [[f32; 7]; 2] = [[1.0; 7], [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]];

fn logits(model: &SortedBert<F>, sub: &TransformerSubModel) -> Vec<f32> {
    let device = Default::default();
    let ids = Tensor::<F, 2, Int>::from_ints(IDS, &device);
    let mask = Tensor::<F, 2>::from_floats(MASK, &device);
    model.forward(ids, None, mask, sub).into_data().to_vec::<f32>().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The f32 values of tensor `name` of a safetensors file, with its shape.
fn tensor(bytes: &[u8], name: &str) -> (Vec<usize>, Vec<f32>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let entry = &header[name];
    assert_eq!(entry["dtype"], "F32", "{name}");
    let shape = entry["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let [start, end] = [0, 1].map(|i| entry["data_offsets"][i].as_u64().unwrap() as usize + 8 + n);
    (shape, bytes[start..end].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
}

/// The exported folder loaded back with our own loader: a `SortedBert` of `config.json`'s
/// sizes, its classifier from `model.safetensors`, run as a whole.
fn reload(dir: &Path, pooling: Pooling) -> Vec<f32> {
    let device = Default::default();
    let config = SortedBertConfig::from_hf_config(&dir.join("config.json")).unwrap().with_pooling(pooling);
    let mut model = config.init::<F>(&device).load_hf_safetensors(&dir.join("model.safetensors")).unwrap();
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let (shape, w) = tensor(&bytes, "classifier.weight");
    assert_eq!(shape, [2, config.hidden_size]);
    let w = Tensor::<F, 2>::from_data(TensorData::new(w, shape), &device).transpose();
    let (_, b) = tensor(&bytes, "classifier.bias");
    model.classifier.weight = Param::from_tensor(w);
    model.classifier.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::new(b, [2]), &device)));
    let whole = TransformerSpace::new(
        TransformerSpaceConfig {
            depths: vec![config.num_layers],
            heads: vec![config.num_heads],
            ffn: vec![config.intermediate_size],
            hidden: None,
        },
        config.hidden_size,
    )
    .unwrap()
    .largest();
    logits(&model, &whole)
}

#[test]
fn issue_30_bert_sub_models_export_to_hugging_face_and_reload_with_their_logits() {
    let _rng = crate::rng_guard();
    let vocab = b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n";
    let options = BertExportOptions { name: "tiny".into(), vocab: Some(vocab), ..Default::default() };
    let dir = tempfile::tempdir().unwrap();
    let keep = std::env::var_os("SORTED_EXPORT_DIR");
    let space = space();
    for pooling in [Pooling::Mean, Pooling::Cls] {
        let model = model(pooling);
        let kind = if pooling == Pooling::Cls { "cls" } else { "mean" };
        // Dropped heads (zero-padded), the full model, and a narrower hidden width.
        for (text, hf_heads) in [("L2-H2-F16-D16", 4), ("L3-H4-F32-D16", 4), ("L2-H2-F16-D8", 2)] {
            let sub = space.parse_sub_model(text).unwrap();
            let out = dir.path().join(kind).join(sub.to_string());
            let manifest = export_bert_hf(&model, &sub, &options, &out).unwrap();
            let expected = logits(&model, &sub);
            let diff = max_diff(&reload(&out, pooling), &expected);
            assert!(diff < 1e-4, "{kind} {sub}: reloaded logits differ by {diff}");
            assert!(expected.iter().any(|v| v.abs() > 0.1), "{kind} {sub}: logits too small to test: {expected:?}");

            let config: serde_json::Value =
                serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
            let arch = if pooling == Pooling::Cls { "BertForSequenceClassification" } else { "BertModel" };
            assert_eq!(config["architectures"][0], arch);
            assert_eq!((manifest.architecture.as_str(), manifest.hf_heads), (arch, hf_heads));
            assert_eq!(config["num_attention_heads"], hf_heads);
            assert_eq!(config["hidden_size"], sub.hidden);
            assert_eq!(config["sortednet"]["active_heads"], sub.heads);
            let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
            let names = safetensors_tensor_names(&bytes, "model.safetensors").unwrap();
            assert!(names.iter().all(|n| n.starts_with("bert.") || n.starts_with("classifier.")), "{names:?}");
            assert_eq!(names.iter().any(|n| n.starts_with("bert.pooler.")), pooling == Pooling::Cls);
            assert_eq!(names.iter().filter(|n| n.ends_with("intermediate.dense.weight")).count(), sub.depth);
            let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
            assert_eq!(header["__metadata__"]["format"], "pt");
            // The dropped heads' query rows are zero.
            let (_, q) = tensor(&bytes, "bert.encoder.layer.0.attention.self.query.weight");
            assert!(q[sub.heads * 4 * sub.hidden..].iter().all(|&v| v == 0.0));
            assert_eq!(std::fs::read(out.join("vocab.txt")).unwrap(), vocab);
            for (file, sha) in &manifest.sha256 {
                let hex: String =
                    Sha256::digest(std::fs::read(out.join(file)).unwrap()).iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(&hex, sha, "{file}");
            }
            assert_eq!(manifest.sha256.len(), 4);

            if let Some(keep) = &keep {
                let kept = Path::new(keep).join(kind).join(sub.to_string());
                export_bert_hf(&model, &sub, &options, &kept).unwrap();
                let json = serde_json::json!({
                    "pooling": kind, "input_ids": IDS, "attention_mask": MASK, "logits": expected,
                });
                std::fs::write(kept.join("expected_logits.json"), serde_json::to_vec_pretty(&json).unwrap()).unwrap();
            }
        }
        // A hidden width of 8 holds only 2 heads of 4: 4 active heads cannot be laid out.
        let sub = space.parse_sub_model("L2-H4-F16-D8").unwrap();
        let err = export_bert_hf(&model, &sub, &options, dir.path().join("bad")).unwrap_err();
        assert!(matches!(err, BertExportError::Heads { .. }), "{err}");
        assert!(!dir.path().join("bad").exists());
    }
}
