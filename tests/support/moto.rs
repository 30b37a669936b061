//! moto, the AWS stand-in for S3 and Cognito, started on a free loopback port for a test.
//!
//! moto checks no signatures and no presigned-URL expiry, accepts undeclared Cognito custom
//! attributes, and puts the real AWS issuer in its tokens; tests that need those checks use
//! other stand-ins.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::python::venv_program;

/// A running moto server, stopped when dropped.
pub struct Moto {
    pub port: u16,
    child: Child,
}

impl Moto {
    /// Starts moto and waits until it answers.
    pub async fn start() -> Self {
        let port = super::free_port();
        let child = Command::new(venv_program("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server did not start");
        let moto = Self { port, child };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client.get(format!("{}/moto-api/", moto.endpoint())).send().await.is_ok() {
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("moto did not answer on port {port}");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An SDK configuration that reaches moto with static test credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new("testing", "testing", None, None, "moto"))
            .endpoint_url(self.endpoint())
            .load()
            .await
    }

    /// Stops moto, as an outage would.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A moto started again on the port the first one had, so the core's configured endpoint
/// works again, as S3 coming back would. moto keeps everything in memory, so it starts empty.
pub struct RestartedMoto {
    child: Child,
}

impl RestartedMoto {
    pub async fn start(port: u16) -> Self {
        let client = reqwest::Client::new();
        // The port may take a moment to be free again after the first moto was killed.
        for _ in 0..20 {
            let mut child = Command::new(venv_program("moto_server"))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("moto_server did not start");
            for _ in 0..100 {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if client.get(format!("http://127.0.0.1:{port}/moto-api/")).send().await.is_ok() {
                    return Self { child };
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("moto could not be started again on port {port}");
    }
}

impl Drop for RestartedMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
