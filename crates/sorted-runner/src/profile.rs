//! `profile`: latency and peak memory of every sub-model on the deployment device, against
//! accuracy, with the Pareto front.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use burn::prelude::*;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use sorted_nn::SubModel;
use sorted_zoo::SortedClassifier;
use sorted_zoo::deploy::{DeployError, LatencyOptions, SortedModel, SubModelTiming, WeightLayout};
pub use sorted_zoo::deploy::{LatencyFit, LatencyProfile, OUTLIER_FACTOR, ProfileRow, RatioSummary, spearman};

use crate::cli::ProfileArgs;
use crate::config::Experiment;
use crate::config::load_run;
use crate::device::DeviceKind;
use crate::plot_axes::log_ticks;
use crate::provenance::RunContext;
use crate::provenance::{machine, write_file};
use crate::report::RunReport;
use crate::trained_model::{ModelVisitor, saved_or_calibrated_stats, visit_trained};

/// How a profile was produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileMeta {
    /// The profiled run folder.
    pub run: String,
    /// The device/backend the latencies were measured on.
    pub device: String,
    /// Images per forward pass.
    pub batch_size: usize,
    /// The memory order of the linear weights while serving (absent in profiles written
    /// before it was an option: those used `input-major`).
    #[serde(default)]
    pub weight_layout: WeightLayout,
    /// Warm-up and timed passes per sub-model.
    pub options: LatencyOptions,
    /// What `peak_bytes` measures (or why it is absent).
    pub memory: String,
    /// The command line.
    pub command: String,
    /// The commit of the working tree.
    pub commit: String,
    /// CPU model and cores.
    pub machine: String,
    /// Wall time of the whole profile, seconds.
    pub wall_seconds: f64,
}

/// Everything `profile.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileReport {
    /// Provenance.
    pub meta: ProfileMeta,
    /// The rows and what they say together.
    #[serde(flatten)]
    pub profile: LatencyProfile,
}

