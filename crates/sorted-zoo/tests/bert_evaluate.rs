//! `evaluate_bert_sub_models` and `bert_classification_loss`: the sorted BERT's evaluation and
//! training loss as a user calls them without the runner.

use burn::backend::Flex;
use burn::nn::loss::CrossEntropyLossConfig;
use sorted_data::{TextBatcher, TokenizedDataset};
use sorted_nn::{TransformerSpace, TransformerSpaceConfig, TransformerSubModel};
use sorted_zoo::{SortedBertConfig, bert_classification_loss, evaluate_bert_sub_models};

fn set() -> TokenizedDataset {
    TokenizedDataset {
        sequences: vec![vec![2, 9, 17, 33, 3], vec![2, 40, 3], vec![2, 5, 6, 3], vec![2, 11, 3]],
        labels: vec![0, 1, 1, 0],
        pad_id: 0,
        n_truncated: 0,
    }
}

fn subs() -> (TransformerSpace, Vec<TransformerSubModel>) {
    let config =
        TransformerSpaceConfig { depths: vec![1, 3], heads: vec![2, 4], ffn: vec![32], hidden: Some(vec![16]) };
    let space = TransformerSpace::new(config, 16).unwrap();
    let subs = space.iter().collect();
    (space, subs)
}

#[test]
fn each_sub_model_is_scored_in_order_with_its_cost_at_the_mean_length() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let model = SortedBertConfig::tiny().with_dropout(0.0).init::<Flex>(&device);
    let (set, (_, subs)) = (set(), subs());
    let mut called = 0;
    let scores = evaluate_bert_sub_models(&model, &set, &subs, 8, 3, &device, |_| called += 1);
    assert_eq!(called, subs.len());
    assert_eq!(scores.iter().map(|s| s.sub).collect::<Vec<_>>(), subs);
    for s in &scores {
        // Mean length 15 / 4 = 3.75, rounded to 4.
        assert_eq!(s.flops, model.cost(&s.sub, 4).flops);
        assert!((s.accuracy * 4.0).fract() == 0.0 && (0.0..=1.0).contains(&s.accuracy), "{}", s.accuracy);
    }
}

#[test]
fn the_loss_without_a_teacher_is_the_cross_entropy() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let model = SortedBertConfig::tiny().with_dropout(0.0).init::<Flex>(&device);
    let (set, (space, _)) = (set(), subs());
    let batch = TextBatcher::new(8).batch::<Flex>(&set, &[0, 1, 2, 3], &device);
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let sub = space.largest();
    let logits = model.forward(batch.input_ids.clone(), None, batch.attention_mask.clone(), &sub);
    let expected = loss_fn.forward(logits, batch.labels.clone()).into_scalar();
    let loss = bert_classification_loss(&model, &batch, &sub, &loss_fn, None).into_scalar();
    assert_eq!(loss, expected);
}

#[test]
fn issue_31_sentence_features_are_each_sub_models_pooled_states_in_set_order() {
    let _rng = crate::rng_guard();
    use sorted_zoo::{LinearProbe, ProbeOptions, SortedBert, sentence_features};
    let device = Default::default();
    let model = SortedBertConfig::tiny().with_dropout(0.0).init::<Flex>(&device);
    let (set, (_, subs)) = (set(), subs());
    for sub in &subs {
        // Batches of 3 and 1 give the same rows as one batch of 4 per sentence.
        let rows = sentence_features(&model, &set, sub, 8, 3, &device);
        assert_eq!(rows.len(), 4);
        assert!(rows.iter().all(|r| r.len() == 16));
        let batch = TextBatcher::new(8).batch::<Flex>(&set, &[0, 1, 2, 3], &device);
        let states = model.encode(batch.input_ids, None, batch.attention_mask.clone(), sub);
        let pooled = SortedBert::mean_pool(states, batch.attention_mask).into_data().to_vec::<f32>().unwrap();
        for (i, row) in rows.iter().enumerate() {
            for (a, b) in row.iter().zip(&pooled[i * 16..(i + 1) * 16]) {
                assert!((a - b).abs() < 1e-5, "{sub}: row {i}: {a} vs {b}");
            }
        }
        let probe = LinearProbe::fit(&rows, &set.labels, 2, ProbeOptions::default()).unwrap();
        assert!((0.0..=1.0).contains(&probe.accuracy(&rows, &set.labels).unwrap()));
    }
}
