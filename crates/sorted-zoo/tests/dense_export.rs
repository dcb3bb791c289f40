//! A dense sub-model written to a folder loads back through `load_dense_export`, without the
//! runner: from either weight file, and refused when the file is another sub-model's.

use burn::backend::Flex;
use burn::prelude::*;
use burn::record::DefaultRecorder;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
use sorted_nn::{NestingSpace, NormPass};
use sorted_zoo::{
    AnyClassifier, ClassifierConfig, DenseExportError, DenseExportManifest, EXPORT_FORMAT, ExportWeights, MlpOptions,
    SortedClassifier, load_dense_export,
};

/// Writes the dense `sub` of `mlp` into `dir` as the runner's `export` does; returns its manifest.
fn write(
    dir: &std::path::Path,
    mlp: &sorted_zoo::SortedMlp<Flex>,
    space: &NestingSpace,
    sub: &str,
) -> DenseExportManifest {
    let sub = space.parse_sub_model(sub).unwrap();
    let dense = mlp.extract(&sub, None);
    std::fs::create_dir_all(dir).unwrap();
    dense.clone().save_file(dir.join("model"), &DefaultRecorder::new()).unwrap();
    let mut store = SafetensorsStore::from_file(dir.join("model.safetensors"))
        .with_to_adapter(BurnToPyTorchAdapter)
        .overwrite(true);
    dense.save_into(&mut store).unwrap();
    mlp_manifest(&sub)
}

/// The manifest of the 1x4x4-input, 3-class MLP sub-model `sub` these tests export (hashes
/// left to the writer).
pub fn mlp_manifest(sub: &sorted_nn::SubModel) -> DenseExportManifest {
    DenseExportManifest {
        format: EXPORT_FORMAT.into(),
        model: "mlp".into(),
        input_shape: [1, 4, 4],
        input_normalisation: vec![(0.5, 0.5)],
        n_classes: 3,
        sub_model: sub.to_string(),
        widths: sub.widths().to_vec(),
        sha256: Default::default(),
    }
}

#[test]
fn a_dense_export_loads_back_from_either_file_and_another_sub_models_is_refused() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let space = crate::deploy::space(&[4, 8]);
    let config = ClassifierConfig::Mlp(MlpOptions::default());
    let AnyClassifier::Mlp(mlp) = config.init::<Flex>(&space, [1, 4, 4], 3, &device) else { unreachable!() };
    let images = Tensor::<Flex, 4>::random([5, 1, 4, 4], burn::tensor::Distribution::Default, &device);
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    let manifest = write(&small, &mlp, &space, "8-4");
    let sliced = mlp.forward(images.clone(), &space.parse_sub_model("8-4").unwrap(), &mut NormPass::Batch);
    for weights in [ExportWeights::Safetensors, ExportWeights::BurnRecord] {
        let dense = load_dense_export::<Flex>(&small, weights, &manifest, &config, &space, &device).unwrap();
        dense
            .forward(images.clone())
            .into_data()
            .assert_approx_eq::<f32>(&sliced.clone().into_data(), burn::tensor::Tolerance::absolute(1e-5));
    }

    // Another sub-model's weights: the tensors (no digests) and the record's shapes are checked.
    write(&dir.path().join("large"), &mlp, &space, "8-8");
    for file in ["model.mpk", "model.safetensors"] {
        std::fs::copy(dir.path().join("large").join(file), small.join(file)).unwrap();
    }
    let err =
        load_dense_export::<Flex>(&small, ExportWeights::Safetensors, &manifest, &config, &space, &device).unwrap_err();
    // Burn's store refuses the mis-shaped tensor itself, naming it.
    let message = format!("{err}: {}", std::error::Error::source(&err).map(|s| s.to_string()).unwrap_or_default());
    assert!(message.contains("model.safetensors") && message.contains("layers.1"), "{message}");
    let err =
        load_dense_export::<Flex>(&small, ExportWeights::BurnRecord, &manifest, &config, &space, &device).unwrap_err();
    assert!(matches!(&err, DenseExportError::Shape { param, .. } if param.starts_with("layers.1")), "{err}");

    // With a digest, the file is refused before it is read.
    let mut with_digest = manifest.clone();
    with_digest.sha256.insert("model.mpk".into(), "0".repeat(64));
    let err = load_dense_export::<Flex>(&small, ExportWeights::BurnRecord, &with_digest, &config, &space, &device)
        .unwrap_err();
    assert!(err.to_string().contains("SHA-256") && err.to_string().contains("model.mpk"), "{err}");

    // Another format is refused.
    let other = DenseExportManifest { format: "v0".into(), ..manifest };
    let err =
        load_dense_export::<Flex>(&small, ExportWeights::Safetensors, &other, &config, &space, &device).unwrap_err();
    assert!(matches!(err, DenseExportError::Format { .. }), "{err}");
}
