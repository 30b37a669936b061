//! How many image jobs run at once, each person's share of them, and how a serving process
//! hands its jobs over when it stops. Read by the job queue and `atelier serve`.

use std::time::Duration;

use super::parse::parse_count;
use super::{Config, ConfigError, RawSettings};
use crate::pricing::{PriceTable, Usd};

/// How many image jobs run at once, and each person's share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLimits {
    /// Jobs running at once in this process; the rest wait in line.
    pub max_running: usize,
    /// Jobs one person may have running at once.
    pub per_user_running: usize,
    /// Jobs one person may have waiting, besides the running ones.
    pub per_user_queued: usize,
    /// Images one person may make per UTC day; `None` for no limit.
    pub daily_images: Option<u32>,
    /// Refusals one person may appeal per UTC day (each appeal is a call to a stronger
    /// model); `None` for no limit.
    pub daily_appeals: Option<u32>,
    /// What one person's model calls may cost per UTC day (images, chat, critiques,
    /// descriptions, appeals), weighed by the price table; `None` for no limit.
    pub daily_budget: Option<Usd>,
    /// What the whole service's model calls may cost per UTC day, across replicas; `None`
    /// for no cap.
    pub service_daily_budget: Option<Usd>,
    /// On SIGTERM, how long to stay up unready before stopping, so the load balancer drains
    /// this process first.
    pub shutdown_drain: Duration,
    /// On SIGTERM, how long running jobs may take to finish after the drain; what is still
    /// running then is answered by another replica (or this one's next start).
    pub shutdown_grace: Duration,
    /// How often this replica writes its heartbeat and looks for jobs of replicas that
    /// stopped; a replica silent for three of these is taken for dead.
    pub heartbeat: Duration,
}

impl Default for JobLimits {
    fn default() -> Self {
        Self {
            max_running: 4,
            per_user_running: 1,
            per_user_queued: 3,
            daily_images: Some(100),
            daily_appeals: Some(5),
            // A hundred Stable Image Core images and some chat: the image quota's default
            // (100) fits in it, so the budget bites first only on dearer models and talk.
            daily_budget: Some(Usd::from_micros(5_000_000)),
            service_daily_budget: None,
            shutdown_drain: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(20),
            heartbeat: Duration::from_secs(10),
        }
    }
}

pub(super) fn read(raw: &RawSettings) -> Result<JobLimits, ConfigError> {
    let defaults = JobLimits::default();
    Ok(JobLimits {
        max_running: parse_count(raw, "ATELIER_MAX_RUNNING_JOBS", 1, defaults.max_running)?,
        per_user_running: parse_count(raw, "ATELIER_USER_RUNNING_JOBS", 1, defaults.per_user_running)?,
        per_user_queued: parse_count(raw, "ATELIER_USER_QUEUED_JOBS", 0, defaults.per_user_queued)?,
        daily_images: match parse_count(raw, "ATELIER_DAILY_IMAGE_QUOTA", 0, 100)? {
            0 => None,
            images => Some(u32::try_from(images).unwrap_or(u32::MAX)),
        },
        daily_appeals: match parse_count(raw, "ATELIER_DAILY_APPEALS", 0, 5)? {
            0 => None,
            appeals => Some(u32::try_from(appeals).unwrap_or(u32::MAX)),
        },
        daily_budget: parse_dollars(raw, "ATELIER_DAILY_BUDGET_USD", defaults.daily_budget)?,
        service_daily_budget: parse_dollars(raw, "ATELIER_SERVICE_DAILY_BUDGET_USD", defaults.service_daily_budget)?,
        shutdown_drain: Duration::from_secs(parse_count(raw, "ATELIER_SHUTDOWN_DRAIN_SECONDS", 0, 5)? as u64),
        shutdown_grace: Duration::from_secs(parse_count(raw, "ATELIER_SHUTDOWN_GRACE_SECONDS", 0, 20)? as u64),
        heartbeat: Duration::from_secs(parse_count(raw, "ATELIER_HEARTBEAT_SECONDS", 1, 10)? as u64),
    })
}

/// The price table, with the table's complaint pinned on its variable.
pub(super) fn read_prices(raw: &RawSettings) -> Result<PriceTable, ConfigError> {
    PriceTable::new(raw.get("ATELIER_PRICES")).map_err(|problem| ConfigError {
        variable: "ATELIER_PRICES",
        value: raw.get("ATELIER_PRICES").map(String::from),
        problem,
        fix: "write pattern=price pairs separated by commas: dollars per image (core=0.04) or per million tokens in/out (claude-sonnet=3/15)".into(),
    })
}

/// An amount of dollars, `0` meaning no limit, or `default` when unset.
fn parse_dollars(raw: &RawSettings, variable: &'static str, default: Option<Usd>) -> Result<Option<Usd>, ConfigError> {
    match raw.get(variable) {
        None => Ok(default),
        Some(text) => match Usd::parse(text) {
            Some(Usd::ZERO) => Ok(None),
            Some(amount) => Ok(Some(amount)),
            None => Err(ConfigError {
                variable,
                value: Some(text.into()),
                problem: "is not an amount of US dollars".into(),
                fix: "write a plain number of dollars such as 5 or 2.50 (0 for no limit)".into(),
            }),
        },
    }
}

fn describe_dollars(amount: Option<Usd>) -> String {
    amount.map(|amount| amount.to_string()).unwrap_or_else(|| "0 (no limit)".into())
}

pub(super) fn describe(config: &Config) -> Vec<(&'static str, String)> {
    let limits = &config.limits;
    vec![
        ("ATELIER_MAX_RUNNING_JOBS", limits.max_running.to_string()),
        ("ATELIER_USER_RUNNING_JOBS", limits.per_user_running.to_string()),
        ("ATELIER_USER_QUEUED_JOBS", limits.per_user_queued.to_string()),
        ("ATELIER_SHUTDOWN_DRAIN_SECONDS", limits.shutdown_drain.as_secs().to_string()),
        ("ATELIER_SHUTDOWN_GRACE_SECONDS", limits.shutdown_grace.as_secs().to_string()),
        ("ATELIER_HEARTBEAT_SECONDS", limits.heartbeat.as_secs().to_string()),
        (
            "ATELIER_DAILY_IMAGE_QUOTA",
            limits.daily_images.map(|images| images.to_string()).unwrap_or_else(|| "0 (no limit)".into()),
        ),
        (
            "ATELIER_DAILY_APPEALS",
            limits.daily_appeals.map(|appeals| appeals.to_string()).unwrap_or_else(|| "0 (no limit)".into()),
        ),
        ("ATELIER_DAILY_BUDGET_USD", describe_dollars(limits.daily_budget)),
        ("ATELIER_SERVICE_DAILY_BUDGET_USD", describe_dollars(limits.service_daily_budget)),
        (
            "ATELIER_PRICES",
            config
                .prices
                .entries()
                .map(|(pattern, price)| format!("{pattern}: {price}"))
                .collect::<Vec<_>>()
                .join("; "),
        ),
    ]
}
