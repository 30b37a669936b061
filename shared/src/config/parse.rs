//! Readers shared by the sections: whole numbers, seconds, flags and URLs, each refusal worded
//! the same way whichever setting it is for.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::{ConfigError, RawSettings};

/// A whole number of at least `minimum`, or `default` when unset.
pub(super) fn parse_count(
    raw: &RawSettings,
    variable: &'static str,
    minimum: usize,
    default: usize,
) -> Result<usize, ConfigError> {
    match raw.get(variable) {
        None => Ok(default),
        Some(text) => text.trim().parse::<usize>().ok().filter(|count| *count >= minimum).ok_or_else(|| ConfigError {
            variable,
            value: Some(text.into()),
            problem: format!("is not a whole number of at least {minimum}"),
            fix: format!("use a whole number such as {default}"),
        }),
    }
}

/// A whole number of seconds from 1 to an hour, or `default` when unset: a timeout of zero
/// would fail every call, and one past an hour is no longer a bound anyone would wait out.
pub(super) fn parse_seconds(
    raw: &RawSettings,
    variable: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match raw.get(variable) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|seconds| (1..=3600).contains(seconds))
            .map(Duration::from_secs)
            .ok_or_else(|| ConfigError {
                variable,
                value: Some(text.into()),
                problem: "is not a whole number of seconds from 1 to 3600".into(),
                fix: format!("use a whole number such as {}", default.as_secs()),
            }),
    }
}

pub(super) fn parse_flag(raw: &RawSettings, variable: &'static str) -> Result<bool, ConfigError> {
    match raw.get(variable).map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "0" | "no" | "off") => Ok(false),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some(other) => Err(ConfigError {
            variable,
            value: Some(other.into()),
            problem: "is not true or false".into(),
            fix: "use true or false".into(),
        }),
    }
}

pub(super) fn parse_http_url(variable: &'static str, text: &str, fix: &str) -> Result<Url, ConfigError> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        _ => Err(ConfigError {
            variable,
            value: Some(text.into()),
            problem: "is not an http(s) URL".into(),
            fix: fix.into(),
        }),
    }
}

/// How `atelier config` shows a secret: that it is set and how long, never what it is.
pub(super) fn redacted(secret: &SecretString) -> String {
    let length = secret.expose_secret().chars().count();
    format!("(set, {length} characters, redacted)")
}

/// How `atelier config` shows a setting that has no value.
pub(super) fn unset() -> String {
    "(not set)".to_string()
}
