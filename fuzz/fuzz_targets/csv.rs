//! Fuzz target `csv`: see [`sortednet_fuzz::csv`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sortednet_fuzz::csv(data);
});
