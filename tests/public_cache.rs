//! The CDN in front of the public pages is told when a published image stops being public:
//! `atelier serve` against moto's CloudFront (a distribution each test makes), driven through
//! the JSON API as the local operator, with the invalidations read back from moto.
//!
//! moto records an invalidation's paths and caller reference and marks it completed at once;
//! it caches nothing, so what these tests prove is that the app asks, with which paths, and
//! that it goes on when CloudFront refuses.

use std::process::{Child, Stdio};
use std::time::Duration;

use aws_sdk_cloudfront::types::{
    CustomOriginConfig, DefaultCacheBehavior, DistributionConfig, Origin, OriginProtocolPolicy, Origins,
    ViewerProtocolPolicy,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::moto::Moto;
use crate::support::{CSRF_TOKEN, atelier, free_port};

/// A distribution in moto in front of a made-up origin, as the stack makes one; its id.
async fn distribution(cloudfront: &aws_sdk_cloudfront::Client) -> String {
    let origin = Origin::builder()
        .id("app")
        .domain_name("origin.atelier.example.com")
        .custom_origin_config(
            CustomOriginConfig::builder()
                .http_port(80)
                .https_port(443)
                .origin_protocol_policy(OriginProtocolPolicy::HttpOnly)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let config = DistributionConfig::builder()
        .caller_reference(format!("atelier-test-{}", free_port()))
        .origins(Origins::builder().quantity(1).items(origin).build().unwrap())
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id("app")
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .build()
                .unwrap(),
        )
        .comment("Atelier (test)")
        .enabled(true)
        .build()
        .unwrap();
    let created = cloudfront.create_distribution().distribution_config(config).send().await.unwrap();
    created.distribution().unwrap().id().to_string()
}

/// Every invalidation of the distribution: its paths and caller reference, read one by one
/// with GetInvalidation, in the order ListInvalidations gives.
async fn invalidations(cloudfront: &aws_sdk_cloudfront::Client, distribution: &str) -> Vec<(Vec<String>, String)> {
    let listed = cloudfront.list_invalidations().distribution_id(distribution).send().await.unwrap();
    let mut found = Vec::new();
    for summary in listed.invalidation_list().map(|list| list.items()).unwrap_or_default() {
        let read = cloudfront.get_invalidation().distribution_id(distribution).id(summary.id()).send().await.unwrap();
        let batch = read.invalidation().unwrap().invalidation_batch().unwrap();
        let paths = batch.paths().unwrap().items().to_vec();
        found.push((paths, batch.caller_reference().to_string()));
    }
    found
}

/// `atelier serve` in local mode, stopped (SIGTERM) when dropped, even by a failing assertion.
struct Served {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Served {
    /// Starts it with the distribution named and every AWS call routed to `moto` the way an
    /// operator would route them: `AWS_ENDPOINT_URL_CLOUDFRONT`, a region and credentials.
    async fn start(folder: &std::path::Path, distribution: &str, moto: &Moto) -> Self {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let child = atelier(folder)
            .arg("serve")
            .env("ATELIER_BIND", format!("127.0.0.1:{port}"))
            .env("ATELIER_PUBLIC_URL", &base)
            .env("ATELIER_ENGINE", "demo")
            .env("ATELIER_SHUTDOWN_DRAIN_SECONDS", "0")
            .env("ATELIER_CLOUDFRONT_DISTRIBUTION_ID", distribution)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL_CLOUDFRONT", moto.endpoint())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(folder.join("atelier.log")).unwrap())
            .spawn()
            .unwrap();
        // The local operator's API calls carry the forgery token, as the pages' scripts do.
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::COOKIE, format!("atelier_csrf={CSRF_TOKEN}").parse().unwrap());
        headers.insert("x-csrf-token", CSRF_TOKEN.parse().unwrap());
        let client = reqwest::Client::builder().default_headers(headers).build().unwrap();
        let mut served = Self { child, base, client };
        for _ in 0..400 {
            let ready = served.client.get(format!("{}/readyz", served.base)).send().await;
            if ready.is_ok_and(|response| response.status().is_success()) {
                return served;
            }
            if let Ok(Some(status)) = served.child.try_wait() {
                panic!("atelier serve exited at start with {status}: {}", log(folder));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("atelier serve did not become ready at {}", served.base);
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// One demo image through `POST /api/generate`, followed until done; its id.
    async fn generate(&self, prompt: &str) -> String {
        let accepted = self.client.post(self.url("/api/generate")).json(&json!({ "prompt": prompt })).send().await;
        let accepted = accepted.unwrap();
        assert_eq!(accepted.status(), StatusCode::ACCEPTED);
        let job: Value = accepted.json().await.unwrap();
        let url = self.url(job["url"].as_str().unwrap());
        for _ in 0..1_200 {
            let job: Value = self.client.get(&url).send().await.unwrap().json().await.unwrap();
            match job["state"].as_str() {
                Some("done") => return job["images"][0]["id"].as_str().unwrap().to_string(),
                Some("failed" | "cancelled") => panic!("the job ended without an image: {job}"),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        panic!("the job at {url} did not end within a minute");
    }

    async fn publish(&self, id: &str) {
        let response = self.client.post(self.url(&format!("/api/images/{id}/publish"))).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
    }

    /// `DELETE` on `path`: the status.
    async fn delete(&self, path: &str) -> StatusCode {
        self.client.delete(self.url(path)).send().await.unwrap().status()
    }

    /// What anyone gets at `path`, signed in or not.
    async fn public(&self, path: &str) -> StatusCode {
        reqwest::get(self.url(path)).await.unwrap().status()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn log(folder: &std::path::Path) -> String {
    std::fs::read_to_string(folder.join("atelier.log")).unwrap_or_default()
}

#[tokio::test]
async fn unpublishing_or_deleting_a_published_image_invalidates_its_pages_and_publishing_does_not() {
    let moto = Moto::start().await;
    let cloudfront = aws_sdk_cloudfront::Client::new(&moto.sdk_config().await);
    let distribution = distribution(&cloudfront).await;
    let folder = tempfile::tempdir().unwrap();
    let app = Served::start(folder.path(), &distribution, &moto).await;

    let id = app.generate("a lighthouse in a storm").await;
    app.publish(&id).await;
    app.publish(&id).await;
    assert_eq!(app.public(&format!("/p/{id}")).await, StatusCode::OK);
    assert!(invalidations(&cloudfront, &distribution).await.is_empty(), "publishing makes nothing stale");

    assert_eq!(app.delete(&format!("/api/images/{id}/publish")).await, StatusCode::NO_CONTENT);
    let after_unpublish = invalidations(&cloudfront, &distribution).await;
    assert_eq!(after_unpublish.len(), 1, "{after_unpublish:?}");
    // The page with its files (and any query string); a web image is in no server's gallery.
    assert_eq!(after_unpublish[0].0, vec![format!("/p/{id}*")]);
    assert_eq!(app.public(&format!("/p/{id}")).await, StatusCode::NOT_FOUND);
    // Nothing public any more: unpublishing again and deleting it have nothing to make stale.
    assert_eq!(app.delete(&format!("/api/images/{id}/publish")).await, StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&format!("/api/images/{id}")).await, StatusCode::NO_CONTENT);
    assert_eq!(invalidations(&cloudfront, &distribution).await.len(), 1);

    // Deleting an image that is published takes its pages off the edge as well.
    let other = app.generate("a kite over the dunes").await;
    app.publish(&other).await;
    assert_eq!(app.delete(&format!("/api/images/{other}")).await, StatusCode::NO_CONTENT);
    let all = invalidations(&cloudfront, &distribution).await;
    assert_eq!(all.len(), 2, "{all:?}");
    let paths: Vec<&Vec<String>> = all.iter().map(|(paths, _)| paths).collect();
    assert!(paths.contains(&&vec![format!("/p/{other}*")]), "{all:?}");
    assert_eq!(app.public(&format!("/p/{other}/thumbnail")).await, StatusCode::NOT_FOUND);
    // Each invalidation is a new request to CloudFront, never taken for a retry of another.
    assert_ne!(all[0].1, all[1].1, "two invalidations share a caller reference: {all:?}");
    assert!(!log(folder.path()).contains("could not be told"), "{}", log(folder.path()));
}

/// CloudFront refusing (here: no such distribution, as with a wrong id or a missing
/// permission) fails nothing a person does: the image is unpublished and deleted all the same,
/// and the operator reads why in the log.
#[tokio::test]
async fn a_cloudfront_that_refuses_fails_neither_unpublishing_nor_deleting_and_the_log_says_why() {
    let moto = Moto::start().await;
    let folder = tempfile::tempdir().unwrap();
    let app = Served::start(folder.path(), "ENOSUCHDIST00", &moto).await;

    let id = app.generate("a lantern").await;
    app.publish(&id).await;
    assert_eq!(app.delete(&format!("/api/images/{id}/publish")).await, StatusCode::NO_CONTENT);
    assert_eq!(app.public(&format!("/p/{id}")).await, StatusCode::NOT_FOUND);
    let log_after_unpublish = log(folder.path());
    assert!(log_after_unpublish.contains("could not be told"), "{log_after_unpublish}");
    assert!(log_after_unpublish.contains("NoSuchDistribution"), "{log_after_unpublish}");
    assert!(log_after_unpublish.contains(&format!("/p/{id}*")), "the log names the paths: {log_after_unpublish}");

    app.publish(&id).await;
    assert_eq!(app.delete(&format!("/api/images/{id}")).await, StatusCode::NO_CONTENT);
    assert_eq!(app.public(&format!("/p/{id}")).await, StatusCode::NOT_FOUND);
    assert_eq!(
        app.client.get(app.url(&format!("/api/images/{id}"))).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(log(folder.path()).matches("could not be told").count(), 2, "{}", log(folder.path()));
}
