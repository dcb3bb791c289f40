//! The runner binary's global allocator: mimalloc behind a thin byte counter, so that `profile`
//! can report each sub-model's peak heap on CPU backends (issue 29, item 4).
//!
//! `main.rs` installs [`ALLOCATOR`] with `#[global_allocator]`. The counter
//! (`peakmem_alloc::PeakMemAlloc`) adds two atomic operations per allocation and hands
//! `alloc_zeroed` and `realloc` to mimalloc unchanged; the allocator it replaced (`peak_alloc`)
//! copied on every `realloc`, zeroed by hand and sat on glibc's malloc, which returns large
//! buffers to the kernel after every tensor op. Measurements: `docs/results/allocator.md`.
//!
//! mimalloc's own purge (memory free for 1 s goes back to the kernel) costs training 25-30 % of
//! its CPU time in page faults; `.cargo/config.toml` sets `MIMALLOC_PURGE_DELAY=-1` for
//! everything cargo runs (the option is read from the environment at process start, and setting
//! it from here would need `unsafe`).
//!
//! Library users and the integration tests run on their own allocator: there the counter never
//! moves, and [`counting`] says so.

use mimalloc::MiMalloc;
use peakmem_alloc::{PeakMemAlloc, PeakMemAllocTrait};

/// The allocator type of the runner binary.
pub type RunnerAllocator = PeakMemAlloc<MiMalloc>;

/// The runner binary's global allocator (installed by `main.rs`).
pub static ALLOCATOR: RunnerAllocator = PeakMemAlloc::new(MiMalloc);

/// Whether [`ALLOCATOR`] is the global allocator of this process: a probe allocation moves its
/// counter only then.
pub fn counting() -> bool {
    ALLOCATOR.reset_peak_memory();
    let probe = std::hint::black_box(vec![1u8; 4096]);
    let seen = ALLOCATOR.get_peak_memory() >= probe.len();
    drop(probe);
    seen
}

/// Runs `f` and returns its result with the peak heap bytes it held above the level at its
/// start (allocations of other threads meanwhile count too). Zero unless [`counting`].
pub fn peak_during<T>(f: impl FnOnce() -> T) -> (T, u64) {
    ALLOCATOR.reset_peak_memory();
    let out = f();
    (out, ALLOCATOR.get_peak_memory() as u64)
}
