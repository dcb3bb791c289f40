//! A token stream cut into fixed-length windows for next-token prediction.

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

use crate::EpochOrder;

/// One batch of windows, on a device: the inputs and, shifted by one, the tokens to predict.
#[derive(Clone, Debug)]
pub struct LmBatch<B: Backend> {
    /// The first `seq_len` ids of each window, `[n, seq_len]`.
    pub inputs: Tensor<B, 2, Int>,
    /// The last `seq_len` ids of each window, `[n, seq_len]`: `targets[i][t]` is the token
    /// that follows `inputs[i][..=t]`.
    pub targets: Tensor<B, 2, Int>,
}

/// A token stream (a whole corpus, encoded once) cut into windows of `seq_len + 1` ids for
/// next-token training: a window's first `seq_len` ids are the input, its last `seq_len` the
/// targets.
///
/// Window `i` is `ids[i * seq_len ..= (i + 1) * seq_len]`: consecutive windows share one id,
/// the last of one being the first of the next, so their targets do not overlap and every id
/// but the first is predicted exactly once per epoch (what a perplexity over the whole stream
/// needs). The stream's tail of fewer than `seq_len` targets is left out. The order of the
/// windows in training comes from [`EpochOrder`], a pure function of `(seed, step)`.
///
/// ```
/// use burn::backend::Flex;
/// use sorted_data::LmChunks;
///
/// let chunks = LmChunks::new((0..11).collect(), 4);
/// assert_eq!(chunks.len(), 2); // ids 9 and 10 are left over
/// assert_eq!(chunks.chunk(0), Some(&[0, 1, 2, 3, 4][..]));
/// assert_eq!(chunks.chunk(1), Some(&[4, 5, 6, 7, 8][..]));
///
/// let order = chunks.epoch_order(2, 42);
/// let batch = chunks.batch::<Flex>(&order.batch_indices(0), &Default::default());
/// assert_eq!((batch.inputs.dims(), batch.targets.dims()), ([2, 4], [2, 4]));
/// let batch = chunks.batch::<Flex>(&[1], &Default::default());
/// assert_eq!(batch.inputs.into_data().convert::<i64>().to_vec::<i64>().unwrap(), [4, 5, 6, 7]);
/// assert_eq!(batch.targets.into_data().convert::<i64>().to_vec::<i64>().unwrap(), [5, 6, 7, 8]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LmChunks {
    ids: Vec<u32>,
    seq_len: usize,
}

impl LmChunks {
    /// The windows of `seq_len + 1` ids of `ids`. A stream of `seq_len` ids or fewer has none
    /// (check [`is_empty`](Self::is_empty) before training on it).
    ///
    /// # Panics
    /// If `seq_len` is zero (validate the configuration first).
    pub fn new(ids: Vec<u32>, seq_len: usize) -> Self {
        assert!(seq_len > 0, "LmChunks::new: seq_len must be at least 1");
        LmChunks { ids, seq_len }
    }

    /// The number of ids of a window's input (and of its targets).
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// The whole token stream.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// The number of windows: `(ids.len() - 1) / seq_len`, or 0 for an empty stream.
    pub fn len(&self) -> usize {
        self.ids.len().saturating_sub(1) / self.seq_len
    }

    /// Whether there is no window at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of targets over all windows: `len() * seq_len`.
    pub fn n_targets(&self) -> usize {
        self.len() * self.seq_len
    }

    /// The `seq_len + 1` ids of window `index`, if there is such a window.
    pub fn chunk(&self, index: usize) -> Option<&[u32]> {
        (index < self.len()).then(|| &self.ids[index * self.seq_len..=(index + 1) * self.seq_len])
    }

    /// The windows in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u32]> {
        (0..self.len()).map(|index| &self.ids[index * self.seq_len..=(index + 1) * self.seq_len])
    }

    /// The training order of the windows: batches of `batch_size` windows, a fresh seeded
    /// permutation every epoch (see [`EpochOrder`]).
    ///
    /// # Panics
    /// If there is no window or `batch_size` is zero (see [`EpochOrder::new`]).
    pub fn epoch_order(&self, batch_size: usize, seed: u64) -> EpochOrder {
        EpochOrder::new(self.len(), batch_size, seed)
    }

    /// The windows at `indices` (in that order) as tensors on `device`.
    ///
    /// # Shapes
    /// - inputs, targets: `[indices.len(), seq_len]`
    ///
    /// # Panics
    /// If an index is out of range (indices come from [`epoch_order`](Self::epoch_order) or
    /// `0..len()`, so this is a bug).
    pub fn batch<B: Backend>(&self, indices: &[usize], device: &B::Device) -> LmBatch<B> {
        let (n, seq_len) = (indices.len(), self.seq_len);
        let mut inputs = Vec::with_capacity(n * seq_len);
        let mut targets = Vec::with_capacity(n * seq_len);
        for &index in indices {
            let Some(window) = self.chunk(index) else {
                panic!("LmChunks::batch: index {index} out of range for {} windows", self.len());
            };
            inputs.extend(window[..seq_len].iter().map(|&id| i64::from(id)));
            targets.extend(window[1..].iter().map(|&id| i64::from(id)));
        }
        LmBatch {
            inputs: Tensor::from_data(TensorData::new(inputs, [n, seq_len]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n, seq_len]), device),
        }
    }
}
