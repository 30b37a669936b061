//! Community servers: what a Discord server's admins (Discord's Manage Server permission)
//! decide for everyone on it, kept in the store (`servers/{guild}/settings.json`) so it
//! applies on every replica:
//! - the channels where results may be posted: elsewhere a result goes to its person alone,
//!   with a note naming the allowed channels;
//! - the models people may use there, and the server's default model (after a person's own);
//! - a daily budget for the whole server, in the same estimated dollars as personal budgets,
//!   counted in `servers/{guild}/spend/{day}.json` as images are delivered;
//! - personal daily budgets for roles, larger than the service's: a member may spend up to the
//!   largest of their roles' budgets (asked from that server);
//! - the age policy: by default the safety gate is stricter in channels Discord does not mark
//!   age-restricted ([`Audience::AllAges`]), and refusals are never posted anywhere;
//! - the moderation-log channel for refusals made there.
//!
//! The front end says whether the person may manage the server ([`Membership`]); the core
//! refuses a change from anyone else, whatever Discord showed them. Each replica keeps a
//! server's settings for [`SETTINGS_MEMORY`] so a command costs no extra read.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::gallery::Origin;
use crate::pricing::Usd;
use crate::safety::Audience;

use super::{Actor, Atelier};

/// How long a replica uses a server's settings before reading them again.
pub const SETTINGS_MEMORY: Duration = Duration::from_secs(10);
/// The most channels a server may list for results.
pub const MAX_RESULT_CHANNELS: usize = 25;
/// The most roles a server may give a budget of their own.
pub const MAX_ROLE_BUDGETS: usize = 25;

/// How strict the safety gate is in a server's channels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgePolicy {
    /// Stricter in every channel not marked age-restricted (the default: a server is open to
    /// anyone from 13 unless a channel says otherwise).
    #[default]
    StricterOutsideAgeRestricted,
    /// The community's standard policy in every channel.
    SameEverywhere,
}

/// One Discord server's settings. Empty lists and absent values mean "as everywhere".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSettings {
    /// Channels where results are posted for everyone; empty: any channel.
    #[serde(default)]
    pub result_channels: Vec<u64>,
    /// Model aliases people may use here; empty: every model.
    #[serde(default)]
    pub models: Vec<String>,
    /// The model used when neither the request nor the person's settings name one.
    #[serde(default)]
    pub default_model: Option<String>,
    /// What the whole server may spend a UTC day.
    #[serde(default)]
    pub daily_budget: Option<Usd>,
    /// Where refusals made here are logged, instead of the operator's channel.
    #[serde(default)]
    pub moderation_channel: Option<u64>,
    /// Personal daily budgets by Discord role id, for members holding the role.
    #[serde(default)]
    pub role_budgets: BTreeMap<u64, Usd>,
    /// How strict the safety gate is outside age-restricted channels.
    #[serde(default)]
    pub age_policy: AgePolicy,
}

/// A change to a server's settings, one setting at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerChange {
    ResultChannels(Vec<u64>),
    Models(Vec<String>),
    DefaultModel(Option<String>),
    DailyBudget(Option<Usd>),
    ModerationChannel(Option<u64>),
    /// A role's personal daily budget; `None` takes it away.
    RoleBudget {
        role_id: u64,
        budget: Option<Usd>,
    },
    AgePolicy(AgePolicy),
}

/// What the front end knows of a person on a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub guild_id: u64,
    /// Whether Discord says they have the Manage Server permission here.
    pub manages_server: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ServerSpend {
    spent: Usd,
}

/// Settings read recently, by server.
#[derive(Default, Clone)]
pub(super) struct RecentSettings(Arc<Mutex<HashMap<u64, (Instant, ServerSettings)>>>);

impl Atelier {
    fn server_settings_key(guild_id: u64) -> Result<crate::store::ObjectKey> {
        Self::key(format!("servers/{guild_id}/settings.json"))
    }

    fn server_spend_key(guild_id: u64, day: time::Date) -> Result<crate::store::ObjectKey> {
        Self::key(format!("servers/{guild_id}/spend/{day}.json"))
    }

