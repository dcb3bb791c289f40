//! The order in which training visits the data: a fresh permutation every epoch, computed from
//! the seed and the step alone.

use std::sync::{Arc, Mutex};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The data order of training: which items make up the batch of each step.
///
/// Each epoch visits the items in a new random order: a Fisher–Yates shuffle of `0..n_items`
/// driven by `ChaCha8Rng::seed_from_u64(seed)` on stream `epoch`. The epoch is cut into
/// `n_items / batch_size` batches; the last, incomplete batch is dropped, so every batch has
/// the same size.
///
/// [`batch_indices`](Self::batch_indices) is a pure function of `(seed, step)`: a run resumed
/// at step `s` sees exactly the batches a continuous run would have. Use a seed that differs
/// from the sub-model sampler's, so the two random streams are unrelated.
///
/// ```
/// use sorted_data::EpochOrder;
///
/// let order = EpochOrder::new(10, 4, 7);
/// assert_eq!(order.batches_per_epoch(), 2); // 2 items are left out each epoch
/// let (first, second) = (order.batch_indices(0), order.batch_indices(1));
/// assert_eq!(first.len(), 4);
/// assert!(first.iter().all(|i| !second.contains(i)));
/// assert_eq!(order.epoch_of(2), 1);
/// // Same seed, same step: same batch, even from a fresh value (a resumed run).
/// assert_eq!(EpochOrder::new(10, 4, 7).batch_indices(5), order.batch_indices(5));
/// ```
#[derive(Debug)]
pub struct EpochOrder {
    n_items: usize,
    batch_size: usize,
    seed: u64,
    /// The permutation of the most recent epoch asked for. Steps arrive in order, so this saves
    /// reshuffling for every batch; it never changes what a call returns.
    cache: Mutex<Option<(u64, Arc<[usize]>)>>,
}

impl Clone for EpochOrder {
    fn clone(&self) -> Self {
        EpochOrder::new(self.n_items, self.batch_size, self.seed)
    }
}

impl PartialEq for EpochOrder {
    fn eq(&self, other: &Self) -> bool {
        (self.n_items, self.batch_size, self.seed) == (other.n_items, other.batch_size, other.seed)
    }
}

impl Eq for EpochOrder {}

impl EpochOrder {
    /// The order of `n_items` items in batches of `batch_size`, shuffled from `seed`.
    ///
    /// If `n_items < batch_size`, each epoch is a single batch of all `n_items` items.
    ///
    /// # Panics
    /// If `n_items` or `batch_size` is zero (validate configs before building one).
    pub fn new(n_items: usize, batch_size: usize, seed: u64) -> Self {
        assert!(n_items > 0, "EpochOrder::new: no items to order");
        assert!(batch_size > 0, "EpochOrder::new: batch_size must be at least 1");
        EpochOrder { n_items, batch_size, seed, cache: Mutex::new(None) }
    }

    /// The number of items ordered.
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// The requested batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The seed of the shuffles.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The length of every batch: `batch_size`, or `n_items` if there are fewer items.
    pub fn batch_len(&self) -> usize {
        self.batch_size.min(self.n_items)
    }

    /// The number of batches (steps) in one epoch: `n_items / batch_size`, dropping the last
    /// incomplete batch, and at least 1.
    pub fn batches_per_epoch(&self) -> usize {
        (self.n_items / self.batch_size).max(1)
    }

    /// The epoch that `step` belongs to (both counted from 0).
    pub fn epoch_of(&self, step: u64) -> u64 {
        step / self.batches_per_epoch() as u64
    }

    /// The items of the batch of `step` (counted from 0 over the whole run): a slice of the
    /// permutation of the step's epoch, [`batch_len`](Self::batch_len) long.
    pub fn batch_indices(&self, step: u64) -> Vec<usize> {
        let epoch = self.epoch_of(step);
        let in_epoch = (step % self.batches_per_epoch() as u64) as usize;
        let start = in_epoch * self.batch_len();
        self.permutation(epoch)[start..start + self.batch_len()].to_vec()
    }

    /// The permutation of `0..n_items` that `epoch` visits the items in.
    pub fn permutation(&self, epoch: u64) -> Arc<[usize]> {
        // A poisoned lock only means another thread panicked mid-update; the cache is then
        // simply recomputed.
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached_epoch, permutation)) = cache.as_ref()
            && *cached_epoch == epoch
        {
            return Arc::clone(permutation);
        }
        let permutation: Arc<[usize]> = shuffle(self.n_items, self.seed, epoch).into();
        *cache = Some((epoch, Arc::clone(&permutation)));
        permutation
    }
}

/// A Fisher–Yates shuffle of `0..n` on ChaCha8 stream `stream` of `seed`.
pub(crate) fn shuffle(n: usize, seed: u64, stream: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let mut items: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        // rand 0.9 samples usize ranges portably (as u32 when they fit), so the order is the
        // same on 32- and 64-bit targets.
        let j = rng.random_range(0..=i);
        items.swap(i, j);
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_permutation_and_depends_on_the_stream() {
        let a = shuffle(100, 1, 0);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(a, shuffle(100, 1, 1));
        assert_eq!(a, shuffle(100, 1, 0));
    }

    #[test]
    fn fewer_items_than_a_batch_make_one_batch() {
        let order = EpochOrder::new(3, 8, 0);
        assert_eq!((order.batches_per_epoch(), order.batch_len()), (1, 3));
        let mut batch = order.batch_indices(4);
        batch.sort_unstable();
        assert_eq!(batch, [0, 1, 2]);
    }

    #[test]
    fn cache_does_not_change_results() {
        let order = EpochOrder::new(50, 7, 3);
        let forward: Vec<_> = (0..30).map(|s| order.batch_indices(s)).collect();
        let backward: Vec<_> = (0..30).rev().map(|s| order.batch_indices(s)).collect();
        assert!(forward.iter().eq(backward.iter().rev()));
    }
}
