//! JMAP (RFC 8620 core, RFC 8621 mail) on the HTTP listeners, on the same
//! mail store as IMAP: the session resource, the API endpoint and the
//! authentication in front of them. Request processing is in
//! [`request`] (no I/O), methods in [`methods`].
//!
//! Built so far: the session resource, the API endpoint with every
//! request-level error, result references and the limits, Core/echo and
//! Mailbox/get. The rest of issue 13 (Email, Thread, changes, set,
//! query, upload/download, push) is listed in the README as missing.

pub mod blob;
pub(crate) mod download;
pub mod id;
pub mod methods;
mod push;
pub mod pusher;
pub mod reports;
pub mod request;
mod watch;
pub mod webpush;
mod ws;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::directory::{Account, Login};
use crate::http::AppState;
use request::{Limits, Problem};

/// Marks a connection that came over TLS (set by the https listener).
#[derive(Clone, Copy)]
pub struct OverTls;

/// What JMAP keeps between requests: checked credentials (so that a
/// client sending Basic credentials with every request does not pay for
/// argon2 each time) and requests in flight per account.
#[derive(Default)]
pub struct JmapState {
    /// sha256 of the Authorization value → (account id, the stored
    /// password hash it was checked against, when the check expires).
    logins: Mutex<HashMap<[u8; 32], (u32, String, Instant)>>,
    in_flight: Mutex<HashMap<u32, usize>>,
}

/// How long a checked Basic credential is trusted without argon2; a
/// password change ends it at once (the stored hash is compared).
const LOGIN_CACHE: Duration = Duration::from_secs(300);

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/jmap", get(well_known))
        .route("/jmap/session", get(session))
        .route("/jmap/api", post(api))
        .route("/jmap/eventsource", get(push::event_source))
        .route(
            "/jmap/download/{account}/{blob}/{name}",
            get(download::download),
        )
        .route("/jmap/upload/{account}/", post(blob::upload))
        .route("/jmap/ws", get(ws::upgrade))
}

fn limits(core: &crate::core::Core) -> Limits {
    let c = &core.config.jmap;
    Limits {
        max_size_request: c.max_size_request,
        max_calls_in_request: c.max_calls_in_request,
        max_objects_in_get: c.max_objects_in_get,
        max_concurrent_requests: c.max_concurrent_requests,
    }
}

fn problem(p: Problem) -> Response {
    let mut r = (
        StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST),
        Json(p.body()),
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/problem+json"),
    );
    r
}

/// RFC 8620 §2.2: the well-known URL redirects to the session resource.
async fn well_known() -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, "/jmap/session")],
    )
        .into_response()
}

/// An authenticated mail account (HTTP Basic; over TLS unless
/// `jmap.auth-without-tls`).
/// The authenticated account and which credential authenticated it:
/// `password`, or `token:{id}` for a bearer token (push subscriptions
/// belong to a credential, RFC 8620 §7.2.1).
pub(crate) struct JmapUser(pub Account, pub String);

fn unauthorized(why: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"jmap\", charset=\"UTF-8\", Bearer realm=\"jmap\"",
        )],
        Json(json!({ "type": "about:blank", "status": 401, "detail": why })),
    )
        .into_response()
}

impl FromRequestParts<AppState> for JmapUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<JmapUser, Response> {
        let core = &st.core;
        if !core.config.jmap.enable {
            return Err((StatusCode::NOT_FOUND, "JMAP is off (jmap.enable)").into_response());
        }
        if parts.extensions.get::<OverTls>().is_none() && !core.config.jmap.auth_without_tls {
            return Err((
                StatusCode::FORBIDDEN,
                Json(json!({ "type": "about:blank", "status": 403,
                    "detail": "JMAP needs TLS: use the https listener (or set jmap.auth-without-tls for a trusted network)" })),
            )
                .into_response());
        }
        let ip = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        authenticate(core, &parts.headers, ip)
            .await
            .map(|(a, cred)| JmapUser(a, cred))
    }
}

