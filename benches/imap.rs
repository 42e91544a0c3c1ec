//! IMAP figures against a real `petrel serve` (release build), over
//! loopback, printed as plain lines (`cargo xtask bench imap`):
//! - `UID FETCH 1:* (FLAGS UID ENVELOPE)` on a 10,000-message mailbox
//!   (target < 200 ms), time to the tagged OK;
//! - `SEARCH TEXT` over the same mailbox, answered from the full-text
//!   index once the indexer has caught up, and again over 100,000
//!   messages (target < 100 ms);
//! - 1,000 concurrent connections, logged in and IDLE: the server's RSS
//!   (target < 50 MB in total);
//! - where Dovecot is installed (dovecot-imapd), the same APPEND, FETCH
//!   and SEARCH workload against a private Dovecot, and the ratios;
//! - a mixed load of 10 and 50 clients ([`mixed`]) against both servers
//!   (`PETREL_BENCH_IMAP=mixed` runs only that; `PETREL_BENCH_MIXED_SECS`
//!   sets each run's length, 20 s by default).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const MESSAGES: usize = 10_000;
const LARGE: usize = 100_000;
const IDLE_CONNECTIONS: usize = 1_000;

mod server;
use server::Server;

#[allow(dead_code)]
#[path = "../tests/common/dovecot.rs"]
mod dovecot;
#[allow(dead_code)]
#[path = "../tests/common/port.rs"]
mod port;

#[path = "imap_mixed/mod.rs"]
mod mixed;

const MIXED_CLIENTS: [usize; 2] = [10, 50];

/// Writes back what earlier phases left dirty in the page cache, so that
/// neither server's synced writes wait on another phase's (after the
/// 100,000-message phase the first mixed run was a fifth slower).
fn settle() {
    let _ = std::process::Command::new("sync").status();
    std::thread::sleep(std::time::Duration::from_secs(2));
}

/// The mixed load against a fresh Petrel and, where installed, a fresh
/// Dovecot, each size in turn; then the ratios.
fn mixed_load(rt: &tokio::runtime::Runtime) {
    let secs: u64 = std::env::var("PETREL_BENCH_MIXED_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut petrel = Vec::new();
    {
        let server = start();
        for k in 0..MIXED_CLIENTS.iter().sum::<usize>() {
            server.cli(&["account", "create", &mixed::user(k), "--secret", "pw"]);
        }
        for n in MIXED_CLIENTS {
            settle();
            // Each size on accounts of its own, so both start alike.
            let m = rt.block_on(mixed::run_offset(
                server.addr("imap"),
                n,
                secs,
                petrel.len() * MIXED_CLIENTS[0],
            ));
            mixed::print("petrel", n, &m);
            petrel.push(m);
        }
    }
    if !dovecot::imap_installed() {
        println!(
            "imap mixed: Dovecot comparison skipped (apt-get install dovecot-core dovecot-imapd)"
        );
        return;
    }
    let dove = dovecot::Dovecot::start();
    let addr: SocketAddr = ([127, 0, 0, 1], dove.imap_port).into();
    for (i, n) in MIXED_CLIENTS.into_iter().enumerate() {
        settle();
        let d = rt.block_on(mixed::run_offset(addr, n, secs, i * MIXED_CLIENTS[0]));
        mixed::print("dovecot", n, &d);
        let p = &petrel[i];
        let p99: Vec<String> = p
            .per_command
            .iter()
            .filter_map(|(k, (_, lat))| {
                let (_, dl) = d.per_command.get(k)?;
                Some(format!(
                    "{k} {:.2}",
                    lat.as_secs_f64() / dl.as_secs_f64().max(1e-9)
                ))
            })
            .collect();
        println!(
            "imap mixed comparison {n} clients (petrel / dovecot): operations/s {:.2} (target >= 3); p99 latency {}",
            p.ops_per_sec / d.ops_per_sec,
            p99.join(", ")
        );
    }
}

fn start() -> Server {
    let s = Server::start(
        "[imap]\nauth-without-tls = true\nlimit-exempt = [\"127.0.0.0/8\"]\n",
        &["imap"],
    );
    s.cli(&["account", "create", "reader@bench.test", "--secret", "pw"]);
    s
}

struct Client {
    r: BufReader<tokio::io::ReadHalf<tokio::net::TcpStream>>,
    w: tokio::io::WriteHalf<tokio::net::TcpStream>,
}

impl Client {
    async fn login(addr: SocketAddr) -> Client {
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        // As mail clients do: no Nagle delay on small writes.
        s.set_nodelay(true).unwrap();
        let (r, w) = tokio::io::split(s);
        let mut c = Client {
            r: BufReader::new(r),
            w,
        };
        c.line().await;
        c.run("l", "LOGIN reader@bench.test pw").await;
        c
    }

    async fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).await.unwrap();
        l
    }

    /// Reads to the tagged reply of a command already sent.
    async fn run_continued(&mut self, tag: &str) -> usize {
        let mut n = 0;
        loop {
            let l = self.line().await;
            assert!(!l.is_empty(), "connection closed");
            n += l.len();
            if l.starts_with(&format!("{tag} ")) {
                assert!(l.starts_with(&format!("{tag} OK")), "{l}");
                return n;
            }
        }
    }

    /// Sends a command and reads to its tagged reply; returns the bytes
    /// read.
    async fn run(&mut self, tag: &str, cmd: &str) -> usize {
        self.w
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())
            .await
            .unwrap();
        self.run_continued(tag).await
    }
}

