//! The nested BatchNorm.

use burn::config::Config;
use burn::module::{Param, RunningState};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::prelude::*;

/// Configuration of a [`SortedBatchNorm`].
#[derive(Config, Debug)]
pub struct SortedBatchNormConfig {
    /// Allocated number of channels.
    pub num_features: usize,
    /// Added to the variance for numerical stability.
    #[config(default = 1e-5)]
    pub epsilon: f64,
    /// Momentum of the running statistics (switchable mode only).
    #[config(default = 0.1)]
    pub momentum: f64,
    /// Widths that get private running statistics ("switchable BN"). Empty (the default): no
    /// running statistics at all; statistics are recalibrated per sub-model after training.
    #[config(default = "Vec::new()")]
    pub switchable_widths: Vec<usize>,
}

/// Per-channel statistics of one BatchNorm layer (biased variance), detached from the graph.
#[derive(Clone, Debug)]
pub struct BatchStatistics<B: Backend> {
    /// Channel means, `[c]`.
    pub mean: Tensor<B, 1>,
    /// Channel variances, `[c]`.
    pub var: Tensor<B, 1>,
}

/// BatchNorm over the active channel prefix.
///
/// A narrow sub-model sees different activation statistics from the full model, so one set of
/// running statistics cannot serve every sub-model. This layer therefore keeps none by default:
/// training normalises with batch statistics ([`SortedBatchNorm::forward_batch`]) and evaluation
/// uses statistics recalibrated for that sub-model ([`SortedBatchNorm::forward_with`], see
/// [`NormCalibrator`](crate::NormCalibrator)). With `switchable_widths` it also keeps private
/// running statistics per width ([`SortedBatchNorm::forward_switchable`]).
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_nn::SortedBatchNormConfig;
///
/// let device = Default::default();
/// let bn = SortedBatchNormConfig::new(8).init::<Flex>(&device);
/// let x = Tensor::<Flex, 4>::random([4, 3, 2, 2], burn::tensor::Distribution::Default, &device);
/// let (y, stats) = bn.forward_batch(x.clone());
/// assert_eq!(stats.mean.dims(), [3]);
/// // With the batch's own statistics, the fixed-statistics path gives the same output.
/// y.into_data().assert_approx_eq::<f32>(&bn.forward_with(x, &stats).into_data(), Default::default());
/// ```
#[derive(Module, Debug)]
pub struct SortedBatchNorm<B: Backend> {
    /// Allocated scale, `[c_max]`.
    pub gamma: Param<Tensor<B, 1>>,
    /// Allocated shift, `[c_max]`.
    pub beta: Param<Tensor<B, 1>>,
    /// Running means, one per switchable width (empty unless switchable).
    pub running_mean: Vec<RunningState<Tensor<B, 1>>>,
    /// Running variances, one per switchable width (empty unless switchable).
    pub running_var: Vec<RunningState<Tensor<B, 1>>>,
    /// The switchable widths, aligned with `running_mean`/`running_var`.
    pub widths: Vec<usize>,
    /// Momentum of the running statistics.
    pub momentum: f64,
    /// Added to the variance for numerical stability.
    pub epsilon: f64,
}

impl SortedBatchNormConfig {
    /// Allocates the layer (gamma ones, beta zeros, running mean 0 and variance 1).
    pub fn init<B: Backend>(&self, device: &B::Device) -> SortedBatchNorm<B> {
        let widths = self.switchable_widths.clone();
        SortedBatchNorm {
            gamma: Param::from_tensor(Tensor::ones([self.num_features], device)),
            beta: Param::from_tensor(Tensor::zeros([self.num_features], device)),
            running_mean: widths.iter().map(|&w| RunningState::new(Tensor::zeros([w], device))).collect(),
            running_var: widths.iter().map(|&w| RunningState::new(Tensor::ones([w], device))).collect(),
            widths,
            momentum: self.momentum,
            epsilon: self.epsilon,
        }
    }
}

impl<B: Backend> SortedBatchNorm<B> {
    /// The allocated number of channels.
    pub fn c_max(&self) -> usize {
        self.gamma.dims()[0]
    }

    /// Normalises with the batch's own statistics and returns them (detached).
    ///
    /// On an autodiff backend with switchable widths, the active width's running statistics
    /// are also updated, like `burn::nn::BatchNorm` in training.
    ///
    /// # Shapes
    /// - input: `[batch, c, h, w]`, `c <= c_max()`
    /// - output: `[batch, c, h, w]`
    ///
    /// # Panics
    /// If `c` exceeds the allocation.
    pub fn forward_batch(&self, input: Tensor<B, 4>) -> (Tensor<B, 4>, BatchStatistics<B>) {
        let [n, c, h, w] = input.dims();
        self.check(c);
        // Per-channel reductions as two last-axis means over the contiguous `[n, c, h*w]` view
        // (no transposed copy), and every per-channel operand materialised as `[n, c, 1]`:
        // Flex's SIMD broadcast kernels take that shape, while a `[1, c, 1, 1]` operand falls to a
        // scalar strided loop about 10x slower (measured in `benches/`).
        let x = input.reshape([n, c, h * w]);
        let mean = x.clone().mean_dim(2).mean_dim(0); // [1, c, 1]
        let centered = x - mean.clone().repeat_dim(0, n);
        let var = centered.clone().square().mean_dim(2).mean_dim(0); // [1, c, 1], biased
        let (mean, var) = (mean.reshape([c]), var.reshape([c]));
        if B::ad_enabled(&centered.device())
            && let Some(i) = self.widths.iter().position(|&x| x == c)
        {
            let m = self.momentum;
            let rm = self.running_mean[i].value_sync().mul_scalar(1.0 - m) + mean.clone().detach().mul_scalar(m);
            let rv = self.running_var[i].value_sync().mul_scalar(1.0 - m) + var.clone().detach().mul_scalar(m);
            self.running_mean[i].update(rm.detach());
            self.running_var[i].update(rv.detach());
        }
        let scale = self.gamma.val().slice(s![0..c]) / var.clone().add_scalar(self.epsilon).sqrt();
        let beta = self.beta.val().slice(s![0..c]);
        let out = centered * per_sample(scale, n) + per_sample(beta, n);
        (out.reshape([n, c, h, w]), BatchStatistics { mean: mean.detach(), var: var.detach() })
    }

