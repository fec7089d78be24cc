//! `kubectl dag logs RUN [STEP] [-f]`: the logs of a run's step pods (labels `kubedag.io/run`,
//! `kubedag.io/step`), each line prefixed with its step (and attempt, from the second one on).

use std::collections::HashSet;
use std::pin::pin;
use std::process::ExitCode;
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::api::{DagRun, labels};

use super::cluster::Cluster;
use super::error::CliError;
use super::output::{emit_line, warn};
use super::progress::Progress;
use super::steps;
use super::style::{Style, step_color};

/// How long `-f` lets open log streams drain after the run finished.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Prints the logs of every started step pod of the run (or of one step), in dependency order.
pub async fn print(cluster: &Cluster, run_name: &str, step: Option<&str>) -> Result<ExitCode, CliError> {
    let run: DagRun = cluster.get("DagRun", run_name).await?;
    check_step(&run, step)?;
    let pods = pods_of(cluster, &run, step).await?;
    if pods.is_empty() {
        let phase = run.phase();
        warn(&format!(
            "DagRun {run_name:?} has no step pods{} (phase {})",
            step.map(|s| format!(" for step {s:?}")).unwrap_or_default(),
            phase.as_str()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let api: Api<Pod> = cluster.api();
    let style = Style::stdout();
    let mut complete = true;
    for pod in &pods {
        let prefix = prefix_of(pod, style);
        if !has_started(pod) {
            warn(&format!("{}: pod {} has not started yet", step_of(pod), pod.name_any()));
            continue;
        }
        match api.logs(&pod.name_any(), &LogParams::default()).await {
            Ok(text) => {
                for line in text.lines() {
                    emit_line(&format!("{prefix}{line}"))?;
                }
            }
            Err(e) => {
                complete = false;
                warn(&CliError::kube(format!("cannot read the logs of pod {}", pod.name_any()))(e).to_string());
            }
        }
    }
    Ok(if complete { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `logs -f`: streams the step logs until the run finishes.
pub async fn follow_until_finished(
    cluster: &Cluster,
    run_name: &str,
    step: Option<&str>,
) -> Result<ExitCode, CliError> {
    let run: DagRun = cluster.get("DagRun", run_name).await?;
    check_step(&run, step)?;
    follow_while_waiting(cluster, &run, step, &Progress::quiet(), |_| {}).await?;
    Ok(ExitCode::SUCCESS)
}

/// Streams the step logs (of all steps, or of `step`) while waiting for the run to finish,
/// printing through `out` so a live progress line is not torn; `on_change` sees each version of
/// the run. Returns the finished run once every log stream has ended.
pub async fn follow_while_waiting(
    cluster: &Cluster,
    run: &DagRun,
    step: Option<&str>,
    out: &Progress,
    on_change: impl FnMut(&DagRun),
) -> Result<DagRun, CliError> {
    let (finished_tx, finished_rx) = watch::channel(None);
    let name = run.name_any();
    let waiting = async {
        // Owned by this future: on an error it is dropped here, which stops the follower at once.
        let finished_tx = finished_tx;
        let finished = super::watch::until_finished(cluster, &name, on_change).await;
        if let Ok(run) = &finished {
            let _ = finished_tx.send(Some(run.clone()));
        }
        finished
    };
    let (finished, ()) = tokio::join!(waiting, follow(cluster, run, step, out, finished_rx));
    finished
}

/// Streams the log of each of the run's step pods from the moment the pod watch shows its
/// container started, until `finished` holds the finished run and the open streams have ended.
async fn follow(
    cluster: &Cluster,
    run: &DagRun,
    step: Option<&str>,
    out: &Progress,
    mut finished: watch::Receiver<Option<DagRun>>,
) {
    let mut streams = PodStreams::new(cluster.api(), out.clone());
    let config = watcher::Config::default().labels(&selector(run, step));
    let mut pods = pin!(
        watcher(cluster.api::<Pod>(), config)
            .default_backoff()
            .applied_objects()
    );
    let mut failing = false;
    let last = loop {
        tokio::select! {
            changed = finished.changed() => {
                if changed.is_err() {
                    streams.abort();
                    return;
                }
                if let Some(run) = finished.borrow_and_update().clone() {
                    break run;
                }
            }
            Some(pod) = pods.next() => match pod {
                Ok(pod) => {
                    failing = false;
                    streams.start(&pod);
                }
                // The watcher retries with backoff; say so once per streak of failures.
                Err(e) if !failing => {
                    failing = true;
                    out.suspend(|| warn(&format!("watching the pods of DagRun {:?} failed, retrying: {e}", run.name_any())));
                }
                Err(_) => {}
            },
        }
    };
    // The run's end and its pods' last changes come on different watches: a last listing starts
    // the streams of pods whose start the pod watch has not shown yet.
    match pods_of(cluster, &last, step).await {
        Ok(pods) => pods.iter().for_each(|pod| streams.start(pod)),
        Err(e) => out.suspend(|| warn(&e.to_string())),
    }
    streams.drain().await;
}

/// The log streams being followed, one per started pod.
struct PodStreams {
    api: Api<Pod>,
    out: Progress,
    style: Style,
    followed: HashSet<String>,
    tasks: JoinSet<()>,
}

impl PodStreams {
    fn new(api: Api<Pod>, out: Progress) -> PodStreams {
        PodStreams {
            api,
            out,
            style: Style::stdout(),
            followed: HashSet::new(),
            tasks: JoinSet::new(),
        }
    }

    /// Starts following the pod's log once its container has started; once per pod.
    fn start(&mut self, pod: &Pod) {
        if has_started(pod) && self.followed.insert(pod.name_any()) {
            let prefix = prefix_of(pod, self.style);
            self.tasks
                .spawn(stream_pod(self.api.clone(), pod.name_any(), prefix, self.out.clone()));
        }
    }

    /// Waits for the streams to end (the kubelet ends them when the containers exit).
    async fn drain(mut self) {
        let drained =
            tokio::time::timeout(DRAIN_TIMEOUT, async { while self.tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            self.out
                .suspend(|| warn("some log streams were still open after the run finished; stopped following them"));
        }
    }

    fn abort(mut self) {
        self.tasks.abort_all();
    }
}

async fn stream_pod(api: Api<Pod>, pod: String, prefix: String, out: Progress) {
    let params = LogParams {
        follow: true,
        ..Default::default()
    };
    let reader = match api.log_stream(&pod, &params).await {
        Ok(reader) => reader,
        Err(e) => {
            out.suspend(|| warn(&CliError::kube(format!("cannot follow the logs of pod {pod}"))(e).to_string()));
            return;
        }
    };
    let mut lines = pin!(reader.lines());
    while let Some(line) = lines.next().await {
        match line {
            Ok(line) => {
                if out.print_line(&format!("{prefix}{line}")).is_err() {
                    return;
                }
            }
            Err(e) => {
                out.suspend(|| warn(&format!("the log stream of pod {pod} broke: {e}")));
                return;
            }
        }
    }
}

/// `STEP` must be a step of the run's Dag (when the run knows its steps).
fn check_step(run: &DagRun, step: Option<&str>) -> Result<(), CliError> {
    let (Some(step), Some(status)) = (step, run.status.as_ref()) else {
        return Ok(());
    };
    let views = steps::ordered(status.dag_spec.as_deref(), &status.steps);
    if views.is_empty() || views.iter().any(|v| v.name == step) {
        return Ok(());
    }
    let known: Vec<&str> = views.iter().map(|v| v.name).collect();
    Err(CliError::Invalid(format!(
        "{step:?} is not a step of DagRun {:?} (steps: {})",
        run.name_any(),
        known.join(", ")
    )))
}

/// The run's step pods (optionally of one step), in dependency order, then by attempt.
async fn pods_of(cluster: &Cluster, run: &DagRun, step: Option<&str>) -> Result<Vec<Pod>, CliError> {
    let mut pods = cluster
        .api::<Pod>()
        .list(&ListParams::default().labels(&selector(run, step)))
        .await
        .map_err(CliError::kube(format!(
            "cannot list the pods of DagRun {:?}",
            run.name_any()
        )))?
        .items;
    let status = run.status.clone().unwrap_or_default();
    let order: Vec<String> = steps::ordered(status.dag_spec.as_deref(), &status.steps)
        .iter()
        .map(|v| v.name.to_string())
        .collect();
    pods.sort_by_key(|pod| {
        let step = step_of(pod);
        (
            order.iter().position(|s| *s == step).unwrap_or(order.len()),
            step,
            attempt_of(pod),
            pod.creation_timestamp(),
        )
    });
    Ok(pods)
}

/// The label selector of the run's step pods, or of one step's.
fn selector(run: &DagRun, step: Option<&str>) -> String {
    let mut selector = format!("{}={}", labels::RUN, run.name_any());
    if let Some(step) = step {
        selector.push_str(&format!(",{}={step}", labels::STEP));
    }
    selector
}

/// Whether the pod's container has run (logs exist).
pub fn has_started(pod: &Pod) -> bool {
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    statuses.is_some_and(|all| {
        all.iter()
            .filter_map(|c| c.state.as_ref())
            .any(|state| state.running.is_some() || state.terminated.is_some())
    })
}

pub fn step_of(pod: &Pod) -> String {
    pod.labels()
        .get(labels::STEP)
        .cloned()
        .unwrap_or_else(|| pod.name_any())
}

pub fn attempt_of(pod: &Pod) -> u32 {
    pod.labels()
        .get(labels::ATTEMPT)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1)
}

fn prefix_of(pod: &Pod, style: Style) -> String {
    let step = step_of(pod);
    let label = line_label(&step, attempt_of(pod));
    format!("{} ", style.paint(Some(step_color(&step)), &label))
}

/// `[step]` for the first attempt, `[step#2]` for later ones.
pub fn line_label(step: &str, attempt: u32) -> String {
    if attempt <= 1 {
        format!("[{step}]")
    } else {
        format!("[{step}#{attempt}]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateWaiting, ContainerStatus, PodStatus};

    fn pod(step: &str, attempt: &str, state: ContainerState) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some(format!("{step}-{attempt}"));
        pod.metadata.labels = Some(
            [
                (labels::STEP.to_string(), step.to_string()),
                (labels::ATTEMPT.to_string(), attempt.to_string()),
            ]
            .into(),
        );
        pod.status = Some(PodStatus {
            container_statuses: Some(vec![ContainerStatus {
                state: Some(state),
                ..Default::default()
            }]),
            ..Default::default()
        });
        pod
    }

    #[test]
    fn labels_name_the_step_and_later_attempts() {
        assert_eq!(line_label("fetch", 1), "[fetch]");
        assert_eq!(line_label("fetch", 3), "[fetch#3]");
        let p = pod("calibrate", "2", ContainerState::default());
        assert_eq!(prefix_of(&p, Style::PLAIN), "[calibrate#2] ");
    }

    #[test]
    fn only_pods_whose_container_ran_have_logs() {
        let waiting = ContainerState {
            waiting: Some(ContainerStateWaiting::default()),
            ..Default::default()
        };
        assert!(!has_started(&pod("a", "1", waiting)));
        let running = ContainerState {
            running: Some(Default::default()),
            ..Default::default()
        };
        assert!(has_started(&pod("a", "1", running)));
        assert!(!has_started(&Pod::default()));
    }
}
