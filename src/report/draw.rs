//! Draws prepared chart data as PNG with plotters, using a bundled font (no system fonts).

use std::path::Path;
use std::sync::Once;

use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::prepare::{ChartData, TrialSeries};
use crate::store::TrialState;

static FONT: Once = Once::new();

/// DejaVu Sans (Bitstream Vera licence, see `src/report/fonts/LICENSE-DejaVu.txt`).
fn register_bundled_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("fonts/DejaVuSans.ttf");
        // The font is compiled in and known to be valid; a failure would show in every test.
        let _ = register_font("sans-serif", FontStyle::Normal, bytes);
    });
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

fn err(e: impl std::fmt::Debug) -> String {
    format!("{e:?}")
}

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
        .light_line_style(WHITE)
        .y_label_formatter(&value_label)
        .x_desc("epoch")
        .y_desc(y_desc)
        .label_style(("sans-serif", font_size))
        .draw()
        .map_err(err)
}

/// `curves.png`: every trial's validation loss, coloured by one hyperparameter.
pub fn curves(data: &ChartData, path: &Path) -> Result<(), String> {
    register_bundled_font();
    let root = BitMapBackend::new(path, (1280, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let all: Vec<&TrialSeries> = data.trials.iter().collect();
    let (lo, hi, log) = y_range(all.iter().map(|t| t.val_loss.as_slice()));
    let title = format!(
        "{}: validation loss by epoch, colour = {}",
        data.sweep, data.color_by
    );
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80);
    let x = 1f64..max_epoch(&all);
    if log {
        let mut chart = builder
            .build_cartesian_2d(x, (lo..hi).log_scale())
            .map_err(err)?;
        draw_mesh(
            &mut chart,
            x_labels(&all),
            "validation loss (log scale)",
            16,
        )?;
        draw_curves(&mut chart, data)?;
    } else {
        let mut chart = builder.build_cartesian_2d(x, lo..hi).map_err(err)?;
        draw_mesh(&mut chart, x_labels(&all), "validation loss", 16)?;
        draw_curves(&mut chart, data)?;
    }
    root.present().map_err(err)
}

fn draw_curves<'a, DB: DrawingBackend + 'a, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    data: &ChartData,
) -> Result<(), String>
where
    CT: CoordTranslate<From = (f64, f64)>,
{
    let best = data
        .trials
        .iter()
        .filter_map(|t| t.best.map(|b| (t.ordinal, b.1)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|b| b.0);
    let thin = if data.trials.len() > 30 { 1 } else { 2 };
    for (gi, group) in data.groups.iter().enumerate() {
        let color = PALETTE[gi % PALETTE.len()];
        let mut labelled = false;
        for t in data.trials.iter().filter(|t| &t.group == group) {
            let style =
                color
                    .mix(0.75)
                    .stroke_width(if Some(t.ordinal) == best { 4 } else { thin });
            let series = chart
                .draw_series(LineSeries::new(finite(&t.val_loss), style))
                .map_err(err)?;
            if !labelled {
                labelled = true;
                series
                    .label(format!("{} = {group}", data.color_by))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                    });
            }
            let end = finite(&t.val_loss).last();
            if let (Some(p), Some(stop)) = (end, &t.stop) {
                if stop.diverged {
                    chart
                        .draw_series(std::iter::once(TriangleMarker::new(p, 8, RED.filled())))
                        .map_err(err)?;
                } else {
                    chart
                        .draw_series(std::iter::once(Cross::new(p, 7, BLACK.stroke_width(2))))
                        .map_err(err)?;
                }
            }
        }
    }
    let has = |f: &dyn Fn(&TrialSeries) -> bool| data.trials.iter().any(f);
    if has(&|t| t.state == TrialState::Stopped) {
        chart
            .draw_series(std::iter::empty::<Cross<(f64, f64), i32>>())
            .map_err(err)?
            .label("x = stopped early")
            .legend(|(x, y)| Cross::new((x + 12, y), 6, BLACK.stroke_width(2)));
    }
    if has(&|t| t.state == TrialState::Diverged) {
        chart
            .draw_series(std::iter::empty::<TriangleMarker<(f64, f64), i32>>())
            .map_err(err)?
            .label("triangle = diverged (NaN/inf)")
            .legend(|(x, y)| TriangleMarker::new((x + 12, y), 7, RED.filled()));
    }
    if let Some(b) = best {
        chart
            .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
            .map_err(err)?
            .label(format!("thick line = best trial (#{b})"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLACK.stroke_width(4)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(err)
}

/// `trials/NNN.png`: one trial's training and validation loss, best epoch and stop reason.
pub fn trial(sweep: &str, t: &TrialSeries, path: &Path) -> Result<(), String> {
    register_bundled_font();
    let root = BitMapBackend::new(path, (1000, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (head, body) = root.split_vertically(90);
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
    head.draw_text(&note, &("sans-serif", 15).into_text_style(&head), (20, 50))
        .map_err(err)?;

    let both = [t.train_loss.as_slice(), t.val_loss.as_slice()];
    let (lo, hi, _) = y_range(both.iter().copied());
    let mut chart = ChartBuilder::on(&body)
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(1f64..max_epoch(&[t]), lo..hi)
        .map_err(err)?;
    draw_mesh(&mut chart, x_labels(&[t]), "loss", 15)?;
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
    for (name, points, color) in [
        ("train loss", &t.train_loss, PALETTE[0]),
        ("validation loss", &t.val_loss, PALETTE[1]),
    ] {
        chart
            .draw_series(LineSeries::new(finite(points), color.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
    }
    if let Some((e, v)) = t.best.filter(|b| b.1.is_finite()) {
        let line = vec![(e as f64, lo), (e as f64, hi)];
        chart
            .draw_series(std::iter::once(PathElement::new(
                line,
                PALETTE[2].stroke_width(2),
            )))
            .map_err(err)?
            .label(format!("best epoch {e} ({v:.4})"))
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], PALETTE[2].stroke_width(3))
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
            .map_err(err)?
            .label(label)
            .legend(|(x, y)| Cross::new((x + 12, y), 6, RED.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
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
    register_bundled_font();
    let root = BitMapBackend::new(path, (1100, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
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
        .light_line_style(WHITE)
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
    root.present().map_err(err)
}
