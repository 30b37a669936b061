//! Web sign-in: the OpenID Connect provider, the key that signs session cookies, and when the
//! web app may sign visitors in as the local operator instead. Read by the web app.

use std::net::SocketAddr;

use secrecy::{ExposeSecret, SecretBox, SecretString};
use url::Url;

use super::parse::{parse_http_url, redacted, unset};
use super::{Config, ConfigError, RawSettings};

/// Web sign-in through an OpenID Connect provider.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub issuer: Url,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub cognito_user_pool_id: Option<String>,
    /// The key that signs session cookies: the same on every replica, so any of them can
    /// read a cookie another set.
    pub session_secret: SecretBox<[u8]>,
}

/// Whether local, password-less sign-in is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalSignIn {
    /// Loopback bind and no sign-in provider: everyone who can reach the app is the operator.
    Allowed,
    /// A sign-in provider is configured; local sign-in is off.
    NotNeeded,
    /// No sign-in provider, but the app listens beyond this machine: sign-in is refused.
    RefusedOffLoopback(SocketAddr),
}

/// Sign-in's settings, or `None` (local mode) when neither the issuer nor the client is set;
/// half of the pair is refused rather than quietly falling back to local sign-in.
pub(super) fn read(raw: &RawSettings) -> Result<Option<OidcConfig>, ConfigError> {
    match (raw.get("ATELIER_OIDC_ISSUER"), raw.get("ATELIER_OIDC_CLIENT_ID")) {
        (None, None) => {
            if raw.get("ATELIER_OIDC_CLIENT_SECRET").is_some() {
                return Err(missing_pair(
                    "ATELIER_OIDC_CLIENT_SECRET",
                    "ATELIER_OIDC_ISSUER and ATELIER_OIDC_CLIENT_ID",
                ));
            }
            Ok(None)
        }
        (Some(_), None) => Err(missing_pair("ATELIER_OIDC_ISSUER", "ATELIER_OIDC_CLIENT_ID")),
        (None, Some(_)) => Err(missing_pair("ATELIER_OIDC_CLIENT_ID", "ATELIER_OIDC_ISSUER")),
        (Some(issuer), Some(client_id)) => Ok(Some(OidcConfig {
            issuer: parse_http_url(
                "ATELIER_OIDC_ISSUER",
                issuer,
                "use the issuer URL, such as https://cognito-idp.REGION.amazonaws.com/POOL_ID",
            )?,
            client_id: client_id.to_string(),
            client_secret: raw.get("ATELIER_OIDC_CLIENT_SECRET").map(|secret| SecretString::from(secret.to_string())),
            cognito_user_pool_id: raw.get("ATELIER_COGNITO_USER_POOL_ID").map(String::from),
            session_secret: parse_session_secret(raw.get("ATELIER_SESSION_SECRET"))?,
        })),
    }
}

impl Config {
    /// Whether the web app may sign visitors in as the local operator without a password:
    /// only when no sign-in provider is configured and only on a loopback address, so that
    /// a misconfigured server on a network never hands out the operator's gallery.
    pub fn local_sign_in(&self) -> LocalSignIn {
        if self.oidc.is_some() {
            LocalSignIn::NotNeeded
        } else if self.bind.ip().is_loopback() {
            LocalSignIn::Allowed
        } else {
            LocalSignIn::RefusedOffLoopback(self.bind)
        }
    }
}

fn missing_pair(set: &'static str, missing: &str) -> ConfigError {
    ConfigError {
        variable: set,
        value: None,
        problem: format!("is set without {missing}"),
        fix: format!("set {missing} as well, or unset {set} to use local sign-in"),
    }
}

/// The session-signing key: at least 64 characters of random text (hex from `openssl rand`,
/// or the alphanumeric value Secrets Manager generates). It is stretched into the cookie key
/// with HKDF, so any text of that length and randomness serves.
fn parse_session_secret(text: Option<&str>) -> Result<SecretBox<[u8]>, ConfigError> {
    let invalid = |problem: &str| ConfigError {
        variable: "ATELIER_SESSION_SECRET",
        value: text.map(|_| "(set, redacted)".to_string()),
        problem: problem.into(),
        fix: "set it to 64 or more random characters, such as the output of `openssl rand -hex 32`, the same on \
              every replica"
            .into(),
    };
    let text = text.ok_or_else(|| invalid("is needed when sign-in is configured"))?.trim();
    if text.chars().count() < 64 {
        return Err(invalid("is shorter than 64 characters"));
    }
    if text.chars().collect::<std::collections::HashSet<_>>().len() < 8 {
        return Err(invalid("repeats too few characters to be random"));
    }
    Ok(SecretBox::new(text.as_bytes().to_vec().into_boxed_slice()))
}

pub(super) fn describe(config: &Config) -> Vec<(&'static str, String)> {
    let oidc = config.oidc.as_ref();
    vec![
        ("ATELIER_OIDC_ISSUER", oidc.map(|oidc| oidc.issuer.to_string()).unwrap_or_else(unset)),
        ("ATELIER_OIDC_CLIENT_ID", oidc.map(|oidc| oidc.client_id.clone()).unwrap_or_else(unset)),
        (
            "ATELIER_OIDC_CLIENT_SECRET",
            oidc.and_then(|oidc| oidc.client_secret.as_ref()).map(redacted).unwrap_or_else(unset),
        ),
        ("ATELIER_COGNITO_USER_POOL_ID", oidc.and_then(|oidc| oidc.cognito_user_pool_id.clone()).unwrap_or_else(unset)),
        (
            "ATELIER_SESSION_SECRET",
            oidc.map(|oidc| format!("(set, {} bytes, redacted)", oidc.session_secret.expose_secret().len()))
                .unwrap_or_else(unset),
        ),
    ]
}
