//! Training over several nodes (issue 32, item 3b/3c): two `sorted-runner train --distributed`
//! processes on loopback, joined by a `sorted-runner coordinator` (Burn's global orchestrator),
//! train the one-process model; a node killed mid-run ends the other with an error within its
//! timeout, and node 0's last checkpoint stays loadable.

#![cfg(feature = "flex")]

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TINY_MLP, rng_guard, train, write_config};
use crate::data_parallel::weights;

const RUNNER: &str = env!("CARGO_BIN_EXE_sorted-runner");

/// A port nobody listens on now (the OS's pick; released before use).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed when dropped (a failing test leaves no process behind).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    /// Waits at most `limit` for the process to end; its output.
    fn finish(mut self, limit: Duration) -> Output {
        let start = Instant::now();
        while self.0.try_wait().unwrap().is_none() {
            assert!(start.elapsed() < limit, "a node did not end within {limit:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
        let child = std::mem::replace(&mut self.0, Command::new("true").spawn().unwrap());
        child.wait_with_output().unwrap()
    }
}

/// `sorted-runner coordinator` on a free port, once it accepts connections.
fn coordinator() -> (Process, u16) {
    let port = free_port();
    let child = Command::new(RUNNER)
        .args(["--quiet", "coordinator", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let process = Process(child);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "the coordinator did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    (process, port)
}

/// Node `node` of 2 training `config` into `out`.
fn node(dir: &Path, config: &Path, out: &Path, node: usize, coordinator: u16, timeout_s: u32) -> Process {
    let file = dir.join(format!("node{node}.toml"));
    let text = format!(
        "[distributed]\nnode = {node}\nnodes = 2\naddress = \"127.0.0.1:{}\"\ncoordinator = \"127.0.0.1:{coordinator}\"\ntimeout_s = {timeout_s}\n",
        free_port()
    );
    std::fs::write(&file, text).unwrap();
    let child = Command::new(RUNNER)
        .arg("--quiet")
        .arg("train")
        .arg("--config")
        .arg(config)
        .arg("--out")
        .arg(out)
        .arg("--distributed")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Process(child)
}

#[test]
fn issue_32_two_nodes_on_loopback_train_the_one_process_model() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), TINY_MLP);
    let (one, n0, n1) = (dir.path().join("one"), dir.path().join("n0"), dir.path().join("n1"));
    let (_coordinator, port) = coordinator();
    let a = node(dir.path(), &config, &n0, 0, port, 60);
    let b = node(dir.path(), &config, &n1, 1, port, 60);
    let (a, b) = (a.finish(Duration::from_secs(300)), b.finish(Duration::from_secs(60)));
    let log = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(a.status.success(), "node 0: {}", log(&a));
    assert!(b.status.success(), "node 1: {}", log(&b));
    // Node 0 writes the checkpoints and the reports; node 1 neither.
    assert!(n0.join("results.json").exists() && n0.join("checkpoint").exists());
    assert!(!n1.join("checkpoint").exists() && !n1.join("results.json").exists());
    train(&config, &one, None);
    let (x, y) = (weights(&one), weights(&n0));
    assert_eq!(x.len(), y.len());
    let worst = x.iter().zip(&y).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "largest weight difference between one process and two nodes: {worst}");
}

#[test]
fn issue_32_a_killed_node_ends_the_other_within_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let long =
        TINY_MLP.replace("steps = 40", "steps = 100000").replace("checkpoint_every = 16", "checkpoint_every = 8");
    let config = write_config(dir.path(), &long);
    let (n0, n1) = (dir.path().join("n0"), dir.path().join("n1"));
    let (_coordinator, port) = coordinator();
    let a = node(dir.path(), &config, &n0, 0, port, 5);
    let mut b = node(dir.path(), &config, &n1, 1, port, 5);
    // Kill node 1 once node 0 has written a checkpoint generation.
    let start = Instant::now();
    while !n0.join("checkpoint").read_dir().is_ok_and(|mut d| d.next().is_some()) {
        assert!(start.elapsed() < Duration::from_secs(240), "node 0 wrote no checkpoint");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    b.0.kill().unwrap();
    let killed = Instant::now();
    let a = a.finish(Duration::from_secs(120));
    let waited = killed.elapsed();
    let log = String::from_utf8_lossy(&a.stderr);
    assert!(!a.status.success(), "node 0 went on without node 1: {log}");
    assert!(log.contains("peer 0 of 2"), "the error names the peer: {log}");
    assert!(waited < Duration::from_secs(60), "node 0 took {waited:?} to give up");
    if std::env::var_os("SHOW_NODE_LOG").is_some() {
        eprintln!("node 0 gave up {waited:?} after node 1 was killed:\n{log}");
    }
    // Node 0's last checkpoint is still a whole one.
    assert!(!weights(&n0).is_empty());
}

#[test]
fn issue_32_bad_node_files_are_refused_naming_the_file_and_key() {
    use sorted_runner::distributed::Distributed;
    let source = Path::new("node.toml");
    let good = "[distributed]\nnode = 1\nnodes = 2\naddress = \"10.0.0.2:3001\"\ncoordinator = \"10.0.0.1:3000\"\n";
    let d = Distributed::from_toml(good, source).unwrap();
    assert_eq!((d.node.data_service_port, d.timeout), (3001, sorted_sched::Peer::DEFAULT_TIMEOUT));
    // Node 1's local peers come after node 0's.
    assert_eq!((d.peer(1, 2).rank, d.peer(1, 2).peers), (3, 4));
    let cases = [
        (good.replace("node = 1", "node = 2"), "`node` = 2 must be below `nodes` = 2"),
        (good.replace(":3001", ""), "`address`"),
        (good.replace("10.0.0.1:3000", "http://10.0.0.1:3000"), "`coordinator`"),
        (good.replace("nodes = 2", "nodes = 2\nport = 4"), "unknown field `port`"),
        (format!("{good}timeout_s = -1\n"), "distributed.timeout_s = -1"),
        (good.replace("nodes = 2\n", ""), "missing field `nodes`"),
    ];
    for (text, expected) in cases {
        let err = format!("{:#}", Distributed::from_toml(&text, source).unwrap_err());
        assert!(err.contains("node.toml") && err.contains(expected), "{expected}: {err}");
    }
}

#[test]
fn issue_32_distributed_refuses_a_batch_that_does_not_split_over_every_node() {
    let dir = tempfile::tempdir().unwrap();
    // 33 images split over 3 local peers but not over 2 nodes x 3.
    let config = write_config(
        dir.path(),
        &TINY_MLP
            .replace("batch_size = 32", "batch_size = 33")
            .replace("checkpoint_every = 16", "checkpoint_every = 16\npeers = 3"),
    );
    let file = dir.path().join("node.toml");
    std::fs::write(
        &file,
        "[distributed]\nnode = 0\nnodes = 2\naddress = \"127.0.0.1:1\"\ncoordinator = \"127.0.0.1:2\"\n",
    )
    .unwrap();
    let out = Command::new(RUNNER)
        .arg("--quiet")
        .arg("train")
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(dir.path().join("run"))
        .arg("--distributed")
        .arg(&file)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("data.batch_size = 33") && log.contains("2 nodes x 3 local peers = 6"), "{log}");
}
