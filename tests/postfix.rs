//! Petrel with a real Postfix (Debian's package, a private instance with its
//! own configuration and queue on a loopback port): Postfix relays into
//! Petrel, and Petrel uses Postfix as its smarthost. This Postfix does not
//! offer DSN, so Petrel's "relayed" notices are exercised too.

mod common;

use common::postfix::Postfix;
use common::*;

const OPEN: &str = "[smtp]\nauth-without-tls = true\n[imap]\nauth-without-tls = true\n";

#[tokio::test]
async fn postfix_relays_into_petrel_and_petrel_relays_through_postfix() {
    // B is the final destination; Postfix relays everything to B.
    let b = TestServer::start_with(OPEN);
    b.account("bob@remote.test");
    // This Postfix hides DSN from its clients.
    let pf = Postfix::start_with(&format!(
        "relayhost = [127.0.0.1]:{}\nsmtpd_discard_ehlo_keywords = dsn\nsmtputf8_enable = no\n",
        b.addr("smtp").port()
    ));

    // 1. Postfix → Petrel: a message handed to Postfix ends up in B.
    let r = smtp_send(
        pf.addr(),
        "carol@postfix.test",
        &["bob@remote.test"],
        "From: carol@postfix.test\r\nSubject: from postfix\r\n\r\nvia postfix\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let got = wait_for_mail(b.addr("imap"), "bob@remote.test", 1).await;
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.contains("via postfix"), "{text}");
    assert!(text.contains("Received: from postfix.test"), "{text}");

    // 2. Petrel → Postfix: A uses Postfix as its smarthost.
    let a = TestServer::start_with(&format!(
        "{OPEN}[queue]\nrelay = \"{}\"\nretry = [1]\n",
        pf.addr()
    ));
    a.account("joe@example.org");
    use base64::Engine;
    let mut c = LineClient::connect(a.addr("submission")).await;
    c.smtp_reply().await;
    c.send("EHLO client.test\r\n").await;
    c.smtp_reply().await;
    let cred = base64::engine::general_purpose::STANDARD.encode("\0joe@example.org\0pw");
    c.send(&format!(
        "AUTH PLAIN {cred}\r\nMAIL FROM:<joe@example.org>\r\nRCPT TO:<bob@remote.test> NOTIFY=SUCCESS\r\nDATA\r\n"
    ))
    .await;
    for _ in 0..3 {
        assert!(c.smtp_reply().await.starts_with('2'));
    }
    assert!(c.smtp_reply().await.starts_with("354"));
    c.send("From: joe@example.org\r\nSubject: through postfix\r\n\r\nfrom petrel\r\n.\r\n")
        .await;
    assert!(c.smtp_reply().await.starts_with("250"));
    let got = wait_for_mail(b.addr("imap"), "bob@remote.test", 2).await;
    let text = got
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .find(|m| m.contains("from petrel"))
        .expect("the relayed message");
    // A's submission Received line, then Postfix's on top (then B's).
    let pf_at = text
        .find("by postfix.test (Postfix)")
        .unwrap_or_else(|| panic!("{}", pf.log()));
    let petrel_at = text.find("with ESMTPA").unwrap();
    assert!(pf_at < petrel_at, "{text}");
    assert!(pf.log().contains("status=sent"), "{}", pf.log());
    // This Postfix hides DSN, so A reports "relayed" itself (RFC 3461 §5.2.2).
    let mine = wait_for_mail(a.addr("imap"), "joe@example.org", 1).await;
    let dsn = String::from_utf8_lossy(&mine[0]);
    assert!(dsn.contains("Action: relayed"), "{dsn}");
    assert!(dsn.contains("Remote-MTA: dns; 127.0.0.1"), "{dsn}");

    // 3. SMTPUTF8 mail is not downgraded for a hop without SMTPUTF8
    //    (RFC 6531 §3.2): it bounces with 5.6.7.
    let mut c = LineClient::connect(a.addr("submission")).await;
    c.smtp_reply().await;
    c.send("EHLO client.test\r\n").await;
    c.smtp_reply().await;
    c.send(&format!("AUTH PLAIN {cred}\r\nMAIL FROM:<joe@example.org> SMTPUTF8\r\nRCPT TO:<jörg@remote.test>\r\nDATA\r\n"))
        .await;
    for _ in 0..3 {
        let r = c.smtp_reply().await;
        assert!(r.starts_with('2'), "{r}");
    }
    assert!(c.smtp_reply().await.starts_with("354"));
    c.send("From: joe@example.org\r\nSubject: grüße\r\n\r\nx\r\n.\r\n")
        .await;
    assert!(c.smtp_reply().await.starts_with("250"));
    let mine = wait_for_mail(a.addr("imap"), "joe@example.org", 2).await;
    let bounce = mine
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .find(|m| m.contains("Undelivered Mail"))
        .expect("a bounce");
    assert!(bounce.contains("Status: 5.6.7"), "{bounce}");
}

