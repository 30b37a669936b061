//! `atelier` with no command, as the README's run command starts it.

use std::time::Duration;

use crate::support::{atelier, free_port};

#[tokio::test]
async fn a_bare_atelier_serves_the_web_app_in_demo_mode_and_stops_on_sigterm() {
    let folder = tempfile::tempdir().unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let mut child = atelier(folder.path())
        .env("ATELIER_BIND", &address)
        .env("ATELIER_SHUTDOWN_DRAIN_SECONDS", "2")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let client = reqwest::Client::new();
    let mut healthy = false;
    for _ in 0..400 {
        if let Ok(response) = client.get(format!("http://{address}/healthz")).send().await {
            assert_eq!(response.text().await.unwrap(), "ok");
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(healthy, "atelier never answered /healthz on {address}");

    let home = client.get(format!("http://{address}/")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("Demo mode:"), "{home}");
    let ready: serde_json::Value =
        client.get(format!("http://{address}/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["engine"], "demo");

    let terminated = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(terminated.success());
    // First unready (so a load balancer drains the task) and taking no new jobs, still answering.
    let mut saw_unready = false;
    for _ in 0..400 {
        let Ok(response) = client.get(format!("http://{address}/readyz")).send().await else { break };
        if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["stopping"], true, "{body}");
            saw_unready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(saw_unready, "/readyz never turned unready after SIGTERM");

    let output = tokio::task::spawn_blocking(move || {
        let _ = child.wait();
        child
    })
    .await
    .unwrap()
    .wait_with_output()
    .unwrap();
    assert!(output.status.success(), "atelier did not exit cleanly on SIGTERM: {:?}", output.status);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains(&format!("listening on http://{address}/")), "{log}");
    assert!(log.contains("DEMO MODE"), "{log}");
    assert!(log.contains("the Discord bot is off"), "{log}");
    assert!(log.contains("asked to terminate"), "{log}");
    // The default store was created in the working directory.
    assert!(folder.path().join("atelier-data").is_dir());
}
