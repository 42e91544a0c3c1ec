//! Test harness: starts a real `petrel serve` process on free ports with a
//! throwaway data directory, and small raw protocol clients.
#![allow(dead_code)]

pub mod dkimpy;
pub mod dns;
pub mod dovecot;
pub mod imap;
pub mod jmap;
pub mod knot;
pub mod pki;
pub mod port;
pub mod postfix;
pub mod svtest;
pub mod zone_dns;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

pub const ADMIN_PASSWORD: &str = "test-admin-secret";

pub struct TestServer {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub ports: HashMap<String, SocketAddr>,
    pub stdout: Vec<String>,
}

/// The server binary: this build's, or `PETREL_TEST_BIN` (for example
/// target/release/petrel, to measure the shipped build).
pub fn petrel_bin() -> PathBuf {
    std::env::var_os("PETREL_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_petrel")))
}

/// Config for tests: every listener on port 0 (the OS picks), plus extra
/// TOML. Test accounts have the password "pw", so unless `extra` has its
/// own `[passwords]`, any strength is accepted (well-known passwords are
/// still refused).
pub fn test_config(extra: &str) -> String {
    let passwords = if extra.contains("[passwords]") {
        ""
    } else {
        WEAK_PASSWORDS_OK
    };
    format!(
        "hostname = \"mx.test\"\n{extra}\n[listeners]\nsmtp = [\"127.0.0.1:0\"]\nimap = [\"127.0.0.1:0\"]\nimaps = [\"127.0.0.1:0\"]\npop3 = [\"127.0.0.1:0\"]\npop3s = [\"127.0.0.1:0\"]\nmanagesieve = [\"127.0.0.1:0\"]\nhttp = [\"127.0.0.1:0\"]\nsubmission = [\"127.0.0.1:0\"]\nsubmissions = [\"127.0.0.1:0\"]\nlmtp = [\"127.0.0.1:0\"]\n{passwords}"
    )
}

