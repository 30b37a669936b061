//! The command line: `atelier [COMMAND]`. The names and flags are part of Atelier's interface,
//! since operators script them; change them only with care.

use std::path::PathBuf;
use std::process::ExitCode;

use atelier_shared::config::{LogFormat, RawSettings};
use clap::{Args, Parser, Subcommand};

use crate::{serve, telemetry, tools};

/// Atelier: make images with Amazon Bedrock's models, together, in Discord and on the web.
///
/// With no command, Atelier serves: the web app on ATELIER_BIND (default 127.0.0.1:8080),
/// and the Discord bot when ATELIER_DISCORD_TOKEN is set. On a machine with no AWS set-up it
/// runs in demo mode, drawing pictures locally, so everything can be tried at once.
///
/// Settings come from ATELIER_* environment variables or ./atelier.toml; `atelier config`
/// lists them and says what each feature still needs.
#[derive(Debug, Parser)]
#[command(name = "atelier", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web app, and the Discord bot when a token is configured (the default)
    Serve,
    /// Make images from a prompt and save them as files (and in the gallery)
    Generate(GenerateArgs),
    /// Edit an image file: inpaint, outpaint, variation, remove-background, replace, recolor, upscale
    Edit(EditArgs),
    /// Get a critique of a prompt, with improved versions for each model family
    Check(CheckArgs),
    /// Chat with the assistant: one message with --message, a conversation otherwise
    Chat(ChatArgs),
    /// Suggest four prompts that would draw something like an image
    Describe(DescribeArgs),
    /// Show or change your defaults for new images (model, aspect, style, what to leave out)
    Settings(SettingsArgs),
    /// Show the effective configuration (secrets redacted) and what each feature still needs
    Config,
    /// Register the bot's slash commands with Discord
    RegisterCommands,
    /// The operator's tools: bans, usage, export and deletion of a person
    Admin(crate::admin::AdminArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// What to draw
    #[arg(long)]
    pub prompt: String,
    /// What to leave out
    #[arg(long)]
    pub negative: Option<String>,
    /// Model alias (such as sdxl) or model id; default: the engine's default model
    #[arg(long)]
    pub model: Option<String>,
    /// Aspect ratio W:H, such as 16:9
    #[arg(long, conflicts_with = "size")]
    pub aspect: Option<String>,
    /// Exact size WxH, such as 1024x768
    #[arg(long)]
    pub size: Option<String>,
    /// Seed, to make the same picture again; default: random
    #[arg(long)]
    pub seed: Option<String>,
    /// How many images, 1 to 4
    #[arg(long)]
    pub count: Option<String>,
    /// Style preset, such as photographic or anime
    #[arg(long)]
    pub style: Option<String>,
    /// A palette to follow, such as "#1B4F72,#F4D03F" (titan-v2 and nova-canvas)
    #[arg(long)]
    pub colors: Option<String>,
    /// How closely to follow the prompt (sdxl 0 to 35, titan and nova-canvas 1.1 to 10)
    #[arg(long, value_name = "SCALE")]
    pub cfg_scale: Option<String>,
    /// Diffusion steps (sdxl, 10 to 50)
    #[arg(long, value_name = "N")]
    pub steps: Option<String>,
    /// A session to group the images under in the gallery, such as trip
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,
    /// Folder to write the images to
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// The image to edit (PNG, JPEG or WebP, up to 10 MiB)
    #[arg(long)]
    pub image: PathBuf,
    /// inpaint, outpaint, variation, remove-background, replace, recolor or upscale
    #[arg(long)]
    pub mode: String,
    /// What to paint (inpaint, replace, recolor) or steer the result toward
    #[arg(long)]
    pub prompt: Option<String>,
    /// What to leave out
    #[arg(long)]
    pub negative: Option<String>,
    /// A mask image of the same size: white marks the region to change, black what stays
    #[arg(long, conflicts_with = "mask_prompt")]
    pub mask: Option<PathBuf>,
    /// The region to change, in words, such as "the sky"
    #[arg(long)]
    pub mask_prompt: Option<String>,
    /// How close a variation stays to the source, 0.2 to 1.0
    #[arg(long)]
    pub similarity: Option<String>,
    /// Which way an outpaint grows: all, left, right, up or down
    #[arg(long)]
    pub direction: Option<String>,
    /// Model alias or id; default: the engine's default for this edit
    #[arg(long)]
    pub model: Option<String>,
    /// Seed, to make the same result again
    #[arg(long)]
    pub seed: Option<String>,
    /// A session to put the result in, in the gallery
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,
    /// Folder to write the result to
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
}

