//! The security suite's table, like the fault table: every attack tried on the running
//! service records how many times it was tried, how many were refused or absorbed, how many
//! changed something they should not have (a file in the store, a model call, a forged log
//! line), and what was observed; then checks nothing changed. Rows are also written to
//! `target/security-table/`, which `scripts/test` prints as one table for the whole run.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttackRow {
    pub attack: String,
    pub tried: usize,
    /// Answered with a refusal, or absorbed (answered normally with nothing given away).
    pub refused: usize,
    /// Tries that changed something or gave something away.
    pub changed: usize,
    /// What was measured or seen, in a few words.
    pub outcome: String,
}

impl AttackRow {
    pub fn new(attack: &str, tried: usize, refused: usize, changed: usize, outcome: impl Into<String>) -> Self {
        Self { attack: attack.to_string(), tried, refused, changed, outcome: outcome.into() }
    }

    /// Prints the row, records it for the run's table, and fails the test unless every try
    /// was refused and none changed anything.
    pub fn check_and_record(&self) {
        println!(
            "| {} | tried {} | refused {} | changed {} | {} |",
            self.attack, self.tried, self.refused, self.changed, self.outcome
        );
        let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("security-table");
        if std::fs::create_dir_all(&folder).is_ok() {
            let slug: String = self
                .attack
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
                .collect();
            let _ = std::fs::write(folder.join(format!("{slug}.json")), serde_json::to_vec(self).unwrap_or_default());
        }
        assert_eq!(self.changed, 0, "{}: an attack changed something ({})", self.attack, self.outcome);
        assert_eq!(self.refused, self.tried, "{}: not every try was refused ({})", self.attack, self.outcome);
    }
}
