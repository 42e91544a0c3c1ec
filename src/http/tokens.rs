//! API tokens of an account in the management API (administrators):
//! `POST /api/accounts/{address}/tokens` makes one and answers with the
//! token string (shown this once), `GET` lists them, `DELETE
//! …/tokens/{id}` revokes one. The CLI's `petrel account token` uses
//! these endpoints.

use axum::extract::{Path, State};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Admin, ApiResult, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/accounts/{address}/tokens", get(list).post(create))
        .route("/api/accounts/{address}/tokens/{id}", delete(revoke))
}

#[derive(Deserialize)]
struct NewToken {
    #[serde(default)]
    name: String,
}

async fn create(
    State(st): State<AppState>,
    _admin: Admin,
    Path(addr): Path<String>,
    Json(t): Json<NewToken>,
) -> ApiResult<Json<Value>> {
    let (token, secret) = st.core.directory.create_token(&addr, &t.name).await?;
    Ok(Json(
        json!({ "id": token.id.to_string(), "name": token.name, "created": token.created, "token": secret }),
    ))
}

async fn list(
    State(st): State<AppState>,
    _admin: Admin,
    Path(addr): Path<String>,
) -> ApiResult<Json<Value>> {
    let list = st.core.directory.list_tokens(&addr).await?;
    Ok(Json(json!(list
        .iter()
        .map(|t| json!({ "id": t.id.to_string(), "name": t.name, "created": t.created }))
        .collect::<Vec<_>>())))
}

async fn revoke(
    State(st): State<AppState>,
    _admin: Admin,
    Path((addr, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let id: u64 = id.parse().map_err(|_| {
        super::ApiError(
            axum::http::StatusCode::BAD_REQUEST,
            format!("`{id}` is not a token id"),
        )
    })?;
    st.core.directory.revoke_token(&addr, id).await?;
    Ok(Json(json!({ "revoked": id.to_string() })))
}
