//! A YAML stream cut into documents, each with an index from a field path
//! (`spec.steps[1].depends`) to the line it starts on, so lint messages can say `file:line`.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// One document of a YAML stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The document's own text (without its `---` line).
    pub text: String,
    /// Line (1-based, in the whole file) of the document's first line.
    pub first_line: usize,
    /// Field path -> line (1-based, in the whole file). Paths look like `spec.steps[1].depends`;
    /// the empty path is the document's root.
    lines: HashMap<String, usize>,
}

impl Document {
    /// The line of `path`, or of its nearest ancestor that has one, else the document's first
    /// line. `path` is as in [`Document::lines`].
    pub fn line_of(&self, path: &str) -> usize {
        let mut path = path;
        loop {
            if let Some(line) = self.lines.get(path) {
                return *line;
            }
            match parent(path) {
                Some(up) => path = up,
                None => return self.first_line,
            }
        }
    }

    /// Whether the document has content (not only comments or blank lines).
    pub fn is_empty(&self) -> bool {
        self.text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    }
}

/// `a.b[2].c` -> `a.b[2]` -> `a.b` -> `a` -> `` -> None.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// Splits a YAML stream at its `---` lines (a `---` in column 0 always starts a document: block
/// scalars are indented) and indexes each document's fields. A document YAML cannot parse keeps
/// an empty index; the caller reports the parse error from its own parser.
pub fn split(text: &str) -> Vec<Document> {
    let mut documents = Vec::new();
    let mut current = String::new();
    let mut first_line = 1;
    for (i, line) in text.lines().enumerate() {
        let is_marker = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_marker {
            documents.push(indexed(std::mem::take(&mut current), first_line));
            first_line = i + 2;
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    documents.push(indexed(current, first_line));
    documents.retain(|d| !d.is_empty());
    documents
}

fn indexed(text: String, first_line: usize) -> Document {
    let mut index = Index::default();
    // A parse error leaves what was indexed so far; the typed parse reports the error itself.
    let _ = Parser::new_from_str(&text).load(&mut index, false);
    let offset = first_line - 1;
    let lines = index
        .lines
        .into_iter()
        .map(|(path, line)| (path, line + offset))
        .collect();
    Document {
        text,
        first_line,
        lines,
    }
}

/// Where the parser is: inside a mapping (waiting for a key, or for the value of `key`) or a
/// sequence (at item `next`).
enum Frame {
    Mapping { path: String, key: Option<String> },
    Sequence { path: String, next: usize },
}

#[derive(Default)]
struct Index {
    stack: Vec<Frame>,
    lines: HashMap<String, usize>,
}

impl Index {
    /// The path of the node that starts now, advancing the enclosing frame. None for a mapping key.
    fn node_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Sequence { path, next }) => {
                *next += 1;
                Some(format!("{path}[{}]", *next - 1))
            }
            Some(Frame::Mapping { path, key }) => key.take().map(|k| join(path, &k)),
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl MarkedEventReceiver for Index {
    fn on_event(&mut self, event: Event, mark: Marker) {
        // yaml-rust2 counts lines from 1.
        let line = mark.line().max(1);
        match event {
            Event::Scalar(value, ..) => {
                let in_mapping_key = matches!(self.stack.last(), Some(Frame::Mapping { key: None, .. }));
                if in_mapping_key {
                    if let Some(Frame::Mapping { path, key }) = self.stack.last_mut() {
                        let child = join(path, &value);
                        self.lines.entry(child).or_insert(line);
                        *key = Some(value);
                    }
                } else if let Some(path) = self.node_path() {
                    self.lines.entry(path).or_insert(line);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = self.node_path().unwrap_or_default();
                self.lines.entry(path.clone()).or_insert(line);
                self.stack.push(match event {
                    Event::MappingStart(..) => Frame::Mapping { path, key: None },
                    _ => Frame::Sequence { path, next: 0 },
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(_) => {
                self.node_path();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "# leading comment
---
apiVersion: kubedag.io/v1alpha1
kind: Dag
metadata:
  name: a
spec:
  steps:
    - name: one
      command: [echo]
    - name: two
      depends:
        - one
---
kind: DagRun
spec:
  dagRef: {name: a}
";

    #[test]
    fn documents_start_after_their_marker_and_comment_only_ones_are_dropped() {
        let docs = split(STREAM);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].first_line, 3);
        assert_eq!(docs[1].first_line, 15);
        assert!(docs[1].text.starts_with("kind: DagRun"));
    }

    #[test]
    fn paths_map_to_the_lines_they_start_on() {
        let docs = split(STREAM);
        let dag = &docs[0];
        assert_eq!(dag.line_of("kind"), 4);
        assert_eq!(dag.line_of("spec.steps"), 8);
        assert_eq!(dag.line_of("spec.steps[0]"), 9);
        assert_eq!(dag.line_of("spec.steps[1].depends"), 12);
        assert_eq!(dag.line_of("spec.steps[1].depends[0]"), 13);
        assert_eq!(docs[1].line_of("spec.dagRef.name"), 17);
    }

    #[test]
    fn unknown_paths_fall_back_to_the_nearest_known_ancestor() {
        let docs = split(STREAM);
        assert_eq!(docs[0].line_of("spec.steps[1].retry.limit"), 11);
        assert_eq!(docs[0].line_of("status.phase"), 3);
    }

    #[test]
    fn a_document_yaml_cannot_parse_keeps_what_was_read() {
        let docs = split("kind: Dag\nspec:\n  steps: [\n");
        assert_eq!(docs[0].line_of("kind"), 1);
    }
}
