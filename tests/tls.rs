//! RFC 8314 (cleartext considered obsolete), the server's side, sentence
//! by sentence: TLS versions and suites, no client certificate requests,
//! close alerts, the cipher suite in Received fields and logs, and no
//! hint about credentials over cleartext.

mod common;

use std::process::Command;

use common::*;
use tokio::io::AsyncReadExt;

/// `openssl s_client` against `addr` with one protocol version forced
/// (security level 0, so that the client offers even the old ones): its
/// output and whether the handshake succeeded.
fn s_client(addr: std::net::SocketAddr, version: &str) -> (bool, String) {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            version,
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
            "-servername",
            "mx.test",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = text.contains("Cipher is ") && !text.contains("Cipher is (NONE)");
    (ok, text)
}

/// §4: TLS 1.2 or later only (SSL and TLS 1.0/1.1 are refused even when a
/// client offers nothing else), rustls' recommended suites; §4.2: no
/// client certificate is asked for.
#[test]
fn only_tls_1_2_and_later_without_client_certificates() {
    let s = TestServer::start();
    for listener in ["imaps", "pop3s", "submissions"] {
        let addr = s.addr(listener);
        for old in ["-tls1", "-tls1_1"] {
            let (ok, text) = s_client(addr, old);
            assert!(!ok, "{listener} {old} accepted:\n{text}");
        }
        for good in ["-tls1_2", "-tls1_3"] {
            let (ok, text) = s_client(addr, good);
            assert!(ok, "{listener} {good} refused:\n{text}");
            assert!(
                text.contains("No client certificate CA names sent"),
                "{listener} asks for a client certificate:\n{text}"
            );
        }
        let (_, text) = s_client(addr, "-tls1_2");
        assert!(
            text.contains("ECDHE") && text.contains("GCM") || text.contains("CHACHA20"),
            "{listener}: an AEAD suite with forward secrecy expected:\n{text}"
        );
    }
}

/// §3.4: the server ends a TLS session with a close alert before closing
/// TCP: after LOGOUT / QUIT the client reads a clean end of stream (rustls
/// reports a TCP close without close_notify as an error).
#[tokio::test]
async fn sessions_end_with_a_close_alert() {
    let s = TestServer::start();
    s.account("joe@example.org");
    for (listener, bye) in [
        ("imaps", "a LOGOUT\r\n"),
        ("pop3s", "QUIT\r\n"),
        ("submissions", "QUIT\r\n"),
    ] {
        let mut c = LineClient::connect_tls(&s, s.addr(listener)).await;
        c.line().await;
        c.send(bye).await;
        let mut rest = Vec::new();
        let end = c.r.read_to_end(&mut rest).await;
        assert!(
            end.is_ok(),
            "{listener}: {end:?} after {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

/// §4.3: a message received over TLS names the session's cipher suite in
/// its Received field (`tls` clause, the registered name); §4: the TLS
/// handshake and the SMTP transaction are logged with version and suite.
#[tokio::test]
async fn received_fields_and_logs_name_the_cipher_suite() {
    let s = TestServer::start_logging("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    let port = s.addr("submissions").port();
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import smtplib, ssl\n\
             c = ssl._create_unverified_context()\n\
             s = smtplib.SMTP_SSL('127.0.0.1', {port}, context=c)\n\
             s.login('joe@example.org', 'pw')\n\
             s.sendmail('joe@example.org', ['joe@example.org'], 'From: joe@example.org\\r\\nSubject: over tls\\r\\n\\r\\nhi\\r\\n')\n\
             s.quit()\n"
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = wait_for_mail(s.addr("imap"), "joe@example.org", 1).await;
    let text = String::from_utf8_lossy(&got[0]).into_owned();
    let received = text
        .split("\r\n")
        .skip_while(|l| !l.starts_with("Received: from"))
        .take_while(|l| l.starts_with("Received:") || l.starts_with('\t'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(received.contains("with ESMTPSA"), "{received}");
    assert!(received.contains("\ttls TLS_"), "{received}");
    let log = s.log_until("smtp transaction accepted");
    assert!(log.contains("TLS handshake"), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("smtp transaction accepted"))
        .unwrap();
    assert!(line.contains("TLSv1.3 TLS_"), "{line}");
}

/// §4.1: with cleartext logins refused (the default), a right and a wrong
/// password get the same answer, so cleartext tells nothing about them.
#[tokio::test]
async fn cleartext_logins_say_nothing_about_the_password() {
    let s = TestServer::start();
    s.account("joe@example.org");
    let mut answers = Vec::new();
    for pass in ["pw", "wrong"] {
        let mut c = LineClient::connect(s.addr("imap")).await;
        c.line().await;
        c.send(&format!("a LOGIN joe@example.org {pass}\r\n")).await;
        let imap = c.line().await;
        let mut c = LineClient::connect(s.addr("pop3")).await;
        c.line().await;
        c.send("USER joe@example.org\r\n").await;
        let user = c.line().await;
        c.send(&format!("PASS {pass}\r\n")).await;
        let pop = c.line().await;
        let mut c = LineClient::connect(s.addr("submission")).await;
        c.smtp_reply().await;
        c.send("EHLO x.test\r\n").await;
        c.smtp_reply().await;
        use base64::Engine;
        let cred =
            base64::engine::general_purpose::STANDARD.encode(format!("\0joe@example.org\0{pass}"));
        c.send(&format!("AUTH PLAIN {cred}\r\n")).await;
        let smtp = c.smtp_reply().await;
        answers.push((imap, user, pop, smtp));
    }
    assert_eq!(answers[0], answers[1]);
    let (imap, _, pop, smtp) = &answers[0];
    assert!(
        imap.starts_with("a NO") || imap.starts_with("a BAD"),
        "{imap}"
    );
    assert!(pop.starts_with("-ERR"), "{pop}");
    assert!(smtp.starts_with("538") || smtp.starts_with("530"), "{smtp}");
}
