//! JMAP over WebSocket (RFC 8887) at `/jmap/ws`: the `jmap` subprotocol
//! carries Requests and their Responses (with `requestId`), request-level
//! errors as RequestError problems, and, once the client sends
//! WebSocketPushEnable, StateChange pushes with a `pushState` (the
//! account's state: a client that gives it back on a new connection gets
//! what changed since at once). The credentials of the upgrade request
//! hold for the connection.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::JmapUser;
use crate::directory::Account;
use crate::http::AppState;

pub(super) async fn upgrade(
    State(st): State<AppState>,
    JmapUser(user, cred): JmapUser,
    ws: WebSocketUpgrade,
) -> Response {
    // §4.1: the client asks for the jmap subprotocol; without it the
    // upgrade is refused.
    let ws = ws.protocols(["jmap"]);
    if ws.selected_protocol().is_none() {
        return (
            StatusCode::BAD_REQUEST,
            "ask for the WebSocket subprotocol `jmap` (RFC 8887 §4.1)",
        )
            .into_response();
    }
    let core = st.core.clone();
    ws.max_message_size(core.config.jmap.max_size_request)
        .on_upgrade(move |socket| serve(socket, core, user, cred))
}

use super::watch::Watch;

async fn serve(mut socket: WebSocket, core: crate::core::SharedCore, user: Account, cred: String) {
    tracing::debug!(account = %user.address, "JMAP WebSocket opened");
    metrics::counter!("petrel_jmap_websocket_connections_total").increment(1);
    let mut changes = core.mail.subscribe();
    let mut push: Option<Watch> = None;
    loop {
        tokio::select! {
            msg = socket.recv() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    // §4.3.1: binary frames close the connection (1003).
                    Some(Ok(Message::Binary(_))) => {
                        let _ = socket
                            .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                                code: 1003,
                                reason: "JMAP messages are text frames".into(),
                            })))
                            .await;
                        return;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                let reply = handle(&core, &user, &cred, text.as_str(), &mut push).await;
                for r in reply {
                    if socket.send(Message::Text(r.to_string().into())).await.is_err() {
                        return;
                    }
                }
            }
            changed = changes.recv(), if push.is_some() => {
                let p = push.as_mut().expect("push is on");
                match changed {
                    Err(RecvError::Closed) => return,
                    Ok(acct) if !p.follows(acct) && !p.is_user(acct) => continue,
                    // A grant to the user may add or drop a shared account.
                    Ok(acct) if !p.is_user(acct) => {}
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        let _ = p.refresh(&core).await;
                    }
                }
                if let Some(v) = state_push(&core, p).await {
                    if socket.send(Message::Text(v.to_string().into())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// A StateChange with its pushState, if something the client follows
/// changed.
async fn state_push(core: &crate::core::Core, p: &mut Watch) -> Option<Value> {
    let mut v = p.change(core).await?;
    v["pushState"] = json!(p.state());
    Some(v)
}

/// One client message: what goes back.
async fn handle(
    core: &crate::core::SharedCore,
    user: &Account,
    cred: &str,
    text: &str,
    push: &mut Option<Watch>,
) -> Vec<Value> {
    let problem = |p: super::request::Problem, id: Option<&Value>| {
        let mut v = p.body();
        v["@type"] = json!("RequestError");
        if let Some(id) = id {
            v["requestId"] = id.clone();
        }
        v
    };
    let parsed: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return vec![problem(
                super::request::Problem::not_json(format!("not JSON: {e}")),
                None,
            )]
        }
    };
    let id = parsed.get("id").filter(|v| v.is_string()).cloned();
    match parsed.get("@type").and_then(Value::as_str) {
        Some("Request") => {
            // The Request object without the WebSocket members (§4.3.2).
            let mut req = parsed.clone();
            if let Some(o) = req.as_object_mut() {
                o.remove("@type");
                o.remove("id");
            }
            match super::execute(core, user, cred, req.to_string().as_bytes()).await {
                Ok(mut out) => {
                    out["@type"] = json!("Response");
                    if let Some(id) = id {
                        out["requestId"] = id;
                    }
                    vec![out]
                }
                Err(p) => vec![problem(p, id.as_ref())],
            }
        }
        Some("WebSocketPushEnable") => {
            let types: Vec<String> = match parsed.get("dataTypes") {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect(),
                _ => super::push::TYPES.iter().map(|t| t.to_string()).collect(),
            };
            // §4.3.5.2: from a pushState the client had, what changed since.
            let since = parsed.get("pushState").and_then(Value::as_str);
            let mut p = match Watch::start(core, user.id, types, since).await {
                Ok(p) => p,
                Err(e) => {
                    return vec![problem(
                        super::request::Problem::unavailable(format!(
                            "the store is unavailable, try again: {e}"
                        )),
                        id.as_ref(),
                    )]
                }
            };
            let first = state_push(core, &mut p).await;
            *push = Some(p);
            first.into_iter().collect()
        }
        Some("WebSocketPushDisable") => {
            *push = None;
            Vec::new()
        }
        _ => vec![problem(
            super::request::Problem::not_request(
                "@type must be Request, WebSocketPushEnable or WebSocketPushDisable",
            ),
            id.as_ref(),
        )],
    }
}
