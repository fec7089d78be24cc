//! A Dag's runs page: one row per parameter set, the filter form (read from the query string)
//! and the submit form built from the Dag's declared params.

use askama::Template;
use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use crate::api::{Dag, RunPhase};
use crate::cli::args::parse_phase;
use crate::cli::human;
use crate::ui::groups::{self, DEFAULT_PAGE_SIZE, Query, RunRow, Sort};

use super::triggers::TriggerLink;
use super::{Alert, Chrome, dag_url, encode, run_url};

/// The "created within" choices: (query value, label, seconds).
const WITHIN: [(&str, &str, i64); 6] = [
    ("", "any time", 0),
    ("15m", "15 minutes", 900),
    ("1h", "1 hour", 3600),
    ("6h", "6 hours", 6 * 3600),
    ("24h", "24 hours", 86_400),
    ("7d", "7 days", 7 * 86_400),
];

#[derive(Template)]
#[template(path = "runs.html")]
pub struct RunsPage {
    pub chrome: Chrome,
    pub alert: Option<Alert>,
    pub invalid: Option<String>,
    pub dag: String,
    pub base_url: String,
    pub submit_url: String,
    pub token: String,
    pub query: QueryView,
    pub phase_choices: Vec<(&'static str, bool)>,
    pub within_choices: Vec<(&'static str, &'static str, bool)>,
    pub sort_choices: Vec<(String, String, bool)>,
    pub form_params: Vec<FormParam>,
    pub columns: Vec<String>,
    pub rows: Vec<SetRow>,
    pub matched: usize,
    pub total: usize,
    pub run_count: usize,
    pub page: usize,
    pub pages: usize,
    pub prev_url: Option<String>,
    pub next_url: Option<String>,
    /// The DagTriggers that submit runs of this Dag, and the URL of their page.
    pub triggers: Vec<TriggerLink>,
    pub triggers_url: String,
}

/// The filter form's values as typed, to show them back and to build page links.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryView {
    pub text: String,
    pub phases: Vec<String>,
    pub within: String,
    pub sort: String,
    pub desc: bool,
    pub size: usize,
}

impl QueryView {
    /// Reads the query string's pairs (`q`, `phase` (repeatable), `within`, `sort`, `desc`,
    /// `page`, `size`); unknown keys are ignored. Bad values are reported, naming the field,
    /// and left out of the query.
    pub fn parse(pairs: &[(String, String)], columns: &[String]) -> (QueryView, Query, Vec<String>) {
        let mut view = QueryView {
            size: DEFAULT_PAGE_SIZE,
            ..Default::default()
        };
        let mut query = Query::default();
        let mut errors = Vec::new();
        for (key, value) in pairs {
            match key.as_str() {
                "q" => view.text = value.clone(),
                "phase" if value.is_empty() => {}
                "phase" => match parse_phase(value) {
                    Ok(phase) => {
                        query.phases.push(phase);
                        view.phases.push(phase.as_str().to_string());
                    }
                    Err(e) => errors.push(format!("phase: {e}")),
                },
                "within" => match WITHIN.iter().find(|w| w.0 == value) {
                    Some(w) => {
                        view.within = value.clone();
                        query.within = (w.2 > 0).then(|| SignedDuration::from_secs(w.2));
                    }
                    None => errors.push(format!("within: {value:?} is not one of 15m, 1h, 6h, 24h, 7d")),
                },
                "sort" => match Sort::parse(value, columns) {
                    Ok(sort) => {
                        query.sort = sort;
                        view.sort = sort.key(columns);
                    }
                    Err(e) => errors.push(e),
                },
                "desc" => view.desc = !value.is_empty() && value != "0",
                "page" => match value.parse() {
                    Ok(page) => query.page = page,
                    Err(_) => errors.push(format!("page: {value:?} is not a page number")),
                },
                "size" => match value.parse::<usize>() {
                    Ok(size) if size > 0 => view.size = size.min(groups::MAX_PAGE_SIZE),
                    _ => errors.push(format!("size: {value:?} is not a positive number of rows")),
                },
                _ => {}
            }
        }
        if view.sort.is_empty() {
            // Newest first unless the user chose a sort.
            view.sort = "latest".into();
            view.desc = view.desc || !pairs.iter().any(|(k, _)| k == "sort");
        }
        query.text = view.text.clone();
        query.descending = view.desc;
        query.page_size = view.size;
        (view, query, errors)
    }

    /// The query string of this view at `page`.
    pub fn to_query_string(&self, page: usize) -> String {
        let mut parts = vec![format!("q={}", encode(&self.text))];
        parts.extend(self.phases.iter().map(|p| format!("phase={p}")));
        parts.push(format!("within={}", encode(&self.within)));
        parts.push(format!("sort={}", encode(&self.sort)));
        if self.desc {
            parts.push("desc=1".into());
        }
        parts.push(format!("size={}", self.size));
        parts.push(format!("page={page}"));
        parts.join("&")
    }
}

/// A declared parameter in the submit form.
#[derive(Debug, Clone, PartialEq)]
pub struct FormParam {
    pub name: String,
    pub default: String,
    pub required: bool,
    /// Shown back after a refused submit.
    pub value: String,
}

/// One parameter set's row.
#[derive(Debug, Clone, PartialEq)]
pub struct SetRow {
    /// The params' values in column order (empty where the set lacks the param).
    pub values: Vec<String>,
    pub hash: String,
    pub short_hash: String,
    pub phase: String,
    pub latest: String,
    pub latest_url: String,
    pub runs: usize,
    pub retries: u32,
    pub duration: String,
    pub age: String,
}

