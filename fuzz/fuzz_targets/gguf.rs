//! Fuzz target `gguf`: see [`sortednet_fuzz::gguf`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sortednet_fuzz::gguf(data);
});
