//! A stand-in for the Bedrock Runtime API on loopback, which the real `aws-sdk-bedrockruntime`
//! client talks to through `endpoint_url` or `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`.
//!
//! It serves InvokeModel for the image models (SDXL, Titan v1/v2, Nova Canvas, SD3.5, Stable
//! Image Ultra/Core and the Stability AI Image Services), Converse, ConverseStream (AWS
//! event-stream framing) and ApplyGuardrail. Each request body is checked against the documented
//! schema and rejected with a 400 `ValidationException` in Bedrock's words when it breaks a rule;
//! the rules and their sources are in `bedrock/images.rs` and `bedrock/chat.rs`. Answers carry
//! real images (solid colours, at the size the request asks for). Tests script failures and
//! special answers with [`Behaviour`] and read back every call with [`BedrockStandIn::requests`].
//! SigV4 signatures are accepted without being checked.

mod chat;
mod images;
mod schema;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use schema::Invalid;

/// Bedrock's limit for an InvokeModel body (service-2.json: the `body` blob is at most 25,000,000 bytes).
const MAX_BODY_BYTES: usize = 25_000_000;

/// A Bedrock Runtime operation the stand-in serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    InvokeModel,
    Converse,
    ConverseStream,
    ApplyGuardrail,
}

/// One call as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Call {
    pub operation: Operation,
    /// The model id (or, for ApplyGuardrail, the guardrail id), percent-decoded.
    pub model_id: String,
    /// The JSON request body (`Value::Null` when the body was not JSON).
    pub body: Value,
}

/// A scripted answer. Behaviours queue up in order; each applies to the next call(s) it matches.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// The next `times` calls (any operation) answer 429 ThrottlingException "Too many requests, please wait before trying again."
    Throttle { times: usize },
    /// Every later call waits this long before answering (until replaced by another Delay).
    Delay(Duration),
    /// The next InvokeModel is blocked by the model's content filter, in that family's documented way.
    ContentFilter,
    /// The next call (any operation) answers this HTTP status with this AWS error type and message.
    Error { status: u16, error_type: String, message: String },
    /// The next ConverseStream sends two text deltas, then an in-stream `modelStreamErrorException` event.
    MidStreamError,
    /// The next Converse or ConverseStream answers with this assistant text.
    ChatReply(String),
    /// The next Converse answers with a toolUse block (stopReason "tool_use") whose input is this JSON.
    ToolUse(Value),
    /// The next Converse or ConverseStream ends with this stopReason (e.g. "guardrail_intervened", "content_filtered").
    StopReason(String),
    /// The next ApplyGuardrail answers action GUARDRAIL_INTERVENED with a blocked-content assessment.
    GuardrailIntervene,
}

impl Behaviour {
    fn applies_to(&self, operation: Operation) -> bool {
        use Operation::*;
        match self {
            Self::Throttle { .. } | Self::Error { .. } | Self::Delay(_) => true,
            Self::ContentFilter => operation == InvokeModel,
            Self::MidStreamError => operation == ConverseStream,
            Self::ChatReply(_) | Self::StopReason(_) => matches!(operation, Converse | ConverseStream),
            Self::ToolUse(_) => operation == Converse,
            Self::GuardrailIntervene => operation == ApplyGuardrail,
        }
    }
}

/// An AWS error answer: status, `x-amzn-errortype` and `{"message": ...}`.
#[derive(Debug, Clone)]
struct Failure {
    status: u16,
    error_type: String,
    message: String,
}

impl Failure {
    fn new(status: u16, error_type: &str, message: impl Into<String>) -> Self {
        Self { status, error_type: error_type.to_string(), message: message.into() }
    }

    fn validation(message: impl Into<String>) -> Self {
        Self::new(400, "ValidationException", message)
    }

    fn throttling() -> Self {
        Self::new(429, "ThrottlingException", "Too many requests, please wait before trying again.")
    }
}

impl From<Invalid> for Failure {
    fn from(invalid: Invalid) -> Self {
        Self::validation(invalid.0)
    }
}

/// What the scripted behaviours say about one successful call.
#[derive(Debug, Clone, Default)]
struct Shaping {
    content_filter: bool,
    mid_stream_error: bool,
    reply: Option<String>,
    tool_use: Option<Value>,
    stop_reason: Option<String>,
    guardrail_intervene: bool,
}

#[derive(Debug, Default)]
struct Script {
    calls: Vec<Call>,
    queue: VecDeque<Behaviour>,
    delay: Duration,
    answered: u64,
}

