//! `curves.svg`: training loss and dev nDCG@10 against the step, drawn by
//! hand.
//!
//! Two panels side by side, each a polyline over a framed plot area with
//! five ticks per axis and round tick labels. A plotting crate would do
//! more, but two line charts need only a few `<line>`, `<polyline>` and
//! `<text>` elements, and the output is plain text that diffs well.
//! Non-finite values are dropped from a series (a NaN loss would otherwise
//! poison the axis range). Left out: log scales, legends, several series
//! per panel.

use std::fmt::Write;

/// One panel's data: `(step, value)` points in step order.
pub struct Series<'a> {
    pub title: &'a str,
    pub points: &'a [(u64, f64)],
    pub color: &'a str,
}

const PANEL_W: f64 = 420.0;
const PANEL_H: f64 = 300.0;
// Margins inside a panel: left holds the y labels, bottom the x labels.
const LEFT: f64 = 60.0;
const RIGHT: f64 = 15.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 40.0;

/// An SVG document with one panel per series, left to right.
pub fn render(series: &[Series<'_>]) -> String {
    let width = PANEL_W * series.len().max(1) as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{PANEL_H}\" \
         viewBox=\"0 0 {width} {PANEL_H}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let _ = writeln!(s, "<rect width=\"{width}\" height=\"{PANEL_H}\" fill=\"white\"/>");
    for (i, ser) in series.iter().enumerate() {
        panel(&mut s, i as f64 * PANEL_W, ser);
    }
    s.push_str("</svg>\n");
    s
}

fn panel(s: &mut String, x0: f64, ser: &Series<'_>) {
    let pts: Vec<(f64, f64)> =
        ser.points.iter().filter(|p| p.1.is_finite()).map(|&(x, y)| (x as f64, y)).collect();
    let (px, py) = (x0 + LEFT, TOP);
    let (pw, ph) = (PANEL_W - LEFT - RIGHT, PANEL_H - TOP - BOTTOM);
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">{}</text>",
        px + pw / 2.0,
        escape(ser.title)
    );
    let _ = writeln!(
        s,
        "<rect x=\"{px}\" y=\"{py}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#444\"/>"
    );
    if pts.is_empty() {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\">no data</text>",
            px + pw / 2.0,
            py + ph / 2.0
        );
        return;
    }

    // Axis ranges: padded so a flat series still has height.
    let (mut xmin, mut xmax) = min_max(pts.iter().map(|p| p.0));
    let (mut ymin, mut ymax) = min_max(pts.iter().map(|p| p.1));
    if xmax <= xmin {
        xmin -= 1.0;
        xmax += 1.0;
    }
    if ymax <= ymin {
        let pad = ymin.abs().max(1.0) * 0.05;
        ymin -= pad;
        ymax += pad;
    }
    let sx = |x: f64| px + (x - xmin) / (xmax - xmin) * pw;
    let sy = |y: f64| py + ph - (y - ymin) / (ymax - ymin) * ph;

    // Ticks and labels, five per axis; steps are labelled as whole numbers.
    for k in 0..=4 {
        let f = k as f64 / 4.0;
        let (xv, yv) = (xmin + f * (xmax - xmin), ymin + f * (ymax - ymin));
        let (tx, ty) = (sx(xv), sy(yv));
        let _ = writeln!(
            s,
            "<line x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{}\" stroke=\"#444\"/>\
             <text x=\"{tx:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            py + ph,
            py + ph + 4.0,
            py + ph + 16.0,
            xv.round()
        );
        let _ = writeln!(
            s,
            "<line x1=\"{}\" y1=\"{ty:.1}\" x2=\"{px}\" y2=\"{ty:.1}\" stroke=\"#444\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            px - 4.0,
            px - 6.0,
            ty + 4.0,
            label(yv)
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">step</text>",
        px + pw / 2.0,
        PANEL_H - 6.0
    );

    // The series: a polyline, plus dots when there are few points.
    let mut poly = String::new();
    for &(x, y) in &pts {
        let _ = write!(poly, "{:.1},{:.1} ", sx(x), sy(y));
    }
    let _ = writeln!(
        s,
        "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>",
        ser.color,
        poly.trim_end()
    );
    if pts.len() <= 40 {
        for &(x, y) in &pts {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\"/>",
                sx(x),
                sy(y),
                ser.color
            );
        }
    }
}

fn min_max(v: impl Iterator<Item = f64>) -> (f64, f64) {
    v.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)))
}

/// A short tick label: integers as such, others with three significant
/// digits.
fn label(v: f64) -> String {
    if (v == v.round() && v.abs() < 1e7) || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_both_panels_and_skips_nan() {
        let loss = [(1, 2.0), (2, f64::NAN), (3, 1.0)];
        let ndcg = [(3, 0.25)];
        let svg = render(&[
            Series { title: "loss", points: &loss, color: "#c33" },
            Series { title: "dev nDCG@10 <x>", points: &ndcg, color: "#36c" },
        ]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        // The loss line has two points (NaN dropped), the nDCG line one.
        let first = svg.split("points=\"").nth(1).unwrap();
        assert_eq!(first.split('"').next().unwrap().split(' ').count(), 2);
        assert!(svg.contains("&lt;x&gt;"));
        assert!(!svg.contains("NaN"));
    }
}
