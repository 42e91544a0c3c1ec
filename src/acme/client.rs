//! The HTTP client Petrel's ACME requests go through (instant-acme's
//! `HttpClient`): HTTPS only (RFC 8555 §6.1), certificates checked against
//! the system's roots plus `tls.acme.ca-file`, and the header fields §6.1
//! asks of clients: a User-Agent naming Petrel, the ACME library and the
//! HTTP stack with their versions, and an Accept-Language. One connection
//! per request: an order is a dozen requests a few times a year.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::body::Bytes;
use hyper::header::{HeaderValue, ACCEPT_LANGUAGE, HOST, USER_AGENT};
use hyper::Request;
use instant_acme::{BodyWrapper, BytesResponse, Error, HttpClient};
use rustls::pki_types::ServerName;

/// What every ACME request says it comes from (§6.1).
pub const AGENT: &str = concat!(
    "Petrel/",
    env!("CARGO_PKG_VERSION"),
    " instant-acme/0.8 hyper/1"
);

pub struct AcmeHttp {
    tls: Arc<rustls::ClientConfig>,
}

impl AcmeHttp {
    pub fn new(ca_file: &std::path::Path) -> Result<AcmeHttp, String> {
        Ok(AcmeHttp {
            tls: crate::net::tls::checked_client(ca_file, "tls.acme.ca-file")?,
        })
    }

    /// GET `url`: the status and body (the directory, before any account).
    pub async fn get(&self, url: &str) -> Result<(u16, Bytes), Error> {
        let req = Request::get(url)
            .body(BodyWrapper::default())
            .map_err(|e| Error::Other(Box::new(e)))?;
        let mut rsp = send(self.tls.clone(), req).await?;
        let status = rsp.parts.status.as_u16();
        let body = rsp.body.into_bytes().await.map_err(Error::Other)?;
        Ok((status, body))
    }
}

fn other(msg: String) -> Error {
    Error::Other(msg.into())
}

async fn send(
    tls: Arc<rustls::ClientConfig>,
    mut req: Request<BodyWrapper<Bytes>>,
) -> Result<BytesResponse, Error> {
    let uri = req.uri().clone();
    if uri.scheme_str() != Some("https") {
        return Err(other(format!(
            "ACME is spoken over HTTPS only (RFC 8555 §6.1), not {uri}"
        )));
    }
    let host = uri
        .host()
        .ok_or_else(|| other(format!("no host in {uri}")))?
        .trim_matches(['[', ']'])
        .to_string();
    let port = uri.port_u16().unwrap_or(443);
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .unwrap_or_default();
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    *req.uri_mut() = path.parse().map_err(|e| Error::Other(Box::new(e)))?;
    let headers = req.headers_mut();
    headers.insert(USER_AGENT, HeaderValue::from_static(AGENT));
    headers.insert(ACCEPT_LANGUAGE, HeaderValue::from_static("en"));
    headers.insert(
        HOST,
        HeaderValue::from_str(&authority).map_err(|e| Error::Other(Box::new(e)))?,
    );
    let name = ServerName::try_from(host.clone()).map_err(|e| Error::Other(Box::new(e)))?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| other(format!("connect {authority}: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| other(format!("TLS with {authority}: {e}")))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| Error::Other(Box::new(e)))?;
    tokio::spawn(conn);
    let mut rsp = sender
        .send_request(req)
        .await
        .map_err(|e| Error::Other(Box::new(e)))?;
    // §6.5.1: an invalid Replay-Nonce is ignored (dropped here, so the
    // library asks newNonce for a fresh one instead of sending it back).
    let invalid = rsp
        .headers()
        .get("replay-nonce")
        .is_some_and(|v| !valid_nonce(v.as_bytes()));
    if invalid {
        tracing::warn!(%authority, "ACME: ignoring an invalid Replay-Nonce");
        rsp.headers_mut().remove("replay-nonce");
    }
    Ok(BytesResponse::from(rsp))
}

/// A nonce is base64url without padding (RFC 8555 §6.5.1, RFC 7515 §2).
fn valid_nonce(v: &[u8]) -> bool {
    !v.is_empty()
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

/// The `detail` (and `type`) of an RFC 7807 problem document, for the log
/// (§6.7: clients show the detail of every error).
pub fn problem_detail(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let detail = v["detail"].as_str()?;
    Some(match v["type"].as_str() {
        Some(t) => format!("{detail} ({t})"),
        None => detail.to_string(),
    })
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, Error>> + Send>> {
        Box::pin(send(self.tls.clone(), req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_base64url_without_padding() {
        assert!(valid_nonce(b"oFvnlFP1wIhRlYS2jTaXbA"));
        assert!(valid_nonce(b"a-b_c"));
        assert!(!valid_nonce(b"abc="));
        assert!(!valid_nonce(b"ab+/"));
        assert!(!valid_nonce(b""));
        assert!(!valid_nonce(b"a b"));
    }

    #[test]
    fn problem_details_are_read() {
        let p = br#"{"type":"urn:ietf:params:acme:error:serverInternal","detail":"down"}"#;
        assert_eq!(
            problem_detail(p).as_deref(),
            Some("down (urn:ietf:params:acme:error:serverInternal)")
        );
        assert_eq!(problem_detail(b"<html>"), None);
    }
}
