//! An AVX-512 float32 GEMM for the fused engine's products whose right-hand matrix has
//! contiguous rows (the forward pass and the weight gradients): 16 floats per FMA instead of
//! the `gemm` crate's 8, whose AVX-512 kernels need nightly Rust.
//!
//! Each block of up to 12 rows x 32 columns of `c` stays in 24 of the 32 vector registers
//! for the whole `k` loop: per step, one or two loads of `b`'s row and one broadcast of `a`
//! per row. The matrices of the digits MLP (at most 256 x 128) fit in L2, so nothing is
//! packed. Ragged edges use masked loads and stores, which never touch memory outside the
//! mask. A ReLU layer's activation, or its derivative's mask, is applied to a block on its
//! way from the registers to memory (see [`Store`]).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Whether this CPU runs [`gemm`].
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Rows of `c` per block.
const MR: usize = 12;

/// What a block of `c` goes through as it is stored, while still in registers: a ReLU layer's
/// activation, forward or backward, without a pass of its own over `c` afterwards.
#[derive(Clone, Copy)]
pub(super) enum Store<'a> {
    /// `c` as computed.
    Plain,
    /// `max(c, 0)`, NaN as 0 (Rust's `f32::max(c, 0.0)`).
    Relu,
    /// `c` where the same element of this matrix (laid out like `c`) is above 0, else 0.
    KeepWherePositive(&'a [f32]),
}

impl Store<'_> {
    /// As a kernel's blocks take it: whether to apply the ReLU, and the matrix whose
    /// positive elements keep `c`'s.
    pub(super) fn parts(self) -> (bool, Option<*const f32>) {
        match self {
            Store::Plain => (false, None),
            Store::Relu => (true, None),
            Store::KeepWherePositive(m) => (false, Some(m.as_ptr())),
        }
    }

    /// The same, element by element, on a `c` already computed: for products the kernel
    /// does not take, and as the kernel's reference in its tests.
    pub(super) fn apply(self, c: &mut [f32]) {
        match self {
            Store::Plain => {}
            Store::Relu => c.iter_mut().for_each(|v| *v = v.max(0.0)),
            Store::KeepWherePositive(by) => {
                for (v, &by) in c.iter_mut().zip(by) {
                    *v = if by > 0.0 { *v } else { 0.0 };
                }
            }
        }
    }
}

/// `c = a · b`, or `c = bias + a · b` with `bias` added to every row, stored through
/// `store`: `c` is row-major `[m, n]`; `a(i, p)` is `a[i * ars + p * acs]`; `b` is row-major
/// `[k, n]`.
///
/// # Safety
/// [`available`] must be true, and every index above must be inside its slice for
/// `i < m`, `p < k`, `j < n`, and inside `store`'s matrix for `c`'s (the caller checks;
/// this does not).
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gemm(
    c: &mut [f32],
    a: &[f32],
    (ars, acs): (usize, usize),
    b: &[f32],
    (m, k, n): (usize, usize, usize),
    bias: Option<&[f32]>,
    store: Store,
) {
    let (c, a, b) = (c.as_mut_ptr(), a.as_ptr(), b.as_ptr());
    let bias = bias.map(|r| r.as_ptr());
    let (relu, keep) = store.parts();
    let mut j = 0;
    while j < n {
        let w = (n - j).min(32);
        let lanes = |count: usize| -> __mmask16 { ((1u32 << count.min(16)) - 1) as __mmask16 };
        let masks = (lanes(w), lanes(w.saturating_sub(16)));
        let mut i = 0;
        while i < m {
            let h = (m - i).min(MR);
            let at = Block {
                c: c.wrapping_add(i * n + j),
                ldc: n,
                a: a.wrapping_add(i * ars),
                ars,
                acs,
                b: b.wrapping_add(j),
                brs: n,
                k,
                masks,
                bias: bias.map(|r| r.wrapping_add(j)),
                relu,
                keep: keep.map(|m| m.wrapping_add(i * n + j)),
            };
            // SAFETY: the caller's contract covers rows i..i + h and columns j..j + w, and
            // the masks leave out the columns past w.
            unsafe {
                if w > 16 {
                    rows::<2>(h, &at)
                } else {
                    rows::<1>(h, &at)
                }
            }
            i += h;
        }
        j += 32;
    }
}

