//! The same step as [`accumulate`](crate::accumulate), with the sub-models spread over threads.

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::accumulate::{Accumulated, normalised_weights};

/// [`accumulate`](crate::accumulate) on `threads` worker threads. Each worker runs forward and
/// backward passes on a private autodiff copy of `model` (same weights and parameter ids, its
/// own graph), taking the next unclaimed sub-model until none is left. The per-sub-model
/// gradients are then summed in sampling order, exactly as the sequential version sums them, so
/// the result does not depend on `threads` or on timing. The price is memory: up to `subs.len()`
/// gradient sets are alive at once instead of two.
///
/// Worth it where one backward pass leaves cores idle: on burn's Flex CPU backend, small
/// convolutions run on one core, and two threads make a ResNet step close to 2x faster (see
/// `docs/results/fashion-resnet.md`). On a GPU use `threads = 1`.
///
/// Running statistics updated inside the forward pass (switchable BatchNorm) are updated on the
/// private copies and **not** carried back; use [`accumulate`](crate::accumulate) for such
/// models. Parameters and gradients are unaffected.
///
/// `threads` is clamped to `1..=subs.len()`; with one thread this is [`accumulate`](crate::accumulate).
///
/// # Example
/// ```
/// use burn::backend::{Autodiff, Flex};
/// use burn::prelude::*;
/// use sorted_nn::{NestingSpace, NestingSpaceConfig, SortedLinearConfig};
/// use sorted_sched::accumulate_parallel;
///
/// type B = Autodiff<Flex>;
/// let device = Default::default();
/// let space = NestingSpace::new(NestingSpaceConfig {
///     depths: vec![1], widths: Some(vec![2, 4]), block_widths: None, tie_widths: false,
/// })?;
/// let layer = SortedLinearConfig::new(3, 4).init::<B>(&device);
/// let x = Tensor::<B, 2>::ones([2, 3], &device);
/// let subs: Vec<_> = space.iter().collect();
/// let acc = accumulate_parallel(&layer, &subs, &[], 2, |m, _, sub| m.forward(x.clone(), sub.last_width()).sum());
/// assert_eq!(acc.losses.len(), 2);
/// # Ok::<(), sorted_nn::SpecError>(())
/// ```
pub fn accumulate_parallel<B, M, S>(
    model: &M,
    subs: &[S],
    weights: &[f64],
    threads: usize,
    loss_of: impl Fn(&M, usize, &S) -> Tensor<B, 1> + Sync,
) -> Accumulated
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    M::InnerModule: Send,
    S: Sync,
{
    let threads = threads.clamp(1, subs.len().max(1));
    if threads == 1 {
        return crate::accumulate(model, subs, weights, loss_of);
    }
    let w = normalised_weights(weights, subs.len());
    let (loss_of, w, next) = (&loss_of, &w, &AtomicUsize::new(0));
    // Each worker takes the next unclaimed sub-model (balancing cheap and costly ones) and keeps
    // its gradients apart; they are summed below in sampling order, as `accumulate` does.
    let mut done: Vec<(usize, GradientsParams, f64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let inner = model.valid();
                scope.spawn(move || {
                    let local = M::from_inner(inner);
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(sub) = subs.get(i) else { break };
                        let loss = loss_of(&local, i, sub);
                        let value = loss.clone().detach();
                        let grads = loss.mul_scalar(w[i]).backward();
                        out.push((i, GradientsParams::from_grads(grads, &local), value.into_scalar().elem::<f64>()));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    done.sort_by_key(|(i, _, _)| *i);
    let mut acc = GradientsAccumulator::<M>::new();
    let mut losses = Vec::with_capacity(done.len());
    for (_, grads, loss) in done {
        acc.accumulate(model, grads);
        losses.push(loss);
    }
    Accumulated { grads: acc.grads(), losses }
}
