//! `-p KEY=VALUE` arguments: parsing, collecting into a parameter set, and matching runs against them.

use crate::engine::params::Params;

use super::error::CliError;

/// Parses one `KEY=VALUE` (the value may itself contain `=`); used as clap's value parser so a bad
/// argument is reported with the flag it came from.
pub fn parse_key_value(arg: &str) -> Result<(String, String), String> {
    let Some((key, value)) = arg.split_once('=') else {
        return Err(format!("{arg:?} has no '=': expected KEY=VALUE, e.g. -p file=m31.fits"));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("{arg:?} has no parameter name before '='"));
    }
    Ok((key.to_string(), value.to_string()))
}

/// Collects `-p` pairs into a parameter set; a name given twice with different values is an error.
pub fn collect(pairs: &[(String, String)]) -> Result<Params, CliError> {
    let mut params = Params::new();
    for (key, value) in pairs {
        if let Some(previous) = params.insert(key.clone(), value.clone())
            && &previous != value
        {
            return Err(CliError::Invalid(format!(
                "-p {key} is given twice, with {previous:?} and {value:?}"
            )));
        }
    }
    Ok(params)
}

/// Whether `params` has every name of `filter` with the same value.
pub fn matches(filter: &Params, params: &Params) -> bool {
    filter.iter().all(|(key, value)| params.get(key) == Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn key_value_splits_at_the_first_equals_sign() {
        assert_eq!(parse_key_value("file=a=b.fits"), Ok(("file".into(), "a=b.fits".into())));
        assert_eq!(parse_key_value("empty="), Ok(("empty".into(), String::new())));
    }

    #[test]
    fn malformed_arguments_are_named() {
        let error = parse_key_value("foo").unwrap_err();
        assert!(error.contains("\"foo\"") && error.contains("KEY=VALUE"), "{error}");
        let error = parse_key_value("=x").unwrap_err();
        assert!(
            error.contains("\"=x\"") && error.contains("no parameter name"),
            "{error}"
        );
    }

    #[test]
    fn a_repeated_name_must_repeat_its_value() {
        let same = collect(&pairs(&[("file", "a"), ("file", "a")])).unwrap();
        assert_eq!(same.len(), 1);
        let error = collect(&pairs(&[("file", "a"), ("file", "b")])).unwrap_err();
        assert_eq!(error.to_string(), "-p file is given twice, with \"a\" and \"b\"");
    }

    #[test]
    fn filters_need_every_pair() {
        let params: Params = collect(&pairs(&[("file", "a"), ("threshold", "0.5")])).unwrap();
        assert!(matches(&Params::new(), &params));
        assert!(matches(&collect(&pairs(&[("file", "a")])).unwrap(), &params));
        assert!(!matches(
            &collect(&pairs(&[("file", "a"), ("threshold", "1")])).unwrap(),
            &params
        ));
        assert!(!matches(&collect(&pairs(&[("other", "a")])).unwrap(), &params));
    }
}
