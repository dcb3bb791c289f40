//! The accuracy-vs-FLOPs plot (SVG).

use std::path::Path;

use plotters::prelude::*;

use crate::report::{RunReport, write_file};

/// Draws every sub-model's accuracy against its FLOPs (log scale), one colour per depth, the
/// full model's threshold line dashed, and writes `plot.svg` atomically.
///
/// # Errors
/// When drawing or writing fails.
pub fn write_plot(report: &RunReport, path: &Path) -> anyhow::Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?;
        let rows = &report.results;
        let fmin = rows.iter().map(|r| r.flops).min().unwrap_or(1).max(1) as f64;
        let fmax = rows.iter().map(|r| r.flops).max().unwrap_or(1).max(1) as f64;
        let amin = rows.iter().map(|r| r.accuracy).fold(1.0, f64::min);
        let lo = (amin * 100.0 - 2.0).max(0.0);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: test accuracy vs FLOPs ({} sub-models)", report.meta.name, rows.len()),
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d((fmin * 0.8..fmax * 1.25).log_scale(), lo..100.0)
            .map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(8)
            .x_label_formatter(&|v| if *v >= 1e6 { format!("{:.1}M", v / 1e6) } else { format!("{:.0}k", v / 1e3) })
            .x_desc("FLOPs per sample (log scale)")
            .y_desc("test accuracy (%)")
            .draw()
            .map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?;
        let threshold = 100.0 * report.full_accuracy * report.threshold;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(fmin * 0.8, threshold), (fmax * 1.25, threshold)],
                6,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?
            .label(format!("{:.0}% of the full model", 100.0 * report.threshold))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
        let max_depth = rows.iter().map(|r| r.depth).max().unwrap_or(1);
        for depth in 1..=max_depth {
            let colour = Palette99::pick(depth - 1).to_rgba();
            let points: Vec<(f64, f64)> =
                rows.iter().filter(|r| r.depth == depth).map(|r| (r.flops.max(1) as f64, 100.0 * r.accuracy)).collect();
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(points.into_iter().map(|p| Circle::new(p, 4, colour.filled())))
                .map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?
                .label(format!("depth {depth}"))
                .legend(move |(x, y)| Circle::new((x + 9, y), 4, colour.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?;
    }
    write_file(path, svg.as_bytes())
}

/// Draws every sub-model's accuracy against its measured latency (log scale), one colour per
/// depth, with the Pareto front as a red step line through its points, and writes it
/// atomically.
///
/// # Errors
/// When drawing or writing fails.
pub fn write_latency_plot(profile: &crate::profile::ProfileReport, path: &Path) -> anyhow::Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing the latency plot: {e}");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let rows = &profile.rows;
        let lat = |r: &crate::profile::ProfileRow| r.latency.median_ms.max(1e-6);
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

/// Tick values 1, 2, 5 x 10^k between `lo` and `hi` (log axes spanning less than a decade get
/// no labels from plotters otherwise), rounded so they print short.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let v = m * decade;
            if v >= lo && v <= hi {
                let digits = (-decade.log10()).ceil().max(0.0) as i32;
                let scale = 10f64.powi(digits);
                ticks.push((v * scale).round() / scale);
            }
        }
        decade *= 10.0;
    }
    ticks
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_ticks_cover_short_ranges() {
        assert_eq!(super::log_ticks(0.009, 0.07), [0.01, 0.02, 0.05]);
        assert_eq!(super::log_ticks(0.06, 1.6), [0.1, 0.2, 0.5, 1.0]);
    }
}
