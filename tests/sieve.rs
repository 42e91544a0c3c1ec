//! Sieve filters (RFC 5228 and extensions) at delivery against a running
//! Petrel: scripts stored with `petrel sieve`, mail delivered over SMTP,
//! the result read over IMAP; redirects reach a second Petrel through
//! the queue.

mod common;

use common::*;

const JOE: &str = "joe@example.org";

fn server(extra: &str) -> TestServer {
    let s = TestServer::start_with(&format!("[imap]\nauth-without-tls = true\n{extra}"));
    s.account(JOE);
    s
}

/// A second Petrel with `users`, and joe's server (logging) relaying
/// to it.
fn relaying_to(users: &[&str]) -> (TestServer, TestServer) {
    let remote = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    for u in users {
        remote.account(u);
    }
    let s = TestServer::start_logging(&format!(
        "[imap]\nauth-without-tls = true\n[queue]\nrelay = \"{}\"\nretry = [1]\n",
        remote.addr("smtp")
    ));
    s.account(JOE);
    (remote, s)
}

/// Stores `text` as joe's script `name` (active) through the CLI.
fn put(s: &TestServer, name: &str, text: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("script.sieve");
    std::fs::write(&file, text).unwrap();
    s.cli(&[
        "sieve",
        "put",
        JOE,
        name,
        file.to_str().unwrap(),
        "--activate",
    ])
}

async fn send(s: &TestServer, from: &str, head: &str) {
    let r = smtp_send(
        s.addr("smtp"),
        from,
        &[JOE],
        &format!("From: {from}\r\n{head}\r\n\r\nbody\r\n"),
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
}

/// Subjects and flags of a mailbox's messages, over IMAP.
async fn mailbox(s: &TestServer, name: &str) -> Vec<(String, String)> {
    let mut c = LineClient::connect(s.addr("imap")).await;
    c.line().await;
    c.send(&format!("a LOGIN {JOE} pw\r\n")).await;
    c.imap_until("a").await;
    c.send(&format!("b EXAMINE \"{name}\"\r\n")).await;
    let r = c.imap_until("b").await;
    if !r.last().unwrap().starts_with("b OK") {
        return Vec::new();
    }
    c.send("c FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n")
        .await;
    let lines = c.imap_until("c").await;
    let mut out = Vec::new();
    let mut flags = String::new();
    for l in lines {
        if let Some(f) = l.split("FLAGS (").nth(1) {
            flags = f.split(')').next().unwrap_or_default().to_string();
        }
        if let Some(subj) = l.strip_prefix("Subject: ") {
            out.push((subj.trim().to_string(), flags.clone()));
        }
    }
    out
}

/// RFC 5228 §4.1 fileinto (RFC 5490 :create), §4.4 discard, RFC 5232
/// flags, §5.1 address, §5.4 envelope, §3.3 stop; mail the script does
/// not name stays in the Inbox (implicit keep, §2.10.2).
#[tokio::test]
async fn scripts_file_flag_and_discard() {
    let s = server("");
    let out = put(
        &s,
        "rules",
        r#"require ["fileinto", "imap4flags", "mailbox", "envelope"];
if header :contains "List-Id" "rust-users" {
    fileinto :create :flags "\\Seen" "Lists/Rust";
    stop;
}
if header :is "Subject" "buy now" {
    discard;
    stop;
}
if envelope :is "from" "boss@remote.test" {
    addflag "\\Flagged";
}
"#,
    );
    assert!(out.status.success(), "{out:?}");
    send(
        &s,
        "ann@remote.test",
        "List-Id: <rust-users.lists.test>\r\nSubject: list mail",
    )
    .await;
    send(&s, "ann@remote.test", "Subject: buy now").await;
    send(&s, "boss@remote.test", "Subject: from the boss").await;
    send(&s, "ann@remote.test", "Subject: plain").await;

    let inbox = mailbox(&s, "INBOX").await;
    let subjects: Vec<&str> = inbox.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(subjects, ["from the boss", "plain"], "{inbox:?}");
    assert!(inbox[0].1.contains("\\Flagged"), "{inbox:?}");
    assert!(!inbox[1].1.contains("\\Flagged"), "{inbox:?}");
    let list = mailbox(&s, "Lists/Rust").await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].0, "list mail");
    assert!(list[0].1.contains("\\Seen"), "{list:?}");
    // §4.4: discard is silent: nothing went back to the sender.
    assert_eq!(
        s.cli_ok(&["queue", "list"]).trim(),
        "The queue is empty.",
        "no bounce queued"
    );

    // Deactivated, nothing runs: the list mail stays in the Inbox.
    s.cli_ok(&["sieve", "deactivate", JOE]);
    send(
        &s,
        "ann@remote.test",
        "List-Id: <rust-users.lists.test>\r\nSubject: list two",
    )
    .await;
    assert_eq!(mailbox(&s, "Lists/Rust").await.len(), 1);
    assert_eq!(mailbox(&s, "INBOX").await.len(), 3);
}

