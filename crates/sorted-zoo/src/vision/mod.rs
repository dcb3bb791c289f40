//! The sorted vision models (image classifiers) and what they share: `mlp.rs`, `cnn.rs`,
//! `resnet.rs`, `mobilenet_v2.rs`; their building blocks (`conv_norm.rs`, `residual.rs`); depth
//! orders and width scaling (`depth_order.rs`, `scaling.rs`); the staged-network config the
//! ResNet and MobileNetV2 share (`staged_network.rs`) and the part of their passes they share
//! (`staged_body.rs`); the classifier trait (`classifier.rs`)
//! the `[model.*]` config that builds any of them (`classifier_config.rs`) and the importance
//! sort of any of them (`classifier_sort.rs`); a training step's batches and sub-model loss
//! (`classifier_training.rs`); evaluating their sub-models (`evaluate.rs`); loading
//! a dense sub-model exported to a folder (`dense_export.rs`).

pub(crate) mod classifier;
pub(crate) mod classifier_config;
pub(crate) mod classifier_sort;
pub(crate) mod classifier_training;
pub(crate) mod cnn;
pub(crate) mod conv_norm;
pub(crate) mod dense_export;
pub(crate) mod depth_order;
pub(crate) mod evaluate;
pub(crate) mod mlp;
pub(crate) mod mobilenet_v2;
pub(crate) mod residual;
pub(crate) mod resnet;
pub(crate) mod scaling;
pub(crate) mod staged_body;
pub(crate) mod staged_network;
