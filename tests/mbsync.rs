//! mbsync (Debian's isync, installed by `cargo xtask setup`), a real IMAP
//! sync client, keeps a local Maildir in step with Petrel both ways:
//! delivered mail comes down, a message written locally goes up (APPEND),
//! flags set on the server come down, a local deletion is expunged on the
//! server.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const OPEN: &str = "[smtp]\nauth-without-tls = true\n[imap]\nauth-without-tls = true\n";

fn mbsync(rc: &Path) {
    let out = Command::new("mbsync")
        .arg("-c")
        .arg(rc)
        .arg("-a")
        .output()
        .expect("mbsync is not installed: run `cargo xtask setup`");
    assert!(
        out.status.success(),
        "mbsync failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The local messages: (file name, contents).
fn local(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(dir.join("INBOX").join(sub)) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                out.push((name, text));
            }
        }
    }
    out
}

#[tokio::test]
async fn mbsync_syncs_a_mailbox_both_ways() {
    let s = TestServer::start_with(OPEN);
    s.account("joe@example.org");
    for i in 1..=2 {
        let r = smtp_send(
            s.addr("smtp"),
            "ann@remote.test",
            &["joe@example.org"],
            &format!("From: ann@remote.test\r\nSubject: down {i}\r\nMessage-ID: <down{i}@remote.test>\r\n\r\nbody {i}\r\n"),
        )
        .await;
        assert!(r.starts_with("250"), "{r}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let maildir = tmp.path().join("mail");
    std::fs::create_dir_all(&maildir).unwrap();
    let rc = tmp.path().join("mbsyncrc");
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount petrel\nHost 127.0.0.1\nPort {port}\nUser joe@example.org\nPass pw\nSSLType IMAPS\nCertificateFile {cert}\n\n\
             IMAPStore remote\nAccount petrel\n\n\
             MaildirStore local\nPath {mail}/\nInbox {mail}/INBOX\nSubFolders Verbatim\n\n\
             Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Both\nExpunge Both\nSyncState *\n",
            port = s.addr("imaps").port(),
            cert = s.data_dir().join("tls/cert.pem").display(),
            mail = maildir.display(),
        ),
    )
    .unwrap();

    // 1. Down: both delivered messages arrive in the Maildir.
    mbsync(&rc);
    let files = local(&maildir);
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().any(|(_, t)| t.contains("Subject: down 1")));

    // 2. Up: a message written into the Maildir is appended on the server.
    std::fs::write(
        maildir.join("INBOX/new/1700000000.local.test"),
        "From: joe@example.org\r\nSubject: up 1\r\nMessage-ID: <up1@example.org>\r\n\r\nwritten locally\r\n",
    )
    .unwrap();
    mbsync(&rc);
    let server = imap_fetch_all(s.addr("imap"), "joe@example.org", "pw").await;
    assert_eq!(server.len(), 3);
    assert!(server
        .iter()
        .any(|m| String::from_utf8_lossy(m).contains("written locally")));

    // 3. A flag set on the server comes down into the file name.
    let mut c = LineClient::connect(s.addr("imap")).await;
    c.line().await;
    c.send("a LOGIN joe@example.org pw\r\nb SELECT INBOX\r\nc STORE 1 +FLAGS (\\Flagged)\r\n")
        .await;
    let done = c.imap_until("c").await;
    assert!(done.last().unwrap().starts_with("c OK"), "{done:?}");
    mbsync(&rc);
    let flagged: Vec<_> = local(&maildir)
        .into_iter()
        .filter(|(n, _)| n.rsplit_once(":2,").is_some_and(|(_, f)| f.contains('F')))
        .collect();
    assert_eq!(flagged.len(), 1, "{:?}", local(&maildir));
    assert!(flagged[0].1.contains("Subject: down 1"));

    // 4. Deleted locally (the T flag): expunged on the server.
    let cur = maildir.join("INBOX/cur");
    let victim = ["new", "cur"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(maildir.join("INBOX").join(d))
                .unwrap()
                .flatten()
        })
        .find(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .contains("Subject: down 2")
        })
        .expect("down 2 is in the Maildir");
    let name = victim.file_name().to_string_lossy().into_owned();
    // Into cur/ with the T (trashed) flag added.
    let renamed = match name.rsplit_once(":2,") {
        Some((base, flags)) => format!("{base}:2,{flags}T"),
        None => format!("{name}:2,T"),
    };
    std::fs::rename(victim.path(), cur.join(renamed)).unwrap();
    mbsync(&rc);
    let server = imap_fetch_all(s.addr("imap"), "joe@example.org", "pw").await;
    assert_eq!(server.len(), 2);
    assert!(server
        .iter()
        .all(|m| !String::from_utf8_lossy(m).contains("Subject: down 2")));
    assert_eq!(local(&maildir).len(), 2);
}
