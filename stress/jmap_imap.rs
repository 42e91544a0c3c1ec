//! Stress: 50 JMAP clients and 50 IMAP clients on the same account for
//! 60 s (PETREL_STRESS_SECS), while SMTP delivers into the Inbox.
//!
//! JMAP clients query and read mailboxes, set and clear keywords, move
//! Emails (mailboxIds replaced), import messages, destroy their own
//! "del-" imports, read threads, and follow `Email/changes` into a model
//! of the account. IMAP clients select, fetch, store flags, move, append
//! and idle.
//!
//! Invariants:
//! - a client never sees a state string go back (Email, Mailbox, Thread
//!   states and queryState, per client, in the order it got them);
//! - `/changes` replays: at the end every JMAP client brings its model
//!   up from wherever it stopped (and from the state it started at, a
//!   minute old) and finds exactly the Emails, keywords and mailboxes a
//!   fresh Email/query + Email/get shows;
//! - nothing lost or doubled: every delivered, appended or imported
//!   message (but the "del-" ones) is in exactly one mailbox;
//! - one store, two views: each mailbox holds the same messages with the
//!   same flags through IMAP as through JMAP.

#[path = "../tests/common/mod.rs"]
mod common;

#[allow(dead_code)]
#[path = "../benches/jmap/client.rs"]
mod client;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::Jmap;
use common::*;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const JMAP_CLIENTS: usize = 50;
const IMAP_CLIENTS: usize = 50;
const BOXES: [&str; 3] = ["INBOX", "Shared1", "Shared2"];
const USER: &str = "joe@example.org";

/// An Email as a client models it: keywords and mailbox ids.
type Model = BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>;

#[derive(Default)]
struct Shared {
    violations: Vec<String>,
    /// Message-IDs that must survive (delivered, appended, imported).
    kept: Vec<String>,
}

fn message(id: &str) -> String {
    format!(
        "From: stress@remote.test\r\nTo: {USER}\r\nSubject: stress {id}\r\nMessage-ID: {id}\r\n\r\n{}\r\n",
        "j".repeat(200)
    )
}

