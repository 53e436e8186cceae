//! Draws prepared chart data as PNG with plotters, using a bundled font (no system fonts).

use std::path::Path;
use std::sync::Once;

use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use plotters::coord::Shift;
use plotters::coord::combinators::{BindKeyPoints, LogCoord, WithKeyPoints};
use plotters::element::DashedPathElement;

use super::canvas::{self, Canvas, FAMILY, FONT_BYTES, err};
use super::prepare::{ChartData, MAX_STYLES, TrialSeries, first_seen};
use super::summary::{Heatmap, LearningCurve, LearningPoint, Line, Spread, Summary};
use crate::spec::Choice as _;
use crate::store::TrialState;

static FONT: Once = Once::new();

/// Registers the bundled font with plotters, which measures some text itself.
fn register_bundled_font() {
    FONT.call_once(|| {
        // The font is compiled in and known to be valid; a failure would show in every test.
        let _ = register_font(FAMILY, FontStyle::Normal, FONT_BYTES);
    });
}

/// [`canvas::draw_png`] with the bundled font registered.
fn draw_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<Canvas<'_>, Shift>) -> Result<(), String>,
) -> Result<(), String> {
    register_bundled_font();
    canvas::draw_png(path, size, draw)
}

/// Ten colours that stay distinct for colour-blind readers (Tableau 10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn finite(points: &[(usize, f64)]) -> impl Iterator<Item = (f64, f64)> + '_ {
    points
        .iter()
        .filter(|p| p.1.is_finite())
        .map(|&(e, v)| (e as f64, v))
}

/// A y range over every finite value, padded, and whether it can be shown on a log axis.
fn y_range<'a>(series: impl Iterator<Item = &'a [(usize, f64)]>) -> (f64, f64, bool) {
    let values: Vec<f64> = series.flat_map(|s| finite(s).map(|p| p.1)).collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (0.0, 1.0, false);
    }
    if lo > 0.0 && hi / lo > 3.0 {
        (lo / 1.15, hi * 1.15, true)
    } else {
        let pad = ((hi - lo) * 0.05).max(1e-3);
        (lo - pad, hi + pad, false)
    }
}

fn max_epoch(data: &[&TrialSeries]) -> f64 {
    data.iter()
        .flat_map(|t| t.val_loss.iter().chain(&t.train_loss))
        .map(|p| p.0)
        .max()
        .unwrap_or(1)
        .max(2) as f64
}

/// Tick values for a log axis from `lo` to `hi`: 1, 2 and 5 times each power of ten (also 3
/// when the axis spans under two decades; only powers of ten past five decades). plotters'
/// own log ticks start at the first power of ten, so a 0.2-0.9 axis would get no labels.
pub(crate) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let decades = (hi / lo).log10();
    let multiples: &[f64] = if decades < 2.0 {
        &[1.0, 2.0, 3.0, 5.0]
    } else if decades <= 5.0 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let mut ticks = Vec::new();
    for e in (lo.log10().floor() as i32)..=(hi.log10().ceil() as i32) {
        for m in multiples {
            // Rounded so 0.3 prints as 0.3, not 0.30000000000000004.
            let v: f64 = format!("{:.6e}", m * 10f64.powi(e)).parse().unwrap_or(0.0);
            if v >= lo && v <= hi {
                ticks.push(v);
            }
        }
    }
    ticks
}

/// A log axis from `lo` to `hi` with [`log_ticks`].
fn log_axis(lo: f64, hi: f64) -> WithKeyPoints<LogCoord<f64>> {
    (lo..hi).log_scale().with_key_points(log_ticks(lo, hi))
}

/// Epochs are whole numbers: label at most 15 of them, without decimals.
fn x_labels(data: &[&TrialSeries]) -> usize {
    (max_epoch(data) as usize).min(15)
}

fn epoch_label(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round())
    } else {
        String::new()
    }
}

/// Axis values with at most three decimals and no trailing zeros (log axes otherwise print
/// `0.6000000000000001`).
fn value_label(v: &f64) -> String {
    if *v != 0.0 && v.abs() < 0.001 {
        // 0.0003 as 3e-4, not 0.
        let s = format!("{v:.1e}");
        return s.replace(".0e", "e");
    }
    let s = if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Axes shared by every chart: whole-number epochs on x, tidy values on y, no minor grid.
fn draw_mesh<'a, DB, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
    x_labels: usize,
    y_desc: &str,
    font_size: u32,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_labels(x_labels)
        .x_label_formatter(&epoch_label)
        .max_light_lines(0)
        .y_label_formatter(&value_label)
        .x_desc("epoch")
        .y_desc(y_desc)
        .label_style(("sans-serif", font_size))
        .draw()
        .map_err(err)
}

/// Dash patterns (dash, gap) for the line-style hyperparameter; (0, 0) is solid.
const DASHES: [(u32, u32); MAX_STYLES] = [(0, 0), (12, 6), (3, 4), (24, 14)];
const DASH_NAMES: [&str; MAX_STYLES] = ["solid", "dashed", "dotted", "long dashes"];

/// Draws one polyline, solid or dashed.
fn line<'a, DB: DrawingBackend + 'a, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    points: Vec<(f64, f64)>,
    dash: (u32, u32),
    style: ShapeStyle,
) -> Result<(), String>
where
    CT: CoordTranslate<From = (f64, f64)>,
{
    if dash.0 == 0 {
        chart
            .draw_series(LineSeries::new(points, style))
            .map_err(err)?;
    } else {
        chart
            .draw_series(DashedLineSeries::new(points, dash.0, dash.1, style))
            .map_err(err)?;
    }
    Ok(())
}

