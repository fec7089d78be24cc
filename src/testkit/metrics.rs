//! The Prometheus text exposition format as the operator's `/metrics` serves it: samples with
//! their labels, sums over label sets, and histogram quantiles.

use std::collections::BTreeMap;

/// One sample: metric name, labels, value.
pub type Sample = (String, BTreeMap<String, String>, f64);

/// The samples of one scrape, in the order served (comment lines and unparsable lines dropped).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics(pub Vec<Sample>);

impl Metrics {
    /// Parses an exposition body. Label values are taken between their quotes as written
    /// (the operator's labels hold no commas, quotes or escapes).
    pub fn parse(text: &str) -> Metrics {
        let mut samples = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else { continue };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let mut labels = BTreeMap::new();
                    for pair in rest.trim_end_matches('}').split(',').filter(|p| !p.is_empty()) {
                        if let Some((k, v)) = pair.split_once('=') {
                            labels.insert(k.to_string(), v.trim_matches('"').to_string());
                        }
                    }
                    (name.to_string(), labels)
                }
                None => (series.to_string(), BTreeMap::new()),
            };
            samples.push((name, labels, value));
        }
        Metrics(samples)
    }

    /// Sum over all label sets of the samples named exactly `name` (0 when there is none).
    pub fn sum(&self, name: &str) -> f64 {
        self.0
            .iter()
            .filter(|(n, _, _)| n == name)
            .fold(0.0, |a, (_, _, v)| a + v)
    }

    /// Sums of the samples named `name`, by the value of `label` ("" where it is missing).
    pub fn by_label(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (n, labels, v) in &self.0 {
            if n == name {
                *out.entry(labels.get(label).cloned().unwrap_or_default()).or_insert(0.0) += v;
            }
        }
        out
    }

    /// Quantile `q` (0..=1) of histogram `base` (its `base_bucket{le=..}` samples), by linear
    /// interpolation inside the bucket, in the metric's unit. Beyond the largest finite bucket it
    /// is that bound. `None` when the histogram is missing or empty.
    pub fn histogram_quantile(&self, base: &str, q: f64) -> Option<f64> {
        let bucket = format!("{base}_bucket");
        let mut buckets: Vec<(f64, f64)> = self
            .0
            .iter()
            .filter(|(n, _, _)| *n == bucket)
            .filter_map(|(_, labels, v)| {
                let le = labels.get("le")?;
                let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
                Some((bound, *v))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total = buckets.last()?.1;
        if total == 0.0 {
            return None;
        }
        let target = q * total;
        let (mut prev_bound, mut prev_count) = (0.0, 0.0);
        for (bound, count) in buckets {
            if count >= target {
                if bound.is_infinite() {
                    return Some(prev_bound);
                }
                let width = count - prev_count;
                let frac = if width > 0.0 {
                    (target - prev_count) / width
                } else {
                    1.0
                };
                return Some(prev_bound + (bound - prev_bound) * frac);
            }
            (prev_bound, prev_count) = (bound, count);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"# HELP kubedag_api_writes_total API writes.
# TYPE kubedag_api_writes_total counter
kubedag_api_writes_total{kind="job"} 10
kubedag_api_writes_total{kind="status"} 5
kubedag_api_writes_total{kind="job",verb="delete"} 2
kubedag_reconciles_total 7
kubedag_reconciles_total_extra 100
lat_bucket{le="0.1"} 0
lat_bucket{le="0.5"} 50
lat_bucket{le="1"} 100
lat_bucket{le="+Inf"} 100
tail_bucket{le="1"} 1
tail_bucket{le="+Inf"} 10
broken line
"#;

    #[test]
    fn sums_exact_names_over_label_sets() {
        let m = Metrics::parse(BODY);
        assert_eq!(m.sum("kubedag_api_writes_total"), 17.0);
        assert_eq!(
            m.sum("kubedag_reconciles_total"),
            7.0,
            "a longer name is another metric"
        );
        assert_eq!(m.sum("missing"), 0.0);
        let by_kind = m.by_label("kubedag_api_writes_total", "kind");
        assert_eq!(by_kind.get("job"), Some(&12.0));
        assert_eq!(by_kind.get("status"), Some(&5.0));
        assert_eq!(m.by_label("kubedag_reconciles_total", "kind").get(""), Some(&7.0));
    }

    #[test]
    fn interpolates_histogram_quantiles_inside_buckets() {
        let m = Metrics::parse(BODY);
        let p50 = m.histogram_quantile("lat", 0.5).unwrap();
        assert!((p50 - 0.5).abs() < 1e-9, "{p50}");
        let p75 = m.histogram_quantile("lat", 0.75).unwrap();
        assert!((p75 - 0.75).abs() < 1e-9, "{p75}");
        assert_eq!(
            m.histogram_quantile("tail", 0.99),
            Some(1.0),
            "beyond the last finite bound"
        );
        assert_eq!(m.histogram_quantile("missing", 0.5), None);
        assert_eq!(
            Metrics::parse("e_bucket{le=\"+Inf\"} 0").histogram_quantile("e", 0.5),
            None
        );
    }
}
