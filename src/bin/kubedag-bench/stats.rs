//! Statistics of the recorded figures: nearest-rank distributions, rates between events, and the
//! two-decimal rounding of the report.

use serde::Serialize;

/// A distribution: count, mean and nearest-rank percentiles, in the unit of its values.
#[derive(Serialize, Default, Clone, Debug, PartialEq)]
pub struct Dist {
    pub count: usize,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Nearest-rank percentiles of `values` (all zero when empty).
pub fn dist(mut values: Vec<f64>) -> Dist {
    if values.is_empty() {
        return Dist::default();
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let rank = |q: f64| values[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    Dist {
        count: n,
        mean: values.iter().sum::<f64>() / n as f64,
        p50: rank(0.50),
        p90: rank(0.90),
        p99: rank(0.99),
        max: values[n - 1],
    }
}

/// `x` rounded to two decimals.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// [`dist`] of durations in seconds, in milliseconds rounded to two decimals.
pub fn ms_dist(seconds: Vec<f64>) -> Dist {
    rounded(dist(seconds.into_iter().map(|s| s * 1000.0).collect()))
}

/// [`dist`] of durations in seconds, in seconds rounded to two decimals.
pub fn s_dist(seconds: Vec<f64>) -> Dist {
    rounded(dist(seconds))
}

fn rounded(d: Dist) -> Dist {
    Dist {
        mean: round2(d.mean),
        p50: round2(d.p50),
        p90: round2(d.p90),
        p99: round2(d.p99),
        max: round2(d.max),
        ..d
    }
}

/// Events per second between the first and the last of `times` (seconds; sorted in place), and
/// over the central 90 % of them. `None` where fewer than two events or no time passed.
pub fn rates(times: &mut [f64]) -> (Option<f64>, Option<f64>) {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    if n < 2 {
        return (None, None);
    }
    let span = times[n - 1] - times[0];
    let overall = (span > 0.0).then(|| (n - 1) as f64 / span);
    let (lo, hi) = ((n as f64 * 0.05) as usize, ((n as f64 * 0.95) as usize).min(n - 1));
    let window = (hi > lo && times[hi] > times[lo]).then(|| (hi - lo) as f64 / (times[hi] - times[lo]));
    (overall, window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let d = dist((1..=100).map(f64::from).rev().collect());
        assert_eq!((d.count, d.p50, d.p90, d.p99, d.max), (100, 50.0, 90.0, 99.0, 100.0));
        assert_eq!(d.mean, 50.5);
        assert_eq!(dist(vec![]), Dist::default());
        assert_eq!(dist(vec![7.0]).p99, 7.0);
    }

    #[test]
    fn millisecond_distributions_are_rounded() {
        let d = ms_dist(vec![0.001234, 0.002]);
        assert_eq!((d.p50, d.max), (1.23, 2.0));
        assert_eq!(s_dist(vec![1.005_1]).p50, 1.01);
    }

    #[test]
    fn rates_over_the_whole_span_and_the_central_window() {
        let mut times: Vec<f64> = (0..=100).map(|i| f64::from(i) / 10.0).collect();
        let (overall, window) = rates(&mut times);
        assert!((overall.unwrap() - 10.0).abs() < 1e-9);
        assert!((window.unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(rates(&mut [1.0]), (None, None));
        assert_eq!(rates(&mut [1.0, 1.0]).0, None, "no time passed");
    }
}
