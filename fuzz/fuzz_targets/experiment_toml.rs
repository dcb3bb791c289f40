//! Fuzz target `experiment_toml`: see [`sortednet_fuzz::experiment_toml`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sortednet_fuzz::experiment_toml(data);
});
