//! Figures of a running process from `/proc/PID/status` and `/proc/PID/stat`: peak and current
//! resident memory, CPU seconds. Read for the operator just before it is stopped.

use std::process::Command;

use serde::Serialize;

use crate::stats::round2;

/// Memory and CPU of one process.
#[derive(Serialize, Default, Clone, Debug)]
pub struct ProcStats {
    /// Peak resident set (`VmHWM`), MiB.
    pub peak_rss_mib: f64,
    /// Resident set now (`VmRSS`), MiB.
    pub rss_mib: f64,
    /// User + system CPU time, s.
    pub cpu_seconds: f64,
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`, 100 when unknown).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The figures of process `pid` (zeros for what cannot be read, e.g. when it is gone).
pub fn proc_stats(pid: u32) -> ProcStats {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may contain spaces) start at field 3; utime/stime are 14/15.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ProcStats {
        peak_rss_mib: round2(kib("VmHWM:") / 1024.0),
        rss_mib: round2(kib("VmRSS:") / 1024.0),
        cpu_seconds: round2((ticks(11) + ticks(12)) / clock_ticks()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let own = proc_stats(std::process::id());
        assert!(own.rss_mib > 0.0 && own.peak_rss_mib >= own.rss_mib, "{own:?}");
        assert_eq!(proc_stats(u32::MAX).peak_rss_mib, 0.0, "no such process");
    }
}
