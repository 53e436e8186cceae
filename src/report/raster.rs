//! plotters' bitmap drawing of pixels, spans and one-pixel lines, pixel for pixel, straight
//! on an RGB buffer. plotters draws a line one pixel wide (every curve of `curves.png`) a
//! pixel at a time through its backend's bounds-checked `draw_pixel`, with a libm `floor`
//! per pixel; the spans of a wide line's polygon go through a blend that calls `floor` too.
//! That was about a fifth of `curves.png`'s CPU time. The functions here make the same
//! choices with the same arithmetic, so the charts come out byte-identical (see the tests in
//! `canvas.rs`).

use plotters_backend::{BackendColor, BackendCoord};

/// `x.floor()` without a libm call, for pixel positions (well inside ±2^53).
#[inline(always)]
pub(super) fn floor(x: f64) -> f64 {
    let t = x as i64 as f64;
    if t > x { t - 1.0 } else { t }
}

/// `x.ceil()`, likewise.
#[inline(always)]
pub(super) fn ceil(x: f64) -> f64 {
    let t = x as i64 as f64;
    if t < x { t + 1.0 } else { t }
}

/// plotters-bitmap's `blend`: the byte moves `a / 256` of the way to `new`, rounded toward
/// the old value.
#[inline(always)]
fn blend(old: &mut u8, new: u8, a: u32) {
    if new > *old {
        *old += (u32::from(new - *old) * a / 256) as u8;
    } else {
        *old -= (u32::from(*old - new) * a / 256) as u8;
    }
}

/// The weight out of 256 that plotters-bitmap's `draw_pixel` gives a colour of `alpha`: 256
/// (the colour replaces the pixel) from 255/256 up, 0 (nothing drawn) at 0 and below,
/// `floor(alpha * 256)` between.
#[inline(always)]
pub(super) fn weight(alpha: f64) -> u16 {
    if alpha >= 1.0 - 1.0 / 256.0 {
        256
    } else if alpha <= 0.0 {
        0
    } else {
        // Truncation is floor for a positive value.
        (alpha * 256.0) as u16
    }
}

/// `rgb` drawn on the pixel `px` (its 3 bytes) with `weight` (see [`weight`]), as
/// plotters-bitmap's `draw_pixel` draws it.
#[inline(always)]
pub(super) fn blend_pixel(px: &mut [u8], (r, g, b): (u8, u8, u8), weight: u16) {
    match weight {
        0 => {}
        256 => px.copy_from_slice(&[r, g, b]),
        a => {
            for (old, new) in px.iter_mut().zip([r, g, b]) {
                blend(old, new, u32::from(a));
            }
        }
    }
}

/// An RGB buffer of `size` pixels, rows top to bottom.
pub(super) struct Pixels<'a> {
    pub(super) buf: &'a mut [u8],
    pub(super) size: (u32, u32),
}

