//! A private Dovecot (Debian's dovecot-core, dovecot-lmtpd and
//! dovecot-imapd) taking mail by LMTP on a loopback port into Maildirs
//! under a temporary directory, and serving them by IMAP (any password);
//! for the comparisons in `cargo xtask bench smtp` and `bench imap`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Dovecot {
    child: Child,
    dir: tempfile::TempDir,
    pub lmtp_port: u16,
    pub imap_port: u16,
}

pub fn installed() -> bool {
    Path::new("/usr/sbin/dovecot").exists() && Path::new("/usr/lib/dovecot/lmtp").exists()
}

pub fn imap_installed() -> bool {
    installed() && Path::new("/usr/lib/dovecot/imap").exists()
}

impl Dovecot {
    pub fn start() -> Dovecot {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().display().to_string();
        let mail = dir.path().join("mail");
        std::fs::create_dir_all(&mail).unwrap();
        Command::new("chown")
            .args(["dovecot:dovecot"])
            .arg(&mail)
            .status()
            .unwrap();
        let port = super::port::free_port();
        let imap_port = super::port::free_port();
        let imap = imap_installed();
        let conf = format!(
            "base_dir = {root}/run\n\
             state_dir = {root}/state\n\
             log_path = {root}/dovecot.log\n\
             protocols = lmtp{protocols}\n\
             disable_plaintext_auth = no\n\
             listen = 127.0.0.1\n\
             ssl = no\n\
             mail_location = maildir:{root}/mail/%n\n\
             mail_fsync = optimized\n\
             first_valid_uid = 100\n\
             first_valid_gid = 100\n\
             default_internal_user = dovecot\n\
             default_login_user = dovenull\n\
             userdb {{\n  driver = static\n  args = uid=dovecot gid=dovecot home={root}/mail/%n\n}}\n\
             passdb {{\n  driver = static\n  args = nopassword=y\n}}\n\
             service lmtp {{\n  inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n}}\n{imap_service}",
            protocols = if imap { " imap" } else { "" },
            imap_service = if imap {
                format!(
                    "service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap_port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\nservice imap {{\n  process_limit = 2048\n}}\nprotocol imap {{\n  mail_max_userip_connections = 2048\n}}\n"
                )
            } else {
                String::new()
            },
        );
        let path = dir.path().join("dovecot.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new("/usr/sbin/dovecot")
            .args(["-F", "-c"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start dovecot");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "dovecot did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Dovecot {
            child,
            dir,
            lmtp_port: port,
            imap_port,
        }
    }

    /// Memory of the master and every process under it, in KB: the sum
    /// of their RSS and of their PSS (shared pages divided among the
    /// processes that share them, the fair figure for many processes).
    pub fn memory_kb(&self) -> (u64, u64, usize) {
        tree_memory_kb(self.child.id())
    }

    /// Messages in `user`'s Maildir INBOX.
    pub fn count(&self, user: &str) -> usize {
        ["new", "cur"]
            .iter()
            .map(|d| {
                std::fs::read_dir(self.dir.path().join("mail").join(user).join(d))
                    .map(|it| it.count())
                    .unwrap_or(0)
            })
            .sum()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its worker processes too.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// Memory of process `root` and every process under it, in KB: the sum
/// of their RSS, of their PSS (shared pages divided among the processes
/// that share them, the fair figure for many processes), and how many
/// processes (Dovecot here, Cyrus in `bench jmap`).
pub fn tree_memory_kb(root: u32) -> (u64, u64, usize) {
    let mut parent = std::collections::HashMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold
        // spaces, so split after the last ')'.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(after) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        if let Some(ppid) = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok())
        {
            parent.insert(pid, ppid);
        }
    }
    let under = |mut p: u32| {
        for _ in 0..16 {
            if p == root {
                return true;
            }
            match parent.get(&p) {
                Some(&pp) if pp != 0 => p = pp,
                _ => return false,
            }
        }
        false
    };
    let field = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let (mut rss, mut pss, mut n) = (0, 0, 0);
    for &pid in parent.keys() {
        if !under(pid) {
            continue;
        }
        let Ok(roll) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
            continue;
        };
        rss += field(&roll, "Rss:");
        pss += field(&roll, "Pss:");
        n += 1;
    }
    (rss, pss, n)
}
