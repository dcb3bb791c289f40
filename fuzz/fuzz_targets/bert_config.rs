//! Fuzz target `bert_config`: see [`sortednet_fuzz::bert_config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sortednet_fuzz::bert_config(data);
});
