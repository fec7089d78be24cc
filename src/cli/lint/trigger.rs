//! The DagTrigger checks of `kubectl dag lint`: what the API server (the CRD's one-source rule)
//! and the trigger's operator or watcher would refuse later, at run time, as `InvalidSchedule`,
//! `InvalidSpec` or `InvalidParams`.

use crate::api::{Dag, DagTrigger, ONE_SOURCE};
use crate::engine::schedule::Schedule;
use crate::engine::trigger::{Variables, render_params, schedule_variables};
use crate::engine::{params, trigger::ParamsError};
use crate::watch::{Found, scan::ScanSpec};

use super::checks::Problem;

/// Checks `trigger`, and its params against `dag` when the linted files hold its Dag (without it
/// the Dag may be in the cluster: only the trigger's own fields are checked).
pub fn check_trigger(trigger: &DagTrigger, dag: Option<&Dag>) -> Vec<Problem> {
    let spec = &trigger.spec;
    let mut problems = Vec::new();
    let sources = [spec.schedule.is_some(), spec.directory.is_some(), spec.bucket.is_some()];
    if sources.iter().filter(|set| **set).count() != 1 {
        problems.push(Problem::at("spec", ONE_SOURCE));
    }
    let (kind, vars) = if let Some(schedule) = &spec.schedule {
        if let Err(e) = Schedule::parse(&schedule.cron, schedule.time_zone.as_deref()) {
            let field = match e {
                crate::engine::schedule::ScheduleError::Cron { .. } => "spec.schedule.cron",
                crate::engine::schedule::ScheduleError::TimeZone { .. } => "spec.schedule.timeZone",
            };
            problems.push(Problem::at(field, e.to_string()));
        }
        ("schedule", schedule_variables("2026-01-01T00:00:00Z"))
    } else if let Some(directory) = &spec.directory {
        pattern_problem("spec.directory", directory.pattern.as_deref(), &mut problems);
        ("directory", file_variables(None))
    } else if let Some(bucket) = &spec.bucket {
        pattern_problem("spec.bucket", bucket.pattern.as_deref(), &mut problems);
        ("bucket", file_variables(Some("etag")))
    } else {
        return problems;
    };
    match render_params(&spec.params, &vars, kind) {
        Err(e @ ParamsError::UnknownVariable { .. }) => {
            let ParamsError::UnknownVariable { param, .. } = &e;
            problems.push(Problem::at(format!("spec.params.{param}"), e.to_string()));
        }
        Ok(rendered) => {
            if let Some(dag) = dag
                && let Err(e) = params::resolve(&spec.dag_ref.name, &dag.spec.params, &rendered)
            {
                let path = match &e {
                    params::ParamError::Undeclared { name, .. } => format!("spec.params.{name}"),
                    params::ParamError::Missing { .. } => "spec.params".to_string(),
                };
                problems.push(Problem::at(path, e.to_string()));
            }
        }
    }
    problems
}

fn pattern_problem(source: &str, pattern: Option<&str>, problems: &mut Vec<Problem>) {
    if let Err(e) = ScanSpec::parse_pattern(pattern) {
        problems.push(Problem::at(format!("{source}.pattern"), format!("{source}.{e}")));
    }
}

/// The variables an input of a directory (no etag) or a bucket has, with sample values.
fn file_variables(etag: Option<&str>) -> Variables {
    Found::new("dir/sample.fits", 1, String::new(), etag.map(str::to_string)).variables()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(yaml: &str) -> DagTrigger {
        serde_yaml::from_str(&format!(
            "apiVersion: kubedag.io/v1alpha1\nkind: DagTrigger\nmetadata: {{name: t}}\nspec:\n  dagRef: {{name: d}}\n{yaml}"
        ))
        .unwrap()
    }

    fn messages(yaml: &str, dag: Option<&Dag>) -> Vec<String> {
        check_trigger(&trigger(yaml), dag)
            .into_iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect()
    }

    #[test]
    fn a_good_trigger_of_each_source_passes() {
        assert!(
            messages(
                "  params: {f: '$(schedule.time)'}\n  schedule: {cron: '*/5 * * * *', timeZone: Europe/Madrid}\n",
                None
            )
            .is_empty()
        );
        assert!(
            messages(
                "  params: {f: '$(file.path)'}\n  directory: {volume: {name: v, emptyDir: {}}, pattern: '*.fits'}\n",
                None
            )
            .is_empty()
        );
        assert!(
            messages(
                "  params: {f: '$(file.etag)'}\n  bucket: {endpoint: 'http://s3:9000', bucket: b}\n",
                None
            )
            .is_empty()
        );
    }

    #[test]
    fn each_fault_is_named_at_its_field() {
        assert_eq!(messages("", None), [format!("spec: {ONE_SOURCE}")]);
        let two = "  schedule: {cron: '@daily'}\n  bucket: {endpoint: e, bucket: b}\n";
        assert_eq!(messages(two, None), [format!("spec: {ONE_SOURCE}")]);
        let cron = messages("  schedule: {cron: '61 * * * *'}\n", None);
        assert!(
            cron.len() == 1 && cron[0].starts_with("spec.schedule.cron: spec.schedule.cron \"61 * * * *\""),
            "{cron:?}"
        );
        let zone = messages("  schedule: {cron: '@daily', timeZone: Mars/Olympus}\n", None);
        assert!(
            zone.len() == 1 && zone[0].starts_with("spec.schedule.timeZone:"),
            "{zone:?}"
        );
        let glob = messages("  directory: {volume: {name: v, emptyDir: {}}, pattern: '['}\n", None);
        assert!(
            glob.len() == 1 && glob[0].starts_with("spec.directory.pattern: spec.directory.pattern"),
            "{glob:?}"
        );
        let etag = messages(
            "  params: {f: '$(file.etag)'}\n  directory: {volume: {name: v, emptyDir: {}}}\n",
            None,
        );
        assert!(
            etag.len() == 1 && etag[0].contains("unknown variable $(file.etag)"),
            "{etag:?}"
        );
    }

    #[test]
    fn params_are_checked_against_the_dag_when_it_is_known() {
        let dag: Dag = serde_yaml::from_str(
            "apiVersion: kubedag.io/v1alpha1\nkind: Dag\nmetadata: {name: d}\nspec:\n  params: [{name: file}]\n  steps: [{name: a, image: busybox, command: ['true']}]\n",
        )
        .unwrap();
        let yaml = "  params: {fil: '$(file.path)'}\n  directory: {volume: {name: v, emptyDir: {}}}\n";
        let found = messages(yaml, Some(&dag));
        assert!(
            found.len() == 1 && found[0].contains("\"fil\" is not declared by Dag \"d\""),
            "{found:?}"
        );
        assert!(messages(yaml, None).is_empty());
    }
}
