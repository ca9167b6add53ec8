//! A self-contained HTML page: inline CSS and SVG, no script, no network, so
//! it opens offline and survives being attached to a CI run.

use super::{Cell, Chart, Outcome, Report, Series, Status};

const COLORS: [&str; 4] = ["#4c78a8", "#f58518", "#54a24b", "#b279a2"];

pub fn render_html(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str(&format!("<title>{}</title>", esc(&report.title)));
    out.push_str(STYLE);
    out.push_str("</head><body>\n");
    out.push_str(&format!("<h1>{}</h1>\n", esc(&report.title)));
    let (class, verdict) = match report.gate.outcome {
        Outcome::Pass => ("pass", "PASS"),
        Outcome::Marginal => ("marginal", "MARGINAL"),
        Outcome::Fail => ("fail", "FAIL"),
    };
    out.push_str(&format!(
        "<p class=\"gate {class}\"><b>{verdict}</b>: {}<br><small>rule: {}</small></p>\n",
        esc(&report.gate.message),
        esc(&report.gate.rule)
    ));
    out.push_str("<div class=\"figures\">");
    for f in &report.summary {
        out.push_str(&format!(
            "<div class=\"figure\"><div class=\"value\">{}</div><div class=\"label\">{}</div></div>",
            esc(&f.value.display()),
            esc(&f.label)
        ));
    }
    out.push_str("</div>\n");
    for w in &report.warnings {
        out.push_str(&format!("<p class=\"warning\">⚠ {}</p>\n", esc(w)));
    }
    for section in &report.sections {
        out.push_str(&format!("<h2>{}</h2>\n", esc(&section.title)));
        for note in &section.notes {
            out.push_str(&format!("<p class=\"note\">{}</p>\n", esc(note)));
        }
        out.push_str("<table><thead><tr>");
        for c in &section.columns {
            out.push_str(&format!("<th>{}</th>", esc(&c.label)));
        }
        out.push_str("</tr></thead><tbody>\n");
        for row in &section.rows {
            out.push_str("<tr>");
            for cell in row {
                let class = match cell {
                    Cell::Status(Status::Drift) | Cell::Status(Status::Error) => " class=\"bad\"",
                    Cell::Status(Status::Ok) => " class=\"good\"",
                    Cell::Float(_) | Cell::Int(_) => " class=\"num\"",
                    _ => "",
                };
                out.push_str(&format!("<td{class}>{}</td>", esc(&cell.display())));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody></table>\n");
        if !section.charts.is_empty() {
            out.push_str("<div class=\"charts\">\n");
            for chart in &section.charts {
                out.push_str(&svg_chart(chart));
            }
            out.push_str("</div>\n");
        }
    }
    out.push_str("<h2>Settings</h2><table><tbody>");
    for s in &report.settings {
        out.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>",
            esc(&s.label),
            esc(&s.value.display())
        ));
    }
    out.push_str("</tbody></table>\n");
    out.push_str(&format!(
        "<p class=\"note\">mlctl {}</p></body></html>\n",
        env!("CARGO_PKG_VERSION")
    ));
    out
}

