//! Message submission (RFC 6409) on 587/465 with AUTH (RFC 4954: PLAIN,
//! LOGIN, SCRAM-SHA-256), LMTP (RFC 2033), BDAT (RFC 3030), SMTPUTF8 and
//! DSN parameters — exact exchanges against a running server.

mod common;

use base64::Engine;
use common::*;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .unwrap()
}

const OPEN: &str = "[smtp]\nauth-without-tls = true\n[imap]\nauth-without-tls = true\n";

async fn ehlo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    c: &mut LineClient<S>,
) -> Vec<String> {
    c.send("EHLO client.test\r\n").await;
    let mut lines = Vec::new();
    loop {
        let l = c.line().await;
        let last = l.as_bytes().get(3) == Some(&b' ');
        lines.push(l);
        if last {
            return lines;
        }
    }
}

#[tokio::test]
async fn submission_needs_tls_then_auth() {
    let s = TestServer::start();
    s.account("joe@example.org");
    let mut c = LineClient::connect(s.addr("submission")).await;
    assert!(c.smtp_reply().await.starts_with("220"));
    let caps = ehlo(&mut c).await.join("\n");
    assert!(caps.contains("STARTTLS"), "{caps}");
    assert!(!caps.contains("AUTH"), "no AUTH before TLS: {caps}");
    c.send("AUTH PLAIN AGpvZUBleGFtcGxlLm9yZwBwdw==\r\n").await;
    assert!(c.smtp_reply().await.starts_with("538 5.7.11"));
    c.send("MAIL FROM:<joe@example.org>\r\n").await;
    assert!(c.smtp_reply().await.starts_with("530 5.7.0"));
    c.send("STARTTLS\r\n").await;
    assert!(c.smtp_reply().await.starts_with("220"));
    let mut c = c.upgrade(&s).await;
    let caps = ehlo(&mut c).await.join("\n");
    assert!(caps.contains("AUTH SCRAM-SHA-256 PLAIN LOGIN"), "{caps}");
    assert!(
        caps.contains("REQUIRETLS") && !caps.contains("STARTTLS"),
        "{caps}"
    );
    c.send(&format!(
        "AUTH PLAIN {}\r\n",
        b64(b"\0joe@example.org\0wrong")
    ))
    .await;
    assert!(c.smtp_reply().await.starts_with("535 5.7.8"));
    c.send("AUTH CRAM-MD5\r\n").await;
    assert!(c.smtp_reply().await.starts_with("504 5.5.4"));
    c.send(&format!("AUTH PLAIN {}\r\n", b64(b"\0joe@example.org\0pw")))
        .await;
    assert!(c.smtp_reply().await.starts_with("235 2.7.0"));
    c.send("AUTH PLAIN\r\n").await;
    assert!(c.smtp_reply().await.starts_with("503 5.5.1"), "only once");
    c.send("MAIL FROM:<joe@example.org>\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250"));
}

