use super::*;
use proptest::prelude::*;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn declared_values_are_recorded_and_unwritten_ones_are_empty() {
    let got = parse("count=3\nlabel=m31\n", &names(&["count", "label", "unused"])).unwrap();
    assert_eq!(got, map(&[("count", "3"), ("label", "m31"), ("unused", "")]));
}

#[test]
fn empty_file_gives_every_declared_output_empty() {
    assert_eq!(parse("", &names(&["a", "b"])).unwrap(), map(&[("a", ""), ("b", "")]));
    assert_eq!(parse("", &[]).unwrap(), BTreeMap::new());
    assert_eq!(empty(&names(&["a"])), map(&[("a", "")]));
}

#[test]
fn last_write_wins_and_blank_lines_and_crlf_are_tolerated() {
    let got = parse("n=1\r\n\r\n\nn=2\r\nn=3", &names(&["n"])).unwrap();
    assert_eq!(got, map(&[("n", "3")]));
}

#[test]
fn only_one_trailing_carriage_return_is_stripped() {
    let err = parse("v=a\r\r\n", &names(&["v"])).unwrap_err();
    assert_eq!(
        err,
        OutputError::ControlCharacter {
            name: "v".into(),
            character: '\r'
        }
    );
}

#[test]
fn hostile_values_are_kept_byte_for_byte() {
    let hostile = [
        r#"say "hi" and 'bye'"#,
        "price $5 and $$ and $(a) and $(steps.x.outputs.y) and ${HOME}",
        "a; rm -rf / && echo | cat `id`",
        r"back\slash \n \\ \$",
        "naïve café 東京 🚀",
        "x=y=z",
        " leading and trailing spaces ",
        "=",
    ];
    for value in hostile {
        let got = parse(&format!("v={value}\n"), &names(&["v"])).unwrap();
        assert_eq!(got["v"], value);
    }
}

