//! `atelier admin`: the operator's tools, acting on the configured store. Each is safe while
//! `atelier serve` runs on the same store: they go through the same core and the same records
//! (bans are records every replica reads; see `shared::service::moderation`).

use atelier_shared::Atelier;
use atelier_shared::gallery::Owner;
use clap::{Args, Subcommand};

use crate::cli::Failure;
use crate::tools::load_core;

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Refuse a person everywhere (Discord, the web, the API); both sides of a link
    Ban(BanArgs),
    /// Lift a ban
    Unban(PersonArgs),
    /// List the bans
    Bans(ListArgs),
}

#[derive(Debug, Args)]
pub struct PersonArgs {
    /// Who: `discord:USER_ID`, or a gallery owner as the API's /api/me shows it
    /// (such as `discord-80351110224678912` or `web-3f2c…`)
    pub person: String,
}

#[derive(Debug, Args)]
pub struct BanArgs {
    #[command(flatten)]
    pub person: PersonArgs,
    /// Why, for the operators who read the list later
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON, for scripts
    #[arg(long)]
    pub json: bool,
}

/// The owner a person argument names.
fn person(text: &str) -> Result<Owner, Failure> {
    let text = text.trim();
    if let Some(id) = text.strip_prefix("discord:") {
        let id: u64 =
            id.parse().map_err(|_| Failure::must_change(format!("`{text}`: a Discord user id is a number")))?;
        return Ok(Owner::discord(id));
    }
    Owner::parse(text).map_err(|error| {
        Failure::must_change(format!("{error}; name a person as discord:USER_ID or as a gallery owner"))
    })
}

pub async fn run(args: AdminArgs) -> Result<(), Failure> {
    // Check the arguments before opening anything.
    let target = match &args.command {
        AdminCommand::Ban(ban) => Some(person(&ban.person.person)?),
        AdminCommand::Unban(unban) => Some(person(&unban.person)?),
        AdminCommand::Bans(_) => None,
    };
    let (core, _) = load_core().await?;
    let outcome = dispatch(&core, args.command, target).await;
    core.stop_spool_flusher().await;
    outcome
}

async fn dispatch(core: &Atelier, command: AdminCommand, target: Option<Owner>) -> Result<(), Failure> {
    match (command, target) {
        (AdminCommand::Ban(ban), Some(owner)) => {
            let covered = core.ban(&owner, &ban.reason).await?;
            println!("banned {}", names(&covered));
        }
        (AdminCommand::Unban(_), Some(owner)) => {
            let covered = core.unban(&owner).await?;
            println!("lifted the ban on {}", names(&covered));
        }
        (AdminCommand::Bans(list), _) => {
            let bans = core.bans().await?;
            if list.json {
                let text = serde_json::to_string_pretty(&bans).map_err(Failure::failed)?;
                println!("{text}");
            } else if bans.is_empty() {
                println!("nobody is banned");
            } else {
                for ban in bans {
                    let reason = if ban.reason.is_empty() { String::new() } else { format!(": {}", ban.reason) };
                    println!("{} since {}{reason}", ban.owner, ban.banned_at.date());
                }
            }
        }
        _ => return Err(Failure::failed("nothing to do")),
    }
    Ok(())
}

fn names(owners: &[Owner]) -> String {
    owners.iter().map(Owner::to_string).collect::<Vec<_>>().join(" and ")
}
