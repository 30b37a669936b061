//! Which `Host` the app answers to. In local mode everyone who reaches the app is the
//! operator, so a page elsewhere that rebinds its own name to 127.0.0.1 (DNS rebinding) would
//! act as the operator: read the gallery, delete, generate on the operator's AWS account. There
//! the app answers only requests addressed to a loopback name, and state-changing ones only
//! from a loopback origin. Behind sign-in the check is the session itself: a rebound name has no
//! session cookie of ours (cookies belong to the public host), so it gets no page and changes
//! nothing; and CloudFront reaches the load balancer by the balancer's own name, not the public
//! one, so the public host cannot be required there.

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

/// The middleware: `local` is whether visitors are signed in as the local operator.
pub async fn only_loopback_when_local(State(local): State<bool>, request: Request, next: Next) -> Response {
    if !local {
        return next.run(request).await;
    }
    let host = request.headers().get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or_default();
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
        return (StatusCode::FORBIDDEN, "This request came from another site, so it was refused.").into_response();
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
