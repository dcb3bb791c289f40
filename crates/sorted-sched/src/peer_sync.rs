//! Data-parallel training over several peers ([`LoopOptions::peer`](crate::LoopOptions)): every
//! peer draws the same sub-models (the sampler is a pure function of `(seed, step)`), computes
//! the gradients of its shard of the global batch, and the gradients and losses are averaged
//! with Burn's collective all-reduce (`burn-collective`, feature `collective`) before the
//! identical optimizer step on every peer. With equal shards, the mean over peers of the
//! shard-mean losses is the global batch's mean loss, so `n` peers follow the one-peer run up
//! to float summation order.
//!
//! Peers are threads of one process here (one per device of a node, registered with
//! [`join`]); Burn's collective also connects processes on several nodes through its global
//! orchestrator.

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;

use crate::{Peer, TrainError};

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
pub use collective::{abandon, join, leave};

#[cfg(feature = "collective")]
mod collective {
    use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
    use burn::optim::GradientsParams;
    use burn::prelude::*;
    use burn::tensor::TensorPrimitive;
    use burn::tensor::backend::AutodiffBackend;
    use burn_collective::{CollectiveConfig, PeerId, ReduceOperation};

    use crate::{Peer, TrainError};

    fn fail(peer: Peer, what: &str, reason: impl std::fmt::Debug) -> TrainError {
        TrainError::Peer { rank: peer.rank, peers: peer.peers, reason: format!("{what}: {reason:?}") }
    }

    /// Registers `peer` on `device` with the collective of this process (before its loop
    /// runs; `B` is the inner backend of an autodiff one). Every peer must join.
    ///
    /// # Errors
    /// [`TrainError::Peer`] when Burn's collective refuses.
    pub fn join<B: Backend>(peer: Peer, device: &B::Device) -> Result<(), TrainError> {
        let config = CollectiveConfig::default().with_num_devices(peer.peers);
        burn_collective::register::<B>(PeerId::from(peer.rank), device.clone(), config)
            .map_err(|e| fail(peer, "joining the collective", e))
    }

    /// Unregisters `peer` once its loop has ended.
    ///
    /// # Errors
    /// [`TrainError::Peer`] when Burn's collective refuses.
    pub fn leave<B: Backend>(peer: Peer) -> Result<(), TrainError> {
        burn_collective::finish_collective::<B>(PeerId::from(peer.rank)).map_err(|e| fail(peer, "leaving", e))
    }

    /// Resets this process's collective after a peer died: every pending and later collective
    /// call of the other peers fails instead of waiting for it.
    pub fn abandon<B: Backend>() {
        burn_collective::reset_collective::<B>();
    }

    fn mean<B: Backend, const D: usize>(peer: Peer, t: Tensor<B, D>, what: &str) -> Result<Tensor<B, D>, TrainError> {
        let primitive = t.into_primitive().tensor();
        let reduced = burn_collective::all_reduce::<B>(PeerId::from(peer.rank), primitive, ReduceOperation::Mean)
            .map_err(|e| fail(peer, what, e))?;
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