impl ProfileReport {
    /// Reads `profile.json` from a profile folder.
    ///
    /// # Errors
    /// When it is missing (with the command that makes it) or not a profile.
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("profile.json");
        let bytes = std::fs::read(&path).with_context(|| format!("reading `{}`", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing `{}`", path.display()))
    }

    fn headline(&self) -> String {
        let p = &self.profile;
        format!(
            "{} sub-models on {} at batch {} ({} weights): full model {:.4} ms (median of {}); latency vs FLOPs Spearman {:.3}; \
             median latency-ratio / FLOPs-ratio {:.2} ({} outside [{:.1}, {:.1}]); fit: {:.4} ms fixed ({:.0}% of the full \
             model) + {:.4} ms per MFLOP (R^2 {:.3}); {} on the latency/accuracy front",
            p.rows.len(),
            self.meta.device,
            self.meta.batch_size,
            self.meta.weight_layout,
            p.full_latency_ms,
            self.meta.options.repeats,
            p.spearman_latency_flops,
            p.median_ratio_of_ratios,
            p.outliers().len(),
            1.0 / OUTLIER_FACTOR,
            OUTLIER_FACTOR,
            p.latency_fit.fixed_ms,
            100.0 * p.latency_fit.fixed_share_of_full,
            p.latency_fit.ms_per_mflop,
            p.latency_fit.r_squared,
            p.front.len()
        )
    }

    fn markdown(&self) -> String {
        let m = &self.meta;
        let mut s = format!("# Latency profile of `{}`\n\n{}\n\n", m.run, self.headline());
        if let Some(r) = &self.profile.sliced_over_dense {
            let _ = writeln!(
                s,
                "Sliced / dense-copy latency (same weight layout, interleaved): median {:.3}, p10 {:.3}, p90 {:.3}, max {:.3} ({}); \
                 {} of {} within 5 %.\n",
                r.median, r.p10, r.p90, r.max.0, r.max.1, r.within_5_percent, r.n
            );
        }
        s.push_str("| | |\n|---|---|\n");
        for (k, v) in [
            ("command", m.command.clone()),
            ("commit", m.commit.clone()),
            ("machine", m.machine.clone()),
            ("device", m.device.clone()),
            ("batch size", m.batch_size.to_string()),
            ("weight layout", m.weight_layout.to_string()),
            ("warm-up / timed passes", format!("{} / {}", m.options.warmup, m.options.repeats)),
            ("memory", m.memory.clone()),
            ("wall time", format!("{:.1} s", m.wall_seconds)),
        ] {
            let _ = writeln!(s, "| {k} | `{v}` |");
        }
        s.push_str(
            "\nLatency vs accuracy with the front: `profile.svg`. Every sub-model (front marked *):\n\n\
             | sub-model | params | MFLOPs | accuracy % | median ms | p90 ms | peak KiB | latency / full | FLOPs / full | ratio of ratios | dense ms |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.profile.rows {
            let _ = writeln!(
                s,
                "| {}{} | {} | {:.3} | {:.2} | {:.4} | {:.4} | {} | {:.3} | {:.3} | {:.2} | {} |",
                r.sub_model,
                if r.on_front { " *" } else { "" },
                r.params,
                r.flops as f64 / 1e6,
                100.0 * r.accuracy,
                r.latency.median_ms,
                r.latency.p90_ms,
                r.peak_bytes.map_or("-".into(), |b| format!("{:.1}", b as f64 / 1024.0)),
                r.latency_ratio,
                r.flops_ratio,
                r.ratio_of_ratios,
                r.dense_latency.as_ref().map_or("-".into(), |d| format!("{:.4}", d.median_ms))
            );
        }
        s
    }

    fn csv(&self) -> String {
        let mut s = String::from(
            "sub_model,depth,params,flops,accuracy,median_ms,min_ms,p90_ms,peak_bytes,param_bytes,latency_ratio,flops_ratio,ratio_of_ratios,on_front,dense_median_ms\n",
        );
        for r in &self.profile.rows {
            let _ = writeln!(
                s,
                "{},{},{},{},{:.6},{:.6},{:.6},{:.6},{},{},{:.6},{:.6},{:.6},{},{}",
                r.sub_model,
                r.depth,
                r.params,
                r.flops,
                r.accuracy,
                r.latency.median_ms,
                r.latency.min_ms,
                r.latency.p90_ms,
                r.peak_bytes.map_or(String::new(), |b| b.to_string()),
                r.param_bytes,
                r.latency_ratio,
                r.flops_ratio,
                r.ratio_of_ratios,
                r.on_front,
                r.dense_latency.as_ref().map_or(String::new(), |d| format!("{:.6}", d.median_ms))
            );
        }
        s
    }

    /// Writes `profile.json`, `profile.csv`, `profile.md` and `profile.svg` into `dir`, each
    /// atomically.
    ///
    /// # Errors
    /// When a file cannot be written.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
        write_file(&dir.join("profile.json"), &serde_json::to_vec_pretty(self).expect("profile serialises"))?;
        write_file(&dir.join("profile.csv"), self.csv().as_bytes())?;
        write_file(&dir.join("profile.md"), self.markdown().as_bytes())?;
        write_latency_plot(self, &dir.join("profile.svg"))
    }
}

/// The default profile folder of a run for a device, batch size and weight layout:
/// `<run>/profile/<device>-b<batch size>`, with `-output-major` appended for that layout.
pub fn profile_dir(run: &Path, device: DeviceKind, batch_size: usize, layout: WeightLayout) -> PathBuf {
    let suffix = match layout {
        WeightLayout::InputMajor => String::new(),
        other => format!("-{other}"),
    };
    run.join("profile").join(format!("{}-b{batch_size}{suffix}", device.flag()))
}

