use super::*;
use proptest::prelude::*;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

/// Run `name` of set `set` (params `file=f<set>`, `mode=<set % 2>`), created at `created`.
pub(super) fn row(name: &str, set: usize, created: i64, phase: RunPhase) -> RunRow {
    let params: BTreeMap<String, String> = [
        ("file".to_string(), format!("f{set:02}.fits")),
        ("mode".to_string(), format!("m{}", set % 2)),
    ]
    .into();
    RunRow {
        namespace: "ns".into(),
        name: name.into(),
        dag: "img".into(),
        phase,
        param_hash: params::param_hash(&params),
        params,
        created: Some(at(created)),
        started: Some(at(created + 1)),
        finished: phase.is_terminal().then(|| at(created + 11)),
        retries: 0,
    }
}

/// 30 runs of 10 sets: set i has runs at i, i+100 and i+200; the last one's phase is Succeeded
/// for even sets, Failed for odd ones.
fn thirty() -> Vec<RunRow> {
    let mut rows = Vec::new();
    for round in 0..3 {
        for set in 0..10 {
            let phase = match (round, set % 2) {
                (2, 0) => RunPhase::Succeeded,
                (2, _) => RunPhase::Failed,
                _ => RunPhase::Cancelled,
            };
            rows.push(row(&format!("r{round}-{set}"), set, round * 100 + set as i64, phase));
        }
    }
    rows
}

#[test]
fn thirty_runs_of_ten_sets_make_ten_groups_with_the_latest_phase() {
    let rows = thirty();
    let page = page(&rows, &Query::default(), at(1000));
    assert_eq!((page.total, page.matched, page.groups.len()), (10, 10, 10));
    assert_eq!(page.columns, ["file", "mode"]);
    for group in &page.groups {
        assert_eq!(group.runs, 3);
        assert!(group.latest.name.starts_with("r2-"), "{}", group.latest.name);
        let set: usize = group.latest.name[3..].parse().unwrap();
        let want = if set.is_multiple_of(2) {
            RunPhase::Succeeded
        } else {
            RunPhase::Failed
        };
        assert_eq!(group.latest.phase, want);
    }
}

#[test]
fn text_filters_values_by_substring_optionally_of_one_param() {
    let rows = thirty();
    let query = |text: &str| Query {
        text: text.into(),
        ..Default::default()
    };
    let names = |q: &Query| -> Vec<String> {
        page(&rows, q, at(1000))
            .groups
            .iter()
            .map(|g| g.params["file"].clone())
            .collect()
    };
    assert_eq!(names(&query("F03")), ["f03.fits"]);
    assert_eq!(page(&rows, &query("m1"), at(1000)).matched, 5);
    assert_eq!(page(&rows, &query("file=m1"), at(1000)).matched, 0);
    assert_eq!(page(&rows, &query("mode=m1"), at(1000)).matched, 5);
    assert_eq!(page(&rows, &query("nothing"), at(1000)).matched, 0);
}

#[test]
fn phase_and_time_filters_look_at_the_latest_run() {
    let rows = thirty();
    let failed = Query {
        phases: vec![RunPhase::Failed],
        ..Default::default()
    };
    assert_eq!(page(&rows, &failed, at(1000)).matched, 5);
    let cancelled = Query {
        phases: vec![RunPhase::Cancelled],
        ..Default::default()
    };
    assert_eq!(page(&rows, &cancelled, at(1000)).matched, 0);
    // Latest runs were created at 200..=209; at 215, "within 10s" keeps 205..=209.
    let recent = Query {
        within: Some(SignedDuration::from_secs(10)),
        ..Default::default()
    };
    assert_eq!(page(&rows, &recent, at(215)).matched, 5);
}

