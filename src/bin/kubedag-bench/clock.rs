//! The driver's clock and progress log: monotonic seconds since start (every recorded instant
//! uses it) and RFC 3339 wall-clock stamps for the objects it writes.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Seconds since the driver started (monotonic; the first call starts the clock).
pub fn now() -> f64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// One progress line on stderr, stamped with [`now`].
pub fn log(msg: impl AsRef<str>) {
    eprintln!("[bench {:7.1}s] {}", now(), msg.as_ref());
}

/// The wall clock as RFC 3339 UTC, to the second or to the microsecond.
pub fn rfc3339(micros: bool) -> String {
    let ts = jiff::Timestamp::now();
    let fmt = if micros {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    jiff::fmt::strtime::format(fmt, ts).expect("formatting a timestamp")
}
