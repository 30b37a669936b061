//! The Bedrock Runtime client, with bounded timeouts and retries, and the mapping from
//! Bedrock's errors to what the user is told and what the operator must do.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_bedrockruntime::config::retry::RetryPartition;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};

use crate::config::ModelTimeouts;
use crate::error::{Error, Invalid, Refused};

/// How long connecting to Bedrock may take: the endpoint is in the same region, so a
/// connection that takes longer is not coming.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Attempts per call, the first included. Throttling, 5xx answers, dropped connections and
/// attempt timeouts are retried; the operation timeout bounds them all together.
pub const MAX_ATTEMPTS: u32 = 4;

/// The first retry waits a random time up to this (full jitter), each later one up to twice
/// as long as the one before...
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(400);

/// ...but never more than this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// The Bedrock Runtime client and the region it calls, for messages.
#[derive(Clone, Debug)]
pub struct Bedrock {
    pub runtime: aws_sdk_bedrockruntime::Client,
    pub region: String,
    /// How long calls may take: image calls through the client's own configuration, text
    /// calls through [`Bedrock::text_call_timeouts`], streamed chat replies through
    /// [`Bedrock::stream_start_timeouts`] and their idle timeout.
    pub timeouts: ModelTimeouts,
}

impl Bedrock {
    /// A client from an SDK configuration (loaded from the environment in production; pointed
    /// at the stand-in in tests), with Atelier's retry and timeout policy on top.
    pub fn new(sdk_config: &SdkConfig, timeouts: ModelTimeouts) -> Self {
        // Throttling, "model not ready", 5xx answers, dropped connections and timed-out
        // attempts are retried with exponential backoff and full jitter by the SDK's standard
        // retry strategy, within the operation timeout.
        let retry = RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(INITIAL_BACKOFF)
            .with_max_backoff(MAX_BACKOFF);
        let call_timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(timeouts.attempt)
            .operation_timeout(timeouts.operation())
            .build();
        // The retry quota (the SDK's circuit breaker, which stops retrying once many retries
        // have failed) belongs to this client: by default it is shared by every client of the
        // process for the same service, so one storm would also stop another core's retries.
        let config = aws_sdk_bedrockruntime::config::Builder::from(sdk_config)
            .retry_config(retry)
            .retry_partition(RetryPartition::custom("atelier-bedrock").build())
            .timeout_config(call_timeouts)
            .build();
        let region = sdk_config.region().map(|region| region.to_string()).unwrap_or_else(|| "(no region)".into());
        Self { runtime: aws_sdk_bedrockruntime::Client::from_conf(config), region, timeouts }
    }

    /// The timeouts for a text call answered in one piece (Converse with a forced tool,
    /// ApplyGuardrail): shorter than an image's, see [`ModelTimeouts::text_attempt`].
    pub fn text_call_timeouts(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(self.timeouts.text_attempt())
            .operation_timeout(self.timeouts.text_operation())
            .build()
    }

    /// The timeouts for starting a streamed reply: its answer's headers must come within the
    /// chat idle timeout, retries within twice that. The stream itself is then bounded by the
    /// pauses between its pieces, not by its length.
    pub fn stream_start_timeouts(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(self.timeouts.chat_idle)
            .operation_timeout(self.timeouts.chat_start())
            .build()
    }
}

/// What was being done when an error came back, for the messages.
#[derive(Debug, Clone, Copy)]
pub struct CallContext<'a> {
    /// The model alias people know it by, or the id.
    pub model: &'a str,
    pub model_id: &'a str,
    pub region: &'a str,
}

/// Whether a validation message is a content filter's block (Titan and Nova Canvas send
/// those as validation errors).
pub fn is_content_filter_message(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("blocked by our content filters")
        || lower.contains("responsible ai policy")
        || lower.contains("may conflict with our aup")
}

