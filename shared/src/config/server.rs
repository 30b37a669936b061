//! Where the process listens and how it reports: the web app's address and public URL, the
//! CDN in front of it, the metrics listener, and the log format. Read by `atelier serve` and
//! the web app.

use std::net::SocketAddr;

use url::Url;

use super::parse::{parse_http_url, unset};
use super::{Config, ConfigError, RawSettings};

/// How log lines are written: for people at a terminal, or one JSON object a line for a
/// log store (the container sets this).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    /// Reads `ATELIER_LOG_FORMAT`. Logging starts before the rest of the configuration is
    /// read, so this is also called on its own.
    pub fn from_raw(raw: &RawSettings) -> Result<Self, ConfigError> {
        match raw.get("ATELIER_LOG_FORMAT").map(str::to_ascii_lowercase).as_deref() {
            None | Some("text") => Ok(Self::Text),
            Some("json") => Ok(Self::Json),
            Some(other) => Err(ConfigError {
                variable: "ATELIER_LOG_FORMAT",
                value: Some(other.into()),
                problem: "is not a log format".into(),
                fix: "use text or json".into(),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

pub(super) fn read_bind(raw: &RawSettings) -> Result<SocketAddr, ConfigError> {
    let text = raw.get("ATELIER_BIND").unwrap_or("127.0.0.1:8080");
    // Accept `localhost:PORT` too, as people type it; it means the IPv4 loopback here.
    let normalised = match text.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => text.to_string(),
    };
    normalised.parse().map_err(|_| ConfigError {
        variable: "ATELIER_BIND",
        value: Some(text.into()),
        problem: "is not an address and port".into(),
        fix: "use IP:PORT, such as 127.0.0.1:8080 (or 0.0.0.0:8080 in a container)".into(),
    })
}

/// `ATELIER_PUBLIC_URL`, or `http://{bind}` when unset.
pub(super) fn read_public_url(raw: &RawSettings, bind: SocketAddr) -> Result<Url, ConfigError> {
    match raw.get("ATELIER_PUBLIC_URL") {
        Some(text) => parse_http_url(
            "ATELIER_PUBLIC_URL",
            text,
            "set it to the address people open, such as https://atelier.example.com",
        ),
        None => default_public_url(bind),
    }
}

fn default_public_url(bind: SocketAddr) -> Result<Url, ConfigError> {
    let host = if bind.ip().is_unspecified() { "localhost".to_string() } else { bind.ip().to_string() };
    let host = if bind.is_ipv6() && host != "localhost" { format!("[{host}]") } else { host };
    Url::parse(&format!("http://{host}:{}/", bind.port())).map_err(|error| ConfigError {
        variable: "ATELIER_PUBLIC_URL",
        value: None,
        problem: format!("cannot be derived from ATELIER_BIND ({error})"),
        fix: "set ATELIER_PUBLIC_URL explicitly".into(),
    })
}

/// `ATELIER_ALLOWED_HOSTS`: host names, each with an optional port, comma-separated.
pub(super) fn read_allowed_hosts(raw: &RawSettings) -> Result<Vec<String>, ConfigError> {
    let Some(text) = raw.get("ATELIER_ALLOWED_HOSTS") else { return Ok(Vec::new()) };
    let mut hosts = Vec::new();
    for host in text.split(',').map(str::trim).filter(|host| !host.is_empty()) {
        let plausible =
            host.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b':' | b'[' | b']'));
        if !plausible {
            return Err(ConfigError {
                variable: "ATELIER_ALLOWED_HOSTS",
                value: Some(text.into()),
                problem: format!("`{host}` is not a host name"),
                fix: "list host names, such as internal-atelier-123.us-east-1.elb.amazonaws.com, separated by commas"
                    .into(),
            });
        }
        hosts.push(host.to_ascii_lowercase());
    }
    Ok(hosts)
}

/// `ATELIER_CLOUDFRONT_DISTRIBUTION_ID`: a distribution id as CloudFront writes it (`E2QWRUHAPOMQZL`:
/// capital letters and digits), not its domain name or ARN, which are easy to paste instead.
pub(super) fn read_cloudfront_distribution_id(raw: &RawSettings) -> Result<Option<String>, ConfigError> {
    let Some(text) = raw.get("ATELIER_CLOUDFRONT_DISTRIBUTION_ID") else { return Ok(None) };
    let plausible = text.len() <= 64 && text.bytes().all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit());
    if !plausible {
        let problem = if text.contains("cloudfront.net") {
            "is the distribution's domain name, not its id"
        } else if text.starts_with("arn:") {
            "is the distribution's ARN, not its id"
        } else {
            "is not a CloudFront distribution id (capital letters and digits)"
        };
        return Err(ConfigError {
            variable: "ATELIER_CLOUDFRONT_DISTRIBUTION_ID",
            value: Some(text.into()),
            problem: problem.into(),
            fix: "use the distribution's id, such as E2QWRUHAPOMQZL (aws cloudfront list-distributions shows it), or \
                  unset it when no CloudFront is in front of the web app"
                .into(),
        });
    }
    Ok(Some(text.to_string()))
}

/// The metrics listener's address: any address and port but the web app's own, so metrics
/// are never served on the public port.
pub(super) fn read_metrics_address(raw: &RawSettings, bind: SocketAddr) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(text) = raw.get("ATELIER_METRICS_ADDRESS") else { return Ok(None) };
    let normalised = match text.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => text.to_string(),
    };
    let address: SocketAddr = normalised.parse().map_err(|_| ConfigError {
        variable: "ATELIER_METRICS_ADDRESS",
        value: Some(text.into()),
        problem: "is not an address and port".into(),
        fix: "use IP:PORT, such as 127.0.0.1:9090 (or 0.0.0.0:9090 in a container), or unset it for no metrics".into(),
    })?;
    let overlaps = address.ip() == bind.ip() || address.ip().is_unspecified() || bind.ip().is_unspecified();
    if address.port() != 0 && address.port() == bind.port() && overlaps {
        return Err(ConfigError {
            variable: "ATELIER_METRICS_ADDRESS",
            value: Some(text.into()),
            problem: format!("is the web app's own port ({bind}), where metrics would be public"),
            fix: "choose another port, such as 9090".into(),
        });
    }
    Ok(Some(address))
}

pub(super) fn describe(config: &Config) -> Vec<(&'static str, String)> {
    vec![
        ("ATELIER_BIND", config.bind.to_string()),
        ("ATELIER_METRICS_ADDRESS", config.metrics_address.map(|address| address.to_string()).unwrap_or_else(unset)),
        ("ATELIER_LOG_FORMAT", config.log_format.as_str().to_string()),
        ("ATELIER_PUBLIC_URL", config.public_url.to_string()),
        (
            "ATELIER_ALLOWED_HOSTS",
            if config.allowed_hosts.is_empty() { unset() } else { config.allowed_hosts.join(",") },
        ),
        ("ATELIER_CLOUDFRONT_DISTRIBUTION_ID", config.cloudfront_distribution_id.clone().unwrap_or_else(unset)),
    ]
}
