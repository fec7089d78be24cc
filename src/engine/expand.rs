//! kubedag's `$(name)` references and the escaping that makes Kubernetes deliver strings unchanged.
//!
//! Kubernetes rewrites env values, `command` and `args` before a container sees them: `$(VAR)`
//! becomes the value of the container's env var `VAR` (when defined), and `$$` becomes `$`.
//! kubedag's contract is that a container receives, byte for byte, what the run declared. So every
//! user string that goes into a Job passes through exactly one of:
//!
//! - [`expand`] then [`escape`]: `command`, `args` and user env values. `$(name)` is kubedag's
//!   reference (to a parameter or a `KUBEDAG_*` identity value), substituted here, once;
//! - [`escape`] only: script text, parameter env values and `KUBEDAG_*` env values. A script is not
//!   expanded (`$(...)` in a script is shell command substitution); it sees params as env vars.
//!
//! After [`escape`], Kubernetes' expansion is the identity, so no other `$` sequence is rewritten.

/// Substitutes each `$(name)` in `input` whose `name` `lookup` knows by its value, in one pass:
/// a substituted value is never re-scanned, so a value containing `$(other)` arrives literally.
///
/// `name` is everything between `$(` and the next `)`. A reference `lookup` does not know, an
/// unclosed `$(`, a lone `$` and `$$` are left exactly as written (scanning resumes right after
/// the `$`, so in `$(date $(file))` only `$(file)` is a reference when `file` is known).
///
/// `lookup` maps a reference name to its value, e.g. resolved params and the `KUBEDAG_*` values;
/// later kinds of reference (step outputs, fan-out items) are more names for the same lookup.
pub fn expand<'v, F>(input: &str, lookup: F) -> String
where
    F: Fn(&str) -> Option<&'v str>,
{
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find("$(") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let known = after
            .find(')')
            .and_then(|close| lookup(&after[..close]).map(|value| (value, close)));
        match known {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('$');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes a final string for Kubernetes' env/command/args expansion: every `$` becomes `$$`, so
/// Kubernetes turns it back into exactly `s` whatever env vars the container has.
pub fn escape(s: &str) -> String {
    s.replace('$', "$$")
}

/// Test-only model of Kubernetes' own expansion, shared by the tests of the Job builder.
#[cfg(test)]
pub(crate) mod k8s_model {
    /// A faithful model of Kubernetes' expansion (k8s.io/kubernetes
    /// third_party/forked/golang/expansion, `Expand` with `MappingFuncFor`): `$$` -> `$`;
    /// `$(VAR)` (up to the first `)`) -> the value when defined, else left as written; `$(` with no
    /// `)` -> kept, scanning resumes after the `(`; any other `$x` kept; a trailing `$` kept.
    pub(crate) fn k8s_expand<'v>(input: &str, env: impl Fn(&str) -> Option<&'v str>) -> String {
        let mut out = String::new();
        let mut chars = input.char_indices().peekable();
        while let Some((_, c)) = chars.next() {
            if c != '$' {
                out.push(c);
                continue;
            }
            match chars.peek().copied() {
                None => out.push('$'),
                Some((_, '$')) => {
                    chars.next();
                    out.push('$');
                }
                Some((open, '(')) => {
                    chars.next();
                    match input[open + 1..].find(')') {
                        Some(len) => {
                            let name = &input[open + 1..open + 1 + len];
                            match env(name) {
                                Some(value) => out.push_str(value),
                                None => out.push_str(&format!("$({name})")),
                            }
                            while chars.peek().is_some_and(|(j, _)| *j <= open + 1 + len) {
                                chars.next();
                            }
                        }
                        None => out.push_str("$("),
                    }
                }
                Some((_, other)) => {
                    chars.next();
                    out.push('$');
                    out.push(other);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::k8s_model::k8s_expand as k8s_expand_with;
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn k8s_expand(input: &str, env: &BTreeMap<&str, &str>) -> String {
        k8s_expand_with(input, |name| env.get(name).copied())
    }

    fn env() -> BTreeMap<&'static str, &'static str> {
        BTreeMap::from([("a", "alpha"), ("b", "price $$5 total $(a) end"), ("HOME", "/root")])
    }

    #[test]
    fn model_matches_the_kubernetes_rules() {
        // Cases from k8s.io/kubernetes third_party/forked/golang/expansion/expand_test.go.
        let env = BTreeMap::from([("VAR_A", "A"), ("VAR_B", "B"), ("VAR_C", "C"), ("VAR_EMPTY", "")]);
        let cases = [
            ("$(VAR_A)", "A"),
            ("___$(VAR_B)___", "___B___"),
            ("$(VAR_A)-$(VAR_A)", "A-A"),
            ("$(VAR_EMPTY)", ""),
            ("$(UNKNOWN)", "$(UNKNOWN)"),
            ("$$(VAR_A)", "$(VAR_A)"),
            ("$$$(VAR_A)", "$A"),
            ("$$$$(VAR_A)", "$$(VAR_A)"),
            ("$(VAR_A", "$(VAR_A"),
            ("$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"),
            ("$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"),
            ("$VAR_A", "$VAR_A"),
            ("$", "$"),
            ("$$", "$"),
            ("foo$", "foo$"),
            ("$()", "$()"),
            ("$(", "$("),
            ("$($$", "$($"),
            ("$é$(VAR_C)", "$éC"),
        ];
        for (input, want) in cases {
            assert_eq!(k8s_expand(input, &env), want, "input {input:?}");
        }
    }

    #[test]
    fn the_issue_example_arrives_unchanged() {
        let b = "price $$5 total $(a) end";
        // Before the fix Kubernetes delivered b as "price $5 total alpha end".
        assert_eq!(k8s_expand(b, &env()), "price $5 total alpha end");
        assert_eq!(k8s_expand(&escape(b), &env()), b);
        let lookup = |n: &str| env().get(n).copied();
        let arg = expand("got=$(b) pid=$$", lookup);
        assert_eq!(arg, "got=price $$5 total $(a) end pid=$$");
        assert_eq!(k8s_expand(&escape(&arg), &env()), arg);
    }

    #[test]
    fn expand_substitutes_known_references_only() {
        let lookup = |n: &str| env().get(n).copied();
        assert_eq!(expand("$(a)", lookup), "alpha");
        assert_eq!(expand("x$(a)y$(a)z", lookup), "xalphayalphaz");
        assert_eq!(expand("$(UNDECLARED) $(a)", lookup), "$(UNDECLARED) alpha");
        assert_eq!(expand("$(date $(a))", lookup), "$(date alpha)");
        assert_eq!(expand("$$(a)", lookup), "$alpha");
        assert_eq!(expand("$(a", lookup), "$(a");
        assert_eq!(expand("$a ${a} $ $$ $", lookup), "$a ${a} $ $$ $");
        assert_eq!(expand("ünï$(a)çødé", lookup), "ünïalphaçødé");
        assert_eq!(expand("", lookup), "");
    }

    #[test]
    fn expand_is_one_pass() {
        // b's value contains $(a): it is delivered as written, not expanded again.
        let lookup = |n: &str| env().get(n).copied();
        assert_eq!(expand("[$(b)]", lookup), "[price $$5 total $(a) end]");
        let self_ref = |n: &str| (n == "x").then_some("$(x)");
        assert_eq!(expand("$(x)$(x)", self_ref), "$(x)$(x)");
    }

    #[test]
    fn escape_doubles_every_dollar() {
        assert_eq!(escape("no dollars"), "no dollars");
        assert_eq!(escape("$"), "$$");
        assert_eq!(escape("$$ $(a) ${b}"), "$$$$ $$(a) $${b}");
        let hostile = r#"back\slash "quoted" 'single' ; rm -rf / ; $(UNDECLARED) ünï $"#;
        assert_eq!(k8s_expand(&escape(hostile), &env()), hostile);
    }

    /// Strings rich in the characters that matter to expansion.
    fn tricky() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("$".to_string()),
            Just("$$".to_string()),
            Just("$(".to_string()),
            Just(")".to_string()),
            Just("(".to_string()),
            Just("$(a)".to_string()),
            Just("$(b)".to_string()),
            Just("$(HOME)".to_string()),
            Just("$(v)".to_string()),
            Just("é".to_string()),
            Just("\u{1F600}".to_string()),
            "[a-z ]{0,3}",
            any::<char>().prop_map(String::from),
        ];
        prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn kubernetes_expansion_of_escaped_is_identity(s in tricky()) {
            prop_assert_eq!(k8s_expand(&escape(&s), &env()), s.clone());
            prop_assert_eq!(k8s_expand(&escape(&s), &BTreeMap::new()), s);
        }

        #[test]
        fn kubernetes_expansion_of_escaped_any_string_is_identity(s in any::<String>()) {
            prop_assert_eq!(k8s_expand(&escape(&s), &env()), s);
        }

        #[test]
        fn expand_never_rescans_values(s in tricky(), value in tricky()) {
            // The lookup knows only "v"; each $(v) becomes `value` verbatim. Replacing the
            // references by a marker first, then the marker by `value`, is a one-pass expansion.
            let lookup = |n: &str| (n == "v").then_some(value.as_str());
            let input = format!("{s}$(v){s}");
            let marker = "\u{0}";
            let once = expand(&input.replace('\u{0}', ""), |n| (n == "v").then_some(marker));
            let want = once.replace(marker, &value);
            prop_assert_eq!(expand(&input.replace('\u{0}', ""), lookup), want);
        }

        #[test]
        fn expand_without_known_names_is_identity(s in tricky()) {
            prop_assert_eq!(expand(&s, |_| None), s);
        }
    }
}
