//! `/healthz` and `/readyz`, without authentication, for load balancers,
//! orchestrators and monitoring: the first says the process answers, the
//! second that it can take mail (the store accepts a synced write, every
//! listener is bound, the queue worker goes round).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;

/// The key the readiness probe writes (a timestamp, overwritten).
const PROBE_KEY: &[u8] = b"c/readyz-probe";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Response {
    (StatusCode::OK, Json(json!({ "status": "ok" }))).into_response()
}

/// Ready when a synced store write completes within 5 s (the path every
/// delivery, APPEND and flag change takes), the listeners are bound and
/// the queue worker is alive. 503 with the reasons otherwise.
async fn readyz(State(st): State<AppState>) -> Response {
    let now = crate::core::unix_now().to_be_bytes().to_vec();
    let write = st.core.store.transact(move |txn| {
        txn.put(PROBE_KEY.to_vec(), now);
        Ok(())
    });
    let store = match tokio::time::timeout(Duration::from_secs(5), write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("the store refuses writes: {e}")),
        Err(_) => Err("a store write took over 5 s".to_string()),
    };
    let listeners = match st.core.listeners.get() {
        Some(_) => Ok(()),
        None => Err("the listeners are not all bound yet".to_string()),
    };
    let queue = match st.core.queue.worker_idle() {
        Some(s) if s <= WORKER_STALLED => Ok(()),
        Some(s) => Err(format!("the queue worker has not gone round for {s} s")),
        None => Err("the queue worker has not started".to_string()),
    };
    let show = |r: &Result<_, String>| match r {
        Ok(_) => "ok".to_string(),
        Err(e) => e.clone(),
    };
    let body = json!({
        "store": show(&store),
        "listeners": show(&listeners),
        "queue": show(&queue),
    });
    if store.is_ok() && listeners.is_ok() && queue.is_ok() {
        let mut body = body;
        body["status"] = json!("ready");
        (StatusCode::OK, Json(body)).into_response()
    } else {
        tracing::warn!("readyz: not ready: {body}");
        let mut body = body;
        body["status"] = json!("not ready");
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// Seconds without a round after which the queue worker counts as stuck
/// (it goes round at least every 30 s).
const WORKER_STALLED: i64 = 120;
