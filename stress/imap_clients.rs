//! Stress: 100 IMAP clients for 60 s (PETREL_STRESS_SECS) doing random
//! SELECT, FETCH, STORE, APPEND, EXPUNGE, MOVE, SEARCH and IDLE on three
//! mailboxes of one account, while SMTP delivers into the Inbox.
//!
//! Invariants checked while running and at the end:
//! - in every FETCH listing, UIDs ascend strictly;
//! - a (mailbox, UIDVALIDITY, UID) never names two different messages;
//! - a session's HIGHESTMODSEQ for a mailbox never goes down;
//! - every delivered or appended message is in exactly one mailbox at the
//!   end (MOVE keeps one copy), except the "del-" messages clients may
//!   delete, which are in at most one;
//! - every sequence number the server sends (EXPUNGE, FETCH, SEARCH) is
//!   valid in the client's view at that moment: at most the count of
//!   messages it was told of (EXISTS, less the EXPUNGEs since);
//! - EXISTS never shrinks the view without EXPUNGE;
//! - a keyword is announced in FLAGS before a FETCH shows it;
//! - a message is \Recent in at most one session.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng};

const CLIENTS: usize = 100;
const BOXES: [&str; 3] = ["INBOX", "Shared1", "Shared2"];

#[derive(Default)]
struct Seen {
    /// (mailbox, uidvalidity, uid) -> Message-ID.
    uids: HashMap<(String, u64, u32), String>,
    /// (mailbox, uidvalidity, uid) -> the client that saw it \Recent.
    recent: HashMap<(String, u64, u32), usize>,
    violations: Vec<String>,
}

/// What one client was told about its selected mailbox.
#[derive(Default)]
struct ClientView {
    exists: u32,
    keywords: Vec<String>,
}

const SYSTEM: [&str; 6] = [
    "\\Answered",
    "\\Flagged",
    "\\Deleted",
    "\\Seen",
    "\\Draft",
    "\\Recent",
];

