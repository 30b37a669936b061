//! A reverse proxy on loopback that cuts every HTTP request at a time limit, as CloudFront
//! does to its origin (60 s by default, `originReadTimeoutSeconds`): a request whose answer
//! has not begun by then gets 504, and a body still streaming (server-sent events) is cut off
//! where it is. It records both, so a test can show that no request ever waited that long.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use tokio::time::Instant;

/// What the proxy did to requests it cut.
#[derive(Debug, Clone, Default)]
pub struct Cuts {
    /// Requests that had no answer within the limit (answered 504 here), as "METHOD path".
    pub unanswered: Vec<String>,
    /// Answers whose bodies were still streaming at the limit and were cut off.
    pub streams_cut: Vec<String>,
    /// Every request passed on, as "METHOD path".
    pub passed: Vec<String>,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    limit: Duration,
    client: reqwest::Client,
    cuts: Arc<Mutex<Cuts>>,
}

pub struct CuttingProxy {
    pub url: String,
    cuts: Arc<Mutex<Cuts>>,
    task: tokio::task::JoinHandle<()>,
}

impl CuttingProxy {
    /// Listens on `port` and passes requests to `upstream` (`http://127.0.0.1:1234`).
    pub async fn start(port: u16, upstream: &str, limit: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind the cutting proxy");
        let cuts = Arc::new(Mutex::new(Cuts::default()));
        let proxy = Proxy {
            upstream: upstream.trim_end_matches('/').to_string(),
            limit,
            // The browser follows redirects and decompresses; the proxy passes answers as they are.
            client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            cuts: cuts.clone(),
        };
        let app = Router::new().fallback(forward).with_state(proxy);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url: format!("http://127.0.0.1:{port}"), cuts, task }
    }

    pub fn cuts(&self) -> Cuts {
        self.cuts.lock().unwrap().clone()
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Headers that belong to one connection, not to the request or answer passed on.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade" | "te" | "trailer"
    )
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let deadline = Instant::now() + proxy.limit;
    let (parts, body) = request.into_parts();
    let what = format!("{} {}", parts.method, parts.uri.path());
    proxy.cuts.lock().unwrap().passed.push(what.clone());
    let target = format!("{}{}", proxy.upstream, parts.uri.path_and_query().map_or("/", |path| path.as_str()));
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let mut outgoing = proxy.client.request(parts.method.clone(), target).body(body);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = match tokio::time::timeout_at(deadline, outgoing.send()).await {
        Err(_) => {
            proxy.cuts.lock().unwrap().unanswered.push(what);
            return (StatusCode::GATEWAY_TIMEOUT, "the origin did not answer within the time limit").into_response();
        }
        Ok(Err(error)) => return (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
        Ok(Ok(answer)) => answer,
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !hop_by_hop(name) {
            response = response.header(name, value);
        }
    }
    // The body passes piece by piece until it ends or the limit comes.
    let cuts = proxy.cuts.clone();
    let pieces = answer.bytes_stream();
    let body = futures::stream::unfold(Some((pieces, cuts, what)), move |state| async move {
        let (mut pieces, cuts, what) = state?;
        match tokio::time::timeout_at(deadline, pieces.next()).await {
            Ok(Some(Ok(piece))) => Some((Ok::<Bytes, std::io::Error>(piece), Some((pieces, cuts, what)))),
            Ok(Some(Err(error))) => Some((Err(std::io::Error::other(error)), None)),
            Ok(None) => None,
            Err(_) => {
                cuts.lock().unwrap().streams_cut.push(what);
                None
            }
        }
    });
    response.body(Body::from_stream(body)).unwrap()
}
