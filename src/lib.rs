//! The `atelier` binary's library: command-line parsing and the wiring that starts the web
//! app and the Discord bot around one shared core.
//!
//! # Layout
//! - [`cli`]: the subcommands, their flags and help text, and `main`.
//! - [`serve`]: `atelier serve`, which the end-to-end tests also start in-process.
//! - `admin`: `atelier admin`, the operator's tools (bans).
//! - `tools`: the one-shot subcommands (`generate`, `edit`, `check`, `chat`, `config`,
//!   `register-commands`).

mod admin;
pub mod cli;
pub mod serve;
mod telemetry;
mod tools;
