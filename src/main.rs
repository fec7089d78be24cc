//! `kubedag`: argument parsing and wiring only.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

use kubedag::admission::registration::{Endpoint, Registration};
use kubedag::admission::server::{CertSource, WebhookOptions, install_crypto_provider};
use std::sync::Arc;

use kubedag::controller::{self, Caps, EventLevel, OperatorConfig, WatcherSettings};
use kubedag::runtime::server::{self, Health};
use kubedag::runtime::watch_trigger::WatchTriggerOptions;
use kubedag::runtime::{self, leader};

#[derive(Parser)]
#[command(
    name = "kubedag",
    version,
    about = "DAG workflows on Kubernetes: one Job per step per run"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator: controllers, admission webhook, metrics and health endpoints.
    Operator(Box<OperatorArgs>),
    /// Print the CustomResourceDefinitions as YAML (what `make crds` writes to crds/).
    Crds,
    /// Print a JSON Schema of Dag and DagRun manifests for editors (the YAML language server:
    /// `# yaml-language-server: $schema=kubedag.schema.json`).
    Schema,
    /// Watch one directory or bucket DagTrigger and submit a run per new input (what the
    /// watcher Deployment the operator makes for each such trigger runs).
    WatchTrigger(WatchTriggerArgs),
}

#[derive(clap::Args)]
struct WatchTriggerArgs {
    /// Namespace of the trigger.
    #[arg(long, env = "KUBEDAG_TRIGGER_NAMESPACE")]
    namespace: String,
    /// Name of the trigger.
    #[arg(long, env = "KUBEDAG_TRIGGER")]
    trigger: String,
    /// Where the trigger's volume is mounted (directory triggers).
    #[arg(long, env = "KUBEDAG_WATCH_ROOT", default_value = kubedag::runtime::watch_trigger::MOUNT_PATH)]
    root: std::path::PathBuf,
    /// Seconds between full re-scans (a directory's inotify events wake it sooner).
    #[arg(long, env = "KUBEDAG_RESCAN_SECONDS", default_value_t = 30)]
    rescan_seconds: u32,
    /// Log format.
    #[arg(long, env = "KUBEDAG_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

#[derive(clap::Args)]
struct OperatorArgs {
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "KUBEDAG_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "KUBEDAG_NAMESPACE")]
    namespace: Option<String>,
    /// Parallel reconciles.
    #[arg(long, env = "KUBEDAG_CONCURRENCY", default_value_t = controller::DEFAULT_CONCURRENCY)]
    concurrency: u16,
    /// Parallel reconciles of starting runs (claim, first Jobs, status); default: half of --concurrency.
    #[arg(long, env = "KUBEDAG_START_CONCURRENCY")]
    start_concurrency: Option<u16>,
    /// Seconds a Running step's Job may be missing before it is recreated (it was deleted by hand).
    #[arg(long, default_value_t = 10)]
    missing_job_grace_seconds: i64,
    /// Seconds a step's pod may take to start before its attempt fails, when Kubernetes reports
    /// why it cannot start (image pull errors, a refused pod, missing config). A pod that only
    /// waits for capacity is never failed by this.
    #[arg(long, env = "KUBEDAG_POD_START_TIMEOUT", default_value_t = controller::DEFAULT_POD_START_TIMEOUT_SECONDS)]
    pod_start_timeout: i64,
    /// Operator-wide cap on running DagRuns (0 = unlimited); extra runs wait as Queued.
    #[arg(long, env = "KUBEDAG_MAX_RUNNING_RUNS", default_value_t = 0)]
    max_running_runs: usize,
    /// Operator-wide cap on running step Jobs (0 = unlimited); ready steps wait until Jobs finish.
    #[arg(long, env = "KUBEDAG_MAX_RUNNING_JOBS", default_value_t = 0)]
    max_running_jobs: usize,
    /// Keep at most this many finished runs per Dag (0 = keep all); the oldest are deleted with their Jobs.
    #[arg(long, env = "KUBEDAG_HISTORY_LIMIT", default_value_t = 0)]
    history_limit: usize,
    /// Kubernetes Events to publish on DagRuns: failures (warnings only), runs (also run start and
    /// success) or all (also every step start and end).
    #[arg(long, env = "KUBEDAG_EVENTS", value_enum, default_value_t = EventLevel::Failures)]
    events: EventLevel,
    /// Image of the watcher Deployment of directory and bucket DagTriggers (the kubedag image;
    /// the chart sets the operator's own). Unset: such triggers report WatcherNotReady.
    #[arg(long, env = "KUBEDAG_WATCHER_IMAGE")]
    watcher_image: Option<String>,
    /// Seconds between a watcher's full re-scans of its directory or bucket.
    #[arg(long, env = "KUBEDAG_WATCHER_RESCAN_SECONDS", default_value_t = 30)]
    watcher_rescan_seconds: u32,
    /// Log format.
    #[arg(long, env = "KUBEDAG_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Elect a leader among replicas through a Lease; only the leader reconciles.
    #[arg(long, env = "KUBEDAG_LEADER_ELECT")]
    leader_elect: bool,
    /// Namespace of the leader Lease (default: POD_NAMESPACE, else --namespace, else default).
    #[arg(long, env = "POD_NAMESPACE")]
    leader_election_namespace: Option<String>,
    /// Name of this replica in events and leases (default: the host name).
    #[arg(long, env = "POD_NAME")]
    instance: Option<String>,

