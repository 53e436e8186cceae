//! The fused trainer: the burn trainer's MLP, losses and optimizers computed directly on
//! contiguous f32 buffers (GEMMs from the `gemm` crate, plain loops for the rest), with no
//! autodiff graph built per batch. It starts from burn's initial weights and draws the same
//! batch order and dropout masks, so its curves match the burn trainer's to rounding.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::avx512::Store;
use super::burn::initial_model;
use super::checkpoint::Saved;
use super::model::{Dropout, LayerValues};
use super::{Checkpoint, Control, EpochReport, EpochSink, TrainEnd, TrainError, Trainer};
use crate::data::{Split, Target};
use crate::spec::{Activation, Optimizer, TrialConfig};

/// burn's Adam epsilon (`AdamConfig`'s default), so both engines take the same steps.
const ADAM_EPSILON: f32 = 1e-5;

/// Layers with fewer outputs than this (one AVX-512 vector) have their weight gradient
/// computed transposed (see `backward`) in batches of at least [`NARROW_ROWS`] rows.
const NARROW: usize = 16;
/// Below this many rows, copying the transposed gradient into place cost more than it saved.
const NARROW_ROWS: usize = 64;

/// Marks a fused checkpoint, so a burn one is refused with a clear message.
const MAGIC: &[u8; 8] = b"lcfused1";

/// Defines `fn $name` to run its body compiled for AVX-512 (16 floats per instruction) or
/// AVX2 (8, instead of SSE2's 4), whichever the CPU has first. Without FMA contraction every
/// version rounds alike, so the numbers do not depend on the machine (the digits trials'
/// losses, per step too, are bit-identical with AVX-512 and AVX2). AVX-512 made gelu epochs
/// 8-14% faster at every batch size, relu ones no faster (20 interleaved rounds).
macro_rules! wide {
    (fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn wide512($($arg: $ty),*) {
                    body($($arg),*)
                }
                if avx512() {
                    // SAFETY: the CPU has AVX-512F (`avx512` checks).
                    return unsafe { wide512($($arg),*) };
                }
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

/// Flushes subnormal floats to zero on this thread while it lives (x86-64's FTZ and DAZ
/// bits), and restores the thread's mode when dropped. Saturated softmaxes and Adam's squared
/// gradients otherwise produce subnormals, which the CPU handles about 100x slower: a diverging
/// relu trial took 1.6 s instead of 50 ms. Values below 1.2e-38 become 0.
struct FlushSubnormals {
    #[cfg(target_arch = "x86_64")]
    old: u32,
}

impl FlushSubnormals {
    fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let mut old = 0u32;
            // SAFETY: stmxcsr writes the 4-byte control register to `old`; ldmxcsr loads a
            // value that differs from the current one only in the FTZ (15) and DAZ (6) bits.
            unsafe {
                std::arch::asm!("stmxcsr [{}]", in(reg) &mut old, options(nostack));
                let flush = old | (1 << 15) | (1 << 6);
                std::arch::asm!("ldmxcsr [{}]", in(reg) &flush, options(nostack, readonly));
            }
            Self { old }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self {}
    }
}

impl Drop for FlushSubnormals {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: restores the register value saved in `new`.
        unsafe {
            std::arch::asm!("ldmxcsr [{}]", in(reg) &self.old, options(nostack, readonly));
        }
    }
}

/// Trains with fused loops on the split's own rows, which every trial shares.
#[derive(Clone)]
pub struct FusedTrainer {
    split: Arc<Split>,
}

impl FusedTrainer {
    pub fn new(split: &Split) -> Self {
        Self::shared(Arc::new(split.clone()))
    }

    /// As [`FusedTrainer::new`], keeping `split` itself rather than a copy (copying the
    /// digits rows took 0.3 ms of a run's start, most of it faulting in fresh pages).
    pub fn shared(split: Arc<Split>) -> Self {
        Self { split }
    }

    /// The split it trains on.
    pub(super) fn split(&self) -> &Split {
        &self.split
    }

    /// The width of the output layer: one logit per class, or one value.
    fn n_outputs(&self) -> usize {
        match self.split.train.target {
            Target::Classes(_) => self.split.train.n_classes(),
            Target::Values(_) => 1,
        }
    }
}

/// The activation between layers, with its derivative.
#[derive(Clone, Copy)]
enum Act {
    Relu,
    Leaky(f32),
    Gelu,
    Sigmoid,
    Tanh,
}

impl Act {
    fn new(activation: Activation, negative_slope: Option<f64>) -> Self {
        match activation {
            Activation::Relu => Self::Relu,
            Activation::LeakyRelu => Self::Leaky(negative_slope.unwrap_or(0.01) as f32),
            Activation::Gelu => Self::Gelu,
            Activation::Sigmoid => Self::Sigmoid,
            Activation::Tanh => Self::Tanh,
        }
    }

    /// `h = act(z)`, element-wise.
    fn forward(self, z: &[f32], h: &mut [f32]) {
        act_forward(self, z, h)
    }

    /// `g *= act'(z)`, given `z` and `h = act(z)`.
    fn backward(self, z: &[f32], h: &[f32], g: &mut [f32]) {
        act_backward(self, z, h, g)
    }

    /// Whether the GEMM kernel applies this activation and its derivative as it stores its
    /// result (ReLU on lcurve's AVX-512 and AVX2 kernels), so `forward` keeps no `z` and
    /// `backward` makes no pass of their own. (Where a product goes to the `gemm` crate, a
    /// pass after it does the same: correct everywhere, a gain only in the kernels.)
    fn fused(self) -> bool {
        matches!(self, Act::Relu) && (avx512() || avx2())
    }
}

