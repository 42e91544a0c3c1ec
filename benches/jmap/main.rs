//! JMAP figures against a real `petrel serve` (release build) over
//! loopback, printed as plain lines (`cargo xtask bench jmap`), with the
//! targets of issue 13:
//! - `Email/import` of 4 KB messages over 8 connections (each message
//!   uploaded, then imported ten to a request): messages/s, every one
//!   synced before its response (target >= 2,000/s); this fills the
//!   Inbox to 100,000 messages (`PETREL_BENCH_JMAP_MESSAGES` changes it);
//! - `Email/query` (inMailbox, receivedAt descending, limit 50) plus
//!   `Email/get` of those 50 with the properties a mail list shows,
//!   preview included, in one request, end to end: p50 (target < 30 ms);
//! - push latency, from the SMTP 250 to the `state` event on an open
//!   EventSource: p50 (target < 50 ms);
//! - 1,000 open EventSource connections: the server's extra RSS
//!   (target < 30 MB);
//! - where Cyrus IMAP is installed (Debian's cyrus-imapd with
//!   cyrus-caldav, whose httpd serves JMAP), the same import and
//!   query + get workload against a private Cyrus, and the ratios. Its
//!   EventSource is not in Debian's build (it answers 204), so the push
//!   figures stand alone. `PETREL_BENCH_JMAP_CYRUS=skip` leaves Cyrus
//!   out (filling it takes minutes).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[allow(dead_code)]
#[path = "../server.rs"]
mod server;
use server::smtp_reply;
use server::Server;

mod client;
mod cyrus;
#[allow(dead_code)]
#[path = "../../tests/common/dovecot.rs"]
mod dovecot;
#[allow(dead_code)]
#[path = "../../tests/common/port.rs"]
mod port;
use client::Jmap;

const CONNECTIONS: usize = 8;
const BATCH: usize = 10;
const EVENT_SOURCES: usize = 1_000;
const PUSHES: usize = 50;
const QUERIES: usize = 30;

/// The session resource's path and the user name (password "pw").
type Login = (&'static str, &'static str);

fn messages() -> usize {
    std::env::var("PETREL_BENCH_JMAP_MESSAGES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000)
}

/// A message of about 4 KB.
fn message(i: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Sender {i} <s{i}@remote.test>\r\nTo: reader@bench.test\r\nSubject: bench message {i}\r\nDate: Sun, 22 Nov 2026 06:00:00 +0000\r\nMessage-ID: <j{i}@remote.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    );
    while m.len() < 4000 {
        m.push_str("lorem ipsum dolor sit amet, consectetur adipiscing elit ");
        m.push_str(&i.to_string());
        m.push_str("\r\n");
    }
    m.into_bytes()
}

async fn inbox(j: &mut Jmap) -> String {
    let r = j
        .api(json!([["Mailbox/get", {"accountId": j.account, "properties": ["role"]}, "m"]]))
        .await;
    r[0][1]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "inbox")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Uploads and imports messages `from..to` over [`CONNECTIONS`]
