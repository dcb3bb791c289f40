//! Fuzz target `gguf_tokenizer`: see [`sortednet_fuzz::gguf_tokenizer`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sortednet_fuzz::gguf_tokenizer(data);
});
