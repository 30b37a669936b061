//! Which `Host` the app answers to. In local mode everyone who reaches the app is the
//! operator, so a page elsewhere that rebinds its own name to 127.0.0.1 (DNS rebinding) would
//! act as the operator: read the gallery, delete, generate on the operator's AWS account. There
//! the app answers only requests addressed to a loopback name, and state-changing ones only
//! from a loopback origin. Behind sign-in the app answers only the public URL's host and the
//! names in `ATELIER_ALLOWED_HOSTS`: CloudFront reaches the load balancer by the balancer's own
//! name (it does not forward the viewer's `Host`, so that the origin's certificate can match),
//! and the stack lists that name. A rebound name would carry no session cookie of ours anyway;
//! refusing it outright also keeps public pages and sign-in starts from answering it.

use std::sync::Arc;

use atelier_shared::config::LocalSignIn;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Whether `host` (a `Host` header or an origin's host, with or without a port) names this
/// machine: `localhost` or a name under it, 127.0.0.0/8, or `[::1]`.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => {
            host.rsplit_once(':').map_or(host, |(name, port)| if port.parse::<u16>().is_ok() { name } else { host })
        }
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "::1"
        || name.parse::<std::net::Ipv4Addr>().is_ok_and(|address| address.is_loopback())
}

/// Which names the app answers to.
#[derive(Debug, Clone)]
pub enum HostRule {
    /// Local mode: loopback names only, and state-changing requests only from a loopback origin.
    Loopback,
    /// Behind sign-in: the public URL's host and `ATELIER_ALLOWED_HOSTS`, lower-cased.
    Named(Arc<[String]>),
}

impl HostRule {
    pub fn for_site(site: &crate::Site) -> Self {
        match site.local_sign_in {
            LocalSignIn::Allowed => Self::Loopback,
            _ => Self::Named(site.accepted_hosts.iter().map(|host| host.to_ascii_lowercase()).collect()),
        }
    }
}

/// The probes answer whatever the name: the load balancer's health checks address the task
/// by its IP address.
fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// The middleware: refuses, before any handler, a request addressed to a name that is not ours.
pub async fn only_our_own_names(State(rule): State<HostRule>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let names: &[String] = match &rule {
        HostRule::Loopback => {
            if !is_loopback(host) {
                return (
                    StatusCode::MISDIRECTED_REQUEST,
                    "This Atelier runs in local mode and answers only to localhost: open it at http://localhost.",
                )
                    .into_response();
            }
            let state_changing = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
            let origin = request.headers().get(header::ORIGIN).and_then(|value| value.to_str().ok());
            if state_changing
                && let Some(origin) = origin
                && !origin.split_once("://").is_some_and(|(_, host)| is_loopback(host))
            {
                return (StatusCode::FORBIDDEN, "This request came from another site, so it was refused.")
                    .into_response();
            }
            return next.run(request).await;
        }
        HostRule::Named(names) => names,
    };
    let host = host.to_ascii_lowercase();
    if !is_probe(request.uri().path()) && !names.contains(&host) {
        // The name is attacker-chosen: logged as an escaped field.
        tracing::info!(host = ?host, "refused a request addressed to a name that is not ours");
        return (StatusCode::MISDIRECTED_REQUEST, "This address is not served here.").into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_names_and_only_those() {
        for host in ["localhost", "localhost:8080", "127.0.0.1:3000", "127.1.2.3", "[::1]:8080", "app.localhost"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in
            ["rebind.attacker.example", "localhost.attacker.example", "10.0.0.1", "", "[::2]:80", "127.0.0.1.nip.io"]
        {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