/// One row of a legend drawn beside a chart (never over the data).
enum Key {
    Heading(String),
    Line {
        color: RGBColor,
        dash: (u32, u32),
        width: u32,
        text: String,
    },
    Cross(RGBColor, String),
    Triangle(String),
    Dot(RGBColor, String),
    Note(String),
}

impl Key {
    /// The key's label.
    fn text(&self) -> &str {
        match self {
            Key::Line { text, .. } => text,
            Key::Cross(_, s)
            | Key::Triangle(s)
            | Key::Dot(_, s)
            | Key::Heading(s)
            | Key::Note(s) => s,
        }
    }
}

/// `text` in lines of at most `width` characters, broken between words, and at most `lines`
/// of them (the last one cut with an ellipsis if the text goes on).
fn wrap(text: &str, width: usize, lines: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let len = current.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    out.push(current);
    if out.len() > lines {
        let rest = out.split_off(lines - 1).join(" ");
        let keep: String = rest.chars().take(width.saturating_sub(1)).collect();
        out.push(format!("{keep}…"));
    }
    out
}

/// Draws `keys` top to bottom in `area`, cutting text that would not fit.
fn legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, keys: &[Key]) -> Result<(), String> {
    let (w, _) = area.dim_in_pixel();
    let chars = (w.saturating_sub(50) / 8) as usize;
    let fit = |s: &str| {
        if s.chars().count() > chars {
            let cut: String = s.chars().take(chars.saturating_sub(1)).collect();
            format!("{cut}…")
        } else {
            s.to_string()
        }
    };
    let text = ("sans-serif", 15).into_text_style(area);
    let bold = ("sans-serif", 16)
        .into_font()
        .style(FontStyle::Bold)
        .into_text_style(area);
    let mut y = 10;
    for key in keys {
        match key {
            Key::Heading(s) => {
                y += 6;
                area.draw_text(&fit(s), &bold, (8, y)).map_err(err)?;
            }
            Key::Line {
                color,
                dash,
                width,
                text: s,
            } => {
                let style = color.stroke_width(*width);
                let pts = vec![(6, y + 8), (46, y + 8)];
                if dash.0 == 0 {
                    area.draw(&PathElement::new(pts, style)).map_err(err)?;
                } else {
                    area.draw(&DashedPathElement::new(pts, dash.0, dash.1, style))
                        .map_err(err)?;
                }
                area.draw_text(&fit(s), &text, (52, y)).map_err(err)?;
            }
            Key::Cross(color, s) => {
                area.draw(&Cross::new((27, y + 8), 6, color.stroke_width(2)))
                    .map_err(err)?;
                area.draw_text(&fit(s), &text, (52, y)).map_err(err)?;
            }
            Key::Triangle(s) => {
                area.draw(&TriangleMarker::new((27, y + 8), 7, RED.filled()))
                    .map_err(err)?;
                area.draw_text(&fit(s), &text, (52, y)).map_err(err)?;
            }
            Key::Dot(color, s) => {
                area.draw(&Circle::new((27, y + 8), 5, color.filled()))
                    .map_err(err)?;
                area.draw_text(&fit(s), &text, (52, y)).map_err(err)?;
            }
            Key::Note(s) => {
                area.draw_text(&fit(s), &text, (8, y)).map_err(err)?;
            }
        }
        y += 22;
    }
    Ok(())
}

/// Draws `keys` left to right on one row at height `y` (above a chart, never over it).
fn legend_row<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    keys: &[Key],
    y: i32,
) -> Result<(), String> {
    let text = ("sans-serif", 15).into_text_style(area);
    let right = i32::try_from(area.dim_in_pixel().0).unwrap_or(i32::MAX) - 10;
    let (mut x, mut y) = (20, y);
    for key in keys {
        // A key that would run past the right edge starts a second row.
        if x > 20 && x + 42 + 7 * key.text().chars().count() as i32 > right {
            (x, y) = (20, y + 22);
        }
        let (label, width) = match key {
            Key::Line {
                color,
                dash,
                width,
                text: s,
            } => {
                let style = color.stroke_width(*width);
                let pts = vec![(x, y + 8), (x + 34, y + 8)];
                if dash.0 == 0 {
                    area.draw(&PathElement::new(pts, style)).map_err(err)?;
                } else {
                    area.draw(&DashedPathElement::new(pts, dash.0, dash.1, style))
                        .map_err(err)?;
                }
                (s, 42)
            }
            Key::Cross(color, s) => {
                area.draw(&Cross::new((x + 12, y + 8), 6, color.stroke_width(2)))
                    .map_err(err)?;
                (s, 28)
            }
            Key::Triangle(s) => {
                area.draw(&TriangleMarker::new((x + 12, y + 8), 7, RED.filled()))
                    .map_err(err)?;
                (s, 28)
            }
            Key::Dot(color, s) => {
                area.draw(&Circle::new((x + 12, y + 8), 5, color.filled()))
                    .map_err(err)?;
                (s, 28)
            }
            Key::Heading(s) | Key::Note(s) => (s, 0),
        };
        area.draw_text(label, &text, (x + width, y)).map_err(err)?;
        x += width + 7 * label.chars().count() as i32 + 20;
    }
    Ok(())
}

/// Ordinals as `#1 #4 #7` (at most eight, then `…`).
fn ordinals(list: &[usize]) -> String {
    let mut s: Vec<String> = list.iter().take(8).map(|o| format!("#{o}")).collect();
    if list.len() > 8 {
        s.push("…".into());
    }
    s.join(" ")
}

