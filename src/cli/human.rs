//! Values shown to people: ages, durations, short hashes and one-line parameter summaries.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::engine::params::Params;

use super::table::truncate;

/// Characters of a paramHash shown in tables (the same as the `kubectl get dagruns` column).
pub const SHORT_HASH_LEN: usize = 12;
/// Longest parameter value shown in a summary before it is cut.
const MAX_VALUE_LEN: usize = 32;

/// A duration the way kubectl shows ages, at most two units: `45s`, `3m12s`, `2h5m`, `3d4h`.
pub fn duration(d: SignedDuration) -> String {
    let secs = d.as_secs().max(0);
    let (days, hours, minutes, seconds) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, m) => format!("{m}m{seconds}s"),
        (0, h, m) => format!("{h}h{m}m"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

/// Time elapsed since `time`, e.g. `3m12s`; `-` when unknown.
pub fn age(time: Option<&Time>, now: Timestamp) -> String {
    time.map_or("-".into(), |t| duration(now.duration_since(t.0)))
}

/// How long something ran: until `finished`, or until `now` while it still runs; `-` if it never started.
pub fn elapsed(started: Option<&Time>, finished: Option<&Time>, now: Timestamp) -> String {
    match (started, finished) {
        (Some(s), Some(f)) => duration(f.0.duration_since(s.0)),
        (Some(s), None) => duration(now.duration_since(s.0)),
        (None, _) => "-".into(),
    }
}

pub fn short_hash(hash: &str) -> String {
    hash.chars().take(SHORT_HASH_LEN).collect()
}

/// `key=value` pairs separated by spaces, each value cut to a readable length and quoted when it
/// is empty or contains spaces; the whole cut to `max_len` characters (`None`: no limit).
pub fn params_summary(params: &Params, max_len: Option<usize>) -> String {
    let pairs: Vec<String> = params
        .iter()
        .map(|(key, value)| {
            let value = match max_len {
                Some(_) => truncate(value, MAX_VALUE_LEN),
                None => value.clone(),
            };
            if value.is_empty() || value.contains(char::is_whitespace) {
                format!("{key}={value:?}")
            } else {
                format!("{key}={value}")
            }
        })
        .collect();
    let summary = pairs.join(" ");
    match max_len {
        Some(max) => truncate(&summary, max),
        None => summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn durations_use_at_most_two_units() {
        let d = |s| duration(SignedDuration::from_secs(s));
        assert_eq!(d(0), "0s");
        assert_eq!(d(45), "45s");
        assert_eq!(d(192), "3m12s");
        assert_eq!(d(7_500), "2h5m");
        assert_eq!(d(273_600), "3d4h");
        assert_eq!(d(-5), "0s");
    }

    #[test]
    fn elapsed_runs_until_now_while_unfinished() {
        let start: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let end: Timestamp = "2025-01-01T00:00:07Z".parse().unwrap();
        let now: Timestamp = "2025-01-01T00:01:00Z".parse().unwrap();
        assert_eq!(elapsed(Some(&Time(start)), Some(&Time(end)), now), "7s");
        assert_eq!(elapsed(Some(&Time(start)), None, now), "1m0s");
        assert_eq!(elapsed(None, None, now), "-");
        assert_eq!(age(Some(&Time(start)), now), "1m0s");
    }

    #[test]
    fn summaries_quote_and_cut_values() {
        let p = params(&[("file", "m31.fits"), ("note", "two words"), ("empty", "")]);
        assert_eq!(params_summary(&p, None), "empty=\"\" file=m31.fits note=\"two words\"");
        let long = params(&[("file", &"x".repeat(50))]);
        assert_eq!(params_summary(&long, Some(100)), format!("file={}…", "x".repeat(31)));
        assert_eq!(params_summary(&long, None).len(), 55);
        assert_eq!(params_summary(&p, Some(20)), "empty=\"\" file=m31.f…");
    }

    #[test]
    fn short_hash_keeps_twelve_characters() {
        assert_eq!(short_hash(&"ab".repeat(32)), "abababababab");
        assert_eq!(short_hash("abc"), "abc");
    }
}
