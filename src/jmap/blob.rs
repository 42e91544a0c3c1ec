//! Blobs (RFC 8620 §6): what a blob id names, read for the asking
//! account only — a message (`B{email}`), an upload (`U{n}`), or a MIME
//! part of either, decoded (`B{email}-{part}`, `U{n}-{part}`) — and the
//! upload endpoint,
//! `POST /jmap/upload/{accountId}/`. Uploads live in the mail store's
//! records; those older than a day are deleted when the account uploads
//! again (§6.1 keeps them at least an hour).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::id::{self, BlobRef};
use super::JmapUser;
use crate::http::AppState;
use crate::mail::{MailError, MailStore};

/// How long an upload is kept.
const UPLOAD_TTL: i64 = 24 * 3600;

/// The bytes a blob id names in account `acct`, or `None` if it names
/// nothing there (or a message flagged \Deleted, which JMAP does not show).
pub async fn read(mail: &MailStore, acct: u32, blob: &str) -> Result<Option<Vec<u8>>, MailError> {
    let Some(r) = id::parse_blob(blob) else {
        return Ok(None);
    };
    let email = match r {
        BlobRef::Upload(n) => return Ok(mail.upload(acct, n).await?.map(|(_, d)| d)),
        BlobRef::UploadPart(n, p) => {
            return Ok(mail
                .upload(acct, n)
                .await?
                .and_then(|(_, d)| super::methods::email_body::part_contents(&d, p)))
        }
        BlobRef::Message(e) | BlobRef::Part(e, _) => e,
    };
    let (Some(meta), Some(state)) = (
        mail.email_meta(acct, email).await?,
        mail.email_state(acct, email).await?,
    ) else {
        return Ok(None);
    };
    if !super::methods::visible(&state) {
        return Ok(None);
    }
    let raw = mail.email_raw(&meta).await?;
    Ok(match r {
        BlobRef::Part(_, p) => super::methods::email_body::part_contents(&raw, p),
        _ => Some(raw),
    })
}

/// §6.1: the upload endpoint. The body is the blob; its Content-Type is
/// the blob's type.
pub(super) async fn upload(
    State(st): State<AppState>,
    JmapUser(user, _): JmapUser,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if id::parse_account(&account) != Some(user.id) {
        return super::download::problem(StatusCode::NOT_FOUND, "no such account");
    }
    let max = st.core.config.jmap.max_size_upload;
    // Read no more than the limit (the body may be larger than memory).
    let body = match axum::body::to_bytes(body, max).await {
        Ok(b) => b,
        Err(_) => {
            return super::download::problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the upload is larger than maxSizeUpload ({max} octets)"),
            )
        }
    };
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let mail = &st.core.mail;
    if let Err(e) = mail
        .expire_uploads(user.id, crate::core::unix_now() - UPLOAD_TTL)
        .await
    {
        tracing::warn!(account = user.id, "JMAP: old uploads not expired: {e}");
    }
    match mail.put_upload(user.id, &kind, body.to_vec()).await {
        Ok((n, up)) => {
            metrics::counter!("petrel_jmap_uploads_total").increment(1);
            (
                StatusCode::CREATED,
                axum::Json(json!({
                    "accountId": account,
                    "blobId": id::upload(n),
                    "type": up.kind,
                    "size": up.size,
                })),
            )
                .into_response()
        }
        Err(e) => super::download::problem(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the upload could not be stored, try again: {e}"),
        ),
    }
}