/// The legend rows shared by `curves.png` and `panels.png`: markers and the best trial.
fn marker_keys(data: &ChartData, keys: &mut Vec<Key>) {
    let of = |state| -> Vec<usize> {
        data.trials
            .iter()
            .filter(|t| t.state == state)
            .map(|t| t.ordinal)
            .collect()
    };
    keys.push(Key::Heading("markers".into()));
    if let Some(b) = data.best_trial() {
        keys.push(Key::Line {
            color: BLACK,
            dash: (0, 0),
            width: 4,
            text: format!("thick: best trial #{b}"),
        });
    }
    let stopped = of(TrialState::Stopped);
    if !stopped.is_empty() {
        keys.push(Key::Cross(
            BLACK,
            format!("stopped early ({})", stopped.len()),
        ));
    }
    let diverged = of(TrialState::Diverged);
    if !diverged.is_empty() {
        keys.push(Key::Triangle(format!(
            "diverged, NaN/inf ({})",
            diverged.len()
        )));
        keys.push(Key::Note(format!("  {}", ordinals(&diverged))));
        keys.push(Key::Note("  (no finite value: at the top)".into()));
    }
    let failed = of(TrialState::Failed);
    if !failed.is_empty() {
        keys.push(Key::Note(format!("failed: {}", ordinals(&failed))));
    }
    let running = of(TrialState::Running);
    if !running.is_empty() {
        keys.push(Key::Note(format!("still running: {}", running.len())));
    }
}

/// Draws validation-loss curves: colour and dash chosen per trial, stop and divergence
/// markers at each curve's end, a trial without any finite value pinned at the top edge.
fn draw_val_curves<'a, DB: DrawingBackend + 'a, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    trials: &[&TrialSeries],
    best: Option<usize>,
    top: f64,
    thin: u32,
    look: impl Fn(&TrialSeries) -> (RGBColor, (u32, u32)),
) -> Result<(), String>
where
    CT: CoordTranslate<From = (f64, f64)>,
{
    let mut never_finite: Vec<(usize, Vec<usize>)> = Vec::new();
    // The best trial last, so it is drawn over the others.
    let mut order: Vec<&&TrialSeries> = trials.iter().collect();
    order.sort_by_key(|t| Some(t.ordinal) == best);
    for t in order {
        let (color, dash) = look(t);
        let is_best = Some(t.ordinal) == best;
        let style = if is_best {
            color.stroke_width(4)
        } else {
            color.mix(0.7).stroke_width(thin)
        };
        let points: Vec<(f64, f64)> = finite(&t.val_loss).collect();
        let end = points.last().copied();
        line(chart, points, dash, style)?;
        match (&t.stop, end) {
            (Some(s), Some(p)) if s.diverged => {
                chart
                    .draw_series(std::iter::once(TriangleMarker::new(p, 8, RED.filled())))
                    .map_err(err)?;
            }
            (Some(_), Some(p)) => {
                chart
                    .draw_series(std::iter::once(Cross::new(p, 6, BLACK.stroke_width(2))))
                    .map_err(err)?;
            }
            (_, None) if t.state == TrialState::Diverged => {
                let epoch = t.stop.as_ref().map_or(1, |s| s.epoch);
                match never_finite.iter_mut().find(|(e, _)| *e == epoch) {
                    Some((_, list)) => list.push(t.ordinal),
                    None => never_finite.push((epoch, vec![t.ordinal])),
                }
            }
            _ => {}
        }
    }
    // Trials without a single finite value: a red triangle on the top edge at the epoch they
    // diverged, named, so they read as diverged rather than missing.
    for (epoch, list) in never_finite {
        let text = format!(
            "diverged at epoch {epoch}, no finite loss: {}",
            ordinals(&list)
        );
        let style = ("sans-serif", 14)
            .into_text_style(chart.plotting_area())
            .color(&RED);
        let mark = EmptyElement::at((epoch as f64, top))
            + TriangleMarker::new((0, 10), 8, RED.filled())
            + Text::new(text, (12, 3), style);
        chart.draw_series(std::iter::once(mark)).map_err(err)?;
    }
    Ok(())
}

/// Builds a chart with an epoch x axis and a linear or log y axis, then hands it to `draw`.
macro_rules! epoch_chart {
    ($area:expr, $caption:expr, $caption_size:expr, $trials:expr, $y_desc:expr, $font:expr,
     |$chart:ident, $top:ident| $body:block) => {{
        let trials: &[&TrialSeries] = $trials;
        let (lo, hi, log) = y_range(trials.iter().map(|t| t.val_loss.as_slice()));
        let mut builder = ChartBuilder::on($area);
        builder
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70);
        if !$caption.is_empty() {
            builder.caption($caption, ("sans-serif", $caption_size));
        }
        let x = 1f64..max_epoch(trials);
        let $top = hi;
        if log {
            let mut $chart = builder
                .build_cartesian_2d(x, log_axis(lo, hi))
                .map_err(err)?;
            draw_mesh(
                &mut $chart,
                x_labels(trials),
                &format!("{} (log)", $y_desc),
                $font,
            )?;
            $body
        } else {
            let mut $chart = builder.build_cartesian_2d(x, lo..hi).map_err(err)?;
            draw_mesh(&mut $chart, x_labels(trials), $y_desc, $font)?;
            $body
        }
    }};
}

/// `curves.png`'s size in pixels, the largest summary chart's.
pub(super) const CURVES_SIZE: (u32, u32) = (1440, 800);

