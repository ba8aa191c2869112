//! `loadtest plot`: SVG charts of what `loadtest sweep` and `loadtest run` print, for PERF.md.
//!
//! - `plot cpu SWEEP.json…`: CPU per span against offered load, one line per forwarder and sweep.
//! - `plot overload RUN.json…`: the forwarder's RSS (left axis) and the spans it accepted and
//!   refused per second (right axis) over the run, from the run's timeline.
//!
//! Inputs are the JSON those commands print on stdout (their tables go to stderr), so
//! `loadtest run … > run.json` is one. Charts are written with plotters' SVG backend: text becomes
//! SVG text elements, so nothing needs fonts or system libraries.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use plotters::prelude::*;
use serde_json::Value;

/// Flags of `loadtest plot`.
#[derive(Clone, Debug, clap::Args)]
pub struct PlotArgs {
    /// What to draw.
    #[command(subcommand)]
    pub chart: Chart,
}

/// The charts.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum Chart {
    /// CPU per span against offered load, from `loadtest sweep` outputs.
    Cpu(ChartArgs),
    /// RSS and accepted/refused spans per second over time, from `loadtest run` outputs.
    Overload(ChartArgs),
}

/// Inputs, output and title of one chart.
#[derive(Clone, Debug, clap::Args)]
pub struct ChartArgs {
    /// JSON files, as `loadtest sweep` or `loadtest run` print them.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The SVG file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// The chart's title.
    #[arg(long, default_value = "")]
    pub title: String,
    /// A line under the title: machine, date, command.
    #[arg(long, default_value = "")]
    pub note: String,
}

/// One line of a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Its legend.
    pub label: String,
    /// Its points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// The window over which the overload chart takes accepted and refused spans per second, seconds.
const RATE_WINDOW_S: f64 = 1.0;

/// The lowest rate the overload chart's log axis shows, thousand spans/s; zero is drawn there.
const RATE_FLOOR: f64 = 0.1;

/// Chart size in pixels.
const SIZE: (u32, u32) = (900, 520);

// === free functions ===

/// Reads the inputs, draws the chart and writes it; returns what it wrote.
pub fn run(args: PlotArgs) -> anyhow::Result<String> {
    let (chart, which) = match &args.chart {
        Chart::Cpu(c) => (c, "cpu"),
        Chart::Overload(c) => (c, "overload"),
    };
    let inputs = chart.inputs.iter().map(|p| read_json(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let svg = match which {
        "cpu" => cpu_svg(&cpu_series(&inputs)?, &chart.title, &chart.note)?,
        _ => {
            let (rss, rates) = overload_series(&inputs)?;
            overload_svg(&rss, &rates, &chart.title, &chart.note)?
        }
    };
    if let Some(dir) = chart.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&chart.out, &svg).with_context(|| format!("writing {}", chart.out.display()))?;
    Ok(format!("wrote {} ({} bytes)", chart.out.display(), svg.len()))
}

/// A JSON document, or the last JSON line of a file that has other lines before it.
fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if let Ok(v) = serde_json::from_str(&text) {
        return Ok(v);
    }
    let last = text.lines().rev().find(|l| l.trim_start().starts_with('{'));
    last.and_then(|l| serde_json::from_str(l).ok())
        .with_context(|| format!("{} holds no JSON object", path.display()))
}

