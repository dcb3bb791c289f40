//! Fuzz target `cifar`: see [`sortednet_fuzz::cifar`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sortednet_fuzz::cifar(data);
});