wide! {
    // Plain `for` loops: a `for_each` closure can end up in a function of its own, compiled
    // without the wide instructions (GELU's did).
    fn act_forward(act: Act, z: &[f32], h: &mut [f32]) {
        let pairs = z.iter().zip(h.iter_mut());
        match act {
            Act::Relu => {
                for (&z, h) in pairs {
                    *h = z.max(0.0)
                }
            }
            Act::Leaky(s) => {
                for (&z, h) in pairs {
                    *h = if z > 0.0 { z } else { z * s }
                }
            }
            Act::Gelu => {
                for (&z, h) in pairs {
                    *h = 0.5 * z * (1.0 + fast::erf(z * std::f32::consts::FRAC_1_SQRT_2))
                }
            }
            Act::Sigmoid => {
                for (&z, h) in pairs {
                    *h = 0.5 + 0.5 * fast::tanh(0.5 * z)
                }
            }
            Act::Tanh => {
                for (&z, h) in pairs {
                    *h = fast::tanh(z)
                }
            }
        }
    }
}

wide! {
    // Written without branches so that the compiler vectorizes it.
    fn act_backward(act: Act, z: &[f32], h: &[f32], g: &mut [f32]) {
        let it = z.iter().zip(h).zip(g.iter_mut());
        match act {
            // From `h`, which is above 0 where `z` is: a ReLU layer stores only `h` when the
            // kernel applies the ReLU as it stores (see `forward`).
            Act::Relu => {
                for ((_, &h), g) in it {
                    *g = if h > 0.0 { *g } else { 0.0 }
                }
            }
            Act::Leaky(s) => {
                for ((&z, _), g) in it {
                    *g *= if z > 0.0 { 1.0 } else { s }
                }
            }
            Act::Gelu => {
                for ((&z, _), g) in it {
                    let cdf = 0.5 * (1.0 + fast::erf(z * std::f32::consts::FRAC_1_SQRT_2));
                    // The standard normal density, 1/sqrt(2 pi) = FRAC_2_SQRT_PI * FRAC_1_SQRT_2 / 2.
                    let pdf = fast::exp(-0.5 * z * z)
                        * (0.5 * std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2);
                    *g *= cdf + z * pdf
                }
            }
            Act::Sigmoid => {
                for ((_, &h), g) in it {
                    *g *= h * (1.0 - h)
                }
            }
            Act::Tanh => {
                for ((_, &h), g) in it {
                    *g *= 1.0 - h * h
                }
            }
        }
    }
}

wide! {
    fn exp_in_place(values: &mut [f32]) {
        for v in values {
            *v = fast::exp(*v);
        }
    }
}

/// exp, tanh and erf for f32 as branch-free polynomials that the compiler vectorizes (libm's
/// are per-element calls, and cost more than the GEMMs for tanh and GELU layers). Accurate
/// to a few units in the last place; tested against the standard library below.
mod fast {
    /// Cephes' `expf`: `e^x = 2^n e^r` with `|r| <= ln 2 / 2` and a degree-6 polynomial.
    #[inline(always)]
    pub fn exp(x: f32) -> f32 {
        let x = x.clamp(-87.3, 88.3);
        // Round x / ln 2 to the nearest integer by adding and subtracting 1.5 * 2^23.
        let shift = 12_582_912.0f32;
        let t = x * std::f32::consts::LOG2_E + shift;
        let n = t - shift;
        let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
        let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2)
            * r
            + 0.166_666_65)
            * r
            + 0.5;
        let e = p * r * r + r + 1.0;
        // 2^n from n's bits in `t` (its low mantissa bits hold n + 2^22): integer adds and a
        // shift, which vectorize where a float-to-int cast does not.
        e * f32::from_bits((t.to_bits().wrapping_sub(shift.to_bits()).wrapping_add(127)) << 23)
    }

    /// Eigen's rational tanh; beyond |x| = 7.9 it is 1 to float rounding.
    #[inline(always)]
    pub fn tanh(x: f32) -> f32 {
        let x = x.clamp(-7.905_311, 7.905_311);
        let x2 = x * x;
        let p = (((((-2.760_768_5e-16 * x2 + 2.000_188e-13) * x2 - 8.604_672e-11) * x2
            + 5.122_297e-8)
            * x2
            + 1.485_722_4e-5)
            * x2
            + 6.372_619_3e-4)
            * x2
            + 4.893_524_6e-3;
        let q = ((1.198_258_4e-6 * x2 + 1.185_347_1e-4) * x2 + 2.268_434_6e-3) * x2 + 4.893_525e-3;
        x * p / q
    }

    /// Eigen's rational erf; beyond |x| = 4 it is 1 to float rounding.
    #[inline(always)]
    pub fn erf(x: f32) -> f32 {
        let x = x.clamp(-4.0, 4.0);
        let x2 = x * x;
        let p = (((((-2.726_142_3e-10 * x2 + 2.770_681_4e-8) * x2 - 2.101_024e-6) * x2
            - 5.692_506_4e-5)
            * x2
            - 7.349_906_3e-4)
            * x2
            - 2.954_6e-3)
            * x2
            - 1.609_603_3e-2;
        let q = (((-1.456_607_2e-5 * x2 - 2.133_740_6e-4) * x2 - 1.682_827e-3) * x2 - 7.373_329e-3)
            * x2
            - 1.426_474e-2;
        x * p / q
    }
}

/// A matrix view into a slice: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

impl<'a> View<'a> {
    /// A row-major `[_, cols]` matrix.
    fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a row-major `[_, cols]` matrix.
    fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: 1,
            cs: cols,
        }
    }

    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// Whether the GEMMs and the element-wise loops (see `wide!`) run on AVX-512 (detected once;
/// `LCURVE_NO_AVX512` set to anything turns it off, to compare).
fn avx512() -> bool {
    static ON: std::sync::LazyLock<bool> = std::sync::LazyLock::new(|| {
        super::avx512::available() && std::env::var_os("LCURVE_NO_AVX512").is_none()
    });
    *ON
}

