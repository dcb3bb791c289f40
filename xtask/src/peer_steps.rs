//! `cargo xtask bench --peer --train-steps`: one sorted training step of each zoo family
//! (ResNet, MobileNetV2, MiniLM fine-tuning) against its PyTorch replica
//! `benches/peer/train_steps.py`, alternated (issue 29, item 1b).
//!
//! ```text
//! cargo xtask bench --peer --train-steps --pairs 2 --torch-threads 2
//! ```
//!
//! Ours runs `sorted-runner train --config <cfg> --steps 10g --stop-after 2g`: the progress
//! lines then come every `g` steps, and the step time is `(t(2g) - t(g)) / g` from the lines
//! `step N/T .. (X s)`, so the first `g` steps (allocation, caches) stay out of it, and
//! `--stop-after` ends the run with a checkpoint instead of the evaluation of every sub-model
//! (many minutes for the ResNet). The replica runs `g` untimed steps, then `g` timed ones.
//! The section replaces an earlier copy of itself in `docs/results/bench-peer.md` (or is
//! appended); the other sections stay as they are.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::peer::{PeerOptions, Timed, median, timed};

/// The heading the section starts with (and is found again by).
pub const HEADING: &str = "## One sorted training step per zoo family";
/// The replica, relative to the workspace root.
const REPLICA: &str = "benches/peer/train_steps.py";

/// One compared workload.
struct Family {
    /// What the table calls it.
    label: &'static str,
    /// Its config, relative to the workspace root.
    config: &'static str,
    /// The replica's `--model`.
    model: &'static str,
    /// Steps per timing window: `g` untimed, then `g` timed.
    window: u64,
}

/// The three families, each with a window that keeps ours under ~1 minute per run on 2 cores.
const FAMILIES: [Family; 3] = [
    Family {
        label: "ResNet-32, sandwich k = 4 + distillation, batch 128, SGD",
        config: "configs/fashion-resnet.toml",
        model: "resnet",
        window: 5,
    },
    Family {
        label: "MobileNetV2 x0.5, uniform k = 4, batch 128, SGD",
        config: "configs/fashion-mobilenetv2.toml",
        model: "mobilenet_v2",
        window: 3,
    },
    Family {
        label: "MiniLM-L6 fine-tuning, uniform k = 4, batch 32, AdamW",
        config: "configs/rt-minilm-sorted.toml",
        model: "minilm",
        window: 4,
    },
];

/// One timed run and the step time it reports (ms).
#[derive(Clone, Copy)]
struct StepRun {
    process: Timed,
    ms: f64,
}

/// Runs every family `opts.pairs` times, ours then the replica's, and returns the Markdown
/// section (starting with [`HEADING`]).
///
/// # Errors
/// A failed run, or a run whose output lacks the step times.
pub fn section(opts: &PeerOptions, root: &Path, runner: &Path, python: &Path, scratch: &Path) -> Result<String> {
    let mut rows = Vec::new();
    let mut replica_json = Vec::new();
    for family in &FAMILIES {
        let g = family.window;
        let (mut ours, mut peer) = (Vec::new(), Vec::new());
        for pair in 0..opts.pairs {
            let out = scratch.join(format!("steps-{}-{pair}", family.model));
            let args = ours_args(family, &out);
            eprintln!("{} pair {}/{}: sorted-runner {}", family.model, pair + 1, opts.pairs, args.join(" "));
            let (process, _, stderr) = timed(Command::new(runner).args(&args).current_dir(root))?;
            let ms = ours_ms_per_step(&stderr, g)
                .with_context(|| format!("no progress lines at steps {g} and {} from sorted-runner", 2 * g))?;
            eprintln!("  {ms:.0} ms/step, utilisation {:.2}, load {:.2}", process.utilisation(), process.load);
            ours.push(StepRun { process, ms });

            let mut args = vec![REPLICA.to_string(), "--model".into(), family.model.into()];
            args.extend(["--steps".into(), g.to_string(), "--warmup".into(), g.to_string()]);
            if let Some(t) = opts.torch_threads {
                args.extend(["--threads".into(), t.to_string()]);
            }
            eprintln!("{} pair {}/{}: {} {}", family.model, pair + 1, opts.pairs, python.display(), args.join(" "));
            let (process, stdout, _) = timed(Command::new(python).args(&args).current_dir(root))?;
            let json: serde_json::Value =
                serde_json::from_str(stdout.trim()).context("parsing the step replica's JSON line")?;
            let ms = json["ms_per_step"].as_f64().context("no ms_per_step in the replica's output")?;
            eprintln!("  {ms:.0} ms/step, utilisation {:.2}, load {:.2}", process.utilisation(), process.load);
            peer.push(StepRun { process, ms });
            if pair + 1 == opts.pairs {
                replica_json.push(stdout.trim().to_string());
            }
        }
        rows.push((family, ours, peer));
    }
    Ok(render(opts, &rows, &replica_json))
}

