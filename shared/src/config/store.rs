//! Where images are kept: the gallery's store (a folder or an S3 bucket) and the local spool
//! where images wait while the store is down. Read when start-up opens the store.

use std::fmt;
use std::path::PathBuf;

use super::parse::parse_flag;
use super::{Config, ConfigError, RawSettings};

/// Where images wait while the store is down, unless `ATELIER_SPOOL_DIR` says otherwise:
/// beside the default data folder, on disk that survives a restart of the process.
pub const DEFAULT_SPOOL_DIR: &str = "./atelier-spool";

/// The most the spool holds unless `ATELIER_SPOOL_MAX_BYTES` says otherwise: 1 GiB, a few
/// thousand images.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 1 << 30;

/// Where the gallery keeps its objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A local folder (the embedded default).
    Folder(PathBuf),
    /// An S3 bucket, with an optional key prefix (no leading or trailing slash).
    S3 { bucket: String, prefix: Option<String> },
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Folder(path) => write!(formatter, "file://{}", path.display()),
            Self::S3 { bucket, prefix: Some(prefix) } => write!(formatter, "s3://{bucket}/{prefix}"),
            Self::S3 { bucket, prefix: None } => write!(formatter, "s3://{bucket}"),
        }
    }
}

/// The store's settings as [`Config`] holds them.
pub(super) struct StoreSettings {
    pub(super) location: StoreLocation,
    pub(super) s3_force_path_style: bool,
    pub(super) spool_dir: PathBuf,
    pub(super) spool_max_bytes: u64,
}

pub(super) fn read(raw: &RawSettings) -> Result<StoreSettings, ConfigError> {
    let location = parse_store(raw.get("ATELIER_STORE"))?;
    let s3_force_path_style = parse_flag(raw, "ATELIER_S3_FORCE_PATH_STYLE")?;
    let spool_dir = PathBuf::from(raw.get("ATELIER_SPOOL_DIR").unwrap_or(DEFAULT_SPOOL_DIR));
    let spool_max_bytes = match raw.get("ATELIER_SPOOL_MAX_BYTES") {
        None => DEFAULT_SPOOL_MAX_BYTES,
        Some(text) => text.parse::<u64>().ok().filter(|bytes| *bytes >= 1).ok_or_else(|| ConfigError {
            variable: "ATELIER_SPOOL_MAX_BYTES",
            value: Some(text.into()),
            problem: "is not a whole number of bytes of at least 1".into(),
            fix: format!("use a whole number such as {DEFAULT_SPOOL_MAX_BYTES} (1 GiB)"),
        })?,
    };
    Ok(StoreSettings { location, s3_force_path_style, spool_dir, spool_max_bytes })
}

fn parse_store(text: Option<&str>) -> Result<StoreLocation, ConfigError> {
    let text = text.unwrap_or("file://./atelier-data");
    let invalid = |problem: &str| ConfigError {
        variable: "ATELIER_STORE",
        value: Some(text.into()),
        problem: problem.into(),
        fix: "use file://PATH (such as file://./atelier-data) or s3://BUCKET[/PREFIX]".into(),
    };
    if let Some(path) = text.strip_prefix("file://") {
        if path.is_empty() {
            return Err(invalid("names no folder"));
        }
        return Ok(StoreLocation::Folder(PathBuf::from(path)));
    }
    if let Some(rest) = text.strip_prefix("s3://") {
        let (bucket, prefix) = match rest.split_once('/') {
            Some((bucket, prefix)) => (bucket, prefix.trim_matches('/')),
            None => (rest, ""),
        };
        // S3's bucket naming rules: 3-63 characters of lower-case letters, digits, dots and hyphens.
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid_bucket {
            return Err(ConfigError {
                variable: "ATELIER_STORE",
                value: Some(text.into()),
                problem: format!("`{bucket}` is not a valid S3 bucket name"),
                fix: "bucket names are 3 to 63 lower-case letters, digits, dots and hyphens".into(),
            });
        }
        return Ok(StoreLocation::S3 {
            bucket: bucket.into(),
            prefix: (!prefix.is_empty()).then(|| prefix.to_string()),
        });
    }
    Err(invalid("is not a store location"))
}

pub(super) fn describe(config: &Config) -> Vec<(&'static str, String)> {
    vec![
        ("ATELIER_STORE", config.store.to_string()),
        ("ATELIER_S3_FORCE_PATH_STYLE", config.s3_force_path_style.to_string()),
        ("ATELIER_SPOOL_DIR", config.spool_dir.display().to_string()),
        ("ATELIER_SPOOL_MAX_BYTES", config.spool_max_bytes.to_string()),
    ]
}
