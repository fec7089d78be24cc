use proptest::prelude::*;

use super::*;

fn none(_: &str, _: &str) -> Option<String> {
    None
}

#[test]
fn items_come_from_the_list_a_param_or_an_output() {
    let literal = ForEach {
        items: Some(vec!["a".into(), "b".into()]),
        ..Default::default()
    };
    assert_eq!(items(&literal, &Default::default(), &none).unwrap(), vec!["a", "b"]);
    let by_param = ForEach {
        param: Some("files".into()),
        ..Default::default()
    };
    let params = [("files".to_string(), r#"["x.fits","y.fits"]"#.to_string())].into();
    assert_eq!(items(&by_param, &params, &none).unwrap(), vec!["x.fits", "y.fits"]);
    let by_output = ForEach {
        output: Some("steps.list.outputs.n".into()),
        ..Default::default()
    };
    let output = |s: &str, n: &str| (s == "list" && n == "n").then(|| "[1, 2.5, true, \"z\"]".to_string());
    assert_eq!(
        items(&by_output, &Default::default(), &output).unwrap(),
        vec!["1", "2.5", "true", "z"]
    );
}

#[test]
fn bad_lists_are_refused_naming_the_field() {
    let by_param = ForEach {
        param: Some("files".into()),
        ..Default::default()
    };
    let params = [("files".to_string(), "a,b".to_string())].into();
    let err = items(&by_param, &params, &none).unwrap_err();
    assert!(err.starts_with("forEach.param \"files\": not a JSON array"), "{err}");
    let nested = parse_list(r#"["a", {"b": 1}]"#).unwrap_err();
    assert!(nested.contains("item 1"), "{nested}");
    let by_output = ForEach {
        output: Some("steps.list.outputs.n".into()),
        ..Default::default()
    };
    let err = items(&by_output, &Default::default(), &none).unwrap_err();
    assert!(err.starts_with("forEach.output \"steps.list.outputs.n\""), "{err}");
}

#[test]
fn failures_are_counted_but_only_the_first_are_named() {
    let mut status = ForEachStatus {
        total: 100,
        ..Default::default()
    };
    for i in 0..50 {
        record_failure(&mut status, i, &format!("item-{i}"), "exit code 1");
    }
    assert_eq!(status.failed, 50);
    assert_eq!(status.failed_items.len(), ForEachStatus::FAILED_KEPT);
    let message = failure_message(&status);
    assert!(
        message.starts_with("50 of 100 instances failed: item 0 (\"item-0\"): exit code 1;"),
        "{message}"
    );
    assert!(message.ends_with("and 47 more"), "{message}");
}

#[test]
fn output_arrays_keep_item_order_with_nulls_for_missing_values() {
    let mut values = decode_array(None, 3);
    values[2] = Some("c".into());
    values[0] = Some("a".into());
    let text = encode_array(&values);
    assert_eq!(text, r#"["a",null,"c"]"#);
    assert_eq!(decode_array(Some(&text), 3), values);
}

proptest! {
    #[test]
    fn bits_round_trip(total in 0usize..3000, set in prop::collection::vec(0usize..3000, 0..200)) {
        let mut bits = Bits::decode("", total);
        for &i in set.iter().filter(|&&i| i < total) {
            bits.set(i);
        }
        let again = Bits::decode(&bits.encode(), total);
        for i in 0..total {
            prop_assert_eq!(again.get(i), set.contains(&i));
        }
        prop_assert!(bits.encode().len() <= total.div_ceil(8) * 2);
    }

    #[test]
    fn any_list_of_strings_parses_back(list in prop::collection::vec(".{0,12}", 0..20)) {
        let text = serde_json::to_string(&list).unwrap();
        prop_assert_eq!(parse_list(&text).unwrap(), list);
    }
}
