//! The browser tests' harness: the real `atelier serve` process on loopback with the OpenID
//! Connect provider, moto (S3) and the Bedrock stand-in, and the flows in `tests/browser/`,
//! Node scripts that drive Debian's Chromium through playwright-core.
//!
//! `./scripts/test` installs Chromium (`apt-get install chromium`) and the flows' packages
//! (`npm ci` in tests/browser); a test fails, never skips, when either is missing. Each flow
//! keeps a screenshot of every step in `target/browser-screenshots/<flow>/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use atelier_shared::adapters::ObjectStore;
use atelier_shared::adapters::S3Store;
use tempfile::TempDir;

use super::bedrock::BedrockStandIn;
use super::cutting_proxy::CuttingProxy;
use super::moto::Moto;
use super::oidc::OidcProvider;
use super::{atelier, free_port};

/// Debian's Chromium, which the flows launch (never a browser downloaded by Playwright).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The bucket the app keeps everything in (each test has its own moto).
pub const BUCKET: &str = "atelier-browser";

/// The client Atelier signs in as (the provider accepts any id, with any secret).
pub const CLIENT_ID: &str = "atelier-browser-tests";
const CLIENT_SECRET: &str = "atelier-browser-secret";

/// A session-signing secret for tests only: 32 bytes as 64 hex characters.
const SESSION_SECRET: &str = "5e55104df0a7e11e4b40c3e55e55104df0a7e11e4b40c3e55e55104df0a7e11e";

/// How long one flow may run before it is stopped.
const FLOW_TIME_LIMIT: Duration = Duration::from_secs(240);

/// One flow's Chromium at a time: four browsers starting at once on a small machine that is
/// also compiling would make the flows' timings (streaming, say) meaningless.
static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn flows_dir() -> PathBuf {
    manifest_dir().join("tests/browser")
}

/// Fails loudly, naming the fix, when Chromium or the flows' packages are missing.
fn require_browser_tools() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run ./scripts/test, which installs Debian's chromium for the browser tests \
         (or `apt-get install -y chromium`)"
    );
    let playwright = flows_dir().join("node_modules/playwright-core/package.json");
    assert!(
        playwright.exists(),
        "{} is missing: run ./scripts/test, which runs `npm ci` in tests/browser",
        playwright.display()
    );
}

/// Atelier as a process, with every outside service it talks to, stopped when dropped.
pub struct BrowserStack {
    pub moto: Moto,
    pub bedrock: BedrockStandIn,
    pub oidc: OidcProvider,
    /// Where the browser reaches the app, without a trailing slash: the app itself
    /// (`http://127.0.0.1:40123`), or the cutting proxy in front of it.
    pub base_url: String,
    /// The proxy cutting every request at a time limit, as CloudFront does, when asked for.
    pub proxy: Option<CuttingProxy>,
    app: Child,
    log: PathBuf,
    _folder: TempDir,
}

impl BrowserStack {
    /// Starts the stand-ins, makes the bucket, starts `atelier serve` and waits until it is ready.
    pub async fn start() -> Self {
        Self::start_with(&[], None).await
    }

