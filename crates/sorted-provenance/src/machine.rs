//! The machine a report was measured on.

/// The CPU model (from `/proc/cpuinfo`; the architecture where that cannot be read) and its core
/// counts: `<model>, L cores in /proc/cpuinfo, A available to this process`. The two counts
/// differ under a CPU quota or affinity mask, which changes what a timing means.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    describe(&cpuinfo, std::thread::available_parallelism().map_or(0, usize::from))
}

/// The text of [`machine`] from `/proc/cpuinfo`'s contents and the available parallelism.
fn describe(cpuinfo: &str, available: usize) -> String {
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|rest| rest.split_once(':')).map(|(_, m)| m.trim()))
        .map_or_else(|| format!("unknown {} CPU", std::env::consts::ARCH), str::to_string);
    let listed = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    format!("{model}, {listed} cores in /proc/cpuinfo, {available} available to this process")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_and_both_core_counts_are_named() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Example CPU @ 2.00GHz\n\nprocessor\t: 1\nmodel name\t: Example CPU @ 2.00GHz\n";
        assert_eq!(
            describe(cpuinfo, 1),
            "Example CPU @ 2.00GHz, 2 cores in /proc/cpuinfo, 1 available to this process"
        );
        assert!(describe("", 4).starts_with("unknown "));
        assert!(machine().contains("available to this process"));
    }
}