async fn authenticate(
    core: &crate::core::Core,
    headers: &HeaderMap,
    ip: std::net::IpAddr,
) -> Result<(Account, String), Response> {
    use sha2::Digest;
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            unauthorized("authentication required: HTTP Basic with your address and password")
        })?;
    if let Some(token) = value.strip_prefix("Bearer ") {
        return bearer(core, token.trim(), ip).await;
    }
    let encoded = value.strip_prefix("Basic ").ok_or_else(|| {
        unauthorized("use HTTP Basic (address and password) or Bearer (an API token)")
    })?;
    let decoded = crate::directory::sasl::b64_decode(encoded)
        .and_then(|d| String::from_utf8(d).ok())
        .ok_or_else(|| unauthorized("malformed Basic credentials"))?;
    let (user, pass) = decoded
        .split_once(':')
        .ok_or_else(|| unauthorized("malformed Basic credentials"))?;
    let key: [u8; 32] = sha2::Sha256::digest(value.as_bytes()).into();
    let cached = core
        .jmap
        .logins
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned();
    if let Some((id, hash, until)) = cached {
        if until > Instant::now() {
            if let Ok(Some(a)) = core.directory.get_account(user).await {
                if a.id == id && a.enabled && a.secret_hash == hash {
                    return Ok((a, "password".into()));
                }
            }
        }
    }
    match core.directory.login(ip, user, pass).await {
        Ok(Login::Ok(a)) => {
            let mut logins = core.jmap.logins.lock().unwrap_or_else(|e| e.into_inner());
            if logins.len() > 10_000 {
                logins.retain(|_, (_, _, until)| *until > Instant::now());
            }
            logins.insert(
                key,
                (a.id, a.secret_hash.clone(), Instant::now() + LOGIN_CACHE),
            );
            Ok((a, "password".into()))
        }
        Ok(Login::Throttled) => Err((
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed logins, try again later",
        )
            .into_response()),
        Ok(Login::Blocked(_)) => Err(unauthorized(
            "this password is a well-known one and is blocked: set a new one",
        )),
        Ok(Login::Failed) => Err(unauthorized("wrong address or password")),
        Err(e) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the directory is unavailable, try again: {e}"),
        )
            .into_response()),
    }
}

/// A bearer token (`petrel account token create`): its account, or 401.
/// Failures count against the address's login throttle like passwords.
async fn bearer(
    core: &crate::core::Core,
    token: &str,
    ip: std::net::IpAddr,
) -> Result<(Account, String), Response> {
    let dir = &core.directory;
    let (gate, key) = dir.login_gate(ip, None, "bearer-token");
    if gate == crate::directory::ratelimit::Gate::Throttled {
        return Err((
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed logins, try again later",
        )
            .into_response());
    }
    match dir.token_account(token).await {
        Ok(Some(a)) => {
            metrics::counter!("petrel_logins_total", "result" => "ok").increment(1);
            let id = token.split('_').nth(2).unwrap_or_default();
            Ok((a, format!("token:{id}")))
        }
        Ok(None) => {
            dir.record_login(ip, &key, false);
            tracing::info!(%ip, "JMAP bearer token refused");
            metrics::counter!("petrel_logins_total", "result" => "failed").increment(1);
            Err(unauthorized("unknown, revoked or malformed token"))
        }
        Err(e) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the directory is unavailable, try again: {e}"),
        )
            .into_response()),
    }
}

/// The base URL clients reach us at, from the Host header.
fn base_url(headers: &HeaderMap, tls: bool) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("{}://{host}", if tls { "https" } else { "http" })
}

/// An account another one shares mailboxes with the user through (RFC
/// 8620 §1.6.2): its id, address, and whether the user may only read.
struct SharedAccount {
    id: u32,
    address: String,
    read_only: bool,
}

/// The accounts sharing mailboxes with the user, in id order; an owner
/// gone from the directory is left out.
async fn shared_accounts(
    core: &crate::core::Core,
    shares: &[crate::mail::acl::Shared],
) -> Vec<SharedAccount> {
    let mut out = Vec::new();
    for owner in methods::shared_owners(shares) {
        let (Ok(Some(a)), Some(access)) = (
            core.directory.account_by_id(owner).await,
            methods::Access::shared(owner, shares),
        ) else {
            continue;
        };
        out.push(SharedAccount {
            id: owner,
            address: a.address,
            read_only: access.read_only(),
        });
    }
    out
}

/// An account's mail capability (RFC 8621 §1.3.1); a shared account has
/// no top level of its own for the user.
fn mail_capability(core: &crate::core::Core, top_level: bool) -> Value {
    json!({
        "maxMailboxesPerEmail": null,
        "maxMailboxDepth": null,
        "maxSizeMailboxName": 255,
        "maxSizeAttachmentsPerEmail": core.config.smtp.max_message_size,
        "emailQuerySortOptions": methods::email_query::SORT_OPTIONS,
        "mayCreateTopLevelMailbox": top_level
    })
}

