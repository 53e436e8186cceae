//! An AVX2 + FMA float32 GEMM for the fused engine on CPUs without AVX-512: the same products
//! as `avx512.rs` (right-hand matrix with contiguous rows), 8 floats per FMA.
//!
//! Each block of up to 6 rows x 16 columns of `c` stays in 12 of the 16 vector registers for
//! the whole `k` loop: per step, two loads of `b`'s row and one broadcast of `a` per row.
//! Nothing is packed and nothing is allocated: the `gemm` crate packed both operands into a
//! buffer it allocated on every call, 10-13% of a fused epoch on an AVX2-only AMD EPYC.
//! Ragged edges use masked loads and stores (`vmaskmovps`), which never touch memory outside
//! the mask; whole blocks use plain loads. Blocks are stored through a `Store`, so a hidden
//! ReLU layer and its derivative cost no pass of their own (see `avx512.rs`).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::avx512::Store;

/// Whether this CPU runs [`gemm`].
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Rows of `c` per block.
const MR: usize = 6;

/// `c = a · b`, or `c = bias + a · b` with `bias` added to every row, stored through
/// `store` (as in `avx512.rs`): `c` is row-major `[m, n]`; `a(i, p)` is `a[i * ars + p * acs]`;
/// `b` is row-major `[k, n]`.
///
/// # Safety
/// [`available`] must be true, and every index above must be inside its slice for
/// `i < m`, `p < k`, `j < n`, and inside `store`'s matrix for `c`'s (the caller checks;
/// this does not).
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
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
        let w = (n - j).min(16);
        let lanes = |count: usize| {
            let count = count.min(8) as i32;
            _mm256_cmpgt_epi32(
                _mm256_set1_epi32(count),
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            )
        };
        let masks = [lanes(w), lanes(w.saturating_sub(8))];
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
                match w {
                    16 => rows::<2, false>(h, &at),
                    9.. => rows::<2, true>(h, &at),
                    8 => rows::<1, false>(h, &at),
                    _ => rows::<1, true>(h, &at),
                }
            }
            i += h;
        }
        j += 16;
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
    /// Lanes of the first and second vector of 8 columns inside the block.
    masks: [__m256i; 2],
    /// The bias at this block's first column.
    bias: Option<*const f32>,
    /// [`Store::Relu`].
    relu: bool,
    /// [`Store::KeepWherePositive`]'s matrix at this block's first row and column.
    keep: Option<*const f32>,
}

/// [`block`] with its row count as a constant, so its accumulators live in registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows<const NV: usize, const MASKED: bool>(h: usize, at: &Block) {
    // SAFETY: as for `block`, passed on from `gemm`.
    unsafe {
        match h {
            6 => block::<6, NV, MASKED>(at),
            5 => block::<5, NV, MASKED>(at),
            4 => block::<4, NV, MASKED>(at),
            3 => block::<3, NV, MASKED>(at),
            2 => block::<2, NV, MASKED>(at),
            1 => block::<1, NV, MASKED>(at),
            _ => unreachable!("blocks have 1 to {MR} rows"),
        }
    }
}

/// `R` rows by `NV` vectors of 8 columns of `c`; `MASKED` when the block is narrower than
/// `NV` whole vectors.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn block<const R: usize, const NV: usize, const MASKED: bool>(at: &Block) {
    // SAFETY (whole body): `gemm`'s caller guarantees that every unmasked lane and every
    // broadcast element is inside its slice; masked-out lanes are neither read nor written.
    unsafe {
        let load = |p: *const f32, v: usize| {
            if MASKED {
                _mm256_maskload_ps(p, at.masks[v])
            } else {
                _mm256_loadu_ps(p)
            }
        };
        let mut start = [_mm256_setzero_ps(); NV];
        if let Some(bias) = at.bias {
            for (v, x) in start.iter_mut().enumerate() {
                *x = load(bias.wrapping_add(8 * v), v);
            }
        }
        let mut acc = [start; R];
        for p in 0..at.k {
            let bp = at.b.wrapping_add(p * at.brs);
            let mut bv = [_mm256_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = load(bp.wrapping_add(8 * v), v);
            }
            let ap = at.a.wrapping_add(p * at.acs);
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*ap.wrapping_add(r * at.ars));
                for (x, &b) in row.iter_mut().zip(&bv) {
                    *x = _mm256_fmadd_ps(av, b, *x);
                }
            }
        }
        let zero = _mm256_setzero_ps();
        for (r, row) in acc.iter().enumerate() {
            for (v, &x) in row.iter().enumerate() {
                let at_c = r * at.ldc + 8 * v;
                let x = if at.relu {
                    // `max` returns its second operand where either is NaN: 0, as f32::max.
                    _mm256_max_ps(x, zero)
                } else if let Some(keep) = at.keep {
                    let by = load(keep.wrapping_add(at_c), v);
                    // All ones where `by` is above 0 (false for NaN), else +0.0.
                    _mm256_and_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(by, zero), x)
                } else {
                    x
                };
                let out = at.c.wrapping_add(at_c);
                if MASKED {
                    _mm256_maskstore_ps(out, at.masks[v], x);
                } else {
                    _mm256_storeu_ps(out, x);
                }
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn matches_a_naive_product_on_ragged_shapes_both_layouts_and_with_a_bias() {
        if !available() {
            eprintln!("no AVX2 and FMA on this CPU: the fused engine uses the gemm crate");
            return;
        }
        // SAFETY: available() is true, and the check passes slices that fit its shapes.
        super::super::avx512::tests::check_kernel(|c, a, strides, b, shape, bias, store| unsafe {
            gemm(c, a, strides, b, shape, bias, store)
        });
    }

    #[test]
    fn relu_stores_match_a_plain_product_then_the_relu() {
        if !available() {
            return;
        }
        // SAFETY: available() is true, and the check passes slices that fit its shapes.
        super::super::avx512::tests::check_stores(|c, a, strides, b, shape, bias, store| unsafe {
            gemm(c, a, strides, b, shape, bias, store)
        });
    }
}
