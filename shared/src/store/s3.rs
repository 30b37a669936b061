//! The S3 store: the production backend, one bucket (optionally under a key prefix).
//!
//! Create-only writes send `If-None-Match: *`, so S3 itself refuses a second writer with
//! `412 Precondition Failed`. The bucket stays private: browsers download through short-lived
//! presigned URLs. Every SDK error becomes [`StoreError::Unavailable`] naming the bucket and
//! the operation, worded from S3's error code and never from the request (which carries the
//! signature).

use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use super::{ObjectKey, ObjectStore, PutMode, StoreError, Version};

/// How long connecting to S3 may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one operation may take in all, retries included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one attempt may take: a hung connection is dropped and retried well within the
/// operation timeout rather than using all of it.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most keys S3 returns from one `ListObjectsV2` call.
const MAX_KEYS_PER_REQUEST: i32 = 1000;

/// Objects in one S3 bucket, under an optional key prefix.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// With its trailing slash (`images/`), or empty.
    prefix: String,
    region: Option<String>,
    page_size: i32,
}

impl S3Store {
    /// A store over `bucket`, keeping keys under `{prefix}/` when a prefix is given. The SDK
    /// configuration says where S3 is and who calls it; `force_path_style` is for
    /// S3-compatible servers that need `https://host/bucket/key` URLs. Nothing is called yet:
    /// use [`ObjectStore::check`] to prove the bucket usable.
    pub fn new(sdk_config: &SdkConfig, bucket: String, prefix: Option<String>, force_path_style: bool) -> Self {
        // The SDK's standard retries (with backoff and jitter) for throttling, 5xx answers
        // and dropped connections, all within the operation timeout.
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build();
        let config = aws_sdk_s3::config::Builder::from(sdk_config)
            .force_path_style(force_path_style)
            .retry_config(RetryConfig::standard())
            .timeout_config(timeouts)
            .build();
        let prefix = prefix
            .map(|prefix| prefix.trim_matches('/').to_string())
            .filter(|prefix| !prefix.is_empty())
            .map(|prefix| format!("{prefix}/"))
            .unwrap_or_default();
        Self {
            client: aws_sdk_s3::Client::from_conf(config),
            bucket,
            prefix,
            region: sdk_config.region().map(ToString::to_string),
            page_size: MAX_KEYS_PER_REQUEST,
        }
    }

    /// Asks for at most this many keys per `ListObjectsV2` call (S3's own limit, 1,000, is
    /// the default). Smaller pages only make listings slower; tests use them to cross pages.
    pub fn with_page_size(mut self, keys: usize) -> Self {
        self.page_size = i32::try_from(keys).unwrap_or(MAX_KEYS_PER_REQUEST).clamp(1, MAX_KEYS_PER_REQUEST);
        self
    }

    /// The key in the bucket.
    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn unavailable(&self, operation: &str, detail: impl std::fmt::Display) -> StoreError {
        StoreError::Unavailable {
            location: self.location(),
            detail: format!("{operation} on bucket `{}` failed: {detail}", self.bucket),
        }
    }

    /// Maps an SDK error the caller has no special meaning for.
    fn sdk_error<E>(&self, operation: &str, error: &SdkError<E, HttpResponse>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.unavailable(operation, describe(error))
    }
}

/// Why the bucket cannot be used, and what the operator should do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketProblem {
    pub problem: String,
    pub fix: String,
    /// Whether S3 could not be reached or answered with a server error (an outage, which
    /// passes), rather than refusing (a setting to fix).
    pub unreachable: bool,
}