    /// A server's settings (the defaults for a server that set none).
    pub async fn server_settings(&self, guild_id: u64) -> Result<ServerSettings> {
        {
            let recent = self.recent_server_settings.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((at, settings)) = recent.get(&guild_id)
                && at.elapsed() < SETTINGS_MEMORY
            {
                return Ok(settings.clone());
            }
        }
        let settings =
            self.records("server settings").get::<ServerSettings>(&Self::server_settings_key(guild_id)?).await?;
        let settings = settings.unwrap_or_default();
        let mut recent = self.recent_server_settings.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if recent.len() > 10_000 {
            recent.clear();
        }
        recent.insert(guild_id, (Instant::now(), settings.clone()));
        Ok(settings)
    }

    /// The settings of the server a Discord request came from, if any; a store that cannot
    /// be read gives the defaults (an outage must not stop the bot).
    pub(super) async fn settings_where(&self, actor: &Actor) -> Option<(u64, ServerSettings)> {
        let Origin::Discord { guild_id: Some(guild_id), .. } = actor.origin else { return None };
        match self.server_settings(guild_id).await {
            Ok(settings) => Some((guild_id, settings)),
            Err(error) => {
                tracing::warn!(guild_id, error = %error, "could not read a server's settings; using the defaults");
                None
            }
        }
    }

    /// Changes one of a server's settings, for someone who may manage it.
    pub async fn change_server_settings(&self, membership: Membership, change: ServerChange) -> Result<ServerSettings> {
        if !membership.manages_server {
            return Err(Error::Forbidden(
                "only people with the Manage Server permission can change this server's settings".into(),
            ));
        }
        let change = self.checked_change(change)?;
        let key = Self::server_settings_key(membership.guild_id)?;
        let settings = self
            .records("server settings")
            .update(&key, |current: Option<ServerSettings>| {
                let mut settings = current.unwrap_or_default();
                match change.clone() {
                    ServerChange::ResultChannels(channels) => settings.result_channels = channels,
                    ServerChange::Models(models) => settings.models = models,
                    ServerChange::DefaultModel(model) => settings.default_model = model,
                    ServerChange::DailyBudget(budget) => settings.daily_budget = budget,
                    ServerChange::ModerationChannel(channel) => settings.moderation_channel = channel,
                    ServerChange::RoleBudget { role_id, budget: Some(budget) } => {
                        if !settings.role_budgets.contains_key(&role_id)
                            && settings.role_budgets.len() >= MAX_ROLE_BUDGETS
                        {
                            return Err(crate::Invalid::new(format!(
                                "a server may give at most {MAX_ROLE_BUDGETS} roles a budget; take one away first"
                            ))
                            .into());
                        }
                        settings.role_budgets.insert(role_id, budget);
                    }
                    ServerChange::RoleBudget { role_id, budget: None } => {
                        settings.role_budgets.remove(&role_id);
                    }
                    ServerChange::AgePolicy(policy) => settings.age_policy = policy,
                }
                Ok((settings.clone(), settings))
            })
            .await?;
        self.recent_server_settings
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(membership.guild_id, (Instant::now(), settings.clone()));
        tracing::info!(guild_id = membership.guild_id, "changed a server's settings");
        Ok(settings)
    }

    /// Refuses a change that names a model the engine does not offer, or too many channels.
    fn checked_change(&self, change: ServerChange) -> Result<ServerChange> {
        let known = self.models();
        let known_alias = |name: &str| -> Result<String> {
            known
                .iter()
                .find(|model| model.alias.eq_ignore_ascii_case(name.trim()) || model.id == name.trim())
                .map(|model| model.alias.clone())
                .ok_or_else(|| {
                    let aliases: Vec<&str> = known.iter().map(|model| model.alias.as_str()).collect();
                    crate::Invalid::new(format!("`{name}` is not a model here; choose from {}", aliases.join(", ")))
                        .into()
                })
        };
        Ok(match change {
            ServerChange::Models(models) => {
                ServerChange::Models(models.iter().map(|name| known_alias(name)).collect::<Result<_>>()?)
            }
            ServerChange::DefaultModel(Some(model)) => ServerChange::DefaultModel(Some(known_alias(&model)?)),
            ServerChange::ResultChannels(channels) if channels.len() > MAX_RESULT_CHANNELS => {
                return Err(crate::Invalid::new(format!("list at most {MAX_RESULT_CHANNELS} channels")).into());
            }
            other => other,
        })
    }

