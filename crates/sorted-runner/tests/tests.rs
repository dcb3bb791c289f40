//! Runner tests: configs, end-to-end runs on the embedded data, resume, export,
//! profile and select, the fault battery and the fuzz seeds' replay. One binary. (The
//! repository's rules are `cargo xtask tidy`, a test of xtask.) The modules that run the Flex
//! backend gate themselves with `#![cfg(feature = "flex")]`.

mod common;
mod compare;
mod configs;
mod data_parallel;
mod datasets;
mod deploy;
mod end_to_end;
mod export_pytorch;
mod faults;
mod fuzz_replay;
mod lm;
mod multi_node;
mod sort_image;
mod text;
