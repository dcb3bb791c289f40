//! A BERT sub-model as a Hugging Face folder: `config.json`, `model.safetensors` (HF names,
//! `[out, in]` matrices, f32, `{"format": "pt"}`), `vocab.txt`, `tokenizer_config.json` and
//! `manifest.json` (SHA-256 of every file).
//!
//! **Heads.** Hugging Face's `BertSelfAttention` derives the head size as `hidden_size /
//! num_attention_heads` and has no setting for it, while a sorted sub-model keeps the head size
//! of the allocated model and drops heads, so its attention width `heads * head_dim` is below
//! `hidden_size`. The export therefore keeps `hidden_size / head_dim` heads (the allocated
//! count when the hidden width is the allocated one) and zero-pads the dropped ones: their
//! query, key and value rows and biases and their output-projection columns are zero. A
//! zero-padded head's scores are all zero, so it attends uniformly over value vectors that are
//! all zero, and its output columns are zero too: it adds exactly nothing, and the folder
//! computes the sub-model's function (its parameters are stored but do not count in the
//! sub-model's cost).
//!
//! **Head.** With `Pooling::Cls` the model is exactly `BertForSequenceClassification` (pooler
//! `tanh(dense(h[CLS]))`, then `classifier`). With `Pooling::Mean` no transformers class
//! computes our head, so the folder is a `BertModel` (`architectures: ["BertModel"]`) whose
//! `model.safetensors` also holds `classifier.weight` and `classifier.bias`: the logits are
//! `classifier(mean of last_hidden_state over the attention-masked tokens)` (see
//! `docs/export-bert.md`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};
use sorted_nn::{SortedLinear, SpecError, TransformerSubModel};

use super::model::{Pooling, SortedBert};
use super::weights::transposed;
use crate::export_files::{NamedTensor, pretty_json, safetensors_f32, sha256_hex, write_folder};

/// The format tag of the `manifest.json` [`export_bert_hf`] writes.
pub const BERT_HF_EXPORT_FORMAT: &str = "sortednet-rs bert sub-model, Hugging Face folder v1";

/// Why a BERT sub-model could not be exported. Every variant names the sub-model or the file.
#[derive(Debug, thiserror::Error)]
pub enum BertExportError {
    /// The sub-model does not fit the sorted model it is cut from.
    #[error("sub-model {sub} cannot be cut from this BERT")]
    SubModel {
        /// The sub-model (`L..-H..-F..`).
        sub: String,
        /// Which axis does not fit.
        #[source]
        source: SpecError,
    },
    /// The sub-model's heads cannot be laid out as Hugging Face heads of the allocated head
    /// size (its hidden width is not a multiple of the head size, or holds fewer heads).
    #[error("sub-model {sub}: {why}")]
    Heads {
        /// The sub-model.
        sub: String,
        /// What does not fit.
        why: String,
    },
    /// Writing, syncing or renaming a file or folder failed.
    #[error("writing `{path}`")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// What goes into the folder besides the weights.
#[derive(Clone, Debug)]
pub struct BertExportOptions<'a> {
    /// A name for the manifest (the run, the model).
    pub name: String,
    /// The bytes of the run's `vocab.txt`, copied as is (`None`: no tokenizer files).
    pub vocab: Option<&'a [u8]>,
    /// `tokenizer_config.json`'s `do_lower_case` (our WordPiece tokenizer is uncased: `true`).
    pub do_lower_case: bool,
    /// `tokenizer_config.json`'s `model_max_length` (`None`: the learned positions).
    pub model_max_length: Option<usize>,
}

impl Default for BertExportOptions<'_> {
    fn default() -> Self {
        Self { name: "bert".into(), vocab: None, do_lower_case: true, model_max_length: None }
    }
}