/// Maps an error code and message from Bedrock (a response, or an event inside a stream).
pub fn error_from_code(code: &str, message: &str, call: CallContext<'_>) -> Error {
    let CallContext { model, model_id, region } = call;
    match code {
        "ValidationException" if is_content_filter_message(message) => Error::Blocked(Refused::by_model_filter(
            format!("{model}'s content filter blocked this request: change the prompt or the image and try again"),
        )),
        // Our own checks run first, so a validation error is either a limit of the model we
        // did not know or our bug: tell the user what the model said, and log it.
        "ValidationException" => {
            tracing::warn!(model = model_id, "Bedrock refused a request as invalid: {message}");
            Error::Invalid(Invalid::new(format!("{model} refused the request: {message}")))
        }
        "ThrottlingException" | "ServiceQuotaExceededException" => {
            Error::Busy(format!("{model} is busy right now; try again in a minute"))
        }
        "ModelNotReadyException" => Error::Busy(format!("{model} is starting up; try again in a minute")),
        "ModelTimeoutException" => Error::Busy(format!("{model} took too long to answer; try again")),
        "InternalServerException" | "ServiceUnavailableException" | "ModelStreamErrorException" => {
            Error::Busy(format!("{model} had a problem on its side; try again"))
        }
        "AccessDeniedException" => Error::operator(
            format!(
                "enable model {model_id} in the Bedrock console in region {region}, and allow this role bedrock:InvokeModel"
            ),
            format!("access denied: {message}"),
        ),
        "ResourceNotFoundException" => Error::operator(
            format!(
                "model {model_id} does not exist in region {region}: check ATELIER_IMAGE_MODELS or the chat model setting"
            ),
            format!("not found: {message}"),
        ),
        other => Error::operator(format!("calling {model_id} in {region}"), format!("{other}: {message}")),
    }
}

/// Maps an SDK error.
pub fn error_from_sdk<E, R>(error: SdkError<E, R>, call: CallContext<'_>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            let message = service.err().message().unwrap_or("").to_string();
            error_from_code(code, &message, call)
        }
        SdkError::TimeoutError(_) => Error::Busy(format!("{} took too long to answer; try again", call.model)),
        SdkError::DispatchFailure(failure) if failure.is_timeout() || failure.is_io() => {
            tracing::warn!("Bedrock could not be reached: {error:?}");
            Error::Busy("Bedrock cannot be reached right now; try again in a minute".into())
        }
        // An answer that broke off or could not be read (a connection dropped in the middle
        // of it, most often): passing, so the person may try again; the log keeps the cause.
        SdkError::ResponseError(_) => {
            tracing::warn!(model = call.model_id, "an answer from Bedrock broke off or could not be read: {error:?}");
            Error::Busy(format!("{}'s answer broke off; try again", call.model))
        }
        _ => Error::operator(format!("calling {} in {}", call.model_id, call.region), error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> CallContext<'static> {
        CallContext { model: "titan", model_id: "amazon.titan-image-generator-v1", region: "us-east-1" }
    }

    #[test]
    fn each_bedrock_error_tells_the_right_person_the_right_thing() {
        let blocked =
            error_from_code("ValidationException", "This request has been blocked by our content filters.", call());
        assert!(
            matches!(blocked, Error::Blocked(ref refused) if refused.to_string().contains("content filter")),
            "{blocked:?}"
        );
        let invalid = error_from_code("ValidationException", "width must be a multiple of 64", call());
        assert!(
            matches!(invalid, Error::Invalid(ref text) if text.message().contains("width must be a multiple of 64"))
        );
        for code in
            ["ThrottlingException", "ModelNotReadyException", "ModelTimeoutException", "ServiceQuotaExceededException"]
        {
            assert!(matches!(error_from_code(code, "", call()), Error::Busy(_)), "{code}");
        }
        let denied = error_from_code("AccessDeniedException", "no", call());
        assert!(!denied.is_user_error());
        assert!(
            denied
                .to_string()
                .contains("enable model amazon.titan-image-generator-v1 in the Bedrock console in region us-east-1")
        );
        let missing = error_from_code("ResourceNotFoundException", "no", call());
        assert!(missing.to_string().contains("check ATELIER_IMAGE_MODELS"), "{missing}");
    }
}
