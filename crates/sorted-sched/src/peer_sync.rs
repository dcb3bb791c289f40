//! Data-parallel training over several peers ([`LoopOptions::peer`](crate::LoopOptions)): every
//! peer draws the same sub-models (the sampler is a pure function of `(seed, step)`), computes
//! the gradients of its shard of the global batch, and the gradients and losses are averaged
//! with Burn's collective all-reduce (`burn-collective`, feature `collective`) before the
//! identical optimizer step on every peer. With equal shards, the mean over peers of the
//! shard-mean losses is the global batch's mean loss, so `n` peers follow the one-peer run up
//! to float summation order.
//!
//! Peers are threads of one process (one per device of a node, registered with [`join`]), or
//! the threads of several processes (nodes) connected by Burn's global orchestrator
//! ([`join_node`] with a [`NodeConfig`]). Every collective call waits at most
//! [`Peer::timeout`](crate::Peer::timeout) for the others, so a dead peer or node ends the run
//! with an error instead of a hang.

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;

use crate::{Peer, TrainError};

/// This process's place among several processes (nodes) that train together through Burn's
/// global orchestrator (`sorted-runner coordinator`). Every node runs its own peers (threads,
/// one per device) and knows the others only through the orchestrator, which tells each node
/// where the others' data services are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// This node's index, `0..nodes`: its peers are the global ranks
    /// `node * local_peers .. (node + 1) * local_peers`.
    pub node: usize,
    /// How many nodes train together (each with the same number of peers).
    pub nodes: usize,
    /// Where the other nodes reach this node's data service, `host:port` (or `ws://host:port`).
    pub address: String,
    /// The port this node's data service listens on (usually the port of `address`).
    pub data_service_port: u16,
    /// Where the global orchestrator listens, `host:port` (or `ws://host:port`).
    pub coordinator: String,
}

impl NodeConfig {
    /// Refuses a setting Burn would not notice: an empty or unusable address, a missing port
    /// (Burn's collective falls back to one node, silently, when one of its four global
    /// settings is missing), or a node index out of range. The error names the field.
    ///
    /// # Errors
    /// [`TrainError::Peer`] naming the field.
    pub fn validate(&self, peer: Peer) -> Result<(), TrainError> {
        let refuse = |reason: String| Err(TrainError::Peer { rank: peer.rank, peers: peer.peers, reason });
        if self.nodes == 0 {
            return refuse("`nodes` must be at least 1".into());
        }
        if self.node >= self.nodes {
            return refuse(format!("`node` = {} must be below `nodes` = {}", self.node, self.nodes));
        }
        for (field, value) in [("address", &self.address), ("coordinator", &self.coordinator)] {
            if let Err(why) = ws_address(value) {
                return refuse(format!("`{field}` = `{value}`: {why}"));
            }
        }
        if self.data_service_port == 0 {
            return refuse("`data_service_port` is missing (0)".into());
        }
        Ok(())
    }
}

/// `host:port` or `ws://host:port` as Burn's WebSocket address (`ws://host:port`; Burn refuses
/// an address without the scheme only when it connects, by never connecting).
fn ws_address(value: &str) -> Result<String, String> {
    let rest = match value.split_once("://") {
        Some(("ws", rest)) => rest,
        Some((scheme, _)) => return Err(format!("the scheme must be `ws`, not `{scheme}`")),
        None => value,
    };
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(format!("ws://{rest}"))
        }
        _ => Err("expected `host:port`".into()),
    }
}

/// Averages the step's per-sub-model `losses`, its weighted `loss` and its `grads` over the
/// peers.
#[cfg(feature = "collective")]
pub(crate) fn average<B: AutodiffBackend, M: AutodiffModule<B>>(
    peer: Peer,
    losses: Vec<f64>,
    grads: GradientsParams,
    loss: f64,
    model: &M,
    device: &B::Device,
) -> Result<(Vec<f64>, GradientsParams, f64), TrainError> {
    let mut values = losses;
    values.push(loss);
    let mut values = collective::mean_values::<B::InnerBackend>(peer, &values, device)?;
    let loss = values.pop().expect("the weighted loss");
    let grads = collective::mean_gradients(peer, grads, model)?;
    Ok((values, grads, loss))
}