#[derive(Clone, Default)]
struct Shared {
    script: Arc<Mutex<Script>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Script> {
        // A test that panicked while holding the lock must not hide every later answer.
        self.script.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the call and returns the delay to wait and a number for request ids and seeds.
    fn record(&self, operation: Operation, model_id: &str, body: Value) -> (Duration, u64) {
        let mut script = self.lock();
        script.calls.push(Call { operation, model_id: model_id.to_string(), body });
        script.answered += 1;
        (script.delay, script.answered)
    }

    fn delay(&self) -> Duration {
        self.lock().delay
    }

    /// The first queued behaviour for this operation, if it is a Throttle or an Error, is used up now.
    fn take_failure(&self, operation: Operation) -> Option<Failure> {
        let mut script = self.lock();
        let index = script.queue.iter().position(|behaviour| behaviour.applies_to(operation))?;
        match script.queue.get_mut(index)? {
            Behaviour::Throttle { times } => {
                *times = times.saturating_sub(1);
                if *times == 0 {
                    script.queue.remove(index);
                }
                Some(Failure::throttling())
            }
            Behaviour::Error { status, error_type, message } => {
                let failure = Failure::new(*status, error_type, message.clone());
                script.queue.remove(index);
                Some(failure)
            }
            _ => None,
        }
    }

    /// Takes the queued behaviours that shape this (valid) call: consecutive matching ones of
    /// different kinds, so `ChatReply` then `StopReason` shape the same reply. It stops at a
    /// Throttle or Error, or at a second behaviour of a kind already taken.
    fn take_shaping(&self, operation: Operation) -> Shaping {
        let mut script = self.lock();
        let mut shaping = Shaping::default();
        let mut index = 0;
        while let Some(behaviour) = script.queue.get(index) {
            if !behaviour.applies_to(operation) {
                index += 1;
                continue;
            }
            let taken = match behaviour {
                Behaviour::ContentFilter if !shaping.content_filter => {
                    shaping.content_filter = true;
                    true
                }
                Behaviour::MidStreamError if !shaping.mid_stream_error => {
                    shaping.mid_stream_error = true;
                    true
                }
                Behaviour::ChatReply(text) if shaping.reply.is_none() => {
                    shaping.reply = Some(text.clone());
                    true
                }
                Behaviour::ToolUse(input) if shaping.tool_use.is_none() => {
                    shaping.tool_use = Some(input.clone());
                    true
                }
                Behaviour::StopReason(reason) if shaping.stop_reason.is_none() => {
                    shaping.stop_reason = Some(reason.clone());
                    true
                }
                Behaviour::GuardrailIntervene if !shaping.guardrail_intervene => {
                    shaping.guardrail_intervene = true;
                    true
                }
                _ => false,
            };
            if !taken {
                break;
            }
            script.queue.remove(index);
        }
        shaping
    }
}

/// The running stand-in; the server task ends with the test's runtime.
pub struct BedrockStandIn {
    pub address: SocketAddr,
    shared: Shared,
}

impl BedrockStandIn {
    /// Binds 127.0.0.1:0 and serves in the background.
    pub async fn start() -> Self {
        let shared = Shared::default();
        let app = Router::new()
            .route("/model/{model_id}/invoke", post(invoke_model))
            .route("/model/{model_id}/converse", post(converse))
            .route("/model/{model_id}/converse-stream", post(converse_stream))
            .route("/guardrail/{guardrail_id}/version/{guardrail_version}/apply", post(apply_guardrail))
            .fallback(unknown_operation)
            // Bodies are limited by hand, with Bedrock's own limit and words.
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the Bedrock stand-in");
        let address = listener.local_addr().expect("the Bedrock stand-in's address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { address, shared }
    }

    /// The endpoint URL to give the SDK, e.g. "http://127.0.0.1:40123".
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Queues a behaviour for the next matching call(s), first in first out. `Delay` takes effect at once.
    pub fn script(&self, behaviour: Behaviour) {
        let mut script = self.shared.lock();
        match behaviour {
            Behaviour::Delay(delay) => script.delay = delay,
            Behaviour::Throttle { times: 0 } => {}
            other => script.queue.push_back(other),
        }
    }

    /// Every call received so far, in order.
    pub fn requests(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    pub fn calls_to(&self, operation: Operation) -> usize {
        self.shared.lock().calls.iter().filter(|call| call.operation == operation).count()
    }
}

fn request_id(number: u64) -> String {
    format!("5tand1n0-0000-4000-8000-{number:012}")
}

fn json_response(value: &Value, number: u64) -> Response {
    let mut response = (StatusCode::OK, value.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(id) = HeaderValue::from_str(&request_id(number)) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

/// The restJson1 error wire format: the SDK reads the error code from `x-amzn-errortype`.
fn failure_response(failure: &Failure, number: u64) -> Response {
    let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, json!({ "message": failure.message }).to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(error_type) = HeaderValue::from_str(&failure.error_type) {
        headers.insert("x-amzn-errortype", error_type);
    }
    if let Ok(id) = HeaderValue::from_str(&request_id(number)) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

/// Parses a JSON body, or says why Bedrock would not read it.
fn parse_body(body: &Bytes) -> Result<Value, Failure> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Failure::validation(format!(
            "1 validation error detected: Value at 'body' failed to satisfy constraint: Member must have length less than or equal to {MAX_BODY_BYTES}"
        )));
    }
    serde_json::from_slice(body).map_err(|error| {
        Failure::validation(format!(
            "Malformed input request: the body is not valid JSON ({error}), please reformat your input and try again."
        ))
    })
}

/// What every operation does first: record the call, wait the scripted delay, answer a
/// scripted Throttle or Error, and read the JSON body. `Err` is the answer already.
async fn prelude(shared: &Shared, operation: Operation, id: &str, body: &Bytes) -> Result<(Value, u64), Response> {
    let parsed = parse_body(body);
    let recorded = parsed.as_ref().ok().cloned().unwrap_or(Value::Null);
    let (delay, number) = shared.record(operation, id, recorded);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(failure) = shared.take_failure(operation) {
        return Err(failure_response(&failure, number));
    }
    parsed.map(|value| (value, number)).map_err(|failure| failure_response(&failure, number))
}

/// `POST /model/{modelId}/invoke`.
async fn invoke_model(State(shared): State<Shared>, Path(model_id): Path<String>, body: Bytes) -> Response {
    let started = Instant::now();
    let (value, number) = match prelude(&shared, Operation::InvokeModel, &model_id, &body).await {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let Some(family) = images::family(&model_id) else {
        let message = "Could not resolve the foundation model from the provided model identifier.";
        return failure_response(&Failure::new(404, "ResourceNotFoundException", message), number);
    };
    let plan = match images::check(family, &value) {
        Ok(plan) => plan,
        Err(invalid) => return failure_response(&invalid.into(), number),
    };
    let filtered = shared.take_shaping(Operation::InvokeModel).content_filter;
    // Encoding big images is CPU work: keep it off the async workers.
    let rendered = tokio::task::spawn_blocking(move || images::render(family, &plan, filtered, number)).await;
    let mut response = match rendered {
        Ok(Ok(value)) => json_response(&value, number),
        Ok(Err(failure)) => failure_response(&failure, number),
        Err(_) => failure_response(&Failure::new(500, "InternalServerException", "Rendering failed."), number),
    };
    if let Ok(latency) = HeaderValue::from_str(&started.elapsed().as_millis().to_string()) {
        response.headers_mut().insert("x-amzn-bedrock-invocation-latency", latency);
    }
    response
}

/// `POST /model/{modelId}/converse`.
async fn converse(State(shared): State<Shared>, Path(model_id): Path<String>, body: Bytes) -> Response {
    let started = Instant::now();
    let (value, number) = match prelude(&shared, Operation::Converse, &model_id, &body).await {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let conversation = match chat::check_model(&model_id).and_then(|()| chat::check_conversation(&value)) {
        Ok(conversation) => conversation,
        Err(invalid) => return failure_response(&invalid.into(), number),
    };
    let reply = chat::reply(&conversation, &shared.take_shaping(Operation::Converse));
    let latency = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    json_response(&chat::converse_output(&reply, latency), number)
}

/// `POST /model/{modelId}/converse-stream`: an `application/vnd.amazon.eventstream` body.
async fn converse_stream(State(shared): State<Shared>, Path(model_id): Path<String>, body: Bytes) -> Response {
    let started = Instant::now();
    let (value, number) = match prelude(&shared, Operation::ConverseStream, &model_id, &body).await {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let conversation = match chat::check_model(&model_id).and_then(|()| chat::check_conversation(&value)) {
        Ok(conversation) => conversation,
        Err(invalid) => return failure_response(&invalid.into(), number),
    };
    let shaping = shared.take_shaping(Operation::ConverseStream);
    let reply = chat::reply(&conversation, &shaping);
    let frames = chat::stream_frames(&reply, shaping.mid_stream_error);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        for (index, frame) in frames.into_iter().enumerate() {
            // Events come one by one, paced by the scripted Delay, so streaming is observable.
            let delay = shared.delay();
            if index > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if sender.send(frame.encode(started)).await.is_err() {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|bytes| (Ok::<Bytes, Infallible>(bytes), receiver))
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/vnd.amazon.eventstream"));
    if let Ok(id) = HeaderValue::from_str(&request_id(number)) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

/// `POST /guardrail/{guardrailIdentifier}/version/{guardrailVersion}/apply`.
async fn apply_guardrail(
    State(shared): State<Shared>,
    Path((guardrail_id, guardrail_version)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (value, number) = match prelude(&shared, Operation::ApplyGuardrail, &guardrail_id, &body).await {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    match chat::check_guardrail(&guardrail_id, &guardrail_version, &value) {
        Ok(checked) => {
            let intervene = shared.take_shaping(Operation::ApplyGuardrail).guardrail_intervene;
            json_response(&chat::guardrail_output(&checked, intervene), number)
        }
        Err(invalid) => failure_response(&invalid.into(), number),
    }
}

/// Any other path: not a Bedrock Runtime operation the stand-in knows.
async fn unknown_operation() -> Response {
    failure_response(&Failure::new(404, "UnknownOperationException", "The stand-in does not serve this operation."), 0)
}