const STYLE: &str = "<style>
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222;max-width:1400px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}
.gate{padding:.6em 1em;border-radius:6px}.pass{background:#e6f4ea}.fail{background:#fce8e6}.marginal{background:#fef7e0}
.figures{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}
.figure{border:1px solid #ddd;border-radius:6px;padding:.5em .9em;min-width:8em}
.figure .value{font-size:1.3em;font-weight:600}.figure .label{font-size:.8em;color:#666}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.bad{color:#b00020;font-weight:600}td.good{color:#137333}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:1em;margin-top:1em}
.chart{border:1px solid #eee;border-radius:6px;padding:.3em}.chart text{font-size:10px;fill:#444}
.note{color:#555;font-size:.85em}.warning{color:#8a6d00}
</style>";

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 420.0;
const H: f64 = 220.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 40.0;

fn svg_chart(chart: &Chart) -> String {
    match chart {
        Chart::Histogram {
            title,
            bins,
            series,
        } => histogram(title, bins, series),
        Chart::Trend {
            title,
            points,
            series,
            threshold,
        } => trend(title, points, series, *threshold),
    }
}

fn frame(title: &str, max: f64, body: &str, legend: &[&Series]) -> String {
    let mut s = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\"><title>{t}</title><text x=\"{LEFT}\" y=\"14\" font-weight=\"600\">{t}</text>",
        t = esc(title)
    );
    let plot_h = H - TOP - BOTTOM;
    for i in 0..=4 {
        let v = max * i as f64 / 4.0;
        let y = TOP + plot_h - plot_h * i as f64 / 4.0;
        s.push_str(&format!(
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 4.0,
            y + 3.0,
            esc(&super::format_float(v))
        ));
    }
    s.push_str(body);
    for (i, series) in legend.iter().enumerate() {
        let x = W - RIGHT - 90.0 * (legend.len() - i) as f64;
        s.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"6\" width=\"10\" height=\"10\" fill=\"{}\" opacity=\"0.7\"/><text x=\"{:.1}\" y=\"15\">{}</text>",
            COLORS[i % COLORS.len()],
            x + 14.0,
            esc(&series.name)
        ));
    }
    s.push_str("</svg>\n");
    s
}

fn histogram(title: &str, bins: &[String], series: &[Series]) -> String {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-12);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = bins.len().max(1) as f64;
    let bw = plot_w / n;
    let mut body = String::new();
    // Series are drawn overlaid and translucent, so shifts are visible.
    for (k, s) in series.iter().enumerate() {
        for (i, v) in s.values.iter().enumerate() {
            let h = if v.is_finite() { plot_h * v / max } else { 0.0 };
            body.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\" opacity=\"0.55\"><title>{}: {} {}</title></rect>",
                LEFT + bw * i as f64 + 1.0,
                TOP + plot_h - h,
                (bw - 2.0).max(1.0),
                COLORS[k % COLORS.len()],
                esc(&s.name),
                esc(bins.get(i).map(String::as_str).unwrap_or("")),
                esc(&super::format_float(*v))
            ));
        }
    }
    // A few labels that do not overlap: a numeric bin is named by its
    // lower edge (the full range is in each bar's tooltip).
    let step = bins.len().div_ceil(5).max(1);
    for (i, label) in bins.iter().enumerate().step_by(step) {
        let short = label.split("..").next().unwrap_or(label);
        body.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            LEFT + bw * (i as f64 + 0.5),
            H - BOTTOM + 14.0,
            esc(&shorten(short))
        ));
    }
    frame(title, max, &body, &series.iter().collect::<Vec<_>>())
}

fn trend(title: &str, points: &[String], series: &[Series], threshold: Option<f64>) -> String {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .chain(threshold)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-12)
        * 1.1;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = points.len().max(2) as f64 - 1.0;
    let x = |i: usize| LEFT + plot_w * i as f64 / n;
    let y = |v: f64| TOP + plot_h - plot_h * v / max;
    let mut body = String::new();
    if let Some(t) = threshold {
        body.push_str(&format!(
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#d62728\" stroke-dasharray=\"4 3\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#d62728\">threshold {}</text>",
            W - RIGHT,
            y(t),
            y(t),
            W - RIGHT,
            y(t) - 3.0,
            esc(&super::format_float(t))
        ));
    }
    for (k, s) in series.iter().enumerate() {
        let pts: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let color = COLORS[k % COLORS.len()];
        body.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            pts.join(" ")
        ));
        for (i, v) in s.values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
            body.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"><title>{}: {}</title></circle>",
                x(i),
                y(*v),
                esc(points.get(i).map(String::as_str).unwrap_or("")),
                esc(&super::format_float(*v))
            ));
        }
    }
    let step = points.len().div_ceil(5).max(1);
    for (i, label) in points.iter().enumerate().step_by(step) {
        body.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x(i),
            H - BOTTOM + 14.0,
            esc(&shorten(label))
        ));
    }
    frame(title, max, &body, &series.iter().collect::<Vec<_>>())
}

fn shorten(label: &str) -> String {
    if label.chars().count() > 14 {
        format!("{}…", label.chars().take(13).collect::<String>())
    } else {
        label.to_string()
    }
}
