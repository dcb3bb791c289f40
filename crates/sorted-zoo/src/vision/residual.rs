//! The residual sum when the two branches have different active widths.

use std::cmp::Ordering;

use burn::prelude::*;

/// `main + shortcut` over the channels of `main`, where `shortcut` may be narrower or wider.
///
/// This is the sum the allocated model computes when every inactive channel is zero: the
/// shortcut's channels beyond its active width are zero (so a narrower shortcut is zero-padded)
/// and the output's channels beyond `main`'s width are dropped (so a wider shortcut is
/// truncated). In other words, the shortcut is added into the first `min(c_shortcut, c_main)`
/// channels. The sorted models and their dense extractions both use this function.
///
/// # Shapes
/// - main: `[batch, c_main, h, w]`
/// - shortcut: `[batch, c_shortcut, h, w]`
/// - output: `[batch, c_main, h, w]`
pub(crate) fn add_prefix<B: Backend>(main: Tensor<B, 4>, shortcut: Tensor<B, 4>) -> Tensor<B, 4> {
    let (c_main, c_short) = (main.dims()[1], shortcut.dims()[1]);
    match c_short.cmp(&c_main) {
        Ordering::Equal => main + shortcut,
        Ordering::Greater => main + shortcut.narrow(1, 0, c_main),
        Ordering::Less => {
            let head = main.clone().narrow(1, 0, c_short) + shortcut;
            Tensor::cat(vec![head, main.narrow(1, c_short, c_main - c_short)], 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;

    use super::*;

    #[test]
    fn adds_into_the_common_prefix() {
        let device = Default::default();
        let t = |v: &[f32]| Tensor::<Flex, 1>::from_floats(v, &device).reshape([1, v.len(), 1, 1]);
        let flat = |x: Tensor<Flex, 4>| x.into_data().to_vec::<f32>().unwrap();
        assert_eq!(flat(add_prefix(t(&[1.0, 2.0, 3.0]), t(&[10.0]))), [11.0, 2.0, 3.0]);
        assert_eq!(flat(add_prefix(t(&[1.0, 2.0]), t(&[10.0, 20.0, 30.0]))), [11.0, 22.0]);
        assert_eq!(flat(add_prefix(t(&[1.0, 2.0]), t(&[10.0, 20.0]))), [11.0, 22.0]);
    }
}
