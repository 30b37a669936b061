//! Starting and stopping the `atelier serve` process a benchmark measures.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts `command` (an `atelier` command for a folder) as `serve` in local mode on `address`,
/// quick to stop, its log in `log`, with `settings` on top; it does not wait for readiness.
pub fn spawn_serve(mut command: Command, address: &str, log: &Path, settings: &[(&str, String)]) -> Child {
    command
        .env("ATELIER_BIND", address)
        .env("ATELIER_SHUTDOWN_DRAIN_SECONDS", "0")
        .env("ATELIER_SHUTDOWN_GRACE_SECONDS", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("create the benchmark's log file"));
    for (name, value) in settings {
        command.env(name, value);
    }
    command.spawn().expect("start atelier serve")
}

/// Asks the process to stop as an orchestrator would (SIGTERM, so it drains and writes its
/// last log lines), waits up to five seconds, then kills it.
pub fn stop_gracefully(child: &mut Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    for _ in 0..100 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