/// Whether the GEMMs run on lcurve's AVX2 kernel where there is no AVX-512 (detected once;
/// `LCURVE_GEMM_CRATE` set to anything leaves them to the `gemm` crate, to compare).
fn avx2() -> bool {
    static ON: std::sync::LazyLock<bool> = std::sync::LazyLock::new(|| {
        super::avx2::available() && std::env::var_os("LCURVE_GEMM_CRATE").is_none()
    });
    *ON
}

/// `c = a · b`, or `c = bias + a · b` with `bias` added to every row: `c` is row-major
/// `[m, n]`, `a` `[m, k]` and `b` `[k, n]`; on this thread.
fn matmul(c: &mut [f32], a: View, b: View, shape: (usize, usize, usize), bias: Option<&[f32]>) {
    matmul_stored(c, a, b, shape, bias, Store::Plain);
}

/// [`matmul`], with `c` stored through `store` (see [`Store`]): inside the product in
/// lcurve's AVX-512 and AVX2 kernels, else in a pass over `c` afterwards.
fn matmul_stored(
    c: &mut [f32],
    a: View,
    b: View,
    (m, k, n): (usize, usize, usize),
    bias: Option<&[f32]>,
    store: Store,
) {
    assert!(
        c.len() >= m * n
            && a.fits(m, k)
            && b.fits(k, n)
            && bias.is_none_or(|r| r.len() >= n)
            && match store {
                Store::KeepWherePositive(by) => by.len() >= m * n,
                _ => true,
            },
        "matmul bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if b.cs == 1 && b.rs == n {
        if avx512() {
            // SAFETY: AVX-512 is there, and the assertion above keeps every index inside
            // the slices (`fits`, and `store`'s matrix as large as `c`).
            unsafe { super::avx512::gemm(c, a.data, (a.rs, a.cs), b.data, (m, k, n), bias, store) };
            return;
        }
        // Past k = 128 (the weight gradients at batch 256) the gemm crate's packed blocks
        // keep its operands in L1 and it was faster: 1.07 ms against 1.16 ms per batch-256
        // epoch (best of 6 interleaved runs, AVX2-only AMD EPYC).
        if avx2() && k <= 128 {
            // SAFETY: AVX2 and FMA are there; indices as above.
            unsafe { super::avx2::gemm(c, a.data, (a.rs, a.cs), b.data, (m, k, n), bias, store) };
            return;
        }
    }
    // The `gemm` crate, then `store` in a pass over `c`.
    if let Some(row) = bias {
        for out in c[..m * n].chunks_exact_mut(n) {
            out.copy_from_slice(&row[..n]);
        }
    }
    // SAFETY: the assertion above keeps every index the kernel touches inside the slices
    // (`fits`), `c` is borrowed mutably and so overlaps neither input, and strides fit isize
    // because they index existing allocations.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            bias.is_some(),
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
    store.apply(&mut c[..m * n]);
}

/// The network's parameters, all in one buffer: per layer its weights (`[d_in, d_out]`,
/// row-major) and then its bias. Gradients and optimizer moments use the same layout, so the
/// optimizer is one loop over all of them.
struct Net {
    /// `n_features, hidden..., n_outputs`.
    widths: Vec<usize>,
    /// Where each layer's weights start; its bias follows them.
    offsets: Vec<usize>,
    params: Vec<f32>,
    act: Act,
}

impl Net {
    fn new(widths: Vec<usize>, act: Act) -> Self {
        let mut offsets = Vec::with_capacity(widths.len());
        let mut at = 0;
        for w in widths.windows(2) {
            offsets.push(at);
            at += w[0] * w[1] + w[1];
        }
        Self {
            widths,
            offsets,
            params: vec![0.0; at],
            act,
        }
    }

    fn layers(&self) -> usize {
        self.widths.len() - 1
    }

    fn dims(&self, l: usize) -> (usize, usize) {
        (self.widths[l], self.widths[l + 1])
    }

    /// Layer `l`'s weights and bias within a buffer laid out like `params`.
    fn split<'a>(&self, buf: &'a [f32], l: usize) -> (&'a [f32], &'a [f32]) {
        let (i, o) = self.dims(l);
        buf[self.offsets[l]..self.offsets[l] + i * o + o].split_at(i * o)
    }

    fn split_mut<'a>(&self, buf: &'a mut [f32], l: usize) -> (&'a mut [f32], &'a mut [f32]) {
        let (i, o) = self.dims(l);
        buf[self.offsets[l]..self.offsets[l] + i * o + o].split_at_mut(i * o)
    }
}

/// One layer's buffers for up to `capacity` rows.
struct LayerWork {
    /// Pre-activation `x · W + b`; the output layer's is the model's output. Empty for a
    /// hidden layer whose activation the kernel applies (`Act::fused`).
    z: Vec<f32>,
    /// `act(z)` (hidden layers).
    h: Vec<f32>,
    /// Dropout's scaled keep-mask and `h * mask`, when dropout is on.
    mask: Vec<f32>,
    dropped: Vec<f32>,
}

/// Every buffer one forward and backward pass needs, allocated once per trial.
struct Work {
    layers: Vec<LayerWork>,
    /// Gradient with respect to a layer's `z`, and with respect to its input.
    dz: Vec<f32>,
    dx: Vec<f32>,
    grads: Vec<f32>,
    /// A layer's weights transposed, for `dz · Wᵀ`; before that, a narrow layer's weight
    /// gradient transposed.
    wt: Vec<f32>,
    /// Whether the last forward pass applied dropout (training) or not (validation).
    dropping: bool,
}

