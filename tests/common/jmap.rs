//! A Petrel over HTTPS for the JMAP tests, with joe@example.org
//! (password "pw"), and the clients they drive it with: curl, Python
//! (trusting the test CA), IMAP and SMTP.

use std::process::Command;

use serde_json::{json, Value};

use super::*;

pub struct Jmap {
    pub s: TestServer,
    pub ca: std::path::PathBuf,
    _pki: tempfile::TempDir,
}

pub fn server(extra: &str) -> Jmap {
    let tmp = tempfile::tempdir().unwrap();
    let pki = super::pki::issue(tmp.path(), &["127.0.0.1"]);
    let s = TestServer::start_https(&pki, &format!("[imap]\nauth-without-tls = true\n{extra}"));
    s.account("joe@example.org");
    Jmap {
        ca: pki.ca.clone(),
        s,
        _pki: tmp,
    }
}

impl Jmap {
    /// Runs a Python script that trusts the test CA (jmapc, websockets);
    /// its standard output, after checking it succeeded.
    pub fn python(&self, script: &str) -> String {
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .env("REQUESTS_CA_BUNDLE", &self.ca)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    pub fn base(&self) -> String {
        format!("https://127.0.0.1:{}", self.s.addr("https").port())
    }

    /// curl: (status, headers, body).
    pub fn curl(&self, args: &[&str], body: Option<&str>) -> (u16, String, String) {
        let mut c = Command::new("curl");
        c.args(["-s", "-D", "-", "--cacert"])
            .arg(&self.ca)
            .args(args);
        if let Some(b) = body {
            c.args(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        let out = c.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (mut head, mut body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        // With -L every response's header block is printed: keep the last.
        while body.starts_with("HTTP/") {
            (head, body) = body.split_once("\r\n\r\n").unwrap_or((body, ""));
        }
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, head.to_string(), body.to_string())
    }

    pub fn api_raw(&self, body: &str) -> (u16, Value) {
        self.api_raw_as("joe@example.org", body)
    }

    /// A request as `user` (password "pw").
    pub fn api_raw_as(&self, user: &str, body: &str) -> (u16, Value) {
        let url = format!("{}/jmap/api", self.base());
        let (status, _, body) = self.curl(&["-u", &format!("{user}:pw"), &url], Some(body));
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    pub fn api(&self, using: &[&str], calls: Value) -> Vec<Value> {
        self.api_as("joe@example.org", using, calls)
    }

    /// The method responses of a request as `user`.
    pub fn api_as(&self, user: &str, using: &[&str], calls: Value) -> Vec<Value> {
        let req = json!({ "using": using, "methodCalls": calls }).to_string();
        let (status, v) = self.api_raw_as(user, &req);
        assert_eq!(status, 200, "{v}");
        v["methodResponses"].as_array().unwrap().clone()
    }

    /// The session resource as `user` sees it.
    pub fn session_as(&self, user: &str) -> Value {
        let url = format!("{}/jmap/session", self.base());
        let (_, _, body) = self.curl(&["-u", &format!("{user}:pw"), &url], None);
        serde_json::from_str(&body).unwrap()
    }

    pub fn account_id(&self) -> String {
        let url = format!("{}/jmap/session", self.base());
        let (_, _, body) = self.curl(&["-u", "joe@example.org:pw", &url], None);
        let v: Value = serde_json::from_str(&body).unwrap();
        v["primaryAccounts"]["urn:ietf:params:jmap:mail"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// Logs in to IMAP as joe, runs `cmds` (tagged lines with CRLF), logs out
/// and returns everything the server said.
pub async fn imap(addr: std::net::SocketAddr, cmds: &str) -> String {
    imap_as(addr, "joe@example.org", cmds).await
}

/// The same as `user` (password "pw").
pub async fn imap_as(addr: std::net::SocketAddr, user: &str, cmds: &str) -> String {
    let mut c = LineClient::connect(addr).await;
    c.line().await;
    c.send(&format!("a LOGIN {user} pw\r\n{cmds}z LOGOUT\r\n"))
        .await;
    let mut all = String::new();
    while let Some(l) = c.line_opt().await {
        all.push_str(&l);
        all.push('\n');
        if l.starts_with("z OK") {
            break;
        }
    }
    all
}

impl Jmap {
    /// Delivers `bodies` to joe over SMTP, one message each, and waits
    /// until all are in his inbox.
    pub async fn deliver(&self, bodies: &[String]) {
        for body in bodies {
            let r = smtp_send(
                self.s.addr("smtp"),
                "ann@remote.test",
                &["joe@example.org"],
                body,
            )
            .await;
            assert!(r.starts_with("250"), "{r}");
        }
        wait_for_mail(self.s.addr("imap"), "joe@example.org", bodies.len()).await;
    }
}

pub const CORE: &str = "urn:ietf:params:jmap:core";
pub const MAIL: &str = "urn:ietf:params:jmap:mail";

impl Jmap {
    /// The account's mailbox ids by role.
    pub fn roles(&self, account: &str) -> std::collections::HashMap<String, String> {
        let r = self.api(
            &[CORE, MAIL],
            json!([["Mailbox/get", {"accountId": account, "properties": ["role"]}, "0"]]),
        );
        r[0][1]["list"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| {
                Some((
                    m["role"].as_str()?.to_string(),
                    m["id"].as_str()?.to_string(),
                ))
            })
            .collect()
    }

    /// POSTs `data` to the upload endpoint; the response.
    pub fn upload(&self, account: &str, kind: &str, data: &[u8]) -> (u16, Value) {
        self.upload_as("joe@example.org", account, kind, data)
    }

    /// An upload as `user`.
    pub fn upload_as(&self, user: &str, account: &str, kind: &str, data: &[u8]) -> (u16, Value) {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("blob");
        std::fs::write(&f, data).unwrap();
        let url = format!("{}/jmap/upload/{account}/", self.base());
        let (status, _, body) = self.curl(
            &[
                "-u",
                &format!("{user}:pw"),
                "-H",
                &format!("Content-Type: {kind}"),
                "--data-binary",
                &format!("@{}", f.display()),
                &url,
            ],
            None,
        );
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }
}

/// A push receiver over HTTPS: every POST's head and JSON body (other
/// bodies as `{"raw": base64}`), answered 201.
pub async fn push_receiver(
    pki: &super::pki::TestPki,
) -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<(String, Value)>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut req = read_http_head(&mut tls).await;
            let at = req
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .unwrap_or(req.len())
                + 4;
            let head = String::from_utf8_lossy(&req[..at.min(req.len())]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            while req.len() < at + len {
                let mut buf = [0u8; 4096];
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            // JSON, or (an encrypted push) {"raw": base64 of the octets}.
            let octets = &req[at.min(req.len())..];
            let body = serde_json::from_slice(octets).unwrap_or_else(|_| {
                use base64::Engine;
                json!({"raw": base64::engine::general_purpose::STANDARD.encode(octets)})
            });
            let _ = tls
                .write_all(
                    b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            let _ = tls.shutdown().await;
            let _ = tx.send((head, body));
        }
    });
    (addr, rx)
}

pub async fn next_push(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Value)>,
) -> (String, Value) {
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("a push")
        .unwrap()
}

/// A JMAP server that may push to a local HTTPS receiver (private
/// addresses allowed, the receiver's CA trusted), the receiver's address
/// and what it gets; the directory holding the test CA lives as long as
/// the last value.
pub async fn server_with_push_receiver() -> (
    Jmap,
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<(String, Value)>,
    tempfile::TempDir,
) {
    let tmp = tempfile::tempdir().unwrap();
    let pki = super::pki::issue(tmp.path(), &["127.0.0.1"]);
    let (addr, pushes) = push_receiver(&pki).await;
    let j = server(&format!(
        "[jmap]\npush-allow-private = true\npush-ca-file = \"{}\"\n",
        pki.ca.display()
    ));
    (j, addr, pushes, tmp)
}

/// A client's splice (§5.6): out with `removed`, in with `added`, lowest
/// index first.
pub fn splice(old: &[String], answer: &Value) -> Vec<String> {
    let removed: std::collections::HashSet<&str> = answer["removed"]
        .as_array()
        .unwrap_or_else(|| panic!("not a queryChanges answer: {answer}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut list: Vec<String> = old
        .iter()
        .filter(|i| !removed.contains(i.as_str()))
        .cloned()
        .collect();
    let mut last = None;
    for a in answer["added"].as_array().unwrap() {
        let index = a["index"].as_u64().unwrap() as usize;
        // §5.6: sorted by index, lowest first.
        assert!(
            last.is_none_or(|l| l < index),
            "added out of order: {answer}"
        );
        last = Some(index);
        list.insert(index.min(list.len()), a["id"].as_str().unwrap().into());
    }
    list
}

pub fn ids(v: &Value) -> Vec<String> {
    v["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("not a query answer: {v}"))
        .iter()
        .map(|i| i.as_str().unwrap().to_string())
        .collect()
}