impl S3Store {
    /// Calls `HeadBucket` and, when the bucket cannot be used, says why and what to do.
    pub async fn diagnose(&self) -> Result<(), BucketProblem> {
        let bucket = &self.bucket;
        let problem = |problem: String, fix: &str| BucketProblem { problem, fix: fix.to_string(), unreachable: false };
        let outage = |problem: String, fix: &str| BucketProblem { problem, fix: fix.to_string(), unreachable: true };
        if self.region.is_none() {
            return Err(problem("no AWS region is configured".into(), "set AWS_REGION to the bucket's region"));
        }
        let error = match self.client.head_bucket().bucket(bucket).send().await {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        // HeadBucket answers have no body, so the status says what is wrong.
        Err(match &error {
            SdkError::ServiceError(service) => match service.raw().status().as_u16() {
                404 => problem(
                    format!("bucket `{bucket}` does not exist"),
                    "create the bucket, or fix its name in ATELIER_STORE",
                ),
                403 => problem(
                    format!("access to bucket `{bucket}` is denied"),
                    "grant these AWS credentials s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject \
                     on the bucket, or check which credentials are in use",
                ),
                301 => {
                    let region = service.raw().headers().get("x-amz-bucket-region").unwrap_or("another region");
                    problem(
                        format!("bucket `{bucket}` is in {region}, not {}", self.region.as_deref().unwrap_or("?")),
                        "set AWS_REGION to the bucket's region",
                    )
                }
                500..=599 => outage(describe(&error), "wait for S3 to answer again, or check AWS_ENDPOINT_URL_S3"),
                _ => problem(describe(&error), "check ATELIER_STORE, AWS_REGION and AWS_ENDPOINT_URL_S3"),
            },
            _ if is_missing_credentials(&error) => problem(
                "no AWS credentials were found".into(),
                "give this process AWS credentials (a task role, AWS_PROFILE, or AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY)",
            ),
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => outage(
                format!("S3 cannot be reached ({})", causes(&error)),
                "check AWS_ENDPOINT_URL_S3 (unset for AWS itself) and the network",
            ),
            _ => problem(describe(&error), "check ATELIER_STORE, AWS_REGION and AWS_ENDPOINT_URL_S3"),
        })
    }
}

/// An error and its causes on one line (`dispatch failure: io error: … Connection refused`).
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// Whether the SDK failed before sending because no credentials could be loaded.
fn is_missing_credentials<E>(error: &SdkError<E, HttpResponse>) -> bool
where
    E: std::error::Error + 'static,
{
    // The SDK says so in words only ("the credential provider was not enabled: no credentials
    // found in chain"), before any request is sent.
    if matches!(error, SdkError::ServiceError(_)) {
        return false;
    }
    let text = causes(error).to_ascii_lowercase();
    ["credential provider", "credentials provider", "no credentials"].iter().any(|words| text.contains(words))
}

/// The HTTP status of an error S3 answered with, if it answered.
fn status<E>(error: &SdkError<E, HttpResponse>) -> Option<u16> {
    match error {
        SdkError::ServiceError(service) => Some(service.raw().status().as_u16()),
        _ => None,
    }
}

/// What went wrong, in words an operator can act on; built from S3's error code and message
/// only, never from the signed request.
fn describe<E>(error: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = error.code().unwrap_or("no error code");
            let message = error.message().map(|message| format!(": {message}")).unwrap_or_default();
            let hint = match (status, error.code()) {
                (_, Some("SignatureDoesNotMatch" | "InvalidAccessKeyId")) => {
                    " (the AWS credentials are wrong: check the access key and its secret)"
                }
                (403, _) | (_, Some("AccessDenied")) => {
                    " (allow these AWS credentials s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket \
                     on the bucket)"
                }
                (404, Some("NoSuchBucket")) => {
                    " (the bucket does not exist: create it, or fix its name in ATELIER_STORE)"
                }
                (301, _) | (_, Some("PermanentRedirect" | "AuthorizationHeaderMalformed")) => {
                    " (the bucket is in another region: set AWS_REGION to the bucket's region)"
                }
                _ => "",
            };
            format!("S3 answered HTTP {status} {code}{message}{hint}")
        }
        SdkError::TimeoutError(_) => {
            format!(
                "S3 did not answer within {} s (check AWS_ENDPOINT_URL_S3 and the network)",
                OPERATION_TIMEOUT.as_secs()
            )
        }
        _ if is_missing_credentials(error) => "no AWS credentials were found (give this process a task role, \
                                              AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
            .into(),
        SdkError::DispatchFailure(failure) if failure.is_timeout() || failure.is_io() => {
            format!("S3 cannot be reached ({}); check AWS_ENDPOINT_URL_S3 and the network", causes(error))
        }
        // A request that could not be built, or an answer that did not parse.
        other => causes(other),
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn location(&self) -> String {
        match self.prefix.strip_suffix('/') {
            Some(prefix) => format!("s3://{}/{prefix}", self.bucket),
            None => format!("s3://{}", self.bucket),
        }
    }

