//! One module per area of the app, each exporting `router()`.

pub mod account;
pub mod api;
pub mod chat;
pub mod check;
pub mod edit;
pub mod gallery;
pub mod health;
pub mod home;
pub mod jobs;
pub mod live_gallery;
pub mod public;
pub mod settings;
pub mod studio;
