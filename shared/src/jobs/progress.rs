//! What front ends show of a job: where it is in line, a person's usage today, and what
//! cancelling found.

use super::JobId;
use crate::pricing::Usd;

/// Where a job is, as front ends show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for a free slot; `position` 1 is next. `job` is for a Cancel button.
    Queued { position: usize, job: JobId },
    /// The safety checks are reading the prompt.
    Checking,
    /// The model is drawing.
    Generating,
    /// The images are being kept in the gallery.
    Saving,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Queued { position: 1, .. } => formatter.write_str("Queued: next in line"),
            Self::Queued { position, .. } => write!(formatter, "Queued: {position} in line"),
            Self::Checking => formatter.write_str("Checking the prompt"),
            Self::Generating => formatter.write_str("Generating"),
            Self::Saving => formatter.write_str("Saving to your gallery"),
        }
    }
}

/// Where a front end hears about a job's progress. Called from the job's task; keep it quick.
pub type Progress<'a> = &'a (dyn Fn(Stage) + Send + Sync);

/// A progress listener that ignores everything (the CLI, tests).
pub fn no_progress(_stage: Stage) {}

/// One person's jobs and images today, for `/me` and the account page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub running: usize,
    pub queued: usize,
    pub images_today: u32,
    /// `None` when there is no daily limit.
    pub daily_images: Option<u32>,
    /// The estimated price of today's model calls.
    pub spent_today: Usd,
    /// `None` when there is no daily budget.
    pub daily_budget: Option<Usd>,
}

impl Usage {
    /// Images left today, or `None` when there is no daily limit.
    pub fn images_left(&self) -> Option<u32> {
        self.daily_images.map(|quota| quota.saturating_sub(self.images_today))
    }

    /// What is left of today's budget, or `None` when there is no budget.
    pub fn budget_left(&self) -> Option<Usd> {
        self.daily_budget.map(|budget| budget.saturating_sub(self.spent_today))
    }
}

/// A person's usage in words, the same on every front end (`/me`, the account page).
pub mod usage_text {
    use super::Usage;

    /// "12 of 100 images left today (resets at midnight UTC)".
    pub fn images(usage: &Usage) -> String {
        match (usage.images_left(), usage.daily_images) {
            (Some(left), Some(quota)) => format!("{left} of {quota} images left today (resets at midnight UTC)"),
            _ => format!("{} images today, no daily limit", usage.images_today),
        }
    }

    /// "$4.12 of today's $5.00 budget left (estimated model costs)".
    pub fn budget(usage: &Usage) -> String {
        match (usage.budget_left(), usage.daily_budget) {
            (Some(left), Some(budget)) => format!(
                "{left} of today's {budget} budget left (estimated cost of images, chat, critiques and descriptions)"
            ),
            _ => format!("{} spent today (estimated), no daily budget", usage.spent_today),
        }
    }
}

/// What cancelling found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// It was waiting and leaves the line now; its images are given back.
    Now,
    /// It waits in another process, and leaves the line before it starts.
    BeforeItStarts,
    /// The model is already drawing it: it cannot be called back.
    TooLate,
    /// It is finished, or is not this person's.
    NotFound,
}
