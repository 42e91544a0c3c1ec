//! Queue, DKIM and search-index endpoints of the management API.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Admin, ApiError, ApiResult, AppState};
use crate::dkim::{Algorithm, DkimKey};
use crate::store::StoreError;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/queue", get(list))
        .route("/api/queue/{id}", get(show).delete(cancel))
        .route("/api/queue/{id}/retry", post(retry))
        .route("/api/search", get(search_status))
        .route(
            "/api/dkim/{domain}",
            get(show_dkim).post(create_dkim).delete(delete_dkim),
        )
}

/// Whether the full-text index is on and how many changes wait for it.
async fn search_status(State(st): State<AppState>, _a: Admin) -> ApiResult<Json<Value>> {
    let waiting = st.core.mail.fts_waiting(usize::MAX).await?;
    Ok(Json(
        json!({ "index": st.core.mail.fts.is_some(), "waiting": waiting }),
    ))
}

fn not_found(id: u64) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no queued message {id}"))
}

async fn list(State(st): State<AppState>, _a: Admin) -> ApiResult<Json<Value>> {
    Ok(Json(json!(st.core.queue.list().await?)))
}

async fn show(
    State(st): State<AppState>,
    _a: Admin,
    Path(id): Path<u64>,
) -> ApiResult<Json<Value>> {
    let e = st.core.queue.get(id).await?.ok_or_else(|| not_found(id))?;
    Ok(Json(json!(e)))
}

async fn retry(
    State(st): State<AppState>,
    _a: Admin,
    Path(id): Path<u64>,
) -> ApiResult<Json<Value>> {
    if !st.core.queue.retry_now(id).await? {
        return Err(not_found(id));
    }
    Ok(Json(json!({ "id": id, "scheduled": "now" })))
}

async fn cancel(
    State(st): State<AppState>,
    _a: Admin,
    Path(id): Path<u64>,
) -> ApiResult<StatusCode> {
    match st.core.queue.cancel(id).await? {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(not_found(id)),
    }
}

#[derive(Deserialize)]
struct NewKey {
    #[serde(default)]
    algorithm: Option<String>,
    #[serde(default)]
    selector: Option<String>,
    /// Replace an existing key.
    #[serde(default)]
    replace: bool,
}

fn dkim_json(key: &DkimKey, core: &crate::core::Core) -> Value {
    json!({
        "domain": key.domain,
        "selector": key.selector,
        "algorithm": key.algorithm,
        "created": key.created,
        "records": crate::dns::advice::records(
            &key.domain,
            &crate::core::Endpoints::of(core),
            Some(key),
            key.created,
        ),
    })
}

async fn create_dkim(
    State(st): State<AppState>,
    _a: Admin,
    Path(domain): Path<String>,
    Json(req): Json<NewKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let domain = crate::directory::normalize_domain(&domain)?;
    let algorithm: Algorithm = req
        .algorithm
        .as_deref()
        .unwrap_or("rsa")
        .parse()
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    let selector = req.selector.unwrap_or_else(|| {
        let kind = match algorithm {
            Algorithm::Rsa => "rsa",
            Algorithm::Ed25519 => "ed",
        };
        format!("petrel-{kind}-{}", crate::core::unix_now() / 86400)
    });
    if selector.is_empty()
        || !selector
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "the selector must be letters, digits, dots and hyphens".into(),
        ));
    }
    if !req.replace && crate::dkim::get(&st.core.store, &domain).await?.is_some() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("{domain} has a DKIM key already; pass replace to make a new one"),
        ));
    }
    let d = domain.clone();
    let key = tokio::task::spawn_blocking(move || DkimKey::generate(&d, &selector, algorithm))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    crate::dkim::put(&st.core.store, key.clone()).await?;
    Ok((StatusCode::CREATED, Json(dkim_json(&key, &st.core))))
}

async fn show_dkim(
    State(st): State<AppState>,
    _a: Admin,
    Path(domain): Path<String>,
) -> ApiResult<Json<Value>> {
    let key = crate::dkim::get(&st.core.store, &domain)
        .await?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no DKIM key for {domain}")))?;
    Ok(Json(dkim_json(&key, &st.core)))
}

async fn delete_dkim(
    State(st): State<AppState>,
    _a: Admin,
    Path(domain): Path<String>,
) -> ApiResult<StatusCode> {
    if crate::dkim::delete(&st.core.store, &domain).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no DKIM key for {domain}"),
        ))
    }
}
