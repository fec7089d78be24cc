//! Least privilege for what a trigger's watcher creates. RBAC lets the watcher's service account
//! create DagRuns but cannot restrict what they say, so the webhook refuses a run from it unless
//! it is of that trigger's Dag and carries `kubedag.io/trigger=<that trigger>`.

use crate::api::{DagRun, labels};

/// The trigger whose watcher is `username` (`system:serviceaccount:NAMESPACE:TRIGGER-watcher`,
/// see `watch::watcher_name`) in `namespace`; None for any other user. The caller confirms
/// that the trigger exists (a service account named like this without one is not a watcher).
pub fn watcher_trigger<'a>(username: &'a str, namespace: &str) -> Option<&'a str> {
    let account = username.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = account.split_once(':')?;
    (ns == namespace).then_some(())?;
    name.strip_suffix("-watcher").filter(|t| !t.is_empty())
}

/// Refuses `run` unless it is of Dag `dag` and labelled with trigger `trigger`, naming both.
pub fn check_watcher_run(run: &DagRun, trigger: &str, dag: &str) -> Result<(), String> {
    let label = run.metadata.labels.as_ref().and_then(|l| l.get(labels::TRIGGER));
    if run.spec.dag_ref.name == dag && label.map(String::as_str) == Some(trigger) {
        return Ok(());
    }
    Err(format!(
        "the watcher of DagTrigger {trigger:?} may only create runs of its Dag {dag:?} labelled {}={trigger}; \
         this run is of Dag {:?} with label {}={}",
        labels::TRIGGER,
        run.spec.dag_ref.name,
        labels::TRIGGER,
        label.map(|l| format!("{l:?}")).unwrap_or_else(|| "(none)".into()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DagRef, DagRunSpec};

    fn run(dag: &str, trigger: Option<&str>) -> DagRun {
        let mut r = DagRun::new(
            "r",
            DagRunSpec {
                dag_ref: DagRef { name: dag.into() },
                ..Default::default()
            },
        );
        r.metadata.labels = trigger.map(|t| [(labels::TRIGGER.to_string(), t.to_string())].into());
        r
    }

    #[test]
    fn only_a_watcher_account_of_this_namespace_names_a_trigger() {
        assert_eq!(
            watcher_trigger("system:serviceaccount:ns:scan-watcher", "ns"),
            Some("scan")
        );
        assert_eq!(watcher_trigger("system:serviceaccount:other:scan-watcher", "ns"), None);
        assert_eq!(watcher_trigger("system:serviceaccount:ns:default", "ns"), None);
        assert_eq!(watcher_trigger("system:serviceaccount:ns:-watcher", "ns"), None);
        assert_eq!(watcher_trigger("kubernetes-admin", "ns"), None);
    }

    #[test]
    fn a_watcher_run_must_be_of_its_dag_and_labelled_with_its_trigger() {
        assert!(check_watcher_run(&run("d", Some("scan")), "scan", "d").is_ok());
        let other_dag = check_watcher_run(&run("admin-dag", Some("scan")), "scan", "d").unwrap_err();
        assert!(other_dag.contains("\"scan\"") && other_dag.contains("\"d\"") && other_dag.contains("\"admin-dag\""));
        let unlabelled = check_watcher_run(&run("d", None), "scan", "d").unwrap_err();
        assert!(unlabelled.contains("(none)"), "{unlabelled}");
        assert!(check_watcher_run(&run("d", Some("other")), "scan", "d").is_err());
    }
}
