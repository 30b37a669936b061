//! Access tokens for the JSON API: a program calls `/api/` with `Authorization: Bearer
//! <access token>` from the same sign-in provider the web app uses (Cognito in production),
//! and [`AccessTokenVerifier`] decides whose gallery it may act on.
//!
//! A token is accepted only when all of these hold:
//! - it is a JWS signed with an asymmetric algorithm by a key in the provider's JWKS, found
//!   by discovery (`{issuer}/.well-known/openid-configuration`, then its `jwks_uri`); the
//!   `kid` picks the key, and a key with a declared `alg` or `use` must match;
//! - `iss` is the issuer exactly as discovery spells it, `exp` has not passed and `nbf` (when
//!   there is one) has, allowing a minute of clock skew;
//! - it says it is an *access* token: Cognito's `token_use` claim is `access` (an ID token
//!   says `id`), or, for providers that follow RFC 9068 instead, the header's `typ` is
//!   `at+jwt`;
//! - its `client_id` claim is our app client's id (Cognito access tokens carry no `aud`: the
//!   client they were issued to is `client_id`, which RFC 9068 requires too).
//!
//! The subject (`sub`) then names the gallery, `Owner::web_account(sub)`, the same owner a
//! browser sign-in gives. The keys are kept after the first fetch and fetched again when a
//! token names a key id they lack (the provider rotated its keys), at most once a minute so
//! tokens with made-up key ids cannot make us hammer the provider.
//!
//! The signature and claims are checked by the `jsonwebtoken` crate (RustCrypto backend);
//! this module only chooses the key and states the rules.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;
use url::Url;

use super::{OidcSignIn, PROVIDER_TIMEOUT, error_chain};
use crate::config::OidcConfig;
use crate::error::{Error, Invalid, Result};
use crate::gallery::Owner;

/// The least time between two fetches of the keys forced by an unknown key id.
pub const DEFAULT_KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// How far clocks may disagree about `exp` and `nbf`.
const CLOCK_SKEW_SECONDS: u64 = 60;

/// The signature algorithms we accept: the asymmetric ones. An HMAC-signed token would need
/// a secret shared with the provider, which we never have, so `HS*` (and anything a forger
/// might try to pass off with a public key as the "secret") is refused outright.
const ACCEPTED_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Who a verified access token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAccessToken {
    /// The provider's stable id for the person (`sub`).
    pub subject: String,
    /// Cognito's `username` claim, when the token carries one.
    pub username: Option<String>,
    /// The scopes granted (`scope`, space-separated in the token).
    pub scopes: Vec<String>,
    /// Their gallery: `Owner::web_account(subject)`.
    pub owner: Owner,
}

/// The claims we read; the `jsonwebtoken` crate reads `exp`, `nbf` and `iss` itself.
#[derive(Debug, Deserialize)]
struct AccessClaims {
    sub: Option<String>,
    client_id: Option<String>,
    token_use: Option<String>,
    username: Option<String>,
    scope: Option<String>,
}

/// The part of the discovery document we need.
#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: Url,
}

/// What discovery and the JWKS gave, kept between requests.
struct ProviderKeys {
    /// The issuer exactly as the provider spells it: tokens must carry this `iss`.
    issuer: String,
    jwks_uri: Url,
    keys: Vec<Jwk>,
    fetched_at: Instant,
}

impl ProviderKeys {
    fn find(&self, key_id: &str) -> Option<&Jwk> {
        self.keys.iter().find(|key| key.common.key_id.as_deref() == Some(key_id))
    }
}

/// Verifies access tokens from one provider for one app client; cheap to share (`Arc`),
/// discovers the provider on first use and keeps its keys.
pub struct AccessTokenVerifier {
    issuer: Url,
    client_id: String,
    http: openidconnect::reqwest::Client,
    keys: tokio::sync::Mutex<Option<Arc<ProviderKeys>>>,
    key_refresh_interval: Duration,
}

