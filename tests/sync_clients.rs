//! More real clients, from Debian's packages (installed by `cargo xtask
//! setup`): offlineimap (offlineimap3) keeps a local Maildir in step with
//! Petrel over IMAP with TLS, and fetchmail collects mail over POP3 with
//! TLS, first keeping it on the server (UIDL), then deleting it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const OPEN: &str = "[smtp]\nauth-without-tls = true\n[imap]\nauth-without-tls = true\n";

/// Runs a client; returns its exit code and what it printed.
fn run(cmd: &mut Command, what: &str) -> (i32, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what} is not installed ({e}): run `cargo xtask setup`"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Files of a Maildir folder: (name, contents).
fn maildir(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            for e in rd.flatten() {
                out.push((e.path(), std::fs::read_to_string(e.path()).unwrap()));
            }
        }
    }
    out
}

/// One IMAP session's answer to `commands` (LOGIN done here).
async fn imap(s: &TestServer, commands: &str, last_tag: &str) -> Vec<String> {
    let mut c = LineClient::connect(s.addr("imap")).await;
    c.line().await;
    c.send(&format!("a0 LOGIN joe@example.org pw\r\n{commands}"))
        .await;
    c.imap_until(last_tag).await
}

#[tokio::test]
async fn offlineimap_syncs_folders_both_ways() {
    let s = TestServer::start_with(OPEN);
    s.account("joe@example.org");
    deliver(&s, "down 1", "body of down 1\r\n").await;
    deliver(&s, "down 2", "body of down 2\r\n").await;
    let r = imap(
        &s,
        "a CREATE Projects\r\nb APPEND Projects {27+}\r\nSubject: plan\r\n\r\nthe plan\r\n\r\n",
        "b",
    )
    .await;
    assert!(r.last().unwrap().starts_with("b OK"), "{r:?}");

    let tmp = tempfile::tempdir().unwrap();
    let mail = tmp.path().join("mail");
    let rc = tmp.path().join("offlineimaprc");
    std::fs::write(
        &rc,
        format!(
            "[general]\naccounts = petrel\nmetadata = {meta}\n\n\
             [Account petrel]\nlocalrepository = local\nremoterepository = remote\n\n\
             [Repository local]\ntype = Maildir\nlocalfolders = {mail}\n\n\
             [Repository remote]\ntype = IMAP\nremotehost = localhost\nremoteport = {port}\n\
             remoteuser = joe@example.org\nremotepass = pw\nssl = yes\nsslcacertfile = {cert}\n",
            meta = tmp.path().join("meta").display(),
            mail = mail.display(),
            port = s.addr("imaps").port(),
            cert = s.data_dir().join("tls/cert.pem").display(),
        ),
    )
    .unwrap();
    let sync = || {
        let (code, text) = run(
            Command::new("offlineimap")
                .arg("-c")
                .arg(&rc)
                .args(["-o", "-u", "basic"]),
            "offlineimap",
        );
        assert!(
            code == 0 && !text.contains("ERROR"),
            "offlineimap exit {code}:\n{text}"
        );
    };

    // 1. Down: INBOX and Projects with their messages.
    sync();
    let inbox = maildir(&mail.join("INBOX"));
    assert_eq!(inbox.len(), 2, "{inbox:?}");
    let projects = maildir(&mail.join("Projects"));
    assert_eq!(projects.len(), 1, "{projects:?}");
    assert!(projects[0].1.contains("the plan"));

    // 2. Up: a message written locally is appended; a local \Seen goes up.
    std::fs::write(
        mail.join("INBOX/new/1700000000.local.test"),
        "From: joe@example.org\r\nSubject: up 1\r\n\r\nwritten locally\r\n",
    )
    .unwrap();
    let (path, _) = inbox
        .iter()
        .find(|(_, t)| t.contains("Subject: down 1"))
        .unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let seen = match name.rsplit_once(":2,") {
        Some((base, flags)) => format!("{base}:2,{flags}S"),
        None => format!("{name}:2,S"),
    };
    std::fs::rename(path, mail.join("INBOX/cur").join(seen)).unwrap();
    sync();
    let r = imap(
        &s,
        "a SELECT INBOX\r\nb FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n",
        "b",
    )
    .await;
    let text = r.join("\n");
    assert!(r.iter().any(|l| l == "* 3 EXISTS"), "{text}");
    assert!(text.contains("Subject: up 1"), "{text}");
    let down1 = r
        .iter()
        .position(|l| l.contains("Subject: down 1"))
        .expect("down 1 on the server");
    // The FETCH line that carries down 1's FLAGS starts the literal.
    let fetch_line = r[..down1]
        .iter()
        .rev()
        .find(|l| l.starts_with("* ") && l.contains("FETCH"))
        .unwrap();
    assert!(fetch_line.contains("\\Seen"), "{text}");

    // 3. A flag set on the server comes down into the file name.
    let r = imap(
        &s,
        "a SELECT INBOX\r\nb UID SEARCH SUBJECT \"down 2\"\r\n",
        "b",
    )
    .await;
    let uid = r
        .iter()
        .find_map(|l| l.strip_prefix("* SEARCH "))
        .expect("down 2 found")
        .to_string();
    let r = imap(
        &s,
        &format!("a SELECT INBOX\r\nb UID STORE {uid} +FLAGS (\\Flagged)\r\n"),
        "b",
    )
    .await;
    assert!(r.last().unwrap().starts_with("b OK"), "{r:?}");
    sync();
    let flagged: Vec<_> = maildir(&mail.join("INBOX"))
        .into_iter()
        .filter(|(p, _)| {
            p.to_string_lossy()
                .rsplit_once(":2,")
                .is_some_and(|(_, f)| f.contains('F'))
        })
        .collect();
    assert_eq!(flagged.len(), 1, "{:?}", maildir(&mail.join("INBOX")));
    assert!(flagged[0].1.contains("Subject: down 2"));

    // 4. Deleted locally: expunged on the server.
    std::fs::remove_file(&flagged[0].0).unwrap();
    sync();
    let server = imap_fetch_all(s.addr("imap"), "joe@example.org", "pw").await;
    assert_eq!(server.len(), 2);
    assert!(server
        .iter()
        .all(|m| !String::from_utf8_lossy(m).contains("Subject: down 2")));
}

