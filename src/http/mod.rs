//! The HTTP listener: the management API under /api (JSON, HTTP Basic auth
//! of an admin account).

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

mod autoconfig;
mod dns;
mod health;
mod queue;
mod redirect;
mod security;
mod sieve;
mod spam;
mod status;
mod tokens;

pub use autoconfig::autodiscover_request;
pub use redirect::redirect_router;

use crate::core::{Core, SharedCore};
use crate::directory::{Account, AccountPatch, DirError, Login, NewAccount, Role};

pub struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.0, Json(json!({ "error": self.1 }))).into_response();
        // RFC 9110 §11.6.1: a 401 names the scheme that would work.
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"petrel\", charset=\"UTF-8\""),
            );
        }
        r
    }
}

impl From<DirError> for ApiError {
    fn from(e: DirError) -> Self {
        let code = match &e {
            DirError::Invalid(_) => StatusCode::BAD_REQUEST,
            DirError::NotFound(_) => StatusCode::NOT_FOUND,
            DirError::Conflict(_) => StatusCode::CONFLICT,
            DirError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(code, e.to_string())
    }
}

impl From<crate::mail::MailError> for ApiError {
    fn from(e: crate::mail::MailError) -> Self {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// Checks HTTP Basic credentials of an enabled admin account.
async fn require_admin(
    core: &Core,
    headers: &HeaderMap,
    ip: Option<std::net::IpAddr>,
) -> ApiResult<Account> {
    let unauthorized = || {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "authentication required: HTTP Basic with an admin account".into(),
        )
    };
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .ok_or_else(unauthorized)?;
    let decoded = crate::directory::sasl::b64_decode(value).ok_or_else(unauthorized)?;
    let decoded = String::from_utf8(decoded).map_err(|_| unauthorized())?;
    let (user, pass) = decoded.split_once(':').ok_or_else(unauthorized)?;
    let ip = ip.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    match core.directory.login(ip, user, pass).await? {
        Login::Ok(a) if a.role == Role::Admin => Ok(a),
        Login::Ok(_) => Err(ApiError(
            StatusCode::FORBIDDEN,
            "this account is not an administrator".into(),
        )),
        Login::Failed => Err(unauthorized()),
        Login::Blocked(_) => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "this password is a well-known one and is blocked: set a new one".into(),
        )),
        Login::Throttled => Err(ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed logins, try again later".into(),
        )),
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) core: SharedCore,
}

/// An authenticated administrator; handlers that take one are protected.
pub(crate) struct Admin(pub(crate) Account);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> ApiResult<Admin> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        require_admin(&st.core, &parts.headers, ip).await.map(Admin)
    }
}

#[derive(Deserialize)]
struct NewDomain {
    name: String,
}

#[derive(Deserialize)]
struct CatchAll {
    catch_all: Option<String>,
}

#[derive(Deserialize)]
struct NewGroup {
    address: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct Member {
    address: String,
}

#[derive(Deserialize)]
struct Alias {
    address: String,
}

fn account_json(a: &Account) -> serde_json::Value {
    json!({
        "id": a.id,
        "address": a.address,
        "name": a.name,
        "aliases": a.aliases,
        "quota_bytes": a.quota_bytes,
        "quota_messages": a.quota_messages,
        "role": a.role,
        "enabled": a.enabled,
    })
}

pub fn router(core: SharedCore) -> Router {
    let st = AppState { core };
    Router::new()
        .route("/api/domains", get(list_domains).post(create_domain))
        .route(
            "/api/domains/{name}",
            delete(delete_domain).patch(patch_domain),
        )
        .route("/api/accounts", get(list_accounts).post(create_account))
        .route(
            "/api/accounts/{address}",
            get(show_account)
                .patch(update_account)
                .delete(delete_account),
        )
        .route("/api/accounts/{address}/aliases", post(add_alias))
        .route(
            "/api/accounts/{address}/aliases/{alias}",
            delete(remove_alias),
        )
        .route("/api/groups", get(list_groups).post(create_group))
        .route("/api/groups/{address}", delete(delete_group))
        .route("/api/groups/{address}/members", post(add_member))
        .route(
            "/api/groups/{address}/members/{member}",
            delete(remove_member),
        )
        .merge(queue::routes())
        .merge(tokens::routes())
        .merge(sieve::routes())
        .merge(spam::routes())
        .merge(health::routes())
        .merge(autoconfig::routes())
        .merge(dns::routes())
        .merge(status::routes())
        .merge(security::routes())
        .merge(crate::jmap::routes())
        .route("/.well-known/mta-sts.txt", get(mta_sts_policy))
        .route(
            "/.well-known/acme-challenge/{token}",
            get(redirect::acme_challenge),
        )
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .with_state(st)
}

/// RFC 8461 §3.2: the policy, as text/plain, for whoever asks.
async fn mta_sts_policy(State(st): State<AppState>) -> Response {
    match crate::queue::mta_sts::own_policy(&st.core) {
        Some(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => ApiError(
            StatusCode::NOT_FOUND,
            "no MTA-STS policy is published".into(),
        )
        .into_response(),
    }
}

async fn list_domains(
    State(st): State<AppState>,
    _admin: Admin,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(json!(st.core.directory.list_domains().await?)))
}

async fn create_domain(
    State(st): State<AppState>,
    _admin: Admin,
    Json(d): Json<NewDomain>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let d = st.core.directory.create_domain(&d.name).await?;
    // Its mta-sts./autoconfig./autodiscover. names may belong on the
    // ACME certificate now.
    st.core.acme.recheck();
    Ok((StatusCode::CREATED, Json(json!(d))))
}

async fn patch_domain(
    State(st): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
    Json(c): Json<CatchAll>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(json!(
        st.core.directory.set_catch_all(&name, c.catch_all).await?
    )))
}