/// `curves.png`: every trial's validation loss; colour by one hyperparameter, dash by a
/// second, the best trial thick, ends marked; the legend sits beside the plot.
pub fn curves(data: &ChartData, path: &Path) -> Result<(), String> {
    draw_png(path, CURVES_SIZE, |root| {
        let (plot, side) = root.split_horizontally(1100);
        let all: Vec<&TrialSeries> = data.trials.iter().collect();
        let best = data.best_trial();
        let thin = if data.trials.len() > 30 { 1 } else { 2 };
        let color = |t: &TrialSeries| {
            let i = data.groups.iter().position(|g| *g == t.group).unwrap_or(0);
            PALETTE[i % PALETTE.len()]
        };
        let dash = |t: &TrialSeries| {
            data.styles
                .iter()
                .position(|s| *s == t.style)
                .map_or(DASHES[0], |i| DASHES[i % DASHES.len()])
        };
        let title = format!(
            "{}: validation loss by epoch ({} trials)",
            data.sweep,
            all.len()
        );
        epoch_chart!(
            &plot,
            title,
            24,
            &all,
            "validation loss",
            16,
            |chart, top| {
                draw_val_curves(&mut chart, &all, best, top, thin, |t| (color(t), dash(t)))?;
            }
        );
        let mut keys = vec![Key::Heading(format!("colour: {}", data.color_by))];
        for (i, g) in data.groups.iter().enumerate().take(16) {
            keys.push(Key::Line {
                color: PALETTE[i % PALETTE.len()],
                dash: (0, 0),
                width: 3,
                text: g.clone(),
            });
        }
        if data.groups.len() > 16 {
            keys.push(Key::Note(format!("… and {} more", data.groups.len() - 16)));
        }
        if let Some(by) = data.style_by {
            keys.push(Key::Heading(format!("line: {by}")));
            for (i, s) in data.styles.iter().enumerate() {
                keys.push(Key::Line {
                    color: BLACK,
                    dash: DASHES[i % DASHES.len()],
                    width: 2,
                    text: format!("{s} ({})", DASH_NAMES[i % DASH_NAMES.len()]),
                });
            }
        }
        marker_keys(data, &mut keys);
        legend(&side, &keys)?;
        Ok(())
    })
}

/// `panels.png`: small multiples, one panel per value of the colouring hyperparameter, on
/// one shared y scale; within a panel, colour by the line-style hyperparameter.
pub fn panels(data: &ChartData, path: &Path) -> Result<(), String> {
    const MAX_PANELS: usize = 16;
    let n = data.groups.len().clamp(1, MAX_PANELS);
    let cols = match n {
        1 => 1,
        2 | 4 => 2,
        3 | 5 | 6 | 9 => 3,
        _ => 4,
    };
    let rows = n.div_ceil(cols);
    let (w, h) = (cols as u32 * 430 + 300, rows as u32 * 320 + 60);
    draw_png(path, (w, h), |root| {
        let (head, body) = root.split_vertically(60);
        head.draw_text(
            &format!(
                "{}: validation loss, one panel per {} (same y scale)",
                data.sweep, data.color_by
            ),
            &("sans-serif", 24).into_text_style(&head),
            (20, 16),
        )
        .map_err(err)?;
        let (grid, side) = body.split_horizontally(cols as u32 * 430);
        let all: Vec<&TrialSeries> = data.trials.iter().collect();
        let (lo, hi, log) = y_range(all.iter().map(|t| t.val_loss.as_slice()));
        let best = data.best_trial();
        let color = |t: &TrialSeries| {
            let i = data.styles.iter().position(|s| *s == t.style).unwrap_or(0);
            PALETTE[i % PALETTE.len()]
        };
        for (area, group) in grid.split_evenly((rows, cols)).iter().zip(&data.groups) {
            let here: Vec<&TrialSeries> =
                all.iter().copied().filter(|t| &t.group == group).collect();
            let mut builder = ChartBuilder::on(area);
            builder
                .caption(format!("{} = {group}", data.color_by), ("sans-serif", 17))
                .margin(8)
                .x_label_area_size(32)
                .y_label_area_size(56);
            let x = 1f64..max_epoch(&all);
            let thin = if here.len() > 12 { 1 } else { 2 };
            if log {
                let mut chart = builder
                    .build_cartesian_2d(x, log_axis(lo, hi))
                    .map_err(err)?;
                draw_mesh(&mut chart, x_labels(&all).min(8), "val loss (log)", 12)?;
                draw_val_curves(&mut chart, &here, best, hi, thin, |t| (color(t), DASHES[0]))?;
            } else {
                let mut chart = builder.build_cartesian_2d(x, lo..hi).map_err(err)?;
                draw_mesh(&mut chart, x_labels(&all).min(8), "val loss", 12)?;
                draw_val_curves(&mut chart, &here, best, hi, thin, |t| (color(t), DASHES[0]))?;
            }
        }
        let mut keys = Vec::new();
        if let Some(by) = data.style_by {
            keys.push(Key::Heading(format!("colour: {by}")));
            for (i, s) in data.styles.iter().enumerate() {
                keys.push(Key::Line {
                    color: PALETTE[i % PALETTE.len()],
                    dash: (0, 0),
                    width: 3,
                    text: s.clone(),
                });
            }
        }
        if data.groups.len() > MAX_PANELS {
            keys.push(Key::Note(format!(
                "first {MAX_PANELS} of {} values",
                data.groups.len()
            )));
        }
        marker_keys(data, &mut keys);
        legend(&side, &keys)?;
        Ok(())
    })
}

