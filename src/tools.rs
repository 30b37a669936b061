//! The one-shot subcommands. Each builds the same core `serve` uses, acts as the local
//! operator, and prints for a person at a terminal.

use std::io::{BufRead, Write};
use std::path::Path;

use atelier_shared::Atelier;
use atelier_shared::chat::{ChatEvent, ChatMessage, ChatMode, ChatTurn, StopReason};
use atelier_shared::config::{AwsEnvironment, Config, LocalSignIn, RawSettings, SETTINGS};
use atelier_shared::gallery::{Origin, Owner, SessionName};
use atelier_shared::images::{CheckedImage, check_upload};
use atelier_shared::preferences::PreferenceChange;
use atelier_shared::request::{EditFields, GenerationFields, Prompt};
use atelier_shared::startup::{self, AwsSetup, Started};
use atelier_shared::{Actor, Kept};

use crate::cli::{ChatArgs, CheckArgs, DescribeArgs, EditArgs, Failure, GenerateArgs, SettingsArgs};
use crate::serve::warn_about_unknown_variables;

fn load_config() -> Result<Config, Failure> {
    let raw = RawSettings::from_environment()?;
    warn_about_unknown_variables(&raw);
    Ok(Config::from_raw(&raw)?)
}

pub(crate) async fn load_core() -> Result<(Atelier, Started), Failure> {
    let config = load_config()?;
    Ok(startup::build(&config, &AwsSetup::detect()).await?)
}

fn operator() -> Actor {
    Actor::new(Owner::local_operator(), Origin::Cli)
}

/// Waits for a finished job's bookkeeping (its ledger entry and record, written just after
/// its answer) before a one-shot command exits, so nothing is left looking interrupted.
async fn settle(core: &Atelier) {
    core.wait_for_running_jobs(std::time::Duration::from_secs(30)).await;
}

/// The local operator in the session `--session` names, if any.
fn operator_in(session: Option<&str>) -> Result<Actor, Failure> {
    let mut actor = operator();
    actor.session = session.map(str::trim).filter(|name| !name.is_empty()).map(SessionName::parse).transpose()?;
    Ok(actor)
}

pub async fn generate(args: GenerateArgs) -> Result<(), Failure> {
    // Check the request before anything else, so a mistake costs nothing.
    let actor = operator_in(args.session.as_deref())?;
    let fields = GenerationFields {
        prompt: args.prompt,
        negative_prompt: args.negative,
        model: args.model,
        aspect: args.aspect,
        size: args.size,
        seed: args.seed,
        count: args.count,
        style: args.style,
        colors: args.colors,
        cfg_scale: args.cfg_scale,
        steps: args.steps,
    };
    fields.parse()?;
    prepare_output_folder(&args.out)?;
    let (core, started) = load_core().await?;
    announce_demo(&started);
    // The core fills in the operator's defaults (`atelier settings`).
    let kept = core.generate(&actor, &core.plan_generation(&actor, &fields).await?).await;
    settle(&core).await;
    write_results(&args.out, &kept?)
}

pub async fn edit(args: EditArgs) -> Result<(), Failure> {
    let actor = operator_in(args.session.as_deref())?;
    let source = read_image(&args.image, "the image").await?;
    let mask = match &args.mask {
        Some(path) => Some(read_image(path, "the mask").await?),
        None => None,
    };
    let request = EditFields {
        mode: args.mode,
        prompt: args.prompt,
        negative_prompt: args.negative,
        mask_prompt: args.mask_prompt,
        model: args.model,
        seed: args.seed,
        similarity: args.similarity,
        direction: args.direction,
    }
    .parse(source, mask)?;
    prepare_output_folder(&args.out)?;
    let (core, started) = load_core().await?;
    announce_demo(&started);
    let kept = core.edit(&actor, &core.plan_checked_edit(request)?).await;
    settle(&core).await;
    write_results(&args.out, &kept?)
}

