//! Padding token sequences into batches of tensors.

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

use crate::TokenizedDataset;

/// One batch of token sequences and their labels, on a device, in the form a BERT encoder
/// takes: the sequences padded to one length `len`.
#[derive(Clone, Debug)]
pub struct TextBatch<B: Backend> {
    /// The token ids, `[n, len]`, padded with the vocabulary's `[PAD]` id.
    pub input_ids: Tensor<B, 2, Int>,
    /// `1.0` at real tokens and `0.0` at padding, `[n, len]`.
    pub attention_mask: Tensor<B, 2>,
    /// The segment of each token, `[n, len]`: all 0, since every text is one segment.
    pub token_type_ids: Tensor<B, 2, Int>,
    /// The labels, `[n]`.
    pub labels: Tensor<B, 1, Int>,
}

/// Builds [`TextBatch`]es from a [`TokenizedDataset`]: the sequences at the batch's indices,
/// padded to the longest of them, so a batch of short reviews costs less than one of long
/// ones.
///
/// `max_len` caps the length: a sequence longer than it (from a dataset tokenized with a larger
/// `max_len`) keeps its first `max_len - 1` ids and its last one (`[SEP]`), as if tokenized at
/// `max_len`. Batches come from the indices of [`EpochOrder::batch_indices`](crate::EpochOrder::batch_indices)
/// in training and from consecutive ranges in evaluation.
///
/// ```
/// use burn::backend::Flex;
/// use sorted_data::{EpochOrder, TextBatcher, TokenizedDataset};
///
/// let data = TokenizedDataset {
///     sequences: vec![vec![101, 7, 102], vec![101, 7, 8, 9, 102]],
///     labels: vec![0, 1],
///     pad_id: 0,
///     n_truncated: 0,
/// };
/// let batch = TextBatcher::new(128).batch::<Flex>(&data, &[1, 0], &Default::default());
/// assert_eq!(batch.input_ids.dims(), [2, 5]);
/// let ids = batch.input_ids.into_data().convert::<i64>().to_vec::<i64>().unwrap();
/// assert_eq!(ids, [101, 7, 8, 9, 102, /* padded */ 101, 7, 102, 0, 0]);
/// let mask = batch.attention_mask.into_data().to_vec::<f32>().unwrap();
/// assert_eq!(mask, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
/// assert_eq!(batch.labels.into_data().convert::<i64>().to_vec::<i64>().unwrap(), [1, 0]);
///
/// // In training, the batch of each step comes from the seeded data order.
/// let order = EpochOrder::new(data.len(), 2, 42);
/// let batch = TextBatcher::new(128).batch::<Flex>(&data, &order.batch_indices(0), &Default::default());
/// assert_eq!(batch.token_type_ids.dims(), [2, 5]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextBatcher {
    /// The most ids a sequence of a batch keeps (BERT's position embeddings allow 512).
    pub max_len: usize,
}

impl TextBatcher {
    /// A batcher that pads to the longest sequence of each batch, cutting sequences to
    /// `max_len`.
    ///
    /// # Panics
    /// If `max_len < 2` (`[CLS]` and `[SEP]` must fit; validate the configuration first).
    pub fn new(max_len: usize) -> Self {
        assert!(max_len >= 2, "TextBatcher::new: max_len {max_len} leaves no room for [CLS] and [SEP]");
        TextBatcher { max_len }
    }

    /// The sequences at `indices` (in that order) and their labels, as tensors on `device`.
    ///
    /// # Shapes
    /// - input_ids, attention_mask, token_type_ids: `[indices.len(), len]`, where `len` is the
    ///   length of the longest of the sequences, at most `max_len`
    /// - labels: `[indices.len()]`
    ///
    /// # Panics
    /// If an index is out of range (indices come from [`EpochOrder`](crate::EpochOrder) or
    /// `0..data.len()`, so this is a bug).
    pub fn batch<B: Backend>(&self, data: &TokenizedDataset, indices: &[usize], device: &B::Device) -> TextBatch<B> {
        let max_len = self.max_len.max(2);
        let sequences: Vec<&[u32]> = indices
            .iter()
            .map(|&index| {
                assert!(
                    index < data.len(),
                    "TextBatcher::batch: index {index} out of range for a dataset of {} texts",
                    data.len()
                );
                data.sequences[index].as_slice()
            })
            .collect();
        let len = sequences.iter().map(|ids| ids.len().min(max_len)).max().unwrap_or(0);
        let n = sequences.len();
        let mut ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for sequence in &sequences {
            let kept = if sequence.len() > max_len {
                // Cut, keeping the last id: `[SEP]` stays at the end.
                ids.extend(sequence[..max_len - 1].iter().map(|&id| i64::from(id)));
                ids.push(i64::from(sequence[sequence.len() - 1]));
                max_len
            } else {
                ids.extend(sequence.iter().map(|&id| i64::from(id)));
                sequence.len()
            };
            ids.extend(std::iter::repeat_n(i64::from(data.pad_id), len - kept));
            mask.extend((0..len).map(|position| if position < kept { 1.0f32 } else { 0.0 }));
        }
        let labels: Vec<i64> = indices.iter().map(|&index| i64::from(data.labels[index])).collect();
        TextBatch {
            input_ids: Tensor::from_data(TensorData::new(ids, [n, len]), device),
            attention_mask: Tensor::from_data(TensorData::new(mask, [n, len]), device),
            token_type_ids: Tensor::zeros([n, len], device),
            labels: Tensor::from_data(TensorData::new(labels, [n]), device),
        }
    }
}
