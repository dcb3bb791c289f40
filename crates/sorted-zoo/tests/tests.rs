//! Nesting invariants of the zoo models, compiled as one integration binary.
// One range per tensor dimension: a 1-D parameter takes a one-element array on purpose.
#![allow(clippy::single_range_in_vec_init)]

mod bert;
mod bert_evaluate;
mod bert_export;
mod checks;
mod dense_export;
mod deploy;
mod deploy_choice;
mod gguf;
mod host_decode;
mod llama;
mod llama_export;
mod mobilenet_v2;
mod models;
mod resnet;
mod row_product;
mod sorting;
