//! The outbound queue against real peers: a second Petrel as smarthost or
//! MX host, dnsmasq as the DNS server, dkimpy as an independent DKIM
//! verifier. Bounces (RFC 3464), null MX (RFC 7505), retries, the queue
//! CLI, and SIGKILL with mail in the queue.

mod common;

use std::time::{Duration, Instant};

use common::dns::{Dns, Rec};
use common::*;

const OPEN: &str = "[smtp]\nauth-without-tls = true\n[imap]\nauth-without-tls = true\n";

fn queue_ids(s: &TestServer) -> Vec<u64> {
    s.cli_ok(&["queue", "list"])
        .lines()
        .filter_map(|l| l.split('\t').next()?.parse().ok())
        .collect()
}

async fn wait_queue_empty(s: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !queue_ids(s).is_empty() {
        assert!(
            Instant::now() < deadline,
            "queue did not drain: {}",
            s.cli_ok(&["queue", "list"])
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn smarthost_delivery_and_bounce_for_unknown_user() {
    let b = TestServer::start_with(OPEN);
    b.account("bob@remote.test");
    let a = TestServer::start_with(&format!(
        "{OPEN}[queue]\nrelay = \"{}\"\nretry = [1]\n",
        b.addr("smtp")
    ));
    a.account("joe@example.org");
    let r = submit(
        &a,
        "joe@example.org",
        &["bob@remote.test", "nobody@remote.test", "joe@example.org"],
        "From: joe@example.org\r\nSubject: over the relay\r\n\r\nhello bob\r\n",
    )
    .await;
    assert!(r.starts_with("250 2.0.0 Message queued as"), "{r}");
    let got = wait_for_mail(b.addr("imap"), "bob@remote.test", 1).await;
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.contains("hello bob"), "{text}");
    assert!(text.contains("Return-Path: <joe@example.org>"), "{text}");
    // joe gets his own copy (a local recipient in the same queue entry)
    // and a bounce for nobody@remote.test.
    let mine = wait_for_mail(a.addr("imap"), "joe@example.org", 2).await;
    let bounce = mine
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .find(|m| m.contains("Undelivered Mail Returned to Sender"))
        .expect("a bounce");
    assert!(bounce.contains("Return-Path: <>"), "{bounce}");
    assert!(
        bounce.contains("Final-Recipient: rfc822; nobody@remote.test"),
        "{bounce}"
    );
    assert!(bounce.contains("Status: 5.1.1"), "{bounce}");
    assert!(bounce.contains("Action: failed"), "{bounce}");
    assert!(
        !bounce.contains("bob@remote.test\r\nAction"),
        "bob was delivered"
    );
    assert!(
        bounce.contains("Subject: over the relay"),
        "headers returned"
    );
    wait_queue_empty(&a).await;
}

#[tokio::test]
async fn mx_routing_null_mx_and_missing_domains_through_real_dns() {
    let b = TestServer::start_with(OPEN);
    b.account("bob@remote.test");
    let dns = Dns::start(&[
        Rec::Mx("remote.test", "mx.remote.test", 10),
        Rec::A("mx.remote.test", "127.0.0.1"),
        Rec::Mx("nullmx.test", ".", 0),
    ]);
    let a = TestServer::start_with(&format!(
        "{OPEN}{}[queue]\nmx-port = {}\nretry = [1]\n",
        dns.resolver_toml(),
        b.addr("smtp").port()
    ));
    a.account("joe@example.org");
    let r = submit(
        &a,
        "joe@example.org",
        &["bob@remote.test", "x@nullmx.test", "y@nowhere.test"],
        "Subject: via MX\r\n\r\nthrough DNS\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let got = wait_for_mail(b.addr("imap"), "bob@remote.test", 1).await;
    assert!(String::from_utf8_lossy(&got[0]).contains("through DNS"));
    let bounces = wait_for_mail(a.addr("imap"), "joe@example.org", 1).await;
    let text = String::from_utf8_lossy(&bounces[0]);
    // RFC 7505 §3: null MX is a permanent failure with 5.1.10.
    assert!(
        text.contains("Final-Recipient: rfc822; x@nullmx.test"),
        "{text}"
    );
    assert!(text.contains("Status: 5.1.10"), "{text}");
    // NXDOMAIN: no MX and no address — permanent.
    assert!(
        text.contains("Final-Recipient: rfc822; y@nowhere.test"),
        "{text}"
    );
    assert!(text.contains("Status: 5.1.2"), "{text}");
    wait_queue_empty(&a).await;
}

#[tokio::test]
async fn temporary_failures_stay_queued_until_cancelled() {
    // Nothing listens on the relay port: every attempt fails temporarily.
    let port = common::port::free_port();
    let a = TestServer::start_with(&format!(
        "{OPEN}[queue]\nrelay = \"127.0.0.1:{port}\"\nretry = [1]\nconnect-timeout = 2\n"
    ));
    a.account("joe@example.org");
    let r = submit(
        &a,
        "joe@example.org",
        &["bob@remote.test"],
        "Subject: stuck\r\n\r\nx\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let ids = queue_ids(&a);
    assert_eq!(ids.len(), 1);
    let id = ids[0].to_string();
    // Attempts happen and the error is recorded.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let show = a.cli_ok(&["queue", "show", &id]);
        if show.contains("pending\t451 4.4.1") {
            assert!(!show.contains("attempts 0"), "{show}");
            break;
        }
        assert!(Instant::now() < deadline, "{show}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.cli_ok(&["queue", "retry", &id]);
    let out = a.cli_ok(&["queue", "cancel", &id]);
    assert!(out.contains("removed"), "{out}");
    assert!(queue_ids(&a).is_empty());
    assert!(!a.cli(&["queue", "show", &id]).status.success());
    // Cancelling sends no bounce.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(imap_fetch_all(a.addr("imap"), "joe@example.org", "pw")
        .await
        .is_empty());
}

#[tokio::test]
async fn queued_mail_survives_sigkill_and_is_delivered_after_restart() {
    let port = common::port::free_port();
    let cfg =
        format!("{OPEN}[queue]\nrelay = \"127.0.0.1:{port}\"\nretry = [1]\nconnect-timeout = 2\n");
    let a = TestServer::start_with(&cfg);
    a.account("joe@example.org");
    for i in 0..5 {
        let r = submit(
            &a,
            "joe@example.org",
            &["bob@remote.test"],
            &format!("Subject: m{i}\r\n\r\nbody {i}\r\n"),
        )
        .await;
        assert!(r.starts_with("250"), "{r}");
    }
    let dir = a.kill_keep_dir();
    // The relay host comes up on the port the queue points at.
    let bdir = tempfile::tempdir().unwrap();
    std::fs::write(
        bdir.path().join("config.toml"),
        test_config(OPEN).replace(
            "smtp = [\"127.0.0.1:0\"]",
            &format!("smtp = [\"127.0.0.1:{port}\"]"),
        ),
    )
    .unwrap();
    let b = TestServer::start_in(bdir);
    b.account("bob@remote.test");
    let a = TestServer::start_in(dir);
    let got = wait_for_mail(b.addr("imap"), "bob@remote.test", 5).await;
    assert_eq!(got.len(), 5, "every acknowledged message, once");
    wait_queue_empty(&a).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        imap_fetch_all(b.addr("imap"), "bob@remote.test", "pw")
            .await
            .len(),
        5
    );
}

#[tokio::test]
async fn dkim_signatures_verify_with_dkimpy() {
    let b = TestServer::start_with(OPEN);
    b.account("bob@remote.test");
    let a = TestServer::start_with(&format!(
        "{OPEN}[queue]\nrelay = \"{}\"\nretry = [1]\n",
        b.addr("smtp")
    ));
    a.account("joe@example.org");
    let (out, txt) = a.dkim_create("example.org", "s1");
    assert!(out.contains("s1._domainkey.example.org."), "{out}");
    assert!(
        out.contains("v=spf1") && out.contains("_dmarc.example.org."),
        "{out}"
    );
    // §3.5: selectors are ASCII (A-labels); others are refused.
    assert!(!a
        .cli(&[
            "dkim",
            "create",
            "example.org",
            "--selector",
            "sélecteur",
            "--replace"
        ])
        .status
        .success());
    // A second create without --replace is refused.
    assert!(!a.cli(&["dkim", "create", "example.org"]).status.success());
    let dns = Dns::start(&[Rec::Txt("s1._domainkey.example.org".into(), txt.clone())]);
    let r = submit(
        &a,
        "joe@example.org",
        &["bob@remote.test"],
        "DKIM-Signature: v=1; a=rsa-sha256; d=old.test; s=x; h=from; bh=AAAA; b=AAAA\r\nFrom: Joe <joe@example.org>\r\nTo: bob@remote.test\r\nReferences: <a@x.test>\r\nReferences: <b@x.test>\r\nSubject: signed\r\n\r\nA body.\r\n.leading dot\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let got = wait_for_mail(b.addr("imap"), "bob@remote.test", 1).await;
    let msg = &got[0];
    let text = String::from_utf8_lossy(msg);
    assert!(
        text.contains("DKIM-Signature:") && text.contains("d=example.org"),
        "{text}"
    );
    // RFC 6376 §4.2, §5.6: an existing signature stays, ours goes above it.
    let ours = text.find("d=example.org").unwrap();
    let old = text
        .find("d=old.test")
        .expect("the earlier signature is kept");
    assert!(ours < old, "{text}");
    // §3.5: t= and x= (dkim.expire-after, a week by default); §5.4: From
    // signed, the signature itself not in h=.
    let first = text.find("DKIM-Signature:").unwrap() + "DKIM-Signature:".len();
    let end = first + text[first..].find("DKIM-Signature:").unwrap();
    let sig: String = text[first..end].split_whitespace().collect();
    let tag = |name: &str| {
        sig.split(';')
            .find_map(|t| t.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= in {sig}"))
            .to_string()
    };
    let (t, x): (u64, u64) = (tag("t").parse().unwrap(), tag("x").parse().unwrap());
    assert_eq!(x - t, 604_800, "{sig}");
    let h = tag("h").to_ascii_lowercase();
    assert!(
        h.split(':').any(|f| f == "from") && !h.contains("dkim-signature"),
        "{h}"
    );
    // §5.4: nothing that relays add or change (Received, Return-Path).
    assert!(!h.contains("received") && !h.contains("return-path"), "{h}");
    // §5.4.2: both References fields are signed.
    assert_eq!(h.matches("references").count(), 2, "{h}");
    assert!(txt.ends_with("t=s"), "{txt}");
    assert!(
        common::dkimpy::verify(&dns, msg),
        "dkimpy accepts the signature"
    );
    let tampered = text.replace("A body.", "A b0dy.");
    assert!(
        !common::dkimpy::verify(&dns, tampered.as_bytes()),
        "and rejects a changed body"
    );
}

fn with_smtp_port(extra: &str, port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        test_config(extra).replace(
            "smtp = [\"127.0.0.1:0\"]",
            &format!("smtp = [\"127.0.0.1:{port}\"]"),
        ),
    )
    .unwrap();
    dir
}

fn mails_with(msgs: &[Vec<u8>], needle: &str) -> Vec<String> {
    msgs.iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .filter(|m| m.contains(needle))
        .collect()
}

#[tokio::test]
async fn success_notice_comes_from_the_final_server() {
    let (pa, pb) = (common::port::free_port(), common::port::free_port());
    let a = TestServer::start_in(with_smtp_port(
        &format!("{OPEN}[queue]\nrelay = \"127.0.0.1:{pb}\"\nretry = [1]\n"),
        pa,
    ));
    a.account("joe@example.org");
    let b = TestServer::start_in(with_smtp_port(
        &format!(
            "{OPEN}[queue]\nretry = [1]\nroutes = {{ \"example.org\" = \"127.0.0.1:{pa}\" }}\n"
        ),
        pb,
    ));
    b.account("bob@remote.test");
    let r = submit(
        &a,
        "joe@example.org",
        &["bob@remote.test NOTIFY=SUCCESS ORCPT=rfc822;bob@remote.test"],
        "Subject: tell me\r\n\r\nx\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    wait_for_mail(b.addr("imap"), "bob@remote.test", 1).await;
    let got = wait_for_mail(a.addr("imap"), "joe@example.org", 1).await;
    let dsn = &mails_with(&got, "Delivery Status Notification (Success)")[0];
    assert!(dsn.contains("Action: delivered"), "{dsn}");
    assert!(
        dsn.contains("Original-Recipient: rfc822;bob@remote.test"),
        "{dsn}"
    );
    // A relayed to a DSN-capable server, so it sends no notice of its own.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        imap_fetch_all(a.addr("imap"), "joe@example.org", "pw")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn delay_notice_then_expiry_bounce() {
    let closed = common::port::free_port();
    let a = TestServer::start_with(&format!(
        "{OPEN}[queue]\nrelay = \"127.0.0.1:{closed}\"\nretry = [1]\ndelay-notify = 1\nexpire = 5\nconnect-timeout = 1\n"
    ));
    a.account("joe@example.org");
    let r = submit(
        &a,
        "joe@example.org",
        &["x@remote.test", "y@remote.test NOTIFY=NEVER"],
        "Subject: slow\r\n\r\nx\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let got = wait_for_mail(a.addr("imap"), "joe@example.org", 2).await;
    let delay = &mails_with(&got, "Delivery Status Notification (Delay)")[0];
    assert!(
        delay.contains("Action: delayed") && delay.contains("Will-Retry-Until:"),
        "{delay}"
    );
    let bounce = &mails_with(&got, "Undelivered Mail Returned to Sender")[0];
    assert!(
        bounce.contains("Final-Recipient: rfc822; x@remote.test"),
        "{bounce}"
    );
    assert!(bounce.contains("Status: 5.4.7"), "{bounce}");
    for m in [delay, bounce] {
        assert!(!m.contains("y@remote.test"), "NOTIFY=NEVER: {m}");
    }
    wait_queue_empty(&a).await;
}

#[tokio::test]
async fn undeliverable_notices_are_never_bounced() {
    // B sends a success notice to a sender that does not exist at A; A
    // refuses it, and B drops it: no notice about a notice (RFC 3461 §6.2).
    let pa = common::port::free_port();
    let a = TestServer::start_in(with_smtp_port(OPEN, pa));
    a.account("joe@example.org");
    let b = TestServer::start_with(&format!(
        "{OPEN}[queue]\nretry = [1]\nroutes = {{ \"example.org\" = \"127.0.0.1:{pa}\" }}\n"
    ));
    b.account("bob@remote.test");
    let mut c = LineClient::connect(b.addr("smtp")).await;
    c.smtp_reply().await;
    c.send("EHLO x.test\r\nMAIL FROM:<ghost@example.org>\r\nRCPT TO:<bob@remote.test> NOTIFY=SUCCESS\r\nDATA\r\n").await;
    for _ in 0..3 {
        assert!(c.smtp_reply().await.starts_with("250"));
    }
    assert!(c.smtp_reply().await.starts_with("354"));
    c.send("Subject: from a ghost\r\n\r\nboo\r\n.\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250"));
    wait_for_mail(b.addr("imap"), "bob@remote.test", 1).await;
    // The notice was queued, tried, refused by A and dropped.
    tokio::time::sleep(Duration::from_secs(1)).await;
    wait_queue_empty(&b).await;
    assert_eq!(
        imap_fetch_all(b.addr("imap"), "bob@remote.test", "pw")
            .await
            .len(),
        1
    );
    assert!(imap_fetch_all(a.addr("imap"), "joe@example.org", "pw")
        .await
        .is_empty());
}

#[tokio::test]
async fn one_session_carries_consecutive_messages() {
    let b = TestServer::start_with(OPEN);
    b.account("bob@remote.test");
    let a = TestServer::start_with(&format!(
        "{OPEN}[queue]\nrelay = \"{}\"\nretry = [1]\n",
        b.addr("smtp")
    ));
    a.account("joe@example.org");
    for i in 0..3 {
        let body = format!("Subject: n{i}\r\n\r\nx\r\n");
        assert!(submit(&a, "joe@example.org", &["bob@remote.test"], &body)
            .await
            .starts_with("250"));
        // One at a time, so each finds the previous session idle.
        wait_for_mail(b.addr("imap"), "bob@remote.test", i + 1).await;
    }
    let got = imap_fetch_all(b.addr("imap"), "bob@remote.test", "pw").await;
    // B names its SMTP session in its Received field: the same for all.
    let ids: std::collections::HashSet<String> = got
        .iter()
        .map(|m| {
            let t = String::from_utf8_lossy(m).into_owned();
            let at = t
                .find("(Petrel) with ESMTPS id ")
                .expect("B's Received over TLS");
            t[at..].split_whitespace().nth(4).unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
}

/// RFC 8314 §3.3: the smarthost login (`queue.relay-user`) goes only over
/// TLS whose certificate checks out (system roots plus `tls.extra-ca`):
/// with the CA trusted the mail goes; without it, or to a relay without
/// STARTTLS, it stays queued and no AUTH is ever sent in the clear.
#[tokio::test]
async fn relay_logins_need_checked_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = common::pki::issue(tmp.path(), &["127.0.0.1"]);
    let b = TestServer::start_with_cert(OPEN, &pki);
    b.account("joe@a.test");
    b.account("bob@remote.test");
    let relay = |target: String, trust: bool| {
        let ca = if trust {
            format!("[tls]\nextra-ca = \"{}\"\n", pki.ca.display())
        } else {
            String::new()
        };
        let a = TestServer::start_with(&format!(
            "{OPEN}{ca}[queue]\nrelay = \"{target}\"\nrelay-user = \"joe@a.test\"\nrelay-secret = \"pw\"\nretry = [1]\n"
        ));
        a.account("joe@a.test");
        a
    };
    let body = "From: joe@a.test\r\nSubject: relayed\r\n\r\nx";
    let sub = format!("127.0.0.1:{}", b.addr("submission").port());

    let a = relay(sub.clone(), true);
    let r = submit(&a, "joe@a.test", &["bob@remote.test"], body).await;
    assert!(r.starts_with("250"), "{r}");
    let got = wait_for_mail(b.addr("imap"), "bob@remote.test", 1).await;
    assert!(String::from_utf8_lossy(&got[0]).contains("with ESMTPSA"));

    let untrusting = relay(sub, false);
    submit(&untrusting, "joe@a.test", &["bob@remote.test"], body).await;
    let (plain_port, seen) = smtp_without_starttls().await;
    let plain = relay(format!("127.0.0.1:{plain_port}"), true);
    submit(&plain, "joe@a.test", &["bob@remote.test"], body).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (e1, e2) = (untrusting.queued_errors(), plain.queued_errors());
        if e1.contains("certificate") && e2.contains("does not offer STARTTLS") {
            break;
        }
        assert!(Instant::now() < deadline, "{e1}\n---\n{e2}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        seen.lock().unwrap().iter().all(|c| !c.starts_with("AUTH")),
        "{:?}",
        seen.lock().unwrap()
    );
    assert_eq!(
        imap_fetch_all(b.addr("imap"), "bob@remote.test", "pw")
            .await
            .len(),
        1
    );
}