impl std::fmt::Debug for AccessTokenVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AccessTokenVerifier")
            .field("issuer", &self.issuer.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl AccessTokenVerifier {
    /// A verifier for the configured provider and app client. Nothing is fetched yet.
    pub fn new(config: &OidcConfig) -> Result<Self> {
        // No redirects: the discovery document and the keys must come from where the issuer
        // says, not from wherever a redirect points.
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .map_err(|error| Error::operator("building the HTTP client for access tokens", error))?;
        Ok(Self::with_parts(config.issuer.clone(), config.client_id.clone(), http))
    }

    /// A verifier for the provider and app client a web sign-in already uses, sharing its
    /// HTTP client.
    pub fn for_sign_in(sign_in: &OidcSignIn) -> Self {
        Self::with_parts(sign_in.issuer.clone(), sign_in.client_id.clone(), sign_in.http.clone())
    }

    fn with_parts(issuer: Url, client_id: String, http: openidconnect::reqwest::Client) -> Self {
        Self {
            issuer,
            client_id,
            http,
            keys: tokio::sync::Mutex::new(None),
            key_refresh_interval: DEFAULT_KEY_REFRESH_INTERVAL,
        }
    }

    /// Changes the least time between forced key fetches (tests rotate keys within seconds).
    pub fn with_key_refresh_interval(mut self, interval: Duration) -> Self {
        self.key_refresh_interval = interval;
        self
    }

    /// Fetches the provider's metadata and keys now (they are otherwise fetched on first use).
    pub async fn discover(&self) -> Result<()> {
        self.keys(false).await.map(|_| ())
    }

    /// Verifies an access token (without the `Bearer ` prefix).
    ///
    /// A token we do not accept is [`Error::Invalid`] whose message says why, for the caller
    /// (front ends answer 401); a provider that cannot be reached is [`Error::Busy`]; a
    /// provider whose discovery or keys make no sense is [`Error::Operator`].
    pub async fn verify(&self, token: &str) -> Result<VerifiedAccessToken> {
        let token = token.trim();
        let (header, key_id) = read_header(token)?;
        let (keys, decoding_key) = self.signing_key(&key_id, header.alg).await?;

        let mut validation = Validation::new(header.alg);
        validation.leeway = CLOCK_SKEW_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // Cognito access tokens have no `aud`; the client is `client_id`, checked below.
        validation.validate_aud = false;
        validation.set_issuer(&[keys.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data = jsonwebtoken::decode::<AccessClaims>(token, &decoding_key, &validation)
            .map_err(|error| refused(refusal_for(error.kind()), &error))?;
        let claims = data.claims;

        check_is_access_token(&claims, &header)?;
        self.check_client(&claims)?;
        let subject = claims
            .sub
            .filter(|subject| !subject.is_empty())
            .ok_or_else(|| refused("the access token names no user (sub)", &"empty sub"))?;
        let owner = Owner::web_account(&subject)
            .map_err(|_| refused("the access token's user id cannot name a gallery", &format!("sub {subject}")))?;
        Ok(VerifiedAccessToken {
            username: claims.username,
            scopes: claims.scope.map(|scope| scope.split_whitespace().map(String::from).collect()).unwrap_or_default(),
            owner,
            subject,
        })
    }

    /// The provider's keys and, from them, the key that signed a token: the keys are fetched
    /// again when none has the token's key id, and the key must suit the token's algorithm.
    async fn signing_key(&self, key_id: &str, algorithm: Algorithm) -> Result<(Arc<ProviderKeys>, DecodingKey)> {
        let mut keys = self.keys(false).await?;
        if keys.find(key_id).is_none() {
            // The provider may have rotated its keys since we fetched them: fetch again, if
            // the last fetch is old enough.
            keys = self.keys(true).await?;
        }
        let Some(key) = keys.find(key_id) else {
            return Err(refused(
                "the access token is signed with a key the sign-in provider does not list",
                &format!("kid {key_id}"),
            ));
        };
        if !key_fits(key, algorithm) {
            return Err(refused(
                "the access token's signature does not match the sign-in provider's key",
                &format!("key {key_id} is not for {algorithm:?}"),
            ));
        }
        let decoding_key = DecodingKey::from_jwk(key).map_err(|error| {
            Error::operator(format!("reading the sign-in provider's key {key_id} from its JWKS"), error)
        })?;
        Ok((keys, decoding_key))
    }

    /// Refuses a token issued to another app client, or to none.
    fn check_client(&self, claims: &AccessClaims) -> Result<()> {
        match claims.client_id.as_deref() {
            Some(client_id) if client_id == self.client_id => {}
            Some(other) => {
                return Err(refused(
                    "the access token was issued to another app client",
                    &format!("client_id {other}, expected {}", self.client_id),
                ));
            }
            None => return Err(refused("the access token names no app client (client_id)", &"no client_id")),
        }
        Ok(())
    }

    /// The kept keys, fetched on first use, or again when `refresh` and the last fetch is
    /// old enough.
    async fn keys(&self, refresh: bool) -> Result<Arc<ProviderKeys>> {
        let mut slot = self.keys.lock().await;
        let known = slot.as_ref().map(|keys| (keys.issuer.clone(), keys.jwks_uri.clone()));
        if let Some(keys) = slot.as_ref()
            && (!refresh || keys.fetched_at.elapsed() < self.key_refresh_interval)
        {
            return Ok(keys.clone());
        }
        let (issuer, jwks_uri) = match known {
            Some(known) => known,
            None => {
                let discovery = self.discover_provider().await?;
                (discovery.issuer, discovery.jwks_uri)
            }
        };
        let keys = self.fetch_keys(&jwks_uri).await?;
        let fetched = Arc::new(ProviderKeys { issuer, jwks_uri, keys, fetched_at: Instant::now() });
        *slot = Some(fetched.clone());
        Ok(fetched)
    }

    /// Discovery must find the issuer exactly as the provider spells it. A URL parser adds a
    /// `/` to a bare host, so for such an issuer both spellings are tried (as for sign-in).
    async fn discover_provider(&self) -> Result<Discovery> {
        let exact = self.issuer.as_str().to_string();
        let mut candidates = vec![exact.clone()];
        if self.issuer.path() == "/" && self.issuer.query().is_none() {
            candidates.insert(0, exact.trim_end_matches('/').to_string());
        }
        let mut failures = Vec::new();
        for candidate in candidates {
            let address = format!("{}/.well-known/openid-configuration", candidate.trim_end_matches('/'));
            let discovery: Discovery = match self.get_json(&address, "discovery document").await? {
                Ok(discovery) => discovery,
                Err(failure) => {
                    failures.push(failure);
                    continue;
                }
            };
            if discovery.issuer != candidate {
                failures.push(format!("{address} names the issuer `{}`, not `{candidate}`", discovery.issuer));
                continue;
            }
            return Ok(discovery);
        }
        Err(Error::operator(
            format!("discovering the sign-in provider {} for access tokens (check ATELIER_OIDC_ISSUER)", self.issuer),
            failures.join("; "),
        ))
    }

    /// The provider's signing keys; keys of kinds we cannot use are skipped, not fatal.
    async fn fetch_keys(&self, jwks_uri: &Url) -> Result<Vec<Jwk>> {
        #[derive(Deserialize)]
        struct KeySet {
            keys: Vec<serde_json::Value>,
        }
        let set: KeySet = self.get_json(jwks_uri.as_str(), "JWKS").await?.map_err(|failure| {
            Error::operator("fetching the sign-in provider's keys (JWKS) for access tokens", failure)
        })?;
        let keys: Vec<Jwk> = set
            .keys
            .into_iter()
            .filter_map(|key| match serde_json::from_value::<Jwk>(key) {
                Ok(key) if !matches!(key.algorithm, AlgorithmParameters::OctetKey(_)) => Some(key),
                Ok(_) => None,
                Err(error) => {
                    tracing::debug!("skipping a key in the sign-in provider's JWKS that we cannot use: {error}");
                    None
                }
            })
            .collect();
        tracing::info!(keys = keys.len(), "fetched the sign-in provider's signing keys from {jwks_uri}");
        Ok(keys)
    }

    /// GETs a JSON document. The outer error is a provider that cannot be reached (busy);
    /// the inner one a document that is missing or not what we expect, for the operator.
    async fn get_json<T: serde::de::DeserializeOwned>(&self, address: &str, what: &str) -> Result<Result<T, String>> {
        let response = match self.http.get(address).send().await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!("the sign-in provider's {what} at {address} cannot be reached: {}", error_chain(&error));
                return Err(Error::Busy(
                    "the sign-in service cannot be reached right now; try again in a minute".into(),
                ));
            }
        };
        let status = response.status();
        if !status.is_success() {
            return Ok(Err(format!("{address} answered {status}")));
        }
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!("reading the sign-in provider's {what} at {address} failed: {}", error_chain(&error));
                return Err(Error::Busy(
                    "the sign-in service cannot be reached right now; try again in a minute".into(),
                ));
            }
        };
        Ok(serde_json::from_slice(&body).map_err(|error| format!("{address} is not a {what}: {error}")))
    }
}