/// The defaults every new image of yours starts from, wherever you make it (here, on the web
/// as the local operator, and through the API); what a request gives itself wins. With no
/// option, prints them. An empty value or `none` clears one default.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Default model (an alias such as sdxl)
    #[arg(long, value_name = "M")]
    pub model: Option<String>,
    /// Default aspect ratio W:H, such as 16:9
    #[arg(long, value_name = "A")]
    pub aspect: Option<String>,
    /// Default style preset, such as photographic
    #[arg(long, value_name = "S")]
    pub style: Option<String>,
    /// Always leave this out (a negative prompt)
    #[arg(long, value_name = "T")]
    pub negative: Option<String>,
    /// Results only you see in Discord
    #[arg(long, value_name = "true|false")]
    pub private: Option<bool>,
    /// Clear every default first (then apply the other options given)
    #[arg(long)]
    pub clear: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The prompt to check
    #[arg(long)]
    pub prompt: String,
    /// Print the critique as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// prompt-coach, idea-generator, model-expert or assistant
    #[arg(long, default_value = "assistant")]
    pub mode: String,
    /// Send one message, print the reply and exit
    #[arg(long)]
    pub message: Option<String>,
    /// An image for the assistant to look at, sent with --message
    #[arg(long, requires = "message")]
    pub image: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The image to describe (PNG, JPEG or WebP)
    #[arg(long)]
    pub image: PathBuf,
}

/// Runs the command line and returns the process's exit code: 0 on success, 1 when the work
/// failed, 2 when the configuration or the request must be changed first.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, None | Some(Command::Serve));
    // Logging starts before the rest of the settings are read, so its one setting is read here;
    // a settings file that cannot be read is reported by the command itself, a moment later.
    let log_format = match RawSettings::from_environment().map(|raw| LogFormat::from_raw(&raw)) {
        Ok(Ok(format)) => format,
        Ok(Err(error)) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
        Err(_) => LogFormat::Text,
    };
    telemetry::init(if serving { "info" } else { "warn" }, log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            None | Some(Command::Serve) => serve::serve_from_environment().await,
            Some(Command::Generate(args)) => tools::generate(args).await,
            Some(Command::Edit(args)) => tools::edit(args).await,
            Some(Command::Check(args)) => tools::check(args).await,
            Some(Command::Chat(args)) => tools::chat(args).await,
            Some(Command::Describe(args)) => tools::describe(args).await,
            Some(Command::Settings(args)) => tools::settings(args).await,
            Some(Command::Config) => tools::show_config().await,
            Some(Command::RegisterCommands) => tools::register_commands().await,
            Some(Command::Admin(args)) => crate::admin::run(args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.exit_code)
        }
    }
}

/// Why a command stopped, worded for the person at the terminal, on one line.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub exit_code: u8,
}

impl Failure {
    /// Something the user or operator must change before trying again.
    pub fn must_change(message: impl std::fmt::Display) -> Self {
        Self { message: message.to_string(), exit_code: 2 }
    }

    /// The work itself failed.
    pub fn failed(message: impl std::fmt::Display) -> Self {
        Self { message: message.to_string(), exit_code: 1 }
    }
}

impl From<atelier_shared::config::ConfigError> for Failure {
    fn from(error: atelier_shared::config::ConfigError) -> Self {
        Self::must_change(error)
    }
}

impl From<atelier_shared::Error> for Failure {
    fn from(error: atelier_shared::Error) -> Self {
        use atelier_shared::Error;
        match error {
            // The request must change: a wrong option, a refused prompt, a missing image.
            Error::Invalid(_) | Error::NotFound(_) | Error::Blocked(_) | Error::Forbidden(_) | Error::Conflict(_) => {
                Self::must_change(error)
            }
            // Nothing to change: a service that is busy or cannot be reached, a job called
            // back. Trying again later may work.
            Error::Busy(_) | Error::Cancelled(_) => Self::failed(error),
            // At the terminal the operator is the user: show the details.
            Error::Operator { .. } => Self::failed(error_chain(&error)),
        }
    }
}

impl From<atelier_shared::Invalid> for Failure {
    fn from(invalid: atelier_shared::Invalid) -> Self {
        Self::must_change(invalid)
    }
}

/// An error and its causes on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}
