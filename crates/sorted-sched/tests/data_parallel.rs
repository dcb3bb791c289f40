//! Data-parallel training with Burn's collective: two peers (threads), each with half of every
//! step's batch, end where one peer with the whole batch ends; only rank 0 writes checkpoints;
//! a peer that fails makes the run fail instead of hanging.

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn_flex::Flex;
use sorted_nn::SubModel;
use sorted_sched::{
    AdamOptions, LoopOptions, LrSchedule, OptimizerConfig, Peer, SamplerConfig, TrainConfig, TrainError, TrainLoop,
    TrainTask, generations,
};

use crate::toy::{AB as B, Toy, rng_guard, space, weights};

/// Batches drawn up front (the backend's generator is process-global, peers are threads).
struct ShardedTask {
    batches: Vec<(Tensor<Flex, 2>, Tensor<Flex, 2>)>,
    peer: Option<Peer>,
}

impl TrainTask<B, Toy<B>> for ShardedTask {
    type Sub = SubModel;
    type Step = (Tensor<B, 2>, Tensor<B, 2>);

    fn prepare(&self, _model: &Toy<B>, step: u64, _subs: &[SubModel]) -> Self::Step {
        let (x, y) = self.batches[step as usize].clone();
        let rows: Vec<usize> = (0..x.dims()[0]).collect();
        let rows = self.peer.map_or(rows.clone(), |p| p.shard(&rows));
        let (a, b) = (rows[0], rows[rows.len() - 1] + 1);
        (Tensor::from_inner(x.slice(a..b)), Tensor::from_inner(y.slice(a..b)))
    }

    fn loss(&self, step: &Self::Step, model: &Toy<B>, _index: usize, sub: &SubModel) -> Tensor<B, 1> {
        model.loss(step.0.clone(), step.1.clone(), sub)
    }
}

fn batches(steps: u64) -> Vec<(Tensor<Flex, 2>, Tensor<Flex, 2>)> {
    let device = Default::default();
    (0..steps)
        .map(|s| {
            Flex::seed(&device, 1000 + s);
            let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
            (Tensor::random([8, 5], normal, &device), Tensor::random([8, 2], normal, &device))
        })
        .collect()
}

/// Trains `peers` peers from the same initial model; returns each peer's final weights or error.
fn train(dir: &std::path::Path, peers: usize, fail_rank: Option<usize>) -> Vec<Result<Vec<f32>, TrainError>> {
    let train: TrainConfig = toml::from_str("steps = 6\ncheckpoint_every = 2").unwrap();
    let lr = LrSchedule { base: 0.05, warmup_steps: 1, decay: sorted_sched::Decay::Cosine, final_ratio: 0.1 };
    let sampler = SamplerConfig::default().build(&space(), 3).unwrap();
    let device = Default::default();
    B::seed(&device, 99);
    let model = Toy::<B>::new(&device);
    let data = batches(6);
    let train_loop = TrainLoop::new(&train, &lr, sampler.as_ref(), 3, dir, "# toy");
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..peers)
            .map(|rank| {
                let (inner, data, train_loop) = (model.valid(), data.clone(), &train_loop);
                scope.spawn(move || {
                    let peer = (peers > 1).then_some(Peer::new(rank, peers));
                    if let Some(p) = peer {
                        sorted_sched::join::<Flex>(p, &Default::default()).unwrap();
                    }
                    let optim = OptimizerConfig::Adam(AdamOptions {
                        beta1: 0.9,
                        beta2: 0.999,
                        epsilon: 1e-8,
                        weight_decay: None,
                    })
                    .init();
                    let mut task = ShardedTask { batches: data, peer };
                    if fail_rank == Some(rank) {
                        task.batches.truncate(0); // this peer panics in its first step
                    }
                    let options = LoopOptions { peer, ..Default::default() };
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        train_loop.run(&task, Toy::from_inner(inner), optim, &Default::default(), options, &mut ())
                    }));
                    let result = match outcome {
                        Ok(r) => r.map(|o| weights(&o.model)),
                        Err(_) => {
                            // A dead peer resets the collective so that the others stop waiting.
                            sorted_sched::abandon::<Flex>();
                            Err(TrainError::Peer { rank, peers, reason: "panicked".into() })
                        }
                    };
                    if let Some(p) = peer {
                        let _ = sorted_sched::leave::<Flex>(p);
                    }
                    result
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn two_peers_with_half_batches_end_where_one_peer_with_whole_batches_ends() {
    let _guard = rng_guard();
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let single = train(one.path(), 1, None).pop().unwrap().unwrap();
    let pair: Vec<Vec<f32>> = train(two.path(), 2, None).into_iter().map(Result::unwrap).collect();
    assert_eq!(pair[0], pair[1], "both peers take the same steps");
    for (a, b) in single.iter().zip(&pair[0]) {
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
    }
    // Rank 0 alone wrote the generations, as the single peer did.
    assert_eq!(generations(two.path()).unwrap().len(), generations(one.path()).unwrap().len());
}

#[test]
fn a_failing_peer_ends_the_run_on_every_peer() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let path = dir.path().to_path_buf();
    std::thread::spawn(move || tx.send(train(&path, 2, Some(1))).unwrap());
    let results = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("the run ended instead of hanging");
    assert!(results.iter().all(Result::is_err), "{results:?}");
    let err = results[0].as_ref().unwrap_err().to_string();
    assert!(err.contains("peer 0 of 2"), "{err}");
}

#[test]
fn a_node_config_with_a_missing_setting_is_refused_naming_it() {
    // Burn's collective would fall back to one node without a word; join_node refuses first.
    let peer = Peer::new(0, 2);
    let good = sorted_sched::NodeConfig {
        node: 0,
        nodes: 2,
        address: "127.0.0.1:40001".into(),
        data_service_port: 40001,
        coordinator: "ws://127.0.0.1:40000".into(),
    };
    good.validate(peer).unwrap();
    let refused = |config: sorted_sched::NodeConfig, field: &str| {
        let err = sorted_sched::join_node::<Flex>(peer, 1, &config, &Default::default()).unwrap_err().to_string();
        assert!(err.contains(field), "{err}");
    };
    refused(sorted_sched::NodeConfig { data_service_port: 0, ..good.clone() }, "data_service_port");
    refused(sorted_sched::NodeConfig { address: String::new(), ..good.clone() }, "address");
    refused(sorted_sched::NodeConfig { coordinator: "http://x:1".into(), ..good.clone() }, "coordinator");
    refused(sorted_sched::NodeConfig { node: 2, ..good.clone() }, "node");
    refused(sorted_sched::NodeConfig { nodes: 0, ..good.clone() }, "nodes");
    // Two nodes of one peer each are two peers, not three.
    let err = sorted_sched::join_node::<Flex>(Peer::new(0, 3), 1, &good, &Default::default()).unwrap_err();
    assert!(err.to_string().contains("2 nodes x 1 local peers"), "{err}");
}