/// `sorted-runner train` for `family`: `10 g` steps (a progress line every `g`), stopped after
/// `2 g` with a checkpoint, into `out`.
fn ours_args(family: &Family, out: &Path) -> Vec<String> {
    let g = family.window;
    vec![
        "train".into(),
        "--config".into(),
        family.config.into(),
        "--steps".into(),
        (10 * g).to_string(),
        "--stop-after".into(),
        (2 * g).to_string(),
        "--out".into(),
        out.display().to_string(),
    ]
}

/// Milliseconds per step between the progress lines of steps `g` and `2 g`
/// (`step N/T loss .. lr .. (X s)`, X counted from the loop's start).
fn ours_ms_per_step(stderr: &str, g: u64) -> Option<f64> {
    let at = |step: u64| {
        stderr.lines().find_map(|l| {
            let rest = l.strip_prefix("step ")?;
            let (n, _) = rest.split_once('/')?;
            (n.parse::<u64>().ok()? == step).then_some(())?;
            l.rsplit_once('(')?.1.strip_suffix(" s)")?.parse::<f64>().ok()
        })
    };
    Some((at(2 * g)? - at(g)?) * 1e3 / g as f64)
}

type Row<'a> = (&'a Family, Vec<StepRun>, Vec<StepRun>);

fn render(opts: &PeerOptions, rows: &[Row<'_>], replica_json: &[String]) -> String {
    let mut s = String::new();
    let threads = opts.torch_threads.map_or_else(|| "torch's default".to_string(), |t| t.to_string());
    let _ = writeln!(s, "\n{HEADING}\n");
    let _ = writeln!(
        s,
        "Written by `cargo xtask bench --peer --train-steps --pairs {} --profile {}{}` on {}; {} pairs \
         alternated per family. Ours: `sorted-runner train --config <cfg> --steps 10g --stop-after 2g` \
         (no final evaluation), the step time from its progress lines, `(t(2g) - t(g)) / g` (the first \
         g steps untimed). PyTorch: `python {REPLICA} --model <m> --warmup g --steps g` (torch threads: \
         {threads}), the mean of its g timed steps; its docstring lists what it replicates and how it \
         differs (random weights of the same shapes, its own random draws of sub-models and batches). \
         Each step's work depends on the sub-models drawn (and, for MiniLM, on the padded length), so a \
         few steps give a noisy mean on both sides. Utilisation is (user + sys) / wall of the whole \
         process (ours: also start-up, data loading and the final checkpoint; the replica: also \
         importing torch and, for MiniLM, tokenizing), load the 1-minute load average before the run.\n",
        opts.pairs,
        opts.profile,
        opts.torch_threads.map(|t| format!(" --torch-threads {t}")).unwrap_or_default(),
        crate::bench::utc_now(),
        opts.pairs,
    );
    let _ = writeln!(
        s,
        "| step | g | ours ms/step (median) | PyTorch ms/step (median) | ratio ours / PyTorch | ours util. | PyTorch util. |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
    let med = |xs: &[StepRun], f: fn(&StepRun) -> f64| median(xs.iter().map(f).collect());
    for (family, ours, peer) in rows {
        let (o, p) = (med(ours, |r| r.ms), med(peer, |r| r.ms));
        let _ = writeln!(
            s,
            "| {} (`{}`) | {} | {o:.0} | {p:.0} | **{:.2}** | {:.2} | {:.2} |",
            family.label,
            family.config,
            family.window,
            o / p,
            med(ours, |r| r.process.utilisation()),
            med(peer, |r| r.process.utilisation())
        );
    }
    let _ = writeln!(s, "\nEvery run:\n");
    let _ = writeln!(
        s,
        "| family | pair | ours ms/step | ours util. | load before | PyTorch ms/step | PyTorch util. | load before |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for (family, ours, peer) in rows {
        for (i, (a, b)) in ours.iter().zip(peer).enumerate() {
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} |",
                family.model,
                i + 1,
                a.ms,
                a.process.utilisation(),
                a.process.load,
                b.ms,
                b.process.utilisation(),
                b.process.load
            );
        }
    }
    let _ = writeln!(s, "\nThe replica's last output per family:\n");
    for json in replica_json {
        let _ = writeln!(s, "- `{json}`");
    }
    s
}

