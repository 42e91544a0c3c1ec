//! Administrators' Sieve scripts at the SMTP stages and greylisting, the
//! shipped script `greylist.enable` runs at RCPT, against a running
//! Petrel: a real Postfix that retries after the 451 gets its message
//! delivered, a client that tries once never does; scripts stored with
//! `petrel sieve global` refuse at connect, EHLO, MAIL, RCPT and DATA
//! with the reply they choose, and users' scripts include them.

mod common;

use std::time::{Duration, Instant};

use common::postfix::Postfix;
use common::*;

const JOE: &str = "joe@example.org";

/// The usual client: its loopback address and HELO name.
const HOME: (&str, &str) = ("127.0.0.1", "ok.test");

/// One SMTP transaction from `client` (a loopback address and a HELO
/// name), a message with `subject` (none for ""), every reply in order;
/// stops at the first refusal.
async fn dialog(
    s: &TestServer,
    client: (&str, &str),
    from: &str,
    to: &str,
    subject: &str,
) -> Vec<String> {
    let (local, helo) = client;
    let mut c = LineClient::connect_from(local.parse().unwrap(), s.addr("smtp")).await;
    let mut replies = vec![c.smtp_reply().await];
    if !replies[0].starts_with("220") {
        return replies;
    }
    for cmd in [
        format!("EHLO {helo}\r\n"),
        format!("MAIL FROM:<{from}>\r\n"),
        format!("RCPT TO:<{to}>\r\n"),
        "DATA\r\n".to_string(),
        format!("Subject: {subject}\r\n\r\nx\r\n.\r\n"),
    ] {
        c.send(&cmd).await;
        let r = c.smtp_reply().await;
        let refused = r.starts_with('4') || r.starts_with('5');
        replies.push(r);
        if refused {
            break;
        }
    }
    c.send("QUIT\r\n").await;
    replies
}

