//! Progress on stderr for `run --wait|--follow` and `submit`, drawn by indicatif.
//!
//! On a terminal: a live line, a bar with rate and ETA when the count is known (lines submitted,
//! steps done), else a spinner with the status. Elsewhere: a line per change of status, or
//! nothing, so logs and pipes stay readable. Lines printed to stdout meanwhile go through
//! [`Progress::print_line`], which lifts the live line off the terminal while they are written.
//! The bar itself is never coloured; the status is painted by the caller with
//! [`super::style::Style::stderr`], so `--color` and `NO_COLOR` decide for both.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};

use super::error::CliError;
use super::output::emit_line;

/// How often the live line is redrawn by itself (the spinner turns, rate and ETA age).
const TICK: Duration = Duration::from_millis(120);
/// A known count: `img-x7k2p: Running [#####>----] 1/3 steps done (0.2/s, ETA 10s)`.
const BAR_TEMPLATE: &str = "{msg} [{bar:24}] {pos}/{len} {prefix} ({per_sec:1}, ETA {eta})";
/// An unknown count: `⠙ img-x7k2p: Pending (4s)`.
const SPINNER_TEMPLATE: &str = "{spinner} {msg} ({elapsed})";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One status line, redrawn in place.
    Live,
    /// A new line each time the status or the count changes.
    Lines,
    /// Nothing.
    Quiet,
}

impl Mode {
    /// `Live` where indicatif can draw on stderr (a terminal, not `TERM=dumb`); else `fallback`.
    pub fn for_stderr(fallback: Mode) -> Mode {
        Mode::choose(!ProgressDrawTarget::stderr().is_hidden(), fallback)
    }

    fn choose(can_draw: bool, fallback: Mode) -> Mode {
        if can_draw { Mode::Live } else { fallback }
    }
}

/// A progress display; clones share it (log streams print through a clone).
#[derive(Clone)]
pub struct Progress {
    mode: Mode,
    bar: ProgressBar,
    lines: Arc<Mutex<ChangedLines>>,
}

impl Progress {
    /// A spinner with a status, until [`Progress::set_total`] says how many there are to do.
    pub fn new(mode: Mode) -> Progress {
        let target = match mode {
            Mode::Live => ProgressDrawTarget::stderr(),
            Mode::Lines | Mode::Quiet => ProgressDrawTarget::hidden(),
        };
        let bar = ProgressBar::with_draw_target(None, target)
            .with_style(style(SPINNER_TEMPLATE))
            .with_finish(ProgressFinish::AndClear);
        if mode == Mode::Live {
            bar.enable_steady_tick(TICK);
        }
        Progress {
            mode,
            bar,
            lines: Arc::default(),
        }
    }

    /// Shows nothing; [`Progress::print_line`] still prints.
    pub fn quiet() -> Progress {
        Progress::new(Mode::Quiet)
    }

    /// A bar of `total` `unit` (e.g. "lines") from the start.
    pub fn counting(mode: Mode, total: u64, unit: &'static str) -> Progress {
        let progress = Progress::new(mode);
        progress.set_total(total, unit);
        progress
    }

    /// From now on a bar of `total` `unit` (e.g. "steps done"), with rate and ETA. The first
    /// call decides: later ones change nothing.
    pub fn set_total(&self, total: u64, unit: &'static str) {
        if self.bar.length().is_some() {
            return;
        }
        self.bar.set_length(total);
        self.bar.set_prefix(unit);
        self.bar.set_style(style(BAR_TEMPLATE));
        self.lines().count = Some((total, unit));
    }

    /// Shows `done` (of the total) and `status`; off a terminal, prints a line if either changed.
    pub fn update(&self, done: u64, status: &str) {
        self.bar.set_position(done);
        self.set_status(status);
    }

    /// Shows `status`; off a terminal, prints a line if it changed.
    pub fn set_status(&self, status: &str) {
        match self.mode {
            Mode::Live => self.bar.set_message(Cow::Owned(status.to_string())),
            Mode::Lines => {
                let line = self.lines().next(status, self.bar.position());
                if let Some(line) = line {
                    super::output::note(&line);
                }
            }
            Mode::Quiet => {}
        }
    }

    /// Writes one line to stdout, with the live line lifted off the terminal meanwhile.
    pub fn print_line(&self, line: &str) -> Result<(), CliError> {
        self.bar.suspend(|| emit_line(line))
    }

    /// Runs `f`, which writes to the terminal, with the live line lifted off it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Removes the live line for good, before the command prints its result.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn lines(&self) -> std::sync::MutexGuard<'_, ChangedLines> {
        // A panic elsewhere while printing leaves nothing inconsistent here.
        self.lines.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn style(template: &str) -> ProgressStyle {
    // The templates are constants, checked by a unit test.
    ProgressStyle::with_template(template)
        .unwrap_or_else(|e| panic!("progress template {template:?}: {e}"))
        .progress_chars("#>-")
}

/// Off a terminal: a line per change, `img-x7k2p: Running, 1/3 steps done` once a total is known.
#[derive(Debug, Default)]
struct ChangedLines {
    /// The total and its unit, once known.
    count: Option<(u64, &'static str)>,
    last: Option<String>,
}

impl ChangedLines {
    /// The line for `status` at `done`, unless it is the line printed last.
    fn next(&mut self, status: &str, done: u64) -> Option<String> {
        let line = match self.count {
            Some((total, unit)) => format!("{status}, {done}/{total} {unit}"),
            None => status.to_string(),
        };
        if self.last.as_ref() == Some(&line) {
            return None;
        }
        self.last = Some(line.clone());
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_only_where_it_can_be_drawn() {
        assert_eq!(Mode::choose(true, Mode::Quiet), Mode::Live);
        assert_eq!(Mode::choose(false, Mode::Lines), Mode::Lines);
        assert_eq!(Mode::choose(false, Mode::Quiet), Mode::Quiet);
    }

    #[test]
    fn off_a_terminal_each_change_is_printed_once() {
        let mut lines = ChangedLines::default();
        assert_eq!(lines.next("r: Pending", 0).as_deref(), Some("r: Pending"));
        assert_eq!(lines.next("r: Pending", 0), None);
        lines.count = Some((3, "steps done"));
        let printed: Vec<String> = [
            ("r: Running", 0),
            ("r: Running", 0),
            ("r: Running", 1),
            ("r: Succeeded", 3),
        ]
        .iter()
        .filter_map(|(status, done)| lines.next(status, *done))
        .collect();
        assert_eq!(
            printed,
            [
                "r: Running, 0/3 steps done",
                "r: Running, 1/3 steps done",
                "r: Succeeded, 3/3 steps done"
            ]
        );
    }

    #[test]
    fn the_templates_are_valid() {
        for template in [BAR_TEMPLATE, SPINNER_TEMPLATE] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }

    #[test]
    fn the_first_total_decides_and_counts_are_kept_off_screen() {
        let progress = Progress::counting(Mode::Quiet, 3, "lines");
        progress.set_total(10, "lines");
        progress.update(2, "2 accepted");
        assert_eq!((progress.bar.length(), progress.bar.position()), (Some(3), 2));
        let spinner = Progress::new(Mode::Lines);
        assert_eq!(spinner.bar.length(), None);
        spinner.set_total(4, "steps done");
        assert_eq!(spinner.bar.length(), Some(4));
        assert_eq!(spinner.lines().count, Some((4, "steps done")));
    }
}
