//! The user directory of the sign-in provider, in our own terms: where a linked Discord
//! account is recorded on the web user. Cognito keeps it as the custom attribute
//! `custom:discord_id` (through the admin API); installations without a user pool keep the
//! link in the store only.

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::AttributeType;

use crate::error::{Error, Result};

/// The Cognito attribute that holds the linked Discord user id. The user pool must declare
/// it (a custom string attribute named `discord_id`, writable by the admin API).
pub const DISCORD_ID_ATTRIBUTE: &str = "custom:discord_id";

/// Where the sign-in provider keeps facts about its users.
#[async_trait]
pub trait AccountDirectory: Send + Sync + 'static {
    /// Records the Discord user linked to the web user `username` (the directory's user name,
    /// [`crate::oidc::SignedInUser::username`]), or clears it with `None`. Clearing what is
    /// not there is not an error.
    async fn record_discord_id(&self, username: &str, discord_user_id: Option<u64>) -> Result<()>;

    /// Whether the web user `username` may still use Atelier: `false` once the account is
    /// disabled or deleted in the directory, so a session started before that ends (see
    /// [`crate::sessions`]). An error means the directory could not say (an outage), never
    /// `false`. A directory that keeps no accounts always says `true`.
    async fn may_sign_in(&self, username: &str) -> Result<bool> {
        let _ = username;
        Ok(true)
    }

    /// Whether links are recorded anywhere at all (false for [`NoDirectory`]).
    fn records_links(&self) -> bool {
        true
    }
}

/// No directory: the link lives in the store only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDirectory;

#[async_trait]
impl AccountDirectory for NoDirectory {
    async fn record_discord_id(&self, _username: &str, _discord_user_id: Option<u64>) -> Result<()> {
        Ok(())
    }

    fn records_links(&self) -> bool {
        false
    }
}

/// A Cognito user pool, through `AdminUpdateUserAttributes` and `AdminDeleteUserAttributes`.
#[derive(Debug, Clone)]
pub struct CognitoDirectory {
    client: aws_sdk_cognitoidentityprovider::Client,
    user_pool_id: String,
}

impl CognitoDirectory {
    pub fn new(sdk_config: &aws_config::SdkConfig, user_pool_id: impl Into<String>) -> Self {
        Self::from_client(aws_sdk_cognitoidentityprovider::Client::new(sdk_config), user_pool_id)
    }

    pub fn from_client(client: aws_sdk_cognitoidentityprovider::Client, user_pool_id: impl Into<String>) -> Self {
        Self { client, user_pool_id: user_pool_id.into() }
    }

    pub fn user_pool_id(&self) -> &str {
        &self.user_pool_id
    }
}

#[async_trait]
impl AccountDirectory for CognitoDirectory {
    async fn record_discord_id(&self, username: &str, discord_user_id: Option<u64>) -> Result<()> {
        match discord_user_id {
            Some(discord_user_id) => {
                let attribute = AttributeType::builder()
                    .name(DISCORD_ID_ATTRIBUTE)
                    .value(discord_user_id.to_string())
                    .build()
                    .map_err(|error| Error::operator("building a Cognito attribute", error))?;
                self.client
                    .admin_update_user_attributes()
                    .user_pool_id(&self.user_pool_id)
                    .username(username)
                    .user_attributes(attribute)
                    .send()
                    .await
                    .map_err(|error| {
                        cognito_error(error, "recording the linked Discord account", &self.user_pool_id)
                    })?;
            }
            None => {
                let cleared = self
                    .client
                    .admin_delete_user_attributes()
                    .user_pool_id(&self.user_pool_id)
                    .username(username)
                    .user_attribute_names(DISCORD_ID_ATTRIBUTE)
                    .send()
                    .await;
                match cleared {
                    Ok(_) => {}
                    // A user deleted from the pool has nothing left to clear.
                    Err(SdkError::ServiceError(service)) if service.err().code() == Some("UserNotFoundException") => {
                        tracing::info!(
                            "the Cognito user {username} is gone from {}; nothing to clear",
                            self.user_pool_id
                        );
                    }
                    Err(error) => {
                        return Err(cognito_error(error, "clearing the linked Discord account", &self.user_pool_id));
                    }
                }
            }
        }
        Ok(())
    }

    async fn may_sign_in(&self, username: &str) -> Result<bool> {
        let user = self.client.admin_get_user().user_pool_id(&self.user_pool_id).username(username).send().await;
        match user {
            Ok(user) => Ok(user.enabled()),
            Err(SdkError::ServiceError(service)) if service.err().code() == Some("UserNotFoundException") => Ok(false),
            Err(error) => Err(cognito_error(error, "checking that a web account still exists", &self.user_pool_id)),
        }
    }
}

/// Maps a Cognito error: throttling and an unreachable service are worth a retry later;
/// everything else (a missing pool, attribute or permission) is the operator's to fix.
fn cognito_error<E, R>(error: SdkError<E, R>, doing: &str, user_pool_id: &str) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let busy = match &error {
        SdkError::ServiceError(service) => {
            matches!(service.err().code(), Some("TooManyRequestsException" | "LimitExceededException"))
        }
        SdkError::TimeoutError(_) => true,
        SdkError::DispatchFailure(failure) => failure.is_timeout() || failure.is_io(),
        _ => false,
    };
    if busy {
        tracing::warn!("Cognito ({user_pool_id}) is busy or unreachable while {doing}: {error:?}");
        return Error::Busy("the account service is busy right now; try again in a minute".into());
    }
    let detail = match &error {
        SdkError::ServiceError(service) => format!(
            "{}: {} (the pool must declare the custom attribute {DISCORD_ID_ATTRIBUTE}, and the app may \
             need cognito-idp:AdminUpdateUserAttributes, AdminDeleteUserAttributes and AdminGetUser)",
            service.err().code().unwrap_or("Unknown"),
            service.err().message().unwrap_or("")
        ),
        other => format!("{other:?}"),
    };
    Error::operator(format!("{doing} in Cognito user pool {user_pool_id}"), detail)
}
