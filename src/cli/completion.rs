//! Shell completion, answered by `kubectl-dag` itself (clap_complete's dynamic engine), so Dag
//! and run names complete from the cluster:
//! - `kubectl dag completion SHELL` prints the shell's registration script;
//! - `COMPLETE=SHELL kubectl-dag -- WORDS...` answers the shell ([`answer_shell`], before parsing);
//! - `kubectl_complete-dag WORDS...` answers kubectl's own plugin completion (kubectl 1.26+ runs
//!   it for `kubectl dag <TAB>`) in Cobra's `__complete` format ([`kubectl_complete`]).
//!
//! Names are read with the kubeconfig, the `--context` and `-n` on the line being completed, and
//! give up after [`NAME_TIMEOUT`] (a slow or unreachable cluster then completes nothing).

use std::ffi::{OsStr, OsString};
use std::time::Duration;

use clap::CommandFactory;
use clap_complete::engine::CompletionCandidate;
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};

use crate::api::{Dag, DagRun};

use super::args::Cli;
use super::cluster::Cluster;

/// Name of the executable, which the scripts complete.
pub const BIN_NAME: &str = "kubectl-dag";
/// The environment variable that switches `kubectl-dag` into answering the shell.
const COMPLETE_VAR: &str = "COMPLETE";
/// How long listing names may take.
pub const NAME_TIMEOUT: Duration = Duration::from_secs(3);
/// Cobra's `ShellCompDirectiveNoFileComp`: do not fall back to file names.
const NO_FILE_COMPLETION: &str = ":4";

/// The shells `kubectl dag completion` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

impl Shell {
    fn completer(self) -> &'static dyn EnvCompleter {
        match self {
            Shell::Bash => &Bash,
            Shell::Zsh => &Zsh,
            Shell::Fish => &Fish,
            Shell::Elvish => &Elvish,
            Shell::Powershell => &Powershell,
        }
    }
}

/// The registration script for `shell`: it calls `kubectl-dag` (on PATH) for each completion.
pub fn script(shell: Shell) -> String {
    let mut buffer = Vec::new();
    shell
        .completer()
        .write_registration(COMPLETE_VAR, BIN_NAME, BIN_NAME, BIN_NAME, &mut buffer)
        .expect("writing to memory does not fail");
    String::from_utf8_lossy(&buffer).into_owned()
}

/// When `COMPLETE` is set, answers the shell and exits; otherwise returns.
pub fn answer_shell() {
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(COMPLETE_VAR)
        .complete();
}

/// Completions of `words` (what follows `kubectl dag`; the last is the word being completed),
/// one per line (`value\thelp`), then Cobra's directive line.
pub fn kubectl_complete(words: &[OsString]) -> String {
    let mut args = vec![OsString::from(BIN_NAME)];
    args.extend(words.iter().cloned());
    if words.is_empty() {
        args.push(OsString::new());
    }
    let index = args.len() - 1;
    let current_dir = std::env::current_dir().ok();
    let candidates =
        clap_complete::engine::complete(&mut Cli::command(), args, index, current_dir.as_deref()).unwrap_or_default();
    let mut text = String::new();
    for candidate in candidates.iter().filter(|c| !c.is_hide_set()) {
        text.push_str(&candidate.get_value().to_string_lossy());
        if let Some(help) = candidate.get_help() {
            let help = help.to_string();
            text.push('\t');
            text.push_str(help.lines().next().unwrap_or_default());
        }
        text.push('\n');
    }
    text.push_str(NO_FILE_COMPLETION);
    text.push('\n');
    text
}

/// `--context` and `-n`/`--namespace` from the words being completed (this process's arguments).
fn target_from_args() -> (Option<String>, Option<String>) {
    target_from(std::env::args())
}