    /// [`Self::start`] with extra settings for the app and, with `cut_at`, the browser reaching
    /// the app through a [`CuttingProxy`] that cuts every request at that limit.
    pub async fn start_with(extra: &[(&str, &str)], cut_at: Option<Duration>) -> Self {
        require_browser_tools();
        let moto = Moto::start().await;
        let bedrock = BedrockStandIn::start().await;
        let oidc = OidcProvider::start().await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&moto.sdk_config().await).force_path_style(true).build(),
        );
        s3.create_bucket().bucket(BUCKET).send().await.expect("create the test bucket in moto");

        let folder = tempfile::tempdir().unwrap();
        let settings = folder.path().join("atelier.toml");
        std::fs::write(&settings, "# no settings: the test's variables say everything\n").unwrap();
        let log = folder.path().join("atelier.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let port = free_port();
        let app_url = format!("http://127.0.0.1:{port}");
        let proxy = match cut_at {
            Some(limit) => Some(CuttingProxy::start(free_port(), &app_url, limit).await),
            None => None,
        };
        let base_url = proxy.as_ref().map_or(app_url, |proxy| proxy.url.clone());
        let app = atelier(folder.path())
            .arg("serve")
            .env("ATELIER_CONFIG", &settings)
            .env("ATELIER_BIND", format!("127.0.0.1:{port}"))
            .env("ATELIER_PUBLIC_URL", &base_url)
            .env("ATELIER_STORE", format!("s3://{BUCKET}"))
            .env("ATELIER_S3_FORCE_PATH_STYLE", "true")
            .env("ATELIER_ENGINE", "bedrock")
            .env("ATELIER_OIDC_ISSUER", oidc.issuer())
            .env("ATELIER_OIDC_CLIENT_ID", CLIENT_ID)
            .env("ATELIER_OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("ATELIER_SESSION_SECRET", SESSION_SECRET)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL_S3", moto.endpoint())
            .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", bedrock.endpoint())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(extra.iter().copied())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .stdin(Stdio::null())
            .spawn()
            .expect("start atelier serve");
        let mut stack = Self { moto, bedrock, oidc, base_url, proxy, app, log, _folder: folder };
        stack.wait_until_ready().await;
        stack
    }

    async fn wait_until_ready(&mut self) {
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(response) = client.get(format!("{}/readyz", self.base_url)).send().await
                && response.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.app.try_wait() {
                panic!("atelier serve exited at start with {status}:\n{}", self.app_log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("atelier serve never became ready at {}:\n{}", self.base_url, self.app_log());
    }

    /// The last lines the app has logged.
    pub fn app_log(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(120)..].join("\n")
    }

    /// The app's store, as the core sees it: the same bucket and prefix.
    pub async fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::new(S3Store::new(&self.moto.sdk_config().await, BUCKET.to_string(), None, true))
    }

    /// Runs `tests/browser/<flow>.mjs` with node against the app, with ATELIER_URL,
    /// SCREENSHOTS and `settings` in its environment; prints its output, and fails the test
    /// (with the app's log) when the flow fails.
    pub async fn run_flow(&self, flow: &str, settings: &[(&str, &str)]) {
        let script = flows_dir().join(format!("{flow}.mjs"));
        assert!(script.exists(), "{} is missing", script.display());
        let screenshots = manifest_dir().join("target/browser-screenshots").join(flow);
        let _ = std::fs::remove_dir_all(&screenshots);
        std::fs::create_dir_all(&screenshots).unwrap();

        let mut command = tokio::process::Command::new("node");
        command
            .arg(&script)
            .current_dir(flows_dir())
            .env("ATELIER_URL", &self.base_url)
            .env("SCREENSHOTS", &screenshots)
            .env("OIDC_ISSUER", self.oidc.issuer())
            .envs(settings.iter().copied())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let _browser = ONE_BROWSER_AT_A_TIME.lock().await;
        let started = std::time::Instant::now();
        let child = command.output();
        let output = match tokio::time::timeout(FLOW_TIME_LIMIT, child).await {
            Ok(output) => output.expect("node did not start: install Node.js 20 or newer"),
            Err(_) => panic!(
                "the {flow} flow did not finish within {FLOW_TIME_LIMIT:?}; screenshots so far in {}\napp log:\n{}",
                screenshots.display(),
                self.app_log()
            ),
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        println!("--- tests/browser/{flow}.mjs ({:.1} s) ---\n{stdout}{stderr}", started.elapsed().as_secs_f64());
        if !output.status.success() {
            let reason = stderr.lines().find(|line| line.contains("FAILED")).unwrap_or("see its output above");
            panic!(
                "the {flow} browser flow failed ({}): {reason}\nscreenshots: {}\napp log:\n{}",
                output.status,
                screenshots.display(),
                self.app_log()
            );
        }
    }
}

impl Drop for BrowserStack {
    fn drop(&mut self) {
        let _ = self.app.kill();
        let _ = self.app.wait();
    }
}