/// What the page is built from besides the Dag and its rows.
pub struct RunsInput<'a> {
    pub chrome: Chrome,
    pub token: String,
    pub pairs: &'a [(String, String)],
    pub now: Timestamp,
    pub alert: Option<Alert>,
    /// Values to put back into the submit form (after a refusal).
    pub submitted: &'a [(String, String)],
    /// The Dag's triggers and the URL of their page.
    pub triggers: Vec<TriggerLink>,
    pub triggers_url: String,
}

impl RunsPage {
    pub fn build<'a>(dag: &Dag, rows: impl IntoIterator<Item = &'a RunRow>, input: RunsInput<'_>) -> RunsPage {
        let rows: Vec<&RunRow> = rows.into_iter().collect();
        let namespace = dag.namespace().unwrap_or_default();
        let name = dag.name_any();
        let declared: Vec<String> = dag.spec.params.iter().map(|p| p.name.clone()).collect();
        let (view, query, errors) = QueryView::parse(input.pairs, &declared);
        let page = groups::page(rows.iter().copied(), &query, input.now);
        let base_url = dag_url(&namespace, &name);
        let link = |n: usize| format!("{base_url}?{}", view.to_query_string(n));
        let alert = input
            .alert
            .or_else(|| (!errors.is_empty()).then(|| Alert::error(errors.join("; "))));
        let invalid = dag
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Valid" && c.status == "False"))
            .map(|c| c.message.clone());
        let mut sort_choices: Vec<(String, String)> = vec![
            ("latest".into(), "latest run".into()),
            ("phase".into(), "phase".into()),
            ("runs".into(), "number of runs".into()),
            ("duration".into(), "last duration".into()),
        ];
        sort_choices.extend(declared.iter().map(|p| (format!("param:{p}"), format!("param {p}"))));
        RunsPage {
            chrome: input.chrome,
            alert,
            invalid,
            submit_url: format!("{base_url}/runs"),
            token: input.token,
            phase_choices: RunPhase::ALL
                .iter()
                .map(|p| (p.as_str(), view.phases.iter().any(|v| v == p.as_str())))
                .collect(),
            within_choices: WITHIN.iter().map(|w| (w.0, w.1, w.0 == view.within)).collect(),
            sort_choices: sort_choices
                .into_iter()
                .map(|(k, l)| {
                    let selected = k == view.sort;
                    (k, l, selected)
                })
                .collect(),
            form_params: dag
                .spec
                .params
                .iter()
                .map(|p| FormParam {
                    name: p.name.clone(),
                    default: p.default.clone().unwrap_or_default(),
                    required: p.default.is_none(),
                    value: input
                        .submitted
                        .iter()
                        .find(|(k, _)| k.strip_prefix("p.") == Some(p.name.as_str()))
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default(),
                })
                .collect(),
            rows: page
                .groups
                .iter()
                .map(|g| set_row(g, &page.columns, input.now))
                .collect(),
            columns: page.columns,
            matched: page.matched,
            total: page.total,
            run_count: rows.len(),
            page: page.page,
            pages: page.pages,
            prev_url: (page.page > 1).then(|| link(page.page - 1)),
            next_url: (page.page < page.pages).then(|| link(page.page + 1)),
            query: view,
            base_url,
            dag: name,
            triggers: input.triggers,
            triggers_url: input.triggers_url,
        }
    }
}

fn set_row(group: &groups::Group<'_>, columns: &[String], now: Timestamp) -> SetRow {
    let latest = group.latest;
    SetRow {
        values: columns
            .iter()
            .map(|c| group.params.get(c).cloned().unwrap_or_default())
            .collect(),
        hash: group.param_hash.to_string(),
        short_hash: human::short_hash(group.param_hash),
        phase: latest.phase.as_str().to_string(),
        latest: latest.name.clone(),
        latest_url: run_url(&latest.namespace, &latest.name),
        runs: group.runs,
        retries: group.retries,
        duration: latest.duration(now).map_or("-".into(), human::duration),
        age: latest.created.map_or("-".into(), |c| {
            format!("{} ago", human::duration(now.duration_since(c)))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_query_string_is_read_and_written_back() {
        let columns = ["file".to_string()];
        let input = pairs(&[
            ("q", "m31 a"),
            ("phase", "failed"),
            ("phase", "Running"),
            ("within", "1h"),
            ("sort", "param:file"),
            ("page", "2"),
            ("size", "20"),
        ]);
        let (view, query, errors) = QueryView::parse(&input, &columns);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(query.phases, [RunPhase::Failed, RunPhase::Running]);
        assert_eq!(query.within, Some(SignedDuration::from_secs(3600)));
        assert_eq!(
            (query.sort, query.page, query.page_size, query.descending),
            (Sort::Param(0), 2, 20, false)
        );
        let text = view.to_query_string(3);
        assert_eq!(
            text,
            "q=m31%20a&phase=Failed&phase=Running&within=1h&sort=param%3Afile&size=20&page=3"
        );
    }

    #[test]
    fn the_default_is_newest_first_and_bad_values_name_their_field() {
        let (view, query, errors) = QueryView::parse(&[], &[]);
        assert!(errors.is_empty());
        assert!(query.descending && view.desc);
        assert_eq!(query.sort, Sort::Latest);
        let input = pairs(&[("phase", "Done"), ("within", "2y"), ("page", "x"), ("size", "0")]);
        let (_, _, errors) = QueryView::parse(&input, &[]);
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(
            errors[0].starts_with("phase:") && errors[0].contains("Done"),
            "{errors:?}"
        );
        assert!(errors[1].starts_with("within:") && errors[3].starts_with("size:"));
    }
}
