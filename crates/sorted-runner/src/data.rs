//! Loading the experiment's data.

use std::path::Path;

use anyhow::Context;
use sorted_data::{ImageSet, Mnist};

use crate::config::DataConfig;

/// Loads MNIST from the configured source and applies the limits.
///
/// # Errors
/// When the folder or its files cannot be read (the error names the file).
pub fn load(config: &DataConfig) -> anyhow::Result<Mnist> {
    let mut data = if config.source == "embedded" {
        Mnist::embedded().context("loading the embedded MNIST subset")?
    } else {
        let dir = Path::new(&config.source);
        Mnist::from_dir(dir).with_context(|| {
            format!(
                "loading MNIST from `{}` (data.source); `cargo xtask data mnist` puts the full set in data/mnist",
                dir.display()
            )
        })?
    };
    limit(&mut data.train, config.train_limit);
    limit(&mut data.test, config.test_limit);
    Ok(data)
}

fn limit(set: &mut ImageSet, n: usize) {
    if n > 0 && n < set.len() {
        *set = set.select(&(0..n).collect::<Vec<_>>());
    }
}