fn message(i: usize) -> String {
    format!(
        "From: Sender {i} <s{i}@remote.test>\r\nTo: reader@bench.test\r\nSubject: bench message {i}\r\nDate: Sun, 22 Nov 2026 06:00:00 +0000\r\nMessage-ID: <b{i}@remote.test>\r\n\r\n{}{}\r\n",
        "lorem ipsum dolor sit amet ".repeat(30),
        if i % 1000 == 7 { "needle" } else { "" }
    )
}

/// Opens 1,000 connections that log in, select the Inbox and IDLE, and
/// returns the server's memory before and with them (KB, as `memory`
/// measures it).
async fn idle_connections(addr: SocketAddr, memory: impl Fn() -> u64) -> (u64, u64) {
    let before = memory();
    let mut idle = Vec::new();
    for _ in 0..IDLE_CONNECTIONS {
        let mut c = Client::login(addr).await;
        c.run("s", "SELECT INBOX").await;
        c.w.write_all(b"i IDLE\r\n").await.unwrap();
        let go = c.line().await;
        assert!(go.starts_with('+'), "{go}");
        idle.push(c);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = memory();
    drop(idle);
    tokio::time::sleep(Duration::from_secs(1)).await;
    (before, after)
}

fn print_idle(who: &str, what: &str, (before, after): (u64, u64)) {
    println!(
        "imap [{who}]: {IDLE_CONNECTIONS} connections logged in, selected and IDLE {what}: {:.1} MB in total (before {:.1} MB; {:.1} KB per connection; target < 50 MB)",
        after as f64 / 1024.0,
        before as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / IDLE_CONNECTIONS as f64
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// What one server did with the workload.
struct Figures {
    append_rate: f64,
    fetch: Duration,
    search: Duration,
}

/// The same workload for any server: fill the Inbox with 10,000 messages
/// over 4 connections, then time UID FETCH and SEARCH TEXT.
async fn workload(addr: SocketAddr, who: &str, petrel: Option<&Server>) -> Figures {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..4 {
        tasks.push(tokio::spawn(async move {
            let mut c = Client::login(addr).await;
            for i in (k..MESSAGES).step_by(4) {
                let m = message(i);
                // A synchronising literal: not every server has LITERAL+.
                c.w.write_all(format!("a APPEND INBOX {{{}}}\r\n", m.len()).as_bytes())
                    .await
                    .unwrap();
                let go = c.line().await;
                assert!(go.starts_with('+'), "{go}");
                c.w.write_all(format!("{m}\r\n").as_bytes()).await.unwrap();
                c.run_continued("a").await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let append_rate = MESSAGES as f64 / t.elapsed().as_secs_f64();
    println!(
        "imap [{who}]: appended {MESSAGES} messages in {:.1} s ({append_rate:.0}/s, 4 connections)",
        t.elapsed().as_secs_f64()
    );
    if let Some(s) = petrel {
        let t = Instant::now();
        s.wait_indexed();
        println!(
            "imap [{who}]: full-text indexer caught up {} ms after the last APPEND",
            t.elapsed().as_millis()
        );
    }
    let mut c = Client::login(addr).await;
    c.run("s", "SELECT INBOX").await;
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..5 {
        let t = Instant::now();
        bytes = c.run("f", "UID FETCH 1:* (FLAGS UID ENVELOPE)").await;
        times.push(t.elapsed());
    }
    let fetch = median(times.clone());
    println!(
        "imap [{who}]: UID FETCH 1:* (FLAGS UID ENVELOPE), {MESSAGES} messages, {} KB: median {} ms, best {} ms (target < 200 ms)",
        bytes / 1024,
        fetch.as_millis(),
        times.iter().min().unwrap().as_millis()
    );
    let search = time_search(&mut c, 3).await;
    println!(
        "imap [{who}]: SEARCH TEXT over {MESSAGES} messages: median {} ms",
        search.as_millis()
    );
    Figures {
        append_rate,
        fetch,
        search,
    }
}

/// Median time of SEARCH TEXT for a word in one message of 1,000.
async fn time_search(c: &mut Client, runs: usize) -> Duration {
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        c.run("t", "SEARCH TEXT needle").await;
        times.push(t.elapsed());
    }
    median(times)
}

/// Grows the Inbox to 100,000 messages and times SEARCH TEXT again.
async fn search_at_scale(server: &Server) {
    let addr = server.addr("imap");
    let t = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..4 {
        tasks.push(tokio::spawn(async move {
            let mut c = Client::login(addr).await;
            for i in (MESSAGES + k..LARGE).step_by(4) {
                let m = message(i);
                c.w.write_all(format!("a APPEND INBOX {{{}+}}\r\n{m}\r\n", m.len()).as_bytes())
                    .await
                    .unwrap();
                c.run_continued("a").await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let appended = t.elapsed();
    server.wait_indexed();
    println!(
        "imap [petrel]: grew the Inbox to {LARGE} messages in {:.1} s; indexer caught up after {:.1} s",
        appended.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    let mut c = Client::login(addr).await;
    c.run("s", "SELECT INBOX").await;
    let search = time_search(&mut c, 5).await;
    let fts = server.dir.path().join("fts");
    let size: u64 = std::fs::read_dir(&fts)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    println!(
        "imap [petrel]: SEARCH TEXT over {LARGE} messages ({} hits): median {} ms (target < 100 ms); index {:.0} MB on disk, server RSS {:.0} MB",
        LARGE / 1000,
        search.as_millis(),
        size as f64 / 1e6,
        server.rss_kb() as f64 / 1024.0
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if std::env::var("PETREL_BENCH_IMAP").as_deref() == Ok("mixed") {
        mixed_load(&rt);
        return;
    }
    let server = start();
    let petrel = rt.block_on(async {
        // First on a freshly started server with an empty Inbox.
        let fresh = idle_connections(server.addr("imap"), || server.rss_kb()).await;
        print_idle("petrel", "on a fresh server, empty Inbox (RSS)", fresh);
        let fresh_pss = idle_connections(server.addr("imap"), || server.pss_kb()).await;
        print_idle("petrel", "on a fresh server, empty Inbox (PSS)", fresh_pss);
        let f = workload(server.addr("imap"), "petrel", Some(&server)).await;
        let loaded = idle_connections(server.addr("imap"), || server.rss_kb()).await;
        print_idle("petrel", "on the 10,000-message Inbox (RSS)", loaded);
        search_at_scale(&server).await;
        (f, fresh_pss)
    });
    let (petrel, petrel_idle) = petrel;
    drop(server);
    if !dovecot::imap_installed() {
        println!("imap: Dovecot comparison skipped (apt-get install dovecot-core dovecot-lmtpd dovecot-imapd)");
        return;
    }
    let dove = dovecot::Dovecot::start();
    let addr: SocketAddr = ([127, 0, 0, 1], dove.imap_port).into();
    // The same idle connections first, on the fresh server: Dovecot runs
    // a process per connection, so its memory is the sum over all its
    // processes, shared pages divided among them (PSS).
    let dove_idle = rt.block_on(idle_connections(addr, || dove.memory_kb().1));
    let (rss, _, procs) = dove.memory_kb();
    print_idle(
        "dovecot",
        "on a fresh server, empty Inbox (PSS summed over its processes)",
        dove_idle,
    );
    println!(
        "imap [dovecot]: after the connections closed: {procs} processes, {:.1} MB RSS summed",
        rss as f64 / 1024.0
    );
    let d = rt.block_on(workload(addr, "dovecot", None));
    println!(
        "imap comparison (petrel / dovecot): APPEND rate {:.2}, UID FETCH time {:.2}, SEARCH TEXT time {:.2}, memory with 1,000 idle connections {:.2}",
        petrel.append_rate / d.append_rate,
        petrel.fetch.as_secs_f64() / d.fetch.as_secs_f64(),
        petrel.search.as_secs_f64() / d.search.as_secs_f64(),
        petrel_idle.1 as f64 / dove_idle.1.max(1) as f64
    );
    drop(dove);
    mixed_load(&rt);
}
