//! `kubectl dag`: the kubectl plugin (binary `kubectl-dag`) for running and inspecting DAG workflows.
//!
//! - [`args`] is the command line (clap), with help and examples.
//! - [`run`], [`submit`], [`list`], [`get`], [`graph`], [`logs`] and [`control`] (cancel, retry) are the commands.
//! - [`params`] parses `-p KEY=VALUE`; [`param_file`] reads CSV / JSON Lines parameter files;
//!   [`dedupe`] finds duplicate parameter sets before submitting.
//! - [`lint`] checks manifests offline; [`watch_dir`] is `kubectl dag watch`: one run per new
//!   local file, exactly once; [`completion`] prints shell completion scripts.
//! - [`cluster`] connects (kubeconfig, context, namespace); [`create`] creates runs; [`watch`] follows one.
//! - [`steps`] orders a run's step graph; [`table`], [`human`], [`style`], [`progress`] and
//!   [`output`] shape what is printed.
//! - `ui` serves the web UI ([`crate::ui`]).
//!
//! Exit status: 0 on success, 1 on an error, a failed line of `submit` or a run that did not
//! succeed (`run --wait`), 2 on a command-line mistake.

pub mod args;
pub mod cluster;
pub mod completion;
pub mod control;
pub mod create;
pub mod dedupe;
pub mod error;
pub mod get;
pub mod graph;
pub mod human;
pub mod lint;
pub mod list;
pub mod logs;
pub mod output;
pub mod param_file;
pub mod params;
pub mod progress;
pub mod run;
pub mod steps;
pub mod style;
pub mod submit;
pub mod table;
pub mod watch;
pub mod watch_dir;

use std::process::ExitCode;

use args::{Cli, Command};
use cluster::Cluster;
use error::CliError;

/// Entry point of the `kubectl-dag` binary.
pub fn main() -> ExitCode {
    completion::answer_shell();
    let cli = Cli::parse_args();
    cli.target.color.choice().write_global();
    let result = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(execute(cli)),
        Err(e) => Err(CliError::Invalid(format!("cannot start the async runtime: {e}"))),
    };
    match result {
        Ok(code) => code,
        Err(e) if e.is_closed_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            output::error(&e.to_string());
            ExitCode::FAILURE
        }
    }
}

async fn execute(cli: Cli) -> Result<ExitCode, CliError> {
    // Every command but `lint` and `completion` talks to the cluster.
    let connect = || Cluster::connect(cli.target.context.as_deref(), cli.target.namespace.as_deref());
    match cli.command {
        Command::Run(args) => {
            let request = run::RunRequest {
                params: params::collect(&args.params)?,
                dag: args.dag,
                request_id: args.request_id,
                wait: args.wait,
                follow: args.follow,
            };
            run::run(&connect().await?, request).await
        }
        Command::Submit(args) => {
            let request = submit::SubmitRequest {
                dag: &args.dag,
                param_file: &args.param_file,
                parallel: usize::from(args.parallel),
                dry_run: args.dry_run,
            };
            submit::submit(&connect().await?, request).await
        }
        Command::List(args) => {
            let request = list::ListRequest {
                filter: list::Filter {
                    dag: args.dag,
                    phases: args.phase,
                    params: params::collect(&args.params)?,
                },
                scope: cluster::RunScope {
                    all_namespaces: args.all_namespaces,
                    selector: args.selector,
                    fields: None,
                    limit: args.limit,
                    continue_token: args.continue_token,
                },
                format: args.output,
                wide: args.wide,
                watch: args.watch,
            };
            list::list(&connect().await?, request).await
        }
        Command::Get(args) => get::get(&connect().await?, &args.run, args.output).await,
        Command::Logs(args) if args.follow => {
            logs::follow_until_finished(&connect().await?, &args.run, args.step.as_deref()).await
        }
        Command::Logs(args) => logs::print(&connect().await?, &args.run, args.step.as_deref()).await,
        Command::Cancel(args) => control::cancel(&connect().await?, &args.run).await,
        Command::Retry(args) => control::retry(&connect().await?, &args.run).await,
        Command::Graph(args) => graph::graph(&connect().await?, &args.name, args.output).await,
        Command::Lint(args) => lint::lint(&args.files),
        Command::Ui(args) => {
            let cluster = connect().await?;
            crate::ui::serve(cluster, args.all_namespaces, args.port).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Watch(args) => watch_dir::watch(&connect().await?, args).await,
        Command::Completion { shell } => {
            output::emit(&completion::script(shell))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