/// `[passwords]` for servers whose tests use short passwords like "pw".
pub const WEAK_PASSWORDS_OK: &str = "[passwords]\nmin-score = 0\n";

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with("")
    }

    /// `extra` is TOML placed before the [listeners] table (top-level keys
    /// and other tables).
    pub fn start_with(extra: &str) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("config.toml"), test_config(extra)).unwrap();
        Self::start_in(dir)
    }

    /// A server with an `https` listener too, presenting the certificate
    /// chain of `pki`, plus `extra`.
    pub fn start_https(pki: &pki::TestPki, extra: &str) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = test_config(&format!(
            "{extra}\n[tls]\ncertificate = \"{}\"\nprivate-key = \"{}\"\n",
            pki.chain.display(),
            pki.key.display()
        ))
        .replace(
            "http = [\"127.0.0.1:0\"]",
            "http = [\"127.0.0.1:0\"]\nhttps = [\"127.0.0.1:0\"]",
        );
        std::fs::write(dir.path().join("config.toml"), cfg).unwrap();
        Self::start_in(dir)
    }

    /// A server presenting the certificate chain of `pki`, plus `extra`.
    pub fn start_with_cert(extra: &str, pki: &pki::TestPki) -> TestServer {
        Self::start_with(&format!(
            "{extra}\n[tls]\ncertificate = \"{}\"\nprivate-key = \"{}\"\n",
            pki.chain.display(),
            pki.key.display()
        ))
    }

    pub fn start_in(dir: tempfile::TempDir) -> TestServer {
        Self::spawn(dir, Stdio::inherit(), None)
    }

    /// A server whose log (`PETREL_LOG=info`) goes to `log.txt` in its
    /// data directory, for tests of log lines ([`TestServer::log`]).
    pub fn start_logging(extra: &str) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("config.toml"), test_config(extra)).unwrap();
        let log = std::fs::File::create(dir.path().join("log.txt")).unwrap();
        Self::spawn(dir, Stdio::from(log), Some("info"))
    }

    /// The log once it holds `needle` (lines are written by a thread of
    /// their own, a moment after the event), or after 10 s as it is.
    pub fn log_until(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A server whose log is set by `extra`'s `[log]` table alone
    /// (PETREL_LOG unset); its standard error goes to `log.txt`.
    pub fn start_configured_log(extra: &str) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("config.toml"), test_config(extra)).unwrap();
        let log = std::fs::File::create(dir.path().join("log.txt")).unwrap();
        Self::spawn(dir, Stdio::from(log), Some(""))
    }

    /// As [`TestServer::start_logging`] for a data directory prepared by
    /// the caller (its own config.toml), logging into `log` (which should
    /// be `log.txt` in it).
    pub fn start_in_logging(dir: tempfile::TempDir, log: std::fs::File) -> TestServer {
        Self::spawn(dir, Stdio::from(log), Some("info"))
    }

    /// What the server has logged so far (see [`TestServer::start_logging`]).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log.txt")).unwrap_or_default()
    }

    fn spawn(dir: tempfile::TempDir, stderr: Stdio, log: Option<&str>) -> TestServer {
        let mut command = Command::new(petrel_bin());
        command
            .args(["serve", "--data-dir"])
            .arg(dir.path())
            .env("PETREL_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(stderr);
        // Servers log `info` by default: tests keep their stderr to
        // warnings unless they read the log. "" leaves the level to the
        // configuration (`log.level`).
        match log {
            Some("") => {}
            Some(filter) => {
                command.env("PETREL_LOG", filter);
            }
            None => {
                command.env("PETREL_LOG", "warn");
            }
        }
        let mut child = command.spawn().expect("start petrel");
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let mut ports = HashMap::new();
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                panic!("petrel exited before it was ready: {lines:?}");
            }
            let line = line.trim_end().to_string();
            if let Some(rest) = line.strip_prefix("petrel: listening ") {
                let mut it = rest.split(' ');
                let proto = it.next().unwrap().to_string();
                // Unix socket listeners print a path, not an address.
                if let Ok(addr) = it.next().unwrap().parse::<SocketAddr>() {
                    ports.insert(proto, addr);
                }
            }
            let ready = line.starts_with("petrel: ready");
            lines.push(line);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "petrel did not get ready");
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut l = String::new();
            while reader.read_line(&mut l).unwrap_or(0) > 0 {
                l.clear();
            }
        });
        TestServer {
            child,
            dir,
            ports,
            stdout: lines,
        }
    }

    pub fn addr(&self, proto: &str) -> SocketAddr {
        self.ports[proto]
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn api(&self) -> String {
        format!("http://{}", self.addr("http"))
    }

    /// Runs the petrel CLI against this server.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(petrel_bin())
            .arg("--url")
            .arg(self.api())
            .args(args)
            .env("PETREL_CREDENTIALS", format!("admin:{ADMIN_PASSWORD}"))
            .output()
            .expect("run petrel cli")
    }

    /// Waits until `petrel search status` reports nothing waiting.
    pub async fn wait_indexed(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let out = self.cli_ok(&["search", "status"]);
            assert!(out.contains("index: on"), "{out}");
            if out.contains("waiting: 0") {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "indexer stuck: {out}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "petrel {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates a domain and an account with password "pw".
    pub fn account(&self, address: &str) {
        let domain = address.split('@').nth(1).unwrap();
        let _ = self.cli(&["domain", "create", domain]);
        self.cli_ok(&["account", "create", address, "--secret", "pw"]);
    }

    /// `petrel dkim create DOMAIN --selector SELECTOR`: the CLI's output
    /// and the DKIM TXT record value it prints.
    pub fn dkim_create(&self, domain: &str, selector: &str) -> (String, String) {
        let out = self.cli_ok(&["dkim", "create", domain, "--selector", selector]);
        // The key, from its quoted strings of at most 255 bytes.
        let txt = out
            .lines()
            .find(|l| l.starts_with(&format!("{selector}._domainkey")))
            .map(|l| l.split('"').skip(1).step_by(2).collect::<String>())
            .unwrap_or_else(|| panic!("no DKIM record in {out}"));
        (out, txt)
    }

    /// `petrel queue show` of every queued message, one after another.
    pub fn queued_errors(&self) -> String {
        let mut out = String::new();
        for line in self.cli_ok(&["queue", "list"]).lines() {
            let id = line.split('\t').next().unwrap();
            out.push_str(&self.cli_ok(&["queue", "show", id]));
        }
        out
    }

    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn sigterm(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id() as i32;
        unsafe_kill(pid, 15);
        self.child.wait().unwrap()
    }

    /// Stops the server with SIGKILL and returns its data directory.
    pub fn kill_keep_dir(mut self) -> tempfile::TempDir {
        self.sigkill();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

fn unsafe_kill(pid: i32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw line-oriented client for exact protocol exchanges, over TCP or
/// TLS.
pub struct LineClient<S = tokio::net::TcpStream> {
    pub r: tokio::io::BufReader<tokio::io::ReadHalf<S>>,
    pub w: tokio::io::WriteHalf<S>,
}

pub type TlsStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS connector that trusts exactly the certificates in the PEM text.
pub fn connector_trusting(pem: &[u8]) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
}

/// A TLS connector that trusts exactly the server's own certificate.
pub fn tls_connector(server: &TestServer) -> tokio_rustls::TlsConnector {
    connector_trusting(&std::fs::read(server.data_dir().join("tls/cert.pem")).unwrap())
}

impl LineClient<tokio::net::TcpStream> {
    pub async fn connect(addr: SocketAddr) -> LineClient {
        let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (r, w) = tokio::io::split(s);
        LineClient {
            r: tokio::io::BufReader::new(r),
            w,
        }
    }

    /// Connects from another loopback address (127.0.0.2 …), so the server
    /// sees a second client address on one machine.
    pub async fn connect_from(local: std::net::IpAddr, addr: SocketAddr) -> LineClient {
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind(SocketAddr::new(local, 0)).expect("bind");
        let s = sock.connect(addr).await.expect("connect");
        let (r, w) = tokio::io::split(s);
        LineClient {
            r: tokio::io::BufReader::new(r),
            w,
        }
    }

    /// Implicit TLS to `addr`, trusting `server`'s certificate.
    pub async fn connect_tls(server: &TestServer, addr: SocketAddr) -> LineClient<TlsStream> {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        Self::wrap_tls(server, tcp).await
    }

    /// Continues this connection over TLS (after STARTTLS was accepted).
    pub async fn upgrade(self, server: &TestServer) -> LineClient<TlsStream> {
        let tcp = self.r.into_inner().unsplit(self.w);
        Self::wrap_tls(server, tcp).await
    }

    async fn wrap_tls(server: &TestServer, tcp: tokio::net::TcpStream) -> LineClient<TlsStream> {
        let tls = tls_connector(server)
            .connect(
                rustls::pki_types::ServerName::try_from("mx.test").unwrap(),
                tcp,
            )
            .await
            .expect("TLS handshake");
        let (r, w) = tokio::io::split(tls);
        LineClient {
            r: tokio::io::BufReader::new(r),
            w,
        }
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> LineClient<S> {
    pub async fn send(&mut self, data: &str) {
        self.w.write_all(data.as_bytes()).await.unwrap();
        self.w.flush().await.unwrap();
    }

    pub async fn send_bytes(&mut self, data: &[u8]) {
        self.w.write_all(data).await.unwrap();
        self.w.flush().await.unwrap();
    }

    /// The next line without CRLF; "" at end of stream.
    pub async fn line(&mut self) -> String {
        self.line_opt().await.unwrap_or_default()
    }

    /// The next line without CRLF; None at end of stream.
    pub async fn line_opt(&mut self) -> Option<String> {
        let mut l = String::new();
        let n = tokio::time::timeout(Duration::from_secs(20), self.r.read_line(&mut l))
            .await
            .expect("server answered in time")
            .unwrap();
        if n == 0 {
            return None;
        }
        Some(l.trim_end_matches(['\r', '\n']).to_string())
    }

    /// Reads an SMTP reply (all continuation lines); returns the last line.
    pub async fn smtp_reply(&mut self) -> String {
        loop {
            let l = self.line().await;
            if l.len() < 4 || l.as_bytes()[3] != b'-' {
                return l;
            }
        }
    }

    /// Reads IMAP lines until the tagged reply for `tag`; returns all lines.
    pub async fn imap_until(&mut self, tag: &str) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let Some(l) = self.line_opt().await else {
                panic!("connection closed; got {out:?}");
            };
            let done = l.starts_with(&format!("{tag} "));
            out.push(l);
            if done {
                return out;
            }
        }
    }
}

/// A plain HTTP/1.1 GET without credentials; the whole response, head
/// and body.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut t = std::net::TcpStream::connect(addr).expect("connect");
    t.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    t.read_to_string(&mut out).unwrap();
    out
}

/// Sends one message over SMTP with the raw client; returns the DATA reply.
pub async fn smtp_send(addr: SocketAddr, from: &str, to: &[&str], body: &str) -> String {
    let mut c = LineClient::connect(addr).await;
    assert!(c.smtp_reply().await.starts_with("220"));
    c.send("EHLO client.test\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250"));
    c.send(&format!("MAIL FROM:<{from}>\r\n")).await;
    let r = c.smtp_reply().await;
    assert!(r.starts_with("250"), "{r}");
    for t in to {
        c.send(&format!("RCPT TO:<{t}>\r\n")).await;
        let r = c.smtp_reply().await;
        if !r.starts_with("250") {
            return r;
        }
    }
    c.send("DATA\r\n").await;
    let r = c.smtp_reply().await;
    assert!(r.starts_with("354"), "{r}");
    c.send(body).await;
    c.send("\r\n.\r\n").await;
    let r = c.smtp_reply().await;
    c.send("QUIT\r\n").await;
    r
}

/// Runs a Python script with the server's `proto` port and certificate
/// path as its arguments; checks it succeeded and returns what it printed.
pub fn run_python(script: &str, s: &TestServer, proto: &str) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(s.addr(proto).port().to_string())
        .arg(s.data_dir().join("tls/cert.pem"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Delivers a message from ann@remote.test to joe@example.org over SMTP
/// and checks the 250.
pub async fn deliver(s: &TestServer, subject: &str, body: &str) {
    let r = smtp_send(
        s.addr("smtp"),
        "ann@remote.test",
        &["joe@example.org"],
        &format!("From: ann@remote.test\r\nSubject: {subject}\r\n\r\n{body}"),
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
}

/// IMAP over plain TCP (the server must allow it: `[imap]
/// auth-without-tls = true`): logs in and returns the raw bytes of every
/// message in INBOX.
pub async fn imap_fetch_all(addr: SocketAddr, user: &str, pass: &str) -> Vec<Vec<u8>> {
    imap_fetch_mailbox(addr, user, pass, "INBOX").await
}

/// As [`imap_fetch_all`] for any mailbox.
pub async fn imap_fetch_mailbox(
    addr: SocketAddr,
    user: &str,
    pass: &str,
    mailbox: &str,
) -> Vec<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut c = LineClient::connect(addr).await;
    c.line().await;
    c.send(&format!("a LOGIN {user} {pass}\r\n")).await;
    let r = c.imap_until("a").await;
    assert!(r.last().unwrap().starts_with("a OK"), "{r:?}");
    c.send(&format!("b EXAMINE {mailbox}\r\n")).await;
    c.imap_until("b").await;
    c.send("c FETCH 1:* BODY.PEEK[]\r\n").await;
    let mut out = Vec::new();
    loop {
        let l = c.line().await;
        if l.starts_with("c ") {
            break;
        }
        if let Some(open) = l.rfind('{') {
            if l.ends_with('}') {
                let n: usize = l[open + 1..l.len() - 1].parse().unwrap();
                let mut buf = vec![0u8; n];
                c.r.read_exact(&mut buf).await.unwrap();
                out.push(buf);
            }
        }
    }
    out
}

/// Waits until `user`'s INBOX holds at least `n` messages; returns them.
pub async fn wait_for_mail(addr: SocketAddr, user: &str, n: usize) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let msgs = imap_fetch_all(addr, user, "pw").await;
        if msgs.len() >= n {
            return msgs;
        }
        assert!(
            Instant::now() < deadline,
            "{user} has {} messages, expected {n}",
            msgs.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Submits one message on the submission port as `user` (password "pw").
pub async fn submit(s: &TestServer, user: &str, to: &[&str], body: &str) -> String {
    use base64::Engine;
    let mut c = LineClient::connect(s.addr("submission")).await;
    c.smtp_reply().await;
    c.send("EHLO client.test\r\n").await;
    c.smtp_reply().await;
    let cred = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0pw"));
    c.send(&format!("AUTH PLAIN {cred}\r\n")).await;
    let r = c.smtp_reply().await;
    assert!(r.starts_with("235"), "{r}");
    c.send(&format!("MAIL FROM:<{user}>\r\n")).await;
    assert!(c.smtp_reply().await.starts_with("250"));
    for t in to {
        // "addr PARAMS" sends RCPT parameters too.
        let (addr, params) = t.split_once(' ').unwrap_or((t, ""));
        let params = if params.is_empty() {
            String::new()
        } else {
            format!(" {params}")
        };
        c.send(&format!("RCPT TO:<{addr}>{params}\r\n")).await;
        let r = c.smtp_reply().await;
        assert!(r.starts_with("250"), "{r}");
    }
    c.send("DATA\r\n").await;
    assert!(c.smtp_reply().await.starts_with("354"));
    c.send(body).await;
    c.send("\r\n.\r\n").await;
    let r = c.smtp_reply().await;
    c.send("QUIT\r\n").await;
    r
}

/// A server that speaks just enough SMTP to greet and refuse, and offers
/// no STARTTLS (a peer without TLS, for the client side's rules): its port
/// and every command it was sent, uppercased verb first.
pub async fn smtp_without_starttls() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let (r, mut w) = tcp.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 plain.test ESMTP\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    log.lock().unwrap().push(line.to_ascii_uppercase());
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-plain.test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n",
                        "MAIL" | "AUTH" => b"451 4.3.0 not today\r\n",
                        "QUIT" => b"221 2.0.0 bye\r\n",
                        _ => b"502 5.5.1 no\r\n",
                    };
                    if w.write_all(reply).await.is_err() || verb == "QUIT" {
                        break;
                    }
                }
            });
        }
    });
    (port, seen)
}

/// The Authentication-Results header Petrel added (`mx.test`), unfolded
/// lines kept.
pub fn auth_results(msg: &[u8]) -> String {
    let text = String::from_utf8_lossy(msg);
    let start = text
        .find("Authentication-Results: mx.test")
        .expect("our header");
    let rest = &text[start..];
    let mut end = 0;
    for (i, line) in rest.split_inclusive("\r\n").enumerate() {
        if i > 0 && !line.starts_with([' ', '\t']) {
            break;
        }
        end += line.len();
    }
    rest[..end].to_string()
}

/// Reads an HTTP request head (up to the blank line) from `s`, or what
/// came before the stream ended.
pub async fn read_http_head<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    req
}

/// Stores `text` as the global Sieve script `name` through the CLI.
pub fn put_global(s: &TestServer, name: &str, text: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("global.sieve");
    std::fs::write(&file, text).unwrap();
    s.cli(&["sieve", "global", "put", name, file.to_str().unwrap()])
}
