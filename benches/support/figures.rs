//! What a load benchmark reports: one row per figure, printed as a table and written as JSON
//! to `target/bench/{name}.json`, which `scripts/bench` merges into `results.json`.

use std::path::PathBuf;

use serde_json::{Value, json};

/// One measured value, with the target it is held to (if any) and whether it met it.
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    pub target: String,
    pub met: bool,
    pub note: String,
}

impl Figure {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "value": (self.value * 100.0).round() / 100.0,
            "unit": self.unit,
            "target": self.target,
            "met": self.met,
            "note": self.note,
        })
    }
}

/// A figure that must stay under `limit`.
pub fn below(name: &str, value: f64, unit: &'static str, limit: f64, note: String) -> Figure {
    Figure { name: name.into(), value, unit, target: format!("< {limit} {unit}"), met: value < limit, note }
}

/// A figure that may reach `limit` but not pass it.
pub fn at_most(name: &str, value: f64, unit: &'static str, limit: f64, note: String) -> Figure {
    Figure { name: name.into(), value, unit, target: format!("<= {limit} {unit}"), met: value <= limit, note }
}

/// A figure that must reach `floor`.
pub fn at_least(name: &str, value: f64, unit: &'static str, floor: f64, note: String) -> Figure {
    Figure { name: name.into(), value, unit, target: format!(">= {floor} {unit}"), met: value >= floor, note }
}

/// A figure reported as it is, with no target of its own.
pub fn reported(name: &str, value: f64, unit: &'static str, note: String) -> Figure {
    Figure { name: name.into(), value, unit, target: "-".into(), met: true, note }
}

/// The figure groups asked for on the command line: `cargo bench` passes `--bench`, any other
/// argument filters the groups by name.
pub fn filters() -> Vec<String> {
    std::env::args().skip(1).filter(|argument| !argument.starts_with("--")).collect()
}

/// Whether the figure group `name` was asked for (all when there is no filter).
pub fn wanted(filters: &[String], name: &str) -> bool {
    filters.is_empty() || filters.iter().any(|filter| name.contains(filter.as_str()))
}

/// Prints the table and writes `target/bench/{file_name}`.
pub fn report(file_name: &str, figures: &[Figure]) {
    print_table(figures);
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&folder).unwrap();
    let json = serde_json::to_string_pretty(&figures.iter().map(Figure::to_json).collect::<Vec<_>>()).unwrap();
    std::fs::write(folder.join(file_name), json + "\n").unwrap();
    println!("\nwritten: {}", folder.join(file_name).display());
}

fn print_table(figures: &[Figure]) {
    let rows: Vec<[String; 5]> = figures
        .iter()
        .map(|figure| {
            [
                figure.name.clone(),
                format!("{:.2} {}", figure.value, figure.unit),
                figure.target.clone(),
                if figure.met { "yes".into() } else { "NO".into() },
                figure.note.clone(),
            ]
        })
        .collect();
    let headers = ["figure", "value", "target", "met", "note"];
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    println!();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(cell, width)| format!("{cell:width$}")).collect();
        println!("| {} |", padded.join(" | "));
    };
    line(&headers.map(String::from));
    println!("|{}|", widths.map(|width| "-".repeat(width + 2)).join("|"));
    for row in &rows {
        line(row);
    }
}

/// The value at a percentile (nearest rank) of sorted values.
pub fn percentile(sorted: &[f64], percent: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((percent / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
