//! The canvas charts are drawn on: plotters' bitmap backend with text drawn from a shared
//! cache of rasterized glyphs, on a reused pixel buffer (see [`super::buffers`]), written out
//! as PNG.
//!
//! plotters' `ab_glyph` text path outlines and rasterizes every glyph of every label each time
//! it is drawn; that was about a fifth of a report's CPU time. [`Canvas`] draws the same
//! pixels (same layout, same coverage, same blending) from glyphs rasterized once, and blends
//! them straight into the buffer once everything else is drawn (see [`paint`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use ab_glyph::{Font, FontRef, GlyphId, ScaleFont};
use plotters::backend::{BitMapBackend, DrawingBackend};
use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, IntoDrawingArea};
use plotters_backend::FontTransform;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

use super::buffers::{PixelBuffer, Pool};
use super::raster::{self, Pixels};

/// DejaVu Sans (Bitstream Vera licence, see `src/report/fonts/LICENSE-DejaVu.txt`).
pub(super) const FONT_BYTES: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");

/// The family the bundled font is registered under; every chart asks for it.
pub(super) const FAMILY: &str = "sans-serif";

fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    // The font is compiled in and known to be valid; a failure would show in every test.
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).expect("the bundled font parses"))
}

/// One glyph at one size, as plotters' `ab_glyph` code places it: `y_shift` from the
/// glyph's pixel bounds, then every pixel with some coverage, relative to those bounds.
struct Glyph {
    y_shift: i32,
    pixels: Vec<(i32, i32, f32)>,
    /// The same pixels as byte offsets from the glyph's origin on a canvas of some width,
    /// with their weights in opaque text, one list per width drawn on (see
    /// [`Glyph::opaque`]). Most text is opaque and wholly on its canvas, so its pixels need
    /// no transform, bounds check or weight each time the glyph is drawn.
    opaque: Mutex<Vec<Arc<Opaque>>>,
    /// The pixels' bounds: `((min_x, min_y), (max_x, max_y))`, inclusive.
    bounds: ((i32, i32), (i32, i32)),
}

/// A glyph's pixels in opaque text on a canvas `stride` pixels wide (see [`Glyph::opaque`]).
struct Opaque {
    stride: u32,
    /// Byte offset from the glyph's origin, and weight (above zero).
    pixels: Vec<(i32, u16)>,
}

impl Glyph {
    /// The charts' widths a glyph keeps offsets for; past this many, the oldest is dropped.
    const WIDTHS: usize = 8;

    /// The glyph's pixels with a weight above zero in opaque text, each as its byte offset
    /// from the glyph's origin on a canvas `stride` pixels wide.
    fn opaque(&self, stride: u32) -> Arc<Opaque> {
        let mut kept = self.opaque.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(o) = kept.iter().find(|o| o.stride == stride) {
            return o.clone();
        }
        let pixels = self
            .pixels
            .iter()
            .map(|&(x, y, coverage)| {
                let at = (y * stride as i32 + x) * 3;
                (at, raster::weight(f64::from(coverage)))
            })
            .filter(|p| p.1 > 0)
            .collect();
        let made = Arc::new(Opaque { stride, pixels });
        if kept.len() == Self::WIDTHS {
            kept.remove(0);
        }
        kept.push(made.clone());
        made
    }
}

/// Everything measured or rasterized at one font size.
#[derive(Default)]
struct AtSize {
    ids: HashMap<char, (GlyphId, f32)>,
    kerns: HashMap<(GlyphId, GlyphId), f32>,
    glyphs: HashMap<char, Option<Arc<Glyph>>>,
}

impl AtSize {
    /// The glyph id and horizontal advance of `c`.
    fn id(&mut self, size: f32, c: char) -> (GlyphId, f32) {
        *self.ids.entry(c).or_insert_with(|| {
            let font = font().as_scaled(size);
            let id = font.glyph_id(c);
            (id, font.h_advance(id))
        })
    }

    fn kern(&mut self, size: f32, a: GlyphId, b: GlyphId) -> f32 {
        *self
            .kerns
            .entry((a, b))
            .or_insert_with(|| font().as_scaled(size).kern(a, b))
    }

