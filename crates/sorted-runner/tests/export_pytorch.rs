//! Reference logits of exported sub-models for `benches/peer/check_image_export.py`, which
//! checks that the PyTorch modules of `docs/export-pytorch.md` reproduce them.
//!
//! Ignored: it needs folders the script prepares. `SORTED_EXPORT_LOGITS` lists export folders
//! (separated by `:`); each must hold `images.f32`, normalised images as little-endian `f32` in
//! `[n, channels, height, width]` order (the manifest's `input_shape`). The test loads every
//! folder's `model.safetensors` with `load_export` and writes the dense model's logits to
//! `logits.burn.f32` in the same folder (`[n, n_classes]`, little-endian `f32`).
//!
//! ```text
//! SORTED_EXPORT_LOGITS=/tmp/a/export:/tmp/b/export \
//!     cargo test -p sorted-runner --test integration export_pytorch -- --ignored
//! ```

#![cfg(feature = "flex")]

use std::path::Path;

use burn::backend::Flex;
use burn::prelude::*;
use sorted_runner::{ExportWeights, load_export};

#[test]
#[ignore = "needs export folders and images; run by benches/peer/check_image_export.py"]
fn writes_reference_logits_of_exported_sub_models() {
    let dirs = std::env::var("SORTED_EXPORT_LOGITS").expect("SORTED_EXPORT_LOGITS: export folders separated by `:`");
    let device = Default::default();
    for dir in dirs.split(':').filter(|d| !d.is_empty()).map(Path::new) {
        let (model, manifest) = load_export::<Flex>(dir, ExportWeights::Safetensors, &device).unwrap();
        let bytes = std::fs::read(dir.join("images.f32")).unwrap();
        let pixels: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let [c, h, w] = manifest.dense.input_shape;
        let n = pixels.len() / (c * h * w);
        assert_eq!(n * c * h * w, pixels.len(), "{}: images.f32 is not a whole number of images", dir.display());
        let images = Tensor::<Flex, 1>::from_floats(pixels.as_slice(), &device).reshape([n, c, h, w]);
        let logits = model.forward(images).into_data().to_vec::<f32>().unwrap();
        assert_eq!(logits.len(), n * manifest.dense.n_classes);
        let out: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.join("logits.burn.f32"), out).unwrap();
        println!("{}: {} {n} images", dir.display(), manifest.dense.sub_model);
    }
}
