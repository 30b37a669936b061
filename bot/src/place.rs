//! Where someone asks from, as the core needs it: the server and channel (for the gallery
//! record and the server's settings), the roles they hold there (a role may carry a larger
//! personal budget), and whether Discord marks the channel age-restricted (elsewhere on a
//! server the safety gate is stricter). Discord sends the roles with every interaction and
//! message; whether a channel is age-restricted comes from the gateway's guild cache, since
//! the partial channel of an interaction as serenity reads it does not carry the flag.

use atelier_shared::Actor;
use atelier_shared::gallery::{Origin, Owner};
use poise::serenity_prelude as serenity;

/// One interaction's or message's server, channel and asker's roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub guild_id: Option<serenity::GuildId>,
    pub channel_id: serenity::ChannelId,
    roles: Vec<u64>,
    age_restricted: bool,
}

impl Place {
    pub fn new(
        cache: &serenity::Cache,
        guild_id: Option<serenity::GuildId>,
        channel_id: serenity::ChannelId,
        roles: &[serenity::RoleId],
    ) -> Self {
        Self {
            guild_id,
            channel_id,
            roles: roles.iter().map(|role| role.get()).collect(),
            age_restricted: age_restricted(cache, guild_id, channel_id),
        }
    }

    /// A place known only by its ids (an interaction answered by another process, from its
    /// kept route): nothing is asked there, so no roles and no age restriction are needed.
    pub fn by_ids(guild_id: Option<serenity::GuildId>, channel_id: serenity::ChannelId) -> Self {
        Self { guild_id, channel_id, roles: Vec::new(), age_restricted: false }
    }

    /// Where a request came from, for the gallery record.
    pub fn origin(&self) -> Origin {
        origin_in(self.guild_id, self.channel_id)
    }

    /// `owner` asking here.
    pub fn actor(&self, owner: Owner) -> Actor {
        let mut actor = Actor::new(owner, self.origin());
        actor.roles = self.roles.clone();
        actor.age_restricted_channel = self.age_restricted;
        actor
    }
}

/// A request made in a channel (of a server, or a DM without one), for the gallery record.
pub fn origin_in(guild_id: Option<serenity::GuildId>, channel_id: serenity::ChannelId) -> Origin {
    Origin::Discord { guild_id: guild_id.map(serenity::GuildId::get), channel_id: channel_id.get(), message_id: None }
}

/// The place of a command, component or modal interaction (serenity's interaction types share
/// these fields but no trait).
#[macro_export]
macro_rules! place_of {
    ($cache:expr, $interaction:expr) => {
        $crate::place::Place::new(
            $cache,
            $interaction.guild_id,
            $interaction.channel_id,
            $interaction.member.as_ref().map(|member| member.roles.as_slice()).unwrap_or_default(),
        )
    };
}

/// Whether Discord marks the channel (or a thread's parent channel) age-restricted. A channel
/// the cache does not know counts as not restricted: the stricter gate is the safe mistake.
fn age_restricted(
    cache: &serenity::Cache,
    guild_id: Option<serenity::GuildId>,
    channel_id: serenity::ChannelId,
) -> bool {
    let Some(guild) = guild_id.and_then(|guild_id| cache.guild(guild_id)) else { return false };
    let channel =
        guild.channels.get(&channel_id).or_else(|| guild.threads.iter().find(|thread| thread.id == channel_id));
    match channel {
        Some(channel) if channel.nsfw => true,
        // A thread is as restricted as the channel it was opened in.
        Some(thread) if thread.thread_metadata.is_some() => {
            thread.parent_id.and_then(|parent| guild.channels.get(&parent)).is_some_and(|parent| parent.nsfw)
        }
        _ => false,
    }
}
