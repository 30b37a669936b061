//! The shared cache in front of the public pages, in our own terms: what the core tells it
//! when a published image stops being public.
//!
//! Public pages (`/p/{id}`, its files, `/servers/{guild}`) are served with a short
//! `Cache-Control: public, max-age` and kept at the edge by a CDN for that long. Without a word
//! from us the CDN would go on showing an unpublished or deleted image until its copy
//! expires; [`PublicCache::forget`] asks it to drop those copies at once. The max-age stays the
//! bound when the CDN cannot be told (an outage, a missing permission), so a failure here is
//! the operator's to see in the log, never a reason to keep an image public.
//!
//! In production the CDN is CloudFront ([`CloudFrontPublicCache`], `CreateInvalidation`);
//! without `ATELIER_CLOUDFRONT_DISTRIBUTION_ID` there is no cache to tell (local mode, tests).

use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_cloudfront::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};

use crate::error::{Error, Result};

/// A shared cache of the public pages that can be told to let go of some of them.
#[async_trait]
pub trait PublicCache: Send + Sync {
    /// Drops what the cache keeps for `paths` (absolute URL paths; one ending in `*` stands
    /// for every path that starts with the rest, query strings included). It returns once
    /// the cache has accepted the request, which may take effect a little later. Forgetting
    /// nothing calls nothing.
    async fn forget(&self, paths: &[String]) -> Result<()>;
}

/// How long connecting to CloudFront may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one attempt may take. CreateInvalidation answers in well under a second; the
/// person unpublishing waits for it, so a CloudFront that hangs is given up quickly.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the call may take in all, retries included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);

/// A CloudFront distribution, told through `CreateInvalidation`.
#[derive(Debug, Clone)]
pub struct CloudFrontPublicCache {
    client: aws_sdk_cloudfront::Client,
    distribution_id: String,
}

impl CloudFrontPublicCache {
    /// The distribution `distribution_id`, reached as the SDK configuration says (its
    /// credentials, and `AWS_ENDPOINT_URL_CLOUDFRONT` or `AWS_ENDPOINT_URL` where set, as for
    /// every other AWS client here). Nothing is called yet.
    pub fn new(sdk_config: &SdkConfig, distribution_id: impl Into<String>) -> Self {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build();
        let config = aws_sdk_cloudfront::config::Builder::from(sdk_config)
            .retry_config(RetryConfig::standard())
            .timeout_config(timeouts)
            .build();
        Self { client: aws_sdk_cloudfront::Client::from_conf(config), distribution_id: distribution_id.into() }
    }
}

#[async_trait]
impl PublicCache for CloudFrontPublicCache {
    async fn forget(&self, paths: &[String]) -> Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        let building = |error| Error::operator("building a CloudFront invalidation", error);
        let quantity = i32::try_from(paths.len())
            .map_err(|error| Error::operator("counting the paths of a CloudFront invalidation", error))?;
        let paths = Paths::builder().quantity(quantity).set_items(Some(paths.to_vec())).build().map_err(building)?;
        // CloudFront takes a repeated caller reference for a retry of the same request, so
        // every invalidation gets a new one: the same page may be unpublished again later.
        let batch = InvalidationBatch::builder()
            .paths(paths)
            .caller_reference(ulid::Ulid::new().to_string())
            .build()
            .map_err(building)?;
        let created = self
            .client
            .create_invalidation()
            .distribution_id(&self.distribution_id)
            .invalidation_batch(batch)
            .send()
            .await
            .map_err(|error| cloudfront_error(error, &self.distribution_id))?;
        tracing::debug!(
            distribution = %self.distribution_id,
            invalidation = created.invalidation().map(|invalidation| invalidation.id()).unwrap_or_default(),
            "CloudFront is dropping its copies of unpublished pages"
        );
        Ok(())
    }
}

/// Maps a CloudFront error: throttling, too many invalidations in progress and an
/// unreachable service pass on their own ([`Error::Busy`]); a missing distribution or
/// permission is the operator's to fix, and says how. Worded from CloudFront's error code and
/// message, never from the signed request.
fn cloudfront_error<E, R>(error: SdkError<E, R>, distribution_id: &str) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let busy = match &error {
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some("TooManyInvalidationsInProgress" | "Throttling" | "ThrottlingException" | "ServiceUnavailable")
        ),
        SdkError::TimeoutError(_) => true,
        SdkError::DispatchFailure(failure) => failure.is_timeout() || failure.is_io(),
        _ => false,
    };
    let detail = match &error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            let hint = match code {
                "NoSuchDistribution" => " (check ATELIER_CLOUDFRONT_DISTRIBUTION_ID)",
                "AccessDenied" | "AccessDeniedException" => {
                    " (allow these AWS credentials cloudfront:CreateInvalidation on the distribution)"
                }
                "TooManyInvalidationsInProgress" => {
                    " (CloudFront runs at most 15 wildcard paths at once; the pages expire on their own)"
                }
                _ => "",
            };
            format!("CloudFront answered {code}: {}{hint}", service.err().message().unwrap_or(""))
        }
        SdkError::TimeoutError(_) => {
            format!("CloudFront did not answer within {} s", OPERATION_TIMEOUT.as_secs())
        }
        other => format!("{other:?}"),
    };
    if busy {
        return Error::Busy(format!("CloudFront distribution {distribution_id} is busy or unreachable: {detail}"));
    }
    Error::operator(format!("telling CloudFront distribution {distribution_id} to drop pages"), detail)
}