    fn glyph(&mut self, size: f32, c: char) -> Option<Arc<Glyph>> {
        self.glyphs
            .entry(c)
            .or_insert_with(|| {
                let font = font().as_scaled(size);
                let outline = font.outline_glyph(font.scaled_glyph(c))?;
                let bounds = outline.px_bounds();
                let mut pixels = Vec::new();
                outline.draw(|x, y, coverage| {
                    if coverage > 0.0 {
                        pixels.push((x as i32, y as i32, coverage));
                    }
                });
                // A glyph with no pixels has an empty extent at its origin.
                let extent = pixels.iter().fold(
                    pixels
                        .first()
                        .map_or(((0, 0), (0, 0)), |&(x, y, _)| ((x, y), (x, y))),
                    |((x0, y0), (x1, y1)), &(x, y, _)| {
                        ((x0.min(x), y0.min(y)), (x1.max(x), y1.max(y)))
                    },
                );
                Some(Arc::new(Glyph {
                    y_shift: (size / 2.0 + bounds.min.y) as i32,
                    pixels,
                    opaque: Mutex::default(),
                    bounds: extent,
                }))
            })
            .clone()
    }

    /// plotters' layout box for `text` (its advance width and the font size over 1.24), and,
    /// given `placed`, each glyph with its x offset there, placed as plotters' `ab_glyph` code
    /// does. The two sums add kerning and advances in the orders plotters does, so they
    /// round alike.
    fn layout(
        &mut self,
        size: f64,
        text: &str,
        mut placed: Option<&mut Vec<(i32, Arc<Glyph>)>>,
    ) -> LayoutBox {
        let scale = size as f32;
        let (mut width, mut x_shift) = (0f32, 0f32);
        let mut prev: Option<GlyphId> = None;
        for c in text.chars() {
            let (id, advance) = self.id(scale, c);
            let kern = prev.map(|p| self.kern(scale, p, id));
            width += advance;
            if let Some(k) = kern {
                width += k;
                x_shift += k;
            }
            if let Some(placed) = placed.as_deref_mut()
                && let Some(glyph) = self.glyph(scale, c)
            {
                placed.push((x_shift as i32, glyph));
            }
            x_shift += advance;
            prev = Some(id);
        }
        ((0, 0), (width as i32, (size / 1.24) as i32))
    }
}

/// A text's box as plotters gives it: `((min_x, min_y), (max_x, max_y))`.
type LayoutBox = ((i32, i32), (i32, i32));

/// Glyphs by font size (its bits), kept for the process's life and shared by every thread:
/// charts use a handful of sizes and the characters of numbers and labels, and a live
/// redraw draws each trial's chart on a thread of its own.
static GLYPHS: LazyLock<Mutex<HashMap<u64, AtSize>>> = LazyLock::new(Mutex::default);

/// Runs `f` on the cache for font size `size`.
fn at_size<T>(size: f64, f: impl FnOnce(&mut AtSize) -> T) -> T {
    // A panic while the lock was held cannot leave a half-made entry (each is inserted
    // whole), so a poisoned cache is still good.
    let mut sizes = GLYPHS.lock().unwrap_or_else(|e| e.into_inner());
    f(sizes.entry(size.to_bits()).or_default())
}

/// The smallest kept buffer for a PNG file that holds `len` bytes, else the largest kept
/// (the file grows it), emptied; or a new one.
fn file_buffer(pool: &Pool<Vec<u8>>, len: usize) -> Vec<u8> {
    let mut buffer = pool
        .take(len)
        .or_else(|| pool.take_largest())
        .unwrap_or_default();
    buffer.clear();
    buffer
}

static PIXELS: Pool<PixelBuffer> = Pool::new();
static ENCODED: Pool<Vec<u8>> = Pool::new();

thread_local! {
    /// The last chart's text pixels (see [`paint`]), reused (a few kB).
    static TEXT: Rc<RefCell<Vec<TextPixel>>> = Rc::default();
}

