//! Web sign-in through OpenID Connect: the authorization-code flow with PKCE (S256), `state`
//! and `nonce`, against whatever provider the issuer URL names (Cognito's managed login in
//! production, a test provider in tests). Everything about the provider comes from discovery
//! (`{issuer}/.well-known/openid-configuration`): the endpoints, the signing keys (JWKS) and
//! the logout endpoint when there is one.
//!
//! The web app keeps a [`PendingSignIn`] between [`OidcSignIn::begin_sign_in`] (which gives
//! the URL to send the browser to) and [`OidcSignIn::finish_sign_in`] (called with the
//! `state` and `code` of the callback at `{public_url}auth/callback`), as a [`HeldSignIn`] in
//! a cookie encrypted and authenticated with the app's secret key: anonymous visitors opening
//! the sign-in page then cost no write to the store, and any replica can finish the sign-in. Finishing
//! checks the state first, then exchanges the code (with the PKCE verifier) and verifies the
//! ID token with the `openidconnect` crate's verifier: signature against the provider's
//! keys, issuer, audience, expiry and nonce.
//!
//! Mistakes the person can fix by signing in again (a tampered or stale state, an expired
//! token, a nonce from another attempt, a used code) are user errors that say so; the
//! technical reason goes to the log. A misconfigured client or provider is the operator's.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthenticationFlow, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields,
    IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl,
    ProviderMetadataWithLogout, RedirectUrl, RequestTokenError, Scope, SignatureVerificationError,
    StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;

use crate::config::OidcConfig;
use crate::error::{Error, Invalid, Result};
use crate::gallery::Owner;

pub mod access;

/// The path of the sign-in callback, under the public URL.
pub const CALLBACK_PATH: &str = "auth/callback";

/// How long one HTTP call to the provider may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(15);

/// The least time between two fetches of the provider's keys forced by an unknown key id, so
/// tokens with made-up key ids cannot make us hammer the provider.
const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// The scopes asked for beyond `openid`.
const SCOPES: &[&str] = &["email", "profile"];

/// Claims beyond the standard ones that we read: Cognito's user name, which its admin API
/// needs (a federated user's `sub` is not their user name).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraClaims {
    #[serde(rename = "cognito:username", default, skip_serializing_if = "Option::is_none")]
    pub cognito_username: Option<String>,
    /// The identity providers a Cognito user signed in through (a federated user's, such as
    /// Discord's): Cognito's `identities` claim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<FederatedIdentity>,
}

/// One entry of Cognito's `identities` claim: the provider and the person's id there.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedIdentity {
    #[serde(default)]
    pub provider_name: String,
    #[serde(default)]
    pub user_id: String,
}

/// The name the stack gives Discord as the user pool's identity provider
/// (`infra/lib/atelier-stack.ts`, `DISCORD_IDENTITY_PROVIDER`): a sign-in through it carries
/// the Discord user id in `identities`.
pub const DISCORD_IDENTITY_PROVIDER: &str = "Discord";

/// The Discord account someone signed in with ("Sign in with Discord").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscordIdentity {
    pub user_id: u64,
    /// Their Discord user name, when the provider passed it on (`preferred_username`).
    pub name: Option<String>,
}

impl AdditionalClaims for ExtraClaims {}

type AtelierIdTokenFields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

type AtelierTokenResponse = StandardTokenResponse<AtelierIdTokenFields, CoreTokenType>;

/// The `openidconnect` client as discovery builds it: the authorization endpoint is always
/// known, the token and user-info endpoints may be.
type ProviderClient = openidconnect::Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    AtelierTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A sign-in that has started: what the web app keeps until the provider sends the person
/// back. Its state, nonce and PKCE verifier are secrets: the browser may carry them only
/// encrypted (see [`HeldSignIn`]).
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    csrf_state: String,
    nonce: String,
    pkce_verifier: String,
    return_to: String,
}

impl PendingSignIn {
    /// The local path to send the person to once signed in.
    pub fn return_to(&self) -> &str {
        &self.return_to
    }
}

