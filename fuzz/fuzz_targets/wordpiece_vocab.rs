//! Fuzz target `wordpiece_vocab`: see [`sortednet_fuzz::wordpiece_vocab`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sortednet_fuzz::wordpiece_vocab(data);
});
