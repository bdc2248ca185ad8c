//! SVG charts (plotters' SVG backend, text as SVG `<text>`, so no system fonts are needed): the
//! top-100 / RMSE trade-off of a sweep with its Pareto front, and per-epoch loss and metric curves.

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One configuration on the trade-off chart (means over seeds).
#[derive(Clone, Debug, PartialEq)]
pub struct TradeoffPoint {
    pub label: String,
    pub rmse: f64,
    pub top_100: f64,
    /// A named preset rather than a point of the weight grid (drawn apart).
    pub preset: bool,
}

/// One run's per-epoch values.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    pub label: String,
    pub train_loss: Vec<f64>,
    pub top_100: Vec<f64>,
    pub rmse: Vec<f64>,
}

/// Indices of the points no other point beats on both tasks (RMSE no higher and top-100 no lower, one of
/// them strictly), sorted by RMSE.
pub fn pareto_front(points: &[TradeoffPoint]) -> Vec<usize> {
    let dominates = |a: &TradeoffPoint, b: &TradeoffPoint| {
        a.rmse <= b.rmse && a.top_100 >= b.top_100 && (a.rmse < b.rmse || a.top_100 > b.top_100)
    };
    let mut front: Vec<usize> = (0..points.len())
        .filter(|&i| !points.iter().any(|p| dominates(p, &points[i])))
        .collect();
    front.sort_by(|&a, &b| points[a].rmse.total_cmp(&points[b].rmse));
    front
}

fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let pad = ((hi - lo) * 0.12).max(1e-3);
    (lo - pad)..(hi + pad)
}

/// Drawing into a string fails only on a plotters bug; say which chart.
pub(crate) fn draw_err<E: std::fmt::Display>(chart: &str) -> impl Fn(E) -> anyhow::Error + '_ {
    move |e| anyhow!("drawing the {chart} chart: {e}")
}

/// Top-100 accuracy against RMSE, one point per configuration, the Pareto front joined and ringed.
pub fn tradeoff_svg(title: &str, points: &[TradeoffPoint]) -> Result<String> {
    if points.is_empty() {
        anyhow::bail!("no runs to draw in the trade-off chart");
    }
    let mut svg = String::new();
    draw_tradeoff(
        SVGBackend::with_string(&mut svg, (820, 560)).into_drawing_area(),
        title,
        points,
    )?;
    Ok(svg)
}

