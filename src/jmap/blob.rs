//! Blobs (RFC 8620 §6): what a blob id names, read for the asking
//! account only — a message (`B{email}`), an upload (`U{n}`), or a MIME
//! part of either, decoded (`B{email}-{part}`, `U{n}-{part}`), or a Sieve
//! script's text (`F{script}_{digest}`) — and the
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
use crate::mail::records::Kind;
use crate::mail::{MailError, MailStore};

/// How long an upload is kept.
const UPLOAD_TTL: i64 = 24 * 3600;

/// The bytes a blob id names for user `uploader` in the account `access`
/// reaches, or `None` if it names nothing there (or a message flagged
/// \Deleted, which JMAP does not show, or one in no mailbox the user may
/// read). Uploads are the user's own, whatever the account (RFC 8620
/// §6.1: unreferenced blobs only to the uploader, even in shared
/// accounts).
pub async fn read(
    mail: &MailStore,
    uploader: u32,
    access: &super::methods::Access,
    blob: &str,
) -> Result<Option<Vec<u8>>, MailError> {
    let Some(r) = id::parse_blob(blob) else {
        return Ok(None);
    };
    let acct = access.acct;
    let email = match r {
        BlobRef::Upload(n) => return Ok(mail.upload(uploader, n).await?.map(|(_, d)| d)),
        BlobRef::UploadPart(n, p) => {
            return Ok(mail
                .upload(uploader, n)
                .await?
                .and_then(|(_, d)| super::methods::email_body::part_contents(&d, p)))
        }
        // RFC 9661 §2.2: a script's text, in the user's own account only,
        // while the script still has that text.
        BlobRef::Script(n, digest) => {
            if !access.is_own() {
                return Ok(None);
            }
            let script = mail
                .record::<crate::sieve::scripts::Script>(acct, Kind::SieveScript, n)
                .await?;
            return Ok(script
                .filter(|s| id::script_digest(&s.text) == digest)
                .map(|s| s.text.into_bytes()));
        }
        BlobRef::Message(e) | BlobRef::Part(e, _) => e,
    };
    let (Some(meta), Some(state)) = (
        mail.email_meta(acct, email).await?,
        mail.email_state(acct, email).await?,
    ) else {
        return Ok(None);
    };
    if !access.email_visible(&state) {
        return Ok(None);
    }
    let raw = mail.email_raw(&meta).await?;
    Ok(match r {
        BlobRef::Part(_, p) => super::methods::email_body::part_contents(&raw, p),
        _ => Some(raw),
    })
}

/// Keeps an upload of `acct` (the endpoint's and Blob/upload's): those
/// older than a day go first, then the oldest until the new one fits in
/// `jmap.upload-quota` (RFC 8620 §6), which counts apart from the mail.
pub(crate) async fn store(
    core: &crate::core::Core,
    acct: u32,
    kind: &str,
    data: Vec<u8>,
) -> Result<(u64, crate::mail::records::Upload), MailError> {
    let mail = &core.mail;
    if let Err(e) = mail
        .expire_uploads(acct, crate::core::unix_now() - UPLOAD_TTL)
        .await
    {
        tracing::warn!(account = acct, "JMAP: old uploads not expired: {e}");
    }
    let quota = core.config.jmap.upload_quota as u64;
    let (id, up, gone) = mail.put_upload_in_quota(acct, kind, data, quota).await?;
    if gone > 0 {
        tracing::info!(
            account = acct,
            deleted = gone,
            quota,
            "JMAP upload quota: oldest uploads deleted to make room"
        );
        metrics::counter!("petrel_jmap_uploads_evicted_total").increment(gone as u64);
    }
    Ok((id, up))
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
    // An upload into a shared account is kept as the uploader's (§6.1).
    if super::download::access(&st.core, &user, &account)
        .await
        .is_none()
    {
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
    match store(&st.core, user.id, &kind, body.to_vec()).await {
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
