//! The flusher: the task that writes spooled entries to the store, backing off while the
//! store is down.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Spool;
use crate::store::ObjectStore;

impl Spool {
    /// Starts the task that writes entries to `store` whenever there are any, retrying with
    /// exponential backoff and jitter while the store is down. It stops when told through
    /// [`Flusher::stop`], or when the [`Flusher`] is dropped.
    pub fn start_flusher(&self, store: Arc<dyn ObjectStore>, backoff: Backoff) -> Flusher {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run_flusher(self.clone(), store, backoff, stopped));
        Flusher { stop, task: tokio::sync::Mutex::new(Some(task)) }
    }
}

/// How long the flusher waits between attempts while the store is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub longest: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { first: Duration::from_millis(500), longest: Duration::from_secs(15) }
    }
}

impl Backoff {
    /// The wait after `failures` failures in a row: doubling from `first` up to `longest`,
    /// of which a random half is taken off, so replicas that lost the store together do not
    /// come back in step.
    pub fn delay(&self, failures: u32) -> Duration {
        let doubled = self.first.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(20)));
        let ceiling = doubled.min(self.longest);
        let half = ceiling / 2;
        let jitter_millis = rand::random_range(0..=u64::try_from(half.as_millis()).unwrap_or(u64::MAX));
        half + Duration::from_millis(jitter_millis)
    }
}

/// The running flusher; dropping it stops the task too.
#[derive(Debug)]
pub struct Flusher {
    stop: watch::Sender<bool>,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Flusher {
    /// Tells the flusher to stop and waits until it has (a write in progress finishes first).
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.lock().await.take()
            && let Err(error) = task.await
        {
            tracing::error!("the spool flusher failed: {error}");
        }
    }
}

async fn run_flusher(spool: Spool, store: Arc<dyn ObjectStore>, backoff: Backoff, mut stop: watch::Receiver<bool>) {
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            return;
        }
        let wait = match spool.flush(store.as_ref(), Some(&stop)).await {
            Ok(_) => {
                failures = 0;
                // Nothing more to do until an entry is added; the periodic look is only a safety
                // net should a wake-up ever be missed.
                None
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let delay = backoff.delay(failures);
                let depth = spool.depth();
                tracing::warn!(
                    spool.entries = depth.entries,
                    spool.bytes = depth.bytes,
                    "the store still cannot take the {} spooled images ({error}); trying again in {} ms",
                    depth.entries,
                    delay.as_millis()
                );
                Some(delay)
            }
        };
        let stopped = async {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        match wait {
            Some(delay) => tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stopped => return,
            },
            None => tokio::select! {
                () = spool.inner.added.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(60)) => {}
                () = stopped => return,
            },
        }
    }
}
