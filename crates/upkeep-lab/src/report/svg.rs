//! Inline SVG line charts for the HTML report: no script, no external file.

use std::fmt::Write;

/// One line of a chart.
pub struct Series<'a> {
    pub label: &'a str,
    pub color: &'a str,
    /// (x in ms from the phase start, y), in x order.
    pub points: Vec<(f64, f64)>,
}

pub struct Chart<'a> {
    pub title: &'a str,
    /// What one y unit is ("502 responses per 300 ms").
    pub y_label: String,
    pub series: Vec<Series<'a>>,
}

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 52.0;
const BOTTOM: f64 = 44.0;

pub fn render(chart: &Chart<'_>) -> String {
    let x_max = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let y_data_max = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max);
    let (y_max, y_step) = nice_axis(y_data_max);
    let (x_end, x_step) = nice_axis(x_max / 1000.0);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let sx = |ms: f64| LEFT + (ms / 1000.0) / x_end * plot_w;
    let sy = |v: f64| TOP + plot_h - v / y_max * plot_h;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{title}" font-family="system-ui, sans-serif" font-size="12">"##,
        title = esc(chart.title)
    );
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="18" font-size="14" font-weight="600" fill="#222">{}</text>"##,
        esc(chart.title)
    );
    // Grid and y ticks.
    let mut v = 0.0;
    while v <= y_max + 1e-9 {
        let y = sy(v);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            fmt_num(v)
        );
        v += y_step;
    }
    // x ticks (seconds).
    let mut t = 0.0;
    while t <= x_end + 1e-9 {
        let x = LEFT + t / x_end * plot_w;
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#999"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}s</text>"##,
            TOP + plot_h,
            TOP + plot_h + 4.0,
            TOP + plot_h + 18.0,
            fmt_num(t)
        );
        t += x_step;
    }
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="#999"/>"##,
        TOP + plot_h,
        WIDTH - RIGHT,
        TOP + plot_h,
        TOP + plot_h
    );
    let _ = write!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">time since the phase started · y: {}</text>"##,
        LEFT + plot_w / 2.0,
        HEIGHT - 6.0,
        esc(&chart.y_label)
    );
    // Lines, then the legend.
    for s in &chart.series {
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = write!(
            svg,
            r##"<polyline fill="none" stroke="{}" stroke-width="2" stroke-linejoin="round" points="{}"/>"##,
            s.color,
            pts.join(" ")
        );
        for (x, y) in &s.points {
            let _ = write!(
                svg,
                r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{}"/>"##,
                sx(*x),
                sy(*y),
                s.color
            );
        }
    }
    // Legend on its own line under the title.
    let mut lx = LEFT;
    for s in &chart.series {
        let _ = write!(
            svg,
            r##"<rect x="{lx:.1}" y="29" width="14" height="4" fill="{}"/><text x="{:.1}" y="35" fill="#222">{}</text>"##,
            s.color,
            lx + 20.0,
            esc(s.label)
        );
        lx += 150.0;
    }
    svg.push_str("</svg>");
    svg
}

/// An axis end at or above `max` and a step, both "round" (1, 2, 5 × 10^n).
fn nice_axis(max: f64) -> (f64, f64) {
    if max <= 0.0 {
        return (1.0, 1.0);
    }
    let raw_step = max / 5.0;
    let mag = 10f64.powf(raw_step.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw_step)
        .unwrap_or(10.0 * mag);
    let step = if max <= 5.0 && step < 1.0 && max >= 1.0 {
        1.0
    } else {
        step
    };
    ((max / step).ceil().max(1.0) * step, step)
}

fn fmt_num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_round() {
        assert_eq!(nice_axis(13.0), (15.0, 5.0));
        assert_eq!(nice_axis(0.0), (1.0, 1.0));
        assert_eq!(nice_axis(1.0), (1.0, 1.0));
        assert_eq!(nice_axis(3.0), (3.0, 1.0));
        assert_eq!(nice_axis(480.0), (500.0, 100.0));
    }

    #[test]
    fn chart_is_one_svg_element_with_escaped_text() {
        let svg = render(&Chart {
            title: "502s <before & after>",
            y_label: "per 300 ms".into(),
            series: vec![Series {
                label: "before",
                color: "#c0392b",
                points: vec![(0.0, 1.0), (300.0, 4.0)],
            }],
        });
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("502s &lt;before &amp; after&gt;"));
        assert!(svg.contains("<polyline"));
    }
}
