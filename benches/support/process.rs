//! Stopping the `atelier serve` process a load benchmark started.

use std::process::Child;
use std::time::Duration;

/// Asks the process to stop as an orchestrator would (SIGTERM, so it drains and writes its
/// last log lines), waits up to five seconds, then kills it.
pub fn stop_gracefully(child: &mut Child) {
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    for _ in 0..100 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