/// `manifest.json` of a BERT export: what was exported, how the heads and the classification
/// head are represented, and the SHA-256 of every other file of the folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BertHfManifest {
    /// [`BERT_HF_EXPORT_FORMAT`].
    pub format: String,
    /// The model's name.
    pub name: String,
    /// The sub-model (`L..-H..-F..`).
    pub sub_model: String,
    /// The transformers class that loads the folder: `BertForSequenceClassification` (`cls`
    /// pooling) or `BertModel` (`mean` pooling, head below).
    pub architecture: String,
    /// `cls` or `mean`.
    pub pooling: String,
    /// How the logits are computed from the loaded model.
    pub head: String,
    /// The sub-model's active heads per layer.
    pub active_heads: usize,
    /// `num_attention_heads` in `config.json`: `hidden_size / head_dim`; the heads after
    /// `active_heads` are zero-padded and contribute nothing.
    pub hf_heads: usize,
    /// Features per head (the allocated model's).
    pub head_dim: usize,
    /// File name to the hex SHA-256 of its bytes.
    pub sha256: BTreeMap<String, String>,
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().expect("f32 data after convert")
}

fn prefix<B: Backend>(p: &Param<Tensor<B, 1>>, n: usize) -> Vec<f32> {
    values(p.val().slice(0..n))
}

/// The `[rows_out, cols_out]` Hugging Face weight and `[rows_out]` bias of the active
/// `[d_in, d_out]` block of `layer`, zero-padded to `rows_out >= d_out` rows and
/// `cols_out >= d_in` columns.
fn hf_linear<B: Backend>(
    layer: &SortedLinear<B>,
    d_in: usize,
    d_out: usize,
    rows_out: usize,
    cols_out: usize,
) -> (Vec<f32>, Vec<f32>) {
    let w = transposed(&values(layer.weight.val().slice([0..d_in, 0..d_out])), d_in, d_out);
    let mut weight = vec![0.0; rows_out * cols_out];
    for r in 0..d_out {
        weight[r * cols_out..r * cols_out + d_in].copy_from_slice(&w[r * d_in..(r + 1) * d_in]);
    }
    let mut bias = vec![0.0; rows_out];
    if let Some(b) = &layer.bias {
        bias[..d_out].copy_from_slice(&prefix(b, d_out));
    }
    (weight, bias)
}

/// The sizes of an export: the sub-model and its Hugging Face head count.
struct Layout {
    sub: TransformerSubModel,
    head_dim: usize,
    hf_heads: usize,
}

impl<B: Backend> SortedBert<B> {
    fn hf_layout(&self, sub: &TransformerSubModel) -> Result<Layout, BertExportError> {
        let attention = &self.layers[0].attention;
        let checks = [
            ("depth (layers)", self.layers.len(), sub.depth),
            ("heads", attention.n_heads, sub.heads),
            ("ffn", self.layers[0].intermediate.d_output_max(), sub.ffn),
            ("hidden", self.hidden_size(), sub.hidden),
        ];
        if let Some((what, allocated, needed)) = checks.into_iter().find(|(_, a, n)| n > a || *n == 0) {
            return Err(BertExportError::SubModel {
                sub: sub.to_string(),
                source: SpecError::Allocation { what: what.into(), allocated, needed },
            });
        }
        let head_dim = attention.head_dim;
        let hf_heads = sub.hidden / head_dim;
        if !sub.hidden.is_multiple_of(head_dim) || hf_heads < sub.heads {
            return Err(BertExportError::Heads {
                sub: sub.to_string(),
                why: format!(
                    "Hugging Face BERT needs hidden_size = num_attention_heads * head size; hidden {} holds {} \
                     heads of {head_dim}, the sub-model uses {}",
                    sub.hidden,
                    sub.hidden as f64 / head_dim as f64,
                    sub.heads
                ),
            });
        }
        Ok(Layout { sub: *sub, head_dim, hf_heads })
    }

