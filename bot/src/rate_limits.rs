//! Discord's rate-limit waits, counted in the core's metrics
//! (`atelier_discord_rate_limit_wait_seconds{route}`).
//!
//! Two kinds of wait are counted. serenity's own rate limiter (on in production) waits
//! before a request would be refused, and tells the client's event handlers: [`RateLimitMeter`]
//! is one. With a REST proxy (the stand-in in tests) that limiter is off and
//! [`crate::respond::retrying`] waits out the 429s itself: it reports them through
//! [`waited`], to the metrics of the bot whose event is being handled, carried by a task-local
//! value rather than a process-wide one, so two bots in one process never count each other's.

use std::future::Future;
use std::time::Duration;

use atelier_shared::metrics::Metrics;
use poise::serenity_prelude as serenity;

tokio::task_local! {
    /// The metrics of the bot handling the current Discord event.
    static HANDLING_FOR: Metrics;
}

/// Runs `future` (the handling of one event) with its Discord waits counted in `metrics`.
pub async fn measured<F: Future>(metrics: Metrics, future: F) -> F::Output {
    HANDLING_FOR.scope(metrics, future).await
}

/// `future`, counting its waits where the current task counts them: for work handed to a
/// task of its own (a job's progress display), which would otherwise lose track.
pub fn keep_measuring<F: Future>(future: F) -> impl Future<Output = F::Output> {
    let metrics = HANDLING_FOR.try_with(Metrics::clone).ok();
    async move {
        match metrics {
            Some(metrics) => HANDLING_FOR.scope(metrics, future).await,
            None => future.await,
        }
    }
}

/// Counts a wait after Discord answered 429 Too Many Requests; other errors are not rate limits.
pub fn waited(error: &serenity::Error, wait: Duration) {
    if let serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(response)) = error
        && response.status_code.as_u16() == 429
    {
        // Outside an event's handling there is nobody to count for; the log still says it.
        let _ = HANDLING_FOR.try_with(|metrics| metrics.discord_rate_limit_wait(&response.url, wait));
    }
}

/// Counts the waits of serenity's own rate limiter, which it reports to event handlers.
pub struct RateLimitMeter(pub Metrics);

#[serenity::async_trait]
impl serenity::EventHandler for RateLimitMeter {
    async fn ratelimit(&self, data: serenity::RatelimitInfo) {
        self.0.discord_rate_limit_wait(&data.path, data.timeout);
    }
}