fn draw_tradeoff(
    root: DrawingArea<SVGBackend, Shift>,
    title: &str,
    points: &[TradeoffPoint],
) -> Result<()> {
    let err = draw_err("trade-off");
    let (x0, x1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(p.rmse), b.max(p.rmse))
    });
    let (y0, y1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(p.top_100), b.max(p.top_100))
    });
    root.fill(&WHITE).map_err(&err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(padded(x0, x1), padded(y0, y1))
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_desc("test RMSE (lower is better)")
        .y_desc("test top-100 accuracy (higher is better)")
        .draw()
        .map_err(&err)?;
    let front = pareto_front(points);
    chart
        .draw_series(
            front.iter().map(|&i| {
                Circle::new((points[i].rmse, points[i].top_100), 10, RED.stroke_width(2))
            }),
        )
        .map_err(&err)?
        .label("Pareto front (no other point is better on both)")
        .legend(|(x, y)| Circle::new((x + 10, y), 6, RED.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(
            front.iter().map(|&i| (points[i].rmse, points[i].top_100)),
            RED.mix(0.6).stroke_width(2),
        ))
        .map_err(&err)?;
    chart
        .draw_series(points.iter().filter(|p| !p.preset).map(|p| {
            EmptyElement::at((p.rmse, p.top_100))
                + Circle::new((0, 0), 5, BLUE.filled())
                + Text::new(p.label.clone(), (8, -16), ("sans-serif", 13))
        }))
        .map_err(&err)?
        .label("a weighting (mean over seeds)")
        .legend(|(x, y)| Circle::new((x + 10, y), 5, BLUE.filled()));
    let green = RGBColor(0, 140, 60);
    if points.iter().any(|p| p.preset) {
        chart
            .draw_series(points.iter().filter(|p| p.preset).map(|p| {
                EmptyElement::at((p.rmse, p.top_100))
                    + TriangleMarker::new((0, 0), 7, green.filled())
                    + Text::new(p.label.clone(), (10, 4), ("sans-serif", 13))
            }))
            .map_err(&err)?
            .label("a preset (wgrec recipe, mean over seeds)")
            .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 6, green.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::MiddleRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// Three panels over epochs: training loss relative to epoch 1, test top-100 accuracy and test RMSE.
pub fn curves_svg(title: &str, curves: &[Curve]) -> Result<String> {
    let epochs = curves.iter().map(|c| c.train_loss.len()).max().unwrap_or(0);
    if epochs == 0 {
        anyhow::bail!("no epochs to draw in the curves chart");
    }
    let mut svg = String::new();
    draw_curves(
        SVGBackend::with_string(&mut svg, (1260, 440)).into_drawing_area(),
        title,
        curves,
    )?;
    Ok(svg)
}

fn draw_curves(root: DrawingArea<SVGBackend, Shift>, title: &str, curves: &[Curve]) -> Result<()> {
    let err = draw_err("curves");
    let epochs = curves.iter().map(|c| c.train_loss.len()).max().unwrap_or(0);
    root.fill(&WHITE).map_err(&err)?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(&err)?;
    let panels = root.split_evenly((1, 3));
    let x_range = 1.0..(epochs as f64).max(2.0);
    // Losses of different weightings differ by orders of magnitude: each is drawn relative to its first epoch.
    let relative: Vec<Vec<f64>> = curves
        .iter()
        .map(|c| c.train_loss.iter().map(|l| l / c.train_loss[0]).collect())
        .collect();
    let series: [(&str, Vec<Vec<f64>>); 3] = [
        ("training loss / epoch-1 loss", relative),
        (
            "test top-100 accuracy",
            curves.iter().map(|c| c.top_100.clone()).collect(),
        ),
        ("test RMSE", curves.iter().map(|c| c.rmse.clone()).collect()),
    ];
    for (panel, (name, lines)) in panels.iter().zip(series) {
        let pick = |i: usize| -> &[f64] { &lines[i] };
        let values = (0..curves.len()).flat_map(|i| pick(i).iter().copied());
        let (lo, hi) = values
            .filter(|v| v.is_finite())
            .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
        if lo > hi {
            continue;
        }
        let mut builder = ChartBuilder::on(panel);
        builder
            .caption(name, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60);
        let draw_lines = |chart: &mut ChartContext<'_, _, _>| -> Result<()> {
            for (i, c) in curves.iter().enumerate() {
                let color = Palette99::pick(i);
                chart
                    .draw_series(LineSeries::new(
                        pick(i)
                            .iter()
                            .enumerate()
                            .map(|(e, &v)| (e as f64 + 1.0, v)),
                        color.stroke_width(2),
                    ))
                    .map_err(&err)?
                    .label(c.label.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
            }
            Ok(())
        };
        let mut chart = builder
            .build_cartesian_2d(x_range.clone(), padded(lo, hi))
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .draw()
            .map_err(&err)?;
        draw_lines(&mut chart)?;
        if name.starts_with("test RMSE") {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(&err)?;
        }
    }
    root.present().map_err(&err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(label: &str, rmse: f64, top_100: f64) -> TradeoffPoint {
        TradeoffPoint {
            label: label.into(),
            rmse,
            top_100,
            preset: false,
        }
    }

    #[test]
    fn pareto_front_keeps_the_undominated() {
        let pts = [
            p("a", 1.10, 0.06), // best RMSE
            p("b", 3.80, 0.23), // best top-100
            p("c", 1.20, 0.23), // beats b on RMSE at equal top-100, so b is dominated
            p("d", 1.30, 0.10), // dominated by c
            p("e", 1.15, 0.15),
        ];
        assert_eq!(pareto_front(&pts), vec![0, 4, 2]);
    }

    #[test]
    fn charts_are_svg_with_text() {
        let svg = tradeoff_svg(
            "trade-off",
            &[p("(1, 0)", 1.1, 0.06), p("(0, 1)", 3.8, 0.23)],
        )
        .unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<text") && svg.contains("(0, 1)"));
        assert!(svg.contains("test RMSE (lower is better)"));
        assert!(!svg.contains("a preset"));
        let preset = TradeoffPoint {
            preset: true,
            ..p("joint-features", 0.92, 0.31)
        };
        let svg = tradeoff_svg("trade-off", &[p("(1, 0)", 1.1, 0.06), preset]).unwrap();
        assert!(svg.contains("joint-features") && svg.contains("a preset"));
        assert!(svg.contains("<polygon"), "presets are drawn as triangles");
        let curve = Curve {
            label: "run".into(),
            train_loss: vec![100.0, 50.0, 40.0],
            top_100: vec![0.1, 0.2, 0.25],
            rmse: vec![1.3, 1.2, 1.1],
        };
        let svg = curves_svg("curves", &[curve]).unwrap();
        assert!(svg.contains("<polyline") && svg.contains("test top-100 accuracy"));
        assert!(curves_svg("none", &[]).is_err());
    }
}