/// `summary.png`: best metric against one hyperparameter, a line per value of others;
/// points where every trial diverged are crosses on the top edge.
pub fn summary(sweep: &str, s: &Summary, path: &Path) -> Result<(), String> {
    draw_png(path, (1300, 720), |root| {
        let (plot, side) = root.split_horizontally(960);
        let xs: Vec<f64> = s
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .collect();
        let (x_lo, x_hi) = xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
                (l.min(x), h.max(x))
            });
        let (x_lo, x_hi) = if x_lo < x_hi {
            (x_lo, x_hi)
        } else {
            (x_lo - 1.0, x_lo + 1.0)
        };
        let ys: Vec<(usize, f64)> = s
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| (0, p.1)))
            .collect();
        let (lo, hi, log_y) = y_range(std::iter::once(ys.as_slice()));
        let metric = s.metric.name();
        let caption = format!(
            "{sweep}: best {metric} against {}{}",
            s.x_key,
            if s.log_x { " (log axis)" } else { "" }
        );
        let y_desc = format!(
            "best {metric} ({} is better){}",
            if s.metric.minimize() {
                "lower"
            } else {
                "higher"
            },
            if log_y { ", log" } else { "" }
        );
        let x_desc = s.x_key.to_string();
        // Colour by the first line key's value, dash by the second's.
        let distinct = |i: usize| {
            first_seen(
                s.lines
                    .iter()
                    .filter_map(|l| l.parts.get(i).map(String::as_str)),
            )
        };
        let (firsts, seconds) = (distinct(0), distinct(1));
        let look = |l: &Line| {
            let at = |values: &[&str], i: usize| {
                l.parts
                    .get(i)
                    .and_then(|p| values.iter().position(|v| v == p))
                    .unwrap_or(0)
            };
            (
                PALETTE[at(&firsts, 0) % PALETTE.len()],
                DASHES[at(&seconds, 1) % DASHES.len()],
            )
        };
        // Label the x axis at the values tried (and at powers of ten), nowhere else.
        let x_label = |x: &f64| {
            let tried = xs
                .iter()
                .any(|v| ((v - x) / v.abs().max(1e-300)).abs() < 1e-6);
            let decade = s.log_x && (x.log10() - x.log10().round()).abs() < 1e-9;
            if tried || decade {
                value_label(x)
            } else {
                String::new()
            }
        };
        macro_rules! draw_lines {
            ($chart:ident) => {{
                $chart
                    .configure_mesh()
                    .max_light_lines(0)
                    .x_desc(x_desc.as_str())
                    .y_desc(y_desc.as_str())
                    .x_label_formatter(&x_label)
                    .y_label_formatter(&value_label)
                    .label_style(("sans-serif", 16))
                    .draw()
                    .map_err(err)?;
                for l in &s.lines {
                    let (color, dash) = look(l);
                    let pts: Vec<(f64, f64)> = l
                        .points
                        .iter()
                        .copied()
                        .filter(|p| p.1.is_finite())
                        .collect();
                    line(&mut $chart, pts.clone(), dash, color.stroke_width(2))?;
                    $chart
                        .draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))
                        .map_err(err)?;
                    $chart
                        .draw_series(
                            l.points
                                .iter()
                                .filter(|p| !p.1.is_finite())
                                .map(|p| Cross::new((p.0, hi), 7, color.stroke_width(3))),
                        )
                        .map_err(err)?;
                }
            }};
        }
        let mut builder = ChartBuilder::on(&plot);
        builder
            .caption(caption, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(80);
        let xr = if s.log_x {
            (x_lo / 1.3, x_hi * 1.3)
        } else {
            let pad = (x_hi - x_lo) * 0.05;
            (x_lo - pad, x_hi + pad)
        };
        // Ticks at the values tried (and at powers of ten on a log axis).
        let mut ticks: Vec<f64> = xs.clone();
        if s.log_x {
            ticks.extend(
                log_ticks(xr.0, xr.1)
                    .into_iter()
                    .filter(|t| (t.log10() - t.log10().round()).abs() < 1e-9),
            );
        }
        ticks.sort_by(f64::total_cmp);
        ticks.dedup();
        let x_log = || (xr.0..xr.1).log_scale().with_key_points(ticks.clone());
        let x_lin = || xr.0..xr.1;
        match (s.log_x, log_y) {
            (true, true) => {
                let mut c = builder
                    .build_cartesian_2d(x_log(), log_axis(lo, hi))
                    .map_err(err)?;
                draw_lines!(c);
            }
            (true, false) => {
                let mut c = builder.build_cartesian_2d(x_log(), lo..hi).map_err(err)?;
                draw_lines!(c);
            }
            (false, true) => {
                let mut c = builder
                    .build_cartesian_2d(x_lin(), log_axis(lo, hi))
                    .map_err(err)?;
                draw_lines!(c);
            }
            (false, false) => {
                let mut c = builder.build_cartesian_2d(x_lin(), lo..hi).map_err(err)?;
                draw_lines!(c);
            }
        }
        let mut keys = Vec::new();
        match s.line_keys.first() {
            Some(k) => {
                keys.push(Key::Heading(format!("colour: {k}")));
                for (i, v) in firsts.iter().enumerate().take(16) {
                    keys.push(Key::Dot(PALETTE[i % PALETTE.len()], v.to_string()));
                }
            }
            None => keys.push(Key::Dot(PALETTE[0], "all trials".into())),
        }
        if let Some(k) = s.line_keys.get(1) {
            keys.push(Key::Heading(format!("line: {k}")));
            for (i, v) in seconds.iter().enumerate() {
                keys.push(Key::Line {
                    color: BLACK,
                    dash: DASHES[i % DASHES.len()],
                    width: 2,
                    text: format!("{v} ({})", DASH_NAMES[i % DASH_NAMES.len()]),
                });
            }
        }
        keys.push(Key::Heading("points".into()));
        keys.push(Key::Note("the best trial at each point".into()));
        if s.lines
            .iter()
            .any(|l| l.points.iter().any(|p| !p.1.is_finite()))
        {
            keys.push(Key::Cross(RED, "every trial there diverged".into()));
            keys.push(Key::Note("  (drawn on the top edge)".into()));
        }
        legend(&side, &keys)?;
        Ok(())
    })
}

/// Four significant digits, for cell labels.
fn short(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.digits$}")
}