/// `report` with `section` (starting with [`HEADING`]) in place of the part of `report` under
/// that heading (up to the next `## ` heading), or appended when `report` has none.
pub fn splice(report: &str, section: &str) -> String {
    let section = section.trim_start_matches('\n');
    match find_section(report) {
        Some((start, end)) => {
            let rest = &report[end..];
            let sep = if rest.is_empty() { "" } else { "\n" };
            format!("{}{}{sep}{rest}", &report[..start], section.trim_end_matches('\n').to_string() + "\n")
        }
        None => format!("{}\n{section}", report.trim_end_matches('\n').to_string() + "\n"),
    }
}

/// The section under [`HEADING`] in `report`, if any (to carry it over into a new report).
pub fn existing(report: &str) -> Option<&str> {
    find_section(report).map(|(start, end)| &report[start..end])
}

/// Byte range of the section under [`HEADING`]: from its heading line to the next `## `
/// heading line or the end.
fn find_section(report: &str) -> Option<(usize, usize)> {
    let start = report.match_indices(HEADING).find(|(i, _)| *i == 0 || report[..*i].ends_with('\n'))?.0;
    let after = start + HEADING.len();
    let end = report[after..].find("\n## ").map_or(report.len(), |i| after + i + 1);
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_time_is_between_the_two_window_lines() {
        let stderr = "x: 169 sub-models\nstep 5/50 loss 2.3 lr 1.0e-3 (9.0 s)\nstep 10/50 loss 2.2 lr 2.0e-3 (17.5 s)\n\
                      stopped at step 10/50\n";
        assert_eq!(ours_ms_per_step(stderr, 5), Some(1700.0));
        assert_eq!(ours_ms_per_step(stderr, 4), None);
        assert_eq!(ours_ms_per_step("nothing", 5), None);
    }

    #[test]
    fn ours_stops_after_two_windows_of_a_tenth() {
        let args = ours_args(&FAMILIES[0], Path::new("/tmp/o"));
        let at = |flag: &str| args[args.iter().position(|a| a == flag).expect("flag") + 1].clone();
        assert_eq!((at("--steps"), at("--stop-after"), at("--out")), ("50".into(), "10".into(), "/tmp/o".into()));
    }

    #[test]
    fn the_section_is_replaced_or_appended() {
        let section = format!("\n{HEADING}\n\nnew\n");
        let without = "# Report\n\nintro\n\n## Decoding\n\ntable\n";
        let appended = splice(without, &section);
        assert_eq!(appended, format!("{without}\n{HEADING}\n\nnew\n"));
        assert_eq!(existing(&appended), Some(format!("{HEADING}\n\nnew\n").as_str()));
        let middle = format!("# Report\n\n{HEADING}\n\nold\n\n## Decoding\n\ntable\n");
        assert_eq!(splice(&middle, &section), format!("# Report\n\n{HEADING}\n\nnew\n\n## Decoding\n\ntable\n"));
        assert_eq!(splice(&appended, &format!("{HEADING}\n\nnewer\n")), format!("{without}\n{HEADING}\n\nnewer\n"));
        assert_eq!(existing(without), None);
    }
}