/// RFC 7352 duplicate: the second message with one Message-ID is filed
/// apart; RFC 6609 include of the user's own script; fileinto of a
/// mailbox that does not exist (no :create) keeps the message.
#[tokio::test]
async fn duplicate_include_and_missing_mailboxes() {
    let s = server("");
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib.sieve");
    std::fs::write(
        &lib,
        "require [\"fileinto\", \"duplicate\", \"mailbox\"];\nif duplicate { fileinto :create \"Dups\"; stop; }\n",
    )
    .unwrap();
    s.cli_ok(&["sieve", "put", JOE, "lib", lib.to_str().unwrap()]);
    let out = put(
        &s,
        "main",
        "require [\"include\", \"fileinto\", \"imap4flags\"];\ninclude :personal \"lib\";\nif header :is \"Subject\" \"nowhere\" { fileinto \"Does/Not/Exist\"; }\nif header :is \"Subject\" \"twice\" { fileinto :flags \"\\\\Seen\" \"INBOX\"; keep :flags \"\\\\Flagged\"; }\n",
    );
    assert!(out.status.success(), "{out:?}");
    send(
        &s,
        "ann@remote.test",
        "Message-ID: <one@remote.test>\r\nSubject: first",
    )
    .await;
    send(
        &s,
        "ann@remote.test",
        "Message-ID: <one@remote.test>\r\nSubject: again",
    )
    .await;
    send(
        &s,
        "ann@remote.test",
        "Message-ID: <two@remote.test>\r\nSubject: nowhere",
    )
    .await;
    // RFC 5228 §2.10.3: asked into the Inbox twice, stored once, with
    // the flags of the last request (RFC 5232 §3: the keep, which
    // sieve-rs always takes last).
    send(
        &s,
        "ann@remote.test",
        "Message-ID: <three@remote.test>\r\nSubject: twice",
    )
    .await;
    let inbox = mailbox(&s, "INBOX").await;
    let subjects: Vec<&str> = inbox.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(subjects, ["first", "nowhere", "twice"], "{inbox:?}");
    assert!(
        !inbox[2].1.contains("\\Seen") && inbox[2].1.contains("\\Flagged"),
        "{inbox:?}"
    );
    let dups: Vec<String> = mailbox(&s, "Dups").await.into_iter().map(|m| m.0).collect();
    assert_eq!(dups, ["again"]);
}

/// RFC 5228 §2.10.6: a script that fails at run time (an include that
/// is not there) files the message in the Inbox, whatever it asked
/// before, and the log says why.
#[tokio::test]
async fn failing_scripts_keep_the_mail() {
    let s = TestServer::start_logging("[imap]\nauth-without-tls = true\n");
    s.account(JOE);
    let out = put(
        &s,
        "broken",
        "require [\"include\", \"fileinto\", \"mailbox\"];\nfileinto :create \"Elsewhere\";\ninclude :personal \"missing\";\n",
    );
    assert!(out.status.success(), "{out:?}");
    send(&s, "ann@remote.test", "Subject: still here").await;
    // The user is told, once a day for the same error: the message kept
    // and one notice.
    send(&s, "ann@remote.test", "Subject: here too").await;
    let inbox: Vec<String> = mailbox(&s, "INBOX")
        .await
        .into_iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(
        inbox,
        ["still here", "Your Sieve script failed", "here too"],
        "{inbox:?}"
    );
    assert!(mailbox(&s, "Elsewhere").await.is_empty());
    let log = s.log_until("Sieve script failed, message kept in the Inbox");
    assert!(
        log.contains("Sieve script failed, message kept in the Inbox") && log.contains("missing"),
        "{log}"
    );
}

