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
//!
//! Fault storms are switched on and off at run time with [`BedrockStandIn::storm`] and
//! [`BedrockStandIn::calm`]: a [`FaultMode`] gives a share of one operation's calls a
//! [`Fault`] (an AWS error in Bedrock's documented status and error type, a slow answer, a
//! request that is never answered, or a chat stream that breaks off with an exception event,
//! a dropped connection or silence), until the test calms it.

mod chat;
mod images;
mod schema;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use serde_json::{Value, json};

use chat::Ending;
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
    /// When the request had arrived (body included).
    pub received_at: Instant,
    /// When the last bytes of a successful InvokeModel or Converse answer, or the end of a
    /// ConverseStream body, were handed to the connection; None until then (and for errors).
    pub answered_at: Option<Instant>,
    /// A ConverseStream's text deltas, each with when it was handed to the connection.
    pub deltas: Vec<(Instant, String)>,
}

/// A scripted answer. Behaviours queue up in order; each applies to the next call(s) it matches.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// The next `times` calls (any operation) answer 429 ThrottlingException "Too many requests, please wait before trying again."
    Throttle { times: usize },
    /// Every later call waits this long before answering (until replaced by another Delay).
    Delay(Duration),
    /// Every later InvokeModel (an image) waits this long more before answering: a slow image
    /// model behind quick safety checks.
    SlowImages(Duration),
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
            Self::SlowImages(_) => operation == InvokeModel,
            Self::ContentFilter => operation == InvokeModel,
            Self::MidStreamError => operation == ConverseStream,
            Self::ChatReply(_) | Self::StopReason(_) => matches!(operation, Converse | ConverseStream),
            Self::ToolUse(_) => operation == Converse,
            Self::GuardrailIntervene => operation == ApplyGuardrail,
        }
    }
}

/// An error Bedrock Runtime answers with, in its documented HTTP status and error type (the
/// API reference's Errors section of InvokeModel, Converse and ConverseStream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsError {
    /// 429 ThrottlingException: the account's quota for the model is used up for now.
    Throttling,
    /// 503 ServiceUnavailableException.
    ServiceUnavailable,
    /// 500 InternalServerException.
    InternalServer,
    /// 408 ModelTimeoutException: the model took longer than its own limit.
    ModelTimeout,
    /// 429 ModelNotReadyException: the model is being loaded (the SDK retries it).
    ModelNotReady,
}

impl AwsError {
    fn failure(self) -> Failure {
        match self {
            Self::Throttling => Failure::throttling(),
            Self::ServiceUnavailable => {
                Failure::new(503, "ServiceUnavailableException", "Bedrock is unable to process your request.")
            }
            Self::InternalServer => Failure::new(
                500,
                "InternalServerException",
                "The server encountered an internal error while processing the request.",
            ),
            Self::ModelTimeout => Failure::new(
                408,
                "ModelTimeoutException",
                "Model has timed out in processing the request. Try your request again.",
            ),
            Self::ModelNotReady => Failure::new(
                429,
                "ModelNotReadyException",
                "Model is not ready to serve inference requests. The AWS SDK will automatically retry the operation up to 5 times.",
            ),
        }
    }
}

/// What goes wrong with a call a [`FaultMode`] picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call is answered with this error.
    Error(AwsError),
    /// The call is answered normally, but only after this long (longer than the client's
    /// attempt timeout, so the client has given the attempt up by then).
    Slow(Duration),
    /// The request is read and never answered; the connection stays open.
    Hang,
    /// ConverseStream only: `after` text pieces, then an in-stream exception event of this
    /// `:exception-type` (modelStreamErrorException, throttlingException, ...).
    StreamException { after: usize, exception: &'static str },
    /// ConverseStream only: `after` text pieces, then the connection drops mid-body.
    StreamDrop { after: usize },
    /// ConverseStream only: `after` text pieces (0: none, only the answer's headers), then
    /// silence while the connection stays open.
    StreamStall { after: usize },
}

impl Fault {
    fn applies_to(&self, operation: Operation) -> bool {
        match self {
            Self::Error(_) | Self::Slow(_) | Self::Hang => true,
            Self::StreamException { .. } | Self::StreamDrop { .. } | Self::StreamStall { .. } => {
                operation == Operation::ConverseStream
            }
        }
    }
}