/// A token's header and the id of the key that signed it; refused when the token is not a
/// signed JWT, is signed with an algorithm we do not accept, or names no key.
fn read_header(token: &str) -> Result<(jsonwebtoken::Header, String)> {
    let header = jsonwebtoken::decode_header(token).map_err(|error| {
        refused("the access token is not a signed JWT: send the access token you got from signing in", &error)
    })?;
    if !ACCEPTED_ALGORITHMS.contains(&header.alg) {
        return Err(refused(
            "the access token is signed with an algorithm this service does not accept",
            &format!("alg {:?}", header.alg),
        ));
    }
    let key_id = header.kid.clone().ok_or_else(|| {
        refused("the access token names no signing key (kid): send the access token from signing in", &"no kid")
    })?;
    Ok((header, key_id))
}

/// Refuses a token that does not say it is an access token: Cognito's `token_use` claim, or
/// for providers that follow RFC 9068, the header's `typ`.
fn check_is_access_token(claims: &AccessClaims, header: &jsonwebtoken::Header) -> Result<()> {
    let is_access_token = match claims.token_use.as_deref() {
        Some("access") => true,
        Some(other) => {
            return Err(refused(
                &format!("this is an `{other}` token, not an access token: send the access token"),
                &format!("token_use {other}"),
            ));
        }
        None => header.typ.as_deref().is_some_and(|typ| {
            let typ = typ.to_ascii_lowercase();
            typ == "at+jwt" || typ == "application/at+jwt"
        }),
    };
    if !is_access_token {
        return Err(refused(
            "the token does not say it is an access token (no token_use claim, no at+jwt type): send the access \
             token",
            &"neither token_use nor typ at+jwt",
        ));
    }
    Ok(())
}