/// `atelier settings`: changes the operator's defaults as the options say, then prints them.
pub async fn settings(args: SettingsArgs) -> Result<(), Failure> {
    let base = if args.clear { PreferenceChange::clearing_everything() } else { PreferenceChange::default() };
    let change = PreferenceChange {
        model: args.model.or(base.model),
        aspect: args.aspect.or(base.aspect),
        style: args.style.or(base.style),
        negative_prompt: args.negative.or(base.negative_prompt),
        private_results: args.private.or(base.private_results),
    };
    let (core, _) = load_core().await?;
    let owner = operator().owner;
    let preferences = if change == PreferenceChange::default() {
        core.preferences(&owner).await?
    } else {
        core.change_preferences(&owner, change).await?
    };
    let shown = |value: &Option<String>| value.clone().unwrap_or_else(|| "(none)".into());
    println!("model:    {}", shown(&preferences.model));
    println!("aspect:   {}", shown(&preferences.aspect));
    println!("style:    {}", shown(&preferences.style));
    println!("negative: {}", shown(&preferences.negative_prompt));
    println!("private:  {}", preferences.private_results);
    Ok(())
}

pub async fn check(args: CheckArgs) -> Result<(), Failure> {
    let prompt = Prompt::parse(&args.prompt)?;
    let (core, _) = load_core().await?;
    let critique = core.check_prompt(&operator(), &prompt).await?;
    if args.json {
        let text = serde_json::to_string_pretty(&critique).map_err(Failure::failed)?;
        println!("{text}");
        return Ok(());
    }
    let section = |title: &str, items: &[String]| {
        if !items.is_empty() {
            println!("{title}:");
            for item in items {
                println!("  - {item}");
            }
        }
    };
    println!("Critique by {}", critique.reviewer);
    section("Strengths", &critique.strengths);
    section("To improve", &critique.improvements);
    section("Suggestions", &critique.suggestions);
    println!("Improved prompts:");
    for improved in &critique.improved_prompts {
        println!("  {}: {}", improved.family, improved.prompt);
    }
    if !critique.negative_prompt_suggestions.is_empty() {
        println!("Negative prompt: {}", critique.negative_prompt_suggestions.join(", "));
    }
    println!("{}", critique.explanation);
    Ok(())
}

pub async fn chat(args: ChatArgs) -> Result<(), Failure> {
    let mode: ChatMode = args.mode.parse()?;
    if let Some(text) = args.message {
        let mut message = ChatMessage::parse(&text)?;
        if let Some(path) = &args.image {
            message = message.with_image(read_image(path, "the image").await?);
        }
        let (core, _) = load_core().await?;
        stream_reply(&core, mode, Vec::new(), &message).await?;
        return Ok(());
    }
    let (core, started) = load_core().await?;
    announce_demo(&started);
    eprintln!("Chatting in {} mode. Type a message and press Enter; an empty line or Ctrl-D ends.", mode.label());
    let mut history: Vec<ChatTurn> = Vec::new();
    loop {
        eprint!("> ");
        let _ = std::io::stderr().flush();
        let line = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map(|read| (read, line))
        })
        .await
        .map_err(|error| Failure::failed(format!("reading the terminal failed: {error}")))?
        .map_err(|error| Failure::failed(format!("reading the terminal failed: {error}")))?;
        let (read, line) = line;
        if read == 0 || line.trim().is_empty() {
            return Ok(());
        }
        let message = match ChatMessage::parse(&line) {
            Ok(message) => message,
            Err(invalid) => {
                eprintln!("{invalid}");
                continue;
            }
        };
        history = stream_reply(&core, mode, history, &message).await?;
    }
}

