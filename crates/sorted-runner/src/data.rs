//! Loading the experiment's data: sorted-data's [`ImageDataConfig::load`], with the config
//! file named in errors.

use anyhow::Context;

use crate::config::Experiment;

/// An experiment's images, with the normalisation its batches use (sorted-data's type).
pub use sorted_data::ImageData as RunData;

/// Loads the experiment's `[data]`.
///
/// # Errors
/// As [`sorted_data::ImageDataConfig::load`], naming the experiment's config file.
pub fn load(exp: &Experiment) -> anyhow::Result<RunData> {
    exp.config.data.load().with_context(|| format!("loading the data of `{}`", exp.source.display()))
}
