//! Training on several machines (nodes): the `[distributed]` node file of `train --distributed`
//! and the `coordinator` command, over Burn's global collective (`burn-collective`).
//!
//! The experiment config is the same on every node; what differs per node (its index, its
//! address, where the coordinator is) lives in a small file of its own:
//!
//! ```toml
//! [distributed]
//! node = 0                        # this node, 0..nodes; node 0 writes checkpoints and reports
//! nodes = 2
//! address = "10.0.0.1:3001"       # where the other nodes reach this node's data service
//! coordinator = "10.0.0.1:3000"   # where `sorted-runner coordinator --port 3000` listens
//! timeout_s = 600                 # optional: how long a collective call waits for the others
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use sorted_sched::{NodeConfig, Peer};

/// This process's place in a training run over several nodes (`train --distributed FILE`).
#[derive(Clone, Debug)]
pub struct Distributed {
    /// The node settings handed to sorted-sched's `join_node`.
    pub node: NodeConfig,
    /// How long each collective call waits for the other nodes ([`Peer::timeout`]).
    pub timeout: Duration,
    /// The node file, for messages.
    pub source: PathBuf,
}

/// The node file's one table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeFile {
    distributed: NodeSection,
}

/// `[distributed]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeSection {
    node: usize,
    nodes: usize,
    address: String,
    coordinator: String,
    #[serde(default)]
    timeout_s: Option<f64>,
}

impl Distributed {
    /// Reads and validates a node file.
    ///
    /// # Errors
    /// An unreadable file, a TOML or key error, or a bad value, each naming the file and key.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading node file `{}`", path.display()))?;
        Self::from_toml(&text, path)
    }

    /// Parses and validates a node file's text (`source` names it in errors).
    ///
    /// # Errors
    /// A TOML or key error, or a bad value, each naming the file and key.
    pub fn from_toml(text: &str, source: &Path) -> anyhow::Result<Self> {
        let file: NodeFile = toml::from_str(text).with_context(|| format!("node file `{}`", source.display()))?;
        let d = file.distributed;
        let timeout_s = d.timeout_s.unwrap_or(Peer::DEFAULT_TIMEOUT.as_secs_f64());
        anyhow::ensure!(
            timeout_s.is_finite() && timeout_s > 0.0 && timeout_s <= 86_400.0,
            "node file `{}`: distributed.timeout_s = {timeout_s} must be in (0, 86400] seconds",
            source.display()
        );
        let port = d.address.rsplit_once(':').and_then(|(_, port)| port.parse::<u16>().ok()).unwrap_or(0);
        let node = NodeConfig {
            node: d.node,
            nodes: d.nodes,
            address: d.address,
            data_service_port: port,
            coordinator: d.coordinator,
        };
        if let Err(sorted_sched::TrainError::Peer { reason, .. }) = node.validate(Peer::new(0, 1)) {
            anyhow::bail!("node file `{}`, [distributed]: {reason}", source.display());
        }
        Ok(Self { node, timeout: Duration::from_secs_f64(timeout_s), source: source.to_path_buf() })
    }

    /// Refuses a training batch of `batch` examples that does not split over every node's
    /// `local_peers` (`source` is the experiment, for the message).
    ///
    /// # Errors
    /// Naming `data.batch_size` and the counts.
    pub fn check_batch(&self, batch: usize, local_peers: usize, source: &Path) -> anyhow::Result<()> {
        let peers = self.node.nodes * local_peers;
        anyhow::ensure!(
            batch.is_multiple_of(peers),
            "{}: data.batch_size = {batch} must be a multiple of all peers: {} nodes x {local_peers} local peers = {peers}",
            source.display(),
            self.node.nodes
        );
        Ok(())
    }

    /// The global rank of local peer `local` of `local_peers` on this node.
    pub fn peer(&self, local: usize, local_peers: usize) -> Peer {
        self.node.peer(local, local_peers, self.timeout)
    }
}

/// `coordinator`: runs Burn's global orchestrator on `port` until the process is stopped
/// (Ctrl-C). One coordinator serves one run.
///
/// # Errors
/// When the async runtime cannot start.
pub fn coordinator_cmd(port: u16, quiet: bool) -> anyhow::Result<()> {
    anyhow::ensure!(port > 0, "--port must be a port number above 0");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the coordinator's async runtime")?;
    if !quiet {
        eprintln!("coordinator: listening on port {port} (Ctrl-C stops it)");
    }
    runtime.block_on(burn_collective::start_global_orchestrator(port));
    Ok(())
}