impl std::fmt::Debug for PendingSignIn {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The state, nonce and verifier are secrets of this one sign-in.
        formatter.debug_struct("PendingSignIn").field("return_to", &self.return_to).finish_non_exhaustive()
    }
}

/// How long a sign-in may take at the provider.
pub const SIGN_IN_LIFETIME: time::Duration = time::Duration::minutes(15);

/// A sign-in in progress as the browser carries it, sealed by the web app in an encrypted
/// cookie, with the time after which it no longer counts. A replayed cookie is no use: the
/// code it would be finished with is single-use at the provider, and the cookie is removed
/// by the first callback.
#[derive(Serialize, Deserialize)]
pub struct HeldSignIn {
    pending: PendingSignIn,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

impl HeldSignIn {
    /// Holds a sign-in that has just begun.
    pub fn new(pending: PendingSignIn) -> Self {
        Self { pending, expires_at: OffsetDateTime::now_utc() + SIGN_IN_LIFETIME }
    }

    /// The sign-in, unless it took longer than [`SIGN_IN_LIFETIME`].
    pub fn unexpired(self) -> Option<PendingSignIn> {
        (self.expires_at > OffsetDateTime::now_utc()).then_some(self.pending)
    }
}

/// Someone who has signed in on the web.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedInUser {
    /// The provider's stable id for the person (`sub`).
    pub subject: String,
    /// The user name in the provider's directory (Cognito's `cognito:username`), which the
    /// directory's admin API takes; the subject when the provider names none.
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// Their gallery: `Owner::web_account(subject)`.
    pub owner: Owner,
    /// The Discord account they signed in with, when they used "Sign in with Discord".
    #[serde(default)]
    pub discord: Option<DiscordIdentity>,
}

/// What discovery found, with the client built from it.
struct Provider {
    client: ProviderClient,
    end_session_endpoint: Option<Url>,
    authorization_endpoint: Url,
    fetched_at: Instant,
}

/// OpenID Connect sign-in against one provider; cheap to share (`Arc`), discovers the
/// provider on first use and keeps what it found.
pub struct OidcSignIn {
    issuer: Url,
    client_id: String,
    client_secret: Option<String>,
    redirect_url: Url,
    public_url: Url,
    http: openidconnect::reqwest::Client,
    provider: tokio::sync::Mutex<Option<Arc<Provider>>>,
    clock: Arc<dyn Fn() -> OffsetDateTime + Send + Sync>,
}

impl std::fmt::Debug for OidcSignIn {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("OidcSignIn")
            .field("issuer", &self.issuer.as_str())
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url.as_str())
            .finish_non_exhaustive()
    }
}

