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

/// The parameters of a chain of layers of the given widths, each `fan` times the product of
/// its input and output widths (1 for dense layers, 9 for 3x3 convolutions, 18 for a residual
/// block of two of them), from `d_input` to `n_classes`. Saturates instead of overflowing.
pub fn chain_params(d_input: usize, widths: &[usize], n_classes: usize, fan: u128) -> u128 {
    let mut total: u128 = 0;
    let mut previous = d_input as u128;
    for &w in widths {
        total = total.saturating_add(fan.saturating_mul(previous).saturating_mul(w as u128));
        previous = w as u128;
    }
    total.saturating_add(previous.saturating_mul(n_classes as u128))
}

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
        let huge = chain_params(784, &[1_000_000_000, 1_000_000_000], 10, 1);
        assert!(check_fits(huge, 24 << 30).is_err());
        let mlp = chain_params(784, &[256, 256, 256, 256], 10, 1);
        assert!(check_fits(mlp, 1 << 30).is_ok());
        assert_eq!(chain_params(4, &[3], 2, 1), 4 * 3 + 3 * 2);
        assert_eq!(chain_params(usize::MAX, &[usize::MAX, usize::MAX], usize::MAX, 18), u128::MAX);
        assert!(available_bytes() > 0);
    }
}
