//! What an operator watches: the log (format, file, SIGHUP, one line per
//! SMTP transaction, login and delivery attempt), Prometheus metrics
//! (checked by `promtool` and scraped by a real Prometheus), `petrel
//! status` and lockouts. Each against a running server.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A raw HTTP GET with extra header lines; the whole response.
fn http_get_with(addr: SocketAddr, path: &str, headers: &str) -> String {
    let mut t = std::net::TcpStream::connect(addr).expect("connect");
    t.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut out = String::new();
    t.read_to_string(&mut out).unwrap();
    out
}

fn body(response: &str) -> &str {
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("")
}

/// The value of the sample `series` (name with labels, exactly as
/// rendered) in Prometheus text, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

fn metrics_text(s: &TestServer) -> String {
    let r = http_get(s.addr("http"), "/metrics");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(
        r.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{r}"
    );
    body(&r).to_string()
}

async fn imap_login(s: &TestServer, user: &str, pass: &str) -> String {
    let mut c = LineClient::connect(s.addr("imap")).await;
    c.line().await;
    c.send(&format!("a LOGIN {user} {pass}\r\n")).await;
    let r = c.imap_until("a").await.join("\n");
    c.send("z LOGOUT\r\n").await;
    r
}

const PLAIN_IMAP: &str = "[imap]\nauth-without-tls = true\n";

