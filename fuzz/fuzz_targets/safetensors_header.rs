//! Fuzz target `safetensors_header`: see [`sortednet_fuzz::safetensors_header`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sortednet_fuzz::safetensors_header(data);
});
