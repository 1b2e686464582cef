//! Failover timelines as one self-contained SVG, for docs/BENCHMARKS.md.
//!
//! A timeline is read faster than a table: each panel is one failover of one tool (carpd,
//! ucarp, keepalived) and shows, around the fault instant, who answered the client's ARP and
//! ICMP probes and who sent advertisements. Plain std string building, no dependencies.

use std::fmt::Write as _;

/// What a row shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// Replies to the client's 1 ms ARP probe: drawn as solid bars where replies are continuous.
    ArpReplies,
    /// Replies to the client's 1 ms ICMP echo probe: bars like ARP, another colour.
    IcmpReplies,
    /// Advertisements on the wire: one thin tick per packet.
    Adverts,
}

/// One horizontal lane of a panel, e.g. "r1 ARP replies".
#[derive(Debug, Clone)]
pub struct TimelineRow {
    pub label: String,
    pub kind: RowKind,
    /// Event times in seconds relative to the fault (negative = before it), any order.
    pub events: Vec<f64>,
}

/// One failover: a panel of the figure.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Panel title, e.g. "carpd (advbase 1): SIGKILL of the master daemon".
    pub title: String,
    /// Label of the vertical fault marker at t = 0, e.g. "SIGKILL".
    pub fault_label: String,
    /// Visible time window in seconds relative to the fault, (start, end), start < end.
    pub window: (f64, f64),
    pub rows: Vec<TimelineRow>,
}

// Layout, in px. The label column width depends on the longest row label (see
// `label_column`); everything else is fixed so panels line up.
const WIDTH: f64 = 900.0;
const MARGIN: f64 = 10.0;
// Room right of the plot area for the last tick label, which is centred on its tick.
const RIGHT_PAD: f64 = 24.0;
const LABEL_COL_MIN: f64 = 150.0;
const LABEL_COL_MAX: f64 = 320.0;
// Rough advance of a 12 px sans-serif glyph; generous so labels never run into the bars.
const CHAR_W: f64 = 6.8;
const LEGEND_H: f64 = 24.0;
const PANEL_GAP: f64 = 16.0;
const TITLE_H: f64 = 18.0;
const MARKER_LABEL_H: f64 = 14.0;
const LANE_H: f64 = 20.0;
const BAR_H: f64 = 12.0;
const AXIS_H: f64 = 28.0;

/// Probes run every 1 ms, so a gap of 5 ms means replies really stopped.
const PROBE_MAX_GAP: f64 = 0.005;

const ARP_COLOUR: &str = "#1f77b4";
const ICMP_COLOUR: &str = "#2ca02c";
const ADVERT_COLOUR: &str = "#ff7f0e";
const FAULT_COLOUR: &str = "#d62728";

/// Merges sorted-or-unsorted event times into [start, end] segments: events closer than
/// `max_gap` seconds to the previous one extend the current segment; an isolated event
/// becomes a segment of zero length (drawn with a minimum visible width).
pub fn segments(events: &[f64], max_gap: f64) -> Vec<(f64, f64)> {
    let mut times: Vec<f64> = events.iter().copied().filter(|t| t.is_finite()).collect();
    times.sort_by(f64::total_cmp);
    let mut out = Vec::new();
    let mut iter = times.into_iter();
    let Some(first) = iter.next() else {
        return out;
    };
    let (mut start, mut end) = (first, first);
    for t in iter {
        // Duplicates always merge, even with a zero or nonsensical max_gap.
        if t - end < max_gap || t <= end {
            end = t;
        } else {
            out.push((start, end));
            (start, end) = (t, t);
        }
    }
    out.push((start, end));
    out
}

