//! Mixed IMAP load: N clients, each on its own account's Inbox, doing a
//! random mix of SELECT, FETCH, STORE, EXPUNGE, APPEND and LOGOUT (with a
//! new login) for a fixed time; the same script, the same seeds, against
//! Petrel and Dovecot in one run. Prints operations per second and the
//! 99th-percentile latency of each command.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Messages in each Inbox before the timed part.
const PREFILL: usize = 200;

struct Conn {
    r: BufReader<tokio::io::ReadHalf<tokio::net::TcpStream>>,
    w: tokio::io::WriteHalf<tokio::net::TcpStream>,
    exists: usize,
}

impl Conn {
    async fn login(addr: SocketAddr, user: &str) -> Conn {
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        let (r, w) = tokio::io::split(s);
        let mut c = Conn {
            r: BufReader::new(r),
            w,
            exists: 0,
        };
        c.line().await;
        c.run("l", &format!("LOGIN {user} pw")).await;
        c
    }

    async fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).await.unwrap();
        assert!(!l.is_empty(), "connection closed");
        l
    }

    /// Reads to the tagged OK, following EXISTS and EXPUNGE so the next
    /// command names messages that exist.
    async fn until(&mut self, tag: &str) {
        loop {
            let l = self.line().await;
            if let Some(rest) = l.strip_prefix("* ") {
                let mut w = rest.split_whitespace();
                if let (Some(n), Some(what)) = (w.next(), w.next()) {
                    match (n.parse::<usize>(), what) {
                        (Ok(n), "EXISTS") => self.exists = n,
                        (Ok(_), "EXPUNGE") => self.exists = self.exists.saturating_sub(1),
                        _ => {}
                    }
                }
            }
            if l.starts_with(&format!("{tag} ")) {
                assert!(l.starts_with(&format!("{tag} OK")), "{l}");
                return;
            }
        }
    }

    async fn run(&mut self, tag: &str, cmd: &str) {
        self.w
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())
            .await
            .unwrap();
        self.until(tag).await;
    }

    /// APPEND with a synchronising literal (not every server has
    /// LITERAL+).
    async fn append(&mut self, tag: &str, msg: &str) {
        self.w
            .write_all(format!("{tag} APPEND INBOX {{{}}}\r\n", msg.len()).as_bytes())
            .await
            .unwrap();
        let go = self.line().await;
        assert!(go.starts_with('+'), "{go}");
        self.w
            .write_all(format!("{msg}\r\n").as_bytes())
            .await
            .unwrap();
        self.until(tag).await;
    }
}

fn message(user: usize, i: usize) -> String {
    format!(
        "From: Sender {i} <s{i}@remote.test>\r\nTo: user{user}@bench.test\r\nSubject: mixed load {i}\r\nDate: Sun, 22 Nov 2026 06:00:00 +0000\r\nMessage-ID: <m{user}.{i}@remote.test>\r\n\r\n{}\r\n",
        "lorem ipsum dolor sit amet ".repeat(40)
    )
}

pub fn user(k: usize) -> String {
    format!("user{k}@bench.test")
}

/// What one run measured.
pub struct Mixed {
    pub ops_per_sec: f64,
    /// Per command: operations and 99th-percentile latency.
    pub per_command: BTreeMap<&'static str, (usize, Duration)>,
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

/// Fills each client's Inbox, then runs the mix for `secs` seconds; the
/// clients use the accounts from number `first` on.
pub async fn run_offset(addr: SocketAddr, clients: usize, secs: u64, first: usize) -> Mixed {
    let mut fill = Vec::new();
    for k in first..first + clients {
        fill.push(tokio::spawn(async move {
            let mut c = Conn::login(addr, &user(k)).await;
            for i in 0..PREFILL {
                c.append("a", &message(k, i)).await;
            }
            c.run("z", "LOGOUT").await;
        }));
    }
    for f in fill {
        f.await.unwrap();
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for k in first..first + clients {
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(k as u64);
            let mut lat: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
            let mut c = Conn::login(addr, &user(k)).await;
            c.run("s", "SELECT INBOX").await;
            let mut n = PREFILL;
            while Instant::now() < deadline {
                let op = rng.gen_range(0..100);
                let t = Instant::now();
                let name = match op {
                    0..=14 => {
                        c.run("s", "SELECT INBOX").await;
                        "SELECT"
                    }
                    15..=39 => {
                        // A client opening a few recent messages.
                        let from = c.exists.saturating_sub(9).max(1);
                        c.run(
                            "f",
                            &format!("FETCH {from}:* (UID FLAGS ENVELOPE BODY.PEEK[])"),
                        )
                        .await;
                        "FETCH"
                    }
                    40..=49 => {
                        c.run("h", "FETCH 1:* (UID FLAGS)").await;
                        "FETCH flags"
                    }
                    50..=69 => {
                        let m = rng.gen_range(1..=c.exists.max(1));
                        c.run("t", &format!("STORE {m} +FLAGS (\\Seen)")).await;
                        "STORE"
                    }
                    70..=79 => {
                        // Keep the Inbox near its size: delete what was
                        // appended.
                        if c.exists > PREFILL / 2 {
                            c.run(
                                "d",
                                &format!("STORE {} +FLAGS.SILENT (\\Deleted)", c.exists),
                            )
                            .await;
                            c.run("e", "EXPUNGE").await;
                        } else {
                            c.run("e", "EXPUNGE").await;
                        }
                        "EXPUNGE"
                    }
                    80..=94 => {
                        n += 1;
                        c.append("a", &message(k, n)).await;
                        "APPEND"
                    }
                    _ => {
                        c.run("z", "LOGOUT").await;
                        c = Conn::login(addr, &user(k)).await;
                        c.run("s", "SELECT INBOX").await;
                        "LOGOUT+LOGIN+SELECT"
                    }
                };
                lat.entry(name).or_default().push(t.elapsed());
            }
            c.run("z", "LOGOUT").await;
            lat
        }));
    }
    let mut all: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
    for t in tasks {
        for (k, v) in t.await.unwrap() {
            all.entry(k).or_default().extend(v);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let total: usize = all.values().map(Vec::len).sum();
    Mixed {
        ops_per_sec: total as f64 / elapsed,
        per_command: all
            .into_iter()
            .map(|(k, v)| (k, (v.len(), p99(v))))
            .collect(),
    }
}

pub fn print(who: &str, clients: usize, m: &Mixed) {
    let cmds: Vec<String> = m
        .per_command
        .iter()
        .map(|(k, (n, p))| format!("{k} {n} ops p99 {:.1} ms", p.as_secs_f64() * 1e3))
        .collect();
    println!(
        "imap mixed [{who}] {clients} clients: {:.0} operations/s; {}",
        m.ops_per_sec,
        cmds.join(", ")
    );
}
