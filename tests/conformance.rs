//! Runs every transcript in conformance/<protocol>/*.txt against a live
//! server and writes target/conformance/results.json for
//! `cargo xtask conformance`.
//!
//! Transcript syntax, one item per line:
//!   `# …`             comment (the first one names the RFC section)
//!   `! account ADDR`  before connecting: create ADDR (password "pw")
//!   `! deliver ADDR SUBJECT`  before connecting: deliver a message by SMTP
//!   `! config TOML`   a line of server configuration (a new server is
//!                     started for transcripts that set any)
//!   `C: text`         sent, followed by CRLF
//!   `S: pattern`      the next server line must match; `*` matches any
//!                     run of characters, `{name}` captures a word that
//!                     later `C:` lines can use as `{name}`
//! The connection goes to the listener named by the directory (smtp, imap).
//! In conformance/jmap a `C:` line is a JSON request POSTed to /jmap/api
//! on the http listener as the first account (or `GET /path`, a resource
//! fetched as that account); the server's "lines" are
//! `HTTP <status>` and then each method response (or the problem
//! document) as compact JSON with its object keys sorted.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use common::*;

fn glob(pattern: &str, text: &str, caps: &mut HashMap<String, String>) -> bool {
    // Captures first: {name} matches a run of non-space characters.
    fn go(p: &[u8], t: &[u8], caps: &mut Vec<(String, String)>) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..], caps)),
            Some(b'{') if p.get(1).is_some_and(|c| c.is_ascii_alphabetic()) => {
                let Some(close) = p.iter().position(|&c| c == b'}') else {
                    return t.first() == Some(&b'{') && go(&p[1..], &t[1..], caps);
                };
                let name = String::from_utf8_lossy(&p[1..close]).to_string();
                let max = t.iter().position(|&c| c == b' ').unwrap_or(t.len());
                for i in (1..=max).rev() {
                    caps.push((name.clone(), String::from_utf8_lossy(&t[..i]).to_string()));
                    if go(&p[close + 1..], &t[i..], caps) {
                        return true;
                    }
                    caps.pop();
                }
                false
            }
            Some(&c) => t.first() == Some(&c) && go(&p[1..], &t[1..], caps),
        }
    }
    let mut found = Vec::new();
    let ok = go(pattern.as_bytes(), text.as_bytes(), &mut found);
    if ok {
        caps.extend(found);
    }
    ok
}

struct Transcript {
    name: String,
    protocol: String,
    config: String,
    accounts: Vec<String>,
    deliveries: Vec<(String, String)>,
    steps: Vec<(char, String)>,
}

fn load(dir: &Path) -> Vec<Transcript> {
    let mut out = Vec::new();
    let mut protos: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    protos.sort();
    for p in protos {
        let protocol = p.file_name().unwrap().to_string_lossy().to_string();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&p)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|f| f.extension().is_some_and(|x| x == "txt"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let mut t = Transcript {
                name: format!("{protocol}/{}", f.file_name().unwrap().to_string_lossy()),
                protocol: protocol.clone(),
                config: String::new(),
                accounts: vec![],
                deliveries: vec![],
                steps: vec![],
            };
            for line in text.lines() {
                if let Some(a) = line.strip_prefix("! account ") {
                    t.accounts.push(a.trim().to_string());
                } else if let Some(d) = line.strip_prefix("! deliver ") {
                    let (to, subject) = d.trim().split_once(' ').unwrap_or((d.trim(), "test"));
                    t.deliveries.push((to.to_string(), subject.to_string()));
                } else if let Some(c) = line.strip_prefix("! config ") {
                    t.config.push_str(c);
                    t.config.push('\n');
                } else if let Some(c) = line.strip_prefix("C: ") {
                    t.steps.push(('C', c.to_string()));
                } else if let Some(s) = line.strip_prefix("S: ") {
                    t.steps.push(('S', s.to_string()));
                } else if line == "C:" || line == "S:" {
                    t.steps.push((line.chars().next().unwrap(), String::new()));
                }
            }
            out.push(t);
        }
    }
    out
}