#[test]
fn sorting_by_param_and_paging_cut_in_order() {
    let rows = thirty();
    let columns = ["file".to_string(), "mode".to_string()];
    let query = Query {
        sort: Sort::parse("param:file", &columns).unwrap(),
        descending: true,
        page: 2,
        page_size: 4,
        ..Default::default()
    };
    let page = page(&rows, &query, at(1000));
    assert_eq!((page.page, page.pages), (2, 3));
    let files: Vec<&str> = page.groups.iter().map(|g| g.params["file"].as_str()).collect();
    assert_eq!(files, ["f05.fits", "f04.fits", "f03.fits", "f02.fits"]);
    let beyond = Query { page: 99, ..query };
    assert_eq!(super::page(&rows, &beyond, at(1000)).page, 3);
}

#[test]
fn sort_keys_round_trip_and_unknown_ones_name_the_choices() {
    let columns = ["file".to_string()];
    for key in ["latest", "phase", "runs", "duration", "param:file"] {
        assert_eq!(Sort::parse(key, &columns).unwrap().key(&columns), key);
    }
    let error = Sort::parse("param:nope", &columns).unwrap_err();
    assert!(
        error.contains("\"param:nope\"") && error.contains("param:file"),
        "{error}"
    );
}

#[test]
fn retries_add_up_and_running_durations_use_now() {
    let mut a = row("a", 1, 0, RunPhase::Failed);
    a.retries = 2;
    let mut b = row("b", 1, 5, RunPhase::Running);
    b.retries = 1;
    let groups = group([&a, &b]);
    assert_eq!(groups.len(), 1);
    assert_eq!((groups[0].runs, groups[0].retries), (2, 3));
    assert_eq!(groups[0].latest.name, "b");
    assert_eq!(b.duration(at(26)), Some(SignedDuration::from_secs(20)));
}

proptest! {
    /// Grouping partitions the runs: counts add up, one group per hash, each latest is its newest.
    #[test]
    fn groups_partition_the_runs(sets in proptest::collection::vec((0usize..8, 0i64..50), 0..60)) {
        let rows: Vec<RunRow> = sets
            .iter()
            .enumerate()
            .map(|(i, &(set, t))| row(&format!("r{i:03}"), set, t, RunPhase::Running))
            .collect();
        let groups = group(&rows);
        prop_assert_eq!(groups.iter().map(|g| g.runs).sum::<usize>(), rows.len());
        let distinct: BTreeSet<&str> = rows.iter().map(|r| r.param_hash.as_str()).collect();
        prop_assert_eq!(groups.len(), distinct.len());
        for g in &groups {
            let newest = rows.iter().filter(|r| r.param_hash == g.param_hash)
                .max_by_key(|r| (r.created, r.name.clone())).unwrap();
            prop_assert_eq!(&g.latest.name, &newest.name);
        }
    }

    /// Pages tile the filtered groups: concatenated in order they are exactly the matching groups.
    #[test]
    fn pages_tile_the_matches(
        sets in proptest::collection::vec((0usize..30, 0i64..50), 0..120),
        size in 1usize..9,
        text in "[fm0-9]{0,2}",
        descending: bool,
    ) {
        let rows: Vec<RunRow> = sets
            .iter()
            .enumerate()
            .map(|(i, &(set, t))| row(&format!("r{i:03}"), set, t, RunPhase::Succeeded))
            .collect();
        let query = |page| Query { text: text.clone(), descending, page, page_size: size, ..Default::default() };
        let first = page(&rows, &query(1), at(100));
        let mut seen = Vec::new();
        for n in 1..=first.pages {
            let p = page(&rows, &query(n), at(100));
            prop_assert!(p.groups.len() <= size);
            seen.extend(p.groups.iter().map(|g| g.param_hash.to_string()));
        }
        prop_assert_eq!(seen.len(), first.matched);
        let want: BTreeSet<String> = group(&rows).iter()
            .filter(|g| matches(g, &query(1), at(100)))
            .map(|g| g.param_hash.to_string()).collect();
        prop_assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), want);
    }
}