fn last(replies: &[String]) -> &str {
    replies.last().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn greylisting_defers_first_attempts_and_postfix_retries_through() {
    let s = TestServer::start_logging(
        "[imap]\nauth-without-tls = true\n[smtp]\nauth-without-tls = true\n\
         [greylist]\nenable = true\ndelay = 3\nexempt-networks = []\n",
    );
    s.account(JOE);
    s.account("ann@example.org");

    // A client that tries once: 451 4.7.1 at RCPT, and an immediate
    // retry (before greylist.delay) is deferred too.
    let once = dialog(&s, ("127.0.0.1", "one.test"), "spam@one.test", JOE, "once").await;
    assert_eq!(once.len(), 4, "{once:?}");
    assert!(last(&once).starts_with("451 4.7.1 Greylisted"), "{once:?}");
    let again = dialog(&s, ("127.0.0.1", "one.test"), "spam@one.test", JOE, "once").await;
    assert!(last(&again).starts_with("451 4.7.1"), "too soon: {again:?}");
    let log = s.log_until("greylisted: first attempt deferred");
    assert!(log.contains("greylisted: first attempt deferred"), "{log}");

    // Authenticated submission is never greylisted.
    let r = submit(&s, "ann@example.org", &[JOE], "Subject: from ann\r\n\r\nhi").await;
    assert!(r.starts_with("250"), "{r}");

    // Postfix relays to Petrel, is deferred, retries after its backoff
    // and the message arrives.
    let pf = Postfix::start_with(&format!(
        "relayhost = [127.0.0.1]:{}\nminimal_backoff_time = 4s\nmaximal_backoff_time = 8s\nqueue_run_delay = 2s\n",
        s.addr("smtp").port()
    ));
    let t0 = Instant::now();
    let r = smtp_send(
        pf.addr(),
        "carol@postfix.test",
        &[JOE],
        "From: carol@postfix.test\r\nSubject: via postfix\r\n\r\nretried\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let got = loop {
        let msgs = imap_fetch_all(s.addr("imap"), JOE, "pw").await;
        if msgs
            .iter()
            .any(|m| String::from_utf8_lossy(m).contains("via postfix"))
        {
            break msgs;
        }
        assert!(
            Instant::now() < deadline,
            "Postfix's retry did not arrive; postfix log:\n{}",
            pf.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        t0.elapsed() >= Duration::from_secs(3),
        "arrived before greylist.delay"
    );
    let plog = pf.log();
    assert!(
        plog.contains("451 4.7.1 Greylisted"),
        "Postfix was not deferred first:\n{plog}"
    );
    // Two messages: ann's and Postfix's; the one-shot sender's never came.
    assert_eq!(got.len(), 2, "{}", got.len());
    assert!(!got
        .iter()
        .any(|m| String::from_utf8_lossy(m).contains("Subject: once")));

    // The triplet that passed is let through at once from then on; the
    // one-shot sender's, tried again past the delay, passes too (it did
    // retry), while a new sender from another network is deferred.
    let r = smtp_send(
        pf.addr(),
        "carol@postfix.test",
        &[JOE],
        "From: carol@postfix.test\r\nSubject: second\r\n\r\nagain\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    wait_for_mail(s.addr("imap"), JOE, 3).await;
    let other = dialog(&s, ("127.1.0.1", "two.test"), "spam@one.test", JOE, "net").await;
    assert!(
        last(&other).starts_with("451 4.7.1"),
        "another /24 is another triplet: {other:?}"
    );
    let retried = dialog(&s, ("127.0.0.1", "one.test"), "spam@one.test", JOE, "later").await;
    assert!(
        last(&retried).starts_with("250"),
        "a retry past the delay passes: {retried:?}"
    );

    // The metric counts both results.
    let metrics = http_get(s.addr("http"), "/metrics");
    assert!(
        metrics.contains("petrel_greylist_checks_total{result=\"deferred\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("petrel_greylist_checks_total{result=\"passed\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn greylist_triplets_survive_a_restart() {
    let cfg = "[greylist]\nenable = true\ndelay = 1\nexempt-networks = []\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), test_config(cfg)).unwrap();
    let s = TestServer::start_in(dir);
    s.account(JOE);
    let first = dialog(&s, ("127.0.0.1", "a.test"), "x@a.test", JOE, "a").await;
    assert!(last(&first).starts_with("451"), "{first:?}");
    // The 451 came after the triplet was written durably: kill -9 loses
    // nothing, and the retry after the delay passes on the new process.
    let dir = s.kill_keep_dir();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let s = TestServer::start_in(dir);
    let retry = dialog(&s, ("127.0.0.1", "a.test"), "x@a.test", JOE, "a").await;
    assert!(last(&retry).starts_with("250"), "{retry:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stage_scripts_refuse_with_their_replies() {
    let s = TestServer::start_logging(
        "[imap]\nauth-without-tls = true\n\
         [sieve.stages]\nconnect = \"door\"\nehlo = \"hello\"\nmail = \"sender\"\nrcpt = \"rcpt\"\ndata = \"content\"\n",
    );
    s.account(JOE);
    s.account("trap@example.org");
    s.account("busy@example.org");

    // Stages whose script is missing accept (and say so in the log).
    let r = dialog(&s, HOME, "a@ok.test", JOE, "before").await;
    assert!(last(&r).starts_with("250"), "{r:?}");
    let log = s.log_until("Sieve stage script not run");
    assert!(log.contains("petrel sieve global put door FILE"), "{log}");

    let scripts = [
        (
            "door",
            "require [\"environment\", \"reject\"];\n\
             if environment :is \"remote-ip\" \"127.0.0.9\" { reject \"554 5.7.1 not from there\"; }\n",
        ),
        (
            "hello",
            "require [\"variables\", \"reject\", \"vnd.stalwart.expressions\"];\n\
             if eval \"env.helo == 'bad.test'\" { reject \"550 5.7.1 bad HELO\"; }\n",
        ),
        (
            "sender",
            "require [\"envelope\", \"reject\"];\n\
             if envelope :domain :is \"from\" \"evil.test\" { reject \"go away\"; }\n",
        ),
        (
            "rcpt",
            "require [\"envelope\", \"reject\"];\n\
             if envelope :localpart :is \"to\" \"trap\" { discard; }\n\
             if envelope :localpart :is \"to\" \"busy\" { reject \"452 4.2.2 come back later\"; }\n",
        ),
        (
            "content",
            "require [\"reject\"];\n\
             if header :contains \"subject\" \"forbidden\" { reject \"554 5.7.1 content refused\"; }\n",
        ),
    ];
    for (name, text) in scripts {
        let out = put_global(&s, name, text);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains("runs at"), "{said}");
    }
    let list = s.cli_ok(&["sieve", "global", "list"]);
    assert!(list.contains("sender  (runs at mail)"), "{list}");
    // A broken script is refused with its line; one in use cannot go.
    let out = put_global(&s, "broken", "require \"reject\";\nif true {\n");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line"),
        "{out:?}"
    );
    let out = s.cli(&["sieve", "global", "delete", "sender"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sieve.stages.mail"),
        "{out:?}"
    );

    let r = dialog(&s, ("127.0.0.9", "ok.test"), "a@ok.test", JOE, "").await;
    assert_eq!(r, vec!["554 5.7.1 not from there".to_string()], "connect");
    let r = dialog(&s, ("127.0.0.1", "bad.test"), "a@ok.test", JOE, "").await;
    assert_eq!(last(&r), "550 5.7.1 bad HELO", "ehlo: {r:?}");
    let r = dialog(&s, HOME, "a@evil.test", JOE, "").await;
    assert_eq!(
        last(&r),
        "550 5.7.1 go away",
        "mail: a reason without a code is a 550"
    );
    let r = dialog(&s, HOME, "a@ok.test", "busy@example.org", "").await;
    assert_eq!(last(&r), "452 4.2.2 come back later", "rcpt");
    let r = dialog(&s, HOME, "a@ok.test", JOE, "forbidden fruit").await;
    assert_eq!(last(&r), "554 5.7.1 content refused", "data");
    // discard at RCPT: accepted, and the message goes nowhere.
    let r = dialog(&s, HOME, "a@ok.test", "trap@example.org", "trapped").await;
    assert!(last(&r).starts_with("250"), "{r:?}");
    let r = dialog(&s, HOME, "a@ok.test", JOE, "fine").await;
    assert!(last(&r).starts_with("250"), "{r:?}");
    let got = wait_for_mail(s.addr("imap"), JOE, 2).await;
    let subjects: Vec<String> = got
        .iter()
        .map(|m| {
            String::from_utf8_lossy(m)
                .lines()
                .find(|l| l.starts_with("Subject:"))
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(subjects, vec!["Subject: before", "Subject: fine"]);
    assert!(imap_fetch_all(s.addr("imap"), "trap@example.org", "pw")
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn users_scripts_include_global_ones() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account(JOE);
    let out = put_global(
        &s,
        "lists",
        "require [\"fileinto\", \"mailbox\"];\nif exists \"list-id\" { fileinto :create \"Lists\"; }\n",
    );
    assert!(out.status.success(), "{out:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("u.sieve");
    std::fs::write(&file, "require \"include\";\ninclude :global \"lists\";\n").unwrap();
    s.cli_ok(&[
        "sieve",
        "put",
        JOE,
        "main",
        file.to_str().unwrap(),
        "--activate",
    ]);
    let r = smtp_send(
        s.addr("smtp"),
        "list@lists.test",
        &[JOE],
        "From: list@lists.test\r\nList-Id: <l.lists.test>\r\nSubject: digest\r\n\r\nx\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let got = imap_fetch_mailbox(s.addr("imap"), JOE, "pw", "Lists").await;
    assert_eq!(got.len(), 1, "the included global script filed it");
}
