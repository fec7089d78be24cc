//! Holding files back until they are completely written: a file is ready once its size and
//! version (mtime) have been the same in every look for `settle` seconds. Pure: the caller
//! passes the time.

use std::collections::HashMap;

use super::Found;

/// What was last seen of each path, and since when (milliseconds, caller's clock).
#[derive(Debug, Default)]
pub struct Settler {
    settle_ms: i64,
    seen: HashMap<String, (u64, String, i64)>,
}

impl Settler {
    /// A settler for `settle_seconds` (0: ready at first sight).
    pub fn new(settle_seconds: u32) -> Settler {
        Settler {
            settle_ms: i64::from(settle_seconds) * 1000,
            seen: HashMap::new(),
        }
    }

    /// Takes one complete look (`found`, at `now_ms`) and returns the files that are ready:
    /// unchanged for the settle time. Paths no longer found are forgotten.
    pub fn observe(&mut self, found: &[Found], now_ms: i64) -> Vec<Found> {
        let present: std::collections::HashSet<&str> = found.iter().map(|f| f.path.as_str()).collect();
        self.seen.retain(|path, _| present.contains(path.as_str()));
        let mut ready = Vec::new();
        for f in found {
            let since = match self.seen.get(&f.path) {
                Some((size, version, since)) if *size == f.size && *version == f.version => *since,
                _ => {
                    self.seen.insert(f.path.clone(), (f.size, f.version.clone(), now_ms));
                    now_ms
                }
            };
            if now_ms - since >= self.settle_ms {
                ready.push(f.clone());
            }
        }
        ready
    }

    /// Files seen but not yet ready.
    pub fn waiting(&self, now_ms: i64) -> usize {
        self.seen
            .values()
            .filter(|(_, _, since)| now_ms - since < self.settle_ms)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn f(size: u64, version: &str) -> Found {
        Found::new("a", size, version.into(), None)
    }

    #[test]
    fn a_growing_file_waits_until_it_stops() {
        let mut s = Settler::new(10);
        assert!(s.observe(&[f(1, "t1")], 0).is_empty());
        assert!(s.observe(&[f(2, "t2")], 9_000).is_empty());
        assert!(s.observe(&[f(2, "t2")], 18_999).is_empty());
        assert_eq!(s.waiting(18_999), 1);
        assert_eq!(s.observe(&[f(2, "t2")], 19_000), vec![f(2, "t2")]);
        assert!(s.observe(&[], 20_000).is_empty());
        assert_eq!(s.waiting(20_000), 0);
    }

    proptest! {
        /// A file is never ready while it changed less than the settle time ago.
        #[test]
        fn never_ready_before_settled(changes in proptest::collection::vec((0u64..3, 0i64..4000), 1..30)) {
            let mut s = Settler::new(2);
            let (mut now, mut last_change, mut current) = (0i64, 0i64, (u64::MAX, String::new()));
            for (size, step) in changes {
                now += step;
                let version = format!("v{size}");
                if (size, version.clone()) != current {
                    current = (size, version.clone());
                    last_change = now;
                }
                let ready = s.observe(&[f(size, &version)], now);
                prop_assert_eq!(!ready.is_empty(), now - last_change >= 2000);
            }
        }
    }
}
