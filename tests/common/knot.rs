//! A DNSSEC-signed zone for tests: Knot DNS (Debian's `knot`, installed
//! by `cargo xtask setup`) serving `test.` on a private loopback port and
//! signing it itself (ECDSA P-256, NSEC). The zone's DNSKEY records are
//! written to a trust-anchor file for Petrel's `resolver.trust-anchors`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Knot {
    child: Child,
    pub addr: SocketAddr,
    /// DNSKEY records of `test.`, to trust.
    pub trust_anchors: PathBuf,
    dir: tempfile::TempDir,
}

impl Knot {
    /// Serves `records` (zone-file lines relative to `test.`) signed.
    pub fn start(records: &str) -> Knot {
        let knotd = ["/usr/sbin/knotd", "/usr/bin/knotd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("knotd is not installed: run `cargo xtask setup`");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let zone = format!(
            "$ORIGIN test.\n$TTL 300\n@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n@ NS ns.test.\nns A 127.0.0.1\n{records}\n"
        );
        std::fs::write(dir.path().join("test.zone"), zone).unwrap();
        for _ in 0..5 {
            let port = super::port::free_port();
            let conf = format!(
                "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n\
                 database:\n    storage: \"{d}\"\n\
                 log:\n  - target: stderr\n    any: warning\n\
                 policy:\n  - id: test\n    algorithm: ecdsap256sha256\n    nsec3: off\n\
                 template:\n  - id: default\n    storage: \"{d}\"\n    dnssec-signing: on\n    dnssec-policy: test\n    zonefile-sync: -1\n\
                 zone:\n  - domain: test\n    file: \"{d}/test.zone\"\n"
            );
            let conf_path = dir.path().join("knot.conf");
            std::fs::write(&conf_path, conf).unwrap();
            let mut child = Command::new(knotd)
                .arg("-c")
                .arg(&conf_path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start knotd");
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // lost the port race
                }
                // Up and signed once DNSKEY answers carry signatures.
                if let Some(keys) = dnskeys(addr) {
                    let trust_anchors = dir.path().join("anchors.txt");
                    std::fs::write(&trust_anchors, keys).unwrap();
                    return Knot {
                        child,
                        addr,
                        trust_anchors,
                        dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("knotd did not start");
    }

    /// The `[resolver]` table for Petrel.
    pub fn resolver_toml(&self) -> String {
        format!(
            "[resolver]\nnameservers = [\"{}\"]\ntimeout = 2\ntrust-anchors = \"{}\"\n",
            self.addr,
            self.trust_anchors.display()
        )
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// The DNSKEY records of `test.` in zone-file form, once signed.
fn dnskeys(addr: SocketAddr) -> Option<String> {
    let out = Command::new("kdig")
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string()])
        .args([
            "+dnssec",
            "+noall",
            "+answer",
            "+timeout=1",
            "+retry=0",
            "DNSKEY",
            "test.",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let keys: Vec<&str> = text.lines().filter(|l| l.contains("\tDNSKEY\t")).collect();
    let signed = text.lines().any(|l| l.contains("\tRRSIG\t"));
    (signed && !keys.is_empty()).then(|| keys.join("\n") + "\n")
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
