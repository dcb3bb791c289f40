//! Fuzz target `idx`: see [`sortednet_fuzz::idx`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sortednet_fuzz::idx(data);
});
