//! JMAP push over an event source (RFC 8620 §7.3, §7.1): a `state` event
//! with a StateChange whenever the account's mail changes (SMTP delivery,
//! IMAP, JMAP alike: the store's change notifications), `ping` events at
//! the asked interval, `closeafter=state` ending the response after one
//! change. EmailDelivery (RFC 8621 §1.5) changes only when mail arrives.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::broadcast::error::RecvError;

use super::JmapUser;
use crate::core::SharedCore;
use crate::http::AppState;

/// Types a StateChange can name for a mail account.
pub(super) const TYPES: &[&str] = &["Email", "Mailbox", "Thread", "EmailDelivery"];

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
    acct: u32,
    last: u64,
    types: Vec<String>,
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
    let current = match core.mail.account_usage(user.id).await {
        Ok(s) => s.state,
        Err(e) => {
            return (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!("the store is unavailable, try again: {e}"),
            )
                .into_response()
        }
    };
    // A reconnecting client says where it was (the event id is the
    // state): what changed since is sent at once (§7.3).
    let since = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s <= current);
    let mut s = Stream {
        core,
        rx,
        acct: user.id,
        last: since.unwrap_or(current),
        types,
        close_after_state,
        ping,
        done: false,
        pending: None,
    };
    if since.is_some_and(|since| since < current) {
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
                Ok(Ok(acct)) if acct != s.acct => continue,
                Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) => {
                    if let Some(ev) = state_event(&mut s).await {
                        s.pending = Some(ev);
                    }
                }
                Ok(Err(RecvError::Closed)) => return None,
            }
        }
    });
    Sse::new(stream).into_response()
}

/// The StateChange for what happened since `s.last`, if it concerns one
/// of the asked types; moves `s.last` on.
async fn state_event(s: &mut Stream) -> Option<Event> {
    let (state, body) = state_change(&s.core, s.acct, &mut s.last, &s.types).await?;
    Some(
        Event::default()
            .event("state")
            .id(state.to_string())
            .data(body.to_string()),
    )
}

/// The StateChange object (§7.1) for what changed in account `acct`
/// since `*last` among `types`, with the state it reached; moves
/// `*last` on. The event source and the WebSocket push both use it.
pub(super) async fn state_change(
    core: &crate::core::Core,
    acct: u32,
    last: &mut u64,
    types: &[String],
) -> Option<(u64, Value)> {
    let mail = &core.mail;
    let current = mail.account_usage(acct).await.ok()?.state;
    if current <= *last {
        return None;
    }
    let records = mail.changes_since(acct, *last, 100_000).await.ok()?;
    let mut emails = false;
    let mut mailboxes = false;
    let mut threads = false;
    let mut delivery = None;
    for (state, c) in &records {
        if *state > current {
            break;
        }
        let any_email = !(c.created.is_empty() && c.updated.is_empty() && c.destroyed.is_empty());
        emails |= any_email;
        mailboxes |= any_email || !c.mailboxes.is_empty();
        threads |= !(c.created.is_empty() && c.destroyed.is_empty());
        if !c.created.is_empty() {
            delivery = Some(*state);
        }
    }
    *last = current;
    let state = current.to_string();
    let mut changed = Map::new();
    for (t, yes) in [
        ("Email", emails),
        ("Mailbox", mailboxes),
        ("Thread", threads),
    ] {
        if yes && types.iter().any(|x| x == t) {
            changed.insert(t.into(), json!(state));
        }
    }
    if let Some(d) = delivery.filter(|_| types.iter().any(|x| x == "EmailDelivery")) {
        changed.insert("EmailDelivery".into(), json!(d.to_string()));
    }
    if changed.is_empty() {
        return None;
    }
    Some((
        current,
        json!({
            "@type": "StateChange",
            "changed": { super::id::account(acct): Value::Object(changed) }
        }),
    ))
}
