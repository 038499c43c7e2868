//! The geometry of the small trend lines beside each vital sign: recent readings placed in an
//! SVG box by time and value, as the `points` of a `<polyline>`.
//!
//! Kept apart from the view so the arithmetic (time on x, value upwards, a minimum span so
//! noise stays flat) is tested without a browser.

/// The drawing box, in SVG user units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub width: f64,
    pub height: f64,
    /// Space kept free on every side so the line's stroke and end dot are not clipped.
    pub margin: f64,
}

/// A trend line laid out in a [`Frame`].
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    /// Oldest first.
    pub points: Vec<(f64, f64)>,
}

impl Trend {
    /// Places `(time, value)` samples (oldest first) in `frame`: time runs left to right in
    /// proportion, and the values span the height, or at least `min_span` of it, centred, so
    /// that small changes look small. Samples at one time are spread evenly instead.
    pub fn layout(samples: &[(i64, f64)], frame: Frame, min_span: f64) -> Trend {
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            return Trend { points: Vec::new() };
        };
        let inner_width = frame.width - 2.0 * frame.margin;
        let inner_height = frame.height - 2.0 * frame.margin;
        let duration = (last.0 - first.0) as f64;
        let x = |index: usize, at: i64| {
            let fraction = if duration > 0.0 {
                (at - first.0) as f64 / duration
            } else if samples.len() > 1 {
                index as f64 / (samples.len() - 1) as f64
            } else {
                1.0
            };
            frame.margin + fraction * inner_width
        };
        let low = samples.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
        let high = samples
            .iter()
            .map(|s| s.1)
            .fold(f64::NEG_INFINITY, f64::max);
        let span = match (high - low).max(min_span) {
            span if span > 0.0 => span,
            // One value only and no minimum: any span centres it.
            _ => 1.0,
        };
        let bottom = (low + high) / 2.0 - span / 2.0;
        let y = |value: f64| frame.margin + (1.0 - (value - bottom) / span) * inner_height;
        Trend {
            points: samples
                .iter()
                .enumerate()
                .map(|(index, &(at, value))| (x(index, at), y(value)))
                .collect(),
        }
    }

    /// The `points` attribute of an SVG `<polyline>`: `x,y x,y ...`, to one decimal.
    pub fn svg_points(&self) -> String {
        self.points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Where the newest sample is drawn, for the dot at the end of the line.
    pub fn last(&self) -> Option<(f64, f64)> {
        self.points.last().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Frame = Frame {
        width: 64.0,
        height: 20.0,
        margin: 2.0,
    };

    #[test]
    fn time_runs_left_to_right_in_proportion() {
        let trend = Trend::layout(&[(0, 1.0), (100, 2.0), (400, 3.0)], FRAME, 0.0);
        let xs: Vec<f64> = trend.points.iter().map(|p| p.0).collect();
        assert_eq!(xs, [2.0, 17.0, 62.0]);
    }

    #[test]
    fn higher_values_are_drawn_higher_up() {
        let trend = Trend::layout(&[(0, 10.0), (1, 20.0)], FRAME, 0.0);
        // SVG's y grows downwards: the lowest value sits at the bottom margin, the highest at
        // the top one.
        assert_eq!(trend.points[0].1, 18.0);
        assert_eq!(trend.points[1].1, 2.0);
    }

    #[test]
    fn small_changes_stay_small_within_the_minimum_span() {
        let trend = Trend::layout(&[(0, 76.0), (1, 78.0)], FRAME, 32.0);
        let rise = trend.points[0].1 - trend.points[1].1;
        // 2 of a 32-wide span, over 16 units of height.
        assert!((rise - 1.0).abs() < 1e-9, "{rise}");
        let middle = FRAME.height / 2.0;
        assert!((trend.points[0].1 - (middle + 0.5)).abs() < 1e-9);
    }

    #[test]
    fn a_constant_series_is_a_flat_line_in_the_middle() {
        let trend = Trend::layout(&[(0, 97.0), (60, 97.0), (120, 97.0)], FRAME, 0.0);
        assert!(trend.points.iter().all(|p| (p.1 - 10.0).abs() < 1e-9));
    }

    #[test]
    fn one_sample_is_a_dot_at_the_right_edge() {
        let trend = Trend::layout(&[(5, 12.0)], FRAME, 4.0);
        assert_eq!(trend.points, [(62.0, 10.0)]);
        assert_eq!(trend.last(), Some((62.0, 10.0)));
        assert_eq!(Trend::layout(&[], FRAME, 4.0).svg_points(), "");
    }

    #[test]
    fn samples_at_one_time_are_spread_evenly() {
        let trend = Trend::layout(&[(7, 1.0), (7, 2.0), (7, 3.0)], FRAME, 0.0);
        let xs: Vec<f64> = trend.points.iter().map(|p| p.0).collect();
        assert_eq!(xs, [2.0, 32.0, 62.0]);
    }

    #[test]
    fn points_format_for_svg() {
        let trend = Trend::layout(&[(0, 1.0), (3, 2.0)], FRAME, 0.0);
        assert_eq!(trend.svg_points(), "2.0,18.0 62.0,2.0");
    }
}
