//! One HTTP/1.1 request to a URL, for what Petrel fetches or posts on its
//! own (HTTP hooks, phishing feeds): plain http, or https checked against
//! the system's roots and `tls.extra-ca` (`queue::mta_sts::verified_tls`).

use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use rustls::pki_types::ServerName;

/// What came back: status, headers and at most the limit's octets.
pub struct Answer {
    pub status: hyper::StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// Sends `method` to `url` with `headers` and `body`; reads at most
/// `limit` octets of the answer. https needs `tls`.
pub async fn exchange(
    tls: Option<Arc<rustls::ClientConfig>>,
    method: hyper::Method,
    url: &str,
    headers: &[(&str, String)],
    body: Bytes,
    limit: usize,
) -> Result<Answer, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("url {url}: {e}"))?;
    let host = uri.host().ok_or("the url has no host")?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("{url} is not an http:// or https:// URL")),
    };
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = hyper::Request::builder().method(method).uri(path).header(
        hyper::header::HOST,
        uri.authority().map_or(host.as_str(), |a| a.as_str()),
    );
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let req = req
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    let res = if https {
        let tls = tls.ok_or("no TLS configuration for https")?;
        let name = ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}: {e}"))?;
        send(stream, req).await?
    } else {
        send(tcp, req).await?
    };
    let (parts, incoming) = res.into_parts();
    let body = Limited::new(incoming, limit)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| format!("the answer from {host}: {e}"))?;
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// GET `url`, following up to five redirects; the body of a 200.
pub async fn get(
    tls: Option<Arc<rustls::ClientConfig>>,
    url: &str,
    limit: usize,
) -> Result<Bytes, String> {
    let mut url = url.to_string();
    for _ in 0..=5 {
        let a = exchange(
            tls.clone(),
            hyper::Method::GET,
            &url,
            &[],
            Bytes::new(),
            limit,
        )
        .await?;
        if a.status.is_redirection() {
            let to = a
                .headers
                .get(hyper::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("{url} redirects nowhere"))?;
            url = if to.starts_with("http://") || to.starts_with("https://") {
                to.to_string()
            } else {
                let base: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
                format!(
                    "{}://{}{to}",
                    base.scheme_str().unwrap_or("http"),
                    base.authority().map_or("", |a| a.as_str())
                )
            };
            continue;
        }
        if a.status != hyper::StatusCode::OK {
            return Err(format!("{url} answered {}", a.status));
        }
        return Ok(a.body);
    }
    Err(format!("{url}: too many redirects"))
}

async fn send<S>(
    stream: S,
    req: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    sender.send_request(req).await.map_err(|e| e.to_string())
}