impl Work {
    fn new(net: &Net, capacity: usize, dropout: bool) -> Self {
        let n = net.layers();
        let widest = net.widths.iter().copied().max().unwrap_or(1);
        let layers = (0..n)
            .map(|l| {
                let size = capacity * net.widths[l + 1];
                let hidden = l + 1 < n;
                let buffer = |needed: bool| if needed { vec![0.0; size] } else { Vec::new() };
                LayerWork {
                    // A hidden ReLU layer fused into the kernel keeps only `h`.
                    z: buffer(!hidden || !net.act.fused()),
                    h: buffer(hidden),
                    mask: buffer(hidden && dropout),
                    dropped: buffer(hidden && dropout),
                }
            })
            .collect();
        Self {
            layers,
            dz: vec![0.0; capacity * widest],
            dx: vec![0.0; capacity * widest],
            grads: vec![0.0; net.params.len()],
            wt: vec![0.0; net.params.len()],
            dropping: false,
        }
    }
}

/// What a hidden layer passed on in a pass: `h`, or `h * mask` under dropout.
fn passed(w: &LayerWork, len: usize, dropping: bool) -> &[f32] {
    if dropping {
        &w.dropped[..len]
    } else {
        &w.h[..len]
    }
}

/// Runs `rows` rows of `x` through the network; the output is `work.layers[last].z`. With
/// `dropout`, masks are drawn in the burn trainer's order (layer by layer, row-major).
fn forward(net: &Net, x: &[f32], rows: usize, work: &mut Work, mut dropout: Option<&mut Dropout>) {
    let n = net.layers();
    let dropping = dropout.as_ref().is_some_and(|d| d.prob > 0.0);
    work.dropping = dropping;
    for l in 0..n {
        let (d_in, d_out) = net.dims(l);
        let (before, rest) = work.layers.split_at_mut(l);
        let cur = &mut rest[0];
        let input = if l == 0 {
            &x[..rows * d_in]
        } else {
            passed(&before[l - 1], rows * d_in, dropping)
        };
        let (w, b) = net.split(&net.params, l);
        let (input, w) = (View::rows(input, d_in), View::rows(w, d_out));
        let shape = (rows, d_in, d_out);
        if l + 1 < n {
            let h = &mut cur.h[..rows * d_out];
            if net.act.fused() {
                // `h` straight from the product's registers; `z` is not needed.
                matmul_stored(h, input, w, shape, Some(b), Store::Relu);
            } else {
                let z = &mut cur.z[..rows * d_out];
                matmul(z, input, w, shape, Some(b));
                net.act.forward(z, h);
            }
            if let Some(d) = dropout.as_deref_mut().filter(|_| dropping) {
                let mask = &mut cur.mask[..rows * d_out];
                d.fill(mask);
                for ((o, &h), &m) in cur.dropped.iter_mut().zip(h.iter()).zip(mask.iter()) {
                    *o = h * m;
                }
            }
        } else {
            matmul(&mut cur.z[..rows * d_out], input, w, shape, Some(b));
        }
    }
}

/// The mean loss of the output against `y[range]` (cross-entropy on logits, or MSE) and how
/// many rows the argmax got right. `scratch` holds at least the output's length; with
/// `grad`, it ends up holding the loss's gradient with respect to the output.
fn loss(
    out: &[f32],
    y: &Target,
    range: std::ops::Range<usize>,
    n_outputs: usize,
    scratch: &mut [f32],
    grad: bool,
) -> (f32, usize) {
    let rows = range.len();
    let scale = 1.0 / rows.max(1) as f32;
    let g = &mut scratch[..out.len()];
    let mut total = 0.0f64;
    let mut correct = 0;
    match y {
        Target::Classes(labels) => {
            let labels = &labels[range];
            // Shift each row by its max, exponentiate everything in one vectorized pass,
            // then normalise row by row: softmax, log-sum-exp and argmax.
            for ((row, g), &label) in out
                .chunks_exact(n_outputs)
                .zip(g.chunks_exact_mut(n_outputs))
                .zip(labels)
            {
                let (best, max) =
                    row.iter()
                        .enumerate()
                        .fold(
                            (0, f32::NEG_INFINITY),
                            |(b, m), (i, &o)| {
                                if o > m { (i, o) } else { (b, m) }
                            },
                        );
                correct += usize::from(best == label);
                for (g, &o) in g.iter_mut().zip(row) {
                    *g = o - max;
                }
                // -log softmax(row)[label] = log sum exp(row - max) - (row[label] - max);
                // the first term is added below, once the row is exponentiated.
                total -= f64::from(g[label]);
            }
            exp_in_place(g);
            // The rows' log-sum-exps add up to the log of their sums' product: one `ln` per
            // many rows instead of one per row (libm's `logf` was 1.4% of a batch-256 epoch).
            // Each sum is at least 1 (the row's max contributes e^0) and at most
            // `n_outputs`, so the product stays far from overflow when taken out past 1e150.
            let mut product = 1.0f64;
            for (g, &label) in g.chunks_exact_mut(n_outputs).zip(labels) {
                let sum: f32 = g.iter().sum();
                product *= f64::from(sum);
                if product > 1e150 {
                    total += product.ln();
                    product = 1.0;
                }
                if grad {
                    let inv = scale / sum;
                    for v in g.iter_mut() {
                        *v *= inv;
                    }
                    g[label] -= scale;
                }
            }
            total += product.ln();
        }
        Target::Values(values) => {
            for ((&o, &v), g) in out.iter().zip(&values[range]).zip(g.iter_mut()) {
                let d = o - v;
                total += f64::from(d * d);
                *g = 2.0 * d * scale;
            }
        }
    }
    ((total / rows.max(1) as f64) as f32, correct)
}