/// Renders the panels stacked vertically into one SVG document (a String starting with
/// `<svg` and ending with `</svg>\n`).
pub fn render_svg(panels: &[Timeline]) -> String {
    let mut svg = Svg::default();
    if panels.is_empty() {
        svg.open(300.0, 40.0);
        svg.put(format_args!(
            "<text x=\"{MARGIN}\" y=\"25\" fill=\"#555\">no data</text>\n"
        ));
        return svg.close();
    }

    let x0 = MARGIN + label_column(panels);
    let x1 = WIDTH - RIGHT_PAD;
    let height = LEGEND_H
        + panels
            .iter()
            .map(|p| panel_height(p.rows.len()))
            .sum::<f64>()
        + MARGIN;
    svg.open(WIDTH, height);
    legend(&mut svg, x0);

    let mut top = LEGEND_H;
    for panel in panels {
        svg.put(format_args!("<g>\n"));
        panel_body(&mut svg, panel, top, x0, x1);
        svg.put(format_args!("</g>\n"));
        top += panel_height(panel.rows.len());
    }
    svg.close()
}

/// Width of the row-label column: the longest label across all panels (so plot areas of
/// all panels line up), bounded so the plot keeps most of the width.
fn label_column(panels: &[Timeline]) -> f64 {
    let longest = panels
        .iter()
        .flat_map(|p| p.rows.iter())
        .map(|r| r.label.chars().count())
        .max()
        .unwrap_or(0);
    (longest as f64 * CHAR_W + 16.0).clamp(LABEL_COL_MIN, LABEL_COL_MAX)
}