    /// Normalises with fixed statistics (for example recalibrated ones).
    ///
    /// # Shapes
    /// - input: `[batch, c, h, w]`; `stats` over `c` channels
    ///
    /// # Panics
    /// If the statistics do not have `c` channels or `c` exceeds the allocation.
    pub fn forward_with(&self, input: Tensor<B, 4>, stats: &BatchStatistics<B>) -> Tensor<B, 4> {
        let c = input.dims()[1];
        self.check(c);
        assert_eq!(
            stats.mean.dims()[0],
            c,
            "SortedBatchNorm: statistics for {} channels, input has {c}",
            stats.mean.dims()[0]
        );
        self.normalise(input, stats.mean.clone(), stats.var.clone())
    }

    /// Normalises with the private running statistics of the active width (switchable BN).
    ///
    /// # Panics
    /// If the active width has no private statistics (not in `switchable_widths`).
    pub fn forward_switchable(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        let c = input.dims()[1];
        let i = self.widths.iter().position(|&x| x == c).unwrap_or_else(|| {
            panic!("SortedBatchNorm: width {c} has no switchable statistics (widths {:?})", self.widths)
        });
        let stats = BatchStatistics { mean: self.running_mean[i].value_sync(), var: self.running_var[i].value_sync() };
        self.forward_with(input, &stats)
    }

    /// Normalises with fixed statistics over the active gamma/beta prefix ([`affine`]).
    fn normalise(&self, input: Tensor<B, 4>, mean: Tensor<B, 1>, var: Tensor<B, 1>) -> Tensor<B, 4> {
        let c = input.dims()[1];
        affine(input, self.gamma.val().slice(s![0..c]), self.beta.val().slice(s![0..c]), mean, var, self.epsilon)
    }

    fn check(&self, c: usize) {
        assert!(
            (1..=self.c_max()).contains(&c),
            "SortedBatchNorm: active channels {c} outside the allocated {}",
            self.c_max()
        );
    }

    /// Copies the active prefix and the given statistics into an ordinary
    /// `burn::nn::BatchNorm` (running statistics = `stats`).
    ///
    /// # Panics
    /// If the statistics have more channels than allocated.
    pub fn to_dense(&self, stats: &BatchStatistics<B>) -> BatchNorm<B> {
        let c = stats.mean.dims()[0];
        self.check(c);
        let mut dense =
            BatchNormConfig::new(c).with_epsilon(self.epsilon).with_momentum(self.momentum).init(&self.gamma.device());
        dense.gamma = Param::from_tensor(self.gamma.val().slice(s![0..c]).detach());
        dense.beta = Param::from_tensor(self.beta.val().slice(s![0..c]).detach());
        dense.running_mean = RunningState::new(stats.mean.clone().detach());
        dense.running_var = RunningState::new(stats.var.clone().detach());
        dense
    }
}

/// `burn::nn::BatchNorm`'s inference forward (running statistics), computed the way
/// [`SortedBatchNorm`] computes it: one per-channel affine map with `[n, c, 1]` operands. Same
/// result; on Flex over 100x faster than `norm.forward`, whose `[1, c, 1, 1]` operands miss the
/// SIMD broadcast path (`flex/batch_norm` bench). On an autodiff backend, where burn's layer
/// normalises with batch statistics, this defers to `norm.forward`. The dense models of the zoo
/// use it, so exported models keep burn-nn's `BatchNorm` records.
///
/// # Shapes
/// - input and output: `[batch, c, h, w]`
pub fn dense_batch_norm_forward<B: Backend>(norm: &BatchNorm<B>, input: Tensor<B, 4>) -> Tensor<B, 4> {
    if B::ad_enabled(&input.device()) {
        return norm.forward(input);
    }
    let (mean, var) = (norm.running_mean.value_sync(), norm.running_var.value_sync());
    affine(input, norm.gamma.val(), norm.beta.val(), mean, var, norm.epsilon)
}

/// `(x - mean) / sqrt(var + eps) * gamma + beta` as one per-channel affine map,
/// `x * scale + shift`, with `[n, c, 1]` operands on the `[n, c, h*w]` view.
fn affine<B: Backend>(
    input: Tensor<B, 4>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    mean: Tensor<B, 1>,
    var: Tensor<B, 1>,
    epsilon: f64,
) -> Tensor<B, 4> {
    let [n, c, h, w] = input.dims();
    let scale = gamma / var.add_scalar(epsilon).sqrt();
    let shift = beta - mean * scale.clone();
    (input.reshape([n, c, h * w]) * per_sample(scale, n) + per_sample(shift, n)).reshape([n, c, h, w])
}

/// A per-channel vector `[c]` as a contiguous `[n, c, 1]` operand for a `[n, c, h*w]` tensor.
fn per_sample<B: Backend>(v: Tensor<B, 1>, n: usize) -> Tensor<B, 3> {
    let c = v.dims()[0];
    v.reshape([1, c, 1]).repeat_dim(0, n)
}