#[test]
fn undeclared_name_is_refused_by_name() {
    let err = parse("count=1\ncuont=2\n", &names(&["count"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "output \"cuont\" is not declared in the step's outputs (declared: count)"
    );
    let err = parse("x=1", &[]).unwrap_err();
    assert!(err.to_string().contains("(declared: none)"), "{err}");
}

#[test]
fn names_are_not_trimmed() {
    let err = parse("count =1", &names(&["count"])).unwrap_err();
    assert_eq!(
        err,
        OutputError::Undeclared {
            name: "count ".into(),
            declared: "count".into()
        }
    );
}

#[test]
fn a_line_without_equals_is_refused_with_its_number_and_text() {
    let err = parse("a=1\n\nhello world\n", &names(&["a"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "$KUBEDAG_OUTPUTS line 3: \"hello world\" is not NAME=value"
    );
}

#[test]
fn a_long_bad_line_is_quoted_shortened() {
    let line = "é".repeat(200);
    let err = parse(&line, &[]).unwrap_err();
    let OutputError::NotAssignment { text, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(text, format!("{}...", "é".repeat(80)));
}

#[test]
fn value_limit_is_1_kib() {
    let ok = "x".repeat(MAX_VALUE_BYTES);
    assert_eq!(parse(&format!("v={ok}"), &names(&["v"])).unwrap()["v"], ok);
    let err = parse(&format!("v={ok}y"), &names(&["v"])).unwrap_err();
    assert_eq!(err.to_string(), "output \"v\" is 1025 bytes; the limit is 1024 bytes");
    // The limit counts bytes, not characters: 342 three-byte characters are 1026 bytes.
    let err = parse(&format!("v={}", "€".repeat(342)), &names(&["v"])).unwrap_err();
    assert_eq!(
        err,
        OutputError::ValueTooLong {
            name: "v".into(),
            bytes: 1026
        }
    );
}

#[test]
fn an_overlong_value_is_refused_even_if_overwritten_later() {
    let text = format!("v={}\nv=short", "x".repeat(2000));
    assert!(matches!(
        parse(&text, &names(&["v"])),
        Err(OutputError::ValueTooLong { .. })
    ));
}

#[test]
fn a_message_at_the_kubelet_limit_is_too_large_not_truncated() {
    let declared = names(&["a", "b", "c", "d"]);
    let value = "x".repeat(1000);
    // 4 lines of "a=" + 1000 + "\n" = 4012 bytes: fits.
    let fits: String = declared.iter().map(|n| format!("{n}={value}\n")).collect();
    assert!(fits.len() < TERMINATION_MESSAGE_LIMIT);
    assert_eq!(parse(&fits, &declared).unwrap().len(), 4);
    // Exactly 4096 bytes (what the kubelet keeps of a longer file) is refused.
    let at_limit = format!("{fits}a={}", "y".repeat(TERMINATION_MESSAGE_LIMIT - fits.len() - 2));
    assert_eq!(at_limit.len(), TERMINATION_MESSAGE_LIMIT);
    let err = parse(&at_limit, &declared).unwrap_err();
    assert!(err.to_string().starts_with("outputs exceed 4 KiB"), "{err}");
    // Same for a file that is nothing but a comment-like line: size is checked first.
    assert!(matches!(
        parse(&"#".repeat(5000), &declared),
        Err(OutputError::TooLarge { bytes: 5000 })
    ));
}

#[test]
fn control_characters_but_tab_are_refused() {
    let err = parse("v=a\0b", &names(&["v"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "output \"v\" contains the control character '\\0'; a value is one line of text"
    );
    for c in ['\x01', '\x1b', '\r', '\x0b', '\x0c'] {
        let err = parse(&format!("v=a{c}b"), &names(&["v"])).unwrap_err();
        assert_eq!(
            err,
            OutputError::ControlCharacter {
                name: "v".into(),
                character: c
            }
        );
    }
    assert_eq!(parse("v=a\tb\x7f", &names(&["v"])).unwrap()["v"], "a\tb\x7f");
}

/// Invariant 7, measured: a 200-step run whose every step records outputs at the 4 KiB limit
/// takes about 0.8 MiB of status, under etcd's 1.5 MiB object limit with about 0.65 MiB to spare;
/// values of `"` or `\` (2 bytes each in the JSON etcd stores) are refused at half the length,
/// so they cannot take the status over.
#[test]
fn status_size_of_200_steps_at_the_output_limit() {
    use crate::api::{DagRunStatus, StepStatus};
    let declared = names(&["a", "b", "c", "d"]);
    let status_with = |fill: char| {
        // 4 lines "x=" + 1021 chars + "\n" = 4096 bytes would be cut off; 1020 keeps it at 4092.
        let text: String = declared
            .iter()
            .map(|n| format!("{n}={}\n", fill.to_string().repeat(1020)))
            .collect();
        let Ok(outputs) = parse(&text, &declared) else {
            return None;
        };
        let steps = (0..200)
            .map(|i| StepStatus {
                name: format!("step-{i:03}"),
                outputs: outputs.clone(),
                ..Default::default()
            })
            .collect();
        let bytes = serde_json::to_vec(&DagRunStatus {
            steps,
            ..Default::default()
        })
        .unwrap()
        .len();
        Some(bytes)
    };
    let plain = status_with('x').expect("4 plain values of 1020 bytes fit");
    assert!(plain < 850 * 1024, "{plain}");
    assert!(plain + 650 * 1024 < 1536 * 1024);
    assert_eq!(status_with('"'), None, "quotes count twice as stored and are refused");
}

fn output_name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,8}"
}

/// Any single-line value without control characters but tab (any other char, `$`, quotes, ...).
fn line_value() -> impl Strategy<Value = String> {
    "[^\x00-\x08\x0a-\x1f]{0,40}"
}

proptest! {
    /// Writing any values, in any order with repeats, records exactly the last write of each
    /// declared name and "" for the rest.
    #[test]
    fn parse_records_the_last_write_of_each_declared_name(
        declared in proptest::collection::btree_set(output_name(), 0..6),
        writes in proptest::collection::vec((0usize..6, line_value()), 0..12),
        crlf in any::<bool>(),
    ) {
        let declared: Vec<String> = declared.into_iter().collect();
        prop_assume!(!declared.is_empty() || writes.is_empty());
        let mut expected = empty(&declared);
        let mut text = String::new();
        for (i, value) in &writes {
            let name = &declared[i % declared.len()];
            text.push_str(&format!("{name}={value}{}", if crlf { "\r\n" } else { "\n" }));
            expected.insert(name.clone(), value.clone());
        }
        prop_assert_eq!(parse(&text, &declared), Ok(expected));
    }

    /// Whatever the text, parse never panics, and success means every key is declared and every
    /// value is within the limits.
    #[test]
    fn parse_results_respect_the_limits(text in "(?s).{0,300}", extra in 0usize..5000) {
        let declared = vec!["a".to_string(), "b".to_string()];
        let text = format!("{text}{}", "a".repeat(extra));
        if let Ok(values) = parse(&text, &declared) {
            prop_assert!(text.len() < TERMINATION_MESSAGE_LIMIT);
            prop_assert_eq!(values.keys().cloned().collect::<Vec<_>>(), declared);
            for value in values.values() {
                prop_assert!(value.len() <= MAX_VALUE_BYTES && !value.contains(['\n', '\r', '\0']));
            }
        }
    }
}
