//! Petrel with a real Postfix (Debian's package, a private instance with its
//! own configuration and queue on a loopback port): Postfix relays into
//! Petrel, and Petrel uses Postfix as its smarthost. This Postfix does not
//! offer DSN, so Petrel's "relayed" notices are exercised too.

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const OPEN: &str = "[smtp]\nauth-without-tls = true\n[imap]\nauth-without-tls = true\n";

struct Postfix {
    dir: tempfile::TempDir,
    port: u16,
}

/// Runs a postfix command; postfix reports errors only on a terminal or to
/// syslog, so `script` gives it a terminal and we keep what it says.
fn postfix(conf: &Path, action: &str) -> (bool, String) {
    let out = Command::new("script")
        .args(["-qec"])
        .arg(format!("postfix -c {} {action}", conf.display()))
        .arg("/dev/null")
        .output()
        .expect("run postfix via script(1)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

impl Postfix {
    /// A Postfix that accepts mail from loopback and relays all of it to
    /// `relayhost`.
    fn start(relayhost: SocketAddr) -> Postfix {
        assert!(
            Path::new("/usr/sbin/postfix").exists(),
            "postfix is not installed: run `cargo xtask setup`"
        );
        let dir = tempfile::tempdir().unwrap();
        // The postfix user must reach the queue below the temp directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let etc = dir.path().join("etc");
        let data = dir.path().join("data");
        for d in [&etc, &data, &dir.path().join("queue")] {
            std::fs::create_dir_all(d).unwrap();
        }
        Command::new("chown")
            .arg("postfix")
            .arg(&data)
            .status()
            .unwrap();
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        std::fs::write(etc.join("master.cf"), master_cf(port)).unwrap();
        let root = dir.path().display();
        std::fs::write(
            etc.join("main.cf"),
            format!(
                "compatibility_level = 3.6\n\
                 queue_directory = {root}/queue\n\
                 data_directory = {root}/data\n\
                 mail_owner = postfix\n\
                 myhostname = postfix.test\n\
                 mydomain = postfix.test\n\
                 myorigin = postfix.test\n\
                 inet_interfaces = 127.0.0.1\n\
                 inet_protocols = ipv4\n\
                 mydestination =\n\
                 mynetworks = 127.0.0.0/8\n\
                 smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n\
                 relayhost = [{}]:{}\n\
                 smtp_dns_support_level = disabled\n\
                 smtp_tls_security_level = may\n\
                 smtpd_discard_ehlo_keywords = dsn\n\
                 maillog_file_prefixes = {root}\n\
                 maillog_file = {root}/maillog\n",
                relayhost.ip(),
                relayhost.port()
            ),
        )
        .unwrap();
        let (ok, out) = postfix(&etc, "start");
        assert!(ok, "postfix start failed: {out}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "postfix did not listen: {out}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Postfix { dir, port }
    }

    fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = postfix(&self.etc(), "abort");
    }
}

/// Debian's master.cf reduced to the services a relay needs, without
/// chroot, with smtpd on our port.
fn master_cf(port: u16) -> String {
    let services = [
        ("smtpd-inet", "n", "-", "smtpd"),
        ("pickup", "n", "1", "pickup"),
        ("cleanup", "n", "0", "cleanup"),
        ("qmgr", "n", "1", "qmgr"),
        ("rewrite", "-", "-", "trivial-rewrite"),
        ("bounce", "-", "0", "bounce"),
        ("defer", "-", "0", "bounce"),
        ("trace", "-", "0", "bounce"),
        ("verify", "-", "1", "verify"),
        ("flush", "n", "0", "flush"),
        ("proxymap", "-", "-", "proxymap"),
        ("smtp", "-", "-", "smtp"),
        ("relay", "-", "-", "smtp"),
        ("showq", "n", "-", "showq"),
        ("error", "-", "-", "error"),
        ("retry", "-", "-", "error"),
        ("discard", "-", "-", "discard"),
        ("anvil", "-", "1", "anvil"),
        ("scache", "-", "1", "scache"),
    ];
    let mut out = String::new();
    for (name, private, limit, cmd) in services {
        if name == "smtpd-inet" {
            out.push_str(&format!("127.0.0.1:{port} inet n - n - - smtpd\n"));
        } else {
            out.push_str(&format!("{name} unix {private} - n - {limit} {cmd}\n"));
        }
    }
    out.push_str("postlog unix-dgram n - n - 1 postlogd\n");
    out
}

#[tokio::test]
async fn postfix_relays_into_petrel_and_petrel_relays_through_postfix() {
    // B is the final destination; Postfix relays everything to B.
    let b = TestServer::start_with(OPEN);
    b.account("bob@remote.test");
    let pf = Postfix::start(b.addr("smtp"));

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
}
