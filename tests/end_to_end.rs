//! Atelier end to end: the real binary and the real web app, started on loopback with
//! isolated state for every test.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "a broken assumption in a test should fail it loudly")]

mod support;

// Accounts: OpenID Connect sign-in and Discord linking, against an OIDC provider and Cognito (moto).
mod accounts;
// The JSON API under /api/: access tokens (signed by a test issuer), every endpoint, errors, the OpenAPI document.
mod api;
// The web app in Debian's Chromium (playwright-core flows in tests/browser/): sign-in, generate, edit, chat, link, settings.
mod browser;
// Bad input through the web app: malformed images, prompts and JSON, forged cookies, tampered links; a table.
mod bad_input;
// The Bedrock stand-in itself, driven by the real aws-sdk-bedrockruntime client.
mod bedrock_stand_in;
// The core against the Bedrock stand-in: every family, edit mode, error mapping, the checker and chat.
mod bedrock;
// Bedrock fault storms through the service (throttling, 5xx, slow, hanging, broken chat streams): a table.
mod bedrock_faults;
// The deployment: the Dockerfile builds what builds here; infra/ sets real settings and grants the models used.
mod deploy;
// The command line as operators use it: help, config, bad settings, generate, edit, check, chat.
mod cli;
// The Discord stand-in itself (REST, gateway, CDN), driven by a plain serenity client.
mod discord_stand_in;
// The Discord bot through the Discord and Bedrock stand-ins: commands, buttons, threads, faults.
mod discord_bot;
// The job line as people meet it: Cancel, SIGTERM mid-burst, a restart answering interrupted jobs; table rows.
mod jobs;
// Observability: /metrics on its own port moving with the work done; JSON logs with job ids and no prompt text at info.
mod observability;
// Scale-out: two replicas against one Discord and one store; each interaction is acknowledged, answered, run and stored once.
mod replicas;
// Discord's faults during bursts of jobs (dropped gateway, 429, 5xx, uploads refused for size, expired tokens): table rows.
mod discord_faults;
// The CDN told when a published image stops being public: `atelier serve` against moto's CloudFront.
mod public_cache;
// The S3 store against moto (store, gallery, CLI, web redirects) and s3s-fs (signatures, URL expiry).
mod s3;
// Attacks on the running service and what must hold (decode bombs, …).
mod security;
// `atelier serve` as a process: the README's run command, probes, shutdown.
mod serve;
// One set of defaults per person and sessions everywhere: the Settings page, /api/settings, `atelier settings`, the gallery's sessions.
mod settings;
// No lost images: moto stopped mid-burst, the spool on disk, flushed once back (also after a restart), a full spool.
mod store_outage;
// The web app through HTTP: pages, forms, the gallery, sign-in rules.
mod web;
// Web sign-in through an OpenID Connect provider, sessions in the store, linking, ownership.
mod web_sign_in;
// The edit studio (painted masks, lineage, refusals) and chat (stored conversations, streamed replies) over HTTP.
mod web_studio;
