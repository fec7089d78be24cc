//! The command line of `kubectl dag`: commands, flags, help texts and examples.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use clap_complete::engine::ArgValueCompleter;

use crate::api::RunPhase;

use super::completion;
use super::output::Format;
use super::params::parse_key_value;

#[derive(Parser, Debug)]
#[command(
    name = "kubectl-dag",
    version,
    about = "Run and inspect kubedag DAG workflows (Dag templates, DagRun executions)",
    after_help = "Examples:
  kubectl dag run process-image -p file=m31.fits --wait
  kubectl dag submit process-image --param-file files.csv
  kubectl dag list process-image --phase Failed
  kubectl dag get process-image-x7k2p
  kubectl dag logs process-image-x7k2p calibrate -f"
)]
pub struct Cli {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the process's arguments; help and usage say `kubectl dag`, as users type it.
    pub fn parse_args() -> Cli {
        let matches = Cli::command().bin_name(KUBECTL_USAGE).get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// How help and usage name the command. Only there: a name with a space breaks completion scripts.
const KUBECTL_USAGE: &str = "kubectl dag";

/// Where the Dags and runs live.
#[derive(Args, Debug)]
pub struct Target {
    /// Namespace of the Dags and runs (default: the kubeconfig context's namespace).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Kubeconfig context to use (default: the current context; KUBECONFIG selects the file).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// When to colour output: auto (a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces
    /// it), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    pub fn choice(self) -> super::style::ColorChoice {
        use super::style::ColorChoice;
        match self {
            ColorWhen::Auto => ColorChoice::Auto,
            ColorWhen::Always => ColorChoice::Always,
            ColorWhen::Never => ColorChoice::Never,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start a run of a Dag and print its name, requestId and paramHash.
    #[command(after_help = "Examples:
  # Start a run; prints Name, RequestId and ParamHash
  kubectl dag run process-image -p file=m31.fits -p threshold=0.7

  # Wait for the outcome (exit status 0 only if it Succeeded), streaming the step logs
  kubectl dag run process-image -p file=m31.fits --request-id m31 --follow

A run whose parameters duplicate another run's (under the Dag's duplicatePolicy) is refused:
the refusal is printed and the exit status is 1.")]
    Run(RunArgs),
    /// Start one run per line of a CSV or JSON Lines file, skipping duplicate parameter sets.
    #[command(after_help = "Examples:
  # files.csv: a header row of parameter names, then one run per row
  #   file,threshold
  #   m31.fits,0.5
  kubectl dag submit process-image --param-file files.csv --parallel 16

  # files.jsonl: one JSON object per line, e.g. {\"file\": \"m31.fits\"}
  kubectl dag submit process-image --param-file files.jsonl --dry-run

Each line is reported as accepted (with its new run), duplicate (naming the run that already
has those parameters) or failed (with the reason). Re-running the same file is safe: lines that
already have a run are reported as duplicates, not submitted again. Empty CSV fields and JSON
nulls leave a parameter unset, so its default applies. Exit status 1 if any line failed.")]
    Submit(SubmitArgs),
    /// List runs grouped by Dag, with phase, step progress, short paramHash and params.
    #[command(after_help = "Examples:
  kubectl dag list
  kubectl dag list process-image --phase Running,Queued
  kubectl dag list process-image -p file=m31.fits -o yaml
  kubectl dag list -A --phase Failed
  kubectl dag list process-image --limit 100        # then --continue TOKEN for the next page
  kubectl dag list process-image -w                 # and every change after")]
    List(ListArgs),
    /// Show one run: identity, outcome and the step graph with phases, attempts and exit codes.
    #[command(after_help = "Examples:
  kubectl dag get process-image-x7k2p
  kubectl dag get process-image-x7k2p -o json")]
    Get(GetArgs),
    /// Print the logs of a run's steps, each line prefixed with its step.
    #[command(after_help = "Examples:
  kubectl dag logs process-image-x7k2p
  kubectl dag logs process-image-x7k2p calibrate
  kubectl dag logs process-image-x7k2p -f    # until the run finishes")]
    Logs(LogsArgs),
    /// Stop a run: its running steps are stopped and it ends Cancelled.
    #[command(after_help = "Example:
  kubectl dag cancel process-image-x7k2p")]
    Cancel(RunName),
    /// Re-run the failed and skipped steps of a Failed run, keeping its requestId and params.
    #[command(after_help = "Example:
  kubectl dag retry process-image-x7k2p
  kubectl dag get process-image-x7k2p    # attempts of the re-run steps go up")]
    Retry(RunName),
    /// Print the step graph of a run (coloured by step phase) or a Dag as Mermaid or Graphviz.
    #[command(after_help = "Examples:
  kubectl dag graph process-image-x7k2p            # Mermaid, e.g. for a Markdown page
  kubectl dag graph process-image -o dot | dot -Tsvg > process-image.svg")]
    Graph(GraphArgs),
    /// Check Dag, DagRun and DagTrigger manifests offline with the cluster's rules; one `file:line: message` per problem.
    #[command(after_help = "Examples:
  kubectl dag lint manifests/examples/*.yaml
  helm template charts/my-dags | kubectl dag lint -

Checks the CRD schema (wrong types, and unknown fields the API server would drop), the
webhook's Dag validation (cycles, unknown dependencies, params, outputs, `when`) and each
DagRun against the Dags in the same files (unknown or missing params, duplicate parameter
sets). Other kinds are skipped. Exit status 1 if any problem was found.")]
    Lint(LintArgs),
    /// Serve the web UI on localhost: Dags, runs grouped by parameter set, run graphs, logs, actions.
    #[command(after_help = "Examples:
  kubectl dag ui                 # http://127.0.0.1:8080, the context's namespace
  kubectl dag ui -n imaging --port 9000
  kubectl dag ui -A              # every namespace the kubeconfig user may watch

It uses your kubeconfig: it shows and does exactly what your RBAC allows (a refused action
shows the API server's message).")]
    Ui(UiArgs),
    /// Submit one run per new file of a local directory, each file exactly once.
    #[command(after_help = "Examples:
  kubectl dag watch ./incoming --dag process-image -p file='$(file.path)'
  kubectl dag watch ./incoming --dag process-image -p file='$(file.name)' --pattern '*.fits' --settle 30s

A file is submitted once its size and mtime have been stable for --settle. Each file (path +
size + mtime) is submitted once: the ledger file (default DIR/.kubedag-watch-ledger) records
it, so a restart or a re-scan submits nothing again, even after its run was deleted; a changed
file is new input. Variables: $(file.path) (relative to DIR), $(file.name), $(file.dir),
$(file.size). Runs are named NAME-<hash> and labelled kubedag.io/trigger=NAME.")]
    Watch(WatchArgs),
    /// Print a shell completion script (Dag and run names complete from the cluster).
    #[command(after_help = "Examples:
  source <(kubectl-dag completion bash)
  kubectl-dag completion zsh > \"${fpath[1]}/_kubectl-dag\"
  kubectl-dag completion fish > ~/.config/fish/completions/kubectl-dag.fish

For `kubectl dag <TAB>` (kubectl 1.26+), put the kubectl_complete-dag executable, shipped
beside kubectl-dag, on PATH.")]
    Completion {
        #[arg(value_enum)]
        shell: completion::Shell,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The Dag to run.
    #[arg(add = ArgValueCompleter::new(completion::dag_names))]
    pub dag: String,
    /// A parameter of the run; repeat for several.
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub params: Vec<(String, String)>,
    /// Caller-chosen id of the run, e.g. one per input file (default: the operator assigns a UUID).
    #[arg(long)]
    pub request_id: Option<String>,
    /// Wait until the run finishes; exit status 0 if it Succeeded, 1 otherwise.
    #[arg(long)]
    pub wait: bool,
    /// Stream the step logs while waiting (implies --wait).
    #[arg(short = 'f', long)]
    pub follow: bool,
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// The Dag to run.
    #[arg(add = ArgValueCompleter::new(completion::dag_names))]
    pub dag: String,
    /// Parameter sets, one per line: .csv with a header row of names, or .jsonl with one object per line.
    #[arg(long, value_name = "FILE")]
    pub param_file: PathBuf,
    /// Runs created at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
    /// Check every line with the API server (webhook included) without creating anything.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only runs of this Dag.
    #[arg(add = ArgValueCompleter::new(completion::dag_names))]
    pub dag: Option<String>,
    /// Only runs in these phases (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_parser = parse_phase)]
    pub phase: Vec<RunPhase>,
    /// Only runs with this parameter value; repeat to require several.
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub params: Vec<(String, String)>,
    /// Print the runs as a JSON or YAML List instead of a table.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
    /// Show the params in full instead of cutting long ones.
    #[arg(long)]
    pub wide: bool,
    /// Runs of every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Only runs with these labels, as for `kubectl get -l` (e.g. kubedag.io/trigger=nightly).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Read at most this many runs (one page); the next page's token is printed.
    #[arg(long, default_value_t = 0)]
    pub limit: u32,
    /// The page to read, from a previous `--limit` list.
    #[arg(long = "continue", value_name = "TOKEN")]
    pub continue_token: Option<String>,
    /// After the list, print a line for each change of a listed run until interrupted.
    #[arg(short = 'w', long)]
    pub watch: bool,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    /// The DagRun.
    #[arg(add = ArgValueCompleter::new(completion::run_names))]
    pub run: String,
    /// Print the DagRun as JSON or YAML instead of the summary.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The DagRun.
    #[arg(add = ArgValueCompleter::new(completion::run_names))]
    pub run: String,
    /// Only this step.
    pub step: Option<String>,
    /// Keep streaming new log lines and new steps until the run finishes.
    #[arg(short = 'f', long)]
    pub follow: bool,
}

#[derive(Args, Debug)]
pub struct GraphArgs {
    /// A DagRun, or a Dag when no run has this name.
    #[arg(add = ArgValueCompleter::new(completion::run_or_dag_names))]
    pub name: String,
    /// The text format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: super::graph::GraphFormat,
}

#[derive(Args, Debug)]
pub struct LintArgs {
    /// Manifest files (YAML, several documents each); `-` reads stdin.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct UiArgs {
    /// Port to listen on, on 127.0.0.1 (0: any free port, printed at start).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Show every namespace the user may watch (overrides -n).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

#[derive(Args, Debug)]
pub struct RunName {
    /// The DagRun.
    #[arg(add = ArgValueCompleter::new(completion::run_names))]
    pub run: String,
}

/// A run phase by name, in any letter case.
pub fn parse_phase(text: &str) -> Result<RunPhase, String> {
    RunPhase::ALL
        .into_iter()
        .find(|phase| phase.as_str().eq_ignore_ascii_case(text.trim()))
        .ok_or_else(|| {
            let known: Vec<&str> = RunPhase::ALL.iter().map(|p| p.as_str()).collect();
            format!("unknown phase {text:?} (phases: {})", known.join(", "))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_an_example() {
        for command in Cli::command().get_subcommands() {
            let help = command.get_after_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(help.contains("kubectl"), "{} has no example", command.get_name());
        }
    }

    #[test]
    fn phases_parse_in_any_case_and_unknown_ones_are_listed() {
        assert_eq!(parse_phase("failed"), Ok(RunPhase::Failed));
        assert_eq!(parse_phase("Running"), Ok(RunPhase::Running));
        let error = parse_phase("done").unwrap_err();
        assert!(error.contains("\"done\"") && error.contains("Succeeded"), "{error}");
    }

    #[test]
    fn flags_parse_with_the_namespace_anywhere() {
        let cli = Cli::try_parse_from([
            "kubectl-dag",
            "list",
            "img",
            "--phase",
            "Failed,running",
            "-p",
            "file=a",
            "-n",
            "ns",
        ])
        .unwrap();
        assert_eq!(cli.target.namespace.as_deref(), Some("ns"));
        let Command::List(list) = cli.command else {
            panic!("expected list")
        };
        assert_eq!(list.phase, [RunPhase::Failed, RunPhase::Running]);
        assert_eq!(list.params, [("file".to_string(), "a".to_string())]);
    }

    #[test]
    fn a_bad_param_names_the_argument() {
        let error = Cli::try_parse_from(["kubectl-dag", "run", "img", "-p", "foo"]).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("\"foo\"") && text.contains("KEY=VALUE"), "{text}");
    }
}

/// `kubectl dag watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The local directory to watch.
    pub dir: std::path::PathBuf,
    /// The Dag to run for each new file.
    #[arg(long)]
    pub dag: String,
    /// A parameter of each run, e.g. file='$(file.path)'; repeat for several.
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub params: Vec<(String, String)>,
    /// How long a file's size and mtime must be stable before it is submitted, e.g. 10s, 2m.
    #[arg(long, default_value = "10s", value_parser = parse_seconds)]
    pub settle: u32,
    /// The ledger file of submitted files (default DIR/.kubedag-watch-ledger).
    #[arg(long)]
    pub ledger: Option<std::path::PathBuf>,
    /// Glob on file names, e.g. '*.fits' (default every file; names starting with . are ignored).
    #[arg(long)]
    pub pattern: Option<String>,
    /// Also watch subdirectories.
    #[arg(long)]
    pub recursive: bool,
    /// Name of this watch: the runs' name prefix and kubedag.io/trigger label (default DAG-watch).
    #[arg(long)]
    pub name: Option<String>,
    /// Time between full re-scans, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = parse_seconds)]
    pub rescan: u32,
}

/// Seconds from `N`, `Ns`, `Nm` or `Nh`.
pub fn parse_seconds(value: &str) -> Result<u32, String> {
    let (digits, unit) = match value.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => value.split_at(i),
        None => (value, "s"),
    };
    let n: u32 = digits
        .parse()
        .map_err(|_| format!("{value:?}: expected a duration like 10s, 2m or 1h"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("{value:?}: unknown unit {unit:?} (use s, m or h)")),
    };
    n.checked_mul(factor).ok_or_else(|| format!("{value:?}: too long"))
}
