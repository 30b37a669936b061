//! The core's error type, which separates what the *user* must fix (a bad prompt, a wrong
//! option, a broken image) from what the *operator* must fix (a store that cannot be reached,
//! a model not enabled). Front ends show the user's messages as they are, and for the
//! operator's they show a generic apology while the details go to the log once.

use std::fmt;

use crate::safety::Checker;

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
    Blocked(Refused),
    /// A service is busy or briefly unavailable; trying again later should work.
    #[error("{0}")]
    Busy(String),
    /// The person may not do this at all (banned, or lacking a permission such as Manage
    /// Server): not a mistake to fix in the request.
    #[error("{0}")]
    Forbidden(String),
    /// The request is well formed, but what it acts on is not in a state that allows it (a
    /// job with no refusal to appeal, a session that already has the name asked for).
    #[error("{0}")]
    Conflict(String),
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

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }

    pub fn operator(context: impl Into<String>, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Operator { context: context.into(), source: source.into() }
    }

    /// Whether this refusal may be appealed (the safety gate said so when it refused); front
    /// ends offer an Appeal button or form only then.
    pub fn offers_appeal(&self) -> bool {
        matches!(self, Self::Blocked(refused) if refused.appealable)
    }

    /// Whether the user can fix this themselves (so the message is meant for them).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Self::Operator { .. })
    }

    /// What to tell the user: the message itself for their mistakes, a generic line otherwise.
    /// Whether this is the image store not answering (an outage the operator should know of,
    /// which people should be told plainly: it passes, and nothing of theirs is lost).
    pub fn is_store_unavailable(&self) -> bool {
        matches!(self, Self::Operator { source, .. }
            if matches!(source.downcast_ref::<crate::store::StoreError>(), Some(crate::store::StoreError::Unavailable { .. })))
    }

    pub fn user_message(&self) -> String {
        match self {
            _ if self.is_store_unavailable() => "the image store is not answering right now, so this cannot be done \
                 yet. Images being made still reach you and are kept once it is back. Please try again in a few \
                 minutes"
                .into(),
            Self::Operator { .. } => {
                "something went wrong on our side; the operator has the details in the log. Please try again later"
                    .into()
            }
            other => other.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the message of a refusal that may be appealed ends.
const APPEAL_OFFER: &str = ". If you think that is a mistake, you can appeal once";

/// Content that was refused: who refused it, in which category and why, and whether its owner
/// may ask for one more look. Front ends decide what to offer from these fields, never from
/// the wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub by: Checker,
    /// What kind of content it was taken for; `None` where the reason says it all (a model's
    /// own filter, an appeal that cannot be made).
    pub category: Option<String>,
    pub reason: String,
    pub appealable: bool,
}

impl Refused {
    /// A refusal by the image model's own content filter: the model ran, and there is no appeal.
    pub fn by_model_filter(reason: impl Into<String>) -> Self {
        Self { by: Checker::ModelFilter, category: None, reason: reason.into(), appealable: false }
    }

    /// An appeal that cannot be made (asked twice, or no reviewer): the refusal stands.
    pub fn appeal_not_possible(reason: impl Into<String>) -> Self {
        Self { by: Checker::Appeal, category: None, reason: reason.into(), appealable: false }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { by, category, reason, appealable } = self;
        match (by, category) {
            (_, None) => formatter.write_str(reason),
            (Checker::Appeal, Some(category)) => write!(formatter, "{by} upheld the refusal ({category}): {reason}"),
            (_, Some(category)) => {
                write!(formatter, "{by} refused this prompt ({category}): {reason}")?;
                if *appealable { formatter.write_str(APPEAL_OFFER) } else { Ok(()) }
            }
        }
    }
}
