//! What front ends show of a job: where it is in line, a person's usage today, and what
//! cancelling found.

use super::JobId;

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
}

impl Usage {
    /// Images left today, or `None` when there is no daily limit.
    pub fn images_left(&self) -> Option<u32> {
        self.daily_images.map(|quota| quota.saturating_sub(self.images_today))
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
