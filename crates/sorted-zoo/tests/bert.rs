use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, Flex};
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::Distribution;
use sorted_nn::test_util::{assert_no_grad, assert_zero_grad_outside};
use sorted_nn::{SortedLinear, TransformerSpace, TransformerSpaceConfig};
use sorted_zoo::{Pooling, SortedBert, SortedBertConfig};

type F = Flex;
type B = Autodiff<Flex>;

fn tiny_space() -> TransformerSpace {
    TransformerSpace::new(
        TransformerSpaceConfig {
            depths: vec![1, 2, 3],
            heads: vec![1, 2, 4],
            ffn: vec![8, 32],
            hidden: Some(vec![8, 16]),
        },
        16,
    )
    .unwrap()
}

fn inputs<BB: Backend>(device: &BB::Device) -> (Tensor<BB, 2, Int>, Tensor<BB, 2>) {
    let ids = Tensor::<BB, 2, Int>::from_ints([[2, 9, 17, 33, 3], [2, 40, 3, 0, 0]], device);
    let mask = Tensor::<BB, 2>::from_floats([[1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0, 0.0]], device);
    (ids, mask)
}

/// HF-named tensors of a model, as a safetensors file (`[out, in]` linear weights), written by
/// hand so the loader is tested against the format, not against itself.
fn hf_tensors(model: &SortedBert<F>) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let vals = |t: Tensor<F, 2>| t.into_data().to_vec::<f32>().unwrap();
    let vec1 = |t: Tensor<F, 1>| t.into_data().to_vec::<f32>().unwrap();
    let mut out = Vec::new();
    let linear = |out: &mut Vec<_>, name: &str, l: &SortedLinear<F>| {
        let w = l.weight.val();
        let [i, o] = w.dims();
        out.push((format!("{name}.weight"), vec![o, i], vals(w.transpose())));
        out.push((format!("{name}.bias"), vec![o], vec1(l.bias.as_ref().unwrap().val())));
    };
    for (name, t) in [
        ("embeddings.word_embeddings.weight", &model.word_embeddings),
        ("embeddings.position_embeddings.weight", &model.position_embeddings),
        ("embeddings.token_type_embeddings.weight", &model.token_type_embeddings),
    ] {
        out.push((name.to_string(), t.weight.dims().to_vec(), vals(t.weight.val())));
    }
    let norm = |out: &mut Vec<_>, name: &str, n: &sorted_nn::SortedLayerNorm<F>| {
        out.push((format!("{name}.weight"), vec![n.d_model_max()], vec1(n.gamma.val())));
        out.push((format!("{name}.bias"), vec![n.d_model_max()], vec1(n.beta.val())));
    };
    norm(&mut out, "embeddings.LayerNorm", &model.embedding_norm);
    for (i, l) in model.layers.iter().enumerate() {
        let p = format!("encoder.layer.{i}");
        linear(&mut out, &format!("{p}.attention.self.query"), &l.attention.query);
        linear(&mut out, &format!("{p}.attention.self.key"), &l.attention.key);
        linear(&mut out, &format!("{p}.attention.self.value"), &l.attention.value);
        linear(&mut out, &format!("{p}.attention.output.dense"), &l.attention.output);
        norm(&mut out, &format!("{p}.attention.output.LayerNorm"), &l.attention_norm);
        linear(&mut out, &format!("{p}.intermediate.dense"), &l.intermediate);
        linear(&mut out, &format!("{p}.output.dense"), &l.output);
        norm(&mut out, &format!("{p}.output.LayerNorm"), &l.output_norm);
    }
    if let Some(p) = &model.pooler {
        linear(&mut out, "pooler.dense", p);
    }
    out
}

fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, values) in tensors {
        let start = data.len();
        for v in values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let header = serde_json::to_vec(&header).unwrap();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&data);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn safetensors_round_trip_reproduces_the_model_for_every_sub_model() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    F::seed(&device, 21);
    let config = SortedBertConfig::tiny().with_pooling(Pooling::Cls).with_dropout(0.0);
    let source = config.init::<F>(&device);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    write_safetensors(&path, &hf_tensors(&source));
    let mut loaded = config.init::<F>(&device).load_hf_safetensors(&path).unwrap();
    loaded.classifier = source.classifier.clone();
    let space = tiny_space();
    let (ids, mask) = inputs::<F>(&device);
    for sub in space.iter() {
        let a = source.forward(ids.clone(), None, mask.clone(), &sub);
        let b = loaded.forward(ids.clone(), None, mask.clone(), &sub);
        assert_eq!(a.into_data(), b.into_data(), "{sub}");
    }
}