impl Pixels<'_> {
    /// plotters-bitmap's `draw_pixel`: nothing off the canvas, else [`blend_pixel`].
    #[inline(always)]
    pub(super) fn pixel(&mut self, (x, y): BackendCoord, color: BackendColor) {
        let (w, h) = self.size;
        if x < 0 || y < 0 || x as u32 >= w || y as u32 >= h {
            return;
        }
        let at = (y as usize * w as usize + x as usize) * 3;
        if let Some(px) = self.buf.get_mut(at..at + 3) {
            blend_pixel(px, color.rgb, weight(color.alpha));
        }
    }

    /// The rectangle from `upper_left` to `bottom_right` (exclusive), clipped, in `rgb`:
    /// plotters-bitmap's `fill_rect_fast`.
    pub(super) fn fill_rect(&mut self, ul: BackendCoord, br: BackendCoord, rgb: (u8, u8, u8)) {
        let Some((x0, y0, x1, y1)) = self.clip(ul, br) else {
            return;
        };
        let w = self.size.0 as usize;
        let (r, g, b) = rgb;
        for y in y0..y1 {
            let row = &mut self.buf[(y * w + x0) * 3..(y * w + x1) * 3];
            if r == g && g == b {
                row.fill(r);
            } else {
                for px in row.chunks_exact_mut(3) {
                    px.copy_from_slice(&[r, g, b]);
                }
            }
        }
    }

    /// Column `x` from row `ys.0` to `ys.1` (inclusive, either order), clipped, in `rgb`:
    /// plotters-bitmap's `fill_vertical_line_fast`.
    pub(super) fn fill_vertical(&mut self, x: i32, ys: (i32, i32), rgb: (u8, u8, u8)) {
        let (w, h) = (self.size.0 as i32, self.size.1 as i32);
        if x < 0 || x >= w {
            return;
        }
        let (y0, y1) = (ys.0.min(ys.1).max(0), ys.0.max(ys.1).min(h - 1));
        let (r, g, b) = rgb;
        for y in y0..=y1 {
            let at = (y * w + x) as usize * 3;
            self.buf[at..at + 3].copy_from_slice(&[r, g, b]);
        }
    }

    /// plotters-bitmap's `blend_rect_fast` for RGB: each row's first `(n - 1) / 8 * 8` of
    /// its `n` pixels blend as `floor((old * (256 - a) + new * a) / 256)` (its eight pixels
    /// at a time), the rest by [`blend`], which rounds a darkening the other way.
    pub(super) fn blend_rect(
        &mut self,
        ul: BackendCoord,
        br: BackendCoord,
        rgb: (u8, u8, u8),
        alpha: f64,
    ) {
        let alpha = alpha.clamp(0.0, 1.0);
        if alpha == 0.0 {
            return;
        }
        let Some((x0, y0, x1, y1)) = self.clip(ul, br) else {
            return;
        };
        let a = floor(256.0 * alpha) as u32;
        let w = self.size.0 as usize;
        let count = x1 - x0;
        let wide = (count - 1) / 8 * 8;
        let (r, g, b) = rgb;
        for y in y0..y1 {
            let row = &mut self.buf[(y * w + x0) * 3..(y * w + x1) * 3];
            let (fast, rest) = row.split_at_mut(wide * 3);
            for px in fast.chunks_exact_mut(3) {
                for (old, new) in px.iter_mut().zip([r, g, b]) {
                    *old = ((u32::from(*old) * (256 - a) + u32::from(new) * a) >> 8) as u8;
                }
            }
            for px in rest.chunks_exact_mut(3) {
                for (old, new) in px.iter_mut().zip([r, g, b]) {
                    blend(old, new, a);
                }
            }
        }
    }

    /// The rectangle from `ul` to `br` (exclusive) on the canvas, as `(x0, y0, x1, y1)`, or
    /// `None` where it is empty there.
    fn clip(&self, ul: BackendCoord, br: BackendCoord) -> Option<(usize, usize, usize, usize)> {
        let (w, h) = (self.size.0 as i32, self.size.1 as i32);
        let (x0, y0) = (ul.0.min(br.0).max(0), ul.1.min(br.1).max(0));
        let (x1, y1) = (ul.0.max(br.0).min(w), ul.1.max(br.1).min(h));
        (x0 < x1 && y0 < y1).then_some((x0 as usize, y0 as usize, x1 as usize, y1 as usize))
    }

    /// A line one pixel wide from `from` to `to`, as plotters-bitmap's `draw_line` draws
    /// it: a horizontal or vertical one as a span, any other anti-aliased, two pixels per
    /// step along its longer axis (plotters-backend's `rasterizer::draw_line`).
    pub(super) fn line(&mut self, mut from: BackendCoord, mut to: BackendCoord, c: BackendColor) {
        let (r, g, b) = c.rgb;
        if from.0 == to.0 || from.1 == to.1 {
            if c.alpha >= 1.0 {
                if from.1 == to.1 {
                    self.fill_rect(from, (to.0 + 1, to.1 + 1), (r, g, b));
                } else {
                    self.fill_vertical(from.0, (from.1, to.1), (r, g, b));
                }
            } else {
                self.blend_rect(from, (to.0 + 1, to.1 + 1), (r, g, b), c.alpha);
            }
            return;
        }
        if c.alpha == 0.0 {
            return;
        }
        let steep = (from.0 - to.0).abs() < (from.1 - to.1).abs();
        if steep {
            from = (from.1, from.0);
            to = (to.1, to.0);
        }
        let (from, to) = if from.0 > to.0 {
            (to, from)
        } else {
            (from, to)
        };
        let (w, h) = (self.size.0 as i32, self.size.1 as i32);
        let (limit_x, limit_y) = if steep { (h, w) } else { (w, h) };
        let grad = f64::from(to.1 - from.1) / f64::from(to.0 - from.0);
        let mut put = |(x, y): BackendCoord, weight: f64| {
            let color = BackendColor {
                alpha: c.alpha * weight,
                rgb: c.rgb,
            };
            self.pixel(if steep { (y, x) } else { (x, y) }, color);
        };
        let y_step_limit = floor(f64::from(to.1.min(limit_y - 1).max(0) - from.1) / grad) as i32;
        let batch_start =
            ceil((f64::from(from.1.min(limit_y - 2).max(0) - from.1) / grad).abs()) as i32 + from.0;
        let batch_limit = to.0.min(limit_x - 2).min(from.0 + y_step_limit - 1);
        let mut y = f64::from(from.1) + f64::from(batch_start - from.0) * grad;
        for x in batch_start..=batch_limit {
            let below = floor(y);
            put((x, y as i32), 1.0 + below - y);
            put((x, y as i32 + 1), y - below);
            y += grad;
        }
        if to.0 > batch_limit && y < f64::from(to.1) {
            let x = batch_limit + 1;
            let below = floor(y);
            if 1.0 + below - y > 1e-5 {
                put((x, y as i32), 1.0 + below - y);
            }
            if y - below > 1e-5 && y + 1.0 < f64::from(to.1) {
                put((x, y as i32 + 1), y - below);
            }
        }
    }
}
