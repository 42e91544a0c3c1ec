//! `/healthz` and `/readyz`, without authentication, for load balancers,
//! orchestrators and monitoring: the first says the process answers, the
//! second that it can take mail (the store accepts a synced write).

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

/// Ready when a synced store write completes within 5 s: the path every
/// delivery, APPEND and flag change takes. 503 with the reason otherwise.
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
    match store {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "store": "ok" })),
        )
            .into_response(),
        Err(why) => {
            tracing::warn!("readyz: not ready: {why}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "not ready", "store": why })),
            )
                .into_response()
        }
    }
}
