//! A private Postfix instance for tests and benches (Debian's package, its
//! own configuration and queue under a temporary directory, smtpd on a
//! loopback port). `cargo xtask setup` installs the package; its own
//! service is never used.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Postfix {
    dir: tempfile::TempDir,
    pub port: u16,
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
    /// `relayhost` by SMTP.
    pub fn start(relayhost: SocketAddr) -> Postfix {
        Self::start_with(&format!(
            "relayhost = [{}]:{}\n",
            relayhost.ip(),
            relayhost.port()
        ))
    }

    /// A Postfix with `extra` main.cf lines (its routing).
    pub fn start_with(extra: &str) -> Postfix {
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
        let port = super::port::free_port();
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
                 smtp_dns_support_level = disabled\n\
                 smtp_tls_security_level = may\n\
                 maillog_file_prefixes = {root}\n\
                 maillog_file = {root}/maillog\n{extra}",
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

    pub fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    pub fn log(&self) -> String {
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
        ("lmtp", "-", "-", "lmtp"),
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
    // TLS session cache and entropy, for instances with a certificate.
    out.push_str("tlsmgr unix - - n 1000? 1 tlsmgr\n");
    out
}