/// Prints a reply as it arrives; returns the history with this exchange.
async fn stream_reply(
    core: &Atelier,
    mode: ChatMode,
    history: Vec<ChatTurn>,
    message: &ChatMessage,
) -> Result<Vec<ChatTurn>, Failure> {
    let mut exchange = core.converse_statelessly(&operator(), mode, history, message).await?;
    let mut stdout = std::io::stdout();
    while let Some(event) = exchange.next().await {
        match event? {
            ChatEvent::Text(text) => {
                let _ = write!(stdout, "{text}");
                let _ = stdout.flush();
            }
            ChatEvent::Finished { stop_reason, usage } => {
                if let Some(usage) = usage {
                    tracing::info!(
                        input_tokens = usage.input_tokens,
                        output_tokens = usage.output_tokens,
                        "the reply used tokens"
                    );
                }
                let _ = writeln!(stdout);
                if stop_reason == StopReason::Filtered {
                    eprintln!("(the reply was stopped by a content filter)");
                } else if stop_reason == StopReason::MaxTokens {
                    eprintln!("(the reply reached its length limit)");
                }
                break;
            }
        }
    }
    Ok(exchange.history_after())
}

pub async fn describe(args: DescribeArgs) -> Result<(), Failure> {
    let image = read_image(&args.image, "the image").await?;
    let (core, started) = load_core().await?;
    announce_demo(&started);
    for (number, prompt) in core.describe(&operator(), &image).await?.iter().enumerate() {
        println!("{}. {prompt}", number + 1);
    }
    Ok(())
}

pub async fn show_config() -> Result<(), Failure> {
    let config = load_config()?;
    let width = print_settings(&config);

    let aws = AwsEnvironment::detect();
    println!();
    println!("Features:");
    feature("web app", true, format!("listens on {} and is reached at {}", config.bind, config.public_url));
    print_model_features(&config, &aws);
    feature("gallery store", true, config.store.to_string());
    print_access_features(&config);

    print_unknown_variables()?;
    println!();
    println!("All settings:");
    for (name, description) in SETTINGS {
        println!("  {name:width$}  {description}");
    }
    Ok(())
}

/// Prints every setting with its value, and returns the width of the names' column.
fn print_settings(config: &Config) -> usize {
    println!("Settings (environment variables win over atelier.toml):");
    let described = config.describe();
    let width = described.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    for (name, value) in &described {
        println!("  {name:width$}  {value}");
    }
    width
}

/// One line of the feature list: whether it is ready, and what it runs on or still needs.
fn feature(name: &str, ready: bool, detail: String) {
    println!("  [{}] {name}: {detail}", if ready { "ready" } else { "missing" });
}

/// The features that need the image models: which engine draws, which models, which checks.
fn print_model_features(config: &Config, aws: &AwsEnvironment) {
    let engine = atelier_shared::config::resolve_engine(config.engine, aws);
    match engine {
        atelier_shared::engine::EngineKind::Bedrock => feature(
            "image models (Bedrock)",
            true,
            format!(
                "region {}, credentials from {}",
                aws.region.as_deref().unwrap_or("(SDK default)"),
                aws.credentials_source.unwrap_or("the SDK's default chain")
            ),
        ),
        atelier_shared::engine::EngineKind::Demo => feature(
            "image models (Bedrock)",
            false,
            "the demo engine draws locally; set AWS_REGION and AWS credentials (or ATELIER_ENGINE=bedrock)".into(),
        ),
    }
    if engine == atelier_shared::engine::EngineKind::Bedrock {
        let default_model = config.models.for_generation(None).map(|model| model.to_string()).unwrap_or_default();
        feature("default image model", true, default_model);
        feature("chat, critique and appeals", true, config.bedrock.chat_model.clone());
        feature(
            "prompt safety",
            true,
            format!(
                "{} local terms, {}, classifier {}",
                config.bedrock.blocked_terms.len(),
                match &config.bedrock.guardrail {
                    Some((id, version)) => format!("guardrail {id} version {version}"),
                    None => "no guardrail (set ATELIER_GUARDRAIL_ID to add one)".into(),
                },
                config.bedrock.classifier_model
            ),
        );
    } else {
        feature(
            "prompt safety",
            true,
            format!("{} local terms only; the model checks need Bedrock", config.bedrock.blocked_terms.len()),
        );
    }
}