/// plotters' bitmap backend, pixel for pixel: pixels, spans and lines drawn straight on the
/// buffer (see [`super::raster`]), polygons (lines wider than a pixel among them) filled by
/// [`super::polygon`], text drawn from the glyph cache; the rest (circles, outlines) made of
/// those by plotters, as for its own backend, and bitmaps and other fonts left to it.
pub struct Canvas<'a> {
    pixels: Pixels<'a>,
    /// The text's pixels, in the order drawn, for [`paint`] to blend in at the end.
    text: Rc<RefCell<Vec<TextPixel>>>,
}

impl Canvas<'_> {
    /// plotters' own backend on the same pixels, for what is left to it.
    fn bitmap(&mut self) -> BitMapBackend<'_> {
        BitMapBackend::with_buffer(self.pixels.buf, self.pixels.size)
    }
}

/// One pixel of text: where it is in the buffer (byte offset), its colour, and its weight
/// out of 256 as plotters' bitmap backend computes it (256: the colour replaces the pixel).
#[derive(Debug, Clone, Copy)]
struct TextPixel {
    at: u32,
    rgb: (u8, u8, u8),
    weight: u16,
}

impl TextPixel {
    fn blend_into(self, pixels: &mut [u8]) {
        let at = self.at as usize;
        if let Some(px) = pixels.get_mut(at..at + 3) {
            raster::blend_pixel(px, self.rgb, self.weight);
        }
    }
}

type Error<'a> = DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>;

