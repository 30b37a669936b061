//! The shared test harness: start Atelier in-process on port 0 with its own data folder, run
//! the `atelier` binary with a clean environment, and stand-ins for outside services.

pub mod attacks;
pub mod bedrock;
pub mod browser;
pub mod cutting_proxy;
pub mod discord;
pub mod faults;
pub mod moto;
pub mod oidc;
pub mod python;
pub mod relay;
pub mod s3s;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use atelier_shared::config::{Config, RawSettings};
use atelier_shared::startup::AwsSetup;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The forgery-protection token the test client's cookie holds.
pub const CSRF_TOKEN: &str = "test-csrf-token-0123456789";

/// One running Atelier with its own data folder, stopped when dropped.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub data: TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestApp {
    /// Local mode: demo engine, folder store, the visitor signed in as the local operator.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Local mode with extra settings, as `ATELIER_*` variables.
    pub async fn spawn_with(settings: &[(&str, &str)]) -> Self {
        let app = Self::start(settings, AwsSetup::default()).await;
        app.wait_until_ready().await;
        app
    }

    /// Local mode with extra settings and an SDK configuration pointing at AWS stand-ins
    /// (moto for an `s3://` store, say).
    pub async fn spawn_with_aws(settings: &[(&str, &str)], sdk_config: aws_config::SdkConfig) -> Self {
        let app = Self::start(settings, AwsSetup { sdk_config: Some(sdk_config), ..AwsSetup::default() }).await;
        app.wait_until_ready().await;
        app
    }

    /// [`Self::spawn_with_aws`] with a store that cannot be reached: the app must start and
    /// answer, and its readiness probe must say the store is unavailable.
    pub async fn spawn_with_store_unreachable(settings: &[(&str, &str)], sdk_config: aws_config::SdkConfig) -> Self {
        let app = Self::start(settings, AwsSetup { sdk_config: Some(sdk_config), ..AwsSetup::default() }).await;
        for _ in 0..400 {
            if let Ok(response) = app.client.get(app.url("/healthz")).send().await
                && response.status().is_success()
            {
                let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
                assert_eq!(ready.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
                let body: serde_json::Value = ready.json().await.unwrap();
                assert_eq!(body["store"], "unavailable", "{body}");
                return app;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the app at {} never answered", app.address);
    }

    async fn start(settings: &[(&str, &str)], aws: AwsSetup) -> Self {
        let data = tempfile::tempdir().unwrap();
        let store = format!("file://{}", data.path().join("store").display());
        let mut variables = vec![
            ("ATELIER_STORE".to_string(), store),
            ("ATELIER_ENGINE".to_string(), "demo".to_string()),
            ("ATELIER_BIND".to_string(), "127.0.0.1:0".to_string()),
            // Stopping a test app need not wait for a load balancer to drain it.
            ("ATELIER_SHUTDOWN_DRAIN_SECONDS".to_string(), "0".to_string()),
            // No atelier.toml from the working directory may leak in.
            ("ATELIER_CONFIG".to_string(), write_empty_settings_file(data.path()).display().to_string()),
        ];
        // Bound first, so links and sign-in callbacks name the real port.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        variables.push(("ATELIER_PUBLIC_URL".to_string(), format!("http://{address}/")));
        for (name, value) in settings {
            variables.retain(|(existing, _)| existing != name);
            variables.push((name.to_string(), value.to_string()));
        }
        let config = Config::from_raw(&RawSettings::from_variables(variables).unwrap()).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(failure) = atelier::serve::run(config, aws, listener, shutdown).await {
                panic!("the app failed: {}", failure.message);
            }
        });
        // Every request carries the same forgery-protection cookie, and forms send its token.
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::COOKIE, format!("atelier_csrf={CSRF_TOKEN}").parse().unwrap());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap();
        Self { address, client, data, stop: Some(stop), task: Some(task) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_text(&self, path: &str) -> (reqwest::StatusCode, String) {
        let response = self.get(path).await;
        (response.status(), response.text().await.unwrap())
    }

    /// Posts a URL-encoded form as the page would, with the forgery-protection token.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut fields = form.to_vec();
        fields.push(("csrf", CSRF_TOKEN));
        self.client.post(self.url(path)).form(&fields).send().await.unwrap()
    }

    /// Follows a submitted job's page (where the studio and edit forms send the browser) until
    /// the job ends, as the page's own refresh does without a script; returns the last page.
    /// A response that is not a job page (a form sent back with a refusal) is returned as it is.
    pub async fn job_outcome(&self, response: reqwest::Response) -> (reqwest::StatusCode, String) {
        // This client follows no redirects: the form's 303 names the job's page.
        let response = match response.headers().get("location") {
            Some(location) if response.status() == reqwest::StatusCode::SEE_OTHER => {
                let location = location.to_str().unwrap().to_string();
                assert!(location.starts_with("/jobs/"), "a form sent the browser to {location}");
                self.get(&location).await
            }
            _ => response,
        };
        let url = response.url().clone();
        let (mut status, mut page) = (response.status(), response.text().await.unwrap());
        for _ in 0..1_200 {
            if !page.contains("http-equiv=\"refresh\"") {
                return (status, page);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let again = self.client.get(url.clone()).send().await.unwrap();
            (status, page) = (again.status(), again.text().await.unwrap());
        }
        panic!("the job at {url} did not end within a minute: {page}");
    }

    /// Follows a job the API accepted (`202` with the job) by reading it until it ends, with
    /// `token` as the caller's Bearer token when given; returns the last job body.
    pub async fn api_job_outcome(&self, accepted: reqwest::Response, token: Option<&str>) -> serde_json::Value {
        let status = accepted.status();
        let location = accepted.headers().get("location").and_then(|value| value.to_str().ok()).map(String::from);
        let job: serde_json::Value = accepted.json().await.unwrap();
        assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{job}");
        assert_eq!(location.as_deref(), job["url"].as_str(), "Location names the job");
        let url = self.url(job["url"].as_str().unwrap());
        for _ in 0..1_200 {
            let mut request = self.client.get(&url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let job: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            if matches!(job["state"].as_str(), Some("done" | "failed" | "cancelled")) {
                return job;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the job at {url} did not end within a minute");
    }

    /// The URL a multipart form posts to: the token travels in the query.
    pub fn form_url(&self, path: &str) -> String {
        format!("{}?csrf={CSRF_TOKEN}", self.url(path))
    }

    async fn wait_until_ready(&self) {
        for _ in 0..200 {
            if let Ok(response) = self.client.get(self.url("/readyz")).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the app at {} never became ready", self.address);
    }

    /// Stops the app and waits until it has finished.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn write_empty_settings_file(folder: &Path) -> PathBuf {
    let path = folder.join("atelier.toml");
    std::fs::write(&path, "# no settings: the test's variables say everything\n").unwrap();
    path
}

/// The `atelier` binary, run in `folder` with no `ATELIER_*` or AWS settings from the
/// machine running the tests, so results do not depend on who runs them.
pub fn atelier(folder: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_atelier"));
    command.current_dir(folder);
    for (name, _) in std::env::vars() {
        if name.starts_with("ATELIER_") || name.starts_with("AWS_") {
            command.env_remove(&name);
        }
    }
    // No AWS files from the home folder either (empty ones instead), and never the instance
    // metadata service.
    let empty = folder.join(".aws-empty");
    if !empty.exists() {
        std::fs::write(&empty, "").unwrap();
    }
    command
        .env("HOME", folder)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", &empty)
        .env("AWS_SHARED_CREDENTIALS_FILE", &empty)
        .env("RUST_LOG", "warn");
    command
}

/// [`atelier`] with its bot on the Discord stand-in and its models on the Bedrock stand-in
/// (the Bedrock engine, the stand-in's credentials); callers add the rest of the settings.
pub fn atelier_on_stand_ins(
    folder: &Path,
    discord: &discord::DiscordStandIn,
    bedrock: &bedrock::BedrockStandIn,
) -> Command {
    let mut command = atelier(folder);
    command
        .env("ATELIER_ENGINE", "bedrock")
        .env("ATELIER_DISCORD_TOKEN", "stand-in-token")
        .env("ATELIER_DISCORD_APPLICATION_ID", discord::APPLICATION_ID)
        .env("ATELIER_DISCORD_API_URL", discord.url())
        .env("ATELIER_DISCORD_GATEWAY_URL", discord.gateway_url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", bedrock.endpoint());
    command
}

/// Runs a command and returns its output, with stdout and stderr as text.
pub fn run(command: &mut Command) -> (Output, String, String) {
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

/// A text chunk of a PNG, such as `Software`: Latin-1 (`tEXt`) or UTF-8 (`iTXt`).
pub fn png_text(bytes: &[u8], keyword: &str) -> Option<String> {
    let reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let info = reader.info();
    let latin1 =
        info.uncompressed_latin1_text.iter().find(|chunk| chunk.keyword == keyword).map(|chunk| chunk.text.clone());
    latin1
        .or_else(|| info.utf8_text.iter().find(|chunk| chunk.keyword == keyword).map(|chunk| chunk.get_text().unwrap()))
}

/// A free loopback port (bound and released), for a process that must bind it itself.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Plans and runs a generation as a front end does (from the request's fields, with the
/// actor's defaults filled in): the plan's refusal or the job's outcome.
pub async fn plan_and_generate(
    core: &atelier_shared::Atelier,
    actor: &atelier_shared::Actor,
    request: &atelier_shared::request::GenerationRequest,
) -> atelier_shared::Result<Vec<atelier_shared::Kept>> {
    core.generate(actor, &core.plan_generation(actor, &request.fields()).await?).await
}

/// Plans and runs an edit of an image already checked, as the command line does.
pub async fn plan_and_edit(
    core: &atelier_shared::Atelier,
    actor: &atelier_shared::Actor,
    request: &atelier_shared::request::EditRequest,
) -> atelier_shared::Result<Vec<atelier_shared::Kept>> {
    core.edit(actor, &core.plan_checked_edit(request.clone())?).await
}

/// The mask rule every front end states, "white marks the region to change": a PNG mask
/// painted white over the left half and black over the right.
pub fn left_half_white_mask(width: u32, height: u32) -> Vec<u8> {
    let mask = image::GrayImage::from_fn(width, height, |x, _| image::Luma([if x < width / 2 { 255 } else { 0 }]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    mask.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

/// A picture with something in every pixel, to edit.
pub fn varied_picture(width: u32, height: u32) -> Vec<u8> {
    let picture =
        image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x * 7 % 256) as u8, (y * 5 % 256) as u8, 90]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    picture.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

/// Asserts that an inpaint given [`left_half_white_mask`] repainted the left half and kept
/// every pixel of the right half: the side the mask rule names, not the other one.
pub fn assert_only_the_left_half_changed(before: &[u8], after: &[u8]) {
    let before = image::load_from_memory(before).unwrap().to_rgb8();
    let after = image::load_from_memory(after).unwrap().to_rgb8();
    assert_eq!(before.dimensions(), after.dimensions(), "an inpaint keeps the picture's size");
    let (width, height) = before.dimensions();
    let changed = |from: u32, to: u32| {
        (from..to)
            .flat_map(|x| (0..height).map(move |y| (x, y)))
            .filter(|&(x, y)| before[(x, y)] != after[(x, y)])
            .count()
    };
    assert_eq!(changed(width / 2, width), 0, "the black half of the mask changed");
    assert!(changed(0, width / 2) > (width / 2 * height / 2) as usize, "the white half of the mask was not repainted");
}
