//! Running the training loop as several data-parallel peers: one thread per device of this node,
//! each joined to Burn's collective (alone, or with the peers of other nodes), each training a
//! copy of the model on its shard of every batch; rank 0's model comes back.

use std::time::Duration;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;

#[cfg(feature = "collective")]
use crate::{LoopOutcome, TrainError, TrainState};
use crate::{NodeConfig, Peer, TrainTask};

/// A [`TrainTask`] whose sub-models peers' threads can share: the bounds of data-parallel
/// training, named once. Every such task is one (blanket impl).
pub trait PeerTask<B: AutodiffBackend, M: AutodiffModule<B>>: TrainTask<B, M, Sub: Send + Sync> {}

impl<B: AutodiffBackend, M: AutodiffModule<B>, T: TrainTask<B, M, Sub: Send + Sync>> PeerTask<B, M> for T {}

/// A data-parallel peer's thread panicked (`run_peers`, feature `collective`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a data-parallel peer panicked")]
pub struct PeerPanicked;

impl NodeConfig {
    /// The global peer of local peer `local` of this node's `local_peers`: rank
    /// `node * local_peers + local` of `nodes * local_peers`, whose collective calls wait at most
    /// `timeout`.
    pub fn peer(&self, local: usize, local_peers: usize, timeout: Duration) -> Peer {
        Peer { rank: self.node * local_peers + local, peers: self.nodes * local_peers, timeout }
    }
}

/// Data-parallel training: one thread per entry of `devices`, local peer `i` on `devices[i]`
/// (global rank `i`, or with `node = Some((config, timeout))` rank
/// [`config.peer(i, devices.len(), timeout)`](NodeConfig::peer) of a run over several nodes),
/// each joining the collective ([`join`](crate::join) or [`join_node`](crate::join_node)) and
/// calling `train(peer, device, model)` with its own copy of `model` on its device (typically
/// [`TrainLoop::run`](crate::TrainLoop::run) with [`LoopOptions::peer`](crate::LoopOptions)
/// set, on a task that prepares the peer's shard of every batch), then leaving. A peer whose
/// `train` fails resets the collective ([`abandon`](crate::abandon)), so the others fail too
/// instead of waiting for it. Rank 0 of this node returns the trained model (on its device).
///
/// Needs the `collective` feature.
///
/// # Errors
/// The first peer's error, in rank order: a failed join, `train`'s error, or [`PeerPanicked`].
#[cfg(feature = "collective")]
pub fn run_peers<B, M, E>(
    devices: &[B::Device],
    node: Option<(&NodeConfig, Duration)>,
    model: M,
    train: impl Fn(Peer, &B::Device, M) -> Result<LoopOutcome<M>, E> + Sync,
) -> Result<LoopOutcome<M>, E>
where
    B: AutodiffBackend,
    M: AutodiffModule<B, InnerModule: Send>,
    E: From<TrainError> + From<PeerPanicked> + Send,
{
    /// What a peer's thread returns: rank 0's trained weights and position, nothing for others.
    type PeerResult<I, E> = Result<Option<(I, TrainState)>, E>;
    let train = &train;
    let results: Vec<PeerResult<M::InnerModule, E>> = std::thread::scope(|scope| {
        let peers = devices.len();
        let handles: Vec<_> = devices
            .iter()
            .enumerate()
            .map(|(rank, device)| {
                let inner = model.valid();
                scope.spawn(move || {
                    let peer = match node {
                        Some((node, timeout)) => {
                            let peer = node.peer(rank, peers, timeout);
                            crate::join_node::<B::InnerBackend>(peer, peers, node, device)?;
                            peer
                        }
                        None => {
                            let peer = Peer::new(rank, peers);
                            crate::join::<B::InnerBackend>(peer, device)?;
                            peer
                        }
                    };
                    let result = train(peer, device, M::from_inner(inner).fork(device));
                    if result.is_err() {
                        crate::abandon::<B::InnerBackend>();
                    }
                    let _ = crate::leave::<B::InnerBackend>(peer);
                    // The node's first peer returns the model (the same on every peer).
                    result.map(|o| (rank == 0).then(|| (o.model.valid(), o.state)))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(PeerPanicked.into()))).collect()
    });
    let mut first = None;
    for result in results {
        match result {
            Ok(Some((inner, state))) => first = first.or(Some(Ok((inner, state)))),
            Ok(None) => {}
            Err(e) => {
                if !matches!(first, Some(Err(_))) {
                    first = Some(Err(e));
                }
            }
        }
    }
    let (inner, state) = first.expect("rank 0 returns the model or an error")?;
    Ok(LoopOutcome { model: M::from_inner(inner), state })
}