/// Whether a key may check a signature made with `algorithm`: the key's type must be of the
/// algorithm's family, and a key that declares its algorithm or its use must declare these.
fn key_fits(key: &Jwk, algorithm: Algorithm) -> bool {
    let family_fits = match &key.algorithm {
        AlgorithmParameters::RSA(_) => algorithm.family() == AlgorithmFamily::Rsa,
        AlgorithmParameters::EllipticCurve(_) => algorithm.family() == AlgorithmFamily::Ec,
        AlgorithmParameters::OctetKeyPair(_) => algorithm.family() == AlgorithmFamily::Ed,
        // Shared secrets, and key types this crate version does not know.
        _ => false,
    };
    let declared_algorithm_fits =
        key.common.key_algorithm.is_none_or(|declared| declared == KeyAlgorithm::from(algorithm));
    let use_fits = key.common.public_key_use.as_ref().is_none_or(|usage| *usage == PublicKeyUse::Signature);
    family_fits && declared_algorithm_fits && use_fits
}

/// What to tell the caller when the `jsonwebtoken` crate refuses a token.
fn refusal_for(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::ExpiredSignature => "the access token has expired: sign in again for a new one",
        ErrorKind::ImmatureSignature => "the access token is not valid yet",
        ErrorKind::InvalidIssuer => "the access token was issued by another sign-in provider",
        ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
            "the access token's signature does not match: it was altered or is not from the sign-in provider"
        }
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => {
            "the access token lacks a claim it needs (exp, iss or sub)"
        }
        _ => "the access token cannot be read: send the access token you got from signing in",
    }
}

/// A token we do not accept: the caller is told `message`; the log gets the detail too.
/// The detail is written as a field with its control characters escaped (`{:?}`): it may
/// carry values the caller chose (a key id), and a line break there must not forge a log line.
fn refused(message: &str, detail: &dyn std::fmt::Display) -> Error {
    let detail = format!("{:?}", detail.to_string());
    tracing::info!(detail = %detail, "an API access token was refused: {message}");
    Error::Invalid(Invalid::new(message))
}
