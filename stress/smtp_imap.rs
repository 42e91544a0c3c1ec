//! Stress: 50 concurrent SMTP senders deliver 2,000 messages while 10 IMAP
//! clients select and fetch; afterwards every accepted message is in its
//! mailbox exactly once with unique, ascending UIDs.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;

const SENDERS: usize = 50;
const PER_SENDER: usize = 40;
const READERS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_delivery_and_reading() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n# Many clients from one address: the per-address limits do not apply.\nlimit-exempt = [\"127.0.0.0/8\"]\n");
    s.account("joe@example.org");
    let smtp = s.addr("smtp");
    let imap = s.addr("imap");
    let done = Arc::new(AtomicBool::new(false));

    let mut readers = Vec::new();
    for r in 0..READERS {
        let done = done.clone();
        readers.push(tokio::spawn(async move {
            let mut c = LineClient::connect(imap).await;
            c.line().await;
            c.send("a LOGIN joe@example.org pw\r\n").await;
            c.imap_until("a").await;
            let mut rounds = 0u32;
            // At least one round, however fast the senders are.
            while rounds == 0 || !done.load(Ordering::Relaxed) {
                let tag = format!("r{r}x{rounds}");
                c.send(&format!(
                    "{tag}s SELECT INBOX\r\n{tag}f FETCH 1:* (UID FLAGS)\r\n"
                ))
                .await;
                c.imap_until(&format!("{tag}s")).await;
                let f = c.imap_until(&format!("{tag}f")).await;
                assert!(
                    f.last().unwrap().contains(" OK ") || f.last().unwrap().contains(" BAD "),
                    "{f:?}"
                );
                rounds += 1;
            }
            rounds
        }));
    }

    let mut senders = Vec::new();
    for i in 0..SENDERS {
        senders.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for n in 0..PER_SENDER {
                let id = format!("m{i}-{n}");
                let body = format!("Subject: {id}\r\n\r\n{}", "z".repeat(500));
                let r = smtp_send(smtp, "load@remote.test", &["joe@example.org"], &body).await;
                assert!(r.starts_with("250"), "{r}");
                accepted.push(id);
            }
            accepted
        }));
    }
    let mut accepted = Vec::new();
    for t in senders {
        accepted.extend(t.await.unwrap());
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.await.unwrap() > 0);
    }
    assert_eq!(accepted.len(), SENDERS * PER_SENDER);

    let mut c = LineClient::connect(imap).await;
    c.line().await;
    c.send("a LOGIN joe@example.org pw\r\nb SELECT INBOX\r\nc FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n").await;
    c.imap_until("a").await;
    let sel = c.imap_until("b").await;
    assert!(
        sel.contains(&format!("* {} EXISTS", SENDERS * PER_SENDER)),
        "{:?}",
        &sel[..3]
    );
    let lines = c.imap_until("c").await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut uids = Vec::new();
    for l in &lines {
        if let Some(subj) = l.strip_prefix("Subject: ") {
            *counts.entry(subj.to_string()).or_default() += 1;
        }
        if let Some(rest) = l.split("(UID ").nth(1) {
            uids.push(rest.split(' ').next().unwrap().parse::<u32>().unwrap());
        }
    }
    for id in &accepted {
        assert_eq!(counts.get(id), Some(&1), "{id}");
    }
    assert_eq!(uids.len(), accepted.len());
    assert!(
        uids.windows(2).all(|w| w[0] < w[1]),
        "unique ascending UIDs"
    );
}
