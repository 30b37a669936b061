//! `atelier serve`: the web app and, when a token is configured, the Discord bot, in one
//! process around one core. The end-to-end tests start [`run`] in-process on port 0.

use std::future::Future;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;

use atelier_shared::Atelier;
use atelier_shared::config::{Config, LocalSignIn, RawSettings};
use atelier_shared::engine::EngineKind;
use atelier_shared::oidc::OidcSignIn;
use atelier_shared::startup::{self, AwsSetup, Started};
use axum_extra::extract::cookie::Key;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cli::Failure;

/// Reads the configuration from the environment, binds, and serves until Ctrl-C or SIGTERM.
pub async fn serve_from_environment() -> Result<(), Failure> {
    let raw = RawSettings::from_environment()?;
    warn_about_unknown_variables(&raw);
    let config = Config::from_raw(&raw)?;
    let listener = bind(config.bind).await?;
    run(config, AwsSetup::detect(), listener, shutdown_signal()).await
}

/// Logs each `ATELIER_*` variable that is not a setting, with the likely intended name.
pub fn warn_about_unknown_variables(raw: &RawSettings) {
    for (name, closest) in raw.unknown_variables() {
        match closest {
            Some(closest) => tracing::warn!("{name} is not a setting Atelier knows; did you mean {closest}?"),
            None => tracing::warn!("{name} is not a setting Atelier knows; `atelier config` lists them"),
        }
    }
}

/// Binds the web app's address, turning the usual failures into one actionable line.
pub async fn bind(address: SocketAddr) -> Result<TcpListener, Failure> {
    bind_setting("ATELIER_BIND", address).await
}

/// Binds the address of the setting `variable`, naming it in the one line a failure gives.
async fn bind_setting(variable: &str, address: SocketAddr) -> Result<TcpListener, Failure> {
    TcpListener::bind(address).await.map_err(|error| {
        let problem = match error.kind() {
            ErrorKind::AddrInUse => "the address is already in use by another program".to_string(),
            ErrorKind::AddrNotAvailable => "this machine has no such address".to_string(),
            ErrorKind::PermissionDenied => "this user may not listen there (ports below 1024 need privileges)".to_string(),
            _ => format!("cannot listen there ({error})"),
        };
        let suggestion = SocketAddr::new(address.ip(), address.port().saturating_add(1).max(1024));
        Failure::must_change(format!(
            "{variable}={address}: {problem}; stop the other program or set {variable} to a free address such as {suggestion}"
        ))
    })
}

