//! The Job timeline of one workload: per step with dependencies, the time from its last
//! dependency's Job seen Complete to its own Job seen created (the "transition"), and the
//! per-Job CSV (`jobs-<key>.csv`) for looking into a tail.

use std::collections::HashMap;

use crate::recorder::JobRec;

/// The header of the per-Job CSV; times in s since the workload's first create, transition in ms.
const CSV_HEADER: &str = "run,step,created_s,complete_s,ready_s,transition_ms\n";

/// (transitions in s, CSV text) of `jobs`, whose steps depend on each other as in `steps`
/// (step name -> dependencies); CSV rows in creation order, times relative to `t0`. A Job whose
/// dependencies did not all complete has no transition.
pub fn transitions(jobs: &[JobRec], steps: &[(String, Vec<String>)], t0: f64) -> (Vec<f64>, String) {
    let by_step: HashMap<(&str, &str), &JobRec> = jobs.iter().map(|j| ((j.run.as_str(), j.step.as_str()), j)).collect();
    let deps: HashMap<&str, &Vec<String>> = steps.iter().map(|(n, d)| (n.as_str(), d)).collect();
    let mut transitions = Vec::new();
    let mut csv = String::from(CSV_HEADER);
    let mut sorted: Vec<&JobRec> = jobs.iter().collect();
    sorted.sort_by(|a, b| a.added.total_cmp(&b.added));
    for job in sorted {
        let depends = deps.get(job.step.as_str()).filter(|d| !d.is_empty());
        let ready_at = depends
            .and_then(|depends| {
                depends
                    .iter()
                    .map(|d| by_step.get(&(job.run.as_str(), d.as_str())).and_then(|j| j.complete))
                    .collect::<Option<Vec<f64>>>()
            })
            .map(|r| r.into_iter().fold(f64::MIN, f64::max));
        if let Some(ready_at) = ready_at {
            transitions.push((job.added - ready_at).max(0.0));
        }
        let opt = |x: Option<f64>| x.map_or(String::new(), |v| format!("{:.3}", v - t0));
        csv.push_str(&format!(
            "{},{},{:.3},{},{},{}\n",
            job.run,
            job.step,
            job.added - t0,
            opt(job.complete),
            opt(ready_at),
            ready_at.map_or(String::new(), |r| format!("{:.1}", (job.added - r) * 1000.0))
        ));
    }
    (transitions, csv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(run: &str, step: &str, added: f64, complete: Option<f64>) -> JobRec {
        JobRec {
            run: run.into(),
            step: step.into(),
            added,
            complete,
            failed: false,
        }
    }

    #[test]
    fn a_transition_starts_at_the_last_dependency_done_and_stays_within_the_run() {
        let steps = vec![
            ("a".to_string(), vec![]),
            ("b".to_string(), vec![]),
            ("c".to_string(), vec!["a".to_string(), "b".to_string()]),
        ];
        let jobs = vec![
            job("r1", "c", 10.5, None),
            job("r1", "a", 1.0, Some(9.0)),
            job("r1", "b", 1.0, Some(10.0)),
            job("r2", "a", 1.0, None),
            job("r2", "c", 12.0, None),
        ];
        let (transitions, csv) = transitions(&jobs, &steps, 1.0);
        assert_eq!(transitions, vec![0.5], "r2's c has a dependency not done");
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows[0], CSV_HEADER.trim_end());
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[4], "r1,c,9.500,,9.000,500.0");
        assert_eq!(rows[5], "r2,c,11.000,,,");
    }
}
