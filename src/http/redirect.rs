//! The `http-redirect` listener (port 80 of a production server): every
//! request is sent on to https; only what must stay plain is answered
//! here (ACME HTTP-01 challenges, RFC 8555 §8.3).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::{ApiError, AppState};
use crate::core::SharedCore;

pub fn redirect_router(core: SharedCore) -> Router {
    Router::new()
        .route("/.well-known/acme-challenge/{token}", get(acme_challenge))
        .fallback(redirect)
        .with_state(AppState { core })
}

/// RFC 8555 §8.3: the key authorization of an open HTTP-01 challenge.
pub(super) async fn acme_challenge(
    State(st): State<AppState>,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Response {
    match st.core.acme.answer(&token) {
        Some(ka) => {
            tracing::info!(%token, "ACME: http-01 challenge answered");
            ([(header::CONTENT_TYPE, "application/octet-stream")], ka).into_response()
        }
        None => ApiError(
            StatusCode::NOT_FOUND,
            "no ACME challenge is pending for this token".into(),
        )
        .into_response(),
    }
}

/// A host name as a client may give it in `Host`, without its port; None
/// for anything else (it then comes from `hostname`).
fn host_of(headers: &HeaderMap) -> Option<String> {
    let h = headers.get(header::HOST)?.to_str().ok()?;
    let name = match h.strip_prefix('[') {
        Some(v6) => return v6.split_once(']').map(|(a, _)| format!("[{a}]")),
        None => h.rsplit_once(':').map_or(h, |(n, _)| n),
    };
    (!name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
    .then(|| name.to_ascii_lowercase())
}

async fn redirect(State(st): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let host = host_of(&headers).unwrap_or_else(|| st.core.config.hostname.clone());
    let port = st
        .core
        .listeners
        .get()
        .and_then(|l| l.iter().find(|(p, _)| *p == "https"))
        .map(|(_, a)| a.port())
        .filter(|p| *p != 443)
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let location = format!("https://{host}{port}{path}");
    match location.parse::<axum::http::HeaderValue>() {
        Ok(v) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, v)]).into_response(),
        Err(_) => ApiError(StatusCode::BAD_REQUEST, "bad request target".into()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_is_checked() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "Mail.Example.org:80".parse().unwrap());
        assert_eq!(host_of(&h).as_deref(), Some("mail.example.org"));
        h.insert(header::HOST, "[2001:db8::1]:80".parse().unwrap());
        assert_eq!(host_of(&h).as_deref(), Some("[2001:db8::1]"));
        h.insert(header::HOST, "evil.com/x".parse().unwrap());
        assert_eq!(host_of(&h), None);
    }
}
