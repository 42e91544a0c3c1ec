//! Test harness: starts a real `petrel serve` process on free ports with a
//! throwaway data directory, and small raw protocol clients.
#![allow(dead_code)]

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

pub fn petrel_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_petrel"))
}

/// Config for tests: every listener on port 0 (the OS picks), plus extra TOML.
pub fn test_config(extra: &str) -> String {
    format!(
        "hostname = \"mx.test\"\n{extra}\n[listeners]\nsmtp = [\"127.0.0.1:0\"]\nimap = [\"127.0.0.1:0\"]\nimaps = [\"127.0.0.1:0\"]\nhttp = [\"127.0.0.1:0\"]\n"
    )
}

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

    pub fn start_in(dir: tempfile::TempDir) -> TestServer {
        let mut child = Command::new(petrel_bin())
            .args(["serve", "--data-dir"])
            .arg(dir.path())
            .env("PETREL_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start petrel");
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
                let addr: SocketAddr = it.next().unwrap().parse().unwrap();
                ports.insert(proto, addr);
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

/// A raw line-oriented client for exact protocol exchanges.
pub struct LineClient {
    pub r: tokio::io::BufReader<tokio::io::ReadHalf<tokio::net::TcpStream>>,
    pub w: tokio::io::WriteHalf<tokio::net::TcpStream>,
}

impl LineClient {
    pub async fn connect(addr: SocketAddr) -> LineClient {
        let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (r, w) = tokio::io::split(s);
        LineClient {
            r: tokio::io::BufReader::new(r),
            w,
        }
    }

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
