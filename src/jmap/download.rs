//! Downloading blobs (RFC 8620 §6.2): `GET /jmap/download/{accountId}/
//! {blobId}/{name}?type={type}`. A blobId names the message (`B` and its
//! Email id, and for a MIME part `-` and the part's index), so a download
//! can only reach the account's mail the user may read: the Email is
//! looked up in the account the URL names, its own or a shared one, and
//! must be in a mailbox the user may read (see `blob`).

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::JmapUser;
use crate::http::AppState;

#[derive(Deserialize)]
pub(super) struct TypeParam {
    #[serde(rename = "type")]
    kind: Option<String>,
}

pub(super) fn problem(status: StatusCode, detail: &str) -> Response {
    let mut r = (
        status,
        axum::Json(json!({"type": "about:blank", "status": status.as_u16(), "detail": detail})),
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

/// The account an upload or download URL names, as `user` may use it:
/// its own or one sharing mailboxes with it (RFC 8620 §1.6.2).
pub(super) async fn access(
    core: &crate::core::Core,
    user: &crate::directory::Account,
    account: &str,
) -> Option<super::methods::Access> {
    let n = super::id::parse_account(account)?;
    if n == user.id {
        return Some(super::methods::Access::own(n));
    }
    let shares = core.mail.shared_with(user.id).await.ok()?;
    super::methods::Access::shared(n, &shares)
}

pub(super) async fn download(
    State(st): State<AppState>,
    JmapUser(user, _): JmapUser,
    Path((account, blob, name)): Path<(String, String, String)>,
    Query(q): Query<TypeParam>,
) -> Response {
    let Some(access) = access(&st.core, &user, &account).await else {
        return problem(StatusCode::NOT_FOUND, "no such account");
    };
    let raw = match super::blob::read(&st.core.mail, user.id, &access, &blob).await {
        Ok(Some(r)) => r,
        Ok(None) => return problem(StatusCode::NOT_FOUND, "no such blob"),
        Err(e) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("the blob cannot be read: {e}"),
            )
        }
    };
    // §6.2: the type asked for is the Content-Type; the name is the
    // filename of the Content-Disposition.
    let kind = q.kind.unwrap_or_else(|| "application/octet-stream".into());
    let kind = HeaderValue::from_str(&kind)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let safe: String = name
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let disposition = if safe.is_ascii() {
        format!("attachment; filename=\"{safe}\"")
    } else {
        let encoded: String = safe
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        format!("attachment; filename*=UTF-8''{encoded}")
    };
    let mut r = (StatusCode::OK, raw).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, kind);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    // A blob never changes.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, immutable, max-age=31536000"),
    );
    r
}
