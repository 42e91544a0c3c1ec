//! Durability: SIGKILL the server during SMTP load, restart it on the same
//! data directory, and check that every message that got a 250 is there
//! exactly once.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

async fn send_until_error(
    addr: std::net::SocketAddr,
    sender: usize,
    acked: Arc<Mutex<Vec<String>>>,
) {
    for n in 0.. {
        let id = format!("s{sender}-m{n}");
        let res = tokio::time::timeout(Duration::from_secs(10), try_send(addr, &id)).await;
        match res {
            Ok(Some(true)) => acked.lock().unwrap().push(id),
            Ok(Some(false)) => {}
            _ => return,
        }
    }
}

/// Some(true) on 250, Some(false) on another reply, None if the connection broke.
async fn try_send(addr: std::net::SocketAddr, id: &str) -> Option<bool> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (r, mut w) = tokio::io::split(s);
    let mut r = tokio::io::BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await.ok().filter(|n| *n > 0)?;
    let msg = "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@example.org>\r\nDATA\r\n";
    w.write_all(msg.as_bytes()).await.ok()?;
    let mut replies = 0;
    while replies < 4 {
        line.clear();
        r.read_line(&mut line).await.ok().filter(|n| *n > 0)?;
        if line.as_bytes().get(3) == Some(&b' ') {
            replies += 1;
        }
    }
    if !line.starts_with("354") {
        return Some(false);
    }
    let body = format!("Subject: {id}\r\n\r\n{}\r\n.\r\nQUIT\r\n", "x".repeat(2000));
    w.write_all(body.as_bytes()).await.ok()?;
    line.clear();
    r.read_line(&mut line).await.ok().filter(|n| *n > 0)?;
    Some(line.starts_with("250"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_smtp_load_loses_nothing_acknowledged() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    let addr = s.addr("smtp");
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..16 {
        tasks.push(tokio::spawn(send_until_error(addr, i, acked.clone())));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let dir = s.kill_keep_dir();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "load was too light to mean anything: {}",
        acked.len()
    );

    let s = TestServer::start_in(dir);
    let mut c = LineClient::connect(s.addr("imap")).await;
    c.line().await;
    c.send("a LOGIN joe@example.org pw\r\nb SELECT INBOX\r\nc FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n").await;
    c.imap_until("a").await;
    c.imap_until("b").await;
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
    for id in &acked {
        assert_eq!(
            counts.get(id),
            Some(&1),
            "acknowledged message {id} must be stored exactly once"
        );
    }
    assert!(counts.values().all(|&n| n == 1), "no duplicates at all");
    let mut sorted = uids.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), uids.len(), "unique UIDs");
    assert!(uids.windows(2).all(|w| w[0] < w[1]), "ascending UIDs");
    eprintln!(
        "acknowledged {} messages before SIGKILL; {} stored after restart",
        acked.len(),
        counts.len()
    );
}
