//! Users' Sieve scripts in the management API (administrators), what
//! `petrel sieve` calls: `GET /api/accounts/{address}/sieve` lists them
//! (name, active), `PUT …/sieve/{name}` stores one (`{"text": …,
//! "activate": bool}`; a script that does not compile or needs an
//! extension not offered is a 400 naming its line), `GET` and `DELETE`
//! on it, `POST …/sieve/{name}/rename` (`{"to": …}`), `PUT
//! …/sieve-active` (`{"name": …}` or null), and `POST /api/sieve/check`
//! to compile a script without storing it.
//!
//! Administrators' (global) scripts: `GET /api/sieve/global` lists them
//! (name, size, the SMTP stage that runs each), `PUT
//! /api/sieve/global/{name}` (`{"text": …}`), `GET` and `DELETE` on it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Admin, ApiError, ApiResult, AppState};
use crate::sieve::global;
use crate::sieve::scripts::{self, SieveError};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/accounts/{address}/sieve", get(list))
        .route(
            "/api/accounts/{address}/sieve/{name}",
            get(read).put(store).delete(remove),
        )
        .route("/api/accounts/{address}/sieve/{name}/rename", post(rename))
        .route("/api/accounts/{address}/sieve-active", put(activate))
        .route("/api/sieve/check", post(check))
        .route("/api/sieve/global", get(global_list))
        .route(
            "/api/sieve/global/{name}",
            get(global_read).put(global_store).delete(global_remove),
        )
}

impl From<SieveError> for ApiError {
    fn from(e: SieveError) -> Self {
        let code = match &e {
            SieveError::Invalid(_) | SieveError::Quota(_) => StatusCode::BAD_REQUEST,
            SieveError::NotFound(_) => StatusCode::NOT_FOUND,
            SieveError::Exists(_) | SieveError::Active(_) | SieveError::InUse(_) => {
                StatusCode::CONFLICT
            }
            SieveError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(code, e.to_string())
    }
}

/// The account an address names.
pub(super) async fn account(st: &AppState, addr: &str) -> ApiResult<u32> {
    st.core
        .directory
        .get_account(addr)
        .await?
        .map(|a| a.id)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no account `{addr}`")))
}

async fn list(
    State(st): State<AppState>,
    _admin: Admin,
    Path(addr): Path<String>,
) -> ApiResult<Json<Value>> {
    let acct = account(&st, &addr).await?;
    let (all, active) = scripts::list(&st.core.mail, acct).await?;
    Ok(Json(json!(all
        .iter()
        .map(|(id, s)| json!({"name": s.name, "active": Some(*id) == active, "size": s.text.len()}))
        .collect::<Vec<_>>())))
}

#[derive(Deserialize)]
struct NewScript {
    text: String,
    #[serde(default)]
    activate: bool,
}

async fn store(
    State(st): State<AppState>,
    _admin: Admin,
    Path((addr, name)): Path<(String, String)>,
    Json(s): Json<NewScript>,
) -> ApiResult<Json<Value>> {
    let acct = account(&st, &addr).await?;
    let mail = &st.core.mail;
    scripts::put(mail, &st.core.config.sieve, acct, &name, &s.text).await?;
    if s.activate {
        scripts::activate(mail, acct, Some(&name)).await?;
    }
    tracing::info!(account = %addr, script = %name, active = s.activate, "Sieve script stored");
    Ok(Json(json!({"name": name, "active": s.activate})))
}

async fn read(
    State(st): State<AppState>,
    _admin: Admin,
    Path((addr, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let acct = account(&st, &addr).await?;
    let s = scripts::get(&st.core.mail, acct, &name).await?;
    Ok(Json(json!({"name": s.name, "text": s.text})))
}

async fn remove(
    State(st): State<AppState>,
    _admin: Admin,
    Path((addr, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let acct = account(&st, &addr).await?;
    scripts::delete(&st.core.mail, acct, &name).await?;
    tracing::info!(account = %addr, script = %name, "Sieve script deleted");
    Ok(Json(json!({"deleted": name})))
}

#[derive(Deserialize)]
struct Rename {
    to: String,
}

async fn rename(
    State(st): State<AppState>,
    _admin: Admin,
    Path((addr, name)): Path<(String, String)>,
    Json(r): Json<Rename>,
) -> ApiResult<Json<Value>> {
    let acct = account(&st, &addr).await?;
    scripts::rename(&st.core.mail, acct, &name, &r.to).await?;
    Ok(Json(json!({"name": r.to})))
}

#[derive(Deserialize)]
struct Activate {
    name: Option<String>,
}

async fn activate(
    State(st): State<AppState>,
    _admin: Admin,
    Path(addr): Path<String>,
    Json(a): Json<Activate>,
) -> ApiResult<Json<Value>> {
    let acct = account(&st, &addr).await?;
    scripts::activate(&st.core.mail, acct, a.name.as_deref()).await?;
    tracing::info!(account = %addr, script = ?a.name, "Sieve script activated");
    Ok(Json(json!({"active": a.name})))
}

#[derive(Deserialize)]
struct Check {
    text: String,
}

async fn check(
    State(st): State<AppState>,
    _admin: Admin,
    Json(c): Json<Check>,
) -> ApiResult<Json<Value>> {
    scripts::check(&st.core.config.sieve, &c.text)?;
    Ok(Json(json!({"ok": true})))
}

async fn global_list(State(st): State<AppState>, _admin: Admin) -> ApiResult<Json<Value>> {
    let cfg = &st.core.config.sieve;
    let all = global::all(&st.core).await?;
    Ok(Json(json!(all
        .iter()
        .map(|s| json!({"name": s.name, "size": s.text.len(), "stage": cfg.runs(&s.name).map(|r| r.0)}))
        .collect::<Vec<_>>())))
}

async fn global_read(
    State(st): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let s = global::get(&st.core, &name).await?;
    Ok(Json(json!({"name": s.name, "text": s.text})))
}

async fn global_store(
    State(st): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
    Json(s): Json<Check>,
) -> ApiResult<Json<Value>> {
    global::put(&st.core, &name, &s.text).await?;
    let stage = st.core.config.sieve.runs(&name).map(|r| r.0);
    tracing::info!(script = %name, stage = ?stage, "global Sieve script stored");
    Ok(Json(json!({"name": name, "stage": stage})))
}

async fn global_remove(
    State(st): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    global::delete(&st.core, &name).await?;
    tracing::info!(script = %name, "global Sieve script deleted");
    Ok(Json(json!({"deleted": name})))
}
