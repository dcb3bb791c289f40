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

/// Burn's backends keep one random generator per process, which `B::seed` resets and every
/// initialisation draws from. Each test holds this guard for its whole body, so that a test's
/// seeded draws are its own: two tests seeding and drawing at once made weights (and a
/// tolerance or two) depend on how their draws interleaved.
pub(crate) fn rng_guard() -> std::sync::MutexGuard<'static, ()> {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    RNG.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
