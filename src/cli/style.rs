//! ANSI colours, used only when the stream is a terminal (and `NO_COLOR` is unset).

use std::io::IsTerminal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    Red,
    Green,
    Yellow,
    Blue,
    Magenta,
    Cyan,
    Dim,
    Bold,
}

impl Color {
    fn code(self) -> &'static str {
        match self {
            Color::Red => "31",
            Color::Green => "32",
            Color::Yellow => "33",
            Color::Blue => "34",
            Color::Magenta => "35",
            Color::Cyan => "36",
            Color::Dim => "2",
            Color::Bold => "1",
        }
    }
}

/// Whether to colour one output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub enabled: bool,
}

impl Style {
    pub const PLAIN: Style = Style { enabled: false };

    pub fn stdout() -> Style {
        Style::when(std::io::stdout().is_terminal())
    }

    pub fn stderr() -> Style {
        Style::when(std::io::stderr().is_terminal())
    }

    fn when(terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        Style {
            enabled: terminal && !no_color && !dumb,
        }
    }

    pub fn paint(self, color: Option<Color>, text: &str) -> String {
        match color {
            Some(color) if self.enabled => format!("\x1b[{}m{text}\x1b[0m", color.code()),
            _ => text.to_string(),
        }
    }
}

/// The colour of a run or step phase, by its name.
pub fn phase_color(phase: &str) -> Option<Color> {
    match phase {
        "Succeeded" => Some(Color::Green),
        "Failed" | "Rejected" => Some(Color::Red),
        "Running" => Some(Color::Cyan),
        "Pending" | "Queued" => Some(Color::Yellow),
        "Cancelled" | "Skipped" => Some(Color::Magenta),
        _ => None,
    }
}

/// A colour per step name, stable across lines, so interleaved log lines are told apart.
pub fn step_color(step: &str) -> Color {
    const PALETTE: [Color; 5] = [Color::Cyan, Color::Green, Color::Yellow, Color::Magenta, Color::Blue];
    let sum = step
        .bytes()
        .fold(0usize, |acc, b| acc.wrapping_mul(31).wrapping_add(b as usize));
    PALETTE[sum % PALETTE.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_style_leaves_text_alone() {
        assert_eq!(Style::PLAIN.paint(Some(Color::Red), "Failed"), "Failed");
        let on = Style { enabled: true };
        assert_eq!(on.paint(Some(Color::Red), "Failed"), "\x1b[31mFailed\x1b[0m");
        assert_eq!(on.paint(None, "x"), "x");
    }

    #[test]
    fn phases_and_steps_get_stable_colours() {
        assert_eq!(phase_color("Succeeded"), Some(Color::Green));
        assert_eq!(phase_color("-"), None);
        assert_eq!(step_color("fetch"), step_color("fetch"));
    }
}