#[tokio::test]
async fn implicit_tls_login_sender_rules_and_added_headers() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    s.account("ann@example.org");
    s.cli_ok(&[
        "account",
        "add-alias",
        "joe@example.org",
        "sales@example.org",
    ]);
    let mut c = LineClient::connect_tls(&s, s.addr("submissions")).await;
    assert!(c.smtp_reply().await.starts_with("220"));
    ehlo(&mut c).await;
    // SASL LOGIN: two base64 prompts.
    c.send("AUTH LOGIN\r\n").await;
    assert_eq!(c.smtp_reply().await, format!("334 {}", b64(b"Username:")));
    c.send(&format!("{}\r\n", b64(b"joe@example.org"))).await;
    assert_eq!(c.smtp_reply().await, format!("334 {}", b64(b"Password:")));
    c.send(&format!("{}\r\n", b64(b"pw"))).await;
    assert!(c.smtp_reply().await.starts_with("235"));
    // RFC 6409 §6.1: only the user's own addresses as sender.
    c.send("MAIL FROM:<ann@example.org>\r\n").await;
    assert!(c.smtp_reply().await.starts_with("550 5.7.1"));
    // RFC 6409 §3.2: the null path is no reason to refuse.
    c.send("MAIL FROM:<>\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250"));
    c.send("RSET\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250"));
    c.send("MAIL FROM:<sales@example.org>\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250"));
    c.send("RCPT TO:<ann@example.org>\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250"));
    c.send("DATA\r\n").await;
    assert!(c.smtp_reply().await.starts_with("354"));
    c.send("From: sales@example.org\r\nSubject: no date\r\n\r\nhello\r\n.\r\n")
        .await;
    let r = c.smtp_reply().await;
    assert!(r.starts_with("250"), "{r}");
    let msgs = wait_for_mail(s.addr("imap"), "ann@example.org", 1).await;
    let text = String::from_utf8_lossy(&msgs[0]);
    assert!(text.contains("with ESMTPSA"), "{text}");
    assert!(text.contains("\r\nDate: "), "{text}");
    assert!(text.contains("\r\nMessage-ID: <"), "{text}");
    // RFC 5321 §4.4: delivered here, so the envelope sender is recorded.
    assert!(
        text.starts_with("Return-Path: <sales@example.org>\r\n"),
        "{text}"
    );
    assert!(text.ends_with("hello\r\n"), "{text}");
    // RFC 6409 §8.1 (smtp.check-from-header): the From: header must be
    // the user's too, every address of it.
    for from in ["Ann <ann@example.org>", "joe@example.org, ann@example.org"] {
        c.send("MAIL FROM:<joe@example.org>\r\nRCPT TO:<ann@example.org>\r\nDATA\r\n")
            .await;
        for _ in 0..3 {
            c.smtp_reply().await;
        }
        c.send(&format!(
            "From: {from}\r\nSubject: forged\r\n\r\nx\r\n.\r\n"
        ))
        .await;
        let r = c.smtp_reply().await;
        assert!(
            r.starts_with("550 5.7.1") && r.contains("<ann@example.org> is not yours"),
            "{from}: {r}"
        );
    }
    // Off, the header is not checked.
    let lax = TestServer::start_with("[smtp]\ncheck-from-header = false\n");
    lax.account("joe@example.org");
    let mut c = LineClient::connect_tls(&lax, lax.addr("submissions")).await;
    c.smtp_reply().await;
    ehlo(&mut c).await;
    c.send(&format!("AUTH PLAIN {}\r\n", b64(b"\0joe@example.org\0pw")))
        .await;
    assert!(c.smtp_reply().await.starts_with("235"));
    c.send("MAIL FROM:<joe@example.org>\r\nRCPT TO:<joe@example.org>\r\nDATA\r\n")
        .await;
    for _ in 0..3 {
        c.smtp_reply().await;
    }
    c.send("From: boss@example.com\r\nSubject: on behalf\r\n\r\nx\r\n.\r\n")
        .await;
    let r = c.smtp_reply().await;
    assert!(r.starts_with("250"), "{r}");
}