fn num(v: &Value) -> u64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The states a client saw, by kind: each must not go back.
#[derive(Default)]
struct States(HashMap<&'static str, u64>);

impl States {
    fn saw(&mut self, kind: &'static str, v: &Value, out: &mut Vec<String>) {
        let n = num(v);
        let last = self.0.entry(kind).or_insert(0);
        if n < *last {
            out.push(format!("{kind} state went back from {last} to {n}"));
        }
        *last = n;
    }
}

fn set_of(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Every Email of the account: its id to (keywords, mailboxIds), and
/// the Email state they were read at.
async fn snapshot(j: &mut Jmap) -> (Model, Value) {
    let r = j
        .api(json!([["Email/query", {"accountId": j.account}, "q"]]))
        .await;
    let ids: Vec<Value> = r[0][1]["ids"].as_array().unwrap().clone();
    let mut model = Model::new();
    let mut state = Value::Null;
    for chunk in ids.chunks(400) {
        let r = j
            .api(json!([["Email/get", {"accountId": j.account, "ids": chunk,
                "properties": ["keywords", "mailboxIds"]}, "g"]]))
            .await;
        state = r[0][1]["state"].clone();
        for e in r[0][1]["list"].as_array().unwrap() {
            model.insert(
                e["id"].as_str().unwrap().to_string(),
                (set_of(&e["keywords"]), set_of(&e["mailboxIds"])),
            );
        }
    }
    if ids.is_empty() {
        let r = j
            .api(json!([["Email/get", {"accountId": j.account, "ids": [], "properties": ["id"]}, "g"]]))
            .await;
        state = r[0][1]["state"].clone();
    }
    (model, state)
}

/// Brings `model` from `since` to now with Email/changes (and Email/get
/// of what changed); the new state.
async fn sync(
    j: &mut Jmap,
    model: &mut Model,
    since: Value,
    states: &mut States,
    bad: &mut Vec<String>,
) -> Value {
    let mut since = since;
    loop {
        let r = j
            .api(json!([["Email/changes", {"accountId": j.account, "sinceState": since, "maxChanges": 500}, "c"]]))
            .await;
        let c = &r[0][1];
        // A batch's newState is where that batch ends (RFC 8620 §5.2):
        // past sinceState; only the last one is the current state.
        if num(&c["newState"]) < num(&since) {
            bad.push(format!(
                "Email/changes went back from {since} to {}",
                c["newState"]
            ));
        }
        if c["hasMoreChanges"] != true {
            states.saw("Email", &c["newState"], bad);
        }
        for d in c["destroyed"].as_array().unwrap() {
            model.remove(d.as_str().unwrap());
        }
        let changed: Vec<Value> = c["created"]
            .as_array()
            .unwrap()
            .iter()
            .chain(c["updated"].as_array().unwrap())
            .cloned()
            .collect();
        for chunk in changed.chunks(400) {
            let g = j
                .api(json!([["Email/get", {"accountId": j.account, "ids": chunk,
                    "properties": ["keywords", "mailboxIds"]}, "g"]]))
                .await;
            for e in g[0][1]["list"].as_array().unwrap() {
                model.insert(
                    e["id"].as_str().unwrap().to_string(),
                    (set_of(&e["keywords"]), set_of(&e["mailboxIds"])),
                );
            }
            // Gone again since: a later change says destroyed.
            for n in g[0][1]["notFound"].as_array().unwrap() {
                model.remove(n.as_str().unwrap());
            }
        }
        since = c["newState"].clone();
        if c["hasMoreChanges"] != true {
            return since;
        }
    }
}

async fn imap_cmd(c: &mut LineClient, tag: &str, text: &str) -> Vec<String> {
    c.send(&format!("{tag} {text}\r\n")).await;
    tokio::time::timeout(Duration::from_secs(60), c.imap_until(tag))
        .await
        .unwrap_or_else(|_| panic!("no IMAP answer in 60 s to {text}"))
}

async fn imap_login(addr: std::net::SocketAddr) -> LineClient {
    let mut c = LineClient::connect(addr).await;
    c.line().await;
    let r = imap_cmd(&mut c, "l", &format!("LOGIN {USER} pw")).await;
    assert!(r.last().unwrap().starts_with("l OK"), "{r:?}");
    c
}

/// (Message-ID, flags) of every message in an IMAP mailbox.
async fn imap_census(c: &mut LineClient, mailbox: &str) -> BTreeMap<String, BTreeSet<String>> {
    imap_cmd(c, "s", &format!("SELECT {mailbox}")).await;
    let r = imap_cmd(
        c,
        "f",
        "FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
    )
    .await;
    let mut out = BTreeMap::new();
    let mut flags = BTreeSet::new();
    for l in r {
        if l.starts_with("* ") && l.contains("FETCH") {
            flags = l
                .split("FLAGS (")
                .nth(1)
                .and_then(|r| r.split(')').next())
                .map(|f| {
                    f.split_whitespace()
                        .filter(|f| *f != "\\Recent")
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
        } else if let Some(id) = l
            .strip_prefix("Message-ID: ")
            .or(l.strip_prefix("Message-Id: "))
        {
            out.insert(id.trim().to_string(), flags.clone());
        }
    }
    out
}

/// IMAP flags as JMAP keywords (RFC 8621 §4.1.1).
fn keyword_of(flag: &str) -> String {
    match flag {
        "\\Seen" => "$seen".into(),
        "\\Flagged" => "$flagged".into(),
        "\\Answered" => "$answered".into(),
        "\\Draft" => "$draft".into(),
        f => f.to_lowercase(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jmap_and_imap_clients_on_one_account() {
    let secs: u64 = std::env::var("PETREL_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let s = TestServer::start_with(
        "[imap]\nauth-without-tls = true\nlimit-exempt = [\"127.0.0.0/8\"]\n[jmap]\nauth-without-tls = true\nmax-concurrent-requests = 128\n",
    );
    s.account(USER);
    let (imap, http, smtp) = (s.addr("imap"), s.addr("http"), s.addr("smtp"));
    {
        let mut c = imap_login(imap).await;
        for b in &BOXES[1..] {
            imap_cmd(&mut c, "c", &format!("CREATE {b}")).await;
        }
    }
    let shared = Arc::new(Mutex::new(Shared::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicUsize::new(0));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);

    let delivery = {
        let (stop, shared) = (stop.clone(), shared.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("<d-{n}@stress>");
                let r = smtp_send(smtp, "stress@remote.test", &[USER], &message(&id)).await;
                if r.starts_with("250") {
                    shared.lock().unwrap().kept.push(id);
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let mut tasks = Vec::new();
    for k in 0..JMAP_CLIENTS {
        let (shared, ops) = (shared.clone(), ops.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(k as u64);
            let mut j = Jmap::open(http, "/jmap/session", USER, "pw").await;
            let mut bad = Vec::new();
            let mut states = States::default();
            let r = j
                .api(json!([["Mailbox/get", {"accountId": j.account, "properties": ["name"]}, "m"]]))
                .await;
            let boxes: Vec<String> = r[0][1]["list"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| BOXES.iter().any(|b| b.eq_ignore_ascii_case(m["name"].as_str().unwrap())))
                .map(|m| m["id"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(boxes.len(), 3, "{}", r[0][1]);
            let (mut model, first_state) = snapshot(&mut j).await;
            let start_model = model.clone();
            let mut state = first_state.clone();
            let mut known: Vec<String> = model.keys().cloned().collect();
            let mut mine_del: Vec<String> = Vec::new();
            let mut n = 0;
            while tokio::time::Instant::now() < deadline {
                let a = &j.account.clone();
                match rng.gen_range(0..8) {
                    0 => {
                        let mb = &boxes[rng.gen_range(0..3)];
                        let r = j
                            .api(json!([
                                ["Email/query", {"accountId": a, "filter": {"inMailbox": mb},
                                    "sort": [{"property": "receivedAt", "isAscending": false}], "limit": 20}, "q"],
                                ["Email/get", {"accountId": a, "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                                    "properties": ["keywords", "mailboxIds", "threadId"]}, "g"]
                            ]))
                            .await;
                        states.saw("query", &r[0][1]["queryState"], &mut bad);
                        states.saw("Email", &r[1][1]["state"], &mut bad);
                        known = r[0][1]["ids"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|v| v.as_str().unwrap().to_string())
                            .collect();
                    }
                    1 if !known.is_empty() => {
                        let e = &known[rng.gen_range(0..known.len())];
                        let kw = ["$flagged", "$seen", "$stress"][rng.gen_range(0..3)];
                        let on = if rng.gen_bool(0.5) { json!(true) } else { Value::Null };
                        let r = j
                            .api(json!([["Email/set", {"accountId": a, "update": {e: {format!("keywords/{kw}"): on}}}, "s"]]))
                            .await;
                        states.saw("Email", &r[0][1]["newState"], &mut bad);
                    }
                    2 if !known.is_empty() => {
                        let e = &known[rng.gen_range(0..known.len())];
                        let to = &boxes[rng.gen_range(0..3)];
                        let r = j
                            .api(json!([["Email/set", {"accountId": a, "update": {e: {"mailboxIds": {to: true}}}}, "s"]]))
                            .await;
                        states.saw("Email", &r[0][1]["newState"], &mut bad);
                    }
                    3 => {
                        let del = rng.gen_bool(0.3);
                        let id = format!("<{}-j{k}-{n}@stress>", if del { "del" } else { "i" });
                        n += 1;
                        let blob = j.upload(message(&id).as_bytes()).await;
                        let r = j
                            .api(json!([["Email/import", {"accountId": a, "emails": {"i": {"blobId": blob,
                                "mailboxIds": {boxes[0].as_str(): true}}}}, "i"]]))
                            .await;
                        states.saw("Email", &r[0][1]["newState"], &mut bad);
                        match r[0][1]["created"]["i"]["id"].as_str() {
                            Some(e) if del => mine_del.push(e.to_string()),
                            Some(_) => shared.lock().unwrap().kept.push(id),
                            None => bad.push(format!("import failed: {}", r[0][1])),
                        }
                    }
                    4 if !mine_del.is_empty() => {
                        let e = mine_del.swap_remove(rng.gen_range(0..mine_del.len()));
                        let r = j
                            .api(json!([["Email/set", {"accountId": a, "destroy": [e]}, "s"]]))
                            .await;
                        states.saw("Email", &r[0][1]["newState"], &mut bad);
                    }
                    5 => {
                        state = sync(&mut j, &mut model, state, &mut states, &mut bad).await;
                    }
                    6 => {
                        let r = j
                            .api(json!([["Mailbox/get", {"accountId": a, "properties": ["totalEmails", "unreadEmails"]}, "m"]]))
                            .await;
                        states.saw("Mailbox", &r[0][1]["state"], &mut bad);
                    }
                    _ if !known.is_empty() => {
                        let e = &known[rng.gen_range(0..known.len())];
                        let r = j
                            .api(json!([
                                ["Email/get", {"accountId": a, "ids": [e], "properties": ["threadId"]}, "g"],
                                ["Thread/get", {"accountId": a, "#ids": {"resultOf": "g", "name": "Email/get", "path": "/list/*/threadId"}}, "t"]
                            ]))
                            .await;
                        states.saw("Thread", &r[1][1]["state"], &mut bad);
                        // A thread holds the Email it was found through,
                        // unless that went in between.
                        if let (Some(t), Some(_)) = (r[1][1]["list"].get(0), r[0][1]["list"].get(0)) {
                            let has = t["emailIds"].as_array().unwrap().iter().any(|x| x == e);
                            let gone = r[1][1]["state"] != r[0][1]["state"];
                            if !has && !gone {
                                bad.push(format!("thread {} lacks {e}", t["id"]));
                            }
                        }
                    }
                    _ => continue,
                }
                ops.fetch_add(1, Ordering::Relaxed);
            }
            shared.lock().unwrap().violations.extend(bad);
            (j, model, state, start_model, first_state)
        }));
    }

    let mut imap_tasks = Vec::new();
    for k in 0..IMAP_CLIENTS {
        let (shared, ops) = (shared.clone(), ops.clone());
        imap_tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(1000 + k as u64);
            let mut c = imap_login(imap).await;
            let mut n = 0;
            let mut mbox = "INBOX";
            imap_cmd(&mut c, "s", "SELECT INBOX").await;
            while tokio::time::Instant::now() < deadline {
                let tag = format!("t{n}");
                n += 1;
                let r = match rng.gen_range(0..6) {
                    0 => {
                        mbox = BOXES[rng.gen_range(0..3)];
                        imap_cmd(&mut c, &tag, &format!("SELECT {mbox}")).await
                    }
                    1 => imap_cmd(&mut c, &tag, "FETCH 1:* (UID FLAGS)").await,
                    2 => {
                        let f = ["\\Seen", "\\Flagged", "$stress"][rng.gen_range(0..3)];
                        let op = if rng.gen_bool(0.5) { '+' } else { '-' };
                        imap_cmd(&mut c, &tag, &format!("STORE 1:3 {op}FLAGS ({f})")).await
                    }
                    3 => {
                        let to = BOXES[rng.gen_range(0..3)];
                        imap_cmd(&mut c, &tag, &format!("MOVE 1 {to}")).await
                    }
                    4 => {
                        let id = format!("<a-{k}-{n}@stress>");
                        let m = message(&id);
                        let r = imap_cmd(
                            &mut c,
                            &tag,
                            &format!("APPEND {mbox} {{{}+}}\r\n{m}", m.len()),
                        )
                        .await;
                        if r.last().unwrap().starts_with(&format!("{tag} OK")) {
                            shared.lock().unwrap().kept.push(id);
                        }
                        r
                    }
                    _ => {
                        c.send(&format!("{tag} IDLE\r\n")).await;
                        let go = c.line().await;
                        if go.starts_with('+') {
                            tokio::time::sleep(Duration::from_millis(rng.gen_range(10..200))).await;
                            c.send("DONE\r\n").await;
                        }
                        c.imap_until(&tag).await
                    }
                };
                let last = r.last().cloned().unwrap_or_default();
                // NO (a message gone) and BAD for "1" in an empty mailbox
                // are fine; any other BAD is a misread command.
                if !(last.starts_with(&format!("{tag} OK"))
                    || last.starts_with(&format!("{tag} NO"))
                    || last.contains("out of range")
                    || last.contains("no such message"))
                {
                    shared
                        .lock()
                        .unwrap()
                        .violations
                        .push(format!("IMAP: {last}"));
                }
                ops.fetch_add(1, Ordering::Relaxed);
            }
            imap_cmd(&mut c, "z", "LOGOUT").await;
        }));
    }
    for t in imap_tasks {
        t.await.unwrap();
    }
    let mut ended = Vec::new();
    for t in tasks {
        ended.push(t.await.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    delivery.await.unwrap();

    // Everything is quiet: the checks.
    let mut bad = Vec::new();
    let mut j = Jmap::open(http, "/jmap/session", USER, "pw").await;
    let (now, _) = snapshot(&mut j).await;
    for (k, (mut cj, mut model, state, mut start, first)) in ended.into_iter().enumerate() {
        let mut states = States::default();
        sync(&mut cj, &mut model, state, &mut states, &mut bad).await;
        if model != now {
            bad.push(format!(
                "client {k}: /changes from its last state does not replay to /get"
            ));
        }
        // From the state it started at, a minute ago (every eighth).
        if k % 8 == 0 {
            sync(&mut cj, &mut start, first, &mut States::default(), &mut bad).await;
            if start != now {
                bad.push(format!(
                    "client {k}: /changes from its first state does not replay to /get"
                ));
            }
        }
    }
    // Message-IDs through JMAP, per mailbox, with keywords.
    let r = j
        .api(json!([["Mailbox/get", {"accountId": j.account, "properties": ["name"]}, "m"]]))
        .await;
    let names: HashMap<String, String> = r[0][1]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["name"].as_str().unwrap().to_uppercase(),
            )
        })
        .collect();
    let ids: Vec<String> = now.keys().cloned().collect();
    let mut jmap_view: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut where_is: HashMap<String, usize> = HashMap::new();
    for chunk in ids.chunks(400) {
        let g = j
            .api(json!([["Email/get", {"accountId": j.account, "ids": chunk, "properties": ["messageId", "keywords", "mailboxIds"]}, "g"]]))
            .await;
        for e in g[0][1]["list"].as_array().unwrap() {
            let mid = format!("<{}>", e["messageId"][0].as_str().unwrap_or(""));
            for mb in set_of(&e["mailboxIds"]) {
                *where_is.entry(mid.clone()).or_default() += 1;
                jmap_view
                    .entry(names[&mb].clone())
                    .or_default()
                    .insert(mid.clone(), set_of(&e["keywords"]));
            }
        }
    }
    let mut c = imap_login(imap).await;
    for b in BOXES {
        let census = imap_census(&mut c, b).await;
        let imap_view: BTreeMap<String, BTreeSet<String>> = census
            .into_iter()
            .map(|(id, flags)| (id, flags.iter().map(|f| keyword_of(f)).collect()))
            .collect();
        let jv = jmap_view
            .get(&b.to_uppercase())
            .cloned()
            .unwrap_or_default();
        if imap_view != jv {
            let only_imap: Vec<_> = imap_view
                .iter()
                .filter(|(k, v)| jv.get(*k) != Some(v))
                .take(3)
                .collect();
            let only_jmap: Vec<_> = jv
                .iter()
                .filter(|(k, v)| imap_view.get(*k) != Some(v))
                .take(3)
                .collect();
            bad.push(format!(
                "{b}: IMAP and JMAP differ: IMAP {only_imap:?}, JMAP {only_jmap:?}"
            ));
        }
    }
    let g = shared.lock().unwrap();
    for id in &g.kept {
        let n = where_is.get(id).copied().unwrap_or(0);
        if n != 1 {
            bad.push(format!("{id} is in {n} mailboxes"));
        }
    }
    println!(
        "stress: {JMAP_CLIENTS} JMAP and {IMAP_CLIENTS} IMAP clients, {secs} s, {} operations, {} messages kept, {} Emails at the end",
        ops.load(Ordering::Relaxed),
        g.kept.len(),
        now.len()
    );
    assert!(
        ops.load(Ordering::Relaxed) > JMAP_CLIENTS + IMAP_CLIENTS,
        "the clients did work"
    );
    assert!(
        g.kept.iter().any(|k| k.starts_with("<d-"))
            && g.kept.iter().any(|k| k.starts_with("<i-"))
            && g.kept.iter().any(|k| k.starts_with("<a-"))
    );
    let mut all = g.violations.clone();
    all.extend(bad);
    assert!(all.is_empty(), "{:#?}", &all[..all.len().min(20)]);
}