    /// The tensors of sub-model `sub` in Hugging Face `BertFor*` names and layout, sorted by
    /// name: `bert.embeddings.*`, `bert.encoder.layer.N.*` (dropped heads zero-padded, see the
    /// module docs), `bert.pooler.dense.*` with `cls` pooling, `classifier.*`.
    pub(crate) fn hf_tensors(&self, sub: &TransformerSubModel) -> Result<Vec<NamedTensor>, BertExportError> {
        let Layout { sub, head_dim, hf_heads } = self.hf_layout(sub)?;
        let (d, f, inner) = (sub.hidden, sub.ffn, sub.heads * head_dim);
        debug_assert_eq!(hf_heads * head_dim, d);
        let table = |t: &sorted_nn::SortedEmbedding<B>| {
            let n = t.n_embedding();
            (vec![n, d], values(t.weight.val().slice([0..n, 0..d])))
        };
        let mut out = Vec::new();
        let mut push = |name: String, shape: Vec<usize>, v: Vec<f32>| out.push((name, shape, v));
        for (name, t) in [
            ("word_embeddings", &self.word_embeddings),
            ("position_embeddings", &self.position_embeddings),
            ("token_type_embeddings", &self.token_type_embeddings),
        ] {
            let (shape, v) = table(t);
            push(format!("bert.embeddings.{name}.weight"), shape, v);
        }
        let mut norm = |name: String, n: &sorted_nn::SortedLayerNorm<B>| {
            push(format!("{name}.weight"), vec![d], prefix(&n.gamma, d));
            push(format!("{name}.bias"), vec![d], prefix(&n.beta, d));
        };
        norm("bert.embeddings.LayerNorm".into(), &self.embedding_norm);
        let mut linears = Vec::new();
        for (i, l) in self.layers[..sub.depth].iter().enumerate() {
            let p = format!("bert.encoder.layer.{i}");
            norm(format!("{p}.attention.output.LayerNorm"), &l.attention_norm);
            norm(format!("{p}.output.LayerNorm"), &l.output_norm);
            let a = &l.attention;
            // Query, key, value: rows of the dropped heads zero; output: their columns zero.
            linears.push((format!("{p}.attention.self.query"), hf_linear(&a.query, d, inner, d, d), [d, d]));
            linears.push((format!("{p}.attention.self.key"), hf_linear(&a.key, d, inner, d, d), [d, d]));
            linears.push((format!("{p}.attention.self.value"), hf_linear(&a.value, d, inner, d, d), [d, d]));
            linears.push((format!("{p}.attention.output.dense"), hf_linear(&a.output, inner, d, d, d), [d, d]));
            linears.push((format!("{p}.intermediate.dense"), hf_linear(&l.intermediate, d, f, f, d), [f, d]));
            linears.push((format!("{p}.output.dense"), hf_linear(&l.output, f, d, d, f), [d, f]));
        }
        if let Some(pooler) = &self.pooler {
            linears.push(("bert.pooler.dense".into(), hf_linear(pooler, d, d, d, d), [d, d]));
        }
        let c = self.num_classes;
        linears.push(("classifier".into(), hf_linear(&self.classifier, d, c, c, d), [c, d]));
        for (name, (w, b), [rows, cols]) in linears {
            out.push((format!("{name}.weight"), vec![rows, cols], w));
            out.push((format!("{name}.bias"), vec![rows], b));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn hf_config(&self, layout: &Layout, pooling: Pooling) -> Value {
        let sub = &layout.sub;
        let architecture = match pooling {
            Pooling::Cls => "BertForSequenceClassification",
            Pooling::Mean => "BertModel",
        };
        let labels: serde_json::Map<String, Value> =
            (0..self.num_classes).map(|i| (i.to_string(), json!(format!("LABEL_{i}")))).collect();
        let label_ids: serde_json::Map<String, Value> =
            (0..self.num_classes).map(|i| (format!("LABEL_{i}"), json!(i))).collect();
        json!({
            "architectures": [architecture],
            "model_type": "bert",
            "vocab_size": self.word_embeddings.n_embedding(),
            "hidden_size": sub.hidden,
            "num_hidden_layers": sub.depth,
            "num_attention_heads": layout.hf_heads,
            "intermediate_size": sub.ffn,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "classifier_dropout": null,
            "max_position_embeddings": self.position_embeddings.n_embedding(),
            "type_vocab_size": self.token_type_embeddings.n_embedding(),
            "initializer_range": 0.02,
            "layer_norm_eps": self.embedding_norm.epsilon,
            "pad_token_id": 0,
            "position_embedding_type": "absolute",
            "use_cache": true,
            "num_labels": self.num_classes,
            "id2label": labels,
            "label2id": label_ids,
            "problem_type": "single_label_classification",
            "torch_dtype": "float32",
            "sortednet": {
                "sub_model": sub.to_string(),
                "pooling": pooling_name(pooling),
                "active_heads": sub.heads,
                "zero_padded_heads": layout.hf_heads - sub.heads,
                "head_dim": layout.head_dim,
            },
        })
    }
}

fn pooling_name(pooling: Pooling) -> &'static str {
    match pooling {
        Pooling::Cls => "cls",
        Pooling::Mean => "mean",
    }
}

/// `tokenizer_config.json` for transformers' `BertTokenizer` over the copied `vocab.txt`.
fn hf_tokenizer_config(options: &BertExportOptions<'_>, max_len: usize) -> Value {
    json!({
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": options.do_lower_case,
        "do_basic_tokenize": true,
        "tokenize_chinese_chars": true,
        "strip_accents": null,
        "never_split": null,
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
        "model_max_length": options.model_max_length.unwrap_or(max_len),
        "clean_up_tokenization_spaces": true,
    })
}

/// Writes sub-model `sub` of `model` as a Hugging Face folder `out`: `config.json`,
/// `model.safetensors` (f32, `{"format": "pt"}`), with a vocabulary `vocab.txt` and
/// `tokenizer_config.json`, and `manifest.json` with the SHA-256 of the others. `cls` pooling
/// gives a `BertForSequenceClassification`, `mean` pooling a `BertModel` with the classifier
/// beside it; dropped heads are zero-padded (module docs). The folder is written beside `out`
/// under a temporary name, each file synced, then renamed into place; an earlier folder at
/// `out` is replaced.
///
/// # Errors
/// [`BertExportError::SubModel`] or [`BertExportError::Heads`] if `sub` cannot be exported
/// from `model`; [`BertExportError::Io`] naming the file or folder that could not be written.
pub fn export_bert_hf<B: Backend>(
    model: &SortedBert<B>,
    sub: &TransformerSubModel,
    options: &BertExportOptions<'_>,
    out: impl AsRef<Path>,
) -> Result<BertHfManifest, BertExportError> {
    let out = out.as_ref();
    let layout = model.hf_layout(sub)?;
    let pooling = if model.pooler.is_some() { Pooling::Cls } else { Pooling::Mean };
    let config = model.hf_config(&layout, pooling);
    let mut files: Vec<(&str, Vec<u8>)> =
        vec![("config.json", pretty_json(&config)), ("model.safetensors", safetensors_f32(&model.hf_tensors(sub)?))];
    if let Some(vocab) = options.vocab {
        files.push(("vocab.txt", vocab.to_vec()));
        let max_len = model.position_embeddings.n_embedding();
        files.push(("tokenizer_config.json", pretty_json(&hf_tokenizer_config(options, max_len))));
    }
    let (architecture, head) = match pooling {
        Pooling::Cls => (
            "BertForSequenceClassification",
            "logits = classifier(tanh(bert.pooler.dense(last_hidden_state[:, 0]))): \
             BertForSequenceClassification as it is",
        ),
        Pooling::Mean => (
            "BertModel",
            "logits = classifier(sum(last_hidden_state * mask) / sum(mask)) over the attention-masked tokens; \
             classifier.weight [classes, hidden] and classifier.bias are in model.safetensors",
        ),
    };
    let manifest = BertHfManifest {
        format: BERT_HF_EXPORT_FORMAT.into(),
        name: options.name.clone(),
        sub_model: sub.to_string(),
        architecture: architecture.into(),
        pooling: pooling_name(pooling).into(),
        head: head.into(),
        active_heads: sub.heads,
        hf_heads: layout.hf_heads,
        head_dim: layout.head_dim,
        sha256: files.iter().map(|(name, bytes)| ((*name).to_owned(), sha256_hex(bytes))).collect(),
    };
    files.push(("manifest.json", pretty_json(&serde_json::to_value(&manifest).expect("manifest serialises"))));
    write_folder(out, &files).map_err(|f| BertExportError::Io { path: f.path, source: f.source })?;
    Ok(manifest)
}
