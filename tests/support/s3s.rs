//! s3s-fs, a strict S3 stand-in, served in-process on a free loopback port for a test.
//!
//! Unlike moto it checks SigV4 signatures (a wrong secret is refused with
//! `SignatureDoesNotMatch`) and refuses expired or tampered presigned URLs; it keeps objects
//! as files in a temporary folder.

use std::net::SocketAddr;

use axum::error_handling::HandleError;
use axum::http::StatusCode;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tempfile::TempDir;
use tokio::task::JoinHandle;

pub const ACCESS_KEY: &str = "atelier-test-access";
pub const SECRET_KEY: &str = "atelier-test-secret-key-1234567890";

/// A running s3s-fs with one access key, stopped when dropped.
pub struct S3sFs {
    pub address: SocketAddr,
    _root: TempDir,
    task: JoinHandle<()>,
}

impl S3sFs {
    pub async fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        let file_system = s3s_fs::FileSystem::new(root.path()).unwrap();
        let mut builder = S3ServiceBuilder::new(file_system);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        // S3 errors are answers already; only a broken HTTP exchange reaches this handler.
        let service = HandleError::new(builder.build(), |error: s3s::HttpError| async move {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("s3s failed: {error:?}"))
        });
        let app = axum::Router::new().fallback_service(service);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { address, _root: root, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// An SDK configuration that reaches s3s-fs with its access key and the given secret.
    pub async fn sdk_config_with_secret(&self, secret: &str) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(ACCESS_KEY, secret, None, None, "s3s"))
            .endpoint_url(self.endpoint())
            .load()
            .await
    }

    /// An SDK configuration with the right credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        self.sdk_config_with_secret(SECRET_KEY).await
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        self.task.abort();
    }
}