/// RFC 8689 §4.2.1: a REQUIRETLS message goes only over checked TLS to a
/// server that offers REQUIRETLS. This Postfix has a certificate Petrel
/// trusts but no REQUIRETLS (Postfix does not implement it), so the
/// message bounces with 5.7.30 and is never handed over.
#[tokio::test]
async fn requiretls_mail_bounces_at_a_hop_without_requiretls() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let pki = common::pki::issue(tmp.path(), &["127.0.0.1"]);
    std::fs::set_permissions(&pki.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let b = TestServer::start_with(OPEN);
    b.account("bob@remote.test");
    let pf = Postfix::start_with(&format!(
        "relayhost = [127.0.0.1]:{}\nsmtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\nsmtpd_tls_security_level = may\nsmtpd_tls_loglevel = 1\n",
        b.addr("smtp").port(),
        pki.chain.display(),
        pki.key.display()
    ));
    let a = TestServer::start_with(&format!(
        "{OPEN}[tls]\nextra-ca = \"{}\"\n[queue]\nrelay = \"{}\"\nretry = [1]\n",
        pki.ca.display(),
        pf.addr()
    ));
    a.account("joe@example.org");
    use base64::Engine;
    let mut c = LineClient::connect_tls(&a, a.addr("submissions")).await;
    c.smtp_reply().await;
    c.send("EHLO client.test\r\n").await;
    c.smtp_reply().await;
    let cred = base64::engine::general_purpose::STANDARD.encode("\0joe@example.org\0pw");
    c.send(&format!(
        "AUTH PLAIN {cred}\r\nMAIL FROM:<joe@example.org> REQUIRETLS\r\nRCPT TO:<bob@remote.test>\r\nDATA\r\n"
    ))
    .await;
    for _ in 0..3 {
        let r = c.smtp_reply().await;
        assert!(r.starts_with('2'), "{r}");
    }
    assert!(c.smtp_reply().await.starts_with("354"));
    c.send("From: joe@example.org\r\nSubject: needs tls\r\n\r\nsecret\r\n.\r\n")
        .await;
    assert!(c.smtp_reply().await.starts_with("250"));

    let mine = wait_for_mail(a.addr("imap"), "joe@example.org", 1).await;
    let dsn = String::from_utf8_lossy(&mine[0]);
    assert!(dsn.contains("Action: failed"), "{dsn}");
    assert!(dsn.contains("5.7.30"), "{dsn}");
    // Checked TLS was made (so the refusal is about REQUIRETLS, not TLS),
    // and Postfix never took the message.
    let log = pf.log();
    assert!(log.contains("TLS connection established"), "{log}");
    assert!(!log.contains("status=sent"), "{log}");
    assert!(imap_fetch_all(b.addr("imap"), "bob@remote.test", "pw")
        .await
        .is_empty());
}
