//! A small JMAP client for the benchmark: one HTTP/1.1 keep-alive
//! connection (hyper), Basic credentials, the URLs taken from the
//! server's session resource, so the same code drives Petrel and Cyrus.

use std::net::SocketAddr;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{json, Value};

pub struct Jmap {
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    pub addr: SocketAddr,
    auth: String,
    pub api_url: String,
    pub upload_url: String,
    pub event_source_url: String,
    pub account: String,
}

pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

async fn connect(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

/// The path of a URL that may be absolute (`http://host/p`) or not.
fn path_of(url: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/".into(), |i| rest[i..].to_string()),
        None => url.to_string(),
    }
}

impl Jmap {
    /// Connects and reads the session resource at `session_path`.
    pub async fn open(addr: SocketAddr, session_path: &str, user: &str, password: &str) -> Jmap {
        let mut j = Jmap {
            send: connect(addr).await,
            addr,
            auth: basic(user, password),
            api_url: String::new(),
            upload_url: String::new(),
            event_source_url: String::new(),
            account: String::new(),
        };
        let (status, body) = j.request("GET", session_path, "", Vec::new()).await;
        assert_eq!(status, 200, "session: {}", String::from_utf8_lossy(&body));
        let s: Value = serde_json::from_slice(&body).unwrap();
        j.api_url = path_of(s["apiUrl"].as_str().unwrap());
        j.upload_url = path_of(s["uploadUrl"].as_str().unwrap());
        j.event_source_url = path_of(s["eventSourceUrl"].as_str().unwrap_or_default());
        j.account = s["primaryAccounts"]["urn:ietf:params:jmap:mail"]
            .as_str()
            .unwrap()
            .to_string();
        j
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("authorization", &self.auth);
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        let req = req.body(Full::new(Bytes::from(body))).unwrap();
        self.send.ready().await.unwrap();
        let res = self.send.send_request(req).await.unwrap();
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, body.to_vec())
    }

    /// One API request of `calls`; the methodResponses. Any error
    /// response fails the benchmark.
    pub async fn api(&mut self, calls: Value) -> Vec<Value> {
        let body = json!({
            "using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
            "methodCalls": calls,
        });
        let path = self.api_url.clone();
        let (status, out) = self
            .request(
                "POST",
                &path,
                "application/json",
                serde_json::to_vec(&body).unwrap(),
            )
            .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
        let v: Value = serde_json::from_slice(&out).unwrap();
        let responses = v["methodResponses"].as_array().unwrap().clone();
        for r in &responses {
            assert_ne!(r[0], "error", "{r}");
        }
        responses
    }

    /// Uploads a message; its blobId.
    pub async fn upload(&mut self, message: &[u8]) -> String {
        let path = self.upload_url.replace("{accountId}", &self.account);
        let (status, out) = self
            .request("POST", &path, "message/rfc822", message.to_vec())
            .await;
        assert!(
            status == 200 || status == 201,
            "upload {status}: {}",
            String::from_utf8_lossy(&out)
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        v["blobId"].as_str().unwrap().to_string()
    }

    /// The event source path for every type, never closed, no pings.
    pub fn event_source_path(&self) -> String {
        self.event_source_url
            .replace("{types}", "*")
            .replace("{closeafter}", "no")
            .replace("{ping}", "0")
    }

    pub fn auth(&self) -> &str {
        &self.auth
    }
}
