//! Plain-text tables like `kubectl get`: upper-case headers, columns padded to their widest cell,
//! colour applied after padding so escape codes never disturb alignment.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::style::{Color, Style};

const COLUMN_GAP: &str = "   ";

/// One cell: its text and an optional colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub color: Option<Color>,
}

impl Cell {
    pub fn colored(text: impl Into<String>, color: Option<Color>) -> Cell {
        Cell {
            text: text.into(),
            color,
        }
    }
}

impl<T: Into<String>> From<T> for Cell {
    fn from(text: T) -> Cell {
        Cell::colored(text, None)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing trailing cells render empty.
    pub fn push(&mut self, row: Vec<Cell>) {
        self.rows.push(row);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Renders every line with `indent` in front, ending each with a newline.
    pub fn render(&self, style: Style, indent: &str) -> String {
        let widths = self.widths();
        let mut out = String::new();
        let header: Vec<Cell> = self.header.iter().map(|h| Cell::from(h.as_str())).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::from(indent);
            for (i, width) in widths.iter().enumerate() {
                let empty = Cell::from("");
                let cell = row.get(i).unwrap_or(&empty);
                let last = i + 1 == widths.len();
                let padding = if last { 0 } else { width - display_width(&cell.text) };
                line.push_str(&style.paint(cell.color, &cell.text));
                line.push_str(&" ".repeat(padding));
                if !last {
                    line.push_str(COLUMN_GAP);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| display_width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i >= widths.len() {
                    widths.push(0);
                }
                widths[i] = widths[i].max(display_width(&cell.text));
            }
        }
        widths
    }
}

/// Width in terminal columns (Unicode East Asian Width: CJK and most emoji take two).
pub fn display_width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// Cuts `text` to at most `max` terminal columns, marking the cut with `…`.
pub fn truncate(text: &str, max: usize) -> String {
    if display_width(text) <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut cut = String::new();
    let mut width = 0;
    for c in text.chars() {
        let w = UnicodeWidthChar::width(c).unwrap_or(0);
        if width + w > max - 1 {
            break;
        }
        width += w;
        cut.push(c);
    }
    cut.push('…');
    cut
}

/// `key: value` lines with the values aligned, for the header of `kubectl dag get` and `run`.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| display_width(k) + 1).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(key, value)| format!("{}\n", format!("{:<width$}  {value}", format!("{key}:")).trim_end()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_the_widest_cell_and_lines_have_no_trailing_space() {
        let mut table = Table::new(&["NAME", "PHASE", "PARAMS"]);
        table.push(vec!["a-long-name".into(), "Running".into(), "file=x".into()]);
        table.push(vec!["b".into(), "Failed".into()]);
        assert_eq!(
            table.render(Style::PLAIN, "  "),
            "  NAME          PHASE     PARAMS\n  a-long-name   Running   file=x\n  b             Failed\n"
        );
    }

    #[test]
    fn colour_does_not_change_alignment() {
        let mut table = Table::new(&["PHASE", "X"]);
        table.push(vec![Cell::colored("Failed", Some(Color::Red)), "1".into()]);
        table.push(vec!["Succeeded".into(), "2".into()]);
        let rendered = table.render(Style { enabled: true }, "");
        let lines: Vec<&str> = rendered.lines().collect();
        assert_eq!(lines[1], "\x1b[31mFailed\x1b[0m      1");
        assert_eq!(lines[2], "Succeeded   2");
    }

    #[test]
    fn truncation_counts_characters_and_marks_the_cut() {
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdefg", 6), "abcde…");
        assert_eq!(truncate("ünïcødé", 4), "ünï…");
        assert_eq!(truncate("abc", 0), "");
    }

    #[test]
    fn wide_characters_count_two_columns() {
        let mut table = Table::new(&["NAME", "X"]);
        table.push(vec!["星雲".into(), "1".into()]);
        table.push(vec!["🔭x".into(), "2".into()]);
        table.push(vec!["abcde".into(), "3".into()]);
        let rendered = table.render(Style::PLAIN, "");
        let lines: Vec<&str> = rendered.lines().collect();
        assert_eq!(lines[1], "星雲    1");
        assert_eq!(lines[2], "🔭x     2");
        assert_eq!(truncate("星雲星雲", 5), "星雲…");
        assert_eq!(display_width(&truncate("星雲星雲", 5)), 5);
    }

    #[test]
    fn key_values_align() {
        let text = key_values(&[("Name", "r".into()), ("ParamHash", "h".into())]);
        assert_eq!(text, "Name:       r\nParamHash:  h\n");
    }
}
