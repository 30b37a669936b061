//! An OpenID Connect provider for sign-in tests: PyPI `oidc-provider-mock` (pinned in
//! tests/requirements.txt), started on a free loopback port.
//!
//! It serves discovery, a JWKS, an authorization form that asks for a subject, a token
//! endpoint that issues RS256 ID tokens, and RP-initiated logout. Without registration it
//! accepts any client id, secret and redirect URI. It does not check PKCE verifiers.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::redirect::Policy;

use super::python::venv_program;

/// A running provider, stopped when dropped.
pub struct OidcProvider {
    pub port: u16,
    client: reqwest::Client,
    child: Child,
}

/// What the provider sent the browser back with.
#[derive(Debug, Clone)]
pub struct Callback {
    /// The whole callback URL.
    pub url: reqwest::Url,
    pub code: String,
    pub state: String,
}

impl OidcProvider {
    /// A provider whose tokens live an hour.
    pub async fn start() -> Self {
        let port = super::free_port();
        let child = Command::new(venv_program("python"))
            .args(["-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", &port.to_string()])
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("oidc-provider-mock did not start");
        let client = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
        let mut provider = Self { port, client, child };
        for _ in 0..300 {
            if let Ok(response) = provider.client.get(provider.url("/.well-known/openid-configuration")).send().await
                && response.status().is_success()
            {
                return provider;
            }
            if let Ok(Some(status)) = provider.child.try_wait() {
                panic!("oidc-provider-mock exited at start with {status}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("oidc-provider-mock did not answer on port {port}");
    }

    /// The issuer, exactly as the provider names itself.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer())
    }

    /// Sets the claims the provider puts in a subject's tokens.
    pub async fn set_user(&self, subject: &str, claims: serde_json::Value) {
        let response = self.client.put(self.url(&format!("/users/{subject}"))).json(&claims).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{}", response.text().await.unwrap());
    }

    /// Plays the browser at the provider: opens the authorization URL, submits the form as
    /// `subject`, and returns where the provider redirects back to, with its code and state.
    pub async fn authorize(&self, authorize_url: &str, subject: &str) -> Callback {
        let page = self.client.get(authorize_url).send().await.unwrap();
        let status = page.status();
        let body = page.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "the authorization page failed: {body}");
        assert!(body.contains("name=\"sub\""), "the authorization page has no subject field: {body}");

        // The form has no action: it posts back to the authorization URL itself.
        let answer = self.client.post(authorize_url).form(&[("sub", subject)]).send().await.unwrap();
        assert_eq!(
            answer.status(),
            StatusCode::FOUND,
            "the provider did not redirect back: {}",
            answer.text().await.unwrap()
        );
        let location = answer.headers()["location"].to_str().unwrap().to_string();
        let url = reqwest::Url::parse(&location).unwrap();
        let parameter = |name: &str| {
            url.query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
                .unwrap_or_else(|| panic!("the callback {location} has no {name}"))
        };
        Callback { code: parameter("code"), state: parameter("state"), url }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
