#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod bert;
pub mod deploy;
mod export_files;
pub mod llama;
pub mod sorting;
mod vision;

pub use bert::{
    BERT_HF_EXPORT_FORMAT, BertExportError, BertExportOptions, BertHfManifest, BertModelConfig, BertSubModelScore,
    LinearProbe, MAX_BERT_PARAMETER_BYTES, Pooling, ProbeError, ProbeOptions, RandomBertSizes, SortedBert,
    SortedBertConfig, SortedBertLayer, WeightsError, bert_classification_loss, bert_teacher_log_probs,
    evaluate_bert_sub_models, export_bert_hf, safetensors_tensor_names, sentence_features,
};
pub use vision::classifier::{DenseClassifier, SortedClassifier};
pub use vision::classifier_config::{
    AnyClassifier, BatchNormStats, ClassifierConfig, ClassifierMap, ClassifierVisitor, CnnOptions, MlpOptions,
    MobileNetV2Options, ModelConfigError, ResNetOptions, TrainableClassifierVisitor,
};
pub use vision::classifier_sort::{ClassifierSort, sort_classifier};
pub use vision::classifier_training::{
    AUGMENT_SEED_SALT, ClassifierStep, ClassifierTraining, DATA_SEED_SALT, TrainableClassifier,
};
pub use vision::cnn::{DenseCnn, SortedCnn, SortedCnnConfig};
pub use vision::conv_norm::{DenseConvNorm, SortedConvNorm};
pub use vision::dense_export::{
    CheckedDense, DENSE_WEIGHT_FILES, DenseExportError, DenseExportManifest, EXPORT_FORMAT, EXPORT_TOLERANCE,
    ExportWeights, ExportedModel, extract_checked, load_dense_export, write_dense_export,
};
pub use vision::depth_order::{DepthOrder, activation_order};
pub use vision::evaluate::{
    CALIBRATION_SEED_SALT, SubModelEvaluation, calibrate_sub_model, calibration_batches, evaluate_sub_model,
    sub_model_accuracy, test_batches,
};
pub use vision::mlp::{DenseMlp, SortedMlp, SortedMlpConfig};
pub use vision::mobilenet_v2::{
    DenseInvertedResidual, DenseMobileNetV2, MobileNetV2Stage, SortedInvertedResidual, SortedMobileNetV2,
    SortedMobileNetV2Config,
};
pub use vision::resnet::{
    DenseBasicBlock, DenseResNet, ResNetStage, SortedBasicBlock, SortedResNet, SortedResNetConfig,
};
pub use vision::staged_network::StagedNetworkConfig;
