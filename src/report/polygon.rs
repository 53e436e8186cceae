//! plotters' scanline polygon fill, pixel for pixel, without its per-scanline costs. plotters
//! draws every line wider than one pixel (our curves) as a polygon this way; its version
//! allocates a vector on every scanline, clones edges, and sorts them by a position it
//! recomputes (with a division) on every comparison, and calls libm's `floor` and `ceil`.
//! That was about a tenth of a report's CPU time. Same calls on the backend, in the same
//! order, with the same arguments: the charts come out byte-identical.

use plotters_backend::{BackendCoord, BackendStyle, DrawingBackend, DrawingErrorKind};

use super::raster::{ceil, floor};

/// An edge crossing the scanlines; as plotters' `Edge`, with its position cached.
#[derive(Debug, Clone, Copy)]
struct Edge {
    epoch: u32,
    total_epoch: u32,
    slave_begin: i32,
    slave_end: i32,
    /// [`Edge::slave_pos`] at `epoch`.
    pos: f64,
}

impl Edge {
    fn horizontal_sweep(mut from: BackendCoord, mut to: BackendCoord) -> Option<Edge> {
        if from.0 == to.0 {
            return None;
        }
        if from.0 > to.0 {
            std::mem::swap(&mut from, &mut to);
        }
        let mut edge = Edge {
            epoch: 0,
            total_epoch: (to.0 - from.0) as u32,
            slave_begin: from.1,
            slave_end: to.1,
            pos: 0.0,
        };
        edge.pos = edge.slave_pos();
        Some(edge)
    }

    fn vertical_sweep(from: BackendCoord, to: BackendCoord) -> Option<Edge> {
        Edge::horizontal_sweep((from.1, from.0), (to.1, to.0))
    }

    fn master_pos(&self) -> i32 {
        (self.total_epoch - self.epoch) as i32
    }

    fn inc_epoch(&mut self) {
        self.epoch += 1;
        self.pos = self.slave_pos();
    }

    fn slave_pos(&self) -> f64 {
        f64::from(self.slave_begin)
            + (i64::from(self.slave_end - self.slave_begin) * i64::from(self.epoch)) as f64
                / f64::from(self.total_epoch)
    }
}

