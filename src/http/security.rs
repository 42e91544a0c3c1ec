//! Failed-login lockouts (`petrel security lockouts|unlock`).

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Admin, ApiResult, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/security/lockouts", get(lockouts))
        .route("/api/security/unlock", post(unlock))
}

async fn lockouts(State(st): State<AppState>, _a: Admin) -> ApiResult<Json<Value>> {
    Ok(Json(json!(st.core.directory.guard.lockouts())))
}

#[derive(Deserialize)]
struct Unlock {
    target: String,
}

async fn unlock(
    State(st): State<AppState>,
    a: Admin,
    Json(u): Json<Unlock>,
) -> ApiResult<Json<Value>> {
    let cleared = st.core.directory.guard.unlock(u.target.trim());
    tracing::info!(admin = %a.0.address, target = %u.target, cleared, "unlock requested");
    Ok(Json(json!({ "target": u.target, "cleared": cleared })))
}
