//! A second thread that waits for work by spinning, for the many short hand-overs of a
//! decoding step.
//!
//! A decoding layer splits its products between two threads four times, a few tens of
//! microseconds of work each. A thread pool whose idle workers go to sleep (rayon's) wakes one
//! through the kernel at every hand-over: measured about 500 context switches per token on
//! SmolLM2 (`perf stat`). The partner here spins on a channel for the duration of one decoding
//! call instead, as llama.cpp's threads do, so a hand-over costs a channel message.

use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};

/// Work for the partner: it may borrow what outlives the partner (`'w`: the weights) and owns
/// the rest (its inputs, moved in).
pub(crate) type Job<'w> = Box<dyn FnOnce() -> Vec<f32> + Send + 'w>;

/// The other half of a two-thread computation: a spinning thread, or (one CPU) nobody, in which
/// case the caller runs both halves.
pub(crate) enum Partner<'w> {
    /// Jobs to the spinning thread, results back.
    Thread { jobs: Sender<Job<'w>>, results: Receiver<Vec<f32>> },
    /// No second thread.
    Inline,
}

impl<'w> Partner<'w> {
    /// Runs `here` on this thread and `there` on the partner, and returns both results.
    ///
    /// # Panics
    /// If the partner thread panicked (the panic itself is raised again when its scope ends).
    pub(crate) fn join(&self, here: impl FnOnce() -> Vec<f32>, there: Job<'w>) -> (Vec<f32>, Vec<f32>) {
        let Self::Thread { jobs, results } = self else {
            return (here(), there());
        };
        jobs.send(there).expect("the partner thread ended early");
        let mine = here();
        (mine, wait_for(results).expect("the partner thread ended early"))
    }
}

/// Spins before each `yield_now` while waiting: a few microseconds of spinning keep a hand-over
/// cheap, and yielding after them lets other threads run when the machine has more threads than
/// cores (tests in parallel, other programs).
const SPINS_BEFORE_YIELD: u32 = 2_000;

/// Waits for one of `channel`'s messages: `None` when its sender is gone.
fn wait_for<T>(channel: &Receiver<T>) -> Option<T> {
    let mut spins = 0u32;
    loop {
        match channel.try_recv() {
            Ok(message) => return Some(message),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if spins < SPINS_BEFORE_YIELD => {
                spins += 1;
                std::hint::spin_loop();
            }
            Err(TryRecvError::Empty) => std::thread::yield_now(),
        }
    }
}

/// Calls `f` with a partner thread that spins waiting for jobs until `f` returns; with none
/// (both halves run here) when `wanted` is false (work too small to share) or the machine has
/// one CPU.
pub(crate) fn with_partner<'w, R>(wanted: bool, f: impl FnOnce(&Partner<'w>) -> R) -> R {
    if !wanted || std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return f(&Partner::Inline);
    }
    std::thread::scope(|scope| {
        let (jobs, inbox) = channel::<Job<'w>>();
        let (outbox, results) = channel();
        scope.spawn(move || {
            while let Some(job) = wait_for(&inbox) {
                if outbox.send(job()).is_err() {
                    return;
                }
            }
        });
        let partner = Partner::Thread { jobs, results };
        let out = f(&partner);
        // Dropping the sender ends the partner's loop.
        drop(partner);
        out
    })
}
