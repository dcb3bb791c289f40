//! Fuzz target `checkpoint_manifest`: see [`sortednet_fuzz::checkpoint_manifest`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sortednet_fuzz::checkpoint_manifest(data);
});