/// A fault that lasts until the test calms the stand-in: of the calls to `operation`, the
/// first and then every `one_in`-th after it gets `fault` (1: every call; 2: every other one;
/// 3: one in three). Counting is deterministic, so a storm is the same in every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultMode {
    pub operation: Operation,
    pub fault: Fault,
    pub one_in: usize,
}

/// A fault mode in force, with how many of its operation's calls it has seen and failed.
#[derive(Debug, Clone, Copy)]
struct Storm {
    mode: FaultMode,
    seen: usize,
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
    /// Added to `delay` for InvokeModel ([`Behaviour::SlowImages`]).
    image_delay: Duration,
    answered: u64,
    /// With [`BedrockStandIn::answer_images_at_once`]: the InvokeModel answers, encoded once.
    prebuilt: Option<Arc<Prebuilt>>,
    /// The fault modes in force, each with its own count.
    storms: Vec<Storm>,
    /// Faults dealt by fault modes since the start, by operation.
    faults_dealt: Vec<(Operation, Fault)>,
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
        script.calls.push(Call {
            operation,
            model_id: model_id.to_string(),
            body,
            received_at: Instant::now(),
            answered_at: None,
            deltas: Vec::new(),
        });
        script.answered += 1;
        let delay = if operation == Operation::InvokeModel { script.delay + script.image_delay } else { script.delay };
        (delay, script.answered)
    }

    fn delay(&self) -> Duration {
        self.lock().delay
    }

    /// The call numbered `number` (from [`Self::record`]), to add its timings to.
    fn call_mut(script: &mut Script, number: u64) -> Option<&mut Call> {
        let index = usize::try_from(number).ok()?.checked_sub(1)?;
        script.calls.get_mut(index)
    }

    fn answered(&self, number: u64, at: Instant) {
        if let Some(call) = Self::call_mut(&mut self.lock(), number) {
            call.answered_at.get_or_insert(at);
        }
    }

    fn delta_sent(&self, number: u64, at: Instant, text: String) {
        if let Some(call) = Self::call_mut(&mut self.lock(), number) {
            call.deltas.push((at, text));
        }
    }

    /// The fault this call gets from the fault modes in force, if any: the first mode for
    /// the operation whose turn it is. Every mode for the operation counts the call.
    fn pick_fault(&self, operation: Operation) -> Option<Fault> {
        let mut script = self.lock();
        let mut picked = None;
        for storm in script.storms.iter_mut().filter(|storm| storm.mode.operation == operation) {
            let turn = storm.seen % storm.mode.one_in.max(1) == 0;
            storm.seen += 1;
            if turn && picked.is_none() && storm.mode.fault.applies_to(operation) {
                picked = Some(storm.mode.fault);
            }
        }
        if let Some(fault) = picked {
            script.faults_dealt.push((operation, fault));
        }
        picked
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

    /// An SDK configuration that reaches the stand-in with static test credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new("testing", "testing", None, None, "stand-in"))
            .endpoint_url(self.endpoint())
            .load()
            .await
    }

    /// Queues a behaviour for the next matching call(s), first in first out. `Delay` takes effect at once.
    pub fn script(&self, behaviour: Behaviour) {
        let mut script = self.shared.lock();
        match behaviour {
            Behaviour::Delay(delay) => script.delay = delay,
            Behaviour::SlowImages(delay) => script.image_delay = delay,
            Behaviour::Throttle { times: 0 } => {}
            other => script.queue.push_back(other),
        }
    }

    /// From now on every valid InvokeModel is answered with one 1024×1024 PNG (a textured
    /// picture that compresses about as well as a model's), in the family's answer shape, from
    /// bodies encoded once here rather than per call: the model's time is then only the
    /// scripted Delay. Returns the PNG's size in bytes.
    pub fn answer_images_at_once(&self) -> usize {
        let prebuilt = Prebuilt::new(1024, 1024);
        let size = prebuilt.png_bytes;
        self.shared.lock().prebuilt = Some(Arc::new(prebuilt));
        size
    }

    /// Switches a fault mode on, beside any already in force, until [`Self::calm`].
    pub fn storm(&self, mode: FaultMode) {
        self.shared.lock().storms.push(Storm { mode, seen: 0 });
    }

    /// Switches every fault mode off; calls already hanging or stalled stay so.
    pub fn calm(&self) {
        self.shared.lock().storms.clear();
    }

    /// How many faults the fault modes have dealt to calls of `operation` since the start.
    pub fn faults_dealt(&self, operation: Operation) -> usize {
        self.shared.lock().faults_dealt.iter().filter(|(dealt_to, _)| *dealt_to == operation).count()
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

/// What a valid call goes on to do, after the prelude.
struct Admitted {
    body: Value,
    number: u64,
    /// A stream fault a fault mode picked for this (ConverseStream) call.
    stream_fault: Option<Fault>,
}

/// What every operation does first: record the call, wait the scripted delay, deal a fault
/// mode's fault (an error, a slow answer, a hang), answer a scripted Throttle or Error, and
/// read the JSON body. `Err` is the answer already.
async fn prelude(shared: &Shared, operation: Operation, id: &str, body: &Bytes) -> Result<Admitted, Response> {
    let parsed = parse_body(body);
    let recorded = parsed.as_ref().ok().cloned().unwrap_or(Value::Null);
    let (delay, number) = shared.record(operation, id, recorded);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut stream_fault = None;
    match shared.pick_fault(operation) {
        Some(Fault::Error(error)) => return Err(failure_response(&error.failure(), number)),
        Some(Fault::Slow(late)) => tokio::time::sleep(late).await,
        Some(Fault::Hang) => {
            // Read, never answered: the server task ends with the test's runtime, or when the
            // client gives up and closes the connection.
            std::future::pending::<()>().await;
        }
        Some(fault) => stream_fault = Some(fault),
        None => {}
    }
    if let Some(failure) = shared.take_failure(operation) {
        return Err(failure_response(&failure, number));
    }
    match parsed {
        Ok(body) => Ok(Admitted { body, number, stream_fault }),
        Err(failure) => Err(failure_response(&failure, number)),
    }
}

/// `POST /model/{modelId}/invoke`.
async fn invoke_model(State(shared): State<Shared>, Path(model_id): Path<String>, body: Bytes) -> Response {
    let started = Instant::now();
    let Admitted { body: value, number, .. } = match prelude(&shared, Operation::InvokeModel, &model_id, &body).await {
        Ok(admitted) => admitted,
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
    let prebuilt = shared.lock().prebuilt.clone();
    if let Some(prebuilt) = prebuilt.filter(|_| !filtered) {
        return timed(&shared, number, prebuilt.answer(family, number));
    }
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
    timed(&shared, number, response)
}

/// InvokeModel answers built once for [`BedrockStandIn::answer_images_at_once`], one per
/// answer shape.
#[derive(Debug)]
struct Prebuilt {
    png_bytes: usize,
    sdxl: Bytes,
    titan: Bytes,
    stability: Bytes,
}

impl Prebuilt {
    fn new(width: u32, height: u32) -> Self {
        let png = images::textured_png(width, height);
        let png_bytes = png.len();
        let base64 = base64::engine::general_purpose::STANDARD.encode(png);
        let body = |value: Value| Bytes::from(value.to_string());
        Self {
            png_bytes,
            sdxl: body(
                json!({ "result": "success", "artifacts": [{ "seed": 7, "base64": base64, "finishReason": "SUCCESS" }] }),
            ),
            titan: body(json!({ "images": [base64], "error": null })),
            stability: body(json!({ "seeds": [7], "finish_reasons": [null], "images": [base64] })),
        }
    }

    fn answer(&self, family: images::Family, number: u64) -> Response {
        let body = match family {
            images::Family::Sdxl => self.sdxl.clone(),
            images::Family::Titan(_) => self.titan.clone(),
            _ => self.stability.clone(),
        };
        let mut response = Response::new(Body::from(body));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Ok(id) = HeaderValue::from_str(&request_id(number)) {
            headers.insert("x-amzn-requestid", id);
        }
        headers.insert("x-amzn-bedrock-invocation-latency", HeaderValue::from_static("0"));
        response
    }
}

/// The response with its body wrapped so that the call's `answered_at` is recorded when the
/// body's last bytes are handed to the connection (hyper writes them straight after).
fn timed(shared: &Shared, number: u64, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::new(TimedBody { inner: body, shared: shared.clone(), number, done: false }))
}

struct TimedBody {
    inner: Body,
    shared: Shared,
    number: u64,
    done: bool,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(context);
        // With a known length the server never polls past the last frame, so the end is when
        // the inner body says it has nothing more.
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(_)) => self.inner.is_end_stream(),
            Poll::Pending => false,
        };
        if ended && !self.done {
            self.done = true;
            self.shared.answered(self.number, Instant::now());
        }
        polled
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

