//! `kubectl dag`: the kubectl plugin (binary `kubectl-dag`) for running and inspecting DAG workflows.
//!
//! - [`args`] is the command line (clap), with help and examples.
//! - [`run`], [`submit`], [`list`], [`get`], [`logs`] and [`control`] (cancel, retry) are the commands.
//! - [`params`] parses `-p KEY=VALUE`; [`param_file`] reads CSV / JSON Lines parameter files;
//!   [`dedupe`] finds duplicate parameter sets before submitting.
//! - [`cluster`] connects (kubeconfig, context, namespace); [`create`] creates runs; [`watch`] follows one.
//! - [`steps`] orders a run's step graph; [`table`], [`human`], [`style`], [`progress`] and
//!   [`output`] shape what is printed.
//!
//! Exit status: 0 on success, 1 on an error, a failed line of `submit` or a run that did not
//! succeed (`run --wait`), 2 on a command-line mistake.

pub mod args;
pub mod cluster;
pub mod control;
pub mod create;
pub mod dedupe;
pub mod error;
pub mod get;
pub mod human;
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

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use args::{Cli, Command};
use cluster::Cluster;
use error::CliError;

/// Name of the executable, which shell completion scripts complete.
const BIN_NAME: &str = "kubectl-dag";

/// Entry point of the `kubectl-dag` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completion { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), BIN_NAME, &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            output::error(&format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli)) {
        Ok(code) => code,
        Err(e) if e.is_closed_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            output::error(&e.to_string());
            ExitCode::FAILURE
        }
    }
}

async fn execute(cli: Cli) -> Result<ExitCode, CliError> {
    let cluster = Cluster::connect(cli.target.context.as_deref(), cli.target.namespace.as_deref()).await?;
    match cli.command {
        Command::Run(args) => {
            let request = run::RunRequest {
                params: params::collect(&args.params)?,
                dag: args.dag,
                request_id: args.request_id,
                wait: args.wait,
                follow: args.follow,
            };
            run::run(&cluster, request).await
        }
        Command::Submit(args) => {
            let request = submit::SubmitRequest {
                dag: &args.dag,
                param_file: &args.param_file,
                parallel: usize::from(args.parallel),
                dry_run: args.dry_run,
            };
            submit::submit(&cluster, request).await
        }
        Command::List(args) => {
            let filter = list::Filter {
                dag: args.dag,
                phases: args.phase,
                params: params::collect(&args.params)?,
            };
            list::list(&cluster, &filter, args.output, args.wide).await
        }
        Command::Get(args) => get::get(&cluster, &args.run, args.output).await,
        Command::Logs(args) if args.follow => {
            logs::follow_until_finished(&cluster, &args.run, args.step.as_deref()).await
        }
        Command::Logs(args) => logs::print(&cluster, &args.run, args.step.as_deref()).await,
        Command::Cancel(args) => control::cancel(&cluster, &args.run).await,
        Command::Retry(args) => control::retry(&cluster, &args.run).await,
        Command::Completion { .. } => unreachable!("handled before connecting"),
    }
}