/// Gradients of the loss with respect to every parameter into `work.grads`, given the
/// output gradient in `work.dz` and the activations of the last forward pass.
fn backward(net: &Net, x: &[f32], rows: usize, work: &mut Work) {
    let n = net.layers();
    for l in (0..n).rev() {
        let (d_in, d_out) = net.dims(l);
        let input = if l == 0 {
            &x[..rows * d_in]
        } else {
            passed(&work.layers[l - 1], rows * d_in, work.dropping)
        };
        let dz = &work.dz[..rows * d_out];
        let (gw, gb) = net.split_mut(&mut work.grads, l);
        // dW = inputᵀ · dz; db = column sums of dz.
        if d_out < NARROW && rows >= NARROW_ROWS {
            // A narrow layer (the output layer) fills few of a vector's lanes with dz's row,
            // so its dWᵀ = dzᵀ · input is computed instead, then copied into place. lcurve's
            // kernels add the same products in the same order either way: the same bits.
            let gt = &mut work.wt[..d_in * d_out];
            matmul(
                gt,
                View::transposed(dz, d_out),
                View::rows(input, d_in),
                (d_out, rows, d_in),
                None,
            );
            for (i, out) in gw.chunks_exact_mut(d_out).enumerate() {
                for (j, g) in out.iter_mut().enumerate() {
                    *g = gt[j * d_in + i];
                }
            }
        } else {
            matmul(
                gw,
                View::transposed(input, d_in),
                View::rows(dz, d_out),
                (d_in, rows, d_out),
                None,
            );
        }
        gb.fill(0.0);
        for row in dz.chunks_exact(d_out) {
            for (g, &d) in gb.iter_mut().zip(row) {
                *g += d;
            }
        }
        if l == 0 {
            break;
        }
        // d input = dz · Wᵀ, then back through dropout and the activation.
        let (w, _) = net.split(&net.params, l);
        let dx = &mut work.dx[..rows * d_in];
        // Through a transposed copy of W (row-major `[d_out, d_in]`, 5 KB for the digits
        // MLP): the AVX-512 kernel then takes this product too. With the gemm crate reading
        // Wᵀ in place, epochs took 3-4% longer at every batch size.
        let wt = &mut work.wt[..w.len()];
        for (i, row) in w.chunks_exact(d_out).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                wt[j * d_in + i] = v;
            }
        }
        let below = &work.layers[l - 1];
        let (dz, wt) = (View::rows(dz, d_out), View::rows(wt, d_in));
        let shape = (rows, d_out, d_in);
        let h = &below.h[..rows * d_in];
        let fused = net.act.fused();
        // The ReLU's derivative, a mask, commutes with dropout's scaling: applied in the
        // product's registers, or after the dropout's mask as other activations are.
        if fused {
            matmul_stored(dx, dz, wt, shape, None, Store::KeepWherePositive(h));
        } else {
            matmul(dx, dz, wt, shape, None);
        }
        if work.dropping {
            for (g, &m) in dx.iter_mut().zip(&below.mask[..rows * d_in]) {
                *g *= m;
            }
        }
        if !fused {
            net.act.backward(&below.z[..rows * d_in], h, dx);
        }
        std::mem::swap(&mut work.dz, &mut work.dx);
    }
}

wide! {
    fn adam_update(params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32], k: [f32; 5]) {
        let [b1, b2, lr, factor, eps] = k;
        for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m).zip(v) {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= lr * (*m * factor / (v.sqrt() + eps));
        }
    }
}

/// Adam or SGD with burn's update rules (L2 weight decay added to the gradient, Adam's
/// bias correction folded into the step, momentum without dampening).
enum Optim {
    Adam {
        beta1: f32,
        beta2: f32,
        time: u64,
        m: Vec<f32>,
        v: Vec<f32>,
    },
    Sgd {
        momentum: Option<f32>,
        velocity: Option<Vec<f32>>,
    },
}

impl Optim {
    fn new(config: &TrialConfig, size: usize) -> Self {
        match config.optimizer {
            Optimizer::Adam => Self::Adam {
                beta1: config.beta1.unwrap_or(0.9) as f32,
                beta2: config.beta2.unwrap_or(0.999) as f32,
                time: 0,
                m: vec![0.0; size],
                v: vec![0.0; size],
            },
            Optimizer::Sgd => Self::Sgd {
                momentum: config.momentum.filter(|&m| m > 0.0).map(|m| m as f32),
                velocity: None,
            },
        }
    }

    fn step(&mut self, lr: f64, decay: f32, params: &mut [f32], grads: &mut [f32]) {
        let lr = lr as f32;
        if decay > 0.0 {
            for (g, &p) in grads.iter_mut().zip(params.iter()) {
                *g += decay * p;
            }
        }
        match self {
            Self::Adam {
                beta1,
                beta2,
                time,
                m,
                v,
            } => {
                *time += 1;
                let t = i32::try_from(*time).unwrap_or(i32::MAX);
                let (b1, b2) = (*beta1, *beta2);
                let bc2 = (1.0 - b2.powi(t)).sqrt();
                let factor = bc2 / (1.0 - b1.powi(t));
                let eps = ADAM_EPSILON * bc2;
                adam_update(params, grads, m, v, [b1, b2, lr, factor, eps]);
            }
            Self::Sgd { momentum, velocity } => {
                if let Some(mu) = *momentum {
                    match velocity {
                        None => *velocity = Some(grads.to_vec()),
                        Some(vel) => {
                            for (v, &g) in vel.iter_mut().zip(grads.iter()) {
                                *v = g + *v * mu;
                            }
                        }
                    }
                    let vel = velocity.as_deref().unwrap_or(grads);
                    for (p, &v) in params.iter_mut().zip(vel) {
                        *p -= lr * v;
                    }
                } else {
                    for (p, &g) in params.iter_mut().zip(grads.iter()) {
                        *p -= lr * g;
                    }
                }
            }
        }
    }

