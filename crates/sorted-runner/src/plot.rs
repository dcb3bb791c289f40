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
