//! What was used, for the operator (`atelier admin usage`): every model call that was charged
//! leaves one small record, `usage/{day}/{ulid}.json`, with who, which server, which model,
//! what for, how many images and its estimated cost. Images are recorded when delivered (a
//! refunded job leaves none), text calls (chat, critiques, descriptions, appeals) when answered.
//! A report reads the records of the days asked for, one request each: fine for an operator's
//! tool; a daily roll-up would be the next step for a very busy service.
//!
//! Writing a record is best effort: a failure is logged and the person's work goes on (the
//! daily budgets, which do stop work, are counted in the ledgers, not here).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::error::Result;
use crate::gallery::Owner;
use crate::pricing::Usd;

use super::Atelier;

/// One charged model call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub owner: Owner,
    /// The Discord server it was asked in, when known.
    pub guild_id: Option<u64>,
    /// The provider's model id.
    pub model: String,
    /// image, chat, critique, describe or appeal.
    pub operation: String,
    pub images: u32,
    pub cost: Usd,
}

/// Counts for one model, person or server (or all).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotals {
    pub images: u64,
    /// Model calls that were charged (an image job with several images is one).
    pub calls: u64,
    /// Estimated from the price table, in US dollars.
    pub cost_usd: f64,
    #[serde(skip)]
    cost: Usd,
}

impl UsageTotals {
    fn add(&mut self, record: &UsageRecord) {
        self.images += u64::from(record.images);
        self.calls += 1;
        self.cost = self.cost.saturating_add(record.cost);
        self.cost_usd = self.cost.as_dollars();
    }
}

/// Usage over whole UTC days, `from` to `to` inclusive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    pub from: Date,
    pub to: Date,
    pub total: UsageTotals,
    pub by_model: BTreeMap<String, UsageTotals>,
    pub by_person: BTreeMap<String, UsageTotals>,
    /// Discord servers by id; calls made elsewhere (the web, the CLI, direct messages) are
    /// under "none".
    pub by_server: BTreeMap<String, UsageTotals>,
}

/// The longest period a report reads.
pub const LONGEST_USAGE_PERIOD_DAYS: i64 = 366;

impl Atelier {
    /// Records a charged model call (see the module documentation).
    pub(super) async fn record_usage(
        &self,
        owner: &Owner,
        guild_id: Option<u64>,
        model: &str,
        operation: &str,
        images: u32,
        cost: Usd,
    ) {
        let at = OffsetDateTime::now_utc();
        let record = UsageRecord {
            at,
            owner: owner.clone(),
            guild_id,
            model: model.to_string(),
            operation: operation.to_string(),
            images,
            cost,
        };
        let key = match Self::key(format!("usage/{}/{}.json", at.date(), ulid::Ulid::new())) {
            Ok(key) => key,
            Err(error) => return tracing::warn!(error = %error, "could not name a usage record"),
        };
        if let Err(error) = self.records("usage record").create(&key, &record).await {
            tracing::warn!(error = %error, "could not keep a usage record");
        }
    }

    /// Usage from `from` to `to` (whole UTC days), totalled by model, person and server.
    pub async fn usage_report(&self, from: Date, to: Date) -> Result<UsageReport> {
        if to < from {
            return Err(crate::Invalid::new("the period ends before it starts").into());
        }
        if (to - from).whole_days() >= LONGEST_USAGE_PERIOD_DAYS {
            return Err(crate::Invalid::new(format!("ask for at most {LONGEST_USAGE_PERIOD_DAYS} days at once")).into());
        }
        let mut report = UsageReport {
            from,
            to,
            total: UsageTotals::default(),
            by_model: BTreeMap::new(),
            by_person: BTreeMap::new(),
            by_server: BTreeMap::new(),
        };
        let mut day = from;
        loop {
            let prefix = format!("usage/{day}/");
            let mut after: Option<String> = None;
            loop {
                let keys = self.store().list(&prefix, after.as_deref(), 1_000).await?;
                let Some(last) = keys.last() else { break };
                after = Some(last.as_str().to_string());
                for key in &keys {
                    let Some(record) = self.records("usage record").get::<UsageRecord>(key).await? else { continue };
                    report.total.add(&record);
                    report.by_model.entry(record.model.clone()).or_default().add(&record);
                    report.by_person.entry(record.owner.to_string()).or_default().add(&record);
                    let server = record.guild_id.map_or_else(|| "none".to_string(), |id| id.to_string());
                    report.by_server.entry(server).or_default().add(&record);
                }
            }
            match day.next_day() {
                Some(next) if next <= to => day = next,
                _ => break,
            }
        }
        Ok(report)
    }
}
