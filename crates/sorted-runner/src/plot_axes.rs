//! Log-scale axes for the SVG plots of `report.rs` (accuracy vs FLOPs) and `profile.rs`
//! (accuracy vs latency).

/// Tick values 1, 2, 5 x 10^k between `lo` and `hi` (log axes spanning less than a decade get
/// no labels from plotters otherwise), rounded so they print short.
pub(crate) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
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