/// The flags of a `FLAGS (...)` list in `line`.
fn flags_in(line: &str) -> Vec<String> {
    line.split("FLAGS (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .map(|f| f.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

impl ClientView {
    /// Follows the untagged responses of one answer, reporting numbers
    /// outside the view and keywords used before FLAGS announced them.
    /// `uid_search`: SEARCH answers hold UIDs, not sequence numbers.
    fn follow(&mut self, lines: &[String], uid_search: bool, what: &str) -> Vec<String> {
        let mut bad = Vec::new();
        for l in lines {
            let Some(rest) = l.strip_prefix("* ") else {
                continue;
            };
            let mut words = rest.split(' ');
            let (first, second) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            if first == "FLAGS" {
                self.keywords = flags_in(rest);
            } else if first == "SEARCH" && !uid_search {
                for n in rest[6..]
                    .split_whitespace()
                    .filter_map(|n| n.parse::<u32>().ok())
                {
                    if n == 0 || n > self.exists {
                        bad.push(format!("{what}: SEARCH names {n} of {}", self.exists));
                    }
                }
            } else if let Ok(n) = first.parse::<u32>() {
                match second {
                    "EXISTS" => {
                        if n < self.exists {
                            bad.push(format!("{what}: EXISTS {n} after {}", self.exists));
                        }
                        self.exists = n;
                    }
                    "EXPUNGE" => {
                        if n == 0 || n > self.exists {
                            bad.push(format!("{what}: {n} EXPUNGE of {}", self.exists));
                        }
                        self.exists = self.exists.saturating_sub(1);
                    }
                    "FETCH" => {
                        if n == 0 || n > self.exists {
                            bad.push(format!("{what}: {n} FETCH of {}", self.exists));
                        }
                        for f in flags_in(rest) {
                            let known = SYSTEM.iter().any(|s| s.eq_ignore_ascii_case(&f))
                                || self.keywords.iter().any(|k| k.eq_ignore_ascii_case(&f));
                            if !known {
                                bad.push(format!("{what}: {f} in FETCH before FLAGS"));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        bad
    }
}

impl Seen {
    fn record(&mut self, mailbox: &str, validity: u64, uid: u32, id: &str) {
        let key = (mailbox.to_string(), validity, uid);
        match self.uids.get(&key) {
            Some(old) if old != id => self
                .violations
                .push(format!("UID {uid} of {mailbox} named {old} and then {id}")),
            Some(_) => {}
            None => {
                self.uids.insert(key, id.to_string());
            }
        }
    }
}

fn field(lines: &[String], name: &str) -> Option<u64> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&format!("* OK [{name} ")))
        .and_then(|l| l.split(']').next())
        .and_then(|n| n.parse().ok())
}

/// (uid, Message-ID, \Recent) of every message in a `UID FETCH 1:*
/// (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])` answer, in answer
/// order.
fn listing(lines: &[String]) -> Vec<(u32, String, bool)> {
    let mut out = Vec::new();
    let mut uid = None;
    let mut recent = false;
    for l in lines {
        if l.starts_with("* ") && l.contains(" FETCH (") {
            uid = l
                .split("UID ")
                .nth(1)
                .and_then(|r| r.split([' ', ')']).next())
                .and_then(|n| n.parse::<u32>().ok());
            recent = flags_in(l).iter().any(|f| f == "\\Recent");
        } else if let Some(id) = l.strip_prefix("Message-ID: ") {
            if let Some(u) = uid.take() {
                out.push((u, id.trim().to_string(), recent));
            }
        }
    }
    out
}

/// Lists a mailbox's (UID, Message-ID), checks that UIDs ascend and
/// records them; returns the raw answer and the listing.
async fn list_checked(
    c: &mut LineClient,
    tag: &str,
    seen: &Mutex<Seen>,
    mbox: &str,
    validity: u64,
    client: usize,
) -> (Vec<String>, Vec<(u32, String, bool)>) {
    let r = cmd(
        c,
        tag,
        "UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
    )
    .await;
    let list = listing(&r);
    let mut g = seen.lock().unwrap();
    if list.windows(2).any(|w| w[0].0 >= w[1].0) {
        g.violations
            .push(format!("UIDs not ascending in {mbox}: {list:?}"));
    }
    for (uid, id, recent) in &list {
        g.record(mbox, validity, *uid, id);
        if *recent {
            let key = (mbox.to_string(), validity, *uid);
            let owner = *g.recent.entry(key).or_insert(client);
            if owner != client {
                g.violations.push(format!(
                    "UID {uid} of {mbox} \\Recent in clients {owner} and {client}"
                ));
            }
        }
    }
    (r, list)
}

/// The slowest wait for a line, per command (name), for the report.
static SLOWEST: Mutex<Vec<(Duration, String)>> = Mutex::new(Vec::new());

/// Sends a command and reads to its tagged answer. A wait of more than
/// 20 s for a line is a violation (reported with the command); up to 300
/// s is waited, so that the run can tell which command was slow.
async fn cmd(c: &mut LineClient, tag: &str, text: &str) -> Vec<String> {
    use tokio::io::AsyncBufReadExt;
    c.send(&format!("{tag} {text}\r\n")).await;
    let mut out = Vec::new();
    let mut longest = Duration::ZERO;
    loop {
        let t = Instant::now();
        let mut l = String::new();
        let n = tokio::time::timeout(Duration::from_secs(300), c.r.read_line(&mut l))
            .await
            .unwrap_or_else(|_| panic!("no line in 300 s after {text}"))
            .unwrap();
        assert!(n > 0, "connection closed after {text}: {out:?}");
        longest = longest.max(t.elapsed());
        let l = l.trim_end_matches(['\r', '\n']).to_string();
        let done = l.starts_with(&format!("{tag} "));
        out.push(l);
        if done {
            break;
        }
    }
    let name: String = text
        .split(['\r', '{'])
        .next()
        .unwrap_or("")
        .chars()
        .take(60)
        .collect();
    let mut slow = SLOWEST.lock().unwrap();
    slow.push((longest, name));
    if slow.len() > 4096 {
        slow.sort_by_key(|e| std::cmp::Reverse(e.0));
        slow.truncate(64);
    }
    out
}

fn message(id: &str) -> String {
    format!(
        "From: stress@remote.test\r\nSubject: {id}\r\nMessage-ID: {id}\r\n\r\n{}\r\n",
        "s".repeat(300)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_clients_on_shared_mailboxes() {
    let secs: u64 = std::env::var("PETREL_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n# Many clients from one address: the per-address limits do not apply.\nlimit-exempt = [\"127.0.0.0/8\"]\n");
    s.account("joe@example.org");
    let imap = s.addr("imap");
    {
        let mut c = LineClient::connect(imap).await;
        c.line().await;
        cmd(&mut c, "a", "LOGIN joe@example.org pw").await;
        for b in &BOXES[1..] {
            cmd(&mut c, "c", &format!("CREATE {b}")).await;
        }
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let appended = Arc::new(Mutex::new(Vec::<String>::new()));
    let ops = Arc::new(AtomicUsize::new(0));

    // SMTP keeps delivering into the Inbox.
    let smtp = s.addr("smtp");
    let delivered = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("<d-{n}@stress>");
                let r = smtp_send(
                    smtp,
                    "stress@remote.test",
                    &["joe@example.org"],
                    &message(&id),
                )
                .await;
                if r.starts_with("250") {
                    ids.push(id);
                }
                n += 1;
            }
            ids
        })
    };

    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut clients = Vec::new();
    for k in 0..CLIENTS {
        let (seen, appended, ops) = (seen.clone(), appended.clone(), ops.clone());
        clients.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(k as u64);
            let mut c = LineClient::connect(imap).await;
            c.line().await;
            cmd(&mut c, "l", "LOGIN joe@example.org pw").await;
            cmd(&mut c, "e", "ENABLE CONDSTORE").await;
            let mut highest: HashMap<&str, u64> = HashMap::new();
            let mut current: Option<(&str, u64)> = None;
            let mut view = ClientView::default();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let tag = format!("t{k}x{n}");
                let op = rng.gen_range(0..10);
                let Some((mbox, validity)) = current.filter(|_| op != 0) else {
                    // SELECT: HIGHESTMODSEQ never goes down for a session.
                    let b = BOXES[rng.gen_range(0..BOXES.len())];
                    let r = cmd(&mut c, &tag, &format!("SELECT {b}")).await;
                    view = ClientView::default();
                    let bad = view.follow(&r, false, &format!("SELECT {b}"));
                    seen.lock().unwrap().violations.extend(bad);
                    let (Some(v), Some(h)) = (field(&r, "UIDVALIDITY"), field(&r, "HIGHESTMODSEQ"))
                    else {
                        seen.lock()
                            .unwrap()
                            .violations
                            .push(format!("SELECT {b}: {r:?}"));
                        continue;
                    };
                    let prev = highest.insert(b, h).unwrap_or(0);
                    if h < prev {
                        seen.lock()
                            .unwrap()
                            .violations
                            .push(format!("HIGHESTMODSEQ of {b} went from {prev} to {h}"));
                    }
                    current = Some((b, v));
                    continue;
                };
                let r = match op {
                    1 | 2 => list_checked(&mut c, &tag, &seen, mbox, validity, k).await.0,
                    3 => {
                        let flag = ["\\Seen", "\\Flagged", "$Stress"][rng.gen_range(0..3)];
                        let sign = if rng.gen_bool(0.5) { '+' } else { '-' };
                        cmd(
                            &mut c,
                            &tag,
                            &format!("STORE 1:* {sign}FLAGS.SILENT ({flag})"),
                        )
                        .await
                    }
                    4 => {
                        // Some appended messages may be deleted later.
                        let del = rng.gen_bool(0.5);
                        let id = format!("<{}a-{k}-{n}@stress>", if del { "del-" } else { "" });
                        let body = message(&id);
                        let b = BOXES[rng.gen_range(0..BOXES.len())];
                        let r = cmd(
                            &mut c,
                            &tag,
                            &format!("APPEND {b} {{{}+}}\r\n{body}", body.len()),
                        )
                        .await;
                        if r.last()
                            .is_some_and(|l| l.starts_with(&format!("{tag} OK")))
                        {
                            appended.lock().unwrap().push(id);
                        }
                        r
                    }
                    5 => {
                        // Delete the "del-" messages of this mailbox.
                        let found =
                            cmd(&mut c, &tag, "UID SEARCH HEADER Message-ID \"<del-\"").await;
                        let uids: Vec<String> = found
                            .iter()
                            .find_map(|l| l.strip_prefix("* SEARCH"))
                            .map(|r| r.split_whitespace().map(String::from).collect())
                            .unwrap_or_default();
                        if uids.is_empty() {
                            found
                        } else {
                            // Every answer of the three, for the view.
                            let set = uids.join(",");
                            let mut all = found;
                            all.extend(
                                cmd(
                                    &mut c,
                                    &format!("{tag}s"),
                                    &format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"),
                                )
                                .await,
                            );
                            all.extend(cmd(&mut c, &tag, &format!("UID EXPUNGE {set}")).await);
                            all
                        }
                    }
                    6 => {
                        let to = BOXES[rng.gen_range(0..BOXES.len())];
                        cmd(&mut c, &tag, &format!("MOVE 1 {to}")).await
                    }
                    7 => cmd(&mut c, &tag, "SEARCH UNSEEN SUBJECT stress").await,
                    8 => {
                        c.send(&format!("{tag} IDLE\r\n")).await;
                        let go = c.line().await;
                        if go.starts_with('+') {
                            tokio::time::sleep(Duration::from_millis(rng.gen_range(10..200))).await;
                            c.send("DONE\r\n").await;
                        }
                        c.imap_until(&tag).await
                    }
                    _ => cmd(&mut c, &tag, "NOOP").await,
                };
                ops.fetch_add(1, Ordering::Relaxed);
                let bad = view.follow(&r, op == 5, &format!("op {op} in {mbox}"));
                seen.lock().unwrap().violations.extend(bad);
                let last = r.last().cloned().unwrap_or_default();
                // Tagged NO is allowed (e.g. MOVE of a message gone), and so
                // is BAD for MOVE 1 in a mailbox that became empty; any
                // other BAD means Petrel misread a valid command.
                let fine = last.starts_with(&format!("{tag} OK"))
                    || last.starts_with(&format!("{tag} NO"))
                    || (op == 6 && last.contains("out of range"));
                if !fine {
                    seen.lock()
                        .unwrap()
                        .violations
                        .push(format!("{last} after op {op}"));
                }
            }
            let r = cmd(&mut c, "z", "LOGOUT").await;
            let bad = view.follow(&r, false, "LOGOUT");
            seen.lock().unwrap().violations.extend(bad);
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let delivered = delivered.await.unwrap();

    // Final census.
    let mut c = LineClient::connect(imap).await;
    c.line().await;
    cmd(&mut c, "a", "LOGIN joe@example.org pw").await;
    let mut count: HashMap<String, usize> = HashMap::new();
    for b in BOXES {
        let r = cmd(&mut c, "s", &format!("SELECT {b}")).await;
        let v = field(&r, "UIDVALIDITY").unwrap();
        for (_, id, _) in list_checked(&mut c, "f", &seen, b, v, usize::MAX).await.1 {
            *count.entry(id).or_default() += 1;
        }
    }
    let appended = appended.lock().unwrap().clone();
    let mut g = seen.lock().unwrap();
    for id in delivered.iter().chain(appended.iter()) {
        let n = count.get(id).copied().unwrap_or(0);
        let ok = if id.starts_with("<del-") {
            n <= 1
        } else {
            n == 1
        };
        if !ok {
            g.violations.push(format!("{id} is in {n} mailboxes"));
        }
    }
    let mut slow = SLOWEST.lock().unwrap().clone();
    slow.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (d, name) in slow.iter().take(8) {
        println!(
            "stress: slowest line wait {:.1} s in {name}",
            d.as_secs_f64()
        );
        if *d > Duration::from_secs(20) {
            g.violations
                .push(format!("{:.1} s without a line in {name}", d.as_secs_f64()));
        }
    }
    println!(
        "stress: {} clients, {secs} s, {} IMAP operations, {} delivered, {} appended, {} UIDs seen",
        CLIENTS,
        ops.load(Ordering::Relaxed),
        delivered.len(),
        appended.len(),
        g.uids.len()
    );
    assert!(
        ops.load(Ordering::Relaxed) > CLIENTS,
        "the clients did work"
    );
    assert!(!delivered.is_empty() && !appended.is_empty());
    assert!(
        g.violations.is_empty(),
        "{:#?}",
        &g.violations[..g.violations.len().min(20)]
    );
}