async fn delete_domain(
    State(st): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    st.core.directory.delete_domain(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_accounts(
    State(st): State<AppState>,
    _admin: Admin,
) -> ApiResult<Json<serde_json::Value>> {
    let list: Vec<_> = st
        .core
        .directory
        .list_accounts()
        .await?
        .iter()
        .map(account_json)
        .collect();
    Ok(Json(json!(list)))
}

async fn create_account(
    State(st): State<AppState>,
    _admin: Admin,
    Json(n): Json<NewAccount>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let a = st.core.directory.create_account(n).await?;
    st.core.mail.init_account(a.id).await?;
    Ok((StatusCode::CREATED, Json(account_json(&a))))
}

async fn show_account(
    State(st): State<AppState>,
    _admin: Admin,
    Path(addr): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let a = st
        .core
        .directory
        .get_account(&addr)
        .await?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no account `{addr}`")))?;
    let usage = st.core.mail.account_usage(a.id).await?;
    let mut v = account_json(&a);
    v["used_bytes"] = json!(usage.used_bytes);
    v["messages"] = json!(usage.messages);
    Ok(Json(v))
}

async fn update_account(
    State(st): State<AppState>,
    _admin: Admin,
    Path(addr): Path<String>,
    Json(p): Json<AccountPatch>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(account_json(
        &st.core.directory.update_account(&addr, p).await?,
    )))
}

async fn delete_account(
    State(st): State<AppState>,
    _admin: Admin,
    Path(addr): Path<String>,
) -> ApiResult<StatusCode> {
    if _admin.0.address.eq_ignore_ascii_case(&addr) {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "an administrator cannot delete its own account".into(),
        ));
    }
    let a = st.core.directory.delete_account(&addr).await?;
    st.core.mail.delete_account(a.id).await?;
    // Its spam token database and what it learnt go with it.
    st.core.spam.db.drop_scope(a.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_alias(
    State(st): State<AppState>,
    _admin: Admin,
    Path(addr): Path<String>,
    Json(a): Json<Alias>,
) -> ApiResult<Json<serde_json::Value>> {
    let p = AccountPatch {
        add_aliases: vec![a.address],
        ..Default::default()
    };
    Ok(Json(account_json(
        &st.core.directory.update_account(&addr, p).await?,
    )))
}

async fn remove_alias(
    State(st): State<AppState>,
    _admin: Admin,
    Path((addr, alias)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    let p = AccountPatch {
        remove_aliases: vec![alias],
        ..Default::default()
    };
    Ok(Json(account_json(
        &st.core.directory.update_account(&addr, p).await?,
    )))
}

async fn list_groups(
    State(st): State<AppState>,
    _admin: Admin,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(json!(st.core.directory.list_groups().await?)))
}

async fn create_group(
    State(st): State<AppState>,
    _admin: Admin,
    Json(g): Json<NewGroup>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let g = st.core.directory.create_group(&g.address, &g.name).await?;
    Ok((StatusCode::CREATED, Json(json!(g))))
}

async fn delete_group(
    State(st): State<AppState>,
    _admin: Admin,
    Path(addr): Path<String>,
) -> ApiResult<StatusCode> {
    st.core.directory.delete_group(&addr).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_member(
    State(st): State<AppState>,
    _admin: Admin,
    Path(addr): Path<String>,
    Json(m): Json<Member>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(json!(
        st.core.directory.add_member(&addr, &m.address).await?
    )))
}

async fn remove_member(
    State(st): State<AppState>,
    _admin: Admin,
    Path((addr, member)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(json!(
        st.core.directory.remove_member(&addr, &member).await?
    )))
}