    /// The state as little-endian bytes: Adam's step count and moments, or SGD's velocity.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::Adam { time, m, v, .. } => {
                out.extend(time.to_le_bytes());
                push_f32s(&mut out, m);
                push_f32s(&mut out, v);
            }
            Self::Sgd { velocity, .. } => {
                if let Some(v) = velocity {
                    push_f32s(&mut out, v);
                }
            }
        }
        out
    }

    /// Reads [`Self::encode`]'s bytes for `size` parameters; `None` if they do not fit.
    fn decode(&mut self, bytes: &[u8], size: usize) -> Option<()> {
        match self {
            Self::Adam { time, m, v, .. } => {
                if m.len() != size {
                    return None;
                }
                let (t, rest) = bytes.split_first_chunk::<8>()?;
                *time = u64::from_le_bytes(*t);
                let (a, b) = rest.split_at_checked(m.len() * 4)?;
                read_f32s(a, m)?;
                read_f32s(b, v)
            }
            Self::Sgd { velocity, .. } => {
                if bytes.is_empty() {
                    *velocity = None;
                    return Some(());
                }
                let mut v = vec![0.0; size];
                read_f32s(bytes, &mut v)?;
                *velocity = Some(v);
                Some(())
            }
        }
    }
}

fn push_f32s(out: &mut Vec<u8>, values: &[f32]) {
    for v in values {
        out.extend(v.to_le_bytes());
    }
}

/// Fills `into` from exactly `into.len()` little-endian f32s.
fn read_f32s(bytes: &[u8], into: &mut [f32]) -> Option<()> {
    if bytes.len() != into.len() * 4 {
        return None;
    }
    for (v, b) in into.iter_mut().zip(bytes.chunks_exact(4)) {
        *v = f32::from_le_bytes(b.try_into().ok()?);
    }
    Some(())
}

/// What burn's initial weights depend on: the seed, the layers' widths and (should an
/// activation ever hold parameters) the activation.
#[derive(Clone, PartialEq)]
struct InitKey {
    seed: u64,
    widths: (usize, Vec<usize>, usize),
    activation: (Activation, Option<u64>),
}

/// burn's initial weights for `config`'s model, made by burn once per seed, widths and
/// activation and then kept (the last 16): making them took 0.2 ms per trial, under a lock
/// the trials share, and a grid's trials mostly share all three (the digits sweep's 32
/// trials, 4 activations: 4 made instead of 32). Two trials that miss at once both make
/// them; the first to finish keeps its copy.
fn initial_values(
    config: &TrialConfig,
    n_features: usize,
    n_out: usize,
) -> Result<Arc<Vec<LayerValues>>, TrainError> {
    const KEPT: usize = 16;
    static MADE: Mutex<Vec<(InitKey, Arc<Vec<LayerValues>>)>> = Mutex::new(Vec::new());
    let key = InitKey {
        seed: config.seed,
        widths: (n_features, config.hidden.clone(), n_out),
        activation: (config.activation, config.negative_slope.map(f64::to_bits)),
    };
    // A poisoned list holds only whole entries.
    let made = || MADE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, values)) = made().iter().find(|(k, _)| *k == key) {
        return Ok(values.clone());
    }
    let device = burn::tensor::Device::flex().autodiff();
    let values = Arc::new(
        initial_model(&device, config, n_features, n_out)
            .layer_values()
            .map_err(TrainError)?,
    );
    let mut made = made();
    if let Some((_, kept)) = made.iter().find(|(k, _)| *k == key) {
        return Ok(kept.clone());
    }
    if made.len() == KEPT {
        made.remove(0);
    }
    made.push((key, values.clone()));
    Ok(values)
}

