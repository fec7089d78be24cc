//! `kubectl-dag lint` as a user runs it (no cluster needed): ten broken manifests give ten
//! precise `file:line: message` lines and exit 1; the shipped examples give none and exit 0.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn lint(files: &[PathBuf]) -> (Output, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kubectl-dag"))
        .arg("lint")
        .args(files)
        .output()
        .expect("run kubectl-dag lint");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

/// The first line of each broken file says what lint must report: `# expect: LINE: TEXT`.
fn expectation(file: &Path) -> (usize, String) {
    let text = std::fs::read_to_string(file).unwrap();
    let first = text.lines().next().unwrap_or_default();
    let rest = first
        .strip_prefix("# expect: ")
        .unwrap_or_else(|| panic!("{}: no `# expect: LINE: TEXT` first line", file.display()));
    let (line, needle) = rest.split_once(": ").unwrap_or((rest, ""));
    (line.parse().unwrap(), needle.to_string())
}

#[test]
fn each_of_eleven_broken_files_gives_one_precise_message() {
    let files = yaml_files(&Path::new(ROOT).join("tests/lint/broken"));
    assert_eq!(files.len(), 11, "{files:?}");
    let (output, stdout, stderr) = lint(&files);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 11, "one message per file:\n{stdout}");
    // Findings come in file order, so a file with two messages and one with none fail here too.
    for (file, line) in files.iter().zip(&lines) {
        let (at, needle) = expectation(file);
        let place = format!("{}:{at}: ", file.display());
        assert!(
            line.starts_with(&place) && line.contains(&needle),
            "expected {place}...{needle}..., got {line}"
        );
    }
    assert!(stderr.contains("11 problem(s)"), "{stderr}");
}

#[test]
fn the_shipped_examples_give_no_false_alarm() {
    let files = yaml_files(&Path::new(ROOT).join("manifests/examples"));
    assert!(!files.is_empty());
    let (output, stdout, stderr) = lint(&files);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, "", "no findings expected");
    assert!(stderr.contains(": no problems"), "{stderr}");
}