/// `heatmap.png`: the best metric for each pair of values of two hyperparameters; brighter
/// is better, diverged cells grey and labelled, empty cells blank.
pub fn heatmap(sweep: &str, h: &Heatmap, path: &Path) -> Result<(), String> {
    use plotters::style::colors::colormaps::ViridisRGB;
    let (cw, ch) = (
        (880 / h.xs.len().max(1)).clamp(50, 150) as i32,
        (520 / h.ys.len().max(1)).clamp(30, 90) as i32,
    );
    let (left, top) = (170, 90);
    let w = (left + cw * h.xs.len() as i32 + 60).max(760) as u32;
    let hgt = (top + ch * h.ys.len() as i32 + 70) as u32;
    draw_png(path, (w, hgt), |root| {
        let metric = h.metric.name();
        let title = format!("{sweep}: best {metric} by {} and {}", h.x_key, h.y_key);
        root.draw_text(&title, &("sans-serif", 22).into_text_style(&root), (20, 14))
            .map_err(err)?;
        let note = format!(
            "each cell: best over its trials; brighter = better ({} {metric} is better)",
            if h.metric.minimize() {
                "lower"
            } else {
                "higher"
            }
        );
        root.draw_text(&note, &("sans-serif", 15).into_text_style(&root), (20, 48))
            .map_err(err)?;
        let finite: Vec<f64> = h
            .cells
            .iter()
            .flatten()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let label = ("sans-serif", 14).into_text_style(&root);
        for (yi, row) in h.cells.iter().enumerate() {
            let y = top + ch * yi as i32;
            root.draw_text(
                &h.ys[yi],
                &label,
                (left - 10 - 8 * h.ys[yi].len() as i32, y + ch / 2 - 7),
            )
            .map_err(err)?;
            for (xi, cell) in row.iter().enumerate() {
                let x = left + cw * xi as i32;
                let (fill, text, dark) = match cell {
                    None => (WHITE, "–".to_string(), false),
                    Some(v) if !v.is_finite() => {
                        (RGBColor(200, 200, 200), "diverged".into(), false)
                    }
                    Some(v) => {
                        let mut t = if hi > lo { (v - lo) / (hi - lo) } else { 1.0 };
                        if h.metric.minimize() {
                            t = 1.0 - t;
                        }
                        let c: RGBColor = ViridisRGB::get_color(t as f32);
                        (c, short(*v), t < 0.55)
                    }
                };
                root.draw(&Rectangle::new([(x, y), (x + cw, y + ch)], fill.filled()))
                    .map_err(err)?;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cw, y + ch)],
                    WHITE.stroke_width(2),
                ))
                .map_err(err)?;
                let style = ("sans-serif", 14).into_text_style(&root).color(if dark {
                    &WHITE
                } else {
                    &BLACK
                });
                root.draw_text(
                    &text,
                    &style,
                    (x + cw / 2 - 4 * text.chars().count() as i32, y + ch / 2 - 7),
                )
                .map_err(err)?;
            }
        }
        let bottom = top + ch * h.ys.len() as i32;
        for (xi, v) in h.xs.iter().enumerate() {
            let x = left + cw * xi as i32 + cw / 2 - 4 * v.len() as i32;
            root.draw_text(v, &label, (x, bottom + 8)).map_err(err)?;
        }
        let axis = ("sans-serif", 17).into_text_style(&root);
        root.draw_text(h.x_key, &axis, (left, bottom + 36))
            .map_err(err)?;
        root.draw_text(h.y_key, &axis, (10, top - 26))
            .map_err(err)?;
        Ok(())
    })
}

/// `learning_curve.png`: loss against the share of the training split, validation with its
/// spread over seeds, and training loss at the same epochs.
pub fn learning_curve(sweep: &str, lc: &LearningCurve, path: &Path) -> Result<(), String> {
    draw_png(path, (1100, 700), |root| {
        let (plot, foot) = root.split_vertically(640);
        let xs: Vec<f64> = lc.points.iter().map(|p| p.fraction).collect();
        let x_lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let x_hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (x_lo, x_hi) = if x_lo < x_hi {
            (x_lo, x_hi)
        } else {
            (x_lo / 2.0, x_lo * 2.0)
        };
        let ys: Vec<(usize, f64)> = lc
            .points
            .iter()
            .flat_map(|p| [p.val, p.train])
            .flatten()
            .flat_map(|s| [(0, s.min), (0, s.max)])
            .collect();
        let (lo, hi, _) = y_range(std::iter::once(ys.as_slice()));
        let mut chart = ChartBuilder::on(&plot)
            .caption(
                format!("{sweep}: learning curve (loss against training-set share)"),
                ("sans-serif", 22),
            )
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(log_axis(x_lo / 1.3, x_hi * 1.3), lo..hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .max_light_lines(0)
            .x_desc("share of the training split used (log axis)")
            .y_desc("loss")
            .x_label_formatter(&|x| value_label(x))
            .y_label_formatter(&value_label)
            .label_style(("sans-serif", 16))
            .draw()
            .map_err(err)?;
        type Pick = fn(&LearningPoint) -> Option<Spread>;
        let parts: [(&str, Pick, RGBColor); 2] = [
            (
                "validation loss: lowest of each trial (bars: min-max over seeds)",
                |p| p.val,
                PALETTE[1],
            ),
            (
                "training loss at that epoch (mean over its batches)",
                |p| p.train,
                PALETTE[0],
            ),
        ];
        for (name, pick, color) in parts {
            let pts: Vec<(f64, Spread)> = lc
                .points
                .iter()
                .filter_map(|p| pick(p).map(|s| (p.fraction, s)))
                .collect();
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|(x, s)| (*x, s.mean)),
                    color.stroke_width(3),
                ))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
            chart
                .draw_series(pts.iter().map(|(x, s)| {
                    ErrorBar::new_vertical(*x, s.min, s.mean, s.max, color.stroke_width(2), 10)
                }))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(err)?;
        let n: Vec<String> = lc
            .points
            .iter()
            .map(|p| format!("{}: {} trials", value_label(&p.fraction), p.trials))
            .collect();
        let text = if lc.config.is_empty() {
            n.join(", ")
        } else {
            format!(
                "setting: {} (best at the largest share); {}",
                lc.config,
                n.join(", ")
            )
        };
        foot.draw_text(&text, &("sans-serif", 14).into_text_style(&foot), (20, 12))
            .map_err(err)?;
        Ok(())
    })
}