#[test]
fn loader_names_missing_and_mis_shaped_tensors() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let config = SortedBertConfig::tiny();
    let model = config.init::<F>(&device);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");

    let mut tensors = hf_tensors(&model);
    tensors.retain(|(n, _, _)| n != "encoder.layer.1.intermediate.dense.weight");
    write_safetensors(&path, &tensors);
    let err = config.init::<F>(&device).load_hf_safetensors(&path).unwrap_err().to_string();
    assert!(err.contains("bad.safetensors") && err.contains("encoder.layer.1.intermediate.dense.weight"), "{err}");
    assert!(err.contains("[32, 16]"), "{err}");

    let mut tensors = hf_tensors(&model);
    let entry = tensors.iter_mut().find(|(n, _, _)| n == "encoder.layer.2.attention.self.key.weight").unwrap();
    entry.1 = vec![8, 32];
    write_safetensors(&path, &tensors);
    let err = config.init::<F>(&device).load_hf_safetensors(&path).unwrap_err().to_string();
    assert!(err.contains("encoder.layer.2.attention.self.key.weight") && err.contains("[8, 32]"), "{err}");
    assert!(err.contains("expects [16, 16]"), "{err}");

    let err = config.init::<F>(&device).load_hf_safetensors(&dir.path().join("absent.safetensors")).unwrap_err();
    assert!(err.to_string().contains("absent.safetensors"), "{err}");
}

#[test]
fn sub_model_ignores_parameters_outside_its_slices() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    F::seed(&device, 4);
    let model = SortedBertConfig::tiny().with_dropout(0.0).init::<F>(&device);
    let space = tiny_space();
    let sub = space.parse_sub_model("L2-H2-F8-D16").unwrap();
    let (ids, mask) = inputs::<F>(&device);
    let before = model.forward(ids.clone(), None, mask.clone(), &sub);
    // Scramble everything a sub-model L2-H2-F8 must not read: heads 3-4, FFN units 9-32, layer 3.
    let mut scrambled = model.clone();
    let noise = |t: Tensor<F, 2>, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>| {
        let [r, c] = t.dims();
        let n = Tensor::<F, 2>::random([r, c], Distribution::Normal(0.0, 5.0), &t.device());
        let keep = Tensor::<F, 2>::ones([r, c], &t.device()).slice_fill([rows, cols], 0.0);
        t.add(n.mul(keep))
    };
    for layer in &mut scrambled.layers[..2] {
        for l in [&mut layer.attention.query, &mut layer.attention.key, &mut layer.attention.value] {
            l.weight = Param::from_tensor(noise(l.weight.val(), 0..16, 0..8));
        }
        let o = &mut layer.attention.output;
        o.weight = Param::from_tensor(noise(o.weight.val(), 0..8, 0..16));
        let i = &mut layer.intermediate;
        i.weight = Param::from_tensor(noise(i.weight.val(), 0..16, 0..8));
        let o = &mut layer.output;
        o.weight = Param::from_tensor(noise(o.weight.val(), 0..8, 0..16));
    }
    scrambled.layers[2] = SortedBertConfig::tiny().init::<F>(&device).layers.remove(2);
    let after = scrambled.forward(ids.clone(), None, mask.clone(), &sub);
    assert_eq!(before.into_data(), after.into_data());
    // And the full model does read them.
    let full = space.largest();
    let a = model.forward(ids.clone(), None, mask.clone(), &full).into_data();
    assert_ne!(a, scrambled.forward(ids, None, mask, &full).into_data());
}

#[test]
fn gradients_are_zero_outside_the_active_heads_ffn_width_and_depth() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    B::seed(&device, 9);
    let model = SortedBertConfig::tiny().with_dropout(0.0).init::<B>(&device);
    let sub = tiny_space().parse_sub_model("L2-H2-F8-D8").unwrap();
    let (ids, mask) = inputs::<B>(&device);
    let grads = model.forward(ids, None, mask, &sub).powi_scalar(2).sum().backward();
    for layer in &model.layers[..2] {
        assert_zero_grad_outside("query", &layer.attention.query.weight, &grads, [0..8, 0..8]);
        assert_zero_grad_outside("attention.output", &layer.attention.output.weight, &grads, [0..8, 0..8]);
        assert_zero_grad_outside("intermediate", &layer.intermediate.weight, &grads, [0..8, 0..8]);
        assert_zero_grad_outside("output", &layer.output.weight, &grads, [0..8, 0..8]);
        assert_zero_grad_outside("output_norm", &layer.output_norm.gamma, &grads, [0..8]);
    }
    assert_zero_grad_outside("word_embeddings", &model.word_embeddings.weight, &grads, [0..64, 0..8]);
    assert_no_grad("layer 3 query", &model.layers[2].attention.query.weight, &grads);
    assert_zero_grad_outside("classifier", &model.classifier.weight, &grads, [0..8, 0..2]);
}

fn minilm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/minilm")
}