/// `profile`: measures every sub-model of a run and writes the profile folder; returns it.
///
/// # Errors
/// A run without `results.json` (evaluate first), bad options, or a failing device.
pub fn profile_cmd<E: Backend>(
    args: &ProfileArgs,
    device_kind: DeviceKind,
    device: &E::Device,
    ctx: &RunContext,
) -> anyhow::Result<PathBuf> {
    let started = Instant::now();
    anyhow::ensure!(args.batch_size >= 1, "--batch-size must be at least 1");
    anyhow::ensure!(args.repeats >= 1, "--repeats must be at least 1");
    let _folder = crate::run_folder::RunFolder::open(&args.run)?;
    let (exp, checkpoint) = load_run(&args.run)?;
    let results = RunReport::read(&args.run).with_context(|| {
        format!("`profile` needs the accuracies of `{0}`: run `sorted-runner eval --run {0}` first", args.run.display())
    })?;
    let accuracy: HashMap<String, f64> = results.results.iter().map(|r| (r.sub_model.clone(), r.accuracy)).collect();
    let data = crate::data::load(&exp)?;
    anyhow::ensure!(
        args.batch_size <= data.test.len(),
        "--batch-size {} is larger than the test set ({} images)",
        args.batch_size,
        data.test.len()
    );
    let indices: Vec<usize> = (0..args.batch_size).collect();
    let images = data.batcher.batch::<E>(&data.test, &indices, device).images;
    let options = LatencyOptions { warmup: args.warmup, repeats: args.repeats };
    // Host heap is what a CPU backend's activations live in; a GPU's memory is not visible
    // through burn's generic API, and host numbers would mislead there.
    let measure_memory = matches!(device_kind, DeviceKind::Cpu | DeviceKind::Ndarray) && crate::heap::counting();
    let memory = if measure_memory {
        "peak host heap above the pre-call level during one forward pass (counting global allocator)".to_string()
    } else if matches!(device_kind, DeviceKind::Cpu | DeviceKind::Ndarray) {
        "not measured: the counting allocator is only installed in the sorted-runner binary".to_string()
    } else {
        "not measured: device memory of GPU backends is not exposed through burn's backend API".to_string()
    };
    if !ctx.quiet {
        eprintln!(
            "profiling {} sub-models of {} on {} (batch {}, {} weights, {} warm-up + {} timed passes each)",
            exp.space.len(),
            args.run.display(),
            device_kind.name(),
            args.batch_size,
            WeightLayout::from(args.weight_layout),
            args.warmup,
            args.repeats
        );
    }
    let measured = visit_trained::<E, _>(
        &exp,
        &data,
        &checkpoint,
        device,
        Measure {
            exp: &exp,
            data: &data,
            images,
            options,
            measure_memory,
            compare_dense: args.compare_dense,
            weight_layout: args.weight_layout.into(),
            run: &args.run,
        },
    )?;
    let profile = LatencyProfile::new(measured, &exp.space.largest(), |sub| accuracy.get(&sub.to_string()).copied())
        .map_err(|e| match e {
            DeployError::MissingAccuracy { sub_model } => anyhow::anyhow!(
                "`{}` has no row for sub-model {sub_model}: re-run `sorted-runner eval`",
                args.run.display()
            ),
            DeployError::NotProfiled { .. } => anyhow::anyhow!("the full model was not profiled"),
            e => e.into(),
        })?;
    let report = ProfileReport {
        meta: ProfileMeta {
            run: args.run.display().to_string(),
            device: device_kind.name().to_string(),
            batch_size: args.batch_size,
            weight_layout: args.weight_layout.into(),
            options,
            memory,
            command: ctx.command.clone(),
            commit: ctx.commit.clone(),
            machine: machine(),
            wall_seconds: started.elapsed().as_secs_f64(),
        },
        profile,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| profile_dir(&args.run, device_kind, args.batch_size, args.weight_layout.into()));
    report.write(&out)?;
    if !ctx.quiet {
        println!("{}", report.headline());
        println!("wrote {}/{{profile.json, profile.csv, profile.md, profile.svg}}", out.display());
    }
    Ok(out)
}

struct Measure<'a, E: Backend> {
    exp: &'a Experiment,
    data: &'a crate::data::RunData,
    images: Tensor<E, 4>,
    options: LatencyOptions,
    measure_memory: bool,
    compare_dense: bool,
    weight_layout: WeightLayout,
    run: &'a Path,
}