/// Counters move with what happens on the wire, and the exposition passes
/// `promtool check metrics` (Prometheus' own linter).
#[tokio::test]
async fn metrics_follow_traffic_and_pass_promtool() {
    let s = TestServer::start_with(PLAIN_IMAP);
    s.account("joe@example.org");
    let before = metrics_text(&s);
    assert_eq!(
        sample(
            &before,
            "petrel_smtp_messages_total{listener=\"smtp\",result=\"accepted\"}"
        ),
        None,
        "nothing was sent yet"
    );
    deliver(&s, "counted", "one").await;
    let r = smtp_send(
        s.addr("smtp"),
        "ann@remote.test",
        &["nobody@example.org"],
        "Subject: x\r\n\r\nx",
    )
    .await;
    assert!(r.starts_with("550 5.1.1"), "{r}");
    assert!(imap_login(&s, "joe@example.org", "wrong")
        .await
        .contains("a NO"));
    assert!(imap_login(&s, "joe@example.org", "pw")
        .await
        .contains("a OK"));

    let text = metrics_text(&s);
    let v =
        |series: &str| sample(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
    assert_eq!(
        v("petrel_smtp_messages_total{listener=\"smtp\",result=\"accepted\"}"),
        1.0
    );
    assert_eq!(v("petrel_smtp_rejections_total{status=\"5.1.1\"}"), 1.0);
    assert_eq!(v("petrel_smtp_sessions_total{listener=\"smtp\"}"), 2.0);
    assert_eq!(v("petrel_imap_sessions_total"), 2.0);
    assert_eq!(v("petrel_imap_commands_total{command=\"LOGIN\"}"), 2.0);
    assert_eq!(v("petrel_logins_total{result=\"failed\"}"), 1.0);
    assert_eq!(v("petrel_smtp_message_size_bytes_count"), 1.0);
    assert!(v("petrel_store_transaction_seconds_count") >= 1.0);
    assert!(v("petrel_store_commit_seconds_count") >= 1.0);
    assert_eq!(v("petrel_queue_messages"), 0.0);
    assert_eq!(v("petrel_lockouts"), 0.0);
    // The indexer is not waiting for bulk arrivals (search.defer-above).
    assert_eq!(v("petrel_search_index_waiting"), 0.0);
    assert_eq!(
        v(&format!(
            "petrel_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    assert!(text.contains("# TYPE petrel_store_transaction_seconds histogram"));

    let mut lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (cargo xtask setup installs Debian's prometheus)");
    lint.stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = lint.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A real Prometheus scrapes `/metrics` and its query API returns our
/// counter.
#[tokio::test]
async fn prometheus_scrapes_the_endpoint() {
    let s = TestServer::start();
    s.account("joe@example.org");
    deliver(&s, "scraped", "one").await;
    deliver(&s, "scraped", "two").await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: petrel\n    static_configs:\n      - targets: ['{}']\n",
            s.addr("http")
        ),
    )
    .unwrap();
    let port = common::port::free_port();
    let mut prom = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (cargo xtask setup installs Debian's prometheus)");
    let query = "/api/v1/query?query=petrel_smtp_messages_total%7Bresult%3D%22accepted%22%7D";
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    let found = loop {
        if std::net::TcpStream::connect(addr).is_ok() {
            last = http_get(addr, query);
            if last.contains("\"value\":[") && last.contains(",\"2\"]") {
                break true;
            }
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let up = http_get(addr, "/api/v1/query?query=up%7Bjob%3D%22petrel%22%7D");
    let _ = prom.kill();
    let _ = prom.wait();
    assert!(found, "Prometheus never saw 2 accepted messages: {last}");
    assert!(body(&up).contains(",\"1\"]"), "target not up: {up}");
}

/// Outside `metrics.allowed-networks` the endpoint wants an administrator;
/// `metrics.enable = false` removes it.
#[test]
fn metrics_access_is_configurable() {
    let s = TestServer::start_with("[metrics]\nallowed-networks = [\"10.0.0.0/8\"]\n");
    let r = http_get(s.addr("http"), "/metrics");
    assert!(r.starts_with("HTTP/1.1 401"), "{r}");
    assert!(
        r.to_ascii_lowercase().contains("www-authenticate: basic"),
        "{r}"
    );
    let cred = base64_encode(&format!("admin:{ADMIN_PASSWORD}"));
    let r = http_get_with(
        s.addr("http"),
        "/metrics",
        &format!("Authorization: Basic {cred}\r\n"),
    );
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(body(&r).contains("petrel_uptime_seconds"), "{r}");
    drop(s);

    let s = TestServer::start_with("[metrics]\nenable = false\n");
    let r = http_get(s.addr("http"), "/metrics");
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    assert!(r.contains("metrics.enable"), "{r}");
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Waits until `f` holds, up to 20 s.
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `log.format = "json"` and `log.file`: one JSON object per line, the
/// SMTP transaction with its fields; SIGHUP after a rotation opens a new
/// file; passwords never appear.
#[tokio::test]
async fn json_log_file_follows_sighup() {
    let mut s = TestServer::start_configured_log(&format!(
        "[log]\nformat = \"json\"\nfile = \"petrel.log\"\n{PLAIN_IMAP}"
    ));
    let secret = "Distinct-Secret-4471-xyzzy";
    let _ = s.cli(&["domain", "create", "example.org"]);
    s.cli_ok(&["account", "create", "joe@example.org", "--secret", secret]);
    let log = s.data_dir().join("petrel.log");
    deliver(&s, "first", "one").await;
    assert!(imap_login(&s, "joe@example.org", "wrong-one")
        .await
        .contains("a NO"));
    assert!(imap_login(&s, "joe@example.org", secret)
        .await
        .contains("a OK"));
    wait_until("the transaction line", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("smtp transaction accepted")
    });
    let text = std::fs::read_to_string(&log).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let tx = events
        .iter()
        .find(|e| e["fields"]["message"] == "smtp transaction accepted")
        .unwrap();
    let f = &tx["fields"];
    assert_eq!(tx["level"], "INFO");
    assert_eq!(f["client"], "127.0.0.1");
    assert_eq!(f["helo"], "client.test");
    assert_eq!(f["from"], "ann@remote.test");
    assert_eq!(f["to"], "joe@example.org");
    assert_eq!(f["listener"], "smtp");
    assert!(f["size"].as_u64().unwrap() > 20, "{tx}");
    assert!(
        f["reply"].as_str().unwrap().starts_with("250 2.0.0"),
        "{tx}"
    );
    assert!(f["auth"].as_str().unwrap().contains("spf="), "{tx}");
    let failed = events
        .iter()
        .find(|e| e["fields"]["message"] == "login failed")
        .unwrap();
    assert_eq!(failed["fields"]["ip"], "127.0.0.1");
    assert!(!text.contains(secret) && !text.contains("wrong-one"));
    assert!(!text.contains(ADMIN_PASSWORD));

    // logrotate's move, then SIGHUP.
    let rotated = s.data_dir().join("petrel.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    wait_until("the reopened file", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("log file reopened")
    });
    deliver(&s, "second", "two").await;
    wait_until("the second transaction in the new file", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("smtp transaction accepted")
    });
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert_eq!(old.matches("smtp transaction accepted").count(), 1);
    // The server still runs after the signal.
    assert!(s.child.try_wait().unwrap().is_none());
    s.sigterm();
}

/// The default text log on a pipe: no colour codes, a line per SMTP
/// transaction (accepted and refused), per failed login and per delivery
/// attempt, with the fields an operator greps for.
#[tokio::test]
async fn text_log_lines_for_transactions_logins_and_deliveries() {
    let s = TestServer::start_configured_log(
        "[smtp]\nauth-without-tls = true\n[resolver]\nnameservers = [\"127.0.0.1:9\"]\ntimeout = 1\n",
    );
    s.account("joe@example.org");
    deliver(&s, "plain", "one").await;
    let r = submit(
        &s,
        "joe@example.org",
        &["someone@unreachable.example"],
        "From: joe@example.org\r\nSubject: out\r\n\r\nout",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    // An author that is not the user: refused at the end of DATA.
    let r = submit(
        &s,
        "joe@example.org",
        &["joe@example.org"],
        "From: boss@elsewhere.test\r\nSubject: x\r\n\r\nx",
    )
    .await;
    assert!(r.starts_with("550 5.7.1"), "{r}");
    wait_until("the delivery attempt and refusal lines", || {
        let log = s.log();
        log.contains("petrel::queue::deliver: delivery ") && log.contains("transaction rejected")
    });
    let log = s.log();
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a piped log:\n{log}"
    );
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{log}"))
            .to_string()
    };
    let accepted = line("smtp transaction accepted");
    for field in [
        "client=127.0.0.1",
        "helo=\"client.test\"",
        "from=\"ann@remote.test\"",
        "to=\"joe@example.org\"",
        "reply=\"250 2.0.0",
    ] {
        assert!(accepted.contains(field), "{field} missing: {accepted}");
    }
    let submitted = log
        .lines()
        .find(|l| l.contains("smtp transaction accepted") && l.contains("listener=\"submission\""))
        .unwrap_or_else(|| panic!("no submission line in\n{log}"));
    assert!(
        submitted.contains("login=\"joe@example.org\""),
        "{submitted}"
    );
    let refused = line("smtp transaction rejected");
    assert!(refused.contains("reply=\"550 5.7.1"), "{refused}");
    let delivery = line("petrel::queue::deliver: delivery ");
    for field in [
        "to=\"someone@unreachable.example\"",
        "result=\"deferred\"",
        "queue_id=",
    ] {
        assert!(delivery.contains(field), "{field} missing: {delivery}");
    }
}

/// Repeated failures lock a login out; `petrel security lockouts` shows
/// it, the log says when it started, `petrel security unlock` lifts it;
/// `petrel status` reports the lockout count and the listeners.
#[tokio::test]
async fn lockouts_are_listed_logged_and_lifted() {
    let s = TestServer::start_logging(&format!(
        "[auth]\nmax-failures-per-account-ip = 3\n{PLAIN_IMAP}"
    ));
    s.account("joe@example.org");
    for _ in 0..3 {
        assert!(imap_login(&s, "joe@example.org", "bad")
            .await
            .contains("a NO"));
    }
    let refused = imap_login(&s, "joe@example.org", "pw").await;
    assert!(
        refused.contains("a NO"),
        "right password admitted while locked: {refused}"
    );
    let list = s.cli_ok(&["security", "lockouts"]);
    let row = list
        .lines()
        .find(|l| l.starts_with("account+network"))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        row.contains("joe@example.org") && row.contains("127.0.0.1"),
        "{row}"
    );
    assert!(s
        .log_until("lockout: joe@example.org")
        .contains("lockout: joe@example.org from 127.0.0.1"));
    let status = s.cli_ok(&["status"]);
    assert!(status.contains("Lockouts: 1"), "{status}");
    assert!(
        status.lines().any(
            |l| l.trim_start().starts_with("imap ") && l.ends_with(&s.addr("imap").to_string())
        ),
        "{status}"
    );
    assert!(status.contains("Queue: 0 message(s)"), "{status}");
    assert!(status.contains("worker running"), "{status}");

    let out = s.cli_ok(&["security", "unlock", "joe@example.org"]);
    assert!(
        out.contains("Lifted the lockout of joe@example.org"),
        "{out}"
    );
    assert!(imap_login(&s, "joe@example.org", "pw")
        .await
        .contains("a OK"));
    assert!(s
        .cli_ok(&["security", "lockouts"])
        .contains("No lockouts in force"));
    let again = s.cli_ok(&["security", "unlock", "10.9.9.9"]);
    assert!(again.contains("no lockout to lift"), "{again}");
}

/// `/readyz` names each check.
#[test]
fn readiness_reports_each_check() {
    let s = TestServer::start();
    let r = http_get(s.addr("http"), "/readyz");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    for part in [
        "\"store\":\"ok\"",
        "\"listeners\":\"ok\"",
        "\"queue\":\"ok\"",
    ] {
        assert!(r.contains(part), "{part}: {r}");
    }
}

/// `/readyz` says 503 while the store cannot take a write, naming why, and
/// 200 again once it can, with no restart: another process holds SQLite's
/// write lock for 8 s (`BEGIN EXCLUSIVE` from Python's sqlite3).
#[test]
fn readiness_fails_while_the_store_is_locked_and_recovers() {
    let s = TestServer::start_with("[store]\ntype = \"sqlite\"\n");
    let db = s.data_dir().join("store/petrel.sqlite3");
    assert!(db.exists(), "{}", db.display());
    let mut locker = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('BEGIN EXCLUSIVE')\n\
             print('locked', flush=True)\n\
             time.sleep(8)\n\
             c.execute('ROLLBACK')\n",
        )
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(locker.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    let r = http_get(s.addr("http"), "/readyz");
    assert!(r.starts_with("HTTP/1.1 503"), "{r}");
    assert!(
        r.contains("a store write took over 5 s") && r.contains("\"status\":\"not ready\""),
        "{r}"
    );
    assert!(locker.wait().unwrap().success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = http_get(s.addr("http"), "/readyz");
        if r.starts_with("HTTP/1.1 200") {
            assert!(r.contains("\"store\":\"ok\""), "{r}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{r}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
