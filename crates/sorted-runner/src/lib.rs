#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod cli;
pub mod compare;
pub mod config;
mod config_document;
mod config_error;
mod data;
mod device;
pub mod distributed;
pub mod eval;
mod eval_command;
mod export;
pub mod heap;
pub mod llm;
pub mod lm;
mod memory_budget;
mod plot_axes;
pub mod profile;
pub mod provenance;
pub mod report;
pub mod run_folder;
mod select;
mod sort;
pub mod text;
mod train;
mod train_command;
mod trained_model;
mod transformer_experiment;

pub use cli::{
    Cli, Command, CompareArgs, CoordinatorArgs, EvalArgs, ExportArgs, GenerateArgs, LayoutArg, PerplexityArgs,
    ProfileArgs, SelectArgs, SoftArgs, SortArgs, TrainArgs,
};
pub use compare::compare_cmd;
pub use device::{DeviceKind, DeviceSpec};
pub use eval_command::eval_cmd;
pub use export::{ExportManifest, export_cmd, load_export};
pub use profile::profile_cmd;
pub use provenance::RunContext;
pub use select::{SelectOutcome, select_cmd};
pub use sort::SORT_SCORES_FILE;
pub use sorted_zoo::{EXPORT_FORMAT, ExportWeights, ExportedModel};
pub use train::{TrainOptions, TrainOutcome, train};
pub use train_command::{train_cmd, train_experiment};

use burn::prelude::Backend;
use burn::tensor::backend::AutodiffBackend;

/// Runs a parsed command line on the chosen device.
///
/// # Errors
/// Everything a command can fail with, with context naming the file or flag; or a backend that
/// was not compiled in.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = RunContext {
        device_name: cli.device.name().to_string(),
        quiet: cli.quiet,
        command: provenance::command_line(std::env::args()),
        commit: provenance::git_commit(),
    };
    match cli.device {
        DeviceKind::Cpu => {
            #[cfg(feature = "flex")]
            return run_on::<burn::backend::Autodiff<burn::backend::Flex>>(&cli, Default::default(), &ctx);
            #[cfg(not(feature = "flex"))]
            return Err(device::not_compiled(cli.device));
        }
        DeviceKind::Ndarray => {
            #[cfg(feature = "ndarray")]
            return run_on::<burn::backend::Autodiff<burn::backend::NdArray>>(&cli, Default::default(), &ctx);
            #[cfg(not(feature = "ndarray"))]
            return Err(device::not_compiled(cli.device));
        }
        DeviceKind::Wgpu => {
            #[cfg(feature = "wgpu")]
            {
                type W = burn::backend::Wgpu;
                device::probe_device(cli.device, || {
                    let _ = burn::tensor::Tensor::<W, 1>::zeros([1], &Default::default()).into_data();
                })?;
                return run_on::<burn::backend::Autodiff<W>>(&cli, Default::default(), &ctx);
            }
            #[cfg(not(feature = "wgpu"))]
            return Err(device::not_compiled(cli.device));
        }
        DeviceKind::Cuda => {
            #[cfg(feature = "cuda")]
            {
                type C = burn::backend::Cuda;
                device::probe_device(cli.device, || {
                    let _ = burn::tensor::Tensor::<C, 1>::zeros([1], &Default::default()).into_data();
                })?;
                return run_on::<burn::backend::Autodiff<C>>(&cli, Default::default(), &ctx);
            }
            #[cfg(not(feature = "cuda"))]
            return Err(device::not_compiled(cli.device));
        }
    }
}

/// Runs the command on backend `B` (training on `B`, evaluation and export on its inner
/// backend).
///
/// # Errors
/// Everything the command can fail with.
pub fn run_on<B: AutodiffBackend>(
    cli: &Cli,
    device: <B as burn::tensor::backend::BackendTypes>::Device,
    ctx: &RunContext,
) -> anyhow::Result<()>
where
    B::InnerBackend: Backend<Device = <B as burn::tensor::backend::BackendTypes>::Device>,
{
    match &cli.command {
        None => train_cmd::<B>(&TrainArgs::default(), &device, ctx).map(|_| ()),
        Some(Command::Train(args)) => train_cmd::<B>(args, &device, ctx).map(|_| ()),
        Some(Command::Eval(args)) => eval_cmd::<B::InnerBackend>(args, &device, ctx),
        Some(Command::Export(args)) => export_cmd::<B::InnerBackend>(args, &device, ctx).map(|_| ()),
        Some(Command::Profile(args)) => profile_cmd::<B::InnerBackend>(args, cli.device, &device, ctx).map(|_| ()),
        Some(Command::Select(args)) => select_cmd(args, cli.device, ctx).map(|_| ()),
        Some(Command::Compare(args)) => compare_cmd::<B>(args, cli.device, &device, ctx).map(|_| ()),
        Some(Command::Generate(args)) => llm::generate_cmd::<B::InnerBackend>(args, &device, ctx),
        Some(Command::Perplexity(args)) => llm::perplexity_cmd::<B::InnerBackend>(args, &device, ctx),
        Some(Command::Soft(args)) => llm::soft_cmd::<B>(args, &device, ctx),
        Some(Command::Sort(args)) => llm::sort_cmd::<B>(args, &device, ctx),
        Some(Command::Coordinator(args)) => distributed::coordinator_cmd(args.port, ctx.quiet),
    }
}