fn target_from(args: impl Iterator<Item = String>) -> (Option<String>, Option<String>) {
    let (mut context, mut namespace) = (None, None);
    let args: Vec<String> = args.collect();
    for (i, arg) in args.iter().enumerate() {
        let next = || args.get(i + 1).cloned();
        match arg.as_str() {
            "-n" | "--namespace" => namespace = next(),
            "--context" => context = next(),
            _ => {
                if let Some(value) = arg.strip_prefix("--namespace=") {
                    namespace = Some(value.to_string());
                } else if let Some(value) = arg.strip_prefix("--context=") {
                    context = Some(value.to_string());
                }
            }
        }
    }
    (context, namespace)
}

/// Which names to offer.
#[derive(Clone, Copy)]
enum Names {
    Dags,
    Runs,
    RunsAndDags,
}

/// Names of `what` in the namespace that start with `current`, sorted; nothing on any error.
fn names(what: Names, current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy().into_owned();
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return Vec::new();
    };
    let (context, namespace) = target_from_args();
    let found = runtime.block_on(async {
        let read = async {
            let cluster = Cluster::connect(context.as_deref(), namespace.as_deref()).await.ok()?;
            let mut names: Vec<(String, &'static str)> = Vec::new();
            if matches!(what, Names::Runs | Names::RunsAndDags) {
                let runs = cluster.api::<DagRun>().list_metadata(&Default::default()).await.ok()?;
                names.extend(
                    runs.items
                        .into_iter()
                        .filter_map(|r| r.metadata.name)
                        .map(|n| (n, "DagRun")),
                );
            }
            if matches!(what, Names::Dags | Names::RunsAndDags) {
                let dags = cluster.api::<Dag>().list_metadata(&Default::default()).await.ok()?;
                names.extend(
                    dags.items
                        .into_iter()
                        .filter_map(|d| d.metadata.name)
                        .map(|n| (n, "Dag")),
                );
            }
            Some(names)
        };
        tokio::time::timeout(NAME_TIMEOUT, read).await.ok().flatten()
    });
    let mut found = found.unwrap_or_default();
    found.retain(|(name, _)| name.starts_with(&prefix));
    found.sort();
    found
        .into_iter()
        .map(|(name, kind)| CompletionCandidate::new(name).help(Some(kind.into())))
        .collect()
}

/// Completer of a Dag name argument.
pub fn dag_names(current: &OsStr) -> Vec<CompletionCandidate> {
    names(Names::Dags, current)
}

/// Completer of a DagRun name argument.
pub fn run_names(current: &OsStr) -> Vec<CompletionCandidate> {
    names(Names::Runs, current)
}

/// Completer of an argument that is a run or a Dag.
pub fn run_or_dag_names(current: &OsStr) -> Vec<CompletionCandidate> {
    names(Names::RunsAndDags, current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn commands_complete_with_their_help_and_no_file_fallback() {
        let text = kubectl_complete(&words(&["l"]));
        let mut values: Vec<&str> = text.lines().map(|l| l.split('\t').next().unwrap()).collect();
        assert_eq!(values.pop(), Some(":4"), "the directive comes last: {text}");
        values.sort();
        assert_eq!(values, ["lint", "list", "logs"], "{text}");
        assert!(text.contains("list\tList runs grouped by Dag"), "{text}");
    }

    #[test]
    fn flags_complete_too() {
        let text = kubectl_complete(&words(&["list", "--ph"]));
        assert!(text.starts_with("--phase"), "{text}");
    }

    #[test]
    fn the_namespace_and_context_come_from_the_line() {
        let line = ["kubectl-dag", "--context=lab", "get", "-n", "astro", "img-"].map(String::from);
        assert_eq!(
            target_from(line.into_iter()),
            (Some("lab".into()), Some("astro".into()))
        );
    }

    #[test]
    fn every_shell_registers_the_executable() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Elvish, Shell::Powershell] {
            let text = script(shell);
            assert!(text.contains(BIN_NAME), "{shell:?}: {text}");
            assert!(text.contains(COMPLETE_VAR), "{shell:?}: {text}");
        }
    }
}
