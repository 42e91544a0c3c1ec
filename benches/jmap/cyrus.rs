//! A private Cyrus IMAP (Debian's cyrus-imapd and cyrus-caldav, whose
//! httpd serves JMAP) on loopback ports under a temporary directory, for
//! the comparison in `cargo xtask bench jmap`: one user, `reader`, with
//! the password `pw` (a private sasldb), JMAP over HTTP.
//! Its master drops to the `cyrus` user, so it is started only as root.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Cyrus {
    child: Child,
    _dir: tempfile::TempDir,
    pub http_port: u16,
}

const MASTER: &str = "/usr/lib/cyrus/bin/master";

/// Why the comparison cannot run here, if it cannot.
pub fn unavailable() -> Option<&'static str> {
    if !Path::new(MASTER).exists() || !Path::new("/usr/lib/cyrus/bin/httpd").exists() {
        return Some("apt-get install cyrus-imapd cyrus-caldav sasl2-bin");
    }
    if unsafe { libc::geteuid() } != 0 {
        return Some("Cyrus's master must start as root to drop to the cyrus user");
    }
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cyrus {
    pub fn start() -> Cyrus {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().display().to_string();
        for d in ["conf", "spool", "run", "sock"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let (imap, http) = (free_port(), free_port());
        // JMAP needs the conversations database; mail is fsynced as
        // Cyrus does by default.
        let conf = format!(
            "configdirectory: {root}/conf\n\
             partition-default: {root}/spool\n\
             defaultpartition: default\n\
             admins: cyrus\n\
             sasl_pwcheck_method: auxprop\n\
             sasl_auxprop_plugin: sasldb\n\
             sasl_sasldb_path: {root}/sasldb2\n\
             sasl_mech_list: PLAIN LOGIN\n\
             allowplaintext: yes\n\
             httpmodules: jmap\n\
             conversations: yes\n\
             conversations_db: twoskip\n\
             unixhierarchysep: yes\n\
             altnamespace: yes\n\
             lmtpsocket: {root}/sock/lmtp\n\
             idlesocket: {root}/sock/idle\n\
             notifysocket: {root}/sock/notify\n\
             master_pid_file: {root}/run/master.pid\n\
             syslog_prefix: petrel-bench-cyrus\n\
             jmap_pushpoll: 1s\n\
             jmap_max_size_request: 100000\n"
        );
        let conf_path = format!("{root}/imapd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let c = format!("-C {conf_path}");
        std::fs::write(
            format!("{root}/cyrus.conf"),
            format!(
                "START {{\n  recover cmd=\"ctl_cyrusdb -r {c}\"\n}}\n\
                 SERVICES {{\n  imap cmd=\"imapd {c}\" listen=\"127.0.0.1:{imap}\" prefork=0\n  \
                 http cmd=\"httpd {c}\" listen=\"127.0.0.1:{http}\" prefork=0\n}}\n\
                 EVENTS {{\n  checkpoint cmd=\"ctl_cyrusdb -c {c}\" period=30\n}}\n\
                 DAEMON {{\n  idled cmd=\"idled {c}\"\n}}\n"
            ),
        )
        .unwrap();
        for user in ["reader", "cyrus"] {
            let mut p = Command::new("saslpasswd2")
                .args(["-p", "-f", &format!("{root}/sasldb2"), "-c", user])
                .stdin(Stdio::piped())
                .spawn()
                .expect("saslpasswd2 (apt-get install sasl2-bin)");
            p.stdin.take().unwrap().write_all(b"pw").unwrap();
            assert!(p.wait().unwrap().success());
        }
        assert!(Command::new("chown")
            .args(["-R", "cyrus:mail", &root])
            .status()
            .unwrap()
            .success());
        let child = Command::new(MASTER)
            .args(["-C", &conf_path, "-M", &format!("{root}/cyrus.conf"), "-D"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start cyrus master");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", imap)).is_err()
            || std::net::TcpStream::connect(("127.0.0.1", http)).is_err()
        {
            assert!(Instant::now() < deadline, "cyrus did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The administrator creates the user's mailbox.
        let s = std::net::TcpStream::connect(("127.0.0.1", imap)).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        for (tag, cmd) in [("a", "LOGIN cyrus pw"), ("b", "CREATE user/reader")] {
            w.write_all(format!("{tag} {cmd}\r\n").as_bytes()).unwrap();
            loop {
                line.clear();
                r.read_line(&mut line).unwrap();
                if line.starts_with(&format!("{tag} ")) {
                    assert!(line.starts_with(&format!("{tag} OK")), "cyrus: {line}");
                    break;
                }
            }
        }
        Cyrus {
            child,
            _dir: dir,
            http_port: http,
        }
    }

    /// Resident memory of the master and every process under it, KB.
    pub fn rss_kb(&self) -> u64 {
        super::dovecot::tree_memory_kb(self.child.id()).0
    }
}

impl Drop for Cyrus {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
