//! Progress on stderr for `run --wait` and `submit`: one line rewritten in place on a terminal,
//! otherwise a line per change (or nothing), so logs and pipes stay readable.

use std::io::{IsTerminal, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One status line, rewritten in place.
    Live,
    /// A new line each time the status changes.
    Lines,
    /// Nothing.
    Quiet,
}

pub struct Progress {
    mode: Mode,
    status: String,
    drawn: bool,
}

impl Progress {
    /// `Live` on a terminal; otherwise `fallback`.
    pub fn on_stderr(fallback: Mode) -> Progress {
        let mode = if std::io::stderr().is_terminal() {
            Mode::Live
        } else {
            fallback
        };
        Progress::new(mode)
    }

    pub fn new(mode: Mode) -> Progress {
        Progress {
            mode,
            status: String::new(),
            drawn: false,
        }
    }

    /// Shows `status` if it differs from the current one.
    pub fn update(&mut self, status: &str) {
        if status == self.status {
            return;
        }
        self.status = status.to_string();
        match self.mode {
            Mode::Live => self.redraw(),
            Mode::Lines => write_stderr(&format!("{status}\n")),
            Mode::Quiet => {}
        }
    }

    /// Erases the live line, before something else is printed to the terminal.
    pub fn clear(&mut self) {
        if self.drawn {
            write_stderr("\r\x1b[2K");
            self.drawn = false;
        }
    }

    /// Draws the live line again after [`Progress::clear`].
    pub fn redraw(&mut self) {
        if self.mode == Mode::Live && !self.status.is_empty() {
            write_stderr(&format!("\r\x1b[2K{}", self.status));
            self.drawn = true;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Progress is best effort: a closed stderr must not fail the command.
fn write_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes()).and_then(|()| stderr.flush());
}
