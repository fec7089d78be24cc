//! `kubectl_complete-dag`: what kubectl (1.26+) runs to complete `kubectl dag <TAB>`; it gets the
//! words after `kubectl dag` and prints Cobra-style completions (see `kubedag::cli::completion`).

fn main() {
    let words: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    print!("{}", kubedag::cli::completion::kubectl_complete(&words));
}