/// The session's state (RFC 8620 §2): it changes when what the session
/// resource says changes (the account, its address, the limits, the
/// shared accounts).
fn session_state(core: &crate::core::Core, user: &Account, shared: &[SharedAccount]) -> String {
    use sha2::Digest;
    let c = &core.config.jmap;
    let accounts: String = shared
        .iter()
        .map(|a| format!("{}:{}:{};", a.id, a.address, a.read_only))
        .collect();
    let digest = sha2::Sha256::digest(format!(
        "{}|{}|{}|{}|{}|{}|{}|{accounts}",
        user.id,
        user.address,
        c.max_size_request,
        c.max_calls_in_request,
        c.max_objects_in_get,
        c.max_objects_in_set,
        c.max_concurrent_requests
    ));
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The user's own account as the session resource (and its Principal's
/// `accounts`) shows it (RFC 8620 §1.6.2, §2).
pub(crate) fn own_account(core: &crate::core::Core, user: &Account) -> Value {
    let c = &core.config.jmap;
    let account = id::account(user.id);
    json!({
        "name": user.address,
        "isPersonal": true,
        "isReadOnly": false,
        // §2: the core capability is not repeated per account.
        "accountCapabilities": {
            request::MAIL: mail_capability(core, true),
            request::VACATION: {},
            request::QUOTA: {},
            request::MDN: {},
            // RFC 9661 §1.2.1.
            request::SIEVE: methods::sieve_script::capability(&core.config.sieve),
            // RFC 9404 §3.
            request::BLOB: {
                "maxSizeBlobSet": c.max_size_upload,
                "maxDataSources": methods::blob::MAX_DATA_SOURCES,
                "supportedTypeNames": ["Email", "Thread", "Mailbox"],
                "supportedDigestAlgorithms": ["sha", "sha-256"]
            },
            // RFC 8621 §1.3.2: FUTURERELEASE holds (RFC 4865).
            request::SUBMISSION: {
                "maxDelayedSend": c.max_delayed_send,
                "submissionExtensions": if c.max_delayed_send > 0 {
                    json!({"FUTURERELEASE": [c.max_delayed_send.to_string()]})
                } else {
                    json!({})
                }
            },
            // RFC 9670 §1.5: the Principals are here, and so is the
            // user's own.
            request::PRINCIPALS: { "currentUserPrincipalId": id::principal(user.id) },
            request::PRINCIPALS_OWNER: {
                "accountIdForPrincipal": account,
                "principalId": id::principal(user.id)
            }
        }
    })
}

/// An account sharing mailboxes with user `user` (§1.6.2): the mail
/// capability only, and who owns it (RFC 9670 §1.5.2).
pub(crate) fn shared_account(
    core: &crate::core::Core,
    user: u32,
    owner: u32,
    address: &str,
    read_only: bool,
) -> Value {
    json!({
        "name": address,
        "isPersonal": false,
        "isReadOnly": read_only,
        "accountCapabilities": {
            request::MAIL: mail_capability(core, false),
            request::PRINCIPALS_OWNER: {
                "accountIdForPrincipal": id::account(user),
                "principalId": id::principal(owner)
            }
        }
    })
}

/// RFC 8620 §2: the session resource.
async fn session(State(st): State<AppState>, parts: Parts) -> Response {
    let user = match JmapUser::from_request_parts(&mut { parts.clone() }, &st).await {
        Ok(JmapUser(a, _)) => a,
        Err(r) => return r,
    };
    let core = &st.core;
    let l = limits(core);
    let c = &core.config.jmap;
    let base = base_url(&parts.headers, parts.extensions.get::<OverTls>().is_some());
    let account = id::account(user.id);
    let capabilities = json!({
        request::CORE: {
            "maxSizeUpload": c.max_size_upload,
            "maxConcurrentUpload": c.max_concurrent_upload,
            "maxSizeRequest": l.max_size_request,
            "maxConcurrentRequests": l.max_concurrent_requests,
            "maxCallsInRequest": l.max_calls_in_request,
            "maxObjectsInGet": l.max_objects_in_get,
            "maxObjectsInSet": c.max_objects_in_set,
            "collationAlgorithms": ["i;ascii-numeric", "i;ascii-casemap", "i;unicode-casemap"]
        },
        request::MAIL: {},
        request::SUBMISSION: {},
        request::VACATION: {},
        request::QUOTA: {},
        request::BLOB: {},
        request::MDN: {},
        request::PRINCIPALS: {},
        request::SIEVE: {},
        // RFC 8887 §3: the WebSocket endpoint, pushes included.
        request::WEBSOCKET: {
            "url": format!("{}/jmap/ws", base.replacen("http", "ws", 1)),
            "supportsPush": true
        }
    });
    let shares = match core.mail.shared_with(user.id).await {
        Ok(s) => s,
        Err(e) => {
            return download::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("the store is unavailable, try again: {e}"),
            )
        }
    };
    let shared = shared_accounts(core, &shares).await;
    let state = session_state(core, &user, &shared);
    let mut body = json!({
        "capabilities": capabilities,
        "accounts": {
            account.clone(): own_account(core, &user)
        },
        "primaryAccounts": { request::CORE: account, request::MAIL: account, request::SUBMISSION: account, request::VACATION: account, request::QUOTA: account, request::BLOB: account, request::MDN: account, request::PRINCIPALS: account, request::SIEVE: account },
        "username": user.address,
        "apiUrl": format!("{base}/jmap/api"),
        "downloadUrl": format!("{base}/jmap/download/{{accountId}}/{{blobId}}/{{name}}?type={{type}}"),
        "uploadUrl": format!("{base}/jmap/upload/{{accountId}}/"),
        "eventSourceUrl": format!("{base}/jmap/eventsource?types={{types}}&closeafter={{closeafter}}&ping={{ping}}"),
        "state": state
    });
    // §1.6.2: each account sharing mailboxes with the user, with the mail
    // capability only.
    for a in shared {
        body["accounts"][id::account(a.id)] =
            shared_account(core, user.id, a.id, &a.address, a.read_only);
    }
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-cache, no-store")],
        Json(body),
    )
        .into_response()
}