#[tokio::test]
async fn fetchmail_collects_over_pop3() {
    let s = TestServer::start_with(OPEN);
    s.account("joe@example.org");
    deliver(&s, "pop 1", "body of pop 1\r\n").await;
    deliver(&s, "pop 2", "body of pop 2\r\n").await;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let me = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    let rc_for = |keep: bool| {
        let rc = tmp.path().join(if keep { "keep.rc" } else { "flush.rc" });
        std::fs::write(
            &rc,
            format!(
                "set no syslog\n\
                 poll localhost with proto POP3 port {port} uidl\n  \
                 user \"joe@example.org\" there with password \"pw\" is \"{me}\" here\n  \
                 ssl sslcertck sslcertfile \"{cert}\"\n  \
                 mda \"/bin/sh -c 'cat > {out}/msg.$$'\"\n  {mode}\n",
                port = s.addr("pop3s").port(),
                me = me.trim(),
                cert = s.data_dir().join("tls/cert.pem").display(),
                out = out.display(),
                mode = if keep { "keep" } else { "nokeep fetchall" },
            ),
        )
        .unwrap();
        // fetchmail insists that its run control file is private.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
        rc
    };
    let idfile = tmp.path().join("fetchids");
    let fetch = |rc: &Path| {
        run(
            Command::new("fetchmail")
                .arg("-f")
                .arg(rc)
                .arg("--idfile")
                .arg(&idfile)
                .env("HOME", tmp.path()),
            "fetchmail",
        )
    };
    let collected = || {
        std::fs::read_dir(&out)
            .unwrap()
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .collect::<Vec<String>>()
    };
    let on_server = || async {
        let mut c = LineClient::connect_tls(&s, s.addr("pop3s")).await;
        c.line().await;
        c.send("USER joe@example.org\r\nPASS pw\r\nSTAT\r\nQUIT\r\n")
            .await;
        c.line().await;
        c.line().await;
        c.line().await
    };

    // 1. Both messages collected and kept on the server.
    let keep = rc_for(true);
    let (code, text) = fetch(&keep);
    assert_eq!(code, 0, "fetchmail:\n{text}");
    let got = collected();
    assert_eq!(got.len(), 2, "{text}");
    for subject in ["Subject: pop 1", "Subject: pop 2"] {
        assert!(
            got.iter().any(|m| m.contains(subject)),
            "{subject}: {got:?}"
        );
    }
    assert!(on_server().await.starts_with("+OK 2 "));

    // 2. UIDL: only the new message is collected next time.
    deliver(&s, "pop 3", "body of pop 3\r\n").await;
    let (code, text) = fetch(&keep);
    assert_eq!(code, 0, "fetchmail:\n{text}");
    assert_eq!(collected().len(), 3, "{text}");
    let (code, text) = fetch(&keep);
    assert_eq!(code, 1, "nothing new, fetchmail says 1:\n{text}");
    assert_eq!(collected().len(), 3);

    // 3. Without keep, everything is collected and deleted on the server.
    let (code, text) = fetch(&rc_for(false));
    assert_eq!(code, 0, "fetchmail:\n{text}");
    assert_eq!(collected().len(), 6, "{text}");
    assert!(on_server().await.starts_with("+OK 0 0"));
}
