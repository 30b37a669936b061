//! A stand-in for Discord's REST API on loopback, following its documented objects field for
//! field, that records every request the real serenity client sends it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{Value, json};

/// The application id the stand-in answers `/oauth2/applications/@me` with.
pub const APPLICATION_ID: &str = "1100000000000000001";

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Clone, Default)]
struct Shared {
    requests: Arc<Mutex<Vec<Recorded>>>,
}

/// The running stand-in.
pub struct DiscordStandIn {
    pub address: SocketAddr,
    shared: Shared,
}

impl DiscordStandIn {
    pub async fn start() -> Self {
        let shared = Shared::default();
        let app = Router::new()
            .route("/api/v10/oauth2/applications/@me", get(current_application))
            .route("/api/v10/applications/{application}/commands", put(set_global_commands))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { address, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }
}

fn record(shared: &Shared, method: &str, path: String, headers: &HeaderMap, body: Value) {
    let authorization = headers.get("authorization").and_then(|value| value.to_str().ok()).map(String::from);
    shared.requests.lock().unwrap().push(Recorded { method: method.into(), path, authorization, body });
}

/// `GET /oauth2/applications/@me`: the application object, as Discord documents it.
async fn current_application(State(shared): State<Shared>, headers: HeaderMap) -> Json<Value> {
    record(&shared, "GET", "/api/v10/oauth2/applications/@me".into(), &headers, Value::Null);
    Json(json!({
        "id": APPLICATION_ID,
        "name": "Atelier",
        "icon": null,
        "description": "Make images together",
        "rpc_origins": [],
        "bot_public": true,
        "bot_require_code_grant": false,
        "verify_key": "1e0a356058d627ca38a5c8c9648818061d49e49bd9da9e3ab17d98ad4d6bg2u8",
        "team": null,
        "flags": 0,
        "owner": { "id": "1000000000000000009", "username": "operator", "discriminator": "0", "global_name": null, "avatar": null }
    }))
}

/// `PUT /applications/{id}/commands`: replaces the global commands and returns them with ids.
async fn set_global_commands(
    State(shared): State<Shared>,
    Path(application): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, StatusCode> {
    record(&shared, "PUT", format!("/api/v10/applications/{application}/commands"), &headers, body.clone());
    let commands = body.as_array().ok_or(StatusCode::BAD_REQUEST)?;
    let mut created = Vec::new();
    for (index, command) in commands.iter().enumerate() {
        // Discord requires a name and, for slash commands, a description of 1-100 characters.
        let name = command.get("name").and_then(Value::as_str).ok_or(StatusCode::BAD_REQUEST)?;
        let description = command.get("description").and_then(Value::as_str).unwrap_or_default();
        if command.get("type").and_then(Value::as_u64).unwrap_or(1) == 1
            && !(1..=100).contains(&description.chars().count())
        {
            return Err(StatusCode::BAD_REQUEST);
        }
        created.push(json!({
            "id": format!("12000000000000000{index:02}"),
            "application_id": application,
            "version": "1200000000000000100",
            "type": command.get("type").cloned().unwrap_or(json!(1)),
            "name": name,
            "description": description,
            "options": command.get("options").cloned().unwrap_or(json!([])),
            "default_member_permissions": null,
            "dm_permission": true,
            "nsfw": false,
            "integration_types": [0],
            "contexts": null
        }));
    }
    Ok(Json(Value::Array(created)))
}