/// Without the `collective` feature there is nothing to average with.
#[cfg(not(feature = "collective"))]
pub(crate) fn average<B: AutodiffBackend, M: AutodiffModule<B>>(
    peer: Peer,
    _losses: Vec<f64>,
    _grads: GradientsParams,
    _loss: f64,
    _model: &M,
    _device: &B::Device,
) -> Result<(Vec<f64>, GradientsParams, f64), TrainError> {
    Err(TrainError::Peer {
        rank: peer.rank,
        peers: peer.peers,
        reason: "sorted-sched was built without its `collective` feature".into(),
    })
}

#[cfg(feature = "collective")]
pub use collective::{abandon, join, join_node, leave};

#[cfg(feature = "collective")]
mod collective {
    use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
    use burn::optim::GradientsParams;
    use burn::prelude::*;
    use burn::tensor::TensorPrimitive;
    use burn::tensor::backend::AutodiffBackend;
    use burn_collective::{AllReduceStrategy, CollectiveConfig, CollectiveError, PeerId, ReduceOperation};

    use super::{NodeConfig, ws_address};
    use crate::{Peer, TrainError};

    fn fail(peer: Peer, what: &str, reason: impl std::fmt::Debug) -> TrainError {
        TrainError::Peer { rank: peer.rank, peers: peer.peers, reason: format!("{what}: {reason:?}") }
    }