/// plotters-backend 0.3.7's `rasterizer::fill_polygon`, the same pixels.
pub(super) fn fill_polygon<DB: DrawingBackend, S: BackendStyle>(
    back: &mut DB,
    vertices: &[BackendCoord],
    style: &S,
) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
    let Some((x_span, y_span)) =
        vertices
            .iter()
            .fold(None, |res: Option<((i32, i32), (i32, i32))>, &(x, y)| {
                Some(
                    res.map_or(((x, x), (y, y)), |((min_x, max_x), (min_y, max_y))| {
                        ((min_x.min(x), max_x.max(x)), (min_y.min(y), max_y.max(y)))
                    }),
                )
            })
    else {
        return Ok(());
    };
    // All the points on one vertical or horizontal line.
    if x_span.0 == x_span.1 || y_span.0 == y_span.1 {
        return back.draw_line((x_span.0, y_span.0), (x_span.1, y_span.1), style);
    }
    let horizontal_sweep = x_span.1 - x_span.0 > y_span.1 - y_span.0;
    let mut edges: Vec<(BackendCoord, BackendCoord)> = vertices
        .iter()
        .zip(vertices.iter().skip(1))
        .map(|(a, b)| (*a, *b))
        .collect();
    edges.push((vertices[vertices.len() - 1], vertices[0]));
    edges.sort_by_key(|((x1, y1), (x2, y2))| {
        if horizontal_sweep {
            *x1.min(x2)
        } else {
            *y1.min(y2)
        }
    });
    for edge in &mut edges {
        if horizontal_sweep {
            if (edge.0).0 > (edge.1).0 {
                std::mem::swap(&mut edge.0, &mut edge.1);
            }
        } else if (edge.0).1 > (edge.1).1 {
            std::mem::swap(&mut edge.0, &mut edge.1);
        }
    }
    let (low, high) = if horizontal_sweep { x_span } else { y_span };
    let color = style.color();
    let mut idx = 0;
    let mut active: Vec<Edge> = Vec::new();
    for sweep_line in low..=high {
        active.retain_mut(|e| {
            let alive = e.master_pos() > 0;
            if alive {
                e.inc_epoch();
            }
            alive
        });
        while let Some(&(from, to)) = edges.get(idx) {
            let line = if horizontal_sweep { from.0 } else { from.1 };
            if line > sweep_line {
                break;
            }
            let edge = if horizontal_sweep {
                Edge::horizontal_sweep(from, to)
            } else {
                Edge::vertical_sweep(from, to)
            };
            active.extend(edge);
            idx += 1;
        }
        // Stable, with the comparisons plotters makes: the same order, ties included.
        active.sort_by(|a, b| {
            a.pos
                .partial_cmp(&b.pos)
                .expect("edge positions are finite")
        });
        let (mut first, mut second): (Option<Edge>, Option<Edge>) = (None, None);
        for &edge in &active {
            if first.is_none() {
                first = Some(edge);
            } else if second.is_none() {
                second = Some(edge);
            }
            let (Some(a), Some(b)) = (first, second) else {
                continue;
            };
            if a.master_pos() == 0 && b.master_pos() != 0 {
                (first, second) = (Some(b), None);
                continue;
            }
            if a.master_pos() != 0 && b.master_pos() == 0 {
                (first, second) = (Some(a), None);
                continue;
            }
            let (from, to) = (a.pos, b.pos);
            if a.master_pos() == 0 && b.master_pos() == 0 && to - from > 1.0 {
                (first, second) = (None, None);
                continue;
            }
            if horizontal_sweep {
                back.draw_line(
                    (sweep_line, ceil(from) as i32),
                    (sweep_line, floor(to) as i32),
                    &color,
                )?;
                back.draw_pixel(
                    (sweep_line, floor(from) as i32),
                    color.mix(ceil(from) - from),
                )?;
                back.draw_pixel((sweep_line, ceil(to) as i32), color.mix(to - floor(to)))?;
            } else {
                back.draw_line(
                    (ceil(from) as i32, sweep_line),
                    (floor(to) as i32, sweep_line),
                    &color,
                )?;
                back.draw_pixel(
                    (floor(from) as i32, sweep_line),
                    color.mix(ceil(from) - from),
                )?;
                // plotters' sign, kept: a negative alpha draws nothing.
                back.draw_pixel((ceil(to) as i32, sweep_line), color.mix(floor(to) - to))?;
            }
            (first, second) = (None, None);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::prelude::*;

    /// Fills polygons of every kind of edge (steep, shallow, horizontal, vertical, crossing)
    /// with plotters' rasterizer and with ours, and compares the pixels.
    #[test]
    fn fills_the_same_pixels_as_plotters() {
        let size = (200u32, 150u32);
        let shapes: Vec<Vec<BackendCoord>> = vec![
            vec![(10, 10), (190, 40), (120, 140), (15, 100)],
            vec![(50, 5), (60, 145), (70, 5), (80, 145)],
            vec![(5, 75), (195, 76), (195, 80), (5, 79)],
            vec![(100, 10), (101, 140), (103, 140), (102, 10)],
            vec![(20, 20), (180, 130), (20, 130), (180, 20)],
        ];
        for (i, shape) in shapes.iter().enumerate() {
            for color in [
                RGBColor(200, 40, 30).to_backend_color(),
                BLUE.mix(0.6).to_backend_color(),
            ] {
                let mut theirs = vec![255u8; 200 * 150 * 3];
                let mut ours = vec![255u8; 200 * 150 * 3];
                {
                    let mut back = BitMapBackend::with_buffer(&mut theirs, size);
                    plotters_backend::rasterizer::fill_polygon(&mut back, shape, &color).unwrap();
                }
                {
                    let mut back = BitMapBackend::with_buffer(&mut ours, size);
                    fill_polygon(&mut back, shape, &color).unwrap();
                }
                assert!(theirs.iter().any(|&b| b != 255), "shape {i} drew nothing");
                let differ = theirs.iter().zip(&ours).filter(|(a, b)| a != b).count();
                assert_eq!(differ, 0, "shape {i}: {differ} bytes differ");
            }
        }
        // Thick polylines, as plotters makes them into polygons.
        let path = [
            (5, 140),
            (40, 20),
            (80, 90),
            (120, 60),
            (160, 62),
            (195, 10),
        ];
        for width in [2, 3, 5] {
            let polygon = plotters_backend::rasterizer::polygonize(&path, width);
            let color = BLACK.to_backend_color();
            let mut theirs = vec![255u8; 200 * 150 * 3];
            let mut ours = vec![255u8; 200 * 150 * 3];
            plotters_backend::rasterizer::fill_polygon(
                &mut BitMapBackend::with_buffer(&mut theirs, size),
                &polygon,
                &color,
            )
            .unwrap();
            fill_polygon(
                &mut BitMapBackend::with_buffer(&mut ours, size),
                &polygon,
                &color,
            )
            .unwrap();
            assert_eq!(theirs, ours, "width {width}");
        }
    }

    #[test]
    fn floor_and_ceil_match_the_standard_library() {
        for x in [
            -3.5,
            -3.0,
            -0.25,
            0.0,
            0.25,
            1.0,
            1.5,
            2.999,
            1e9 + 0.5,
            -1e9 - 0.5,
        ] {
            assert_eq!(floor(x), x.floor(), "floor {x}");
            assert_eq!(ceil(x), x.ceil(), "ceil {x}");
        }
    }
}