impl<'a> DrawingBackend for Canvas<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.pixels.size
    }

    fn ensure_prepared(&mut self) -> Result<(), Error<'a>> {
        Ok(())
    }

    fn present(&mut self) -> Result<(), Error<'a>> {
        Ok(())
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), Error<'a>> {
        self.pixels.pixel(point, color);
        Ok(())
    }

    /// plotters-bitmap's: one pixel wide on the buffer; otherwise plotters' rasterizer, which
    /// makes a wider line a polygon, filled by [`super::polygon::fill_polygon`].
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), Error<'a>> {
        if style.stroke_width() == 1 {
            self.pixels.line(from, to, style.color());
            return Ok(());
        }
        plotters_backend::rasterizer::draw_line(self, from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), Error<'a>> {
        if !fill {
            return plotters_backend::rasterizer::draw_rect(
                self,
                upper_left,
                bottom_right,
                style,
                fill,
            );
        }
        let color = style.color();
        if color.alpha >= 1.0 {
            self.pixels.fill_rect(upper_left, bottom_right, color.rgb);
        } else {
            self.pixels
                .blend_rect(upper_left, bottom_right, color.rgb, color.alpha);
        }
        Ok(())
    }

    /// plotters' default: lines one pixel wide segment by segment, wider ones as polygons,
    /// filled by [`super::polygon::fill_polygon`].
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), Error<'a>> {
        if style.color().alpha == 0.0 {
            return Ok(());
        }
        if style.stroke_width() == 1 {
            let mut begin = None;
            for end in path {
                if let Some(begin) = begin {
                    self.draw_line(begin, end, style)?;
                }
                begin = Some(end);
            }
            return Ok(());
        }
        let points: Vec<_> = path.into_iter().collect();
        let polygon = plotters_backend::rasterizer::polygonize(&points, style.stroke_width());
        super::polygon::fill_polygon(self, &polygon, &style.color())
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), Error<'a>> {
        let vertices: Vec<_> = vert.into_iter().collect();
        super::polygon::fill_polygon(self, &vertices, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        (iw, ih): (u32, u32),
        src: &[u8],
    ) -> Result<(), Error<'a>> {
        self.bitmap().blit_bitmap(pos, (iw, ih), src)
    }

    fn estimate_text_size<T: BackendTextStyle>(
        &self,
        text: &str,
        style: &T,
    ) -> Result<(u32, u32), Error<'a>> {
        if style.family().as_str() != FAMILY {
            return BitMapBackend::with_buffer(&mut [0; 3], (1, 1)).estimate_text_size(text, style);
        }
        let size = style.size();
        let ((min_x, min_y), (max_x, max_y)) = at_size(size, |c| c.layout(size, text, None));
        let (w, h) = style.transform().transform(max_x - min_x, max_y - min_y);
        Ok((w.unsigned_abs(), h.unsigned_abs()))
    }

    /// plotters' default `draw_text` with `ab_glyph`'s placement, from cached glyphs.
    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Result<(), Error<'a>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        if style.family().as_str() != FAMILY {
            return self.bitmap().draw_text(text, style, pos);
        }
        let size = style.size();
        // The cache is locked only while the glyphs are looked up, not while they are drawn.
        let mut placed = Vec::with_capacity(text.len());
        let ((min_x, min_y), (max_x, max_y)) =
            at_size(size, |c| c.layout(size, text, Some(&mut placed)));
        let (width, height) = (max_x - min_x, max_y - min_y);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let trans = style.transform();
        let (w, h) = self.get_size();
        let mut text = self.text.borrow_mut();
        let upright = matches!(trans, FontTransform::None);
        for (x0, glyph) in &placed {
            // Upright opaque text with the whole glyph on the canvas (nearly all of it): no
            // transform, bounds check or weight per pixel.
            let (ox, oy) = (pos.0 + x0 + dx - min_x, pos.1 + glyph.y_shift + dy - min_y);
            let ((gx0, gy0), (gx1, gy1)) = glyph.bounds;
            if upright
                && color.alpha == 1.0
                && ox + gx0 >= 0
                && oy + gy0 >= 0
                && ox + gx1 < w as i32
                && oy + gy1 < h as i32
            {
                let origin = (oy * w as i32 + ox) * 3;
                text.extend(
                    glyph
                        .opaque(w)
                        .pixels
                        .iter()
                        .map(|&(at, weight)| TextPixel {
                            at: (origin + at) as u32,
                            rgb: color.rgb,
                            weight,
                        }),
                );
                continue;
            }
            for &(gx, gy, coverage) in &glyph.pixels {
                let (x, y) = (gx + x0, gy + glyph.y_shift);
                let (x, y) = trans.transform(x + dx - min_x, y + dy - min_y);
                let (x, y) = (pos.0 + x, pos.1 + y);
                if x >= 0 && x < w as i32 && y >= 0 && y < h as i32 {
                    let weight = raster::weight(color.alpha * f64::from(coverage));
                    if weight > 0 {
                        text.push(TextPixel {
                            at: (y as u32 * w + x as u32) * 3,
                            rgb: color.rgb,
                            weight,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// Sees that the pool holds `count` pixel buffers for charts of `size`, their pages in
/// memory: a fresh process's first touch of a page is what costs (see [`super::warm_up`]).
/// Kept buffers are used again, so calls in turn keep no more buffers than the most asked.
pub(super) fn warm_pixels((w, h): (u32, u32), count: usize) {
    super::buffers::warm(&PIXELS, w as usize * h as usize * 3, count);
}

/// Hands `draw` a white canvas of `size` pixels, then writes it to `path` as PNG (see
/// the `chart-png` crate).
pub(super) fn draw_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<Canvas<'_>, Shift>) -> Result<(), String>,
) -> Result<(), String> {
    let (w, h) = size;
    let len = w as usize * h as usize * 3;
    let mut buffer = PIXELS.take(len).unwrap_or_else(|| PixelBuffer::new(len));
    let pixels = buffer.filled(len, 255);
    let written = paint(pixels, size, draw).and_then(|()| {
        // A live redraw's chart whose run ended while it was drawn would not be written (see
        // `write_beside`): it is not encoded either, which is half of a trial chart's time,
        // spent beside the final report.
        if live_over().is_some_and(|over| over.load(Ordering::Relaxed)) {
            return Err(RUN_OVER.to_string());
        }
        write_png(path, size, pixels)
    });
    PIXELS.give_back(buffer);
    written
}

/// Hands `draw` a canvas on `pixels` (RGB, `size`), then blends in the text it drew. Text
/// goes on last, in one tight loop: plotters' bitmap backend blended every text pixel through
/// its bounds-checked `draw_pixel` with a libm `floor` (text took 15.7% of a report's CPU
/// samples that way, 13.4% this way). Text thus ends up on top of whatever is drawn after it: in the 124 charts of 7 example
/// sweeps that changed one byte in two files, where a marker touched a tick label.
fn paint(
    pixels: &mut [u8],
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<Canvas<'_>, Shift>) -> Result<(), String>,
) -> Result<(), String> {
    let text = TEXT.with(Rc::clone);
    text.borrow_mut().clear();
    {
        let root = Canvas {
            pixels: Pixels { buf: pixels, size },
            text: text.clone(),
        }
        .into_drawing_area();
        draw(root.clone())?;
        root.present().map_err(err)?;
    }
    for px in text.borrow_mut().drain(..) {
        px.blend_into(pixels);
    }
    Ok(())
}

fn write_png(path: &Path, (w, h): (u32, u32), pixels: &[u8]) -> Result<(), String> {
    // A chart's PNG file is a small part of its pixels' size.
    let mut file = file_buffer(&ENCODED, pixels.len() / 8);
    chart_png::png_rgb(&mut file, w, h, pixels);
    let written = write_beside(path, &file, true).map_err(|e| e.to_string());
    ENCODED.give_back(file);
    written
}

thread_local! {
    /// Set on a thread while it draws a live redraw: the run's `over` flag.
    static LIVE: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Held shared by every write of a report not drawn live, and alone by each write of a live
/// redraw, which checks under it that the run is not over: the final report does not wait for
/// a live redraw's chart in flight (on a busy machine the nice-19 chart thread took 73-210 ms
/// to finish one), and no live file lands after the final report's, nor half-written: a
/// live write under way when the final report starts writing is waited for.
static GATE: RwLock<()> = RwLock::new(());

/// Why a live redraw's chart is not written once its run is over.
const RUN_OVER: &str = "the run is over: the final report draws this";

/// The `over` flag of the live redraw this thread draws, if it draws one.
fn live_over() -> Option<Arc<AtomicBool>> {
    LIVE.with(|l| l.borrow().clone())
}

/// Runs `draw` (which must draw on this thread alone) as a live redraw of a run that is over
/// once `over` is set: from then on it writes nothing.
pub(super) fn live<T>(over: Arc<AtomicBool>, draw: impl FnOnce() -> T) -> T {
    struct Restore(Option<Arc<AtomicBool>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            LIVE.with(|l| *l.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(LIVE.with(|l| l.borrow_mut().replace(over)));
    draw()
}

/// Writes `bytes` to `path` through a file beside it, named for this process and this write
/// (another process, `lcurve report` while the sweep runs, or another thread may write the
/// same file at the same time), renamed into place: a reader never sees half a file. With
/// `remove_old`, the old file is removed first, so a reader may find none for a moment:
/// replaced in place (truncated) or renamed over, ext4 flushed the new file to disk before
/// `close` returned (`auto_da_alloc`), 20% of the CPU time of the summary charts when
/// `lcurve report` ran again. Charts take that moment; `index.html`, which reloads itself and
/// stops on a missing page, does not. In a live redraw (see [`live`]) of a run that is over,
/// it writes nothing and returns an `Interrupted` error.
pub(super) fn write_beside(path: &Path, bytes: &[u8], remove_old: bool) -> std::io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let live = live_over();
    // A poisoned gate guards nothing that a panic could have left half-done.
    let _gate = match &live {
        Some(over) => {
            let gate = GATE.write().unwrap_or_else(|e| e.into_inner());
            if over.load(Ordering::Relaxed) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    RUN_OVER,
                ));
            }
            Gate::Alone(gate)
        }
        None => Gate::Shared(GATE.read().unwrap_or_else(|e| e.into_inner())),
    };
    let Some(name) = path.file_name() else {
        return std::fs::write(path, bytes);
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".{}-{}.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, bytes)?;
    if remove_old {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            _ => {}
        }
    }
    std::fs::rename(&tmp, path)
}

/// A hold on [`GATE`].
enum Gate {
    Alone(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
}

pub(super) fn err(e: impl std::fmt::Debug) -> String {
    format!("{e:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::prelude::*;
    use plotters::style::FontStyle;
    use plotters::style::text_anchor::{HPos, Pos, VPos};

    #[test]
    fn a_chart_takes_the_smallest_kept_buffer_that_fits_else_the_largest() {
        let pool = Pool::new();
        let take = |len| file_buffer(&pool, len);
        assert_eq!(take(10).capacity(), 0, "none kept: a new one");
        for cap in [100, 400, 200] {
            let mut b = Vec::with_capacity(cap);
            b.push(7u8);
            pool.give_back(b);
        }
        let fit = take(150);
        assert!((200..400).contains(&fit.capacity()) && fit.is_empty());
        let largest = take(1000);
        assert!(largest.capacity() >= 400);
        let last = take(1);
        assert!((100..200).contains(&last.capacity()));
        assert_eq!(take(1).capacity(), 0, "each buffer is handed out once");
    }

    /// A chart drawn again over an older one replaces it whole, and leaves no temporary file.
    #[test]
    fn a_chart_drawn_again_replaces_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.png");
        for (w, h) in [(120, 80), (60, 40)] {
            draw_png(&path, (w, h), |root| root.fill(&RED).map_err(err)).unwrap();
            let decoder = png::Decoder::new(std::fs::File::open(&path).unwrap());
            let info = decoder.read_info().unwrap().info().clone();
            assert_eq!((info.width, info.height), (w, h));
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["chart.png"]);
    }

    #[test]
    fn a_live_redraw_writes_nothing_once_the_run_is_over_and_writers_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.png");
        let over = Arc::new(AtomicBool::new(false));
        live(over.clone(), || write_beside(&path, b"live", true)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"live");
        over.store(true, Ordering::Relaxed);
        let late = live(over.clone(), || write_beside(&path, b"stale", true));
        assert_eq!(late.unwrap_err().kind(), std::io::ErrorKind::Interrupted);
        // A chart drawn then is not written.
        let chart = dir.path().join("late.png");
        let drawn = live(over.clone(), || draw_png(&chart, (40, 30), |_| Ok(())));
        assert_eq!(drawn.unwrap_err(), RUN_OVER);
        assert!(!chart.exists());
        // Outside a live redraw (the final report) the flag does not apply.
        write_beside(&path, b"final", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"final");
        // Threads writing the same file at once each use a file of their own beside it.
        std::thread::scope(|s| {
            for i in 0..4u8 {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..50 {
                        write_beside(path, &[i; 3000], true).unwrap();
                    }
                });
            }
        });
        let last = std::fs::read(&path).unwrap();
        assert!(last.len() == 3000 && last.iter().all(|b| *b == last[0]));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["chart.png"], "no file left beside it");
    }

    /// Draws random lines (one pixel wide and wider, steep and flat, level and upright, partly
    /// off the canvas), paths, rectangles (filled and outlined), polygons and circles, opaque
    /// and see-through, on plotters' own bitmap backend and on [`Canvas`], and compares every
    /// pixel.
    #[test]
    fn shapes_match_plotters_pixel_for_pixel() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: i32| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as i32
        };
        let (w, h) = (301u32, 203u32);
        // Each shape: a kind, four coordinates (from 40 px before the canvas to 40 px past
        // it), a colour with its alpha, and a width.
        let shapes: Vec<(i32, [i32; 4], RGBAColor, u32)> = (0..600)
            .map(|i| {
                let mut at = || next(w as i32 + 80) - 40;
                let mut points = [at(), at(), at(), at()];
                match i % 5 {
                    // Level and upright lines, and short ones.
                    1 => points[3] = points[1],
                    2 => points[2] = points[0],
                    3 => (points[2], points[3]) = (points[0] + 3, points[1] - 1),
                    _ => {}
                }
                let alpha = [1.0, 0.5, 0.3, 0.999, 0.05, 0.0][next(6) as usize];
                let c = RGBColor(next(256) as u8, next(256) as u8, next(256) as u8);
                (next(6), points, c.mix(alpha), 1 + next(3) as u32)
            })
            .collect();
        fn draw<DB: DrawingBackend>(
            area: &DrawingArea<DB, Shift>,
            shapes: &[(i32, [i32; 4], RGBAColor, u32)],
        ) -> Result<(), String> {
            for &(kind, [x0, y0, x1, y1], color, width) in shapes {
                let style = Color::stroke_width(&color, width);
                match kind {
                    0 => area.draw(&PathElement::new(vec![(x0, y0), (x1, y1)], style)),
                    1 => area.draw(&PathElement::new(
                        vec![(x0, y0), (x1, y1), (x1 + 17, y0), (x0 - 5, y1 + 9)],
                        style,
                    )),
                    2 => area.draw(&Rectangle::new([(x0, y0), (x1, y1)], style.filled())),
                    3 => area.draw(&Rectangle::new([(x0, y0), (x1, y1)], style)),
                    4 => area.draw(&Polygon::new(
                        vec![(x0, y0), (x1, y1), (x0 + 30, y1 - 20)],
                        Color::filled(&color),
                    )),
                    _ => area.draw(&Circle::new((x0, y0), (x1.abs() % 30) as u32, style)),
                }
                .map_err(err)?;
            }
            Ok(())
        }
        let len = w as usize * h as usize * 3;
        let mut plain = vec![255u8; len];
        {
            let root = BitMapBackend::with_buffer(&mut plain, (w, h)).into_drawing_area();
            draw(&root, &shapes).unwrap();
            root.present().unwrap();
        }
        let mut ours = vec![255u8; len];
        paint(&mut ours, (w, h), |root| draw(&root, &shapes)).unwrap();
        let touched = plain.iter().filter(|&&b| b != 255).count();
        assert!(
            touched > len / 4,
            "the shapes drew {touched} bytes of {len}"
        );
        let differ = plain.iter().zip(&ours).filter(|(a, b)| a != b).count();
        assert_eq!(differ, 0, "{differ} bytes differ");
    }

    /// Draws the same labels with plotters' own text path and with the cache, twice (the
    /// second time from cached glyphs), and compares every pixel.
    #[test]
    fn cached_text_matches_plotters_pixel_for_pixel() {
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT_BYTES);
        fn labels<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>) -> Result<(), String> {
            for (i, (text, px)) in [
                ("validation loss 0.1371", 15.0),
                ("AVAWTo: kerning, ÿ and …", 22.0),
                ("lr=0.001 bs=128", 15.5),
            ]
            .into_iter()
            .enumerate()
            {
                let y = 20 + 50 * i as i32;
                let style = (FAMILY, px)
                    .into_text_style(area)
                    .color(&RGBColor(200, 40, 30));
                area.draw_text(text, &style, (10, y)).map_err(err)?;
                let centred = style.pos(Pos::new(HPos::Center, VPos::Center));
                area.draw_text(text, &centred, (300, y)).map_err(err)?;
            }
            let rotated = (FAMILY, 15)
                .into_font()
                .transform(FontTransform::Rotate270)
                .into_text_style(area);
            area.draw_text("loss", &rotated, (400, 200)).map_err(err)?;
            // Half cut off by the left and top edges, and half transparent: the glyphs'
            // pixels one by one, not whole.
            let style = (FAMILY, 18).into_text_style(area);
            area.draw_text("edge 0.25", &style, (-20, 150))
                .map_err(err)?;
            area.draw_text("top 1e-3", &style, (150, -8)).map_err(err)?;
            let half = RGBColor(20, 90, 160).mix(0.5);
            let faint = style.color(&half);
            area.draw_text("faint 0.75", &faint, (150, 220))
                .map_err(err)
        }
        // Two widths: the glyphs' offsets are kept per width of canvas.
        for size in [(420, 260), (380, 240)] {
            let len = size.0 as usize * size.1 as usize * 3;
            let mut plain = vec![255u8; len];
            {
                let root = BitMapBackend::with_buffer(&mut plain, size).into_drawing_area();
                labels(&root).unwrap();
                root.present().unwrap();
            }
            assert!(plain.iter().any(|&b| b != 255), "the labels drew nothing");
            for round in 0..2 {
                let mut cached = vec![255u8; len];
                paint(&mut cached, size, |root| labels(&root)).unwrap();
                let differ = plain.iter().zip(&cached).filter(|(a, b)| a != b).count();
                assert_eq!(differ, 0, "{size:?}, round {round}: {differ} bytes differ");
            }
        }
    }
}