/// Labels too long for the bounded column are cut, or they would run into the bars.
fn fit_label(label: &str) -> String {
    let max = ((LABEL_COL_MAX - 16.0) / CHAR_W) as usize;
    if label.chars().count() <= max {
        label.to_owned()
    } else {
        let mut cut: String = label.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// A panel with no rows still gets one (empty) lane so it does not collapse.
fn lanes(rows: usize) -> usize {
    rows.max(1)
}

fn panel_height(rows: usize) -> f64 {
    PANEL_GAP + TITLE_H + MARKER_LABEL_H + lanes(rows) as f64 * LANE_H + AXIS_H
}

fn legend(svg: &mut Svg, x0: f64) {
    let y = 8.0;
    let mut x = x0;
    svg.put(format_args!("<g font-size=\"11\">\n"));
    for (colour, text, width) in [
        (ARP_COLOUR, "ARP replies", 14.0),
        (ICMP_COLOUR, "ICMP replies", 14.0),
        (ADVERT_COLOUR, "adverts", 2.0),
    ] {
        svg.put(format_args!(
            "<rect x=\"{}\" y=\"{y}\" width=\"{width}\" height=\"10\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"17\">{text}</text>\n",
            num(x),
            num(x + width + 5.0),
        ));
        x += width + 5.0 + text.len() as f64 * CHAR_W + 18.0;
    }
    svg.put(format_args!(
        "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{}\" stroke=\"{FAULT_COLOUR}\" \
         stroke-dasharray=\"3 2\"/><text x=\"{}\" y=\"17\">fault</text>\n",
        num(x + 1.0),
        num(x + 1.0),
        y + 10.0,
        num(x + 7.0),
    ));
    svg.put(format_args!("</g>\n"));
}

fn panel_body(svg: &mut Svg, panel: &Timeline, top: f64, x0: f64, x1: f64) {
    let (start, end) = sane_window(panel);
    let span = end - start;
    let to_x = |t: f64| x0 + (t - start) / span * (x1 - x0);
    let lanes_top = top + PANEL_GAP + TITLE_H + MARKER_LABEL_H;
    let lanes_bottom = lanes_top + lanes(panel.rows.len()) as f64 * LANE_H;
    let ticks = Ticks::for_window(start, end);

    svg.put(format_args!(
        "<text x=\"{MARGIN}\" y=\"{}\" font-size=\"13\" font-weight=\"bold\">{}</text>\n",
        num(top + PANEL_GAP + 13.0),
        escape(&panel.title),
    ));

    // Zebra lanes help the eye follow a row across a wide plot.
    for i in 0..lanes(panel.rows.len()) {
        if i % 2 == 0 {
            svg.put(format_args!(
                "<rect x=\"{MARGIN}\" y=\"{}\" width=\"{}\" height=\"{LANE_H}\" fill=\"#f3f3f3\"/>\n",
                num(lanes_top + i as f64 * LANE_H),
                num(x1 - MARGIN),
            ));
        }
    }

    // Grid under the data, at the axis ticks.
    svg.put(format_args!("<g fill=\"#dddddd\">\n"));
    for &t in &ticks.values {
        svg.put(format_args!(
            "<rect x=\"{}\" y=\"{}\" width=\"1\" height=\"{}\"/>\n",
            num(to_x(t) - 0.5),
            num(lanes_top),
            num(lanes_bottom - lanes_top),
        ));
    }
    svg.put(format_args!("</g>\n"));

    if panel.rows.is_empty() {
        svg.put(format_args!(
            "<text x=\"{}\" y=\"{}\" fill=\"#555\">(no rows)</text>\n",
            num(x0 + 4.0),
            num(lanes_top + 14.0),
        ));
    }

    for (i, row) in panel.rows.iter().enumerate() {
        let lane_top = lanes_top + i as f64 * LANE_H;
        svg.put(format_args!(
            "<text x=\"{MARGIN}\" y=\"{}\">{}</text>\n",
            num(lane_top + 14.0),
            escape(&fit_label(&row.label)),
        ));
        let (class, colour) = match row.kind {
            RowKind::ArpReplies => ("arp", ARP_COLOUR),
            RowKind::IcmpReplies => ("icmp", ICMP_COLOUR),
            RowKind::Adverts => ("adv", ADVERT_COLOUR),
        };
        svg.put(format_args!("<g class=\"{class}\" fill=\"{colour}\">\n"));
        let bar_y = lane_top + (LANE_H - BAR_H) / 2.0;
        match row.kind {
            RowKind::ArpReplies | RowKind::IcmpReplies => {
                for (s, e) in segments(&row.events, PROBE_MAX_GAP) {
                    if e < start || s > end {
                        continue;
                    }
                    let bx = to_x(s.max(start));
                    let width = (to_x(e.min(end)) - bx).max(1.0);
                    // A minimum-width bar at the right edge must not stick out of the plot.
                    let bx = bx.min(x1 - width);
                    svg.put(format_args!(
                        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{BAR_H}\"/>\n",
                        num(bx),
                        num(bar_y),
                        num(width),
                    ));
                }
            }
            RowKind::Adverts => {
                for &t in &row.events {
                    if !t.is_finite() || t < start || t > end {
                        continue;
                    }
                    svg.put(format_args!(
                        "<rect x=\"{}\" y=\"{}\" width=\"1\" height=\"{}\"/>\n",
                        num((to_x(t) - 0.5).clamp(x0, x1 - 1.0)),
                        num(lane_top + 2.0),
                        num(LANE_H - 4.0),
                    ));
                }
            }
        }
        svg.put(format_args!("</g>\n"));
    }

    axis(svg, &ticks, &to_x, lanes_bottom, x0, x1);

    // The fault marker goes last so no bar hides it; a window that excludes t = 0 has none.
    if start <= 0.0 && 0.0 <= end {
        let fx = to_x(0.0);
        // Keep the label inside the plot area when the fault is near an edge.
        let anchor = if fx - x0 < 40.0 {
            "start"
        } else if x1 - fx < 40.0 {
            "end"
        } else {
            "middle"
        };
        svg.put(format_args!(
            "<line x1=\"{fx}\" y1=\"{}\" x2=\"{fx}\" y2=\"{}\" stroke=\"{FAULT_COLOUR}\" \
             stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>\n\
             <text x=\"{fx}\" y=\"{}\" font-size=\"11\" fill=\"{FAULT_COLOUR}\" \
             text-anchor=\"{anchor}\">{}</text>\n",
            num(lanes_top - 2.0),
            num(lanes_bottom + 4.0),
            num(lanes_top - 4.0),
            escape(&panel.fault_label),
            fx = num(fx),
        ));
    }
}

fn axis(svg: &mut Svg, ticks: &Ticks, to_x: &dyn Fn(f64) -> f64, y: f64, x0: f64, x1: f64) {
    svg.put(format_args!(
        "<g fill=\"#333\" font-size=\"11\">\n\
         <rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"1\"/>\n\
         <text x=\"{MARGIN}\" y=\"{}\" fill=\"#555\">time from fault ({})</text>\n",
        num(x0),
        num(y),
        num(x1 - x0),
        num(y + 16.0),
        ticks.unit,
    ));
    for &t in &ticks.values {
        let x = to_x(t);
        svg.put(format_args!(
            "<rect x=\"{}\" y=\"{}\" width=\"1\" height=\"4\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            num(x - 0.5),
            num(y),
            num(x),
            num(y + 16.0),
            ticks.label(t),
        ));
    }
    svg.put(format_args!("</g>\n"));
}

/// The panel's window if usable; otherwise one fitted to its events (or ±1 s), so a bad
/// window never puts NaN or infinity into the coordinates.
fn sane_window(panel: &Timeline) -> (f64, f64) {
    let (start, end) = panel.window;
    let span = end - start;
    if span.is_finite() && span > 0.0 {
        return (start, end);
    }
    let finite = panel
        .rows
        .iter()
        .flat_map(|r| r.events.iter().copied())
        .filter(|t| t.is_finite());
    let (lo, hi) = finite.fold((0.0f64, 0.0f64), |(lo, hi), t| (lo.min(t), hi.max(t)));
    let pad = (hi - lo) * 0.05;
    if (hi - lo).is_finite() && hi - lo > 0.0 && pad.is_finite() {
        (lo - pad, hi + pad)
    } else {
        (-1.0, 1.0)
    }
}

/// Axis ticks at a "nice" 1-2-5 step giving about 5–12 ticks over the window.
struct Ticks {
    values: Vec<f64>,
    unit: &'static str,
    scale: f64,
    decimals: usize,
}

impl Ticks {
    fn for_window(start: f64, end: f64) -> Ticks {
        let span = end - start;
        let count = |step: f64| (end / step).floor() - (start / step).ceil() + 1.0;
        // Steps 1e-6 s … 5e9 s; the first giving at most 12 ticks gives at least ~5, as
        // each candidate is at most 2.5 times the previous one.
        let (mut step, mut exp) = (5e9, 9);
        'search: for e in -6..=9 {
            for m in [1.0, 2.0, 5.0] {
                let s = m * 10f64.powi(e);
                if count(s) <= 12.0 {
                    (step, exp) = (s, e);
                    break 'search;
                }
            }
        }
        let (unit, scale, unit_exp) = if span < 2.0 {
            ("ms", 1000.0, exp + 3)
        } else {
            ("s", 1.0, exp)
        };
        let first = (start / step).ceil() as i64;
        let last = (end / step).floor() as i64;
        let values = (first..=last).map(|i| i as f64 * step).collect();
        Ticks {
            values,
            unit,
            scale,
            decimals: usize::try_from(-unit_exp).unwrap_or(0),
        }
    }

    fn label(&self, t: f64) -> String {
        let text = format!("{:.*}", self.decimals, t * self.scale);
        // i * step can land a hair below zero; "-0" reads like a bug.
        if text
            .trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
        {
            text.trim_start_matches('-').to_owned()
        } else {
            text
        }
    }
}

/// A coordinate with at most 2 decimals, trailing zeros dropped, never NaN/inf.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "0".to_owned();
    }
    let text = format!("{v:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    match text {
        "-0" | "" => "0".to_owned(),
        t => t.to_owned(),
    }
}

