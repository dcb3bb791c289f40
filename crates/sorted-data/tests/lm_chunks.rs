//! LmChunks: next-token windows over a token stream, in a seeded order.

use std::collections::HashSet;

use burn::backend::Flex;
use sorted_data::LmChunks;

fn to_vec(tensor: burn::tensor::Tensor<Flex, 2, burn::tensor::Int>) -> Vec<i64> {
    tensor.into_data().convert::<i64>().to_vec::<i64>().unwrap()
}

#[test]
fn windows_share_one_id_and_every_id_but_the_first_is_a_target_once() {
    let ids: Vec<u32> = (100..125).collect();
    let chunks = LmChunks::new(ids.clone(), 6);
    // (25 - 1) / 6 = 4 windows of 7 ids, 24 targets: nothing is left over.
    assert_eq!((chunks.len(), chunks.n_targets(), chunks.seq_len()), (4, 24, 6));
    let windows: Vec<&[u32]> = chunks.iter().collect();
    assert_eq!(windows[0], &ids[0..7]);
    assert_eq!(windows[3], &ids[18..25]);
    assert!(windows.windows(2).all(|pair| pair[0][6] == pair[1][0]));
    let targets: Vec<u32> = windows.iter().flat_map(|window| window[1..].iter().copied()).collect();
    assert_eq!(targets, ids[1..]);
    assert_eq!(chunks.chunk(4), None);
    assert_eq!(chunks.ids(), ids);
}

#[test]
fn a_short_stream_has_no_window_and_a_tail_is_left_out() {
    assert!(LmChunks::new(vec![1, 2, 3], 3).is_empty());
    assert!(LmChunks::new(Vec::new(), 3).is_empty());
    assert_eq!(LmChunks::new(vec![1, 2, 3, 4], 3).len(), 1);
    // 12 ids, windows of 5: ids 0..=4 and 4..=8; ids 9..=11 are fewer than a window's targets.
    let chunks = LmChunks::new((0..12).collect(), 4);
    assert_eq!((chunks.len(), chunks.chunk(1)), (2, Some(&[4, 5, 6, 7, 8][..])));
}

#[test]
#[should_panic(expected = "seq_len must be at least 1")]
fn seq_len_zero_is_a_bug() {
    let _ = LmChunks::new(vec![1, 2], 0);
}

#[test]
fn batches_shift_targets_by_one_in_the_seeded_order() {
    let chunks = LmChunks::new((0..41).collect(), 4);
    assert_eq!(chunks.len(), 10);
    let device = Default::default();
    let batch = chunks.batch::<Flex>(&[2, 0], &device);
    assert_eq!((batch.inputs.dims(), batch.targets.dims()), ([2, 4], [2, 4]));
    assert_eq!(to_vec(batch.inputs), [8, 9, 10, 11, 0, 1, 2, 3]);
    assert_eq!(to_vec(batch.targets), [9, 10, 11, 12, 1, 2, 3, 4]);

    let order = chunks.epoch_order(3, 7);
    assert_eq!(order.batches_per_epoch(), 3);
    let epoch: Vec<usize> = (0..3).flat_map(|step| order.batch_indices(step)).collect();
    assert_eq!(epoch.iter().collect::<HashSet<_>>().len(), 9);
    // Same seed and step, same windows: what a resumed run needs.
    assert_eq!(chunks.epoch_order(3, 7).batch_indices(4), order.batch_indices(4));
    assert_ne!(chunks.epoch_order(3, 8).permutation(0), order.permutation(0));
}

#[test]
#[should_panic(expected = "index 10 out of range for 10 windows")]
fn an_index_out_of_range_is_a_bug() {
    let chunks = LmChunks::new((0..41).collect(), 4);
    let _ = chunks.batch::<Flex>(&[10], &Default::default());
}
