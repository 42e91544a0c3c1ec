//! The spam filter against a running Petrel: verdicts at SMTP (headers,
//! Junk filing, 550 at DATA; forged X-Spam fields removed), training with
//! `petrel spam train` from a folder and an mbox and `petrel spam
//! classify`, and learning from users who move mail into and out of Junk
//! with two real clients (Python's imaplib: MOVE and STORE $Junk/$NotJunk;
//! curl: JMAP Email/set).

mod common;

use std::time::{Duration, Instant};

use common::jmap::{CORE, MAIL};
use common::*;
use serde_json::json;

const JOE: &str = "joe@example.org";

/// A message from ann@remote.test to joe with the fields every mail
/// client writes (so that only what a test adds fires rules).
fn message(n: usize, subject: &str, body: &str) -> String {
    format!(
        "Date: {}\r\nMessage-ID: <{n}.{}@remote.test>\r\nFrom: Ann <ann@remote.test>\r\nTo: joe@example.org\r\nSubject: {subject}\r\n\r\n{body}\r\n",
        rfc_date(),
        subject.len()
    )
}

fn rfc_date() -> String {
    let out = std::process::Command::new("date")
        .args(["-R"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const SPAM_WORDS: &[&str] = &[
    "viagra",
    "casino",
    "lottery",
    "winner",
    "jackpot",
    "pills",
    "discount",
    "bitcoin",
    "prize",
    "urgent",
    "claim",
    "bonus",
    "offer",
    "guaranteed",
    "cheap",
    "investment",
];
const HAM_WORDS: &[&str] = &[
    "meeting",
    "project",
    "schedule",
    "review",
    "agenda",
    "minutes",
    "deadline",
    "colleague",
    "report",
    "draft",
    "budget",
    "quarterly",
    "lunch",
    "team",
    "notes",
    "release",
];

/// The `n`th message of a kind: eight words of its vocabulary.
fn sample(words: &[&str], n: usize) -> String {
    (0..8)
        .map(|i| words[(n * 7 + i * 3) % words.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

fn spam(n: usize) -> String {
    message(
        n,
        &format!("{} {n}", SPAM_WORDS[n % 16]),
        &sample(SPAM_WORDS, n),
    )
}

fn ham(n: usize) -> String {
    message(
        n,
        &format!("{} {n}", HAM_WORDS[n % 16]),
        &sample(HAM_WORDS, n),
    )
}

async fn send(s: &TestServer, body: &str) -> String {
    smtp_send(s.addr("smtp"), "ann@remote.test", &[JOE], body).await
}

/// The values of the header fields `name` (folded lines kept).
fn header(msg: &str, name: &str) -> Vec<String> {
    let head = msg.split("\r\n\r\n").next().unwrap_or("");
    let mut fields: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        match fields.last_mut() {
            Some(f) if line.starts_with([' ', '\t']) => {
                f.push_str("\r\n");
                f.push_str(line);
            }
            _ => fields.push(line.to_string()),
        }
    }
    fields
        .into_iter()
        .filter_map(|f| {
            let (n, v) = f.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.to_string())
        })
        .collect()
}

fn texts(msgs: Vec<Vec<u8>>) -> Vec<String> {
    msgs.into_iter()
        .map(|m| String::from_utf8_lossy(&m).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_at_smtp() {
    let s = TestServer::start_with(
        "[imap]\nauth-without-tls = true\n[spam]\njunk-score = 3.0\nreject-score = 6.0\nmax-size = 3000\nrules = { SUBJ_ALL_CAPS = 3.5, EXE_ATTACHMENT = 3.0 }\n",
    );
    s.account(JOE);
    let imap = s.addr("imap");
    // Clean: the Inbox, scored, with our verdict only.
    let clean = message(1, "Lunch", "See you at noon.").replacen(
        "Date:",
        "X-Spam-Status: Yes, forged\r\nDate:",
        1,
    );
    assert!(send(&s, &clean).await.starts_with("250"));
    let inbox = texts(wait_for_mail(imap, JOE, 1).await);
    let status = header(&inbox[0], "X-Spam-Status");
    assert_eq!(status.len(), 1, "the sender's field is gone: {}", inbox[0]);
    assert!(
        status[0].starts_with(" No, score=0.00 required=3.00"),
        "{status:?}"
    );
    assert_eq!(header(&inbox[0], "X-Spam-Score"), [" 0.00"]);
    // A rule's configured score puts it over junk-score: Junk, and the
    // sender's "No" did not help.
    let shouting = message(2, "YOU HAVE WON A PRIZE", "Claim it today.").replacen(
        "Date:",
        "X-Spam-Status: No\r\nX-Spam-Score: -50\r\nDate:",
        1,
    );
    assert!(send(&s, &shouting).await.starts_with("250"));
    let junk = texts(imap_fetch_mailbox(imap, JOE, "pw", "Junk").await);
    assert_eq!(junk.len(), 1);
    assert_eq!(
        header(&junk[0], "X-Spam-Status"),
        [" Yes, score=3.50 required=3.00"]
    );
    assert_eq!(header(&junk[0], "X-Spam-Score"), [" 3.50"]);
    assert_eq!(header(&junk[0], "X-Spam-Result"), [" SUBJ_ALL_CAPS (3.50)"]);
    assert_eq!(imap_fetch_all(imap, JOE, "pw").await.len(), 1);
    // Over reject-score: refused at DATA, nothing stored.
    let both = format!(
        "Date: {}\r\nMessage-ID: <3@remote.test>\r\nFrom: ann@remote.test\r\nTo: joe@example.org\r\nSubject: YOU HAVE WON A PRIZE\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"prize.exe\"\r\n\r\nMZ\r\n--b--\r\n",
        rfc_date()
    );
    let r = send(&s, &both).await;
    assert!(
        r.starts_with("550 5.7.1 Message refused as spam (score 6.5, limit 6.0)"),
        "{r}"
    );
    assert_eq!(imap_fetch_mailbox(imap, JOE, "pw", "Junk").await.len(), 1);
    assert_eq!(imap_fetch_all(imap, JOE, "pw").await.len(), 1);
    // A hosted domain in From, from outside, nothing passing for it.
    let spoof = message(5, "Invoice", "pay today").replace(
        "From: Ann <ann@remote.test>",
        "From: Boss <boss@example.org>",
    );
    assert!(send(&s, &spoof).await.starts_with("250"));
    let inbox = texts(wait_for_mail(imap, JOE, 2).await);
    let spoof = inbox
        .iter()
        .find(|m| m.contains("Subject: Invoice"))
        .unwrap();
    assert_eq!(
        header(spoof, "X-Spam-Result"),
        [" FROM_LOCAL_UNAUTH (2.00)"]
    );
    // Larger than max-size: not scored, so the Inbox and no verdict.
    let big = message(4, "YOU HAVE WON A PRIZE", &"claim it ".repeat(400));
    assert!(send(&s, &big).await.starts_with("250"));
    let inbox = texts(wait_for_mail(imap, JOE, 3).await);
    let big = inbox.iter().find(|m| m.contains("claim it")).unwrap();
    assert!(header(big, "X-Spam-Status").is_empty(), "{big}");
    // What an operator sees.
    let rules = s.cli_ok(&["spam", "rules"]);
    assert!(
        rules.contains("filter on; junk from 3.0, refused from 6.0"),
        "{rules}"
    );
    assert!(
        rules.contains("   3.50  SUBJ_ALL_CAPS          Subject written in capitals (built in: 1)"),
        "{rules}"
    );
    let metrics = http_get(s.addr("http"), "/metrics");
    for (v, n) in [("ham", 2), ("junk", 1), ("reject", 1), ("unscored", 1)] {
        assert!(
            metrics.contains(&format!(
                "petrel_spam_verdicts_total{{verdict=\"{v}\"}} {n}"
            )),
            "{v}: {metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_means_no_verdict() {
    let s = TestServer::start_with(
        "[imap]\nauth-without-tls = true\n[spam]\nenable = false\njunk-score = 1.0\n",
    );
    s.account(JOE);
    assert!(send(&s, &message(1, "YOU HAVE WON A PRIZE", "x"))
        .await
        .starts_with("250"));
    let inbox = texts(wait_for_mail(s.addr("imap"), JOE, 1).await);
    assert!(
        header(&inbox[0], "X-Spam-Status").is_empty(),
        "{}",
        inbox[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trained_from_the_cli() {
    let s =
        TestServer::start_with("[imap]\nauth-without-tls = true\n[spam.bayes]\nmin-learns = 10\n");
    s.account(JOE);
    let dir = tempfile::tempdir().unwrap();
    let spam_dir = dir.path().join("spam");
    std::fs::create_dir(&spam_dir).unwrap();
    for n in 0..20 {
        std::fs::write(spam_dir.join(format!("{n}.eml")), spam(n)).unwrap();
    }
    // The ham as an mbox, one of its lines quoted as mboxrd does.
    let mut mbox = String::new();
    for n in 0..20 {
        mbox.push_str(&format!(
            "From ann@remote.test Mon Jan  1 00:00:00 2024\n{}\n",
            ham(n).replace("\r\n", "\n")
        ));
    }
    mbox.push_str("From x Mon Jan  1 00:00:00 2024\nSubject: quoted\n\n>From here on\n");
    let mbox_path = dir.path().join("ham.mbox");
    std::fs::write(&mbox_path, mbox).unwrap();
    // Before: the classifier has nothing to say.
    let probe = dir.path().join("probe.eml");
    std::fs::write(&probe, spam(100)).unwrap();
    let before = s.cli_ok(&["spam", "classify", probe.to_str().unwrap()]);
    assert!(before.contains("classifier: not used"), "{before}");
    let out = s.cli_ok(&[
        "spam",
        "train",
        "--spam",
        spam_dir.to_str().unwrap(),
        "--ham",
        mbox_path.to_str().unwrap(),
    ]);
    assert!(out.contains("learnt 20 messages as spam"), "{out}");
    assert!(out.contains("learnt 21 messages as ham"), "{out}");
    assert!(
        out.contains("The server's database has learnt 20 spam and 21 ham messages."),
        "{out}"
    );
    let rules = s.cli_ok(&["spam", "rules"]);
    assert!(
        rules.contains("learnt 20 spam and 21 ham (counts from 10 of each)"),
        "{rules}"
    );
    let after = s.cli_ok(&["spam", "classify", probe.to_str().unwrap()]);
    assert!(after.contains("(server database)"), "{after}");
    assert!(after.contains("BAYES_99"), "{after}");
    assert!(after.contains(": junk"), "{after}");
    // Delivery uses it: new spam to Junk, new ham to the Inbox.
    assert!(send(&s, &spam(200)).await.starts_with("250"));
    assert!(send(&s, &ham(200)).await.starts_with("250"));
    let inbox = texts(wait_for_mail(s.addr("imap"), JOE, 1).await);
    assert_eq!(inbox.len(), 1);
    assert!(inbox[0].contains("BAYES_00"), "{}", inbox[0]);
    let junk = texts(imap_fetch_mailbox(s.addr("imap"), JOE, "pw", "Junk").await);
    assert_eq!(junk.len(), 1);
    assert!(junk[0].contains("BAYES_99 (6.00)"), "{}", junk[0]);
    // An account that does not exist is named.
    let bad = s.cli(&[
        "spam",
        "train",
        "--spam",
        probe.to_str().unwrap(),
        "--account",
        "no@example.org",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no account `no@example.org`"));
}

/// `spam rules` until the server's database has learnt `spam` and `ham`.
async fn wait_learnt(s: &TestServer, spam: usize, ham: usize) {
    let want = format!("learnt {spam} spam and {ham} ham");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = s.cli_ok(&["spam", "rules"]);
        if out.contains(&want) {
            return;
        }
        assert!(Instant::now() < deadline, "wanted {want}: {out}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learns_from_users_moving_mail() {
    // Only what users teach counts here: no learning of verdicts.
    let j = common::jmap::server("[spam.bayes]\nmin-learns = 3\nauto-learn = false\n");
    let s = &j.s;
    let mut bodies: Vec<String> = (0..4).map(spam).collect();
    bodies.extend((0..4).map(ham));
    j.deliver(&bodies).await;
    // imaplib: MOVE two spam into Junk, flag one $Junk, three ham $NotJunk,
    // then copy the first spam into Junk once more (learnt once).
    let script = r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("joe@example.org", "pw")
m.select("INBOX")
def uid(subject):
    return m.uid("SEARCH", "HEADER", "Subject", '"%s"' % subject)[1][0].decode()
print("move", m.uid("MOVE", uid("viagra 0") + "," + uid("casino 1"), "Junk")[0])
print("junk", m.uid("STORE", uid("lottery 2"), "+FLAGS", "($Junk)")[0])
for s in ["meeting 0", "project 1", "schedule 2"]:
    print("notjunk", m.uid("STORE", uid(s), "+FLAGS", "($NotJunk)")[0])
m.select("Junk")
print("again", m.uid("COPY", "1", "Junk")[0])
m.logout()
"#;
    let out = run_python(script, s, "imap");
    assert_eq!(out.matches(" OK").count(), 6, "{out}");
    wait_learnt(s, 3, 3).await;
    // curl: JMAP Email/set puts the fourth spam into Junk.
    let account = j.account_id();
    let roles = j.roles(&account);
    let q = j.api(
        &[CORE, MAIL],
        json!([
            ["Email/query", {"accountId": account, "filter": {"inMailbox": roles["inbox"], "header": ["Subject", "winner 3"]}}, "q"]
        ]),
    );
    let id = q[0][1]["ids"][0].as_str().unwrap().to_string();
    let r = j.api(
        &[CORE, MAIL],
        json!([["Email/set", {"accountId": account, "update": {id.clone(): {"mailboxIds": {roles["junk"].clone(): true}}}}, "s"]]),
    );
    assert!(r[0][1]["updated"].get(&id).is_some(), "{r:?}");
    wait_learnt(s, 4, 3).await;
    // joe's own database has learnt enough: it decides his mail.
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe.eml");
    std::fs::write(&probe, spam(9)).unwrap();
    let c = s.cli_ok(&[
        "spam",
        "classify",
        probe.to_str().unwrap(),
        "--account",
        JOE,
    ]);
    assert!(c.contains("(account database)"), "{c}");
    assert!(c.contains("BAYES_9"), "{c}");
    // A change of mind: the first spam moved back to the Inbox is ham now.
    let back = r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("joe@example.org", "pw")
m.select("Junk")
u = m.uid("SEARCH", "HEADER", "Subject", '"viagra 0"')[1][0].decode().split()
print("back", m.uid("MOVE", u[0], "INBOX")[0])
m.logout()
"#;
    assert!(run_python(back, s, "imap").contains("back OK"));
    wait_learnt(s, 3, 4).await;
    // Moving spam to the Trash says nothing.
    let trash = r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("joe@example.org", "pw")
m.select("Junk")
print("trash", m.uid("MOVE", "1:*", "Trash")[0])
m.logout()
"#;
    assert!(run_python(trash, s, "imap").contains("trash OK"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_learnt(s, 3, 4).await;
}

fn put_script(s: &TestServer, text: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.sieve");
    std::fs::write(&file, text).unwrap();
    s.cli(&[
        "sieve",
        "put",
        JOE,
        "main",
        file.to_str().unwrap(),
        "--activate",
    ])
}

/// RFC 5235 spamtest and spamtestplus in users' scripts read the filter's
/// score: 1 for a message it found clean, the score's share of
/// junk-score in between, 10 from junk-score; 0 for mail it did not
/// test (submitted by a user, whose X-Spam fields are removed). Mail the
/// filter sends to Junk runs through the script too, where `keep` is
/// the Junk mailbox and an explicit fileinto is obeyed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sieve_spamtest() {
    let s = TestServer::start_with(
        "[imap]\nauth-without-tls = true\n[smtp]\nauth-without-tls = true\n[spam]\njunk-score = 4.0\nrules = { SUBJ_ALL_CAPS = 3.0, SUBJ_EXCLAIM = 2.0 }\n",
    );
    s.account(JOE);
    // :percent needs spamtestplus (RFC 5235 §3.2).
    let bad = put_script(
        &s,
        "require [\"spamtest\", \"relational\", \"comparator-i;ascii-numeric\"];\nif spamtest :percent :value \"ge\" :comparator \"i;ascii-numeric\" \"50\" { discard; }\n",
    );
    assert!(!bad.status.success(), "{bad:?}");
    let script = r#"require ["spamtestplus", "relational", "comparator-i;ascii-numeric", "fileinto", "mailbox"];
if header :contains "Subject" "keep me" { fileinto "INBOX"; stop; }
if spamtest :is "0" { fileinto :create "Untested"; stop; }
if spamtest :is "1" { fileinto :create "Clean"; stop; }
if spamtest :percent :value "ge" :comparator "i;ascii-numeric" "100" { keep; stop; }
if spamtest :value "ge" :comparator "i;ascii-numeric" "7" { fileinto :create "Suspicious"; stop; }
"#;
    let ok = put_script(&s, script);
    assert!(ok.status.success(), "{ok:?}");
    let imap = s.addr("imap");
    let count = |mailbox: &'static str| async move {
        imap_fetch_mailbox(imap, JOE, "pw", mailbox).await.len()
    };
    assert!(send(&s, &message(1, "Lunch", "noon"))
        .await
        .starts_with("250"));
    assert_eq!(count("Clean").await, 1);
    // 3.0 of 4.0: spamtest 7, 75 %.
    assert!(send(&s, &message(2, "FREE MONEY FOR YOU", "x"))
        .await
        .starts_with("250"));
    assert_eq!(count("Suspicious").await, 1);
    // 5.0: Junk, where the script's keep leaves it.
    assert!(send(&s, &message(3, "FREE MONEY FOR YOU!!", "x"))
        .await
        .starts_with("250"));
    assert_eq!(count("Junk").await, 1);
    // The script's own choice wins over Junk.
    assert!(send(&s, &message(4, "FREE MONEY!! keep me", "x"))
        .await
        .starts_with("250"));
    assert_eq!(count("INBOX").await, 1);
    assert_eq!(count("Junk").await, 1);
    // Submitted by a user with a made-up score: not tested.
    let r = submit(
        &s,
        JOE,
        &[JOE],
        &message(5, "note to self", "x")
            .replacen("Date:", "X-Spam-Score: -20\r\nDate:", 1)
            .replace("From: Ann <ann@remote.test>", "From: joe@example.org"),
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(count("Untested").await, 1);
}

/// One message over SMTP from the loopback address `client`; the DATA
/// reply.
async fn send_from(s: &TestServer, client: &str, from: &str, body: &str) -> String {
    send_to(s, client, from, JOE, body).await
}

async fn send_to(s: &TestServer, client: &str, from: &str, to: &str, body: &str) -> String {
    let mut c = LineClient::connect_from(client.parse().unwrap(), s.addr("smtp")).await;
    assert!(c.smtp_reply().await.starts_with("220"));
    for cmd in [
        "EHLO client.test".to_string(),
        format!("MAIL FROM:<{from}>"),
        format!("RCPT TO:<{to}>"),
        "DATA".to_string(),
    ] {
        c.send(&format!("{cmd}\r\n")).await;
        let r = c.smtp_reply().await;
        assert!(r.starts_with('2') || r.starts_with('3'), "{cmd}: {r}");
    }
    c.send(body).await;
    c.send("\r\n.\r\n").await;
    let r = c.smtp_reply().await;
    c.send("QUIT\r\n").await;
    r
}

/// DNS blocklists (RFC 5782) served by a real dnsmasq: the client's
/// address under an IP zone with answer codes mapped to scores (the
/// zone's error code counting nothing), the envelope sender's and the
/// links' domains under a domain zone; a blocklist that stops answering
/// holds nothing up and lists nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_blocklists() {
    use common::dns::{Dns, Rec};
    let dns = Dns::start(&[
        Rec::A("2.0.0.127.bl.test", "127.0.0.2"),
        Rec::A("3.0.0.127.bl.test", "127.255.255.254"),
        Rec::A("4.0.0.127.bl.test", "127.0.0.4"),
        Rec::A("pharma.test.dbl.test", "127.0.1.2"),
        // A whitelist (DWL): listing takes points away.
        Rec::A("good.test.dwl.test", "127.0.2.2"),
    ]);
    let s = TestServer::start_with(&format!(
        "[imap]\nauth-without-tls = true\n[spam]\njunk-score = 5.0\ndnsbl-timeout = 2\n[[spam.dnsbl]]\nzone = \"bl.test\"\nanswers = {{ \"127.0.0.2\" = 5.5, \"127.0.0.4\" = 1.0 }}\n[[spam.dnsbl]]\nzone = \"dbl.test\"\ncheck = \"domain\"\nid = \"DBL_TEST\"\nscore = 2.5\n[[spam.dnsbl]]\nzone = \"dwl.test\"\ncheck = \"domain\"\nid = \"DWL_TEST\"\nscore = -3.0\n{}",
        dns.resolver_toml()
    ));
    s.account(JOE);
    let imap = s.addr("imap");
    // 127.0.0.2 is listed with the code worth 5.5: Junk.
    let r = send_from(&s, "127.0.0.2", "ann@remote.test", &message(1, "one", "x")).await;
    assert!(r.starts_with("250"), "{r}");
    let junk = texts(imap_fetch_mailbox(imap, JOE, "pw", "Junk").await);
    assert_eq!(junk.len(), 1);
    assert_eq!(header(&junk[0], "X-Spam-Result"), [" RBL_BL_TEST (5.50)"]);
    // The zone's error code and an unlisted client: nothing.
    for client in ["127.0.0.3", "127.0.0.1"] {
        let r = send_from(&s, client, "ann@remote.test", &message(2, client, "x")).await;
        assert!(r.starts_with("250"), "{r}");
    }
    let inbox = texts(wait_for_mail(imap, JOE, 2).await);
    for m in &inbox {
        assert_eq!(header(m, "X-Spam-Score"), [" 0.00"], "{m}");
    }
    // Another code, and a listed domain in a link and the envelope.
    let body = message(3, "offer", "see https://shop.pharma.test/buy now");
    let r = send_from(&s, "127.0.0.4", "sales@pharma.test", &body).await;
    assert!(r.starts_with("250"), "{r}");
    let inbox = texts(wait_for_mail(imap, JOE, 3).await);
    let last = inbox.iter().find(|m| m.contains("Subject: offer")).unwrap();
    assert_eq!(
        header(last, "X-Spam-Result"),
        [" DBL_TEST (2.50),\r\n\tRBL_BL_TEST (1.00)"]
    );
    // A whitelisted sender domain: the shouting subject's 1.0 less 3.
    let shout = message(5, "BIG NEWS TODAY", "x");
    let r = send_from(&s, "127.0.0.1", "news@good.test", &shout).await;
    assert!(r.starts_with("250"), "{r}");
    let inbox = texts(wait_for_mail(imap, JOE, 4).await);
    let news = inbox
        .iter()
        .find(|m| m.contains("Subject: BIG NEWS"))
        .unwrap();
    assert_eq!(header(news, "X-Spam-Score"), [" -2.00"], "{news}");
    assert!(
        header(news, "X-Spam-Result")[0].contains("DWL_TEST (-3.00)"),
        "{news}"
    );
    // The blocklists' server is gone: the message is not held past the
    // lookups' time limit, and nothing is listed.
    drop(dns);
    let t0 = Instant::now();
    let r = send_from(
        &s,
        "127.0.0.2",
        "ann@remote.test",
        &message(4, "later", "x"),
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    let inbox = texts(wait_for_mail(imap, JOE, 5).await);
    let later = inbox.iter().find(|m| m.contains("Subject: later")).unwrap();
    assert!(!later.contains("RBL_BL_TEST"), "{later}");
    let metrics = http_get(s.addr("http"), "/metrics");
    assert!(
        metrics.contains("petrel_spam_dnsbl_lookups_total{zone=\"bl.test\",result=\"listed\"} 2"),
        "{metrics}"
    );
}

/// Auto-learning: confident verdicts (scored without the classifier)
/// teach the server's database, which then has its say on mail the
/// rules alone let through; what the classifier is already sure of, and
/// the uncertain middle, are not learnt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learns_its_confident_verdicts() {
    let s = TestServer::start_with(
        "[imap]\nauth-without-tls = true\n[spam]\nrules = { SUBJ_ALL_CAPS = 13.0, SUBJ_EXCLAIM = 3.0 }\n[spam.bayes]\nmin-learns = 3\n",
    );
    s.account(JOE);
    let learnt = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = s.cli_ok(&["spam", "rules"]);
            if out.contains(want) {
                return;
            }
            assert!(Instant::now() < deadline, "wanted {want}: {out}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Shouting spam scores 13 (from auto-learn-spam, 12): learnt as spam.
    for n in 0..3 {
        let m = message(n, "WIN THE JACKPOT NOW", &sample(SPAM_WORDS, n));
        assert!(send(&s, &m).await.starts_with("250"));
    }
    // Clean mail scores 0 (up to auto-learn-ham, 0.1): learnt as ham.
    for n in 3..6 {
        assert!(send(&s, &ham(n)).await.starts_with("250"));
    }
    // 3 points are neither: not learnt.
    let middle = message(6, "lunch!!", &sample(HAM_WORDS, 6));
    assert!(send(&s, &middle).await.starts_with("250"));
    learnt("learnt 3 spam and 3 ham");
    // The classifier now counts: spam words under a quiet subject, which
    // no rule catches, get a spam band and go to Junk.
    let quiet = message(7, "hello", &sample(SPAM_WORDS, 7));
    assert!(send(&s, &quiet).await.starts_with("250"));
    let imap = s.addr("imap");
    let junk = texts(imap_fetch_mailbox(imap, JOE, "pw", "Junk").await);
    let quiet = junk
        .iter()
        .find(|m| m.contains("Subject: hello"))
        .unwrap_or_else(|| panic!("{junk:#?}"));
    assert!(
        header(quiet, "X-Spam-Result")[0].contains("BAYES_99"),
        "{quiet}"
    );
    // Rules saying ham, the classifier spam: no confident case, and the
    // classifier was sure anyway. Not learnt.
    std::thread::sleep(Duration::from_millis(300));
    learnt("learnt 3 spam and 3 ham");
    let metrics = http_get(s.addr("http"), "/metrics");
    assert!(
        metrics.contains("petrel_spam_autolearn_total{as=\"spam\"} 3"),
        "{metrics}"
    );
}

/// Sender reputation: earlier mail from the same client address, ASN
/// (TXT records in origin.asn.cymru.com's convention, from a real
/// dnsmasq) and SPF-passing sender domain and address adds its mean
/// score; mail to a spam trap counts as spam for its senders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_reputation() {
    use common::dns::{Dns, Rec};
    let asn = |ip: &str, n: u32| {
        Rec::Txt(
            format!("{ip}.asn.test"),
            format!("{n} | 127.0.0.0/24 | ZZ | test | 2026-01-01"),
        )
    };
    let dns = Dns::start(&[
        asn("1.0.0.127", 64500),
        asn("2.0.0.127", 64500),
        asn("5.0.0.127", 64501),
        Rec::Txt("remote.test".into(), "v=spf1 ip4:127.0.0.0/8 -all".into()),
    ]);
    let s = TestServer::start_with(&format!(
        "[imap]\nauth-without-tls = true\n[spam]\njunk-score = 3.0\nreject-score = 0\ntraps = [\"trap@example.org\"]\nrules = {{ SUBJ_ALL_CAPS = 8.0, SPAM_TRAP = 0 }}\n[spam.reputation]\nmin-messages = 2\nasn-zone = \"asn.test\"\nexempt = []\n{}",
        dns.resolver_toml()
    ));
    s.account(JOE);
    let imap = s.addr("imap");
    // Reputations are recorded after the reply: wait until they are.
    let counted = |who: &str, n: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = s.cli_ok(&["spam", "reputation"]);
            if out
                .lines()
                .any(|l| l.ends_with(who) && l.split_whitespace().next() == Some(n))
            {
                return out;
            }
            assert!(Instant::now() < deadline, "{who} not at {n}: {out}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let result = |m: &str| header(m, "X-Spam-Result").join("");
    // Two shouting messages from 127.0.0.1 (AS64500, remote.test passing
    // SPF), 8 points each.
    for n in 1..=2 {
        let m = message(n, "YOU HAVE WON A PRIZE", "claim");
        let r = send_from(&s, "127.0.0.1", "bulk@remote.test", &m).await;
        assert!(r.starts_with("250"), "{r}");
    }
    let out = counted("ip 127.0.0.1", "2.00");
    assert!(
        out.contains("asn 64500") && out.contains("domain remote.test"),
        "{out}"
    );
    // A clean message from there now carries the senders' past: the mean
    // 8 times 0.5, capped at 3, for each.
    let r = send_from(
        &s,
        "127.0.0.1",
        "bulk@remote.test",
        &message(3, "hello", "x"),
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let junk = texts(imap_fetch_mailbox(imap, JOE, "pw", "Junk").await);
    let clean = junk.iter().find(|m| m.contains("Subject: hello")).unwrap();
    let res = result(clean);
    for id in [
        "REP_IP (3.00)",
        "REP_ASN (3.00)",
        "REP_DOMAIN (3.00)",
        "REP_SENDER (3.00)",
    ] {
        assert!(res.contains(id), "{id}: {clean}");
    }
    // The reputation part is not learnt back: the clean message counted 0.
    let out = counted("ip 127.0.0.1", "3.00");
    assert!(
        out.lines()
            .any(|l| l.ends_with("ip 127.0.0.1") && l.contains("5.33")),
        "{out}"
    );
    // Another address in the same network, another sender: only the ASN.
    let r = send_from(
        &s,
        "127.0.0.2",
        "ann@elsewhere.test",
        &message(4, "hi", "x"),
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    // 2.67 is under junk-score: the Inbox.
    let inbox = texts(wait_for_mail(imap, JOE, 1).await);
    let hi = &inbox[0];
    assert!(result(hi).contains("REP_ASN (2.67)"), "{hi}");
    assert!(!result(hi).contains("REP_IP"), "{hi}");
    // A client whose only mail went to a spam trap: its next message is
    // marked by it, though it is clean (trap mail counts as three times
    // junk-score at least, whatever SPAM_TRAP's own score).
    for n in 5..=6 {
        let r = send_to(
            &s,
            "127.0.0.5",
            "x@other.test",
            "trap@example.org",
            &spam(n),
        )
        .await;
        assert!(r.starts_with("250"), "{r}");
    }
    counted("ip 127.0.0.5", "2.00");
    let r = send_from(&s, "127.0.0.5", "x@other.test", &message(7, "tea", "x")).await;
    assert!(r.starts_with("250"), "{r}");
    let junk = texts(imap_fetch_mailbox(imap, JOE, "pw", "Junk").await);
    let tea = junk.iter().find(|m| m.contains("Subject: tea")).unwrap();
    assert!(result(tea).contains("REP_IP (3.00)"), "{tea}");
    assert!(result(tea).contains("REP_ASN (3.00)"), "{tea}");
    // The Inbox got nothing else.
    assert_eq!(imap_fetch_all(imap, JOE, "pw").await.len(), 1);
}

/// Hash blocklists served by a real dnsmasq: an email address in the
/// text (SHA-1, hex, the MSBL EBL's form) and an attachment's content
/// (SHA-256, base32).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_blocklists() {
    use base64::Engine;
    use common::dns::{Dns, Rec};
    use sha1::Digest;
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let email = hex::encode(sha1::Sha1::digest(b"eve@evil.test"));
    let file = data_encoding::BASE32_NOPAD
        .encode(&sha2::Sha256::digest(b"MZ not a real program"))
        .to_ascii_lowercase();
    let dns = Dns::start(&[
        Rec::A(leak(format!("{email}.ebl.test")), "127.0.0.2"),
        Rec::A(leak(format!("{file}.files.test")), "127.0.0.2"),
    ]);
    let s = TestServer::start_with(&format!(
        "[imap]\nauth-without-tls = true\n[spam]\n[[spam.dnsbl]]\nzone = \"ebl.test\"\ncheck = \"email\"\nid = \"EBL_TEST\"\nscore = 2.0\n[[spam.dnsbl]]\nzone = \"files.test\"\ncheck = \"attachment\"\nhash = \"sha256\"\nencoding = \"base32\"\nscore = 6.0\n{}",
        dns.resolver_toml()
    ));
    s.account(JOE);
    let imap = s.addr("imap");
    let r = send(
        &s,
        &message(1, "contact", "Write to Eve@Evil.test for the money."),
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let inbox = texts(wait_for_mail(imap, JOE, 1).await);
    assert_eq!(header(&inbox[0], "X-Spam-Result"), [" EBL_TEST (2.00)"]);
    let attached = base64::engine::general_purpose::STANDARD.encode(b"MZ not a real program");
    let m = format!(
        "Date: {}\r\nMessage-ID: <2@remote.test>\r\nFrom: ann@remote.test\r\nTo: joe@example.org\r\nSubject: invoice\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{attached}\r\n--b--\r\n",
        rfc_date()
    );
    assert!(send(&s, &m).await.starts_with("250"));
    let junk = texts(imap_fetch_mailbox(imap, JOE, "pw", "Junk").await);
    assert_eq!(junk.len(), 1);
    assert_eq!(
        header(&junk[0], "X-Spam-Result"),
        [" HBL_FILES_TEST (6.00)"]
    );
    // Other addresses and contents are not listed.
    let r = send(&s, &message(3, "hello", "Write to ann@remote.test.")).await;
    assert!(r.starts_with("250"), "{r}");
    let inbox = texts(wait_for_mail(imap, JOE, 2).await);
    let hello = inbox.iter().find(|m| m.contains("Subject: hello")).unwrap();
    assert!(header(hello, "X-Spam-Result").is_empty(), "{hello}");
}

/// Phishing feeds served by a real HTTPS server (Python's http.server
/// behind its ssl module, with a certificate of a test CA that
/// `tls.extra-ca` trusts): OpenPhish's form (lines) and PhishTank's
/// (CSV, reached through a redirect); a listed URL and a listed host in a
/// message's links; the copy in the store serves after a restart with
/// the feeds' server gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phishing_feeds() {
    use std::process::{Command, Stdio};
    let web = tempfile::tempdir().unwrap();
    std::fs::write(
        web.path().join("feed.txt"),
        "# OpenPhish-like\nhttps://login.bank-secure.test/verify\nhttp://pay.example.test/account/\n",
    )
    .unwrap();
    // /phishtank redirects (301) to /phishtank/, whose index is the CSV.
    std::fs::create_dir(web.path().join("phishtank")).unwrap();
    std::fs::write(
        web.path().join("phishtank/index.html"),
        "phish_id,url,phish_detail_url,submission_time,verified,verification_time,online,target\n1,\"http://parcel.test/track?id=1,2\",http://detail,2026,yes,2026,yes,Other\n",
    )
    .unwrap();
    let certs = tempfile::tempdir().unwrap();
    let pki = common::pki::issue(certs.path(), &["localhost"]);
    let server = "import http.server, os, ssl, sys\nos.chdir(sys.argv[2])\nsrv = http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), http.server.SimpleHTTPRequestHandler)\nctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\nctx.load_cert_chain(sys.argv[3], sys.argv[4])\nsrv.socket = ctx.wrap_socket(srv.socket, server_side=True)\nsrv.serve_forever()\n";
    let port = common::port::free_port();
    let mut https = Command::new("python3")
        .args(["-c", server, &port.to_string()])
        .arg(web.path())
        .arg(&pki.chain)
        .arg(&pki.key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the https server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let config = format!(
        "[imap]\nauth-without-tls = true\n[tls]\nextra-ca = \"{}\"\n[[spam.feed]]\nname = \"openphish\"\nurl = \"https://localhost:{port}/feed.txt\"\n[[spam.feed]]\nname = \"phishtank\"\nurl = \"https://localhost:{port}/phishtank\"\nformat = \"csv\"\nscore = 7.0\n",
        pki.ca.display()
    );
    let s = TestServer::start_with(&config);
    s.account(JOE);
    let fetched = |s: &TestServer| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = s.cli_ok(&["spam", "rules"]);
            if out.contains("phishing feed openphish: 2 URLs on 2 hosts")
                && out.contains("phishing feed phishtank: 1 URLs on 1 hosts")
            {
                return;
            }
            assert!(Instant::now() < deadline, "feeds not loaded: {out}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    fetched(&s);
    let imap = s.addr("imap");
    // A listed URL (written with another case and a fragment): Junk.
    let m = message(
        1,
        "Your account",
        "Verify at HTTPS://Login.Bank-Secure.test/verify#now today.",
    );
    assert!(send(&s, &m).await.starts_with("250"));
    let junk = texts(imap_fetch_mailbox(imap, JOE, "pw", "Junk").await);
    assert_eq!(
        header(&junk[0], "X-Spam-Result"),
        [" PHISH_URL_OPENPHISH (6.00)"]
    );
    // PhishTank's CSV, the URL with a comma inside its quoted field.
    let html = "<p>Your parcel: <a href=\"http://parcel.test/track?id=1,2\">track it</a></p>";
    let m = message(2, "Parcel", html).replace(
        "Subject: Parcel\r\n",
        "Subject: Parcel\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n",
    );
    assert!(send(&s, &m).await.starts_with("250"));
    let junk = texts(imap_fetch_mailbox(imap, JOE, "pw", "Junk").await);
    let parcel = junk.iter().find(|m| m.contains("Subject: Parcel")).unwrap();
    assert!(
        header(parcel, "X-Spam-Result")[0].contains("PHISH_URL_PHISHTANK (7.00)"),
        "{parcel}"
    );
    // Another page on a listed host: the host's score only; the Inbox.
    let m = message(3, "Receipt", "See http://pay.example.test/receipt");
    assert!(send(&s, &m).await.starts_with("250"));
    let inbox = texts(wait_for_mail(imap, JOE, 1).await);
    assert_eq!(
        header(&inbox[0], "X-Spam-Result"),
        [" PHISH_HOST_OPENPHISH (2.00)"]
    );
    // The feeds' server goes; a restart serves the stored copy.
    let _ = https.kill();
    let _ = https.wait();
    let dir = s.kill_keep_dir();
    std::fs::write(dir.path().join("config.toml"), common::test_config(&config)).unwrap();
    let s = TestServer::start_in(dir);
    fetched(&s);
    let m = message(4, "Again", "https://login.bank-secure.test/verify");
    assert!(send(&s, &m).await.starts_with("250"));
    let junk = texts(imap_fetch_mailbox(s.addr("imap"), JOE, "pw", "Junk").await);
    assert_eq!(junk.len(), 3);
}

/// Pyzor against a real pyzord (pip's pyzor, on a private Redis): what
/// Pyzor's own client reported is found by Petrel's digest (a long text
/// message digested in pieces, an HTML one), below count-min it is not,
/// and what Petrel reports (spam-trap mail) Pyzor's client then finds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzor() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let (redis_port, port) = (common::port::free_port(), common::port::free_port());
    /// Stopped when the test ends, pass or fail.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let spawn = |cmd: &mut Command| {
        Killed(
            cmd.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let _redis = spawn(Command::new("redis-server").args([
        "--port",
        &redis_port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--dir",
        &dir.path().display().to_string(),
    ]));
    let home = dir.path().join("pyzor");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("servers"), format!("127.0.0.1:{port}\n")).unwrap();
    let _pyzord = spawn(Command::new("pyzord").args([
        "--homedir",
        &home.display().to_string(),
        "-e",
        "redis",
        "--dsn",
        &format!("127.0.0.1,{redis_port},,0"),
        "-a",
        "127.0.0.1",
        "-p",
        &port.to_string(),
    ]));
    // Pyzor's own client, reading a message on its standard input.
    let pyzor_cli = |op: &str, msg: &str| -> String {
        use std::io::Write;
        let mut c = Command::new("pyzor")
            .args(["--homedir", &home.display().to_string(), op])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(msg.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pyzor_cli("ping", "").contains("200") {
        assert!(Instant::now() < deadline, "pyzord did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    let long: String = (1..=12)
        .map(|i| format!("Line {i} of the cheap watches offer, call now!\r\n"))
        .collect();
    let text = message(1, "Watches", &long);
    let html = message(
        2,
        "Pills",
        "<html><body><p>Cheapest pills in town today</p><script>var tracker = 1;</script><p>Order &amp; save big money now</p></body></html>",
    )
    .replace(
        "Subject: Pills\r\n",
        "Subject: Pills\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n",
    );
    let twice = message(
        3,
        "Twice",
        "Only reported two times by others here\r\nand so not enough yet",
    );
    for _ in 0..3 {
        assert!(pyzor_cli("report", &text).contains("200"));
        assert!(pyzor_cli("report", &html).contains("200"));
    }
    for _ in 0..2 {
        assert!(pyzor_cli("report", &twice).contains("200"));
    }
    let s = TestServer::start_with(&format!(
        "[imap]\nauth-without-tls = true\n[spam]\ntraps = [\"trap@example.org\"]\n[spam.pyzor]\nservers = [\"127.0.0.1:{port}\"]\ncount-min = 3\n"
    ));
    s.account(JOE);
    for m in [&text, &html, &twice] {
        assert!(send(&s, m).await.starts_with("250"));
    }
    let inbox = texts(wait_for_mail(s.addr("imap"), JOE, 3).await);
    let result = |subject: &str| {
        let m = inbox
            .iter()
            .find(|m| m.contains(&format!("Subject: {subject}\r\n")))
            .unwrap();
        header(m, "X-Spam-Result").join("")
    };
    assert!(result("Watches").contains("PYZOR (2.00)"), "{inbox:#?}");
    assert!(result("Pills").contains("PYZOR (2.00)"), "{inbox:#?}");
    assert!(!result("Twice").contains("PYZOR"), "{inbox:#?}");
    // Spam-trap mail is reported: Pyzor's client sees it counted.
    let trapped = message(
        4,
        "Trapped",
        "A message nobody has seen before today\r\nsent to a trap",
    );
    let r = smtp_send(
        s.addr("smtp"),
        "ann@remote.test",
        &["trap@example.org"],
        &trapped,
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = pyzor_cli("check", &trapped);
        // "server (200, 'OK') COUNT WL-COUNT"
        if out.split_whitespace().nth(3) == Some("1") {
            break;
        }
        assert!(Instant::now() < deadline, "not reported: {out}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Spam traps: an address and a whole domain are accepted at RCPT (the
/// domain is not even hosted), nothing sent to them is delivered
/// anywhere, each message is learnt as spam, and the other recipients of
/// the same message get it in Junk with SPAM_TRAP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spam_traps() {
    let s = TestServer::start_with(
        "[imap]\nauth-without-tls = true\n[spam]\ntraps = [\"trap@example.org\", \"*@traps.test\"]\n",
    );
    s.account(JOE);
    let imap = s.addr("imap");
    for to in ["trap@example.org", "anyone@traps.test"] {
        let r = smtp_send(s.addr("smtp"), "ann@remote.test", &[to], &spam(1)).await;
        assert!(r.starts_with("250"), "{to}: {r}");
    }
    wait_learnt(&s, 2, 0).await;
    let r = smtp_send(
        s.addr("smtp"),
        "ann@remote.test",
        &["trap@example.org", JOE],
        &spam(2),
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    wait_learnt(&s, 3, 0).await;
    let junk = texts(imap_fetch_mailbox(imap, JOE, "pw", "Junk").await);
    assert_eq!(junk.len(), 1, "only joe's copy is stored");
    assert!(junk[0].contains("SPAM_TRAP (10.00)"), "{}", junk[0]);
    assert!(imap_fetch_all(imap, JOE, "pw").await.is_empty());
    // Nothing was queued for the trap domain either.
    let queue = s.cli_ok(&["queue", "list"]);
    assert!(!queue.contains("traps.test"), "{queue}");
    let metrics = http_get(s.addr("http"), "/metrics");
    assert!(
        metrics.contains("petrel_spam_trap_hits_total 3"),
        "{metrics}"
    );
}

/// An administrator's DATA-stage script runs after the filter and reads
/// its verdict (spamtest and `env.spam_score`), here refusing what the
/// filter would only have filed into Junk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_script_extends_the_filter() {
    let s = TestServer::start_with(
        "[imap]\nauth-without-tls = true\n[spam]\njunk-score = 4.0\nrules = { SUBJ_ALL_CAPS = 3.0 }\n[sieve.stages]\ndata = \"spam-policy\"\n",
    );
    s.account(JOE);
    let out = put_global(
        &s,
        "spam-policy",
        "require [\"spamtest\", \"relational\", \"comparator-i;ascii-numeric\", \"reject\", \"variables\", \"environment\"];\nif spamtest :value \"ge\" :comparator \"i;ascii-numeric\" \"7\" {\n  reject \"554 5.7.1 Refused by the site's spam policy (score ${env.spam_score})\";\n}\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert!(send(&s, &message(1, "Lunch", "noon"))
        .await
        .starts_with("250"));
    let r = send(&s, &message(2, "FREE MONEY FOR YOU", "x")).await;
    assert_eq!(
        r,
        "554 5.7.1 Refused by the site's spam policy (score 3.00)"
    );
    assert_eq!(wait_for_mail(s.addr("imap"), JOE, 1).await.len(), 1);
    assert!(imap_fetch_mailbox(s.addr("imap"), JOE, "pw", "Junk")
        .await
        .is_empty());
}
