//! JMAP push over an event source (RFC 8620 §7.3, §7.1): a `state` event
//! with a StateChange whenever the account's mail changes (SMTP delivery,
//! IMAP, JMAP alike: the store's change notifications), `ping` events at
//! the asked interval, `closeafter=state` ending the response after one
//! change. EmailDelivery (RFC 8621 §1.5) changes only when mail arrives.
//! The accounts sharing mailboxes with the user push too (see `watch`).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::JmapUser;
use crate::core::SharedCore;
use crate::http::AppState;

use super::watch::Watch;
pub(super) use super::watch::TYPES;

/// The ping interval bounds (§7.3: a minimum of at most 30 s and a
/// maximum of at least 300 s).
const PING_MIN: u64 = 1;
const PING_MAX: u64 = 300;

#[derive(Deserialize)]
pub(super) struct Params {
    types: Option<String>,
    closeafter: Option<String>,
    ping: Option<String>,
}

struct Stream {
    core: SharedCore,
    rx: tokio::sync::broadcast::Receiver<u32>,
    /// The accounts followed (the own and the shared ones) and the
    /// states sent last.
    watch: Watch,
    close_after_state: bool,
    ping: Option<Duration>,
    /// Set once a `state` event went out with closeafter=state.
    done: bool,
    /// Events computed but not sent yet (the first, on reconnection).
    pending: Option<Event>,
}

fn bad_request(why: &str) -> Response {
    (
        axum::http::StatusCode::BAD_REQUEST,
        axum::Json(json!({"type": "about:blank", "status": 400, "detail": why})),
    )
        .into_response()
}

pub(super) async fn event_source(
    State(st): State<AppState>,
    JmapUser(user, _): JmapUser,
    Query(p): Query<Params>,
    headers: HeaderMap,
) -> Response {
    let types: Vec<String> = match p.types.as_deref().unwrap_or("*") {
        "*" => TYPES.iter().map(|t| t.to_string()).collect(),
        list => list.split(',').map(|t| t.trim().to_string()).collect(),
    };
    let close_after_state = match p.closeafter.as_deref().unwrap_or("no") {
        "state" => true,
        "no" => false,
        _ => return bad_request("closeafter must be state or no"),
    };
    let ping = match p.ping.as_deref().unwrap_or("0").parse::<u64>() {
        Ok(0) => None,
        Ok(n) => Some(Duration::from_secs(n.clamp(PING_MIN, PING_MAX))),
        Err(_) => return bad_request("ping must be a number of seconds"),
    };
    let core = st.core.clone();
    let rx = core.mail.subscribe();
    // A reconnecting client says where it was (the event id is the
    // state): what changed since is sent at once (§7.3).
    let since = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let watch = match Watch::start(&core, user.id, types, since).await {
        Ok(w) => w,
        Err(e) => {
            return (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!("the store is unavailable, try again: {e}"),
            )
                .into_response()
        }
    };
    let mut s = Stream {
        core,
        rx,
        watch,
        close_after_state,
        ping,
        done: false,
        pending: None,
    };
    if since.is_some() {
        s.pending = state_event(&mut s).await;
    }
    let stream = futures_util::stream::unfold(s, |mut s| async move {
        loop {
            if s.done {
                return None;
            }
            if let Some(ev) = s.pending.take() {
                s.done = s.close_after_state;
                return Some((Ok::<Event, Infallible>(ev), s));
            }
            let wait = s.ping.unwrap_or(Duration::from_secs(86_400 * 365));
            let got = tokio::time::timeout(wait, s.rx.recv()).await;
            match got {
                Err(_) => {
                    let interval = s.ping.map_or(0, |d| d.as_secs());
                    let ev = Event::default()
                        .event("ping")
                        .data(json!({ "interval": interval }).to_string());
                    return Some((Ok(ev), s));
                }
                Ok(Err(RecvError::Closed)) => return None,
                Ok(Ok(acct)) if !s.watch.follows(acct) && !s.watch.is_user(acct) => continue,
                Ok(r) => {
                    // A grant to the user (its own notification) may add
                    // or drop a shared account.
                    if r.as_ref().map_or(true, |a| s.watch.is_user(*a)) {
                        let _ = s.watch.refresh(&s.core).await;
                    }
                    if let Some(ev) = state_event(&mut s).await {
                        s.pending = Some(ev);
                    }
                }
            }
        }
    });
    Sse::new(stream).into_response()
}

/// The StateChange for what happened since the states sent last, if it
/// concerns one of the asked types; its id is the new state string.
async fn state_event(s: &mut Stream) -> Option<Event> {
    let body = s.watch.change(&s.core).await?;
    Some(
        Event::default()
            .event("state")
            .id(s.watch.state())
            .data(body.to_string()),
    )
}