/// Releases an account's request slot when the request ends.
struct Slot<'a> {
    state: &'a JmapState,
    account: u32,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut map = self
            .state
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.account) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.account);
            }
        }
    }
}

/// RFC 8620 §3: the API endpoint.
async fn api(State(st): State<AppState>, JmapUser(user, cred): JmapUser, body: Bytes) -> Response {
    match execute(&st.core, &user, &cred, &body).await {
        // §3.8: user-visible strings (error descriptions) are English.
        Ok(out) => ([(header::CONTENT_LANGUAGE, "en")], Json(out)).into_response(),
        Err(p) => problem(p),
    }
}

/// Runs one JMAP Request (§3.3) for `user`: the Response object, or the
/// request-level error. The API endpoint and the WebSocket share it, and
/// the per-account limit of concurrent requests.
pub(crate) async fn execute(
    shared: &crate::core::SharedCore,
    user: &Account,
    credential: &str,
    body: &[u8],
) -> Result<Value, Problem> {
    let core: &crate::core::Core = shared;
    let l = limits(core);
    let _slot = {
        let mut map = core
            .jmap
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let n = map.entry(user.id).or_insert(0);
        if *n >= l.max_concurrent_requests {
            return Err(Problem::limit(
                "maxConcurrentRequests",
                format!("more than {} requests at once", l.max_concurrent_requests),
            ));
        }
        *n += 1;
        Slot {
            state: &core.jmap,
            account: user.id,
        }
    };
    let req = request::parse(body, &l)?;
    let cx = methods::Context {
        core,
        shared,
        account: user,
        credential,
        using: &req.using,
        created: std::sync::Mutex::new(req.created_ids.clone().unwrap_or_default()),
        implicit: Default::default(),
        shares: Default::default(),
    };
    let mut responses: Vec<(String, Value, String)> = Vec::with_capacity(req.calls.len());
    for call in req.calls {
        let result = match request::resolve_references(call.args, &responses) {
            Ok(args) => methods::call(&cx, &call.name, args).await,
            Err(e) => Err(e),
        };
        match result {
            Ok((name, value)) => responses.push((name, value, call.call_id.clone())),
            Err(e) => {
                tracing::debug!(method = %call.name, error = e.kind, "JMAP method error");
                responses.push(("error".into(), e.args(), call.call_id.clone()))
            }
        }
        let extra = std::mem::take(&mut *cx.implicit.lock().unwrap_or_else(|e| e.into_inner()));
        for (name, value) in extra {
            responses.push((name, value, call.call_id.clone()));
        }
    }
    let mut out = json!({
        "methodResponses": responses
            .into_iter()
            .map(|(n, v, id)| json!([n, v, id]))
            .collect::<Vec<_>>(),
        "sessionState": session_state(core, user, &shared_accounts(core, cx.shares().await.unwrap_or_default()).await),
    });
    // §3.3: createdIds comes back only if the request had it.
    if req.created_ids.is_some() {
        out["createdIds"] =
            Value::Object(cx.created.into_inner().unwrap_or_else(|e| e.into_inner()));
    }
    Ok(out)
}