impl Trainer for FusedTrainer {
    fn train(
        &self,
        config: &TrialConfig,
        resume: Option<&Checkpoint>,
        on_epoch: &mut EpochSink,
    ) -> Result<TrainEnd, TrainError> {
        let (n_features, n_out) = (self.split.train.n_features, self.n_outputs());
        let mut widths = vec![n_features];
        widths.extend(&config.hidden);
        widths.push(n_out);
        let mut net = Net::new(widths, Act::new(config.activation, config.negative_slope));
        // burn's initial weights, so both engines start from the same point.
        let start = initial_values(config, n_features, n_out)?;
        if start.len() != net.layers() {
            return Err(TrainError("the initial model has the wrong shape".into()));
        }
        let mut params = std::mem::take(&mut net.params);
        for (l, (w, b)) in start.iter().enumerate() {
            let (pw, pb) = net.split_mut(&mut params, l);
            if pw.len() != w.len() || pb.len() != b.len() {
                return Err(TrainError("the initial model has the wrong shape".into()));
            }
            pw.copy_from_slice(w);
            pb.copy_from_slice(b);
        }
        net.params = params;
        let _flush = FlushSubnormals::new();
        let mut optim = Optim::new(config, net.params.len());
        let decay = config.weight_decay as f32;
        let (train, valid) = (&self.split.train, &self.split.valid);
        let mut order = self.split.subsets.pick(config.train_fraction);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut first = 1;
        if let Some(cp) = resume {
            let damaged = || TrainError("the checkpoint is damaged or not a fused one".into());
            let saved = Saved::decode(&cp.data).ok_or_else(damaged)?;
            let params = saved.model.strip_prefix(MAGIC).ok_or_else(damaged)?;
            read_f32s(params, &mut net.params).ok_or_else(damaged)?;
            optim
                .decode(&saved.optim, net.params.len())
                .ok_or_else(damaged)?;
            rng.set_word_pos(saved.rng_word_pos);
            order = saved.order;
            first = cp.epoch + 1;
        }

        let batch = config.batch_size.max(1);
        let mut work = Work::new(&net, batch.max(valid.rows()), config.dropout > 0.0);
        let nf = n_features;
        let mut xs = vec![0.0f32; order.len() * nf];
        let mut ys = match &train.target {
            Target::Classes(_) => Target::Classes(vec![0; order.len()]),
            Target::Values(_) => Target::Values(vec![0.0; order.len()]),
        };
        let last = net.layers() - 1;
        for epoch in first..=config.epochs {
            let started = Instant::now();
            let lr = config.learning_rate_at(epoch);
            order.shuffle(&mut rng);
            // One gather per epoch; batches are then contiguous slices of it.
            for (dst, &i) in xs.chunks_exact_mut(nf).zip(&order) {
                dst.copy_from_slice(&train.features[i * nf..(i + 1) * nf]);
            }
            match (&mut ys, &train.target) {
                (Target::Classes(d), Target::Classes(s)) => {
                    d.iter_mut().zip(&order).for_each(|(d, &i)| *d = s[i])
                }
                (Target::Values(d), Target::Values(s)) => {
                    d.iter_mut().zip(&order).for_each(|(d, &i)| *d = s[i])
                }
                _ => unreachable!("ys is built with the target's kind"),
            }
            let mut steps = Vec::with_capacity(order.len().div_ceil(batch));
            for start in (0..order.len()).step_by(batch) {
                let end = (start + batch).min(order.len());
                let rows = end - start;
                let x = &xs[start * nf..end * nf];
                let mut dropout = Dropout {
                    prob: config.dropout,
                    rng: &mut rng,
                };
                forward(&net, x, rows, &mut work, Some(&mut dropout));
                let out = &work.layers[last].z[..rows * n_out];
                let (batch_loss, _) = loss(out, &ys, start..end, n_out, &mut work.dz, true);
                steps.push(batch_loss);
                backward(&net, x, rows, &mut work);
                optim.step(lr, decay, &mut net.params, &mut work.grads);
            }
            let train_loss =
                steps.iter().map(|&l| f64::from(l)).sum::<f64>() / steps.len().max(1) as f64;

            let valid_rows = valid.rows();
            forward(&net, &valid.features, valid_rows, &mut work, None);
            let out = &work.layers[last].z[..valid_rows * n_out];
            let (val_loss, correct) = loss(
                out,
                &valid.target,
                0..valid_rows,
                n_out,
                &mut work.dz,
                false,
            );
            let val_loss = f64::from(val_loss);
            let (val_accuracy, val_rmse) = match &valid.target {
                Target::Classes(_) => (Some(correct as f64 / valid_rows.max(1) as f64), None),
                Target::Values(_) => (
                    None,
                    Some(val_loss.sqrt() * self.split.record.target_std.unwrap_or(1.0)),
                ),
            };
            let report = EpochReport {
                epoch,
                train_loss,
                val_loss,
                val_accuracy,
                val_rmse,
                seconds: started.elapsed().as_secs_f64(),
                steps,
            };
            match on_epoch(report) {
                Control::Continue => {}
                Control::Stop => return Ok(TrainEnd::Finished(epoch)),
                Control::Pause => {
                    let mut model = MAGIC.to_vec();
                    push_f32s(&mut model, &net.params);
                    let saved = Saved {
                        model,
                        optim: optim.encode(),
                        rng_word_pos: rng.get_word_pos(),
                        order,
                    };
                    return Ok(TrainEnd::Paused(Checkpoint {
                        epoch,
                        data: saved.encode(),
                    }));
                }
            }
        }
        Ok(TrainEnd::Finished(config.epochs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"learning_rate":0.001,"batch_size":32,"epochs":6,"activation":"relu","optimizer":"adam","hidden":[128],"seed":7,"dataset":"digits","validation_fraction":0.2}"#;

    /// A tiny `[3 -> 4 -> 3 -> outputs]` net with fixed, varied parameters.
    fn tiny(act: Act, outputs: usize) -> Net {
        let mut net = Net::new(vec![3, 4, 3, outputs], act);
        for (i, p) in net.params.iter_mut().enumerate() {
            *p = ((i * 37 % 23) as f32 - 11.0) / 15.0;
        }
        net
    }

    fn batch_loss(net: &Net, x: &[f32], y: &Target, work: &mut Work, grad: bool) -> f32 {
        let rows = x.len() / 3;
        forward(net, x, rows, work, None);
        let n_out = net.widths[net.layers()];
        let out = work.layers[net.layers() - 1].z[..rows * n_out].to_vec();
        loss(&out, y, 0..rows, n_out, &mut work.dz, grad).0
    }

    /// Backpropagated gradients agree with central finite differences, for every activation
    /// and both losses, in batches small and large enough for the narrow layers' transposed
    /// weight gradients.
    #[test]
    fn gradients_match_finite_differences() {
        for rows in [5, NARROW_ROWS + 6] {
            gradients_match_finite_differences_in(rows);
        }
    }

    fn gradients_match_finite_differences_in(rows: usize) {
        let x: Vec<f32> = (0..3 * rows)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0)
            .collect();
        let targets = [
            (
                Target::Classes((0..rows).map(|i| [0, 1, 1, 0, 1][i % 5]).collect()),
                2,
            ),
            (
                Target::Values(
                    (0..rows)
                        .map(|i| [0.5, -1.0, 0.25, 2.0, -0.5][i % 5] + i as f32 / 64.0)
                        .collect(),
                ),
                1,
            ),
        ];
        let acts = [
            Act::Relu,
            Act::Leaky(0.1),
            Act::Gelu,
            Act::Sigmoid,
            Act::Tanh,
        ];
        for act in acts {
            for (y, outputs) in &targets {
                let mut net = tiny(act, *outputs);
                let mut work = Work::new(&net, rows, false);
                batch_loss(&net, &x, y, &mut work, true);
                backward(&net, &x, rows, &mut work);
                let analytic = work.grads.clone();
                assert!(analytic.iter().any(|g| g.abs() > 1e-3));
                let h = 1e-3f32;
                for (i, &backprop) in analytic.iter().enumerate() {
                    let keep = net.params[i];
                    net.params[i] = keep + h;
                    let up = batch_loss(&net, &x, y, &mut work, false);
                    net.params[i] = keep - h;
                    let down = batch_loss(&net, &x, y, &mut work, false);
                    net.params[i] = keep;
                    let numeric = (up - down) / (2.0 * h);
                    assert!(
                        (numeric - backprop).abs() <= 2e-3 + 2e-2 * numeric.abs(),
                        "parameter {i}: backprop {backprop} vs finite difference {numeric}"
                    );
                }
            }
        }
    }

    /// The vectorizable exp, tanh and erf agree with the standard library to within 1e-6.
    #[test]
    fn fast_functions_match_the_standard_library() {
        let (mut e_exp, mut e_tanh, mut e_erf) = (0.0f64, 0.0f64, 0.0f64);
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4;
            let rel = |a: f32, b: f64| (f64::from(a) - b).abs() / b.abs().max(1e-30);
            e_exp = e_exp.max(rel(fast::exp(x * 4.0), f64::from(x * 4.0).exp()));
            e_tanh = e_tanh.max((f64::from(fast::tanh(x)) - f64::from(x).tanh()).abs());
            e_erf = e_erf.max((f64::from(fast::erf(x)) - libm::erf(f64::from(x))).abs());
        }
        eprintln!("largest errors: exp {e_exp:e} (relative), tanh {e_tanh:e}, erf {e_erf:e}");
        assert!(e_exp < 3e-7, "exp: largest relative error {e_exp:e}");
        assert!(e_tanh < 1e-6, "tanh: largest error {e_tanh:e}");
        assert!(e_erf < 1e-6, "erf: largest error {e_erf:e}");
        assert!((fast::tanh(100.0) - 1.0).abs() < 1e-6);
        assert!((fast::erf(-100.0) + 1.0).abs() < 1e-6);
        assert!(fast::exp(-200.0) < 1e-37 && fast::exp(200.0) > 1e38);
    }