/// One block's pointers (at its first row and column) and shape.
#[cfg(target_arch = "x86_64")]
struct Block {
    c: *mut f32,
    ldc: usize,
    a: *const f32,
    ars: usize,
    acs: usize,
    b: *const f32,
    brs: usize,
    k: usize,
    masks: (__mmask16, __mmask16),
    /// The bias at this block's first column.
    bias: Option<*const f32>,
    /// [`Store::Relu`].
    relu: bool,
    /// [`Store::KeepWherePositive`]'s matrix at this block's first row and column.
    keep: Option<*const f32>,
}

/// [`block`] with its row count as a constant, so its accumulators live in registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rows<const NV: usize>(h: usize, at: &Block) {
    // SAFETY: as for `block`, passed on from `gemm`.
    unsafe {
        match h {
            12 => block::<12, NV>(at),
            11 => block::<11, NV>(at),
            10 => block::<10, NV>(at),
            9 => block::<9, NV>(at),
            8 => block::<8, NV>(at),
            7 => block::<7, NV>(at),
            6 => block::<6, NV>(at),
            5 => block::<5, NV>(at),
            4 => block::<4, NV>(at),
            3 => block::<3, NV>(at),
            2 => block::<2, NV>(at),
            1 => block::<1, NV>(at),
            _ => unreachable!("blocks have 1 to {MR} rows"),
        }
    }
}

