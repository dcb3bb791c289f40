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

/// One device of a kind, as `train.devices` and `--devices` name it: `cpu`, `ndarray`, `wgpu`,
/// `cuda`, optionally with an index (`cuda:1`, the second GPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceSpec {
    /// The backend.
    pub kind: DeviceKind,
    /// The device's index among the backend's devices; `None` is the backend's default device.
    pub index: Option<usize>,
}

/// What a device name may look like, for errors.
pub const DEVICE_SPEC_FORMS: &str = "cpu, ndarray, wgpu or cuda, optionally with `:index` (e.g. `cuda:1`)";

impl DeviceSpec {
    /// Parses `cpu`, `cuda:1`, ... (the kind as `--device` spells it).
    ///
    /// # Errors
    /// A message naming the text when it is no such name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a device ({DEVICE_SPEC_FORMS})");
        let (kind, index) = match text.split_once(':') {
            Some((kind, index)) => (kind, Some(index.parse::<u16>().map_err(|_| bad())? as usize)),
            None => (text, None),
        };
        let kind = DeviceKind::from_str(kind, true).map_err(|_| bad())?;
        Ok(Self { kind, index })
    }

    /// This device of backend `B` (which must be of this spec's kind): the default device, or
    /// the device of the same type with this index.
    pub fn device<B: burn::prelude::Backend>(&self) -> B::Device {
        use burn::tensor::backend::{Device, DeviceId};
        let default = B::Device::default();
        match self.index {
            None => default,
            Some(index) => {
                let type_id = default.to_id().type_id;
                B::Device::from_id(DeviceId { type_id, index_id: u16::try_from(index).unwrap_or(u16::MAX) })
            }
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}:{i}", self.kind.flag()),
            None => f.write_str(self.kind.flag()),
        }
    }
}
