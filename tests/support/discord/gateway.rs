//! The gateway at `/gateway`: JSON text frames as developers/events/gateway.mdx describes them.
//! HELLO on connect; IDENTIFY starts a session (READY, GUILD_CREATE); heartbeats are
//! acknowledged; RESUME replays what a session missed, then RESUMED.

use std::sync::Arc;

use axum::extract::State as AxumState;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Shared;
use super::state::{Connection, Outgoing, id_string};

/// Milliseconds between heartbeats, told in HELLO. Discord says 41250; a short interval makes
/// the heartbeat exchange happen within a test.
const HEARTBEAT_INTERVAL_MS: u64 = 1000;

pub(super) async fn upgrade(AxumState(shared): AxumState<Arc<Shared>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| serve(shared, socket))
}

/// What one frame from the client calls for.
enum Step {
    Continue,
    Reply(String),
    /// Close with a gateway close code (gateway.mdx "Gateway Close Event Codes").
    Close(u16, &'static str),
}

async fn serve(shared: Arc<Shared>, mut socket: WebSocket) {
    let (sender, mut outgoing) = mpsc::unbounded_channel();
    let connection_id = shared.lock().next_connection_id();
    let hello = json!({ "op": 10, "d": { "heartbeat_interval": HEARTBEAT_INTERVAL_MS }, "s": null, "t": null });
    if socket.send(Message::Text(hello.to_string().into())).await.is_err() {
        return;
    }
    let mut identified = false;
    let mut close_code = None;
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let step = match incoming {
                    Some(Ok(Message::Text(text))) => {
                        answer(&shared, Connection { id: connection_id, sender: sender.clone() }, &mut identified, text.as_str())
                    }
                    // The stand-in speaks JSON only (no ETF, no compressed client frames).
                    Some(Ok(Message::Binary(_))) => Step::Close(4002, "Error while decoding payload."),
                    Some(Ok(Message::Close(frame))) => {
                        close_code = frame.map(|frame| frame.code);
                        break;
                    }
                    Some(Ok(_)) => Step::Continue,
                    Some(Err(_)) | None => break,
                };
                match step {
                    Step::Continue => {}
                    Step::Reply(frame) => {
                        if socket.send(Message::Text(frame.into())).await.is_err() {
                            break;
                        }
                    }
                    Step::Close(code, reason) => {
                        let frame = CloseFrame { code, reason: reason.into() };
                        let _ = socket.send(Message::Close(Some(frame))).await;
                        close_code = Some(code);
                        break;
                    }
                }
            }
            command = outgoing.recv() => match command {
                Some(Outgoing::Frame(frame)) => {
                    if socket.send(Message::Text(frame.into())).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Interaction { frame, id }) => {
                    if socket.send(Message::Text(frame.into())).await.is_err() {
                        break;
                    }
                    shared.lock().interaction_sent(&id, std::time::Instant::now());
                }
                Some(Outgoing::Drop(done)) => {
                    // Gone without a close frame, as when the network fails; the session stays resumable.
                    drop(socket);
                    let _ = done.send(());
                    return;
                }
                None => break,
            },
        }
    }
    shared.lock().disconnected(connection_id, close_code);
}

fn answer(shared: &Shared, connection: Connection, identified: &mut bool, text: &str) -> Step {
    let Ok(payload) = serde_json::from_str::<Value>(text) else {
        return Step::Close(4002, "Error while decoding payload.");
    };
    let data = &payload["d"];
    match payload["op"].as_u64() {
        // Heartbeat → Heartbeat ACK.
        Some(1) => {
            shared.lock().gateway.heartbeat_count += 1;
            Step::Reply(json!({ "op": 11, "d": null, "s": null, "t": null }).to_string())
        }
        // Identify.
        Some(2) => {
            if *identified {
                return Step::Close(4005, "Already authenticated.");
            }
            let mut state = shared.lock();
            state.gateway.identify_count += 1;
            if !data["token"].as_str().is_some_and(|token| state.accepts_token(token)) {
                return Step::Close(4004, "Authentication failed.");
            }
            let Some(intents) = data["intents"].as_u64() else {
                return Step::Close(4013, "Invalid intent(s).");
            };
            let shard = data.get("shard").filter(|shard| !shard.is_null()).cloned().unwrap_or(json!([0, 1]));
            let valid_shard = shard
                .as_array()
                .filter(|pair| pair.len() == 2)
                .and_then(|pair| Some((pair[0].as_u64()?, pair[1].as_u64()?)))
                .is_some_and(|(index, count)| index < count);
            if !valid_shard {
                return Step::Close(4010, "Invalid shard.");
            }
            state.identify(connection, intents, shard);
            *identified = true;
            Step::Continue
        }
        // Resume.
        Some(6) => {
            let mut state = shared.lock();
            if !data["token"].as_str().is_some_and(|token| state.accepts_token(token)) {
                return Step::Close(4004, "Authentication failed.");
            }
            let session_id = id_string(data.get("session_id"));
            let seq = data["seq"].as_u64().unwrap_or(0);
            if state.resume(connection, &session_id, seq) {
                *identified = true;
                Step::Continue
            } else {
                // Invalid Session, not resumable: the client must identify afresh.
                Step::Reply(json!({ "op": 9, "d": false, "s": null, "t": null }).to_string())
            }
        }
        // Presence, voice state, request guild members, request soundboard sounds: accepted, unused.
        Some(3 | 4 | 8 | 31) => Step::Continue,
        _ => Step::Close(4001, "Unknown opcode."),
    }
}