    /// Refuses a model the server does not allow (by alias or provider id).
    pub(super) fn check_model_allowed(
        &self,
        settings: &ServerSettings,
        model: Option<&crate::request::ModelName>,
    ) -> Result<()> {
        if settings.models.is_empty() {
            return Ok(());
        }
        let Some(id) = self.engine.model_id_for(model, None) else { return Ok(()) };
        let allowed = self
            .models()
            .into_iter()
            .any(|info| info.id == id && settings.models.iter().any(|alias| alias.eq_ignore_ascii_case(&info.alias)));
        if allowed {
            Ok(())
        } else {
            Err(crate::Invalid::new(format!(
                "this server allows these models: {}; choose one of them",
                settings.models.join(", ")
            ))
            .into())
        }
    }

    /// Refuses a job that would take the server past its daily budget, before anything is
    /// charged or called.
    pub(super) async fn check_server_budget(&self, actor: &Actor, cost: Usd) -> Result<()> {
        let Some((guild_id, settings)) = self.settings_where(actor).await else { return Ok(()) };
        let Some(budget) = settings.daily_budget else { return Ok(()) };
        let today = OffsetDateTime::now_utc().date();
        let spent = match self
            .records("server spend")
            .get::<ServerSpend>(&Self::server_spend_key(guild_id, today)?)
            .await
        {
            Ok(spend) => spend.unwrap_or_default().spent,
            Err(error) => {
                tracing::warn!(guild_id, error = %error, "could not read a server's spending; letting the job through");
                return Ok(());
            }
        };
        if spent.saturating_add(cost) > budget {
            return Err(Error::Busy(format!(
                "this server has used its daily budget ({spent} of {budget}); it starts again at midnight UTC. Nothing \
                 was charged"
            )));
        }
        Ok(())
    }

    /// Adds what a delivered job cost to its server's day (best effort: a failure is logged).
    pub(super) async fn charge_server(&self, actor: &Actor, cost: Usd) {
        let Origin::Discord { guild_id: Some(guild_id), .. } = actor.origin else { return };
        let today = OffsetDateTime::now_utc().date();
        let Ok(key) = Self::server_spend_key(guild_id, today) else { return };
        let charged = self
            .records("server spend")
            .update(&key, |current: Option<ServerSpend>| {
                let mut spend = current.unwrap_or_default();
                spend.spent = spend.spent.saturating_add(cost);
                Ok((spend, ()))
            })
            .await;
        if let Err(error) = charged {
            tracing::warn!(guild_id, error = %error, "could not add a job to its server's spending");
        }
    }

    /// The personal daily budget the actor's roles give them where they asked, when a role of
    /// theirs has one: the largest. (Whether it raises the service's budget is the job line's
    /// to decide: a role never lowers it.)
    pub(super) async fn role_budget(&self, actor: &Actor) -> Option<Usd> {
        if actor.roles.is_empty() {
            return None;
        }
        let (_, settings) = self.settings_where(actor).await?;
        actor.roles.iter().filter_map(|role| settings.role_budgets.get(role).copied()).max()
    }

    /// Who may see what the actor makes where they asked, which sets the safety gate. A
    /// server's channel not marked age-restricted is for all ages unless the server chose the
    /// same policy everywhere; a server whose settings cannot be read gets the stricter gate.
    pub(super) async fn audience(&self, actor: &Actor) -> Audience {
        let Origin::Discord { guild_id: Some(guild_id), .. } = actor.origin else { return Audience::Standard };
        if actor.age_restricted_channel {
            return Audience::Standard;
        }
        match self.server_settings(guild_id).await {
            Ok(settings) if settings.age_policy == AgePolicy::SameEverywhere => Audience::Standard,
            Ok(_) => Audience::AllAges,
            Err(error) => {
                tracing::warn!(guild_id, error = %error, "could not read a server's settings; using the stricter gate");
                Audience::AllAges
            }
        }
    }

    /// Where refusals made where `actor` asked are logged: the server's own channel, if it
    /// set one.
    pub async fn moderation_channel_for(&self, actor: &Actor) -> Option<u64> {
        self.settings_where(actor).await.and_then(|(_, settings)| settings.moderation_channel)
    }
}
