//! The core's error type, which separates what the *user* must fix (a bad prompt, a wrong
//! option, a broken image) from what the *operator* must fix (a store that cannot be reached,
//! a model not enabled). Front ends show the user's messages as they are, and for the
//! operator's they show a generic apology while the details go to the log once.

use std::fmt;

/// A request the user must change; the message says what to change, in a sentence fragment
/// without a trailing period so front ends can frame it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(String);

impl Invalid {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

/// Everything a core operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is wrong; nothing was charged and nothing was lost.
    #[error("{0}")]
    Invalid(#[from] Invalid),
    /// The thing asked for does not exist, or belongs to someone else (we do not say which).
    #[error("{0}")]
    NotFound(String),
    /// The safety checks or the model's own filter refused the content.
    #[error("{0}")]
    Blocked(String),
    /// A service is busy or briefly unavailable; trying again later should work.
    #[error("{0}")]
    Busy(String),
    /// The person called the job back before it started; nothing was charged.
    #[error("{0}")]
    Cancelled(String),
    /// Something the operator must fix; `context` says what we were doing.
    #[error("{context}: {source}")]
    Operator {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn operator(context: impl Into<String>, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Operator { context: context.into(), source: source.into() }
    }

    /// Whether this refusal may be appealed (the safety gate said so when it refused); front
    /// ends offer an Appeal button or form only then.
    pub fn offers_appeal(&self) -> bool {
        matches!(self, Self::Blocked(message) if message.ends_with(APPEAL_OFFER))
    }

    /// Whether the user can fix this themselves (so the message is meant for them).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Self::Operator { .. })
    }

    /// What to tell the user: the message itself for their mistakes, a generic line otherwise.
    pub fn user_message(&self) -> String {
        match self {
            Self::Operator { .. } => {
                "something went wrong on our side; the operator has the details in the log. Please try again later"
                    .into()
            }
            other => other.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a refusal that may be appealed ends; [`Error::offers_appeal`] looks for it.
pub const APPEAL_OFFER: &str = ". If you think that is a mistake, you can appeal once";