    /// Subnormal results become 0 while a trial trains, and the thread's mode comes back after.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn subnormals_are_flushed_only_while_training() {
        use std::hint::black_box;
        let tiny = || black_box(1e-30f32) * black_box(1e-10f32);
        assert!(tiny() > 0.0, "subnormals exist by default");
        {
            let _flush = FlushSubnormals::new();
            assert_eq!(tiny(), 0.0);
        }
        assert!(tiny() > 0.0, "the mode is restored");
    }

    /// Adam's first step moves each parameter by about the learning rate against its
    /// gradient's sign; SGD with momentum accumulates velocity.
    #[test]
    fn optimizers_follow_burns_rules() {
        let mut config: TrialConfig = serde_json::from_str(CONFIG).unwrap();
        config.optimizer = Optimizer::Adam;
        let mut adam = Optim::new(&config, 2);
        let mut p = vec![1.0f32, -1.0];
        adam.step(0.1, 0.0, &mut p, &mut [0.5, -2.0]);
        assert!(
            (p[0] - 0.9).abs() < 1e-4 && (p[1] + 0.9).abs() < 1e-4,
            "{p:?}"
        );

        config.optimizer = Optimizer::Sgd;
        config.momentum = Some(0.5);
        let mut sgd = Optim::new(&config, 1);
        let mut p = vec![0.0f32];
        sgd.step(1.0, 0.0, &mut p, &mut [1.0]);
        sgd.step(1.0, 0.0, &mut p, &mut [1.0]);
        // Velocity 1, then 1 + 0.5 * 1.
        assert!((p[0] + 2.5).abs() < 1e-6, "{p:?}");
        // Weight decay adds decay * p to the gradient.
        let mut plain = Optim::new(
            &TrialConfig {
                momentum: None,
                ..config.clone()
            },
            1,
        );
        let mut p = vec![2.0f32];
        plain.step(0.5, 0.1, &mut p, &mut [0.0]);
        assert!((p[0] - 1.9).abs() < 1e-6, "{p:?}");

        let bytes = adam.encode();
        let mut back = Optim::new(&serde_json::from_str(CONFIG).unwrap(), 2);
        back.decode(&bytes, 2).unwrap();
        assert!(
            back.decode(&bytes, 3).is_none(),
            "the wrong size is refused"
        );
        assert_eq!(back.encode(), bytes);
    }

    /// The kept initial weights are burn's own for every trial: the same for trials that
    /// differ in what burn's initialisation does not read, made anew for another seed or
    /// width, and burn's still once more than 16 other models were made in between.
    #[test]
    fn kept_initial_weights_are_burns() {
        let base: TrialConfig = serde_json::from_str(CONFIG).unwrap();
        let burns = |c: &TrialConfig| {
            let device = burn::tensor::Device::flex().autodiff();
            initial_model(&device, c, 64, 10).layer_values().unwrap()
        };
        let first = initial_values(&base, 64, 10).unwrap();
        assert_eq!(*first, burns(&base));
        let other_rate = TrialConfig {
            learning_rate: 0.03,
            ..base.clone()
        };
        let again = initial_values(&other_rate, 64, 10).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "made again for a learning rate"
        );
        let reseeded = TrialConfig {
            seed: 8,
            ..base.clone()
        };
        let other = initial_values(&reseeded, 64, 10).unwrap();
        assert_eq!(*other, burns(&reseeded));
        assert_ne!(*other, *first);
        let wider = TrialConfig {
            hidden: vec![16, 8],
            ..base.clone()
        };
        assert_eq!(*initial_values(&wider, 64, 10).unwrap(), burns(&wider));
        for seed in 100..120 {
            let c = TrialConfig {
                seed,
                hidden: vec![4],
                ..base.clone()
            };
            assert_eq!(*initial_values(&c, 64, 10).unwrap(), burns(&c));
        }
        assert_eq!(*initial_values(&base, 64, 10).unwrap(), burns(&base));
    }
}
