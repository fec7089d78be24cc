//! `kubectl dag completion SHELL`: completion scripts for the `kubectl-dag` executable.

use clap::CommandFactory;
use clap_complete::Shell;

use super::args::Cli;

/// Name of the executable, which the scripts complete.
pub const BIN_NAME: &str = "kubectl-dag";

pub fn script(shell: Shell) -> String {
    let mut buffer = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN_NAME, &mut buffer);
    let script = String::from_utf8_lossy(&buffer).into_owned();
    match shell {
        Shell::Bash => fix_bash_state_names(&script),
        _ => script,
    }
}

/// clap_complete's bash script (4.6) tracks the subcommand path in `$cmd` spelling the `-` of the
/// executable's name as `__`, but labels its per-subcommand cases with `__subcmd__`, so subcommand
/// options never complete for a hyphenated name (clap-rs/clap#6421). Spell the labels like `$cmd`.
fn fix_bash_state_names(script: &str) -> String {
    let labels = BIN_NAME.replace('-', "__subcmd__");
    let state = BIN_NAME.replace('-', "__");
    script.replace(&labels, &state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bash_state_has_its_case() {
        let bash = script(Shell::Bash);
        let states: Vec<&str> = bash
            .lines()
            .filter_map(|l| l.trim().strip_prefix("cmd=\""))
            .filter_map(|l| l.strip_suffix('"'))
            .filter(|s| !s.is_empty())
            .collect();
        assert!(states.iter().any(|s| s.ends_with("__subcmd__list")), "{bash}");
        for state in states {
            assert!(bash.contains(&format!("\n        {state})\n")), "no case for {state}");
        }
        assert!(bash.contains("complete -F _kubectl__dag"), "{bash}");
        assert!(bash.trim_end().ends_with("kubectl-dag\nfi"), "{bash}");
    }

    #[test]
    fn zsh_and_fish_name_the_executable() {
        assert!(script(Shell::Zsh).starts_with("#compdef kubectl-dag"));
        assert!(script(Shell::Fish).contains("complete -c kubectl-dag"));
    }
}
