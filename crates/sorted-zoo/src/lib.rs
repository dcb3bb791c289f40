#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod bert;
mod classifier;
mod classifier_config;
mod cnn;
mod conv_norm;
pub mod deploy;
mod depth_order;
pub mod llama;
mod mlp;
mod mobilenet_v2;
mod residual;
mod resnet;
mod scaling;
mod staged_network;

pub use bert::{
    MAX_BERT_PARAMETER_BYTES, Pooling, SortedBert, SortedBertConfig, SortedBertLayer, WeightsError,
    safetensors_tensor_names,
};
pub use classifier::{DenseClassifier, SortedClassifier};
pub use classifier_config::{
    AnyClassifier, BatchNormStats, ClassifierConfig, ClassifierVisitor, CnnOptions, MlpOptions, MobileNetV2Options,
    ModelConfigError, ResNetOptions, TrainableClassifierVisitor,
};
pub use cnn::{DenseCnn, SortedCnn, SortedCnnConfig};
pub use conv_norm::{DenseConvNorm, SortedConvNorm};
pub use depth_order::{DepthOrder, activation_order};
pub use mlp::{DenseMlp, SortedMlp, SortedMlpConfig};
pub use mobilenet_v2::{
    DenseInvertedResidual, DenseMobileNetV2, MobileNetV2Stage, SortedInvertedResidual, SortedMobileNetV2,
    SortedMobileNetV2Config,
};
pub use resnet::{DenseBasicBlock, DenseResNet, ResNetStage, SortedBasicBlock, SortedResNet, SortedResNetConfig};
pub use staged_network::StagedNetworkConfig;