    async fn put(&self, key: &ObjectKey, body: Bytes, content_type: &str, mode: PutMode) -> Result<(), StoreError> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key.as_str()))
            .content_type(content_type)
            .body(ByteStream::from(body));
        if mode == PutMode::CreateOnly {
            request = request.if_none_match("*");
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error) if status(&error) == Some(412) || error.code() == Some("PreconditionFailed") => {
                Err(StoreError::AlreadyExists(key.as_str().to_string()))
            }
            Err(error) => Err(self.sdk_error(&format!("PutObject of `{}`", key.as_str()), &error)),
        }
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes, StoreError> {
        Ok(self.get_versioned(key).await?.0)
    }

    async fn get_versioned(&self, key: &ObjectKey) -> Result<(Bytes, Version), StoreError> {
        let operation = || format!("GetObject of `{}`", key.as_str());
        let response = match self.client.get_object().bucket(&self.bucket).key(self.full_key(key.as_str())).send().await
        {
            Ok(response) => response,
            // A missing bucket is the operator's problem, not a missing image.
            Err(error) if error.code() == Some("NoSuchBucket") => return Err(self.sdk_error(&operation(), &error)),
            Err(error) if error.code() == Some("NoSuchKey") || status(&error) == Some(404) => {
                return Err(StoreError::NotFound(key.as_str().to_string()));
            }
            Err(error) => return Err(self.sdk_error(&operation(), &error)),
        };
        let version = Version(response.e_tag.clone().unwrap_or_default());
        let body =
            response.body.collect().await.map_err(|error| {
                self.unavailable(&operation(), format!("the download broke off: {}", causes(&error)))
            })?;
        Ok((body.into_bytes(), version))
    }

    async fn replace(
        &self,
        key: &ObjectKey,
        body: Bytes,
        content_type: &str,
        expected: &Version,
    ) -> Result<(), StoreError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key.as_str()))
            .content_type(content_type)
            .if_match(&expected.0)
            .body(ByteStream::from(body));
        match request.send().await {
            Ok(_) => Ok(()),
            // 412: someone wrote it since; 404 or 409: it was deleted, or another conditional
            // write to it is in flight (S3 answers ConditionalRequestConflict).
            Err(error)
                if matches!(status(&error), Some(404 | 409 | 412))
                    || matches!(
                        error.code(),
                        Some("PreconditionFailed" | "ConditionalRequestConflict" | "NoSuchKey")
                    ) =>
            {
                Err(StoreError::Changed(key.as_str().to_string()))
            }
            Err(error) => Err(self.sdk_error(&format!("PutObject (if-match) of `{}`", key.as_str()), &error)),
        }
    }

    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<ObjectKey>, StoreError> {
        let mut keys = Vec::new();
        let mut continuation: Option<String> = None;
        while keys.len() < limit {
            let wanted = i32::try_from(limit - keys.len()).unwrap_or(i32::MAX).min(self.page_size);
            let mut request =
                self.client.list_objects_v2().bucket(&self.bucket).prefix(self.full_key(prefix)).max_keys(wanted);
            request = match &continuation {
                Some(token) => request.continuation_token(token),
                None => match start_after {
                    Some(after) => request.start_after(self.full_key(after)),
                    None => request,
                },
            };
            let page = request
                .send()
                .await
                .map_err(|error| self.sdk_error(&format!("ListObjectsV2 under `{prefix}`"), &error))?;
            for object in page.contents() {
                let Some(full) = object.key() else { continue };
                // Keys that are not ours (written by hand, say) are left out, as the folder
                // store leaves out files it could not have written.
                if let Some(key) = full.strip_prefix(&self.prefix).and_then(|key| ObjectKey::new(key).ok()) {
                    keys.push(key);
                }
            }
            continuation = match page.next_continuation_token() {
                Some(token) if page.is_truncated() == Some(true) => Some(token.to_string()),
                _ => break,
            };
        }
        keys.truncate(limit);
        Ok(keys)
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        // S3 answers a delete of a missing key with success already.
        match self.client.delete_object().bucket(&self.bucket).key(self.full_key(key.as_str())).send().await {
            Ok(_) => Ok(()),
            Err(error) if error.code() == Some("NoSuchKey") => Ok(()),
            Err(error) => Err(self.sdk_error(&format!("DeleteObject of `{}`", key.as_str()), &error)),
        }
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.diagnose()
            .await
            .map_err(|found| self.unavailable("HeadBucket", format!("{}; {}", found.problem, found.fix)))
    }

    async fn download_url(&self, key: &ObjectKey, expires_in: Duration) -> Result<Option<String>, StoreError> {
        let operation = || format!("presigning a GetObject of `{}`", key.as_str());
        let presigning =
            PresigningConfig::expires_in(expires_in).map_err(|error| self.unavailable(&operation(), causes(&error)))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key.as_str()))
            .presigned(presigning)
            .await
            .map_err(|error| self.sdk_error(&operation(), &error))?;
        Ok(Some(request.uri().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store(prefix: Option<&str>) -> S3Store {
        let sdk_config = SdkConfig::builder()
            .region(aws_config::Region::new("us-east-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        S3Store::new(&sdk_config, "pictures".into(), prefix.map(String::from), true)
    }

    #[tokio::test]
    async fn a_prefix_is_kept_in_front_of_every_key_and_named_in_the_location() {
        let plain = store(None).await;
        assert_eq!(plain.location(), "s3://pictures");
        assert_eq!(plain.full_key("users/a/b.json"), "users/a/b.json");
        for prefix in ["atelier", "/atelier/", "atelier/"] {
            let prefixed = store(Some(prefix)).await;
            assert_eq!(prefixed.location(), "s3://pictures/atelier");
            assert_eq!(prefixed.full_key("users/a/b.json"), "atelier/users/a/b.json");
        }
        assert_eq!(store(Some("")).await.location(), "s3://pictures");
    }

    #[tokio::test]
    async fn page_sizes_stay_within_what_s3_allows() {
        assert_eq!(store(None).await.with_page_size(0).page_size, 1);
        assert_eq!(store(None).await.with_page_size(5).page_size, 5);
        assert_eq!(store(None).await.with_page_size(1_000_000).page_size, MAX_KEYS_PER_REQUEST);
    }
}