/// RFC 6409 §4.2, §5.1, §8.3: envelope and header domains fully
/// qualified (a single label refused, not expanded), header addresses that
/// are addresses, an invalid Message-ID replaced; errors with enhanced
/// codes (§7) and a line in the log (§5.2).
#[tokio::test]
async fn rfc6409_qualified_domains_and_message_ids() {
    let s = TestServer::start_logging("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    s.account("ann@example.org");
    let mut c = LineClient::connect_tls(&s, s.addr("submissions")).await;
    c.smtp_reply().await;
    let caps = ehlo(&mut c).await;
    // §7: AUTH must be offered, PIPELINING and ENHANCEDSTATUSCODES
    // should; ETRN and ATRN must not.
    for cap in ["AUTH", "PIPELINING", "ENHANCEDSTATUSCODES"] {
        assert!(caps.iter().any(|l| l.contains(cap)), "{cap}: {caps:?}");
    }
    assert!(
        !caps
            .iter()
            .any(|l| l.contains("ETRN") || l.contains("ATRN")),
        "{caps:?}"
    );
    c.send(&format!("AUTH PLAIN {}\r\n", b64(b"\0joe@example.org\0pw")))
        .await;
    assert!(c.smtp_reply().await.starts_with("235"));
    c.send("ETRN example.org\r\n").await;
    let r = c.smtp_reply().await;
    assert!(r.starts_with("500") || r.starts_with("502"), "ETRN: {r}");
    c.send("MAIL FROM:<joe@example.org>\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250"));
    for (rcpt, code) in [("bob@sales", "5.1.2"), ("bob", "5.1.3")] {
        c.send(&format!("RCPT TO:<{rcpt}>\r\n")).await;
        let r = c.smtp_reply().await;
        assert!(r.starts_with('5') && r.contains(code), "{rcpt}: {r}");
    }
    // Address fields of the header.
    for (field, value) in [
        ("To", "bob@sales"),
        ("Cc", "just a name"),
        ("Reply-To", "Bob <bob@localhost>"),
    ] {
        c.send("RSET\r\nMAIL FROM:<joe@example.org>\r\nRCPT TO:<ann@example.org>\r\nDATA\r\n")
            .await;
        for _ in 0..4 {
            c.smtp_reply().await;
        }
        c.send(&format!(
            "From: joe@example.org\r\n{field}: {value}\r\nSubject: x\r\n\r\nx\r\n.\r\n"
        ))
        .await;
        let r = c.smtp_reply().await;
        assert!(
            r.starts_with("554 5.6.0") && r.contains(&format!("{field}: header")),
            "{field}: {value}: {r}"
        );
    }
    // A Message-ID that is no msg-id is replaced.
    c.send("RSET\r\nMAIL FROM:<joe@example.org>\r\nRCPT TO:<ann@example.org>\r\nDATA\r\n")
        .await;
    for _ in 0..4 {
        c.smtp_reply().await;
    }
    c.send("From: joe@example.org\r\nTo: undisclosed-recipients:;\r\nMessage-ID: not-an-id\r\nSubject: ids\r\n\r\nx\r\n.\r\n")
        .await;
    let r = c.smtp_reply().await;
    assert!(r.starts_with("250"), "{r}");
    let msgs = wait_for_mail(s.addr("imap"), "ann@example.org", 1).await;
    let text = String::from_utf8_lossy(&msgs[0]);
    assert!(!text.contains("not-an-id"), "{text}");
    assert!(
        text.contains("\r\nMessage-ID: <") && text.contains("@mx.test>"),
        "{text}"
    );
    // §5.2: refusals are logged.
    assert!(s
        .log_until("smtp transaction rejected")
        .contains("reply=\"554 5.6.0"));
}