/// Serves on `listener` until `shutdown` completes: the web app always, the bot when configured.
pub async fn run(
    config: Config,
    aws: AwsSetup,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Failure> {
    let (core, started) = startup::build(&config, &aws).await?;
    // A serving process keeps a heartbeat and answers the jobs of replicas that stopped;
    // one-shot commands (`atelier generate`) do neither.
    core.start_job_keeper(config.limits.heartbeat);
    // Bound before anything starts, so a taken port stops the process with one clear line.
    let metrics_listener = match config.metrics_address {
        Some(address) => Some(bind_setting("ATELIER_METRICS_ADDRESS", address).await?),
        None => None,
    };
    let address =
        listener.local_addr().map_err(|error| Failure::failed(format!("cannot read the bound address: {error}")))?;

    announce_mode(&config, &started);

    // One shutdown signal, fanned out to the web app and the bot. First the process turns
    // unready and takes no new jobs, long enough for the load balancer to notice and drain it;
    // then the web app finishes the requests in flight and the bot closes its gateway.
    let (stop_sender, stop_receiver) = watch::channel(false);
    start_shutdown_sequence(core.clone(), &config, shutdown, stop_sender);

    let bot = start_bot(&config, &core, stop_receiver.clone());

    let site = atelier_web::Site {
        engine: started.engine,
        engine_reason: started.engine_reason.clone(),
        local_sign_in: config.local_sign_in(),
        accepted_hosts: config.accepted_hosts(),
        public_url: config.public_url.clone(),
    };
    let auth = web_auth(&config).await?;
    // The metrics listener serves only /metrics, apart from the public web app, and stops with it.
    let metrics = start_metrics(metrics_listener, &core, stop_receiver.clone())?;
    let spool_owner = core.clone();
    let state = atelier_web::AppState { core, site: Arc::new(site), auth: Arc::new(auth) };
    tracing::info!(
        address = %address,
        engine = %started.engine,
        store = %started.store,
        "the web app is listening on http://{address}/ (engine: {}, store: {})",
        started.engine,
        started.store
    );
    atelier_web::serve(listener, state, stopped(stop_receiver))
        .await
        .map_err(|error| Failure::failed(format!("the web server failed: {error}")))?;
    if let Some(bot) = bot {
        let _ = bot.await;
    }
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    stop_background_work(&spool_owner).await;
    tracing::info!("stopped");
    Ok(())
}

/// Says loudly when the demo engine draws the images, and how web sign-in works here.
fn announce_mode(config: &Config, started: &Started) {
    if started.engine == EngineKind::Demo {
        tracing::warn!(
            "DEMO MODE: no image model is configured ({}), so images are drawn locally by the demo engine",
            started.engine_reason
        );
    }
    match config.local_sign_in() {
        LocalSignIn::Allowed => {
            tracing::info!("local mode: visitors are signed in as the local operator (loopback only)")
        }
        LocalSignIn::RefusedOffLoopback(bind) => tracing::warn!(
            "{bind} is reachable beyond this machine and no sign-in provider is configured: web sign-in is refused \
             until ATELIER_OIDC_ISSUER and ATELIER_OIDC_CLIENT_ID are set"
        ),
        LocalSignIn::NotNeeded => {}
    }
}

/// Starts the task that waits for `shutdown`, drains the process, and then tells the web app
/// and the bot to stop through `stop_sender`.
fn start_shutdown_sequence(
    draining_core: Atelier,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stop_sender: watch::Sender<bool>,
) {
    let drain = config.limits.shutdown_drain;
    let grace = config.limits.shutdown_grace;
    tokio::spawn(async move {
        shutdown.await;
        // Waiting jobs leave the line now, each answered through its own front end with its
        // images given back; running jobs carry on.
        draining_core.begin_shutdown();
        tracing::info!(drain_seconds = drain.as_secs(), "stopping: unready and taking no new jobs, then stopping");
        tokio::time::sleep(drain).await;
        // Running jobs get a while longer to deliver (Fargate allows 30 s from SIGTERM in all);
        // whatever is still running after that is answered by another replica or the next start.
        let left = draining_core.wait_for_running_jobs(grace).await;
        if left > 0 {
            tracing::warn!(jobs = left, "stopping with jobs still running; another replica will answer them");
        }
        let _ = stop_sender.send(true);
    });
}

/// Completes when the shutdown sequence says to stop.
async fn stopped(mut receiver: watch::Receiver<bool>) {
    let _ = receiver.wait_for(|stopped| *stopped).await;
}

/// Starts the Discord bot when a token is configured.
fn start_bot(config: &Config, core: &Atelier, stop_receiver: watch::Receiver<bool>) -> Option<JoinHandle<()>> {
    match &config.discord {
        Some(discord) => {
            let discord = discord.clone();
            let core = core.clone();
            let public_url = config.public_url.clone();
            let bot_stopped = stopped(stop_receiver);
            tracing::info!("starting the Discord bot");
            Some(tokio::spawn(async move {
                if let Err(error) = atelier_bot::run(core, &discord, public_url, bot_stopped).await {
                    tracing::error!(error = %error, "the Discord bot stopped: {error}");
                }
            }))
        }
        None => {
            tracing::info!("the Discord bot is off (set ATELIER_DISCORD_TOKEN to run it)");
            None
        }
    }
}

/// How the web app signs people in: through the configured provider, or as the local operator.
async fn web_auth(config: &Config) -> Result<atelier_web::Auth, Failure> {
    Ok(match &config.oidc {
        Some(oidc) => {
            let sign_in = OidcSignIn::new(oidc, &config.public_url)
                .map_err(|error| Failure::must_change(format!("ATELIER_OIDC_ISSUER: {}", error.user_message())))?;
            // A provider that cannot be reached at start is reported now, but the app still
            // starts: the provider may come back, and sign-in will discover it then.
            if let Err(error) = sign_in.discover().await {
                tracing::warn!(error = %error, "the sign-in provider could not be reached at start: {error}");
            }
            atelier_web::Auth {
                sign_in: Some(sign_in),
                cookie_key: Key::derive_from(oidc.session_secret.expose_secret()),
                secure_cookies: config.public_url.scheme() == "https",
            }
        }
        None => atelier_web::Auth::local(),
    })
}

/// Starts serving /metrics on its own listener, when one is configured.
fn start_metrics(
    metrics_listener: Option<TcpListener>,
    core: &Atelier,
    stop_receiver: watch::Receiver<bool>,
) -> Result<Option<JoinHandle<()>>, Failure> {
    Ok(match metrics_listener {
        Some(listener) => {
            let metrics_address = listener
                .local_addr()
                .map_err(|error| Failure::failed(format!("cannot read the metrics listener's address: {error}")))?;
            tracing::info!(address = %metrics_address, "metrics are served on http://{metrics_address}/metrics");
            let core = core.clone();
            let metrics_stopped = stopped(stop_receiver);
            Some(tokio::spawn(async move {
                if let Err(error) = atelier_web::metrics::serve(listener, core, metrics_stopped).await {
                    tracing::error!(error = %error, "the metrics listener stopped: {error}");
                }
            }))
        }
        None => None,
    })
}

/// What a stopping process does last, once the web app and the bot have stopped: marks this
/// replica stopped and writes what it can of the spool.
async fn stop_background_work(spool_owner: &Atelier) {
    // This replica is marked stopped, so what it leaves behind is answered at once by
    // another replica (or the next start) rather than after its heartbeat goes silent.
    spool_owner.stop_job_keeper().await;
    // Last: a write to the store in progress finishes; what is still spooled stays on disk
    // and is written by the next start.
    spool_owner.stop_spool_flusher().await;
    // The flusher may have been waiting out a backoff: one last try while the store may be back.
    let flushed = spool_owner.flush_spool_before_exit(std::time::Duration::from_secs(3)).await;
    if flushed > 0 {
        tracing::info!(images = flushed, "spooled images written to the store before exiting");
    }
    if let Some(depth) = spool_owner.spool_depth().filter(|depth| depth.entries > 0) {
        tracing::warn!(entries = depth.entries, bytes = depth.bytes, "images still wait in the spool for the store");
    }
}

/// Completes on Ctrl-C, or on SIGTERM (what ECS sends to stop a task).
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("interrupted: shutting down"),
        () = terminate => tracing::info!("asked to terminate: shutting down"),
    }
}
