//! Parameter files of `kubectl dag submit`: one parameter set per line.
//!
//! - CSV (`.csv`): a header row of parameter names, then one row per run. Fields are trimmed; an
//!   empty field leaves the parameter unset, so the Dag's default applies.
//! - JSON Lines (`.jsonl`, `.ndjson`): one object per line. Strings are taken as they are, numbers and
//!   booleans as their JSON text, `null` leaves the parameter unset. Blank lines are skipped.
//!
//! A syntax error anywhere rejects the whole file, so nothing is submitted from a half-read file.

use std::path::Path;

use crate::engine::params::Params;

use super::error::CliError;

/// One parameter set and the line of the file it starts on (1-based, for reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamLine {
    pub line: u64,
    pub params: Params,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    /// The format named by the file's extension.
    pub fn of_path(path: &Path) -> Result<Format, CliError> {
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv") => Ok(Format::Csv),
            Some("jsonl" | "ndjson") => Ok(Format::JsonLines),
            _ => Err(CliError::Invalid(format!(
                "--param-file {}: unknown format; the name must end in .csv or .jsonl",
                path.display()
            ))),
        }
    }
}

/// Reads and parses a parameter file, choosing the format from its extension.
pub fn read(path: &Path) -> Result<Vec<ParamLine>, CliError> {
    let format = Format::of_path(path)?;
    let text = std::fs::read_to_string(path).map_err(|source| CliError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    parse(format, &text).map_err(|why| CliError::Invalid(format!("{}: {why}", path.display())))
}

/// Parses file content; the error names the line.
pub fn parse(format: Format, text: &str) -> Result<Vec<ParamLine>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        Format::Csv => parse_csv(text),
        Format::JsonLines => parse_json_lines(text),
    }
}

fn parse_csv(text: &str) -> Result<Vec<ParamLine>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| format!("header row: {e}"))?.clone();
    check_header(&header)?;
    let mut lines = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error_message(text, &e))?;
        let line = record.position().map_or(0, |p| line_at(text, p.byte()));
        let params = header
            .iter()
            .zip(record.iter())
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        lines.push(ParamLine { line, params });
    }
    Ok(lines)
}

/// 1-based line number where the record at byte offset `byte` starts. The csv crate's positions
/// start at the blank lines it skips before a record, and its line count omits them.
fn line_at(text: &str, byte: u64) -> u64 {
    let bytes = text.as_bytes();
    let mut start = usize::try_from(byte).unwrap_or(usize::MAX).min(bytes.len());
    while start < bytes.len() && matches!(bytes[start], b'\n' | b'\r') {
        start += 1;
    }
    1 + bytes[..start].iter().filter(|&&b| b == b'\n').count() as u64
}

fn check_header(header: &csv::StringRecord) -> Result<(), String> {
    if header.is_empty() {
        return Err("the file is empty: expected a header row of parameter names".into());
    }
    for (i, name) in header.iter().enumerate() {
        if name.is_empty() {
            return Err(format!("header row: column {} has no parameter name", i + 1));
        }
        if header.iter().take(i).any(|earlier| earlier == name) {
            return Err(format!("header row: parameter {name:?} appears twice"));
        }
    }
    Ok(())
}

fn csv_error_message(text: &str, error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => format!(
            "line {}: {len} fields, but the header row has {expected_len}",
            pos.as_ref().map_or(0, |p| line_at(text, p.byte()))
        ),
        _ => match error.position() {
            Some(pos) => format!("line {}: {error}", line_at(text, pos.byte())),
            None => error.to_string(),
        },
    }
}

fn parse_json_lines(text: &str) -> Result<Vec<ParamLine>, String> {
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index as u64 + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(raw).map_err(|e| format!("line {line}: {e}"))?;
        let serde_json::Value::Object(object) = value else {
            return Err(format!("line {line}: expected a JSON object of parameters"));
        };
        let mut params = Params::new();
        for (name, value) in object {
            let text = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                    return Err(format!(
                        "line {line}: parameter {name:?} must be a string, number or boolean"
                    ));
                }
            };
            params.insert(name, text);
        }
        lines.push(ParamLine { line, params });
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(Format::of_path(Path::new("a/b.CSV")).unwrap(), Format::Csv);
        assert_eq!(Format::of_path(Path::new("b.jsonl")).unwrap(), Format::JsonLines);
        assert_eq!(Format::of_path(Path::new("b.ndjson")).unwrap(), Format::JsonLines);
        let error = Format::of_path(Path::new("b.txt")).unwrap_err().to_string();
        assert!(error.contains("b.txt") && error.contains(".csv or .jsonl"), "{error}");
    }

    #[test]
    fn csv_rows_become_parameter_sets_with_their_line_numbers() {
        let text = "\u{feff}file, threshold\nm31.fits, 0.5\n\n\"quoted, with comma\",\nm42.fits,0.9\n";
        let lines = parse(Format::Csv, text).unwrap();
        assert_eq!(
            lines,
            [
                ParamLine {
                    line: 2,
                    params: params(&[("file", "m31.fits"), ("threshold", "0.5")])
                },
                ParamLine {
                    line: 4,
                    params: params(&[("file", "quoted, with comma")])
                },
                ParamLine {
                    line: 5,
                    params: params(&[("file", "m42.fits"), ("threshold", "0.9")])
                },
            ]
        );
    }

    #[test]
    fn csv_errors_name_the_line_or_column() {
        let error = parse(Format::Csv, "file,threshold\na,1\n\nb\n").unwrap_err();
        assert_eq!(error, "line 4: 1 fields, but the header row has 2");
        let error = parse(Format::Csv, "file,,x\na,b,c\n").unwrap_err();
        assert_eq!(error, "header row: column 2 has no parameter name");
        let error = parse(Format::Csv, "file,file\na,b\n").unwrap_err();
        assert_eq!(error, "header row: parameter \"file\" appears twice");
        let error = parse(Format::Csv, "").unwrap_err();
        assert!(error.contains("empty"), "{error}");
    }

    #[test]
    fn json_lines_accept_scalars_and_skip_blank_lines() {
        let text = "{\"file\": \"a b\", \"n\": 3, \"ok\": true, \"unset\": null}\n\n  \n{\"file\":\"c\"}\n";
        let lines = parse(Format::JsonLines, text).unwrap();
        assert_eq!(
            lines,
            [
                ParamLine {
                    line: 1,
                    params: params(&[("file", "a b"), ("n", "3"), ("ok", "true")])
                },
                ParamLine {
                    line: 4,
                    params: params(&[("file", "c")])
                },
            ]
        );
    }

    #[test]
    fn json_lines_errors_name_the_line() {
        let error = parse(Format::JsonLines, "{\"file\":\"a\"}\n[1]\n").unwrap_err();
        assert_eq!(error, "line 2: expected a JSON object of parameters");
        let error = parse(Format::JsonLines, "{\"file\": [\"a\"]}").unwrap_err();
        assert_eq!(error, "line 1: parameter \"file\" must be a string, number or boolean");
        let error = parse(Format::JsonLines, "{\"file\":\"a\"}\n{oops\n").unwrap_err();
        assert!(error.starts_with("line 2: "), "{error}");
    }
}
