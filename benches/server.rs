//! A release `petrel serve` for the benchmarks: a throwaway data
//! directory, the listed listeners on port 0, the admin password "bench".

use std::collections::HashMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

pub struct Server {
    child: std::process::Child,
    ports: HashMap<String, SocketAddr>,
    url: String,
    pub dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    // Used by some benches only.
    #[allow(dead_code)]
    /// CPU seconds the server process has used (user + system, all
    /// threads), from /proc.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name in parentheses; utime and stime
        // are the 14th and 15th of the line, in clock ticks (100 per s).
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / 100.0
    }

    /// Starts with `extra` configuration and these listeners (plus http).
    pub fn start(extra: &str, listeners: &[&str]) -> Server {
        Self::start_in(tempfile::tempdir().unwrap(), extra, listeners)
    }

    /// [`Server::start`] on a data directory prepared beforehand.
    pub fn start_in(dir: tempfile::TempDir, extra: &str, listeners: &[&str]) -> Server {
        // The log goes to a file, as an operator's would (journald or a
        // file), not to the terminal the benchmark reports to.
        let log = if extra.contains("[log]") {
            ""
        } else {
            "[log]\nfile = \"petrel.log\"\n"
        };
        let mut cfg = format!("{extra}\n{log}[listeners]\nhttp = [\"127.0.0.1:0\"]\n");
        for l in [
            "smtp",
            "submission",
            "submissions",
            "imap",
            "imaps",
            "pop3",
            "pop3s",
            "managesieve",
        ] {
            let on = if listeners.contains(&l) {
                "\"127.0.0.1:0\""
            } else {
                ""
            };
            cfg.push_str(&format!("{l} = [{on}]\n"));
        }
        // The bench accounts' passwords are short ("pw").
        cfg.push_str("[passwords]\nmin-score = 0\n");
        std::fs::write(dir.path().join("config.toml"), cfg).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_petrel"))
            .args(["serve", "--data-dir"])
            .arg(dir.path())
            .env("PETREL_ADMIN_PASSWORD", "bench")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut ports = HashMap::new();
        loop {
            let mut l = String::new();
            assert!(out.read_line(&mut l).unwrap() > 0, "server exited");
            let parts: Vec<&str> = l.split_whitespace().collect();
            if l.starts_with("petrel: listening") {
                if let (Some(name), Some(Ok(addr))) =
                    (parts.get(2), parts.get(3).map(|a| a.parse()))
                {
                    ports.insert(name.to_string(), addr);
                }
            }
            if l.starts_with("petrel: ready") {
                break;
            }
        }
        std::thread::spawn(move || for _ in out.lines() {});
        let url = format!("http://{}", ports["http"]);
        let s = Server {
            child,
            ports,
            url,
            dir,
        };
        s.cli(&["domain", "create", "bench.test"]);
        s
    }

    pub fn addr(&self, listener: &str) -> SocketAddr {
        self.ports[listener]
    }

    pub fn cli(&self, args: &[&str]) {
        let st = Command::new(env!("CARGO_BIN_EXE_petrel"))
            .args(["--url", &self.url, "--credentials", "admin:bench"])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "petrel {args:?}");
    }

    /// What a `petrel` admin command prints.
    #[allow(dead_code)]
    pub fn cli_output(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_petrel"))
            .args(["--url", &self.url, "--credentials", "admin:bench"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "petrel {args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the full-text indexer has nothing left to do.
    #[allow(dead_code)]
    pub fn wait_indexed(&self) {
        while !self
            .cli_output(&["search", "status"])
            .contains("waiting: 0")
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The server's proportional set size (PSS), in KB: the measure the
    /// Dovecot comparison sums over its processes.
    #[allow(dead_code)]
    pub fn pss_kb(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/smaps_rollup", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("Pss:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// The server's resident memory, in KB.
    pub fn rss_kb(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

/// Reads an SMTP reply (every continuation line); returns its last line.
// Used by some benches only.
#[allow(dead_code)]
pub async fn smtp_reply<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> String {
    use tokio::io::AsyncBufReadExt;
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).await.unwrap();
        if line.len() < 4 || line.as_bytes()[3] == b' ' {
            return line;
        }
    }
}