/// One series per forwarder and sweep: (offered spans/s in thousands, CPU µs per span).
pub fn cpu_series(sweeps: &[Value]) -> anyhow::Result<Vec<Series>> {
    let mut series: Vec<Series> = Vec::new();
    for sweep in sweeps {
        let points = sweep["points"].as_array().context("not a `loadtest sweep` output: no points")?;
        let scenario = sweep["scenario"].as_str().unwrap_or("?");
        for p in points {
            let label = format!("{} ({scenario})", p["peer"].as_str().unwrap_or("?"));
            let xy = (
                p["offered_spans_per_s"].as_f64().unwrap_or(0.0) / 1000.0,
                p["cpu_us_per_span"].as_f64().unwrap_or(0.0),
            );
            match series.iter_mut().find(|s| s.label == label) {
                Some(s) => s.points.push(xy),
                None => series.push(Series { label, points: vec![xy] }),
            }
        }
    }
    for s in &mut series {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    Ok(series)
}

/// From run outputs: RSS in MiB over time (one series per run), and accepted and refused spans
/// per second in thousands (two series per run), each labelled with the run's forwarder and
/// scenario.
pub fn overload_series(runs: &[Value]) -> anyhow::Result<(Vec<Series>, Vec<Series>)> {
    let mut rss = Vec::new();
    let mut rates = Vec::new();
    for r in runs {
        let timeline = r["timeline"].as_array().context("not a `loadtest run` output: no timeline")?;
        let name =
            format!("{} ({})", r["peer"].as_str().unwrap_or("?"), r["scenario"].as_str().unwrap_or("?"));
        let at = |s: &Value, key: &str| s[key].as_f64().unwrap_or(0.0);
        rss.push(Series {
            label: format!("{name}: RSS"),
            points: timeline.iter().map(|s| (at(s, "t_s"), at(s, "rss_mib"))).collect(),
        });
        // The counters move in bursts (a queue frees room when an export succeeds), so rates are
        // taken over windows of RATE_WINDOW_S.
        let mut windows = Vec::new();
        for s in timeline {
            if windows.last().is_none_or(|last: &&Value| at(s, "t_s") - at(last, "t_s") >= RATE_WINDOW_S) {
                windows.push(s);
            }
        }
        for (key, what) in [("sent_spans", "accepted"), ("refused_spans", "refused")] {
            let points = windows
                .windows(2)
                .map(|w| {
                    let dt = at(w[1], "t_s") - at(w[0], "t_s");
                    (at(w[1], "t_s"), (at(w[1], key) - at(w[0], key)) / dt / 1000.0)
                })
                .collect();
            rates.push(Series { label: format!("{name}: {what}"), points });
        }
    }
    Ok((rss, rates))
}

/// The upper end of an axis showing `values`: a little above the largest, never zero.
fn axis_max(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.fold(0.0_f64, f64::max);
    if max > 0.0 { max * 1.1 } else { 1.0 }
}

fn draw_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart: {e}")
}

/// The colour of the `i`th series.
fn colour(i: usize) -> RGBColor {
    const COLOURS: [RGBColor; 6] = [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x8c, 0x56, 0x4b),
    ];
    COLOURS[i % COLOURS.len()]
}

/// CPU per span against offered load, as SVG.
pub fn cpu_svg(series: &[Series], title: &str, note: &str) -> anyhow::Result<String> {
    if series.iter().all(|s| s.points.is_empty()) {
        bail!("nothing to draw: no points");
    }
    let x_max = axis_max(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let y_max = axis_max(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let root = titled(&root, title, note)?;
        let legend_at = SeriesLabelPosition::MiddleRight;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(52)
            .y_label_area_size(76)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .x_desc("offered load, thousand spans/s")
            .y_desc("forwarder CPU per span, µs")
            .draw()
            .map_err(draw_error)?;
        for (i, s) in series.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
                .map_err(draw_error)?
                .label(s.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
            chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 4, c.filled()))).map_err(draw_error)?;
        }
        chart
            .configure_series_labels()
            .position(legend_at)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