/// `R` rows by `NV` vectors of 16 columns of `c`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn block<const R: usize, const NV: usize>(at: &Block) {
    let mask = |v: usize| if v == 0 { at.masks.0 } else { at.masks.1 };
    // SAFETY (whole body): `gemm`'s caller guarantees that every unmasked lane and every
    // broadcast element is inside its slice; masked-out lanes are neither read nor written.
    unsafe {
        let mut start = [_mm512_setzero_ps(); NV];
        if let Some(bias) = at.bias {
            for (v, x) in start.iter_mut().enumerate() {
                *x = _mm512_maskz_loadu_ps(mask(v), bias.wrapping_add(16 * v));
            }
        }
        let mut acc = [start; R];
        for p in 0..at.k {
            let bp = at.b.wrapping_add(p * at.brs);
            let mut bv = [_mm512_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm512_maskz_loadu_ps(mask(v), bp.wrapping_add(16 * v));
            }
            let ap = at.a.wrapping_add(p * at.acs);
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*ap.wrapping_add(r * at.ars));
                for (x, &b) in row.iter_mut().zip(&bv) {
                    *x = _mm512_fmadd_ps(av, b, *x);
                }
            }
        }
        let zero = _mm512_setzero_ps();
        for (r, row) in acc.iter().enumerate() {
            for (v, &x) in row.iter().enumerate() {
                let at_c = r * at.ldc + 16 * v;
                let x = if at.relu {
                    // `max` returns its second operand where either is NaN: 0, as f32::max.
                    _mm512_max_ps(x, zero)
                } else if let Some(keep) = at.keep {
                    let by = _mm512_maskz_loadu_ps(mask(v), keep.wrapping_add(at_c));
                    _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(by, zero), x)
                } else {
                    x
                };
                _mm512_mask_storeu_ps(at.c.wrapping_add(at_c), mask(v), x);
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
pub(super) mod tests {
    use super::*;

    /// The same product, one dot product at a time in f64.
    fn naive(
        a: &[f32],
        (ars, acs): (usize, usize),
        b: &[f32],
        brs: usize,
        (m, k, n): (usize, usize, usize),
    ) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|p| a[i * ars + p * acs] as f64 * b[p * brs + j] as f64)
                    .sum::<f64>() as f32;
            }
        }
        c
    }

    /// A GEMM kernel as the checks below call it: `(c, a, a's strides, b, (m, k, n), bias,
    /// store)`.
    pub(in crate::trainer) trait Kernel:
        Fn(&mut [f32], &[f32], (usize, usize), &[f32], (usize, usize, usize), Option<&[f32]>, Store)
    {
    }

    impl<F> Kernel for F where
        F: Fn(
            &mut [f32],
            &[f32],
            (usize, usize),
            &[f32],
            (usize, usize, usize),
            Option<&[f32]>,
            Store,
        )
    {
    }

    /// Checks `kernel`'s plain product against [`naive`] on ragged shapes, with `a` stored as
    /// is or transposed, with and without a bias; every output starts as NaN, so a value the
    /// kernel does not write fails.
    pub(in crate::trainer) fn check_kernel(kernel: impl Kernel) {
        let value = |i: usize| ((i * 7919 % 1009) as f32 - 504.0) / 504.0;
        for (m, k, n) in [
            (1, 1, 1),
            (5, 7, 10),
            (12, 64, 128),
            (13, 3, 16),
            (25, 9, 17),
            (30, 256, 33),
            (7, 5, 8),
            (256, 64, 128),
            (64, 256, 10),
        ] {
            let b: Vec<f32> = (0..k * n).map(|i| value(i + 3)).collect();
            let bias: Vec<f32> = (0..n).map(|j| value(j + 11)).collect();
            let close = |x: f32, y: f32| (x - y).abs() <= 1e-5 * (1.0 + y.abs()) * k as f32;
            for transposed in [false, true] {
                // `a` as stored [m, k], or as the transpose of a stored [k, m].
                let strides = if transposed { (1, m) } else { (k, 1) };
                let a: Vec<f32> = (0..m * k).map(value).collect();
                let want = naive(&a, strides, &b, n, (m, k, n));
                let mut c = vec![f32::NAN; m * n];
                kernel(&mut c, &a, strides, &b, (m, k, n), None, Store::Plain);
                for (x, y) in c.iter().zip(&want) {
                    assert!(close(*x, *y), "{m}x{k}x{n}: {x} vs {y}");
                }
                let mut c = vec![f32::NAN; m * n];
                kernel(
                    &mut c,
                    &a,
                    strides,
                    &b,
                    (m, k, n),
                    Some(&bias),
                    Store::Plain,
                );
                for (i, (x, y)) in c.iter().zip(&want).enumerate() {
                    assert!(close(*x, y + bias[i % n]), "with a bias, {m}x{k}x{n}");
                }
            }
        }
    }

    #[test]
    fn matches_a_naive_product_on_ragged_shapes_both_layouts_and_with_a_bias() {
        if !available() {
            eprintln!(
                "no AVX-512 on this CPU: the fused engine uses the AVX2 kernel or the gemm crate"
            );
            return;
        }
        // SAFETY: available() is true, and the check passes slices that fit its shapes.
        check_kernel(|c, a, strides, b, shape, bias, store| unsafe {
            gemm(c, a, strides, b, shape, bias, store)
        });
    }

    #[test]
    fn relu_stores_match_a_plain_product_then_the_relu() {
        if !available() {
            return;
        }
        // SAFETY: available() is true, and the check passes slices that fit its shapes.
        check_stores(|c, a, strides, b, shape, bias, store| unsafe {
            gemm(c, a, strides, b, shape, bias, store)
        });
    }

    /// Checks that `kernel`'s ReLU stores give what its plain product gives, then the ReLU
    /// or its derivative's mask applied element by element (bit for bit, NaN included); on
    /// ragged shapes, so masked edges are covered.
    pub(in crate::trainer) fn check_stores(kernel: impl Kernel) {
        let value = |i: usize| ((i * 7919 % 1009) as f32 - 504.0) / 504.0;
        for (m, k, n) in [
            (1, 1, 1),
            (13, 3, 16),
            (25, 9, 17),
            (30, 64, 33),
            (256, 10, 128),
        ] {
            let a: Vec<f32> = (0..m * k).map(value).collect();
            let b: Vec<f32> = (0..k * n).map(|i| value(i + 3)).collect();
            let bias: Vec<f32> = (0..n).map(|j| value(j + 11)).collect();
            // Some NaNs: the ReLU makes them 0, and a NaN in the mask keeps nothing.
            let mut by: Vec<f32> = (0..m * n).map(|i| value(i + 5)).collect();
            by[m * n / 2] = f32::NAN;
            let run = |store: Store, a: &[f32]| {
                let mut c = vec![f32::NAN; m * n];
                kernel(&mut c, a, (k, 1), &b, (m, k, n), Some(&bias), store);
                c
            };
            let mut a_nan = a.clone();
            a_nan[0] = f32::NAN;
            for a in [&a, &a_nan] {
                let plain = run(Store::Plain, a);
                for store in [Store::Relu, Store::KeepWherePositive(&by)] {
                    let mut want = plain.clone();
                    store.apply(&mut want);
                    for (x, y) in run(store, a).iter().zip(&want) {
                        assert_eq!(x.to_bits(), y.to_bits(), "{m}x{k}x{n}");
                    }
                }
            }
        }
    }
}