async fn play(server: &TestServer, t: &Transcript) -> Result<(), String> {
    for a in &t.accounts {
        let domain = a.split('@').nth(1).unwrap_or("example.org");
        let _ = server.cli(&["domain", "create", domain]);
        server.cli_ok(&["account", "create", a, "--secret", "pw"]);
    }
    for (to, subject) in &t.deliveries {
        let body =
            format!("From: sender@remote.test\r\nSubject: {subject}\r\n\r\nBody of {subject}");
        let r = smtp_send(server.addr("smtp"), "sender@remote.test", &[to], &body).await;
        if !r.starts_with("250") {
            return Err(format!("delivery to {to} failed: {r}"));
        }
    }
    if t.protocol == "jmap" {
        return play_jmap(server, t);
    }
    let mut c = LineClient::connect(server.addr(&t.protocol)).await;
    let mut caps: HashMap<String, String> = HashMap::new();
    for (i, (kind, text)) in t.steps.iter().enumerate() {
        match kind {
            'C' => {
                let mut line = text.clone();
                for (k, v) in &caps {
                    line = line.replace(&format!("{{{k}}}"), v);
                }
                c.send(&format!("{line}\r\n")).await;
            }
            _ => {
                let got = c.line().await;
                if !glob(text, &got, &mut caps) {
                    return Err(format!("step {}: expected `{text}`, got `{got}`", i + 1));
                }
            }
        }
    }
    Ok(())
}

/// A JMAP transcript: each request's answer as lines (see the top).
fn play_jmap(server: &TestServer, t: &Transcript) -> Result<(), String> {
    let user = t
        .accounts
        .first()
        .ok_or("a JMAP transcript needs `! account`")?;
    let url = format!("http://{}/jmap/api", server.addr("http"));
    let mut caps: HashMap<String, String> = HashMap::new();
    let mut pending: std::collections::VecDeque<String> = Default::default();
    for (i, (kind, text)) in t.steps.iter().enumerate() {
        match kind {
            'C' => {
                let mut body = text.clone();
                for (k, v) in &caps {
                    body = body.replace(&format!("{{{k}}}"), v);
                }
                let mut curl = std::process::Command::new("curl");
                curl.args(["-s", "-u", &format!("{user}:pw"), "-w", "\n%{http_code}"]);
                // `GET /path` fetches that resource (the session, say).
                match body.strip_prefix("GET ") {
                    Some(path) => curl.arg(format!("http://{}{path}", server.addr("http"))),
                    None => curl
                        .args(["-H", "Content-Type: application/json", "--data-binary"])
                        .args([&body, &url]),
                };
                let out = curl.output().map_err(|e| format!("curl: {e}"))?;
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                let (json, status) = text.rsplit_once('\n').unwrap_or(("", &text));
                pending.push_back(format!("HTTP {status}"));
                let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
                match v.get("methodResponses").and_then(|r| r.as_array()) {
                    Some(list) => pending.extend(list.iter().map(|r| r.to_string())),
                    None if !json.is_empty() => pending.push_back(v.to_string()),
                    None => {}
                }
            }
            _ => {
                let got = pending.pop_front().unwrap_or_default();
                // A name captured before stands for its value here too.
                let mut pattern = text.clone();
                for (k, v) in &caps {
                    pattern = pattern.replace(&format!("{{{k}}}"), v);
                }
                if !glob(&pattern, &got, &mut caps) {
                    return Err(format!("step {}: expected `{pattern}`, got `{got}`", i + 1));
                }
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcripts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let all = load(&root.join("conformance"));
    assert!(!all.is_empty());
    let mut results = BTreeMap::new();
    let mut failures = Vec::new();
    // Transcripts that share a configuration share a server; each gets its
    // own accounts (create is idempotent enough: duplicates only fail).
    let mut servers: HashMap<String, TestServer> = HashMap::new();
    for t in &all {
        let server = servers
            .entry(t.config.clone())
            .or_insert_with(|| TestServer::start_with(&t.config));
        let r = play(server, t).await;
        if let Err(e) = &r {
            failures.push(format!("{}: {e}", t.name));
        }
        println!(
            "transcript {} ... {}",
            t.name,
            if r.is_ok() { "ok" } else { "FAILED" }
        );
        results.insert(t.name.clone(), r.is_ok());
    }
    let out = root.join("target/conformance");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&results).unwrap(),
    )
    .unwrap();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn glob_matching() {
    let mut caps = HashMap::new();
    assert!(glob(
        "250-* Hello *",
        "250-mx.test Hello 127.0.0.1",
        &mut caps
    ));
    assert!(glob(
        "* OK [UIDVALIDITY {v}] *",
        "* OK [UIDVALIDITY 42] UIDs valid",
        &mut caps
    ));
    assert_eq!(caps["v"], "42");
    assert!(glob("BODY[] {15}", "BODY[] {15}", &mut caps));
    assert!(!glob("BODY[] {15}", "BODY[] {17}", &mut caps));
    assert!(!glob("250 *", "550 no", &mut caps));
}