/// connections; messages per second.
async fn import(addr: SocketAddr, (session, user): Login, from: usize, to: usize) -> f64 {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..CONNECTIONS {
        tasks.push(tokio::spawn(async move {
            let mut j = Jmap::open(addr, session, user, "pw").await;
            let inbox = inbox(&mut j).await;
            let mine: Vec<usize> = (from + k..to).step_by(CONNECTIONS).collect();
            for batch in mine.chunks(BATCH) {
                let mut emails = serde_json::Map::new();
                for i in batch {
                    let blob = j.upload(&message(*i)).await;
                    emails.insert(
                        format!("m{i}"),
                        json!({"blobId": blob, "mailboxIds": {inbox.as_str(): true}}),
                    );
                }
                let r = j
                    .api(json!([["Email/import", {"accountId": j.account, "emails": emails}, "i"]]))
                    .await;
                let created = r[0][1]["created"].as_object().map_or(0, |c| c.len());
                assert_eq!(created, batch.len(), "{}", r[0][1]);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (to - from) as f64 / t.elapsed().as_secs_f64()
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Email/query + Email/get of the 50 newest, [`QUERIES`] times; the
/// first (cold) time, p50 and p90.
async fn query_get(addr: SocketAddr, (session, user): Login) -> (Duration, Duration, Duration) {
    let mut j = Jmap::open(addr, session, user, "pw").await;
    let inbox = inbox(&mut j).await;
    let calls = json!([
        ["Email/query", {"accountId": j.account, "filter": {"inMailbox": inbox},
            "sort": [{"property": "receivedAt", "isAscending": false}], "limit": 50}, "q"],
        ["Email/get", {"accountId": j.account,
            "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
            "properties": ["id", "threadId", "mailboxIds", "keywords", "from", "to",
                "subject", "receivedAt", "size", "preview", "hasAttachment"]}, "g"]
    ]);
    let mut times = Vec::new();
    for _ in 0..QUERIES {
        let t = Instant::now();
        let r = j.api(calls.clone()).await;
        times.push(t.elapsed());
        let list = r[1][1]["list"].as_array().unwrap();
        assert_eq!(list.len(), 50, "{}", r[1][1]);
        assert!(list[0]["preview"].as_str().is_some_and(|p| !p.is_empty()));
    }
    let first = times[0];
    (
        first,
        percentile(times.clone(), 0.5),
        percentile(times, 0.9),
    )
}

/// Opens an EventSource on a raw connection and reads to the end of the
/// response head; the reader, positioned at the event stream.
async fn event_source(
    addr: SocketAddr,
    path: &str,
    auth: &str,
) -> BufReader<tokio::net::TcpStream> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(
        format!(
            "GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: {auth}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    assert!(line.contains(" 200"), "event source: {line}");
    loop {
        line.clear();
        r.read_line(&mut line).await.unwrap();
        if line == "\r\n" || line.is_empty() {
            return r;
        }
    }
}

type Lines = BufReader<tokio::net::TcpStream>;

/// SMTP 250 to the EventSource `state` event, [`PUSHES`] times: p50 and
/// p90 (the event may come before the client has read the 250; that
/// counts as no wait), and the p50 from the end of the data (the
/// client's last write) to the event, which includes the delivery.
async fn push_latency(smtp: SocketAddr, events: Lines) -> (Duration, Duration, Duration) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut events = events;
        let mut line = String::new();
        loop {
            line.clear();
            if events.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line.starts_with("event: state") && tx.send(Instant::now()).is_err() {
                return;
            }
        }
    });
    let s = tokio::net::TcpStream::connect(smtp).await.unwrap();
    s.set_nodelay(true).unwrap();
    let (r, mut w) = tokio::io::split(s);
    let mut r = BufReader::new(r);
    smtp_reply(&mut r).await;
    w.write_all(b"EHLO bench.test\r\n").await.unwrap();
    smtp_reply(&mut r).await;
    let (mut times, mut from_data) = (Vec::new(), Vec::new());
    for i in 0..PUSHES {
        tokio::time::sleep(Duration::from_millis(100)).await;
        while rx.try_recv().is_ok() {}
        w.write_all(b"MAIL FROM:<s@remote.test>\r\nRCPT TO:<reader@bench.test>\r\nDATA\r\n")
            .await
            .unwrap();
        for _ in 0..3 {
            let l = smtp_reply(&mut r).await;
            assert!(l.starts_with('2') || l.starts_with("354"), "{l}");
        }
        let mut m = message(1_000_000 + i);
        m.extend_from_slice(b".\r\n");
        w.write_all(&m).await.unwrap();
        let sent = Instant::now();
        let l = smtp_reply(&mut r).await;
        assert!(l.starts_with("250"), "{l}");
        let accepted = Instant::now();
        let event = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("no state event within 10 s")
            .unwrap();
        times.push(event.saturating_duration_since(accepted));
        from_data.push(event.saturating_duration_since(sent));
    }
    (
        percentile(times.clone(), 0.5),
        percentile(times, 0.9),
        percentile(from_data, 0.5),
    )
}

/// Opens [`EVENT_SOURCES`] event sources; the server's RSS (KB) before
/// and with them open.
async fn many_event_sources(
    addr: SocketAddr,
    path: &str,
    auth: &str,
    rss: impl Fn() -> u64,
) -> (u64, u64) {
    let before = rss();
    let mut open = Vec::new();
    for _ in 0..EVENT_SOURCES {
        open.push(event_source(addr, path, auth).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss();
    drop(open);
    (before, after)
}

struct Figures {
    import: f64,
    import_start: Instant,
    query_p50: Duration,
}

/// The workload every server gets: fill the Inbox by import, then time
/// query + get.
async fn workload(who: &str, addr: SocketAddr, login: Login) -> Figures {
    let n = messages();
    let t = Instant::now();
    let rate = import(addr, login, 0, n).await;
    let import_start = t;
    println!(
        "jmap [{who}]: Email/import of {n} 4 KB messages over {CONNECTIONS} connections ({BATCH} per request, each uploaded first) in {:.1} s: {rate:.0} messages/s (target >= 2,000/s)",
        t.elapsed().as_secs_f64()
    );
    let (first, p50, p90) = query_get(addr, login).await;
    println!(
        "jmap [{who}]: Email/query (inMailbox, receivedAt desc, limit 50) + Email/get of the 50 with preview on {n} messages: p50 {:.1} ms, p90 {:.1} ms, first {:.1} ms (target p50 < 30 ms)",
        ms(p50),
        ms(p90),
        ms(first)
    );
    Figures {
        import: rate,
        import_start,
        query_p50: p50,
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // PETREL_BENCH_JMAP_CONFIG: more configuration for Petrel (TOML),
    // e.g. "[search]\ndefer-above = 0" to index while importing.
    let extra = std::env::var("PETREL_BENCH_JMAP_CONFIG").unwrap_or_default();
    let server = Server::start(
        &format!("[jmap]\nauth-without-tls = true\nmax-concurrent-requests = 16\n[mail-auth]\nspf = \"off\"\ndkim = \"off\"\narc = \"off\"\ndmarc = \"off\"\niprev = \"off\"\n{extra}"),
        &["smtp"],
    );
    server.cli(&["account", "create", "reader@bench.test", "--secret", "pw"]);
    let http = server.addr("http");
    let petrel = rt.block_on(async {
        let mut j = Jmap::open(http, "/jmap/session", "reader@bench.test", "pw").await;
        let path = j.event_source_path();
        let auth = j.auth().to_string();
        let idle = many_event_sources(http, &path, &auth, || server.rss_kb()).await;
        println!(
            "jmap [petrel]: {EVENT_SOURCES} open EventSource connections: {:.1} MB extra RSS ({:.1} KB each; before {:.1} MB; target < 30 MB)",
            idle.1.saturating_sub(idle.0) as f64 / 1024.0,
            idle.1.saturating_sub(idle.0) as f64 / EVENT_SOURCES as f64,
            idle.0 as f64 / 1024.0
        );
        inbox(&mut j).await;
        let f = workload("petrel", http, ("/jmap/session", "reader@bench.test")).await;
        // The search index waits while the import runs (search.defer-above)
        // and catches up after: the whole job, import to searchable.
        server.wait_indexed();
        let whole = f.import_start.elapsed().as_secs_f64();
        println!(
            "jmap [petrel]: every imported message indexed for search {whole:.1} s after the import began (the queries above ran meanwhile): {:.0} messages/s imported and indexed",
            messages() as f64 / whole
        );
        let events = event_source(http, &path, &auth).await;
        let (p50, p90, data) = push_latency(server.addr("smtp"), events).await;
        println!(
            "jmap [petrel]: push latency, SMTP 250 to the EventSource state event, {PUSHES} deliveries: p50 {:.2} ms, p90 {:.2} ms (target p50 < 50 ms); from the end of DATA: p50 {:.2} ms",
            ms(p50),
            ms(p90),
            ms(data)
        );
        println!(
            "jmap [petrel]: server RSS after the run {:.0} MB",
            server.rss_kb() as f64 / 1024.0
        );
        f
    });
    drop(server);
    if std::env::var("PETREL_BENCH_JMAP_CYRUS").as_deref() == Ok("skip") {
        println!("jmap: Cyrus comparison skipped (PETREL_BENCH_JMAP_CYRUS=skip)");
        return;
    }
    if let Some(why) = cyrus::unavailable() {
        println!("jmap: Cyrus comparison skipped ({why})");
        return;
    }
    let cy = cyrus::Cyrus::start();
    let addr: SocketAddr = ([127, 0, 0, 1], cy.http_port).into();
    let c = rt.block_on(workload("cyrus", addr, ("/jmap/", "reader")));
    println!(
        "jmap [cyrus]: RSS of its processes after the run {:.0} MB",
        cy.rss_kb() as f64 / 1024.0
    );
    println!(
        "jmap comparison (petrel / cyrus): Email/import rate {:.2}, query + get p50 time {:.2}",
        petrel.import / c.import,
        petrel.query_p50.as_secs_f64() / c.query_p50.as_secs_f64()
    );
}
