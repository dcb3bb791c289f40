//! Backend choice at run time: `--device cpu|ndarray|wgpu|cuda`.

use clap::ValueEnum;

/// The device (and with it the backend) a command runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceKind {
    /// Flex, burn's CPU backend (SIMD + threads); the default.
    Cpu,
    /// The legacy NdArray CPU backend (feature `ndarray`).
    Ndarray,
    /// WebGPU through wgpu (feature `wgpu`).
    Wgpu,
    /// NVIDIA CUDA (feature `cuda`).
    Cuda,
}

impl DeviceKind {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu (flex)",
            DeviceKind::Ndarray => "cpu (ndarray)",
            DeviceKind::Wgpu => "wgpu",
            DeviceKind::Cuda => "cuda",
        }
    }

    /// The value of `--device` that picks it (also the profile folder's prefix).
    pub fn flag(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Ndarray => "ndarray",
            DeviceKind::Wgpu => "wgpu",
            DeviceKind::Cuda => "cuda",
        }
    }

    /// The cargo feature that compiles this backend in.
    pub fn feature(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "flex",
            DeviceKind::Ndarray => "ndarray",
            DeviceKind::Wgpu => "wgpu",
            DeviceKind::Cuda => "cuda",
        }
    }
}

/// The error for a backend that this binary was built without.
pub fn not_compiled(kind: DeviceKind) -> anyhow::Error {
    anyhow::anyhow!(
        "the `{}` backend was not compiled into this binary; rebuild with `cargo run -p sorted-runner --release --features {}`",
        kind.name(),
        kind.feature()
    )
}

/// Runs `probe` and turns a panic (a GPU backend whose driver cannot be loaded panics on first
/// use) into a clear error.
#[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(dead_code))]
pub fn probe_device(kind: DeviceKind, probe: impl FnOnce() + std::panic::UnwindSafe) -> anyhow::Result<()> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(probe);
    std::panic::set_hook(hook);
    result.map_err(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown error".into());
        anyhow::anyhow!(
            "the `{}` device could not be started ({why}); is a GPU with its driver present? Use `--device cpu` otherwise",
            kind.name()
        )
    })
}