/// RSS (left axis) and accepted/refused spans per second (right axis) over time, as SVG.
pub fn overload_svg(rss: &[Series], rates: &[Series], title: &str, note: &str) -> anyhow::Result<String> {
    if rss.iter().all(|s| s.points.is_empty()) {
        bail!("nothing to draw: empty timelines");
    }
    let all = || rss.iter().chain(rates).flat_map(|s| s.points.iter());
    let t_max = axis_max(all().map(|p| p.0));
    let rss_max = axis_max(rss.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    // Refusals outnumber what is accepted by orders of magnitude when clients retry at once, so the
    // rates are on a log scale, with zero drawn at its floor.
    let rate_max = axis_max(rates.iter().flat_map(|s| s.points.iter().map(|p| p.1))).max(RATE_FLOOR * 10.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let root = titled(&root, title, note)?;
        let legend_at = SeriesLabelPosition::LowerRight;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(52)
            .y_label_area_size(76)
            .right_y_label_area_size(76)
            .build_cartesian_2d(0.0..t_max, 0.0..rss_max)
            .map_err(draw_error)?
            .set_secondary_coord(0.0..t_max, (RATE_FLOOR..rate_max).log_scale());
        chart
            .configure_mesh()
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .x_desc("time since the load started, s")
            .y_desc("forwarder RSS, MiB (solid)")
            .draw()
            .map_err(draw_error)?;
        chart
            .configure_secondary_axes()
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .y_desc("thousand spans/s accepted / refused (dashed, log)")
            .draw()
            .map_err(draw_error)?;
        for (i, s) in rss.iter().enumerate() {
            let c = colour(i * 3);
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(3)))
                .map_err(draw_error)?
                .label(s.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
        }
        for (i, s) in rates.iter().enumerate() {
            let c = colour(i / 2 * 3 + 1 + i % 2);
            chart
                .draw_secondary_series(DashedLineSeries::new(
                    s.points.iter().map(|&(t, rate)| (t, rate.max(RATE_FLOOR))),
                    6,
                    4,
                    c.stroke_width(2),
                ))
                .map_err(draw_error)?
                .label(s.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(legend_at)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

/// The area below a title and a note (each drawn only when given).
fn titled<'a>(
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    title: &str,
    note: &str,
) -> anyhow::Result<DrawingArea<SVGBackend<'a>, plotters::coord::Shift>> {
    let mut area = root.clone();
    if !title.is_empty() {
        area = area.titled(title, ("sans-serif", 26)).map_err(draw_error)?;
    }
    if !note.is_empty() {
        area = area
            .titled(note, ("sans-serif", 17).into_font().color(&RGBColor(0x55, 0x55, 0x55)))
            .map_err(draw_error)?;
    }
    Ok(area)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sweep() -> Value {
        json!({"scenario": "gzip", "points": [
            {"peer": "gateway", "offered_spans_per_s": 100000, "cpu_us_per_span": 2.5},
            {"peer": "rotel", "offered_spans_per_s": 100000, "cpu_us_per_span": 19.0},
            {"peer": "gateway", "offered_spans_per_s": 50000, "cpu_us_per_span": 3.5},
            {"peer": "rotel", "offered_spans_per_s": 50000, "cpu_us_per_span": 21.0},
        ]})
    }

    /// Scenario: a sweep of two forwarders at two rates, listed rate by rate.
    /// Guarantees: one series per forwarder, its points in load order; the SVG names both in its
    /// legend, has the axis titles and a path for each line.
    #[test]
    fn cpu_chart_has_a_line_per_forwarder() {
        let series = cpu_series(&[sweep()]).unwrap();
        assert_eq!(
            series,
            vec![
                Series { label: "gateway (gzip)".into(), points: vec![(50.0, 3.5), (100.0, 2.5)] },
                Series { label: "rotel (gzip)".into(), points: vec![(50.0, 21.0), (100.0, 19.0)] },
            ]
        );
        let svg = cpu_svg(&series, "CPU per span", "2 vCPU, shared").unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
        for text in ["gateway (gzip)", "rotel (gzip)", "CPU per span", "2 vCPU, shared", "offered load"] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert!(svg.matches("<polyline").count() >= 2, "no lines drawn");
        assert!(cpu_series(&[json!({"no": "points"})]).is_err());
    }

    /// Scenario: a run's timeline in which the forwarder starts refusing half-way.
    /// Guarantees: RSS is plotted as sampled; accepted and refused spans become per-second rates
    /// from the counters' differences; the SVG holds all three series.
    #[test]
    fn overload_chart_has_rss_and_refusals() {
        let run = json!({"peer": "gateway", "scenario": "backpressure", "timeline": [
            {"t_s": 0.0, "rss_mib": 10.0, "sent_spans": 0, "refused_spans": 0},
            {"t_s": 0.5, "rss_mib": 30.0, "sent_spans": 50000, "refused_spans": 0},
            {"t_s": 1.0, "rss_mib": 31.0, "sent_spans": 60000, "refused_spans": 0},
            {"t_s": 1.5, "rss_mib": 31.0, "sent_spans": 60000, "refused_spans": 30000},
            {"t_s": 2.0, "rss_mib": 32.0, "sent_spans": 70000, "refused_spans": 40000},
        ]});
        let (rss, rates) = overload_series(&[run]).unwrap();
        assert_eq!(rss[0].points[..3], [(0.0, 10.0), (0.5, 30.0), (1.0, 31.0)]);
        assert_eq!(rates[0].label, "gateway (backpressure): accepted");
        // Rates over one-second windows: 0–1 s and 1–2 s.
        assert_eq!(rates[0].points, vec![(1.0, 60.0), (2.0, 10.0)]);
        assert_eq!(rates[1].points, vec![(1.0, 0.0), (2.0, 40.0)]);
        let svg = overload_svg(&rss, &rates, "", "").unwrap();
        for text in ["gateway (backpressure): RSS", ": accepted", ": refused", "RSS, MiB"] {
            assert!(svg.contains(text), "{text} missing");
        }
    }

    /// Scenario: a file holding a `loadtest run` table line before its JSON line, and one with only
    /// JSON.
    /// Guarantees: both read as the JSON object.
    #[test]
    fn inputs_may_carry_other_lines() {
        let dir = crate::run::tempfile_dir().unwrap();
        let mixed = dir.join("mixed.json");
        std::fs::write(&mixed, "scenario  \"gzip\"\n{\"points\": []}\n").unwrap();
        assert_eq!(read_json(&mixed).unwrap(), json!({"points": []}));
        let plain = dir.join("plain.json");
        std::fs::write(&plain, "{\n  \"a\": 1\n}\n").unwrap();
        assert_eq!(read_json(&plain).unwrap(), json!({"a": 1}));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
