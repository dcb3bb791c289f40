//! Runner tests: configs, end-to-end runs on the embedded data, resume, export,
//! profile and select, the fault battery and the fuzz seeds' replay. One binary. (The
//! repository's rules are `cargo xtask tidy`, a test of xtask.)

#[cfg(feature = "flex")]
mod compare;
mod configs;
#[cfg(feature = "flex")]
mod data_parallel;
#[cfg(feature = "flex")]
mod datasets;
#[cfg(feature = "flex")]
mod deploy;
#[cfg(feature = "flex")]
mod end_to_end;
#[cfg(feature = "flex")]
mod export_pytorch;
#[cfg(feature = "flex")]
mod faults;
mod fuzz_replay;
#[cfg(feature = "flex")]
mod lm;
#[cfg(feature = "flex")]
mod multi_node;
#[cfg(feature = "flex")]
mod sort_image;
#[cfg(feature = "flex")]
mod text;