    /// Runs the blocking collective call `call` on a thread of its own and waits at most
    /// `peer.timeout` for it. Burn 0.21's collective calls have no timeout of their own (they
    /// wait on a channel, `burn-collective/src/local/client.rs`, `PendingCollectiveOperation::wait`),
    /// so a peer or node that died would leave the others waiting forever. A call that times
    /// out leaves its thread waiting until the collective is reset ([`abandon`]) or the process
    /// ends.
    fn within<T: Send + 'static>(
        peer: Peer,
        what: &str,
        call: impl FnOnce() -> Result<T, CollectiveError> + Send + 'static,
    ) -> Result<T, TrainError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name(format!("collective-{}", peer.rank))
            .spawn(move || {
                let _ = tx.send(call());
            })
            .map_err(|e| fail(peer, what, e))?;
        match rx.recv_timeout(peer.timeout) {
            Ok(result) => result.map_err(|e| fail(peer, what, e)),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(TrainError::Peer {
                rank: peer.rank,
                peers: peer.peers,
                reason: format!("{what}: no answer from the other peers within {} s", peer.timeout.as_secs_f64()),
            }),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(fail(peer, what, "the collective call panicked"))
            }
        }
    }

    /// Registers `peer` on `device` with the collective of this process (before its loop
    /// runs; `B` is the inner backend of an autodiff one). Every peer must join; `peer.peers`
    /// threads of this process train together.
    ///
    /// # Errors
    /// [`TrainError::Peer`] when Burn's collective refuses, or the others do not join within
    /// `peer.timeout`.
    pub fn join<B: Backend>(peer: Peer, device: &B::Device) -> Result<(), TrainError> {
        let config = CollectiveConfig::default().with_num_devices(peer.peers);
        let device = device.clone();
        within(peer, "joining the collective", move || {
            burn_collective::register::<B>(PeerId::from(peer.rank), device, config)
        })
    }

    /// Registers `peer` (its global rank among `peer.peers` on every node) on `device` as one of
    /// the `local_peers` threads of node `node.node`, which reaches the other nodes through
    /// Burn's global orchestrator at `node.coordinator`. Returns once every peer of every node
    /// has joined.
    ///
    /// Burn's collective needs all four of its global settings (`with_num_nodes`,
    /// `with_global_address`, `with_node_address`, `with_data_service_port`); one missing
    /// would make it a one-node collective without a word, so `node` is validated first
    /// ([`NodeConfig::validate`]).
    ///
    /// # Errors
    /// [`TrainError::Peer`]: an invalid `node` (naming the field), `peer.peers` that is not
    /// `node.nodes * local_peers`, Burn's refusal, or the others not joining within
    /// `peer.timeout`.
    pub fn join_node<B: Backend>(
        peer: Peer,
        local_peers: usize,
        node: &NodeConfig,
        device: &B::Device,
    ) -> Result<(), TrainError> {
        node.validate(peer)?;
        if local_peers == 0 || peer.peers != node.nodes * local_peers {
            return Err(TrainError::Peer {
                rank: peer.rank,
                peers: peer.peers,
                reason: format!("{} nodes x {local_peers} local peers is not {} peers", node.nodes, peer.peers),
            });
        }
        let address = |value: &str| ws_address(value).expect("validated").parse().expect("any string is an address");
        let config = CollectiveConfig::default()
            .with_num_devices(local_peers)
            .with_num_nodes(u32::try_from(node.nodes).map_err(|e| fail(peer, "nodes", e))?)
            .with_global_address(address(&node.coordinator))
            .with_node_address(address(&node.address))
            .with_data_service_port(node.data_service_port)
            // Burn's default global strategy, the ring, refuses tensors with no dimension of at
            // least `nodes` elements (`RingReduceImpossible`); the tree takes any shape.
            .with_global_all_reduce_strategy(AllReduceStrategy::Tree(2));
        debug_assert!(config.is_valid());
        let device = device.clone();
        within(peer, "joining the collective of several nodes", move || {
            burn_collective::register::<B>(PeerId::from(peer.rank), device, config)
        })
    }

    /// Unregisters `peer` once its loop has ended.
    ///
    /// # Errors
    /// [`TrainError::Peer`] when Burn's collective refuses or does not answer within
    /// `peer.timeout`.
    pub fn leave<B: Backend>(peer: Peer) -> Result<(), TrainError> {
        within(peer, "leaving", move || burn_collective::finish_collective::<B>(PeerId::from(peer.rank)))
    }

    /// Resets this process's collective after a peer died: every pending and later collective
    /// call of the other peers fails instead of waiting for it. A collective that is already
    /// gone (Burn's local server panics when another node vanishes mid-transfer, and its reset
    /// then panics too) is left as it is: the peers' calls fail anyway.
    pub fn abandon<B: Backend>() {
        let _ = std::panic::catch_unwind(burn_collective::reset_collective::<B>);
    }

    fn mean<B: Backend, const D: usize>(peer: Peer, t: Tensor<B, D>, what: &str) -> Result<Tensor<B, D>, TrainError> {
        let primitive = t.into_primitive().tensor();
        let reduced = within(peer, what, move || {
            burn_collective::all_reduce::<B>(PeerId::from(peer.rank), primitive, ReduceOperation::Mean)
        })?;
        Ok(Tensor::from_primitive(TensorPrimitive::Float(reduced)))
    }

    pub(super) fn mean_values<B: Backend>(
        peer: Peer,
        values: &[f64],
        device: &B::Device,
    ) -> Result<Vec<f64>, TrainError> {
        // f64 so that averaged losses stay as precise as one peer's.
        let tensor = Tensor::<B, 1>::from_data(TensorData::new(values.to_vec(), [values.len()]), device);
        let reduced = mean(peer, tensor, "averaging the losses")?;
        Ok(reduced.into_data().convert::<f64>().to_vec::<f64>().expect("f64 data"))
    }

    /// Every parameter gradient of `model` in `grads` replaced by its mean over the peers, in
    /// the model's parameter order (the same on every peer, which draws the same sub-models and
    /// so holds gradients for the same parameters).
    pub(super) fn mean_gradients<B: AutodiffBackend, M: AutodiffModule<B>>(
        peer: Peer,
        grads: GradientsParams,
        model: &M,
    ) -> Result<GradientsParams, TrainError> {
        struct Averaging<B> {
            peer: Peer,
            grads: GradientsParams,
            error: Option<TrainError>,
            backend: std::marker::PhantomData<B>,
        }
        impl<B: AutodiffBackend> ModuleVisitor<B> for Averaging<B> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                let id: ParamId = param.id;
                if self.error.is_some() {
                    return;
                }
                if let Some(g) = self.grads.remove::<B::InnerBackend, D>(id) {
                    match mean(self.peer, g, "averaging the gradients") {
                        Ok(m) => self.grads.register(id, m),
                        Err(e) => self.error = Some(e),
                    }
                }
            }
        }
        let mut visitor = Averaging::<B> { peer, grads, error: None, backend: std::marker::PhantomData };
        model.visit(&mut visitor);
        visitor.error.map_or(Ok(visitor.grads), Err)
    }
}