/// Escapes text for element content and attribute values; drops characters XML forbids.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if c < ' ' || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

#[derive(Default)]
struct Svg {
    out: String,
}

impl Svg {
    fn put(&mut self, args: std::fmt::Arguments<'_>) {
        // Writing into a String cannot fail.
        let _ = self.out.write_fmt(args);
    }

    fn open(&mut self, width: f64, height: f64) {
        let (w, h) = (num(width), num(height));
        self.put(format_args!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
             <rect width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>\n"
        ));
    }

    fn close(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str, kind: RowKind, events: Vec<f64>) -> TimelineRow {
        TimelineRow {
            label: label.to_owned(),
            kind,
            events,
        }
    }

    fn panel(title: &str, window: (f64, f64), rows: Vec<TimelineRow>) -> Timeline {
        Timeline {
            title: title.to_owned(),
            fault_label: "SIGKILL".to_owned(),
            window,
            rows,
        }
    }

    /// Probe replies every 1 ms over [from, to).
    fn probes(from: f64, to: f64) -> Vec<f64> {
        let n = ((to - from) * 1000.0).round() as i64;
        (0..n).map(|i| from + i as f64 * 0.001).collect()
    }

    /// The body of the first `<g class="{class}" ...>` group.
    fn group<'a>(svg: &'a str, class: &str) -> &'a str {
        let open = format!("<g class=\"{class}\"");
        let start = svg.find(&open).expect("group present");
        let len = svg[start..].find("</g>").expect("group closed");
        &svg[start..start + len]
    }

    fn attr(element: &str, name: &str) -> f64 {
        let key = format!(" {name}=\"");
        let start = element.find(&key).expect("attribute present") + key.len();
        let len = element[start..].find('"').expect("attribute closed");
        element[start..start + len].parse().expect("number")
    }

    fn plot_area(panels: &[Timeline]) -> (f64, f64) {
        (MARGIN + label_column(panels), WIDTH - RIGHT_PAD)
    }

    #[test]
    fn segments_merge_probe_replies_and_split_at_gaps() {
        let mut events = probes(-0.5, 0.0);
        events.extend(probes(0.1, 0.3));
        let segs = segments(&events, PROBE_MAX_GAP);
        assert_eq!(segs.len(), 2, "{segs:?}");
        assert!((segs[0].0 + 0.5).abs() < 1e-9 && (segs[0].1 + 0.001).abs() < 1e-9);
        assert!((segs[1].0 - 0.1).abs() < 1e-9 && (segs[1].1 - 0.299).abs() < 1e-9);
    }

    #[test]
    fn segments_sort_and_skip_non_finite() {
        let events = [
            0.3,
            f64::NAN,
            0.0,
            0.002,
            f64::INFINITY,
            0.001,
            f64::NEG_INFINITY,
        ];
        assert_eq!(segments(&events, 0.005), vec![(0.0, 0.002), (0.3, 0.3)]);
        assert!(segments(&[], 0.005).is_empty());
        assert!(segments(&[f64::NAN], 0.005).is_empty());
        // Isolated events stay zero-length segments; duplicates merge.
        assert_eq!(
            segments(&[1.0, 1.0, 2.0], 0.005),
            vec![(1.0, 1.0), (2.0, 2.0)]
        );
    }

    #[test]
    fn document_shape_text_and_escaping() {
        let mut p = panel(
            "keepalived <&> \"x\"",
            (-1.0, 1.0),
            vec![
                row("r1 <&> ARP", RowKind::ArpReplies, probes(-1.0, 0.0)),
                row("r2 ICMP", RowKind::IcmpReplies, vec![f64::NAN, 0.5]),
                row("adverts", RowKind::Adverts, vec![f64::INFINITY, -0.5]),
            ],
        );
        p.fault_label = "link <down>".to_owned();
        let other = panel("carpd (advbase 1)", (-0.2, 0.8), vec![]);
        let svg = render_svg(&[p, other]);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.ends_with("</svg>\n"));
        assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains("viewBox=\"0 0 900 "));
        assert!(svg.contains("keepalived &lt;&amp;&gt; &quot;x&quot;"));
        assert!(svg.contains(">r1 &lt;&amp;&gt; ARP<"));
        assert!(svg.contains(">r2 ICMP<"));
        assert!(svg.contains("link &lt;down&gt;"));
        assert!(svg.contains("carpd (advbase 1)"));
        assert!(svg.contains("SIGKILL"));
        assert!(svg.contains("(no rows)"));
        assert!(!svg.contains("<&>") && !svg.contains("<down>"));
        let lower = svg.to_lowercase();
        assert!(!lower.contains("nan") && !lower.contains("inf"), "{svg}");
    }

    #[test]
    fn tags_are_balanced() {
        let svg = render_svg(&[
            panel(
                "a",
                (-1.0, 1.0),
                vec![row("x", RowKind::Adverts, vec![0.1])],
            ),
            panel("b", (0.5, 2.0), vec![]),
        ]);
        assert_eq!(svg.matches("<g").count(), svg.matches("</g>").count());
        assert_eq!(svg.matches("<svg").count(), 1);
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        // Every other element is self-closing.
        let opened = svg.matches('<').count();
        let closing = svg.matches("</").count();
        let self_closed = svg.matches("/>").count();
        let paired = svg.matches("<g").count() + svg.matches("<text").count() + 1;
        assert_eq!(opened - closing, paired + self_closed, "{svg}");
    }

    #[test]
    fn bars_follow_the_window_mapping() {
        let panels = [panel(
            "t",
            (-1.0, 1.0),
            vec![row("arp", RowKind::ArpReplies, probes(0.0, 0.5))],
        )];
        let (x0, x1) = plot_area(&panels);
        let svg = render_svg(&panels);
        let bars = group(&svg, "arp");
        assert_eq!(bars.matches("<rect").count(), 1, "{bars}");
        let x = attr(bars, "x");
        let width = attr(bars, "width");
        assert!((x - (x0 + x1) / 2.0).abs() <= 0.01, "x {x}");
        // 0 .. 0.499 s of a 2 s window.
        let expected = 0.499 / 2.0 * (x1 - x0);
        assert!(
            (width - expected).abs() <= 0.01,
            "width {width} vs {expected}"
        );
    }

    #[test]
    fn bars_are_clipped_and_at_least_one_pixel() {
        let mut icmp = probes(-2.0, -0.5);
        icmp.push(0.999_999); // isolated reply at the right edge
        icmp.push(3.0); // outside
        let panels = [panel(
            "t",
            (-1.0, 1.0),
            vec![row("icmp", RowKind::IcmpReplies, icmp)],
        )];
        let (x0, x1) = plot_area(&panels);
        let svg = render_svg(&panels);
        let bars: Vec<&str> = group(&svg, "icmp").split("<rect").skip(1).collect();
        assert_eq!(bars.len(), 2, "{bars:?}");
        assert!((attr(bars[0], "x") - x0).abs() <= 0.01);
        let expected = 0.499 / 2.0 * (x1 - x0);
        assert!((attr(bars[0], "width") - expected).abs() <= 0.01);
        assert_eq!(attr(bars[1], "width"), 1.0);
        assert!(attr(bars[1], "x") + 1.0 <= x1 + 0.01);
    }

    #[test]
    fn adverts_outside_the_window_are_not_drawn() {
        let svg = render_svg(&[panel(
            "t",
            (-1.0, 1.0),
            vec![row(
                "adv",
                RowKind::Adverts,
                vec![-3.0, -0.9, 0.0, 0.5, 1.5, f64::NAN],
            )],
        )]);
        assert_eq!(group(&svg, "adv").matches("<rect").count(), 3);
    }

    #[test]
    fn ticks_are_nice_and_in_the_right_unit() {
        let t = Ticks::for_window(-0.5, 1.0);
        assert_eq!(t.unit, "ms");
        assert_eq!(t.values.len(), 8); // every 200 ms from -400
        assert_eq!(t.label(t.values[0]), "-400");
        assert_eq!(t.label(t.values[2]), "0");
        // A 2 s span is no longer "< 2 s": seconds.
        let t = Ticks::for_window(-1.0, 1.0);
        assert_eq!(t.unit, "s");
        assert_eq!(t.values.len(), 11);
        assert_eq!(t.label(t.values[0]), "-1.0");
        assert_eq!(t.label(t.values[5]), "0.0");
        let t = Ticks::for_window(-5.0, 10.0);
        assert_eq!(t.unit, "s");
        assert!((5..=12).contains(&t.values.len()), "{}", t.values.len());
        let t = Ticks::for_window(-0.003, 0.004);
        assert_eq!(t.unit, "ms");
        assert!((5..=12).contains(&t.values.len()));
        assert_eq!(t.label(-0.001), "-1");
        // Sub-millisecond steps get decimals.
        let t = Ticks::for_window(-0.002, 0.003);
        assert_eq!(t.label(-0.0005), "-0.5");
        for (start, end) in [(-0.01, 0.02), (-3.0, 3.0), (-100.0, 400.0), (0.1, 0.35)] {
            let n = Ticks::for_window(start, end).values.len();
            assert!((5..=12).contains(&n), "{start}..{end}: {n}");
        }
    }

    #[test]
    fn degenerate_input_stays_valid() {
        let svg = render_svg(&[]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("no data"));
        for window in [
            (1.0, 1.0),
            (2.0, -2.0),
            (f64::NAN, 1.0),
            (-f64::MAX, f64::MAX),
        ] {
            let svg = render_svg(&[panel(
                "w",
                window,
                vec![row("a", RowKind::ArpReplies, vec![0.0, 0.001, 0.4])],
            )]);
            let lower = svg.to_lowercase();
            assert!(
                !lower.contains("nan") && !lower.contains("inf"),
                "{window:?}"
            );
        }
    }

    #[test]
    fn number_formatting() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(1.234_56), "1.23");
        assert_eq!(num(-0.001), "0");
        assert_eq!(num(10.50), "10.5");
        assert_eq!(num(f64::NAN), "0");
    }

    /// Manual check: writes /tmp/plot-sample.svg (render it with rsvg-convert to look at it).
    #[test]
    #[ignore]
    fn write_sample() {
        let carpd = panel(
            "carpd (advbase 1): SIGKILL of the master daemon",
            (-0.5, 1.5),
            vec![
                row("r1 ARP replies", RowKind::ArpReplies, probes(-0.5, 0.0)),
                row("r2 ARP replies", RowKind::ArpReplies, probes(0.012, 1.5)),
                row("r1 ICMP replies", RowKind::IcmpReplies, probes(-0.5, 0.0)),
                row("r2 ICMP replies", RowKind::IcmpReplies, probes(0.013, 1.5)),
                row(
                    "r1 adverts",
                    RowKind::Adverts,
                    (0..15).map(|i| -0.5 + i as f64 * 0.033).collect(),
                ),
                row(
                    "r2 adverts",
                    RowKind::Adverts,
                    (0..50).map(|i| 0.011 + i as f64 * 0.03).collect(),
                ),
            ],
        );
        let mut ucarp = panel(
            "ucarp (advbase 1): link <down> & \"pulled\"",
            (-1.0, 5.0),
            vec![
                row("r1 ARP replies", RowKind::ArpReplies, probes(-1.0, 0.0)),
                row("r2 ARP replies", RowKind::ArpReplies, probes(3.1, 5.0)),
                row("r2 ICMP replies", RowKind::IcmpReplies, vec![3.2, 3.9]),
                row("r1 adverts", RowKind::Adverts, vec![-1.0, 0.0]),
                row("r2 adverts", RowKind::Adverts, vec![3.1, 4.1, 5.1]),
            ],
        );
        ucarp.fault_label = "ip link set down".to_owned();
        let svg = render_svg(&[carpd, ucarp]);
        std::fs::write("/tmp/plot-sample.svg", svg).expect("write sample");
    }
}