/// The features that need a front end's settings: the Discord bot, web sign-in, account linking.
fn print_access_features(config: &Config) {
    match &config.discord {
        Some(discord) => feature(
            "Discord bot",
            true,
            match discord.application_id {
                Some(id) => format!("token set, application {id}"),
                None => "token set (the application id is looked up from the token)".into(),
            },
        ),
        None => feature("Discord bot", false, "set ATELIER_DISCORD_TOKEN".into()),
    }
    match config.local_sign_in() {
        LocalSignIn::Allowed => {
            feature("web sign-in", true, "local mode: visitors are the local operator (loopback only)".into())
        }
        LocalSignIn::RefusedOffLoopback(bind) => feature(
            "web sign-in",
            false,
            format!("{bind} is not loopback: set ATELIER_OIDC_ISSUER and ATELIER_OIDC_CLIENT_ID, or bind to 127.0.0.1"),
        ),
        LocalSignIn::NotNeeded => feature("web sign-in", true, "OpenID Connect".into()),
    }
    let linking_ready =
        config.discord.is_some() && config.oidc.as_ref().is_some_and(|oidc| oidc.cognito_user_pool_id.is_some());
    feature(
        "account linking",
        linking_ready,
        if linking_ready {
            "Discord users can link their web accounts".into()
        } else {
            "needs ATELIER_DISCORD_TOKEN, ATELIER_OIDC_ISSUER, ATELIER_OIDC_CLIENT_ID and ATELIER_COGNITO_USER_POOL_ID"
                .into()
        },
    );
}

/// Lists the `ATELIER_*` variables that are not settings, with the likely intended name.
fn print_unknown_variables() -> Result<(), Failure> {
    let raw = RawSettings::from_environment()?;
    let unknown = raw.unknown_variables();
    if !unknown.is_empty() {
        println!();
        println!("Not settings (misspelt?):");
        for (name, closest) in unknown {
            match closest {
                Some(closest) => println!("  {name}: did you mean {closest}?"),
                None => println!("  {name}"),
            }
        }
    }
    Ok(())
}

pub async fn register_commands() -> Result<(), Failure> {
    let config = load_config()?;
    let discord = config.discord.as_ref().ok_or_else(|| {
        Failure::must_change(
            "ATELIER_DISCORD_TOKEN: is not set; set it to the bot token from the Discord developer portal",
        )
    })?;
    let registered = atelier_bot::register_commands(discord).await.map_err(|error| {
        Failure::failed(format!("Discord refused the slash commands: {}", crate::cli::error_chain(&error)))
    })?;
    println!("Registered {registered} slash commands with Discord.");
    Ok(())
}

fn announce_demo(started: &Started) {
    if started.engine == atelier_shared::engine::EngineKind::Demo {
        eprintln!(
            "Demo mode: no image model is configured ({}); the demo engine draws locally.",
            started.engine_reason
        );
    }
}

fn prepare_output_folder(folder: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(folder).map_err(|error| {
        Failure::must_change(format!(
            "--out {}: the folder cannot be created ({error}); choose another",
            folder.display()
        ))
    })
}

async fn read_image(path: &Path, what: &'static str) -> Result<CheckedImage, Failure> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|error| Failure::must_change(format!("{}: cannot be read ({error})", path.display())))?;
    check_upload(&Owner::local_operator(), bytes.into(), what).await.map_err(|error| match error {
        atelier_shared::Error::Invalid(invalid) => Failure::must_change(format!("{}: {invalid}", path.display())),
        other => Failure::failed(format!("checking the image failed: {other}")),
    })
}

fn write_results(folder: &Path, kept: &[Kept]) -> Result<(), Failure> {
    for image in kept {
        let record = &image.record;
        let path = folder.join(format!("atelier-{}.{}", record.id, record.extension));
        std::fs::write(&path, image.image.bytes())
            .map_err(|error| Failure::failed(format!("{}: cannot be written ({error})", path.display())))?;
        println!("{}  seed {}  {}  model {}", path.display(), record.seed, record.size, record.model_id);
    }
    Ok(())
}
