//! The fault suite's table: every fault scenario counts what it sent, what reached the
//! person, what the store holds, and what was doubled or lost, then checks the last two are
//! zero. Each row is also written to `target/fault-table/`, so `scripts/test` can print one
//! table for the whole run (a passing test's own output is hidden by the test harness).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One row of the fault table. A job is *delivered* when its person got what they asked for
/// or a clear answer saying what happened (a refusal, "try again", a refund); it is *lost*
/// when they got nothing, or when an image they were shown is not in the store. A
/// *duplicate* is a job run, answered or stored twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRow {
    pub scenario: String,
    pub jobs_sent: usize,
    pub jobs_delivered: usize,
    pub images_stored: usize,
    pub duplicates: usize,
    pub lost: usize,
}

impl FaultRow {
    /// Prints the row, records it for the run's table, and fails the test if anything was
    /// lost or doubled.
    pub fn check_and_record(&self) {
        println!(
            "| {:<60} | {:>9} | {:>14} | {:>13} | {:>10} | {:>4} |",
            "scenario", "jobs sent", "jobs delivered", "images stored", "duplicates", "lost"
        );
        println!("{}", self.line());
        let folder = fault_table_folder();
        if std::fs::create_dir_all(&folder).is_ok() {
            let slug: String = self
                .scenario
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
                .collect();
            let _ = std::fs::write(folder.join(format!("{slug}.json")), serde_json::to_vec(self).unwrap_or_default());
        }
        assert_eq!(self.lost, 0, "{}: jobs or images were lost", self.scenario);
        assert_eq!(self.duplicates, 0, "{}: something was done or stored twice", self.scenario);
    }

    fn line(&self) -> String {
        format!(
            "| {:<60} | {:>9} | {:>14} | {:>13} | {:>10} | {:>4} |",
            self.scenario, self.jobs_sent, self.jobs_delivered, self.images_stored, self.duplicates, self.lost
        )
    }
}

/// Where rows are collected: `target/fault-table` beside the test binary's target folder.
fn fault_table_folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("fault-table")
}