/// `POST /model/{modelId}/converse`.
async fn converse(State(shared): State<Shared>, Path(model_id): Path<String>, body: Bytes) -> Response {
    let started = Instant::now();
    let Admitted { body: value, number, .. } = match prelude(&shared, Operation::Converse, &model_id, &body).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let conversation = match chat::check_model(&model_id).and_then(|()| chat::check_conversation(&value)) {
        Ok(conversation) => conversation,
        Err(invalid) => return failure_response(&invalid.into(), number),
    };
    let reply = chat::reply(&conversation, &shared.take_shaping(Operation::Converse));
    let latency = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    timed(&shared, number, json_response(&chat::converse_output(&reply, latency), number))
}

/// `POST /model/{modelId}/converse-stream`: an `application/vnd.amazon.eventstream` body.
async fn converse_stream(State(shared): State<Shared>, Path(model_id): Path<String>, body: Bytes) -> Response {
    let started = Instant::now();
    let Admitted { body: value, number, stream_fault } =
        match prelude(&shared, Operation::ConverseStream, &model_id, &body).await {
            Ok(admitted) => admitted,
            Err(response) => return response,
        };
    let conversation = match chat::check_model(&model_id).and_then(|()| chat::check_conversation(&value)) {
        Ok(conversation) => conversation,
        Err(invalid) => return failure_response(&invalid.into(), number),
    };
    let shaping = shared.take_shaping(Operation::ConverseStream);
    let reply = chat::reply(&conversation, &shaping);
    let ending = match stream_fault {
        Some(Fault::StreamException { after, exception }) => Ending::Exception { after, exception },
        Some(Fault::StreamDrop { after } | Fault::StreamStall { after }) => Ending::Cut { after },
        _ if shaping.mid_stream_error => Ending::Exception { after: 2, exception: "modelStreamErrorException" },
        _ => Ending::Complete,
    };
    let frames = chat::stream_frames(&reply, ending);
    // Each chunk carries the delta's text, if it is one, so its sending time can be recorded.
    let (sender, receiver) = tokio::sync::mpsc::channel::<(Result<Bytes, std::io::Error>, Option<String>)>(4);
    let pacing = shared.clone();
    tokio::spawn(async move {
        let shared = pacing;
        for (index, frame) in frames.into_iter().enumerate() {
            // Events come one by one, paced by the scripted Delay, so streaming is observable.
            let delay = shared.delay();
            if index > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if sender.send((Ok(frame.encode(started)), frame.delta_text())).await.is_err() {
                return;
            }
        }
        match stream_fault {
            // An error in the body makes the server abort the connection in the middle of
            // the chunked body, as a connection lost on the way would.
            Some(Fault::StreamDrop { .. }) => {
                // The pieces already sent reach the client first, as on a connection lost
                // after them: the server would otherwise abort with them still in its buffer.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = sender.send((Err(std::io::Error::other("the stand-in dropped the connection")), None)).await;
            }
            // Silence, with the connection open, until the client gives up and hangs up.
            Some(Fault::StreamStall { .. }) => sender.closed().await,
            _ => {}
        }
    });
    let stream = futures::stream::unfold((receiver, shared), move |(mut receiver, shared)| async move {
        match receiver.recv().await {
            Some((chunk, delta)) => {
                if let Some(text) = delta {
                    shared.delta_sent(number, Instant::now(), text);
                }
                Some((chunk, (receiver, shared)))
            }
            None => {
                shared.answered(number, Instant::now());
                None
            }
        }
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
    let Admitted { body: value, number, .. } =
        match prelude(&shared, Operation::ApplyGuardrail, &guardrail_id, &body).await {
            Ok(admitted) => admitted,
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