impl OidcSignIn {
    /// Sign-in with the configured provider; the callback is `{public_url}auth/callback`.
    /// Nothing is fetched yet: discovery happens on first use (see [`Self::discover`]).
    pub fn new(config: &OidcConfig, public_url: &Url) -> Result<Self> {
        let public_url = with_trailing_slash(public_url);
        let redirect_url = public_url
            .join(CALLBACK_PATH)
            .map_err(|error| Error::operator(format!("building the sign-in callback URL from {public_url}"), error))?;
        // openidconnect 4 requires a client that does not follow redirects (a redirect could
        // otherwise turn a token request into a request to somewhere else).
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .map_err(|error| Error::operator("building the HTTP client for sign-in", error))?;
        Ok(Self {
            issuer: config.issuer.clone(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.as_ref().map(|secret| secret.expose_secret().to_string()),
            redirect_url,
            public_url,
            http,
            provider: tokio::sync::Mutex::new(None),
            clock: Arc::new(OffsetDateTime::now_utc),
        })
    }

    /// Replaces the clock ID tokens' expiry is checked against (tests move it forward).
    pub fn with_clock(mut self, clock: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Where the provider sends people back to: `{public_url}auth/callback`.
    pub fn redirect_url(&self) -> &Url {
        &self.redirect_url
    }

    /// Fetches the provider's metadata and keys now (they are otherwise fetched on first
    /// use), so a misconfigured issuer shows at start rather than at the first sign-in.
    pub async fn discover(&self) -> Result<()> {
        self.provider(false).await.map(|_| ())
    }

    /// Starts a sign-in: the URL to send the browser to, and what to keep until it returns.
    /// `return_to` is where to go afterwards; anything but a local path becomes `/`.
    pub async fn begin_sign_in(&self, return_to: &str) -> Result<(Url, PendingSignIn)> {
        let provider = self.provider(false).await?;
        let (pkce_challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = provider.client.authorize_url(
            AuthenticationFlow::<openidconnect::core::CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in SCOPES {
            request = request.add_scope(Scope::new((*scope).to_string()));
        }
        let (url, csrf_state, nonce) = request.set_pkce_challenge(pkce_challenge).url();
        let pending = PendingSignIn {
            csrf_state: csrf_state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: pkce_verifier.secret().clone(),
            return_to: safe_return_path(return_to),
        };
        Ok((url, pending))
    }

    /// Finishes a sign-in with the `state` and `code` the provider sent back: checks the
    /// state, exchanges the code, and verifies the ID token.
    pub async fn finish_sign_in(
        &self,
        pending: &PendingSignIn,
        state_from_query: &str,
        code: &str,
    ) -> Result<SignedInUser> {
        // The state first: a callback that does not belong to this browser's sign-in must not
        // even reach the provider.
        if !constant_time_eq(pending.csrf_state.as_bytes(), state_from_query.as_bytes()) {
            tracing::warn!("sign-in refused: the state in the callback does not match the one this session started");
            return Err(sign_in_again("this sign-in does not match the one you started"));
        }
        let code = code.trim();
        if code.is_empty() {
            return Err(sign_in_again("the sign-in provider sent no code"));
        }

        let provider = self.provider(false).await?;
        let token_response = provider
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|error| Error::operator("the sign-in provider's discovery names no token endpoint", error))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;

        match self.verify(&provider, &token_response, pending) {
            Err(VerifyError::UnknownKey) => {
                // The provider may have rotated its keys since we fetched them: fetch again, once.
                let provider = self.provider(true).await?;
                self.verify(&provider, &token_response, pending).map_err(VerifyError::into_error)
            }
            other => other.map_err(VerifyError::into_error),
        }
    }

    fn verify(
        &self,
        provider: &Provider,
        token_response: &AtelierTokenResponse,
        pending: &PendingSignIn,
    ) -> Result<SignedInUser, VerifyError> {
        let id_token = token_response.id_token().ok_or_else(|| {
            VerifyError::Other(Error::operator(
                "finishing a sign-in",
                "the provider's token response has no ID token (is the openid scope allowed for this client?)",
            ))
        })?;
        let clock = self.clock.clone();
        let verifier = provider.client.id_token_verifier().set_time_fn(move || SystemTime::from(clock()).into());
        let nonce = Nonce::new(pending.nonce.clone());
        let claims = id_token.claims(&verifier, &nonce).map_err(VerifyError::from_claims)?;

        // The access token must be the one this ID token was issued with, when it says so.
        if let Some(expected) = claims.access_token_hash() {
            let checked = id_token
                .signing_alg()
                .and_then(|algorithm| Ok((algorithm, id_token.signing_key(&verifier)?)))
                .map_err(|error| {
                    VerifyError::Other(Error::operator("checking the access token hash of an ID token", error))
                })
                .and_then(|(algorithm, key)| {
                    AccessTokenHash::from_token(token_response.access_token(), algorithm, key).map_err(|error| {
                        VerifyError::Other(Error::operator("checking the access token hash of an ID token", error))
                    })
                })?;
            if checked != *expected {
                return Err(VerifyError::Other(Error::operator(
                    "finishing a sign-in",
                    "the ID token's at_hash does not match the access token",
                )));
            }
        }

        let subject = claims.subject().as_str().to_string();
        let owner = Owner::web_account(&subject).map_err(|_| {
            VerifyError::Other(Error::operator(
                "finishing a sign-in",
                format!("the provider's subject `{subject}` cannot name a gallery owner"),
            ))
        })?;
        let username = claims.additional_claims().cognito_username.clone().unwrap_or_else(|| subject.clone());
        // A Discord id that does not read as one is not Discord's: it is ignored, never guessed.
        let discord = claims
            .additional_claims()
            .identities
            .iter()
            .find(|identity| identity.provider_name == DISCORD_IDENTITY_PROVIDER)
            .and_then(|identity| identity.user_id.parse::<u64>().ok())
            .map(|user_id| DiscordIdentity {
                user_id,
                name: claims.preferred_username().map(|name| name.as_str().to_string()),
            });
        Ok(SignedInUser {
            username,
            discord,
            email: claims.email().map(|email| email.as_str().to_string()),
            name: claims.name().and_then(|name| name.get(None)).map(|name| name.as_str().to_string()),
            owner,
            subject,
        })
    }

    /// Where to send the browser to sign out of the provider too, coming back to the public
    /// URL: the provider's `end_session_endpoint` when discovery names one (OpenID Connect
    /// RP-initiated logout), Cognito's managed-login `/logout` for a Cognito issuer, otherwise
    /// `None` (signing out of Atelier alone is all there is).
    pub async fn logout_url(&self) -> Result<Option<Url>> {
        let provider = self.provider(false).await?;
        if let Some(endpoint) = &provider.end_session_endpoint {
            let request = LogoutRequest::from(openidconnect::EndSessionUrl::from_url(endpoint.clone()))
                .set_client_id(ClientId::new(self.client_id.clone()))
                .set_post_logout_redirect_uri(PostLogoutRedirectUrl::from_url(self.public_url.clone()));
            return Ok(Some(request.http_get_url()));
        }
        if is_cognito_issuer(&self.issuer) {
            return Ok(Some(cognito_logout_url(&provider.authorization_endpoint, &self.client_id, &self.public_url)));
        }
        Ok(None)
    }

    /// The discovered provider, fetched on first use, or again when `refresh_keys` and the
    /// last fetch is old enough.
    async fn provider(&self, refresh_keys: bool) -> Result<Arc<Provider>> {
        let mut slot = self.provider.lock().await;
        if let Some(provider) = slot.as_ref()
            && (!refresh_keys || provider.fetched_at.elapsed() < KEY_REFRESH_INTERVAL)
        {
            return Ok(provider.clone());
        }
        let provider = Arc::new(self.fetch_provider().await?);
        *slot = Some(provider.clone());
        Ok(provider)
    }

    async fn fetch_provider(&self) -> Result<Provider> {
        let metadata = self.discover_metadata().await?;
        let authorization_endpoint = metadata.authorization_endpoint().url().clone();
        let end_session_endpoint =
            metadata.additional_metadata().end_session_endpoint.as_ref().map(|endpoint| endpoint.url().clone());
        let client = ProviderClient::from_provider_metadata(
            metadata,
            ClientId::new(self.client_id.clone()),
            self.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::from_url(self.redirect_url.clone()));
        Ok(Provider { client, end_session_endpoint, authorization_endpoint, fetched_at: Instant::now() })
    }

    /// Discovery must find the issuer exactly as the provider spells it. A URL parser adds a
    /// `/` to a bare host (`http://host:port` becomes `http://host:port/`), so for such an
    /// issuer both spellings are tried.
    async fn discover_metadata(&self) -> Result<ProviderMetadataWithLogout> {
        let exact = self.issuer.as_str().to_string();
        let mut candidates = vec![exact.clone()];
        if self.issuer.path() == "/" && self.issuer.query().is_none() {
            candidates.insert(0, exact.trim_end_matches('/').to_string());
        }
        let mut failures = Vec::new();
        for candidate in candidates {
            let issuer = IssuerUrl::new(candidate.clone())
                .map_err(|error| Error::operator(format!("the sign-in issuer `{candidate}` is not a URL"), error))?;
            match ProviderMetadataWithLogout::discover_async(issuer, &self.http).await {
                Ok(metadata) => return Ok(metadata),
                Err(openidconnect::DiscoveryError::Request(error)) => {
                    tracing::warn!("the sign-in provider at {candidate} cannot be reached: {error:?}");
                    return Err(Error::Busy(
                        "the sign-in service cannot be reached right now; try again in a minute".into(),
                    ));
                }
                Err(error) => failures.push(format!("{candidate}: {}", error_chain(&error))),
            }
        }
        Err(Error::operator(
            format!("discovering the sign-in provider {} (check ATELIER_OIDC_ISSUER)", self.issuer),
            failures.join("; "),
        ))
    }
}

/// Cognito's managed-login sign-out URL:
/// `{managed login origin}/logout?client_id=…&logout_uri=…`. `managed_login` is any URL on the
/// managed-login domain (the authorization endpoint discovery names will do); `logout_uri` must
/// be one of the app client's allowed sign-out URLs.
pub fn cognito_logout_url(managed_login: &Url, client_id: &str, logout_uri: &Url) -> Url {
    let mut url = managed_login.clone();
    url.set_path("/logout");
    url.set_fragment(None);
    url.query_pairs_mut().clear().append_pair("client_id", client_id).append_pair("logout_uri", logout_uri.as_str());
    url
}

/// Whether an issuer is a Cognito user pool (`https://cognito-idp.REGION.amazonaws.com/POOL`).
pub fn is_cognito_issuer(issuer: &Url) -> bool {
    issuer.host_str().is_some_and(|host| host.starts_with("cognito-idp.") && host.ends_with(".amazonaws.com"))
}

/// A local path to return to after signing in: only absolute paths on this site, so a crafted
/// sign-in link cannot send people elsewhere; anything else becomes `/`.
pub fn safe_return_path(return_to: &str) -> String {
    let local = return_to.starts_with('/')
        && !return_to.starts_with("//")
        && !return_to.starts_with("/\\")
        && return_to.len() <= 2_000
        && !return_to.chars().any(|c| c.is_control() || c == '\\');
    if local { return_to.to_string() } else { "/".to_string() }
}

fn with_trailing_slash(url: &Url) -> Url {
    let mut url = url.clone();
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

fn sign_in_again(what_happened: &str) -> Error {
    Error::Invalid(Invalid::new(format!("{what_happened}: start signing in again")))
}

fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len() && left.iter().zip(right).fold(0u8, |difference, (a, b)| difference | (a ^ b)) == 0
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Maps a failed code exchange to the person who can act.
fn token_error<RE>(error: RequestTokenError<RE, StandardErrorResponse<CoreErrorResponseType>>) -> Error
where
    RE: std::error::Error + 'static,
{
    match &error {
        RequestTokenError::ServerResponse(response)
            if matches!(response.error(), CoreErrorResponseType::InvalidGrant) =>
        {
            tracing::warn!("sign-in refused by the provider's token endpoint: {}", error_chain(&error));
            sign_in_again("this sign-in has expired or was already used")
        }
        RequestTokenError::Request(_) => {
            tracing::warn!("the sign-in provider's token endpoint cannot be reached: {}", error_chain(&error));
            Error::Busy("the sign-in service cannot be reached right now; try again in a minute".into())
        }
        _ => Error::operator("exchanging a sign-in code at the provider's token endpoint", error_chain(&error)),
    }
}

/// Why an ID token was not accepted.
enum VerifyError {
    /// Signed with a key we do not have (yet): worth fetching the keys again.
    UnknownKey,
    Other(Error),
}

impl VerifyError {
    fn from_claims(error: ClaimsVerificationError) -> Self {
        match error {
            ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey) => {
                Self::UnknownKey
            }
            ClaimsVerificationError::Expired(reason) => {
                tracing::warn!("sign-in refused: the ID token has expired ({reason})");
                Self::Other(sign_in_again("your sign-in took too long and has expired"))
            }
            ClaimsVerificationError::InvalidNonce(reason) => {
                tracing::warn!("sign-in refused: the ID token's nonce does not match this session's ({reason})");
                Self::Other(sign_in_again("this sign-in does not match the one you started"))
            }
            other => Self::Other(Error::operator("verifying the ID token from the sign-in provider", other)),
        }
    }

    fn into_error(self) -> Error {
        match self {
            Self::UnknownKey => Error::operator(
                "verifying the ID token from the sign-in provider",
                "it is signed with a key the provider's JWKS does not list",
            ),
            Self::Other(error) => error,
        }
    }
}

#[cfg(test)]
mod tests;