/// RFC 5228 §4.2 redirect: through the queue to another server, from
/// the original envelope sender; with :copy (RFC 3894) a copy stays.
#[tokio::test]
async fn redirects_go_through_the_queue() {
    let (remote, s) = relaying_to(&["bob@remote.test"]);
    let out = put(
        &s,
        "forward",
        "require [\"copy\"];\nif header :is \"Subject\" \"keep a copy\" { redirect :copy \"bob@remote.test\"; stop; }\nredirect \"bob@remote.test\";\n",
    );
    assert!(out.status.success(), "{out:?}");
    send(&s, "ann@remote.test", "Subject: forwarded").await;
    send(&s, "ann@remote.test", "Subject: keep a copy").await;
    // §4.2: a null envelope sender stays null.
    let r = smtp_send(
        s.addr("smtp"),
        "",
        &[JOE],
        "From: mailer-daemon@remote.test\r\nSubject: bounce\r\n\r\nbody\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    // §4.2 loop control: a message that went round (10 Received fields
    // or more) is not redirected again, and the ignored redirect leaves
    // the implicit keep.
    let hops: String = (0..10)
        .map(|i| {
            format!(
                "Received: from hop{i}.test by hop{i}.test; Sat, 28 Nov 2026 10:00:00 +0000\r\n"
            )
        })
        .collect();
    send(&s, "ann@remote.test", &format!("{hops}Subject: looping")).await;
    let got = wait_for_mail(remote.addr("imap"), "bob@remote.test", 3).await;
    let texts: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    for t in &texts[..2] {
        assert!(t.contains("Return-Path: <ann@remote.test>"), "{t}");
        assert_eq!(t.matches("Return-Path:").count(), 1, "{t}");
        // One Received field more: the redirect's own.
        assert!(
            t.contains("Received: by mx.test (Petrel) with Sieve redirect for <bob@remote.test>"),
            "{t}"
        );
    }
    assert!(texts[2].contains("Return-Path: <>"), "{}", texts[2]);
    assert!(texts.iter().any(|t| t.contains("Subject: forwarded")));
    let inbox: Vec<String> = mailbox(&s, "INBOX")
        .await
        .into_iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(inbox, ["keep a copy", "looping"]);
    let log = s.log_until("Sieve redirect queued");
    assert!(log.contains("Sieve redirect queued"), "{log}");
}

/// What `petrel sieve` refuses, with the reason: a syntax error (by
/// line), an extension not offered, more scripts than sieve.max-scripts,
/// a script over sieve.max-script-size, deleting the active script;
/// rename keeps a script active; check compiles without storing.
#[tokio::test]
async fn the_cli_manages_scripts() {
    let s = server("[sieve]\nmax-scripts = 2\nmax-script-size = 200\n");
    let err = |out: std::process::Output| {
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = err(put(&s, "bad", "keep;\nif true {\n"));
    assert!(e.contains("line 3") || e.contains("line 2"), "{e}");
    let e = err(put(
        &s,
        "away",
        "require \"convert\";\nconvert \"image/png\" \"image/jpeg\" [\"pix-x=10\"];\n",
    ));
    assert!(e.contains("convert"), "{e}");
    let e = err(put(&s, "big", &format!("# {}\nkeep;\n", "x".repeat(300))));
    assert!(e.contains("max-script-size"), "{e}");
    assert!(put(&s, "one", "keep;\n").status.success());
    assert!(put(&s, "two", "discard;\n").status.success());
    let e = err(put(&s, "three", "keep;\n"));
    assert!(e.contains("max-scripts"), "{e}");
    let list = s.cli_ok(&["sieve", "list", JOE]);
    assert_eq!(list, "  one\n* two\n", "{list}");
    let e = err(s.cli(&["sieve", "delete", JOE, "two"]));
    assert!(e.contains("active"), "{e}");
    s.cli_ok(&["sieve", "rename", JOE, "two", "drop all"]);
    assert_eq!(s.cli_ok(&["sieve", "list", JOE]), "  one\n* drop all\n");
    assert_eq!(s.cli_ok(&["sieve", "get", JOE, "drop all"]), "discard;\n");
    s.cli_ok(&["sieve", "delete", JOE, "one"]);
    // The active script discards.
    send(&s, "ann@remote.test", "Subject: dropped").await;
    assert!(mailbox(&s, "INBOX").await.is_empty());
    // A change is seen by the next delivery (the server keeps scripts
    // compiled in memory): the active script replaced, then none active.
    assert!(put(
        &s,
        "drop all",
        "require \"imap4flags\";\naddflag \"$seen-by-new\";\n"
    )
    .status
    .success());
    send(&s, "ann@remote.test", "Subject: replaced").await;
    s.cli_ok(&["sieve", "deactivate", JOE]);
    send(&s, "ann@remote.test", "Subject: none active").await;
    assert_eq!(
        mailbox(&s, "INBOX").await,
        vec![
            ("replaced".to_string(), "$seen-by-new \\Recent".to_string()),
            ("none active".to_string(), "\\Recent".to_string())
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.sieve");
    std::fs::write(&f, "require \"fileinto\";\nfileinto \"x\";\n").unwrap();
    assert_eq!(s.cli_ok(&["sieve", "check", f.to_str().unwrap()]), "OK\n");
    std::fs::write(&f, "fileinto \"x\";\n").unwrap();
    let e = err(s.cli(&["sieve", "check", f.to_str().unwrap()]));
    assert!(e.contains("line 1"), "{e}");
}

/// RFC 5230 vacation (RFC 3834 rules), with a second Petrel as the
/// sender's server: one response per sender per period, from the null
/// sender, Auto-Submitted: auto-replied, In-Reply-To the original, the
/// Subject prefixed; none to lists, to auto-submitted mail, to null
/// senders or when the user is not a named recipient.
#[tokio::test]
async fn vacation_answers_once_per_sender() {
    let (remote, s) = relaying_to(&["ann@remote.test", "cy@remote.test"]);
    let out = put(
        &s,
        "away",
        "require [\"vacation\", \"fileinto\", \"mailbox\"];\nvacation :days 3 :subject \"Away\" \"I am away until Monday.\";\nfileinto :create \"While away\";\n",
    );
    assert!(out.status.success(), "{out:?}");
    let mail = |from: &str, head: &str| {
        format!("From: {from}\r\nTo: joe@example.org\r\nMessage-ID: <{}@remote.test>\r\n{head}\r\n\r\nbody\r\n", rand_id())
    };
    for (from, head) in [
        ("ann@remote.test", "Subject: first"),
        ("ann@remote.test", "Subject: second"),
        (
            "cy@remote.test",
            "Subject: from a list\r\nList-Id: <l.remote.test>",
        ),
        (
            "cy@remote.test",
            "Subject: robot\r\nAuto-Submitted: auto-generated",
        ),
    ] {
        let r = smtp_send(s.addr("smtp"), from, &[JOE], &mail(from, head)).await;
        assert!(r.starts_with("250"), "{r}");
    }
    // Bcc'd: joe is not in To or Cc.
    let r = smtp_send(
        s.addr("smtp"),
        "cy@remote.test",
        &[JOE],
        "From: cy@remote.test\r\nTo: team@remote.test\r\nSubject: bcc\r\n\r\nbody\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let got = wait_for_mail(remote.addr("imap"), "ann@remote.test", 1).await;
    let reply = String::from_utf8_lossy(&got[0]).into_owned();
    assert!(reply.contains("Return-Path: <>"), "{reply}");
    assert!(reply.contains("Auto-Submitted: auto-replied"), "{reply}");
    assert!(reply.contains("In-Reply-To: <"), "{reply}");
    assert!(reply.contains("Subject: Away"), "{reply}");
    assert!(reply.contains("I am away until Monday."), "{reply}");
    // Filed all the same; one response to ann, none to cy.
    assert_eq!(mailbox(&s, "While away").await.len(), 5);
    let log = s.log_until("Sieve vacation response queued");
    assert_eq!(
        log.matches("Sieve vacation response queued").count(),
        1,
        "{log}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        imap_fetch_all(remote.addr("imap"), "ann@remote.test", "pw")
            .await
            .len(),
        1
    );
    assert!(imap_fetch_all(remote.addr("imap"), "cy@remote.test", "pw")
        .await
        .is_empty());
    // Mail that got no response did not count as answered: cy's first
    // message a response may go to gets one.
    let r = smtp_send(
        s.addr("smtp"),
        "cy@remote.test",
        &[JOE],
        &mail("cy@remote.test", "Subject: a person at last"),
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let got = wait_for_mail(remote.addr("imap"), "cy@remote.test", 1).await;
    assert!(String::from_utf8_lossy(&got[0]).contains("Subject: Away"));
}

fn rand_id() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// The text of a message's first part (the human-readable part of a
/// report), decoded.
fn first_text(raw: &[u8]) -> String {
    let m = mail_parser::MessageParser::new().parse(raw).unwrap();
    m.body_text(0).unwrap_or_default().into_owned()
}

/// RFC 5429: reject and ereject refuse in SMTP (550 with the reason, a
/// multi-line reason as a multi-line reply) when every recipient
/// refused; otherwise the message is accepted and the sender gets a DSN
/// (ereject) or an MDN with the disposition "deleted" (reject), never
/// the null sender; a non-ASCII reject reason always goes by MDN; LMTP
/// refuses per recipient.
#[tokio::test]
async fn reject_and_ereject_refuse_or_report() {
    let (remote, s) = relaying_to(&["bob@remote.test"]);
    s.account("ann@example.org");
    let out = put(
        &s,
        "refuse",
        "require [\"reject\", \"ereject\", \"editheader\"];\n\
         addheader \"X-Edited\" \"yes\";\n\
         if header :contains \"subject\" \"e-no\" { ereject \"No thanks\"; }\n\
         elsif header :contains \"subject\" \"two lines\" { reject text:\nline one\nline two\n.\n; }\n\
         elsif header :contains \"subject\" \"accent\" { reject \"Parti \u{e0} la p\u{ea}che\"; }\n\
         elsif header :contains \"subject\" \"no\" { reject \"Gone fishing\"; }\n",
    );
    assert!(out.status.success(), "{out:?}");
    let msg = |subject: &str| {
        format!("From: bob@remote.test\r\nSubject: {subject}\r\nMessage-ID: <{}@remote.test>\r\n\r\nx\r\n", subject.replace(' ', "."))
    };
    let bob = "bob@remote.test";
    let ann = "ann@example.org";

    // One recipient: refused in the protocol.
    let r = smtp_send(s.addr("smtp"), bob, &[JOE], &msg("e-no")).await;
    assert_eq!(r, "550 5.7.1 No thanks");
    let r = smtp_send(s.addr("smtp"), bob, &[JOE], &msg("no")).await;
    assert_eq!(r, "550 5.7.1 Gone fishing");
    let mut c = LineClient::connect(s.addr("smtp")).await;
    c.smtp_reply().await;
    c.send(&format!(
        "EHLO c.test\r\nMAIL FROM:<{bob}>\r\nRCPT TO:<{JOE}>\r\nDATA\r\n"
    ))
    .await;
    for _ in 0..4 {
        c.smtp_reply().await;
    }
    c.send(&format!("{}\r\n.\r\n", msg("two lines"))).await;
    assert_eq!(c.line().await, "550-5.7.1 line one");
    assert_eq!(c.line().await, "550 5.7.1 line two");

    // Another recipient takes it: accepted, and the sender is told.
    for subject in ["e-no both", "no both"] {
        let r = smtp_send(s.addr("smtp"), bob, &[JOE, ann], &msg(subject)).await;
        assert!(r.starts_with("250"), "{r}");
    }
    // A reject reason that is not ASCII goes by MDN, even alone.
    let r = smtp_send(s.addr("smtp"), bob, &[JOE], &msg("accent")).await;
    assert!(r.starts_with("250"), "{r}");
    // Nothing goes back to the null sender.
    let r = smtp_send(s.addr("smtp"), "", &[JOE, ann], &msg("no null")).await;
    assert!(r.starts_with("250"), "{r}");

    // LMTP answers per recipient.
    let mut c = LineClient::connect(s.addr("lmtp")).await;
    c.smtp_reply().await;
    c.send(&format!(
        "LHLO c.test\r\nMAIL FROM:<{bob}>\r\nRCPT TO:<{JOE}>\r\nRCPT TO:<{ann}>\r\nDATA\r\n"
    ))
    .await;
    for _ in 0..5 {
        c.smtp_reply().await;
    }
    c.send(&format!("{}\r\n.\r\n", msg("e-no lmtp"))).await;
    assert_eq!(c.smtp_reply().await, "550 5.7.1 No thanks");
    assert!(c.smtp_reply().await.starts_with("250"));

    let got = wait_for_mail(remote.addr("imap"), bob, 3).await;
    let texts: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    let dsn: Vec<&String> = texts
        .iter()
        .filter(|t| t.contains("report-type=delivery-status"))
        .collect();
    assert_eq!(dsn.len(), 1, "{texts:?}");
    assert!(dsn[0].contains("Action: failed"), "{}", dsn[0]);
    assert!(dsn[0].contains("Status: 5.7.1"), "{}", dsn[0]);
    assert!(
        dsn[0].contains("Refused by the recipient's mail filter: No thanks"),
        "{}",
        dsn[0]
    );
    assert!(
        dsn[0].contains("Return-Path: <>"),
        "from the null sender: {}",
        dsn[0]
    );
    // RFC 5293 §7: the notices quote the header as it came, before the
    // script changed it.
    assert!(dsn[0].contains("Subject: e-no both"), "{}", dsn[0]);
    assert!(!dsn[0].contains("X-Edited"), "{}", dsn[0]);
    let mdns: Vec<&Vec<u8>> = got
        .iter()
        .filter(|m| {
            String::from_utf8_lossy(m)
                .contains("Disposition: automatic-action/MDN-sent-automatically; deleted")
        })
        .collect();
    assert_eq!(mdns.len(), 2, "{texts:?}");
    let reasons: Vec<String> = mdns.iter().map(|m| first_text(m)).collect();
    assert!(
        reasons.iter().any(|t| t.contains("Gone fishing")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|t| t.contains("Parti \u{e0} la p\u{ea}che")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .all(|t| t.contains("refused by the recipient's mail filtering")),
        "{reasons:?}"
    );
    for m in &mdns {
        let t = String::from_utf8_lossy(m);
        assert!(t.contains("Original-Message-ID: <"), "{t}");
        assert!(t.contains("Auto-Submitted: auto-replied"), "{t}");
        assert!(!t.contains("X-Edited"), "{t}");
    }
    // Joe has nothing; Ann has what was sent to both.
    assert!(mailbox(&s, "INBOX").await.is_empty());
    let ann_got = wait_for_mail(s.addr("imap"), ann, 4).await;
    assert_eq!(ann_got.len(), 4);
    let log = s.log_until("Sieve refusal not reported: the sender is null");
    assert!(
        log.contains("Sieve refusal not reported: the sender is null"),
        "{log}"
    );
    // Nothing more came back to bob (the null sender's two refusals, and
    // LMTP's, which refused in the protocol).
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        imap_fetch_all(remote.addr("imap"), bob, "pw").await.len(),
        3
    );
}

/// RFC 5435/5436 `notify` with mailto: a notification reaches the
/// address in the URI (a second Petrel) with `Auto-Submitted:
/// auto-notified` and the owner first, From the user, the URI's subject,
/// its own Message-ID, and without the unsafe URI headers; once per
/// address per run; from the null sender when the message came from it;
/// none for a message that is itself auto-submitted. The message is
/// still delivered.
#[tokio::test]
async fn notify_mailto_sends_a_notification() {
    let (remote, s) = relaying_to(&["bob@remote.test"]);
    let out = put(
        &s,
        "tell",
        "require [\"enotify\"];\n\
         notify :importance \"1\" \"mailto:bob@remote.test?subject=Mail%20for%20joe&body=See%20your%20Inbox&received=evil&message-id=%3Cx@evil%3E&auto-submitted=no\";\n\
         notify \"mailto:bob@remote.test\";\n",
    );
    assert!(out.status.success(), "{out:?}");
    send(&s, "ann@remote.test", "Subject: lunch").await;
    let r = smtp_send(
        s.addr("smtp"),
        "",
        &[JOE],
        "From: mailer-daemon@remote.test\r\nSubject: bounced\r\n\r\nbody\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    send(
        &s,
        "robot@remote.test",
        "Auto-Submitted: auto-generated\r\nSubject: automatic",
    )
    .await;
    let got = wait_for_mail(remote.addr("imap"), "bob@remote.test", 2).await;
    let texts: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    let first = texts
        .iter()
        .find(|t| t.contains("Return-Path: <joe@example.org>"))
        .unwrap_or_else(|| panic!("{texts:?}"));
    let head = first.split("\r\n\r\n").next().unwrap();
    let after_trace = head
        .lines()
        .find(|l| {
            !l.starts_with("Return-Path")
                && !l.starts_with("Received")
                && !l.starts_with(' ')
                && !l.starts_with('\t')
                && !l.starts_with("Authentication-Results")
                && !l.starts_with("DKIM")
                && !l.starts_with("ARC")
                && !l.starts_with("X-Spam-")
        })
        .unwrap();
    assert_eq!(
        after_trace, "Auto-Submitted: auto-notified; owner-email=\"joe@example.org\"",
        "{head}"
    );
    assert!(head.contains("Subject: Mail for joe"), "{head}");
    assert!(
        head.contains("From: <joe@example.org>") || head.contains("From: joe@example.org"),
        "{head}"
    );
    assert!(head.contains("Importance: High"), "{head}");
    assert!(
        !head.contains("x@evil")
            && !head.contains("Received: evil")
            && !head.contains("Auto-Submitted: no"),
        "{head}"
    );
    assert!(first.contains("See your Inbox"), "{first}");
    // One per address per run: the second notify to bob sent nothing.
    // The bounce (null sender) notified from the null sender.
    assert!(
        texts.iter().any(|t| t.starts_with("Return-Path: <>")),
        "{texts:?}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        imap_fetch_all(remote.addr("imap"), "bob@remote.test", "pw")
            .await
            .len(),
        2,
        "{texts:?}"
    );
    // Every message was delivered too.
    let inbox: Vec<String> = mailbox(&s, "INBOX")
        .await
        .into_iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(inbox, ["lunch", "bounced", "automatic"]);
    let log = s.log_until("Sieve notification queued");
    assert!(log.contains("Sieve notification queued"), "{log}");
}

/// RFC 5228 §5.4: `envelope "to"` is the address the mail was sent to:
/// an alias of the account files apart from its own address.
#[tokio::test]
async fn envelope_to_is_the_address_used() {
    let s = server("");
    s.cli_ok(&["account", "add-alias", JOE, "info@example.org"]);
    let out = put(
        &s,
        "by-address",
        "require [\"envelope\", \"fileinto\", \"mailbox\"];\n\
         if envelope :localpart :is \"to\" \"info\" { fileinto :create \"Info\"; }\n",
    );
    assert!(out.status.success(), "{out:?}");
    for to in ["info@example.org", JOE] {
        let r = smtp_send(
            s.addr("smtp"),
            "ann@remote.test",
            &[to],
            &format!("From: ann@remote.test\r\nSubject: to {to}\r\n\r\nx\r\n"),
        )
        .await;
        assert!(r.starts_with("250"), "{r}");
    }
    let info: Vec<String> = mailbox(&s, "Info").await.into_iter().map(|m| m.0).collect();
    assert_eq!(info, ["to info@example.org"]);
    let inbox: Vec<String> = mailbox(&s, "INBOX")
        .await
        .into_iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(inbox, [format!("to {JOE}")]);
}

/// RFC 5233 through `directory.recipient-delimiter` ("+" by default):
/// joe+lists@ reaches joe, whose script reads the detail; an unknown
/// base is refused; "" turns it off.
#[tokio::test]
async fn subaddresses_reach_the_account_and_its_script() {
    let s = server("");
    let out = put(
        &s,
        "detail",
        "require [\"envelope\", \"subaddress\", \"fileinto\", \"mailbox\"];\n\
         if envelope :detail \"to\" \"lists\" { fileinto :create \"Lists\"; }\n",
    );
    assert!(out.status.success(), "{out:?}");
    let msg = "From: ann@remote.test\r\nSubject: digest\r\n\r\nx\r\n";
    let r = smtp_send(
        s.addr("smtp"),
        "ann@remote.test",
        &["joe+lists@example.org"],
        msg,
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let lists: Vec<String> = mailbox(&s, "Lists")
        .await
        .into_iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(lists, ["digest"]);
    let r = smtp_send(
        s.addr("smtp"),
        "ann@remote.test",
        &["nobody+lists@example.org"],
        msg,
    )
    .await;
    assert!(r.starts_with("550"), "{r}");
    let off = server("[directory]\nrecipient-delimiter = \"\"\n");
    let r = smtp_send(
        off.addr("smtp"),
        "ann@remote.test",
        &["joe+lists@example.org"],
        msg,
    )
    .await;
    assert!(r.starts_with("550"), "{r}");
}

/// The messages of one of joe's mailboxes, whole, over IMAP.
async fn messages(s: &TestServer, name: &str) -> Vec<String> {
    imap_fetch_mailbox(s.addr("imap"), JOE, "pw", name)
        .await
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect()
}

/// The header section of a message.
fn head(m: &str) -> &str {
    m.split("\r\n\r\n").next().unwrap_or_default()
}

/// RFC 5293 editheader: what is filed, kept and redirected has the
/// header as the script left it at that action (§7); a mailbox asked
/// twice still gets one message (§7); Received cannot be deleted (§6);
/// a script that fails keeps the original header (§7).
#[tokio::test]
async fn editheader_changes_what_is_stored_and_sent() {
    let (remote, s) = relaying_to(&["bob@remote.test"]);
    let out = put(
        &s,
        "edit",
        r#"require ["editheader", "fileinto", "mailbox", "include"];
if header :is "Subject" "edit me" {
    fileinto :create "Original";
    addheader "X-Filtered" "yes";
    deleteheader "X-Remove";
    deleteheader "Received";
    deleteheader "Subject";
    addheader "Subject" "tagged";
    fileinto :create "Tagged";
    redirect "bob@remote.test";
    addheader :last "X-Second" "1";
    fileinto "Tagged";
    keep;
    stop;
}
addheader "X-Edited" "yes";
fileinto :create "Edited";
include :personal "missing";
"#,
    );
    assert!(out.status.success(), "{out:?}");
    send(&s, "ann@remote.test", "Subject: edit me\r\nX-Remove: x").await;
    send(&s, "ann@remote.test", "Subject: fails").await;

    let original = messages(&s, "Original").await;
    assert_eq!(original.len(), 1);
    assert!(original[0].contains("Subject: edit me\r\n") && original[0].contains("X-Remove: x"));
    assert!(!original[0].contains("X-Filtered"), "{}", original[0]);
    let tagged = messages(&s, "Tagged").await;
    assert_eq!(tagged.len(), 1, "one message for a mailbox asked twice");
    let h = head(&tagged[0]);
    assert!(
        h.contains("X-Filtered: yes") && h.contains("Subject: tagged"),
        "{h}"
    );
    assert!(!h.contains("X-Remove") && !h.contains("edit me"), "{h}");
    assert!(h.contains("Received: "), "Received stays: {h}");
    assert!(!h.contains("X-Second"), "the first fileinto's header: {h}");
    let body = |m: &str| m[head(m).len()..].to_string();
    assert_eq!(
        body(&tagged[0]),
        body(&original[0]),
        "the body is unchanged"
    );
    let inbox = messages(&s, "INBOX").await;
    assert_eq!(
        inbox.len(),
        3,
        "the two, and the notice of the failure: {inbox:?}"
    );
    assert!(head(&inbox[0]).contains("X-Second: 1"), "{}", inbox[0]);
    // The failing script changed nothing it asked: the original header
    // in the Inbox, nothing in Edited.
    assert!(head(&inbox[1]).contains("Subject: fails"), "{}", inbox[1]);
    assert!(!inbox[1].contains("X-Edited"), "{}", inbox[1]);
    assert!(messages(&s, "Edited").await.is_empty());

    let got = wait_for_mail(remote.addr("imap"), "bob@remote.test", 1).await;
    let sent = String::from_utf8_lossy(&got[0]).into_owned();
    assert!(
        sent.contains("X-Filtered: yes") && sent.contains("Subject: tagged"),
        "the redirect carries the change: {sent}"
    );
    assert!(!sent.contains("X-Second"), "{sent}");
}

/// `[sieve.delivery]`: the administrator's scripts run at every delivery
/// around the user's own (and for users without one), as one run: the
/// user's `fileinto` cancels the implicit keep for all, a user's `stop`
/// ends the run. They may use the users' extensions only, and cannot be
/// deleted while named.
#[tokio::test]
async fn delivery_scripts_run_around_the_users() {
    let s = server("[sieve.delivery]\nbefore = \"scan\"\nafter = \"junk\"\n");
    s.account("ann@example.org");
    let out = put_global(&s, "scan", "require \"vnd.stalwart.while\";\nkeep;\n");
    assert!(
        !out.status.success(),
        "an administrator's extension at delivery"
    );
    let out = put_global(
        &s,
        "scan",
        "require \"editheader\";\naddheader \"X-Scanned\" \"yes\";\n",
    );
    assert!(out.status.success(), "{out:?}");
    let out = put_global(
        &s,
        "junk",
        "require [\"fileinto\", \"mailbox\"];\nif header :contains \"Subject\" \"offer\" { fileinto :create \"Junk\"; }\n",
    );
    assert!(out.status.success(), "{out:?}");
    let list = s.cli_ok(&["sieve", "global", "list"]);
    assert!(
        list.contains("junk  (runs at delivery, after users' scripts)"),
        "{list}"
    );
    assert!(
        list.contains("scan  (runs at delivery, before users' scripts)"),
        "{list}"
    );
    let out = s.cli(&["sieve", "global", "delete", "junk"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sieve.delivery.after"),
        "{out:?}"
    );

    let out = put(
        &s,
        "mine",
        "require [\"fileinto\", \"mailbox\"];\n\
         if header :contains \"Subject\" \"stop here\" { keep; stop; }\n\
         if header :contains \"Subject\" \"list\" { fileinto :create \"Lists\"; }\n",
    );
    assert!(out.status.success(), "{out:?}");
    for subject in ["list news", "an offer", "stop here, an offer", "plain"] {
        send(&s, "bob@remote.test", &format!("Subject: {subject}")).await;
    }
    let subjects = |m: Vec<String>| -> Vec<String> {
        m.iter()
            .map(|m| {
                assert!(
                    head(m).contains("X-Scanned: yes"),
                    "the before script ran: {m}"
                );
                head(m)
                    .split("Subject: ")
                    .nth(1)
                    .unwrap()
                    .lines()
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(subjects(messages(&s, "Lists").await), ["list news"]);
    assert_eq!(subjects(messages(&s, "Junk").await), ["an offer"]);
    assert_eq!(
        subjects(messages(&s, "INBOX").await),
        ["stop here, an offer", "plain"],
        "the user's stop ended the run before the after script"
    );

    // Ann has no script of her own: the two still run.
    let r = smtp_send(
        s.addr("smtp"),
        "bob@remote.test",
        &["ann@example.org"],
        "From: bob@remote.test\r\nSubject: another offer\r\n\r\nbody\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let junk = imap_fetch_mailbox(s.addr("imap"), "ann@example.org", "pw", "Junk").await;
    assert_eq!(junk.len(), 1);
    assert!(String::from_utf8_lossy(&junk[0]).contains("X-Scanned: yes"));
    assert!(imap_fetch_all(s.addr("imap"), "ann@example.org", "pw")
        .await
        .is_empty());
}

/// RFC 5490 mboxmetadata and servermetadata: a script reads the
/// annotations its account set over IMAP METADATA (RFC 5464), its
/// /private ones included; an entry not set does not exist.
#[tokio::test]
async fn scripts_read_the_accounts_metadata() {
    let s = server("");
    let mut c = LineClient::connect(s.addr("imap")).await;
    c.line().await;
    c.send(&format!("a LOGIN {JOE} pw\r\n")).await;
    c.imap_until("a").await;
    c.send("b SETMETADATA INBOX (/private/comment \"away\")\r\n")
        .await;
    assert!(c.imap_until("b").await.last().unwrap().starts_with("b OK"));
    c.send("c SETMETADATA \"\" (/shared/comment \"hello\")\r\n")
        .await;
    assert!(c.imap_until("c").await.last().unwrap().starts_with("c OK"));
    let out = put(
        &s,
        "meta",
        r#"require ["fileinto", "mboxmetadata", "servermetadata", "mailbox"];
if metadata :is "INBOX" "/private/comment" "away" { fileinto :create "Meta"; }
if metadataexists "INBOX" ["/private/comment"] { fileinto :create "Exists"; }
if metadataexists "INBOX" "/private/none" { fileinto :create "Wrong"; }
if servermetadata :is "/shared/comment" "hello" { fileinto :create "Server"; }
if servermetadataexists "/shared/nothing" { fileinto :create "No"; }
"#,
    );
    assert!(out.status.success(), "{out:?}");
    send(&s, "ann@remote.test", "Subject: with metadata").await;
    for (name, n) in [
        ("Meta", 1),
        ("Exists", 1),
        ("Server", 1),
        ("Wrong", 0),
        ("No", 0),
    ] {
        assert_eq!(mailbox(&s, name).await.len(), n, "{name}");
    }
}

/// RFC 8580 fcc: `vacation :fcc` and `notify :fcc` file a copy of what
/// they sent (with :create and :flags), the message itself is still
/// kept, and a response not sent (list mail) files nothing.
#[tokio::test]
async fn fcc_files_what_was_sent() {
    let (remote, s) = relaying_to(&["ann@remote.test", "bob@remote.test"]);
    let out = put(
        &s,
        "away",
        r#"require ["vacation", "fcc", "enotify", "mailbox", "imap4flags"];
vacation :fcc "Sent" :create :flags "\\Seen" :subject "Away" "I am away.";
notify :fcc "Notes" :create :message "New mail" "mailto:bob@remote.test";
"#,
    );
    assert!(out.status.success(), "{out:?}");
    let r = smtp_send(
        s.addr("smtp"),
        "ann@remote.test",
        &[JOE],
        "From: ann@remote.test\r\nTo: joe@example.org\r\nSubject: hello\r\nMessage-ID: <f1@remote.test>\r\n\r\nbody\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    send(
        &s,
        "ann@remote.test",
        "To: joe@example.org\r\nList-Id: <l.remote.test>\r\nSubject: list",
    )
    .await;
    let sent = mailbox(&s, "Sent").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, "Away");
    assert!(sent[0].1.contains("\\Seen"), "{sent:?}");
    let copy = &messages(&s, "Sent").await[0];
    assert!(
        copy.contains("To: ann@remote.test") && copy.contains("I am away."),
        "{copy}"
    );
    for field in [
        "date: ",
        "from: joe@example.org",
        "auto-submitted: auto-replied",
        "content-type: text/plain",
        "mime-version: 1.0",
    ] {
        assert!(copy.to_ascii_lowercase().contains(field), "{field}: {copy}");
    }
    let notes = messages(&s, "Notes").await;
    assert!(!notes.is_empty(), "{notes:?}");
    let body = &notes[0][head(&notes[0]).len()..];
    assert!(
        body.contains("New mail"),
        "the :message is in the copy's body: {}",
        notes[0]
    );
    assert_eq!(mailbox(&s, "INBOX").await.len(), 2, "both messages kept");
    let got = wait_for_mail(remote.addr("imap"), "ann@remote.test", 1).await;
    assert!(String::from_utf8_lossy(&got[0]).contains("Subject: Away"));
}