/// all-MiniLM-L6-v2 reproduces the sentence-transformers embedding: mean-pooled, L2-normalised
/// states give cosine 0.7553 between the two sentences, and the first coordinates match a
/// NumPy reference forward pass (computed from the same file, to 1e-4).
#[test]
fn minilm_import_reproduces_the_reference_embeddings() {
    let _rng = crate::rng_guard();
    let dir = minilm_dir();
    if !dir.join("model.safetensors").exists() {
        eprintln!("skipped: no {} (run `cargo xtask data minilm`)", dir.join("model.safetensors").display());
        return;
    }
    let device = Default::default();
    let config = SortedBertConfig::from_hf_config(&dir.join("config.json")).unwrap();
    assert_eq!((config.hidden_size, config.num_layers, config.num_heads), (384, 6, 12));
    let model = config.init::<F>(&device).load_hf_safetensors(&dir.join("model.safetensors")).unwrap();
    let space = TransformerSpace::new(
        TransformerSpaceConfig { depths: vec![6], heads: vec![12], ffn: vec![1536], hidden: None },
        384,
    )
    .unwrap();
    let embed = |ids: &[i32]| {
        let ids = Tensor::<F, 1, Int>::from_ints(ids, &device).reshape([1, ids.len()]);
        let mask = Tensor::<F, 2>::ones(ids.dims(), &device);
        let states = model.encode(ids, None, mask.clone(), &space.largest());
        let pooled = SortedBert::mean_pool(states, mask);
        let norm = pooled.clone().powi_scalar(2).sum().sqrt();
        pooled.div(norm.unsqueeze()).into_data().to_vec::<f32>().unwrap()
    };
    // "A man is eating food." and "A man is eating a piece of bread." (bert-base-uncased ids).
    let a = embed(&[101, 1037, 2158, 2003, 5983, 2833, 1012, 102]);
    let b = embed(&[101, 1037, 2158, 2003, 5983, 1037, 3538, 1997, 7852, 1012, 102]);
    let cosine: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    assert!((cosine - 0.755_337).abs() < 1e-4, "cosine {cosine}");
    let reference = [0.033_241_57, 0.004_406_069, -0.006_276_946, 0.048_378_716, -0.138_702_25, -0.033_617_41];
    for (i, (got, want)) in a.iter().zip(reference).enumerate() {
        assert!((got - want).abs() < 1e-4, "coordinate {i}: {got} vs {want}");
    }
}

/// A BERT `config.json` with the given sizes.
fn hf_config(vocab: u64, hidden: u64, layers: u64) -> String {
    format!(
        r#"{{"model_type": "bert", "vocab_size": {vocab}, "hidden_size": {hidden}, "num_hidden_layers": {layers},
           "num_attention_heads": 4, "intermediate_size": 32, "max_position_embeddings": 32}}"#
    )
}

#[test]
fn issue_27_bert_config_with_huge_sizes_is_refused_naming_the_key() {
    let _rng = crate::rng_guard();
    let ok = SortedBertConfig::from_hf_config_bytes(hf_config(64, 16, 3).as_bytes(), "ok/config.json").unwrap();
    assert_eq!((ok.vocab_size, ok.hidden_size, ok.num_layers), (64, 16, 3));
    for (json, key) in [
        // 2^32 x 2^16 f32 embedding rows: 1 PiB.
        (hf_config(1 << 32, 1 << 16, 1), "`vocab_size` is 4294967296"),
        // The product overflows u64.
        (hf_config(u64::MAX, u64::MAX / 2, 1), "`vocab_size`"),
        (hf_config(64, 1 << 20, 1), "`hidden_size` is 1048576"),
        (hf_config(64, 1024, 1 << 20), "`num_hidden_layers` is 1048576"),
    ] {
        let err = SortedBertConfig::from_hf_config_bytes(json.as_bytes(), "huge/config.json").unwrap_err().to_string();
        assert!(err.contains("huge/config.json") && err.contains(key) && err.contains("17179869184"), "{err}");
    }
    let err = SortedBertConfig::from_hf_config_bytes(b"{\"vocab_size\": -1}", "neg.json").unwrap_err().to_string();
    assert!(err.contains("neg.json") && err.contains("not a BERT config"), "{err}");
}

#[test]
fn issue_27_safetensors_header_is_checked_against_the_file_and_the_shapes() {
    let _rng = crate::rng_guard();
    let file = |header: &str, data: usize| {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.resize(bytes.len() + data, 0);
        bytes
    };
    let ok = file(
        r#"{"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        12,
    );
    assert_eq!(sorted_zoo::safetensors_tensor_names(&ok, "ok.safetensors").unwrap(), ["a", "b"]);
    for (bytes, expected) in [
        (u64::MAX.to_le_bytes().to_vec(), "header length 18446744073709551615 runs past the end"),
        (file(r#"{"a":{"dtype":"F32","shape":[1073741824],"data_offsets":[0,8]}}"#, 8), "needs 4294967296 bytes"),
        (file(r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, 8), "overflows"),
        (file(r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, 8), "data offsets 8..0"),
        (file(r#"{"a":[1,2]}"#, 0), "tensor `a`: bad entry"),
    ] {
        let err = sorted_zoo::safetensors_tensor_names(&bytes, "bad.safetensors").unwrap_err().to_string();
        assert!(err.contains("bad.safetensors") && err.contains(expected), "{expected}: {err}");
    }
}