/// `trials/NNN.png`: one trial's training and validation loss, best epoch and stop reason.
/// 820x570: the page shows trial charts about 300 px wide, and a sweep draws one per trial,
/// so pixels cost (a 1000x640 chart took 2.3 ms to draw and encode).
pub fn trial(sweep: &str, t: &TrialSeries, path: &Path) -> Result<(), String> {
    draw_png(path, (820, 570), |root| {
        let (head, body) = root.split_vertically(136);
        let title = format!(
            "{sweep} trial #{}: {} [{}]",
            t.ordinal,
            t.label,
            t.state.as_str()
        );
        head.draw_text(&title, &("sans-serif", 22).into_text_style(&head), (20, 12))
            .map_err(err)?;
        let note = match (&t.stop, t.best) {
            (Some(s), _) => format!(
                "{} at epoch {}: {}",
                if s.diverged { "diverged" } else { "stopped" },
                s.epoch,
                s.reason
            ),
            (None, Some((e, v))) => format!("ran every epoch; best at epoch {e}: {v:.4}"),
            (None, None) => "no finite values recorded".to_string(),
        };
        let note_style = ("sans-serif", 15).into_text_style(&head);
        for (i, line) in wrap(&note, 104, 2).iter().enumerate() {
            head.draw_text(line, &note_style, (20, 42 + 19 * i as i32))
                .map_err(err)?;
        }

        let both = [t.train_loss.as_slice(), t.val_loss.as_slice()];
        let (lo, hi, _) = y_range(both.iter().copied());
        // The second metric on a right-hand axis: accuracy (0-1) or RMSE (target units).
        let (second, second_name) = if t.val_accuracy.is_empty() {
            (&t.val_rmse, "validation RMSE (target units)")
        } else {
            (&t.val_accuracy, "validation accuracy")
        };
        let (s_lo, s_hi) = if t.val_accuracy.is_empty() {
            let (l, h, _) = y_range(std::iter::once(second.as_slice()));
            (l, h)
        } else {
            let l = finite(second).map(|p| p.1).fold(1.0, f64::min);
            ((l - 0.05).clamp(0.0, 0.9), 1.0)
        };
        let mut chart = ChartBuilder::on(&body)
            .margin(20)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .right_y_label_area_size(if second.is_empty() { 0 } else { 70 })
            .build_cartesian_2d(1f64..max_epoch(&[t]), lo..hi)
            .map_err(err)?
            .set_secondary_coord(1f64..max_epoch(&[t]), s_lo..s_hi);
        draw_mesh(&mut chart, x_labels(&[t]), "loss", 15)?;
        if !second.is_empty() {
            chart
                .configure_secondary_axes()
                .y_desc(second_name)
                .y_label_formatter(&value_label)
                .label_style(("sans-serif", 15))
                .draw()
                .map_err(err)?;
        }
        if finite(&t.train_loss)
            .chain(finite(&t.val_loss))
            .next()
            .is_none()
        {
            // A trial that diverged at once has nothing to plot; say so instead of an empty frame.
            let (w, h) = body.dim_in_pixel();
            let text = "no finite loss values to draw: every recorded loss is NaN or infinite";
            let style = ("sans-serif", 20).into_text_style(&body).color(&RED);
            let x = i32::try_from(w / 2).unwrap_or(0) - 330;
            body.draw_text(text, &style, (x.max(10), i32::try_from(h / 2).unwrap_or(0)))
                .map_err(err)?;
        }
        let mut keys = Vec::new();
        for (name, points, color) in [
            ("train loss", &t.train_loss, PALETTE[0]),
            ("validation loss", &t.val_loss, PALETTE[1]),
        ] {
            chart
                .draw_series(LineSeries::new(finite(points), color.stroke_width(2)))
                .map_err(err)?;
            keys.push(Key::Line {
                color,
                dash: (0, 0),
                width: 3,
                text: name.into(),
            });
        }
        if !second.is_empty() {
            let color = PALETTE[4];
            let pts: Vec<(f64, f64)> = finite(second).collect();
            chart
                .draw_secondary_series(DashedLineSeries::new(pts, 8, 5, color.stroke_width(2)))
                .map_err(err)?;
            keys.push(Key::Line {
                color,
                dash: (8, 5),
                width: 2,
                text: format!("{second_name} (right axis)"),
            });
        }
        if let Some((e, v)) = t.best.filter(|b| b.1.is_finite()) {
            let line = vec![(e as f64, lo), (e as f64, hi)];
            chart
                .draw_series(std::iter::once(PathElement::new(
                    line,
                    PALETTE[2].stroke_width(2),
                )))
                .map_err(err)?;
            keys.push(Key::Line {
                color: PALETTE[2],
                dash: (0, 0),
                width: 3,
                text: format!("best epoch {e} ({v:.4})"),
            });
        }
        if let (Some(stop), Some(p)) = (&t.stop, finite(&t.val_loss).last()) {
            let label = if stop.diverged {
                "diverged here"
            } else {
                "stopped here"
            };
            chart
                .draw_series(std::iter::once(Cross::new(p, 9, RED.stroke_width(3))))
                .map_err(err)?;
            keys.push(Key::Cross(RED, label.into()));
        }
        legend_row(&head, &keys, 86)?;
        Ok(())
    })
}