    /// Serve the validating admission webhook (HTTPS) on this address.
    #[arg(long, env = "KUBEDAG_WEBHOOK_ADDR")]
    webhook_addr: Option<SocketAddr>,
    /// Register the webhook by URL (an operator outside the cluster), e.g. https://127.0.0.1:8443.
    #[arg(long, conflicts_with = "webhook_service")]
    webhook_url: Option<String>,
    /// Register the webhook through this Service, as NAMESPACE/NAME (an in-cluster operator).
    #[arg(long, env = "KUBEDAG_WEBHOOK_SERVICE")]
    webhook_service: Option<String>,
    /// Port of that Service.
    #[arg(long, env = "KUBEDAG_WEBHOOK_SERVICE_PORT", default_value_t = 443)]
    webhook_service_port: i32,
    /// Name of the ValidatingWebhookConfiguration the operator keeps current.
    #[arg(long, env = "KUBEDAG_WEBHOOK_CONFIG_NAME", default_value = "kubedag")]
    webhook_config_name: String,
    /// failurePolicy of the webhook: Ignore (the controller still enforces every rule) or Fail.
    #[arg(long, env = "KUBEDAG_WEBHOOK_FAILURE_POLICY", default_value = "Ignore", value_parser = ["Ignore", "Fail"])]
    webhook_failure_policy: String,
    /// Use tls.crt/tls.key from this directory (cert-manager or Helm) instead of the self-managed CA.
    #[arg(long, env = "KUBEDAG_WEBHOOK_CERT_DIR")]
    webhook_cert_dir: Option<std::path::PathBuf>,
    /// Secret holding the self-managed CA, as NAMESPACE/NAME.
    #[arg(long, env = "KUBEDAG_WEBHOOK_CA_SECRET")]
    webhook_ca_secret: Option<String>,
}

impl OperatorArgs {
    fn webhook(&self) -> Result<Option<WebhookOptions>, String> {
        let Some(addr) = self.webhook_addr else {
            return Ok(None);
        };
        let endpoint = match (&self.webhook_url, &self.webhook_service) {
            (Some(url), _) => Some(Endpoint::Url(url.trim_end_matches('/').to_string())),
            (None, Some(service)) => {
                let (namespace, name) = split_ref(service, "--webhook-service")?;
                Some(Endpoint::Service {
                    namespace,
                    name,
                    port: self.webhook_service_port,
                })
            }
            (None, None) => None,
        };
        let certs = match &self.webhook_cert_dir {
            Some(dir) => CertSource::Mounted(dir.clone()),
            None => {
                let default_ns = self.namespace.clone().unwrap_or_else(|| "default".into());
                let secret = self
                    .webhook_ca_secret
                    .clone()
                    .unwrap_or_else(|| format!("{default_ns}/kubedag-webhook-ca"));
                let (namespace, secret) = split_ref(&secret, "--webhook-ca-secret")?;
                let dns_names = match &endpoint {
                    Some(Endpoint::Service { namespace, name, .. }) => vec![
                        format!("{name}.{namespace}.svc"),
                        format!("{name}.{namespace}.svc.cluster.local"),
                        format!("{name}.{namespace}"),
                        name.clone(),
                    ],
                    _ => vec!["localhost".into()],
                };
                CertSource::SelfManaged {
                    namespace,
                    secret,
                    dns_names,
                }
            }
        };
        let registration = endpoint.map(|endpoint| Registration {
            name: self.webhook_config_name.clone(),
            endpoint,
            failure_policy: self.webhook_failure_policy.clone(),
            namespace: self.namespace.clone(),
        });
        Ok(Some(WebhookOptions {
            addr,
            certs,
            registration,
        }))
    }
}

fn split_ref(value: &str, flag: &str) -> Result<(String, String), String> {
    value
        .split_once('/')
        .map(|(ns, name)| (ns.to_string(), name.to_string()))
        .ok_or_else(|| format!("{flag} {value:?}: expected NAMESPACE/NAME"))
}

/// Writes `text` to stdout; a reader that went away (`| head`) is not an error.
fn print_out(text: &str) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds => print_out(&kubedag::api::crds_yaml()?),
        Command::Schema => print_out(&format!("{:#}\n", kubedag::api::json_schema::manifest_schema())),
        Command::WatchTrigger(args) => {
            init_logging(&args.log_format);
            let client = kube::Client::try_default().await?;
            let options = WatchTriggerOptions {
                namespace: args.namespace,
                trigger: args.trigger,
                root: args.root,
                rescan_seconds: args.rescan_seconds,
            };
            Ok(kubedag::runtime::watch_trigger::run(client, options).await?)
        }
        Command::Operator(args) => {
            init_logging(&args.log_format);
            install_crypto_provider();
            let webhook = args.webhook()?;
            let client = kube::Client::try_default().await?;
            let config = OperatorConfig {
                namespace: args.namespace.clone(),
                missing_job_grace_seconds: args.missing_job_grace_seconds,
                pod_start_timeout_seconds: args.pod_start_timeout,
                concurrency: args.concurrency,
                start_concurrency: args.start_concurrency,
                caps: Caps {
                    max_running_runs: args.max_running_runs,
                    max_running_jobs: args.max_running_jobs,
                },
                history_limit: args.history_limit,
                events: args.events,
                watcher: WatcherSettings {
                    image: args.watcher_image.clone(),
                    rescan_seconds: args.watcher_rescan_seconds,
                },
            };
            let instance = args.instance.clone().unwrap_or_else(hostname);
            let health = Arc::new(Health::default());
            let server = tokio::spawn(server::serve(args.metrics_addr, health.clone()));
            if args.leader_elect {
                let namespace = args
                    .leader_election_namespace
                    .clone()
                    .or(args.namespace.clone())
                    .unwrap_or("default".into());
                let leading = leader::acquire(client.clone(), &namespace, &instance).await?;
                tokio::spawn(leader::exit_on_loss(leading));
            }
            tokio::select! {
                () = runtime::run(client, config, health, instance, webhook) => Ok(()),
                served = server => Err(format!("metrics server stopped: {served:?}").into()),
            }
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "kubedag".into())
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,kube=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
