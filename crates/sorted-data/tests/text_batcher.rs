//! TokenizedDataset and TextBatcher: padding, masks, truncation and labels, on Flex.

use std::path::Path;

use burn::backend::Flex;
use sorted_data::{EpochOrder, RtSentiment, TextBatcher, TextDataset, TokenizedDataset, WordPieceTokenizer};

fn ints<const D: usize>(tensor: burn::tensor::Tensor<Flex, D, burn::tensor::Int>) -> Vec<i64> {
    tensor.into_data().convert::<i64>().to_vec::<i64>().unwrap()
}

fn fixture() -> WordPieceTokenizer {
    WordPieceTokenizer::from_vocab_file(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vocab-tiny.txt")))
        .unwrap()
}

fn sequences() -> TokenizedDataset {
    TokenizedDataset {
        sequences: vec![vec![3, 16, 4], vec![3, 16, 19, 20, 21, 22, 4], vec![3, 4], vec![3, 17, 18, 4]],
        labels: vec![1, 0, 1, 0],
        pad_id: 0,
        n_truncated: 0,
    }
}

#[test]
fn batches_pad_to_the_longest_sequence_of_the_batch() {
    let data = sequences();
    let batch = TextBatcher::new(128).batch::<Flex>(&data, &[3, 0, 2], &Default::default());
    assert_eq!(batch.input_ids.dims(), [3, 4]);
    assert_eq!(ints(batch.input_ids), [3, 17, 18, 4, 3, 16, 4, 0, 3, 4, 0, 0]);
    let mask = batch.attention_mask.into_data().to_vec::<f32>().unwrap();
    assert_eq!(mask, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    assert_eq!(batch.token_type_ids.dims(), [3, 4]);
    assert_eq!(ints(batch.token_type_ids), [0; 12]);
    assert_eq!(ints(batch.labels), [0, 1, 1]);
    // Another batch, another length.
    let batch = TextBatcher::new(128).batch::<Flex>(&data, &[1, 2], &Default::default());
    assert_eq!(batch.input_ids.dims(), [2, 7]);
}

#[test]
fn pad_id_comes_from_the_dataset() {
    let data = TokenizedDataset { pad_id: 9, ..sequences() };
    let batch = TextBatcher::new(128).batch::<Flex>(&data, &[2, 0], &Default::default());
    assert_eq!(ints(batch.input_ids), [3, 4, 9, 3, 16, 4]);
}

#[test]
fn max_len_cuts_long_sequences_keeping_the_last_id() {
    let data = sequences();
    let batch = TextBatcher::new(4).batch::<Flex>(&data, &[1, 0], &Default::default());
    assert_eq!(batch.input_ids.dims(), [2, 4]);
    // [CLS] a man [SEP]: the same ids as tokenizing at max_len 4.
    assert_eq!(ints(batch.input_ids), [3, 16, 19, 4, 3, 16, 4, 0]);
    let tokenizer = fixture();
    assert_eq!(tokenizer.encode("A man is eating", 4).ids, [3, 16, 19, 4]);
}

#[test]
fn tokenized_dataset_encodes_every_text_and_counts_truncations() {
    let tokenizer = fixture();
    let data = TextDataset {
        texts: vec!["A man is eating food.".into(), "The film!".into(), "".into()],
        labels: vec![1, 0, 1],
    };
    let tokenized = TokenizedDataset::new(&tokenizer, &data, 6);
    assert_eq!(tokenized.sequences, [vec![3, 16, 19, 20, 21, 4], vec![3, 18, 36, 6, 4], vec![3, 4]]);
    assert_eq!((tokenized.labels.clone(), tokenized.pad_id, tokenized.n_truncated), (vec![1, 0, 1], 0, 1));
    assert_eq!((tokenized.len(), tokenized.longest()), (3, 6));
}

#[test]
fn training_batches_follow_the_epoch_order_on_the_embedded_reviews() {
    let tokenizer = fixture();
    let rt = RtSentiment::embedded().unwrap();
    let data = TokenizedDataset::new(&tokenizer, &rt.train, 32);
    assert_eq!(data.len(), 400);
    assert!(data.sequences.iter().all(|ids| (2..=32).contains(&ids.len()) && ids[0] == 3 && ids[ids.len() - 1] == 4));
    let order = EpochOrder::new(data.len(), 16, 7);
    let batcher = TextBatcher::new(32);
    let device = Default::default();
    for step in [0, 1, 30] {
        let indices = order.batch_indices(step);
        let batch = batcher.batch::<Flex>(&data, &indices, &device);
        let longest = indices.iter().map(|&i| data.sequences[i].len()).max().unwrap();
        assert_eq!(batch.input_ids.dims(), [16, longest]);
        // The mask counts each sequence's real tokens.
        let mask = batch.attention_mask.sum_dim(1).into_data().to_vec::<f32>().unwrap();
        let lengths: Vec<f32> = indices.iter().map(|&i| data.sequences[i].len() as f32).collect();
        assert_eq!(mask, lengths);
        let labels: Vec<i64> = indices.iter().map(|&i| i64::from(rt.train.labels[i])).collect();
        assert_eq!(ints(batch.labels), labels);
        // Same step, same batch (a resumed run).
        let again = batcher.batch::<Flex>(&data, &order.batch_indices(step), &device);
        assert_eq!(ints(again.input_ids), ints(batcher.batch::<Flex>(&data, &indices, &device).input_ids));
    }
}

#[test]
fn real_vocab_tokenizes_the_embedded_reviews_without_truncation_at_128() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/minilm/vocab.txt"));
    if !path.is_file() {
        eprintln!("skipped: data/minilm/vocab.txt is absent (`cargo xtask data minilm` fetches it)");
        return;
    }
    let tokenizer = WordPieceTokenizer::from_vocab_file(path).unwrap();
    let rt = RtSentiment::embedded().unwrap();
    for split in [&rt.train, &rt.dev, &rt.test] {
        let data = TokenizedDataset::new(&tokenizer, split, 128);
        assert_eq!(data.n_truncated, 0);
        assert!(data.longest() <= 60, "{}", data.longest());
        // Reviews are English: no word is unknown to bert-base-uncased.
        assert!(data.sequences.iter().flatten().all(|&id| id != 100));
    }
}

#[test]
#[should_panic(expected = "index 4 out of range for a dataset of 4 texts")]
fn out_of_range_index_panics_with_the_numbers() {
    let _ = TextBatcher::new(8).batch::<Flex>(&sequences(), &[4], &Default::default());
}

#[test]
#[should_panic(expected = "max_len 1 leaves no room")]
fn max_len_below_two_is_rejected() {
    let _ = TextBatcher::new(1);
}