impl<E: Backend> ModelVisitor<E> for Measure<'_, E> {
    type Output = Vec<SubModelTiming>;

    fn visit<M: SortedClassifier<E>>(self, model: M) -> anyhow::Result<Vec<SubModelTiming>> {
        let device = self.images.device();
        let subs: Vec<SubModel> = self.exp.space.iter().collect();
        let mut serving = SortedModel::new(model, self.exp.space.clone())?.with_weight_layout(self.weight_layout);
        if serving.model().has_batch_norm() {
            let all = saved_or_calibrated_stats(self.run, self.exp, self.data, serving.model(), &subs, &device)?;
            for (sub, stats) in subs.iter().zip(all) {
                serving.insert_norm_stats(sub, stats)?;
            }
        }
        let mut timings = serving.time_sub_models(&self.images, &subs, self.options, self.compare_dense)?;
        if self.measure_memory {
            serving.measure_peak_bytes(&self.images, &mut timings, |pass| crate::heap::peak_during(pass).1)?;
        }
        Ok(timings)
    }
}

/// Draws every sub-model's accuracy against its measured latency (log scale), one colour per
/// depth, with the Pareto front as a red step line through its points, and writes it
/// atomically.
///
/// # Errors
/// When drawing or writing fails.
pub fn write_latency_plot(profile: &ProfileReport, path: &Path) -> anyhow::Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing the latency plot: {e}");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let rows = &profile.profile.rows;
        let lat = |r: &ProfileRow| r.latency.median_ms.max(1e-6);
        let lmin = rows.iter().map(lat).fold(f64::INFINITY, f64::min);
        let lmax = rows.iter().map(lat).fold(0.0, f64::max);
        let amin = rows.iter().map(|r| r.accuracy).fold(1.0, f64::min);
        let lo = (amin * 100.0 - 2.0).max(0.0);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "latency vs accuracy on {} (batch {}, {} sub-models, front in red)",
                    profile.meta.device,
                    profile.meta.batch_size,
                    rows.len()
                ),
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(
                (lmin * 0.8..lmax * 1.25).log_scale().with_key_points(log_ticks(lmin * 0.8, lmax * 1.25)),
                lo..100.0,
            )
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(8)
            .x_label_formatter(&|v| format!("{v}"))
            .x_desc("median latency per forward pass, ms (log scale)")
            .y_desc("test accuracy (%)")
            .draw()
            .map_err(|e| err(&e))?;
        let max_depth = rows.iter().map(|r| r.depth).max().unwrap_or(1);
        for depth in 1..=max_depth {
            let colour = Palette99::pick(depth - 1).mix(0.55);
            let points: Vec<(f64, f64)> =
                rows.iter().filter(|r| r.depth == depth).map(|r| (lat(r), 100.0 * r.accuracy)).collect();
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(points.into_iter().map(|p| Circle::new(p, 3, colour.filled())))
                .map_err(|e| err(&e))?
                .label(format!("depth {depth}"))
                .legend(move |(x, y)| Circle::new((x + 9, y), 3, colour.filled()));
        }
        let front: Vec<(f64, f64)> = profile
            .profile
            .front
            .iter()
            .filter_map(|name| rows.iter().find(|r| &r.sub_model == name))
            .map(|r| (lat(r), 100.0 * r.accuracy))
            .collect();
        // A step line: from each front point right to the next one's latency, then up.
        let mut steps = Vec::with_capacity(2 * front.len());
        for (i, &p) in front.iter().enumerate() {
            steps.push(p);
            if let Some(&(next_x, _)) = front.get(i + 1) {
                steps.push((next_x, p.1));
            }
        }
        chart
            .draw_series(LineSeries::new(steps, RED.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label("Pareto front")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(2)));
        chart.draw_series(front.iter().map(|&p| Circle::new(p, 5, RED.stroke_width(2)))).map_err(|e| err(&e))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    write_file(path, svg.as_bytes())
}
