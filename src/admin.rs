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
    /// Images and model calls by model, person and server, with their estimated cost
    Usage(UsageArgs),
    /// Write everything the store keeps of a person (both sides of a link) into a tar archive
    Export(ExportArgs),
    /// Delete a person entirely: both sides of a link, their Cognito link attribute, every
    /// object of theirs in the store
    Delete(DeleteArgs),
    /// Start a person's day again: their images and spending today count from zero
    ResetBudget(PersonArgs),
    /// List the jobs in progress on every replica
    Jobs(ListArgs),
    /// Cancel a job in progress (one that has not started leaves at no charge)
    Cancel(CancelArgs),
    /// What waits in this machine's spool for the store, and the replicas seen recently
    Status(ListArgs),
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The job's id, as `atelier admin jobs` lists it
    pub job: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub person: PersonArgs,
    /// The archive to write (a .tar file)
    #[arg(long)]
    pub out: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub person: PersonArgs,
    /// Confirms the deletion, which cannot be undone
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// The first UTC day, YYYY-MM-DD (default: today)
    #[arg(long)]
    pub from: Option<String>,
    /// The last UTC day, YYYY-MM-DD (default: the first)
    #[arg(long)]
    pub to: Option<String>,
    /// Print JSON, for scripts
    #[arg(long)]
    pub json: bool,
}

/// The days a usage report covers: `--from` (today by default) to `--to` (`--from` by default).
fn period(usage: &UsageArgs) -> Result<(time::Date, time::Date), Failure> {
    let today = time::OffsetDateTime::now_utc().date();
    let from = usage.from.as_deref().map(day).transpose()?.unwrap_or(today);
    let to = usage.to.as_deref().map(day).transpose()?.unwrap_or(from);
    if to < from {
        return Err(Failure::must_change("--to is before --from"));
    }
    Ok((from, to))
}

/// A UTC day as the operator writes it.
fn day(text: &str) -> Result<time::Date, Failure> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text.trim(), format)
        .map_err(|_| Failure::must_change(format!("`{text}` is not a day: write it as YYYY-MM-DD, such as 2026-12-07")))
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
        AdminCommand::Bans(_) | AdminCommand::Jobs(_) | AdminCommand::Status(_) => None,
        AdminCommand::ResetBudget(target) => Some(person(&target.person)?),
        AdminCommand::Cancel(cancel) => {
            if atelier_shared::jobs::JobId::parse(cancel.job.trim()).is_none() {
                return Err(Failure::must_change(format!(
                    "`{}` is not a job id: copy one from atelier admin jobs",
                    cancel.job
                )));
            }
            None
        }
        AdminCommand::Export(export) => {
            if export.out.exists() {
                return Err(Failure::must_change(format!(
                    "--out {}: already exists; choose a new file",
                    export.out.display()
                )));
            }
            Some(person(&export.person.person)?)
        }
        AdminCommand::Delete(delete) => {
            let owner = person(&delete.person.person)?;
            if !delete.yes {
                return Err(Failure::must_change(format!(
                    "this deletes everything of {owner} (both sides of a link) and cannot be undone; add --yes to go ahead"
                )));
            }
            Some(owner)
        }
        AdminCommand::Usage(usage) => {
            period(usage)?;
            None
        }
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
        (AdminCommand::Usage(usage), _) => {
            let (from, to) = period(&usage)?;
            let report = core.usage_report(from, to).await?;
            if usage.json {
                println!("{}", serde_json::to_string_pretty(&report).map_err(Failure::failed)?);
            } else {
                print_usage(&report);
            }
        }
        (AdminCommand::Export(export), Some(owner)) => {
            let objects = core.export_person(&owner).await?;
            write_archive(&export.out, &objects)?;
            println!("wrote {} objects of {owner} to {}", objects.len(), export.out.display());
        }
        (AdminCommand::Delete(_), Some(owner)) => {
            let deleted = core.delete_person(&owner).await?;
            let directory =
                if deleted.directory_cleared { "; the linked Discord id was cleared in Cognito" } else { "" };
            println!("deleted {} objects of {}{directory}", deleted.objects, names(&deleted.owners));
        }
        (AdminCommand::ResetBudget(_), Some(owner)) => {
            let owners = core.reset_budget(&owner).await?;
            println!("today starts again for {}", names(&owners));
        }
        (AdminCommand::Jobs(list), _) => {
            let jobs = core.jobs_in_progress().await?;
            if list.json {
                println!("{}", serde_json::to_string_pretty(&jobs).map_err(Failure::failed)?);
            } else if jobs.is_empty() {
                println!("no jobs in progress");
            } else {
                for job in jobs {
                    println!(
                        "{}  {}  {} images  since {}  on {}",
                        job.id, job.owner, job.images, job.admitted_at, job.replica
                    );
                }
            }
        }
        (AdminCommand::Cancel(cancel), _) => {
            let id = atelier_shared::jobs::JobId::parse(cancel.job.trim())
                .ok_or_else(|| Failure::must_change("not a job id"))?;
            use atelier_shared::jobs::Cancelled;
            match core.cancel_job_as_operator(id).await? {
                Cancelled::Now | Cancelled::BeforeItStarts => {
                    println!("cancelled {id}: it leaves the line, nothing charged")
                }
                Cancelled::TooLate => {
                    return Err(Failure::failed(format!("{id} is already being drawn; it runs to its end")));
                }
                Cancelled::NotFound => return Err(Failure::must_change(format!("{id} is not in progress"))),
            }
        }
        (AdminCommand::Status(list), _) => {
            let spool = core.spool_depth();
            let replicas = core.replicas().await?;
            if list.json {
                let value = serde_json::json!({
                    "spool": spool.map(|depth| serde_json::json!({"entries": depth.entries, "bytes": depth.bytes})),
                    "replicas": replicas,
                });
                println!("{}", serde_json::to_string_pretty(&value).map_err(Failure::failed)?);
            } else {
                match spool {
                    Some(depth) => println!("spool: {} images waiting ({} bytes)", depth.entries, depth.bytes),
                    None => println!("spool: none configured"),
                }
                let now = time::OffsetDateTime::now_utc();
                for replica in replicas {
                    let age = (now - replica.heartbeat_at).whole_seconds();
                    let state = if replica.stopped { "stopped" } else { "running" };
                    println!("replica {}: {state}, last heartbeat {age} s ago", replica.replica);
                }
            }
        }
        _ => return Err(Failure::failed("nothing to do")),
    }
    Ok(())
}

fn print_usage(report: &atelier_shared::UsageReport) {
    let line = |name: &str, totals: &atelier_shared::UsageTotals| {
        println!("  {name:<40} {:>7} images {:>7} calls  ${:>10.4}", totals.images, totals.calls, totals.cost_usd);
    };
    println!("Usage from {} to {} (UTC days), estimated from the price table", report.from, report.to);
    line("total", &report.total);
    for (title, rows) in
        [("By model", &report.by_model), ("By person", &report.by_person), ("By server", &report.by_server)]
    {
        println!("{title}:");
        for (name, totals) in rows {
            line(name, totals);
        }
    }
}

/// Writes `objects` as a tar archive, each under its store key.
fn write_archive(path: &std::path::Path, objects: &[(String, atelier_shared::Bytes)]) -> Result<(), Failure> {
    let bytes = atelier_shared::data_archive(objects)?;
    std::fs::write(path, bytes).map_err(|error| Failure::failed(format!("writing {}: {error}", path.display())))
}

fn names(owners: &[Owner]) -> String {
    owners.iter().map(Owner::to_string).collect::<Vec<_>>().join(" and ")
}
