//! `kubectl-dag`: the kubectl plugin (`kubectl dag ...`); everything lives in `kubedag::cli`.

fn main() -> std::process::ExitCode {
    kubedag::cli::main()
}