/// `compare-A-vs-B.png`: the best curves of each sweep on one chart, a colour per sweep,
/// each sweep's best trial thick.
pub fn compare(sweeps: &[(&str, Vec<&TrialSeries>)], path: &Path) -> Result<(), String> {
    draw_png(path, (1400, 760), |root| {
        let (plot, side) = root.split_horizontally(1060);
        let all: Vec<&TrialSeries> = sweeps.iter().flat_map(|s| s.1.iter().copied()).collect();
        let names: Vec<&str> = sweeps.iter().map(|s| s.0).collect();
        let title = format!("validation loss of the best trials: {}", names.join(" vs "));
        epoch_chart!(
            &plot,
            title,
            22,
            &all,
            "validation loss",
            16,
            |chart, _top| {
                for (i, (_, trials)) in sweeps.iter().enumerate() {
                    let color = PALETTE[i % PALETTE.len()];
                    // Each sweep's best last, so it is drawn over the others.
                    for (rank, t) in trials.iter().enumerate().rev() {
                        let style = if rank == 0 {
                            color.stroke_width(4)
                        } else {
                            color.mix(0.6).stroke_width(2)
                        };
                        // A dash per sweep, so identical curves in both stay visible.
                        line(
                            &mut chart,
                            finite(&t.val_loss).collect(),
                            DASHES[i % DASHES.len()],
                            style,
                        )?;
                    }
                }
            }
        );
        let mut keys = Vec::new();
        for (i, (name, trials)) in sweeps.iter().enumerate() {
            keys.push(Key::Heading((*name).to_string()));
            for (rank, t) in trials.iter().enumerate() {
                keys.push(Key::Line {
                    color: PALETTE[i % PALETTE.len()],
                    dash: DASHES[i % DASHES.len()],
                    width: if rank == 0 { 4 } else { 2 },
                    text: format!(
                        "#{} {}{}",
                        t.ordinal,
                        t.best.map_or(String::new(), |b| format!("{:.4} ", b.1)),
                        t.label
                    ),
                });
            }
        }
        keys.push(Key::Note("thick: each sweep's best trial".into()));
        legend(&side, &keys)?;
        Ok(())
    })
}

/// One policy's point on the replay chart.
pub struct ReplayPoint {
    pub label: String,
    /// Share of the full grid's trial-epochs, 0-1.
    pub compute: f64,
    pub regret: f64,
    pub top1_kept: bool,
}

/// `replay.png`: compute used against regret, one labelled point per policy.
pub fn replay(
    sweep: &str,
    metric: &str,
    points: &[ReplayPoint],
    path: &Path,
) -> Result<(), String> {
    draw_png(path, (1100, 700), |root| {
        let finite: Vec<f64> = points
            .iter()
            .map(|p| p.regret)
            .filter(|r| r.is_finite())
            .collect();
        let top = finite.iter().copied().fold(0.0, f64::max);
        let y_max = if top > 0.0 { top * 1.25 } else { 1e-3 };
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{sweep}: compute against regret per stopping policy ({metric})"),
                ("sans-serif", 24),
            )
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..1.05f64, -y_max * 0.05..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .max_light_lines(0)
            .x_desc("share of the full grid's trial-epochs")
            .y_desc(format!("regret (best {metric} found minus best overall)"))
            .x_label_formatter(&|x| format!("{:.0}%", x * 100.0))
            .y_label_formatter(&value_label)
            .label_style(("sans-serif", 16))
            .draw()
            .map_err(err)?;
        for (i, p) in points.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let y = if p.regret.is_finite() {
                p.regret
            } else {
                y_max
            };
            let shape = if p.top1_kept {
                Circle::new((p.compute, y), 7, color.filled()).into_dyn()
            } else {
                Cross::new((p.compute, y), 8, color.stroke_width(3)).into_dyn()
            };
            chart
                .draw_series(std::iter::once(shape))
                .map_err(err)?
                .label(format!(
                    "{} ({:.0}%, regret {}{})",
                    p.label,
                    p.compute * 100.0,
                    value_label(&p.regret),
                    if p.top1_kept { "" } else { ", best trial lost" }
                ))
                .legend(move |(x, y)| Circle::new((x + 8, y), 5, color.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_between_words_and_cuts_the_last_line() {
        assert_eq!(wrap("short note", 20, 2), vec!["short note"]);
        assert_eq!(
            wrap("stopped at epoch 18: no gain", 17, 2),
            vec!["stopped at epoch", "18: no gain"]
        );
        let cut = wrap("one two three four five six", 9, 2);
        assert_eq!(cut, vec!["one two", "three fo…"]);
        assert!(cut.iter().all(|l| l.chars().count() <= 9));
    }

    #[test]
    fn axis_values_are_short() {
        assert_eq!(value_label(&0.0003), "3e-4");
        assert_eq!(value_label(&0.00025), "2.5e-4");
        assert_eq!(value_label(&0.6000000000000001), "0.6");
        assert_eq!(value_label(&1234.6), "1235");
        assert_eq!(value_label(&0.0), "0");
    }

    #[test]
    fn log_ticks_label_every_part_of_the_axis() {
        assert_eq!(log_ticks(0.19, 2.6), vec![0.2, 0.3, 0.5, 1.0, 2.0]);
        assert_eq!(
            log_ticks(0.0008, 0.04),
            vec![0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.03]
        );
        assert_eq!(
            log_ticks(0.001, 1.0),
            vec![0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
        );
        assert_eq!(log_ticks(1e-6, 1.0).len(), 7, "powers of ten only");
        assert!(log_ticks(0.0, 1.0).is_empty() && log_ticks(2.0, 1.0).is_empty());
    }
}
