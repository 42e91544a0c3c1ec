//! A real DNS server for tests: dnsmasq (Debian's dnsmasq-base, installed
//! by `cargo xtask setup`) on a private loopback port, serving test zones
//! under `.test` and answering NXDOMAIN for every other `.test` name.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub enum Rec {
    /// domain, exchange ("." for a null MX), preference
    Mx(&'static str, &'static str, u16),
    /// host, IPv4 address
    A(&'static str, &'static str),
    /// name, value (split into 255-byte strings as DNS needs)
    Txt(String, String),
    /// name, target, port (priority 0, weight 1)
    Srv(String, String, u16),
    /// reverse name (x.x.x.x.in-addr.arpa), host
    Ptr(String, String),
    /// alias, target (a name this server answers for)
    Cname(String, String),
    /// name, the strings of one TXT record as given
    TxtParts(String, Vec<String>),
}

pub struct Dns {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Dns {
    pub fn start(records: &[Rec]) -> Dns {
        for _ in 0..5 {
            if let Some(dns) = Self::try_start(records, super::port::free_port()) {
                return dns;
            }
        }
        panic!("dnsmasq did not start");
    }

    /// Starts on a port chosen earlier (see `super::port::free_port`), for a server
    /// configured before the records it must serve were known.
    ///
    /// The port can be held for a moment by someone else's ephemeral UDP
    /// socket (a resolver's query socket takes any free port), so a start
    /// that loses the port is retried for a while before giving up.
    pub fn start_at(records: &[Rec], port: u16) -> Dns {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(dns) = Self::try_start(records, port) {
                return dns;
            }
            assert!(
                Instant::now() < deadline,
                "dnsmasq did not start on port {port} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn try_start(records: &[Rec], port: u16) -> Option<Dns> {
        let bin = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("dnsmasq is not installed: run `cargo xtask setup`");
        let dir = tempfile::tempdir().unwrap();
        let mut conf = String::from("local=/test/\n");
        for r in records {
            match r {
                Rec::Mx(d, x, p) => conf.push_str(&format!("mx-host={d},{x},{p}\n")),
                Rec::A(h, ip) => conf.push_str(&format!("host-record={h},{ip}\n")),
                Rec::Txt(n, v) => {
                    let chunks: Vec<String> = v
                        .as_bytes()
                        .chunks(255)
                        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
                        .collect();
                    conf.push_str(&format!("txt-record={n},{}\n", chunks.join(",")));
                }
                Rec::Srv(n, t, p) => conf.push_str(&format!("srv-host={n},{t},{p},0,1\n")),
                Rec::Ptr(n, t) => conf.push_str(&format!("ptr-record={n},{t}\n")),
                Rec::Cname(a, t) => conf.push_str(&format!("cname={a},{t}\n")),
                Rec::TxtParts(n, parts) => {
                    let quoted: Vec<String> = parts.iter().map(|p| format!("\"{p}\"")).collect();
                    conf.push_str(&format!("txt-record={n},{}\n", quoted.join(",")));
                }
            }
        }
        let conf_path = dir.path().join("dnsmasq.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut child = Command::new(bin)
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--user=root",
                "--pid-file=",
                "--log-facility=/dev/null",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--conf-file={}", conf_path.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dnsmasq");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return None; // lost the port race (already reaped)
            }
            if answers_udp(addr) {
                return Some(Dns {
                    child,
                    addr,
                    _dir: dir,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// The `[resolver]` table that points Petrel at this server.
    pub fn resolver_toml(&self) -> String {
        format!(
            "[resolver]\nnameservers = [\"{}\"]\ntimeout = 2\n",
            self.addr
        )
    }
}

/// Whether a DNS server answers a UDP query on `addr`: the readiness test.
/// A TCP connect is not enough, as dnsmasq binds TCP before UDP and exits
/// when the UDP port is taken; it answers queries only once both are bound.
fn answers_udp(addr: SocketAddr) -> bool {
    let Ok(sock) = std::net::UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
    // ID 0x5045, RD set, one question: "test." IN A.
    let query = [
        0x50, 0x45, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 4, b't', b'e', b's', b't', 0, 0, 1, 0, 1,
    ];
    if sock.send_to(&query, addr).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    matches!(sock.recv_from(&mut buf), Ok((n, from)) if n >= 2 && from == addr && buf[..2] == [0x50, 0x45])
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
