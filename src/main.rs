//! The `atelier` binary: the web app and the Discord bot in one process, plus the operator's
//! command-line tools. Everything lives in the library; this only hands over the exit code.

fn main() -> std::process::ExitCode {
    atelier::cli::main()
}
