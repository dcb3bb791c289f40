//! Sizes from a config checked against this machine's memory before anything is allocated: a
//! width of 10^9 must be an error naming the key, not an allocation failure that aborts.

/// Bytes of memory available to a new allocation: `MemAvailable` of `/proc/meminfo` where
/// there is one, otherwise a generous 64 GiB (the check then only stops absurd sizes).
pub fn available_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let kib = line.strip_prefix("MemAvailable:")?.trim().strip_suffix("kB")?.trim();
                kib.parse::<u64>().ok().map(|k| k * 1024)
            })
        })
        .unwrap_or(64 << 30)
}

/// Bytes a training run holds per parameter: the f32 weight, its gradient and two optimizer
/// moments (Adam's; SGD with momentum keeps one).
pub const TRAINING_BYTES_PER_PARAM: u128 = 16;

/// Checks that `params` parameters fit `available` bytes when trained.
///
/// # Errors
/// A sentence giving the estimate and the memory, for the caller to attach to its key.
pub fn check_fits(params: u128, available: u64) -> Result<(), String> {
    let needed = params.saturating_mul(TRAINING_BYTES_PER_PARAM);
    if needed <= u128::from(available) {
        return Ok(());
    }
    Err(format!(
        "about {params} parameters ({:.1} GiB with gradients and optimizer state; {:.1} GiB available)",
        needed as f64 / f64::from(1u32 << 30),
        available as f64 / f64::from(1u32 << 30)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_27_absurd_widths_do_not_fit_and_real_ones_do() {
        assert!(check_fits(10u128.pow(18), 24 << 30).is_err());
        assert!(check_fits(u128::MAX, u64::MAX).is_err());
        assert!(check_fits(300_000, 1 << 30).is_ok());
        assert!(available_bytes() > 0);
    }
}
