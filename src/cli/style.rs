//! ANSI colours (anstyle), used where anstream's rules and `--color` allow them.

pub use anstream::ColorChoice;

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
    fn style(self) -> anstyle::Style {
        use anstyle::{AnsiColor, Effects, Style};
        let fg = |c: AnsiColor| Style::new().fg_color(Some(c.into()));
        match self {
            Color::Red => fg(AnsiColor::Red),
            Color::Green => fg(AnsiColor::Green),
            Color::Yellow => fg(AnsiColor::Yellow),
            Color::Blue => fg(AnsiColor::Blue),
            Color::Magenta => fg(AnsiColor::Magenta),
            Color::Cyan => fg(AnsiColor::Cyan),
            Color::Dim => Style::new().effects(Effects::DIMMED),
            Color::Bold => Style::new().effects(Effects::BOLD),
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

    /// For stdout: `--color` (set with [`ColorChoice::write_global`]), else anstream's rules:
    /// a terminal, unless `NO_COLOR` is set or `TERM=dumb`; `CLICOLOR_FORCE` forces colour.
    pub fn stdout() -> Style {
        Style::when(anstream::AutoStream::choice(&std::io::stdout()))
    }

    /// For stderr, by the same rules as [`Style::stdout`].
    pub fn stderr() -> Style {
        Style::when(anstream::AutoStream::choice(&std::io::stderr()))
    }

    fn when(choice: ColorChoice) -> Style {
        Style {
            enabled: choice != ColorChoice::Never,
        }
    }

    pub fn paint(self, color: Option<Color>, text: &str) -> String {
        match color {
            Some(color) if self.enabled => {
                let style = color.style();
                format!("{style}{text}{style:#}")
            }
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
    fn the_choice_decides() {
        assert!(!Style::when(ColorChoice::Never).enabled);
        assert!(Style::when(ColorChoice::Always).enabled);
        assert!(Style::when(ColorChoice::AlwaysAnsi).enabled);
        let on = Style { enabled: true };
        assert_eq!(on.paint(Some(Color::Bold), "x"), "\x1b[1mx\x1b[0m");
    }

    #[test]
    fn phases_and_steps_get_stable_colours() {
        assert_eq!(phase_color("Succeeded"), Some(Color::Green));
        assert_eq!(phase_color("-"), None);
        assert_eq!(step_color("fetch"), step_color("fetch"));
    }
}