/// A client-side SCRAM-SHA-256 (RFC 5802 §3), written from the RFC for
/// this test; it also checks the server's signature.
async fn scram_login(c: &mut LineClient, user: &str, password: &str) -> String {
    type H = Hmac<Sha256>;
    let hmac = |k: &[u8], d: &[u8]| {
        let mut m = H::new_from_slice(k).unwrap();
        m.update(d);
        m.finalize().into_bytes().to_vec()
    };
    let cnonce = "fyko+d2lbbFgONRv9qkxdawL";
    let first_bare = format!("n={user},r={cnonce}");
    c.send(&format!(
        "AUTH SCRAM-SHA-256 {}\r\n",
        b64(format!("n,,{first_bare}").as_bytes())
    ))
    .await;
    let r = c.smtp_reply().await;
    assert!(r.starts_with("334 "), "{r}");
    let server_first = String::from_utf8(unb64(&r[4..])).unwrap();
    let mut nonce = "";
    let mut salt = Vec::new();
    let mut iter = 0u32;
    for a in server_first.split(',') {
        match a.split_at(2) {
            ("r=", v) => nonce = v,
            ("s=", v) => salt = unb64(v),
            ("i=", v) => iter = v.parse().unwrap(),
            _ => {}
        }
    }
    assert!(nonce.starts_with(cnonce) && nonce.len() > cnonce.len());
    assert!(iter >= 4096, "RFC 7677 §4");
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iter, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(&client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_msg = format!("{first_bare},{server_first},{without_proof}");
    let sig = hmac(&stored_key, auth_msg.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(sig).map(|(a, b)| a ^ b).collect();
    c.send(&format!(
        "{}\r\n",
        b64(format!("{without_proof},p={}", b64(&proof)).as_bytes())
    ))
    .await;
    let r = c.smtp_reply().await;
    if !r.starts_with("334 ") {
        return r;
    }
    let server_final = String::from_utf8(unb64(&r[4..])).unwrap();
    let server_key = hmac(&salted, b"Server Key");
    let expected = format!("v={}", b64(&hmac(&server_key, auth_msg.as_bytes())));
    assert_eq!(
        server_final, expected,
        "server proves it knows the password"
    );
    c.send("\r\n").await;
    c.smtp_reply().await
}

#[tokio::test]
async fn scram_sha_256_authenticates_both_ways() {
    let s = TestServer::start_with(OPEN);
    s.account("joe@example.org");
    let mut c = LineClient::connect(s.addr("submission")).await;
    c.smtp_reply().await;
    ehlo(&mut c).await;
    let r = scram_login(&mut c, "joe@example.org", "wrong").await;
    assert!(r.starts_with("535 5.7.8"), "{r}");
    let r = scram_login(&mut c, "nobody@example.org", "pw").await;
    assert!(r.starts_with("535 5.7.8"), "{r}");
    let r = scram_login(&mut c, "joe@example.org", "pw").await;
    assert!(r.starts_with("235 2.7.0"), "{r}");
    // A changed password changes the SCRAM secret too.
    s.cli_ok(&["account", "update", "joe@example.org", "--secret", "new-pw"]);
    let mut c = LineClient::connect(s.addr("submission")).await;
    c.smtp_reply().await;
    ehlo(&mut c).await;
    assert!(scram_login(&mut c, "joe@example.org", "pw")
        .await
        .starts_with("535"));
    assert!(scram_login(&mut c, "joe@example.org", "new-pw")
        .await
        .starts_with("235"));
}

#[tokio::test]
async fn mta_port_has_no_auth_and_relays_nothing() {
    let s = TestServer::start_with(OPEN);
    s.account("joe@example.org");
    let mut c = LineClient::connect(s.addr("smtp")).await;
    c.smtp_reply().await;
    let caps = ehlo(&mut c).await.join("\n");
    assert!(!caps.contains("AUTH"), "{caps}");
    c.send(&format!("AUTH PLAIN {}\r\n", b64(b"\0joe@example.org\0pw")))
        .await;
    assert!(c.smtp_reply().await.starts_with("503"));
    c.send("MAIL FROM:<joe@example.org>\r\nRCPT TO:<someone@elsewhere.test>\r\n")
        .await;
    c.smtp_reply().await;
    assert!(c.smtp_reply().await.starts_with("554 5.7.1"));
}

#[tokio::test]
async fn bdat_chunks_binarymime_and_limits() {
    let s = TestServer::start_with(
        "[smtp]\nmax-message-size = 2000\n[imap]\nauth-without-tls = true\n",
    );
    s.account("joe@example.org");
    let mut c = LineClient::connect(s.addr("smtp")).await;
    c.smtp_reply().await;
    let caps = ehlo(&mut c).await.join("\n");
    assert!(
        caps.contains("CHUNKING") && caps.contains("BINARYMIME"),
        "{caps}"
    );
    // A chunk may hold what DATA would end on: it is taken verbatim.
    let part1 = "Subject: chunked\r\n\r\nline one\r\n.\r\n";
    let part2 = "line two\r\n";
    c.send(&format!(
        "MAIL FROM:<a@remote.test> BODY=BINARYMIME\r\nRCPT TO:<joe@example.org>\r\nBDAT {}\r\n{part1}",
        part1.len()
    ))
    .await;
    assert!(c.smtp_reply().await.starts_with("250"));
    assert!(c.smtp_reply().await.starts_with("250"));
    assert!(c.smtp_reply().await.starts_with("250 2.0.0"));
    c.send(&format!("BDAT {} LAST\r\n{part2}", part2.len()))
        .await;
    let r = c.smtp_reply().await;
    assert!(r.starts_with("250 2.0.0 Message accepted"), "{r}");
    let msgs = wait_for_mail(s.addr("imap"), "joe@example.org", 1).await;
    assert!(String::from_utf8_lossy(&msgs[0]).ends_with("line one\r\n.\r\nline two\r\n"));
    // BINARYMIME content cannot go by DATA (RFC 3030 §3).
    c.send("MAIL FROM:<a@remote.test> BODY=BINARYMIME\r\nRCPT TO:<joe@example.org>\r\nDATA\r\n")
        .await;
    c.smtp_reply().await;
    c.smtp_reply().await;
    assert!(c.smtp_reply().await.starts_with("503"));
    c.send("RSET\r\n").await;
    c.smtp_reply().await;
    // Over the size limit: the chunk is read and refused, the session goes on.
    let big = "x".repeat(3000);
    c.send(&format!(
        "MAIL FROM:<a@remote.test>\r\nRCPT TO:<joe@example.org>\r\nBDAT {} LAST\r\n{big}",
        big.len()
    ))
    .await;
    c.smtp_reply().await;
    c.smtp_reply().await;
    assert!(c.smtp_reply().await.starts_with("552 5.3.4"));
    // BDAT without a transaction: the data is still consumed.
    c.send("BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n").await;
    let r = c.smtp_reply().await;
    assert!(r.starts_with("503"), "{r}");
    assert!(
        c.smtp_reply().await.starts_with("250"),
        "NOOP after the chunk"
    );
    assert_eq!(
        wait_for_mail(s.addr("imap"), "joe@example.org", 1)
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn smtputf8_and_dsn_parameters() {
    let s = TestServer::start_with(OPEN);
    s.account("joe@example.org");
    let mut c = LineClient::connect(s.addr("smtp")).await;
    c.smtp_reply().await;
    let caps = ehlo(&mut c).await.join("\n");
    assert!(caps.contains("SMTPUTF8") && caps.contains("DSN"), "{caps}");
    c.send("MAIL FROM:<jörg@remote.test>\r\n").await;
    assert!(c.smtp_reply().await.starts_with("553 5.6.7"));
    c.send("MAIL FROM:<jörg@remote.test> SMTPUTF8 RET=HDRS ENVID=abc+2Bdef\r\n")
        .await;
    assert!(c.smtp_reply().await.starts_with("250"));
    c.send("RCPT TO:<joe@example.org> NOTIFY=SOMETIMES\r\n")
        .await;
    assert!(c.smtp_reply().await.starts_with("501 5.5.4"));
    c.send("RCPT TO:<joe@example.org> NOTIFY=NEVER,SUCCESS\r\n")
        .await;
    assert!(c.smtp_reply().await.starts_with("501 5.5.4"));
    c.send("RCPT TO:<joe@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;joe@example.org\r\n")
        .await;
    assert!(c.smtp_reply().await.starts_with("250"));
    c.send("RCPT TO:<joe@example.org> FOO=BAR\r\n").await;
    assert!(c.smtp_reply().await.starts_with("555 5.5.4"));
    c.send("MAIL FROM:<x@remote.test> REQUIRETLS\r\n").await;
    assert!(c.smtp_reply().await.starts_with("503"), "nested MAIL");
    c.send("RSET\r\nMAIL FROM:<x@remote.test> REQUIRETLS\r\n")
        .await;
    c.smtp_reply().await;
    assert!(
        c.smtp_reply().await.starts_with("530 5.7.10"),
        "REQUIRETLS only over TLS"
    );
}

#[tokio::test]
async fn lmtp_answers_once_per_recipient() {
    let s = TestServer::start_with(OPEN);
    s.account("joe@example.org");
    s.cli_ok(&[
        "account",
        "create",
        "full@example.org",
        "--secret",
        "pw",
        "--quota",
        "10",
    ]);
    let mut c = LineClient::connect(s.addr("lmtp")).await;
    assert!(c.smtp_reply().await.contains("LMTP"));
    c.send("EHLO client.test\r\n").await;
    assert!(c.smtp_reply().await.starts_with("500"), "LMTP uses LHLO");
    c.send("LHLO client.test\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250"));
    c.send("MAIL FROM:<a@remote.test>\r\nRCPT TO:<joe@example.org>\r\nRCPT TO:<full@example.org>\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\n")
        .await;
    assert!(c.smtp_reply().await.starts_with("250"));
    assert!(c.smtp_reply().await.starts_with("250"));
    assert!(c.smtp_reply().await.starts_with("250"));
    assert!(c.smtp_reply().await.starts_with("550 5.1.1"));
    assert!(c.smtp_reply().await.starts_with("354"));
    c.send("Subject: lmtp\r\n\r\nbody that is longer than ten bytes\r\n.\r\n")
        .await;
    // RFC 2033 §4.2: one reply per accepted RCPT, in order.
    let r1 = c.line().await;
    let r2 = c.line().await;
    assert!(
        r1.starts_with("250") && r1.contains("joe@example.org"),
        "{r1}"
    );
    assert!(
        r2.starts_with("452 4.2.2") && r2.contains("full@example.org"),
        "{r2}"
    );
    assert_eq!(
        wait_for_mail(s.addr("imap"), "joe@example.org", 1)
            .await
            .len(),
        1
    );
    assert!(imap_fetch_all(s.addr("imap"), "full@example.org", "pw")
        .await
        .is_empty());
}

#[tokio::test]
async fn lmtp_over_a_unix_socket() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    // Top-level keys of [listeners] cannot be repeated, so the socket goes
    // in its own config file.
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(OPEN).replace(
        "lmtp = [\"127.0.0.1:0\"]",
        "lmtp = []\nlmtp-socket = \"lmtp.sock\"",
    );
    std::fs::write(dir.path().join("config.toml"), cfg).unwrap();
    let s = TestServer::start_in(dir);
    s.account("joe@example.org");
    let sock = tokio::net::UnixStream::connect(s.data_dir().join("lmtp.sock"))
        .await
        .unwrap();
    let (r, mut w) = tokio::io::split(sock);
    let mut r = tokio::io::BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("220") && line.contains("LMTP"), "{line}");
    w.write_all(b"LHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<joe@example.org>\r\nDATA\r\nSubject: unix\r\n\r\nvia socket\r\n.\r\nQUIT\r\n")
        .await
        .unwrap();
    let mut all = String::new();
    while r.read_line(&mut all).await.unwrap() > 0 {}
    assert!(
        all.contains("250 2.0.0 <joe@example.org> delivered"),
        "{all}"
    );
    let got = wait_for_mail(s.addr("imap"), "joe@example.org", 1).await;
    assert!(String::from_utf8_lossy(&got[0]).contains("via socket"));
}

/// RFC 4954 §4: no AUTH inside a mail transaction (503); a login
/// throttled after repeated failures from its address is a temporary
/// refusal (454 4.7.0), even with the right password, and the session
/// goes on.
#[tokio::test]
async fn auth_in_a_transaction_and_after_repeated_failures() {
    let s = TestServer::start_with(
        "[imap]\nauth-without-tls = true\n[auth]\nmax-failures-per-account-ip = 3\n",
    );
    s.account("joe@example.org");
    let mut c = LineClient::connect_tls(&s, s.addr("submissions")).await;
    assert!(c.smtp_reply().await.starts_with("220"));
    ehlo(&mut c).await;
    c.send(&format!("AUTH PLAIN {}\r\n", b64(b"\0joe@example.org\0pw")))
        .await;
    assert!(c.smtp_reply().await.starts_with("235"));
    c.send("MAIL FROM:<joe@example.org>\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250"));
    c.send(&format!("AUTH PLAIN {}\r\n", b64(b"\0joe@example.org\0pw")))
        .await;
    assert!(c.smtp_reply().await.starts_with("503 5.5.1"));
    c.send("RSET\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250"));

    let mut c = LineClient::connect_tls(&s, s.addr("submissions")).await;
    assert!(c.smtp_reply().await.starts_with("220"));
    ehlo(&mut c).await;
    for _ in 0..3 {
        c.send(&format!(
            "AUTH PLAIN {}\r\n",
            b64(b"\0joe@example.org\0nope")
        ))
        .await;
        assert!(c.smtp_reply().await.starts_with("535 5.7.8"));
    }
    c.send(&format!("AUTH PLAIN {}\r\n", b64(b"\0joe@example.org\0pw")))
        .await;
    let r = c.smtp_reply().await;
    assert!(r.starts_with("454 4.7.0"), "{r}");
    c.send("NOOP\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250"));
}
